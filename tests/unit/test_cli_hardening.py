"""Hardening of the CI command (cli/) against misbehaving servers, odd settings and older Pythons.

The first part is a review's: each test is named for the behaviour it keeps, and its docstring tells the
defect it proved. The second part covers the rest of what the fixes changed. The command
runs as a CI job runs it (``python -m dora_insights_cli`` in a clean environment) against tiny stdlib
servers that misbehave on purpose; no local runtime needed.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dora_insights_cli.client import Api
from dora_insights_cli.config import Connection, Value, _parse_flat
from tests.support.raw_server import RawServer
from tests.unit.cli.ci_variables import job

ROOT = Path(__file__).resolve().parents[2]
SPACE = "Spaces-1"
KEY = "review-secret-key-0123456789"
EXIT_CODES = {0, 1, 2, 3, 4, 5, 6}
DEPLOYMENT = ("deployment", "--service", "shop", "--env", "production", "--skip-git")


def run_cli(
    *args: str,
    url: str,
    key: str = KEY,
    env: dict[str, str] | None = None,
    python: str = sys.executable,
    timeout: float = 60,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    variables = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(cwd or ROOT / "tests"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(ROOT / "cli" / "src"),
        "DORA_INSIGHTS_URL": url,
        "DORA_INSIGHTS_SPACE": SPACE,
        "DORA_INSIGHTS_API_KEY": key,
        **(env or {}),
    }
    return subprocess.run(  # noqa: S603
        [python, "-m", "dora_insights_cli", *args],
        env=variables,
        cwd=cwd or "/",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


Handler = Callable[[BaseHTTPRequestHandler], None]


class Server:
    """A stdlib HTTP server whose every request goes to ``handle``; requests are recorded."""

    def __init__(self, handle: Handler, host: str = "127.0.0.1") -> None:
        self.requests: list[dict[str, Any]] = []
        server = self

        class _H(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                handle(self)

            do_GET = do_POST = do_DELETE = do_PUT = _any  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), _H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    made: list[Server] = []
    yield made
    for s in made:
        s.close()


def _reply(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]) -> None:
    h.send_response(status)
    for name, value in headers.items():
        h.send_header(name, value)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


# ----------------------------------------------------------------------------------- losing a deployment
def test_a_200_html_page_answering_the_post_is_not_reported_recorded(servers: list[Server]) -> None:
    """A URL pointing at the wrong thing (a proxy's login page, a SPA, a 'maintenance' page that answers 200
    HTML): the command prints "Already recorded ... stored once" and exits 0. Nothing was stored; the
    deployment is lost with a green job. The 2xx answer is never checked to be the service's JSON."""
    server = Server(
        lambda h: _reply(h, 200, b"<html><body>Please sign in</body></html>", {"Content-Type": "text/html"})
    )
    servers.append(server)

    done = run_cli(*DEPLOYMENT, "--retries", "0", url=f"http://127.0.0.1:{server.port}")

    assert "recorded" not in done.stdout.lower(), done.stdout
    assert done.returncode != 0, done.stdout + done.stderr


