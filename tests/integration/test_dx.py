"""DX Deployments API (reference: dx-deployments-api.txt) through the real HTTP event shape, against moto."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ADMIN_KEY, Api, Aws, Clock
from tests.support.native import read_deployment
from tests.support.retries import settle

CREATE = "/api/deployments.create"
UPSERT = "/api/deployments.upsert"
PULLS = "/api/deployments.setPullServices"
BACKFILL = "/api/deployments.backfill"
SHA = "66adc9350f2cc9b250b69abddab733dd55e1a588"


def curl_body(**overrides: Any) -> dict[str, Any]:
    """The reference's curl example."""
    body: dict[str, Any] = {
        "reference_id": "globally-unique-identifier",
        "deployed_at": 1680723287,
        "service": "my_service",
        "commit_sha": "d1a34f0",
        "repository": "my_org/payment_api",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def post(api: Api, route: str, body: Any, **kwargs: Any) -> Any:
    if isinstance(body, str):
        return api.call("POST", route, raw_body=body, key=kwargs.pop("key", ADMIN_KEY), **kwargs)
    return api.call("POST", route, body=body, key=kwargs.pop("key", ADMIN_KEY), **kwargs)


def test_reference_curl_example_creates_a_deployment(api: Api) -> None:
    result = post(api, CREATE, curl_body())
    assert result.status == 200, result.body
    assert result.body["ok"] is True
    deployment = result.body["deployment"]
    assert deployment["reference_id"] == "globally-unique-identifier"
    assert deployment["service"] == "my_service"
    assert deployment["deployed_at"] == 1680723287
    assert deployment["environment"] == "production"
    assert deployment["success"] is True
    assert deployment["commit_sha"] == "d1a34f0"
    assert deployment["repository"] == "my_org/payment_api"


def test_created_deployment_looks_like_a_native_one(api: Api) -> None:
    created = post(api, CREATE, curl_body(success=False, metadata={"version": "v1.11.23"})).body["deployment"]
    native = api.call(
        "GET",
        "/api/{spaceId}/deployments/{deploymentId}",
        path_params={"spaceId": "Spaces-1", "deploymentId": created["id"]},
        key=ADMIN_KEY,
    )
    assert native.status == 200
    assert native.body["source"] == "dx"
    assert native.body["project"] == "my_service"
    assert native.body["state"] == "Failed"
    assert native.body["finished_at"] == "2023-04-05T19:34:47.000Z"
    assert native.body["metadata"] == {"version": "v1.11.23"}


def test_github_actions_example_sends_deployed_at_as_a_string(api: Api) -> None:
    # jq --arg makes every value a string: {service, repository, commit_sha, deployed_at: "<ts>"}
    body = {"service": "My service", "repository": "acme/shop", "commit_sha": SHA, "deployed_at": "1709294400"}
    result = post(api, CREATE, body)
    assert result.status == 200, result.body
    assert result.body["deployment"]["deployed_at"] == 1709294400
    assert result.body["deployment"]["reference_id"]  # a new UUID when none is sent


def test_same_reference_id_and_values_answers_the_same_deployment(api: Api) -> None:
    first = post(api, CREATE, curl_body()).body["deployment"]
    again = post(api, CREATE, curl_body())
    assert again.status == 200
    assert again.body["deployment"]["id"] == first["id"]


def test_same_reference_id_with_other_values_is_reference_id_exists(api: Api) -> None:
    post(api, CREATE, curl_body())
    result = post(api, CREATE, curl_body(service="other"))
    assert result.status == 409
    assert result.body == {"ok": False, "error": "reference_id_exists", "message": result.body["message"]}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (curl_body(deployed_at=None), "required_params_missing"),
        (curl_body(service=None), "required_params_missing"),
        (curl_body(service="  "), "required_params_missing"),
        (curl_body(repository=None), "required_params_missing"),
        (curl_body(commit_sha="abc12"), "commit_sha_invalid"),
        (curl_body(commit_sha="a" * 41), "commit_sha_invalid"),
        (curl_body(commit_sha="not-hex!"), "commit_sha_invalid"),
        (curl_body(metadata=["a"]), "metadata_invalid"),
        (curl_body(metadata={"bad key": 1}), "metadata_invalid"),
        (curl_body(merge_commit_shas=[SHA]), "ambiguous_commit_sha_arguments"),
        (curl_body(commit_sha=None, merge_commit_shas=[]), "merge_commit_shas_blank"),
        (curl_body(commit_sha=None, merge_commit_shas=["", " "]), "merge_commit_shas_blank"),
        (curl_body(commit_sha=None, merge_commit_shas=["a0e61d"]), "merge_commit_shas_invalid"),
        (curl_body(commit_sha=None, merge_commit_shas="a0e61dfff93b"), "merge_commit_shas_invalid"),
        (curl_body(integration_branch=" "), "integration_branch_not_valid"),
        (curl_body(commit_sha=None, integration_branch="develop"), "integration_branch_not_valid"),
        (curl_body(repository="no-slash"), "repository_not_found"),
        (curl_body(deployed_at="yesterday"), "invalid_arguments"),
        (curl_body(success="maybe"), "invalid_arguments"),
    ],
)
def test_every_reference_error_code_is_answered(api: Api, body: dict[str, Any], code: str) -> None:
    result = post(api, CREATE, body)
    assert result.status in (400, 404), result.body
    assert result.body["ok"] is False
    assert result.body["error"] == code, result.body
    assert result.body["message"]


