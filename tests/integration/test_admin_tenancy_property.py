"""Administration and tenancy (spaces, API keys, scopes on every route, settings, catalogue, the admin
command) under randomized sequences against an oracle of who may do what, and hostile values. Written by a
read-only review; what it found is fixed: a key revoked by a concurrent request answered 500, sending back
the default benchmark moved the settings revision, and the admin command stored what the API refuses
(a key without scopes, a 3,000-character user, a blank default environment) and crashed on a malformed
space id."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, HttpResult
from tests.support.fixtures import OTHER_KEY, OTHER_SPACE
from tests.support.template import http_routes

SP1 = "Spaces-1"
KEYS = "/api/{spaceId}/apikeys"
KEY = "/api/{spaceId}/apikeys/{keyId}"
SETTINGS = "/api/{spaceId}/settings"
DEPLOYMENTS = "/api/{spaceId}/deployments"
GOOD = {"project": "shop", "environment": "production", "finished_at": "2024-03-01T12:00:00Z"}
ALL = [
    "deployments:write",
    "deployments:read",
    "changes:write",
    "reports:read",
    "reports:write",
    "insight:read",
    "insight:write",
    "sharing_configuration:read",
    "sharing_configuration:write",
    "alert:read",
    "alert:write",
    "activity_log:read",
]


# ----------------------------------------------------------------------------------------- helpers
def _create_key(api: Api, space: str, scopes: list[str], key: str = ADMIN_KEY, **extra: Any) -> HttpResult:
    return api.call(
        "POST", KEYS, path_params={"spaceId": space}, body={"name": "k", "scopes": scopes, **extra}, key=key
    )


def _key(api: Api, space: str, scopes: list[str], key: str = ADMIN_KEY, **extra: Any) -> dict[str, Any]:
    created = _create_key(api, space, scopes, key, **extra)
    assert created.status == 201, created.body
    return created.body  # type: ignore[no-any-return]


def _entry_config(method: str, route: str) -> tuple[Any, Any]:
    """The (scope, dialect) the route's entry point was built with (read from its closure)."""
    from tests.support import lambdas

    fn = lambdas.handler(http_routes()[(method, route)])
    seen = set()
    while fn is not None and id(fn) not in seen:
        seen.add(id(fn))
        cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False))
        if "scope" in cells and "dialect" in cells:
            return cells["scope"].cell_contents, cells["dialect"].cell_contents
        fn = getattr(fn, "__wrapped__", None)
    raise AssertionError(f"no entry config for {method} {route}")


def _shape_ok(dialect: str, body: Any, status: int) -> bool:
    if not isinstance(body, dict):
        return False
    if dialect in ("native", "orlo"):
        return isinstance(body.get("message"), str) and isinstance(body.get("errors"), list)
    if dialect == "datadog":
        return isinstance(body.get("errors"), list) and body["errors"][0].get("status") == str(status)
    if dialect == "dx":
        return body.get("ok") is False and isinstance(body.get("error"), str)
    if dialect == "octopus":
        return isinstance(body.get("ErrorMessage"), str) and isinstance(body.get("Errors"), list)
    if dialect == "posthog":
        return {"type", "code", "detail", "attr"} <= set(body)
    if dialect == "gitlab":
        return set(body) == {"message"}
    return False


def _params(route: str, space: str) -> dict[str, str]:
    params = dict.fromkeys(re.findall(r"{(\w+)}", route), "x")
    if "spaceId" in params:
        params["spaceId"] = space
    for name in ("insightId",):
        if name in params:
            params[name] = "1"
    return params


# ------------------------------------------------------------------------- scopes on every route
def test_every_scoped_route_refuses_a_key_missing_its_scope_with_403_in_its_dialect(api: Api) -> None:
    """API.md: "Missing scope: 403", every error in the route's dialect shape. A key holding every scope but
    the route's own (and not ``admin``) gets 403 from every route of template.yaml."""
    keys: dict[str, str] = {}
    problems = []
    for (method, route), _fn in sorted(http_routes().items()):
        scope, dialect = _entry_config(method, route)
        if scope is None:
            continue
        needed = scope.value
        if needed not in keys:
            keys[needed] = _key(api, SP1, [s for s in ALL if s != needed])["key"]
        result = api.call(method, route, path_params=_params(route, SP1), body=GOOD, key=keys[needed])
        if route == "/orlo/token":  # a key holding either Orlo scope gets a token (handlers/orlo.py)
            continue
        if result.status != 403 or not _shape_ok(dialect.value, result.body, 403):
            problems.append((method, route, needed, result.status, result.body))
    assert problems == []


def test_read_scopes_never_guard_a_route_that_writes(api: Api) -> None:
    """A read scope never opens a route that changes data: every POST/PUT/PATCH/DELETE route other than the
    documented read-only POSTs (Datadog lists) and the view recording needs a write scope or admin."""
    reading_posts = {
        ("POST", "/api/v2/dora/deployments"),
        ("POST", "/api/v2/dora/failures"),
        ("POST", "/api/projects/{spaceId}/insights/viewed"),
        ("POST", "/api/environments/{spaceId}/insights/viewed"),
    }
    wrong = []
    for (method, route), _fn in sorted(http_routes().items()):
        scope, _ = _entry_config(method, route)
        if scope is None or method == "GET" or (method, route) in reading_posts:
            continue
        if scope.value.endswith(":read"):
            wrong.append((method, route, scope.value))
        if method == "GET" and not scope.value.endswith(":read") and scope.value != "admin":
            wrong.append((method, route, scope.value))
    assert wrong == []


def test_every_read_route_answers_a_key_with_only_its_scope(api: Api) -> None:
    """The key holding just the route's scope passes authentication and authorisation (no 401/403) and no
    route answers a 5xx for the placeholder ids and body a client may send."""
    keys: dict[str, str] = {}
    problems = []
    for (method, route), _fn in sorted(http_routes().items()):
        scope, _dialect = _entry_config(method, route)
        if scope is None or scope.value == "admin":
            continue
        if scope.value not in keys:
            keys[scope.value] = _key(api, SP1, [scope.value])["key"]
        result = api.call(method, route, path_params=_params(route, SP1), body=GOOD, key=keys[scope.value])
        if result.status in (401, 403) or result.status >= 500:
            problems.append((method, route, scope.value, result.status, result.body))
    assert problems == []


def test_the_route_tables_above_cover_the_template() -> None:
    scoped = [r for r in http_routes() if _entry_config(*r)[0] is not None]
    assert len(scoped) >= 100


