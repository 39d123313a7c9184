"""Alert destinations storage (``dal.keys`` patterns 62-66) and the outbound HTTP adapter that sends to them.

- ``DestinationStore``: destinations of a space (62; a webhook's signing secret as its KMS ciphertext,
  ``secret_encrypted``, or as given in ``secret`` on items written before encryption; a destination read
  takes its ``space_id`` from the partition it was read in, never from the item, so the secret's encryption
  context is the space it was found in), the delivery log of each (63, newest first, 30 days)
  and the marks of the events each has received (64), written with the log entry of the attempt that
  delivered them in one transaction, so a retried event never reaches a destination twice through us;
  in that transaction too, the check time of the latest transition of the event's threshold the destination
  took (66), conditional on moving forward: a transition older than it is not sent there (superseded).
- The cap (``MAX_DESTINATIONS``) is held by DynamoDB, not by a count read before the write (two creates
  can both read 9): the space's count (65) goes one up in the create's transaction, conditional on being
  under the cap, and one down in the delete's. A space whose destinations were created before the count
  existed has none: the first create or delete that finds it absent counts the destinations with a
  consistent Query and puts the count (conditional on its absence) in its own transaction. No other write
  changes the number of destinations while the count is absent (each of them puts it or needs it), so the
  number counted is exact; one that lost the race to put it goes through the count the winner put.
- ``HttpSender``: one POST to one URL, within one deadline for the whole attempt (resolve, connect, TLS,
  send, read the status line and headers) and no redirect followed (a 3xx is an answer, not a new address to
  call): the service never calls anything but the URL a destination names, and never an address outside the
  public internet that its name resolves to (each address is checked, and the connection goes to a checked
  one, with the name kept for TLS and the ``Host`` header).
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import itertools
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from dora_insights.dal import aws, keys
from dora_insights.dal.store import Store
from dora_insights.domain.alert_destinations import (
    Delivery,
    DeliveryMarks,
    Destination,
    Target,
    Transition,
    public_address,
    target_of,
)
from dora_insights.errors import RequestInvalidError, ResourceConflictError, WriteContendedError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

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
        """Save a changed destination over the version it was changed from (``destination.version``; an item
        stored before versions counts as 0) as the next version; False, and nothing written, when it was
        deleted meanwhile or another write changed it since it was read (the caller reads it again)."""
        item = {
            **keys.alert_destination(destination.space_id, destination.id),
            keys.TYPE: keys.T_ALERT_DESTINATION,
            **destination.model_dump(mode="json"),
            "version": destination.version + 1,
        }
        unversioned = " OR attribute_not_exists(#v)" if destination.version == 0 else ""
        done = self.store.call_if(
            "put_item",
            TableName=self.store.table,
            Item=aws.serialize(item),
            ConditionExpression=f"attribute_exists(PK) AND (#v = :v{unversioned})",
            ExpressionAttributeNames={"#v": "version"},
            ExpressionAttributeValues={":v": {"N": str(destination.version)}},
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

    # --- deliveries (patterns 63, 64 and 66) --------------------------------------------------------
    def delivery_marks(
        self, space_id: str, destination_id: str, notification_id: str, threshold_id: str | None
    ) -> DeliveryMarks:
        """Whether the event already reached the destination (an earlier attempt of a retried message) and,
        for an event of ``threshold_id``, the check time of the latest transition of that threshold it took:
        one consistent round trip (a GetItem, or a TransactGetItems of both items)."""
        delivered = keys.alert_delivered(space_id, destination_id, notification_id)
        if threshold_id is None:
            return DeliveryMarks(self.store.get(delivered, consistent=True) is not None)
        mark, last = self.store.transact_get(
            [delivered, keys.alert_last_transition(space_id, destination_id, threshold_id)]
        )
        if last and last.get("checked_at"):
            return DeliveryMarks(mark is not None, str(last["checked_at"]))
        return DeliveryMarks(mark is not None, self._latest_delivered(space_id, destination_id, threshold_id))

    def _latest_delivered(self, space_id: str, destination_id: str, threshold_id: str) -> str | None:
        """The check time of the latest event of ``threshold_id`` delivered to the destination, from its
        delivered marks (pattern 64; a notification id is ``<threshold id>:<checked_at>``, so the newest
        sorts last): what pattern 66 holds, for a destination with none. Pattern 66 came after the marks
        (9bb7c86); a destination that took a transition before it has only the mark, and without this a
        breach redriven after the upgrade would be sent after the clearing it took. One Query of one item,
        only when pattern 66 is missing (a threshold's first transition to the destination)."""
        prefix = keys.ALERT_DELIVERED_PREFIX + threshold_id + ":"
        found, _ = self.store.query_page(
            partition=keys.alert_deliveries_pk(space_id, destination_id),
            sort_prefix=prefix,
            ascending=False,
            limit=1,
            consistent=True,
        )
        return str(found[0][keys.SK]).removeprefix(prefix) if found else None

    def record(
        self,
        space_id: str,
        delivery: Delivery,
        now: datetime,
        *,
        mark_delivered: bool,
        transition: Transition | None = None,
    ) -> None:
        """Log one attempt; with ``mark_delivered``, the event's delivered mark in the same transaction, and
        with ``transition`` its threshold's latest transition taken (pattern 66) too, moved only forward: when
        a later transition was recorded meanwhile (sent at the same time by another invocation), the entry
        and the mark are written without it."""
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
            "status": delivery.status.value,
        }
        written = [self.store.put_op(entry), self.store.put_op(mark)]
        if transition is None:
            self.store.transact(written)
            return
        reasons = self.store.transact_contended(
            [*written, self._last_transition_op(space_id, delivery, transition, now)]
        )
        if reasons is None:
            return
        if len(written) not in _failed(reasons):  # only pattern 66's Put holds a condition
            raise RuntimeError(f"the delivery could not be recorded: {[r.get('Code') for r in reasons]}")
        self.store.transact(written)  # a later transition is recorded (sent meanwhile by another invocation): it stays

    def _last_transition_op(
        self, space_id: str, delivery: Delivery, transition: Transition, now: datetime
    ) -> dict[str, Any]:
        """Pattern 66's Put, conditional on holding no later transition (the mark only moves forward)."""
        item = {
            **keys.alert_last_transition(space_id, delivery.destination_id, transition.threshold_id),
            keys.TYPE: keys.T_ALERT_LAST_TRANSITION,
            keys.TTL: _expires(now),
            "checked_at": transition.checked_at,
            "notification_id": delivery.notification_id,
        }
        return {
            "Put": {
                "TableName": self.store.table,
                "Item": aws.serialize(item),
                "ConditionExpression": "attribute_not_exists(#c) OR #c <= :c",
                "ExpressionAttributeNames": {"#c": "checked_at"},
                "ExpressionAttributeValues": {":c": {"S": transition.checked_at}},
            }
        }

    def deliveries(
        self, space_id: str, destination_id: str, limit: int, cursor: str | None, now: datetime
    ) -> tuple[list[Delivery], str | None]:
        """A page of the destination's log, newest first, and the cursor of the next page. The log is kept 30
        days: an entry past its TTL (``keys.expired``), which DynamoDB may still return for days, ends the
        list, as every later one expired before it (an entry's TTL is its attempt's time and 30 days)."""
        partition = keys.alert_deliveries_pk(space_id, destination_id)
        start = aws.decode_cursor(cursor, space_id=space_id, partition=partition, index=None) if cursor else None
        if start is not None and not str(start[keys.SK]["S"]).startswith(keys.ALERT_DELIVERY_PREFIX):
            raise RequestInvalidError("cursor is not valid for this list", field="cursor")
        items, after = self.store.query_window(
            partition=partition, ascending=False, limit=limit, start_key=start, sort_prefix=keys.ALERT_DELIVERY_PREFIX
        )
        live = list(itertools.takewhile(lambda item: not keys.expired(item, now), items))
        if len(live) < len(items):
            after = None
        found = [Delivery.model_validate(_own(item)) for item in live]
        return found, aws.encode_cursor(after) if after is not None else None


