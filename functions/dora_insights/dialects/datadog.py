"""Datadog DORA dialect (reference: datadog-dora-deployment-event-api.txt; API.md "Dialect: Datadog DORA").

Request models mirror Datadog's JSON:API bodies field for field (``data.attributes.*``) and
are the only place those names live. Errors render as JSON:API errors whose
``source.pointer`` names the offending field (``/data/attributes/service``).

Decisions where the reference is silent (also in the module's tests):
- Unix times (``started_at``, ``finished_at``) are strict JSON integers (int64), told apart by
  magnitude (s/ms/µs/ns, ``domain.times``); strings, floats, booleans, values <= 0 and instants
  outside 1970-01-01T00:00:00Z .. 2100-01-01T00:00:00Z are refused. ``started_at`` after
  ``finished_at`` is refused (pointer ``started_at``).
- ``git``: when present, both ``commit_sha`` (7–64 hex characters, stored lower case) and
  ``repository_url`` are required. The URL (``https://host/org/name(.git)``,
  ``ssh://git@host/org/name``, ``git@host:org/name.git`` or plain ``org/name``) is normalised to
  ``org/name`` (the path, so GitLab subgroups keep every segment) as the deployment's
  ``repository`` for attribution; the URL as sent is kept in ``metadata.repository_url``.
- ``custom_tags``: at most 100, each ``key:value`` with a non-blank key and value, at most 200
  characters. Every tag is kept in ``tags`` as sent. Two keys are also mapped:
  ``tenant:<name>`` sets the tenant (one tenant per event: a second, different one is refused),
  and ``tenant_tag:<TagSet>/<Tag>`` adds the Octopus tenant tag ``TagSet/Tag`` (a
  ``tenant_tag`` value not of that shape is refused). Values of other keys are never read as
  tenant tags, so ``repo:org/name`` stays an ordinary tag.
- ``id``: 16–128 of ``[A-Za-z0-9_.:-]``. A deployment with an id is stored under that id and
  is idempotent (same id + same content: the same deployment; different content: 409). Without
  an id the event is stored under a generated id, which the response returns.
- Unknown attributes are ignored (forward compatible, as Datadog adds attributes over time);
  known ones are type-checked strictly.
- Failure events: at least one service (``services`` and/or ``service``; both are merged in
  order, duplicates dropped) is required, since a failure must name what failed.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, StrictInt, StrictStr, ValidationInfo, field_validator

from dora_insights.dialects.limits import key_name
from dora_insights.domain.base import Model
from dora_insights.domain.failures import FailureDraft, unique_names
from dora_insights.domain.model import DeploymentDraft, Source
from dora_insights.domain.times import InstantError, from_unix

MAX_TAGS = 100
MAX_TAG = 200
MAX_NAME = 200
ID_PATTERN = r"^[A-Za-z0-9_.:\-]{16,128}$"
_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")
_SEGMENT = r"[A-Za-z0-9_.\-]+"
_REPO_PATH = re.compile(rf"^{_SEGMENT}(?:/{_SEGMENT})+$")
_SCP_URL = re.compile(rf"^[A-Za-z0-9_.\-]+@[A-Za-z0-9_.\-]+:(?P<path>{_SEGMENT}(?:/{_SEGMENT})+?)/?$")
_URL = re.compile(
    rf"^(?:https?|ssh|git)://(?:[^@/\s]+@)?[A-Za-z0-9_.\-]+(?::\d+)?/(?P<path>{_SEGMENT}(?:/{_SEGMENT})+?)/?$"
)
TENANT_KEY = "tenant"
TENANT_TAG_KEY = "tenant_tag"
INT64_MAX = 2**63 - 1


def _unix(value: int) -> int:
    if value <= 0:
        raise ValueError("must be a positive unix timestamp in seconds, milliseconds or nanoseconds")
    try:
        from_unix(value)
    except InstantError as error:
        raise ValueError(str(error)) from None
    return value


def _name(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _sha(value: str) -> str:
    if not _SHA.match(value):
        raise ValueError("must be a git commit SHA (7 to 64 hexadecimal characters)")
    return value.lower()


def _repository_url(value: str) -> str:
    if normalise_repository(value) is None:
        raise ValueError("must be a git repository URL such as https://github.com/org/name")
    return value


def _tag(value: str) -> str:
    key, sep, tag_value = value.partition(":")
    if not sep or not key.strip() or not tag_value.strip():
        raise ValueError(f"tag '{value[:64]}' must follow the key:value pattern")
    return value


def _check_tags(tags: list[str]) -> list[str]:
    """Tenant rules of the custom tags (module docstring)."""
    tenant: str | None = None
    for index, tag in enumerate(tags):
        key, _, value = tag.partition(":")
        key, value = key.strip(), value.strip()
        if key == TENANT_KEY:
            if tenant is not None and value != tenant:
                raise ValueError(f"tag {index}: only one tenant:<name> tag may be given")
            tenant = value
        elif key == TENANT_TAG_KEY:
            tag_set, sep, name = value.partition("/")
            if not sep or not tag_set.strip() or not name.strip() or "/" in name:
                raise ValueError(f"tag {index} ('{tag[:64]}') must be tenant_tag:<TagSet>/<Tag>")
    return tags


def _not_before_finish(value: int | None, info: ValidationInfo) -> int | None:
    """``started_at`` (declared after ``finished_at``, as in the reference) must not be after it."""
    finished = info.data.get("finished_at")
    if value is not None and finished is not None and to_instant(value) > to_instant(finished):
        raise ValueError("started_at must not be after finished_at")
    return value


UnixTime = Annotated[StrictInt, Field(le=INT64_MAX), AfterValidator(_unix)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME), AfterValidator(_name), AfterValidator(key_name())]
Text = Annotated[StrictStr, Field(max_length=MAX_NAME)]
Tag = Annotated[StrictStr, Field(max_length=MAX_TAG), AfterValidator(_tag), AfterValidator(key_name())]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(_check_tags)]
EventId = Annotated[StrictStr, Field(pattern=ID_PATTERN)]


def normalise_repository(url: str) -> str | None:
    """``org/name`` of a repository URL (``.git`` and trailing ``/`` dropped), or None if it is not one."""
    text = url.strip()
    for pattern in (_URL, _SCP_URL):
        match = pattern.match(text)
        if match:
            text = match.group("path")
            break
    else:
        if "://" in text or "@" in text:
            return None
    text = text.rstrip("/").removesuffix(".git")
    return text if _REPO_PATH.match(text) and len(text) <= 300 else None


def to_instant(value: int) -> datetime:
    """A validated Datadog unix time as an instant."""
    return from_unix(value)


class GitInfo(Model):
    """``DORAGitInfo``: both fields are required when ``git`` is sent."""

    model_config = ConfigDict(extra="ignore")

    commit_sha: Annotated[StrictStr, AfterValidator(_sha)]
    repository_url: Annotated[StrictStr, Field(min_length=1, max_length=2048), AfterValidator(_repository_url)]

    @property
    def repository(self) -> str:
        """``org/name`` for attribution."""
        name = normalise_repository(self.repository_url)
        if name is None:  # pragma: no cover - validated on the field
            raise ValueError("repository_url was validated")
        return name


class TagMapping(Model):
    """What the custom tags say beside themselves: the tenant and the Octopus tenant tags."""

    tenant: str | None = None
    tenant_tags: tuple[str, ...] = ()


def map_tags(tags: list[str]) -> TagMapping:
    """``tenant:<name>`` -> tenant; ``tenant_tag:<TagSet>/<Tag>`` -> tenant tag (module docstring)."""
    tenant: str | None = None
    tenant_tags: list[str] = []
    for tag in tags:
        key, _, value = tag.partition(":")
        key, value = key.strip(), value.strip()
        if key == TENANT_KEY:
            tenant = value
        elif key == TENANT_TAG_KEY:
            tag_set, _, name = value.partition("/")
            tenant_tag = f"{tag_set.strip()}/{name.strip()}"
            if tenant_tag not in tenant_tags:
                tenant_tags.append(tenant_tag)
    return TagMapping(tenant=tenant, tenant_tags=tuple(tenant_tags))


class DeploymentAttributes(Model):
    """``DORADeploymentRequestAttributes``."""

    model_config = ConfigDict(extra="ignore")

    custom_tags: Tags | None = None
    env: Name | None = None
    finished_at: UnixTime
    git: GitInfo | None = None
    id: EventId | None = None
    service: Name
    started_at: UnixTime
    team: Name | None = None
    version: Text | None = None

    _started = field_validator("started_at")(_not_before_finish)

    def to_draft(self) -> DeploymentDraft:
        """The core's input model (METRICS §1: service -> project, env -> environment, team -> group)."""
        tags = list(self.custom_tags or [])
        mapped = map_tags(tags)
        return DeploymentDraft(
            source=Source.DATADOG,
            client_id=self.id,
            project=self.service,
            environment=self.env,
            finished_at=to_instant(self.finished_at),
            started_at=to_instant(self.started_at),
            version=self.version or None,
            tenant=mapped.tenant,
            team=self.team,
            tenant_tags=mapped.tenant_tags,
            tags=tuple(tags),
            commit_sha=self.git.commit_sha if self.git else None,
            repository=self.git.repository if self.git else None,
            source_name="datadog",
            metadata={"repository_url": self.git.repository_url} if self.git else None,
        )


