"""A repository-only deployment (DX mode 1, METRICS §5 rule 4) is attributed from pull_request
webhooks alone: their ``repository.default_branch`` teaches the default branch (no push needed),
and learning it wakes the deployments that waited for the repository, through the retry queue's
real SQS event shape."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from tests.conftest import ADMIN_KEY, Api, Aws
from tests.support.events import load_event
from tests.support.lambdas import invoke
from tests.support.native import attribution_of

SPACE = "Spaces-1"
SECRET = "It's a Secret to Everybody"
REPO = "acme/shop"


@pytest.fixture
def hooked(api: Api, store: Any) -> Api:
    """The API with the space's GitHub webhook secret set."""
    from dora_insights.logic import spaces

    path, body = {"spaceId": SPACE}, {"secret": SECRET}
    set_secret = api.call("PUT", "/api/{spaceId}/webhooks/github", path_params=path, body=body, key=ADMIN_KEY)
    assert set_secret.status == 200, set_secret.body
    spaces.clear_cache()
    return api


def _deliver(api: Api, event: str, payload: dict[str, Any], delivery: str) -> Any:
    from dora_insights.dialects.github import sign

    raw = json.dumps(payload)
    headers = {
        "x-github-event": event,
        "x-github-delivery": delivery,
        "x-hub-signature-256": sign(SECRET, raw.encode()),
        "user-agent": "GitHub-Hookshot/044aadd",
    }
    route = "/webhooks/github/{spaceId}"
    result = api.call("POST", route, path_params={"spaceId": SPACE}, raw_body=raw, headers=headers)
    assert result.status < 300, result.body
    return result


def _merged_pull_request(number: int, base: str, created_at: str, merged_at: str) -> dict[str, Any]:
    """GitHub's ``pull_request`` closed+merged payload (events/) for another pull request."""
    payload = load_event("github_pull_request_merged.json")
    pr = payload["pull_request"]
    payload["number"] = pr["number"] = number
    pr["id"] = 1497468000 + number
    pr["created_at"] = created_at
    pr["merged_at"] = pr["closed_at"] = merged_at
    pr["merge_commit_sha"] = f"{number:040x}"
    pr["head"]["sha"] = f"{number + 1000:040x}"
    pr["head"]["ref"] = f"feature-{number}"
    pr["base"]["ref"] = base
    return payload


def _dx_repository_only(api: Api, deployed_at: str, reference_id: str) -> dict[str, Any]:
    """DX ``deployments.create`` naming a repository and no commit (mode 1)."""
    body = {"reference_id": reference_id, "deployed_at": deployed_at, "service": "shop", "repository": REPO}
    created = api.call("POST", "/api/deployments.create", body=body, key=ADMIN_KEY)
    assert created.status == 200, created.body
    return created.body["deployment"]  # type: ignore[no-any-return]


def _drain(aws: Aws, lambda_context: Any) -> int:
    """Deliver every retry message visible now to the queue's function, in the SQS event shape,
    until none is left; how many were delivered (delayed messages stay in the queue)."""
    sqs = boto3.client("sqs")
    template = load_event("AttributionRetryFunction.json")["Records"][0]
    delivered = 0
    while messages := sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages", []):
        records = [
            {**template, "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]}
            for m in messages
        ]
        assert invoke("AttributionRetryFunction", {"Records": records}, lambda_context) == {"batchItemFailures": []}
        for m in messages:  # what Lambda's event source mapping does after a successful batch
            sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=m["ReceiptHandle"])
        delivered += len(records)
    return delivered


