"""Per-deployment figures of one stream (METRICS §2 outcome rules, §3 figures). Pure, no I/O.

Decisions where METRICS is silent (tests pin each one):

- Only completed deployments (``Success``, ``Failed``, ``TimedOut``) take part: "the deployment
  just before D" skips ``Canceled``, ``Executing`` and ``Queued`` ones, which get figures with
  every value None.
- Order: ``finished_at``, then ``started_at`` (a deployment without one sorts as if it started
  when it finished), then id.
- Release first-seen times are per project (a version names a release of one project).
- Lead time by the release rule: the release right after the one of S's previous successful
  deployment, unless D's own release is not later than that one (a redeploy or a rollback), in
  which case D's own release (the Octopus sample's second deployment). A version with no
  first-seen time, or no version at all, gives no lead time.
- Rollback by version (rule 2) compares commit sha, or version when a deployment has no sha; the
  "earlier" deployment is the latest earlier one with that key. ``rollback: true`` marks the
  deployment just before it; when the version rule also applies, both deployments are marked.
- ``Fixes`` names a deployment id, else a version: it marks the latest deployment before the
  fixer with that id (first) or version. A fix that names nothing earlier in the stream marks
  nothing (but the fixer is still a rework deployment).
- Failure events that name their cause (rule 4): a ``deployment_id`` names that deployment,
  whatever its project and environment; else a ``commit_sha`` (compared case-insensitively, a
  prefix of at least 7 characters matches) names the first successful deployment of a stream of
  the failure's project and environment that shipped the commit (its own sha, a merge commit
  sha, a commit its attribution lists on any page, or the merge commit of a pull request it lists);
  else a ``version`` the first successful
  deployment of such a stream with that version. The failure may start any time after it. A cause
  that matches no deployment charges none (rule 5 is for failures that name no cause).
- Failure events that name no cause (rule 5): D is marked when ``D.completed <= failure.started
  <= D.completed + window`` and D is the stream's latest successful deployment completed at or
  before the start. Each stream of the project and environment (channel, tenant) marks its own
  latest deployment.
- Every change failure keeps its reasons (:class:`ChangeFailureReason`: the rule and the deployment
  or failure event that triggered it), in rule order; every rework deployment its
  (:class:`ReworkReason`).
- Corrections (issue 16). A change-failure override (``Deployment.change_failure_override``) wins over
  rules 1–5 and is kept apart: ``change_failure`` is the effective value, ``change_failure_computed``
  what the rules say, ``change_failure_override`` the override; its reason is rule 0 (``override``,
  the deployment itself), listed first, before the rules' own reasons (listed even when the override
  is false, so the number stays explainable). Rework follows the effective value.
- A remediation (``Deployment.remediation``, set on the failed deployment D, naming the deployment R
  that remediated it by id, or by version: the first completed deployment after D with it) charges D
  with rule 2 (``rollback``) or rule 3 (``rollforward``), R the cause; R is then a rollback (left out
  of the change-failure rate's denominator, rework ``rollback``) or a fix (rework ``fix``). A
  remediation naming no later deployment of the stream still charges D, with no cause.
"""

from __future__ import annotations

import dataclasses
import hashlib
from bisect import bisect_right
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
from typing import Any

from dora_insights.domain.changes import MAX_SHA_LENGTH, MIN_SHA_LENGTH, shas_match
from dora_insights.domain.model import (
    LEAD_TIME_FROM_COMMITS,
    LEAD_TIME_FROM_RELEASE,
    ChangeFailureReasonOut,
    Deployment,
    FailureEvent,
    Figures,
    RemediationType,
    ReworkReasonOut,
    TaskState,
)
from dora_insights.domain.times import format_instant, parse_stored

DEFAULT_FAILURE_WINDOW = timedelta(hours=24)

# The version of the rules of this module as stored figures hold them. Bump it with any change that gives
# one history other figures: tests/unit/domain/test_figures_format.py keeps each version's digest of a fixed
# history and fails until it is bumped (and the new digest recorded). A space records the version its
# figures were computed with (``SpaceRecord.figures_format``); the recompute's first visit of a space after
# an upgrade marks every stream of it, so all its figures follow one set of rules again within two schedule
# periods, not only the streams that happen to get a new deployment (docs/recompute.md, "Upgrades").
FIGURES_FORMAT = 1

