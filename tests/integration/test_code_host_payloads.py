"""The code-host webhooks (GitHub, GitLab) under delivery headers and payload shapes the hosts
really send (API.md "Dialect: GitHub webhooks", "Dialect: GitLab webhooks"; METRICS §5).

Sources for the shapes and headers:
- GitLab ``lib/gitlab/web_hooks/recursion_detection/uuid.rb``: ``X-Gitlab-Event-UUID`` is
  ``request_uuid || new_uuid_for_hook(hook)``. When the request that fired the hooks itself came from a
  webhook (it carried ``X-Gitlab-Event-UUID``: a bot answering a webhook by calling GitLab's API), every
  hook that request fires (a push *and* a merge request event, say) carries that one UUID; GitLab's
  docs ("Delivery headers") say so: "recursive webhooks have the same value for this header". It is
  neither unique per event nor kept by "Resend request" (a resend runs in a new request, so it gets a
  new one). ``Idempotency-Key`` (GitLab 17.4+) is the header that identifies a delivery and its resends.
- GitHub: ``X-GitHub-Delivery`` identifies the *event* and is shared by every webhook that receives it
  (the REST deliveries API: "guid: unique identifier for the event (shared with all deliveries for all
  webhooks that subscribe to this event)").
- octokit/webhooks ``payload-examples/api.github.com/push/with-new-branch.payload.json`` (shape kept,
  values of this suite), GitLab's ``Gitlab::DataBuilder::Push`` (the newest 20 commits, oldest first).
"""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Api, HttpResult
from tests.integration.test_code_event_kinds_property import (
    GL_ROUTE,
    REPO,
    SPACE,
    at,
    gh,
    gl_project,
    gl_push,
    ok,
    push_payload,
    sha_of,
    status_payload,
)
from tests.support.fixtures import GITLAB_TOKEN


def _gitlab(api: Api, event: str, payload: Any, *, event_uuid: str, idempotency_key: str | None = None) -> HttpResult:
    """A GitLab delivery with the headers GitLab sends (``Idempotency-Key`` only from GitLab 17.4 on)."""
    headers = {
        "x-gitlab-event": event,
        "x-gitlab-token": GITLAB_TOKEN,
        "x-gitlab-event-uuid": event_uuid,
        "x-gitlab-instance": "https://gitlab.example.com",
        "user-agent": "GitLab/17.2.1",
    }
    if idempotency_key is not None:
        headers["idempotency-key"] = idempotency_key
    return api.call("POST", GL_ROUTE, path_params={"spaceId": SPACE}, raw_body=json.dumps(payload), headers=headers)


def _merge_event(iid: int, merge_sha: str, head_sha: str, created: str, merged: str) -> dict[str, Any]:
    """GitLab's Merge Request Hook of a merge (``action: merge``), in GitLab's own time form."""
    return {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": {"id": 1, "name": "Mona", "username": "mona"},
        "project": gl_project(),
        "object_attributes": {
            "id": 9000 + iid,
            "iid": iid,
            "title": f"MR {iid}",
            "target_branch": "main",
            "source_branch": f"feature-{iid}",
            "state": "merged",
            "action": "merge",
            "created_at": created.replace("T", " ").replace("Z", " UTC"),
            "updated_at": merged.replace("T", " ").replace("Z", " UTC"),
            "merge_commit_sha": merge_sha,
            "last_commit": {"id": head_sha, "message": "change", "timestamp": created},
            "source": gl_project(),
            "target": gl_project(),
            "url": f"https://gitlab.example.com/{REPO}/-/merge_requests/{iid}",
        },
        "labels": [],
        "changes": {"state_id": {"previous": 1, "current": 3}},
        "repository": {"name": "shop", "url": f"git@gitlab.example.com:{REPO}.git"},
    }


def _commits(sha: str) -> list[Any]:
    from dora_insights.dal.code import CodeStore
    from dora_insights.handlers.runtime import store

    return list(CodeStore(store(), SPACE).commits_by_sha(REPO, [sha]))


def _merged_pulls() -> list[Any]:
    from dora_insights.dal.code import CodeStore
    from dora_insights.handlers.runtime import store

    return list(CodeStore(store(), SPACE).pull_requests_merged(REPO, "main", None, None))


# =========================================================================================================
# Defects
# =========================================================================================================


def test_gitlab_push_and_merge_request_events_sharing_a_recursive_event_uuid_are_both_recorded(
    api: Api, gitlab_hooked: None
) -> None:
    """GitLab < 17.4 sends no ``Idempotency-Key``; ``X-Gitlab-Event-UUID`` is then the service's redelivery
    key. A merge done by a bot that answers a webhook through GitLab's API (passing the header on, which is
    how GitLab's recursion detection works) fires the target branch's Push Hook and the Merge Request Hook
    with the *same* ``X-Gitlab-Event-UUID``. They are two different events, not a redelivery: both must be
    stored. The second is answered 200 ``duplicate`` and the merge request is lost (its deployment then
    counts lead time from the commits, not from the merge request's opening)."""
    shared = "6a1c1c87-1d1b-4f0f-9a5e-2b7d3f0e1c11"
    feature, merge = sha_of("uuid-feature"), sha_of("uuid-merge")
    push = ok(_gitlab(api, "Push Hook", gl_push([(feature, at(10)), (merge, at(30))]), event_uuid=shared))
    assert push.body["commits"]["stored"] == 2, push.body

    merged = _gitlab(api, "Merge Request Hook", _merge_event(7, merge, feature, at(0), at(30)), event_uuid=shared)

    assert merged.status == 200, merged.body
    assert merged.body.get("duplicate") is not True, "a merge request event taken for a redelivery of a push"
    assert [(pr.number, pr.merge_commit_sha) for pr in _merged_pulls()] == [(7, merge)]


