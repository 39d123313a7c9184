"""PostHog saved insights beyond the basics: status codes and CSV answers of every route taking
``format``, path ids and share tokens no stored one can be (404), activity shapes, PATCH semantics, soft
delete as PostHog (a deleted insight is a 404 except for the PATCH that restores it), the caller's
``last_viewed_at`` on every answer that shows an insight, sharing across spaces and insights, list paging,
and hostile input. ``DORA_PROPERTY_SEEDS=a:b`` widens the random histories."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.fixtures import OTHER_KEY, OTHER_SPACE
from tests.support.seeds import seeds

SP = {"spaceId": "Spaces-1"}
OSP = {"spaceId": OTHER_SPACE}
INSIGHTS = "/api/projects/{spaceId}/insights"
ONE = INSIGHTS + "/{insightId}"
SHARED = "/shared/{accessToken}"
LOGIN = "/shared/{accessToken}/login"


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    from dora_insights.logic import insights

    monkeypatch.setattr(insights, "SCRYPT_COST", insights.ScryptCost(n=2**14, r=8, p=1))


def _report(api: Api, sp: dict[str, str], key: str, name: str = "Delivery") -> str:
    made = api.call("POST", "/api/{spaceId}/insights/reports", path_params=sp, body={"Name": name}, key=key)
    assert made.status == 201, made.body
    return str(made.body["Id"])


@pytest.fixture
def report_id(api: Api, clock: Clock) -> str:
    return _report(api, SP, ADMIN_KEY)


def _query(report_id: str, **more: Any) -> dict[str, Any]:
    return {"kind": "DoraMetricsQuery", "reportId": report_id, "metric": "deployment_frequency", **more}


def _create(api: Api, report_id: str, sp: dict[str, str] = SP, key: str = ADMIN_KEY, **fields: Any) -> dict[str, Any]:
    body = {"name": "Deploys", "query": _query(report_id), **fields}
    made = api.call("POST", INSIGHTS, path_params=sp, body=body, key=key)
    assert made.status == 201, made.body
    return made.body  # type: ignore[no-any-return]


def _one(insight_id: int | str, sp: dict[str, str] = SP, **extra: str) -> dict[str, str]:
    return {**sp, "insightId": str(insight_id), **extra}


def _get(api: Api, insight_id: int, sp: dict[str, str] = SP, key: str = ADMIN_KEY) -> Any:
    return api.call("GET", ONE, path_params=_one(insight_id, sp), key=key)


def _patch(api: Api, insight_id: int | str, body: Any, sp: dict[str, str] = SP, key: str = ADMIN_KEY) -> Any:
    return api.call("PATCH", ONE, path_params=_one(insight_id, sp), body=body, key=key)


def _share(api: Api, insight_id: int, sp: dict[str, str] = SP, key: str = ADMIN_KEY, **body: Any) -> dict[str, Any]:
    done = api.call(
        "PATCH", ONE + "/sharing", path_params=_one(insight_id, sp), body={"enabled": True, **body}, key=key
    )
    assert done.status == 200, done.body
    return done.body  # type: ignore[no-any-return]


# --- status codes and shapes ------------------------------------------------------------------
def test_create_with_format_csv_still_answers_201(api: Api, report_id: str) -> None:
    """API.md: "Create answers 201". The CSV rendering must keep the write's status."""
    made = api.call(
        "POST", INSIGHTS, path_params=SP, query={"format": "csv"}, body={"query": _query(report_id)}, key=ADMIN_KEY
    )
    stored = api.call("GET", INSIGHTS, path_params=SP, key=ADMIN_KEY).body["count"]
    # A 5xx here is worse than a wrong code: the insight was stored, and a client retrying makes a second.
    assert made.status == 201, (made.status, made.body, f"insights stored: {stored}")
    assert stored == 1
    lines = made.body.splitlines() if isinstance(made.body, str) else []
    assert len(lines) == 2 and lines[0].startswith("id,short_id,"), made.body  # a header row and the insight


@pytest.mark.parametrize("route", [ONE, ONE + "/activity", ONE + "/sharing", ONE + "/thresholds"])
def test_an_id_longer_than_any_stored_is_404_not_400(api: Api, report_id: str, route: str) -> None:
    """API.md Errors: 'An unknown id ... is a 404 (an id in the path longer than any id stored too, on
    every dialect's routes)'."""
    _create(api, report_id)
    got = api.call("GET", route, path_params=_one("99999999999999"), key=ADMIN_KEY)
    assert got.status == 404, (got.status, got.body)


def test_activity_changes_always_carry_before_and_after(api: Api, report_id: str, clock: Clock) -> None:
    """API.md: each change is {"type","action","field","before","after"}; PostHog writes null for an
    empty side. Setting a description (before null) and clearing it (after null) must keep both keys."""
    _create(api, report_id)
    clock.advance(timedelta(seconds=1))
    assert _patch(api, 1, {"description": "why"}).status == 200
    clock.advance(timedelta(seconds=1))
    assert _patch(api, 1, {"description": None}).status == 200
    entries = api.call("GET", ONE + "/activity", path_params=_one(1), key=ADMIN_KEY).body["results"]
    cleared, set_ = entries[0]["detail"]["changes"], entries[1]["detail"]["changes"]
    assert {"before", "after"} <= set(set_[0]), set_
    assert {"before", "after"} <= set(cleared[0]), cleared
    assert (set_[0]["before"], set_[0]["after"], cleared[0]["before"], cleared[0]["after"]) == (
        None,
        "why",
        "why",
        None,
    )


def test_activity_user_has_the_same_shape_as_created_by(api: Api, report_id: str) -> None:
    """API.md: activity ``user`` is {"first_name", "email"}, as created_by (whose email is null for a
    user that is no address)."""
    created = _create(api, report_id)
    entry = api.call("GET", ONE + "/activity", path_params=_one(1), key=ADMIN_KEY).body["results"][0]
    assert entry["user"] == created["created_by"], (entry["user"], created["created_by"])


