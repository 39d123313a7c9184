"""``dal.aws.send_messages`` when SQS refuses some entries of a ``SendMessageBatch`` (issue 17): what SQS
fails on its own side is sent again, a refusal never costs the chunks after it, and the error at the end
says how many went. moto never refuses an entry, so the SQS client is wrapped: the entries a test names
are answered in ``Failed`` (as SQS answers them), the rest reach moto's queue."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from dora_insights.dal import aws as dal_aws
from dora_insights.errors import MessagesUnsentError
from tests.conftest import NOW, Aws
from tests.support.emf import emitted_metrics
from tests.support.events import load_event
from tests.support.lambdas import invoke

Refusal = tuple[bool, str]  # (SenderFault, Code) of one failed entry
THROTTLED: Refusal = (False, "ThrottlingException")  # SQS's own fault: worth sending again
TOO_LONG: Refusal = (True, "InvalidParameterValue")  # the request's fault: sending again cannot help


class RefusingSqs:
    """The real (moto) SQS client, except that ``send_message_batch`` fails the entries ``refusals`` picks:
    for a body it matches, the next refusal of its list (none left: the entry goes through)."""

    def __init__(self, real: Any, refusals: Callable[[str], list[Refusal] | None]) -> None:
        self.real = real
        self.refusals = refusals
        self.plans: dict[str, list[Refusal]] = {}
        self.calls: list[list[str]] = []  # the bodies of each SendMessageBatch call

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls.append([e["MessageBody"] for e in Entries])
        passed, failed = [], []
        for entry in Entries:
            body = entry["MessageBody"]
            if body not in self.plans:
                self.plans[body] = list(self.refusals(body) or [])
            plan = self.plans[body]
            if plan:
                sender_fault, code = plan.pop(0)
                failed.append({"Id": entry["Id"], "SenderFault": sender_fault, "Code": code, "Message": code})
            else:
                passed.append(entry)
        response = self.real.send_message_batch(QueueUrl=QueueUrl, Entries=passed) if passed else {"Successful": []}
        return {**response, "Failed": failed}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses before entries are sent again (recorded, not slept)."""
    waited: list[float] = []
    monkeypatch.setattr(dal_aws, "_pause", waited.append)
    return waited


