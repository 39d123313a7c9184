"""Alert destinations: manage a space's destinations, deliver alert events to them, test-send, read the log.

Delivery path (template.yaml): ``logic.alerts`` puts ``InsightThresholdBreached`` / ``InsightThresholdCleared``
on the bus; a rule sends them to the alert-delivery queue, whose function calls :func:`deliver` once per
message. :func:`deliver` sends the event to every enabled destination of its space that has not received
it yet (a delivered mark, ``dal.keys`` pattern 64, is written with the log entry of the attempt that
succeeded) nor a later transition of the same threshold (pattern 66, written with it: an older one is
logged ``superseded`` instead of sent, so a receiver never goes back to a state it left) and raises
:class:`AlertUndeliveredError` when one failed, so the queue retries the message after its visibility
timeout; past the queue's ``maxReceiveCount`` the message goes to the dead-letter queue. A redriven message
again reaches only the destinations it has not reached. Every attempt is logged.

Secrets: a webhook destination gets a signing secret generated here, answered once by the create route,
and kept on the destination item encrypted with the stack's KMS key under the destination's encryption
context (``SecretBox``, ``dal.secrets``; a signing key cannot be stored hashed); each delivery decrypts it
to sign, and no route shows it again. A destination created before secrets were encrypted holds its
secret as given: it still signs, and the next write of the destination (a PATCH) encrypts it. A
ciphertext that does not decrypt under its own destination's context (copied from another item) signs
nothing: the attempt is logged as failed, no request is sent. A Slack destination's URL is its
credential: after creation it is shown masked.

A space has at most ``MAX_DESTINATIONS``: the repository counts them in the create's and the delete's own
transactions (``dal.destinations``), so creates sent at once cannot pass the cap; the list read before a
create only refuses a space known to be full before a secret is sealed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from dora_insights.dal.destinations import MAX_DESTINATIONS  # the cap the repository holds
from dora_insights.domain.alert_destinations import (
    MASK,
    TEST,
    AlertDetail,
    Delivery,
    DeliveryMarks,
    DeliveryStatus,
    Destination,
    DestinationKind,
    Transition,
    UrlNotAllowedError,
    body_for,
    check_url,
    insight_url,
    masked_url,
    request_headers,
    signing_context,
    succeeded,
)
from dora_insights.domain.ids import new_id, new_secret
from dora_insights.domain.times import format_instant
from dora_insights.errors import RequestInvalidError, ResourceConflictError, ResourceNotFoundError, WriteContendedError
from dora_insights.logic.ports import SecretBox
from dora_insights.observability import logger

SECRET_PREFIX = "whsec_"
SEND_TIMEOUT_SECONDS = 5.0
_WRITE_ATTEMPTS = 3  # a PATCH: a lost race is made again from a fresh read, twice at most


class SendResultLike(Protocol):
    """What one POST got (``dal.destinations.SendResult``)."""

    @property
    def status_code(self) -> int | None: ...
    @property
    def error(self) -> str | None: ...
    @property
    def duration_ms(self) -> int: ...


class Sender(Protocol):
    """Outbound HTTP: one POST to one URL with a timeout; failures are results, not exceptions."""

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> SendResultLike: ...


class DestinationRepository(Protocol):
    """Destinations, their log and delivered marks (``dal.destinations.DestinationStore``)."""

    def create(self, destination: Destination) -> None:
        """Store a new destination; ``ResourceConflictError`` when its space has ``MAX_DESTINATIONS``
        already (the store holds the cap against concurrent creates)."""
        ...

    def replace(self, destination: Destination) -> bool:
        """Store a changed destination as version ``destination.version + 1``, only while it is stored at
        ``destination.version``: False, and nothing written, when it was deleted or changed meanwhile."""
        ...

    def get(self, space_id: str, destination_id: str) -> Destination | None: ...
    def list_all(self, space_id: str) -> list[Destination]: ...
    def delete(self, space_id: str, destination_id: str) -> bool: ...
    def delivery_marks(
        self, space_id: str, destination_id: str, notification_id: str, threshold_id: str | None
    ) -> DeliveryMarks:
        """Whether the event reached the destination already and, given ``threshold_id``, the check time of
        the latest transition of that threshold the destination took (one round trip)."""
        ...

    def record(
        self,
        space_id: str,
        delivery: Delivery,
        now: datetime,
        *,
        mark_delivered: bool,
        transition: Transition | None = None,
    ) -> None:
        """Log an attempt; ``mark_delivered``: with the event's delivered mark (a retry skips the destination);
        ``transition``: and as the threshold's latest transition the destination took, unless a later one is."""
        ...

    def deliveries(
        self, space_id: str, destination_id: str, limit: int, cursor: str | None, now: datetime
    ) -> tuple[list[Delivery], str | None]: ...


