"""GitLab webhooks over HTTP against the local runtime: the token set by the admin route, a push, a
merged merge request and a deployment, ending in an attributed deployment whose lead time the
summary shows after the scheduled recompute."""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

import pytest
import requests

from dora_local.server import LocalRuntime
from tests.support.events import load_event

pytestmark = pytest.mark.e2e
TIMEOUT = 30
KINDS = {
    "push": ("GitlabWebhookFunction.json", "Push Hook"),
    "merge_request": ("GitlabWebhookFunction-merge_request.json", "Merge Request Hook"),
    "deployment": ("GitlabWebhookFunction-deployment.json", "Deployment Hook"),
}
OLD_PATH = "acme/platform/checkout"


def _story() -> tuple[str, str, dict[str, dict[str, Any]]]:
    """The documented payloads, moved to a project and commits of their own (the runtime is shared)."""
    run = secrets.token_hex(4)
    path = f"acme/gl-{run}/checkout-{run}"
    feature, merge = secrets.token_hex(20), secrets.token_hex(20)
    payloads = {}
    for kind, (name, _) in KINDS.items():
        text = load_event(name)["body"].replace(OLD_PATH, path)
        text = text.replace("b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327", feature)
        text = text.replace("da1560886d4f094c3e6c9ef40349f7d38b5d27d7", merge).replace("da156088", merge[:8])
        payloads[kind] = json.loads(text)
    return path, merge, payloads


def _post(local: LocalRuntime, kind: str, payload: Any, token: str, *, delivery: str) -> requests.Response:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitLab/17.9.0",
        "X-Gitlab-Event": KINDS[kind][1],
        "X-Gitlab-Token": token,
        "X-Gitlab-Event-UUID": str(uuid.uuid4()),
        "Idempotency-Key": delivery,
    }
    return requests.post(
        f"{local.url}/webhooks/gitlab/Spaces-1", data=json.dumps(payload), headers=headers, timeout=TIMEOUT
    )


def test_gitlab_deliveries_end_in_an_attributed_deployment_and_a_lead_time(
    local: LocalRuntime, http: requests.Session
) -> None:
    configured = http.put(f"{local.url}/api/Spaces-1/webhooks/gitlab", json={}, timeout=TIMEOUT)
    assert configured.status_code == 200, configured.text
    token = configured.json()["secret"]
    path, merge, payloads = _story()

    wrong = _post(local, "push", payloads["push"], token + "x", delivery=str(uuid.uuid4()))
    assert wrong.status_code == 401
    push_delivery = str(uuid.uuid4())
    pushed = _post(local, "push", payloads["push"], token, delivery=push_delivery)
    assert (pushed.status_code, pushed.json()["commits"]) == (200, {"received": 2, "stored": 2})
    again = _post(local, "push", payloads["push"], token, delivery=push_delivery)
    assert (again.status_code, again.json().get("duplicate")) == (200, True)
    merged = _post(local, "merge_request", payloads["merge_request"], token, delivery=str(uuid.uuid4()))
    assert merged.status_code == 200, merged.text
    deployed = _post(local, "deployment", payloads["deployment"], token, delivery=str(uuid.uuid4()))
    assert deployed.status_code == 201, deployed.text
    deployment = deployed.json()["deployment"]
    assert (deployment["source"], deployment["commit_sha"]) == ("gitlab", merge)

    found = http.get(f"{local.url}/api/Spaces-1/deployments/{deployment['id']}", timeout=TIMEOUT).json()
    attribution = found["attribution"]
    assert attribution["state"] == "Resolved"
    assert attribution["commits"] == [merge]
    assert [(pr["repository"], pr["number"]) for pr in attribution["pull_requests"]] == [(path, 7)]

    assert requests.post(f"{local.url}/_local/schedule/run", timeout=TIMEOUT).status_code == 200
    summary = http.get(
        f"{local.url}/api/Spaces-1/summary",
        params={
            "from": "2024-03-01T00:00:00Z",
            "to": "2024-03-02T00:00:00Z",
            "project": path.rsplit("/", 1)[-1],
            "environment": "production",
        },
        timeout=TIMEOUT,
    )
    assert summary.status_code == 200, summary.text
    lead = summary.json()["lead_time"]
    assert (lead["count"], lead["median_seconds"]) == (1, 12000.0)  # merge request opened 08:30, deployed 11:50
