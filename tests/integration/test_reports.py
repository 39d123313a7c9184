"""Octopus Insights reports CRUD, through the real event shape against moto."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api

REPORTS = "/api/{spaceId}/insights/reports"
ONE = REPORTS + "/{reportId}"
SP = {"spaceId": "Spaces-1"}


@pytest.fixture
def catalogue(api: Api) -> None:
    """Projects-1, Projects-2, Environments-1..2, Tenants-1, ProjectGroups-1 exist."""
    for project, environment in (("shop", "production"), ("api", "staging")):
        api.call(
            "POST",
            "/api/{spaceId}/deployments",
            path_params=SP,
            body={"project": project, "environment": environment, "finished_at": 1, "tenant": "acme", "team": "web"},
            key=ADMIN_KEY,
        )


def report(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "SpaceId": "Spaces-1",
        "Name": "High Volume Report",
        "Description": "High volume tenanted deployments report",
        "ProjectGroupIds": ["ProjectGroups-1"],
        "ProjectIds": ["Projects-1", "Projects-2"],
        "TenantIds": ["Tenants-1"],
        "TenantTags": ["Location/Europe"],
        "TenantMode": "TenantedAndUntenanted",
        "EnvironmentGroups": [
            {"Name": "Test", "Environments": ["Environments-2"]},
            {"Name": "Production", "Environments": ["Environments-1"]},
        ],
        "TimeZone": "UTC",
    }
    body.update(overrides)
    return body


def _create(api: Api, **overrides: Any) -> dict[str, Any]:
    created = api.call("POST", REPORTS, path_params=SP, body=report(**overrides), key=ADMIN_KEY)
    assert created.status == 201, created.body
    return created.body  # type: ignore[no-any-return]


def test_create_get_update_delete(api: Api, catalogue: None) -> None:
    created = _create(api)
    assert created["Id"] == "InsightsReports-1"
    assert created["SpaceId"] == "Spaces-1"
    assert created["Version"] == 1
    assert created["Links"]["Self"] == "/api/Spaces-1/insights/reports/InsightsReports-1"
    one = {**SP, "reportId": created["Id"]}
    assert api.call("GET", ONE, path_params=one, key=ADMIN_KEY).body == created
    edited = created | {"Name": "Renamed", "TimeZone": "AUS Eastern Standard Time"}
    updated = api.call("PUT", ONE, path_params=one, body=edited, key=ADMIN_KEY)
    assert updated.status == 200, updated.body
    assert (updated.body["Name"], updated.body["TimeZone"], updated.body["Version"]) == (
        "Renamed",
        "AUS Eastern Standard Time",
        2,
    )
    assert api.call("DELETE", ONE, path_params=one, key=ADMIN_KEY).status == 204
    assert api.call("GET", ONE, path_params=one, key=ADMIN_KEY).status == 404
    assert api.call("DELETE", ONE, path_params=one, key=ADMIN_KEY).status == 404


def test_two_writers_cannot_silently_overwrite_each_other(api: Api, catalogue: None) -> None:
    created = _create(api)
    one = {**SP, "reportId": created["Id"]}
    first = api.call("PUT", ONE, path_params=one, body=created | {"Name": "First"}, key=ADMIN_KEY)
    assert first.status == 200
    second = api.call("PUT", ONE, path_params=one, body=created | {"Name": "Second"}, key=ADMIN_KEY)
    assert second.status == 409
    assert "ErrorMessage" in second.body
    assert api.call("GET", ONE, path_params=one, key=ADMIN_KEY).body["Name"] == "First"
    stale = api.call("PUT", ONE, path_params=one, body=report(Name="Third"), headers={"If-Match": '"1"'}, key=ADMIN_KEY)
    assert stale.status == 412  # a stale If-Match is HTTP's 412, as /openapi.json documents; a stale Version 409
    assert "ErrorMessage" in stale.body


def test_list_pages_with_skip_take_and_links(api: Api, catalogue: None) -> None:
    for n in range(3):
        _create(api, Name=f"Report {n}")
    page = api.call("GET", REPORTS, path_params=SP, query={"skip": "1", "take": "1"}, key=ADMIN_KEY).body
    assert page["ItemType"] == "InsightsReport"
    assert (page["TotalResults"], page["ItemsPerPage"], page["NumberOfPages"], page["LastPageNumber"]) == (3, 1, 3, 2)
    assert [r["Name"] for r in page["Items"]] == ["Report 1"]
    assert page["Links"] == {
        "Self": "/api/Spaces-1/insights/reports?skip=1&take=1",
        "Template": "/api/Spaces-1/insights/reports{?skip,take}",
        "Page.All": "/api/Spaces-1/insights/reports?skip=0&take=2147483647",
        "Page.Current": "/api/Spaces-1/insights/reports?skip=1&take=1",
        "Page.Last": "/api/Spaces-1/insights/reports?skip=2&take=1",
    }
    default = api.call("GET", REPORTS, path_params=SP, key=ADMIN_KEY).body
    assert default["ItemsPerPage"] == 30
    assert len(default["Items"]) == 3


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"Name": ""}, "Name"),
        ({"Name": None}, "Name"),
        ({"TenantMode": "Sometimes"}, "TenantMode"),
        ({"TimeZone": "Mars/Olympus"}, "TimeZone"),
        ({"ProjectIds": ["Projects-99"]}, "Projects-99"),
        ({"ProjectIds": ["Environments-1"]}, "ProjectIds"),
        (
            {
                "EnvironmentGroups": [
                    {"Name": "A", "Environments": ["Environments-1"]},
                    {"Name": "a", "Environments": ["Environments-2"]},
                ]
            },
            "unique",
        ),
        ({"EnvironmentGroups": [{"Name": "A", "Environments": ["Environments-7"]}]}, "Environments-7"),
        ({"TenantIds": ["Tenants-5"]}, "Tenants-5"),
        ({"TenantTags": ["NoSlash"]}, "TagSet/Tag"),
        ({"SpaceId": "Spaces-2"}, "SpaceId"),
        ({"IconColor": "blue"}, "IconColor"),
        ({"Unknown": 1}, "Unknown"),
    ],
)
def test_invalid_reports_are_octopus_400s(api: Api, catalogue: None, overrides: dict[str, Any], fragment: str) -> None:
    result = api.call("POST", REPORTS, path_params=SP, body=report(**overrides), key=ADMIN_KEY)
    assert result.status == 400, result.body
    assert set(result.body) == {"ErrorMessage", "Errors"}
    assert fragment in result.body["ErrorMessage"] + " ".join(result.body["Errors"])


def test_windows_and_iana_time_zones_are_accepted_and_answered_in_windows_format(api: Api, catalogue: None) -> None:
    """The reference: TimeZone is accepted in Windows or IANA form and answered "in Windows timezone format"."""
    answered = {
        "UTC": "UTC",
        "Europe/London": "GMT Standard Time",
        "GMT Standard Time": "GMT Standard Time",
        "AUS Eastern Standard Time": "AUS Eastern Standard Time",
        "America/Los_Angeles": "Pacific Standard Time",
    }
    for zone, windows in answered.items():
        assert _create(api, TimeZone=zone)["TimeZone"] == windows


def test_unknown_and_malformed_report_ids_are_404(api: Api) -> None:
    for report_id in ("InsightsReports-5", "nope", "InsightsReports-x"):
        result = api.call("GET", ONE, path_params={**SP, "reportId": report_id}, key=ADMIN_KEY)
        assert result.status == 404
        assert "ErrorMessage" in result.body


def test_a_report_has_one_id_a_leading_zero_names_none(api: Api, catalogue: None) -> None:
    """``InsightsReports-01`` read as report 1: one report answered to many ids (and an insight's
    ``reportId`` could name it so)."""
    created = _create(api)
    assert created["Id"] == "InsightsReports-1"
    for report_id in ("InsightsReports-01", "InsightsReports-0001", "InsightsReports-١"):
        for method in ("GET", "DELETE"):
            result = api.call(method, ONE, path_params={**SP, "reportId": report_id}, key=ADMIN_KEY)
            assert result.status == 404, (method, report_id, result.body)
    query = {"kind": "DoraMetricsQuery", "reportId": "InsightsReports-01", "metric": "lead_time"}
    insight = api.call("POST", "/api/projects/{spaceId}/insights", path_params=SP, body={"query": query}, key=ADMIN_KEY)
    assert (insight.status, insight.body["attr"]) == (400, "query.reportId")
    assert api.call("GET", ONE, path_params={**SP, "reportId": "InsightsReports-1"}, key=ADMIN_KEY).status == 200


def test_reports_need_their_scopes(api: Api, catalogue: None) -> None:
    reader = api.call(
        "POST", "/api/{spaceId}/apikeys", path_params=SP, body={"name": "r", "scopes": ["reports:read"]}, key=ADMIN_KEY
    ).body["key"]
    assert api.call("GET", REPORTS, path_params=SP, key=reader).status == 200
    assert api.call("POST", REPORTS, path_params=SP, body=report(), key=reader).status == 403


@pytest.mark.parametrize("tag", ['"\u00b2"', '"\u0661"', '"' + "9" * 20 + '"'])
def test_an_if_match_of_other_digits_than_ascii_or_too_many_is_a_400(api: Api, catalogue: None, tag: str) -> None:
    """``"²".isdigit()`` is true and ``int("²")`` raises: that was a 500."""
    created = _create(api)
    one = {**SP, "reportId": created["Id"]}
    result = api.call(
        "PUT", ONE, path_params=one, body=created | {"Name": "Other"}, headers={"If-Match": tag}, key=ADMIN_KEY
    )
    assert result.status == 400, result.body
    assert "If-Match must be" in result.body["ErrorMessage"]
    assert api.call("GET", ONE, path_params=one, key=ADMIN_KEY).body["Name"] == created["Name"]
