"""EventBridge adapter: the alert events users route to SNS, Slack or email with a rule.

``EventBus.send`` puts any number of events in as few ``PutEvents`` calls as EventBridge allows
(at most 10 entries and 256 KB per call) and reports each event's own outcome: an entry
EventBridge refused (``FailedEntryCount``, the entry's ``ErrorCode``) or a call that failed
as a whole (throttling, a network error) is a failure of those events only, for the caller to
retry; the other calls of the same ``send`` still go out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from dora_insights.dal import aws

SOURCE = "dora-insights"
MAX_ENTRIES = 10  # PutEvents entries per call
MAX_REQUEST_BYTES = 256 * 1024  # the entries' total size per call, measured as EventBridge does


class Event(NamedTuple):
    """One event to put: ``id`` is the sender's own, stable over retries (it is also in the detail)."""

    id: str
    detail_type: str
    detail: str  # JSON text, sent as stored so that every delivery carries the same bytes


def entry_size(event: Event) -> int:
    """An entry's size as EventBridge counts it against the 256 KB of a call (no ``Time``, no ``Resources``:
    the envelope's ``time`` is the delivery's; the detail's ``checked_at`` says when it happened)."""
    return len(SOURCE.encode()) + len(event.detail_type.encode()) + len(event.detail.encode())


def batches(events: Iterable[Event]) -> Iterable[list[Event]]:
    """The events in order, in groups that fit one PutEvents call (an entry too large alone goes alone,
    and EventBridge refuses that entry only)."""
    batch: list[Event] = []
    size = 0
    for event in events:
        one = entry_size(event)
        if batch and (len(batch) == MAX_ENTRIES or size + one > MAX_REQUEST_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += one
    if batch:
        yield batch


class EventBus:
    """Puts events on the bus named in template.yaml (``EVENT_BUS_NAME``)."""

    def __init__(self, bus_name: str) -> None:
        self.bus_name = bus_name

    def send(self, events: Sequence[Event]) -> dict[str, str | None]:
        """Put every event; each event's id -> None when EventBridge accepted it, else why not (an error code)."""
        outcome: dict[str, str | None] = {}
        for batch in batches(events):
            outcome.update(self._put(batch))
        return outcome

    def _put(self, batch: list[Event]) -> dict[str, str | None]:
        entries: list[dict[str, Any]] = [
            {"Source": SOURCE, "DetailType": event.detail_type, "Detail": event.detail, "EventBusName": self.bus_name}
            for event in batch
        ]
        try:
            response = aws.client("events").put_events(Entries=entries)
        except aws.ClientError as error:
            return {event.id: aws.error_code(error) or "ClientError" for event in batch}
        except aws.BotoCoreError as error:  # no answer (timeout, connection): not sent as far as we know
            return {event.id: type(error).__name__ for event in batch}
        results = response.get("Entries") or []
        outcome: dict[str, str | None] = {}
        for position, event in enumerate(batch):
            result = results[position] if position < len(results) else {}
            accepted = bool(result.get("EventId")) and not result.get("ErrorCode")
            outcome[event.id] = None if accepted else str(result.get("ErrorCode") or "NotAccepted")
        return outcome
