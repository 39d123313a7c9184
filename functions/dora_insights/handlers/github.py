"""GitHub webhooks (API.md "Dialect: GitHub webhooks"): ``POST /webhooks/github/{spaceId}``.

Public route (no API key): the ``X-Hub-Signature-256`` HMAC of the raw body with the space's
webhook secret authenticates it. The secret is stored encrypted with the stack's KMS key and
decrypted here (``logic.admin.webhook_secret``, ``dal.secrets``: cached per ciphertext for a few
minutes, so a busy receiver calls KMS once per secret, not per delivery). An unknown space, a space
without a secret, a secret that does not decrypt in its space and a bad or missing signature all
answer the same 401, so the route reveals nothing about which spaces exist. ``X-GitHub-Delivery``
makes a redelivery answer 200 without storing anything twice.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dora_insights.dialects import github
from dora_insights.dialects.errors import ErrorDialect
from dora_insights.domain.records import SpaceRecord
from dora_insights.errors import RequestInvalidError
from dora_insights.handlers.code_webhooks import (
    ANSWERS,
    deliver,
    ignored,
    record_deployment,
    record_push,
    verified_space,
)
from dora_insights.handlers.http import WEBHOOK_MAX_BODY_BYTES, api, entry, json_response
from dora_insights.handlers.runtime import now, secrets, store
from dora_insights.handlers.webhooks import json_object, lower_headers
from dora_insights.logic import admin, code

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.NATIVE)

_DELIVERY = re.compile(r"^[A-Za-z0-9-]{1,100}$")
_UNAUTHENTICATED = "the webhook signature (X-Hub-Signature-256) does not verify"


def _payload(raw: str, content_type: str) -> dict[str, Any]:
    text = raw
    if content_type.startswith("application/x-www-form-urlencoded"):
        text = (parse_qs(raw).get("payload") or [""])[0]
    return json_object(text)  # JSON or form-encoded: the entry point leaves webhook bodies to the route


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
            return ignored("not a branch push")
        return record_push(space, push.to_push(now()))
    if event == "pull_request":
        pr_event = github.PullRequestEvent.model_validate(data)
        if not pr_event.merged:
            _learn_default_branch(space, data)
            return ignored(f"pull_request {pr_event.action[:40]} (not a merge)")
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
            return ignored(f"deployment_status {status.deployment_status.state[:40]}")
        return record_deployment(space, status.to_draft(), ("github", status.idempotency_id))
    _learn_default_branch(space, data)
    return ignored(f"event '{event[:60]}'")


def _signed_by(space: SpaceRecord, body: bytes, signature: str | None) -> bool:
    """Whether ``signature`` is the body's HMAC with the space's webhook secret; a delivery without a
    signature is refused before the secret is decrypted (no KMS call for it)."""
    if not signature:
        return False
    return github.signature_valid(admin.webhook_secret(secrets(), space), body, signature)


@router.post("/webhooks/github/<spaceId>", summary="GitHub webhook deliveries", tags=["GitHub"], responses=ANSWERS)
def _github_webhook(spaceId: str) -> Response[Any]:
    headers = lower_headers(router.current_event.headers)
    raw = router.current_event.body or ""
    body = raw.encode("utf-8", errors="surrogatepass")
    signature = headers.get("x-hub-signature-256")
    space = verified_space(spaceId, lambda candidate: _signed_by(candidate, body, signature), _UNAUTHENTICATED)
    event = headers.get("x-github-event", "").strip()
    delivery = headers.get("x-github-delivery", "").strip()
    if delivery and not _DELIVERY.fullmatch(delivery):
        raise RequestInvalidError("X-GitHub-Delivery is not a delivery id", field="X-GitHub-Delivery")
    if not event:
        raise RequestInvalidError("X-GitHub-Event is required", field="X-GitHub-Event")
    content_type = headers.get("content-type", "application/json").lower()
    return deliver(space, event, delivery, lambda: _handle(space, event, _payload(raw, content_type)))


github_webhook = entry(app, ErrorDialect.NATIVE, None, max_body_bytes=WEBHOOK_MAX_BODY_BYTES, checks_json=False)
