"""Report aggregates (METRICS §4): intervals in the report's zone, dense series, statistics. Pure.

Shape of the computation, so the recompute can cache and combine cheaply:

1. :func:`interval_grid` fixes the intervals of a request (zone, granularity, range, ``now``) as
   UTC boundary instants, plus the local-day boundaries (for ``DeploymentDays``).
2. :func:`bucket_stream` turns one stream's figures (sorted by completion) into one mergeable
   :class:`Bucket` per interval in a single pass: counts, raw value lists, deployment days.
3. :func:`combine_series` merges the buckets of the streams of each series (counts add, lists
   concatenate, day sets unite) and :func:`summarize` turns a bucket into
   :class:`IntervalMetrics` (one sort per value list).

Decisions where METRICS is silent:

- An interval is a span of time: from the first instant of its first local date to the first
  instant of the next interval's first date. A deployment belongs to the interval whose span
  contains its ``CompletedTime`` (the same as its local date, except in the hour a zone repeats
  around midnight, where the local date would jump back).
- ``timeRange`` starts at local midnight of today's local date minus 1, 3 or 12 calendar months
  (day clamped to the month's end) and ends at ``now``; the intervals are those from the one
  containing that start to the one containing ``now``.
- ``DeploymentDays``: distinct local dates in the interval with at least one successful deployment.
- ``ChangeFailureRate``: rollback deployments are left out of numerator and denominator alike.
  ``ReworkRate``: over every completed deployment.
- ``TimeToRestore``: failure events in the interval containing their ``finished_at``; in series
  by project, project group, environment and environment group (events have no tenant, so the
  tenant splits have none), and in ``All``.
- Series membership of a stream comes from its :class:`StreamDims` (the caller takes them from
  the stream's latest deployment). Untenanted streams are the series ``Untenanted``; streams with
  no project group ``No project group``; ``EnvironmentGroup`` puts a stream in every group that
  lists its environment (none: left out); ``TenantTagSet`` in every tag of the set it has (none:
  left out). A series is listed when it has a completed deployment or a restored failure in range;
  ``All`` is always listed.
- Series order: ``Total`` deployments over the range, largest first; ties by name (code-point
  order, ascending).
"""

from __future__ import annotations

import calendar
import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from dora_insights.domain.figures import DeploymentFigures, time_to_restore
from dora_insights.domain.model import Deployment, FailureEvent, TaskState
from dora_insights.domain.times import parse_stored

ALL_SERIES = "All"
UNTENANTED_SERIES = "Untenanted"
NO_PROJECT_GROUP_SERIES = "No project group"
RATE_DECIMALS = 5


class Granularity(StrEnum):
    """Interval length (Octopus ``granularity``; default ``Weekly``)."""

    DAILY = "Daily"
    WEEKLY = "Weekly"
    MONTHLY = "Monthly"


class TimeRange(StrEnum):
    """Octopus ``timeRange``: the last 1, 3 or 12 calendar months up to now."""

    LAST_MONTH = "LastMonth"
    LAST_QUARTER = "LastQuarter"
    LAST_YEAR = "LastYear"

    @property
    def months(self) -> int:
        """How many calendar months the range reaches back."""
        return {"LastMonth": 1, "LastQuarter": 3, "LastYear": 12}[self.value]


class Split(StrEnum):
    """Octopus ``split``: how deployments are divided into series."""

    NONE = "None"
    PROJECT = "Project"
    PROJECT_GROUP = "ProjectGroup"
    ENVIRONMENT = "Environment"
    ENVIRONMENT_GROUP = "EnvironmentGroup"
    TENANT = "Tenant"
    TENANT_TAG_SET = "TenantTagSet"


# --- intervals -------------------------------------------------------------------------------


def interval_start(day: date, granularity: Granularity) -> date:
    """First local date of the interval containing ``day`` (weeks start on Sunday)."""
    if granularity is Granularity.DAILY:
        return day
    if granularity is Granularity.WEEKLY:
        return day - timedelta(days=(day.weekday() + 1) % 7)
    return day.replace(day=1)