@pytest.mark.xfail(
    strict=True,
    reason="left: the project-wide log orders writes of one millisecond by insight id, not by when they were made",
)
def test_project_activity_is_newest_first_within_one_instant(api: Api, report_id: str) -> None:
    """Writes in the same millisecond to different insights: the project-wide log must still list the
    later write first (the per-insight log orders them by version; the project log by insight id)."""
    _create(api, report_id, name="A")  # insight 1
    _create(api, report_id, name="B")  # insight 2
    assert _patch(api, 1, {"name": "A2"}).status == 200  # the newest write, to the lower id
    log = api.call("GET", INSIGHTS + "/activity", path_params=SP, key=ADMIN_KEY).body["results"]
    assert [(e["activity"], e["item_id"]) for e in log] == [("updated", 1), ("created", 2), ("created", 1)], log


# --- PATCH semantics -----------------------------------------------------------------------------
def test_patch_nulls_clear_what_may_be_empty_and_leave_the_rest(api: Api, report_id: str, clock: Clock) -> None:
    created = _create(api, report_id, description="d", order=3, tags=["t"], dashboards=[4], favorited=True)
    clock.advance(timedelta(seconds=1))
    body = {
        "name": None,
        "description": None,
        "order": None,
        "tags": None,
        "dashboards": None,
        "favorited": None,
        "deleted": None,
        "query": None,
    }
    done = _patch(api, 1, body)
    assert done.status == 200, done.body
    after = _get(api, 1).body
    assert (after["name"], after["description"], after["order"]) == (None, None, None)
    assert (after["tags"], after["dashboards"], after["favorited"], after["deleted"]) == (["t"], [4], True, False)
    assert after["query"] == created["query"]


def test_patch_with_unknown_field_changes_nothing(api: Api, report_id: str) -> None:
    created = _create(api, report_id)
    refused = _patch(api, 1, {"name": "new", "bogus": 1})
    assert refused.status == 400, refused.body
    assert refused.body["type"] == "validation_error"
    assert _get(api, 1).body["name"] == created["name"]


def test_patch_that_changes_nothing_writes_no_activity_and_keeps_last_modified(
    api: Api, report_id: str, clock: Clock
) -> None:
    created = _create(api, report_id, tags=["a", "b"])
    clock.advance(timedelta(minutes=1))
    same = _patch(api, 1, {"name": created["name"], "tags": ["a", "b", "a"], "query": created["query"]})
    assert same.status == 200
    assert same.body["last_modified_at"] == created["last_modified_at"]
    log = api.call("GET", ONE + "/activity", path_params=_one(1), key=ADMIN_KEY).body
    assert log["total_count"] == 1


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "name",
        123,
        {"name": 5},
        {"tags": "a,b"},
        {"tags": [""]},
        {"dashboards": [1.5]},
        {"dashboards": ["x"]},
        {"favorited": "maybe"},
        {"order": 10**40},
        {"query": {"kind": "DoraMetricsQuery"}},
        {"query": "x"},
        {"name": "x" * 401},
        {"tags": ["t"] * 51},
    ],
)
def test_patch_with_wrong_types_is_400_and_stores_nothing(api: Api, report_id: str, body: Any) -> None:
    created = _create(api, report_id)
    raw = json.dumps(body)
    refused = api.call("PATCH", ONE, path_params=_one(1), raw_body=raw, key=ADMIN_KEY)
    assert refused.status == 400, (refused.status, refused.body)
    after = _get(api, 1).body
    assert {k: after[k] for k in ("name", "tags", "dashboards", "favorited", "order", "query")} == {
        k: created[k] for k in ("name", "tags", "dashboards", "favorited", "order", "query")
    }


def test_deeply_nested_body_is_a_400(api: Api, report_id: str) -> None:
    _create(api, report_id)
    deep = "[" * 50_000 + "]" * 50_000
    refused = api.call("PATCH", ONE, path_params=_one(1), raw_body='{"name": ' + deep + "}", key=ADMIN_KEY)
    assert refused.status == 400, refused.status
    settings = {"a": 1}
    for _ in range(20):
        settings = {"a": settings}
    refused = api.call("PATCH", ONE + "/sharing", path_params=_one(1), body={"settings": settings}, key=ADMIN_KEY)
    assert refused.status == 400, refused.status


def test_unicode_round_trips_and_search_finds_it(api: Api, report_id: str) -> None:
    name = "Déploiements 🚀 " + "𝔘" * 380
    made = _create(api, report_id, name=name, tags=["équipe-α", "🚀"], description="naïve\u0000nul")
    assert _get(api, made["id"]).body["name"] == name
    found = api.call("GET", INSIGHTS, path_params=SP, query={"search": "DÉPLOIEMENTS"}, key=ADMIN_KEY).body
    assert [r["id"] for r in found["results"]] == [made["id"]]
    tagged = api.call("GET", INSIGHTS, path_params=SP, query={"tags": '["🚀"]'}, key=ADMIN_KEY).body
    assert [r["id"] for r in tagged["results"]] == [made["id"]]


# --- tenancy -------------------------------------------------------------------------------------
def test_another_spaces_insight_is_404_on_every_route_and_stays_unchanged(
    api: Api, report_id: str, other_space: str
) -> None:
    _create(api, report_id, name="Mine")
    theirs = {"spaceId": OTHER_SPACE, "insightId": "1"}
    # Our key, their path: 404 (or 403), never their data.
    for method, route, body in [
        ("GET", ONE, None),
        ("PATCH", ONE, {"name": "hijacked"}),
        ("GET", ONE + "/sharing", None),
        ("PATCH", ONE + "/sharing", {"enabled": True}),
        ("POST", ONE + "/sharing/refresh", None),
        ("POST", ONE + "/sharing/passwords", {"raw_password": "hunter2hunter2"}),
        ("GET", ONE + "/activity", None),
    ]:
        got = api.call(method, route, path_params=theirs, body=body, key=OTHER_KEY)
        assert got.status == 404, (method, route, got.status, got.body)
    # Their key on our path: refused.
    for method, route, body in [("GET", ONE, None), ("PATCH", ONE, {"name": "x"}), ("GET", ONE + "/sharing", None)]:
        got = api.call(method, route, path_params=_one(1), body=body, key=OTHER_KEY)
        assert got.status in (403, 404), (method, route, got.status)
    viewed = api.call("POST", INSIGHTS + "/viewed", path_params=OSP, body={"insight_ids": [1]}, key=OTHER_KEY)
    assert viewed.status == 404
    assert _get(api, 1).body["name"] == "Mine"
    log = api.call("GET", INSIGHTS + "/activity", path_params=OSP, key=OTHER_KEY).body
    assert log["total_count"] == 0 and log["results"] == []


