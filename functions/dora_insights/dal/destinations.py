"""Alert destinations storage (``dal.keys`` patterns 62-64) and the outbound HTTP adapter that sends to them.

- ``DestinationStore``: destinations of a space (62; a webhook's signing secret as its KMS ciphertext,
  ``secret_encrypted``, or as given in ``secret`` on items written before encryption; a destination read
  takes its ``space_id`` from the partition it was read in, never from the item, so the secret's encryption
  context is the space it was found in), the delivery log of each (63, newest first, 30 days)
  and the marks of the events each has received (64), written with the log entry of the attempt that
  delivered them in one transaction, so a retried event never reaches a destination twice through us.
- The cap (``MAX_DESTINATIONS``) is held by DynamoDB, not by a count read before the write (two creates
  can both read 9): the space's count (65) goes one up in the create's transaction, conditional on being
  under the cap, and one down in the delete's. A space whose destinations were created before the count
  existed has none: the first create or delete that finds it absent counts the destinations with a
  consistent Query and puts the count (conditional on its absence) in its own transaction. No other write
  changes the number of destinations while the count is absent (each of them puts it or needs it), so the
  number counted is exact; one that lost the race to put it goes through the count the winner put.
- ``HttpSender``: one POST to one URL, with a timeout and no redirect followed (a 3xx is an answer,
  not a new address to call): the service never calls anything but the URL a destination names.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dora_insights.dal import aws, keys
from dora_insights.dal.store import Store
from dora_insights.domain.alert_destinations import Delivery, Destination
from dora_insights.errors import RequestInvalidError, ResourceConflictError, WriteContendedError

LOG_DAYS = 30
MAX_DESTINATIONS = 10  # per space: one event's deliveries must fit one invocation (10 x the send timeout)
_COUNT = "destinations"  # pattern 65's attribute
_COUNT_ROUNDS = 3  # a create or delete that finds no count puts it; one that lost that race goes through it
_HIDDEN = frozenset({keys.PK, keys.SK, keys.TYPE, keys.TTL})


def _own(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in _HIDDEN}


def _failed(reasons: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The cancellation reasons of the actions whose condition failed, by position (a transaction
    cancelled for no failed condition and no contention is an error)."""
    failed = {n: reason for n, reason in enumerate(reasons) if reason.get("Code") == "ConditionalCheckFailed"}
    if not failed:
        raise RuntimeError(f"the transaction was refused: {[r.get('Code') for r in reasons]}")
    return failed


def _count_refused(reasons: list[dict[str, Any]]) -> dict[str, Any]:
    """A create's count (first action) that failed its condition, its reason (with the count as it was, if
    there is one); the new destination's Put failing alone means its new id is taken (409: retry)."""
    failed = _failed(reasons)
    if 0 not in failed:
        raise ResourceConflictError("a destination with this id was created meanwhile; retry the request")
    return failed[0]


def _full() -> ResourceConflictError:
    return ResourceConflictError(f"a space has at most {MAX_DESTINATIONS} alert destinations", field="url")


def _expires(now: datetime) -> int:
    return int((now + timedelta(days=LOG_DAYS)).timestamp())


