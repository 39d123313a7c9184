"""An insight's ``result`` from its report's precomputed views (API.md "PostHog": one value per
interval per series: the count for deployment frequency, the rate (0–1) for rate metrics, the
chosen statistic in seconds for durations)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from dora_insights.dal.metrics import MetricsStore
from dora_insights.dal.store import Store
from dora_insights.domain.insights import DoraMetricsQuery, Metric, Statistic
from dora_insights.domain.reports import report_number
from dora_insights.errors import DoraError
from dora_insights.logic import metrics, reports

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
    store: Store, space_id: str, insight: dict[str, Any], now: datetime, *, refresh: str | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    """(result, last_refresh) of an insight; ``refresh=force_blocking`` recomputes its report now.

    An insight whose report was deleted has no result (None) rather than an error.
    """
    try:
        query = DoraMetricsQuery.model_validate(insight["query"])
    except ValidationError:
        return None, None
    try:
        if refresh == "force_blocking":
            report = reports.get_report(store, space_id, query.reportId)
            metrics.recompute_report(store, space_id, report, now)
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
    state = MetricsStore(store).report_state(space_id, report_number(report.id))
    intervals = [i["start"] for i in series[0].intervals] if series else []
    result = {
        "interval": intervals,
        "series": [{"name": s.name, "values": [value_of(i, query) for i in s.intervals]} for s in series],
    }
    return result, (str(state["computed_at"]) if state else None)
