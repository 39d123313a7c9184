"""An insight's ``result`` from its report's precomputed views (API.md "PostHog": one value per
interval per series: the count for deployment frequency, the rate (0–1) for rate metrics, the
chosen statistic in seconds for durations).

A read brings the report up to date first (``freshness.read_report``): within the read bounds by
default, whatever it takes with ``refresh=force_blocking``, not at all with ``force_cache``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from dora_insights.domain.insights import DoraMetricsQuery, Insight, InsightResult, Metric, ResultSeries, Statistic
from dora_insights.domain.reports import report_number
from dora_insights.domain.zones import resolve_time_zone
from dora_insights.errors import DoraError
from dora_insights.logic import freshness, metrics, reports
from dora_insights.logic.freshness import Freshness
from dora_insights.logic.ports import Ports

# PostHog's refresh modes: force_blocking does all the pending work, force_cache none; the others
# (the default ``blocking`` among them) do what fits the read bounds.
FORCE_BLOCKING = "force_blocking"
FORCE_CACHE = "force_cache"

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
) -> tuple[InsightResult | None, Freshness | None]:
    """(result, freshness) of an insight; ``refresh`` (a PostHog mode) brings its report up to date
    first (None: the views as stored, for the scheduled threshold checks that just computed them).

    An insight whose report was deleted, or whose stored query no longer reads, has no result
    (None) rather than an error. A 503 (the figures moving under the read, a dependency refusing
    for now) is raised: a reader is told to retry, a threshold check counts as failed and runs
    again, instead of either taking "no value" for an answer.
    """
    result, fresh, _ = result_in_zone(store, space_id, insight, now, refresh=refresh)
    return result, fresh


def result_in_zone(
    store: Ports, space_id: str, insight: Insight, now: datetime, *, refresh: str | None = None
) -> tuple[InsightResult | None, Freshness | None, ZoneInfo | None]:
    """``result_of`` with the time zone of the report it was read from, whose local dates its
    intervals start on (None with no result)."""
    try:
        query = DoraMetricsQuery.model_validate(insight.query)
    except ValidationError:
        return None, None, None
    try:
        current = None
        fresh: Freshness | None = None
        if refresh is not None:
            report = reports.get_report(store, space_id, query.reportId)
            read = freshness.read_report(
                store, space_id, report, now, force=refresh == FORCE_BLOCKING, refresh=refresh != FORCE_CACHE
            )
            current, fresh = (report, read.state), read.freshness
        report, series = metrics.read_metrics(
            store,
            space_id,
            query.reportId,
            split=query.split,
            time_range=query.timeRange,
            granularity=query.granularity,
            tenant_tag_set_id=query.tenantTagSetId,
            now=now,
            current=current,
        )
    except DoraError as error:
        if error.status >= 500:  # not now (figures moving under the read, a dependency): no "no result"
            raise
        return None, None, None
    if fresh is None:  # as stored: pending not looked at
        state = store.metrics().report_state(space_id, report_number(report.id))
        fresh = Freshness(str(state["computed_at"]) if state else None, None)
    result = InsightResult(
        interval=tuple(i["start"] for i in series[0].intervals) if series else (),
        series=tuple(ResultSeries(name=s.name, values=tuple(value_of(i, query) for i in s.intervals)) for s in series),
    )
    return result, fresh, resolve_time_zone(report.time_zone)
