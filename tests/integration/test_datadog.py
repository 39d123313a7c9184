"""Datadog DORA dialect through the real HTTP API event shape, against moto (reference:
datadog-dora-deployment-event-api.txt)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ADMIN_KEY, NOW, Api

DEPLOYMENT = "/api/v2/dora/deployment"
FAILURE = "/api/v2/dora/failure"
INCIDENT = "/api/v2/dora/incident"
NATIVE = "/api/{spaceId}/deployments"
SP = {"spaceId": "Spaces-1"}
DD = {"DD-API-KEY": ADMIN_KEY}
SHA = "66adc9350f2cc9b250b69abddab733dd55e1a588"
REPO_URL = "https://github.com/organization/example-repository"

# The reference's request examples, verbatim.
REFERENCE_EXAMPLE: dict[str, Any] = {
    "data": {
        "attributes": {
            "finished_at": 1693491984000000000,
            "git": {"commit_sha": SHA, "repository_url": REPO_URL},
            "service": "shopist",
            "started_at": 1693491974000000000,
            "version": "v1.12.07",
        }
    }
}
REFERENCE_CURL: dict[str, Any] = {
    "data": {
        "attributes": {
            "custom_tags": ["language:java", "department:engineering"],
            "env": "staging",
            "finished_at": 1693491984000000000,
            "git": {"commit_sha": SHA, "repository_url": REPO_URL},
            "service": "test-service",
            "started_at": 1693491974000000000,
            "team": "backend",
            "version": "v1.12.07",
        }
    }
}


def event(**attributes: Any) -> dict[str, Any]:
    body = copy.deepcopy(REFERENCE_EXAMPLE)
    for name, value in attributes.items():
        if value is None:
            body["data"]["attributes"].pop(name, None)
        else:
            body["data"]["attributes"][name] = value
    return body


def send(api: Api, body: Any = None, *, route: str = DEPLOYMENT, raw: str | None = None, headers: Any = DD) -> Any:
    return api.call("POST", route, body=body, raw_body=raw, headers=headers)


def native_list(api: Api, **query: str) -> list[dict[str, Any]]:
    result = api.call("GET", NATIVE, path_params=SP, query=query or None, key=ADMIN_KEY)
    assert result.status == 200, result.body
    return list(result.body["items"])


def pointers(result: Any) -> list[str]:
    return [e.get("source", {}).get("pointer") for e in result.body["errors"]]


def assert_bad_request(result: Any, pointer: str | None) -> None:
    assert result.status == 400, result.body
    for error in result.body["errors"]:
        assert error["status"] == "400"
        assert error["title"] == "Bad Request"
        assert error["detail"]
    if pointer is not None:
        assert pointer in pointers(result), result.body


# --- the reference's own examples ---------------------------------------------------------
def test_reference_example_answers_200_with_a_dora_deployment(api: Api) -> None:
    result = send(api, REFERENCE_EXAMPLE)
    assert result.status == 200, result.body
    assert result.body["data"]["type"] == "dora_deployment"
    assert set(result.body) == {"data"} and set(result.body["data"]) == {"id", "type"}
    stored = api.call(
        "GET", NATIVE + "/{deploymentId}", path_params={**SP, "deploymentId": result.body["data"]["id"]}, key=ADMIN_KEY
    )
    assert stored.status == 200
    deployment = stored.body
    assert deployment["source"] == "datadog"
    assert deployment["project"] == "shopist"
    assert deployment["environment"] == "production"  # no env: the space's default
    assert deployment["started_at"] == "2023-08-31T14:26:14.000Z"
    assert deployment["finished_at"] == "2023-08-31T14:26:24.000Z"
    assert deployment["commit_sha"] == SHA
    assert deployment["repository"] == "organization/example-repository"
    assert deployment["metadata"] == {"repository_url": REPO_URL}
    assert deployment["version"] == "v1.12.07"


def test_reference_curl_example_maps_env_team_and_tags(api: Api) -> None:
    result = send(api, REFERENCE_CURL)
    assert result.status == 200, result.body
    (deployment,) = native_list(api)
    assert deployment["project"] == "test-service"
    assert deployment["environment"] == "staging"
    assert deployment["team"] == "backend"
    assert deployment["project_group_id"] == "ProjectGroups-1"
    assert deployment["tags"] == ["language:java", "department:engineering"]
    assert deployment["tenant"] is None


def test_tenant_and_tenant_tag_custom_tags_map_to_tenant_and_octopus_tenant_tags(api: Api) -> None:
    tags = ["tenant:acme", "tenant_tag:Location/Europe", "repo:org/name"]
    assert send(api, event(custom_tags=tags)).status == 200
    (deployment,) = native_list(api)
    assert deployment["tenant"] == "acme"
    assert deployment["tenant_id"] == "Tenants-1"
    assert deployment["tenant_tags"] == ["Location/Europe"]
    assert deployment["tags"] == tags


@pytest.mark.parametrize("value", [1693491984, 1693491984000, 1693491984000000000])
def test_unix_seconds_milliseconds_and_nanoseconds_are_the_same_instant(api: Api, value: int) -> None:
    assert send(api, event(finished_at=value, started_at=value)).status == 200
    (deployment,) = native_list(api)
    assert deployment["finished_at"] == "2023-08-31T14:26:24.000Z"


# --- authentication -----------------------------------------------------------------------
def test_dd_api_key_header_authenticates_and_acts_in_the_keys_space(api: Api) -> None:
    assert send(api, REFERENCE_EXAMPLE, headers={"DD-API-KEY": ADMIN_KEY}).status == 200
    assert len(native_list(api)) == 1


def test_missing_key_is_401_in_json_api_shape(api: Api) -> None:
    result = send(api, REFERENCE_EXAMPLE, headers={})
    assert result.status == 401
    assert result.body["errors"][0]["status"] == "401"


def test_unknown_key_is_401(api: Api) -> None:
    assert send(api, REFERENCE_EXAMPLE, headers={"DD-API-KEY": "nope"}).status == 401


def test_key_without_write_scope_is_403(api: Api, store: Any) -> None:
    from dora_insights.logic import admin

    _, secret = admin.create_api_key(store, "Spaces-1", "reader", ("deployments:read",), NOW)
    result = send(api, REFERENCE_EXAMPLE, headers={"DD-API-KEY": secret})
    assert result.status == 403
    assert result.body["errors"][0]["status"] == "403"


def test_events_land_in_the_keys_own_space(api: Api, store: Any) -> None:
    from dora_insights.logic import admin

    other = admin.create_space(store, "Other", NOW)
    _, secret = admin.create_api_key(store, other.id, "ci", ("deployments:write", "deployments:read"), NOW)
    assert send(api, REFERENCE_EXAMPLE, headers={"DD-API-KEY": secret}).status == 200
    assert native_list(api) == []
    theirs = api.call("GET", NATIVE, path_params={"spaceId": other.id}, key=secret)
    assert len(theirs.body["items"]) == 1


# --- idempotency --------------------------------------------------------------------------
def test_same_id_twice_is_one_deployment(api: Api) -> None:
    body = event(id="deploy-2023-08-31-0001")
    first, second = send(api, body), send(api, body)
    assert (first.status, second.status) == (200, 200)
    assert first.body == second.body
    assert first.body["data"]["id"] == "deploy-2023-08-31-0001"
    assert len(native_list(api)) == 1


def test_same_id_with_different_content_is_409_in_json_api_shape(api: Api) -> None:
    assert send(api, event(id="deploy-2023-08-31-0001")).status == 200
    conflict = send(api, event(id="deploy-2023-08-31-0001", version="v2"))
    assert conflict.status == 409
    (error,) = conflict.body["errors"]
    assert error["status"] == "409"
    assert error["title"] == "Conflict"
    assert error["source"]["pointer"] == "/data/attributes/id"
    (deployment,) = native_list(api)
    assert deployment["version"] == "v1.12.07"


def test_without_an_id_every_event_is_stored_under_a_generated_id(api: Api) -> None:
    first, second = send(api, REFERENCE_EXAMPLE), send(api, REFERENCE_EXAMPLE)
    assert first.status == second.status == 200
    assert first.body["data"]["id"] != second.body["data"]["id"]
    assert len(native_list(api)) == 2


# --- every documented rule: 400 with the pointer naming the field ----------------------------
@pytest.mark.parametrize(
    ("attributes", "pointer"),
    [
        ({"service": None}, "/data/attributes/service"),
        ({"service": ""}, "/data/attributes/service"),
        ({"service": "   "}, "/data/attributes/service"),
        ({"service": 42}, "/data/attributes/service"),
        ({"finished_at": None}, "/data/attributes/finished_at"),
        ({"started_at": None}, "/data/attributes/started_at"),
        ({"finished_at": "1693491984"}, "/data/attributes/finished_at"),
        ({"finished_at": 1693491984.5}, "/data/attributes/finished_at"),
        ({"finished_at": True}, "/data/attributes/finished_at"),
        ({"finished_at": -5}, "/data/attributes/finished_at"),
        ({"finished_at": 0}, "/data/attributes/finished_at"),
        ({"finished_at": 2**63}, "/data/attributes/finished_at"),
        ({"finished_at": 10**19 - 1 + 10**19}, "/data/attributes/finished_at"),
        ({"started_at": 1693491994, "finished_at": 1693491984}, "/data/attributes/started_at"),
        ({"id": "too-short"}, "/data/attributes/id"),
        ({"id": "x" * 129}, "/data/attributes/id"),
        ({"id": "has spaces in it!!"}, "/data/attributes/id"),
        ({"id": "slash/not/allowed/here"}, "/data/attributes/id"),
        ({"id": 1234567890123456789}, "/data/attributes/id"),
        ({"git": {"commit_sha": SHA}}, "/data/attributes/git/repository_url"),
        ({"git": {"repository_url": REPO_URL}}, "/data/attributes/git/commit_sha"),
        ({"git": {"commit_sha": "not-a-sha", "repository_url": REPO_URL}}, "/data/attributes/git/commit_sha"),
        ({"git": {"commit_sha": SHA, "repository_url": "not a url"}}, "/data/attributes/git/repository_url"),
        ({"git": "main"}, "/data/attributes/git"),
        ({"custom_tags": [f"k{i}:v" for i in range(101)]}, "/data/attributes/custom_tags"),
        ({"custom_tags": ["language:java", "no-colon"]}, "/data/attributes/custom_tags/1"),
        ({"custom_tags": [":value"]}, "/data/attributes/custom_tags/0"),
        ({"custom_tags": ["key:"]}, "/data/attributes/custom_tags/0"),
        ({"custom_tags": [7]}, "/data/attributes/custom_tags/0"),
        ({"custom_tags": "language:java"}, "/data/attributes/custom_tags"),
        ({"custom_tags": ["tenant:a", "tenant:b"]}, "/data/attributes/custom_tags"),
        ({"custom_tags": ["tenant_tag:NoSlash"]}, "/data/attributes/custom_tags"),
        ({"env": ""}, "/data/attributes/env"),
        ({"env": ["prod"]}, "/data/attributes/env"),
        ({"team": {"name": "x"}}, "/data/attributes/team"),
        ({"version": 12}, "/data/attributes/version"),
    ],
)
def test_invalid_attribute_is_400_with_its_pointer(api: Api, attributes: dict[str, Any], pointer: str) -> None:
    assert_bad_request(send(api, event(**attributes)), pointer)
    assert native_list(api) == []


def test_every_problem_is_listed_with_its_own_pointer(api: Api) -> None:
    result = send(api, {"data": {"attributes": {"started_at": 1}}})
    assert_bad_request(result, None)
    assert {"/data/attributes/service", "/data/attributes/finished_at"} <= set(pointers(result))


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({}, "/data"),
        ({"data": {}}, "/data/attributes"),
        ({"data": []}, "/data"),
        ({"data": {"attributes": "x"}}, "/data/attributes"),
    ],
)
def test_broken_envelope_is_400_with_its_pointer(api: Api, body: Any, pointer: str) -> None:
    assert_bad_request(send(api, body), pointer)


@pytest.mark.parametrize("raw", ["{not json", "", "[]", "null", "42", '"text"'])
def test_invalid_json_or_a_non_object_body_is_400(api: Api, raw: str) -> None:
    assert_bad_request(send(api, raw=raw), None)


def test_bad_request_leaves_nothing_written(api: Api) -> None:
    send(api, event(service=None, id="deploy-2023-08-31-0001"))
    assert send(api, event(id="deploy-2023-08-31-0001")).status == 200
    assert len(native_list(api)) == 1


# --- failures and the legacy incident alias -------------------------------------------------
FAILURE_EVENT: dict[str, Any] = {
    "data": {
        "attributes": {
            "services": ["shopist"],
            "env": "prod",
            "name": "Webserver is down failing all requests",
            "severity": "High",
            "started_at": 1693491974000000000,
            "finished_at": 1693491984000000000,
            "git": {"commit_sha": SHA, "repository_url": REPO_URL},
            "team": "backend",
            "version": "v1.12.07",
        }
    }
}


def failures(api: Api) -> list[dict[str, Any]]:
    result = api.call("GET", "/api/{spaceId}/failures", path_params=SP, key=ADMIN_KEY)
    assert result.status == 200, result.body
    return list(result.body["items"])


@pytest.mark.parametrize("route", [FAILURE, INCIDENT])
def test_failure_event_answers_200_with_a_dora_failure(api: Api, route: str) -> None:
    result = send(api, FAILURE_EVENT, route=route)
    assert result.status == 200, result.body
    assert result.body["data"]["type"] == "dora_failure"
    (failure,) = failures(api)
    assert failure["id"] == result.body["data"]["id"]
    assert failure["source"] == "datadog"
    assert failure["projects"] == ["shopist"]
    assert failure["environment"] == "prod"
    assert failure["severity"] == "High"
    assert failure["started_at"] == "2023-08-31T14:26:14.000Z"
    assert failure["finished_at"] == "2023-08-31T14:26:24.000Z"
    assert failure["repository"] == "organization/example-repository"


def test_failure_with_service_and_no_finish_is_open_in_the_default_environment(api: Api) -> None:
    body = {"data": {"attributes": {"service": "shopist", "started_at": 1693491974}}}
    assert send(api, body, route=INCIDENT).status == 200
    (failure,) = failures(api)
    assert failure["finished_at"] is None
    assert failure["environment"] == "production"


def test_failure_same_id_is_idempotent_and_different_content_conflicts(api: Api) -> None:
    body = copy.deepcopy(FAILURE_EVENT)
    body["data"]["attributes"]["id"] = "incident-2023-08-31-42"
    first = send(api, body, route=FAILURE)
    assert first.status == 200
    assert first.body["data"]["id"] == "incident-2023-08-31-42"
    assert send(api, body, route=INCIDENT).body == first.body
    assert len(failures(api)) == 1
    body["data"]["attributes"]["severity"] = "Low"
    conflict = send(api, body, route=FAILURE)
    assert conflict.status == 409
    assert conflict.body["errors"][0]["source"]["pointer"] == "/data/attributes/id"


@pytest.mark.parametrize(
    ("attributes", "pointer"),
    [
        ({"services": None}, "/data/attributes/services"),
        ({"services": []}, "/data/attributes/services"),
        ({"services": [""]}, "/data/attributes/services/0"),
        ({"started_at": None}, "/data/attributes/started_at"),
        ({"started_at": "yesterday"}, "/data/attributes/started_at"),
        ({"finished_at": 1693491964000000000}, "/data/attributes/started_at"),
        ({"id": "short"}, "/data/attributes/id"),
        ({"custom_tags": ["nope"]}, "/data/attributes/custom_tags/0"),
        ({"git": {"commit_sha": SHA}}, "/data/attributes/git/repository_url"),
    ],
)
def test_invalid_failure_is_400_with_its_pointer(api: Api, attributes: dict[str, Any], pointer: str) -> None:
    body = copy.deepcopy(FAILURE_EVENT)
    for name, value in attributes.items():
        if value is None:
            body["data"]["attributes"].pop(name)
        else:
            body["data"]["attributes"][name] = value
    assert_bad_request(send(api, body, route=FAILURE), pointer)
    assert failures(api) == []


# --- never a 5xx ---------------------------------------------------------------------------
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from([SHA, REPO_URL, "tenant:acme", "tenant_tag:A/B", "k:v", "x" * 20, 1693491984000]),
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_FIELDS = ["service", "env", "team", "version", "id", "started_at", "finished_at", "git", "custom_tags"]


@st.composite
def _bodies(draw: st.DrawFn) -> Any:
    shape = draw(st.integers(0, 2))
    if shape == 0:
        return draw(_JSON)
    attributes = copy.deepcopy(REFERENCE_EXAMPLE["data"]["attributes"])
    for name in draw(st.lists(st.sampled_from(_FIELDS), max_size=4, unique=True)):
        if draw(st.booleans()):
            attributes.pop(name, None)
        else:
            attributes[name] = draw(_JSON)
    if shape == 2:
        attributes["git"] = draw(st.dictionaries(st.sampled_from(["commit_sha", "repository_url"]), _JSON))
    return {"data": {"attributes": attributes}}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_bodies())
def test_fuzzed_deployment_bodies_never_answer_5xx(api: Api, body: Any) -> None:
    result = send(api, raw=json.dumps(body))
    assert result.status < 500, (body, result.body)
    assert result.status in (200, 400, 409), (body, result.body)
    if result.status == 400:
        assert result.body["errors"][0]["status"] == "400"
