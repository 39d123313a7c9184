"""Code data for attribution (METRICS §5): commits, pull requests, and the names that join them.

Pure values, no I/O. Commits come from GitHub ``push`` events (their ``commits`` list is in
branch order, oldest first) or the native changes API; pull requests from ``pull_request``
closed+merged events. Times are stored-form strings (``domain.times``), so they sort in time
order as strings.

Also here: the in-memory implementations of the attribution ports (``ChangeView`` and
``StreamLedger`` in ``domain.attribution``), used by unit tests and as the reference the
DynamoDB adapters must agree with.
"""

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from urllib.parse import unquote, urlsplit

from pydantic import ConfigDict, Field, field_validator

from dora_insights.domain.base import Model
from dora_insights.domain.times import format_instant, parse_instant

MIN_SHA_LENGTH = 7
MAX_SHA_LENGTH = 40

_SHA = re.compile(r"[0-9a-f]{7,40}")
_URL_SCHEMES = ("http://", "https://", "ssh://", "git://", "git+ssh://")
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:(?P<path>.+)$")  # git@github.com:org/name.git
_FORBIDDEN_IN_NAME = re.compile(r"[\x00-\x1f#:?]")
_HEADS = "refs/heads/"
_ASCII_SPACE = " \t\n\r\x0b\x0c"  # what a ref may not hold at its ends; str.strip() takes Unicode spaces too


class RepositoryNameError(ValueError):
    """A repository name or URL we cannot read as ``org/name``."""


class CommitShaError(ValueError):
    """A commit sha that is not 7–40 hex characters."""


def normalise_repository(value: str) -> str:
    """``org/name``, lower case, from ``org/name``, ``https://github.com/org/name(.git)``,
    ``git@github.com:org/name.git`` or ``ssh://git@host/org/name``.

    The host is dropped (DX sends ``org/name``, Datadog a URL, for the same repository), so
    ``org/name`` on two hosts is one repository. Nested groups (GitLab, ADO ``project/repo``)
    keep every segment.
    """
    text = value.strip()
    if text.lower().startswith(_URL_SCHEMES):
        text = urlsplit(text).path
    else:
        scp = _SCP_LIKE.match(text)
        if scp is not None:
            text = scp.group("path")
    text = unquote(text).strip().strip("/")
    text = text.removesuffix(".git").removesuffix("/")
    segments = [segment.strip() for segment in text.split("/")]
    if len(segments) < 2 or any(not segment for segment in segments):
        raise RepositoryNameError(f"'{value[:100]}' is not a repository name 'org/name' or its URL")
    name = "/".join(segments).lower()
    if _FORBIDDEN_IN_NAME.search(name) or len(name) > 200:
        raise RepositoryNameError(f"'{value[:100]}' is not a repository name 'org/name' or its URL")
    return name


def normalise_sha(value: str) -> str:
    """A commit sha or prefix in lower case; 7–40 hex characters (DX accepts prefixes)."""
    text = value.strip().lower()
    if not _SHA.fullmatch(text):
        raise CommitShaError(f"'{value[:64]}' is not a commit sha (7–40 hex characters)")
    return text


def shas_match(a: str, b: str) -> bool:
    """Whether two normalised shas name the same commit: one is a prefix of the other."""
    return a.startswith(b) if len(a) >= len(b) else b.startswith(a)


def sha_index_prefix(sha: str) -> str:
    """The first 7 characters: every sha and every prefix we accept shares them with its full sha,
    so an index keyed by them finds short and full forms alike (then check with ``shas_match``)."""
    return normalise_sha(sha)[:MIN_SHA_LENGTH]


def normalise_branch(value: str) -> str:
    """A branch as stored, from its name or its full ref (push events send ``refs/heads/main``, most
    other sources ``main``): ``refs/heads/`` is stripped once, so ``refs/heads/main`` is ``main``.

    A branch whose own name begins with ``refs/heads/`` (its ref is ``refs/heads/refs/heads/main``) is
    stored as its full ref, never as the name ``main`` of another branch: so every branch has one stored
    form, and normalising it again changes nothing (stored commits and pull requests are read back
    through this function). ``branch_named`` gives the stored form of a bare name.

    Only ASCII white space is taken off the ends (git refuses it in a ref): other white space (a
    no-break space, U+3000...) is part of a name git allows, so ``main\u00a0`` stays its own branch."""
    text = value.strip(_ASCII_SPACE)
    name = text.removeprefix(_HEADS).strip(_ASCII_SPACE) if text.startswith(_HEADS) else text
    if not name:
        raise ValueError("branch name is empty")
    return text if name.startswith(_HEADS) else name


