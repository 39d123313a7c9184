"""A stream that moves *into* an answer through a new deployment (its project now in the project group a
report or a ``/dora/metrics`` query filters by, or its tenant now with a tag a report lists) is covered by
that answer (METRICS §8): a read brings it up to date first, so the figures count it, or says it waits
(``X-Dora-Pending``). Each case was served as current (pending 0) without the stream until the next
scheduled run: a marked stream with a registration was judged by that registration only, which said the
stream was elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.support.insights import REPORTS, SP, create_report, report_metrics
from tests.support.native import create_deployment
from tests.support.recompute import scheduled_run

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
WEB = "ProjectGroups-1"  # team "web", the first team the space sees
EUROPE = "Location/Europe"


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _settle_and_recompute(clock: Clock, lambda_context: Any) -> None:
    clock.advance(timedelta(seconds=5))  # marks older than SETTLE are cleared by the run
    scheduled_run(lambda_context)


def _successes(result: HttpResult) -> int:
    return sum(i["NumberOfSuccessfulDeployments"] for s in result.body["Series"] for i in s["Intervals"])


def _monthly(api: Api, report_id: str) -> HttpResult:
    return report_metrics(api, report_id, timeRange="LastMonth", granularity="Monthly")


@pytest.fixture
def web_report(api: Api, clock: Clock, lambda_context: Any) -> str:
    """Project shop in team web (the report's project group), project api in team ops; the report computed
    with shop's one deployment, api's stream registered in ops."""
    create_deployment(api, version="1", team="web", finished_at="2024-03-04T10:00:00Z")
    create_deployment(api, project="api", version="1", team="ops", finished_at="2024-03-04T11:00:00Z")
    report_id = create_report(api, "Web", ProjectGroupIds=[WEB])
    _settle_and_recompute(clock, lambda_context)
    before = _monthly(api, report_id)
    assert (_successes(before), before.header("X-Dora-Pending")) == (1, "0")
    return report_id


def test_a_stream_moving_into_a_reports_project_group_is_counted_by_the_next_read(api: Api, web_report: str) -> None:
    # Project api moves to team web: its stream (registered in ops) now belongs to the report.
    create_deployment(api, project="api", version="2", team="web", finished_at="2024-03-05T10:00:00Z")
    found = _monthly(api, web_report)
    # Brought up to date by the read: the stream's two deployments count (the stream's dimensions are its
    # latest deployment's), nothing waits.
    assert (_successes(found), found.header("X-Dora-Pending")) == (3, "0")


def test_above_the_bound_a_stream_moving_in_is_counted_as_pending(
    api: Api, web_report: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.logic import freshness

    create_deployment(api, project="api", version="2", team="web", finished_at="2024-03-05T10:00:00Z")
    monkeypatch.setattr(freshness, "REPORT_READ_BOUND", 0)  # the report (1 deployment) is too big to recompute
    found = _monthly(api, web_report)
    assert (_successes(found), found.header("X-Dora-Pending")) == (1, "1")  # as stored: api's stream waits
    monkeypatch.setattr(freshness, "REPORT_READ_BOUND", 20_000)
    found = _monthly(api, web_report)
    assert (_successes(found), found.header("X-Dora-Pending")) == (3, "0")


def test_a_stream_leaving_the_group_after_another_read_caught_it_up_leaves_the_report(
    api: Api, web_report: str, clock: Clock
) -> None:
    # Project shop moves to team ops; /summary's read brings its stream up to date (past SETTLE, so the
    # mark is caught up), registering it in ops: the report's own read then no longer covers the mark.
    create_deployment(api, version="2", team="ops", finished_at="2024-03-05T10:00:00Z")
    clock.advance(timedelta(seconds=5))
    summary = api.call("GET", "/api/{spaceId}/summary", path_params=SP, key=ADMIN_KEY)
    assert summary.status == 200, summary.body
    found = _monthly(api, web_report)
    # The report no longer counts shop (its registration says ops), rather than shop's old deployment.
    assert (_successes(found), found.header("X-Dora-Pending")) == (0, "0")


def test_a_reports_deployments_list_a_stream_moving_in(api: Api, web_report: str) -> None:
    create_deployment(api, project="api", version="2", team="web", finished_at="2024-03-05T10:00:00Z")
    found = api.call(
        "GET", REPORTS + "/{reportId}/deployments", path_params={**SP, "reportId": web_report}, key=ADMIN_KEY
    )
    assert found.status == 200, found.body
    listed = {s["ProjectName"]: len(s["Deployments"]) for s in found.body["Streams"]}
    assert (listed, found.header("X-Dora-Pending")) == ({"shop": 1, "api": 2}, "0")


def test_a_tenant_stream_taking_a_tag_the_report_lists_is_counted_by_the_next_read(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    create_deployment(api, version="1", tenant="acme", tenant_tags=[EUROPE], finished_at="2024-03-04T10:00:00Z")
    create_deployment(
        api, version="1", tenant="zeta", tenant_tags=["Location/Asia"], finished_at="2024-03-04T11:00:00Z"
    )
    report_id = create_report(api, "Europe", TenantTags=[EUROPE])
    _settle_and_recompute(clock, lambda_context)
    assert _successes(_monthly(api, report_id)) == 1
    # Tenant zeta is tagged Location/Europe now: its stream belongs to the report.
    create_deployment(api, version="2", tenant="zeta", tenant_tags=[EUROPE], finished_at="2024-03-05T10:00:00Z")
    found = _monthly(api, report_id)
    assert (_successes(found), found.header("X-Dora-Pending")) == (3, "0")


def _frequency(api: Api, **query: str) -> HttpResult:
    found = api.call(
        "GET",
        "/api/{spaceId}/dora/metrics",
        path_params=SP,
        query={"metric": "deployment_frequency", "start_date": "2024-03-01", "end_date": "2024-03-08", **query},
        key=ADMIN_KEY,
    )
    assert found.status == 200, found.body
    return found


def test_dora_metrics_of_a_project_group_count_a_stream_moving_into_it(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    create_deployment(api, version="1", team="web", finished_at="2024-03-04T10:00:00Z")
    create_deployment(api, project="api", version="1", team="ops", finished_at="2024-03-04T11:00:00Z")
    _settle_and_recompute(clock, lambda_context)
    before = _frequency(api, project_group="web")
    assert (sum(r["value"] for r in before.body), before.header("X-Dora-Pending")) == (1, "0")
    create_deployment(api, project="api", version="2", team="web", finished_at="2024-03-05T10:00:00Z")
    found = _frequency(api, project_group="web")
    assert (sum(r["value"] for r in found.body), found.header("X-Dora-Pending")) == (3, "0")
