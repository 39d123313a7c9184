"""Property: ``/metrics`` sliced from a stored view is the answer computed afresh (METRICS §4).

A view is computed once over ``LastYear`` at the last recompute and read for any range at any
later time while nothing changed: the text it serves must be exactly what computing the series
again for that range and that moment would render (series, their order, intervals, values).
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dora_insights.domain.aggregates import (
    Granularity,
    Split,
    StreamDims,
    TimeRange,
    aggregate_report,
    interval_grid,
)
from dora_insights.domain.metrics_json import interval_document, metrics_json
from dora_insights.domain.model import Deployment, FailureEvent
from dora_insights.domain.reports import EnvironmentGroup, ReportDefinition
from dora_insights.domain.views import ViewId
from dora_insights.domain.zones import resolve_time_zone
from dora_insights.logic.metrics import _interval_record, compute_views, slice_rendered
from tests.unit.domain.bucket_engine import summarize
from tests.unit.domain.previous_aggregates import Bucket
from tests.unit.domain.test_engine_vs_reference import NOW, ZONES, engine_figures, histories
from tests.unit.domain.test_metrics_json import INTERVAL, buckets

# Later than every deployment and failure event the strategy draws.
COMPUTED_AT = NOW + timedelta(days=8)
TAG_SETS = {"TagSets-1": "Location"}
GROUPS = (
    EnvironmentGroup(name="Everything", environment_ids=("Environments-1", "Environments-2")),
    EnvironmentGroup(name="Production", environment_ids=("Environments-2",)),
)
SPLITS = [*Split]


def _fresh(
    streams: dict[str, StreamDims], figures: dict[str, list[Any]], events: list[FailureEvent], grid: Any, split: Split
) -> dict[str, Any]:
    series = aggregate_report(
        ((streams[k], figures[k]) for k in streams),
        grid,
        split=split,
        environment_groups={g.name: list(g.environment_ids) for g in GROUPS},
        tenant_tag_set="Location",
        failure_events=events,
    )
    return {"Series": [{"Name": s.name, "Intervals": [interval_document(m) for m in s.intervals]} for s in series]}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    histories(),
    st.sampled_from(ZONES),
    st.sampled_from(list(Granularity)),
    st.sampled_from(list(TimeRange)),
    st.sampled_from(SPLITS),
    st.integers(min_value=0, max_value=90 * 24 * 60),
)
def test_a_stored_view_answers_any_later_range_as_computing_afresh(
    history: tuple[list[Deployment], list[FailureEvent], dict[str, Any]],
    zone_name: str,
    granularity: Granularity,
    time_range: TimeRange,
    split: Split,
    minutes_later: int,
) -> None:
    deployments, events, change_starts = history
    engine = engine_figures(deployments, events, change_starts)
    by_stream: dict[str, list[Deployment]] = defaultdict(list)
    for d in deployments:
        by_stream[d.stream_key].append(d)
    streams = {k: StreamDims.of(ds[-1]) for k, ds in by_stream.items()}
    figures = {k: sorted((engine[d.id] for d in ds), key=lambda f: f.deployment_id) for k, ds in by_stream.items()}
    report = ReportDefinition(
        id="InsightsReports-1",
        space_id="Spaces-1",
        name="All",
        time_zone=zone_name,
        environment_groups=GROUPS,
        created_at="x",
        modified_at="x",
    )
    views = compute_views(report, streams, figures, events, TAG_SETS, COMPUTED_AT)
    # METRICS §4: a failure counts for a project it names when the report has a stream of that project in
    # the failure's environment (not any included project with any included environment).
    pairs = {(d.project_id, d.environment_id) for d in streams.values()}
    relevant = [e for e in events if any((project, e.environment_id) in pairs for project in e.project_ids)]

    read_at = COMPUTED_AT + timedelta(minutes=minutes_later)
    grid = interval_grid(time_range, granularity, resolve_time_zone(zone_name), read_at)
    stored = views.get(ViewId.of(split, granularity, "TagSets-1"))
    expected = _fresh(streams, figures, relevant, grid, split)
    if stored is None:  # no stream has a tag of the set: the view is not stored, and has no series
        assert split is Split.TENANT_TAG_SET
        assert expected == {"Series": []}
        return
    answer = json.loads(metrics_json(slice_rendered(stored.header, stored.text, grid, split)))
    assert answer == expected
    if stored.header["starts"] == [i.start_of_interval for i in grid.intervals]:
        assert json.loads(stored.text) == expected  # the stored answer is served as it is


def test_the_stored_answer_is_the_last_years_answer_at_the_recompute() -> None:
    from tests.unit.domain.builders import deployment

    deployments = [deployment(n, at=24.0 * n, version=f"1.{n}") for n in range(1, 6)]
    engine = engine_figures(deployments, [], {})
    stream = deployments[0].stream_key
    streams = {stream: StreamDims.of(deployments[-1])}
    figures = {stream: [engine[d.id] for d in deployments]}
    report = ReportDefinition(id="InsightsReports-1", space_id="Spaces-1", name="All", created_at="x", modified_at="x")
    now = NOW
    views = compute_views(report, streams, figures, [], {}, now)
    stored = views[ViewId(Split.NONE, Granularity.WEEKLY)]
    grid = interval_grid(TimeRange.LAST_YEAR, Granularity.WEEKLY, resolve_time_zone("UTC"), now)
    assert stored.header["starts"] == [i.start_of_interval for i in grid.intervals]
    assert json.loads(stored.text) == _fresh(streams, figures, [], grid, Split.NONE)
    # One series, every interval of the year, and the numbers of the non-empty ones only.
    assert [s["name"] for s in stored.records] == ["All"]
    # (2024-03-02 is a Saturday: its week starts on Sunday 2024-02-25; 03-03 to 03-06 the next.)
    assert set(stored.records[0]["intervals"]) == {"2024-02-25", "2024-03-03"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_stored_figures_read_back_as_computed(
    history: tuple[list[Deployment], list[FailureEvent], dict[str, Any]],
) -> None:
    from dora_insights.domain.figures import figures_of, figures_record

    deployments, events, change_starts = history
    for figures in engine_figures(deployments, events, change_starts).values():
        stored = json.loads(json.dumps(figures_record(figures)))
        assert figures_of(stored) == figures


def test_figures_of_a_deployment_without_a_version_read_back() -> None:
    from dora_insights.domain.figures import figures_of, figures_record
    from tests.unit.domain.builders import deployment

    (figures,) = engine_figures([deployment(1, at=1.0)], [], {}).values()
    assert figures.release_version is None
    assert figures.change_failure is False
    record = figures_record(figures)
    assert "release_version" not in record
    assert figures_of(record) == figures


@given(buckets())
def test_the_stored_numbers_of_an_interval_are_its_fields(bucket: Bucket) -> None:
    metrics = summarize(bucket, INTERVAL)
    assert _interval_record(metrics) == {**dataclasses.asdict(metrics), "start": INTERVAL.start.isoformat()}
