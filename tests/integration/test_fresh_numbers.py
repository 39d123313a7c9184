"""Fresh numbers (issue 22, METRICS §8): every computed answer says how fresh it is (``as_of``,
``pending``: fields where the body is ours, ``X-Dora-As-Of``/``X-Dora-Pending`` where the dialect's
shape is fixed), a read with little pending work does it first, above the bound it answers at once
and counts what waits, and a read racing the scheduled recompute leaves one consistent result."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dora_insights.logic.freshness import SETTLE
from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.support.native import create_deployment
from tests.support.recompute import scheduled_run

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
SPACE = "Spaces-1"
RANGE = {"from": "2024-03-01T00:00:00Z", "to": "2024-04-01T00:00:00Z"}
NEWBIE = [
    {"finished_at": "2024-03-01T12:00:00Z", "version": "1.4.2"},
    {"finished_at": "2024-03-04T09:30:00Z", "version": "1.4.3"},
    {"finished_at": "2024-03-08T16:00:00Z", "version": "1.5.0"},
]


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _call(api: Api, method: str, route: str, **kwargs: Any) -> HttpResult:
    return api.call(method, route, key=ADMIN_KEY, **kwargs)


def _deploy(api: Api, project: str = "newbie", **fields: Any) -> dict[str, Any]:
    return create_deployment(api, project=project, **fields)


def _summary(api: Api, **query: str) -> HttpResult:
    found = _call(api, "GET", "/api/{spaceId}/summary", path_params={"spaceId": SPACE}, query={**RANGE, **query})
    assert found.status == 200, found.body
    return found


def _schedule(lambda_context: Any) -> dict[str, Any]:
    return scheduled_run(lambda_context)


@pytest.fixture
def newbie(api: Api, clock: Clock) -> list[dict[str, Any]]:
    """The README's three deployments of project ``newbie``, posted just now."""
    return [_deploy(api, **fields) for fields in NEWBIE]


# --- summary ---------------------------------------------------------------------------------
def test_post_then_read_shows_the_new_deployments_at_once(api: Api, newbie: list[dict[str, Any]]) -> None:
    found = _summary(api, project="newbie")
    assert (found.body["deployments"], found.body["pending"]) == (3, 0)
    assert found.body["deployment_frequency"]["successful_deployments"] == 3
    assert found.body["deployment_frequency"]["tier"] is not None
    assert found.body["as_of"] == "2024-03-10T12:00:00.000Z"  # computed by this read, at the service's now
    assert (found.header("X-Dora-Pending"), found.header("X-Dora-As-Of")) == ("0", found.body["as_of"])


def test_zero_data_gives_null_tiers_and_nothing_pending(api: Api, newbie: list[dict[str, Any]]) -> None:
    found = _summary(api, project="nobody").body
    assert (found["deployments"], found["pending"], found["as_of"]) == (0, 0, None)
    tiers = {key: found[key]["tier"] for key in ("deployment_frequency", "lead_time", "change_failure_rate")}
    tiers.update({key: found[key]["tier"] for key in ("recovery_time", "time_to_restore")})
    assert tiers == dict.fromkeys(tiers)


def test_a_fresh_mark_is_vouched_for_only_after_it_settled(
    api: Api, store: Any, clock: Clock, newbie: list[dict[str, Any]], lambda_context: Any
) -> None:
    # A read at once computes the figures but leaves the mark (the index may lag the write) ...
    assert _summary(api, project="newbie").body["pending"] == 0
    (mark,) = store.list_dirty_streams(SPACE)
    assert (mark["pending"], mark["caught_up"]) == (3, None)
    # ... a read once it settled records it caught up; the schedule then only refreshes reports
    clock.advance(timedelta(seconds=3))
    assert _summary(api, project="newbie").body["pending"] == 0
    (mark,) = store.list_dirty_streams(SPACE)
    assert mark["caught_up"] is not None and mark["pending"] == 0
    run = _schedule(lambda_context)
    assert (run["streams_pending"], run["streams_processed"]) == (1, 0)
    assert store.list_dirty_streams(SPACE) == []


def test_above_the_bound_the_read_answers_at_once_and_counts_what_waits(
    api: Api,
    store: Any,
    newbie: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
    clock: Clock,
) -> None:
    from dora_insights.logic import freshness, recompute

    _deploy(api, "other", finished_at="2024-03-02T00:00:00Z")
    monkeypatch.setattr(freshness, "READ_BOUND", 2)  # newbie's stream waits with 3: past the bound
    computed: list[str] = []
    original = recompute.recompute_stream

    def counted(store_: Any, space_id: str, stream: str, *args: Any) -> bool:
        computed.append(stream)
        return original(store_, space_id, stream, *args)

    monkeypatch.setattr(recompute, "recompute_stream", counted)
    found = _summary(api).body
    # the cheap stream (1 deployment) is brought up to date; newbie's waits and is counted
    assert (found["deployments"], found["pending"]) == (1, 1)
    assert len(computed) == 1
    assert _summary(api, project="newbie").body["pending"] == 1
    assert len(computed) == 1  # nothing within the bound: no stream was read again

    clock.advance(SETTLE)  # the tick comes after the index shows the writes
    _schedule(lambda_context)
    after = _summary(api).body
    assert (after["deployments"], after["pending"]) == (4, 0)


