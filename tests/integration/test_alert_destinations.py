"""Alert destinations (issue 20 item 3): the routes, and alert events reaching a local HTTP receiver.

The delivery path as deployed, in moto: threshold checks (``logic.alerts``) put their events on a bus
whose rule (template.yaml's ``AlertDeliveryRule`` pattern) sends them to a queue built from
``AlertDeliveryQueue``'s properties; the queue's messages are handed to ``AlertDeliveryFunction`` in the
SQS event shape, under its role, and what it posts reaches a real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dora_insights.handlers.alerts import MAX_RECEIVES
from dora_local.events import failed_message_ids, sqs_record
from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support import lambdas
from tests.support.insights import weekly_deploys_insight
from tests.support.receiver import Receiver
from tests.support.receiver import signed_with as verified
from tests.support.template import resources

NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)
BASE = "/api/{spaceId}/alert-destinations"
ONE = BASE + "/{destinationId}"
SP = {"spaceId": "Spaces-1"}


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


# --------------------------------------------------------------------------------------------- the pipeline
@dataclass
class Pipeline:
    """The bus, its alert rule, the delivery queue and its DLQ, as template.yaml declares them."""

    sqs: Any
    bus: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    max_receives: int

    def run_queue(self, context: Any, clock: Clock | None = None) -> int:
        """Hand every visible message to AlertDeliveryFunction (one per batch, as its BatchSize) and delete
        those it did not report failed, as Lambda's event source mapping does; the number handed over.
        With ``clock``, each delivery happens a second after the one before (retries are apart in time)."""
        handed = 0
        while True:
            if clock is not None:
                clock.advance(timedelta(seconds=1))
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=1,
                AttributeNames=["All"],
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                return handed
            records = [sqs_record(m, self.queue_arn) for m in messages]
            response = lambdas.invoke("AlertDeliveryFunction", {"Records": records}, context)
            failed = failed_message_ids(response, records)
            for record in records:
                if record["messageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=record["receiptHandle"])
            handed += len(records)

    def dead_letters(self) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]


@pytest.fixture
def pipeline(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    import boto3

    from dora_insights.config import reset_settings

    declared = resources("AWS::SQS::Queue")["AlertDeliveryQueue"]["Properties"]
    (rule,) = [r for r in resources("AWS::Events::Rule").values() if "EventPattern" in r["Properties"]]
    name = f"alerts-{uuid.uuid4().hex[:8]}"
    events, sqs = boto3.client("events"), boto3.client("sqs")
    events.create_event_bus(Name=name)
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    max_receives = int(declared["RedrivePolicy"]["maxReceiveCount"])
    queue_url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": "0",  # retried at once here; template.yaml's timeout paces them in AWS
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=name, EventPattern=json.dumps(rule["Properties"]["EventPattern"]))
    events.put_targets(Rule=name, EventBusName=name, Targets=[{"Id": "delivery", "Arn": queue_arn}])
    monkeypatch.setenv("EVENT_BUS_NAME", name)
    monkeypatch.setenv("ALERT_DELIVERY_QUEUE_URL", queue_url)
    reset_settings()
    try:
        yield Pipeline(sqs, name, queue_url, queue_arn, dlq_url, max_receives)
    finally:
        events.remove_targets(Rule=name, EventBusName=name, Ids=["delivery"])
        events.delete_rule(Name=name, EventBusName=name)
        events.delete_event_bus(Name=name)
        sqs.delete_queue(QueueUrl=queue_url)
        sqs.delete_queue(QueueUrl=dlq_url)


@dataclass
class Threshold:
    """An insight of Spaces-1 with one hourly threshold firing above 1; checks take the value given."""

    api: Api
    insight_id: int
    id: str

    def check(self, store: Any, value: float, now: datetime) -> None:
        """One threshold pass of the space, as the recompute runs it, with the insight's value ``value``."""
        from dora_insights.dal.events import EventBus
        from dora_insights.logic import alerts

        counts = alerts.evaluate_thresholds(
            store.insights(), lambda insight: value, EventBus(_bus_name()), "Spaces-1", now
        )
        assert (counts.failed, counts.undelivered) == (0, 0)


