"""GitLab webhooks dialect (API.md "Dialect: GitLab webhooks"): token check and payload models.

GitLab authenticates a delivery by sending the webhook's secret token verbatim in
``X-Gitlab-Token`` (no signature of the body). The service stores only the token's SHA-256
hash, and compares hashes in constant time, so a leaked table does not leak the token.

Only the fields we use are modelled (GitLab's payloads carry many more; extras are ignored).
Events (``X-Gitlab-Event``): ``Push Hook`` (commits in branch order, oldest first; GitLab sends
the newest 20 of a larger push), ``Merge Request Hook`` (stored once merged), ``Deployment
Hook`` (``success`` / ``failed`` become a deployment). Each maps onto the same domain records
as GitHub's events (``BranchPush``, ``PullRequest``, ``DeploymentDraft``), so attribution treats
them alike. Errors render in the native shape.
"""

import hmac
import re
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dora_insights.dialects.code_hosts import (
    BaseBranch,
    DefaultBranch,
    HostName,
    branch_of,
    branch_push,
    catalogue_name,
    commit_time,
    stored_form,
)
from dora_insights.dialects.limits import StorableInt, instant, pushed_branch
from dora_insights.domain.base import Model
from dora_insights.domain.changes import PullRequest, normalise_repository
from dora_insights.domain.ids import sha256_hex
from dora_insights.domain.model import DeploymentDraft, Source, TaskState
from dora_insights.domain.times import format_instant
from dora_insights.logic.code import BranchPush

PUSH_HOOK = "Push Hook"
MERGE_REQUEST_HOOK = "Merge Request Hook"
DEPLOYMENT_HOOK = "Deployment Hook"
SHA_PATTERN = r"^[0-9a-fA-F]{7,40}$"
ZERO_SHA = "0" * 40
TERMINAL_STATUSES = {"success": TaskState.SUCCESS, "failed": TaskState.FAILED}
_COMMIT_URL_SHA = re.compile(r"/commit/(?P<sha>[0-9a-fA-F]{40})/?$")


def token_hash(token: str) -> str:
    """What is stored for a space's GitLab token: its SHA-256 hex digest."""
    return sha256_hex(token)


def token_valid(stored_hash: str | None, header: str | None) -> bool:
    """``X-Gitlab-Token`` against the stored hash, compared in constant time."""
    if not stored_hash or not header:
        return False
    return hmac.compare_digest(token_hash(header).encode(), stored_hash.encode())


def _iso_form(value: object) -> object:
    """GitLab writes times three ways: ISO-8601 (``2013-12-03T17:23:34Z``), Ruby's UTC form
    (``2016-08-12 15:23:28 UTC``) and with a numeric offset (``2021-04-28 21:50:00 +0200``); the
    second as ISO-8601."""
    if isinstance(value, str) and value.strip().endswith(" UTC"):
        return value.strip()[: -len(" UTC")] + "Z"
    return value


def _gitlab_instant(value: object) -> datetime:
    """A GitLab time (``_iso_form``) as any time field reads it."""
    return instant(_iso_form(value))


def _gitlab_commit_time(value: object) -> datetime | None:
    """A pushed commit's GitLab time: None outside the accepted range (``code_hosts.commit_time``)."""
    return commit_time(_iso_form(value))


GitlabInstant = Annotated[datetime, BeforeValidator(_gitlab_instant)]
GitlabCommitTime = Annotated[datetime | None, BeforeValidator(_gitlab_commit_time)]


def _repository_path(value: str) -> str:
    normalise_repository(value)  # refuses what cannot be a repository name (a 400 naming the field)
    return value.strip()


class _Loose(Model):
    model_config = ConfigDict(extra="ignore")


class Project(_Loose):
    """``project`` of every event (and a merge request's ``target``); ``default_branch`` in its stored form
    (``code_hosts.DefaultBranch``)."""

    id: StorableInt | None = None
    path_with_namespace: Annotated[str, Field(min_length=3, max_length=200), AfterValidator(_repository_path)]
    default_branch: DefaultBranch = None
    web_url: str | None = None

    @property
    def repository(self) -> str:
        """``group/subgroup/name`` in lower case, as every other door names a repository."""
        return normalise_repository(self.path_with_namespace)

    @property
    def slug(self) -> str:
        """The project's path (GitLab CI's ``CI_PROJECT_NAME``): the deployment's project."""
        return self.path_with_namespace.rsplit("/", 1)[-1]


