"""The native model every dialect maps onto (METRICS §1–2). Pure values, no I/O."""

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from dora_insights.domain.base import Model


class TaskState(StrEnum):
    """A deployment's outcome (METRICS §2); Orlo IN_PROGRESS = Executing, NOT_STARTED = Queued."""

    SUCCESS = "Success"
    FAILED = "Failed"
    TIMED_OUT = "TimedOut"
    CANCELED = "Canceled"
    EXECUTING = "Executing"
    QUEUED = "Queued"


COMPLETED_STATES = frozenset({TaskState.SUCCESS, TaskState.FAILED, TaskState.TIMED_OUT})


class Source(StrEnum):
    """Which door a deployment came through."""

    NATIVE = "native"
    DATADOG = "datadog"
    DX = "dx"
    GITHUB = "github"
    GITLAB = "gitlab"  # deployments from GitLab Deployment Hook webhooks
    ORLO = "orlo"
    PAGERDUTY = "pagerduty"  # failure events from PagerDuty incident webhooks
    OPSGENIE = "opsgenie"  # failure events from Opsgenie alert webhooks


class CatalogueKind(StrEnum):
    """Catalogue entities registered on first sight (METRICS §1); the value is the id prefix."""

    PROJECT = "Projects"
    ENVIRONMENT = "Environments"
    TENANT = "Tenants"
    PROJECT_GROUP = "ProjectGroups"
    CHANNEL = "Channels"
    TENANT_TAG_SET = "TagSets"

    def id_shaped(self, value: str) -> bool:
        """Whether a filter's value is shaped as this kind's id (``Projects-12``): such a value names the
        id, never an entity whose name looks like one (as the native lists read a filter)."""
        prefix = f"{self.value}-"
        return value.startswith(prefix) and value[len(prefix) :].isascii() and value[len(prefix) :].isdigit()

    def filter_names(self, wanted: str | None, entity_id: str | None, name: str | None) -> bool:
        """No filter, or the filter names this entity: by id when it is shaped as one, else by name in any
        case."""
        if not wanted:
            return True
        if self.id_shaped(wanted):
            return wanted == entity_id
        return name is not None and wanted.casefold() == name.casefold()


DEFAULT_CHANNEL = "Default"


def blank_is_none(value: str | None) -> str | None:
    """A blank string is none (a version's rule)."""
    return value if value is None or value.strip() else None


# A version (of a deployment or named by a failure): blank is none, as Datadog's empty ``version`` is. A CI
# that templates ``version: "${VERSION}"`` with nothing set sends "" on every deployment: one release
# first seen at the first of them would give every later one a lead time from it (METRICS §3), and a
# failure naming "" a cause (§2 rule 4). Stored "" (before 2026-12) reads as none too.
Version = Annotated[str | None, AfterValidator(blank_is_none)]
DEFAULT_ENVIRONMENT = "production"
NO_TENANT = "-"


class CatalogueEntry(Model):
    """One registered catalogue entity: an Octopus-style id and the name it was first seen with."""

    model_config = ConfigDict(frozen=True)

    kind: CatalogueKind
    id: str
    name: str
    tags: tuple[str, ...] = ()  # tenant tag sets only: the tag names seen in the set


class Attribution(Model):
    """Which changes a deployment shipped (METRICS §5). Filled by the attribution engine.

    Bounded whatever the shipment: ``pull_requests`` and ``commits`` are the first page (pull
    requests first, then commits; ``commits_repository`` names the repository of the page's
    commits); ``pages`` counts every page, the others are stored beside the deployment under
    ``details_id``; the counts are the totals. ``marks`` are the stream's branch marks this
    attribution moved (kept so that replacing the deployment can undo them)."""

    state: str = "None"
    mode: str | None = None
    attempts: int = 0
    commits: list[str] = Field(default_factory=list)
    pull_requests: list[dict[str, Any]] = Field(default_factory=list)
    change_started_at: str | None = None
    resolved_at: str | None = None
    commit_count: int | None = None  # None: stored before counts existed (every change is on the page)
    pull_request_count: int | None = None
    commits_repository: str | None = None
    pages: int = 1
    details_id: str | None = None
    marks: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def is_placeholder(self) -> bool:
        """Pending with no mode: what a correction's plan resets an attribution to, until its attempt runs
        (an attempt that waits for code data records the mode it waits in)."""
        return self.state == "Pending" and self.mode is None


