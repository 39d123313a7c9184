"""Routes without authentication: liveness and the OpenAPI document of every route."""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dora_insights.dialects.errors import ErrorDialect
from dora_insights.dialects.native_admin import HealthOut
from dora_insights.handlers.http import JSON, api, entry, json_response

router = APIGatewayHttpRouter()

# Every handler module that defines routes; the OpenAPI document is generated from them.
ROUTE_MODULES = (
    "dora_insights.handlers.meta",
    "dora_insights.handlers.admin",
    "dora_insights.handlers.deployments",
    "dora_insights.handlers.datadog",
    "dora_insights.handlers.failures",
    "dora_insights.handlers.catalogue",
    "dora_insights.handlers.reports",
    "dora_insights.handlers.summary",
    "dora_insights.handlers.insights",
    "dora_insights.handlers.dx",
    "dora_insights.handlers.github",
    "dora_insights.handlers.changes",
    "dora_insights.handlers.orlo",
)
TITLE = "dora-insights"
VERSION = "0.1.0"


@router.get("/health", summary="Liveness", tags=["Meta"])
def _health() -> Response[HealthOut]:
    return json_response(200, HealthOut(status="ok"))


@lru_cache(maxsize=1)
def openapi_document() -> str:
    """The OpenAPI 3.1 document of every route, generated from the route models."""
    combined = APIGatewayHttpResolver(enable_validation=True)
    for name in ROUTE_MODULES:
        module = router if name == __name__ else importlib.import_module(name).router
        combined.include_router(module)
    return combined.get_openapi_json_schema(
        title=TITLE,
        version=VERSION,
        description="DORA metrics and deployment insights. Dialects: native, Datadog, DX, GitHub, Orlo, "
        "Octopus Insights, PostHog insights. Authenticate with `Authorization: Bearer <key>`.",
    )


@router.get("/openapi.json", summary="OpenAPI document", tags=["Meta"], include_in_schema=False)
def _openapi() -> Response[Any]:
    return Response(status_code=200, content_type=JSON, body=openapi_document())


app = api(router, ErrorDialect.NATIVE)
health = entry(app, ErrorDialect.NATIVE, None)
openapi = entry(app, ErrorDialect.NATIVE, None)