def test_gitlab_pushes_of_two_branches_sharing_a_recursive_event_uuid_are_both_recorded(
    api: Api, gitlab_hooked: None
) -> None:
    """The same header shared by two Push Hooks a recursive request fired (a bot's API calls creating a
    commit on ``main`` and on ``release``): the second push's commits must be stored, not dropped as a
    redelivery of the first."""
    shared = "0f7e4a52-8c3e-4d7b-b0a3-6f5d1e2c3b4a"
    a, b = sha_of("uuid-main"), sha_of("uuid-release")
    ok(_gitlab(api, "Push Hook", gl_push([(a, at(0))]), event_uuid=shared))

    second = _gitlab(api, "Push Hook", gl_push([(b, at(5))], branch="release"), event_uuid=shared)

    assert second.status == 200, second.body
    assert second.body.get("duplicate") is not True, second.body
    assert [c.sha for c in _commits(b)] == [b]


# =========================================================================================================
# Verified behaviour, pinned
# =========================================================================================================


def test_gitlab_resend_under_a_new_event_uuid_stores_nothing_twice(api: Api, gitlab_hooked: None) -> None:
    """GitLab's "Resend request" before 17.4 carries a new ``X-Gitlab-Event-UUID`` (a new request): not
    detected as a redelivery, but commits are keyed by sha, so nothing is stored twice."""
    a = sha_of("resend-a")
    first = ok(_gitlab(api, "Push Hook", gl_push([(a, at(0))]), event_uuid="11111111-1111-4111-8111-111111111111"))
    again = ok(_gitlab(api, "Push Hook", gl_push([(a, at(0))]), event_uuid="22222222-2222-4222-8222-222222222222"))
    assert first.body["commits"] == {"received": 1, "stored": 1}
    assert again.body["commits"] == {"received": 1, "stored": 0}
    assert len(_commits(a)) == 1


def test_gitlab_idempotency_key_wins_over_the_event_uuid(api: Api, gitlab_hooked: None) -> None:
    """GitLab 17.4+: the same ``Idempotency-Key`` (a resend) is a duplicate whatever its event UUID."""
    a = sha_of("idem-a")
    key = "33333333-3333-4333-8333-333333333333"
    ok(
        _gitlab(
            api,
            "Push Hook",
            gl_push([(a, at(0))]),
            event_uuid="44444444-4444-4444-8444-444444444444",
            idempotency_key=key,
        )
    )
    again = _gitlab(
        api, "Push Hook", gl_push([(a, at(0))]), event_uuid="55555555-5555-4555-8555-555555555555", idempotency_key=key
    )
    assert again.status == 200 and again.body.get("duplicate") is True, again.body


def test_a_gitlab_merge_delivered_by_a_group_hook_and_a_project_hook_is_one_pull_request(
    api: Api, gitlab_hooked: None
) -> None:
    """A group webhook and a project webhook both pointed at the space deliver the same merge under two
    ``Idempotency-Key`` values: the merge request is stored once, unchanged by the second."""
    merge, head = sha_of("two-hooks-m"), sha_of("two-hooks-h")
    event = _merge_event(12, merge, head, at(0), at(40))
    one = ok(_gitlab(api, "Merge Request Hook", event, event_uuid="a" * 8 + "-1", idempotency_key="k-1"))
    two = ok(_gitlab(api, "Merge Request Hook", event, event_uuid="a" * 8 + "-2", idempotency_key="k-2"))
    assert (one.body["changed"], two.body["changed"]) == (True, False)
    (pr,) = _merged_pulls()
    assert (pr.number, pr.merged_at[:16], pr.created_at[:16]) == (12, at(40)[:16], at(0)[:16])


def test_a_github_event_delivered_to_a_repository_hook_and_an_organization_hook_is_recorded_once(
    github_hooked: Api,
) -> None:
    """GitHub gives every webhook of one event the same ``X-GitHub-Delivery``: the second delivery (an
    organization hook beside the repository's) is the 200 duplicate, and the deployment is recorded once."""
    a = sha_of("org-hook-a")
    ok(gh(github_hooked, "push", push_payload([(a, at(0))])))
    payload = status_payload(31, a, state="success", started=at(1), finished=at(5))
    first = ok(gh(github_hooked, "deployment_status", payload, delivery="8e3b8a40-0001-11ef-9f3a-1a2b3c4d5e6f"), 201)
    second = gh(github_hooked, "deployment_status", payload, delivery="8e3b8a40-0001-11ef-9f3a-1a2b3c4d5e6f")
    assert first.body["deployment"]["commit_sha"] == a
    assert second.status == 200 and second.body.get("duplicate") is True, second.body


def test_a_github_new_branch_push_in_octokits_shape_is_stored_on_that_branch(github_hooked: Api) -> None:
    """octokit's ``push/with-new-branch`` shape: ``created: true``, ``before`` all zeros, ``base_ref`` null,
    one commit with ``distinct: true`` and file lists: its commit is stored on the new branch."""
    c = sha_of("new-branch-c")
    payload = push_payload([(c, "2019-05-15T15:20:30-05:00")], branch="simple-branch", created=True)
    payload["commits"][0]["modified"] = [f"src/file_{n}.py" for n in range(3000)]
    result = ok(gh(github_hooked, "push", payload))
    assert result.body["commits"] == {"received": 1, "stored": 1}
    (stored,) = _commits(c)
    assert (stored.branch, stored.timestamp) == ("simple-branch", "2019-05-15T20:20:30.000Z")
