"""Incident webhook dialects: PagerDuty v3 webhooks and Opsgenie's Webhook integration, and the
admin models that configure them (API.md "Added in the current wave"). Errors render natively.

Only the fields used are modelled (both tools send many more; extras are ignored), and only the
deliveries that change a failure event are validated strictly: an acknowledgement with an odd
shape is still acknowledged with a 2xx.

- **PagerDuty** (developer.pagerduty.com, "Webhooks v3" and "Verifying Signatures"): the body is
  ``{"event": {"id", "event_type", "resource_type", "occurred_at", "agent", "client", "data"}}``;
  ``incident.triggered`` opens, ``incident.resolved`` resolves (at ``occurred_at``), every other
  event type is ignored. ``X-PagerDuty-Signature`` holds one or more comma-separated
  ``v1=<hex HMAC-SHA256 of the raw body>`` (several while a secret rotates); one match is enough.
  The service looked up in the mapping is ``data.service.summary`` (its name), then its id.
- **Opsgenie** (docs.opsgenie.com, "Webhook Integration" / alert action data): the body is
  ``{"action", "alert": {"alertId", "message", "tags", "entity", "createdAt" (ms), "updatedAt"
  (ns), ...}, "source", "integrationId", "integrationName"}``; ``Create`` opens, ``Close``
  resolves (at ``updatedAt``), every other action is ignored. The integration's custom header
  ``X-Opsgenie-Secret`` carries the space's shared secret. Opsgenie alerts have no service
  field: the service is the alert's ``entity``, else a ``service:<name>`` tag, else
  ``details.service`` (sent on Create when "Send alert details" is on).
"""

import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Self

from pydantic import ConfigDict, Field, field_validator

from dora_insights.dialects.limits import Instant
from dora_insights.dialects.native import Name
from dora_insights.dialects.native_failures import FailureOut
from dora_insights.domain.base import Model
from dora_insights.domain.ids import sha256_hex
from dora_insights.domain.incidents import (
    IncidentAction,
    IncidentOutcome,
    IncidentSignal,
    IncidentSource,
    IncidentSourceConfig,
    ServiceTarget,
)

PAGERDUTY_SIGNATURE_HEADER = "X-PagerDuty-Signature"
OPSGENIE_SECRET_HEADER = "X-Opsgenie-Secret"
SECRET_HEADERS = {IncidentSource.PAGERDUTY: PAGERDUTY_SIGNATURE_HEADER, IncidentSource.OPSGENIE: OPSGENIE_SECRET_HEADER}
SIGNATURE_VERSION = "v1="
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
MAX_SERVICES = 500
MAX_TEXT = 200
SERVICE_TAG_PREFIX = "service:"


# --- authentication -------------------------------------------------------------------------
def pagerduty_signature(secret: str, body: bytes) -> str:
    """The ``v1=`` signature PagerDuty sends for ``body`` (tests and demos sign with it)."""
    return SIGNATURE_VERSION + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def pagerduty_signature_valid(secret: str | None, body: bytes, header: str | None) -> bool:
    """Whether any ``v1`` signature of the header is the body's HMAC with ``secret``; each is
    compared in constant time, and all of them are compared (no early exit on a match)."""
    if not secret or not header:
        return False
    expected = pagerduty_signature(secret, body).encode()
    matched = False
    for part in header.split(","):
        candidate = part.strip().lower()
        if candidate.startswith(SIGNATURE_VERSION):
            matched |= hmac.compare_digest(expected, candidate.encode())
    return matched


def opsgenie_secret_valid(secret_sha256: str | None, header: str | None) -> bool:
    """Whether the ``X-Opsgenie-Secret`` value hashes to the stored hash (constant-time compare)."""
    if not secret_sha256 or not header:
        return False
    return hmac.compare_digest(sha256_hex(header.strip()).encode(), secret_sha256.encode())


def authenticated(
    config: IncidentSourceConfig | None, body: bytes, header: str | None, *, signing_key: str | None = None
) -> bool:
    """Whether a delivery carries the space's credential for its tool: PagerDuty's signature checked with
    ``signing_key`` (its signing secret, decrypted: ``logic.incidents.signing_key``), Opsgenie's header
    against the stored hash."""
    if config is None:
        return False
    if config.source is IncidentSource.PAGERDUTY:
        return pagerduty_signature_valid(signing_key, body, header)
    return opsgenie_secret_valid(config.secret_sha256, header)


def _text(value: str | None) -> str | None:
    return value.strip()[:MAX_TEXT] or None if value else None


class _Loose(Model):
    model_config = ConfigDict(extra="ignore")


def _signal(
    data: dict[str, Any],
    kind: str,
    actions: Mapping[str, IncidentAction],
    read: Callable[[dict[str, Any], str, IncidentAction], IncidentSignal],
) -> IncidentSignal:
    """The signal of a delivery of event ``kind`` (read before any validation): an event that is not in the
    tool's ``actions`` is ignored unvalidated; ``read`` validates the others and makes their signal."""
    action = actions.get(kind)
    if action is None:
        return IncidentSignal(action=IncidentAction.IGNORE, event=kind or "(none)")
    return read(data, kind, action)


