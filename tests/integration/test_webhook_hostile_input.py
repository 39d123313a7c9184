"""Hostile values in the code hosts' webhooks (GitHub, GitLab): refs that look like refs twice over,
numbers DynamoDB cannot hold, names too wide for a key or only white space. Each is either stored as
what it names or refused with a 400 in the webhooks' native shape (``{"message", "errors"}``, naming the
field) before anything is written, never a 500 and never a write of part of the delivery."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api
from tests.support.events import load_event
from tests.support.fixtures import GITHUB_SECRET
from tests.support.lambdas import invoke
from tests.support.table import scan

SP = {"spaceId": "Spaces-1"}
GITHUB_REPO = "acme/shop"
GITLAB_REPO = "acme/platform/checkout"
TOO_MANY_DIGITS = "1" * 39  # a JSON string pydantic reads as an int: DynamoDB numbers hold 38 digits
# 200 characters, 400 bytes of UTF-8; case-folded each is three characters, 1,200 bytes: past a key's limit
EXPANDING = "\u0390" * 200


def github_deliver(api: Api, event: str, payload: dict[str, Any], *, delivery: str = "d-1") -> tuple[int, Any]:
    from dora_insights.dialects.github import sign

    raw = json.dumps(payload)
    headers = {
        "x-github-event": event,
        "x-github-delivery": delivery,
        "x-hub-signature-256": sign(GITHUB_SECRET, raw.encode()),
    }
    result = api.call("POST", "/webhooks/github/{spaceId}", path_params=SP, raw_body=raw, headers=headers)
    return result.status, result.body


GITLAB_EVENTS = {
    "push": "GitlabWebhookFunction.json",
    "merge_request": "GitlabWebhookFunction-merge_request.json",
    "deployment": "GitlabWebhookFunction-deployment.json",
}


def gitlab_payload(kind: str) -> dict[str, Any]:
    return json.loads(load_event(GITLAB_EVENTS[kind])["body"])  # type: ignore[no-any-return]


def gitlab_deliver(kind: str, payload: dict[str, Any], context: Any) -> tuple[int, Any]:
    event = load_event(GITLAB_EVENTS[kind])
    event["body"] = json.dumps(payload)
    result = invoke("GitlabWebhookFunction", event, context)
    return result["statusCode"], json.loads(result["body"])


def refused_naming(status: int, body: Any, field: str) -> bool:
    """A 400 in the native shape whose message names ``field`` first."""
    return status == 400 and set(body) == {"message", "errors"} and body["message"].startswith(f"{field}: ")


def branches(store: Any, repository: str) -> set[str]:
    """The branches the repository's stored commits are on."""
    from dora_insights.dal import keys

    return {str(item["branch"]) for item in store.query_all(partition=keys.commits_pk("Spaces-1", repository))}


# --- 1. a ref's branch is stripped of refs/heads/ exactly once ---------------------------------


def _github_push(api: Api, ref: str) -> tuple[int, Any]:
    return github_deliver(api, "push", load_event("github_push.json") | {"ref": ref})


def _gitlab_push(ref: str, context: Any) -> tuple[int, Any]:
    return gitlab_deliver("push", gitlab_payload("push") | {"ref": ref}, context)


def test_a_github_push_to_a_branch_named_like_a_ref_keeps_its_own_branch(github_hooked: Api, store: Any) -> None:
    status, body = _github_push(github_hooked, "refs/heads/refs/heads/main")  # the branch named "refs/heads/main"

    assert status == 200, body
    assert body["commits"] == {"received": 2, "stored": 2}
    assert "main" not in branches(store, GITHUB_REPO)  # another branch's commits: attribution would read them

    from dora_insights.dal.code import CodeStore
    from dora_insights.domain.changes import branch_named

    branch = branch_named("refs/heads/main")
    assert branches(store, GITHUB_REPO) == {branch}
    stored = CodeStore(store, "Spaces-1").commits_in_range(GITHUB_REPO, branch, None, 10, 10)
    assert [c.branch for c in stored] == [branch, branch]  # read back as the same branch
    # a pull request merged into that branch (GitHub's ``base.ref`` is the bare name) joins the same branch
    pr = load_event("github_pull_request_merged.json")
    pr["pull_request"]["base"]["ref"] = "refs/heads/main"
    status, body = github_deliver(github_hooked, "pull_request", pr, delivery="d-2")
    assert status == 200, body
    assert body["pull_request"]["base_ref"] == branch


def test_a_gitlab_push_to_a_branch_named_like_a_ref_keeps_its_own_branch(
    gitlab_hooked: None, store: Any, lambda_context: Any
) -> None:
    status, body = _gitlab_push("refs/heads/refs/heads/main", lambda_context)

    assert status == 200, body
    assert "main" not in branches(store, GITLAB_REPO)

    from dora_insights.domain.changes import branch_named

    assert branches(store, GITLAB_REPO) == {branch_named("refs/heads/main")}


@pytest.mark.parametrize("host", ["github", "gitlab"])
def test_a_push_to_the_branch_named_refs_heads_is_stored_on_that_branch(
    host: str, github_hooked: Api, gitlab_hooked: None, store: Any, lambda_context: Any
) -> None:
    ref = "refs/heads/refs/heads/"  # refs/heads/ stripped once leaves "refs/heads/", not an empty name
    status, body = _github_push(github_hooked, ref) if host == "github" else _gitlab_push(ref, lambda_context)

    from dora_insights.domain.changes import branch_named

    assert status == 200, body
    assert branches(store, GITHUB_REPO if host == "github" else GITLAB_REPO) == {branch_named("refs/heads/")}