def test_a_redirect_is_not_followed_so_the_post_never_becomes_a_get(servers: list[Server]) -> None:
    """An http:// URL behind a load balancer that redirects to https (301), or a moved base path: urllib
    follows the redirect as a GET without the body, the GET (the list) answers 200, and the command prints
    "Already recorded" and exits 0. No POST ever reached the service."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.path.startswith("/old/"):
            _reply(h, 301, b"", {"Location": h.path[len("/old") :]})
        else:
            _reply(
                h, 200, json.dumps({"items": [], "next_cursor": None}).encode(), {"Content-Type": "application/json"}
            )

    server = Server(handle)
    servers.append(server)

    done = run_cli(*DEPLOYMENT, "--retries", "0", url=f"http://127.0.0.1:{server.port}/old")

    posts = [r for r in server.requests if r["method"] == "POST" and r["body"]]
    assert done.returncode != 0 or posts[1:], done.stdout + done.stderr  # either fail loudly or really POST
    assert "Already recorded" not in done.stdout


# --------------------------------------------------------------------------------------- leaking the key
def test_a_redirect_to_another_host_never_receives_the_api_key(servers: list[Server]) -> None:
    """The service (or something posing as it) answers 302 to another host: urllib copies every header,
    Authorization included, to the new host, so the API key goes to a third party (curl and requests drop
    it on a cross-host redirect)."""
    other = Server(lambda h: _reply(h, 200, b"{}", {"Content-Type": "application/json"}), host="127.0.0.1")
    servers.append(other)
    first = Server(lambda h: _reply(h, 302, b"", {"Location": f"http://localhost:{other.port}{h.path}"}))
    servers.append(first)

    run_cli("summary", "--format", "json", "--retries", "0", url=f"http://127.0.0.1:{first.port}")

    leaked = [r["headers"] for r in other.requests if KEY in json.dumps(r["headers"])]
    assert not leaked, leaked


def test_credentials_in_the_service_url_are_never_printed() -> None:
    """API.md says the service takes the key as the password of HTTP Basic in the URL
    (https://ci:<key>@host). The CLI neither uses it (the userinfo becomes part of the host name:
    "Name or service not known") nor hides it: the error message and --dry-run print the whole URL,
    key included, in the CI log."""
    secret = "TOPSECRETKEY-abcdef0123"
    url = f"http://ci:{secret}@127.0.0.1:9"

    failed = run_cli(*DEPLOYMENT, "--retries", "0", url=url)
    dry = run_cli(*DEPLOYMENT, "--dry-run", url=url)

    assert secret not in failed.stdout + failed.stderr, failed.stderr
    assert secret not in dry.stdout + dry.stderr, dry.stdout


def test_an_api_key_with_an_inner_newline_is_refused_redacted() -> None:
    """A secret pasted with a line break inside (two lines in a CI secret): http.client refuses the header
    with ``ValueError('Invalid header value b"Bearer <the whole key>"')``, uncaught: a traceback with the
    whole key in the CI log, and exit 1 (the gate's code)."""
    key = "abcdefghijklmnop\nqrstuvwxyz0123"

    done = run_cli(*DEPLOYMENT, "--retries", "0", url="http://127.0.0.1:9", key=key)

    assert "qrstuvwxyz0123" not in done.stderr + done.stdout, done.stderr[-400:]
    assert "Traceback" not in done.stderr
    assert done.returncode == 2, done.returncode  # a configuration error


def test_a_non_latin1_api_key_is_a_usage_error_not_a_traceback() -> None:
    """A key copied with an invisible character (zero-width space): UnicodeEncodeError from http.client,
    a traceback and exit 1, which the README reserves for "gate: below the minimum tier"."""
    done = run_cli(*DEPLOYMENT, "--retries", "0", url="http://127.0.0.1:9", key="abcdefghijklmnop\u200b")

    assert "Traceback" not in done.stderr, done.stderr[-300:]
    assert done.returncode == 2


# --------------------------------------------------------------------------------- odd answers, hanging
def test_a_truncated_gzip_answer_is_retried_not_a_traceback(servers: list[Server]) -> None:
    """A proxy that cuts a gzip answer short (or a corrupt one): EOFError / zlib.error are neither OSError
    nor HTTPException, so they escape the retry loop: a traceback and exit 1 (undocumented for
    `deployment`), instead of a retry and exit 6."""
    whole = gzip.compress(json.dumps({"id": "x", "project": "shop"}).encode())
    server = Server(
        lambda h: _reply(
            h, 201, whole[: len(whole) // 2], {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        )
    )
    servers.append(server)

    done = run_cli(*DEPLOYMENT, "--retries", "0", url=f"http://127.0.0.1:{server.port}")

    assert "Traceback" not in done.stderr, done.stderr[-300:]
    assert done.returncode in EXIT_CODES - {1}


class _Trickle(RawServer):
    """Answers ``head`` at once, then ``drip`` every half second for a minute: never a long silence."""

    def __init__(self, head: bytes, drip: bytes) -> None:
        self.head, self.drip = head, drip
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        conn.recv(65536)
        conn.sendall(self.head)
        for _ in range(120):
            conn.sendall(self.drip)
            time.sleep(0.5)


# A 200 with a long Content-Length, its body a byte at a time.
_TRICKLED_BODY = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n", b" ")
# A status line, then a header line at a time: the headers never end.
_TRICKLED_HEADERS = (b"HTTP/1.1 200 OK\r\n", b"X-Slow: 1\r\n")
# A 200 without Content-Length (the body ends when the connection does), a byte at a time.
_TRICKLED_UNSIZED = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{", b" ")


def test_a_server_trickling_its_answer_is_cut_at_the_timeout() -> None:
    """`--timeout` is per socket operation, not per request: a server (or proxy) that sends a byte every
    half second keeps `dora-insights summary --timeout 2 --retries 0` running for a minute (as long as it
    trickles: forever, for a hostile one). A pipeline step should end within about the timeout."""
    server = _Trickle(*_TRICKLED_BODY)
    try:
        started = time.monotonic()
        try:
            run_cli("summary", "--timeout", "2", "--retries", "0", url=f"http://127.0.0.1:{server.port}", timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running after {time.monotonic() - started:.0f} s with --timeout 2 --retries 0")
    finally:
        server.close()


def test_repeated_503_with_retry_after_1_waits_longer_each_time() -> None:
    """API.md (Errors): a 503 always carries `Retry-After: 1`; "send the same request again, after a pause
    that grows if the 503 repeats". The command waits exactly what Retry-After says every time (1, 1, 1,
    1 s), so under contention from many pipelines it gives up (exit 6) after about 4 s."""
    import urllib.error
    from contextlib import contextmanager
    from email.message import Message

    def err() -> urllib.error.HTTPError:
        headers = Message()
        headers["Retry-After"] = "1"
        return urllib.error.HTTPError("http://dora.test/x", 503, "x", headers, io.BytesIO(b'{"message":"retry"}'))

    steps: list[Any] = [err(), err(), err(), err()]

    class _Ok:
        status = 201
        headers = Message()

        def read(self) -> bytes:
            return b'{"id": "d"}'

    @contextmanager
    def opener(request: Any, timeout: float) -> Iterator[Any]:
        if steps:
            raise steps.pop(0)
        yield _Ok()

    waits: list[float] = []
    connection = Connection("http://dora.test", SPACE, Value(KEY, "env"), 5, 4, 1.0)
    Api(connection, log=io.StringIO(), sleep=waits.append, opener=opener).request("POST", "/x", body={"id": "d"})

    assert waits[-1] > waits[0], waits


# ------------------------------------------------------------------------------------------ idempotency
def _dry_run_id(*flags: str) -> str:
    """The id ``deployment --dry-run`` would send for service shop to production from one GitHub job."""
    done = run_cli(
        "deployment",
        "--env",
        "production",
        *flags,
        "--dry-run",
        "--skip-git",
        url="http://127.0.0.1:9",
        env=job("github", name="shop", run="777").variables,
    )
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout.split("\n\n", 1)[1])["id"])


def test_two_channels_deployed_from_one_job_get_two_ids() -> None:
    """One job deploys the same service to the same environment on two channels (`--channel stable`, then
    `--channel beta`): the id's hash covers project, environment, tenant and state but not the channel,
    so both get the same id and the second is answered "Already recorded" (409 -> the first stands). A
    channel is part of the stream (API.md: project, channel, environment and tenant)."""
    ids = [_dry_run_id("--channel", channel) for channel in ("stable", "beta")]

    assert ids[0] != ids[1], ids


# ------------------------------------------------------------------------------------------- Python 3.9
def _python39() -> str | None:
    found = shutil.which("python3.9")
    if found and subprocess.run([found, "-V"], capture_output=True, check=False).returncode == 0:  # noqa: S603
        return found
    pyenv = Path("/root/.pyenv/versions")
    candidates = sorted(pyenv.glob("3.9*/bin/python3.9")) if pyenv.is_dir() else []
    return str(candidates[-1]) if candidates else None


@pytest.mark.parametrize("value", ["2024-03-01T12:00:00.5Z", "2024-03-01T12:00:00+0000"])
def test_on_python_39_common_iso_times_are_read(value: str) -> None:
    """`--started-at 2024-03-01T12:00:00.5Z` (one fraction digit) or `...+0000` (`date +%FT%T%z`) work on
    3.11 and exit 2 "not an ISO-8601 time" on 3.9/3.10, the Pythons the README promises: datetime
    .fromisoformat before 3.11 takes only what isoformat() writes (times.py:33)."""
    python = _python39()
    if python is None:
        pytest.skip("no python3.9 here")

    done = run_cli(*DEPLOYMENT, "--started-at", value, "--dry-run", url="http://127.0.0.1:9", python=python)

    assert done.returncode == 0, done.stderr


def test_the_flat_config_reader_of_python_before_311_keeps_non_ascii_values() -> None:
    """On Python 3.9/3.10 (no tomllib) `service = "café"` in .dora-insights.toml becomes "cafÃ©": the
    value is encoded to UTF-8 and decoded as unicode_escape (latin-1), so deployments go to a project
    whose name is mojibake (config.py:79)."""
    assert _parse_flat('service = "café"\nenv = "produção"\n') == {"service": "café", "env": "produção"}


def test_negative_retries_are_a_usage_error() -> None:
    """`--retries -1` (or a templated `--retries $N` left negative) passes argparse; the send loop runs no
    attempt and reaches `raise AssertionError("unreachable")`: a traceback, exit 1."""
    done = run_cli(*DEPLOYMENT, "--retries", "-1", url="http://127.0.0.1:9")

    assert "Traceback" not in done.stderr, done.stderr[-200:]
    assert done.returncode == 2


# ===================================================================================== beyond the review
def _json(h: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    _reply(h, status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})


def _connection(url: str = "http://dora.test", *, retries: int = 4, timeout: float = 5) -> Connection:
    return Connection(url, SPACE, Value(KEY, "DORA_INSIGHTS_API_KEY"), timeout, retries, 1.0)


class _Ok:
    """An answer of a test's opener (``read()`` reads it whole)."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        from email.message import Message

        self.status = status
        self.headers = Message()
        for name, value in (headers or {}).items():
            self.headers[name] = value
        self._body = body

    def read(self) -> bytes:
        return self._body


def _opener(*answers: Any) -> Callable[..., Any]:
    from contextlib import contextmanager

    steps = list(answers)

    @contextmanager
    def opener(request: Any, timeout: float) -> Iterator[Any]:
        step = steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        yield step

    return opener


# ----------------------------------------------------------------------- what counts as recorded (defect 1)
@pytest.mark.parametrize(
    ("status", "body", "recorded"),
    [
        (201, {"id": "github-1-1-abc", "project": "shop"}, True),
        (200, {"id": "github-1-1-abc", "project": "shop"}, True),  # stored already, under the id sent
        (201, {"id": "another-id"}, True),  # created: the service names what it stored
        (200, {"id": "another-id"}, False),  # "stored already" of another id: not this deployment
        (200, {"items": [], "next_cursor": None}, False),  # a list, as a redirect-turned-GET would read
        (200, "<html>sign in</html>", False),
        (202, {"id": "github-1-1-abc"}, False),
        (204, None, False),
    ],
)
def test_only_the_services_answer_to_a_create_counts_as_recorded(status: int, body: Any, recorded: bool) -> None:
    from dora_insights_cli.client import Response, created
    from dora_insights_cli.errors import REJECTED, CliError

    response = Response(status, body, {"content-type": "application/json"})
    if recorded:
        assert created(response, "github-1-1-abc", _connection(), what="sending")["id"] == body["id"]
        return
    with pytest.raises(CliError) as raised:
        created(response, "github-1-1-abc", _connection(), what="sending")
    assert raised.value.code == REJECTED
    assert "not the service's answer" in raised.value.message and KEY not in raised.value.message


def test_a_failure_opened_against_an_html_page_is_not_reported_opened(servers: list[Server]) -> None:
    server = Server(lambda h: _reply(h, 200, b"<html>maintenance</html>", {"Content-Type": "text/html"}))
    servers.append(server)

    done = run_cli("failure", "open", "--service", "shop", "--retries", "0", url=f"http://127.0.0.1:{server.port}")

    assert done.returncode == 5, done.stderr
    assert "Opened" not in done.stdout and "not the service's answer" in done.stderr


def test_changes_sent_to_an_html_page_are_not_reported_sent(servers: list[Server], tmp_path: Path) -> None:
    server = Server(lambda h: _reply(h, 200, b"<html>sign in</html>", {"Content-Type": "text/html"}))
    servers.append(server)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    stamp = {"GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com", "GIT_COMMITTER_NAME": "ci"}
    stamp["GIT_COMMITTER_EMAIL"] = "ci@example.com"
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "one"]):
        subprocess.run(["git", "-C", str(checkout), *args], check=True, env={**os.environ, **stamp})  # noqa: S603,S607

    done = run_cli(
        "changes",
        "--git-repository-url",
        "https://git.example.com/a/b",
        "--retries",
        "0",
        url=f"http://127.0.0.1:{server.port}",
        cwd=checkout,
    )

    assert done.returncode == 5, done.stderr
    assert "Sent" not in done.stdout and "not the service's answer" in done.stderr


# ----------------------------------------------------------------------------------- redirects (2 and 3)
def test_a_redirect_fails_naming_its_location_without_credentials(servers: list[Server]) -> None:
    server = Server(lambda h: _reply(h, 301, b"", {"Location": "https://user:pw-in-location@dora.example/api/x"}))
    servers.append(server)

    done = run_cli(*DEPLOYMENT, "--retries", "0", url=f"http://127.0.0.1:{server.port}")

    assert done.returncode == 5
    assert "301 Moved Permanently" in done.stderr and "redirects to https://dora.example/api/x" in done.stderr
    assert "pw-in-location" not in done.stderr
    assert [r["method"] for r in server.requests] == ["POST"]  # followed by nothing


def test_proxies_from_the_environment_still_apply(servers: list[Server]) -> None:
    """The opener that follows no redirect keeps urllib's ProxyHandler: HTTP_PROXY is used, NO_PROXY bypasses."""
    proxy = Server(lambda h: _json(h, 200, {"deployments": 0, "from": "a", "to": "b"}))
    servers.append(proxy)
    url = "http://dora-service.invalid"

    through = run_cli(
        "summary", "--format", "json", "--retries", "0", url=url, env={"HTTP_PROXY": f"http://127.0.0.1:{proxy.port}"}
    )
    bypassed = run_cli(
        "summary",
        "--format",
        "json",
        "--retries",
        "0",
        url=url,
        env={"HTTP_PROXY": f"http://127.0.0.1:{proxy.port}", "NO_PROXY": "dora-service.invalid"},
    )

    assert through.returncode == 0, through.stderr
    assert proxy.requests[0]["path"].startswith(f"{url}/api/{SPACE}/summary")  # the absolute form, for a proxy
    assert bypassed.returncode == 6 and len(proxy.requests) == 1


# --------------------------------------------------------------------------------- the service URL (4)
def test_the_key_in_the_service_url_is_used_and_never_shown(servers: list[Server]) -> None:
    server = Server(lambda h: _json(h, 201, {"id": "x", "project": "shop"}))
    servers.append(server)
    secret = "URLSECRETKEY-0123456789"

    done = run_cli(*DEPLOYMENT, "--retries", "0", url=f"http://ci:{secret}@127.0.0.1:{server.port}", key="")

    assert done.returncode == 0, done.stderr
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {secret}"
    assert secret not in done.stdout + done.stderr


def test_a_key_in_the_url_and_another_key_set_is_a_usage_error() -> None:
    secret = "URLSECRETKEY-0123456789"

    done = run_cli(*DEPLOYMENT, "--dry-run", url=f"https://ci:{secret}@dora.example")

    assert done.returncode == 2
    assert "keep one" in done.stderr and secret not in done.stderr and KEY not in done.stderr


def test_the_same_key_in_the_url_and_the_setting_is_fine() -> None:
    done = run_cli(*DEPLOYMENT, "--dry-run", url=f"https://ci:{KEY}@dora.example/")

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"POST https://dora.example/api/{SPACE}/deployments\n")
    assert KEY not in done.stdout + done.stderr


def test_a_percent_encoded_key_in_the_url_is_decoded() -> None:
    from dora_insights_cli.config import service_url

    base, key = service_url(Value("https://ci:a%2Fb%40c-0123456789@dora.example:8443/base/", "DORA_INSIGHTS_URL"))

    assert base == "https://dora.example:8443/base"
    assert key is not None and key.value == "a/b@c-0123456789" and "DORA_INSIGHTS_URL" in key.source


@pytest.mark.parametrize("url", ["https://", "https://:443", "http://dora.example:port", "ftp://dora.example"])
def test_service_urls_that_name_no_service_are_usage_errors(url: str) -> None:
    from dora_insights_cli.config import service_url
    from dora_insights_cli.errors import USAGE, CliError

    with pytest.raises(CliError) as raised:
        service_url(Value(url, "--url"))
    assert raised.value.code == USAGE


@pytest.mark.parametrize(
    ("url", "cleartext"),
    [
        ("http://dora.example", True),
        ("http://10.0.0.5:3000", True),
        ("http://127.0.0.1:3000", False),
        ("http://127.8.9.10", False),
        ("http://localhost:3000", False),
        ("http://[::1]:3000", False),
        ("https://dora.example", False),
    ],
)
def test_plain_http_to_another_machine_is_cleartext(url: str, cleartext: bool) -> None:
    from dora_insights_cli.config import sends_in_cleartext

    assert sends_in_cleartext(url) is cleartext


def test_plain_http_to_another_machine_warns_when_the_key_is_sent(tmp_path: Path) -> None:
    import argparse

    from dora_insights_cli.context import Context

    err = io.StringIO()
    ctx = Context(env={"DORA_INSIGHTS_API_KEY": KEY}, cwd=tmp_path, home=tmp_path, err=err)
    flags = {"url": "http://dora.example", "space": SPACE, "api_key": None, "config": None}
    args = argparse.Namespace(**flags, timeout=5.0, retries=0, retry_delay=1.0)

    ctx.api(args, need_key=False)  # --dry-run: nothing is sent
    assert err.getvalue() == ""
    ctx.api(args)
    assert "cleartext" in err.getvalue() and KEY not in err.getvalue()


# -------------------------------------------------------------------------------------- the key (5 and 6)
@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("abcdefgh ijklmnop", "a space at character 9"),
        ("abcdefghijkl\tmnop", "a tab at character 13"),
        ("abcdefghijkl\r\nmnop", "a carriage return"),
        ("abcdefghijklmnop\u00e9", "U+00E9"),
        ("ab\u200bcdefghijklmnop", "U+200B"),
    ],
)
def test_a_key_that_is_not_printable_ascii_is_refused_without_showing_it(key: str, says: str) -> None:
    from dora_insights_cli.config import check_key
    from dora_insights_cli.errors import USAGE, CliError

    with pytest.raises(CliError) as raised:
        check_key(Value(key, "DORA_INSIGHTS_API_KEY"))

    assert raised.value.code == USAGE and says in raised.value.message
    assert key[5:] not in raised.value.message and "\n" not in raised.value.message


