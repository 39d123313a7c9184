"""Native API models of a deployment's corrections (PATCH /api/{spaceId}/deployments/{id} and its
corrections list): the correction a client asks for, and the record of one made.

Apart from dialects/native.py so that the routes that create deployments do not load them.
"""

from typing import Annotated, Any, Self

from pydantic import AfterValidator, ConfigDict, Field, StrictInt, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from dora_insights.dialects.native import MAX_NAME, MAX_TAGS, KeyValueTag
from dora_insights.domain.base import Model
from dora_insights.domain.corrections import CORRECTABLE, CorrectionRecord, DeploymentCorrection
from dora_insights.domain.model import Remediation, RemediationType, TaskState, blank_is_none

_STREAM_FIELDS = ("project", "environment", "tenant", "channel")
_FIXED_FIELDS = (
    "id",
    "finished_at",
    "started_at",
    "had_guided_failure",
    "rollback",
    "fixes",
    "team",
    "tenant_tags",
    "commit_sha",
    "repository",
    "merge_commit_shas",
    "integration_branch",
    "source_name",
    "source_url",
    "metadata",
)


class RemediationIn(Model):
    """The deployment that remediated this one: its ``id`` (a later deployment of the same stream) or
    the ``version`` it deployed, and how."""

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str | None, Field(min_length=1, max_length=128)] = None
    version: Annotated[str | None, Field(min_length=1, max_length=MAX_NAME)] = None
    type: RemediationType

    @model_validator(mode="after")
    def _one_name(self) -> Self:
        if (self.id is None) == (self.version is None):
            raise ValueError("give the remediation's id or its version (one of them)")
        return self


class DeploymentPatchIn(Model):
    """``PATCH /api/{spaceId}/deployments/{deploymentId}`` body: the fields to correct (others are left
    as they are; null clears ``change_failure``, ``remediation``, ``version`` and ``tags``) and,
    optionally, the ``revision`` read (or ``If-Match``): a stale one is refused with 412."""

    model_config = ConfigDict(extra="forbid")

    state: TaskState | None = Field(default=None, description="the deployment's outcome; not null")
    change_failure: bool | None = Field(
        default=None, description="override the computed change failure; null clears the override"
    )
    remediation: RemediationIn | None = Field(
        default=None, description="the deployment that remediated this one (rollback or rollforward); null clears"
    )
    # Blank is no version, as at ingest in every dialect (METRICS §1): "" or " " clears it.
    version: Annotated[str | None, Field(max_length=MAX_NAME), AfterValidator(blank_is_none)] = None
    tags: Annotated[list[KeyValueTag] | None, Field(max_length=MAX_TAGS)] = None
    revision: Annotated[StrictInt | None, Field(ge=1, description="the revision read: 412 when it is not current")] = (
        None
    )
    # Not correctable: named so that sending one says why, rather than "not a known field".
    project: SkipJsonSchema[Any] = None
    environment: SkipJsonSchema[Any] = None
    tenant: SkipJsonSchema[Any] = None
    channel: SkipJsonSchema[Any] = None

    @field_validator(*_STREAM_FIELDS, mode="before")
    @classmethod
    def _not_in_stream(cls, value: Any) -> Any:
        raise ValueError(
            "cannot be corrected: it defines the deployment's stream (delete the deployment and send it again)"
        )

    @field_validator("state", mode="before")
    @classmethod
    def _state_not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value

    @model_validator(mode="before")
    @classmethod
    def _fixed_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            fixed = [name for name in _FIXED_FIELDS if name in data]
            if fixed:
                raise ValueError(
                    f"{', '.join(fixed)}: cannot be corrected (only state, change_failure, remediation, version "
                    "and tags can): delete the deployment and send it again"
                )
        return data

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.model_fields_set & set(CORRECTABLE):
            raise ValueError("nothing to correct: give state, change_failure, remediation, version or tags")
        return self

    def to_correction(self) -> DeploymentCorrection:
        """The core's correction: the fields given, nulls included."""
        given: dict[str, Any] = {}
        for name in CORRECTABLE:
            if name not in self.model_fields_set:
                continue
            value = getattr(self, name)
            if name == "remediation" and value is not None:
                value = Remediation(id=value.id, version=value.version, type=value.type)
            elif name == "tags" and value is not None:
                value = tuple(value)
            given[name] = value
        return DeploymentCorrection(**given)


class FieldChangeOut(Model):
    """A field's value before and after a correction."""

    before: Any = None
    after: Any = None


class CorrectionOut(Model):
    """One correction or removal of a deployment: who, when, what changed (or what was removed)."""

    id: str
    deployment_id: str
    action: str = Field(description="correct or delete")
    actor: str = Field(description="the API key's user (else its name) and its id")
    at: str
    revision: int | None = Field(description="the deployment's revision after the correction (removed: the last)")
    changes: dict[str, FieldChangeOut]
    removed: dict[str, Any] | None = Field(default=None, description="the deployment as it was when removed")

    @classmethod
    def from_domain(cls, record: CorrectionRecord) -> Self:
        """Render a correction record."""
        return cls(
            id=record.id,
            deployment_id=record.target_id,
            action=record.action,
            actor=record.actor,
            at=record.at,
            revision=record.revision,
            changes={k: FieldChangeOut(before=v.before, after=v.after) for k, v in record.changes.items()},
            removed=record.removed,
        )


class CorrectionPage(Model):
    """``GET /api/{spaceId}/deployments/{deploymentId}/corrections``: newest first, opaque cursor."""

    items: list[CorrectionOut]
    next_cursor: str | None