class ChangeFailureReasonOut(Model):
    """Why a deployment is a change failure (METRICS §2): the rule and what triggered it."""

    rule: int = Field(
        description="0 override (a correction), 1 deployment failure, 2 rolled back, 3 fixed later, 4 root cause, "
        "5 failure in window"
    )
    name: str = Field(description="the rule's name: override, deployment_failure, rolled_back, fixed_later, ...")
    deployment_id: str | None = Field(
        default=None, description="rules 1–3: the deployment that set it; 0: the deployment itself"
    )
    failure_id: str | None = Field(default=None, description="rules 4–5: the failure event that set it")


class ReworkReasonOut(Model):
    """Why a deployment is rework (METRICS §2)."""

    reason: str = Field(description="rollback, fix or first_success_after_change_failure")
    deployment_id: str | None = Field(
        default=None, description="the change failure it rolls back, fixes or is the first success after"
    )


# Figures.lead_time_source: where the lead time starts (METRICS §3): the deployment's changes, or the
# first deployment of its version.
LEAD_TIME_FROM_COMMITS = "Commits"
LEAD_TIME_FROM_RELEASE = "Release"


class Figures(Model):
    """Per-deployment figures (METRICS §3). Null until the recompute (or attribution) fills them."""

    lead_time_seconds: float | None = None
    lead_time_source: str | None = None
    lead_time_from_version: str | None = None
    time_since_previous_success_seconds: float | None = None
    previous_success_id: str | None = None
    time_to_recovery_seconds: float | None = None
    deployments_until_recovery: int | None = None
    recovered_from_failed_id: str | None = None
    lead_time_negative: bool | None = Field(
        default=None, description="the lead time is negative (a commit stamped after its deployment: clock skew)"
    )
    change_failure: bool | None = Field(
        default=None, description="the effective value: the override when one is set, else change_failure_computed"
    )
    change_failure_computed: bool | None = Field(
        default=None, description="what the METRICS §2 rules 1–5 say, whatever the override"
    )
    change_failure_override: bool | None = Field(
        default=None, description="set by a correction (PATCH change_failure); null: none, the rules decide"
    )
    change_failure_rule: int | None = Field(
        default=None,
        description="the METRICS §2 rule (1–5) that set change_failure (the lowest when several did); 0 when an "
        "override decides it",
    )
    change_failure_cause: str | None = Field(
        default=None, description="the deployment (rules 1–3) or failure event (rules 4–5) that triggered that rule"
    )
    change_failure_reasons: list[ChangeFailureReasonOut] | None = Field(
        default=None, description="every rule that applies, with what triggered it"
    )
    rework: bool | None = None
    rework_reason: str | None = Field(
        default=None, description="rollback, fix or first_success_after_change_failure (the first when several)"
    )
    rework_reasons: list[ReworkReasonOut] | None = None
    duration_seconds: float | None = None


class RemediationType(StrEnum):
    """How a change failure was remediated (Datadog's ``remediation.type``)."""

    ROLLBACK = "rollback"
    ROLLFORWARD = "rollforward"


class Remediation(Model):
    """The deployment that remediated this one (a correction, Datadog's ``remediation``): named by its
    ``id``, or by the ``version`` it deployed (the first completed deployment of the stream after this
    one with that version). METRICS §2: a ``rollback`` remediation marks this deployment as rolled back
    (rule 2) and the remediation as a rollback; a ``rollforward`` one as fixed later (rule 3) and the
    remediation as a fix."""

    model_config = ConfigDict(frozen=True)

    id: str | None = None
    version: str | None = None
    type: RemediationType

    @model_validator(mode="after")
    def _names_one(self) -> Self:
        if (self.id is None) == (self.version is None):
            raise ValueError("remediation names the deployment by id or by version (one of them)")
        return self


