"""Native API models of ``/api/{spaceId}/alert-destinations`` and of the alert events the delivery queue
carries (the only place their JSON names live)."""

from typing import Annotated, Any, Self

from pydantic import ConfigDict, Field, StrictBool

from dora_insights.domain.alert_destinations import (
    ALERT_EVENT_TYPES,
    AlertDetail,
    Delivery,
    DeliveryStatus,
    Destination,
    DestinationKind,
    masked_url,
)
from dora_insights.domain.base import Model

DestinationName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]
DestinationUrl = Annotated[str, Field(min_length=8, max_length=2048)]


class DestinationIn(Model):
    """``POST /api/{spaceId}/alert-destinations``."""

    model_config = ConfigDict(extra="forbid")

    name: DestinationName
    kind: DestinationKind = Field(
        description="`webhook`: a signed JSON POST to your HTTPS endpoint; `slack`: a Slack incoming webhook"
    )
    url: DestinationUrl = Field(
        description="https only (a Slack destination: https://hooks.slack.com/services/...); never a private address"
    )
    enabled: StrictBool = True


class DestinationPatch(Model):
    """``PATCH /api/{spaceId}/alert-destinations/{destinationId}``: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    name: DestinationName | None = None
    url: DestinationUrl | None = None
    enabled: StrictBool | None = None


class DestinationOut(Model):
    """A destination. A Slack URL is the credential: shown masked. The signing secret is never shown here."""

    id: str
    name: str
    kind: DestinationKind
    url: str
    enabled: bool
    signature: str | None = Field(
        description="`hmac-sha256`: deliveries carry X-Dora-Signature `t=<unix>,v1=<hex>` (webhook destinations)"
    )
    created_at: str
    created_by: str

    @classmethod
    def of(cls, destination: Destination) -> Self:
        return cls(
            id=destination.id,
            name=destination.name,
            kind=destination.kind,
            url=masked_url(destination.kind, destination.url),
            enabled=destination.enabled,
            signature="hmac-sha256" if destination.kind is DestinationKind.WEBHOOK else None,
            created_at=destination.created_at,
            created_by=destination.created_by,
        )


class DestinationCreated(DestinationOut):
    """The create answer: the destination and, for a webhook, its signing secret (shown this once)."""

    secret: str | None = Field(
        default=None, description="HMAC-SHA256 key of the X-Dora-Signature header; store it now, it is not shown again"
    )


class DestinationList(Model):
    """``GET /api/{spaceId}/alert-destinations``: every destination of the space, oldest first (at most 10)."""

    items: list[DestinationOut]


class DeliveryOut(Model):
    """One attempt to send one event to the destination."""

    id: str
    notification_id: str
    event_type: str
    attempt: int
    attempted_at: str
    status: DeliveryStatus
    status_code: int | None
    error: str | None
    duration_ms: int
    test: bool

    @classmethod
    def of(cls, delivery: Delivery) -> Self:
        """A logged attempt as shown: its fields as stored, field for field (without the destination's id)."""
        return cls.model_validate(delivery, from_attributes=True)


class DeliveryPage(Model):
    """``GET /api/{spaceId}/alert-destinations/{destinationId}/deliveries``: newest first, opaque cursor."""

    items: list[DeliveryOut]
    next_cursor: str | None


# --- the delivery queue's messages ---------------------------------------------------------------------
class AlertEventEnvelope(Model):
    """The EventBridge event a rule puts on the alert-delivery queue (the message body)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = ""
    detail_type: str = Field(alias="detail-type")
    source: str = ""
    time: str | None = None
    detail: AlertDetail

    def is_alert(self) -> bool:
        """Whether this is an event the destinations receive (the rule sends no other; a stray one is dropped)."""
        return self.detail_type in ALERT_EVENT_TYPES


def delivery_extra(envelope: AlertEventEnvelope) -> dict[str, Any]:
    """Log fields of a message (no secret, no body)."""
    return {
        "event_id": envelope.id,
        "detail_type": envelope.detail_type,
        "space_id": envelope.detail.space_id,
        "notification_id": envelope.detail.notification_id,
    }