class PushCommit(_Loose):
    """One entry of a push's ``commits``."""

    id: str = Field(pattern=SHA_PATTERN)
    timestamp: GitlabCommitTime
    message: str | None = None


class PushEvent(_Loose):
    """``Push Hook``: ``commits`` oldest first (the newest 20 when ``total_commits_count`` is larger).
    The pushed branch is checked as ``/changes`` checks a branch (``limits.pushed_branch`` of its stored
    form: not blank, capped in UTF-8 bytes): a push to a blank or longer one is a 400 naming ``ref``; its
    deletion is not checked."""

    after: str | None = Field(default=None, pattern=SHA_PATTERN)  # before ``ref``: its check reads it
    ref: str = Field(min_length=1, max_length=300)
    project: Project
    commits: list[PushCommit] = Field(default_factory=list, max_length=5000)
    total_commits_count: StorableInt | None = None

    @field_validator("ref")
    @classmethod
    def _storable_branch(cls, ref: str, info: ValidationInfo) -> str:
        branch = branch_of(ref)
        if branch is not None and info.data.get("after") != ZERO_SHA:
            pushed_branch(stored_form(branch))
        return ref

    @property
    def branch(self) -> str | None:
        """The pushed branch's name (``refs/heads/`` stripped once); None for anything else (tags come as
        ``Tag Push Hook``)."""
        return branch_of(self.ref)

    @property
    def deleted(self) -> bool:
        """A branch deletion: ``after`` is all zeros."""
        return self.after == ZERO_SHA

    def to_push(self, pushed_at: datetime) -> BranchPush:
        """The commits to record, with the project's default branch (``pushed_at``: the delivery's arrival,
        ``code_hosts.branch_push``)."""
        return branch_push(
            self.project.repository, self.branch, self.project.default_branch, self.commits, pushed_at=pushed_at
        )


class LastCommit(_Loose):
    """``object_attributes.last_commit``: the source branch's head."""

    id: str = Field(pattern=SHA_PATTERN)


class MergeRequestAttributes(_Loose):
    """``object_attributes`` of a ``Merge Request Hook``.

    GitLab's payload has no ``merged_at`` (its API does): an event whose ``action`` is ``merge`` is
    sent at the merge, so its ``updated_at`` is the merge time. ``merged_at`` and
    ``squash_commit_sha`` are read when a GitLab version sends them. ``iid`` is stored as a number
    DynamoDB can hold (``StorableInt``); ``target_branch``, a bare name, in its stored form."""

    id: StorableInt
    iid: Annotated[StorableInt, Field(ge=1)]
    title: str | None = None
    target_branch: BaseBranch
    state: str = Field(max_length=40)
    action: str | None = Field(default=None, max_length=40)
    created_at: GitlabInstant
    updated_at: GitlabInstant | None = None
    merged_at: GitlabInstant | None = None
    merge_commit_sha: str | None = Field(default=None, pattern=SHA_PATTERN)
    squash_commit_sha: str | None = Field(default=None, pattern=SHA_PATTERN)
    last_commit: LastCommit | None = None
    target: Project | None = None


