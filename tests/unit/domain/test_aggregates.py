"""Report aggregates (METRICS §4), including the Octopus ``/metrics`` sample numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from dora_insights.domain.aggregates import (
    DeploymentFailureRate,
    Granularity,
    Split,
    StreamDims,
    TimeRange,
    aggregate_report,
    interval_grid,
    interval_start,
    percentile,
    rate,
    series_names,
    statistics,
)
from dora_insights.domain.durations import format_duration
from dora_insights.domain.figures import compute_stream_figures
from dora_insights.domain.model import TaskState
from dora_insights.domain.times import format_instant
from dora_insights.domain.zones import resolve_time_zone
from tests.unit.domain.builders import deployment, failure

UTC_ZONE = resolve_time_zone("UTC")


def test_octopus_sample_failure_rate() -> None:
    sample = DeploymentFailureRate.of(successful=247, deployment_failure=8, guided=0)
    assert (sample.total, sample.failed, sample.rate) == (255, 8, 0.03137)


def test_guided_failures_count_as_failed() -> None:
    assert DeploymentFailureRate.of(1, 1, 2) == DeploymentFailureRate(1, 1, 2, 4, 3, 0.75)


def test_rate_is_zero_without_deployments() -> None:
    assert rate(0, 0) == 0.0


def test_octopus_sample_statistics_render_as_duration_strings() -> None:
    # Two values whose mean, min and max are the sample's LeadTime Min/Max.
    values = [-(426 * 3600 + 53 * 60 + 44), 93 * 3600 + 32 * 60 + 33]
    stats = statistics(values)
    assert stats.min is not None and stats.max is not None
    assert (format_duration(stats.min), format_duration(stats.max)) == ("-426:53:44.0", "93:32:33.0")
    assert statistics([1.0] * 8).ninety_fifth == 1.0  # DeploymentsUntilRecovery: Count 8, all 1.0


def test_percentiles_interpolate_linearly_like_numpy() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert percentile(values, 0.5) == 3.0
    assert percentile(values, 0.95) == pytest.approx(8.8)  # numpy.percentile(values, 95)
    assert percentile([7.0], 0.95) == 7.0


def test_empty_statistics_have_count_zero_and_nulls() -> None:
    empty = statistics([])
    assert (empty.count, empty.mean, empty.median, empty.ninety_fifth) == (0, None, None, None)


@pytest.mark.parametrize(
    ("day", "granularity", "start"),
    [
        (date(2022, 6, 8), Granularity.WEEKLY, date(2022, 6, 5)),  # Octopus sample: a Sunday
        (date(2022, 6, 5), Granularity.WEEKLY, date(2022, 6, 5)),
        (date(2022, 6, 4), Granularity.WEEKLY, date(2022, 5, 29)),
        (date(2022, 6, 8), Granularity.MONTHLY, date(2022, 6, 1)),
        (date(2022, 6, 8), Granularity.DAILY, date(2022, 6, 8)),
    ],
)
def test_interval_starts(day: date, granularity: Granularity, start: date) -> None:
    assert interval_start(day, granularity) == start


def test_last_month_monthly_covers_this_and_last_month() -> None:
    grid = interval_grid(TimeRange.LAST_MONTH, Granularity.MONTHLY, UTC_ZONE, datetime(2024, 3, 15, tzinfo=UTC))
    assert [i.start_of_interval for i in grid.intervals] == ["2024-02-01", "2024-03-01"]


def test_last_year_weekly_is_dense_and_contiguous() -> None:
    grid = interval_grid(TimeRange.LAST_YEAR, Granularity.WEEKLY, UTC_ZONE, datetime(2024, 3, 15, tzinfo=UTC))
    assert grid.intervals[0].start == date(2023, 3, 12)
    assert grid.intervals[-1].start == date(2024, 3, 10)
    assert all(a.ends == b.begins for a, b in zip(grid.intervals, grid.intervals[1:], strict=False))


def test_interval_boundaries_are_local_midnights() -> None:
    zone = resolve_time_zone("AUS Eastern Standard Time")
    grid = interval_grid(TimeRange.LAST_MONTH, Granularity.DAILY, zone, datetime(2024, 3, 15, tzinfo=UTC))
    assert grid.intervals[-1].begins == datetime(2024, 3, 14, 13, tzinfo=UTC)  # 00:00 AEDT (+11)


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        interval_grid(TimeRange.LAST_MONTH, Granularity.DAILY, UTC_ZONE, datetime(2024, 3, 15))


def test_deployment_counts_in_the_interval_of_its_local_completion() -> None:
    # 2024-03-02T23:30 in London is 23:30 local (GMT); in Sydney it is already Sunday the 3rd.
    d = deployment(1, 0, finished_at=format_instant(datetime(2024, 3, 2, 23, 30, tzinfo=UTC)))
    figs = compute_stream_figures([d])
    for zone_name, expected in (("Europe/London", "2024-02-25"), ("AUS Eastern Standard Time", "2024-03-03")):
        grid = interval_grid(
            TimeRange.LAST_MONTH, Granularity.WEEKLY, resolve_time_zone(zone_name), datetime(2024, 3, 20, tzinfo=UTC)
        )
        [series] = aggregate_report([(StreamDims.of(d), figs)], grid)
        [busy] = [i for i in series.intervals if i.number_of_successful_deployments]
        assert busy.start_of_interval == expected


def test_every_metric_of_one_interval() -> None:
    ds = [
        deployment(1, 0, version="1"),
        deployment(2, 2, state=TaskState.FAILED, version="2"),
        deployment(3, 3, version="3"),
        deployment(4, 30, version="1"),  # rolls back to 1: marks 2 (already failed)
    ]
    events = [failure(1, 10, 12), failure(2, 40)]  # 1 starts 7 h after deployment 3 (marks it); 2 is open
    figs = compute_stream_figures(ds, failure_events=events)
    grid = interval_grid(TimeRange.LAST_MONTH, Granularity.MONTHLY, UTC_ZONE, datetime(2024, 3, 20, tzinfo=UTC))
    [series] = aggregate_report([(StreamDims.of(ds[-1]), figs)], grid, failure_events=events)
    march = series.intervals[-1]
    assert march.number_of_successful_deployments == 3
    assert march.deployment_failure_rate.rate == 0.25
    assert march.time_since_previous_deployment.count == 2
    assert march.mean_time_to_recovery.max == 3600
    assert march.deployments_until_recovery.mean == 1.0
    assert (march.change_failure_rate.change_failures, march.change_failure_rate.deployments) == (2, 3)
    assert march.rework_rate.rework_deployments == 2  # 3 (after the failure), 4 (rollback)
    assert march.time_to_restore.count == 1
    assert march.time_to_restore.mean == 7200
    assert march.deployment_days == 2
    assert series.intervals[0].deployment_failure_rate.total == 0


def dims(project: str, tenant: str | None = None, tags: tuple[str, ...] = ()) -> StreamDims:
    return StreamDims(
        project_id=project,
        project=project,
        environment_id="Environments-1",
        environment="production",
        tenant=tenant,
        tenant_tags=tags,
    )


def test_series_names_by_split() -> None:
    d = dims("web", "acme", ("Location/Europe", "Location/US", "Tier/Gold"))
    assert series_names(d, Split.NONE) == ("All",)
    assert series_names(d, Split.TENANT) == ("acme",)
    assert series_names(dims("web"), Split.TENANT) == ("Untenanted",)
    assert series_names(d, Split.PROJECT_GROUP) == ("No project group",)
    assert series_names(d, Split.TENANT_TAG_SET, tenant_tag_set="Location") == ("Europe", "US")
    groups = {"Prod": ["Environments-1"], "Test": ["Environments-2"], "All envs": ["Environments-1", "Environments-2"]}
    assert series_names(d, Split.ENVIRONMENT_GROUP, environment_groups=groups) == ("Prod", "All envs")


def test_series_are_ordered_by_deployments_then_name() -> None:
    now = datetime(2024, 3, 20, tzinfo=UTC)
    grid = interval_grid(TimeRange.LAST_MONTH, Granularity.WEEKLY, UTC_ZONE, now)

    def stream(project: str, count: int) -> tuple[StreamDims, list]:
        ds = [deployment(i, i, project=project, project_id=project) for i in range(count)]
        return dims(project), compute_stream_figures(ds)

    series = aggregate_report([stream("b", 1), stream("c", 3), stream("a", 1)], grid, split=Split.PROJECT)
    assert [(s.name, s.deployments) for s in series] == [("c", 3), ("a", 1), ("b", 1)]
    assert all(len(s.intervals) == len(grid.intervals) for s in series)


def test_empty_report_still_has_a_dense_all_series() -> None:
    grid = interval_grid(TimeRange.LAST_QUARTER, Granularity.MONTHLY, UTC_ZONE, datetime(2024, 3, 20, tzinfo=UTC))
    [series] = aggregate_report([], grid)
    assert series.name == "All"
    assert [i.start_of_interval for i in series.intervals] == ["2023-12-01", "2024-01-01", "2024-02-01", "2024-03-01"]
    assert series.intervals[0].lead_time.count == 0


def test_hundred_thousand_deployments_aggregate_quickly() -> None:
    import time

    start_at = datetime(2023, 3, 1, tzinfo=UTC)
    streams = []
    for s in range(200):
        ds = [
            deployment(
                i,
                0,
                project=f"p{s % 20}",
                project_id=f"Projects-{s}",
                version=str(i % 50),
                finished_at=format_instant(start_at + timedelta(minutes=i * 700 + s)),
                state=TaskState.FAILED if i % 9 == 0 else TaskState.SUCCESS,
            )
            for i in range(500)
        ]
        streams.append(
            (
                StreamDims.of(ds[-1]),
                compute_stream_figures(ds, release_first_seen={str(v): start_at for v in range(50)}),
            )
        )
    grid = interval_grid(
        TimeRange.LAST_YEAR, Granularity.WEEKLY, resolve_time_zone("Europe/London"), datetime(2024, 3, 1, tzinfo=UTC)
    )
    began = time.perf_counter()
    series = aggregate_report(streams, grid, split=Split.PROJECT)
    elapsed = time.perf_counter() - began
    assert sum(s.deployments for s in series) > 90_000
    assert elapsed < 2.0
