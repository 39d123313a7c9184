"""Alerts are delivered at least once (issue 14 item 2): a threshold's move into Firing is saved with
the event it owes, and every scheduled run puts what is still owed until EventBridge accepts it.

Through the RecomputeFunction with the schedule's real event, under its role; EventBridge is moto's,
with a rule sending every event of the service to an SQS queue the tests read, and faults injected
in the function's own EventBridge client (a whole call failing, or entries refused).
"""

from __future__ import annotations

import contextvars
import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.insights import weekly_deploys_insight
from tests.support.native import create_deployment
from tests.support.recompute import scheduled_run

NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)  # a Wednesday: its week's interval starts on 2024-03-03
INSIGHT = "/api/projects/{spaceId}/insights/{insightId}"
SPACE_2_SCOPES = ("deployments:write", "reports:write", "insight:write", "insight:read", "alert:write", "alert:read")


def never(detail: dict[str, Any]) -> bool:
    return False


def always(detail: dict[str, Any]) -> bool:
    return True


@dataclass
class Bus:
    """The events that reached the bus's rule target, and the faults of the function's PutEvents calls."""

    sqs: Any
    inbox: str
    calls: list[list[dict[str, Any]]] = field(default_factory=list)  # every PutEvents call's details
    fail_call: Callable[[dict[str, Any]], bool] = never  # the whole call fails when any entry matches
    error: Exception | None = None  # what a failing call raises
    refuse: Callable[[dict[str, Any]], bool] = never  # entries refused (FailedEntryCount, ErrorCode)

    def received(self) -> list[dict[str, Any]]:
        """The events delivered since the last look (each message removed once read)."""
        events = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.inbox, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return events
            for message in messages:
                events.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.inbox, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def bus(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bus]:
    """An event bus whose rule sends every dora-insights event to a queue, named in the function's
    ``EVENT_BUS_NAME``; the function's EventBridge client goes through :class:`Bus`'s faults."""
    import boto3

    from dora_insights.config import reset_settings
    from dora_insights.dal import aws as dal_aws

    name = f"alerts-{uuid.uuid4().hex[:8]}"
    events, sqs = boto3.client("events"), boto3.client("sqs")
    events.create_event_bus(Name=name)
    inbox = sqs.create_queue(QueueName=name)["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=name, EventPattern=json.dumps({"source": ["dora-insights"]}))
    events.put_targets(Rule=name, EventBusName=name, Targets=[{"Id": "inbox", "Arn": inbox_arn}])
    monkeypatch.setenv("EVENT_BUS_NAME", name)
    reset_settings()
    state = Bus(sqs, inbox)
    client = dal_aws.client("events")  # the cached client the function uses
    real = client.put_events  # goes through botocore, so the role's IAM check still applies

    def put_events(**kwargs: Any) -> dict[str, Any]:
        entries = kwargs["Entries"]
        details = [json.loads(e["Detail"]) for e in entries]
        state.calls.append(details)
        if any(state.fail_call(d) for d in details):
            raise state.error or ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "PutEvents"
            )
        refused = [state.refuse(d) for d in details]
        passed = [e for e, no in zip(entries, refused, strict=True) if not no]
        accepted = iter(real(**{**kwargs, "Entries": passed})["Entries"] if passed else [])
        results = [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "Internal error"} if no else next(accepted)
            for no in refused
        ]
        return {"FailedEntryCount": sum(refused), "Entries": results}

    monkeypatch.setattr(client, "put_events", put_events)
    try:
        yield state
    finally:
        events.remove_targets(Rule=name, EventBusName=name, Ids=["inbox"])
        events.delete_rule(Name=name, EventBusName=name)
        events.delete_event_bus(Name=name)
        sqs.delete_queue(QueueUrl=inbox)


@pytest.fixture
def clock(clock: Clock) -> Clock:
    """Every function's clock, from this module's NOW."""
    clock.now = NOW
    return clock


