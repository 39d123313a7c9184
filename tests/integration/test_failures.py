"""Native failure events (``/api/{spaceId}/failures``) through the real HTTP API event shape, against moto."""

from __future__ import annotations

from typing import Any

import pytest

from dora_insights.logic.freshness import SETTLE
from tests.conftest import ADMIN_KEY, NOW, Api, Clock

ROUTE = "/api/{spaceId}/failures"
SP = {"spaceId": "Spaces-1"}


def failure(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "project": "shop",
        "environment": "production",
        "name": "checkout errors",
        "severity": "high",
        "started_at": "2024-03-01T12:30:00Z",
        "finished_at": "2024-03-01T13:05:00Z",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def create(api: Api, **overrides: object) -> Any:
    return api.call("POST", ROUTE, path_params=SP, body=failure(**overrides), key=ADMIN_KEY)


def listed(api: Api, **query: str) -> dict[str, Any]:
    result = api.call("GET", ROUTE, path_params=SP, query=query or None, key=ADMIN_KEY)
    assert result.status == 200, result.body
    return dict(result.body)


def test_create_then_list(api: Api) -> None:
    created = create(api)
    assert created.status == 201, created.body
    out = created.body
    assert out["projects"] == ["shop"]
    assert out["project_ids"] == ["Projects-1"]
    assert out["environment_id"] == "Environments-1"
    assert out["started_at"] == "2024-03-01T12:30:00.000Z"
    assert out["finished_at"] == "2024-03-01T13:05:00.000Z"
    assert "body_hash" not in out
    assert listed(api) == {"items": [out], "next_cursor": None}


def test_projects_list_and_unix_times_and_open_failure(api: Api) -> None:
    created = create(api, project=None, projects=["shop", "cart", "Shop"], started_at=1709296200000, finished_at=None)
    assert created.status == 201, created.body
    assert created.body["projects"] == ["shop", "cart"]
    assert created.body["finished_at"] is None
    assert created.body["started_at"] == "2024-03-01T12:30:00.000Z"


def test_missing_environment_is_the_spaces_default(api: Api) -> None:
    assert create(api, environment=None).body["environment"] == "production"


def test_same_id_is_idempotent_and_different_content_is_409(api: Api) -> None:
    first = create(api, id="incident-42")
    again = create(api, id="incident-42")
    assert (first.status, again.status) == (201, 200)
    assert again.body == first.body
    conflict = create(api, id="incident-42", severity="low")
    assert conflict.status == 409
    assert conflict.body["errors"]
    assert len(listed(api)["items"]) == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"project": None}, "projects"),
        ({"project": None, "projects": []}, "projects"),
        ({"project": ""}, "project"),
        ({"started_at": None}, "started_at"),
        ({"started_at": "soon"}, "started_at"),
        ({"started_at": "2024-03-01T14:00:00Z"}, "started_at"),
        ({"tags": ["no-colon"]}, "tags[0]"),
        ({"commit_sha": "xyz"}, "commit_sha"),
        ({"id": "has space"}, "id"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_invalid_body_is_400_naming_the_field(api: Api, overrides: dict[str, object], field: str) -> None:
    result = create(api, **overrides)
    assert result.status == 400, result.body
    assert any(line.startswith(f"{field}:") for line in result.body["errors"]), result.body
    assert listed(api)["items"] == []


def test_invalid_json_is_400(api: Api) -> None:
    result = api.call("POST", ROUTE, path_params=SP, raw_body="{oops", key=ADMIN_KEY)
    assert result.status == 400
    assert result.body["message"]


def test_list_filters_by_project_environment_and_time(api: Api) -> None:
    create(api, project="shop", started_at="2024-03-01T10:00:00Z", finished_at=None)
    create(api, project="cart", started_at="2024-03-02T10:00:00Z", finished_at=None)
    create(api, project="shop", environment="staging", started_at="2024-03-03T10:00:00Z", finished_at=None)
    assert [f["projects"] for f in listed(api)["items"]] == [["shop"], ["cart"], ["shop"]]
    assert len(listed(api, project="shop")["items"]) == 2
    assert len(listed(api, project="Projects-2")["items"]) == 1
    assert len(listed(api, project="shop", environment="production")["items"]) == 1
    assert listed(api, project="nothing")["items"] == []
    window = listed(api, **{"from": "2024-03-02T00:00:00Z", "to": "2024-03-02T23:59:59Z"})
    assert [f["projects"] for f in window["items"]] == [["cart"]]


def test_list_pages_with_a_cursor(api: Api) -> None:
    for day in range(1, 8):
        create(api, started_at=f"2024-03-0{day}T00:00:00Z", finished_at=None)
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = listed(api, **query)
        seen += [f["started_at"][:10] for f in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"2024-03-0{d}" for d in range(7, 0, -1)]


def test_filtered_list_pages_with_a_cursor(api: Api) -> None:
    for day in range(1, 7):
        create(api, project="shop" if day % 2 else "cart", started_at=f"2024-03-0{day}T00:00:00Z", finished_at=None)
    first = listed(api, project="shop", limit="2")
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = listed(api, project="shop", limit="2", cursor=first["next_cursor"])
    assert [f["started_at"][:10] for f in rest["items"]] == ["2024-03-01"]


@pytest.mark.parametrize(
    "query", [{"cursor": "garbage"}, {"limit": "0"}, {"limit": "x"}, {"from": "tomorrow"}, {"limit": "501"}]
)
def test_bad_list_parameters_are_400(api: Api, query: dict[str, str]) -> None:
    result = api.call("GET", ROUTE, path_params=SP, query=query, key=ADMIN_KEY)
    assert result.status == 400, result.body


def test_another_spaces_key_cannot_see_the_failure(api: Api, store: Any) -> None:
    from dora_insights.logic import admin

    assert create(api).status == 201
    other = admin.create_space(store, "Other", NOW)
    _, secret = admin.create_api_key(store, other.id, "reader", ("deployments:read", "deployments:write"), NOW)
    assert api.call("GET", ROUTE, path_params=SP, key=secret).status == 404
    assert api.call("POST", ROUTE, path_params=SP, body=failure(), key=secret).status == 404
    theirs = api.call("GET", ROUTE, path_params={"spaceId": other.id}, key=secret)
    assert theirs.status == 200
    assert theirs.body["items"] == []


def test_read_key_cannot_write_and_no_key_is_401(api: Api, store: Any) -> None:
    from dora_insights.logic import admin

    _, secret = admin.create_api_key(store, "Spaces-1", "reader", ("deployments:read",), NOW)
    assert api.call("POST", ROUTE, path_params=SP, body=failure(), key=secret).status == 403
    assert api.call("GET", ROUTE, path_params=SP, key=secret).status == 200
    assert api.call("GET", ROUTE, path_params=SP).status == 401


def test_failure_marks_the_known_streams_of_its_project_and_environment_dirty(
    api: Api, store: Any, clock: Clock
) -> None:
    from dora_insights.logic import recompute

    deployment = {"project": "shop", "environment": "production", "finished_at": "2024-03-01T12:00:00Z"}
    other_env = {**deployment, "environment": "staging"}
    for body in (deployment, other_env):
        assert api.call("POST", "/api/{spaceId}/deployments", path_params=SP, body=body, key=ADMIN_KEY).status == 201
    recompute.run(store, clock.advance(SETTLE))  # after the index shows the writes
    assert store.list_dirty_streams("Spaces-1") == []
    assert create(api).status == 201
    dirty = [mark["stream"] for mark in store.list_dirty_streams("Spaces-1")]
    assert dirty == ["Projects-1/Channels-1/Environments-1/-"]
