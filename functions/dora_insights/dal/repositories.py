"""The table adapter with the repositories logic reaches through its ports (``logic/ports.py``).

``Repositories`` is the ``Store`` a function holds (``handlers.runtime.store()``); each accessor hands
out the concrete repository for one port, so logic never constructs a dal class itself. Each accessor
imports its repository's module when first called: a function loads only the dal modules its routes
use (a cold start of the deployments function does not import insights, Orlo or reports). It satisfies
``logic.ports.Ports`` structurally (dal does not import logic); ``tests/unit/test_ports.py``
has mypy check that it does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dora_insights.config import get_settings
from dora_insights.dal.store import Store

if TYPE_CHECKING:
    from dora_insights.dal.attribution import AttributionStore, LedgerStore, RetryQueue
    from dora_insights.dal.code import CodeStore
    from dora_insights.dal.deployments import DeploymentStore
    from dora_insights.dal.destinations import DestinationStore
    from dora_insights.dal.event_search import EventSearchStore
    from dora_insights.dal.failures import FailureStore
    from dora_insights.dal.health import HealthStore
    from dora_insights.dal.incidents import IncidentStore
    from dora_insights.dal.insights import InsightStore
    from dora_insights.dal.metrics import MetricsStore
    from dora_insights.dal.orlo import OrloStore
    from dora_insights.dal.reports import ReportStore
    from dora_insights.dal.rollups import RollupStore
    from dora_insights.domain.model import Deployment


class Repositories(Store):
    """A ``Store`` that also hands out the repositories of the logic ports (each cheap to construct)."""

    def deployments(self) -> DeploymentStore:
        """Deployments: by id, create, replace, list."""
        from dora_insights.dal.deployments import DeploymentStore

        return DeploymentStore(self)

    def failures(self) -> FailureStore:
        """Failure events."""
        from dora_insights.dal.failures import FailureStore

        return FailureStore(self)

    def incidents(self) -> IncidentStore:
        """Incident webhooks (PagerDuty, Opsgenie): configuration, applied deliveries, resolutions."""
        from dora_insights.dal.incidents import IncidentStore

        return IncidentStore(self)

    def event_search(self) -> EventSearchStore:
        """Deployments and failure events for a search evaluated on each event read (Datadog lists)."""
        from dora_insights.dal.event_search import EventSearchStore

        return EventSearchStore(self)

    def metrics(self) -> MetricsStore:
        """Recompute inputs, per-stream figures, report states and views."""
        from dora_insights.dal.metrics import MetricsStore

        return MetricsStore(self)

    def rollups(self) -> RollupStore:
        """Daily rollups of GitLab's DORA metrics API."""
        from dora_insights.dal.rollups import RollupStore

        return RollupStore(self)

    def health(self) -> HealthStore:
        """The recompute's health records and rotation cursor."""
        from dora_insights.dal.health import HealthStore

        return HealthStore(self)

    def reports(self) -> ReportStore:
        """Insights reports."""
        from dora_insights.dal.reports import ReportStore

        return ReportStore(self)

    def orlo(self) -> OrloStore:
        """Orlo releases, packages, results and tokens."""
        from dora_insights.dal.orlo import OrloStore

        return OrloStore(self)

    def attribution(self, space_id: str) -> AttributionStore:
        """The attributions of one space."""
        from dora_insights.dal.attribution import AttributionStore

        return AttributionStore(self, space_id)

    def ledger(
        self, space_id: str, stream: str, deployment_id: str, *, before: Deployment | None = None
    ) -> LedgerStore:
        """A new ``LedgerStore`` per attempt (it remembers the marks it read)."""
        from dora_insights.dal.attribution import LedgerStore

        return LedgerStore(self, space_id, stream, deployment_id, before)

    def code(self, space_id: str) -> CodeStore:
        """Code data of one space."""
        from dora_insights.dal.code import CodeStore

        return CodeStore(self, space_id)

    def retry_queue(self) -> RetryQueue | None:
        """The queue of this function's settings (``retry_queue_url``)."""
        from dora_insights.dal.attribution import RetryQueue

        url = get_settings().retry_queue_url
        return RetryQueue(url) if url else None

    def destinations(self) -> DestinationStore:
        """Alert destinations, their delivery log and delivered marks."""
        from dora_insights.dal.destinations import DestinationStore

        return DestinationStore(self)

    def insights(self) -> InsightStore:
        """Saved insights (PostHog dialect): insights, activity, views, sharing, thresholds and their outbox."""
        from dora_insights.dal.insights import InsightStore

        return InsightStore(self)
