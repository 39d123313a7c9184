"""The per-interval bucket engine over the engine's stream columns, kept for the tests.

The recompute once bucketed each stream (one mergeable :class:`Bucket` per interval, cut from its
:class:`StreamColumns`) and merged the buckets per series; ``aggregate_splits`` now sums the cuts
directly. Filling the old engine's buckets from the columns checks the cut interval by interval
against :mod:`tests.unit.domain.previous_aggregates`, and :func:`summarize` builds the metrics of
any interval from counts and values written by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from dora_insights.domain.aggregates import Interval, IntervalGrid, IntervalMetrics, SeriesMetrics
from dora_insights.domain.aggregates.columns import StreamColumns, cut_stream, grid_edges, stream_columns
from dora_insights.domain.aggregates.series import restored_failures
from dora_insights.domain.aggregates.stats import interval_metrics
from dora_insights.domain.figures import DeploymentFigures
from dora_insights.domain.model import FailureEvent
from tests.unit.domain import previous_aggregates
from tests.unit.domain.previous_aggregates import Bucket


def bucket_stream(figures: Sequence[DeploymentFigures], grid: IntervalGrid) -> dict[int, Bucket]:
    """One stream's figures as buckets by interval index (only non-empty ones)."""
    return buckets_of(stream_columns(figures), grid)


def buckets_of(columns: StreamColumns, grid: IntervalGrid) -> dict[int, Bucket]:
    """:func:`bucket_stream` from the stream's columns, cut at the grid's boundaries."""
    cut = cut_stream(columns, grid_edges(grid))
    if cut is None:
        return {}
    rows, successful, guided = cut.rows, cut.successful, cut.guided
    rollbacks, change_failures, rework = cut.rollbacks, cut.change_failures, cut.rework
    (lead_at, since_at, recovery_at, until_at) = cut.values
    lead, since, recovery, until = (column.values for column in columns.values)
    days, first = cut.days, successful[0]
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


def bucket_failures(events: Iterable[FailureEvent], grid: IntervalGrid) -> dict[int, Bucket]:
    """Restored failure events as buckets of ``TimeToRestore`` values, by the interval of ``finished_at``."""
    buckets: dict[int, Bucket] = {}
    for _, k, seconds in restored_failures(events, grid):
        buckets.setdefault(k, Bucket()).restore.append(seconds)
    return buckets


def summarize(bucket: Bucket, interval: Interval) -> IntervalMetrics:
    """The metrics of one interval of one series from its (merged) bucket, built as the engine builds them."""
    return interval_metrics(
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
    """Merge buckets into series and :func:`summarize` every interval (dense), largest series first."""
    return previous_aggregates.combine_series(members, grid, always=always, summarize=summarize)
