"""The local runtime over HTTP: what `make serve` gives a user, and `make invoke`."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from dora_local.server import MAX_REQUEST_BYTES, POLL_WAIT_SECONDS, LocalRuntime
from tests.support import moto_clients
from tests.support.server import free_port, runtime_environment

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30
SQS_RECORD_KEYS = {
    "messageId",
    "receiptHandle",
    "body",
    "attributes",
    "messageAttributes",
    "md5OfBody",
    "eventSource",
    "eventSourceARN",
    "awsRegion",
}


def _sqs(local: LocalRuntime) -> Any:
    return moto_clients.client(local, "sqs")


def _queue_function(local: LocalRuntime, queue: str = "RetryQueue") -> str:
    (function,) = [f.logical_id for f, t in local.runtime.queue_triggers() if t.queue == queue]
    return function


def _spy(local: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Record every invocation (function, event) while still running it."""
    calls: list[tuple[str, Any]] = []
    original: Callable[[str, Any], Any] = local.runtime.invoke

    def spy(logical_id: str, event: Any) -> Any:
        calls.append((logical_id, event))
        return original(logical_id, event)

    monkeypatch.setattr(local.runtime, "invoke", spy)
    return calls


def _emptied(local: LocalRuntime, queue: str) -> str:
    """The queue's URL, emptied first. The runtime is the session's: retries earlier tests left (delayed
    ones too) would surface during a test that counts the queue; none of them is awaited by anyone."""
    url: str = local.runtime.queue_urls[queue]
    sqs = _sqs(local)
    deadline = time.monotonic() + 75
    while True:  # SQS (and moto) allow one PurgeQueue per queue every 60 seconds
        try:
            sqs.purge_queue(QueueUrl=url)
            return url
        except sqs.exceptions.PurgeQueueInProgress:
            if time.monotonic() > deadline:
                raise
            time.sleep(5)


