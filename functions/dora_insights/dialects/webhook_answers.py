"""What the code hosts' webhook routes (GitHub, GitLab) answer, as models for the OpenAPI document.

The routes build these bodies as dicts (``handlers.code_webhooks``, ``handlers.github``,
``handlers.gitlab``); these models describe them. A field that a body may leave out has no default in
the schema and no null (``_absent``): it is left out, never sent as null.
"""

from typing import Any

from pydantic import Field

from dora_insights.dialects.native import DeploymentOut
from dora_insights.domain.base import Model


def _absent(schema: dict[str, Any]) -> None:
    """The field is left out of the body when it does not apply, never null: no default, no null choice."""
    schema.pop("default", None)
    choices = [choice for choice in schema.pop("anyOf", []) if choice != {"type": "null"}]
    if len(choices) == 1:
        schema.update(choices[0])
    elif choices:
        schema["anyOf"] = choices


class PushCounts(Model):
    """Commits of a branch push: received in the event, newly stored, and those the tool left out of the
    event (GitLab sends the newest 20), never stored."""

    received: int
    stored: int
    not_sent: int | None = Field(None, json_schema_extra=_absent)


class CodeWebhookOut(Model):
    """200: ``pong`` (a ping), a push recorded (``commits``), a pull or merge request recorded (``changed``,
    ``pull_request``), a deployment recorded already (``deployment``), or a delivery already processed
    (``duplicate``)."""

    message: str
    commits: PushCounts | None = Field(None, json_schema_extra=_absent)
    changed: bool | None = Field(None, json_schema_extra=_absent)
    pull_request: dict[str, Any] | None = Field(None, json_schema_extra=_absent)
    deployment: DeploymentOut | None = Field(None, json_schema_extra=_absent)
    duplicate: bool | None = Field(None, json_schema_extra=_absent)


class DeploymentRecordedOut(Model):
    """201: a deployment that reached its final state, recorded."""

    message: str
    deployment: DeploymentOut


class IgnoredOut(Model):
    """202: the delivery records nothing; ``message`` says why (``ignored: ...``)."""

    message: str
