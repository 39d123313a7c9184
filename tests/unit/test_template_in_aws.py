"""template.yaml and the code as a real AWS account runs them: what moto and the local runtime do not check
(queue and function timeouts, dead-letter queues, roles, TTL).

DynamoDB's TTL deletes an expired item "within a few days" of its expiry, not at it: until then GetItem,
Query and Scan return it like any other item (AWS: "Items that have expired, but haven't yet been deleted by
TTL, still appear in reads, queries, and scans ... filter them out"). moto never deletes, which is the same
as a TTL process running late. A read whose answer depends on an item having expired (a delivery "seen in
the last 30 days", a log "kept 30 days") must compare ``expires_at`` with the time itself.
"""

from __future__ import annotations

import ast
import inspect
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.template import handler_of, http_routes, resources, template

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions" / "dora_insights"

# API Gateway HTTP APIs wait at most 30 s for an integration (a hard quota): a route function allowed longer
# keeps running (and billing) after the client got 503 from API Gateway.
HTTP_API_INTEGRATION_TIMEOUT = 30
SQS_MAX_RECEIVE_COUNT = 1000
ESM_MIN_MAXIMUM_CONCURRENCY, ESM_MAX_MAXIMUM_CONCURRENCY = 2, 1000
LAMBDA_MAX_TIMEOUT = 900

# Long enough ago that the TTL these items were written with has passed, whatever clock a fix compares with
# (the tests' NOW is 2024-03-01, the wall clock is later still).
LONG_AGO = datetime(2023, 6, 1, 12, 0, tzinfo=UTC)


def _functions() -> dict[str, dict[str, Any]]:
    return {name: f["Properties"] for name, f in resources("AWS::Serverless::Function").items()}


def _globals() -> dict[str, Any]:
    return template()["Globals"]["Function"]  # type: ignore[no-any-return]


def _timeout(properties: dict[str, Any]) -> int:
    return int(properties.get("Timeout", _globals()["Timeout"]))


