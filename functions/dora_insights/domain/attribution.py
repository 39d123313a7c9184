"""The attribution engine (METRICS §5): which changes a deployment newly shipped to its stream.

Pure: the code data comes through the ``ChangeView`` port and the stream's bookkeeping through
the ``StreamLedger`` port, both read in batches (a deployment shipping 5,000 commits costs one
range read of commits, not one read per commit); ``now`` is a parameter.

Rules (METRICS §5), tried in this order:

1. ``merge_commit_shas``: exactly the merged pull requests whose merge (or squash) commit is one
   of them.
2. ``commit_sha`` + repository + ``integration_branch``: pull requests merged into the
   integration branch after the one matching the previous deployment's sha (or, failing that,
   after the previous deployment finished), up to and including the one matching ``commit_sha``.
3. ``commit_sha`` + repository: the commits of the branch after what the stream already shipped
   (the branch mark, else the previous deployment's sha) up to ``commit_sha``, at most 5,000,
   newest kept (the previous deployment's sha bounds them only when its shipment lay on this branch, or
   it recorded none: after a deployment of another branch the mark does, and the ledger leaves out what
   other branches' deployments shipped); the pull requests merged by them; earlier not-yet-deployed pull requests of the
   same base ref merged since the previous deployment whose merge commit we never saw.
4. repository only: not-yet-deployed pull requests merged into the default branch since the
   previous deployment finished, up to the deployment's finish.
5. nothing.

History is bounded by the previous successful deployment of the stream. With none (a first
deployment), rules 2–4 ship only the deployment's own change: its sha's pull request (or its
commit alone), or for rule 4 the last pull request merged before it. Rule 3 also does so when
the previous deployment is over 60 days older (Datadog's cap). Rule 1 names its changes and has
no cap. In every rule a change ships once per stream (ledger), only with a successful
deployment, and a pull request assigned services ships only with those projects.
"""

from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple, Protocol, TypeVar

from pydantic import ConfigDict

from dora_insights.domain.base import Model
from dora_insights.domain.changes import (
    MIN_SHA_LENGTH,
    BranchMark,
    Commit,
    InMemoryLedger,
    PullRequest,
    normalise_branch,
    normalise_repository,
    normalise_sha,
    shas_match,
)
from dora_insights.domain.model import Attribution, Deployment, Figures
from dora_insights.domain.times import format_instant, parse_stored

MAX_COMMITS = 5_000
_LAST_POSITION = 10**12 - 1  # past any branch position (the store keeps positions in 12 digits)
HISTORY_CAP = timedelta(days=60)
MAX_SKIPPED = 1_000  # commits of a shipped branch range left out, past which the range is not recorded as one
GIVE_UP_AFTER = timedelta(days=3)
FIRST_RETRY_DELAY_SECONDS = 30
MAX_RETRY_DELAY_SECONDS = 900  # SQS DelaySeconds maximum
# Slack around the merged-at window that finds the pull requests merged by a commit range:
# merge times and push timestamps come from different clocks.
_WINDOW_SLACK = timedelta(days=1)
_T = TypeVar("_T")


class AttributionState(StrEnum):
    """``Attribution.State`` (METRICS §5)."""

    RESOLVED = "Resolved"
    PENDING = "Pending"
    GAVE_UP = "GaveUp"
    NONE = "None"  # not attributed: unsuccessful deployment, or no repository named


class AttributionMode(StrEnum):
    """``Attribution.Mode``: the rule of METRICS §5 that decided (``rule`` gives its number)."""

    MERGE_COMMIT_SHAS = "MergeCommitShas"
    INTEGRATION_BRANCH = "IntegrationBranch"
    COMMIT_SHA = "CommitSha"
    REPOSITORY = "Repository"
    NOTHING = "Nothing"

    @property
    def rule(self) -> int:
        """The rule number in METRICS §5."""
        return list(AttributionMode).index(self) + 1


# ---------------------------------------------------------------------------------------------
# Ports


