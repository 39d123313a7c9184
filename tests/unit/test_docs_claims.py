"""The documents (README.md, docs/*.md, cli/README.md) say what the code does.

Each test checks one concrete claim a user or maintainer would act on: its docstring quotes the document.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY
from tests.support.template import http_routes, resources, template

ROOT = Path(__file__).resolve().parents[2]
SPACE = {"spaceId": "Spaces-1"}


def _read(path: str) -> str:
    return (ROOT / path).read_text()


def _yaml(path: str) -> Any:
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(_read(path))


def _function(logical_id: str) -> dict[str, Any]:
    return template()["Resources"][logical_id]["Properties"]


def _parameter(name: str) -> dict[str, Any]:
    return template()["Parameters"][name]


# ------------------------------------------------------------------------------------ README, DESIGN, CLI


def _route_functions() -> dict[str, dict[str, Any]]:
    return {
        name: r
        for name, r in resources("AWS::Serverless::Function").items()
        if any(e["Type"] == "HttpApi" for e in r["Properties"].get("Events", {}).values())
    }


def test_readme_says_which_route_functions_get_the_secrets_key_and_where() -> None:
    """README.md, "Architecture": route functions take "any timeout, memory or environment variables of
    their own: the seven route functions that encrypt or decrypt with the secrets key get
    `SECRETS_KEY_ARN` so" (template/functions.yaml); base.yaml holds no route function."""
    base = _yaml("template/base.yaml")["Resources"]
    assert not [
        name
        for name, r in base.items()
        if r["Type"] == "AWS::Serverless::Function"
        and any(e["Type"] == "HttpApi" for e in r["Properties"].get("Events", {}).values())
    ]
    with_key = [
        name
        for name, r in _route_functions().items()
        if "SECRETS_KEY_ARN" in (r["Properties"].get("Environment", {}) or {}).get("Variables", {})
    ]
    assert len(with_key) == 7, with_key
    assert "the seven route functions that encrypt or\n  decrypt with the secrets key" in _read("README.md")


def test_readme_route_count_is_the_templates() -> None:
    """README.md, "Architecture": "so 145 routes (122 route functions) fit one stack"."""
    functions = _route_functions()
    routes = sum(1 for r in functions.values() for e in r["Properties"]["Events"].values() if e["Type"] == "HttpApi")
    assert f"so {routes}\n  routes ({len(functions)} route functions) fit one stack" in _read("README.md")


def test_design_cites_no_document_outside_the_repository() -> None:
    """docs/DESIGN.md cited STYLE.md, which is not in the repository: every ``*.md`` a document names exists."""
    for document in ("README.md", "docs/DESIGN.md", "docs/API.md", "docs/METRICS.md", "docs/recompute.md"):
        for named in set(re.findall(r"\b([A-Za-z][\w./-]*\.md)\b", _read(document))):
            found = [p for p in (ROOT / named, ROOT / "docs" / named, ROOT / "cli" / named) if p.exists()]
            assert found or named.startswith("reference"), (document, named)


def test_cli_readme_sample_lead_time_tier() -> None:
    """cli/README.md, "`summary` and `gate`", sample output: "Lead time for changes  2h 5m median ... Elite"
    with "benchmark 2023": the 2023 tier table (METRICS §6: "< 1 day" is Elite) grades it so."""
    from dora_insights.domain.tiers import lead_time_tier

    assert lead_time_tier(2 * 3600 + 5 * 60, "2023").value == "Elite"
    assert re.search(r"Lead time for changes +2h 5m median.* Elite", _read("cli/README.md"))


# ---------------------------------------------------------------------------------------- README: Makefile


def test_readme_make_targets_exist() -> None:
    """README.md: `make serve`, `make test`, `make invoke FN=... EVENT=...`, `make bench`, `make build`,
    `make deploy`, `make lock`, `make template`, `make format`, `make vendor`; `make serve FRESH=1`."""
    makefile = _read("Makefile")
    for target in ("serve", "test", "invoke", "bench", "build", "deploy", "lock", "template", "format", "vendor"):
        assert re.search(rf"^{target}:", makefile, re.M), target
    assert "FRESH" in makefile and "--fresh" in makefile


def test_readme_make_test_runs_ruff_mypy_sam_validate_and_tests() -> None:
    """README.md: "make test  # ... runs ruff, mypy, sam validate --lint and every test"."""
    makefile = _read("Makefile")
    assert re.search(r"^test: lint typecheck validate", makefile, re.M)
    assert "ruff check" in makefile and "$(BIN)/mypy" in makefile
    assert "validate --lint --template template.yaml" in makefile
    assert re.search(r"pytest -q -n 2 tests$", makefile, re.M)


def test_readme_make_deploy_is_guided_and_builds() -> None:
    """README.md: "`make build` (`sam build`), `make deploy` (`sam deploy --guided`)"."""
    makefile = _read("Makefile")
    assert re.search(r"^deploy: build\n\t\$\(SAM\) deploy --guided", makefile, re.M)
    assert re.search(r"^build: .*\n\t\$\(SAM\) build", makefile, re.M)


def test_readme_local_defaults() -> None:
    """README.md "Try it": `PORT` (3000), `DORA_LOCAL_API_KEY` (`local-dev-key`), `DORA_LOCAL_WEBHOOK_SECRET`
    (`local-webhook-secret`), `DORA_LOCAL_DATA` (`.dora-local`); Ctrl-C "waits up to 40 s"; DESIGN §4: the
    front takes "10 MiB at most"."""
    from dora_local import runtime, server

    assert runtime.DEFAULT_API_KEY == "local-dev-key"
    assert runtime.DEFAULT_WEBHOOK_SECRET == "local-webhook-secret"
    assert server.STOP_WAIT_SECONDS == 40.0
    assert server.MAX_REQUEST_BYTES == 10 * 1024 * 1024
    assert "DORA_LOCAL_DATA ?= .dora-local" in _read("Makefile")
    assert '"3000"' in _read("local/dora_local/__main__.py")


def test_readme_local_alert_loopback_setting() -> None:
    """README.md "Alert destinations": "`make serve` also accepts `http://127.0.0.1`/`localhost`
    (`ALERT_ALLOW_LOOPBACK_HTTP=true`, a local-runtime setting only)"."""
    assert '"ALERT_ALLOW_LOOPBACK_HTTP": "true"' in _read("local/dora_local/runtime.py")
    assert "ALERT_ALLOW_LOOPBACK_HTTP" not in _read("template.yaml")