def _counts(local: LocalRuntime, queue: str) -> tuple[int, int]:
    attributes = _sqs(local).get_queue_attributes(QueueUrl=local.runtime.queue_urls[queue], AttributeNames=["All"])
    visible = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
    return visible, int(attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"])


# --------------------------------------------------------------------------------------------- HTTP front
def test_health_answers_200_without_a_key(local: LocalRuntime) -> None:
    response = requests.get(f"{local.url}/health", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["Content-Type"].startswith("application/json")


def test_unknown_routes_and_wrong_methods_are_api_gateway_404s(local: LocalRuntime) -> None:
    for method, path in (
        ("GET", "/no/such/route"),
        ("PUT", "/health"),
        ("GET", "/"),
        ("GET", "/_local/queues/drain"),
        ("POST", "/_local/nothing"),
    ):
        response = requests.request(method, f"{local.url}{path}", timeout=TIMEOUT)
        assert (response.status_code, response.json()) == (404, {"message": "Not Found"}), (method, path)


@pytest.mark.parametrize("method", ["PROPFIND", "TRACE", "MKCOL", "LOCK", "PURGE", "FOO"])
def test_unusual_methods_are_api_gateway_404s_not_501s(local: LocalRuntime, method: str) -> None:
    for path in ("/health", "/api/Spaces-1/deployments", "/no/such/route"):
        response = requests.request(method, f"{local.url}{path}", timeout=TIMEOUT)
        assert (response.status_code, response.json()) == (404, {"message": "Not Found"}), (method, path)


def test_connect_is_an_api_gateway_404_not_a_501(local: LocalRuntime) -> None:
    host, port = local.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as connection:
        connection.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.partition(b"\r\n\r\n")[2]) < _content_length(reply):
            chunk = connection.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.decode().partition("\r\n\r\n")
    assert head.split(" ")[1] == "404", reply
    assert json.loads(body) == {"message": "Not Found"}


def _content_length(reply: bytes) -> int:
    match = re.search(rb"(?i)content-length: *(\d+)", reply)
    return int(match.group(1)) if match else 0


def test_a_body_over_10_mib_is_a_413(local: LocalRuntime) -> None:
    response = requests.post(
        f"{local.url}/api/Spaces-1/deployments",
        data=b"x" * (MAX_REQUEST_BYTES + 1),
        headers={"Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert (response.status_code, response.json()) == (413, {"message": "Request Entity Too Large"})


def test_a_handler_exception_is_a_500_internal_server_error(
    local: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = local.runtime.invoke

    def failing(logical_id: str, event: Any) -> Any:
        if logical_id == "HealthFunction":
            raise RuntimeError("boom")
        return original(logical_id, event)

    monkeypatch.setattr(local.runtime, "invoke", failing)
    response = requests.get(f"{local.url}/health", timeout=TIMEOUT)
    assert (response.status_code, response.json()) == (500, {"message": "Internal Server Error"})


def test_the_handler_receives_the_http_api_event_of_the_request(
    local: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _spy(local, monkeypatch)
    requests.get(
        f"{local.url}/health?a=1&a=2", headers={"X-Trace": "t", "Cookie": "c=1"}, timeout=TIMEOUT
    ).raise_for_status()
    ((function, event),) = calls
    assert function == "HealthFunction"
    assert (event["version"], event["routeKey"], event["rawPath"]) == ("2.0", "GET /health", "/health")
    assert (event["rawQueryString"], event["queryStringParameters"]) == ("a=1&a=2", {"a": "1,2"})
    assert event["headers"]["x-trace"] == "t"
    assert event["cookies"] == ["c=1"]
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["requestContext"]["stage"] == "$default"
    assert "pathParameters" not in event


def test_requests_are_served_concurrently_without_errors(local: LocalRuntime) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: requests.get(f"{local.url}/health", timeout=TIMEOUT).status_code, range(16)))
    assert statuses == [200] * 16


def test_openapi_document_is_served(local: LocalRuntime) -> None:
    document = requests.get(f"{local.url}/openapi.json", timeout=TIMEOUT).json()
    assert "/api/{spaceId}/deployments" in document["paths"]


# --------------------------------------------------------------------------------------------- the service
def test_create_and_read_back_with_the_seeded_key(local: LocalRuntime, http: requests.Session) -> None:
    body = {"project": "e2e", "environment": "production", "finished_at": 1709294400, "id": "e2e-run-1"}
    created = http.post(f"{local.url}/api/Spaces-1/deployments", json=body, timeout=TIMEOUT)
    assert created.status_code in (200, 201), created.text
    fetched = http.get(f"{local.url}/api/Spaces-1/deployments/e2e-run-1", timeout=TIMEOUT)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["finished_at"] == "2024-03-01T12:00:00.000Z"
    assert requests.get(f"{local.url}/api/Spaces-1/deployments", timeout=TIMEOUT).status_code == 401
    assert http.get(f"{local.url}/api/Spaces-2/deployments", timeout=TIMEOUT).status_code == 404


def _run(command: str) -> dict:
    """Run a README shell command as a user would and parse its JSON output."""
    done = subprocess.run(["/bin/bash", "-c", command], capture_output=True, text=True, check=True, timeout=TIMEOUT)  # noqa: S603
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_the_readme_curl_example_works_as_printed(local: LocalRuntime) -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Try it.*?```sh\n(.*?)```", readme, re.S)
    assert block, "the README has a curl example under 'Try it'"
    script = block.group(1).replace("http://127.0.0.1:3000", local.url)
    commands = [c for c in re.split(r"\n\n", script.strip()) if c.strip().startswith("curl")]
    assert len(commands) == 5
    created = [_run(command) for command in commands[:3]]
    assert {c["project"] for c in created} == {"newbie"}
    assert created[0]["project_id"].startswith("Projects-")
    listed = _run(commands[3])
    assert {c["id"] for c in created} <= {d["id"] for d in listed["items"]}
    # The summary shows the three at once: the read brings their stream up to date (issue 22).
    summary = _run(commands[4])
    assert (summary["deployments"], summary["pending"]) == (3, 0)
    assert summary["deployment_frequency"]["successful_deployments"] == 3
    assert summary["deployment_frequency"]["tier"] is not None
    assert summary["as_of"] is not None
    assert (summary["time_to_restore"]["count"], summary["time_to_restore"]["tier"]) == (0, None)  # no data, no tier


def test_bad_bodies_get_4xx_never_5xx(local: LocalRuntime, http: requests.Session) -> None:
    url = f"{local.url}/api/Spaces-1/deployments"
    for data, content_type in (
        (b"{broken", "application/json"),
        (b"\xff\xfe", "application/octet-stream"),
        (b"[]", "application/json"),
        (b"x" * (1024 * 1024 + 10), "application/json"),
    ):
        response = http.post(url, data=data, headers={"Content-Type": content_type}, timeout=TIMEOUT)
        assert 400 <= response.status_code < 500, (data[:20], response.text[:200])


# --------------------------------------------------------------------------------------------- schedule
def test_schedule_run_invokes_every_scheduled_function_once(local: LocalRuntime) -> None:
    response = requests.post(f"{local.url}/_local/schedule/run", timeout=TIMEOUT)
    assert response.status_code == 200
    runs = response.json()["runs"]
    assert sorted(r["function"] for r in runs) == sorted(f.logical_id for f, _ in local.runtime.schedule_triggers())
    assert all("error" not in run for run in runs), runs
    (recompute,) = [r for r in runs if r["function"] == "RecomputeFunction"]
    assert recompute["result"]["spaces"] >= 1
    # The schedule's work items went through the worker before the answer (issue 17: the fan-out).
    assert recompute["result"]["items_sent"] >= recompute["result"]["spaces"]
    # (the background poller may take some of them first: the answer waits for those too)
    assert recompute["fanout"]["failed"] == 0


def test_scheduled_functions_get_the_eventbridge_scheduled_event(
    local: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _spy(local, monkeypatch)
    local.run_schedules()
    scheduled = [event for _, event in calls if isinstance(event, dict) and "detail-type" in event]
    assert scheduled
    for event in scheduled:
        assert set(event) == {
            "version",
            "id",
            "detail-type",
            "source",
            "account",
            "time",
            "region",
            "resources",
            "detail",
        }
        assert (event["detail-type"], event["source"], event["detail"]) == ("Scheduled Event", "aws.events", {})
        assert event["resources"][0].startswith("arn:aws:events:us-east-1:123456789012:rule/")


# --------------------------------------------------------------------------------------------- SQS
def test_drain_answers_with_counts_when_the_queues_are_idle(local: LocalRuntime) -> None:
    drained = requests.post(f"{local.url}/_local/queues/drain", timeout=TIMEOUT)
    assert drained.status_code == 200
    assert set(drained.json()) == {"delivered", "succeeded", "failed"}


def test_drain_delivers_a_queued_message_in_the_sqs_event_shape(
    local: LocalRuntime, http: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = {"project": "queued", "environment": "production", "finished_at": 1709294400, "id": "queued-1"}
    assert http.post(f"{local.url}/api/Spaces-1/deployments", json=body, timeout=TIMEOUT).status_code in (200, 201)
    calls = _spy(local, monkeypatch)
    sqs = _sqs(local)
    url = _emptied(local, "RetryQueue")
    message = json.dumps({"space_id": "Spaces-1", "deployment_id": "queued-1", "attempt": 1})
    sent = sqs.send_message(
        QueueUrl=url, MessageBody=message, MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}}
    )
    drained = requests.post(f"{local.url}/_local/queues/drain", timeout=TIMEOUT)
    assert drained.status_code == 200
    assert _counts(local, "RetryQueue") == (0, 0)  # delivered (by the drain or the poller) and deleted
    records = [r for function, event in calls if function == _queue_function(local) for r in event["Records"]]
    (record,) = [r for r in records if r["messageId"] == sent["MessageId"]]
    assert set(record) == SQS_RECORD_KEYS
    assert record["body"] == message
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == f"arn:aws:sqs:us-east-1:123456789012:{url.rsplit('/', 1)[1]}"
    assert set(record["attributes"]) >= {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert record["messageAttributes"]["k"]["stringValue"] == "v"
    assert record["md5OfBody"] == sent["MD5OfMessageBody"]


def test_a_failed_record_waits_for_its_visibility_timeout_and_the_others_are_deleted(
    local: LocalRuntime, http: requests.Session
) -> None:
    body = {"project": "queued", "environment": "production", "finished_at": 1709294400, "id": "queued-2"}
    http.post(f"{local.url}/api/Spaces-1/deployments", json=body, timeout=TIMEOUT)
    sqs = _sqs(local)
    url = _emptied(local, "RetryQueue")
    sent = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {
                "Id": "good",
                "MessageBody": json.dumps({"space_id": "Spaces-1", "deployment_id": "queued-2", "attempt": 1}),
            },
            {"Id": "poison", "MessageBody": "poison"},
        ],
    )
    assert len(sent["Successful"]) == 2
    assert requests.post(f"{local.url}/_local/queues/drain", timeout=TIMEOUT).status_code == 200
    assert _counts(local, "RetryQueue") == (0, 1)  # the good one deleted, the poison one waiting in flight


def test_a_message_failing_max_receive_count_times_moves_to_the_dead_letter_queue(local: LocalRuntime) -> None:
    sqs = _sqs(local)
    url = local.runtime.queue_urls["RetryQueue"]
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
        sqs.send_message(QueueUrl=url, MessageBody="never valid")
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            requests.post(f"{local.url}/_local/queues/drain", timeout=TIMEOUT)
            found = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=0, AttributeNames=["All"]).get("Messages", [])
            if found:
                break
        else:
            pytest.fail("the message never reached the dead-letter queue")
    finally:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": timeout})
    assert found[0]["Body"] == "never valid"
    assert int(found[0]["Attributes"]["ApproximateReceiveCount"]) >= redrive["maxReceiveCount"]


def test_the_poller_delivers_without_a_drain(local: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _spy(local, monkeypatch)
    sqs = _sqs(local)
    url = local.runtime.queue_urls["RetryQueue"]
    sent = sqs.send_message(QueueUrl=url, MessageBody="for the poller")["MessageId"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(r["messageId"] == sent for _, e in calls if isinstance(e, dict) for r in e.get("Records", [])):
            break
        time.sleep(0.05)
    else:
        pytest.fail("the poller did not deliver the message within 10 s")


# --------------------------------------------------------------------------------------------- commands
def test_python_m_dora_local_serves_until_sigterm() -> None:
    # Its own Popen rather than tests.support.server.serve: what is checked here is the process itself
    # (the banner it prints, its exit code on SIGTERM).
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dora_local"],
        cwd=ROOT,
        env=runtime_environment(PORT=str(port), DORA_LOCAL_API_KEY="subprocess-key", DORA_LOCAL_QUIET="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "ready" in line:
                break
        output = "".join(lines)
        assert "ready" in output, output + (
            process.stderr.read() if process.poll() is not None and process.stderr else ""
        )
        assert f"http://127.0.0.1:{port}" in output
        assert "subprocess-key" in output
        health = requests.get(f"http://127.0.0.1:{port}/health", timeout=TIMEOUT)
        assert health.status_code == 200
        created = requests.post(
            f"http://127.0.0.1:{port}/api/Spaces-1/deployments",
            json={"project": "sub", "environment": "production", "finished_at": 1709294400},
            headers={"Authorization": "Bearer subprocess-key"},
            timeout=TIMEOUT,
        )
        assert created.status_code in (200, 201), created.text
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_python_m_dora_local_invoke_prints_the_result_as_json() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dora_local.invoke", "HealthFunction", "events/HealthFunction.json"],
        cwd=ROOT,
        env=runtime_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["statusCode"] == 200
    assert json.loads(result["body"]) == {"status": "ok"}
    unknown = subprocess.run(
        [sys.executable, "-m", "dora_local.invoke", "NoSuchFunction", "events/HealthFunction.json"],
        cwd=ROOT,
        env=runtime_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert unknown.returncode == 2
    assert "HealthFunction" in unknown.stderr


def test_a_paused_runtime_runs_nothing_in_the_background_until_resumed(
    local: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _spy(local, monkeypatch)
    url = local.runtime.queue_urls["RetryQueue"]
    local.pause_background()
    try:
        sent = _sqs(local).send_message(QueueUrl=url, MessageBody="after the pause")["MessageId"]
        time.sleep(POLL_WAIT_SECONDS + 0.5)
        assert not calls
    finally:
        local.resume_background()
    drained = requests.post(f"{local.url}/_local/queues/drain", timeout=TIMEOUT).json()
    assert drained["delivered"] >= 0
    assert any(r["messageId"] == sent for _, e in calls for r in e.get("Records", []))


def test_report_metrics_after_a_schedule_run_come_gzipped_to_http_clients(
    local: LocalRuntime, http: requests.Session
) -> None:
    from dora_insights.dialects.octopus import MetricsOut

    recent = int(time.time()) - 86_400  # the local runtime's clock is the real one
    for n, state in enumerate(("Success", "Failed", "Success")):
        body = {
            "project": "e2e-metrics",
            "environment": "production",
            "state": state,
            "finished_at": recent + n * 3600,
        }
        created = http.post(f"{local.url}/api/Spaces-1/deployments", json=body, timeout=TIMEOUT)
        assert created.status_code == 201
    # Only this test's project: other e2e modules share the server and fill Spaces-1 with projects.
    mine = {"Name": "e2e", "ProjectIds": [created.json()["project_id"]]}
    report = http.post(f"{local.url}/api/Spaces-1/insights/reports", json=mine, timeout=TIMEOUT).json()
    assert requests.post(f"{local.url}/_local/schedule/run", timeout=TIMEOUT).status_code == 200
    url = f"{local.url}/api/Spaces-1/insights/reports/{report['Id']}/metrics"
    query = {"split": "Project", "timeRange": "LastYear", "granularity": "Daily"}
    packed = http.get(url, params=query, timeout=TIMEOUT)  # requests asks for gzip and undoes it
    plain = http.get(url, params=query, headers={"Accept-Encoding": "identity"}, timeout=TIMEOUT)
    assert packed.status_code == plain.status_code == 200, plain.text[:300]
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in plain.headers
    assert packed.json() == plain.json()
    assert MetricsOut.model_validate(plain.json()).model_dump() == plain.json()
    (series,) = [s for s in plain.json()["Series"] if s["Name"] == "e2e-metrics"]
    assert sum(i["DeploymentFailureRate"]["Total"] for i in series["Intervals"]) == 3