def test_share_links_of_two_spaces_with_the_same_insight_id_never_cross(
    api: Api, report_id: str, other_space: str
) -> None:
    _create(api, report_id, name="Ours", description="ours only")
    other_report = _report(api, OSP, OTHER_KEY, name="Theirs report")
    _create(api, other_report, sp=OSP, key=OTHER_KEY, name="Theirs", description="theirs only")
    ours = _share(api, 1, password_required=True)
    theirs = _share(api, 1, sp=OSP, key=OTHER_KEY, password_required=True)
    assert ours["access_token"] != theirs["access_token"]
    pw_ours = api.call(
        "POST", ONE + "/sharing/passwords", path_params=_one(1), body={"raw_password": "ours-password"}, key=ADMIN_KEY
    )
    pw_theirs = api.call(
        "POST",
        ONE + "/sharing/passwords",
        path_params=_one(1, OSP),
        body={"raw_password": "theirs-password"},
        key=OTHER_KEY,
    )
    assert pw_ours.status == pw_theirs.status == 201
    link_ours = {"accessToken": ours["access_token"]}
    link_theirs = {"accessToken": theirs["access_token"]}
    # One link's password does not open the other.
    assert api.call("POST", LOGIN, path_params=link_ours, body={"password": "theirs-password"}).status == 401
    session = api.call("POST", LOGIN, path_params=link_ours, body={"password": "ours-password"}).body["token"]
    bearer = {"Authorization": f"Bearer {session}"}
    assert api.call("GET", SHARED, path_params=link_theirs, headers=bearer).status == 401
    shown = api.call("GET", SHARED, path_params=link_ours, headers=bearer)
    assert shown.status == 200
    text = json.dumps(shown.body)
    assert "Ours" in text and "Theirs" not in text and "theirs only" not in text
    # A password id of the other space is no password of ours.
    refused = api.call(
        "DELETE",
        ONE + "/sharing/passwords/{passwordId}",
        path_params=_one(1, passwordId=pw_theirs.body["id"]),
        key=ADMIN_KEY,
    )
    assert refused.status == 404
    assert api.call("POST", LOGIN, path_params=link_theirs, body={"password": "theirs-password"}).status == 200


def test_a_session_of_one_insights_link_does_not_open_another_insight_of_the_space(api: Api, report_id: str) -> None:
    _create(api, report_id, name="First")
    _create(api, report_id, name="Second")
    first = _share(api, 1, password_required=True)
    second = _share(api, 2, password_required=True)
    for n in (1, 2):
        api.call("POST", ONE + "/sharing/passwords", path_params=_one(n), body={"raw_password": "same-password"},
                 key=ADMIN_KEY)  # fmt: skip
    session = api.call(
        "POST", LOGIN, path_params={"accessToken": first["access_token"]}, body={"password": "same-password"}
    ).body["token"]
    opened = api.call(
        "GET",
        SHARED,
        path_params={"accessToken": second["access_token"]},
        headers={"Authorization": f"Bearer {session}"},
    )
    assert opened.status == 401


# --- sharing lifecycle ---------------------------------------------------------------------------
def test_a_link_follows_the_insight_through_delete_restore_and_disable(api: Api, report_id: str, clock: Clock) -> None:
    _create(api, report_id)
    link = {"accessToken": _share(api, 1)["access_token"]}
    assert api.call("GET", SHARED, path_params=link).status == 200
    clock.advance(timedelta(seconds=1))
    assert _patch(api, 1, {"deleted": True}).status == 200
    assert api.call("GET", SHARED, path_params=link).status == 404
    assert api.call("POST", LOGIN, path_params=link, body={"password": "whatever-pw"}).status == 404
    clock.advance(timedelta(seconds=1))
    assert _patch(api, 1, {"deleted": False}).status == 200
    assert api.call("GET", SHARED, path_params=link).status == 200
    off = api.call("PATCH", ONE + "/sharing", path_params=_one(1), body={"enabled": False}, key=ADMIN_KEY)
    assert off.body["access_token"] == link["accessToken"]
    assert api.call("GET", SHARED, path_params=link).status == 404
    _share(api, 1)
    assert api.call("GET", SHARED, path_params=link).status == 200
    # Sharing null fields change nothing; settings are kept as sent.
    kept = api.call(
        "PATCH",
        ONE + "/sharing",
        path_params=_one(1),
        body={"enabled": None, "settings": {"whitelabel": True, "nested": {"ü": [1, 2]}}},
        key=ADMIN_KEY,
    ).body
    assert kept["enabled"] is True and kept["settings"] == {"whitelabel": True, "nested": {"ü": [1, 2]}}


def test_the_public_link_shows_the_current_insight_not_a_snapshot_and_no_filing(
    api: Api, report_id: str, clock: Clock
) -> None:
    _create(api, report_id, name="Before", tags=["secret-tag"], dashboards=[7], favorited=True)
    link = {"accessToken": _share(api, 1)["access_token"]}
    clock.advance(timedelta(seconds=1))
    assert _patch(api, 1, {"name": "After", "tags": ["another-secret"]}).status == 200
    api.call("POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": [1]}, key=ADMIN_KEY)
    shown = api.call("GET", SHARED, path_params=link).body
    assert shown["name"] == "After"
    text = json.dumps(shown)
    assert "secret" not in text and "test admin" not in text
    assert "last_viewed_at" not in shown and "deleted" not in shown


def test_shared_with_a_malformed_authorization_header_is_401_not_500(api: Api, report_id: str) -> None:
    _create(api, report_id)
    link = {"accessToken": _share(api, 1, password_required=True)["access_token"]}
    for header in [
        f"Bearer {ADMIN_KEY}",
        f"Bearer {link['accessToken']}",
        "Bearer",
        "Bearer ",
        "Basic abc",
        "Bearer " + "x" * 5000,
        "Bearer \u00e9\u00e9",
        "bearer shs_x y",
    ]:
        got = api.call("GET", SHARED, path_params=link, headers={"Authorization": header})
        assert got.status == 401, (header[:20], got.status)


