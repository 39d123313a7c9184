"""The attribution engine (METRICS §5): one test per rule and per edge, plus properties."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dora_insights.domain.attribution import (
    MAX_COMMITS,
    AttributionMode,
    AttributionOutcome,
    AttributionState,
    attribute,
    next_retry_delay,
    should_give_up,
)
from dora_insights.domain.changes import (
    Commit,
    CommitShaError,
    InMemoryChanges,
    InMemoryLedger,
    PullRequest,
    RepositoryNameError,
    commit_change_id,
    normalise_repository,
    normalise_sha,
    pull_request_change_id,
    sha_index_prefix,
    shas_match,
)
from dora_insights.domain.model import Attribution, Deployment, TaskState
from dora_insights.domain.times import format_instant

REPO = "acme/payments"
T0 = datetime(2024, 3, 1, tzinfo=UTC)


def at(days: float = 0, hours: float = 0, minutes: float = 0) -> str:
    return format_instant(T0 + timedelta(days=days, hours=hours, minutes=minutes))


def sha(label: str) -> str:
    return hashlib.sha1(label.encode()).hexdigest()  # noqa: S324 - test identifiers, not security


def deployment(
    deployment_id: str,
    finished_at: str,
    *,
    commit_sha: str | None = None,
    repository: str | None = REPO,
    integration_branch: str | None = None,
    merge_commit_shas: list[str] | None = None,
    project: str = "payments",
    state: TaskState = TaskState.SUCCESS,
    received_at: str | None = None,
    attribution: Attribution | None = None,
) -> Deployment:
    return Deployment(
        id=deployment_id,
        space_id="Spaces-1",
        project=project,
        project_id=f"Projects-{project}",
        environment="production",
        environment_id="Environments-1",
        channel_id="Channels-1",
        finished_at=finished_at,
        received_at=received_at or finished_at,
        body_hash="-",
        state=state,
        commit_sha=commit_sha,
        repository=repository,
        integration_branch=integration_branch,
        merge_commit_shas=merge_commit_shas,
        attribution=attribution,
    )


@dataclass
class Repo:
    """A little git history: pushes numbered in branch order, pull requests merged into it."""

    changes: InMemoryChanges = field(default_factory=lambda: InMemoryChanges(default_branches={REPO: "main"}))
    positions: dict[str, int] = field(default_factory=dict)

    def push(self, branch: str, label: str, timestamp: str, *, pull_request: int | None = None) -> Commit:
        position = self.positions.get(branch, 0) + 1
        self.positions[branch] = position
        commit = Commit(
            repository=REPO,
            sha=sha(label),
            timestamp=timestamp,
            branch=f"refs/heads/{branch}",
            position=position,
            message=label,
            pull_request=pull_request,
        )
        self.changes.commits.append(commit)
        return commit

    def pull_request(
        self,
        number: int,
        *,
        base: str = "main",
        merge: str | None = None,
        head: str | None = None,
        created: str,
        merged: str,
        services: tuple[str, ...] | None = None,
        repository: str = REPO,
    ) -> PullRequest:
        pr = PullRequest(
            repository=repository,
            number=number,
            github_id=1000 + number,
            title=f"PR {number}",
            base_ref=base,
            head_sha=sha(head) if head else None,
            merge_commit_sha=sha(merge) if merge else None,
            created_at=created,
            merged_at=merged,
            services=services,
        )
        self.changes.pull_requests.append(pr)
        return pr

    def merged_pr(self, number: int, label: str, merged: str, *, created: str | None = None, **kw: Any) -> PullRequest:
        """A squash/merge commit ``label`` pushed to main at ``merged``, and its pull request."""
        self.push(kw.pop("branch", "main"), label, merged)
        return self.pull_request(number, merge=label, created=created or merged, merged=merged, **kw)


def run(
    repo: Repo, deployments: Sequence[Deployment], now: str | None = None, ledger: InMemoryLedger | None = None
) -> list[AttributionOutcome]:
    """Attribute a stream's deployments in order, as the logic layer would, recording the ledger."""
    ledger = ledger if ledger is not None else InMemoryLedger()
    previous: Deployment | None = None
    outcomes = []
    for d in deployments:
        clock = datetime.fromisoformat((now or d.finished_at).replace("Z", "+00:00"))
        outcome = attribute(d, previous, repo.changes, ledger, clock)
        outcomes.append(outcome)
        if outcome.state in (AttributionState.RESOLVED, AttributionState.GAVE_UP):
            ledger.record(outcome.change_ids, outcome.marks)
        if d.is_successful:
            previous = d.model_copy(update={"attribution": outcome.to_attribution(1, clock)})
    return outcomes


