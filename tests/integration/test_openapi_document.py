"""The OpenAPI document says how to authenticate and which errors each route gives, in its dialect's shape."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from dora_insights.dialects.errors import ErrorDialect
from dora_insights.handlers import meta
from tests.conftest import ADMIN_KEY, Api
from tests.support.template import http_routes

ROUTES = sorted(http_routes())


def _document() -> dict[str, Any]:
    return json.loads(meta.openapi_document())  # type: ignore[no-any-return]


def _params(route: str) -> dict[str, str]:
    return {name: "Spaces-1" if name == "spaceId" else "x" for name in re.findall(r"{(\w+)}", route)}


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_a_route_is_public_in_the_document_exactly_when_it_answers_without_a_key(
    api: Api, method: str, route: str
) -> None:
    result = api.call(method, route, path_params=_params(route), raw_body="{}")
    asks_for_a_key = result.status == 401 and "API key is required" in json.dumps(result.body)
    assert ((method, route) in meta.PUBLIC_OPERATIONS) == (not asks_for_a_key), (method, route, result.body)
    if route != "/openapi.json":  # the document does not list itself
        operation = _document()["paths"][route][method.lower()]
        assert (operation["security"] == []) == (not asks_for_a_key), (method, route)


def test_every_template_route_is_documented_with_its_dialects_error_shape() -> None:
    document = _document()
    schemes = document["components"]["securitySchemes"]
    assert set(schemes) == {"bearer", "apiKey", "datadogApiKey", "basic", "orloToken"}
    keys = [{name: []} for name in meta.SECURITY_SCHEMES]  # orloToken: Orlo's X-Auth-Token, on Orlo's routes only
    assert {path for _, path in ROUTES} - set(document["paths"]) == {"/openapi.json"}
    for method, route in ROUTES:
        if route == "/openapi.json":
            continue
        operation = document["paths"][route][method.lower()]
        responses = operation["responses"]
        assert "422" not in responses, (method, route)  # validation errors are 400s
        assert {"400", "404"} <= set(responses), (method, route)
        if (method, route) not in meta.PUBLIC_OPERATIONS:
            assert {"401", "403"} <= set(responses), (method, route)
            token = route.startswith("/orlo") and route != "/orlo/token"
            assert operation["security"] == ([*keys, {"orloToken": []}] if token else keys), (method, route)
    datadog = document["paths"]["/api/v2/dora/deployment"]["post"]["responses"]["400"]
    assert datadog["content"]["application/json"]["schema"]["$ref"].endswith("/DatadogError")
    dx = document["paths"]["/api/deployments.create"]["post"]["responses"]["400"]
    assert dx["content"]["application/json"]["schema"]["$ref"].endswith("/DxError")
    posthog = document["paths"]["/api/projects/{spaceId}/insights"]["get"]["responses"]["404"]
    assert posthog["content"]["application/json"]["schema"]["$ref"].endswith("/PostHogError")


def test_every_route_that_reaches_the_table_documents_its_503_with_retry_after() -> None:
    document = _document()
    static = {("GET", "/health"), ("GET", "/orlo/ping")} | meta.dashboard.PUBLIC_OPERATIONS
    for method, route in ROUTES:
        if route == "/openapi.json":
            continue
        responses = document["paths"][route][method.lower()]["responses"]
        if (method, route) in static:
            assert "503" not in responses, (method, route)
            continue
        answer = responses["503"]
        assert answer["headers"]["Retry-After"]["schema"]["type"] == "integer", (method, route)
        assert answer["content"]["application/json"]["schema"]["$ref"].startswith("#/components/schemas/")


def test_a_route_taking_if_match_documents_its_412_and_its_200() -> None:
    document = _document()
    conditional = {
        (method, route)
        for route, item in document["paths"].items()
        for method, operation in item.items()
        if any(p["in"] == "header" and p["name"].lower() == "if-match" for p in operation.get("parameters", []))
    }
    assert ("patch", "/api/{spaceId}/settings") in conditional
    assert ("patch", "/api/{spaceId}/deployments/{deploymentId}") in conditional
    for method, route in conditional:
        responses = document["paths"][route][method]["responses"]
        assert {"200", "412"} <= set(responses), (method, route)
    settings = document["paths"]["/api/{spaceId}/settings"]["patch"]["responses"]["200"]
    assert settings["content"]["application/json"]["schema"]["$ref"].endswith("/SettingsOut")


@pytest.mark.parametrize(
    ("dialect", "method", "route"),
    [
        (ErrorDialect.NATIVE, "GET", "/api/{spaceId}/deployments/{deploymentId}"),
        (ErrorDialect.POSTHOG, "GET", "/api/projects/{spaceId}/insights/{insightId}"),
        (ErrorDialect.OCTOPUS, "GET", "/api/{spaceId}/insights/reports/{reportId}"),
    ],
)
def test_an_id_the_route_pattern_refuses_is_a_404_in_the_dialects_shape(
    api: Api, dialect: ErrorDialect, method: str, route: str
) -> None:
    params = {name: "Spaces-1" if name == "spaceId" else "a/b" for name in re.findall(r"{(\w+)}", route)}
    result = api.call(method, route, path_params=params, key=ADMIN_KEY)
    assert result.status == 404
    schema = meta.ERROR_MODELS[dialect]
    schema.model_validate(result.body)


def test_a_multipart_body_is_a_415_in_the_dialects_shape(api: Api) -> None:
    result = api.call(
        "POST",
        "/api/v2/dora/deployment",
        raw_body="{}",
        headers={"Content-Type": "multipart/form-data"},
    )
    assert result.status == 415
    meta.ERROR_MODELS[ErrorDialect.DATADOG].model_validate(result.body)
