"""The local runtime over HTTP: what `make serve` gives a user."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import boto3
import pytest
import requests

from dora_local.server import LocalRuntime

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30


def test_health_needs_no_key_and_unknown_routes_are_api_gateway_404s(local: LocalRuntime) -> None:
    assert requests.get(f"{local.url}/health", timeout=TIMEOUT).json() == {"status": "ok"}
    missing = requests.get(f"{local.url}/no/such/route", timeout=TIMEOUT)
    assert (missing.status_code, missing.json()) == (404, {"message": "Not Found"})
    wrong_method = requests.put(f"{local.url}/health", timeout=TIMEOUT)
    assert wrong_method.status_code == 404


def test_openapi_document_is_served(local: LocalRuntime) -> None:
    document = requests.get(f"{local.url}/openapi.json", timeout=TIMEOUT).json()
    assert "/api/{spaceId}/deployments" in document["paths"]


def _run(command: str) -> dict:  # type: ignore[type-arg]
    """Run a README shell command as a user would and parse its JSON output."""
    done = subprocess.run(["/bin/bash", "-c", command], capture_output=True, text=True, check=True, timeout=TIMEOUT)  # noqa: S603
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_the_readme_curl_example_works_as_printed(local: LocalRuntime) -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Try it.*?```sh\n(.*?)```", readme, re.S)
    assert block, "the README has a curl example under 'Try it'"
    script = block.group(1).replace("http://127.0.0.1:3000", local.url)
    commands = [c for c in re.split(r"\n\n", script.strip()) if c.strip().startswith("curl")]
    assert len(commands) == 2
    created = _run(commands[0])
    assert created["project"] == "shop"
    assert created["project_id"].startswith("Projects-")
    listed = _run(commands[1])
    assert created["id"] in [d["id"] for d in listed["items"]]


def test_create_and_read_back_with_the_seeded_key(local: LocalRuntime, http: requests.Session) -> None:
    body = {"project": "e2e", "environment": "production", "finished_at": 1709294400, "id": "e2e-run-1"}
    created = http.post(f"{local.url}/api/Spaces-1/deployments", json=body, timeout=TIMEOUT)
    assert created.status_code in (200, 201), created.text
    fetched = http.get(f"{local.url}/api/Spaces-1/deployments/e2e-run-1", timeout=TIMEOUT)
    assert fetched.json()["finished_at"] == "2024-03-01T12:00:00.000Z"
    assert requests.get(f"{local.url}/api/Spaces-1/deployments", timeout=TIMEOUT).status_code == 401
    assert http.get(f"{local.url}/api/Spaces-2/deployments", timeout=TIMEOUT).status_code == 404


def test_bad_bodies_get_4xx_never_5xx(local: LocalRuntime, http: requests.Session) -> None:
    url = f"{local.url}/api/Spaces-1/deployments"
    for data, content_type in (
        (b"{broken", "application/json"),
        (b"\xff\xfe", "application/octet-stream"),
        (b"[]", "application/json"),
    ):
        response = http.post(url, data=data, headers={"Content-Type": content_type}, timeout=TIMEOUT)
        assert 400 <= response.status_code < 500, (data, response.text)
    too_big = http.post(
        url, data=b"x" * (1024 * 1024 + 10), headers={"Content-Type": "application/json"}, timeout=TIMEOUT
    )
    assert too_big.status_code == 413


def test_schedule_run_invokes_the_scheduled_function(local: LocalRuntime) -> None:
    response = requests.post(f"{local.url}/_local/schedule/run", timeout=TIMEOUT)
    assert response.status_code == 200
    (run,) = response.json()["runs"]
    assert run["function"] == "RecomputeFunction"
    assert run["result"]["spaces"] >= 1


def test_drain_delivers_queued_messages_in_the_sqs_event_shape(local: LocalRuntime, http: requests.Session) -> None:
    body = {"project": "queued", "environment": "production", "finished_at": 1709294400, "id": "queued-1"}
    http.post(f"{local.url}/api/Spaces-1/deployments", json=body, timeout=TIMEOUT)
    sqs = boto3.client("sqs", endpoint_url=local.runtime.endpoint, region_name="us-east-1")
    url = local.runtime.queue_urls["RetryQueue"]
    sqs.send_message(
        QueueUrl=url, MessageBody=json.dumps({"space_id": "Spaces-1", "deployment_id": "queued-1", "attempt": 1})
    )
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    drained = requests.post(f"{local.url}/_local/queues/drain", timeout=TIMEOUT)
    assert drained.status_code == 200
    assert set(drained.json()) == {"delivered", "failed"}
    # Whoever delivered them (the poller or the drain), the good message is done and deleted,
    # and the poison one waits, invisible, for its next attempt (then the DLQ).
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "0"
    assert counts["ApproximateNumberOfMessagesNotVisible"] == "1"
