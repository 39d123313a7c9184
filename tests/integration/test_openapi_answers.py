"""``GET /openapi.json`` describes what the routes really answer.

A user generates a client from the document and relies on it: every status a route answers for ordinary
requests must be documented for that route (with the body shape it really sends), real bodies must validate
against the documented schemas, and the parameters, request bodies and ways to authenticate a route takes
must be in the document. Every call goes through the template's handler with the real API Gateway event.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import jsonschema
import pytest

from dora_insights.handlers import meta
from tests.conftest import ADMIN_KEY, Api, HttpResult
from tests.support.events import load_event
from tests.support.fixtures import GITLAB_TOKEN, OTHER_SPACE

SP = {"spaceId": "Spaces-1"}
DEPLOYMENTS = "/api/{spaceId}/deployments"
ONE_DEPLOYMENT = DEPLOYMENTS + "/{deploymentId}"
FAILURES = "/api/{spaceId}/failures"
REPORTS = "/api/{spaceId}/insights/reports"
INSIGHTS = "/api/projects/{spaceId}/insights"
ONE_INSIGHT = INSIGHTS + "/{insightId}"
DESTINATIONS = "/api/{spaceId}/alert-destinations"
DD = {"DD-API-KEY": ADMIN_KEY}
SHA = "66adc9350f2cc9b250b69abddab733dd55e1a588"
DATADOG_EVENT = {
    "data": {
        "attributes": {
            "service": "shopist",
            "env": "prod",
            "version": "v1",
            "started_at": 1709289990,
            "finished_at": 1709290000,
            "git": {"commit_sha": SHA, "repository_url": "https://github.com/o/r"},
        }
    }
}
PD_SECRET = "pd-signing-secret-0123456789abcdef"
GITHUB_SECRET = "s" * 24


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Share passwords hashed at a low scrypt cost (tests/integration/test_share_logins.py checks the real one)."""
    from dora_insights.logic import insights

    monkeypatch.setattr(insights, "SCRYPT_COST", insights.ScryptCost(n=2**14, r=8, p=1))


# --- the document ------------------------------------------------------------------------------------


@cache
def _document() -> dict[str, Any]:
    return json.loads(meta.openapi_document())  # type: ignore[no-any-return]


def _operation(method: str, route: str) -> dict[str, Any]:
    return _document()["paths"][route][method.lower()]  # type: ignore[no-any-return]


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A JSON Schema 2020-12 validator (OpenAPI 3.1's) whose ``#/components/...`` refs resolve in the document."""
    return jsonschema.Draft202012Validator({**schema, "components": _document()["components"]})


def assert_documented(method: str, route: str, result: HttpResult) -> None:
    """The answer's status is documented for the operation, and its body matches the documented content."""
    responses = _operation(method, route)["responses"]
    status = str(result.status)
    assert status in responses, (
        f"{method} {route} answered {status}, documented only {sorted(responses)}: {str(result.body)[:300]}"
    )
    content = responses[status].get("content")
    if not content:
        assert result.body in (None, ""), (method, route, status, result.body)
        return
    schema = content.get("application/json", {}).get("schema")
    assert schema is not None, (method, route, status, sorted(content))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in _validator(schema).iter_errors(result.body)]
    assert not errors, (method, route, status, errors[:5])


# --- setup through the routes ------------------------------------------------------------------------


def _call(api: Api, method: str, route: str, **kwargs: Any) -> HttpResult:
    kwargs.setdefault("key", ADMIN_KEY)
    return api.call(method, route, **kwargs)


def _deployment(api: Api, **fields: Any) -> dict[str, Any]:
    body = {"project": "shop", "environment": "production", "finished_at": "2024-03-01T11:00:00Z", **fields}
    made = _call(api, "POST", DEPLOYMENTS, path_params=SP, body=body)
    assert made.status in (200, 201), made.body
    return made.body  # type: ignore[no-any-return]


def _report(api: Api) -> str:
    made = _call(api, "POST", REPORTS, path_params=SP, body={"Name": "Delivery"})
    assert made.status in (200, 201), made.body
    return str(made.body["Id"])


def _insight(api: Api) -> str:
    body = {"name": "Lead", "query": {"kind": "DoraMetricsQuery", "reportId": _report(api), "metric": "lead_time"}}
    made = _call(api, "POST", INSIGHTS, path_params=SP, body=body)
    assert made.status in (200, 201), made.body
    return str(made.body["id"])


