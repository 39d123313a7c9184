"""Records of the service's own bookkeeping that several layers exchange: spaces, API keys and the
outcome of an idempotent write. Pure values; their table items are built in ``dal``."""

from __future__ import annotations

from dataclasses import dataclass

from dora_insights.domain.model import Deployment


@dataclass(frozen=True)
class SpaceRecord:
    """A space and its settings."""

    id: str
    name: str
    default_environment: str
    failure_window_hours: float = 24.0
    webhook_secret: str | None = None


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key as stored (the key itself is never stored, only its SHA-256 hash)."""

    id: str
    space_id: str
    name: str
    scopes: tuple[str, ...]
    user: str | None
    created_at: str
    key_hash: str


@dataclass(frozen=True)
class WriteOutcome:
    """Result of an idempotent create: the stored item and whether this call created it."""

    deployment: Deployment
    created: bool