class AlertUndeliveredError(Exception):
    """Some destination did not take the event (the message is retried; the others are not sent again)."""

    def __init__(self, notification_id: str, destination_ids: list[str]) -> None:
        super().__init__(f"{notification_id}: not delivered to {', '.join(destination_ids)}")
        self.notification_id = notification_id
        self.destination_ids = destination_ids


# --- management -----------------------------------------------------------------------------------------
def _checked(kind: DestinationKind, url: str, allow_loopback_http: bool) -> str:
    """``url`` when alerts may be sent there (``check_url``); a 400 naming ``url`` otherwise, a Slack URL that
    holds the mask it is shown with (``masked_url``: it is never a webhook URL Slack issued) included."""
    if kind is DestinationKind.SLACK and MASK in url:
        raise RequestInvalidError(
            f"url holds the mask '{MASK}' a Slack URL is shown with: send the whole webhook URL"
            " (to keep the current one, leave url out or send it as shown)",
            field="url",
        )
    try:
        return check_url(kind, url, allow_loopback_http=allow_loopback_http)
    except UrlNotAllowedError as error:
        raise RequestInvalidError(str(error), field="url") from None


def create_destination(
    repo: DestinationRepository,
    secrets: SecretBox,
    space_id: str,
    *,
    name: str,
    kind: DestinationKind,
    url: str,
    enabled: bool,
    link_base: str,
    by: str,
    now: datetime,
    allow_loopback_http: bool,
) -> tuple[Destination, str | None]:
    """A new destination and, for a webhook, its signing secret (the only time it is returned; stored encrypted)."""
    checked = _checked(kind, url, allow_loopback_http)
    # A space known to be full is refused before a secret is sealed; the repository's create holds the cap
    # against creates this read cannot see (concurrent ones).
    if len(repo.list_all(space_id)) >= MAX_DESTINATIONS:
        raise ResourceConflictError(f"a space has at most {MAX_DESTINATIONS} alert destinations", field="url")
    destination_id = new_id(now).lower()
    secret = new_secret(SECRET_PREFIX) if kind is DestinationKind.WEBHOOK else None
    sealed = secrets.seal(secret, signing_context(space_id, destination_id)) if secret is not None else None
    destination = Destination(
        id=destination_id,
        space_id=space_id,
        name=name,
        kind=kind,
        url=checked,
        enabled=enabled,
        secret_encrypted=sealed,
        link_base=link_base,
        created_at=format_instant(now),
        created_by=by,
    )
    repo.create(destination)
    logger.info("alert destination created", extra={"space_id": space_id, "destination_id": destination.id})
    return destination, secret


def get_destination(repo: DestinationRepository, space_id: str, destination_id: str) -> Destination:
    """One destination of the space; 404 when there is none."""
    found = repo.get(space_id, destination_id)
    if found is None:
        raise ResourceNotFoundError(f"no alert destination {destination_id}")
    return found


def list_destinations(repo: DestinationRepository, space_id: str) -> list[Destination]:
    """The space's destinations, oldest first."""
    return repo.list_all(space_id)


@dataclass(frozen=True)
class DestinationChange:
    """A PATCH: only the fields given (not None) change."""

    name: str | None = None
    url: str | None = None
    enabled: bool | None = None


def _changed_url(current: Destination, url: str, allow_loopback_http: bool) -> str:
    """The URL a PATCH's ``url`` sets. A Slack URL is shown masked (``masked_url``), so a client that sends back
    what it read sends the mask: the masked form of the current URL leaves it as it is (any other URL holding
    the mask is ``_checked``'s 400)."""
    if current.kind is DestinationKind.SLACK and url == masked_url(current.kind, current.url):
        return current.url
    return _checked(current.kind, url, allow_loopback_http)


