"""A threshold's alert events fit EventBridge (``logic.insight_alerts``): the largest threshold the PostHog
dialect accepts fits whatever its insight is renamed to, and one that could not fit is a 400 naming
``subscribed_users``."""

from __future__ import annotations

import json

import pytest

from dora_insights.dal.events import entry_size
from dora_insights.dialects.posthog import MAX_SUBSCRIBED_USERS, ThresholdIn
from dora_insights.domain.insights import Insight, Person, Threshold, ThresholdSettings, ThresholdState
from dora_insights.errors import RequestInvalidError
from dora_insights.logic.insight_alerts import (
    ENVELOPE_BYTES,
    MAX_ENTRY_BYTES,
    MAX_INSIGHT_TITLE,
    alert_detail,
    alert_event,
    check_alert_size,
    largest_alert_bytes,
)

WIDE = "\U0001f600"  # one character, 12 bytes once JSON-escaped
STAMP = "2024-03-06T12:00:00.000Z"


def _insight(name: str = "Deploys") -> Insight:
    who = Person(first_name="ada")
    query = {"kind": "DoraMetricsQuery", "reportId": "InsightsReports-1", "metric": "deployment_frequency"}
    return Insight(
        id=2**53,
        short_id="AbCdEfGh",
        name=name,
        query=query,
        created_at=STAMP,
        created_by=who,
        last_modified_at=STAMP,
        last_modified_by=who,
    )


def _threshold(settings: ThresholdSettings) -> Threshold:
    return Threshold(
        id="01hr9t4zg0pz0hzr969b3hh5q5",
        insight=1,
        **dict(settings),
        created_at=STAMP,
        created_by=Person(first_name="a"),
    )


def _largest_accepted() -> ThresholdSettings:
    body = {
        "name": WIDE * 200,
        "condition": {"bounds": {"lower": -9.87654321987654e125, "upper": -1.23456789012345e-130}},
        "calculation_interval": "monthly",
        "subscribed_users": [WIDE * 254] * MAX_SUBSCRIBED_USERS,
    }
    return ThresholdIn.model_validate(body).settings()


def test_the_largest_threshold_the_api_accepts_always_fits() -> None:
    threshold = _threshold(_largest_accepted())

    size = largest_alert_bytes("Spaces-999999999", _insight(), threshold)

    assert size + ENVELOPE_BYTES <= MAX_ENTRY_BYTES
    check_alert_size("Spaces-999999999", _insight(), threshold)


def test_the_largest_size_bounds_every_event_the_threshold_can_owe() -> None:
    threshold = _threshold(_largest_accepted())
    bound = largest_alert_bytes("Spaces-1", _insight(), threshold)

    for title in ("x", "é" * MAX_INSIGHT_TITLE, WIDE * MAX_INSIGHT_TITLE):
        for previous, state in ((None, ThresholdState.FIRING), (ThresholdState.FIRING, ThresholdState.NOT_FIRING)):
            detail = alert_detail(
                "Spaces-1",
                _insight(title),
                threshold,
                value=-1.2345678901234567e-300,
                previous=previous,
                state=state,
                checked_at=STAMP,
            )
            for detail_type in ("InsightThresholdBreached", "InsightThresholdCleared"):
                assert entry_size(alert_event(detail_type, detail)) <= bound


def test_a_threshold_whose_events_could_not_fit_is_a_400_naming_subscribed_users() -> None:
    settings = ThresholdSettings.model_validate(
        {"name": "busy", "condition": {"bounds": {"upper": 1}}, "subscribed_users": ["u" * 5500] * 50}
    )

    with pytest.raises(RequestInvalidError) as refused:
        check_alert_size("Spaces-1", _insight(), _threshold(settings))

    assert (refused.value.status, refused.value.field) == (400, "subscribed_users")


def test_the_event_is_its_detail_as_compact_json() -> None:
    threshold = _threshold(ThresholdSettings.model_validate({"name": "n", "condition": {"bounds": {"upper": 1}}}))
    detail = alert_detail(
        "Spaces-1", _insight(), threshold, value=2.0, previous=None, state=ThresholdState.FIRING, checked_at=STAMP
    )

    event = alert_event("InsightThresholdBreached", detail)

    assert event.id == f"{threshold.id}:{STAMP}" == detail["notification_id"]
    assert json.loads(event.detail) == detail and " " not in event.detail
