"""Alert destinations: where a space's threshold alerts go, what is sent there, and how it is signed. Pure.

A destination is an HTTPS webhook (a JSON body signed with the destination's secret) or a Slack
incoming webhook (a message naming the insight, its value, the bounds and a link). What is sent is
built from the ``InsightThresholdBreached`` / ``InsightThresholdCleared`` event detail
(``logic.alerts``) and nothing else, so a delivery retried later carries the same content.

Signature (webhook destinations), replay-safe: the sender puts the unix time of the attempt in the
signed text, ``<timestamp>.<raw body>``, and sends ``X-Dora-Timestamp: <timestamp>`` and
``X-Dora-Signature: t=<timestamp>,v1=<hex HMAC-SHA256 of that text with the secret>``. A receiver
recomputes the HMAC over the timestamp and the raw bytes it received, compares in constant time and
refuses a timestamp more than a few minutes from its own clock (:func:`verify` is that recipe).

URLs: only ``https`` (a Slack destination: only ``hooks.slack.com``), never a host that names this
machine or a private, loopback, link-local or reserved address; ``allow_loopback_http`` (a setting of
the local runtime, never of a deployment) also admits ``http``/``https`` to ``127.0.0.1``, ``[::1]`` and
``localhost`` so tests and demos can receive alerts.
"""

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field

from dora_insights.domain.base import Model

BREACHED = "InsightThresholdBreached"
CLEARED = "InsightThresholdCleared"
TEST = "AlertDestinationTest"
ALERT_EVENT_TYPES = (BREACHED, CLEARED)

SIGNATURE_HEADER = "X-Dora-Signature"
TIMESTAMP_HEADER = "X-Dora-Timestamp"
EVENT_HEADER = "X-Dora-Event"
DELIVERY_HEADER = "X-Dora-Delivery"
SIGNATURE_VERSION = "v1"
SECRET_PREFIX = "whsec_"
SLACK_HOST = "hooks.slack.com"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
MAX_URL_LENGTH = 2048
REPLAY_TOLERANCE_SECONDS = 300


class DestinationKind(StrEnum):
    """What a destination is."""

    WEBHOOK = "webhook"
    SLACK = "slack"


class UrlNotAllowedError(ValueError):
    """A destination URL this service will not call (the message says why)."""


