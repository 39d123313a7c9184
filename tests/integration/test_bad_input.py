"""Bad input gets a 4xx in the native error shape, never a 5xx, and nothing is written."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_KEY, Api

ROUTE = "/api/{spaceId}/deployments"
SP = {"spaceId": "Spaces-1"}
GOOD = {"project": "shop", "environment": "production", "finished_at": "2024-03-01T12:00:00Z"}


def _assert_native_error(result: object, status: int) -> None:
    assert result.status == status, result.body  # type: ignore[attr-defined]
    body = result.body  # type: ignore[attr-defined]
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], list) and body["errors"]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', ""),
        ('{"project": 3, "environment": "p", "finished_at": 1}', "project"),
        ('{"environment": "p", "finished_at": 1}', "project: is required"),
        ('{"project": "s", "environment": "p"}', "finished_at: is required"),
        ('{"project": "s", "environment": "p", "finished_at": 1, "state": "Done"}', "state"),
        ('{"project": "' + "x" * 201 + '", "environment": "p", "finished_at": 1}', "project"),
        ('{"project": "s", "environment": "p", "finished_at": "yesterday"}', "finished_at"),
        ('{"project": "s", "environment": "p", "finished_at": "2024-03-01T12:00:00"}', "offset"),
        ('{"project": "s", "environment": "p", "finished_at": 1, "unknown": 1}', "unknown: is not a known field"),
        ('{"project": "s", "environment": "p", "finished_at": 1, "tags": ["nocolon"]}', "key:value"),
        ('{"project": "s", "environment": "p", "finished_at": 1, "commit_sha": "xyz"}', "commit_sha"),
        ('{"project": "s", "environment": "p", "finished_at": 5, "started_at": 9}', "started_at"),
        ('{"project": "   ", "environment": "p", "finished_at": 1}', "blank"),
        ('{"project": "s", "environment": "p", "finished_at": 1, "id": "bad id!"}', "id"),
        ('{"project": "s", "environment": "p", "finished_at": true}', "finished_at"),
    ],
)
def test_invalid_deployment_bodies_are_400_and_write_nothing(api: Api, raw: str, fragment: str) -> None:
    result = api.call("POST", ROUTE, path_params=SP, raw_body=raw, key=ADMIN_KEY)
    _assert_native_error(result, 400)
    assert fragment in " ".join(result.body["errors"]) + result.body["message"]
    listed = api.call("GET", ROUTE, path_params=SP, key=ADMIN_KEY)
    assert listed.body["items"] == []


def test_body_over_one_mebibyte_is_413(api: Api) -> None:
    raw = '{"project": "s", "environment": "p", "finished_at": 1, "metadata": {"x": "' + "a" * (1024 * 1024) + '"}}'
    _assert_native_error(api.call("POST", ROUTE, path_params=SP, raw_body=raw, key=ADMIN_KEY), 413)


def test_non_utf8_body_is_400(api: Api) -> None:
    _assert_native_error(api.call("POST", ROUTE, path_params=SP, raw_body=b"\xff\xfe{}", key=ADMIN_KEY), 400)


def test_metadata_over_its_limit_is_400(api: Api) -> None:
    body = GOOD | {"metadata": {"x": "a" * 20_000}}
    _assert_native_error(api.call("POST", ROUTE, path_params=SP, body=body, key=ADMIN_KEY), 400)


@pytest.mark.parametrize("cursor", ["%%%", "bm90IGpzb24", "eyJQSyI6IngifQ", "W10"])
def test_bad_cursors_are_400(api: Api, cursor: str) -> None:
    result = api.call("GET", ROUTE, path_params=SP, query={"cursor": cursor}, key=ADMIN_KEY)
    _assert_native_error(result, 400)


def test_cursor_from_another_partition_is_400(api: Api) -> None:
    for day in (1, 2):
        api.call("POST", ROUTE, path_params=SP, body=GOOD | {"finished_at": f"2024-03-0{day}T00:00:00Z"}, key=ADMIN_KEY)
    cursor = api.call("GET", ROUTE, path_params=SP, query={"limit": "1"}, key=ADMIN_KEY).body["next_cursor"]
    assert cursor
    result = api.call("GET", ROUTE, path_params=SP, query={"cursor": cursor, "project": "shop"}, key=ADMIN_KEY)
    _assert_native_error(result, 400)


@pytest.mark.parametrize(
    "query", [{"limit": "0"}, {"limit": "501"}, {"limit": "ten"}, {"state": "Nope"}, {"from": "someday"}]
)
def test_bad_list_parameters_are_400(api: Api, query: dict[str, str]) -> None:
    _assert_native_error(api.call("GET", ROUTE, path_params=SP, query=query, key=ADMIN_KEY), 400)


def test_unknown_deployment_is_404(api: Api) -> None:
    result = api.call("GET", ROUTE + "/{deploymentId}", path_params={**SP, "deploymentId": "nope"}, key=ADMIN_KEY)
    _assert_native_error(result, 404)


def test_batch_over_500_items_is_400(api: Api) -> None:
    body = {"deployments": [GOOD] * 501}
    _assert_native_error(api.call("POST", ROUTE + "/batch", path_params=SP, body=body, key=ADMIN_KEY), 400)
