"""Insights set up through the routes, for the tests that check thresholds and alerts on them."""

from __future__ import annotations

from typing import Any

from tests.conftest import ADMIN_KEY, Api, HttpResult

SP = {"spaceId": "Spaces-1"}  # the ``space`` fixture's space
REPORTS = "/api/{spaceId}/insights/reports"


def weekly_deploys_insight(api: Api, space_id: str, key: str, name: str) -> int:
    """A report ``All`` of the space and an insight ``name`` of its weekly deployment frequency over the last
    month (a space's deployments this week are its current value); the insight's id."""
    sp = {"spaceId": space_id}
    report = api.call("POST", "/api/{spaceId}/insights/reports", path_params=sp, body={"Name": "All"}, key=key)
    assert report.status == 201, report.body
    query = {
        "kind": "DoraMetricsQuery",
        "reportId": report.body["Id"],
        "metric": "deployment_frequency",
        "timeRange": "LastMonth",
        "granularity": "Weekly",
    }
    created = api.call(
        "POST", "/api/projects/{spaceId}/insights", path_params=sp, body={"name": name, "query": query}, key=key
    )
    assert created.status == 201, created.body
    return int(created.body["id"])


def create_report(api: Api, name: str = "All", **fields: Any) -> str:
    """An Octopus report of the ``space`` fixture's space (``fields``: its filters); its id."""
    body = {"Name": name, **fields}
    made = api.call("POST", REPORTS, path_params=SP, body=body, key=ADMIN_KEY)
    assert made.status == 201, made.body
    return str(made.body["Id"])


def create_insight(api: Api, report: str, name: str = "Recoveries", **query: str) -> dict[str, Any]:
    """A saved insight of ``report`` in the ``space`` fixture's space (``query``: the rest of its query)."""
    body = {"name": name, "query": {"kind": "DoraMetricsQuery", "reportId": report, **query}}
    made = api.call("POST", "/api/projects/{spaceId}/insights", path_params=SP, body=body, key=ADMIN_KEY)
    assert made.status == 201, made.body
    return made.body  # type: ignore[no-any-return]


def report_metrics(api: Api, report_id: str, **query: str) -> HttpResult:
    """``GET .../reports/{reportId}/metrics`` of the ``space`` fixture's space, asserted 200."""
    result = api.call(
        "GET",
        REPORTS + "/{reportId}/metrics",
        path_params={**SP, "reportId": report_id},
        query=query or None,
        key=ADMIN_KEY,
    )
    assert result.status == 200, result.body
    return result
