"""The local git checkout: HEAD, the origin URL, the branch, and the commits of a range (``git log``)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dora_insights_cli.errors import USAGE, CliError

# One record per commit: sha, committer date (ISO-8601 strict), subject; fields split by NUL,
# records by the record separator (neither appears in a subject).
_FORMAT = "%H%x00%cI%x00%s%x1e"
SUBJECT_CHARACTERS = 1000  # the service keeps at most this much of a commit message


@dataclass(frozen=True)
class Commit:
    sha: str
    timestamp: str
    message: str


def _git(args: Sequence[str], cwd: Path | None) -> str | None:
    """git's output, or None when git is missing or fails (not a checkout, unknown revision)."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, encoding="utf-8", errors="replace", check=False
        )
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None


def _git_or_fail(args: Sequence[str], cwd: Path | None, what: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, encoding="utf-8", errors="replace", check=False
        )
    except OSError as error:
        raise CliError(f"{what}: cannot run git ({error})", USAGE) from None
    if done.returncode != 0:
        raise CliError(f"{what}: git {' '.join(args[:2])} failed: {done.stderr.strip()[:500]}", USAGE)
    return done.stdout


def head(cwd: Path | None = None) -> str | None:
    out = _git(["rev-parse", "HEAD"], cwd)
    return out.strip() or None if out else None


def resolve(revision: str, cwd: Path | None = None) -> str | None:
    """The full sha of ``revision`` (``HEAD``, a branch, a tag), or None."""
    out = _git(["rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], cwd)
    return out.strip() or None if out else None


def origin_url(cwd: Path | None = None) -> str | None:
    out = _git(["config", "--get", "remote.origin.url"], cwd)
    return out.strip() or None if out else None


def branch(cwd: Path | None = None) -> str | None:
    """The checked-out branch, or None on a detached HEAD (as CI checkouts often are)."""
    out = _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd)
    name = out.strip() if out else ""
    return name if name and name != "HEAD" else None


def log(revisions: str, *, max_count: int | None, cwd: Path | None = None) -> list[Commit]:
    """The commits of ``revisions`` (``a..b`` or one revision), parents before children (oldest first),
    at most ``max_count`` (the newest ones)."""
    args = ["log", "--topo-order", f"--format={_FORMAT}"]
    if max_count is not None:
        args.append(f"--max-count={max_count}")
    args += [revisions, "--"]
    out = _git_or_fail(args, cwd, f"cannot list the commits of '{revisions}'")
    commits = []
    for record in out.split("\x1e"):
        fields = record.strip("\n").split("\x00")
        if len(fields) == 3 and fields[0]:
            commits.append(Commit(fields[0], fields[1], fields[2][:SUBJECT_CHARACTERS]))
    commits.reverse()  # git lists newest first; the service wants a branch's commits oldest first
    return commits
