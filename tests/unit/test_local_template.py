"""The local runtime's reading of template.yaml: routes, precedence, schedules, event shape."""

from __future__ import annotations

import base64

from dora_local import template
from dora_local.server import http_event


def _route(method: str, path: str) -> template.Route:
    pattern, rank = template.compile_path(path)
    return template.Route(method, path, f"{method}{path}", pattern, rank)


def test_every_http_route_of_the_template_is_served_by_its_function() -> None:
    functions = template.functions()
    routes = [r for f in functions.values() for r in f.routes]
    assert ("POST", "/api/{spaceId}/deployments") in {(r.method, r.path) for r in routes}
    matched = template.match(routes, "GET", "/api/Spaces-1/deployments/abc")
    assert matched is not None
    route, params = matched
    assert route.function == "GetDeploymentFunction"
    assert params == {"spaceId": "Spaces-1", "deploymentId": "abc"}


def test_exact_segments_win_over_parameters_and_parameters_over_greedy() -> None:
    routes = [_route("GET", "/a/{proxy+}"), _route("GET", "/a/{id}"), _route("GET", "/a/trending")]
    assert template.match(routes, "GET", "/a/trending")[0].path == "/a/trending"  # type: ignore[index]
    assert template.match(routes, "GET", "/a/7")[0].path == "/a/{id}"  # type: ignore[index]
    assert template.match(routes, "GET", "/a/7/b")[0].path == "/a/{proxy+}"  # type: ignore[index]
    assert template.match(routes, "POST", "/a/7") is None
    assert template.match(routes, "GET", "/b") is None


def test_schedules_and_queues_come_from_the_template() -> None:
    functions = template.functions()
    assert functions["RecomputeFunction"].schedules == ["rate(5 minutes)"]
    assert functions["AttributionRetryFunction"].queues == [("RetryQueue", 10)]
    assert template.rate_seconds("rate(5 minutes)") == 300
    assert template.rate_seconds("rate(1 hour)") == 3600
    assert template.rate_seconds("cron(0 12 * * ? *)") == 300


def test_references_resolve_to_local_names() -> None:
    resolver = template.Resolver({"Table": "dora-insights-local"}, {"RetryQueue": "http://q"}, {"RetryQueue": "arn:q"})
    assert resolver.resolve({"Ref": "Table"}) == "dora-insights-local"
    assert resolver.resolve({"Ref": "RetryQueue"}) == "http://q"
    assert resolver.resolve({"Ref": "Stage"}) == "local"
    assert resolver.resolve({"Fn::GetAtt": ["RetryQueue", "Arn"]}) == "arn:q"
    assert resolver.resolve({"Fn::Sub": "dora-insights-${Stage}"}) == "dora-insights-local"


def test_requests_become_http_api_payload_2_events() -> None:
    route = _route("POST", "/api/{spaceId}/deployments")
    event = http_event(
        "POST",
        "/api/Spaces-1/deployments",
        "a=1&a=2&b=",
        {"Content-Type": "application/json", "X-Api-Key": "k", "Cookie": "c1=1; c2=2"},
        b'{"x": 1}',
        route,
        {"spaceId": "Spaces-1"},
        "127.0.0.1",
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /api/{spaceId}/deployments"
    assert event["headers"]["x-api-key"] == "k"
    assert event["cookies"] == ["c1=1", "c2=2"]
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["pathParameters"] == {"spaceId": "Spaces-1"}
    assert event["requestContext"]["http"]["method"] == "POST"
    assert (event["body"], event["isBase64Encoded"]) == ('{"x": 1}', False)
    binary = http_event("POST", "/x", "", {"Content-Type": "application/octet-stream"}, b"\xff", route, {}, "127.0.0.1")
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\xff"
    assert "pathParameters" not in binary
    assert "queryStringParameters" not in binary
