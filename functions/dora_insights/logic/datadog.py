"""Datadog's DORA reads: one deployment or failure event by id (the native reads, without figures),
and the lists searched by a query.

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
from typing import TypeVar

from dora_insights.domain import event_search
from dora_insights.domain.event_search import Document, Expr
from dora_insights.domain.model import CatalogueKind, Deployment, FailureEvent, stream_ids
from dora_insights.domain.queries import EventPage, ListScope
from dora_insights.logic.deployments import stored_deployment as get_deployment
from dora_insights.logic.failures import get_failure
from dora_insights.logic.ports import Ports

__all__ = [
    "ENV",
    "SERVICE",
    "EventSearch",
    "deployment_scope",
    "get_deployment",
    "get_failure",
    "list_deployments",
    "list_failures",
]

T = TypeVar("T")
SERVICE = "service"
ENV = "env"


@dataclass(frozen=True)
class EventSearch(EventPage):
    """One page of a Datadog list: the query, and which page of the events it matches (the time
    bounds, the order, the page size and where to continue: keywords of ``EventPage``)."""

    expression: Expr


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
    keep = _matcher(search.expression, document)
    return store.event_search().deployments_page(space_id, scope=scope, page=search, keep=keep)


def list_failures(
    store: Ports, space_id: str, search: EventSearch, document: Callable[[FailureEvent], Document]
) -> tuple[list[FailureEvent], str | None]:
    """A page of the space's failure events the query matches, and the cursor of the next."""
    return store.event_search().failures_page(space_id, page=search, keep=_matcher(search.expression, document))
