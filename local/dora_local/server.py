"""``LocalRuntime``: the HTTP front, the SQS poller and the schedule around a ``Runtime``.

It is what ``make serve`` runs and what the end-to-end tests start in-process:

    local = LocalRuntime(port=0).start()
    requests.get(f"{local.url}/health")
    local.stop()
"""

from __future__ import annotations

import functools
import json
import os
import re
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dora_local import clock, faults, template
from dora_local.events import HttpResponse, http_event, http_response
from dora_local.runtime import Delivery, Runtime
from dora_local.template import Function, QueueTrigger, ScheduleTrigger

__all__ = ["MAX_REQUEST_BYTES", "LocalRuntime", "http_event"]

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
DRAIN_TIMEOUT_SECONDS = 60.0
STOP_WAIT_SECONDS = 40.0  # how long stop() waits for the HTTP requests in progress before closing the data
LINGER_SECONDS = 2.0  # after a framing error: how long a client may stay quiet before the connection closes
HOST = "127.0.0.1"  # the address the front binds (loopback only)
LOCAL_HOSTS = frozenset({HOST, "localhost", "[::1]"})  # the Host names it answers (any port): no DNS rebinding
POLL_WAIT_SECONDS = 1  # long polling, as short as the brief allows: drain never waits long for the poller
_NOT_FOUND = {"message": "Not Found"}
# Lambda's synchronous invocation payload ("Exceeded maximum allowed payload size (6291556 bytes)"): an event
# over it never reaches the function; API Gateway answers 413 {"message": "Request Too Long"}.
LAMBDA_EVENT_BYTES = 6_291_556
_LOCAL_POST_ROUTES = ("/_local/schedule/run", "/_local/queues/drain", "/_local/clock/advance")
_READ_METHODS = ("GET", "HEAD", "OPTIONS")
_DIGITS = re.compile(rb"[0-9]+")
_HEX = re.compile(rb"[0-9A-Fa-f]+")
_PORT = re.compile(r"(:[0-9]*)?")


class _Server(ThreadingHTTPServer):
    """The local HTTP front. A client that goes away mid-request (a browser that navigated on, a script
    that timed out) is dropped quietly, as API Gateway drops it; any other failure is printed. Its backlog
    is the system's (the default 5 reset connections under 64 parallel clients)."""

    request_queue_size = socket.SOMAXCONN

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # BrokenPipeError, ConnectionResetError, ...
            return
        super().handle_error(request, client_address)


