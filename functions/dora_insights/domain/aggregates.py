"""Report aggregates (METRICS §4): intervals in the report's zone, dense series, statistics. Pure.

Shape of the computation, so the recompute can cache and combine cheaply:

1. :func:`interval_grid` fixes the intervals of a request (zone, granularity, range, ``now``) as
   UTC boundary instants, plus the local-day boundaries (for ``DeploymentDays``).
2. :func:`stream_columns` turns one stream's figures into columns in one pass (completion times,
   the values of each figure, the rows of each outcome other than a plain success). They depend on
   no grid: a recompute builds them once per stream for every view of a report.
3. :func:`aggregate_splits` cuts each stream's columns at a grid's boundaries (bisection: the
   work per stream grows with the intervals, not the deployments), sums the cuts of the streams
   of each series and, per interval, sorts the series' values once for their statistics; for
   several splits of one grid at once. :func:`aggregate_report` is one split from figures.
4. The per-interval form of the same numbers, :func:`bucket_stream` (one mergeable
   :class:`Bucket` per interval), :func:`combine_series` and :func:`summarize`, gives exactly the
   same series: it is kept for callers that merge buckets themselves.

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
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from itertools import repeat
from operator import add, sub
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


EMPTY_STATISTICS = Statistics(0)
"""The statistics of no values (shared: most intervals of most series have none of some figure)."""

_new = object.__new__


def _slot_setters(cls: type, names: tuple[str, ...]) -> tuple[Callable[[object, object], None], ...]:
    """The slot setters of a frozen slotted dataclass, in field order (``names`` must list every field).

    Setting every slot of ``object.__new__(cls)`` makes the same instance as ``cls(...)``, at half the
    cost of the generated ``__init__`` (an ``object.__setattr__`` per field): the aggregates build
    thousands of intervals per view.
    """
    if tuple(f.name for f in fields(cls)) != names:
        raise TypeError(f"the fields of {cls.__name__} are not {names}")
    return tuple(vars(cls)[name].__set__ for name in names)


_STATISTICS_SETTERS = _slot_setters(Statistics, ("count", "mean", "median", "min", "max", "ninety_fifth"))


def statistics_of_sorted(sorted_values: Sequence[float]) -> Statistics:
    """Statistics of values already in ascending order.

    The two percentiles are :func:`percentile`'s arithmetic inlined (the same operations in the
    same order, so the same floats): this runs for every interval of every series.
    """
    count = len(sorted_values)
    if count == 0:
        return EMPTY_STATISTICS
    last = count - 1
    position = last * 0.5
    low = math.floor(position)
    low_value = sorted_values[low]
    median = low_value + (sorted_values[low + 1 if low < last else last] - low_value) * (position - low)
    position = last * 0.95
    low = math.floor(position)
    low_value = sorted_values[low]
    ninety_fifth = low_value + (sorted_values[low + 1 if low < last else last] - low_value) * (position - low)
    stats = _new(Statistics)
    set_count, set_mean, set_median, set_min, set_max, set_ninety_fifth = _STATISTICS_SETTERS
    set_count(stats, count)
    set_mean(stats, math.fsum(sorted_values) / count)
    set_median(stats, median)
    set_min(stats, sorted_values[0])
    set_max(stats, sorted_values[-1])
    set_ninety_fifth(stats, ninety_fifth)
    return stats


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


# --- columns ---------------------------------------------------------------------------------

_EARLIEST = datetime.min.replace(tzinfo=UTC)
_SECONDS_PER_DAY = 86_400.0
_ordinal = datetime.toordinal


@dataclass(frozen=True, slots=True)
class ValueColumn:
    """One figure's values (successful deployments only), oldest first, and where they are.

    ``rows`` are row numbers, ascending: with ``gaps`` those of the successful rows *without* the
    figure (lead time, time since the previous success: nearly every successful row has them),
    else those of the rows *with* it (recovery: few rows have it).
    """

    values: list[float]
    rows: list[int]
    gaps: bool


@dataclass(frozen=True, slots=True)
class StreamColumns:
    """A stream's completed deployments as columns, oldest first: all the aggregates read of them.

    It depends on no grid, so it is built once per stream (:func:`stream_columns`) and serves every
    view of a report, each granularity and split. Times are UTC datetimes (they order as their
    timestamps do, with no ``timestamp()`` per row). The other outcomes than a plain success are
    lists of row numbers, ascending (few rows have them, so a row costs no step for them), cut at a
    grid's boundaries by bisection. ``values`` holds lead time, time since the previous success,
    time to recovery and deployments until recovery, in that order.
    """

    times: list[datetime]
    unsuccessful: list[int]
    guided: list[int]  # Success with a guided failure
    rollbacks: list[int]
    change_failures: list[int]  # change failures that are not rollbacks
    rework: list[int]
    success_times: list[datetime]
    values: tuple[ValueColumn, ValueColumn, ValueColumn, ValueColumn]


def stream_columns(figures: Sequence[DeploymentFigures]) -> StreamColumns:
    """The columns of one stream's figures (in any order; only completed deployments count)."""
    columns = _columns_of_ordered(figures)
    if columns is None:  # not in completion order: sort as the instants sort, ties keep their order
        columns = _columns_of_ordered(sorted((f for f in figures if f.completed), key=_completion_timestamp))
        if columns is None:  # pragma: no cover - sorted rows are ordered
            raise AssertionError("figures sorted by completion are out of order")
    return columns


