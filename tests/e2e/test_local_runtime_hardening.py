"""Hardening of the local runtime (`make serve`, local/dora_local), from a review: request framing (no
smuggling, no way past the 10 MiB limit, no partial body invoked), Lambda parity (a route past its Timeout
answers 500), local exposure (Host allow-list against DNS rebinding, no cross-site ``/_local/*``), start-up
messages (an unusable data directory, the banner with ``SCHEDULE_SECONDS=0``) and the data directory (a
full disk, Ctrl-C during requests: nothing answered as a success is lost). Each test's docstring tells the
defect it was written against. In-process tests use the session's ``local`` runtime; those that need a
process of their own (data directory, signals, startup) start ``python -m dora_local`` as
tests/integration/test_local_persistence.py does and reuse its helpers."""

from __future__ import annotations

import dataclasses
import json
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from dora_local.server import MAX_REQUEST_BYTES, LocalRuntime
from tests.integration.test_local_persistence import HEADERS, KEY, serving
from tests.support.server import READY_SECONDS, ROOT, free_port, refused_start, runtime_environment, serve

pytestmark = pytest.mark.e2e
TIMEOUT = 30


# --------------------------------------------------------------------------------------------- helpers
def _exchange(local: LocalRuntime, data: bytes, *, half_close: bool = False, wait: float = 5.0) -> bytes:
    """Send raw bytes to the HTTP front; everything it answers until it closes or goes quiet for ``wait`` s."""
    host, port = local.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as connection:
        connection.sendall(data)
        if half_close:
            connection.shutdown(socket.SHUT_WR)
        reply = b""
        try:
            while chunk := connection.recv(65536):
                reply += chunk
        except TimeoutError:
            pass
    return reply


def _invocations(local: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The logical ids of every function the runtime invokes from now on (still invoking them)."""
    calls: list[str] = []
    original: Callable[[str, Any], Any] = local.runtime.invoke

    def spy(logical_id: str, event: Any) -> Any:
        calls.append(logical_id)
        return original(logical_id, event)

    monkeypatch.setattr(local.runtime, "invoke", spy)
    return calls


def _status_and_body(reply: bytes) -> tuple[int, bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


@contextmanager
def _process(
    data: Path, log: Path, preexec: Callable[[], None] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``python -m dora_local --data DATA`` (key ``KEY``) until ready, output drained into ``log`` by a thread
    (a pipe: no file-size limit applies to it); killed after if still running."""
    port = free_port()
    env = runtime_environment(PORT=str(port), DORA_LOCAL_QUIET="1", SCHEDULE_SECONDS="0", DORA_LOCAL_API_KEY=KEY)
    process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "dora_local", "--data", str(data)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=preexec,  # noqa: PLW1509 - a resource limit for this child only
    )
    lines: list[bytes] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            assert process.poll() is None, b"".join(lines)[-4000:].decode(errors="replace")
            assert time.monotonic() < deadline, b"".join(lines)[-4000:].decode(errors="replace")
            try:
                if requests.get(f"{url}/health", timeout=TIMEOUT).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        reader.join(timeout=10)
        with log.open("ab") as out:
            out.write(b"".join(lines))


def _listed(url: str, project: str) -> set[str]:
    """The ids of every deployment of ``project`` (all pages)."""
    ids: set[str] = set()
    cursor: str | None = None
    while True:
        params = {"project": project, "limit": "100", **({"cursor": cursor} if cursor else {})}
        page = requests.get(f"{url}/api/Spaces-1/deployments", params=params, headers=HEADERS, timeout=TIMEOUT)
        assert page.status_code == 200, page.text
        ids |= {d["id"] for d in page.json()["items"]}
        cursor = page.json().get("next_cursor")
        if not cursor:
            return ids


