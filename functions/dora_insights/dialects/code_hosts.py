"""What the code hosts' webhook dialects (GitHub, GitLab) share: a pushed ref's branch and the
commits of a branch push as the core records them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from dora_insights.logic.code import BranchPush, CommitIn

HEADS = "refs/heads/"
MAX_MESSAGE = 1000  # characters of a commit message kept


class PushedCommit(Protocol):
    """One commit of a push as a code host sends it."""

    @property
    def id(self) -> str:
        """The commit's sha."""

    @property
    def timestamp(self) -> datetime:
        """When it was committed."""

    @property
    def message(self) -> str | None:
        """Its message, if sent."""


def branch_of(ref: str) -> str | None:
    """The branch a pushed ref names (``refs/heads/main`` -> ``main``); None for anything else (tags)."""
    return ref.removeprefix(HEADS) if ref.startswith(HEADS) else None


def branch_push(
    repository: str, branch: str | None, default_branch: str | None, commits: Iterable[PushedCommit]
) -> BranchPush:
    """The commits of a push to ``branch`` to record, in the push's order, with the repository's default
    branch; an empty message is none, a long one is cut to ``MAX_MESSAGE`` characters."""
    if branch is None:  # pragma: no cover - the handlers ignore pushes of anything but a branch
        raise ValueError("not a branch push")
    return BranchPush(
        repository=repository,
        branch=branch,
        default_branch=default_branch,
        commits=[
            CommitIn(sha=c.id, timestamp=c.timestamp.isoformat(), message=(c.message or "")[:MAX_MESSAGE] or None)
            for c in commits
        ],
    )