def _threshold(api: Api, insight_id: str) -> str:
    body = {"name": "t", "condition": {"bounds": {"upper": 1}}, "calculation_interval": "hourly"}
    made = _call(api, "POST", ONE_INSIGHT + "/thresholds", path_params={**SP, "insightId": insight_id}, body=body)
    assert made.status in (200, 201), made.body
    return str(made.body["id"])


def _destination(api: Api) -> str:
    body = {"name": "hook", "kind": "webhook", "url": "https://alerts.example.com/hook"}
    made = _call(api, "POST", DESTINATIONS, path_params=SP, body=body)
    assert made.status in (200, 201), made.body
    return str(made.body["id"])


def _share_password(api: Api, insight_id: str) -> str:
    route = ONE_INSIGHT + "/sharing/passwords"
    made = _call(
        api, "POST", route, path_params={**SP, "insightId": insight_id}, body={"raw_password": "correct horse"}
    )
    assert made.status in (200, 201), made.body
    return str(made.body["id"])


Case = Callable[[Api], tuple[str, str, HttpResult]]


def _create_deployment(api: Api) -> tuple[str, str, HttpResult]:
    body = {"project": "shop", "environment": "production", "finished_at": "2024-03-01T11:00:00Z"}
    return "POST", DEPLOYMENTS, _call(api, "POST", DEPLOYMENTS, path_params=SP, body=body)


def _create_failure(api: Api) -> tuple[str, str, HttpResult]:
    body = {"project": "shop", "environment": "production", "started_at": "2024-03-01T11:00:00Z"}
    return "POST", FAILURES, _call(api, "POST", FAILURES, path_params=SP, body=body)


def _create_space(api: Api) -> tuple[str, str, HttpResult]:
    return "POST", "/api/spaces", _call(api, "POST", "/api/spaces", body={"name": "Team B"})


def _create_api_key(api: Api) -> tuple[str, str, HttpResult]:
    route = "/api/{spaceId}/apikeys"
    body = {"name": "ci", "scopes": ["deployments:write"]}
    return "POST", route, _call(api, "POST", route, path_params=SP, body=body)


def _create_destination(api: Api) -> tuple[str, str, HttpResult]:
    body = {"name": "hook", "kind": "webhook", "url": "https://alerts.example.com/hook"}
    return "POST", DESTINATIONS, _call(api, "POST", DESTINATIONS, path_params=SP, body=body)


def _create_report(api: Api) -> tuple[str, str, HttpResult]:
    return "POST", REPORTS, _call(api, "POST", REPORTS, path_params=SP, body={"Name": "Delivery"})


def _create_share_password(api: Api) -> tuple[str, str, HttpResult]:
    route = ONE_INSIGHT + "/sharing/passwords"
    path = {**SP, "insightId": _insight(api)}
    return "POST", route, _call(api, "POST", route, path_params=path, body={"raw_password": "correct horse"})


def _create_threshold(api: Api) -> tuple[str, str, HttpResult]:
    route = ONE_INSIGHT + "/thresholds"
    body = {"name": "t", "condition": {"bounds": {"upper": 1}}, "calculation_interval": "hourly"}
    return "POST", route, _call(api, "POST", route, path_params={**SP, "insightId": _insight(api)}, body=body)


def _delete_deployment(api: Api) -> tuple[str, str, HttpResult]:
    path = {**SP, "deploymentId": _deployment(api)["id"]}
    return "DELETE", ONE_DEPLOYMENT, _call(api, "DELETE", ONE_DEPLOYMENT, path_params=path)


def _delete_failure(api: Api) -> tuple[str, str, HttpResult]:
    _, _, made = _create_failure(api)
    route = FAILURES + "/{failureId}"
    return "DELETE", route, _call(api, "DELETE", route, path_params={**SP, "failureId": made.body["id"]})


def _delete_api_key(api: Api) -> tuple[str, str, HttpResult]:
    _, _, made = _create_api_key(api)
    route = "/api/{spaceId}/apikeys/{keyId}"
    return "DELETE", route, _call(api, "DELETE", route, path_params={**SP, "keyId": made.body["id"]})


