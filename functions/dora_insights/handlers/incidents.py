"""Incident webhooks (PagerDuty, Opsgenie) and their admin configuration (API.md "Added in the
current wave"; ``logic.incidents`` says what a delivery does).

The webhook routes are public (no API key): the space's secret authenticates them, PagerDuty's by
``X-PagerDuty-Signature`` (HMAC of the raw body, with the signing secret decrypted by the stack's KMS
key: ``dal.secrets``), Opsgenie's by the ``X-Opsgenie-Secret`` header.
An unknown space, a tool the space has not configured and a bad or missing credential all answer
the same 401, so the routes reveal nothing about which spaces exist. The configuration routes
take an ``admin`` key (any space for the operator's key), as the GitHub webhook secret does.
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import ValidationError

from dora_insights.dialects import incidents as dialect
from dora_insights.dialects.errors import ErrorDialect, from_validation_errors
from dora_insights.dialects.incidents import IncidentConfigIn, IncidentConfigOut, IncidentWebhookOut
from dora_insights.domain.incidents import IncidentSource
from dora_insights.domain.scopes import Scope
from dora_insights.errors import AuthenticationInvalidError, ResourceNotFoundError
from dora_insights.handlers.http import api, entry, json_response
from dora_insights.handlers.params import SpaceId
from dora_insights.handlers.runtime import now, secrets, store
from dora_insights.handlers.webhooks import SPACE_ID, json_object, lower_headers
from dora_insights.logic import incidents, spaces
from dora_insights.observability import logger

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.NATIVE)

_STATUS = {"opened": 201, "ignored": 202, "unmapped": 202}
# What a delivery answers (the body an ``IncidentWebhookOut`` each time), for the OpenAPI document.
_ANSWERS: dict[int, OpenAPIResponse] = {
    200: {"description": "Recorded: resolved, already open or resolved, or a delivery already processed"},
    201: {"description": "Opened: a failure event created"},
    202: {"description": "Ignored (an event type that opens or resolves nothing) or unmapped (no service mapped)"},
}


# --- webhooks -------------------------------------------------------------------------------


def _deliver(source: IncidentSource, space_id: str) -> Response[IncidentWebhookOut]:
    event = router.current_event
    headers = lower_headers(event.headers)
    raw = event.body or ""
    header = dialect.SECRET_HEADERS[source]
    unauthenticated = AuthenticationInvalidError(f"the webhook is not authenticated ({header} does not verify)")
    signature = headers.get(header.lower())
    if not (signature or "").strip():  # refused before any read: nothing to tell whether the space is configured
        raise unauthenticated
    config = incidents.webhook_config(store(), space_id, source) if SPACE_ID.fullmatch(space_id) else None
    body = raw.encode("utf-8", errors="surrogatepass")
    key = incidents.signing_key(secrets(), config) if config is not None else None
    if config is None or not dialect.authenticated(config, body, signature, signing_key=key):
        raise unauthenticated
    try:
        space = spaces.get_space(store(), space_id)
    except ResourceNotFoundError:  # configured, then the space went away: the same 401
        raise unauthenticated from None
    try:
        signal = dialect.SIGNALS[source](json_object(raw))
    except ValidationError as error:
        raise from_validation_errors([dict(e) for e in error.errors()]) from None
    outcome = incidents.receive(store(), space, config, signal, now())
    status = 201 if outcome.status == "opened" and outcome.created else _STATUS.get(outcome.status, 200)
    logger.info("incident webhook", extra={"source": source.value, "event": signal.event, "outcome": outcome.status})
    return json_response(status, IncidentWebhookOut.of(outcome))


@router.post(
    "/webhooks/pagerduty/<spaceId>",
    summary="PagerDuty v3 webhook deliveries (incidents)",
    tags=["Incidents"],
    responses=_ANSWERS,
)
def _pagerduty_webhook(spaceId: str) -> Response[IncidentWebhookOut]:
    return _deliver(IncidentSource.PAGERDUTY, spaceId)


pagerduty_webhook = entry(app, ErrorDialect.NATIVE, None, checks_json=False)


@router.post(
    "/webhooks/opsgenie/<spaceId>",
    summary="Opsgenie webhook deliveries (alerts)",
    tags=["Incidents"],
    responses=_ANSWERS,
)
def _opsgenie_webhook(spaceId: str) -> Response[IncidentWebhookOut]:
    return _deliver(IncidentSource.OPSGENIE, spaceId)


opsgenie_webhook = entry(app, ErrorDialect.NATIVE, None, checks_json=False)


# --- configuration (admin) ------------------------------------------------------------------
def _configure(source: IncidentSource, space_id: str, body: IncidentConfigIn) -> Response[IncidentConfigOut]:
    config, generated = incidents.configure(
        store(), secrets(), space_id, source, secret=body.secret, services=body.targets(), now=now()
    )
    return json_response(200, IncidentConfigOut.of(config, generated))


@router.put(
    "/api/<spaceId>/webhooks/pagerduty",
    summary="Set the PagerDuty webhook signing secret and service mapping",
    tags=["Admin"],
)
def _set_pagerduty_webhook(spaceId: SpaceId, body: Annotated[IncidentConfigIn, Body()]) -> Response[IncidentConfigOut]:
    return _configure(IncidentSource.PAGERDUTY, spaceId, body)


set_pagerduty_webhook = entry(app, ErrorDialect.NATIVE, Scope.ADMIN, any_space_for_admin=True)


@router.get(
    "/api/<spaceId>/webhooks/pagerduty", summary="The PagerDuty webhook configuration (no secret)", tags=["Admin"]
)
def _get_pagerduty_webhook(spaceId: SpaceId) -> Response[IncidentConfigOut]:
    return json_response(200, IncidentConfigOut.of(incidents.get_config(store(), spaceId, IncidentSource.PAGERDUTY)))


get_pagerduty_webhook = entry(app, ErrorDialect.NATIVE, Scope.ADMIN, any_space_for_admin=True)


@router.put(
    "/api/<spaceId>/webhooks/opsgenie",
    summary="Set the Opsgenie webhook secret and service mapping (a secret generated is shown once)",
    tags=["Admin"],
)
def _set_opsgenie_webhook(spaceId: SpaceId, body: Annotated[IncidentConfigIn, Body()]) -> Response[IncidentConfigOut]:
    return _configure(IncidentSource.OPSGENIE, spaceId, body)


set_opsgenie_webhook = entry(app, ErrorDialect.NATIVE, Scope.ADMIN, any_space_for_admin=True)


@router.get(
    "/api/<spaceId>/webhooks/opsgenie", summary="The Opsgenie webhook configuration (no secret)", tags=["Admin"]
)
def _get_opsgenie_webhook(spaceId: SpaceId) -> Response[IncidentConfigOut]:
    return json_response(200, IncidentConfigOut.of(incidents.get_config(store(), spaceId, IncidentSource.OPSGENIE)))


get_opsgenie_webhook = entry(app, ErrorDialect.NATIVE, Scope.ADMIN, any_space_for_admin=True)
