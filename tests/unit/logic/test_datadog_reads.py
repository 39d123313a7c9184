"""Datadog's reads (``logic.datadog``) over in-memory ports: which deployments a query reads, paging,
and the 404s."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dora_insights.dialects.datadog import deployment_document, failure_document
from dora_insights.domain.event_search import parse
from dora_insights.domain.failures import FailureDraft
from dora_insights.domain.model import DeploymentDraft
from dora_insights.errors import ResourceNotFoundError
from dora_insights.logic import datadog, deployments, failures
from dora_insights.logic.datadog import EventSearch
from tests.unit.logic.conftest import NOW
from tests.unit.logic.fakes import SPACE, FakePorts


def deploy(ports: FakePorts, client_id: str, *, hours: float = 0, project: str = "shop", **kw: object) -> None:
    draft = DeploymentDraft(client_id=client_id, project=project, finished_at=NOW + timedelta(hours=hours), **kw)
    deployments.ingest(ports, ports.spaces[SPACE], draft, NOW)


def listed(ports: FakePorts, query: str, **kw: object) -> list[str]:
    found, _ = datadog.list_deployments(ports, SPACE, EventSearch(parse(query), **kw), deployment_document)  # type: ignore[arg-type]
    return [d.id for d in found]


@pytest.fixture
def seeded(ports: FakePorts) -> FakePorts:
    deploy(ports, "shop-prod-1", hours=1, environment="prod", team="web", version="1.0", tags=("lang:py",))
    deploy(ports, "shop-prod-2", hours=2, environment="prod", team="web", version="1.1")
    deploy(ports, "shop-dev-1", hours=3, environment="dev", version="1.1-rc1")
    deploy(ports, "api-prod-1", hours=4, project="api", environment="prod", tags=("lang:go",))
    return ports


def test_a_query_without_a_service_reads_the_spaces_deployments(seeded: FakePorts) -> None:
    assert listed(seeded, "env:prod") == ["api-prod-1", "shop-prod-2", "shop-prod-1"]
    assert seeded.event_search_repository.scopes == [("space", None)]


def test_a_service_reads_its_projects_deployments(seeded: FakePorts) -> None:
    assert listed(seeded, "service:SHOP -version:*rc*") == ["shop-prod-2", "shop-prod-1"]
    assert seeded.event_search_repository.scopes == [("project", "Projects-1")]


def test_a_service_and_env_with_one_stream_read_that_stream(seeded: FakePorts) -> None:
    assert listed(seeded, "service:shop env:prod") == ["shop-prod-2", "shop-prod-1"]
    stream = seeded.deployments().get(SPACE, "shop-prod-1").stream_key  # type: ignore[union-attr]
    assert seeded.event_search_repository.scopes == [("stream", stream)]


def test_a_service_and_env_with_several_streams_read_the_project(seeded: FakePorts) -> None:
    deploy(seeded, "shop-prod-acme", hours=5, environment="prod", tenant="acme")
    assert listed(seeded, "service:shop env:prod") == ["shop-prod-acme", "shop-prod-2", "shop-prod-1"]
    assert seeded.event_search_repository.scopes == [("project", "Projects-1")]


@pytest.mark.parametrize("query", ["service:nowhere", "service:shop env:nowhere"])
def test_a_service_or_env_never_seen_matches_nothing_without_reading(seeded: FakePorts, query: str) -> None:
    assert listed(seeded, query) == []
    assert seeded.event_search_repository.scopes == []


def test_or_of_services_reads_the_space(seeded: FakePorts) -> None:
    assert listed(seeded, "service:(shop OR api) lang:*") == ["api-prod-1", "shop-prod-1"]
    assert seeded.event_search_repository.scopes == [("space", None)]


def test_time_bounds_order_and_limit(seeded: FakePorts) -> None:
    window = {"lowest": NOW + timedelta(hours=2), "highest": NOW + timedelta(hours=4)}
    assert listed(seeded, "*", **window) == ["api-prod-1", "shop-dev-1", "shop-prod-2"]
    assert listed(seeded, "*", ascending=True, limit=2, **window) == ["shop-prod-2", "shop-dev-1"]


def test_pages_continue_where_the_cursor_says_without_choosing_again(seeded: FakePorts) -> None:
    search = EventSearch(parse("service:shop"), limit=2, ascending=True)
    first, after = datadog.list_deployments(seeded, SPACE, search, deployment_document)
    assert [d.id for d in first] == ["shop-prod-1", "shop-prod-2"]
    assert after is not None
    rest, end = datadog.list_deployments(
        seeded, SPACE, EventSearch(search.expression, limit=2, ascending=True, cursor=after), deployment_document
    )
    assert ([d.id for d in rest], end) == (["shop-dev-1"], None)


def test_failures_are_searched_by_each_of_their_services(ports: FakePorts) -> None:
    for n, services in enumerate([("shop",), ("api", "shop"), ("api",)]):
        draft = FailureDraft(client_id=f"f{n}", projects=services, started_at=NOW + timedelta(hours=n), severity="high")
        failures.record_failure(ports, ports.spaces[SPACE], draft, NOW)
    found, _ = datadog.list_failures(ports, SPACE, EventSearch(parse("service:shop severity:HIGH")), failure_document)
    assert [f.id for f in found] == ["f1", "f0"]


def test_an_unknown_id_is_not_found(seeded: FakePorts) -> None:
    assert datadog.get_deployment(seeded, SPACE, "shop-prod-1").project == "shop"
    with pytest.raises(ResourceNotFoundError):
        datadog.get_deployment(seeded, SPACE, "nope")
    with pytest.raises(ResourceNotFoundError):
        datadog.get_failure(seeded, SPACE, "nope")
    seeded.add_space("Spaces-2")
    with pytest.raises(ResourceNotFoundError):
        datadog.get_deployment(seeded, "Spaces-2", "shop-prod-1")
