"""``logic.destinations`` with fakes of the repository and the sender (the signing secrets go through the real
KMS adapter on in-process moto): who gets an event, what a retry skips, and what is never called."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from dora_insights.dal.secrets import KmsSecretBox
from dora_insights.domain.alert_destinations import (
    BREACHED,
    AlertDetail,
    Delivery,
    Destination,
    DestinationKind,
)
from dora_insights.errors import RequestInvalidError, ResourceConflictError, ResourceNotFoundError
from dora_insights.logic import destinations

NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)
SPACE = "Spaces-1"
DETAIL = AlertDetail(notification_id="t1:x", space_id=SPACE, insight_id=7, value=3, bounds={"upper": 1}, state="Firing")


@dataclass
class FakeRepository:
    items: dict[tuple[str, str], Destination] = field(default_factory=dict)
    log: list[Delivery] = field(default_factory=list)
    marks: set[tuple[str, str, str]] = field(default_factory=set)

    def create(self, destination: Destination) -> None:
        self.items[(destination.space_id, destination.id)] = destination

    def replace(self, destination: Destination) -> bool:
        if (destination.space_id, destination.id) not in self.items:
            return False
        self.items[(destination.space_id, destination.id)] = destination
        return True

    def get(self, space_id: str, destination_id: str) -> Destination | None:
        return self.items.get((space_id, destination_id))

    def list_all(self, space_id: str) -> list[Destination]:
        return sorted((d for (s, _), d in self.items.items() if s == space_id), key=lambda d: d.id)

    def delete(self, space_id: str, destination_id: str) -> bool:
        return self.items.pop((space_id, destination_id), None) is not None

    def delivered(self, space_id: str, destination_id: str, notification_id: str) -> bool:
        return (space_id, destination_id, notification_id) in self.marks

    def record(self, space_id: str, delivery: Delivery, now: datetime, *, mark_delivered: bool) -> None:
        self.log.append(delivery)
        if mark_delivered:
            self.marks.add((space_id, delivery.destination_id, delivery.notification_id))

    def deliveries(
        self, space_id: str, destination_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Delivery], str | None]:
        return [d for d in self.log if d.destination_id == destination_id][::-1][:limit], None


@dataclass(frozen=True)
class Sent:
    status_code: int | None
    error: str | None = None
    duration_ms: int = 1


@dataclass
class FakeSender:
    answers: dict[str, list[int]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Sent:
        self.calls.append(url)
        queue = self.answers.get(url, [200])
        return Sent(queue.pop(0) if len(queue) > 1 else queue[0])


@pytest.fixture
def box(secrets_key: str) -> KmsSecretBox:
    return KmsSecretBox(secrets_key)


def add(
    repo: FakeRepository,
    box: KmsSecretBox,
    url: str,
    *,
    kind: DestinationKind = DestinationKind.WEBHOOK,
    at: int = 0,
) -> str:
    made, _ = destinations.create_destination(
        repo,
        box,
        SPACE,
        name="d",
        kind=kind,
        url=url,
        enabled=True,
        link_base="https://api.example.com",
        by="test",
        now=NOW + timedelta(milliseconds=at),
        allow_loopback_http=True,
    )
    return made.id


def deliver(
    repo: FakeRepository, box: KmsSecretBox, sender: FakeSender, attempt: int = 1, *, loopback: bool = True
) -> None:
    destinations.deliver(repo, box, sender, BREACHED, DETAIL, attempt=attempt, now=NOW, allow_loopback_http=loopback)


def test_a_retry_sends_only_to_the_destinations_that_failed(box: KmsSecretBox) -> None:
    repo, sender = FakeRepository(), FakeSender(answers={"https://b.example.com/": [500, 200]})
    add(repo, box, "https://a.example.com/", at=0)
    failing = add(repo, box, "https://b.example.com/", at=1)

    with pytest.raises(destinations.AlertUndeliveredError) as raised:
        deliver(repo, box, sender)
    deliver(repo, box, sender, attempt=2)
    deliver(repo, box, sender, attempt=3)  # a redrive after success: nothing is sent again

    assert raised.value.destination_ids == [failing]
    assert sender.calls == ["https://a.example.com/", "https://b.example.com/", "https://b.example.com/"]
    assert [(d.status.value, d.attempt) for d in repo.log] == [("delivered", 1), ("failed", 1), ("delivered", 2)]


def test_a_loopback_url_stored_under_the_local_setting_is_never_called_without_it(box: KmsSecretBox) -> None:
    repo, sender = FakeRepository(), FakeSender()
    add(repo, box, "http://127.0.0.1:9000/hook")

    with pytest.raises(destinations.AlertUndeliveredError):
        deliver(repo, box, sender, loopback=False)

    assert sender.calls == []
    (entry,) = repo.log
    assert entry.status.value == "failed" and (entry.error or "").startswith("url not allowed")


def test_disabled_destinations_and_other_spaces_get_nothing(box: KmsSecretBox) -> None:
    repo, sender = FakeRepository(), FakeSender()
    off = add(repo, box, "https://off.example.com/")
    destinations.update_destination(
        repo, box, SPACE, off, destinations.DestinationChange(enabled=False), allow_loopback_http=False
    )
    repo.create(repo.items[(SPACE, off)].model_copy(update={"space_id": "Spaces-2", "id": "x", "enabled": True}))

    deliver(repo, box, sender)

    assert sender.calls == []


def test_a_test_send_logs_but_never_marks_a_real_event_delivered(box: KmsSecretBox) -> None:
    repo, sender = FakeRepository(), FakeSender()
    made = add(repo, box, "https://a.example.com/")

    sent = destinations.send_test(repo, box, sender, SPACE, made, now=NOW, allow_loopback_http=False)

    assert (sent.test, sent.status.value, sent.event_type) == (True, "delivered", "AlertDestinationTest")
    assert repo.marks == set()


def test_creation_refuses_bad_urls_an_eleventh_destination_and_unknown_ids(box: KmsSecretBox) -> None:
    repo = FakeRepository()
    with pytest.raises(RequestInvalidError):
        add(repo, box, "https://10.1.2.3/")
    for n in range(destinations.MAX_DESTINATIONS):
        add(repo, box, f"https://a.example.com/{n}", at=n)
    with pytest.raises(ResourceConflictError):
        add(repo, box, "https://a.example.com/more", at=99)
    with pytest.raises(ResourceNotFoundError):
        destinations.delete_destination(repo, SPACE, "nope")
    with pytest.raises(ResourceNotFoundError):
        destinations.list_deliveries(repo, SPACE, "nope", 10, None, NOW)
