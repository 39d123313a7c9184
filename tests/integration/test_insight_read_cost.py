"""What an insight list and trending cost in DynamoDB calls: it grows with what the page shows, not with
what the space stores.

Bounds, over 100 saved insights spread over 4 reports (25 each), each insight viewed this week:

- ``GET /api/projects/{spaceId}/insights`` (default ``limit`` 100): each result comes from its report's
  stored views, and the page's results share their reads: each distinct report's definition and state
  once, each distinct stored view once (logic/insight_results.py ``ResultReads``). About 1 + 4 x 4
  calls here; at most 30. Read one insight at a time it was 4 calls an insight (report, state, view,
  state again): 402 calls, and up to 4,000 at ``limit=1000``.
- ``GET .../insights/trending?limit=1``: the days' view counts (one Query a day, 7), then the ranked
  insights in BatchGetItems of 100 (deleted ones are left out, and ``count`` counts the others): 8
  calls here; at most 10. Read one GetItem per ranked insight it was 108 calls, whatever ``limit``.

A meter wraps ``Store.call`` (every DynamoDB call goes through it) and counts the calls of the request
alone, after the insights were created and viewed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.insights import create_insight, create_report
from tests.support.read_cost import Meter

SPACE = "Spaces-1"
SP = {"spaceId": SPACE}
NOW = datetime(2024, 12, 31, 12, 0, tzinfo=UTC)
INSIGHTS = "/api/projects/{spaceId}/insights"


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def get(api: Api, route: str, query: dict[str, str] | None = None) -> Any:
    found = api.call("GET", route, path_params=SP, query=query, key=ADMIN_KEY)
    assert found.status == 200, found.body
    return found


@pytest.fixture
def hundred_insights(api: Api, clock: Clock) -> list[int]:
    """100 saved insights over 4 reports (25 each, one metric each), their ids."""
    reports = [create_report(api, f"R{n}") for n in range(4)]
    metrics = ["deployment_frequency", "lead_time", "change_failure_rate", "recovery_time"]
    return [
        int(create_insight(api, reports[n % 4], f"I{n}", metric=metrics[n // 25], timeRange="LastYear")["id"])
        for n in range(100)
    ]


def test_an_insight_list_reads_each_report_once(api: Api, hundred_insights: list[int], meter: Meter) -> None:
    """``GET /api/projects/{spaceId}/insights`` (default ``limit`` 100) of 100 insights over 4 reports:
    per distinct report its definition and state, per distinct view one Query (and, the reports having
    no deployments, the state again when the view reads empty), plus the list's Query: ≤ 30 calls."""
    meter.reset()
    found = get(api, INSIGHTS)
    assert len(found.body["results"]) == 100
    assert all(r["result"] is not None and r["last_refresh"] for r in found.body["results"])
    assert meter.total <= 30, str(meter)


def test_trending_reads_the_insights_of_the_page_only(api: Api, hundred_insights: list[int], meter: Meter) -> None:
    """``GET .../insights/trending?limit=1`` after 100 insights were viewed this week: 7 Queries of the
    days' view counts, then the ranked insights in one BatchGetItem: ≤ 10 calls."""
    viewed = api.call(
        "POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": hundred_insights}, key=ADMIN_KEY
    )
    assert viewed.status == 200, viewed.body
    meter.reset()
    found = get(api, INSIGHTS + "/trending", {"limit": "1"})
    assert len(found.body["results"]) == 1
    assert found.body["count"] == 100
    assert meter.total <= 10, str(meter)
