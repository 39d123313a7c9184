"""An insight's ``result`` from its report's precomputed views (API.md "PostHog": one value per
interval per series: the count for deployment frequency, the rate (0–1) for rate metrics, the
chosen statistic in seconds for durations).

``refresh=force_blocking`` brings the report up to date before answering (``refresh_report``):
what the scheduled recompute would do for the report's dirty streams, done now, with its code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from dora_insights.domain.aggregates import StreamDims
from dora_insights.domain.insights import DoraMetricsQuery, Insight, InsightResult, Metric, ResultSeries, Statistic
from dora_insights.domain.model import FailureEvent
from dora_insights.domain.reports import ReportDefinition, report_number
from dora_insights.errors import DoraError
from dora_insights.logic import metrics, recompute, reports
from dora_insights.logic.ports import MetricsRepository, Ports
from dora_insights.observability import logger

# Re-reads of the stream pointers when a concurrent recompute moved one between the reads.
_SNAPSHOT_ATTEMPTS = 3

_STAT_FIELD = {
    Statistic.COUNT: "count",
    Statistic.MEAN: "mean",
    Statistic.MEDIAN: "median",
    Statistic.MIN: "min",
    Statistic.MAX: "max",
    Statistic.P95: "ninety_fifth",
}
_DURATIONS = {
    Metric.LEAD_TIME: "lead_time",
    Metric.RECOVERY_TIME: "mean_time_to_recovery",
    Metric.TIME_TO_RESTORE: "time_to_restore",
}
_RATES = {
    Metric.CHANGE_FAILURE_RATE: "change_failure_rate",
    Metric.DEPLOYMENT_FAILURE_RATE: "deployment_failure_rate",
    Metric.REWORK_RATE: "rework_rate",
}


def value_of(interval: dict[str, Any], query: DoraMetricsQuery) -> float | None:
    """The number an insight shows for one interval."""
    if query.metric is Metric.DEPLOYMENT_FREQUENCY:
        return float(interval["number_of_successful_deployments"])
    if query.metric in _RATES:
        return float(interval[_RATES[query.metric]]["rate"])
    value = interval[_DURATIONS[query.metric]][_STAT_FIELD[query.statistic]]
    return None if value is None else float(value)


def result_of(
    store: Ports, space_id: str, insight: Insight, now: datetime, *, refresh: str | None = None
) -> tuple[InsightResult | None, str | None]:
    """(result, last_refresh) of an insight; ``refresh=force_blocking`` recomputes its report now.

    An insight whose report was deleted, or whose stored query no longer reads, has no result
    (None) rather than an error.
    """
    try:
        query = DoraMetricsQuery.model_validate(insight.query)
    except ValidationError:
        return None, None
    try:
        if refresh == "force_blocking":
            refresh_report(store, space_id, reports.get_report(store, space_id, query.reportId), now)
        report, series = metrics.read_metrics(
            store,
            space_id,
            query.reportId,
            split=query.split,
            time_range=query.timeRange,
            granularity=query.granularity,
            tenant_tag_set_id=query.tenantTagSetId,
            now=now,
        )
    except DoraError:
        return None, None
    state = store.metrics().report_state(space_id, report_number(report.id))
    result = InsightResult(
        interval=tuple(i["start"] for i in series[0].intervals) if series else (),
        series=tuple(ResultSeries(name=s.name, values=tuple(value_of(i, query) for i in s.intervals)) for s in series),
    )
    return result, (str(state["computed_at"]) if state else None)


@dataclass(frozen=True)
class ReportRefresh:
    """What ``refresh_report`` did: the dirty streams it brought up to date (their marks cleared
    unless marked again meanwhile), those it could not (left dirty for the schedule), and the
    reports it recomputed (the asked one first)."""

    streams: tuple[str, ...]
    failed: tuple[str, ...]
    reports: tuple[str, ...]


def refresh_report(store: Ports, space_id: str, report: ReportDefinition, now: datetime) -> ReportRefresh:
    """Bring a report up to date now, as the scheduled recompute would (``refresh=force_blocking``).

    1. The report's dirty streams (registered streams it includes, and new streams whose latest
       deployment it includes) get new figures from ``recompute.recompute_stream``, the scheduled
       run's own code, and their marks are cleared as that run clears them: only if not marked
       again since they were read, so a deployment arriving meanwhile keeps its stream dirty.
       A stream that fails is logged and left dirty for the schedule (which isolates and
       quarantines it); the report is still computed from what is stored.
    2. The report is recomputed, and so is every other report including a stream of step 1: the
       cleared marks no longer tell the schedule that those reports are behind.
    Reports are computed from one consistent read of the stream pointers and figures (re-read
    when a concurrent run flipped a pointer in between), so a generation a concurrent run
    deletes is never half-read.
    """
    data = store.metrics()
    cache: dict[str, Any] = {"streams": data.streams(space_id)}
    marks = [m for m in store.list_dirty_streams(space_id) if _includes(report, data, space_id, m["stream"], cache)]
    processed: list[str] = []
    failed: list[str] = []
    failures: list[FailureEvent] | None = None
    if marks:
        space = store.get_space(space_id)
        window = timedelta(hours=space.failure_window_hours if space else 24.0)
        failures = data.space_failures(space_id)
        for mark in marks:
            stream, dirty_at = str(mark["stream"]), str(mark["dirty_at"])
            try:
                recompute.recompute_stream(store, space_id, stream, window, failures, cache)
                data.clear_dirty(space_id, stream, dirty_at)
            except Exception:  # one broken stream must not fail the read: the schedule deals with it
                logger.exception(
                    "force_blocking: stream recompute failed", extra={"space_id": space_id, "stream": stream}
                )
                failed.append(stream)
                continue
            processed.append(stream)
    streams, figures = _snapshot(data, space_id)
    refreshed = [report]
    if processed:
        refreshed += [
            other
            for other in reports.list_reports(store, space_id)
            if other.id != report.id and set(processed) & set(metrics.report_streams(other, streams))
        ]
    for each in refreshed:
        metrics.recompute_report(store, space_id, each, now, streams=streams, figures=figures, failures=failures)
    return ReportRefresh(tuple(processed), tuple(failed), tuple(r.id for r in refreshed))


def _includes(
    report: ReportDefinition, data: MetricsRepository, space_id: str, stream: str, cache: dict[str, Any]
) -> bool:
    """Whether a dirty stream belongs to the report: by its registration, or for a stream never
    recomputed yet, by its latest deployment (what its registration will say)."""
    registered: Mapping[str, Mapping[str, Any]] = cache["streams"]
    if stream in registered:
        return stream in metrics.report_streams(report, {stream: registered[stream]})
    deployments = data.stream_deployments(space_id, stream)
    if not deployments:
        return False
    latest = max(deployments, key=lambda d: (d.finished_at, d.id))
    registration = {
        "dims": metrics.dims_record(StreamDims.of(latest)),
        "project_group_id": latest.project_group_id,
        "tenant_id": latest.tenant_id,
    }
    return stream in metrics.report_streams(report, {stream: registration})


def _snapshot(
    data: MetricsRepository, space_id: str
) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """The stream pointers and the figures they point at, read consistently: a generation is
    deleted only after its pointer moved, so unchanged pointers after the figures read mean
    that read was complete."""
    streams = data.streams(space_id)
    figures = data.space_figures(space_id, streams)
    for _ in range(_SNAPSHOT_ATTEMPTS):
        again = data.streams(space_id)
        if _generations(again) == _generations(streams):
            break
        streams = again
        figures = data.space_figures(space_id, streams)
    return streams, figures


def _generations(streams: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {key: registration.get("generation") for key, registration in streams.items()}
