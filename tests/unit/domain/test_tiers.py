"""DORA benchmark tiers (METRICS §6)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from dora_insights.domain.tiers import (
    Tier,
    UnknownBenchmarkError,
    benchmarks,
    change_failure_rate_tier,
    deployment_frequency_tier,
    lead_time_tier,
    median_deployment_days,
    recovery_time_tier,
    tier_table,
)

HOUR, DAY, WEEK = 3600, 86400, 604800
FIRST, LAST = date(2024, 1, 7), date(2024, 3, 30)  # 12 whole weeks, Sunday to Saturday


def every(step: int, *, weekdays_only: bool = False) -> list[date]:
    days = [FIRST + timedelta(days=n) for n in range(0, (LAST - FIRST).days + 1, step)]
    return [d for d in days if not weekdays_only or d.weekday() < 5]


def test_three_report_years_with_their_sources() -> None:
    assert benchmarks() == ("2021", "2023", "2024")
    assert all(tier_table(year).source for year in benchmarks())


def test_unknown_benchmark() -> None:
    with pytest.raises(UnknownBenchmarkError):
        tier_table("2019")


@pytest.mark.parametrize(
    ("dates", "tier"),
    [
        (every(1, weekdays_only=True), Tier.ELITE),
        (every(2), Tier.HIGH),
        (every(14), Tier.MEDIUM),
        ([FIRST], Tier.LOW),
    ],
)
def test_deployment_frequency_2023_from_deployment_days(dates: list[date], tier: Tier) -> None:
    assert deployment_frequency_tier(dates, first=FIRST, last=LAST) == tier


def test_several_deployments_on_one_day_are_one_deployment_day() -> None:
    assert median_deployment_days([FIRST] * 10, first=FIRST, last=FIRST + timedelta(days=6), period="week") == 1


def test_deployment_frequency_2021_high_is_weekly_to_monthly() -> None:
    assert deployment_frequency_tier(every(14), first=FIRST, last=LAST, benchmark="2021") == Tier.HIGH


@pytest.mark.parametrize(
    ("seconds", "tier"), [(HOUR, Tier.ELITE), (2 * DAY, Tier.HIGH), (2 * WEEK, Tier.MEDIUM), (60 * DAY, Tier.LOW)]
)
def test_lead_time_2023(seconds: float, tier: Tier) -> None:
    assert lead_time_tier(seconds) == tier


@pytest.mark.parametrize(
    ("seconds", "tier"), [(30 * 60, Tier.ELITE), (5 * HOUR, Tier.HIGH), (3 * DAY, Tier.MEDIUM), (9 * DAY, Tier.LOW)]
)
def test_recovery_time_2023(seconds: float, tier: Tier) -> None:
    assert recovery_time_tier(seconds) == tier


@pytest.mark.parametrize(
    ("rate", "tier"), [(0.0, Tier.ELITE), (0.06, Tier.ELITE), (0.09, Tier.HIGH), (0.14, Tier.MEDIUM), (0.5, Tier.LOW)]
)
def test_change_failure_rate_2023(rate: float, tier: Tier) -> None:
    assert change_failure_rate_tier(rate) == tier


@pytest.mark.parametrize(
    ("rate", "tier"), [(0.04, Tier.ELITE), (0.11, Tier.MEDIUM), (0.19, Tier.HIGH), (0.35, Tier.LOW)]
)
def test_change_failure_rate_2024_is_not_monotonic(rate: float, tier: Tier) -> None:
    assert change_failure_rate_tier(rate, "2024") == tier


def test_2024_high_and_medium_recovery_overlap_and_the_best_wins() -> None:
    assert recovery_time_tier(5 * HOUR, "2024") == Tier.HIGH


def test_2021_overlapping_change_failure_bands() -> None:
    assert change_failure_rate_tier(0.10, "2021") == Tier.ELITE
    assert change_failure_rate_tier(0.20, "2021") == Tier.HIGH
    assert change_failure_rate_tier(0.50, "2021") == Tier.LOW


@pytest.mark.parametrize(
    ("seconds", "tier"),
    [(DAY - 1, Tier.ELITE), (DAY, Tier.HIGH), (WEEK, Tier.MEDIUM), (30 * DAY, Tier.LOW)],
)
def test_a_value_on_a_band_edge_is_past_the_band(seconds: float, tier: Tier) -> None:
    """Bands are ``[min, max)``: one day of lead time is not "less than one day" (METRICS §6)."""
    assert lead_time_tier(seconds) == tier


def test_recovery_of_exactly_one_hour_is_not_elite() -> None:
    assert recovery_time_tier(HOUR - 1) == Tier.ELITE
    assert recovery_time_tier(HOUR) == Tier.HIGH
