"""Paging every list route while other clients write between two pages.

A client walks a list page by page (a cursor, Datadog's ``meta.page.after``, an offset); between its
requests other clients create, correct, re-send and delete. API.md (Consistency) promises the cursor
lists "never repeat or skip what existed throughout", keep their documented order, refuse a cursor of
another list or space with a 400 (never a 500, never the other space's data), and say on the last page
that no page follows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.integration.test_datadog_read import create as _dd_create
from tests.integration.test_datadog_read import fail as _dd_fail
from tests.support.fixtures import OTHER_KEY, OTHER_SPACE
from tests.support.native import create_deployment

SP = {"spaceId": "Spaces-1"}
DEPLOYMENTS = "/api/{spaceId}/deployments"
ONE = "/api/{spaceId}/deployments/{deploymentId}"
CORRECTIONS = ONE + "/corrections"
FAILURES = "/api/{spaceId}/failures"
ONE_FAILURE = "/api/{spaceId}/failures/{failureId}"
DD = {"DD-API-KEY": ADMIN_KEY}
DD_DEPLOYMENTS = "/api/v2/dora/deployments"
DD_FAILURES = "/api/v2/dora/failures"
T0 = 1_700_000_000
HOUR = 3600


# --- helpers ------------------------------------------------------------------------------------------
def _day(n: int) -> str:
    return f"2024-03-{n:02d}T00:00:00Z"


def _native_page(
    api: Api, route: str = DEPLOYMENTS, *, space: str = "Spaces-1", key: str = ADMIN_KEY, **query: str
) -> HttpResult:
    return api.call("GET", route, path_params={"spaceId": space}, query=query, key=key)


def _ok(result: HttpResult) -> dict[str, Any]:
    assert result.status == 200, result.body
    return result.body  # type: ignore[no-any-return]


def _native_400(result: HttpResult) -> None:
    assert result.status == 400, (result.status, result.body)
    assert set(result.body) == {"message", "errors"}, result.body


def _create_failure(api: Api, started_at: str, **fields: Any) -> dict[str, Any]:
    body = {"project": "shop", "environment": "production", "name": "boom", "started_at": started_at, **fields}
    made = api.call("POST", FAILURES, path_params=SP, body=body, key=ADMIN_KEY)
    assert made.status == 201, made.body
    return made.body  # type: ignore[no-any-return]


def _dd_list(api: Api, route: str = DD_DEPLOYMENTS, headers: Any = DD, **attributes: Any) -> HttpResult:
    return api.call("POST", route, body={"data": {"attributes": attributes}}, headers=headers)


def _after(body: dict[str, Any]) -> str | None:
    return body.get("meta", {}).get("page", {}).get("after")  # type: ignore[no-any-return]


def _dd_400(result: HttpResult) -> None:
    assert result.status == 400, (result.status, result.body)
    assert result.body["errors"][0]["status"] == "400", result.body


# --- native deployments --------------------------------------------------------------------------------
def test_native_deployment_walk_survives_creates_corrections_and_deleting_the_cursor_item(api: Api) -> None:
    made = {n: create_deployment(api, finished_at=_day(n), version=f"v{n}")["id"] for n in range(2, 12)}
    seen: list[str] = []
    body = _ok(_native_page(api, limit="3"))  # days 11, 10, 9
    seen += [d["id"] for d in body["items"]]
    cursor_item = body["items"][-1]["id"]
    # Meanwhile: a newer and an older deployment arrive, the cursor's own item is removed, one still to
    # come is corrected and another one still to come is removed.
    create_deployment(api, finished_at=_day(20))
    create_deployment(api, finished_at=_day(1))
    assert api.call("DELETE", ONE, path_params={**SP, "deploymentId": cursor_item}, key=ADMIN_KEY).status == 204
    patched = api.call(
        "PATCH", ONE, path_params={**SP, "deploymentId": made[7]}, body={"version": "fixed"}, key=ADMIN_KEY
    )
    assert patched.status == 200, patched.body
    assert api.call("DELETE", ONE, path_params={**SP, "deploymentId": made[5]}, key=ADMIN_KEY).status == 204
    cursor = body["next_cursor"]
    finishes: list[str] = [d["finished_at"] for d in body["items"]]
    while cursor:
        body = _ok(_native_page(api, limit="3", cursor=cursor))
        seen += [d["id"] for d in body["items"]]
        finishes += [d["finished_at"] for d in body["items"]]
        cursor = body["next_cursor"]
    assert len(seen) == len(set(seen)), seen
    throughout = {made[n] for n in (2, 3, 4, 6, 8, 10, 11)}
    assert throughout <= set(seen)
    assert made[7] in seen  # corrected, not moved
    assert finishes == sorted(finishes, reverse=True)


def test_native_failure_walk_survives_deleting_the_cursor_item(api: Api) -> None:
    made = {n: _create_failure(api, _day(n))["id"] for n in range(1, 8)}
    body = _ok(_native_page(api, FAILURES, limit="2"))
    seen = [f["id"] for f in body["items"]]
    assert api.call("DELETE", ONE_FAILURE, path_params={**SP, "failureId": seen[-1]}, key=ADMIN_KEY).status == 204
    _create_failure(api, _day(20))
    cursor = body["next_cursor"]
    while cursor:
        body = _ok(_native_page(api, FAILURES, limit="2", cursor=cursor))
        seen += [f["id"] for f in body["items"]]
        cursor = body["next_cursor"]
    assert seen == [made[n] for n in range(7, 0, -1)]


def test_corrections_walk_while_new_corrections_arrive_repeats_nothing(api: Api, clock: Clock) -> None:
    made = create_deployment(api, version="0")
    route = {**SP, "deploymentId": made["id"]}
    for n in range(1, 6):
        clock.advance(timedelta(seconds=1))
        assert api.call("PATCH", ONE, path_params=route, body={"version": str(n)}, key=ADMIN_KEY).status == 200
    first = _ok(api.call("GET", CORRECTIONS, path_params=route, query={"limit": "2"}, key=ADMIN_KEY))
    for n in range(6, 9):
        clock.advance(timedelta(seconds=1))
        assert api.call("PATCH", ONE, path_params=route, body={"version": str(n)}, key=ADMIN_KEY).status == 200
    seen = [r["revision"] for r in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        body = _ok(
            api.call("GET", CORRECTIONS, path_params=route, query={"limit": "2", "cursor": cursor}, key=ADMIN_KEY)
        )
        seen += [r["revision"] for r in body["items"]]
        cursor = body["next_cursor"]
    assert seen == [6, 5, 4, 3, 2]


# --- Datadog lists ------------------------------------------------------------------------------------
@pytest.mark.parametrize("sort", ["-finished_at", "finished_at"])
def test_datadog_walk_survives_deleting_the_cursor_item_and_patches(api: Api, sort: str) -> None:
    made = {n: _dd_create(api, n, id=f"dep-{n:02d}-000000000000") for n in range(1, 10)}
    page = _dd_list(api, limit=3, sort=sort)
    assert page.status == 200, page.body
    seen = [d["id"] for d in page.body["data"]]
    cursor = _after(page.body)
    gone = seen[-1]
    assert (
        api.call(
            "DELETE", "/api/v2/dora/deployment/{deployment_id}", path_params={"deployment_id": gone}, headers=DD
        ).status
        == 202
    )
    patch = {"data": {"attributes": {"change_failure": True}}}
    r = api.call(
        "PATCH",
        "/api/v2/dora/deployments/{deployment_id}",
        path_params={"deployment_id": made[5]},
        body=patch,
        headers=DD,
    )
    assert r.status == 202, r.body
    _dd_create(api, 50)
    _dd_create(api, 0)
    while cursor:
        page = _dd_list(api, limit=3, sort=sort, page={"cursor": cursor})
        assert page.status == 200, page.body
        seen += [d["id"] for d in page.body["data"]]
        cursor = _after(page.body)
    assert len(seen) == len(set(seen))
    assert set(made.values()) <= set(seen)


def test_datadog_stream_query_walk_while_the_project_gains_a_second_stream(api: Api) -> None:
    made = [_dd_create(api, n, env="prod") for n in range(1, 6)]
    page = _dd_list(api, limit=2, query="service:shop env:prod")
    assert page.status == 200, page.body
    seen = [d["id"] for d in page.body["data"]]
    # Another stream of the same project and environment (a tenant): the query now matches two streams.
    other = create_deployment(api, project="shop", environment="prod", tenant="acme", finished_at=T0 + 3 * HOUR + 30)
    cursor = _after(page.body)
    while cursor:
        page = _dd_list(api, limit=2, query="service:shop env:prod", page={"cursor": cursor})
        assert page.status == 200, page.body
        seen += [d["id"] for d in page.body["data"]]
        cursor = _after(page.body)
    assert len(seen) == len(set(seen))
    assert set(made) <= set(seen)
    del other


def test_datadog_failure_walk_survives_deleting_the_cursor_item(api: Api) -> None:
    made = [_dd_fail(api, n, id=f"fail-{n:02d}-00000000000") for n in range(1, 8)]
    page = _dd_list(api, DD_FAILURES, limit=2)
    seen = [d["id"] for d in page.body["data"]]
    r = api.call("DELETE", "/api/v2/dora/failure/{failure_id}", path_params={"failure_id": seen[-1]}, headers=DD)
    assert r.status == 202, r.body
    cursor = _after(page.body)
    while cursor:
        page = _dd_list(api, DD_FAILURES, limit=2, page={"cursor": cursor})
        assert page.status == 200, page.body
        seen += [d["id"] for d in page.body["data"]]
        cursor = _after(page.body)
    assert seen == made[::-1]


# --- cursors elsewhere --------------------------------------------------------------------------------
def test_a_native_cursor_in_another_space_is_a_400(api: Api, other_space: str) -> None:
    for n in range(1, 5):
        create_deployment(api, finished_at=_day(n))
        create_deployment(api, space=OTHER_SPACE, key=OTHER_KEY, finished_at=_day(n))
        _create_failure(api, _day(n))
    mine = _ok(_native_page(api, limit="1"))["next_cursor"]
    _native_400(_native_page(api, space=OTHER_SPACE, key=OTHER_KEY, limit="1", cursor=mine))
    mine_f = _ok(_native_page(api, FAILURES, limit="1"))["next_cursor"]
    _native_400(_native_page(api, FAILURES, space=OTHER_SPACE, key=OTHER_KEY, limit="1", cursor=mine_f))


def test_a_cursor_of_another_list_is_a_400(api: Api) -> None:
    for n in range(1, 5):
        create_deployment(api, finished_at=_day(n))
        _create_failure(api, _day(n))
        _dd_create(api, n)
        _dd_fail(api, n)
    dep = _ok(_native_page(api, limit="1"))["next_cursor"]
    fail = _ok(_native_page(api, FAILURES, limit="1"))["next_cursor"]
    proj = _ok(_native_page(api, limit="1", project="shop"))["next_cursor"]
    dd = _after(_dd_list(api, limit=1).body)
    _native_400(_native_page(api, FAILURES, limit="1", cursor=dep))
    _native_400(_native_page(api, limit="1", cursor=fail))
    _native_400(_native_page(api, limit="1", cursor=proj))  # a project's index, then the space's
    _native_400(_native_page(api, limit="1", project="shop", cursor=dep))
    _native_400(_native_page(api, limit="1", cursor=dd))
    _dd_400(_dd_list(api, limit=1, page={"cursor": dep}))
    _dd_400(_dd_list(api, DD_FAILURES, limit=1, page={"cursor": dd}))
    _dd_400(_dd_list(api, limit=1, page={"cursor": _after(_dd_list(api, DD_FAILURES, limit=1).body)}))


@pytest.mark.parametrize(("limit", "status"), [("0", 400), ("1", 200), ("500", 200), ("501", 400)])
def test_native_page_size_bounds(api: Api, limit: str, status: int) -> None:
    for n in range(1, 3):
        create_deployment(api, finished_at=_day(n))
        _create_failure(api, _day(n))
    for route in (DEPLOYMENTS, FAILURES):
        result = _native_page(api, route, limit=limit)
        assert result.status == status, (route, result.body)
        if status == 200:
            assert len(result.body["items"]) == min(2, int(limit))
            assert (result.body["next_cursor"] is None) == (int(limit) >= 2)


@pytest.mark.parametrize(("limit", "status"), [(0, 400), (1, 200), (1000, 200), (1001, 400)])
def test_datadog_page_size_bounds(api: Api, limit: int, status: int) -> None:
    _dd_create(api, 1)
    _dd_create(api, 2)
    result = _dd_list(api, limit=limit)
    assert result.status == status, result.body
    if status == 200:
        assert len(result.body["data"]) == min(2, limit)
        assert (_after(result.body) is None) == (limit >= 2)


def test_a_native_page_that_ends_the_range_says_no_page_follows(api: Api) -> None:
    for n in range(1, 7):
        create_deployment(api, finished_at=_day(n))
    body = _ok(_native_page(api, limit="2", **{"from": _day(3), "to": _day(4)}))
    assert [d["finished_at"][:10] for d in body["items"]] == ["2024-03-04", "2024-03-03"]
    assert body["next_cursor"] is None


def test_an_empty_native_list_promises_no_next_page(api: Api) -> None:
    for route in (DEPLOYMENTS, FAILURES):
        assert _ok(_native_page(api, route, limit="1")) == {"items": [], "next_cursor": None}
    body = _dd_list(api, limit=1).body
    assert body["data"] == [] and "meta" not in body


def test_datadog_cursors_in_another_space_or_a_narrower_range_are_a_400(api: Api, other_space: str) -> None:
    for n in range(1, 5):
        _dd_create(api, n)
    cursor = _after(_dd_list(api, limit=1).body)
    assert cursor
    _dd_400(_dd_list(api, limit=1, page={"cursor": cursor}, headers={"DD-API-KEY": OTHER_KEY}))
    _dd_400(_dd_list(api, limit=1, page={"cursor": cursor}, to=T0 + 2 * HOUR))  # the cursor lies at hour 4


def test_corrections_cursors_stay_with_their_deployment_and_outlive_its_removal(api: Api, other_space: str) -> None:
    a = create_deployment(api, version="0")["id"]
    b = create_deployment(api, version="0", finished_at=_day(5))["id"]
    for n in range(1, 4):
        for d in (a, b):
            r = api.call("PATCH", ONE, path_params={**SP, "deploymentId": d}, body={"version": str(n)}, key=ADMIN_KEY)
            assert r.status == 200, r.body
    first = _ok(
        api.call("GET", CORRECTIONS, path_params={**SP, "deploymentId": a}, query={"limit": "1"}, key=ADMIN_KEY)
    )
    cursor = first["next_cursor"]
    on_b = api.call("GET", CORRECTIONS, path_params={**SP, "deploymentId": b}, query={"cursor": cursor}, key=ADMIN_KEY)
    _native_400(on_b)
    elsewhere = {"spaceId": OTHER_SPACE, "deploymentId": a}
    _native_400(api.call("GET", CORRECTIONS, path_params=elsewhere, query={"cursor": cursor}, key=OTHER_KEY))
    assert api.call("DELETE", ONE, path_params={**SP, "deploymentId": a}, key=ADMIN_KEY).status == 204
    seen = [r["revision"] for r in first["items"]]
    while cursor:
        page = _ok(
            api.call(
                "GET",
                CORRECTIONS,
                path_params={**SP, "deploymentId": a},
                query={"limit": "1", "cursor": cursor},
                key=ADMIN_KEY,
            )
        )
        seen += [r["revision"] for r in page["items"]]
        cursor = page["next_cursor"]
    assert seen == [4, 3, 2]  # the removal's record came after the walk began: at the head, not repeated


@pytest.mark.parametrize(("limit", "status"), [("0", 400), ("1", 200), ("500", 200), ("501", 400)])
def test_corrections_page_size_bounds(api: Api, limit: str, status: int) -> None:
    made = create_deployment(api, version="0")["id"]
    for n in range(1, 3):
        api.call("PATCH", ONE, path_params={**SP, "deploymentId": made}, body={"version": str(n)}, key=ADMIN_KEY)
    result = api.call(
        "GET", CORRECTIONS, path_params={**SP, "deploymentId": made}, query={"limit": limit}, key=ADMIN_KEY
    )
    assert result.status == status, result.body
    if status == 200:
        assert len(result.body["items"]) == min(2, int(limit))
        assert (result.body["next_cursor"] is None) == (int(limit) >= 2)


# --- the last page, as DynamoDB answers it --------------------------------------------------------------
@pytest.fixture
def limit_reached_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Queries answered as DynamoDB answers them: a Query that stops because it evaluated ``Limit`` items
    carries a LastEvaluatedKey, whether or not more items follow ("the only way to know when you have
    reached the end of the result set is when LastEvaluatedKey is empty"; moto leaves it out when nothing
    follows in the partition). Applied to Queries without a FilterExpression, whose Limit counts what they
    answer."""
    from dora_insights.dal import keys
    from dora_insights.dal.store import Store

    call = Store.call

    def as_dynamodb(self: Store, operation: str, **kwargs: Any) -> Any:
        response = call(self, operation, **kwargs)
        if operation != "query" or "FilterExpression" in kwargs or "Limit" not in kwargs:
            return response
        items = response.get("Items", [])
        if "LastEvaluatedKey" not in response and items and len(items) == kwargs["Limit"]:
            names = {keys.PK, keys.SK, *(keys.INDEX_KEYS[kwargs["IndexName"]] if "IndexName" in kwargs else ())}
            response = {**response, "LastEvaluatedKey": {n: items[-1][n] for n in names}}
        return response

    monkeypatch.setattr(Store, "call", as_dynamodb)


