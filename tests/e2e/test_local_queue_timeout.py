"""The local runtime's SQS delivery under a function's Timeout, as Lambda's event source mapping behaves: an
invocation that ran past its Timeout returns every message of its batch to the queue, whatever it answered
(Lambda would have stopped it before its ``batchItemFailures`` reached SQS)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import pytest
import requests

from dora_local.server import LocalRuntime
from tests.support import moto_clients

TIMEOUT = 30


def test_a_batch_that_outlasts_its_timeout_is_returned_whole_though_every_record_succeeded(
    local: LocalRuntime, http: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    local.pause_background()  # this test delivers the batch itself
    runtime = local.runtime
    deployment_id = f"outlasted-{uuid.uuid4().hex[:8]}"
    body = {"project": "queued", "environment": "production", "finished_at": 1709294400, "id": deployment_id}
    assert http.post(f"{local.url}/api/Spaces-1/deployments", json=body, timeout=TIMEOUT).status_code == 201
    ((function, trigger),) = [(f, t) for f, t in runtime.queue_triggers() if t.queue == "RetryQueue"]
    url = runtime.queue_urls["RetryQueue"]
    sqs = moto_clients.client(local, "sqs")
    message = json.dumps({"space_id": "Spaces-1", "deployment_id": deployment_id, "attempt": 1})
    sqs.send_message(QueueUrl=url, MessageBody=message)
    # Any run is longer than a Timeout of 0 s: the function does its work and answers, then "times out".
    outlasting = dataclasses.replace(function, timeout=0)
    monkeypatch.setitem(runtime.functions, function.logical_id, outlasting)
    answers: list[tuple[list[dict[str, Any]], Any]] = []
    invoke = runtime.invoke

    def spy(logical_id: str, event: Any) -> Any:
        answer = invoke(logical_id, event)
        answers.append((event["Records"], answer))
        return answer

    monkeypatch.setattr(runtime, "invoke", spy)

    mine: dict[str, Any] | None = None
    for _ in range(20):  # messages earlier tests left may come first
        delivery = runtime.deliver(outlasting, trigger)
        assert delivery.delivered and delivery.failed == delivery.delivered  # none of the batch was deleted
        records, answer = answers[-1]
        mine = next((r for r in records if r["body"] == message), None)
        if mine is not None:
            assert mine["messageId"] not in {f["itemIdentifier"] for f in answer["batchItemFailures"]}
            break
    assert mine is not None

    # Still in the queue: made visible again, it is received again.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=mine["receiptHandle"], VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    ours = [m for m in again if m["Body"] == message]
    assert len(ours) == 1
    sqs.delete_message(QueueUrl=url, ReceiptHandle=ours[0]["ReceiptHandle"])
