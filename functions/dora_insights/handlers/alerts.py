"""Alert destinations: the routes of ``/api/{spaceId}/alert-destinations`` (scopes ``alert:write`` /
``alert:read``) and the alert-delivery queue's function.

The queue (template.yaml ``AlertDeliveryQueue``) receives, through an EventBridge rule on the service's bus,
every ``InsightThresholdBreached`` and ``InsightThresholdCleared`` event; :func:`deliver_alerts` sends each
to the destinations of its space (``logic.destinations.deliver``). A record that some destination refused
raises, so only it is retried after the queue's visibility timeout, and it ends in the dead-letter queue
after ``maxReceiveCount`` receives (``AlertDeliveryDeadLettered`` metric, ``AlertDeliveryDeadLetterAlarm``).
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from dora_insights.config import get_settings
from dora_insights.dal.destinations import HttpSender
from dora_insights.dialects.destinations import (
    AlertEventEnvelope,
    DeliveryOut,
    DeliveryPage,
    DestinationCreated,
    DestinationIn,
    DestinationList,
    DestinationOut,
    DestinationPatch,
    delivery_extra,
)
from dora_insights.dialects.errors import ErrorDialect
from dora_insights.domain.scopes import Scope
from dora_insights.handlers.http import api, entry, json_response, no_content, public_base
from dora_insights.handlers.params import Cursor, SpaceId
from dora_insights.handlers.runtime import now, principal, secrets, store
from dora_insights.logic import destinations
from dora_insights.observability import count, logger, metrics

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.NATIVE)
TAGS = ["Alert destinations"]
BASE = "/api/<spaceId>/alert-destinations"
DestinationId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9a-z]+$")]
DEFAULT_PAGE, MAX_PAGE = 50, 200
MAX_RECEIVES = 6  # the queue's maxReceiveCount (template.yaml): the receive after which a failure dead-letters


def _sender() -> HttpSender:
    return HttpSender(destinations.SEND_TIMEOUT_SECONDS, allow_loopback=_loopback())


def _loopback() -> bool:
    return get_settings().alert_allow_loopback_http


@router.post(
    BASE,
    summary="Create an alert destination (a webhook's signing secret is answered once)",
    tags=TAGS,
    status_code=201,
)
def _create_alert_destination(spaceId: SpaceId, body: Annotated[DestinationIn, Body()]) -> Response[DestinationCreated]:
    caller = principal()
    created, secret = destinations.create_destination(
        store().destinations(),
        secrets(),
        caller.space_id,
        name=body.name,
        kind=body.kind,
        url=body.url,
        enabled=body.enabled,
        link_base=public_base(router.current_event.headers),
        by=caller.display_name,
        now=now(),
        allow_loopback_http=_loopback(),
    )
    out = DestinationCreated(**DestinationOut.of(created).model_dump(), secret=secret)
    return json_response(201, out)


create_alert_destination = entry(app, ErrorDialect.NATIVE, Scope.ALERT_WRITE)


@router.get(BASE, summary="A space's alert destinations", tags=TAGS)
def _list_alert_destinations(spaceId: SpaceId) -> Response[DestinationList]:
    found = destinations.list_destinations(store().destinations(), principal().space_id)
    return json_response(200, DestinationList(items=[DestinationOut.of(d) for d in found]))


list_alert_destinations = entry(app, ErrorDialect.NATIVE, Scope.ALERT_READ)


@router.get(f"{BASE}/<destinationId>", summary="One alert destination", tags=TAGS)
def _get_alert_destination(spaceId: SpaceId, destinationId: DestinationId) -> Response[DestinationOut]:
    found = destinations.get_destination(store().destinations(), principal().space_id, destinationId)
    return json_response(200, DestinationOut.of(found))


get_alert_destination = entry(app, ErrorDialect.NATIVE, Scope.ALERT_READ)


@router.patch(f"{BASE}/<destinationId>", summary="Rename, re-point, enable or disable a destination", tags=TAGS)
def _update_alert_destination(
    spaceId: SpaceId, destinationId: DestinationId, body: Annotated[DestinationPatch, Body()]
) -> Response[DestinationOut]:
    change = destinations.DestinationChange(name=body.name, url=body.url, enabled=body.enabled)
    changed = destinations.update_destination(
        store().destinations(),
        secrets(),
        principal().space_id,
        destinationId,
        change,
        allow_loopback_http=_loopback(),
    )
    return json_response(200, DestinationOut.of(changed))


update_alert_destination = entry(app, ErrorDialect.NATIVE, Scope.ALERT_WRITE)


@router.delete(f"{BASE}/<destinationId>", summary="Delete an alert destination", tags=TAGS, status_code=204)
def _delete_alert_destination(spaceId: SpaceId, destinationId: DestinationId) -> Response[None]:
    destinations.delete_destination(store().destinations(), principal().space_id, destinationId)
    return no_content()


delete_alert_destination = entry(app, ErrorDialect.NATIVE, Scope.ALERT_WRITE)


@router.post(
    f"{BASE}/<destinationId>/test",
    summary="Send a test alert (type AlertDestinationTest) to the destination now and answer how it went",
    tags=TAGS,
)
def _test_alert_destination(spaceId: SpaceId, destinationId: DestinationId) -> Response[DeliveryOut]:
    delivery = destinations.send_test(
        store().destinations(),
        secrets(),
        _sender(),
        principal().space_id,
        destinationId,
        now=now(),
        allow_loopback_http=_loopback(),
        public_base_url=get_settings().public_base_url,
    )
    return json_response(200, DeliveryOut.of(delivery))


test_alert_destination = entry(app, ErrorDialect.NATIVE, Scope.ALERT_WRITE)


@router.get(f"{BASE}/<destinationId>/deliveries", summary="A destination's delivery log, newest first", tags=TAGS)
def _list_alert_deliveries(
    spaceId: SpaceId,
    destinationId: DestinationId,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Response[DeliveryPage]:
    found, next_cursor = destinations.list_deliveries(
        store().destinations(), principal().space_id, destinationId, limit, cursor, now()
    )
    return json_response(200, DeliveryPage(items=[DeliveryOut.of(d) for d in found], next_cursor=next_cursor))


list_alert_deliveries = entry(app, ErrorDialect.NATIVE, Scope.ALERT_READ)


# --- the alert-delivery queue -------------------------------------------------------------------------
# A failed record is reported (batchItemFailures), not raised as the invocation's error, even when it is the
# whole batch (BatchSize 1): a destination refusing an alert is an expected outcome, not a function error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _receive_count(record: SQSRecord) -> int:
    raw = (record.raw_event.get("attributes") or {}).get("ApproximateReceiveCount", "1")
    return int(raw) if str(raw).isdigit() else 1


def _record(record: SQSRecord) -> None:
    envelope = AlertEventEnvelope.model_validate_json(record.body)  # a malformed message: retried, then DLQ
    if not envelope.is_alert():
        logger.warning("not an alert event; dropped", extra=delivery_extra(envelope))
        return
    attempt = _receive_count(record)
    try:
        report = destinations.deliver(
            store().destinations(),
            secrets(),
            _sender(),
            envelope.detail_type,
            envelope.detail,
            attempt=attempt,
            now=now(),
            allow_loopback_http=_loopback(),
            public_base_url=get_settings().public_base_url,
        )
    except destinations.AlertUndeliveredError as error:
        count("AlertDeliveryFailed", len(error.destination_ids))
        if attempt >= MAX_RECEIVES:
            count("AlertDeliveryDeadLettered", 1)
            logger.error("alert event dead-lettered", extra={**delivery_extra(envelope), "attempt": attempt})
        raise
    count("AlertDeliveries", len(report.delivered))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def deliver_alerts(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS entry point (``FunctionResponseTypes: [ReportBatchItemFailures]``)."""
    return dict(process_partial_response(event=event, record_handler=_record, processor=processor, context=context))
