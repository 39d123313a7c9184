"""The running cost that is not DynamoDB capacity (CloudWatch Logs, EMF custom metrics).

Measured here per request kind and per recompute item, at the log level template.yaml's Globals give
(``POWERTOOLS_LOG_LEVEL``; the other tests run at WARNING):
- the bytes of the log lines the function writes (CloudWatch Logs ingestion, about USD 0.50 per GB),
- the EMF records, the distinct (metric name, dimension set) pairs, each about USD 0.30 a month, and
  whether a dimension takes a value per space, stream or user input (a billed metric per value).

Costs are for a team sending 10,000 deployments a day (300,000 a month) and reading dashboards.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api
from tests.support.events import load_event
from tests.support.template import template

SP = {"spaceId": "Spaces-1"}
DEPLOYMENTS = "/api/{spaceId}/deployments"
USD_PER_GB = 0.50
USD_PER_METRIC_MONTH = 0.30
DEPLOYMENTS_PER_MONTH = 300_000


def _globals_variables() -> dict[str, Any]:
    return dict(template()["Globals"]["Function"]["Environment"]["Variables"])


@dataclass
class Output:
    """What one piece of work wrote to its log: Powertools log lines and EMF records."""

    log_lines: list[str] = field(default_factory=list)
    emf: list[dict[str, Any]] = field(default_factory=list)

    @property
    def log_bytes(self) -> int:
        return sum(len(line.encode()) + 1 for line in self.log_lines)

    @property
    def emf_bytes(self) -> int:
        return sum(len(json.dumps(r, separators=(",", ":")).encode()) + 1 for r in self.emf)

    def metric_keys(self) -> set[tuple[str, str, tuple[tuple[str, str], ...]]]:
        """(namespace, metric name, dimension values) of every metric the EMF records define."""
        keys = set()
        for record in self.emf:
            for directive in record["_aws"]["CloudWatchMetrics"]:
                for dims in directive["Dimensions"]:
                    values = tuple((d, str(record[d])) for d in dims)
                    for metric in directive["Metrics"]:
                        keys.add((directive["Namespace"], metric["Name"], values))
        return keys

    def messages(self) -> list[str]:
        return [json.loads(line).get("message", "") for line in self.log_lines]


class Capture:
    """The functions' log at the template's level, and their EMF records on stdout."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.stream = io.StringIO()

    def reset(self) -> None:
        self.stream.seek(0)
        self.stream.truncate()
        self.capsys.readouterr()

    def take(self) -> Output:
        out = Output()
        for line in self.stream.getvalue().splitlines():
            if line.strip():
                out.log_lines.append(line)
        for line in self.capsys.readouterr().out.splitlines():
            if line.startswith("{") and '"_aws"' in line:
                out.emf.append(json.loads(line))
            elif line.startswith("{") and '"level"' in line:
                out.log_lines.append(line)  # a log line that reached stdout another way
        self.reset()
        return out


@pytest.fixture
def capture(capsys: pytest.CaptureFixture[str]) -> Iterator[Capture]:
    from dora_insights.observability import logger

    cap = Capture(capsys)
    level = str(_globals_variables()["POWERTOOLS_LOG_LEVEL"])
    target = logging.getLogger(os.environ["POWERTOOLS_SERVICE_NAME"])
    handlers = [h for h in target.handlers if isinstance(h, logging.StreamHandler)]
    assert handlers, "Powertools' handler not found"
    previous = [h.setStream(cap.stream) for h in handlers]
    previous_level = target.level
    logger.setLevel(level)
    try:
        yield cap
    finally:
        target.setLevel(previous_level)
        for h, stream in zip(handlers, previous, strict=True):
            h.setStream(stream)


def _deployment(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "project": "shop",
        "environment": "production",
        "finished_at": f"2024-02-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z",
        "version": f"1.0.{n}",
        **fields,
    }


def _sha(n: int) -> str:
    return f"{n + 1:040x}"


