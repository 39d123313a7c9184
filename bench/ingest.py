"""Native ingest: DynamoDB round trips and capacity units per request (in-process moto).

Counts every DynamoDB call the create-deployment function makes, through botocore's event
hooks on the function's own client, for a warm function whose catalogue is known (the steady
state) and for the first deployment of a new project. Goal: one write round trip and at most
one read per request. The deployments carry no code data: attribution's reads (when a
deployment names a repository or commit) are measured in bench/attribution.py.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections import Counter
from typing import Any

from bench.capacity import item_size, read_units, write_units

N = 200


def fresh_caches() -> None:
    """Forget clients and caches of an earlier mock: every benchmark starts from an empty table."""
    from dora_insights.config import reset_settings
    from dora_insights.dal import aws as dal_aws
    from dora_insights.handlers import runtime
    from dora_insights.logic import catalogue, spaces

    reset_settings()
    dal_aws.reset_clients()
    runtime.reset()
    catalogue.clear_cache()
    spaces.clear_cache()


def seeded_table() -> Any:
    """A fresh table (from template.yaml) in the active mock with space Spaces-1, the admin key
    ``bench-key`` and the webhook secret ``bench-webhook-secret`` (encrypted with a secrets key created
    in the mock, as the stack's SecretsKey; ``SECRETS_KEY_ARN`` names it); the table adapter."""
    import boto3
    from tests.conftest import NOW, _table_properties

    from dora_insights.dal.repositories import Repositories
    from dora_insights.dal.secrets import KmsSecretBox
    from dora_insights.logic import admin

    key = boto3.client("kms").create_key(KeySpec="SYMMETRIC_DEFAULT", KeyUsage="ENCRYPT_DECRYPT")
    os.environ["SECRETS_KEY_ARN"] = key["KeyMetadata"]["Arn"]
    fresh_caches()
    table = os.environ["TABLE_NAME"]
    boto3.client("dynamodb").create_table(TableName=table, **_table_properties())
    store = Repositories(table)
    admin.ensure_space(store, "Spaces-1", "Default", NOW)
    admin.ensure_api_key(store, "Spaces-1", "bench", "bench-key", NOW)
    admin.set_webhook_secret(store, KmsSecretBox(os.environ["SECRETS_KEY_ARN"]), "Spaces-1", "bench-webhook-secret")
    return store


def metered() -> _Meter:
    """A meter counting every call of the project's DynamoDB client from now on."""
    from dora_insights.dal import aws as dal_aws

    meter = _Meter()
    client = dal_aws.client("dynamodb")
    client.meta.events.register("before-parameter-build.dynamodb", meter.before)
    client.meta.events.register("after-call.dynamodb", meter.after)
    return meter


def _environment() -> None:
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "TABLE_NAME": "dora-insights-bench",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_SERVICE_NAME": "dora-insights",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)


class _Meter:
    """Counts calls and capacity units from the requests the client sends and the answers it gets."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.wcu = 0.0
        self.rcu = 0.0

    def before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        self.calls[name] += 1
        if name == "TransactWriteItems":
            for op in params["TransactItems"]:
                item = op.get("Put", {}).get("Item")
                if item is not None:
                    self.wcu += write_units(item, transactional=True)
                else:
                    self.wcu += 2.0
        elif name in ("PutItem", "UpdateItem", "DeleteItem"):
            self.wcu += write_units(params.get("Item", params.get("Key", {})), transactional=False)

    def after(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "GetItem":
            item = parsed.get("Item") or {}
            self.rcu += read_units(item_size(item), consistent=True)
        elif model.name == "BatchGetItem":
            for items in parsed.get("Responses", {}).values():
                self.rcu += sum(read_units(item_size(i), consistent=False) for i in items)
        elif model.name == "Query":
            self.rcu += read_units(sum(item_size(i) for i in parsed.get("Items", [])), consistent=False)

    def reset(self) -> None:
        self.calls.clear()
        self.wcu = self.rcu = 0.0


def run() -> None:
    """Print round trips, capacity units and handler time per native ingest."""
    _environment()
    from dora_local.motofix import mock_aws  # moto as the local runtime and the tests run it

    with mock_aws():
        from tests.conftest import _Context
        from tests.support import lambdas
        from tests.support.events import http_event

        seeded_table()
        meter = metered()

        def ingest(project: str, n: int) -> dict[str, Any]:
            body = {
                "project": project,
                "environment": "production",
                "finished_at": 1709294400 + n,
                "version": f"1.0.{n}",
            }
            event = http_event(
                "POST", "/api/{spaceId}/deployments", path_params={"spaceId": "Spaces-1"}, body=body, key="bench-key"
            )
            response = lambdas.invoke("CreateDeploymentFunction", event, _Context())
            assert response["statusCode"] == 201, response
            created: dict[str, Any] = json.loads(response["body"])
            return created

        meter.reset()
        ingest("first-project", 0)
        first = (dict(meter.calls), meter.rcu, meter.wcu)
        ingest("shop", 1)  # warm: the project is now known
        meter.reset()
        durations = []
        for n in range(2, N + 2):
            started = time.perf_counter()
            ingest("shop", n)
            durations.append(time.perf_counter() - started)
        calls = {name: count / N for name, count in meter.calls.items()}
        writes = calls.get("TransactWriteItems", 0)
        reads = sum(v for k, v in calls.items() if k != "TransactWriteItems")
        print(f"native ingest, warm function, known catalogue ({N} requests, in-process moto)")
        print(f"  DynamoDB calls per request   {calls}")
        print(f"  write round trips            {writes:.2f}  (goal 1)")
        print(f"  read round trips             {reads:.2f}  (goal <= 1: the API-key lookup)")
        print(f"  write capacity units         {meter.wcu / N:.1f} WCU (item + 3 GSI copies, dirty mark)")
        print(f"  read capacity units          {meter.rcu / N:.1f} RCU")
        print(f"  handler time (median)        {statistics.median(durations) * 1000:.2f} ms")
        print("first deployment of a new project (catalogue registration)")
        print(f"  DynamoDB calls               {first[0]}")
        print(f"  capacity units               {first[1]:.1f} RCU, {first[2]:.1f} WCU")