# --- lists ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", seeds([1, 2, 3]))
def test_following_next_links_lists_every_insight_once_in_order(
    api: Api, report_id: str, clock: Clock, seed: int
) -> None:
    rng = random.Random(seed)
    total = rng.randint(5, 14)
    for n in range(total):
        if rng.random() < 0.6:  # some share an instant
            clock.advance(timedelta(milliseconds=rng.choice([1, 1000, 60_000])))
        _create(api, report_id, name=f"I{n}", favorited=rng.random() < 0.5, tags=[rng.choice(["a", "b"])])
    for _ in range(rng.randint(0, 4)):  # a few PATCHes reorder it
        clock.advance(timedelta(seconds=1))
        assert _patch(api, rng.randint(1, total), {"description": f"d{rng.random()}"}).status == 200
    deleted = rng.randint(1, total)
    clock.advance(timedelta(seconds=1))
    _patch(api, deleted, {"deleted": True})
    for params in ({}, {"favorited": "true"}, {"tags": "a"}, {"basic": "true"}):
        whole = api.call("GET", INSIGHTS, path_params=SP, query={**params, "limit": "1000"}, key=ADMIN_KEY).body
        expected = [r["id"] for r in whole["results"]]
        assert whole["count"] == len(expected) and deleted not in expected
        limit = rng.randint(1, 4)
        seen: list[int] = []
        page = api.call("GET", INSIGHTS, path_params=SP, query={**params, "limit": str(limit)}, key=ADMIN_KEY).body
        hops = 0
        while True:
            assert page["count"] == len(expected)
            seen.extend(r["id"] for r in page["results"])
            if page["next"] is None:
                break
            url = urlparse(page["next"])
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            for k, v in params.items():
                assert query.get(k) == v, (k, page["next"])  # filters carried over
            page = api.call("GET", INSIGHTS, path_params=SP, query=query, key=ADMIN_KEY).body
            hops += 1
            assert hops < 50
        assert seen == expected, (params, limit)


def test_offset_past_the_end_is_an_empty_page_with_a_previous_link(api: Api, report_id: str) -> None:
    for _ in range(3):
        _create(api, report_id)
    page = api.call("GET", INSIGHTS, path_params=SP, query={"limit": "2", "offset": "10"}, key=ADMIN_KEY).body
    assert (page["count"], page["results"], page["next"]) == (3, [], None)
    assert page["previous"] is not None
    for bad in ({"limit": "0"}, {"limit": "-1"}, {"offset": "-1"}, {"limit": "x"}, {"limit": "1001"}):
        assert api.call("GET", INSIGHTS, path_params=SP, query=bad, key=ADMIN_KEY).status == 400, bad


def test_favorited_false_lists_only_the_others(api: Api, report_id: str) -> None:
    _create(api, report_id, name="fav", favorited=True)
    _create(api, report_id, name="plain")
    got = api.call("GET", INSIGHTS, path_params=SP, query={"favorited": "false"}, key=ADMIN_KEY).body
    assert [r["name"] for r in got["results"]] == ["plain"]
    assert api.call("GET", INSIGHTS, path_params=SP, query={"favorited": "maybe"}, key=ADMIN_KEY).status == 400


@pytest.mark.parametrize("seed", seeds([11, 12]))
def test_activity_pages_partition_the_log(api: Api, report_id: str, clock: Clock, seed: int) -> None:
    rng = random.Random(seed)
    for n in range(3):
        _create(api, report_id, name=f"I{n}")
    deleted: set[int] = set()
    for _ in range(rng.randint(4, 10)):
        if rng.random() < 0.7:
            clock.advance(timedelta(seconds=rng.randint(1, 100)))
        target = rng.randint(1, 3)
        body = rng.choice([{"name": f"n{rng.random()}"}, {"deleted": True}, {"deleted": False}, {"tags": ["x"]}])
        restores = body.get("deleted") is False
        # A deleted insight is a 404 except for the PATCH that restores it (as PostHog).
        assert _patch(api, target, body).status == (404 if target in deleted and not restores else 200)
        if target not in deleted and body.get("deleted") is True:
            deleted.add(target)
        elif restores:
            deleted.discard(target)
    live = sorted({1, 2, 3} - deleted) or [1]
    if not set(live) - deleted:
        assert _patch(api, 1, {"deleted": False}).status == 200
    for route, params in ((INSIGHTS + "/activity", SP), (ONE + "/activity", _one(rng.choice(live)))):
        whole = api.call("GET", route, path_params=params, query={"limit": "1000"}, key=ADMIN_KEY).body
        assert whole["total_count"] == len(whole["results"])
        stamps = [e["created_at"] for e in whole["results"]]
        assert stamps == sorted(stamps, reverse=True)
        limit = rng.randint(1, 3)
        seen: list[Any] = []
        page_no = 1
        while True:
            page = api.call(
                "GET", route, path_params=params, query={"limit": str(limit), "page": str(page_no)}, key=ADMIN_KEY
            ).body
            seen.extend(page["results"])
            if page["next"] is None:
                break
            page_no += 1
        assert seen == whole["results"]


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize(
    ("method", "route", "body", "status"),
    [
        ("GET", INSIGHTS, None, 200),
        ("POST", INSIGHTS, "create", 201),
        ("GET", INSIGHTS + "/activity", None, 200),
        ("GET", ONE + "/activity", None, 200),
        ("POST", INSIGHTS + "/viewed", {"insight_ids": [1]}, 200),
        ("GET", INSIGHTS + "/my_last_viewed", None, 200),
        ("GET", INSIGHTS + "/trending", None, 200),
        ("GET", ONE, None, 200),
        ("PATCH", ONE, {"name": "renamed"}, 200),
        ("DELETE", ONE, None, 405),
        ("GET", ONE + "/sharing", None, 200),
        ("GET", ONE + "/thresholds", None, 200),
    ],
)
def test_format_on_every_route_that_takes_it_keeps_the_routes_status(
    api: Api, report_id: str, method: str, route: str, body: Any, status: int, fmt: str
) -> None:
    """The reference lists ``format=csv|json`` on list, create, update, viewed...: either value answers
    with the route's own status (201 for a create), never a 500; CSV as ``text/csv``."""
    _create(api, report_id)
    api.call("POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": [1]}, key=ADMIN_KEY)
    if body == "create":
        body = {"query": _query(report_id)}
    got = api.call(method, route, path_params=_one(1), query={"format": fmt}, body=body, key=ADMIN_KEY)
    assert got.status == status, (got.status, got.body)
    if status < 300 and route != INSIGHTS + "/viewed":  # /viewed answers no body, in either format
        kind = "text/csv" if fmt == "csv" else "application/json"
        assert got.headers["Content-Type"].startswith(kind), got.headers


