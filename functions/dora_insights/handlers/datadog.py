"""Datadog DORA dialect routes (API.md "Dialect: Datadog DORA").

No space in the path: every event lands in the API key's space (``DD-API-KEY`` header).
Errors are JSON:API with ``source.pointer`` naming the offending field.
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dora_insights.dialects.datadog import DeploymentRequest, EventResponse, FailureRequest
from dora_insights.dialects.errors import ErrorDialect
from dora_insights.domain.scopes import Scope
from dora_insights.errors import ResourceConflictError
from dora_insights.handlers.http import api, entry, json_response
from dora_insights.handlers.runtime import now, principal, store
from dora_insights.logic import deployments, failures, spaces

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.DATADOG)

DIALECT = "datadog"
ID_FIELD = "data.attributes.id"


@router.post("/api/v2/dora/deployment", summary="Send a DORA deployment event (Datadog)", tags=["Datadog DORA"])
def _create_deployment_event(body: Annotated[DeploymentRequest, Body()]) -> Response[EventResponse]:
    caller = principal()
    space = spaces.get_space(store(), caller.space_id)
    attributes = body.data.attributes
    idempotency = (DIALECT, attributes.id) if attributes.id else None
    try:
        outcome = deployments.ingest(store(), space, attributes.to_draft(), now(), idempotency=idempotency)
    except ResourceConflictError as error:
        raise ResourceConflictError(error.message, field=ID_FIELD) from None
    return json_response(200, EventResponse.deployment(outcome.deployment.id))


create_deployment_event = entry(app, ErrorDialect.DATADOG, Scope.DEPLOYMENTS_WRITE)


@router.post("/api/v2/dora/failure", summary="Send a DORA failure event (Datadog)", tags=["Datadog DORA"])
@router.post("/api/v2/dora/incident", summary="Send a DORA incident event (legacy alias)", tags=["Datadog DORA"])
def _create_failure_event(body: Annotated[FailureRequest, Body()]) -> Response[EventResponse]:
    caller = principal()
    space = spaces.get_space(store(), caller.space_id)
    try:
        outcome = failures.record_failure(store(), space, body.data.attributes.to_draft(), now())
    except ResourceConflictError as error:
        raise ResourceConflictError(error.message, field=ID_FIELD) from None
    return json_response(200, EventResponse.failure(outcome.failure.id))


create_failure_event = entry(app, ErrorDialect.DATADOG, Scope.DEPLOYMENTS_WRITE)
