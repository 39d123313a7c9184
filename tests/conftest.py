"""Shared fixtures: one in-process moto for the session, the table built from template.yaml per test."""

from __future__ import annotations

import base64
import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support import lambdas
from tests.support.events import http_event
from tests.support.template import http_routes, resources

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SECURITY_TOKEN", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ["TABLE_NAME"] = "dora-insights-test"
os.environ["POWERTOOLS_SERVICE_NAME"] = "dora-insights"
os.environ["POWERTOOLS_METRICS_NAMESPACE"] = "DoraInsights"
os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
os.environ["POWERTOOLS_DEV"] = "false"

ADMIN_KEY = "test-admin-key"

pytest_plugins = (  # the receiver, loopback, other_space, github_hooked, gitlab_hooked, replica_lag and meter fixtures
    "tests.support.fixtures",
    "tests.support.replica_lag",
    "tests.support.read_cost",
)

lambdas.guard()  # handler code's AWS calls only under its role (tests/support/lambdas.py)


@pytest.fixture(scope="session")
def _moto() -> Iterator[None]:
    from dora_local.motofix import mock_aws  # moto, patched as the local runtime runs it

    with mock_aws():
        yield


def _table_properties() -> dict[str, Any]:
    (table,) = resources("AWS::DynamoDB::Table").values()
    properties = dict(table["Properties"])
    return {
        k: properties[k]
        for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode")
        if k in properties
    }


@dataclass
class Aws:
    """Handles on the mocked resources of one test."""

    table_name: str
    queue_url: str
    dlq_url: str
    recompute_queue_url: str = ""  # the recompute's work items (tests/support/recompute.py drains it)
    secrets_key_arn: str = ""  # the secrets key (template.yaml's SecretsKey), in SECRETS_KEY_ARN


@pytest.fixture
def secrets_key(_moto: None) -> Iterator[str]:
    """A KMS key made as template.yaml's ``SecretsKey``, its ARN in ``SECRETS_KEY_ARN`` (as the functions that
    encrypt or decrypt a secret get it); no decrypted secret cached from an earlier test."""
    import boto3

    from dora_insights.dal import secrets
    from dora_insights.dal.aws import reset_clients

    properties = resources("AWS::KMS::Key")["SecretsKey"]["Properties"]
    kms = boto3.client("kms")
    made = kms.create_key(KeySpec=properties["KeySpec"], KeyUsage=properties["KeyUsage"])["KeyMetadata"]
    arn = str(made["Arn"])
    os.environ["SECRETS_KEY_ARN"] = arn
    reset_clients()
    secrets.clear_cache()
    try:
        yield arn
    finally:
        secrets.clear_cache()
        os.environ.pop("SECRETS_KEY_ARN", None)
        kms.schedule_key_deletion(KeyId=made["KeyId"], PendingWindowInDays=7)  # moto's takes no ARN here


@pytest.fixture
def aws(_moto: None, secrets_key: str) -> Iterator[Aws]:
    """A fresh table and retry queue (with DLQ) built from template.yaml's own definitions, and a secrets key."""
    import boto3

    from dora_insights.config import reset_settings
    from dora_insights.dal.aws import reset_clients
    from dora_insights.logic import catalogue, spaces

    ddb = boto3.client("dynamodb")
    sqs = boto3.client("sqs")
    name = os.environ["TABLE_NAME"]
    ddb.create_table(TableName=name, **_table_properties())
    queues = resources("AWS::SQS::Queue")
    dlq_url = sqs.create_queue(QueueName="test-retry-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = queues["RetryQueue"]["Properties"]["RedrivePolicy"]
    queue_url = sqs.create_queue(
        QueueName="test-retry",
        Attributes={
            "VisibilityTimeout": str(queues["RetryQueue"]["Properties"]["VisibilityTimeout"]),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": redrive["maxReceiveCount"]}
            ),
        },
    )["QueueUrl"]
    os.environ["RETRY_QUEUE_URL"] = queue_url
    work = queues["RecomputeQueue"]["Properties"]
    recompute_url = sqs.create_queue(
        QueueName="test-recompute", Attributes={"VisibilityTimeout": str(work["VisibilityTimeout"])}
    )["QueueUrl"]
    os.environ["RECOMPUTE_QUEUE_URL"] = recompute_url
    reset_settings()
    reset_clients()
    catalogue.clear_cache()
    spaces.clear_cache()
    try:
        yield Aws(
            table_name=name,
            queue_url=queue_url,
            dlq_url=dlq_url,
            recompute_queue_url=recompute_url,
            secrets_key_arn=secrets_key,
        )
    finally:
        ddb.delete_table(TableName=name)
        sqs.delete_queue(QueueUrl=queue_url)
        sqs.delete_queue(QueueUrl=recompute_url)
        sqs.delete_queue(QueueUrl=dlq_url)
        catalogue.clear_cache()
        spaces.clear_cache()


