"""template.yaml: routes, least privilege, and CloudFormation's 500-resource limit."""

from __future__ import annotations

import copy
import importlib
import json
import re
from functools import cache
from typing import Any

from samtranslator.translator.transform import transform

from dora_local.template import rate_seconds
from tests.support.template import handler_of, http_routes, resources, template

CFN_RESOURCE_LIMIT = 500
PLANNED_ROUTE_FUNCTIONS = 130  # API.md lists about this many routes once every dialect is in


class _NoManagedPolicies:
    """The translator asks for managed policy ARNs by name; none are used by name here."""

    def load(self) -> dict[str, str]:
        return {}

    def get(self, name: str) -> str | None:
        return None


def _transformed(doc: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation template SAM would deploy (local code paths replaced by S3 URIs, as `sam package` does)."""
    packaged = copy.deepcopy(doc)
    packaged["Globals"]["Function"]["CodeUri"] = "s3://bucket/functions.zip"
    for resource in packaged["Resources"].values():
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = "s3://bucket/layer.zip"
    return transform(packaged, {}, _NoManagedPolicies())  # type: ignore[no-any-return]


@cache
def _deployed() -> dict[str, Any]:
    """The transformed template.yaml (what CloudFormation receives), built once per test process."""
    return _transformed(template())


def test_every_handler_exists() -> None:
    for logical_id in resources("AWS::Serverless::Function"):
        module, _, name = handler_of(logical_id).rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), logical_id


# GET routes that write: the first GET of an insight's sharing creates its configuration, a report's
# metrics are stored on their first read, refresh=force_blocking on insights recomputes their reports,
# and an Orlo token is stored for X-Auth-Token.
WRITING_GETS = {
    "GetInsightSharingFunction",
    "GetDeploymentFunction",  # these five bring what they read up to date first (METRICS §8)
    "GetReportDeploymentsFunction",
    "GetReportMetricsFunction",
    "GetSummaryFunction",
    "GetDoraMetricsFunction",  # as GetSummaryFunction: its streams are brought up to date first
    "ListInsightsFunction",
    "RetrieveInsightFunction",
    "OrloTokenFunction",
}
# POST routes that only read: Datadog's DORA lists take their filters in a JSON body.
READING_POSTS = {
    "DatadogListDeploymentsFunction",
    "DatadogListFailuresFunction",
}
# Routes that ingest deployments or code data: attribution may enqueue a retry (the only routes that may).
INGEST_ROUTES = {
    "CreateDeploymentFunction",
    "CreateDeploymentBatchFunction",
    "DatadogDeploymentFunction",
    "DxCreateDeploymentFunction",
    "DxUpsertDeploymentFunction",
    "DxBackfillDeploymentsFunction",
    "GithubWebhookFunction",
    "GitlabWebhookFunction",
    "RecordChangesFunction",
}
# Routes without a key get no more than they need.
PUBLIC_ROUTES = {
    "HealthFunction": "ApiNoDataRole",
    "OpenApiFunction": "ApiNoDataRole",
    "OrloPingFunction": "ApiNoDataRole",
    "OpenSharedInsightFunction": "ApiWriteRole",  # brings the insight's report up to date first
    "LoginSharedInsightFunction": "ShareLoginRole",
    # GitHub's decrypts the space's webhook secret to verify (tests/unit/test_secrets_key_template.py).
    "GithubWebhookFunction": "ApiIngestSecretReadRole",
    # Incident webhooks (HMAC-signed / shared secret) record failure events: no attribution, no queue.
    # PagerDuty's decrypts its signing secret to verify (tests/unit/test_secrets_key_template.py).
    "PagerdutyWebhookFunction": "ApiSecretReadRole",
    "OpsgenieWebhookFunction": "ApiWriteRole",
    "GitlabWebhookFunction": "ApiIngestRole",
    # The dashboard and the API docs: pages and their assets from the functions' own code (no AWS call).
    "DashboardFunction": "ApiNoDataRole",
    "DashboardAssetFunction": "ApiNoDataRole",
    "ApiDocsFunction": "ApiNoDataRole",
    "ApiDocsAssetFunction": "ApiNoDataRole",
}


# Write routes that encrypt a secret they store, or decrypt one they use, with the secrets key.
SECRET_ROUTES = {
    "SetGithubWebhookSecretFunction": "ApiSecretWriteRole",
    "SetPagerdutyWebhookFunction": "ApiSecretWriteRole",
    "CreateAlertDestinationFunction": "ApiSecretWriteRole",
    "UpdateAlertDestinationFunction": "ApiSecretWriteRole",
    "TestAlertDestinationFunction": "ApiSecretReadRole",
}


def test_every_route_is_its_own_function_with_a_shared_least_privilege_role() -> None:
    functions = resources("AWS::Serverless::Function")
    handlers = [handler_of(name) for name in functions]
    assert len(handlers) == len(set(handlers)), "two functions share an entry point"
    for name, function in functions.items():
        role = function["Properties"].get("Role")
        assert role, f"{name} has no shared role"
        events = function["Properties"]["Events"].values()
        if all(e["Type"] == "HttpApi" for e in events):
            reads = all(e["Properties"]["Method"] == "GET" for e in events) and name not in WRITING_GETS
            reads = reads or name in READING_POSTS
            if name in PUBLIC_ROUTES:
                expected = PUBLIC_ROUTES[name]
            elif name in INGEST_ROUTES:
                expected = "ApiIngestRole"
            elif name in SECRET_ROUTES:
                expected = SECRET_ROUTES[name]
            else:
                expected = "ApiReadRole" if reads else "ApiWriteRole"
            assert role == {"Fn::GetAtt": [expected, "Arn"]}, name


def test_stack_stays_under_the_resource_limit_with_every_planned_route() -> None:
    doc = template()
    actual = len(_deployed()["Resources"])
    # Add synthetic route functions until the template has every planned route, then count again.
    grown = copy.deepcopy(doc)
    sample = copy.deepcopy(grown["Resources"]["ListDeploymentsFunction"])
    missing = PLANNED_ROUTE_FUNCTIONS - len(http_routes())
    for n in range(missing):
        function = copy.deepcopy(sample)
        function["Properties"]["Events"]["Api"]["Properties"]["Path"] = f"/api/{{spaceId}}/planned{n}"
        grown["Resources"][f"Planned{n}Function"] = function
    planned = len(_transformed(grown)["Resources"])
    assert actual < CFN_RESOURCE_LIMIT
    assert planned <= CFN_RESOURCE_LIMIT * 0.7, f"{planned} resources for {PLANNED_ROUTE_FUNCTIONS} routes"


def test_table_matches_the_key_module() -> None:
    from dora_insights.dal import keys

    (table,) = resources("AWS::DynamoDB::Table").values()
    properties = table["Properties"]
    assert [k["AttributeName"] for k in properties["KeySchema"]] == [keys.PK, keys.SK]
    indexes = {
        i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]] for i in properties["GlobalSecondaryIndexes"]
    }
    assert indexes == {name: list(attrs) for name, attrs in keys.INDEX_KEYS.items() if name is not None}
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert properties["TimeToLiveSpecification"] == {"AttributeName": keys.TTL, "Enabled": True}


def test_queue_has_a_dead_letter_queue_and_the_schedule_runs_every_five_minutes() -> None:
    queue = resources("AWS::SQS::Queue")["RetryQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["RetryDeadLetterQueue", "Arn"]}
    worker = resources("AWS::Serverless::Function")["AttributionRetryFunction"]["Properties"]
    assert worker["Events"]["Retry"]["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    recompute = resources("AWS::Serverless::Function")["RecomputeFunction"]["Properties"]
    assert recompute["Events"]["Schedule"]["Properties"]["Schedule"] == "rate(5 minutes)"


def test_openapi_document_and_template_routes_agree() -> None:
    import json

    from dora_insights.handlers.meta import openapi_document

    document = json.loads(openapi_document())
    assert document["openapi"].startswith("3.")
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    routed = set(http_routes()) - {("GET", "/openapi.json")}
    assert documented == routed


# ------------------------------------------------------------------------------------------ edge limits
def _parameter_default(name: str) -> int:
    return int(template()["Parameters"][name]["Default"])


def _default_stage() -> dict[str, Any]:
    (stage,) = (r["Properties"] for r in _deployed()["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Stage")
    return stage  # type: ignore[no-any-return]


def test_every_route_is_throttled_with_limits_set_by_parameters() -> None:
    settings = _default_stage()["DefaultRouteSettings"]
    assert settings == {
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
    }
    rate, burst = _parameter_default("ApiThrottlingRateLimit"), _parameter_default("ApiThrottlingBurstLimit")
    # Far above what CI pipelines and dashboards send, far below the account's 10,000/s shared by every API.
    assert 10 <= rate <= 1000
    assert rate <= burst <= 5000


# $context variables that may carry a credential or a secret: headers (Authorization, X-Api-Key,
# DD-API-KEY), authorizer output, API keys, and the path (GET /shared/{accessToken}).
_SECRET_BEARING = re.compile(r"authori[sz]|header|api[-_]?key|\$request\.|\$context\.path|token|cookie", re.IGNORECASE)


def test_access_logs_are_json_lines_in_their_own_log_group_and_carry_no_credentials() -> None:
    settings = _default_stage()["AccessLogSettings"]
    assert "${ApiAccessLogGroup}" in settings["DestinationArn"]["Fn::Sub"]
    group = resources("AWS::Logs::LogGroup")["ApiAccessLogGroup"]["Properties"]
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    line = json.loads(settings["Format"])
    assert line["requestId"] == "$context.requestId"
    assert line["ip"] == "$context.identity.sourceIp"
    assert line["routeKey"] == "$context.routeKey"
    assert line["status"] == "$context.status"
    assert line["responseLength"] == "$context.responseLength"
    assert line["integrationLatency"] == "$context.integrationLatency"
    variables = re.findall(r"\$[A-Za-z.]+", settings["Format"])
    assert all(v.startswith("$context.") for v in variables)
    assert not [v for v in variables if _SECRET_BEARING.search(v)]


def test_the_recompute_runs_one_at_a_time_and_a_late_tick_is_dropped_not_queued() -> None:
    properties = resources("AWS::Serverless::Function")["RecomputeFunction"]["Properties"]
    assert properties["ReservedConcurrentExecutions"] == {
        "Fn::If": ["ReserveRecomputeConcurrency", {"Ref": "RecomputeReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    assert template()["Conditions"]["ReserveRecomputeConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "RecomputeReservedConcurrency"}, 0]}]
    }
    assert _parameter_default("RecomputeReservedConcurrency") == 1
    period = rate_seconds(properties["Events"]["Schedule"]["Properties"]["Schedule"])
    assert period is not None
    config = properties["EventInvokeConfig"]
    # A tick throttled behind the running one waits less than a period, so ticks never pile up.
    assert 60 <= config["MaximumEventAgeInSeconds"] < period
    assert config["MaximumRetryAttempts"] == 0
    (invoke_config,) = (
        r["Properties"]
        for r in _deployed()["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventInvokeConfig"
        and r["Properties"]["FunctionName"] == {"Ref": "RecomputeFunction"}
    )
    assert invoke_config["MaximumEventAgeInSeconds"] == config["MaximumEventAgeInSeconds"]


def test_the_recompute_fans_out_over_a_queue_with_a_dlq_to_a_worker_of_bounded_concurrency() -> None:
    queue = resources("AWS::SQS::Queue")["RecomputeQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["RecomputeDeadLetterQueue", "Arn"]}
    functions = resources("AWS::Serverless::Function")
    schedule, worker = functions["RecomputeFunction"]["Properties"], functions["RecomputeWorkerFunction"]["Properties"]
    assert schedule["Environment"]["Variables"]["RECOMPUTE_QUEUE_URL"] == {"Ref": "RecomputeQueue"}
    (trigger,) = worker["Events"].values()  # no schedule of its own: only the schedule runs every 5 minutes
    assert trigger["Type"] == "SQS"
    assert trigger["Properties"]["Queue"] == {"Fn::GetAtt": ["RecomputeQueue", "Arn"]}
    assert trigger["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert trigger["Properties"]["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "RecomputeWorkerConcurrency"}
    assert 2 <= _parameter_default("RecomputeWorkerConcurrency") <= 1000
    assert "ReservedConcurrentExecutions" not in worker  # it would throttle receives and dead-letter items early
    # AWS's advice for an SQS event source: a visibility timeout of at least 6 times the function's timeout.
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"]
    assert queue["MessageRetentionPeriod"] > queue["RedrivePolicy"]["maxReceiveCount"] * queue["VisibilityTimeout"]


def test_the_retry_queue_consumer_is_bounded_by_the_event_source_not_by_reserved_concurrency() -> None:
    properties = resources("AWS::Serverless::Function")["AttributionRetryFunction"]["Properties"]
    # Reserved concurrency would throttle the poller's receives, and each counts toward the DLQ's
    # maxReceiveCount; the event source's MaximumConcurrency leaves waiting messages in the queue.
    assert "ReservedConcurrentExecutions" not in properties
    assert 2 <= properties["Events"]["Retry"]["Properties"]["ScalingConfig"]["MaximumConcurrency"] <= 10


def test_every_queue_a_function_consumes_hides_a_message_for_at_least_six_times_its_timeout() -> None:
    # AWS's advice for an SQS event source: with less, a throttled invocation returns messages before the
    # function could have finished them, and each such return counts toward the queue's maxReceiveCount.
    queues = resources("AWS::SQS::Queue")
    default_timeout = template()["Globals"]["Function"]["Timeout"]
    consumed: dict[str, tuple[int, int]] = {}
    for name, function in resources("AWS::Serverless::Function").items():
        properties = function["Properties"]
        for event in properties.get("Events", {}).values():
            if event["Type"] == "SQS":
                queue, attribute = event["Properties"]["Queue"]["Fn::GetAtt"]
                assert attribute == "Arn", name
                timeout = properties.get("Timeout", default_timeout)
                consumed[f"{name} <- {queue}"] = (queues[queue]["Properties"]["VisibilityTimeout"], timeout)
    assert len(consumed) >= 3  # the attribution retries, the recompute's work items, the alert deliveries
    short = {source: pair for source, pair in consumed.items() if pair[0] < 6 * pair[1]}
    assert short == {}, f"(VisibilityTimeout, Timeout) below 6x: {short}"
