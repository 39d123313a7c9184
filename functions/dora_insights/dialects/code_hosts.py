"""What the code hosts' webhook dialects (GitHub, GitLab) share: a pushed ref's branch, the branches
they name by their bare names (a pull request's base, a default branch) and the commits of a branch
push, as the core records them.

A ref's ``refs/heads/`` is stripped once, here: the branch named ``refs/heads/main`` (pushed as
``refs/heads/refs/heads/main``) stays that branch, never ``main`` (``domain.changes.branch_named``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Protocol

from pydantic import AfterValidator, Field

from dora_insights.dialects.limits import key_name, not_blank, pushed_branch
from dora_insights.domain.changes import branch_named
from dora_insights.domain.times import InstantError, InstantOutOfRangeError, parse_instant
from dora_insights.logic.code import BranchPush, CommitIn
from dora_insights.observability import logger

HEADS = "refs/heads/"
MAX_MESSAGE = 1000  # characters of a commit message kept
MAX_NAME = 200  # characters of a name that becomes a catalogue entity (project, environment), as natively
MAX_REF = 255  # characters of a branch a code host names by its bare name


class PushedCommit(Protocol):
    """One commit of a push as a code host sends it."""

    @property
    def id(self) -> str:
        """The commit's sha."""

    @property
    def timestamp(self) -> datetime | None:
        """When it was committed; None for a date outside the accepted range (``commit_time``)."""

    @property
    def message(self) -> str | None:
        """Its message, if sent."""


def branch_of(ref: str) -> str | None:
    """The name of the branch a pushed ref names, ``refs/heads/`` stripped once (``refs/heads/main`` ->
    ``main``, ``refs/heads/refs/heads/main`` -> ``refs/heads/main``); None for anything else (tags)."""
    return ref.removeprefix(HEADS) if ref.startswith(HEADS) else None


def stored_form(name: str) -> str:
    """A validator's stored form of a branch a code host names by its bare name (a pushed ref's branch, a
    pull request's base): ``domain.changes.branch_named``; a blank name is a ValueError saying so."""
    return branch_named(not_blank(name))


def stored_branch(name: str) -> str:
    """A validator's check of a branch a code host names by its bare name: what a ``/changes`` branch may
    be (``limits.pushed_branch`` of its stored form: not blank, at most ``MAX_BRANCH_BYTES`` of UTF-8);
    answers its stored form."""
    return pushed_branch(stored_form(name))


def default_branch_of(name: str | None) -> str | None:
    """A validator of a repository's ``default_branch`` (a bare name): its stored form; None when absent
    or blank (learned from no payload, refused in none)."""
    return None if name is None or not name.strip() else branch_named(name)


def commit_time(value: object) -> datetime | None:
    """A validator of a pushed commit's date, read as any time field (``domain.times.parse_instant``), but
    None for a date outside the accepted range: git takes any date (a bad clock, ``GIT_AUTHOR_DATE``), and
    refusing the delivery, the code host's only one of those commits, would lose them all. ``branch_push``
    dates such a commit at the push. A value that is no time at all is refused (a ValueError)."""
    try:
        return parse_instant(value)
    except InstantOutOfRangeError:
        return None
    except InstantError as error:
        raise ValueError(str(error)) from None


def branch_push(
    repository: str,
    branch: str | None,
    default_branch: str | None,
    commits: Iterable[PushedCommit],
    *,
    pushed_at: datetime,
) -> BranchPush:
    """The commits of a push to the branch named ``branch`` (``branch_of`` the ref) to record, in the push's
    order, with the repository's default branch (stored form); an empty message is none, a long one is cut
    to ``MAX_MESSAGE`` characters. A commit whose date is outside the accepted range is dated ``pushed_at``
    (the delivery's arrival: it existed by then, so its lead time is not overstated), and logged."""
    if branch is None:  # pragma: no cover - the handlers ignore pushes of anything but a branch
        raise ValueError("not a branch push")
    undated = [c.id for c in commits if c.timestamp is None]
    if undated:
        logger.warning(
            "pushed commits dated outside 1970-2100 are dated at the push",
            extra={"repository": repository, "commits": undated[:20], "count": len(undated)},
        )
    return BranchPush(
        repository=repository,
        branch=branch_named(branch),
        default_branch=default_branch,
        commits=[
            CommitIn(
                sha=c.id,
                timestamp=(c.timestamp or pushed_at).isoformat(),
                message=(c.message or "")[:MAX_MESSAGE] or None,
            )
            for c in commits
        ],
    )


def catalogue_name(value: str) -> str:
    """A validator's check of a name a deployment brings into the catalogue (project, environment): what
    the native API's ``Name`` may be (``limits.not_blank``, ``limits.key_name``); else a ValueError."""
    return key_name()(not_blank(value))


# A deployment's project or environment, checked as the native API checks one (``dialects.native.Name``).
HostName = Annotated[str, Field(min_length=1, max_length=MAX_NAME), AfterValidator(catalogue_name)]
# A branch named by its bare name (a pull request's base): its stored form, checked as a pushed branch.
BaseBranch = Annotated[str, Field(min_length=1, max_length=MAX_REF), AfterValidator(stored_branch)]
# A repository's default branch: its stored form; None when absent or blank.
DefaultBranch = Annotated[Annotated[str, Field(max_length=MAX_REF)] | None, AfterValidator(default_branch_of)]