@pytest.mark.parametrize("route", [DEPLOYMENTS, FAILURES])
def test_the_native_page_holding_the_last_items_says_no_page_follows_on_dynamodb(
    api: Api, limit_reached_keys: None, route: str
) -> None:
    for n in range(1, 5):
        if route == DEPLOYMENTS:
            create_deployment(api, finished_at=_day(n))
        else:
            _create_failure(api, _day(n))
    first = _ok(_native_page(api, route, limit="2"))
    assert first["next_cursor"]
    second = _ok(_native_page(api, route, limit="2", cursor=first["next_cursor"]))
    assert len(second["items"]) == 2
    assert second["next_cursor"] is None  # nothing follows: no promise of an empty third page


def test_corrections_last_page_says_no_page_follows_on_dynamodb(api: Api, limit_reached_keys: None) -> None:
    made = create_deployment(api, version="0")["id"]
    for n in range(1, 3):
        api.call("PATCH", ONE, path_params={**SP, "deploymentId": made}, body={"version": str(n)}, key=ADMIN_KEY)
    page = _ok(
        api.call("GET", CORRECTIONS, path_params={**SP, "deploymentId": made}, query={"limit": "2"}, key=ADMIN_KEY)
    )
    assert (len(page["items"]), page["next_cursor"]) == (2, None)