# METRICS §2 change-failure rules, by number (0: a correction's override, issue 16).
OVERRIDE = 0  # a correction set change_failure (true or false): it wins over the rules
DEPLOYMENT_FAILURE = 1  # D is a deployment failure
ROLLED_BACK = 2  # a later deployment rolled D back
FIXED_LATER = 3  # a later deployment declares it fixes D
ROOT_CAUSE = 4  # a failure event names D as its cause
FAILURE_WITHIN_WINDOW = 5  # a failure event naming no cause started within the window after D
RULE_NAMES = {
    OVERRIDE: "override",
    DEPLOYMENT_FAILURE: "deployment_failure",
    ROLLED_BACK: "rolled_back",
    FIXED_LATER: "fixed_later",
    ROOT_CAUSE: "root_cause_of_failure",
    FAILURE_WITHIN_WINDOW: "failure_within_window",
}

# Why a deployment is rework (METRICS §2).
REWORK_ROLLBACK = "rollback"  # it is a rollback
REWORK_FIX = "fix"  # it declares ``Fixes``
REWORK_AFTER_CHANGE_FAILURE = "first_success_after_change_failure"


@dataclass(frozen=True, slots=True)
class ChangeFailureReason:
    """Why a deployment is a change failure: the rule (1–5, METRICS §2) and what triggered it, the
    deployment (rules 1–3: itself, the rollback, the fixer) or the failure event (rules 4–5)."""

    rule: int
    deployment_id: str | None = None
    failure_id: str | None = None


@dataclass(frozen=True, slots=True)
class ReworkReason:
    """Why a deployment is rework: ``reason`` (a ``REWORK_*`` value) and the deployment it concerns
    (the change failure a rollback or a fix marks, the change failure a first success follows)."""

    reason: str
    deployment_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeploymentFigures:
    """The figures of one deployment (METRICS §3) and the outcome flags the aggregates need (§2, §4).

    Field names match :class:`dora_insights.domain.model.Figures` where they overlap. Durations
    are seconds. ``change_failure``/``rework``/``rollback`` are None for deployments that are
    not completed.
    """

    deployment_id: str
    release_version: str | None
    state: TaskState
    had_guided_failure: bool
    completed_at: datetime
    completed: bool
    successful: bool
    deployment_failure: bool
    lead_time_seconds: float | None = None
    lead_time_source: str | None = None
    lead_time_from_version: str | None = None
    lead_time_negative: bool = False
    time_since_previous_success_seconds: float | None = None
    previous_success_id: str | None = None
    time_to_recovery_seconds: float | None = None
    deployments_until_recovery: int | None = None
    recovered_from_failed_id: str | None = None
    recovered_from_failed_version: str | None = None
    change_failure: bool | None = None
    rework: bool | None = None
    rollback: bool | None = None
    duration_seconds: float | None = None
    change_failure_computed: bool | None = None  # what rules 1–5 say (``change_failure`` is the effective value)
    change_failure_override: bool | None = None  # a correction's override (rule 0), None when there is none
    change_failure_reasons: tuple[ChangeFailureReason, ...] = ()
    rework_reasons: tuple[ReworkReason, ...] = ()

    @property
    def guided_failure_success(self) -> bool:
        """``Success`` with a guided failure (Octopus ``SuccessfulButHadGuidedFailure``)."""
        return self.state is TaskState.SUCCESS and self.had_guided_failure

    def to_model(self) -> Figures:
        """The stored :class:`Figures` of the deployment."""
        explained = bool(self.change_failure) or self.change_failure_override is not None
        first_failure = self.change_failure_reasons[0] if explained and self.change_failure_reasons else None
        return Figures(
            lead_time_seconds=self.lead_time_seconds,
            lead_time_source=self.lead_time_source,
            lead_time_from_version=self.lead_time_from_version,
            time_since_previous_success_seconds=self.time_since_previous_success_seconds,
            previous_success_id=self.previous_success_id,
            time_to_recovery_seconds=self.time_to_recovery_seconds,
            deployments_until_recovery=self.deployments_until_recovery,
            recovered_from_failed_id=self.recovered_from_failed_id,
            change_failure=self.change_failure,
            change_failure_computed=self.change_failure_computed,
            change_failure_override=self.change_failure_override,
            change_failure_rule=first_failure.rule if first_failure else None,
            change_failure_cause=(first_failure.deployment_id or first_failure.failure_id) if first_failure else None,
            change_failure_reasons=[
                ChangeFailureReasonOut(
                    rule=r.rule, name=RULE_NAMES[r.rule], deployment_id=r.deployment_id, failure_id=r.failure_id
                )
                for r in self.change_failure_reasons
            ]
            if explained
            else None,
            rework=self.rework,
            rework_reason=self.rework_reasons[0].reason if self.rework and self.rework_reasons else None,
            rework_reasons=[
                ReworkReasonOut(reason=r.reason, deployment_id=r.deployment_id) for r in self.rework_reasons
            ]
            if self.rework
            else None,
            lead_time_negative=self.lead_time_negative if self.lead_time_seconds is not None else None,
            duration_seconds=self.duration_seconds,
        )


