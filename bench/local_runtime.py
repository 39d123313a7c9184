"""The local runtime at pilot scale (issue 17, item 5): ``make serve``'s latency with 50,000 stored
deployments against an empty table, and its start-up from a data directory holding them.

Two runs of the local runtime (in this process, over HTTP), serving the same working set and answering
the same requests with the same answers: project ``pilot`` with ``WORKING`` deployments posted through
the route (each timed POST adds one), the newest of the space. The loaded run also holds ``LOADED``
deployments of ``PROJECTS`` other projects, all finished before pilot's: built as the create route
builds them (catalogue entries through the app, ``Store.deployment_item``) and stored straight into moto
as a data directory is loaded (``Runtime.load_items``: moto's own writes cost milliseconds an item, so
50,000 through BatchWriteItem would take minutes). They carry no dirty marks and no recompute figures:
the recompute of 50,000 deployments alone takes minutes in moto, and no timed request reads them.

Timed, over HTTP, median of ``SAMPLES`` after ``WARMUP`` of each request: POST a deployment, the space's
newest 20 (``GET /deployments?limit=20``: pilot's in both runs), pilot's newest 20, one deployment by id,
pilot's summary for a month. Goal: each within 2x of the empty run. Then the runtime is started again on
the loaded run's data directory: its start-up (``LocalRuntime.start``: moto, the template's resources,
reading and indexing the data, the seed) beside a start-up on an empty data directory.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

LOADED = int(os.environ.get("BENCH_LOCAL_DEPLOYMENTS", "50000"))
PROJECTS = 50
WORKING = 30
SAMPLES = 15
WARMUP = 2
SPACE = "Spaces-1"
PILOT_FIRST = datetime(2024, 3, 1, tzinfo=UTC)  # pilot's deployment n finishes n hours later
LOADED_FIRST = datetime(2022, 1, 1, tzinfo=UTC)  # the others, before any of pilot's
SUMMARY = {"project": "pilot", "from": "2024-03-01T00:00:00Z", "to": "2024-04-01T00:00:00Z"}
GOAL = 2.0


@dataclass
class Run:
    """One run: the median milliseconds of each request, and what seeding took."""

    medians: dict[str, float]
    seed_seconds: float = 0.0


def _body(project: str, finished: datetime, version: str) -> dict[str, Any]:
    return {
        "project": project,
        "environment": "production",
        "finished_at": finished.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "version": version,
    }


def _load(local: Any, count: int) -> None:
    """``count`` deployments of ``PROJECTS`` projects, as the create route stores them, into the runtime."""
    from dora_insights.dal import aws
    from dora_insights.dal.repositories import Repositories
    from dora_insights.dialects.native import DeploymentIn
    from dora_insights.logic import catalogue, deployments, spaces

    runtime = local.runtime
    variables: dict[str, str | None] = {**runtime.aws_environment(), "AWS_PROFILE": None}
    variables["TABLE_NAME"] = runtime.table_name
    items: list[dict[str, Any]] = []
    with runtime.environment(variables):
        aws.reset_clients()
        store = Repositories(runtime.table_name)
        space = spaces.get_space(store, SPACE)
        per_project = count // PROJECTS
        for p in range(PROJECTS):
            project = f"service-{p:02}"
            drafts = [
                DeploymentIn.model_validate(
                    _body(project, LOADED_FIRST + timedelta(minutes=20 * (n * PROJECTS + p)), f"1.{n}")
                ).to_draft()
                for n in range(per_project + (1 if p < count % PROJECTS else 0))
            ]
            if not drafts:
                continue
            entities = catalogue.resolve(store, SPACE, deployments.wanted_entities(space, drafts[0]))
            for draft in drafts:
                built = deployments.build_deployment(space, draft, entities, LOADED_FIRST)
                items.append(aws.serialize(store.deployment_item(built)))
        aws.reset_clients()
    runtime.load_items(items)


def _measure(data_dir: Path | None, loaded: int) -> Run:
    import requests

    from dora_local.server import LocalRuntime

    local = LocalRuntime(port=0, schedule_seconds=0, quiet=True, poll=False, data_dir=data_dir, fresh=True)
    local.start()
    run = Run(medians={})
    try:
        started = time.perf_counter()
        if loaded:
            _load(local, loaded)
        run.seed_seconds = time.perf_counter() - started
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {local.api_key}"
        api = f"{local.url}/api/{SPACE}"
        posted = 0

        def post() -> Any:
            nonlocal posted
            body = _body("pilot", PILOT_FIRST + timedelta(hours=posted), f"2.{posted}")
            posted += 1
            return session.post(f"{api}/deployments", json=body, timeout=120)

        first = [post() for _ in range(WORKING)]
        assert all(r.status_code == 201 for r in first), [r.text for r in first if r.status_code != 201][:1]
        one = first[0].json()["id"]
        requests_timed: dict[str, Callable[[], Any]] = {
            "POST /deployments": post,
            "GET /deployments?limit=20 (space)": lambda: session.get(f"{api}/deployments?limit=20", timeout=120),
            "GET /deployments?project=pilot&limit=20": lambda: session.get(
                f"{api}/deployments?project=pilot&limit=20", timeout=120
            ),
            "GET /deployments/{id}": lambda: session.get(f"{api}/deployments/{one}", timeout=120),
            "GET /summary?project=pilot (a month)": lambda: session.get(f"{api}/summary", params=SUMMARY, timeout=120),
        }
        for label, request in requests_timed.items():
            seconds = []
            for n in range(WARMUP + SAMPLES):
                began = time.perf_counter()
                response = request()
                elapsed = time.perf_counter() - began
                assert response.status_code in (200, 201), (label, response.status_code, response.text[:300])
                if n >= WARMUP:
                    seconds.append(elapsed)
            run.medians[label] = statistics.median(seconds) * 1000
        newest = session.get(f"{api}/deployments?limit=20", timeout=120).json()["items"]
        assert {d["project"] for d in newest} == {"pilot"}, "the space's newest must be pilot's in both runs"
    finally:
        local.stop()
    return run


def _start_up(data_dir: Path, at_least: int) -> float:
    """Seconds ``LocalRuntime.start`` takes on ``data_dir`` (holding at least ``at_least`` items)."""
    from dora_local.server import LocalRuntime

    local = LocalRuntime(port=0, schedule_seconds=0, quiet=True, poll=False, data_dir=data_dir)
    started = time.perf_counter()
    local.start()
    seconds = time.perf_counter() - started
    loaded = local.runtime.data.loaded_items if local.runtime.data is not None else 0
    local.stop()
    assert loaded >= at_least, f"the data directory held {loaded:,} items"
    return seconds


def run() -> None:
    """Print the local runtime's request latency at 0 and ``LOADED`` stored deployments, and its start-up."""
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        data = Path(tmp) / "data"
        empty = _measure(None, 0)
        loaded = _measure(data, LOADED)
        start_empty = _start_up(Path(tmp) / "empty", 0)
        start_loaded = _start_up(data, LOADED)
    print(
        f"local runtime at pilot scale (issue 17; make serve's runtime in-process, over HTTP; median of {SAMPLES}; "
        f"the loaded table: {LOADED:,} deployments of {PROJECTS} projects beside the same working set)"
    )
    print(f"  {'request':42} {'empty ms':>9} {f'{LOADED:,} ms':>10} {'ratio':>6}")
    worst = 0.0
    for label, ms in empty.medians.items():
        ratio = loaded.medians[label] / ms
        worst = max(worst, ratio)
        print(f"  {label:42} {ms:9.1f} {loaded.medians[label]:10.1f} {ratio:5.2f}x")
    verdict = "met" if worst <= GOAL else "NOT met"
    print(f"  goal: every request within {GOAL:g}x of the empty table's: worst {worst:.2f}x ({verdict})")
    print(
        f"  seeding {LOADED:,} deployments (built as the route builds them, stored as a data directory loads, "
        f"then snapshotted): {loaded.seed_seconds:.1f} s"
    )
    print(
        f"  start-up (LocalRuntime.start: moto, the resources, reading the data, the seed): "
        f"empty data directory {start_empty:.1f} s, with {LOADED:,} deployments {start_loaded:.1f} s"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    run()
