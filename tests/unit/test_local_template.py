"""The local runtime's reading of template.yaml (routes, precedence, triggers, references) and the
event shapes it builds. Pure: no moto, no network."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from dora_local import template
from dora_local.events import failed_message_ids, http_event, http_response, scheduled_event, sqs_record
from dora_local.template import Resolver, Route

NOW = datetime(2024, 3, 1, 12, 0, 5, tzinfo=UTC)


def _routes(*specs: str) -> list[Route]:
    return [Route(spec.split()[0], spec.split()[1], spec) for spec in specs]


def _matched(routes: list[Route], method: str, path: str) -> tuple[str, dict[str, str]] | None:
    found = template.match(routes, method, path)
    return None if found is None else (found[0].function, found[1])


# --------------------------------------------------------------------------------------------- template
def test_every_function_has_an_importable_handler_path_and_globals_merged() -> None:
    functions = template.functions()
    assert functions, "template.yaml has functions"
    for function in functions.values():
        module, _, entry = function.handler.rpartition(".")
        assert module.startswith("dora_insights.handlers."), function.logical_id
        assert entry
        assert "TABLE_NAME" in function.environment  # from Globals
        assert function.timeout > 0
        assert function.memory >= 128


def test_http_routes_come_from_the_template_including_alias_paths() -> None:
    doc = template.load()
    expected = {
        (e["Properties"]["Method"].upper(), e["Properties"]["Path"], name)
        for name, r in template.resources("AWS::Serverless::Function", doc).items()
        for e in (r["Properties"].get("Events") or {}).values()
        if e["Type"] == "HttpApi"
    }
    found = {(r.method, r.path, r.function) for f in template.functions(doc).values() for r in f.routes}
    assert found == expected
    assert ("GET", "/health", "HealthFunction") in found


def test_queue_and_schedule_triggers_come_from_the_template() -> None:
    functions = template.functions()
    queues = [(f.logical_id, t) for f in functions.values() for t in f.queues]
    schedules = [(f.logical_id, t) for f in functions.values() for t in f.schedules]
    assert queues, "an SQS-triggered function"
    assert schedules, "a scheduled function"
    for _, trigger in queues:
        assert trigger.queue in template.resources("AWS::SQS::Queue")
        assert 1 <= trigger.batch_size <= 10_000
    retry = functions["AttributionRetryFunction"].queues[0]
    assert (retry.queue, retry.batch_size, retry.report_failures) == ("RetryQueue", 10, True)
    assert functions["RecomputeFunction"].schedules[0].expression.startswith(("rate(", "cron("))


def test_a_synthetic_template_is_read_generically() -> None:
    doc = {
        "Globals": {"Function": {"Timeout": 7, "Environment": {"Variables": {"A": "global", "B": "global"}}}},
        "Resources": {
            "Q": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "F": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Handler": "pkg.mod.entry",
                    "MemorySize": 256,
                    "Environment": {"Variables": {"B": "own", "FLAG": True}},
                    "Events": {
                        "One": {"Type": "HttpApi", "Properties": {"Path": "/x/{id}", "Method": "get"}},
                        "Two": {"Type": "HttpApi", "Properties": {"Path": "/alias/{id}", "Method": "GET"}},
                        "Jobs": {"Type": "SQS", "Properties": {"Queue": {"Fn::GetAtt": ["Q", "Arn"]}, "BatchSize": 3}},
                        "Tick": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)", "Enabled": False}},
                        "Cron": {"Type": "Schedule", "Properties": {"Schedule": "cron(0 12 * * ? *)", "Input": "{}"}},
                    },
                },
            },
        },
    }
    (function,) = template.functions(doc).values()
    assert (function.timeout, function.memory) == (7, 256)
    assert function.environment == {"A": "global", "B": "own", "FLAG": True}
    assert [(r.method, r.path, r.event) for r in function.routes] == [
        ("GET", "/x/{id}", "One"),
        ("GET", "/alias/{id}", "Two"),
    ]
    assert [(q.queue, q.batch_size, q.report_failures) for q in function.queues] == [("Q", 3, False)]
    assert [(s.name, s.enabled, s.input) for s in function.schedules] == [("Tick", False, None), ("Cron", True, "{}")]
    assert Resolver(doc=doc).environment_value(function.environment["FLAG"]) == "true"


# --------------------------------------------------------------------------------------------- references
def test_references_resolve_to_local_names_urls_and_arns() -> None:
    resolver = Resolver(
        {"Table": "dora-insights-local", "RetryQueue": "q"},
        {"RetryQueue": "http://127.0.0.1:1/123456789012/q"},
        {"RetryQueue": "arn:aws:sqs:us-east-1:123456789012:q", "Table": "arn:table"},
        doc={"Parameters": {"Stage": {"Default": "prod"}, "LogRetentionDays": {"Default": 30}}},
    )
    assert resolver.resolve({"Ref": "Table"}) == "dora-insights-local"
    assert resolver.resolve({"Ref": "RetryQueue"}) == "http://127.0.0.1:1/123456789012/q"
    assert resolver.resolve({"Ref": "Stage"}) == "local"
    assert resolver.resolve({"Ref": "LogRetentionDays"}) == "30"
    assert resolver.resolve({"Ref": "AWS::Region"}) == "us-east-1"
    assert resolver.resolve({"Fn::GetAtt": ["RetryQueue", "Arn"]}) == "arn:aws:sqs:us-east-1:123456789012:q"
    assert resolver.resolve({"Fn::GetAtt": "RetryQueue.QueueUrl"}).startswith("http://127.0.0.1:1/")
    assert resolver.resolve({"Fn::Sub": "dora-insights-${Stage}"}) == "dora-insights-local"
    assert resolver.resolve({"Fn::Sub": "${Table.Arn}/index/*"}) == "arn:table/index/*"
    assert resolver.resolve({"Fn::Sub": ["${X}-${AWS::AccountId}", {"X": {"Ref": "Stage"}}]}) == "local-123456789012"
    assert resolver.resolve({"Fn::Join": ["-", ["a", {"Ref": "Stage"}]]}) == "a-local"
    assert resolver.resolve({"deadLetterTargetArn": {"Fn::GetAtt": ["RetryQueue", "Arn"]}, "maxReceiveCount": 5}) == {
        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:q",
        "maxReceiveCount": 5,
    }


def test_the_template_environment_resolves_with_short_tags_parsed() -> None:
    doc = template.load()
    variables = doc["Globals"]["Function"]["Environment"]["Variables"]
    resolver = Resolver({"Table": "t", "EventBus": "b"}, {"RetryQueue": "http://q"}, {}, doc=doc)
    resolved = {k: resolver.environment_value(v) for k, v in variables.items()}
    assert resolved["TABLE_NAME"] == "t"
    assert resolved["RETRY_QUEUE_URL"] == "http://q"
    assert resolved["EVENT_BUS_NAME"] == "b"
    assert resolved["STAGE"] == "local"


# --------------------------------------------------------------------------------------------- routing
def test_the_template_routes_a_request_to_its_function_with_path_parameters() -> None:
    routes = [r for f in template.functions().values() for r in f.routes]
    assert _matched(routes, "GET", "/api/Spaces-1/deployments/abc") == (
        "GetDeploymentFunction",
        {"spaceId": "Spaces-1", "deploymentId": "abc"},
    )
    assert _matched(routes, "POST", "/api/Spaces-1/deployments/batch") == (
        "CreateDeploymentBatchFunction",
        {"spaceId": "Spaces-1"},
    )
    assert _matched(routes, "GET", "/health") == ("HealthFunction", {})
    assert _matched(routes, "DELETE", "/health") is None
    assert _matched(routes, "GET", "/health/") is None
    assert _matched(routes, "GET", "/nope") is None
    # A route with a trailing slash is its own route, as in HTTP API (Orlo's root is at both).
    assert _matched(routes, "GET", "/orlo") == ("OrloRootFunction", {})
    assert _matched(routes, "GET", "/orlo/") == ("OrloRootFunction", {})
    assert _matched(_routes("GET /x"), "GET", "/x/") is None
    assert _matched(_routes("GET /x/"), "GET", "/x") is None


def test_exact_segments_win_over_parameters_and_parameters_over_greedy() -> None:
    routes = _routes("GET /a/{proxy+}", "GET /a/{id}", "GET /a/trending", "GET /a/{id}/b", "GET /{x}/c/d")
    assert _matched(routes, "GET", "/a/trending") == ("GET /a/trending", {})
    assert _matched(routes, "GET", "/a/7") == ("GET /a/{id}", {"id": "7"})
    assert _matched(routes, "GET", "/a/7/b") == ("GET /a/{id}/b", {"id": "7"})
    assert _matched(routes, "GET", "/a/7/b/c") == ("GET /a/{proxy+}", {"proxy": "7/b/c"})
    assert _matched(routes, "GET", "/a/c/d") == ("GET /a/{proxy+}", {"proxy": "c/d"})
    assert _matched(routes, "GET", "/z/c/d") == ("GET /{x}/c/d", {"x": "z"})
    assert _matched(routes, "GET", "/a") is None
    assert _matched(routes, "POST", "/a/7") is None


def test_a_method_route_wins_over_any_and_any_takes_every_method() -> None:
    routes = _routes("ANY /r/{id}", "DELETE /r/{id}")
    assert _matched(routes, "DELETE", "/r/1") == ("DELETE /r/{id}", {"id": "1"})
    assert _matched(routes, "PATCH", "/r/1") == ("ANY /r/{id}", {"id": "1"})


def test_path_parameters_are_url_decoded_and_an_encoded_slash_stays_in_its_segment() -> None:
    routes = _routes("GET /s/{name}")
    assert _matched(routes, "GET", "/s/a%20b") == ("GET /s/{name}", {"name": "a b"})
    assert _matched(routes, "GET", "/s/a%2Fb") == ("GET /s/{name}", {"name": "a/b"})
    assert _matched(routes, "GET", "/s/") is None


# --------------------------------------------------------------------------------------------- schedules
def test_rates_and_crons_give_the_next_run() -> None:
    assert template.rate_seconds("rate(5 minutes)") == 300
    assert template.rate_seconds("rate(1 minute)") == 60
    assert template.rate_seconds("rate(2 hours)") == 7200
    assert template.rate_seconds("cron(0 12 * * ? *)") is None
    assert template.next_run("rate(1 day)", NOW) == datetime(2024, 3, 2, 12, 0, 5, tzinfo=UTC)
    assert template.next_run("cron(0 12 * * ? *)", NOW) == datetime(2024, 3, 2, 12, 0, tzinfo=UTC)
    assert template.next_run("cron(*/15 * * * ? *)", NOW) == datetime(2024, 3, 1, 12, 15, tzinfo=UTC)
    # 2024-03-01 is a Friday; MON-FRI at 08:30 -> Monday the 4th.
    assert template.next_run("cron(30 8 ? * MON-FRI *)", NOW) == datetime(2024, 3, 4, 8, 30, tzinfo=UTC)
    assert template.next_run("cron(0 0 1 JAN ? *)", NOW) == datetime(2025, 1, 1, 0, 0, tzinfo=UTC)
    assert template.next_run("at(2024-01-01T00:00:00)", NOW) is None


# --------------------------------------------------------------------------------------------- events
def _sample_event() -> dict:
    return http_event(
        "POST",
        "/api/Spaces-1/deployments",
        "a=1&a=2&b=&c=x%20y",
        [
            ("Host", "127.0.0.1:3000"),
            ("Content-Type", "application/json"),
            ("X-Api-Key", "k"),
            ("Accept", "text/plain"),
            ("Accept", "application/json"),
            ("User-Agent", "pytest"),
            ("Cookie", "c1=1; c2=2"),
            ("Cookie", "c3=3"),
        ],
        b'{"x": 1}',
        Route("POST", "/api/{spaceId}/deployments", "CreateDeploymentFunction"),
        {"spaceId": "Spaces-1"},
        "127.0.0.1",
        port=3000,
        now=NOW,
    )


def test_a_request_becomes_an_http_api_payload_2_event() -> None:
    event = _sample_event()
    assert set(event) == {
        "version",
        "routeKey",
        "rawPath",
        "rawQueryString",
        "cookies",
        "headers",
        "queryStringParameters",
        "requestContext",
        "body",
        "pathParameters",
        "isBase64Encoded",
    }
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /api/{spaceId}/deployments"
    assert event["rawPath"] == "/api/Spaces-1/deployments"
    assert event["rawQueryString"] == "a=1&a=2&b=&c=x%20y"
    assert event["cookies"] == ["c1=1", "c2=2", "c3=3"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-api-key"] == "k"
    assert event["headers"]["accept"] == "text/plain,application/json"
    assert event["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert all(name == name.lower() for name in event["headers"])
    assert event["queryStringParameters"] == {"a": "1,2", "b": "", "c": "x y"}
    assert event["pathParameters"] == {"spaceId": "Spaces-1"}
    assert (event["body"], event["isBase64Encoded"]) == ('{"x": 1}', False)
    context = event["requestContext"]
    assert set(context) == {
        "accountId",
        "apiId",
        "domainName",
        "domainPrefix",
        "http",
        "requestId",
        "routeKey",
        "stage",
        "time",
        "timeEpoch",
    }
    assert context["http"] == {
        "method": "POST",
        "path": "/api/Spaces-1/deployments",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "pytest",
    }
    assert (context["routeKey"], context["stage"]) == ("POST /api/{spaceId}/deployments", "$default")
    assert (context["domainName"], context["domainPrefix"]) == ("127.0.0.1", "127")
    assert context["time"] == "01/Mar/2024:12:00:05 +0000"
    assert context["timeEpoch"] == 1709294405000
    assert len(base64.b64decode(context["requestId"])) == 11


def test_the_event_shape_matches_the_projects_recorded_http_api_event() -> None:
    """Same keys, at every level, as events/http_api_request.json (a real HTTP API event)."""
    from tests.support.events import load_event

    recorded = load_event("http_api_request.json")
    event = _sample_event()
    optional = {"cookies", "queryStringParameters", "pathParameters", "body", "stageVariables"}
    assert set(recorded) - optional <= set(event)
    assert set(event) - optional <= set(recorded)
    assert set(recorded["requestContext"]) - {"authorizer", "authentication"} <= set(event["requestContext"])
    assert set(recorded["requestContext"]["http"]) == set(event["requestContext"]["http"])


def test_binary_bodies_are_base64_and_empty_parts_are_absent() -> None:
    route = Route("POST", "/x", "F")
    binary = http_event("POST", "/x", "", {"Content-Type": "application/octet-stream"}, b"\xff", route, {}, "127.0.0.1")
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\xff"
    latin1 = http_event("POST", "/x", "", {"Content-Type": "text/csv"}, b"caf\xe9", route, {}, "127.0.0.1")
    assert (latin1["isBase64Encoded"], base64.b64decode(latin1["body"])) == (True, b"caf\xe9")
    csv = http_event("POST", "/x", "", {"Content-Type": "text/csv; charset=utf-8"}, b"a,b\n", route, {}, "127.0.0.1")
    assert (csv["body"], csv["isBase64Encoded"]) == ("a,b\n", False)
    empty = http_event("GET", "/x", "", {}, b"", route, {}, "127.0.0.1")
    for absent in ("body", "pathParameters", "queryStringParameters", "cookies"):
        assert absent not in empty
    assert (empty["rawQueryString"], empty["isBase64Encoded"]) == ("", False)


# --------------------------------------------------------------------------------------------- responses
def test_a_response_with_status_code_is_written_as_given() -> None:
    response = http_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "text/plain", "X-One": "1"},
            "multiValueHeaders": {"X-Many": ["a", "b"]},
            "cookies": ["s=1; HttpOnly", "t=2"],
            "body": "created",
        }
    )
    assert response.status == 201
    assert response.body == b"created"
    assert ("X-Many", "a") in response.headers
    assert ("X-Many", "b") in response.headers
    assert [v for k, v in response.headers if k == "Set-Cookie"] == ["s=1; HttpOnly", "t=2"]
    binary = http_response({"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True})
    assert binary.body == b"\x00\x01"
    assert ("Content-Type", "application/json") in binary.headers


def test_a_result_without_status_code_is_a_200_json_body() -> None:
    for result in ({"ok": True}, "text", [1, 2], None):
        response = http_response(result)
        assert (response.status, json.loads(response.body)) == (200, result)
        assert ("Content-Type", "application/json") in response.headers
    with pytest.raises(ValueError, match="statusCode"):
        http_response({"statusCode": 42})


def test_sqs_records_and_scheduled_events_have_the_aws_shapes() -> None:
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "rh",
        "Body": "hello",
        "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1", "SenderId": "AID"},
        "MessageAttributes": {"k": {"StringValue": "v", "DataType": "String"}},
    }
    record = sqs_record(message, "arn:aws:sqs:us-east-1:123456789012:q")
    assert record["messageId"] == "m-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "2"
    assert set(record["attributes"]) >= {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert record["messageAttributes"] == {
        "k": {"stringValue": "v", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
    }
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == (
        "aws:sqs",
        "arn:aws:sqs:us-east-1:123456789012:q",
        "us-east-1",
    )
    event = scheduled_event("arn:aws:events:us-east-1:123456789012:rule/r", NOW)
    assert event["detail-type"] == "Scheduled Event"
    assert (event["source"], event["resources"], event["detail"]) == (
        "aws.events",
        ["arn:aws:events:us-east-1:123456789012:rule/r"],
        {},
    )
    assert event["time"] == "2024-03-01T12:00:05Z"


def test_partial_batch_responses_are_read_as_lambda_reads_them() -> None:
    records = [{"messageId": "a"}, {"messageId": "b"}]
    assert failed_message_ids(None, records) == set()
    assert failed_message_ids({"batchItemFailures": []}, records) == set()
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, records) == {"b"}
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, records) == {"a", "b"}
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": ""}]}, records) == {"a", "b"}