def recompute(lambda_context: Any) -> dict[str, Any]:
    """One tick of the schedule (as EventBridge invokes it) and its work items through the worker."""
    return scheduled_run(lambda_context)


@dataclass
class Insight:
    """A deployment-frequency insight (weekly) of a space with one deployment this week: its value is 1."""

    api: Api
    space_id: str
    key: str
    id: int

    def params(self, **extra: str) -> dict[str, str]:
        return {"spaceId": self.space_id, "insightId": str(self.id), **extra}

    def threshold(self, name: str, upper: float = 0.5) -> str:
        """A new hourly threshold firing above ``upper``; its id."""
        body = {"name": name, "condition": {"bounds": {"upper": upper}}, "calculation_interval": "hourly"}
        created = self.api.call("POST", INSIGHT + "/thresholds", path_params=self.params(), body=body, key=self.key)
        assert created.status == 201, created.body
        return str(created.body["id"])

    def set_upper(self, threshold_id: str, upper: float) -> None:
        body = {"condition": {"bounds": {"upper": upper}}}
        path = self.params(thresholdId=threshold_id)
        route = INSIGHT + "/thresholds/{thresholdId}"
        changed = self.api.call("PATCH", route, path_params=path, body=body, key=self.key)
        assert changed.status == 200, changed.body

    def read(self, threshold_id: str) -> dict[str, Any]:
        path = self.params(thresholdId=threshold_id)
        got = self.api.call("GET", INSIGHT + "/thresholds/{thresholdId}", path_params=path, key=self.key)
        assert got.status == 200, got.body
        return got.body  # type: ignore[no-any-return]


def insight_in(api: Api, space_id: str = "Spaces-1", key: str = ADMIN_KEY) -> Insight:
    create_deployment(api, space=space_id, key=key, finished_at="2024-03-04T10:00:00Z")
    return Insight(api, space_id, key, weekly_deploys_insight(api, space_id, key, "Deploys"))


@pytest.fixture
def other_space(api: Api, store: Any) -> str:
    """Spaces-2 and a key of it that may set up an insight with thresholds."""
    from dora_insights.logic import admin

    admin.ensure_space(store, "Spaces-2", "Spaces-2", NOW)
    _, key = admin.create_api_key(store, "Spaces-2", "ci", SPACE_2_SCOPES, NOW)
    return key


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_put_events_failing_on_the_first_run_is_sent_exactly_once_by_the_next_and_never_again(
    api: Api, bus: Bus, clock: Clock, lambda_context: Any
) -> None:
    insight = insight_in(api)
    threshold_id = insight.threshold("More than one deployment a week is unusual")
    bus.fail_call = always

    first = recompute(lambda_context)

    assert (first["thresholds_fired"], first["alerts_sent"], first["alerts_undelivered"]) == (1, 0, 1)
    assert first["thresholds_failed"] == 0
    assert len(bus.calls) == 1  # it was tried
    assert bus.received() == []
    assert insight.read(threshold_id)["state"] == "Firing"  # saved, with the event it still owes

    bus.fail_call = never
    clock.advance(timedelta(minutes=5))  # the next tick; the hourly threshold is not due yet
    second = recompute(lambda_context)

    assert (second["thresholds_checked"], second["alerts_sent"], second["alerts_undelivered"]) == (0, 1, 0)
    (event,) = bus.received()
    assert event["detail-type"] == "InsightThresholdBreached"
    detail = event["detail"]
    assert detail["notification_id"] == f"{threshold_id}:{stamp(NOW)}"  # the transition's, not the delivery's
    assert (detail["checked_at"], detail["state"], detail["previous_state"]) == (stamp(NOW), "Firing", None)
    assert (detail["threshold_id"], detail["space_id"], detail["value"]) == (threshold_id, "Spaces-1", 1)

    calls = len(bus.calls)
    for minutes in (5, 60):  # a tick with nothing owed, then a new check that is still Firing
        clock.advance(timedelta(minutes=minutes))
        later = recompute(lambda_context)
        assert (later["alerts_sent"], later["alerts_undelivered"]) == (0, 0)
    assert later["thresholds_checked"] == 1
    assert len(bus.calls) == calls  # nothing owed: no PutEvents at all
    assert bus.received() == []


