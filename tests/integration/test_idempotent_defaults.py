"""A repeat that spells out what the first request left to its default is the same request (API.md:
idempotency by the client's id), through the real routes against moto.

The environment (the space's default) and the channel (``Default``) are hashed as resolved, so a pipeline
that sends ``environment: production`` on a retry or in a later backfill of the same rows meets its own
deployment, not a 409. Deployments and records stored before (their ``body_hash`` is the request as sent)
still match a byte-identical repeat.
"""

from __future__ import annotations

from typing import Any

import boto3

from dora_insights.dal import keys
from dora_insights.dialects.dx import DxDeploymentIn
from dora_insights.dialects.native import DeploymentIn
from tests.conftest import ADMIN_KEY, Api, Aws

SP = {"spaceId": "Spaces-1"}
NATIVE = "/api/{spaceId}/deployments"
FAILURES = "/api/{spaceId}/failures"
DX_CREATE = "/api/deployments.create"
DX_BACKFILL = "/api/deployments.backfill"


def _native(api: Api, body: dict[str, Any]) -> Any:
    return api.call("POST", NATIVE, path_params=SP, body=body, key=ADMIN_KEY)


def _stored_hash(aws: Aws, key: dict[str, str], value: str) -> None:
    """Rewrite an item's ``body_hash`` as the code before 2026-12 stored it."""
    boto3.resource("dynamodb").Table(aws.table_name).update_item(
        Key=key, UpdateExpression="SET body_hash = :h", ExpressionAttributeValues={":h": value}
    )


def test_a_native_repeat_spelling_out_the_default_channel_is_the_same_deployment(api: Api) -> None:
    body = {"id": "ci-run-1", "project": "shop", "environment": "production", "finished_at": "2024-03-01T12:00:00Z"}
    first = _native(api, body)
    assert first.status == 201, first.body
    again = _native(api, {**body, "channel": "Default"})
    assert (again.status, again.body["id"]) == (200, "ci-run-1"), again.body
    other = _native(api, {**body, "channel": "Hotfix"})
    assert other.status == 409, other.body
    listed = api.call("GET", NATIVE, path_params=SP, key=ADMIN_KEY).body["items"]
    assert [item["id"] for item in listed] == ["ci-run-1"]


def test_a_failure_event_repeat_spelling_out_the_default_environment_is_the_same_event(api: Api) -> None:
    body = {"id": "inc-1", "project": "shop", "started_at": "2024-03-01T12:00:00Z"}
    first = api.call("POST", FAILURES, path_params=SP, body=body, key=ADMIN_KEY)
    assert first.status == 201, first.body
    again = api.call("POST", FAILURES, path_params=SP, body={**body, "environment": "production"}, key=ADMIN_KEY)
    assert again.status == 200, again.body
    other = api.call("POST", FAILURES, path_params=SP, body={**body, "environment": "staging"}, key=ADMIN_KEY)
    assert other.status == 409, other.body


def test_dx_rows_backfilled_with_the_environment_column_after_creates_without_it_store_nothing_twice(
    api: Api,
) -> None:
    for n in range(3):
        body = {"reference_id": f"ref-{n}", "service": "shop", "deployed_at": 1709280000 + n * 3600}
        assert api.call("POST", DX_CREATE, body=body, key=ADMIN_KEY).status == 200
    text = "reference_id,service,deployed_at,environment\n" + "".join(
        f"ref-{n},shop,{1709280000 + n * 3600},production\n" for n in range(3)
    )
    result = api.call("POST", DX_BACKFILL, raw_body=text, headers={"content-type": "text/csv"}, key=ADMIN_KEY)
    assert result.status == 200, result.body
    assert (result.body["created"], result.body["unchanged"], result.body["failed"]) == (0, 3, 0), result.body


def test_a_deployment_stored_with_the_hash_of_the_request_as_sent_still_matches_its_repeat(api: Api, aws: Aws) -> None:
    body = {"id": "ci-run-2", "project": "shop", "environment": "production", "finished_at": "2024-03-01T12:00:00Z"}
    assert _native(api, body).status == 201
    stored = boto3.resource("dynamodb").Table(aws.table_name).get_item(Key=keys.deployment("Spaces-1", "ci-run-2"))
    assert "request_hashes" not in stored["Item"]  # compared, never stored
    as_sent = DeploymentIn.model_validate(body).to_draft().fingerprint()
    _stored_hash(aws, keys.deployment("Spaces-1", "ci-run-2"), as_sent)
    again = _native(api, body)
    assert (again.status, again.body["id"]) == (200, "ci-run-2"), again.body
    assert _native(api, {**body, "version": "2"}).status == 409


def test_a_dx_record_stored_with_the_hash_of_the_request_as_sent_still_matches_its_repeat(api: Api, aws: Aws) -> None:
    body = {"reference_id": "ref-old", "service": "shop", "deployed_at": 1709280000}
    first = api.call("POST", DX_CREATE, body=body, key=ADMIN_KEY)
    assert first.status == 200, first.body
    as_sent = DxDeploymentIn.model_validate(body).to_request(reference_id="ref-old").draft.fingerprint()
    _stored_hash(aws, keys.idempotency("Spaces-1", "dx", "ref-old"), as_sent)
    again = api.call("POST", DX_CREATE, body=body, key=ADMIN_KEY)
    assert again.status == 200, again.body
    assert again.body["deployment"]["id"] == first.body["deployment"]["id"]
    changed = api.call("POST", DX_CREATE, body={**body, "deployed_at": 1709283600}, key=ADMIN_KEY)
    assert changed.status == 409, changed.body