class DestinationStore:
    """Destinations, their delivery log and delivered marks, of any space."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- destinations (pattern 62) ----------------------------------------------------------------
    def create(self, destination: Destination) -> None:
        """Store a new destination (conditional on its new id being absent) with the space's count one up,
        conditional on it being under ``MAX_DESTINATIONS``, in one transaction (module docstring): a
        ``ResourceConflictError`` (409) when the space has as many as it may, a ``WriteContendedError``
        (503) when concurrent writes kept cancelling it."""
        space_id = destination.space_id
        item = {
            **keys.alert_destination(space_id, destination.id),
            keys.TYPE: keys.T_ALERT_DESTINATION,
            **destination.model_dump(mode="json"),
        }
        put = self.store.put_op(item, must_not_exist=True)
        for _ in range(_COUNT_ROUNDS):
            reasons = self._transact([self._count_op(space_id, 1), put])
            if reasons is None:
                return
            if _count_refused(reasons).get("Item"):  # the count is there, and at the cap
                raise _full()
            counted = self._count_now(space_id)  # no count yet: count the destinations
            if counted >= MAX_DESTINATIONS:
                raise _full()
            reasons = self._transact([self._first_count_op(space_id, counted + 1), put])
            if reasons is None:
                return
            _count_refused(reasons)  # another request put the count meanwhile: go through it
        raise WriteContendedError("the destination could not be written now, for concurrent writes; retry")

    def replace(self, destination: Destination) -> bool:
        """Save a changed destination; False when it was deleted meanwhile."""
        item = {
            **keys.alert_destination(destination.space_id, destination.id),
            keys.TYPE: keys.T_ALERT_DESTINATION,
            **destination.model_dump(mode="json"),
        }
        done = self.store.call_if(
            "put_item", TableName=self.store.table, Item=aws.serialize(item), ConditionExpression="attribute_exists(PK)"
        )
        return done is not None

    def get(self, space_id: str, destination_id: str) -> Destination | None:
        """One destination, or None."""
        item = self.store.get(keys.alert_destination(space_id, destination_id), consistent=True)
        return Destination.model_validate({**_own(item), "space_id": space_id}) if item else None

    def list_all(self, space_id: str) -> list[Destination]:
        """Every destination of the space, oldest first (ids sort by creation time), read consistently: a
        client lists right after a create or delete, and at most 10 items cost little."""
        items = self.store.query_all(partition=keys.alert_destinations_pk(space_id), consistent=True)
        return [Destination.model_validate({**_own(item), "space_id": space_id}) for item in items]

    def _count_now(self, space_id: str) -> int:
        """How many destinations the space has: a consistent Query of pattern 62 (the count, 65, aside)."""
        return sum(1 for _ in self.store.query_all(partition=keys.alert_destinations_pk(space_id), consistent=True))

    def delete(self, space_id: str, destination_id: str) -> bool:
        """Remove a destination with the space's count one down, in one transaction; False when there was
        none (a ``WriteContendedError`` when concurrent writes kept cancelling it). Its log expires with its
        TTL."""
        gone = {
            "Delete": {
                "TableName": self.store.table,
                "Key": aws.serialize(keys.alert_destination(space_id, destination_id)),
                "ConditionExpression": "attribute_exists(PK)",
            }
        }
        for _ in range(_COUNT_ROUNDS):
            reasons = self._transact([gone, self._count_op(space_id, -1)])
            if reasons is None:
                return True
            if 0 in _failed(reasons):  # no such destination
                return False
            counted = self._count_now(space_id)  # no count yet: count the destinations, this one included
            reasons = self._transact([gone, self._first_count_op(space_id, counted - 1)])
            if reasons is None:
                return True
            if 0 in _failed(reasons):
                return False
        raise WriteContendedError("the destination could not be removed now, for concurrent writes; retry")

    # --- the count (pattern 65) ------------------------------------------------------------------------
    def _count_op(self, space_id: str, change: int) -> dict[str, Any]:
        """The count's Update by ``change``, conditional on its presence (and, up, on being under the cap);
        a failed condition answers the count as it was, if any (``ALL_OLD``)."""
        condition = "attribute_exists(#n)" + (" AND #n < :max" if change > 0 else "")
        values: dict[str, Any] = {":change": {"N": str(change)}, ":t": {"S": keys.T_ALERT_DESTINATION_COUNT}}
        if change > 0:
            values[":max"] = {"N": str(MAX_DESTINATIONS)}
        return {
            "Update": {
                "TableName": self.store.table,
                "Key": aws.serialize(keys.alert_destination_count(space_id)),
                "UpdateExpression": "ADD #n :change SET #t = :t",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#n": _COUNT, "#t": keys.TYPE},
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _first_count_op(self, space_id: str, number: int) -> dict[str, Any]:
        """The count's first Put, conditional on its absence (another request may put it first)."""
        item = {**keys.alert_destination_count(space_id), keys.TYPE: keys.T_ALERT_DESTINATION_COUNT, _COUNT: number}
        return self.store.put_op(item, must_not_exist=True)

    def _transact(self, operations: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """``Store.transact_or_contended``: None once written, else the reasons of a failed condition."""
        return self.store.transact_or_contended(operations, "the destination")

    # --- deliveries (patterns 63 and 64) ------------------------------------------------------------
    def delivered(self, space_id: str, destination_id: str, notification_id: str) -> bool:
        """Whether the event already reached the destination (an earlier attempt of a retried message)."""
        item = self.store.get(keys.alert_delivered(space_id, destination_id, notification_id), consistent=True)
        return item is not None

    def record(self, space_id: str, delivery: Delivery, now: datetime, *, mark_delivered: bool) -> None:
        """Log one attempt; with ``mark_delivered``, the event's delivered mark in the same transaction."""
        entry = {
            **keys.alert_delivery(space_id, delivery.destination_id, delivery.attempted_at, delivery.id),
            keys.TYPE: keys.T_ALERT_DELIVERY,
            keys.TTL: _expires(now),
            **delivery.model_dump(mode="json"),
        }
        if not mark_delivered:
            self.store.call("put_item", TableName=self.store.table, Item=aws.serialize(entry))
            return
        mark = {
            **keys.alert_delivered(space_id, delivery.destination_id, delivery.notification_id),
            keys.TYPE: keys.T_ALERT_DELIVERED,
            keys.TTL: _expires(now),
            "delivery_id": delivery.id,
            "delivered_at": delivery.attempted_at,
        }
        self.store.transact([self.store.put_op(entry), self.store.put_op(mark)])

    def deliveries(
        self, space_id: str, destination_id: str, limit: int, cursor: str | None
    ) -> tuple[list[Delivery], str | None]:
        """A page of the destination's log, newest first, and the cursor of the next page."""
        partition = keys.alert_deliveries_pk(space_id, destination_id)
        start = aws.decode_cursor(cursor, space_id=space_id, partition=partition, index=None) if cursor else None
        if start is not None and not str(start[keys.SK]["S"]).startswith(keys.ALERT_DELIVERY_PREFIX):
            raise RequestInvalidError("cursor is not valid for this list", field="cursor")
        items, last = self.store.query_page(
            partition=partition,
            ascending=False,
            limit=limit,
            start_key=start,
            sort_prefix=keys.ALERT_DELIVERY_PREFIX,
        )
        found = [Delivery.model_validate(_own(item)) for item in items]
        return found, aws.encode_cursor(last) if last else None


# --- outbound HTTP -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SendResult:
    """What one POST got: the status code (None when there was no answer), why not, and how long it took."""

    status_code: int | None
    error: str | None
    duration_ms: int


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is the receiver's answer (recorded, retried), never a second URL to call."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)
MAX_ANSWER_BYTES = 64 * 1024  # read (and drop) at most this much of an answer


class HttpSender:
    """POSTs a body to a destination URL with a timeout (seconds)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        """One POST; every failure (no answer, timeout, TLS) is a result, never an exception."""
        request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310 (checked URL)
        started = time.monotonic()
        try:
            with _OPENER.open(request, timeout=self.timeout) as answer:
                answer.read(MAX_ANSWER_BYTES)
                status: int | None = int(answer.status)
                error = None
        except urllib.error.HTTPError as failed:
            status, error = int(failed.code), f"HTTP {failed.code}"
            failed.close()
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as failed:
            reason = getattr(failed, "reason", failed)
            status, error = None, f"{type(failed).__name__}: {reason}"[:300]
        return SendResult(status, error, int((time.monotonic() - started) * 1000))
