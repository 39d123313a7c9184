"""Alert destinations storage (``dal.keys`` patterns 62-64) and the outbound HTTP adapter that sends to them.

- ``DestinationStore``: destinations of a space (62; a webhook's signing secret as its KMS ciphertext,
  ``secret_encrypted``, or as given in ``secret`` on items written before encryption; a destination read
  takes its ``space_id`` from the partition it was read in, never from the item, so the secret's encryption
  context is the space it was found in), the delivery log of each (63, newest first, 30 days)
  and the marks of the events each has received (64), written with the log entry of the attempt that
  delivered them in one transaction, so a retried event never reaches a destination twice through us.
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
from dora_insights.errors import RequestInvalidError

LOG_DAYS = 30
_HIDDEN = frozenset({keys.PK, keys.SK, keys.TYPE, keys.TTL})


def _own(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in _HIDDEN}


def _expires(now: datetime) -> int:
    return int((now + timedelta(days=LOG_DAYS)).timestamp())


class DestinationStore:
    """Destinations, their delivery log and delivered marks, of any space."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- destinations (pattern 62) ----------------------------------------------------------------
    def create(self, destination: Destination) -> None:
        """Store a new destination (its id is new: the write is conditional on it being absent)."""
        item = {
            **keys.alert_destination(destination.space_id, destination.id),
            keys.TYPE: keys.T_ALERT_DESTINATION,
            **destination.model_dump(mode="json"),
        }
        self.store.call(
            "put_item",
            TableName=self.store.table,
            Item=aws.serialize(item),
            ConditionExpression="attribute_not_exists(PK)",
        )

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
        """Every destination of the space, oldest first (ids sort by creation time)."""
        items = self.store.query_all(partition=keys.alert_destinations_pk(space_id))
        return [Destination.model_validate({**_own(item), "space_id": space_id}) for item in items]

    def delete(self, space_id: str, destination_id: str) -> bool:
        """Remove a destination; False when there was none. Its log expires with its TTL."""
        done = self.store.call_if(
            "delete_item",
            TableName=self.store.table,
            Key=aws.serialize(keys.alert_destination(space_id, destination_id)),
            ConditionExpression="attribute_exists(PK)",
        )
        return done is not None

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