ZERO = deployment("d0", at(-9), commit_sha=sha("Z"))  # the stream's previous deployment, of commit Z


def labels(outcome: AttributionOutcome) -> list[str]:
    return [c.message or "" for c in outcome.commits]


def numbers(outcome: AttributionOutcome) -> list[int]:
    return sorted(pr.number for pr in outcome.pull_requests)


# ---------------------------------------------------------------------------------------------
# Names


@pytest.mark.parametrize(
    "value",
    [
        "acme/payments",
        "Acme/Payments",
        " acme/payments/ ",
        "https://github.com/acme/payments",
        "https://github.com/acme/payments.git",
        "http://github.com/Acme/payments/",
        "git@github.com:acme/payments.git",
        "ssh://git@github.com/acme/payments.git",
    ],
)
def test_repository_names_and_urls_normalise_to_org_slash_name(value: str) -> None:
    assert normalise_repository(value) == "acme/payments"


def test_nested_repository_paths_keep_every_segment() -> None:
    assert normalise_repository("https://gitlab.com/group/sub/name.git") == "group/sub/name"


@pytest.mark.parametrize("value", ["payments", "", "https://github.com/", "acme//payments", "acme/pay#ments"])
def test_unreadable_repository_names_are_rejected(value: str) -> None:
    with pytest.raises(RepositoryNameError):
        normalise_repository(value)


@pytest.mark.parametrize("value", ["abc123", "g" * 7, "a" * 41, ""])
def test_shas_must_be_7_to_40_hex(value: str) -> None:
    with pytest.raises(CommitShaError):
        normalise_sha(value)


def test_short_shas_match_full_shas_by_prefix_either_way() -> None:
    full = sha("x")
    assert shas_match(full, full[:7])
    assert shas_match(full[:9], full)
    assert not shas_match(full, sha("y")[:7])
    assert sha_index_prefix(full.upper()) == full[:7]


def test_commit_and_pull_request_normalise_their_fields() -> None:
    commit = Commit(
        repository="https://github.com/Acme/Payments", sha=sha("a").upper(), timestamp=T0, branch="main", position=1
    )
    assert (commit.repository, commit.sha, commit.timestamp) == (REPO, sha("a"), "2024-03-01T00:00:00.000Z")
    assert commit.change_id == commit_change_id(REPO, sha("a"))
    pr = PullRequest(repository=REPO, number=3, base_ref="refs/heads/main", created_at="2024-03-01T01:00:00+01:00")
    assert (pr.base_ref, pr.created_at, pr.merged_at, pr.services) == ("main", "2024-03-01T00:00:00.000Z", None, None)
    assert pr.change_id == pull_request_change_id(REPO, 3)


# ---------------------------------------------------------------------------------------------
# Rule 3: commit_sha + repository


def test_dx_example_table_by_commit_range() -> None:
    # Given commits A, B, C, D, E on main after Z, deployed Z, then B, then E (within 60 days)
    repo = Repo()
    repo.push("main", "Z", at(-1))
    for i, label in enumerate("ABCDE"):
        repo.push("main", label, at(i))
    d0 = deployment("d0", at(-0.5), commit_sha=sha("Z"))
    d1 = deployment("d1", at(1, hours=12), commit_sha=sha("B"))
    d2 = deployment("d2", at(4, hours=12), commit_sha=sha("E"))
    # When
    _, first, second = run(repo, [d0, d1, d2])
    # Then A, B ship with deployment 1 and C, D, E with deployment 2
    assert (first.mode, labels(first)) == (AttributionMode.COMMIT_SHA, ["A", "B"])
    assert labels(second) == ["C", "D", "E"]
    assert first.change_started_at == at(0)
    assert second.state is AttributionState.RESOLVED


def test_squash_merge_lead_time_starts_at_pull_request_creation() -> None:
    repo = Repo()
    repo.push("main", "Z", at(-10))
    repo.merged_pr(7, "squash", at(0), created=at(-3))
    _, outcome = run(repo, [ZERO, deployment("d1", at(1), commit_sha=sha("squash"))])
    assert numbers(outcome) == [7]
    assert labels(outcome) == ["squash"]
    assert outcome.change_started_at == at(-3)


