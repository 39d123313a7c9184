"""A deployment arriving after a later one of its stream was attributed (``logic.attribution``, over
in-memory ports): both are attributed again in stream order (METRICS §1, §5)."""

from __future__ import annotations

from dora_insights.domain.changes import commit_change_id
from dora_insights.logic import attribution
from tests.unit.logic.conftest import NOW
from tests.unit.logic.fakes import SPACE, FakePorts
from tests.unit.logic.test_attribution import REPO, deploy, push, sha


def _commits(ports: FakePorts, deployment_id: str) -> list[str]:
    stored = ports.deployment_repository.get(SPACE, deployment_id)
    assert stored is not None and stored.attribution is not None
    assert stored.attribution.state == "Resolved"
    return sorted(stored.attribution.commits)


def test_a_late_arrival_ships_its_own_range_and_the_later_one_only_the_rest(ports: FakePorts) -> None:
    push(ports, "a", "b", "c", "d")
    deploy(ports, "d0", "a", hours_ago=72)
    deploy(ports, "d2", "d", hours_ago=24)
    assert _commits(ports, "d2") == sorted([sha("b"), sha("c"), sha("d")])
    late = deploy(ports, "d1", "b", hours_ago=48)
    assert _commits(ports, "d1") == [sha("b")]
    assert _commits(ports, "d2") == sorted([sha("c"), sha("d")])
    ledger = ports.ledger_state(SPACE, late.stream_key)
    assert ledger.changes[commit_change_id(REPO, sha("b"))] == "d1"
    assert ledger.changes[commit_change_id(REPO, sha("c"))] == "d2"
    assert ports.attribution_state.outbox == {}  # nothing left for the sweep


def test_the_newest_deployment_of_its_stream_attributes_nothing_again(ports: FakePorts) -> None:
    push(ports, "a", "b", "c")
    deploy(ports, "d0", "a", hours_ago=72)
    first = deploy(ports, "d1", "b", hours_ago=48)
    deploy(ports, "d2", "c", hours_ago=24)
    again = ports.deployment_repository.get(SPACE, "d1")
    assert again is not None and again.attribution == first.attribution
    assert attribution.attribute_deployment(ports, SPACE, "d1", NOW) is None  # final: not attempted again


def test_a_later_deployment_still_pending_is_left_to_its_own_attempt(ports: FakePorts) -> None:
    """Only a final attribution was made without the late one: a pending one reads its previous success
    when it runs (and waits while that one is not final)."""
    push(ports, "a", "b")
    deploy(ports, "d0", "a", hours_ago=72)
    pending = deploy(ports, "d2", "unknown", hours_ago=24)
    assert pending.attribution is not None and pending.attribution.state == "Pending"
    deploy(ports, "d1", "b", hours_ago=48)
    assert _commits(ports, "d1") == [sha("b")]
    still = ports.deployment_repository.get(SPACE, "d2")
    assert still is not None and still.attribution is not None
    assert (still.attribution.state, still.attribution.attempts) == ("Pending", 1)
