"""GitHub webhooks (API.md "Dialect: GitHub webhooks"): ``POST /webhooks/github/{spaceId}``.

Public route (no API key): the ``X-Hub-Signature-256`` HMAC of the raw body with the space's
webhook secret authenticates it. An unknown space, a space without a secret and a bad or
missing signature all answer the same 401, so the route reveals nothing about which spaces
exist. ``X-GitHub-Delivery`` makes a redelivery answer 200 without storing anything twice.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import ValidationError

from dora_insights.dialects import github
from dora_insights.dialects.errors import ErrorDialect, from_validation_errors
from dora_insights.dialects.native import DeploymentOut
from dora_insights.domain.records import SpaceRecord
from dora_insights.errors import (
    AuthenticationInvalidError,
    RequestInvalidError,
    ResourceConflictError,
    ResourceNotFoundError,
)
from dora_insights.handlers.http import api, entry, json_response
from dora_insights.handlers.runtime import now, store
from dora_insights.handlers.webhooks import SPACE_ID, json_object, lower_headers
from dora_insights.logic import code, deployments, spaces
from dora_insights.observability import logger

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.NATIVE)

_DELIVERY = re.compile(r"^[A-Za-z0-9-]{1,100}$")
_UNAUTHENTICATED = "the webhook signature (X-Hub-Signature-256) does not verify"


def _headers() -> dict[str, str]:
    return lower_headers(router.current_event.headers)


def _verified_space(space_id: str, raw: bytes, signature: str | None) -> SpaceRecord:
    space: SpaceRecord | None = None
    if SPACE_ID.match(space_id):
        try:
            # The secret as stored now, never a cached one: a rotation takes effect at once.
            space = spaces.get_space(store(), space_id, fresh=True)
        except ResourceNotFoundError:
            space = None
    if space is None or not github.signature_valid(space.webhook_secret, raw, signature):
        raise AuthenticationInvalidError(_UNAUTHENTICATED)
    return space


def _payload(raw: str, content_type: str) -> dict[str, Any]:
    text = raw
    if content_type.startswith("application/x-www-form-urlencoded"):
        text = (parse_qs(raw).get("payload") or [""])[0]
    return json_object(text)  # form-encoded payloads escape the entry point's JSON check


def _invalid(error: ValidationError) -> RequestInvalidError:
    return from_validation_errors([dict(e) for e in error.errors()])


def _learn_default_branch(space: SpaceRecord, data: dict[str, Any]) -> None:
    repository = github.repository_of(data)
    if repository is not None:
        code.learn_default_branch(store(), space.id, repository.full_name, repository.default_branch, now())


def _handle(space: SpaceRecord, event: str, data: dict[str, Any]) -> Response[Any]:
    if event == "ping":
        _learn_default_branch(space, data)
        return json_response(200, {"message": "pong"})
    if event == "push":
        push = github.PushEvent.model_validate(data)
        if push.branch is None or push.deleted:
            _learn_default_branch(space, data)
            return json_response(202, {"message": "ignored: not a branch push"})
        result = code.record_push(store(), space.id, push.to_push(), now())
        return json_response(
            200, {"message": "push recorded", "commits": {"received": result.received, "stored": result.stored}}
        )
    if event == "pull_request":
        pr_event = github.PullRequestEvent.model_validate(data)
        if not pr_event.merged:
            _learn_default_branch(space, data)
            return json_response(202, {"message": f"ignored: pull_request {pr_event.action[:40]} (not a merge)"})
        pr, changed = code.record_pull_request(
            store(), space.id, pr_event.to_pull_request(), now(), default_branch=pr_event.repository.default_branch
        )
        return json_response(
            200, {"message": "pull request recorded", "changed": changed, "pull_request": pr.model_dump(mode="json")}
        )
    if event == "deployment_status":
        status = github.DeploymentStatusEvent.model_validate(data)
        _learn_default_branch(space, data)
        if not status.terminal:
            return json_response(202, {"message": f"ignored: deployment_status {status.deployment_status.state[:40]}"})
        try:
            outcome = deployments.ingest(
                store(), space, status.to_draft(), now(), idempotency=("github", status.idempotency_id)
            )
        except ResourceConflictError:
            return json_response(202, {"message": "ignored: this deployment already has another final state"})
        return json_response(
            201 if outcome.created else 200,
            {
                "message": "deployment recorded",
                "deployment": DeploymentOut.from_domain(outcome.deployment).model_dump(mode="json"),
            },
        )
    _learn_default_branch(space, data)
    return json_response(202, {"message": f"ignored: event '{event[:60]}'"})


@router.post("/webhooks/github/<spaceId>", summary="GitHub webhook deliveries", tags=["GitHub"])
def _github_webhook(spaceId: str) -> Response[Any]:
    headers = _headers()
    raw = router.current_event.body or ""
    space = _verified_space(spaceId, raw.encode("utf-8", errors="surrogatepass"), headers.get("x-hub-signature-256"))
    event = headers.get("x-github-event", "").strip()
    delivery = headers.get("x-github-delivery", "").strip()
    if delivery and not _DELIVERY.match(delivery):
        raise RequestInvalidError("X-GitHub-Delivery is not a delivery id", field="X-GitHub-Delivery")
    if not event:
        raise RequestInvalidError("X-GitHub-Event is required", field="X-GitHub-Event")
    if delivery and code.delivery_seen(store(), space.id, delivery):
        return json_response(200, {"message": "delivery already processed", "duplicate": True})
    data = _payload(raw, headers.get("content-type", "application/json").lower())
    try:
        response = _handle(space, event, data)
    except ValidationError as error:
        raise _invalid(error) from None
    if delivery:
        code.remember_delivery(store(), space.id, delivery, event[:60], now())
    logger.info("webhook", extra={"event": event[:60], "status": response.status_code})
    return response


github_webhook = entry(app, ErrorDialect.NATIVE, None)
