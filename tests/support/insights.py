"""Insights set up through the routes, for the tests that check thresholds and alerts on them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.conftest import Api


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
