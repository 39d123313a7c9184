"""GitLab webhooks (API.md "Dialect: GitLab webhooks"): ``POST /webhooks/gitlab/{spaceId}``.

Public route (no API key): ``X-Gitlab-Token``, the webhook's secret token, authenticates it,
checked in constant time against the hash stored by ``PUT /api/{spaceId}/webhooks/gitlab``. An
unknown space, a space without a token and a wrong or missing token all answer the same 401, so
the route reveals nothing about which spaces exist. ``Idempotency-Key`` (the same on GitLab's
retries, GitLab 17.4+), else ``X-Gitlab-Event-UUID``, makes a redelivery answer 200 without
storing anything twice. Events go through the same code data and deployment paths as GitHub's.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dora_insights.dialects import gitlab_webhooks as gitlab
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
from dora_insights.handlers.runtime import now, store
from dora_insights.handlers.webhooks import json_object, lower_headers
from dora_insights.logic import code
from dora_insights.logic import gitlab as gitlab_logic

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.NATIVE)

_DELIVERY = re.compile(r"^[A-Za-z0-9-]{1,100}$")
_DELIVERY_PREFIX = "gitlab:"  # a GitHub delivery id never has a colon: the two never collide
_UNAUTHENTICATED = "the webhook token (X-Gitlab-Token) is not this space's"


def _delivery(headers: dict[str, str], event: str, body: str) -> str | None:
    """The delivery's id: its ``Idempotency-Key`` (GitLab 17.4 and later: one an event, kept by its retries
    and resends), else its ``X-Gitlab-Event-UUID`` with a digest of the event and its body; None without
    either. The UUID alone names no event: GitLab gives every hook a request fires that request's UUID, and
    passes on one the request carried (a bot answering a webhook through GitLab's API: recursion
    detection), so a push and a merge, or pushes of two branches, may share it. Only the same event with
    the same body under it is a redelivery."""
    for name in ("Idempotency-Key", "X-Gitlab-Event-UUID"):
        value = headers.get(name.lower(), "").strip()
        if not value:
            continue
        if not _DELIVERY.fullmatch(value):
            raise RequestInvalidError(f"{name} is not a delivery id", field=name)
        if name == "Idempotency-Key":
            return _DELIVERY_PREFIX + value
        digest = hashlib.sha256(f"{event}\n{body}".encode()).hexdigest()[:32]
        return f"{_DELIVERY_PREFIX}{value}:{digest}"
    return None


def _learn_default_branch(space: SpaceRecord, data: dict[str, Any]) -> None:
    project = gitlab.project_of(data)
    if project is not None:
        code.learn_default_branch(store(), space.id, project.repository, project.default_branch, now())


def _push(space: SpaceRecord, data: dict[str, Any]) -> Response[Any]:
    push = gitlab.PushEvent.model_validate(data)
    if push.branch is None or push.deleted:
        _learn_default_branch(space, data)
        return ignored("not a branch push")
    return record_push(space, push.to_push(now()), not_sent=(push.total_commits_count or 0) - len(push.commits))


def _merge_request(space: SpaceRecord, data: dict[str, Any]) -> Response[Any]:
    event = gitlab.MergeRequestEvent.model_validate(data)
    if not event.merged:
        _learn_default_branch(space, data)
        action = (event.object_attributes.action or event.object_attributes.state)[:40]
        return ignored(f"merge request {action} (not a merge)")
    pr, changed = gitlab_logic.record_merge_request(
        store(),
        space.id,
        event.to_pull_request(),
        now(),
        merged_at_exact=event.merged_at_exact,
        default_branch=event.target_project.default_branch,
    )
    return json_response(
        200, {"message": "merge request recorded", "changed": changed, "pull_request": pr.model_dump(mode="json")}
    )


def _deployment(space: SpaceRecord, data: dict[str, Any]) -> Response[Any]:
    event = gitlab.DeploymentEvent.model_validate(data)
    _learn_default_branch(space, data)
    if not event.terminal:
        return ignored(f"deployment {event.status[:40]}")
    return record_deployment(space, event.to_draft(), ("gitlab", event.idempotency_id))


_HANDLERS = {
    gitlab.PUSH_HOOK: _push,
    gitlab.MERGE_REQUEST_HOOK: _merge_request,
    gitlab.DEPLOYMENT_HOOK: _deployment,
}


def _handle(space: SpaceRecord, event: str, data: dict[str, Any]) -> Response[Any]:
    handler = _HANDLERS.get(event)
    if handler is None:
        _learn_default_branch(space, data)
        return ignored(f"event '{event[:60]}'")
    return handler(space, data)


@router.post("/webhooks/gitlab/<spaceId>", summary="GitLab webhook deliveries", tags=["GitLab"], responses=ANSWERS)
def _gitlab_webhook(spaceId: str) -> Response[Any]:
    headers = lower_headers(router.current_event.headers)
    token = headers.get("x-gitlab-token")
    space = verified_space(
        spaceId, lambda candidate: gitlab.token_valid(candidate.gitlab_token_hash, token), _UNAUTHENTICATED
    )
    event = headers.get("x-gitlab-event", "").strip()
    if not event:
        raise RequestInvalidError("X-Gitlab-Event is required", field="X-Gitlab-Event")
    raw = router.current_event.body or ""
    delivery = _delivery(headers, event, raw)
    return deliver(space, event, delivery, lambda: _handle(space, event, json_object(raw)))


gitlab_webhook = entry(app, ErrorDialect.NATIVE, None, max_body_bytes=WEBHOOK_MAX_BODY_BYTES, checks_json=False)
