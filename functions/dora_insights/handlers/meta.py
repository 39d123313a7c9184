"""Routes without authentication: liveness and the OpenAPI document of every route."""

from __future__ import annotations

import importlib
import json
import re
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel

from dora_insights.dialects.error_models import (
    DatadogError,
    DxError,
    GitLabError,
    NativeError,
    OctopusError,
    OrloError,
    PostHogError,
)
from dora_insights.dialects.errors import ErrorDialect
from dora_insights.dialects.native_admin import HealthOut
from dora_insights.handlers import app as dashboard
from dora_insights.handlers.http import JSON, api, entry, json_response

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.NATIVE)

# Every handler module that defines routes; the OpenAPI document is generated from them.
ROUTE_MODULES = (
    "dora_insights.handlers.meta",
    "dora_insights.handlers.admin",
    "dora_insights.handlers.settings",
    "dora_insights.handlers.deployments",
    "dora_insights.handlers.deployment_batch",
    "dora_insights.handlers.deployment_records",
    "dora_insights.handlers.datadog",
    "dora_insights.handlers.failures",
    "dora_insights.handlers.catalogue",
    "dora_insights.handlers.reports",
    "dora_insights.handlers.summary",
    "dora_insights.handlers.dora_metrics",
    "dora_insights.handlers.insights",
    "dora_insights.handlers.alerts",
    "dora_insights.handlers.dx",
    "dora_insights.handlers.github",
    "dora_insights.handlers.gitlab",
    "dora_insights.handlers.incidents",
    "dora_insights.handlers.changes",
    "dora_insights.handlers.orlo",
    "dora_insights.handlers.app",
)
TITLE = "dora-insights"
VERSION = "0.1.0"


@router.get("/health", summary="Liveness", tags=["Meta"])
def _health() -> Response[HealthOut]:
    return json_response(200, HealthOut(status="ok"))


health = entry(app, ErrorDialect.NATIVE, None)


# Routes that take no API key: liveness, this document, the GitHub webhook (signed with the space's
# secret), the GitLab webhook (the space's token), the PagerDuty and Opsgenie incident webhooks (the
# space's signing secret / shared secret), Orlo's ping and the public share links.
# tests/unit/test_openapi.py keeps this list equal to the template's routes whose entry point
# authenticates nobody.
PUBLIC_OPERATIONS = (
    frozenset(
        {
            ("GET", "/health"),
            ("GET", "/openapi.json"),
            ("POST", "/webhooks/github/{spaceId}"),
            ("POST", "/webhooks/pagerduty/{spaceId}"),  # X-PagerDuty-Signature
            ("POST", "/webhooks/opsgenie/{spaceId}"),  # X-Opsgenie-Secret
            ("POST", "/webhooks/gitlab/{spaceId}"),
            ("GET", "/orlo/ping"),
            ("GET", "/shared/{accessToken}"),
            ("POST", "/shared/{accessToken}/login"),
        }
    )
    | dashboard.PUBLIC_OPERATIONS
)  # the dashboard's and the API docs' pages
# How a key is presented (API.md "Authentication"); any one of them will do.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <API key>"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
    "datadogApiKey": {"type": "apiKey", "in": "header", "name": "DD-API-KEY"},
    "basic": {"type": "http", "scheme": "basic", "description": "HTTP Basic with the API key as the password"},
}
# Orlo's routes also take a token from ``GET /orlo/token`` (API.md "Dialect: Orlo"); that route itself takes a key.
ORLO_TOKEN_SCHEME = "orloToken"
ORLO_TOKEN = {
    "type": "apiKey",
    "in": "header",
    "name": "X-Auth-Token",
    "description": "A token from GET /orlo/token (valid 1 hour); Orlo routes only",
}
_TAKES_NO_TOKEN = frozenset({("GET", "/orlo/token")})
# The headers that authenticate and describe a webhook delivery (the route reads them itself: declared to
# Powertools they would be validated by it, and a missing one would answer its 400, not the route's 401).
_WEBHOOK_HEADERS: dict[str, tuple[tuple[str, bool, str], ...]] = {
    "/webhooks/github/{spaceId}": (
        ("X-Hub-Signature-256", True, "sha256=<HMAC-SHA256 of the raw body with the space's webhook secret>"),
        ("X-GitHub-Event", True, "The event: push, pull_request, deployment_status, ping (others are ignored)"),
        ("X-GitHub-Delivery", False, "The delivery's id: a redelivery answers 200 and stores nothing twice"),
    ),
    "/webhooks/gitlab/{spaceId}": (
        ("X-Gitlab-Token", True, "The webhook's secret token (PUT /api/{spaceId}/webhooks/gitlab)"),
        ("X-Gitlab-Event", True, "Push Hook, Merge Request Hook, Deployment Hook (others are ignored)"),
        ("Idempotency-Key", False, "The delivery's id (GitLab 17.4+): a redelivery stores nothing twice"),
        ("X-Gitlab-Event-UUID", False, "The delivery's id when there is no Idempotency-Key"),
    ),
    "/webhooks/pagerduty/{spaceId}": (
        ("X-PagerDuty-Signature", True, "v1=<HMAC-SHA256 of the raw body with the space's signing secret>"),
    ),
    "/webhooks/opsgenie/{spaceId}": (("X-Opsgenie-Secret", True, "The space's shared secret"),),
}
ERROR_MODELS: dict[ErrorDialect, type[BaseModel]] = {
    ErrorDialect.NATIVE: NativeError,
    ErrorDialect.ORLO: OrloError,
    ErrorDialect.DATADOG: DatadogError,
    ErrorDialect.DX: DxError,
    ErrorDialect.OCTOPUS: OctopusError,
    ErrorDialect.POSTHOG: PostHogError,
    ErrorDialect.GITLAB: GitLabError,
}
_ERROR_DESCRIPTIONS = {
    400: "The request is not valid (or its answer would be over Lambda's 6 MB: `response_too_large`)",
    401: "No API key, or a key that is not valid",
    403: "The key lacks the scope this route needs",
    404: "No such resource in this space, or a space other than the key's",
    405: "The method is not allowed on this resource",
    409: "A conflict with what is stored (the same client id with another body, a stale version)",
    413: "The body is over 1 MiB, or what it would store is over DynamoDB's item limit",
    415: "A multipart body: every route takes JSON (the GitHub webhook also form-encoded)",
    412: "Precondition failed: the revision sent (`If-Match`, or the body's `revision`) is not the current one",
    429: "Too many attempts: try again later",
    503: "Concurrent writes or DynamoDB throttling kept the request from going through (`write_contended`) and"
    " nothing was stored, or a report was being recomputed: send it again after `Retry-After` seconds",
}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Routes that reach no AWS service, so never answer 503: liveness, this document, Orlo's ping, the pages.
_NO_STORE = (
    frozenset({("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/orlo/ping")}) | dashboard.PUBLIC_OPERATIONS
)
# Every 503 carries it (``http.RETRY_AFTER_SECONDS``).
_RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds to wait before sending the request again",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def _route_operations(router: APIGatewayHttpRouter) -> set[tuple[str, str]]:
    """(METHOD, OpenAPI path) of every route a router registers."""
    operations: set[tuple[str, str]] = set()
    for key in router._routes:  # Powertools' own include_router reads routes the same way
        rule, methods = key[0], key[1]
        path = re.sub(r"<(\w+)>", r"{\1}", str(rule))
        for method in [methods] if isinstance(methods, str) else methods:
            operations.add((str(method).upper(), path))
    return operations


