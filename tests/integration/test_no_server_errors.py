"""No client input produces a 5xx, on any route of template.yaml (API.md "Errors")."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ADMIN_KEY, Api
from tests.support.template import http_routes

ROUTES = sorted(http_routes())
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
