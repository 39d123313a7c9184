"""One space that is wide rather than deep (thousands of streams, each small), through the real
routes and the recompute's real functions against moto, round trips counted (``tests/support/read_cost``)
and priced at 10 ms each as in AWS, against each function's ``Timeout`` in ``template.yaml``.

The data is sized to show how a cost grows per stream (a few hundred streams), then extrapolated to the
wide space a user reaches in seconds: ``POST /deployments/batch`` takes 500 deployments a call, so four
calls onboard 2,000 services (2,000 streams) between two ticks of the recompute; a failure-window change
marks every stream of a 2,000 projects x 3 environments space (6,000 streams)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from dora_insights.logic import freshness, recompute
from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.insights import create_report
from tests.support.read_cost import NOW, SPACE, Meter, seed
from tests.support.recompute import WorkerContext, scheduled_run, timeout_seconds

SP = {"spaceId": SPACE}
CALL_SECONDS = 0.010  # one DynamoDB round trip in AWS (docs/recompute.md, "Sizing")
ONBOARDED = 2_000  # streams four bulk calls create between two ticks
WIDE_STREAMS = 6_000  # 2,000 projects x 3 environments
SQS_MESSAGE_BYTES = 256 * 1024


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _onboard_by_batch(api: Api, clock: Clock, count: int) -> None:
    """``count`` new services, one deployment each, in one ``POST /deployments/batch`` (never computed)."""
    finished = (clock.now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    items = [
        {"project": f"svc-{n:04d}", "environment": "production", "finished_at": finished, "version": "1.0.0"}
        for n in range(count)
    ]
    made = api.call(
        "POST", "/api/{spaceId}/deployments/batch", path_params=SP, body={"deployments": items}, key=ADMIN_KEY
    )
    assert made.status in (200, 201, 207), made.body
    clock.advance(timedelta(seconds=5))  # past freshness.SETTLE


def _read(api: Api, route: str, report: str | None) -> tuple[int, int]:
    """(status, pending) of one of the three whole-space answers METRICS §8 says never pay per stream."""
    if route == "summary":
        r = api.call("GET", "/api/{spaceId}/summary", path_params=SP, key=ADMIN_KEY)
        return r.status, int(r.body["pending"])
    if route == "dora_metrics":
        r = api.call(
            "GET",
            "/api/{spaceId}/dora/metrics",
            path_params=SP,
            query={"metric": "deployment_frequency"},
            key=ADMIN_KEY,
        )
    else:
        r = api.call(
            "GET",
            "/api/{spaceId}/insights/reports/{reportId}/metrics",
            path_params={**SP, "reportId": str(report)},
            key=ADMIN_KEY,
        )
    return r.status, int(r.header("X-Dora-Pending") or -1)


FUNCTIONS = {
    "summary": "GetSummaryFunction",
    "dora_metrics": "GetDoraMetricsFunction",
    "report": "GetReportMetricsFunction",
}


@pytest.mark.parametrize("route", ["summary", "dora_metrics", "report"])
def test_a_whole_space_read_after_a_bulk_onboarding_does_not_query_every_new_stream(
    api: Api, clock: Clock, meter: Meter, route: str
) -> None:
    """METRICS §8: telling whether a marked stream moves into an answer "costs one Query of the stream's
    latest deployment per such marked stream, and only where a group or tags could bring it in: /summary,
    /dora/metrics without project_group and reports that list neither never pay it". Yet
    ``freshness._covered`` Queries the latest deployment of EVERY marked stream that has no registration
    yet (never computed), whatever ``Covers.moves_in`` says, though the stream key alone (project, channel,
    environment, tenant) decides these answers. 300 services onboarded by one bulk call: ~320 GSI3 Queries
    for a read that recomputes 20 streams. At 2,000 (four bulk calls) that is ~2,100+ round trips, >21 s
    at 10 ms: past the route's 10 s Timeout (API Gateway's bare 500) on every read until the tick."""
    report = create_report(api) if route == "report" else None  # lists no group or tags
    new = 300
    _onboard_by_batch(api, clock, new)
    meter.reset()
    status, pending = _read(api, route, report)
    assert status == 200
    assert pending == new - freshness.READ_STREAMS  # pinned: the bound and the count are right
    per_new_stream = max(0.0, (meter.total - 10 * freshness.READ_STREAMS) / new)
    seconds = (10 * freshness.READ_STREAMS + per_new_stream * ONBOARDED) * CALL_SECONDS
    assert meter.queried["STREAM"] <= 2 * freshness.READ_STREAMS, (
        f"{meter.queried['STREAM']} stream-index Queries for {new} new streams ({meter}); extrapolated to "
        f"{ONBOARDED} streams: ~{seconds:.0f} s at 10 ms a call, Timeout {timeout_seconds(FUNCTIONS[route])} s"
    )
    assert seconds < timeout_seconds(FUNCTIONS[route])


def test_the_space_item_stops_clearing_marks_when_its_budget_runs_out(
    api: Api, store: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/recompute.md "Time": the space item clears each done mark with its own conditional DeleteItem,
    one round trip a stream: 6,000 streams (a window change in a 2,000 projects x 3 environments space) are
    ~60 s at 10 ms a call, the worker's whole ``ITEM_FLOOR_MS``. So it checks its budget before each: an item
    out of time leaves the other marks (each costs the next run a caught-up check) rather than running past
    the worker's Timeout (every message of its batch back, receives counted toward the DLQ)."""
    from dora_insights.dal.metrics import MetricsStore

    create_report(api)
    streams = 30
    seed(store, {f"svc-{n:04d}": [clock.now - timedelta(hours=1)] for n in range(streams)}, now=clock.now)
    clock.advance(timedelta(seconds=5))
    cleared: list[str] = []
    clear_dirty = MetricsStore.clear_dirty

    def counted(self: MetricsStore, space_id: str, stream: str, *args: Any) -> None:
        clear_dirty(self, space_id, stream, *args)
        cleared.append(stream)

    monkeypatch.setattr(MetricsStore, "clear_dirty", counted)
    item = recompute.WorkItem(kind="space", space_id=SPACE, planned_at="tick")
    # The item's clock stands still until it has cleared 5 marks, then its budget is spent.
    done = recompute.process(store, item, clock.now, deadline_ms=60_000, clock=lambda: 0.0 if len(cleared) < 5 else 1e6)
    assert not done.complete
    assert len(cleared) == 5
    assert len(store.list_dirty_streams(SPACE)) == streams - 5
    finished = recompute.process(store, item, clock.now, deadline_ms=60_000)  # the next run clears the rest
    assert finished.complete
    assert not store.list_dirty_streams(SPACE)