def _error_responses(method: str, path: str, public: bool, *, if_match: bool = False) -> list[int]:
    """The error statuses a route can answer (entry(), the resolver and the logic under it); ``if_match``:
    the route takes an ``If-Match`` header (a write conditional on a revision)."""
    statuses = [400, 404]
    if (method, path) not in _NO_STORE:
        statuses += [503]
    if if_match:
        statuses += [412]
    if not public:
        statuses += [401, 403]
    if method in _BODY_METHODS or method == "DELETE":
        statuses += [409]
    if method in _BODY_METHODS:
        statuses += [413, 415]
    if public and path.startswith("/shared/"):
        statuses += [401, 429]
    if public and path.startswith("/webhooks/"):
        statuses += [401]  # a bad or missing signature or token (the same for an unknown space)
    return sorted(set(statuses))


# Answers sent without a body (Datadog's 202 Accepted, redirects) when their route declares no model.
_BODILESS = ("202", "204", "301", "302", "303", "307", "308")


# Request parts a route reads itself (DX's and Orlo's, to answer in their own words), which the resolver
# therefore never sees: ``OPENAPI_BODIES`` (a model: a JSON body; a media type: a text body) and
# ``OPENAPI_QUERIES`` (a model whose fields are the query parameters) of a handler module, by route;
# ``OPENAPI_OPTIONAL_BODIES``: the routes whose body may be left out.
Bodies = dict[tuple[str, str], type[BaseModel] | str]
Queries = dict[tuple[str, str], type[BaseModel]]


def _schema_of(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    """``model``'s JSON schema as a request takes it, its nested models added to ``schemas``."""
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}", mode="validation")
    for name, nested in schema.pop("$defs", {}).items():
        schemas.setdefault(name, nested)
    return schema


def _request_body(body: type[BaseModel] | str, schemas: dict[str, Any], *, required: bool) -> dict[str, Any]:
    if isinstance(body, str):
        return {"required": required, "content": {body: {"schema": {"type": "string"}}}}
    return {"required": required, "content": {JSON: {"schema": _schema_of(body, schemas)}}}


