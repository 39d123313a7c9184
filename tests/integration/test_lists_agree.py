"""Every list (or search) answers each item as the read of one answers it: same fields, same values, after
the changes a user makes (the recompute, a correction, a linked item's removal, a threshold firing, a view).
A deleted item leaves the list, a changed one shows changed (docs/API.md "Consistency")."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.native import create_deployment, list_all, read_deployment
from tests.support.recompute import scheduled_run
from tests.support.replica_lag import ReplicaLag

SP = {"spaceId": "Spaces-1"}
DD = {"DD-API-KEY": ADMIN_KEY}
ORLO = {"authorization": "Basic " + base64.b64encode(f"orlo:{ADMIN_KEY}".encode()).decode()}
FAILURES = "/api/{spaceId}/failures"
FAILURE = FAILURES + "/{failureId}"
INSIGHTS = "/api/projects/{spaceId}/insights"
INSIGHT = INSIGHTS + "/{insightId}"
REPORTS = "/api/{spaceId}/insights/reports"
REPORT = REPORTS + "/{reportId}"
DESTS = "/api/{spaceId}/alert-destinations"
DEST = DESTS + "/{destinationId}"
NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)  # a Wednesday


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _ok(result: Any, status: int = 200) -> Any:
    assert result.status == status, result.body
    return result.body


def _call(api: Api, method: str, route: str, path: dict[str, str] | None = None, **kw: Any) -> Any:
    return api.call(method, route, path_params={**SP, **(path or {})}, key=ADMIN_KEY, **kw)


# --- native failures -------------------------------------------------------------------------------
def test_a_failure_is_listed_as_it_is_read_after_the_recompute_and_its_cause_removed(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """The failure list and the read of one render the same stored event: after the recompute, and after
    the deployment it names is removed, every listed field equals the read of one."""
    cause = create_deployment(api, finished_at="2024-03-06T09:00:00Z", version="1")
    create_deployment(api, finished_at="2024-03-06T11:00:00Z", version="2")
    body = {
        "project": "shop",
        "environment": "production",
        "started_at": "2024-03-06T09:30:00Z",
        "finished_at": "2024-03-06T10:30:00Z",
        "deployment_id": cause["id"],
        "name": "outage",
        "severity": "high",
        "tags": ["team:web"],
    }
    made = _ok(_call(api, "POST", FAILURES, body=body), 201)
    scheduled_run(lambda_context)

    def compare() -> None:
        listed = {f["id"]: f for f in list_all(api, FAILURES)}
        one = _ok(_call(api, "GET", FAILURE, {"failureId": made["id"]}))
        assert listed[made["id"]] == one

    compare()
    _ok(_call(api, "DELETE", "/api/{spaceId}/deployments/{deploymentId}", {"deploymentId": cause["id"]}), 204)
    scheduled_run(lambda_context)
    compare()

    _ok(_call(api, "DELETE", FAILURE, {"failureId": made["id"]}), 204)
    assert made["id"] not in {f["id"] for f in list_all(api, FAILURES)}
    assert _call(api, "GET", FAILURE, {"failureId": made["id"]}).status == 404


# --- native deployments after corrections and removals -------------------------------------------
def test_after_a_correction_and_a_neighbours_removal_each_listed_deployment_is_its_read(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """After a PATCH (state, override, tags, version) and the removal of a deployment of the same stream,
    followed by the recompute, each listed deployment's stored fields and figures equal its read of one
    (API.md: the list carries the figures of the stream's latest recompute, as the read does; only
    ``as_of``, ``pending`` and ``stream_health`` are the read's)."""
    ids = [
        create_deployment(
            api, finished_at=f"2024-03-06T0{n}:00:00Z", started_at=f"2024-03-06T0{n - 1}:50:00Z", version=f"{n}.0"
        )["id"]
        for n in range(2, 8)
    ]
    first = _ok(
        _call(
            api,
            "PATCH",
            "/api/{spaceId}/deployments/{deploymentId}",
            {"deploymentId": ids[1]},
            body={"state": "Failed", "tags": ["team:web"], "version": "3.1"},
        )
    )
    assert first["revision"] == 2
    _ok(
        _call(
            api,
            "PATCH",
            "/api/{spaceId}/deployments/{deploymentId}",
            {"deploymentId": ids[3]},
            body={"change_failure": True, "remediation": {"id": ids[4], "type": "rollback"}},
        )
    )
    _ok(_call(api, "DELETE", "/api/{spaceId}/deployments/{deploymentId}", {"deploymentId": ids[2]}), 204)
    scheduled_run(lambda_context)

    listed = {d["id"]: d for d in list_all(api)}
    assert ids[2] not in listed
    for deployment_id in (i for i in ids if i != ids[2]):
        one = read_deployment(api, deployment_id)
        assert one["pending"] == 0
        item = listed[deployment_id]
        only_read = {"as_of", "pending", "stream_health"}
        differing = {
            k: (item.get(k), one.get(k))
            for k in set(item) | set(one)
            if k not in only_read and item.get(k) != one.get(k)
        }
        assert differing == {}, deployment_id


# --- Datadog ---------------------------------------------------------------------------------------
def _dd_list(api: Api, route: str, **attributes: Any) -> list[dict[str, Any]]:
    found = api.call("POST", route, body={"data": {"attributes": attributes}}, headers=DD)
    return _ok(found)["data"]  # type: ignore[no-any-return]


def test_datadog_lists_answer_each_event_as_its_get_after_corrections(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """Datadog's deployment list (and a search by version) and get-by-id render the same event, also after
    a native correction of its version and tags and a Datadog PATCH; the failure list and get likewise."""
    body = {
        "data": {
            "attributes": {
                "service": "shop",
                "env": "production",
                "version": "1.0",
                "started_at": 1709712000,
                "finished_at": 1709712600,
                "git": {
                    "commit_sha": "66adc9350f2cc9b250b69abddab733dd55e1a588",
                    "repository_url": "https://github.com/acme/shop.git",
                },
                "custom_tags": ["team:web"],
            }
        }
    }
    dep = _ok(api.call("POST", "/api/v2/dora/deployment", body=body, headers=DD))["data"]["id"]
    later = {**body["data"]["attributes"], "version": "1.1", "started_at": 1709715600, "finished_at": 1709716200}
    fix = _ok(api.call("POST", "/api/v2/dora/deployment", body={"data": {"attributes": later}}, headers=DD))["data"][
        "id"
    ]
    failure = {
        "data": {
            "attributes": {
                "services": ["shop"],
                "env": "production",
                "started_at": 1709713000,
                "finished_at": 1709714000,
                "name": "boom",
                "version": "1.0",
            }
        }
    }
    fid = _ok(api.call("POST", "/api/v2/dora/failure", body=failure, headers=DD))["data"]["id"]
    _ok(
        _call(
            api,
            "PATCH",
            "/api/{spaceId}/deployments/{deploymentId}",
            {"deploymentId": dep},
            body={"version": "1.0.1", "tags": ["tier:core"]},
        )
    )
    patched = api.call(
        "PATCH",
        "/api/v2/dora/deployments/{deployment_id}",
        path_params={"deployment_id": dep},
        body={"data": {"attributes": {"change_failure": True, "remediation": {"id": fix, "type": "rollforward"}}}},
        headers=DD,
    )
    assert patched.status in (200, 202), patched.body
    scheduled_run(lambda_context)

    one = _ok(
        api.call("GET", "/api/v2/dora/deployments/{deployment_id}", path_params={"deployment_id": dep}, headers=DD)
    )["data"]
    assert one["attributes"]["version"] == "1.0.1" and one["attributes"]["custom_tags"] == ["tier:core"]
    window = {"from": "2024-03-01T00:00:00Z", "to": "2024-03-07T00:00:00Z"}
    for query in (None, "version:1.0.1", "service:shop env:production", "tier:core"):
        extra = {"query": query} if query else {}
        listed = {d["id"]: d for d in _dd_list(api, "/api/v2/dora/deployments", **window, **extra)}
        assert listed.get(dep) == one, query
    assert dep not in {d["id"] for d in _dd_list(api, "/api/v2/dora/deployments", **window, query="version:1.0")}

    one_f = _ok(api.call("GET", "/api/v2/dora/failures/{failure_id}", path_params={"failure_id": fid}, headers=DD))[
        "data"
    ]
    listed_f = {d["id"]: d for d in _dd_list(api, "/api/v2/dora/failures", **window)}
    assert listed_f[fid] == one_f


# --- Orlo --------------------------------------------------------------------------------------------
def test_orlo_lists_answer_each_release_and_package_as_their_reads(api: Api, clock: Clock) -> None:
    """``/orlo/releases`` and ``/orlo/packages`` list each release and package exactly as ``/releases/{rid}``
    and ``/packages/{pid}`` answer them, through start, stop, notes and metadata."""

    def post(route: str, body: Any = None, **path: str) -> Any:
        found = api.call("POST", route, path_params=path or None, body=body, headers=ORLO)
        assert found.status in (200, 204), found.body
        return found.body

    rid = post("/orlo/releases", {"user": "amy", "platforms": ["eu", "us"], "team": "web", "references": ["T-1"]})["id"]
    pid = post(
        "/orlo/releases/{rid}/packages", {"name": "web", "version": "1.0", "diff_url": "https://x.y/d"}, rid=rid
    )["id"]
    pid2 = post("/orlo/releases/{rid}/packages", {"name": "api", "version": "2.0"}, rid=rid)["id"]
    post("/orlo/releases/{rid}/start", rid=rid)
    post("/orlo/releases/{rid}/packages/{pid}/start", rid=rid, pid=pid)
    post("/orlo/releases/{rid}/packages/{pid}/stop", {"success": True}, rid=rid, pid=pid)
    post("/orlo/releases/{rid}/notes", {"text": "went fine"}, rid=rid)
    post("/orlo/releases/{rid}/metadata", {"ticket": "T-1"}, rid=rid)

    def read(route: str, **path: str) -> Any:
        return _ok(api.call("GET", route, path_params=path or None, headers=ORLO))

    (release,) = read("/orlo/releases/{rid}", rid=rid)["releases"]
    listed = {r["id"]: r for r in read("/orlo/releases")["releases"]}
    assert listed[rid] == release
    packages = {p["id"]: p for p in read("/orlo/packages")["packages"]}
    for package_id in (pid, pid2):
        (one,) = read("/orlo/packages/{pid}", pid=package_id)["packages"]
        assert packages[package_id] == one
        assert one in release["packages"]


# --- Octopus reports -----------------------------------------------------------------------------------
def test_a_report_is_listed_as_it_is_read_after_an_update(api: Api) -> None:
    """The reports list shows each report as ``GET .../reports/{id}`` does, at once after a PUT."""
    made = _ok(_call(api, "POST", REPORTS, body={"Name": "All", "TimeZone": "Europe/London"}), 201)
    put = {**made, "Name": "Renamed", "Description": "d"}
    _ok(_call(api, "PUT", REPORT, {"reportId": made["Id"]}, body=put))
    one = _ok(_call(api, "GET", REPORT, {"reportId": made["Id"]}))
    listed = {r["Id"]: r for r in _ok(_call(api, "GET", REPORTS))["Items"]}
    assert listed[made["Id"]] == one and one["Name"] == "Renamed"


# --- PostHog insights ------------------------------------------------------------------------------
def _report_and_insight(api: Api) -> tuple[str, int]:
    report = _ok(_call(api, "POST", REPORTS, body={"Name": "All"}), 201)["Id"]
    query = {
        "kind": "DoraMetricsQuery",
        "reportId": report,
        "metric": "deployment_frequency",
        "timeRange": "LastMonth",
        "granularity": "Weekly",
    }
    made = _ok(_call(api, "POST", INSIGHTS, body={"name": "Deploys", "query": query}), 201)
    return report, int(made["id"])


def _listed_insight(api: Api, insight: int, **query: str) -> dict[str, Any]:
    results = _ok(_call(api, "GET", INSIGHTS, query=query or None))["results"]
    (item,) = [r for r in results if r["id"] == insight]
    return item  # type: ignore[no-any-return]


def test_an_insight_is_listed_as_it_is_retrieved_after_a_patch_a_view_and_the_recompute(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """Once an insight was retrieved (its result computed and stored), the list answers the same insight:
    the same ``result``, ``last_refresh``, ``last_viewed_at``, ``favorited``, ``tags`` and the rest (API.md:
    ``last_viewed_at`` is the caller's "in every answer: retrieve, list"; a list answers results "as stored")."""
    _, insight = _report_and_insight(api)
    create_deployment(api, finished_at="2024-03-05T10:00:00Z", version="1")
    create_deployment(api, finished_at="2024-03-06T10:00:00Z", version="2")
    scheduled_run(lambda_context)
    _ok(
        _call(
            api,
            "PATCH",
            INSIGHT,
            {"insightId": str(insight)},
            body={"favorited": True, "tags": ["ops", "web"], "description": "weekly"},
        )
    )
    _ok(_call(api, "POST", INSIGHTS + "/viewed", body={"insight_ids": [insight]}))

    one = _ok(_call(api, "GET", INSIGHT, {"insightId": str(insight)}))
    listed = _listed_insight(api, insight)
    assert one["favorited"] is True and one["last_viewed_at"] is not None
    assert sum(one["result"]["series"][0]["values"]) == 2
    differing = {k: (listed.get(k), one.get(k)) for k in set(listed) | set(one) if listed.get(k) != one.get(k)}
    assert differing == {}


def test_an_insight_retrieved_after_new_deployments_is_then_listed_with_that_result(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """A retrieve brings the result up to date (refresh blocking) and stores it; the list, answering results
    as stored, then shows that same result and ``last_refresh`` rather than an older one."""
    _, insight = _report_and_insight(api)
    create_deployment(api, finished_at="2024-03-05T10:00:00Z", version="1")
    scheduled_run(lambda_context)
    _ok(_call(api, "GET", INSIGHT, {"insightId": str(insight)}))
    create_deployment(api, finished_at="2024-03-06T10:00:00Z", version="2")
    clock.advance(timedelta(minutes=1))

    one = _ok(_call(api, "GET", INSIGHT, {"insightId": str(insight)}))
    listed = _listed_insight(api, insight)
    assert sum(one["result"]["series"][0]["values"]) == 2
    assert (listed["result"], listed["last_refresh"]) == (one["result"], one["last_refresh"])


def test_an_insight_soft_deleted_leaves_the_list_at_once_and_a_restored_one_returns(api: Api) -> None:
    """PATCH ``deleted: true``: the list leaves it out at the next request; ``deleted: false`` brings it back."""
    _, insight = _report_and_insight(api)
    _ok(_call(api, "PATCH", INSIGHT, {"insightId": str(insight)}, body={"deleted": True}))
    assert insight not in {r["id"] for r in _ok(_call(api, "GET", INSIGHTS))["results"]}
    _ok(_call(api, "PATCH", INSIGHT, {"insightId": str(insight)}, body={"deleted": False}))
    assert insight in {r["id"] for r in _ok(_call(api, "GET", INSIGHTS))["results"]}


# --- thresholds ----------------------------------------------------------------------------------------
def test_a_threshold_that_fired_is_listed_as_it_is_read(api: Api, clock: Clock, lambda_context: Any) -> None:
    """After the scheduled check fires a threshold and a PATCH renames it, the thresholds list shows it as
    ``GET .../thresholds/{id}`` does (state, last value, checks, settings)."""
    _, insight = _report_and_insight(api)
    create_deployment(api, finished_at="2024-03-06T10:00:00Z", version="1")
    path = {"insightId": str(insight)}
    body = {
        "name": "any deploy",
        "condition": {"type": "absolute_value", "bounds": {"upper": 0.5}},
        "calculation_interval": "hourly",
    }
    tid = _ok(_call(api, "POST", INSIGHT + "/thresholds", path, body=body), 201)["id"]
    scheduled_run(lambda_context)
    _ok(
        _call(
            api, "PATCH", INSIGHT + "/thresholds/{thresholdId}", {**path, "thresholdId": tid}, body={"name": "renamed"}
        )
    )

    one = _ok(_call(api, "GET", INSIGHT + "/thresholds/{thresholdId}", {**path, "thresholdId": tid}))
    assert one["state"] == "Firing" and one["name"] == "renamed"
    (listed,) = _ok(_call(api, "GET", INSIGHT + "/thresholds", path))["results"]
    assert listed == one


def test_a_threshold_just_created_or_renamed_is_in_its_list_at_once(api: Api, replica_lag: ReplicaLag) -> None:
    """The thresholds list reads its partition strongly consistently, as the read of one: a threshold just
    created and renamed is listed so (API.md "Consistency" names only the deployment, failure, Datadog,
    Orlo and corrections lists, which read an index, as lagging; before, this one lagged too)."""
    _, insight = _report_and_insight(api)
    path = {"insightId": str(insight)}
    body = {
        "name": "t",
        "condition": {"type": "absolute_value", "bounds": {"upper": 5}},
        "calculation_interval": "daily",
    }
    replica_lag.on()
    tid = _ok(_call(api, "POST", INSIGHT + "/thresholds", path, body=body), 201)["id"]
    _ok(_call(api, "PATCH", INSIGHT + "/thresholds/{thresholdId}", {**path, "thresholdId": tid}, body={"name": "u"}))
    listed = _ok(_call(api, "GET", INSIGHT + "/thresholds", path))["results"]
    assert [t["name"] for t in listed] == ["u"], replica_lag.hidden


def test_an_insight_just_created_or_patched_is_in_the_list_at_once(api: Api, replica_lag: ReplicaLag) -> None:
    """The insights list reads the space's insights strongly consistently: an insight just created and
    PATCHed is listed as the retrieve answers it ("Pages by position": a list counts the list "as it is")."""
    report = _ok(_call(api, "POST", REPORTS, body={"Name": "All"}), 201)["Id"]
    replica_lag.on()
    query = {"kind": "DoraMetricsQuery", "reportId": report, "metric": "deployment_frequency"}
    insight = _ok(_call(api, "POST", INSIGHTS, body={"name": "D", "query": query}), 201)["id"]
    _ok(_call(api, "PATCH", INSIGHT, {"insightId": str(insight)}, body={"favorited": True}))
    listed = [r for r in _ok(_call(api, "GET", INSIGHTS))["results"] if r["id"] == insight]
    assert [r["favorited"] for r in listed] == [True], replica_lag.hidden


def test_a_report_just_created_or_updated_is_in_the_list_at_once(api: Api, replica_lag: ReplicaLag) -> None:
    """``GET .../insights/reports`` reads the reports partition strongly consistently: a report just created
    and renamed is listed so."""
    replica_lag.on()
    made = _ok(_call(api, "POST", REPORTS, body={"Name": "All"}), 201)
    _ok(_call(api, "PUT", REPORT, {"reportId": made["Id"]}, body={**made, "Name": "Renamed"}))
    listed = [r["Name"] for r in _ok(_call(api, "GET", REPORTS))["Items"] if r["Id"] == made["Id"]]
    assert listed == ["Renamed"], replica_lag.hidden


def test_a_project_a_deployment_just_registered_is_in_the_catalogue_list_at_once(
    api: Api, replica_lag: ReplicaLag
) -> None:
    """Octopus' catalogue lists (``GET /api/{spaceId}/projects`` and the like) read their partition strongly
    consistently: a project a deployment named a moment ago is listed, as a report can name it at once."""
    replica_lag.on()
    create_deployment(api, project="brand-new")
    listed = [p["Name"] for p in _ok(_call(api, "GET", "/api/{spaceId}/projects"))["Items"]]
    assert listed == ["brand-new"], replica_lag.hidden


# --- alert destinations ------------------------------------------------------------------------------
def test_a_destination_is_listed_as_it_is_read_after_a_patch_and_gone_after_delete(api: Api) -> None:
    """``GET .../alert-destinations`` lists each destination as ``GET .../{id}`` answers it (the Slack URL
    masked in both), after a PATCH; a deleted one is gone from the list."""
    slack = _ok(
        _call(
            api,
            "POST",
            DESTS,
            body={"name": "s", "kind": "slack", "url": "https://hooks.slack.com/services/T0001/B0001/XXXXXXXX"},
        ),
        201,
    )
    hook = _ok(
        _call(api, "POST", DESTS, body={"name": "w", "kind": "webhook", "url": "https://alerts.example.com/hook"}), 201
    )
    _ok(_call(api, "PATCH", DEST, {"destinationId": hook["id"]}, body={"enabled": False, "name": "w2"}))
    listed = {d["id"]: d for d in _ok(_call(api, "GET", DESTS))["items"]}
    for made in (slack, hook):
        one = _ok(_call(api, "GET", DEST, {"destinationId": made["id"]}))
        assert listed[made["id"]] == one
    assert listed[hook["id"]]["enabled"] is False and "****" in listed[slack["id"]]["url"]
    _ok(_call(api, "DELETE", DEST, {"destinationId": slack["id"]}), 204)
    assert [d["id"] for d in _ok(_call(api, "GET", DESTS))["items"]] == [hook["id"]]


def test_a_destination_just_created_or_changed_is_in_the_list_at_once(api: Api, replica_lag: ReplicaLag) -> None:
    """The destinations list is not among the lists API.md says may lag: one just created and disabled is
    listed disabled by the next request."""
    replica_lag.on()
    hook = _ok(
        _call(api, "POST", DESTS, body={"name": "w", "kind": "webhook", "url": "https://alerts.example.com/hook"}), 201
    )
    _ok(_call(api, "PATCH", DEST, {"destinationId": hook["id"]}, body={"enabled": False}))
    listed = [d["enabled"] for d in _ok(_call(api, "GET", DESTS))["items"] if d["id"] == hook["id"]]
    assert listed == [False], replica_lag.hidden


def test_an_insight_whose_query_was_changed_is_listed_with_the_new_querys_result(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """A PATCH of the query (another metric and granularity) answers the new result; the list, at once,
    shows that insight with the same query, result and ``last_refresh`` as a retrieve."""
    report, insight = _report_and_insight(api)
    create_deployment(api, finished_at="2024-03-05T10:00:00Z", version="1", state="Failed")
    create_deployment(api, finished_at="2024-03-06T10:00:00Z", version="2")
    scheduled_run(lambda_context)
    query = {
        "kind": "DoraMetricsQuery",
        "reportId": report,
        "metric": "change_failure_rate",
        "timeRange": "LastMonth",
        "granularity": "Daily",
    }
    patched = _ok(_call(api, "PATCH", INSIGHT, {"insightId": str(insight)}, body={"query": query}))
    one = _ok(_call(api, "GET", INSIGHT, {"insightId": str(insight)}))
    listed = _listed_insight(api, insight)
    assert patched["result"] == one["result"] and len(one["result"]["interval"]) > 20
    assert (listed["query"], listed["result"], listed["last_refresh"]) == (
        one["query"],
        one["result"],
        one["last_refresh"],
    )


def test_an_insight_of_a_deleted_report_answers_alike_in_the_list_and_the_retrieve(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """Once its report is deleted, an insight is not answered one way by the list and another by the
    retrieve: both list/answer it with the same ``result`` (or neither lists it)."""
    report, insight = _report_and_insight(api)
    create_deployment(api, finished_at="2024-03-06T10:00:00Z", version="1")
    scheduled_run(lambda_context)
    _ok(_call(api, "GET", INSIGHT, {"insightId": str(insight)}))
    _ok(_call(api, "DELETE", REPORT, {"reportId": report}), 204)

    one = _call(api, "GET", INSIGHT, {"insightId": str(insight)})
    listed = _ok(_call(api, "GET", INSIGHTS))
    items = [r for r in listed["results"] if r["id"] == insight]
    if one.status == 200:
        assert [i["result"] for i in items] == [one.body["result"]], one.body
    else:
        assert items == [], (one.status, one.body)
