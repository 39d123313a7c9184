"""Properties: the columnar engine gives exactly what the previous engine gave (METRICS §4).

Same objects, floats compared by ``repr`` (bit for bit), on arbitrary figures: any flag
combination, missing values, integer values, ties, rows out of order or not completed, times in
other zones or exactly on interval and day boundaries, grids in zones with DST changes at midnight.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dora_insights.domain.aggregates import (
    EMPTY_STATISTICS,
    Granularity,
    IntervalGrid,
    Split,
    StreamDims,
    TimeRange,
    aggregate_report,
    aggregate_splits,
    interval_grid,
    series_names,
    statistics,
    statistics_of_sorted,
    stream_columns,
)
from dora_insights.domain.figures import DeploymentFigures
from dora_insights.domain.model import FailureEvent, TaskState
from dora_insights.domain.times import format_instant
from dora_insights.domain.zones import resolve_time_zone
from tests.unit.domain import previous_aggregates as previous
from tests.unit.domain.bucket_engine import bucket_failures, bucket_stream, buckets_of, combine_series, summarize
from tests.unit.domain.previous_aggregates import Bucket
from tests.unit.domain.test_engine_vs_reference import ZONES

NOW = datetime(2024, 4, 10, 7, 30, tzinfo=UTC)
TIME_ZONES = [UTC, timezone(timedelta(hours=-3)), ZoneInfo("Asia/Kolkata")]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

values = st.none() | st.floats(min_value=-1e7, max_value=1e7, allow_nan=False) | st.integers(-1000, 10**6)


@st.composite
def grids(draw: st.DrawFn) -> IntervalGrid:
    zone = resolve_time_zone(draw(st.sampled_from(ZONES)))
    now = NOW + timedelta(minutes=draw(st.integers(0, 48 * 60)))
    return interval_grid(draw(st.sampled_from(list(TimeRange))), draw(st.sampled_from(list(Granularity))), zone, now)


@st.composite
def instants(draw: st.DrawFn, grid: IntervalGrid) -> datetime:
    """Anywhere from before the grid to after it, often exactly on (or next to) a boundary."""
    edges = [*grid.bounds, *grid.day_bounds]
    choice = draw(st.integers(0, 3))
    if choice == 0:
        at = datetime.fromtimestamp(draw(st.sampled_from(edges)), UTC)
        at += timedelta(microseconds=draw(st.sampled_from([-1, 0, 0, 1])))
    elif choice == 1:  # a few instants shared by many rows: ties
        at = NOW - timedelta(days=draw(st.sampled_from([3, 40, 200])))
    else:
        at = NOW - timedelta(seconds=draw(st.integers(-3 * 86_400, 400 * 86_400)), microseconds=draw(st.integers(0, 9)))
    return at.astimezone(draw(st.sampled_from(TIME_ZONES)))


@st.composite
def figures(draw: st.DrawFn, grid: IntervalGrid) -> list[DeploymentFigures]:
    rows = []
    for n in range(draw(st.integers(0, 30))):
        completed = draw(st.integers(0, 9)) > 0
        successful = completed and draw(st.booleans())
        rows.append(
            DeploymentFigures(
                deployment_id=f"Deployments-{n}",
                release_version=None,
                state=draw(st.sampled_from(list(TaskState))),
                had_guided_failure=draw(st.booleans()),
                completed_at=draw(instants(grid)),
                completed=completed,
                successful=successful,
                deployment_failure=completed and not successful,
                lead_time_seconds=draw(values),
                time_since_previous_success_seconds=draw(values),
                time_to_recovery_seconds=draw(values),
                deployments_until_recovery=draw(st.none() | st.integers(1, 9)),
                change_failure=draw(st.none() | st.booleans()),
                rework=draw(st.none() | st.booleans()),
                rollback=draw(st.none() | st.booleans()),
            )
        )
    return rows


DIMS = [
    StreamDims("Projects-1", "web", "Environments-1", "staging", "Team A", None, ()),
    StreamDims("Projects-1", "web", "Environments-2", "production", "Team A", "acme", ("Location/Europe", "Tier/Gold")),
    StreamDims("Projects-2", "api", "Environments-2", "production", None, "globex", ("Location/US", "Location/Asia")),
    StreamDims("Projects-3", "db", "Environments-3", "test", None, None, ()),
]
GROUPS = {"Prod": ["Environments-2"], "Pre": ["Environments-1", "Environments-3"], "Everything": ["Environments-2"]}
SPLITS = [
    (Split.NONE, None),
    (Split.PROJECT, None),
    (Split.PROJECT_GROUP, None),
    (Split.ENVIRONMENT, None),
    (Split.ENVIRONMENT_GROUP, None),
    (Split.TENANT, None),
    (Split.TENANT_TAG_SET, "Location"),
    (Split.TENANT_TAG_SET, "Tier"),
]


@st.composite
def reports(
    draw: st.DrawFn,
) -> tuple[IntervalGrid, list[tuple[StreamDims, list[DeploymentFigures]]], list[FailureEvent]]:
    grid = draw(grids())
    streams = [(draw(st.sampled_from(DIMS)), draw(figures(grid))) for _ in range(draw(st.integers(0, 5)))]
    events = []
    for n in range(draw(st.integers(0, 6))):
        started = draw(instants(grid))
        length = draw(st.none() | st.integers(0, 5 * 86_400))
        dims = draw(st.sampled_from(DIMS))
        events.append(
            FailureEvent(
                id=f"Failures-{n}",
                space_id="Spaces-1",
                projects=[dims.project],
                project_ids=[draw(st.sampled_from([dims.project_id, "Projects-9"]))],
                environment=dims.environment,
                environment_id=dims.environment_id,
                started_at=format_instant(started),
                finished_at=format_instant(started + timedelta(seconds=length)) if length is not None else None,
                received_at=format_instant(started),
                body_hash="x",
            )
        )
    return grid, streams, events


def exactly(value: object) -> str:
    """A form that tells every float apart (``-0.0`` from ``0.0``, ``1`` from ``1.0``)."""
    return repr(value)


def bucket_fields(buckets: dict[int, Bucket]) -> dict[int, str]:
    """Each bucket's fields, exactly (its days in order: a set's order is not a value)."""
    return {
        k: exactly([sorted(v) if f.name == "days" else v for f in dataclasses.fields(b) for v in [getattr(b, f.name)]])
        for k, b in buckets.items()
    }


@SETTINGS
@given(st.data())
def test_bucket_stream_is_the_previous_one(data: st.DataObject) -> None:
    grid = data.draw(grids())
    rows = data.draw(figures(grid))
    expected = bucket_fields(previous.bucket_stream(rows, grid))
    assert bucket_fields(bucket_stream(rows, grid)) == expected
    assert bucket_fields(buckets_of(stream_columns(rows), grid)) == expected


@SETTINGS
@given(reports(), st.sampled_from(SPLITS))
def test_aggregate_report_is_the_previous_one(
    report: tuple[IntervalGrid, list[tuple[StreamDims, list[DeploymentFigures]]], list[FailureEvent]],
    split: tuple[Split, str | None],
) -> None:
    grid, streams, events = report
    kind, tag_set = split
    options = {"split": kind, "environment_groups": GROUPS, "tenant_tag_set": tag_set, "failure_events": events}
    assert exactly(aggregate_report(streams, grid, **options)) == exactly(
        previous.aggregate_report(streams, grid, **options)
    )


@SETTINGS
@given(reports())
def test_every_split_at_once_is_each_split_alone(
    report: tuple[IntervalGrid, list[tuple[StreamDims, list[DeploymentFigures]]], list[FailureEvent]],
) -> None:
    grid, streams, events = report
    columns = [(dims, stream_columns(rows)) for dims, rows in streams]
    together = aggregate_splits(columns, grid, SPLITS, environment_groups=GROUPS, failure_events=events)
    assert list(together) == SPLITS
    for kind, tag_set in SPLITS:
        alone = previous.aggregate_report(
            streams, grid, split=kind, environment_groups=GROUPS, tenant_tag_set=tag_set, failure_events=events
        )
        assert exactly(together[(kind, tag_set)]) == exactly(alone)


@SETTINGS
@given(reports(), st.sampled_from(SPLITS))
def test_bucket_path_is_the_previous_one(
    report: tuple[IntervalGrid, list[tuple[StreamDims, list[DeploymentFigures]]], list[FailureEvent]],
    split: tuple[Split, str | None],
) -> None:
    """The path the recompute took so far (``bucket_stream`` + ``combine_series``) is unchanged."""
    grid, streams, events = report
    kind, tag_set = split
    members: list[tuple[tuple[str, ...], dict[int, Bucket]]] = []
    expected: list[tuple[tuple[str, ...], dict[int, Bucket]]] = []
    for dims, rows in streams:
        names = series_names(dims, kind, environment_groups=GROUPS, tenant_tag_set=tag_set)
        members.append((names, bucket_stream(rows, grid)))
        expected.append((names, previous.bucket_stream(rows, grid)))
    members.append((("All",), bucket_failures(events, grid)))
    expected.append((("All",), previous.bucket_failures(events, grid)))
    assert exactly(combine_series(members, grid)) == exactly(previous.combine_series(expected, grid))


@SETTINGS
@given(st.lists(st.floats(min_value=-1e12, max_value=1e12) | st.integers(-(10**6), 10**6), max_size=12))
def test_statistics_are_the_previous_ones(numbers: list[float]) -> None:
    assert exactly(statistics(numbers)) == exactly(previous.statistics(numbers))
    assert exactly(statistics_of_sorted(sorted(numbers))) == exactly(previous.statistics(numbers))


def test_built_objects_are_ordinary_instances() -> None:
    """Statistics and intervals built slot by slot compare, hash and copy like constructed ones."""
    built = statistics_of_sorted([1.0, 2.0, 4.0])
    constructed = previous.statistics([1.0, 2.0, 4.0])
    assert built == constructed
    assert hash(built) == hash(constructed)
    assert dataclasses.replace(built, count=9).count == 9
    assert statistics([]) is EMPTY_STATISTICS
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.count = 2
    grid = interval_grid(TimeRange.LAST_MONTH, Granularity.WEEKLY, resolve_time_zone("UTC"), NOW)
    one = summarize(Bucket(lead_times=[3.0]), grid.intervals[0])
    assert one == previous.summarize(Bucket(lead_times=[3.0]), grid.intervals[0])
    assert hash(one) == hash(previous.summarize(Bucket(lead_times=[3.0]), grid.intervals[0]))
    assert dataclasses.asdict(one)["lead_time"]["count"] == 1


def test_rows_out_of_order_are_taken_in_completion_order() -> None:
    grid = interval_grid(TimeRange.LAST_MONTH, Granularity.DAILY, resolve_time_zone("UTC"), NOW)
    day = NOW - timedelta(days=3)
    rows = [
        DeploymentFigures(
            f"D-{n}", None, TaskState.SUCCESS, False, day + timedelta(hours=h), True, True, False, float(n)
        )
        for n, h in enumerate([5, 1, 3, 1])
    ]
    [bucket] = bucket_stream(rows, grid).values()
    assert bucket.lead_times == [1.0, 3.0, 2.0, 0.0]
