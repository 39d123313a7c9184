"""The code hosts' webhooks take deliveries as the hosts send them (API.md "Dialect: GitHub webhooks").

1. GitHub sends up to 2,048 commits in one ``push`` (~1 MB of JSON as GitHub shapes them, more with
   long file lists) and never sends a refused delivery again: the webhooks take bodies up to 5 MiB
   (``handlers.http.WEBHOOK_MAX_BODY_BYTES``; other routes 1 MiB). Before, such a push was a 413 and
   every commit of it was lost.
2. A branch keeps its own name: only ASCII white space (which git refuses in a ref) is taken off its
   ends, so a push to ``main<NBSP>`` (U+00A0, a character git allows) is stored on that branch and its
   commits never ship with ``main``'s next deployment (before, ``str.strip()`` made it ``main``).
"""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Api
from tests.support.events import load_event
from tests.support.fixtures import GITHUB_SECRET
from tests.support.lambdas import invoke

SP = {"spaceId": "Spaces-1"}
ROUTE = "/webhooks/github/{spaceId}"
NBSP = "\u00a0"  # a valid character of a git ref (git refuses only ASCII space and controls)


def github(api: Api, event: str, payload: Any, *, delivery: str = "d-1") -> Any:
    """POST ``payload`` as GitHub delivers it: its raw JSON, signed with the space's secret."""
    from dora_insights.dialects.github import sign

    raw = json.dumps(payload)
    headers = {
        "x-github-event": event,
        "x-github-delivery": delivery,
        "x-hub-signature-256": sign(GITHUB_SECRET, raw.encode()),
        "user-agent": "GitHub-Hookshot/044aadd",
    }
    return api.call("POST", ROUTE, path_params=SP, raw_body=raw, headers=headers)


def stored_branches(store: Any, repository: str) -> set[str]:
    from dora_insights.dal import keys

    return {str(item["branch"]) for item in store.query_all(partition=keys.commits_pk("Spaces-1", repository))}


# --- 1. a large push GitHub really sends ------------------------------------------------------


def _github_commits(count: int) -> list[dict[str, Any]]:
    """``count`` commits shaped as GitHub's push lists them (author, committer, url, file lists)."""
    template = load_event("github_push.json")["commits"][0]
    return [
        template
        | {
            "id": f"{n:040x}",
            "tree_id": f"{n + 10**6:040x}",
            "url": f"https://github.com/acme/shop/commit/{n:040x}",
            "timestamp": f"2024-02-{1 + n // 1440:02d}T{(n // 60) % 24:02d}:{n % 60:02d}:00Z",
            "message": f"Change {n}",
        }
        for n in range(1, count + 1)
    ]


def test_a_github_push_of_2048_commits_as_github_sends_it_is_stored_not_refused_for_its_size(
    github_hooked: Api, store: Any
) -> None:
    from dora_insights.dal.code import CodeStore

    payload = load_event("github_push.json")
    payload["commits"] = _github_commits(2048)  # GitHub's cap per push delivery; ~1.07 MB of JSON
    payload["head_commit"] = payload["commits"][-1]  # as GitHub sends it: the branch's new head

    result = github(github_hooked, "push", payload)

    assert result.status == 200, (result.status, result.body)
    assert result.body["commits"] == {"received": 2048, "stored": 2048}
    assert len(CodeStore(store, "Spaces-1").commits_in_range("acme/shop", "main", None, 10_000, 5000)) == 2048


# --- 2. a branch named with Unicode white space is its own branch -----------------------------


def test_a_commit_pushed_to_a_branch_named_main_nbsp_does_not_ship_with_mains_next_deployment(
    github_hooked: Api,
) -> None:
    stray_sha, next_sha = "a" * 40, "c" * 40
    assert github(github_hooked, "push", load_event("github_push.json"), delivery="push-1").status == 200
    first = github(github_hooked, "deployment_status", load_event("github_deployment_status.json"), delivery="dep-1")
    assert first.status == 201, first.body

    # someone pushes an experiment to the branch "main<NBSP>" (another branch to git and to GitHub)
    stray = load_event("github_push.json") | {"ref": f"refs/heads/main{NBSP}", "after": stray_sha}
    stray["commits"] = [stray["commits"][0] | {"id": stray_sha, "timestamp": "2024-03-01T12:10:00Z"}]
    assert github(github_hooked, "push", stray, delivery="push-2").status == 200
    # then main moves on and is deployed
    after = load_event("github_push.json") | {"before": "66adc9350f2cc9b250b69abddab733dd55e1a588", "after": next_sha}
    after["commits"] = [after["commits"][0] | {"id": next_sha, "timestamp": "2024-03-01T12:20:00Z"}]
    assert github(github_hooked, "push", after, delivery="push-3").status == 200
    status = load_event("github_deployment_status.json")
    status["deployment"] |= {"id": 1234567891, "sha": next_sha, "created_at": "2024-03-01T12:30:00Z"}
    finished = "2024-03-01T12:40:00Z"
    status["deployment_status"] |= {"id": 9876543211, "created_at": finished, "updated_at": finished}

    second = github(github_hooked, "deployment_status", status, delivery="dep-2")

    assert second.status == 201, second.body
    shipped = second.body["deployment"]["attribution"]["commits"]
    assert stray_sha not in shipped, f"a commit of branch 'main<NBSP>' shipped with main's deployment: {shipped}"


def test_a_gitlab_push_to_a_branch_named_main_nbsp_is_stored_on_that_branch_not_on_main(
    gitlab_hooked: None, store: Any, lambda_context: Any
) -> None:
    event = load_event("GitlabWebhookFunction.json")
    event["body"] = json.dumps(json.loads(event["body"]) | {"ref": f"refs/heads/main{NBSP}"})

    result = invoke("GitlabWebhookFunction", event, lambda_context)

    assert result["statusCode"] == 200, result["body"]
    assert stored_branches(store, "acme/platform/checkout") == {f"main{NBSP}"}
