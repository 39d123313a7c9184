"""Failure events end to end (native and Datadog) and how they feed change failure rate and time to
restore (METRICS §2 rules 4-5, §3, §4, §6, §9), through the real routes against moto: the same failures
through either dialect, deletes and re-creates and any order of arrival give the same numbers as a
fresh history; oracles over what the lists show; hostile bodies; ids, tenancy and keys; idempotency
(a repeat is answered after its named deployment was removed; a refused or conflicting request
registers no name). ``DORA_PROPERTY_SEEDS=a:b`` widens the random histories."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Aws, Clock
from tests.support.code import sha
from tests.support.fixtures import OTHER_KEY, OTHER_SPACE
from tests.support.retries import settle
from tests.support.seeds import seeds

SPACE = "Spaces-1"
DEPS = "/api/{spaceId}/deployments"
ONE = "/api/{spaceId}/deployments/{deploymentId}"
FAILS = "/api/{spaceId}/failures"
FAIL = "/api/{spaceId}/failures/{failureId}"
METRICS = "/api/{spaceId}/dora/metrics"
SUMMARY = "/api/{spaceId}/summary"
DD_FAILURE = "/api/v2/dora/failure"
DD_GET_FAILURE = "/api/v2/dora/failures/{failure_id}"
DD_LIST_FAILURES = "/api/v2/dora/failures"
DD_DELETE_FAILURE = "/api/v2/dora/failure/{failure_id}"
REPO = "acme/shop"
BASE = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


SUMMARY_RANGE = {"from": "2024-02-29T00:00:00Z", "to": "2024-03-02T00:00:00Z"}


def _iso(minute: int) -> str:
    return (BASE + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unix(minute: int) -> int:
    return int((BASE + timedelta(minutes=minute)).timestamp())


# --- model ---------------------------------------------------------------------------------------------------
def _random_history(rng: random.Random, *, by_id: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Deployments (abstract) and failures (abstract) of project shop (and sometimes cart)."""
    deps: list[dict[str, Any]] = []
    minutes = sorted(rng.sample(range(0, 200), rng.randint(3, 7)))
    for i, minute in enumerate(minutes):
        deps.append(
            {
                "id": f"dep-history-{i:02d}",
                "env": rng.choice(("production", "production", "staging")),
                "minute": minute,
                "version": f"1.{i}",
                "n": i,
                "state": rng.choice(("Success", "Success", "Success", "Failed")),
            }
        )
    fails: list[dict[str, Any]] = []
    for j in range(rng.randint(1, 5)):
        kind = rng.choice(("none", "none", "version", "commit") + (("id",) if by_id else ()))
        start = rng.randint(-10, 260)
        duration = None if rng.random() < 0.2 else rng.randint(1, 300)
        f: dict[str, Any] = {
            "id": f"failure-history-{j:02d}",
            "env": rng.choice(("production", "production", "staging")),
            "start": start,
            "duration": duration,
            "kind": kind,
            "projects": ["shop"] if rng.random() < 0.8 else ["shop", "cart"],
            "name": rng.choice(("checkout down", "Zahlung fällt aus ☕", None)),
            "severity": rng.choice(("SEV1", "low", None)),
        }
        if kind == "version":
            f["version"] = rng.choice(deps)["version"]
        elif kind == "commit":
            f["commit"] = sha(rng.choice(deps)["n"])
        elif kind == "id":
            f["deployment_id"] = rng.choice(deps)["id"]
        fails.append(f)
    return deps, fails


def _dep_body(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": d["id"],
        "project": "shop",
        "environment": d["env"],
        "started_at": _iso(d["minute"] - 1),
        "finished_at": _iso(d["minute"]),
        "version": d["version"],
        "state": d["state"],
        "commit_sha": sha(d["n"]),
        "repository": REPO,
    }


def _native_fail_body(f: dict[str, Any]) -> dict[str, Any]:
    b: dict[str, Any] = {
        "id": f["id"],
        "projects": f["projects"],
        "environment": f["env"],
        "started_at": _iso(f["start"]),
    }
    if f["duration"] is not None:
        b["finished_at"] = _iso(f["start"] + f["duration"])
    if f["kind"] == "version":
        b["version"] = f["version"]
    elif f["kind"] == "commit":
        b["commit_sha"] = f["commit"]
        b["repository"] = REPO
    elif f["kind"] == "id":
        b["deployment_id"] = f["deployment_id"]
    if f["name"]:
        b["name"] = f["name"]
    if f["severity"]:
        b["severity"] = f["severity"]
    return b


def _dd_fail_body(f: dict[str, Any]) -> dict[str, Any]:
    a: dict[str, Any] = {"id": f["id"], "services": f["projects"], "env": f["env"], "started_at": _unix(f["start"])}
    if f["duration"] is not None:
        a["finished_at"] = _unix(f["start"] + f["duration"])
    if f["kind"] == "version":
        a["version"] = f["version"]
    elif f["kind"] == "commit":
        a["git"] = {"commit_sha": f["commit"], "repository_url": f"https://github.com/{REPO}"}
    if f["name"]:
        a["name"] = f["name"]
    if f["severity"]:
        a["severity"] = f["severity"]
    return {"data": {"attributes": a}}


# --- routes --------------------------------------------------------------------------------------------------
def _create_dep(api: Api, d: dict[str, Any], *, space: str, key: str) -> None:
    r = api.call("POST", DEPS, path_params={"spaceId": space}, body=_dep_body(d), key=key)
    assert r.status in (200, 201), r.body


def _native_fail(api: Api, f: dict[str, Any], *, space: str, key: str) -> Any:
    r = api.call("POST", FAILS, path_params={"spaceId": space}, body=_native_fail_body(f), key=key)
    assert r.status in (200, 201), (r.status, r.body)
    return r.body


def _dd_fail(api: Api, f: dict[str, Any], *, key: str) -> Any:
    r = api.call("POST", DD_FAILURE, body=_dd_fail_body(f), headers={"DD-API-KEY": key})
    assert r.status == 200, (r.status, r.body)
    return r.body


def _native_delete(api: Api, failure_id: str, *, space: str, key: str) -> None:
    r = api.call("DELETE", FAIL, path_params={"spaceId": space, "failureId": failure_id}, key=key)
    assert r.status == 204, (r.status, r.body)


def _dd_delete(api: Api, failure_id: str, *, key: str) -> None:
    r = api.call("DELETE", DD_DELETE_FAILURE, path_params={"failure_id": failure_id}, headers={"DD-API-KEY": key})
    assert r.status == 202, (r.status, r.body)


_FIG = ("change_failure", "change_failure_rule", "change_failure_cause", "change_failure_reasons", "rework")


