"""``GET /api/{spaceId}/summary``: DORA's four keys and rework rate with benchmark tiers (METRICS §6)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dora_insights.dialects.errors import ErrorDialect
from dora_insights.dialects.native_summary import SummaryOut
from dora_insights.domain.scopes import Scope
from dora_insights.domain.tiers import DEFAULT_BENCHMARK
from dora_insights.handlers.http import api, entry, instant_param, json_response
from dora_insights.handlers.params import EnvironmentName, From, ProjectName, SpaceId, To
from dora_insights.handlers.runtime import now, principal, store
from dora_insights.logic import summary
from dora_insights.logic.freshness import Freshness

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.NATIVE)


@router.get("/api/<spaceId>/summary", summary="Four keys and rework rate with tiers", tags=["Metrics"])
def _get_summary(
    spaceId: SpaceId,
    from_: From = None,
    to: To = None,
    project: ProjectName = None,
    environment: EnvironmentName = None,
    benchmark: Annotated[
        str | None,
        Query(
            max_length=8, description=f"tier table; default: the space's default benchmark, else {DEFAULT_BENCHMARK}"
        ),
    ] = None,
) -> Response[SummaryOut]:
    caller = principal()
    body = summary.summary(
        store(),
        caller.space_id,
        start=instant_param("from", from_),
        end=instant_param("to", to),
        project=project,
        environment=environment,
        benchmark=benchmark,
        now=now(),
    )
    return json_response(200, body, Freshness(body["as_of"], body["pending"]).headers())


get_summary = entry(app, ErrorDialect.NATIVE, Scope.DEPLOYMENTS_READ)
