"""A late release and the answers that cover another environment (METRICS §3, §8).

A release's first sight is taken across the project, so a staging deployment of version 2.0 that
arrives after production's (a backfill, a late pipeline) and started before it moves production's
Release lead time. The ingest marks only its own stream; an answer that covers production recomputes
the marked streams of production's project first (they may move its releases) and then production
again if they did, so it counts the new lead time or says it does not (``pending``), never the earlier
lead time with ``pending: 0``. Each answer that brings streams up to date is driven here: ``/summary``
(per-deployment figures), GitLab's ``/dora/metrics`` (rollups), a report's streams, metrics and views."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.read_cost import Meter
from tests.support.recompute import scheduled_run

SP = {"spaceId": "Spaces-1"}
DEPLOYMENTS = "/api/{spaceId}/deployments"
REPORTS = "/api/{spaceId}/insights/reports"
# Production's Release lead times: 1.0 first seen in staging at 07:00, finished in production at 08:10;
# 2.0 first seen in production at 10:00 and finished at 10:10, until staging's 2.0 from 06:00 arrives.
MEDIAN_BEFORE = (70 * 60 + 10 * 60) / 2
MEDIAN_AFTER = (70 * 60 + 250 * 60) / 2


def _send(api: Api, env: str, version: str, started: str, finished: str, project: str = "shop") -> str:
    body = {
        "project": project,
        "environment": env,
        "version": version,
        "started_at": started,
        "finished_at": finished,
    }
    made = api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY)
    assert made.status == 201, made.body
    return str(made.body["id"])


def _history(api: Api, clock: Clock, lambda_context: Any) -> str:
    """Production runs 1.0 and 2.0, staging 1.0; computed by the schedule. Returns 2.0's production id."""
    _send(api, "production", "1.0", "2024-03-10T08:00:00Z", "2024-03-10T08:10:00Z")
    d2 = _send(api, "production", "2.0", "2024-03-10T10:00:00Z", "2024-03-10T10:10:00Z")
    _send(api, "staging", "1.0", "2024-03-10T07:00:00Z", "2024-03-10T07:10:00Z")
    clock.advance(timedelta(minutes=10))
    scheduled_run(lambda_context)
    return d2


def _late_staging(api: Api, clock: Clock) -> None:
    clock.advance(timedelta(minutes=1))
    _send(api, "staging", "2.0", "2024-03-10T06:00:00Z", "2024-03-10T06:10:00Z")
    clock.advance(timedelta(seconds=5))


def _summary(api: Api) -> dict[str, Any]:
    query = {"environment": "production", "from": "2024-03-01T00:00:00Z", "to": "2024-04-01T00:00:00Z"}
    found = api.call("GET", "/api/{spaceId}/summary", path_params=SP, query=query, key=ADMIN_KEY)
    assert found.status == 200, found.body
    return found.body  # type: ignore[no-any-return]


def _median(summary: dict[str, Any]) -> float:
    return float(summary["lead_time"]["median_seconds"])


def test_summary_of_production_counts_a_late_staging_release(api: Api, clock: Clock, lambda_context: Any) -> None:
    _history(api, clock, lambda_context)
    before = _summary(api)
    assert before["pending"] == 0 and _median(before) == MEDIAN_BEFORE, before["lead_time"]
    _late_staging(api, clock)
    after = _summary(api)
    assert after["pending"] == 0, after
    assert _median(after) == MEDIAN_AFTER, ("production's Release lead time not moved", after["lead_time"])


