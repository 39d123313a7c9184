"""The queue and schedule functions through their real event shapes."""

from __future__ import annotations

import json
from typing import Any

from dora_insights.logic.freshness import SETTLE
from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.events import load_event
from tests.support.lambdas import invoke
from tests.support.native import create_deployment
from tests.support.recompute import scheduled_run


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
    unknown = json.dumps({"space_id": "Spaces-1", "deployment_id": "missing", "attempt": 1})  # gone: no failure
    malformed = json.dumps({"space_id": "Spaces-1", "attempt": 1})  # names no deployment
    event = _sqs_event(good, "not json", unknown, malformed, good)
    result = invoke("AttributionRetryFunction", event, lambda_context)
    assert result == {"batchItemFailures": [{"itemIdentifier": "message-1"}, {"itemIdentifier": "message-3"}]}


def test_schedule_event_runs_the_recompute(api: Api, lambda_context: Any) -> None:
    for project in ("a", "b"):
        api.call(
            "POST",
            "/api/{spaceId}/deployments",
            path_params={"spaceId": "Spaces-1"},
            body={"project": project, "environment": "production", "finished_at": 1709294400},
            key=ADMIN_KEY,
        )
    summary = scheduled_run(lambda_context)
    assert summary["spaces"] == 1
    assert summary["streams_pending"] == 2
    assert summary["streams_processed"] == 2  # by the worker, from the item the schedule sent
    assert (summary["schedule"]["items_sent"], summary["items_failed"]) == (1, 0)


def test_the_schedule_only_sends_work_items_and_the_worker_does_them(
    api: Api, store: Any, aws: Any, lambda_context: Any, clock: Clock
) -> None:
    import boto3

    create_deployment(api, project="a", finished_at=1709294400)
    clock.advance(SETTLE)  # the tick comes after the index shows the write
    tick = invoke("RecomputeFunction", load_event("RecomputeFunction.json"), lambda_context)
    assert (tick["spaces"], tick["streams_pending"], tick["items_sent"], tick["skipped"]) == (1, 1, 1, False)
    assert len(store.list_dirty_streams("Spaces-1")) == 1  # nothing done by the schedule itself
    (message,) = boto3.client("sqs").receive_message(QueueUrl=aws.recompute_queue_url)["Messages"]
    assert json.loads(message["Body"])["kind"] == "space"

    event = load_event("RecomputeWorkerFunction.json")
    event["Records"][0]["body"] = message["Body"]
    assert invoke("RecomputeWorkerFunction", event, lambda_context) == {"batchItemFailures": []}
    assert store.list_dirty_streams("Spaces-1") == []


def test_a_malformed_work_item_fails_alone_and_the_others_are_done(
    api: Api, store: Any, lambda_context: Any, clock: Clock
) -> None:
    create_deployment(api, project="a", finished_at=1709294400)
    clock.advance(SETTLE)  # the item comes after the index shows the write
    event = load_event("RecomputeWorkerFunction.json")
    first, second = event["Records"]
    second["body"] = '{"kind": "everything", "space_id": "Spaces-1"}'
    event["Records"] = [second, first]

    result = invoke("RecomputeWorkerFunction", event, lambda_context)

    assert result == {"batchItemFailures": [{"itemIdentifier": second["messageId"]}]}
    assert store.list_dirty_streams("Spaces-1") == []  # the space's item was done all the same
