"""What a read costs in DynamoDB (``tests/support/read_cost.py`` counts the calls and the items read), on
data a pilot holds, through the real routes against moto:

- a read that brings the streams it covers up to date first (METRICS §8) reads the stream registrations
  once, not once per stream it recomputes, and recomputes at most ``freshness.READ_STREAMS`` streams
  whatever they hold, so its round trips are bounded when many new streams wait (200 services onboarded
  between two ticks held a ``GET /summary`` for 1,600 calls, past its function's Timeout against
  DynamoDB); the rest stay counted in ``pending`` for the next read or tick;
- ``/summary``'s time to restore reads the failure events that started in its range (a key range of
  their index), not every event ever recorded;
- an answer about one project reads that project's figures, not every stream's;
- a deployment's read reads its own stream's dirty mark, not the space's."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from dora_insights.logic import freshness
from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.insights import create_report
from tests.support.read_cost import NOW, SPACE, Meter, seed, year_of
from tests.support.recompute import scheduled_run

SUMMARY = "/api/{spaceId}/summary"
SP = {"spaceId": SPACE}


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _new_streams(store: Any, clock: Clock, count: int) -> None:
    """``count`` services onboarded since the last tick: one deployment each, never computed."""
    seed(store, {f"new-{s:03d}": [clock.now - timedelta(hours=1)] for s in range(count)}, now=clock.now)
    clock.advance(timedelta(seconds=5))  # past freshness.SETTLE


def _summary(api: Api) -> Any:
    found = api.call("GET", SUMMARY, path_params={"spaceId": SPACE}, key=ADMIN_KEY)
    assert found.status == 200, found.body
    return found.body


def test_a_refresh_reads_the_stream_registrations_once_not_once_per_stream(
    api: Api, store: Any, clock: Clock, meter: Meter
) -> None:
    """15 new streams, all recomputed by the read: the registrations (pattern 44) are read by the
    refresh once and by the snapshot once more (before: once more per stream recomputed, so items read
    grew with the square of the streams)."""
    _new_streams(store, clock, 15)
    meter.reset()
    assert _summary(api)["pending"] == 0
    assert meter.queried["STREAMS"] <= 2, meter


def test_a_refresh_recomputes_at_most_read_streams_streams(api: Api, store: Any, clock: Clock, meter: Meter) -> None:
    """200 new streams of one deployment each fit the 1,000-deployment bound: the read recomputes the
    first ``READ_STREAMS`` only, with the round trips of that many (~7 each, and a few of its own), and
    counts the others pending; the next read takes the next ones. Left: whether a stream never computed
    is one the answer covers takes one Query of its latest deployment (``freshness._covered``), so such
    streams still cost a read one small Query each until the tick computes them (before: 1,609 calls)."""
    _new_streams(store, clock, 200)
    meter.reset()
    first = _summary(api)
    assert first["pending"] == 200 - freshness.READ_STREAMS
    assert first["deployments"] == freshness.READ_STREAMS
    assert meter.total <= 8 * freshness.READ_STREAMS + 200 + 10, (meter, meter.queried)
    second = _summary(api)
    assert second["pending"] == 200 - 2 * freshness.READ_STREAMS
    assert second["deployments"] == 2 * freshness.READ_STREAMS


def get(api: Api, route: str, query: dict[str, str] | None = None, **path: str) -> Any:
    found = api.call("GET", route, path_params={**SP, **path}, query=query, key=ADMIN_KEY)
    assert found.status == 200, found.body
    return found


@pytest.fixture
def pilot(api: Api, store: Any, clock: Clock, lambda_context: Any) -> Api:
    """2,000 deployments over 50 streams (projects svc-00..svc-49) across the last year, computed by the
    schedule; nothing pending."""
    seed(store, {f"svc-{s:02d}": year_of(40, offset=s / 50) for s in range(50)})
    clock.advance(timedelta(minutes=1))
    settle(store, lambda_context)
    clock.advance(timedelta(minutes=1))
    return api


def settle(store: Any, lambda_context: Any) -> None:
    """Scheduled runs until no stream waits (a run's items stop at their time budget on a busy machine)."""
    for _ in range(10):
        scheduled_run(lambda_context)
        if not store.list_dirty_streams(SPACE):
            return
    raise AssertionError(f"streams still waiting after 10 runs: {store.list_dirty_streams(SPACE)}")


def test_a_one_day_summary_reads_only_the_failure_events_of_that_day(
    pilot: Api, store: Any, meter: Meter, lambda_context: Any, clock: Clock
) -> None:
    """200 failure events over the last year; ``GET /summary`` of one day.

    ``time_to_restore`` counts the events that *started* in ``[from, to)`` (``summary._restore_times``),
    and pattern 15 (GSI1 ``S#<sp>#FAILS``) is sorted by start time: a key range reads exactly those.
    Measured: every event of the space, whatever the range (``store.metrics().space_failures`` at
    logic/summary.py:135, dal/metrics.py:131 ``space_failures``: the whole partition, every page).
    """
    for n in range(200):
        started = NOW - timedelta(days=365) + timedelta(hours=43 * n)  # none on 2024-12-30
        body = {
            "project": f"svc-{n % 50:02d}",
            "environment": "production",
            "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "finished_at": (started + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        made = pilot.call("POST", "/api/{spaceId}/failures", path_params=SP, body=body, key=ADMIN_KEY)
        assert made.status == 201, made.body
    clock.advance(timedelta(minutes=1))
    settle(store, lambda_context)
    clock.advance(timedelta(minutes=1))
    meter.reset()
    found = get(pilot, "/api/{spaceId}/summary", {"from": "2024-12-30T00:00:00Z", "to": "2024-12-31T00:00:00Z"})
    assert found.body["pending"] == 0 and found.body["time_to_restore"]["count"] == 0
    assert meter.read["FAILS"] <= 1, str(meter)


@pytest.mark.parametrize("route", ["summary", "report deployments"])
def test_one_projects_answer_reads_only_that_projects_figures(pilot: Api, meter: Meter, route: str) -> None:
    """``GET /summary?project=svc-01`` and a one-project report's ``/deployments`` (50 streams computed,
    40 deployments each over a year).

    Figure chunks are keyed ``<streamKey>#<generation>#<YYYY-MM>#<n>`` in ``S#<sp>#FIGURES`` and a
    stream key begins with its project id (``Projects-2/...``), so a ``begins_with`` Query (or one per
    covered stream, with its generation) reads the project's chunks only: 1 here.
    Measured: all 50 chunks of the space, ~1 MB (two 1 MB Query pages), for an answer about 1 stream;
    it grows with every stream and every month of history (``metrics.snapshot`` ->
    ``space_figures_counted``, dal/metrics.py:251-262, called from ``freshness.read_streams``).
    """
    if route == "summary":
        meter.reset()
        get(pilot, "/api/{spaceId}/summary", {"project": "svc-01"})
    else:
        projects = get(pilot, "/api/{spaceId}/projects", {"take": "100"}).body["Items"]
        wanted = next(p["Id"] for p in projects if p["Name"] == "svc-01")
        report = create_report(pilot, "one", ProjectIds=[wanted])
        meter.reset()
        found = get(pilot, "/api/{spaceId}/insights/reports/{reportId}/deployments", reportId=report)
        assert [s["ProjectName"] for s in found.body["Streams"]] == ["svc-01"]
    assert meter.read["FIGURES"] <= 2, str(meter)


def test_a_deployments_get_reads_its_own_streams_mark_only(pilot: Api, store: Any, clock: Clock, meter: Meter) -> None:
    """``GET /deployments/{id}`` of a computed stream while the 49 other streams have a change pending.

    ``freshness.read_stream`` needs one stream's mark: a GetItem of ``S#<sp>#DIRTY`` / ``<streamKey>``.
    Measured: the whole DIRTY partition (``store.list_dirty_streams`` then a filter in Python,
    logic/freshness.py:170), one item per dirty stream of the space.
    """
    listed = get(pilot, "/api/{spaceId}/deployments", {"project": "svc-00", "limit": "1"}).body["items"][0]
    seed(store, {f"svc-{s:02d}": [clock.now - timedelta(minutes=1)] for s in range(1, 50)}, now=clock.now)
    clock.advance(timedelta(seconds=5))
    meter.reset()
    get(pilot, "/api/{spaceId}/deployments/{deploymentId}", deploymentId=listed["id"])
    assert meter.read["DIRTY"] <= 1, str(meter)