def test_rebase_merge_ships_every_rebased_commit_and_the_pull_request() -> None:
    repo = Repo()
    repo.push("main", "Z", at(-10))
    for label, authored in (("R1", -5), ("R2", -4), ("R3", -3)):
        repo.push("main", label, at(authored))  # rebased commits keep their author dates
    repo.pull_request(8, merge="R3", head="F3", created=at(-2), merged=at(0))
    _, outcome = run(repo, [ZERO, deployment("d1", at(1), commit_sha=sha("R3"))])
    assert labels(outcome) == ["R1", "R2", "R3"]
    assert numbers(outcome) == [8]
    assert outcome.change_started_at == at(-5)


def test_merge_commit_pull_request_ships_with_its_linked_feature_commits() -> None:
    repo = Repo()
    repo.push("main", "Z", at(-10))
    repo.push("feature", "F1", at(-6), pull_request=9)
    repo.merged_pr(9, "M", at(0), created=at(-4))
    _, outcome = run(repo, [ZERO, deployment("d1", at(1), commit_sha=sha("M"))])
    assert sorted(labels(outcome)) == ["F1", "M"]
    assert outcome.change_started_at == at(-6)


def test_pull_requests_merged_since_the_previous_deployment_without_a_seen_merge_commit_ship_too() -> None:
    # PR 4's merge commit never arrived by push (a missed webhook); it merged before the deployed PR 5
    repo = Repo()
    repo.push("main", "Z", at(-10))
    repo.pull_request(4, merge="lost", created=at(-2), merged=at(-1))
    repo.merged_pr(5, "five", at(0), created=at(-0.5))
    repo.pull_request(6, merge="later", created=at(0), merged=at(0.5))  # merged after the deployed one
    d0 = deployment("d0", at(-9), commit_sha=sha("Z"))
    _, outcome = run(repo, [d0, deployment("d1", at(1), commit_sha=sha("five"))])
    assert numbers(outcome) == [4, 5]
    assert outcome.change_started_at == at(-2)


def test_first_deployment_ships_only_its_own_pull_request() -> None:
    repo = Repo()
    repo.merged_pr(1, "one", at(-3))
    repo.merged_pr(2, "two", at(-2), created=at(-2.5))
    (outcome,) = run(repo, [deployment("d1", at(0), commit_sha=sha("two"))])
    assert (numbers(outcome), labels(outcome)) == ([2], ["two"])
    assert outcome.history_capped
    assert outcome.change_started_at == at(-2.5)


def test_first_deployment_without_a_pull_request_ships_only_its_commit() -> None:
    repo = Repo()
    repo.push("main", "A", at(-2))
    repo.push("main", "B", at(-1))
    (outcome,) = run(repo, [deployment("d1", at(0), commit_sha=sha("B"))])
    assert (numbers(outcome), labels(outcome)) == ([], ["B"])
    assert [m.position for m in outcome.marks] == [2]


def test_previous_deployment_over_60_days_older_caps_history_to_the_own_pull_request() -> None:
    repo = Repo()
    repo.push("main", "Z", at(-100))
    repo.merged_pr(1, "one", at(-50))
    repo.merged_pr(2, "two", at(-1))
    d0 = deployment("d0", at(-99), commit_sha=sha("Z"))
    _, outcome = run(repo, [d0, deployment("d1", at(0), commit_sha=sha("two"))])
    assert (numbers(outcome), labels(outcome)) == ([2], ["two"])
    assert outcome.history_capped


def test_at_most_5000_commits_ship_newest_first_read_as_one_range() -> None:
    repo = Repo()
    repo.push("main", "Z", at(-30))
    for i in range(MAX_COMMITS + 1000):
        repo.push("main", f"c{i}", at(-20, minutes=i))
    d0 = deployment("d0", at(-29), commit_sha=sha("Z"))
    _, outcome = run(repo, [d0, deployment("d1", at(0), commit_sha=sha(f"c{MAX_COMMITS + 999}"))])
    assert len(outcome.commits) == MAX_COMMITS
    assert outcome.truncated
    assert labels(outcome)[0] == "c1000"
    assert repo.changes.calls.count("commits_in_range") == 1
    assert len(repo.changes.calls) < 15  # batched reads, never one per commit