def test_gitlab_dora_metrics_of_production_count_a_late_staging_release(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    _history(api, clock, lambda_context)
    query = {
        "metric": "lead_time_for_changes",
        "start_date": "2024-03-01",
        "end_date": "2024-03-31",
        "interval": "all",
        "environment": "production",
    }

    def read() -> tuple[Any, str | None]:
        found = api.call("GET", "/api/{spaceId}/dora/metrics", path_params=SP, query=query, key=ADMIN_KEY)
        assert found.status == 200, found.body
        return found.body[0]["value"], found.header("X-Dora-Pending")

    value, pending = read()
    assert (value, pending) == (MEDIAN_BEFORE, "0")  # GitLab's value: the median lead time
    _late_staging(api, clock)
    assert read() == (MEDIAN_AFTER, "0")


def _report(api: Api, name: str, **fields: Any) -> str:
    made = api.call("POST", REPORTS, path_params=SP, body={"Name": name, **fields}, key=ADMIN_KEY)
    assert made.status == 201, made.body
    return str(made.body["Id"])


def _environments(api: Api) -> dict[str, str]:
    found = api.call("GET", "/api/{spaceId}/environments", path_params=SP, query={"take": "100"}, key=ADMIN_KEY)
    assert found.status == 200, found.body
    return {item["Name"]: item["Id"] for item in found.body["Items"]}


def test_report_views_of_production_count_a_late_staging_release_at_the_first_read(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """The report's views (its metrics) are recomputed after the streams its read moved."""
    _history(api, clock, lambda_context)
    prod = _report(api, "Prod", EnvironmentGroups=[{"Name": "P", "Environments": [_environments(api)["production"]]}])
    clock.advance(timedelta(minutes=6))
    scheduled_run(lambda_context)
    path = {**SP, "reportId": prod}
    query = {"timeRange": "LastMonth", "granularity": "Monthly"}
    clock.now = clock.now.replace(year=2024, month=4, day=2)  # LastMonth: March 2024
    first = api.call("GET", REPORTS + "/{reportId}/metrics", path_params=path, query=query, key=ADMIN_KEY)
    assert first.status == 200, first.body
    _late_staging(api, clock)
    found = api.call("GET", REPORTS + "/{reportId}/metrics", path_params=path, query=query, key=ADMIN_KEY)
    assert found.status == 200, found.body
    lead = [i["LeadTime"] for s in found.body["Series"] for i in s["Intervals"] if i["LeadTime"]["Count"]]
    assert found.header("X-Dora-Pending") == "0", found.headers
    assert lead and lead[0]["Max"] == "4:10:00.0", lead


def test_a_report_of_another_project_reads_nothing_of_the_late_project(
    api: Api, clock: Clock, lambda_context: Any, meter: Meter
) -> None:
    """A report that lists projects reads no stream list of a project it does not list, and recomputes
    none of its streams, however many of them are marked."""
    _history(api, clock, lambda_context)
    _send(api, "production", "1.0", "2024-03-10T09:00:00Z", "2024-03-10T09:10:00Z", project="billing")
    projects = api.call("GET", "/api/{spaceId}/projects", path_params=SP, query={"take": "100"}, key=ADMIN_KEY)
    billing = next(p["Id"] for p in projects.body["Items"] if p["Name"] == "billing")
    report = _report(api, "Billing", ProjectIds=[billing])
    clock.advance(timedelta(minutes=6))
    scheduled_run(lambda_context)
    _late_staging(api, clock)
    path = {**SP, "reportId": report}
    meter.reset()
    found = api.call("GET", REPORTS + "/{reportId}/deployments", path_params=path, key=ADMIN_KEY)
    assert found.status == 200, found.body
    assert found.header("X-Dora-Pending") == "0"
    assert meter.calls["transact_write_items"] == 0, meter  # nothing recomputed
    assert meter.queried["STREAMS"] <= 1, meter  # the snapshot's list, no project's key range besides


def test_a_release_moved_past_the_read_bound_is_counted_in_pending(
    api: Api, clock: Clock, lambda_context: Any, monkeypatch: Any
) -> None:
    """When the bound leaves no room to recompute production again, the answer says it is behind."""
    from dora_insights.logic import freshness

    _history(api, clock, lambda_context)
    _late_staging(api, clock)
    monkeypatch.setattr(freshness, "READ_STREAMS", 1)  # room for staging only
    after = _summary(api)
    assert after["pending"] == 1, after
    monkeypatch.undo()
    again = _summary(api)
    assert again["pending"] == 0 and _median(again) == MEDIAN_AFTER, again


def test_a_neighbour_that_moves_nothing_leaves_the_report_as_computed(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """A staging deployment of a new version moves no production lead time: the production report's read
    recomputes staging (it might have) but not the report's views, which still count all it covers."""
    _history(api, clock, lambda_context)
    prod = _report(api, "Prod", EnvironmentGroups=[{"Name": "P", "Environments": [_environments(api)["production"]]}])
    path = {**SP, "reportId": prod}
    query = {"timeRange": "LastMonth", "granularity": "Monthly"}
    clock.now = clock.now.replace(year=2024, month=4, day=2)
    first = api.call("GET", REPORTS + "/{reportId}/metrics", path_params=path, query=query, key=ADMIN_KEY)
    assert first.status == 200 and first.header("X-Dora-Pending") == "0", first.headers
    clock.advance(timedelta(minutes=1))
    _send(api, "staging", "3.0", "2024-03-10T11:00:00Z", "2024-03-10T11:10:00Z")
    clock.advance(timedelta(seconds=5))
    again = api.call("GET", REPORTS + "/{reportId}/metrics", path_params=path, query=query, key=ADMIN_KEY)
    assert again.status == 200 and again.header("X-Dora-Pending") == "0", again.headers
    assert again.header("X-Dora-As-Of") == first.header("X-Dora-As-Of"), (first.headers, again.headers)
    assert again.body == first.body