def test_repository_not_found_is_a_404(api: Api) -> None:
    assert post(api, CREATE, curl_body(repository="no-slash")).status == 404


@pytest.mark.parametrize("raw", ["{not json", "[]", '"text"', ""])
def test_unparseable_body_is_invalid_json(api: Api, raw: str) -> None:
    result = post(api, CREATE, raw)
    assert result.status == 400
    assert result.body["error"] == "invalid_json"


def test_missing_key_is_not_authed_and_unknown_key_is_invalid_auth(api: Api) -> None:
    missing = api.call("POST", CREATE, body=curl_body())
    assert missing.status == 401
    assert missing.body["error"] == "not_authed"
    assert missing.body["ok"] is False
    invalid = api.call("POST", CREATE, body=curl_body(), key="nope")
    assert invalid.status == 401
    assert invalid.body["error"] == "invalid_auth"


def test_integration_branch_equal_to_the_default_branch_is_not_valid(api: Api) -> None:
    changes = {
        "commits": [
            {"repository": "acme/shop", "branch": "main", "default_branch": "main", "sha": SHA, "timestamp": 1709290000}
        ]
    }
    assert (
        api.call(
            "POST", "/api/{spaceId}/changes", path_params={"spaceId": "Spaces-1"}, body=changes, key=ADMIN_KEY
        ).status
        == 200
    )
    body = curl_body(repository="acme/shop", commit_sha=SHA, integration_branch="main")
    result = post(api, CREATE, body)
    assert result.body["error"] == "integration_branch_not_valid"
    assert (
        post(api, CREATE, curl_body(repository="acme/shop", commit_sha=SHA, integration_branch="develop")).status == 200
    )


