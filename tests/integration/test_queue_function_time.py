"""The queue functions under Lambda's timeout and Powertools' whole-batch failure (issue 17).

Lambda stops an invocation at its ``Timeout`` and then returns *every* message of the batch, the ones
done included, with a receive counted toward the DLQ; no ``batchItemFailures`` reach SQS. The tests
give the recompute worker and the attribution-retry function a context whose clock is simulated: the
work moves it on (an item by its whole budget and a tail of steps that check no budget, an attempt by
a few seconds), and the invocation must end before Lambda would have stopped it. And a batch of the
worker whose every item fails is reported item by item, its failures counted, never raised.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import boto3
import pytest

from dora_insights.handlers import recompute_worker
from dora_insights.logic import attribution_retry
from tests.conftest import ADMIN_KEY, NOW, Api, Aws, Clock
from tests.support.emf import emitted_metrics
from tests.support.events import load_event
from tests.support.lambdas import invoke
from tests.support.native import create_deployment
from tests.support.recompute import scheduled_run

SPACES = [f"Spaces-{n}" for n in range(1, 6)]


class SimulatedInvocation:
    """A Lambda context whose clock only the work moves (``spend``); past ``timeout`` Lambda would have
    stopped the invocation and returned the whole batch."""

    function_name = "test-function"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id = "5f3b0a52-0c3e-4d9e-9a0c-6f1d2e3c4b5a"
    log_group_name = "/aws/lambda/test"
    log_stream_name = "2024/03/01/[$LATEST]abcdef"

    def __init__(self, timeout_seconds: float) -> None:
        self.timeout = timeout_seconds
        self.spent = 0.0

    def spend(self, seconds: float) -> None:
        self.spent += seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout - self.spent) * 1000))


def records(template: str, bodies: list[str]) -> dict[str, Any]:
    """An SQS event of the function's real shape with these bodies (message ids ``message-<n>``)."""
    record = load_event(template)["Records"][0]
    return {"Records": [{**record, "messageId": f"message-{n}", "body": body} for n, body in enumerate(bodies)]}


# --------------------------------------------------------------------------------------------- the worker
@pytest.fixture
def dirty_spaces(api: Api, store: Any, clock: Clock) -> list[str]:
    """Five spaces, each with one dirty stream marked a minute ago."""
    from dora_insights.logic import admin

    for space_id in SPACES:
        key = ADMIN_KEY
        if space_id != "Spaces-1":
            admin.ensure_space(store, space_id, space_id, NOW)
            _, key = admin.create_api_key(store, space_id, "ci", ("deployments:write",), NOW)
        create_deployment(api, space=space_id, key=key, finished_at="2024-02-29T10:00:00Z")
    assert all(store.list_dirty_streams(s) for s in SPACES)
    clock.advance(timedelta(minutes=1))
    return SPACES


@pytest.fixture
def heavy_items(monkeypatch: pytest.MonkeyPatch) -> tuple[SimulatedInvocation, list[int | None]]:
    """A 300 s invocation (the worker's Timeout) whose items each use their whole budget and then 55 s of
    steps that check no budget (a report in progress, the thresholds, the health record); the deadlines
    the items were given."""
    from dora_insights.logic import recompute

    invocation = SimulatedInvocation(300)
    deadlines: list[int | None] = []
    real = recompute.process

    def process(store: Any, item: Any, now: datetime, *, deadline_ms: int | None = None, **rest: Any) -> Any:
        deadlines.append(deadline_ms)
        summary = real(store, item, now, deadline_ms=deadline_ms, **rest)
        invocation.spend((deadline_ms or 0) / 1000 * recompute.BUDGET_SHARE + 55)
        return summary

    monkeypatch.setattr(recompute, "process", process)
    return invocation, deadlines


def space_items(spaces: list[str]) -> list[str]:
    return [json.dumps({"kind": "space", "space_id": s, "planned_at": "2024-03-01T12:00:00.000Z"}) for s in spaces]


