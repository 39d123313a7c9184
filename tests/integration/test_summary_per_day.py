"""``/summary``'s ``deployment_frequency.per_day`` is the successful deployments over the range's length
in days (METRICS §6), not over the UTC calendar days the range touches: a noon-to-noon day held two
calendar days, so its rate was halved, and the default 90 days ending at any time but midnight counted
91. Through the real route against moto."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.native import create_deployment
from tests.support.recompute import scheduled_run

SP = {"spaceId": "Spaces-1"}


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = datetime(2024, 6, 30, 12, 0, tzinfo=UTC)
    return clock


def _per_day(api: Api, **query: str) -> Any:
    found = api.call("GET", "/api/{spaceId}/summary", key=ADMIN_KEY, path_params=SP, query=query)
    assert found.status == 200, found.body
    return found.body["deployment_frequency"]["per_day"]


@pytest.fixture
def history(api: Api, clock: Clock, lambda_context: Any) -> None:
    """Six successful deployments: two on 2024-06-29 afternoon, one the next morning, three in May."""
    for n, at in enumerate(
        ["2024-06-29T13:00:00Z", "2024-06-29T18:00:00Z", "2024-06-30T09:00:00Z"]
        + [f"2024-05-{d:02d}T10:00:00Z" for d in (2, 9, 16)]
    ):
        create_deployment(api, id=f"d{n}", version=f"{n}.0", finished_at=at)
    scheduled_run(lambda_context)


def test_a_noon_to_noon_day_is_one_day(api: Api, history: None) -> None:
    per_day = _per_day(api, **{"from": "2024-06-29T12:00:00Z", "to": "2024-06-30T12:00:00Z"})
    assert per_day == 3.0  # three deployments in one day (before: 1.5, over the two dates it touches)


def test_the_default_ninety_days_ending_now_are_ninety_days(api: Api, history: None) -> None:
    assert _per_day(api) == round(6 / 90, 5)  # before: 6 / 91


def test_a_range_from_midnight_to_midnight_is_unchanged(api: Api, history: None) -> None:
    assert _per_day(api, **{"from": "2024-05-01T00:00:00Z", "to": "2024-06-01T00:00:00Z"}) == round(3 / 31, 5)


def test_a_range_under_a_day_counts_as_one_day(api: Api, history: None) -> None:
    assert _per_day(api, **{"from": "2024-06-29T12:00:00Z", "to": "2024-06-29T20:00:00Z"}) == 2.0
