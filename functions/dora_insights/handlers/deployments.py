"""The native route that creates one deployment (API.md "Native API").

A batch of up to 500 is handlers/deployment_batch.py; the routes that read, correct and delete
deployments are handlers/deployment_records.py: this function, the busiest of the service, loads only
what creating one deployment needs.
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dora_insights.dialects.errors import ErrorDialect
from dora_insights.dialects.native import DeploymentIn, DeploymentOut
from dora_insights.domain.scopes import Scope
from dora_insights.handlers.http import api, entry, json_response
from dora_insights.handlers.params import SpaceId
from dora_insights.handlers.runtime import caller_space, now, store
from dora_insights.logic import deployments

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.NATIVE)


@router.post(
    "/api/<spaceId>/deployments",
    summary="Create a deployment",
    tags=["Deployments"],
    responses={
        201: {"description": "Created"},
        200: {"description": "Stored already (the same id with the same body)"},
    },
)
def _create_deployment(spaceId: SpaceId, body: Annotated[DeploymentIn, Body()]) -> Response[DeploymentOut]:
    space = caller_space()
    outcome = deployments.ingest(store(), space, body.to_draft(), now())
    return json_response(201 if outcome.created else 200, DeploymentOut.from_domain(outcome.deployment))


create_deployment = entry(app, ErrorDialect.NATIVE, Scope.DEPLOYMENTS_WRITE)