def _bus_name() -> str:
    from dora_insights.config import get_settings

    name = get_settings().event_bus_name
    assert name
    return name


def threshold_in(api: Api) -> Threshold:
    insight_id = weekly_deploys_insight(api, "Spaces-1", ADMIN_KEY, "Deploys <weekly>")
    body = {"name": "Too many deploys", "condition": {"bounds": {"upper": 1}}, "calculation_interval": "hourly"}
    created = api.call(
        "POST",
        "/api/projects/{spaceId}/insights/{insightId}/thresholds",
        path_params={**SP, "insightId": str(insight_id)},
        body=body,
        key=ADMIN_KEY,
    )
    assert created.status == 201, created.body
    return Threshold(api, insight_id, str(created.body["id"]))


def create(api: Api, **body: Any) -> dict[str, Any]:
    made = api.call("POST", BASE, path_params=SP, body={"name": "hook", "kind": "webhook", **body}, key=ADMIN_KEY)
    assert made.status == 201, made.body
    return made.body  # type: ignore[no-any-return]


def deliveries(api: Api, destination_id: str, **query: str) -> dict[str, Any]:
    found = api.call(
        "GET",
        ONE + "/deliveries",
        path_params={**SP, "destinationId": destination_id},
        query=query or None,
        key=ADMIN_KEY,
    )
    assert found.status == 200, found.body
    return found.body  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------------- routes
def test_a_webhook_destination_answers_its_secret_once_and_never_again(api: Api, loopback: None) -> None:
    made = create(api, url="https://alerts.example.com/dora")

    assert made["secret"].startswith("whsec_") and len(made["secret"]) > 40
    assert (made["kind"], made["url"], made["enabled"], made["signature"]) == (
        "webhook",
        "https://alerts.example.com/dora",
        True,
        "hmac-sha256",
    )
    got = api.call("GET", ONE, path_params={**SP, "destinationId": made["id"]}, key=ADMIN_KEY)
    listed = api.call("GET", BASE, path_params=SP, key=ADMIN_KEY)
    assert got.status == 200 and "secret" not in got.body
    assert [d["id"] for d in listed.body["items"]] == [made["id"]]
    assert made["secret"] not in json.dumps(listed.body) + json.dumps(got.body)


def test_a_slack_destination_has_no_secret_and_its_url_is_shown_masked(api: Api) -> None:
    url = "https://hooks.slack.com/services/T0001/B0002/abcdefghijklmnop"
    made = create(api, kind="slack", url=url)

    assert made["secret"] is None and made["signature"] is None
    assert made["url"] == "https://hooks.slack.com/services/T0001/****"
    listed = api.call("GET", BASE, path_params=SP, key=ADMIN_KEY)
    assert "abcdefghijklmnop" not in json.dumps(listed.body)


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        ("webhook", "http://alerts.example.com/dora"),
        ("webhook", "https://10.0.0.8/hook"),
        ("webhook", "https://169.254.169.254/latest/meta-data"),
        ("webhook", "https://localhost/hook"),
        ("webhook", "http://127.0.0.1:8080/hook"),
        ("webhook", "https://metadata.google.internal/x"),
        ("webhook", "https://user:pw@alerts.example.com/hook"),
        ("webhook", "ftp://alerts.example.com/hook"),
        ("slack", "https://alerts.example.com/services/T/B/x"),
    ],
)
def test_a_url_that_is_not_public_https_is_a_400_naming_url(api: Api, kind: str, url: str) -> None:
    refused = api.call("POST", BASE, path_params=SP, body={"name": "x", "kind": kind, "url": url}, key=ADMIN_KEY)

    assert refused.status == 400, refused.body
    assert refused.body["errors"][0].startswith("url"), refused.body