def test_deployment_arriving_before_its_commit_is_pending_then_resolves() -> None:
    repo = Repo()
    repo.push("main", "Z", at(-5))
    d0 = deployment("d0", at(-4), commit_sha=sha("Z"))
    d1 = deployment("d1", at(0), commit_sha=sha("late")[:10])
    _, pending = run(repo, [d0, d1])
    assert pending.state is AttributionState.PENDING
    assert pending.awaiting_shas == (sha("late")[:10],)
    assert pending.awaiting_repository == REPO
    assert pending.to_attribution(1, T0).resolved_at is None
    # When the push arrives (a retry or the webhook wakes the deployment)
    repo.push("main", "late", at(-1))
    _, resolved = run(repo, [d0, d1], now=at(0, hours=1))
    assert (resolved.state, labels(resolved)) == (AttributionState.RESOLVED, ["late"])


def test_commit_still_unknown_after_3_days_gives_up_to_pull_requests_merged_by_timestamp() -> None:
    repo = Repo()
    repo.push("main", "Z", at(-5))
    repo.pull_request(3, merge="never-pushed", created=at(-2), merged=at(-1))
    repo.pull_request(4, merge="after", created=at(0), merged=at(1))  # merged after the deployment
    d0 = deployment("d0", at(-4), commit_sha=sha("Z"))
    d1 = deployment("d1", at(0), commit_sha=sha("unknown"))
    _, before = run(repo, [d0, d1], now=at(2, hours=23))
    assert before.state is AttributionState.PENDING
    _, outcome = run(repo, [d0, d1], now=at(3))
    assert (outcome.state, outcome.mode, numbers(outcome)) == (
        AttributionState.GAVE_UP,
        AttributionMode.REPOSITORY,
        [3],
    )
    assert outcome.to_attribution(9, T0).resolved_at == at(0)


def test_giving_up_without_any_data_of_the_repository_ships_nothing() -> None:
    changes = InMemoryChanges()
    d1 = deployment("d1", at(0), commit_sha=sha("x"))
    outcome = attribute(d1, None, changes, set(), T0 + timedelta(days=4))
    assert (outcome.state, outcome.mode, outcome.change_ids) == (
        AttributionState.GAVE_UP,
        AttributionMode.NOTHING,
        frozenset(),
    )


def test_short_sha_resolves_by_prefix() -> None:
    repo = Repo()
    repo.push("main", "Z", at(-5))
    repo.merged_pr(2, "two", at(-1))
    d0 = deployment("d0", at(-4), commit_sha=sha("Z")[:7])
    _, outcome = run(repo, [d0, deployment("d1", at(0), commit_sha=sha("two")[:7].upper())])
    assert (numbers(outcome), labels(outcome)) == ([2], ["two"])


def test_failed_deployment_ships_nothing_and_the_next_success_ships_its_changes() -> None:
    repo = Repo()
    repo.push("main", "Z", at(-5))
    repo.merged_pr(2, "two", at(-1))
    d0 = deployment("d0", at(-4), commit_sha=sha("Z"))
    failed = deployment("d1", at(0), commit_sha=sha("two"), state=TaskState.FAILED)
    retried = deployment("d2", at(0, hours=1), commit_sha=sha("two"))
    _, fail, success = run(repo, [d0, failed, retried])
    assert (fail.state, fail.change_ids) == (AttributionState.NONE, frozenset())
    assert numbers(success) == [2]


def test_redeploying_and_rolling_back_ships_nothing_new() -> None:
    repo = Repo()
    repo.push("main", "Z", at(-5))
    repo.merged_pr(1, "v1", at(-3))
    repo.merged_pr(2, "v2", at(-2))
    shas = ["Z", "v1", "v2", "v1", "v2", "v2"]
    outcomes = run(repo, [deployment(f"d{i}", at(i), commit_sha=sha(s)) for i, s in enumerate(shas)])
    assert [numbers(o) for o in outcomes[1:]] == [[1], [2], [], [], []]


def test_commit_on_two_branches_is_read_on_the_previous_deployments_branch() -> None:
    repo = Repo()
    repo.push("main", "Z", at(-5))
    repo.push("feature", "A", at(-3))
    repo.push("main", "A", at(-3))  # fast-forwarded into main
    d0 = deployment("d0", at(-4), commit_sha=sha("Z"))
    _, outcome = run(repo, [d0, deployment("d1", at(0), commit_sha=sha("A"))])
    assert [(m.branch, m.position) for m in outcome.marks] == [("main", 2)]


