"""No client input produces a 5xx, on any route of template.yaml (API.md "Errors")."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ADMIN_KEY, Api, HttpResult
from tests.support.template import handler_of, http_routes

ROUTES = sorted(http_routes())
SP = {"spaceId": "Spaces-1"}
GOOD_DEPLOYMENT = {"project": "shop", "environment": "production", "finished_at": "2024-03-01T12:00:00Z"}
BAD_BODIES: list[bytes | str] = [
    "{not json",
    "[]",
    '"a string"',
    "null",
    '{"a": {"b": {"c": [1, 2, {"d": null}]}}}',
    b"\xff\xfe\x00garbage",
    "{" + '"k": 1,' * 2000 + '"z": 0}',
    '{"name": 12, "query": [], "project": {}, "finished_at": "x", "deployments": "no"}',
]


def _params(route: str) -> dict[str, str]:
    return {name: "Spaces-1" if name == "spaceId" else "x%00" for name in re.findall(r"{(\w+)}", route)}


@pytest.mark.parametrize(("method", "route"), ROUTES)
def test_malformed_bodies_and_parameters_never_give_a_5xx(api: Api, method: str, route: str) -> None:
    for body in BAD_BODIES:
        result = api.call(method, route, path_params=_params(route), raw_body=body, key=ADMIN_KEY)
        assert result.status < 500, (method, route, body, result.body)
    odd_query = {
        "limit": "-1",
        "skip": "x",
        "take": "0",
        "cursor": "@@",
        "from": "never",
        "format": "pdf",
        "days": "1e9",
    }
    result = api.call(method, route, path_params=_params(route), query=odd_query, key=ADMIN_KEY)
    assert result.status < 500, (method, route, result.body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=12,
)
WRITE_ROUTES = [(m, r) for m, r in ROUTES if m in ("POST", "PUT", "PATCH")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(min_value=0, max_value=max(0, len(WRITE_ROUTES) - 1)), body=json_values)
def test_fuzzed_json_bodies_never_give_a_5xx(api: Api, index: int, body: object) -> None:
    method, route = WRITE_ROUTES[index]
    result = api.call(method, route, path_params=_params(route), body=body, key=ADMIN_KEY)
    assert result.status < 500, (method, route, body, result.body)


# --- the boundary's general checks, on every body route -------------------------------------
BODY_ROUTES = [(m, r) for m, r in ROUTES if m in ("POST", "PUT", "PATCH")]
# Webhooks parse their own bodies (API.md, GitHub webhooks): a number or nesting in a part of a payload no
# field reads costs no delivery, so the entry point's JSON check (the three tests below it) is not theirs.
WEBHOOK_ROUTES = [(m, r) for m, r in BODY_ROUTES if r.startswith("/webhooks/")]
JSON_CHECKED_ROUTES = [route for route in BODY_ROUTES if route not in WEBHOOK_ROUTES]
_DIALECT_OF_MODULE = {
    "datadog": "datadog",
    "dx": "dx",
    "insights": "posthog",
    "reports": "octopus",
    "catalogue": "octopus",
}


def _dialect(method: str, route: str) -> str:
    module = handler_of(http_routes()[(method, route)]).rsplit(".", 2)[-2]
    return _DIALECT_OF_MODULE.get(module, "native")


def assert_dialect_error(method: str, route: str, result: HttpResult, status: int, field: str | None = None) -> str:
    """``result`` is a ``status`` error in the route's dialect shape (API.md "Errors"); its text.

    ``field``: the offending field the error names (pointer, attr or message)."""
    assert result.status == status, (method, route, result.body)
    body = result.body
    dialect = _dialect(method, route)
    if dialect == "datadog":
        (error,) = body["errors"][:1]
        assert error["status"] == str(status) and error["title"] and error["detail"], body
        text = error["detail"] + " " + error.get("source", {}).get("pointer", "")
    elif dialect == "dx":
        assert body["ok"] is False and body["error"] and body["message"], body
        text = f"{body['error']} {body['message']}"
    elif dialect == "posthog":
        assert set(body) == {"type", "code", "detail", "attr"} and body["detail"], body
        text = f"{body['detail']} {body['attr']}"
    elif dialect == "octopus":
        assert body["ErrorMessage"] and body["Errors"], body
        text = body["ErrorMessage"] + " " + " ".join(body["Errors"])
    else:
        assert body["message"] and body["errors"], body
        text = body["message"] + " " + " ".join(body["errors"])
    if field is not None:
        assert field in text, (method, route, body)
    return text


@pytest.mark.parametrize(("method", "route"), JSON_CHECKED_ROUTES)
def test_deeply_nested_json_is_a_400_in_the_dialects_shape(api: Api, method: str, route: str) -> None:
    for depth in (65, 100_000):  # just over the limit; far beyond Python's recursion limit
        for raw in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
            result = api.call(method, route, path_params=_params(route), raw_body=raw, key=ADMIN_KEY)
            text = assert_dialect_error(method, route, result, 400)
            assert "nested deeper than 64 levels" in text, (method, route, result.body)


def test_json_nested_exactly_64_levels_is_accepted_and_65_is_not(api: Api) -> None:
    def event(extra_depth: int) -> str:  # data, attributes and the ignored attribute's arrays
        nested = "[" * extra_depth + "]" * extra_depth
        return (
            '{"data": {"attributes": {"service": "shop", "started_at": 1700000000, "finished_at": 1700000001,'
            f' "ignored": {nested}}}}}}}'
        )

    accepted = api.call("POST", "/api/v2/dora/deployment", raw_body=event(61), key=ADMIN_KEY)
    assert accepted.status == 200, accepted.body
    refused = api.call("POST", "/api/v2/dora/deployment", raw_body=event(62), key=ADMIN_KEY)
    assert_dialect_error("POST", "/api/v2/dora/deployment", refused, 400, "nested deeper than 64 levels")


UNSTORABLE_NUMBERS = ["1e300", "-1e-200", "1" * 40, "-" + "9" * 39, "NaN", "Infinity", "-Infinity", "1e400"]


@pytest.mark.parametrize(("method", "route"), JSON_CHECKED_ROUTES)
def test_numbers_dynamodb_cannot_hold_are_a_400_naming_the_field(api: Api, method: str, route: str) -> None:
    field = "/outer/value/1" if _dialect(method, route) == "datadog" else "outer.value[1]"
    for number in UNSTORABLE_NUMBERS:
        raw = '{"outer": {"value": [0, %s]}}' % number  # noqa: UP031 - a JSON literal, not a Python value
        result = api.call(method, route, path_params=_params(route), raw_body=raw, key=ADMIN_KEY)
        text = assert_dialect_error(method, route, result, 400, field)
        assert "not a number this service can store" in text, (number, result.body)


@pytest.mark.parametrize(("method", "route"), JSON_CHECKED_ROUTES)
def test_an_integer_longer_than_python_reads_is_a_400(api: Api, method: str, route: str) -> None:
    """An integer literal of over 4,300 digits: Python's int() refuses it with a ValueError that is no
    JSONDecodeError, which reached the resolver's own body parse as a 500 (a bulk review found it)."""
    raw = '{"outer": {"value": [0, %s]}}' % ("1" * 5000)
    result = api.call(method, route, path_params=_params(route), raw_body=raw, key=ADMIN_KEY)
    text = assert_dialect_error(method, route, result, 400)
    assert "number too long to read" in text, result.body


