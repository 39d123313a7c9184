"""The core write path every dialect uses, and the native read paths for deployments.

validation (dialect) -> ``DeploymentDraft`` -> catalogue ids -> ``Deployment`` -> one
transaction with its idempotency record and the stream's dirty mark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from dora_insights.domain.figures import figures_of
from dora_insights.domain.ids import new_id
from dora_insights.domain.model import (
    DEFAULT_CHANNEL,
    CatalogueEntry,
    CatalogueKind,
    Deployment,
    DeploymentDraft,
    TaskState,
    tag_set_of,
)
from dora_insights.domain.records import SpaceRecord, WriteOutcome
from dora_insights.domain.times import format_instant
from dora_insights.errors import DoraError, ResourceNotFoundError
from dora_insights.logic import attribution, catalogue
from dora_insights.logic.ports import Ports

if TYPE_CHECKING:
    from dora_insights.domain.health import StreamHealthRecord
    from dora_insights.logic.freshness import Freshness

MAX_PAGE = 500
DEFAULT_PAGE = 50


def wanted_entities(space: SpaceRecord, draft: DeploymentDraft) -> list[tuple[CatalogueKind, str]]:
    wanted = [
        (CatalogueKind.PROJECT, draft.project),
        (CatalogueKind.ENVIRONMENT, draft.environment or space.default_environment),
        (CatalogueKind.CHANNEL, draft.channel or DEFAULT_CHANNEL),
    ]
    if draft.tenant:
        wanted.append((CatalogueKind.TENANT, draft.tenant))
    if draft.team:
        wanted.append((CatalogueKind.PROJECT_GROUP, draft.team))
    wanted.extend((CatalogueKind.TENANT_TAG_SET, tag_set_of(tag)[0]) for tag in draft.tenant_tags)
    return wanted


def build_deployment(
    space: SpaceRecord,
    draft: DeploymentDraft,
    entities: dict[tuple[CatalogueKind, str], CatalogueEntry],
    now: datetime,
    *,
    deployment_id: str | None = None,
) -> Deployment:
    """The stored form of a draft, given its catalogue entities."""

    def entity(kind: CatalogueKind, name: str | None) -> CatalogueEntry | None:
        return entities[(kind, name.casefold())] if name else None

    project = entity(CatalogueKind.PROJECT, draft.project)
    environment = entity(CatalogueKind.ENVIRONMENT, draft.environment or space.default_environment)
    channel = entity(CatalogueKind.CHANNEL, draft.channel or DEFAULT_CHANNEL)
    tenant = entity(CatalogueKind.TENANT, draft.tenant)
    group = entity(CatalogueKind.PROJECT_GROUP, draft.team)
    if (
        project is None or environment is None or channel is None
    ):  # pragma: no cover - wanted_entities asks for all three
        raise ValueError("project, environment and channel are always resolved")
    return Deployment(
        id=deployment_id or draft.client_id or new_id(now),
        space_id=space.id,
        source=draft.source,
        project=project.name,
        project_id=project.id,
        environment=environment.name,
        environment_id=environment.id,
        tenant=tenant.name if tenant else None,
        tenant_id=tenant.id if tenant else None,
        channel=channel.name,
        channel_id=channel.id,
        team=group.name if group else None,
        project_group_id=group.id if group else None,
        tenant_tags=list(draft.tenant_tags),
        finished_at=format_instant(draft.finished_at),
        started_at=format_instant(draft.started_at) if draft.started_at else None,
        version=draft.version,
        state=draft.state,
        had_guided_failure=draft.had_guided_failure,
        rollback=draft.rollback,
        fixes=draft.fixes,
        tags=list(draft.tags),
        commit_sha=draft.commit_sha,
        repository=draft.repository,
        merge_commit_shas=list(draft.merge_commit_shas) if draft.merge_commit_shas is not None else None,
        integration_branch=draft.integration_branch,
        source_name=draft.source_name,
        source_url=draft.source_url,
        metadata=draft.metadata,
        release_created_at=format_instant(draft.release_created_at) if draft.release_created_at else None,
        received_at=format_instant(now),
        body_hash=draft.fingerprint(),
    )


def ingest(
    store: Ports,
    space: SpaceRecord,
    draft: DeploymentDraft,
    now: datetime,
    *,
    idempotency: tuple[str, str] | None = None,
) -> WriteOutcome:
    """Store one deployment (idempotent by client id or dialect idempotency key)."""
    entities = catalogue.resolve(store, space.id, wanted_entities(space, draft))
    catalogue.remember_tenant_tags(store, space.id, entities, draft.tenant_tags)
    deployment = build_deployment(space, draft, entities, now)
    if idempotency is not None:  # a removal deletes the record with the deployment (logic/corrections.py)
        deployment = deployment.model_copy(update={"idempotency_key": idempotency})
    outcome = _write(store, deployment, now, idempotency)
    _attribute(store, space.id, outcome, now)
    return outcome


def _write(
    store: Ports, deployment: Deployment, now: datetime, idempotency: tuple[str, str] | None = None
) -> WriteOutcome:
    """The deployment's transaction, with the attribution it is owed (an outbox item) when it names code."""
    due = attribution.outbox_due(deployment, now)
    return store.deployments().write(deployment, now=format_instant(now), idempotency=idempotency, outbox_due=due)