def _present(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema without the null its model field allows: a parameter left out is that."""
    field = {k: v for k, v in schema.items() if not (k == "default" and v is None)}
    choices = [c for c in field.get("anyOf", []) if c != {"type": "null"}]
    if len(choices) == 1:
        field.pop("anyOf")
        field.update(choices[0])
    elif choices:
        field["anyOf"] = choices
    return field


def _query_parameters(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _schema_of(model, schemas)
    required = set(schema.get("required", []))
    parameters = []
    for name, found in schema.get("properties", {}).items():
        field = _present(found)
        parameter = {"name": name, "in": "query", "required": name in required, "schema": field}
        if "description" in field:
            parameter["description"] = field["description"]
        parameters.append(parameter)
    return parameters


def _webhook_headers(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "header", "required": required, "description": about, "schema": {"type": "string"}}
        for name, required, about in _WEBHOOK_HEADERS.get(path, ())
    ]


def _security(key: tuple[str, str], dialect: ErrorDialect, public: bool) -> list[dict[str, list[str]]]:
    if public:
        return []
    keys: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]
    if dialect is ErrorDialect.ORLO and key not in _TAKES_NO_TOKEN:
        keys.append({ORLO_TOKEN_SCHEME: []})
    return keys


def _document(
    document: dict[str, Any],
    dialects: dict[tuple[str, str], ErrorDialect],
    bodies: Bodies | None = None,
    queries: Queries | None = None,
    optional: frozenset[tuple[str, str]] = frozenset(),
) -> dict[str, Any]:
    """The generated document with how to authenticate and every error each route can give, in its
    dialect's shape (Powertools documents a 422 the service never sends: validation errors are 400s),
    and the request parts the routes read themselves (``bodies``, ``queries``)."""
    components = document.setdefault("components", {})
    components["securitySchemes"] = {**SECURITY_SCHEMES, ORLO_TOKEN_SCHEME: ORLO_TOKEN}
    schemas = components.setdefault("schemas", {})
    for model in ERROR_MODELS.values():
        schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            key = (method.upper(), path)
            public = key in PUBLIC_OPERATIONS
            operation["security"] = _security(key, dialects[key], public)
            if bodies and key in bodies:
                operation["requestBody"] = _request_body(bodies[key], schemas, required=key not in optional)
            extra = _query_parameters(queries[key], schemas) if queries and key in queries else []
            extra += _webhook_headers(path) if public else []
            if extra:
                operation.setdefault("parameters", []).extend(extra)
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for code in _BODILESS:  # Powertools gives every response a JSON body; these have none
                schema = responses.get(code, {}).get("content", {}).get(JSON, {}).get("schema", {})
                if schema.get("title") == "Return" and "$ref" not in schema and "properties" not in schema:
                    responses[code].pop("content")
            ref = {"$ref": f"#/components/schemas/{ERROR_MODELS[dialects[key]].__name__}"}
            for code, declared in responses.items():  # an error a route declares: its dialect's shape
                if int(code) >= 400:
                    declared["content"] = {JSON: {"schema": ref}}
            headers = {p.get("name", "").lower() for p in operation.get("parameters", []) if p.get("in") == "header"}
            for status in _error_responses(key[0], path, public, if_match="if-match" in headers):
                documented = responses.setdefault(
                    str(status),
                    {"description": _ERROR_DESCRIPTIONS[status], "content": {JSON: {"schema": ref}}},
                )
                if status == 503:
                    documented.setdefault("headers", _RETRY_AFTER_HEADER)
            operation["responses"] = dict(sorted(responses.items()))
    return document


@lru_cache(maxsize=1)
def openapi_document() -> str:
    """The OpenAPI 3.1 document of every route, generated from the route models."""
    combined = APIGatewayHttpResolver(enable_validation=True)
    dialects: dict[tuple[str, str], ErrorDialect] = {}
    bodies: Bodies = {}
    queries: Queries = {}
    optional: frozenset[tuple[str, str]] = frozenset()
    for name in ROUTE_MODULES:
        module = importlib.import_module(name)
        area = app if name == __name__ else module.app
        combined.include_router(area.area_router)
        dialects.update(dict.fromkeys(_route_operations(area.area_router), area.dialect))
        bodies.update(getattr(module, "OPENAPI_BODIES", {}))
        queries.update(getattr(module, "OPENAPI_QUERIES", {}))
        optional |= getattr(module, "OPENAPI_OPTIONAL_BODIES", frozenset())
    generated = combined.get_openapi_json_schema(
        title=TITLE,
        version=VERSION,
        description="DORA metrics and deployment insights. Dialects: native, Datadog, DX, GitHub, Orlo, "
        "Octopus Insights, PostHog insights. Authenticate with `Authorization: Bearer <key>` (or `X-Api-Key`, "
        "`DD-API-KEY`, HTTP Basic with the key as the password; Orlo routes also take `X-Auth-Token`).",
    )
    return json.dumps(_document(json.loads(generated), dialects, bodies, queries, optional), separators=(",", ":"))


@router.get("/openapi.json", summary="OpenAPI document", tags=["Meta"], include_in_schema=False)
def _openapi() -> Response[Any]:
    return Response(status_code=200, content_type=JSON, body=openapi_document())


openapi = entry(app, ErrorDialect.NATIVE, None)
