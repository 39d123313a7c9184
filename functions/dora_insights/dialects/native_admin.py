"""Native API models of the admin and catalogue routes (kept apart from the deployment models
so the ingest function does not build them at cold start)."""

from typing import Annotated, Self

from pydantic import ConfigDict, Field

from dora_insights.dialects.native import Name
from dora_insights.domain.base import Model
from dora_insights.domain.records import ApiKeyRecord


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