def test_deployment_of_another_repository_starts_no_history() -> None:
    repo = Repo()
    repo.push("main", "A", at(-3))
    repo.push("main", "B", at(-2))
    d0 = deployment(
        "d0", at(-4), commit_sha=sha("other"), repository="acme/legacy", attribution=Attribution(state="Resolved")
    )
    outcome = attribute(deployment("d1", at(0), commit_sha=sha("B")), d0, repo.changes, set(), T0)
    assert labels(outcome) == ["B"]
    assert outcome.history_capped


def test_without_push_data_the_pull_requests_merged_since_the_previous_deployment_ship() -> None:
    repo = Repo()
    repo.pull_request(1, merge="old", created=at(-9), merged=at(-8))
    repo.pull_request(2, merge="a", created=at(-3), merged=at(-2))
    repo.pull_request(3, merge="b", created=at(-2), merged=at(-1))
    d0 = deployment("d0", at(-5), commit_sha=sha("old"))
    _, outcome = run(repo, [d0, deployment("d1", at(0), commit_sha=sha("b"))])
    assert (outcome.state, numbers(outcome)) == (AttributionState.RESOLVED, [2, 3])


# ---------------------------------------------------------------------------------------------
# Rule 2: integration branch


def _develop_history(repo: Repo) -> None:
    repo.pull_request(100, base="develop", merge="Z", created=at(-40), merged=at(-35))
    for number, label, day in ((1, "A", -20), (2, "B", -10), (3, "C", 30), (4, "D", 60), (5, "E", 91)):
        repo.pull_request(number, base="develop", merge=label, created=at(day - 1), merged=at(day))
    repo.pull_request(50, base="main", merge="elsewhere", created=at(10), merged=at(11))  # another base ref


def test_dx_example_table_by_integration_branch() -> None:
    # DX's table: A, B → deployment 1 (2024-03-01); C, D, E → deployment 2 (2024-06-01)
    repo = Repo()
    _develop_history(repo)
    d0 = deployment("d0", at(-34), commit_sha=sha("Z"), integration_branch="develop")
    d1 = deployment("d1", at(0), commit_sha=sha("B"), integration_branch="develop")
    d2 = deployment("d2", "2024-06-01T00:00:00.000Z", commit_sha=sha("E"), integration_branch="develop")
    _, first, second = run(repo, [d0, d1, d2])
    assert (first.mode, numbers(first)) == (AttributionMode.INTEGRATION_BRANCH, [1, 2])
    assert numbers(second) == [3, 4, 5]  # a 92-day gap: rule 2 is bounded by the previous PR, not capped
    assert second.change_started_at == at(29)


def test_integration_branch_first_deployment_ships_its_own_pull_request() -> None:
    repo = Repo()
    _develop_history(repo)
    (outcome,) = run(repo, [deployment("d1", at(0), commit_sha=sha("B"), integration_branch="develop")])
    assert numbers(outcome) == [2]
    assert outcome.history_capped


def test_integration_branch_waits_for_the_pull_request_of_its_sha() -> None:
    repo = Repo()
    _develop_history(repo)
    d1 = deployment("d1", at(0), commit_sha=sha("elsewhere"), integration_branch="develop")
    (outcome,) = run(repo, [d1])
    assert (outcome.state, outcome.awaiting_shas) == (AttributionState.PENDING, (sha("elsewhere"),))


# ---------------------------------------------------------------------------------------------
# Rule 1: merge_commit_shas


def test_merge_commit_shas_ship_exactly_the_named_pull_requests_even_first() -> None:
    repo = Repo()
    for number, label in ((1, "a"), (2, "b"), (3, "c")):
        repo.merged_pr(number, label, at(-number), created=at(-number - 1))
    d1 = deployment("d1", at(0), merge_commit_shas=[sha("a")[:7], sha("c")], repository=None)
    (outcome,) = run(repo, [d1])
    assert (outcome.mode, numbers(outcome)) == (AttributionMode.MERGE_COMMIT_SHAS, [1, 3])
    assert sorted(labels(outcome)) == ["a", "c"]
    assert outcome.change_started_at == at(-4)


