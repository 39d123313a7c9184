"""``logic.destinations`` with fakes of the repository and the sender (the signing secrets go through the real
KMS adapter on in-process moto): who gets an event, what a retry skips, and what is never called."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from dora_insights.dal.secrets import KmsSecretBox
from dora_insights.domain.alert_destinations import (
    BREACHED,
    CLEARED,
    AlertDetail,
    DestinationKind,
)
from dora_insights.errors import RequestInvalidError, ResourceConflictError, ResourceNotFoundError
from dora_insights.logic import destinations
from tests.unit.logic import fakes

NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)
SPACE = "Spaces-1"
DETAIL = AlertDetail(notification_id="t1:x", space_id=SPACE, insight_id=7, value=3, bounds={"upper": 1}, state="Firing")


FakeRepository = fakes.FakeDestinations


@dataclass(frozen=True)
class Sent:
    status_code: int | None
    error: str | None = None
    duration_ms: int = 1


@dataclass
class FakeSender:
    answers: dict[str, list[int]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Sent:
        self.calls.append(url)
        self.bodies.append(body)
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
    destinations.deliver(
        repo,
        box,
        sender,
        BREACHED,
        DETAIL,
        attempt=attempt,
        now=NOW,
        allow_loopback_http=loopback,
        public_base_url=None,
    )


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

    sent = destinations.send_test(
        repo, box, sender, SPACE, made, now=NOW, allow_loopback_http=False, public_base_url=None
    )

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


def transition(event_type: str, minute: int) -> tuple[str, AlertDetail]:
    """Threshold t1's breach or clearing checked at 12:``minute``."""
    checked_at = f"2024-03-06T12:{minute:02d}:00.000Z"
    firing = event_type == BREACHED
    detail = DETAIL.model_copy(
        update={
            "notification_id": f"t1:{checked_at}",
            "threshold_id": "t1",
            "checked_at": checked_at,
            "state": "Firing" if firing else "NotFiring",
            "previous_state": "NotFiring" if firing else "Firing",
        }
    )
    return event_type, detail


def send(
    repo: FakeRepository, box: KmsSecretBox, sender: FakeSender, event: tuple[str, AlertDetail], attempt: int = 1
) -> destinations.DeliveryReport:
    event_type, detail = event
    return destinations.deliver(
        repo,
        box,
        sender,
        event_type,
        detail,
        attempt=attempt,
        now=NOW + timedelta(minutes=attempt),
        allow_loopback_http=False,
        public_base_url=None,
    )


def test_a_breach_retried_after_its_clearing_was_delivered_is_superseded_not_sent(box: KmsSecretBox) -> None:
    repo, sender = FakeRepository(), FakeSender(answers={"https://b.example.com/": [500, 200]})
    a = add(repo, box, "https://a.example.com/", at=0)
    b = add(repo, box, "https://b.example.com/", at=1)
    breach, clearing = transition(BREACHED, 0), transition(CLEARED, 5)

    with pytest.raises(destinations.AlertUndeliveredError):
        send(repo, box, sender, breach)  # b answers 500: the breach waits for its retry
    send(repo, box, sender, clearing)  # both take the clearing meanwhile
    retried = send(repo, box, sender, breach, attempt=2)  # the breach's retry: nothing to send
    again = send(repo, box, sender, breach, attempt=3)  # a redrive: done everywhere, nothing logged

    assert (retried.delivered, retried.skipped, retried.superseded, retried.failed) == ([], [a], [b], [])
    assert (again.skipped, again.superseded) == ([a, b], [])
    got_b = [json.loads(body)["type"] for url, body in zip(sender.calls, sender.bodies, strict=True) if "b." in url]
    assert got_b == [BREACHED, CLEARED]  # the 500, then the clearing: the receiver ends not firing
    assert [(d.destination_id, d.event_type, d.status.value) for d in repo.log] == [
        (a, BREACHED, "delivered"),
        (b, BREACHED, "failed"),
        (a, CLEARED, "delivered"),
        (b, CLEARED, "delivered"),
        (b, BREACHED, "superseded"),
    ]
    assert "2024-03-06T12:05:00.000Z" in (repo.log[-1].error or "")
    assert repo.log[-1].status_code is None


def test_only_a_later_transition_supersedes_and_the_latest_only_moves_forward(box: KmsSecretBox) -> None:
    repo, sender = FakeRepository(), FakeSender()
    a = add(repo, box, "https://a.example.com/")
    send(repo, box, sender, transition(CLEARED, 5))
    send(repo, box, sender, transition(BREACHED, 10))  # later: sent
    older = send(repo, box, sender, transition(CLEARED, 7))  # between the two: superseded by the breach
    other = send(repo, box, sender, ("InsightThresholdBreached", DETAIL))  # no threshold named: no order

    assert older.superseded == [a] and other.delivered == [a]
    assert repo.last == {(SPACE, a, "t1"): "2024-03-06T12:10:00.000Z"}
    assert len(sender.calls) == 3


def test_the_insight_link_uses_the_public_base_url_when_the_service_has_one(box: KmsSecretBox) -> None:
    repo, sender = FakeRepository(), FakeSender()
    made = add(repo, box, "https://a.example.com/")  # created through https://api.example.com

    destinations.deliver(
        repo, box, sender, BREACHED, DETAIL, attempt=1, now=NOW, allow_loopback_http=False, public_base_url=None
    )
    destinations.send_test(
        repo, box, sender, SPACE, made, now=NOW, allow_loopback_http=False, public_base_url="https://dora.example.com/"
    )

    links = [json.loads(body)["insight_url"] for body in sender.bodies]
    assert links == [
        f"https://api.example.com/api/projects/{SPACE}/insights/7",
        f"https://dora.example.com/api/projects/{SPACE}/insights/0",
    ]
