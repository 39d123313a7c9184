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
``localhost`` so tests and demos can receive alerts. The rules read the host as the resolver will
(:func:`normalised_host`: IDNA mapping, no trailing dot, every IPv4 form ``inet_aton`` reads), and a URL
passes only when the sender can send it as given (:func:`target_of`). A name's addresses are not known
here: the sender checks each one it resolves to before it connects (``dal.destinations``).
"""

import hashlib
import hmac
import ipaddress
import json
import re
import socket
import unicodedata
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

from pydantic import ConfigDict, Field

from dora_insights.domain.base import Model
from dora_insights.domain.times import InstantError, format_instant, parse_instant

BREACHED = "InsightThresholdBreached"
CLEARED = "InsightThresholdCleared"
# What moved a threshold into or out of Firing (the detail's ``reason``): its scheduled check, or the end
# of a Firing threshold that was disabled, deleted, or whose insight was deleted (``InsightThresholdCleared``).
CHECKED = "check"
DISABLED = "threshold_disabled"
DELETED = "threshold_deleted"
INSIGHT_DELETED = "insight_deleted"
ALERT_REASONS = (CHECKED, DISABLED, DELETED, INSIGHT_DELETED)
_ENDED = {DISABLED: "threshold disabled", DELETED: "threshold deleted", INSIGHT_DELETED: "insight deleted"}
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
MASK = "****"  # what stands for the rest of a Slack URL where it is shown (``masked_url``)
REPLAY_TOLERANCE_SECONDS = 300


class DestinationKind(StrEnum):
    """What a destination is."""

    WEBHOOK = "webhook"
    SLACK = "slack"


class UrlNotAllowedError(ValueError):
    """A destination URL this service will not call (the message says why)."""


class Target(NamedTuple):
    """Where a URL sends a request, as the resolver and the sender see it: ``host`` is the host normalised
    (:func:`normalised_host`: ASCII, lower case, no trailing dot, an IP address in its canonical form),
    ``address`` that IP address when the host is one, ``path`` the request target (path and query, every
    character outside printable ASCII percent-encoded as UTF-8)."""

    scheme: str
    host: str
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    port: int
    path: str


_HOST_CHARACTERS = re.compile(r"[a-z0-9_.-]+")
_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*")  # what inet_aton reads as a number: a host ending in one is an address
_TARGET_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))  # printable ASCII is sent as given, "%" included
# IPv6 forms whose last 32 bits are an IPv4 address: NAT64's well-known prefix, the deprecated IPv4-compatible
# form and SIIT's IPv4-translated form (a translator on the path sends them to that IPv4 address).
_EMBEDDING = tuple(ipaddress.IPv6Network(n) for n in ("64:ff9b::/96", "::/96", "::ffff:0:0:0/96"))
# Addresses outside the public internet, from IANA's special-purpose address registries (iana-ipv4-special-registry,
# iana-ipv6-special-registry): every block whose "Globally Reachable" is False, refused whole (the few anycast
# entries inside 192.0.0.0/24 and 2001::/23 that are reachable serve no webhooks), and IPv6's deprecated site-local
# block. Written out rather than read from ``is_global``, which misses some of them on older Python patch
# levels (192.0.0.8, fec0::/10 on 3.11.7) and whose answer changes between them: the rules are these, on any.
_NOT_GLOBAL_IPV4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private use
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local (cloud instance metadata)
        "172.16.0.0/12",  # private use
        "192.0.0.0/24",  # IETF protocol assignments: DS-Lite, the dummy address 192.0.0.8, NAT64 discovery, ...
        "192.0.2.0/24",  # documentation (TEST-NET-1)
        "192.168.0.0/16",  # private use
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation (TEST-NET-2)
        "203.0.113.0/24",  # documentation (TEST-NET-3)
        "240.0.0.0/4",  # reserved
        "255.255.255.255/32",  # limited broadcast
    )
)
# IPv4-mapped (::ffff:0:0/96) is not listed: the IPv4 address it wraps is what is connected to, and judged.
_NOT_GLOBAL_IPV6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/128",  # unspecified
        "::1/128",  # loopback
        "64:ff9b:1::/48",  # RFC 8215: NAT64 local use, a site's own translator, never the internet
        "100::/64",  # discard-only
        "100:0:0:1::/64",  # dummy prefix
        "2001::/23",  # IETF protocol assignments: Teredo, benchmarking, ORCHID, ...
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing SIDs
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated by RFC 3879; IANA's IPv6 address space registry)
    )
)
_FULL_DIGITS = 1e15  # a float below this that holds an integer is shown as that integer, digit for digit
_DISALLOWED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp", "Zs"})  # controls (DEL too), format, surrogates


def normalised_host(host: str) -> str:
    """``host`` (a URL's host, IPv6 literals without their brackets) as the resolver sees it: IDNA-mapped to
    ASCII (full-width letters and digits, ideographic full stops and case fold to their ASCII form), without
    the trailing dot of a fully qualified name, and an IPv4 address in any form ``inet_aton`` reads (``127.1``,
    ``0x7f.0.0.1``, octal octets) or an IPv6 address in its canonical form. A host the resolver would not take
    as a name or an address is a :class:`UrlNotAllowedError`."""
    if ":" in host:  # only an IPv6 literal has one (urlsplit took the port off)
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise UrlNotAllowedError("url's host is not a valid IPv6 address") from None
    try:
        name = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UrlNotAllowedError("url's host is not a valid host name") from None
    name = name.removesuffix(".")
    if not _HOST_CHARACTERS.fullmatch(name) or "" in name.split("."):
        raise UrlNotAllowedError("url's host is not a valid host name")
    try:
        packed = socket.inet_aton(name)
    except OSError:
        if _NUMBER.fullmatch(name.rsplit(".", 1)[-1]):
            raise UrlNotAllowedError("url's host is not a valid IPv4 address") from None
        return name
    return str(ipaddress.IPv4Address(packed))


def public_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ``address`` is on the public internet: not multicast, in none of the blocks IANA's special-purpose
    registries say are not globally reachable (``_NOT_GLOBAL_IPV4``, ``_NOT_GLOBAL_IPV6``: private, loopback,
    link-local, shared, documentation, benchmarking, reserved, IPv6 site-local, NAT64's local-use prefix, ...;
    the same answer on every Python patch level), and (IPv6) not a wrapper of an IPv4 address that is not
    (IPv4-mapped, 6to4, Teredo, NAT64's well-known prefix, IPv4-compatible, SIIT's IPv4-translated)."""
    if address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return not any(address in network for network in _NOT_GLOBAL_IPV4)
    if any(address in network for network in _NOT_GLOBAL_IPV6):
        return False
    embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
    if embedded is None and any(address in network for network in _EMBEDDING):
        embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return embedded is None or public_address(embedded)


def target_of(url: str) -> Target:
    """Where ``url`` sends a request (:class:`Target`); :class:`UrlNotAllowedError` for a URL that is not one
    this service can send to as given (too long, control or format characters, no host, a port out of range,
    a host no resolver would take). Says nothing about whether the host may be called: :func:`check_url`."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlNotAllowedError(f"url is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or unicodedata.category(c) in _DISALLOWED_CATEGORIES for c in url):
        raise UrlNotAllowedError("url must not contain spaces, control or format characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UrlNotAllowedError("url is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise UrlNotAllowedError("url must be https")
    raw_host = parts.hostname or ""
    if not raw_host:
        raise UrlNotAllowedError("url must name a host")
    if port == 0:
        raise UrlNotAllowedError("url's port must be between 1 and 65535")
    host = normalised_host(raw_host)
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    try:
        path = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=_TARGET_SAFE)
    except UnicodeError:
        raise UrlNotAllowedError("url's path or query is not valid text") from None
    default_port = 443 if parts.scheme == "https" else 80
    return Target(parts.scheme, host, address, port or default_port, path)


def check_url(kind: DestinationKind, url: str, *, allow_loopback_http: bool = False) -> str:
    """``url`` when alerts may be sent there, else :class:`UrlNotAllowedError` saying why.

    The rules apply to the host as the resolver sees it (:func:`normalised_host`), so ``127.1``, ``0x7f.0.0.1``,
    full-width digits, ``localhost.`` or ``ec2。internal`` are what they spell. A name is not resolved here: the
    sender (``dal.destinations.HttpSender``) checks every address a name resolves to before it connects."""
    target = target_of(url)
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise UrlNotAllowedError("url must not carry credentials before the host")
    if parts.fragment or url.endswith("#"):
        raise UrlNotAllowedError("url must not have a fragment")
    loopback = target.host in LOOPBACK_HOSTS
    if loopback and allow_loopback_http:
        return url
    if target.scheme != "https":
        raise UrlNotAllowedError("url must be https")
    if kind is DestinationKind.SLACK and (
        target.host != SLACK_HOST or target.port != 443 or not parts.path.startswith("/services/")
    ):
        raise UrlNotAllowedError("a Slack incoming webhook is https://hooks.slack.com/services/...")
    if target.address is not None:
        if not public_address(target.address):
            raise UrlNotAllowedError("url must not name a private, loopback, link-local or reserved address")
        return url
    if loopback or target.host.endswith((".localhost", ".local", ".internal")) or "." not in target.host:
        raise UrlNotAllowedError("url must name a public host")
    return url


def masked_url(kind: DestinationKind, url: str) -> str:
    """How a stored URL is shown after creation: a Slack URL is itself the credential, so only its
    host and the first part of its path are shown, then ``MASK``; a webhook URL is shown as given."""
    if kind is not DestinationKind.SLACK:
        return url
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    shown = "/".join(segments[:2])
    return f"{parts.scheme}://{parts.netloc}/{shown}/{MASK}"


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
    reason: str = CHECKED  # events stored before reasons were the checks'


def insight_url(link_base: str, space_id: str, insight_id: int) -> str:
    """The link to the insight (its API resource, which answers with its current result)."""
    return f"{link_base.rstrip('/')}/api/projects/{space_id}/insights/{insight_id}"


def webhook_body(event_type: str, detail: AlertDetail, link: str) -> bytes:
    """The JSON a webhook destination receives: the event type, the event detail and the insight link."""
    document = {"type": event_type, **detail.model_dump(mode="json"), "insight_url": link}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _number(value: float | None) -> str:
    """A value or bound as the Slack message shows it: an integer in full (``1234567``, a float holding one
    too), any other number with up to 15 significant digits (what a float holds exactly) and no exponent
    between 1e-4 and 1e15 (``0.1``, ``1234.5678``); only numbers beyond those get one."""
    if value is None:
        return "no value"
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < _FULL_DIGITS:
        return str(int(value))
    return f"{value:.15g}"


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
        if detail.reason in _ENDED:
            headline += f" ({_ENDED[detail.reason]})"
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
    to insights. ``version`` counts the writes of the destination after its creation (0 for one never
    changed, or stored before versions), for optimistic concurrency: a change is written only over the
    version it was made from (``dal.destinations.DestinationStore.replace``)."""

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
    version: int = 0


class DeliveryStatus(StrEnum):
    """The outcome of one attempt. ``superseded``: not sent, because the destination already took a later
    transition of the same threshold (:class:`Transition`); it counts as done for that destination."""

    DELIVERED = "delivered"
    FAILED = "failed"
    SUPERSEDED = "superseded"


class Transition(NamedTuple):
    """Where an alert event sits in its threshold's history: the threshold and the instant of the check that
    moved it (``checked_at`` in the stored, fixed-width form, so later instants sort later as text)."""

    threshold_id: str
    checked_at: str

    @classmethod
    def of(cls, detail: AlertDetail) -> "Transition | None":
        """The event's transition; None for an event that names no threshold or no readable check time (it
        is then delivered without regard to order)."""
        if not detail.threshold_id or not detail.checked_at:
            return None
        try:
            return cls(detail.threshold_id, format_instant(parse_instant(detail.checked_at)))
        except InstantError:
            return None


class DeliveryMarks(NamedTuple):
    """What a destination took already, read before sending it an event: whether it took this event, and
    the check time of the latest transition of the event's threshold it took (None: none, or not asked)."""

    delivered: bool
    last_checked_at: str | None = None

    def supersedes(self, transition: Transition | None) -> bool:
        """Whether the destination took a later transition of the threshold than ``transition``: sending this
        one now would leave the receiver in an older state than the one it has."""
        return (
            transition is not None and self.last_checked_at is not None and self.last_checked_at > transition.checked_at
        )


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
