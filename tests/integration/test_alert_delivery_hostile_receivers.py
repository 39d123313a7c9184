"""Alert deliveries to receivers that misbehave, through the real handlers against moto (API.md "Alert
destinations", Delivery): a receiver that is slow, answers something that is not HTTP, or redirects makes a
failed attempt, bounded by the send timeout as a whole, and never keeps the event from other destinations.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support import lambdas
from tests.support.events import load_event
from tests.support.raw_server import RawServer
from tests.support.receiver import Receiver

SP = {"spaceId": "Spaces-1"}
BASE = "/api/{spaceId}/alert-destinations"
ONE = BASE + "/{destinationId}"
TIMEOUT = 0.5  # the send timeout in these tests (5 s deployed): the slow receivers take far longer than this
SLACK = 1.0  # what a test-send may take beyond the sender's timeout (the route's own work, a busy machine)


class Server(RawServer):
    """A receiver that reads each request and answers it with ``answer(conn)``; counts requests."""

    def __init__(self) -> None:
        self.requests = 0
        super().__init__()
        self.url = f"http://127.0.0.1:{self.port}"

    def answer(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def serve(self, conn: socket.socket) -> None:
        conn.settimeout(2)
        conn.recv(65536)
        self.requests += 1
        self.answer(conn)  # an OSError here is the sender hanging up: what a deadline does


class Dribbler(Server):
    """Answers 200 and trickles one part of its answer (the status line, the headers or the body) one byte
    per ``tick`` seconds, ``ticks`` bytes in all: a receiver holding the attempt as long as it likes."""

    def __init__(self, part: str, ticks: int = 9, tick: float = 0.25) -> None:
        self.part, self.ticks, self.tick = part, ticks, tick
        super().__init__()

    def answer(self, conn: socket.socket) -> None:
        slow = b"." * self.ticks
        status, headers, body = b"HTTP/1.1 200 OK\r\n", f"Content-Length: {self.ticks}\r\n".encode(), slow
        if self.part == "status":
            status = b"HTTP/1.1 200 OK" + b" " * self.ticks + b"\r\n"
        elif self.part == "headers":
            headers += b"X-Slow: " + slow + b"\r\n"
        fast, trickled = {
            "status": (b"", status + headers + b"\r\n" + body),
            "headers": (status + headers[:-2], headers[-2:] + b"\r\n" + body),
            "body": (status + headers + b"\r\n", body),
        }[self.part]
        conn.sendall(fast)
        for position in range(len(trickled)):
            if position < self.ticks:
                time.sleep(self.tick)
            conn.sendall(trickled[position : position + 1])


class NotHttp(Server):
    """Answers every request with a line that is not an HTTP status line."""

    def answer(self, conn: socket.socket) -> None:
        conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")


class Redirector(Server):
    """Answers 302 with a Location to ``target``."""

    def __init__(self, target: str) -> None:
        self.target = target
        super().__init__()

    def answer(self, conn: socket.socket) -> None:
        conn.sendall(f"HTTP/1.1 302 Found\r\nLocation: {self.target}\r\nContent-Length: 0\r\n\r\n".encode())


class Chatty(Server):
    """Answers 200 with more header bytes than the sender reads (MAX_ANSWER_BYTES)."""

    def answer(self, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"x" * 1000 + b"\r\n")
        for _ in range(90):
            conn.sendall(b"X-Filler: " + b"x" * 1000 + b"\r\n")
        conn.sendall(b"\r\n")


@pytest.fixture
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> float:
    """The send timeout the handlers use, down to ``TIMEOUT``."""
    from dora_insights.logic import destinations

    monkeypatch.setattr(destinations, "SEND_TIMEOUT_SECONDS", TIMEOUT)
    return TIMEOUT


@pytest.fixture
def not_http() -> Iterator[NotHttp]:
    found = NotHttp()
    try:
        yield found
    finally:
        found.close()


def _create(api: Api, url: str, kind: str = "webhook") -> Any:
    return api.call("POST", BASE, path_params=SP, body={"name": "x", "kind": kind, "url": url}, key=ADMIN_KEY)


def _test_send(api: Api, destination_id: str) -> Any:
    return api.call("POST", ONE + "/test", path_params={**SP, "destinationId": destination_id}, key=ADMIN_KEY)


# --------------------------------------------------------------------------------------------- slow receivers
def test_the_deployed_send_timeout_is_5_seconds() -> None:
    """API.md: each POST has a 5 s timeout (template: 10 destinations x 5 s fit the function's 60 s)."""
    from dora_insights.handlers import alerts

    assert alerts._sender().timeout == 5.0


@pytest.mark.parametrize("part", ["status", "headers", "body"])
def test_a_slow_receiver_never_holds_a_send_past_the_timeout(
    api: Api, loopback: None, short_timeout: float, part: str
) -> None:
    """The timeout bounds the whole attempt, not each socket read: a receiver trickling its answer one byte at a
    time (each byte well within the timeout, all of them far past it) ends the attempt at the timeout. The
    answer's body is never read: a status and headers that came in time are the answer."""
    dribbler = Dribbler(part)
    try:
        made = _create(api, f"{dribbler.url}/hook")
        assert made.status == 201, made.body
        started = time.monotonic()
        sent = _test_send(api, made.body["id"])
        took = time.monotonic() - started
    finally:
        dribbler.close()

    assert sent.status == 200, sent.body
    assert dribbler.tick < TIMEOUT < TIMEOUT + SLACK < dribbler.ticks * dribbler.tick  # what a per-read timeout allows
    assert took < TIMEOUT + SLACK and sent.body["duration_ms"] <= TIMEOUT * 1000 + 100, (took, sent.body)
    if part == "body":
        assert (sent.body["status"], sent.body["status_code"]) == ("delivered", 200), sent.body
    else:
        assert (sent.body["status"], sent.body["status_code"]) == ("failed", None), sent.body
        assert sent.body["error"].startswith("TimeoutError"), sent.body


def test_an_answer_with_headers_longer_than_the_sender_reads_is_a_failed_attempt(api: Api, loopback: None) -> None:
    chatty = Chatty()
    try:
        made = _create(api, f"{chatty.url}/hook")
        sent = _test_send(api, made.body["id"])
    finally:
        chatty.close()

    assert (sent.status, sent.body["status"], sent.body["status_code"]) == (200, "failed", None), sent.body
    assert "longer than" in sent.body["error"], sent.body


# --------------------------------------------------------------------------------------------- bad answers
def test_a_test_send_to_a_receiver_answering_garbage_is_a_failed_delivery_not_a_500(
    api: Api, loopback: None, not_http: NotHttp
) -> None:
    """API.md: the test route answers the delivery (200, even when the receiver refused it); every failure of
    the POST is a result, never an exception (dal/destinations.py HttpSender.post)."""
    made = _create(api, f"{not_http.url}/hook")
    assert made.status == 201, made.body
    try:
        sent = _test_send(api, made.body["id"])
    except Exception as error:  # what the Lambda runtime turns into API Gateway's 500
        pytest.fail(f"the test-send raised {type(error).__name__}: {error} (API Gateway answers 500)")

    assert sent.status == 200, sent.body
    assert sent.body["status"] == "failed", sent.body
    assert sent.body["error"].startswith("not an HTTP answer"), sent.body


def test_one_destination_answering_garbage_keeps_the_alert_from_no_other_destination(
    api: Api, loopback: None, not_http: NotHttp, receiver: Receiver, clock: Clock, lambda_context: Any
) -> None:
    """The delivery function sends each event to every enabled destination and retries only the ones that
    failed: a destination whose server answers something that is not HTTP is a failed attempt, logged, and the
    destinations listed after it get the event on the first receive (and only then)."""
    bad = _create(api, f"{not_http.url}/hook")
    assert bad.status == 201, bad.body
    clock.advance(timedelta(seconds=5))
    good = _create(api, f"{receiver.url}/hook")
    assert good.status == 201, good.body
    event = load_event("AlertDeliveryFunction.json")
    raised: list[str] = []
    for receive in range(1, 7):  # every receive SQS makes before the dead-letter queue
        event["Records"][0]["attributes"]["ApproximateReceiveCount"] = str(receive)
        try:
            lambdas.invoke("AlertDeliveryFunction", event, lambda_context)
        except Exception as error:  # what SQS would count as a failed receive
            raised.append(type(error).__name__)
    logged_bad = api.call(
        "GET", ONE + "/deliveries", path_params={**SP, "destinationId": bad.body["id"]}, key=ADMIN_KEY
    ).body["items"]

    assert not_http.requests >= 1  # the bad destination was called first
    assert (len(receiver.at("/hook")), len(logged_bad)) == (1, 6), (
        "the healthy destination got",
        len(receiver.at("/hook")),
        "the failing one's log holds",
        len(logged_bad),
        raised,
    )
    assert raised == []


def test_a_redirect_is_a_failed_attempt_and_its_location_is_never_called(
    api: Api, loopback: None, receiver: Receiver
) -> None:
    """No redirect is followed: nothing but the configured URL is ever called."""
    redirector = Redirector(f"{receiver.url}/elsewhere")
    try:
        made = _create(api, f"{redirector.url}/hook")
        sent = _test_send(api, made.body["id"])
    finally:
        redirector.close()

    assert (sent.body["status"], sent.body["status_code"], sent.body["error"]) == ("failed", 302, "HTTP 302")
    assert redirector.requests == 1 and receiver.requests == []