class LocalRuntime:
    """The whole service on loopback: ``start()``, then ``url`` and ``api_key``; ``stop()``.

    ``port``: the HTTP port (``0``: a free one; ``None``: ``$PORT`` or 3000). ``schedule_seconds``:
    run the scheduled functions every so many seconds instead of their template rate (``None``:
    ``$SCHEDULE_SECONDS`` or the template; ``0`` or less: never on a timer, only on
    ``POST /_local/schedule/run``). ``quiet``: no access log on stderr. ``data_dir``: keep the DynamoDB
    tables there across restarts (``dora_local.persistence``; None: in memory only), ``fresh``: empty it first.
    """

    def __init__(
        self,
        port: int | None = None,
        schedule_seconds: float | None = None,
        *,
        api_key: str | None = None,
        webhook_secret: str | None = None,
        quiet: bool | None = None,
        poll: bool = True,
        data_dir: Path | None = None,
        fresh: bool = False,
    ) -> None:
        self.port = int(os.environ.get("PORT", "3000")) if port is None else port
        configured = os.environ.get("SCHEDULE_SECONDS")
        self.schedule_seconds = (
            schedule_seconds if schedule_seconds is not None else (float(configured) if configured else None)
        )
        self.quiet = os.environ.get("DORA_LOCAL_QUIET") == "1" if quiet is None else quiet
        self.poll = poll
        self.runtime = Runtime(api_key=api_key, webhook_secret=webhook_secret, data_dir=data_dir, fresh=fresh)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: ThreadingHTTPServer | None = None
        self._delivery_lock = threading.Lock()  # the poller and drain never hold the same messages
        self._background = threading.Event()  # set: the poller and the schedule may run
        self._background.set()
        self._requests = threading.Condition()  # guards the two below
        self._in_flight = 0  # HTTP requests being answered
        self._closing = False  # stop() has begun: new requests are refused (503)

    # --- lifecycle -------------------------------------------------------------------------------
    @property
    def api_key(self) -> str:
        return self.runtime.api_key

    @property
    def webhook_secret(self) -> str:
        return self.runtime.webhook_secret

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the local runtime is not started")
        return f"http://{HOST}:{self._server.server_address[1]}"

    @property
    def endpoint(self) -> str:
        """moto's URL (the AWS endpoint of the functions)."""
        return self.runtime.endpoint

    def start(self) -> LocalRuntime:
        """Start moto, create the resources, seed, then serve HTTP and run the poller and the schedule."""
        self._stop.clear()
        with self._requests:
            self._closing = False
        self.runtime.start_aws()
        try:
            self.runtime.seed()
            self._server = _Server((HOST, self.port), _handler_for(self))
        except BaseException:
            self.runtime.stop_aws()
            raise
        self._server.daemon_threads = True
        self._spawn(self._server.serve_forever, "dora-local-http")
        if self.poll and self.runtime.queue_triggers():
            self._spawn(self._poll, "dora-local-sqs-poller")
        if self.schedule_seconds is None or self.schedule_seconds > 0:
            for function, trigger in self.runtime.schedule_triggers():
                if trigger.enabled:
                    self._spawn(
                        functools.partial(self._schedule, function, trigger),
                        f"dora-local-schedule-{function.logical_id}-{trigger.name}",
                    )
        return self

    def stop(self) -> None:
        """Stop serving, wait for the HTTP requests in progress (at most :data:`STOP_WAIT_SECONDS`; a request
        arriving meanwhile answers 503) and the background threads, then close the data directory, stop moto."""
        self._stop.set()
        with self._requests:
            self._closing = True
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._wait_for_requests()
        for thread in self._threads:
            thread.join(timeout=POLL_WAIT_SECONDS + 15)
            if thread.is_alive():
                print(f"{thread.name} did not stop in time", file=sys.stderr)
        self._threads.clear()
        self.runtime.stop_aws()
        self._server = None

    def _wait_for_requests(self) -> None:
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        with self._requests:
            if self._in_flight:
                print(f"waiting for {self._in_flight} request(s) in progress", file=sys.stderr, flush=True)
            while self._in_flight and (left := deadline - time.monotonic()) > 0:
                self._requests.wait(left)
            if self._in_flight:
                print(
                    f"{self._in_flight} request(s) still running after {STOP_WAIT_SECONDS:g}s: stopping anyway "
                    "(their clients get no answer; what they wrote from now on is not kept)",
                    file=sys.stderr,
                    flush=True,
                )

    def _begin_request(self) -> bool:
        """Count a request in progress (False: the runtime is stopping, refuse it)."""
        with self._requests:
            if self._closing:
                return False
            self._in_flight += 1
            return True

    def _end_request(self) -> None:
        with self._requests:
            self._in_flight -= 1
            self._requests.notify_all()

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def pause_background(self) -> None:
        """Stop the poller and the schedule from starting work (HTTP, drain and schedule/run still
        serve); returns once a delivery in progress is done. Tests use it so that nothing runs a function
        in the background while tests of other suites share the process."""
        self._background.clear()
        with self._delivery_lock:
            pass
        with self.runtime.lock:
            pass

    def resume_background(self) -> None:
        """Let the poller and the schedule run again."""
        self._background.set()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # --- SQS -------------------------------------------------------------------------------------
    def _poll(self) -> None:
        """Deliver messages as Lambda's event source mapping does, until ``stop()``."""
        while not self._stop.is_set():
            moved = 0
            for function, trigger in self.runtime.queue_triggers():
                if self._stop.is_set():
                    return
                try:
                    with self._delivery_lock:
                        if not self._background.is_set():
                            break
                        moved += self.runtime.deliver(function, trigger, wait_seconds=POLL_WAIT_SECONDS).delivered
                except Exception:
                    if self._stop.is_set():
                        return
                    traceback.print_exc()
                    self._stop.wait(1.0)
            if not moved:
                self._stop.wait(0.05)

    def drain(
        self, timeout: float = DRAIN_TIMEOUT_SECONDS, triggers: list[tuple[Function, QueueTrigger]] | None = None
    ) -> dict[str, int]:
        """Deliver every message that is visible now (and those the functions enqueue, visible at once),
        until no queue has a visible message; messages delayed into the future are not waited for.
        ``triggers``: only these queues (default: every queue with a trigger)."""
        total = Delivery()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            round_total = Delivery()
            for function, trigger in self.runtime.queue_triggers() if triggers is None else triggers:
                with self._delivery_lock:
                    round_total += self.runtime.deliver(function, trigger)
            total += round_total
            if not round_total.delivered:
                break
        return total.as_dict()

    # --- schedule --------------------------------------------------------------------------------
    def _schedule(self, function: Function, trigger: ScheduleTrigger) -> None:
        while not self._stop.is_set():
            now = datetime.now(UTC)
            if self.schedule_seconds:
                due: datetime | None = now + timedelta(seconds=self.schedule_seconds)
            else:
                due = template.next_run(trigger.expression, now)
            if due is None:
                print(f"{function.logical_id}: schedule {trigger.expression!r} never fires locally", file=sys.stderr)
                return
            if self._stop.wait(max(0.0, (due - datetime.now(UTC)).total_seconds())):
                return
            if not self._background.is_set():
                continue
            try:
                self.runtime.run_scheduled(function, trigger)
            except Exception:
                traceback.print_exc()

    def run_schedules(self) -> list[dict[str, Any]]:
        """Every scheduled function once, in turn (``POST /_local/schedule/run``), each followed by the
        delivery of the work it fanned out (``Runtime.fanout_triggers``: the recompute's work items go
        through the worker) before the next one, so the answer comes when the work is done."""
        runs: list[dict[str, Any]] = []
        for function, trigger in self.runtime.schedule_triggers():
            started = time.monotonic()
            try:
                result = self.runtime.run_scheduled(function, trigger)
                runs.append({"function": function.logical_id, "event": trigger.name, "result": _jsonable(result)})
            except Exception as error:
                traceback.print_exc()
                runs.append({"function": function.logical_id, "event": trigger.name, "error": type(error).__name__})
            fanout = self.runtime.fanout_triggers(function)
            if fanout:  # what it sent before any failure too
                runs[-1]["fanout"] = self.drain(triggers=fanout)
            runs[-1]["seconds"] = round(time.monotonic() - started, 3)
        return runs

    # --- HTTP ------------------------------------------------------------------------------------
    def handle_http(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str,
    ) -> HttpResponse:
        """One HTTP request, as API Gateway (HTTP API) and Lambda would answer it."""
        split = urlsplit(target)
        path = split.path or "/"
        hosts = [value for name, value in headers if name.lower() == "host"]
        if len(hosts) > 1 or (hosts and not _local_host(hosts[0])):
            print(
                f"refused {method} {path} for Host {hosts!r}: the local runtime answers only "
                f"{', '.join(sorted(LOCAL_HOSTS))} (any port), against DNS rebinding",
                file=sys.stderr,
            )
            return _json(421, {"message": "Misdirected Request"})
        if path.startswith("/_local/"):
            refused = _cross_site(method, headers, body)
            if refused is not None:
                print(f"refused {method} {path}: {refused.body.decode()}", file=sys.stderr)
                return refused
            return self._local_route(method, path, body)
        data = self.runtime.data
        if data is not None and data.broken is not None and method not in _READ_METHODS:
            print(f"refused {method} {path} (503): {data.broken}; restart make serve once fixed", file=sys.stderr)
            return _json(503, {"message": "Service Unavailable"})
        matched = template.match(self.runtime.routes, method, path)
        if matched is None:
            return _json(404, _NOT_FOUND)
        route, params = matched
        port = self._server.server_address[1] if self._server is not None else None
        event = http_event(method, path, split.query, headers, body, route, params, source_ip, port=port)
        if len(json.dumps(event).encode()) > LAMBDA_EVENT_BYTES:  # the body escaped inside, with the headers
            print(f"refused {method} {path} (413): its event is over Lambda's 6 MB, no function runs", file=sys.stderr)
            return _json(413, {"message": "Request Too Long"})
        try:
            result = self.runtime.invoke(route.function, event)
        except Exception:
            print(f"{route.function}: unhandled error for {route.route_key}", file=sys.stderr)
            traceback.print_exc()
            return _json(500, {"message": "Internal Server Error"})
        if self.runtime.timed_out():
            print(
                f"{route.function}: ran past its Timeout for {route.route_key}: answered 500, as Lambda stops it "
                "and API Gateway answers",
                file=sys.stderr,
            )
            return _json(500, {"message": "Internal Server Error"})
        try:
            return http_response(result)
        except (ValueError, TypeError, KeyError):
            print(f"{route.function}: malformed response for {route.route_key}", file=sys.stderr)
            traceback.print_exc()
            return _json(500, {"message": "Internal Server Error"})

    def _local_route(self, method: str, path: str, body: bytes = b"") -> HttpResponse:
        if path == "/_local/faults" and method in ("GET", "POST"):
            return self._faults(method, body)
        if method != "POST" or path not in _LOCAL_POST_ROUTES:
            return _json(404, _NOT_FOUND)
        try:
            if path == "/_local/schedule/run":
                return _json(200, {"runs": self.run_schedules()})
            if path == "/_local/clock/advance":
                settings = _json_object(body)
                seconds = settings.get("seconds")
                if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= 10**8:
                    return _json(400, {"message": 'send {"seconds": N} with 0 <= N <= 100000000'})
                with self._delivery_lock, self.runtime.lock:  # not while a function or a delivery runs
                    return _json(200, clock.advance(float(seconds)))
            return _json(200, self.drain())
        except _BodyError as error:
            return _json(error.status, {"message": error.message})
        except Exception:
            traceback.print_exc()
            return _json(500, {"message": "Internal Server Error"})

    def _faults(self, method: str, body: bytes) -> HttpResponse:
        """``GET /_local/faults``: the plan in force and what it injected; ``POST`` with a plan
        (``{"rate": 0.15, "seed": 7}``; ``{"rate": 0}`` turns faults off) sets it and answers the same."""
        if method == "POST":
            try:
                faults.configure(faults.Plan.of(_json_object(body)))
            except _BodyError as error:
                return _json(error.status, {"message": error.message})
            except (TypeError, ValueError) as error:
                return _json(400, {"message": str(error)})
        return _json(200, faults.report())


