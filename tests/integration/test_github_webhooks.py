"""GitHub webhooks with GitHub's real payload shapes (events/github_*.json), signed like GitHub signs them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api
from tests.support.events import load_event

ROUTE = "/webhooks/github/{spaceId}"
SP = {"spaceId": "Spaces-1"}
SECRET = "It's a Secret to Everybody"


@pytest.fixture
def hooked(api: Api, store: Any) -> Api:
    set_secret = api.call(
        "PUT", "/api/{spaceId}/webhooks/github", path_params=SP, body={"secret": SECRET}, key=ADMIN_KEY
    )
    assert set_secret.status == 200, set_secret.body
    from dora_insights.logic import spaces

    spaces.clear_cache()
    return api


def deliver(
    api: Api, event: str, payload: Any, *, delivery: str = "d-1", secret: str = SECRET, space: str = "Spaces-1"
) -> Any:
    from dora_insights.dialects.github import sign

    raw = json.dumps(payload)
    headers = {
        "x-github-event": event,
        "x-github-delivery": delivery,
        "x-hub-signature-256": sign(secret, raw.encode()),
        "user-agent": "GitHub-Hookshot/044aadd",
    }
    return api.call("POST", ROUTE, path_params={"spaceId": space}, raw_body=raw, headers=headers)


def test_ping_answers_200(hooked: Api) -> None:
    assert deliver(hooked, "ping", {"zen": "Design for failure.", "hook_id": 1}).status == 200


def test_bad_missing_signature_and_unknown_space_are_the_same_401(hooked: Api) -> None:
    bad = deliver(hooked, "ping", {"zen": "x"}, secret="wrong")
    assert bad.status == 401
    unsigned = hooked.call("POST", ROUTE, path_params=SP, raw_body="{}", headers={"x-github-event": "ping"})
    assert unsigned.status == 401
    unknown = deliver(hooked, "ping", {"zen": "x"}, space="Spaces-99")
    assert unknown.status == 401
    assert bad.body == unsigned.body == unknown.body


def test_push_stores_every_commit_in_branch_order(hooked: Api, store: Any) -> None:
    from dora_insights.dal.code import CodeStore

    result = deliver(hooked, "push", load_event("github_push.json"))
    assert result.status == 200, result.body
    assert result.body["commits"] == {"received": 2, "stored": 2}
    code = CodeStore(store, "Spaces-1")
    assert code.default_branch("acme/shop") == "main"
    commits = code.commits_in_range("acme/shop", "main", None, 10, 100)
    assert [c.sha[:7] for c in commits] == ["66adc93", "0d1a26e"]  # newest first
    assert commits[1].timestamp == "2024-03-01T09:15:00.000Z"
    assert [c.sha for c in code.commits_by_sha("acme/shop", ["66adc93"])] == [
        "66adc9350f2cc9b250b69abddab733dd55e1a588"
    ]


def test_redelivery_is_idempotent(hooked: Api, store: Any) -> None:
    from dora_insights.dal.code import CodeStore

    payload = load_event("github_push.json")
    assert deliver(hooked, "push", payload, delivery="abc").status == 200
    again = deliver(hooked, "push", payload, delivery="abc")
    assert again.status == 200
    assert again.body["duplicate"] is True
    # the same commits under another delivery id keep their positions
    assert deliver(hooked, "push", payload, delivery="other").body["commits"]["stored"] == 0
    assert len(CodeStore(store, "Spaces-1").commits_in_range("acme/shop", "main", None, 100, 100)) == 2


def test_push_with_300_commits_is_stored_without_loss(hooked: Api, store: Any) -> None:
    from dora_insights.dal.code import CodeStore

    payload = load_event("github_push.json")
    template = payload["commits"][0]
    payload["commits"] = [
        template | {"id": f"{n:040x}", "timestamp": f"2024-03-01T10:{n // 60:02d}:{n % 60:02d}Z"} for n in range(1, 301)
    ]
    payload["head_commit"] = payload["commits"][-1]  # as GitHub sends it: the branch's new head
    result = deliver(hooked, "push", payload)
    assert result.body["commits"] == {"received": 300, "stored": 300}
    commits = CodeStore(store, "Spaces-1").commits_in_range("acme/shop", "main", None, 10_000, 1000)
    assert len(commits) == 300
    assert [c.sha for c in reversed(commits)] == [f"{n:040x}" for n in range(1, 301)]


def test_merged_pull_request_is_stored_with_services_assigned_earlier(hooked: Api, store: Any) -> None:
    from dora_insights.dal.code import CodeStore

    dx = hooked.call(
        "POST",
        "/api/deployments.setPullServices",
        body={"github_pull_id": 1497468863, "services": ["checkout"]},
        key=ADMIN_KEY,
    )
    assert dx.body["pull_request"]["placeholder"] is True
    result = deliver(hooked, "pull_request", load_event("github_pull_request_merged.json"))
    assert result.status == 200, result.body
    (pr,) = CodeStore(store, "Spaces-1").pull_requests_by_sha(["66adc93"], None)
    assert pr.number == 42
    assert pr.services == ("checkout",)
    assert pr.base_ref == "main"
    assert pr.merged_at == "2024-03-01T10:40:00.000Z"
    again = hooked.call(
        "POST",
        "/api/deployments.setPullServices",
        body={"github_pull_id": 1497468863, "services": ["web"]},
        key=ADMIN_KEY,
    )
    assert again.body["pull_request"]["placeholder"] is False
    (pr,) = CodeStore(store, "Spaces-1").pull_requests_merged("acme/shop", "main", None, None)
    assert pr.services == ("web",)


def test_other_pull_request_actions_are_acknowledged(hooked: Api) -> None:
    payload = load_event("github_pull_request_merged.json")
    payload["action"] = "opened"
    assert deliver(hooked, "pull_request", payload).status == 202
    payload["action"] = "closed"
    payload["pull_request"]["merged"] = False
    payload["pull_request"]["merged_at"] = None
    assert deliver(hooked, "pull_request", payload, delivery="d-2").status == 202


def test_deployment_status_success_becomes_a_deployment(hooked: Api) -> None:
    result = deliver(hooked, "deployment_status", load_event("github_deployment_status.json"))
    assert result.status == 201, result.body
    deployment = result.body["deployment"]
    assert deployment["source"] == "github"
    assert deployment["project"] == "shop"
    assert deployment["environment"] == "production"
    assert deployment["state"] == "Success"
    assert deployment["commit_sha"] == "66adc9350f2cc9b250b69abddab733dd55e1a588"
    assert deployment["started_at"] == "2024-03-01T11:52:10.000Z"


def test_deployment_status_payload_service_and_failure(hooked: Api) -> None:
    payload = load_event("github_deployment_status.json")
    payload["deployment"]["payload"] = {"service": "checkout-api"}
    payload["deployment_status"]["state"] = "error"
    deployment = deliver(hooked, "deployment_status", payload).body["deployment"]
    assert (deployment["project"], deployment["state"]) == ("checkout-api", "Failed")


def test_pending_deployment_status_and_unknown_events_are_ignored(hooked: Api) -> None:
    payload = load_event("github_deployment_status.json")
    payload["deployment_status"]["state"] = "in_progress"
    assert deliver(hooked, "deployment_status", payload).status == 202
    assert deliver(hooked, "issues", {"action": "opened"}, delivery="d-3").status == 202


def test_malformed_signed_payload_is_a_400_in_the_native_shape(hooked: Api) -> None:
    result = deliver(hooked, "push", {"ref": "refs/heads/main", "commits": [{"id": "zz"}]})
    assert result.status == 400
    assert set(result.body) == {"message", "errors"}


def test_signature_check_is_constant_time_hmac() -> None:
    from dora_insights.dialects.github import sign, signature_valid

    body = b'{"zen":"x"}'
    assert signature_valid("s", body, sign("s", body))
    assert not signature_valid("s", body, sign("t", body))
    assert not signature_valid("s", body, None)
    assert not signature_valid(None, body, sign("s", body))
    # GitHub's documented test vector
    assert sign(SECRET, b"Hello, World!") == "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
