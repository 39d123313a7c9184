"""The scheduled recompute, its quarantine of failing streams, and the reads of what it stored
(``logic.recompute``, ``logic.health``, ``logic.summary``, ``logic.metrics``) over in-memory ports."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from dora_insights.domain.aggregates import Granularity, Split, TimeRange
from dora_insights.domain.model import DeploymentDraft, TaskState
from dora_insights.domain.reports import TenantMode
from dora_insights.domain.tiers import DEFAULT_BENCHMARK
from dora_insights.domain.times import format_instant
from dora_insights.errors import RequestInvalidError, ResourceNotFoundError
from dora_insights.logic import deployments, health, metrics, recompute, reports, summary
from tests.unit.logic.conftest import NOW, WRITTEN
from tests.unit.logic.fakes import SPACE, FakePorts

pytestmark = pytest.mark.usefixtures("no_thresholds")


def ingest(
    ports: FakePorts,
    deployment_id: str,
    *,
    days_ago: float,
    state: TaskState = TaskState.SUCCESS,
    at: datetime = WRITTEN,
) -> str:
    draft = DeploymentDraft(
        client_id=deployment_id, project="shop", finished_at=NOW - timedelta(days=days_ago), state=state
    )
    return deployments.ingest(ports, ports.spaces[SPACE], draft, at).deployment.stream_key


def three_deployments(ports: FakePorts) -> str:
    ingest(ports, "d1", days_ago=3)
    ingest(ports, "d2", days_ago=2, state=TaskState.FAILED)
    return ingest(ports, "d3", days_ago=1)


def test_a_dirty_stream_gets_figures_its_mark_goes_and_a_second_run_has_nothing_to_do(ports: FakePorts) -> None:
    stream = three_deployments(ports)
    first = recompute.run(ports, NOW)
    assert (first.spaces, first.streams_pending, first.streams_processed, first.streams_failed) == (1, 1, 1, 0)
    assert first.complete
    assert ports.list_dirty_streams(SPACE) == []
    registration = ports.metrics_repository.streams(SPACE)[stream]
    assert (registration["deployments"], registration["dims"]["project"]) == (3, "shop")
    records = ports.metrics_repository.space_figures(SPACE)[stream]
    assert [r["deployment_id"] for r in records] == ["d1", "d2", "d3"]
    shown = deployments.get_deployment(ports, SPACE, "d3")  # the figures of the latest recompute
    assert shown.figures is not None
    assert (shown.figures.previous_success_id, shown.figures.time_since_previous_success_seconds) == ("d1", 2 * 86_400)
    assert (shown.figures.recovered_from_failed_id, shown.figures.time_to_recovery_seconds) == ("d2", 86_400)
    space_record, streams = ports.health_repository.space_health(SPACE)
    assert space_record is not None and space_record.last_success_at == format_instant(NOW) and streams == {}
    assert ports.health_repository.cursor == SPACE

    second = recompute.run(ports, NOW + timedelta(minutes=5))
    assert (second.streams_pending, second.streams_processed) == (0, 0)


def test_the_summary_reads_the_recomputed_figures(ports: FakePorts) -> None:
    three_deployments(ports)
    recompute.run(ports, NOW)
    answer = summary.summary(
        ports, SPACE, start=None, end=None, project="SHOP", environment=None, benchmark=DEFAULT_BENCHMARK, now=NOW
    )
    assert answer["deployments"] == 3
    assert answer["deployment_frequency"]["successful_deployments"] == 2
    assert answer["deployment_frequency"]["deployment_days"] == 2
    assert (
        summary.summary(
            ports, SPACE, start=None, end=None, project="api", environment=None, benchmark=DEFAULT_BENCHMARK, now=NOW
        )["deployments"]
        == 0
    )
    with pytest.raises(RequestInvalidError):
        summary.summary(
            ports, SPACE, start=NOW, end=NOW, project=None, environment=None, benchmark=DEFAULT_BENCHMARK, now=NOW
        )


def test_a_report_of_the_changed_streams_is_recomputed_and_its_views_read(ports: FakePorts) -> None:
    fields = reports.ReportFields(
        "Everything", None, (), (), (), (), TenantMode.TENANTED_AND_UNTENANTED, (), "UTC", None, None
    )
    report = reports.create_report(ports, SPACE, fields, NOW)
    three_deployments(ports)
    run = recompute.run(ports, NOW)
    assert run.reports_refreshed == 1
    state = ports.metrics_repository.report_state(SPACE, report.number)
    assert state is not None and state["streams"] == 1
    _, series = metrics.read_metrics(
        ports,
        SPACE,
        report.id,
        split=Split.NONE,
        time_range=TimeRange.LAST_QUARTER,
        granularity=Granularity.MONTHLY,
        tenant_tag_set_id=None,
        now=NOW,
    )
    assert sum(s.total for s in series) == 3  # every deployment in the one series
    assert recompute.run(ports, NOW + timedelta(minutes=5)).reports_refreshed == 0  # nothing changed


def test_a_stream_failing_three_runs_in_a_row_is_quarantined_until_something_new_is_written(
    ports: FakePorts, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = ingest(ports, "d1", days_ago=1)
    original = recompute.recompute_stream

    def broken(*_: Any, **__: Any) -> bool:
        raise ValueError("a bug with dora_abcdefghijklmnop in it")

    monkeypatch.setattr(recompute, "recompute_stream", broken)
    for n in range(health.QUARANTINE_AFTER):
        run = recompute.run(ports, NOW + timedelta(minutes=n))
        assert (run.streams_failed, run.streams_quarantined) == (1, 0)
    record = health.stream_health(ports, SPACE, stream)
    assert record is not None and record.quarantined
    assert (record.failures, record.error_type, record.error_message) == (3, "ValueError", "a bug with dora_… in it")

    held = recompute.run(ports, NOW + timedelta(minutes=10))
    assert (held.streams_pending, held.streams_failed, held.streams_quarantined) == (1, 0, 1)
    seen = health.space_health(ports, SPACE)
    assert seen.dirty_streams == 1
    assert [(s.record.stream, s.project, s.environment) for s in seen.streams] == [(stream, "shop", "production")]

    # A new deployment of the stream re-marks it: it is tried at once, and its success clears the record.
    monkeypatch.setattr(recompute, "recompute_stream", original)
    ingest(ports, "d2", days_ago=0.5, at=NOW + timedelta(minutes=15))
    healed = recompute.run(ports, NOW + timedelta(minutes=20))
    assert (healed.streams_processed, healed.streams_quarantined) == (1, 0)
    assert health.stream_health(ports, SPACE, stream) is None
    assert health.space_health(ports, SPACE).streams == []


def test_the_health_of_an_unknown_space_is_404(ports: FakePorts) -> None:
    with pytest.raises(ResourceNotFoundError):
        health.space_health(ports, "Spaces-9")