def _local_host(host: str) -> bool:
    """Is ``host`` (a Host header or an Origin's host, with or without a port) one of :data:`LOCAL_HOSTS`?"""
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal: [::1]:3000
        end = host.find("]") + 1
        name, port = host[:end], host[end:]
    else:
        name, colon, number = host.partition(":")
        port = colon + number
    return name in LOCAL_HOSTS and _PORT.fullmatch(port) is not None


def _cross_site(method: str, headers: list[tuple[str, str]], body: bytes) -> HttpResponse | None:
    """Refuse what a web page could send to a ``/_local/*`` route (they need no key): a foreign ``Origin``
    (browsers send one with every cross-origin POST), or a body that is not declared JSON (a form or a
    ``text/plain`` fetch needs no CORS preflight). ``curl -X POST`` without a body or with JSON still works."""
    origins = [value for name, value in headers if name.lower() == "origin"]
    for origin in origins:
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not _local_host(parts.netloc):
            return _json(403, {"message": f"Forbidden: /_local/* does not answer web pages of origin {origin!r}"})
    if method in _READ_METHODS:
        return None
    types = [value for name, value in headers if name.lower() == "content-type"]
    declared = [t.split(";")[0].strip().lower() for t in types]
    if any(t != "application/json" for t in declared) or (body and not declared):
        return _json(415, {"message": "Unsupported Media Type: send Content-Type: application/json"})
    return None


