"""Recompute and /metrics at scale, and the engine against DuckDB.

1. Round trips of a recompute run, measured against in-process moto: 2,000 deployments
   across 200 streams (moto answers a GSI Query by walking the whole table, so larger
   tables measure moto, not this code; the call count grows with streams and pages).
2. The engine at 10k and 100k deployments across 200 streams (20 projects x 5 environments x
   2 tenants, one year, 10 % failures): per-stream figures for every stream, every view of a
   report (3 granularities x 7 splits), and one view (weekly, split by project, last year)
   against DuckDB computing the same aggregates over the same rows (goal: within 3x).
3. The /metrics handler reading a one-year daily split-by-project view of 100k deployments
   (precomputed items in moto; goal: under 50 ms in-process).
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

SIZES = tuple(int(n) for n in os.environ.get("BENCH_RECOMPUTE_SIZES", "10000,100000").split(","))
ROUND_TRIP_SIZE = 2_000
NOW = datetime(2024, 12, 31, 12, tzinfo=UTC)


def _deployments(n: int, rng: random.Random) -> list[Any]:
    from dora_insights.domain.model import Deployment, TaskState
    from dora_insights.domain.times import format_instant

    streams = [(p, e, t) for p in range(20) for e in range(5) for t in range(2)]
    per_stream = max(1, n // len(streams))
    start = NOW - timedelta(days=365)
    gap = timedelta(days=365) / per_stream
    rows = []
    for p, e, t in streams:
        for k in range(per_stream):
            finished = start + gap * k + timedelta(seconds=rng.randint(0, 3600))
            rows.append(
                Deployment(
                    id=f"d{p:02d}{e}{t}{k:06d}",
                    space_id="Spaces-1",
                    project=f"project-{p}",
                    project_id=f"Projects-{p + 1}",
                    environment=f"env-{e}",
                    environment_id=f"Environments-{e + 1}",
                    tenant=f"tenant-{t}",
                    tenant_id=f"Tenants-{t + 1}",
                    channel="Default",
                    channel_id="Channels-1",
                    finished_at=format_instant(finished),
                    started_at=format_instant(finished - timedelta(minutes=rng.randint(1, 30))),
                    version=f"1.{k // 3}",
                    state=TaskState.FAILED if rng.random() < 0.1 else TaskState.SUCCESS,
                    received_at=format_instant(finished),
                    body_hash="bench",
                )
            )
    return rows


def _report(store: Any) -> Any:
    from dora_insights.domain.reports import TenantMode
    from dora_insights.logic.reports import ReportFields, create_report

    fields = ReportFields("Everything", None, (), (), (), (), TenantMode.TENANTED_AND_UNTENANTED, (), "UTC", None, None)
    return create_report(store, "Spaces-1", fields, NOW)


def _table() -> Any:
    from bench.ingest import seeded_table

    return seeded_table()


def round_trips() -> None:
    """Part 1: every DynamoDB call of one recompute run."""
    from dora_insights.dal import aws as dal_aws
    from dora_insights.dal.metrics import MetricsStore
    from dora_insights.domain.times import format_instant
    from dora_insights.logic import recompute

    store = _table()
    rows = _deployments(ROUND_TRIP_SIZE, random.Random(7))
    data = MetricsStore(store)
    data.batch_put(store.deployment_item(d) for d in rows)
    marks = {d.stream_key for d in rows}
    data.batch_put(
        {"PK": "S#Spaces-1#DIRTY", "SK": s, "type": "DirtyStream", "stream": s, "dirty_at": format_instant(NOW)}
        for s in marks
    )
    _report(store)
    calls: Counter[str] = Counter()
    dal_aws.client("dynamodb").meta.events.register(
        "before-parameter-build.dynamodb", lambda model, **_: calls.update([model.name])
    )
    summary = recompute.run(store, NOW)
    print(f"recompute round trips, {len(rows):,} deployments across {len(marks)} streams (in-process moto)")
    print(f"  streams processed {summary.streams_processed}, reports refreshed {summary.reports_refreshed}")
    total = sum(calls.values())
    print(f"  DynamoDB calls    {dict(calls)} (total {total}; {total / len(marks):.1f} per stream)")


def _duckdb_seconds(rows: list[tuple[Any, ...]]) -> float:
    """DuckDB computing what the engine computes for one view (weekly, split by project, in UTC):
    per project and Sunday-start week the outcome counts, change-failure numerator and denominator
    (rollbacks left out), rework, the four statistics and deployment days (best of 3, fetch included)."""
    import duckdb

    connection = duckdb.connect()
    connection.execute(
        "CREATE TABLE f (project VARCHAR, t DOUBLE, ok BOOLEAN, failed BOOLEAN, guided BOOLEAN, rollback BOOLEAN,"
        " change_failure BOOLEAN, rework BOOLEAN, lead DOUBLE, since DOUBLE, recovery DOUBLE, until DOUBLE)"
    )
    connection.executemany("INSERT INTO f VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    query = """
        SELECT project, floor((t + 4 * 86400) / 604800) AS week,
               count(*) FILTER (WHERE ok), count(*) FILTER (WHERE failed AND NOT guided),
               count(*) FILTER (WHERE guided),
               count(*) FILTER (WHERE change_failure AND NOT rollback), count(*) FILTER (WHERE NOT rollback),
               count(*) FILTER (WHERE rework),
               count(lead), avg(lead), quantile_cont(lead, 0.5), min(lead), max(lead), quantile_cont(lead, 0.95),
               count(since), avg(since), quantile_cont(since, 0.5), min(since), max(since),
               quantile_cont(since, 0.95),
               count(recovery), avg(recovery), quantile_cont(recovery, 0.5), min(recovery), max(recovery),
               quantile_cont(recovery, 0.95),
               count(until), avg(until), quantile_cont(until, 0.5), min(until), max(until),
               quantile_cont(until, 0.95),
               count(DISTINCT floor(t / 86400)) FILTER (WHERE ok)
        FROM f GROUP BY ALL
    """
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        connection.execute(query).fetchall()
        timings.append(time.perf_counter() - started)
    return min(timings)


def engine(n: int) -> None:
    """Part 2 (and part 3 at the largest size): pure compute at scale, DuckDB, /metrics."""
    from dora_insights.domain.aggregates import (
        Granularity,
        Split,
        StreamDims,
        TimeRange,
        aggregate_report,
        aggregate_splits,
        interval_grid,
        stream_columns,
    )
    from dora_insights.domain.figures import compute_stream_figures, release_first_seen
    from dora_insights.domain.zones import resolve_time_zone
    from dora_insights.logic import metrics

    rows = _deployments(n, random.Random(11))
    by_stream: dict[str, list[Any]] = defaultdict(list)
    for d in rows:
        by_stream[d.stream_key].append(d)
    started = time.perf_counter()
    first_seen = release_first_seen(rows)
    figures = {
        key: compute_stream_figures(ds, release_first_seen=first_seen.get(ds[0].project_id, {}))
        for key, ds in by_stream.items()
    }
    figures_seconds = time.perf_counter() - started
    dims = {key: StreamDims.of(ds[-1]) for key, ds in by_stream.items()}
    report = type("R", (), {})()
    started = time.perf_counter()
    from dora_insights.domain.reports import ReportDefinition

    definition = ReportDefinition(
        id="InsightsReports-1", space_id="Spaces-1", name="All", created_at="x", modified_at="x"
    )
    views = metrics.compute_views(definition, dims, figures, [], {}, NOW)
    views_seconds = time.perf_counter() - started
    grid = interval_grid(TimeRange.LAST_YEAR, Granularity.WEEKLY, resolve_time_zone("UTC"), NOW)
    one_view = []
    for _ in range(3):
        t0 = time.perf_counter()
        aggregate_report(((dims[k], figures[k]) for k in dims), grid, split=Split.PROJECT)
        one_view.append(time.perf_counter() - t0)
    started = time.perf_counter()
    columns = {k: stream_columns(figures[k]) for k in dims}
    columns_seconds = time.perf_counter() - started
    from_columns = []
    for _ in range(3):
        t0 = time.perf_counter()
        aggregate_splits(((dims[k], columns[k]) for k in dims), grid, [(Split.PROJECT, None)])
        from_columns.append(time.perf_counter() - t0)
    flat = [
        (
            dims[k].project,
            f.completed_at.timestamp(),
            f.successful,
            f.deployment_failure,
            f.guided_failure_success,
            f.rollback,
            f.change_failure,
            f.rework,
            f.lead_time_seconds,
            f.time_since_previous_success_seconds,
            f.time_to_recovery_seconds,
            f.deployments_until_recovery,
        )
        for k in dims
        for f in figures[k]
        if f.completed
    ]
    duck = _duckdb_seconds(flat)
    print(f"engine, {n:,} deployments across {len(by_stream)} streams (pure Python, no I/O)")
    print(f"  figures of every stream        {figures_seconds:8.2f} s")
    print(f"  every view of a report ({len(views)})  {views_seconds:8.2f} s")
    print(f"  one view (weekly by project)   {min(one_view) * 1000:8.1f} ms")
    print(
        f"    stream columns of it         {columns_seconds * 1000:8.1f} ms  (a recompute builds them once per report)"
    )
    print(f"    the view from the columns    {min(from_columns) * 1000:8.1f} ms")
    print(f"  DuckDB, same aggregates        {duck * 1000:8.1f} ms")
    print(f"  engine / DuckDB                {min(one_view) / duck:8.2f}x  (goal <= 3x)")
    del report
    if n == max(SIZES):
        metrics_route(views)


def metrics_route(views: dict[Any, Any]) -> None:
    """Part 3: the /metrics handler over precomputed views (as a client that accepts gzip asks,
    and the same day's LastQuarter, which is sliced from the stored year)."""
    from tests.conftest import _Context
    from tests.support import lambdas
    from tests.support.events import http_event

    from dora_insights.dal.metrics import MetricsStore
    from dora_insights.domain.aggregates import Granularity, Split
    from dora_insights.domain.views import ViewId
    from dora_insights.handlers import runtime
    from dora_insights.logic.metrics import VIEW_FORMAT

    store = _table()
    report = _report(store)
    state = {
        "report_version": report.version,
        "computed_at": "x",
        "read_at": "x",
        "tag_sets": {},
        "format": VIEW_FORMAT,
    }
    MetricsStore(store).write_report_aggregates("Spaces-1", report.number, "G1", views, state)
    restore_clock = runtime.use_clock(lambda: NOW)
    print("/metrics, split by project (precomputed views in in-process moto; median of 5)")
    cases = [
        ("LastYear, Daily, Accept-Encoding: gzip", "LastYear", {"accept-encoding": "gzip, deflate"}, "(goal < 50 ms)"),
        ("LastYear, Daily, no gzip", "LastYear", {}, ""),
        ("LastQuarter, Daily, gzip", "LastQuarter", {"accept-encoding": "gzip"}, ""),
    ]
    for label, time_range, headers, goal in cases:
        event = http_event(
            "GET",
            "/api/{spaceId}/insights/reports/{reportId}/metrics",
            path_params={"spaceId": "Spaces-1", "reportId": report.id},
            query={"split": "Project", "timeRange": time_range, "granularity": "Daily"},
            headers=headers,
            key="bench-key",
        )
        timings, size, status = [], 0, 0
        for _ in range(5):
            started = time.perf_counter()
            response = lambdas.invoke("GetReportMetricsFunction", event, _Context())
            timings.append(time.perf_counter() - started)
            status, size = response["statusCode"], len(response["body"])
        encoding = (response.get("headers") or {}).get("Content-Encoding", "identity")
        print(
            f"  {label:40} {statistics.median(timings) * 1000:7.1f} ms  {status} {encoding:8} "
            f"{size / 1e6:5.2f} MB sent {goal}"
        )
    restore_clock()
    full = views[ViewId(Split.PROJECT, Granularity.DAILY)].text
    print(f"  (the answer itself: {len(full) / 1e6:.1f} MB of JSON; a Lambda function returns at most 6 MB)")


def run() -> None:
    """Print every figure."""
    from bench.ingest import _environment

    _environment()
    from dora_local.motofix import mock_aws  # moto as the local runtime and the tests run it

    with mock_aws():
        round_trips()
    for n in SIZES:
        print()
        with mock_aws():
            engine(n)