def test_old_merge_commit_shas_not_known_yet_are_accepted_and_attributed_once_they_arrive(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """DX answers ``merge_commit_shas_not_found``; here attribution waits 3 days from arrival whatever the
    deployment's date (METRICS §5), so an old deployment whose pull request is imported after it is
    accepted and ships it (before: refused, so a history backfilled before its code data was lost)."""
    old = int((clock.now - timedelta(days=10)).timestamp())
    stale = post(api, CREATE, curl_body(reference_id="r2", commit_sha=None, deployed_at=old, merge_commit_shas=[SHA]))
    assert stale.status == 200, stale.body
    pr = {
        "repository": "my_org/payment_api",
        "number": 7,
        "base_ref": "main",
        "merge_commit_sha": SHA,
        "created_at": old - 3600,
        "merged_at": old - 60,
    }
    imported = api.call(
        "POST",
        "/api/{spaceId}/changes",
        path_params={"spaceId": "Spaces-1"},
        body={"pull_requests": [pr]},
        key=ADMIN_KEY,
    )
    assert imported.status == 200, imported.body
    settle(aws, clock, lambda_context)
    attributed = read_deployment(api, stale.body["deployment"]["id"])["attribution"]
    assert attributed["state"] == "Resolved", attributed
    assert [p["number"] for p in attributed["pull_requests"]] == [7], attributed


def test_upsert_creates_then_replaces_in_place(api: Api) -> None:
    first = post(api, UPSERT, curl_body())
    assert first.status == 200, first.body
    replaced = post(api, UPSERT, curl_body(service="payments", success=False))
    assert replaced.status == 200, replaced.body
    assert replaced.body["deployment"]["id"] == first.body["deployment"]["id"]
    assert replaced.body["deployment"]["service"] == "payments"
    assert replaced.body["deployment"]["success"] is False
    listed = api.call("GET", "/api/{spaceId}/deployments", path_params={"spaceId": "Spaces-1"}, key=ADMIN_KEY).body
    assert [d["project"] for d in listed["items"]] == ["payments"]
    # create with the same reference_id now answers the replaced deployment
    assert (
        post(api, CREATE, curl_body(service="payments", success=False)).body["deployment"]["id"]
        == first.body["deployment"]["id"]
    )


def test_upsert_needs_a_reference_id(api: Api) -> None:
    result = post(api, UPSERT, curl_body(reference_id=None))
    assert result.body["error"] == "required_params_missing"


def test_set_pull_services_reference_example_before_the_pull_request_is_known(api: Api) -> None:
    result = post(api, PULLS, {"github_pull_id": 1497468863, "services": ["serviceA", "other-service"]})
    assert result.status == 200, result.body
    assert result.body["ok"] is True
    assert result.body["pull_request"]["placeholder"] is True
    assert result.body["pull_request"]["services"] == ["serviceA", "other-service"]


def test_set_pull_services_monorepo_workflow_sends_strings(api: Api) -> None:
    # jq --arg github_pull_id ... --arg services '[svc-a svc-b]'
    result = post(api, PULLS, {"github_pull_id": "1497468863", "services": "[svc-a svc-b]"})
    assert result.status == 200, result.body
    assert result.body["pull_request"]["services"] == ["svc-a", "svc-b"]


def test_set_pull_services_by_repository_and_number(api: Api) -> None:
    result = post(api, PULLS, {"repository": "acme/shop", "pull_number": 3, "services": ["service_a"]})
    assert result.status == 200, result.body
    assert result.body["pull_request"] == {
        "github_pull_id": None,
        "repository": "acme/shop",
        "pull_number": 3,
        "services": ["service_a"],
        "placeholder": True,
    }


@pytest.mark.parametrize(
    ("body", "code", "status"),
    [
        ({"services": ["a"]}, "required_params_missing", 400),
        ({"github_pull_id": 1}, "required_params_missing", 400),
        ({"repository": "acme/shop", "services": ["a"]}, "required_params_missing", 400),
        ({"repository": "nope", "pull_number": 1, "services": ["a"]}, "repo_not_found", 404),
        ({"github_pull_id": "x", "services": ["a"]}, "invalid_arguments", 400),
    ],
)
def test_set_pull_services_errors(api: Api, body: dict[str, Any], code: str, status: int) -> None:
    result = post(api, PULLS, body)
    assert (result.status, result.body["error"]) == (status, code)


def test_set_pull_services_invalid_json(api: Api) -> None:
    assert post(api, PULLS, "{oops").body["error"] == "invalid_json"


CSV = (
    "reference_id,deployed_at,service,repository,commit_sha,merge_commit_shas,success,metadata\n"
    'bf-1,1709200000,shop,acme/shop,66adc93,,true,"{""version"": ""1.0""}"\n'
    ",1709210000,shop,acme/shop,,,false,\n"
    "bf-3,1709220000,,acme/shop,,,,\n"
    "bf-4,1709230000,billing,,,,,\n"
)


def test_backfill_gives_per_row_results(api: Api) -> None:
    result = post(api, BACKFILL, CSV, headers={"content-type": "text/csv"})
    assert result.status == 200, result.body
    body = result.body
    assert (body["created"], body["unchanged"], body["failed"]) == (3, 0, 1)
    rows = {r["row"]: r for r in body["results"]}
    assert rows[2]["deployment"]["reference_id"] == "bf-1"
    assert rows[2]["deployment"]["metadata"] == {"version": "1.0"}
    assert rows[3]["deployment"]["reference_id"].startswith("row-")
    assert rows[3]["deployment"]["success"] is False
    assert rows[4] == {
        "row": 4,
        "ok": False,
        "created": None,
        "deployment": None,
        "error": "required_params_missing",
        "message": rows[4]["message"],
    }


def test_backfill_twice_changes_nothing(api: Api) -> None:
    first = post(api, BACKFILL, CSV, headers={"content-type": "text/csv"}).body
    second = post(api, BACKFILL, CSV, headers={"content-type": "text/csv"}).body
    assert (second["created"], second["unchanged"], second["failed"]) == (0, 3, 1)
    ids = lambda b: [r["deployment"]["id"] for r in b["results"] if r["ok"]]  # noqa: E731
    assert ids(first) == ids(second)
    listed = api.call("GET", "/api/{spaceId}/deployments", path_params={"spaceId": "Spaces-1"}, key=ADMIN_KEY).body
    assert len(listed["items"]) == 3


def test_backfill_never_replaces_history(api: Api) -> None:
    post(api, CREATE, curl_body(reference_id="bf-1"))
    result = post(api, BACKFILL, CSV, headers={"content-type": "text/csv"}).body
    row = next(r for r in result["results"] if r["row"] == 2)
    assert row["error"] == "reference_id_exists"


@pytest.mark.parametrize(("raw", "code"), [("", "required_params_missing"), ("a,b\n1,2\n", "required_params_missing")])
def test_backfill_without_the_required_columns(api: Api, raw: str, code: str) -> None:
    result = post(api, BACKFILL, raw, headers={"content-type": "text/csv"})
    assert result.status == 400
    assert result.body["error"] == code


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=45),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)
create_bodies = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(
        (
            "deployed_at",
            "service",
            "repository",
            "commit_sha",
            "merge_commit_shas",
            "reference_id",
            "metadata",
            "integration_branch",
            "success",
            "environment",
            "source_url",
        ),
        json_values,
    ),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=create_bodies)
def test_fuzzed_create_bodies_never_give_a_5xx(api: Api, body: dict[str, Any]) -> None:
    result = post(api, CREATE, json.dumps(body))
    assert result.status < 500, (body, result.body)
    assert result.body["ok"] is (result.status == 200)
