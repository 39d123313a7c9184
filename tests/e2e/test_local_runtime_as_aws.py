"""The local runtime (`make serve`, local/dora_local) and the service as met over HTTP: parity with API Gateway
HTTP API + Lambda, the data directory across restarts and crashes, the schedule, concurrency (found by a
review). In-process tests use the session's ``local`` runtime; those that need a
process of their own start ``python -m dora_local`` on a free port with a temporary data directory. A process
started as ``make serve`` starts it has none of the ``POWERTOOLS_*`` variables tests/conftest.py sets in the
test process (``_launch(..., as_make_serve=True)`` removes them)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from dora_local.server import LocalRuntime
from tests.support.server import READY_SECONDS, ROOT, free_port, runtime_environment

pytestmark = pytest.mark.e2e
TIMEOUT = 60
KEY = "review-local-key"
HEADERS = {"Authorization": f"Bearer {KEY}"}


# --------------------------------------------------------------------------------------------- helpers
@contextmanager
def _launch(
    data: Path | None,
    log: Path,
    *arguments: str,
    as_make_serve: bool = False,
    stop: signal.Signals = signal.SIGTERM,
    **environment: str,
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``python -m dora_local [--data DATA] ARGUMENTS`` on a free port (key ``KEY``, timer off unless
    ``environment`` says otherwise) until ``GET /health`` answers; then ``stop`` sent to it.
    ``as_make_serve``: without the ``POWERTOOLS_*`` variables the test process has (tests/conftest.py sets
    them; ``make serve`` does not)."""
    port = free_port()
    settings = {"PORT": str(port), "DORA_LOCAL_QUIET": "1", "SCHEDULE_SECONDS": "0", "DORA_LOCAL_API_KEY": KEY}
    env = runtime_environment(**{**settings, **environment})
    if as_make_serve:
        env = {k: v for k, v in env.items() if not k.startswith("POWERTOOLS_")}
    command = [sys.executable, "-m", "dora_local", *(["--data", str(data)] if data is not None else []), *arguments]
    with log.open("ab") as output:
        process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            command, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-4000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
            try:
                if requests.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        yield process, url
    finally:
        if process.poll() is None:
            process.send_signal(stop)
        try:
            process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _deployment(project: str, version: str, **extra: Any) -> dict[str, Any]:
    return {
        "project": project,
        "environment": "production",
        "finished_at": "2024-03-01T12:00:00Z",
        "version": version,
        **extra,
    }


def _post(url: str, path: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(f"{url}{path}", json=body, headers=headers or HEADERS, timeout=TIMEOUT)


def _sign(secret: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def _github_ping(url: str, secret: str) -> requests.Response:
    raw = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": _sign(secret, raw),
    }
    return requests.post(f"{url}/webhooks/github/Spaces-1", data=raw, headers=headers, timeout=TIMEOUT)


def _pagerduty_delivery(url: str, secret: str) -> requests.Response:
    raw = json.dumps(
        {
            "event": {
                "id": str(uuid.uuid4()),
                "event_type": "incident.acknowledged",
                "resource_type": "incident",
                "occurred_at": "2024-03-01T12:00:00Z",
                "data": {"id": "PREVIEW", "type": "incident", "title": "x", "service": {"summary": "svc"}},
            }
        }
    ).encode()
    signature = "v1=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-PagerDuty-Signature": signature}
    return requests.post(f"{url}/webhooks/pagerduty/Spaces-1", data=raw, headers=headers, timeout=TIMEOUT)


