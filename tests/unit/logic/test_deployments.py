"""The core write path and the native list (``logic.deployments``) over in-memory ports."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dora_insights.domain.model import DeploymentDraft, TaskState
from dora_insights.domain.queries import DeploymentFilter
from dora_insights.domain.records import WriteOutcome
from dora_insights.domain.times import format_instant
from dora_insights.errors import DoraError, RequestInvalidError, ResourceConflictError, ResourceNotFoundError
from dora_insights.logic import catalogue, deployments, recompute
from dora_insights.logic.freshness import SETTLE
from tests.unit.logic.conftest import NOW
from tests.unit.logic.fakes import SPACE, FakePorts


def draft(client_id: str, *, hours: float = 0, project: str = "shop", **kw: object) -> DeploymentDraft:
    return DeploymentDraft(client_id=client_id, project=project, finished_at=NOW + timedelta(hours=hours), **kw)


def ingest(ports: FakePorts, *drafts: DeploymentDraft) -> None:
    for d in drafts:
        deployments.ingest(ports, ports.spaces[SPACE], d, NOW)


def ids(ports: FakePorts, filters: DeploymentFilter) -> list[str]:
    found, _ = deployments.list_deployments(ports, SPACE, filters)
    return [d.id for d in found]


def test_ingest_stores_the_deployment_with_its_catalogue_ids_and_marks_its_stream_dirty(ports: FakePorts) -> None:
    outcome = deployments.ingest(ports, ports.spaces[SPACE], draft("d1", tenant="acme", channel="beta"), NOW)
    assert outcome.created
    stored = deployments.get_deployment(ports, SPACE, "d1")
    assert (stored.project_id, stored.environment_id, stored.channel_id, stored.tenant_id) == (
        "Projects-1",
        "Environments-1",
        "Channels-1",
        "Tenants-1",
    )
    assert [{k: v for k, v in m.items() if k != "mark_id"} for m in ports.list_dirty_streams(SPACE)] == [
        {"stream": stored.stream_key, "dirty_at": format_instant(NOW), "pending": 1, "caught_up": None}
    ]
    # No code named: no attribution is owed, so no outbox item and no retry message.
    assert ports.attribution_state.outbox == {}
    assert ports.queue is not None and ports.queue.sent == []
    with pytest.raises(ResourceNotFoundError):
        deployments.get_deployment(ports, SPACE, "d2")


def test_a_repeat_answers_the_stored_deployment_and_other_values_conflict(ports: FakePorts) -> None:
    space = ports.spaces[SPACE]
    first = deployments.ingest(ports, space, draft("d1"), NOW)
    again = deployments.ingest(ports, space, draft("d1"), NOW + timedelta(minutes=1))
    assert (again.created, again.deployment) == (False, first.deployment)
    with pytest.raises(ResourceConflictError):
        deployments.ingest(ports, space, draft("d1", version="2.0"), NOW)


def test_a_repeat_spelling_out_the_defaults_is_the_same_request(ports: FakePorts) -> None:
    space = ports.spaces[SPACE]
    first = deployments.ingest(ports, space, draft("d1"), NOW)
    spelled = draft("d1", environment=space.default_environment, channel="Default")
    assert spelled.fingerprint() != draft("d1").fingerprint()  # as sent: differs
    assert spelled.fingerprint(space.default_environment) == draft("d1").fingerprint(space.default_environment)
    again = deployments.ingest(ports, space, spelled, NOW)
    assert (again.created, again.deployment) == (False, first.deployment)
    entities = catalogue.resolve(ports, space.id, deployments.wanted_entities(space, spelled))
    built = deployments.build_deployment(space, spelled, entities, NOW)
    assert built.repeats(first.deployment.body_hash) and not built.repeats(None)
    with pytest.raises(ResourceConflictError):
        deployments.ingest(ports, space, draft("d1", environment="staging"), NOW)


def test_a_batch_reports_failed_items_and_stores_the_others(ports: FakePorts) -> None:
    invalid = RequestInvalidError("bad row")
    results = deployments.ingest_batch(
        ports, ports.spaces[SPACE], [draft("d1"), invalid, draft("d1", version="2"), draft("d2")], NOW
    )
    assert results[1] is invalid
    assert isinstance(results[2], ResourceConflictError)
    assert [r.deployment.id for r in results if not isinstance(r, DoraError)] == ["d1", "d2"]


def test_a_batch_is_one_bulk_write_and_defers_the_attributions_it_owes(ports: FakePorts) -> None:
    coded = [draft(f"d{n}", hours=-n, repository="acme/shop", commit_sha=f"{n + 1:040x}") for n in range(3)]
    results = deployments.ingest_batch(ports, ports.spaces[SPACE], [*coded, draft("plain")], NOW)
    assert [r.deployment.id for r in results if not isinstance(r, DoraError)] == ["d0", "d1", "d2", "plain"]
    assert ports.deployment_repository.bulk_writes == [4]
    assert set(ports.attribution_state.outbox) == {(SPACE, f"d{n}") for n in range(3)}
    # Deferred to the retry queue, due at once, a stream's deployments in their finish order.
    assert ports.queue is not None and ports.queue.sent == [(SPACE, f"d{n}", 0, 0) for n in (2, 1, 0)]
    for d in ("d0", "plain"):
        assert deployments.get_deployment(ports, SPACE, d).attribution is None


def test_batch_items_without_an_id_are_keyed_by_their_fingerprint(ports: FakePorts) -> None:
    twin = DeploymentDraft(project="shop", finished_at=NOW)
    batch = [twin, twin, DeploymentDraft(project="shop", finished_at=NOW, version="2")]
    first = deployments.ingest_batch(ports, ports.spaces[SPACE], batch, NOW)
    again = deployments.ingest_batch(ports, ports.spaces[SPACE], batch, NOW + timedelta(minutes=1))
    assert all(isinstance(r, WriteOutcome) for r in first + again)
    assert [r.created for r in first if isinstance(r, WriteOutcome)] == [True, True, True]
    assert [r.created for r in again if isinstance(r, WriteOutcome)] == [False, False, False]
    ids = [r.deployment.id for r in first if isinstance(r, WriteOutcome)]
    assert len(set(ids)) == 3 and ids == [r.deployment.id for r in again if isinstance(r, WriteOutcome)]
    keys = sorted(key for (_, dialect, key) in ports.deployment_repository.idempotency if dialect == "batch")
    assert keys == sorted([twin.fingerprint(), twin.fingerprint() + "#1", batch[2].fingerprint()])


def test_the_list_pages_newest_first_with_a_cursor(ports: FakePorts) -> None:
    ingest(ports, *(draft(f"d{n}", hours=n) for n in range(5)))
    first, cursor = deployments.list_deployments(ports, SPACE, DeploymentFilter(), limit=3)
    rest, end = deployments.list_deployments(ports, SPACE, DeploymentFilter(), limit=3, cursor=cursor)
    assert [d.id for d in first + rest] == ["d4", "d3", "d2", "d1", "d0"]
    assert cursor is not None and end is None


def test_the_list_filters_by_entity_name_or_id_state_and_finish_time(ports: FakePorts) -> None:
    ingest(
        ports,
        draft("a", tenant="acme"),
        draft("b", hours=1, project="api", environment="staging"),
        draft("c", hours=2, state=TaskState.FAILED, tenant="acme"),
        draft("d", hours=3),
    )
    assert ids(ports, DeploymentFilter(project="api")) == ["b"]
    assert ids(ports, DeploymentFilter(project="Projects-1")) == ["d", "c", "a"]
    assert ids(ports, DeploymentFilter(environment="STAGING")) == ["b"]
    assert ids(ports, DeploymentFilter(tenant="acme")) == ["c", "a"]
    assert ids(ports, DeploymentFilter(state=TaskState.FAILED)) == ["c"]
    assert ids(ports, DeploymentFilter(project="shop", state=TaskState.SUCCESS)) == ["d", "a"]
    window = DeploymentFilter(finished_from=NOW + timedelta(hours=1), finished_to=NOW + timedelta(hours=2))
    assert ids(ports, window) == ["c", "b"]  # both ends inclusive


def test_a_filter_naming_an_unknown_entity_matches_nothing_without_a_query(ports: FakePorts) -> None:
    ingest(ports, draft("a"))
    assert deployments.list_deployments(ports, SPACE, DeploymentFilter(tenant="nobody")) == ([], None)
    assert ports.deployment_repository.listed == []
    assert ids(ports, DeploymentFilter(project="shop")) == ["a"]
    assert ports.deployment_repository.listed == [
        {"project_id": "Projects-1", "environment_id": None, "tenant_id": None}
    ]


@pytest.mark.usefixtures("no_thresholds")
def test_the_list_answers_the_recomputed_figures_the_read_of_one_answers(ports: FakePorts) -> None:
    """Before the recompute each listed deployment carries what ingest found (no duration, no change
    failure outcome); after it, the figures of its stream's latest generation, as ``get_deployment``."""
    ingest(
        ports,
        draft("a", hours=-30, started_at=NOW - timedelta(hours=30, minutes=5)),
        draft("b", hours=-2, project="cart", state=TaskState.FAILED),
        draft("c", hours=-1, started_at=NOW - timedelta(hours=1, minutes=10)),
    )
    before, _ = deployments.list_deployments(ports, SPACE, DeploymentFilter())
    assert all(d.figures is None or d.figures.duration_seconds is None for d in before)

    recompute.run(ports, NOW + SETTLE)

    listed, _ = deployments.list_deployments(ports, SPACE, DeploymentFilter())
    assert [d.id for d in listed] == ["c", "b", "a"]
    assert [d.figures for d in listed] == [deployments.get_deployment(ports, SPACE, d.id).figures for d in listed]
    figures = {d.id: d.figures for d in listed}
    assert figures["c"] is not None and figures["c"].duration_seconds == 600
    assert figures["b"] is not None and figures["b"].change_failure is True
