"""Keys, scopes, revocation and tenancy (API.md "Authentication and tenancy")."""

from __future__ import annotations

import base64
import re

import pytest

from tests.conftest import ADMIN_KEY, Api
from tests.support.template import http_routes

DEPLOYMENTS = "/api/{spaceId}/deployments"
GOOD = {"project": "shop", "environment": "production", "finished_at": "2024-03-01T12:00:00Z"}


def _key(api: Api, space_id: str, scopes: list[str], key: str = ADMIN_KEY) -> dict:
    created = api.call(
        "POST",
        "/api/{spaceId}/apikeys",
        path_params={"spaceId": space_id},
        body={"name": "k", "scopes": scopes},
        key=key,
    )
    assert created.status == 201, created.body
    return created.body


def _new_space(api: Api, name: str = "Other") -> str:
    created = api.call("POST", "/api/spaces", body={"name": name}, key=ADMIN_KEY)
    assert created.status == 201, created.body
    return created.body["id"]


def test_key_is_shown_once_and_listed_without_it(api: Api) -> None:
    created = _key(api, "Spaces-1", ["deployments:read"])
    assert created["key"].startswith("dora_") and len(created["key"]) > 40
    listed = api.call("GET", "/api/{spaceId}/apikeys", path_params={"spaceId": "Spaces-1"}, key=ADMIN_KEY).body
    assert created["id"] in [k["id"] for k in listed["items"]]
    assert all(k.get("key") is None for k in listed["items"])


def test_spaces_get_sequential_ids(api: Api) -> None:
    assert re.fullmatch(r"Spaces-\d+", _new_space(api))
    assert _new_space(api, "Third") != _new_space(api, "Fourth")


@pytest.mark.parametrize(
    "headers",
    [
        lambda k: {"Authorization": f"Bearer {k}"},
        lambda k: {"X-Api-Key": k},
        lambda k: {"DD-API-KEY": k},
        lambda k: {"Authorization": "Basic " + base64.b64encode(f"orlo:{k}".encode()).decode()},
    ],
)
def test_every_documented_key_header_is_accepted(api: Api, headers: object) -> None:
    key = _key(api, "Spaces-1", ["deployments:read"])["key"]
    result = api.call("GET", DEPLOYMENTS, path_params={"spaceId": "Spaces-1"}, headers=headers(key))  # type: ignore[operator]
    assert result.status == 200


def test_missing_and_invalid_keys_are_401(api: Api) -> None:
    assert api.call("GET", DEPLOYMENTS, path_params={"spaceId": "Spaces-1"}).status == 401
    assert api.call("GET", DEPLOYMENTS, path_params={"spaceId": "Spaces-1"}, key="nope").status == 401
    bad_basic = {"Authorization": "Basic !!!"}
    assert api.call("GET", DEPLOYMENTS, path_params={"spaceId": "Spaces-1"}, headers=bad_basic).status == 401


def test_a_key_sent_without_its_scheme_is_a_401_saying_so_without_echoing_it(api: Api) -> None:
    """``Authorization: <key>`` (no ``Bearer``): the 401 says the header names no scheme, and never
    repeats what was sent (it is a key)."""
    sent = api.call("GET", DEPLOYMENTS, path_params={"spaceId": "Spaces-1"}, headers={"Authorization": ADMIN_KEY})
    assert sent.status == 401, sent.body
    assert "names no Bearer or Basic scheme" in sent.body["message"], sent.body
    assert ADMIN_KEY not in str(sent.body)
    empty = api.call("GET", DEPLOYMENTS, path_params={"spaceId": "Spaces-1"}, headers={"Authorization": "Bearer "})
    assert empty.status == 401, empty.body
    assert "credentials are empty" in empty.body["message"], empty.body  # an unset $KEY in a CI step


def test_missing_scope_is_403(api: Api) -> None:
    reader = _key(api, "Spaces-1", ["deployments:read"])["key"]
    result = api.call("POST", DEPLOYMENTS, path_params={"spaceId": "Spaces-1"}, body=GOOD, key=reader)
    assert result.status == 403
    assert "deployments:write" in result.body["message"]


