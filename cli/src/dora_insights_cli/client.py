"""The service over HTTP (urllib): JSON in and out, retries with exponential backoff, errors as exit codes.

Retried: 408, 429 and 5xx answers and network errors (refused, reset, timed out), up to
``Connection.retries`` times, waiting ``retry_delay * 2**n`` seconds (times a random 0.5-1 so many
jobs do not retry in step), or what ``Retry-After`` asks for (capped at ``MAX_WAIT``). Every POST the
CLI sends carries a client id (or is idempotent by content, as ``/changes``), so a retry after a lost
answer stores nothing twice.
"""

from __future__ import annotations

import gzip
import http.client
import json
import random
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Callable, TextIO
from urllib.parse import quote, urlencode

from dora_insights_cli import __version__
from dora_insights_cli.config import Connection, redact
from dora_insights_cli.errors import AUTH, NOT_FOUND, REJECTED, UNAVAILABLE, CliError
from dora_insights_cli.times import utc_now

MAX_WAIT = 60.0  # seconds: the longest single wait, whatever Retry-After says
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
    return min(MAX_WAIT, base * 2.0 ** (attempt - 1)) * (0.5 + rand() / 2)


def _decode(raw: bytes, headers: Mapping[str, str]) -> Any:
    if headers.get("content-encoding", "").lower() == "gzip":
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


class Api:
    """Requests to one space of the service."""

    def __init__(
        self,
        connection: Connection,
        *,
        log: TextIO | None = None,
        sleep: Callable[[float], None] = time.sleep,
        opener: Callable[..., Any] = urllib.request.urlopen,
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
        attempts = self.connection.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                response = self._send(method, url, data, headers)
            except (OSError, http.client.HTTPException) as error:
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
        wait = min(MAX_WAIT, asked) if asked is not None else backoff(attempt, self.connection.retry_delay)
        why = " (Retry-After)" if asked is not None else ""
        print(f"dora-insights: {what}; retry {attempt} of {attempts - 1} in {wait:.1f} s{why}", file=self.log)
        self.sleep(wait)

    def _send(self, method: str, url: str, data: bytes | None, headers: Mapping[str, str]) -> Response:
        request = urllib.request.Request(url, data=data, headers=dict(headers), method=method)  # noqa: S310 - http(s) checked in config
        try:
            with self.opener(request, timeout=self.connection.timeout) as answer:
                answer_headers = {k.lower(): v for k, v in answer.headers.items()}
                return Response(answer.status, _decode(answer.read(), answer_headers), answer_headers)
        except urllib.error.HTTPError as error:
            error_headers = {k.lower(): v for k, v in error.headers.items()} if error.headers else {}
            try:
                raw = error.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            finally:
                error.close()
            return Response(error.code, _decode(raw, error_headers), error_headers)


def _reason(error: BaseException) -> str:
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


def fail(error: ApiError | NetworkError, connection: Connection, *, what: str) -> CliError:
    """The message and exit code for a request that failed; ``what`` says what was attempted."""
    if isinstance(error, NetworkError):
        return CliError(
            f"{what}: could not reach {connection.url} ({error.reason}) after {error.attempts} attempt(s)", UNAVAILABLE
        )
    status, detail = error.status, error.server_message()
    said = f" The service said: {detail}" if detail else ""
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
