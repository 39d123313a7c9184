"""Space settings routes: ``GET/PATCH /api/{spaceId}/settings`` (scope ``admin``; any space for admin keys)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dora_insights.dialects.error_models import NativeError
from dora_insights.dialects.errors import ErrorDialect
from dora_insights.dialects.native_settings import SettingsOut, SettingsPatch
from dora_insights.domain.records import SpaceRecord
from dora_insights.domain.scopes import Scope
from dora_insights.errors import RequestInvalidError
from dora_insights.handlers.http import JSON, api, entry, json_response
from dora_insights.handlers.params import SpaceId
from dora_insights.handlers.runtime import now, principal, store
from dora_insights.logic import settings, spaces

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.NATIVE)
TAGS = ["Admin"]


def _answer(space: SpaceRecord) -> Response[SettingsOut]:
    out = SettingsOut.of(space, default_benchmark=settings.benchmark_of(space.settings))
    return json_response(200, out, {"ETag": f'"{space.settings.revision}"'})


def _if_match(value: str | None) -> int | None:
    """The revision an ``If-Match`` header names (``"3"``, ``W/"3"`` or ``3``); None for ``*`` or none."""
    if value is None or value.strip() == "*":
        return None
    tag = value.strip().removeprefix("W/").strip().strip('"')
    if not tag.isdigit():
        raise RequestInvalidError("If-Match must be the settings' revision (their ETag)", field="If-Match")
    return int(tag)


@router.get("/api/<spaceId>/settings", summary="A space's settings", tags=TAGS)
def _get_space_settings(spaceId: SpaceId) -> Response[SettingsOut]:
    return _answer(settings.get_settings(store(), spaceId))


get_space_settings = entry(app, ErrorDialect.NATIVE, Scope.ADMIN, any_space_for_admin=True)


@router.patch(
    "/api/<spaceId>/settings",
    summary="Change a space's settings (only the fields given; null resets one to the service default)",
    tags=TAGS,
    responses={
        412: {
            "description": "Precondition failed: the revision sent (body or If-Match) is not the current one",
            "content": {JSON: {"model": NativeError}},
        }
    },
)
def _update_space_settings(
    spaceId: SpaceId,
    body: Annotated[SettingsPatch, Body()],
    if_match: Annotated[str | None, Header(alias="if-match", max_length=64)] = None,
) -> Response[SettingsOut]:
    expected = _if_match(if_match)
    if body.revision is not None:
        if expected is not None and expected != body.revision:
            raise RequestInvalidError("revision and If-Match name different revisions", field="revision")
        expected = body.revision
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