def _completion_timestamp(figures: DeploymentFigures) -> float:
    return figures.completed_at.timestamp()


def _columns_of_ordered(figures: Iterable[DeploymentFigures]) -> StreamColumns | None:
    """One pass over the figures; None when the completed ones are not in completion order.

    A row costs a few steps: its time (made UTC when it is not), the values of a successful one, and
    the row number for each other outcome it has.
    """
    times: list[datetime] = []
    success_times: list[datetime] = []
    unsuccessful: list[int] = []
    guided: list[int] = []
    rollbacks: list[int] = []
    change_failures: list[int] = []
    rework: list[int] = []
    lead: list[float] = []
    since: list[float] = []
    recovery: list[float] = []
    until: list[float] = []
    lead_gaps: list[int] = []
    since_gaps: list[int] = []
    recovery_rows: list[int] = []
    until_rows: list[int] = []
    n = 0
    last = _EARLIEST
    for f in figures:
        if not f.completed:
            continue
        t = f.completed_at
        if t.tzinfo is not UTC:
            t = t.astimezone(UTC)
        if t < last:
            return None
        last = t
        times.append(t)
        if f.successful:
            success_times.append(t)
            value = f.lead_time_seconds
            if value is None:
                lead_gaps.append(n)
            else:
                lead.append(value)
            value = f.time_since_previous_success_seconds
            if value is None:
                since_gaps.append(n)
            else:
                since.append(value)
            value = f.time_to_recovery_seconds
            if value is not None:
                recovery.append(value)
                recovery_rows.append(n)
            count = f.deployments_until_recovery
            if count is not None:
                until.append(float(count))
                until_rows.append(n)
        else:
            unsuccessful.append(n)
            if f.state is TaskState.SUCCESS:
                guided.append(n)
        if f.rollback:
            rollbacks.append(n)
        elif f.change_failure:
            change_failures.append(n)
        if f.rework:
            rework.append(n)
        n += 1
    # Outcomes often mark the same rows (failures are change failures; recovery and deployments
    # until recovery come together): equal lists become one object, cut once per grid.
    unsuccessful, guided, rollbacks, change_failures, rework, lead_gaps, since_gaps, recovery_rows, until_rows = (
        _shared(
            unsuccessful, guided, rollbacks, change_failures, rework, lead_gaps, since_gaps, recovery_rows, until_rows
        )
    )
    return StreamColumns(
        times=times,
        unsuccessful=unsuccessful,
        guided=guided,
        rollbacks=rollbacks,
        change_failures=change_failures,
        rework=rework,
        success_times=success_times,
        values=(
            ValueColumn(lead, lead_gaps, gaps=True),
            ValueColumn(since, since_gaps, gaps=True),
            ValueColumn(recovery, recovery_rows, gaps=False),
            ValueColumn(until, until_rows, gaps=False),
        ),
    )