def _sqs_consumers() -> dict[str, tuple[str, dict[str, Any]]]:
    """Function logical id -> (queue logical id, the SQS event's properties)."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for name, properties in _functions().items():
        for event in properties.get("Events", {}).values():
            if event["Type"] == "SQS":
                queue, attribute = event["Properties"]["Queue"]["Fn::GetAtt"]
                assert attribute == "Arn", name
                found[name] = (queue, event["Properties"])
    return found


def _statements(role: str) -> list[dict[str, Any]]:
    properties = resources("AWS::IAM::Role")[role]["Properties"]
    statements: list[dict[str, Any]] = []
    for policy in properties.get("Policies", []):
        statements += policy["PolicyDocument"]["Statement"]
    return statements


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_of(properties: dict[str, Any]) -> str:
    return str(properties["Role"]["Fn::GetAtt"][0])


# ================================================================================ failing: TTL read semantics
def test_a_github_or_gitlab_delivery_past_its_30_day_ttl_is_not_answered_duplicate(store: Any) -> None:
    # API.md: a webhook delivery is a duplicate when seen in the last 30 days (pattern 80, TTL 30 days).
    # dal/code.py CodeStore.delivery_seen is a bare GetItem: in AWS a redelivery on day 31..~33 (before the
    # TTL process removed the item) is answered "duplicate" and dropped; locally (moto) it is dropped forever.
    code = store.code("Spaces-1")
    code.remember_delivery("guid-long-ago", "push", LONG_AGO)
    assert code.delivery_seen("guid-long-ago", LONG_AGO + timedelta(days=29))
    assert not code.delivery_seen("guid-long-ago", LONG_AGO + timedelta(days=31)), "an expired record counts"


def test_an_incident_redelivery_past_its_30_day_ttl_is_not_answered_duplicate(store: Any) -> None:
    # API.md: "Redelivery (PagerDuty event.id, Opsgenie alertId + action, seen in the last 30 days): 200
    # duplicate". dal/incidents.py IncidentStore.delivery_seen ignores expires_at (pattern 111).
    from dora_insights.domain.incidents import IncidentSource

    incidents = store.incidents()
    incidents.remember_delivery(
        "Spaces-1", IncidentSource.PAGERDUTY, "evt-long-ago", event="incident.triggered", failure_id="f", now=LONG_AGO
    )
    assert incidents.delivery_seen("Spaces-1", IncidentSource.PAGERDUTY, "evt-long-ago", LONG_AGO + timedelta(days=29))
    assert not incidents.delivery_seen(
        "Spaces-1", IncidentSource.PAGERDUTY, "evt-long-ago", LONG_AGO + timedelta(days=31)
    )


def test_a_held_incident_resolution_past_its_30_day_ttl_no_longer_resolves_a_trigger(store: Any) -> None:
    # API.md: an unmapped resolution's "end is kept for 30 days: a trigger of that incident that is mapped
    # then records the failure resolved at that end". held_resolution returns an expired end until the TTL
    # process deletes it (days later in AWS, never in moto): a new trigger is recorded already resolved.
    from dora_insights.domain.incidents import IncidentSource

    incidents = store.incidents()
    incidents.hold_resolution(
        "Spaces-1", IncidentSource.OPSGENIE, "alert-long-ago", LONG_AGO - timedelta(hours=1), now=LONG_AGO
    )
    later = LONG_AGO + timedelta(days=29)
    assert incidents.held_resolution("Spaces-1", IncidentSource.OPSGENIE, "alert-long-ago", later) is not None
    expired = LONG_AGO + timedelta(days=31)
    assert incidents.held_resolution("Spaces-1", IncidentSource.OPSGENIE, "alert-long-ago", expired) is None


def test_the_alert_delivery_log_lists_only_the_30_days_it_keeps(store: Any) -> None:
    # API.md: GET .../alert-destinations/{id}/deliveries is "kept 30 days". DestinationStore.deliveries
    # queries the log without a filter on expires_at: entries past their TTL are listed until deleted.
    from dora_insights.domain.alert_destinations import Delivery, DeliveryStatus

    destinations = store.destinations()
    old = Delivery(
        id="d-long-ago",
        destination_id="dest-1",
        notification_id="t1:2023-06-01T12:00:00.000Z",
        event_type="InsightThresholdBreached",
        attempted_at="2023-06-01T12:00:00.000Z",
        status=DeliveryStatus.DELIVERED,
        status_code=200,
    )
    destinations.record("Spaces-1", old, LONG_AGO, mark_delivered=False)
    listed, _ = destinations.deliveries("Spaces-1", "dest-1", 50, None, LONG_AGO + timedelta(days=29))
    assert [d.id for d in listed] == ["d-long-ago"]
    listed, _ = destinations.deliveries("Spaces-1", "dest-1", 50, None, LONG_AGO + timedelta(days=31))
    assert [d.id for d in listed] == [], "a delivery past its 30-day TTL is still listed"


# ================================================================================ passing pins
def test_ttl_values_are_epoch_seconds_in_the_templates_ttl_attribute(store: Any, aws: Any) -> None:
    # DynamoDB's TTL only acts on a Number of epoch seconds (milliseconds or an ISO string never expire).
    import boto3

    from dora_insights.dal import keys

    (table,) = resources("AWS::DynamoDB::Table").values()
    assert table["Properties"]["TimeToLiveSpecification"] == {"AttributeName": keys.TTL, "Enabled": True}
    now = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    store.code("Spaces-1").remember_delivery("guid-ttl", "push", now)
    raw = boto3.client("dynamodb").get_item(
        TableName=aws.table_name, Key={k: {"S": v} for k, v in keys.webhook_delivery("Spaces-1", "guid-ttl").items()}
    )["Item"]
    assert set(raw[keys.TTL]) == {"N"}
    assert int(raw[keys.TTL]["N"]) == int((now + timedelta(days=30)).timestamp())


def test_every_route_function_ends_before_the_http_apis_integration_timeout() -> None:
    routed = set(http_routes().values())
    too_long = {name: _timeout(p) for name, p in _functions().items() if name in routed}
    too_long = {name: t for name, t in too_long.items() if t >= HTTP_API_INTEGRATION_TIMEOUT}
    assert too_long == {}
    # No HttpApi event raises or lowers the integration timeout behind SAM's back.
    for name, properties in _functions().items():
        for event in properties.get("Events", {}).values():
            if event["Type"] == "HttpApi":
                assert "TimeoutInMillis" not in event["Properties"], name


def test_every_function_timeout_is_within_lambdas_limit_and_the_queues_hide_messages_longer() -> None:
    queues = resources("AWS::SQS::Queue")
    for name, properties in _functions().items():
        assert 1 <= _timeout(properties) <= LAMBDA_MAX_TIMEOUT, name
    # CreateEventSourceMapping refuses a queue whose VisibilityTimeout is below the function's Timeout.
    for name, (queue, _) in _sqs_consumers().items():
        assert queues[queue]["Properties"]["VisibilityTimeout"] >= _timeout(_functions()[name]), name


def test_every_consumed_queue_has_a_dlq_that_outlives_it_and_an_alarm_on_it() -> None:
    queues = resources("AWS::SQS::Queue")
    alarmed = {
        a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["Namespace"] == "AWS/SQS"
    }
    consumed = {queue for queue, _ in _sqs_consumers().values()}
    assert consumed == {"RetryQueue", "RecomputeQueue", "AlertDeliveryQueue"}
    for queue in consumed:
        source = queues[queue]["Properties"]
        redrive = source["RedrivePolicy"]
        dlq = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert 1 <= redrive["maxReceiveCount"] <= SQS_MAX_RECEIVE_COUNT, queue
        # A standard queue's message keeps its first enqueue time in the DLQ: a DLQ kept no longer than its
        # source would drop dead letters at once.
        assert queues[dlq]["Properties"]["MessageRetentionPeriod"] > source["MessageRetentionPeriod"], queue
        assert dlq in alarmed, f"{dlq} has no alarm"


def test_the_codes_receive_limits_are_the_queues_max_receive_count() -> None:
    from dora_insights.handlers import alerts
    from dora_insights.logic import attribution_retry

    queues = resources("AWS::SQS::Queue")
    assert queues["RetryQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == attribution_retry.MAX_RECEIVES
    assert queues["AlertDeliveryQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == alerts.MAX_RECEIVES


def test_every_sqs_consumer_reports_batch_item_failures_and_its_handler_returns_them() -> None:
    for name, (_, event) in _sqs_consumers().items():
        assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"], name
        maximum = event["ScalingConfig"]["MaximumConcurrency"]
        if isinstance(maximum, int):
            assert ESM_MIN_MAXIMUM_CONCURRENCY <= maximum <= ESM_MAX_MAXIMUM_CONCURRENCY, name
        else:
            parameter = template()["Parameters"][maximum["Ref"]]
            assert parameter["MinValue"] >= ESM_MIN_MAXIMUM_CONCURRENCY, name
            assert parameter["MaxValue"] <= ESM_MAX_MAXIMUM_CONCURRENCY, name
        module, _, _ = handler_of(name).rpartition(".")
        source = (ROOT / "functions" / (module.replace(".", "/") + ".py")).read_text()
        assert "BatchProcessor" in source and ("process_partial_response" in source or "batchItemFailures" in source)


def test_the_alert_rule_matches_the_events_the_code_puts_and_may_send_to_its_queue() -> None:
    from dora_insights.dal import events
    from dora_insights.domain import alert_destinations

    rule = resources("AWS::Events::Rule")["AlertDeliveryRule"]["Properties"]
    assert rule["EventPattern"]["source"] == [events.SOURCE]
    assert set(rule["EventPattern"]["detail-type"]) == {alert_destinations.BREACHED, alert_destinations.CLEARED}
    assert rule["EventBusName"] == {"Ref": "EventBus"}
    (policy,) = resources("AWS::SQS::QueuePolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert {"Fn::GetAtt": ["AlertDeliveryQueue", "Arn"]} in statement["Resource"]
    assert {"Fn::GetAtt": ["AlertDeliveryDeadLetterQueue", "Arn"]} in statement["Resource"]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["AlertDeliveryRule", "Arn"]}}}
    target = rule["Targets"][0]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] <= 185
    assert 60 <= target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400
    # Only the recompute worker evaluates thresholds and puts their events, on this bus only.
    putters = {
        role
        for role in resources("AWS::IAM::Role")
        for s in _statements(role)
        if "events:PutEvents" in _listed(s["Action"])
    }
    assert putters == {"RecomputeRole"}
    assert [s["Resource"] for s in _statements("RecomputeRole") if "events:PutEvents" in _listed(s["Action"])] == [
        {"Fn::GetAtt": ["EventBus", "Arn"]}
    ]


def test_the_schedule_expression_is_one_eventbridge_accepts() -> None:
    schedule = _functions()["RecomputeFunction"]["Events"]["Schedule"]["Properties"]["Schedule"]
    # rate(value unit): unit singular for 1 and plural otherwise, or EventBridge refuses the rule.
    found = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", schedule)
    assert found is not None
    value, unit = int(found.group(1)), found.group(2)
    assert value >= 1 and (unit.endswith("s") == (value != 1))


def test_no_role_has_a_wildcard_action_or_a_wildcard_resource() -> None:
    for role in resources("AWS::IAM::Role"):
        for statement in _statements(role):
            assert statement["Effect"] == "Allow", role
            for action in _listed(statement["Action"]):
                assert "*" not in action, (role, action)
            for resource in _listed(statement["Resource"]):
                assert resource != "*", role
                text = resource.get("Fn::Sub", "") if isinstance(resource, dict) else str(resource)
                assert not text or text == "${Table.Arn}/index/*", (role, resource)


def test_the_secrets_key_and_its_variable_go_to_exactly_the_functions_whose_role_may_use_it() -> None:
    kms_roles = {
        role
        for role in resources("AWS::IAM::Role")
        for s in _statements(role)
        if any(a.startswith("kms:") for a in _listed(s["Action"]))
    }
    for role in kms_roles:
        for statement in _statements(role):
            if any(a.startswith("kms:") for a in _listed(statement["Action"])):
                assert statement["Resource"] == {"Fn::GetAtt": ["SecretsKey", "Arn"]}, role
    for name, properties in _functions().items():
        variables = properties.get("Environment", {}).get("Variables", {})
        has_key = variables.get("SECRETS_KEY_ARN") == {"Fn::GetAtt": ["SecretsKey", "Arn"]}
        assert has_key == (_role_of(properties) in kms_roles), name


def test_every_variable_the_code_reads_is_set_where_it_is_needed() -> None:
    from dora_insights import config

    source = inspect.getsource(config.get_settings)
    read = set(re.findall(r'env\.get\("([A-Z_]+)"', source))
    local_only = {"ALERT_ALLOW_LOOPBACK_HTTP"}  # unset: a safe default (config.py)
    per_function = {"RECOMPUTE_QUEUE_URL", "SECRETS_KEY_ARN"}
    shared = set(_globals()["Environment"]["Variables"])
    assert read - local_only - per_function <= shared
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"} <= shared
    functions = _functions()
    assert functions["RecomputeFunction"]["Environment"]["Variables"]["RECOMPUTE_QUEUE_URL"] == {
        "Ref": "RecomputeQueue"
    }
    assert "RETRY_QUEUE_URL" in shared and "EVENT_BUS_NAME" in shared  # ingest, retry worker, recompute worker


def test_the_layer_fits_the_functions_runtime_and_architecture() -> None:
    layer = resources("AWS::Serverless::LayerVersion")["DepsLayer"]
    assert layer["Properties"]["CompatibleRuntimes"] == [_globals()["Runtime"]]
    assert layer["Properties"]["CompatibleArchitectures"] == _globals()["Architectures"]
    assert layer["Metadata"]["BuildArchitecture"] == _globals()["Architectures"][0]
    for name, properties in _functions().items():
        assert "Runtime" not in properties and "Architectures" not in properties, name


def test_every_third_party_import_of_the_functions_is_in_the_layer_or_the_runtime() -> None:
    import sys

    imported: set[str] = set()
    for path in FUNCTIONS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names} - {"dora_insights", "_typeshed"}
    locked = {
        line.split("==")[0].strip().lower().replace("-", "_")
        for line in (ROOT / "layers" / "deps" / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    }
    import_names = {"aws_lambda_powertools", "boto3", "botocore", "pydantic", "pydantic_core", "tzlocal"}
    missing = {m for m in third_party if m.lower() not in locked and m not in import_names}
    assert missing == set()
    assert {m for m in import_names & third_party if m not in locked} == set()


def test_the_table_keeps_its_data_when_the_stack_or_a_replacement_goes() -> None:
    (table,) = resources("AWS::DynamoDB::Table").values()
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"
    assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    for index in table["Properties"]["GlobalSecondaryIndexes"]:
        # The code reads whole items from every index (dal/keys.py: "projection ALL").
        assert index["Projection"] == {"ProjectionType": "ALL"}, index["IndexName"]
    key = resources("AWS::KMS::Key")["SecretsKey"]
    assert key["DeletionPolicy"] == "Retain"


def test_reserved_concurrency_can_be_left_unreserved_in_a_small_account() -> None:
    # A new account's Lambda quota may be 10: reserving any fails the deploy (AWS keeps 100 unreserved).
    assert template()["Parameters"]["RecomputeReservedConcurrency"]["MinValue"] == 0
    reserved = _functions()["RecomputeFunction"]["ReservedConcurrentExecutions"]
    assert reserved["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    others = {n for n, p in _functions().items() if "ReservedConcurrentExecutions" in p}
    assert others == {"RecomputeFunction"}


def test_every_alarm_notifies_the_topic_the_stack_is_given() -> None:
    """``AlarmTopicArn`` (an SNS topic): every alarm of the stack notifies it when set, none when empty."""
    alarms = resources("AWS::CloudWatch::Alarm")
    notify = {"Fn::If": ["NotifyAlarms", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    assert alarms and all(a["Properties"].get("AlarmActions") == notify for a in alarms.values()), alarms
    assert template()["Conditions"]["NotifyAlarms"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}


def test_the_stale_figures_alarm_watches_the_metric_the_schedule_emits_where_it_emits_it() -> None:
    """``RecomputeLag`` as the schedule's EMF record names it (the Powertools namespace and ``service``
    dimension of Globals): a metric name or dimension the code does not emit would leave the alarm in
    INSUFFICIENT_DATA, then (missing data breaches) alarming for nothing."""
    lag = resources("AWS::CloudWatch::Alarm")["RecomputeLagAlarm"]["Properties"]
    variables = template()["Globals"]["Function"]["Environment"]["Variables"]
    source = (FUNCTIONS / "handlers" / "recompute.py").read_text()
    assert f'add_metric(name="{lag["MetricName"]}"' in source
    assert lag["Namespace"] == variables["POWERTOOLS_METRICS_NAMESPACE"]
    assert lag["Dimensions"] == [{"Name": "service", "Value": variables["POWERTOOLS_SERVICE_NAME"]}]
    assert lag["TreatMissingData"] == "breaching"  # no tick at all is the worst staleness


def test_the_schedule_and_the_api_have_alarms_on_their_failures() -> None:
    """Three failed ticks in a row, and server errors of the HTTP API (every refusal is a 4xx)."""
    alarms = {name: a["Properties"] for name, a in resources("AWS::CloudWatch::Alarm").items()}
    schedule = alarms["RecomputeScheduleErrorsAlarm"]
    assert (schedule["Namespace"], schedule["MetricName"]) == ("AWS/Lambda", "Errors")
    assert schedule["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "RecomputeFunction"}}]
    api = alarms["ApiServerErrorsAlarm"]
    assert (api["Namespace"], api["MetricName"]) == ("AWS/ApiGateway", "5xx")
    assert {"Name": "ApiId", "Value": {"Ref": "HttpApi"}} in api["Dimensions"]
    assert "StageName" not in resources("AWS::Serverless::HttpApi")["HttpApi"]["Properties"]  # so $default