MARKER = "BODY-MARKER-4f1c"  # put in free text of request bodies: no log line may repeat it


def _push(api: Api, delivery: str) -> Any:
    from dora_insights.dialects.github import sign
    from tests.support.fixtures import GITHUB_SECRET

    payload = load_event("github_push.json")
    for c in payload["commits"]:
        c["message"] = f"{MARKER} " + "a long commit message " * 200
    if payload.get("head_commit"):
        payload["head_commit"]["message"] = f"{MARKER} head"
    raw = json.dumps(payload)
    headers = {
        "x-github-event": "push",
        "x-github-delivery": delivery,
        "x-hub-signature-256": sign(GITHUB_SECRET, raw.encode()),
    }
    return api.call("POST", "/webhooks/github/{spaceId}", path_params=SP, raw_body=raw, headers=headers)


# kind -> (most log lines, most log bytes) for one request, at the template's level. Measured: see the
# test's docstring.
REQUEST_BUDGETS: dict[str, tuple[int, int]] = {
    "native_create": (1, 800),
    "batch_500": (2, 1_500),
    "dx_create": (1, 800),
    "github_push": (1, 700),
    "summary": (1, 700),
    "report_read": (1, 700),
    "list_page": (1, 700),
    "refusal_4xx": (1, 700),
    "auth_failure": (1, 700),
}


def _request(kind: str, api: Api, capture: Capture) -> tuple[int, Output]:
    """Set up what ``kind`` needs, then send one request of it; its status and what it logged."""
    from tests.support.insights import create_report

    report = create_report(api) if kind == "report_read" else ""
    if kind in ("summary", "report_read", "list_page"):
        body = {"deployments": [_deployment(i, repository="acme/shop", commit_sha=_sha(i)) for i in range(50)]}
        assert api.call("POST", DEPLOYMENTS + "/batch", path_params=SP, body=body, key=ADMIN_KEY).status < 300
    capture.reset()
    if kind == "native_create":
        body = _deployment(1, repository="acme/shop", commit_sha=_sha(1), version=MARKER)
        r = api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY)
    elif kind == "batch_500":
        body = {
            "deployments": [
                _deployment(i, repository="acme/shop", commit_sha=_sha(i), version=f"{MARKER}-{i}") for i in range(500)
            ]
        }
        r = api.call("POST", DEPLOYMENTS + "/batch", path_params=SP, body=body, key=ADMIN_KEY)
    elif kind == "dx_create":
        body = {
            "reference_id": MARKER,
            "deployed_at": 1709290000,
            "service": "svc",
            "commit_sha": _sha(7),
            "repository": "acme/shop",
        }
        r = api.call("POST", "/api/deployments.create", body=body, key=ADMIN_KEY)
    elif kind == "github_push":
        r = _push(api, "delivery-1")
    elif kind == "summary":
        r = api.call("GET", "/api/{spaceId}/summary", path_params=SP, key=ADMIN_KEY)
    elif kind == "report_read":
        r = api.call(
            "GET",
            "/api/{spaceId}/insights/reports/{reportId}/metrics",
            path_params={**SP, "reportId": report},
            key=ADMIN_KEY,
        )
    elif kind == "list_page":
        r = api.call("GET", DEPLOYMENTS, path_params=SP, query={"limit": "100"}, key=ADMIN_KEY)
    elif kind == "refusal_4xx":
        big = MARKER + "Z" * 20_000
        body = {**_deployment(2), big: 1, "environment": big, "version": big}
        r = api.call("POST", DEPLOYMENTS, path_params=SP, body=body, key=ADMIN_KEY)
    elif kind == "auth_failure":
        r = api.call("POST", DEPLOYMENTS, path_params=SP, body=_deployment(3, version=MARKER), key="wrong-" + MARKER)
    else:  # pragma: no cover
        raise AssertionError(kind)
    return r.status, capture.take()