def branch_named(name: str) -> str:
    """The stored form of a branch given by its bare name, never a ref (a pull request's base, a
    repository's default branch, a pushed ref without ``refs/heads/``): ``main`` is ``main``, and the
    branch named ``refs/heads/main`` keeps that name as its full ref (``normalise_branch``)."""
    text = name.strip(_ASCII_SPACE)
    if not text:
        raise ValueError("branch name is empty")
    return normalise_branch(_HEADS + text)


def commit_change_id(repository: str, sha: str) -> str:
    """The change id of a commit in a stream's deployed-changes ledger."""
    return f"commit:{repository}:{sha}"


def pull_request_change_id(repository: str, number: int) -> str:
    """The change id of a pull request in a stream's deployed-changes ledger."""
    return f"pr:{repository}:{number}"


def _stored_time(value: object) -> str:
    if isinstance(value, datetime | str | int | float):
        return format_instant(parse_instant(value))
    raise ValueError("expected a time")


class Commit(Model):
    """One commit at one place in one branch's order (the same sha on two branches is two rows).

    ``position`` grows with branch order: the logic layer numbers a push event's commits
    (oldest first) after the branch's last position, so ``position`` orders the branch like
    ``git log`` does, and the commits between two deployed shas are a position range.
    """

    model_config = ConfigDict(frozen=True)

    repository: str
    sha: str
    timestamp: str
    branch: str
    position: int = Field(ge=0)
    message: str | None = None
    pull_request: int | None = Field(default=None, ge=1)

    _repository = field_validator("repository")(normalise_repository)
    _sha = field_validator("sha")(normalise_sha)
    _branch = field_validator("branch")(normalise_branch)
    _timestamp = field_validator("timestamp", mode="before")(_stored_time)

    @property
    def change_id(self) -> str:
        """Ledger id: a commit is deployed to a stream once, whichever branch brought it."""
        return commit_change_id(self.repository, self.sha)


class PullRequest(Model):
    """A pull request, from a ``pull_request`` closed event or the native changes API.

    ``services`` are those assigned by DX ``deployments.setPullServices`` (monorepos); None
    when never assigned, which makes the pull request attributable to every project.
    """

    model_config = ConfigDict(frozen=True)

    repository: str
    number: int = Field(ge=1)
    github_id: int | None = None
    title: str | None = None
    base_ref: str
    head_sha: str | None = None
    merge_commit_sha: str | None = None
    created_at: str
    merged_at: str | None = None
    services: tuple[str, ...] | None = None

    _repository = field_validator("repository")(normalise_repository)
    _base_ref = field_validator("base_ref")(normalise_branch)
    _created_at = field_validator("created_at", mode="before")(_stored_time)

    @field_validator("head_sha", "merge_commit_sha")
    @classmethod
    def _optional_sha(cls, value: str | None) -> str | None:
        return None if value is None else normalise_sha(value)

    @field_validator("merged_at", mode="before")
    @classmethod
    def _optional_time(cls, value: object) -> str | None:
        return None if value is None else _stored_time(value)

    @property
    def change_id(self) -> str:
        """Ledger id of this pull request."""
        return pull_request_change_id(self.repository, self.number)

    def attributable_to(self, project: str) -> bool:
        """Monorepos (METRICS §5): a pull request assigned services ships only with those projects."""
        if self.services is None:
            return True
        wanted = project.casefold()
        return any(service.casefold() == wanted for service in self.services)

    def merged_by(self, sha: str) -> bool:
        """Whether ``sha`` (or a prefix) is this pull request's merge (or squash) commit."""
        return self.merge_commit_sha is not None and shas_match(self.merge_commit_sha, sha)

    def headed_by(self, sha: str) -> bool:
        """Whether ``sha`` (or a prefix) is this pull request's head commit."""
        return self.head_sha is not None and shas_match(self.head_sha, sha)