@pytest.mark.parametrize(("method", "route"), WEBHOOK_ROUTES)
def test_webhooks_answer_what_they_cannot_hold_with_a_4xx_never_a_5xx(api: Api, method: str, route: str) -> None:
    """Unsigned, each is refused before its body is read (401); the signed forms are in
    test_code_webhooks_hostile.py (a free-form part holding them is stored, nesting past what Python
    parses is a 400)."""
    bodies = [
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        '{"outer": {"value": [0, %s]}}' % ("1" * 5000),
        *('{"outer": {"value": [0, %s]}}' % number for number in UNSTORABLE_NUMBERS),  # noqa: UP031
    ]
    for raw in bodies:
        result = api.call(method, route, path_params=_params(route), raw_body=raw, key=ADMIN_KEY)
        assert 400 <= result.status < 500, (method, route, raw[:40], result.status, result.body)


def test_storable_extremes_are_accepted(api: Api) -> None:
    body = GOOD_DEPLOYMENT | {"metadata": {"big": 9.99e125, "small": 1e-130, "digits": int("9" * 38), "zero": 0.0}}
    result = api.call("POST", "/api/{spaceId}/deployments", path_params=SP, body=body, key=ADMIN_KEY)
    assert result.status == 201, result.body
    assert result.body["metadata"]["digits"] == int("9" * 38)


def test_unpaired_surrogate_escapes_are_a_400(api: Api) -> None:
    raw = '{"project": "shop\\ud800", "environment": "p", "finished_at": 1}'
    result = api.call("POST", "/api/{spaceId}/deployments", path_params=SP, raw_body=raw, key=ADMIN_KEY)
    assert_dialect_error("POST", "/api/{spaceId}/deployments", result, 400, "project")
    paired = api.call(
        "POST",
        "/api/{spaceId}/deployments",
        path_params=SP,
        raw_body=raw.replace("\\ud800", "\\ud83d\\ude00"),
        key=ADMIN_KEY,
    )
    assert paired.status == 201, paired.body