# --- Octopus reports and PostHog insights: headers -------------------------------------------
def _report(api: Api) -> str:
    created = _call(
        api, "POST", "/api/{spaceId}/insights/reports", path_params={"spaceId": SPACE}, body={"Name": "All"}
    )
    assert created.status == 201, created.body
    return str(created.body["Id"])


def _metrics(api: Api, report_id: str, **query: str) -> HttpResult:
    found = _call(
        api,
        "GET",
        "/api/{spaceId}/insights/reports/{reportId}/metrics",
        path_params={"spaceId": SPACE, "reportId": report_id},
        query={"timeRange": "LastMonth", "granularity": "Monthly", **query},
    )
    assert found.status == 200, found.body
    return found


def _successes(result: HttpResult) -> int:
    return sum(i["NumberOfSuccessfulDeployments"] for s in result.body["Series"] for i in s["Intervals"])


def test_report_metrics_and_deployments_count_what_was_just_posted(api: Api, clock: Clock, lambda_context: Any) -> None:
    report_id = _report(api)
    _schedule(lambda_context)  # the report is computed, with nothing in it
    assert _successes(_metrics(api, report_id)) == 0
    clock.now = datetime(2024, 4, 2, tzinfo=UTC)  # so that March is LastMonth
    for fields in NEWBIE:
        _deploy(api, **fields)
    found = _metrics(api, report_id)
    assert _successes(found) == 3
    assert (found.header("X-Dora-Pending"), found.header("X-Dora-As-Of")) == ("0", "2024-04-02T00:00:00.000Z")
    streams = _call(
        api,
        "GET",
        "/api/{spaceId}/insights/reports/{reportId}/deployments",
        path_params={"spaceId": SPACE, "reportId": report_id},
    )
    assert streams.status == 200
    assert sum(len(s["Deployments"]) for s in streams.body["Streams"]) == 3
    assert streams.header("X-Dora-Pending") == "0"