def test_merge_commit_shas_partly_unknown_wait_then_give_up_with_the_found_ones() -> None:
    repo = Repo()
    repo.merged_pr(1, "a", at(-1))
    d1 = deployment("d1", at(0), merge_commit_shas=[sha("a"), sha("missing")])
    (pending,) = run(repo, [d1])
    assert (pending.state, pending.awaiting_shas) == (AttributionState.PENDING, (sha("missing"),))
    (gave_up,) = run(repo, [d1], now=at(3, hours=1))
    assert (gave_up.state, gave_up.mode, numbers(gave_up)) == (
        AttributionState.GAVE_UP,
        AttributionMode.MERGE_COMMIT_SHAS,
        [1],
    )


def test_a_change_ships_once_per_stream() -> None:
    repo = Repo()
    repo.merged_pr(1, "a", at(-1))
    ledger = InMemoryLedger(deployed={pull_request_change_id(REPO, 1), commit_change_id(REPO, sha("a"))})
    (outcome,) = run(repo, [deployment("d1", at(0), merge_commit_shas=[sha("a")])], ledger=ledger)
    assert (outcome.state, outcome.change_ids, outcome.change_started_at) == (
        AttributionState.RESOLVED,
        frozenset(),
        None,
    )


# ---------------------------------------------------------------------------------------------
# Rule 4 and 5


def test_repository_only_ships_pull_requests_merged_into_the_default_branch_since_the_previous_deployment() -> None:
    repo = Repo()
    repo.pull_request(1, merge="a", created=at(-9), merged=at(-8))
    repo.pull_request(2, merge="b", created=at(-3), merged=at(-2))
    repo.pull_request(3, base="develop", merge="c", created=at(-3), merged=at(-2))
    repo.pull_request(4, merge="d", created=at(0), merged=at(1))
    d0 = deployment("d0", at(-5), repository="https://github.com/acme/payments.git")
    _, outcome = run(repo, [d0, deployment("d1", at(0))])
    assert (outcome.mode, numbers(outcome)) == (AttributionMode.REPOSITORY, [2])


def test_repository_only_first_deployment_ships_the_last_merged_pull_request() -> None:
    repo = Repo()
    repo.pull_request(1, merge="a", created=at(-9), merged=at(-8))
    repo.pull_request(2, merge="b", created=at(-3), merged=at(-2))
    (outcome,) = run(repo, [deployment("d1", at(0))])
    assert (numbers(outcome), outcome.history_capped) == ([2], True)


def test_repository_only_waits_for_the_repository_to_be_seen() -> None:
    outcome = attribute(deployment("d1", at(0), repository="acme/unseen"), None, InMemoryChanges(), set(), T0)
    assert (outcome.state, outcome.awaiting_repository, outcome.awaiting_shas) == (
        AttributionState.PENDING,
        "acme/unseen",
        (),
    )


def test_without_a_repository_nothing_is_attributed() -> None:
    outcome = attribute(
        deployment("d1", at(0), repository=None, commit_sha=sha("a")), None, InMemoryChanges(), set(), T0
    )
    assert (outcome.state, outcome.mode) == (AttributionState.NONE, AttributionMode.NOTHING)
    assert (
        outcome.to_attribution(0, T0).model_dump()
        == Attribution(state="None", mode="Nothing", resolved_at=at(0)).model_dump()
    )


# ---------------------------------------------------------------------------------------------
# Monorepos, ordering


def test_monorepo_pull_requests_ship_only_with_their_services() -> None:
    # DX: PR 1 (service_a) 10:00, PR 2 (service_b) 11:00, PR 3 (service_a) 12:00, deploy service_a 12:01
    repo = Repo()
    repo.push("main", "Z", at(-1))
    repo.merged_pr(1, "one", at(hours=10), services=("service_a",))
    repo.merged_pr(2, "two", at(hours=11), services=("service_b",))
    repo.merged_pr(3, "three", at(hours=12), services=("Service_A", "service_c"))
    d0 = deployment("d0", at(-0.5), commit_sha=sha("Z"), project="service_a")
    d1 = deployment("d1", at(hours=12, minutes=1), commit_sha=sha("three"), project="service_a")
    _, outcome = run(repo, [d0, d1])
    assert numbers(outcome) == [1, 3]
    assert labels(outcome) == ["one", "three"]
    # and service_b's stream still gets PR 2 with its next deployment
    b0 = deployment("b0", at(-0.5), commit_sha=sha("Z"), project="service_b")
    b1 = deployment("b1", at(hours=12, minutes=5), commit_sha=sha("three"), project="service_b")
    _, other = run(repo, [b0, b1])
    assert numbers(other) == [2]


