"""One history read through every read surface (native ``/summary``, the Octopus report's ``/metrics``,
a PostHog insight and its CSV list, GitLab's ``/dora/metrics``) gives the same numbers, or differences that
docs/METRICS.md explains (§4 local intervals, §6 UTC dates and started-in-range incidents, §9 GitLab's own
definitions)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from dora_insights.domain.durations import parse_duration_seconds
from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.support.native import create_deployment
from tests.support.recompute import scheduled_run

SP = {"spaceId": "Spaces-1"}
FEB = {"from": "2024-02-01T00:00:00Z", "to": "2024-03-01T00:00:00Z"}  # the clock stands at 2024-03-01T12:00Z


def _call(api: Api, method: str, route: str, **kwargs: Any) -> HttpResult:
    return api.call(method, route, key=ADMIN_KEY, path_params=kwargs.pop("path_params", SP), **kwargs)


def _failure(api: Api, project: str, started: str, finished: str | None, environment: str = "production") -> None:
    body: dict[str, Any] = {"project": project, "environment": environment, "started_at": started}
    if finished is not None:
        body["finished_at"] = finished
    made = _call(api, "POST", "/api/{spaceId}/failures", body=body)
    assert made.status in (200, 201), made.body


def _d(api: Api, project: str, env: str, finished: str, version: str, **fields: Any) -> dict[str, Any]:
    return create_deployment(api, project=project, environment=env, finished_at=finished, version=version, **fields)


def _summary(api: Api, **query: str) -> dict[str, Any]:
    found = _call(api, "GET", "/api/{spaceId}/summary", query=query)
    assert found.status == 200, found.body
    return found.body  # type: ignore[no-any-return]


def _report(api: Api, **body: Any) -> str:
    made = _call(api, "POST", "/api/{spaceId}/insights/reports", body={"Name": "r", **body})
    assert made.status == 201, made.body
    return str(made.body["Id"])


def _intervals(api: Api, report: str, granularity: str = "Monthly", split: str = "None") -> dict[str, Any]:
    """{series name: {StartOfInterval: interval}} of a report's LastMonth view."""
    found = _call(
        api,
        "GET",
        "/api/{spaceId}/insights/reports/{reportId}/metrics",
        path_params={**SP, "reportId": report},
        query={"timeRange": "LastMonth", "granularity": granularity, "split": split},
    )
    assert found.status == 200, found.body
    return {s["Name"]: {i["StartOfInterval"]: i for i in s["Intervals"]} for s in found.body["Series"]}


def _gitlab(api: Api, metric: str, **query: str) -> list[Any]:
    base = {"metric": metric, "start_date": "2024-02-01", "end_date": "2024-02-29", "interval": "all"}
    found = _call(api, "GET", "/api/{spaceId}/dora/metrics", query={**base, **query})
    assert found.status == 200, found.body
    return [row["value"] for row in found.body]


def _insight(api: Api, report: str, metric: str, **query: str) -> dict[str, Any]:
    body = {
        "name": metric,
        "query": {
            "kind": "DoraMetricsQuery",
            "reportId": report,
            "metric": metric,
            "timeRange": "LastMonth",
            "granularity": "Monthly",
            **query,
        },
    }
    made = _call(api, "POST", "/api/projects/{spaceId}/insights", body=body)
    assert made.status == 201, made.body
    return made.body  # type: ignore[no-any-return]


@pytest.fixture
def history(api: Api, clock: Clock, lambda_context: Any) -> dict[str, str]:
    """February 2024, two projects and two environments: a failed deployment and its recovery (rework), a
    V1.2→V1.3→V1.2 rollback (1.3 a change failure, the rollback rework and out of the CFR denominator), an
    incident charging api's 2.1 by rule 5, a deployment one second before March (UTC); staging beside it."""
    web, core = {"team": "web"}, {"team": "core"}
    _d(api, "shop", "production", "2024-02-01T00:00:00Z", "0.9", started_at="2024-01-31T23:00:00Z", **web)
    _d(api, "shop", "production", "2024-02-05T10:00:00Z", "1.0", started_at="2024-02-05T09:00:00Z", **web)
    _d(
        api,
        "shop",
        "production",
        "2024-02-06T10:00:00Z",
        "1.1",
        started_at="2024-02-06T09:30:00Z",
        state="Failed",
        **web,
    )
    _d(api, "shop", "production", "2024-02-06T14:00:00Z", "1.2", started_at="2024-02-06T13:00:00Z", **web)
    _d(api, "shop", "production", "2024-02-10T10:00:00Z", "1.3", started_at="2024-02-10T09:00:00Z", **web)
    _d(api, "shop", "production", "2024-02-11T10:00:00Z", "1.2", started_at="2024-02-11T09:00:00Z", **web)
    _d(api, "shop", "production", "2024-03-01T00:00:00Z", "1.5", started_at="2024-02-29T23:00:00Z", **web)
    _d(api, "shop", "staging", "2024-02-04T10:00:00Z", "1.0", started_at="2024-02-04T09:00:00Z", **web)
    _d(api, "shop", "staging", "2024-02-09T10:00:00Z", "1.2", started_at="2024-02-09T09:00:00Z", **web)
    _d(api, "api", "production", "2024-02-07T10:00:00Z", "2.0", started_at="2024-02-01T10:00:00Z", **core)
    _d(api, "api", "production", "2024-02-14T10:00:00Z", "2.1", started_at="2024-02-12T10:00:00Z", **core)
    _d(api, "api", "production", "2024-02-29T23:59:59Z", "2.2", started_at="2024-02-29T20:00:00Z", **core)
    _failure(api, "api", "2024-02-14T12:00:00Z", "2024-02-14T15:00:00Z")
    scheduled_run(lambda_context)
    envs = _call(api, "GET", "/api/{spaceId}/environments").body["Items"]
    groups = _call(api, "GET", "/api/{spaceId}/projectgroups").body["Items"]
    return {e["Name"]: e["Id"] for e in envs} | {g["Name"]: g["Id"] for g in groups}


