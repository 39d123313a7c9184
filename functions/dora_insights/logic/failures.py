"""Failure (incident) events: the write path every dialect uses, and the native list.

validation (dialect) -> ``FailureDraft`` -> catalogue ids (projects, environment) ->
``FailureEvent`` -> one transaction (the event, conditional on its id, plus dirty marks of
the streams it affects: ``dal.failures``; a transaction concurrent writes of those marks keep
cancelling is a 503 ``write_contended`` to retry, not a conflict). The recompute reads failures by
start time (pattern 15) for TimeToRestore (METRICS §3) and change-failure rule 4 (METRICS §2).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from dora_insights.domain.failures import FailureDraft, FailureOutcome
from dora_insights.domain.ids import new_id
from dora_insights.domain.model import CatalogueKind, FailureEvent
from dora_insights.domain.queries import FailureFilter, FailureListQuery
from dora_insights.domain.records import SpaceRecord
from dora_insights.domain.times import format_instant
from dora_insights.errors import RequestInvalidError, ResourceConflictError, ResourceNotFoundError
from dora_insights.logic import catalogue
from dora_insights.logic.ports import Ports

MAX_PAGE = 500
DEFAULT_PAGE = 50


def record_failure(store: Ports, space: SpaceRecord, draft: FailureDraft, now: datetime) -> FailureOutcome:
    """Store one failure event (idempotent by its client id).

    An id stored already is read first (one consistent GetItem): a request that reuses it with other
    values is a 409 before any name it carries is registered in the catalogue, and a repeat is answered
    with the stored event even when the deployment it names was removed since (a client's retry, or the
    CLI's ``failure resolve``, which sends the open event's values again)."""
    stored = _stored_under_id(store, space, draft)
    failure, cause_stream = build_failure(store, space, draft, now, repeat=stored is not None)
    return store.failures().write(failure, now=format_instant(now), also_stream=cause_stream)


def _stored_under_id(store: Ports, space: SpaceRecord, draft: FailureDraft) -> FailureEvent | None:
    """The event stored under the draft's id when the draft repeats it (None: no id, or none stored);
    a 409 when the id holds other values."""
    if draft.client_id is None:
        return None
    stored = store.failures().get(space.id, draft.client_id, consistent=True)
    if stored is not None and stored.body_hash not in draft.stored_fingerprints(space.default_environment):
        raise ResourceConflictError("this id was already used with different values", field="id")
    return stored


def build_failure(
    store: Ports, space: SpaceRecord, draft: FailureDraft, now: datetime, *, repeat: bool = False
) -> tuple[FailureEvent, str | None]:
    """The stored form of a draft (its names resolved in the catalogue), with the stream of the deployment
    it names as its cause (None when it names none, or it is gone); a 400 when that deployment is not in
    the space, checked before any name is registered, unless the draft ``repeat``s an event stored
    already (its cause may have been removed since: METRICS §2 rule 4)."""
    cause_stream = None
    if draft.deployment_id is not None:  # METRICS §2 rule 4: the cause must be a deployment of this space
        # Read consistently: a pipeline posts the failure right after the deployment that caused it.
        cause = store.deployments().get(space.id, draft.deployment_id, consistent=True)
        if cause is None and not repeat:
            raise RequestInvalidError(
                f"deployment_id: no deployment '{draft.deployment_id}' in this space", field="deployment_id"
            )
        cause_stream = cause.stream_key if cause is not None else None
    environment_name = draft.environment or space.default_environment
    wanted = [(CatalogueKind.PROJECT, p) for p in draft.projects] + [(CatalogueKind.ENVIRONMENT, environment_name)]
    entities = catalogue.resolve(store, space.id, wanted)
    projects = [entities[(CatalogueKind.PROJECT, p.casefold())] for p in draft.projects]
    environment = entities[(CatalogueKind.ENVIRONMENT, environment_name.casefold())]
    unique = list({p.id: p for p in projects}.values())
    # The draft's fields go over as they are but for these (as in ``deployments.build_deployment``): the
    # names resolved in the catalogue above, the instants stamped as text, and the client's id.
    resolved = {"client_id", "projects", "environment"}
    stamped = {"started_at", "finished_at"}
    fingerprints = draft.stored_fingerprints(space.default_environment)
    failure = FailureEvent(
        **draft.model_dump(exclude=resolved | stamped),
        id=draft.client_id or new_id(now),
        space_id=space.id,
        projects=[p.name for p in unique],
        project_ids=[p.id for p in unique],
        environment=environment.name,
        environment_id=environment.id,
        started_at=format_instant(draft.started_at),
        finished_at=format_instant(draft.finished_at) if draft.finished_at else None,
        received_at=format_instant(now),
        body_hash=fingerprints[0],
        request_hashes=fingerprints[1:],
    )
    return failure, cause_stream


def get_failure(store: Ports, space_id: str, failure_id: str) -> FailureEvent:
    """One failure event of the space, or 404 (read consistently: one posted a moment ago is there)."""
    failure = store.failures().get(space_id, failure_id, consistent=True)
    if failure is None:
        raise ResourceNotFoundError(f"failure event '{failure_id}' not found")
    return failure


def list_failures(
    store: Ports, space_id: str, filters: FailureFilter, *, limit: int = DEFAULT_PAGE, cursor: str | None = None
) -> tuple[list[FailureEvent], str | None]:
    """Newest start first, with an opaque cursor; a time-bounded Query, never a Scan."""
    project_id = catalogue.filter_id(store, space_id, CatalogueKind.PROJECT, filters.project)
    environment_id = catalogue.filter_id(store, space_id, CatalogueKind.ENVIRONMENT, filters.environment)
    if "" in (project_id, environment_id):
        return [], None
    resolved = replace(filters, project=project_id, environment=environment_id)
    return store.failures().list_page(space_id, FailureListQuery(resolved, limit=limit, cursor=cursor))
