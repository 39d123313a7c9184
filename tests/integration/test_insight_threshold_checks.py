"""What a threshold checks and what it may be: the interval containing the check time in the report's
time zone, bounds in order, and settings whose alert events EventBridge can always take. Through the
real route functions (template.yaml's handlers, under their roles) against moto."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.insights import weekly_deploys_insight
from tests.support.native import create_deployment
from tests.support.recompute import scheduled_run

SP = {"spaceId": "Spaces-1"}
INSIGHTS = "/api/projects/{spaceId}/insights"
ONE = INSIGHTS + "/{insightId}"
THRESHOLD = ONE + "/thresholds/{thresholdId}"
REPORTS = "/api/{spaceId}/insights/reports"
NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)  # a Wednesday
EVENTBRIDGE_MAX_ENTRY_BYTES = 256 * 1024


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


# --- the interval a threshold checks, in the report's time zone -------------------------------
def test_threshold_checks_the_interval_containing_the_check_time_in_the_reports_zone(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """API.md: a threshold checks "its most recent interval (the one containing the check time)".
    Intervals are local days of the report's zone (METRICS §4), but ``alerts.insight_value`` picked the
    interval by the UTC date: for a zone ahead of UTC it checked yesterday's interval."""
    clock.now = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)  # 2024-03-07 01:00 in Auckland (UTC+13)
    create_deployment(api, finished_at="2024-03-06T11:30:00Z")  # 2024-03-07 00:30 in Auckland
    body = {"Name": "NZ", "TimeZone": "Pacific/Auckland"}
    report = api.call("POST", REPORTS, path_params=SP, body=body, key=ADMIN_KEY).body["Id"]
    query = {
        "kind": "DoraMetricsQuery",
        "reportId": report,
        "metric": "deployment_frequency",
        "timeRange": "LastMonth",
        "granularity": "Daily",
    }
    created = api.call("POST", INSIGHTS, path_params=SP, body={"name": "daily", "query": query}, key=ADMIN_KEY)
    assert created.status == 201, created.body
    result = created.body["result"]
    assert result["interval"][-1] == "2024-03-07" and result["series"][0]["values"][-1] == 1  # local today
    one = {**SP, "insightId": str(created.body["id"])}
    threshold = {"name": "any deploy", "condition": {"bounds": {"upper": 0.5}}, "calculation_interval": "hourly"}
    tid = api.call("POST", ONE + "/thresholds", path_params=one, body=threshold, key=ADMIN_KEY).body["id"]

    scheduled_run(lambda_context)

    checked = api.call("GET", THRESHOLD, path_params={**one, "thresholdId": tid}, key=ADMIN_KEY).body
    assert (checked["last_value"], checked["state"]) == (1.0, "Firing")


def test_a_zone_behind_utc_checks_its_own_today_too(api: Api, clock: Clock, lambda_context: Any) -> None:
    """At 2024-03-07 01:00Z it is still the 6th in New York: the 6th's interval (a deployment on the 6th,
    local) is checked, not the empty 7th."""
    clock.now = datetime(2024, 3, 7, 1, 0, tzinfo=UTC)  # 2024-03-06 20:00 in New York (UTC-5)
    create_deployment(api, finished_at="2024-03-06T18:00:00Z")
    body = {"Name": "NY", "TimeZone": "America/New_York"}
    report = api.call("POST", REPORTS, path_params=SP, body=body, key=ADMIN_KEY).body["Id"]
    query = {
        "kind": "DoraMetricsQuery",
        "reportId": report,
        "metric": "deployment_frequency",
        "timeRange": "LastMonth",
        "granularity": "Daily",
    }
    created = api.call("POST", INSIGHTS, path_params=SP, body={"name": "daily", "query": query}, key=ADMIN_KEY)
    assert created.body["result"]["interval"][-1] == "2024-03-06"
    one = {**SP, "insightId": str(created.body["id"])}
    threshold = {"name": "any deploy", "condition": {"bounds": {"upper": 0.5}}, "calculation_interval": "hourly"}
    tid = api.call("POST", ONE + "/thresholds", path_params=one, body=threshold, key=ADMIN_KEY).body["id"]

    scheduled_run(lambda_context)

    checked = api.call("GET", THRESHOLD, path_params={**one, "thresholdId": tid}, key=ADMIN_KEY).body
    assert (checked["last_value"], checked["state"]) == (1.0, "Firing")


# --- settings a threshold may have ----------------------------------------------------------------
@pytest.fixture
def insight_id(api: Api, clock: Clock) -> int:
    create_deployment(api, finished_at="2024-03-04T10:00:00Z")
    return weekly_deploys_insight(api, "Spaces-1", ADMIN_KEY, "Deploys")


def test_bounds_with_lower_above_upper_are_a_400(api: Api, insight_id: int) -> None:
    one = {**SP, "insightId": str(insight_id)}
    body = {"name": "never", "condition": {"bounds": {"lower": 5, "upper": 1}}}
    refused = api.call("POST", ONE + "/thresholds", path_params=one, body=body, key=ADMIN_KEY)
    assert refused.status == 400, refused.body
    assert (refused.body["type"], refused.body["attr"]) == ("validation_error", "condition.bounds")

    body["condition"] = {"bounds": {"lower": 1, "upper": 1}}  # equal bounds: only 1 is within
    created = api.call("POST", ONE + "/thresholds", path_params=one, body=body, key=ADMIN_KEY)
    assert created.status == 201, created.body
    path = {**one, "thresholdId": created.body["id"]}
    patch = {"condition": {"bounds": {"lower": 2, "upper": 0}}}
    refused = api.call("PATCH", THRESHOLD, path_params=path, body=patch, key=ADMIN_KEY)
    assert refused.status == 400, refused.body
    assert refused.body["attr"] == "condition.bounds"


