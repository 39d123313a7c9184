"""dora_local.iam: identity-policy evaluation as AWS does it, requests mapped to IAM actions and resources,
roles read from template.yaml, and the check on botocore calls. Pure: no moto, no network."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from dora_local import iam
from dora_local.iam import Decision, Request, Statement, evaluate, requests_of
from dora_local.template import Resolver, load

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/dora"
OTHER_TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/other"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:retry"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/retry"
DLQ = "arn:aws:sqs:us-east-1:123456789012:retry-dlq"
BUS = "arn:aws:events:us-east-1:123456789012:event-bus/dora"
WORK = "arn:aws:sqs:us-east-1:123456789012:recompute"  # the recompute's work items


def allow(actions: str | list[str], resources: str | list[str], **extra: Any) -> Statement:
    return Statement.parse({"Effect": "Allow", "Action": actions, "Resource": resources, **extra})


def deny(actions: str | list[str], resources: str | list[str], **extra: Any) -> Statement:
    return Statement.parse({"Effect": "Deny", "Action": actions, "Resource": resources, **extra})


# --------------------------------------------------------------------------------------------- evaluation
def test_nothing_is_allowed_without_a_statement() -> None:
    assert evaluate([], "dynamodb:GetItem", TABLE) is Decision.IMPLICIT_DENY


def test_an_allow_covers_only_its_actions_and_resources() -> None:
    policy = [allow(["dynamodb:GetItem", "dynamodb:Query"], TABLE)]
    assert evaluate(policy, "dynamodb:GetItem", TABLE) is Decision.ALLOWED
    assert evaluate(policy, "dynamodb:PutItem", TABLE) is Decision.IMPLICIT_DENY
    assert evaluate(policy, "dynamodb:GetItem", OTHER_TABLE) is Decision.IMPLICIT_DENY


@pytest.mark.parametrize(
    ("pattern", "action", "allowed"),
    [
        ("dynamodb:*", "dynamodb:PutItem", True),
        ("dynamodb:*", "sqs:SendMessage", False),
        ("dynamodb:Get*", "dynamodb:GetItem", True),
        ("dynamodb:Get*", "dynamodb:PutItem", False),
        ("dynamodb:?etItem", "dynamodb:GetItem", True),
        ("dynamodb:?etItem", "dynamodb:BatchGetItem", False),
        ("DynamoDB:putitem", "dynamodb:PutItem", True),  # actions are case-insensitive
        ("*", "events:PutEvents", True),
        ("sqs:SendMessage*", "sqs:SendMessage", True),
    ],
)
def test_action_wildcards(pattern: str, action: str, allowed: bool) -> None:
    decision = evaluate([allow(pattern, "*")], action, TABLE)
    assert (decision is Decision.ALLOWED) is allowed


@pytest.mark.parametrize(
    ("pattern", "resource", "allowed"),
    [
        (f"{TABLE}/index/*", f"{TABLE}/index/GSI1", True),
        (f"{TABLE}/index/*", TABLE, False),  # the index statement does not cover the table
        (TABLE, f"{TABLE}/index/GSI1", False),  # nor the table statement an index
        ("arn:aws:dynamodb:*:*:table/dora", TABLE, True),
        ("arn:aws:dynamodb:us-east-1:123456789012:table/dor?", TABLE, True),
        ("arn:aws:dynamodb:us-east-1:123456789012:table/dora*", OTHER_TABLE, False),
        ("arn:aws:dynamodb:us-east-1:123456789012:table/DORA", TABLE, False),  # resources are case-sensitive
        ("arn:aws:sqs:us-east-1:123456789012:q.fifo", "arn:aws:sqs:us-east-1:123456789012:qXfifo", False),
        ("*", DLQ, True),
    ],
)
def test_resource_wildcards(pattern: str, resource: str, allowed: bool) -> None:
    decision = evaluate([allow("dynamodb:Query", pattern)], "dynamodb:Query", resource)
    assert (decision is Decision.ALLOWED) is allowed


def test_an_explicit_deny_wins_over_any_allow() -> None:
    policy = [allow("dynamodb:*", "*"), deny("dynamodb:DeleteItem", TABLE), allow("dynamodb:DeleteItem", TABLE)]
    assert evaluate(policy, "dynamodb:DeleteItem", TABLE) is Decision.EXPLICIT_DENY
    assert evaluate(policy, "dynamodb:DeleteItem", OTHER_TABLE) is Decision.ALLOWED
    assert evaluate(policy, "dynamodb:PutItem", TABLE) is Decision.ALLOWED


def test_not_action_and_not_resource() -> None:
    policy = [Statement.parse({"Effect": "Allow", "NotAction": "dynamodb:Delete*", "NotResource": OTHER_TABLE})]
    assert evaluate(policy, "dynamodb:PutItem", TABLE) is Decision.ALLOWED
    assert evaluate(policy, "dynamodb:DeleteItem", TABLE) is Decision.IMPLICIT_DENY
    assert evaluate(policy, "dynamodb:PutItem", OTHER_TABLE) is Decision.IMPLICIT_DENY


def test_conditions_are_never_more_permissive_than_aws() -> None:
    condition = {"Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["S#1#*"]}}}
    assert evaluate([allow("dynamodb:PutItem", TABLE, **condition)], "dynamodb:PutItem", TABLE) is (
        Decision.IMPLICIT_DENY
    )
    policy = [allow("dynamodb:*", TABLE), deny("dynamodb:PutItem", TABLE, **condition)]
    assert evaluate(policy, "dynamodb:PutItem", TABLE) is Decision.EXPLICIT_DENY


@pytest.mark.parametrize(
    "raw",
    [
        {"Effect": "Permit", "Action": "x:Y", "Resource": "*"},
        {"Effect": "Allow", "Resource": "*"},
        {"Effect": "Allow", "Action": "x:Y"},
        {"Effect": "Allow", "Action": "x:Y", "Resource": {"Fn::If": ["c", "a", "b"]}},
    ],
)
def test_a_statement_iam_would_reject_is_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(iam.PolicyUnsupportedError):
        Statement.parse(raw)


# --------------------------------------------------------------------------------------------- requests
def test_a_transaction_is_authorised_item_by_item_with_each_items_own_action_and_table() -> None:
    params = {
        "TransactItems": [
            {"Put": {"TableName": "dora", "Item": {}}},
            {"Update": {"TableName": "dora", "Key": {}, "UpdateExpression": "SET a = :a"}},
            {"Delete": {"TableName": "other", "Key": {}}},
            {"ConditionCheck": {"TableName": "dora", "Key": {}, "ConditionExpression": "attribute_exists(PK)"}},
        ]
    }
    assert requests_of("dynamodb", "TransactWriteItems", params) == [
        Request("dynamodb:PutItem", TABLE),
        Request("dynamodb:UpdateItem", TABLE),
        Request("dynamodb:DeleteItem", OTHER_TABLE),
        Request("dynamodb:ConditionCheckItem", TABLE),
    ]
    gets = {"TransactItems": [{"Get": {"TableName": "dora", "Key": {}}}, {"Get": {"TableName": "other", "Key": {}}}]}
    assert requests_of("dynamodb", "TransactGetItems", gets) == [
        Request("dynamodb:GetItem", TABLE),
        Request("dynamodb:GetItem", OTHER_TABLE),
    ]


def test_a_transaction_with_one_denied_item_is_denied() -> None:
    principal = iam.Principal("F", "fn", iam.Role("R", "role", (allow(["dynamodb:PutItem"], TABLE),)))
    params = {
        "TransactItems": [{"Put": {"TableName": "dora", "Item": {}}}, {"Delete": {"TableName": "dora", "Key": {}}}]
    }
    denial = principal.check("dynamodb", "TransactWriteItems", params, "us-east-1")
    assert denial is not None
    assert denial.request == Request("dynamodb:DeleteItem", TABLE)
    assert principal.allowed == [Request("dynamodb:PutItem", TABLE)]


def test_batches_are_authorised_on_every_table_they_name() -> None:
    params = {"RequestItems": {"dora": [], "other": []}}
    assert requests_of("dynamodb", "BatchWriteItem", params) == [
        Request("dynamodb:BatchWriteItem", TABLE),
        Request("dynamodb:BatchWriteItem", OTHER_TABLE),
    ]
    assert requests_of("dynamodb", "BatchGetItem", {"RequestItems": {"dora": {}}}) == [
        Request("dynamodb:BatchGetItem", TABLE)
    ]


def test_an_index_query_is_authorised_on_the_index_arn() -> None:
    assert requests_of("dynamodb", "Query", {"TableName": "dora", "IndexName": "GSI1"}) == [
        Request("dynamodb:Query", f"{TABLE}/index/GSI1")
    ]
    assert requests_of("dynamodb", "Query", {"TableName": TABLE}) == [Request("dynamodb:Query", TABLE)]


def test_sqs_calls_are_authorised_on_the_queue_arn_with_the_single_message_action() -> None:
    assert requests_of("sqs", "SendMessageBatch", {"QueueUrl": QUEUE_URL, "Entries": []}) == [
        Request("sqs:SendMessage", QUEUE)
    ]
    assert requests_of("sqs", "DeleteMessageBatch", {"QueueUrl": "http://127.0.0.1:5000/123456789012/retry"}) == [
        Request("sqs:DeleteMessage", QUEUE)
    ]
    assert requests_of("sqs", "ChangeMessageVisibilityBatch", {"QueueUrl": QUEUE_URL}) == [
        Request("sqs:ChangeMessageVisibility", QUEUE)
    ]
    eu = "https://sqs.eu-west-1.amazonaws.com/210987654321/retry"
    assert requests_of("sqs", "SendMessage", {"QueueUrl": eu}) == [
        Request("sqs:SendMessage", "arn:aws:sqs:eu-west-1:210987654321:retry")
    ]


def test_put_events_is_authorised_on_each_entrys_bus() -> None:
    params = {"Entries": [{"EventBusName": "dora"}, {"EventBusName": BUS}, {}]}
    assert requests_of("events", "PutEvents", params) == [
        Request("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/default"),
        Request("events:PutEvents", BUS),
    ]


def test_an_operation_not_modelled_is_authorised_on_every_resource() -> None:
    assert requests_of("dynamodb", "ListTables", {}) == [Request("dynamodb:ListTables", "*")]
    assert requests_of("monitoring", "PutMetricData", {}) == [Request("cloudwatch:PutMetricData", "*")]
    scoped = [allow("dynamodb:*", [TABLE, f"{TABLE}/index/*"])]
    assert evaluate(scoped, "dynamodb:ListTables", "*") is Decision.IMPLICIT_DENY


# --------------------------------------------------------------------------------------------- roles
def _resolver() -> Resolver:
    return Resolver(
        names={"Table": "dora", "RetryQueue": "retry", "EventBus": "dora", "RecomputeQueue": "recompute"},
        urls={"RetryQueue": QUEUE_URL, "RecomputeQueue": "https://sqs.us-east-1.amazonaws.com/123456789012/recompute"},
        arns={
            "Table": TABLE,
            "RetryQueue": QUEUE,
            "EventBus": BUS,
            "RetryDeadLetterQueue": DLQ,
            "RecomputeQueue": WORK,
        },
        doc=load(),
    )


def _function_of_role(role: str) -> str:
    functions = load()["Resources"]
    return next(
        name
        for name, resource in functions.items()
        if resource["Type"] == "AWS::Serverless::Function"
        and resource["Properties"].get("Role") == {"Fn::GetAtt": [role, "Arn"]}
    )


def test_the_read_role_of_the_template_reads_the_table_and_its_indexes_and_writes_nothing() -> None:
    role = iam.role_of(_function_of_role("ApiReadRole"), _resolver())
    assert role.logical_id == "ApiReadRole"
    assert evaluate(role.statements, "dynamodb:GetItem", TABLE) is Decision.ALLOWED
    assert evaluate(role.statements, "dynamodb:Query", f"{TABLE}/index/GSI2") is Decision.ALLOWED
    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"):
        assert evaluate(role.statements, action, TABLE) is Decision.IMPLICIT_DENY, action
    assert evaluate(role.statements, "sqs:SendMessage", QUEUE) is Decision.IMPLICIT_DENY
    assert evaluate(role.statements, "dynamodb:Scan", TABLE) is Decision.IMPLICIT_DENY


def test_the_retry_worker_polls_and_resends_on_its_queue_only_and_the_recompute_emits_alerts_and_sweeps() -> None:
    retry = iam.role_of("AttributionRetryFunction", _resolver()).statements
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:SendMessage"):
        assert evaluate(retry, action, QUEUE) is Decision.ALLOWED, action
    assert evaluate(retry, "sqs:SendMessage", DLQ) is Decision.IMPLICIT_DENY
    assert evaluate(retry, "events:PutEvents", BUS) is Decision.IMPLICIT_DENY
    assert evaluate(retry, "dynamodb:PutItem", OTHER_TABLE) is Decision.IMPLICIT_DENY
    recompute = iam.role_of("RecomputeWorkerFunction", _resolver()).statements
    assert evaluate(recompute, "events:PutEvents", BUS) is Decision.ALLOWED
    assert evaluate(recompute, "events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/default") is (
        Decision.IMPLICIT_DENY
    )
    # Issue 14: the recompute's attribution sweep re-drives owed attributions through the retry queue.
    assert evaluate(recompute, "sqs:SendMessage", QUEUE) is Decision.ALLOWED
    assert evaluate(recompute, "sqs:SendMessage", DLQ) is Decision.IMPLICIT_DENY
    # Issue 17: the schedule only reads and sends work items; the worker polls them and sends none.
    assert evaluate(recompute, "sqs:SendMessage", WORK) is Decision.IMPLICIT_DENY
    schedule = iam.role_of("RecomputeFunction", _resolver()).statements
    for action in ("sqs:SendMessage", "sqs:GetQueueAttributes", "dynamodb:Query"):
        assert evaluate(schedule, action, WORK if action.startswith("sqs") else TABLE) is Decision.ALLOWED, action
    for action, resource in (("dynamodb:PutItem", TABLE), ("events:PutEvents", BUS), ("sqs:SendMessage", QUEUE)):
        assert evaluate(schedule, action, resource) is Decision.IMPLICIT_DENY, action


FUNCTIONS = sorted(n for n, r in load()["Resources"].items() if r["Type"] == "AWS::Serverless::Function")
WRITES = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_role_lets_lambda_write_the_functions_logs_and_traces(function: str) -> None:
    statements = iam.role_of(function, _resolver()).statements
    log_group = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/dora-insights-local:log-stream:x"
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        assert evaluate(statements, action, log_group) is Decision.ALLOWED, action
    assert evaluate(statements, "xray:PutTraceSegments", "*") is Decision.ALLOWED


def test_a_queue_triggered_function_may_be_polled_by_lambda() -> None:
    triggered = {
        name: event["Properties"]["Queue"]["Fn::GetAtt"][0]
        for name in FUNCTIONS
        for event in load()["Resources"][name]["Properties"]["Events"].values()
        if event["Type"] == "SQS"
    }
    assert triggered["AttributionRetryFunction"] == "RetryQueue"
    assert triggered["RecomputeWorkerFunction"] == "RecomputeQueue"
    for function, queue in (("AttributionRetryFunction", QUEUE), ("RecomputeWorkerFunction", WORK)):
        statements = iam.role_of(function, _resolver()).statements
        for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
            assert evaluate(statements, action, queue) is Decision.ALLOWED, (function, action)


def test_only_ingest_routes_the_retry_worker_and_the_sweep_send_retries_and_only_the_recompute_emits_events() -> None:
    def allowed(action: str, resource: str) -> set[str]:
        return {
            f
            for f in FUNCTIONS
            if evaluate(iam.role_of(f, _resolver()).statements, action, resource) is Decision.ALLOWED
        }

    senders = allowed("sqs:SendMessage", QUEUE)
    assert {"AttributionRetryFunction", "RecomputeWorkerFunction"} <= senders  # the retry worker, the sweep
    assert senders - {"AttributionRetryFunction", "RecomputeWorkerFunction"} == {
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
    assert allowed("events:PutEvents", BUS) == {"RecomputeWorkerFunction"}
    assert allowed("sqs:SendMessage", WORK) == {"RecomputeFunction"}  # only the schedule sends work items
    assert allowed("sqs:SendMessage", DLQ) == set()


@pytest.mark.parametrize("function", ["HealthFunction", "OpenApiFunction", "OrloPingFunction"])
def test_public_routes_that_touch_no_data_may_not_touch_any(function: str) -> None:
    statements = iam.role_of(function, _resolver()).statements
    for action in ("dynamodb:GetItem", "dynamodb:Query", *WRITES):
        assert evaluate(statements, action, TABLE) is Decision.IMPLICIT_DENY, action


def test_the_public_share_login_may_only_read_an_item_and_store_a_session_or_a_failure() -> None:
    statements = iam.role_of("LoginSharedInsightFunction", _resolver()).statements
    for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"):
        assert evaluate(statements, action, TABLE) is Decision.ALLOWED, action
    for action in ("dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:Query", "dynamodb:BatchGetItem"):
        assert evaluate(statements, action, TABLE) is Decision.IMPLICIT_DENY, action
    assert evaluate(statements, "dynamodb:GetItem", f"{TABLE}/index/GSI1") is Decision.IMPLICIT_DENY
    assert evaluate(statements, "sqs:SendMessage", QUEUE) is Decision.IMPLICIT_DENY


def _doc_with(function: dict[str, Any], **extra: Any) -> dict[str, Any]:
    doc = copy.deepcopy(load())
    doc["Resources"]["ProbeFunction"] = {"Type": "AWS::Serverless::Function", "Properties": function}
    doc["Resources"].update(extra)
    return doc


def test_a_function_without_role_gets_the_role_sam_builds_from_its_policy_templates() -> None:
    doc = _doc_with(
        {
            "Handler": "x.y",
            "Policies": [
                {"DynamoDBReadPolicy": {"TableName": {"Ref": "Table"}}},
                {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["RetryQueue", "QueueName"]}}},
                {"Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": {"Ref": "Nothing"}}]},
            ],
        }
    )
    role = iam.role_of("ProbeFunction", _resolver(), doc)
    assert evaluate(role.statements, "dynamodb:Query", f"{TABLE}/index/GSI1") is Decision.ALLOWED
    assert evaluate(role.statements, "dynamodb:PutItem", TABLE) is Decision.IMPLICIT_DENY
    assert evaluate(role.statements, "sqs:SendMessage", QUEUE) is Decision.ALLOWED
    assert evaluate(role.statements, "logs:PutLogEvents", "arn:aws:logs:us-east-1:123456789012:log-group:x") is (
        Decision.ALLOWED
    )
    assert evaluate(role.statements, "events:PutEvents", BUS) is Decision.IMPLICIT_DENY


GSI3 = "${Table.Arn}/index/GSI3"


def test_policies_attached_to_a_role_and_explicit_denies_count() -> None:
    doc = _doc_with(
        {"Handler": "x.y", "Role": {"Fn::GetAtt": ["ApiReadRole", "Arn"]}},
        ProbePolicy={
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "Roles": [{"Ref": "ApiReadRole"}],
                "PolicyDocument": {
                    "Statement": [
                        {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": {"Fn::GetAtt": ["Table", "Arn"]}},
                        {
                            "Effect": "Deny",
                            "Action": "dynamodb:Query",
                            "Resource": {"Fn::Sub": "${Table.Arn}/index/GSI3"},
                        },
                    ]
                },
            },
        },
    )
    role = iam.role_of("ProbeFunction", _resolver(), doc)
    assert evaluate(role.statements, "dynamodb:PutItem", TABLE) is Decision.ALLOWED
    assert evaluate(role.statements, "dynamodb:Query", f"{TABLE}/index/GSI3") is Decision.EXPLICIT_DENY
    assert evaluate(role.statements, "dynamodb:Query", f"{TABLE}/index/GSI1") is Decision.ALLOWED


@pytest.mark.parametrize(
    "function",
    [
        {"Handler": "x.y", "Role": "arn:aws:iam::123456789012:role/somewhere-else"},
        {"Handler": "x.y", "Policies": ["AmazonDynamoDBFullAccess"]},
    ],
)
def test_a_role_that_cannot_be_evaluated_is_refused_loudly(function: dict[str, Any]) -> None:
    with pytest.raises(iam.PolicyUnsupportedError):
        iam.role_of("ProbeFunction", _resolver(), _doc_with(function))


def test_in_tests_the_environment_says_which_names_stand_for_the_templates_resources() -> None:
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/test-retry"
    resolver = iam.environment_resolver(
        "RecomputeWorkerFunction", {"TABLE_NAME": "t", "RETRY_QUEUE_URL": url, "EVENT_BUS_NAME": "b"}
    )
    assert resolver.arns == {
        "Table": "arn:aws:dynamodb:us-east-1:123456789012:table/t",
        "RetryQueue": "arn:aws:sqs:us-east-1:123456789012:test-retry",
        "EventBus": "arn:aws:events:us-east-1:123456789012:event-bus/b",
    }
    role = iam.role_of("RecomputeWorkerFunction", resolver)
    assert evaluate(role.statements, "dynamodb:PutItem", "arn:aws:dynamodb:us-east-1:123456789012:table/t") is (
        Decision.ALLOWED
    )
    # No variable names the dead-letter queue: nothing the template grants on it applies.
    assert evaluate(role.statements, "sqs:SendMessage", DLQ) is Decision.IMPLICIT_DENY


# --------------------------------------------------------------------------------------------- enforcement
@pytest.fixture
def ddb() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.session.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1").client(
        "dynamodb"
    )
    with Stubber(client) as stubber:
        yield client, stubber


def _reader() -> iam.Principal:
    return iam.Principal(
        "ReadFunction", "dora-read", iam.Role("ReadRole", "dora-read-role", (allow("dynamodb:GetItem", TABLE),))
    )


def test_a_denied_call_raises_the_error_aws_raises_and_never_reaches_the_endpoint(ddb: tuple[Any, Stubber]) -> None:
    client, stubber = ddb
    with iam.acting_as(_reader()) as principal, pytest.raises(ClientError) as raised:
        client.put_item(TableName="dora", Item={"PK": {"S": "a"}})
    error = raised.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Message"] == (
        "User: arn:aws:sts::123456789012:assumed-role/dora-read-role/dora-read is not authorized to perform: "
        f"dynamodb:PutItem on resource: {TABLE} because no identity-based policy allows the dynamodb:PutItem action"
    )
    assert [d.request for d in principal.denials] == [Request("dynamodb:PutItem", TABLE)]
    stubber.assert_no_pending_responses()


def test_an_allowed_call_and_calls_outside_a_function_pass_untouched(ddb: tuple[Any, Stubber]) -> None:
    client, stubber = ddb
    stubber.add_response("get_item", {"Item": {"PK": {"S": "a"}}})
    stubber.add_response("put_item", {})
    with iam.acting_as(_reader()) as principal:
        assert client.get_item(TableName="dora", Key={"PK": {"S": "a"}})["Item"] == {"PK": {"S": "a"}}
    client.put_item(TableName="dora", Item={"PK": {"S": "a"}})  # the test's own call: no function runs
    assert principal.allowed == [Request("dynamodb:GetItem", TABLE)]
    assert iam.active() is None
    stubber.assert_no_pending_responses()


def test_an_explicit_deny_is_worded_as_aws_words_it(ddb: tuple[Any, Stubber]) -> None:
    client, _ = ddb
    role = iam.Role("R", "r", (allow("dynamodb:*", "*"), deny("dynamodb:DeleteItem", TABLE)))
    with iam.acting_as(iam.Principal("F", "f", role)), pytest.raises(ClientError, match="explicit deny"):
        client.delete_item(TableName="dora", Key={"PK": {"S": "a"}})


def test_sqs_denials_carry_sqs_error_code() -> None:
    sqs = boto3.session.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1").client("sqs")
    with iam.acting_as(_reader()), pytest.raises(ClientError) as raised:
        sqs.send_message(QueueUrl=QUEUE_URL, MessageBody="{}")
    assert raised.value.response["Error"]["Code"] == "AccessDenied"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert f"sqs:SendMessage on resource: {QUEUE}" in raised.value.response["Error"]["Message"]


def test_installing_twice_wraps_botocore_once() -> None:
    from botocore.client import BaseClient

    iam.install()
    wrapped = BaseClient._make_api_call
    iam.install()
    assert BaseClient._make_api_call is wrapped


def test_the_guard_refuses_calls_from_guarded_code_that_runs_outside_a_function(
    ddb: tuple[Any, Stubber], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, stubber = ddb
    monkeypatch.setattr(iam, "_GUARDED", ["probe_handlers"])
    namespace: dict[str, Any] = {"__name__": "probe_handlers.routes"}
    exec("def handler(client):\n    return client.get_item(TableName='dora', Key={})", namespace)  # noqa: S102
    with pytest.raises(iam.UncheckedCallError, match=r"probe_handlers\.routes called GetItem outside"):
        namespace["handler"](client)
    stubber.add_response("get_item", {})
    with iam.acting_as(_reader()):
        namespace["handler"](client)
