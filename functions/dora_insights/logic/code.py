"""Code data use cases (METRICS §5): record pushes and pull requests, assign pull requests to services.

Every path that brings code data (GitHub ``push`` / ``pull_request`` webhooks, the native
``/changes`` API, DX ``deployments.setPullServices``) ends here, so a commit or pull request
looks the same whichever door it came through. Everything is idempotent: the same push, pull
request or service assignment again changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dora_insights.dal.code import VersionConflictError, is_pull_request, pull_request_from_item
from dora_insights.domain.changes import Commit, PullRequest, normalise_branch, normalise_repository, normalise_sha
from dora_insights.domain.times import format_instant
from dora_insights.errors import ResourceConflictError
from dora_insights.logic import attribution
from dora_insights.logic.ports import Ports

_ATTEMPTS = 5


@dataclass(frozen=True)
class CommitIn:
    """A commit as a source reports it, before it gets its branch position."""

    sha: str
    timestamp: str
    message: str | None = None
    pull_request: int | None = None


@dataclass(frozen=True)
class BranchPush:
    """Commits pushed to one branch of one repository, oldest first (a push event's order)."""

    repository: str
    branch: str
    commits: Sequence[CommitIn]
    default_branch: str | None = None


@dataclass(frozen=True)
class PushResult:
    """How many commits a push brought and how many were new (the rest were stored already)."""

    received: int
    stored: int


def _branch(value: str | None) -> str | None:
    """A default branch in its stored form (dialects give one: ``domain.changes.normalise_branch`` of a
    name or ref, ``branch_named`` of a bare name; normalising it again changes nothing); None when absent
    or blank."""
    if value is None:
        return None
    try:
        return normalise_branch(value)
    except ValueError:
        return None


def learn_default_branch(
    store: Ports, space_id: str, repository: str, default_branch: str | None, now: datetime
) -> int:
    """Remember a repository's default branch from any payload that names it (GitHub's
    ``repository.default_branch`` comes with every repository event: push, pull_request,
    deployment_status, ping...). When it is new or changed, the deployments waiting for the
    repository (METRICS §5 rule 4 needs the default branch) are re-tried at once, as a push wakes
    the deployments waiting for its commits. Answers how many were woken."""
    branch = _branch(default_branch)
    if branch is None:
        return 0
    repo = normalise_repository(repository)
    if not store.code(space_id).remember_repository(repo, branch, format_instant(now)):
        return 0
    return attribution.wake(store, space_id, [], [repo])


def record_push(store: Ports, space_id: str, push: BranchPush, now: datetime) -> PushResult:
    """Store a push's commits at the end of the branch's order; commits already on the branch keep
    their position (a redelivered or overlapping push changes nothing): the stored ones are read
    consistently, and each new one is written only if still absent, so a request racing this one to
    store the same commits leaves them where the first write put them (the positions this one took for
    them stay unused: positions order a branch, they need not be contiguous). A default branch learned
    here wakes the deployments waiting for the repository even when no commit is new."""
    code = store.code(space_id)
    push = BranchPush(
        repository=normalise_repository(push.repository),
        branch=normalise_branch(push.branch),
        commits=push.commits,
        default_branch=_branch(push.default_branch),
    )
    learned = code.remember_repository(push.repository, push.default_branch, format_instant(now))
    unique: dict[str, CommitIn] = {}
    for commit in push.commits:
        unique.setdefault(normalise_sha(commit.sha), commit)
    existing = code.existing_commits(push.repository, [(sha, push.branch) for sha in unique]) if unique else {}
    new = [(sha, c) for sha, c in unique.items() if (sha, push.branch) not in existing]
    # A stored commit keeps its place, and takes the pull request a later door names (a push stores a
    # commit without one, /changes may name it): the same whichever came first.
    links = [
        known.model_copy(update={"pull_request": c.pull_request})
        for sha, c in unique.items()
        if (known := existing.get((sha, push.branch))) is not None
        and known.pull_request is None
        and c.pull_request is not None
    ]
    if links:
        code.link_pull_requests(links)
    if not new:
        if learned or links:
            attribution.wake(store, space_id, [c.sha for c in links], [push.repository])
        return PushResult(received=len(push.commits), stored=0)
    first = code.allocate_positions(push.repository, push.branch, len(new))
    commits = [
        Commit(
            repository=push.repository,
            sha=sha,
            timestamp=c.timestamp,
            branch=push.branch,
            position=first + offset,
            message=c.message,
            pull_request=c.pull_request,
        )
        for offset, (sha, c) in enumerate(new)
    ]
    stored = code.put_commits(commits)
    attribution.wake(store, space_id, [c.sha for c in commits], [push.repository])
    return PushResult(received=len(push.commits), stored=stored)


def _services(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def record_pull_request(
    store: Ports, space_id: str, pr: PullRequest, now: datetime, *, default_branch: str | None = None
) -> tuple[PullRequest, bool]:
    """Store a pull request, merged with what is already known of it: services assigned before it
    arrived (by number or by GitHub id) are kept unless it names its own. Answers the stored pull
    request and whether anything changed.

    ``default_branch`` is the repository's, when the payload names it (GitHub's ``pull_request``
    does): the deployments waiting for the repository are woken once the pull request is stored,
    or at once when only the default branch is new."""
    code = store.code(space_id)
    learned = code.remember_repository(pr.repository, _branch(default_branch), format_instant(now))
    for _ in range(_ATTEMPTS):
        existing = code.get_pull_request_item(pr.repository, pr.number)
        pointer = code.get_github_pull(pr.github_id) if pr.github_id is not None else None
        services = pr.services
        if services is None and existing is not None:
            services = _services(existing.get("services"))
        if services is None and pointer is not None:
            services = _services(pointer.get("services"))
        github_id = pr.github_id
        if github_id is None and existing is not None and is_pull_request(existing):
            github_id = existing.get("github_id")
        merged = pr.model_copy(update={"services": services, "github_id": github_id})
        merged = PullRequest.model_validate(merged.model_dump())
        pointer_current = merged.github_id is None or (
            pointer is not None
            and pointer.get("repository") == merged.repository
            and pointer.get("number") == merged.number
            and _services(pointer.get("services")) == merged.services
        )
        if (
            existing is not None
            and is_pull_request(existing)
            and pull_request_from_item(existing) == merged
            and pointer_current
        ):
            if learned:
                attribution.wake(store, space_id, [], [merged.repository])
            return merged, False
        if merged.github_id is not None and pr.github_id is None:
            pointer = code.get_github_pull(merged.github_id)
        try:
            code.write_pull_request(
                merged,
                expected_version=None if existing is None else int(existing["version"]),
                github_expected_version=None if pointer is None else int(pointer["version"]),
                write_github_item=merged.github_id is not None,
            )
        except VersionConflictError:
            continue
        shas = [s for s in (merged.merge_commit_sha, merged.head_sha) if s]
        attribution.wake(store, space_id, shas, [merged.repository])
        return merged, True
    if learned:  # a retried delivery would find the default branch known already
        attribution.wake(store, space_id, [], [pr.repository])
    raise ResourceConflictError("the pull request is being changed by another request; retry")


@dataclass(frozen=True)
class ServicesResult:
    """The outcome of ``set_pull_services``: the pull request when known, else a placeholder."""

    services: tuple[str, ...]
    pull_request: PullRequest | None
    github_pull_id: int | None
    repository: str | None
    pull_number: int | None

    @property
    def placeholder(self) -> bool:
        """Whether the pull request is not known yet (its webhook will pick the services up)."""
        return self.pull_request is None


def set_pull_services(
    store: Ports,
    space_id: str,
    services: Sequence[str],
    now: datetime,
    *,
    github_pull_id: int | None = None,
    repository: str | None = None,
    pull_number: int | None = None,
) -> ServicesResult:
    """DX ``deployments.setPullServices``: assign services to a pull request (by GitHub id, or by
    repository and number, or both: the pull request the GitHub id points at, else the one of that
    repository and number). A pull request not known yet gets a placeholder that its webhook (or
    ``/changes``) merges into later: by GitHub id when one is given, and by repository and number
    when those are given."""
    code = store.code(space_id)
    wanted = tuple(dict.fromkeys(services))
    at = format_instant(now)
    for _ in range(_ATTEMPTS):
        item: dict[str, Any] | None = None
        pointer: dict[str, Any] | None = None
        if github_pull_id is not None:
            pointer = code.get_github_pull(github_pull_id)
            if pointer is not None and pointer.get("repository") and pointer.get("number"):
                item = code.get_pull_request_item(str(pointer["repository"]), int(pointer["number"]))
        elif repository is None or pull_number is None:  # pragma: no cover - the dialect requires one
            raise ValueError("github_pull_id or repository and pull_number")
        if item is None and repository is not None and pull_number is not None:
            item = code.get_pull_request_item(repository, pull_number)
        try:
            if item is not None and is_pull_request(item):
                current = pull_request_from_item(item)
                updated = current.model_copy(update={"services": wanted})
                if current.github_id is not None and pointer is None:
                    pointer = code.get_github_pull(current.github_id)
                if current.services != wanted or (
                    current.github_id is not None and (pointer is None or _services(pointer.get("services")) != wanted)
                ):
                    code.write_pull_request(
                        updated,
                        expected_version=int(item["version"]),
                        github_expected_version=None if pointer is None else int(pointer["version"]),
                        write_github_item=updated.github_id is not None,
                    )
                return ServicesResult(wanted, updated, updated.github_id, updated.repository, updated.number)
            if github_pull_id is not None:
                if pointer is None or _services(pointer.get("services")) != wanted:
                    code.write_github_placeholder(
                        github_pull_id,
                        wanted,
                        expected_version=None if pointer is None else int(pointer["version"]),
                        now=at,
                    )
                if repository is None or pull_number is None:
                    return ServicesResult(wanted, None, github_pull_id, None, None)
            if repository is None or pull_number is None:  # pragma: no cover - checked above
                raise ValueError("github_pull_id or repository and pull_number")
            if item is None or _services(item.get("services")) != wanted:
                code.write_placeholder(
                    repository,
                    pull_number,
                    wanted,
                    expected_version=None if item is None else int(item["version"]),
                    now=at,
                )
            return ServicesResult(wanted, None, github_pull_id, repository, pull_number)
        except VersionConflictError:
            continue
    raise ResourceConflictError("the pull request is being changed by another request; retry")


@dataclass(frozen=True)
class ChangesResult:
    """What a changes request stored."""

    commits_received: int
    commits_stored: int
    pull_requests_received: int
    pull_requests_stored: int


def record_changes(
    store: Ports,
    space_id: str,
    pushes: Sequence[BranchPush],
    pull_requests: Sequence[PullRequest],
    now: datetime,
) -> ChangesResult:
    """The native ``/changes`` API: pushes (grouped by repository and branch) and pull requests."""
    received = stored = 0
    for push in pushes:
        result = record_push(store, space_id, push, now)
        received += result.received
        stored += result.stored
    changed = 0
    for pr in pull_requests:
        _, did_change = record_pull_request(store, space_id, pr, now)
        changed += int(did_change)
    return ChangesResult(received, stored, len(pull_requests), changed)


def delivery_seen(store: Ports, space_id: str, delivery_id: str, now: datetime) -> bool:
    """Whether a webhook delivery (``X-GitHub-Delivery``) was processed within the last 30 days."""
    return store.code(space_id).delivery_seen(delivery_id, now)


def remember_delivery(store: Ports, space_id: str, delivery_id: str, event: str, now: datetime) -> None:
    """Record a processed webhook delivery, so a redelivery stores nothing twice."""
    store.code(space_id).remember_delivery(delivery_id, event, now)
