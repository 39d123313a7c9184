"""The recompute queue's function: does the work items the schedule sends (``logic.recompute.process``).

Powertools batch processing with partial batch failures: each record is one item; a record whose
body is not a work item, or whose processing raises past the recompute's own isolation (a space's
failures are counted and recorded, not raised), is reported failed, so only it is retried (then
dead-lettered after the queue's ``maxReceiveCount``) and the rest of the batch is deleted. Its
concurrency is bounded by the event source (``ScalingConfig.MaximumConcurrency``), not by the
schedule. Each item gets the time the invocation has left when it starts.

Metrics (Powertools, EMF, per batch; the names the single-function recompute used, so dashboards
and alarms carry over): ``StreamsProcessed``, ``StreamsPending``, ``StreamsFailed``,
``StreamsQuarantined``, ``ReportsRefreshed``, ``ReportsFailed``, ``ThresholdsFailed``, ``SpacesFailed``,
``ThresholdsFired``, ``AlertsSent``, ``AlertsUndelivered``, ``AttributionsRedriven``,
``AttributionsAbandoned``, ``RecomputeDuration``, ``RecomputeLag``; and ``RecomputeItems``,
``RecomputeItemsFailed`` and ``RecomputeItemsIncomplete`` (out of time: the next tick finishes them).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from dora_insights.handlers.runtime import event_bus, now, store
from dora_insights.logic import recompute
from dora_insights.observability import logger, metrics


def process_batch(event: dict[str, Any], context: Any) -> tuple[dict[str, Any], recompute.RecomputeSummary]:
    """Do every item of an SQS batch: the partial batch response, and the items' summaries as one.

    ``handle`` is this plus logging and metrics; the tests' and benchmarks' in-process drains of the
    queue call it to add the counts up."""
    done: list[recompute.RecomputeSummary] = []
    # One per batch (it holds the batch's state): the local runtime and the tests may run two at once.
    processor = BatchProcessor(event_type=EventType.SQS)
    remaining = getattr(context, "get_remaining_time_in_millis", None)

    def record_handler(record: SQSRecord) -> None:
        item = recompute.WorkItem.model_validate_json(record.body)
        deadline = int(remaining()) if callable(remaining) else None
        summary = recompute.process(store(), item, now(), deadline_ms=deadline, bus=event_bus())
        logger.info(
            "recompute item finished",
            extra={"message_id": record.message_id, **item.model_dump(exclude={"streams"}), **summary.model_dump()},
        )
        done.append(summary)

    with processor(records=event.get("Records", []), handler=record_handler, lambda_context=context):
        processor.process()
    for _, error, _ in processor.exceptions:
        logger.error("recompute item failed", extra={"error": str(error)[:300]})
    return dict(processor.response()), recompute.combine(done)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS entry point (``FunctionResponseTypes: [ReportBatchItemFailures]``)."""
    response, summary = process_batch(event, context)
    failed = len(response.get("batchItemFailures", []))
    metrics.add_metric(name="RecomputeItems", unit=MetricUnit.Count, value=len(event.get("Records", [])))
    metrics.add_metric(name="RecomputeItemsFailed", unit=MetricUnit.Count, value=failed)
    metrics.add_metric(name="RecomputeItemsIncomplete", unit=MetricUnit.Count, value=int(not summary.complete))
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
    return response
