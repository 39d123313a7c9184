"""Records of the service's own bookkeeping that several layers exchange: spaces, API keys and the
outcome of an idempotent write. Pure values; their table items are built in ``dal``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from dora_insights.domain.model import Deployment

DEFAULT_FAILURE_WINDOW_HOURS = 24.0  # METRICS §2 rule 5, when a space sets no other


@dataclass(frozen=True)
class EnvironmentRef:
    """A catalogue environment a setting names: its id and its name as registered."""

    id: str
    name: str


@dataclass(frozen=True)
class SpaceSettings:
    """What an admin sets on a space (``GET/PATCH /api/{spaceId}/settings``); None or empty means the
    service default.

    ``failure_window_hours`` is read by the recompute (rule 5 of METRICS §2); the others only change
    how ``/summary`` reads: ``summary_environment`` (the API's ``default_environment``) and
    ``production_environments`` narrow it when no ``environment`` is asked for, ``default_benchmark``
    picks its tier table when no ``benchmark`` is. ``revision`` counts changes (optimistic
    concurrency); ``marks_owed``: a window change whose dirty marks were not all written yet (more
    streams than one transaction holds), finished by the next change of the settings.
    """

    failure_window_hours: float = DEFAULT_FAILURE_WINDOW_HOURS
    summary_environment: EnvironmentRef | None = None
    default_benchmark: str | None = None
    production_environments: tuple[EnvironmentRef, ...] = ()
    revision: int = 0
    updated_at: str | None = None
    updated_by: str | None = None
    marks_owed: bool = False


@dataclass(frozen=True)
class SpaceRecord:
    """A space and its settings.

    ``default_environment`` is where events that name no environment are stored (set when the space
    is created); ``/summary``'s default environment is ``settings.summary_environment``.

    ``webhook_secret_encrypted`` is the GitHub webhook secret (HMAC needs the secret itself, so it cannot be
    hashed) encrypted with the stack's KMS key under ``logic.admin.webhook_secret_context`` (base64 of the
    ciphertext, ``dal.secrets``); ``webhook_secret`` is the same secret as spaces written before it was
    encrypted hold it (read so that such a space keeps verifying, never written again: the next set
    encrypts it and removes it). Neither is shown in a ``repr``: a record in a log line carries no secret.
    """

    id: str
    name: str
    default_environment: str
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_secret_encrypted: str | None = field(default=None, repr=False)
    gitlab_token_hash: str | None = None
    settings: SpaceSettings = field(default_factory=SpaceSettings)
    # The version of the figure rules (``domain.figures.FIGURES_FORMAT``) the space's figures were computed
    # with; 0: before versions were recorded.
    figures_format: int = 0

    @property
    def failure_window_hours(self) -> float:
        """The failure window of METRICS §2 rule 5 (the one source: ``settings``)."""
        return self.settings.failure_window_hours


class ApiKeyRecord(NamedTuple):
    """An API key as stored (the key itself is never stored, only its SHA-256 hash)."""

    id: str
    space_id: str
    name: str
    scopes: tuple[str, ...]
    user: str | None
    created_at: str
    key_hash: str


class WriteOutcome(NamedTuple):
    """Result of an idempotent create: the stored item and whether this call created it."""

    deployment: Deployment
    created: bool


class NewDeployment(NamedTuple):
    """One deployment of a bulk create (``DeploymentRepository.write_many``): the deployment, its
    dialect idempotency key (None: its id is the key) and, when it is owed an attribution, when the
    sweep should re-drive it (its outbox item's due time)."""

    deployment: Deployment
    idempotency: tuple[str, str] | None = None
    outbox_due: str | None = None


class VersionSearch(NamedTuple):
    """The latest deployment found with a version (None: none found) and whether every candidate was
    read (``complete``; False: the search stopped at its bound, so an older one may exist)."""

    deployment: Deployment | None
    complete: bool
