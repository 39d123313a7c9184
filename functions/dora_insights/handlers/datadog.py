"""Datadog DORA dialect routes (API.md "Dialect: Datadog DORA"): the create routes, the reads (get and
list, deployments and failures) and the corrections (patch by id or by version, delete) of
datadog-api-client's ``DORAMetricsApi``.

No space in the path: every event lands in (and is read from) the API key's space (``DD-API-KEY``
header). Errors are JSON:API with ``source.pointer`` naming the offending field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dora_insights.dialects.datadog import (
    DeploymentFetchResponse,
    DeploymentListRequest,
    DeploymentObject,
    DeploymentRequest,
    DeploymentsListResponse,
    EventResponse,
    FailureFetchResponse,
    FailureListRequest,
    FailureRequest,
    FailuresListResponse,
    IncidentObject,
    ListAttributes,
    ListMeta,
    PatchByVersionRequest,
    PatchRequest,
    deployment_document,
    failure_document,
    list_meta,
)
from dora_insights.dialects.errors import ErrorDialect
from dora_insights.domain.scopes import Scope
from dora_insights.errors import RequestInvalidError, ResourceConflictError
from dora_insights.handlers.http import api, entry, json_response, no_content
from dora_insights.handlers.params import DeploymentId, FailureId
from dora_insights.handlers.runtime import caller_space, now, principal, store
from dora_insights.logic import corrections, deployments, failures
from dora_insights.logic import datadog as reads

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.DATADOG)

DIALECT = "datadog"
TAGS = ["Datadog DORA"]
ID_FIELD = "data.attributes.id"
CURSOR_FIELD = "data.attributes.page.cursor"
EventT = TypeVar("EventT")


@contextmanager
def _conflict_at_id() -> Iterator[None]:
    """An event id reused with other content (409) points at the id it came in."""
    try:
        yield
    except ResourceConflictError as error:
        raise ResourceConflictError(error.message, field=ID_FIELD) from None


@router.post("/api/v2/dora/deployment", summary="Send a DORA deployment event (Datadog)", tags=TAGS)
def _create_deployment_event(body: Annotated[DeploymentRequest, Body()]) -> Response[EventResponse]:
    space = caller_space()
    attributes = body.data.attributes
    idempotency = (DIALECT, attributes.id) if attributes.id else None
    with _conflict_at_id():
        outcome = deployments.ingest(store(), space, attributes.to_draft(), now(), idempotency=idempotency)
    return json_response(200, EventResponse.deployment(outcome.deployment.id))


create_deployment_event = entry(app, ErrorDialect.DATADOG, Scope.DEPLOYMENTS_WRITE)


@router.post("/api/v2/dora/failure", summary="Send a DORA failure event (Datadog)", tags=TAGS)
@router.post("/api/v2/dora/incident", summary="Send a DORA incident event (legacy alias)", tags=TAGS)
def _create_failure_event(body: Annotated[FailureRequest, Body()]) -> Response[EventResponse]:
    space = caller_space()
    with _conflict_at_id():
        outcome = failures.record_failure(store(), space, body.data.attributes.to_draft(), now())
    return json_response(200, EventResponse.failure(outcome.failure.id))


create_failure_event = entry(app, ErrorDialect.DATADOG, Scope.DEPLOYMENTS_WRITE)


@router.get("/api/v2/dora/deployments/<deployment_id>", summary="Get a DORA deployment event (Datadog)", tags=TAGS)
def _get_deployment_event(deployment_id: DeploymentId) -> Response[DeploymentFetchResponse]:
    deployment = reads.get_deployment(store(), principal().space_id, deployment_id)
    return json_response(200, DeploymentFetchResponse(data=DeploymentObject.from_domain(deployment)))


get_deployment_event = entry(app, ErrorDialect.DATADOG, Scope.DEPLOYMENTS_READ)


@router.get("/api/v2/dora/failures/<failure_id>", summary="Get a DORA failure event (Datadog)", tags=TAGS)
def _get_failure_event(failure_id: FailureId) -> Response[FailureFetchResponse]:
    failure = reads.get_failure(store(), principal().space_id, failure_id)
    return json_response(200, FailureFetchResponse(data=IncidentObject.from_domain(failure)))


get_failure_event = entry(app, ErrorDialect.DATADOG, Scope.DEPLOYMENTS_READ)


def _page(
    attributes: ListAttributes, lister: Callable[[reads.EventSearch], tuple[list[EventT], str | None]]
) -> tuple[list[EventT], ListMeta | None]:
    """The page of events a list request asks for, and its ``meta``. A refused cursor (another list's,
    another space's, not ours) points at the field it came in."""
    search = reads.EventSearch(
        expression=attributes.expression,
        lowest=attributes.from_,
        highest=attributes.to,
        ascending=attributes.ascending,
        limit=attributes.limit,
        cursor=attributes.cursor,
    )
    try:
        found, after = lister(search)
    except RequestInvalidError as error:
        if error.field != "cursor":
            raise
        raise RequestInvalidError(error.message, field=CURSOR_FIELD) from None
    return found, list_meta(after)


@router.post(
    "/api/v2/dora/deployments",
    summary="List DORA deployment events (Datadog): from, to, limit, sort, query; meta.page.after to continue",
    tags=TAGS,
)
def _list_deployment_events(body: Annotated[DeploymentListRequest, Body()]) -> Response[DeploymentsListResponse]:
    space_id = principal().space_id
    found, meta = _page(
        body.data.attributes, lambda search: reads.list_deployments(store(), space_id, search, deployment_document)
    )
    return json_response(200, DeploymentsListResponse(data=[DeploymentObject.from_domain(d) for d in found], meta=meta))


list_deployment_events = entry(app, ErrorDialect.DATADOG, Scope.DEPLOYMENTS_READ)


@router.post(
    "/api/v2/dora/failures",
    summary="List DORA failure events (Datadog): from, to, limit, sort, query; meta.page.after to continue",
    tags=TAGS,
)
def _list_failure_events(body: Annotated[FailureListRequest, Body()]) -> Response[FailuresListResponse]:
    space_id = principal().space_id
    found, meta = _page(
        body.data.attributes, lambda search: reads.list_failures(store(), space_id, search, failure_document)
    )
    return json_response(200, FailuresListResponse(data=[IncidentObject.from_domain(f) for f in found], meta=meta))


list_failure_events = entry(app, ErrorDialect.DATADOG, Scope.DEPLOYMENTS_READ)


# --- corrections: patch and delete ----------------------------------------------------------------------
# Datadog answers all four with 202 Accepted and no body (the client expects none: ``response_type`` None).
ACCEPTED = 202
ACCEPTED_DOC: dict[int, OpenAPIResponse] = {ACCEPTED: {"description": "Accepted (no body, as Datadog answers)"}}
ATTRIBUTES = "data.attributes"


def _correction_route(method: str, rule: str, summary: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A correction route (patch or delete), answered with 202 Accepted and no body."""
    return router.route(rule, method, summary=summary, tags=TAGS, status_code=ACCEPTED, responses=ACCEPTED_DOC)


def _on_correction(error: RequestInvalidError) -> RequestInvalidError:
    """A correction the core refuses (a remediation that names no later deployment of the stream) points
    at the attribute it came in (``remediation.id`` -> ``data.attributes.remediation.id``)."""
    field = f"{ATTRIBUTES}.{error.field}" if error.field else ATTRIBUTES
    return RequestInvalidError(error.message, field=field)


def _correct(deployment_id: str, correction: corrections.DeploymentCorrection) -> None:
    caller = principal()
    try:
        corrections.correct_deployment(
            store(), caller.space_id, deployment_id, correction, actor=corrections.actor_of(caller), now=now()
        )
    except RequestInvalidError as error:
        raise _on_correction(error) from None


@_correction_route(
    "PATCH",
    "/api/v2/dora/deployments/<deployment_id>",
    "Mark a deployment event as a change failure or stable, with its remediation (Datadog)",
)
def _patch_deployment_event(deployment_id: DeploymentId, body: Annotated[PatchRequest, Body()]) -> Response[None]:
    if body.data.id is not None and body.data.id != deployment_id:
        raise RequestInvalidError(f"data.id '{body.data.id}' is not the path's deployment id", field="data.id")
    _correct(deployment_id, body.data.attributes.to_correction())
    return no_content(ACCEPTED)


patch_deployment_event = entry(app, ErrorDialect.DATADOG, Scope.DEPLOYMENTS_WRITE)


@_correction_route(
    "PATCH",
    "/api/v2/dora/deployments",
    "Mark a deployment event, found by service, env and version, as a change failure or stable (Datadog)",
)
def _patch_deployment_event_by_version(body: Annotated[PatchByVersionRequest, Body()]) -> Response[None]:
    attributes = body.data.attributes
    found = corrections.find_deployment_by_version(
        store(), principal().space_id, service=attributes.service, env=attributes.env, version=attributes.version
    )
    _correct(found.id, attributes.to_correction())
    return no_content(ACCEPTED)


patch_deployment_event_by_version = entry(app, ErrorDialect.DATADOG, Scope.DEPLOYMENTS_WRITE)


@_correction_route("DELETE", "/api/v2/dora/deployment/<deployment_id>", "Delete a deployment event (Datadog)")
def _delete_deployment_event(deployment_id: DeploymentId) -> Response[None]:
    caller = principal()
    corrections.delete_deployment(
        store(), caller.space_id, deployment_id, actor=corrections.actor_of(caller), now=now()
    )
    return no_content(ACCEPTED)


delete_deployment_event = entry(app, ErrorDialect.DATADOG, Scope.DEPLOYMENTS_WRITE)


@_correction_route("DELETE", "/api/v2/dora/failure/<failure_id>", "Delete a failure (incident) event (Datadog)")
def _delete_failure_event(failure_id: FailureId) -> Response[None]:
    caller = principal()
    corrections.delete_failure(store(), caller.space_id, failure_id, actor=corrections.actor_of(caller), now=now())
    return no_content(ACCEPTED)


delete_failure_event = entry(app, ErrorDialect.DATADOG, Scope.DEPLOYMENTS_WRITE)