# --- PagerDuty ------------------------------------------------------------------------------
class PagerDutyReference(_Loose):
    """A ``*_reference`` object (service, team, priority)."""

    id: str | None = None
    summary: str | None = None


class PagerDutyIncident(_Loose):
    """``event.data`` of an incident event (``data.type`` ``incident``)."""

    id: str = Field(pattern=ID_PATTERN)
    number: int | None = None
    status: str | None = None
    created_at: Instant
    title: str | None = None
    service: PagerDutyReference | None = None
    teams: list[PagerDutyReference] = Field(default_factory=list)
    priority: PagerDutyReference | None = None
    urgency: str | None = None


class PagerDutyEvent(_Loose):
    """``event``: one outbound event."""

    id: str = Field(pattern=ID_PATTERN)
    event_type: str = Field(min_length=1, max_length=100)
    resource_type: str | None = None
    occurred_at: Instant
    data: Any = None


class PagerDutyWebhook(_Loose):
    """A PagerDuty v3 webhook body."""

    event: PagerDutyEvent


PAGERDUTY_ACTIONS = {"incident.triggered": IncidentAction.OPEN, "incident.resolved": IncidentAction.RESOLVE}


def pagerduty_event_type(data: dict[str, Any]) -> str:
    """The delivery's ``event.event_type`` as sent ("" when absent), read before any validation."""
    event = data.get("event")
    kind = event.get("event_type") if isinstance(event, dict) else None
    return kind[:100] if isinstance(kind, str) else ""


def pagerduty_signal(data: dict[str, Any]) -> IncidentSignal:
    """The tool-neutral signal of a PagerDuty delivery (``ValidationError`` for a bad incident event)."""
    return _signal(data, pagerduty_event_type(data), PAGERDUTY_ACTIONS, _pagerduty_incident)


def _pagerduty_incident(data: dict[str, Any], kind: str, action: IncidentAction) -> IncidentSignal:
    """The signal of an incident event that opens or resolves a failure."""
    webhook = PagerDutyWebhook.model_validate(data)
    incident = PagerDutyIncident.model_validate(webhook.event.data)
    service = incident.service or PagerDutyReference()
    severity = incident.priority.summary if incident.priority and incident.priority.summary else incident.urgency
    return IncidentSignal(
        action=action,
        event=kind,
        delivery_id=webhook.event.id,
        incident_id=incident.id,
        services=tuple(name for name in (service.summary, service.id) if name),
        title=_text(incident.title),
        severity=_text(severity),
        team=_text(incident.teams[0].summary) if incident.teams else None,
        started_at=incident.created_at,
        finished_at=webhook.event.occurred_at if action is IncidentAction.RESOLVE else None,
    )


# --- Opsgenie -------------------------------------------------------------------------------
class OpsgenieAlert(_Loose):
    """``alert``: the subset of the alert's fields Opsgenie sends."""

    alertId: str = Field(pattern=ID_PATTERN)  # noqa: N815 - Opsgenie's field name
    message: str | None = None
    tags: list[Any] = Field(default_factory=list)
    entity: str | None = None
    priority: str | None = None
    team: str | None = None
    details: dict[str, Any] | None = None
    createdAt: Instant  # noqa: N815 - milliseconds
    updatedAt: Instant | None = None  # noqa: N815 - nanoseconds


class OpsgenieWebhook(_Loose):
    """An Opsgenie Webhook integration body."""

    action: str = Field(min_length=1, max_length=100)
    alert: OpsgenieAlert


OPSGENIE_ACTIONS = {"Create": IncidentAction.OPEN, "Close": IncidentAction.RESOLVE}


def _opsgenie_services(alert: OpsgenieAlert) -> tuple[str, ...]:
    names: list[str] = []
    if alert.entity and alert.entity.strip():
        names.append(alert.entity.strip())
    for tag in alert.tags:
        if isinstance(tag, str) and tag.lower().startswith(SERVICE_TAG_PREFIX) and tag[len(SERVICE_TAG_PREFIX) :]:
            names.append(tag[len(SERVICE_TAG_PREFIX) :].strip())
    detail = (alert.details or {}).get("service")
    if isinstance(detail, str) and detail.strip():
        names.append(detail.strip())
    return tuple(names)


def opsgenie_action(data: dict[str, Any]) -> str:
    """The delivery's ``action`` as sent ("" when absent), read before any validation."""
    action = data.get("action")
    return action[:100] if isinstance(action, str) else ""


def opsgenie_signal(data: dict[str, Any]) -> IncidentSignal:
    """The tool-neutral signal of an Opsgenie delivery (``ValidationError`` for a bad Create/Close)."""
    return _signal(data, opsgenie_action(data), OPSGENIE_ACTIONS, _opsgenie_alert)


