"""Daily rollups behind GitLab's DORA metrics API (``GET /api/{spaceId}/dora/metrics``, METRICS §9).

GitLab keeps one row per environment and day (``dora_daily_metrics``) and answers every range by
aggregating those rows; this module is the same design over this service's streams:

- per stream and UTC day, from the stream's per-deployment figures (METRICS §3): successful
  deployments, the median lead time of that day's successful deployments, completed deployments and
  rework deployments (:class:`DeploymentColumns`);
- per (project, environment) and UTC day, from the failure events naming them: failure events that
  started that day and the median TimeToRestore of those that finished that day
  (:class:`FailureColumns`).

A range is then aggregated as GitLab does (:func:`aggregate`): counts are summed, durations are the
median of the daily medians (every (stream, day) row with a value weighs the same, whatever its
number of deployments), the change failure rate is failure events over successful deployments.

Rows are stored as compressed binary columns (:func:`encode_deployments`), a stream's days of one
calendar year in one item, so a year over 200 streams is a few Query pages. Pure: no I/O.
"""

from __future__ import annotations

import calendar
import math
import re
import struct
import sys
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from enum import StrEnum
from math import isnan
from typing import Any

from dora_insights.domain.aggregates.stats import percentile
from dora_insights.domain.figures import DeploymentFigures, time_to_restore
from dora_insights.domain.model import FailureEvent
from dora_insights.domain.times import parse_stored

# zlib level for rollup blobs: a stream-year of daily rows is ~9 KB of arrays, ~3 KB compressed.
COMPRESSION_LEVEL = 6


class Metric(StrEnum):
    """The metrics the API answers (GitLab's four, plus rework rate)."""

    DEPLOYMENT_FREQUENCY = "deployment_frequency"
    LEAD_TIME_FOR_CHANGES = "lead_time_for_changes"
    TIME_TO_RESTORE_SERVICE = "time_to_restore_service"
    CHANGE_FAILURE_RATE = "change_failure_rate"
    REWORK_RATE = "rework_rate"


class Interval(StrEnum):
    """GitLab's bucketing intervals."""

    ALL = "all"
    MONTHLY = "monthly"
    DAILY = "daily"


@dataclass(slots=True)
class DeploymentColumns:
    """A stream's daily rows, oldest first: ``days`` are ``date.toordinal()`` of UTC days; ``lead``
    is the median lead time (seconds) of the day's successful deployments, None when none has one
    (NaN in rows decoded from storage: converting a year over 200 streams to None costs more than
    the aggregation that skips them)."""

    days: Sequence[int] = field(default_factory=list)
    successful: Sequence[int] = field(default_factory=list)
    lead: Sequence[float | None] = field(default_factory=list)
    completed: Sequence[int] = field(default_factory=list)
    rework: Sequence[int] = field(default_factory=list)

    def year(self, year: int) -> DeploymentColumns:
        """The rows of one calendar year."""
        low = bisect_left(self.days, date(year, 1, 1).toordinal())
        high = bisect_left(self.days, date(year + 1, 1, 1).toordinal())
        return DeploymentColumns(
            self.days[low:high],
            self.successful[low:high],
            self.lead[low:high],
            self.completed[low:high],
            self.rework[low:high],
        )

    def years(self) -> list[int]:
        """The calendar years that have rows."""
        return sorted({date.fromordinal(d).year for d in self.days})


@dataclass(slots=True)
class FailureColumns:
    """A (project, environment)'s daily rows, oldest first: failure events started that day, and the
    median TimeToRestore (seconds) of those finished that day (None when none finished)."""

    days: list[int] = field(default_factory=list)
    incidents: list[int] = field(default_factory=list)
    restore: list[float | None] = field(default_factory=list)


def median(values: Sequence[float]) -> float:
    """Median by linear interpolation (PostgreSQL's ``PERCENTILE_CONT(0.5)``, what GitLab uses)."""
    return percentile(sorted(values), 0.5)