def _shared(*lists: list[int]) -> list[list[int]]:
    """The lists, each non-empty one replaced by the first equal one before it."""
    shared: list[list[int]] = []
    for candidate in lists:
        if candidate:
            for seen in shared:
                if seen == candidate:
                    candidate = seen  # noqa: PLW2901 - the shared object stands for the equal list
                    break
        shared.append(candidate)
    return shared


@dataclass(frozen=True, slots=True)
class _Edges:
    """A grid's boundaries as UTC datetimes, to cut :class:`StreamColumns` with.

    A day's key is the ordinal of its local date. ``days`` splits the grid's span, each part from
    its ``begins`` to the next one's, into runs of 24-hour local days, where the key of an instant
    ``t`` is the UTC ordinal of ``t - shift`` plus ``offset`` (``shift``: how far the run's first
    local midnight is past a UTC midnight), and single days of another length (a DST change;
    ``shift`` None, ``offset`` is the day's key). ``day_starts`` is the key of each interval's
    first day, then of the day after the last.
    """

    bounds: list[datetime]
    days: tuple[tuple[datetime, timedelta | None, int], ...]
    day_starts: list[int]


_EDGES: dict[int, tuple[IntervalGrid, _Edges]] = {}


def _edges_of(grid: IntervalGrid) -> _Edges:
    """The edges of a grid, remembered for the few latest grid objects (by identity: a recompute
    cuts hundreds of streams at the same grid, and hashing a grid costs more than cutting one)."""
    cached = _EDGES.get(id(grid))
    if cached is not None and cached[0] is grid:
        return cached[1]
    edges = _make_edges(grid)
    if len(_EDGES) >= 16:
        _EDGES.clear()
    _EDGES[id(grid)] = (grid, edges)
    return edges


def _make_edges(grid: IntervalGrid) -> _Edges:
    intervals = grid.intervals
    bounds = [i.begins.astimezone(UTC) for i in intervals]
    bounds.append(intervals[-1].ends.astimezone(UTC))
    day_bounds = grid.day_bounds
    last = len(day_bounds) - 1
    segments: list[tuple[datetime, timedelta | None, int]] = []
    j = 0
    while j < last:
        begins = datetime.fromtimestamp(day_bounds[j], UTC)  # whole seconds: exact
        if day_bounds[j + 1] - day_bounds[j] != _SECONDS_PER_DAY:
            segments.append((begins, None, grid.first_day + j))
            j += 1
            continue
        midnight = begins.replace(hour=0, minute=0, second=0, microsecond=0)
        segments.append((begins, begins - midnight, grid.first_day + j - midnight.toordinal()))
        j += 1
        while j < last and day_bounds[j + 1] - day_bounds[j] == _SECONDS_PER_DAY:
            j += 1
    day_starts = [i.start.toordinal() for i in intervals]
    day_starts.append(grid.first_day + last)
    return _Edges(bounds, tuple(segments), day_starts)


@dataclass(slots=True)
class _Placed:
    """A stream's columns cut at a grid's boundaries: each outcome's count of the rows before every
    boundary (the count of interval ``k`` is ``x[k + 1] - x[k]``; None: zero), each value column's
    index at every boundary, and the local-day key of every successful deployment in the grid."""

    columns: StreamColumns
    rows: list[int]
    successful: list[int]
    guided: list[int] | None
    rollbacks: list[int] | None
    change_failures: list[int] | None
    rework: list[int] | None
    values: tuple[list[int], list[int], list[int], list[int]]
    days: list[int]


def _place(columns: StreamColumns, edges: _Edges) -> _Placed | None:
    """The stream cut at the grid's boundaries; None when none of its deployments is in the grid."""
    rows = list(map(bisect_left, repeat(columns.times), edges.bounds))
    if rows[0] == rows[-1]:
        return None
    values = columns.values
    marked = (columns.unsuccessful, columns.guided, columns.rollbacks, columns.change_failures, columns.rework)
    cuts: dict[int, list[int] | None] = {}
    for m in (*marked, *(column.rows for column in values)):
        if id(m) not in cuts:
            cuts[id(m)] = _at(m, rows)
    unsuccessful = cuts[id(columns.unsuccessful)]
    successful = rows if unsuccessful is None else list(map(sub, rows, unsuccessful))
    lead, since, recovery, until = (_value_index(column, cuts[id(column.rows)], successful) for column in values)
    return _Placed(
        columns=columns,
        rows=rows,
        successful=successful,
        guided=cuts[id(columns.guided)],
        rollbacks=cuts[id(columns.rollbacks)],
        change_failures=cuts[id(columns.change_failures)],
        rework=cuts[id(columns.rework)],
        values=(lead, since, recovery, until),
        days=_day_keys(columns.success_times, successful[0], successful[-1], edges),
    )