def stream_order_key(deployment: Deployment) -> tuple[str, str, str]:
    """Sort key of a stream (METRICS §1): completed time, start time, id (stored strings sort by time)."""
    return (deployment.finished_at, deployment.started_at or deployment.finished_at, deployment.id)


def order_stream(deployments: Iterable[Deployment]) -> list[Deployment]:
    """A stream's deployments in stream order, whatever their arrival order."""
    return sorted(deployments, key=stream_order_key)


def release_first_seen(
    deployments: Iterable[Deployment],
    release_created: Iterable[tuple[str, str, datetime]] = (),
) -> dict[str, dict[str, datetime]]:
    """First-seen time of every release in a space: project id -> version -> instant (METRICS §3).

    The earliest of: ``started_at`` (``finished_at`` when absent) of any deployment of the
    version, in any environment and state; the deployment's ``release_created_at``; and the
    explicit ``(project_id, version, created_at)`` triples in ``release_created``.
    """
    seen: dict[str, dict[str, datetime]] = {}

    def note(project_id: str, version: str, at: datetime) -> None:
        versions = seen.setdefault(project_id, {})
        current = versions.get(version)
        if current is None or at < current:
            versions[version] = at

    for deployment in deployments:
        if deployment.version is None:
            continue
        note(deployment.project_id, deployment.version, parse_stored(deployment.started_at or deployment.finished_at))
        if deployment.release_created_at is not None:
            note(deployment.project_id, deployment.version, parse_stored(deployment.release_created_at))
    for project_id, version, created_at in release_created:
        note(project_id, version, created_at)
    return seen


def release_horizon(deployments: Iterable[Deployment]) -> datetime | None:
    """The latest instant a stream's deployments give their versions in :func:`release_first_seen`
    (``started_at``, else ``finished_at``); None when none has a version.

    A stream's figures read only the releases first seen up to it: the release rule (METRICS §3) reads
    the first-seen times of a deployment's own version and its previous success's version, and the
    order of the releases between them, all first seen no later than the deployment's own version,
    which its own deployment gives an instant no later than the horizon."""
    instants = [parse_stored(d.started_at or d.finished_at) for d in deployments if d.version is not None]
    return max(instants) if instants else None


@dataclass(frozen=True, slots=True)
class ReleasePrefixes:
    """A project's releases in first-seen order (as the release rule sorts them), with a digest of every
    prefix: :meth:`at` names the releases first seen up to a stream's :func:`release_horizon` and their
    instants, all that the stream's figures read of them. Two streams' figures computed under equal
    digests read the same releases; a digest that moved means the figures may have."""

    instants: tuple[datetime, ...]
    digests: tuple[str, ...]  # digests[n]: the first n releases; one more than ``instants``

    @classmethod
    def of(cls, first_seen: Mapping[str, datetime]) -> ReleasePrefixes:
        """The prefixes of one project's ``version -> first-seen instant``."""
        ordered = sorted(first_seen.items(), key=lambda item: (item[1], item[0]))
        running = hashlib.blake2b(digest_size=16)
        digests = [running.hexdigest()]
        for version, instant in ordered:
            running.update(f"{version}\x1f{format_instant(instant)}\x1e".encode())
            digests.append(running.hexdigest())
        return cls(tuple(instant for _, instant in ordered), tuple(digests))

    def at(self, horizon: datetime | None) -> str:
        """The digest of the releases first seen at or before ``horizon``; ``""`` for None (a stream
        without versions reads none)."""
        if horizon is None:
            return ""
        return self.digests[bisect_right(self.instants, horizon)]