def _utc_day(moment_text: str) -> int:
    return parse_stored(moment_text).astimezone(UTC).date().toordinal()


def deployment_columns(figures: Iterable[DeploymentFigures]) -> DeploymentColumns:
    """A stream's daily rows from its per-deployment figures (completed deployments only)."""
    successful: dict[int, int] = {}
    leads: dict[int, list[float]] = {}
    completed: dict[int, int] = {}
    rework: dict[int, int] = {}
    for f in figures:
        if not f.completed:
            continue
        day = f.completed_at.astimezone(UTC).date().toordinal()
        completed[day] = completed.get(day, 0) + 1
        if f.rework:
            rework[day] = rework.get(day, 0) + 1
        if f.successful:
            successful[day] = successful.get(day, 0) + 1
            if f.lead_time_seconds is not None:
                leads.setdefault(day, []).append(f.lead_time_seconds)
    days = sorted(completed)
    return DeploymentColumns(
        days,
        [successful.get(day, 0) for day in days],
        [median(leads[day]) if day in leads else None for day in days],
        [completed[day] for day in days],
        [rework.get(day, 0) for day in days],
    )


def concerns(event: FailureEvent, project_id: str, environment_id: str) -> bool:
    """Whether a failure event counts for a (project, environment): it names both."""
    return event.environment_id == environment_id and project_id in event.project_ids


def failure_columns(events: Iterable[FailureEvent]) -> FailureColumns:
    """Daily rows of failure events (those of one (project, environment), see :func:`concerns`)."""
    incidents: dict[int, int] = {}
    restores: dict[int, list[float]] = {}
    for event in events:
        started = _utc_day(event.started_at)
        incidents[started] = incidents.get(started, 0) + 1
        restored = time_to_restore(event)
        if restored is not None and event.finished_at is not None:
            restores.setdefault(_utc_day(event.finished_at), []).append(restored.total_seconds())
    columns = FailureColumns()
    for day in sorted(incidents.keys() | restores.keys()):
        columns.days.append(day)
        columns.incidents.append(incidents.get(day, 0))
        columns.restore.append(median(restores[day]) if day in restores else None)
    return columns


# --- stored form ---------------------------------------------------------------------------------
# A blob is zlib of: a 4-byte magic naming the layout, the row count (uint32), then each column as a
# little-endian array (days int32, counts uint32, durations float64 with NaN for None): decoding a
# year over 200 streams is a few ms (JSON took ~100 ms), and floats round-trip exactly.
_DEPLOYMENTS = b"DRD1"
_DEPLOYMENTS_LAYOUT = "iIdII"  # days, successful, lead time (s), completed, rework
_FAILURES = b"DRF1"
_FAILURES_LAYOUT = "iId"  # days, incidents, time to restore (s)
_NONE = math.nan


def _array(code: str, values: Iterable[float | int]) -> bytes:
    packed = array(code, values)
    if sys.byteorder != "little":  # pragma: no cover - Lambda and every dev box are little-endian
        packed.byteswap()
    return packed.tobytes()


def _column(code: str, data: bytes, offset: int, count: int) -> tuple[Any, int]:
    """One column as an ``array`` (read in place of a list: converting to lists took as long again)."""
    packed = array(code)
    end = offset + packed.itemsize * count
    packed.frombytes(data[offset:end])
    if sys.byteorder != "little":  # pragma: no cover
        packed.byteswap()
    return packed, end


def _durations(values: Iterable[float | None]) -> list[float]:
    return [_NONE if v is None else v for v in values]


def _optional(values: list[float]) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values]


def _encode(magic: bytes, layout: str, *columns: Sequence[float | int]) -> bytes:
    """A blob of ``magic``'s layout: one column per type code of ``layout``, every column as long."""
    count = len(columns[0])
    arrays = (_array(code, values) for code, values in zip(layout, columns, strict=True))
    return zlib.compress(b"".join((magic, struct.pack("<I", count), *arrays)), COMPRESSION_LEVEL)