def _at(marked: list[int], rows: list[int]) -> list[int] | None:
    """How many of the ``marked`` rows (ascending) are before each boundary row; None when none is.

    Many marked rows: the boundaries are bisected among them. Few: each is placed among the
    boundaries, and the counts filled in runs.
    """
    if not marked:
        return None
    size = len(rows)
    if 2 * len(marked) >= size:
        return list(map(bisect_left, repeat(marked), rows))
    at: list[int] = []
    filled = 0
    for count, boundary in enumerate(map(bisect_right, repeat(rows), marked)):  # first boundary past the row
        if boundary > filled:
            at += [count] * (boundary - filled)
            filled = boundary
    at += [len(marked)] * (size - filled)
    return at


def _value_index(column: ValueColumn, at: list[int] | None, successful: list[int]) -> list[int]:
    """Index into ``column.values`` at each boundary, from the cut of ``column.rows`` (``at``)."""
    if column.gaps:
        return successful if at is None else list(map(sub, successful, at))
    return [0] * len(successful) if at is None else at


def _day_keys(times: list[datetime], lo: int, hi: int, edges: _Edges) -> list[int]:
    """The local-date ordinal of ``times[lo:hi]`` (all inside the grid), by the grid's day runs."""
    keys: list[int] = []
    segments = edges.days
    start = lo
    for n, (_, shift, offset) in enumerate(segments):
        end = bisect_left(times, segments[n + 1][0], start, hi) if n + 1 < len(segments) else hi
        if start < end:
            if shift is None:
                keys.extend(repeat(offset, end - start))
            else:
                part = times[start:end]
                ordinals = map(_ordinal, map(sub, part, repeat(shift)) if shift else part)
                keys.extend(map(add, ordinals, repeat(offset)) if offset else ordinals)
        start = end
    return keys


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
    """One stream's figures as buckets by interval index (only non-empty ones)."""
    return buckets_of(stream_columns(figures), grid)


def buckets_of(columns: StreamColumns, grid: IntervalGrid) -> dict[int, Bucket]:
    """:func:`bucket_stream` from the stream's columns (built once, cut here at the grid's boundaries)."""
    placed = _place(columns, _edges_of(grid))
    if placed is None:
        return {}
    rows, successful, guided = placed.rows, placed.successful, placed.guided
    rollbacks, change_failures, rework = placed.rollbacks, placed.change_failures, placed.rework
    (lead_at, since_at, recovery_at, until_at) = placed.values
    lead, since, recovery, until = (column.values for column in columns.values)
    days, first = placed.days, successful[0]
    buckets: dict[int, Bucket] = {}
    for k in range(len(rows) - 1):
        total = rows[k + 1] - rows[k]
        if not total:
            continue
        ok = successful[k + 1] - successful[k]
        guided_here = guided[k + 1] - guided[k] if guided is not None else 0
        counted = total - (rollbacks[k + 1] - rollbacks[k] if rollbacks is not None else 0)
        buckets[k] = Bucket(
            successful=ok,
            deployment_failure=total - ok - guided_here,
            guided_failure_success=guided_here,
            change_failures=change_failures[k + 1] - change_failures[k] if change_failures is not None else 0,
            change_failure_deployments=counted,
            rework_deployments=rework[k + 1] - rework[k] if rework is not None else 0,
            lead_times=lead[lead_at[k] : lead_at[k + 1]],
            since_previous=since[since_at[k] : since_at[k + 1]],
            recovery=recovery[recovery_at[k] : recovery_at[k + 1]],
            until_recovery=until[until_at[k] : until_at[k + 1]],
            days=set(days[successful[k] - first : successful[k + 1] - first]),
        )
    return buckets


