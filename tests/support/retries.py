"""The attribution retry queue (SQS, against moto) delivered to its function, as AWS's event source
mapping delivers it: for tests that need every delayed attempt made now."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import boto3

from tests.conftest import Aws, Clock
from tests.support.events import load_event
from tests.support.lambdas import invoke


def drain_retries(aws: Aws, lambda_context: Any) -> int:
    """Deliver every retry message visible now to ``AttributionRetryFunction``, ten at a time; a message
    it handled is deleted, one it reported failed (``batchItemFailures``) stays for its visibility timeout,
    and the draining stops there, as it would wait. How many messages were delivered."""
    sqs, template, delivered = boto3.client("sqs"), load_event("AttributionRetryFunction.json")["Records"][0], 0
    while messages := sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages", []):
        records = [
            {**template, "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]}
            for m in messages
        ]
        result = invoke("AttributionRetryFunction", {"Records": records}, lambda_context)
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
        delivered += len(messages)
        if failed:
            break
    return delivered


def settle(aws: Aws, clock: Clock, lambda_context: Any, rounds: int = 2) -> None:
    """Past the outbox's due time, ``rounds`` times: 6 minutes on, the retry queue drained, the scheduled
    recompute (with its sweeps), the queue again; then a minute on and one more scheduled run."""
    from tests.support.recompute import scheduled_run  # it imports this module's neighbours, not this one

    for _ in range(rounds):
        clock.advance(timedelta(minutes=6))
        drain_retries(aws, lambda_context)
        scheduled_run(lambda_context)
        drain_retries(aws, lambda_context)
    clock.advance(timedelta(minutes=1))
    scheduled_run(lambda_context)
