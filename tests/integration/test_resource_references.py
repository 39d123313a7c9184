"""Resources that point at other resources, and what happens when the one pointed at changes or
goes. A saved insight names an Octopus report (``query.reportId``); a threshold hangs on an insight; a share
link on an insight; a report names catalogue entities. Through the real route functions against moto.

The first test fails on the code under review (a defect); the others pin behaviour verified while reviewing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.fixtures import OTHER_KEY, OTHER_SPACE
from tests.support.native import create_deployment
from tests.support.recompute import scheduled_run

SP = {"spaceId": "Spaces-1"}
OSP = {"spaceId": OTHER_SPACE}
REPORTS = "/api/{spaceId}/insights/reports"
REPORT = REPORTS + "/{reportId}"
INSIGHTS = "/api/projects/{spaceId}/insights"
ONE = INSIGHTS + "/{insightId}"
THRESHOLDS = ONE + "/thresholds"
THRESHOLD = THRESHOLDS + "/{thresholdId}"
SHARED = "/shared/{accessToken}"
NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)  # a Wednesday: its week starts on Sunday 2024-03-03
FIRES_ABOVE_HALF = {"name": "any deploy", "condition": {"bounds": {"upper": 0.5}}, "calculation_interval": "hourly"}


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _report(api: Api, sp: dict[str, str] = SP, key: str = ADMIN_KEY, **fields: Any) -> dict[str, Any]:
    made = api.call("POST", REPORTS, path_params=sp, body={"Name": "Delivery", **fields}, key=key)
    assert made.status == 201, made.body
    return made.body  # type: ignore[no-any-return]


def _query(report_id: str, **more: Any) -> dict[str, Any]:
    return {
        "kind": "DoraMetricsQuery",
        "reportId": report_id,
        "metric": "deployment_frequency",
        "timeRange": "LastMonth",
        "granularity": "Weekly",
        **more,
    }


def _insight(
    api: Api, report_id: str, name: str = "Deploys", fields: dict[str, Any] | None = None, **more: Any
) -> dict[str, Any]:
    body = {"name": name, "query": _query(report_id, **more), **(fields or {})}
    made = api.call("POST", INSIGHTS, path_params=SP, body=body, key=ADMIN_KEY)
    assert made.status == 201, made.body
    return made.body  # type: ignore[no-any-return]


def _one(insight_id: int, sp: dict[str, str] = SP, **extra: str) -> dict[str, str]:
    return {**sp, "insightId": str(insight_id), **extra}


def _patch(api: Api, insight_id: int, body: dict[str, Any]) -> Any:
    return api.call("PATCH", ONE, path_params=_one(insight_id), body=body, key=ADMIN_KEY)


def _last_week(result: dict[str, Any] | None) -> list[tuple[str, float | None]]:
    """Each series' name and its value for this week (the last interval)."""
    assert result is not None
    return [(s["name"], s["values"][-1]) for s in result["series"]]


# --- defects ------------------------------------------------------------------------------------
def test_viewing_a_soft_deleted_insight_records_nothing_that_resurfaces_after_restore(api: Api, clock: Clock) -> None:
    """API.md: "A soft-deleted insight (PATCH deleted: true) is gone, as in PostHog: retrieve, its
    /activity and any PATCH that does not send "deleted": false answer 404"; ``POST /viewed``: "each
    insight must exist in the space (404 otherwise, nothing recorded)". PostHog's ``Insight.objects``
    leaves soft-deleted insights out, so its ``viewed`` action does not find one.

    Here ``POST /viewed`` naming a deleted insight answers 200 and records the view
    (``logic.insights.record_views`` checks only that the item exists, ``get_many`` returning deleted
    insights too): the view made while the insight was gone shows up once it is restored, in
    ``my_last_viewed``, in its ``last_viewed_at`` and in trending's count."""
    report = _report(api)["Id"]
    insight = _insight(api, report)["id"]
    clock.advance(timedelta(minutes=1))
    assert _patch(api, insight, {"deleted": True}).status == 200
    clock.advance(timedelta(minutes=1))

    viewed = api.call("POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": [insight]}, key=ADMIN_KEY)
    assert viewed.status < 500, viewed.body

    clock.advance(timedelta(minutes=1))
    restored = _patch(api, insight, {"deleted": False})
    assert restored.status == 200, restored.body
    assert restored.body["last_viewed_at"] is None, "a view of a deleted insight was recorded"
    assert api.call("GET", INSIGHTS + "/my_last_viewed", path_params=SP, key=ADMIN_KEY).body == []
    trending = api.call("GET", INSIGHTS + "/trending", path_params=SP, key=ADMIN_KEY).body
    assert trending["count"] == 0, trending
    assert viewed.status == 404, (viewed.status, viewed.body)
    assert viewed.body["code"] == "not_found"


