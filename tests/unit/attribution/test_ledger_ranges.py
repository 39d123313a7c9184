"""The stream ledger records a branch range's commits as one range (issue 17): the ledger reads it
answers must be the ones the old ledger, which recorded every shipped commit on its own, answered.

Property: on random histories (several branches, the same sha on two branches, pull requests with
linked feature commits, pull requests of another service, failed deployments, redeploys, ranges
past ``MAX_COMMITS``), a stream attributed with a ledger that records ``recorded_ids`` and
``ranges`` gives exactly the outcomes of one that records every ``change_id``, and both ledgers
answer ``deployed_among`` alike for every change of the history after every deployment."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from dora_insights.domain import attribution as engine
from dora_insights.domain.attribution import AttributionOutcome, AttributionState, ShippedRange, attribute
from dora_insights.domain.changes import BranchMark, Commit, InMemoryLedger, commit_change_id
from dora_insights.domain.model import Deployment, TaskState
from tests.unit.attribution.test_attribution import REPO, Repo, at, deployment, sha


class RangeLedger:
    """The range-recording ledger as ``dal.attribution.LedgerStore`` keeps it, over a ``Repo``: a commit
    id is deployed when recorded on its own or when one of its branch occurrences lies in a range."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.recorded: set[str] = set()
        self.ranges: list[ShippedRange] = []
        self.marks = InMemoryLedger()

    def deployed_among(self, change_ids: Collection[str]) -> frozenset[str]:
        covered = {c.change_id for c in self.repo.changes.commits if any(r.covers(c) for r in self.ranges)}
        return frozenset(c for c in change_ids if c in self.recorded or c in covered)

    def shipped_position(self, repository: str, branch: str) -> int | None:
        return self.marks.shipped_position(repository, branch)

    def record(self, outcome: AttributionOutcome) -> None:
        self.recorded |= outcome.recorded_ids
        self.ranges += outcome.ranges
        self.marks.record((), outcome.marks)


BRANCHES = ("main", "main", "main", "release", "feature")


@st.composite
def histories(draw: st.DrawFn) -> tuple[Repo, list[Deployment]]:
    repo = Repo()
    size = draw(st.integers(min_value=1, max_value=24))
    labels: list[str] = []
    for i in range(size):
        label = f"c{i}"
        branch = draw(st.sampled_from(BRANCHES))
        kind = draw(st.sampled_from(["plain", "plain", "pr", "pr-other-service", "linked"]))
        when = at(minutes=i + 1)
        if kind == "linked":  # a feature commit linked to a pull request merged later by a main commit
            number = 100 + i
            repo.push("feature", label, when, pull_request=number)
            repo.push("feature", f"{label}b", when, pull_request=number)
            repo.merged_pr(number, f"{label}m", at(minutes=i + 1.5), created=at(minutes=i - 20))
            labels += [label, f"{label}b", f"{label}m"]
        elif kind.startswith("pr"):
            services = ("other",) if kind == "pr-other-service" else None
            repo.merged_pr(i + 1, label, when, created=at(minutes=i - 30), services=services, branch=branch)
            labels.append(label)
        else:
            repo.push(branch, label, when)
            labels.append(label)
        if draw(st.integers(min_value=0, max_value=5)) == 0:  # the same commit lands on a second branch
            repo.push(draw(st.sampled_from(("main", "release"))), label, at(minutes=i + 1.75))
    count = draw(st.integers(min_value=1, max_value=8))
    deployments = []
    for k in range(count):
        state = draw(st.sampled_from([TaskState.SUCCESS] * 4 + [TaskState.FAILED]))
        target = draw(st.sampled_from(labels))
        deployments.append(deployment(f"d{k}", at(1, hours=k), commit_sha=sha(target), state=state))
    return repo, deployments


def at_clock(d: Deployment) -> datetime:
    return datetime.fromisoformat(d.finished_at.replace("Z", "+00:00"))


def every_change(repo: Repo) -> set[str]:
    return {c.change_id for c in repo.changes.commits} | {pr.change_id for pr in repo.changes.pull_requests}


@settings(max_examples=150, deadline=None)
@given(histories(), st.sampled_from([3, 5, engine.MAX_COMMITS]))
def test_a_ledger_of_ranges_answers_and_attributes_as_one_of_every_commit(
    history: tuple[Repo, list[Deployment]], max_commits: int
) -> None:
    repo, deployments = history
    old, new = InMemoryLedger(), RangeLedger(repo)
    previous: Deployment | None = None
    with mock.patch.object(engine, "MAX_COMMITS", max_commits):
        for d in deployments:
            before = attribute(d, previous, repo.changes, old, at_clock(d))
            after = attribute(d, previous, repo.changes, new, at_clock(d))
            assert after == before
            if before.state in (AttributionState.RESOLVED, AttributionState.GAVE_UP):
                old.record(before.change_ids, before.marks)
                new.record(after)
            everything = every_change(repo)
            assert new.deployed_among(everything) == old.deployed_among(everything)
            if d.is_successful:
                previous = d.model_copy(update={"attribution": before.to_attribution(1, at_clock(d))})


def test_a_range_stands_for_its_commits_but_not_the_skipped_ones() -> None:
    span = ShippedRange(repository=REPO, branch="main", after=2, up_to=5, skipped=(sha("c4"),))

    def commit(label: str, position: int, branch: str = "main") -> Commit:
        return Commit(repository=REPO, sha=sha(label), timestamp=at(), branch=branch, position=position)

    assert [span.covers(commit(f"c{p}", p)) for p in range(1, 7)] == [False, False, True, False, True, False]
    assert not span.covers(commit("c3", 3, branch="release"))


def test_a_5000_commit_range_is_recorded_as_one_entry_beside_its_pull_requests() -> None:
    repo = Repo()
    repo.push("main", "base", at(minutes=0))
    for n in range(1, 5001):
        repo.push("main", f"c{n}", at(minutes=n / 100))
    repo.pull_request(1, merge="c4000", created=at(minutes=1), merged=at(minutes=40))
    first = deployment("d0", at(1), commit_sha=sha("base"))
    second = deployment("d1", at(2), commit_sha=sha("c5000"))
    ledger = RangeLedger(repo)
    shipped_first = attribute(first, None, repo.changes, ledger, at_clock(first))
    ledger.record(shipped_first)
    previous = first.model_copy(update={"attribution": shipped_first.to_attribution(1, at_clock(first))})
    outcome = attribute(second, previous, repo.changes, ledger, at_clock(second))
    assert (outcome.state, len(outcome.commits), len(outcome.change_ids)) == (AttributionState.RESOLVED, 5000, 5001)
    assert outcome.ranges == (ShippedRange(repository=REPO, branch="main", after=1, up_to=5001),)
    assert outcome.recorded_ids == {"pr:acme/payments:1"}
    assert outcome.marks == (BranchMark(repository=REPO, branch="main", position=5001),)
    assert commit_change_id(REPO, sha("c1")) in outcome.change_ids
