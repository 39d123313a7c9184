"""The attribution-retry queue's function: Powertools batch processing, partial batch failures.

Each record names a deployment whose attribution waits for code data (METRICS §5). A record
that fails raises, so only it is retried (and ends in the DLQ after the redrive count); the
rest of the batch is deleted.

Metrics (Powertools, EMF): ``AttributionRetryRecords`` per batch; ``AttributionRetryFailed`` per
failed record; ``AttributionDeadLettered`` when that failure was the record's last receive (it
goes to the DLQ: alarm on it, and on the DLQ's depth, ``RetryDeadLetterAlarm``);
``AttributionGaveUp`` when an attribution ends GaveUp after its 3 days (METRICS §5).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, ConfigDict, Field

from dora_insights.domain.attribution import AttributionState
from dora_insights.handlers.runtime import now, store
from dora_insights.logic import attribution_retry
from dora_insights.observability import logger, metrics

processor = BatchProcessor(event_type=EventType.SQS)


class RetryMessage(BaseModel):
    """The body of a retry message."""

    model_config = ConfigDict(extra="ignore")

    space_id: str = Field(min_length=1, max_length=64)
    deployment_id: str = Field(min_length=1, max_length=128)
    attempt: int = Field(ge=0, le=10_000)


def _record(record: SQSRecord) -> None:
    try:
        message = RetryMessage.model_validate_json(record.body)
        state = attribution_retry.retry(store(), message.space_id, message.deployment_id, message.attempt, now())
    except Exception:
        metrics.add_metric(name="AttributionRetryFailed", unit=MetricUnit.Count, value=1)
        if attribution_retry.dead_letters(_receive_count(record)):
            metrics.add_metric(name="AttributionDeadLettered", unit=MetricUnit.Count, value=1)
            logger.error("attribution retry dead-lettered", extra={"message_id": record.message_id})
        raise
    if state == AttributionState.GAVE_UP:
        metrics.add_metric(name="AttributionGaveUp", unit=MetricUnit.Count, value=1)


def _receive_count(record: SQSRecord) -> int:
    """The record's ``ApproximateReceiveCount`` (1 when absent or malformed)."""
    raw = (record.raw_event.get("attributes") or {}).get("ApproximateReceiveCount", "1")
    return int(raw) if str(raw).isdigit() else 1


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS entry point (``FunctionResponseTypes: [ReportBatchItemFailures]``)."""
    metrics.add_metric(name="AttributionRetryRecords", unit=MetricUnit.Count, value=len(event.get("Records", [])))
    return dict(process_partial_response(event=event, record_handler=_record, processor=processor, context=context))