def test_redact_never_prints_a_line_break() -> None:
    from dora_insights_cli.config import redact

    assert redact("ab\ncdefghijklmnop") == "ab?c…"


# ------------------------------------------------------------------------------- odd answers (7 and 8)
def test_gunzip_reads_every_member_and_refuses_what_is_cut_short_corrupt_or_too_large() -> None:
    from dora_insights_cli.client import BadAnswerError, _gunzip

    whole = gzip.compress(b'{"a": ') + gzip.compress(b"1}")
    assert _gunzip(whole) == b'{"a": 1}'
    assert _gunzip(gzip.compress(b"{}") + b"\x00\x00") == b"{}"
    with pytest.raises(BadAnswerError, match="cut short"):
        _gunzip(whole[:10])
    with pytest.raises(BadAnswerError, match="corrupt"):
        _gunzip(b"\x1f\x8b\x08garbage")
    with pytest.raises(BadAnswerError, match="larger than"):
        _gunzip(gzip.compress(b"0" * (3 * 1024 * 1024)), limit=2 * 1024 * 1024)


def test_a_corrupt_gzip_success_is_retried_and_the_message_keeps_the_status() -> None:
    from dora_insights_cli.client import NetworkError

    cut = gzip.compress(b'{"id": "d"}')[:8]
    log = io.StringIO()
    api = Api(
        _connection(retries=1),
        log=log,
        sleep=lambda s: None,
        opener=_opener(*[_Ok(201, cut, {"Content-Encoding": "gzip"})] * 2),
    )

    with pytest.raises(NetworkError) as raised:
        api.request("POST", "/x", body={"id": "d"})

    assert raised.value.attempts == 2
    assert "201 Created with a gzip body cut short" in raised.value.reason
    assert "retry 1 of 1" in log.getvalue()