class ChangeView(Protocol):
    """Code data of one space, as the engine reads it. Every method is one batched read.

    Shas passed in are normalised and may be prefixes (7–40 hex); implementations match by
    prefix in either direction (``changes.shas_match``), e.g. through an index on the first
    7 characters (``changes.sha_index_prefix``). Repositories and branches are normalised.
    """

    def default_branch(self, repository: str) -> str | None:
        """The repository's default branch (from push / pull_request events), None if never seen."""
        ...

    def commits_by_sha(self, repository: str, shas: Collection[str]) -> Sequence[Commit]:
        """Every branch occurrence of the commits whose sha matches one of ``shas``."""
        ...

    def commits_in_range(
        self, repository: str, branch: str, after_position: int | None, up_to_position: int, limit: int
    ) -> Sequence[Commit]:
        """Commits of ``branch`` with ``after_position < position <= up_to_position``, newest first,
        at most ``limit`` (one descending range query, paged)."""
        ...

    def commits_of_pull_requests(self, repository: str, numbers: Collection[int]) -> Sequence[Commit]:
        """Commits linked to these pull requests (``Commit.pull_request``)."""
        ...

    def pull_requests_by_sha(self, shas: Collection[str], repository: str | None) -> Sequence[PullRequest]:
        """Pull requests whose merge commit or head commit matches one of ``shas``; in any
        repository of the space when ``repository`` is None (DX ``merge_commit_shas``)."""
        ...

    def pull_requests_merged(
        self, repository: str, base_ref: str, merged_after: str | None, merged_up_to: str | None
    ) -> Sequence[PullRequest]:
        """Pull requests merged into ``base_ref`` with ``merged_after < merged_at <= merged_up_to``
        (open bounds when None), oldest first."""
        ...


class StreamLedger(Protocol):
    """What one stream has already shipped (METRICS §5: a change goes to the first successful
    deployment of each stream only)."""

    def deployed_among(self, change_ids: Collection[str]) -> AbstractSet[str]:
        """Those of ``change_ids`` already deployed to the stream (one batched read)."""
        ...

    def shipped_position(self, repository: str, branch: str) -> int | None:
        """The stream's mark on a branch: every commit at or below it counts as deployed."""
        ...


class ShippedRange(Model):
    """The commits of a branch range an outcome shipped, recorded as one ledger entry (not one per
    commit): every commit of ``branch`` with ``after < position <= up_to`` except the ``skipped``
    shas (left out as a blocked pull request's, or past ``MAX_COMMITS``).

    Exact because branch positions are handed out at the end of a branch and never change: the
    commits of the span are those the engine read when it shipped it. A commit id is in the stream's
    ledger when it is recorded on its own or when one of its branch occurrences lies in a range."""

    model_config = ConfigDict(frozen=True)

    repository: str
    branch: str
    after: int
    up_to: int
    skipped: tuple[str, ...] = ()

    def covers(self, commit: Commit) -> bool:
        """Whether this range shipped ``commit`` (one branch occurrence of it)."""
        return (
            commit.repository == self.repository
            and commit.branch == self.branch
            and self.after < commit.position <= self.up_to
            and commit.sha not in self.skipped
        )


# ---------------------------------------------------------------------------------------------
# Result


class AttributionOutcome(Model):
    """The engine's answer for one deployment.

    Resolved / GaveUp: ``pull_requests`` and ``commits`` are newly shipped; after storing it the
    caller records ``recorded_ids``, ``ranges`` and ``marks`` in the stream's ledger (``change_ids``
    is what that amounts to: the commits of the ranges are not written one by one). Pending: ``awaiting_shas``
    (and ``awaiting_repository``) name what must arrive; index the deployment by them.
    """

    model_config = ConfigDict(frozen=True)

    state: AttributionState
    mode: AttributionMode | None = None
    pull_requests: tuple[PullRequest, ...] = ()
    commits: tuple[Commit, ...] = ()
    change_started_at: str | None = None
    marks: tuple[BranchMark, ...] = ()
    awaiting_repository: str | None = None
    awaiting_shas: tuple[str, ...] = ()
    history_capped: bool = False  # only the deployment's own change shipped (first deployment, 60-day gap)
    truncated: bool = False  # more than MAX_COMMITS commits: the oldest were left out
    ranges: tuple[ShippedRange, ...] = ()  # branch ranges shipped, recorded as ranges

    @property
    def change_ids(self) -> frozenset[str]:
        """Ledger ids of everything this outcome ships."""
        return frozenset(pr.change_id for pr in self.pull_requests) | frozenset(c.change_id for c in self.commits)

    @property
    def recorded_ids(self) -> frozenset[str]:
        """The ledger ids recorded one by one: the pull requests and the commits no range covers (so
        the ledger writes grow with pull requests and out-of-range commits, not with commits)."""
        loose = (c for c in self.commits if not any(r.covers(c) for r in self.ranges))
        return frozenset(pr.change_id for pr in self.pull_requests) | frozenset(c.change_id for c in loose)

    def to_attribution(self, attempts: int, now: datetime) -> Attribution:
        """The ``Attribution`` stored on the deployment."""
        pending = self.state is AttributionState.PENDING
        return Attribution(
            state=self.state.value,
            mode=None if self.mode is None else self.mode.value,
            attempts=attempts,
            commits=[c.sha for c in self.commits],
            pull_requests=[_pull_request_summary(pr) for pr in self.pull_requests],
            change_started_at=self.change_started_at,
            resolved_at=None if pending else format_instant(_aware(now)),
        )


