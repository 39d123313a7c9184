"""Failure (incident) events: the write path every dialect uses, and the native list.

validation (dialect) -> ``FailureDraft`` -> catalogue ids (projects, environment) ->
``FailureEvent`` -> one transaction (the event, conditional on its id, plus dirty marks of
the streams it affects: ``dal.failures``). The recompute reads failures by start time
(pattern 15) for TimeToRestore (METRICS §3) and change-failure rule 4 (METRICS §2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dora_insights.dal.failures import FailureStore
from dora_insights.dal.store import SpaceRecord, Store
from dora_insights.domain.failures import FailureDraft, FailureOutcome
from dora_insights.domain.ids import new_id
from dora_insights.domain.model import CatalogueKind, FailureEvent
from dora_insights.domain.times import format_instant
from dora_insights.errors import ResourceNotFoundError
from dora_insights.logic import catalogue

MAX_PAGE = 500
DEFAULT_PAGE = 50


def record_failure(store: Store, space: SpaceRecord, draft: FailureDraft, now: datetime) -> FailureOutcome:
    """Store one failure event (idempotent by its client id)."""
    environment_name = draft.environment or space.default_environment
    wanted = [(CatalogueKind.PROJECT, p) for p in draft.projects] + [(CatalogueKind.ENVIRONMENT, environment_name)]
    entities = catalogue.resolve(store, space.id, wanted)
    projects = [entities[(CatalogueKind.PROJECT, p.casefold())] for p in draft.projects]
    environment = entities[(CatalogueKind.ENVIRONMENT, environment_name.casefold())]
    unique = list({p.id: p for p in projects}.values())
    failure = FailureEvent(
        id=draft.client_id or new_id(now),
        space_id=space.id,
        source=draft.source,
        projects=[p.name for p in unique],
        project_ids=[p.id for p in unique],
        environment=environment.name,
        environment_id=environment.id,
        name=draft.name,
        severity=draft.severity,
        started_at=format_instant(draft.started_at),
        finished_at=format_instant(draft.finished_at) if draft.finished_at else None,
        commit_sha=draft.commit_sha,
        repository=draft.repository,
        team=draft.team,
        version=draft.version,
        tags=list(draft.tags),
        received_at=format_instant(now),
        body_hash=draft.fingerprint(),
    )
    return FailureStore(store).write(failure, now=format_instant(now))


def get_failure(store: Store, space_id: str, failure_id: str) -> FailureEvent:
    """One failure event of the space, or 404."""
    failure = FailureStore(store).get(space_id, failure_id)
    if failure is None:
        raise ResourceNotFoundError(f"failure event '{failure_id}' not found")
    return failure


@dataclass(frozen=True)
class FailureFilter:
    """Filters of ``GET /api/{spaceId}/failures``; entity filters take a name or an id."""

    project: str | None = None
    environment: str | None = None
    started_from: datetime | None = None
    started_to: datetime | None = None


def list_failures(
    store: Store, space_id: str, filters: FailureFilter, *, limit: int = DEFAULT_PAGE, cursor: str | None = None
) -> tuple[list[FailureEvent], str | None]:
    """Newest start first, with an opaque cursor; a time-bounded Query, never a Scan."""
    project_id = catalogue.filter_id(store, space_id, CatalogueKind.PROJECT, filters.project)
    environment_id = catalogue.filter_id(store, space_id, CatalogueKind.ENVIRONMENT, filters.environment)
    if "" in (project_id, environment_id):
        return [], None
    low = format_instant(filters.started_from) if filters.started_from else "0"
    high = (format_instant(filters.started_to) if filters.started_to else "9") + "#\uffff"
    return FailureStore(store).list_page(
        space_id,
        project_id=project_id,
        environment_id=environment_id,
        started_between=(low, high),
        limit=limit,
        cursor=cursor,
    )
