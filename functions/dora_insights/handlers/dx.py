"""DX Deployments API routes (API.md "Dialect: DX"), acting in the API key's space.

Bodies are read here rather than by the resolver's validation so that every problem gets DX's
own error code (``dialects.dx``); errors render as ``{"ok": false, "error", "message"}``,
including the entry point's 401s (``not_authed``, ``invalid_auth``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel

from dora_insights.dialects import dx
from dora_insights.dialects.errors import ErrorDialect
from dora_insights.domain.records import SpaceRecord, WriteOutcome
from dora_insights.domain.scopes import Scope
from dora_insights.errors import DoraError, RequestInvalidError
from dora_insights.handlers.http import api, entry, json_response
from dora_insights.handlers.runtime import caller_space, now, principal, store
from dora_insights.logic import code
from dora_insights.logic import dx as dx_logic
from dora_insights.logic.dx import DxDeployment
from dora_insights.logic.ports import Ports

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.DX, validation_code="invalid_arguments")


def _body() -> str | None:
    return router.current_event.body


def _written(
    request: DxDeployment, write: Callable[[Ports, SpaceRecord, DxDeployment, datetime], WriteOutcome]
) -> Response[dx.DxDeploymentResponse]:
    """``write`` (create or upsert) the deployment in the caller's space; DX's answer of it."""
    space = caller_space()
    outcome = write(store(), space, request, now())
    out = dx.DxDeploymentOut.from_domain(outcome.deployment, request.reference_id)
    return json_response(200, dx.DxDeploymentResponse(deployment=out))


@router.post("/api/deployments.create", summary="DX: create a deployment", tags=["DX"])
def _create_deployment() -> Response[dx.DxDeploymentResponse]:
    return _written(dx.read_deployment(dx.parse_object(_body())), dx_logic.create)


create_deployment = entry(app, ErrorDialect.DX, Scope.DEPLOYMENTS_WRITE)


@router.post("/api/deployments.upsert", summary="DX: create or replace a deployment by reference_id", tags=["DX"])
def _upsert_deployment() -> Response[dx.DxDeploymentResponse]:
    data = dx.parse_object(_body())
    if data.get("reference_id") is None:
        raise RequestInvalidError("reference_id is required to upsert", code="required_params_missing")
    return _written(dx.read_deployment(data), dx_logic.upsert)


upsert_deployment = entry(app, ErrorDialect.DX, Scope.DEPLOYMENTS_WRITE)


@router.post("/api/deployments.setPullServices", summary="DX: assign a pull request to services", tags=["DX"])
def _set_pull_services() -> Response[dx.DxPullServicesResponse]:
    body = dx.read_pull_services(dx.parse_object(_body()))
    result = code.set_pull_services(
        store(),
        principal().space_id,
        body.services,
        now(),
        github_pull_id=body.github_pull_id,
        repository=body.repository,
        pull_number=body.pull_number,
    )
    out = dx.DxPullServicesOut(
        github_pull_id=result.github_pull_id,
        repository=result.repository,
        pull_number=result.pull_number,
        services=list(result.services),
        placeholder=result.placeholder,
    )
    return json_response(200, dx.DxPullServicesResponse(pull_request=out))


set_pull_services = entry(app, ErrorDialect.DX, Scope.DEPLOYMENTS_WRITE)


@router.post("/api/deployments.backfill", summary="DX: backfill deployments from a CSV body", tags=["DX"])
def _backfill_deployments() -> Response[dx.DxBackfillResponse]:
    rows = dx.read_backfill(_body())
    space = caller_space()
    results: list[dx.DxBackfillRow] = []
    for outcome in dx_logic.backfill(store(), space, rows, now()):
        if isinstance(outcome.outcome, DoraError):
            results.append(
                dx.DxBackfillRow(row=outcome.row, ok=False, error=outcome.outcome.code, message=outcome.outcome.message)
            )
        else:
            deployment = dx.DxDeploymentOut.from_domain(outcome.outcome.deployment, outcome.reference_id or "")
            results.append(
                dx.DxBackfillRow(row=outcome.row, ok=True, created=outcome.outcome.created, deployment=deployment)
            )
    response = dx.DxBackfillResponse(
        created=sum(1 for r in results if r.created),
        unchanged=sum(1 for r in results if r.ok and not r.created),
        failed=sum(1 for r in results if not r.ok),
        results=results,
    )
    return json_response(200, response)


backfill_deployments = entry(app, ErrorDialect.DX, Scope.DEPLOYMENTS_WRITE)


# The routes read their bodies themselves (to answer with DX's own error codes), so the resolver sees
# none; meta.py adds them to the OpenAPI document from these models (a media type: a text body), by route.
OPENAPI_BODIES: dict[tuple[str, str], type[BaseModel] | str] = {
    ("POST", "/api/deployments.create"): dx.DxDeploymentIn,
    ("POST", "/api/deployments.upsert"): dx.DxDeploymentIn,
    ("POST", "/api/deployments.setPullServices"): dx.SetPullServicesIn,
    ("POST", "/api/deployments.backfill"): "text/csv",
}
