"""Attribution use cases (``logic.attribution``, ``logic.code``) over in-memory ports: attribute at
ingest and save with the ledger, wait for a commit and wake, the sweep of the outbox."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from dora_insights.domain.changes import commit_change_id, sha_index_prefix
from dora_insights.domain.model import Deployment, DeploymentDraft
from dora_insights.domain.times import format_instant
from dora_insights.logic import attribution, attribution_retry, code, deployments
from tests.unit.logic.conftest import NOW
from tests.unit.logic.fakes import SPACE, FakePorts

REPO = "acme/shop"


def sha(label: str) -> str:
    return hashlib.sha1(label.encode()).hexdigest()  # noqa: S324 - test identifiers, not security


def push(ports: FakePorts, *labels: str, days_ago: float = 3) -> None:
    """Commits pushed to ``main`` (oldest first), a minute apart."""
    commits = [
        code.CommitIn(sha=sha(label), timestamp=format_instant(NOW - timedelta(days=days_ago, minutes=-n)))
        for n, label in enumerate(labels)
    ]
    code.record_push(ports, SPACE, code.BranchPush(REPO, "main", commits, default_branch="main"), NOW)


def deploy(ports: FakePorts, deployment_id: str, label: str, *, hours_ago: float) -> Deployment:
    d = DeploymentDraft(
        client_id=deployment_id,
        project="shop",
        finished_at=NOW - timedelta(hours=hours_ago),
        repository=REPO,
        commit_sha=sha(label),
    )
    deployments.ingest(ports, ports.spaces[SPACE], d, NOW)
    stored = ports.deployment_repository.get(SPACE, deployment_id)
    assert stored is not None
    return stored


def test_each_deployment_ships_the_commits_since_the_previous_one_and_records_them_once(ports: FakePorts) -> None:
    push(ports, "a", "b", "c", "d")
    first = deploy(ports, "d1", "b", hours_ago=48)
    second = deploy(ports, "d2", "d", hours_ago=24)

    assert first.attribution is not None and second.attribution is not None
    assert (first.attribution.state, first.attribution.commits) == ("Resolved", [sha("b")])  # first: its own commit
    assert (second.attribution.state, second.attribution.commits) == ("Resolved", [sha("c"), sha("d")])
    assert second.figures is not None and second.figures.lead_time_seconds == (
        timedelta(days=3, hours=-24, minutes=-2).total_seconds()  # from commit c (the oldest shipped)
    )
    ledger = ports.ledger_state(SPACE, second.stream_key)
    assert ledger.changes == {
        commit_change_id(REPO, sha("b")): "d1",
        commit_change_id(REPO, sha("c")): "d2",
        commit_change_id(REPO, sha("d")): "d2",
    }
    assert ledger.marks == {(REPO, "main"): (3, "d2")}
    # Final: the outbox items are gone, the stream is dirty (figures to recompute), nothing was queued.
    assert ports.attribution_state.outbox == {}
    assert [{k: v for k, v in m.items() if k != "mark_id"} for m in ports.list_dirty_streams(SPACE)] == [
        {"stream": second.stream_key, "dirty_at": format_instant(NOW), "pending": 1, "caught_up": None}
    ]
    assert ports.queue is not None and ports.queue.sent == []


def test_a_final_attribution_is_not_attempted_again(ports: FakePorts) -> None:
    push(ports, "a")
    deploy(ports, "d1", "a", hours_ago=1)
    assert attribution.attribute_deployment(ports, SPACE, "d1", NOW + timedelta(minutes=5)) is None
    stored = ports.deployment_repository.get(SPACE, "d1")
    assert stored is not None and stored.attribution is not None and stored.attribution.attempts == 1


def test_a_deployment_before_its_commit_waits_is_woken_by_the_push_and_resolves_on_retry(ports: FakePorts) -> None:
    push(ports, "a")
    pending = deploy(ports, "d1", "late", hours_ago=1)
    assert pending.attribution is not None
    assert (pending.attribution.state, pending.attribution.attempts) == ("Pending", 1)
    assert ports.queue is not None and ports.queue.sent == [(SPACE, "d1", 1, 60)]  # attempt 1 in 60 s
    assert {(kind, value) for _, kind, value, _ in ports.attribution_state.awaiting} == {
        ("sha", sha_index_prefix(sha("late")))
    }
    outbox = ports.attribution_state.outbox[(SPACE, "d1")]
    assert outbox["due"] == format_instant(NOW + timedelta(seconds=60, minutes=15))  # leased past the retry

    push(ports, "late", days_ago=0.5)  # the commit arrives: the waiting deployment is re-tried at once
    assert ports.queue.sent[-1] == (SPACE, "d1", 0, 0)

    assert attribution_retry.retry(ports, SPACE, "d1", 1, NOW + timedelta(minutes=1)).state == "Resolved"
    resolved = ports.deployment_repository.get(SPACE, "d1")
    assert resolved is not None and resolved.attribution is not None
    assert (resolved.attribution.commits, resolved.attribution.attempts) == ([sha("late")], 2)
    assert ports.attribution_state.awaiting == set()  # the pending-index entries are forgotten
    assert ports.attribution_state.outbox == {}


def test_the_sweep_redrives_an_owed_attribution_past_its_due_time_and_abandons_it_after_four_days(
    ports: FakePorts,
) -> None:
    push(ports, "a")
    deploy(ports, "d1", "never", hours_ago=1)
    assert ports.queue is not None
    ports.queue.sent.clear()

    assert attribution.sweep(ports, SPACE, NOW + timedelta(minutes=10)).redriven == 0  # not due yet
    day = NOW + timedelta(days=1)
    counts = attribution.sweep(ports, SPACE, day)
    assert (counts.redriven, counts.abandoned, counts.failed) == (1, 0, 0)
    assert ports.queue.sent == [(SPACE, "d1", 0, 0)]
    outbox = ports.attribution_state.outbox[(SPACE, "d1")]
    assert (outbox["due"], outbox["sweeps"]) == (format_instant(day + attribution.SWEEP_LEASE), 1)

    counts = attribution.sweep(ports, SPACE, NOW + attribution.ABANDON_AFTER)
    assert (counts.redriven, counts.abandoned) == (0, 1)
    abandoned = ports.deployment_repository.get(SPACE, "d1")
    assert abandoned is not None and abandoned.attribution is not None
    assert (abandoned.attribution.state, abandoned.attribution.mode, abandoned.attribution.commits) == (
        "GaveUp",
        "Nothing",
        [],
    )
    assert ports.attribution_state.outbox == {}
    assert ports.attribution_state.awaiting == set()