class Deployment(Model):
    """A stored deployment. Times are stored-form strings (``domain.times.format_instant``).

    ``revision`` counts its versions (1 when created, +1 per correction or replacement: optimistic
    concurrency of ``PATCH``); ``change_failure_override`` and ``remediation`` are set by corrections
    only (``domain.corrections``) and read by the figures engine."""

    id: str
    space_id: str
    source: Source = Source.NATIVE
    project: str
    project_id: str
    environment: str
    environment_id: str
    tenant: str | None = None
    tenant_id: str | None = None
    channel: str = DEFAULT_CHANNEL
    channel_id: str
    team: str | None = None
    project_group_id: str | None = None
    tenant_tags: list[str] = Field(default_factory=list)
    finished_at: str
    started_at: str | None = None
    version: Version = None
    state: TaskState = TaskState.SUCCESS
    had_guided_failure: bool = False
    rollback: bool = False
    fixes: str | None = None
    tags: list[str] = Field(default_factory=list)
    commit_sha: str | None = None
    repository: str | None = None
    merge_commit_shas: list[str] | None = None
    integration_branch: str | None = None
    source_name: str | None = None
    source_url: str | None = None
    metadata: dict[str, Any] | None = None
    release_created_at: str | None = None
    received_at: str
    body_hash: str
    # The other fingerprints a record of the same request may be stored with (``Draft.stored_fingerprints``:
    # the request as sent, stored before the defaults were hashed spelled out, and so on): compared, never
    # stored.
    request_hashes: tuple[str, ...] = Field(default=(), exclude=True)
    revision: int = 1
    change_failure_override: bool | None = None
    remediation: Remediation | None = None
    # The dialect idempotency record naming it (dialect, client id), removed with it (issue 16).
    idempotency_key: tuple[str, str] | None = None
    attribution: Attribution | None = None
    figures: Figures | None = None

    def repeats(self, stored_hash: object) -> bool:
        """Whether a deployment or idempotency record stored with ``stored_hash`` is this one again: its
        ``body_hash``, or a fingerprint an earlier version stored for the same request (``request_hashes``)."""
        return stored_hash is not None and (stored_hash == self.body_hash or stored_hash in self.request_hashes)

    @property
    def stream_key(self) -> str:
        """Stream (METRICS §1): project, channel, environment, tenant, by catalogue id."""
        return stream_key(self.project_id, self.channel_id, self.environment_id, self.tenant_id)

    @property
    def stream_names(self) -> dict[str, str]:
        """The names and ids its stream is split by that no deployment of the stream changes (catalogue
        names never change): ``StreamDims``' fields but the project group and tenant tags."""
        names = {
            "project_id": self.project_id,
            "project": self.project,
            "environment_id": self.environment_id,
            "environment": self.environment,
        }
        if self.tenant_id is not None and self.tenant is not None:
            names["tenant"] = self.tenant
        return names

    @property
    def stream_preview(self) -> dict[str, Any]:
        """What its stream's registration will say as far as a later deployment cannot change it: its
        ``stream_names``, tenant and channel, not the project group or tenant tags. Kept on the stream's
        dirty mark, so a read whose answer no group or tag decides tells whether it covers a stream never
        computed yet without reading the stream (``logic.freshness``)."""
        return {"dims": self.stream_names, "tenant_id": self.tenant_id, "channel_id": self.channel_id}

    @property
    def is_successful(self) -> bool:
        """``Success`` without guided failure (METRICS §2)."""
        return self.state is TaskState.SUCCESS and not self.had_guided_failure

    @property
    def is_deployment_failure(self) -> bool:
        """``Failed``/``TimedOut``, or ``Success`` with a guided failure (METRICS §2)."""
        return self.state in (TaskState.FAILED, TaskState.TIMED_OUT) or (
            self.state is TaskState.SUCCESS and self.had_guided_failure
        )

    @property
    def is_completed(self) -> bool:
        """Counts in metrics: ``Canceled``, ``Executing`` and ``Queued`` do not."""
        return self.state in COMPLETED_STATES


def tag_set_of(tenant_tag: str) -> tuple[str, str]:
    """``("Location", "Europe")`` of the tenant tag ``Location/Europe``."""
    tag_set, _, tag = tenant_tag.partition("/")
    return tag_set, tag


def stream_key(project_id: str, channel_id: str, environment_id: str, tenant_id: str | None) -> str:
    """The identity of a stream, as catalogue ids joined by ``/`` (``-`` for untenanted)."""
    return "/".join((project_id, channel_id, environment_id, tenant_id or NO_TENANT))


