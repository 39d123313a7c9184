"""GitHub webhooks dialect (API.md "Dialect: GitHub webhooks"): signature check and payload models.

Only the fields we use are modelled (GitHub's payloads carry many more; extras are ignored).
Events: ``push`` (commits in branch order), ``pull_request`` (closed + merged), and
``deployment_status`` (success / failure / error). Errors render in the native shape.
"""

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from dora_insights.dialects.code_hosts import (
    MAX_NAME,
    BaseBranch,
    DefaultBranch,
    HostName,
    branch_of,
    branch_push,
    catalogue_name,
    commit_time,
    stored_form,
)
from dora_insights.dialects.limits import Instant, StorableInt, pushed_branch
from dora_insights.domain.base import Model
from dora_insights.domain.changes import PullRequest, normalise_repository
from dora_insights.domain.model import DeploymentDraft, Source, TaskState
from dora_insights.domain.times import parse_instant
from dora_insights.logic.code import BranchPush

SIGNATURE_PREFIX = "sha256="
SHA_PATTERN = r"^[0-9a-fA-F]{7,40}$"
TERMINAL_STATES = {"success": TaskState.SUCCESS, "failure": TaskState.FAILED, "error": TaskState.FAILED}


def signature_valid(secret: str | None, body: bytes, header: str | None) -> bool:
    """``X-Hub-Signature-256``: ``sha256=`` + hex HMAC-SHA256 of the raw body, compared in constant time."""
    if not secret or not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    expected = SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().lower().encode())


def sign(secret: str, body: bytes) -> str:
    """The header GitHub would send for ``body`` (tests and the local runtime use it)."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _Loose(Model):
    model_config = ConfigDict(extra="ignore")


class Repository(_Loose):
    """``repository`` of every event; ``default_branch`` in its stored form (``code_hosts.DefaultBranch``)."""

    full_name: Annotated[str, Field(min_length=3, max_length=200), AfterValidator(normalise_repository)]
    name: str = Field(min_length=1, max_length=200)
    default_branch: DefaultBranch = None


class DeployedRepository(Repository):
    """``repository`` of a ``deployment_status``: its ``name`` is the deployment's project unless the
    deployment's payload names a service, so it is checked as a native project name is."""

    name: HostName


def repository_of(data: Mapping[str, Any]) -> Repository | None:
    """The ``repository`` object of any event that carries one (push, pull_request,
    deployment_status, ping of a repository hook, and most others), None when absent or malformed;
    its ``default_branch`` is what METRICS §5 rule 4 needs."""
    try:
        return Repository.model_validate(data.get("repository"))
    except ValidationError:
        return None


class PushCommit(_Loose):
    """One entry of ``push.commits``."""

    id: str = Field(pattern=SHA_PATTERN)
    timestamp: Annotated[datetime | None, BeforeValidator(commit_time)]
    message: str | None = None


class PushEvent(_Loose):
    """``push``: ``commits`` are in branch order, oldest first (at most 2,048 per delivery). The pushed
    branch is checked as ``/changes`` checks a branch (``limits.pushed_branch`` of its stored form: not
    blank, capped in UTF-8 bytes): a push to a blank or longer one is a 400 naming ``ref``; its deletion,
    or a tag, is not checked."""

    deleted: bool = False  # before ``ref``: its check reads it
    ref: str = Field(min_length=1, max_length=300)
    repository: Repository
    commits: list[PushCommit] = Field(default_factory=list, max_length=5000)
    head_commit: PushCommit | None = None

    @field_validator("ref")
    @classmethod
    def _storable_branch(cls, ref: str, info: ValidationInfo) -> str:
        branch = branch_of(ref)
        if branch is not None and not info.data.get("deleted"):
            pushed_branch(stored_form(branch))
        return ref

    @property
    def branch(self) -> str | None:
        """The pushed branch's name (``refs/heads/`` stripped once); None for tags."""
        return branch_of(self.ref)

    def to_push(self, pushed_at: datetime) -> BranchPush:
        """The commits to record, with the repository's default branch (``pushed_at``: the delivery's
        arrival, ``code_hosts.branch_push``). GitHub cuts a long push's
        ``commits`` (at 2,048) but always names the branch's new head in ``head_commit``: a head left out
        of a list that names commits is recorded after them, so a deployment of it is attributed (the
        commits cut out are not known: lead time counts from those listed). With no commit listed the
        head is one the branch already had (a new branch at an existing commit, a reset): left out."""
        commits = list(self.commits)
        head = self.head_commit
        if commits and head is not None and all(c.id != head.id for c in commits):
            commits.append(head)
        return branch_push(
            self.repository.full_name, self.branch, self.repository.default_branch, commits, pushed_at=pushed_at
        )


