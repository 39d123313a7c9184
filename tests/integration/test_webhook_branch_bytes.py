"""A pushed branch's name from a code host's webhook is capped in UTF-8 bytes, as ``/changes`` caps it
(``dialects.limits.pushed_branch``, issue 17): GitHub and GitLab cap refs at 300 characters, and 4-byte
characters would pass DynamoDB's 1024-byte sort keys of the commit and the branch counter. A push to a
longer name is a 400 in the webhooks' native shape naming ``ref`` before anything is written; its
deletion stays a 202."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dora_insights.dialects.limits import MAX_BRANCH_BYTES
from tests.conftest import Api
from tests.support.events import load_event
from tests.support.fixtures import GITHUB_SECRET
from tests.support.lambdas import invoke

SP = {"spaceId": "Spaces-1"}
WIDE = "\U0001d538"  # 𝔸: four bytes of UTF-8, one character
AT_CAP = WIDE * (MAX_BRANCH_BYTES // 4)  # 125 characters, 500 bytes
PAST_CAP = WIDE * 200  # 200 characters (a 211-character ref), 800 bytes: the sort keys still fit
PAST_KEYS = WIDE * 280  # 280 characters, 1,120 bytes: no sort key of it fits


def _github_push(api: Api, branch: str, *, delivery: str = "d-1", **fields: Any) -> Any:
    from dora_insights.dialects.github import sign

    raw = json.dumps(load_event("github_push.json") | {"ref": f"refs/heads/{branch}", **fields})
    headers = {
        "x-github-event": "push",
        "x-github-delivery": delivery,
        "x-hub-signature-256": sign(GITHUB_SECRET, raw.encode()),
    }
    return api.call("POST", "/webhooks/github/{spaceId}", path_params=SP, raw_body=raw, headers=headers)


def _gitlab_push(branch: str, context: Any, **fields: Any) -> tuple[int, Any]:
    event = load_event("GitlabWebhookFunction.json")
    event["body"] = json.dumps(json.loads(event["body"]) | {"ref": f"refs/heads/{branch}", **fields})
    result = invoke("GitlabWebhookFunction", event, context)
    return result["statusCode"], json.loads(result["body"])


def _branches(store: Any, repository: str) -> set[str]:
    from dora_insights.dal import keys

    items = store.query_all(partition=keys.commits_pk("Spaces-1", repository))
    return {str(item["branch"]) for item in items}


def _names_ref(body: Any) -> bool:
    return set(body) == {"message", "errors"} and body["message"].startswith("ref: must be at most 500 bytes")


def test_a_github_push_to_a_branch_at_the_cap_is_stored(github_hooked: Api, store: Any) -> None:
    result = _github_push(github_hooked, AT_CAP)

    assert result.status == 200, result.body
    assert _branches(store, "acme/shop") == {AT_CAP}


@pytest.mark.parametrize("branch", [PAST_CAP, PAST_KEYS], ids=["800-bytes", "1120-bytes"])
def test_a_github_push_to_a_branch_past_the_cap_is_a_400_naming_ref(
    github_hooked: Api, store: Any, branch: str
) -> None:
    result = _github_push(github_hooked, branch)

    assert result.status == 400
    assert _names_ref(result.body), result.body
    assert _branches(store, "acme/shop") == set()


def test_a_github_deletion_of_a_branch_past_the_cap_is_acknowledged(github_hooked: Api) -> None:
    result = _github_push(github_hooked, PAST_KEYS, deleted=True, commits=[])

    assert result.status == 202, result.body


def test_a_gitlab_push_to_a_branch_at_the_cap_is_stored(gitlab_hooked: None, store: Any, lambda_context: Any) -> None:
    status, body = _gitlab_push(AT_CAP, lambda_context)

    assert status == 200, body
    assert _branches(store, "acme/platform/checkout") == {AT_CAP}


@pytest.mark.parametrize("branch", [PAST_CAP, PAST_KEYS], ids=["800-bytes", "1120-bytes"])
def test_a_gitlab_push_to_a_branch_past_the_cap_is_a_400_naming_ref(
    gitlab_hooked: None, store: Any, lambda_context: Any, branch: str
) -> None:
    status, body = _gitlab_push(branch, lambda_context)

    assert status == 400
    assert _names_ref(body), body
    assert _branches(store, "acme/platform/checkout") == set()


def test_a_gitlab_deletion_of_a_branch_past_the_cap_is_acknowledged(gitlab_hooked: None, lambda_context: Any) -> None:
    status, body = _gitlab_push(PAST_KEYS, lambda_context, after="0" * 40, commits=[])

    assert status == 202, body