def test_docs_cited_paths_exist() -> None:
    """Paths the documents cite for maintainers (README, DESIGN, recompute.md, dashboard.md,
    moto-query-patch.md, peer-differences.md)."""
    cited = [
        "local/dora_local/faults.py",
        "local/dora_local/iam.py",
        "local/dora_local/persistence.py",
        "local/dora_local/motofix.py",
        "local/dora_local/motoindex.py",
        "functions/Makefile",
        "layers/deps/Makefile",
        "layers/deps/requirements.txt",
        "tests/unit/test_template_current.py",
        "tests/unit/test_packaging.py",
        "tests/unit/test_app_vendor.py",
        "tests/unit/test_app_weight.py",
        "tests/unit/test_app_serving.py",
        "tests/integration/test_read_your_writes.py",
        "tests/unit/logic/test_recompute_fanout.py",
        "tests/integration/test_recompute_races.py",
        "tests/integration/test_correction_neighbours.py",
        "tests/unit/logic/test_eventual_consistency.py",
        "tests/unit/domain/test_figures_format.py",
        "tests/integration/test_correction_property.py",
        "tests/unit/local/test_moto_query_patch.py",
        "tests/unit/local/test_motofix.py",
        "tests/unit/local/test_moto_item_answers.py",
        "tests/browser/test_dashboard_accessibility.py",
        "tests/e2e/test_fourkeys_comparison.py",
        "tests/support/replica_lag.py",
        "tests/support/contention.py",
        "tests/support/recompute.py",
        "bench/fanout.py",
        "bench/dashboard.py",
        "bench/local_runtime.py",
        "bench/dora_metrics.py",
        "events/RecomputeWorkerFunction.json",
        "events/http_api_request.json",
        "tools/vendor.py",
        "tools/fourkeys/compare.py",
        "template/generate.py",
        "functions/dora_insights/static/docs/docs.js",
        "functions/dora_insights/static/vendor/vendor.json",
        "functions/dora_insights/logic/alerts.py",
        "functions/dora_insights/logic/freshness.py",
        "functions/dora_insights/handlers/invocation_time.py",
        "functions/dora_insights/dal/rollups.py",
        "functions/dora_insights/dal/recompute_queue.py",
        "functions/dora_insights/dal/secrets.py",
        "functions/dora_insights/dal/keys.py",
        "action.yml",
        ".ci/run",
    ]
    assert [p for p in cited if not (ROOT / p).exists()] == []


def test_docs_cited_symbols_exist() -> None:
    """docs/recompute.md and DESIGN cite module members by name: `logic.recompute` `plan`, `schedule`,
    `process`, `run`, `combine`, `STREAM_GROUP`; `logic.settings.mark_for_figure_rules`;
    `MetricsRepository.mark_caught_up`; `freshness._covered`, `freshness._release_neighbours`, `SETTLE`;
    `domain/figures.ReleasePrefixes`, `FIGURES_FORMAT`; `logic.metrics.VIEW_FORMAT`;
    `dal.store.refusal_for_now`; `Store.transact_contended`, `transact_or_contended`; `dal.keys.expired`;
    `tests/support/recompute.py`'s `scheduled_run`; `dora_local.motofix.install`, `unpatched`,
    `VERIFIED_MOTO_VERSIONS`, `_patch_item_answers`; `Runtime.start_aws`."""
    from dora_insights.dal import keys, store
    from dora_insights.domain import figures
    from dora_insights.logic import freshness, metrics, recompute, settings
    from dora_insights.logic.ports import MetricsRepository
    from dora_local import motofix, runtime
    from tests.support import recompute as support_recompute

    for name in ("plan", "schedule", "process", "run", "combine", "STREAM_GROUP"):
        assert hasattr(recompute, name), name
    assert hasattr(settings, "mark_for_figure_rules")
    assert hasattr(MetricsRepository, "mark_caught_up")
    for name in ("_covered", "_release_neighbours", "SETTLE", "READ_BOUND", "READ_STREAMS"):
        assert hasattr(freshness, name), name
    assert hasattr(figures, "ReleasePrefixes") and hasattr(figures, "FIGURES_FORMAT")
    assert hasattr(metrics, "VIEW_FORMAT")
    assert hasattr(store, "refusal_for_now")
    assert hasattr(store.Store, "transact_contended") and hasattr(store.Store, "transact_or_contended")
    assert hasattr(keys, "expired")
    assert hasattr(support_recompute, "scheduled_run")
    for name in ("install", "unpatched", "VERIFIED_MOTO_VERSIONS", "_patch_item_answers", "WriteNotKeptError"):
        assert hasattr(motofix, name), name
    assert hasattr(runtime.Runtime, "start_aws")


# ------------------------------------------------------------------------------------- template: numbers


def test_readme_limits_at_the_edge_parameters() -> None:
    """README.md "Limits at the edge": "100/s steady, bursts of 200" (`ApiThrottlingRateLimit`,
    `ApiThrottlingBurstLimit`); recompute "reserved concurrency 1"; "at most 20 batches at once"
    (`RecomputeWorkerConcurrency`); access logs kept `LogRetentionDays`, "default 30 days"; `PublicBaseUrl`
    "empty (the default)"; Stage "e.g. prod"."""
    assert _parameter("ApiThrottlingRateLimit")["Default"] == 100
    assert _parameter("ApiThrottlingBurstLimit")["Default"] == 200
    assert _parameter("RecomputeReservedConcurrency")["Default"] == 1
    assert _parameter("RecomputeWorkerConcurrency")["Default"] == 20
    assert _parameter("LogRetentionDays")["Default"] == 30
    assert _parameter("PublicBaseUrl")["Default"] == ""
    settings = resources("AWS::Serverless::HttpApi")["HttpApi"]["Properties"]["DefaultRouteSettings"]
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}