def update_destination(
    repo: DestinationRepository,
    secrets: SecretBox,
    space_id: str,
    destination_id: str,
    change: DestinationChange,
    *,
    allow_loopback_http: bool,
) -> Destination:
    """Change a destination's name, URL or enabled flag (the secret stays; one stored before encryption is
    encrypted now) and answer it as stored.

    The write holds only over the version read (``DestinationRepository.replace``): a concurrent PATCH is
    never overwritten with what this one read before it landed (a rename never turns a destination it
    disabled back on). A lost race is made again from a fresh read (the fields given are what the client
    asked for); a destination deleted meanwhile is a 404, never brought back; ``_WRITE_ATTEMPTS`` lost
    races are contention: the 503 ``write_contended`` (API.md Errors: a retry of the same request is safe),
    never a 409, which would say another request changed what this one meant to change."""
    for _ in range(_WRITE_ATTEMPTS):
        current = get_destination(repo, space_id, destination_id)
        update: dict[str, object] = {}
        if current.secret is not None and current.secret_encrypted is None:
            update["secret_encrypted"] = secrets.seal(current.secret, signing_context(space_id, destination_id))
            update["secret"] = None
        if change.name is not None:
            update["name"] = change.name
        if change.enabled is not None:
            update["enabled"] = change.enabled
        if change.url is not None:
            update["url"] = _changed_url(current, change.url, allow_loopback_http)
        changed = current.model_copy(update=update)
        if changed == current:  # nothing to write: the destination as stored
            return current
        if repo.replace(changed):
            if "secret_encrypted" in update:
                logger.info(
                    "legacy signing secret encrypted", extra={"space_id": space_id, "destination_id": destination_id}
                )
            return changed.model_copy(update={"version": current.version + 1})
    raise WriteContendedError("the alert destination could not be written now, for concurrent writes; retry")


def delete_destination(repo: DestinationRepository, space_id: str, destination_id: str) -> None:
    """Remove a destination (events not yet sent to it are not sent); 404 when there is none."""
    if not repo.delete(space_id, destination_id):
        raise ResourceNotFoundError(f"no alert destination {destination_id}")


def list_deliveries(
    repo: DestinationRepository, space_id: str, destination_id: str, limit: int, cursor: str | None, now: datetime
) -> tuple[list[Delivery], str | None]:
    """A page of a destination's delivery log (its last 30 days), newest first; 404 for an unknown destination."""
    get_destination(repo, space_id, destination_id)
    return repo.deliveries(space_id, destination_id, limit, cursor, now)


# --- sending --------------------------------------------------------------------------------------------
_UNREADABLE_SECRET = "signing secret does not decrypt for this destination: delete it and create it again"
_UNEXPECTED = "internal error during the attempt"  # the log says which; the delivery log only that it failed


def _signing_secret(secrets: SecretBox, destination: Destination) -> str | None:
    """The secret that signs the destination's deliveries (decrypted; a legacy one as stored); None when it
    has none (Slack) or when its ciphertext does not decrypt under its own context."""
    if destination.secret_encrypted is None:
        return destination.secret
    return secrets.open(destination.secret_encrypted, signing_context(destination.space_id, destination.id))


def _post(
    sender: Sender, url: str, body: bytes, headers: dict[str, str], destination: Destination, detail: AlertDetail
) -> tuple[int | None, str | None, int]:
    """The sender's answer (status code, why not, milliseconds); a sender that raised instead of answering a
    failure (its contract) is a failed attempt too, logged with its traceback."""
    started = time.monotonic()
    try:
        result = sender.post(url, body, headers)
    except Exception as error:
        logger.exception(
            "alert destination sender raised", extra={"space_id": detail.space_id, "destination_id": destination.id}
        )
        return None, f"{_UNEXPECTED}: {type(error).__name__}", int((time.monotonic() - started) * 1000)
    return result.status_code, result.error, result.duration_ms


