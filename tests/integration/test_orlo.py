"""The Orlo dialect end to end (API.md "Dialect: Orlo"): workflow, queries, stats, info, import, auth."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, NOW, Api, Clock, HttpResult
from tests.support.fixtures import OTHER_KEY

T0 = NOW  # 2024-03-01T12:00:00Z


TICK = timedelta(seconds=10)  # the time each workflow step takes


def basic(key: str = ADMIN_KEY) -> dict[str, str]:
    """orloclient's credentials: http://orlo:<key>@host/orlo."""
    return {"authorization": "Basic " + base64.b64encode(f"orlo:{key}".encode()).decode()}


def call(
    api: Api,
    method: str,
    route: str,
    *,
    key: str | None = ADMIN_KEY,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> HttpResult:
    merged = dict(headers or {})
    if key is not None and "authorization" not in merged and "x-auth-token" not in merged:
        merged.update(basic(key))
    return api.call(method, route, headers=merged, **kwargs)


def get(api: Api, route: str, *, query: dict[str, str] | None = None, **params: str) -> HttpResult:
    return call(api, "GET", route, path_params=params or None, query=query)


def ok(result: HttpResult, status: int = 200) -> Any:
    assert result.status == status, result.body
    return result.body


RELEASE = {"user": "aforbes", "team": "A-Team", "platforms": ["site1", "site2"], "references": ["TICKET-1"]}


def create_release(api: Api, clock: Clock, **overrides: Any) -> str:
    body = ok(call(api, "POST", "/orlo/releases", body={**RELEASE, **overrides}))
    clock.advance(TICK)
    return str(body["id"])


def add_package(api: Api, rid: str, name: str, version: str, **extra: Any) -> str:
    body = {"name": name, "version": version, **extra}
    return str(ok(call(api, "POST", "/orlo/releases/{rid}/packages", path_params={"rid": rid}, body=body))["id"])


def step(api: Api, clock: Clock, route: str, body: Any = None, **params: str) -> HttpResult:
    result = call(api, "POST", route, path_params=params, body=body)
    clock.advance(TICK)
    return result


START = "/orlo/releases/{rid}/packages/{pid}/start"
STOP = "/orlo/releases/{rid}/packages/{pid}/stop"


@pytest.fixture
def full(api: Api, clock: Clock) -> dict[str, str]:
    """One stopped release: 'web' 2.0 FAILED (started T0+10, stopped T0+40), 'api' 1.1 SUCCESSFUL."""
    rid = create_release(api, clock)  # stime T0
    web = add_package(api, rid, "web", "2.0", diff_url="https://example.com/diff")
    svc = add_package(api, rid, "api", "1.1")
    ok(step(api, clock, START, rid=rid, pid=web), 204)  # T0+10
    ok(step(api, clock, START, rid=rid, pid=svc), 204)  # T0+20
    ok(step(api, clock, STOP, {"success": "true"}, rid=rid, pid=svc), 204)  # T0+30
    ok(step(api, clock, STOP, {"success": False}, rid=rid, pid=web), 204)  # T0+40
    ok(step(api, clock, "/orlo/releases/{rid}/notes", {"text": "shipped"}, rid=rid), 204)
    ok(step(api, clock, "/orlo/releases/{rid}/metadata", {"ticket": "T-1"}, rid=rid), 204)
    ok(step(api, clock, "/orlo/releases/{rid}/stop", rid=rid), 204)  # T0+70
    return {"rid": rid, "web": web, "api": svc}


def test_a_full_release_reads_back_in_orlos_shape(api: Api, full: dict[str, str]) -> None:
    (release,) = ok(get(api, "/orlo/releases/{rid}", rid=full["rid"]))["releases"]
    assert release["user"] == "aforbes" and release["team"] == "A-Team"
    assert release["platforms"] == ["site1", "site2"] and release["references"] == ["TICKET-1"]
    assert release["notes"] == ["shipped"] and release["metadata"] == {"ticket": "T-1"}
    assert release["stime"] == "2024-03-01T12:00:00Z"
    assert release["ftime"] == "2024-03-01T12:01:10Z" and release["duration"] == 70
    web, svc = release["packages"]
    assert (web["name"], web["status"], web["duration"], web["diff_url"]) == (
        "web",
        "FAILED",
        30,
        "https://example.com/diff",
    )
    assert (svc["name"], svc["status"], svc["stime"], svc["release_id"]) == (
        "api",
        "SUCCESSFUL",
        "2024-03-01T12:00:20Z",
        full["rid"],
    )
    listed = ok(get(api, "/orlo/releases"))["releases"]
    assert [r["id"] for r in listed] == [full["rid"]]


def test_release_filters_follow_orlos_status_rule(api: Api, full: dict[str, str]) -> None:
    def ids(**query: str) -> list[str]:
        result = get(api, "/orlo/releases", query=query)
        return [r["id"] for r in result.body["releases"]]

    assert ids(status="FAILED") == [full["rid"]]
    assert ids(status="SUCCESSFUL") == []
    assert ids(package_status="SUCCESSFUL") == [full["rid"]]  # any package; listed once
    assert ids(package_name="api", package_version="1.1") == [full["rid"]]
    assert ids(package_name="api", package_version="2.0") == []  # the same package must match both
    assert ids(user="aforbes", platform="site2", team="A-Team") == [full["rid"]]
    assert ids(stime_after="2024-03-01T11:00:00Z", stime_before="2024-03-01T13:00:00Z") == [full["rid"]]
    assert ids(stime_after="2024-03-01T12:00:00Z") == []  # exclusive bound
    assert ids(duration_gt="60") == [full["rid"]]
    missing = get(api, "/orlo/releases", query={"user": "nobody"})
    assert (missing.status, missing.body) == (404, {"message": "No releases found", "releases": []})


def test_bad_queries_answer_orlos_400s(api: Api, full: dict[str, str]) -> None:
    unknown = get(api, "/orlo/releases", query={"colour": "blue"})
    assert unknown.status == 400 and unknown.body["message"] == "An invalid field was specified: colour"
    assert get(api, "/orlo/releases", query={"status": "DONE"}).status == 400
    limit = get(api, "/orlo/releases", query={"limit": "ten"})
    assert (limit.status, limit.body["message"]) == (400, "limit must be a valid integer value")
    malformed = get(api, "/orlo/releases/{rid}", rid="not-a-uuid")
    assert (malformed.status, malformed.body["message"]) == (400, "Release ID given is not a valid UUID")
    assert get(api, "/orlo/stats", query={"stime": "yesterday"}).status == 400
    assert get(api, "/orlo/packages", query={"package_name": "web"}).status == 400


def test_packages_list_and_get(api: Api, full: dict[str, str]) -> None:
    packages = ok(get(api, "/orlo/packages"))["packages"]
    assert [p["name"] for p in packages] == ["api", "web"]  # stime desc: api started last
    assert [p["name"] for p in ok(get(api, "/orlo/packages", query={"name": "web"}))["packages"]] == ["web"]
    assert [p["id"] for p in ok(get(api, "/orlo/packages/{pid}", pid=full["web"]))["packages"]] == [full["web"]]
    unknown = get(api, "/orlo/packages/{pid}", pid="8f14e45f-ceea-467f-a0e6-2b3a1c5d7e90")
    assert (unknown.status, unknown.body) == (404, {"message": "No packages found", "packages": []})


FAILED_ONE = {"normal": {"failed": 1}}  # by_date: non-zero leaves only


def counts(normal: tuple[int, int] = (0, 0), rollback: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    total = (normal[0] + rollback[0], normal[1] + rollback[1])
    return {
        "releases": {
            k: {"successful": v[0], "failed": v[1]}
            for k, v in (("normal", normal), ("rollback", rollback), ("total", total))
        }
    }


def test_stats_count_the_failed_release(api: Api, full: dict[str, str]) -> None:
    failed = counts(normal=(0, 1))
    assert ok(get(api, "/orlo/stats")) == {"global": failed}
    assert ok(get(api, "/orlo/stats", query={"stime": "2024-03-01T12:00:00Z"})) == {"global": failed}  # inclusive
    assert ok(get(api, "/orlo/stats", query={"stime": "2024-03-01T12:00:01Z"})) == {"global": counts()}
    assert ok(get(api, "/orlo/stats/{field}", field="user")) == {"aforbes": failed}
    assert ok(get(api, "/orlo/stats/{field}", field="team")) == {"A-Team": failed}
    assert ok(get(api, "/orlo/stats/{field}", field="platform")) == {"site1": failed, "site2": failed}
    assert ok(get(api, "/orlo/stats/{field}", field="package")) == {"api": failed, "web": failed}
    assert ok(get(api, "/orlo/stats/{field}/{name}", field="user", name="aforbes")) == {"aforbes": failed}
    assert ok(get(api, "/orlo/stats/{field}/{name}", field="team", name="B-Team")) == {"B-Team": counts()}
    assert ok(get(api, "/orlo/stats/{field}/{name}", field="package", name="web")) == {"web": failed}
    assert get(api, "/orlo/stats/{field}", field="colour").status == 404


def test_stats_by_date(api: Api, full: dict[str, str]) -> None:
    assert ok(get(api, "/orlo/stats/by_date/{subject}", subject="release")) == {"2024": {"3": FAILED_ONE}}
    day = ok(get(api, "/orlo/stats/by_date/{subject}", subject="release", query={"unit": "day"}))
    assert day == {"2024": {"3": {"1": FAILED_ONE}}}
    hour = get(
        api, "/orlo/stats/by_date/{subject}", subject="release", query={"unit": "hour", "summarize_by_unit": "true"}
    )
    assert ok(hour) == {"12": FAILED_ONE}
    packages = ok(get(api, "/orlo/stats/by_date/{subject}", subject="package"))
    assert packages == {"2024": {"3": {"api": FAILED_ONE, "web": FAILED_ONE}}}
    assert ok(get(api, "/orlo/stats/by_date/{subject}", subject="release", query={"user": "nobody"})) == {}
    assert get(api, "/orlo/stats/by_date/{subject}", subject="deploys").status == 400


def test_info_routes(api: Api, full: dict[str, str]) -> None:
    info = ok(get(api, "/orlo/info"))
    assert info["message"] and "/info/packages/versions" in info["urls"]
    assert ok(get(api, "/orlo/info/{facet}", facet="users")) == {"aforbes": {"releases": 1}}
    assert ok(get(api, "/orlo/info/{facet}/{name}", facet="users", name="aforbes")) == {"aforbes": {"releases": 1}}
    assert ok(get(api, "/orlo/info/{facet}/{name}", facet="users", name="nobody")) == {}
    assert ok(get(api, "/orlo/info/{facet}", facet="users", query={"platform": "elsewhere"})) == {}
    assert ok(get(api, "/orlo/info/{facet}", facet="platforms")) == {"site1": {"releases": 1}, "site2": {"releases": 1}}
    assert ok(get(api, "/orlo/info/{facet}/{name}", facet="platforms", name="site2")) == {"site2": {"releases": 1}}
    assert ok(get(api, "/orlo/info/{facet}", facet="packages")) == {"api": {"releases": 1}, "web": {"releases": 1}}
    assert ok(get(api, "/orlo/info/{facet}/{name}", facet="packages", name="web")) == {"web": {"releases": 1}}
    assert ok(get(api, "/orlo/info/packages/list")) == {"packages": ["api", "web"]}
    assert ok(get(api, "/orlo/info/packages/list", query={"platform": "other"})) == {"packages": []}
    assert ok(get(api, "/orlo/info/packages/versions")) == {"api": "1.1"}  # web failed
    # by_release: api's release FAILED as a whole, so api has no current version
    assert ok(get(api, "/orlo/info/packages/versions", query={"by_release": "true"})) == {}
    assert get(api, "/orlo/info/{facet}", facet="colours").status == 404


def test_in_progress_release_and_versions_by_release(api: Api, clock: Clock) -> None:
    rid = create_release(api, clock, platforms=["site1"])
    done = add_package(api, rid, "db", "3.0")
    running = add_package(api, rid, "cache", "1.0")
    for pid in (done, running):
        ok(step(api, clock, START, rid=rid, pid=pid), 204)
    ok(step(api, clock, STOP, {"success": True}, rid=rid, pid=done), 204)
    assert [r["id"] for r in ok(get(api, "/orlo/releases", query={"status": "IN_PROGRESS"}))["releases"]] == [rid]
    assert get(api, "/orlo/releases", query={"status": "FAILED"}).status == 404
    assert ok(get(api, "/orlo/stats")) == {"global": counts()}  # running: counted nowhere
    assert ok(get(api, "/orlo/info/packages/versions")) == {"db": "3.0"}
    assert ok(get(api, "/orlo/info/packages/versions", query={"by_release": "true"})) == {}
    ok(step(api, clock, STOP, {"success": "true"}, rid=rid, pid=running), 204)
    versions = ok(get(api, "/orlo/info/packages/versions", query={"by_release": "true"}))
    assert versions == {"cache": "1.0", "db": "3.0"}
    assert ok(get(api, "/orlo/stats")) == {"global": counts(normal=(1, 0))}


def test_a_successful_rollback_counts_as_rollback(api: Api, clock: Clock) -> None:
    rid = create_release(api, clock)
    pid = add_package(api, rid, "web", "1.9", rollback=True)
    ok(step(api, clock, START, rid=rid, pid=pid), 204)
    ok(step(api, clock, STOP, {"success": "true"}, rid=rid, pid=pid), 204)
    assert ok(get(api, "/orlo/stats")) == {"global": counts(rollback=(1, 0))}


def test_steps_in_the_wrong_order_are_refused(api: Api, clock: Clock) -> None:
    rid = create_release(api, clock)
    pid = add_package(api, rid, "web", "1.0")
    not_started = step(api, clock, STOP, {"success": True}, rid=rid, pid=pid)
    assert not_started.status == 400 and not_started.body["message"]
    ok(step(api, clock, START, rid=rid, pid=pid), 204)
    assert step(api, clock, START, rid=rid, pid=pid).status == 400
    ok(step(api, clock, STOP, {"success": True}, rid=rid, pid=pid), 204)
    assert step(api, clock, STOP, {"success": True}, rid=rid, pid=pid).status == 400
    ok(step(api, clock, "/orlo/releases/{rid}/stop", rid=rid), 204)
    assert step(api, clock, "/orlo/releases/{rid}/stop", rid=rid).status == 400
    late = call(
        api, "POST", "/orlo/releases/{rid}/packages", path_params={"rid": rid}, body={"name": "x", "version": "1"}
    )
    assert late.status == 400


def test_unknown_ids_and_bad_bodies_on_write_routes(api: Api, clock: Clock) -> None:
    unknown = "2c5b8b6e-7b9f-4b36-9a3e-3d1f0c6a9e11"
    assert step(api, clock, "/orlo/releases/{rid}/start", rid=unknown).status == 404
    rid = create_release(api, clock)
    other = create_release(api, clock)
    pid = add_package(api, other, "web", "1.0")
    assert step(api, clock, START, rid=rid, pid=unknown).status == 404
    assert step(api, clock, START, rid=rid, pid=pid).status == 400  # another release's package
    assert step(api, clock, START, rid="nope", pid=pid).status == 400
    missing = call(api, "POST", "/orlo/releases", body={"user": "x"})
    assert missing.status == 400 and set(missing.body) == {"message", "errors"}
    assert call(api, "POST", "/orlo/releases", raw_body="{not json").status == 400
    assert step(api, clock, "/orlo/releases/{rid}/metadata", {}, rid=rid).status == 400
    results = step(api, clock, "/orlo/releases/{rid}/packages/{pid}/results", {"content": "ok"}, rid=other, pid=pid)
    assert results.status == 204


REFERENCE_IMPORT = [
    {
        "platforms": ["GumtreeUK"],
        "stime": "2015-12-17T17:02:04Z",
        "ftime": "2015-12-17T17:02:24Z",
        "team": "Gumtree UK Site Operations",
        "references": ["TICKET-1"],
        "notes": ["Imported from other_system"],
        "packages": [
            {
                "name": "",
                "diff_url": None,
                "stime": "2015-12-17T17:02:22Z",
                "ftime": 1450371742,
                "rollback": False,
                "status": "SUCCESSFUL",
                "version": "1.0.1",
            }
        ],
        "user": "user_one",
    }
]


def test_the_reference_import_example_imports_once(api: Api) -> None:
    assert ok(get(api, "/orlo/releases/import"))["message"]
    (rid,) = ok(call(api, "POST", "/orlo/releases/import", body=REFERENCE_IMPORT))["releases"]
    again = ok(call(api, "POST", "/orlo/releases/import", body=REFERENCE_IMPORT))["releases"]
    assert again == [rid]
    assert [r["id"] for r in ok(get(api, "/orlo/releases"))["releases"]] == [rid]
    (release,) = ok(get(api, "/orlo/releases/{rid}", rid=rid))["releases"]
    assert (release["stime"], release["duration"], release["packages"][0]["duration"]) == (
        "2015-12-17T17:02:04Z",
        20,
        0,
    )
    success = counts(normal=(1, 0))
    assert ok(get(api, "/orlo/stats")) == {"global": success}
    assert ok(get(api, "/orlo/stats/{field}", field="team")) == {"Gumtree UK Site Operations": success}
    by_team = get(api, "/orlo/stats/{field}/{name}", field="team", name="Gumtree UK Site Operations")
    assert ok(by_team) == {"Gumtree UK Site Operations": success}
    assert ok(get(api, "/orlo/stats/{field}", field="platform")) == {"GumtreeUK": success}
    year = ok(get(api, "/orlo/stats/by_date/{subject}", subject="release", query={"unit": "year"}))
    assert year == {"2015": {"normal": {"successful": 1}}}


def test_an_import_with_one_bad_release_stores_nothing(api: Api) -> None:
    bad = {**REFERENCE_IMPORT[0], "user": "someone", "ftime": "2015-12-17T17:00:00Z"}  # ftime before stime
    rejected = call(api, "POST", "/orlo/releases/import", body=[REFERENCE_IMPORT[0], bad])
    assert rejected.status == 400 and rejected.body["errors"]
    assert call(api, "POST", "/orlo/releases/import", body={"not": "a list"}).status == 400
    assert get(api, "/orlo/releases").status == 404


def test_teamless_releases_make_stats_by_team_a_conflict(api: Api, clock: Clock) -> None:
    rid = create_release(api, clock, team=None)
    create_release(api, clock)
    conflict = get(api, "/orlo/stats/{field}", field="team")
    assert conflict.status == 409 and "1 release" in conflict.body["message"]
    assert ok(get(api, "/orlo/stats/{field}/{name}", field="team", name="A-Team"))["A-Team"]
    teamless = ok(get(api, "/orlo/releases", query={"team": "null"}))["releases"]
    assert [r["id"] for r in teamless] == [rid]


def test_ping_needs_no_key_and_the_rest_does(api: Api) -> None:
    assert ok(call(api, "GET", "/orlo/ping", key=None)) == {"message": "pong"}
    assert call(api, "GET", "/orlo/releases", key=None).status == 401
    assert call(api, "GET", "/orlo/version", key="wrong").status == 401
    assert "version" in ok(get(api, "/orlo/version"))
    assert "version" in ok(get(api, "/orlo/internal/version"))
    assert ok(get(api, "/orlo"))["message"]


def test_bearer_keys_work_too(api: Api, clock: Clock) -> None:
    result = api.call("POST", "/orlo/releases", body=RELEASE, key=ADMIN_KEY)
    assert result.status == 200 and result.body["id"]


def test_a_token_stands_for_the_key_for_one_hour(api: Api, clock: Clock) -> None:
    token = ok(call(api, "GET", "/orlo/token"))["token"]
    with_token = {"x-auth-token": token}
    created = call(api, "POST", "/orlo/releases", key=None, headers=with_token, body=RELEASE)
    assert created.status == 200
    assert ok(call(api, "GET", "/orlo/releases", key=None, headers=with_token))["releases"]
    assert call(api, "GET", "/orlo/releases", key=None, headers={"x-auth-token": token + "x"}).status == 401
    assert call(api, "GET", "/orlo/releases", key=None, headers={"x-auth-token": "garbage"}).status == 401
    assert call(api, "GET", "/orlo/token", key=None, headers=with_token).status == 401  # a key gets tokens
    clock.advance(timedelta(hours=1, seconds=1))
    expired = call(api, "GET", "/orlo/releases", key=None, headers=with_token)
    assert expired.status == 401 and "expired" in expired.body["message"]


def test_a_key_of_another_space_sees_none_of_it(api: Api, full: dict[str, str], other_space: str) -> None:
    def other(route: str, **params: str) -> HttpResult:
        return call(api, "GET", route, key=OTHER_KEY, path_params=params or None)

    assert other("/orlo/releases").status == 404
    assert other("/orlo/releases/{rid}", rid=full["rid"]).status == 404
    assert other("/orlo/packages/{pid}", pid=full["web"]).status == 404
    assert ok(other("/orlo/stats")) == {"global": counts()}
    assert ok(other("/orlo/info/{facet}", facet="users")) == {}
    token = ok(call(api, "GET", "/orlo/token", key=OTHER_KEY))["token"]
    assert call(api, "GET", "/orlo/releases", key=None, headers={"x-auth-token": token}).status == 404
    stop = call(api, "POST", "/orlo/releases/{rid}/stop", key=OTHER_KEY, path_params={"rid": full["rid"]})
    assert stop.status == 404


def test_stopped_packages_are_deployments_per_platform(api: Api, full: dict[str, str]) -> None:
    listed = api.call("GET", "/api/{spaceId}/deployments", path_params={"spaceId": "Spaces-1"}, key=ADMIN_KEY)
    items = ok(listed)["items"]
    seen = sorted((d["project"], d["tenant"], d["environment"], d["state"], d["version"]) for d in items)
    assert seen == [
        ("api", "site1", "production", "Success", "1.1"),
        ("api", "site2", "production", "Success", "1.1"),
        ("web", "site1", "production", "Failed", "2.0"),
        ("web", "site2", "production", "Failed", "2.0"),
    ]
    assert all(d["source"] == "orlo" for d in items)


def test_a_repeated_stop_writes_no_second_deployment(api: Api, full: dict[str, str], clock: Clock) -> None:
    again = step(api, clock, STOP, {"success": True}, rid=full["rid"], pid=full["api"])
    assert again.status == 400
    listed = api.call("GET", "/api/{spaceId}/deployments", path_params={"spaceId": "Spaces-1"}, key=ADMIN_KEY)
    assert len(ok(listed)["items"]) == 4


def test_imported_stopped_packages_are_deployments(api: Api) -> None:
    doc = [{**REFERENCE_IMPORT[0], "packages": [{**REFERENCE_IMPORT[0]["packages"][0], "name": "shop"}]}]
    ok(call(api, "POST", "/orlo/releases/import", body=doc))
    ok(call(api, "POST", "/orlo/releases/import", body=doc))
    listed = api.call("GET", "/api/{spaceId}/deployments", path_params={"spaceId": "Spaces-1"}, key=ADMIN_KEY)
    (deployment,) = ok(listed)["items"]
    assert (deployment["project"], deployment["tenant"], deployment["state"]) == ("shop", "GumtreeUK", "Success")


def test_the_root_answers_with_and_without_the_trailing_slash(api: Api) -> None:
    for route in ("/orlo", "/orlo/"):
        result = api.call("GET", route, key=ADMIN_KEY)
        assert result.status == 200, result.body
        assert result.body["message"]


def test_a_read_only_key_cannot_write_releases(api: Api) -> None:
    reader = api.call(
        "POST",
        "/api/{spaceId}/apikeys",
        path_params={"spaceId": "Spaces-1"},
        body={"name": "r", "scopes": ["deployments:read"]},
        key=ADMIN_KEY,
    ).body["key"]
    assert api.call("GET", "/orlo/releases", key=reader).status in (200, 404)
    refused = api.call("POST", "/orlo/releases", body={"user": "alice", "platforms": ["web"]}, key=reader)
    assert refused.status == 403
    assert refused.body["message"]


def _imported(rid: str, *package_ids: str) -> dict[str, Any]:
    times = {"stime": "2024-03-01T10:00:00Z", "ftime": "2024-03-01T10:05:00Z"}
    packages = [
        {"id": p, "name": "web", "version": "1", "status": "SUCCESSFUL", "rollback": False, **times}
        for p in package_ids
    ]
    return {"id": rid, "platforms": ["p"], "user": "u", "team": "t", **times, "packages": packages}


def test_an_import_racing_another_for_a_package_id_stores_nothing(
    api: Api, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two imports check the package ids, then both write: the second's check ran before the first
    stored its pointers, so only its conditional claim sees the id taken. Its first 100 packages
    (one transaction, claimed) are withdrawn and no release of it is stored."""
    taken = "11111111-1111-1111-1111-111111111111"
    first, second, third = (f"{d * 8}-{d * 4}-{d * 4}-{d * 4}-{d * 12}" for d in "234")
    fresh = [f"aaaaaaaa-aaaa-aaaa-aaaa-{n:012d}" for n in range(100)]
    ok(call(api, "POST", "/orlo/releases/import", body=[_imported(first, taken)]))
    monkeypatch.setattr(type(store.orlo()), "package_owners", lambda self, space_id, ids: {})

    refused = call(api, "POST", "/orlo/releases/import", body=[_imported(second, *fresh), _imported(third, taken)])

    assert refused.status == 400, refused.body
    assert taken in refused.body["message"]
    monkeypatch.undo()
    assert store.orlo().get("Spaces-1", second) is None and store.orlo().get("Spaces-1", third) is None
    assert store.orlo().package_owners("Spaces-1", fresh) == {}
    assert store.orlo().package_owner("Spaces-1", taken) == first
    # The same packages under their own release go through afterwards.
    assert ok(call(api, "POST", "/orlo/releases/import", body=[_imported(second, *fresh)]))["releases"] == [second]
    assert len(store.orlo().package_owners("Spaces-1", fresh)) == 100


def test_an_import_whose_claims_stay_contended_answers_503_and_keeps_no_pointer(
    api: Api, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its second transaction of claims stays contended: the 503 comes after the first one's 100
    pointers are withdrawn, so no other import meets them as another release's."""
    from dora_insights.dal.store import Store
    from dora_insights.errors import WriteContendedError

    second, third = "22222222-2222-2222-2222-222222222222", "33333333-3333-3333-3333-333333333333"
    fresh = [f"aaaaaaaa-aaaa-aaaa-aaaa-{n:012d}" for n in range(101)]
    transact = Store.transact_or_contended
    claims: list[int] = []

    def second_claims_contended(self: Store, operations: Any, what: str, **options: Any) -> Any:
        if what == "the release's packages":
            claims.append(len(operations))
            if len(claims) == 2:
                raise WriteContendedError("the release's packages could not be written now; retry the request")
        return transact(self, operations, what, **options)

    monkeypatch.setattr(Store, "transact_or_contended", second_claims_contended)
    refused = call(
        api, "POST", "/orlo/releases/import", body=[_imported(second, *fresh[:100]), _imported(third, fresh[100])]
    )

    assert refused.status == 503 and refused.headers.get("Retry-After") == "1", refused.body
    assert claims == [100, 1]
    monkeypatch.undo()
    assert store.orlo().package_owners("Spaces-1", fresh) == {}
    assert store.orlo().get("Spaces-1", second) is None and store.orlo().get("Spaces-1", third) is None


def test_a_withdrawal_leaves_the_pointers_another_import_of_the_document_claimed_since(api: Api, store: Any) -> None:
    """Two imports of one document claim the same pointers; the one whose claims were taken over
    withdraws nothing when it fails, so the other's release keeps them."""
    from dora_insights.domain import orlo as domain
    from dora_insights.domain.orlo import ImportedPackage, ImportedRelease

    package = ImportedPackage(name="web", version="1", id="44444444-4444-4444-4444-444444444444")
    doc = ImportedRelease(platforms=["p"], user="u", packages=[package])
    (release,) = domain.import_releases([doc], id_seed="Spaces-1")
    orlo = store.orlo()
    assert orlo.claim_packages("Spaces-1", [release]) is None  # the other import's claim, after this one's
    orlo._withdraw("Spaces-1", release.packages, "an-earlier-claim")
    assert orlo.package_owner("Spaces-1", package.id) == release.id


def _release_writes_contended(monkeypatch: pytest.MonkeyPatch, times: int | None) -> list[int]:
    """``Store.transact`` as DynamoDB answers it while another write holds the release's item: a
    transaction writing a release is cancelled (``TransactionConflict`` on the release, ``None`` on the
    rest) the next ``times`` times (None: every time). The list counts those transactions."""
    from botocore.exceptions import ClientError

    from dora_insights.dal.store import Store

    transact = Store.transact
    attempts: list[int] = []

    def contended(self: Store, operations: Any) -> None:
        first = operations[0].get("Put", {}).get("Item", {})
        if first.get("SK", {}).get("S") == "RELEASE":
            attempts.append(len(operations))
            if times is None or len(attempts) <= times:
                reasons = [{"Code": "TransactionConflict"}] + [{"Code": "None"}] * (len(operations) - 1)
                error = {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"}
                raise ClientError({"Error": error, "CancellationReasons": reasons}, "TransactWriteItems")
        transact(self, operations)

    monkeypatch.setattr(Store, "transact", contended)
    return attempts


def test_a_release_step_still_contended_answers_503_not_a_conflict(
    api: Api, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Contention is no lost race: the step's transaction is sent again after short pauses, and one that
    stays cancelled answers 503 with Retry-After (send it again), with the release unchanged; a 409 would
    say another request changed the release, which none did."""
    from dora_insights.dal.store import CONTENTION_RETRIES

    rid = create_release(api, clock)
    pid = add_package(api, rid, "web", "2.0")
    attempts = _release_writes_contended(monkeypatch, None)
    refused = step(api, clock, START, rid=rid, pid=pid)
    assert refused.status == 503 and refused.headers.get("Retry-After") == "1", refused.body
    assert "retry" in refused.body["message"]
    assert len(attempts) == 1 + CONTENTION_RETRIES  # one read of the release, its write retried
    monkeypatch.undo()
    (package,) = ok(get(api, "/orlo/releases/{rid}", rid=rid))["releases"][0]["packages"]
    assert package["status"] == "NOT_STARTED"
    ok(step(api, clock, START, rid=rid, pid=pid), 204)


def test_a_release_step_briefly_contended_goes_through(api: Api, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    rid = create_release(api, clock)
    pid = add_package(api, rid, "web", "2.0")
    attempts = _release_writes_contended(monkeypatch, 1)
    ok(step(api, clock, START, rid=rid, pid=pid), 204)
    assert len(attempts) == 2
    (package,) = ok(get(api, "/orlo/releases/{rid}", rid=rid))["releases"][0]["packages"]
    assert package["status"] == "IN_PROGRESS"


def test_an_import_whose_release_write_stays_throttled_answers_503_and_its_retry_stores_it(
    api: Api, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The release's create cancelled for contention every time (``TransactionConflict``; a throttled
    transaction is cancelled alike, ``ThrottlingError``) is no "stored already":
    the import answers 503 instead of listing a release it did not store (withdrawing its package
    claims), and sent again it claims them again and stores it."""
    rid, pid = "44444444-4444-4444-4444-444444444444", "bbbbbbbb-bbbb-bbbb-bbbb-000000000001"
    attempts = _release_writes_contended(monkeypatch, None)
    refused = call(api, "POST", "/orlo/releases/import", body=[_imported(rid, pid)])
    assert refused.status == 503 and refused.headers.get("Retry-After") == "1", refused.body
    assert len(attempts) == 4
    monkeypatch.undo()
    assert store.orlo().get("Spaces-1", rid) is None
    assert ok(call(api, "POST", "/orlo/releases/import", body=[_imported(rid, pid)]))["releases"] == [rid]
    assert store.orlo().get("Spaces-1", rid) is not None
    assert store.orlo().package_owner("Spaces-1", pid) == rid


def test_an_import_stopped_after_its_deployments_stores_them_once_on_retry(
    api: Api, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import that stops between a release's deployments and the release (here a 503 writing the
    deployment) stores no release, so its retry writes both: a release stored first would tell the
    retry it was done, and its stopped packages would never become deployments."""
    from dora_insights.errors import WriteContendedError
    from dora_insights.logic import deployments

    rid, pid = "55555555-5555-5555-5555-555555555555", "cccccccc-cccc-cccc-cccc-000000000001"

    def contended(*args: Any, **kwargs: Any) -> Any:
        raise WriteContendedError("the deployment could not be written now, for concurrent writes; retry the request")

    monkeypatch.setattr(deployments, "ingest", contended)
    refused = call(api, "POST", "/orlo/releases/import", body=[_imported(rid, pid)])
    assert refused.status == 503 and refused.headers.get("Retry-After") == "1", refused.body
    monkeypatch.undo()
    assert store.orlo().get("Spaces-1", rid) is None
    for _ in range(2):  # the retry, and a re-import after it: one deployment, once
        assert ok(call(api, "POST", "/orlo/releases/import", body=[_imported(rid, pid)]))["releases"] == [rid]
        listed = api.call("GET", "/api/{spaceId}/deployments", path_params={"spaceId": "Spaces-1"}, key=ADMIN_KEY)
        assert [(d["project"], d["tenant"]) for d in listed.body["items"]] == [("web", "p")]
    assert store.orlo().get("Spaces-1", rid) is not None