class BranchMark(Model):
    """How far along a branch a stream has shipped: every commit at or below ``position`` is deployed."""

    model_config = ConfigDict(frozen=True)

    repository: str
    branch: str
    position: int


def _prefix_hit(sha: str, wanted: Collection[str]) -> bool:
    return any(shas_match(sha, other) for other in wanted)


class InMemoryChanges:
    """The ``ChangeView`` port over plain lists: the unit-test fake and the reference semantics."""

    def __init__(
        self,
        commits: Iterable[Commit] = (),
        pull_requests: Iterable[PullRequest] = (),
        default_branches: Mapping[str, str] | None = None,
    ) -> None:
        self.commits: list[Commit] = list(commits)
        self.pull_requests: list[PullRequest] = list(pull_requests)
        self.default_branches: dict[str, str] = {
            normalise_repository(repo): normalise_branch(branch) for repo, branch in (default_branches or {}).items()
        }
        self.calls: list[str] = []

    def default_branch(self, repository: str) -> str | None:
        self.calls.append("default_branch")
        return self.default_branches.get(repository)

    def commits_by_sha(self, repository: str, shas: Collection[str]) -> Sequence[Commit]:
        self.calls.append("commits_by_sha")
        return [c for c in self.commits if c.repository == repository and _prefix_hit(c.sha, shas)]

    def commits_in_range(
        self, repository: str, branch: str, after_position: int | None, up_to_position: int, limit: int
    ) -> Sequence[Commit]:
        self.calls.append("commits_in_range")
        low = -1 if after_position is None else after_position
        hits = [
            c
            for c in self.commits
            if c.repository == repository and c.branch == branch and low < c.position <= up_to_position
        ]
        hits.sort(key=lambda c: c.position, reverse=True)
        return hits[:limit]

    def commits_of_pull_requests(self, repository: str, numbers: Collection[int]) -> Sequence[Commit]:
        self.calls.append("commits_of_pull_requests")
        return [c for c in self.commits if c.repository == repository and c.pull_request in numbers]

    def pull_requests_by_sha(self, shas: Collection[str], repository: str | None) -> Sequence[PullRequest]:
        self.calls.append("pull_requests_by_sha")
        return [
            pr
            for pr in self.pull_requests
            if (repository is None or pr.repository == repository)
            and any(pr.merged_by(sha) or pr.headed_by(sha) for sha in shas)
        ]

    def pull_requests_merged(
        self, repository: str, base_ref: str, merged_after: str | None, merged_up_to: str | None
    ) -> Sequence[PullRequest]:
        self.calls.append("pull_requests_merged")
        hits = [
            pr
            for pr in self.pull_requests
            if pr.repository == repository
            and pr.base_ref == base_ref
            and pr.merged_at is not None
            and (merged_after is None or pr.merged_at > merged_after)
            and (merged_up_to is None or pr.merged_at <= merged_up_to)
        ]
        hits.sort(key=lambda pr: (pr.merged_at or "", pr.number))
        return hits


class InMemoryLedger:
    """The ``StreamLedger`` port for one stream over a set of change ids and branch marks."""

    def __init__(self, deployed: Iterable[str] = (), marks: Iterable[BranchMark] = ()) -> None:
        self.deployed: set[str] = set(deployed)
        self.positions: dict[tuple[str, str], int] = {}
        for mark in marks:
            self.mark(mark)

    def deployed_among(self, change_ids: Collection[str]) -> frozenset[str]:
        return frozenset(change_id for change_id in change_ids if change_id in self.deployed)

    def shipped_position(self, repository: str, branch: str) -> int | None:
        return self.positions.get((repository, branch))

    def mark(self, mark: BranchMark) -> None:
        """Advance a branch mark (never moves back)."""
        key = (mark.repository, mark.branch)
        self.positions[key] = max(mark.position, self.positions.get(key, mark.position))

    def record(self, change_ids: Iterable[str], marks: Iterable[BranchMark]) -> None:
        """What the logic layer writes after a successful deployment's attribution resolves."""
        self.deployed.update(change_ids)
        for mark in marks:
            self.mark(mark)
