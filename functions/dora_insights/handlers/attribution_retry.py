"""The attribution-retry queue's function: Powertools batch processing, partial batch failures.

Each record names a deployment whose attribution waits for code data (METRICS §5), or several
(``deployment_ids``: a bulk write's deferred attributions, one stream's in finish order), attempted
in order. A record that fails raises (after attempting every deployment it names: an attempt is
idempotent, so the ones done are no-ops when it comes back), so only it is retried (and ends in the
DLQ after the redrive count); the rest of the batch is deleted.

Metrics (Powertools, EMF): ``AttributionRetryRecords`` per batch; ``AttributionRetryFailed`` per
failed record; ``AttributionDeadLettered`` when that failure was the record's last receive (it
goes to the DLQ: alarm on it, and on the DLQ's depth, ``RetryDeadLetterAlarm``);
``AttributionGaveUp`` when an attribution ends GaveUp after its 3 days (METRICS §5).
"""

from typing import Annotated, Any, Self

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dora_insights.domain.attribution import AttributionState
from dora_insights.handlers.runtime import now, store
from dora_insights.logic import attribution_retry
from dora_insights.observability import logger, metrics

processor = BatchProcessor(event_type=EventType.SQS)


class RetryMessage(BaseModel):
    """The body of a retry message."""

    model_config = ConfigDict(extra="ignore")

    space_id: str = Field(min_length=1, max_length=64)
    deployment_id: str | None = Field(default=None, min_length=1, max_length=128)
    deployment_ids: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(
        default=None, min_length=1, max_length=100
    )
    attempt: int = Field(default=0, ge=0, le=10_000)

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        if (self.deployment_id is None) == (self.deployment_ids is None):
            raise ValueError("a retry message names deployment_id or deployment_ids")
        return self

    def named(self) -> list[str]:
        return [self.deployment_id] if self.deployment_id is not None else list(self.deployment_ids or [])


def _record(record: SQSRecord) -> None:
    try:
        message = RetryMessage.model_validate_json(record.body)
        failed: Exception | None = None
        for deployment_id in message.named():
            try:
                state = attribution_retry.retry(store(), message.space_id, deployment_id, message.attempt, now())
            except Exception as error:
                logger.exception("attribution retry failed", extra={"deployment_id": deployment_id})
                failed = failed or error
                continue
            if state == AttributionState.GAVE_UP:
                metrics.add_metric(name="AttributionGaveUp", unit=MetricUnit.Count, value=1)
        if failed is not None:
            raise failed
    except Exception:
        metrics.add_metric(name="AttributionRetryFailed", unit=MetricUnit.Count, value=1)
        if attribution_retry.dead_letters(_receive_count(record)):
            metrics.add_metric(name="AttributionDeadLettered", unit=MetricUnit.Count, value=1)
            logger.error("attribution retry dead-lettered", extra={"message_id": record.message_id})
        raise


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