def test_a_patch_in_csv_answers_the_one_insight_it_changed(api: Api, report_id: str) -> None:
    _create(api, report_id)
    got = api.call("PATCH", ONE, path_params=_one(1), query={"format": "csv"}, body={"name": "csv"}, key=ADMIN_KEY)
    assert got.status == 200
    header, row = got.body.splitlines()
    assert header.startswith("id,short_id,name,") and row.startswith("1,") and ",csv," in row
    assert _get(api, 1).body["name"] == "csv"


@pytest.mark.parametrize("insight_id", ["2000000001", "18446744073709551616", "0", "01", "0001"])
@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("GET", ONE),
        ("PATCH", ONE),
        ("GET", ONE + "/activity"),
        ("GET", ONE + "/sharing"),
        ("POST", ONE + "/sharing/refresh"),
        ("GET", ONE + "/thresholds"),
    ],
)
def test_an_insight_id_no_insight_can_have_is_404(
    api: Api, report_id: str, insight_id: str, method: str, route: str
) -> None:
    """An id past the ids the service writes, or in a spelling it never writes (a leading zero), names
    nothing: 404 in PostHog's shape, as any unknown id (API.md Errors)."""
    _create(api, report_id)
    body = {"name": "x"} if method == "PATCH" else None
    got = api.call(method, route, path_params=_one(insight_id), body=body, key=ADMIN_KEY)
    assert got.status == 404, (got.status, got.body)
    assert (got.body["type"], got.body["code"]) == ("invalid_request", "not_found"), got.body


@pytest.mark.parametrize("insight_id", ["-1", "+1", " 1", "1.0", "abc"])
def test_an_insight_id_that_is_no_number_stays_a_400(api: Api, report_id: str, insight_id: str) -> None:
    _create(api, report_id)
    got = api.call("GET", ONE, path_params=_one(insight_id), key=ADMIN_KEY)
    assert got.status == 400 and got.body["attr"] == "insightId", (got.status, got.body)


@pytest.mark.parametrize("token", ["a", "abc", "shr_", "shr_abc", "x" * 129, "shr_" + "é" * 30, "shr_%00abcdefgh"])
def test_a_link_no_one_was_given_is_404(api: Api, report_id: str, token: str) -> None:
    """API.md: 404 for an unknown link, whatever its spelling (a short or long token is one too)."""
    _create(api, report_id)
    _share(api, 1)
    assert api.call("GET", SHARED, path_params={"accessToken": token}).status == 404
    login = api.call("POST", LOGIN, path_params={"accessToken": token}, body={"password": "whatever1"})
    assert login.status == 404, login.status


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "null",
        "[]",
        '{"password": 12345678}',
        '{"password": ""}',
        '{"password": "' + "p" * 300 + '"}',
        '{"password": "ok-password", "extra": 1}',
        "{bad json",
    ],
)
def test_hostile_login_bodies_are_4xx_and_count_no_failure(api: Api, report_id: str, raw: str) -> None:
    _create(api, report_id)
    link = {"accessToken": _share(api, 1, password_required=True)["access_token"]}
    api.call("POST", ONE + "/sharing/passwords", path_params=_one(1), body={"raw_password": "right-password"},
             key=ADMIN_KEY)  # fmt: skip
    for _ in range(11):
        got = api.call("POST", LOGIN, path_params=link, raw_body=raw)
        assert 400 <= got.status < 500 and got.status != 429, (raw[:30], got.status, got.body)
    assert api.call("POST", LOGIN, path_params=link, body={"password": "right-password"}).status == 200


def test_a_body_over_one_mib_is_413(api: Api, report_id: str) -> None:
    _create(api, report_id)
    raw = json.dumps({"description": "x" * (1024 * 1024 + 10)})
    assert api.call("PATCH", ONE, path_params=_one(1), raw_body=raw, key=ADMIN_KEY).status == 413
    assert api.call("POST", INSIGHTS, path_params=SP, raw_body=raw, key=ADMIN_KEY).status == 413


def test_a_query_naming_another_spaces_report_is_400(api: Api, report_id: str, other_space: str) -> None:
    """Report ids are numbered per space: InsightsReports-2 exists only in the other space here."""
    _create(api, report_id)
    for name in ("Theirs 1", "Theirs 2"):
        theirs = _report(api, OSP, OTHER_KEY, name=name)
    assert theirs == "InsightsReports-2"
    refused = _patch(api, 1, {"query": _query(theirs)})
    assert refused.status == 400, refused.body
    assert refused.body["attr"] == "query.reportId"
    made = api.call("POST", INSIGHTS, path_params=SP, body={"query": _query(theirs)}, key=ADMIN_KEY)
    assert made.status == 400, made.body


def test_the_list_shows_the_callers_last_viewed_at_as_retrieve_does(api: Api, report_id: str, clock: Clock) -> None:
    """API.md: an insight carries ``last_viewed_at`` (the caller's). The list answers insights too, and
    can even filter on that time (``last_viewed_date_from``): it must show it, as retrieve does."""
    _create(api, report_id)
    clock.advance(timedelta(minutes=5))
    assert (
        api.call("POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": [1]}, key=ADMIN_KEY).status == 200
    )
    retrieved = _get(api, 1).body["last_viewed_at"]
    assert retrieved is not None
    listed = api.call("GET", INSIGHTS, path_params=SP, query={"last_viewed_date_from": "-1h"}, key=ADMIN_KEY).body[
        "results"
    ]
    assert [r["id"] for r in listed] == [1]
    assert listed[0]["last_viewed_at"] == retrieved, listed[0]["last_viewed_at"]


def test_sharing_patch_hostile_values_are_400_and_change_nothing(api: Api, report_id: str) -> None:
    _create(api, report_id)
    before = api.call("GET", ONE + "/sharing", path_params=_one(1), key=ADMIN_KEY).body
    for body in (
        {"enabled": "maybe"},
        {"password_required": 1.5},
        {"settings": [1]},
        {"settings": {"": 1}},
        {"settings": {"big": "x" * 20_000}},
        {"access_token": "shr_mine"},
        {"share_passwords": []},
    ):
        got = api.call("PATCH", ONE + "/sharing", path_params=_one(1), body=body, key=ADMIN_KEY)
        assert got.status == 400, (body, got.status, got.body)
    assert api.call("GET", ONE + "/sharing", path_params=_one(1), key=ADMIN_KEY).body == before