def _json_object(body: bytes) -> dict[str, Any]:
    """A local route's JSON object body (empty: ``{}``)."""
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        raise _BodyError(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise _BodyError(400, "the body must be a JSON object")
    return data


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _json(status: int, data: Any) -> HttpResponse:
    return HttpResponse(status, [("Content-Type", "application/json")], json.dumps(data).encode())


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _handler_for(local: LocalRuntime) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "dora-insights-local"

        def version_string(self) -> str:
            return self.server_version

        timeout = 60  # seconds a client may take to send a request

        def log_message(self, format: str, *args: Any) -> None:
            if not local.quiet:
                super().log_message(format, *args)

        def _read_body(self) -> bytes:
            """The request's body, framed by ``Transfer-Encoding: chunked`` or ``Content-Length``. Any framing
            error (a ``_BodyError``) closes the connection after its answer: where the next request would
            start is unknown, and a body must never be read as a request."""
            encodings = self.headers.get_all("Transfer-Encoding") or []
            if encodings:
                if [e.strip().lower() for e in ",".join(encodings).split(",")] != ["chunked"]:
                    raise _BodyError(400, "Bad Request")
                return self._read_chunked()
            lengths = {value.strip() for value in self.headers.get_all("Content-Length") or []}
            if len(lengths) > 1:
                raise _BodyError(400, "Bad Request")
            text = lengths.pop().encode() if lengths else b"0"
            if not _DIGITS.fullmatch(text):
                raise _BodyError(400, "Bad Request")
            length = int(text)
            if length > MAX_REQUEST_BYTES:
                self._discard(length)
                raise _BodyError(413, "Request Entity Too Large")
            return self._read_exactly(length)

        def _read_exactly(self, size: int) -> bytes:
            """``size`` bytes, or a 400 if the client stops sending before (a body cut short is never used)."""
            data = self.rfile.read(size) if size else b""
            if len(data) != size:
                raise _BodyError(400, "Bad Request")
            return data

        def _read_chunked(self) -> bytes:
            chunks: list[bytes] = []
            size_so_far = 0
            while True:
                line = self.rfile.readline(1024)
                size_text = line.split(b";")[0].strip()
                if not line.endswith(b"\n") or not _HEX.fullmatch(size_text):
                    raise _BodyError(400, "Bad Request")  # hex digits only: no sign, no empty size
                size = int(size_text, 16)
                if size == 0:
                    trailers = 0
                    while (trailer := self.rfile.readline(1024)) not in (b"\r\n", b"\n"):
                        trailers += len(trailer)
                        if not trailer.endswith(b"\n") or trailers > 64 * 1024:
                            raise _BodyError(400, "Bad Request")
                    break
                size_so_far += size
                if size_so_far > MAX_REQUEST_BYTES:
                    raise _BodyError(413, "Request Entity Too Large")
                chunks.append(self._read_exactly(size))
                if self.rfile.readline(8) not in (b"\r\n", b"\n"):
                    raise _BodyError(400, "Bad Request")
            return b"".join(chunks)

        def _discard(self, length: int) -> None:
            """Read (and drop) an oversized body so the client sees the 413 rather than a reset."""
            remaining = min(length, 4 * MAX_REQUEST_BYTES)
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)
            if length > 4 * MAX_REQUEST_BYTES:
                self.close_connection = True

        def _write(self, response: HttpResponse) -> None:
            self.send_response(response.status)
            for name, value in response.headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and response.body:
                self.wfile.write(response.body)

        def _handle(self) -> None:
            if not local._begin_request():
                self.close_connection = True
                self._write(_json(503, {"message": "Service Unavailable"}))  # stopping
                return
            try:  # counted until answered: stop() waits for the answer to be sent
                try:
                    try:
                        body = self._read_body()
                    except TimeoutError:
                        raise _BodyError(408, "Request Timeout") from None
                    response = local.handle_http(
                        self.command, self.path, list(self.headers.items()), body, str(self.client_address[0])
                    )
                except _BodyError as error:
                    self.close_connection = True
                    self._write(_json(error.status, {"message": error.message}))
                    self._linger()
                    return
                self._write(response)
            finally:
                local._end_request()

        def _linger(self) -> None:
            """After a framing error's answer: stop writing and drop what the client still sends (bounded),
            so that it reads the answer rather than a connection reset, then close. Nothing of it is kept."""
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_WR)
                self.connection.settimeout(LINGER_SECONDS)
                remaining = 4 * MAX_REQUEST_BYTES
                while remaining > 0 and (chunk := self.rfile.read1(1 << 16)):
                    remaining -= len(chunk)
            except OSError:  # the client is gone, or quiet for LINGER_SECONDS: close
                pass

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _handle  # noqa: N815

        def __getattr__(self, name: str) -> Any:
            # http.server answers 501 for a method it has no do_<METHOD> for (PROPFIND, TRACE, CONNECT,
            # ...). API Gateway routes every method: one without a route (or an ANY route) is its 404.
            if name.startswith("do_"):
                return self._handle
            raise AttributeError(name)

    return Handler