# What an attribution keeps of each pull request it names.
_PULL_REQUEST_SUMMARY = {"repository", "number", "title", "base_ref", "merge_commit_sha", "created_at", "merged_at"}


def _pull_request_summary(pr: PullRequest) -> dict[str, Any]:
    return pr.model_dump(include=_PULL_REQUEST_SUMMARY)


class FinalAttribution(NamedTuple):
    """What storing a final (Resolved, GaveUp or None) attribution writes, besides the attribution.

    The store pages the shipment itself (pull requests of ``attribution``, then ``commits``) and
    fills in the first page, the counts and the ``details_id``; ``forget`` are pending-index keys
    as the attribution repository handed them out (``awaiting_keys``)."""

    attribution: Attribution
    figures: Figures | None
    commits: Sequence[tuple[str, str]]  # (repository, sha) of every commit shipped, in order
    change_ids: Collection[str]  # ledger entries to record one by one (Resolved and GaveUp)
    marks: Sequence[BranchMark]
    forget: Sequence[Mapping[str, str]]  # pending-index keys to delete
    dirty_at: str | None  # mark the stream for the recompute
    drop_outbox: bool = True  # delete the outbox item (False: the deployment is known to have none)
    ranges: Sequence[ShippedRange] = ()  # branch ranges to record, each one ledger entry


# ---------------------------------------------------------------------------------------------
# Retry policy


def next_retry_delay(attempt: int) -> int:
    """Seconds before retry number ``attempt`` (0 = the first): 30, 60, 120, … capped at 900."""
    if attempt < 0:
        raise ValueError("attempt must not be negative")
    return min(MAX_RETRY_DELAY_SECONDS, FIRST_RETRY_DELAY_SECONDS << min(attempt, 16))


def should_give_up(received_at: str | datetime, now: datetime) -> bool:
    """Whether a pending attribution has waited its 3 days (from when the deployment arrived)."""
    received = parse_stored(received_at) if isinstance(received_at, str) else _aware(received_at)
    return _aware(now) - received >= GIVE_UP_AFTER


# ---------------------------------------------------------------------------------------------
# Engine


def attribute(
    deployment: Deployment,
    previous: Deployment | None,
    changes: ChangeView,
    ledger: StreamLedger | AbstractSet[str],
    now: datetime,
) -> AttributionOutcome:
    """Attribute ``deployment`` (METRICS §5).

    ``previous`` is the stream's previous successful deployment in finish order (None for the
    first); ``ledger`` is the stream's ledger, or a plain set of deployed change ids.
    A pending attribution past 3 days from ``deployment.received_at`` gives up and falls back
    to rule 4 by timestamp, then to rule 5.
    """
    now = _aware(now)
    if not deployment.is_successful:
        return AttributionOutcome(state=AttributionState.NONE)
    run = _Run(deployment, previous, changes, ledger if not isinstance(ledger, AbstractSet) else InMemoryLedger(ledger))
    if run.repository_invalid:
        return AttributionOutcome(state=AttributionState.NONE, mode=AttributionMode.NOTHING)

    mode = run.mode()
    if mode is AttributionMode.NOTHING:
        return AttributionOutcome(state=AttributionState.NONE, mode=mode)

    blocked = run.blocked_by_previous()
    result = blocked if blocked is not None else run.apply(mode)
    if isinstance(result, _Shipment):
        return run.outcome(AttributionState.RESOLVED, mode, result)
    if not should_give_up(deployment.received_at, now):
        return AttributionOutcome(
            state=AttributionState.PENDING,
            mode=mode,
            awaiting_repository=result.repository,
            awaiting_shas=tuple(sorted(result.shas)),
        )
    if result.partial is not None and result.partial.pull_requests:
        return run.outcome(AttributionState.GAVE_UP, mode, result.partial)
    fallback = run.by_timestamp() if run.repository is not None else None
    if fallback is None:
        return AttributionOutcome(state=AttributionState.GAVE_UP, mode=AttributionMode.NOTHING)
    return run.outcome(AttributionState.GAVE_UP, AttributionMode.REPOSITORY, fallback)


