"""GitLab-style ``/dora/metrics`` at its edges, through the real route: dates at the ends of what a date
holds (a 500 each before: a default start before year 1, the month after December 9999), and settings
changed a moment ago (the space was read eventually consistent, so the old production tier applied)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.support.native import create_deployment
from tests.support.replica_lag import ReplicaLag

SPACE = "Spaces-1"
METRICS = "/api/{spaceId}/dora/metrics"


def _call(api: Api, method: str, route: str, **kwargs: Any) -> HttpResult:
    """As a client sees it: an exception escaping the handler is API Gateway's bare 500."""
    try:
        return api.call(method, route, **kwargs)
    except Exception as error:  # a defect reaches the client as a 500
        return HttpResult(status=500, headers={}, body={"exception": repr(error)})


def _metrics(api: Api, **query: str) -> HttpResult:
    return _call(api, "GET", METRICS, key=ADMIN_KEY, path_params={"spaceId": SPACE}, query=query)


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = datetime(2024, 3, 31, 12, 0, tzinfo=UTC)
    return clock


def test_an_end_date_early_in_year_one_clamps_the_default_start_to_the_first_day(api: Api, clock: Clock) -> None:
    """end_date 0001-02-01 without start_date: three months before it is no date; the range starts at
    0001-01-01 (the earliest), as a range clamped to what it can hold."""
    found = _metrics(api, metric="deployment_frequency", end_date="0001-02-01", interval="monthly")
    assert found.status == 200, found.body
    assert [row["date"] for row in found.body] == ["0001-01-01", "0001-02-01"]


def test_an_end_date_of_the_first_day_names_the_end_date(api: Api, clock: Clock) -> None:
    """end_date 0001-01-01 without start_date: no day precedes it, so no default start can be earlier.
    The 400 names the parameter the client sent (not the start date it did not send)."""
    found = _metrics(api, metric="deployment_frequency", end_date="0001-01-01")
    assert found.status == 400, found.body
    assert found.body == {"message": "end_date is invalid"}


def test_monthly_rows_reach_december_9999(api: Api, clock: Clock) -> None:
    """interval=monthly over December 9999: the month after the last one was built, in year 10000."""
    found = _metrics(
        api, metric="deployment_frequency", start_date="9999-11-01", end_date="9999-12-31", interval="monthly"
    )
    assert found.status == 200, found.body
    assert [row["date"] for row in found.body] == ["9999-11-01", "9999-12-01"]


def test_production_environments_changed_a_moment_ago_apply(api: Api, clock: Clock, replica_lag: ReplicaLag) -> None:
    """API.md Consistency / METRICS §9: the space's production_environments are the production tier. /summary
    reads the space strongly consistently ("settings changed a moment ago apply"); /dora/metrics reads it
    eventually consistently, so for about a second after a PATCH (in AWS) it answers with the old tiers."""
    create_deployment(api, project="shop", environment="main-site", finished_at="2024-03-01T10:00:00Z")
    clock.advance(timedelta(seconds=5))  # the mark settles: the next read's refresh vouches for the figures
    base = {"metric": "deployment_frequency", "start_date": "2024-03-01", "end_date": "2024-03-02"}
    named = _metrics(api, **base, environment="main-site")  # computes the stream's rollups (caught up)
    assert [row["value"] for row in named.body] == [1, 0], named.body
    assert [row["value"] for row in _metrics(api, **base).body] == [0, 0]  # "main-site" is GitLab's "other" tier
    replica_lag.on()  # what is written from now on is not yet on every replica
    changed = _call(
        api,
        "PATCH",
        "/api/{spaceId}/settings",
        key=ADMIN_KEY,
        path_params={"spaceId": SPACE},
        body={"production_environments": ["main-site"]},
    )
    assert changed.status == 200, changed.body
    found = _metrics(api, **base)
    assert found.status == 200, found.body
    assert [row["value"] for row in found.body] == [1, 0], (found.body, replica_lag.hidden)