def test_an_entry_put_events_refuses_is_sent_by_the_next_run_and_the_rest_of_its_call_at_once(
    api: Api, bus: Bus, clock: Clock, lambda_context: Any
) -> None:
    insight = insight_in(api)
    refused_id = insight.threshold("refused")
    accepted_id = insight.threshold("accepted")
    bus.refuse = lambda detail: detail["threshold_name"] == "refused"

    first = recompute(lambda_context)

    assert [len(call) for call in bus.calls] == [2]  # one call, FailedEntryCount 1
    assert (first["alerts_sent"], first["alerts_undelivered"]) == (1, 1)
    assert [e["detail"]["threshold_id"] for e in bus.received()] == [accepted_id]

    bus.refuse = never
    clock.advance(timedelta(minutes=5))
    second = recompute(lambda_context)

    assert [len(call) for call in bus.calls] == [2, 1]  # only the refused entry again
    assert (second["alerts_sent"], second["alerts_undelivered"]) == (1, 0)
    assert [e["detail"]["threshold_id"] for e in bus.received()] == [refused_id]

    clock.advance(timedelta(minutes=5))
    recompute(lambda_context)
    assert len(bus.calls) == 2
    assert bus.received() == []


def test_a_space_whose_put_events_fails_stops_neither_the_checks_nor_the_alerts_of_another_space(
    api: Api, bus: Bus, other_space: str, clock: Clock, lambda_context: Any
) -> None:
    first_space = insight_in(api)
    failing_id = first_space.threshold("Spaces-1 alert")
    second_space = insight_in(api, "Spaces-2", other_space)
    delivered_id = second_space.threshold("Spaces-2 alert")
    bus.fail_call = lambda detail: detail["space_id"] == "Spaces-1"
    bus.error = EndpointConnectionError(endpoint_url="https://events.us-east-1.amazonaws.com/")

    first = recompute(lambda_context)

    assert first["first_space"] == "Spaces-1"  # the failing space's delivery comes first in the run
    assert (first["thresholds_checked"], first["thresholds_fired"]) == (2, 2)
    assert (first["alerts_sent"], first["alerts_undelivered"]) == (1, 1)
    assert (first["spaces_failed"], first["thresholds_failed"], first["complete"]) == (0, 0, True)
    assert [e["detail"]["threshold_id"] for e in bus.received()] == [delivered_id]
    assert second_space.read(delivered_id)["state"] == "Firing"

    bus.fail_call = never
    clock.advance(timedelta(minutes=5))
    recompute(lambda_context)
    clock.advance(timedelta(minutes=5))
    recompute(lambda_context)

    assert [e["detail"]["threshold_id"] for e in bus.received()] == [failing_id]