def _delete_destination(api: Api) -> tuple[str, str, HttpResult]:
    route = DESTINATIONS + "/{destinationId}"
    return "DELETE", route, _call(api, "DELETE", route, path_params={**SP, "destinationId": _destination(api)})


def _delete_report(api: Api) -> tuple[str, str, HttpResult]:
    route = REPORTS + "/{reportId}"
    return "DELETE", route, _call(api, "DELETE", route, path_params={**SP, "reportId": _report(api)})


def _delete_share_password(api: Api) -> tuple[str, str, HttpResult]:
    insight_id = _insight(api)
    route = ONE_INSIGHT + "/sharing/passwords/{passwordId}"
    path = {**SP, "insightId": insight_id, "passwordId": _share_password(api, insight_id)}
    return "DELETE", route, _call(api, "DELETE", route, path_params=path)


def _delete_threshold(api: Api) -> tuple[str, str, HttpResult]:
    insight_id = _insight(api)
    route = ONE_INSIGHT + "/thresholds/{thresholdId}"
    path = {**SP, "insightId": insight_id, "thresholdId": _threshold(api, insight_id)}
    return "DELETE", route, _call(api, "DELETE", route, path_params=path)


# --- statuses besides 200: creates' 201, deletes' 204, Orlo's 409, PostHog's 405 ---------------------


@pytest.mark.parametrize(
    "case",
    [
        _create_deployment,
        _create_failure,
        _create_space,
        _create_api_key,
        _create_destination,
        _create_report,
        _create_share_password,
        _create_threshold,
    ],
    ids=lambda case: case.__name__.lstrip("_"),
)
def test_a_create_that_answers_201_documents_201(api: Api, case: Case) -> None:
    method, route, result = case(api)
    assert result.status == 201, result.body  # what API.md and the route's own tests say
    assert_documented(method, route, result)


@pytest.mark.parametrize(
    "case",
    [
        _delete_deployment,
        _delete_failure,
        _delete_api_key,
        _delete_destination,
        _delete_report,
        _delete_share_password,
        _delete_threshold,
    ],
    ids=lambda case: case.__name__.lstrip("_"),
)
def test_a_delete_that_answers_204_documents_204_and_no_body(api: Api, case: Case) -> None:
    method, route, result = case(api)
    assert result.status == 204, result.body
    assert_documented(method, route, result)
    assert "200" not in _operation(method, route)["responses"], "a 200 the route never answers"


def _orlo_basic() -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"orlo:{ADMIN_KEY}".encode()).decode()}


def _orlo(api: Api, method: str, route: str, **kwargs: Any) -> HttpResult:
    return api.call(method, route, headers=_orlo_basic(), **kwargs)


def test_orlo_workflow_steps_document_their_204(api: Api) -> None:
    release = _orlo(api, "POST", "/orlo/releases", body={"user": "u", "team": "t", "platforms": ["p"]})
    assert release.status == 200, release.body
    rid = release.body["id"]
    package = _orlo(
        api, "POST", "/orlo/releases/{rid}/packages", path_params={"rid": rid}, body={"name": "web", "version": "1"}
    )
    assert package.status == 200, package.body
    both = {"rid": rid, "pid": package.body["id"]}
    steps = [
        ("/orlo/releases/{rid}/packages/{pid}/start", both, None),
        ("/orlo/releases/{rid}/packages/{pid}/stop", both, {"success": True}),
        ("/orlo/releases/{rid}/notes", {"rid": rid}, {"text": "shipped"}),
        ("/orlo/releases/{rid}/metadata", {"rid": rid}, {"ticket": "T-1"}),
        ("/orlo/releases/{rid}/stop", {"rid": rid}, None),
    ]
    for route, params, body in steps:
        result = _orlo(api, "POST", route, path_params=params, body=body)
        assert result.status == 204, (route, result.body)  # API.md "-> 204, empty"
        assert_documented("POST", route, result)


def test_orlo_stats_by_team_documents_the_409_it_answers(api: Api) -> None:
    teamless = _orlo(api, "POST", "/orlo/releases", body={"user": "u", "platforms": ["p"]})
    assert teamless.status == 200, teamless.body
    result = _orlo(api, "GET", "/orlo/stats/{field}", path_params={"field": "team"})
    assert result.status == 409, result.body
    assert_documented("GET", "/orlo/stats/{field}", result)