@pytest.mark.parametrize("kind", list(REQUEST_BUDGETS))
def test_log_volume_and_metrics_of_one_request(kind: str, github_hooked: Api, capture: Capture) -> None:
    """One request of each kind, at the template's POWERTOOLS_LOG_LEVEL (INFO). Measured (bytes of the
    Powertools lines, each ~400 bytes of Lambda context before its own fields):
    native create 1 line 592 B ("attribution"), batch of 500 0 lines (its attributions are logged by the
    retry function: test_a_batch_logs_per_deployment_in_the_retry_function), DX create 1 line 592 B,
    GitHub push 1 line 411 B ("webhook"), /summary, report /metrics and a list page 0 lines, a 400
    1 line ~520 B ("invalid request", messages only), a 401 1 line 422 B ("refused"). No EMF record from
    any HTTP route (no per-request custom metric).
    Budgets: one line under 800 B per request (the batch: 2 lines): 10,000 deployments a day then log
    under 300,000 x 0.8 KB = 0.24 GB a month, USD 0.12. A line per item of a batch, or a body logged, would
    break them. The status of each request is checked so that a budget is never met by a request that
    did nothing."""
    lines, most = REQUEST_BUDGETS[kind]
    status, out = _request(kind, github_hooked, capture)
    expected = {"refusal_4xx": 400, "auth_failure": 401}.get(kind)
    assert (status == expected) if expected else (200 <= status < 300), (kind, status)
    assert len(out.log_lines) <= lines, (kind, out.messages())
    assert out.log_bytes <= most, (kind, out.log_bytes, out.log_lines)
    assert out.emf == [], (kind, out.emf)
    assert not any(MARKER in line for line in out.log_lines), (kind, "a request body reached the log")
    assert all(len(line) <= 2_048 for line in out.log_lines), (kind, "a log line carries a payload")


def test_a_batch_logs_per_deployment_in_the_retry_function(api: Api, aws: Any, capture: Capture) -> None:
    """A batch of 500 deployments naming commits defers their attributions to the retry queue; the retry
    function then logs, per deployment, two INFO lines saying the same thing ("attribution" from
    logic/attribution.py:_log_attempt and "attribution retry" from logic/attribution_retry.py:retry).
    Measured: 50 messages in 5 invocations, 1,000 lines, 456,500 B (913 B per deployment), 5 EMF records
    (one per invocation, 236 B each).
    Budget: 2 lines and 1,100 B per deployment, one EMF record per invocation: 300,000 deployments a month
    then log at most 0.33 GB, USD 0.17 a month; proportional to the deployments, so pinned, not failed.
    (One line would do: the second line only repeats the first.)"""
    from tests.support.retries import drain_retries

    body = {"deployments": [_deployment(i, repository="acme/shop", commit_sha=_sha(i)) for i in range(500)]}
    assert api.call("POST", DEPLOYMENTS + "/batch", path_params=SP, body=body, key=ADMIN_KEY).status < 300
    assert capture.take().log_lines == []
    messages = drain_retries(aws, lambda_context=_context())
    out = capture.take()
    assert messages >= 1
    assert 500 <= len(out.log_lines) <= 2 * 500, len(out.log_lines)
    assert out.log_bytes <= 1_100 * 500, out.log_bytes
    assert len(out.emf) <= messages // 10 + 1, len(out.emf)


def _context() -> Any:
    from tests.conftest import _Context

    return _Context()


def _attempts_until_give_up() -> int:
    """The retry attempts of an attribution that stays Pending until it gives up (its delays add up to
    ``GIVE_UP_AFTER``), as domain/attribution.py schedules them."""
    from dora_insights.domain.attribution import GIVE_UP_AFTER, next_retry_delay

    waited, attempts = 0, 0
    while waited < GIVE_UP_AFTER.total_seconds():
        waited += next_retry_delay(attempts)
        attempts += 1
    return attempts


