"""The attribution-retry queue's function: Powertools batch processing, partial batch failures.

Each record names a deployment whose attribution waits for code data (METRICS §5), or several
(``deployment_ids``: a bulk write's deferred attributions, one stream's in finish order), attempted
in order. A record that fails raises (after attempting every deployment it names: an attempt is
idempotent, so the ones done are no-ops when it comes back), so only it is retried (and ends in the
DLQ after the redrive count); the rest of the batch is deleted.

Time (``handlers.invocation_time``): a batch names up to 10 x ``RETRY_GROUP`` (100) deployments, more
than its 60 s ``Timeout`` may hold, and Lambda's timeout would return the whole batch, the records done
included, with a receive counted toward the DLQ. So no deployment's attempt starts with less than
``ATTEMPT_FLOOR_MS`` left (one attempt, about 25 calls even for a push of 5,000 commits, then the
re-send below); the deployments of a record not attempted are sent again at once as a new message of
the same form (``attribution_retry.defer``) and the record is acknowledged.

Metrics (Powertools, EMF; each sent only when not zero, ``observability.count``: the records a batch
took are SQS's ``NumberOfMessagesDeleted`` and Lambda's ``Invocations``): ``AttributionRetryFailed`` per
failed record; ``AttributionDeadLettered`` when that failure was the record's last receive (it
goes to the DLQ: alarm on it, and on the DLQ's depth, ``RetryDeadLetterAlarm``);
``AttributionGaveUp`` when an attribution ends GaveUp after its 3 days (METRICS §5);
``AttributionRetryDeferred``: deployments sent again because the invocation's time ran short.
"""

from typing import Annotated, Any, Self

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dora_insights.domain.attribution import AttributionState
from dora_insights.handlers.invocation_time import InvocationTime
from dora_insights.handlers.runtime import now, store
from dora_insights.logic import attribution_retry
from dora_insights.observability import count, logger, metrics

# A batch whose every record failed raises (Powertools' default; for SQS the same outcome as reporting them
# all): nothing runs after the batch, its metrics are added per record and flushed all the same.
processor = BatchProcessor(event_type=EventType.SQS)

# No attempt starts with less than this left of the 60 s Timeout: one attempt (about 25 DynamoDB calls
# for a push of 5,000 commits, a second or two even throttled) and the re-send of what is left.
ATTEMPT_FLOOR_MS = 10_000
# A context with less time than the Timeout (a test's) gets this share of it as its floor instead.
ATTEMPT_FLOOR_SHARE = 1 / 6


class RetryMessage(BaseModel):
    """The body of a retry message."""

    model_config = ConfigDict(extra="ignore")

    space_id: str = Field(min_length=1, max_length=64)
    deployment_id: str | None = Field(default=None, min_length=1, max_length=128)
    deployment_ids: list[Annotated[str, Field(min_length=1, max_length=128)]] | None = Field(
        default=None, min_length=1, max_length=100
    )
    attempt: int = Field(default=0, ge=0, le=10_000)
    # Of a group: the stream's success before its first deployment (``RetryQueue.send_groups``).
    after: str | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        if (self.deployment_id is None) == (self.deployment_ids is None):
            raise ValueError("a retry message names deployment_id or deployment_ids")
        return self

    def named(self) -> list[str]:
        return [self.deployment_id] if self.deployment_id is not None else list(self.deployment_ids or [])


def _record(record: SQSRecord, invocation: InvocationTime) -> None:
    try:
        message = RetryMessage.model_validate_json(record.body)
        named = message.named()
        failed: Exception | None = None
        earlier = None  # of a group (one stream's, in stream order): the last successful one attempted
        if message.after is not None and message.deployment_ids is not None:
            before = attribution_retry.stored(store(), message.space_id, message.after)
            earlier = before if before is not None and before.is_successful else None
        for position, deployment_id in enumerate(named):
            if not invocation.may_start():
                left = named[position:]
                grouped = message.deployment_ids is not None
                after = earlier.id if earlier is not None else message.after
                attribution_retry.defer(store(), message.space_id, left, message.attempt, grouped=grouped, after=after)
                count("AttributionRetryDeferred", len(left))
                break
            try:
                retried = attribution_retry.retry(
                    store(), message.space_id, deployment_id, message.attempt, now(), earlier=earlier
                )
            except Exception as error:
                logger.exception("attribution retry failed", extra={"deployment_id": deployment_id})
                failed = failed or error
                try:  # the next ones follow it in the stream, attributed or not (the index may not show it)
                    current = attribution_retry.stored(store(), message.space_id, deployment_id)
                except Exception:
                    break  # unknown: the rest wait for the record's return, in order
                if current is not None and current.is_successful:
                    earlier = current
                continue
            if retried.deployment is not None and retried.deployment.is_successful:
                earlier = retried.deployment
            if retried.state == AttributionState.GAVE_UP:
                count("AttributionGaveUp", 1)
        if failed is not None:
            raise failed
    except Exception:
        count("AttributionRetryFailed", 1)
        if attribution_retry.dead_letters(_receive_count(record)):
            count("AttributionDeadLettered", 1)
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
    invocation = InvocationTime(context, floor_ms=ATTEMPT_FLOOR_MS, floor_share=ATTEMPT_FLOOR_SHARE)

    def record_handler(record: SQSRecord) -> None:
        _record(record, invocation)

    return dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
