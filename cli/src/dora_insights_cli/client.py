"""The service over HTTP (urllib): JSON in and out, retries with exponential backoff, errors as exit codes.

Retried: 408, 429 and 5xx answers and network errors (refused, reset, timed out, an answer cut short
or corrupt), up to ``Connection.retries`` times, waiting ``retry_delay * 2**n`` seconds (times a random
0.5-1 so many jobs do not retry in step), and never less than ``Retry-After`` asks for (capped at
``MAX_WAIT``): a 503 that repeats with ``Retry-After: 1`` waits longer each time, as API.md asks. Every
POST the CLI sends carries a client id (or is idempotent by content, as ``/changes``), so a retry after
a lost answer stores nothing twice.

Redirects are not followed (urllib would turn a POST into a GET without its body, and send the key to
whatever host the ``Location`` names): a 3xx is an error that names where it points. ``timeout`` bounds
the whole request, from connecting to the last byte of the answer, not each socket operation; an
answer (decompressed) over ``MAX_BODY`` bytes is refused.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import urllib.response
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Callable, TextIO
from urllib.parse import quote, urlencode, urljoin

from dora_insights_cli import __version__
from dora_insights_cli.ci import clean_url
from dora_insights_cli.config import Connection, redact
from dora_insights_cli.errors import AUTH, NOT_FOUND, REJECTED, UNAVAILABLE, CliError
from dora_insights_cli.times import utc_now

MAX_WAIT = 60.0  # seconds: the longest single wait, whatever Retry-After says
MAX_BODY = 8 * 1024 * 1024  # bytes of an answer, after decompression: the service's are far smaller (Lambda: 6 MB)
RETRIED_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class Response:
    status: int
    body: Any  # parsed JSON, or the text when it is not JSON, or None when empty
    headers: Mapping[str, str]  # names in lower case


class ApiError(Exception):
    """A non-2xx answer (after the retries, for retried ones)."""

    def __init__(self, method: str, path: str, response: Response, attempts: int) -> None:
        self.method, self.path, self.response, self.attempts = method, path, response, attempts
        super().__init__(f"{method} {path}: {response.status}")

    @property
    def status(self) -> int:
        return self.response.status

    def server_message(self) -> str:
        """The message and field errors of the native error shape ``{"message", "errors"}``."""
        body = self.response.body
        if isinstance(body, dict):
            message = str(body.get("message") or "").strip()
            errors = body.get("errors")
            details = [str(e) for e in errors if str(e) != message] if isinstance(errors, list) else []
            if details:
                return f"{message}: {'; '.join(details)}" if message else "; ".join(details)
            return message
        return str(body or "").strip()[:500]


class BadAnswerError(Exception):
    """An answer that could not be read whole: cut short, corrupt, too large, or not complete by the
    deadline. Retried as network errors are."""


class DeadlineError(BadAnswerError):
    """No complete answer within the request's ``timeout``."""


class NetworkError(Exception):
    """The service could not be reached (after the retries)."""

    def __init__(self, method: str, url: str, reason: str, attempts: int) -> None:
        self.method, self.url, self.reason, self.attempts = method, url, reason, attempts
        super().__init__(f"{method} {url}: {reason}")


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - utc_now()).total_seconds())


def backoff(attempt: int, base: float, rand: Callable[[], float] = random.random) -> float:
    """The wait before retry ``attempt`` (1-based): ``base * 2**(attempt-1)`` times 0.5-1, capped."""
    return min(MAX_WAIT, base * 2.0 ** min(attempt - 1, 64)) * (0.5 + rand() / 2)


def _gunzip(raw: bytes, limit: int = MAX_BODY) -> bytes:
    """``raw`` decompressed (every gzip member), at most ``limit`` bytes; :class:`BadAnswerError` when it is
    cut short, corrupt or larger."""
    out: list[bytes] = []
    size = 0
    rest = raw
    try:
        while rest:
            member = zlib.decompressobj(16 + zlib.MAX_WBITS)
            chunk = member.decompress(rest, limit - size + 1)
            size += len(chunk)
            out.append(chunk)
            if size > limit or member.unconsumed_tail:
                raise BadAnswerError(f"body larger than {limit // (1024 * 1024)} MiB once decompressed")
            if not member.eof:
                raise BadAnswerError("gzip body cut short")
            rest = member.unused_data
            if not rest.strip(b"\x00"):  # padding after the last member, which gzip itself ignores
                break
    except zlib.error as error:
        raise BadAnswerError(f"corrupt gzip body ({error})") from None
    return b"".join(out)