def test_a_corrupt_gzip_error_answer_keeps_its_status(servers: list[Server]) -> None:
    server = Server(lambda h: _reply(h, 401, b"\x1f\x8b\x08garbage", {"Content-Encoding": "gzip"}))
    servers.append(server)

    done = run_cli(*DEPLOYMENT, "--retries", "0", url=f"http://127.0.0.1:{server.port}")

    assert done.returncode == 3, done.stderr  # the 401, not a network error
    assert "401 Unauthorized" in done.stderr and "Traceback" not in done.stderr


def test_an_answer_over_the_size_cap_is_refused() -> None:
    import urllib.response
    from email.message import Message

    from dora_insights_cli.client import BadAnswerError, _read

    def answer(size: int) -> urllib.response.addinfourl:
        return urllib.response.addinfourl(io.BytesIO(b"x" * size), Message(), "http://dora.test/x", 200)

    assert len(_read(answer(1024), limit=1024)) == 1024
    with pytest.raises(BadAnswerError, match="larger than"):
        _read(answer(1025), limit=1024)


def test_a_server_trickling_its_headers_is_cut_at_the_timeout() -> None:
    server = _Trickle(*_TRICKLED_HEADERS)
    try:
        started = time.monotonic()
        done = run_cli(
            *DEPLOYMENT, "--timeout", "1.5", "--retries", "0", url=f"http://127.0.0.1:{server.port}", timeout=15
        )
        took = time.monotonic() - started
    finally:
        server.close()

    assert done.returncode == 6, done.stderr
    assert "timed out" in done.stderr and took < 10