def time_to_restore(event: FailureEvent) -> timedelta | None:
    """TimeToRestore of a failure event (METRICS §3): ``finished_at - started_at``; None while open."""
    if event.finished_at is None:
        return None
    return parse_stored(event.finished_at) - parse_stored(event.started_at)


def _full_shas(completed: Sequence[Deployment]) -> dict[str, str]:
    """A stream's abbreviated commit shas (a CI's ``git rev-parse --short``, whose length grows with the
    repository; GitLab's ``short_sha`` when its hook gives no full one) to the longest sha of the stream
    they abbreviate: one commit deployed under several spellings is one commit (rule 2 took it for a
    rollback to another commit, or missed a rollback spelt otherwise). The longest is taken only when
    every sha of the stream the short one abbreviates abbreviates it too (one commit); a short sha that
    abbreviates none, or two commits, stays as it is."""
    shas = sorted({d.commit_sha for d in completed if d.commit_sha})
    found: dict[str, str] = {}
    for at, short in enumerate(shas):
        if len(short) >= MAX_SHA_LENGTH:
            continue
        longer = []  # the stream's shas extending ``short``: they follow it in sorted order
        for sha in shas[at + 1 :]:
            if not sha.startswith(short):
                break
            longer.append(sha)
        if not longer:
            continue
        longest = max(longer, key=len)
        if all(longest.startswith(sha) for sha in longer):
            found[short] = longest
    return found


def _rollback_key(deployment: Deployment, full_shas: Mapping[str, str]) -> str | None:
    """What a rollback redeploys: the commit sha (its longest spelling in the stream), or the version when
    there is no sha."""
    if deployment.commit_sha:
        return "sha:" + full_shas.get(deployment.commit_sha, deployment.commit_sha)
    if deployment.version:
        return "version:" + deployment.version
    return None


def _release_lead(
    deployment: Deployment,
    previous_success: Deployment | None,
    releases: Sequence[str],
    positions: Mapping[str, int],
) -> str | None:
    """The version lead time is measured from (METRICS §3, release rule); None when unknown."""
    own = deployment.version
    if own is None or own not in positions:
        return None
    previous_version = previous_success.version if previous_success is not None else None
    if previous_version is None or previous_version not in positions:
        return own
    previous_position = positions[previous_version]
    if positions[own] <= previous_position:
        return own
    return releases[previous_position + 1]


def _seconds(delta: timedelta) -> float:
    return delta.total_seconds()


@dataclass(frozen=True, slots=True)
class _Lead:
    seconds: float
    source: str
    version: str | None


def _lead_time(
    deployment: Deployment,
    done: datetime,
    change_start: datetime | None,
    previous_success: Deployment | None,
    releases: Sequence[str],
    positions: Mapping[str, int],
    first_seen: Mapping[str, datetime],
) -> _Lead | None:
    """LeadTime of a successful deployment (METRICS §3): from its change start, else by the release rule."""
    if change_start is not None:
        return _Lead(_seconds(done - change_start), LEAD_TIME_FROM_COMMITS, None)
    version = _release_lead(deployment, previous_success, releases, positions)
    if version is None:
        return None
    return _Lead(_seconds(done - first_seen[version]), LEAD_TIME_FROM_RELEASE, version)


def compute_stream_figures(
    deployments: Iterable[Deployment],
    *,
    failure_events: Iterable[FailureEvent] = (),
    failure_window: timedelta = DEFAULT_FAILURE_WINDOW,
    release_first_seen: Mapping[str, datetime] | None = None,
    change_starts: Mapping[str, datetime | None] | None = None,
    shipped_beyond: Mapping[str, Collection[str]] | None = None,
) -> list[DeploymentFigures]:
    """Figures of every deployment of one stream, in stream order (METRICS §2–3).

    ``release_first_seen`` maps the stream's project's versions to their first-seen instant
    (:func:`release_first_seen`, across the space). ``change_starts`` maps deployment ids to
    the attribution's change start (``Commits`` lead time); a missing or None entry falls back
    to the release rule. ``failure_events`` are filtered to the stream's project and environment.
    ``shipped_beyond`` maps deployment ids to the commits their attribution's further pages list (read
    for those :func:`pages_wanted` names; rule 4).

    Only completed deployments take part, in three phases over them: change failures and rollbacks
    (:func:`_change_failures`), rework (:func:`_rework`), then the figures of each in one pass
    (:func:`_completed_figures`). The deployments not completed get figures with no values.
    """
    ordered = order_stream(deployments)
    completed = [d for d in ordered if d.is_completed]
    finished = [parse_stored(d.finished_at) for d in completed]
    outcomes = _change_failures(completed, finished, failure_events, failure_window, shipped_beyond or {})
    rework = _rework(completed, outcomes)
    computed = _completed_figures(completed, finished, outcomes, rework, release_first_seen or {}, change_starts or {})
    return _in_stream_order(ordered, computed)