# --- outbound HTTP -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SendResult:
    """What one POST got: the status code (None when there was no answer), why not, and how long it took."""

    status_code: int | None
    error: str | None
    duration_ms: int


MAX_ANSWER_BYTES = 64 * 1024  # the most of an answer read: its status line and headers (the body is never read)
_CHUNK = 4096  # the most one read of the answer asks for
_Address = tuple[socket.AddressFamily, Any]  # a family and a socket address to connect to


class AnswerTooLongError(ValueError):
    """An answer whose status line and headers do not end within ``MAX_ANSWER_BYTES``."""


class _NotCalledError(Exception):
    """The destination was not called: its name resolves to an address this service does not call."""


class _Deadline:
    """The end of one attempt: every wait of the attempt (resolve, connect, TLS, send, read) waits at most
    what is left of it."""

    def __init__(self, seconds: float, started: float) -> None:
        self.seconds = seconds
        self.at = started + seconds

    def remaining(self) -> float:
        """Seconds left; a ``TimeoutError`` when none are."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no answer within {self.seconds:g} s")
        return left


class _DeadlineReader(io.RawIOBase):
    """An answer's bytes, read in chunks of at most ``_CHUNK``, each wait bounded by what is left of the
    deadline, and at most ``MAX_ANSWER_BYTES`` in all."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline
        self._left = MAX_ANSWER_BYTES

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        if self._left <= 0:
            raise AnswerTooLongError(f"the answer's status line and headers are longer than {MAX_ANSWER_BYTES} bytes")
        self._sock.settimeout(self._deadline.remaining())
        with memoryview(buffer) as whole, whole.cast("B") as view:
            count = self._sock.recv_into(view[: min(len(view), _CHUNK, self._left)])
        self._left -= count
        return count


