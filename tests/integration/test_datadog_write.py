"""Datadog DORA corrections (patch by id, patch by version, delete of deployments and failures) through the
HTTP event shape, against moto, each route under its own role: bodies as datadog-api-client 2.62 builds
them, 202 with no body, JSON:API errors, and the numbers that follow (figures after a recompute,
``/summary``, the Datadog lists)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from datadog_api_client import Configuration
from datadog_api_client.model_utils import data_to_dict, validate_and_convert_types
from datadog_api_client.v2.model.dora_deployment_fetch_response import DORADeploymentFetchResponse
from datadog_api_client.v2.model.dora_deployment_patch_by_version_remediation_by_version import (
    DORADeploymentPatchByVersionRemediationByVersion,
)
from datadog_api_client.v2.model.dora_deployment_patch_by_version_request import DORADeploymentPatchByVersionRequest
from datadog_api_client.v2.model.dora_deployment_patch_by_version_request_attributes import (
    DORADeploymentPatchByVersionRequestAttributes,
)
from datadog_api_client.v2.model.dora_deployment_patch_by_version_request_data import (
    DORADeploymentPatchByVersionRequestData,
)
from datadog_api_client.v2.model.dora_deployment_patch_remediation import DORADeploymentPatchRemediation
from datadog_api_client.v2.model.dora_deployment_patch_remediation_type import DORADeploymentPatchRemediationType
from datadog_api_client.v2.model.dora_deployment_patch_request import DORADeploymentPatchRequest
from datadog_api_client.v2.model.dora_deployment_patch_request_attributes import DORADeploymentPatchRequestAttributes
from datadog_api_client.v2.model.dora_deployment_patch_request_data import DORADeploymentPatchRequestData
from datadog_api_client.v2.model.dora_deployment_patch_request_data_type import DORADeploymentPatchRequestDataType
from datadog_api_client.v2.model.dora_deployments_list_response import DORADeploymentsListResponse
from datadog_api_client.v2.model.dora_failures_list_response import DORAFailuresListResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ADMIN_KEY, NOW, Api, Clock, HttpResult
from tests.support.native import read_deployment
from tests.support.recompute import scheduled_run

DD = {"DD-API-KEY": ADMIN_KEY}
SP = {"spaceId": "Spaces-1"}
DEPLOYMENT = "/api/v2/dora/deployment"
FAILURE = "/api/v2/dora/failure"
GET_DEPLOYMENT = "/api/v2/dora/deployments/{deployment_id}"
GET_FAILURE = "/api/v2/dora/failures/{failure_id}"
PATCH = "/api/v2/dora/deployments/{deployment_id}"
PATCH_BY_VERSION = "/api/v2/dora/deployments"
DELETE_DEPLOYMENT = "/api/v2/dora/deployment/{deployment_id}"
DELETE_FAILURE = "/api/v2/dora/failure/{failure_id}"
NATIVE_ONE = "/api/{spaceId}/deployments/{deploymentId}"
SUMMARY_RANGE = {"from": "2024-02-01T00:00:00Z", "to": "2024-03-10T00:00:00Z"}
DAY = 1_709_251_200  # 2024-03-01T00:00:00Z; deployment n finishes n hours later (before NOW, 12:00)
HOUR = 3600
PATCH_TYPE = DORADeploymentPatchRequestDataType.DORA_DEPLOYMENT_PATCH_REQUEST


# --- helpers ---------------------------------------------------------------------------------------------
def _parsed(body: Any, model: type) -> Any:
    """The body as the client's own model reads it (raises on any shape the client refuses)."""
    return validate_and_convert_types(body, (model,), ["received_data"], True, True, Configuration())


def deploy(api: Api, n: int, service: str = "shop", **attributes: Any) -> str:
    body = {
        "data": {
            "attributes": {
                "service": service,
                "env": "production",
                "started_at": DAY + n * HOUR - 60,
                "finished_at": DAY + n * HOUR,
                **attributes,
            }
        }
    }
    result = api.call("POST", DEPLOYMENT, body=body, headers=DD)
    assert result.status == 200, result.body
    return str(result.body["data"]["id"])


def fail(api: Api, n: int, service: str = "shop", **attributes: Any) -> str:
    body = {"data": {"attributes": {"services": [service], "env": "production", "started_at": DAY + n * HOUR}}}
    body["data"]["attributes"].update(attributes)
    result = api.call("POST", FAILURE, body=body, headers=DD)
    assert result.status == 200, result.body
    return str(result.body["data"]["id"])