@dataclass(slots=True)
class _Outcomes:
    """Phase 1's result: per completed deployment, its change-failure reasons (rule 0 first when an
    override is set), whether the rules make it a change failure (``computed``) and whether it is one
    (``failed``: the override when set, else ``computed``), and whether it is a rollback; per rollback
    or fixer, the deployment it marks."""

    reasons: list[list[ChangeFailureReason]]
    rollback: list[bool]
    rolled_back: dict[int, int]  # rollback index -> the change failure it marks
    fixed: dict[int, int]  # fixer index -> the deployment it fixes
    computed: list[bool] = dataclasses.field(default_factory=list)
    failed: list[bool] = dataclasses.field(default_factory=list)

    def charge(self, index: int, reason: ChangeFailureReason) -> None:
        if reason not in self.reasons[index]:
            self.reasons[index].append(reason)


def _change_failures(
    completed: Sequence[Deployment],
    finished: Sequence[datetime],
    failure_events: Iterable[FailureEvent],
    failure_window: timedelta,
    shipped_beyond: Mapping[str, Collection[str]],
) -> _Outcomes:
    """Phase 1 (METRICS §2): why each completed deployment is a change failure, and which are rollbacks.

    A change failure is a deployment failure (rule 1), the deployment a rollback replaces (2), one
    a later ``Fixes`` names (3), the cause a failure event names (4), or the latest successful
    deployment before a failure event of the stream's project and environment that names no cause,
    within ``failure_window`` (5).
    """
    outcomes = _Outcomes(
        reasons=[[ChangeFailureReason(DEPLOYMENT_FAILURE, d.id)] if d.is_deployment_failure else [] for d in completed],
        rollback=[False] * len(completed),
        rolled_back={},
        fixed={},
    )
    index_of = {d.id: i for i, d in enumerate(completed)}
    last_at_key: dict[str, int] = {}
    last_at_version: dict[str, int] = {}
    previous_key: str | None = None
    full_shas = _full_shas(completed)
    for i, deployment in enumerate(completed):
        key = _rollback_key(deployment, full_shas)
        if deployment.rollback:
            outcomes.rollback[i] = True
        if i > 0:
            earlier = last_at_key.get(key) if key is not None else None
            if key is not None and key != previous_key and earlier is not None:
                outcomes.rollback[i] = True
                outcomes.rolled_back[i] = earlier + 1
                outcomes.charge(earlier + 1, ChangeFailureReason(ROLLED_BACK, deployment.id))
            if deployment.rollback:
                outcomes.rolled_back.setdefault(i, i - 1)
                outcomes.charge(i - 1, ChangeFailureReason(ROLLED_BACK, deployment.id))
        if deployment.fixes:
            target = index_of.get(deployment.fixes)
            if target is None or target >= i:
                target = last_at_version.get(deployment.fixes)
            if target is not None:
                outcomes.fixed[i] = target
                outcomes.charge(target, ChangeFailureReason(FIXED_LATER, deployment.id))
        if key is not None:
            last_at_key[key] = i
        if deployment.version is not None:
            last_at_version[deployment.version] = i
        previous_key = key
    _remediations(completed, index_of, outcomes)
    if completed:
        _failure_events(completed, finished, index_of, failure_events, failure_window, outcomes, shipped_beyond)
    for i, found in enumerate(outcomes.reasons):
        outcomes.computed.append(bool(found))
        override = completed[i].change_failure_override
        outcomes.failed.append(bool(found) if override is None else override)
        if override is not None:
            found.append(ChangeFailureReason(OVERRIDE, completed[i].id))
        if len(found) > 1:
            found.sort(key=lambda r: r.rule)
    return outcomes


