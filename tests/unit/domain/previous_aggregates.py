"""The aggregation engine as it was before the columnar rewrite, kept as an oracle.

Per stream one :class:`Bucket` per interval, merged per series with ``absorb``, statistics sorted
per bucket: slow, but the numbers every view published until then. The engine must give exactly
the same objects (same floats, bit for bit) on any input. :mod:`tests.unit.domain.bucket_engine`
fills the same buckets from the engine's stream columns.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from dora_insights.domain.aggregates import (
    ALL_SERIES,
    ChangeFailureRate,
    DeploymentFailureRate,
    Interval,
    IntervalGrid,
    IntervalMetrics,
    ReworkRate,
    SeriesMetrics,
    Split,
    Statistics,
    StreamDims,
    failure_series_names,
    rate,
    series_names,
)
from dora_insights.domain.figures import DeploymentFigures, time_to_restore
from dora_insights.domain.model import FailureEvent, TaskState
from dora_insights.domain.times import parse_stored


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


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    position = (len(sorted_values) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    weight = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * weight


def statistics(values: Iterable[float]) -> Statistics:
    sorted_values = sorted(values)
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


def bucket_stream(figures: Sequence[DeploymentFigures], grid: IntervalGrid) -> dict[int, Bucket]:
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
    buckets: dict[int, Bucket] = {}
    bounds = grid.bounds
    for event in events:
        restore = time_to_restore(event)
        if restore is None or event.finished_at is None:
            continue
        t = parse_stored(event.finished_at).timestamp()
        if not bounds[0] <= t < bounds[-1]:
            continue
        k = bisect_right(bounds, t) - 1
        buckets.setdefault(k, Bucket()).restore.append(restore.total_seconds())
    return buckets


def summarize(bucket: Bucket, interval: Interval) -> IntervalMetrics:
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
    summarize: Callable[[Bucket, Interval], IntervalMetrics] = summarize,
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


def aggregate_report(
    streams: Iterable[tuple[StreamDims, Sequence[DeploymentFigures]]],
    grid: IntervalGrid,
    *,
    split: Split = Split.NONE,
    environment_groups: Mapping[str, Sequence[str]] | None = None,
    tenant_tag_set: str | None = None,
    failure_events: Iterable[FailureEvent] = (),
) -> list[SeriesMetrics]:
    members: list[tuple[Sequence[str], Mapping[int, Bucket]]] = []
    projects: dict[tuple[str, str], StreamDims] = {}
    for dims, figures in streams:
        projects[(dims.project_id, dims.environment_id)] = dims
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