def _restores(events: Iterable[FailureEvent], grid: IntervalGrid) -> list[tuple[FailureEvent, int, float]]:
    """(event, interval index, ``TimeToRestore`` seconds) of the restored events finished in the grid."""
    restored: list[tuple[FailureEvent, int, float]] = []
    bounds = grid.bounds
    for event in events:
        restore = time_to_restore(event)
        if restore is None or event.finished_at is None:
            continue
        t = parse_stored(event.finished_at).timestamp()
        if not bounds[0] <= t < bounds[-1]:
            continue
        restored.append((event, _index(bounds, t), restore.total_seconds()))
    return restored


def bucket_failures(events: Iterable[FailureEvent], grid: IntervalGrid) -> dict[int, Bucket]:
    """Restored failure events as buckets of ``TimeToRestore`` values, by the interval of ``finished_at``."""
    buckets: dict[int, Bucket] = {}
    for _, k, seconds in _restores(events, grid):
        buckets.setdefault(k, Bucket()).restore.append(seconds)
    return buckets


def _index(bounds: Sequence[float], t: float) -> int:
    return bisect_right(bounds, t) - 1


@lru_cache(maxsize=4096)
def _failure_rate(successful: int, deployment_failure: int, guided: int) -> DeploymentFailureRate:
    return DeploymentFailureRate.of(successful, deployment_failure, guided)


@lru_cache(maxsize=4096)
def _change_failure_rate(change_failures: int, deployments: int) -> ChangeFailureRate:
    return ChangeFailureRate(change_failures, deployments, rate(change_failures, deployments))


@lru_cache(maxsize=4096)
def _rework_rate(rework_deployments: int, deployments: int) -> ReworkRate:
    return ReworkRate(rework_deployments, deployments, rate(rework_deployments, deployments))


_INTERVAL_SETTERS = _slot_setters(
    IntervalMetrics,
    (
        "start",
        "number_of_successful_deployments",
        "lead_time",
        "time_since_previous_deployment",
        "mean_time_to_recovery",
        "deployments_until_recovery",
        "deployment_failure_rate",
        "change_failure_rate",
        "rework_rate",
        "time_to_restore",
        "deployment_days",
    ),
)


def _interval_metrics(
    start: date,
    successful: int,
    deployment_failure: int,
    guided: int,
    change_failures: int,
    counted: int,
    rework: int,
    values: Sequence[Sequence[float]],
    deployment_days: int,
) -> IntervalMetrics:
    """One interval's metrics from its counts (``counted``: deployments that are not rollbacks) and
    sorted values (lead, since previous, recovery, until recovery, restore). The rate objects are
    immutable and shared between equal counts."""
    lead, since, recovery, until, restore = values
    (
        set_start,
        set_successful,
        set_lead,
        set_since,
        set_recovery,
        set_until,
        set_failure_rate,
        set_change_failure_rate,
        set_rework_rate,
        set_restore,
        set_days,
    ) = _INTERVAL_SETTERS
    empty = EMPTY_STATISTICS
    metrics = _new(IntervalMetrics)
    set_start(metrics, start)
    set_successful(metrics, successful)
    set_lead(metrics, statistics_of_sorted(lead) if lead else empty)
    set_since(metrics, statistics_of_sorted(since) if since else empty)
    set_recovery(metrics, statistics_of_sorted(recovery) if recovery else empty)
    set_until(metrics, statistics_of_sorted(until) if until else empty)
    set_failure_rate(metrics, _failure_rate(successful, deployment_failure, guided))
    set_change_failure_rate(metrics, _change_failure_rate(change_failures, counted))
    set_rework_rate(metrics, _rework_rate(rework, successful + deployment_failure + guided))
    set_restore(metrics, statistics_of_sorted(restore) if restore else empty)
    set_days(metrics, deployment_days)
    return metrics