def _numbers(api: Api, deps: list[dict[str, Any]], *, space: str, key: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for d in deps:
        r = api.call("GET", ONE, path_params={"spaceId": space, "deploymentId": d["id"]}, key=key)
        assert r.status == 200, r.body
        figures = r.body.get("figures") or {}
        found[d["id"]] = {k: figures.get(k) for k in _FIG}
    for env in ("production", "staging"):
        r = api.call(
            "GET", SUMMARY, path_params={"spaceId": space}, query={**SUMMARY_RANGE, "environment": env}, key=key
        )
        assert r.status == 200, r.body
        found[f"summary:{env}"] = {k: r.body[k] for k in ("change_failure_rate", "time_to_restore", "recovery_time")}
        for metric in ("change_failure_rate", "time_to_restore_service"):
            q = {"metric": metric, "start_date": "2024-02-29", "end_date": "2024-03-02", "environment": env}
            r = api.call("GET", METRICS, path_params={"spaceId": space}, query=q, key=key)
            assert r.status == 200, r.body
            found[f"metrics:{metric}:{env}"] = r.body
    return found


def _diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return [f"{k}: {a.get(k)} != {b.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


# --- property: Datadog and native failures give the same numbers --------------------------------------------
@pytest.mark.parametrize("seed", seeds([1, 2, 3]))
def test_native_and_datadog_failures_give_the_same_numbers(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str, seed: int
) -> None:
    rng = random.Random(seed)
    deps, fails = _random_history(rng)
    clock.now = BASE + timedelta(hours=8)
    for space, key in ((SPACE, ADMIN_KEY), (OTHER_SPACE, OTHER_KEY)):
        for d in deps:
            _create_dep(api, d, space=space, key=key)
    for f in fails:
        _native_fail(api, f, space=SPACE, key=ADMIN_KEY)
        _dd_fail(api, f, key=OTHER_KEY)
    settle(aws, clock, lambda_context)
    native = _numbers(api, deps, space=SPACE, key=ADMIN_KEY)
    datadog = _numbers(api, deps, space=OTHER_SPACE, key=OTHER_KEY)
    assert not _diff(native, datadog), f"seed {seed}: {fails}\n" + "\n".join(_diff(native, datadog))


# --- property: delete then re-create = never deleted; order of arrival does not matter ----------------------
@pytest.mark.parametrize("seed", seeds([11, 12, 13]))
def test_delete_then_recreate_and_reordering_give_the_numbers_of_a_fresh_ingest(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str, seed: int
) -> None:
    rng = random.Random(seed)
    deps, fails = _random_history(rng, by_id=True)
    clock.now = BASE + timedelta(hours=8)
    # space B: fresh ingest, deployments first, then failures
    for d in deps:
        _create_dep(api, d, space=OTHER_SPACE, key=OTHER_KEY)
    for f in fails:
        _native_fail(api, f, space=OTHER_SPACE, key=OTHER_KEY)
    # space A: failures first (random order), deployments in a random order, recompute in between,
    # then delete some failures (either route), recompute, re-create them (the other dialect's route
    # would be another request: re-create natively), recompute
    order = fails[:]
    rng.shuffle(order)
    for f in order:
        if f["kind"] != "id":
            _native_fail(api, f, space=SPACE, key=ADMIN_KEY)
    settle(aws, clock, lambda_context, rounds=1)
    shuffled = deps[:]
    rng.shuffle(shuffled)
    for d in shuffled:
        _create_dep(api, d, space=SPACE, key=ADMIN_KEY)
    for f in order:
        if f["kind"] == "id":
            _native_fail(api, f, space=SPACE, key=ADMIN_KEY)
    settle(aws, clock, lambda_context, rounds=1)
    gone = [f for f in fails if rng.random() < 0.6] or fails[:1]
    for f in gone:
        if rng.random() < 0.5:
            _native_delete(api, f["id"], space=SPACE, key=ADMIN_KEY)
        else:
            _dd_delete(api, f["id"], key=ADMIN_KEY)
    settle(aws, clock, lambda_context, rounds=1)
    for f in gone:
        _native_fail(api, f, space=SPACE, key=ADMIN_KEY)
    settle(aws, clock, lambda_context)
    settle_b = _numbers(api, deps, space=OTHER_SPACE, key=OTHER_KEY)
    got = _numbers(api, deps, space=SPACE, key=ADMIN_KEY)
    assert not _diff(got, settle_b), f"seed {seed}: {fails}\n" + "\n".join(_diff(got, settle_b))


# --- oracle: /summary's time_to_restore from what the lists show --------------------------------------------
@pytest.mark.parametrize("seed", seeds([21, 22]))
def test_summary_time_to_restore_matches_an_oracle_over_the_listed_failures(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, seed: int
) -> None:
    rng = random.Random(seed)
    deps, fails = _random_history(rng)
    clock.now = BASE + timedelta(hours=8)
    for d in deps:
        _create_dep(api, d, space=SPACE, key=ADMIN_KEY)
    for f in fails:
        if rng.random() < 0.5:
            _native_fail(api, f, space=SPACE, key=ADMIN_KEY)
        else:
            _dd_fail(api, f, key=ADMIN_KEY)
    settle(aws, clock, lambda_context)
    listed: list[dict[str, Any]] = []
    cursor = None
    while True:
        q = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        r = api.call("GET", FAILS, path_params={"spaceId": SPACE}, query=q, key=ADMIN_KEY)
        assert r.status == 200, r.body
        listed.extend(r.body["items"])
        cursor = r.body["next_cursor"]
        if not cursor:
            break
    assert sorted(i["id"] for i in listed) == sorted(f["id"] for f in fails)
    starts = [i["started_at"] for i in listed]
    assert starts == sorted(starts, reverse=True), "newest start first"
    frm, to = "2024-03-01T09:00:00Z", "2024-03-01T11:30:00Z"

    def parse(s: str) -> datetime:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))

    for env in ("production", "staging"):
        durations = [
            (parse(i["finished_at"]) - parse(i["started_at"])).total_seconds()
            for i in listed
            if i["finished_at"] and i["environment"] == env and parse(frm) <= parse(i["started_at"]) < parse(to)
        ]
        r = api.call(
            "GET",
            SUMMARY,
            path_params={"spaceId": SPACE},
            query={"from": frm, "to": to, "environment": env},
            key=ADMIN_KEY,
        )
        assert r.status == 200, r.body
        ttr = r.body["time_to_restore"]
        assert ttr["count"] == len(durations), (env, ttr, durations)
        assert ttr["median_seconds"] == (statistics.median(durations) if durations else None), (env, ttr, durations)


# --- oracle: rule 5 change failure rate ----------------------------------------------------------------------
@pytest.mark.parametrize("seed", seeds([31, 32, 33]))
def test_rule_5_change_failures_match_an_oracle(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, seed: int
) -> None:
    rng = random.Random(seed)
    clock.now = BASE + timedelta(hours=20)
    minutes = sorted(rng.sample(range(0, 600), rng.randint(3, 8)))
    deps = [
        {"id": f"dep-rule5-{i:02d}", "minute": m, "state": rng.choice(("Success", "Success", "Failed"))}
        for i, m in enumerate(minutes)
    ]
    window_h = rng.choice((1.0, 2.0, 24.0))
    r = api.call(
        "PATCH",
        "/api/{spaceId}/settings",
        path_params={"spaceId": SPACE},
        body={"failure_window_hours": window_h},
        key=ADMIN_KEY,
    )
    assert r.status == 200, r.body
    for d in deps:
        body = {
            "id": d["id"],
            "project": "shop",
            "environment": "production",
            "finished_at": _iso(d["minute"]),
            "version": f"1.{d['minute']}",
            "state": d["state"],
        }
        rr = api.call("POST", DEPS, path_params={"spaceId": SPACE}, body=body, key=ADMIN_KEY)
        assert rr.status == 201, rr.body
    fail_starts = [rng.randint(-30, 700) for _ in range(rng.randint(1, 4))]
    for j, s in enumerate(fail_starts):
        f = {
            "id": f"failure-rule5-x-{j:02d}",
            "projects": ["shop"],
            "env": "production",
            "start": s,
            "duration": 10,
            "kind": "none",
            "name": None,
            "severity": None,
        }
        if j % 2:
            _dd_fail(api, f, key=ADMIN_KEY)
        else:
            _native_fail(api, f, space=SPACE, key=ADMIN_KEY)
    settle(aws, clock, lambda_context)
    charged: set[str] = {d["id"] for d in deps if d["state"] == "Failed"}
    succ = [d for d in deps if d["state"] == "Success"]
    for s in fail_starts:
        before = [d for d in succ if d["minute"] <= s]
        if before and (s - before[-1]["minute"]) <= window_h * 60:
            charged.add(before[-1]["id"])
    got = set()
    for d in deps:
        rr = api.call("GET", ONE, path_params={"spaceId": SPACE, "deploymentId": d["id"]}, key=ADMIN_KEY)
        if rr.body["figures"]["change_failure"]:
            got.add(d["id"])
    assert got == charged, (deps, fail_starts, window_h)
    r = api.call(
        "GET",
        SUMMARY,
        path_params={"spaceId": SPACE},
        query={**SUMMARY_RANGE, "environment": "production"},
        key=ADMIN_KEY,
    )
    assert r.body["change_failure_rate"]["change_failures"] == len(charged)
    assert r.body["change_failure_rate"]["deployments"] == len(deps)


# --- hostile input: 4xx at the door, never 5xx or a stored event ---------------------------------------------
def _native_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "project": "shop",
        "environment": "production",
        "started_at": "2024-03-01T10:00:00Z",
        "finished_at": "2024-03-01T10:30:00Z",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(
    "overrides",
    [
        {"started_at": "2024-03-01T11:00:00Z"},  # after finish
        {"started_at": "2024-03-01T10:00:00"},  # no offset
        {"started_at": "2024-13-01T00:00:00Z"},
        {"started_at": True},
        {"started_at": 10**30},
        {"started_at": ""},
        {"started_at": "2100-01-02T00:00:00Z", "finished_at": None},
        {"started_at": -5},
        {"finished_at": "tomorrow"},
        {"finished_at": "2024-03-01T09:59:59.999Z"},
        {"name": "x" * 201},
        {"project": None, "projects": [f"p{i}" for i in range(101)]},
        {"project": "   "},
        {"environment": ""},
        {"deployment_id": "no-such-deployment"},
        {"commit_sha": "not-a-sha"},
        {"tags": ["novalue"]},
        {"unknown_field": 1},
        {"projects": "shop"},
        {"id": "x" * 129},
        {"id": "a/b"},
    ],
)
def test_bad_native_failures_are_400_and_store_nothing(api: Api, overrides: dict[str, Any]) -> None:
    r = api.call("POST", FAILS, path_params={"spaceId": SPACE}, body=_native_body(**overrides), key=ADMIN_KEY)
    assert r.status == 400, (r.status, r.body)
    listed = api.call("GET", FAILS, path_params={"spaceId": SPACE}, key=ADMIN_KEY)
    assert listed.status == 200 and listed.body["items"] == [], listed.body