def test_a_body_cut_at_the_deadline_is_not_taken_for_the_whole_answer() -> None:
    """Shutting the socket ends a body without a length as if complete: the deadline is what says it was not."""
    server = _Trickle(*_TRICKLED_UNSIZED)
    try:
        done = run_cli("summary", "--timeout", "1", "--retries", "0", url=f"http://127.0.0.1:{server.port}", timeout=15)
    finally:
        server.close()

    assert done.returncode == 6, done.stderr
    assert "no whole answer within 1 s" in done.stderr


def test_the_deadline_does_not_cut_a_prompt_answer(servers: list[Server]) -> None:
    server = Server(lambda h: _json(h, 201, {"id": "x", "project": "shop"}))
    servers.append(server)

    done = run_cli(*DEPLOYMENT, "--timeout", "0.5", "--retries", "0", url=f"http://127.0.0.1:{server.port}")

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Recorded deployment")


# ------------------------------------------------------------------------------------------- retries (9)
def test_retry_after_is_a_floor_and_the_backoff_still_grows() -> None:
    import urllib.error
    from email.message import Message

    def refused(status: int, retry_after: str) -> urllib.error.HTTPError:
        headers = Message()
        headers["Retry-After"] = retry_after
        return urllib.error.HTTPError("http://dora.test/x", status, "x", headers, io.BytesIO(b"{}"))

    waits: list[float] = []
    answers = [refused(429, "7"), refused(503, "0"), refused(503, "0"), _Ok(200, b"{}")]
    Api(_connection(), log=io.StringIO(), sleep=waits.append, opener=_opener(*answers)).request("GET", "/x")

    assert waits[0] == 7.0  # what Retry-After asks, above the backoff
    assert 1.0 <= waits[1] <= 2.0 and 2.0 <= waits[2] <= 4.0  # Retry-After: 0 does not cancel the backoff


