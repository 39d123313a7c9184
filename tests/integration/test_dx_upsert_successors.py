"""DX ``deployments.upsert`` replacing a success: the stream's next successes are attributed again when the
replacement takes it out of its place (METRICS §5), as a fresh ingest of the final history attributes them.

Each case compares the figures after the upsert (and two scheduled runs) with a fresh ingest of the same
final history in a second space, through the real routes against moto."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.code import commit, send_changes, sha
from tests.support.fixtures import OTHER_KEY
from tests.support.native import get_deployment
from tests.support.read_cost import Meter
from tests.support.recompute import scheduled_run

SPACE = "Spaces-1"
REPO = "acme/shop"
UPSERT = "/api/deployments.upsert"


def _recompute(clock: Clock, lambda_context: Any) -> None:
    """A minute later, the scheduled recompute."""
    clock.advance(timedelta(minutes=1))
    scheduled_run(lambda_context)


def _twice(clock: Clock, lambda_context: Any) -> None:
    _recompute(clock, lambda_context)
    _recompute(clock, lambda_context)


def _read(api: Api, deployment_id: str, *, space: str = SPACE, key: str = ADMIN_KEY) -> dict[str, Any]:
    found = get_deployment(api, deployment_id, space=space, key=key)
    assert found.status == 200, found.body
    return found.body  # type: ignore[no-any-return]


def _numbers(api: Api, ids: list[str], *, space: str = SPACE, key: str = ADMIN_KEY) -> list[dict[str, Any]]:
    found = []
    for deployment_id in ids:
        body = _read(api, deployment_id, space=space, key=key)
        attribution, figures = body["attribution"] or {}, body["figures"] or {}
        found.append(
            {
                "commits": sorted(attribution.get("commits") or []),
                "lead_time_seconds": figures.get("lead_time_seconds"),
                "lead_time_source": figures.get("lead_time_source"),
                "change_failure": figures.get("change_failure"),
            }
        )
    return found


def _dx(api: Api, reference: str, hour: int, n: int, *, key: str = ADMIN_KEY, **fields: Any) -> str:
    body = {
        "reference_id": reference,
        "deployed_at": f"2024-03-01T{hour:02d}:00:00Z",
        "service": "shop",
        "commit_sha": sha(n),
        "repository": REPO,
        **fields,
    }
    result = api.call("POST", UPSERT, body=body, key=key)
    assert result.status == 200, result.body
    return str(result.body["deployment"]["id"])


def _push(api: Api, *, space: str = SPACE, key: str = ADMIN_KEY) -> None:
    send_changes(api, commits=[commit(n, n) for n in range(6)], space=space, key=key)


# A DX deployment of the tests: its reference_id, hour on 2024-03-01, commit number, other fields.
Row = tuple[str, int, int, dict[str, Any]]


def _after_upsert_and_fresh(
    api: Api, clock: Clock, lambda_context: Any, other_space: str, rows: list[Row], change: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``rows`` sent, one tick, then r1 upserted with ``change``; the final history (r1 with ``change``)
    sent afresh to another space in ``rows``' order; two ticks. The numbers of both, in ``rows``' order."""
    _push(api)
    ids = [_dx(api, reference, hour, n, **fields) for reference, hour, n, fields in rows]
    _recompute(clock, lambda_context)
    _dx(api, "r1", *next((hour, n) for reference, hour, n, _ in rows if reference == "r1"), **change)
    _push(api, space=other_space, key=OTHER_KEY)
    fresh = [
        _dx(api, reference, hour, n, key=OTHER_KEY, **fields, **(change if reference == "r1" else {}))
        for reference, hour, n, fields in rows
    ]
    _twice(clock, lambda_context)
    return _numbers(api, ids), _numbers(api, fresh, space=other_space, key=OTHER_KEY)


@pytest.mark.parametrize(
    "change",
    [
        {"success": False},  # no longer a success
        {"service": "web"},  # moved to another project's stream
        {"deployed_at": "2024-03-01T13:00:00Z"},  # now after the next success
    ],
)
def test_dx_upsert_that_takes_a_success_out_of_place_leaves_the_next_success_short(
    api: Api, clock: Clock, lambda_context: Any, other_space: str, change: dict[str, Any]
) -> None:
    """A DX upsert (same reference_id) that takes r1, a success that shipped commits 1..2, out of its place
    before r2: now failed, moved to another service's stream, or finished after r2. A fresh ingest of the
    final history has r2 ship commits 1..4 (METRICS §5: what came after the stream's previous success), lead
    time 11 h; so does the upsert: r2 is attributed again (``corrections.vacate``)."""
    rows: list[Row] = [("r0", 10, 0, {}), ("r1", 11, 2, {}), ("r2", 12, 4, {})]
    served, expected = _after_upsert_and_fresh(api, clock, lambda_context, other_space, rows, change)
    assert expected[2]["lead_time_seconds"] == 11 * 3600  # r2 ships commits 1..4 (r1 is no success before it)
    assert served == expected


