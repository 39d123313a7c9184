"""Native ``POST /api/{spaceId}/changes`` models: commits and pull requests from any VCS host.

The same model the GitHub webhook fills (``domain.changes``): commits are listed per branch in
branch order (oldest first) and get their positions on arrival; pull requests as merged.
"""

from typing import Annotated, Any, Self

from pydantic import AfterValidator, ConfigDict, Field

from dora_insights.dialects.limits import MAX_BRANCH_BYTES, Instant, key_name
from dora_insights.domain.base import Model
from dora_insights.domain.changes import PullRequest, normalise_branch, normalise_repository, normalise_sha
from dora_insights.logic.code import BranchPush, CommitIn

MAX_COMMITS = 5000
MAX_PULL_REQUESTS = 1000


Repository = Annotated[str, Field(min_length=3, max_length=300), AfterValidator(normalise_repository)]
Branch = Annotated[
    str,
    Field(min_length=1, max_length=255),
    AfterValidator(normalise_branch),
    AfterValidator(key_name(MAX_BRANCH_BYTES)),
]
Sha = Annotated[str, Field(min_length=7, max_length=40), AfterValidator(normalise_sha)]
# A commit is stored under its sha: only the full one, so that one commit sent by two doors (a push, then
# /changes with an abbreviation) is one commit, never two shipped twice. References to a commit (a pull
# request's head or merge commit) may abbreviate it: they are matched by prefix.
FullSha = Annotated[str, Field(min_length=40, max_length=40), AfterValidator(normalise_sha)]


class CommitChangeIn(Model):
    """One commit: ``repository``, ``branch``, ``sha``, ``timestamp`` (commits of a branch oldest first)."""

    model_config = ConfigDict(extra="forbid")

    repository: Repository
    branch: Branch
    sha: FullSha
    timestamp: Instant
    message: Annotated[str | None, Field(max_length=1000)] = None
    pull_request: Annotated[int | None, Field(ge=1, lt=2**63)] = None
    default_branch: Branch | None = None


class PullRequestChangeIn(Model):
    """One pull (merge) request."""

    model_config = ConfigDict(extra="forbid")

    repository: Repository
    number: Annotated[int, Field(ge=1, lt=2**63)]
    github_id: Annotated[int | None, Field(ge=1, lt=2**63)] = None
    title: Annotated[str | None, Field(max_length=500)] = None
    base_ref: Branch
    head_sha: Sha | None = None
    merge_commit_sha: Sha | None = None
    created_at: Instant
    merged_at: Instant | None = None
    services: Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]] | None, Field(max_length=100)] = None

    def to_domain(self) -> PullRequest:
        """The stored model: the same fields, its times as ISO-8601 text."""
        return PullRequest(
            **self.model_dump(exclude={"created_at", "merged_at"}),
            created_at=self.created_at.isoformat(),
            merged_at=self.merged_at.isoformat() if self.merged_at else None,
        )


class ChangesIn(Model):
    """``{"commits": [...], "pull_requests": [...]}``."""

    model_config = ConfigDict(extra="forbid")

    commits: Annotated[list[CommitChangeIn], Field(max_length=MAX_COMMITS)] = Field(default_factory=list)
    pull_requests: Annotated[list[PullRequestChangeIn], Field(max_length=MAX_PULL_REQUESTS)] = Field(
        default_factory=list
    )

    def pushes(self) -> list[BranchPush]:
        """Commits grouped by (repository, branch), each group in request order."""
        groups: dict[tuple[str, str], list[CommitChangeIn]] = {}
        for commit in self.commits:
            groups.setdefault((commit.repository, commit.branch), []).append(commit)
        return [
            BranchPush(
                repository=repository,
                branch=branch,
                default_branch=next((c.default_branch for c in commits if c.default_branch), None),
                commits=[
                    CommitIn(
                        sha=c.sha, timestamp=c.timestamp.isoformat(), message=c.message, pull_request=c.pull_request
                    )
                    for c in commits
                ],
            )
            for (repository, branch), commits in groups.items()
        ]


class ChangesOut(Model):
    """What was received and what was new."""

    commits: dict[str, int]
    pull_requests: dict[str, int]

    @classmethod
    def of(cls, result: Any) -> Self:
        """From ``logic.code.ChangesResult``."""
        return cls(
            commits={"received": result.commits_received, "stored": result.commits_stored},
            pull_requests={"received": result.pull_requests_received, "stored": result.pull_requests_stored},
        )