def test_a_huge_retry_count_does_not_overflow_the_backoff() -> None:
    from dora_insights_cli.client import MAX_WAIT, backoff

    assert backoff(5000, 1.0, rand=lambda: 1.0) == MAX_WAIT


def test_a_connection_with_negative_retries_still_makes_one_attempt() -> None:
    api = Api(_connection(retries=-3), log=io.StringIO(), sleep=lambda s: None, opener=_opener(_Ok(200, b"{}")))

    assert api.request("GET", "/x").status == 200


# ----------------------------------------------------------------------------------------- the id (10)
def test_no_channel_and_the_default_channel_keep_the_id_they_had() -> None:
    from dora_insights_cli.ci import detect, idempotency_id

    variables = job("github", name="shop", run="777").variables
    run = detect(variables)
    assert run is not None
    before = idempotency_id(run, "deployment", "shop", "production", "", "Success")  # the id before channels counted

    ids = [_dry_run_id(*flags) for flags in ((), ("--channel", "Default"), ("--channel", "default"))]

    assert ids == [before, before, before]


def test_channels_differing_only_in_case_are_one_stream() -> None:
    ids = {_dry_run_id("--channel", channel) for channel in ("Beta", "beta")}

    assert len(ids) == 1  # the service's catalogue matches names case-insensitively