def test_revoked_key_is_refused_at_once(api: Api) -> None:
    created = _key(api, "Spaces-1", ["deployments:read"])
    assert api.call("GET", DEPLOYMENTS, path_params={"spaceId": "Spaces-1"}, key=created["key"]).status == 200
    revoked = api.call(
        "DELETE",
        "/api/{spaceId}/apikeys/{keyId}",
        path_params={"spaceId": "Spaces-1", "keyId": created["id"]},
        key=ADMIN_KEY,
    )
    assert revoked.status == 204
    assert api.call("GET", DEPLOYMENTS, path_params={"spaceId": "Spaces-1"}, key=created["key"]).status == 401
    again = api.call(
        "DELETE",
        "/api/{spaceId}/apikeys/{keyId}",
        path_params={"spaceId": "Spaces-1", "keyId": created["id"]},
        key=ADMIN_KEY,
    )
    assert again.status == 404


def test_unknown_scopes_are_400_and_only_admins_create_admin_keys(api: Api) -> None:
    result = api.call(
        "POST",
        "/api/{spaceId}/apikeys",
        path_params={"spaceId": "Spaces-1"},
        body={"name": "k", "scopes": ["root"]},
        key=ADMIN_KEY,
    )
    assert result.status == 400
    writer = _key(api, "Spaces-1", ["deployments:write"])["key"]
    denied = api.call(
        "POST",
        "/api/{spaceId}/apikeys",
        path_params={"spaceId": "Spaces-1"},
        body={"name": "k", "scopes": ["admin"]},
        key=writer,
    )
    assert denied.status == 403


def test_admin_key_administers_other_spaces_but_acts_only_in_its_own(api: Api) -> None:
    other = _new_space(api)
    other_key = _key(api, other, ["deployments:write", "deployments:read"])["key"]
    assert api.call("POST", DEPLOYMENTS, path_params={"spaceId": other}, body=GOOD, key=other_key).status == 201
    # The operator's admin key cannot read or write deployments of another space.
    assert api.call("GET", DEPLOYMENTS, path_params={"spaceId": other}, key=ADMIN_KEY).status == 404
    assert api.call("POST", DEPLOYMENTS, path_params={"spaceId": other}, body=GOOD, key=ADMIN_KEY).status == 404
    secret = api.call(
        "PUT",
        "/api/{spaceId}/webhooks/github",
        path_params={"spaceId": other},
        body={"secret": "s3cret-value"},
        key=ADMIN_KEY,
    )
    assert secret.status == 200 and secret.body == {"space_id": other, "configured": True}
    missing = api.call(
        "PUT",
        "/api/{spaceId}/webhooks/github",
        path_params={"spaceId": "Spaces-99"},
        body={"secret": "s3cret-value"},
        key=ADMIN_KEY,
    )
    assert missing.status == 404


def test_a_key_of_one_space_gets_404_on_every_route_of_another(api: Api) -> None:
    other = _new_space(api)
    outsider = _key(api, other, ["admin"])["key"]  # even with every scope of its own space
    outsider_non_admin = _key(api, other, ["deployments:read", "deployments:write"])["key"]
    # The GitHub webhook takes no key: it answers 401 for any space it cannot verify (API.md).
    routes = [(m, p) for (m, p) in http_routes() if "{spaceId}" in p and not p.startswith("/webhooks/")]
    assert len(routes) >= 10
    for method, route in routes:
        params = dict.fromkeys(re.findall(r"{(\w+)}", route), "x") | {"spaceId": "Spaces-1"}
        # Admin routes of a space (keys, webhook secrets, recompute health, settings) serve any space to an admin key.
        admin_route = any(part in route for part in ("apikeys", "webhooks", "/health", "/settings"))
        for key in (outsider_non_admin,) + ((outsider,) if not admin_route else ()):
            result = api.call(method, route, path_params=params, body=GOOD, key=key)
            assert result.status == 404, (method, route, result.body)
    # ...and nothing of Spaces-1 was written by those calls.
    assert api.call("GET", DEPLOYMENTS, path_params={"spaceId": "Spaces-1"}, key=ADMIN_KEY).body["items"] == []