def test_no_item_starts_with_less_than_the_floor_left_so_lambda_never_stops_the_batch(
    dirty_spaces: list[str],
    store: Any,
    heavy_items: tuple[SimulatedInvocation, list[int | None]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    invocation, deadlines = heavy_items
    capsys.readouterr()

    result = invoke("RecomputeWorkerFunction", records("RecomputeWorkerFunction.json", space_items(SPACES)), invocation)

    assert invocation.spent <= invocation.timeout  # Lambda would not have stopped it: the response counts
    assert result == {"batchItemFailures": []}  # the items not started are acknowledged, not failed
    assert deadlines == [300_000 - recompute_worker.ITEM_FLOOR_MS]  # its budget ends a floor before the timeout
    assert [bool(store.list_dirty_streams(s)) for s in SPACES] == [False, True, True, True, True]
    metrics = emitted_metrics(capsys.readouterr().out)
    assert (metrics["RecomputeItems"], metrics["RecomputeItemsDeferred"], metrics["RecomputeItemsIncomplete"]) == (
        5,
        4,
        4,
    )
    assert metrics["RecomputeItemsFailed"] == 0


def test_the_next_tick_does_the_items_a_worker_had_no_time_to_start(
    dirty_spaces: list[str],
    store: Any,
    heavy_items: tuple[SimulatedInvocation, list[int | None]],
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
) -> None:
    invocation, _ = heavy_items
    invoke("RecomputeWorkerFunction", records("RecomputeWorkerFunction.json", space_items(SPACES)), invocation)
    monkeypatch.undo()  # items of ordinary weight again

    tick = scheduled_run(lambda_context)

    assert (tick["schedule"]["items_sent"], tick["items_failed"], tick["complete"]) == (5, 0, True)
    assert [store.list_dirty_streams(s) for s in SPACES] == [[]] * 5


def test_a_batch_whose_every_item_fails_is_reported_item_by_item_and_counted(
    aws: Aws, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, lambda_context: Any
) -> None:
    bodies = ['{"kind": "everything"}', "not json", '{"kind": "space"}']
    capsys.readouterr()

    result = invoke("RecomputeWorkerFunction", records("RecomputeWorkerFunction.json", bodies), lambda_context)

    assert result == {"batchItemFailures": [{"itemIdentifier": f"message-{n}"} for n in range(3)]}
    assert emitted_metrics(capsys.readouterr().out)["RecomputeItemsFailed"] == 3
    assert [r.getMessage() for r in caplog.records].count("recompute item failed") == 3


# --------------------------------------------------------------------------------------------- the retries
@pytest.fixture
def slow_attempts(monkeypatch: pytest.MonkeyPatch) -> tuple[SimulatedInvocation, list[str]]:
    """A 60 s invocation (the retry function's Timeout) in which each attempt takes 2.5 s; the deployments
    attempted, in order."""
    invocation = SimulatedInvocation(60)
    attempted: list[str] = []

    def retry(
        store: Any, space_id: str, deployment_id: str, attempt: int, now: datetime, **_: Any
    ) -> attribution_retry.Retried:
        attempted.append(deployment_id)
        invocation.spend(2.5)
        return attribution_retry.Retried(None, None)

    monkeypatch.setattr(attribution_retry, "retry", retry)
    return invocation, attempted


def queued(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    bodies: list[dict[str, Any]] = []
    while received := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [json.loads(m["Body"]) for m in received]
    return bodies


def test_deployments_a_retry_batch_has_no_time_to_attempt_are_sent_again_and_the_records_acknowledged(
    aws: Aws, slow_attempts: tuple[SimulatedInvocation, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    invocation, attempted = slow_attempts
    groups = [[f"d{g}-{n}" for n in range(10)] for g in range(3)]  # three records of RETRY_GROUP deployments
    bodies = [json.dumps({"space_id": "Spaces-1", "deployment_ids": ids}) for ids in groups]
    bodies.append(json.dumps({"space_id": "Spaces-1", "deployment_id": "single", "attempt": 3}))
    capsys.readouterr()

    result = invoke("AttributionRetryFunction", records("AttributionRetryFunction.json", bodies), invocation)

    assert invocation.spent <= invocation.timeout  # Lambda would not have stopped it
    assert result == {"batchItemFailures": []}
    # attempts while the floor (10 s of the 60 s) was left: 21 of 2.5 s, then the rest went back to the queue
    assert attempted == [d for ids in groups for d in ids][:21]
    assert queued(aws.queue_url) == [
        {"space_id": "Spaces-1", "deployment_ids": groups[2][1:]},  # the same form, in the same order
        {"space_id": "Spaces-1", "deployment_id": "single", "attempt": 3},
    ]
    assert emitted_metrics(capsys.readouterr().out)["AttributionRetryDeferred"] == 10