class Ref(_Loose):
    """``pull_request.base`` / ``head``."""

    ref: str = Field(min_length=1, max_length=255)
    sha: str | None = Field(default=None, pattern=SHA_PATTERN)


class BaseRef(Ref):
    """``pull_request.base``: the branch merged into, by its bare name; in its stored form."""

    ref: BaseBranch


class PullRequestBody(_Loose):
    """``pull_request.pull_request``: numbers stored as such are ones DynamoDB can hold (``StorableInt``)."""

    id: StorableInt
    number: Annotated[StorableInt, Field(ge=1)]
    title: str | None = None
    created_at: Instant
    merged_at: Instant | None = None
    merged: bool | None = None
    merge_commit_sha: str | None = Field(default=None, pattern=SHA_PATTERN)
    base: BaseRef
    head: Ref


class PullRequestEvent(_Loose):
    """``pull_request``; only ``closed`` with ``merged: true`` is stored."""

    action: str
    number: StorableInt | None = None
    pull_request: PullRequestBody
    repository: Repository

    @property
    def merged(self) -> bool:
        """Closed by a merge."""
        pr = self.pull_request
        return self.action == "closed" and (pr.merged is True or (pr.merged is None and pr.merged_at is not None))

    def to_pull_request(self) -> PullRequest:
        """The stored pull request."""
        pr = self.pull_request
        return PullRequest(
            repository=self.repository.full_name,
            number=pr.number,
            github_id=pr.id,
            title=(pr.title or "")[:500] or None,
            base_ref=pr.base.ref,
            head_sha=pr.head.sha,
            merge_commit_sha=pr.merge_commit_sha,
            created_at=pr.created_at.isoformat(),
            merged_at=pr.merged_at.isoformat() if pr.merged_at else None,
        )


class DeploymentBody(_Loose):
    """``deployment_status.deployment``: ``environment`` is checked as a native environment name is, and
    so is ``payload.service`` when it names one (the deployment's project)."""

    id: StorableInt
    sha: str = Field(pattern=SHA_PATTERN)
    ref: str | None = None
    environment: HostName
    payload: Any = None
    created_at: Instant

    @field_validator("payload")
    @classmethod
    def _storable_service(cls, payload: Any) -> Any:
        service = _service(payload)
        if service is not None:
            if len(service) > MAX_NAME:
                raise ValueError(f"service must be at most {MAX_NAME} characters")
            try:
                catalogue_name(service)
            except ValueError as error:
                raise ValueError(f"service {error}") from None
        return payload

    @property
    def service(self) -> str | None:
        """The project ``payload.service`` names, without surrounding white space; None when it names none."""
        return _service(self.payload)


def _service(payload: Any) -> str | None:
    service = payload.get("service") if isinstance(payload, dict) else None
    return (service.strip() or None) if isinstance(service, str) else None


class DeploymentStatusBody(_Loose):
    """``deployment_status.deployment_status``."""

    id: StorableInt
    state: str
    created_at: Instant
    updated_at: Instant | None = None
    log_url: str | None = None
    target_url: str | None = None
    environment_url: str | None = None


class DeploymentStatusEvent(_Loose):
    """``deployment_status``: success / failure / error become a deployment."""

    deployment_status: DeploymentStatusBody
    deployment: DeploymentBody
    repository: DeployedRepository

    @property
    def terminal(self) -> bool:
        """A final state that is a deployment outcome."""
        return self.deployment_status.state in TERMINAL_STATES

    @property
    def idempotency_id(self) -> str:
        """One deployment per GitHub deployment (a repository's deployment ids are unique)."""
        return f"{self.repository.full_name.lower()}:{self.deployment.id}"

    def to_draft(self) -> DeploymentDraft:
        """project = the payload's ``service`` if it names one, else the repository name. The deployment's
        ``created_at`` is its start, unless it is after the status (clocks apart, a status made up by a
        tool): then it has none, as the native API refuses a start after the finish and GitHub never
        sends a refused delivery again."""
        status = self.deployment_status
        url = status.log_url or status.target_url or status.environment_url
        finished = parse_instant(status.updated_at or status.created_at)
        started = parse_instant(self.deployment.created_at)
        return DeploymentDraft(
            source=Source.GITHUB,
            project=self.deployment.service or self.repository.name,
            environment=self.deployment.environment,
            finished_at=finished,
            started_at=started if started is None or started <= finished else None,
            state=TERMINAL_STATES[status.state],
            commit_sha=self.deployment.sha.lower(),
            repository=self.repository.full_name,
            source_name="github",
            source_url=url[:2048] if url else None,
        )