@pytest.mark.parametrize(
    "params",
    [
        {"dashboards": "[1e400]"},
        {"dashboards": "[[1]]"},
        {"dashboards": "[null]"},
        {"dashboards": '{"a": 1}'},
        {"tags": "[null]"},
        {"tags": '[{"a": 1}]'},
        {"tags": "[" * 300},
        {"tags": "[" * 100 + "]" * 100},
        {"search": "\u0000\ud7ff\uffff"},
        {"created_date_from": "-99999999999y"},
        {"date_to": "-1qEnd"},
        {"last_viewed_date_from": "-0d"},
        {"refresh": "force_blocking", "basic": "true", "limit": "1000"},
        {"offset": "1000000", "limit": "1000"},
        {"insight": "\u00e9"},
        {"format": "csv", "basic": "true"},
    ],
)
def test_hostile_list_parameters_are_never_a_500(api: Api, report_id: str, params: dict[str, str]) -> None:
    _create(api, report_id, tags=["a"])
    got = api.call("GET", INSIGHTS, path_params=SP, query=params, key=ADMIN_KEY)
    assert got.status < 500, (params, got.status, got.body)


def _serialise_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    """One DynamoDB call at a time (as DynamoDB serialises writes to one item; moto does not lock)."""
    import threading

    from dora_insights.dal.store import Store

    lock = threading.Lock()
    call = Store.call

    def serialised(self: Store, operation: str, **kwargs: Any) -> Any:
        with lock:
            return call(self, operation, **kwargs)

    monkeypatch.setattr(Store, "call", serialised)


@pytest.mark.parametrize("seed", seeds([21, 22, 23]))
def test_concurrent_refreshes_and_toggles_leave_exactly_one_live_link(
    api: Api, report_id: str, aws: Any, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import boto3

    rng = random.Random(seed)
    _create(api, report_id)
    first = _share(api, 1)["access_token"]
    _serialise_dynamodb(monkeypatch)
    ops = [rng.choice(["refresh", "refresh", "on", "off", "settings"]) for _ in range(12)]

    def run(op: str) -> Any:
        if op == "refresh":
            return api.call("POST", ONE + "/sharing/refresh", path_params=_one(1), key=ADMIN_KEY)
        body = {"on": {"enabled": True}, "off": {"enabled": False}, "settings": {"settings": {"n": rng.random()}}}[op]
        return api.call("PATCH", ONE + "/sharing", path_params=_one(1), body=body, key=ADMIN_KEY)

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(run, ops))
    assert all(a.status in (200, 409) for a in answers), [a.status for a in answers]
    _share(api, 1)  # enabled at the end
    final = api.call("GET", ONE + "/sharing", path_params=_one(1), key=ADMIN_KEY).body["access_token"]
    seen = {first} | {a.body["access_token"] for a in answers if a.status == 200}
    assert api.call("GET", SHARED, path_params={"accessToken": final}).status == 200
    for token in seen - {final}:
        assert api.call("GET", SHARED, path_params={"accessToken": token}).status == 404
    items = boto3.client("dynamodb").scan(TableName=aws.table_name)["Items"]
    lookups = [i for i in items if i["PK"]["S"].startswith("SHARE#")]
    assert len(lookups) == 1, [i["PK"]["S"] for i in lookups]


@pytest.mark.parametrize("seed", seeds([31, 32]))
def test_a_share_link_shows_its_own_spaces_result_and_nothing_else(
    api: Api, clock: Clock, other_space: str, seed: int
) -> None:
    from tests.support.native import create_deployment

    rng = random.Random(seed)
    counts = {SP["spaceId"]: rng.randint(1, 4), OTHER_SPACE: rng.randint(5, 9)}
    for space, key in ((SP["spaceId"], ADMIN_KEY), (OTHER_SPACE, OTHER_KEY)):
        for n in range(counts[space]):
            at = f"2024-02-{rng.randint(20, 29):02d}T{rng.randint(0, 23):02d}:00:00Z"
            create_deployment(api, space=space, key=key, finished_at=at, version=f"1.{n}", project="shop")
    ours_report = _report(api, SP, ADMIN_KEY)
    theirs_report = _report(api, OSP, OTHER_KEY)
    q = {"timeRange": "LastMonth", "granularity": "Weekly"}
    _create(api, ours_report, query=_query(ours_report, **q))
    _create(api, theirs_report, sp=OSP, key=OTHER_KEY, query=_query(theirs_report, **q))
    links = {}
    for sp, key in ((SP, ADMIN_KEY), (OSP, OTHER_KEY)):
        links[sp["spaceId"]] = _share(api, 1, sp=sp, key=key)["access_token"]
    for sp, key in ((SP, ADMIN_KEY), (OSP, OTHER_KEY)):
        private = api.call("GET", ONE, path_params=_one(1, sp), query={"refresh": "force_blocking"}, key=key).body[
            "result"
        ]
        public = api.call("GET", SHARED, path_params={"accessToken": links[sp["spaceId"]]}).body["result"]
        assert public == private
        total = sum(sum(v for v in s["values"] if v) for s in public["series"])
        assert total == counts[sp["spaceId"]], (sp, public)


def test_soft_delete_twice_and_restore_twice_record_one_entry_each(api: Api, report_id: str, clock: Clock) -> None:
    """A second delete finds no insight (404, as PostHog); a second restore changes nothing."""
    _create(api, report_id)
    for deleted, status in ((True, 200), (True, 404), (False, 200), (False, 200)):
        clock.advance(timedelta(seconds=1))
        assert _patch(api, 1, {"deleted": deleted}).status == status
    log = api.call("GET", ONE + "/activity", path_params=_one(1), key=ADMIN_KEY).body
    assert [e["activity"] for e in log["results"]] == ["restored", "deleted", "created"]
    assert api.call("GET", INSIGHTS, path_params=SP, key=ADMIN_KEY).body["count"] == 1