def _remediations(completed: Sequence[Deployment], index_of: Mapping[str, int], outcomes: _Outcomes) -> None:
    """Corrections naming the deployment that remediated a failed one (module docstring): the failed
    one is charged with rule 2 (rollback) or 3 (rollforward), the remediation marked as a rollback or
    a fix of it."""
    for i, deployment in enumerate(completed):
        remediation = deployment.remediation
        if remediation is None:
            continue
        target: int | None = None
        if remediation.id is not None:
            named = index_of.get(remediation.id)
            target = named if named is not None and named > i else None
        elif remediation.version is not None:
            target = next(
                (j for j in range(i + 1, len(completed)) if completed[j].version == remediation.version), None
            )
        cause = completed[target].id if target is not None else None
        if remediation.type is RemediationType.ROLLBACK:
            outcomes.charge(i, ChangeFailureReason(ROLLED_BACK, cause))
            if target is not None:
                outcomes.rollback[target] = True
                outcomes.rolled_back.setdefault(target, i)
        else:
            outcomes.charge(i, ChangeFailureReason(FIXED_LATER, cause))
            if target is not None:
                outcomes.fixed.setdefault(target, i)


def _failure_events(
    completed: Sequence[Deployment],
    finished: Sequence[datetime],
    index_of: Mapping[str, int],
    failure_events: Iterable[FailureEvent],
    failure_window: timedelta,
    outcomes: _Outcomes,
    shipped_beyond: Mapping[str, Collection[str]],
) -> None:
    """Rules 4 and 5: the deployments failure events charge (``index_of``: position by deployment id;
    ``shipped_beyond``: the commits of attributions' further pages, by deployment id)."""
    project_id = completed[0].project_id
    environment_id = completed[0].environment_id
    success_indices = [i for i, d in enumerate(completed) if d.is_successful]
    success_times = [finished[i] for i in success_indices]
    for event in failure_events:
        if event.deployment_id is not None:
            cause = index_of.get(event.deployment_id)
            if cause is not None:
                outcomes.charge(cause, ChangeFailureReason(ROOT_CAUSE, failure_id=event.id))
            continue
        if project_id not in event.project_ids or event.environment_id != environment_id:
            continue
        if event.commit_sha is not None or event.version is not None:
            cause = _named_cause(completed, success_indices, event, shipped_beyond)
            if cause is not None:
                outcomes.charge(cause, ChangeFailureReason(ROOT_CAUSE, failure_id=event.id))
            continue
        started = parse_stored(event.started_at)
        position = bisect_right(success_times, started) - 1
        if position >= 0 and started - success_times[position] <= failure_window:
            outcomes.charge(success_indices[position], ChangeFailureReason(FAILURE_WITHIN_WINDOW, failure_id=event.id))


def _named_cause(
    completed: Sequence[Deployment],
    success_indices: Sequence[int],
    event: FailureEvent,
    shipped_beyond: Mapping[str, Collection[str]],
) -> int | None:
    """The first successful deployment that shipped the failure's commit (else, with no commit named,
    that has its version); None when none did."""
    if event.commit_sha is not None:
        sha = event.commit_sha.lower()
        for i in success_indices:
            deployment = completed[i]
            shipped = chain(_shipped(deployment), shipped_beyond.get(deployment.id, ()))
            if any(_same_commit(sha, commit) for commit in shipped):
                return i
        return None
    for i in success_indices:
        if completed[i].version == event.version:
            return i
    return None


def _shipped(deployment: Deployment) -> Iterable[str]:
    """The commits a deployment is known to have shipped without reading more: its own, its merge
    commits, the commits of its attribution's first page and the merge commits of the pull requests
    that page lists."""
    if deployment.commit_sha:
        yield deployment.commit_sha
    yield from deployment.merge_commit_shas or ()
    if deployment.attribution is not None:
        yield from deployment.attribution.commits
        yield from merge_commits(deployment.attribution.pull_requests)