def test_a_pending_deployment_logs_for_three_days(api: Api, aws: Any, capture: Capture, lambda_context: Any) -> None:
    """A deployment naming a commit the service never receives (a repository whose code host is not
    connected) stays Pending and is retried from SQS with delays 30 s, 60 s ... capped at 900 s for 3 days:
    292 attempts, each its own Lambda invocation. Each attempt wrote 2 INFO lines and one EMF record (1,148 B,
    about 335 KB over the deployment's 3 days: at 10,000 such deployments a day, ~100 GB a month, USD 50 of
    log ingestion). Budget: 20 KB per pending deployment over its life: a line at its first attempt and at
    its outcome, the attempts in between at DEBUG, no metric for an attempt that changed nothing."""
    from tests.support.lambdas import invoke

    created = api.call(
        "POST",
        DEPLOYMENTS,
        path_params=SP,
        body=_deployment(1, repository="acme/not-connected", commit_sha=_sha(1)),
        key=ADMIN_KEY,
    )
    assert created.status == 201, created.body
    deployment_id = created.body["id"]
    capture.take()
    record = load_event("AttributionRetryFunction.json")["Records"][0]
    per_attempt = []
    for attempt in (1, 2, 3):
        body = json.dumps({"space_id": "Spaces-1", "deployment_id": deployment_id, "attempt": attempt})
        answer = invoke(
            "AttributionRetryFunction",
            {"Records": [{**record, "messageId": f"m{attempt}", "body": body}]},
            lambda_context,
        )
        assert answer == {"batchItemFailures": []}
        out = capture.take()
        per_attempt.append(out.log_bytes + out.emf_bytes)
    stored = api.call(
        "GET", DEPLOYMENTS + "/{deploymentId}", path_params={**SP, "deploymentId": deployment_id}, key=ADMIN_KEY
    ).body
    assert stored["attribution"]["state"] == "Pending" and stored["attribution"]["attempts"] == 4
    attempts = _attempts_until_give_up()
    assert attempts > 250  # 292 as scheduled now
    lifetime = max(per_attempt) * attempts
    assert lifetime <= 20_000, (
        f"a pending deployment logs {lifetime:,} B over {attempts} attempts ({per_attempt} B per attempt): "
        f"{lifetime * 300_000 / 1e9:.0f} GB = USD {lifetime * 300_000 / 1e9 * USD_PER_GB:.0f} a month at 10,000/day"
    )


def test_recompute_tick_and_item_log_and_metric_volume(
    api: Api, capture: Capture, lambda_context: Any, clock: Any
) -> None:
    """Measured at INFO, per run (tick + its one item): 3 lines, 2,122 B (the tick's "recompute schedule"
    552 B and "recompute tick finished" 604 B carry the same summary; "recompute item finished" 963 B)
    and 2 EMF records, 2,354 B. Two runs before any deployment: 6 lines, 4,248 B, 4 EMF records, 4,712 B
    (each run still sent the space an item). 8,640 runs a month x ~4.5 KB = 39 MB per busy space:
    USD 0.02. Budget per run: 3 lines, 2.5 KB of log, 2 EMF records (the tick's, one per worker batch);
    an item's line at most 2 KB."""
    from tests.support.recompute import scheduled_run

    capture.reset()
    scheduled_run(lambda_context)  # two runs with no deployment yet: each still sends the space an item
    scheduled_run(lambda_context)
    idle = capture.take()
    assert len(idle.log_lines) <= 2 * 3 and idle.log_bytes <= 2 * 2_500, (idle.log_bytes, idle.messages())
    assert len(idle.emf) <= 2 * 2
    create = _deployment(1, repository="acme/shop", commit_sha=_sha(1))
    assert api.call("POST", DEPLOYMENTS, path_params=SP, body=create, key=ADMIN_KEY).status == 201
    capture.reset()
    scheduled_run(lambda_context)
    busy = capture.take()
    items = [line for line in busy.log_lines if '"recompute item finished"' in line]
    tick = [line for line in busy.log_lines if '"recompute item finished"' not in line]
    assert len(items) == 1, busy.messages()
    assert len(tick) <= 3 and sum(len(t) + 1 for t in tick) <= 2_500, busy.messages()
    assert len(items[0]) <= 2_000
    assert len(busy.emf) <= 2, len(busy.emf)  # the tick's and the worker batch's