def test_dx_upsert_moving_a_success_into_another_stream_before_its_successes(
    api: Api, clock: Clock, lambda_context: Any, other_space: str
) -> None:
    """The new-stream side: r1 moves from shop to web, landing between web's w0 (sha0) and w2 (sha4). A fresh
    ingest has r1 ship 1..2 in web and w2 the rest (3..4); shop's r2 ships 1..4."""
    web = {"service": "web"}
    rows: list[Row] = [("w0", 10, 0, web), ("w2", 12, 4, web), ("r0", 10, 0, {}), ("r1", 11, 2, {}), ("r2", 12, 4, {})]
    served, expected = _after_upsert_and_fresh(api, clock, lambda_context, other_space, rows, web)
    assert [len(e["commits"]) for e in expected] == [1, 2, 1, 2, 4]  # w0, w2, r0, r1 (now in web), r2
    assert served == expected


@pytest.mark.parametrize(
    "change",
    [
        {"deployed_at": "2024-03-01T11:30:00Z"},  # moved, still between r0 and r2
        {"deployed_at": "2024-03-01T09:00:00Z"},  # moved before r0
        {"deployed_at": "2024-03-01T12:30:00Z"},  # moved after r2, before r3
    ],
)
def test_dx_upsert_moving_a_success_within_its_stream(
    api: Api, clock: Clock, lambda_context: Any, other_space: str, change: dict[str, Any]
) -> None:
    """r1 moved in time within its stream: every success ships what a fresh ingest of the final history ships."""
    rows: list[Row] = [("r0", 10, 0, {}), ("r1", 11, 2, {}), ("r2", 12, 4, {}), ("r3", 13, 5, {})]
    served, expected = _after_upsert_and_fresh(api, clock, lambda_context, other_space, rows, change)
    assert served == expected


@pytest.mark.parametrize("change", [{"success": False}, {"deployed_at": "2024-03-01T13:00:00Z"}])
def test_dx_upsert_of_a_success_whose_shipment_is_paged(
    api: Api, clock: Clock, lambda_context: Any, other_space: str, change: dict[str, Any]
) -> None:
    """r1 shipped 300 commits (pages of their own): undoing its attribution is left to the new version's
    outbox item, whose attempt runs first; r2 still takes over what r1 had shipped."""
    many = [
        {"repository": REPO, "branch": "main", "sha": sha(n), "timestamp": f"2024-03-01T0{n // 60}:{n % 60:02d}:00Z"}
        for n in range(400)
    ]
    for space, key in ((SPACE, ADMIN_KEY), (other_space, OTHER_KEY)):
        for start in range(0, 400, 100):
            send_changes(api, commits=many[start : start + 100], space=space, key=key)
    ids = [_dx(api, "r0", 10, 0), _dx(api, "r1", 11, 300), _dx(api, "r2", 12, 399)]
    assert _read(api, ids[1])["attribution"]["commit_count"] == 300
    _recompute(clock, lambda_context)
    _dx(api, "r1", 11, 300, **change)
    fresh = [
        _dx(api, "r0", 10, 0, key=OTHER_KEY),
        _dx(api, "r1", 11, 300, key=OTHER_KEY, **change),
        _dx(api, "r2", 12, 399, key=OTHER_KEY),
    ]
    _twice(clock, lambda_context)
    expected = _numbers(api, fresh, space=other_space, key=OTHER_KEY)
    assert len(expected[2]["commits"]) > 0
    assert _read(api, ids[2])["attribution"]["commit_count"] == 399
    assert _numbers(api, ids) == expected


def test_an_upsert_that_keeps_a_success_in_place_costs_what_it_did(api: Api, clock: Clock, meter: Meter) -> None:
    """The common case, an upsert changing nothing attribution reads (same stream, success and order): no read
    of the stream's successes, no write beyond the replacement's."""
    _push(api)
    ids = [_dx(api, reference, hour, n) for reference, hour, n in (("r0", 10, 0), ("r1", 11, 2), ("r2", 12, 4))]
    clock.advance(timedelta(minutes=1))
    meter.reset()
    _dx(api, "r1", 11, 2, source_name="ci")
    # As before successors were attributed again (measured then): the replacement's reads and transaction,
    # the new version's attempt; nothing of the stream's later deployments.
    assert dict(meter.calls) == {
        "get_item": 20,
        "query": 32,
        "batch_get_item": 8,
        "transact_write_items": 5,
        "batch_write_item": 1,
        "update_item": 1,
    }, meter
    assert meter.read["STREAM"] == 17, meter
    assert [n["commits"] for n in _numbers(api, ids)] == [[sha(0)], [sha(1), sha(2)], [sha(3), sha(4)]]