def test_datadog_last_page_has_no_meta_on_dynamodb(api: Api, limit_reached_keys: None) -> None:
    for n in range(1, 5):
        _dd_create(api, n)
    first = _dd_list(api, limit=2).body
    second = _dd_list(api, limit=2, page={"cursor": _after(first)}).body
    assert len(second["data"]) == 2 and "meta" not in second


DESTINATIONS = "/api/{spaceId}/alert-destinations"
DELIVERIES = DESTINATIONS + "/{destinationId}/deliveries"


def _destination_with_log(api: Api, url: str, sends: int, clock: Clock) -> str:
    body = {"name": "hook", "kind": "webhook", "url": url}
    made = api.call("POST", DESTINATIONS, path_params=SP, body=body, key=ADMIN_KEY)
    assert made.status == 201, made.body
    one = {**SP, "destinationId": made.body["id"]}
    for _ in range(sends):
        sent = api.call("POST", DESTINATIONS + "/{destinationId}/test", path_params=one, key=ADMIN_KEY)
        assert sent.status == 200, sent.body
        clock.advance(timedelta(seconds=1))
    return str(made.body["id"])


def test_the_delivery_log_page_holding_the_last_entries_says_no_page_follows_on_dynamodb(
    api: Api, receiver: Any, loopback: None, clock: Clock, limit_reached_keys: None
) -> None:
    destination = _destination_with_log(api, f"{receiver.url}/hook", 2, clock)
    one = {**SP, "destinationId": destination}
    page = _ok(api.call("GET", DELIVERIES, path_params=one, query={"limit": "2"}, key=ADMIN_KEY))
    assert len(page["items"]) == 2
    assert page["next_cursor"] is None