def test_a_subscribed_user_longer_than_an_email_address_is_a_400(api: Api, insight_id: int) -> None:
    one = {**SP, "insightId": str(insight_id)}
    body = {"name": "n", "condition": {"bounds": {"upper": 1}}, "subscribed_users": ["a" * 242 + "@example.com"]}
    assert api.call("POST", ONE + "/thresholds", path_params=one, body=body, key=ADMIN_KEY).status == 201
    body["subscribed_users"] = ["a" * 243 + "@example.com"]  # 255 characters

    refused = api.call("POST", ONE + "/thresholds", path_params=one, body=body, key=ADMIN_KEY)

    assert refused.status == 400, refused.body
    assert refused.body["attr"] == "subscribed_users[0]"


@pytest.fixture
def strict_bus(aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """An event bus in ``EVENT_BUS_NAME`` whose PutEvents refuses a request over 256 KB as EventBridge does
    (moto does not): ``ValidationException: Total size of the entries in the request is over the limit``."""
    import boto3
    from botocore.exceptions import ClientError

    from dora_insights.config import reset_settings
    from dora_insights.dal import aws as dal_aws
    from dora_insights.dal.events import SOURCE

    name = f"alerts-{uuid.uuid4().hex[:8]}"
    boto3.client("events").create_event_bus(Name=name)
    monkeypatch.setenv("EVENT_BUS_NAME", name)
    reset_settings()
    client = dal_aws.client("events")
    real = client.put_events
    sent: list[int] = []

    def put_events(**kwargs: Any) -> dict[str, Any]:
        size = sum(len(SOURCE) + len(e["DetailType"].encode()) + len(e["Detail"].encode()) for e in kwargs["Entries"])
        if size > EVENTBRIDGE_MAX_ENTRY_BYTES:
            error = {
                "Code": "ValidationException",
                "Message": "Total size of the entries in the request is over the limit.",
            }
            raise ClientError({"Error": error}, "PutEvents")
        sent.append(len(kwargs["Entries"]))
        answer: dict[str, Any] = real(**kwargs)
        return answer

    monkeypatch.setattr(client, "put_events", put_events)
    yield sent
    boto3.client("events").delete_event_bus(Name=name)


def test_a_threshold_is_refused_when_its_alert_could_never_be_delivered(
    api: Api, clock: Clock, lambda_context: Any, strict_bus: list[int]
) -> None:
    """``subscribed_users`` capped the list (50) but not its strings: a threshold whose alert event is over
    EventBridge's 256 KB was stored (201, under the 400 KB item limit), then every scheduled run failed to
    deliver its InsightThresholdBreached event, forever."""
    create_deployment(api, finished_at="2024-03-04T10:00:00Z")
    insight_id = weekly_deploys_insight(api, "Spaces-1", ADMIN_KEY, "Deploys")
    body = {
        "name": "busy",
        "condition": {"bounds": {"upper": 0.5}},
        "calculation_interval": "hourly",
        "subscribed_users": [f"user{n}@example.com" + "x" * 5400 for n in range(50)],
    }
    created = api.call(
        "POST", ONE + "/thresholds", path_params={**SP, "insightId": str(insight_id)}, body=body, key=ADMIN_KEY
    )
    if created.status >= 400:  # refused at the door with a 4xx: what this test asks for
        assert created.status < 500, created.body
        return
    runs = [scheduled_run(lambda_context)]
    for _ in range(2):
        clock.advance(timedelta(minutes=5))
        runs.append(scheduled_run(lambda_context))
    assert runs[0]["thresholds_fired"] == 1
    assert sum(r["alerts_sent"] for r in runs) == 1, [(r["alerts_sent"], r["alerts_undelivered"]) for r in runs]


def test_the_largest_threshold_accepted_is_delivered(
    api: Api, clock: Clock, lambda_context: Any, strict_bus: list[int]
) -> None:
    """The longest name and the most, longest subscribers the API takes, on an insight with the longest
    title, in characters JSON escapes to 12 bytes: its alert still goes through EventBridge."""
    create_deployment(api, finished_at="2024-03-04T10:00:00Z")
    insight_id = weekly_deploys_insight(api, "Spaces-1", ADMIN_KEY, "Deploys")
    one = {**SP, "insightId": str(insight_id)}
    wide = "\U0001f600"
    assert api.call("PATCH", ONE, path_params=one, body={"name": wide * 400}, key=ADMIN_KEY).status == 200
    body = {
        "name": wide * 200,
        "condition": {"bounds": {"lower": -9.87654321987654e125, "upper": 0.5}},
        "calculation_interval": "hourly",
        "subscribed_users": [f"{n:02d}" + wide * 252 for n in range(50)],
    }
    created = api.call("POST", ONE + "/thresholds", path_params=one, body=body, key=ADMIN_KEY)
    assert created.status == 201, created.body

    run = scheduled_run(lambda_context)

    assert (run["thresholds_fired"], run["alerts_sent"], run["alerts_undelivered"]) == (1, 1, 0)