@pytest.fixture
def refusing(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Callable[[Callable[[str], Any]], RefusingSqs]:
    """Make the functions' SQS client refuse the entries a rule picks; the wrapped client."""
    real_client = dal_aws.client

    def install(rule: Callable[[str], list[Refusal] | None]) -> RefusingSqs:
        wrapped = RefusingSqs(real_client("sqs"), rule)
        monkeypatch.setattr(
            dal_aws, "client", lambda service="dynamodb": wrapped if service == "sqs" else real_client(service)
        )
        return wrapped

    return install


@pytest.fixture
def twelve_spaces(store: Any) -> None:
    """Spaces-1 to Spaces-12: two SendMessageBatch calls' worth of a tick's items."""
    from dora_insights.logic import admin

    for n in range(1, 13):
        admin.ensure_space(store, f"Spaces-{n}", f"Space {n}", NOW)


def queued(url: str) -> list[str]:
    """Every message body in the queue (received and left invisible)."""
    sqs = boto3.client("sqs")
    bodies: list[str] = []
    while received := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [m["Body"] for m in received]
    return bodies


def test_entries_sqs_failed_on_its_side_are_sent_again_and_nothing_is_lost(
    aws: Aws, refusing: Callable[..., RefusingSqs], pauses: list[float]
) -> None:
    bodies = [f"message-{n:02}" for n in range(25)]
    sqs = refusing(lambda body: [THROTTLED] if body in {"message-03", "message-07"} else None)

    sent = dal_aws.send_messages(aws.queue_url, bodies, "test messages")

    assert sent == 25
    assert sorted(queued(aws.queue_url)) == bodies
    assert sqs.calls[1] == ["message-03", "message-07"]  # only the failed entries, before the next chunk
    assert pauses == [dal_aws.SQS_RESEND_PAUSES[0]]


def test_a_refusal_costs_no_later_chunk_and_the_error_counts_what_was_not_sent(
    aws: Aws, refusing: Callable[..., RefusingSqs], pauses: list[float]
) -> None:
    bodies = [f"message-{n:02}" for n in range(25)]
    always_throttled = [THROTTLED] * (1 + len(dal_aws.SQS_RESEND_PAUSES))
    rules = {"message-02": [TOO_LONG], "message-15": always_throttled}
    sqs = refusing(rules.get)

    with pytest.raises(MessagesUnsentError) as raised:
        dal_aws.send_messages(aws.queue_url, bodies, "test messages")

    assert (raised.value.sent, raised.value.unsent) == (23, 2)
    assert raised.value.codes == ["InvalidParameterValue", "ThrottlingException"]
    assert "2 of 25 test messages" in str(raised.value)
    assert sorted(queued(aws.queue_url)) == [b for b in bodies if b not in rules]  # the third chunk went too
    assert sum(call.count("message-02") for call in sqs.calls) == 1  # the sender's fault: not sent again
    assert sum(call.count("message-15") for call in sqs.calls) == 1 + len(dal_aws.SQS_RESEND_PAUSES)
    assert pauses == list(dal_aws.SQS_RESEND_PAUSES)


def test_a_tick_whose_item_sqs_refuses_still_sends_every_other_spaces_item(
    aws: Aws,
    twelve_spaces: None,
    refusing: Callable[..., RefusingSqs],
    pauses: list[float],
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    refusing(lambda body: [TOO_LONG] if json.loads(body)["space_id"] == "Spaces-1" else None)

    with pytest.raises(MessagesUnsentError) as raised:
        invoke("RecomputeFunction", load_event("RecomputeFunction.json"), lambda_context)

    assert (raised.value.sent, raised.value.unsent) == (11, 1)
    emitted = emitted_metrics(capsys.readouterr().out)  # the failed tick's metrics went out all the same
    assert (emitted["RecomputeItemsSent"], emitted["RecomputeItemsUnsent"], emitted["RecomputeSpaces"]) == (11, 1, 12)
    spaces = sorted(json.loads(body)["space_id"] for body in queued(aws.recompute_queue_url))
    assert spaces == sorted(f"Spaces-{n}" for n in range(2, 13))  # the next tick sends Spaces-1's again


def test_a_sweep_counts_the_retry_messages_sqs_refused_and_those_it_sent(
    aws: Aws, store: Any, refusing: Callable[..., RefusingSqs], pauses: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from dora_insights.dal.attribution import AttributionStore
    from dora_insights.logic import attribution

    owed = [{"deployment_id": f"Deployments-{n}", "created_at": "2024-03-01T11:00:00.000Z"} for n in range(12)]
    monkeypatch.setattr(AttributionStore, "due", lambda self, at, limit: owed)
    monkeypatch.setattr(AttributionStore, "lease", lambda self, item, due: True)
    refusing(lambda body: [TOO_LONG] if '"Deployments-3"' in body else None)

    counts = attribution.sweep(store, "Spaces-1", NOW + timedelta(hours=1))

    assert (counts.redriven, counts.failed) == (11, 1)
    assert len(queued(aws.queue_url)) == 11


class FailingCall:
    """The real (moto) SQS client, except that ``send_message_batch`` fails as a whole from its
    ``from_call``-th call on (numbered from 1), as botocore raises once its retries are spent."""

    def __init__(self, real: Any, from_call: int, error: Exception) -> None:
        self.real, self.from_call, self.error = real, from_call, error
        self.calls = 0

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls >= self.from_call:
            raise self.error
        return dict(self.real.send_message_batch(**kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _fail_calls(monkeypatch: pytest.MonkeyPatch, from_call: int, error: Exception) -> FailingCall:
    real_client = dal_aws.client
    wrapped = FailingCall(real_client("sqs"), from_call, error)
    monkeypatch.setattr(
        dal_aws, "client", lambda service="dynamodb": wrapped if service == "sqs" else real_client(service)
    )
    return wrapped


def _access_denied() -> Exception:
    from botocore.exceptions import ClientError

    error = {"Error": {"Code": "AccessDenied", "Message": "not authorized to perform sqs:sendmessage"}}
    return ClientError(error, "SendMessageBatch")


def test_a_call_failing_as_a_whole_stops_the_send_and_counts_what_went(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, pauses: list[float]
) -> None:
    from botocore.exceptions import EndpointConnectionError

    bodies = [f"message-{n:02}" for n in range(25)]
    wrapped = _fail_calls(monkeypatch, 2, EndpointConnectionError(endpoint_url="https://sqs.example"))

    with pytest.raises(MessagesUnsentError) as raised:
        dal_aws.send_messages(aws.queue_url, bodies, "test messages")

    assert (raised.value.sent, raised.value.unsent) == (10, 15)
    assert raised.value.codes == ["EndpointConnectionError", "NotSent"]
    assert wrapped.calls == 2  # the third chunk is not tried against a queue that stopped answering
    assert sorted(queued(aws.queue_url)) == bodies[:10]


def test_a_tick_whose_send_fails_as_a_whole_emits_its_metrics_then_fails(
    aws: Aws,
    twelve_spaces: None,
    monkeypatch: pytest.MonkeyPatch,
    pauses: list[float],
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _fail_calls(monkeypatch, 2, _access_denied())

    with pytest.raises(MessagesUnsentError) as raised:
        invoke("RecomputeFunction", load_event("RecomputeFunction.json"), lambda_context)

    assert (raised.value.sent, raised.value.unsent) == (10, 2)
    emitted = emitted_metrics(capsys.readouterr().out)  # docs/recompute.md: metrics first, then the failure
    assert (emitted["RecomputeItemsSent"], emitted["RecomputeItemsUnsent"], emitted["RecomputeSpaces"]) == (10, 2, 12)
    assert len(queued(aws.recompute_queue_url)) == 10
