"""An insight's ``result`` from its report's precomputed views (API.md "PostHog": one value per
interval per series: the count for deployment frequency, the rate (0–1) for rate metrics, the
chosen statistic in seconds for durations).

A read brings the report up to date first (``freshness.read_report``): within the read bounds by
default, whatever it takes with ``refresh=force_blocking``, not at all with ``force_cache``.
The results of one answer share their reads (``ResultReads``): an insight list reads each of its
reports, their states and each stored view once, however many of its insights show them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from dora_insights.domain.insights import DoraMetricsQuery, Insight, InsightResult, Metric, ResultSeries, Statistic
from dora_insights.domain.reports import ReportDefinition
from dora_insights.domain.views import ViewId
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
    return ResultReads(store, space_id, now, refresh=refresh).result_of(insight)


def result_in_zone(
    store: Ports, space_id: str, insight: Insight, now: datetime, *, refresh: str | None = None
) -> tuple[InsightResult | None, Freshness | None, ZoneInfo | None]:
    """``result_of`` with the time zone of the report it was read from, whose local dates its
    intervals start on (None with no result)."""
    return ResultReads(store, space_id, now, refresh=refresh).result_in_zone(insight)


@dataclass(frozen=True, slots=True)
class _Current:
    """A report as one answer reads it: its definition, its state, and the freshness of a refresh
    (None: read as stored, its freshness is the state's ``computed_at``)."""

    report: ReportDefinition
    state: Mapping[str, Any]
    fresh: Freshness | None


class ResultReads:
    """The results of the insights of one answer at ``now``, brought up to date as ``refresh`` says
    (see :func:`result_of`), sharing their reads: each report's definition and state (and its
    refresh) once, each stored view once, the space's tenant tag sets at most once. An insight list
    so costs a few calls per distinct report and view, not per insight; each result is the one
    :func:`result_of` gives over the report as this answer read it (its refresh runs once, so when a
    report has more waiting than one read may do, every insight of it shows the same state and
    pending count, rather than later ones a second round of catch-up).

    One per answer: what it holds is what that answer read (a report deleted meanwhile stays read).
    An answer that could not be had now (a 5xx) is not kept: the next insight reads again.
    """

    def __init__(self, store: Ports, space_id: str, now: datetime, *, refresh: str | None = None) -> None:
        self.store = store
        self.space_id = space_id
        self.now = now
        self.refresh = refresh
        self._reports: dict[str, _Current | DoraError] = {}
        self._views: dict[tuple[str, str, ViewId], list[dict[str, Any]]] = {}
        self._tag_sets: dict[str, str] | None = None

    def result_of(self, insight: Insight) -> tuple[InsightResult | None, Freshness | None]:
        """(result, freshness) of an insight, as :func:`result_of`."""
        result, fresh, _ = self.result_in_zone(insight)
        return result, fresh

    def result_in_zone(self, insight: Insight) -> tuple[InsightResult | None, Freshness | None, ZoneInfo | None]:
        """(result, freshness, time zone) of an insight, as :func:`result_in_zone`."""
        try:
            query = DoraMetricsQuery.model_validate(insight.query)
        except ValidationError:
            return None, None, None
        try:
            current = self._current(query.reportId)
            view = metrics.view_of(
                self.store,
                self.space_id,
                current.state,
                query.split,
                query.granularity,
                query.tenantTagSetId,
                tag_sets=self._known_tag_sets,
            )
            stored, current = self._view(query.reportId, current, view)
            series = metrics.regrid(
                current.report,
                stored,
                split=query.split,
                time_range=query.timeRange,
                granularity=query.granularity,
                now=self.now,
            )
        except DoraError as error:
            if error.status >= 500:  # not now (figures moving under the read, a dependency): no "no result"
                raise
            return None, None, None
        # As stored (pending not looked at): as of the state the views were read from.
        fresh = current.fresh or Freshness(str(current.state["computed_at"]), None)
        result = InsightResult(
            interval=tuple(i["start"] for i in series[0].intervals) if series else (),
            series=tuple(
                ResultSeries(name=s.name, values=tuple(value_of(i, query) for i in s.intervals)) for s in series
            ),
        )
        return result, fresh, resolve_time_zone(current.report.time_zone)

    def _current(self, report_id: str) -> _Current:
        """The report and its state: read (brought up to date as ``refresh`` says) on first use."""
        found = self._reports.get(report_id)
        if found is None:
            try:
                found = self._read(report_id)
            except DoraError as error:
                if error.status >= 500:
                    raise
                found = error  # no such report (or none readable): every insight of it has no result
            self._reports[report_id] = found
        if isinstance(found, DoraError):
            raise found
        return found

    def _read(self, report_id: str) -> _Current:
        if self.refresh is None:  # as stored: only a report whose views are not current is computed
            report, state = metrics.current_state(self.store, self.space_id, report_id, self.now)
            return _Current(report, state, None)
        report = reports.get_report(self.store, self.space_id, report_id)
        read = freshness.read_report(
            self.store,
            self.space_id,
            report,
            self.now,
            force=self.refresh == FORCE_BLOCKING,
            refresh=self.refresh != FORCE_CACHE,
        )
        return _Current(report, read.state, read.freshness)

    def _view(self, report_id: str, current: _Current, view: ViewId) -> tuple[list[dict[str, Any]], _Current]:
        """A stored view of the report, read on first use, and the report as now known: with the state
        a concurrent recompute flipped to, when the view had to be read from it."""
        key = (report_id, str(current.state["generation"]), view)
        if key not in self._views:
            stored, state = metrics.stored_series(self.store, self.space_id, current.report, current.state, view)
            if state is not current.state:
                current = _Current(current.report, state, current.fresh)
                self._reports[report_id] = current
                key = (report_id, str(state["generation"]), view)
            self._views[key] = stored
        return self._views[key], current

    def _known_tag_sets(self) -> dict[str, str]:
        if self._tag_sets is None:
            self._tag_sets = metrics.tag_set_names(self.store, self.space_id)
        return self._tag_sets