class _DeadlineSocket:
    """A connected socket as ``http.client`` uses it (``sendall``, ``makefile``, ``close``), every wait
    bounded by what is left of the attempt's deadline (a socket's own timeout bounds each wait alone)."""

    def __init__(self, sock: socket.socket, deadline: _Deadline) -> None:
        self._sock = sock
        self._deadline = deadline

    def sendall(self, data: ReadableBuffer) -> None:
        with memoryview(data) as whole, whole.cast("B") as view:
            sent = 0
            while sent < len(view):
                self._sock.settimeout(self._deadline.remaining())
                sent += self._sock.send(view[sent:])

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline), buffer_size=_CHUNK)

    def close(self) -> None:
        self._sock.close()


class _PinnedConnection(http.client.HTTPConnection):
    """HTTP, or HTTPS with ``tls``, to addresses checked before: it connects to them and never resolves the
    host again, and keeps the host name for the ``Host`` header, TLS SNI and the certificate's check."""

    def __init__(
        self, host: str, port: int, addresses: list[_Address], deadline: _Deadline, tls: ssl.SSLContext | None
    ) -> None:
        super().__init__(host, port)
        self.default_port = 443 if tls is not None else 80  # a Host header names the port only when not this
        self._addresses = addresses
        self._deadline = deadline
        self._tls = tls

    def connect(self) -> None:
        sock = _connect(self._addresses, self._deadline)
        try:
            if self._tls is not None:
                sock.settimeout(self._deadline.remaining())  # the handshake as a whole waits at most this
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = _DeadlineSocket(sock, self._deadline)


def _connect(addresses: list[_Address], deadline: _Deadline) -> socket.socket:
    """A TCP connection to the first of ``addresses`` that accepts one before the deadline."""
    failure: OSError = OSError("no address to connect to")
    for family, address in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(deadline.remaining())
            sock.connect(address)
        except OSError as error:
            sock.close()
            if isinstance(error, TimeoutError):
                raise
            failure = error
        else:
            return sock
    raise failure


