"""The native batch route: up to 500 deployments in one request, each with its own result (API.md
"Native API", ``POST /api/{spaceId}/deployments/batch``)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import ValidationError

from dora_insights.dialects.errors import ErrorDialect, from_validation_errors
from dora_insights.dialects.native import DeploymentIn, DeploymentOut
from dora_insights.dialects.native_batch import BatchIn, BatchItemResult, BatchOut
from dora_insights.domain.model import DeploymentDraft
from dora_insights.domain.scopes import Scope
from dora_insights.errors import DoraError, RequestInvalidError
from dora_insights.handlers.http import api, entry, json_response
from dora_insights.handlers.params import SpaceId
from dora_insights.handlers.runtime import caller_space, now, store
from dora_insights.logic import deployments

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.NATIVE)


@router.post("/api/<spaceId>/deployments/batch", summary="Create up to 500 deployments", tags=["Deployments"])
def _create_deployment_batch(spaceId: SpaceId, body: Annotated[BatchIn, Body()]) -> Response[BatchOut]:
    space = caller_space()
    drafts: list[DeploymentDraft | DoraError] = []
    for raw in body.deployments:
        try:
            drafts.append(DeploymentIn.model_validate(raw).to_draft())
        except ValidationError as error:
            drafts.append(from_validation_errors([dict(e) for e in error.errors()]))
    results: list[BatchItemResult] = []
    for index, outcome in enumerate(deployments.ingest_batch(store(), space, drafts, now())):
        if isinstance(outcome, DoraError):
            details = (
                outcome.details if isinstance(outcome, RequestInvalidError) else [(outcome.field, outcome.message)]
            )
            results.append(
                BatchItemResult(
                    index=index,
                    status=outcome.status,
                    message=outcome.message,
                    errors=[f"{f}: {m}" if f else m for f, m in details],
                )
            )
        else:
            results.append(
                BatchItemResult(
                    index=index,
                    status=201 if outcome.created else 200,
                    deployment=DeploymentOut.from_domain(outcome.deployment),
                )
            )
    failed = sum(1 for r in results if r.status >= 400)
    out = BatchOut(results=results, created=sum(1 for r in results if r.status == 201), failed=failed)
    return json_response(200, out)


create_deployment_batch = entry(app, ErrorDialect.NATIVE, Scope.DEPLOYMENTS_WRITE)
