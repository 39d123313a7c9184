"""GitLab's DORA metrics API (issue 19): a year, daily, 200 streams, 100k deployments.

``GET /api/{spaceId}/dora/metrics`` reads the daily rollups the recompute writes (METRICS §9), never a
deployment: its cost is the rollup items of the years the range touches (one Query per year, paged by
DynamoDB's 1 MB) plus the failure rollups (one Query), the stream pointers, the dirty marks and the
space. Goal: < 50 ms in process, at most one Query page per MB read.

The space is seeded as the recompute leaves it, without running it on 100k deployments in moto:
per stream, 500 successful or failed deployments spread over a year (lead times of 1–72 h), its
pointer (pattern 44) and its rollups written with ``dora_metrics.write_rollups`` (the recompute's own
call); about 2 failure events a week per project and environment. The handler is then timed warm,
for each metric and interval over the year 2024-04-01..2025-03-31 (two calendar years: two
partitions), against in-process moto: handler time (median of ``SAMPLES``), DynamoDB calls, Query
pages, bytes of the items read and read capacity units (bench/ingest.py's meter).
"""

from __future__ import annotations

import random
import statistics
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bench.capacity import item_size
from bench.ingest import _environment, metered, seeded_table

SPACE = "Spaces-1"
KEY = "bench-key"
NOW = datetime(2025, 4, 1, 12, tzinfo=UTC)
STREAMS = 200
PER_STREAM = 500  # 100k deployments
START, END = date(2024, 4, 1), date(2025, 3, 31)
SAMPLES = 5
CASES = [
    ("deployment_frequency", "daily"),
    ("lead_time_for_changes", "daily"),
    ("time_to_restore_service", "daily"),
    ("change_failure_rate", "monthly"),
    ("rework_rate", "all"),
]


def _seed(store: Any) -> int:
    """Pointers and rollups of ``STREAMS`` streams (20 projects × 5 environments × 2 tenants); the
    failure events of every (project, environment); how many deployments they hold."""
    from dora_insights.domain.figures import DeploymentFigures
    from dora_insights.domain.ids import new_id
    from dora_insights.domain.model import FailureEvent, TaskState
    from dora_insights.domain.times import format_instant
    from dora_insights.logic import dora_metrics

    rng = random.Random(19)
    data = store.metrics()
    first = datetime.combine(START, datetime.min.time(), tzinfo=UTC)
    minutes = (END - START).days * 24 * 60
    failures = []
    for project in range(20):
        for environment in range(5):
            for n in range(100):
                started = first + timedelta(minutes=rng.randrange(minutes))
                failures.append(
                    FailureEvent(
                        id=f"f-{project}-{environment}-{n}",
                        space_id=SPACE,
                        projects=[f"p{project}"],
                        project_ids=[f"Projects-{project}"],
                        environment=f"env{environment}",
                        environment_id=f"Environments-{environment}",
                        started_at=format_instant(started),
                        finished_at=format_instant(started + timedelta(minutes=rng.randrange(5, 3000))),
                        received_at=format_instant(started),
                        body_hash="bench",
                    )
                )
    total = 0
    cache: dict[str, Any] = {}
    for n in range(STREAMS):
        project, environment, tenant = n // 10, (n // 2) % 5, n % 2
        stream = f"Projects-{project}/Channels-1/Environments-{environment}/{'Tenants-1' if tenant else '-'}"
        figures = []
        for k in range(PER_STREAM):
            at = first + timedelta(minutes=rng.randrange(minutes))
            ok = rng.random() < 0.9
            figures.append(
                DeploymentFigures(
                    deployment_id=f"{n}-{k}",
                    release_version=None,
                    state=TaskState.SUCCESS if ok else TaskState.FAILED,
                    had_guided_failure=False,
                    completed_at=at,
                    completed=True,
                    successful=ok,
                    deployment_failure=not ok,
                    lead_time_seconds=rng.uniform(3600, 72 * 3600) if ok else None,
                    rework=rng.random() < 0.1,
                )
            )
        total += len(figures)
        generation = new_id(NOW)
        dora_metrics.write_rollups(
            store,
            SPACE,
            stream,
            figures,
            failures,
            project_id=f"Projects-{project}",
            environment_id=f"Environments-{environment}",
            generations=(generation, None),
            computed_at=format_instant(NOW),
            cache=cache,
        )
        registration = {
            "dims": {
                "project_id": f"Projects-{project}",
                "project": f"p{project}",
                "environment_id": f"Environments-{environment}",
                "environment": "production" if environment == 0 else f"prod-{environment}",
                **({"tenant": "acme"} if tenant else {}),
            },
            "project_group_id": None,
            "tenant_id": "Tenants-1" if tenant else None,
            "channel_id": "Channels-1",
            "channel": "Default",
            "deployments": PER_STREAM,
            "project_deployments": PER_STREAM * 10,
            "computed_at": format_instant(NOW),
        }
        assert data.write_stream_figures(SPACE, stream, registration, {}, generation, None)
    return total


