"""template.yaml: routes, least privilege, and CloudFormation's 500-resource limit."""

from __future__ import annotations

import copy
import importlib
import re
import tomllib
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform

from tests.support.template import handler_of, http_routes, resources, template

ROOT = Path(__file__).resolve().parents[2]
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


def test_every_handler_exists() -> None:
    for logical_id in resources("AWS::Serverless::Function"):
        module, _, name = handler_of(logical_id).rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), logical_id


# GET routes that write: the first GET of an insight's sharing creates its configuration.
WRITING_GETS = {"GetInsightSharingFunction"}


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
            expected = "ApiReadRole" if reads else "ApiWriteRole"
            assert role == {"Fn::GetAtt": [expected, "Arn"]}, name


def test_stack_stays_under_the_resource_limit_with_every_planned_route() -> None:
    doc = template()
    actual = len(_transformed(doc)["Resources"])
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


def test_layer_requirements_equal_the_pinned_runtime_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    layer = [
        line.strip()
        for line in (ROOT / "layers/deps/requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert sorted(layer) == sorted(project["dependencies"])
    assert all(re.fullmatch(r"[\w.\-\[\]]+==[\w.]+", pin) for pin in layer)


def test_openapi_document_and_template_routes_agree() -> None:
    import json

    from dora_insights.handlers.meta import openapi_document

    document = json.loads(openapi_document())
    assert document["openapi"].startswith("3.")
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    routed = set(http_routes()) - {("GET", "/openapi.json")}
    assert documented == routed