def test_a_posthog_insight_delete_is_documented_as_the_405_it_always_answers(api: Api) -> None:
    route = ONE_INSIGHT
    result = _call(api, "DELETE", route, path_params={**SP, "insightId": _insight(api)})
    assert result.status == 405, result.body  # API.md: "DELETE 405", as PostHog
    assert_documented("DELETE", route, result)
    successes = [status for status in _operation("DELETE", route)["responses"] if status.startswith("2")]
    assert not successes, f"a generated client expects {successes}, which the route never answers"


# --- the webhooks' own answers -----------------------------------------------------------------------


def _pagerduty_config(api: Api) -> None:
    body = {"secret": PD_SECRET, "services": {"Checkout API": {"project": "checkout", "environment": "production"}}}
    configured = _call(api, "PUT", "/api/{spaceId}/webhooks/pagerduty", path_params=SP, body=body)
    assert configured.status == 200, configured.body


def _pagerduty(api: Api, payload: dict[str, Any]) -> HttpResult:
    from dora_insights.dialects.incidents import pagerduty_signature

    raw = json.dumps(payload)
    headers = {"x-pagerduty-signature": pagerduty_signature(PD_SECRET, raw.encode())}
    return api.call("POST", "/webhooks/pagerduty/{spaceId}", path_params=SP, raw_body=raw, headers=headers)


def test_a_pagerduty_incident_opened_documents_its_201(api: Api) -> None:
    _pagerduty_config(api)
    result = _pagerduty(api, load_event("pagerduty_incident_triggered.json"))
    assert result.status == 201, result.body  # API.md: "Open: ... 201"
    assert_documented("POST", "/webhooks/pagerduty/{spaceId}", result)


def test_a_pagerduty_event_of_another_type_documents_its_202(api: Api) -> None:
    _pagerduty_config(api)
    result = _pagerduty(api, load_event("pagerduty_incident_acknowledged.json"))
    assert result.status == 202, result.body  # API.md: "other event types 202"
    assert_documented("POST", "/webhooks/pagerduty/{spaceId}", result)


def _github(api: Api, event: str, payload: dict[str, Any], secret: str = GITHUB_SECRET) -> HttpResult:
    from dora_insights.dialects.github import sign
    from dora_insights.logic import spaces

    put = _call(api, "PUT", "/api/{spaceId}/webhooks/github", path_params=SP, body={"secret": GITHUB_SECRET})
    assert put.status == 200, put.body
    spaces.clear_cache()
    raw = json.dumps(payload)
    headers = {"x-github-event": event, "x-github-delivery": "d-1", "x-hub-signature-256": sign(secret, raw.encode())}
    return api.call("POST", "/webhooks/github/{spaceId}", path_params=SP, raw_body=raw, headers=headers)


def test_a_github_event_that_is_ignored_documents_its_202(api: Api) -> None:
    result = _github(api, "issues", {"action": "opened"})
    assert result.status == 202, result.body  # API.md: "Unknown events: 202 and ignored"
    assert_documented("POST", "/webhooks/github/{spaceId}", result)


@pytest.mark.parametrize(
    ("route", "headers"),
    [
        ("/webhooks/github/{spaceId}", {"x-github-event": "ping", "x-hub-signature-256": "sha256=" + "0" * 64}),
        ("/webhooks/gitlab/{spaceId}", {"x-gitlab-event": "Push Hook", "x-gitlab-token": GITLAB_TOKEN + "x"}),
        ("/webhooks/pagerduty/{spaceId}", {"x-pagerduty-signature": "v1=" + "0" * 64}),
        ("/webhooks/opsgenie/{spaceId}", {"x-opsgenie-secret": "not-the-secret"}),
    ],
    ids=["github", "gitlab", "pagerduty", "opsgenie"],
)
def test_a_webhook_documents_the_401_of_a_bad_signature(
    api: Api, gitlab_hooked: None, route: str, headers: dict[str, str]
) -> None:
    result = api.call("POST", route, path_params=SP, raw_body='{"zen": "x"}', headers=headers)
    assert result.status == 401, result.body  # API.md: "Bad signature: 401", "Wrong or missing token ... 401"
    assert_documented("POST", route, result)


# --- request bodies, parameters and credentials the routes read themselves ---------------------------