@pytest.mark.parametrize("ref", ["refs/heads/", "refs/heads/   "])
@pytest.mark.parametrize("host", ["github", "gitlab"])
def test_a_push_to_a_blank_branch_is_a_400_naming_ref_and_writes_nothing(
    host: str, ref: str, github_hooked: Api, gitlab_hooked: None, aws: Any, lambda_context: Any
) -> None:
    before = scan(aws)

    status, body = _github_push(github_hooked, ref) if host == "github" else _gitlab_push(ref, lambda_context)

    assert refused_naming(status, body, "ref"), (status, body)
    assert scan(aws) == before


def test_native_changes_keep_reading_a_full_ref_as_its_branch(api: Api, store: Any) -> None:
    commit = {"repository": "acme/shop", "sha": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "timestamp": 1709290000}
    body = {
        "commits": [
            commit | {"branch": "refs/heads/main"},
            commit | {"branch": "refs/heads/refs/heads/main"},  # the branch named "refs/heads/main", as pushed
        ]
    }

    result = api.call("POST", "/api/{spaceId}/changes", path_params=SP, body=body, key=ADMIN_KEY)

    assert result.status == 200, result.body
    assert len(branches(store, GITHUB_REPO)) == 2

    from dora_insights.domain.changes import branch_named

    assert branches(store, GITHUB_REPO) == {"main", branch_named("refs/heads/main")}


# --- 2. integers DynamoDB cannot store ---------------------------------------------------------


@pytest.mark.parametrize("field", ["number", "id"])
def test_a_github_pull_request_number_or_id_past_38_digits_is_a_400_and_writes_nothing(
    field: str, github_hooked: Api, aws: Any
) -> None:
    payload = load_event("github_pull_request_merged.json")
    payload["pull_request"][field] = TOO_MANY_DIGITS
    before = scan(aws)

    status, body = github_deliver(github_hooked, "pull_request", payload)

    assert refused_naming(status, body, f"pull_request.{field}"), (status, body)
    assert scan(aws) == before


def test_a_gitlab_merge_request_iid_past_38_digits_is_a_400_and_writes_nothing(
    gitlab_hooked: None, aws: Any, lambda_context: Any
) -> None:
    payload = gitlab_payload("merge_request")
    payload["object_attributes"]["iid"] = TOO_MANY_DIGITS
    before = scan(aws)

    status, body = gitlab_deliver("merge_request", payload, lambda_context)

    assert refused_naming(status, body, "object_attributes.iid"), (status, body)
    assert scan(aws) == before


# --- 3. a refused deployment learns nothing ----------------------------------------------------


def test_a_refused_github_deployment_status_stores_no_repository(github_hooked: Api, aws: Any, store: Any) -> None:
    from dora_insights.dal.code import CodeStore

    payload = load_event("github_deployment_status.json")
    payload["deployment"]["environment"] = EXPANDING
    before = scan(aws)

    status, body = github_deliver(github_hooked, "deployment_status", payload)

    assert refused_naming(status, body, "deployment.environment"), (status, body)
    assert CodeStore(store, "Spaces-1").default_branch(GITHUB_REPO) is None
    assert scan(aws) == before


def test_a_refused_gitlab_deployment_stores_no_repository(
    gitlab_hooked: None, aws: Any, store: Any, lambda_context: Any
) -> None:
    from dora_insights.dal.code import CodeStore

    payload = gitlab_payload("deployment") | {"environment": EXPANDING}
    before = scan(aws)

    status, body = gitlab_deliver("deployment", payload, lambda_context)

    assert refused_naming(status, body, "environment"), (status, body)
    assert CodeStore(store, "Spaces-1").default_branch(GITLAB_REPO) is None
    assert scan(aws) == before


def test_an_accepted_deployment_still_teaches_the_default_branch(
    github_hooked: Api, gitlab_hooked: None, store: Any, lambda_context: Any
) -> None:
    from dora_insights.dal.code import CodeStore

    status, body = github_deliver(github_hooked, "deployment_status", load_event("github_deployment_status.json"))
    assert status == 201, body
    status, body = gitlab_deliver("deployment", gitlab_payload("deployment"), lambda_context)
    assert status == 201, body

    code = CodeStore(store, "Spaces-1")
    assert (code.default_branch(GITHUB_REPO), code.default_branch(GITLAB_REPO)) == ("main", "main")


# --- 4. names that are only white space --------------------------------------------------------


@pytest.mark.parametrize(
    ("part", "field"),
    [("deployment", "environment"), ("repository", "name")],
)
def test_a_github_deployment_with_a_blank_name_is_a_400_and_writes_nothing(
    part: str, field: str, github_hooked: Api, aws: Any
) -> None:
    payload = load_event("github_deployment_status.json")
    payload[part][field] = "   "
    before = scan(aws)

    status, body = github_deliver(github_hooked, "deployment_status", payload)

    assert refused_naming(status, body, f"{part}.{field}"), (status, body)
    assert scan(aws) == before


def test_a_github_deployment_payload_service_is_the_project_as_checked(github_hooked: Api) -> None:
    payload = load_event("github_deployment_status.json")
    payload["deployment"]["payload"] = {"service": "  checkout-api  "}
    status, body = github_deliver(github_hooked, "deployment_status", payload)
    assert status == 201, body
    assert body["deployment"]["project"] == "checkout-api"


def test_a_gitlab_deployment_to_a_blank_environment_is_a_400_and_writes_nothing(
    gitlab_hooked: None, aws: Any, lambda_context: Any
) -> None:
    payload = gitlab_payload("deployment") | {"environment": "   "}
    before = scan(aws)

    status, body = gitlab_deliver("deployment", payload, lambda_context)

    assert refused_naming(status, body, "environment"), (status, body)
    assert scan(aws) == before