def test_force_cache_shows_what_the_last_refresh_computed(api: Api, clock: Clock) -> None:
    from tests.support.native import create_deployment

    create_deployment(api, finished_at="2024-02-27T10:00:00Z", version="1")
    report = _report(api, SP, ADMIN_KEY)
    _create(api, report, query=_query(report, timeRange="LastMonth", granularity="Weekly"))

    def total(**params: str) -> tuple[float, Any]:
        body = api.call("GET", ONE, path_params=_one(1), query=params or None, key=ADMIN_KEY).body
        return sum(sum(v for v in s["values"] if v) for s in body["result"]["series"]), body["last_refresh"]

    first, first_as_of = total(refresh="force_cache")
    assert first == 1
    clock.advance(timedelta(minutes=1))
    create_deployment(api, finished_at="2024-02-28T10:00:00Z", version="2")
    clock.advance(timedelta(minutes=1))
    cached, cached_as_of = total(refresh="force_cache")
    assert (cached, cached_as_of) == (1, first_as_of)
    fresh, fresh_as_of = total(refresh="force_blocking")
    assert fresh == 2 and fresh_as_of > first_as_of
    assert total(refresh="force_cache") == (2, fresh_as_of)
    listed = api.call("GET", INSIGHTS, path_params=SP, query={"refresh": "force_cache"}, key=ADMIN_KEY).body["results"]
    assert listed[0]["last_refresh"] == fresh_as_of
    public = api.call("GET", SHARED, path_params={"accessToken": _share(api, 1)["access_token"]}).body
    assert public["last_refresh"] >= fresh_as_of


@pytest.mark.parametrize("dashboards", [[-5, 0, 7], [0], [7, -1]])
def test_a_body_refuses_dashboard_ids_below_1(api: Api, report_id: str, dashboards: list[int]) -> None:
    """PostHog's dashboard ids are positive, and the list filter reads ASCII digits (API.md): a body
    naming a dashboard id below 1 is a 400 naming the item, on create and on PATCH, and stores nothing."""
    made = api.call(
        "POST", INSIGHTS, path_params=SP, body={"query": _query(report_id), "dashboards": dashboards}, key=ADMIN_KEY
    )
    assert made.status == 400, made.body
    assert made.body["attr"].startswith("dashboards["), made.body
    assert api.call("GET", INSIGHTS, path_params=SP, key=ADMIN_KEY).body["count"] == 0
    _create(api, report_id, dashboards=[3])
    refused = _patch(api, 1, {"dashboards": dashboards})
    assert refused.status == 400 and refused.body["attr"].startswith("dashboards["), refused.body
    assert _get(api, 1).body["dashboards"] == [3]


def test_every_dashboard_id_a_body_takes_can_be_filtered_on(api: Api, report_id: str) -> None:
    made = _create(api, report_id, dashboards=[1, 7, 10**15])
    for value in ("[1]", "7", "1,7", f"[{10**15}]"):
        got = api.call("GET", INSIGHTS, path_params=SP, query={"dashboards": value}, key=ADMIN_KEY)
        assert got.status == 200, (value, got.status, got.body)
        assert [r["id"] for r in got.body["results"]] == [made["id"]], value


def test_list_links_under_the_environments_prefix_stay_there(api: Api, report_id: str) -> None:
    for _ in range(3):
        _create(api, report_id)
    env = "/api/environments/{spaceId}/insights"
    page = api.call("GET", env, path_params=SP, query={"limit": "1", "offset": "1"}, key=ADMIN_KEY).body
    assert "/api/environments/Spaces-1/insights?" in page["next"]
    assert "/api/environments/Spaces-1/insights?" in page["previous"]


@pytest.mark.parametrize("answer", ["patch", "trending", "list_basic", "list", "list_csv", "my_last_viewed"])
def test_every_answer_of_an_insight_shows_the_callers_last_viewed_at(
    api: Api, report_id: str, clock: Clock, answer: str
) -> None:
    """API.md: ``last_viewed_at`` (the caller's) is a field of the insight, whatever answer carries it."""
    _create(api, report_id)
    clock.advance(timedelta(minutes=5))
    api.call("POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": [1]}, key=ADMIN_KEY)
    retrieved = _get(api, 1).body["last_viewed_at"]
    assert retrieved is not None
    if answer == "patch":
        shown = _patch(api, 1, {"name": "renamed"}).body
    elif answer == "trending":
        shown = api.call("GET", INSIGHTS + "/trending", path_params=SP, key=ADMIN_KEY).body["results"][0]
    elif answer == "list_basic":
        shown = api.call("GET", INSIGHTS, path_params=SP, query={"basic": "true"}, key=ADMIN_KEY).body["results"][0]
    elif answer == "list":
        shown = api.call("GET", INSIGHTS, path_params=SP, key=ADMIN_KEY).body["results"][0]
    elif answer == "my_last_viewed":
        shown = api.call("GET", INSIGHTS + "/my_last_viewed", path_params=SP, key=ADMIN_KEY).body[0]
    else:
        text = api.call("GET", INSIGHTS, path_params=SP, query={"format": "csv"}, key=ADMIN_KEY).body
        header = text.splitlines()[0].split(",")
        assert "last_viewed_at" in header and text.splitlines()[1].endswith(retrieved), text
        return
    assert shown["last_viewed_at"] == retrieved, shown["last_viewed_at"]


def test_last_viewed_at_is_each_callers_own_and_null_when_never_viewed(api: Api, report_id: str, clock: Clock) -> None:
    body = {"name": "alice", "user": "alice@example.com", "scopes": ["insight:read", "insight:write"]}
    alice = api.call("POST", "/api/{spaceId}/apikeys", path_params=SP, body=body, key=ADMIN_KEY)
    assert alice.status == 201, alice.body
    other_key_same_space = str(alice.body["key"])
    made = _create(api, report_id)
    assert made["last_viewed_at"] is None  # a new insight: no one has viewed it
    _create(api, report_id, name="Unviewed")
    clock.advance(timedelta(minutes=5))
    api.call("POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": [1]}, key=ADMIN_KEY)
    mine = {
        r["id"]: r["last_viewed_at"] for r in api.call("GET", INSIGHTS, path_params=SP, key=ADMIN_KEY).body["results"]
    }
    assert mine[1] is not None and mine[2] is None
    theirs = api.call("GET", INSIGHTS, path_params=SP, key=other_key_same_space).body["results"]
    assert all(r["last_viewed_at"] is None for r in theirs)
    assert _patch(api, 1, {"name": "x"}, key=other_key_same_space).body["last_viewed_at"] is None


