"""``logic.destinations.deliver`` when one destination's attempt raises (its sender, its log, its delivered
mark): that destination's attempt is a failed one, logged, and every other destination still gets the event."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from dora_insights.domain.alert_destinations import (
    BREACHED,
    AlertDetail,
    Delivery,
    DeliveryMarks,
    DeliveryStatus,
    Destination,
    DestinationKind,
    Transition,
)
from dora_insights.logic import destinations
from dora_insights.observability import logger

NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)
SPACE = "Spaces-1"
DETAIL = AlertDetail(notification_id="t1:x", space_id=SPACE, insight_id=7, value=3, bounds={"upper": 1}, state="Firing")


def slack(name: str) -> Destination:
    """A Slack destination (no signing secret to open) whose URL names it."""
    return Destination(
        id=name,
        space_id=SPACE,
        name=name,
        kind=DestinationKind.SLACK,
        url=f"https://hooks.slack.com/services/T/{name}/x",
        created_at="2024-03-06T12:00:00.000Z",
    )


@dataclass
class Repository:
    """Destinations in id order, their log and marks; ``broken`` destinations' reads or writes raise."""

    items: list[Destination]
    broken_reads: set[str] = field(default_factory=set)
    broken_writes: set[str] = field(default_factory=set)
    log: list[Delivery] = field(default_factory=list)
    marks: set[str] = field(default_factory=set)

    def list_all(self, space_id: str) -> list[Destination]:
        return list(self.items)

    def delivery_marks(
        self, space_id: str, destination_id: str, notification_id: str, threshold_id: str | None
    ) -> DeliveryMarks:
        if destination_id in self.broken_reads:
            raise RuntimeError("the table is unavailable for this one")
        return DeliveryMarks(destination_id in self.marks)

    def record(
        self,
        space_id: str,
        delivery: Delivery,
        now: datetime,
        *,
        mark_delivered: bool,
        transition: Transition | None = None,
    ) -> None:
        if delivery.destination_id in self.broken_writes:
            raise RuntimeError("the log is unavailable for this one")
        self.log.append(delivery)
        if mark_delivered:
            self.marks.add(delivery.destination_id)

    # what delivering never uses
    def create(self, destination: Destination) -> None:
        raise NotImplementedError

    def replace(self, destination: Destination) -> bool:
        raise NotImplementedError

    def get(self, space_id: str, destination_id: str) -> Destination | None:
        raise NotImplementedError

    def delete(self, space_id: str, destination_id: str) -> bool:
        raise NotImplementedError

    def deliveries(
        self, space_id: str, destination_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Delivery], str | None]:
        raise NotImplementedError


@dataclass(frozen=True)
class Sent:
    status_code: int | None
    error: str | None = None
    duration_ms: int = 1


@dataclass
class Sender:
    """Answers 200, except that a URL naming a destination in ``raising`` raises (a sender breaking its
    contract: failures are results)."""

    raising: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Sent:
        self.calls.append(url)
        if any(f"/{name}/" in url for name in self.raising):
            raise ConnectionError("the sender broke")
        return Sent(200)


class NoSecrets:
    """A SecretBox no Slack destination uses."""

    def seal(self, plaintext: str, context: Mapping[str, str]) -> str:
        raise AssertionError("not used")

    def open(self, stored: str, context: Mapping[str, str]) -> str | None:
        raise AssertionError("not used")


@pytest.fixture
def logged(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The messages ``logger.exception`` was called with."""
    found: list[str] = []

    def exception(message: str, *args: Any, **kwargs: Any) -> None:
        found.append(message)

    monkeypatch.setattr(logger, "exception", exception)
    return found


def deliver(repo: Repository, sender: Sender, attempt: int = 1) -> destinations.DeliveryReport:
    return destinations.deliver(
        repo,
        NoSecrets(),
        sender,
        BREACHED,
        DETAIL,
        attempt=attempt,
        now=NOW,
        allow_loopback_http=False,
        public_base_url=None,
    )


def test_a_sender_that_raises_is_a_failed_attempt_and_the_others_still_get_the_event(logged: list[str]) -> None:
    repo, sender = Repository([slack("a"), slack("b"), slack("c")]), Sender(raising={"a"})

    with pytest.raises(destinations.AlertUndeliveredError) as undelivered:
        deliver(repo, sender)

    assert undelivered.value.destination_ids == ["a"]
    assert [(d.destination_id, d.status) for d in repo.log] == [
        ("a", DeliveryStatus.FAILED),
        ("b", DeliveryStatus.DELIVERED),
        ("c", DeliveryStatus.DELIVERED),
    ]
    assert repo.log[0].error == "internal error during the attempt: ConnectionError"
    assert repo.marks == {"b", "c"} and len(logged) == 1


def test_a_destination_whose_log_or_mark_cannot_be_read_or_written_keeps_the_event_from_no_other(
    logged: list[str],
) -> None:
    repo = Repository([slack("a"), slack("b"), slack("c")], broken_reads={"a"}, broken_writes={"b"})
    sender = Sender()

    with pytest.raises(destinations.AlertUndeliveredError) as undelivered:
        deliver(repo, sender)

    assert undelivered.value.destination_ids == ["a", "b"]
    assert [(d.destination_id, d.status, d.error) for d in repo.log] == [
        ("a", DeliveryStatus.FAILED, "internal error during the attempt"),
        ("c", DeliveryStatus.DELIVERED, None),
    ]  # b's attempt could not be logged at all: the logs say so
    assert [url.split("/")[-2] for url in sender.calls] == ["b", "c"]
    assert len(logged) == 3  # a's attempt; b's attempt and b's failed log entry


def test_the_retry_sends_only_to_the_destination_that_raised(logged: list[str]) -> None:
    repo, sender = Repository([slack("a"), slack("b")]), Sender(raising={"a"})
    with pytest.raises(destinations.AlertUndeliveredError):
        deliver(repo, sender)
    sender.raising.clear()

    report = deliver(repo, sender, attempt=2)

    assert (report.delivered, report.skipped, report.failed) == (["a"], ["b"], [])
    assert [url.split("/")[-2] for url in sender.calls] == ["a", "b", "a"]