def test_report_above_the_bound_answers_stored_views_and_counts_pending(
    api: Api, clock: Clock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.logic import freshness

    report_id = _report(api)
    clock.now = datetime(2024, 4, 2, tzinfo=UTC)
    _deploy(api, **NEWBIE[0])
    _schedule(lambda_context)
    for fields in NEWBIE[1:]:
        _deploy(api, **fields)
    monkeypatch.setattr(freshness, "REPORT_READ_BOUND", 0)  # the report (1 deployment) is too big to recompute
    found = _metrics(api, report_id)
    assert (_successes(found), found.header("X-Dora-Pending")) == (1, "1")
    monkeypatch.setattr(freshness, "REPORT_READ_BOUND", 20_000)
    found = _metrics(api, report_id)
    assert (_successes(found), found.header("X-Dora-Pending")) == (3, "0")


def _insight(api: Api, report_id: str) -> int:
    created = _call(
        api,
        "POST",
        "/api/projects/{spaceId}/insights",
        path_params={"spaceId": SPACE},
        body={
            "name": "f",
            "query": {"kind": "DoraMetricsQuery", "reportId": report_id, "metric": "deployment_frequency"},
        },
    )
    assert created.status == 201, created.body
    return int(created.body["id"])


def test_an_insight_read_is_brought_up_to_date_and_says_so(api: Api, clock: Clock, lambda_context: Any) -> None:
    report_id = _report(api)
    insight_id = _insight(api, report_id)
    _schedule(lambda_context)
    for fields in NEWBIE:
        _deploy(api, **fields)
    path = {"spaceId": SPACE, "insightId": str(insight_id)}
    cached = _call(
        api, "GET", "/api/projects/{spaceId}/insights/{insightId}", path_params=path, query={"refresh": "force_cache"}
    )
    assert cached.header("X-Dora-Pending") == "1"  # as stored: one stream waits
    assert sum(v or 0 for s in cached.body["result"]["series"] for v in s["values"]) == 0
    fresh = _call(api, "GET", "/api/projects/{spaceId}/insights/{insightId}", path_params=path)
    assert sum(v or 0 for s in fresh.body["result"]["series"] for v in s["values"]) == 3
    assert fresh.header("X-Dora-Pending") == "0"
    assert fresh.header("X-Dora-As-Of") == fresh.body["last_refresh"] == "2024-03-10T12:00:00.000Z"


def test_a_deployment_read_has_its_figures_at_once(api: Api, newbie: list[dict[str, Any]]) -> None:
    found = _call(
        api,
        "GET",
        "/api/{spaceId}/deployments/{deploymentId}",
        path_params={"spaceId": SPACE, "deploymentId": newbie[-1]["id"]},
    )
    assert found.status == 200
    assert found.body["figures"] is not None
    assert (found.body["as_of"], found.body["pending"]) == ("2024-03-10T12:00:00.000Z", 0)
    assert found.header("X-Dora-Pending") == "0"


# --- racing the schedule ---------------------------------------------------------------------
def _figure_generations(store: Any) -> set[str]:
    """Every figures generation stored in the space (none leaked)."""
    from dora_insights.dal import keys

    return {str(i["generation"]) for i in store.query_all(partition=keys.figures_pk(SPACE))}


def _partitions(store: Any, prefix: str) -> set[str]:
    """Every partition key of the table that starts with ``prefix`` (a scan: tests only)."""
    found: set[str] = set()
    for page in store.ddb.get_paginator("scan").paginate(TableName=store.table, ProjectionExpression="PK"):
        found.update(i["PK"]["S"] for i in page["Items"] if i["PK"]["S"].startswith(prefix))
    return found


@pytest.fixture
def racing(store: Any, monkeypatch: pytest.MonkeyPatch, lambda_context: Any) -> list[str]:
    """The scheduled recompute runs, whole, while the first read's stream recompute has read the
    deployments but not yet moved the stream's pointer (the list names the streams it raced)."""
    from dora_insights.dal.metrics import MetricsStore

    original = MetricsStore.write_stream_figures
    raced: list[str] = []

    def schedule_first(self: MetricsStore, space_id: str, stream: str, *args: Any) -> bool:
        if not raced:
            raced.append(stream)
            _schedule(lambda_context)
        return original(self, space_id, stream, *args)

    monkeypatch.setattr(MetricsStore, "write_stream_figures", schedule_first)
    return raced


def test_a_read_racing_the_schedule_gives_one_consistent_answer(
    api: Api, store: Any, clock: Clock, newbie: list[dict[str, Any]], racing: list[str]
) -> None:
    clock.advance(timedelta(seconds=3))
    found = _summary(api, project="newbie").body
    assert racing  # the schedule ran inside the read
    # The schedule moved the pointer first: the read's own generation is dropped, its answer is
    # the schedule's figures, and exactly one generation of the stream is stored.
    assert (found["deployments"], found["pending"]) == (3, 1)
    registration = store.metrics().streams(SPACE)[racing[0]]
    assert _figure_generations(store) == {registration["generation"]}
    assert store.list_dirty_streams(SPACE) == []  # the schedule cleared the mark; the read did not bring it back
    again = _summary(api, project="newbie").body
    assert {k: v for k, v in again.items() if k != "pending"} == {k: v for k, v in found.items() if k != "pending"}
    assert again["pending"] == 0


def test_report_states_only_move_forward_and_leave_one_generation(
    api: Api, store: Any, clock: Clock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.dal import keys
    from dora_insights.dal.metrics import MetricsStore
    from dora_insights.domain.reports import report_number

    report_id = _report(api)
    number = report_number(report_id)
    clock.now = datetime(2024, 4, 2, tzinfo=UTC)
    for fields in NEWBIE:
        _deploy(api, **fields)
    original = MetricsStore.write_report_aggregates
    raced: list[bool] = []

    def schedule_first(self: MetricsStore, space_id: str, number_: int, *args: Any) -> bool:
        if not raced:  # the read computed its views from an older read; the schedule flips first
            raced.append(True)
            _schedule(lambda_context)
        return original(self, space_id, number_, *args)

    monkeypatch.setattr(MetricsStore, "write_report_aggregates", schedule_first)
    found = _metrics(api, report_id)
    assert raced and _successes(found) == 3
    state = store.metrics().report_state(SPACE, number)
    # one generation stored: the loser dropped its own, the winner the one it replaced
    assert _partitions(store, keys.aggregates_pk(SPACE, number, "")) == {
        keys.aggregates_pk(SPACE, number, state["generation"])
    }


def test_a_settled_deployment_read_reads_its_stream_pointer_once(
    api: Api, newbie: list[dict[str, Any]], lambda_context: Any, clock: Clock
) -> None:
    from dora_insights.handlers.runtime import store

    route = "/api/{spaceId}/deployments/{deploymentId}"
    params = {"spaceId": SPACE, "deploymentId": newbie[-1]["id"]}
    clock.advance(SETTLE)  # the tick comes after the index shows the writes
    _schedule(lambda_context)  # nothing waits
    counter = store().round_trips
    before = dict(counter.calls)
    found = _call(api, "GET", route, path_params=params)
    used = {k: v - before.get(k, 0) for k, v in counter.calls.items() if v != before.get(k, 0)}
    assert found.status == 200 and found.body["figures"] is not None
    # GetItem: the key, the deployment, the stream's failure record (none), the stream's dirty mark
    # (none: its own, not the space's marks). Query: the figures chunks of the generation the stream's
    # pointer names: the pointer (one BatchGetItem) is read once, by the freshness check, and serves
    # the figures read.
    assert used == {"get_item": 4, "batch_get_item": 1, "query": 1}