class DeploymentData(Model):
    """``DORADeploymentRequestData``."""

    model_config = ConfigDict(extra="ignore")

    attributes: DeploymentAttributes


class DeploymentRequest(Model):
    """``DORADeploymentRequest``: ``POST /api/v2/dora/deployment`` body."""

    model_config = ConfigDict(extra="ignore")

    data: DeploymentData


class FailureAttributes(Model):
    """``DORAFailureRequestAttributes`` (also the legacy ``/incident`` body)."""

    model_config = ConfigDict(extra="ignore")

    custom_tags: Tags | None = None
    env: Name | None = None
    finished_at: UnixTime | None = None
    git: GitInfo | None = None
    id: EventId | None = None
    name: Text | None = None
    service: Name | None = None
    services: Annotated[list[Name] | None, Field(max_length=100, validate_default=True)] = None
    severity: Text | None = None
    started_at: UnixTime
    team: Name | None = None
    version: Text | None = None

    _started = field_validator("started_at")(_not_before_finish)

    @field_validator("services")
    @classmethod
    def _some_service(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        # ``service`` is declared first; when it failed validation its own error is enough.
        if not value and "service" in info.data and not info.data["service"]:
            raise ValueError("services (or service) must name at least one service")
        return value

    def to_draft(self) -> FailureDraft:
        """The core's input model (services -> projects, env -> environment)."""
        return FailureDraft(
            source=Source.DATADOG,
            client_id=self.id,
            projects=unique_names(([self.service] if self.service else []) + list(self.services or [])),
            environment=self.env,
            name=self.name or None,
            severity=self.severity or None,
            started_at=to_instant(self.started_at),
            finished_at=to_instant(self.finished_at) if self.finished_at is not None else None,
            commit_sha=self.git.commit_sha if self.git else None,
            repository=self.git.repository if self.git else None,
            team=self.team,
            version=self.version or None,
            tags=tuple(self.custom_tags or []),
        )


class FailureData(Model):
    """``DORAFailureRequestData``."""

    model_config = ConfigDict(extra="ignore")

    attributes: FailureAttributes


class FailureRequest(Model):
    """``DORAFailureRequest``: ``POST /api/v2/dora/failure`` (and ``/incident``) body."""

    model_config = ConfigDict(extra="ignore")

    data: FailureData


class ResponseData(Model):
    """``{"id", "type"}`` of a received event."""

    id: str
    type: Literal["dora_deployment", "dora_failure"]


class EventResponse(Model):
    """``DORADeploymentResponse`` / ``DORAFailureResponse``: ``{"data": {"id", "type"}}``."""

    data: ResponseData

    @classmethod
    def deployment(cls, event_id: str) -> EventResponse:
        """The answer to a deployment event."""
        return cls(data=ResponseData(id=event_id, type="dora_deployment"))

    @classmethod
    def failure(cls, event_id: str) -> EventResponse:
        """The answer to a failure event."""
        return cls(data=ResponseData(id=event_id, type="dora_failure"))