def _decode(raw: bytes, headers: Mapping[str, str]) -> Any:
    """The body as JSON, else text, else None; :class:`BadAnswerError` when it cannot be decompressed."""
    if headers.get("content-encoding", "").strip().lower() in ("gzip", "x-gzip"):
        raw = _gunzip(raw)
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


class _Watchdog:
    """Ends a request at its deadline: shuts down the sockets it opened (a server that trickles its answer
    a byte at a time never lets a per-operation socket timeout expire), so the blocked read returns."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            for watched in self._sockets:
                watched.close()  # a duplicate: the connection's own socket is closed by http.client
            self._sockets.clear()

    def watch(self, sock: socket.socket) -> None:
        """Watch a connection's socket (through a duplicate, which stays valid when TLS takes it over)."""
        duplicate = sock.dup()
        with self._lock:
            self._sockets.append(duplicate)
            if self.fired:
                _shutdown(duplicate)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for watched in self._sockets:
                _shutdown(watched)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by its peer
        sock.shutdown(socket.SHUT_RDWR)


class _WatchedHandler(urllib.request.AbstractHTTPHandler):
    """Hands the sockets of a request's connection to the request's :class:`_Watchdog`."""

    def do_open(self, http_class: Any, req: Any, **http_conn_args: Any) -> Any:
        watchdog = getattr(req, "watchdog", None)
        if watchdog is None:
            return super().do_open(http_class, req, **http_conn_args)

        def connection(host: str, **kwargs: Any) -> Any:
            made = http_class(host, **kwargs)
            create = made._create_connection  # what connect() calls: socket.create_connection

            def create_watched(*args: Any, **create_kwargs: Any) -> socket.socket:
                sock: socket.socket = create(*args, **create_kwargs)
                watchdog.watch(sock)
                return sock

            made._create_connection = create_watched
            return made

        return super().do_open(connection, req, **http_conn_args)


class _HTTPHandler(_WatchedHandler, urllib.request.HTTPHandler):
    pass


