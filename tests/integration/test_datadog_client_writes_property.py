"""The Datadog dialect's write side (create, failure and the deprecated incident alias, patch by id and by
version, delete) driven through the real ``datadog-api-client`` 2.62 (its REST layer routed into the
handlers in process, against moto, so the client's own code builds every request and parses every
answer) and through raw bodies: idempotency, units and time zones, tenancy and keys, hostile bodies,
and the same history through the client and natively giving the same /summary."""

from __future__ import annotations

import json
import re
import warnings
from typing import Any
from urllib.parse import urlsplit

import pytest
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException, NotFoundException
from datadog_api_client.v2.api.dora_metrics_api import DORAMetricsApi
from datadog_api_client.v2.model.dora_deployment_patch_remediation import DORADeploymentPatchRemediation
from datadog_api_client.v2.model.dora_deployment_patch_remediation_type import DORADeploymentPatchRemediationType
from datadog_api_client.v2.model.dora_deployment_patch_request import DORADeploymentPatchRequest
from datadog_api_client.v2.model.dora_deployment_patch_request_attributes import DORADeploymentPatchRequestAttributes
from datadog_api_client.v2.model.dora_deployment_patch_request_data import DORADeploymentPatchRequestData
from datadog_api_client.v2.model.dora_deployment_patch_request_data_type import DORADeploymentPatchRequestDataType
from datadog_api_client.v2.model.dora_deployment_request import DORADeploymentRequest
from datadog_api_client.v2.model.dora_deployment_request_attributes import DORADeploymentRequestAttributes
from datadog_api_client.v2.model.dora_deployment_request_data import DORADeploymentRequestData
from datadog_api_client.v2.model.dora_failure_request import DORAFailureRequest
from datadog_api_client.v2.model.dora_failure_request_attributes import DORAFailureRequestAttributes
from datadog_api_client.v2.model.dora_failure_request_data import DORAFailureRequestData
from datadog_api_client.v2.model.dora_git_info import DORAGitInfo

from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.support.recompute import scheduled_run

DD = {"DD-API-KEY": ADMIN_KEY}
SP = {"spaceId": "Spaces-1"}
DEPLOYMENT = "/api/v2/dora/deployment"
FAILURE = "/api/v2/dora/failure"
INCIDENT = "/api/v2/dora/incident"
DAY = 1_709_251_200  # 2024-03-01T00:00:00Z
HOUR = 3600
SHA = "66adc9350f2cc9b250b69abddab733dd55e1a588"
REPO = "https://github.com/organization/example-repository"
SUMMARY_RANGE = {"from": "2024-02-01T00:00:00Z", "to": "2024-03-10T00:00:00Z"}


class _Resp:
    def __init__(self, result: HttpResult) -> None:
        self.status = result.status
        self.reason = str(result.status)
        self.headers = dict(result.headers)
        if result.body is None:
            self.data = b""
        elif isinstance(result.body, str):
            self.data = result.body.encode()
        else:
            self.data = json.dumps(result.body).encode()