@pytest.fixture
def store(aws: Aws) -> Any:
    """The table adapter with its repositories (what ``handlers`` pass to logic)."""
    from dora_insights.dal.repositories import Repositories

    return Repositories(aws.table_name)


NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    """The functions' clock in a test: it answers ``now`` until the test sets it or moves it on."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> datetime:
        """Move time ``by`` on; the new time."""
        self.now += by
        return self.now


@pytest.fixture
def clock() -> Iterator[Clock]:
    """Every function's clock (``handlers.runtime.now``: HTTP, queue and schedule entries alike) stands at
    ``NOW`` until the test moves it. A module starting elsewhere overrides it::

        @pytest.fixture
        def clock(clock: Clock) -> Clock:
            clock.now = MODULE_NOW
            return clock
    """
    from dora_insights.handlers import runtime

    fixed = Clock()
    restore = runtime.use_clock(fixed)
    try:
        yield fixed
    finally:
        restore()


@pytest.fixture
def space(store: Any) -> str:
    """Space ``Spaces-1`` with the admin key ``ADMIN_KEY``."""
    from dora_insights.logic import admin

    admin.ensure_space(store, "Spaces-1", "Default", NOW)
    admin.ensure_api_key(store, "Spaces-1", "test admin", ADMIN_KEY, NOW)
    return "Spaces-1"


@dataclass
class HttpResult:
    """A handler's HTTP response, decoded."""

    status: int
    headers: dict[str, str]
    body: Any

    def header(self, name: str) -> str | None:
        """A header of the answer, its name compared case-insensitively (as HTTP does)."""
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


class Api:
    """Calls route functions the way API Gateway would: the template's handler for (method, route), run
    under the function's role (every AWS call it makes is checked, see tests/support/lambdas.py)."""

    def __init__(self) -> None:
        self.routes = http_routes()

    def handler(self, method: str, route: str) -> Any:
        return lambdas.handler(self.routes[(method, route)])

    def call(self, method: str, route: str, **kwargs: Any) -> HttpResult:
        return self.send(method, route, http_event(method, route, **kwargs))

    def send(self, method: str, route: str, event: dict[str, Any]) -> HttpResult:
        """``event`` (an API Gateway payload 2.0, built or altered by the test) through the route's function."""
        response = lambdas.invoke(self.routes[(method, route)], event, _Context())
        raw = response.get("body")
        body: Any = None
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        if raw and response.get("isBase64Encoded"):
            # As a client sees it: base64 undone by API Gateway, gzip by the HTTP client.
            data = base64.b64decode(raw)
            raw = (gzip.decompress(data) if headers.get("content-encoding") == "gzip" else data).decode()
        if raw:
            body = json.loads(raw) if "json" in headers.get("content-type", "") else raw
        return HttpResult(status=response["statusCode"], headers=response.get("headers") or {}, body=body)


class _Context:
    function_name = "test-function"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    log_group_name = "/aws/lambda/test"
    log_stream_name = "2024/03/01/[$LATEST]abcdef"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000


@pytest.fixture
def api(space: str) -> Api:
    """Route functions resolved through template.yaml, with a seeded space."""
    return Api()


@pytest.fixture
def lambda_context() -> Any:
    """A Lambda-like context object."""
    return _Context()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what the external fuzzer generated (``record_property`` travels from xdist workers too)."""
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        for name, value in getattr(report, "user_properties", []):
            if name == "schemathesis_generated_requests" and report.when == "call":
                terminalreporter.write_line(f"schemathesis: {value} generated requests over every operation")
