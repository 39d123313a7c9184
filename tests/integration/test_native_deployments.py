"""Native deployments through the real HTTP API event shape, against moto."""

from __future__ import annotations

from typing import Any

from tests.conftest import ADMIN_KEY, Api
from tests.support.retries import settle

ROUTE = "/api/{spaceId}/deployments"
SP = {"spaceId": "Spaces-1"}


def deployment(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "project": "shop",
        "environment": "production",
        "finished_at": "2024-03-01T12:00:00Z",
        "version": "1.4.2",
    }
    body.update(overrides)
    return body


def test_create_then_read_back(api: Api) -> None:
    created = api.call("POST", ROUTE, path_params=SP, body=deployment(), key=ADMIN_KEY)
    assert created.status == 201, created.body
    out = created.body
    assert out["project"] == "shop"
    assert out["project_id"] == "Projects-1"
    assert out["environment_id"] == "Environments-1"
    assert out["channel"] == "Default"
    assert out["finished_at"] == "2024-03-01T12:00:00.000Z"
    fetched = api.call("GET", ROUTE + "/{deploymentId}", path_params={**SP, "deploymentId": out["id"]}, key=ADMIN_KEY)
    assert fetched.status == 200
    # The read brought its stream up to date first (issue 22): figures, when and nothing pending.
    fresh = {key: fetched.body.pop(key) for key in ("figures", "as_of", "pending")}
    assert fresh["figures"]["lead_time_source"] == "Release" and fresh["pending"] == 0
    assert fresh["as_of"] is not None
    assert fetched.body == {key: value for key, value in out.items() if key not in fresh}


def _list(api: Api, **query: str) -> dict:
    result = api.call("GET", ROUTE, path_params=SP, query=query or None, key=ADMIN_KEY)
    assert result.status == 200, result.body
    return result.body


def test_unix_times_in_seconds_milliseconds_and_nanoseconds_are_the_same_instant(api: Api) -> None:
    for n, value in enumerate((1709294400, 1709294400000, 1709294400000000000)):
        created = api.call(
            "POST", ROUTE, path_params=SP, body=deployment(finished_at=value, version=str(n)), key=ADMIN_KEY
        )
        assert created.status == 201, created.body
        assert created.body["finished_at"] == "2024-03-01T12:00:00.000Z"


def test_offset_times_are_stored_in_utc(api: Api) -> None:
    created = api.call(
        "POST", ROUTE, path_params=SP, body=deployment(finished_at="2024-03-01T14:30:00+02:00"), key=ADMIN_KEY
    )
    assert created.body["finished_at"] == "2024-03-01T12:30:00.000Z"


def test_same_client_id_and_body_answers_the_same_deployment(api: Api) -> None:
    body = deployment(id="ci-run-1234")
    first = api.call("POST", ROUTE, path_params=SP, body=body, key=ADMIN_KEY)
    second = api.call("POST", ROUTE, path_params=SP, body=body, key=ADMIN_KEY)
    assert (first.status, second.status) == (201, 200)
    assert second.body == first.body
    assert len(_list(api)["items"]) == 1


def test_same_client_id_with_another_body_is_a_conflict(api: Api) -> None:
    api.call("POST", ROUTE, path_params=SP, body=deployment(id="ci-run-1234"), key=ADMIN_KEY)
    conflict = api.call("POST", ROUTE, path_params=SP, body=deployment(id="ci-run-1234", version="2"), key=ADMIN_KEY)
    assert conflict.status == 409
    assert conflict.body["errors"]
    assert _list(api)["items"][0]["version"] == "1.4.2"


def test_list_is_newest_first_and_pages_with_a_cursor(api: Api) -> None:
    for day in range(1, 8):
        api.call("POST", ROUTE, path_params=SP, body=deployment(finished_at=f"2024-03-0{day}T00:00:00Z"), key=ADMIN_KEY)
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        page = _list(api, **query)
        seen += [d["finished_at"][:10] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"2024-03-0{d}" for d in range(7, 0, -1)]


def test_list_filters_by_name_or_id_state_and_time(api: Api) -> None:
    api.call("POST", ROUTE, path_params=SP, body=deployment(project="a", tenant="acme"), key=ADMIN_KEY)
    api.call("POST", ROUTE, path_params=SP, body=deployment(project="b", state="Failed"), key=ADMIN_KEY)
    api.call(
        "POST",
        ROUTE,
        path_params=SP,
        body=deployment(project="b", environment="test", finished_at=1709900000),
        key=ADMIN_KEY,
    )
    assert [d["project"] for d in _list(api, project="a")["items"]] == ["a"]
    assert len(_list(api, project="Projects-2")["items"]) == 2
    assert [d["state"] for d in _list(api, state="Failed")["items"]] == ["Failed"]
    assert [d["environment"] for d in _list(api, environment="test")["items"]] == ["test"]
    assert [d["tenant"] for d in _list(api, tenant="acme")["items"]] == ["acme"]
    assert len(_list(api, project="b", environment="production")["items"]) == 1
    assert len(_list(api, to="2024-03-02T00:00:00Z")["items"]) == 2
    assert len(_list(api, **{"from": "2024-03-02T00:00:00Z"})["items"]) == 1
    assert _list(api, project="unknown")["items"] == []


