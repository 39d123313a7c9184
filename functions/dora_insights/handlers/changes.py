"""Native code data route (API.md "Native API"): ``POST /api/{spaceId}/changes``."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dora_insights.dialects.changes import ChangesIn, ChangesOut
from dora_insights.dialects.errors import ErrorDialect
from dora_insights.domain.scopes import Scope
from dora_insights.handlers.http import api, entry, json_response
from dora_insights.handlers.params import SpaceId
from dora_insights.handlers.runtime import now, principal, store
from dora_insights.logic import code

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.NATIVE)


@router.post("/api/<spaceId>/changes", summary="Record commits and pull requests", tags=["Changes"])
def _record_changes(spaceId: SpaceId, body: Annotated[ChangesIn, Body()]) -> Response[ChangesOut]:
    caller = principal()
    result = code.record_changes(
        store(), caller.space_id, body.pushes(), [pr.to_domain() for pr in body.pull_requests], now()
    )
    return json_response(200, ChangesOut.of(result))


record_changes = entry(app, ErrorDialect.NATIVE, Scope.CHANGES_WRITE)
