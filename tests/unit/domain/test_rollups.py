"""Daily rollups of GitLab's DORA metrics API (METRICS §9): the stored rows, aggregated, equal the slow
reference computed from per-deployment figures and failure events (tests/support/gitlab_reference.py)
for every metric and interval, on random histories that cross a year boundary."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dora_insights.domain.figures import DeploymentFigures
from dora_insights.domain.model import FailureEvent, TaskState
from dora_insights.domain.rollups import (
    DeploymentColumns,
    FailureColumns,
    Interval,
    Metric,
    aggregate,
    buckets,
    concerns,
    decode_deployments,
    decode_failures,
    deployment_columns,
    encode_deployments,
    encode_failures,
    environment_tier,
    failure_columns,
    guess_tier,
)
from dora_insights.domain.times import format_instant
from tests.support.gitlab_reference import reference

ORIGIN = datetime(2024, 11, 1, tzinfo=UTC)
SPAN_HOURS = 24 * 150  # Nov 2024 .. Mar 2025: two calendar years
STREAMS = {
    "s1": ("Projects-1", "Environments-1"),
    "s2": ("Projects-1", "Environments-2"),
    "s3": ("Projects-2", "Environments-1"),
}


@st.composite
def figures(draw: st.DrawFn, stream: str) -> list[DeploymentFigures]:
    found = []
    for n in range(draw(st.integers(0, 25))):
        at = ORIGIN + timedelta(minutes=draw(st.integers(0, SPAN_HOURS * 60)))
        state = draw(st.sampled_from([TaskState.SUCCESS, TaskState.SUCCESS, TaskState.FAILED, TaskState.CANCELED]))
        guided = draw(st.booleans()) and state is TaskState.SUCCESS and draw(st.booleans())
        completed = state is not TaskState.CANCELED
        successful = state is TaskState.SUCCESS and not guided
        lead = draw(st.one_of(st.none(), st.floats(-3600, 30 * 86400, allow_nan=False))) if successful else None
        found.append(
            DeploymentFigures(
                deployment_id=f"{stream}-{n}",
                release_version=None,
                state=state,
                had_guided_failure=guided,
                completed_at=at,
                completed=completed,
                successful=successful,
                deployment_failure=completed and not successful,
                lead_time_seconds=lead,
                rework=draw(st.booleans()) if completed else None,
            )
        )
    return found


@st.composite
def failure_events(draw: st.DrawFn) -> list[FailureEvent]:
    events = []
    for n in range(draw(st.integers(0, 12))):
        started = ORIGIN + timedelta(minutes=draw(st.integers(0, SPAN_HOURS * 60)))
        length = draw(st.one_of(st.none(), st.integers(1, 5 * 24 * 60)))
        projects = draw(st.sampled_from([["Projects-1"], ["Projects-2"], ["Projects-1", "Projects-2"]]))
        events.append(
            FailureEvent(
                id=f"f{n}",
                space_id="Spaces-1",
                projects=projects,
                project_ids=projects,
                environment="production",
                environment_id=draw(st.sampled_from(["Environments-1", "Environments-2"])),
                started_at=format_instant(started),
                finished_at=None if length is None else format_instant(started + timedelta(minutes=length)),
                received_at=format_instant(started),
                body_hash="x",
            )
        )
    return events


def _through_storage(
    history: dict[str, list[DeploymentFigures]], failures: list[FailureEvent], start: date, end: date
) -> tuple[list[DeploymentColumns], list[FailureColumns]]:
    """What the read aggregates: each stream's year items and each pair's item, encoded and decoded."""
    streams: list[DeploymentColumns] = []
    for rows in history.values():
        columns = deployment_columns(rows)
        years = columns.years()
        stored = {y: encode_deployments(columns.year(y)) for y in range(years[0], years[-1] + 1)} if years else {}
        streams.extend(decode_deployments(blob) for y, blob in stored.items() if start.year <= y <= end.year)
    pairs = {STREAMS[key] for key in history}
    stored_failures = [encode_failures(failure_columns(f for f in failures if concerns(f, p, e))) for p, e in pairs]
    return streams, [decode_failures(blob) for blob in stored_failures]


@settings(max_examples=60, deadline=None)
@given(
    history=st.fixed_dictionaries({key: figures(key) for key in STREAMS}),
    failures=failure_events(),
    first=st.integers(0, 140),
    length=st.integers(1, 150),
    metric=st.sampled_from(list(Metric)),
    interval=st.sampled_from(list(Interval)),
    chosen=st.sets(st.sampled_from(sorted(STREAMS)), min_size=1),
)
def test_rollups_equal_the_reference(
    history: dict[str, list[DeploymentFigures]],
    failures: list[FailureEvent],
    first: int,
    length: int,
    metric: Metric,
    interval: Interval,
    chosen: set[str],
) -> None:
    start = ORIGIN.date() + timedelta(days=first)
    end = start + timedelta(days=length)
    selected = {k: v for k, v in history.items() if k in chosen}
    streams, pairs = _through_storage(selected, failures, start, end)
    found = aggregate(metric, interval, start, end, streams, pairs)
    expected = reference(
        metric.value, interval.value, start, end, {k: (*STREAMS[k], v) for k, v in selected.items()}, failures
    )
    assert [d for d, _ in found] == [d for d, _ in expected]
    for (_, value), (_, wanted) in zip(found, expected, strict=True):
        assert (value is None) == (wanted is None)
        if wanted is not None:
            assert value == pytest.approx(wanted, rel=1e-9, abs=1e-9)


def test_monthly_buckets_are_dated_the_first_and_hold_only_days_in_range() -> None:
    found = buckets(date(2024, 1, 15), date(2024, 3, 2), Interval.MONTHLY)
    assert [(b.label, b.days) for b in found] == [("2024-01-01", 17), ("2024-02-01", 29), ("2024-03-01", 2)]


def test_all_is_one_undated_row_and_frequency_is_a_daily_average() -> None:
    day = datetime(2024, 1, 2, 10, tzinfo=UTC)
    rows = [
        DeploymentFigures(f"d{n}", None, TaskState.SUCCESS, False, day, True, True, False, rework=False)
        for n in range(3)
    ]
    found = aggregate(
        Metric.DEPLOYMENT_FREQUENCY, Interval.ALL, date(2024, 1, 1), date(2024, 1, 10), [deployment_columns(rows)], []
    )
    assert found == [(None, 0.3)]


def test_gitlab_guesses_tiers_from_names() -> None:
    assert [guess_tier(n) for n in ("production", "prd", "live-eu", "staging", "review/x", "qa", "sandbox")] == [
        "production",
        "production",
        "production",
        "staging",
        "development",
        "testing",
        "other",
    ]


def test_the_spaces_production_environments_are_the_production_tier_and_only_they() -> None:
    production = frozenset({"Environments-7"})
    assert environment_tier("Environments-7", "eu-west", production) == "production"
    assert environment_tier("Environments-1", "production", production) == "other"
    assert environment_tier("Environments-2", "staging", production) == "staging"
    assert environment_tier("Environments-1", "production", frozenset()) == "production"
