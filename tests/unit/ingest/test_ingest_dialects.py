"""Unit tests of the ingest dialects' models: DX codes, CSV parsing, GitHub payload mapping, keys."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dora_insights.dal import keys
from dora_insights.dialects import dx, github
from dora_insights.errors import RequestInvalidError
from tests.support.events import load_event


def test_dx_create_maps_onto_the_draft() -> None:
    request = dx.read_deployment(
        {
            "deployed_at": 1680723287,
            "service": "svc",
            "merge_commit_shas": ["A0E61DFFF93B", "07788cacf2c"],
            "success": False,
        }
    )
    assert request.draft.project == "svc"
    assert request.draft.merge_commit_shas == ("a0e61dfff93b", "07788cacf2c")
    assert request.draft.state == "Failed"
    assert request.draft.source == "dx"


def test_dx_missing_params_are_listed() -> None:
    with pytest.raises(RequestInvalidError) as caught:
        dx.read_deployment({})
    assert caught.value.code == "required_params_missing"
    assert "deployed_at" in caught.value.message
    assert "service" in caught.value.message


def test_csv_rows_get_line_numbers_and_fingerprint_reference_ids() -> None:
    rows = dx.read_backfill(
        "deployed_at,service,merge_commit_shas\n1709200000,a,a0e61dfff93b 07788cacf2c\n\n1709200001,b,\n"
    )
    assert [n for n, _ in rows] == [2, 4]
    first = rows[0][1]
    assert isinstance(first, dx.DxDeployment)
    assert first.draft.merge_commit_shas == ("a0e61dfff93b", "07788cacf2c")
    again = dx.read_backfill("deployed_at,service,merge_commit_shas\n1709200000,a,a0e61dfff93b 07788cacf2c\n")[0][1]
    assert isinstance(again, dx.DxDeployment)
    assert again.reference_id == first.reference_id


def test_csv_row_errors_are_per_row() -> None:
    rows = dx.read_backfill('deployed_at,service,metadata\n1709200000,a,"[1]"\n')
    assert isinstance(rows[0][1], RequestInvalidError)
    assert rows[0][1].code == "metadata_invalid"


def test_github_payloads_map_to_the_change_model() -> None:
    push = github.PushEvent.model_validate(load_event("github_push.json")).to_push(datetime(2024, 3, 1, tzinfo=UTC))
    assert (push.repository, push.branch, push.default_branch) == ("acme/shop", "main", "main")
    assert [c.sha[:7] for c in push.commits] == ["0d1a26e", "66adc93"]
    pr = github.PullRequestEvent.model_validate(load_event("github_pull_request_merged.json"))
    assert pr.merged
    model = pr.to_pull_request()
    assert (model.number, model.github_id, model.base_ref, model.head_sha[:7] if model.head_sha else None) == (
        42,
        1497468863,
        "main",
        "0d1a26e",
    )
    status = github.DeploymentStatusEvent.model_validate(load_event("github_deployment_status.json"))
    draft = status.to_draft()
    assert (draft.project, draft.environment, draft.state) == ("shop", "production", "Success")


def test_code_keys_start_with_the_space_and_sort_positions() -> None:
    assert keys.commit("Spaces-1", "acme/shop", "abc1234", "main")[keys.PK].startswith("S#Spaces-1#")
    assert keys.github_pull("Spaces-1", 1)[keys.PK].startswith("S#Spaces-1#")
    assert keys.webhook_delivery("Spaces-1", "d")[keys.PK].startswith("S#Spaces-1#")
    assert keys.position_sort(9) < keys.position_sort(10)
    with pytest.raises(ValueError, match="repository"):
        keys.commits_pk("Spaces-1", "a#b")
