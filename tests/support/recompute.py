"""The fanned-out recompute in tests, as AWS runs it: the schedule's tick, then its work items through the worker.

:func:`scheduled_run` is what ``POST /_local/schedule/run`` does on the local runtime, in process: it
invokes ``RecomputeFunction`` with the schedule's real event (under its role), then delivers every work
item it sent to ``RecomputeWorkerFunction`` in the SQS event shape, in batches of the trigger's
``BatchSize``, polling and deleting under the worker's role as Lambda's event source mapping does
(partial batch failures stay in the queue), until the queue is empty. It answers with the items' counts
added up (``logic.recompute.combine``: the fields the single-function recompute answered with, so the
tests' figures did not change) and the tick's own summary under ``"schedule"``.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from typing import Any

import boto3

from dora_local import iam
from dora_local.events import sqs_record
from dora_local.template import REGION
from tests.support import lambdas
from tests.support.events import load_event
from tests.support.template import resources, template

SCHEDULE = "RecomputeFunction"
WORKER = "RecomputeWorkerFunction"


def _batch_size() -> int:
    worker = resources("AWS::Serverless::Function")[WORKER]["Properties"]
    (trigger,) = (e["Properties"] for e in worker["Events"].values() if e["Type"] == "SQS")
    return int(trigger.get("BatchSize", 10))


class WorkerContext:
    """The worker's Lambda context as Lambda hands it over: its whole ``Timeout`` (template.yaml) left.

    The worker sizes its items by the time left (an item's floor and budget are shares of it), so a
    drain given the tests' default context (10 s left) gave each item a 6.4 s budget, which a loaded
    machine can spend before an item's last stage: the worker then stops the item there, as it should,
    and the test saw a stage undone. Tests about budgets pass their own context instead."""

    function_name = "recompute-worker"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:recompute-worker"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    log_group_name = "/aws/lambda/recompute-worker"
    log_stream_name = "2024/12/31/[$LATEST]abcdef"

    def __init__(self) -> None:
        self.timeout_ms = timeout_seconds(WORKER) * 1000

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


def timeout_seconds(function: str) -> int:
    """``function``'s ``Timeout`` in template.yaml (its own, else the Globals')."""
    properties = resources("AWS::Serverless::Function")[function]["Properties"]
    return int(properties.get("Timeout", template()["Globals"]["Function"]["Timeout"]))


# The summaries of the batches the drain in progress delivered (per context: a test may run a second
# tick on another thread, inside the first one's item).
_COLLECTED: ContextVar[list[Any] | None] = ContextVar("recompute_summaries", default=None)


def _count_batches() -> None:
    """Keep each batch's summary as the worker's entry point computes it (once per process): the entry
    point runs as deployed, its counts reach the drain in progress."""
    from dora_insights.handlers import recompute_worker

    if getattr(recompute_worker.process_batch, "counted", False):
        return
    process_batch = recompute_worker.process_batch

    def counted(event: dict[str, Any], context: Any) -> tuple[dict[str, Any], Any]:
        response, summary = process_batch(event, context)
        collected = _COLLECTED.get()
        if collected is not None:
            collected.append(summary)
        return response, summary

    counted.counted = True  # type: ignore[attr-defined]
    recompute_worker.process_batch = counted


def drain(context: Any | None = None) -> tuple[dict[str, Any], int]:
    """Deliver every visible work item to the worker until none is left: the items' summaries added up
    and how many items failed (left in the queue for their visibility timeout). Each invocation gets
    ``context``, else a :class:`WorkerContext` with the worker's whole ``Timeout``."""
    from dora_insights.logic import recompute

    _count_batches()
    url = os.environ["RECOMPUTE_QUEUE_URL"]
    arn = iam.queue_arn(url, REGION)
    sqs = boto3.client("sqs")
    size = _batch_size()
    summaries: list[Any] = []
    token = _COLLECTED.set(summaries)
    failed = 0
    try:
        while True:
            with lambdas.running_as(WORKER):
                received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(10, size), AttributeNames=["All"])
            messages = received.get("Messages", [])
            if not messages:
                break
            records = [sqs_record(m, arn) for m in messages]
            response = lambdas.invoke(WORKER, {"Records": records}, context or WorkerContext())
            failures = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            failed += len(failures)
            with lambdas.running_as(WORKER):
                for record in records:
                    if record["messageId"] not in failures:
                        sqs.delete_message(QueueUrl=url, ReceiptHandle=record["receiptHandle"])
    finally:
        _COLLECTED.reset(token)
    return recompute.combine(summaries).model_dump(), failed


def scheduled_run(context: Any, worker_context: Any | None = None) -> dict[str, Any]:
    """One tick of the schedule (invoked with ``context``) and every work item it sent, done by the
    worker (with ``worker_context``, else its whole ``Timeout``; see :func:`drain`)."""
    tick = lambdas.invoke(SCHEDULE, load_event(f"{SCHEDULE}.json"), context)
    counts, failed = drain(worker_context)
    return {**counts, "items_failed": failed, "schedule": tick}
