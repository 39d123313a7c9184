"""``dal.repositories.Repositories`` and the in-memory fakes implement the ports logic talks to.

mypy checks it statically where handlers pass a ``Repositories`` to a use case (and here:
``.venv/bin/mypy tests/unit/test_ports.py``); this test checks every method of every Protocol of
``logic.ports`` and ``logic.insight_ports`` (and ``logic.destinations.DestinationRepository``) exists on both
implementations with the same parameters, without AWS.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from dora_insights.dal.attribution import AttributionStore, LedgerStore, RetryQueue
from dora_insights.dal.code import CodeStore
from dora_insights.dal.deployments import DeploymentStore
from dora_insights.dal.destinations import DestinationStore
from dora_insights.dal.event_search import EventSearchStore
from dora_insights.dal.failures import FailureStore
from dora_insights.dal.health import HealthStore
from dora_insights.dal.insights import InsightStore
from dora_insights.dal.metrics import MetricsStore
from dora_insights.dal.orlo import OrloStore
from dora_insights.dal.reports import ReportStore
from dora_insights.dal.repositories import Repositories
from dora_insights.dal.rollups import RollupStore
from dora_insights.logic import destinations, insight_ports, ports
from tests.unit.logic import fakes
from tests.unit.logic.test_insights_logic import FakeInsights, InsightFakePorts

IMPLEMENTATIONS: list[tuple[Any, type, type]] = [
    (ports.Ports, Repositories, fakes.FakePorts),
    (ports.DeploymentRepository, DeploymentStore, fakes.FakeDeployments),
    (ports.FailureRepository, FailureStore, fakes.FakeFailures),
    (ports.EventSearchRepository, EventSearchStore, fakes.FakeEventSearch),
    (ports.MetricsRepository, MetricsStore, fakes.FakeMetrics),
    (ports.HealthRepository, HealthStore, fakes.FakeHealth),
    (ports.ReportRepository, ReportStore, fakes.FakeReports),
    (ports.OrloRepository, OrloStore, fakes.FakeOrlo),
    (ports.AttributionRepository, AttributionStore, fakes.FakeAttribution),
    (ports.StreamLedger, LedgerStore, fakes.FakeLedger),
    (ports.CodeRepository, CodeStore, fakes.FakeCode),
    (ports.RetryQueue, RetryQueue, fakes.FakeQueue),
    (ports.RollupRepository, RollupStore, fakes.FakeRollups),
    (insight_ports.InsightPorts, Repositories, InsightFakePorts),
    (insight_ports.InsightRepository, InsightStore, FakeInsights),
    (destinations.DestinationRepository, DestinationStore, fakes.FakeDestinations),
]


def _members(protocol: Any) -> dict[str, Any]:
    """The methods of a Protocol, those of the Protocols it extends included."""
    found: dict[str, Any] = {}
    for base in reversed(protocol.__mro__):
        if getattr(base, "_is_protocol", False) and base.__module__ != "typing":
            found.update({n: v for n, v in vars(base).items() if callable(v) and not n.startswith("_")})
    return found


def _parameters(function: Any) -> list[tuple[str, Any]]:
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]


def test_repositories_are_accepted_where_the_ports_are_expected() -> None:
    store: ports.Ports = Repositories("dora-insights")  # mypy: Repositories satisfies Ports
    assert isinstance(store.deployments(), DeploymentStore)
    assert isinstance(store.ledger("Spaces-1", "Projects-1/Channels-1/Environments-1/-", "d1"), LedgerStore)
    fake: ports.Ports = fakes.FakePorts()  # and so do the fakes
    assert fake.retry_queue() is not None
    insight_store: insight_ports.InsightPorts = Repositories("dora-insights")
    assert isinstance(insight_store.insights(), InsightStore)
    insight_fake: insight_ports.InsightPorts = InsightFakePorts()
    assert isinstance(insight_fake.insights(), FakeInsights)


@pytest.mark.parametrize(("protocol", "store", "fake"), IMPLEMENTATIONS, ids=lambda v: getattr(v, "__name__", ""))
def test_every_port_method_is_implemented_with_the_same_parameters(protocol: Any, store: type, fake: type) -> None:
    members = _members(protocol)
    assert members
    for name, method in members.items():
        for implementation in (store, fake):
            assert _parameters(getattr(implementation, name)) == _parameters(method), (
                f"{implementation.__name__}.{name}"
            )
