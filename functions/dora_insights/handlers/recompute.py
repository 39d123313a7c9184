"""The scheduled recompute (EventBridge ``rate(5 minutes)``): dirty streams -> figures and aggregates.

Every run emits its counts as Powertools metrics (EMF), zeros included so alarms see data:
``StreamsFailed``, ``StreamsQuarantined`` (held back this run), ``ReportsFailed``,
``ThresholdsFailed``, ``SpacesFailed`` and ``AlertsUndelivered`` (events still owed) beside the
throughput and lag figures.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field

from dora_insights.handlers.runtime import event_bus, now, store
from dora_insights.logic import recompute
from dora_insights.observability import logger, metrics


class ScheduledEvent(BaseModel):
    """The EventBridge "Scheduled Event" shape (the fields used)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = ""
    detail_type: str = Field(default="Scheduled Event", alias="detail-type")
    source: str = "aws.events"
    time: str | None = None


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Schedule entry point; also run once per ``POST /_local/schedule/run`` locally."""
    scheduled = ScheduledEvent.model_validate(event)
    summary = recompute.run(store(), now(), deadline_ms=_remaining(context), bus=event_bus())
    metrics.add_metric(name="StreamsProcessed", unit=MetricUnit.Count, value=summary.streams_processed)
    metrics.add_metric(name="StreamsPending", unit=MetricUnit.Count, value=summary.streams_pending)
    metrics.add_metric(name="StreamsFailed", unit=MetricUnit.Count, value=summary.streams_failed)
    metrics.add_metric(name="StreamsQuarantined", unit=MetricUnit.Count, value=summary.streams_quarantined)
    metrics.add_metric(name="ReportsRefreshed", unit=MetricUnit.Count, value=summary.reports_refreshed)
    metrics.add_metric(name="ReportsFailed", unit=MetricUnit.Count, value=summary.reports_failed)
    metrics.add_metric(name="ThresholdsFailed", unit=MetricUnit.Count, value=summary.thresholds_failed)
    metrics.add_metric(name="SpacesFailed", unit=MetricUnit.Count, value=summary.spaces_failed)
    metrics.add_metric(name="ThresholdsFired", unit=MetricUnit.Count, value=summary.thresholds_fired)
    metrics.add_metric(name="AlertsSent", unit=MetricUnit.Count, value=summary.alerts_sent)
    metrics.add_metric(name="AlertsUndelivered", unit=MetricUnit.Count, value=summary.alerts_undelivered)
    metrics.add_metric(name="AttributionsRedriven", unit=MetricUnit.Count, value=summary.attributions_redriven)
    metrics.add_metric(name="AttributionsAbandoned", unit=MetricUnit.Count, value=summary.attributions_abandoned)
    metrics.add_metric(name="RecomputeDuration", unit=MetricUnit.Seconds, value=summary.duration_seconds)
    metrics.add_metric(name="RecomputeLag", unit=MetricUnit.Seconds, value=summary.lag_seconds)
    logger.info("recompute finished", extra={"event_id": scheduled.id, **summary.model_dump()})
    return summary.model_dump()


def _remaining(context: Any) -> int | None:
    getter = getattr(context, "get_remaining_time_in_millis", None)
    return int(getter()) if callable(getter) else None