# ------------------------------------------------------------------------------------------ times (11)
@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024-03-01T12:00:00.5Z", "2024-03-01T12:00:00.500Z"),
        ("2024-03-01T12:00:00.123456789Z", "2024-03-01T12:00:00.123Z"),
        ("2024-03-01T12:00:00+0000", "2024-03-01T12:00:00.000Z"),
        ("2024-03-01T14:00:00+02", "2024-03-01T12:00:00.000Z"),
        ("2024-03-01T06:30:00-05:30", "2024-03-01T12:00:00.000Z"),
        ("2024-03-01 12:00:00.1234567+00:00", "2024-03-01T12:00:00.123Z"),  # Azure writes seven digits
        ("2024-03-01T12:00Z", "2024-03-01T12:00:00.000Z"),
        ("2024-03-01", "2024-03-01T00:00:00.000Z"),
    ],
)
def test_iso_times_parse_alike_on_every_python(text: str, iso: str) -> None:
    from dora_insights_cli.times import format_time, parse_time

    assert format_time(parse_time(text)) == iso


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-01T12:00:00+24:00",
        "2024-03-01T12:00:00+01:60",
        "2024-02-30T00:00:00Z",
        "9" * 30,
        "9999-12-31T23:00:00-05:00",
    ],
)
def test_impossible_times_are_value_errors(text: str) -> None:
    from dora_insights_cli.times import parse_time

    with pytest.raises(ValueError, match="is not an ISO-8601 time"):
        parse_time(text)


