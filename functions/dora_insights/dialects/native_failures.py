"""Native failure-event models (snake_case JSON; API.md "Native API": ``/api/{spaceId}/failures``).

A failure names what failed (``project`` and/or ``projects``, at least one), where
(``environment``; absent = the space's default) and when (``started_at`` required,
``finished_at`` absent = still open). Times are ISO-8601 with an offset or unix s/ms/ns.
Errors render as ``{"message", "errors": [...]}``.
"""

from datetime import datetime
from typing import Annotated, Self

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from dora_insights.dialects.limits import Instant, some_named
from dora_insights.dialects.native import CLIENT_ID_PATTERN, MAX_NAME, MAX_TAGS, KeyValueTag, Name, Sha
from dora_insights.domain.base import Model
from dora_insights.domain.failures import FailureDraft, FailureOutcome, unique_names
from dora_insights.domain.model import FailureEvent, Source

MAX_PROJECTS = 100
# The body's fields the draft takes as they are (the draft makes ``tags`` a tuple).
_AS_SENT = {
    "environment",
    "name",
    "severity",
    "started_at",
    "finished_at",
    "deployment_id",
    "commit_sha",
    "repository",
    "team",
    "version",
    "tags",
}
Text = Annotated[str, Field(max_length=MAX_NAME)]


class FailureIn(Model):
    """``POST /api/{spaceId}/failures`` body."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str | None, Field(pattern=CLIENT_ID_PATTERN, description="client id; idempotent")] = None
    project: Name | None = None
    projects: Annotated[list[Name] | None, Field(max_length=MAX_PROJECTS, validate_default=True)] = None
    environment: Name | None = None
    name: Text | None = None
    severity: Text | None = None
    finished_at: Instant | None = Field(default=None, description="absent: the failure is still open")
    started_at: Instant = Field(description="ISO-8601 with offset, or unix s/ms/ns")
    deployment_id: Annotated[
        str | None,
        Field(
            pattern=CLIENT_ID_PATTERN,
            description="the deployment that caused it (METRICS §2 rule 4); else commit_sha or version may name it",
        ),
    ] = None
    commit_sha: Sha | None = Field(
        default=None, description="the commit that caused it: the first deployment that shipped it is charged"
    )
    repository: Annotated[str | None, Field(min_length=1, max_length=300)] = None
    team: Name | None = None
    version: Text | None = Field(
        default=None, description="the release that caused it, when no deployment_id or commit_sha names the cause"
    )
    tags: Annotated[list[KeyValueTag], Field(max_length=MAX_TAGS)] = Field(default_factory=list)

    _some_project = field_validator("projects")(
        some_named("project", "project (or projects) must name at least one project")
    )

    @field_validator("started_at")
    @classmethod
    def _not_after_finish(cls, value: datetime, info: ValidationInfo) -> datetime:
        finished = info.data.get("finished_at")
        if finished is not None and value > finished:
            raise ValueError("started_at must not be after finished_at")
        return value

    def to_draft(self) -> FailureDraft:
        """The core's input model."""
        return FailureDraft(
            source=Source.NATIVE,
            client_id=self.id,
            projects=unique_names(([self.project] if self.project else []) + list(self.projects or [])),
            **self.model_dump(include=_AS_SENT),
        )


class FailureOut(Model):
    """A stored failure event as the native API shows it."""

    id: str
    space_id: str
    source: str
    projects: list[str]
    project_ids: list[str]
    environment: str
    environment_id: str
    name: str | None
    severity: str | None
    started_at: str
    finished_at: str | None
    deployment_id: str | None
    commit_sha: str | None
    repository: str | None
    team: str | None
    version: str | None
    tags: list[str]
    received_at: str

    @classmethod
    def from_domain(cls, failure: FailureEvent) -> Self:
        """Render a stored failure event."""
        return cls.model_validate(failure.model_dump(exclude={"body_hash"}))

    @classmethod
    def from_outcome(cls, outcome: FailureOutcome) -> Self:
        """Render the outcome of a create."""
        return cls.from_domain(outcome.failure)


class FailurePage(Model):
    """``GET /api/{spaceId}/failures``: newest start first, opaque cursor."""

    items: list[FailureOut]
    next_cursor: str | None