def test_february_in_production_is_the_same_through_summary_report_insight_and_gitlab(
    api: Api, history: dict[str, str]
) -> None:
    """The same window (February, UTC, production; from included, to excluded) read through every surface:
    counts, rates (5 places), medians in seconds vs Octopus H:MM:SS strings all agree; GitLab's frequency is
    §9's per-day average and its CFR §9's incidents over successes."""
    summary = _summary(api, environment="production", **FEB)
    report = _report(api, EnvironmentGroups=[{"Name": "prod", "Environments": [history["production"]]}])
    feb = _intervals(api, report)["All"]["2024-02-01"]

    successes = summary["deployment_frequency"]["successful_deployments"]
    assert successes == feb["NumberOfSuccessfulDeployments"] == 8  # 03-01T00:00 excluded, 02-01T00:00 included
    assert summary["deployments"] == feb["DeploymentFailureRate"]["Total"] == feb["ReworkRate"]["Deployments"] == 9
    assert _gitlab(api, "deployment_frequency", environment="production") == [pytest.approx(8 / 29)]
    assert summary["deployment_frequency"]["per_day"] == round(8 / 29, 5)

    cfr = summary["change_failure_rate"]
    assert (cfr["change_failures"], cfr["deployments"], cfr["rate"]) == (3, 8, 0.375)
    assert feb["ChangeFailureRate"] == {"ChangeFailures": 3, "Deployments": 8, "Rate": 0.375}
    assert _gitlab(api, "change_failure_rate", environment="production") == [pytest.approx(1 / 8)]  # §9

    rework = summary["rework_rate"]
    assert feb["ReworkRate"] == {
        "ReworkDeployments": rework["rework_deployments"],
        "Deployments": 9,
        "Rate": rework["rate"],
    }
    assert _gitlab(api, "rework_rate", environment="production") == [pytest.approx(rework["rework_deployments"] / 9)]

    lead = summary["lead_time"]
    assert lead["count"] == feb["LeadTime"]["Count"]
    assert parse_duration_seconds(feb["LeadTime"]["Median"]) == pytest.approx(lead["median_seconds"], abs=1e-6)
    assert parse_duration_seconds(feb["LeadTime"]["NinetyFifth"]) == pytest.approx(lead["p95_seconds"], abs=1e-6)
    assert summary["recovery_time"]["median_seconds"] == 4 * 3600.0
    assert feb["MeanTimeToRecovery"]["Median"] == "4:00:00.0"
    assert (
        summary["time_to_restore"]["median_seconds"]
        == 3 * 3600.0
        == _gitlab(api, "time_to_restore_service", environment="production")[0]
    )
    assert feb["TimeToRestore"]["Median"] == "3:00:00.0"

    expected = {
        "deployment_frequency": 8.0,
        "change_failure_rate": 0.375,
        "rework_rate": rework["rate"],
        "lead_time": lead["median_seconds"],
        "recovery_time": 14400.0,
        "time_to_restore": 10800.0,
    }
    for metric, value in expected.items():
        result = _insight(api, report, metric)["result"]
        assert result["interval"] == ["2024-02-01", "2024-03-01"], metric
        assert result["series"][0]["values"][0] == pytest.approx(value), metric


def test_what_no_data_looks_like_on_each_surface(api: Api, history: dict[str, str]) -> None:
    """March so far holds only shop's 03-01T00:00 deployment in production; staging has nothing. Durations
    are null everywhere; a rate with no deployments is 0 with no tier (METRICS §4, §6) where GitLab's is null
    (§9)."""
    report = _report(api, EnvironmentGroups=[{"Name": "stg", "Environments": [history["staging"]]}])
    march = _intervals(api, report)["All"]["2024-03-01"]
    assert march["ChangeFailureRate"]["Rate"] == 0.0 and march["LeadTime"]["Median"] is None
    summary = _summary(api, environment="staging", **{"from": "2024-03-01T00:00:00Z", "to": "2024-03-01T12:00:00Z"})
    assert summary["change_failure_rate"] == {"change_failures": 0, "deployments": 0, "rate": 0.0, "tier": None}
    assert summary["lead_time"]["median_seconds"] is None
    march_gitlab = {"start_date": "2024-03-01", "end_date": "2024-03-02", "environment": "staging"}
    assert _gitlab(api, "change_failure_rate", **march_gitlab) == [None]
    assert _gitlab(api, "lead_time_for_changes", **march_gitlab) == [None]
    insight = _insight(api, report, "change_failure_rate")["result"]["series"][0]["values"]
    assert insight[1] == 0.0