def _attempt(
    repo: DestinationRepository,
    secrets: SecretBox,
    sender: Sender,
    destination: Destination,
    event_type: str,
    detail: AlertDetail,
    *,
    attempt: int,
    now: datetime,
    allow_loopback_http: bool,
    public_base_url: str | None,
    transition: Transition | None = None,
    test: bool = False,
) -> Delivery:
    """Send one event to one destination and log the attempt (with its delivered mark on success, and the
    event's ``transition`` as the latest of its threshold the destination took). The insight link's base is
    ``public_base_url`` when the service has one, else where the destination was created through."""
    delivery_id = new_id(now).lower()
    status_code: int | None
    problem: str | None
    try:
        url = check_url(destination.kind, destination.url, allow_loopback_http=allow_loopback_http)
    except UrlNotAllowedError as error:  # stored under other settings: never called
        status_code, problem, duration = None, f"url not allowed: {error}", 0
    else:
        secret = _signing_secret(secrets, destination) if destination.kind is DestinationKind.WEBHOOK else None
        if destination.kind is DestinationKind.WEBHOOK and secret is None:  # unsigned: never sent
            logger.error(_UNREADABLE_SECRET, extra={"space_id": detail.space_id, "destination_id": destination.id})
            status_code, problem, duration = None, _UNREADABLE_SECRET, 0
        else:
            link = insight_url(public_base_url or destination.link_base, detail.space_id, detail.insight_id)
            body = body_for(destination.kind, event_type, detail, link)
            headers = request_headers(
                destination.kind,
                event_type,
                body,
                secret=secret,
                timestamp=int(now.timestamp()),
                delivery_id=delivery_id,
            )
            status_code, problem, duration = _post(sender, url, body, headers, destination, detail)
    ok = succeeded(status_code)
    delivery = Delivery(
        id=delivery_id,
        destination_id=destination.id,
        notification_id=detail.notification_id,
        event_type=event_type,
        attempt=attempt,
        attempted_at=format_instant(now),
        status=DeliveryStatus.DELIVERED if ok else DeliveryStatus.FAILED,
        status_code=status_code,
        error=None if ok else (problem or f"HTTP {status_code}"),
        duration_ms=duration,
        test=test,
    )
    repo.record(
        detail.space_id,
        delivery,
        now,
        mark_delivered=ok and not test,
        transition=transition if ok and not test else None,
    )
    logger.info(
        "alert delivery attempt",
        extra={
            "space_id": detail.space_id,
            "destination_id": destination.id,
            "notification_id": detail.notification_id,
            "status": delivery.status.value,
            "status_code": status_code,
            "attempt": attempt,
        },
    )
    return delivery


@dataclass
class DeliveryReport:
    """What :func:`deliver` did with one event."""

    delivered: list[str] = field(default_factory=list)  # destination ids reached now
    skipped: list[str] = field(default_factory=list)  # reached by an earlier attempt
    superseded: list[str] = field(default_factory=list)  # not sent: they took a later transition already
    failed: list[str] = field(default_factory=list)


def _unsent(
    destination: Destination,
    event_type: str,
    detail: AlertDetail,
    status: DeliveryStatus,
    error: str,
    *,
    attempt: int,
    now: datetime,
) -> Delivery:
    """The log entry of an attempt that sent nothing (no answer, so no status code or duration)."""
    return Delivery(
        id=new_id(now).lower(),
        destination_id=destination.id,
        notification_id=detail.notification_id,
        event_type=event_type,
        attempt=attempt,
        attempted_at=format_instant(now),
        status=status,
        error=error,
    )


def _record_superseded(
    repo: DestinationRepository,
    destination: Destination,
    event_type: str,
    detail: AlertDetail,
    marks: DeliveryMarks,
    *,
    attempt: int,
    now: datetime,
) -> None:
    """Log that the event was not sent to a destination that took a later transition of its threshold, with
    the event's delivered mark: it is done there, and a retry of the message (for another destination) skips
    it without logging it again."""
    why = f"not sent: a later transition of the threshold (checked at {marks.last_checked_at}) was delivered"
    delivery = _unsent(destination, event_type, detail, DeliveryStatus.SUPERSEDED, why, attempt=attempt, now=now)
    repo.record(detail.space_id, delivery, now, mark_delivered=True)
    logger.info(
        "alert delivery superseded",
        extra={
            "space_id": detail.space_id,
            "destination_id": destination.id,
            "notification_id": detail.notification_id,
            "last_checked_at": marks.last_checked_at,
            "attempt": attempt,
        },
    )