def client_patch(deployment_id: str, **attributes: Any) -> dict[str, Any]:
    """A patch body exactly as the client sends it (its models, serialised by its own ``data_to_dict``)."""
    request = DORADeploymentPatchRequest(
        data=DORADeploymentPatchRequestData(
            attributes=DORADeploymentPatchRequestAttributes(**attributes), id=deployment_id, type=PATCH_TYPE
        )
    )
    sent: dict[str, Any] = data_to_dict(request)  # type: ignore[no-untyped-call]
    return sent


def client_patch_by_version(**attributes: Any) -> dict[str, Any]:
    request = DORADeploymentPatchByVersionRequest(
        data=DORADeploymentPatchByVersionRequestData(
            attributes=DORADeploymentPatchByVersionRequestAttributes(**attributes), type=PATCH_TYPE
        )
    )
    sent: dict[str, Any] = data_to_dict(request)  # type: ignore[no-untyped-call]
    return sent


def patch(api: Api, deployment_id: str, body: Any = None, *, raw: str | None = None, headers: Any = DD) -> HttpResult:
    return api.call(
        "PATCH", PATCH, path_params={"deployment_id": deployment_id}, body=body, raw_body=raw, headers=headers
    )


def patch_by_version(api: Api, body: Any, headers: Any = DD) -> HttpResult:
    return api.call("PATCH", PATCH_BY_VERSION, body=body, headers=headers)


def delete_deployment(api: Api, deployment_id: str, headers: Any = DD) -> HttpResult:
    return api.call("DELETE", DELETE_DEPLOYMENT, path_params={"deployment_id": deployment_id}, headers=headers)


def delete_failure(api: Api, failure_id: str, headers: Any = DD) -> HttpResult:
    return api.call("DELETE", DELETE_FAILURE, path_params={"failure_id": failure_id}, headers=headers)


def accepted(result: HttpResult) -> None:
    """Datadog's answer to a patch or a delete: 202 Accepted, no body."""
    assert result.status == 202, result.body
    assert result.body is None


def json_api_error(result: HttpResult, status: int, pointer: str | None = None) -> None:
    assert result.status == status, result.body
    assert set(result.body) == {"errors"} and result.body["errors"], result.body
    for error in result.body["errors"]:
        assert error["status"] == str(status)
        assert error["title"] and error["detail"]
    if pointer is not None:
        assert pointer in [e.get("source", {}).get("pointer") for e in result.body["errors"]], result.body


def figures(api: Api, deployment_id: str) -> dict[str, Any]:
    return read_deployment(api, deployment_id)["figures"]  # type: ignore[no-any-return]


def summary(api: Api) -> dict[str, Any]:
    found = api.call("GET", "/api/{spaceId}/summary", path_params=SP, query=SUMMARY_RANGE, key=ADMIN_KEY)
    assert found.status == 200, found.body
    return found.body  # type: ignore[no-any-return]


def recompute(lambda_context: Any) -> None:
    scheduled_run(lambda_context)


def datadog_list(api: Api, route: str = "/api/v2/dora/deployments", headers: Any = DD) -> list[str]:
    result = api.call("POST", route, body={"data": {"attributes": {"limit": 1000}}}, headers=headers)
    assert result.status == 200, result.body
    model = DORADeploymentsListResponse if route.endswith("deployments") else DORAFailuresListResponse
    _parsed(result.body, model)
    return [event["id"] for event in result.body["data"]]


def corrections_of(api: Api, deployment_id: str) -> list[dict[str, Any]]:
    found = api.call(
        "GET", NATIVE_ONE + "/corrections", path_params={**SP, "deploymentId": deployment_id}, key=ADMIN_KEY
    )
    assert found.status == 200, found.body
    return found.body["items"]  # type: ignore[no-any-return]


@pytest.fixture
def other_space(store: Any) -> dict[str, str]:
    """The DD-API-KEY header of a key of another space (read and write)."""
    from dora_insights.logic import admin

    other = admin.create_space(store, "Other", NOW)
    _, secret = admin.create_api_key(store, other.id, "ci", ("deployments:write", "deployments:read"), NOW)
    return {"DD-API-KEY": secret}