# --- verified behaviour -------------------------------------------------------------------------
def test_a_report_changed_under_its_insight_shows_the_new_definition_at_once_everywhere(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """A report PUT (other environments, another time zone) makes a new report version; every answer
    showing an insight of it (retrieve in each refresh mode, the list, the public link) reads that version
    at once, before any scheduled run, and the series follow the report's new group names."""
    create_deployment(api, environment="production", finished_at="2024-03-04T10:00:00Z")
    create_deployment(api, environment="staging", finished_at="2024-03-04T11:00:00Z")
    create_deployment(api, environment="staging", finished_at="2024-03-04T12:00:00Z")
    groups = [{"Name": "Prod", "Environments": ["Environments-1"]}]
    report = _report(api, EnvironmentGroups=groups)
    insight = _insight(api, report["Id"], split="EnvironmentGroup")
    assert _last_week(insight["result"]) == [("Prod", 1.0)]
    scheduled_run(lambda_context)
    link = api.call("PATCH", ONE + "/sharing", path_params=_one(insight["id"]), body={"enabled": True}, key=ADMIN_KEY)

    body = {**report, "EnvironmentGroups": [{"Name": "Stage", "Environments": ["Environments-2"]}]}
    body["TimeZone"] = "Pacific/Auckland"
    put = api.call("PUT", REPORT, path_params={**SP, "reportId": report["Id"]}, body=body, key=ADMIN_KEY)
    assert put.status == 200, put.body

    for refresh in (None, "force_cache", "blocking", "force_blocking"):
        got = api.call(
            "GET",
            ONE,
            path_params=_one(insight["id"]),
            query={"refresh": refresh} if refresh else None,
            key=ADMIN_KEY,
        )
        assert got.status == 200, (refresh, got.body)
        assert _last_week(got.body["result"]) == [("Stage", 2.0)], refresh
    listed = api.call("GET", INSIGHTS, path_params=SP, key=ADMIN_KEY).body["results"]
    assert _last_week(listed[0]["result"]) == [("Stage", 2.0)]
    shared = api.call("GET", SHARED, path_params={"accessToken": link.body["access_token"]})
    assert shared.status == 200 and _last_week(shared.body["result"]) == [("Stage", 2.0)]


def test_a_firing_threshold_whose_report_is_deleted_clears_with_no_value_and_fires_again_when_repointed(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """Deleting the report an insight reads leaves the insight with no result; its threshold's next check
    records no value ("no value never fires"), so it moves to NotFiring. Pointed at a new report (a new id:
    report numbers are never given again), the insight has a result again and the threshold fires anew."""
    create_deployment(api, finished_at="2024-03-04T10:00:00Z")
    report = _report(api)["Id"]
    insight = _insight(api, report)
    made = api.call("POST", THRESHOLDS, path_params=_one(insight["id"]), body=FIRES_ABOVE_HALF, key=ADMIN_KEY)
    assert made.status == 201, made.body
    where = _one(insight["id"], thresholdId=made.body["id"])
    scheduled_run(lambda_context)
    assert api.call("GET", THRESHOLD, path_params=where, key=ADMIN_KEY).body["state"] == "Firing"

    assert api.call("DELETE", REPORT, path_params={**SP, "reportId": report}, key=ADMIN_KEY).status == 204
    clock.advance(timedelta(hours=1))
    scheduled_run(lambda_context)
    ended = api.call("GET", THRESHOLD, path_params=where, key=ADMIN_KEY).body
    assert (ended["state"], ended["last_value"], ended["checks"][0]["calculated_value"]) == ("NotFiring", None, None)

    again = _report(api)["Id"]
    assert again != report
    assert api.call("GET", REPORT, path_params={**SP, "reportId": report}, key=ADMIN_KEY).status == 404
    repointed = _patch(api, insight["id"], {"query": {**insight["query"], "reportId": again}})
    assert repointed.status == 200 and _last_week(repointed.body["result"]) == [("All", 1.0)]
    clock.advance(timedelta(hours=1))
    scheduled_run(lambda_context)
    back = api.call("GET", THRESHOLD, path_params=where, key=ADMIN_KEY).body
    assert (back["state"], back["last_value"]) == ("Firing", 1.0)


def test_report_references_are_checked_by_kind_and_space_and_empty_entities_read_as_zero(
    api: Api, clock: Clock, other_space: str
) -> None:
    """A report's ids must be of their field's kind and exist in the report's space (another space's
    entity of the same number does not); an entity that is in the catalogue but has no deployment (its
    only one removed) reads as zeros, never a 5xx, in the report and in an insight of it."""
    create_deployment(api, project="shop", environment="production", finished_at="2024-03-04T10:00:00Z")
    ghost = create_deployment(api, project="ghost", environment="qa", finished_at="2024-03-04T11:00:00Z")
    where = {**SP, "deploymentId": ghost["id"]}
    gone = api.call("DELETE", "/api/{spaceId}/deployments/{deploymentId}", path_params=where, key=ADMIN_KEY)
    assert gone.status == 204
    for environment in ("e1", "e2", "e3"):  # Environments-3 exists in the other space only
        create_deployment(api, space=OTHER_SPACE, key=OTHER_KEY, project="theirs", environment=environment, tenant="t")
    for field, value in (
        ("ProjectIds", ["Environments-1"]),
        ("ProjectGroupIds", ["Projects-1"]),
        ("TenantIds", ["Tenants-1"]),  # a tenant of the other space only
        ("EnvironmentGroups", [{"Name": "x", "Environments": ["Environments-3"]}]),  # the other space's
    ):
        refused = api.call("POST", REPORTS, path_params=SP, body={"Name": "bad", field: value}, key=ADMIN_KEY)
        assert refused.status == 400, (field, refused.status, refused.body)
        assert refused.body["Errors"][0].startswith(field), refused.body
        assert "theirs" not in str(refused.body)

    empty = _report(
        api, ProjectIds=["Projects-2"], EnvironmentGroups=[{"Name": "QA", "Environments": ["Environments-2"]}]
    )
    metrics = api.call("GET", REPORT + "/metrics", path_params={**SP, "reportId": empty["Id"]},
                       query={"timeRange": "LastMonth", "granularity": "Weekly"}, key=ADMIN_KEY)  # fmt: skip
    assert metrics.status == 200, metrics.body
    assert [i["NumberOfSuccessfulDeployments"] for i in metrics.body["Series"][0]["Intervals"]] == [0] * 5
    insight = _insight(api, empty["Id"])
    assert insight["result"]["series"] == [{"name": "All", "values": [0.0] * 5}]


def test_a_threshold_is_reached_only_through_its_own_insight_and_space(api: Api, other_space: str) -> None:
    """Thresholds are keyed under their insight and space: another insight's path, or another space's key,
    finds nothing (404) and changes nothing."""
    report = _report(api)["Id"]
    first, second = _insight(api, report)["id"], _insight(api, report)["id"]
    made = api.call("POST", THRESHOLDS, path_params=_one(first), body=FIRES_ABOVE_HALF, key=ADMIN_KEY)
    assert made.status == 201, made.body
    tid = made.body["id"]
    for params, key in (
        (_one(second, thresholdId=tid), ADMIN_KEY),
        (_one(first, OSP, thresholdId=tid), OTHER_KEY),
        (_one(first, thresholdId=tid), OTHER_KEY),
    ):
        for method, body in (("GET", None), ("PATCH", {"name": "hijacked"}), ("DELETE", None)):
            got = api.call(method, THRESHOLD, path_params=params, body=body, key=key)
            assert got.status == 404, (method, params, got.status, got.body)
    kept = api.call("GET", THRESHOLD, path_params=_one(first, thresholdId=tid), key=ADMIN_KEY)
    assert kept.status == 200 and kept.body["name"] == "any deploy"


def test_list_filters_leave_a_deleted_insight_out_and_show_it_again_once_restored(api: Api, clock: Clock) -> None:
    report = _report(api)["Id"]
    insight = _insight(api, report, name="Kept", fields={"favorited": True, "tags": ["ops"]})
    filters = (
        {"saved": "true"},
        {"favorited": "true"},
        {"short_id": insight["short_id"]},
        {"search": "Kept"},
        {"tags": "ops"},
        {"basic": "true"},
    )

    def counts() -> list[int]:
        return [api.call("GET", INSIGHTS, path_params=SP, query=f, key=ADMIN_KEY).body["count"] for f in filters]

    assert counts() == [1] * len(filters)
    clock.advance(timedelta(seconds=1))
    assert _patch(api, insight["id"], {"deleted": True}).status == 200
    assert counts() == [0] * len(filters)
    clock.advance(timedelta(seconds=1))
    assert _patch(api, insight["id"], {"deleted": False}).status == 200
    assert counts() == [1] * len(filters)


def test_a_threshold_is_not_created_on_a_soft_deleted_insight(api: Api) -> None:
    """A soft-deleted insight is gone (API.md): a new threshold on it is its 404 and nothing is stored; the
    thresholds it had stay reachable, to be turned off; once restored, one is created again."""
    insight = _insight(api, _report(api)["Id"])["id"]
    kept = api.call("POST", THRESHOLDS, path_params=_one(insight), body=FIRES_ABOVE_HALF, key=ADMIN_KEY)
    assert kept.status == 201, kept.body
    assert _patch(api, insight, {"deleted": True}).status == 200
    refused = api.call("POST", THRESHOLDS, path_params=_one(insight), body=FIRES_ABOVE_HALF, key=ADMIN_KEY)
    assert refused.status == 404, refused.body
    listed = api.call("GET", THRESHOLDS, path_params=_one(insight), key=ADMIN_KEY)
    assert listed.status == 200, listed.body
    assert [t["id"] for t in listed.body["results"]] == [kept.body["id"]]
    assert _patch(api, insight, {"deleted": False}).status == 200
    again = api.call("POST", THRESHOLDS, path_params=_one(insight), body=FIRES_ABOVE_HALF, key=ADMIN_KEY)
    assert again.status == 201, again.body
