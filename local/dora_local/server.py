"""The HTTP front, SQS poller and schedule around a ``Runtime``: ``LocalRuntime`` is what
``make serve`` runs and what the end-to-end tests start."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import traceback
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from dora_local import template
from dora_local.runtime import Runtime, encode_body
from dora_local.template import ACCOUNT

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
API_ID = "local"


def http_event(
    method: str,
    raw_path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    route: Any,
    params: dict[str, str],
    source_ip: str,
) -> dict[str, Any]:
    """The API Gateway HTTP API (payload format 2.0) event for a request."""
    now = datetime.now(UTC)
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered and key != "cookie" else value
    cookies = [c.strip() for c in lowered.pop("cookie", "").split(";") if c.strip()]
    query_params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        query_params[name] = f"{query_params[name]},{value}" if name in query_params else value
    text, is_base64 = encode_body(body, lowered.get("content-type", ""))
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": lowered,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": API_ID,
            "domainName": lowered.get("host", "127.0.0.1"),
            "domainPrefix": lowered.get("host", "127.0.0.1").split(".")[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": base64.b64encode(uuid.uuid4().bytes[:12]).decode(),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if cookies:
        event["cookies"] = cookies
    if query_params:
        event["queryStringParameters"] = query_params
    if params:
        event["pathParameters"] = params
    if text is not None:
        event["body"] = text
    return event


class LocalRuntime:
    """The whole service on loopback: ``start()``, then ``url`` and ``api_key``; ``stop()``."""

    def __init__(self, *, port: int | None = None, schedule_seconds: float | None = None) -> None:
        self.port = int(os.environ.get("PORT", "3000")) if port is None else port
        configured = os.environ.get("SCHEDULE_SECONDS")
        self.schedule_seconds = (
            schedule_seconds if schedule_seconds is not None else (float(configured) if configured else None)
        )
        self.runtime = Runtime()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: ThreadingHTTPServer | None = None
        self._queue_lock = threading.Lock()

    @property
    def api_key(self) -> str:
        return self.runtime.api_key

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"  # noqa: S101
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> LocalRuntime:
        self.runtime.start_aws()
        self.runtime.seed()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(self))
        self._server.daemon_threads = True
        self._spawn(self._server.serve_forever, "http")
        self._spawn(self._poll, "sqs-poller")
        for logical_id, expression in self.runtime.schedule_triggers():
            self._spawn(lambda f=logical_id, e=expression: self._schedule(f, e), f"schedule-{logical_id}")
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self.runtime.stop_aws()

    def _spawn(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # --- background work ---------------------------------------------------------------------
    def _poll(self) -> None:
        while not self._stop.is_set():
            delivered = 0
            for function, queue, size in self.runtime.queue_triggers():
                with self._queue_lock:
                    try:
                        done, failed = self.runtime.deliver(function, queue, size, wait_seconds=1)
                    except Exception:
                        traceback.print_exc()
                        done = failed = 0
                delivered += done + failed
            if not delivered:
                self._stop.wait(0.5)

    def _schedule(self, logical_id: str, expression: str) -> None:
        interval = self.schedule_seconds or template.rate_seconds(expression)
        while not self._stop.wait(interval):
            try:
                self.runtime.run_scheduled(logical_id, expression)
            except Exception:
                traceback.print_exc()

    def run_schedules(self) -> list[dict[str, Any]]:
        """``POST /_local/schedule/run``: every scheduled function once, in turn."""
        results = []
        for logical_id, expression in self.runtime.schedule_triggers():
            result = self.runtime.run_scheduled(logical_id, expression)
            results.append({"function": logical_id, "result": result})
        return results

    def drain(self, timeout: float = 60.0) -> dict[str, int]:
        """``POST /_local/queues/drain``: deliver every message visible now, until the queues are idle."""
        delivered = failed = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            moved = 0
            for function, queue, size in self.runtime.queue_triggers():
                with self._queue_lock:
                    done, bad = self.runtime.deliver(function, queue, size)
                delivered, failed, moved = delivered + done, failed + bad, moved + done + bad
            if not moved:
                break
        return {"delivered": delivered, "failed": failed}


def _handler_for(local: LocalRuntime) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "dora-insights-local"

        def log_message(self, format: str, *args: Any) -> None:
            if os.environ.get("DORA_LOCAL_QUIET") != "1":
                super().log_message(format, *args)

        def _send(
            self, status: int, body: bytes, headers: dict[str, str] | None = None, cookies: list[str] | None = None
        ) -> None:
            self.send_response(status)
            sent = {k.lower() for k in (headers or {})}
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            for cookie in cookies or []:
                self.send_header("Set-Cookie", cookie)
            if "content-type" not in sent and body:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, data: Any) -> None:
            self._send(status, json.dumps(data).encode(), {"Content-Type": "application/json"})

        def _handle(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_REQUEST_BYTES:
                self.close_connection = True
                self._json(413, {"message": "Request Entity Too Large"})
                return
            body = self.rfile.read(length) if length else b""
            if split.path.startswith("/_local/") and self.command == "POST":
                self._local(split.path)
                return
            matched = template.match(local.runtime.routes, self.command, split.path)
            if matched is None:
                self._json(404, {"message": "Not Found"})
                return
            route, params = matched
            event = http_event(
                self.command,
                split.path,
                split.query,
                dict(self.headers.items()),
                body,
                route,
                params,
                self.client_address[0],
            )
            try:
                response = local.runtime.invoke(route.function, event)
            except Exception:
                traceback.print_exc()
                self._json(500, {"message": "Internal Server Error"})
                return
            self._respond(response)

        def _respond(self, response: Any) -> None:
            if not isinstance(response, dict) or "statusCode" not in response:
                # HTTP API payload 2.0: a response without statusCode is a 200 with the value as JSON.
                self._send(200, json.dumps(response).encode(), {"Content-Type": "application/json"})
                return
            headers = {k: str(v) for k, v in (response.get("headers") or {}).items()}
            for name, values in (response.get("multiValueHeaders") or {}).items():
                headers[name] = ",".join(str(v) for v in values)
            raw = response.get("body") or ""
            body = base64.b64decode(raw) if response.get("isBase64Encoded") else str(raw).encode()
            self._send(int(response["statusCode"]), body, headers, response.get("cookies"))

        def _local(self, path: str) -> None:
            if path == "/_local/schedule/run":
                self._json(200, {"runs": local.run_schedules()})
            elif path == "/_local/queues/drain":
                self._json(200, local.drain())
            else:
                self._json(404, {"message": "Not Found"})

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _handle  # noqa: N815

    return Handler
