"""The fanned-out recompute at scale (issue 17): 1,000 spaces x 1,000 deployments, every stream dirty.

1. The schedule's tick over 1,000 spaces (registry and dirty marks of every space in in-process moto,
   the recompute queue in moto's SQS): its work items, its DynamoDB and SQS calls, its seconds.
2. The time per work item, measured in process: ``SAMPLE`` spaces are stored in full (1,000
   deployments across 20 streams over a year, 10 % failures, every stream dirty, one report) and
   their items run through ``logic.recompute.process``; the other spaces hold only their marks.
   Storing all 1,000,000 deployments would measure moto, not the recompute (and take an hour), so a
   sample of items is measured and every space is assumed to be like them.
3. The wall time at the configured concurrency (template.yaml: the worker event source's
   ``MaximumConcurrency`` default and ``BatchSize``): the measured item time plus its DynamoDB calls
   at ``LATENCY`` each (moto's own time stays in the measurement, so this errs high), items spread
   over the concurrent batches. Goal: under one schedule period (5 minutes).
"""

from __future__ import annotations

import math
import os
import random
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

SPACES = int(os.environ.get("BENCH_FANOUT_SPACES", "1000"))
DEPLOYMENTS = 1_000  # per space
STREAMS = 20  # per space: 10 projects x 2 environments
SAMPLE = int(os.environ.get("BENCH_FANOUT_SAMPLE", "5"))
LATENCY = 0.010  # seconds per DynamoDB or SQS call when deployed (single-digit ms is typical: this errs high)
PERIOD = 300.0  # the schedule's rate(5 minutes)
NOW = datetime(2024, 12, 31, 12, tzinfo=UTC)


def _space_id(n: int) -> str:
    return f"Spaces-{n + 1}"


def _deployments(space_id: str, rng: random.Random) -> list[Any]:
    from dora_insights.domain.model import Deployment, TaskState
    from dora_insights.domain.times import format_instant

    per_stream = DEPLOYMENTS // STREAMS
    start = NOW - timedelta(days=365)
    gap = timedelta(days=365) / per_stream
    rows = []
    for s in range(STREAMS):
        project, environment = s // 2, s % 2
        for k in range(per_stream):
            finished = start + gap * k + timedelta(seconds=rng.randint(0, 3600))
            rows.append(
                Deployment(
                    id=f"d{s:02d}{k:06d}",
                    space_id=space_id,
                    project=f"project-{project}",
                    project_id=f"Projects-{project + 1}",
                    environment=f"env-{environment}",
                    environment_id=f"Environments-{environment + 1}",
                    channel="Default",
                    channel_id="Channels-1",
                    finished_at=format_instant(finished),
                    started_at=format_instant(finished - timedelta(minutes=rng.randint(1, 30))),
                    version=f"1.{k}",
                    state=TaskState.FAILED if rng.random() < 0.1 else TaskState.SUCCESS,
                    received_at=format_instant(finished),
                    body_hash="bench",
                )
            )
    return rows


def _stream_keys() -> list[str]:
    from dora_insights.domain.model import stream_key

    return [
        stream_key(f"Projects-{s // 2 + 1}", "Channels-1", f"Environments-{s % 2 + 1}", None) for s in range(STREAMS)
    ]


def _seed(store: Any) -> None:
    """Every space with its dirty marks; the sample spaces with their deployments and a report."""
    from bench.recompute import _report
    from dora_insights.dal.metrics import MetricsStore
    from dora_insights.domain.times import format_instant
    from dora_insights.logic import admin

    rng = random.Random(17)
    marked = format_instant(NOW - timedelta(minutes=3))
    streams = _stream_keys()
    for n in range(SPACES):
        space_id = _space_id(n)
        admin.ensure_space(store, space_id, space_id, NOW)
        store.mark_streams_dirty(space_id, streams, marked)
    data = MetricsStore(store)
    for n in range(SAMPLE):
        space_id = _space_id(n)
        data.batch_put(store.deployment_item(d) for d in _deployments(space_id, rng))
        if space_id == "Spaces-1":
            _report(store)
        else:
            from dora_insights.domain.reports import TenantMode
            from dora_insights.logic.reports import ReportFields, create_report

            fields = ReportFields(
                "Everything", None, (), (), (), (), TenantMode.TENANTED_AND_UNTENANTED, (), "UTC", None, None
            )
            create_report(store, space_id, fields, NOW)


def _configured() -> tuple[int, int, int]:
    """The worker's MaximumConcurrency default, BatchSize and Timeout from template.yaml."""
    from dora_local.template import load

    doc = load()
    worker = doc["Resources"]["RecomputeWorkerFunction"]["Properties"]
    (trigger,) = (e["Properties"] for e in worker["Events"].values() if e["Type"] == "SQS")
    concurrency = int(doc["Parameters"]["RecomputeWorkerConcurrency"]["Default"])
    return concurrency, int(trigger.get("BatchSize", 10)), int(worker["Timeout"])