def test_batch_reports_each_item_and_one_bad_item_does_not_stop_the_others(api: Api) -> None:
    body = {
        "deployments": [deployment(), {"project": "x"}, deployment(project="y", state="Nope"), deployment(project="z")]
    }
    result = api.call("POST", ROUTE + "/batch", path_params=SP, body=body, key=ADMIN_KEY)
    assert result.status == 200
    assert [r["status"] for r in result.body["results"]] == [201, 400, 400, 201]
    assert any("environment" in e for e in result.body["results"][1]["errors"])
    assert (result.body["created"], result.body["failed"]) == (2, 2)
    assert len(_list(api)["items"]) == 2


def test_catalogue_registers_entities_once_with_octopus_ids(api: Api) -> None:
    api.call("POST", ROUTE, path_params=SP, body=deployment(team="payments", tenant="acme"), key=ADMIN_KEY)
    api.call("POST", ROUTE, path_params=SP, body=deployment(project="SHOP", environment="staging"), key=ADMIN_KEY)
    projects = api.call("GET", "/api/{spaceId}/projects", path_params=SP, key=ADMIN_KEY).body
    assert projects["ItemType"] == "Project"
    assert [(p["Id"], p["Name"]) for p in projects["Items"]] == [("Projects-1", "shop")]
    environments = api.call("GET", "/api/{spaceId}/environments", path_params=SP, key=ADMIN_KEY).body
    assert [e["Id"] for e in environments["Items"]] == ["Environments-1", "Environments-2"]
    assert environments["TotalResults"] == 2
    page = api.call(
        "GET", "/api/{spaceId}/environments", path_params=SP, query={"skip": "1", "take": "1"}, key=ADMIN_KEY
    )
    assert [e["Name"] for e in page.body["Items"]] == ["staging"]
    assert page.body["Links"]["Page.Last"] == "/api/Spaces-1/environments?skip=1&take=1"
    for route, name in (("tenants", "acme"), ("projectgroups", "payments"), ("channels", "Default")):
        listed = api.call("GET", f"/api/{{spaceId}}/{route}", path_params=SP, key=ADMIN_KEY).body
        assert [i["Name"] for i in listed["Items"]] == [name]


def test_tenant_tag_sets_are_registered_with_their_tags(api: Api) -> None:
    api.call(
        "POST", ROUTE, path_params=SP, body=deployment(tenant="acme", tenant_tags=["Location/Europe"]), key=ADMIN_KEY
    )
    api.call(
        "POST",
        ROUTE,
        path_params=SP,
        body=deployment(tenant="globex", tenant_tags=["Location/Asia", "Tier/Gold", "location/Europe"]),
        key=ADMIN_KEY,
    )
    listed = api.call("GET", "/api/{spaceId}/tenanttagsets", path_params=SP, key=ADMIN_KEY).body
    assert listed["ItemType"] == "TagSet"
    sets = {s["Name"]: s for s in listed["Items"]}
    assert set(sets) == {"Location", "Tier"}
    assert sets["Location"]["Id"] == "TagSets-1"
    assert [t["CanonicalTagName"] for t in sets["Location"]["Tags"]] == ["Location/Asia", "Location/Europe"]
    assert [t["Name"] for t in sets["Tier"]["Tags"]] == ["Gold"]


def test_a_release_creation_time_is_taken_shown_and_starts_the_lead_time_without_code(
    api: Api, aws: Any, clock: Any, lambda_context: Any
) -> None:
    """``release_created_at`` (when the version was created, as an Orlo release's ``stime``) is the
    version's first sight when earlier than its deployments (METRICS §3 release rule): taken by the native
    write, answered by its reads, so a deployment copied from another space keeps its lead time."""
    created = api.call(
        "POST",
        ROUTE,
        path_params=SP,
        body=deployment(release_created_at="2024-03-01T08:00:00+00:00", started_at="2024-03-01T11:50:00Z"),
        key=ADMIN_KEY,
    )
    assert created.status == 201, created.body
    assert created.body["release_created_at"] == "2024-03-01T08:00:00.000Z"
    settle(aws, clock, lambda_context)
    one = api.call(
        "GET", ROUTE + "/{deploymentId}", path_params={**SP, "deploymentId": created.body["id"]}, key=ADMIN_KEY
    )
    assert one.body["release_created_at"] == "2024-03-01T08:00:00.000Z"
    assert one.body["figures"]["lead_time_seconds"] == 4 * 3600
    listed = api.call("GET", ROUTE, path_params=SP, key=ADMIN_KEY).body["items"]
    assert [i["release_created_at"] for i in listed] == ["2024-03-01T08:00:00.000Z"]


def test_a_release_created_after_the_deployment_finished_is_taken_and_changes_nothing(
    api: Api, aws: Any, clock: Any, lambda_context: Any
) -> None:
    """Orlo stores its release's ``stime``, which an import may set after a package finished; a native copy
    of such a deployment sends it back, so it is taken: the version's first sight is the earliest time."""
    late = deployment(release_created_at="2024-03-01T12:00:01Z", started_at="2024-03-01T11:50:00Z")
    created = api.call("POST", ROUTE, path_params=SP, body=late, key=ADMIN_KEY)
    assert created.status == 201, created.body
    settle(aws, clock, lambda_context)
    one = api.call(
        "GET", ROUTE + "/{deploymentId}", path_params={**SP, "deploymentId": created.body["id"]}, key=ADMIN_KEY
    )
    assert one.body["release_created_at"] == "2024-03-01T12:00:01.000Z"
    assert one.body["figures"]["lead_time_seconds"] == 600