def test_pull_request_webhooks_alone_resolve_a_pending_repository_only_deployment(
    hooked: Api, aws: Aws, lambda_context: Any
) -> None:
    # Given the stream's previous deployment (no code data) and a DX repository-only deployment
    earlier = hooked.call(
        "POST",
        "/api/{spaceId}/deployments",
        path_params={"spaceId": SPACE},
        body={"project": "shop", "environment": "production", "finished_at": "2024-03-01T08:00:00Z"},
        key=ADMIN_KEY,
    )
    assert earlier.status == 201, earlier.body
    deployment = _dx_repository_only(hooked, "2024-03-01T12:00:00Z", "mode-1")
    assert attribution_of(hooked, deployment["id"])["state"] == "Pending"  # nothing known of acme/shop yet

    # When merged pull requests arrive by webhook, and no push at all
    for number, base, created_at, merged_at in [
        (41, "main", "2024-02-27T09:00:00Z", "2024-03-01T09:00:00Z"),
        (42, "main", "2024-02-28T09:00:00Z", "2024-03-01T10:40:00Z"),
        (43, "develop", "2024-02-20T09:00:00Z", "2024-03-01T11:00:00Z"),
        (44, "main", "2024-02-29T09:00:00Z", "2024-03-01T13:00:00Z"),
    ]:
        _deliver(hooked, "pull_request", _merged_pull_request(number, base, created_at, merged_at), f"d-{number}")
    assert _drain(aws, lambda_context) >= 1  # the deployment was woken at once, not left to its delayed retry

    # Then it ships the pull requests merged into the default branch since the previous
    # deployment, up to its own finish (METRICS §5 rule 4): not develop's, not the later one
    attribution = attribution_of(hooked, deployment["id"])
    assert (attribution["state"], attribution["mode"]) == ("Resolved", "Repository")
    assert [pr["number"] for pr in attribution["pull_requests"]] == [41, 42]
    assert attribution["change_started_at"] == "2024-02-27T09:00:00.000Z"
    assert attribution["commits"] == []  # no push: the merge commits were never seen on a branch

    # And the next repository-only deployment resolves at ingest with what is not deployed yet
    later = _dx_repository_only(hooked, "2024-03-01T14:00:00Z", "mode-1-later")
    later_attribution = attribution_of(hooked, later["id"])
    assert later_attribution["state"] == "Resolved"
    assert [pr["number"] for pr in later_attribution["pull_requests"]] == [44]


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("deployment_status", "github_deployment_status.json"),
        ("pull_request", "github_pull_request_merged.json"),
        ("ping", "github_deployment_status.json"),
    ],
)
def test_a_default_branch_named_by_any_webhook_wakes_the_deployments_waiting_for_the_repository(
    hooked: Api, aws: Aws, lambda_context: Any, event: str, payload: str
) -> None:
    # Given a pending repository-only deployment, its pull request known from the native
    # changes API (which names no default branch): still pending after the wake that brought it
    deployment = _dx_repository_only(hooked, "2024-03-01T12:00:00Z", "mode-1")
    changes = {
        "pull_requests": [
            {
                "repository": REPO,
                "number": 42,
                "base_ref": "main",
                "created_at": "2024-02-28T09:00:00Z",
                "merged_at": "2024-03-01T10:40:00Z",
                "merge_commit_sha": f"{42:040x}",
            }
        ]
    }
    route = "/api/{spaceId}/changes"
    recorded = hooked.call("POST", route, path_params={"spaceId": SPACE}, body=changes, key=ADMIN_KEY)
    assert recorded.status == 200, recorded.body
    assert _drain(aws, lambda_context) == 1
    assert attribution_of(hooked, deployment["id"])["state"] == "Pending"

    # When a webhook that stores nothing (an in-progress status, an opened pull request, a
    # repository hook's ping) names the repository's default branch
    body = load_event(payload)
    if event == "deployment_status":
        body["deployment_status"]["state"] = "in_progress"
    elif event == "pull_request":
        body["action"] = "opened"
        body["pull_request"] |= {"number": 77, "id": 77, "merged": False, "merged_at": None}
    else:
        body = {"zen": "Design for failure.", "hook_id": 1, "repository": body["repository"]}
    assert _deliver(hooked, event, body, "d-default").status in (200, 202)

    # Then the deployment is re-tried at once and resolves by rule 4
    assert _drain(aws, lambda_context) == 1
    attribution = attribution_of(hooked, deployment["id"])
    assert (attribution["state"], attribution["mode"]) == ("Resolved", "Repository")
    assert [pr["number"] for pr in attribution["pull_requests"]] == [42]
