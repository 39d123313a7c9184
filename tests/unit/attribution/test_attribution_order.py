"""Attempts out of finish order (issue 14's chaos test): a stream's changes ship as if in order.

An attempt that fails is retried later (the retry queue, the client's retry, the recompute's sweep),
so a stream's later deployment can be attempted before an earlier one. Found by tests/e2e/test_chaos.py:
the later deployment's branch mark swallowed the earlier one's changes (it shipped nothing, and its
lead time fell back to its release). A deployment now waits while the previous one owes an attribution.
"""

from __future__ import annotations

from dora_insights.domain.attribution import AttributionState, attribute
from dora_insights.domain.changes import InMemoryLedger
from dora_insights.domain.model import Attribution
from tests.unit.attribution.test_attribution import T0, Repo, at, deployment, labels, sha


def _history() -> Repo:
    repo = Repo()
    for n in range(1, 7):
        repo.push("main", f"c{n}", at(-1, hours=n))
    return repo


def test_a_deployment_waits_while_the_previous_one_has_not_been_attributed_yet() -> None:
    repo = _history()
    first = deployment("d0", at(0), commit_sha=sha("c3"))  # its attempt failed: no attribution stored yet
    second = deployment("d1", at(1), commit_sha=sha("c6"))
    outcome = attribute(second, first, repo.changes, InMemoryLedger(), T0)
    assert (outcome.state, outcome.awaiting_shas) == (AttributionState.PENDING, (sha("c3"),))


def test_once_the_previous_one_is_attributed_each_ships_its_own_range_whatever_the_order_of_attempts() -> None:
    repo = _history()
    ledger = InMemoryLedger()
    zero = deployment("d0", at(-0.5), commit_sha=sha("c1"), attribution=Attribution(state="Resolved"))
    first = deployment("d1", at(0), commit_sha=sha("c3"))
    second = deployment("d2", at(1), commit_sha=sha("c6"))
    # d2 is attempted first: it waits for d1 (before the fix it shipped c4..c6 and moved the mark
    # past c3, so d1 shipped nothing)
    assert attribute(second, first, repo.changes, ledger, T0).state is AttributionState.PENDING
    shipped_first = attribute(first, zero, repo.changes, ledger, T0)
    assert labels(shipped_first) == ["c2", "c3"]
    ledger.record(shipped_first.change_ids, shipped_first.marks)
    resolved = first.model_copy(update={"attribution": shipped_first.to_attribution(1, T0)})
    shipped_second = attribute(second, resolved, repo.changes, ledger, T0)
    assert labels(shipped_second) == ["c4", "c5", "c6"]


def test_a_previous_deployment_naming_no_code_or_attributed_as_nothing_does_not_hold_the_next_one() -> None:
    repo = _history()
    no_code = deployment("d0", at(0), repository=None)
    nothing = deployment("d0", at(0), commit_sha=sha("c3"), attribution=Attribution(state="None"))
    for previous in (no_code, nothing):
        outcome = attribute(deployment("d1", at(1), commit_sha=sha("c6")), previous, repo.changes, set(), T0)
        assert outcome.state is AttributionState.RESOLVED