def merge_commits(pull_requests: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The merge commits of an attribution page's pull requests (those that have one)."""
    for pr in pull_requests:
        if pr.get("merge_commit_sha"):
            yield str(pr["merge_commit_sha"])


def pages_wanted(deployments: Iterable[Deployment], failure_events: Iterable[FailureEvent]) -> list[Deployment]:
    """The successful deployments of one stream whose attribution's further pages rule 4 needs (for
    ``compute_stream_figures``' ``shipped_beyond``): for each failure event of the stream's project and
    environment that names a commit (and no deployment), those with more than one page before the first
    success whose own shas or first page show it (all of them when none does). One of those may be the
    first to have shipped it: a later redeploy of that commit shows it without having shipped it. Empty in
    the common case, so a recompute reads nothing more."""
    successful = [d for d in order_stream(deployments) if d.is_completed and d.is_successful]
    paged = {d.id for d in successful if d.attribution is not None and d.attribution.pages > 1}
    if not paged:
        return []
    project_id, environment_id = successful[0].project_id, successful[0].environment_id
    shown = [list(_shipped(d)) for d in successful]
    wanted: set[str] = set()
    for event in failure_events:
        if event.deployment_id is not None or event.commit_sha is None:
            continue
        if project_id not in event.project_ids or event.environment_id != environment_id:
            continue
        sha = event.commit_sha.lower()
        first = next(
            (n for n, commits in enumerate(shown) if any(_same_commit(sha, c) for c in commits)), len(successful)
        )
        wanted.update(d.id for d in successful[:first] if d.id in paged)
    return [d for d in successful if d.id in wanted]


def _same_commit(named: str, shipped: str) -> bool:
    """``named`` (lower case) and ``shipped`` are the same commit: equal, or one an abbreviation of
    the other (``changes.shas_match``) of at least ``MIN_SHA_LENGTH`` characters."""
    shipped = shipped.lower()
    return named == shipped or (min(len(named), len(shipped)) >= MIN_SHA_LENGTH and shas_match(named, shipped))


def _rework(completed: Sequence[Deployment], outcomes: _Outcomes) -> list[list[ReworkReason]]:
    """Phase 2 (METRICS §2): why each deployment is rework (no reasons: it is not): a rollback, a fix,
    or the first success after a change failure."""
    rework: list[list[ReworkReason]] = []
    pending_failure: int | None = None
    for i, deployment in enumerate(completed):
        found: list[ReworkReason] = []
        if outcomes.rollback[i]:
            marked = outcomes.rolled_back.get(i)
            found.append(ReworkReason(REWORK_ROLLBACK, completed[marked].id if marked is not None else None))
        if deployment.fixes or i in outcomes.fixed:
            fixed = outcomes.fixed.get(i)
            found.append(ReworkReason(REWORK_FIX, completed[fixed].id if fixed is not None else None))
        if deployment.is_successful and pending_failure is not None:
            found.append(ReworkReason(REWORK_AFTER_CHANGE_FAILURE, completed[pending_failure].id))
            pending_failure = None
        if outcomes.failed[i]:
            pending_failure = i
        rework.append(found)
    return rework


def _completed_figures(
    completed: Sequence[Deployment],
    finished: Sequence[datetime],
    outcomes: _Outcomes,
    rework: Sequence[Sequence[ReworkReason]],
    first_seen: Mapping[str, datetime],
    starts: Mapping[str, datetime | None],
) -> dict[str, DeploymentFigures]:
    """Phase 3 (METRICS §3): the figures of each completed deployment, by deployment id, in one pass.

    The pass carries the previous successful deployment (lead time by the release rule, time since
    the previous success) and the first failure of the current run of failures (recovery).
    """
    releases = sorted(first_seen, key=lambda version: (first_seen[version], version))
    positions = {version: index for index, version in enumerate(releases)}
    computed: dict[str, DeploymentFigures] = {}
    previous_success: int | None = None
    failure_run_start: int | None = None
    for i, deployment in enumerate(completed):
        done = finished[i]
        lead: _Lead | None = None
        since: float | None = None
        recovery: int | None = None
        if deployment.is_successful:
            lead = _lead_time(
                deployment,
                done,
                starts.get(deployment.id),
                completed[previous_success] if previous_success is not None else None,
                releases,
                positions,
                first_seen,
            )
            if previous_success is not None:
                since = _seconds(done - finished[previous_success])
            recovery = failure_run_start
        previous = completed[previous_success] if since is not None and previous_success is not None else None
        first_failure = completed[recovery] if recovery is not None else None
        computed[deployment.id] = DeploymentFigures(
            deployment_id=deployment.id,
            release_version=deployment.version,
            state=deployment.state,
            had_guided_failure=deployment.had_guided_failure,
            completed_at=done,
            completed=True,
            successful=deployment.is_successful,
            deployment_failure=deployment.is_deployment_failure,
            lead_time_seconds=lead.seconds if lead else None,
            lead_time_source=lead.source if lead else None,
            lead_time_from_version=lead.version if lead else None,
            lead_time_negative=lead.seconds < 0 if lead else False,
            time_since_previous_success_seconds=since,
            previous_success_id=previous.id if previous else None,
            time_to_recovery_seconds=_seconds(done - finished[recovery]) if recovery is not None else None,
            deployments_until_recovery=i - recovery if recovery is not None else None,
            recovered_from_failed_id=first_failure.id if first_failure else None,
            recovered_from_failed_version=first_failure.version if first_failure else None,
            change_failure=outcomes.failed[i],
            change_failure_computed=outcomes.computed[i],
            change_failure_override=deployment.change_failure_override,
            rework=bool(rework[i]),
            rollback=outcomes.rollback[i],
            duration_seconds=_seconds(done - parse_stored(deployment.started_at)) if deployment.started_at else None,
            change_failure_reasons=tuple(outcomes.reasons[i]),
            rework_reasons=tuple(rework[i]),
        )
        if deployment.is_successful:
            previous_success = i
            failure_run_start = None
        elif failure_run_start is None:
            failure_run_start = i
    return computed


def _in_stream_order(
    ordered: Sequence[Deployment], computed: Mapping[str, DeploymentFigures]
) -> list[DeploymentFigures]:
    """Every deployment in stream order: the figures of the completed ones, no values for the others."""
    return [computed[d.id] if d.id in computed else _not_completed(d) for d in ordered]


def _not_completed(deployment: Deployment) -> DeploymentFigures:
    """The figures of a deployment that is not completed: what it is, and no values."""
    return DeploymentFigures(
        deployment_id=deployment.id,
        release_version=deployment.version,
        state=deployment.state,
        had_guided_failure=deployment.had_guided_failure,
        completed_at=parse_stored(deployment.finished_at),
        completed=False,
        successful=False,
        deployment_failure=False,
        change_failure_override=deployment.change_failure_override,
    )


# --- stored form ----------------------------------------------------------------------------
# Always a bool: stored only when True.
_FLAGS = ("had_guided_failure", "completed", "successful", "deployment_failure", "lead_time_negative")
# None while a deployment is not completed, else a bool.
_OUTCOMES = ("change_failure", "rework", "rollback")
# Tuples of reasons, stored as lists of their fields (left out when empty).
_REASONS = ("change_failure_reasons", "rework_reasons")


def figures_record(figures: DeploymentFigures) -> dict[str, Any]:
    """A deployment's figures as stored (JSON-friendly): None values and False flags left out."""
    record = dataclasses.asdict(figures)
    record["completed_at"] = format_instant(figures.completed_at)
    record["state"] = figures.state.value
    for name in _REASONS:  # compact: [rule, deployment, failure] / [reason, deployment]
        record[name] = [list(dataclasses.astuple(r)) for r in getattr(figures, name)] or None
    if figures.change_failure_override is None:  # the rules decide: computed is change_failure
        record["change_failure_computed"] = None
    return {k: v for k, v in record.items() if v is not None and not (v is False and k in _FLAGS)}


def figures_of(record: Mapping[str, Any]) -> DeploymentFigures:
    """The inverse of :func:`figures_record` (also of records that left out False outcomes)."""
    values = dict(record)
    values["completed_at"] = parse_stored(values["completed_at"])
    values["state"] = TaskState(values["state"])
    for flag in _FLAGS:
        values.setdefault(flag, False)
    values.setdefault("release_version", None)
    for outcome in _OUTCOMES:
        values.setdefault(outcome, False if values["completed"] else None)
    values.setdefault("change_failure_computed", values["change_failure"])
    values["change_failure_reasons"] = tuple(ChangeFailureReason(*r) for r in values.get("change_failure_reasons", ()))
    values["rework_reasons"] = tuple(ReworkReason(*r) for r in values.get("rework_reasons", ()))
    return DeploymentFigures(**values)