# ------------------------------------------------------------- randomized key operations vs an oracle
class _Model:
    """Who may do what: live keys by secret, their space, id and scopes."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {}
        self.spaces = {SP1, OTHER_SPACE}
        self.settings: dict[str, tuple[float, str | None, int]] = {}

    def add(self, secret: str, space: str, key_id: str, scopes: list[str], name: str, user: str | None) -> None:
        self.keys[secret] = {"space": space, "id": key_id, "scopes": scopes, "name": name, "user": user, "live": True}

    def live(self, secret: str) -> dict[str, Any] | None:
        k = self.keys.get(secret)
        return k if k and k["live"] else None

    def auth(self, secret: str, space: str, needed: str, any_space_for_admin: bool) -> int | None:
        k = self.live(secret)
        if k is None:
            return 401
        admin = "admin" in k["scopes"]
        if space != k["space"] and not (any_space_for_admin and admin):
            return 404
        if needed not in k["scopes"] and not admin:
            return 403
        return None

    def ids_in(self, space: str) -> set[str]:
        return {k["id"] for k in self.keys.values() if k["live"] and k["space"] == space}


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_key_operations_follow_the_oracle(api: Api, other_space: str, seed: int) -> None:
    """Create/list/revoke keys, use them and change settings, by several keys of two spaces (admin and not),
    against a model of API.md's rules: 401 unknown or revoked key, 404 another space (admin routes: any space
    for an admin key), 403 missing scope, only admins create admin keys, revocation at once."""
    rng = random.Random(seed)
    model = _Model()
    model.add(ADMIN_KEY, SP1, "ApiKeys-1", ["admin"], "test admin", None)
    model.add(OTHER_KEY, OTHER_SPACE, "ApiKeys-1", ["admin"], "other admin", None)
    secrets_seen = [ADMIN_KEY, OTHER_KEY, "not-a-key"]
    targets = [SP1, OTHER_SPACE, "Spaces-99", "spaces-1"]
    log: list[Any] = []
    for step in range(70):
        actor = rng.choice(secrets_seen)
        target = rng.choice(targets)
        op = rng.choice(["create", "create", "list", "revoke", "use", "settings"])
        if op == "create":
            scopes = rng.sample([*ALL, "admin"], rng.randint(1, 3))
            if rng.random() < 0.1:
                scopes.append("root")
            user = rng.choice([None, "ann@example.com", "Bob"])
            name = f"key-{step}"
            body: dict[str, Any] = {"name": name, "scopes": scopes}
            if user is not None:
                body["user"] = user
            result = api.call("POST", KEYS, path_params={"spaceId": target}, body=body, key=actor)
            expected = model.auth(actor, target, "admin", True)
            if expected is None:
                if "root" in scopes:
                    expected = 400
                elif target not in model.spaces:
                    expected = 404
                else:
                    expected = 201
            log.append((step, op, actor[:12], target, scopes, result.status))
            assert result.status == expected, (log, result.body)
            if result.status == 201:
                out = result.body
                assert out["scopes"] == list(dict.fromkeys(scopes)) and out["name"] == name and out["user"] == user
                model.add(out["key"], target, out["id"], scopes, name, user)
                secrets_seen.append(out["key"])
        elif op == "list":
            result = api.call("GET", KEYS, path_params={"spaceId": target}, key=actor)
            expected = model.auth(actor, target, "admin", True)
            if expected is None:
                expected = 200 if target in model.spaces else 404
            log.append((step, op, actor[:12], target, result.status))
            assert result.status == expected, (log, result.body)
            if expected == 200:
                listed = {k["id"]: k for k in result.body["items"]}
                assert set(listed) == model.ids_in(target), log
                assert all(k.get("key") is None for k in listed.values())
        elif op == "revoke":
            candidates = [*list(model.keys.values()), {"id": "ApiKeys-999", "space": target}]
            victim = rng.choice(candidates)
            key_id = victim["id"]
            result = api.call("DELETE", KEY, path_params={"spaceId": target, "keyId": key_id}, key=actor)
            expected = model.auth(actor, target, "admin", True)
            if expected is None:
                expected = 204 if key_id in model.ids_in(target) else 404
            log.append((step, op, actor[:12], target, key_id, result.status))
            assert result.status == expected, (log, result.body)
            if expected == 204:
                for k in model.keys.values():
                    if k["live"] and k["space"] == target and k["id"] == key_id:
                        k["live"] = False
        elif op == "use":
            space = model.keys[actor]["space"] if actor in model.keys else target
            result = api.call("GET", DEPLOYMENTS, path_params={"spaceId": space}, key=actor)
            expected = model.auth(actor, space, "deployments:read", False) or 200
            log.append((step, op, actor[:12], space, result.status))
            assert result.status == expected, (log, result.body)
        else:
            hours = rng.choice([1, 2.5, 24, 48])
            result = api.call(
                "PATCH", SETTINGS, path_params={"spaceId": target}, body={"failure_window_hours": hours}, key=actor
            )
            expected = model.auth(actor, target, "admin", True)
            if expected is None:
                expected = 200 if target in model.spaces else 404
            log.append((step, op, actor[:12], target, result.status))
            assert result.status == expected, (log, result.body)
            if expected == 200:
                k = model.keys[actor]
                window, by, rev = model.settings.get(target, (24.0, None, 0))
                if float(hours) != window:
                    window, by, rev = float(hours), k["user"] or k["name"], rev + 1
                model.settings[target] = (window, by, rev)
                got = result.body
                assert (got["failure_window_hours"], got["updated_by"], got["revision"]) == (window, by, rev), log


# ------------------------------------------------------------------------------- hostile path values
HOSTILE_SPACES = [
    "spaces-1",
    "SPACES-1",
    "Spaces-01",
    "Spaces-1#",
    "Spaces-1#APIKEY",
    "Spaces-1%23",
    "Spaces-1%2F",
    "Spaces-1 ",
    " Spaces-1",
    "Spaces-\uff11",
    "Spaces-1\u0000",
    "S" * 65,
    "Spaces-99",
    "..",
    "Spaces-1/apikeys",
]
ADMIN_ROUTES = [
    ("POST", KEYS, {"name": "k", "scopes": ["deployments:read"]}),
    ("GET", KEYS, None),
    ("DELETE", KEY, None),
    ("PUT", "/api/{spaceId}/webhooks/github", {"secret": "s3cret-value"}),
    ("PUT", "/api/{spaceId}/webhooks/gitlab", {}),
    ("PUT", "/api/{spaceId}/webhooks/pagerduty", {"secret": "0123456789abcdef0123"}),
    ("GET", "/api/{spaceId}/webhooks/pagerduty", None),
    ("PUT", "/api/{spaceId}/webhooks/opsgenie", {}),
    ("GET", "/api/{spaceId}/webhooks/opsgenie", None),
    ("GET", SETTINGS, None),
    ("PATCH", SETTINGS, {"failure_window_hours": 2}),
    ("GET", "/api/{spaceId}/health", None),
]


def test_hostile_space_ids_on_admin_routes_are_4xx_and_touch_nothing(api: Api, aws: Any) -> None:
    """An admin key naming a space that does not exist (a case variant, '#', encoded separators, padding...)
    gets a 4xx (404 or 400), never a 2xx for a space that is not there nor a 5xx (API.md "Errors")."""
    import boto3

    before = boto3.client("dynamodb").scan(TableName=aws.table_name)["Count"]
    problems = []
    for method, route, body in ADMIN_ROUTES:
        for space in HOSTILE_SPACES:
            params = {"spaceId": space} | ({"keyId": "ApiKeys-1"} if "{keyId}" in route else {})
            result = api.call(method, route, path_params=params, body=body, key=ADMIN_KEY)
            if result.status not in (400, 404) or not _shape_ok("native", result.body, result.status):
                problems.append((method, route, space, result.status, result.body))
    assert problems == []
    assert boto3.client("dynamodb").scan(TableName=aws.table_name)["Count"] == before


HOSTILE_KEY_IDS = [
    "apikeys-1",
    "ApiKeys-01",
    "ApiKeys-1#",
    "ApiKeys-1 ",
    "#",
    "KEY",
    "x" * 64,
    "ApiKeys-1%23",
    "\u00e9",
]


def test_hostile_key_ids_never_revoke_a_key_nor_fail(api: Api, other_space: str) -> None:
    """Only the exact id of a key of the named space revokes it (API.md: 404 for an unknown id)."""
    problems = []
    for key_id in HOSTILE_KEY_IDS:
        for space in (SP1, other_space):
            result = api.call("DELETE", KEY, path_params={"spaceId": space, "keyId": key_id}, key=ADMIN_KEY)
            if result.status not in (400, 404):
                problems.append((space, key_id, result.status, result.body))
    assert problems == []
    # both seed keys still work
    assert api.call("GET", KEYS, path_params={"spaceId": SP1}, key=ADMIN_KEY).status == 200
    assert api.call("GET", KEYS, path_params={"spaceId": other_space}, key=OTHER_KEY).status == 200


def test_a_non_admin_key_naming_its_own_space_in_another_spelling_is_404(api: Api) -> None:
    """Tenancy compares the space id exactly: a non-admin key sees 404 for any other spelling of its space."""
    reader = _key(api, SP1, ALL)["key"]
    for space in ["spaces-1", "SPACES-1", "Spaces-01", "Spaces-1%20", "Spaces-1#x"]:
        for method, route in [
            ("GET", DEPLOYMENTS),
            ("GET", "/api/{spaceId}/projects"),
            ("GET", "/api/{spaceId}/summary"),
        ]:
            result = api.call(method, route, path_params={"spaceId": space}, key=reader)
            assert result.status == 404, (space, route, result.status, result.body)


# ------------------------------------------------------------------------ settings: random sequences
def _environments(api: Api, names: list[str]) -> dict[str, dict[str, str]]:
    """Register environments (one deployment each); name.casefold() -> {"id", "name"}."""
    for n, name in enumerate(names):
        body = {"project": "shop", "environment": name, "finished_at": f"2024-03-01T12:00:{n:02d}Z"}
        assert api.call("POST", DEPLOYMENTS, path_params={"spaceId": SP1}, body=body, key=ADMIN_KEY).status == 201
    listed = api.call("GET", "/api/{spaceId}/environments", path_params={"spaceId": SP1}, key=ADMIN_KEY).body
    return {i["Name"].casefold(): {"id": i["Id"], "name": i["Name"]} for i in listed["Items"]}


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_random_settings_patches_follow_the_oracle(api: Api, seed: int) -> None:
    """PATCH semantics of API.md "Space settings": only the fields given change, null resets, names in any case
    or ids resolve to catalogue names, bad values 400 naming the field, stale revision 412, a PATCH changing
    nothing keeps the revision; several admin keys, revision in the body, in If-Match, or absent."""
    rng = random.Random(seed)
    envs = _environments(api, ["production", "Staging", "qa"])
    writers = [(ADMIN_KEY, "test admin")]
    for n, user in enumerate(["ann@example.com", None]):
        created = _key(api, SP1, ["admin"], name=f"ops-{n}", **({"user": user} if user else {}))
        writers.append((created["key"], user or f"ops-{n}"))
    state: dict[str, Any] = {
        "failure_window_hours": 24.0,
        "default_environment": None,
        "default_benchmark": "2023",
        "production_environments": [],
        "revision": 0,
        "updated_by": None,
    }
    env_words = ["production", "PRODUCTION", "staging", "QA", "nope", envs["qa"]["id"], envs["staging"]["id"]]
    log: list[Any] = []
    for step in range(60):
        body: dict[str, Any] = {}
        for field in rng.sample(
            ["failure_window_hours", "default_environment", "default_benchmark", "production_environments"],
            rng.randint(0, 3),
        ):
            if field == "failure_window_hours":
                body[field] = rng.choice([0.1, 1, 2.5, 24, 720, None, 0.05, 721])
            elif field == "default_environment":
                body[field] = rng.choice([*env_words, None])
            elif field == "default_benchmark":
                body[field] = rng.choice(["2021", "2023", "2024", "1999", None])
            else:
                body[field] = rng.choice([None, []] + [rng.sample(env_words, rng.randint(1, 3)) for _ in range(3)])
        mode = rng.choice(["none", "body", "if-match", "stale-body", "stale-if-match", "both"])
        headers: dict[str, str] = {}
        if mode == "body":
            body["revision"] = state["revision"]
        elif mode == "if-match":
            headers["If-Match"] = f'"{state["revision"]}"'
        elif mode == "stale-body":
            body["revision"] = state["revision"] + 1
        elif mode == "stale-if-match":
            headers["If-Match"] = f'W/"{state["revision"] + 3}"'
        elif mode == "both":
            body["revision"] = state["revision"]
            headers["If-Match"] = str(state["revision"])
        actor, who = rng.choice(writers)
        result = api.call("PATCH", SETTINGS, path_params={"spaceId": SP1}, body=body, key=actor, headers=headers)
        # oracle
        expected = 200
        window = body.get("failure_window_hours", 1.0)
        if window is not None and not 0.1 <= window <= 720:
            expected = 400
        elif mode.startswith("stale"):
            expected = 412
        new = dict(state)
        problems = []
        for field, value in body.items():
            if field == "revision":
                continue
            if field == "failure_window_hours":
                new[field] = 24.0 if value is None else float(value)
            elif field == "default_benchmark":
                if value not in (None, "2021", "2023", "2024"):
                    problems.append(field)
                new[field] = value or "2023"
            elif field == "default_environment":
                if value is None:
                    new[field] = None
                else:
                    found = next(
                        (e for e in envs.values() if value in (e["id"],) or value.casefold() == e["name"].casefold()),
                        None,
                    )
                    if found is None:
                        problems.append(field)
                    else:
                        new[field] = found["name"]
            else:
                names: list[str] = []
                ids: list[str] = []
                for position, word in enumerate(value or []):
                    found = next(
                        (e for e in envs.values() if word == e["id"] or word.casefold() == e["name"].casefold()), None
                    )
                    if found is None:
                        problems.append(f"production_environments[{position}]")
                    elif found["id"] not in ids:
                        ids.append(found["id"])
                        names.append(found["name"])
                new[field] = names
        by_catalogue = expected == 200 and bool(problems)
        if by_catalogue:
            expected = 400
        log.append((step, mode, body, headers, result.status))
        assert result.status == expected, (log, result.body)
        if by_catalogue:
            named = {e.partition(":")[0] for e in result.body["errors"]}
            assert named == set(problems), (log, result.body)
        if expected == 200:
            visible = ["failure_window_hours", "default_environment", "default_benchmark", "production_environments"]
            if any(new[f] != state[f] for f in visible):
                new["revision"] = state["revision"] + 1
                new["updated_by"] = who
            else:
                new = dict(state)
            state = new
            got = {k: result.body[k] for k in state}
            assert got == state, (log, result.body)
            assert result.header("ETag") == f'"{state["revision"]}"'
        again = api.call("GET", SETTINGS, path_params={"spaceId": SP1}, key=ADMIN_KEY)
        assert {k: again.body[k] for k in state} == state, log


def test_naming_the_default_values_explicitly_changes_nothing(api: Api) -> None:
    """DEFECT (minor). API.md "Space settings": "A PATCH that changes nothing writes nothing and keeps the
    revision". A new space answers ``default_benchmark: "2023"``; a client sending back what it read
    (``{"default_benchmark": "2023"}``) changes nothing it can see. Observed: revision 0 -> 1, ``updated_by`` and
    ``updated_at`` overwritten, so every other client holding revision 0 now gets 412. Cause: logic/settings.py
    ``_apply`` stores the name given ("2023") where the settings hold None (the service default), and
    ``update_settings`` compares the stored fields, not the answered ones. (``failure_window_hours: 24`` and
    ``production_environments: []`` sent back do keep the revision.)"""
    for body in ({"failure_window_hours": 24}, {"production_environments": []}, {"default_benchmark": "2023"}):
        result = api.call("PATCH", SETTINGS, path_params={"spaceId": SP1}, body=body, key=ADMIN_KEY)
        assert result.status == 200
        assert (body, result.body["revision"], result.body["updated_by"]) == (body, 0, None)


def test_concurrent_settings_changes_lose_no_update(api: Api) -> None:
    """Changes without a revision apply to the current settings (re-read and re-applied when they race): four
    admins changing four different fields at once all land. Changes sent with the same revision: one wins, the
    others answer 412."""
    from concurrent.futures import ThreadPoolExecutor

    _environments(api, ["production", "staging"])
    bodies = [
        {"failure_window_hours": 5},
        {"default_benchmark": "2021"},
        {"default_environment": "staging"},
        {"production_environments": ["production"]},
    ]

    def patch(body: dict[str, Any]) -> HttpResult:
        return api.call("PATCH", SETTINGS, path_params={"spaceId": SP1}, body=body, key=ADMIN_KEY)

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(patch, bodies))
    assert [a.status for a in answers] == [200] * 4, [a.body for a in answers]
    final = api.call("GET", SETTINGS, path_params={"spaceId": SP1}, key=ADMIN_KEY).body
    assert (final["failure_window_hours"], final["default_benchmark"], final["default_environment"]) == (
        5.0,
        "2021",
        "staging",
    )
    assert final["production_environments"] == ["production"] and final["revision"] == 4

    revision = final["revision"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        raced = list(pool.map(patch, [{"failure_window_hours": h, "revision": revision} for h in (1, 2, 3, 4)]))
    assert sorted(a.status for a in raced) == [200, 412, 412, 412]


# --------------------------------------------------------------------------------------- catalogue
@pytest.mark.parametrize("seed", [21, 22])
def test_catalogue_lists_page_as_a_model_of_first_spellings(api: Api, other_space: str, seed: int) -> None:
    """Catalogue lists (Octopus shape): one entity per case-insensitive name, the first spelling, listed by id
    number; ``skip``/``take`` slice it with consistent counts; another space's entities never appear."""
    rng = random.Random(seed)
    words = ["shop", "SHOP", "Api", "api#1", "a/b", "Straße", "STRASSE", "zeta", "\u00e9t\u00e9", "x" * 197]
    model: list[str] = []
    for n in range(25):
        name = rng.choice(words) + (str(rng.randint(0, 12)) if rng.random() < 0.6 else "")
        body = {
            "project": name,
            "environment": "production",
            "finished_at": f"2024-03-01T12:{n // 60:02d}:{n % 60:02d}Z",
        }
        result = api.call("POST", DEPLOYMENTS, path_params={"spaceId": SP1}, body=body, key=ADMIN_KEY)
        assert result.status == 201, result.body
        if name.casefold() not in {m.casefold() for m in model}:
            model.append(name)
    # noise in the other space
    body = {"project": "other-only", "environment": "production", "finished_at": "2024-03-01T12:00:00Z"}
    assert api.call("POST", DEPLOYMENTS, path_params={"spaceId": other_space}, body=body, key=OTHER_KEY).status == 201
    reader = _key(api, SP1, ["deployments:read"])["key"]
    whole = api.call("GET", "/api/{spaceId}/projects", path_params={"spaceId": SP1}, query={"take": "1000"}, key=reader)
    assert whole.status == 200
    assert [i["Name"] for i in whole.body["Items"]] == model
    assert [i["Id"] for i in whole.body["Items"]] == [f"Projects-{n}" for n in range(1, len(model) + 1)]
    assert all(i["SpaceId"] == SP1 for i in whole.body["Items"])
    for _ in range(15):
        skip, take = rng.randint(0, len(model) + 3), rng.randint(1, 8)
        page = api.call(
            "GET",
            "/api/{spaceId}/projects",
            path_params={"spaceId": SP1},
            query={"skip": str(skip), "take": str(take)},
            key=reader,
        )
        assert page.status == 200
        assert [i["Name"] for i in page.body["Items"]] == model[skip : skip + take]
        assert page.body["TotalResults"] == len(model)
        assert page.body["NumberOfPages"] == max(1, -(-len(model) // take))
    for bad in ({"take": "0"}, {"skip": "-1"}, {"take": "x"}, {"skip": "1.5"}, {"take": "99999999999"}):
        refused = api.call("GET", "/api/{spaceId}/projects", path_params={"spaceId": SP1}, query=bad, key=reader)
        assert refused.status == 400 and _shape_ok("octopus", refused.body, 400), (bad, refused.status, refused.body)


# ------------------------------------------------------------------------------------ admin command
def test_admin_command_refuses_a_key_without_scopes(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """DEFECT. The admin command creates keys as ``POST /api/{spaceId}/apikeys`` does (logic/admin.py "API and
    admin command alike"), which refuses an empty scope list and a blank name (400). Observed: ``create-key
    --name "" --scopes ""`` exits 0 and stores a key with no scope at all and an empty name."""
    from dora_insights.admin import main

    assert main(["create-space", "--name", "Payments"]) == 0
    space = json.loads(capsys.readouterr().out)["id"]
    code = main(["create-key", "--space", space, "--name", "", "--scopes", ""])
    printed = capsys.readouterr()
    assert code == 1, printed.out


def test_admin_command_refuses_a_user_the_api_refuses(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """DEFECT. The API refuses a key ``user`` over 200 characters (``ApiKeyIn.user: Name``); the admin command
    stores any. Observed: a key made with a 3,000-character ``--user`` is stored, and then every PostHog insight
    retrieve it makes answers 400 ``key_too_large`` (its viewer key does not fit DynamoDB), for good."""
    from dora_insights.admin import main

    assert main(["create-space", "--name", "Payments"]) == 0
    space = json.loads(capsys.readouterr().out)["id"]
    code = main(["create-key", "--space", space, "--name", "n", "--scopes", "admin", "--user", "u" * 3000])
    printed = capsys.readouterr()
    if code == 0:  # show what the stored key then meets
        key = json.loads(printed.out)["key"]
        api = Api()
        path = {"spaceId": space}
        assert (
            api.call("POST", "/api/{spaceId}/insights/reports", path_params=path, body={"Name": "r"}, key=key).status
            == 201
        )
        query = {"kind": "DoraMetricsQuery", "reportId": "InsightsReports-1", "metric": "deployment_frequency"}
        made = api.call(
            "POST", "/api/projects/{spaceId}/insights", path_params=path, body={"name": "i", "query": query}, key=key
        )
        assert made.status == 201
        read = api.call(
            "GET", "/api/projects/{spaceId}/insights/{insightId}", path_params={**path, "insightId": "1"}, key=key
        )
        assert read.status == 200, read.body
    assert code == 1


def test_admin_command_reports_a_malformed_space_id_without_a_traceback(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """DEFECT (minor). admin.py's ``main``: "exits non-zero with a message on error". Observed: ``--space
    'Spaces#1'`` (or ``''``) raises ``ValueError`` out of ``main`` (dal/keys.py ``_space``) instead."""
    from dora_insights.admin import main

    outcomes = []
    for space in ("Spaces#1", ""):
        try:
            outcomes.append(main(["create-key", "--space", space, "--name", "n", "--scopes", "admin"]))
        except ValueError as error:
            outcomes.append(repr(error))
    assert outcomes == [1, 1]


def test_admin_command_refuses_a_blank_default_environment(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """DEFECT (minor). ``POST /api/spaces`` refuses a blank ``default_environment`` (``SpaceIn``: ``Name``, not
    blank); the admin command's ``create-space --default-environment "   "`` stores it, and every event sent
    without an environment (DX, Datadog, Orlo) then lands in an environment named three spaces, which no
    native write could name."""
    from dora_insights.admin import main

    code = main(["create-space", "--name", "P", "--default-environment", "   "])
    capsys.readouterr()
    assert code == 1


# ------------------------------------------------------------------- another space's ids, by a key
def test_another_spaces_ids_reach_nothing_from_a_key_of_this_space(api: Api, other_space: str) -> None:
    """A key acts only in its own space: naming, in its own space's paths (or spaceless dialect paths), the ids
    of another space's deployment, failure, report, insight, threshold, destination and Orlo release answers
    404 (or a 4xx for the body), never a 2xx or a 5xx, and changes nothing of the other space."""
    sp2 = {"spaceId": other_space}

    def ok(result: HttpResult) -> Any:
        assert result.status in (200, 201), result.body
        return result.body

    dep = ok(
        api.call("POST", DEPLOYMENTS, path_params=sp2, body={**GOOD, "id": "dep-of-space-two-0001"}, key=OTHER_KEY)
    )
    fail = ok(
        api.call(
            "POST",
            "/api/{spaceId}/failures",
            path_params=sp2,
            body={
                "id": "fail-of-space-two-0001",
                "project": "shop",
                "environment": "production",
                "started_at": "2024-03-01T12:00:00Z",
            },
            key=OTHER_KEY,
        )
    )
    ok(api.call("POST", "/api/{spaceId}/insights/reports", path_params=sp2, body={"Name": "r"}, key=OTHER_KEY))
    query = {"kind": "DoraMetricsQuery", "reportId": "InsightsReports-1", "metric": "deployment_frequency"}
    insight = ok(
        api.call(
            "POST",
            "/api/projects/{spaceId}/insights",
            path_params=sp2,
            body={"name": "i", "query": query},
            key=OTHER_KEY,
        )
    )
    threshold = ok(
        api.call(
            "POST",
            "/api/projects/{spaceId}/insights/{insightId}/thresholds",
            path_params={**sp2, "insightId": str(insight["id"])},
            body={
                "name": "t",
                "condition": {"type": "absolute_value", "bounds": {"upper": 5}},
                "calculation_interval": "daily",
            },
            key=OTHER_KEY,
        )
    )
    dest = ok(
        api.call(
            "POST",
            "/api/{spaceId}/alert-destinations",
            path_params=sp2,
            body={"name": "d", "kind": "slack", "url": "https://hooks.slack.com/services/T0001/B0001/xyz"},
            key=OTHER_KEY,
        )
    )
    release = ok(api.call("POST", "/orlo/releases", body={"user": "u", "platforms": ["p"]}, key=OTHER_KEY))
    ids = {
        "deploymentId": dep["id"],
        "deployment_id": dep["id"],
        "failureId": fail["id"],
        "failure_id": fail["id"],
        "reportId": "InsightsReports-1",
        "insightId": str(insight["id"]),
        "thresholdId": str(threshold["id"]),
        "destinationId": dest["id"],
        "rid": release["id"],
    }
    snapshot = _space_two_view(api, other_space, ids)
    problems = []
    for (method, route), _fn in sorted(http_routes().items()):
        names = re.findall(r"{(\w+)}", route)
        if not any(n in ids for n in names) or route.startswith("/webhooks/"):
            continue
        params = {n: ids.get(n, "x") for n in names} | ({"spaceId": SP1} if "spaceId" in names else {})
        result = api.call(method, route, path_params=params, body={}, key=ADMIN_KEY)
        if result.status < 400 or result.status >= 500:
            problems.append((method, route, result.status, str(result.body)[:200]))
    assert problems == []
    assert _space_two_view(api, other_space, ids) == snapshot


def _space_two_view(api: Api, space: str, ids: dict[str, str]) -> Any:
    sp2 = {"spaceId": space}
    reads = [
        ("GET", "/api/{spaceId}/deployments/{deploymentId}", {**sp2, "deploymentId": ids["deploymentId"]}),
        ("GET", "/api/{spaceId}/failures/{failureId}", {**sp2, "failureId": ids["failureId"]}),
        ("GET", "/api/{spaceId}/insights/reports/{reportId}", {**sp2, "reportId": ids["reportId"]}),
        ("GET", "/api/{spaceId}/alert-destinations/{destinationId}", {**sp2, "destinationId": ids["destinationId"]}),
        (
            "GET",
            "/api/projects/{spaceId}/insights/{insightId}/thresholds/{thresholdId}",
            {**sp2, "insightId": ids["insightId"], "thresholdId": ids["thresholdId"]},
        ),
        ("GET", "/api/projects/{spaceId}/insights/{insightId}/sharing", {**sp2, "insightId": ids["insightId"]}),
        ("GET", "/orlo/releases/{rid}", {"rid": ids["rid"]}),
    ]
    out = []
    for method, route, params in reads:
        result = api.call(method, route, path_params=params, key=OTHER_KEY)
        body = result.body
        if isinstance(body, dict):
            body = {
                k: v for k, v in body.items() if k not in ("as_of", "pending", "figures", "attribution", "last_refresh")
            }
        out.append((result.status, json.dumps(body, sort_keys=True, default=str)))
    return out


# ------------------------------------------------------------------------------ revocation races
def test_a_key_revoked_by_a_concurrent_request_answers_404_not_500(
    api: Api, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DEFECT. Two admins revoking the same key at once: the one that loses must answer 404 (the key is not
    there) or 204, never a 5xx (API.md "Errors": every error for anything a client sent is 4xx; a 500 is a
    defect). Observed: dal/store.py ``revoke_api_key`` reads the key, then deletes it in a plain ``transact``
    whose ``attribute_exists(PK)`` condition fails once the other revocation went through between the read
    and the write; the ``TransactionCanceledException`` (ConditionalCheckFailed, not contention) escapes
    ``entry`` and the route answers API Gateway's 500.

    Deterministic here: the other revocation is made to land right after this request's read."""
    import boto3

    from dora_insights.dal import keys as table_keys
    from dora_insights.dal.store import Store

    victim = _key(api, SP1, ["deployments:read"])
    original_get = Store.get
    landed: list[bool] = []

    def get_then_other_revocation_lands(self: Store, key: Any, *, consistent: bool = False) -> Any:
        item = original_get(self, key, consistent=consistent)
        if item is not None and str(key.get("PK", "")).endswith("#APIKEY") and not landed:
            landed.append(True)
            ddb = boto3.client("dynamodb")
            ddb.delete_item(TableName=aws.table_name, Key={k: {"S": v} for k, v in key.items()})
            lookup = table_keys.api_key_lookup(item["key_hash"])
            ddb.delete_item(TableName=aws.table_name, Key={k: {"S": v} for k, v in lookup.items()})
        return item

    monkeypatch.setattr(Store, "get", get_then_other_revocation_lands)
    try:
        result = api.call("DELETE", KEY, path_params={"spaceId": SP1, "keyId": victim["id"]}, key=ADMIN_KEY)
        status: Any = result.status
    except Exception as error:  # what Lambda reports, and API Gateway answers 500 for
        status = f"500 ({type(error).__name__}: {error})"
    assert landed == [True]
    assert status in (204, 404), status


def test_every_scoped_route_answers_401_and_404_in_its_dialect(api: Api, other_space: str) -> None:
    """No key, a wrong key, a revoked key: 401; a key of another space naming this one (non-admin route): 404;
    each in the route's dialect shape (API.md "Authentication and tenancy", "Errors")."""
    revoked = _key(api, SP1, ["admin"])
    assert api.call("DELETE", KEY, path_params={"spaceId": SP1, "keyId": revoked["id"]}, key=ADMIN_KEY).status == 204
    outsider = _key(api, other_space, ALL, key=OTHER_KEY)["key"]
    problems = []
    for (method, route), _fn in sorted(http_routes().items()):
        scope, dialect = _entry_config(method, route)
        if scope is None:
            continue
        params = _params(route, SP1)
        for key in (None, "dora_not-a-key", revoked["key"]):
            result = api.call(method, route, path_params=params, body=GOOD, key=key)
            if result.status != 401 or not _shape_ok(dialect.value, result.body, 401):
                problems.append((method, route, "401", result.status, result.body))
        if "{spaceId}" in route:
            result = api.call(method, route, path_params=params, body=GOOD, key=outsider)
            if result.status != 404 or not _shape_ok(dialect.value, result.body, 404):
                problems.append((method, route, "404", result.status, result.body))
    assert problems == []


def test_hostile_credentials_are_401_never_5xx(api: Api) -> None:
    """Odd credential headers: 401 in the route's shape, never a 5xx nor another key's access."""
    import base64

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    hostile = [
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer    "},
        {"Authorization": "Basic " + b64(b"\xff\xfe:\xff")},
        {"Authorization": "Basic " + b64(b"just-a-user")},
        {"Authorization": "Basic " + b64(f"{ADMIN_KEY}:".encode())},
        {"Authorization": "Basic " + b64(b":")},
        {"Authorization": "Basic ===="},
        {"Authorization": "Digest " + ADMIN_KEY},
        {"X-Api-Key": "Bearer " + ADMIN_KEY},
        {"X-Api-Key": ADMIN_KEY.upper()},
        {"X-Api-Key": ADMIN_KEY + "\u0000"},
        {"X-Api-Key": "k" * 100_000},
        {"DD-API-KEY": "\u00e9" * 10},
    ]
    routes = [
        ("GET", DEPLOYMENTS, "native"),
        ("GET", "/api/{spaceId}/projects", "octopus"),
        ("GET", "/api/projects/{spaceId}/insights", "posthog"),
        ("POST", "/api/deployments.create", "dx"),
        ("POST", "/api/v2/dora/deployments", "datadog"),
        ("GET", "/orlo/releases", "orlo"),
        ("GET", "/api/{spaceId}/dora/metrics", "gitlab"),
        ("GET", KEYS, "native"),
    ]
    problems = []
    for headers in hostile:
        for method, route, dialect in routes:
            result = api.call(method, route, path_params=_params(route, SP1), body={}, headers=headers)
            if result.status != 401 or not _shape_ok(dialect, result.body, 401):
                problems.append((next(iter(headers.values()))[:40], route, result.status, result.body))
    assert problems == []


# ------------------------------------------------------------------------------------------- spaces
def test_spaces_are_created_by_admin_keys_only_and_start_empty(api: Api) -> None:
    """``POST /api/spaces`` (admin): 201 ``{"id", "name", "default_environment"}``; a non-admin key 403; bad bodies
    400 naming the field; a new space has no keys but its creator may give it one, which acts there only."""
    writer = _key(api, SP1, ALL)["key"]
    denied = api.call("POST", "/api/spaces", body={"name": "T"}, key=writer)
    assert denied.status == 403 and _shape_ok("native", denied.body, 403)
    for bad in (
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 201},
        {"name": "T", "default_environment": " "},
        {"name": "T", "id": "Spaces-1"},
        {"name": 5},
        [],
        "T",
    ):
        refused = api.call("POST", "/api/spaces", body=bad, key=ADMIN_KEY)
        assert refused.status == 400 and _shape_ok("native", refused.body, 400), (bad, refused.status, refused.body)
    made = api.call("POST", "/api/spaces", body={"name": "Team", "default_environment": "Live"}, key=ADMIN_KEY)
    assert made.status == 201 and made.body["default_environment"] == "Live" and made.body["name"] == "Team"
    team = made.body["id"]
    assert api.call("GET", KEYS, path_params={"spaceId": team}, key=ADMIN_KEY).body == {"items": []}
    team_key = _key(api, team, ["deployments:write", "deployments:read"])["key"]
    sent = api.call(
        "POST",
        "/api/deployments.create",
        body={"service": "s", "commit_sha": "a" * 40, "repository": "o/r", "deployed_at": 1709294400},
        key=team_key,
    )
    assert sent.status == 200 and sent.body["deployment"]["environment"] == "Live"
    assert api.call("GET", DEPLOYMENTS, path_params={"spaceId": SP1}, key=team_key).status == 404
    assert api.call("GET", DEPLOYMENTS, path_params={"spaceId": SP1}, key=ADMIN_KEY).body["items"] == []
    envs = api.call("GET", "/api/{spaceId}/environments", path_params={"spaceId": team}, key=team_key).body
    assert [i["Name"] for i in envs["Items"]] == ["Live"] and envs["Items"][0]["SpaceId"] == team


def test_key_creation_bodies_are_validated_and_echoed(api: Api) -> None:
    """``POST /api/{spaceId}/apikeys``: name (not blank, at most 200), scopes (known, at least one, repeats
    kept once), optional user; anything else 400 naming the field, never a 5xx; what is kept is listed."""
    bad_bodies = [
        {"name": "k"},
        {"name": "k", "scopes": []},
        {"name": "k", "scopes": "admin"},
        {"name": "k", "scopes": [None]},
        {"name": "k", "scopes": ["ADMIN"]},
        {"name": "k", "scopes": ["deployments:read "]},
        {"name": "k", "scopes": ["deployments:read"] * 33},
        {"name": "", "scopes": ["deployments:read"]},
        {"name": " \t", "scopes": ["deployments:read"]},
        {"name": "k", "scopes": ["deployments:read"], "user": ""},
        {"name": "k", "scopes": ["deployments:read"], "user": "u" * 201},
        {"name": "k", "scopes": ["deployments:read"], "key": "chosen-by-client"},
        {"name": "k", "scopes": ["deployments:read"], "space_id": "Spaces-2"},
    ]
    for body in bad_bodies:
        refused = api.call("POST", KEYS, path_params={"spaceId": SP1}, body=body, key=ADMIN_KEY)
        assert refused.status == 400 and _shape_ok("native", refused.body, 400), (body, refused.status, refused.body)
    odd = {"name": "ci #1 / é", "scopes": ["deployments:read", "deployments:read", "admin"], "user": "a#b@example.com"}
    made = _key(api, SP1, odd["scopes"], name=odd["name"], user=odd["user"])
    assert (made["name"], made["scopes"], made["user"]) == (odd["name"], ["deployments:read", "admin"], odd["user"])
    listed = api.call("GET", KEYS, path_params={"spaceId": SP1}, key=made["key"]).body["items"]
    mine = next(k for k in listed if k["id"] == made["id"])
    assert mine == {**made, "key": None}


def test_odd_settings_bodies_and_if_match_values_are_400(api: Api) -> None:
    """Settings PATCH: values of the wrong type, out of range or not JSON numbers, revisions of the wrong type,
    malformed If-Match: 400 in the native shape naming the field, and nothing changes (revision stays 0)."""
    _environments(api, ["production"])
    bodies: list[Any] = [
        {"failure_window_hours": True},
        {"failure_window_hours": "24"},
        {"failure_window_hours": 0},
        {"failure_window_hours": -0.0},
        {"failure_window_hours": 0.09999999},
        {"failure_window_hours": 720.0000001},
        {"revision": True},
        {"revision": 1.0},
        {"revision": -1},
        {"revision": "0"},
        {"production_environments": "production"},
        {"production_environments": ["production"] * 101},
        {"production_environments": [""]},
        {"default_environment": ""},
        {"default_environment": 7},
        {"default_benchmark": ""},
        {"default_benchmark": "20231"},
        {"default_benchmark": 2023},
        {"space_id": "Spaces-2"},
        {"revision": 0, "updated_by": "me"},
    ]
    problems = []
    for body in bodies:
        result = api.call("PATCH", SETTINGS, path_params={"spaceId": SP1}, body=body, key=ADMIN_KEY)
        if result.status != 400 or not _shape_ok("native", result.body, 400):
            problems.append((body, result.status, result.body))
    for raw in (
        '{"failure_window_hours": NaN}',
        '{"failure_window_hours": Infinity}',
        '{"failure_window_hours": 1e999}',
    ):
        result = api.call("PATCH", SETTINGS, path_params={"spaceId": SP1}, raw_body=raw, key=ADMIN_KEY)
        if result.status != 400:
            problems.append((raw, result.status, result.body))
    for tag in ("abc", "1, 2", "-1", "\u0661", "1" * 17, '"0" extra'):
        result = api.call(
            "PATCH",
            SETTINGS,
            path_params={"spaceId": SP1},
            body={"failure_window_hours": 2},
            headers={"If-Match": tag},
            key=ADMIN_KEY,
        )
        if result.status != 400:
            problems.append((tag, result.status, result.body))
    assert problems == []
    assert api.call("GET", SETTINGS, path_params={"spaceId": SP1}, key=ADMIN_KEY).body["revision"] == 0


def test_hostile_space_ids_on_keyless_webhook_routes_are_4xx(api: Api) -> None:
    """The webhook routes take no key: a space id that is no space's (case variants, '#', encoded separators,
    over 64 characters) is a 4xx (401 as an unknown space, or 400/404), never a 5xx."""
    problems = []
    for route in (
        "/webhooks/github/{spaceId}",
        "/webhooks/gitlab/{spaceId}",
        "/webhooks/pagerduty/{spaceId}",
        "/webhooks/opsgenie/{spaceId}",
    ):
        for space in HOSTILE_SPACES:
            headers = {
                "X-GitHub-Event": "ping",
                "X-Hub-Signature-256": "sha256=" + "0" * 64,
                "X-Gitlab-Token": "t" * 20,
                "X-Gitlab-Event": "Push Hook",
                "X-PagerDuty-Signature": "v1=" + "0" * 64,
                "X-Opsgenie-Secret": "s" * 20,
            }
            result = api.call("POST", route, path_params={"spaceId": space}, body={"zen": "x"}, headers=headers)
            if not 400 <= result.status < 500:
                problems.append((route, space, result.status, result.body))
    assert problems == []


def test_settings_name_only_this_spaces_environments(api: Api, other_space: str) -> None:
    """Settings resolve environments in the space's own catalogue: another space's environment name or id is a
    400 whose message lists only this space's environments (no other space's names leak)."""
    body = {"project": "shop", "environment": "secret-env-of-two", "finished_at": "2024-03-01T12:00:00Z"}
    assert api.call("POST", DEPLOYMENTS, path_params={"spaceId": other_space}, body=body, key=OTHER_KEY).status == 201
    _environments(api, ["production"])  # Environments-1 of Spaces-1
    for field, value in (
        ("default_environment", "secret-env-of-two"),
        ("production_environments", ["SECRET-ENV-OF-TWO"]),
    ):
        result = api.call("PATCH", SETTINGS, path_params={"spaceId": SP1}, body={field: value}, key=ADMIN_KEY)
        assert result.status == 400, result.body
        assert "secret-env-of-two" not in json.dumps(result.body).replace(json.dumps(value)[1:-1], "")
    # an id names this space's own entity, whatever another space calls the same number
    result = api.call(
        "PATCH", SETTINGS, path_params={"spaceId": SP1}, body={"default_environment": "Environments-1"}, key=ADMIN_KEY
    )
    assert result.status == 200 and result.body["default_environment"] == "production"


def test_api_keys_list_in_creation_order(api: Api) -> None:
    """Keys are listed in creation order, as the catalogue lists its entities in number order (before, by their
    id's text: ApiKeys-10 before ApiKeys-2)."""
    for _ in range(11):
        _key(api, SP1, ["deployments:read"])
    ids = [k["id"] for k in api.call("GET", KEYS, path_params={"spaceId": SP1}, key=ADMIN_KEY).body["items"]]
    assert ids == [f"ApiKeys-{n}" for n in range(1, 13)]


def test_revoking_a_key_ends_its_orlo_tokens_and_its_own_access_at_once(api: Api) -> None:
    """Revocation applies at once to the key (every header form) and to the X-Auth-Token it was exchanged for;
    an admin key may revoke itself, after which it is 401 too."""
    key = _key(api, SP1, ["deployments:read"])
    token = api.call("GET", "/orlo/token", key=key["key"])
    assert token.status == 200
    auth = {"X-Auth-Token": token.body["token"]}
    assert api.call("GET", "/orlo/releases", headers=auth).status in (200, 404)
    assert api.call("DELETE", KEY, path_params={"spaceId": SP1, "keyId": key["id"]}, key=ADMIN_KEY).status == 204
    assert api.call("GET", "/orlo/releases", headers=auth).status == 401
    for headers in ({"X-Api-Key": key["key"]}, {"DD-API-KEY": key["key"]}):
        assert api.call("POST", "/api/v2/dora/deployments", body={}, headers=headers).status == 401
    me = _key(api, SP1, ["admin"])
    assert api.call("DELETE", KEY, path_params={"spaceId": SP1, "keyId": me["id"]}, key=me["key"]).status == 204
    assert api.call("GET", KEYS, path_params={"spaceId": SP1}, key=me["key"]).status == 401
    assert me["id"] not in [
        k["id"] for k in api.call("GET", KEYS, path_params={"spaceId": SP1}, key=ADMIN_KEY).body["items"]
    ]
