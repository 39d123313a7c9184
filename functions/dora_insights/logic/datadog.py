"""Datadog's DORA reads: one deployment or failure event by id, and the lists searched by a query.

A list reads the narrowest set of events the query allows (API.md, Datadog dialect), then keeps the
ones the whole query matches (``domain.event_search``, evaluated on each event as the dialect presents
it: ``document``):

- the query pins ``service`` (``service:web``, alone or ANDed with anything) and ``env``, and the
  project has exactly one stream in that environment (the usual Datadog case: one channel, no
  tenant): that stream's deployments;
- the query pins ``service``: the project's deployments;
- otherwise every deployment of the space; failure events are always read by start time.

A service or environment the space has never seen matches nothing: the answer is empty at once.
A page that continues a list (a cursor) reads where the cursor says, without choosing again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from dora_insights.domain import event_search
from dora_insights.domain.event_search import Document, Expr
from dora_insights.domain.model import CatalogueKind, Deployment, FailureEvent, stream_ids
from dora_insights.errors import ResourceNotFoundError
from dora_insights.logic.ports import Ports

T = TypeVar("T")
SERVICE = "service"
ENV = "env"


@dataclass(frozen=True)
class EventSearch:
    """One page of a Datadog list: the query, the time bounds (inclusive, either open), the order,
    the page size and where to continue."""

    expression: Expr
    lowest: datetime | None = None
    highest: datetime | None = None
    ascending: bool = False
    limit: int = 10
    cursor: str | None = None


def get_deployment(store: Ports, space_id: str, deployment_id: str) -> Deployment:
    """One deployment of the space, or 404 (another space's id is unknown here)."""
    deployment = store.deployments().get(space_id, deployment_id)
    if deployment is None:
        raise ResourceNotFoundError(f"deployment '{deployment_id}' not found")
    return deployment


def get_failure(store: Ports, space_id: str, failure_id: str) -> FailureEvent:
    """One failure event of the space, or 404."""
    failure = store.failures().get(space_id, failure_id)
    if failure is None:
        raise ResourceNotFoundError(f"failure event '{failure_id}' not found")
    return failure


@dataclass(frozen=True)
class ListScope:
    """The deployments a list reads: one stream's, else one project's, else (both None) the space's."""

    project_id: str | None = None
    stream: str | None = None


def deployment_scope(store: Ports, space_id: str, expression: Expr) -> ListScope | None:
    """Which deployments a query can match at most: one stream's, one project's or the space's
    (an empty ``ListScope``); None when it names a service or environment the space does not have."""
    service = event_search.required_literal(expression, SERVICE)
    if service is None:
        return ListScope()
    env = event_search.required_literal(expression, ENV)
    wanted = [(CatalogueKind.PROJECT, service)]
    if env is not None:
        wanted.append((CatalogueKind.ENVIRONMENT, env))
    found = store.find_catalogue_names(space_id, wanted)
    project = found.get((CatalogueKind.PROJECT, service.casefold()))
    if project is None:
        return None
    if env is None:
        return ListScope(project_id=project.id)
    environment = found.get((CatalogueKind.ENVIRONMENT, env.casefold()))
    if environment is None:
        return None
    streams = [
        s
        for s in store.event_search().project_streams(space_id, project.id)
        if (ids := stream_ids(s)) is not None and ids[2] == environment.id
    ]
    return ListScope(stream=streams[0]) if len(streams) == 1 else ListScope(project_id=project.id)


def _matcher(expression: Expr, document: Callable[[T], Document]) -> Callable[[T], bool]:
    """Whether an event matches the query (every event for ``*``, without presenting it)."""
    if isinstance(expression, event_search.Everything):
        return lambda _: True
    return lambda event: event_search.evaluate(expression, document(event))


def list_deployments(
    store: Ports, space_id: str, search: EventSearch, document: Callable[[Deployment], Document]
) -> tuple[list[Deployment], str | None]:
    """A page of the space's deployments the query matches, and the cursor of the next (None at the end)."""
    scope = ListScope()
    if search.cursor is None:
        narrowest = deployment_scope(store, space_id, search.expression)
        if narrowest is None:
            return [], None
        scope = narrowest
    return store.event_search().deployments_page(
        space_id,
        project_id=scope.project_id,
        stream=scope.stream,
        lowest=search.lowest,
        highest=search.highest,
        ascending=search.ascending,
        limit=search.limit,
        cursor=search.cursor,
        keep=_matcher(search.expression, document),
    )


def list_failures(
    store: Ports, space_id: str, search: EventSearch, document: Callable[[FailureEvent], Document]
) -> tuple[list[FailureEvent], str | None]:
    """A page of the space's failure events the query matches, and the cursor of the next."""
    return store.event_search().failures_page(
        space_id,
        lowest=search.lowest,
        highest=search.highest,
        ascending=search.ascending,
        limit=search.limit,
        cursor=search.cursor,
        keep=_matcher(search.expression, document),
    )