def _dd_body(**overrides: Any) -> dict[str, Any]:
    a: dict[str, Any] = {"services": ["shop"], "env": "production", "started_at": _unix(120), "finished_at": _unix(150)}
    a.update(overrides)
    return {"data": {"attributes": {k: v for k, v in a.items() if v is not None}}}


@pytest.mark.parametrize(
    "overrides",
    [
        {"started_at": _unix(151)},
        {"started_at": "2024-03-01T10:00:00Z"},
        {"started_at": -1},
        {"started_at": 1.5e9},
        {"started_at": True},
        {"started_at": 2**70},
        {"finished_at": "soon"},
        {"services": []},
        {"services": [" "]},
        {"services": None, "service": ""},
        {"env": ""},
        {"git": {"commit_sha": sha(1)}},
        {"git": {"commit_sha": "zz", "repository_url": "https://github.com/acme/shop"}},
        {"id": "short"},
        {"name": "n" * 201},
        {"custom_tags": ["novalue"]},
    ],
)
def test_bad_datadog_failures_are_400_and_store_nothing(api: Api, overrides: dict[str, Any]) -> None:
    r = api.call("POST", DD_FAILURE, body=_dd_body(**overrides), headers={"DD-API-KEY": ADMIN_KEY})
    assert r.status == 400, (r.status, r.body)
    assert r.body["errors"] and r.body["errors"][0]["status"] == "400", r.body
    listed = api.call("GET", FAILS, path_params={"spaceId": SPACE}, key=ADMIN_KEY)
    assert listed.status == 200 and listed.body["items"] == [], listed.body


def test_start_equal_to_finish_is_a_zero_time_to_restore(api: Api, clock: Clock) -> None:
    clock.now = BASE + timedelta(hours=8)
    r = api.call(
        "POST",
        FAILS,
        path_params={"spaceId": SPACE},
        body=_native_body(finished_at="2024-03-01T10:00:00Z"),
        key=ADMIN_KEY,
    )
    assert r.status == 201, r.body
    d = api.call("POST", DD_FAILURE, body=_dd_body(finished_at=_unix(120)), headers={"DD-API-KEY": ADMIN_KEY})
    assert d.status == 200, d.body
    s = api.call("GET", SUMMARY, path_params={"spaceId": SPACE}, query=SUMMARY_RANGE, key=ADMIN_KEY)
    assert s.body["time_to_restore"]["count"] == 2 and s.body["time_to_restore"]["median_seconds"] == 0, s.body


def test_unicode_and_large_fields_round_trip_in_both_dialects(api: Api) -> None:
    projects = [f"☕ serviço {i} 𝄞" for i in range(100)]
    name = "𝄞" * 200
    body = _native_body(
        project=None,
        projects=projects,
        name=name,
        severity="Ünïcode ✓",
        environment="prød ☁",
        version="  ",
        tags=[f"k{i}:v ☕ {i}" for i in range(100)],
        id="unicode-failure-0001",
    )
    r = api.call("POST", FAILS, path_params={"spaceId": SPACE}, body=body, key=ADMIN_KEY)
    assert r.status == 201, r.body
    assert r.body["projects"] == projects and r.body["name"] == name and r.body["environment"] == "prød ☁"
    assert r.body["version"] is None  # a blank version is no version (METRICS §1)
    again = api.call("POST", FAILS, path_params={"spaceId": SPACE}, body=body, key=ADMIN_KEY)
    assert again.status == 200, again.body
    g = api.call(
        "GET", DD_GET_FAILURE, path_params={"failure_id": "unicode-failure-0001"}, headers={"DD-API-KEY": ADMIN_KEY}
    )
    assert g.status == 200, g.body
    attrs = g.body["data"]["attributes"]
    assert attrs["services"] == projects and attrs["name"] == name and attrs["env"] == "prød ☁"
    assert "version" not in attrs
    q = {"data": {"attributes": {"query": 'service:"☕ serviço 57 𝄞"', "limit": 10}}}
    lst = api.call("POST", DD_LIST_FAILURES, body=q, headers={"DD-API-KEY": ADMIN_KEY})
    assert lst.status == 200, lst.body
    assert [e["id"] for e in lst.body["data"]] == ["unicode-failure-0001"]
    # Datadog: a blank version is no version either
    d = api.call(
        "POST", DD_FAILURE, body=_dd_body(version="   ", id="dd-blank-version-001"), headers={"DD-API-KEY": ADMIN_KEY}
    )
    assert d.status == 200, d.body
    g = api.call("GET", FAIL, path_params={"spaceId": SPACE, "failureId": "dd-blank-version-001"}, key=ADMIN_KEY)
    assert g.status == 200 and g.body["version"] is None, g.body


@pytest.mark.parametrize("failure_id", ["x" * 138, "x" * 139, "../../etc", "%00", "ünï", " "])
def test_odd_failure_ids_in_paths_are_4xx(api: Api, failure_id: str) -> None:
    for method in ("GET", "DELETE"):
        r = api.call(method, FAIL, path_params={"spaceId": SPACE, "failureId": failure_id}, key=ADMIN_KEY)
        assert r.status in (400, 404), (method, r.status, r.body)
    r = api.call("GET", DD_GET_FAILURE, path_params={"failure_id": failure_id}, headers={"DD-API-KEY": ADMIN_KEY})
    assert r.status in (400, 404), (r.status, r.body)
    r = api.call("DELETE", DD_DELETE_FAILURE, path_params={"failure_id": failure_id}, headers={"DD-API-KEY": ADMIN_KEY})
    assert r.status in (400, 404), (r.status, r.body)


# --- ids across spaces, deletes ------------------------------------------------------------------------------
def test_same_failure_id_in_two_spaces_stays_apart(api: Api, other_space: str) -> None:
    fid = "shared-failure-id-0001"
    a = api.call("POST", FAILS, path_params={"spaceId": SPACE}, body=_native_body(id=fid, name="A"), key=ADMIN_KEY)
    b = api.call("POST", DD_FAILURE, body=_dd_body(id=fid, name="B"), headers={"DD-API-KEY": OTHER_KEY})
    assert (a.status, b.status) == (201, 200), (a.body, b.body)
    ga = api.call("GET", FAIL, path_params={"spaceId": SPACE, "failureId": fid}, key=ADMIN_KEY)
    gb = api.call("GET", DD_GET_FAILURE, path_params={"failure_id": fid}, headers={"DD-API-KEY": OTHER_KEY})
    assert ga.body["name"] == "A" and gb.body["data"]["attributes"]["name"] == "B"
    # a key of space 1 cannot read or delete space 2's through the other space's path
    x = api.call("GET", FAIL, path_params={"spaceId": OTHER_SPACE, "failureId": fid}, key=ADMIN_KEY)
    assert x.status in (403, 404) or x.body.get("name") == "A", x.body
    _dd_delete(api, fid, key=OTHER_KEY)
    ga = api.call("GET", FAIL, path_params={"spaceId": SPACE, "failureId": fid}, key=ADMIN_KEY)
    assert ga.status == 200 and ga.body["name"] == "A"
    gb = api.call("GET", DD_GET_FAILURE, path_params={"failure_id": fid}, headers={"DD-API-KEY": OTHER_KEY})
    assert gb.status == 404, gb.body
    again = api.call("DELETE", DD_DELETE_FAILURE, path_params={"failure_id": fid}, headers={"DD-API-KEY": OTHER_KEY})
    assert again.status == 404, again.body
    _native_delete(api, fid, space=SPACE, key=ADMIN_KEY)
    twice = api.call("DELETE", FAIL, path_params={"spaceId": SPACE, "failureId": fid}, key=ADMIN_KEY)
    assert twice.status == 404, twice.body
    assert api.call("GET", FAILS, path_params={"spaceId": SPACE}, key=ADMIN_KEY).body["items"] == []