def test_project_group_and_environment_filters_count_the_same_deployments(api: Api, history: dict[str, str]) -> None:
    """A project-group or environment filter selects the same deployments in a report and in GitLab's API
    (counts per day of the range summed), and a project filter in ``/summary`` the same as GitLab's."""
    for group, expected in (("web", 7), ("core", 3)):
        report = _report(api, ProjectGroupIds=[history[group]])
        feb = _intervals(api, report)["All"]["2024-02-01"]
        days = _gitlab(
            api, "deployment_frequency", interval="daily", project_group=group, **{"environment_tiers[]": "production"}
        )
        staging = _gitlab(api, "deployment_frequency", interval="daily", project_group=group, environment="staging")
        assert sum(days) + sum(staging) == feb["NumberOfSuccessfulDeployments"] == expected, group
    for project in ("shop", "api"):
        summary = _summary(api, project=project, environment="production", **FEB)
        days = _gitlab(api, "deployment_frequency", interval="daily", project=project, environment="production")
        assert sum(days) == summary["deployment_frequency"]["successful_deployments"], project


def test_local_midnight_decides_the_interval_and_an_offset_range_counts_the_same(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """A report in Tokyo time: a deployment exactly at local midnight starts the new day (and month); one a
    millisecond before stays in the old one. ``/summary`` over the same local month (offsets are instants)
    counts the same deployments, its ``deployment_days`` in UTC dates (METRICS §6)."""
    _d(api, "shop", "production", "2024-01-31T15:00:00Z", "0.9")  # 2024-02-01T00:00 JST
    _d(api, "shop", "production", "2024-02-14T14:59:59.999Z", "1.0")  # 02-14 23:59:59.999 JST
    _d(api, "shop", "production", "2024-02-14T15:00:00Z", "1.1")  # 02-15 00:00 JST
    _d(api, "shop", "production", "2024-02-29T15:00:00Z", "1.2")  # 2024-03-01T00:00 JST
    scheduled_run(lambda_context)
    report = _report(api, TimeZone="Tokyo Standard Time")
    daily = {k: v["NumberOfSuccessfulDeployments"] for k, v in _intervals(api, report, "Daily")["All"].items()}
    assert {k: v for k, v in daily.items() if v} == {"2024-02-01": 1, "2024-02-14": 1, "2024-02-15": 1, "2024-03-01": 1}
    monthly = _intervals(api, report)["All"]
    assert monthly["2024-02-01"]["NumberOfSuccessfulDeployments"] == 3
    assert monthly["2024-02-01"]["DeploymentDays"] == 3
    summary = _summary(api, **{"from": "2024-02-01T00:00:00+09:00", "to": "2024-03-01T00:00:00+09:00"})
    assert summary["deployment_frequency"]["successful_deployments"] == 3
    assert summary["deployment_frequency"]["deployment_days"] == 2  # UTC dates 01-31 and 02-14


def test_the_insight_csv_carries_the_numbers_of_its_json(api: Api, history: dict[str, str]) -> None:
    """``format=csv`` of the insight list: the ``result`` cell is the JSON result, numbers unchanged."""
    report = _report(api)
    made = _insight(api, report, "lead_time", statistic="p95")
    listed = _call(api, "GET", "/api/projects/{spaceId}/insights", query={"format": "csv"})
    assert listed.status == 200
    (row,) = csv.DictReader(io.StringIO(listed.body if isinstance(listed.body, str) else listed.body.decode()))
    assert json.loads(row["result"]) == made["result"]


def test_an_incident_counts_in_the_summary_without_a_stream_but_in_a_report_only_with_one(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """METRICS §6: ``/summary`` counts every finished incident its project and environment filters admit,
    whether or not the project deployed to that environment; a report (§4) and ``/dora/metrics`` (§9) count
    one only where they include a stream of its project in its environment. An incident of shop in staging
    (shop never deployed there) and one of a project with no deployment at all: two in ``/summary``, none in
    a report of the whole space."""
    _d(api, "shop", "production", "2024-02-05T10:00:00Z", "1.0", started_at="2024-02-05T09:00:00Z")
    _failure(api, "shop", "2024-02-10T10:00:00Z", "2024-02-10T11:00:00Z", environment="staging")
    _failure(api, "ghost", "2024-02-10T10:00:00Z", "2024-02-10T13:00:00Z")
    scheduled_run(lambda_context)
    feb = _intervals(api, _report(api))["All"]["2024-02-01"]
    summary = _summary(api, **FEB)
    assert summary["environment_scope"]["source"] == "all"
    assert (summary["time_to_restore"]["count"], summary["time_to_restore"]["median_seconds"]) == (2, 7200)
    assert feb["TimeToRestore"]["Count"] == 0, feb["TimeToRestore"]