def test_loopback_http_urls_are_accepted_only_under_the_local_setting(api: Api, loopback: None) -> None:
    made = create(api, url="http://127.0.0.1:8080/hook")

    assert made["url"] == "http://127.0.0.1:8080/hook"


def test_unknown_destinations_and_other_spaces_answer_404_and_read_keys_may_not_write(
    api: Api, store: Any, loopback: None
) -> None:
    from dora_insights.logic import admin

    made = create(api, url="https://alerts.example.com/dora")
    admin.ensure_space(store, "Spaces-2", "Other", NOW)
    _, other = admin.create_api_key(store, "Spaces-2", "other", ("alert:read", "alert:write"), NOW)
    _, reader = admin.create_api_key(store, "Spaces-1", "reader", ("alert:read",), NOW)
    path = {**SP, "destinationId": made["id"]}

    assert api.call("GET", ONE, path_params={**SP, "destinationId": "0123abc"}, key=ADMIN_KEY).status == 404
    assert api.call("GET", ONE, path_params=path, key=other).status == 404
    elsewhere = {"spaceId": "Spaces-2", "destinationId": made["id"]}
    assert api.call("GET", ONE, path_params=elsewhere, key=other).status == 404
    assert api.call("DELETE", ONE, path_params=path, key=reader).status == 403
    assert api.call("GET", ONE, path_params=path, key=reader).status == 200


def test_patch_changes_only_the_fields_given_and_delete_removes_the_destination(api: Api) -> None:
    made = create(api, url="https://alerts.example.com/dora")
    path = {**SP, "destinationId": made["id"]}

    patched = api.call("PATCH", ONE, path_params=path, body={"enabled": False}, key=ADMIN_KEY)
    bad = api.call("PATCH", ONE, path_params=path, body={"url": "http://alerts.example.com/"}, key=ADMIN_KEY)
    unknown = api.call("PATCH", ONE, path_params=path, body={"secret": "mine"}, key=ADMIN_KEY)

    assert patched.status == 200, patched.body
    assert (patched.body["enabled"], patched.body["name"], patched.body["url"]) == (
        False,
        "hook",
        "https://alerts.example.com/dora",
    )
    assert (bad.status, unknown.status) == (400, 400)
    assert api.call("DELETE", ONE, path_params=path, key=ADMIN_KEY).status == 204
    assert api.call("GET", ONE, path_params=path, key=ADMIN_KEY).status == 404
    assert api.call("DELETE", ONE, path_params=path, key=ADMIN_KEY).status == 404


def test_a_space_has_at_most_ten_destinations(api: Api) -> None:
    for n in range(10):
        create(api, url=f"https://alerts.example.com/{n}")

    refused = api.call(
        "POST",
        BASE,
        path_params=SP,
        body={"name": "x", "kind": "webhook", "url": "https://a.example.com/"},
        key=ADMIN_KEY,
    )

    assert refused.status == 409, refused.body


def test_the_test_route_posts_a_signed_test_alert_and_logs_it(
    api: Api, receiver: Receiver, loopback: None, clock: Clock
) -> None:
    made = create(api, url=f"{receiver.url}/hook")
    path = {**SP, "destinationId": made["id"]}

    sent = api.call("POST", ONE + "/test", path_params=path, key=ADMIN_KEY)

    assert sent.status == 200, sent.body
    assert (sent.body["status"], sent.body["status_code"], sent.body["test"]) == ("delivered", 200, True)
    (request,) = receiver.at("/hook")
    assert verified(made["secret"], request)
    assert request.headers["x-dora-event"] == "AlertDestinationTest"
    assert int(request.headers["x-dora-timestamp"]) == int(NOW.timestamp())
    assert [d["id"] for d in deliveries(api, made["id"])["items"]] == [sent.body["id"]]


