"""What one interval of one series reports (METRICS §4): statistics, rates and their records.

Percentiles are linear interpolation between closest ranks (NumPy's default, Excel
``PERCENTILE.INC``); rates are rounded to 5 places, 0 when the denominator is 0.
``ChangeFailureRate`` leaves rollback deployments out of numerator and denominator alike;
``ReworkRate`` is over every completed deployment.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import date
from functools import lru_cache

from dora_insights.domain.aggregates.intervals import StartsOnADate

RATE_DECIMALS = 5

SlotSetter = Callable[[object, object], None]


def _slot_setters(cls: type, names: tuple[str, ...]) -> tuple[SlotSetter, ...]:
    """The slot setter of each field of the frozen slotted dataclass ``cls`` (``names``: its fields, in order).

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (its own
    ``__setattr__`` refuses), twice the cost of setting the slot. The engine builds a
    :class:`Statistics` and an :class:`IntervalMetrics` for every interval of every series, so their
    ``build`` sets the slots of a new instance directly: the same instance as the constructor's, in
    half the time (a sixth of a view's time, measured with ``bench/recompute.py``).
    """
    if tuple(f.name for f in fields(cls)) != names:
        raise TypeError(f"the fields of {cls.__name__} are not {names}")
    return tuple(vars(cls)[name].__set__ for name in names)


@dataclass(frozen=True, slots=True)
class Statistics:
    """``{Count, Mean, Median, Min, Max, NinetyFifth}``; every value None when Count is 0."""

    count: int
    mean: float | None = None
    median: float | None = None
    min: float | None = None
    max: float | None = None
    ninety_fifth: float | None = None

    @classmethod
    def build(
        cls, count: int, mean: float, median: float, minimum: float, maximum: float, ninety_fifth: float
    ) -> Statistics:
        """``Statistics(count, mean, median, minimum, maximum, ninety_fifth)``, built slot by slot."""
        stats = object.__new__(cls)
        set_count, set_mean, set_median, set_min, set_max, set_ninety_fifth = _STATISTICS_SETTERS
        set_count(stats, count)
        set_mean(stats, mean)
        set_median(stats, median)
        set_min(stats, minimum)
        set_max(stats, maximum)
        set_ninety_fifth(stats, ninety_fifth)
        return stats


_STATISTICS_SETTERS = _slot_setters(Statistics, ("count", "mean", "median", "min", "max", "ninety_fifth"))


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
    return Statistics.build(
        count, math.fsum(sorted_values) / count, median, sorted_values[0], sorted_values[-1], ninety_fifth
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
class IntervalMetrics(StartsOnADate):
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

    @classmethod
    def build(
        cls,
        start: date,
        number_of_successful_deployments: int,
        lead_time: Statistics,
        time_since_previous_deployment: Statistics,
        mean_time_to_recovery: Statistics,
        deployments_until_recovery: Statistics,
        deployment_failure_rate: DeploymentFailureRate,
        change_failure_rate: ChangeFailureRate,
        rework_rate: ReworkRate,
        time_to_restore: Statistics,
        deployment_days: int,
    ) -> IntervalMetrics:
        """``IntervalMetrics(...)`` with every field in order, built slot by slot (see :class:`Statistics`)."""
        metrics = object.__new__(cls)
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
        set_start(metrics, start)
        set_successful(metrics, number_of_successful_deployments)
        set_lead(metrics, lead_time)
        set_since(metrics, time_since_previous_deployment)
        set_recovery(metrics, mean_time_to_recovery)
        set_until(metrics, deployments_until_recovery)
        set_failure_rate(metrics, deployment_failure_rate)
        set_change_failure_rate(metrics, change_failure_rate)
        set_rework_rate(metrics, rework_rate)
        set_restore(metrics, time_to_restore)
        set_days(metrics, deployment_days)
        return metrics


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


@dataclass(frozen=True, slots=True)
class SeriesMetrics:
    """One series: its name, its deployments over the range (the sort key) and its dense intervals."""

    name: str
    deployments: int
    intervals: tuple[IntervalMetrics, ...]


@lru_cache(maxsize=4096)
def _failure_rate(successful: int, deployment_failure: int, guided: int) -> DeploymentFailureRate:
    return DeploymentFailureRate.of(successful, deployment_failure, guided)


@lru_cache(maxsize=4096)
def _change_failure_rate(change_failures: int, deployments: int) -> ChangeFailureRate:
    return ChangeFailureRate(change_failures, deployments, rate(change_failures, deployments))


@lru_cache(maxsize=4096)
def _rework_rate(rework_deployments: int, deployments: int) -> ReworkRate:
    return ReworkRate(rework_deployments, deployments, rate(rework_deployments, deployments))


def interval_metrics(
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
    empty = EMPTY_STATISTICS
    return IntervalMetrics.build(
        start,
        successful,
        statistics_of_sorted(lead) if lead else empty,
        statistics_of_sorted(since) if since else empty,
        statistics_of_sorted(recovery) if recovery else empty,
        statistics_of_sorted(until) if until else empty,
        _failure_rate(successful, deployment_failure, guided),
        _change_failure_rate(change_failures, counted),
        _rework_rate(rework, successful + deployment_failure + guided),
        statistics_of_sorted(restore) if restore else empty,
        deployment_days,
    )


def empty_interval(start: date) -> IntervalMetrics:
    """The metrics of an interval with no deployment and no restored failure."""
    none = EMPTY_STATISTICS
    failures, changes, rework = DeploymentFailureRate.of(0, 0, 0), ChangeFailureRate(0, 0, 0.0), ReworkRate(0, 0, 0.0)
    return IntervalMetrics(start, 0, none, none, none, none, failures, changes, rework, none, 0)