def _opsgenie_alert(data: dict[str, Any], kind: str, action: IncidentAction) -> IncidentSignal:
    """The signal of an alert action that opens or resolves a failure."""
    webhook = OpsgenieWebhook.model_validate(data)
    alert = webhook.alert
    return IncidentSignal(
        action=action,
        event=kind,
        delivery_id=f"{alert.alertId}:{kind}",
        incident_id=alert.alertId,
        services=_opsgenie_services(alert),
        title=_text(alert.message),
        severity=_text(alert.priority),
        team=_text(alert.team),
        started_at=alert.createdAt,
        finished_at=alert.updatedAt if action is IncidentAction.RESOLVE else None,
    )


SIGNALS = {IncidentSource.PAGERDUTY: pagerduty_signal, IncidentSource.OPSGENIE: opsgenie_signal}


# --- admin: configuration -------------------------------------------------------------------
ServiceName = Name  # not blank, at most 200 characters, stored without surrounding blanks


class ServiceTargetIn(Model):
    """Where a tool's service lands."""

    model_config = ConfigDict(extra="forbid")

    project: Name = Field(description="the project its failures concern (created on first use)")
    environment: Name | None = Field(default=None, description="absent: the space's default environment")


class IncidentConfigIn(Model):
    """``PUT /api/{spaceId}/webhooks/pagerduty|opsgenie`` body."""

    model_config = ConfigDict(extra="forbid")

    secret: Annotated[str | None, Field(min_length=16, max_length=256, pattern=r"^[\x21-\x7e]+$")] = Field(
        default=None,
        description=(
            "PagerDuty: the webhook subscription's signing secret (required the first time). Opsgenie: the"
            " value of the integration's X-Opsgenie-Secret header; absent the first time: one is generated"
            " and shown once. Absent later: the stored secret is kept."
        ),
    )
    services: Annotated[dict[ServiceName, ServiceTargetIn] | None, Field(max_length=MAX_SERVICES)] = Field(
        default=None,
        description="the tool's service name -> project and environment; replaces the mapping (absent: kept)",
    )

    @field_validator("services")
    @classmethod
    def _distinct_names(cls, value: dict[str, ServiceTargetIn] | None) -> dict[str, ServiceTargetIn] | None:
        if value is not None:
            seen: dict[str, str] = {}
            for name in value:
                other = seen.setdefault(name.strip().casefold(), name)
                if other != name:
                    raise ValueError(f"'{other}' and '{name}' name the same service (names ignore case)")
        return value

    def targets(self) -> dict[str, ServiceTarget] | None:
        """The mapping for the core, None when the request leaves it as it is."""
        if self.services is None:
            return None
        return {
            name.strip(): ServiceTarget(project=t.project, environment=t.environment)
            for name, t in self.services.items()
        }


class ServiceTargetOut(Model):
    """A mapped service."""

    project: str
    environment: str | None


class IncidentConfigOut(Model):
    """A tool's configuration as the API shows it: never the stored secret."""

    space_id: str
    source: str
    webhook_path: str = Field(description="where the tool posts its webhooks")
    secret_header: str = Field(description="the header that authenticates a delivery")
    secret: str | None = Field(
        default=None, description="the secret generated by this request: shown this once, never again"
    )
    secret_set_at: str
    services: dict[str, ServiceTargetOut]
    updated_at: str

    @classmethod
    def of(cls, config: IncidentSourceConfig, generated: str | None = None) -> Self:
        """Render a configuration (``generated``: the secret created by this request)."""
        return cls(
            space_id=config.space_id,
            source=config.source.value,
            webhook_path=f"/webhooks/{config.source.value}/{config.space_id}",
            secret_header=SECRET_HEADERS[config.source],
            secret=generated,
            secret_set_at=config.secret_set_at,
            services={
                name: ServiceTargetOut(project=t.project, environment=t.environment)
                for name, t in sorted(config.services.items(), key=lambda pair: pair[0].casefold())
            },
            updated_at=config.updated_at,
        )


# --- webhook answers ------------------------------------------------------------------------
class IncidentWebhookOut(Model):
    """What a delivery did. ``status``: ``opened``, ``already_open``, ``resolved``,
    ``already_resolved``, ``duplicate``, ``ignored`` or ``unmapped``."""

    message: str
    status: str
    duplicate: bool = False
    ignored: bool = False
    failure: FailureOut | None = None

    @classmethod
    def of(cls, outcome: IncidentOutcome) -> Self:
        """Render an outcome."""
        return cls(
            message=outcome.message,
            status=outcome.status,
            duplicate=outcome.status == "duplicate",
            ignored=outcome.status in ("ignored", "unmapped"),
            failure=FailureOut.from_domain(outcome.failure) if outcome.failure is not None else None,
        )
