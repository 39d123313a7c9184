"""Native failure-event routes (API.md "Native API": ``/api/{spaceId}/failures``)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dora_insights.dialects.errors import ErrorDialect
from dora_insights.dialects.native_failures import FailureIn, FailureOut, FailurePage
from dora_insights.domain.queries import FailureFilter
from dora_insights.domain.scopes import Scope
from dora_insights.handlers.http import api, entry, instant_param, json_response, no_content
from dora_insights.handlers.params import Cursor, EnvironmentName, FailureId, From, ProjectName, SpaceId, To
from dora_insights.handlers.runtime import caller_space, now, principal, store
from dora_insights.logic import corrections, failures

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.NATIVE)


@router.post(
    "/api/<spaceId>/failures",
    summary="Record a failure (incident) event",
    tags=["Failures"],
    responses={
        201: {"description": "Created"},
        200: {"description": "Stored already (the same id with the same body)"},
    },
)
def _create_failure(spaceId: SpaceId, body: Annotated[FailureIn, Body()]) -> Response[FailureOut]:
    space = caller_space()
    outcome = failures.record_failure(store(), space, body.to_draft(), now())
    return json_response(201 if outcome.created else 200, FailureOut.from_outcome(outcome))


create_failure = entry(app, ErrorDialect.NATIVE, Scope.DEPLOYMENTS_WRITE)


@router.get("/api/<spaceId>/failures", summary="List failure events, newest start first", tags=["Failures"])
def _list_failures(
    spaceId: SpaceId,
    project: ProjectName = None,
    environment: EnvironmentName = None,
    from_: From = None,
    to: To = None,
    limit: Annotated[int, Query(ge=1, le=failures.MAX_PAGE)] = failures.DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Response[FailurePage]:
    caller = principal()
    filters = FailureFilter(
        project=project,
        environment=environment,
        started_from=instant_param("from", from_),
        started_to=instant_param("to", to),
    )
    items, next_cursor = failures.list_failures(store(), caller.space_id, filters, limit=limit, cursor=cursor)
    return json_response(200, FailurePage(items=[FailureOut.from_domain(f) for f in items], next_cursor=next_cursor))


list_failures = entry(app, ErrorDialect.NATIVE, Scope.DEPLOYMENTS_READ)


@router.get("/api/<spaceId>/failures/<failureId>", summary="One failure event", tags=["Failures"])
def _get_failure(spaceId: SpaceId, failureId: FailureId) -> Response[FailureOut]:
    caller = principal()
    return json_response(200, FailureOut.from_domain(corrections.get_failure(store(), caller.space_id, failureId)))


get_failure = entry(app, ErrorDialect.NATIVE, Scope.DEPLOYMENTS_READ)


@router.delete(
    "/api/<spaceId>/failures/<failureId>", summary="Delete a failure event", tags=["Failures"], status_code=204
)
def _delete_failure(spaceId: SpaceId, failureId: FailureId) -> Response[None]:
    caller = principal()
    corrections.delete_failure(store(), caller.space_id, failureId, actor=corrections.actor_of(caller), now=now())
    return no_content()


delete_failure = entry(app, ErrorDialect.NATIVE, Scope.DEPLOYMENTS_WRITE)
