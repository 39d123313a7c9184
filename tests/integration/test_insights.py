"""PostHog saved insights: CRUD, soft delete, activity, views, trending, sharing, thresholds, CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock

SP = {"spaceId": "Spaces-1"}
INSIGHTS = "/api/projects/{spaceId}/insights"
ENV_INSIGHTS = "/api/environments/{spaceId}/insights"
ONE = INSIGHTS + "/{insightId}"


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """scrypt at N=2^14 here (each hash stores its cost); test_share_logins.py checks the real cost."""
    from dora_insights.logic import insights

    monkeypatch.setattr(insights, "SCRYPT_COST", insights.ScryptCost(n=2**14, r=8, p=1))


@pytest.fixture
def report_id(api: Api, clock: Clock) -> str:
    created = api.call(
        "POST", "/api/{spaceId}/insights/reports", path_params=SP, body={"Name": "Delivery"}, key=ADMIN_KEY
    )
    assert created.status == 201, created.body
    return str(created.body["Id"])


def _key(api: Api, user: str, scopes: list[str]) -> str:
    body = {"name": user, "user": user, "scopes": scopes}
    return str(api.call("POST", "/api/{spaceId}/apikeys", path_params=SP, body=body, key=ADMIN_KEY).body["key"])


def query(report_id: str, **overrides: Any) -> dict[str, Any]:
    return {"kind": "DoraMetricsQuery", "reportId": report_id, "metric": "lead_time", **overrides}


def _create(api: Api, report_id: str, key: str = ADMIN_KEY, **fields: Any) -> dict[str, Any]:
    body = {"name": "Lead time", "query": query(report_id), **fields}
    created = api.call("POST", INSIGHTS, path_params=SP, body=body, key=key)
    assert created.status == 201, created.body
    return created.body  # type: ignore[no-any-return]


def _one(insight_id: int, **extra: str) -> dict[str, str]:
    return {**SP, "insightId": str(insight_id), **extra}


def test_create_retrieve_and_the_environments_twin(api: Api, report_id: str) -> None:
    created = _create(api, report_id, description="p50 lead time", tags=["dora"])
    assert created["id"] == 1
    assert len(created["short_id"]) == 8
    assert created["derived_name"].startswith("Change lead time (median)")
    assert created["created_by"] == {"first_name": "test admin", "email": None}
    assert created["query"]["granularity"] == "Weekly"
    fetched = api.call("GET", ONE, path_params=_one(1), key=ADMIN_KEY)
    assert fetched.status == 200
    assert fetched.body["short_id"] == created["short_id"]
    twin = api.call("GET", ENV_INSIGHTS + "/{insightId}", path_params=_one(1), key=ADMIN_KEY)
    assert twin.body["id"] == 1


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        (
            {"query": {"kind": "DoraMetricsQuery", "reportId": "InsightsReports-9", "metric": "lead_time"}},
            "query.reportId",
        ),
        (
            {"query": {"kind": "DoraMetricsQuery", "reportId": "InsightsReports-1", "metric": "velocity"}},
            "query.metric",
        ),
        ({"query": {"kind": "TrendsQuery", "reportId": "InsightsReports-1", "metric": "lead_time"}}, "query.kind"),
        ({"name": "no query"}, "query"),
    ],
)
def test_invalid_queries_are_posthog_validation_errors(
    api: Api, report_id: str, body: dict[str, Any], attr: str
) -> None:
    result = api.call("POST", INSIGHTS, path_params=SP, body=body, key=ADMIN_KEY)
    assert result.status == 400, result.body
    assert result.body["type"] == "validation_error"
    assert result.body["attr"] == attr
    assert result.body["detail"]


def test_delete_is_405_and_soft_delete_and_restore_are_recorded(api: Api, report_id: str, clock: Clock) -> None:
    _create(api, report_id)
    refused = api.call("DELETE", ONE, path_params=_one(1), key=ADMIN_KEY)
    assert refused.status == 405
    assert refused.body["code"] == "method_not_allowed"
    clock.advance(timedelta(minutes=1))
    assert api.call("PATCH", ONE, path_params=_one(1), body={"deleted": True}, key=ADMIN_KEY).status == 200
    assert api.call("GET", INSIGHTS, path_params=SP, key=ADMIN_KEY).body["count"] == 0
    clock.advance(timedelta(minutes=1))
    assert (
        api.call("PATCH", ONE, path_params=_one(1), body={"deleted": False, "name": "Back"}, key=ADMIN_KEY).status
        == 200
    )
    activity = api.call("GET", ONE + "/activity", path_params=_one(1), key=ADMIN_KEY).body
    assert [a["activity"] for a in activity["results"]] == ["restored", "deleted", "created"]
    assert activity["total_count"] == 3
    restored = activity["results"][0]["detail"]["changes"]
    assert {"type": "Insight", "action": "changed", "field": "name", "before": "Lead time", "after": "Back"} in restored
    assert {"type": "Insight", "action": "changed", "field": "deleted", "before": True, "after": False} in restored


def test_project_activity_pages_newest_first(api: Api, report_id: str, clock: Clock) -> None:
    for n in range(3):
        clock.advance(timedelta(minutes=1))
        _create(api, report_id, name=f"Insight {n}")
    page = api.call(
        "GET", INSIGHTS + "/activity", path_params=SP, query={"limit": "2", "page": "1"}, key=ADMIN_KEY
    ).body
    assert [a["detail"]["name"] for a in page["results"]] == ["Insight 2", "Insight 1"]
    assert page["total_count"] == 3
    assert page["next"].endswith("limit=2&page=2")
    second = api.call(
        "GET", INSIGHTS + "/activity", path_params=SP, query={"limit": "2", "page": "2"}, key=ADMIN_KEY
    ).body
    assert [a["detail"]["name"] for a in second["results"]] == ["Insight 0"]
    assert second["next"] is None


def test_list_filters_and_offset_links(api: Api, report_id: str, clock: Clock) -> None:
    alice = _key(api, "alice@example.com", ["insight:read", "insight:write"])
    for n in range(3):
        clock.advance(timedelta(minutes=1))
        _create(api, report_id, name=f"Deploys {n}", tags=["team-a"] if n else ["team-b"], favorited=n == 2)
    _create(api, report_id, key=alice, name="Alice's", description="recovery")

    def names(**params: str) -> list[str]:
        return [
            r["name"] for r in api.call("GET", INSIGHTS, path_params=SP, query=params, key=ADMIN_KEY).body["results"]
        ]

    assert names() == ["Alice's", "Deploys 2", "Deploys 1", "Deploys 0"]
    assert names(tags='["team-b"]') == ["Deploys 0"]
    assert names(favorited="true") == ["Deploys 2"]
    assert names(search="RECOVERY") == ["Alice's"]
    assert names(created_by="alice@example.com") == ["Alice's"]
    assert names(user="true") == ["Deploys 2", "Deploys 1", "Deploys 0"]
    page = api.call("GET", INSIGHTS, path_params=SP, query={"limit": "2", "offset": "1"}, key=ADMIN_KEY).body
    assert page["count"] == 4
    assert [r["name"] for r in page["results"]] == ["Deploys 2", "Deploys 1"]
    assert page["next"].startswith("https://") and "offset=3" in page["next"]
    assert "offset=0" in page["previous"]


def test_csv_format_on_get_routes(api: Api, report_id: str) -> None:
    _create(api, report_id)
    listed = api.call("GET", INSIGHTS, path_params=SP, query={"format": "csv"}, key=ADMIN_KEY)
    assert listed.status == 200
    assert listed.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(listed.body)))
    assert [r["name"] for r in rows] == ["Lead time"]
    one = api.call("GET", ONE, path_params=_one(1), query={"format": "csv"}, key=ADMIN_KEY)
    assert next(iter(csv.DictReader(io.StringIO(one.body))))["id"] == "1"
    bad = api.call("GET", INSIGHTS, path_params=SP, query={"format": "xml"}, key=ADMIN_KEY)
    assert bad.status == 400


def test_last_viewed_is_the_callers_last_five_most_recent_first(api: Api, report_id: str, clock: Clock) -> None:
    for n in range(7):
        _create(api, report_id, name=f"I{n}")
    for insight_id in (1, 2, 3, 4, 5, 6, 7, 2):
        clock.advance(timedelta(seconds=10))
        viewed = api.call(
            "POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": [insight_id]}, key=ADMIN_KEY
        )
        assert viewed.status == 200
    mine = api.call("GET", INSIGHTS + "/my_last_viewed", path_params=SP, key=ADMIN_KEY).body
    assert [i["id"] for i in mine] == [2, 7, 6, 5, 4]
    assert api.call("GET", ONE, path_params=_one(2), key=ADMIN_KEY).body["last_viewed_at"] == mine[0]["last_viewed_at"]
    unknown = api.call("POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": [99]}, key=ADMIN_KEY)
    assert unknown.status == 404


def test_trending_ranks_by_views_once_per_viewer_and_day(api: Api, report_id: str, clock: Clock) -> None:
    for n in range(3):
        _create(api, report_id, name=f"I{n}")
    viewers = [_key(api, f"user{n}@example.com", ["insight:read"]) for n in range(4)]
    for key in viewers:  # four viewers for insight 2
        api.call("POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": [2]}, key=key)
    for key in viewers[:2]:  # two for insight 3, each viewing twice the same day
        api.call("POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": [3, 3]}, key=key)
        api.call("POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": [3]}, key=key)
    clock.advance(timedelta(days=1))
    api.call("POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": [3]}, key=viewers[0])
    result = api.call("GET", INSIGHTS + "/trending", path_params=SP, key=ADMIN_KEY).body
    assert [(r["id"], r["view_count"]) for r in result["results"]] == [(2, 4), (3, 3)]
    assert [v["email"] for v in result["results"][0]["recent_viewers"]] == [
        "user3@example.com",
        "user2@example.com",
        "user1@example.com",
    ]
    clock.advance(timedelta(days=7))
    assert api.call("GET", INSIGHTS + "/trending", path_params=SP, key=ADMIN_KEY).body["results"] == []
    assert api.call("GET", INSIGHTS + "/trending", path_params=SP, query={"days": "0"}, key=ADMIN_KEY).status == 400


def test_sharing_refresh_kills_the_old_link(api: Api, report_id: str) -> None:
    _create(api, report_id)
    sharing = api.call("GET", ONE + "/sharing", path_params=_one(1), key=ADMIN_KEY).body
    assert sharing["enabled"] is False
    token = sharing["access_token"]
    assert len(token) > 30
    assert api.call("GET", "/shared/{accessToken}", path_params={"accessToken": token}).status == 404
    enabled = api.call("PATCH", ONE + "/sharing", path_params=_one(1), body={"enabled": True}, key=ADMIN_KEY)
    assert enabled.body["enabled"] is True
    public = api.call("GET", "/shared/{accessToken}", path_params={"accessToken": token})
    assert public.status == 200
    assert public.body["id"] == 1
    refreshed = api.call("POST", ONE + "/sharing/refresh", path_params=_one(1), key=ADMIN_KEY).body
    assert refreshed["access_token"] != token
    assert api.call("GET", "/shared/{accessToken}", path_params={"accessToken": token}).status == 404
    assert (
        api.call("GET", "/shared/{accessToken}", path_params={"accessToken": refreshed["access_token"]}).status == 200
    )
    assert api.call("GET", "/shared/{accessToken}", path_params={"accessToken": "shr_not-a-real-token"}).status == 404


def test_a_public_link_shows_the_chart_not_the_people_or_the_filing(api: Api, report_id: str) -> None:
    """A share link may reach anyone: who made the insight (an API key's user, often an email address)
    and how the space files it stay behind the API key."""
    alice = _key(api, "alice@example.com", ["insight:read", "insight:write", "sharing_configuration:write"])
    created = _create(api, report_id, key=alice, description="p50", tags=["team-a"], favorited=True)
    assert created["created_by"]["email"] == "alice@example.com"
    sharing = api.call("PATCH", ONE + "/sharing", path_params=_one(1), body={"enabled": True}, key=ADMIN_KEY).body
    public = api.call("GET", "/shared/{accessToken}", path_params={"accessToken": sharing["access_token"]})
    assert public.status == 200
    assert "alice" not in json.dumps(public.body)
    assert set(public.body) == {
        "id", "short_id", "name", "derived_name", "description", "query", "created_at", "last_modified_at",
        "result", "last_refresh",
    }  # fmt: skip
    stored = api.call("GET", ONE, path_params=_one(1), key=ADMIN_KEY).body
    assert (public.body["name"], public.body["description"], public.body["query"]) == (
        "Lead time",
        "p50",
        stored["query"],
    )
    assert public.body["result"] is not None


def test_password_protected_links_and_login_rate_limit(api: Api, report_id: str, clock: Clock) -> None:
    _create(api, report_id)
    api.call(
        "PATCH", ONE + "/sharing", path_params=_one(1), body={"enabled": True, "password_required": True}, key=ADMIN_KEY
    )
    created = api.call(
        "POST",
        ONE + "/sharing/passwords",
        path_params=_one(1),
        body={"raw_password": "correct horse", "note": "ops"},
        key=ADMIN_KEY,
    )
    assert created.status == 201
    assert created.body["password"] == "correct horse"
    generated = api.call("POST", ONE + "/sharing/passwords", path_params=_one(1), body={}, key=ADMIN_KEY).body
    assert len(generated["password"]) >= 12
    listed = api.call("GET", ONE + "/sharing", path_params=_one(1), key=ADMIN_KEY).body
    assert [p["note"] for p in listed["share_passwords"]] == ["ops", None]
    assert all("password" not in p and "hash" not in p for p in listed["share_passwords"])
    token = listed["access_token"]
    link = {"accessToken": token}
    assert api.call("GET", "/shared/{accessToken}", path_params=link).status == 401
    login = api.call("POST", "/shared/{accessToken}/login", path_params=link, body={"password": "correct horse"})
    assert login.status == 200
    session = login.body["token"]
    opened = api.call("GET", "/shared/{accessToken}", path_params=link, headers={"Authorization": f"Bearer {session}"})
    assert opened.status == 200
    clock.advance(timedelta(hours=25))
    expired = api.call("GET", "/shared/{accessToken}", path_params=link, headers={"Authorization": f"Bearer {session}"})
    assert expired.status == 401
    for _ in range(10):
        assert (
            api.call("POST", "/shared/{accessToken}/login", path_params=link, body={"password": "wrong"}).status == 401
        )
    limited = api.call("POST", "/shared/{accessToken}/login", path_params=link, body={"password": "correct horse"})
    assert limited.status == 429
    clock.advance(timedelta(minutes=11))
    assert (
        api.call("POST", "/shared/{accessToken}/login", path_params=link, body={"password": "correct horse"}).status
        == 200
    )
    deleted = api.call(
        "DELETE",
        ONE + "/sharing/passwords/{passwordId}",
        path_params=_one(1, passwordId=created.body["id"]),
        key=ADMIN_KEY,
    )
    assert deleted.status == 204
    assert (
        api.call("POST", "/shared/{accessToken}/login", path_params=link, body={"password": "correct horse"}).status
        == 401
    )


def test_threshold_crud(api: Api, report_id: str) -> None:
    _create(api, report_id)
    body = {"name": "Lead time over a day", "condition": {"type": "absolute_value", "bounds": {"upper": 86400}}}
    created = api.call("POST", ONE + "/thresholds", path_params=_one(1), body=body, key=ADMIN_KEY)
    assert created.status == 201, created.body
    threshold = created.body
    assert (threshold["insight"], threshold["state"], threshold["checks"], threshold["enabled"]) == (1, None, [], True)
    one = _one(1, thresholdId=threshold["id"])
    assert api.call("GET", ONE + "/thresholds/{thresholdId}", path_params=one, key=ADMIN_KEY).body == threshold
    patched = api.call(
        "PATCH", ONE + "/thresholds/{thresholdId}", path_params=one, body={"enabled": False}, key=ADMIN_KEY
    )
    assert patched.body["enabled"] is False
    listed = api.call("GET", ONE + "/thresholds", path_params=_one(1), key=ADMIN_KEY).body
    assert [t["id"] for t in listed["results"]] == [threshold["id"]]
    assert api.call("DELETE", ONE + "/thresholds/{thresholdId}", path_params=one, key=ADMIN_KEY).status == 204
    assert api.call("GET", ONE + "/thresholds/{thresholdId}", path_params=one, key=ADMIN_KEY).status == 404
    bad = {"name": "x", "condition": {"type": "relative", "bounds": {}}}
    assert api.call("POST", ONE + "/thresholds", path_params=_one(1), body=bad, key=ADMIN_KEY).status == 400


def test_scopes_of_the_reference(api: Api, report_id: str) -> None:
    _create(api, report_id)
    reader = _key(api, "reader", ["insight:read"])
    assert api.call("GET", INSIGHTS, path_params=SP, key=reader).status == 200
    assert api.call("POST", INSIGHTS, path_params=SP, body={"query": query(report_id)}, key=reader).status == 403
    assert api.call("GET", ONE + "/sharing", path_params=_one(1), key=reader).status == 403
    assert api.call("GET", ONE + "/thresholds", path_params=_one(1), key=reader).status == 403
    assert api.call("GET", ONE + "/activity", path_params=_one(1), key=reader).status == 403
    denied = api.call("GET", INSIGHTS, path_params=SP)
    assert denied.status == 401
    assert denied.body["type"] == "authentication_error"