# --- patch by id ---------------------------------------------------------------------------------------
def test_a_change_failure_patched_by_id_shows_in_the_figures_and_the_summary_after_a_recompute(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    first = deploy(api, 1, version="1.0")
    deploy(api, 2, version="1.1")
    recompute(lambda_context)
    assert summary(api)["change_failure_rate"]["change_failures"] == 0
    accepted(patch(api, first, client_patch(first, change_failure=True)))
    assert read_deployment(api, first)["change_failure_override"] is True
    recompute(lambda_context)
    shown = figures(api, first)
    assert (shown["change_failure"], shown["change_failure_computed"], shown["change_failure_override"]) == (
        True,
        False,
        True,
    )
    assert shown["change_failure_rule"] == 0
    rate = summary(api)["change_failure_rate"]
    assert (rate["change_failures"], rate["deployments"]) == (1, 2)
    # Back to stable: an override to false; the deployment still reads back in the client's shape.
    accepted(patch(api, first, client_patch(first, change_failure=False)))
    recompute(lambda_context)
    assert (figures(api, first)["change_failure"], figures(api, first)["change_failure_override"]) == (False, False)
    assert summary(api)["change_failure_rate"]["change_failures"] == 0
    got = api.call("GET", GET_DEPLOYMENT, path_params={"deployment_id": first}, headers=DD)
    assert _parsed(got.body, DORADeploymentFetchResponse).data.id == first


def test_null_change_failure_removes_the_override_and_an_absent_one_leaves_it(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    failed = deploy(api, 1)
    accepted(patch(api, failed, {"data": {"attributes": {"change_failure": True}}}))
    accepted(patch(api, failed, {"data": {"attributes": {}}}))  # nothing sent: nothing changes
    assert read_deployment(api, failed)["change_failure_override"] is True
    accepted(patch(api, failed, {"data": {"attributes": {"change_failure": None}}}))
    assert read_deployment(api, failed)["change_failure_override"] is None
    recompute(lambda_context)
    assert (figures(api, failed)["change_failure"], figures(api, failed)["change_failure_rule"]) == (False, None)


def test_a_rollback_remediation_by_id_charges_the_deployment_and_marks_the_rollback(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    bad = deploy(api, 1, version="2.0")
    back = deploy(api, 2, version="1.9")
    remediation = DORADeploymentPatchRemediation(id=back, type=DORADeploymentPatchRemediationType.ROLLBACK)
    accepted(patch(api, bad, client_patch(bad, change_failure=True, remediation=remediation)))
    assert read_deployment(api, bad)["remediation"] == {"id": back, "version": None, "type": "rollback"}
    recompute(lambda_context)
    reasons = figures(api, bad)["change_failure_reasons"]
    assert [(r["rule"], r["deployment_id"]) for r in reasons] == [(0, bad), (2, back)]
    assert figures(api, back)["rework_reason"] == "rollback"
    rate = summary(api)["change_failure_rate"]
    assert (rate["change_failures"], rate["deployments"]) == (1, 1)  # a rollback is not counted


def test_a_rollforward_remediation_by_version_marks_the_later_deployment_as_a_fix(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    bad = deploy(api, 1, version="2.0")
    fix = deploy(api, 2, version="2.0.1")
    remediation = DORADeploymentPatchRemediation(version="2.0.1", type=DORADeploymentPatchRemediationType.ROLLFORWARD)
    accepted(patch(api, bad, client_patch(bad, remediation=remediation)))
    recompute(lambda_context)
    assert figures(api, bad)["change_failure_rule"] == 3
    assert figures(api, fix)["rework_reason"] == "fix"
    accepted(patch(api, bad, {"data": {"attributes": {"remediation": None}}}))
    assert read_deployment(api, bad)["remediation"] is None


def test_a_remediation_that_is_no_later_deployment_of_the_stream_is_400_at_its_pointer(api: Api, clock: Clock) -> None:
    earlier = deploy(api, 1)
    bad = deploy(api, 2)
    elsewhere = deploy(api, 3, env="staging")
    for named in (earlier, elsewhere, bad, "no-such-deployment"):
        result = patch(api, bad, {"data": {"attributes": {"remediation": {"id": named, "type": "rollback"}}}})
        json_api_error(result, 400, "/data/attributes/remediation/id")
    assert read_deployment(api, bad)["revision"] == 1


def test_every_patch_is_recorded_with_who_and_what(api: Api, clock: Clock) -> None:
    deployment_id = deploy(api, 1)
    accepted(patch(api, deployment_id, client_patch(deployment_id, change_failure=True)))
    (record,) = corrections_of(api, deployment_id)
    assert record["action"] == "correct"
    assert record["actor"] == "test admin (ApiKeys-1)"
    assert record["changes"] == {"change_failure": {"before": None, "after": True}}


BAD_PATCHES: list[tuple[Any, str | None]] = [
    ({}, "/data"),
    ({"data": {}}, "/data/attributes"),
    ({"data": []}, "/data"),
    ({"data": {"attributes": "x"}}, "/data/attributes"),
    ({"data": {"attributes": {"change_failure": "yes"}}}, "/data/attributes/change_failure"),
    ({"data": {"attributes": {"change_failure": 1}}}, "/data/attributes/change_failure"),
    ({"data": {"attributes": {"remediation": {"id": "deploy-0000000000000002"}}}}, "/data/attributes/remediation/type"),
    ({"data": {"attributes": {"remediation": {"type": "rollback"}}}}, "/data/attributes/remediation"),
    (
        {
            "data": {
                "attributes": {"remediation": {"id": "deploy-0000000000000002", "version": "1", "type": "rollback"}}
            }
        },
        "/data/attributes/remediation",
    ),
    (
        {"data": {"attributes": {"remediation": {"id": "deploy-0000000000000002", "type": "revert"}}}},
        "/data/attributes/remediation/type",
    ),
    ({"data": {"attributes": {"remediation": "rollback"}}}, "/data/attributes/remediation"),
    ({"data": {"attributes": {"remediation": {"id": "", "type": "rollback"}}}}, "/data/attributes/remediation/id"),
    ({"data": {"attributes": {}, "type": "dora_deployment"}}, "/data/type"),
    ({"data": {"attributes": {}, "id": "another-deployment-id"}}, "/data/id"),
    ({"data": {"attributes": {}, "id": 7}}, "/data/id"),
]


@pytest.mark.parametrize(("body", "pointer"), BAD_PATCHES)
def test_bad_patches_are_json_api_400s_at_their_pointer_and_change_nothing(
    api: Api, clock: Clock, body: Any, pointer: str | None
) -> None:
    deployment_id = deploy(api, 1, id="deploy-0000000000000001")
    deploy(api, 2, id="deploy-0000000000000002")
    json_api_error(patch(api, deployment_id, body), 400, pointer)
    assert read_deployment(api, deployment_id)["revision"] == 1
    assert corrections_of(api, deployment_id) == []


@pytest.mark.parametrize("raw", ["{not json", "", "[]", "null", "42", '"text"'])
def test_a_patch_body_that_is_no_json_object_is_400(api: Api, clock: Clock, raw: str) -> None:
    deployment_id = deploy(api, 1)
    json_api_error(patch(api, deployment_id, raw=raw), 400)


def test_patches_and_deletes_of_unknown_or_another_spaces_ids_are_json_api_404s(
    api: Api, clock: Clock, other_space: dict[str, str]
) -> None:
    ours, our_failure = deploy(api, 1, version="1.0"), fail(api, 1)
    body = {"data": {"attributes": {"change_failure": True}}}
    for deployment_id, headers in ((ours, other_space), ("no-such-deployment-0001", DD)):
        json_api_error(patch(api, deployment_id, body, headers=headers), 404)
        json_api_error(delete_deployment(api, deployment_id, headers=headers), 404)
    for failure_id, headers in ((our_failure, other_space), ("no-such-failure-0001", DD)):
        json_api_error(delete_failure(api, failure_id, headers=headers), 404)
    by_version = {"data": {"attributes": {"service": "shop", "env": "production", "version": "1.0"}}}
    json_api_error(patch_by_version(api, by_version, headers=other_space), 404)
    assert read_deployment(api, ours)["revision"] == 1
    assert datadog_list(api) == [ours]
    assert datadog_list(api, "/api/v2/dora/failures") == [our_failure]


def test_corrections_need_a_key_with_the_write_scope(api: Api, clock: Clock, store: Any) -> None:
    from dora_insights.logic import admin

    deployment_id, failure_id = deploy(api, 1, version="1.0"), fail(api, 1)
    _, reader = admin.create_api_key(store, "Spaces-1", "reader", ("deployments:read",), NOW)
    headers = {"DD-API-KEY": reader}
    body = {"data": {"attributes": {"change_failure": True}}}
    by_version = {"data": {"attributes": {"service": "shop", "env": "production", "version": "1.0"}}}
    for result in (
        patch(api, deployment_id, body, headers=headers),
        patch_by_version(api, by_version, headers=headers),
        delete_deployment(api, deployment_id, headers=headers),
        delete_failure(api, failure_id, headers=headers),
    ):
        json_api_error(result, 403)
    json_api_error(patch(api, deployment_id, body, headers={}), 401)
    assert read_deployment(api, deployment_id)["revision"] == 1


# --- patch by version -----------------------------------------------------------------------------------
def test_a_patch_by_version_marks_the_latest_deployment_of_that_service_env_and_version(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    older = deploy(api, 1, version="3.1")
    latest = deploy(api, 2, version="3.1")
    staging = deploy(api, 3, env="staging", version="3.1")
    other = deploy(api, 4, version="3.2")
    accepted(
        patch_by_version(
            api, client_patch_by_version(service="shop", env="production", version="3.1", change_failure=True)
        )
    )
    assert [read_deployment(api, d)["change_failure_override"] for d in (older, latest, staging, other)] == [
        None,
        True,
        None,
        None,
    ]
    recompute(lambda_context)
    assert figures(api, latest)["change_failure"] is True
    assert summary(api)["change_failure_rate"]["change_failures"] == 1


def test_a_patch_by_version_takes_a_remediation_by_version(api: Api, clock: Clock, lambda_context: Any) -> None:
    bad = deploy(api, 1, version="4.0")
    back = deploy(api, 2, version="3.9")
    remediation = DORADeploymentPatchByVersionRemediationByVersion(
        version="3.9", type=DORADeploymentPatchRemediationType.ROLLBACK
    )
    body = client_patch_by_version(
        service="shop", env="production", version="4.0", change_failure=True, remediation=remediation
    )
    accepted(patch_by_version(api, body))
    assert read_deployment(api, bad)["remediation"] == {"id": None, "version": "3.9", "type": "rollback"}
    recompute(lambda_context)
    assert figures(api, back)["rework_reason"] == "rollback"


def test_a_patch_by_version_without_env_finds_the_default_environment(api: Api, clock: Clock) -> None:
    body = {
        "data": {
            "attributes": {"service": "shop", "started_at": DAY + HOUR - 60, "finished_at": DAY + HOUR, "version": "5"}
        }
    }
    created = api.call("POST", DEPLOYMENT, body=body, headers=DD)
    deployment_id = created.body["data"]["id"]
    accepted(
        patch_by_version(api, {"data": {"attributes": {"service": "shop", "version": "5", "change_failure": True}}})
    )
    assert read_deployment(api, deployment_id)["change_failure_override"] is True


@pytest.mark.parametrize(
    "attributes",
    [
        {"service": "shop", "env": "production", "version": "9.9"},
        {"service": "nowhere", "env": "production", "version": "1.0"},
        {"service": "shop", "env": "nowhere", "version": "1.0"},
    ],
)
def test_a_patch_by_version_that_matches_nothing_is_404(api: Api, clock: Clock, attributes: dict[str, Any]) -> None:
    deploy(api, 1, version="1.0")
    json_api_error(patch_by_version(api, {"data": {"attributes": {**attributes, "change_failure": True}}}), 404)


@pytest.mark.parametrize(
    ("attributes", "pointer"),
    [
        ({"env": "production", "version": "1.0"}, "/data/attributes/service"),
        ({"service": "shop", "env": "production"}, "/data/attributes/version"),
        ({"service": "", "version": "1.0"}, "/data/attributes/service"),
        ({"service": "shop", "version": ""}, "/data/attributes/version"),
        ({"service": "shop", "env": 3, "version": "1.0"}, "/data/attributes/env"),
        ({"service": "shop", "version": "1.0", "change_failure": "true"}, "/data/attributes/change_failure"),
        ({"service": "shop", "version": "1.0", "remediation": {"type": "rollback"}}, "/data/attributes/remediation"),
    ],
)
def test_bad_patches_by_version_are_json_api_400s(
    api: Api, clock: Clock, attributes: dict[str, Any], pointer: str
) -> None:
    deployment_id = deploy(api, 1, version="1.0")
    json_api_error(patch_by_version(api, {"data": {"attributes": attributes}}), 400, pointer)
    assert read_deployment(api, deployment_id)["revision"] == 1


# --- delete ---------------------------------------------------------------------------------------------
def test_a_deleted_deployment_leaves_the_summary_and_the_datadog_list(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    kept = deploy(api, 1, version="1.0")
    gone = deploy(api, 2, version="1.1")
    recompute(lambda_context)
    assert summary(api)["deployments"] == 2
    assert datadog_list(api) == [gone, kept]
    accepted(delete_deployment(api, gone))
    assert datadog_list(api) == [kept]
    got = api.call("GET", GET_DEPLOYMENT, path_params={"deployment_id": gone}, headers=DD)
    json_api_error(got, 404)
    json_api_error(delete_deployment(api, gone), 404)
    json_api_error(patch(api, gone, {"data": {"attributes": {"change_failure": True}}}), 404)
    recompute(lambda_context)
    assert summary(api)["deployments"] == 1
    (record,) = corrections_of(api, gone)
    assert (record["action"], record["actor"]) == ("delete", "test admin (ApiKeys-1)")


def test_a_change_failure_deleted_with_its_deployment_leaves_the_rate(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    deploy(api, 1)
    failed = deploy(api, 2)
    accepted(patch(api, failed, {"data": {"attributes": {"change_failure": True}}}))
    recompute(lambda_context)
    rate = summary(api)["change_failure_rate"]
    assert (rate["change_failures"], rate["deployments"]) == (1, 2)
    accepted(delete_deployment(api, failed))
    recompute(lambda_context)
    rate = summary(api)["change_failure_rate"]
    assert (rate["change_failures"], rate["deployments"]) == (0, 1)


def test_a_deleted_deployments_id_can_be_sent_again(api: Api, clock: Clock) -> None:
    first = deploy(api, 1, id="deploy-resent-000000001")
    accepted(delete_deployment(api, first))
    again = deploy(api, 3, id="deploy-resent-000000001")  # other content: no 409, the old one is gone
    assert again == first
    got = api.call("GET", GET_DEPLOYMENT, path_params={"deployment_id": again}, headers=DD)
    assert got.status == 200, got.body
    assert got.body["data"]["attributes"]["finished_at"] == "2024-03-01T03:00:00.000Z"


def test_a_deleted_failure_event_leaves_the_list_and_stops_charging_its_deployment(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    deployment_id = deploy(api, 1)
    failure_id = fail(api, 2)
    recompute(lambda_context)
    assert figures(api, deployment_id)["change_failure_rule"] == 5
    assert datadog_list(api, "/api/v2/dora/failures") == [failure_id]
    accepted(delete_failure(api, failure_id))
    assert datadog_list(api, "/api/v2/dora/failures") == []
    json_api_error(api.call("GET", GET_FAILURE, path_params={"failure_id": failure_id}, headers=DD), 404)
    json_api_error(delete_failure(api, failure_id), 404)
    recompute(lambda_context)
    assert figures(api, deployment_id)["change_failure"] is False
    assert summary(api)["change_failure_rate"]["change_failures"] == 0


# --- never a server error -------------------------------------------------------------------------------
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(["rollback", "rollforward", "deploy-0000000000000001", "shop", "production", "1.0"]),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_FIELDS = ["change_failure", "remediation", "service", "env", "version"]


@st.composite
def _patch_bodies(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 3)) == 0:
        return draw(_JSON)
    attributes: dict[str, Any] = {"service": "shop", "env": "production", "version": "1.0"}
    for name in draw(st.lists(st.sampled_from(_FIELDS), max_size=4, unique=True)):
        if draw(st.booleans()):
            attributes.pop(name, None)
        elif name == "remediation":
            keys = st.sampled_from(["id", "version", "type"])
            attributes[name] = draw(st.dictionaries(keys, _JSON, max_size=3) | _JSON)
        else:
            attributes[name] = draw(_JSON)
    data: dict[str, Any] = {"attributes": attributes}
    if draw(st.booleans()):
        data["id"] = draw(st.sampled_from(["deploy-0000000000000001", "other", 3]))
    if draw(st.booleans()):
        data["type"] = draw(st.sampled_from(["dora_deployment_patch_request", "x", None]))
    return {"data": data}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_patch_bodies())
def test_fuzzed_patch_bodies_never_answer_5xx(api: Api, body: Any) -> None:
    deploy(api, 1, id="deploy-0000000000000001", version="1.0")
    raw = json.dumps(body)
    for result in (
        patch(api, "deploy-0000000000000001", raw=raw),
        api.call("PATCH", PATCH_BY_VERSION, raw_body=raw, headers=DD),
    ):
        assert result.status in (202, 400, 404), (body, result.body)
        if result.status != 202:
            json_api_error(result, result.status)