def _resolve(host: str, port: int, deadline: _Deadline) -> list[tuple[Any, ...]]:
    """``getaddrinfo`` of ``host``, waited for at most until the deadline (the resolver has no timeout of its
    own to give it: a lookup still running then is left to end in its own daemon thread)."""
    found: list[tuple[Any, ...]] = []
    failed: list[Exception] = []

    def lookup() -> None:
        try:
            found.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except Exception as error:  # raised again in the caller's thread
            failed.append(error)

    thread = threading.Thread(target=lookup, name="alert-destination-resolve", daemon=True)
    thread.start()
    thread.join(deadline.remaining())
    if thread.is_alive():
        raise TimeoutError(f"{host} did not resolve within {deadline.seconds:g} s")
    if failed:
        raise failed[0]
    return found


@cache
def _default_tls() -> ssl.SSLContext:
    """The system's trusted certificates, the host name checked (created once: loading them takes time)."""
    return ssl.create_default_context()


class HttpSender:
    """POSTs a body to a destination URL, within ``timeout`` seconds for the whole attempt.

    The URL's host is resolved once; when any address it resolves to is outside the public internet (loopback
    too, unless ``allow_loopback``: the local runtime's setting), nothing is called and the attempt fails with
    that reason. Otherwise the connection goes to a checked address, never to a second lookup of the name (a
    DNS answer cannot change between the check and the call), and TLS checks the certificate against the
    host name. No redirect is followed: a 3xx is the answer. Only the status line and the headers are read."""

    def __init__(self, timeout: float, *, allow_loopback: bool = False, tls: ssl.SSLContext | None = None) -> None:
        self.timeout = timeout
        self.allow_loopback = allow_loopback
        self.tls = tls

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        """One POST; every failure (no answer, timeout, TLS, an answer that is not HTTP, an address not called)
        is a result, never an exception."""
        started = time.monotonic()
        status: int | None = None
        error: str | None
        try:
            status = self._exchange(target_of(url), body, headers, _Deadline(self.timeout, started))
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except _NotCalledError as refused:
            error = str(refused)
        except TimeoutError as failed:
            error = f"TimeoutError: {failed}"
        except http.client.HTTPException as failed:  # BadStatusLine, LineTooLong, RemoteDisconnected, ...
            error = f"not an HTTP answer: {type(failed).__name__}: {failed}"
        except (OSError, ValueError) as failed:  # refused, reset, TLS, DNS; a URL or header it cannot send
            error = f"{type(failed).__name__}: {failed}"
        return SendResult(status, error[:300] if error else None, int((time.monotonic() - started) * 1000))

    def _exchange(self, target: Target, body: bytes, headers: Mapping[str, str], deadline: _Deadline) -> int:
        """The status of the answer to the POST (the headers read, the body not)."""
        addresses = self._addresses(target, deadline)
        tls = (self.tls or _default_tls()) if target.scheme == "https" else None
        connection = _PinnedConnection(target.host, target.port, addresses, deadline, tls)
        try:
            connection.request("POST", target.path, body=body, headers={**headers, "Connection": "close"})
            return int(connection.getresponse().status)
        finally:
            connection.close()

    def _addresses(self, target: Target, deadline: _Deadline) -> list[_Address]:
        """The addresses ``target``'s host resolves to, every one of them checked."""
        addresses: list[_Address] = []
        for family, _, _, _, address in _resolve(target.host, target.port, deadline):
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            ip = ipaddress.ip_address(address[0])
            if not (public_address(ip) or (self.allow_loopback and ip.is_loopback)):
                raise _NotCalledError(
                    f"not called: {target.host} resolves to an address outside the public internet"
                    " (private, loopback, link-local or reserved)"
                )
            addresses.append((family, address))
        return addresses
