"""Unit tests of the GitLab webhooks dialect: the token check, GitLab's time formats, and the mapping
of the documented payloads (events/GitlabWebhookFunction*.json) onto the shared domain records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from dora_insights.dialects import gitlab_webhooks as gitlab
from dora_insights.domain.ids import sha256_hex
from tests.support.events import load_event

MERGE = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
FEATURE = "b6568db1bc1dcd7f8b4d5a946b0b91f9dacd7327"


def _payload(name: str) -> dict[str, Any]:
    return json.loads(load_event(name)["body"])  # type: ignore[no-any-return]


def test_the_token_is_checked_against_its_stored_hash() -> None:
    stored = gitlab.token_hash("s3cret-token-of-gitlab")
    assert stored == sha256_hex("s3cret-token-of-gitlab")
    assert gitlab.token_valid(stored, "s3cret-token-of-gitlab")
    assert not gitlab.token_valid(stored, "s3cret-token-of-gitlaB")
    assert not gitlab.token_valid(stored, None)
    assert not gitlab.token_valid(stored, "")
    assert not gitlab.token_valid(None, "s3cret-token-of-gitlab")


_INSTANTS = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=0)
)
_OFFSETS = st.integers(min_value=-12 * 60, max_value=14 * 60).map(lambda m: timedelta(minutes=m))


@given(_INSTANTS, _OFFSETS)
def test_gitlabs_three_time_formats_name_the_same_instant(instant: datetime, offset: timedelta) -> None:
    local = instant.astimezone(timezone(offset))
    sign = "+" if offset >= timedelta(0) else "-"
    minutes = abs(int(offset.total_seconds())) // 60
    written = {
        instant.strftime("%Y-%m-%d %H:%M:%S UTC"),  # Ruby's UTC form (merge request hooks)
        local.strftime("%Y-%m-%d %H:%M:%S ") + f"{sign}{minutes // 60:02d}{minutes % 60:02d}",  # deployment hooks
        local.isoformat(),  # push commits
    }
    assert {gitlab._gitlab_instant(text) for text in written} == {instant}


def test_a_time_gitlab_would_not_write_is_refused() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        gitlab._gitlab_instant("2024-03-01 10:00:00")
    with pytest.raises(ValueError, match="not an ISO-8601 time"):
        gitlab._gitlab_instant("yesterday UTC")


def test_push_hook_maps_onto_a_branch_push_in_order() -> None:
    push = gitlab.PushEvent.model_validate(_payload("GitlabWebhookFunction.json"))
    assert (push.branch, push.deleted) == ("main", False)
    branch_push = push.to_push(datetime(2024, 3, 1, tzinfo=UTC))
    assert (branch_push.repository, branch_push.branch, branch_push.default_branch) == (
        "acme/platform/checkout",
        "main",
        "main",
    )
    assert [c.sha for c in branch_push.commits] == [FEATURE, MERGE]
    assert branch_push.commits[0].timestamp == "2024-03-01T08:15:00+00:00"


def test_merge_request_hook_maps_onto_a_pull_request() -> None:
    event = gitlab.MergeRequestEvent.model_validate(_payload("GitlabWebhookFunction-merge_request.json"))
    assert event.merged and event.merged_at_exact
    pr = event.to_pull_request()
    assert (pr.repository, pr.number, pr.base_ref, pr.github_id) == ("acme/platform/checkout", 7, "main", None)
    assert (pr.merge_commit_sha, pr.head_sha) == (MERGE, FEATURE)
    assert (pr.created_at, pr.merged_at) == ("2024-03-01T08:30:00.000Z", "2024-03-01T10:40:02.000Z")


@pytest.mark.parametrize(
    ("action", "state", "merged", "exact"),
    [
        ("merge", "merged", True, True),
        ("update", "merged", True, False),
        ("open", "opened", False, False),
        ("close", "closed", False, False),
        ("approved", "opened", False, False),
    ],
)
def test_a_merge_request_counts_as_merged_by_action_or_state(
    action: str, state: str, merged: bool, exact: bool
) -> None:
    data = _payload("GitlabWebhookFunction-merge_request.json")
    data["object_attributes"] |= {"action": action, "state": state}
    event = gitlab.MergeRequestEvent.model_validate(data)
    assert (event.merged, event.merged_at_exact) == (merged, exact)


def test_a_merged_at_sent_by_gitlab_wins_over_updated_at() -> None:
    data = _payload("GitlabWebhookFunction-merge_request.json")
    data["object_attributes"] |= {"action": "update", "merged_at": "2024-03-01T10:40:00Z"}
    event = gitlab.MergeRequestEvent.model_validate(data)
    assert event.merged_at_exact
    assert event.to_pull_request().merged_at == "2024-03-01T10:40:00.000Z"


def test_deployment_hook_maps_onto_a_draft_with_the_full_sha() -> None:
    event = gitlab.DeploymentEvent.model_validate(_payload("GitlabWebhookFunction-deployment.json"))
    assert event.terminal
    assert event.idempotency_id == "acme/platform/checkout:15"
    draft = event.to_draft()
    assert (draft.source, draft.project, draft.environment, draft.state) == (
        "gitlab",
        "checkout",
        "production",
        "Success",
    )
    assert (draft.commit_sha, draft.repository) == (MERGE, "acme/platform/checkout")
    assert draft.finished_at == datetime(2024, 3, 1, 11, 50, tzinfo=UTC)


def test_a_deployment_must_name_its_commit() -> None:
    data = _payload("GitlabWebhookFunction-deployment.json") | {"short_sha": None, "commit_url": None}
    with pytest.raises(ValidationError):
        gitlab.DeploymentEvent.model_validate(data)
    data["commit_url"] = "https://gitlab.example.com/acme/platform/checkout/-/commit/" + "A" * 40
    assert gitlab.DeploymentEvent.model_validate(data).sha == "a" * 40


def test_a_project_path_that_is_no_repository_is_refused() -> None:
    data = _payload("GitlabWebhookFunction.json")
    data["project"]["path_with_namespace"] = "no-namespace"
    with pytest.raises(ValidationError):
        gitlab.PushEvent.model_validate(data)
