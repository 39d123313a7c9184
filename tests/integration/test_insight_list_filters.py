"""The insight list's filters as PostHog applies them: dates are instants (ISO times with an offset,
dates, PostHog's relative ``-7d``), anything else a 400 naming the parameter; ``dashboards`` is AND, in
ASCII digits. Through the real route functions against moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock

SP = {"spaceId": "Spaces-1"}
INSIGHTS = "/api/projects/{spaceId}/insights"
REPORTS = "/api/{spaceId}/insights/reports"
NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)  # a Wednesday
DATE_FILTERS = (
    "created_date_from",
    "created_date_to",
    "date_from",
    "date_to",
    "last_viewed_date_from",
    "last_viewed_date_to",
)


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _report_and_query(api: Api) -> dict[str, Any]:
    report = api.call("POST", REPORTS, path_params=SP, body={"Name": "All"}, key=ADMIN_KEY).body["Id"]
    return {"kind": "DoraMetricsQuery", "reportId": report, "metric": "lead_time"}


def _names(api: Api, **params: str) -> list[str]:
    listed = api.call("GET", INSIGHTS, path_params=SP, query={"basic": "true", **params}, key=ADMIN_KEY)
    assert listed.status == 200, listed.body
    return [r["name"] for r in listed.body["results"]]


@pytest.fixture
def old_and_new(api: Api, clock: Clock) -> None:
    """Insight "old", created 30 days before ``NOW``, and "new", created at ``NOW`` (12:00Z)."""
    query = _report_and_query(api)
    clock.now = NOW - timedelta(days=30)
    api.call("POST", INSIGHTS, path_params=SP, body={"name": "old", "query": query}, key=ADMIN_KEY)
    clock.now = NOW
    api.call("POST", INSIGHTS, path_params=SP, body={"name": "new", "query": query}, key=ADMIN_KEY)


def test_date_filters_compare_instants_not_strings(api: Api, clock: Clock, old_and_new: None) -> None:
    """``created_date_from``/``_to`` and ``date_from``/``_to`` were compared as raw strings with the stored
    ``...Z`` stamps: an instant with an offset, or PostHog's relative ``-7d`` (PostHog's own list parses
    every one of them with ``relative_date_parse``), selected the wrong insights, with a 200."""
    found = {
        # PostHog's relative dates: modified within the last 7 days
        "date_from=-7d": _names(api, date_from="-7d"),
        # 12:30+01:00 is 11:30Z: "new" (12:00Z) was created after it
        "created_date_from=12:30+01:00": _names(api, created_date_from="2024-03-06T12:30:00+01:00"),
    }
    assert found == {"date_from=-7d": ["new"], "created_date_from=12:30+01:00": ["new"]}


def test_dates_relative_forms_and_offsets_select_by_instant(api: Api, clock: Clock, old_and_new: None) -> None:
    assert _names(api, created_date_to="2024-03-06T12:30:00+01:00") == ["old"]  # 11:30Z
    assert _names(api, created_date_to="2024-03-06T13:00:00+01:00") == ["new", "old"]  # 12:00Z: inclusive
    assert _names(api, created_date_from="2024-03-06") == ["new"]  # a date: its start, UTC
    assert _names(api, created_date_to="2024-2-6") == ["old"]  # unpadded, as PostHog reads it
    assert _names(api, date_from="-1m") == ["new"]
    assert _names(api, date_from="-2m") == ["new", "old"]
    assert _names(api, date_from="-31dStart", date_to="-29dEnd") == ["old"]
    assert _names(api, date_from="-1h", date_to="2024-03-06T12:00:00Z") == ["new"]
    assert _names(api, date_from="-5w") == ["new", "old"]
    assert _names(api, date_from="-1y") == ["new", "old"]


@pytest.mark.parametrize("field", DATE_FILTERS)
@pytest.mark.parametrize("value", ["yesterday", "-7x", "2024-13-01", "-٧d", "-7dMiddle", "-7wStart", "1800-01-01"])
def test_a_date_filter_that_is_no_date_is_a_400_naming_it(api: Api, clock: Clock, field: str, value: str) -> None:
    listed = api.call("GET", INSIGHTS, path_params=SP, query={field: value}, key=ADMIN_KEY)

    assert listed.status == 400, listed.body
    assert (listed.body["type"], listed.body["attr"]) == ("validation_error", field)


def test_last_viewed_dates_are_instants_too(api: Api, clock: Clock, old_and_new: None) -> None:
    viewed = api.call("POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": [1]}, key=ADMIN_KEY)
    assert viewed.status == 200

    assert _names(api, last_viewed_date_from="2024-03-06T12:00:00+00:00") == ["old"]
    assert _names(api, last_viewed_date_from="2024-03-06T13:30:00+01:00") == []  # 12:30Z
    assert _names(api, last_viewed_date_to="-1d") == []


def test_dashboards_filter_is_and_as_posthog(api: Api, clock: Clock) -> None:
    """PostHog filters ``dashboards=[1,2]`` one dashboard at a time ("so the filter is AND not OR"): only
    insights on both. Any one of them was enough."""
    query = _report_and_query(api)
    for name, dashboards in (("on 1", [1]), ("on 1 and 2", [1, 2])):
        clock.advance(timedelta(minutes=1))
        body = {"name": name, "query": query, "dashboards": dashboards}
        assert api.call("POST", INSIGHTS, path_params=SP, body=body, key=ADMIN_KEY).status == 201
    assert _names(api, dashboards="[1, 2]") == ["on 1 and 2"]
    assert _names(api, dashboards="1") == ["on 1 and 2", "on 1"]
    assert _names(api, dashboards="2,1") == ["on 1 and 2"]


@pytest.mark.parametrize("dashboards", ['["١"]', "١", "1_0", "[1.5]", "-1", "[true]"])
def test_dashboards_are_ascii_digits(api: Api, clock: Clock, dashboards: str) -> None:
    """``int`` reads "١" (an Arabic-Indic one) or "1_0" as numbers: dashboard 1 or 10 would be listed."""
    listed = api.call("GET", INSIGHTS, path_params=SP, query={"dashboards": dashboards}, key=ADMIN_KEY)

    assert listed.status == 400, listed.body
    assert listed.body["attr"] == "dashboards"
