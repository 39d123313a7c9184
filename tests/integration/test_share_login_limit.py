"""The share-link login limit (API.md, PostHog sharing): more than 10 failed logins on one link within 10
minutes answer 429. The window slides: each attempt counts for 10 minutes from the moment it was made,
so no clock boundary lets a second run of guesses through (tests/integration/test_share_logins.py covers
parallel guesses and successful logins giving their attempt back)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock

SP = {"spaceId": "Spaces-1"}
INSIGHTS = "/api/projects/{spaceId}/insights"
ONE = INSIGHTS + "/{insightId}"
INSIGHT_1 = {**SP, "insightId": "1"}
LOGIN = "/shared/{accessToken}/login"
PASSWORD = "correct horse"


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """scrypt at N=2^14 (each hash stores its cost), as tests/integration/test_insights.py does."""
    from dora_insights.logic import insights

    monkeypatch.setattr(insights, "SCRYPT_COST", insights.ScryptCost(n=2**14, r=8, p=1))


@pytest.fixture
def link(api: Api) -> dict[str, str]:
    """Insight 1 shared behind the password ``PASSWORD``; the link's path parameters."""
    report = api.call("POST", "/api/{spaceId}/insights/reports", path_params=SP, body={"Name": "All"}, key=ADMIN_KEY)
    assert report.status == 201, report.body
    query = {"kind": "DoraMetricsQuery", "reportId": report.body["Id"], "metric": "deployment_frequency"}
    made = api.call("POST", INSIGHTS, path_params=SP, body={"name": "Deploys", "query": query}, key=ADMIN_KEY)
    assert made.status == 201, made.body
    body = {"enabled": True, "password_required": True}
    shared = api.call("PATCH", ONE + "/sharing", path_params=INSIGHT_1, body=body, key=ADMIN_KEY)
    assert shared.status == 200, shared.body
    added = api.call(
        "POST", ONE + "/sharing/passwords", path_params=INSIGHT_1, body={"raw_password": PASSWORD}, key=ADMIN_KEY
    )
    assert added.status == 201, added.body
    return {"accessToken": shared.body["access_token"]}


def login(api: Api, link: dict[str, str], password: str) -> int:
    return api.call("POST", LOGIN, path_params=link, body={"password": password}).status


def test_share_login_limit_holds_across_the_fixed_window_boundary(api: Api, link: dict[str, str], clock: Clock) -> None:
    # API.md: "More than 10 failed logins on one link within 10 minutes answer 429 until the window passes."
    clock.now = clock.now.replace(minute=9, second=50)  # 12:09:50
    first = [login(api, link, f"guess {n}") for n in range(10)]
    clock.advance(timedelta(seconds=15))  # 12:10:05: 15 seconds later
    second = [login(api, link, f"guess {n}") for n in range(10, 20)]
    assert first == [401] * 10
    # 20 passwords tried within 15 seconds: the 11th and later must be throttled
    assert second == [429] * 10, second


def test_a_failure_stops_counting_ten_minutes_after_it_was_made(api: Api, link: dict[str, str], clock: Clock) -> None:
    clock.now = clock.now.replace(minute=3, second=0)  # 12:03:00, mid-way through any 10-minute clock window
    assert [login(api, link, "wrong") for _ in range(10)] == [401] * 10
    clock.advance(timedelta(minutes=9, seconds=59))  # 12:12:59: the 10 failures are still within 10 minutes
    assert login(api, link, PASSWORD) == 429
    clock.advance(timedelta(seconds=1))  # 12:13:00: they are 10 minutes old
    assert login(api, link, PASSWORD) == 200


def test_failures_spread_over_time_never_exceed_ten_in_any_ten_minutes(
    api: Api, link: dict[str, str], clock: Clock
) -> None:
    # One wrong guess every 20 seconds for 40 minutes, across four clock boundaries
    tried: list[tuple[datetime, int]] = []
    for _ in range(120):
        tried.append((clock.now, login(api, link, "wrong")))
        clock.advance(timedelta(seconds=20))

    def failed_within(at: datetime) -> int:
        return sum(1 for when, status in tried if status == 401 and at - timedelta(minutes=10) < when <= at)

    for at, status in tried:
        assert failed_within(at) <= 10, at
        # and nothing is refused that the rule lets through: a 429 means 10 failures in the 10 minutes before
        if status == 429:
            assert failed_within(at) == 10, at
    assert {status for _, status in tried} == {401, 429}
    # 10 get through in each 10 minutes: 40 in all
    assert sum(1 for _, status in tried if status == 401) == 40


@pytest.fixture
def dynamodb_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The DynamoDB operations the route functions make, in order."""
    from dora_insights.dal.store import Store

    calls: list[str] = []
    call = Store.call

    def counted(self: Store, operation: str, **kwargs: Any) -> Any:
        calls.append(operation)
        return call(self, operation, **kwargs)

    monkeypatch.setattr(Store, "call", counted)
    return calls


def test_a_login_costs_the_same_few_dynamodb_calls_however_many_attempts_came_before(
    api: Api, link: dict[str, str], clock: Clock, dynamodb_calls: list[str]
) -> None:
    def calls_of(password: str) -> tuple[int, list[str]]:
        dynamodb_calls.clear()
        status = login(api, link, password)
        return status, list(dynamodb_calls)

    first_status, first = calls_of("wrong")
    for _ in range(8):
        login(api, link, "wrong")
        clock.advance(timedelta(seconds=30))
    tenth_status, tenth = calls_of("wrong")
    refused_status, refused = calls_of("wrong")
    assert (first_status, tenth_status, refused_status) == (401, 401, 429)
    assert first == tenth  # the same calls with 0 or 9 attempts counted before
    assert len(refused) <= len(first)