@pytest.mark.parametrize(
    ("route", "body"),
    [
        (
            "/api/deployments.create",
            {
                "reference_id": "ref-1",
                "deployed_at": 1709290000,
                "service": "svc",
                "commit_sha": "d1a34f0",
                "repository": "o/r",
            },
        ),
        ("/api/deployments.upsert", {"reference_id": "ref-2", "deployed_at": 1709290000, "service": "svc"}),
        ("/api/deployments.setPullServices", {"repository": "o/r", "pull_number": 1, "services": ["svc"]}),
    ],
    ids=["create", "upsert", "setPullServices"],
)
def test_a_dx_route_documents_the_json_body_it_takes(api: Api, route: str, body: dict[str, Any]) -> None:
    result = _call(api, "POST", route, body=body, key=None, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert result.status == 200, result.body
    request = _operation("POST", route).get("requestBody")
    assert request is not None, f"POST {route}: no requestBody in the document; a generated client sends none"
    schema = request["content"]["application/json"]["schema"]
    errors = [e.message for e in _validator(schema).iter_errors(body)]
    assert not errors, errors


def test_the_dx_backfill_documents_its_csv_body(api: Api) -> None:
    route = "/api/deployments.backfill"
    csv = "reference_id,deployed_at,service\nb-1,1709290000,svc\n"
    result = _call(api, "POST", route, raw_body=csv, headers={"content-type": "text/csv"})
    assert result.status == 200, result.body
    assert result.body["created"] == 1
    request = _operation("POST", route).get("requestBody")
    assert request is not None and "text/csv" in request["content"], "API.md: CSV body (`text/csv`)"


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/orlo/releases", {"user": "u", "team": "t", "platforms": ["p"]}),
        ("/orlo/releases/{rid}/packages", {"name": "web", "version": "1"}),
        ("/orlo/releases/{rid}/notes", {"text": "shipped"}),
        ("/orlo/releases/{rid}/metadata", {"ticket": "T-1"}),
    ],
    ids=["release", "package", "notes", "metadata"],
)
def test_an_orlo_write_documents_the_json_body_it_takes(api: Api, route: str, body: dict[str, Any]) -> None:
    params = None
    if "{rid}" in route:
        made = _orlo(api, "POST", "/orlo/releases", body={"user": "u", "team": "t", "platforms": ["p"]})
        params = {"rid": made.body["id"]}
    result = _orlo(api, "POST", route, path_params=params, body=body)
    assert result.status in (200, 204), result.body
    request = _operation("POST", route).get("requestBody")
    assert request is not None, f"POST {route}: no requestBody in the document; a generated client sends none"
    schema = request["content"]["application/json"]["schema"]
    assert not [e.message for e in _validator(schema).iter_errors(body)]


def test_orlo_lists_document_the_filters_they_take(api: Api) -> None:
    made = _orlo(api, "POST", "/orlo/releases", body={"user": "alice", "team": "t", "platforms": ["p"]})
    assert made.status == 200, made.body
    found = _orlo(api, "GET", "/orlo/releases", query={"user": "alice", "limit": "10"})
    assert found.status == 200, found.body
    assert [r["id"] for r in found.body["releases"]] == [made.body["id"]]
    assert _orlo(api, "GET", "/orlo/releases", query={"colour": "blue"}).status == 400  # names are checked
    documented = {p["name"] for p in _operation("GET", "/orlo/releases").get("parameters", []) if p["in"] == "query"}
    assert {"user", "team", "limit", "offset"} <= documented, documented


def test_orlo_routes_document_the_x_auth_token_they_accept(api: Api) -> None:
    token = _orlo(api, "GET", "/orlo/token")
    assert token.status == 200, token.body
    listed = api.call("GET", "/orlo/version", headers={"X-Auth-Token": token.body["token"]})
    assert listed.status == 200, listed.body  # API.md: "accepted as X-Auth-Token for 1 hour"
    schemes = _document()["components"]["securitySchemes"]
    by_header = {
        name
        for name, scheme in schemes.items()
        if scheme.get("type") == "apiKey" and scheme.get("in") == "header" and scheme["name"].lower() == "x-auth-token"
    }
    assert by_header, "no security scheme for X-Auth-Token"
    security = _operation("GET", "/orlo/version")["security"]
    assert any(set(requirement) <= by_header for requirement in security), security


