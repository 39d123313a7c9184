"""Report aggregates (METRICS §4): intervals in the report's zone, dense series, statistics. Pure.

The rooms, each importing only those above it:

1. :mod:`.intervals`: :func:`interval_grid` fixes the intervals of a request (zone, granularity,
   range, ``now``) as UTC boundary instants, plus the local-day boundaries (for ``DeploymentDays``).
2. :mod:`.stats`: what one interval of one series reports (statistics, rates) and how it is built.
3. :mod:`.columns`: :func:`stream_columns` turns one stream's figures into columns in one pass;
   they depend on no grid, so a recompute builds them once per stream for every view of a report.
   :func:`cut_stream` cuts them at a grid's boundaries.
4. :mod:`.splits`: the series a stream or a failure event belongs to under each ``split``.
5. :mod:`.series`: :func:`aggregate_splits` sums the cut streams of each series, per interval, for
   several splits of one grid at once; :func:`aggregate_report` is one split from figures.

Each room's docstring states the decisions it makes where METRICS is silent. The names below are
the package's interface; tests of a room's internals import the room itself.
"""

from dora_insights.domain.aggregates.columns import stream_columns
from dora_insights.domain.aggregates.intervals import (
    Granularity,
    Interval,
    IntervalGrid,
    TimeRange,
    interval_grid,
    interval_start,
)
from dora_insights.domain.aggregates.series import aggregate_report, aggregate_splits
from dora_insights.domain.aggregates.splits import (
    ALL_SERIES,
    Split,
    StreamDims,
    failure_series_names,
    series_names,
)
from dora_insights.domain.aggregates.stats import (
    EMPTY_STATISTICS,
    ChangeFailureRate,
    DeploymentFailureRate,
    IntervalMetrics,
    ReworkRate,
    SeriesMetrics,
    Statistics,
    empty_interval,
    percentile,
    rate,
    statistics,
    statistics_of_sorted,
)

__all__ = [
    "ALL_SERIES",
    "EMPTY_STATISTICS",
    "ChangeFailureRate",
    "DeploymentFailureRate",
    "Granularity",
    "Interval",
    "IntervalGrid",
    "IntervalMetrics",
    "ReworkRate",
    "SeriesMetrics",
    "Split",
    "Statistics",
    "StreamDims",
    "TimeRange",
    "aggregate_report",
    "aggregate_splits",
    "empty_interval",
    "failure_series_names",
    "interval_grid",
    "interval_start",
    "percentile",
    "rate",
    "series_names",
    "statistics",
    "statistics_of_sorted",
    "stream_columns",
]