def check_url(kind: DestinationKind, url: str, *, allow_loopback_http: bool = False) -> str:
    """``url`` when alerts may be sent there, else :class:`UrlNotAllowedError` saying why."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlNotAllowedError(f"url is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise UrlNotAllowedError("url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlNotAllowedError("url is not a valid URL") from None
    host = (parts.hostname or "").lower()
    if not host:
        raise UrlNotAllowedError("url must name a host")
    if parts.username is not None or parts.password is not None:
        raise UrlNotAllowedError("url must not carry credentials before the host")
    if parts.fragment:
        raise UrlNotAllowedError("url must not have a fragment")
    loopback = host in LOOPBACK_HOSTS
    if loopback and allow_loopback_http and parts.scheme in ("http", "https"):
        return url
    if parts.scheme != "https":
        raise UrlNotAllowedError("url must be https")
    if port is not None and port != 443 and kind is DestinationKind.SLACK:
        raise UrlNotAllowedError("a Slack incoming webhook is https://hooks.slack.com/services/...")
    if kind is DestinationKind.SLACK and (host != SLACK_HOST or not parts.path.startswith("/services/")):
        raise UrlNotAllowedError("a Slack incoming webhook is https://hooks.slack.com/services/...")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        if not address.is_global:
            raise UrlNotAllowedError("url must not name a private, loopback, link-local or reserved address")
        return url
    if loopback or host.endswith((".localhost", ".local", ".internal")) or "." not in host:
        raise UrlNotAllowedError("url must name a public host")
    return url


def masked_url(kind: DestinationKind, url: str) -> str:
    """How a stored URL is shown after creation: a Slack URL is itself the credential, so only its
    host and the first part of its path are shown; a webhook URL is shown as given."""
    if kind is not DestinationKind.SLACK:
        return url
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    shown = "/".join(segments[:2])
    return f"{parts.scheme}://{parts.netloc}/{shown}/****"


# --- signatures -----------------------------------------------------------------------------------
def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``<timestamp>.<body>`` with ``secret``."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """``X-Dora-Signature``'s value: ``t=<timestamp>,v1=<hex>``."""
    return f"t={timestamp},{SIGNATURE_VERSION}={signature(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = REPLAY_TOLERANCE_SECONDS) -> bool:
    """What a receiver does: the header's ``v1`` matches the HMAC of its ``t`` and the raw body, and ``t`` is
    within ``tolerance`` seconds of the receiver's clock ``now`` (a replayed old request fails)."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    stamps = fields.get("t") or []
    if len(stamps) != 1 or not (stamps[0].isascii() and stamps[0].isdigit()):
        return False
    timestamp = int(stamps[0])
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, given) for given in fields.get(SIGNATURE_VERSION, []))


# --- what is sent ---------------------------------------------------------------------------------
class AlertDetail(Model):
    """The detail of an alert event (``logic.alerts``), as the delivery reads it."""

    model_config = ConfigDict(defer_build=True, extra="ignore")

    notification_id: str = Field(min_length=1, max_length=256)
    space_id: str = Field(min_length=1, max_length=64)
    insight_id: int
    insight_short_id: str = ""
    insight_name: str = ""
    threshold_id: str = ""
    threshold_name: str = ""
    value: int | float | None = None
    bounds: dict[str, int | float] = Field(default_factory=dict)
    previous_state: str | None = None
    state: str = ""
    checked_at: str = ""
    subscribed_users: list[Any] = Field(default_factory=list)


def insight_url(link_base: str, space_id: str, insight_id: int) -> str:
    """The link to the insight (its API resource, which answers with its current result)."""
    return f"{link_base.rstrip('/')}/api/projects/{space_id}/insights/{insight_id}"


def webhook_body(event_type: str, detail: AlertDetail, link: str) -> bytes:
    """The JSON a webhook destination receives: the event type, the event detail and the insight link."""
    document = {"type": event_type, **detail.model_dump(mode="json"), "insight_url": link}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _number(value: float | None) -> str:
    if value is None:
        return "no value"
    return f"{value:g}" if isinstance(value, float) else str(value)


def describe_bounds(bounds: Mapping[str, float]) -> str:
    """``below 1 or above 5`` style text of the bounds a value must stay within."""
    lower, upper = bounds.get("lower"), bounds.get("upper")
    if lower is not None and upper is not None:
        return f"between {_number(lower)} and {_number(upper)}"
    if lower is not None:
        return f"at least {_number(lower)}"
    if upper is not None:
        return f"at most {_number(upper)}"
    return "unbounded"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(event_type: str, detail: AlertDetail, link: str) -> bytes:
    """The Slack incoming-webhook message: insight name (linked), threshold, value and bounds."""
    name = _slack_escape(detail.insight_name or f"Insight {detail.insight_id}")
    threshold = _slack_escape(detail.threshold_name or detail.threshold_id)
    if event_type == CLEARED:
        headline = f":white_check_mark: Alert cleared: *{threshold}* on <{link}|{name}>"
    elif event_type == TEST:
        headline = f":wave: Test alert from dora-insights for <{link}|{name}>"
    else:
        headline = f":rotating_light: Alert firing: *{threshold}* on <{link}|{name}>"
    facts = f"Value *{_number(detail.value)}*; expected {describe_bounds(detail.bounds)} (checked {detail.checked_at})"
    text = f"{headline}\n{facts}"
    message = {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }
    return json.dumps(message, separators=(",", ":")).encode()


def body_for(kind: DestinationKind, event_type: str, detail: AlertDetail, link: str) -> bytes:
    """What a destination of ``kind`` receives for an event."""
    if kind is DestinationKind.SLACK:
        return slack_body(event_type, detail, link)
    return webhook_body(event_type, detail, link)


def request_headers(
    kind: DestinationKind, event_type: str, body: bytes, *, secret: str | None, timestamp: int, delivery_id: str
) -> dict[str, str]:
    """The headers of one attempt: JSON, and for a webhook the event, delivery id, timestamp and signature."""
    headers = {"Content-Type": "application/json", "User-Agent": "dora-insights-alerts/1"}
    if kind is DestinationKind.WEBHOOK and secret:
        headers[EVENT_HEADER] = event_type
        headers[DELIVERY_HEADER] = delivery_id
        headers[TIMESTAMP_HEADER] = str(timestamp)
        headers[SIGNATURE_HEADER] = signature_header(secret, timestamp, body)
    return headers


# --- records --------------------------------------------------------------------------------------
def signing_context(space_id: str, destination_id: str) -> dict[str, str]:
    """The KMS encryption context a destination's signing secret is encrypted under: its space, purpose
    and destination, so a ciphertext copied to another destination or space does not decrypt there."""
    return {"space": space_id, "purpose": "alert-destination-signing", "destination": destination_id}


class Destination(Model):
    """A destination as stored. ``secret_encrypted`` is the secret that signs webhook deliveries,
    encrypted with the stack's KMS key under :func:`signing_context` (base64 of the ciphertext,
    ``dal.secrets``); None for Slack, whose URL is the credential. ``secret`` is that secret as
    destinations created before it was encrypted hold it: still used to sign, never written again (the
    next write of the destination encrypts it). ``link_base`` is where the service is reached, for links
    to insights."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    id: str
    space_id: str
    name: str
    kind: DestinationKind
    url: str
    enabled: bool = True
    secret: str | None = None
    secret_encrypted: str | None = None
    link_base: str = ""
    created_at: str
    created_by: str = ""


class DeliveryStatus(StrEnum):
    """The outcome of one attempt."""

    DELIVERED = "delivered"
    FAILED = "failed"


class Delivery(Model):
    """One attempt to send one event to one destination (the delivery log)."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    id: str
    destination_id: str
    notification_id: str
    event_type: str
    attempt: int = 1
    attempted_at: str
    status: DeliveryStatus
    status_code: int | None = None
    error: str | None = None
    duration_ms: int = 0
    test: bool = False


def succeeded(status_code: int | None) -> bool:
    """A 2xx answer is a delivery; anything else (3xx included: redirects are not followed) is retried."""
    return status_code is not None and 200 <= status_code < 300
