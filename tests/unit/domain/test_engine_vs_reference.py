"""Property: the engine agrees with the slow reference on random histories (METRICS §2–4)."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
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
from dora_insights.domain.figures import DeploymentFigures, compute_stream_figures, release_first_seen
from dora_insights.domain.model import Deployment, FailureEvent, TaskState
from dora_insights.domain.times import format_instant
from dora_insights.domain.zones import resolve_time_zone
from tests.unit.domain import reference_metrics as ref

BASE = datetime(2024, 1, 1, tzinfo=UTC)
NOW = BASE + timedelta(days=100, hours=7)
ZONES = [
    "UTC",
    "Europe/London",
    "America/Santiago",
    "Asia/Beirut",
    "America/Havana",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "AUS Eastern Standard Time",
    "Pacific Standard Time",
]
PROJECTS = {"Projects-1": ("web", "Team A"), "Projects-2": ("api", None)}
ENVIRONMENTS = {"Environments-1": "staging", "Environments-2": "production"}
TENANTS = {None: (), "Tenants-1": ("Location/Europe", "Tier/Gold"), "Tenants-2": ("Location/Asia", "Location/US")}


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Deployment], list[FailureEvent], dict[str, datetime | None]]:
    count = draw(st.integers(min_value=0, max_value=60))
    deployments: list[Deployment] = []
    for i in range(count):
        project_id = draw(st.sampled_from(sorted(PROJECTS)))
        environment_id = draw(st.sampled_from(sorted(ENVIRONMENTS)))
        tenant_id = draw(st.sampled_from([None, "Tenants-1", "Tenants-2"]))
        finished = NOW - timedelta(seconds=draw(st.integers(min_value=-86_400, max_value=120 * 86_400)))
        started = draw(st.none() | st.integers(min_value=0, max_value=600).map(lambda m: timedelta(minutes=m)))
        created = draw(st.none() | st.integers(min_value=-3_000, max_value=3_000).map(lambda m: timedelta(minutes=m)))
        earlier_ids = [d.id for d in deployments]
        fixes = draw(
            st.none()
            | st.sampled_from(["1.0", "1.1", "1.2", "nope"])
            | (st.sampled_from(earlier_ids) if earlier_ids else st.none())
        )
        deployments.append(
            Deployment(
                id=f"Deployments-{i + 1}",
                space_id="Spaces-1",
                project=PROJECTS[project_id][0],
                project_id=project_id,
                team=PROJECTS[project_id][1],
                environment=ENVIRONMENTS[environment_id],
                environment_id=environment_id,
                tenant=tenant_id and tenant_id.lower(),
                tenant_id=tenant_id,
                tenant_tags=list(TENANTS[tenant_id]),
                channel_id="Channels-1",
                finished_at=format_instant(finished),
                started_at=format_instant(finished - started) if started is not None else None,
                version=draw(st.none() | st.sampled_from(["1.0", "1.1", "1.2", "1.3", "2.0"])),
                commit_sha=draw(st.none() | st.sampled_from(["aaa", "bbb", "ccc"])),
                state=draw(st.sampled_from(list(TaskState))),
                had_guided_failure=draw(st.booleans()),
                rollback=draw(st.integers(0, 9)) == 0,
                fixes=fixes,
                release_created_at=format_instant(finished + created) if created is not None else None,
                received_at=format_instant(finished),
                body_hash="x",
            )
        )
    events: list[FailureEvent] = []
    ids = [d.id for d in deployments]
    for i in range(draw(st.integers(min_value=0, max_value=5))):
        opened = BASE + timedelta(minutes=draw(st.integers(min_value=-5_000, max_value=150_000)))
        length = draw(st.none() | st.integers(min_value=0, max_value=5_000))
        # The cause a failure may name (METRICS §2 rule 4): a deployment (also an unknown one), a
        # commit (also abbreviated or in upper case, or one nothing shipped), a version; or nothing (rule 5).
        cause = draw(st.sampled_from(["none", "none", "deployment", "commit", "version"]) if ids else st.just("none"))
        named: dict[str, str | None] = {}
        if cause == "deployment":
            named["deployment_id"] = draw(st.sampled_from([*ids, "Deployments-999"]))
        elif cause == "commit":
            named["commit_sha"] = draw(st.sampled_from(["aaa", "bbb", "ccc", "ddd", "AAA"]))
        elif cause == "version":
            named["version"] = draw(st.sampled_from(["1.0", "1.1", "1.2", "9.9"]))
        events.append(
            FailureEvent(
                id=f"Failures-{i}",
                space_id="Spaces-1",
                projects=["x"],
                project_ids=[draw(st.sampled_from(sorted(PROJECTS)))],
                environment="production" if i % 2 else "staging",
                environment_id="Environments-2" if i % 2 else "Environments-1",
                started_at=format_instant(opened),
                finished_at=format_instant(opened + timedelta(minutes=length)) if length is not None else None,
                received_at=format_instant(opened),
                body_hash="x",
                **named,
            )
        )
    change_starts: dict[str, datetime | None] = {}
    for d in deployments:
        offset = draw(st.none() | st.integers(min_value=-100, max_value=5_000))
        if offset is not None:
            change_starts[d.id] = BASE + timedelta(minutes=offset)
    return draw(st.permutations(deployments)), events, change_starts


def close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
    return bool(a == b)


def engine_figures(
    deployments: list[Deployment], events: list[FailureEvent], change_starts: dict[str, datetime | None]
) -> dict[str, DeploymentFigures]:
    seen = release_first_seen(deployments)
    streams: dict[str, list[Deployment]] = defaultdict(list)
    for d in deployments:
        streams[d.stream_key].append(d)
    result: dict[str, DeploymentFigures] = {}
    for stream in streams.values():
        for f in compute_stream_figures(
            stream,
            failure_events=events,
            release_first_seen=seen.get(stream[0].project_id, {}),
            change_starts=change_starts,
        ):
            result[f.deployment_id] = f
    return result


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_figures_agree_with_the_reference(history: tuple[list[Deployment], list[FailureEvent], dict]) -> None:
    deployments, events, change_starts = history
    engine = engine_figures(deployments, events, change_starts)
    seen = release_first_seen(deployments)
    streams: dict[str, list[Deployment]] = defaultdict(list)
    for d in deployments:
        streams[d.stream_key].append(d)
    for stream in streams.values():
        expected = ref.figures(stream, events, timedelta(hours=24), seen.get(stream[0].project_id, {}), change_starts)
        for deployment_id, values in expected.items():
            got = engine[deployment_id]
            for name, value in values.items():
                if name == "lead_time_from_version" and change_starts.get(deployment_id) is not None:
                    continue
                assert close(getattr(got, name), value), (deployment_id, name, getattr(got, name), value)
        completed = set(expected)
        for d in stream:
            if d.id not in completed:
                assert engine[d.id].change_failure is None
                assert engine[d.id].lead_time_seconds is None


SPLITS = [Split.NONE, Split.PROJECT, Split.PROJECT_GROUP, Split.ENVIRONMENT, Split.TENANT, Split.TENANT_TAG_SET]


def reference_series(d: Deployment, split: Split) -> tuple[str, ...]:
    if split is Split.NONE:
        return ("All",)
    if split is Split.PROJECT:
        return (d.project,)
    if split is Split.PROJECT_GROUP:
        return (d.team or "No project group",)
    if split is Split.ENVIRONMENT:
        return (d.environment,)
    if split is Split.TENANT:
        return (d.tenant or "Untenanted",)
    return tuple(t.split("/", 1)[1] for t in d.tenant_tags if t.startswith("Location/"))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    histories(),
    st.sampled_from(ZONES),
    st.sampled_from(list(Granularity)),
    st.sampled_from(list(TimeRange)),
    st.sampled_from(SPLITS),
    st.integers(min_value=0, max_value=24 * 60),
)
def test_aggregates_agree_with_the_reference(
    history: tuple[list[Deployment], list[FailureEvent], dict],
    zone_name: str,
    granularity: Granularity,
    time_range: TimeRange,
    split: Split,
    minutes: int,
) -> None:
    deployments, events, change_starts = history
    zone = resolve_time_zone(zone_name)
    now = NOW + timedelta(minutes=minutes)
    engine = engine_figures(deployments, events, change_starts)
    streams: dict[str, list[Deployment]] = defaultdict(list)
    for d in deployments:
        streams[d.stream_key].append(d)
    grid = interval_grid(time_range, granularity, zone, now)
    series = aggregate_report(
        [(StreamDims.of(s[-1]), [engine[d.id] for d in s]) for s in streams.values()],
        grid,
        split=split,
        tenant_tag_set="Location",
    )
    rows = [
        ref.Row(
            d,
            {
                k: getattr(engine[d.id], k)
                for k in (
                    "rollback",
                    "change_failure",
                    "rework",
                    "lead_time_seconds",
                    "time_since_previous_success_seconds",
                    "time_to_recovery_seconds",
                    "deployments_until_recovery",
                )
            },
            reference_series(d, split),
        )
        for d in deployments
        if engine[d.id].completed
    ]
    expected = ref.aggregate(rows, granularity.value, time_range.months, zone, now)
    got = {s.name: s for s in series}
    assert set(got) - {"All"} == set(expected) - {"All"}
    assert [s.deployments for s in series] == sorted((s.deployments for s in series), reverse=True)
    for name, intervals in expected.items():
        assert [i.start for i in got[name].intervals] == [i["start"] for i in intervals]
        for mine, theirs in zip(got[name].intervals, intervals, strict=True):
            rate = mine.deployment_failure_rate
            assert (rate.successful, rate.deployment_failure, rate.successful_but_had_guided_failure, rate.total) == (
                theirs["successful"],
                theirs["deployment_failure"],
                theirs["guided"],
                theirs["total"],
            )
            assert rate.rate == theirs["rate"]
            assert mine.number_of_successful_deployments == theirs["successful"]
            assert mine.change_failure_rate.change_failures == theirs["change_failures"]
            assert mine.change_failure_rate.deployments == theirs["change_failure_deployments"]
            assert mine.rework_rate.rework_deployments == theirs["rework"]
            assert mine.deployment_days == theirs["deployment_days"]
            for attr, key in (
                ("lead_time", "lead_time"),
                ("time_since_previous_deployment", "since_previous"),
                ("mean_time_to_recovery", "recovery"),
                ("deployments_until_recovery", "until_recovery"),
            ):
                stat = getattr(mine, attr)
                want = theirs[key]
                assert stat.count == want["count"]
                for field, w in (
                    ("mean", "mean"),
                    ("median", "median"),
                    ("min", "min"),
                    ("max", "max"),
                    ("ninety_fifth", "p95"),
                ):
                    value = getattr(stat, field)
                    assert (value is None and want[w] is None) or math.isclose(
                        value, want[w], rel_tol=1e-9, abs_tol=1e-6
                    )