def test_deployment_id_of_another_space_is_refused(api: Api, other_space: str) -> None:
    r = api.call(
        "POST",
        DEPS,
        path_params={"spaceId": OTHER_SPACE},
        body={
            "id": "dep-other-0001",
            "project": "shop",
            "environment": "production",
            "finished_at": "2024-03-01T09:00:00Z",
        },
        key=OTHER_KEY,
    )
    assert r.status == 201, r.body
    f = api.call(
        "POST", FAILS, path_params={"spaceId": SPACE}, body=_native_body(deployment_id="dep-other-0001"), key=ADMIN_KEY
    )
    assert f.status == 400, f.body


# --- rule 4 by deployment id: across projects, after delete ---------------------------------------------------
def _dep(api: Api, did: str, project: str, minute: int, **extra: Any) -> None:
    body = {
        "id": did,
        "project": project,
        "environment": "production",
        "finished_at": _iso(minute),
        "version": f"{project}-{minute}",
        **extra,
    }
    r = api.call("POST", DEPS, path_params={"spaceId": SPACE}, body=body, key=ADMIN_KEY)
    assert r.status == 201, r.body


def _fig(api: Api, did: str) -> dict[str, Any]:
    r = api.call("GET", ONE, path_params={"spaceId": SPACE, "deploymentId": did}, key=ADMIN_KEY)
    assert r.status == 200, r.body
    return r.body["figures"] or {}