class _Rest:
    """The client's REST layer, routed into the handlers (as API Gateway would route its request)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.sent: list[tuple[str, str, Any]] = []
        self.pool_manager = self

    def clear(self) -> None:
        pass

    def request(
        self,
        method: str,
        url: str,
        query_params: Any = None,
        headers: Any = None,
        body: Any = None,
        post_params: Any = None,
        preload_content: bool = True,
        request_timeout: Any = None,
    ) -> Any:
        path = urlsplit(url).path
        for m, route in self.api.routes:
            if m != method:
                continue
            names = re.findall(r"{(\w+)}", route)
            pattern = "^" + re.sub(r"{\w+}", "([^/]+)", route) + "$"
            found = re.match(pattern, path)
            if found:
                params = dict(zip(names, found.groups(), strict=True))
                self.sent.append((method, path, body))
                hdrs = dict(headers or {})
                result = self.api.call(
                    method,
                    route,
                    path_params=params or None,
                    raw_body=json.dumps(body) if body is not None else None,
                    headers=hdrs,
                )
                response = _Resp(result)
                if not 200 <= response.status <= 299:
                    if response.status == 404:
                        raise NotFoundException(http_resp=response)
                    raise ApiException(http_resp=response)
                return response
        raise AssertionError(f"no route for {method} {path}")


@pytest.fixture
def dora(api: Api) -> Any:
    configuration = Configuration(host="https://dora.example")
    configuration.api_key["apiKeyAuth"] = ADMIN_KEY
    configuration.unstable_operations  # noqa: B018
    with ApiClient(configuration) as client:
        client.rest_client = _Rest(api)
        yield DORAMetricsApi(client)


def dd_deploy(dora: Any, n: int, service: str = "shop", **extra: Any) -> str:
    attributes = DORADeploymentRequestAttributes(
        service=service,
        env="production",
        started_at=(DAY + n * HOUR - 60) * 10**9,
        finished_at=(DAY + n * HOUR) * 10**9,
        **extra,
    )
    return str(
        dora.create_dora_deployment(body=DORADeploymentRequest(data=DORADeploymentRequestData(attributes))).data.id
    )


def dd_fail(dora: Any, n: int, service: str = "shop", **extra: Any) -> str:
    attributes = DORAFailureRequestAttributes(
        services=[service], env="production", started_at=(DAY + n * HOUR) * 10**9, **extra
    )
    return str(dora.create_dora_failure(body=DORAFailureRequest(data=DORAFailureRequestData(attributes))).data.id)


def raw_deploy(api: Api, attributes: dict[str, Any], route: str = DEPLOYMENT) -> HttpResult:
    return api.call("POST", route, body={"data": {"attributes": attributes}}, headers=DD)


def base(n: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "service": "shop",
        "env": "production",
        "started_at": DAY + n * HOUR - 60,
        "finished_at": DAY + n * HOUR,
        **extra,
    }


def json_api_error(result: HttpResult, status: int, pointer: str | None = None) -> None:
    assert result.status == status, (result.status, result.body)
    assert isinstance(result.body, dict) and set(result.body) == {"errors"} and result.body["errors"], result.body
    for error in result.body["errors"]:
        assert error["status"] == str(status), result.body
    if pointer is not None:
        assert pointer in [e.get("source", {}).get("pointer") for e in result.body["errors"]], result.body


def get_dd(api: Api, deployment_id: str) -> HttpResult:
    return api.call(
        "GET", "/api/v2/dora/deployments/{deployment_id}", path_params={"deployment_id": deployment_id}, headers=DD
    )


def get_failure(api: Api, failure_id: str) -> HttpResult:
    return api.call("GET", "/api/v2/dora/failures/{failure_id}", path_params={"failure_id": failure_id}, headers=DD)


def summary(api: Api) -> dict[str, Any]:
    found = api.call("GET", "/api/{spaceId}/summary", path_params=SP, query=SUMMARY_RANGE, key=ADMIN_KEY)
    assert found.status == 200, found.body
    return found.body  # type: ignore[no-any-return]


# --- the real client, end to end ------------------------------------------------------------------------
def test_client_create_get_patch_delete_round_trip(api: Api, dora: Any, clock: Clock) -> None:
    first = dd_deploy(
        dora,
        1,
        version="1.0",
        team="core",
        custom_tags=["language:java", "department:eng"],
        git=DORAGitInfo(commit_sha=SHA, repository_url=REPO),
        id="deploy-0000000001",
    )
    assert first == "deploy-0000000001"
    got = dora.get_dora_deployment(first)
    shown = got.data.attributes
    assert (shown.service, shown.env, shown.team, shown.version) == ("shop", "production", "core", "1.0")
    assert list(shown.custom_tags) == ["language:java", "department:eng"]
    assert shown.git.commit_sha == SHA and shown.git.repository_url == REPO
    second = dd_deploy(dora, 2, version="1.1")
    body = DORADeploymentPatchRequest(
        data=DORADeploymentPatchRequestData(
            attributes=DORADeploymentPatchRequestAttributes(
                change_failure=True,
                remediation=DORADeploymentPatchRemediation(
                    id=second, type=DORADeploymentPatchRemediationType.ROLLFORWARD
                ),
            ),
            id=first,
            type=DORADeploymentPatchRequestDataType.DORA_DEPLOYMENT_PATCH_REQUEST,
        )
    )
    assert dora.patch_dora_deployment(first, body=body) is None
    assert dora.delete_dora_deployment(first) is None
    with pytest.raises(NotFoundException):
        dora.get_dora_deployment(first)


def test_client_failure_and_legacy_incident_round_trip(api: Api, dora: Any) -> None:
    failure = dd_fail(
        dora,
        3,
        name="db down",
        severity="High",
        team="core",
        version="1.0",
        finished_at=(DAY + 4 * HOUR) * 10**9,
        custom_tags=["k:v"],
    )
    shown = dora.get_dora_failure(failure).data.attributes
    assert (list(shown.services), shown.name, shown.severity, shown.team, shown.version) == (
        ["shop"],
        "db down",
        "High",
        "core",
        "1.0",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        legacy = dora.create_dora_incident(
            body=DORAFailureRequest(
                data=DORAFailureRequestData(
                    DORAFailureRequestAttributes(services=["shop"], started_at=(DAY + 5 * HOUR) * 1000)
                )
            )
        )
    assert dora.get_dora_failure(str(legacy.data.id)).data.attributes.services == ["shop"]
    assert dora.delete_dora_failure(failure) is None
    with pytest.raises(NotFoundException):
        dora.get_dora_failure(failure)


# --- idempotency ----------------------------------------------------------------------------------------
def dd_list_ids(api: Api, route: str = "/api/v2/dora/deployments") -> list[str]:
    result = api.call("POST", route, body={"data": {"attributes": {"limit": 1000}}}, headers=DD)
    assert result.status == 200, result.body
    return [event["id"] for event in result.body["data"]]


def test_client_retry_same_id_same_body_is_one_deployment(api: Api, dora: Any) -> None:
    first = dd_deploy(dora, 1, id="retry-deploy-00000001", version="1.0")
    again = dd_deploy(dora, 1, id="retry-deploy-00000001", version="1.0")
    assert first == again == "retry-deploy-00000001"
    assert dd_list_ids(api) == [first]


def test_same_id_other_body_is_409_at_the_id(api: Api) -> None:
    assert raw_deploy(api, base(1, id="conflict-deploy-0001", version="1.0")).status == 200
    json_api_error(raw_deploy(api, base(1, id="conflict-deploy-0001", version="2.0")), 409, "/data/attributes/id")


def test_same_id_same_instant_in_other_unit_is_the_same_request(api: Api) -> None:
    seconds = base(1, id="unit-deploy-00000001")
    nanos = {**seconds, "started_at": seconds["started_at"] * 10**9, "finished_at": seconds["finished_at"] * 10**9}
    assert raw_deploy(api, seconds).status == 200
    again = raw_deploy(api, nanos)
    assert again.status == 200, again.body
    assert dd_list_ids(api) == ["unit-deploy-00000001"]


def test_same_id_env_left_out_vs_default_env_is_the_same_request(api: Api) -> None:
    named = base(1, id="env-deploy-000000001")
    assert raw_deploy(api, named).status == 200
    left_out = {k: v for k, v in named.items() if k != "env"}
    again = raw_deploy(api, left_out)
    assert again.status == 200, again.body


def test_retry_after_a_patch_is_still_the_same_deployment_and_keeps_the_override(api: Api) -> None:
    attrs = base(1, id="patched-deploy-00001", version="1.0")
    assert raw_deploy(api, attrs).status == 200
    patched = api.call(
        "PATCH",
        "/api/v2/dora/deployments/{deployment_id}",
        path_params={"deployment_id": attrs["id"]},
        body={"data": {"attributes": {"change_failure": True}}},
        headers=DD,
    )
    assert patched.status == 202, patched.body
    again = raw_deploy(api, attrs)
    assert again.status == 200, again.body
    native = api.call(
        "GET",
        "/api/{spaceId}/deployments/{deploymentId}",
        path_params={**SP, "deploymentId": attrs["id"]},
        key=ADMIN_KEY,
    )
    assert native.status == 200 and native.body["change_failure_override"] is True, native.body


def test_deleted_deployment_id_may_be_sent_again(api: Api, dora: Any) -> None:
    first = dd_deploy(dora, 1, id="again-deploy-0000001", version="1.0")
    dora.delete_dora_deployment(first)
    again = dd_deploy(dora, 1, id="again-deploy-0000001", version="2.0")
    assert again == first
    assert dora.get_dora_deployment(first).data.attributes.version == "2.0"


def test_failure_retry_same_id_and_conflict(api: Api, dora: Any) -> None:
    first = dd_fail(dora, 1, id="retry-failure-000001", name="x")
    assert dd_fail(dora, 1, id="retry-failure-000001", name="x") == first
    assert dd_list_ids(api, "/api/v2/dora/failures") == [first]
    other = api.call(
        "POST",
        FAILURE,
        headers=DD,
        body={
            "data": {
                "attributes": {
                    "services": ["shop"],
                    "env": "production",
                    "started_at": DAY + HOUR,
                    "id": first,
                    "name": "y",
                }
            }
        },
    )
    json_api_error(other, 409, "/data/attributes/id")


def test_deleted_failure_id_may_be_sent_again(api: Api, dora: Any) -> None:
    first = dd_fail(dora, 1, id="again-failure-000001", name="x")
    dora.delete_dora_failure(first)
    assert dd_fail(dora, 1, id="again-failure-000001", name="y") == first
    assert dora.get_dora_failure(first).data.attributes.name == "y"


def test_failure_sent_to_failure_then_incident_is_the_same_event(api: Api) -> None:
    body = {"data": {"attributes": {"services": ["shop"], "started_at": DAY + HOUR, "id": "both-routes-0000001"}}}
    assert api.call("POST", FAILURE, body=body, headers=DD).status == 200
    again = api.call("POST", INCIDENT, body=body, headers=DD)
    assert again.status == 200, again.body
    assert again.body == {"data": {"id": "both-routes-0000001", "type": "dora_failure"}}


# --- deletes and patches of what is not there ---------------------------------------------------------------
def test_delete_twice_and_patch_deleted_are_404(api: Api, dora: Any) -> None:
    first = dd_deploy(dora, 1)
    dora.delete_dora_deployment(first)
    with pytest.raises(NotFoundException) as again:
        dora.delete_dora_deployment(first)
    assert set(again.value.body) == {"errors"}
    body = DORADeploymentPatchRequest(
        data=DORADeploymentPatchRequestData(
            attributes=DORADeploymentPatchRequestAttributes(change_failure=True),
            id=first,
            type=DORADeploymentPatchRequestDataType.DORA_DEPLOYMENT_PATCH_REQUEST,
        )
    )
    with pytest.raises(NotFoundException):
        dora.patch_dora_deployment(first, body=body)
    failure = dd_fail(dora, 1)
    dora.delete_dora_failure(failure)
    with pytest.raises(NotFoundException):
        dora.delete_dora_failure(failure)


def test_unknown_ids_are_404_not_400_or_500(api: Api, dora: Any) -> None:
    for unknown in ("nope", "no-such-deployment-id-0001", "%E2%9C%93"):
        with pytest.raises(NotFoundException):
            dora.delete_dora_deployment(unknown)
        with pytest.raises(NotFoundException):
            dora.delete_dora_failure(unknown)


def test_deleting_the_remediation_target_leaves_reads_and_recompute_working(
    api: Api, dora: Any, lambda_context: Any
) -> None:
    first = dd_deploy(dora, 1, version="1.0")
    second = dd_deploy(dora, 2, version="1.1")
    body = DORADeploymentPatchRequest(
        data=DORADeploymentPatchRequestData(
            attributes=DORADeploymentPatchRequestAttributes(
                change_failure=True,
                remediation=DORADeploymentPatchRemediation(
                    id=second, type=DORADeploymentPatchRemediationType.ROLLFORWARD
                ),
            ),
            id=first,
            type=DORADeploymentPatchRequestDataType.DORA_DEPLOYMENT_PATCH_REQUEST,
        )
    )
    dora.patch_dora_deployment(first, body=body)
    scheduled_run(lambda_context)
    dora.delete_dora_deployment(second)
    scheduled_run(lambda_context)
    native = api.call(
        "GET", "/api/{spaceId}/deployments/{deploymentId}", path_params={**SP, "deploymentId": first}, key=ADMIN_KEY
    )
    assert native.status == 200, native.body
    shown = summary(api)
    rate = shown["change_failure_rate"]
    assert (rate["change_failures"], rate["deployments"]) == (1, 1), rate
    assert dora.get_dora_deployment(first).data.id == first


def test_an_unknown_long_id_is_a_404_as_api_md_says(api: Api, dora: Any) -> None:
    # API.md: "An unknown id, or another space's, is a JSON:API 404" (the client builds any id into the path).
    with pytest.raises(NotFoundException):
        dora.delete_dora_deployment("x" * 300)


# --- hostile and malformed bodies: always a JSON:API 4xx, never a 5xx ------------------------------------------
HOSTILE_DEPLOYMENTS: list[Any] = [
    None,
    [],
    "null",
    {"data": None},
    {"data": []},
    {"data": {"attributes": None}},
    {"data": {"attributes": []}},
    {"data": {"attributes": {**base(), "service": None}}},
    {"data": {"attributes": {**base(), "service": ""}}},
    {"data": {"attributes": {**base(), "service": "   "}}},
    {"data": {"attributes": {**base(), "service": 12}}},
    {"data": {"attributes": {**base(), "service": "s" * 5000}}},
    {"data": {"attributes": {**base(), "started_at": "1709254740"}}},
    {"data": {"attributes": {**base(), "started_at": 1709254740.5}}},
    {"data": {"attributes": {**base(), "started_at": True}}},
    {"data": {"attributes": {**base(), "started_at": None}}},
    {"data": {"attributes": {**base(), "finished_at": 2**70}}},
    {"data": {"attributes": {**base(), "finished_at": -5}}},
    {"data": {"attributes": {**base(), "finished_at": 0}}},
    {"data": {"attributes": {**base(), "started_at": DAY + 2 * HOUR}}},
    {"data": {"attributes": {**base(), "custom_tags": "a:b"}}},
    {"data": {"attributes": {**base(), "custom_tags": [None]}}},
    {"data": {"attributes": {**base(), "custom_tags": ["nokey"]}}},
    {"data": {"attributes": {**base(), "custom_tags": [f"k{i}:v" for i in range(101)]}}},
    {"data": {"attributes": {**base(), "custom_tags": ["tenant:a", "tenant:b"]}}},
    {"data": {"attributes": {**base(), "git": {}}}},
    {"data": {"attributes": {**base(), "git": {"commit_sha": SHA}}}},
    {"data": {"attributes": {**base(), "git": {"commit_sha": "zz", "repository_url": REPO}}}},
    {"data": {"attributes": {**base(), "git": {"commit_sha": SHA, "repository_url": "not a url"}}}},
    {"data": {"attributes": {**base(), "git": "x"}}},
    {"data": {"attributes": {**base(), "id": "short"}}},
    {"data": {"attributes": {**base(), "id": "has/slash/in/the/id/x"}}},
    {"data": {"attributes": {**base(), "id": 1234567890123456789}}},
    {"data": {"attributes": {**base(), "service": "\ud800"}}},
]


@pytest.mark.parametrize("body", HOSTILE_DEPLOYMENTS)
def test_hostile_deployment_bodies_are_a_json_api_4xx(api: Api, body: Any) -> None:
    result = api.call("POST", DEPLOYMENT, raw_body=json.dumps(body), headers=DD)
    assert result.status in (400, 422), (result.status, result.body)
    json_api_error(result, result.status)


@pytest.mark.parametrize("raw", ["", "{", "not json", "\xff\xfe", '{"data": {"attributes": {"service": "a"}}}' * 2])
def test_non_json_deployment_bodies_are_a_json_api_400(api: Api, raw: str) -> None:
    result = api.call("POST", DEPLOYMENT, raw_body=raw, headers=DD)
    json_api_error(result, 400)


HOSTILE_FAILURES: list[Any] = [
    {"data": {"attributes": {"started_at": DAY}}},
    {"data": {"attributes": {"services": [], "started_at": DAY}}},
    {"data": {"attributes": {"services": None, "service": None, "started_at": DAY}}},
    {"data": {"attributes": {"services": [None], "started_at": DAY}}},
    {"data": {"attributes": {"services": "shop", "started_at": DAY}}},
    {"data": {"attributes": {"services": [""], "started_at": DAY}}},
    {"data": {"attributes": {"services": ["shop"], "started_at": DAY, "finished_at": DAY - 10}}},
    {"data": {"attributes": {"services": ["shop"], "started_at": None}}},
    {"data": {"attributes": {"services": ["shop"] * 101, "started_at": DAY}}},
    {"data": {"attributes": {"services": ["shop"], "started_at": DAY, "name": "n" * 100_000}}},
    {"data": {"attributes": {"services": ["shop"], "started_at": DAY, "severity": 3}}},
]


@pytest.mark.parametrize("route", [FAILURE, INCIDENT])
@pytest.mark.parametrize("body", HOSTILE_FAILURES)
def test_hostile_failure_bodies_are_a_json_api_400(api: Api, route: str, body: Any) -> None:
    result = api.call("POST", route, raw_body=json.dumps(body), headers=DD)
    json_api_error(result, 400)


HOSTILE_PATCHES: list[Any] = [
    None,
    {"data": None},
    {"data": {"attributes": None}},
    {"data": {"attributes": {"change_failure": "yes"}}},
    {"data": {"attributes": {"change_failure": 1}}},
    {"data": {"attributes": {"remediation": {"type": "rollback"}}}},
    {"data": {"attributes": {"remediation": {"id": "a", "version": "b", "type": "rollback"}}}},
    {"data": {"attributes": {"remediation": {"id": "a"}}}},
    {"data": {"attributes": {"remediation": {"id": "a", "type": "revert"}}}},
    {"data": {"attributes": {"remediation": "x"}}},
    {"data": {"type": "dora_deployment", "attributes": {"change_failure": True}}},
    {"data": {"id": 5, "attributes": {"change_failure": True}}},
]


@pytest.mark.parametrize("body", HOSTILE_PATCHES)
def test_hostile_patch_bodies_are_a_json_api_400(api: Api, dora: Any, body: Any) -> None:
    first = dd_deploy(dora, 1)
    result = api.call(
        "PATCH",
        "/api/v2/dora/deployments/{deployment_id}",
        path_params={"deployment_id": first},
        raw_body=json.dumps(body),
        headers=DD,
    )
    json_api_error(result, 400)


# --- what is stored: units, unicode, fields ------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1, 1000, 10**6, 10**9])
def test_time_units_give_the_same_instant(api: Api, scale: int) -> None:
    result = raw_deploy(
        api, {"service": "shop", "started_at": (DAY + 3540) * scale, "finished_at": (DAY + 3600) * scale}
    )
    assert result.status == 200, result.body
    shown = get_dd(api, result.body["data"]["id"]).body["data"]["attributes"]
    assert shown["finished_at"].startswith("2024-03-01T01:00:00"), shown
    assert shown["started_at"].startswith("2024-03-01T00:59:00"), shown


def test_mixed_units_in_one_event(api: Api) -> None:
    result = raw_deploy(api, {"service": "shop", "started_at": (DAY + 3540), "finished_at": (DAY + 3600) * 10**9})
    assert result.status == 200, result.body
    shown = get_dd(api, result.body["data"]["id"]).body["data"]["attributes"]
    assert shown["finished_at"].startswith("2024-03-01T01:00:00") and shown["started_at"].startswith(
        "2024-03-01T00:59:00"
    )


def test_nanosecond_precision_is_kept_to_the_millisecond(api: Api) -> None:
    result = raw_deploy(
        api,
        {
            "service": "shop",
            "started_at": (DAY + 3540) * 10**9 + 123_456_789,
            "finished_at": (DAY + 3600) * 10**9 + 987_654_321,
        },
    )
    assert result.status == 200, result.body
    shown = get_dd(api, result.body["data"]["id"]).body["data"]["attributes"]
    assert shown["finished_at"].startswith("2024-03-01T01:00:00.987"), shown


def test_unicode_names_round_trip(api: Api, dora: Any) -> None:
    first = dd_deploy(dora, 1, service="shöp-🚀", version="v1 ✓", team="équipe", custom_tags=["clé:valeur ✓"])
    shown = dora.get_dora_deployment(first).data.attributes
    assert (shown.service, shown.version, shown.team, list(shown.custom_tags)) == (
        "shöp-🚀",
        "v1 ✓",
        "équipe",
        ["clé:valeur ✓"],
    )


def test_failure_with_service_and_services_merges(api: Api) -> None:
    body = {"data": {"attributes": {"service": "api", "services": ["shop", "api"], "started_at": DAY}}}
    result = api.call("POST", FAILURE, body=body, headers=DD)
    assert result.status == 200, result.body
    shown = get_failure(api, result.body["data"]["id"]).body["data"]["attributes"]
    assert shown["services"] == ["api", "shop"]


def test_failure_git_round_trip(api: Api, dora: Any) -> None:
    failure = dd_fail(dora, 1, git=DORAGitInfo(commit_sha=SHA.upper(), repository_url=REPO + ".git"))
    shown = dora.get_dora_failure(failure).data.attributes
    assert shown.git.commit_sha == SHA


def test_nulls_the_client_never_sends_are_read_as_absent(api: Api) -> None:
    result = raw_deploy(
        api, {**base(), "env": None, "team": None, "version": None, "git": None, "custom_tags": None, "id": None}
    )
    assert result.status == 200, result.body
    shown = get_dd(api, result.body["data"]["id"]).body["data"]["attributes"]
    assert shown["env"] == "production" and "team" not in shown and "version" not in shown


# --- property: the same history through the client and natively gives the same numbers ------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_RUNS: list[int] = []
HISTORY = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=200),
        st.integers(min_value=0, max_value=3 * HOUR),
        st.sampled_from(["shop", "api"]),
        st.booleans(),
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda e: (e[0], e[2]),
)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(history=HISTORY)
def test_same_history_through_client_and_native_gives_the_same_summary(
    api: Api, store: Any, clock: Clock, lambda_context: Any, history: list[tuple[int, int, str, bool]]
) -> None:
    from dora_insights.logic import admin

    _RUNS.append(1)
    tag = f"{len(_RUNS)}"

    native_space = admin.create_space(store, f"native-{tag}", admin_now())
    _, native_key = admin.create_api_key(
        store, native_space.id, "ci", ("deployments:write", "deployments:read"), admin_now()
    )
    dd_space = admin.create_space(store, f"dd-{tag}", admin_now())
    _, dd_key = admin.create_api_key(store, dd_space.id, "ci", ("deployments:write", "deployments:read"), admin_now())
    configuration = Configuration(host="https://dora.example")
    configuration.api_key["apiKeyAuth"] = dd_key
    with ApiClient(configuration) as client:
        client.rest_client = _Rest(api)
        dd = DORAMetricsApi(client)
        for n, (hours, lead, service, failed) in enumerate(sorted(history)):
            finished = DAY - 10 * 86400 + hours * HOUR
            started = finished - lead - 60
            attributes = DORADeploymentRequestAttributes(
                service=service,
                env="production",
                started_at=started * 1000,
                finished_at=finished * 10**9,
                version=f"v{n}",
            )
            dd_id = str(
                dd.create_dora_deployment(
                    body=DORADeploymentRequest(data=DORADeploymentRequestData(attributes))
                ).data.id
            )
            created = api.call(
                "POST",
                "/api/{spaceId}/deployments",
                path_params={"spaceId": native_space.id},
                key=native_key,
                body={
                    "project": service,
                    "environment": "production",
                    "finished_at": finished,
                    "started_at": started,
                    "version": f"v{n}",
                },
            )
            assert created.status == 201, created.body
            if failed:
                dd.patch_dora_deployment(
                    dd_id,
                    body=DORADeploymentPatchRequest(
                        data=DORADeploymentPatchRequestData(
                            attributes=DORADeploymentPatchRequestAttributes(change_failure=True),
                            id=dd_id,
                            type=DORADeploymentPatchRequestDataType.DORA_DEPLOYMENT_PATCH_REQUEST,
                        )
                    ),
                )
                patched = api.call(
                    "PATCH",
                    "/api/{spaceId}/deployments/{deploymentId}",
                    path_params={"spaceId": native_space.id, "deploymentId": created.body["id"]},
                    key=native_key,
                    body={"change_failure": True},
                )
                assert patched.status in (200, 202), patched.body
    scheduled_run(lambda_context)
    answers = []
    for space_id, key in ((native_space.id, native_key), (dd_space.id, dd_key)):
        found = api.call(
            "GET",
            "/api/{spaceId}/summary",
            path_params={"spaceId": space_id},
            query={"from": "2024-02-01T00:00:00Z", "to": "2024-03-10T00:00:00Z"},
            key=key,
        )
        assert found.status == 200, found.body
        answers.append(_numbers(found.body))
    assert answers[0] == answers[1]


def admin_now() -> Any:
    from tests.conftest import NOW

    return NOW


def _numbers(body: Any) -> Any:
    """The numbers of a summary, without ids, names, links or times of computation."""
    if isinstance(body, dict):
        return {
            k: _numbers(v)
            for k, v in body.items()
            if k not in {"space_id", "spaceId", "computed_at", "generated_at", "links", "id", "name", "_links", "as_of"}
        }
    if isinstance(body, list):
        return [_numbers(v) for v in body]
    return body


# --- ids shared with other dialects, overrides after a delete, scopes ---------------------------------------------
def test_a_datadog_id_equal_to_a_native_deployment_id_never_overwrites_it(api: Api) -> None:
    native = api.call(
        "POST",
        "/api/{spaceId}/deployments",
        path_params=SP,
        key=ADMIN_KEY,
        body={
            "id": "shared-id-0000000001",
            "project": "native-app",
            "environment": "production",
            "finished_at": DAY + 5 * HOUR,
            "version": "n1",
        },
    )
    assert native.status == 201, native.body
    native_id = native.body["id"]
    dd = raw_deploy(api, base(1, id=native_id, service="dd-app", version="d1"))
    assert dd.status in (200, 409), dd.body
    after = api.call(
        "GET", "/api/{spaceId}/deployments/{deploymentId}", path_params={**SP, "deploymentId": native_id}, key=ADMIN_KEY
    )
    assert after.status == 200, after.body
    assert (after.body["project"], after.body.get("version")) == ("native-app", "n1"), after.body
    if dd.status == 200:
        assert (
            dd.body["data"]["id"] != native_id
            or get_dd(api, native_id).body["data"]["attributes"]["service"] == "native-app"
        )


def test_a_datadog_failure_id_equal_to_a_native_failure_id_never_overwrites_it(api: Api) -> None:
    native = api.call(
        "POST",
        "/api/{spaceId}/failures",
        path_params=SP,
        key=ADMIN_KEY,
        body={
            "id": "shared-failure-00001",
            "projects": ["native-app"],
            "environment": "production",
            "started_at": DAY + 5 * HOUR,
        },
    )
    if native.status not in (200, 201):
        pytest.skip(f"native failure body differs: {native.body}")
    fid = native.body.get("id", "shared-failure-00001")
    dd = api.call(
        "POST",
        FAILURE,
        headers=DD,
        body={"data": {"attributes": {"services": ["dd-app"], "started_at": DAY + 6 * HOUR, "id": fid}}},
    )
    assert dd.status in (200, 409), dd.body
    shown = get_failure(api, fid).body["data"]["attributes"]
    assert shown["services"] == ["native-app"], shown


def test_a_recreated_deployment_does_not_inherit_the_deleted_ones_override(api: Api, lambda_context: Any) -> None:
    attrs = base(1, id="recreate-deploy-0001", version="1.0")
    assert raw_deploy(api, attrs).status == 200
    patched = api.call(
        "PATCH",
        "/api/v2/dora/deployments/{deployment_id}",
        path_params={"deployment_id": attrs["id"]},
        body={"data": {"attributes": {"change_failure": True}}},
        headers=DD,
    )
    assert patched.status == 202
    deleted = api.call(
        "DELETE", "/api/v2/dora/deployment/{deployment_id}", path_params={"deployment_id": attrs["id"]}, headers=DD
    )
    assert deleted.status == 202
    assert raw_deploy(api, attrs).status == 200
    scheduled_run(lambda_context)
    native = api.call(
        "GET",
        "/api/{spaceId}/deployments/{deploymentId}",
        path_params={**SP, "deploymentId": attrs["id"]},
        key=ADMIN_KEY,
    )
    assert native.status == 200 and native.body.get("change_failure_override") is None, native.body
    rate = summary(api)["change_failure_rate"]
    assert (rate["change_failures"], rate["deployments"]) == (0, 1), rate


def test_a_read_only_key_cannot_write_and_gets_datadogs_error_shape(api: Api, store: Any) -> None:
    from dora_insights.logic import admin

    _, secret = admin.create_api_key(store, "Spaces-1", "reader", ("deployments:read",), admin_now())
    headers = {"DD-API-KEY": secret}
    first = raw_deploy(api, base(1))
    assert first.status == 200
    for method, route, params, body in (
        ("POST", DEPLOYMENT, None, {"data": {"attributes": base(2)}}),
        ("POST", FAILURE, None, {"data": {"attributes": {"services": ["shop"], "started_at": DAY}}}),
        (
            "PATCH",
            "/api/v2/dora/deployments/{deployment_id}",
            {"deployment_id": first.body["data"]["id"]},
            {"data": {"attributes": {"change_failure": True}}},
        ),
        ("DELETE", "/api/v2/dora/deployment/{deployment_id}", {"deployment_id": first.body["data"]["id"]}, None),
    ):
        result = api.call(method, route, path_params=params, body=body, headers=headers)
        assert result.status == 403, (route, result.status, result.body)
        assert set(result.body) == {"errors"}, result.body
    assert get_dd(api, first.body["data"]["id"]).status == 200


def test_no_key_is_401_in_datadogs_error_shape(api: Api) -> None:
    result = api.call("POST", DEPLOYMENT, body={"data": {"attributes": base(1)}})
    assert result.status == 401, result.body
    assert set(result.body) == {"errors"}, result.body


@pytest.fixture
def other_dd(store: Any) -> dict[str, str]:
    from dora_insights.logic import admin

    other = admin.create_space(store, "Other", admin_now())
    _, secret = admin.create_api_key(store, other.id, "ci", ("deployments:write", "deployments:read"), admin_now())
    return {"DD-API-KEY": secret}


def test_the_same_event_id_in_two_spaces_is_two_events(api: Api, other_dd: dict[str, str]) -> None:
    mine = raw_deploy(api, base(1, id="same-id-in-2-spaces", version="mine"))
    theirs = api.call(
        "POST",
        DEPLOYMENT,
        headers=other_dd,
        body={"data": {"attributes": base(2, id="same-id-in-2-spaces", service="other", version="theirs")}},
    )
    assert mine.status == 200 and theirs.status == 200, (mine.body, theirs.body)
    assert get_dd(api, "same-id-in-2-spaces").body["data"]["attributes"]["version"] == "mine"
    other_get = api.call(
        "GET",
        "/api/v2/dora/deployments/{deployment_id}",
        path_params={"deployment_id": "same-id-in-2-spaces"},
        headers=other_dd,
    )
    assert other_get.body["data"]["attributes"]["version"] == "theirs", other_get.body
    gone = api.call(
        "DELETE",
        "/api/v2/dora/deployment/{deployment_id}",
        path_params={"deployment_id": "same-id-in-2-spaces"},
        headers=other_dd,
    )
    assert gone.status == 202
    assert get_dd(api, "same-id-in-2-spaces").status == 200
    fm = api.call(
        "POST",
        FAILURE,
        headers=DD,
        body={"data": {"attributes": {"services": ["a"], "started_at": DAY, "id": "same-fail-2-spaces"}}},
    )
    ft = api.call(
        "POST",
        FAILURE,
        headers=other_dd,
        body={"data": {"attributes": {"services": ["b"], "started_at": DAY, "id": "same-fail-2-spaces"}}},
    )
    assert fm.status == 200 and ft.status == 200, (fm.body, ft.body)
    assert get_failure(api, "same-fail-2-spaces").body["data"]["attributes"]["services"] == ["a"]


def test_another_spaces_deployment_cannot_be_patched_or_deleted(api: Api, other_dd: dict[str, str]) -> None:
    mine = raw_deploy(api, base(1)).body["data"]["id"]
    patched = api.call(
        "PATCH",
        "/api/v2/dora/deployments/{deployment_id}",
        path_params={"deployment_id": mine},
        body={"data": {"attributes": {"change_failure": True}}},
        headers=other_dd,
    )
    json_api_error(patched, 404)
    deleted = api.call(
        "DELETE", "/api/v2/dora/deployment/{deployment_id}", path_params={"deployment_id": mine}, headers=other_dd
    )
    json_api_error(deleted, 404)
    assert get_dd(api, mine).status == 200


# --- limits at their edges: accepted whole, or refused cleanly -------------------------------------------------
def test_a_failure_naming_100_new_services_is_stored(api: Api) -> None:
    services = [f"svc-{i:03d}" for i in range(100)]
    result = api.call(
        "POST",
        FAILURE,
        headers=DD,
        body={"data": {"attributes": {"services": services, "env": "brand-new-env", "started_at": DAY}}},
    )
    assert result.status == 200, result.body
    shown = get_failure(api, result.body["data"]["id"]).body["data"]["attributes"]
    assert shown["services"] == services


def test_a_failure_naming_100_long_unicode_services_is_stored_or_refused_cleanly(api: Api) -> None:
    services = [f"{i:03d}" + "🚀" * 197 for i in range(100)]
    result = api.call(
        "POST",
        FAILURE,
        headers=DD,
        body={
            "data": {
                "attributes": {
                    "services": services,
                    "started_at": DAY,
                    "name": "🔥" * 200,
                    "custom_tags": [f"k{i}:" + "✓" * 190 for i in range(100)],
                }
            }
        },
    )
    assert result.status in (200, 400, 413), (result.status, result.body)
    if result.status != 200:
        json_api_error(result, result.status)


def test_a_deployment_with_100_maximal_unicode_tags_is_stored_or_refused_cleanly(api: Api) -> None:
    tags = [f"{i:02d}:" + "🚀" * 197 for i in range(100)]
    result = raw_deploy(
        api,
        base(
            1,
            custom_tags=tags,
            service="🚀" * 200,
            version="🚀" * 200,
            team="🚀" * 200,
            env="🚀" * 200,
            git={"commit_sha": SHA, "repository_url": "https://github.com/" + "a" * 120 + "/" + "b" * 150},
        ),
    )
    assert result.status in (200, 400, 413), (result.status, result.body)
    if result.status == 200:
        shown = get_dd(api, result.body["data"]["id"]).body["data"]["attributes"]
        assert shown["custom_tags"] == tags
    else:
        json_api_error(result, result.status)


def test_a_tenant_tag_without_a_tenant_is_stored_or_refused_cleanly(api: Api) -> None:
    result = raw_deploy(api, base(1, custom_tags=["tenant_tag:Tier/Gold"]))
    assert result.status in (200, 400), result.body
    tenanted = raw_deploy(api, base(2, custom_tags=["tenant:acme", "tenant_tag:Tier/Gold", "tenant:acme"]))
    assert tenanted.status == 200, tenanted.body


def test_an_id_equal_to_a_generated_id_never_overwrites_that_deployment(api: Api) -> None:
    generated = raw_deploy(api, base(1, version="first"))
    assert generated.status == 200
    gid = generated.body["data"]["id"]
    again = raw_deploy(api, base(2, id=gid, service="intruder", version="second"))
    assert again.status in (200, 409), again.body
    assert get_dd(api, gid).body["data"]["attributes"]["version"] == "first"
    assert sorted(dd_list_ids(api)).count(gid) == 1


def test_an_id_equal_to_a_generated_failure_id_never_overwrites_that_failure(api: Api) -> None:
    generated = api.call(
        "POST",
        FAILURE,
        headers=DD,
        body={"data": {"attributes": {"services": ["shop"], "started_at": DAY, "name": "first"}}},
    )
    gid = generated.body["data"]["id"]
    again = api.call(
        "POST",
        FAILURE,
        headers=DD,
        body={"data": {"attributes": {"services": ["x"], "started_at": DAY, "name": "second", "id": gid}}},
    )
    assert again.status in (200, 409), again.body
    assert get_failure(api, gid).body["data"]["attributes"]["name"] == "first"


def test_an_id_equal_to_a_native_generated_deployment_id_never_overwrites_it(api: Api) -> None:
    native = api.call(
        "POST",
        "/api/{spaceId}/deployments",
        path_params=SP,
        key=ADMIN_KEY,
        body={"project": "native-app", "environment": "production", "finished_at": DAY + 5 * HOUR, "version": "n1"},
    )
    nid = native.body["id"]
    again = raw_deploy(api, base(2, id=nid, service="intruder", version="second"))
    assert again.status in (200, 409), again.body
    after = api.call(
        "GET", "/api/{spaceId}/deployments/{deploymentId}", path_params={**SP, "deploymentId": nid}, key=ADMIN_KEY
    )
    assert (after.body["project"], after.body.get("version")) == ("native-app", "n1"), after.body


def _patch(api: Api, deployment_id: str, attributes: Any) -> HttpResult:
    return api.call(
        "PATCH",
        "/api/v2/dora/deployments/{deployment_id}",
        path_params={"deployment_id": deployment_id},
        body={"data": {"attributes": attributes}},
        headers=DD,
    )


def test_remediation_by_self_earlier_or_unknown_is_a_400_at_its_field(api: Api) -> None:
    first = raw_deploy(api, base(1, version="1.0")).body["data"]["id"]
    second = raw_deploy(api, base(2, version="1.1")).body["data"]["id"]
    json_api_error(
        _patch(api, second, {"remediation": {"id": second, "type": "rollback"}}), 400, "/data/attributes/remediation/id"
    )
    json_api_error(
        _patch(api, second, {"remediation": {"id": first, "type": "rollback"}}), 400, "/data/attributes/remediation/id"
    )
    json_api_error(
        _patch(api, first, {"remediation": {"id": "no-such-deployment-x", "type": "rollback"}}),
        400,
        "/data/attributes/remediation/id",
    )


@pytest.mark.parametrize("raw", ["", "{", "[]", "null"])
def test_non_json_patch_bodies_are_a_json_api_400(api: Api, raw: str) -> None:
    first = raw_deploy(api, base(1)).body["data"]["id"]
    result = api.call(
        "PATCH",
        "/api/v2/dora/deployments/{deployment_id}",
        path_params={"deployment_id": first},
        raw_body=raw,
        headers=DD,
    )
    json_api_error(result, 400)


def test_patch_by_version_of_a_deleted_deployment_is_404(api: Api) -> None:
    first = raw_deploy(api, base(1, version="9.9")).body["data"]["id"]
    api.call("DELETE", "/api/v2/dora/deployment/{deployment_id}", path_params={"deployment_id": first}, headers=DD)
    result = api.call(
        "PATCH",
        "/api/v2/dora/deployments",
        headers=DD,
        body={
            "data": {"attributes": {"service": "shop", "env": "production", "version": "9.9", "change_failure": True}}
        },
    )
    json_api_error(result, 404)


def test_patch_of_a_native_deployment_works(api: Api) -> None:
    native = api.call(
        "POST",
        "/api/{spaceId}/deployments",
        path_params=SP,
        key=ADMIN_KEY,
        body={"project": "shop", "environment": "production", "finished_at": DAY + 5 * HOUR},
    )
    result = _patch(api, native.body["id"], {"change_failure": True})
    assert result.status == 202, result.body


@pytest.mark.parametrize(
    ("attributes", "pointer"),
    [
        ({"service": "shop", "started_at": DAY}, "/data/attributes/finished_at"),
        ({**base(), "service": None}, "/data/attributes/service"),
        ({**base(), "git": {"commit_sha": "zz", "repository_url": REPO}}, "/data/attributes/git/commit_sha"),
        ({**base(), "git": {"commit_sha": SHA}}, "/data/attributes/git/repository_url"),
        ({**base(), "custom_tags": ["a:b", "nokey"]}, "/data/attributes/custom_tags/1"),
        ({**base(), "started_at": DAY + 2 * HOUR}, "/data/attributes/started_at"),
        ({**base(), "id": "short"}, "/data/attributes/id"),
    ],
)
def test_deployment_errors_point_at_the_field(api: Api, attributes: dict[str, Any], pointer: str) -> None:
    json_api_error(raw_deploy(api, attributes), 400, pointer)


def test_failure_without_services_points_at_services(api: Api) -> None:
    result = api.call("POST", FAILURE, headers=DD, body={"data": {"attributes": {"started_at": DAY}}})
    json_api_error(result, 400, "/data/attributes/services")


def _incidents(api: Api) -> Any:
    body = summary(api)
    return body.get("time_to_restore"), body.get("change_failure_rate"), body.get("recovery_time")


def test_a_deleted_failure_leaves_the_summary_at_the_next_recompute(api: Api, dora: Any, lambda_context: Any) -> None:
    dd_deploy(dora, 1, version="1.0")
    scheduled_run(lambda_context)
    empty = _incidents(api)
    failure = dd_fail(dora, 2, finished_at=(DAY + 3 * HOUR) * 10**9, version="1.0")
    scheduled_run(lambda_context)
    with_failure = _incidents(api)
    assert with_failure != empty, with_failure
    dora.delete_dora_failure(failure)
    scheduled_run(lambda_context)
    assert _incidents(api) == empty


def test_a_deleted_failure_without_a_cause_leaves_the_summary(api: Api, dora: Any, lambda_context: Any) -> None:
    dd_deploy(dora, 1, version="1.0")
    scheduled_run(lambda_context)
    empty = _incidents(api)
    failure = dd_fail(dora, 2, service="other", finished_at=(DAY + 3 * HOUR) * 10**9)
    scheduled_run(lambda_context)
    with_failure = _incidents(api)
    dora.delete_dora_failure(failure)
    scheduled_run(lambda_context)
    assert _incidents(api) == empty, (empty, with_failure, _incidents(api))


def test_a_deleted_deployment_leaves_the_summary_at_the_next_recompute(
    api: Api, dora: Any, lambda_context: Any
) -> None:
    first = dd_deploy(dora, 1, version="1.0")
    dd_deploy(dora, 2, version="1.1")
    scheduled_run(lambda_context)
    assert summary(api)["change_failure_rate"]["deployments"] == 2
    dora.delete_dora_deployment(first)
    scheduled_run(lambda_context)
    assert summary(api)["change_failure_rate"]["deployments"] == 1


def _override(api: Api, deployment_id: str) -> Any:
    native = api.call(
        "GET",
        "/api/{spaceId}/deployments/{deploymentId}",
        path_params={**SP, "deploymentId": deployment_id},
        key=ADMIN_KEY,
    )
    assert native.status == 200, native.body
    return native.body.get("change_failure_override")


def test_patch_by_version_names_in_another_case_find_the_deployment(api: Api) -> None:
    first = raw_deploy(api, base(1, version="1.0")).body["data"]["id"]
    result = api.call(
        "PATCH",
        "/api/v2/dora/deployments",
        headers=DD,
        body={
            "data": {"attributes": {"service": "SHOP", "env": "Production", "version": "1.0", "change_failure": True}}
        },
    )
    assert result.status == 202, result.body
    assert _override(api, first) is True


def test_patch_by_version_patches_the_latest_with_that_version(api: Api) -> None:
    first = raw_deploy(api, base(1, version="1.0")).body["data"]["id"]
    raw_deploy(api, base(2, version="1.1"))
    third = raw_deploy(api, base(3, version="1.0")).body["data"]["id"]
    result = api.call(
        "PATCH",
        "/api/v2/dora/deployments",
        headers=DD,
        body={
            "data": {"attributes": {"service": "shop", "env": "production", "version": "1.0", "change_failure": True}}
        },
    )
    assert result.status == 202, result.body
    assert (_override(api, first), _override(api, third)) == (None, True)


def test_patch_by_version_without_env_uses_the_default_environment(api: Api) -> None:
    first = raw_deploy(api, {"service": "shop", "started_at": DAY, "finished_at": DAY + 60, "version": "2.0"}).body[
        "data"
    ]["id"]
    raw_deploy(api, {**base(2, version="2.0"), "env": "staging"})
    result = api.call(
        "PATCH",
        "/api/v2/dora/deployments",
        headers=DD,
        body={"data": {"attributes": {"service": "shop", "version": "2.0", "change_failure": True}}},
    )
    assert result.status == 202, result.body
    assert _override(api, first) is True


def test_retry_with_version_empty_vs_left_out_is_the_same_request(api: Api) -> None:
    attrs = base(1, id="empty-version-000001")
    assert raw_deploy(api, attrs).status == 200
    again = raw_deploy(api, {**attrs, "version": ""})
    assert again.status == 200, again.body


def test_retry_with_an_unknown_attribute_is_the_same_request(api: Api) -> None:
    attrs = base(1, id="unknown-attr-0000001")
    assert raw_deploy(api, attrs).status == 200
    again = raw_deploy(api, {**attrs, "new_datadog_field": {"x": 1}})
    assert again.status == 200, again.body


NAMES = st.text(min_size=1, max_size=40)


def _trims(text: str) -> set[str]:
    return {text, text.strip(), text.strip(" \t\n\r\x0b\x0c")}


_IDS: list[int] = []


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    service=NAMES,
    env=NAMES,
    team=NAMES,
    version=st.text(max_size=30),
    tags=st.lists(st.tuples(NAMES, NAMES).map(lambda kv: f"{kv[0]}:{kv[1]}"), max_size=5),
    start=st.integers(min_value=0, max_value=86400),
    scale=st.sampled_from([1, 1000, 10**9]),
)
def test_any_text_round_trips_or_is_a_400_and_retries_are_idempotent(
    api: Api, service: str, env: str, team: str, version: str, tags: list[str], start: int, scale: int
) -> None:
    _IDS.append(1)
    event_id = f"roundtrip-{len(_IDS):08d}"
    attrs = {
        "service": service,
        "env": env,
        "team": team,
        "version": version,
        "custom_tags": tags,
        "id": event_id,
        "started_at": (DAY + start) * scale,
        "finished_at": (DAY + 86400) * scale,
    }
    result = raw_deploy(api, attrs)
    assert result.status in (200, 400), (result.status, result.body)
    if result.status == 400:
        json_api_error(result, 400)
        return
    again = raw_deploy(api, attrs)
    assert again.status == 200 and again.body == result.body, (again.status, again.body)
    shown = get_dd(api, event_id)
    assert shown.status == 200, shown.body
    got = shown.body["data"]["attributes"]
    assert got["custom_tags"] == tags
    assert got["service"] in _trims(service) and got["team"] in _trims(team) and got["env"] in _trims(env), got
    assert (got.get("version") or "") in _trims(version), got
    patched = (
        api.call(
            "PATCH",
            "/api/v2/dora/deployments",
            headers=DD,
            body={"data": {"attributes": {"service": service, "env": env, "version": version, "change_failure": True}}},
        )
        if got.get("version")
        else None
    )
    if patched is not None:
        assert patched.status == 202, (patched.status, patched.body)
    deleted = api.call(
        "DELETE", "/api/v2/dora/deployment/{deployment_id}", path_params={"deployment_id": event_id}, headers=DD
    )
    assert deleted.status == 202, deleted.body


def test_client_custom_tags_none_is_accepted(api: Api, dora: Any) -> None:
    first = dd_deploy(dora, 1, custom_tags=None)
    assert list(dora.get_dora_deployment(first).data.attributes.custom_tags) == []
    failure = dd_fail(dora, 1, custom_tags=None)
    assert list(dora.get_dora_failure(failure).data.attributes.custom_tags) == []


def test_failure_open_then_same_id_with_finished_at(api: Api) -> None:
    """Records what happens when a tool re-sends an open failure's id with its end (Datadog is silent)."""
    open_body = {"services": ["shop"], "started_at": DAY, "id": "open-then-closed-001"}
    assert api.call("POST", FAILURE, headers=DD, body={"data": {"attributes": open_body}}).status == 200
    closed = api.call(
        "POST", FAILURE, headers=DD, body={"data": {"attributes": {**open_body, "finished_at": DAY + HOUR}}}
    )
    assert closed.status in (200, 409), closed.body
    if closed.status == 409:
        json_api_error(closed, 409, "/data/attributes/id")
