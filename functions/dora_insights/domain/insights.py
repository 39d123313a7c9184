"""Saved insights (PostHog dialect): the DORA metric query, the records the insight use cases and
their store exchange (insights, activity, views, sharing, thresholds), derived names, change
diffs, threshold checks and trending rank. Pure.

The records are frozen pydantic models: ``dal.insights`` validates them from table items (an
attribute an older item lacks takes its default, one a record does not name is ignored) and
writes their JSON dump; a change is a ``model_copy(update=...)``. Their field names are the
stored attribute names, which are PostHog's (``dialects.posthog`` maps them to its response
models).
"""

import secrets
import string
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, Self

from pydantic import ConfigDict, Field, model_validator

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
    def _tag_set_for_its_split(self) -> Self:
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


class Record(Model):
    """Base of the insight records: immutable values."""

    model_config = ConfigDict(defer_build=True, frozen=True)


class Person(Record):
    """Who did something (created, changed, viewed), as PostHog shows people."""

    first_name: str
    email: str | None = None

    @classmethod
    def named(cls, who: str) -> Self:
        """A person by an API key's user (or name): an email address is also the ``email``."""
        return cls(first_name=who, email=who if "@" in who else None)


# --- insights ------------------------------------------------------------------------------
class Insight(Record):
    """A saved insight as stored (``version`` counts its writes, for optimistic concurrency)."""

    id: int
    short_id: str
    name: str | None = None
    derived_name: str | None = None
    description: str | None = None
    # The query as stored, JSON: ``DoraMetricsQuery`` reads it where it is used, and a stored query
    # it no longer accepts leaves the insight readable (without a result). Its diff in the activity
    # log and its rendering are of this JSON, as written.
    query: dict[str, Any]
    order: int | None = None
    deleted: bool = False
    dashboards: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    favorited: bool = False
    created_at: str
    created_by: Person
    last_modified_at: str
    last_modified_by: Person
    version: int = 1

    @property
    def title(self) -> str | None:
        """The name it is shown by: its own, else the derived one."""
        return self.name or self.derived_name


class InsightDraft(Record):
    """What a client sets when it creates an insight."""

    name: str | None = None
    derived_name: str | None = None
    description: str | None = None
    query: DoraMetricsQuery
    order: int | None = None
    deleted: bool = False
    dashboards: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    favorited: bool = False


class InsightChanges(Record):
    """A PATCH of an insight: only the fields in ``model_fields_set`` were sent. None clears a field
    that may be empty (``name``, ``derived_name``, ``description``, ``order``) and leaves the others
    as they are."""

    name: str | None = None
    derived_name: str | None = None
    description: str | None = None
    query: DoraMetricsQuery | None = None
    order: int | None = None
    deleted: bool | None = None
    dashboards: tuple[int, ...] | None = None
    tags: tuple[str, ...] | None = None
    favorited: bool | None = None


class ResultSeries(Record):
    """One series of a result."""

    name: str
    values: tuple[float | None, ...]


class InsightResult(Record):
    """An insight's ``result``: the intervals' start dates and one value per interval per series."""

    interval: tuple[str, ...]
    series: tuple[ResultSeries, ...]


class ViewedInsight(Record):
    """An insight with when the caller last viewed it (``my_last_viewed``)."""

    insight: Insight
    last_viewed_at: str


class TrendingInsight(Record):
    """An insight with its views over the trending window."""

    insight: Insight
    view_count: int
    recent_viewers: tuple[Person, ...]


# --- activity ------------------------------------------------------------------------------
class ActivityKind(StrEnum):
    """What an activity entry records."""

    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    RESTORED = "restored"


class FieldChange(Record):
    """One tracked field that changed, with its values before and after (as stored, JSON)."""

    type: str = "Insight"
    action: str = "changed"
    field: str
    before: Any = None
    after: Any = None


class ActivityDetail(Record):
    """``detail`` of an activity entry."""

    name: str | None = None
    short_id: str
    changes: tuple[FieldChange, ...] = ()


class ActivityEntry(Record):
    """One entry of the activity log."""

    activity: ActivityKind
    scope: str = "Insight"
    item_id: int
    user: Person
    created_at: str
    detail: ActivityDetail


TRACKED_FIELDS = ("name", "derived_name", "description", "query", "order", "deleted", "dashboards", "tags", "favorited")


def changes(before: Insight, after: Insight) -> tuple[FieldChange, ...]:
    """The before/after diff of every tracked field that changed (activity ``detail.changes``)."""
    return tuple(
        FieldChange(field=field, before=getattr(before, field), after=getattr(after, field))
        for field in TRACKED_FIELDS
        if getattr(before, field) != getattr(after, field)
    )


