"""DX metadata keys (API.md "Dialect: DX"; DX: "keys may include letters, numbers, dashes and
underscores", else ``metadata_invalid``), through the real HTTP event shape, against moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api

CREATE = "/api/deployments.create"
BACKFILL = "/api/deployments.backfill"


def native_deployments(api: Api) -> list[dict[str, Any]]:
    result = api.call("GET", "/api/{spaceId}/deployments", path_params={"spaceId": "Spaces-1"}, key=ADMIN_KEY)
    assert result.status == 200, result.body
    return list(result.body["items"])


def test_a_metadata_key_with_a_trailing_newline_is_metadata_invalid(api: Api) -> None:
    """The key pattern ended in ``$``, which ``re.match`` lets match before a final newline, so the key
    ``"version\\n"`` was stored (and shown) as a metadata key. The whole key must match."""
    body = {"service": "shop", "deployed_at": 1709294400, "metadata": {"version\n": "v1.11.23"}}
    result = api.call("POST", CREATE, body=body, key=ADMIN_KEY)
    assert result.status == 400, json.dumps(result.body)
    assert result.body["error"] == "metadata_invalid"


@pytest.mark.parametrize("key", ["version\n", "\nversion", "ver\nsion", "ver sion", "", "v" * 129, "vérsion"])
def test_keys_outside_the_alphabet_are_refused_and_nothing_is_stored(api: Api, key: str) -> None:
    body = {"service": "shop", "deployed_at": 1709294400, "metadata": {key: "v1"}}
    result = api.call("POST", CREATE, body=body, key=ADMIN_KEY)
    assert result.status == 400, json.dumps(result.body)
    assert result.body["error"] == "metadata_invalid"
    assert native_deployments(api) == []


def test_letters_digits_dashes_and_underscores_are_accepted(api: Api) -> None:
    key = "Build_Number-2" + "x" * 114  # 128 characters
    body = {"service": "shop", "deployed_at": 1709294400, "metadata": {key: "v1"}}
    result = api.call("POST", CREATE, body=body, key=ADMIN_KEY)
    assert result.status == 200, json.dumps(result.body)
    assert result.body["deployment"]["metadata"] == {key: "v1"}


def test_a_backfill_row_with_a_newline_in_a_metadata_key_is_that_rows_metadata_invalid(api: Api) -> None:
    csv = (
        "reference_id,deployed_at,service,metadata\n"
        'r-1,1709200000,shop,"{""version\\n"": ""1.0""}"\n'
        'r-2,1709210000,shop,"{""version"": ""1.0""}"\n'
    )
    result = api.call("POST", BACKFILL, raw_body=csv, headers={"content-type": "text/csv"}, key=ADMIN_KEY)
    assert result.status == 200, result.body
    rows = {r["row"]: r for r in result.body["results"]}
    assert (rows[2]["ok"], rows[2]["error"]) == (False, "metadata_invalid")
    assert rows[3]["ok"] is True
    assert [d["metadata"] for d in native_deployments(api)] == [{"version": "1.0"}]