def test_python_39_reads_the_time_forms_and_a_non_ascii_config_file(tmp_path: Path) -> None:
    """The whole command under a real 3.9: ISO forms of 3.11's fromisoformat, the flat config reader."""
    python = _python39()
    if python is None:
        pytest.skip("no python3.9 here")
    (tmp_path / ".dora-insights.toml").write_text('service = "caf\\u00e9-é"\nenv = "produção"\n', encoding="utf-8")

    done = run_cli(
        "deployment",
        "--skip-git",
        "--started-at",
        "2024-03-01T12:00:00.123456789-0130",
        "--dry-run",
        url="http://127.0.0.1:9",
        python=python,
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout.split("\n\n", 1)[1])
    assert (body["project"], body["environment"], body["started_at"]) == (
        "café-é",
        "produção",
        "2024-03-01T13:30:00.123Z",
    )


# ------------------------------------------------------------------------------------ config files (12)
@pytest.mark.parametrize(
    ("line", "value"),
    [
        ('k = "a\\\\b"', "a\\b"),
        ('k = "say \\"hi\\""', 'say "hi"'),
        ('k = "t\\tn\\nr\\rb\\bf\\f"', "t\tn\nr\rb\bf\f"),
        ('k = "\\u00e9\\U0001F600"', "é\U0001f600"),
        ("k = 'C:\\path\\n'", "C:\\path\\n"),  # a literal string: no escapes
        ('k = "é ✓"  # a comment', "é ✓"),
    ],
)
def test_the_flat_reader_unescapes_as_toml_does(line: str, value: str) -> None:
    import tomllib  # what Python 3.11+ reads the file with

    assert _parse_flat(line) == {"k": value}
    assert tomllib.loads(line) == {"k": value}


@pytest.mark.parametrize("line", ['k = "\\x41"', 'k = "\\uD800"', 'k = "\\U00110000"', 'k = "\\q"'])
def test_the_flat_reader_refuses_what_toml_refuses(line: str) -> None:
    with pytest.raises(ValueError, match=r"escape|scalar value"):
        _parse_flat(line)


# ----------------------------------------------------------------------------------------- flags (13)
@pytest.mark.parametrize(
    "flags",
    [
        ("--timeout", "0"),
        ("--timeout", "-1"),
        ("--timeout", "nan"),
        ("--timeout", "1e300"),
        ("--retry-delay", "-0.5"),
        ("--retry-delay", "inf"),
        ("--retries", "two"),
    ],
)
def test_connection_flags_out_of_range_exit_2(flags: tuple[str, str]) -> None:
    done = run_cli(*DEPLOYMENT, *flags, url="http://127.0.0.1:9")

    assert done.returncode == 2 and flags[0] in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("command", "flags"),
    [("summary", ("--days", "-1")), ("summary", ("--days", "10000000")), ("changes", ("--max-count", "-1"))],
)
def test_other_counts_out_of_range_exit_2(command: str, flags: tuple[str, str]) -> None:
    done = run_cli(command, *flags, url="http://127.0.0.1:9")

    assert done.returncode == 2 and flags[0] in done.stderr
    assert "Traceback" not in done.stderr


def test_retry_delay_0_is_allowed() -> None:
    done = run_cli(*DEPLOYMENT, "--retry-delay", "0", "--dry-run", url="http://127.0.0.1:9")

    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("command", [("summary",), ("gate", "--metric", "deployment_frequency", "--min-tier", "low")])
def test_a_summary_read_from_an_html_page_is_rejected_not_a_usage_error(
    servers: list[Server], command: tuple[str, ...]
) -> None:
    """A proxy's sign-in page answering the summary read with 200 is not the service's answer: exit 5
    (rejected, as for a create), naming the URL to check; it was exit 2 (usage), which sent people to
    their flags. ``gate`` reads the same summary and must not pass or fail the gate on it."""
    server = Server(lambda h: _reply(h, 200, b"<html>sign in</html>", {"Content-Type": "text/html"}))
    servers.append(server)

    done = run_cli(*command, "--retries", "0", url=f"http://127.0.0.1:{server.port}")

    assert done.returncode == 5, done.stderr
    assert "not the service's answer" in done.stderr and f"127.0.0.1:{server.port}" in done.stderr
    assert done.stdout == ""