def summarize(bucket: Bucket, interval: Interval) -> IntervalMetrics:
    """The metrics of one interval of one series from its (merged) bucket."""
    return _interval_metrics(
        interval.start,
        bucket.successful,
        bucket.deployment_failure,
        bucket.guided_failure_success,
        bucket.change_failures,
        bucket.change_failure_deployments,
        bucket.rework_deployments,
        (
            sorted(bucket.lead_times),
            sorted(bucket.since_previous),
            sorted(bucket.recovery),
            sorted(bucket.until_recovery),
            sorted(bucket.restore),
        ),
        len(bucket.days),
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
    edges = _edges_of(grid)
    placed: list[tuple[StreamDims, _Placed | None]] = []
    projects: dict[str, StreamDims] = {}
    for dims, figures in streams:
        projects[dims.project_id] = dims
        if series_names(dims, split, environment_groups=environment_groups, tenant_tag_set=tenant_tag_set):
            placed.append((dims, _place(stream_columns(figures), edges)))
    key = (split, tenant_tag_set)
    restored = _restores(failure_events, grid)
    return _aggregate(placed, projects, restored, grid, [key], environment_groups)[key]


SplitKey = tuple[Split, str | None]
"""A split and, for ``TenantTagSet``, the name of its tag set (else None)."""


def aggregate_splits(
    streams: Iterable[tuple[StreamDims, StreamColumns]],
    grid: IntervalGrid,
    splits: Iterable[SplitKey],
    *,
    environment_groups: Mapping[str, Sequence[str]] | None = None,
    failure_events: Iterable[FailureEvent] = (),
) -> dict[SplitKey, list[SeriesMetrics]]:
    """The series of several splits of one grid, by split: for each, what :func:`aggregate_report` gives.

    Each stream's :class:`StreamColumns` (from :func:`stream_columns`, built once per stream for
    every grid) is cut at the grid's boundaries once, then summed into the series of every split.
    """
    edges = _edges_of(grid)
    placed: list[tuple[StreamDims, _Placed | None]] = []
    projects: dict[str, StreamDims] = {}
    for dims, columns in streams:
        projects[dims.project_id] = dims
        placed.append((dims, _place(columns, edges)))
    restored = _restores(failure_events, grid)
    return _aggregate(placed, projects, restored, grid, list(dict.fromkeys(splits)), environment_groups)


def _aggregate(
    placed: Sequence[tuple[StreamDims, _Placed | None]],
    projects: Mapping[str, StreamDims],
    restored: Sequence[tuple[FailureEvent, int, float]],
    grid: IntervalGrid,
    splits: Sequence[SplitKey],
    environment_groups: Mapping[str, Sequence[str]] | None,
) -> dict[SplitKey, list[SeriesMetrics]]:
    """Series of each split from the streams cut at the grid (None: nothing in the grid) and the
    restored failure events: a series is listed when it has a deployment or a restore in the grid
    (``All`` always), largest first, ties by name (as :func:`combine_series`)."""
    edges = _edges_of(grid)
    result: dict[SplitKey, list[SeriesMetrics]] = {}
    for split, tag_set in splits:
        members: dict[str, list[_Placed]] = {}
        for dims, stream in placed:
            names = series_names(dims, split, environment_groups=environment_groups, tenant_tag_set=tag_set)
            if stream is not None:
                for name in names:
                    members.setdefault(name, []).append(stream)
        by_names: dict[tuple[str, ...], list[tuple[int, float]]] = {}
        for event, k, seconds in restored:
            names = failure_series_names(event, split, projects=projects, environment_groups=environment_groups)
            if names:
                by_names.setdefault(names, []).append((k, seconds))
        restores: dict[str, dict[int, list[float]]] = {}
        for names, found in by_names.items():  # events grouped by their series, as combine_series sees them
            for name in names:
                into = restores.setdefault(name, {})
                for k, seconds in found:
                    into.setdefault(k, []).append(seconds)
        always = (ALL_SERIES,) if split is Split.NONE else ()
        series = [
            _series(name, members.get(name, ()), restores.get(name, {}), grid, edges)
            for name in dict.fromkeys([*always, *members, *restores])
        ]
        series.sort(key=lambda s: (-s.deployments, s.name))
        result[(split, tag_set)] = series
    return result


def _summed(arrays: Sequence[list[int] | None]) -> list[int] | None:
    """Element-wise sum of the arrays that are not None (None when all are)."""
    present = [a for a in arrays if a is not None]
    if len(present) <= 1:
        return present[0] if present else None
    return list(map(sum, zip(*present, strict=True)))


def _series(
    name: str,
    members: Sequence[_Placed],
    restores: Mapping[int, list[float]],
    grid: IntervalGrid,
    edges: _Edges,
) -> SeriesMetrics:
    """One series (dense) from its streams cut at the grid and its restores by interval."""
    intervals = grid.intervals
    size = len(intervals)
    none = [0] * (size + 1)
    rows = _summed([m.rows for m in members]) or none
    successful = _summed([m.successful for m in members]) or none
    guided = _summed([m.guided for m in members]) or none
    rollbacks = _summed([m.rollbacks for m in members]) or none
    change_failures = _summed([m.change_failures for m in members]) or none
    rework = _summed([m.rework for m in members]) or none
    lead, since = _gathered(members, (0, 1), size)
    recovery, until = _gathered(members, (2, 3), size)
    days: set[int] = set()
    for member in members:
        days.update(member.days)
    day_cuts = list(map(bisect_left, repeat(sorted(days)), edges.day_starts))
    no_restores: list[float] = []
    metrics: list[IntervalMetrics] = []
    for k in range(size):
        total = rows[k + 1] - rows[k]
        ok = successful[k + 1] - successful[k]
        guided_here = guided[k + 1] - guided[k]
        restore = restores.get(k)
        metrics.append(
            _interval_metrics(
                intervals[k].start,
                ok,
                total - ok - guided_here,
                guided_here,
                change_failures[k + 1] - change_failures[k],
                total - (rollbacks[k + 1] - rollbacks[k]),
                rework[k + 1] - rework[k],
                (lead[k], since[k], recovery[k], until[k], no_restores if restore is None else sorted(restore)),
                day_cuts[k + 1] - day_cuts[k],
            )
        )
    return SeriesMetrics(name, rows[-1] - rows[0], tuple(metrics))


def _gathered(members: Sequence[_Placed], kinds: tuple[int, int], size: int) -> tuple[list[list[float]], ...]:
    """The sorted values of two figures per interval over the series' streams.

    A stream with few values of a figure puts each where it belongs; the figures with many are
    copied a slice per interval, both in one pass over the intervals.
    """
    first_kind, second_kind = kinds
    one: list[list[float]] = [[] for _ in range(size)]
    two: list[list[float]] = [[] for _ in range(size)]
    for member in members:
        at_one, at_two = member.values[first_kind], member.values[second_kind]
        values_one = member.columns.values[first_kind].values
        values_two = member.columns.values[second_kind].values
        many_one = _place_few(one, at_one, values_one, size)
        many_two = _place_few(two, at_two, values_two, size)
        if many_one and many_two and at_one is at_two:  # figures of the same rows (recovery)
            a = at_one[0]
            for k in range(size):
                b = at_one[k + 1]
                if a != b:
                    one[k] += values_one[a:b]
                    two[k] += values_two[a:b]
                    a = b
        elif many_one and many_two:
            a, c = at_one[0], at_two[0]
            for k in range(size):
                b, d = at_one[k + 1], at_two[k + 1]
                if a != b:
                    one[k] += values_one[a:b]
                    a = b
                if c != d:
                    two[k] += values_two[c:d]
                    c = d
        elif many_one:
            _place_slices(one, at_one, values_one, size)
        elif many_two:
            _place_slices(two, at_two, values_two, size)
    for per in (one, two):
        for values in per:
            values.sort()
    return one, two


def _place_few(per: list[list[float]], at: list[int], values: list[float], size: int) -> bool:
    """Put a stream's values in their intervals when it has few (fewer than half the intervals);
    True when it has many, left for :func:`_place_slices`."""
    first, last = at[0], at[-1]
    if 2 * (last - first) >= size:
        return True
    for k, value in zip(map(bisect_right, repeat(at), range(first, last)), values[first:last], strict=True):
        per[k - 1].append(value)
    return False


def _place_slices(per: list[list[float]], at: list[int], values: list[float], size: int) -> None:
    """Add a stream's values to their intervals, a slice per interval."""
    a = at[0]
    for k in range(size):
        b = at[k + 1]
        if a != b:
            per[k] += values[a:b]
            a = b