def activity_kind(before: Insight, after: Insight) -> ActivityKind:
    """``deleted`` / ``restored`` when the soft-delete flag flips, else ``updated``."""
    if not before.deleted and after.deleted:
        return ActivityKind.DELETED
    if before.deleted and not after.deleted:
        return ActivityKind.RESTORED
    return ActivityKind.UPDATED


# --- views ---------------------------------------------------------------------------------
class LastView(Record):
    """A viewer's last view of one insight."""

    insight_id: int
    viewed_at: str


class Viewer(Person):
    """A viewer in a day's view count, with the time of the view."""

    viewed_at: str = ""


class DailyViews(Record):
    """One insight's views on one day: each viewer counted once. The day's latest viewers are kept in
    two short lists, newest first: ``recent_viewers`` fills up to a few, then moves whole to
    ``earlier_viewers`` and starts again (``dal.insights``), so together they always hold at least
    the few latest (an item written before the lists were bounded may hold more)."""

    insight_id: int
    view_count: int
    last_viewed_at: str = ""
    recent_viewers: tuple[Viewer, ...] = ()
    earlier_viewers: tuple[Viewer, ...] = ()

    @property
    def viewers(self) -> tuple[Viewer, ...]:
        """Every viewer the item keeps (both lists)."""
        return (*self.recent_viewers, *self.earlier_viewers)


# --- sharing -------------------------------------------------------------------------------
class Kdf(Record):
    """The key derivation (and its cost) a share password's hash was made with."""

    name: str = "scrypt"
    n: int
    r: int
    p: int


class SharePassword(Record):
    """A password of a share link: only its hash is stored, with its salt and KDF parameters."""

    id: str
    note: str | None = None
    created_at: str
    created_by: Person
    salt: str
    hash: str
    kdf: Kdf | None = None  # None: a hash stored before the parameters were (the legacy cost)


class Sharing(Record):
    """An insight's sharing configuration; ``version`` counts its writes (0 for items written before
    versions), for optimistic concurrency."""

    enabled: bool = False
    access_token: str
    password_required: bool = False
    settings: dict[str, Any] = Field(default_factory=dict)  # free JSON the client sets, kept as sent
    created_at: str
    share_passwords: tuple[SharePassword, ...] = ()
    password_salt: str | None = None
    version: int = 0


class SharingChanges(Record):
    """A PATCH of the sharing configuration: None leaves a field as it is."""

    enabled: bool | None = None
    password_required: bool | None = None
    settings: dict[str, Any] | None = None


class NewSharePassword(Record):
    """A share password just added: the only time the password itself is shown."""

    id: str
    password: str
    note: str | None
    created_at: str


class ShareSession(Record):
    """A session opened by a share password: bound to that password and to the link's access token
    (by hash); ``expires_at`` in epoch seconds."""

    space_id: str
    insight_id: int
    password_id: str
    link_hash: str
    expires_at: int = 0


# --- thresholds ----------------------------------------------------------------------------
class ThresholdState(StrEnum):
    """A threshold's state after a check."""

    FIRING = "Firing"
    NOT_FIRING = "NotFiring"


class Bounds(Record):
    """Threshold bounds on the insight's latest interval value. Numbers as stored: an integral one
    reads back as an int, and the alert event carries it so."""

    lower: int | float | None = None
    upper: int | float | None = None


class Condition(Record):
    """``{"type": "absolute_value", "bounds": {...}}``."""

    type: str = "absolute_value"
    bounds: Bounds


class ThresholdSettings(Record):
    """What a client sets on a threshold."""

    name: str
    enabled: bool = True
    condition: Condition
    calculation_interval: str = "daily"
    subscribed_users: tuple[str, ...] = ()


# The fields of ``ThresholdSettings``: what a PATCH writes (the rest of a threshold is its checks').
THRESHOLD_SETTINGS = ("name", "enabled", "condition", "calculation_interval", "subscribed_users")


class ThresholdChanges(Record):
    """A PATCH of a threshold: None leaves a setting as it is."""

    name: str | None = None
    enabled: bool | None = None
    condition: Condition | None = None
    calculation_interval: str | None = None
    subscribed_users: tuple[str, ...] | None = None


class ThresholdCheck(Record):
    """One evaluation of a threshold."""

    id: str
    created_at: str
    calculated_value: float | None = None
    state: ThresholdState


class Threshold(ThresholdSettings):
    """An alert rule on an insight, with its state and checks (newest first).

    ``version`` counts the writes of its settings (0 for items stored before versions), for
    optimistic concurrency between PATCHes; a check (state, value, checks) does not move it."""

    id: str
    insight: int
    state: ThresholdState | None = None
    last_checked_at: str | None = None
    last_value: float | None = None
    checks: tuple[ThresholdCheck, ...] = ()
    created_at: str
    created_by: Person
    version: int = 0


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
