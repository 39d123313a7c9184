"""Alert delivery at volume and under retries (order at the receiver, batches, two spaces, links).

The delivery path as deployed, in moto (``pipeline`` of test_alert_destinations: the bus, the rule of
template.yaml, the alert-delivery queue). Messages are taken off the queue and handed to
AlertDeliveryFunction by the test, in the order SQS may deliver them (a retry after the visibility timeout
comes after later messages), as Lambda's event source mapping would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest

from dora_local.events import failed_message_ids, sqs_record
from tests.conftest import ADMIN_KEY, Api, Clock
from tests.integration.test_alert_destinations import (  # noqa: F401  (the pipeline fixture is used by name)
    NOW,
    Pipeline,
    pipeline,
)
from tests.support import lambdas
from tests.support.fixtures import OTHER_KEY, OTHER_SPACE
from tests.support.insights import weekly_deploys_insight
from tests.support.receiver import Receiver

SP1 = "Spaces-1"
DEST = "/api/{spaceId}/alert-destinations"
ONE = DEST + "/{destinationId}"
THRESHOLDS = "/api/projects/{spaceId}/insights/{insightId}/thresholds"


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


# --------------------------------------------------------------------------------------------- helpers
def _destination(api: Api, url: str, space: str = SP1, key: str = ADMIN_KEY, kind: str = "webhook") -> dict[str, Any]:
    made = api.call(
        "POST", DEST, path_params={"spaceId": space}, body={"name": url[-12:], "kind": kind, "url": url}, key=key
    )
    assert made.status == 201, made.body
    return made.body  # type: ignore[no-any-return]


def _threshold(api: Api, insight_id: int, name: str, upper: float = 1, space: str = SP1, key: str = ADMIN_KEY) -> str:
    made = api.call(
        "POST",
        THRESHOLDS,
        path_params={"spaceId": space, "insightId": str(insight_id)},
        body={"name": name, "condition": {"bounds": {"upper": upper}}, "calculation_interval": "hourly"},
        key=key,
    )
    assert made.status == 201, made.body
    return str(made.body["id"])


def _run(store: Any, space: str, value: float, now: Any) -> Any:
    """One threshold pass of ``space`` (every insight's value ``value``) onto the pipeline's bus."""
    from dora_insights.config import get_settings
    from dora_insights.dal.events import EventBus
    from dora_insights.logic import alerts

    counts = alerts.evaluate_thresholds(
        store.insights(), lambda insight: value, EventBus(str(get_settings().event_bus_name)), space, now
    )
    assert (counts.failed, counts.undelivered) == (0, 0)
    return counts


def _take(pipeline: Pipeline) -> list[dict[str, Any]]:  # noqa: F811
    """Every message now on the alert-delivery queue as SQS records, held (invisible) while the test hands them."""
    records: list[dict[str, Any]] = []
    while True:
        got = pipeline.sqs.receive_message(
            QueueUrl=pipeline.queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=900,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not got:
            return records
        records.extend(sqs_record(m, pipeline.queue_arn) for m in got)


def _hand(records: list[dict[str, Any]], context: Any) -> set[str]:
    """One invocation of AlertDeliveryFunction with ``records`` as its batch: the message ids it reported failed."""
    response = lambdas.invoke("AlertDeliveryFunction", {"Records": records}, context)
    return failed_message_ids(response, records)


def _again(record: dict[str, Any]) -> dict[str, Any]:
    """The same message received once more (after its visibility timeout)."""
    count = int(record["attributes"]["ApproximateReceiveCount"]) + 1
    return {**record, "attributes": {**record["attributes"], "ApproximateReceiveCount": str(count)}}


def _detail(record: dict[str, Any]) -> dict[str, Any]:
    return json.loads(record["body"])["detail"]  # type: ignore[no-any-return]


def _answered_ok(receiver: Receiver, path: str, statuses: list[int]) -> list[dict[str, Any]]:
    """The bodies ``path`` received that it answered 2xx, in arrival order (``statuses``: its answers in turn,
    the last repeating, as ``Receiver.answer`` gives them)."""
    bodies = []
    for n, request in enumerate(receiver.at(path)):
        status = statuses[min(n, len(statuses) - 1)]
        if 200 <= status < 300:
            bodies.append(json.loads(request.body))
    return bodies


def _doc_verified(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """API.md's receiver recipe, word for word but for the clock (``now``: the receiver's, here the request's)."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields.get("v1", "")) and abs(now - int(fields["t"])) <= tolerance


# --------------------------------------------------------------------------------------------- order
def test_a_breach_retried_after_its_clearing_never_leaves_the_receiver_firing(
    api: Api,
    store: Any,
    receiver: Receiver,
    pipeline: Pipeline,  # noqa: F811
    loopback: None,
    clock: Clock,
    lambda_context: Any,
) -> None:
    """A threshold fires; destination /b answers its breach 500 (retried after the queue's 6 minute visibility
    timeout). Meanwhile the threshold is disabled and the next tick sends its clearing, which /b takes. Then the
    breach's retry comes. Each destination must end with the threshold's latest transition: the clearing never
    arrives (as a 2xx) before the breach it ends, whatever order SQS hands the messages in."""
    statuses_b = [500, 200]
    receiver.by_path["/b"] = list(statuses_b)
    _destination(api, receiver.url + "/a")
    _destination(api, receiver.url + "/b")
    insight_id = weekly_deploys_insight(api, SP1, ADMIN_KEY, "Deploys")
    tid = _threshold(api, insight_id, "Too many deploys")

    _run(store, SP1, 5.0, clock.now)  # 12:00 Firing: the breach
    (breach,) = _take(pipeline)
    assert _hand([breach], lambda_context) == {breach["messageId"]}  # /b answered 500: retried in 6 minutes

    clock.advance(timedelta(minutes=2))
    off = api.call(
        "PATCH",
        THRESHOLDS + "/{thresholdId}",
        path_params={"spaceId": SP1, "insightId": str(insight_id), "thresholdId": tid},
        body={"enabled": False},
        key=ADMIN_KEY,
    )
    assert off.status == 200, off.body
    clock.advance(timedelta(minutes=3))
    _run(store, SP1, 5.0, clock.now)  # 12:05 the next tick ends it: the clearing
    (clearing,) = _take(pipeline)
    assert _detail(clearing)["reason"] == "threshold_disabled"

    # SQS hands the clearing now and the breach's retry at 12:06; anything reported failed comes back later.
    queue = [clearing, _again(breach)]
    for _ in range(12):
        if not queue:
            break
        clock.advance(timedelta(minutes=1))
        record = queue.pop(0)
        if _hand([record], lambda_context):
            queue.append(_again(record))
    for path, statuses in (("/a", [200]), ("/b", statuses_b)):
        got = [b for b in _answered_ok(receiver, path, statuses) if b["threshold_id"] == tid]
        stamps = [b["checked_at"] for b in got]
        assert stamps == sorted(stamps), (path, [(b["type"], b["checked_at"]) for b in got])
        assert got and got[-1]["type"] == "InsightThresholdCleared", (path, [b["type"] for b in got])


# --------------------------------------------------------------------------------------------- links
def test_insight_url_follows_public_base_url_set_after_the_destination_was_created(
    api: Api,
    store: Any,
    receiver: Receiver,
    pipeline: Pipeline,  # noqa: F811
    loopback: None,
    clock: Clock,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """API.md: ``insight_url`` is ``<base>/api/projects/{spaceId}/insights/{id}``, ``<base>`` being
    ``PUBLIC_BASE_URL`` when set, else the scheme and host the destination was created through. A service given
    its public address after its destinations were made must link there, not to the host they were made through."""
    from dora_insights.config import reset_settings

    _destination(api, receiver.url + "/a")
    insight_id = weekly_deploys_insight(api, SP1, ADMIN_KEY, "Deploys")
    _threshold(api, insight_id, "Too many deploys")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://dora.example.com")
    reset_settings()
    _run(store, SP1, 5.0, clock.now)
    records = _take(pipeline)
    assert _hand(records, lambda_context) == set()
    (body,) = [json.loads(r.body) for r in receiver.at("/a")]
    assert body["insight_url"] == f"https://dora.example.com/api/projects/{SP1}/insights/{insight_id}"


# --------------------------------------------------------------------------------------------- batches, spaces, retries
def test_a_batch_of_ten_from_two_spaces_reports_only_the_failing_spaces_records_and_never_crosses(
    api: Api,
    store: Any,
    receiver: Receiver,
    pipeline: Pipeline,  # noqa: F811
    loopback: None,
    other_space: str,
    clock: Clock,
    lambda_context: Any,
) -> None:
    """Five breaches of each of two spaces in one batch of ten (interleaved); the second space's destination
    answers 503 first: batchItemFailures names exactly its five records; the first space's destination gets its
    own five once, signed as API.md's recipe checks, and never the other space's; the retry of the five sends
    nothing again to the first space."""
    one = _destination(api, receiver.url + "/one")
    two = _destination(api, receiver.url + "/two", space=OTHER_SPACE, key=OTHER_KEY)
    receiver.by_path["/two"] = [503, 503, 503, 503, 503, 200]
    for space, key in ((SP1, ADMIN_KEY), (OTHER_SPACE, OTHER_KEY)):
        insight_id = weekly_deploys_insight(api, space, key, f"Deploys {space}")
        for n in range(5):
            _threshold(api, insight_id, f"t{n}", space=space, key=key)
        _run(store, space, 5.0, clock.now)
    records = _take(pipeline)
    assert len(records) == 10
    by_space: dict[str, list[dict[str, Any]]] = {SP1: [], OTHER_SPACE: []}
    for record in records:
        by_space[_detail(record)["space_id"]].append(record)
    batch = [r for pair in zip(by_space[SP1], by_space[OTHER_SPACE], strict=True) for r in pair]

    failed = _hand(batch, lambda_context)
    assert failed == {r["messageId"] for r in by_space[OTHER_SPACE]}
    assert _hand([_again(r) for r in batch if r["messageId"] in failed], lambda_context) == set()

    for path, space, made in (("/one", SP1, one), ("/two", OTHER_SPACE, two)):
        requests = receiver.at(path)
        bodies = [json.loads(r.body) for r in requests]
        assert {b["space_id"] for b in bodies} == {space}
        for request in requests:
            stamp = int(request.headers["x-dora-timestamp"])
            assert _doc_verified(made["secret"], request.headers["x-dora-signature"], request.body, now=stamp)
    ones = [json.loads(r.body)["notification_id"] for r in receiver.at("/one")]
    assert sorted(ones) == sorted(_detail(r)["notification_id"] for r in by_space[SP1])
    delivered_two = [json.loads(r.body)["notification_id"] for r in receiver.at("/two")][5:]
    assert sorted(delivered_two) == sorted(_detail(r)["notification_id"] for r in by_space[OTHER_SPACE])


def test_a_poison_message_in_a_batch_is_the_only_one_retried(
    api: Api,
    store: Any,
    receiver: Receiver,
    pipeline: Pipeline,  # noqa: F811
    loopback: None,
    clock: Clock,
    lambda_context: Any,
) -> None:
    """A message that is not an alert event (a body that is not JSON, a detail without a space) next to nine good
    ones: only it is reported failed (retried, then the DLQ), and the nine reach the destination once each."""
    _destination(api, receiver.url + "/a")
    insight_id = weekly_deploys_insight(api, SP1, ADMIN_KEY, "Deploys")
    for n in range(8):
        _threshold(api, insight_id, f"t{n}")
    _run(store, SP1, 5.0, clock.now)
    records = _take(pipeline)
    assert len(records) == 8
    garbage = {**records[0], "messageId": "poison-1", "body": "{not json"}
    spaceless = {
        **records[0],
        "messageId": "poison-2",
        "body": json.dumps({"detail-type": "InsightThresholdBreached", "detail": {"notification_id": "x"}}),
    }
    batch = [*records[:4], garbage, *records[4:], spaceless]
    assert _hand(batch, lambda_context) == {"poison-1", "poison-2"}
    got = [json.loads(r.body)["notification_id"] for r in receiver.at("/a")]
    assert sorted(got) == sorted(_detail(r)["notification_id"] for r in records)


def test_fifty_breaches_of_twenty_insights_with_refused_entries_reach_the_queue_once_each(
    api: Api,
    store: Any,
    pipeline: Pipeline,  # noqa: F811
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """50 thresholds on 20 insights fire in one tick; PutEvents (calls of at most 10 entries) refuses every
    seventh entry (FailedEntryCount) and fails one whole call: the tick reports them undelivered, the next tick
    sends exactly those, and the queue holds every breach once."""
    from dora_insights.config import get_settings
    from dora_insights.dal import aws as dal_aws
    from dora_insights.dal.events import EventBus
    from dora_insights.logic import alerts

    insights = [weekly_deploys_insight(api, SP1, ADMIN_KEY, f"D{n}") for n in range(20)]
    for n in range(50):
        _threshold(api, insights[n % 20], f"t{n}")
    client = dal_aws.client("events")
    real = client.put_events
    calls: list[int] = []
    faulty = {"on": True}

    def put_events(**kwargs: Any) -> dict[str, Any]:
        entries = kwargs["Entries"]
        calls.append(len(entries))
        if faulty["on"] and len(calls) == 3:
            raise dal_aws.ClientError({"Error": {"Code": "ThrottlingException", "Message": "x"}}, "PutEvents")
        refused = [faulty["on"] and n % 7 == 3 for n in range(len(entries))]
        passed = [e for e, no in zip(entries, refused, strict=True) if not no]
        accepted = iter(real(**{**kwargs, "Entries": passed})["Entries"] if passed else [])
        results = [{"ErrorCode": "InternalFailure", "ErrorMessage": "x"} if no else next(accepted) for no in refused]
        return {"FailedEntryCount": sum(refused), "Entries": results}

    monkeypatch.setattr(client, "put_events", put_events)
    bus = EventBus(str(get_settings().event_bus_name))
    first = alerts.evaluate_thresholds(store.insights(), lambda insight: 5.0, bus, SP1, clock.now)
    assert first.fired == 50 and max(calls) <= 10
    assert first.sent + first.undelivered == 50 and first.undelivered > 10
    faulty["on"] = False
    clock.advance(timedelta(minutes=5))
    second = alerts.evaluate_thresholds(store.insights(), lambda insight: 5.0, bus, SP1, clock.now)
    assert (second.fired, second.sent, second.undelivered) == (0, first.undelivered, 0)
    ids = [_detail(r)["notification_id"] for r in _take(pipeline)]
    assert len(ids) == 50 and len(set(ids)) == 50


def test_a_destination_repointed_before_the_retry_gets_it_at_the_new_url_only(
    api: Api,
    store: Any,
    receiver: Receiver,
    pipeline: Pipeline,  # noqa: F811
    loopback: None,
    clock: Clock,
    lambda_context: Any,
) -> None:
    """/old answers 500; the destination is re-pointed to /new before the retry: the retry goes to /new (signed
    with the same secret, same notification_id), /old never sees it again, and a further copy sends nothing."""
    made = _destination(api, receiver.url + "/old")
    receiver.by_path["/old"] = [500]
    insight_id = weekly_deploys_insight(api, SP1, ADMIN_KEY, "Deploys")
    _threshold(api, insight_id, "t")
    _run(store, SP1, 5.0, clock.now)
    (record,) = _take(pipeline)
    assert _hand([record], lambda_context) == {record["messageId"]}
    patched = api.call(
        "PATCH",
        ONE,
        path_params={"spaceId": SP1, "destinationId": made["id"]},
        body={"url": receiver.url + "/new"},
        key=ADMIN_KEY,
    )
    assert patched.status == 200, patched.body
    clock.advance(timedelta(minutes=6))
    assert _hand([_again(record)], lambda_context) == set()
    assert _hand([_again(_again(record))], lambda_context) == set()
    assert len(receiver.at("/old")) == 1
    (new,) = receiver.at("/new")
    assert json.loads(new.body)["notification_id"] == _detail(record)["notification_id"]
    stamp = int(new.headers["x-dora-timestamp"])
    assert _doc_verified(made["secret"], new.headers["x-dora-signature"], new.body, now=stamp)
