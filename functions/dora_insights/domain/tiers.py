"""DORA benchmark tiers (METRICS §6). The bands are data (``tier_tables.json``), not code.

Nothing here assumes the bands of a metric are ordered: the 2024 change-failure clusters are
not monotonic (medium 10 % < high 20 %) and the 2021 change-failure bands overlap.

- ``range`` bands ``[min, max)``: the best tier whose band contains the value; a value in no band
  (a gap between the report's wordings) takes the nearest band, ties to the worse tier.
- ``typical`` bands (cluster values): the nearest cluster value, ties to the worse tier.
- Deployment frequency from deployment *days* (DevLake's rule): the first tier, from Elite down,
  whose median of distinct deployment days per period (week from Sunday, calendar month, or
  half-year) reaches its minimum; else the tier with no rule.
"""

import json
import statistics
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict

from dora_insights.domain.base import Model

DEFAULT_BENCHMARK = "2023"
_TABLES = Path(__file__).with_name("tier_tables.json")
_TIE = 1e-12


class Tier(StrEnum):
    """A DORA performance tier, best first."""

    ELITE = "Elite"
    HIGH = "High"
    MEDIUM = "Medium"
    LOW = "Low"


TIER_ORDER: tuple[Tier, ...] = (Tier.ELITE, Tier.HIGH, Tier.MEDIUM, Tier.LOW)


class UnknownBenchmarkError(ValueError):
    """A ``benchmark`` that names no tier table."""


class Band(Model):
    """One tier's band of one metric."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tier: Tier
    min: float | None = None
    max: float | None = None
    typical: float | None = None
    period: Literal["week", "month", "half_year"] | None = None
    min_median_days: float | None = None
    wording: str = ""


class MetricBands(Model):
    """The bands of one metric in one table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["range", "typical", "deployment_days"]
    tiers: tuple[Band, ...]


class TierTable(Model):
    """The tiers of one DORA report year."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    deployment_frequency: MetricBands
    lead_time: MetricBands
    change_failure_rate: MetricBands
    recovery_time: MetricBands


@lru_cache(maxsize=1)
def _load() -> dict[str, TierTable]:
    raw = json.loads(_TABLES.read_text(encoding="utf-8"))
    return {year: TierTable.model_validate(table) for year, table in raw.items() if not year.startswith("_")}


def benchmarks() -> tuple[str, ...]:
    """The report years with a tier table (``2021``, ``2023``, ``2024``)."""
    return tuple(sorted(_load()))


def tier_table(benchmark: str = DEFAULT_BENCHMARK) -> TierTable:
    """The tier table of a report year; :class:`UnknownBenchmarkError` when there is none."""
    table = _load().get(benchmark)
    if table is None:
        raise UnknownBenchmarkError(f"benchmark must be one of {', '.join(benchmarks())}, not '{benchmark[:20]}'")
    return table


def _rank(tier: Tier) -> int:
    return TIER_ORDER.index(tier)


def _contains(value: float, band: Band) -> bool:
    """``[min, max)``: a value equal to ``max`` is past the band (one day of lead time is not "less
    than one day")."""
    return (band.min is None or value >= band.min) and (band.max is None or value < band.max)


def _distance(value: float, band: Band) -> float:
    if band.min is not None and value < band.min:
        return band.min - value
    if band.max is not None and value >= band.max:
        return value - band.max
    return 0.0


def _nearest(candidates: Sequence[tuple[float, Tier]]) -> Tier:
    """The nearest candidate; ties (within rounding) go to the worse tier."""
    best = min(distance for distance, _ in candidates)
    return max((tier for distance, tier in candidates if distance - best <= _TIE), key=_rank)


def classify(value: float, bands: MetricBands) -> Tier:
    """The tier of a value under ``range`` or ``typical`` bands (see the module docstring)."""
    if bands.kind == "typical":
        return _nearest([(abs(value - band.typical), band.tier) for band in bands.tiers if band.typical is not None])
    if bands.kind != "range":
        raise ValueError("deployment frequency is classified from deployment days")
    containing = [band.tier for band in bands.tiers if _contains(value, band)]
    if containing:
        return min(containing, key=_rank)
    return _nearest([(_distance(value, band), band.tier) for band in bands.tiers])


def lead_time_tier(median_seconds: float, benchmark: str = DEFAULT_BENCHMARK) -> Tier:
    """Tier of the range's median lead time (seconds)."""
    return classify(median_seconds, tier_table(benchmark).lead_time)


def change_failure_rate_tier(rate: float, benchmark: str = DEFAULT_BENCHMARK) -> Tier:
    """Tier of a change failure rate (a fraction, 0.05 = 5 %)."""
    return classify(rate, tier_table(benchmark).change_failure_rate)


def recovery_time_tier(median_seconds: float, benchmark: str = DEFAULT_BENCHMARK) -> Tier:
    """Tier of the range's median failed-deployment recovery time (seconds)."""
    return classify(median_seconds, tier_table(benchmark).recovery_time)


def _period_start(day: date, period: str) -> date:
    if period == "week":
        return day - timedelta(days=(day.weekday() + 1) % 7)
    if period == "month":
        return day.replace(day=1)
    return date(day.year, 1 if day.month <= 6 else 7, 1)


def median_deployment_days(deployment_dates: Iterable[date], *, first: date, last: date, period: str) -> float:
    """Median over every period (``week`` from Sunday, ``month``, ``half_year``) overlapping
    ``[first, last]`` of the distinct local dates with a deployment in it (periods without one count 0)."""
    if last < first:
        raise ValueError("last is before first")
    counts: dict[date, int] = {}
    day = first
    while day <= last:
        counts.setdefault(_period_start(day, period), 0)
        day += timedelta(days=1)
    for deployed in set(deployment_dates):
        if first <= deployed <= last:
            counts[_period_start(deployed, period)] += 1
    return float(statistics.median(counts.values()))


def deployment_frequency_tier(
    deployment_dates: Iterable[date], *, first: date, last: date, benchmark: str = DEFAULT_BENCHMARK
) -> Tier:
    """Deployment-frequency tier from the local dates of successful deployments in ``[first, last]``."""
    dates = list(deployment_dates)
    bands = tier_table(benchmark).deployment_frequency
    fallback = TIER_ORDER[-1]
    for band in bands.tiers:
        if band.period is None or band.min_median_days is None:
            fallback = band.tier
            continue
        if median_deployment_days(dates, first=first, last=last, period=band.period) >= band.min_median_days:
            return band.tier
    return fallback
