"""Native API models of the admin, recompute-health and catalogue routes (kept apart from the
deployment models so the ingest function does not build them at cold start)."""

from typing import TYPE_CHECKING, Annotated, Literal, Self

from pydantic import ConfigDict, Field

from dora_insights.dialects.native import Name
from dora_insights.dialects.native_health import StreamHealthOut, health_fields
from dora_insights.domain.base import Model
from dora_insights.domain.records import ApiKeyRecord

if TYPE_CHECKING:
    from dora_insights.logic.health import SpaceHealth


class SpaceIn(Model):
    """``POST /api/spaces`` body."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    default_environment: Name | None = None


class SpaceOut(Model):
    """A space."""

    id: str
    name: str
    default_environment: str


class ApiKeyIn(Model):
    """``POST /api/{spaceId}/apikeys`` body."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    scopes: Annotated[list[str], Field(min_length=1, max_length=32)]
    user: Name | None = None


class ApiKeyOut(Model):
    """A key as listed; ``key`` is present only in the creation response."""

    id: str
    name: str
    scopes: list[str]
    user: str | None = None
    created_at: str
    key: str | None = None

    @classmethod
    def of(cls, record: ApiKeyRecord, key: str | None = None) -> Self:
        """A stored key as shown: with the key itself only when it was just created."""
        return cls(
            id=record.id,
            name=record.name,
            scopes=list(record.scopes),
            user=record.user,
            created_at=record.created_at,
            key=key,
        )


class ApiKeyList(Model):
    """``GET /api/{spaceId}/apikeys``."""

    items: list[ApiKeyOut]


class WebhookSecretIn(Model):
    """``PUT /api/{spaceId}/webhooks/github`` body."""

    model_config = ConfigDict(extra="forbid")

    secret: Annotated[str, Field(min_length=8, max_length=256)]


class WebhookSecretOut(Model):
    """The secret itself is never echoed."""

    space_id: str
    configured: bool


class HealthOut(Model):
    """``GET /health``."""

    status: str


class TagSetTag(Model):
    """A tag of a tenant tag set: ``CanonicalTagName`` is what reports' ``TenantTags`` list."""

    Name: str
    CanonicalTagName: str


class CatalogueItem(Model):
    """One catalogue entity in Octopus shape (``Tags`` for tenant tag sets only)."""

    Id: str
    SpaceId: str
    Name: str
    Tags: list[TagSetTag] | None = None


class CatalogueList(Model):
    """Octopus collection shape for catalogue lists."""

    ItemType: str
    TotalResults: int
    ItemsPerPage: int
    NumberOfPages: int
    LastPageNumber: int
    Items: list[CatalogueItem]
    Links: dict[str, str]


class SpaceStreamHealthOut(StreamHealthOut):
    """A failing or quarantined stream of the space, named as deployments name it."""

    stream: str = Field(description="the stream key: project, channel, environment and tenant ids")
    project: str | None = None
    project_id: str | None = None
    environment: str | None = None
    environment_id: str | None = None
    tenant: str | None = None
    tenant_id: str | None = None
    channel: str | None = None
    channel_id: str | None = None


class SpaceFailureOut(Model):
    """The last visit of the space that failed as a whole (not one stream, report or threshold)."""

    at: str
    stage: str = Field(description="`setup`, `streams`, `reports` or `thresholds`")
    error_type: str
    error_message: str


class RecomputeHealthOut(Model):
    """``GET /api/{spaceId}/health``: how the scheduled recompute is doing for the space."""

    space_id: str
    status: Literal["ok", "degraded"] = Field(description="`degraded` while any stream fails or is quarantined")
    last_success_at: str | None = Field(
        description="the last visit without any failure (recorded when it did work or followed a failure, "
        "otherwise at most hourly)"
    )
    last_failure: SpaceFailureOut | None
    dirty_streams: int = Field(description="streams waiting for the recompute, quarantined ones included")
    quarantine_after: int = Field(description="failed runs in a row after which a stream is quarantined")
    failing: list[SpaceStreamHealthOut]
    quarantined: list[SpaceStreamHealthOut]

    @classmethod
    def of(cls, report: "SpaceHealth", *, quarantine_after: int) -> Self:
        """The route's answer from the space's health."""
        streams = [
            SpaceStreamHealthOut.model_validate(
                {
                    **health_fields(s.record),
                    "stream": s.record.stream,
                    "project": s.project,
                    "project_id": s.project_id,
                    "environment": s.environment,
                    "environment_id": s.environment_id,
                    "tenant": s.tenant,
                    "tenant_id": s.tenant_id,
                    "channel": s.channel,
                    "channel_id": s.channel_id,
                }
            )
            for s in report.streams
        ]
        space = report.space
        last_failure = None
        if space is not None and space.last_failure_at is not None:
            last_failure = SpaceFailureOut(
                at=space.last_failure_at,
                stage=space.stage or "",
                error_type=space.error_type or "",
                error_message=space.error_message or "",
            )
        return cls(
            space_id=report.space_id,
            status="degraded" if streams else "ok",
            last_success_at=space.last_success_at if space else None,
            last_failure=last_failure,
            dirty_streams=report.dirty_streams,
            quarantine_after=quarantine_after,
            failing=[s for s in streams if s.state == "failing"],
            quarantined=[s for s in streams if s.state == "quarantined"],
        )
