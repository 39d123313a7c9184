"""Native API models (snake_case JSON): the superset of every dialect's deployment fields.

These models are the only place the native field names live. Errors render as
``{"message": "...", "errors": ["..."]}`` (dialects/errors.py).
"""

import base64
import binascii
import json
import re
from typing import Annotated, Any, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from dora_insights.dialects.limits import Instant, free_json_problem, key_name, not_blank
from dora_insights.dialects.native_health import StreamHealthOut
from dora_insights.domain.base import Model
from dora_insights.domain.model import (
    Attribution,
    Deployment,
    DeploymentDraft,
    Figures,
    Remediation,
    Source,
    TaskState,
)
from dora_insights.errors import RequestInvalidError

MAX_NAME = 200
MAX_TAGS = 100
MAX_METADATA_BYTES = 16 * 1024
MAX_CHANGES_PAGES = 9999  # pages of one deployment's changes (64 KB each)
CLIENT_ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,128}$"
SHA_PATTERN = re.compile(r"^[0-9a-fA-F]{7,64}$")


def _sha(value: str) -> str:
    if not SHA_PATTERN.fullmatch(value):
        raise ValueError("must be 7 to 64 hexadecimal characters")
    return value.lower()


def _key_value_tag(value: str) -> str:
    key, sep, _ = value.partition(":")
    if not sep or not key.strip():
        raise ValueError(f"tag '{value[:64]}' must be of the form key:value")
    return value


def _tenant_tag(value: str) -> str:
    tag_set, sep, tag = value.partition("/")
    if not sep or not tag_set.strip() or not tag.strip():
        raise ValueError(f"tenant tag '{value[:64]}' must be of the form TagSet/Tag")
    return value


def _metadata(value: dict[str, Any]) -> dict[str, Any]:
    problem = free_json_problem(value, limit=MAX_METADATA_BYTES)
    if problem is not None:
        raise ValueError(f"metadata {problem}")
    return value


Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME), AfterValidator(not_blank), AfterValidator(key_name())]
Sha = Annotated[str, AfterValidator(_sha)]
KeyValueTag = Annotated[str, Field(max_length=MAX_NAME), AfterValidator(_key_value_tag), AfterValidator(key_name())]
TenantTag = Annotated[str, Field(max_length=MAX_NAME), AfterValidator(_tenant_tag), AfterValidator(key_name())]
Metadata = Annotated[dict[str, Any], AfterValidator(_metadata)]
ShortText = Annotated[str, Field(max_length=2048)]


class DeploymentIn(Model):
    """``POST /api/{spaceId}/deployments`` body."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    id: Annotated[str | None, Field(pattern=CLIENT_ID_PATTERN, description="client id; idempotent")] = None
    project: Name
    environment: Name
    finished_at: Instant = Field(description="ISO-8601 with offset, or unix s/ms/ns")
    started_at: Instant | None = None
    version: Annotated[str | None, Field(max_length=MAX_NAME)] = None
    release_created_at: Instant | None = Field(
        default=None,
        description="when its version was created (e.g. an Orlo release's stime): without code data, the lead "
        "time runs from the version's first sight, the earliest of this and its deployments' times (METRICS §3); "
        "a later one changes nothing (Orlo stores its release's stime, which may follow a package's finish)",
    )
    state: TaskState = TaskState.SUCCESS
    had_guided_failure: bool = False
    rollback: bool = False
    fixes: Annotated[str | None, Field(max_length=MAX_NAME)] = None
    tenant: Name | None = None
    channel: Name | None = None
    team: Name | None = None
    tenant_tags: Annotated[list[TenantTag], Field(max_length=MAX_TAGS)] = Field(default_factory=list)
    tags: Annotated[list[KeyValueTag], Field(max_length=MAX_TAGS)] = Field(default_factory=list)
    commit_sha: Sha | None = None
    repository: Annotated[str | None, Field(min_length=1, max_length=300)] = None
    merge_commit_shas: Annotated[list[Sha] | None, Field(min_length=1, max_length=1000)] = None
    integration_branch: Annotated[str | None, Field(min_length=1, max_length=MAX_NAME)] = None
    source_name: Annotated[str | None, Field(max_length=MAX_NAME)] = None
    source_url: ShortText | None = None
    metadata: Metadata | None = None

    @model_validator(mode="after")
    def _check_times(self) -> Self:
        if self.started_at is not None and self.started_at > self.finished_at:
            raise ValueError("started_at must not be after finished_at")
        return self

    def to_draft(self) -> DeploymentDraft:
        """The core's input model."""
        return DeploymentDraft(
            source=Source.NATIVE,
            client_id=self.id,
            project=self.project,
            environment=self.environment,
            finished_at=self.finished_at,
            started_at=self.started_at,
            version=self.version,
            release_created_at=self.release_created_at,
            state=self.state,
            had_guided_failure=self.had_guided_failure,
            rollback=self.rollback,
            fixes=self.fixes,
            tenant=self.tenant,
            channel=self.channel,
            team=self.team,
            tenant_tags=tuple(self.tenant_tags),
            tags=tuple(self.tags),
            commit_sha=self.commit_sha,
            repository=self.repository,
            merge_commit_shas=tuple(self.merge_commit_shas) if self.merge_commit_shas is not None else None,
            integration_branch=self.integration_branch,
            source_name=self.source_name,
            source_url=self.source_url,
            metadata=self.metadata,
        )