def _decode(blob: bytes, magic: bytes, layout: str, what: str) -> list[Any]:
    """The columns of a blob of ``magic``'s layout, one ``array`` per type code of ``layout``."""
    data = zlib.decompress(blob)
    if data[:4] != magic:
        raise ValueError(f"not a {what} rollup")
    (count,) = struct.unpack_from("<I", data, 4)
    columns, at = [], 8
    for code in layout:
        column, at = _column(code, data, at, count)
        columns.append(column)
    return columns


def encode_deployments(columns: DeploymentColumns) -> bytes:
    """The stored form of a stream's rows (see above)."""
    return _encode(
        _DEPLOYMENTS,
        _DEPLOYMENTS_LAYOUT,
        columns.days,
        columns.successful,
        _durations(columns.lead),
        columns.completed,
        columns.rework,
    )


def decode_deployments(blob: bytes) -> DeploymentColumns:
    """The inverse of :func:`encode_deployments`."""
    days, successful, lead, completed, rework = _decode(blob, _DEPLOYMENTS, _DEPLOYMENTS_LAYOUT, "deployment")
    return DeploymentColumns(days, successful, lead, completed, rework)  # NaN: no lead time (not rewritten)


def encode_failures(columns: FailureColumns) -> bytes:
    """The stored form of a (project, environment)'s failure rows."""
    return _encode(_FAILURES, _FAILURES_LAYOUT, columns.days, columns.incidents, _durations(columns.restore))


def decode_failures(blob: bytes) -> FailureColumns:
    """The inverse of :func:`encode_failures`."""
    days, incidents, restore = _decode(blob, _FAILURES, _FAILURES_LAYOUT, "failure")
    return FailureColumns(list(days), list(incidents), _optional(list(restore)))


# --- aggregation ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Bucket:
    """One answer row: its ``label`` (the row's ``date``; None for ``all``, as GitLab) and the days of
    the range it holds."""

    label: str | None
    first: date
    last: date

    @property
    def days(self) -> int:
        return self.last.toordinal() - self.first.toordinal() + 1


def buckets(start: date, end: date, interval: Interval) -> list[Bucket]:
    """The rows of an answer for ``start..end`` (inclusive): every day, every month the range touches
    (dated the 1st, holding only the range's days of it), or one row for the whole range."""
    if interval is Interval.ALL:
        return [Bucket(None, start, end)]
    if interval is Interval.DAILY:
        return [
            Bucket(date.fromordinal(d).isoformat(), date.fromordinal(d), date.fromordinal(d)) for d in _span(start, end)
        ]
    found: list[Bucket] = []
    month = date(start.year, start.month, 1)
    while True:
        month_end = date(month.year, month.month, calendar.monthrange(month.year, month.month)[1])
        found.append(Bucket(month.isoformat(), max(month, start), min(month_end, end)))
        if month_end >= end:
            return found
        month = month_end + timedelta(days=1)  # never past December 9999: ``end`` is a date


def _span(start: date, end: date) -> range:
    return range(start.toordinal(), end.toordinal() + 1)


Value = int | float | None