def _measure(metric: str, interval: str, context: Any) -> dict[str, Any]:
    from tests.support import lambdas
    from tests.support.events import http_event

    from dora_insights.dal import aws as dal_aws
    from dora_local import iam

    lambdas.guard()
    acting = lambdas.principal("GetDoraMetricsFunction")  # resolved once: the IAM check's setup is not timed
    entry = lambdas.handler("GetDoraMetricsFunction")

    def get_dora_metrics(event: dict[str, Any]) -> dict[str, Any]:
        with iam.acting_as(acting):
            response: dict[str, Any] = entry(event, context)
        return response

    query = {"metric": metric, "interval": interval, "start_date": str(START), "end_date": str(END)}
    event = http_event("GET", "/api/{spaceId}/dora/metrics", path_params={"spaceId": SPACE}, query=query, key=KEY)
    get_dora_metrics(event)  # warm
    client = dal_aws.client("dynamodb")
    probe: dict[str, list[float]] = {"started": [], "spent": [], "sizes": []}

    def _start(**_: Any) -> None:
        probe["started"].append(time.perf_counter())

    def _answered(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        probe["spent"].append(time.perf_counter() - probe["started"].pop())
        if model.name == "Query" and metering:  # sized only in the metered run: not in the timed ones
            probe["sizes"].append(sum(item_size(i) for i in parsed.get("Items", [])))

    client.meta.events.register("before-parameter-build.dynamodb", _start)
    client.meta.events.register("after-call.dynamodb", _answered)
    times: list[float] = []
    outside: list[float] = []
    calls: Counter[str] = Counter()
    rcu = 0.0
    rows = 0
    metering = False
    for _ in range(SAMPLES):
        probe.update(started=[], spent=[])
        began = time.perf_counter()
        response = get_dora_metrics(event)
        times.append(time.perf_counter() - began)
        outside.append(times[-1] - sum(probe["spent"]))
        assert response["statusCode"] == 200, response
        rows = response["body"].count('"date"')
    metering = True  # one more run, metered: calls, pages, bytes and capacity units
    meter = metered()
    get_dora_metrics(event)
    client.meta.events.unregister("before-parameter-build.dynamodb", meter.before)
    client.meta.events.unregister("after-call.dynamodb", meter.after)
    calls, rcu = meter.calls, meter.rcu
    client.meta.events.unregister("before-parameter-build.dynamodb", _start)
    client.meta.events.unregister("after-call.dynamodb", _answered)
    return {
        "metric": metric,
        "interval": interval,
        "rows": rows,
        "ms": statistics.median(times) * 1000,
        "outside_ms": statistics.median(outside) * 1000,
        "calls": dict(calls),
        "pages": calls.get("Query", 0),
        "mb": sum(probe["sizes"]) / 1_000_000,
        "rcu": rcu,
    }


def run() -> None:
    """Seed the space, time the route, print a table."""
    _environment()
    from tests.conftest import _Context

    from dora_insights.handlers import runtime
    from dora_local.motofix import mock_aws  # moto as the local runtime runs it (docs/moto-query-patch.md)

    with mock_aws():
        store = seeded_table()
        runtime.reset()
        restore = runtime.use_clock(lambda: NOW)
        try:
            began = time.perf_counter()
            deployments = _seed(store)
            seeded = time.perf_counter() - began
            print(
                f"GitLab DORA metrics API: {STREAMS} streams, {deployments:,} deployments, "
                f"{START}..{END} (seeded in {seeded:.1f} s)"
            )
            print(
                f"{'metric':<26}{'interval':<9}{'rows':>5}{'handler ms':>12}{'outside DynamoDB ms':>21}"
                f"{'calls':>7}{'Query pages':>13}{'MB read':>9}{'RCU':>8}"
            )
            for metric, interval in CASES:
                m = _measure(metric, interval, _Context())
                print(
                    f"{m['metric']:<26}{m['interval']:<9}{m['rows']:>5}{m['ms']:>12.1f}{m['outside_ms']:>21.1f}"
                    f"{sum(m['calls'].values()):>7}{m['pages']:>13}{m['mb']:>9.2f}{m['rcu']:>8.1f}"
                )
            print(f"calls of the last case: {m['calls']}")
            print(
                "handler ms is in-process moto (patched as the local runtime runs it);"
                " outside DynamoDB ms is this service's own work (decompress, aggregate, render)"
            )
        finally:
            restore()
            runtime.reset()


if __name__ == "__main__":
    run()
