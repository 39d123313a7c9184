"""The series of a report (METRICS §4): streams cut at a grid, summed per series, per interval.

:func:`aggregate_splits` cuts each stream's columns at a grid's boundaries once, sums the cuts of
the streams of each series and, per interval, sorts the series' values once for their statistics;
for several splits of one grid at once. :func:`aggregate_report` is one split from figures.

A series is listed when it has a completed deployment or a restored failure in range; ``All`` is
always listed. Series order: ``Total`` deployments over the range, largest first; ties by name
(code-point order, ascending). ``TimeToRestore`` counts failure events in the interval containing
their ``finished_at``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat

from dora_insights.domain.aggregates.columns import (
    GridEdges,
    StreamColumns,
    StreamCut,
    cut_stream,
    grid_edges,
    stream_columns,
)
from dora_insights.domain.aggregates.intervals import IntervalGrid
from dora_insights.domain.aggregates.splits import (
    ALL_SERIES,
    Split,
    SplitKey,
    StreamDims,
    failure_series_names,
    series_names,
)
from dora_insights.domain.aggregates.stats import IntervalMetrics, SeriesMetrics, interval_metrics
from dora_insights.domain.figures import DeploymentFigures, time_to_restore
from dora_insights.domain.model import FailureEvent
from dora_insights.domain.times import parse_stored


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
    edges = grid_edges(grid)
    cuts: list[tuple[StreamDims, StreamCut | None]] = []
    projects: dict[tuple[str, str], StreamDims] = {}  # by (project, environment): what a failure counts in
    for dims, figures in streams:
        projects[(dims.project_id, dims.environment_id)] = dims
        if series_names(dims, split, environment_groups=environment_groups, tenant_tag_set=tenant_tag_set):
            cuts.append((dims, cut_stream(stream_columns(figures), edges)))
    key = (split, tenant_tag_set)
    restored = restored_failures(failure_events, grid)
    return _aggregate(cuts, projects, restored, grid, edges, [key], environment_groups)[key]


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
    edges = grid_edges(grid)
    cuts: list[tuple[StreamDims, StreamCut | None]] = []
    projects: dict[tuple[str, str], StreamDims] = {}  # by (project, environment): what a failure counts in
    for dims, columns in streams:
        projects[(dims.project_id, dims.environment_id)] = dims
        cuts.append((dims, cut_stream(columns, edges)))
    restored = restored_failures(failure_events, grid)
    return _aggregate(cuts, projects, restored, grid, edges, list(dict.fromkeys(splits)), environment_groups)


def restored_failures(events: Iterable[FailureEvent], grid: IntervalGrid) -> list[tuple[FailureEvent, int, float]]:
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
        restored.append((event, bisect_right(bounds, t) - 1, restore.total_seconds()))
    return restored


def _aggregate(
    cuts: Sequence[tuple[StreamDims, StreamCut | None]],
    projects: Mapping[tuple[str, str], StreamDims],
    restored: Sequence[tuple[FailureEvent, int, float]],
    grid: IntervalGrid,
    edges: GridEdges,
    splits: Sequence[SplitKey],
    environment_groups: Mapping[str, Sequence[str]] | None,
) -> dict[SplitKey, list[SeriesMetrics]]:
    """Series of each split from the streams cut at the grid (None: nothing in the grid) and the
    restored failure events: a series is listed when it has a deployment or a restore in the grid
    (``All`` always), largest first, ties by name."""
    result: dict[SplitKey, list[SeriesMetrics]] = {}
    for split, tag_set in splits:
        members: dict[str, list[StreamCut]] = {}
        for dims, stream in cuts:
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
        for names, found in by_names.items():  # events grouped by their series, then each series in turn
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
    members: Sequence[StreamCut],
    restores: Mapping[int, list[float]],
    grid: IntervalGrid,
    edges: GridEdges,
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
            interval_metrics(
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


def _gathered(members: Sequence[StreamCut], kinds: tuple[int, int], size: int) -> tuple[list[list[float]], ...]:
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
        if many_one and many_two and at_one == at_two:  # figures of the same rows (recovery)
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
