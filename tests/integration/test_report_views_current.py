"""A report's views served as current (``X-Dora-Pending: 0``) count what a recompute of the report from the
same figures counts (METRICS §4, §8), through the real routes against moto. Each case was served stale:
a stream that left the report (the scheduled run judged it by its new registration only), a failure
whose (project, environment) has no stream of the report (reports counted any included project with any
included environment, so nothing marked), and a deployment completed after the report's recompute
instant (past the views' last interval, with nothing to compute the report again)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.insights import create_report, report_metrics
from tests.support.native import create_deployment
from tests.support.recompute import scheduled_run

SP = {"spaceId": "Spaces-1"}
NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


def _shop_failure(api: Api, environment: str, day: str) -> None:
    """A failure event of project shop in ``environment``, 10:00 to 11:00 on ``day``."""
    body = {
        "project": "shop",
        "environment": environment,
        "started_at": f"{day}T10:00:00Z",
        "finished_at": f"{day}T11:00:00Z",
    }
    failure = api.call("POST", "/api/{spaceId}/failures", path_params=SP, body=body, key=ADMIN_KEY)
    assert failure.status in (200, 201), failure.body


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _settle_and_recompute(clock: Clock, lambda_context: Any) -> dict[str, Any]:
    clock.advance(timedelta(seconds=5))  # marks older than SETTLE are cleared by the run
    return scheduled_run(lambda_context)


def _total(body: Any) -> int:
    return sum(i["DeploymentFailureRate"]["Total"] for s in body["Series"] for i in s["Intervals"])


def test_a_stream_leaving_a_report_stops_counting_after_the_scheduled_run(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    # Project "shop" belongs to team web (ProjectGroups-1); the report lists that project group.
    create_deployment(api, version="1", team="web", finished_at="2024-03-04T10:00:00Z")
    create_deployment(api, project="other", version="1", team="ops", finished_at="2024-03-04T11:00:00Z")
    report_id = create_report(api, ProjectGroupIds=["ProjectGroups-1"])
    _settle_and_recompute(clock, lambda_context)
    before = report_metrics(api, report_id, timeRange="LastMonth", granularity="Weekly")
    assert _total(before.body) == 1
    # The project moves to team ops: its stream's latest deployment now names ProjectGroups-2.
    create_deployment(api, version="2", team="ops", finished_at="2024-03-05T10:00:00Z")
    _settle_and_recompute(clock, lambda_context)
    after = report_metrics(api, report_id, timeRange="LastMonth", granularity="Weekly")
    # A fresh computation of the report from the current figures (editing the report recomputes it).
    one = {**SP, "reportId": report_id}
    current = api.call("GET", "/api/{spaceId}/insights/reports/{reportId}", path_params=one, key=ADMIN_KEY).body
    edited = api.call("PUT", "/api/{spaceId}/insights/reports/{reportId}", path_params=one, body=current, key=ADMIN_KEY)
    assert edited.status == 200, edited.body
    fresh = report_metrics(api, report_id, timeRange="LastMonth", granularity="Weekly")
    assert after.header("X-Dora-Pending") == "0"
    # What was served as current ("pending 0") must be what the report computes from the same figures.
    assert _total(after.body) == _total(fresh.body), (after.body, fresh.body)


@pytest.mark.parametrize("caught_up_by", ["read", "streams_item"])
def test_a_stream_caught_up_elsewhere_leaving_a_report_stops_counting_after_the_scheduled_run(
    api: Api, clock: Clock, lambda_context: Any, caught_up_by: str
) -> None:
    """As above, but the stream is caught up before the space's item runs: by a read of the new deployment
    (``GET /deployments/{id}``), or, with 26 streams waiting, by the tick's own ``streams`` item (no read at
    all). The space's item then skips the stream's recompute, so it never learns the registration the stream
    had before (web); it must still refresh the report the stream may have left (only its project group
    keeps it out now), or the report counts shop's deployment for good once the mark is cleared."""
    create_deployment(api, version="1", team="web", finished_at="2024-03-04T10:00:00Z")
    create_deployment(api, project="other", version="1", team="ops", finished_at="2024-03-04T11:00:00Z")
    report_id = create_report(api, ProjectGroupIds=["ProjectGroups-1"])
    _settle_and_recompute(clock, lambda_context)
    assert _total(report_metrics(api, report_id, timeRange="LastMonth", granularity="Weekly").body) == 1
    moved = create_deployment(api, version="2", team="ops", finished_at="2024-03-05T10:00:00Z")["id"]
    if caught_up_by == "read":
        clock.advance(timedelta(seconds=5))  # settled: the read records the mark caught up
        one = {**SP, "deploymentId": moved}
        read = api.call("GET", "/api/{spaceId}/deployments/{deploymentId}", path_params=one, key=ADMIN_KEY)
        assert read.status == 200, read.body
    else:  # more than 25 streams waiting: the tick splits the space, its streams items first
        for n in range(25):
            create_deployment(api, project=f"p{n}", version="1", team="ops", finished_at="2024-03-05T11:00:00Z")
    ran = _settle_and_recompute(clock, lambda_context)
    assert ran["schedule"]["spaces_split"] == (1 if caught_up_by == "streams_item" else 0)
    _settle_and_recompute(clock, lambda_context)
    after = report_metrics(api, report_id, timeRange="LastMonth", granularity="Weekly")
    assert after.header("X-Dora-Pending") == "0"
    assert _total(after.body) == 0, after.body