def test_a_failure_naming_a_deployment_of_another_project_charges_it_until_deleted(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    clock.now = BASE + timedelta(hours=8)
    _dep(api, "dep-cart-0001", "cart", 10)
    _dep(api, "dep-shop-0001", "shop", 20)
    settle(aws, clock, lambda_context, rounds=1)
    f = api.call(
        "POST",
        FAILS,
        path_params={"spaceId": SPACE},
        body=_native_body(id="fail-x-0001", deployment_id="dep-cart-0001"),
        key=ADMIN_KEY,
    )
    assert f.status == 201, f.body
    settle(aws, clock, lambda_context, rounds=1)
    assert _fig(api, "dep-cart-0001")["change_failure"] is True
    assert _fig(api, "dep-cart-0001")["change_failure_rule"] == 4
    assert _fig(api, "dep-shop-0001")["change_failure"] is False  # rule 5 is for failures naming no cause
    _native_delete(api, "fail-x-0001", space=SPACE, key=ADMIN_KEY)
    settle(aws, clock, lambda_context, rounds=1)
    assert _fig(api, "dep-cart-0001")["change_failure"] is False


def test_a_failure_whose_named_deployment_is_removed_still_counts_as_an_incident(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    clock.now = BASE + timedelta(hours=8)
    _dep(api, "dep-shop-0001", "shop", 10)
    _dep(api, "dep-shop-0002", "shop", 20)
    f = api.call(
        "POST",
        FAILS,
        path_params={"spaceId": SPACE},
        body=_native_body(id="fail-x-0002", deployment_id="dep-shop-0002"),
        key=ADMIN_KEY,
    )
    assert f.status == 201, f.body
    settle(aws, clock, lambda_context, rounds=1)
    assert _fig(api, "dep-shop-0002")["change_failure"] is True
    r = api.call("DELETE", ONE, path_params={"spaceId": SPACE, "deploymentId": "dep-shop-0002"}, key=ADMIN_KEY)
    assert r.status == 204, r.body
    settle(aws, clock, lambda_context, rounds=1)
    g = api.call("GET", FAIL, path_params={"spaceId": SPACE, "failureId": "fail-x-0002"}, key=ADMIN_KEY)
    assert g.status == 200, g.body
    assert _fig(api, "dep-shop-0001")["change_failure"] is False  # it charges no deployment
    s = api.call("GET", SUMMARY, path_params={"spaceId": SPACE}, query=SUMMARY_RANGE, key=ADMIN_KEY).body
    assert s["change_failure_rate"]["change_failures"] == 0 and s["change_failure_rate"]["deployments"] == 1, s
    assert s["time_to_restore"]["count"] == 1 and s["time_to_restore"]["median_seconds"] == 1800, s
    q = {"metric": "time_to_restore_service", "start_date": "2024-03-01", "end_date": "2024-03-02", "interval": "all"}
    m = api.call("GET", METRICS, path_params={"spaceId": SPACE}, query=q, key=ADMIN_KEY)
    assert m.status == 200, m.body
    assert [x["value"] for x in m.body] == [1800], m.body
    # the failure can still be deleted (its cause is gone) and then counts nowhere
    _native_delete(api, "fail-x-0002", space=SPACE, key=ADMIN_KEY)
    settle(aws, clock, lambda_context, rounds=1)
    s = api.call("GET", SUMMARY, path_params={"spaceId": SPACE}, query=SUMMARY_RANGE, key=ADMIN_KEY).body
    assert s["time_to_restore"]["count"] == 0, s


# --- GitLab-style metrics: a failure in the day it finished / started ---------------------------------------
def test_dora_metrics_count_failures_on_the_right_days(api: Api, aws: Aws, clock: Clock, lambda_context: Any) -> None:
    clock.now = datetime(2024, 3, 2, 12, 0, tzinfo=UTC)
    for i, day in enumerate(("2024-02-29T20:00:00Z", "2024-03-01T09:00:00Z")):
        r = api.call(
            "POST",
            DEPS,
            path_params={"spaceId": SPACE},
            body={
                "id": f"dep-days-000{i}",
                "project": "shop",
                "environment": "production",
                "finished_at": day,
                "version": f"v{i}",
            },
            key=ADMIN_KEY,
        )
        assert r.status == 201, r.body
    # started Feb 29, finished Mar 1: TTR counts Mar 1, the failure counts Feb 29 in change_failure_rate
    a = _native_body(id="fail-days-0001", started_at="2024-02-29T23:30:00Z", finished_at="2024-03-01T00:30:00Z")
    assert api.call("POST", FAILS, path_params={"spaceId": SPACE}, body=a, key=ADMIN_KEY).status == 201
    # open one on Mar 1 (Datadog)
    b = api.call(
        "POST",
        DD_FAILURE,
        body={
            "data": {
                "attributes": {
                    "services": ["shop"],
                    "env": "production",
                    "started_at": int(datetime(2024, 3, 1, 10, tzinfo=UTC).timestamp()),
                    "id": "fail-days-open-0001",
                }
            }
        },
        headers={"DD-API-KEY": ADMIN_KEY},
    )
    assert b.status == 200, b.body
    settle(aws, clock, lambda_context)
    base = {"start_date": "2024-02-29", "end_date": "2024-03-01", "interval": "daily", "environment": "production"}
    ttr = api.call(
        "GET",
        METRICS,
        path_params={"spaceId": SPACE},
        query={**base, "metric": "time_to_restore_service"},
        key=ADMIN_KEY,
    )
    assert ttr.status == 200, ttr.body
    assert ttr.body == [{"date": "2024-02-29", "value": None}, {"date": "2024-03-01", "value": 3600.0}] or [
        (x["date"], x["value"]) for x in ttr.body
    ] == [("2024-02-29", None), ("2024-03-01", 3600)], ttr.body
    cfr = api.call(
        "GET", METRICS, path_params={"spaceId": SPACE}, query={**base, "metric": "change_failure_rate"}, key=ADMIN_KEY
    )
    assert [(x["date"], x["value"]) for x in cfr.body] == [("2024-02-29", 1.0), ("2024-03-01", 1.0)], cfr.body


# --- Datadog list paging ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sort", ["started_at", "-started_at", "finished_at"])
def test_datadog_failure_list_pages_every_event_once_in_order(api: Api, sort: str) -> None:
    starts = [100, 100, 100, 50, 200, 150, 100, 10]
    for i, s in enumerate(starts):
        services = ["shop"] if i % 2 else ["cart", "shop"]
        body = _dd_body(id=f"dd-page-failure-{i:03d}", started_at=_unix(s), finished_at=_unix(s + 5), services=services)
        assert api.call("POST", DD_FAILURE, body=body, headers={"DD-API-KEY": ADMIN_KEY}).status == 200
    seen: list[tuple[str, str]] = []
    cursor = None
    for _ in range(20):
        attrs: dict[str, Any] = {"limit": 3, "sort": sort, "query": "service:shop", "from": _iso(50), "to": _iso(150)}
        if cursor:
            attrs["page"] = {"cursor": cursor}
        r = api.call(
            "POST",
            DD_LIST_FAILURES,
            body={"data": {"type": "dora_failures_list_request", "attributes": attrs}},
            headers={"DD-API-KEY": ADMIN_KEY},
        )
        assert r.status == 200, r.body
        seen.extend((e["id"], e["attributes"]["started_at"]) for e in r.body["data"])
        cursor = (r.body.get("meta") or {}).get("page", {}).get("after")
        if not cursor:
            break
    ids = [i for i, _ in seen]
    expected = {f"dd-page-failure-{i:03d}" for i, s in enumerate(starts) if 50 <= s <= 150}
    assert len(ids) == len(set(ids)) and set(ids) == expected, seen
    times = [t for _, t in seen]
    assert times == sorted(times, reverse=sort.startswith("-")), seen


# --- idempotency as resolved --------------------------------------------------------------------------------------
def test_a_retry_naming_what_was_resolved_is_the_same_request(api: Api) -> None:
    first = api.call(
        "POST",
        FAILS,
        path_params={"spaceId": SPACE},
        body=_native_body(id="idem-failure-0001", environment=None),
        key=ADMIN_KEY,
    )
    assert first.status == 201, first.body
    for variant in (
        _native_body(id="idem-failure-0001"),  # the default environment named
        _native_body(id="idem-failure-0001", environment=None, project=None, projects=["shop"]),
        _native_body(
            id="idem-failure-0001", environment=None, started_at=_unix(120), finished_at="2024-03-01T12:30:00+02:00"
        ),
    ):
        again = api.call("POST", FAILS, path_params={"spaceId": SPACE}, body=variant, key=ADMIN_KEY)
        assert again.status == 200, (variant, again.status, again.body)
        assert again.body == first.body
    d1 = api.call(
        "POST", DD_FAILURE, body=_dd_body(id="idem-dd-failure-01", env=None), headers={"DD-API-KEY": ADMIN_KEY}
    )
    d2 = api.call("POST", DD_FAILURE, body=_dd_body(id="idem-dd-failure-01"), headers={"DD-API-KEY": ADMIN_KEY})
    d3 = api.call(
        "POST",
        DD_FAILURE,
        body=_dd_body(id="idem-dd-failure-01", services=None, service="shop"),
        headers={"DD-API-KEY": ADMIN_KEY},
    )
    d4 = api.call(
        "POST",
        DD_FAILURE,
        body=_dd_body(id="idem-dd-failure-01", started_at=_unix(120) * 1000),
        headers={"DD-API-KEY": ADMIN_KEY},
    )
    assert [d.status for d in (d1, d2, d3, d4)] == [200] * 4, [d.body for d in (d1, d2, d3, d4)]
    listed = api.call("GET", FAILS, path_params={"spaceId": SPACE}, key=ADMIN_KEY).body["items"]
    assert sorted(i["id"] for i in listed) == ["idem-dd-failure-01", "idem-failure-0001"]


def test_a_deleted_failure_id_can_be_sent_again_with_other_values(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """The CLI's resolve: delete the open event and record the resolved one under the same id."""
    clock.now = BASE + timedelta(hours=8)
    fid = "resolve-failure-0001"
    opened = api.call(
        "POST", FAILS, path_params={"spaceId": SPACE}, body=_native_body(id=fid, finished_at=None), key=ADMIN_KEY
    )
    assert opened.status == 201, opened.body
    _dep(api, "dep-shop-0001", "shop", 100)
    settle(aws, clock, lambda_context, rounds=1)
    s = api.call("GET", SUMMARY, path_params={"spaceId": SPACE}, query=SUMMARY_RANGE, key=ADMIN_KEY).body
    assert s["time_to_restore"]["count"] == 0
    _native_delete(api, fid, space=SPACE, key=ADMIN_KEY)
    resolved = api.call("POST", FAILS, path_params={"spaceId": SPACE}, body=_native_body(id=fid), key=ADMIN_KEY)
    assert resolved.status == 201, resolved.body
    settle(aws, clock, lambda_context, rounds=1)
    s = api.call("GET", SUMMARY, path_params={"spaceId": SPACE}, query=SUMMARY_RANGE, key=ADMIN_KEY).body
    assert (s["time_to_restore"]["count"], s["time_to_restore"]["median_seconds"]) == (1, 1800), s
    q = {"metric": "time_to_restore_service", "start_date": "2024-03-01", "end_date": "2024-03-02", "interval": "all"}
    m = api.call("GET", METRICS, path_params={"spaceId": SPACE}, query=q, key=ADMIN_KEY)
    assert [x["value"] for x in m.body] == [1800], m.body


# --- native list filters and bounds --------------------------------------------------------------------------------
def test_native_list_filters_bounds_and_multi_project_events(api: Api) -> None:
    rows = [
        ("f-a", ["shop"], "production", "2024-03-01T10:00:00.000Z"),
        ("f-b", ["cart", "shop"], "production", "2024-03-01T10:00:00.500Z"),
        ("f-c", ["cart"], "staging", "2024-03-01T10:00:01.000Z"),
        ("f-d", ["shop"], "staging", "2024-03-01T09:59:59.999Z"),
    ]
    for fid, projects, env, start in rows:
        r = api.call(
            "POST",
            FAILS,
            path_params={"spaceId": SPACE},
            body=_native_body(
                id=fid, project=None, projects=projects, environment=env, started_at=start, finished_at=None
            ),
            key=ADMIN_KEY,
        )
        assert r.status == 201, r.body

    def ids(**q: str) -> list[str]:
        r = api.call("GET", FAILS, path_params={"spaceId": SPACE}, query=q, key=ADMIN_KEY)
        assert r.status == 200, r.body
        return [i["id"] for i in r.body["items"]]

    assert ids() == ["f-c", "f-b", "f-a", "f-d"]
    assert ids(project="shop") == ["f-b", "f-a", "f-d"]
    assert ids(project="CART") == ["f-c", "f-b"]
    assert ids(project="cart", environment="production") == ["f-b"]
    assert ids(project="nothing") == []
    assert ids(**{"from": "2024-03-01T10:00:00Z", "to": "2024-03-01T10:00:00.500Z"}) == ["f-b", "f-a"]
    assert ids(**{"from": "2024-03-01T10:00:00.001Z"}) == ["f-c", "f-b"]
    # paging one by one gives the same as one page
    seen, cursor = [], None
    for _ in range(10):
        q = {"limit": "1", "project": "shop", **({"cursor": cursor} if cursor else {})}
        r = api.call("GET", FAILS, path_params={"spaceId": SPACE}, query=q, key=ADMIN_KEY)
        assert r.status == 200, r.body
        seen += [i["id"] for i in r.body["items"]]
        cursor = r.body["next_cursor"]
        if not cursor:
            break
    assert seen == ["f-b", "f-a", "f-d"]


# --- Datadog list queries over failures ---------------------------------------------------------------------------
def test_datadog_failure_queries(api: Api, other_space: str) -> None:
    fs = [
        (
            "query-failure-0001",
            {
                "services": ["shop", "cart"],
                "name": "Zahlung fällt aus",
                "severity": "SEV1",
                "version": "1.2",
                "git": {"commit_sha": sha(3), "repository_url": "https://github.com/acme/shop"},
                "custom_tags": ["team:payments", "region:eu"],
            },
        ),
        (
            "query-failure-0002",
            {"services": ["cart"], "env": "staging", "severity": "low", "custom_tags": ["region:us"]},
        ),
        ("query-failure-0003", {"services": ["web"], "name": "web down"}),
    ]
    for i, (fid, attrs) in enumerate(fs):
        body = _dd_body(id=fid, started_at=_unix(100 + i), finished_at=_unix(200), **attrs)
        r = api.call("POST", DD_FAILURE, body=body, headers={"DD-API-KEY": ADMIN_KEY})
        assert r.status == 200, r.body

    def q(query: str) -> list[str]:
        r = api.call(
            "POST",
            DD_LIST_FAILURES,
            body={"data": {"attributes": {"query": query, "limit": 50, "sort": "started_at"}}},
            headers={"DD-API-KEY": ADMIN_KEY},
        )
        assert r.status == 200, (query, r.body)
        return [e["id"] for e in r.body["data"]]

    assert q("service:cart") == ["query-failure-0001", "query-failure-0002"]
    assert q("service:cart env:staging") == ["query-failure-0002"]
    assert q("-service:cart") == ["query-failure-0003"]
    assert q('name:"Zahlung fällt aus"') == ["query-failure-0001"]
    assert q("name:zahlung*") == ["query-failure-0001"]
    assert q("severity:(sev1 OR low)") == ["query-failure-0001", "query-failure-0002"]
    assert q("version:1.2") == ["query-failure-0001"]
    assert q(f"git.commit_sha:{sha(3)}") == ["query-failure-0001"]
    assert q("region:eu OR region:us") == ["query-failure-0001", "query-failure-0002"]
    assert q("service:nothing") == []
    g = api.call(
        "GET", DD_GET_FAILURE, path_params={"failure_id": "query-failure-0001"}, headers={"DD-API-KEY": ADMIN_KEY}
    )
    assert g.body["data"]["attributes"]["git"] == {"commit_sha": sha(3), "repository_url": "acme/shop"}, g.body
    assert g.body["data"]["attributes"]["started_at"] == "2024-03-01T09:40:00.000Z", g.body
    # a cursor of one space is refused in another
    r = api.call(
        "POST", DD_LIST_FAILURES, body={"data": {"attributes": {"limit": 1}}}, headers={"DD-API-KEY": ADMIN_KEY}
    )
    cursor = r.body["meta"]["page"]["after"]
    x = api.call(
        "POST",
        DD_LIST_FAILURES,
        body={"data": {"attributes": {"limit": 1, "page": {"cursor": cursor}}}},
        headers={"DD-API-KEY": OTHER_KEY},
    )
    assert x.status == 400, x.body
    for bad in (
        {"limit": 0},
        {"limit": 1001},
        {"sort": "name"},
        {"from": "yesterday"},
        {"query": "free text"},
        {"query": "service:(a"},
        {"page": {"cursor": "!!"}},
    ):
        r = api.call("POST", DD_LIST_FAILURES, body={"data": {"attributes": bad}}, headers={"DD-API-KEY": ADMIN_KEY})
        assert r.status == 400, (bad, r.status, r.body)


# --- tenants and two-project failures: counted once per (project, environment) ------------------------------------
def test_a_failure_counts_once_per_project_whatever_the_streams(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    clock.now = BASE + timedelta(hours=8)
    _dep(api, "dep-shop-t1-01", "shop", 10, tenant="t1")
    _dep(api, "dep-shop-t2-01", "shop", 11, tenant="t2")
    _dep(api, "dep-shop-no-01", "shop", 12)
    _dep(api, "dep-cart-no-01", "cart", 13)
    r = api.call(
        "POST",
        FAILS,
        path_params={"spaceId": SPACE},
        body=_native_body(id="fail-both-0001", project=None, projects=["shop", "cart"]),
        key=ADMIN_KEY,
    )
    assert r.status == 201, r.body
    settle(aws, clock, lambda_context)
    # rule 5: each stream's latest success within the window is charged
    assert all(
        _fig(api, d)["change_failure"] for d in ("dep-shop-t1-01", "dep-shop-t2-01", "dep-shop-no-01", "dep-cart-no-01")
    )
    s = api.call("GET", SUMMARY, path_params={"spaceId": SPACE}, query=SUMMARY_RANGE, key=ADMIN_KEY).body
    assert s["time_to_restore"]["count"] == 1, s  # one event
    base = {"start_date": "2024-03-01", "end_date": "2024-03-02", "interval": "all"}
    cfr = api.call(
        "GET", METRICS, path_params={"spaceId": SPACE}, query={**base, "metric": "change_failure_rate"}, key=ADMIN_KEY
    )
    assert [x["value"] for x in cfr.body] == [0.5], cfr.body  # two incidents (one per project) / four successes
    cfr = api.call(
        "GET",
        METRICS,
        path_params={"spaceId": SPACE},
        query={**base, "metric": "change_failure_rate", "project": "shop"},
        key=ADMIN_KEY,
    )
    assert [x["value"] for x in cfr.body] == [round(1 / 3, 4)] or [round(x["value"], 4) for x in cfr.body] == [
        round(1 / 3, 4)
    ], cfr.body
    cfr = api.call(
        "GET",
        METRICS,
        path_params={"spaceId": SPACE},
        query={**base, "metric": "change_failure_rate", "tenant": "t1"},
        key=ADMIN_KEY,
    )
    assert [x["value"] for x in cfr.body] == [1.0], cfr.body


# --- a read brings failure changes in at once (METRICS §8) ---------------------------------------------------------
@pytest.mark.parametrize("dialect", ["native", "datadog"])
def test_reads_count_a_failure_create_and_delete_without_waiting_for_the_schedule(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, dialect: str
) -> None:
    clock.now = BASE + timedelta(hours=8)
    _dep(api, "dep-shop-0001", "shop", 10)
    _dep(api, "dep-shop-0002", "shop", 60)
    settle(aws, clock, lambda_context, rounds=1)
    f = {
        "id": "fresh-failure-0001",
        "projects": ["shop"],
        "env": "production",
        "start": 70,
        "duration": 30,
        "kind": "none",
        "name": None,
        "severity": None,
    }
    if dialect == "native":
        _native_fail(api, f, space=SPACE, key=ADMIN_KEY)
    else:
        _dd_fail(api, f, key=ADMIN_KEY)
    s = api.call("GET", SUMMARY, path_params={"spaceId": SPACE}, query=SUMMARY_RANGE, key=ADMIN_KEY).body
    assert s["pending"] == 0, s
    assert s["change_failure_rate"]["change_failures"] == 1, s
    assert _fig(api, "dep-shop-0002")["change_failure_cause"] == "fresh-failure-0001"
    q = {"metric": "time_to_restore_service", "start_date": "2024-03-01", "end_date": "2024-03-02", "interval": "all"}
    m = api.call("GET", METRICS, path_params={"spaceId": SPACE}, query=q, key=ADMIN_KEY)
    assert [x["value"] for x in m.body] == [1800], m.body
    if dialect == "native":
        _native_delete(api, "fresh-failure-0001", space=SPACE, key=ADMIN_KEY)
    else:
        _dd_delete(api, "fresh-failure-0001", key=ADMIN_KEY)
    s = api.call("GET", SUMMARY, path_params={"spaceId": SPACE}, query=SUMMARY_RANGE, key=ADMIN_KEY).body
    assert s["change_failure_rate"]["change_failures"] == 0 and s["time_to_restore"]["count"] == 0, s
    m = api.call("GET", METRICS, path_params={"spaceId": SPACE}, query=q, key=ADMIN_KEY)
    assert [x["value"] for x in m.body] == [None], m.body
    assert _fig(api, "dep-shop-0002")["change_failure"] is False


def test_a_failure_naming_a_hundred_projects_with_streams_is_stored_and_removed(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    clock.now = BASE + timedelta(hours=8)
    projects = [f"svc{i:03d}" for i in range(100)]
    for i, p in enumerate(projects):
        _dep(api, f"dep-{p}-0001", p, 10 + i % 50)
    _dep(api, "dep-extra-0001", "extra", 5)
    settle(aws, clock, lambda_context, rounds=1)
    body = _native_body(
        id="hundred-failure-01",
        project=None,
        projects=projects,
        deployment_id="dep-extra-0001",
        started_at=_iso(61),
        finished_at=_iso(91),
    )
    r = api.call("POST", FAILS, path_params={"spaceId": SPACE}, body=body, key=ADMIN_KEY)
    assert r.status == 201, r.body
    settle(aws, clock, lambda_context, rounds=1)
    assert _fig(api, "dep-extra-0001")["change_failure"] is True
    _dd_delete(api, "hundred-failure-01", key=ADMIN_KEY)
    settle(aws, clock, lambda_context, rounds=1)
    assert _fig(api, "dep-extra-0001")["change_failure"] is False
    assert _fig(api, "dep-svc099-0001")["change_failure"] is False


# --- Octopus reports: a failure counts for the projects the report has in the failure's environment ---------------
def _report_series(api: Api, split: str) -> dict[str, int]:
    r = api.call(
        "POST",
        "/api/{spaceId}/insights/reports",
        path_params={"spaceId": SPACE},
        body={"Name": f"All {split}", "TimeZone": "UTC"},
        key=ADMIN_KEY,
    )
    assert r.status == 201, r.body
    m = api.call(
        "GET",
        "/api/{spaceId}/insights/reports/{reportId}/metrics",
        path_params={"spaceId": SPACE, "reportId": r.body["Id"]},
        query={"timeRange": "LastMonth", "granularity": "Monthly", "split": split},
        key=ADMIN_KEY,
    )
    assert m.status == 200, m.body
    return {s["Name"]: sum(i["TimeToRestore"]["Count"] for i in s["Intervals"]) for s in m.body["Series"]}


def test_report_project_split_counts_a_failure_only_for_projects_streamed_in_its_environment(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    clock.now = BASE + timedelta(hours=8)
    _dep(api, "dep-shop-prod-01", "shop", 10)  # shop: production only
    r = api.call(
        "POST",
        DEPS,
        path_params={"spaceId": SPACE},
        body={
            "id": "dep-cart-stg-01",
            "project": "cart",
            "environment": "staging",
            "finished_at": _iso(12),
            "version": "c1",
        },
        key=ADMIN_KEY,
    )  # cart: staging only
    assert r.status == 201, r.body
    f = api.call(
        "POST",
        FAILS,
        path_params={"spaceId": SPACE},
        body=_native_body(
            id="fail-rep-0001",
            project=None,
            projects=["shop", "cart"],
            environment="production",
            started_at=_iso(20),
            finished_at=_iso(50),
        ),
        key=ADMIN_KEY,
    )
    assert f.status == 201, f.body
    settle(aws, clock, lambda_context)
    by_project = _report_series(api, "Project")
    # METRICS §4: counts "for each project it names when the report includes a stream of that project in the
    # failure's environment": shop has one in production, cart has none there
    assert by_project.get("shop") == 1, by_project
    assert by_project.get("cart", 0) == 0, by_project
    by_env = _report_series(api, "Environment")
    assert by_env.get("production") == 1 and by_env.get("staging", 0) == 0, by_env


def test_a_refused_failure_registers_no_catalogue_entity(api: Api) -> None:
    body = _native_body(project="ghost-project", environment="ghost-env", deployment_id="no-such-deployment")
    r = api.call("POST", FAILS, path_params={"spaceId": SPACE}, body=body, key=ADMIN_KEY)
    assert r.status == 400, r.body
    projects = api.call("GET", "/api/{spaceId}/projects", path_params={"spaceId": SPACE}, key=ADMIN_KEY)
    assert projects.status == 200, projects.body
    assert "ghost-project" not in [p["Name"] for p in projects.body["Items"]], projects.body
    envs = api.call("GET", "/api/{spaceId}/environments", path_params={"spaceId": SPACE}, key=ADMIN_KEY)
    assert "ghost-env" not in [e["Name"] for e in envs.body["Items"]], envs.body


def test_a_conflicting_failure_registers_no_catalogue_entity(api: Api) -> None:
    first = api.call(
        "POST", FAILS, path_params={"spaceId": SPACE}, body=_native_body(id="conflict-failure-01"), key=ADMIN_KEY
    )
    assert first.status == 201, first.body
    clash = api.call(
        "POST",
        DD_FAILURE,
        body=_dd_body(id="conflict-failure-01", services=["ghost-service"]),
        headers={"DD-API-KEY": ADMIN_KEY},
    )
    assert clash.status == 409, clash.body
    projects = api.call("GET", "/api/{spaceId}/projects", path_params={"spaceId": SPACE}, key=ADMIN_KEY)
    assert [p["Name"] for p in projects.body["Items"]] == ["shop"], projects.body


def test_native_failure_cursors_from_elsewhere_are_400(api: Api, other_space: str) -> None:
    for i in range(3):
        for space, key in ((SPACE, ADMIN_KEY), (OTHER_SPACE, OTHER_KEY)):
            r = api.call(
                "POST",
                FAILS,
                path_params={"spaceId": space},
                body=_native_body(id=f"cursor-fail-{i}", started_at=_iso(i)),
                key=key,
            )
            assert r.status == 201, r.body
            d = api.call(
                "POST",
                DEPS,
                path_params={"spaceId": space},
                body={"id": f"cursor-dep-{i}", "project": "shop", "environment": "production", "finished_at": _iso(i)},
                key=key,
            )
            assert d.status == 201, d.body
    ours = api.call("GET", FAILS, path_params={"spaceId": SPACE}, query={"limit": "1"}, key=ADMIN_KEY).body[
        "next_cursor"
    ]
    deps = api.call("GET", DEPS, path_params={"spaceId": SPACE}, query={"limit": "1"}, key=ADMIN_KEY).body[
        "next_cursor"
    ]
    assert ours and deps
    for cursor, space, key in (
        (ours, OTHER_SPACE, OTHER_KEY),
        (deps, SPACE, ADMIN_KEY),
        ("garbage!!", SPACE, ADMIN_KEY),
        (ours[:-4], SPACE, ADMIN_KEY),
    ):
        r = api.call("GET", FAILS, path_params={"spaceId": space}, query={"limit": "1", "cursor": cursor}, key=key)
        assert r.status == 400, (cursor, r.status, r.body)
    # a cursor outside a narrower range: 400, never a 500 (or a row outside the range)
    narrow = api.call(
        "GET",
        FAILS,
        path_params={"spaceId": SPACE},
        query={"limit": "1", "cursor": ours, "from": _iso(2), "to": _iso(2)},
        key=ADMIN_KEY,
    )
    assert narrow.status == 400 or all(
        i["started_at"] == _iso(2).replace("Z", ".000Z") for i in narrow.body["items"]
    ), narrow.body
    dd = api.call(
        "POST",
        DD_LIST_FAILURES,
        body={"data": {"attributes": {"limit": 1, "page": {"cursor": ours}}}},
        headers={"DD-API-KEY": ADMIN_KEY},
    )
    assert dd.status == 400, dd.body


def test_a_failure_whose_named_deployment_was_removed_charges_no_later_deployment_reusing_the_id(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    clock.now = BASE + timedelta(hours=8)
    _dep(api, "dep-reused-0001", "shop", 10)
    f = api.call(
        "POST",
        FAILS,
        path_params={"spaceId": SPACE},
        body=_native_body(id="fail-reuse-0001", deployment_id="dep-reused-0001"),
        key=ADMIN_KEY,
    )
    assert f.status == 201, f.body
    settle(aws, clock, lambda_context, rounds=1)
    assert _fig(api, "dep-reused-0001")["change_failure"] is True
    r = api.call("DELETE", ONE, path_params={"spaceId": SPACE, "deploymentId": "dep-reused-0001"}, key=ADMIN_KEY)
    assert r.status == 204, r.body
    settle(aws, clock, lambda_context, rounds=1)
    # a later, unrelated deployment (another project, hours later) under the freed id
    _dep(api, "dep-reused-0001", "cart", 300)
    settle(aws, clock, lambda_context)
    figures = _fig(api, "dep-reused-0001")
    assert figures["change_failure"] is False, figures  # METRICS §2 rule 4: once removed, it charges no deployment


def test_a_failure_whose_cause_is_removed_charges_no_redeployment_of_its_stream_under_that_id(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    clock.now = BASE + timedelta(hours=8)
    _dep(api, "dep-again-0001", "shop", 10)
    body = _native_body(id="fail-again-0001", deployment_id="dep-again-0001")
    assert api.call("POST", FAILS, path_params={"spaceId": SPACE}, body=body, key=ADMIN_KEY).status == 201
    settle(aws, clock, lambda_context, rounds=1)
    r = api.call("DELETE", ONE, path_params={"spaceId": SPACE, "deploymentId": "dep-again-0001"}, key=ADMIN_KEY)
    assert r.status == 204, r.body
    clock.advance(timedelta(minutes=5))
    _dep(api, "dep-again-0001", "shop", 10)  # the same deployment sent again: a new one, after the failure
    settle(aws, clock, lambda_context)
    assert _fig(api, "dep-again-0001")["change_failure"] is False


def test_a_failure_keeps_charging_its_cause_after_the_cause_is_replaced(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """A DX upsert replaces the deployment under its id (its arrival moves on): the same deployment, still
    the failure's cause, unlike one created under the id after a removal."""
    clock.now = BASE + timedelta(hours=8)
    dx = {"reference_id": "cause-r1", "deployed_at": _unix(10), "service": "shop"}
    created = api.call("POST", "/api/deployments.create", body=dx, key=ADMIN_KEY)
    assert created.status == 200, created.body
    cause = created.body["deployment"]["id"]
    body = _native_body(id="fail-replaced-0001", deployment_id=str(cause))
    assert api.call("POST", FAILS, path_params={"spaceId": SPACE}, body=body, key=ADMIN_KEY).status == 201
    clock.advance(timedelta(minutes=5))
    upsert = {**dx, "source_url": "https://ci.example/runs/2"}
    replaced = api.call("POST", "/api/deployments.upsert", body=upsert, key=ADMIN_KEY)
    assert replaced.status == 200, replaced.body
    assert replaced.body["deployment"]["id"] == cause
    settle(aws, clock, lambda_context)
    stored = api.call("GET", ONE, path_params={"spaceId": SPACE, "deploymentId": str(cause)}, key=ADMIN_KEY).body
    assert stored["source_url"] == "https://ci.example/runs/2", stored  # the replacement is what is stored
    assert stored["figures"]["change_failure"] is True, stored["figures"]


def test_names_in_another_case_are_the_same_project_and_environment(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    clock.now = BASE + timedelta(hours=8)
    _dep(api, "dep-case-0001", "shop", 10)
    r = api.call(
        "POST",
        FAILS,
        path_params={"spaceId": SPACE},
        body=_native_body(
            id="case-failure-0001", project="SHOP", environment="PRODUCTION", started_at=_iso(20), finished_at=_iso(30)
        ),
        key=ADMIN_KEY,
    )
    assert r.status == 201, r.body
    assert (r.body["projects"], r.body["environment"]) == (["shop"], "production"), r.body
    d = api.call(
        "POST",
        DD_FAILURE,
        body=_dd_body(
            id="case-failure-dd-0001", services=["Shop"], env="Production", started_at=_unix(25), finished_at=_unix(45)
        ),
        headers={"DD-API-KEY": ADMIN_KEY},
    )
    assert d.status == 200, d.body
    settle(aws, clock, lambda_context, rounds=1)
    figures = _fig(api, "dep-case-0001")
    assert figures["change_failure_rule"] == 5, figures
    s = api.call(
        "GET",
        SUMMARY,
        path_params={"spaceId": SPACE},
        query={**SUMMARY_RANGE, "project": "SHOP", "environment": "Production"},
        key=ADMIN_KEY,
    ).body
    assert (s["time_to_restore"]["count"], s["time_to_restore"]["median_seconds"]) == (2, 900), s
    lst = api.call(
        "POST",
        DD_LIST_FAILURES,
        body={"data": {"attributes": {"query": "service:SHOP env:PRODUCTION"}}},
        headers={"DD-API-KEY": ADMIN_KEY},
    )
    assert sorted(e["id"] for e in lst.body["data"]) == ["case-failure-0001", "case-failure-dd-0001"], lst.body


@pytest.mark.parametrize(
    "raw",
    [
        "[]",
        "null",
        '"x"',
        "{",
        '{"project": "shop", "started_at": 1e400}',
        '{"project": "shop", "started_at": "2024-03-01T10:00:00Z", "name": "\\ud800"}',
        '{"project": "shop", "started_at": NaN}',
    ],
)
def test_native_failure_bodies_that_are_not_what_it_takes_are_400(api: Api, raw: str) -> None:
    r = api.call("POST", FAILS, path_params={"spaceId": SPACE}, raw_body=raw, key=ADMIN_KEY)
    assert r.status == 400, (r.status, r.body)


@pytest.mark.parametrize(
    "raw",
    [
        "[]",
        "null",
        '{"data": null}',
        '{"data": {"attributes": []}}',
        '{"data": {}}',
        '{"data": {"attributes": {"services": ["shop"], "started_at": 1e400}}}',
        '{"data": {"attributes": {"services": ["shop"], "started_at": 1709280000, "name": "\\udfff"}}}',
    ],
)
def test_datadog_failure_bodies_that_are_not_what_it_takes_are_400(api: Api, raw: str) -> None:
    r = api.call("POST", DD_FAILURE, raw_body=raw, headers={"DD-API-KEY": ADMIN_KEY})
    assert r.status == 400, (r.status, r.body)
    r = api.call("POST", DD_LIST_FAILURES, raw_body=raw, headers={"DD-API-KEY": ADMIN_KEY})
    assert r.status in (200, 400), (r.status, r.body)


@pytest.mark.parametrize(
    "query",
    [
        {"from": "2024-03-02T00:00:00Z", "to": "2024-03-01T00:00:00Z"},
        {"from": "2024-03-01T00:00:00.002Z", "to": "2024-03-01T00:00:00.001Z"},
        {"to": "0"},
        {"from": "2099-12-31T23:59:59Z"},
    ],
)
def test_native_failure_list_with_an_empty_range_is_an_empty_list_or_400(api: Api, query: dict[str, str]) -> None:
    api.call("POST", FAILS, path_params={"spaceId": SPACE}, body=_native_body(id="range-failure-01"), key=ADMIN_KEY)
    r = api.call("GET", FAILS, path_params={"spaceId": SPACE}, query=query, key=ADMIN_KEY)
    assert r.status == 400 or (r.status == 200 and r.body["items"] == []), (r.status, r.body)
    r = api.call("GET", FAILS, path_params={"spaceId": SPACE}, query={**query, "project": "shop"}, key=ADMIN_KEY)
    assert r.status == 400 or (r.status == 200 and r.body["items"] == []), (r.status, r.body)


def test_a_retry_of_a_stored_failure_answers_it_even_after_its_named_deployment_was_removed(api: Api) -> None:
    _dep(api, "dep-retry-0001", "shop", 10)
    body = _native_body(id="retry-failure-0001", deployment_id="dep-retry-0001")
    first = api.call("POST", FAILS, path_params={"spaceId": SPACE}, body=body, key=ADMIN_KEY)
    assert first.status == 201, first.body
    r = api.call("DELETE", ONE, path_params={"spaceId": SPACE, "deploymentId": "dep-retry-0001"}, key=ADMIN_KEY)
    assert r.status == 204, r.body
    again = api.call("POST", FAILS, path_params={"spaceId": SPACE}, body=body, key=ADMIN_KEY)
    # API.md Errors: the same request sent again is safe where it names what it creates (a failure event's id)
    assert again.status == 200 and again.body == first.body, (again.status, again.body)


def test_keys_without_write_scope_cannot_create_or_delete_failures_in_either_dialect(api: Api, store: Any) -> None:
    from dora_insights.logic import admin
    from tests.conftest import NOW

    _, reader = admin.create_api_key(store, SPACE, "reader", ("deployments:read",), NOW)
    _, writer = admin.create_api_key(store, SPACE, "writer", ("deployments:write",), NOW)
    made = api.call(
        "POST", FAILS, path_params={"spaceId": SPACE}, body=_native_body(id="scoped-failure-0001"), key=ADMIN_KEY
    )
    assert made.status == 201
    assert api.call("POST", DD_FAILURE, body=_dd_body(), headers={"DD-API-KEY": reader}).status == 403
    assert (
        api.call(
            "DELETE",
            DD_DELETE_FAILURE,
            path_params={"failure_id": "scoped-failure-0001"},
            headers={"DD-API-KEY": reader},
        ).status
        == 403
    )
    assert (
        api.call("DELETE", FAIL, path_params={"spaceId": SPACE, "failureId": "scoped-failure-0001"}, key=reader).status
        == 403
    )
    # a write-only key cannot read
    assert (
        api.call(
            "GET", DD_GET_FAILURE, path_params={"failure_id": "scoped-failure-0001"}, headers={"DD-API-KEY": writer}
        ).status
        == 403
    )
    assert (
        api.call("POST", DD_LIST_FAILURES, body={"data": {"attributes": {}}}, headers={"DD-API-KEY": writer}).status
        == 403
    )
    assert (
        api.call("GET", FAIL, path_params={"spaceId": SPACE, "failureId": "scoped-failure-0001"}, key=ADMIN_KEY).status
        == 200
    )
    assert api.call("DELETE", DD_DELETE_FAILURE, path_params={"failure_id": "scoped-failure-0001"}).status == 401


def test_a_report_counts_a_failure_restored_later_once_that_time_comes(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    clock.now = BASE + timedelta(hours=2)  # 10:00
    _dep(api, "dep-later-0001", "shop", 10)
    r = api.call(
        "POST",
        FAILS,
        path_params={"spaceId": SPACE},
        body=_native_body(id="later-failure-0001", started_at=_iso(100), finished_at=_iso(200)),
        key=ADMIN_KEY,
    )
    assert r.status == 201, r.body
    settle(aws, clock, lambda_context, rounds=1)  # now 10:13, the failure finishes 11:20
    assert _report_series(api, "None") == {"All": 0}
    clock.now = BASE + timedelta(hours=4)
    settle(aws, clock, lambda_context, rounds=1)
    rep = api.call("GET", "/api/{spaceId}/insights/reports", path_params={"spaceId": SPACE}, key=ADMIN_KEY).body
    rid = rep["Items"][0]["Id"]
    m = api.call(
        "GET",
        "/api/{spaceId}/insights/reports/{reportId}/metrics",
        path_params={"spaceId": SPACE, "reportId": rid},
        query={"timeRange": "LastMonth", "granularity": "Daily", "split": "None"},
        key=ADMIN_KEY,
    )
    assert m.status == 200, m.body
    counts = [i["TimeToRestore"]["Count"] for s in m.body["Series"] for i in s["Intervals"]]
    assert sum(counts) == 1, m.body["Series"][0]["Intervals"][-3:]
    medians = [
        i["TimeToRestore"]["Median"] for s in m.body["Series"] for i in s["Intervals"] if i["TimeToRestore"]["Count"]
    ]
    assert medians == ["1:40:00.0"], medians
