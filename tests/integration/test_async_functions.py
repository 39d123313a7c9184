"""The queue and schedule functions through their real event shapes."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import ADMIN_KEY, Api
from tests.support.events import load_event
from tests.support.lambdas import invoke


def _sqs_event(*bodies: str) -> dict[str, Any]:
    template = load_event("AttributionRetryFunction.json")["Records"][0]
    records = []
    for n, body in enumerate(bodies):
        record = dict(template)
        record["messageId"] = f"message-{n}"
        record["body"] = body
        records.append(record)
    return {"Records": records}


def test_retry_batch_reports_only_the_failed_records(api: Api, lambda_context: Any) -> None:
    created = api.call(
        "POST",
        "/api/{spaceId}/deployments",
        path_params={"spaceId": "Spaces-1"},
        body={"project": "shop", "environment": "production", "finished_at": 1709294400},
        key=ADMIN_KEY,
    )
    good = json.dumps({"space_id": "Spaces-1", "deployment_id": created.body["id"], "attempt": 1})
    unknown = json.dumps({"space_id": "Spaces-1", "deployment_id": "missing", "attempt": 1})
    event = _sqs_event(good, "not json", unknown, good)
    result = invoke("AttributionRetryFunction", event, lambda_context)
    assert result == {"batchItemFailures": [{"itemIdentifier": "message-1"}, {"itemIdentifier": "message-2"}]}


def test_schedule_event_runs_the_recompute(api: Api, lambda_context: Any) -> None:
    for project in ("a", "b"):
        api.call(
            "POST",
            "/api/{spaceId}/deployments",
            path_params={"spaceId": "Spaces-1"},
            body={"project": project, "environment": "production", "finished_at": 1709294400},
            key=ADMIN_KEY,
        )
    summary = invoke("RecomputeFunction", load_event("RecomputeFunction.json"), lambda_context)
    assert summary["spaces"] == 1
    assert summary["streams_pending"] == 2