def test_the_summary_documents_the_shape_of_its_answer(api: Api) -> None:
    result = _call(api, "GET", "/api/{spaceId}/summary", path_params=SP)
    assert result.status == 200, result.body
    assert {"as_of", "pending", "environment_scope", "deployment_frequency"} <= set(result.body)
    schema = _operation("GET", "/api/{spaceId}/summary")["responses"]["200"]["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = _document()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    documented = set(schema.get("properties", {}))
    assert {"as_of", "pending", "environment_scope", "deployment_frequency"} <= documented, schema


# --- the success models, errors and credentials the routes share -------------------------------------


def test_a_posthog_insight_create_answers_the_documented_201(api: Api) -> None:
    body = {"name": "Lead", "query": {"kind": "DoraMetricsQuery", "reportId": _report(api), "metric": "lead_time"}}
    result = _call(api, "POST", INSIGHTS, path_params=SP, body=body)
    assert result.status == 201, result.body
    assert_documented("POST", INSIGHTS, result)


def test_datadog_writes_answer_what_the_document_says(api: Api) -> None:
    created = api.call("POST", "/api/v2/dora/deployment", body=DATADOG_EVENT, headers=DD)
    assert created.status == 200, created.body
    assert_documented("POST", "/api/v2/dora/deployment", created)
    deployment_id = created.body["data"]["id"]
    one = {"deployment_id": deployment_id}
    fetched = api.call("GET", "/api/v2/dora/deployments/{deployment_id}", path_params=one, headers=DD)
    assert fetched.status == 200
    assert_documented("GET", "/api/v2/dora/deployments/{deployment_id}", fetched)
    patch = {
        "data": {"id": deployment_id, "type": "dora_deployment_patch_request", "attributes": {"change_failure": True}}
    }
    patched = api.call("PATCH", "/api/v2/dora/deployments/{deployment_id}", path_params=one, body=patch, headers=DD)
    assert patched.status == 202
    assert_documented("PATCH", "/api/v2/dora/deployments/{deployment_id}", patched)
    removed = api.call("DELETE", "/api/v2/dora/deployment/{deployment_id}", path_params=one, headers=DD)
    assert removed.status == 202
    assert_documented("DELETE", "/api/v2/dora/deployment/{deployment_id}", removed)


def test_a_stale_revision_is_the_documented_412_on_settings_and_corrections(api: Api) -> None:
    settings = _call(
        api,
        "PATCH",
        "/api/{spaceId}/settings",
        path_params=SP,
        body={"failure_window_hours": 3},
        headers={"If-Match": '"5"'},
    )
    assert settings.status == 412, settings.body
    assert_documented("PATCH", "/api/{spaceId}/settings", settings)
    path = {**SP, "deploymentId": _deployment(api)["id"]}
    corrected = _call(api, "PATCH", ONE_DEPLOYMENT, path_params=path, body={"version": "2", "revision": 7})
    assert corrected.status == 412, corrected.body
    assert_documented("PATCH", ONE_DEPLOYMENT, corrected)


@pytest.mark.parametrize(
    ("method", "route", "kwargs"),
    [
        ("GET", DEPLOYMENTS, {"path_params": SP, "query": {"limit": "abc"}}),
        ("GET", DEPLOYMENTS, {"path_params": {"spaceId": OTHER_SPACE}}),
        ("GET", DEPLOYMENTS, {"path_params": SP, "key": "not-a-key"}),
        ("POST", "/api/v2/dora/deployment", {"body": {"data": {}}, "key": None, "headers": DD}),
        ("POST", "/api/v2/dora/deployment", {"body": DATADOG_EVENT, "key": None}),
        ("POST", "/api/deployments.create", {"raw_body": "not json"}),
        ("POST", "/api/deployments.create", {"body": {"service": "svc"}, "key": None}),
        ("GET", REPORTS, {"path_params": SP, "query": {"skip": "abc"}}),
        ("GET", REPORTS + "/{reportId}", {"path_params": {**SP, "reportId": "InsightsReports-9"}}),
        ("GET", INSIGHTS, {"path_params": SP, "query": {"limit": "abc"}}),
        ("GET", INSIGHTS, {"path_params": SP, "key": None}),
        ("GET", "/api/{spaceId}/dora/metrics", {"path_params": SP, "query": {"metric": "velocity"}}),
        ("GET", "/api/{spaceId}/dora/metrics", {"path_params": SP, "key": None}),
        ("GET", "/orlo/releases", {"query": {"colour": "blue"}}),
        ("POST", DEPLOYMENTS, {"path_params": SP, "raw_body": json.dumps({"project": "x" * (1 << 20)})}),
        (
            "POST",
            DEPLOYMENTS,
            {"path_params": SP, "raw_body": "{}", "headers": {"content-type": "multipart/form-data"}},
        ),
    ],
)
def test_refusals_are_documented_in_their_dialects_shape(api: Api, method: str, route: str, kwargs: Any) -> None:
    result = _call(api, method, route, **kwargs)
    assert 400 <= result.status < 500, result.body
    assert_documented(method, route, result)


def test_computed_reads_validate_against_their_documented_schemas(api: Api, lambda_context: Any) -> None:
    from tests.support.recompute import scheduled_run

    commit = {"sha": "a" * 40, "repository": "o/r", "timestamp": "2024-02-20T10:00:00Z", "branch": "main"}
    changes = _call(api, "POST", "/api/{spaceId}/changes", path_params=SP, body={"commits": [commit]})
    assert changes.status == 200, changes.body
    ids = [
        _deployment(
            api,
            state=state,
            started_at=f"2024-02-2{i}T09:00:00Z",
            finished_at=f"2024-02-2{i}T10:00:00Z",
            commit_sha=("a" if i == 0 else "b") * 40,  # the others wait for a commit never sent
            repository="o/r",
            version=f"1.{i}",
            tenant="acme",
        )["id"]
        for i, state in enumerate(["Success", "Failed", "Success", "TimedOut", "Canceled", "Executing", "Success"])
    ]
    failure = {"project": "shop", "environment": "production", "started_at": "2024-02-22T11:00:00Z"}
    assert _call(api, "POST", FAILURES, path_params=SP, body={**failure, "deployment_id": ids[2]}).status == 201
    scheduled_run(lambda_context)
    reads: list[tuple[str, dict[str, Any]]] = [
        (ONE_DEPLOYMENT, {"path_params": {**SP, "deploymentId": i}}) for i in ids
    ]
    reads += [(DEPLOYMENTS, {"path_params": SP}), (FAILURES, {"path_params": SP})]
    for metric in ("deployment_frequency", "lead_time_for_changes", "change_failure_rate", "time_to_restore_service"):
        for interval in ("daily", "monthly", "all"):
            query = {"metric": metric, "interval": interval, "start_date": "2024-02-15", "end_date": "2024-03-01"}
            reads.append(("/api/{spaceId}/dora/metrics", {"path_params": SP, "query": query}))
    report = {**SP, "reportId": _report(api)}
    for split in ("Project", "Environment", "Tenant"):
        query = {"timeRange": "LastQuarter", "split": split}
        reads.append((REPORTS + "/{reportId}/metrics", {"path_params": report, "query": query}))
    reads.append((REPORTS + "/{reportId}/deployments", {"path_params": report}))
    for route, kwargs in reads:
        result = _call(api, "GET", route, **kwargs)
        assert result.status == 200, (route, result.body)
        assert_documented("GET", route, result)
    listed = api.call(
        "POST",
        "/api/v2/dora/deployments",
        body={"data": {"type": "dora_deployments_list_request", "attributes": {"limit": 100}}},
        headers=DD,
    )
    assert listed.status == 200 and len(listed.body["data"]) == len(ids)
    assert_documented("POST", "/api/v2/dora/deployments", listed)


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {ADMIN_KEY}"},
        {"X-Api-Key": ADMIN_KEY},
        {"DD-API-KEY": ADMIN_KEY},
        {"Authorization": "Basic " + base64.b64encode(f"anyone:{ADMIN_KEY}".encode()).decode()},
    ],
    ids=["bearer", "apiKey", "datadogApiKey", "basic"],
)
def test_every_documented_security_scheme_authenticates(api: Api, headers: dict[str, str]) -> None:
    result = api.call("GET", DEPLOYMENTS, path_params=SP, headers=headers)
    assert result.status == 200, result.body
    assert_documented("GET", DEPLOYMENTS, result)