if hasattr(http.client, "HTTPSConnection"):

    class _HTTPSHandler(_WatchedHandler, urllib.request.HTTPSHandler):
        pass


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Follows no redirect: the 3xx reaches the caller as an ``HTTPError`` with its ``Location``."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def open_url(request: urllib.request.Request, timeout: float) -> Any:
    """The default opener: ``urlopen`` with proxies as urllib takes them from the environment
    (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``), following no redirect, the request's sockets watched."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler(), _HTTPHandler(), _NoRedirect()]
    if hasattr(http.client, "HTTPSConnection"):  # a Python built without ssl has no HTTPS
        handlers.append(_HTTPSHandler())
    return urllib.request.build_opener(*handlers).open(request, timeout=timeout)


def _read(answer: Any, limit: int = MAX_BODY) -> bytes:
    """The body, at most ``limit`` bytes (:class:`BadAnswerError` beyond, or when the connection closed before
    the ``Content-Length`` it announced: http.client raises ``IncompleteRead`` only for a read of no size)."""
    if isinstance(answer, (http.client.HTTPResponse, urllib.response.addbase)):
        raw = answer.read(limit + 1)
        if len(raw) > limit:
            raise BadAnswerError(f"body larger than {limit // (1024 * 1024)} MiB")
        # An HTTPError wraps the HTTPResponse it read from (its fp); a response counts down what is left
        # of its Content-Length (None: no length, the body ends when the connection closes, or chunked).
        response = answer if isinstance(answer, http.client.HTTPResponse) else getattr(answer, "fp", None)
        missing = response.length if isinstance(response, http.client.HTTPResponse) else None
        if missing:
            raise BadAnswerError(f"body cut short: {len(raw)} bytes, {missing} fewer than its Content-Length")
        return bytes(raw)
    return bytes(answer.read())  # an opener of a test's: its answer reads whole


class Api:
    """Requests to one space of the service."""

    def __init__(
        self,
        connection: Connection,
        *,
        log: TextIO | None = None,
        sleep: Callable[[float], None] = time.sleep,
        opener: Callable[..., Any] = open_url,
    ) -> None:
        self.connection = connection
        self.log = log if log is not None else sys.stderr
        self.sleep = sleep
        self.opener = opener

    def space_path(self, *segments: str) -> str:
        """``/api/<space>/<segments...>``, each segment quoted."""
        return "/api/" + "/".join(quote(s, safe="") for s in (self.connection.space, *segments))

    def url(self, path: str, query: Mapping[str, str | None] | None = None) -> str:
        params = {k: v for k, v in (query or {}).items() if v is not None}
        return self.connection.url + path + (f"?{urlencode(params)}" if params else "")

    def headers(self, *, redacted: bool = False) -> dict[str, str]:
        headers = {
            "Accept": "application/json",
            "Accept-Encoding": "gzip",
            "User-Agent": f"dora-insights-cli/{__version__} python/{sys.version_info[0]}.{sys.version_info[1]}",
        }
        key = self.connection.api_key
        if key is not None:
            headers["Authorization"] = f"Bearer {redact(key.value) + '(redacted)' if redacted else key.value}"
        return headers

    def describe(self, method: str, path: str, body: Any = None, query: Mapping[str, str | None] | None = None) -> str:
        """The request as ``--dry-run`` prints it: method, URL, headers (key redacted), JSON body."""
        lines = [f"{method} {self.url(path, query)}"]
        headers = self.headers(redacted=True)
        if body is not None:
            headers["Content-Type"] = "application/json"
        lines += [f"{name}: {value}" for name, value in headers.items() if name != "User-Agent"]
        if body is not None:
            lines += ["", json.dumps(body, indent=2, ensure_ascii=False)]
        return "\n".join(lines)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str | None] | None = None,
    ) -> Response:
        """Send one request, retrying what is worth retrying; a 2xx :class:`Response`, else
        :class:`ApiError` or :class:`NetworkError`."""
        url = self.url(path, query)
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = self.headers()
        if data is not None:
            headers["Content-Type"] = "application/json"
        attempts = max(0, self.connection.retries) + 1
        for attempt in range(1, attempts + 1):
            try:
                response = self._send(method, url, data, headers)
            except (OSError, http.client.HTTPException, BadAnswerError) as error:
                if attempt == attempts:
                    raise NetworkError(method, url, _reason(error), attempt) from None
                self._note(f"{method} {path}: {_reason(error)}", attempt, attempts, None)
                continue
            if 200 <= response.status < 300:
                return response
            retried = response.status in RETRIED_STATUSES or response.status >= 500
            if not retried or attempt == attempts:
                raise ApiError(method, path, response, attempt)
            wait = retry_after(response.headers.get("retry-after"))
            self._note(f"{method} {path}: {response.status} {_reason_phrase(response.status)}", attempt, attempts, wait)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _note(self, what: str, attempt: int, attempts: int, asked: float | None) -> None:
        """Say why and how long, then wait: the backoff, and never less than ``Retry-After`` asks, so a
        repeated ``503`` with ``Retry-After: 1`` waits longer each time."""
        wait = backoff(attempt, self.connection.retry_delay)
        why = ""
        if asked is not None and asked >= wait:
            wait, why = min(MAX_WAIT, asked), " (Retry-After)"
        print(f"dora-insights: {what}; retry {attempt} of {attempts - 1} in {wait:.1f} s{why}", file=self.log)
        self.sleep(wait)

    def _send(self, method: str, url: str, data: bytes | None, headers: Mapping[str, str]) -> Response:
        """One attempt, within ``timeout`` from connecting to the answer's last byte."""
        request = urllib.request.Request(url, data=data, headers=dict(headers), method=method)  # noqa: S310 - http(s) checked in config
        timeout = self.connection.timeout
        with _Watchdog(timeout) as watchdog:
            request.watchdog = watchdog  # type: ignore[attr-defined] # read by _WatchedHandler
            try:
                response = self._exchange(request, timeout)
            except (OSError, http.client.HTTPException, BadAnswerError):
                if watchdog.fired:
                    raise DeadlineError(f"timed out: no whole answer within {timeout:g} s") from None
                raise
            if watchdog.fired:  # a body without a length ends at the shutdown: it may be cut short
                raise DeadlineError(f"timed out: no whole answer within {timeout:g} s")
            return response

    def _exchange(self, request: urllib.request.Request, timeout: float) -> Response:
        try:
            with self.opener(request, timeout=timeout) as answer:
                answer_headers = {k.lower(): v for k, v in answer.headers.items()}
                try:
                    body = _decode(_read(answer), answer_headers)
                except BadAnswerError as error:  # retried; the message keeps the status
                    raise BadAnswerError(f"{answer.status} {_reason_phrase(answer.status)} with a {error}") from None
                return Response(answer.status, body, answer_headers)
        except urllib.error.HTTPError as error:
            error_headers = {k.lower(): v for k, v in error.headers.items()} if error.headers else {}
            try:
                body = _decode(_read(error), error_headers)
            except (OSError, http.client.HTTPException, BadAnswerError) as unreadable:
                body = f"(an unreadable body: {_reason(unreadable)})"  # the status still says what happened
            finally:
                error.close()
            return Response(error.code, body, error_headers)