@dataclass
class _Shipment:
    """Candidate changes before the stream's ledger and service filters."""

    pull_requests: list[PullRequest] = field(default_factory=list)
    commits: list[Commit] = field(default_factory=list)
    # commits known to be undeployed by branch position (skip the ledger read for them)
    fresh_commits: list[Commit] = field(default_factory=list)
    marks: list[BranchMark] = field(default_factory=list)
    capped: bool = False
    truncated: bool = False
    span: ShippedRange | None = None  # the branch range ``fresh_commits`` are (``skipped`` filled in by ``outcome``)
    verify_fresh: bool = False  # the range starts at the stream's mark, not at the previous sha: read the ledger


class _Awaiting(NamedTuple):
    """What a pending attribution waits for; ``partial`` is what rule 1 already found."""

    shas: frozenset[str]
    repository: str | None
    partial: _Shipment | None = None


class _Run:
    """One attribution: the deployment, its previous deployment, and the two ports."""

    def __init__(
        self, deployment: Deployment, previous: Deployment | None, changes: ChangeView, ledger: StreamLedger
    ) -> None:
        self.deployment = deployment
        self.previous = previous
        self.changes = changes
        self.ledger = ledger
        self.finished_at = deployment.finished_at
        self.repository_invalid = False
        self.repository = self._repository(deployment.repository)
        self.previous_repository = None if previous is None else maybe_repository(previous.repository)

    @property
    def repo(self) -> str:
        """The deployment's repository; rules 2–4 only run with one."""
        if self.repository is None:
            raise ValueError("this rule needs a repository")
        return self.repository

    def _repository(self, value: str | None) -> str | None:
        if value is None:
            return None
        normalised = maybe_repository(value)
        self.repository_invalid = normalised is None
        return normalised

    # -- mode ----------------------------------------------------------------------------------

    def mode(self) -> AttributionMode:
        d = self.deployment
        if d.merge_commit_shas:
            return AttributionMode.MERGE_COMMIT_SHAS
        if d.commit_sha and self.repository and d.integration_branch:
            return AttributionMode.INTEGRATION_BRANCH
        if d.commit_sha and self.repository:
            return AttributionMode.COMMIT_SHA
        if self.repository:
            return AttributionMode.REPOSITORY
        return AttributionMode.NOTHING

    def apply(self, mode: AttributionMode) -> _Shipment | _Awaiting:
        if mode is AttributionMode.MERGE_COMMIT_SHAS:
            return self.merge_commit_shas()
        if mode is AttributionMode.INTEGRATION_BRANCH:
            return self.integration_branch()
        if mode is AttributionMode.COMMIT_SHA:
            return self.commit_range()
        return self.repository_only()

    def blocked_by_previous(self) -> _Awaiting | None:
        """A deployment waits while the previous one in its stream is pending, or owes an attribution
        that has not run yet (its attempt failed and is retried, its function died before it ran):
        its history starts where the previous one's ends, and a stream's changes ship in finish
        order whatever order the attempts run in (the branch mark of a later deployment would
        otherwise swallow the earlier one's changes)."""
        prev = self.previous
        if prev is None:
            return None
        state = None if prev.attribution is None else prev.attribution.state
        names_code = bool(prev.repository or prev.merge_commit_shas or prev.commit_sha)
        if state != AttributionState.PENDING and not (state is None and names_code):
            return None
        shas = {maybe_sha(s) for s in [prev.commit_sha, *(prev.merge_commit_shas or [])]}
        return _Awaiting(frozenset(s for s in shas if s), self.previous_repository)

    # -- history bounds ------------------------------------------------------------------------

    @property
    def previous_finished_at(self) -> str | None:
        return None if self.previous is None else self.previous.finished_at

    def gap_over_cap(self) -> bool:
        if self.previous is None:
            return False
        gap = parse_stored(self.finished_at) - parse_stored(self.previous.finished_at)
        return gap > HISTORY_CAP

    # -- rule 1 --------------------------------------------------------------------------------

    def merge_commit_shas(self) -> _Shipment | _Awaiting:
        named = {s for s in (maybe_sha(v) for v in self.deployment.merge_commit_shas or []) if s}
        found = [
            pr
            for pr in self.changes.pull_requests_by_sha(sorted(named), self.repository)
            if pr.merged_at is not None and any(pr.merged_by(sha) for sha in named)
        ]
        shipment = _Shipment(pull_requests=found)
        self.add_pull_request_commits(shipment)
        missing = frozenset(sha for sha in named if not any(pr.merged_by(sha) for pr in found))
        if missing:
            return _Awaiting(missing, self.repository, partial=shipment)
        return shipment

    # -- rule 2 --------------------------------------------------------------------------------

    def integration_branch(self) -> _Shipment | _Awaiting:
        branch = normalise_branch(self.deployment.integration_branch or "")
        sha = maybe_sha(self.deployment.commit_sha)
        own = self.matching_pull_request(sha, base_ref=branch) if sha else None
        if own is None or own.merged_at is None:
            return _Awaiting(frozenset({sha} if sha else ()), self.repo)
        shipment = _Shipment(pull_requests=[own])
        if self.previous is None:
            shipment.capped = True
        else:
            after = self.previous_finished_at
            prev_sha = maybe_sha(self.previous.commit_sha)
            if prev_sha and self.previous_repository == self.repo:
                prev_pr = self.matching_pull_request(prev_sha, base_ref=branch)
                if prev_pr is not None and prev_pr.merged_at is not None:
                    after = prev_pr.merged_at
            merged = self.changes.pull_requests_merged(self.repo, branch, after, own.merged_at)
            shipment.pull_requests.extend(pr for pr in merged if pr.number != own.number)
        self.add_pull_request_commits(shipment)
        return shipment

    def pushed_to(self, branch: str) -> bool:
        """Whether push events brought commits of ``branch`` of the repository (one Query, for one)."""
        return bool(self.changes.commits_in_range(self.repo, branch, None, _LAST_POSITION, 1))

    def matching_pull_request(self, sha: str, *, base_ref: str | None) -> PullRequest | None:
        """The pull request of a deployed sha: its merge commit, else its head commit."""
        candidates = [
            pr
            for pr in self.changes.pull_requests_by_sha([sha], self.repo)
            if pr.merged_at is not None and (base_ref is None or pr.base_ref == base_ref)
        ]
        by_merge = [pr for pr in candidates if pr.merged_by(sha)]
        pool = by_merge or [pr for pr in candidates if pr.headed_by(sha)]
        return max(pool, key=lambda pr: (pr.merged_at or "", pr.number), default=None)

    # -- rule 3 --------------------------------------------------------------------------------

    def commit_range(self) -> _Shipment | _Awaiting:
        repo = self.repo
        sha = maybe_sha(self.deployment.commit_sha)
        if sha is None:
            return self.repository_only()
        occurrences = self.changes.commits_by_sha(repo, [sha])
        own_pr = self.matching_pull_request(sha, base_ref=None)
        capped = self.previous is None or self.previous_repository != repo or self.gap_over_cap()
        if not occurrences:
            if own_pr is None or self.pushed_to(own_pr.base_ref):
                # Unknown, or known by its pull request while pushes bring the branch's commits: the push
                # is on its way (GitHub sends it and pull_request in no set order), so wait for it.
                return _Awaiting(frozenset({sha}), repo)
            # Only the pull request is known (no push data): DX mode 2, by merge time.
            return self.since_previous(own_pr, own_pr.base_ref, head=None, capped=capped)
        head = self.choose_occurrence(occurrences, own_pr)

        mark = self.ledger.shipped_position(repo, head.branch)
        if self.gap_over_cap() or (mark is None and capped):
            return self.own_change(head, own_pr)
        lower = mark
        # The previous deployment's range lay on another branch (a stream deploying branch heads): its sha's
        # place on this branch says nothing of what this stream shipped here (a merge linearises commits
        # it never had before it), so the stream's mark bounds the range and the ledger filters out what
        # deployments of other branches shipped.
        elsewhere = mark is not None and self.previous_read_on(repo, head.branch) is False
        if self.previous is not None and self.previous_repository == repo and not elsewhere:
            prev_sha = maybe_sha(self.previous.commit_sha)
            prev_at = (
                [c for c in self.changes.commits_by_sha(repo, [prev_sha]) if c.branch == head.branch]
                if prev_sha
                else []
            )
            if prev_at:
                prev_position = max(c.position for c in prev_at)
                lower = prev_position if lower is None else max(lower, prev_position)
        if lower is None:
            # The previous deployment's sha is not on this branch: no range to read.
            return self.since_previous(own_pr, head.branch, head=head, capped=False)
        shipment = self.branch_range(head, lower, own_pr)
        shipment.verify_fresh = elsewhere
        return shipment

    def previous_read_on(self, repository: str, branch: str) -> bool | None:
        """Whether the previous deployment's shipment lay on ``branch`` (its attribution recorded a mark
        there); None when it recorded no mark at all (no attribution, a redeploy, a rule without branch
        ranges): then its sha's place on the branch is the bound, as ever."""
        attribution = None if self.previous is None else self.previous.attribution
        recorded = [] if attribution is None else attribution.marks
        if not recorded:
            return None
        return any(m.get("repository") == repository and m.get("branch") == branch for m in recorded)

    def choose_occurrence(self, occurrences: Sequence[Commit], own_pr: PullRequest | None) -> Commit:
        """The branch a deployed sha is read on: the previous deployment's branch, the pull
        request's base, the default branch, then the first by name."""
        by_branch = {c.branch: c for c in sorted(occurrences, key=lambda c: c.position)}
        if len(by_branch) == 1:
            return next(iter(by_branch.values()))
        prev_sha = maybe_sha(self.previous.commit_sha) if self.previous is not None else None
        if prev_sha and self.previous_repository == self.repo:
            for commit in self.changes.commits_by_sha(self.repo, [prev_sha]):
                if commit.branch in by_branch:
                    return by_branch[commit.branch]
        if own_pr is not None and own_pr.base_ref in by_branch:
            return by_branch[own_pr.base_ref]
        default = self.changes.default_branch(self.repo)
        if default in by_branch:
            return by_branch[default]
        return by_branch[min(by_branch)]

    def own_change(self, head: Commit, own_pr: PullRequest | None) -> _Shipment:
        """Capped history: the deployed sha's pull request, or just its commit."""
        shipment = _Shipment(commits=[head], capped=True, marks=[_mark(head)])
        if own_pr is not None:
            shipment.pull_requests.append(own_pr)
        self.add_pull_request_commits(shipment)
        return shipment

    def branch_range(self, head: Commit, lower: int, own_pr: PullRequest | None) -> _Shipment:
        """``git log prev..sha`` over branch positions, capped at MAX_COMMITS newest."""
        repo = head.repository
        if head.position <= lower:  # a redeploy or rollback: nothing new on this branch
            shipment = _Shipment()
        else:
            newest_first = self.changes.commits_in_range(repo, head.branch, lower, head.position, MAX_COMMITS + 1)
            in_range = list(reversed(newest_first[:MAX_COMMITS]))
            truncated = len(newest_first) > MAX_COMMITS
            # Truncated: the span starts after the newest commit left out, so it holds just ``in_range``.
            after = newest_first[MAX_COMMITS].position if truncated else lower
            span = ShippedRange(repository=repo, branch=head.branch, after=after, up_to=head.position)
            shipment = _Shipment(fresh_commits=in_range, marks=[_mark(head)], truncated=truncated, span=span)
        range_shas = {c.sha for c in shipment.fresh_commits}
        oldest = min((c.timestamp for c in shipment.fresh_commits), default=self.finished_at)
        window_start = min(oldest, self.previous_finished_at or oldest)
        window_end = max([self.finished_at, *(c.timestamp for c in shipment.fresh_commits)])
        candidates = self.changes.pull_requests_merged(
            repo, head.branch, _shift(window_start, -_WINDOW_SLACK), _shift(window_end, _WINDOW_SLACK)
        )
        unplaced: list[PullRequest] = []
        for pr in candidates:
            if pr.merge_commit_sha is not None and any(shas_match(pr.merge_commit_sha, s) for s in range_shas):
                shipment.pull_requests.append(pr)
            else:
                unplaced.append(pr)
        shipment.pull_requests.extend(self.unseen_merges(unplaced, head.branch, own_pr))
        if own_pr is not None and head.position > lower:
            shipment.pull_requests.append(own_pr)
        self.add_pull_request_commits(shipment)
        return shipment

    def unseen_merges(
        self, candidates: Sequence[PullRequest], branch: str, own_pr: PullRequest | None
    ) -> list[PullRequest]:
        """Earlier not-yet-deployed pull requests of the base ref: those merged since the previous
        deployment whose merge commit was never seen on the branch (missed pushes)."""
        after = self.previous_finished_at
        up_to = own_pr.merged_at if own_pr is not None and own_pr.merged_at else self.finished_at
        timely = [pr for pr in candidates if pr.merged_at is not None and (after is None or pr.merged_at > after)]
        timely = [pr for pr in timely if pr.merged_at is not None and pr.merged_at <= up_to]
        if not timely:
            return []
        shas = [pr.merge_commit_sha for pr in timely if pr.merge_commit_sha]
        seen = [c.sha for c in self.changes.commits_by_sha(self.repo, shas) if c.branch == branch] if shas else []
        return [
            pr
            for pr in timely
            if pr.merge_commit_sha is None or not any(shas_match(pr.merge_commit_sha, s) for s in seen)
        ]

    def since_previous(
        self, own_pr: PullRequest | None, base_ref: str, *, head: Commit | None, capped: bool
    ) -> _Shipment:
        """By merge time: the pull requests merged into ``base_ref`` since the previous deployment
        up to the own pull request (or the deployment); only the own change when capped."""
        shipment = _Shipment(capped=capped)
        if head is not None:
            shipment.commits.append(head)
            shipment.marks.append(_mark(head))
        if own_pr is not None:
            shipment.pull_requests.append(own_pr)
        if not capped:
            up_to = own_pr.merged_at if own_pr is not None and own_pr.merged_at else self.finished_at
            merged = self.changes.pull_requests_merged(self.repo, base_ref, self.previous_finished_at, up_to)
            shipment.pull_requests.extend(merged)
        self.add_pull_request_commits(shipment)
        return shipment

    # -- rule 4 --------------------------------------------------------------------------------

    def repository_only(self) -> _Shipment | _Awaiting:
        shipment = self.by_timestamp()
        if shipment is None:
            return _Awaiting(frozenset(), self.repository)
        return shipment

    def by_timestamp(self) -> _Shipment | None:
        """Rule 4 (also the give-up fallback): None when the default branch is not known yet."""
        default = self.changes.default_branch(self.repo)
        if default is None:
            return None
        if self.previous is not None:
            merged = self.changes.pull_requests_merged(self.repo, default, self.previous_finished_at, self.finished_at)
            shipment = _Shipment(pull_requests=list(merged))
        else:
            # First deployment: only the last pull request merged before it (no history absorbed).
            since = _shift(self.finished_at, -HISTORY_CAP)
            merged = self.changes.pull_requests_merged(self.repo, default, since, self.finished_at)
            eligible = self.eligible(merged)
            shipment = _Shipment(pull_requests=eligible[-1:], capped=True)
        self.add_pull_request_commits(shipment)
        return shipment

    # -- shared --------------------------------------------------------------------------------

    def add_pull_request_commits(self, shipment: _Shipment) -> None:
        """The commits of the shipment's pull requests: linked ones and merge commits, in batches."""
        by_repo: dict[str, list[PullRequest]] = {}
        for pr in shipment.pull_requests:
            by_repo.setdefault(pr.repository, []).append(pr)
        for repo, prs in sorted(by_repo.items()):
            shipment.commits.extend(self.changes.commits_of_pull_requests(repo, sorted({pr.number for pr in prs})))
            known = {c.sha for c in shipment.fresh_commits} | {c.sha for c in shipment.commits}
            merge_shas = sorted({pr.merge_commit_sha for pr in prs if pr.merge_commit_sha} - known)
            if merge_shas:
                found = self.changes.commits_by_sha(repo, merge_shas)
                shipment.commits.extend(_one_per_sha(found))

    def eligible(self, pull_requests: Iterable[PullRequest]) -> list[PullRequest]:
        """Merged, attributable to this project, not yet deployed to the stream; order kept."""
        unique = _one_per_pull_request(pr for pr in pull_requests if pr.merged_at is not None)
        attributable = [pr for pr in unique if pr.attributable_to(self.deployment.project)]
        deployed = self.ledger.deployed_among([pr.change_id for pr in attributable]) if attributable else set()
        return [pr for pr in attributable if pr.change_id not in deployed]

    def outcome(self, state: AttributionState, mode: AttributionMode, shipment: _Shipment) -> AttributionOutcome:
        candidates = _one_per_pull_request(shipment.pull_requests)
        shipped_prs = self.eligible(candidates)
        shipped_keys = {(pr.repository, pr.number) for pr in shipped_prs}
        blocked = _PullRequestIndex(pr for pr in candidates if (pr.repository, pr.number) not in shipped_keys)
        belongs_to_blocked = blocked.owns

        fresh = [c for c in _one_per_sha(shipment.fresh_commits) if not belongs_to_blocked(c)]
        fresh_ids = {c.change_id for c in fresh}
        others = [
            c for c in _one_per_sha(shipment.commits) if c.change_id not in fresh_ids and not belongs_to_blocked(c)
        ]
        checked = others + (fresh if shipment.verify_fresh else [])
        deployed = self.ledger.deployed_among([c.change_id for c in checked]) if checked else set()
        fresh = [c for c in fresh if c.change_id not in deployed]
        commits = fresh + [c for c in others if c.change_id not in deployed]
        truncated = shipment.truncated
        if len(commits) > MAX_COMMITS:
            commits = sorted(commits, key=lambda c: (c.timestamp, c.position))[-MAX_COMMITS:]
            truncated = True
        starts = [c.timestamp for c in commits] + [pr.created_at for pr in shipped_prs]
        ranges: tuple[ShippedRange, ...] = ()
        if shipment.span is not None:
            shipped = {c.sha for c in commits if c.repository == shipment.span.repository}
            skipped = sorted({c.sha for c in shipment.fresh_commits} - shipped)
            if len(skipped) <= MAX_SKIPPED:  # else its commits are recorded one by one
                ranges = (shipment.span.model_copy(update={"skipped": tuple(skipped)}),)
        return AttributionOutcome(
            state=state,
            mode=mode,
            pull_requests=tuple(shipped_prs),
            commits=tuple(commits),
            change_started_at=min(starts, default=None),
            marks=tuple(shipment.marks),
            history_capped=shipment.capped,
            truncated=truncated,
            ranges=ranges,
        )


