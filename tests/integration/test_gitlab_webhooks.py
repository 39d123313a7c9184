"""GitLab webhooks through the recorded API Gateway events (events/GitlabWebhookFunction*.json).

The payloads have the shapes of GitLab's documentation ("Webhook events": Push Hook, Merge
Request Hook, Deployment Hook) with values forming one story: a push of a feature commit and
its merge commit to ``main`` of ``acme/platform/checkout``, the merge request (iid 7) merged by
that merge commit, then a successful deployment of the merge commit to production.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import boto3
import pytest

from tests.conftest import ADMIN_KEY, NOW, Api, Clock
from tests.support.events import load_event
from tests.support.lambdas import invoke
from tests.support.native import read_deployment

SP = {"spaceId": "Spaces-1"}
TOKEN = "local-gitlab-token-0123456789"
REPO = "acme/platform/checkout"
FEATURE = "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327"
MERGE = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
EVENTS = {
    "push": "GitlabWebhookFunction.json",
    "merge_request": "GitlabWebhookFunction-merge_request.json",
    "deployment": "GitlabWebhookFunction-deployment.json",
}
_UNSET: Any = object()


@pytest.fixture
def hooked(api: Api, store: Any) -> Api:
    from dora_insights.logic import admin, spaces

    admin.set_gitlab_token(store, "Spaces-1", TOKEN)
    spaces.clear_cache()
    return api


def payload(kind: str) -> dict[str, Any]:
    """The documented payload of ``kind`` (a fresh copy)."""
    return json.loads(load_event(EVENTS[kind])["body"])  # type: ignore[no-any-return]


def deliver(
    kind: str,
    body: Any = _UNSET,
    *,
    context: Any,
    headers: Mapping[str, str | None] | None = None,
    space: str = "Spaces-1",
) -> tuple[int, Any]:
    """POST the recorded delivery of ``kind`` (its body, headers replaced or removed with None)."""
    event = load_event(EVENTS[kind])
    if body is not _UNSET:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    for name, value in (headers or {}).items():
        if value is None:
            event["headers"].pop(name.lower(), None)
        else:
            event["headers"][name.lower()] = value
    event["pathParameters"] = {"spaceId": space}
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/webhooks/gitlab/{space}"
    result = invoke("GitlabWebhookFunction", event, context)
    return result["statusCode"], json.loads(result["body"])


# --- the token and the admin route ------------------------------------------------------------


def test_the_admin_route_generates_a_token_shown_once_and_stores_only_its_hash(api: Api, store: Any) -> None:
    from dora_insights.domain.ids import sha256_hex

    route = "/api/{spaceId}/webhooks/gitlab"
    generated = api.call("PUT", route, path_params=SP, body={}, key=ADMIN_KEY)
    assert generated.status == 200, generated.body
    token = generated.body["secret"]
    assert token.startswith("glwh_") and len(token) > 40
    item = store.get_space("Spaces-1", consistent=True)
    assert item.gitlab_token_hash == sha256_hex(token)
    bodiless = api.call("PUT", route, path_params=SP, key=ADMIN_KEY)  # no body: generated too
    assert bodiless.body["secret"] not in (None, token)
    chosen = api.call("PUT", route, path_params=SP, body={"secret": TOKEN}, key=ADMIN_KEY)
    assert chosen.body == {"space_id": "Spaces-1", "configured": True, "secret": None}  # never echoed
    assert store.get_space("Spaces-1", consistent=True).gitlab_token_hash == sha256_hex(TOKEN)
    assert TOKEN not in json.dumps(store.get_space("Spaces-1", consistent=True).__dict__, default=str)


def test_the_admin_route_refuses_short_tokens_unknown_spaces_and_callers_without_the_admin_scope(api: Api) -> None:
    route = "/api/{spaceId}/webhooks/gitlab"
    short = api.call("PUT", route, path_params=SP, body={"secret": "short"}, key=ADMIN_KEY)
    assert short.status == 400
    assert set(short.body) == {"message", "errors"}
    assert api.call("PUT", route, path_params={"spaceId": "Spaces-99"}, body={}, key=ADMIN_KEY).status == 404
    assert api.call("PUT", route, path_params=SP, body={}).status == 401
    ci = api.call(
        "POST",
        "/api/{spaceId}/apikeys",
        path_params=SP,
        body={"name": "ci", "scopes": ["deployments:write"]},
        key=ADMIN_KEY,
    )
    assert api.call("PUT", route, path_params=SP, body={}, key=ci.body["key"]).status == 403


def test_wrong_missing_token_unknown_space_and_space_without_token_are_the_same_401(
    hooked: Api, store: Any, lambda_context: Any
) -> None:
    from dora_insights.logic import admin

    wrong = deliver("push", context=lambda_context, headers={"X-Gitlab-Token": TOKEN + "x"})
    missing = deliver("push", context=lambda_context, headers={"X-Gitlab-Token": None})
    unknown = deliver("push", context=lambda_context, space="Spaces-99")
    admin.ensure_space(store, "Spaces-2", "No token", NOW)
    untokened = deliver("push", context=lambda_context, space="Spaces-2")
    assert {wrong[0], missing[0], unknown[0], untokened[0]} == {401}
    assert wrong[1] == missing[1] == unknown[1] == untokened[1]
    assert "X-Gitlab-Token" in wrong[1]["message"]


def test_a_rotated_token_takes_effect_at_once(hooked: Api, lambda_context: Any) -> None:
    assert deliver("push", context=lambda_context)[0] == 200
    rotated = hooked.call("PUT", "/api/{spaceId}/webhooks/gitlab", path_params=SP, body={}, key=ADMIN_KEY)
    new = rotated.body["secret"]
    assert deliver("push", context=lambda_context, headers={"Idempotency-Key": "a-1"})[0] == 401
    assert deliver("push", context=lambda_context, headers={"Idempotency-Key": "a-1", "X-Gitlab-Token": new})[0] == 200


# --- push -------------------------------------------------------------------------------------


def test_push_hook_stores_the_commits_in_branch_order(hooked: Api, store: Any, lambda_context: Any) -> None:
    from dora_insights.dal.code import CodeStore

    status, body = deliver("push", context=lambda_context)
    assert status == 200, body
    assert body["commits"] == {"received": 2, "stored": 2}
    code = CodeStore(store, "Spaces-1")
    assert code.default_branch(REPO) == "main"
    commits = code.commits_in_range(REPO, "main", None, 10, 100)
    assert [c.sha for c in commits] == [MERGE, FEATURE]  # newest first
    assert commits[1].timestamp == "2024-03-01T08:15:00.000Z"  # 09:15+01:00 in UTC
    assert commits[1].position < commits[0].position


def test_a_push_larger_than_gitlab_sends_says_how_many_commits_were_left_out(
    hooked: Api, lambda_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """GitLab sends the newest 20 commits of a push and counts them all in ``total_commits_count``: the
    answer (shown in GitLab's webhook log) and a warning say how many were never sent, so never stored."""
    body = payload("push")
    assert deliver("push", {**body, "total_commits_count": 2}, context=lambda_context)[1]["commits"] == {
        "received": 2,
        "stored": 2,
    }
    assert not [r for r in caplog.records if hasattr(r, "not_sent")]
    status, answer = deliver(
        "push", {**body, "total_commits_count": 45}, context=lambda_context, headers={"Idempotency-Key": "big"}
    )
    assert (status, answer["commits"]) == (200, {"received": 2, "stored": 0, "not_sent": 43})
    warnings = [r for r in caplog.records if hasattr(r, "not_sent")]
    assert [(w.levelname, vars(w)["not_sent"], vars(w)["branch"]) for w in warnings] == [("WARNING", 43, "main")]


def test_redelivery_is_idempotent_by_idempotency_key_else_event_uuid(
    hooked: Api, store: Any, lambda_context: Any
) -> None:
    from dora_insights.dal.code import CodeStore

    assert deliver("push", context=lambda_context)[0] == 200
    status, again = deliver("push", context=lambda_context)  # GitLab's retry: the same Idempotency-Key
    assert (status, again) == (200, {"message": "delivery already processed", "duplicate": True})
    uuid_only = {"Idempotency-Key": None, "X-Gitlab-Event-UUID": "5d6e7f80-1a2b-4c3d-9e4f-5a6b7c8d9e0f"}
    assert deliver("push", context=lambda_context, headers=uuid_only)[1]["commits"]["stored"] == 0
    assert deliver("push", context=lambda_context, headers=uuid_only)[1]["duplicate"] is True
    # the same commits in another delivery keep their positions
    assert deliver("push", context=lambda_context, headers={"Idempotency-Key": "other"})[1]["commits"]["stored"] == 0
    assert len(CodeStore(store, "Spaces-1").commits_in_range(REPO, "main", None, 100, 100)) == 2


def test_branch_deletions_tag_pushes_and_other_events_are_acknowledged_and_ignored(
    hooked: Api, lambda_context: Any
) -> None:
    deleted = payload("push") | {"after": "0" * 40, "commits": [], "total_commits_count": 0}
    status, body = deliver("push", deleted, context=lambda_context, headers={"Idempotency-Key": "del"})
    assert (status, body["message"]) == (202, "ignored: not a branch push")
    tag = payload("push") | {"object_kind": "tag_push", "ref": "refs/tags/v1.0.0", "commits": []}
    status, body = deliver("push", tag, context=lambda_context, headers={"X-Gitlab-Event": "Tag Push Hook"})
    assert (status, body["message"]) == (202, "ignored: event 'Tag Push Hook'")
    pipeline = {"object_kind": "pipeline", "object_attributes": {"id": 31, "status": "success"}}
    headers = {"X-Gitlab-Event": "Pipeline Hook", "Idempotency-Key": "pipe"}
    assert deliver("push", pipeline, context=lambda_context, headers=headers) == (
        202,
        {"message": "ignored: event 'Pipeline Hook'"},
    )


# --- merge requests ---------------------------------------------------------------------------


def test_merged_merge_request_is_stored_as_a_pull_request(hooked: Api, store: Any, lambda_context: Any) -> None:
    from dora_insights.dal.code import CodeStore

    status, body = deliver("merge_request", context=lambda_context)
    assert status == 200, body
    assert body["changed"] is True
    (pr,) = CodeStore(store, "Spaces-1").pull_requests_by_sha([MERGE[:7]], None)
    assert (pr.repository, pr.number, pr.base_ref) == (REPO, 7, "main")
    assert (pr.merge_commit_sha, pr.head_sha) == (MERGE, FEATURE)
    assert pr.created_at == "2024-03-01T08:30:00.000Z"
    assert pr.merged_at == "2024-03-01T10:40:02.000Z"  # the merge event's updated_at
    assert pr.github_id is None


def test_a_later_event_of_a_merged_merge_request_keeps_the_merge_time(
    hooked: Api, store: Any, lambda_context: Any
) -> None:
    from dora_insights.dal.code import CodeStore

    deliver("merge_request", context=lambda_context)
    later = payload("merge_request")
    later["object_attributes"] |= {"action": "update", "updated_at": "2024-03-02 09:00:00 UTC"}
    status, body = deliver("merge_request", later, context=lambda_context, headers={"Idempotency-Key": "label"})
    assert (status, body["changed"]) == (200, False)
    (pr,) = CodeStore(store, "Spaces-1").pull_requests_merged(REPO, "main", None, None)
    assert pr.merged_at == "2024-03-01T10:40:02.000Z"


def test_a_merged_merge_request_first_seen_after_its_merge_is_stored_by_its_update_time(
    hooked: Api, store: Any, lambda_context: Any
) -> None:
    from dora_insights.dal.code import CodeStore

    later = payload("merge_request")
    later["object_attributes"] |= {"action": "update", "updated_at": "2024-03-02 09:00:00 UTC"}
    assert deliver("merge_request", later, context=lambda_context)[0] == 200
    (pr,) = CodeStore(store, "Spaces-1").pull_requests_merged(REPO, "main", None, None)
    assert pr.merged_at == "2024-03-02T09:00:00.000Z"


def test_a_squash_merge_without_merge_commit_is_matched_by_its_squash_commit(
    hooked: Api, store: Any, lambda_context: Any
) -> None:
    from dora_insights.dal.code import CodeStore

    squashed = payload("merge_request")
    squashed["object_attributes"] |= {"merge_commit_sha": None, "squash_commit_sha": "c" * 40}
    assert deliver("merge_request", squashed, context=lambda_context)[0] == 200
    (pr,) = CodeStore(store, "Spaces-1").pull_requests_by_sha(["c" * 7], None)
    assert pr.merge_commit_sha == "c" * 40


def test_open_and_closed_merge_requests_are_acknowledged_and_not_stored(
    hooked: Api, store: Any, lambda_context: Any
) -> None:
    from dora_insights.dal.code import CodeStore

    opened = payload("merge_request")
    opened["object_attributes"] |= {"action": "open", "state": "opened", "merge_commit_sha": None}
    status, body = deliver("merge_request", opened, context=lambda_context)
    assert (status, body["message"]) == (202, "ignored: merge request open (not a merge)")
    closed = payload("merge_request")
    closed["object_attributes"] |= {"action": "close", "state": "closed", "merge_commit_sha": None}
    assert deliver("merge_request", closed, context=lambda_context, headers={"Idempotency-Key": "c"})[0] == 202
    assert CodeStore(store, "Spaces-1").pull_requests_merged(REPO, "main", None, None) == []


# --- deployments ------------------------------------------------------------------------------


def test_deployment_hook_success_becomes_a_deployment_once(hooked: Api, lambda_context: Any) -> None:
    status, body = deliver("deployment", context=lambda_context)
    assert status == 201, body
    deployment = body["deployment"]
    assert deployment["source"] == "gitlab"
    assert (deployment["project"], deployment["environment"], deployment["state"]) == (
        "checkout",
        "production",
        "Success",
    )
    assert deployment["commit_sha"] == MERGE  # the full sha of commit_url, not short_sha
    assert deployment["finished_at"] == "2024-03-01T11:50:00.000Z"  # 12:50 +0100
    assert deployment["source_url"] == "https://gitlab.example.com/acme/platform/checkout/-/jobs/796"
    # The same GitLab deployment in another delivery (a resend with a new id) is the same deployment.
    again_status, again = deliver("deployment", context=lambda_context, headers={"Idempotency-Key": "resent"})
    assert again_status == 200
    assert again["deployment"]["id"] == deployment["id"]


def test_failed_deployment_is_a_failed_deployment_and_running_or_canceled_are_ignored(
    hooked: Api, lambda_context: Any
) -> None:
    for n, gitlab_status in enumerate(("running", "canceled")):
        started = payload("deployment") | {"status": gitlab_status}
        answer = deliver("deployment", started, context=lambda_context, headers={"Idempotency-Key": f"s{n}"})
        assert answer == (202, {"message": f"ignored: deployment {gitlab_status}"})
    failed = payload("deployment") | {"status": "failed", "deployment_id": 16}
    status, body = deliver("deployment", failed, context=lambda_context)
    assert (status, body["deployment"]["state"]) == (201, "Failed")


def test_a_deployment_named_by_its_short_sha_only_keeps_the_prefix(hooked: Api, lambda_context: Any) -> None:
    short = payload("deployment") | {"commit_url": None}
    status, body = deliver("deployment", short, context=lambda_context)
    assert (status, body["deployment"]["commit_sha"]) == (201, MERGE[:8])


# --- bad input --------------------------------------------------------------------------------


def test_malformed_payloads_and_headers_are_400s_in_the_native_shape(hooked: Api, lambda_context: Any) -> None:
    bad_commit = payload("push")
    bad_commit["commits"][0]["id"] = "zz"
    status, body = deliver("push", bad_commit, context=lambda_context)
    assert status == 400
    assert set(body) == {"message", "errors"}
    no_commit = payload("deployment") | {"commit_url": None, "short_sha": None}
    assert deliver("deployment", no_commit, context=lambda_context)[0] == 400
    bad_time = payload("merge_request")
    bad_time["object_attributes"]["created_at"] = "yesterday"
    assert deliver("merge_request", bad_time, context=lambda_context)[0] == 400
    assert deliver("push", "[1, 2]", context=lambda_context)[0] == 400
    assert deliver("push", context=lambda_context, headers={"X-Gitlab-Event": None})[0] == 400
    bad_key = deliver("push", context=lambda_context, headers={"Idempotency-Key": "not a key!"})
    assert bad_key[0] == 400
    assert "Idempotency-Key" in bad_key[1]["message"]


# --- attribution and the summary --------------------------------------------------------------


def _summary(api: Api) -> dict[str, Any]:
    result = api.call(
        "GET",
        "/api/{spaceId}/summary",
        path_params=SP,
        query={"from": "2024-03-01T00:00:00Z", "to": "2024-03-02T00:00:00Z", "environment": "production"},
        key=ADMIN_KEY,
    )
    assert result.status == 200, result.body
    return result.body  # type: ignore[no-any-return]


def _recompute(lambda_context: Any) -> dict[str, Any]:
    return invoke("RecomputeFunction", load_event("RecomputeFunction.json"), lambda_context)  # type: ignore[no-any-return]


def test_push_merge_then_deployment_is_attributed_and_its_lead_time_reaches_the_summary(
    hooked: Api, clock: Clock, lambda_context: Any
) -> None:
    assert deliver("push", context=lambda_context)[0] == 200
    assert deliver("merge_request", context=lambda_context)[0] == 200
    status, body = deliver("deployment", context=lambda_context)
    assert status == 201, body
    found = read_deployment(hooked, body["deployment"]["id"])
    attribution = found["attribution"]
    assert attribution["state"] == "Resolved"
    assert attribution["commits"] == [MERGE]  # a first deployment ships its own change
    assert [(pr["repository"], pr["number"]) for pr in attribution["pull_requests"]] == [(REPO, 7)]
    assert attribution["change_started_at"] == "2024-03-01T08:30:00.000Z"  # the merge request's creation
    assert found["figures"]["lead_time_seconds"] == 12000.0  # 08:30 to 11:50
    _recompute(lambda_context)
    lead = _summary(hooked)["lead_time"]
    assert (lead["count"], lead["median_seconds"]) == (1, 12000.0)


def test_a_second_deployment_ships_the_commits_and_merge_requests_since_the_first(
    hooked: Api, clock: Clock, lambda_context: Any
) -> None:
    for kind in ("push", "merge_request", "deployment"):
        assert deliver(kind, context=lambda_context)[0] < 300
    fix, merge = "1" * 40, "2" * 40
    push = payload("push") | {"before": MERGE, "after": merge, "checkout_sha": merge}
    push["commits"] = [
        push["commits"][0] | {"id": fix, "timestamp": "2024-03-01T11:00:00Z"},
        push["commits"][1] | {"id": merge, "timestamp": "2024-03-01T11:30:00Z"},
    ]
    assert deliver("push", push, context=lambda_context, headers={"Idempotency-Key": "push-2"})[0] == 200
    mr = payload("merge_request")
    mr["object_attributes"] |= {
        "id": 100,
        "iid": 8,
        "created_at": "2024-03-01 10:55:00 UTC",
        "updated_at": "2024-03-01 11:30:01 UTC",
        "merge_commit_sha": merge,
        "last_commit": mr["object_attributes"]["last_commit"] | {"id": fix},
    }
    assert deliver("merge_request", mr, context=lambda_context, headers={"Idempotency-Key": "mr-2"})[0] == 200
    deployment = payload("deployment") | {
        "deployment_id": 16,
        "status_changed_at": "2024-03-01 11:55:00 UTC",
        "short_sha": merge[:8],
        "commit_url": f"https://gitlab.example.com/acme/platform/checkout/-/commit/{merge}",
    }
    status, body = deliver("deployment", deployment, context=lambda_context, headers={"Idempotency-Key": "dep-2"})
    assert status == 201, body
    attribution = read_deployment(hooked, body["deployment"]["id"])["attribution"]
    assert (attribution["state"], attribution["mode"]) == ("Resolved", "CommitSha")
    assert sorted(attribution["commits"]) == [fix, merge]  # git log first..second
    assert [pr["number"] for pr in attribution["pull_requests"]] == [8]


def test_a_deployment_before_its_code_data_is_attributed_when_the_push_and_merge_arrive(
    hooked: Api, clock: Clock, lambda_context: Any
) -> None:
    status, body = deliver("deployment", context=lambda_context)
    assert status == 201
    assert read_deployment(hooked, body["deployment"]["id"])["attribution"]["state"] == "Pending"
    deliver("push", context=lambda_context)  # wakes the deployment waiting for its commit
    deliver("merge_request", context=lambda_context)
    _drain_retries(lambda_context)
    attribution = read_deployment(hooked, body["deployment"]["id"])["attribution"]
    assert attribution["state"] == "Resolved"
    assert MERGE in attribution["commits"]


def _drain_retries(lambda_context: Any) -> None:
    """Deliver the retry queue's visible messages to its function, as SQS would."""
    sqs = boto3.client("sqs")
    template = load_event("AttributionRetryFunction.json")["Records"][0]
    while True:
        messages = sqs.receive_message(QueueUrl=os.environ["RETRY_QUEUE_URL"], MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return
        records = [
            {**template, "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]}
            for m in messages
        ]
        assert invoke("AttributionRetryFunction", {"Records": records}, lambda_context) == {"batchItemFailures": []}
