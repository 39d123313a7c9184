"""``GET /api/{spaceId}/summary``: DORA's four keys and rework rate with benchmark tiers (METRICS §6)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dora_insights.dialects.errors import ErrorDialect
from dora_insights.domain.scopes import Scope
from dora_insights.domain.tiers import DEFAULT_BENCHMARK
from dora_insights.handlers.http import api, entry, instant_param, json_response, now, principal, store
from dora_insights.logic import summary

router = APIGatewayHttpRouter()
SpaceId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.get("/api/<spaceId>/summary", summary="Four keys and rework rate with tiers", tags=["Metrics"])
def _summary(
    spaceId: SpaceId,
    from_: Annotated[str | None, Query(alias="from", max_length=64)] = None,
    to: Annotated[str | None, Query(max_length=64)] = None,
    project: Annotated[str | None, Query(max_length=200)] = None,
    environment: Annotated[str | None, Query(max_length=200)] = None,
    benchmark: Annotated[str, Query(max_length=8)] = DEFAULT_BENCHMARK,
) -> Response[dict[str, Any]]:
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
    return json_response(200, body)


app = api(router, ErrorDialect.NATIVE)
get_summary = entry(app, ErrorDialect.NATIVE, Scope.DEPLOYMENTS_READ)
