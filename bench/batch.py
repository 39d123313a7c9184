"""Bulk ingest: DynamoDB calls per item of a native batch and of a DX backfill (in-process moto).

Three requests through their functions, each in a fresh table whose catalogue is known (a warm
function: the project, environment and channel were registered by an earlier deployment):

- ``POST /api/{spaceId}/deployments/batch`` with 500 items without code data (half of them with a
  client id, half without: those are keyed by their fingerprint), goal <= 0.1 calls per item;
- the same with code data (repository and commit sha, each deployment owed an attribution), goal
  <= 0.5 calls per item: the attributions owed go to the retry queue (ten messages per SQS call, a
  stream's in finish order), whose worker attempts them after the answer (bench/attribution.py
  measures one attempt);
- ``POST /api/deployments.backfill`` with 1,000 CSV rows naming a repository and a commit (a DX
  backfill: every row keyed by its ``reference_id``), goal <= 0.5 calls per item.

Then each request is sent again (a client's retry after a timeout): nothing is stored twice, and
the retry costs reads only. SQS calls are printed beside the DynamoDB ones. ``BENCH_BATCH`` and
``BENCH_ROWS`` (environment) shrink the requests for a quick run; the calls per item stay comparable.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

BATCH = int(os.environ.get("BENCH_BATCH", "500"))
ROWS = int(os.environ.get("BENCH_ROWS", "1000"))
START = datetime(2024, 3, 1, tzinfo=UTC)
STREAMS = 5  # environments the items are spread over (each a stream of the one project)


def _item(n: int, *, code: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "project": "shop",
        "environment": f"env-{n % STREAMS}",
        "finished_at": int((START + timedelta(minutes=n)).timestamp()),
        "version": f"1.0.{n}",
    }
    if n % 2 == 0:
        item["id"] = f"bench-{n}"
    if code:
        item |= {"repository": "acme/shop", "commit_sha": f"{n + 1:040x}"}
    return item


def _csv() -> str:
    lines = ["reference_id,deployed_at,service,environment,repository,commit_sha"]
    for n in range(ROWS):
        at = int((START + timedelta(minutes=n)).timestamp())
        lines.append(f"ref-{n},{at},shop,env-{n % STREAMS},acme/shop,{n + 1:040x}")
    return "\n".join(lines) + "\n"


class _Calls:
    """Counts calls per service and operation of the function's own clients."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def hook(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    def dynamodb(self) -> int:
        return sum(v for k, v in self.calls.items() if not k.startswith(("SendMessage", "ReceiveMessage")))

    def sqs(self) -> int:
        return sum(v for k, v in self.calls.items() if k.startswith("SendMessage"))


def _metered() -> _Calls:
    from dora_insights.dal import aws as dal_aws

    meter = _Calls()
    for service in ("dynamodb", "sqs"):
        dal_aws.client(service).meta.events.register(f"before-parameter-build.{service}", meter.hook)
    return meter


def _setup() -> tuple[Any, str]:
    import boto3

    from bench.ingest import seeded_table
    from dora_insights.config import reset_settings
    from dora_insights.dal import aws as dal_aws

    store = seeded_table()
    url = boto3.client("sqs").create_queue(QueueName="bench-retry")["QueueUrl"]
    os.environ["RETRY_QUEUE_URL"] = url
    reset_settings()
    dal_aws.reset_clients()
    return store, url


def _invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
    from tests.conftest import _Context
    from tests.support import lambdas

    response = lambdas.invoke(function, event, _Context())
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])  # type: ignore[no-any-return]


def _batch_event(items: list[dict[str, Any]]) -> dict[str, Any]:
    from tests.support.events import http_event

    return http_event(
        "POST",
        "/api/{spaceId}/deployments/batch",
        path_params={"spaceId": "Spaces-1"},
        body={"deployments": items},
        key="bench-key",
    )


def _backfill_event() -> dict[str, Any]:
    from tests.support.events import http_event

    return http_event(
        "POST",
        "/api/deployments.backfill",
        raw_body=_csv(),
        headers={"content-type": "text/csv"},
        key="bench-key",
    )


def _warm() -> None:
    """Register the catalogue (one deployment per environment) as an earlier request would have."""
    body = _invoke(
        "CreateDeploymentBatchFunction", _batch_event([_item(BATCH + n, code=False) for n in range(STREAMS)])
    )
    assert body["created"] == STREAMS, body


def _queued(url: str) -> int:
    """Messages waiting on the retry queue."""
    import boto3

    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def _case(title: str, event: dict[str, Any], function: str, count: int, goal: float, *, code: bool) -> None:
    from bench.ingest import fresh_caches
    from dora_local.motofix import mock_aws  # moto as the local runtime and the tests run it

    with mock_aws():
        _, url = _setup()
        _warm()
        meter = _metered()
        started = time.perf_counter()
        first = _invoke(function, event)
        seconds = time.perf_counter() - started
        calls, sqs = meter.dynamodb(), meter.sqs()
        by_operation = {k: v for k, v in meter.calls.items() if not k.startswith("SendMessage")}
        messages = _queued(url)
        meter = _metered()
        again = _invoke(function, event)
        retry_calls = meter.dynamodb()
        created = first.get("created")
        assert created == count, first
        fresh_caches()
    print(f"{title}")
    print(f"  DynamoDB calls per item      {calls / count:.3f}  (goal <= {goal}; {calls} calls: {by_operation})")
    print(f"  SQS calls                    {sqs}")
    print(f"  function time                {seconds:.2f} s in process")
    print(f"  attributions deferred        {messages} retry messages (the worker attempts them after the answer)")
    print(
        f"  the same request again       {retry_calls / count:.3f} calls per item,"
        f" {again.get('created')} stored twice (goal 0)"
    )


def run() -> None:
    """Print calls per item of a 500-item batch without and with code data and of a 1,000-row backfill."""
    from bench.ingest import _environment

    _environment()
    print(f"bulk ingest (in-process moto, {STREAMS} streams, catalogue known)")
    try:
        _cases()
    finally:  # the queue lived in this bench's moto: the next bench must not send to it
        from dora_insights.config import reset_settings
        from dora_insights.dal import aws as dal_aws

        os.environ.pop("RETRY_QUEUE_URL", None)
        reset_settings()
        dal_aws.reset_clients()


def _cases() -> None:
    without = [_item(n, code=False) for n in range(BATCH)]
    with_code = [_item(n, code=True) for n in range(BATCH)]
    _case(
        f"native batch of {BATCH}, no code data",
        _batch_event(without),
        "CreateDeploymentBatchFunction",
        BATCH,
        0.1,
        code=False,
    )
    _case(
        f"native batch of {BATCH}, with code data",
        _batch_event(with_code),
        "CreateDeploymentBatchFunction",
        BATCH,
        0.5,
        code=True,
    )
    _case(
        f"DX backfill of {ROWS:,} rows, with code data",
        _backfill_event(),
        "DxBackfillDeploymentsFunction",
        ROWS,
        0.5,
        code=True,
    )


if __name__ == "__main__":
    run()
