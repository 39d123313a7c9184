"""``refresh=force_blocking`` on an insight (PostHog dialect) brings its report's dirty streams up to
date first, with the scheduled recompute's own code: the answer counts deployments that arrived
since the last scheduled run, and equals what a scheduled run followed by a plain GET gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dora_insights.logic.freshness import SETTLE
from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.native import create_deployment
from tests.support.recompute import scheduled_run

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
FORCED = "Spaces-1"  # answered with refresh=force_blocking
SCHEDULED = "Spaces-2"  # the same data, answered after a scheduled run
KEYS = {FORCED: ADMIN_KEY, SCHEDULED: "test-admin-key-2"}
INSIGHT = "/api/projects/{spaceId}/insights/{insightId}"
HISTORY = [
    {"version": "1.0", "started_at": "2024-02-20T10:00:00Z", "finished_at": "2024-02-20T10:10:00Z"},
    {"version": "1.1", "finished_at": "2024-02-27T10:10:00Z", "state": "Failed"},
    {"version": "1.2", "finished_at": "2024-03-01T10:10:00Z"},
    {"project": "api", "version": "7", "finished_at": "2024-03-05T00:00:00Z"},
]
ARRIVALS = [
    {
        "version": "1.3",
        "started_at": "2024-03-09T08:00:00Z",
        "finished_at": "2024-03-09T09:00:00Z",
    },  # a stream the schedule computed before
    {"project": "billing", "version": "0.1", "finished_at": "2024-03-10T08:00:00Z"},  # a new stream
]


@pytest.fixture
def clock(clock: Clock) -> Clock:
    """Every function's clock, from this module's NOW."""
    clock.now = NOW
    return clock


@pytest.fixture
def spaces(api: Api, store: Any, clock: Clock) -> dict[str, dict[str, Any]]:
    """Two spaces with the same report, insights and deployments; their report and insight ids."""
    from dora_insights.logic import admin

    admin.ensure_space(store, SCHEDULED, "Twin", NOW)
    admin.ensure_api_key(store, SCHEDULED, "test admin", KEYS[SCHEDULED], NOW)
    made: dict[str, dict[str, Any]] = {}
    for space in (FORCED, SCHEDULED):
        reports = [_post(api, space, "/api/{spaceId}/insights/reports", {"Name": name})["Id"] for name in ("A", "B")]
        insights = {
            metric: _post(
                api,
                space,
                "/api/projects/{spaceId}/insights",
                {"name": metric, "query": {"kind": "DoraMetricsQuery", "reportId": reports[0], "metric": metric}},
            )["id"]
            for metric in ("deployment_frequency", "lead_time", "deployment_failure_rate")
        }
        other = _post(
            api,
            space,
            "/api/projects/{spaceId}/insights",
            {
                "name": "other",
                "query": {"kind": "DoraMetricsQuery", "reportId": reports[1], "metric": "deployment_frequency"},
            },
        )["id"]
        for fields in HISTORY:
            _deploy(api, space, fields)
        made[space] = {"insights": insights, "other": other}
    return made


def _post(api: Api, space: str, route: str, body: dict[str, Any]) -> Any:
    created = api.call("POST", route, path_params={"spaceId": space}, body=body, key=KEYS[space])
    assert created.status == 201, created.body
    return created.body


def _deploy(api: Api, space: str, fields: dict[str, Any]) -> None:
    create_deployment(api, space=space, key=KEYS[space], **fields)


def _result(api: Api, space: str, insight_id: int, refresh: str | None = None) -> dict[str, Any]:
    found = api.call(
        "GET",
        INSIGHT,
        path_params={"spaceId": space, "insightId": str(insight_id)},
        query={"refresh": refresh} if refresh else None,
        key=KEYS[space],
    )
    assert found.status == 200, found.body
    assert found.body["result"] is not None
    return found.body["result"]  # type: ignore[no-any-return]


def _schedule(lambda_context: Any) -> dict[str, Any]:
    return scheduled_run(lambda_context)


def _total(result: dict[str, Any]) -> float:
    return sum(v or 0 for series in result["series"] for v in series["values"])


def test_force_blocking_counts_new_deployments_as_a_scheduled_run_would(
    api: Api, store: Any, spaces: dict[str, dict[str, Any]], lambda_context: Any, clock: Clock
) -> None:
    # Given insights over a report, computed by a scheduled run
    clock.advance(SETTLE)  # the tick comes after the index shows the writes
    _schedule(lambda_context)
    frequency = spaces[FORCED]["insights"]["deployment_frequency"]
    before = _result(api, FORCED, frequency)
    assert _total(before) == 3  # 3 successful deployments in the quarter

    # When deployments arrive (in both spaces) and no scheduled run has seen them
    for space in (FORCED, SCHEDULED):
        for fields in ARRIVALS:
            _deploy(api, space, fields)
    clock.advance(timedelta(seconds=3))  # their marks settled: a refresh vouches for them
    assert _total(_result(api, FORCED, frequency, "force_cache")) == 3  # force_cache shows the last run's figures
    forced = {metric: _result(api, FORCED, i, "force_blocking") for metric, i in spaces[FORCED]["insights"].items()}

    # Then force_blocking counts them: one in a known stream, one in a stream never computed
    assert _total(forced["deployment_frequency"]) == 5
    # its streams are up to date: their marks say so and wait only for the schedule to refresh reports
    assert all(mark["caught_up"] for mark in store.list_dirty_streams(FORCED))
    # and the other report over those streams is brought up to date on its own read (the marks tell it)
    assert _total(_result(api, FORCED, spaces[FORCED]["other"], "force_cache")) == 3
    assert _total(_result(api, FORCED, spaces[FORCED]["other"])) == 5

    # And every answer equals what a scheduled run followed by a plain GET gives
    summary = _schedule(lambda_context)
    assert summary["streams_processed"] == 2  # the twin space's two streams; nothing left in the forced one
    for metric, insight_id in spaces[SCHEDULED]["insights"].items():
        assert forced[metric] == _result(api, SCHEDULED, insight_id), metric
        assert forced[metric] == _result(api, FORCED, spaces[FORCED]["insights"][metric]), metric


@pytest.fixture
def computed(api: Api, store: Any, clock: Clock) -> Any:
    """Space Spaces-1 with one report and its history computed by a scheduled run, then two new
    deployments (one known stream, one new); the report."""
    from dora_insights.logic import recompute, reports

    report_id = _post(api, FORCED, "/api/{spaceId}/insights/reports", {"Name": "A"})["Id"]
    clock.now = NOW - SETTLE  # the history was written long enough before the run for it to vouch for it
    for fields in HISTORY:
        _deploy(api, FORCED, fields)
    clock.now = NOW
    recompute.run(store, NOW)
    for fields in ARRIVALS:
        _deploy(api, FORCED, fields)
    return reports.get_report(store, FORCED, report_id)


def _successes(store: Any, report: Any) -> int:
    from dora_insights.domain.aggregates import Granularity, Split, TimeRange
    from dora_insights.logic import metrics

    _, series = metrics.read_metrics(
        store,
        FORCED,
        report.id,
        split=Split.NONE,
        time_range=TimeRange.LAST_QUARTER,
        granularity=Granularity.WEEKLY,
        tenant_tag_set_id=None,
        now=NOW,
    )
    return sum(int(i["number_of_successful_deployments"]) for s in series for i in s.intervals)


def test_a_deployment_arriving_during_the_refresh_keeps_its_stream_dirty(
    store: Any, computed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.logic import freshness, recompute

    original = recompute.recompute_stream
    later = "2024-03-10T12:00:01.000Z"

    def arriving_meanwhile(store_: Any, space_id: str, stream: str, *args: Any) -> bool:
        done = original(store_, space_id, stream, *args)
        store.transact([store.dirty_op(space_id, stream, later)])  # a deployment's mark, after the read
        return done

    monkeypatch.setattr(recompute, "recompute_stream", arriving_meanwhile)
    refreshed = freshness.read_report(store, FORCED, computed, NOW + timedelta(seconds=3), force=True)
    assert len(refreshed.processed) == 2
    marks = store.list_dirty_streams(FORCED)
    assert sorted(m["dirty_at"] for m in marks) == [later, later]  # left for the schedule
    assert [m["caught_up"] for m in marks] == [None, None]  # not caught up: marked again meanwhile


def test_a_failing_stream_is_left_dirty_and_the_report_is_still_answered(
    store: Any, computed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.logic import freshness, recompute

    original = recompute.recompute_stream
    dirty = {m["stream"] for m in store.list_dirty_streams(FORCED)}
    broken = min(dirty)

    def failing(store_: Any, space_id: str, stream: str, *args: Any) -> bool:
        if stream == broken:
            raise ValueError("unreadable stored instant")
        return original(store_, space_id, stream, *args)

    monkeypatch.setattr(recompute, "recompute_stream", failing)
    refreshed = freshness.read_report(store, FORCED, computed, NOW + timedelta(seconds=3), force=True)
    assert (refreshed.failed, set(refreshed.processed)) == ((broken,), dirty - {broken})
    assert refreshed.freshness.pending == 1
    assert [m["stream"] for m in store.list_dirty_streams(FORCED) if not m["caught_up"]] == [broken]
    assert _successes(store, computed) == 4  # the healthy stream's new deployment; the broken one waits


def test_figures_of_a_generation_a_concurrent_run_replaced_are_read_again(
    store: Any, computed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.dal.metrics import MetricsStore
    from dora_insights.logic import freshness, recompute

    original = MetricsStore.space_figures_counted
    calls = []

    def concurrent_run_flips_first(
        self: MetricsStore, space_id: str, streams: Any = None, *, consistent: bool = False, per_stream: bool = False
    ) -> Any:
        calls.append(space_id)
        if len(calls) == 1:  # between this refresh's pointer read and its figures read, another
            for stream in list(streams):  # run writes new generations and deletes the ones read
                recompute.recompute_stream(store, space_id, stream, timedelta(hours=24), [], {}, NOW)
        return original(self, space_id, streams, consistent=consistent, per_stream=per_stream)

    monkeypatch.setattr(MetricsStore, "space_figures_counted", concurrent_run_flips_first)
    freshness.read_report(store, FORCED, computed, NOW, force=True)
    assert len(calls) == 2
    assert _successes(store, computed) == 5