def test_a_delivery_log_cursor_of_another_destination_is_a_400_and_page_sizes_hold(
    api: Api, receiver: Any, loopback: None, clock: Clock
) -> None:
    a = _destination_with_log(api, f"{receiver.url}/a", 3, clock)
    b = _destination_with_log(api, f"{receiver.url}/b", 3, clock)
    first = _ok(
        api.call("GET", DELIVERIES, path_params={**SP, "destinationId": a}, query={"limit": "1"}, key=ADMIN_KEY)
    )
    assert first["next_cursor"]
    _native_400(
        api.call(
            "GET",
            DELIVERIES,
            path_params={**SP, "destinationId": b},
            query={"cursor": first["next_cursor"]},
            key=ADMIN_KEY,
        )
    )
    for limit, status in (("0", 400), ("200", 200), ("201", 400)):
        r = api.call("GET", DELIVERIES, path_params={**SP, "destinationId": a}, query={"limit": limit}, key=ADMIN_KEY)
        assert r.status == status, (limit, r.body)


def test_a_page_dynamodb_cut_at_1_mb_is_read_on_to_its_limit(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB stops a Query at 1 MB of items read whatever its Limit, with a LastEvaluatedKey: here every
    Query answers one item at most, as a partition of large items would. A page still holds ``limit``
    items, and its cursor is followed by the next items, none repeated."""
    from dora_insights.dal import keys
    from dora_insights.dal.store import Store

    call = Store.call

    def cut_at_one_item(self: Store, operation: str, **kwargs: Any) -> Any:
        if operation != "query" or "FilterExpression" in kwargs or kwargs.get("Limit", 1) <= 1:
            return call(self, operation, **kwargs)
        response = call(self, operation, **{**kwargs, "Limit": 1})
        items = response.get("Items", [])
        if items:
            names = {keys.PK, keys.SK, *(keys.INDEX_KEYS[kwargs["IndexName"]] if "IndexName" in kwargs else ())}
            response = {**response, "LastEvaluatedKey": {n: items[-1][n] for n in names}}
        return response

    created = [create_deployment(api, finished_at=_day(n))["id"] for n in range(1, 6)]
    monkeypatch.setattr(Store, "call", cut_at_one_item)
    first = _ok(_native_page(api, limit="3"))
    second = _ok(_native_page(api, limit="3", cursor=first["next_cursor"]))
    assert [d["id"] for d in first["items"] + second["items"]] == created[::-1]
    assert (len(first["items"]), len(second["items"])) == (3, 2)
    assert second["next_cursor"] is None