def test_a_deployment_waits_while_the_previous_one_in_its_stream_is_pending() -> None:
    repo = Repo()
    repo.push("main", "B", at(-1))
    prev = deployment("d0", at(-2), commit_sha=sha("A"), attribution=Attribution(state="Pending"))
    outcome = attribute(deployment("d1", at(0), commit_sha=sha("B")), prev, repo.changes, set(), T0)
    assert (outcome.state, outcome.awaiting_shas) == (AttributionState.PENDING, (sha("A"),))


# ---------------------------------------------------------------------------------------------
# Retry policy


def test_retry_delays_grow_and_cap_at_the_sqs_maximum() -> None:
    assert [next_retry_delay(n) for n in range(7)] == [30, 60, 120, 240, 480, 900, 900]
    assert next_retry_delay(10_000) == 900
    with pytest.raises(ValueError, match="negative"):
        next_retry_delay(-1)


def test_attribution_gives_up_3_days_after_the_deployment_arrived() -> None:
    assert not should_give_up(at(0), T0 + timedelta(days=3) - timedelta(seconds=1))
    assert should_give_up(at(0), T0 + timedelta(days=3))
    assert should_give_up(T0, T0 + timedelta(days=4))
    with pytest.raises(ValueError, match="naive"):
        should_give_up(at(0), datetime(2024, 3, 5))


# ---------------------------------------------------------------------------------------------
# Properties


@st.composite
def histories(draw: st.DrawFn) -> tuple[Repo, list[int], list[Deployment]]:
    size = draw(st.integers(min_value=1, max_value=30))
    is_pr = draw(st.lists(st.booleans(), min_size=size, max_size=size))
    repo = Repo()
    for i in range(size):
        if is_pr[i]:
            repo.merged_pr(i + 1, f"c{i + 1}", at(minutes=i + 1), created=at(minutes=i - 30))
        else:
            repo.push("main", f"c{i + 1}", at(minutes=i + 1))
    deployed = draw(st.lists(st.integers(min_value=1, max_value=size), min_size=1, max_size=8))
    prefix = draw(st.integers(min_value=7, max_value=40))
    deployments = [
        deployment(f"d{k}", at(1, hours=k), commit_sha=sha(f"c{position}")[:prefix])
        for k, position in enumerate(deployed)
    ]
    return repo, deployed, deployments


@settings(max_examples=60, deadline=None)
@given(histories())
def test_every_change_ships_at_most_once_and_the_union_is_the_history_up_to_the_furthest_sha(
    history: tuple[Repo, list[int], list[Deployment]],
) -> None:
    repo, deployed, deployments = history
    outcomes = run(repo, deployments)
    shipped = [change_id for o in outcomes for change_id in o.change_ids]
    assert len(shipped) == len(set(shipped))
    # reference: the first deployment ships its own commit; later ones extend up to the furthest sha
    first, furthest = deployed[0], max(deployed)
    expected_positions = {first} | set(range(first + 1, furthest + 1))
    assert {c.position for o in outcomes for c in o.commits} == expected_positions
    expected_prs = {pr.number for pr in repo.changes.pull_requests if pr.number in expected_positions}
    assert {pr.number for o in outcomes for pr in o.pull_requests} == expected_prs
    assert all(o.state is AttributionState.RESOLVED for o in outcomes)


@settings(max_examples=40, deadline=None)
@given(histories(), st.integers(min_value=7, max_value=40))
def test_any_sha_prefix_attributes_like_the_full_sha(
    history: tuple[Repo, list[int], list[Deployment]], prefix: int
) -> None:
    repo, _, deployments = history
    full = run(repo, [d.model_copy(update={"commit_sha": _full(repo, d.commit_sha)}) for d in deployments])
    short = run(repo, [d.model_copy(update={"commit_sha": _full(repo, d.commit_sha)[:prefix]}) for d in deployments])
    assert [o.change_ids for o in full] == [o.change_ids for o in short]


def _full(repo: Repo, short: str | None) -> str:
    assert short is not None
    return next(c.sha for c in repo.changes.commits if c.sha.startswith(short))
