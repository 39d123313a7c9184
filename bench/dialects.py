"""Every dialect's deployment door, in-process (moto in-process): requests per second through the
handler, and DynamoDB round trips and capacity units per event (goal: one transactional write
round trip per deployment event, whatever its dialect)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

N = 100


def _doors() -> dict[str, tuple[str, Callable[[int], dict[str, Any]]]]:
    """Dialect name -> (function logical id, event for the n-th distinct deployment)."""
    from tests.support.events import load_event

    native = load_event("CreateDeploymentFunction.json")
    datadog = load_event("DatadogDeploymentFunction.json")
    dx = load_event("DxCreateDeploymentFunction.json")
    github = load_event("GithubWebhookFunction.json")
    status = load_event("github_deployment_status.json")

    def with_body(event: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        fresh = copy.deepcopy(event)
        fresh["body"] = json.dumps(body)
        fresh["headers"]["authorization"] = "Bearer bench-key"
        return fresh

    def native_event(n: int) -> dict[str, Any]:
        body = json.loads(native["body"]) | {"version": f"1.0.{n}", "finished_at": 1709294400 + n}
        return with_body(native, body)

    def datadog_event(n: int) -> dict[str, Any]:
        body = json.loads(datadog["body"])
        body["data"]["attributes"] |= {"version": f"v{n}", "finished_at": 1693491984 + n, "started_at": 1693491974 + n}
        return with_body(datadog, body)

    def dx_event(n: int) -> dict[str, Any]:
        return with_body(dx, json.loads(dx["body"]) | {"reference_id": f"bench-{n}", "deployed_at": 1680723287 + n})

    def github_event(n: int) -> dict[str, Any]:
        payload = copy.deepcopy(status)
        payload["deployment"]["id"] = 1_000_000 + n
        payload["deployment_status"]["id"] = 2_000_000 + n
        raw = json.dumps(payload)
        event = copy.deepcopy(github)
        event["body"] = raw
        event["headers"] |= {
            "x-github-event": "deployment_status",
            "x-github-delivery": f"bench-{n}",
            "x-hub-signature-256": "sha256="
            + hmac.new(b"bench-webhook-secret", raw.encode(), hashlib.sha256).hexdigest(),
        }
        event["headers"].pop("authorization", None)
        return event

    return {
        "native": ("CreateDeploymentFunction", native_event),
        "datadog": ("DatadogDeploymentFunction", datadog_event),
        "dx": ("DxCreateDeploymentFunction", dx_event),
        "github deployment_status": ("GithubWebhookFunction", github_event),
    }


def run() -> None:
    """Print one row per dialect."""
    from bench.ingest import _environment, metered, seeded_table

    _environment()
    from dora_local.motofix import mock_aws  # moto as the local runtime and the tests run it

    with mock_aws():
        from tests.conftest import _Context
        from tests.support import lambdas

        seeded_table()
        meter = metered()
        print(f"deployment events per dialect ({N} each after a warm-up, in-process moto)")
        print(f"  {'dialect':26} {'req/s':>7} {'calls per event':44} {'WCU':>5} {'RCU':>5}")
        for name, (logical_id, make) in _doors().items():
            warm = lambdas.invoke(logical_id, make(0), _Context())
            assert warm["statusCode"] < 300, warm
            meter.reset()
            durations = []
            for n in range(1, N + 1):
                started = time.perf_counter()
                response = lambdas.invoke(logical_id, make(n), _Context())
                durations.append(time.perf_counter() - started)
                assert response["statusCode"] < 300, response
            calls = {k: round(v / N, 2) for k, v in meter.calls.items()}
            print(
                f"  {name:26} {1 / statistics.mean(durations):7.0f} {json.dumps(calls):44} "
                f"{meter.wcu / N:5.1f} {meter.rcu / N:5.1f}"
            )