class _PullRequestIndex:
    """Which commits belong to a set of pull requests (linked number or merge commit), fast for
    thousands of commits: merge shas are bucketed by their first 7 characters."""

    def __init__(self, pull_requests: Iterable[PullRequest]) -> None:
        self.numbers: set[tuple[str, int]] = set()
        self.merges: dict[tuple[str, str], list[str]] = {}
        for pr in pull_requests:
            self.numbers.add((pr.repository, pr.number))
            if pr.merge_commit_sha is not None:
                bucket = (pr.repository, pr.merge_commit_sha[:MIN_SHA_LENGTH])
                self.merges.setdefault(bucket, []).append(pr.merge_commit_sha)

    def owns(self, commit: Commit) -> bool:
        if commit.pull_request is not None and (commit.repository, commit.pull_request) in self.numbers:
            return True
        bucket = self.merges.get((commit.repository, commit.sha[:MIN_SHA_LENGTH]), [])
        return any(shas_match(commit.sha, sha) for sha in bucket)


def _mark(commit: Commit) -> BranchMark:
    return BranchMark(repository=commit.repository, branch=commit.branch, position=commit.position)


def _first_of_each(items: Iterable[_T], key: Callable[[_T], Hashable]) -> list[_T]:
    """``items`` in their order, without those whose ``key`` an earlier one had."""
    seen: set[Hashable] = set()
    unique: list[_T] = []
    for item in items:
        identity = key(item)
        if identity not in seen:
            seen.add(identity)
            unique.append(item)
    return unique


def _one_per_sha(commits: Iterable[Commit]) -> list[Commit]:
    return _first_of_each(commits, lambda commit: (commit.repository, commit.sha))


def _one_per_pull_request(pull_requests: Iterable[PullRequest]) -> list[PullRequest]:
    return _first_of_each(pull_requests, lambda pr: (pr.repository, pr.number))


def _normalised_or_none(normalise: Callable[[str], str], value: str | None) -> str | None:
    """``value`` normalised, or None when there is none or ``normalise`` refuses it."""
    if value is None:
        return None
    try:
        return normalise(value)
    except ValueError:
        return None


def maybe_repository(value: str | None) -> str | None:
    """A repository name normalised, or None when there is none or it is not one."""
    return _normalised_or_none(normalise_repository, value)


def maybe_sha(value: str | None) -> str | None:
    """A commit sha normalised, or None when there is none or it is not one."""
    return _normalised_or_none(normalise_sha, value)


def _shift(stored: str, delta: timedelta) -> str:
    return format_instant(parse_stored(stored) + delta)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not accepted")
    return value.astimezone(UTC)