class _Calls:
    """Counts the project's DynamoDB and SQS calls and the time moto spends answering them (from the
    signed request to the raw response: moto's in-process serializer is slow, deployed this is the
    network round trip, modelled as ``LATENCY``); botocore's parsing stays in the function's time."""

    def __init__(self) -> None:
        from dora_insights.dal import aws as dal_aws

        self.counts: Counter[str] = Counter()
        self.moto_seconds = 0.0
        self._sent = 0.0
        for service in ("dynamodb", "sqs"):
            events = dal_aws.client(service).meta.events
            events.register(f"before-parameter-build.{service}", self._count)
            events.register(f"request-created.{service}", self._request)
            events.register(f"before-parse.{service}", self._response)

    def _count(self, model: Any, **_: Any) -> None:
        self.counts[model.name] += 1

    def _request(self, **_: Any) -> None:
        self._sent = time.perf_counter()

    def _response(self, **_: Any) -> None:
        if self._sent:
            self.moto_seconds += time.perf_counter() - self._sent
            self._sent = 0.0

    def reset(self) -> None:
        self.counts.clear()
        self.moto_seconds = 0.0

    def total(self) -> int:
        return sum(self.counts.values())


def simulate() -> None:
    import boto3

    from bench.ingest import seeded_table
    from dora_insights.config import reset_settings
    from dora_insights.dal.recompute_queue import RecomputeQueue
    from dora_insights.domain.times import format_instant
    from dora_insights.logic import recompute

    store = seeded_table()
    url = boto3.client("sqs").create_queue(QueueName="bench-recompute")["QueueUrl"]
    os.environ["RECOMPUTE_QUEUE_URL"] = url
    reset_settings()
    started = time.perf_counter()
    _seed(store)
    seeded = time.perf_counter() - started
    calls = _Calls()
    queue = RecomputeQueue(url)

    calls.reset()
    started = time.perf_counter()
    tick = recompute.schedule(store, queue, NOW)
    tick_seconds = time.perf_counter() - started
    tick_calls, tick_own = calls.total(), tick_seconds - calls.moto_seconds
    tick_model = tick_own + tick_calls * LATENCY
    queued = int(
        boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"
        ]["ApproximateNumberOfMessages"]
    )
    print(f"fan-out recompute: {SPACES:,} spaces x {DEPLOYMENTS:,} deployments ({STREAMS} streams each, all dirty)")
    print(f"  (seeded in {seeded:.0f} s: every space's marks; {SAMPLE} sample spaces in full, see bench/fanout.py)")
    print(
        f"  schedule tick      {tick.items_sent:,} work items sent ({queued:,} in the queue), "
        f"{tick.spaces_split} spaces split, {dict(calls.counts)}"
    )
    print(
        f"                     {tick_seconds:.2f} s in process, {tick_own:.2f} s of it outside moto; deployed "
        f"~{tick_model:.1f} s ({tick_calls:,} calls x {LATENCY * 1000:.0f} ms)"
    )

    samples: list[tuple[float, float, int, Any]] = []
    for n in range(SAMPLE):
        space_item = recompute.WorkItem(kind="space", space_id=_space_id(n), planned_at=format_instant(NOW))
        calls.reset()
        started = time.perf_counter()
        summary = recompute.process(store, space_item, NOW)
        elapsed = time.perf_counter() - started
        samples.append((elapsed, elapsed - calls.moto_seconds, calls.total(), summary))
    seconds = [s for s, _, _, _ in samples]
    own = [o for _, o, _, _ in samples]
    per_item_calls = [c for _, _, c, _ in samples]
    modeled = [o + c * LATENCY for _, o, c, _ in samples]
    done = samples[0][3]
    print(
        f"  per space item     {statistics.mean(seconds):.2f} s in process (max {max(seconds):.2f}), "
        f"{statistics.mean(own):.2f} s of it outside moto, {statistics.mean(per_item_calls):.0f} calls; "
        f"deployed ~{statistics.mean(modeled):.2f} s"
    )
    print(
        f"                     (measured on a sample of {SAMPLE} space items, {done.streams_processed} streams, "
        f"{done.reports_refreshed} report and {DEPLOYMENTS:,} deployments each; the other items assumed alike)"
    )
    concurrency, batch, timeout = _configured()
    items = tick.items_sent
    work = items * statistics.mean(modeled)
    wall = tick_model + work / concurrency + max(modeled) * batch
    verdict = "met" if wall < PERIOD else "NOT met"
    print(
        f"  wall time          ~{wall:.0f} s at MaximumConcurrency {concurrency} (BatchSize {batch}): "
        f"tick + {items:,} items x {statistics.mean(modeled):.2f} s / {concurrency} + one batch's tail "
        f"(goal < {PERIOD:.0f} s, one schedule period: {verdict})"
    )
    slack = PERIOD - tick_model - max(modeled) * batch
    needed = math.ceil(work / slack) if slack > 0 else None
    print(
        f"  concurrency the goal needs: {needed}; slowest item ~{max(modeled):.1f} s "
        f"(the worker's Timeout: {timeout} s)"
    )
    print(
        f"  one worker alone   ~{work:.0f} s ({work / 60:.0f} min): what the single-function recompute "
        f"would need, past one Lambda's 15 minutes"
        if work > 900
        else f"  one worker alone   ~{work:.0f} s"
    )


def run() -> None:
    """Print the simulation."""
    from bench.ingest import _environment

    _environment()
    from dora_local.motofix import mock_aws

    with mock_aws():
        simulate()