def _restores(body: Any) -> int:
    return sum(i["TimeToRestore"]["Count"] for s in body["Series"] for i in s["Intervals"])


def test_a_report_counts_a_failure_of_an_included_streams_project_and_environment_only(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    create_deployment(api, version="1", finished_at="2024-03-04T10:00:00Z")  # shop / production
    create_deployment(api, project="api", environment="staging", version="1", finished_at="2024-03-04T11:00:00Z")
    report_id = create_report(api)  # every project, every environment
    _settle_and_recompute(clock, lambda_context)
    assert _restores(report_metrics(api, report_id, timeRange="LastMonth").body) == 0
    _shop_failure(api, "staging", "2024-03-05")
    _settle_and_recompute(clock, lambda_context)
    served = report_metrics(api, report_id, timeRange="LastMonth")
    one = {**SP, "reportId": report_id}
    current = api.call("GET", "/api/{spaceId}/insights/reports/{reportId}", path_params=one, key=ADMIN_KEY).body
    assert (
        api.call(
            "PUT", "/api/{spaceId}/insights/reports/{reportId}", path_params=one, body=current, key=ADMIN_KEY
        ).status
        == 200
    )
    fresh = report_metrics(api, report_id, timeRange="LastMonth")
    assert fresh.header("X-Dora-Pending") == "0"
    assert served.header("X-Dora-Pending") == "0"
    assert _restores(served.body) == _restores(fresh.body), (_restores(served.body), _restores(fresh.body))
    assert _restores(served.body) == 0  # no stream of shop in staging: counted nowhere, as /dora/metrics
    _shop_failure(api, "production", "2024-03-06")
    _settle_and_recompute(clock, lambda_context)
    served = report_metrics(api, report_id, timeRange="LastMonth")
    assert (served.header("X-Dora-Pending"), _restores(served.body)) == ("0", 1)


def test_a_deployment_completed_after_the_recompute_instant_counts_once_its_time_comes(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    # Sent with a finish time 7 minutes ahead of the service clock (a deploy tool's clock runs fast).
    clock.now = datetime(2024, 3, 10, 23, 58, tzinfo=UTC)
    create_deployment(api, version="1", started_at="2024-03-10T23:50:00Z", finished_at="2024-03-11T00:05:00Z")
    report_id = create_report(api)
    _settle_and_recompute(clock, lambda_context)
    clock.now = datetime(2024, 3, 12, 9, 0, tzinfo=UTC)  # two days later, nothing new
    served = report_metrics(api, report_id, timeRange="LastMonth", granularity="Daily")
    (series,) = served.body["Series"]
    day = next(i for i in series["Intervals"] if i["StartOfInterval"] == "2024-03-11")
    assert served.header("X-Dora-Pending") == "0"
    # METRICS §4: a deployment belongs to the interval that contains its local CompletedTime.
    assert day["NumberOfSuccessfulDeployments"] == 1, day