def next_interval_start(start: date, granularity: Granularity) -> date:
    """First local date of the interval after the one starting at ``start``."""
    if granularity is Granularity.DAILY:
        return start + timedelta(days=1)
    if granularity is Granularity.WEEKLY:
        return start + timedelta(days=7)
    return _add_months(start.replace(day=1), 1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) of a local date: midnight, or the end of a DST gap that swallows it."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def range_start(time_range: TimeRange, zone: ZoneInfo, now: datetime) -> datetime:
    """Start of ``timeRange``: local midnight of today minus 1, 3 or 12 calendar months (UTC)."""
    today = _local_date(now, zone)
    return local_midnight(_add_months(today, -time_range.months), zone)


def _local_date(now: datetime, zone: ZoneInfo) -> date:
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return now.astimezone(zone).date()


@dataclass(frozen=True, slots=True)
class Interval:
    """One interval: its first local date and its span ``[begins, ends)`` in UTC."""

    start: date
    begins: datetime
    ends: datetime

    @property
    def start_of_interval(self) -> str:
        """Octopus ``StartOfInterval``: the local date ``YYYY-MM-DD``."""
        return self.start.isoformat()


@dataclass(frozen=True, slots=True)
class IntervalGrid:
    """The intervals of one request and the boundaries the bucketing bisects over (epoch seconds)."""

    zone: ZoneInfo
    granularity: Granularity
    intervals: tuple[Interval, ...]
    bounds: tuple[float, ...]  # len(intervals) + 1 interval boundaries
    day_bounds: tuple[float, ...]  # local-day boundaries over the same span, len(days) + 1
    first_day: int  # ordinal of the first local date

    @property
    def begins(self) -> datetime:
        """Start of the first interval."""
        return self.intervals[0].begins

    @property
    def ends(self) -> datetime:
        """End (exclusive) of the last interval."""
        return self.intervals[-1].ends


def interval_grid(time_range: TimeRange, granularity: Granularity, zone: ZoneInfo, now: datetime) -> IntervalGrid:
    """Every interval overlapping ``timeRange`` up to ``now`` in ``zone`` (METRICS §4), oldest first."""
    today = _local_date(now, zone)
    first = interval_start(_add_months(today, -time_range.months), granularity)
    last = interval_start(today, granularity)
    starts = [first]
    while starts[-1] < last:
        starts.append(next_interval_start(starts[-1], granularity))
    starts.append(next_interval_start(last, granularity))
    edges = [local_midnight(day, zone) for day in starts]
    intervals = tuple(Interval(starts[i], edges[i], edges[i + 1]) for i in range(len(starts) - 1))
    days = (starts[-1] - first).days
    day_bounds = tuple(local_midnight(first + timedelta(days=n), zone).timestamp() for n in range(days + 1))
    return IntervalGrid(
        zone=zone,
        granularity=granularity,
        intervals=intervals,
        bounds=tuple(edge.timestamp() for edge in edges),
        day_bounds=day_bounds,
        first_day=first.toordinal(),
    )