def test_firing_then_ok_then_firing_sends_each_move_into_firing_and_each_clearing_once(
    api: Api, bus: Bus, clock: Clock, lambda_context: Any
) -> None:
    insight = insight_in(api)
    threshold_id = insight.threshold("Deploys")
    runs = []
    for upper in (0.5, 5.0, 0.5, 0.5):  # value 1: Firing, NotFiring (bound raised), Firing, still Firing
        insight.set_upper(threshold_id, upper)
        recompute(lambda_context)
        runs.append(bus.received())
        clock.advance(timedelta(hours=1))

    assert [[e["detail-type"] for e in events] for events in runs] == [
        ["InsightThresholdBreached"],
        ["InsightThresholdCleared"],  # the move back to NotFiring is an event too (issue 20)
        ["InsightThresholdBreached"],
        [],
    ]
    (fired,), (cleared,), (again,), _ = [[e["detail"] for e in events] for events in runs]
    assert (fired["previous_state"], again["previous_state"]) == (None, "NotFiring")
    assert (cleared["previous_state"], cleared["state"], cleared["value"]) == ("Firing", "NotFiring", 1)
    assert cleared["notification_id"] == f"{threshold_id}:{stamp(NOW + timedelta(hours=1))}"
    assert fired["notification_id"] == f"{threshold_id}:{stamp(NOW)}"
    assert again["notification_id"] == f"{threshold_id}:{stamp(NOW + timedelta(hours=2))}"
    assert [c["state"] for c in insight.read(threshold_id)["checks"]] == ["Firing", "Firing", "NotFiring", "Firing"]


def test_a_firing_threshold_deleted_sends_its_clearing_once(
    api: Api, bus: Bus, clock: Clock, lambda_context: Any
) -> None:
    """API.md thresholds: a Firing threshold that is deleted ends; its InsightThresholdCleared (reason
    ``threshold_deleted``, its last value) is queued with the delete and sent by the next run, once, so a
    receiver tracking open alerts closes it (before, the delete sent nothing: the alert stayed open)."""
    insight = insight_in(api)
    threshold_id = insight.threshold("Deploys")
    quiet = insight.threshold("Quiet", upper=5.0)  # NotFiring: its delete owes nothing
    recompute(lambda_context)
    assert [e["detail"]["threshold_id"] for e in bus.received()] == [threshold_id]
    clock.advance(timedelta(minutes=10))

    for gone in (threshold_id, quiet):
        route = INSIGHT + "/thresholds/{thresholdId}"
        deleted = api.call("DELETE", route, path_params=insight.params(thresholdId=gone), key=ADMIN_KEY)
        assert deleted.status == 204, deleted.body
    recompute(lambda_context)
    clock.advance(timedelta(hours=1))
    recompute(lambda_context)

    (cleared,) = bus.received()
    assert cleared["detail-type"] == "InsightThresholdCleared"
    detail = cleared["detail"]
    assert (detail["threshold_id"], detail["previous_state"], detail["state"]) == (threshold_id, "Firing", "NotFiring")
    assert (detail["reason"], detail["value"]) == ("threshold_deleted", 1)
    assert detail["notification_id"] == f"{threshold_id}:{stamp(NOW + timedelta(minutes=10))}"


@pytest.mark.parametrize("how", ["disabled", "insight_deleted"])
def test_a_firing_threshold_disabled_or_whose_insight_is_deleted_clears_once_and_fires_again_when_back(
    api: Api, bus: Bus, clock: Clock, lambda_context: Any, how: str
) -> None:
    """A Firing threshold that is disabled, or whose insight is (soft) deleted, is no longer checked: the
    next run ends it (NotFiring, no check entry) with one InsightThresholdCleared naming why. Enabled or
    restored again, it is checked anew and fires again while the value is out of bounds (before, it
    stayed Firing, unchecked, and sent nothing)."""
    insight = insight_in(api)
    threshold_id = insight.threshold("Deploys")
    recompute(lambda_context)
    assert [e["detail-type"] for e in bus.received()] == ["InsightThresholdBreached"]
    clock.advance(timedelta(minutes=10))

    def switch(off: bool) -> None:
        if how == "disabled":
            route, path = INSIGHT + "/thresholds/{thresholdId}", insight.params(thresholdId=threshold_id)
            body: dict[str, Any] = {"enabled": not off}
        else:
            route, path, body = INSIGHT, insight.params(), {"deleted": off}
        changed = api.call("PATCH", route, path_params=path, body=body, key=ADMIN_KEY)
        assert changed.status == 200, changed.body

    switch(off=True)
    recompute(lambda_context)
    recompute(lambda_context)
    (cleared,) = bus.received()
    detail = cleared["detail"]
    assert cleared["detail-type"] == "InsightThresholdCleared"
    reason = "threshold_disabled" if how == "disabled" else "insight_deleted"
    assert (detail["reason"], detail["previous_state"], detail["state"], detail["value"]) == (
        reason,
        "Firing",
        "NotFiring",
        1,
    )
    if how == "disabled":  # the insight is readable: its threshold shows the end, and one check only
        stored = insight.read(threshold_id)
        assert (stored["state"], [c["state"] for c in stored["checks"]]) == ("NotFiring", ["Firing"])

    clock.advance(timedelta(hours=1))
    switch(off=False)
    recompute(lambda_context)
    (again,) = bus.received()
    assert (again["detail-type"], again["detail"]["reason"]) == ("InsightThresholdBreached", "check")
    assert again["detail"]["previous_state"] == "NotFiring"


