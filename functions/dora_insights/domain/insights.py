"""Saved insights (PostHog dialect): the DORA metric query, derived names, change diffs,
threshold checks and trending rank. Pure."""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from dora_insights.domain.aggregates import Granularity, Split, TimeRange
from dora_insights.domain.base import Model

SHORT_ID_ALPHABET = string.ascii_letters + string.digits
SHORT_ID_LENGTH = 8
QUERY_KIND = "DoraMetricsQuery"


class Metric(StrEnum):
    """What an insight charts."""

    DEPLOYMENT_FREQUENCY = "deployment_frequency"
    LEAD_TIME = "lead_time"
    CHANGE_FAILURE_RATE = "change_failure_rate"
    DEPLOYMENT_FAILURE_RATE = "deployment_failure_rate"
    RECOVERY_TIME = "recovery_time"
    TIME_TO_RESTORE = "time_to_restore"
    REWORK_RATE = "rework_rate"


DURATION_METRICS = frozenset({Metric.LEAD_TIME, Metric.RECOVERY_TIME, Metric.TIME_TO_RESTORE})
RATE_METRICS = frozenset({Metric.CHANGE_FAILURE_RATE, Metric.DEPLOYMENT_FAILURE_RATE, Metric.REWORK_RATE})


class Statistic(StrEnum):
    """Which statistic of a duration metric an interval shows."""

    COUNT = "count"
    MEAN = "mean"
    MEDIAN = "median"
    MIN = "min"
    MAX = "max"
    P95 = "p95"


class DoraMetricsQuery(Model):
    """An insight's query: which report, metric, split, range, granularity and statistic."""

    kind: str = Field(default=QUERY_KIND, pattern=f"^{QUERY_KIND}$")
    reportId: str = Field(min_length=1, max_length=64)  # noqa: N815 - the API's name
    metric: Metric
    split: Split = Split.NONE
    tenantTagSetId: str | None = Field(default=None, max_length=64)  # noqa: N815
    timeRange: TimeRange = TimeRange.LAST_QUARTER  # noqa: N815
    granularity: Granularity = Granularity.WEEKLY
    statistic: Statistic = Statistic.MEDIAN

    @model_validator(mode="after")
    def _tag_set_for_its_split(self) -> DoraMetricsQuery:
        if self.split is Split.TENANT_TAG_SET and not self.tenantTagSetId:
            raise ValueError("tenantTagSetId is required when split is TenantTagSet")
        return self


_METRIC_NAMES = {
    Metric.DEPLOYMENT_FREQUENCY: "Deployment frequency",
    Metric.LEAD_TIME: "Change lead time",
    Metric.CHANGE_FAILURE_RATE: "Change failure rate",
    Metric.DEPLOYMENT_FAILURE_RATE: "Deployment failure rate",
    Metric.RECOVERY_TIME: "Failed deployment recovery time",
    Metric.TIME_TO_RESTORE: "Time to restore",
    Metric.REWORK_RATE: "Rework rate",
}
_RANGE_NAMES = {
    TimeRange.LAST_MONTH: "last month",
    TimeRange.LAST_QUARTER: "last quarter",
    TimeRange.LAST_YEAR: "last year",
}


def derived_name(query: DoraMetricsQuery, report_name: str) -> str:
    """A readable name made from the query, used when the insight has no name of its own."""
    metric = _METRIC_NAMES[query.metric]
    if query.metric in DURATION_METRICS:
        metric += f" ({'p95' if query.statistic is Statistic.P95 else query.statistic.value})"
    split = "" if query.split is Split.NONE else f" by {query.split.value}"
    return f"{metric}{split}, {query.granularity.value.lower()}, {_RANGE_NAMES[query.timeRange]} ({report_name})"


def new_short_id() -> str:
    """An 8-character random id, as PostHog's ``short_id``."""
    return "".join(secrets.choice(SHORT_ID_ALPHABET) for _ in range(SHORT_ID_LENGTH))


TRACKED_FIELDS = ("name", "derived_name", "description", "query", "order", "deleted", "dashboards", "tags", "favorited")


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The before/after diff of every tracked field that changed (activity ``detail.changes``)."""
    return [
        {"type": "Insight", "action": "changed", "field": field, "before": before.get(field), "after": after.get(field)}
        for field in TRACKED_FIELDS
        if before.get(field) != after.get(field)
    ]


def activity_kind(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """``deleted`` / ``restored`` when the soft-delete flag flips, else ``updated``."""
    if not before.get("deleted") and after.get("deleted"):
        return "deleted"
    if before.get("deleted") and not after.get("deleted"):
        return "restored"
    return "updated"


class ThresholdState(StrEnum):
    """A threshold's state after a check."""

    FIRING = "Firing"
    NOT_FIRING = "NotFiring"


def threshold_state(value: float | None, lower: float | None, upper: float | None) -> ThresholdState:
    """Firing when the value is below ``lower`` or above ``upper``; no value never fires."""
    if value is None:
        return ThresholdState.NOT_FIRING
    if (lower is not None and value < lower) or (upper is not None and value > upper):
        return ThresholdState.FIRING
    return ThresholdState.NOT_FIRING


def rank_trending(counts: Mapping[int, int], last_viewed: Mapping[int, str]) -> list[int]:
    """Insight ids by view count, highest first; ties by most recent view, then id."""
    return sorted(counts, key=lambda i: (-counts[i], _descending(last_viewed.get(i, "")), i))


def _descending(text: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in text)


def latest_value(intervals: Sequence[str], values: Sequence[float | None], now_date: str) -> float | None:
    """The value of the interval containing ``now_date`` (the last interval starting on or before it)."""
    chosen: float | None = None
    for start, value in zip(intervals, values, strict=True):
        if start <= now_date:
            chosen = value
    return chosen