def aggregate(
    metric: Metric,
    interval: Interval,
    start: date,
    end: date,
    streams: Iterable[DeploymentColumns],
    pairs: Iterable[FailureColumns],
) -> list[tuple[str | None, Value]]:
    """GitLab's answer rows ``(date, value)`` for ``start..end`` from the selected streams' and
    (project, environment)s' daily rows (METRICS §9 gives each metric's definition)."""
    rows = buckets(start, end, interval)
    first, last = start.toordinal(), end.toordinal()
    index = [0] * (last - first + 1)
    for n, bucket in enumerate(rows):
        for day in _span(bucket.first, bucket.last):
            index[day - first] = n
    size = len(rows)
    successful = [0] * size
    completed = [0] * size
    rework = [0] * size
    incidents = [0] * size
    durations: list[list[float]] = [[] for _ in range(size)]
    # One pass per column the metric needs, over the rows of the range only (bisect on sorted days).
    if metric is not Metric.TIME_TO_RESTORE_SERVICE:
        for s in streams:
            low, high = bisect_left(s.days, first), bisect_right(s.days, last)
            if low == high:
                continue
            slots = [index[d - first] for d in s.days[low:high]]
            if metric is Metric.LEAD_TIME_FOR_CHANGES:
                for n, lead in zip(slots, s.lead[low:high], strict=True):
                    if lead is not None and not isnan(lead):
                        durations[n].append(lead)
            elif metric is Metric.REWORK_RATE:
                for n, done, again in zip(slots, s.completed[low:high], s.rework[low:high], strict=True):
                    completed[n] += done
                    rework[n] += again
            else:
                for n, good in zip(slots, s.successful[low:high], strict=True):
                    successful[n] += good
    if metric in (Metric.TIME_TO_RESTORE_SERVICE, Metric.CHANGE_FAILURE_RATE):
        for p in pairs:
            low, high = bisect_left(p.days, first), bisect_right(p.days, last)
            for k in range(low, high):
                n = index[p.days[k] - first]
                incidents[n] += p.incidents[k]
                restore = p.restore[k]
                if restore is not None:
                    durations[n].append(restore)
    answer: list[tuple[str | None, Value]] = []
    for n, bucket in enumerate(rows):
        value: Value
        if metric is Metric.DEPLOYMENT_FREQUENCY:
            value = successful[n] if interval is Interval.DAILY else successful[n] / bucket.days
        elif metric in (Metric.LEAD_TIME_FOR_CHANGES, Metric.TIME_TO_RESTORE_SERVICE):
            value = median(durations[n]) if durations[n] else None
        elif metric is Metric.CHANGE_FAILURE_RATE:
            value = incidents[n] / max(successful[n], 1) if successful[n] or incidents[n] else None
        else:
            value = rework[n] / completed[n] if completed[n] else None
        answer.append((bucket.label, value))
    return answer


# --- environment tiers ---------------------------------------------------------------------------
TIERS = ("production", "staging", "testing", "development", "other")
"""GitLab's deployment tiers, in GitLab's order."""

# GitLab's guess of an environment's tier from its name (``Environment#guess_tier``), first match wins.
_GUESSES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("development", re.compile(r"(dev|review|trunk)", re.IGNORECASE)),
    ("testing", re.compile(r"(test|tst|int|ac(ce|)pt|qa|qc|control|quality)", re.IGNORECASE)),
    ("staging", re.compile(r"(st(a|)g|mod(e|)l|pre|demo|non)", re.IGNORECASE)),
    ("production", re.compile(r"(pr(o|)d|live)", re.IGNORECASE)),
)


def guess_tier(name: str) -> str:
    """GitLab's tier for an environment that declares none, from its name."""
    for tier, pattern in _GUESSES:
        if pattern.search(name):
            return tier
    return "other"


def environment_tier(environment_id: str, name: str, production_ids: frozenset[str]) -> str:
    """The tier of an environment here: when the space lists its ``production_environments``, those
    are ``production`` and no other is (a name GitLab would guess production is ``other``); otherwise
    GitLab's guess from the name."""
    if production_ids:
        if environment_id in production_ids:
            return "production"
        guessed = guess_tier(name)
        return "other" if guessed == "production" else guessed
    return guess_tier(name)


@dataclass(frozen=True, slots=True)
class MetricsRequest:
    """A request of the metrics API, parsed (``dialects.gitlab_metrics``): None where left out.
    ``environment_tiers`` empty: none asked for (the default applies, ``logic.dora_metrics``)."""

    metric: Metric
    interval: Interval = Interval.DAILY
    start_date: date | None = None
    end_date: date | None = None
    environment_tiers: tuple[str, ...] = ()
    project: str | None = None
    project_group: str | None = None
    environment: str | None = None
    tenant: str | None = None
