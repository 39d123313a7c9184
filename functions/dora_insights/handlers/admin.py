"""Admin routes: spaces, API keys, webhook secrets, recompute health (scope ``admin``; any space for admin keys)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dora_insights.dialects.errors import ErrorDialect
from dora_insights.dialects.gitlab_webhooks import GitlabTokenIn, GitlabTokenOut
from dora_insights.dialects.native_admin import (
    ApiKeyIn,
    ApiKeyList,
    ApiKeyOut,
    RecomputeHealthOut,
    SpaceIn,
    SpaceOut,
    WebhookSecretIn,
    WebhookSecretOut,
)
from dora_insights.domain.scopes import Scope
from dora_insights.handlers.http import api, entry, json_response, no_content
from dora_insights.handlers.params import KeyId, SpaceId
from dora_insights.handlers.runtime import now, principal, secrets, store
from dora_insights.logic import admin, health, spaces

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.NATIVE)


@router.post("/api/spaces", summary="Create a space", tags=["Admin"], status_code=201)
def _create_space(body: Annotated[SpaceIn, Body()]) -> Response[SpaceOut]:
    record = admin.create_space(store(), body.name, now(), default_environment=body.default_environment)
    return json_response(201, SpaceOut(id=record.id, name=record.name, default_environment=record.default_environment))


create_space = entry(app, ErrorDialect.NATIVE, Scope.ADMIN)


@router.post("/api/<spaceId>/apikeys", summary="Create an API key (shown once)", tags=["Admin"], status_code=201)
def _create_api_key(spaceId: SpaceId, body: Annotated[ApiKeyIn, Body()]) -> Response[ApiKeyOut]:
    caller = principal()
    scopes = admin.validate_scopes(body.scopes, creator_is_admin=caller.is_admin)
    record, key = admin.create_api_key(store(), spaceId, body.name, scopes, now(), user=body.user)
    return json_response(201, ApiKeyOut.of(record, key))


create_api_key = entry(app, ErrorDialect.NATIVE, Scope.ADMIN, any_space_for_admin=True)


@router.get("/api/<spaceId>/apikeys", summary="List API keys (never the keys)", tags=["Admin"])
def _list_api_keys(spaceId: SpaceId) -> Response[ApiKeyList]:
    admin.require_space(store(), spaceId)
    return json_response(200, ApiKeyList(items=[ApiKeyOut.of(r) for r in store().list_api_keys(spaceId)]))


list_api_keys = entry(app, ErrorDialect.NATIVE, Scope.ADMIN, any_space_for_admin=True)


@router.delete("/api/<spaceId>/apikeys/<keyId>", summary="Revoke an API key", tags=["Admin"], status_code=204)
def _revoke_api_key(spaceId: SpaceId, keyId: KeyId) -> Response[None]:
    store().revoke_api_key(spaceId, keyId)
    return no_content()


revoke_api_key = entry(app, ErrorDialect.NATIVE, Scope.ADMIN, any_space_for_admin=True)


@router.put(
    "/api/<spaceId>/webhooks/github",
    summary="Set the GitHub webhook secret (stored encrypted, never shown again)",
    tags=["Admin"],
)
def _set_github_webhook_secret(
    spaceId: SpaceId, body: Annotated[WebhookSecretIn, Body()]
) -> Response[WebhookSecretOut]:
    admin.set_webhook_secret(store(), secrets(), spaceId, body.secret)
    spaces.clear_cache()
    return json_response(200, WebhookSecretOut(space_id=spaceId, configured=True))


set_github_webhook_secret = entry(app, ErrorDialect.NATIVE, Scope.ADMIN, any_space_for_admin=True)


@router.put(
    "/api/<spaceId>/webhooks/gitlab",
    summary="Set the GitLab webhook token (a generated one is shown once)",
    tags=["Admin"],
)
def _set_gitlab_webhook_token(
    spaceId: SpaceId, body: Annotated[GitlabTokenIn | None, Body()] = None
) -> Response[GitlabTokenOut]:
    chosen = body.secret if body is not None else None
    token = admin.set_gitlab_token(store(), spaceId, chosen)
    spaces.clear_cache()
    shown = None if chosen else token  # a generated token is shown here, once; a chosen one never echoed
    return json_response(200, GitlabTokenOut(space_id=spaceId, configured=True, secret=shown))


set_gitlab_webhook_token = entry(app, ErrorDialect.NATIVE, Scope.ADMIN, any_space_for_admin=True)


@router.get(
    "/api/<spaceId>/health",
    summary="Recompute health of a space: dirty, failing and quarantined streams",
    tags=["Admin"],
)
def _get_recompute_health(spaceId: SpaceId) -> Response[RecomputeHealthOut]:
    report = health.space_health(store(), spaceId)
    return json_response(200, RecomputeHealthOut.of(report, quarantine_after=health.QUARANTINE_AFTER))


get_recompute_health = entry(app, ErrorDialect.NATIVE, Scope.ADMIN, any_space_for_admin=True)