def test_a_test_send_the_receiver_refuses_is_reported_not_a_server_error(
    api: Api, receiver: Receiver, loopback: None
) -> None:
    receiver.statuses = [500]
    made = create(api, url=f"{receiver.url}/hook")

    sent = api.call("POST", ONE + "/test", path_params={**SP, "destinationId": made["id"]}, key=ADMIN_KEY)

    assert sent.status == 200, sent.body
    assert (sent.body["status"], sent.body["status_code"], sent.body["error"]) == ("failed", 500, "HTTP 500")


def test_a_test_send_to_a_closed_port_is_a_failed_delivery_with_the_reason(api: Api, loopback: None) -> None:
    made = create(api, url="http://127.0.0.1:9/hook")  # discard port: nothing listens

    sent = api.call("POST", ONE + "/test", path_params={**SP, "destinationId": made["id"]}, key=ADMIN_KEY)

    assert sent.status == 200, sent.body
    assert sent.body["status"] == "failed" and sent.body["status_code"] is None
    assert "ConnectionRefusedError" in sent.body["error"]


def test_the_delivery_log_is_paged_newest_first_and_a_foreign_cursor_is_a_400(
    api: Api, receiver: Receiver, loopback: None, clock: Clock
) -> None:
    made = create(api, url=f"{receiver.url}/hook")
    ids = []
    for _ in range(3):
        sent = api.call("POST", ONE + "/test", path_params={**SP, "destinationId": made["id"]}, key=ADMIN_KEY)
        ids.append(sent.body["id"])
        clock.advance(timedelta(seconds=1))

    first = deliveries(api, made["id"], limit="2")
    second = deliveries(api, made["id"], limit="2", cursor=first["next_cursor"])
    bad = api.call(
        "GET",
        ONE + "/deliveries",
        path_params={**SP, "destinationId": made["id"]},
        query={"cursor": "bm90LWEtY3Vyc29y"},
        key=ADMIN_KEY,
    )

    assert [d["id"] for d in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None
    assert bad.status == 400


# --------------------------------------------------------------------------------------------- delivery
def test_each_transition_reaches_the_receiver_once_with_a_valid_signature(
    api: Api, store: Any, receiver: Receiver, pipeline: Pipeline, loopback: None, clock: Clock, lambda_context: Any
) -> None:
    made = create(api, url=f"{receiver.url}/hook")
    threshold = threshold_in(api)

    for value in (3, 4, 0, 0, 5):  # Firing, still Firing, cleared, still clear, Firing again
        threshold.check(store, value, clock.now)
        pipeline.run_queue(lambda_context)
        clock.advance(timedelta(hours=1))
    pipeline.run_queue(lambda_context)  # nothing left

    requests = receiver.at("/hook")
    assert [r.headers["x-dora-event"] for r in requests] == [
        "InsightThresholdBreached",
        "InsightThresholdCleared",
        "InsightThresholdBreached",
    ]
    assert all(verified(made["secret"], r) for r in requests)
    bodies = [json.loads(r.body) for r in requests]
    assert [b["value"] for b in bodies] == [3, 0, 5]
    assert [b["state"] for b in bodies] == ["Firing", "NotFiring", "Firing"]
    assert len({b["notification_id"] for b in bodies}) == 3
    assert bodies[0]["bounds"] == {"upper": 1}
    assert bodies[0]["insight_url"].endswith(f"/api/projects/Spaces-1/insights/{threshold.insight_id}")
    assert bodies[0]["threshold_id"] == threshold.id
    log = deliveries(api, made["id"])["items"]
    assert [d["status"] for d in log] == ["delivered"] * 3
    assert pipeline.dead_letters() == []


def test_a_tampered_body_or_an_old_timestamp_does_not_verify(
    api: Api, store: Any, receiver: Receiver, pipeline: Pipeline, loopback: None, clock: Clock, lambda_context: Any
) -> None:
    from dora_insights.domain.alert_destinations import verify

    made = create(api, url=f"{receiver.url}/hook")
    threshold_in(api).check(store, 3, clock.now)
    pipeline.run_queue(lambda_context)
    (request,) = receiver.at("/hook")
    stamp = int(request.headers["x-dora-timestamp"])
    header = request.headers["x-dora-signature"]

    assert verify(made["secret"], header, request.body, now=stamp)
    assert not verify(made["secret"], header, request.body.replace(b'"value":3', b'"value":0'), now=stamp)
    assert not verify(made["secret"], header, request.body, now=stamp + 3600)  # replayed an hour later
    assert not verify("whsec_other", header, request.body, now=stamp)


def test_a_500_is_retried_and_a_destination_that_took_the_event_does_not_get_it_twice(
    api: Api, store: Any, receiver: Receiver, pipeline: Pipeline, loopback: None, clock: Clock, lambda_context: Any
) -> None:
    steady = create(api, url=f"{receiver.url}/steady")
    flaky = create(api, url=f"{receiver.url}/flaky")
    receiver.by_path["/flaky"] = [500, 503, 200]

    threshold_in(api).check(store, 3, clock.now)
    handed = pipeline.run_queue(lambda_context, clock)

    assert handed == 3  # the message, then its two retries
    assert len(receiver.at("/steady")) == 1
    flaky_requests = receiver.at("/flaky")
    assert len(flaky_requests) == 3
    assert len({json.loads(r.body)["notification_id"] for r in flaky_requests}) == 1
    assert all(verified(flaky["secret"], r) for r in flaky_requests)
    log = deliveries(api, flaky["id"])["items"]
    assert [(d["status"], d["status_code"], d["attempt"]) for d in log] == [
        ("delivered", 200, 3),
        ("failed", 503, 2),
        ("failed", 500, 1),
    ]
    assert [d["status"] for d in deliveries(api, steady["id"])["items"]] == ["delivered"]
    assert pipeline.dead_letters() == []


def test_an_event_every_attempt_of_which_fails_ends_in_the_dead_letter_queue(
    api: Api, store: Any, receiver: Receiver, pipeline: Pipeline, loopback: None, clock: Clock, lambda_context: Any
) -> None:
    receiver.statuses = [500]
    made = create(api, url=f"{receiver.url}/hook")
    threshold = threshold_in(api)
    threshold.check(store, 3, clock.now)

    deadline = time.monotonic() + 30
    while not (dead := pipeline.dead_letters()) and time.monotonic() < deadline:
        pipeline.run_queue(lambda_context, clock)

    (event,) = dead
    assert pipeline.max_receives == MAX_RECEIVES  # the function knows which receive is the last
    assert (event["detail-type"], event["detail"]["threshold_id"]) == ("InsightThresholdBreached", threshold.id)
    assert len(receiver.at("/hook")) == pipeline.max_receives
    log = deliveries(api, made["id"])["items"]
    assert [d["attempt"] for d in log] == list(range(pipeline.max_receives, 0, -1))
    assert {d["status"] for d in log} == {"failed"}


def test_a_disabled_destination_gets_nothing_and_a_slack_one_gets_the_message(
    api: Api, store: Any, receiver: Receiver, pipeline: Pipeline, loopback: None, clock: Clock, lambda_context: Any
) -> None:
    disabled = create(api, url=f"{receiver.url}/off")
    api.call("PATCH", ONE, path_params={**SP, "destinationId": disabled["id"]}, body={"enabled": False}, key=ADMIN_KEY)
    create(api, kind="slack", url=f"{receiver.url}/services/T1/B2/secret")
    threshold = threshold_in(api)

    threshold.check(store, 3, clock.now)
    pipeline.run_queue(lambda_context)

    assert receiver.at("/off") == []
    (posted,) = receiver.at("/services/T1/B2/secret")
    assert "x-dora-signature" not in posted.headers
    text = json.loads(posted.body)["text"]
    assert "Deploys &lt;weekly&gt;" in text and "Too many deploys" in text
    assert "Value *3*" in text and "at most 1" in text
    assert f"/api/projects/Spaces-1/insights/{threshold.insight_id}|" in text