def _spy(local: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    calls: list[tuple[str, Any]] = []
    original: Callable[[str, Any], Any] = local.runtime.invoke

    def spy(logical_id: str, event: Any) -> Any:
        calls.append((logical_id, event))
        return original(logical_id, event)

    monkeypatch.setattr(local.runtime, "invoke", spy)
    return calls


def _insight(url: str, headers: dict[str, str], name: str) -> int:
    report = _post(url, "/api/Spaces-1/insights/reports", {"Name": f"review {name}"}, headers)
    assert report.status_code == 201, report.text
    query = {
        "kind": "DoraMetricsQuery",
        "reportId": report.json()["Id"],
        "metric": "deployment_frequency",
        "timeRange": "LastMonth",
        "granularity": "Weekly",
    }
    created = _post(url, "/api/projects/Spaces-1/insights", {"name": name, "query": query}, headers)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


# --------------------------------------------------------------------------------------------- make serve's own process
def test_make_serve_runs_the_scheduled_recompute_and_its_worker_without_error(tmp_path: Path) -> None:
    """`make serve` starts `python -m dora_local` with no POWERTOOLS_* in its environment (template Globals set
    them per function). The schedule run and the worker's batch must succeed, as in AWS where each function
    is imported with its own environment."""
    log = tmp_path / "serve.log"
    with _launch(tmp_path / "data", log, as_make_serve=True) as (_, url):
        created = _post(url, "/api/Spaces-1/deployments", _deployment("sched", "1.0.0"))
        assert created.status_code == 201, created.text
        run = requests.post(f"{url}/_local/schedule/run", timeout=TIMEOUT)
        assert run.status_code == 200, run.text
        runs = run.json()["runs"]
        assert runs, run.text
        for each in runs:
            assert "error" not in each, (each, log.read_text(errors="replace")[-3000:])
            assert each.get("fanout", {}).get("failed", 0) == 0, (each, log.read_text(errors="replace")[-3000:])
    assert "Must contain a metric namespace" not in log.read_text(errors="replace")


def test_make_serve_delivers_an_attribution_retry_without_failing_its_batch(tmp_path: Path) -> None:
    """A deployment naming a commit nobody sent yet waits in the retry queue; once its delay passed, the
    retry function takes it. Under `make serve` (no POWERTOOLS_* in the process) the batch must not fail (a
    failed batch is received again and again until the DLQ takes it)."""
    log = tmp_path / "serve.log"
    with _launch(tmp_path / "data", log, as_make_serve=True) as (_, url):
        body = _deployment("retry", "1.0.0", commit_sha="1" * 40, repository="acme/retry")
        created = _post(url, "/api/Spaces-1/deployments", body)
        assert created.status_code == 201, created.text
        moved = requests.post(f"{url}/_local/clock/advance", json={"seconds": 3600}, timeout=TIMEOUT)
        assert moved.status_code == 200, moved.text
        drained = requests.post(f"{url}/_local/queues/drain", timeout=TIMEOUT)
        assert drained.status_code == 200, drained.text
        counts = drained.json()
        assert counts["delivered"] >= 1, counts
        assert counts["failed"] == 0, (counts, log.read_text(errors="replace")[-2000:])


def test_make_serve_functions_log_with_the_templates_service_name(tmp_path: Path) -> None:
    """Every function's environment has POWERTOOLS_SERVICE_NAME=dora-insights (template Globals): its log lines
    must say so, not Powertools' ``service_undefined``."""
    log = tmp_path / "serve.log"
    with _launch(None, log, as_make_serve=True, DORA_LOCAL_QUIET="0") as (_, url):
        made = _post(url, "/api/Spaces-1/deployments", {"project": "x"})  # a 4xx: logged at info by the route
        assert made.status_code in (400, 422), made.text
        requests.post(f"{url}/_local/schedule/run", timeout=TIMEOUT)
    text = log.read_text(errors="replace")
    assert '"service":"dora-insights"' in text, text[-2000:]
    assert "service_undefined" not in text


def test_the_timer_schedule_runs_the_recompute_on_its_own(tmp_path: Path) -> None:
    """SCHEDULE_SECONDS=2: the recompute runs on its own (no /_local/schedule/run) and the space's health shows
    a successful run."""
    with _launch(tmp_path / "data", tmp_path / "serve.log", SCHEDULE_SECONDS="2") as (_, url):
        assert _post(url, "/api/Spaces-1/deployments", _deployment("timer", "1.0.0")).status_code == 201
        deadline = time.monotonic() + 45
        health: dict[str, Any] = {}
        while time.monotonic() < deadline:
            health = requests.get(f"{url}/api/Spaces-1/health", headers=HEADERS, timeout=TIMEOUT).json()
            if health.get("last_success_at") and health.get("dirty_streams") == 0:
                break
            time.sleep(1)
        assert health.get("last_success_at"), health
        assert health.get("dirty_streams") == 0, health


# --------------------------------------------------------------------------------------------- routing parity
def test_an_encoded_slash_in_an_insight_id_does_not_reach_the_sharing_route_past_its_scope(
    local: LocalRuntime,
) -> None:
    """`GET|PATCH /api/projects/{spaceId}/insights/{insightId}` is routed (template, and API Gateway) by raw
    segments, so `7%2Fsharing` is an insightId; the function must answer for that route (a 404), not run the
    sharing route's body (which needs sharing_configuration:* scopes the key lacks)."""
    admin = {"Authorization": f"Bearer {local.api_key}"}
    made = _post(
        local.url,
        "/api/Spaces-1/apikeys",
        {"name": "insights only", "scopes": ["insight:read", "insight:write"]},
        admin,
    )
    assert made.status_code == 201, made.text
    limited = {"Authorization": f"Bearer {made.json()['key']}"}
    insight = _insight(local.url, admin, "encoded slash")
    base = f"{local.url}/api/projects/Spaces-1/insights"

    direct = requests.get(f"{base}/{insight}/sharing", headers=limited, timeout=TIMEOUT)
    assert direct.status_code == 403, direct.text  # the scope is checked on the real route

    read = requests.get(f"{base}/{insight}%2Fsharing", headers=limited, timeout=TIMEOUT)
    assert "access_token" not in read.text, f"{read.status_code} {read.text}"
    assert read.status_code in (400, 403, 404), read.text

    enabled = requests.patch(f"{base}/{insight}%2Fsharing", json={"enabled": True}, headers=limited, timeout=TIMEOUT)
    assert enabled.status_code in (400, 403, 404), enabled.text
    after = requests.get(f"{base}/{insight}/sharing", headers=admin, timeout=TIMEOUT)
    assert after.status_code == 200, after.text
    assert after.json()["enabled"] is False, after.text


def test_a_route_answers_for_its_own_route_key_when_an_id_holds_an_encoded_slash(
    local: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The function API Gateway invokes for `GET /api/{spaceId}/deployments/{deploymentId}` with
    deploymentId ``<id>/corrections`` must look that id up, not serve the corrections route's body."""
    headers = {"Authorization": f"Bearer {local.api_key}"}
    made = _post(local.url, "/api/Spaces-1/deployments", _deployment("review-slash", "1.0.0"), headers)
    assert made.status_code == 201, made.text
    ident = made.json()["id"]
    calls = _spy(local, monkeypatch)
    answer = requests.get(
        f"{local.url}/api/Spaces-1/deployments/{ident}%2Fcorrections", headers=headers, timeout=TIMEOUT
    )
    (function, event), *_ = calls
    assert event["routeKey"] == "GET /api/{spaceId}/deployments/{deploymentId}", event["routeKey"]
    assert event["pathParameters"]["deploymentId"] == f"{ident}/corrections"
    assert answer.status_code == 404, f"{function}: {answer.status_code} {answer.text}"


def test_forwarded_headers_are_the_gateways_not_the_clients(local: LocalRuntime) -> None:
    """API Gateway sets X-Forwarded-Proto/Port itself; a client's own value must not become the scheme of the
    absolute links the service answers (PostHog `next`)."""
    headers = {"Authorization": f"Bearer {local.api_key}"}
    for name in ("fwd one", "fwd two"):
        _insight(local.url, headers, name)
    page = requests.get(
        f"{local.url}/api/projects/Spaces-1/insights",
        params={"limit": "1"},
        headers={**headers, "X-Forwarded-Proto": "javascript", "X-Forwarded-Port": "1"},
        timeout=TIMEOUT,
    )
    assert page.status_code == 200, page.text
    nxt = page.json()["next"]
    assert nxt and nxt.startswith(("http://", "https://")), nxt


def test_header_names_are_case_insensitive_and_cookies_never_reach_headers(
    local: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _spy(local, monkeypatch)
    answer = requests.get(
        f"{local.url}/api/Spaces-1/deployments",
        params={"project": "a,b", "limit": "5"},
        headers={"AUTHORIZATION": f"Bearer {local.api_key}", "Cookie": "a=1; b=2", "X-Multi": "1"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 200, answer.text
    event = calls[-1][1]
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["queryStringParameters"] == {"project": "a,b", "limit": "5"}
    assert event["headers"]["authorization"] == f"Bearer {local.api_key}"


def test_an_event_over_lambdas_6_mb_invoke_limit_never_reaches_the_function(
    local: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 4.5 MiB body of backslashes is within the webhook's own 5 MiB bound, but JSON-escaped inside the event
    it is ~9 MiB: Lambda refuses a synchronous invocation over 6 MB, so API Gateway answers an error (413 or
    500) and no function runs. Locally the function must not be invoked either."""
    body = b'{"zen":"' + b"\\\\" * (9 * 256 * 1024) + b'"}'  # 4.5 MiB; each "\\" doubles in the event's JSON
    assert len(body) < 5 * 1024 * 1024
    calls = _spy(local, monkeypatch)
    answer = requests.post(
        f"{local.url}/webhooks/github/Spaces-1",
        data=body,
        headers={"Content-Type": "application/json", "X-GitHub-Event": "ping", "X-Hub-Signature-256": "sha256=00"},
        timeout=TIMEOUT,
    )
    assert not calls, f"invoked {[c[0] for c in calls]} with an event of over 6 MB; answered {answer.status_code}"
    assert answer.status_code in (413, 500), answer.text


# --------------------------------------------------------------------------------------------- concurrency
def test_parallel_requests_with_one_client_id_store_one_deployment(local: LocalRuntime) -> None:
    headers = {"Authorization": f"Bearer {local.api_key}"}
    client_id = f"review-{uuid.uuid4().hex[:12]}"
    body = _deployment("review-parallel", "2.0.0", id=client_id)

    def send(_: int) -> requests.Response:
        return _post(local.url, "/api/Spaces-1/deployments", body, headers)

    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(send, range(24)))
    assert all(a.status_code in (200, 201) for a in answers), [(a.status_code, a.text[:200]) for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    listed = requests.get(
        f"{local.url}/api/Spaces-1/deployments", params={"project": "review-parallel"}, headers=headers, timeout=TIMEOUT
    )
    assert [d["version"] for d in listed.json()["items"]] == ["2.0.0"], listed.text


def test_many_parallel_clients_are_all_answered_none_reset(tmp_path: Path) -> None:
    """64 clients at once against `python -m dora_local` (its own process, as `make serve`): API Gateway
    answers every one. The local front must not reset connections (a listen backlog of 5 overflows)."""
    outcomes: list[Any] = []
    with _launch(tmp_path / "data", tmp_path / "serve.log") as (_, url):
        for round_ in range(3):
            project = f"many-{round_}"

            def send(n: int, project: str = project) -> Any:
                try:
                    return _post(url, "/api/Spaces-1/deployments", _deployment(project, f"3.0.{n}")).status_code
                except requests.ConnectionError as error:
                    return repr(error)[:200]

            with ThreadPoolExecutor(64) as pool:
                outcomes.extend(pool.map(send, range(128)))
    failed = [o for o in outcomes if o != 201]
    assert not failed, f"{len(failed)} of {len(outcomes)} requests not answered 201, e.g. {failed[:3]}"


# --------------------------------------------------------------------------------------------- the data directory
def test_a_restart_keeps_what_the_routes_wrote_and_its_secrets_still_decrypt(tmp_path: Path) -> None:
    """Stop/start with the data directory keeps everything: a corrected and a deleted deployment, a failure,
    a new key, an insight, the space's settings, and an incident secret (KMS-encrypted: the key is kept)."""
    data, log = tmp_path / "data", tmp_path / "serve.log"
    pd_secret = "pagerduty-review-secret"
    reads = [
        "/api/Spaces-1/deployments?project=kept",
        "/api/Spaces-1/failures",
        "/api/Spaces-1/settings",
        "/api/Spaces-1/webhooks/pagerduty",
        "/api/projects/Spaces-1/insights",
    ]
    with _launch(data, log) as (_, url):
        first = _post(url, "/api/Spaces-1/deployments", _deployment("kept", "1.0.0"))
        second = _post(
            url, "/api/Spaces-1/deployments", _deployment("kept", "1.0.1", finished_at="2024-03-02T12:00:00Z")
        )
        assert first.status_code == second.status_code == 201, (first.text, second.text)
        patched = requests.patch(
            f"{url}/api/Spaces-1/deployments/{first.json()['id']}",
            json={"state": "Failed"},
            headers=HEADERS,
            timeout=TIMEOUT,
        )
        assert patched.status_code == 200, patched.text
        gone = requests.delete(
            f"{url}/api/Spaces-1/deployments/{second.json()['id']}", headers=HEADERS, timeout=TIMEOUT
        )
        assert gone.status_code in (200, 204), gone.text
        failure = _post(
            url,
            "/api/Spaces-1/failures",
            {"project": "kept", "environment": "production", "started_at": "2024-03-01T13:00:00Z"},
        )
        assert failure.status_code == 201, failure.text
        key = _post(url, "/api/Spaces-1/apikeys", {"name": "ci", "scopes": ["deployments:read"]})
        assert key.status_code == 201, key.text
        pd = requests.put(
            f"{url}/api/Spaces-1/webhooks/pagerduty",
            json={"secret": pd_secret, "services": {"svc": {"project": "kept", "environment": "production"}}},
            headers=HEADERS,
            timeout=TIMEOUT,
        )
        assert pd.status_code == 200, pd.text
        _insight(url, HEADERS, "kept insight")
        assert _pagerduty_delivery(url, pd_secret).status_code < 300
        before = {path: requests.get(f"{url}{path}", headers=HEADERS, timeout=TIMEOUT) for path in reads}
        assert all(r.status_code == 200 for r in before.values()), {p: r.text[:200] for p, r in before.items()}
    with _launch(data, log) as (_, url):
        after = {path: requests.get(f"{url}{path}", headers=HEADERS, timeout=TIMEOUT) for path in reads}
        for path in reads:
            assert after[path].status_code == 200, (path, after[path].text)
            assert _stable(after[path].json()) == _stable(before[path].json()), path
        new_key = {"Authorization": f"Bearer {key.json()['key']}"}
        assert requests.get(f"{url}/api/Spaces-1/deployments", headers=new_key, timeout=TIMEOUT).status_code == 200
        assert _pagerduty_delivery(url, pd_secret).status_code < 300, "the incident secret no longer decrypts"


def _stable(value: Any) -> Any:
    """An answer without what legitimately moves between two reads (freshness and the caller's view times)."""
    if isinstance(value, dict):
        return {
            k: _stable(v)
            for k, v in value.items()
            if k not in ("as_of", "last_viewed_at", "pending", "last_refresh", "result")
        }
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def test_a_github_secret_set_over_the_api_survives_a_restart(tmp_path: Path) -> None:
    """`PUT /api/Spaces-1/webhooks/github` sets the space's secret; a restart with the same data directory
    keeps the table, so deliveries signed with that secret must keep verifying (not be reset to
    DORA_LOCAL_WEBHOOK_SECRET behind the user's back)."""
    data, log = tmp_path / "data", tmp_path / "serve.log"
    mine = "my-own-github-secret"
    with _launch(data, log) as (_, url):
        put = requests.put(
            f"{url}/api/Spaces-1/webhooks/github", json={"secret": mine}, headers=HEADERS, timeout=TIMEOUT
        )
        assert put.status_code == 200, put.text
        assert _github_ping(url, mine).status_code == 200
    with _launch(data, log) as (_, url):
        ping = _github_ping(url, mine)
        assert ping.status_code == 200, f"{ping.status_code} {ping.text}: the secret set over the API was replaced"


def test_a_kill_during_parallel_writes_loses_no_answered_write(tmp_path: Path) -> None:
    """SIGKILL while eight clients write: every deployment answered 201 is there after the restart."""
    data, log = tmp_path / "data", tmp_path / "serve.log"
    answered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    with _launch(data, log, stop=signal.SIGKILL) as (process, url):

        def writer(n: int) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    made = _post(url, "/api/Spaces-1/deployments", _deployment("crash", f"{n}.{i}.0"))
                except requests.RequestException:
                    return
                if made.status_code == 201:
                    with lock:
                        answered.append(made.json()["id"])

        threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(4)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=20)
        stop.set()
        for thread in threads:
            thread.join(timeout=TIMEOUT)
    assert len(answered) > 5
    with _launch(data, log) as (_, url):
        ids: set[str] = set()
        cursor: str | None = None
        while True:
            params = {"project": "crash", "limit": "100", **({"cursor": cursor} if cursor else {})}
            page = requests.get(f"{url}/api/Spaces-1/deployments", params=params, headers=HEADERS, timeout=TIMEOUT)
            assert page.status_code == 200, page.text
            ids |= {d["id"] for d in page.json()["items"]}
            cursor = page.json().get("next_cursor")
            if not cursor:
                break
    missing = set(answered) - ids
    assert not missing, f"{len(missing)} of {len(answered)} answered writes lost"


def test_fresh_starts_empty_with_the_seeded_key(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "serve.log"
    with _launch(data, log) as (_, url):
        assert _post(url, "/api/Spaces-1/deployments", _deployment("fresh", "1.0.0")).status_code == 201
    with _launch(data, log, "--fresh") as (_, url):
        listed = requests.get(
            f"{url}/api/Spaces-1/deployments", params={"project": "fresh"}, headers=HEADERS, timeout=TIMEOUT
        )
        assert listed.status_code == 200, listed.text
        assert listed.json()["items"] == []
        assert os.path.exists(data / ".gitignore")


def test_an_attribution_retry_waits_for_its_delay_then_is_delivered_once(tmp_path: Path) -> None:
    """SQS retries with delay: the retry message of a deployment whose commit is unknown is not delivered
    before its delay; once the clock moved past it, one drain delivers it and the function succeeds."""
    with _launch(tmp_path / "data", tmp_path / "serve.log") as (_, url):
        body = _deployment("retry-delay", "1.0.0", commit_sha="2" * 40, repository="acme/retry-delay")
        assert _post(url, "/api/Spaces-1/deployments", body).status_code == 201
        early = requests.post(f"{url}/_local/queues/drain", timeout=TIMEOUT).json()
        assert early["delivered"] == 0, early
        assert requests.post(f"{url}/_local/clock/advance", json={"seconds": 3600}, timeout=TIMEOUT).status_code == 200
        due = requests.post(f"{url}/_local/queues/drain", timeout=TIMEOUT).json()
        assert due["delivered"] >= 1 and due["failed"] == 0, due
        again = requests.post(f"{url}/_local/queues/drain", timeout=TIMEOUT).json()
        assert again["delivered"] == 0, again  # the next attempt waits for its own (longer) delay


def test_a_cors_preflight_is_the_gateways_404_without_cors_headers(local: LocalRuntime) -> None:
    """The HttpApi has no CorsConfiguration: a preflight is routed like any request (no OPTIONS route: 404),
    and nothing grants a foreign origin access."""
    answer = requests.options(
        f"{local.url}/api/Spaces-1/deployments",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 404
    assert answer.json() == {"message": "Not Found"}
    assert not any(h.lower().startswith("access-control-") for h in answer.headers)


def test_a_json_media_type_is_matched_case_insensitively(local: LocalRuntime) -> None:
    """RFC 9110 §8.3.1: type and subtype are case-insensitive; `Application/JSON` is JSON (API Gateway passes the
    header as sent)."""
    headers = {"Authorization": f"Bearer {local.api_key}", "Content-Type": "Application/JSON; charset=UTF-8"}
    raw = json.dumps(_deployment("review-media-type", "1.0.0")).encode()
    made = requests.post(f"{local.url}/api/Spaces-1/deployments", data=raw, headers=headers, timeout=TIMEOUT)
    assert made.status_code == 201, f"{made.status_code} {made.text}"


def test_a_body_of_another_media_type_is_refused_in_the_dialects_error_shape(local: LocalRuntime) -> None:
    """API.md "Errors": a native route's errors are `{"message", "errors"}`; a text/plain body is a 415 in that
    shape, not Powertools' own `{"statusCode", "detail"}`."""
    headers = {"Authorization": f"Bearer {local.api_key}", "Content-Type": "text/plain"}
    raw = json.dumps(_deployment("review-media-type", "1.0.1")).encode()
    refused = requests.post(f"{local.url}/api/Spaces-1/deployments", data=raw, headers=headers, timeout=TIMEOUT)
    assert refused.status_code == 415, refused.text
    body = refused.json()
    assert "message" in body and "errors" in body, body


@pytest.mark.xfail(
    strict=True,
    reason="documented limit (README): the local runtime runs one function at a time (os.environ is the process's), "
    "so a function calling the local API waits until its own timeout",
)
def test_a_function_calling_the_local_api_gets_an_answer_not_a_timeout(local: LocalRuntime) -> None:
    """Lambda runs functions concurrently: an alert destination's test delivery to a route of the same API gets
    that route's answer (a 401: the delivery carries no API key). Locally the invocation lock must not make the
    delivering function wait on the route it calls until its own client gives up."""
    headers = {"Authorization": f"Bearer {local.api_key}"}
    made = _post(
        local.url,
        "/api/Spaces-1/alert-destinations",
        {"name": "review self", "kind": "webhook", "url": f"{local.url}/api/Spaces-1/deployments"},
        headers,
    )
    assert made.status_code == 201, made.text
    tried = requests.post(
        f"{local.url}/api/Spaces-1/alert-destinations/{made.json()['id']}/test", headers=headers, timeout=TIMEOUT
    )
    assert tried.status_code < 500, tried.text
    delivery = tried.json()
    assert delivery.get("status_code") == 401, delivery
