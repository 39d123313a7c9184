"""``python -m dora_insights.admin`` bootstraps spaces and keys straight against the table."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Api


def test_create_space_and_key_then_use_the_key(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from dora_insights.admin import main

    assert main(["create-space", "--name", "Payments"]) == 0
    space = json.loads(capsys.readouterr().out)
    assert space["id"].startswith("Spaces-")
    assert (
        main(["create-key", "--space", space["id"], "--name", "ci", "--scopes", "deployments:write,deployments:read"])
        == 0
    )
    key = json.loads(capsys.readouterr().out)
    assert key["scopes"] == ["deployments:write", "deployments:read"]
    created = Api().call(
        "POST",
        "/api/{spaceId}/deployments",
        path_params={"spaceId": space["id"]},
        body={"project": "p", "environment": "e", "finished_at": 1},
        key=key["key"],
    )
    assert created.status == 201


def test_errors_are_reported_without_a_traceback(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from dora_insights.admin import main

    assert main(["create-key", "--space", "Spaces-404", "--name", "ci", "--scopes", "admin"]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["create-key", "--space", "Spaces-404", "--name", "ci", "--scopes", "root"]) == 1
