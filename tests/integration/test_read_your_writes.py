"""A client reads what it just wrote, as CI pipelines do in quick succession, under DynamoDB's eventual
consistency (``tests/support/replica_lag.py``: every item written since the lag was turned on is
invisible to an eventually consistent read or an index query, as it may be in AWS for about a second).

moto always reads consistently, so each of these answered correctly in the tests and wrongly in AWS:
a 404 for a space, key, deployment or Orlo package created a moment ago, a 409 for a DX upsert right
after its create, a 400 for a report naming a project a deployment just registered, an Orlo import
that took a package id another release had just taken."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api
from tests.support.replica_lag import ReplicaLag

SP = {"spaceId": "Spaces-1"}
DEPLOYMENT = {"project": "shop", "environment": "production", "finished_at": "2024-03-01T11:00:00Z"}
ORLO = {"authorization": "Basic " + base64.b64encode(f"orlo:{ADMIN_KEY}".encode()).decode()}


def _created(result: Any, status: int = 201) -> Any:
    assert result.status == status, result.body
    return result.body


def test_a_space_just_created_gets_its_first_key_which_writes_at_once(api: Api, replica_lag: ReplicaLag) -> None:
    replica_lag.on()
    space = _created(api.call("POST", "/api/spaces", body={"name": "New"}, key=ADMIN_KEY))["id"]
    key = _created(
        api.call(
            "POST",
            "/api/{spaceId}/apikeys",
            path_params={"spaceId": space},
            body={"name": "ci", "scopes": ["deployments:write"]},
            key=ADMIN_KEY,
        )
    )["key"]

    posted = api.call("POST", "/api/{spaceId}/deployments", path_params={"spaceId": space}, body=DEPLOYMENT, key=key)

    assert posted.status == 201, (posted.body, replica_lag.hidden)


def test_a_deployment_just_created_is_read_back_in_both_dialects(api: Api, replica_lag: ReplicaLag) -> None:
    replica_lag.on()
    created = _created(api.call("POST", "/api/{spaceId}/deployments", path_params=SP, body=DEPLOYMENT, key=ADMIN_KEY))
    one = {**SP, "deploymentId": created["id"]}

    native = api.call("GET", "/api/{spaceId}/deployments/{deploymentId}", path_params=one, key=ADMIN_KEY)
    datadog = api.call(
        "GET",
        "/api/v2/dora/deployments/{deployment_id}",
        path_params={"deployment_id": created["id"]},
        headers={"DD-API-KEY": ADMIN_KEY},
    )

    assert (native.status, datadog.status) == (200, 200), replica_lag.hidden
    assert native.body["revision"] == created["revision"]


def test_a_dx_upsert_right_after_its_create_replaces_it(api: Api, replica_lag: ReplicaLag) -> None:
    replica_lag.on()
    body = {"reference_id": "r1", "deployed_at": 1709290000, "service": "svc"}
    _created(api.call("POST", "/api/deployments.create", body=body, key=ADMIN_KEY), 200)

    upserted = api.call("POST", "/api/deployments.upsert", body={**body, "deployed_at": 1709290100}, key=ADMIN_KEY)

    assert upserted.status == 200, (upserted.body, replica_lag.hidden)


def test_an_orlo_package_just_added_is_found(api: Api, replica_lag: ReplicaLag) -> None:
    replica_lag.on()
    rid = _created(api.call("POST", "/orlo/releases", body={"user": "u", "platforms": ["p"]}, headers=ORLO), 200)["id"]
    package = {"name": "web", "version": "1"}
    added = api.call("POST", "/orlo/releases/{rid}/packages", path_params={"rid": rid}, body=package, headers=ORLO)
    pid = _created(added, 200)["id"]

    found = api.call("GET", "/orlo/packages/{pid}", path_params={"pid": pid}, headers=ORLO)

    assert found.status == 200, (found.body, replica_lag.hidden)


def test_an_orlo_import_naming_a_package_another_release_just_took_stores_nothing(
    api: Api, store: Any, replica_lag: ReplicaLag
) -> None:
    package = "11111111-1111-1111-1111-111111111111"
    first, second = "22222222-2222-2222-2222-222222222222", "33333333-3333-3333-3333-333333333333"

    def release(rid: str) -> dict[str, Any]:
        shipped = {"id": package, "name": "web", "version": "1", "status": "SUCCESSFUL", "rollback": False}
        times = {"stime": "2024-03-01T10:00:00Z", "ftime": "2024-03-01T10:05:00Z"}
        return {"id": rid, "platforms": ["p"], "user": "u", "team": "t", **times, "packages": [{**shipped, **times}]}

    replica_lag.on()
    assert api.call("POST", "/orlo/releases/import", body=[release(first)], headers=ORLO).status == 200

    refused = api.call("POST", "/orlo/releases/import", body=[release(second)], headers=ORLO)

    assert refused.status == 400, (refused.body, replica_lag.hidden)
    assert store.orlo().get("Spaces-1", second) is None
    assert store.orlo().package_owner("Spaces-1", package) == first


def test_a_report_may_name_a_project_a_deployment_registered_a_moment_ago(api: Api, replica_lag: ReplicaLag) -> None:
    replica_lag.on()
    _created(api.call("POST", "/api/{spaceId}/deployments", path_params=SP, body=DEPLOYMENT, key=ADMIN_KEY))

    report = api.call(
        "POST",
        "/api/{spaceId}/insights/reports",
        path_params=SP,
        body={"Name": "Shop", "ProjectIds": ["Projects-1"]},
        key=ADMIN_KEY,
    )

    assert report.status == 201, (report.body, replica_lag.hidden)


# --- failure events, corrections and incidents (issue 17) ------------------------------------------------
FAILURE = {"id": "f-1", "project": "shop", "environment": "production", "started_at": "2024-03-01T11:30:00Z"}
ONE_FAILURE = {**SP, "failureId": "f-1"}
DD = {"DD-API-KEY": ADMIN_KEY}


def test_a_failure_event_just_posted_is_read_in_both_dialects_and_removed(api: Api, replica_lag: ReplicaLag) -> None:
    replica_lag.on()
    _created(api.call("POST", "/api/{spaceId}/failures", path_params=SP, body=FAILURE, key=ADMIN_KEY))

    native = api.call("GET", "/api/{spaceId}/failures/{failureId}", path_params=ONE_FAILURE, key=ADMIN_KEY)
    datadog = api.call("GET", "/api/v2/dora/failures/{failure_id}", path_params={"failure_id": "f-1"}, headers=DD)
    removed = api.call("DELETE", "/api/{spaceId}/failures/{failureId}", path_params=ONE_FAILURE, key=ADMIN_KEY)

    assert (native.status, datadog.status, removed.status) == (200, 200, 204), replica_lag.hidden


def test_a_failure_event_may_name_the_deployment_posted_a_moment_ago(api: Api, replica_lag: ReplicaLag) -> None:
    replica_lag.on()
    cause = _created(api.call("POST", "/api/{spaceId}/deployments", path_params=SP, body=DEPLOYMENT, key=ADMIN_KEY))

    failed = api.call(
        "POST", "/api/{spaceId}/failures", path_params=SP, body={**FAILURE, "deployment_id": cause["id"]}, key=ADMIN_KEY
    )

    assert failed.status == 201, (failed.body, replica_lag.hidden)


def test_a_correction_may_name_a_remediation_posted_a_moment_ago(api: Api, replica_lag: ReplicaLag) -> None:
    replica_lag.on()
    deployments = "/api/{spaceId}/deployments"
    bad = _created(api.call("POST", deployments, path_params=SP, body={**DEPLOYMENT, "version": "2"}, key=ADMIN_KEY))
    later = {**DEPLOYMENT, "version": "3", "finished_at": "2024-03-01T11:30:00Z"}
    fix = _created(api.call("POST", deployments, path_params=SP, body=later, key=ADMIN_KEY))

    patched = api.call(
        "PATCH",
        "/api/{spaceId}/deployments/{deploymentId}",
        path_params={**SP, "deploymentId": bad["id"]},
        body={"change_failure": True, "remediation": {"id": fix["id"], "type": "rollback"}},
        key=ADMIN_KEY,
    )

    assert patched.status == 200, (patched.body, replica_lag.hidden)


def test_a_datadog_patch_by_version_finds_a_service_registered_a_moment_ago(api: Api, replica_lag: ReplicaLag) -> None:
    from dora_insights.dal import keys

    replica_lag.on()
    attributes = {"service": "brand-new", "env": "production", "version": "1.0"}
    times = {"started_at": 1_709_290_000, "finished_at": 1_709_290_100}
    posted = api.call(
        "POST", "/api/v2/dora/deployment", body={"data": {"attributes": {**attributes, **times}}}, headers=DD
    )
    assert posted.status == 200, posted.body
    # The deployments index caught up; the catalogue's name items are still fresh on the replica read.
    replica_lag.fresh = {k for k in replica_lag.fresh if k[0].startswith(keys.catalogue_pk("Spaces-1", ""))}
    assert replica_lag.fresh, "the service and environment were registered by that deployment"

    body = {"data": {"type": "dora_deployment_patch_request", "attributes": {**attributes, "change_failure": True}}}
    patched = api.call("PATCH", "/api/v2/dora/deployments", body=body, headers=DD)

    assert patched.status == 202, (patched.body, replica_lag.hidden)


def test_a_datadog_patch_by_version_right_after_the_deployment_waits_for_the_index(
    api: Api, replica_lag: ReplicaLag, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.logic import corrections

    pauses: list[str] = []

    def pause() -> None:  # the project index catches up while the route waits
        pauses.append("paused")
        replica_lag.settle()

    monkeypatch.setattr(corrections, "_pause_for_the_index", pause)
    attributes = {"service": "shop", "env": "production", "version": "2.0"}
    times = {"started_at": 1_709_290_000, "finished_at": 1_709_290_100}
    first = {"data": {"attributes": {**attributes, "version": "1.0", **times}}}
    assert api.call("POST", "/api/v2/dora/deployment", body=first, headers=DD).status == 200
    replica_lag.on(index_only=True)
    later = {"started_at": 1_709_290_200, "finished_at": 1_709_290_300}
    posted = api.call(
        "POST", "/api/v2/dora/deployment", body={"data": {"attributes": {**attributes, **later}}}, headers=DD
    )
    assert posted.status == 200, posted.body

    body = {"data": {"type": "dora_deployment_patch_request", "attributes": {**attributes, "change_failure": True}}}
    patched = api.call("PATCH", "/api/v2/dora/deployments", body=body, headers=DD)

    assert patched.status == 202, (patched.body, replica_lag.hidden)
    assert pauses == ["paused"]
    path = {"spaceId": "Spaces-1", "deploymentId": posted.body["data"]["id"]}
    got = api.call("GET", "/api/{spaceId}/deployments/{deploymentId}", path_params=path, key=ADMIN_KEY)
    assert got.body["change_failure_override"] is True, got.body


def test_an_incident_resolved_within_a_second_of_its_trigger_is_resolved(api: Api, replica_lag: ReplicaLag) -> None:
    from tests.integration.test_incident_webhooks import PD_CONFIG, PD_SECRET, pagerduty
    from tests.support.events import load_event

    services = {"Checkout API": {"project": "checkout"}}
    configured = api.call(
        "PUT", PD_CONFIG, path_params=SP, body={"secret": PD_SECRET, "services": services}, key=ADMIN_KEY
    )
    assert configured.status == 200, configured.body
    replica_lag.on()
    opened = pagerduty(api, load_event("pagerduty_incident_triggered.json"))
    assert opened.status == 201, opened.body

    resolved = pagerduty(api, load_event("pagerduty_incident_resolved.json"))

    assert resolved.status == 200, (resolved.body, replica_lag.hidden)
    assert resolved.body["failure"]["finished_at"] is not None


def test_an_insight_viewed_a_moment_ago_shows_when(api: Api, replica_lag: ReplicaLag) -> None:
    report = _created(
        api.call("POST", "/api/{spaceId}/insights/reports", path_params=SP, body={"Name": "Delivery"}, key=ADMIN_KEY)
    )
    insights = "/api/projects/{spaceId}/insights"
    body = {
        "name": "Lead time",
        "query": {"kind": "DoraMetricsQuery", "reportId": str(report["Id"]), "metric": "lead_time"},
    }
    insight = _created(api.call("POST", insights, path_params=SP, body=body, key=ADMIN_KEY))
    replica_lag.on()

    viewed = api.call(
        "POST", insights + "/viewed", path_params=SP, body={"insight_ids": [insight["id"]]}, key=ADMIN_KEY
    )
    assert viewed.status == 200, viewed.body
    one = api.call("GET", insights + "/{insightId}", path_params={**SP, "insightId": str(insight["id"])}, key=ADMIN_KEY)
    mine = api.call("GET", insights + "/my_last_viewed", path_params=SP, key=ADMIN_KEY)

    assert one.status == 200, one.body
    assert one.body["last_viewed_at"] is not None, replica_lag.hidden
    assert [i["id"] for i in mine.body] == [insight["id"]], replica_lag.hidden
