"""Native code data API: POST /api/{spaceId}/changes."""

from __future__ import annotations

from typing import Any

from tests.conftest import ADMIN_KEY, Api

ROUTE = "/api/{spaceId}/changes"
SP = {"spaceId": "Spaces-1"}
SHA = "66adc9350f2cc9b250b69abddab733dd55e1a588"


def body() -> dict[str, Any]:
    return {
        "commits": [
            {
                "repository": "https://gitlab.com/Acme/Shop.git",
                "branch": "refs/heads/main",
                "sha": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
                "timestamp": "2024-03-01T10:00:00Z",
            },
            {"repository": "acme/shop", "branch": "main", "sha": SHA, "timestamp": 1709290000, "pull_request": 42},
        ],
        "pull_requests": [
            {
                "repository": "acme/shop",
                "number": 42,
                "base_ref": "main",
                "merge_commit_sha": SHA,
                "created_at": "2024-02-28T09:00:00Z",
                "merged_at": "2024-03-01T10:40:00Z",
                "services": ["checkout"],
            }
        ],
    }


def test_changes_are_stored_in_the_webhook_model(api: Api, store: Any) -> None:
    from dora_insights.dal.code import CodeStore

    result = api.call("POST", ROUTE, path_params=SP, body=body(), key=ADMIN_KEY)
    assert result.status == 200, result.body
    assert result.body == {"commits": {"received": 2, "stored": 2}, "pull_requests": {"received": 1, "stored": 1}}
    code = CodeStore(store, "Spaces-1")
    commits = code.commits_in_range("acme/shop", "main", None, 10, 10)
    assert [c.position for c in commits] == [1, 0]
    assert [c.sha for c in code.commits_of_pull_requests("acme/shop", [42])] == [SHA]
    (pr,) = code.pull_requests_by_sha([SHA], "acme/shop")
    assert pr.services == ("checkout",)


def test_the_same_changes_again_change_nothing(api: Api) -> None:
    api.call("POST", ROUTE, path_params=SP, body=body(), key=ADMIN_KEY)
    again = api.call("POST", ROUTE, path_params=SP, body=body(), key=ADMIN_KEY)
    assert again.body == {"commits": {"received": 2, "stored": 0}, "pull_requests": {"received": 1, "stored": 0}}


def test_invalid_changes_are_a_native_400(api: Api) -> None:
    bad = body()
    bad["commits"][0]["sha"] = "xyz"
    result = api.call("POST", ROUTE, path_params=SP, body=bad, key=ADMIN_KEY)
    assert result.status == 400
    assert result.body["errors"]


def test_changes_need_the_changes_write_scope(api: Api, store: Any) -> None:
    from datetime import UTC, datetime

    from dora_insights.logic import admin

    _, key = admin.create_api_key(store, "Spaces-1", "ci", ("deployments:write",), datetime.now(UTC))
    assert api.call("POST", ROUTE, path_params=SP, body=body(), key=key).status == 403