def test_the_largest_insight_a_body_may_describe_is_stored_and_its_patch_logged(api: Api, report_id: str) -> None:
    def big(mark: str) -> dict[str, Any]:
        return {
            "name": mark * 400,
            "derived_name": mark * 400,
            "description": mark * 4000,
            "tags": [f"{n:02d}" + mark * 98 for n in range(50)],
            "dashboards": list(range(10**15, 10**15 + 100)),
        }

    made = api.call("POST", INSIGHTS, path_params=SP, body={"query": _query(report_id), **big("𝔘")}, key=ADMIN_KEY)
    assert made.status == 201, (made.status, str(made.body)[:200])
    patched = _patch(api, made.body["id"], big("🚀"))
    assert patched.status == 200, (patched.status, str(patched.body)[:200])
    assert _get(api, made.body["id"]).body["tags"] == big("🚀")["tags"]
    log = api.call("GET", ONE + "/activity", path_params=_one(made.body["id"]), key=ADMIN_KEY).body
    assert log["total_count"] == 2


@pytest.mark.parametrize("insight_id", [0, -1, 2**63, 10**30, -(10**30)])
def test_viewed_with_an_id_no_insight_has_is_404_not_500(api: Api, report_id: str, insight_id: int) -> None:
    _create(api, report_id)
    got = api.call("POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": [1, insight_id]}, key=ADMIN_KEY)
    assert got.status in (400, 404), (got.status, got.body)
    assert api.call("GET", INSIGHTS + "/my_last_viewed", path_params=SP, key=ADMIN_KEY).body == []


def test_an_insight_whose_report_was_deleted_still_answers_everywhere(api: Api, report_id: str, clock: Clock) -> None:
    _create(api, report_id)
    link = {"accessToken": _share(api, 1)["access_token"]}
    gone = api.call("DELETE", "/api/{spaceId}/insights/reports/{reportId}", path_params={**SP, "reportId": report_id},
                    key=ADMIN_KEY)  # fmt: skip
    assert gone.status in (200, 204), gone.body
    clock.advance(timedelta(seconds=1))
    for got in (
        _get(api, 1),
        api.call("GET", ONE, path_params=_one(1), query={"refresh": "force_blocking"}, key=ADMIN_KEY),
        api.call("GET", INSIGHTS, path_params=SP, query={"refresh": "force_blocking"}, key=ADMIN_KEY),
        api.call("GET", SHARED, path_params=link),
        _patch(api, 1, {"name": "orphan"}),
    ):
        assert got.status == 200, (got.status, got.body)
    assert _get(api, 1).body["result"] is None
    resent = _patch(api, 1, {"query": _get(api, 1).body["query"]})
    assert resent.status == 400 and resent.body["attr"] == "query.reportId"


def test_an_activity_log_longer_than_one_query_page_lists_every_entry_once(
    api: Api, report_id: str, clock: Clock
) -> None:
    """The log is read 500 entries a Query: a log of a few more must page across that boundary."""
    _create(api, report_id)
    for n in range(504):
        if n % 3:
            clock.advance(timedelta(milliseconds=1))
        assert _patch(api, 1, {"order": n}).status == 200
    for route, params in ((ONE + "/activity", _one(1)), (INSIGHTS + "/activity", SP)):
        whole = api.call("GET", route, path_params=params, query={"limit": "1000"}, key=ADMIN_KEY).body
        assert whole["total_count"] == 505
        orders = [e["detail"]["changes"][0]["after"] for e in whole["results"][:-1]]
        assert orders == list(range(503, -1, -1))
        paged: list[Any] = []
        for page in (1, 2, 3):
            paged += api.call(
                "GET", route, path_params=params, query={"limit": "251", "page": str(page)}, key=ADMIN_KEY
            ).body["results"]
        assert paged == whole["results"]


def test_concurrent_first_reads_of_sharing_agree_on_one_token(
    api: Api, report_id: str, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import boto3

    _create(api, report_id)
    _serialise_dynamodb(monkeypatch)

    def read(_: int) -> Any:
        return api.call("GET", ONE + "/sharing", path_params=_one(1), key=ADMIN_KEY)

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(read, range(6)))
    assert {a.status for a in answers} == {200}
    assert len({a.body["access_token"] for a in answers}) == 1
    items = boto3.client("dynamodb").scan(TableName=aws.table_name)["Items"]
    assert len([i for i in items if i["PK"]["S"].startswith("SHARE#")]) == 1


def test_a_soft_deleted_insight_is_gone_except_for_its_undelete_as_posthog(
    api: Api, report_id: str, clock: Clock
) -> None:
    """PostHog reads insights through a manager that leaves soft-deleted ones out; only a PATCH that
    undeletes reaches them (``Insight.objects_including_soft_deleted``, PostHog PR #15285). A deleted
    insight is so a 404 for retrieve and for a PATCH that does not restore it."""
    _create(api, report_id, name="Kept")
    clock.advance(timedelta(seconds=1))
    assert _patch(api, 1, {"deleted": True}).status == 200
    retrieved = _get(api, 1)
    renamed = _patch(api, 1, {"name": "edited while deleted"})
    nulled = _patch(api, 1, {"deleted": None, "name": "null is no restore"})
    activity = api.call("GET", ONE + "/activity", path_params=_one(1), key=ADMIN_KEY)
    assert (retrieved.status, renamed.status, nulled.status, activity.status) == (404, 404, 404, 404)
    assert retrieved.body["code"] == "not_found"
    # Its sharing and thresholds stay reachable (to turn a link or an alert off); its link shows nothing.
    assert api.call("GET", ONE + "/sharing", path_params=_one(1), key=ADMIN_KEY).status == 200
    assert api.call("GET", ONE + "/thresholds", path_params=_one(1), key=ADMIN_KEY).status == 200
    # The project's log keeps its entries; the list leaves it out.
    log = api.call("GET", INSIGHTS + "/activity", path_params=SP, key=ADMIN_KEY).body
    assert [e["activity"] for e in log["results"]] == ["deleted", "created"]
    assert api.call("GET", INSIGHTS, path_params=SP, key=ADMIN_KEY).body["count"] == 0
    clock.advance(timedelta(seconds=1))
    restored = _patch(api, 1, {"deleted": False, "name": "Back"})
    assert restored.status == 200
    assert (restored.body["deleted"], restored.body["name"]) == (False, "Back")
    assert _get(api, 1).body["name"] == "Back"
    entries = api.call("GET", ONE + "/activity", path_params=_one(1), key=ADMIN_KEY).body["results"]
    assert [e["activity"] for e in entries] == ["restored", "deleted", "created"]
