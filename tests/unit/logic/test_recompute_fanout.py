"""The fanned-out recompute (``logic.recompute.plan``/``schedule``/``process``, issue 17) over in-memory
ports: its work items, its backpressure, and the property that it stores exactly the figures and
report views the single-function recompute (``recompute.run``) stores, whatever order the items run in."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dora_insights.domain.aggregates import Granularity, Split, TimeRange
from dora_insights.domain.model import DeploymentDraft, TaskState
from dora_insights.domain.reports import TenantMode
from dora_insights.logic import deployments, metrics, recompute, reports
from tests.unit.logic.conftest import NOW, WRITTEN
from tests.unit.logic.fakes import SPACE, FakePorts

pytestmark = pytest.mark.usefixtures("no_thresholds")

EVERYTHING = reports.ReportFields(
    "Everything", None, (), (), (), (), TenantMode.TENANTED_AND_UNTENANTED, (), "UTC", None, None
)


class ListQueue:
    """The recompute queue in memory: what was sent, and a backlog the test sets."""

    def __init__(self, backlog: int = 0) -> None:
        self.bodies: list[str] = []
        self.waiting = backlog

    def backlog(self) -> int:
        return self.waiting

    def send(self, bodies: Sequence[str]) -> int:
        self.bodies.extend(bodies)
        return len(bodies)

    def items(self) -> list[recompute.WorkItem]:
        return [recompute.WorkItem.model_validate_json(body) for body in self.bodies]


def ingest(
    ports: FakePorts, space_id: str, project: str, days_ago: float, at: datetime = WRITTEN, **fields: Any
) -> str:
    draft = DeploymentDraft(project=project, finished_at=NOW - timedelta(days=days_ago), **fields)
    return deployments.ingest(ports, ports.spaces[space_id], draft, at).deployment.stream_key


def streams_in(ports: FakePorts, n: int, space_id: str = SPACE, at: datetime = WRITTEN) -> list[str]:
    return [ingest(ports, space_id, f"p{k}", days_ago=1 + k % 5, at=at) for k in range(n)]


@pytest.fixture
def small_groups(monkeypatch: pytest.MonkeyPatch) -> int:
    """Stream groups of 2, so that a few streams split a space."""
    monkeypatch.setattr(recompute, "STREAM_GROUP", 2)
    return 2


# --------------------------------------------------------------------------------------------- planning
def test_every_space_gets_one_item_every_tick_dirty_or_not(ports: FakePorts) -> None:
    ports.add_space("Spaces-2")
    streams_in(ports, 3, at=NOW)
    queue = ListQueue()

    summary = recompute.schedule(ports, queue, NOW)

    assert [(i.kind, i.space_id, i.streams) for i in queue.items()] == [("space", SPACE, []), ("space", "Spaces-2", [])]
    assert (summary.spaces, summary.streams_pending, summary.items, summary.items_sent) == (2, 3, 2, 2)
    assert (summary.skipped, summary.spaces_split) == (False, 0)
    assert summary.lag_seconds == 0.0  # marked at NOW
    assert all(i.planned_at == "2024-03-01T12:00:00.000Z" for i in queue.items())


def test_a_space_with_more_streams_waiting_than_a_group_is_split_groups_first(
    ports: FakePorts, small_groups: int
) -> None:
    ports.add_space("Spaces-2")
    streams = sorted(streams_in(ports, 5))
    streams_in(ports, 1, "Spaces-2")
    queue = ListQueue()

    summary = recompute.schedule(ports, queue, NOW)

    items = queue.items()
    assert [(i.kind, i.space_id) for i in items] == [
        ("streams", SPACE),
        ("streams", SPACE),
        ("streams", SPACE),
        ("space", "Spaces-2"),  # the spaces not split next
        ("space", SPACE),  # the split space's own item after its groups
    ]
    assert [s for i in items[:3] for s in i.streams] == streams
    assert (summary.spaces_split, summary.items_sent) == (1, 5)


def test_a_stream_a_read_caught_up_is_not_grouped_again(ports: FakePorts, small_groups: int) -> None:
    streams = streams_in(ports, 3)
    first = ports.list_dirty_streams(SPACE)[0]
    ports.metrics().mark_caught_up(SPACE, streams[0], first["dirty_at"], first["mark_id"])
    key = (SPACE, streams[0])
    ports.caught_up[key] = (ports.dirty[key], ports.dirty.ids[key], "stamp")

    items, summary = recompute.plan(ports, NOW)

    assert [i.kind for i in items] == ["space"]  # two streams wait: one group's worth, no split
    assert summary.streams_pending == 3


def test_a_tick_sends_nothing_while_a_whole_ticks_worth_still_waits(ports: FakePorts) -> None:
    ports.add_space("Spaces-2")
    behind = ListQueue(backlog=2)
    summary = recompute.schedule(ports, behind, NOW)
    assert (summary.skipped, summary.items_sent, summary.backlog, behind.bodies) == (True, 0, 2, [])

    a_few_stuck = ListQueue(backlog=1)  # items in retries never hold the schedule back
    assert recompute.schedule(ports, a_few_stuck, NOW).items_sent == 2


def test_a_space_whose_marks_cannot_be_read_still_gets_its_item(
    ports: FakePorts, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(space_id: str) -> list[dict[str, Any]]:
        raise ValueError("unreadable mark")

    monkeypatch.setattr(ports, "list_dirty_streams", broken)
    items, summary = recompute.plan(ports, NOW)
    assert [i.space_id for i in items] == [SPACE]
    assert summary.spaces_failed == 1


# --------------------------------------------------------------------------------------------- items
def test_a_stream_item_computes_figures_and_leaves_the_reports_and_marks_to_the_space_item(
    ports: FakePorts, small_groups: int
) -> None:
    report = reports.create_report(ports, SPACE, EVERYTHING, NOW)
    streams = streams_in(ports, 3)
    queue = ListQueue()
    recompute.schedule(ports, queue, NOW)
    first, second, visit = queue.items()

    done = recompute.process(ports, first, NOW)

    assert (done.streams_processed, done.reports_refreshed, done.spaces) == (2, 0, 0)
    assert sorted(ports.metrics_repository.streams(SPACE)) == sorted(first.streams)
    marks = {m["stream"]: m["caught_up"] for m in ports.list_dirty_streams(SPACE)}
    assert len(marks) == 3 and all(marks[s] for s in first.streams)
    assert ports.metrics_repository.report_state(SPACE, report.number) is None

    again = recompute.process(ports, first, NOW)  # a duplicate delivery: nothing left to do
    assert again.streams_processed == 0

    last = recompute.combine([recompute.process(ports, second, NOW), recompute.process(ports, visit, NOW)])
    assert (last.streams_processed, last.reports_refreshed, last.spaces) == (1, 1, 1)
    assert ports.list_dirty_streams(SPACE) == []
    assert sorted(ports.metrics_repository.streams(SPACE)) == sorted(streams)


def test_the_space_item_does_the_streams_its_groups_have_not_done_yet(ports: FakePorts, small_groups: int) -> None:
    streams_in(ports, 3)
    queue = ListQueue()
    recompute.schedule(ports, queue, NOW)
    *groups, visit = queue.items()

    early = recompute.process(ports, visit, NOW)  # the space's item ran before its groups

    assert (early.streams_processed, early.reports_refreshed, early.complete) == (3, 0, True)
    assert ports.list_dirty_streams(SPACE) == []
    late = recompute.combine(recompute.process(ports, group, NOW) for group in groups)
    assert late.streams_processed == 0


def test_combine_adds_counts_and_keeps_the_largest_lag() -> None:
    one = recompute.RecomputeSummary(spaces=1, streams_pending=2, streams_processed=2, lag_seconds=5, first_space="a")
    two = recompute.RecomputeSummary(spaces=1, streams_pending=1, streams_processed=0, lag_seconds=9, complete=False)
    total = recompute.combine([one, two])
    assert (total.spaces, total.streams_pending, total.streams_processed) == (2, 3, 2)
    assert (total.lag_seconds, total.complete, total.first_space) == (9, False, "a")
    assert recompute.combine([]).complete


# --------------------------------------------------------------------------------------------- equivalence
DEPLOYMENT = st.tuples(
    st.integers(0, 3),  # project
    st.sampled_from(["production", "staging"]),
    st.sampled_from([None, "acme"]),  # tenant
    st.integers(0, 90 * 24),  # hours ago
    st.sampled_from([TaskState.SUCCESS, TaskState.SUCCESS, TaskState.FAILED]),
)


def _history(ports: FakePorts, history: list[tuple[int, str, str | None, int, TaskState]]) -> None:
    for n, (project, environment, tenant, hours_ago, state) in enumerate(history):
        draft = DeploymentDraft(
            client_id=f"d{n}",
            project=f"p{project}",
            environment=environment,
            tenant=tenant,
            finished_at=NOW - timedelta(hours=hours_ago, seconds=n),
            state=state,
        )
        deployments.ingest(ports, ports.spaces[SPACE], draft, WRITTEN)


def _stored(ports: FakePorts, report_id: str) -> dict[str, Any]:
    """Every figure and view the recompute stored, without the generation ids (new each time)."""
    data = ports.metrics_repository
    registrations = {k: {f: v for f, v in r.items() if f != "generation"} for k, r in data.streams(SPACE).items()}
    views = {}
    for split in (Split.NONE, Split.PROJECT, Split.ENVIRONMENT):
        _, series = metrics.read_metrics(
            ports,
            SPACE,
            report_id,
            split=split,
            time_range=TimeRange.LAST_QUARTER,
            granularity=Granularity.WEEKLY,
            tenant_tag_set_id=None,
            now=NOW,
        )
        views[split] = [s.model_dump() if hasattr(s, "model_dump") else repr(s) for s in series]
    return {"streams": registrations, "figures": data.space_figures(SPACE), "views": views}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.lists(DEPLOYMENT, min_size=1, max_size=40), group=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_the_fanned_out_recompute_stores_exactly_what_the_single_function_one_stores(
    history: list[tuple[int, str, str | None, int, TaskState]],
    group: int,
    seed: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(recompute, "STREAM_GROUP", group)
    single, fanned = FakePorts(), FakePorts()
    stored: list[dict[str, Any]] = []
    runs: list[recompute.RecomputeSummary] = []
    for ports in (single, fanned):
        ports.add_space()
        report = reports.create_report(ports, SPACE, EVERYTHING, NOW)
        _history(ports, history)
        if ports is single:
            runs.append(recompute.run(ports, NOW))
        else:
            queue = ListQueue()
            recompute.schedule(ports, queue, NOW)
            items = queue.items()
            order = random.Random(seed)
            items += order.sample(items, k=min(2, len(items)))  # duplicate deliveries
            order.shuffle(items)  # SQS promises no order
            runs.append(recompute.combine(recompute.process(ports, item, NOW) for item in items))
        assert ports.list_dirty_streams(SPACE) == []
        stored.append(_stored(ports, report.id))

    assert stored[0] == stored[1]
    assert (runs[1].streams_processed, runs[1].streams_failed) == (runs[0].streams_processed, 0)