def test_readme_attribution_retries_scaling() -> None:
    """README.md "Limits at the edge": "Attribution retries: at most 5 batches of 10 at once";
    "A retry message that fails 5 times goes to the dead-letter queue"."""
    retry = _function("AttributionRetryFunction")["Events"]["Retry"]["Properties"]
    assert retry["BatchSize"] == 10
    assert retry["ScalingConfig"]["MaximumConcurrency"] == 5
    assert resources("AWS::SQS::Queue")["RetryQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 5


def test_recompute_md_worker_and_queue_numbers() -> None:
    """docs/recompute.md: "BatchSize 5", "VisibilityTimeout 1,800 s, 6x the worker's 300 s Timeout",
    "after 3 receives it goes to the DLQ"; README: the schedule "every 5 minutes", "a tick that finds one
    still going waits up to 4 minutes and is then dropped, and a failed tick is not retried"."""
    worker = _function("RecomputeWorkerFunction")
    assert worker["Timeout"] == 300
    assert worker["Events"]["Items"]["Properties"]["BatchSize"] == 5
    assert worker["Events"]["Items"]["Properties"]["ScalingConfig"]["MaximumConcurrency"] == {
        "Ref": "RecomputeWorkerConcurrency"
    }
    queue = resources("AWS::SQS::Queue")["RecomputeQueue"]["Properties"]
    assert queue["VisibilityTimeout"] == 1800 == 6 * worker["Timeout"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 3
    schedule = _function("RecomputeFunction")
    assert schedule["Events"]["Schedule"]["Properties"]["Schedule"] == "rate(5 minutes)"
    assert schedule["EventInvokeConfig"] == {"MaximumEventAgeInSeconds": 240, "MaximumRetryAttempts": 0}


def test_readme_alert_delivery_retry_numbers() -> None:
    """README.md "Alert destinations": "A refused or unanswered delivery (5 s timeout ...) is retried every
    6 minutes, 6 attempts in all, then the event lands in the `alert-delivery-dlq` queue (alarm
    `...-alert-delivery-dead-letters`)"."""
    from dora_insights.logic import destinations

    queue = resources("AWS::SQS::Queue")["AlertDeliveryQueue"]["Properties"]
    assert queue["VisibilityTimeout"] == 360
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 6
    assert destinations.SEND_TIMEOUT_SECONDS == 5.0
    dlq_name = resources("AWS::SQS::Queue")["AlertDeliveryDeadLetterQueue"]["Properties"]["QueueName"]
    assert "alert-delivery-dlq" in json.dumps(dlq_name)
    alarm = resources("AWS::CloudWatch::Alarm")["AlertDeliveryDeadLetterAlarm"]["Properties"]["AlarmName"]
    assert "alert-delivery-dead-letters" in json.dumps(alarm)


def test_readme_access_log_group_and_fields() -> None:
    """README.md "Limits at the edge": access logs in `/aws/apigateway/dora-insights-<Stage>-access` with
    `requestId`, `ip`, `requestTime`, `httpMethod`, `routeKey`, `status`, `protocol`, `responseLength`,
    `responseLatency`, `integrationLatency`, `integrationStatus`, `error` and `integrationError`; no path;
    functions log to `/aws/lambda/dora-insights-<Stage>`."""
    group = resources("AWS::Logs::LogGroup")
    assert "/aws/apigateway/dora-insights-${Stage}-access" in json.dumps(group["ApiAccessLogGroup"])
    assert "/aws/lambda/dora-insights-${Stage}" in json.dumps(group["FunctionsLogGroup"])
    fmt = json.loads(resources("AWS::Serverless::HttpApi")["HttpApi"]["Properties"]["AccessLogSettings"]["Format"])
    assert sorted(fmt) == sorted(
        [
            "requestId",
            "ip",
            "requestTime",
            "httpMethod",
            "routeKey",
            "status",
            "protocol",
            "responseLength",
            "responseLatency",
            "integrationLatency",
            "integrationStatus",
            "error",
            "integrationError",
        ]
    )
    assert "$context.path" not in json.dumps(fmt)


def test_readme_data_model_table() -> None:
    """README.md "Data model": "One DynamoDB table, on-demand, point-in-time recovery, TTL on
    `expires_at`"; the stack outputs `TableName`, `SecretsKeyArn`, `RetryDeadLetterQueueUrl`; the KMS alias
    `alias/dora-insights-<stage>-secrets`."""
    (table,) = resources("AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    for output in ("TableName", "SecretsKeyArn", "RetryDeadLetterQueueUrl", "ApiUrl"):
        assert output in template()["Outputs"], output
    alias = resources("AWS::KMS::Alias")["SecretsKeyAlias"]["Properties"]["AliasName"]
    assert "alias/dora-insights-${Stage}-secrets" in json.dumps(alias)


def test_design_globals() -> None:
    """README/DESIGN: python3.11 on arm64 (`layers/deps/Makefile` "installs the hash-locked dependencies
    for arm64"); `Globals` holds what every function shares."""
    globals_ = template()["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.11"
    assert globals_["Architectures"] == ["arm64"]


def test_readme_api_overview_routes_exist() -> None:
    """README.md "API overview" and docs/API.md route tables: each documented METHOD /path is a route of
    template.yaml."""
    documented = [
        "GET /health",
        "GET /openapi.json",
        "POST /api/spaces",
        "POST /api/{spaceId}/apikeys",
        "GET /api/{spaceId}/apikeys",
        "DELETE /api/{spaceId}/apikeys/{keyId}",
        "PUT /api/{spaceId}/webhooks/github",
        "PUT /api/{spaceId}/webhooks/gitlab",
        "PUT /api/{spaceId}/webhooks/pagerduty",
        "GET /api/{spaceId}/webhooks/pagerduty",
        "PUT /api/{spaceId}/webhooks/opsgenie",
        "GET /api/{spaceId}/webhooks/opsgenie",
        "GET /api/{spaceId}/health",
        "GET /api/{spaceId}/settings",
        "PATCH /api/{spaceId}/settings",
        "POST /api/{spaceId}/deployments",
        "POST /api/{spaceId}/deployments/batch",
        "GET /api/{spaceId}/deployments",
        "GET /api/{spaceId}/deployments/{deploymentId}",
        "PATCH /api/{spaceId}/deployments/{deploymentId}",
        "DELETE /api/{spaceId}/deployments/{deploymentId}",
        "GET /api/{spaceId}/deployments/{deploymentId}/corrections",
        "POST /api/{spaceId}/failures",
        "GET /api/{spaceId}/failures",
        "GET /api/{spaceId}/failures/{failureId}",
        "DELETE /api/{spaceId}/failures/{failureId}",
        "POST /api/{spaceId}/changes",
        "GET /api/{spaceId}/summary",
        "GET /api/{spaceId}/dora/metrics",
        "GET /api/{spaceId}/projects",
        "GET /api/{spaceId}/environments",
        "GET /api/{spaceId}/tenants",
        "GET /api/{spaceId}/projectgroups",
        "GET /api/{spaceId}/channels",
        "GET /api/{spaceId}/tenanttagsets",
        "POST /api/v2/dora/deployment",
        "POST /api/v2/dora/failure",
        "POST /api/v2/dora/incident",
        "GET /api/v2/dora/deployments/{deployment_id}",
        "GET /api/v2/dora/failures/{failure_id}",
        "POST /api/v2/dora/deployments",
        "POST /api/v2/dora/failures",
        "PATCH /api/v2/dora/deployments/{deployment_id}",
        "PATCH /api/v2/dora/deployments",
        "DELETE /api/v2/dora/deployment/{deployment_id}",
        "DELETE /api/v2/dora/failure/{failure_id}",
        "POST /api/deployments.create",
        "POST /api/deployments.upsert",
        "POST /api/deployments.setPullServices",
        "POST /api/deployments.backfill",
        "POST /webhooks/github/{spaceId}",
        "POST /webhooks/gitlab/{spaceId}",
        "POST /webhooks/pagerduty/{spaceId}",
        "POST /webhooks/opsgenie/{spaceId}",
        "GET /api/{spaceId}/insights/reports",
        "POST /api/{spaceId}/insights/reports",
        "GET /api/{spaceId}/insights/reports/{reportId}",
        "PUT /api/{spaceId}/insights/reports/{reportId}",
        "DELETE /api/{spaceId}/insights/reports/{reportId}",
        "GET /api/{spaceId}/insights/reports/{reportId}/deployments",
        "GET /api/{spaceId}/insights/reports/{reportId}/metrics",
        "GET /shared/{accessToken}",
        "POST /shared/{accessToken}/login",
        "POST /api/{spaceId}/alert-destinations",
        "GET /api/{spaceId}/alert-destinations",
        "GET /api/{spaceId}/alert-destinations/{destinationId}",
        "PATCH /api/{spaceId}/alert-destinations/{destinationId}",
        "DELETE /api/{spaceId}/alert-destinations/{destinationId}",
        "POST /api/{spaceId}/alert-destinations/{destinationId}/test",
        "GET /api/{spaceId}/alert-destinations/{destinationId}/deliveries",
        "GET /app/",
        "GET /app",
        "GET /app/{asset}",
        "GET /docs",
        "GET /docs/{asset}",
        "GET /orlo/ping",
        "GET /orlo/token",
        "GET /orlo/releases",
        "POST /orlo/releases",
        "POST /orlo/releases/import",
        "GET /orlo/releases/import",
        "GET /orlo/stats",
        "GET /orlo/info",
        "GET /orlo/info/packages/list",
        "GET /orlo/info/packages/versions",
        "GET /orlo/version",
        "GET /orlo/internal/version",
        "GET /orlo/",
    ]
    routes = http_routes()
    missing = [r for r in documented if tuple(r.split(" ", 1)) not in routes]
    assert missing == []
    for prefix in ("/api/projects/{spaceId}/insights", "/api/environments/{spaceId}/insights"):
        for tail in (
            "",
            "/activity",
            "/my_last_viewed",
            "/trending",
            "/{insightId}/sharing",
            "/{insightId}/thresholds",
        ):
            assert ("GET", prefix + tail) in routes, prefix + tail
        assert ("DELETE", prefix + "/{insightId}") in routes  # answers 405 (soft delete is PATCH)
        assert ("POST", prefix + "/viewed") in routes


def test_dashboard_md_functions_and_role() -> None:
    """docs/dashboard.md "Serving": `DashboardFunction` (`GET /app/`, and `GET /app`),
    `DashboardAssetFunction` (`GET /app/{asset}`), `ApiDocsFunction` (`GET /docs`), `ApiDocsAssetFunction`
    (`GET /docs/{asset}`), all with `ApiNoDataRole`."""
    routes = http_routes()
    assert routes[("GET", "/app/")] == routes[("GET", "/app")] == "DashboardFunction"
    assert routes[("GET", "/app/{asset}")] == "DashboardAssetFunction"
    assert routes[("GET", "/docs")] == "ApiDocsFunction"
    assert routes[("GET", "/docs/{asset}")] == "ApiDocsAssetFunction"
    for name in ("DashboardFunction", "DashboardAssetFunction", "ApiDocsFunction", "ApiDocsAssetFunction"):
        assert _function(name)["Role"] == {"Fn::GetAtt": ["ApiNoDataRole", "Arn"]}, name


def test_dashboard_md_caching_and_names() -> None:
    """docs/dashboard.md: assets `Cache-Control: public, max-age=31536000, immutable`; "An asset's public
    name carries the first 12 hex digits of its SHA-256"; the CSP text."""
    from dora_insights.handlers import app, static_files

    assert app.ASSET_CACHE == "public, max-age=31536000, immutable"
    assert static_files.HASH_DIGITS == 12
    policy = (
        "".join(static_files._BASE_POLICY)
        if isinstance(static_files._BASE_POLICY, tuple)
        else str(static_files._BASE_POLICY)
    )
    for part in (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ):
        assert part in policy, part


# ------------------------------------------------------------------------------------ constants vs. docs


def test_readme_body_and_response_limits() -> None:
    """README.md "Limits at the edge": request body "1 MiB" (`MAX_BODY_BYTES`), response "6 MB"
    (`MAX_RESPONSE_BYTES`); "Answers from 64 KiB are gzip-compressed"; API.md "Errors": webhooks "up to 5
    MiB", "`Retry-After: 1`", "An `If-Match` revision is ASCII digits (at most 16)"."""
    from dora_insights.handlers import http

    assert http.MAX_BODY_BYTES == 1024 * 1024
    assert http.MAX_RESPONSE_BYTES == 6 * 1024 * 1024
    assert http.COMPRESS_FROM_BYTES == 64 * 1024
    assert http.WEBHOOK_MAX_BODY_BYTES == 5 * 1024 * 1024
    assert http.RETRY_AFTER_SECONDS == 1
    assert http.MAX_REVISION_DIGITS == 16


def test_readme_json_and_name_limits() -> None:
    """README.md "Limits at the edge": JSON "at most 64 levels deep"; free-form objects "16 KiB of JSON, 16
    levels"; names "800 bytes of UTF-8 ... (branches of `/changes` and DX: 500)"; numbers "at most 38
    digits"; items "400 KB", transactions "4 MB", keys "2048/1024 bytes"."""
    from dora_insights.dal import limits as dal_limits
    from dora_insights.dialects import limits
    from dora_insights.domain import numbers

    assert limits.MAX_JSON_DEPTH == 64
    assert limits.MAX_FREE_JSON_BYTES == 16 * 1024
    assert limits.MAX_FREE_JSON_DEPTH == 16
    assert limits.MAX_NAME_BYTES == 800
    assert limits.MAX_BRANCH_BYTES == 500
    assert numbers.MAX_DIGITS == 38
    assert dal_limits.MAX_ITEM_BYTES == 400 * 1024
    assert dal_limits.MAX_TRANSACTION_BYTES == 4 * 1024 * 1024
    assert (dal_limits.MAX_PARTITION_KEY_BYTES, dal_limits.MAX_SORT_KEY_BYTES) == (2048, 1024)


def test_readme_attribution_numbers() -> None:
    """README.md: pending attributions "retried from the SQS queue for up to 3 days"; the recompute
    "re-drives every attribution still owed 5 minutes after ingest (or 15 minutes past its last retry's
    delay) ..., at most 50 per space and run; one whose attempts keep failing for 4 days is closed as
    `GaveUp`"; "pages of at most 64 KB"; METRICS §5: delays "capped at 15 minutes", sweep "every 15
    minutes"; "at most 5,000 commits", "over 60 days old"; "at most 20" walked."""
    from datetime import timedelta

    from dora_insights.dal import attribution as dal_attribution
    from dora_insights.domain import attribution
    from dora_insights.logic import attribution as logic_attribution
    from dora_insights.logic import succession

    assert timedelta(days=3) == attribution.GIVE_UP_AFTER
    assert timedelta(days=4) == logic_attribution.ABANDON_AFTER
    assert timedelta(minutes=5) == logic_attribution.OUTBOX_AFTER
    assert timedelta(minutes=15) == logic_attribution.LEASE_GRACE
    assert timedelta(minutes=15) == logic_attribution.SWEEP_LEASE
    assert logic_attribution.SWEEP_LIMIT == 50
    assert dal_attribution.PAGE_BYTES == 64 * 1024
    assert attribution.MAX_RETRY_DELAY_SECONDS == 900
    assert attribution.MAX_COMMITS == 5000
    assert timedelta(days=60) == attribution.HISTORY_CAP
    assert succession.MAX_FOLLOWING == 20


def test_readme_quarantine_numbers() -> None:
    """README.md: "A stream that fails 3 runs in a row is quarantined: left out of the recompute until
    something new is written to it (tried once then) or 6 hours pass"."""
    from datetime import timedelta

    from dora_insights.logic import health

    assert health.QUARANTINE_AFTER == 3
    assert timedelta(hours=6) == health.QUARANTINE_RETRY_AFTER


def test_metrics_8_freshness_bounds() -> None:
    """METRICS §8: "at most **1,000 deployments** ... of at most **20 streams** ... at most **20,000
    deployments**"; recompute.md: `SETTLE` (2 s), "at most 3 times"; `ITEM_FLOOR_MS` = 60 s "(or a fifth
    ...)", `BUDGET_SHARE` 80 %, `STREAM_GROUP` (25)."""
    from datetime import timedelta

    from dora_insights.handlers import recompute_worker
    from dora_insights.logic import freshness, metrics, recompute

    assert freshness.READ_BOUND == 1_000
    assert freshness.READ_STREAMS == 20
    assert freshness.REPORT_READ_BOUND == 20_000
    settle = freshness.SETTLE
    assert (settle.total_seconds() if isinstance(settle, timedelta) else settle) == 2
    assert metrics.SNAPSHOT_ATTEMPTS == 3
    assert recompute_worker.ITEM_FLOOR_MS == 60_000
    assert recompute_worker.ITEM_FLOOR_SHARE == 0.2
    assert recompute.BUDGET_SHARE == 0.8
    assert recompute.STREAM_GROUP == 25


def test_metrics_6_summary_defaults_and_tiers() -> None:
    """METRICS §6: "`benchmark=2023` default", tables 2021, 2023, 2024; `/summary` default "the 90 days
    before now"; the 2023 change failure rates "5 %, 10 %, 15 %, 64 %"; "a lead time of exactly one day is
    High, of exactly one week Medium; a recovery time of exactly one hour is High, of exactly one day
    Medium"."""
    from dora_insights.domain import tiers
    from dora_insights.logic import summary

    assert tiers.DEFAULT_BENCHMARK == "2023"
    assert set(tiers.benchmarks()) == {"2021", "2023", "2024"}
    assert summary.DEFAULT_DAYS == 90
    table = json.loads(_read("functions/dora_insights/domain/tier_tables.json"))
    assert [t["typical"] for t in table["2023"]["change_failure_rate"]["tiers"]] == [0.05, 0.10, 0.15, 0.64]
    assert tiers.lead_time_tier(86400, "2023").value == "High"
    assert tiers.lead_time_tier(604800, "2023").value == "Medium"
    assert tiers.recovery_time_tier(3600, "2023").value == "High"
    assert tiers.recovery_time_tier(86400, "2023").value == "Medium"


def test_metrics_9_gitlab_tiers() -> None:
    """METRICS §9 / API.md: tiers `production`, `staging`, `testing`, `development`, `other`; range "at
    most **366 days**"; `start_date` "3 months before `end_date`"; default tier `production`."""
    from dora_insights.domain import rollups
    from dora_insights.logic import dora_metrics

    assert rollups.TIERS == ("production", "staging", "testing", "development", "other")
    assert dora_metrics.MAX_RANGE_DAYS == 366
    assert dora_metrics.DEFAULT_MONTHS == 3
    assert dora_metrics.DEFAULT_TIERS == ("production",)


def test_api_md_failure_window_and_settings_bounds() -> None:
    """API.md "Space settings": "`0.1 ≤ hours ≤ 720` (default 24)"; `production_environments` "at most
    100"; METRICS §2 rule 5 "(default 24 h)"."""
    from dora_insights.dialects import native_settings
    from dora_insights.domain import records

    assert native_settings.MIN_FAILURE_WINDOW_HOURS == 0.1
    assert native_settings.MAX_FAILURE_WINDOW_HOURS == 720
    assert native_settings.MAX_PRODUCTION_ENVIRONMENTS == 100
    assert records.DEFAULT_FAILURE_WINDOW_HOURS == 24.0


def test_api_md_dialect_limits() -> None:
    """API.md: Datadog `custom_tags` "at most 100", `id` "16–128 chars of `[A-Za-z0-9_.:-]`", list `limit`
    "1–1000 (default 10)", "One request reads at most 5,000 events"; native batch "up to 500"; native list
    "a filtered page reads at most 5,000 deployments"; incident `services` "at most 500"; Orlo names "at
    most 200 characters", `diff_url` "at most 2,048", `references` "at most 360 KiB", release item "405,000
    bytes", releases `limit default 100`, token "for 1 hour"; `/changes` pull request shas "from 7"."""
    from datetime import timedelta

    from dora_insights.dal import event_search, store
    from dora_insights.dal import orlo as dal_orlo
    from dora_insights.dialects import datadog, incidents, native_batch, orlo
    from dora_insights.domain import changes
    from dora_insights.domain import orlo as domain_orlo
    from dora_insights.logic import orlo as logic_orlo

    assert datadog.MAX_TAGS == 100
    assert datadog.ID_PATTERN == r"^[A-Za-z0-9_.:\-]{16,128}$"
    assert (datadog.LIST_DEFAULT_LIMIT, datadog.LIST_MAX_LIMIT) == (10, 1000)
    assert event_search.MAX_READ == 5_000
    assert native_batch.MAX_BATCH == 500
    assert store.MAX_FILTERED_READ == 5_000
    assert incidents.MAX_SERVICES == 500
    assert orlo.MAX_NAME == 200 and orlo.MAX_URL == 2048
    assert domain_orlo.MAX_REFERENCES_BYTES == 360 * 1024
    assert dal_orlo.RELEASE_ROOM_BYTES == 405_000
    assert domain_orlo.DEFAULT_LIMIT == 100
    assert timedelta(hours=1) == logic_orlo.TOKEN_LIFETIME
    assert changes.MIN_SHA_LENGTH == 7


def test_api_md_posthog_numbers() -> None:
    """API.md "PostHog Insights": `short_id` "(8 characters)", `my_last_viewed` "last 5", trending
    "default 7, with up to 3 recent viewers", session "valid 24 h", "More than 10 failed logins on one link
    within any 10 minutes answer 429", "Retry-After ... (600 seconds)", `subscribed_users` "at most 50";
    README: "a link takes at most 10 passwords"."""
    import inspect

    from dora_insights.dal import insights as dal_insights
    from dora_insights.dialects import posthog
    from dora_insights.domain import insights as domain_insights
    from dora_insights.handlers import insights as handlers_insights
    from dora_insights.logic import insights

    assert domain_insights.SHORT_ID_LENGTH == 8
    assert insights.LAST_VIEWED == 5
    assert dal_insights.RECENT_VIEWERS == 3
    assert insights.SESSION_HOURS == 24
    assert insights.LOGIN_WINDOW_MINUTES * 60 == 600
    assert insights.MAX_FAILED_LOGINS == 10
    assert insights.MAX_SHARE_PASSWORDS == 10
    assert posthog.MAX_SUBSCRIBED_USERS == 50
    assert "days: Annotated[int, Query(ge=1, le=insights.MAX_TRENDING_DAYS)] = 7" in inspect.getsource(
        handlers_insights
    )


def test_api_md_alert_destination_numbers() -> None:
    """API.md "Alert destinations": "at most 10 destinations"; deliveries "`limit` ≤ 200, default 50 ...
    kept 30 days"; "refuse the request when `|now - t| > 300` seconds"; "headers over 64 KiB fail the
    attempt"; secret "`whsec_...`, 256 random bits"."""
    from dora_insights.dal import destinations as dal_destinations
    from dora_insights.domain import alert_destinations
    from dora_insights.handlers import alerts
    from dora_insights.logic import destinations

    assert dal_destinations.MAX_DESTINATIONS == 10
    assert (alerts.DEFAULT_PAGE, alerts.MAX_PAGE) == (50, 200)
    assert dal_destinations.LOG_DAYS == 30
    assert alert_destinations.REPLAY_TOLERANCE_SECONDS == 300
    assert dal_destinations.MAX_ANSWER_BYTES == 64 * 1024
    assert destinations.SECRET_PREFIX == "whsec_"
    assert "new_secret(SECRET_PREFIX)" in _read("functions/dora_insights/logic/destinations.py")
    assert "nbytes: int = 32" in _read("functions/dora_insights/domain/ids.py")


def test_readme_incident_secret_cache() -> None:
    """README.md "PagerDuty and Opsgenie": "decrypted secrets are cached in a warm function for 5
    minutes"."""
    from dora_insights.dal import secrets

    assert secrets.PLAINTEXT_CACHE_SECONDS == 300.0


def test_readme_csv_formula_triggers() -> None:
    """README.md: CSV exports "put a single quote before any text cell starting with `=`, `+`, `-`, `@`,
    tab or carriage return"."""
    from dora_insights.dialects import csv_export

    assert csv_export.FORMULA_TRIGGERS == ("=", "+", "-", "@", "\t", "\r")


def test_api_md_corrections_and_list_pages() -> None:
    """API.md: corrections "`limit` ≤ 500"; Octopus lists "`take` default 30"."""
    from dora_insights.handlers import params
    from dora_insights.logic import corrections

    assert corrections.MAX_PAGE == 500
    assert params.DEFAULT_TAKE == 30


def test_peer_differences_defaults() -> None:
    """docs/peer-differences.md: "The default history (seed 118)"; `compare.py --url ... --key local-dev-key
    --space Spaces-1`, options `--json`, `--new-space`, `--seed`, `--weeks`, `--small`."""
    source = _read("tools/fourkeys/compare.py")
    assert re.search(r"^DEFAULT_SEED = 118\b", source, re.M)
    for flag in ("--url", "--key", "--space", "--json", "--new-space", "--seed", "--weeks", "--small"):
        assert f'"{flag}"' in source, flag


def test_moto_patch_md_version() -> None:
    """docs/moto-query-patch.md: "`dora_local.motofix.install()` patches moto 5.2.5 only
    (`VERIFIED_MOTO_VERSIONS`)"."""
    import moto

    from dora_local import motofix

    assert "5.2.5" in motofix.VERIFIED_MOTO_VERSIONS
    assert moto.__version__ == "5.2.5"


# -------------------------------------------------------------------------------------------------- CLI


def test_cli_readme_defaults() -> None:
    """cli/README.md: "`--retries` (default 4 ...) ... from `--retry-delay` seconds (default 1 ...), and
    never less than `Retry-After` asks (... at most 60 s)"; "`--timeout` (default 30 s; above 0, at most a
    day)"; "An answer over 8 MiB (decompressed) is refused"; `changes` "`--max-count` commits (default
    1000 ...) ... in batches of at most 500 (and 768 KiB of JSON"; `--format table|json|csv`; `gate
    --on-no-data pass`; Python "3.9 or later"."""
    from dora_insights_cli import changes, client, main

    parser = main.build_parser() if hasattr(main, "build_parser") else None
    source = _read("cli/src/dora_insights_cli/main.py")
    assert re.search(r'"--retries", type=_count, default=4', source)
    assert re.search(r'"--retry-delay",\s*type=_seconds\(zero=True\),\s*default=1\.0', source)
    assert re.search(r'"--timeout",\s*type=_seconds\(zero=False\),\s*default=30\.0', source)
    assert main.MAX_SECONDS == 86_400.0
    assert client.MAX_WAIT == 60.0
    assert client.MAX_BODY == 8 * 1024 * 1024
    assert re.search(r'"--max-count", type=_count, default=1000', source)
    assert (changes.BATCH, changes.BATCH_BYTES) == (500, 768 * 1024)
    assert 'choices=("table", "json", "csv"), default="table"' in source
    assert 'choices=("fail", "pass")' in source
    assert 'requires-python = ">=3.9"' in _read("cli/pyproject.toml")
    del parser


def test_cli_readme_exit_codes() -> None:
    """cli/README.md "Exit codes": 0 success, 1 gate, 2 usage, 3 key refused/scope, 4 not found, 5
    rejected, 6 unavailable."""
    from dora_insights_cli import errors

    assert (errors.OK, errors.GATE_FAILED, errors.USAGE, errors.AUTH, errors.NOT_FOUND, errors.REJECTED) == (
        0,
        1,
        2,
        3,
        4,
        5,
    )
    assert errors.UNAVAILABLE == 6


def test_cli_readme_metric_names() -> None:
    """cli/README.md: `--metric` "`deployment_frequency`, `lead_time`, `change_failure_rate`,
    `recovery_time` ..., `time_to_restore` (incidents); GitLab's and Datadog's names are accepted too
    (`lead_time_for_changes`, `time_to_restore_service`, `failed_deployment_recovery_time`, `cfr`)"; the CI
    variables `DORA_INSIGHTS_URL`, `DORA_INSIGHTS_SPACE`, `DORA_INSIGHTS_API_KEY`, `DORA_INSIGHTS_CONFIG`,
    `./.dora-insights.toml`."""
    from dora_insights_cli import config, metrics

    assert set(metrics.GATED) == {
        "deployment_frequency",
        "lead_time",
        "change_failure_rate",
        "recovery_time",
        "time_to_restore",
    }
    for alias, key in (
        ("lead_time_for_changes", "lead_time"),
        ("time_to_restore_service", "time_to_restore"),
        ("failed_deployment_recovery_time", "recovery_time"),
        ("cfr", "change_failure_rate"),
    ):
        assert metrics.metric_key(alias) == key
    assert (config.ENV_URL, config.ENV_SPACE, config.ENV_API_KEY, config.ENV_CONFIG) == (
        "DORA_INSIGHTS_URL",
        "DORA_INSIGHTS_SPACE",
        "DORA_INSIGHTS_API_KEY",
        "DORA_INSIGHTS_CONFIG",
    )
    assert config.PROJECT_FILE == ".dora-insights.toml"


def test_readme_action_inputs_and_output() -> None:
    """README.md / cli/README.md "GitHub Action": inputs `url`, `api-key`, `space`, `env` required;
    `service`, `version`, `started-at`, `finished-at`, `state`, `git-repository-url`, `git-commit-sha`,
    `team`, `tenant`, `custom-tags`, `dry-run`, `no-fail`, `args`, `setup-python`, `python-version`; output
    `deployment-id`."""
    action = _yaml("action.yml")
    inputs = action["inputs"]
    for name in ("url", "api-key", "space", "env"):
        assert inputs[name].get("required") in (True, "true"), name
    for name in (
        "service",
        "version",
        "started-at",
        "finished-at",
        "state",
        "git-repository-url",
        "git-commit-sha",
        "team",
        "tenant",
        "custom-tags",
        "dry-run",
        "no-fail",
        "args",
        "setup-python",
        "python-version",
    ):
        assert name in inputs, name
    assert "deployment-id" in action["outputs"]


# ------------------------------------------------------------------------------------- through the routes


@pytest.fixture
def later(clock: Any) -> Any:
    clock.now = datetime(2024, 4, 2, 12, 0, tzinfo=UTC)
    return clock


def _deploy(api: Any, **fields: Any) -> Any:
    body = {"project": "newbie", "environment": "production", **fields}
    return api.call("POST", "/api/{spaceId}/deployments", path_params=SPACE, body=body, key=ADMIN_KEY)


def test_readme_try_it_flow(api: Any, later: Any) -> None:
    """README.md "Try it": three POSTs each answer `201` "with the stored deployment (its `id`, catalogue
    ids such as `Projects-1`, times in UTC); the list shows the three. The summary counts them at once:
    `"deployments": 3`, each metric with its DORA tier (`null` where there is no data, such as
    `time_to_restore` without incidents), `"pending": 0` and `"as_of"`"."""
    first = _deploy(
        api,
        finished_at="2024-03-01T12:00:00Z",
        version="1.4.2",
        commit_sha="66adc9350f2cc9b250b69abddab733dd55e1a588",
        repository="acme/newbie",
    )
    assert first.status == 201, first.body
    assert first.body["id"]
    assert "Projects-1" in json.dumps(first.body)
    assert _deploy(api, finished_at="2024-03-04T09:30:00Z", version="1.4.3").status == 201
    assert _deploy(api, finished_at="2024-03-08T16:00:00Z", version="1.5.0").status == 201
    listed = api.call(
        "GET", "/api/{spaceId}/deployments", path_params=SPACE, query={"project": "newbie"}, key=ADMIN_KEY
    )
    assert listed.status == 200
    assert len(listed.body["items"]) == 3
    summary = api.call(
        "GET",
        "/api/{spaceId}/summary",
        path_params=SPACE,
        query={"project": "newbie", "from": "2024-03-01T00:00:00Z", "to": "2024-04-01T00:00:00Z"},
        key=ADMIN_KEY,
    )
    assert summary.status == 200, summary.body
    assert summary.body["deployments"] == 3
    assert summary.body["pending"] == 0
    assert summary.body["as_of"] is not None
    assert summary.body["time_to_restore"]["tier"] is None
    assert summary.body["deployment_frequency"]["tier"] is not None


def test_readme_auth_statuses(api: Any) -> None:
    """README.md "API overview": "Missing or invalid key: 401; missing scope: 403; another space: 404";
    `GET /health` needs no key."""
    assert api.call("GET", "/api/{spaceId}/deployments", path_params=SPACE).status == 401
    assert api.call("GET", "/api/{spaceId}/deployments", path_params=SPACE, key="nope").status == 401
    assert (
        api.call("GET", "/api/{spaceId}/deployments", path_params={"spaceId": "Spaces-9"}, key=ADMIN_KEY).status == 404
    )
    made = api.call(
        "POST",
        "/api/{spaceId}/apikeys",
        path_params=SPACE,
        body={"name": "ci", "scopes": ["deployments:write"]},
        key=ADMIN_KEY,
    )
    assert made.status == 201, made.body
    ci_key = made.body["key"]
    assert api.call("GET", "/api/{spaceId}/deployments", path_params=SPACE, key=ci_key).status == 403
    assert api.call("GET", "/health").status == 200


def test_api_md_no_store_on_errors(api: Any) -> None:
    """API.md "Errors": "Every API answer, errors included, carries `Cache-Control: no-store`"."""
    answer = api.call("GET", "/api/{spaceId}/deployments", path_params=SPACE)
    assert answer.status == 401
    assert answer.header("Cache-Control") == "no-store"


def test_readme_body_too_large_413(api: Any) -> None:
    """README.md "Limits at the edge": "Request body 1 MiB; above: `413` (`payload_too_large`) in the
    route's error shape"."""
    big = json.dumps({"project": "x" * (1024 * 1024)})
    answer = api.call("POST", "/api/{spaceId}/deployments", path_params=SPACE, raw_body=big, key=ADMIN_KEY)
    assert answer.status == 413
    assert "payload_too_large" in json.dumps(answer.body) or "message" in answer.body


def test_api_md_native_400_names_field(api: Any) -> None:
    """API.md "Errors": "A native 400 names each field once in `errors` (`"from: 'x' is not an ISO-8601
    time or a unix timestamp"`)"."""
    answer = api.call("GET", "/api/{spaceId}/deployments", path_params=SPACE, query={"from": "x"}, key=ADMIN_KEY)
    assert answer.status == 400
    assert answer.body["errors"] == ["from: 'x' is not an ISO-8601 time or a unix timestamp"]


def test_api_md_batch_over_500(api: Any) -> None:
    """API.md "Native API": batch "up to 500 deployments"."""
    items = [{"project": "p", "environment": "production", "finished_at": 1709290000 + i} for i in range(501)]
    answer = api.call(
        "POST", "/api/{spaceId}/deployments/batch", path_params=SPACE, body={"deployments": items}, key=ADMIN_KEY
    )
    assert answer.status == 400, answer.status


def test_api_md_settings_default_answer(api: Any) -> None:
    """API.md "Space settings": the answer "`{"space_id", "revision": 0, "failure_window_hours": 24,
    "default_environment": null, "default_benchmark": "2023", "production_environments": [], "updated_at":
    null, "updated_by": null}`" with `ETag: "<revision>"`; "`0.1 ≤ hours ≤ 720`": out of range 400 naming the
    field."""
    answer = api.call("GET", "/api/{spaceId}/settings", path_params=SPACE, key=ADMIN_KEY)
    assert answer.status == 200
    assert answer.body == {
        "space_id": "Spaces-1",
        "revision": 0,
        "failure_window_hours": 24,
        "default_environment": None,
        "default_benchmark": "2023",
        "production_environments": [],
        "updated_at": None,
        "updated_by": None,
    }
    assert answer.header("ETag") == '"0"'
    for bad in (721, 0.05):
        refused = api.call(
            "PATCH", "/api/{spaceId}/settings", path_params=SPACE, body={"failure_window_hours": bad}, key=ADMIN_KEY
        )
        assert refused.status == 400, (bad, refused.body)
        assert "failure_window_hours" in json.dumps(refused.body)
    ok = api.call(
        "PATCH", "/api/{spaceId}/settings", path_params=SPACE, body={"failure_window_hours": 720}, key=ADMIN_KEY
    )
    assert ok.status == 200, ok.body


def test_api_md_github_secret_length(api: Any) -> None:
    """README.md / API.md: `PUT /api/{spaceId}/webhooks/github` with `{"secret"}` "(8 to 256 characters)" →
    `{"space_id", "configured": true}`."""
    short = api.call(
        "PUT", "/api/{spaceId}/webhooks/github", path_params=SPACE, body={"secret": "x" * 7}, key=ADMIN_KEY
    )
    assert short.status == 400
    long = api.call(
        "PUT", "/api/{spaceId}/webhooks/github", path_params=SPACE, body={"secret": "x" * 257}, key=ADMIN_KEY
    )
    assert long.status == 400
    ok = api.call("PUT", "/api/{spaceId}/webhooks/github", path_params=SPACE, body={"secret": "x" * 8}, key=ADMIN_KEY)
    assert ok.status == 200, ok.body
    assert ok.body == {"space_id": "Spaces-1", "configured": True}


def test_api_md_gitlab_token_generated(api: Any) -> None:
    """README.md "GitLab": `PUT /api/{spaceId}/webhooks/gitlab` "with no body (or `{}`) generates the
    space's webhook token and answers it once (`{"space_id", "configured": true, "secret": "glwh_..."}`)";
    API.md: own token "16–256 printable ASCII", "`secret` null when chosen by the caller"."""
    made = api.call("PUT", "/api/{spaceId}/webhooks/gitlab", path_params=SPACE, key=ADMIN_KEY)
    assert made.status == 200, made.body
    assert made.body["configured"] is True and made.body["space_id"] == "Spaces-1"
    assert made.body["secret"].startswith("glwh_")
    short = api.call(
        "PUT", "/api/{spaceId}/webhooks/gitlab", path_params=SPACE, body={"secret": "a" * 15}, key=ADMIN_KEY
    )
    assert short.status == 400
    chosen = api.call(
        "PUT", "/api/{spaceId}/webhooks/gitlab", path_params=SPACE, body={"secret": "a" * 16}, key=ADMIN_KEY
    )
    assert chosen.status == 200 and chosen.body["secret"] is None, chosen.body


def test_api_md_incident_config(api: Any) -> None:
    """API.md "incident webhooks": GET "404 until configured"; "Configuration answers (PUT and GET)
    `{"space_id", "source", "webhook_path", "secret_header", "secret", "secret_set_at", "services",
    "updated_at"}`"; Opsgenie: absent secret on the first PUT "one is generated and answered in `secret`"."""
    assert api.call("GET", "/api/{spaceId}/webhooks/opsgenie", path_params=SPACE, key=ADMIN_KEY).status == 404
    put = api.call(
        "PUT",
        "/api/{spaceId}/webhooks/opsgenie",
        path_params=SPACE,
        body={"services": {"Payments API": {"project": "payments"}}},
        key=ADMIN_KEY,
    )
    assert put.status == 200, put.body
    assert set(put.body) == {
        "space_id",
        "source",
        "webhook_path",
        "secret_header",
        "secret",
        "secret_set_at",
        "services",
        "updated_at",
    }
    assert put.body["secret"]
    got = api.call("GET", "/api/{spaceId}/webhooks/opsgenie", path_params=SPACE, key=ADMIN_KEY)
    assert got.status == 200 and got.body["secret"] is None


def test_api_md_dora_metrics_errors(api: Any) -> None:
    """API.md "GitLab DORA metrics API": errors "`400 {"message": ...}` with GitLab's wording: `metric is
    missing`, ..., `The interval must be one of all,monthly,daily.`, ..., `Date range must be shorter than
    366 days.`, `The start date must be earlier than the end date.`"."""

    def ask(**query: str) -> Any:
        return api.call("GET", "/api/{spaceId}/dora/metrics", path_params=SPACE, query=query, key=ADMIN_KEY)

    missing = ask()
    assert (missing.status, missing.body) == (400, {"message": "metric is missing"})
    interval = ask(metric="deployment_frequency", interval="weekly")
    assert (interval.status, interval.body) == (400, {"message": "The interval must be one of all,monthly,daily."})
    far = ask(metric="deployment_frequency", start_date="2023-01-01", end_date="2024-03-01")
    assert (far.status, far.body) == (400, {"message": "Date range must be shorter than 366 days."})
    backwards = ask(metric="deployment_frequency", start_date="2024-03-01", end_date="2024-02-01")
    assert (backwards.status, backwards.body) == (400, {"message": "The start date must be earlier than the end date."})
    ok = ask(metric="deployment_frequency", start_date="2024-02-01", end_date="2024-02-03")
    assert ok.status == 200 and [r["date"] for r in ok.body] == ["2024-02-01", "2024-02-02", "2024-02-03"]
    assert ok.header("X-Dora-As-Of") is not None or ok.header("X-Dora-Pending") is not None


def test_api_md_datadog_list_limit(api: Any) -> None:
    """API.md "Dialect: Datadog DORA": list `limit` "1–1000 (default 10; above: 400)"."""
    body = {"data": {"type": "dora_deployments_list_request", "attributes": {"limit": 1001}}}
    answer = api.call("POST", "/api/v2/dora/deployments", body=body, headers={"DD-API-KEY": ADMIN_KEY})
    assert answer.status == 400
    assert answer.body["errors"][0]["status"] == "400"


def test_api_md_list_page_limits(api: Any) -> None:
    """API.md: corrections "`limit` ≤ 500"; alert deliveries "`limit` ≤ 200"; trending `days` (default 7)."""
    corrections = api.call(
        "GET",
        "/api/{spaceId}/deployments/{deploymentId}/corrections",
        path_params={**SPACE, "deploymentId": "x"},
        query={"limit": "501"},
        key=ADMIN_KEY,
    )
    assert corrections.status == 400
    deliveries = api.call(
        "GET",
        "/api/{spaceId}/alert-destinations/{destinationId}/deliveries",
        path_params={**SPACE, "destinationId": "abc"},
        query={"limit": "201"},
        key=ADMIN_KEY,
    )
    assert deliveries.status == 400


def test_api_md_alert_destination_create(api: Any) -> None:
    """README.md / API.md "Alert destinations": create "→ 201 {"id": "...", "secret": "whsec_...", ...}";
    Destination `{"id", "name", "kind", "url", "enabled", "signature": "hmac-sha256"|null, "created_at",
    "created_by"}`; `http` URLs refused (400 naming `url`)."""
    made = api.call(
        "POST",
        "/api/{spaceId}/alert-destinations",
        path_params=SPACE,
        body={"name": "on-call", "kind": "webhook", "url": "https://alerts.example.com/dora"},
        key=ADMIN_KEY,
    )
    assert made.status == 201, made.body
    assert made.body["secret"].startswith("whsec_")
    assert {"id", "name", "kind", "url", "enabled", "signature", "created_at", "created_by"} <= set(made.body)
    assert made.body["signature"] == "hmac-sha256"
    plain = api.call(
        "POST",
        "/api/{spaceId}/alert-destinations",
        path_params=SPACE,
        body={"name": "x", "kind": "webhook", "url": "http://alerts.example.com/dora"},
        key=ADMIN_KEY,
    )
    assert plain.status == 400 and "url" in json.dumps(plain.body)


def test_api_md_deployment_revision_etag(api: Any, later: Any) -> None:
    """API.md "Corrections": "a deployment has a `revision` (1 when created, +1 per correction; the
    `ETag: "<revision>"` of `GET /api/{spaceId}/deployments/{id}` ...)"; a stale one is 412; DELETE 204."""
    made = _deploy(api, finished_at="2024-03-01T12:00:00Z", version="1")
    assert made.status == 201
    deployment_id = made.body["id"]
    path = {**SPACE, "deploymentId": deployment_id}
    got = api.call("GET", "/api/{spaceId}/deployments/{deploymentId}", path_params=path, key=ADMIN_KEY)
    assert got.status == 200 and got.header("ETag") == '"1"'
    stale = api.call(
        "PATCH",
        "/api/{spaceId}/deployments/{deploymentId}",
        path_params=path,
        body={"version": "2"},
        headers={"If-Match": '"7"'},
        key=ADMIN_KEY,
    )
    assert stale.status == 412
    gone = api.call("DELETE", "/api/{spaceId}/deployments/{deploymentId}", path_params=path, key=ADMIN_KEY)
    assert gone.status == 204


def test_readme_native_client_id_repeat_and_conflict(api: Any, later: Any) -> None:
    """README.md "Native deployment body": "`id` (client id: the same id and body again answers the same
    deployment, a different body 409)"; API.md "Errors": "creates 201 (native deployment and failure
    creates 200 for a repeat)"."""
    body = {"id": "ci-run-1-attempt-1", "finished_at": "2024-03-01T12:00:00Z", "version": "1"}
    first = _deploy(api, **body)
    assert first.status == 201, first.body
    again = _deploy(api, **body)
    assert again.status == 200 and again.body["id"] == first.body["id"]
    other = _deploy(api, **{**body, "version": "2"})
    assert other.status == 409


def test_api_md_posthog_delete_is_405(api: Any) -> None:
    """API.md "PostHog Insights": "DELETE → 405 (soft delete is PATCH `deleted: true`)"."""
    answer = api.call(
        "DELETE",
        "/api/projects/{spaceId}/insights/{insightId}",
        path_params={**SPACE, "insightId": "1"},
        key=ADMIN_KEY,
    )
    assert answer.status == 405


def test_api_md_key_in_basic_and_x_api_key(api: Any) -> None:
    """API.md "Authentication": keys "Accepted as `Authorization: Bearer <key>`, `X-Api-Key: <key>`, or
    `DD-API-KEY: <key>` ..., or HTTP Basic with the key as the password and any user name"."""
    import base64

    basic = "Basic " + base64.b64encode(f"orlo:{ADMIN_KEY}".encode()).decode()
    for headers in ({"X-Api-Key": ADMIN_KEY}, {"DD-API-KEY": ADMIN_KEY}, {"Authorization": basic}):
        answer = api.call("GET", "/api/{spaceId}/deployments", path_params=SPACE, headers=headers)
        assert answer.status == 200, headers


def test_readme_openapi_documents_every_route(api: Any) -> None:
    """README.md: "`GET /openapi.json` documents every route"; API.md: "OpenAPI 3 document of every route,
    no auth". Every template route but the dashboard and docs pages (and the document itself) is a path of
    the document."""
    answer = api.call("GET", "/openapi.json")
    assert answer.status == 200
    document = answer.body if isinstance(answer.body, dict) else json.loads(answer.body)
    assert str(document["openapi"]).startswith("3.1")
    paths = {
        (m.upper(), p)
        for p, ops in document["paths"].items()
        for m in ops
        if m in {"get", "post", "put", "patch", "delete"}
    }
    missing = sorted(
        f"{m} {p}"
        for m, p in http_routes()
        if not (p.startswith("/app") or p.startswith("/docs") or p == "/openapi.json") and (m, p) not in paths
    )
    assert missing == []
