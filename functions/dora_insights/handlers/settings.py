"""Space settings routes: ``GET/PATCH /api/{spaceId}/settings`` (scope ``admin``; any space for admin keys)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dora_insights.dialects.errors import ErrorDialect
from dora_insights.dialects.native_settings import SettingsOut, SettingsPatch
from dora_insights.domain.records import SpaceRecord
from dora_insights.domain.scopes import Scope
from dora_insights.handlers.http import api, entry, expected_revision, json_response
from dora_insights.handlers.params import IfMatch, SpaceId
from dora_insights.handlers.runtime import now, principal, store
from dora_insights.logic import settings, spaces

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.NATIVE)
TAGS = ["Admin"]


def _answer(space: SpaceRecord) -> Response[SettingsOut]:
    out = SettingsOut.of(space, default_benchmark=settings.benchmark_of(space.settings))
    return json_response(200, out, {"ETag": f'"{space.settings.revision}"'})


@router.get("/api/<spaceId>/settings", summary="A space's settings", tags=TAGS)
def _get_space_settings(spaceId: SpaceId) -> Response[SettingsOut]:
    return _answer(settings.get_settings(store(), spaceId))


get_space_settings = entry(app, ErrorDialect.NATIVE, Scope.ADMIN, any_space_for_admin=True)


@router.patch(
    "/api/<spaceId>/settings",
    summary="Change a space's settings (only the fields given; null resets one to the service default)",
    tags=TAGS,
)
def _update_space_settings(
    spaceId: SpaceId,
    body: Annotated[SettingsPatch, Body()],
    if_match: IfMatch = None,
) -> Response[SettingsOut]:
    expected = expected_revision(if_match, body.revision, "the settings' revision (their ETag)")
    given: dict[str, Any] = {name: getattr(body, name) for name in body.model_fields_set - {"revision"}}
    updated = settings.update_settings(
        store(),
        spaceId,
        settings.SettingsChange(**given),
        expected_revision=expected,
        by=principal().display_name,
        now=now(),
    )
    spaces.clear_cache()
    return _answer(updated)


update_space_settings = entry(app, ErrorDialect.NATIVE, Scope.ADMIN, any_space_for_admin=True)
