"""``GET /api/{spaceId}/dora/metrics``: GitLab's DORA metrics API (METRICS §9), from daily rollups."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dora_insights.dialects import gitlab_metrics
from dora_insights.dialects.errors import ErrorDialect
from dora_insights.domain.rollups import TIERS
from dora_insights.domain.scopes import Scope
from dora_insights.handlers.http import api, entry, json_response
from dora_insights.handlers.params import SpaceId
from dora_insights.handlers.runtime import now, principal, store
from dora_insights.logic import dora_metrics

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.GITLAB)

_TIERS = ", ".join(TIERS)
Text = Annotated[str | None, Query(max_length=200)]
# Documented as GitLab's values (enum, date) while parsed as text: a value outside them is GitLab's 400
# message (``dialects.gitlab_metrics``), not a generic validation error.
DateText = Annotated[
    str | None,
    Query(max_length=32, description="ISO-8601 date, e.g. 2024-03-01", json_schema_extra={"format": "date"}),
]
# GitLab sets no bound on the array: a set of the 5 tiers, however often each is repeated (a bound only
# against hostile input, far past any real client's).
MAX_TIER_VALUES = 100
# Lists: GitLab clients repeat ``environment_tiers[]`` (API Gateway joins repeats with commas; both parse).
Tiers = Annotated[
    list[str] | None,
    Query(
        max_length=MAX_TIER_VALUES,
        description=f"repeated or comma-separated: {_TIERS}",
        json_schema_extra={"items": {"type": "string", "enum": list(TIERS)}},
    ),
]


@router.get(
    "/api/<spaceId>/dora/metrics",
    summary="DORA metrics in GitLab's shape ([{date, value}]) for any range",
    tags=["Metrics"],
)
def _get_dora_metrics(
    spaceId: SpaceId,
    metric: Annotated[
        str | None,
        Query(
            max_length=64,
            description="required: " + ", ".join(gitlab_metrics.METRICS),
            json_schema_extra={"enum": list(gitlab_metrics.METRICS)},
        ),
    ] = None,
    start_date: DateText = None,
    end_date: DateText = None,
    interval: Annotated[
        str | None,
        Query(
            max_length=16,
            description="all, monthly or daily (default)",
            json_schema_extra={"enum": list(gitlab_metrics.INTERVALS)},
        ),
    ] = None,
    environment_tiers_array: Annotated[
        list[str] | None,
        Query(
            alias="environment_tiers[]",
            max_length=MAX_TIER_VALUES,
            description=f"GitLab's array form, repeated: {_TIERS}",
            json_schema_extra={"items": {"type": "string", "enum": list(TIERS)}},
        ),
    ] = None,
    environment_tiers: Tiers = None,
    environment_tier: Tiers = None,
    project: Text = None,
    project_group: Text = None,
    environment: Text = None,
    tenant: Text = None,
) -> Response[gitlab_metrics.MetricRows]:
    caller = principal()
    request = gitlab_metrics.parse_request(
        metric=metric,
        start_date=start_date,
        end_date=end_date,
        interval=interval,
        environment_tiers=(*(environment_tiers_array or ()), *(environment_tiers or ()), *(environment_tier or ())),
        project=project,
        project_group=project_group,
        environment=environment,
        tenant=tenant,
    )
    answer = dora_metrics.dora_metrics(store(), caller.space_id, request, now())
    return json_response(200, gitlab_metrics.rows(answer.rows), answer.freshness.headers())


get_dora_metrics = entry(app, ErrorDialect.GITLAB, Scope.DEPLOYMENTS_READ)