def test_a_wide_space_is_split_into_bounded_work_items_covering_each_stream_once(
    api: Api, store: Any, clock: Clock, aws: Any
) -> None:
    """Pinned: the tick sends a wide space's waiting streams as ``streams`` items of at most ``STREAM_GROUP``,
    every waiting stream in exactly one, each message far below SQS's 256 KB, the space's own item last;
    after the run nothing waits and ``/summary`` counts every stream (pending 0)."""
    import boto3

    from dora_insights.logic.recompute import STREAM_GROUP, plan

    streams = 60
    seed(store, {f"svc-{n:04d}": [clock.now - timedelta(hours=1)] for n in range(streams)}, now=clock.now)
    clock.advance(timedelta(seconds=5))
    items, summary = plan(store, clock.now)
    assert summary.spaces_split == 1 and summary.streams_pending == streams
    groups = [i for i in items if i.kind == "streams"]
    assert items[-1].kind == "space" and items[-1].space_id == SPACE
    assert all(0 < len(g.streams) <= STREAM_GROUP for g in groups)
    listed = [s for g in groups for s in g.streams]
    assert len(listed) == len(set(listed)) == streams
    assert max(len(i.model_dump_json().encode()) for i in items) < SQS_MESSAGE_BYTES // 20
    run = scheduled_run(WorkerContext())
    assert run["items_failed"] == 0
    assert not store.list_dirty_streams(SPACE)
    answer = api.call("GET", "/api/{spaceId}/summary", path_params=SP, key=ADMIN_KEY)
    assert answer.status == 200 and answer.body["pending"] == 0 and answer.body["deployments"] == streams
    left = boto3.client("sqs").get_queue_attributes(
        QueueUrl=aws.recompute_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert json.loads(left["Attributes"]["ApproximateNumberOfMessages"]) == 0