# --------------------------------------------------------------------------------------------- HTTP framing
def test_an_invalid_content_length_closes_the_connection_instead_of_serving_the_body_as_a_request(
    local: LocalRuntime,
) -> None:
    """A client sending a bad ``Content-Length`` gets its 400, and then the bytes of its body are parsed and
    answered as a second request on the same connection (request smuggling: here an unauthenticated
    ``/_local/...`` or any route hidden in a body). Root cause: ``_read_body`` raises ``_BodyError`` without
    setting ``close_connection``, so http.server keeps reading the connection where the body starts."""
    smuggled = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    reply = _exchange(local, b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n" + smuggled, wait=3.0)
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:200]
    assert reply.count(b"HTTP/1.1 ") == 1, reply.decode(errors="replace")


def test_a_negative_chunk_size_is_a_400_and_never_a_way_past_the_10_mib_limit(
    local: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunked body announcing a chunk of size ``-1`` makes the front read to the end of the connection
    (``rfile.read(-1)``): the 10 MiB limit (API Gateway's) is skipped, the whole stream is buffered in memory
    and handed to the function, and a client that keeps the connection open hangs the handler for its 60 s
    timeout. Root cause: ``_read_chunked`` accepts any ``int(..., 16)``, negative ones included."""
    invoked = _invocations(local, monkeypatch)
    body = b'{"project": "chunk", "notes": "' + b"a" * (MAX_REQUEST_BYTES + 1024) + b'"}'
    reply = _exchange(
        local,
        b"POST /api/Spaces-1/deployments HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: Bearer {local.api_key}\r\n".encode()
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n"
        + body,
        half_close=True,
        wait=30.0,
    )
    status, answer = _status_and_body(reply)
    assert (status, json.loads(answer)) == (400, {"message": "Bad Request"}), reply[:300]
    assert invoked == []


def test_a_body_cut_short_by_its_client_never_reaches_the_function(
    local: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that announces ``Content-Length: N`` and goes away after fewer bytes (a killed curl, a
    dropped upload) still has its partial body handed to the function, which acts on it (here: a
    deployment stored from a request that was never completed). API Gateway never invokes the integration
    for an incomplete request. Root cause: ``_read_body`` returns ``rfile.read(length)`` without checking
    that ``length`` bytes came."""
    invoked = _invocations(local, monkeypatch)
    body = json.dumps({"project": "cut-short", "environment": "production", "finished_at": 1709294400}).encode()
    _exchange(
        local,
        b"POST /api/Spaces-1/deployments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {local.api_key}\r\nContent-Length: {len(body) + 100}\r\n\r\n".encode()
        + body,
        half_close=True,
    )
    assert invoked == []


# --------------------------------------------------------------------------------------------- Lambda parity
def test_a_route_that_runs_past_its_timeout_answers_500_as_lambda_stops_it(
    local: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A route function that runs longer than its template ``Timeout`` answers normally locally (only a line
    on stderr), while deployed Lambda stops it and the HTTP API answers 500 Internal Server Error: a slow
    route looks fine on the laptop and fails in AWS. The SQS path already treats a timed-out invocation as
    failed (``Runtime.deliver``); the HTTP path (``LocalRuntime.handle_http``) ignores ``timed_out``."""
    health = local.runtime.functions["HealthFunction"]
    monkeypatch.setitem(local.runtime.functions, "HealthFunction", dataclasses.replace(health, timeout=0))
    response = requests.get(f"{local.url}/health", timeout=TIMEOUT)
    assert (response.status_code, response.json()) == (500, {"message": "Internal Server Error"})


# --------------------------------------------------------------------------------------------- local exposure
def test_a_request_for_another_host_name_is_refused(local: LocalRuntime) -> None:
    """The front answers whatever ``Host`` a request names. With the documented default key
    (``local-dev-key``) that lets any web page the developer visits read and write the local data through
    DNS rebinding (its host name re-pointed at 127.0.0.1: the browser sends ``Host: attacker.example``).
    Loopback binding does not protect against that; a Host allow-list (127.0.0.1, localhost, [::1]) does,
    as API Gateway refuses a Host that is not its own. Root cause: ``_handler_for`` never checks Host."""
    response = requests.get(
        f"{local.url}/api/Spaces-1/deployments",
        headers={"Host": "attacker.example:3000", "Authorization": f"Bearer {local.api_key}"},
        timeout=TIMEOUT,
    )
    assert response.status_code in (403, 421), response.text[:200]


def test_a_cross_site_post_to_a_local_only_route_is_refused(local: LocalRuntime) -> None:
    """``/_local/*`` needs no key and reads its JSON whatever the Content-Type, so any web page can drive a
    developer's runtime with a plain form/``fetch`` POST (no CORS preflight for text/plain): turn chaos faults
    on (``/_local/faults {"rate": 1}``), move the clock, run the schedule. Root cause: ``_local_route`` checks
    neither ``Origin`` nor a JSON Content-Type. (Drain is used here: it is harmless.)"""
    response = requests.post(
        f"{local.url}/_local/queues/drain",
        data="{}",
        headers={"Origin": "https://attacker.example", "Content-Type": "text/plain"},
        timeout=60,
    )
    assert response.status_code == 403, response.text[:200]


# --------------------------------------------------------------------------------------------- starting up
def _a_file(path: Path) -> Path:
    path.write_text("")
    return path


def _corrupt_snapshot(directory: Path) -> Path:
    directory.mkdir()
    header = {"format": "dora-local-dynamodb", "version": 1, "generation": 0}
    (directory / "dynamodb.json").write_text(json.dumps(header) + "\n" + "{not json\n")
    return directory


@pytest.mark.parametrize(
    "make_data",
    [
        pytest.param(lambda tmp: _a_file(tmp / "a-file"), id="path-is-a-file"),
        pytest.param(lambda tmp: _corrupt_snapshot(tmp / "data"), id="snapshot-line-not-json"),
    ],
)
def test_a_data_directory_it_cannot_use_is_reported_as_such(tmp_path: Path, make_data: Any) -> None:
    """``make serve`` with a data directory it cannot read says "cannot serve on 127.0.0.1:3000 ... (set PORT
    to another port)" (path is a file, unreadable, disk full: any ``OSError``) or dies with a traceback (a
    snapshot line that is not JSON: ``ValueError``); the user changes the port and nothing helps. Root cause:
    ``__main__.main`` maps only ``DataDirectoryError``/``RuntimeError`` to the data-directory message, and
    ``DataDirectory.open``/``_read`` let ``OSError`` and ``json`` errors out unwrapped."""
    data = make_data(tmp_path)
    done = refused_start("--data", str(data))
    assert done.returncode == 1, done.stderr[-2000:]
    assert "cannot use the data directory" in done.stderr, done.stderr[-2000:]
    assert "set PORT" not in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]


@pytest.mark.parametrize(
    ("setting", "value"),
    [("PORT", "3000x"), ("PORT", "70000"), ("SCHEDULE_SECONDS", "five"), ("SCHEDULE_SECONDS", "-1")],
)
def test_a_port_or_schedule_that_is_not_a_number_is_named_not_a_traceback(setting: str, value: str) -> None:
    """``PORT=3000x make serve`` died in ``int()`` with a traceback; each setting is now checked and named."""
    done = refused_start(**{setting: value})
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"{setting}={value!r}" in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]


def test_the_banner_does_not_promise_the_template_rate_when_schedule_seconds_is_0(tmp_path: Path) -> None:
    """With ``SCHEDULE_SECONDS=0`` (documented: never on a timer, only ``POST /_local/schedule/run``) the
    banner says ``schedule: RecomputeFunction rate(5 minutes) (template rate)``: the user waits for a recompute
    that never comes. Root cause: ``__main__.main`` tests ``if local.schedule_seconds`` (0 is falsy) where
    ``LocalRuntime.start`` distinguishes ``None`` from ``<= 0``."""
    with serve(tmp_path / "serve.log") as served:  # SCHEDULE_SECONDS=0
        banner = served.log.read_text()
    (line,) = [line for line in banner.splitlines() if line.strip().startswith("schedule:")]
    assert "template rate" not in line, line


# --------------------------------------------------------------------------------------------- data directory
def test_writes_answered_while_the_disk_is_full_are_kept_or_refused(tmp_path: Path) -> None:
    """When the data directory cannot be written (disk full; simulated with RLIMIT_FSIZE, which fails the
    same ``write`` with EFBIG), every write still answers 201 but is not kept: after a restart most of them
    are gone, and once a journal write has failed no later write is ever kept again ("ValueError: write to
    closed file" on each). Root cause: persistence.py ``_record`` swallows the ``OSError`` (moto has already
    answered success; motofix's listener guard swallows the rest), and ``snapshot()`` leaves ``_journal``
    pointing at a closed file when closing the old journal fails (its buffered, torn line cannot be flushed)."""
    data, log = tmp_path / "data", tmp_path / "serve.log"
    with serving(data, log):  # seeded, journal of a few KB
        pass

    def full_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    answered: list[str] = []
    with _process(data, log, preexec=full_disk) as (process, url):
        for n in range(30):
            body = {"project": "full", "environment": "production", "finished_at": 1709294400 + n, "version": str(n)}
            response = requests.post(f"{url}/api/Spaces-1/deployments", json=body, headers=HEADERS, timeout=TIMEOUT)
            if response.status_code == 201:
                answered.append(response.json()["id"])
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    with serving(data, log) as url:
        kept = _listed(url, "full")
    assert set(answered) <= kept, f"{len(answered)} answered 201, {len(set(answered) & kept)} kept"


def test_ctrl_c_during_a_request_keeps_everything_the_request_answered(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT) while requests are in flight: ``stop()`` closes the data directory and deletes the
    tables without waiting for them, so a batch still running answers 200 with every item 201 but only part
    of it is in the journal (seen: 294 of 500 after the restart), or answers 500 with part of it stored, or
    the process exits before answering at all (the client sees the connection dropped).
    Root cause: server.py ``LocalRuntime.stop`` calls ``runtime.stop_aws()`` (``DataDirectory.close``, then
    ``_delete_resources``) while HTTP handler threads (``daemon_threads = True``) still hold ``runtime.lock``;
    it should stop accepting, then wait for the requests in progress (take ``runtime.lock``) before closing."""
    data, log = tmp_path / "data", tmp_path / "serve.log"
    journal = data / "dynamodb.0.log"
    results: dict[str, Any] = {}
    with _process(data, log) as (process, url):
        before = journal.stat().st_size

        def batch(project: str) -> None:
            items = [
                {"project": project, "environment": "production", "finished_at": 1709294400 + 60 * n}
                for n in range(500)
            ]
            try:
                response = requests.post(
                    f"{url}/api/Spaces-1/deployments/batch", json={"deployments": items}, headers=HEADERS, timeout=120
                )
                results[project] = (response.status_code, response.json())
            except (requests.RequestException, ValueError) as error:
                results[project] = (None, repr(error))

        senders = [threading.Thread(target=batch, args=(p,)) for p in ("ctrl-c-a", "ctrl-c-b")]
        for sender in senders:
            sender.start()
        deadline = time.monotonic() + 30
        while journal.stat().st_size == before and time.monotonic() < deadline:
            time.sleep(0.01)  # the first batch's writes have begun
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        for sender in senders:
            sender.join(timeout=120)
    outcome: dict[str, tuple[Any, int, int]] = {}  # project: status answered, items answered 201, of them kept
    with serving(data, log) as url:
        for project in ("ctrl-c-a", "ctrl-c-b"):
            status, answer = results[project]
            created = (
                {r["deployment"]["id"] for r in answer["results"] if r["status"] == 201} if status == 200 else set()
            )
            outcome[project] = (
                status if status is not None else answer[:120],
                len(created),
                len(created & _listed(url, project)),
            )
    assert outcome == dict.fromkeys(("ctrl-c-a", "ctrl-c-b"), (200, 500, 500)), outcome