class MergeRequestEvent(_Loose):
    """``Merge Request Hook``; stored once merged (``action`` ``merge``, or ``state`` ``merged``)."""

    project: Project
    object_attributes: MergeRequestAttributes

    @property
    def merged(self) -> bool:
        """The merge itself, or a later event of a merged merge request."""
        attributes = self.object_attributes
        return attributes.action == "merge" or attributes.state == "merged"

    @property
    def target_project(self) -> Project:
        """The project the merge request merges into (``object_attributes.target``; else ``project``)."""
        return self.object_attributes.target or self.project

    @property
    def merged_at_exact(self) -> bool:
        """Whether the payload dates the merge: it names ``merged_at``, or it is the merge event."""
        attributes = self.object_attributes
        return attributes.merged_at is not None or (attributes.action == "merge" and attributes.updated_at is not None)

    def to_pull_request(self) -> PullRequest:
        """The stored pull request: ``number`` = ``iid``; the merge commit, else the squash commit, else
        (a fast-forward merge has neither) the head commit, which is what lands on the target branch (as
        GitHub's ``merge_commit_sha`` of a rebase merge is the last commit it put on the base)."""
        attributes = self.object_attributes
        merged_at = attributes.merged_at or attributes.updated_at or attributes.created_at
        head = attributes.last_commit.id if attributes.last_commit else None
        return PullRequest(
            repository=self.target_project.repository,
            number=attributes.iid,
            title=(attributes.title or "")[:500] or None,
            base_ref=attributes.target_branch,
            head_sha=head,
            merge_commit_sha=attributes.merge_commit_sha or attributes.squash_commit_sha or head,
            created_at=format_instant(attributes.created_at),
            merged_at=format_instant(merged_at),
        )


class DeploymentEvent(_Loose):
    """``Deployment Hook``: ``success`` / ``failed`` become a deployment; ``running`` and
    ``canceled`` (and any other status) are acknowledged and ignored.

    The payload names the deployed commit by ``short_sha`` and ``commit_url``; the full sha is
    read from the URL when it ends in one, else the short sha (attribution accepts prefixes).
    ``environment`` and the project's name (``Project.slug``) are checked as native names are."""

    status: str = Field(max_length=40)
    status_changed_at: GitlabInstant
    deployment_id: StorableInt
    deployable_url: str | None = None
    environment: HostName
    environment_external_url: str | None = None
    project: Project
    short_sha: str | None = Field(default=None, pattern=SHA_PATTERN)
    commit_url: str | None = Field(default=None, max_length=2048)

    @field_validator("project")
    @classmethod
    def _storable_project_name(cls, project: Project) -> Project:
        try:
            catalogue_name(project.slug)
        except ValueError as error:
            raise ValueError(f"the project's name (path_with_namespace's last segment) {error}") from None
        return project

    @model_validator(mode="after")
    def _names_a_commit(self) -> Self:
        if self.sha is None:
            raise ValueError("the deployment names no commit: short_sha or commit_url is required")
        return self

    @property
    def sha(self) -> str | None:
        """The deployed commit: the full sha of ``commit_url``, else ``short_sha``."""
        match = _COMMIT_URL_SHA.search(self.commit_url or "")
        if match is not None:
            return match.group("sha").lower()
        return self.short_sha.lower() if self.short_sha else None

    @property
    def terminal(self) -> bool:
        """A final status that is a deployment outcome."""
        return self.status in TERMINAL_STATUSES

    @property
    def idempotency_id(self) -> str:
        """One deployment per GitLab deployment of a project."""
        return f"{self.project.repository}:{self.deployment_id}"

    def to_draft(self) -> DeploymentDraft:
        """project = the GitLab project's path; finished at ``status_changed_at``."""
        url = self.deployable_url or self.environment_external_url
        return DeploymentDraft(
            source=Source.GITLAB,
            project=self.project.slug,
            environment=self.environment,
            finished_at=self.status_changed_at,
            state=TERMINAL_STATUSES[self.status],
            commit_sha=self.sha,
            repository=self.project.repository,
            source_name="gitlab",
            source_url=url[:2048] if url else None,
        )


class GitlabTokenIn(Model):
    """``PUT /api/{spaceId}/webhooks/gitlab`` body: ``secret``, the token to use (GitLab's "Secret
    token" field), or none to have one generated."""

    model_config = ConfigDict(extra="forbid")

    secret: Annotated[str, Field(min_length=16, max_length=256, pattern=r"^[\x21-\x7e]+$")] | None = None


class GitlabTokenOut(Model):
    """``secret``: a generated token, in this answer only (only its hash is stored); null when the
    caller chose it (never echoed)."""

    space_id: str
    configured: bool
    secret: str | None = None


def project_of(data: Any) -> Project | None:
    """The ``project`` of any event that carries one, None when absent or malformed (its
    ``default_branch`` is what METRICS §5 rule 4 needs)."""
    if not isinstance(data, dict):
        return None
    try:
        return Project.model_validate(data.get("project"))
    except ValueError:
        return None