def _attribute(store: Ports, space_id: str, outcome: WriteOutcome, now: datetime) -> None:
    """Attribute a new deployment at once; for a repeat (a client's retry), attribute the stored one
    if the first request died before its attribution ran."""
    if outcome.created:
        owed = attribution.owes_attribution(outcome.deployment)
        outbox = attribution.NEW_OUTBOX if owed else None
        attribution.attribute_at_ingest(store, space_id, outcome.deployment, now, outbox=outbox)
    else:
        attribution.resume(store, space_id, outcome.deployment, now)


def ingest_batch(
    store: Ports, space: SpaceRecord, drafts: Sequence[DeploymentDraft | DoraError], now: datetime
) -> list[WriteOutcome | DoraError]:
    """Store many deployments; items that failed validation (or conflict) are reported, not fatal."""
    wanted = [w for d in drafts if isinstance(d, DeploymentDraft) for w in wanted_entities(space, d)]
    entities = catalogue.resolve(store, space.id, wanted)
    catalogue.remember_tenant_tags(
        store, space.id, entities, [t for d in drafts if isinstance(d, DeploymentDraft) for t in d.tenant_tags]
    )
    results: list[WriteOutcome | DoraError] = []
    for draft in drafts:
        if isinstance(draft, DoraError):
            results.append(draft)
            continue
        deployment = build_deployment(space, draft, entities, now)
        try:
            outcome = _write(store, deployment, now)
        except DoraError as error:
            results.append(error)
            continue
        _attribute(store, space.id, outcome, now)
        results.append(outcome)
    return results


def get_deployment(store: Ports, space_id: str, deployment_id: str) -> Deployment:
    """One deployment of the space, or 404, with the figures of the latest recompute when there are
    some ("why is my metric what it is"); before that, what attribution found."""
    deployment = store.deployments().get(space_id, deployment_id)
    if deployment is None:
        raise ResourceNotFoundError(f"deployment '{deployment_id}' not found")
    return _with_figures(store, space_id, deployment)


def with_figures(store: Ports, space_id: str, deployment: Deployment) -> Deployment:
    """The deployment with the figures of its stream's latest recompute, when there are some."""
    return _with_figures(store, space_id, deployment)


def _with_figures(store: Ports, space_id: str, deployment: Deployment) -> Deployment:
    record = store.metrics().deployment_figures(
        space_id, deployment.stream_key, deployment.id, deployment.finished_at[:7]
    )
    if record is not None:
        deployment = deployment.model_copy(update={"figures": figures_of(record).to_model()})
    return deployment


def get_deployment_and_stream_health(
    store: Ports, space_id: str, deployment_id: str, now: datetime
) -> tuple[Deployment, StreamHealthRecord | None, Freshness]:
    """:func:`get_deployment` with its stream brought up to date first when little waits
    (``freshness.read_stream``), its stream's recompute failure record when the stream fails or is
    quarantined (None while it recomputes fine: one more GetItem), and how fresh its figures are."""
    from dora_insights.logic import freshness, health

    found = store.deployments().get(space_id, deployment_id)
    if found is None:
        raise ResourceNotFoundError(f"deployment '{deployment_id}' not found")
    fresh = freshness.read_stream(store, space_id, found.stream_key, now)
    deployment = _with_figures(store, space_id, found)
    return deployment, health.stream_health(store, space_id, deployment.stream_key), fresh


@dataclass(frozen=True)
class DeploymentFilter:
    """Filters of ``GET /api/{spaceId}/deployments``; entity filters take a name or an id; ``tags``
    (``key:value``, exactly as sent) must all be on a deployment."""

    project: str | None = None
    environment: str | None = None
    tenant: str | None = None
    state: TaskState | None = None
    finished_from: datetime | None = None
    finished_to: datetime | None = None
    tags: tuple[str, ...] = ()


def list_deployments(
    store: Ports,
    space_id: str,
    filters: DeploymentFilter,
    *,
    limit: int = DEFAULT_PAGE,
    cursor: str | None = None,
) -> tuple[list[Deployment], str | None]:
    """Newest first by finish time, with an opaque cursor; a time-bounded Query, never a Scan."""
    project_id = catalogue.filter_id(store, space_id, CatalogueKind.PROJECT, filters.project)
    environment_id = catalogue.filter_id(store, space_id, CatalogueKind.ENVIRONMENT, filters.environment)
    tenant_id = catalogue.filter_id(store, space_id, CatalogueKind.TENANT, filters.tenant)
    if "" in (project_id, environment_id, tenant_id):
        return [], None
    return store.deployments().list_page(
        space_id,
        project_id=project_id,
        environment_id=environment_id,
        tenant_id=tenant_id,
        state=filters.state,
        finished_from=filters.finished_from,
        finished_to=filters.finished_to,
        limit=limit,
        cursor=cursor,
        tags=filters.tags,
    )
