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
