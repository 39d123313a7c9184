"""Attribution end to end (METRICS §5): at ingest, through the retry queue's real SQS event shape,
woken by code data, giving up after 3 days, idempotent on redelivery, poison messages to the DLQ."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from tests.conftest import ADMIN_KEY, Api, Aws, Clock
from tests.support.events import load_event
from tests.support.lambdas import invoke
from tests.support.native import create_deployment, get_deployment

SP = {"spaceId": "Spaces-1"}
NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SHA = "66adc9350f2cc9b250b69abddab733dd55e1a588"
OLDER = "1111111111111111111111111111111111111111"


def _get(api: Api, deployment_id: str) -> dict[str, Any]:
    return get_deployment(api, deployment_id).body  # type: ignore[no-any-return]


def _push(api: Api, *shas: str) -> None:
    commits = [
        {"repository": "acme/shop", "branch": "main", "sha": sha, "timestamp": f"2024-03-01T1{n}:00:00Z"}
        for n, sha in enumerate(shas)
    ]
    result = api.call("POST", "/api/{spaceId}/changes", path_params=SP, body={"commits": commits}, key=ADMIN_KEY)
    assert result.status < 300, result.body


def _receive(aws: Aws) -> list[dict[str, Any]]:
    """Messages visible now, as the SQS event the queue's function would get."""
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
        "Messages", []
    )
    template = load_event("AttributionRetryFunction.json")["Records"][0]
    return [
        {**template, "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]}
        for m in messages
    ]


def _deliver(records: list[dict[str, Any]], lambda_context: Any) -> dict[str, Any]:
    return invoke("AttributionRetryFunction", {"Records": records}, lambda_context)  # type: ignore[no-any-return]


def _counts(aws: Aws) -> dict[str, int]:
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=aws.queue_url, AttributeNames=["All"])["Attributes"]
    return {k: int(attributes[k]) for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed")}


def test_a_deployment_before_its_commits_is_pending_then_resolved_when_the_push_arrives(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    deployment = create_deployment(api, repository="acme/shop", commit_sha=SHA)
    pending = _get(api, deployment["id"])["attribution"]
    assert (pending["state"], pending["attempts"]) == ("Pending", 1)
    assert _counts(aws) == {"ApproximateNumberOfMessages": 0, "ApproximateNumberOfMessagesDelayed": 1}
    _push(api, OLDER, SHA)  # wakes the deployment at once: a message with no delay
    records = _receive(aws)
    assert len(records) == 1
    assert _deliver(records, lambda_context) == {"batchItemFailures": []}
    resolved = _get(api, deployment["id"])
    assert resolved["attribution"]["state"] == "Resolved"
    assert resolved["attribution"]["commits"] == [SHA]  # a first deployment ships only its own change
    assert resolved["attribution"]["change_started_at"] == "2024-03-01T11:00:00.000Z"
    assert resolved["figures"]["lead_time_seconds"] == 3600.0
    assert resolved["figures"]["lead_time_source"] == "Commits"


def test_a_deployment_waiting_for_its_pending_predecessor_is_retried_when_that_one_resolves(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """A stream's deployments ship in finish order, so one whose predecessor is Pending waits for it.
    When the predecessor resolves, the waiting one is woken at once (a message with no delay), not left
    for its own retry: a chain of waiting deployments resolves in one pass, not one link per delay."""
    first_sha, second_sha = "2" * 40, "3" * 40
    first = create_deployment(api, repository="acme/shop", commit_sha=first_sha, finished_at="2024-03-01T20:00:00Z")
    second = create_deployment(api, repository="acme/shop", commit_sha=second_sha, finished_at="2024-03-02T20:00:00Z")
    assert [_get(api, d["id"])["attribution"]["state"] for d in (first, second)] == ["Pending", "Pending"]
    _push(api, first_sha, second_sha)  # wakes both: the first waits for its sha, the second for the first's
    records = {json.loads(r["body"])["deployment_id"]: r for r in _receive(aws)}
    assert set(records) == {first["id"], second["id"]}
    # The second one's attempt runs first: its predecessor is still Pending, so it waits again.
    assert _deliver([records[second["id"]]], lambda_context) == {"batchItemFailures": []}
    assert _get(api, second["id"])["attribution"]["state"] == "Pending"
    assert _deliver([records[first["id"]]], lambda_context) == {"batchItemFailures": []}
    assert _get(api, first["id"])["attribution"]["state"] == "Resolved"
    # The first one's resolution woke the second: its message is visible now, without the retry's delay.
    woken = _receive(aws)
    assert [json.loads(r["body"])["deployment_id"] for r in woken] == [second["id"]]
    assert _deliver(woken, lambda_context) == {"batchItemFailures": []}
    attribution = _get(api, second["id"])["attribution"]
    assert attribution["state"] == "Resolved"
    assert attribution["commits"] == [second_sha]


def test_known_commits_resolve_at_ingest_and_later_deployments_ship_the_range(api: Api, aws: Aws, clock: Clock) -> None:
    shas = [f"{n:040x}" for n in range(1, 6)]
    _push(api, *shas)
    first = create_deployment(api, repository="acme/shop", commit_sha=shas[1], finished_at="2024-03-01T20:00:00Z")
    assert _get(api, first["id"])["attribution"]["state"] == "Resolved"
    second = create_deployment(api, repository="acme/shop", commit_sha=shas[4], finished_at="2024-03-02T20:00:00Z")
    attribution = _get(api, second["id"])["attribution"]
    assert attribution["state"] == "Resolved"
    assert sorted(attribution["commits"]) == sorted(shas[2:5])
    assert _counts(aws)["ApproximateNumberOfMessagesDelayed"] == 0


def test_retries_grow_and_give_up_after_three_days(api: Api, aws: Aws, clock: Clock, lambda_context: Any) -> None:
    from dora_insights.domain.attribution import next_retry_delay

    deployment = create_deployment(api, repository="acme/shop", commit_sha=SHA)
    assert [next_retry_delay(n) for n in range(1, 7)] == sorted(next_retry_delay(n) for n in range(1, 7))
    assert next_retry_delay(50) == 900
    sqs = boto3.client("sqs")
    message = {"space_id": "Spaces-1", "deployment_id": deployment["id"], "attempt": 1}
    sqs.send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps(message))
    _deliver(_receive(aws), lambda_context)  # still nothing known: pending again, attempt 2
    assert _get(api, deployment["id"])["attribution"]["attempts"] == 2
    clock.now = NOW + timedelta(days=3, seconds=1)
    sqs.send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps(message | {"attempt": 2}))
    _deliver([r for r in _receive(aws) if json.loads(r["body"])["attempt"] == 2], lambda_context)
    gave_up = _get(api, deployment["id"])["attribution"]
    assert gave_up["state"] == "GaveUp"
    assert gave_up["attempts"] == 3


def test_redelivered_messages_change_nothing(api: Api, aws: Aws, clock: Clock, lambda_context: Any) -> None:
    _push(api, SHA)
    deployment = create_deployment(api, repository="acme/shop", commit_sha=SHA)
    before = _get(api, deployment["id"])["attribution"]
    assert before["state"] == "Resolved"
    body = json.dumps({"space_id": "Spaces-1", "deployment_id": deployment["id"], "attempt": 1})
    record = {**load_event("AttributionRetryFunction.json")["Records"][0], "body": body}
    for _ in range(3):
        assert _deliver([record, {**record, "messageId": "again"}], lambda_context) == {"batchItemFailures": []}
    assert _get(api, deployment["id"])["attribution"] == before


def test_poison_messages_end_in_the_dead_letter_queue(aws: Aws, space: str, lambda_context: Any) -> None:
    sqs = boto3.client("sqs")
    sqs.set_queue_attributes(QueueUrl=aws.queue_url, Attributes={"VisibilityTimeout": "0"})
    sqs.send_message(QueueUrl=aws.queue_url, MessageBody="not a retry message")
    malformed = json.dumps({"space_id": "Spaces-1", "attempt": 1})  # names no deployment
    sqs.send_message(QueueUrl=aws.queue_url, MessageBody=malformed)
    gone = json.dumps({"space_id": "Spaces-1", "deployment_id": "no-such-deployment", "attempt": 1})
    sqs.send_message(QueueUrl=aws.queue_url, MessageBody=gone)  # a deleted deployment's: no poison
    for _ in range(8):  # the poller's loop: deliver, delete only what succeeded
        records = _receive(aws)
        if not records:
            break
        try:
            failed = {f["itemIdentifier"] for f in _deliver(records, lambda_context)["batchItemFailures"]}
        except BatchProcessingError:  # every record failed: Lambda returns the whole batch to the queue
            failed = {r["messageId"] for r in records}
        for record in records:
            if record["messageId"] not in failed:
                sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=record["receiptHandle"])
    dead = sqs.receive_message(QueueUrl=aws.dlq_url, MaxNumberOfMessages=10).get("Messages", [])
    assert sorted(m["Body"] for m in dead) == sorted(["not a retry message", malformed])
