"""The recompute queue's function: does the work items the schedule sends (``logic.recompute.process``).

Powertools batch processing with partial batch failures: each record is one item; a record whose
body is not a work item, or whose processing raises past the recompute's own isolation (a space's
failures are counted and recorded, not raised), is reported failed, so only it is retried (then
dead-lettered after the queue's ``maxReceiveCount``) and the rest of the batch is deleted; a batch
whose every record failed is reported the same way (not raised), so its failures are logged and
counted too. Its concurrency is bounded by the event source (``ScalingConfig.MaximumConcurrency``),
not by the schedule.

Time (``handlers.invocation_time``): Lambda's timeout would return the whole batch, items done
included, so no item starts with less than ``ITEM_FLOOR_MS`` (60 s of the 300 s ``Timeout``) left,
and an item's own budget is the time left before that floor: the floor covers the steps of an item
that do not check the budget (its setup reads and attribution sweep, the stream or report in progress
when the budget runs out, clearing the marks, thresholds and alert deliveries, the health record).
An item not started is acknowledged, not failed: every tick sends every space's item again (and a
big space's stream groups while its streams wait), so the next tick does its work within 5 minutes,
where a failed item would come back only after the 30-minute visibility timeout with a receive
counted toward the dead-letter queue. It is counted as ``RecomputeItemsDeferred``.

Metrics (Powertools, EMF, per batch; the names the single-function recompute used, so dashboards
and alarms carry over): ``StreamsProcessed``, ``StreamsPending``, ``StreamsFailed``,
``StreamsQuarantined``, ``ReportsRefreshed``, ``ReportsFailed``, ``ThresholdsFailed``, ``SpacesFailed``,
``ThresholdsFired``, ``AlertsSent``, ``AlertsUndelivered``, ``AttributionsRedriven``,
``AttributionsAbandoned``, ``RecomputeDuration``, ``RecomputeLag``; and ``RecomputeItems``,
``RecomputeItemsFailed``, ``RecomputeItemsIncomplete`` (items out of time, those not started
included: the next tick finishes them) and ``RecomputeItemsDeferred`` (not started).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from dora_insights.handlers.invocation_time import InvocationTime
from dora_insights.handlers.runtime import event_bus, now, store
from dora_insights.logic import recompute
from dora_insights.observability import count, logger, metrics

# No item starts with less than this left, and an item's budget ends this long before Lambda's timeout:
# the steps of an item that do not check the budget. Measured (docs/recompute.md, "Sizing"), a whole
# space item of 1,000 deployments takes about 3 s deployed, so 60 s is about twenty times what those
# steps take for such a space, and what the first item of a batch always had left of the 300 s Timeout
# after its 80 % (``recompute.BUDGET_SHARE``).
ITEM_FLOOR_MS = 60_000
# A context with less time than the 300 s Timeout (a test's) gets this share of it as its floor instead.
ITEM_FLOOR_SHARE = 0.2


def process_batch(event: dict[str, Any], context: Any) -> tuple[dict[str, Any], recompute.RecomputeSummary]:
    """Do every item of an SQS batch: the partial batch response, and the items' summaries as one.

    ``handle`` is this plus logging and metrics; the tests' in-process drains of the queue call it to
    add the counts up. It adds the batch's ``RecomputeItemsIncomplete`` and ``RecomputeItemsDeferred``
    itself (an item not started has no summary of its own to count them from)."""
    done: list[recompute.RecomputeSummary] = []
    deferred: list[str] = []
    # One per batch (it holds the batch's state): the local runtime and the tests may run two at once.
    # Every record failing is reported like any failure, not raised: the logging and metrics below run.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    invocation = InvocationTime(context, floor_ms=ITEM_FLOOR_MS, floor_share=ITEM_FLOOR_SHARE)

    def record_handler(record: SQSRecord) -> None:
        item = recompute.WorkItem.model_validate_json(record.body)
        if not invocation.may_start():
            deferred.append(record.message_id)
            extra = {"message_id": record.message_id, "remaining_ms": invocation.remaining_ms()}
            logger.warning(
                "recompute item not started: too little time left, the next tick sends it again",
                extra={**extra, **item.model_dump(exclude={"streams"})},
            )
            return
        summary = recompute.process(store(), item, now(), deadline_ms=invocation.before_floor_ms(), bus=event_bus())
        logger.info(
            "recompute item finished",
            extra={"message_id": record.message_id, **item.model_dump(exclude={"streams"}), **summary.model_dump()},
        )
        done.append(summary)

    with processor(records=event.get("Records", []), handler=record_handler, lambda_context=context):
        processor.process()
    for _, error, _ in processor.exceptions:
        logger.error("recompute item failed", extra={"error": str(error)[:300]})
    incomplete = sum(not summary.complete for summary in done) + len(deferred)
    count("RecomputeItemsIncomplete", incomplete)
    count("RecomputeItemsDeferred", len(deferred))
    combined = recompute.combine(done)
    combined.complete = incomplete == 0
    return dict(processor.response()), combined


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS entry point (``FunctionResponseTypes: [ReportBatchItemFailures]``)."""
    response, summary = process_batch(event, context)
    failed = len(response.get("batchItemFailures", []))
    count("RecomputeItems", len(event.get("Records", [])))
    count("RecomputeItemsFailed", failed)
    count("StreamsProcessed", summary.streams_processed)
    count("StreamsPending", summary.streams_pending)
    count("StreamsFailed", summary.streams_failed)
    count("StreamsQuarantined", summary.streams_quarantined)
    count("ReportsRefreshed", summary.reports_refreshed)
    count("ReportsFailed", summary.reports_failed)
    count("ThresholdsFailed", summary.thresholds_failed)
    count("SpacesFailed", summary.spaces_failed)
    count("ThresholdsFired", summary.thresholds_fired)
    count("AlertsSent", summary.alerts_sent)
    count("AlertsUndelivered", summary.alerts_undelivered)
    count("AttributionsRedriven", summary.attributions_redriven)
    count("AttributionsAbandoned", summary.attributions_abandoned)
    count("RecomputeDuration", summary.duration_seconds, MetricUnit.Seconds)
    metrics.add_metric(name="RecomputeLag", unit=MetricUnit.Seconds, value=summary.lag_seconds)
    return response