def test_custom_metric_dimensions_are_bounded(
    api: Api, aws: Any, capture: Capture, lambda_context: Any, clock: Any
) -> None:
    """Every EMF record the asynchronous functions write (recompute tick, worker, attribution retry) has
    the one dimension set ``[service]`` with the constant service name: no space id, stream key, report or
    user input as a dimension (each value would be a metric billed USD 0.30 a month). Checked from two
    spaces' work, so that a per-space dimension would show as two values. And no code
    adds a dimension (``add_dimension``, ``single_metric``, default dimensions) or names a metric from
    data (every ``add_metric`` name is a string literal)."""
    import ast
    from pathlib import Path

    from dora_insights.dal.repositories import Repositories
    from dora_insights.logic import admin
    from tests.conftest import NOW
    from tests.support.fixtures import OTHER_KEY, OTHER_SPACE
    from tests.support.recompute import scheduled_run
    from tests.support.retries import drain_retries

    store = Repositories(aws.table_name)
    admin.ensure_space(store, OTHER_SPACE, "Other", NOW)
    admin.ensure_api_key(store, OTHER_SPACE, "other admin", OTHER_KEY, NOW)
    capture.reset()
    for space, key in (("Spaces-1", ADMIN_KEY), (OTHER_SPACE, OTHER_KEY)):
        body = {"deployments": [_deployment(i, repository="acme/shop", commit_sha=_sha(i)) for i in range(3)]}
        assert api.call("POST", DEPLOYMENTS + "/batch", path_params={"spaceId": space}, body=body, key=key).status < 300
    drain_retries(aws, lambda_context)
    scheduled_run(lambda_context)
    out = capture.take()
    assert len(out.emf) >= 2  # the tick's and the item's (an attribution retry that counts nothing sends none)
    dimension_sets = {tuple(k[2]) for k in out.metric_keys()}
    assert dimension_sets == {(("service", os.environ["POWERTOOLS_SERVICE_NAME"]),)}, dimension_sets

    root = Path(__file__).resolve().parents[2] / "functions" / "dora_insights"
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in (
                "add_dimension",
                "set_default_dimensions",
                "single_metric",
            ):
                raise AssertionError(f"{path}: {node.attr} adds a dimension")
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_metric":
                name = next((k.value for k in node.keywords if k.arg == "name"), None)
                if path.name == "observability.py":  # ``count`` hands its caller's literal on
                    continue
                assert isinstance(name, ast.Constant) and isinstance(name.value, str), f"{path}: add_metric name"
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "count" and node.args:
                assert isinstance(node.args[0], ast.Constant), f"{path}: count's metric name"


def _metric_names_in_code() -> set[str]:
    import ast
    from pathlib import Path

    names: set[str] = set()
    root = Path(__file__).resolve().parents[2] / "functions" / "dora_insights"
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_metric":
                for k in node.keywords:
                    if k.arg == "name" and isinstance(k.value, ast.Constant):
                        names.add(str(k.value.value))
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", "") == "count"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(str(node.args[0].value))
    return names


