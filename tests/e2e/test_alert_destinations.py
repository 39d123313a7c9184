"""Alert destinations over HTTP against the local runtime (issue 20 item 3): a threshold's move into Firing
reaches a local HTTP receiver once, signed; a receiver answering 500 gets the retries, then the event is
in the dead-letter queue. Everything goes through the runtime: the schedule, the bus and its rule in moto,
the alert-delivery queue and its function."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from dora_insights.domain.alert_destinations import verify
from dora_local.server import POLL_WAIT_SECONDS, LocalRuntime
from tests.support import moto_clients
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e
TIMEOUT = 30
QUEUE = "AlertDeliveryQueue"


@pytest.fixture
def destinations(local: LocalRuntime, http: requests.Session) -> Iterator[list[dict[str, Any]]]:
    """Destinations the test creates in Spaces-1, deleted after it (other tests' alerts do not reach them)."""
    made: list[dict[str, Any]] = []
    yield made
    for destination in made:
        http.delete(f"{local.url}/api/Spaces-1/alert-destinations/{destination['id']}", timeout=TIMEOUT)


def _sqs(local: LocalRuntime) -> Any:
    return moto_clients.client(local, "sqs")


def _destination(local: LocalRuntime, http: requests.Session, made: list[dict[str, Any]], url: str) -> dict[str, Any]:
    created = http.post(
        f"{local.url}/api/Spaces-1/alert-destinations",
        json={"name": "e2e receiver", "kind": "webhook", "url": url},
        timeout=TIMEOUT,
    )
    assert created.status_code == 201, created.text
    made.append(created.json())
    return made[-1]


def _firing_threshold(local: LocalRuntime, http: requests.Session) -> str:
    """A new project deployed now, an insight of its weekly deployments and a threshold above 0 (so its
    first check fires); the threshold's id."""
    project = f"alerts-{uuid.uuid4().hex[:8]}"
    deployed = http.post(
        f"{local.url}/api/Spaces-1/deployments",
        json={"project": project, "environment": "production", "finished_at": int(time.time()) - 60},
        timeout=TIMEOUT,
    )
    assert deployed.status_code == 201, deployed.text
    report = http.post(
        f"{local.url}/api/Spaces-1/insights/reports",
        json={"Name": project},
        timeout=TIMEOUT,
    )
    assert report.status_code == 201, report.text
    query = {
        "kind": "DoraMetricsQuery",
        "reportId": report.json()["Id"],
        "metric": "deployment_frequency",
        "timeRange": "LastMonth",
        "granularity": "Weekly",
    }
    insight = http.post(
        f"{local.url}/api/projects/Spaces-1/insights", json={"name": project, "query": query}, timeout=TIMEOUT
    )
    assert insight.status_code == 201, insight.text
    threshold = http.post(
        f"{local.url}/api/projects/Spaces-1/insights/{insight.json()['id']}/thresholds",
        json={"name": "any deployment", "condition": {"bounds": {"upper": 0}}, "calculation_interval": "daily"},
        timeout=TIMEOUT,
    )
    assert threshold.status_code == 201, threshold.text
    return str(threshold.json()["id"])


def _tick(local: LocalRuntime) -> None:
    """One scheduled run, then every queued message delivered (recompute items, alert events)."""
    assert requests.post(f"{local.url}/_local/schedule/run", timeout=120).status_code == 200
    assert requests.post(f"{local.url}/_local/queues/drain", timeout=120).status_code == 200


def test_a_threshold_that_fires_reaches_the_local_receiver_once_with_a_valid_signature(
    local: LocalRuntime, http: requests.Session, receiver: Receiver, destinations: list[dict[str, Any]]
) -> None:
    made = _destination(local, http, destinations, f"{receiver.url}/alerts")
    threshold_id = _firing_threshold(local, http)

    _tick(local)
    _tick(local)  # a second run: the threshold is not due again, and nothing is owed

    mine = [r for r in receiver.at("/alerts") if json.loads(r.body)["threshold_id"] == threshold_id]
    assert len(mine) == 1, [json.loads(r.body) for r in receiver.at("/alerts")]
    (request,) = mine
    body = json.loads(request.body)
    assert (body["type"], body["state"], body["bounds"]) == ("InsightThresholdBreached", "Firing", {"upper": 0})
    assert body["value"] >= 1
    assert body["insight_url"].startswith(f"{local.url}/api/projects/Spaces-1/insights/")
    assert verify(made["secret"], request.headers["x-dora-signature"], request.body, now=int(time.time()))
    assert request.headers["x-dora-event"] == "InsightThresholdBreached"
    log = http.get(f"{local.url}/api/Spaces-1/alert-destinations/{made['id']}/deliveries", timeout=TIMEOUT).json()[
        "items"
    ]
    assert [(d["notification_id"], d["status"]) for d in log] == [(body["notification_id"], "delivered")]


def test_an_alert_the_receiver_answers_500_is_retried_then_dead_lettered(
    local: LocalRuntime, http: requests.Session, receiver: Receiver, destinations: list[dict[str, Any]]
) -> None:
    receiver.statuses = [500]
    made = _destination(local, http, destinations, f"{receiver.url}/failing")
    sqs = _sqs(local)
    url = local.runtime.queue_urls[QUEUE]
    redrive = json.loads(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
    )
    dlq_url = sqs.get_queue_url(QueueName=redrive["deadLetterTargetArn"].rsplit(":", 1)[1])["QueueUrl"]
    timeout = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"][
        "VisibilityTimeout"
    ]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})  # retry at once
    time.sleep(POLL_WAIT_SECONDS + 0.5)  # a long poll under way still hides what it receives for the old timeout
    try:
        threshold_id = _firing_threshold(local, http)
        _tick(local)
        deadline = time.monotonic() + TIMEOUT
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            requests.post(f"{local.url}/_local/queues/drain", timeout=120)
            messages = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            for message in messages.get("Messages", []):
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            if any(e["detail"]["threshold_id"] == threshold_id for e in found):
                break
        else:
            pytest.fail("the alert never reached the dead-letter queue")
    finally:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": timeout})

    (event,) = [e for e in found if e["detail"]["threshold_id"] == threshold_id]
    assert event["detail-type"] == "InsightThresholdBreached"
    attempts = [r for r in receiver.at("/failing") if json.loads(r.body)["threshold_id"] == threshold_id]
    assert len(attempts) == redrive["maxReceiveCount"]  # the first delivery and every retry, then the DLQ
    assert all(verify(made["secret"], r.headers["x-dora-signature"], r.body, now=int(time.time())) for r in attempts)
    log = http.get(f"{local.url}/api/Spaces-1/alert-destinations/{made['id']}/deliveries", timeout=TIMEOUT).json()[
        "items"
    ]
    mine = [d for d in log if d["notification_id"] == event["detail"]["notification_id"]]
    assert sorted(d["attempt"] for d in mine) == list(range(1, redrive["maxReceiveCount"] + 1))
    assert {(d["status"], d["status_code"]) for d in mine} == {("failed", 500)}


def test_the_test_route_reaches_the_local_receiver(
    local: LocalRuntime, http: requests.Session, receiver: Receiver, destinations: list[dict[str, Any]]
) -> None:
    made = _destination(local, http, destinations, f"{receiver.url}/test")

    sent = http.post(f"{local.url}/api/Spaces-1/alert-destinations/{made['id']}/test", timeout=TIMEOUT)

    assert sent.status_code == 200, sent.text
    assert sent.json()["status"] == "delivered"
    (request,) = receiver.at("/test")
    assert verify(made["secret"], request.headers["x-dora-signature"], request.body, now=int(time.time()))
    assert abs(int(request.headers["x-dora-timestamp"]) - datetime.now(UTC).timestamp()) < 60
