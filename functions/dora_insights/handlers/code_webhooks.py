"""What the code hosts' webhook routes (GitHub, GitLab) share, beside ``handlers.webhooks``: the space a
delivery authenticates against, one delivery handled once, and the answers for what a delivery records
(a branch push, a deployment) or ignores. Each route reads its own headers and events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import ValidationError

from dora_insights.dialects.errors import from_validation_errors
from dora_insights.dialects.native import DeploymentOut
from dora_insights.dialects.webhook_answers import CodeWebhookOut, DeploymentRecordedOut, IgnoredOut
from dora_insights.domain.model import DeploymentDraft
from dora_insights.domain.records import SpaceRecord
from dora_insights.errors import AuthenticationInvalidError, ResourceNotFoundError
from dora_insights.handlers.http import json_response
from dora_insights.handlers.runtime import now, store
from dora_insights.handlers.webhooks import SPACE_ID
from dora_insights.logic import code, replacements, spaces
from dora_insights.logic.code import BranchPush
from dora_insights.observability import logger

# What a delivery answers, for the OpenAPI document (the bodies are built as dicts below).
ANSWERS: dict[int, OpenAPIResponse] = {
    200: {
        "description": "Recorded (a push, a merged pull or merge request, a deployment stored already), a ping's"
        " pong, or a delivery already processed",
        "content": {"application/json": {"model": CodeWebhookOut}},
    },
    201: {
        "description": "A deployment recorded",
        "content": {"application/json": {"model": DeploymentRecordedOut}},
    },
    202: {
        "description": "Ignored: an event or action that records nothing (the message says why)",
        "content": {"application/json": {"model": IgnoredOut}},
    },
}


def verified_space(space_id: str, verifies: Callable[[SpaceRecord], bool], unauthenticated: str) -> SpaceRecord:
    """The space the path names, when the delivery ``verifies`` against it (its signature or token); an
    unknown space, a space without a secret (or with one that does not decrypt there) and a delivery that
    does not verify all answer the same 401 (``unauthenticated``), so the route reveals nothing about which
    spaces exist."""
    space: SpaceRecord | None = None
    if SPACE_ID.fullmatch(space_id):
        try:
            # The secret as stored now, never a cached one: a rotation takes effect at once.
            space = spaces.get_space(store(), space_id, fresh=True)
        except ResourceNotFoundError:
            space = None
    if space is None or not verifies(space):
        raise AuthenticationInvalidError(unauthenticated)
    return space


def deliver(space: SpaceRecord, event: str, delivery: str | None, handle: Callable[[], Response[Any]]) -> Response[Any]:
    """``handle`` the delivery once: a delivery id already processed answers 200 without handling it again;
    an event body its model refuses answers the native 400."""
    if delivery and code.delivery_seen(store(), space.id, delivery, now()):
        return json_response(200, {"message": "delivery already processed", "duplicate": True})
    try:
        response = handle()
    except ValidationError as error:
        raise from_validation_errors([dict(e) for e in error.errors()]) from None
    if delivery:
        code.remember_delivery(store(), space.id, delivery, event[:60], now())
    logger.info("webhook", extra={"event": event[:60], "status": response.status_code})
    return response


def ignored(why: str) -> Response[Any]:
    """The answer to a delivery that records nothing (202, saying why)."""
    return json_response(202, {"message": f"ignored: {why}"})


def record_push(space: SpaceRecord, push: BranchPush, *, not_sent: int = 0) -> Response[Any]:
    """Record a branch push's commits; the answer counts the commits received and newly stored, and
    ``not_sent``: those of the push its tool left out of the event (GitLab sends the newest 20), which
    are never stored (logged as a warning, since lead times then start at the oldest commit sent)."""
    result = code.record_push(store(), space.id, push, now())
    counts = {"received": result.received, "stored": result.stored}
    if not_sent > 0:
        counts["not_sent"] = not_sent
        logger.warning(
            "push: commits the tool did not send are not stored",
            extra={"space_id": space.id, "repository": push.repository, "branch": push.branch, "not_sent": not_sent},
        )
    return json_response(200, {"message": "push recorded", "commits": counts})


def record_deployment(space: SpaceRecord, draft: DeploymentDraft, idempotency: tuple[str, str]) -> Response[Any]:
    """Record a deployment that reached its final state (201 when new, 200 when already recorded). A later
    final state of the same deployment (a failure, then a success: ``updated_at`` / ``status_changed_at``)
    replaces it, whatever order they are delivered in (``replacements.create_or_replace_later``); an
    earlier one is ignored (202). A create that met the deployment being removed or written meanwhile is
    the 409 it is, so the delivery is not remembered and its redelivery records it."""
    outcome = replacements.create_or_replace_later(store(), space, draft, idempotency, now())
    if outcome is None:
        return ignored("this deployment already has a later final state")
    return json_response(
        201 if outcome.created else 200,
        {
            "message": "deployment recorded",
            "deployment": DeploymentOut.from_domain(outcome.deployment).model_dump(mode="json"),
        },
    )