def test_custom_metrics_emitted_on_every_tick_fit_the_free_tier(
    api: Api, capture: Capture, lambda_context: Any, clock: Any
) -> None:
    """The recompute tick (every 5 minutes) and each worker batch emitted every counter whatever its value:
    26 distinct metrics from one ordinary run, most of them 0. CloudWatch bills a custom metric USD 0.30 a
    month for every hour it is emitted, so the always-emitted ones cost their full price (USD 7.80 a month
    whatever the traffic). Counters are now sent only when not zero (``observability.count``), so an
    ordinary run emits at most 10 (CloudWatch's free 10), ``RecomputeLag`` always (its alarm)."""
    from tests.support.recompute import scheduled_run

    create = _deployment(1, repository="acme/shop", commit_sha=_sha(1))
    assert api.call("POST", DEPLOYMENTS, path_params=SP, body=create, key=ADMIN_KEY).status == 201
    capture.reset()
    scheduled_run(lambda_context)
    out = capture.take()
    keys = out.metric_keys()
    zero = sorted(
        {
            k[1]
            for k in keys
            for r in out.emf
            if k[1] in r and all(v == 0 for v in (r[k[1]] if isinstance(r[k[1]], list) else [r[k[1]]]))
        }
    )
    in_code = _metric_names_in_code()
    assert len(in_code) >= len(keys)
    assert len(keys) <= 10, (
        f"{len(keys)} custom metrics emitted by one ordinary tick and item (USD {len(keys) * USD_PER_METRIC_MONTH:.2f}"
        f" a month; {len(in_code)} in the code: USD {len(in_code) * USD_PER_METRIC_MONTH:.2f}); "
        f"{len(zero)} of them 0: {zero}"
    )


def test_log_configuration_keeps_cost_bounded() -> None:
    """Every function logs into the one group ``FunctionsLogGroup`` (Globals
    LoggingConfig, no function overriding it: no /aws/lambda/<fn> group created by Lambda with no expiry);
    it and the API access log group expire (``LogRetentionDays``, default 30, at most 30 by default); the
    level is INFO, never DEBUG; the API access log is one JSON line of 13 fields (~450 B per request:
    300,000 requests a month = 0.14 GB, USD 0.07) with no path, header, query or body."""
    from tests.support.template import resources

    tpl = template()
    function_globals = tpl["Globals"]["Function"]
    logging_config = function_globals["LoggingConfig"]
    assert logging_config["LogFormat"] == "JSON"
    group = logging_config["LogGroup"]["Ref"]
    groups = resources("AWS::Logs::LogGroup")
    assert group in groups
    for name, log_group in groups.items():
        assert "RetentionInDays" in log_group["Properties"], name
    assert int(tpl["Parameters"]["LogRetentionDays"]["Default"]) <= 30
    for name, function in resources("AWS::Serverless::Function").items():
        assert "LoggingConfig" not in function["Properties"], name
        level = function["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_LOG_LEVEL")
        assert level in (None, "INFO", "WARNING", "ERROR"), name
    assert _globals_variables()["POWERTOOLS_LOG_LEVEL"] in ("INFO", "WARNING", "ERROR")
    (api,) = resources("AWS::Serverless::HttpApi").values()
    fmt = api["Properties"]["AccessLogSettings"]["Format"]
    assert json.loads(fmt.replace("$context.", "").replace("\n", " "))  # one JSON object
    assert fmt.count("$context.") <= 14
    for forbidden in ("$context.path", "$request.", "$context.authorizer", "$input", "querystring"):
        assert forbidden not in fmt, forbidden
    assert len(fmt) <= 600


def test_xray_traces_are_paid_for_something() -> None:
    """Nothing instruments the code for X-Ray (no Powertools Tracer, no aws-xray-sdk) and an HTTP API
    passes no trace header: a trace would hold only Lambda's own segments, which the REPORT log line gives
    too, at USD 5 per million past the free 100,000. So no function is traced unless the stack's
    ``TracingMode`` asks for it (``PassThrough`` by default)."""
    from pathlib import Path

    from tests.support.template import resources

    tracing = template()["Globals"]["Function"].get("Tracing")
    assert tracing == {"Ref": "TracingMode"}
    assert template()["Parameters"]["TracingMode"]["Default"] == "PassThrough"
    traced = [
        n
        for n, f in resources("AWS::Serverless::Function").items()
        if f["Properties"].get("Tracing", template()["Parameters"]["TracingMode"]["Default"]) == "Active"
    ]
    root = Path(__file__).resolve().parents[2] / "functions" / "dora_insights"
    instrumented = any("aws_xray_sdk" in p.read_text() or "Tracer(" in p.read_text() for p in root.rglob("*.py"))
    assert instrumented or not traced, f"{len(traced)} functions traced with nothing instrumented"
