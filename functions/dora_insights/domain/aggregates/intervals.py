"""Intervals of a report (METRICS §4): calendar units in the report's zone, and the range up to now.

An interval is a span of time: from the first instant of its first local date to the first instant
of the next interval's first date. ``timeRange`` starts at local midnight of today's local date
minus 1, 3 or 12 calendar months (day clamped to the month's end) and ends at ``now``; the
intervals are those from the one containing that start to the one containing ``now``.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from dora_insights.domain.base import CaselessEnum


class Granularity(CaselessEnum):
    """Interval length (Octopus ``granularity``; default ``Weekly``)."""

    DAILY = "Daily"
    WEEKLY = "Weekly"
    MONTHLY = "Monthly"


class TimeRange(CaselessEnum):
    """Octopus ``timeRange``: the last 1, 3 or 12 calendar months up to now."""

    LAST_MONTH = "LastMonth"
    LAST_QUARTER = "LastQuarter"
    LAST_YEAR = "LastYear"

    @property
    def months(self) -> int:
        """How many calendar months the range reaches back."""
        return {"LastMonth": 1, "LastQuarter": 3, "LastYear": 12}[self.value]


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


class StartsOnADate:
    """What starts on a local date ``start`` (an interval, its metrics), named as Octopus names it."""

    __slots__ = ()
    start: date

    @property
    def start_of_interval(self) -> str:
        """Octopus ``StartOfInterval``: the local date ``YYYY-MM-DD``."""
        return self.start.isoformat()


@dataclass(frozen=True, slots=True)
class Interval(StartsOnADate):
    """One interval: its first local date and its span ``[begins, ends)`` in UTC."""

    start: date
    begins: datetime
    ends: datetime


@dataclass(frozen=True, slots=True)
class IntervalGrid:
    """The intervals of one request and the boundaries the aggregates cut at (epoch seconds)."""

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