def test_an_alert_owed_is_still_sent_once_after_its_threshold_cleared(
    api: Api, bus: Bus, clock: Clock, lambda_context: Any
) -> None:
    insight = insight_in(api)
    threshold_id = insight.threshold("Deploys")
    bus.fail_call = always
    recompute(lambda_context)
    bus.fail_call = never
    insight.set_upper(threshold_id, 5.0)
    clock.advance(timedelta(hours=1))

    cleared = recompute(lambda_context)

    assert insight.read(threshold_id)["state"] == "NotFiring"
    assert (cleared["thresholds_fired"], cleared["alerts_sent"]) == (0, 2)  # the owed breach, then its clearing
    event, clearing = bus.received()
    assert (event["detail"]["state"], event["detail"]["checked_at"]) == ("Firing", stamp(NOW))
    assert (clearing["detail-type"], clearing["detail"]["checked_at"]) == (
        "InsightThresholdCleared",
        stamp(NOW + timedelta(hours=1)),
    )
    clock.advance(timedelta(hours=1))
    recompute(lambda_context)
    assert bus.received() == []


def test_more_than_ten_events_owed_go_in_calls_of_ten(api: Api, bus: Bus, clock: Clock, lambda_context: Any) -> None:
    insight = insight_in(api)
    ids = {insight.threshold(f"threshold {n}") for n in range(12)}

    summary = recompute(lambda_context)

    assert [len(call) for call in bus.calls] == [10, 2]
    assert (summary["thresholds_fired"], summary["alerts_sent"]) == (12, 12)
    received = [e["detail"]["threshold_id"] for e in bus.received()]
    assert sorted(received) == sorted(ids)


def test_a_threshold_another_run_checked_meanwhile_is_neither_recorded_nor_sent_twice(
    api: Api, bus: Bus, clock: Clock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.logic import alerts

    insight = insight_in(api)
    threshold_id = insight.threshold("Deploys")
    value_of = alerts.insight_value
    overlapped: list[dict[str, Any]] = []
    started: list[bool] = []

    def overlapping_run(*args: Any) -> float | None:
        """The first check finds a second run starting, which checks (and alerts) first."""
        if not started:
            started.append(True)
            # The other run in a thread of its own (with this one's context): nested on this stack,
            # the two runs' frames together can pass Python's recursion limit under pytest-xdist.
            context = contextvars.copy_context()
            with ThreadPoolExecutor(max_workers=1) as pool:
                overlapped.append(pool.submit(context.run, recompute, lambda_context).result())
        return value_of(*args)

    monkeypatch.setattr(alerts, "insight_value", overlapping_run)

    outer = recompute(lambda_context)

    (inner,) = overlapped
    assert (inner["thresholds_fired"], inner["alerts_sent"]) == (1, 1)
    assert (outer["thresholds_checked"], outer["thresholds_fired"], outer["alerts_sent"]) == (0, 0, 0)
    assert len(bus.received()) == 1
    assert len(insight.read(threshold_id)["checks"]) == 1
