"""A stream's figures as columns, and the columns cut at a grid's boundaries (METRICS §4).

:func:`stream_columns` turns one stream's figures into columns in one pass (completion times, the
values of each figure, the rows of each outcome other than a plain success). They depend on no
grid: a recompute builds them once per stream for every view of a report. :func:`cut_stream` cuts
them at one grid's boundaries (bisection: the work per stream grows with the intervals, not the
deployments), giving per boundary how many rows of each kind come before it.

A deployment belongs to the interval whose span contains its ``CompletedTime`` (the same as its
local date, except in the hour a zone repeats around midnight, where the local date would jump
back). ``DeploymentDays`` counts distinct local dates with at least one successful deployment.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import add, sub

from dora_insights.domain.aggregates.intervals import IntervalGrid
from dora_insights.domain.figures import DeploymentFigures
from dora_insights.domain.model import TaskState

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


@dataclass(frozen=True, slots=True)
class GridEdges:
    """A grid's boundaries as UTC datetimes, to cut :class:`StreamColumns` with (:func:`grid_edges`).

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


def grid_edges(grid: IntervalGrid) -> GridEdges:
    """The edges of a grid: build them once per grid and cut every stream at them."""
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
    return GridEdges(bounds, tuple(segments), day_starts)


@dataclass(slots=True)
class StreamCut:
    """A stream's columns cut at a grid's boundaries (:func:`cut_stream`).

    Each outcome's count of the rows before every boundary (the count of interval ``k`` is
    ``x[k + 1] - x[k]``; None: zero), each value column's index at every boundary, and the
    local-day key of every successful deployment in the grid.
    """

    columns: StreamColumns
    rows: list[int]
    successful: list[int]
    guided: list[int] | None
    rollbacks: list[int] | None
    change_failures: list[int] | None
    rework: list[int] | None
    values: tuple[list[int], list[int], list[int], list[int]]
    days: list[int]


def cut_stream(columns: StreamColumns, edges: GridEdges) -> StreamCut | None:
    """The stream cut at the grid's boundaries; None when none of its deployments is in the grid."""
    rows = list(map(bisect_left, repeat(columns.times), edges.bounds))
    if rows[0] == rows[-1]:
        return None
    marked = (columns.unsuccessful, columns.guided, columns.rollbacks, columns.change_failures, columns.rework)
    unsuccessful, guided, rollbacks, change_failures, rework, *value_rows = _cut_each(
        [*marked, *(column.rows for column in columns.values)], rows
    )
    successful = rows if unsuccessful is None else list(map(sub, rows, unsuccessful))
    lead, since, recovery, until = map(_value_index, columns.values, value_rows, repeat(successful))
    return StreamCut(
        columns=columns,
        rows=rows,
        successful=successful,
        guided=guided,
        rollbacks=rollbacks,
        change_failures=change_failures,
        rework=rework,
        values=(lead, since, recovery, until),
        days=_day_keys(columns.success_times, successful[0], successful[-1], edges),
    )


def _cut_each(marked: list[list[int]], rows: list[int]) -> list[list[int] | None]:
    """:func:`_at` of each list of marked rows; a list equal to an earlier one takes that one's cut.

    Outcomes often mark the same rows (failures are change failures; recovery and deployments until
    recovery come together): each distinct list is cut once.
    """
    cuts: list[list[int] | None] = []
    for n, rows_marked in enumerate(marked):
        first = marked.index(rows_marked)  # the first list equal to this one
        cuts.append(cuts[first] if first < n else _at(rows_marked, rows))
    return cuts


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


def _day_keys(times: list[datetime], lo: int, hi: int, edges: GridEdges) -> list[int]:
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