def _record_unexpected(
    repo: DestinationRepository,
    destination: Destination,
    event_type: str,
    detail: AlertDetail,
    *,
    attempt: int,
    now: datetime,
) -> None:
    """Log an attempt that raised as a failed one, when the log can be written (else say so in the logs)."""
    delivery = _unsent(destination, event_type, detail, DeliveryStatus.FAILED, _UNEXPECTED, attempt=attempt, now=now)
    try:
        repo.record(detail.space_id, delivery, now, mark_delivered=False)
    except Exception:
        logger.exception(
            "failed alert delivery attempt could not be logged",
            extra={"space_id": detail.space_id, "destination_id": destination.id, "attempt": attempt},
        )


def deliver(
    repo: DestinationRepository,
    secrets: SecretBox,
    sender: Sender,
    event_type: str,
    detail: AlertDetail,
    *,
    attempt: int,
    now: datetime,
    allow_loopback_http: bool,
    public_base_url: str | None,
) -> DeliveryReport:
    """Send one alert event to every enabled destination of its space not reached yet.

    Raises :class:`AlertUndeliveredError` when a destination failed (after trying all of them), so the
    event is retried; the destinations it reached are marked and skipped by the retry. An attempt that
    raised (the log, the secret, the sender) is logged with its traceback and counts as failed for that
    destination only: the others are still attempted.

    Order: a destination that already took a later transition of the event's threshold (a clearing
    delivered while this breach waited for its retry, or a redrive in any order) is not sent it: sending it
    would leave the receiver in the older state. The attempt is logged ``superseded`` and counts as done
    there. The latest transition is read with the delivered mark (one round trip a destination)."""
    report = DeliveryReport()
    transition = Transition.of(detail)
    for destination in repo.list_all(detail.space_id):
        if not destination.enabled:
            continue
        try:
            marks = repo.delivery_marks(
                detail.space_id,
                destination.id,
                detail.notification_id,
                transition.threshold_id if transition else None,
            )
            if marks.delivered:
                report.skipped.append(destination.id)
                continue
            if marks.supersedes(transition):
                _record_superseded(repo, destination, event_type, detail, marks, attempt=attempt, now=now)
                report.superseded.append(destination.id)
                continue
            delivery = _attempt(
                repo,
                secrets,
                sender,
                destination,
                event_type,
                detail,
                attempt=attempt,
                now=now,
                allow_loopback_http=allow_loopback_http,
                public_base_url=public_base_url,
                transition=transition,
            )
        except Exception:  # one destination's trouble never keeps the event from the others
            logger.exception(
                "alert delivery attempt failed unexpectedly",
                extra={"space_id": detail.space_id, "destination_id": destination.id, "attempt": attempt},
            )
            _record_unexpected(repo, destination, event_type, detail, attempt=attempt, now=now)
            report.failed.append(destination.id)
            continue
        (report.delivered if delivery.status is DeliveryStatus.DELIVERED else report.failed).append(destination.id)
    if report.failed:
        raise AlertUndeliveredError(detail.notification_id, report.failed)
    return report


def example_detail(space_id: str, now: datetime) -> AlertDetail:
    """The example event a test-send carries (marked as a test by its type, ``AlertDestinationTest``)."""
    checked_at = format_instant(now)
    return AlertDetail(
        notification_id=f"test:{checked_at}",
        space_id=space_id,
        insight_id=0,
        insight_short_id="test",
        insight_name="Test insight",
        threshold_id="test",
        threshold_name="Test threshold",
        value=1,
        bounds={"upper": 0.5},
        previous_state="NotFiring",
        state="Firing",
        checked_at=checked_at,
    )


def send_test(
    repo: DestinationRepository,
    secrets: SecretBox,
    sender: Sender,
    space_id: str,
    destination_id: str,
    *,
    now: datetime,
    allow_loopback_http: bool,
    public_base_url: str | None,
) -> Delivery:
    """Send the example event to one destination now (enabled or not), log it, and answer how it went."""
    destination = get_destination(repo, space_id, destination_id)
    return _attempt(
        repo,
        secrets,
        sender,
        destination,
        TEST,
        example_detail(space_id, now),
        attempt=1,
        now=now,
        allow_loopback_http=allow_loopback_http,
        public_base_url=public_base_url,
        test=True,
    )