# --- statistics ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Statistics:
    """``{Count, Mean, Median, Min, Max, NinetyFifth}``; every value None when Count is 0."""

    count: int
    mean: float | None = None
    median: float | None = None
    min: float | None = None
    max: float | None = None
    ninety_fifth: float | None = None


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (NumPy's default, Excel ``PERCENTILE.INC``)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    position = (len(sorted_values) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    weight = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * weight


def statistics_of_sorted(sorted_values: Sequence[float]) -> Statistics:
    """Statistics of values already in ascending order."""
    count = len(sorted_values)
    if count == 0:
        return Statistics(0)
    return Statistics(
        count=count,
        mean=math.fsum(sorted_values) / count,
        median=percentile(sorted_values, 0.5),
        min=sorted_values[0],
        max=sorted_values[-1],
        ninety_fifth=percentile(sorted_values, 0.95),
    )


def statistics(values: Iterable[float]) -> Statistics:
    """Statistics of values in any order (METRICS §4)."""
    return statistics_of_sorted(sorted(values))


def rate(numerator: int, denominator: int) -> float:
    """``numerator / denominator`` rounded to 5 places; 0 when the denominator is 0."""
    return round(numerator / denominator, RATE_DECIMALS) if denominator else 0.0


@dataclass(frozen=True, slots=True)
class DeploymentFailureRate:
    """Octopus ``DeploymentFailureRate``: Failed = DeploymentFailure + SuccessfulButHadGuidedFailure."""

    successful: int
    deployment_failure: int
    successful_but_had_guided_failure: int
    total: int
    failed: int
    rate: float

    @classmethod
    def of(cls, successful: int, deployment_failure: int, guided: int) -> DeploymentFailureRate:
        """From the three counts; Total = Successful + Failed."""
        failed = deployment_failure + guided
        total = successful + failed
        return cls(successful, deployment_failure, guided, total, failed, rate(failed, total))


@dataclass(frozen=True, slots=True)
class ChangeFailureRate:
    """Extension ``ChangeFailureRate``: change failures over deployments, rollbacks left out of both."""

    change_failures: int
    deployments: int
    rate: float


@dataclass(frozen=True, slots=True)
class ReworkRate:
    """Extension ``ReworkRate`` (DORA 2024): rework deployments over completed deployments."""

    rework_deployments: int
    deployments: int
    rate: float


@dataclass(frozen=True, slots=True)
class IntervalMetrics:
    """One interval of one series (METRICS §4); durations in seconds."""

    start: date
    number_of_successful_deployments: int
    lead_time: Statistics
    time_since_previous_deployment: Statistics
    mean_time_to_recovery: Statistics
    deployments_until_recovery: Statistics
    deployment_failure_rate: DeploymentFailureRate
    change_failure_rate: ChangeFailureRate
    rework_rate: ReworkRate
    time_to_restore: Statistics
    deployment_days: int

    @property
    def start_of_interval(self) -> str:
        """Octopus ``StartOfInterval``."""
        return self.start.isoformat()


@dataclass(frozen=True, slots=True)
class SeriesMetrics:
    """One series: its name, its deployments over the range (the sort key) and its dense intervals."""

    name: str
    deployments: int
    intervals: tuple[IntervalMetrics, ...]


# --- buckets ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Bucket:
    """Mergeable partial aggregate of one interval: counts, raw value lists and deployment days."""

    successful: int = 0
    deployment_failure: int = 0
    guided_failure_success: int = 0
    change_failures: int = 0
    change_failure_deployments: int = 0
    rework_deployments: int = 0
    lead_times: list[float] = field(default_factory=list)
    since_previous: list[float] = field(default_factory=list)
    recovery: list[float] = field(default_factory=list)
    until_recovery: list[float] = field(default_factory=list)
    restore: list[float] = field(default_factory=list)
    days: set[int] = field(default_factory=set)

    @property
    def total(self) -> int:
        """Completed deployments."""
        return self.successful + self.deployment_failure + self.guided_failure_success

    def absorb(self, other: Bucket) -> None:
        """Add another bucket of the same interval into this one."""
        self.successful += other.successful
        self.deployment_failure += other.deployment_failure
        self.guided_failure_success += other.guided_failure_success
        self.change_failures += other.change_failures
        self.change_failure_deployments += other.change_failure_deployments
        self.rework_deployments += other.rework_deployments
        self.lead_times += other.lead_times
        self.since_previous += other.since_previous
        self.recovery += other.recovery
        self.until_recovery += other.until_recovery
        self.restore += other.restore
        self.days |= other.days


def bucket_stream(figures: Sequence[DeploymentFigures], grid: IntervalGrid) -> dict[int, Bucket]:
    """One stream's figures as buckets by interval index (only non-empty ones); one pass."""
    rows = [f for f in figures if f.completed]
    times = [f.completed_at.timestamp() for f in rows]
    if any(times[i] > times[i + 1] for i in range(len(times) - 1)):
        order = sorted(range(len(rows)), key=times.__getitem__)
        rows = [rows[i] for i in order]
        times = [times[i] for i in order]
    buckets: dict[int, Bucket] = {}
    bounds, day_bounds = grid.bounds, grid.day_bounds
    last_interval, last_day = len(bounds) - 1, len(day_bounds) - 1
    k = 0
    d = 0
    day_added = -1
    bucket: Bucket | None = None
    for row, t in zip(rows, times, strict=True):
        if t < bounds[0]:
            continue
        if t >= bounds[-1]:
            break
        if t >= bounds[k + 1] or bucket is None:
            while k + 1 < last_interval and t >= bounds[k + 1]:
                k += 1
            bucket = buckets.get(k)
            if bucket is None:
                bucket = buckets[k] = Bucket()
        if row.successful:
            bucket.successful += 1
            if t >= day_bounds[d + 1] or d != day_added:
                while d + 1 < last_day and t >= day_bounds[d + 1]:
                    d += 1
                bucket.days.add(grid.first_day + d)
                day_added = d
            if row.lead_time_seconds is not None:
                bucket.lead_times.append(row.lead_time_seconds)
            if row.time_since_previous_success_seconds is not None:
                bucket.since_previous.append(row.time_since_previous_success_seconds)
            if row.time_to_recovery_seconds is not None:
                bucket.recovery.append(row.time_to_recovery_seconds)
            if row.deployments_until_recovery is not None:
                bucket.until_recovery.append(float(row.deployments_until_recovery))
        elif row.state is TaskState.SUCCESS:
            bucket.guided_failure_success += 1
        else:
            bucket.deployment_failure += 1
        if not row.rollback:
            bucket.change_failure_deployments += 1
            if row.change_failure:
                bucket.change_failures += 1
        if row.rework:
            bucket.rework_deployments += 1
    return buckets


def bucket_failures(events: Iterable[FailureEvent], grid: IntervalGrid) -> dict[int, Bucket]:
    """Restored failure events as buckets of ``TimeToRestore`` values, by the interval of ``finished_at``."""
    buckets: dict[int, Bucket] = {}
    bounds = grid.bounds
    for event in events:
        restore = time_to_restore(event)
        if restore is None or event.finished_at is None:
            continue
        t = parse_stored(event.finished_at).timestamp()
        if not bounds[0] <= t < bounds[-1]:
            continue
        k = _index(bounds, t)
        buckets.setdefault(k, Bucket()).restore.append(restore.total_seconds())
    return buckets


def _index(bounds: Sequence[float], t: float) -> int:
    return bisect_right(bounds, t) - 1


def summarize(bucket: Bucket, interval: Interval) -> IntervalMetrics:
    """The metrics of one interval of one series from its (merged) bucket."""
    non_rollback = bucket.change_failure_deployments
    return IntervalMetrics(
        start=interval.start,
        number_of_successful_deployments=bucket.successful,
        lead_time=statistics(bucket.lead_times),
        time_since_previous_deployment=statistics(bucket.since_previous),
        mean_time_to_recovery=statistics(bucket.recovery),
        deployments_until_recovery=statistics(bucket.until_recovery),
        deployment_failure_rate=DeploymentFailureRate.of(
            bucket.successful, bucket.deployment_failure, bucket.guided_failure_success
        ),
        change_failure_rate=ChangeFailureRate(
            bucket.change_failures, non_rollback, rate(bucket.change_failures, non_rollback)
        ),
        rework_rate=ReworkRate(bucket.rework_deployments, bucket.total, rate(bucket.rework_deployments, bucket.total)),
        time_to_restore=statistics(bucket.restore),
        deployment_days=len(bucket.days),
    )


def combine_series(
    members: Iterable[tuple[Sequence[str], Mapping[int, Bucket]]],
    grid: IntervalGrid,
    *,
    always: Sequence[str] = (),
) -> list[SeriesMetrics]:
    """Merge buckets into series and summarize every interval (dense), largest series first.

    ``members`` pairs the series names a stream (or a set of failure events) belongs to with its
    buckets; ``always`` names series listed even when empty (``All``).
    """
    merged: dict[str, dict[int, Bucket]] = {name: {} for name in always}
    for names, buckets in members:
        for name in names:
            target = merged.setdefault(name, {})
            for k, bucket in buckets.items():
                into = target.get(k)
                if into is None:
                    into = target[k] = Bucket()
                into.absorb(bucket)
    series: list[SeriesMetrics] = []
    empty = Bucket()
    for name, buckets in merged.items():
        if not buckets and name not in always:
            continue
        intervals = tuple(summarize(buckets.get(k, empty), interval) for k, interval in enumerate(grid.intervals))
        series.append(SeriesMetrics(name, sum(b.total for b in buckets.values()), intervals))
    series.sort(key=lambda s: (-s.deployments, s.name))
    return series


# --- splits ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamDims:
    """The names a stream is split by (take them from its latest deployment)."""

    project_id: str
    project: str
    environment_id: str
    environment: str
    project_group: str | None = None
    tenant: str | None = None
    tenant_tags: tuple[str, ...] = ()

    @classmethod
    def of(cls, deployment: Deployment) -> StreamDims:
        """The dimensions of a deployment's stream."""
        return cls(
            project_id=deployment.project_id,
            project=deployment.project,
            environment_id=deployment.environment_id,
            environment=deployment.environment,
            project_group=deployment.team,
            tenant=deployment.tenant if deployment.tenant_id is not None else None,
            tenant_tags=tuple(deployment.tenant_tags),
        )


def series_names(
    dims: StreamDims,
    split: Split,
    *,
    environment_groups: Mapping[str, Sequence[str]] | None = None,
    tenant_tag_set: str | None = None,
) -> tuple[str, ...]:
    """The series a stream belongs to under ``split`` (possibly several, possibly none).

    ``environment_groups`` maps the report's group names to environment ids; ``tenant_tag_set``
    is the *name* of the tag set (``Location`` for tags ``Location/Europe``).
    """
    if split is Split.NONE:
        return (ALL_SERIES,)
    if split is Split.PROJECT:
        return (dims.project,)
    if split is Split.PROJECT_GROUP:
        return (dims.project_group or NO_PROJECT_GROUP_SERIES,)
    if split is Split.ENVIRONMENT:
        return (dims.environment,)
    if split is Split.ENVIRONMENT_GROUP:
        groups = environment_groups or {}
        return tuple(name for name, ids in groups.items() if dims.environment_id in ids)
    if split is Split.TENANT:
        return (dims.tenant or UNTENANTED_SERIES,)
    if tenant_tag_set is None:
        raise ValueError("the TenantTagSet split needs a tenant tag set")
    prefix = tenant_tag_set + "/"
    return tuple(dict.fromkeys(tag[len(prefix) :] for tag in dims.tenant_tags if tag.startswith(prefix)))


def failure_series_names(
    event: FailureEvent,
    split: Split,
    *,
    projects: Mapping[str, StreamDims],
    environment_groups: Mapping[str, Sequence[str]] | None = None,
) -> tuple[str, ...]:
    """The series a failure event's ``TimeToRestore`` counts in; ``projects`` gives names by project id."""
    known = [projects[p] for p in event.project_ids if p in projects]
    if split is Split.NONE:
        return (ALL_SERIES,)
    if split is Split.PROJECT:
        return tuple(dict.fromkeys(d.project for d in known))
    if split is Split.PROJECT_GROUP:
        return tuple(dict.fromkeys(d.project_group or NO_PROJECT_GROUP_SERIES for d in known))
    if split is Split.ENVIRONMENT:
        return (event.environment,)
    if split is Split.ENVIRONMENT_GROUP:
        groups = environment_groups or {}
        return tuple(name for name, ids in groups.items() if event.environment_id in ids)
    return ()


def aggregate_report(
    streams: Iterable[tuple[StreamDims, Sequence[DeploymentFigures]]],
    grid: IntervalGrid,
    *,
    split: Split = Split.NONE,
    environment_groups: Mapping[str, Sequence[str]] | None = None,
    tenant_tag_set: str | None = None,
    failure_events: Iterable[FailureEvent] = (),
) -> list[SeriesMetrics]:
    """The ``/metrics`` series of a report (METRICS §4) from its streams' figures.

    ``streams`` are the report's streams (already filtered by the report); ``failure_events``
    the space's failure events of the report's projects and environments.
    """
    members: list[tuple[Sequence[str], Mapping[int, Bucket]]] = []
    projects: dict[str, StreamDims] = {}
    for dims, figures in streams:
        projects[dims.project_id] = dims
        names = series_names(dims, split, environment_groups=environment_groups, tenant_tag_set=tenant_tag_set)
        if names:
            members.append((names, bucket_stream(figures, grid)))
    by_names: dict[tuple[str, ...], list[FailureEvent]] = {}
    for event in failure_events:
        names = failure_series_names(event, split, projects=projects, environment_groups=environment_groups)
        if names:
            by_names.setdefault(names, []).append(event)
    members.extend((names, bucket_failures(events, grid)) for names, events in by_names.items())
    return combine_series(members, grid, always=(ALL_SERIES,) if split is Split.NONE else ())
