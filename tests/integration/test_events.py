"""Every function has a real event under events/ (for `make invoke` and these tests), and answers it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.events import EVENTS, load_event
from tests.support.lambdas import invoke
from tests.support.template import resources

FUNCTIONS = sorted(resources("AWS::Serverless::Function"))


def _routes(logical_id: str) -> set[str]:
    events = resources("AWS::Serverless::Function")[logical_id]["Properties"]["Events"].values()
    return {f"{e['Properties']['Method'].upper()} {e['Properties']['Path']}" for e in events if e["Type"] == "HttpApi"}


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_every_function_has_an_event_matching_its_trigger(logical_id: str) -> None:
    path = Path(EVENTS) / f"{logical_id}.json"
    assert path.exists(), f"add events/{logical_id}.json"
    event = json.loads(path.read_text())
    routes = _routes(logical_id)
    if routes:
        assert event["routeKey"] in routes
        assert event["version"] == "2.0"
    else:
        assert "Records" in event or event.get("detail-type") == "Scheduled Event"


@pytest.mark.parametrize("logical_id", FUNCTIONS)
def test_every_function_answers_its_event_without_a_server_error(
    logical_id: str, store: Any, space: str, lambda_context: Any
) -> None:
    from dora_insights.logic import admin

    admin.ensure_api_key(store, "Spaces-1", "local admin", "local-dev-key", NOW)
    # The deployment the GET and queue events name.
    seeded = load_event("CreateDeploymentFunction.json")
    seeded["body"] = json.dumps(json.loads(seeded["body"]) | {"id": "01HQ0000000000000000000000"})
    assert invoke("CreateDeploymentFunction", seeded, lambda_context)["statusCode"] == 201
    result = invoke(logical_id, load_event(f"{logical_id}.json"), lambda_context)
    if "statusCode" in result:
        assert result["statusCode"] < 500, result
    else:
        assert isinstance(result, dict)
