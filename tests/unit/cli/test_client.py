"""HTTP with retries: which answers are retried, how long it waits, what the error says."""

from __future__ import annotations

import io
import json
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email.message import Message
from email.utils import format_datetime
from typing import Any

import pytest

from dora_insights_cli.client import MAX_WAIT, Api, ApiError, NetworkError, Response, backoff, fail, retry_after
from dora_insights_cli.config import Connection, Value
from dora_insights_cli.errors import AUTH, NOT_FOUND, REJECTED, UNAVAILABLE
from dora_insights_cli.times import utc_now

KEY = "secret-key-0123456789"


def _connection(retries: int = 3) -> Connection:
    return Connection(
        url="http://dora.test",
        space="Spaces-7",
        api_key=Value(KEY, "DORA_INSIGHTS_API_KEY"),
        timeout=5,
        retries=retries,
        retry_delay=1.0,
    )


class _Answer:
    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.headers = Message()
        self._raw = json.dumps(body).encode()

    def read(self) -> bytes:
        return self._raw


def _http_error(status: int, body: Any = None, headers: dict[str, str] | None = None) -> urllib.error.HTTPError:
    message = Message()
    for name, value in (headers or {}).items():
        message[name] = value
    raw = json.dumps(body).encode() if body is not None else b""
    return urllib.error.HTTPError("http://dora.test/x", status, "error", message, io.BytesIO(raw))


class _Script:
    """An opener that answers from a script: a status (with body) or an exception per call."""

    def __init__(self, *steps: Any) -> None:
        self.steps = list(steps)
        self.requests: list[Any] = []

    @contextmanager
    def __call__(self, request: Any, timeout: float) -> Iterator[_Answer]:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, BaseException):
            raise step
        yield step


def _api(script: _Script, waits: list[float], retries: int = 3) -> Api:
    return Api(_connection(retries), log=io.StringIO(), sleep=waits.append, opener=script)


def test_503_twice_then_201_succeeds_after_two_waits() -> None:
    script, waits = _Script(_http_error(503), _http_error(503), _Answer(201, {"id": "d1"})), []
    response = _api(script, waits).request("POST", "/api/Spaces-7/deployments", body={"id": "d1"})

    assert (response.status, response.body) == (201, {"id": "d1"})
    assert len(waits) == 2
    assert {r.data for r in script.requests} == {b'{"id": "d1"}'}  # every attempt sends the same body


def test_waits_grow_exponentially() -> None:
    script, waits = _Script(*[_http_error(502) for _ in range(3)], _Answer(200, {})), []
    _api(script, waits).request("GET", "/x")

    assert 0.5 <= waits[0] <= 1.0 and 1.0 <= waits[1] <= 2.0 and 2.0 <= waits[2] <= 4.0


def test_retry_after_is_honoured() -> None:
    script, waits = _Script(_http_error(429, headers={"Retry-After": "7"}), _Answer(200, {})), []
    _api(script, waits).request("GET", "/x")

    assert waits == [7.0]


def test_network_errors_are_retried_then_reported() -> None:
    refused = urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    script, waits = _Script(refused, refused, refused), []

    with pytest.raises(NetworkError) as raised:
        _api(script, waits, retries=2).request("GET", "/x")

    assert raised.value.attempts == 3 and raised.value.reason == "Connection refused"
    assert len(waits) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413])
def test_client_errors_are_not_retried(status: int) -> None:
    script, waits = _Script(_http_error(status, {"message": "no"})), []

    with pytest.raises(ApiError) as raised:
        _api(script, waits).request("POST", "/x", body={})

    assert raised.value.status == status and waits == []


def test_the_key_is_sent_whole_and_described_redacted() -> None:
    script = _Script(_Answer(200, {}))
    api = _api(script, [])
    api.request("GET", "/x")

    assert script.requests[0].get_header("Authorization") == f"Bearer {KEY}"
    described = api.describe("POST", "/api/Spaces-7/deployments", {"id": "d"})
    assert KEY not in described and "secr…(redacted)" in described


def test_space_paths_are_quoted() -> None:
    assert _api(_Script(), []).space_path("failures", "INC 1/2") == "/api/Spaces-7/failures/INC%201%2F2"


@pytest.mark.parametrize(
    ("status", "code", "says"),
    [
        (401, AUTH, "secr…"),
        (403, AUTH, "lacks the scope"),
        (404, NOT_FOUND, "space 'Spaces-7'"),
        (400, REJECTED, "finished_at: is required"),
        (503, UNAVAILABLE, "after 4 attempt(s)"),
    ],
)
def test_failures_map_to_exit_codes_and_messages(status: int, code: int, says: str) -> None:
    body = {"message": "request invalid", "errors": ["finished_at: is required"]}
    error = ApiError("POST", "/x", Response(status, body, {}), 4)

    failed = fail(error, _connection(), what="sending")

    assert failed.code == code
    assert says in failed.message
    assert KEY not in failed.message


@pytest.mark.parametrize(("header", "seconds"), [("3", 3.0), ("0", 0.0), ("soon", None), (None, None)])
def test_retry_after_values(header: str | None, seconds: float | None) -> None:
    assert retry_after(header) == seconds


def test_retry_after_as_an_http_date() -> None:
    waited = retry_after(format_datetime(utc_now() + timedelta(seconds=30), usegmt=True))

    assert waited is not None and 25 <= waited <= 30


def test_backoff_is_capped() -> None:
    assert backoff(30, 1.0, rand=lambda: 1.0) == MAX_WAIT
