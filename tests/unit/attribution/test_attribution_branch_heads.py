"""Rule 3 (METRICS §5) in a stream that deploys branch heads: the previous deployment's sha bounds
``git log prev..sha`` on the deployed branch only when the previous deployment's shipment lay on that
branch. Otherwise (it deployed another branch, whose sha a merge later placed on this one) the stream's
mark on the branch bounds the range and the ledger leaves out what other branches' deployments shipped."""

from __future__ import annotations

from dora_insights.domain.attribution import AttributionState, attribute
from dora_insights.domain.changes import BranchMark, InMemoryLedger, commit_change_id
from dora_insights.domain.model import Attribution
from tests.unit.attribution.test_attribution import REPO, T0, Repo, at, deployment, labels, numbers, sha


def _shipped_on(branch: str, position: int) -> Attribution:
    mark = BranchMark(repository=REPO, branch=branch, position=position)
    return Attribution(state="Resolved", marks=[mark.model_dump(mode="json")])


def _staging() -> tuple[Repo, InMemoryLedger, str]:
    """main = 1,2 deployed; branch a = 3 and branch b = 5 deployed (their heads); then both merge into
    main (merge commits 4 and 6): main = 1,2,3,4,5,6. Answers the repo, the stream's ledger and b's branch."""
    repo = Repo()
    main_two = [repo.push("main", str(n), at(-1, hours=n)) for n in (1, 2)][-1]
    on_a = repo.push("a", "3", at(-1, hours=3))
    on_b = repo.push("b", "5", at(-1, hours=5))
    ledger = InMemoryLedger(
        deployed=[commit_change_id(REPO, sha(n)) for n in ("1", "2", "3", "5")],
        marks=[BranchMark(repository=REPO, branch=c.branch, position=c.position) for c in (main_two, on_a, on_b)],
    )
    for n in ("3", "4", "5", "6"):
        repo.push("main", n, at(-1, hours=int(n) + 6))
    repo.pull_request(1, merge="4", created=at(-1, hours=2), merged=at(-1, hours=10))
    repo.pull_request(2, merge="6", created=at(-1, hours=4), merged=at(-1, hours=12))
    return repo, ledger, on_b.branch


def test_a_previous_deployment_of_another_branch_does_not_bound_the_range() -> None:
    repo, ledger, branch_b = _staging()
    previous = deployment("on-b", at(-0.5), commit_sha=sha("5"), attribution=_shipped_on(branch_b, 1))
    outcome = attribute(deployment("merged", at(0), commit_sha=sha("6")), previous, repo.changes, ledger, T0)
    assert outcome.state is AttributionState.RESOLVED
    assert numbers(outcome) == [1, 2]  # pull request 1 was never shipped to the stream
    assert sorted(labels(outcome)) == ["4", "6"]  # 3 and 5 went with the branch deployments
    (span,) = outcome.ranges
    assert (span.after, span.up_to, sorted(span.skipped)) == (2, 6, sorted([sha("3"), sha("5")]))


def test_a_previous_deployment_of_the_same_branch_still_bounds_the_range_at_its_sha() -> None:
    repo, ledger, _ = _staging()
    main = next(c.branch for c in repo.changes.commits if c.message == "1")
    previous = deployment("on-main", at(-0.5), commit_sha=sha("5"), attribution=_shipped_on(main, 5))
    outcome = attribute(deployment("next", at(0), commit_sha=sha("6")), previous, repo.changes, ledger, T0)
    assert labels(outcome) == ["6"]  # `git log 5..6` on main: the previous one shipped up to 5 here
    assert numbers(outcome) == [2]


def test_a_previous_deployment_that_recorded_no_branch_keeps_the_sha_bound() -> None:
    """No marks recorded (an attribution of another rule, a redeploy, or none): as before, its sha's
    place on the branch bounds the range."""
    repo, ledger, _ = _staging()
    previous = deployment("unknown", at(-0.5), commit_sha=sha("5"), attribution=Attribution(state="Resolved"))
    outcome = attribute(deployment("next", at(0), commit_sha=sha("6")), previous, repo.changes, ledger, T0)
    assert labels(outcome) == ["6"]