def encode_changes_cursor(details_id: str, page: int) -> str:
    """The opaque ``attribution.next_cursor`` of page ``page`` (≥ 1) of a deployment's changes."""
    raw = json.dumps({"d": details_id, "p": page}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_changes_cursor(cursor: str) -> tuple[str, int]:
    """(details id, page) of an ``attribution_cursor``; a 400 for anything this API did not issue."""
    invalid = RequestInvalidError("attribution_cursor is not a cursor this API issued", field="attribution_cursor")
    try:
        plain = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid from None
    if not isinstance(plain, dict) or set(plain) != {"d", "p"}:
        raise invalid
    details_id, page = plain["d"], plain["p"]
    if not isinstance(details_id, str) or not re.fullmatch(r"[0-9A-Za-z]{1,64}", details_id):
        raise invalid
    if not isinstance(page, int) or isinstance(page, bool) or not 1 <= page <= MAX_CHANGES_PAGES:
        raise invalid
    return details_id, page


class AttributionOut(Model):
    """Which changes a deployment shipped (METRICS §5), one page at a time: pull requests first, then
    commits; ``pull_request_count`` and ``commit_count`` are the totals. When there are more pages,
    ``next_cursor`` is set: ``GET /api/{spaceId}/deployments/{id}?attribution_cursor=<next_cursor>``
    answers the deployment with the next page in ``pull_requests`` and ``commits``."""

    state: str
    mode: str | None
    attempts: int
    commits: list[str]
    pull_requests: list[dict[str, Any]]
    change_started_at: str | None
    resolved_at: str | None
    pull_request_count: int
    commit_count: int
    next_cursor: str | None = None

    @classmethod
    def of(cls, attribution: Attribution, page: int = 0) -> Self:
        """Render an attribution whose lists hold page ``page`` (0: the first, kept on the deployment)."""
        more = attribution.details_id is not None and page + 1 < attribution.pages
        return cls(
            state=attribution.state,
            mode=attribution.mode,
            attempts=attribution.attempts,
            commits=attribution.commits,
            pull_requests=attribution.pull_requests,
            change_started_at=attribution.change_started_at,
            resolved_at=attribution.resolved_at,
            pull_request_count=(
                attribution.pull_request_count
                if attribution.pull_request_count is not None
                else len(attribution.pull_requests)
            ),
            commit_count=attribution.commit_count if attribution.commit_count is not None else len(attribution.commits),
            next_cursor=encode_changes_cursor(attribution.details_id, page + 1)
            if more and attribution.details_id
            else None,
        )


class DeploymentOut(Model):
    """A stored deployment as the native API shows it."""

    id: str
    space_id: str
    source: str
    project: str
    project_id: str
    environment: str
    environment_id: str
    tenant: str | None
    tenant_id: str | None
    channel: str
    channel_id: str
    team: str | None
    project_group_id: str | None
    tenant_tags: list[str]
    finished_at: str
    started_at: str | None
    version: str | None
    release_created_at: str | None = Field(default=None, description="when its version was created, when given")
    state: TaskState
    had_guided_failure: bool
    rollback: bool
    fixes: str | None
    tags: list[str]
    commit_sha: str | None
    repository: str | None
    merge_commit_shas: list[str] | None
    integration_branch: str | None
    source_name: str | None
    source_url: str | None
    metadata: dict[str, Any] | None
    received_at: str
    revision: int = Field(description="its version: 1 when created, +1 per correction (PATCH's revision, ETag)")
    change_failure_override: bool | None = Field(
        default=None, description="set by a correction; figures.change_failure is the effective value"
    )
    remediation: Remediation | None = Field(default=None, description="set by a correction")
    attribution: AttributionOut | None
    figures: Figures | None
    # Only ``GET /api/{spaceId}/deployments/{id}`` fills it: the stream's recompute fails (figures are stale).
    stream_health: StreamHealthOut | None = None
    # Only ``GET /api/{spaceId}/deployments/{id}`` fills these (METRICS §8): when ``figures`` were
    # computed, and whether changes to its stream wait for them (1) or not (0).
    as_of: str | None = Field(default=None, description="when the figures were computed (null: not yet)")
    pending: int | None = Field(default=None, description="1 when changes to its stream wait for the figures")

    @classmethod
    def from_domain(cls, deployment: Deployment, *, changes_page: int = 0) -> Self:
        """Render a stored deployment (its attribution's lists hold page ``changes_page`` of its changes)."""
        data = deployment.model_dump(exclude={"body_hash", "attribution"})
        attribution = deployment.attribution
        data["attribution"] = None if attribution is None else AttributionOut.of(attribution, changes_page)
        return cls.model_validate(data)


class DeploymentPage(Model):
    """``GET /api/{spaceId}/deployments``: newest first, opaque cursor."""

    items: list[DeploymentOut]
    next_cursor: str | None


# --- the list's tag filter ------------------------------------------------------------------------
MAX_TAG_FILTERS = 20


def parse_tag_filter(value: str | None) -> tuple[str, ...]:
    """The ``tag`` filter of the native list: ``key:value`` tags, comma-separated (a repeated parameter
    arrives comma-joined); 400 naming ``tag`` for one that is not ``key:value``."""
    if value is None:
        return ()
    tags = tuple(dict.fromkeys(t.strip() for t in value.split(",") if t.strip()))
    for tag in tags:
        key, sep, _ = tag.partition(":")
        if not sep or not key.strip():
            raise RequestInvalidError(f"tag '{tag[:64]}' must be of the form key:value", field="tag")
    if len(tags) > MAX_TAG_FILTERS:
        raise RequestInvalidError(f"at most {MAX_TAG_FILTERS} tags", field="tag")
    return tags