def _reason(error: BaseException) -> str:
    if isinstance(error, BadAnswerError):
        return str(error)
    if isinstance(error, urllib.error.URLError):
        reason = error.reason
        return str(reason) if not isinstance(reason, BaseException) else _reason(reason)
    if isinstance(error, TimeoutError) or type(error).__name__ == "timeout":
        return "timed out"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _reason_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def created(response: Response, sent_id: str, connection: Connection, *, what: str) -> dict[str, Any]:
    """The record a create (``POST`` with a client id) answered: the service answers ``201`` (stored now)
    or ``200`` (stored already, under the id sent) with the record as a JSON object. Any other 2xx is
    not the service's answer (a proxy's sign-in page, a web app, a maintenance page at that URL): nothing
    is known to be stored, so it is a failure (exit 5), never "recorded"."""
    body = response.body
    is_record = response.status in (200, 201) and isinstance(body, dict) and isinstance(body.get("id"), str)
    if is_record and (response.status == 201 or body["id"] == sent_id):
        return dict(body)
    kind = response.headers.get("content-type", "").split(";")[0].strip() or "no content type"
    shown = "a JSON object without this id" if isinstance(body, dict) else "not a JSON object"
    raise CliError(
        f"{what}: {connection.url} answered {response.status} {_reason_phrase(response.status)} ({kind}, {shown}),"
        f" which is not the service's answer to a create: nothing is known to be stored. Check that"
        " DORA_INSIGHTS_URL (--url) is the service's own URL, not a page in front of it (a proxy's sign-in page,"
        " a web app, a maintenance page).",
        REJECTED,
    )


def not_the_service(what: str, found: str) -> CliError:
    """An answer whose shape is not the service's (``found`` says what came back): exit 5, with where to
    look (a proxy's page or another app answering at the configured URL)."""
    return CliError(
        f"{what}: {found}: not the service's answer. Check that DORA_INSIGHTS_URL (--url) is the service's own"
        " URL, not a page in front of it.",
        REJECTED,
    )


def fail(error: ApiError | NetworkError, connection: Connection, *, what: str) -> CliError:
    """The message and exit code for a request that failed; ``what`` says what was attempted."""
    if isinstance(error, NetworkError):
        return CliError(
            f"{what}: could not reach {connection.url} ({error.reason}) after {error.attempts} attempt(s)", UNAVAILABLE
        )
    status, detail = error.status, error.server_message()
    said = f" The service said: {detail}" if detail else ""
    if 300 <= status < 400:
        location = "".join(c for c in error.response.headers.get("location", "") if c.isprintable()).strip()[:500]
        where = clean_url(urljoin(connection.url + error.path, location)) if location else None
        points = f" to {where}" if where else " (without a Location)"
        return CliError(
            f"{what}: {status} {_reason_phrase(status)}: {connection.url} redirects{points}. The command follows no"
            " redirect (a POST would arrive as a GET without its body, and the key would go wherever the redirect"
            " points): set DORA_INSIGHTS_URL (--url) to the service's own URL, https:// where it is served so.",
            REJECTED,
        )
    if status == 401:
        return CliError(
            f"{what}: 401 Unauthorized: {connection.key_text()} was not accepted by {connection.url}"
            f" (missing, mistyped or revoked). Set DORA_INSIGHTS_API_KEY (or --api-key) to a key of space"
            f" '{connection.space}'.{said}",
            AUTH,
        )
    if status == 403:
        return CliError(
            f"{what}: 403 Forbidden: {connection.key_text()} lacks the scope this needs.{said}",
            AUTH,
        )
    if status == 404:
        return CliError(
            f"{what}: 404 Not Found: space '{connection.space}' does not exist at {connection.url} for"
            f" {connection.key_text()} (a key acts only in its own space). Check DORA_INSIGHTS_SPACE (or --space)"
            f" and DORA_INSIGHTS_URL.{said}",
            NOT_FOUND,
        )
    if status in RETRIED_STATUSES or status >= 500:
        return CliError(
            f"{what}: {status} {_reason_phrase(status)} from {connection.url} after {error.attempts} attempt(s).{said}",
            UNAVAILABLE,
        )
    return CliError(f"{what}: {status} {_reason_phrase(status)}: the service rejected the request.{said}", REJECTED)