def stream_ids(stream: str) -> tuple[str, str, str, str | None] | None:
    """The inverse of :func:`stream_key`: (project, channel, environment, tenant or None) ids; None if malformed."""
    parts = stream.split("/")
    if len(parts) != 4 or not all(parts):
        return None
    project_id, channel_id, environment_id, tenant_id = parts
    return project_id, channel_id, environment_id, None if tenant_id == NO_TENANT else tenant_id


class FailureEvent(Model):
    """A failure (incident) event: METRICS §2 rule 4 and §3 TimeToRestore."""

    id: str
    space_id: str
    source: Source = Source.NATIVE
    projects: list[str]
    project_ids: list[str]
    environment: str
    environment_id: str
    name: str | None = None
    severity: str | None = None
    started_at: str
    finished_at: str | None = None
    deployment_id: str | None = None
    commit_sha: str | None = None
    repository: str | None = None
    team: str | None = None
    version: Version = None
    tags: list[str] = Field(default_factory=list)
    received_at: str
    body_hash: str
    request_hashes: tuple[str, ...] = Field(default=(), exclude=True)  # as on Deployment

    def repeats(self, stored_hash: object) -> bool:
        """Whether an event stored with ``stored_hash`` is this one again (``Deployment.repeats``)."""
        return stored_hash is not None and (stored_hash == self.body_hash or stored_hash in self.request_hashes)


class Draft(Model):
    """What deployment and failure drafts share: the fingerprints a stored record of the same request may
    carry. Declares no field (a field here would come first in every draft's dump, so in its fingerprint)."""

    def fingerprint(self, default_environment: str | None = None) -> str:
        """A hash of the draft's content (each draft's own)."""
        raise NotImplementedError

    def stored_fingerprints(self, default_environment: str) -> tuple[str, ...]:
        """Every fingerprint a record of this same request may be stored with: ``fingerprint(default_environment)``
        first (what is stored now), then what earlier versions stored for it: the request as sent (before
        1dd4dc8), and for a request naming no version, both again with ``version: ""`` (before dc204e7 a blank
        version was kept as "" and hashed so). A repeat that matches any of them is the same request again,
        not a 409; tests/unit/domain/test_fingerprints_stable.py fails when a change moves the fingerprints."""
        forms: list[Draft] = [self]
        if getattr(self, "version", None) is None:
            forms.append(self.model_copy(update={"version": ""}))
        hashes = [form.fingerprint(default_environment) for form in forms] + [form.fingerprint() for form in forms]
        return tuple(dict.fromkeys(hashes))


class DeploymentDraft(Draft):
    """A deployment as a dialect hands it to the core write path: names, not catalogue ids.

    Every dialect maps its request onto this one model, so a deployment looks the same
    whichever door it came through. ``environment`` None means the space's default.
    """

    model_config = ConfigDict(frozen=True)

    source: Source = Source.NATIVE
    client_id: str | None = None
    project: str
    environment: str | None = None
    finished_at: datetime
    started_at: datetime | None = None
    version: Version = None
    state: TaskState = TaskState.SUCCESS
    had_guided_failure: bool = False
    rollback: bool = False
    fixes: str | None = None
    tenant: str | None = None
    channel: str | None = None
    team: str | None = None
    tenant_tags: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    commit_sha: str | None = None
    repository: str | None = None
    merge_commit_shas: tuple[str, ...] | None = None
    integration_branch: str | None = None
    source_name: str | None = None
    source_url: str | None = None
    metadata: dict[str, Any] | None = None
    release_created_at: datetime | None = None

    def fingerprint(self, default_environment: str | None = None) -> str:
        """A hash of the deployment's content: the same request again has the same fingerprint.

        With the space's ``default_environment`` (the stored ``body_hash``), a draft naming no environment
        or channel is hashed as naming the defaults, so a repeat that spells them out is the same request
        (a DX create, then the backfill of the same rows with an environment column)."""
        draft = self
        if default_environment is not None:
            spelled = {
                "environment": self.environment or default_environment,
                "channel": self.channel or DEFAULT_CHANNEL,
            }
            draft = self.model_copy(update=spelled)
        canonical = draft.model_dump_json(exclude={"client_id"})
        return hashlib.sha256(canonical.encode()).hexdigest()
