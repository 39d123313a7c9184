"""Orlo's read routes with Orlo's own filter semantics (API.md "Dialect: Orlo"; Orlo's source
eBayClassifiedsGroup/orlo: queries.py ``build_query``/``apply_filters``/``count_releases``, routes/info.py,
routes/stats.py).

- Filter values are SQL equality: exact text, case and white space included (``user=amy%20`` is the user
  "amy ", stored as sent); ``/info/...?platform=`` too.
- ``null``/``none`` (any case) as a text filter of ``/releases`` or ``/packages`` is Orlo's IS NULL: the
  releases without team, the packages without diff_url; for an attribute every release or package has
  (user, platform, package name, version) it matches nothing, and reads nothing.
- A user or team name longer than any stored one can be names nothing (``{}``, zeros, 404 "No releases
  found"), without reading, as an unknown name does; a huge duration bound is a filter, never a 5xx.
- Bad values are Orlo's 4xx in its error shape; time bounds, their spellings and their edges; paging of
  every filtered list (property tests against an oracle of the imported documents), and /info and /stats
  counts agreeing with the list.
"""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, NOW, Api, Clock, HttpResult
from tests.support.read_cost import Meter
from tests.support.seeds import seeds

FMT = "%Y-%m-%dT%H:%M:%SZ"


def basic(key: str = ADMIN_KEY) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"orlo:{key}".encode()).decode()}


def call(api: Api, method: str, route: str, **kwargs: Any) -> HttpResult:
    return api.call(method, route, headers=basic(), **kwargs)


def get(api: Api, route: str, query: dict[str, str] | None = None, **params: str) -> HttpResult:
    return call(api, "GET", route, path_params=params or None, query=query)


def ok(result: HttpResult, status: int = 200) -> Any:
    assert result.status == status, (result.status, result.body)
    return result.body


def ts(t: datetime) -> str:
    return t.astimezone(UTC).strftime(FMT)


def ids(result: HttpResult) -> list[str]:
    assert result.status in (200, 404), (result.status, result.body)
    return [r["id"] for r in result.body["releases"]]


def orlo_error(result: HttpResult) -> None:
    """A 4xx in Orlo's error shape (API.md: {"message": "...", "errors": [...]}), never a 5xx."""
    assert 400 <= result.status < 500, (result.status, result.body)
    assert isinstance(result.body, dict) and isinstance(result.body.get("message"), str), result.body


def create(
    api: Api, user: str, platforms: list[str], team: str | None = None, packages: list[dict[str, Any]] = ()
) -> str:  # type: ignore[assignment]
    body: dict[str, Any] = {"user": user, "platforms": platforms}
    if team is not None:
        body["team"] = team
    rid = ok(call(api, "POST", "/orlo/releases", body=body))["id"]
    for pkg in packages:
        ok(call(api, "POST", "/orlo/releases/{rid}/packages", path_params={"rid": rid}, body=pkg))
    return str(rid)


def run_package(api: Api, clock: Clock, rid: str, pid: str, success: bool) -> None:
    route = "/orlo/releases/{rid}/packages/{pid}/"
    ok(call(api, "POST", route + "start", path_params={"rid": rid, "pid": pid}), 204)
    clock.advance(timedelta(seconds=5))
    ok(call(api, "POST", route + "stop", path_params={"rid": rid, "pid": pid}, body={"success": success}), 204)


# --------------------------------------------------------------------------- exact (SQL equality) filter values


def test_user_filter_is_exact_not_stripped(api: Api, clock: Clock) -> None:
    """Orlo compares ``Release.user == value`` (SQL equality): ``user=amy%20`` names the user "amy " (which
    the service stores as sent), not "amy"."""
    plain = create(api, "amy", ["eu"])
    clock.advance(timedelta(seconds=1))
    spaced = create(api, "amy ", ["eu"])
    assert ids(get(api, "/orlo/releases", {"user": "amy"})) == [plain]
    assert ids(get(api, "/orlo/releases", {"user": "amy "})) == [spaced]


def test_team_and_platform_filters_are_exact_not_stripped(api: Api, clock: Clock) -> None:
    plain = create(api, "bob", ["eu"], team="red")
    clock.advance(timedelta(seconds=1))
    spaced = create(api, "bob", [" eu"], team=" red")
    assert ids(get(api, "/orlo/releases", {"team": " red"})) == [spaced]
    assert ids(get(api, "/orlo/releases", {"platform": " eu"})) == [spaced]
    assert ids(get(api, "/orlo/releases", {"platform": "eu"})) == [plain]


def test_info_platform_query_is_exact_not_stripped(api: Api, clock: Clock) -> None:
    """``/info/users?platform=`` is Orlo's ``Platform.name == platform``."""
    create(api, "amy", ["eu"])
    clock.advance(timedelta(seconds=1))
    create(api, "bob", ["eu "])
    assert ok(get(api, "/orlo/info/{facet}", {"platform": "eu "}, facet="users")) == {"bob": {"releases": 1}}
    assert ok(get(api, "/orlo/info/{facet}", {"platform": "eu"}, facet="users")) == {"amy": {"releases": 1}}


def test_filters_are_case_sensitive(api: Api, clock: Clock) -> None:
    """SQL equality as Orlo's: case matters for user, team, platform and package name."""
    a = create(api, "Amy", ["EU"], team="Red", packages=[{"name": "Web", "version": "1"}])
    clock.advance(timedelta(seconds=1))
    b = create(api, "amy", ["eu"], team="red", packages=[{"name": "web", "version": "1"}])
    for key, upper, lower in (
        ("user", "Amy", "amy"),
        ("team", "Red", "red"),
        ("platform", "EU", "eu"),
        ("package_name", "Web", "web"),
    ):
        assert ids(get(api, "/orlo/releases", {key: upper})) == [a], key
        assert ids(get(api, "/orlo/releases", {key: lower})) == [b], key
    assert get(api, "/orlo/releases", {"user": "AMY"}).status == 404
    assert ok(get(api, "/orlo/info/{facet}/{name}", facet="packages", name="WEB")) == {}
    assert ok(get(api, "/orlo/info/packages/list", {"platform": "Eu"})) == {"packages": []}


def test_null_value_selects_missing_diff_url(api: Api, clock: Clock) -> None:
    """Orlo's ``releases()`` turns any filter value "null"/"none" into None (SQL IS NULL): ``package_diff_url=null``
    finds the releases with a package without diff_url."""
    without = create(api, "amy", ["eu"], packages=[{"name": "web", "version": "1"}])
    clock.advance(timedelta(seconds=1))
    create(api, "amy", ["eu"], packages=[{"name": "web", "version": "2", "diff_url": "http://x/d"}])
    for value in ("null", "None", "NULL"):
        assert ids(get(api, "/orlo/releases", {"package_diff_url": value})) == [without], value
        res = get(api, "/orlo/packages", {"diff_url": value})
        assert [p["version"] for p in ok(res)["packages"]] == ["1"], value
    assert ids(get(api, "/orlo/releases", {"package_diff_url": "http://x/d", "package_name": "web"})) != [without]


def test_null_value_of_an_attribute_every_release_has_matches_nothing(api: Api, clock: Clock, meter: Meter) -> None:
    """Orlo's IS NULL on user, platform, package name or version (never null) selects nothing, also where a
    release holds the text "null"; ``user=null`` reads no index (no release is without a user)."""
    create(api, "null", ["none"], team="red", packages=[{"name": "null", "version": "none"}])
    for key in ("user", "platform", "package_name", "package_version"):
        for value in ("null", "None"):
            res = get(api, "/orlo/releases", {key: value})
            assert (res.status, res.body["releases"]) == (404, []), (key, value)
    for key in ("name", "version"):
        assert get(api, "/orlo/packages", {key: "null"}).status == 404, key
    meter.reset()
    assert ok(get(api, "/orlo/stats/by_date/{subject}", {"user": "null"}, subject="release")) == {}
    assert get(api, "/orlo/releases", {"user": "NULL", "team": "red"}).status == 404
    assert meter.queried["ORLO"] == 0, str(meter)
    # outside /releases and /packages a name is taken as it is (Orlo's info and stats queries do not convert)
    assert ok(get(api, "/orlo/info/{facet}/{name}", facet="users", name="null")) == {"null": {"releases": 1}}
    assert ok(get(api, "/orlo/info/{facet}", {"platform": "none"}, facet="users")) == {"null": {"releases": 1}}


# --------------------------------------------------------------------------- bad input: Orlo's 4xx, never a 5xx


BAD_RELEASE_QUERIES = [
    {"status": "DONE"},
    {"status": "successful"},
    {"package_status": "bogus"},
    {"limit": "ten"},
    {"limit": "1.5"},
    {"offset": "x"},
    {"stime_before": "yesterday-ish"},
    {"ftime_after": "2024-13-45T00:00:00Z"},
    {"duration_lt": "abc"},
    {"package_duration_gt": "1e3x"},
    {"rollback": "maybe"},
    {"package_rollback": "perhaps"},
    {"nonsense": "1"},
    {"asc": "sideways"},
    {"stime_after": "99999999999999999999"},
    {"stime_before": "-5"},
]


@pytest.mark.parametrize("query", BAD_RELEASE_QUERIES, ids=lambda q: "&".join(f"{k}={v}" for k, v in q.items()))
def test_bad_release_filters_are_4xx(api: Api, clock: Clock, query: dict[str, str]) -> None:
    create(api, "amy", ["eu"], packages=[{"name": "web", "version": "1"}])
    orlo_error(get(api, "/orlo/releases", query))
    orlo_error(get(api, "/orlo/stats/by_date/{subject}", query, subject="release"))


@pytest.mark.parametrize("bad", ["not-a-time", "2024-02-30T00:00:00Z", "99999999999999999999", "1e400"])
def test_bad_stats_times_are_4xx(api: Api, clock: Clock, bad: str) -> None:
    create(api, "amy", ["eu"])
    orlo_error(get(api, "/orlo/stats", {"stime": bad}))
    orlo_error(get(api, "/orlo/stats/{field}", {"ftime": bad}, field="user"))
    orlo_error(get(api, "/orlo/stats/{field}/{name}", {"stime": bad}, field="platform", name="eu"))


@pytest.mark.parametrize("bad", ["x", "not-a-uuid", "1234", "0" * 33])
def test_malformed_ids_are_400(api: Api, clock: Clock, bad: str) -> None:
    res = get(api, "/orlo/releases/{rid}", rid=bad)
    assert res.status == 400, (res.status, res.body)
    orlo_error(res)
    res = get(api, "/orlo/packages/{pid}", pid=bad)
    assert res.status == 400, (res.status, res.body)


@pytest.mark.parametrize(
    "long", ["u" * 3000, "\u00e9" * 1100, "v" * 201], ids=["ascii3000", "utf8-2200bytes", "over-the-name-cap"]
)
def test_long_unknown_names_answer_empty_not_errors(api: Api, clock: Clock, long: str) -> None:
    """A name no release can have (names are at most 200 characters) names nothing: /info/users/{u} -> {},
    /stats/{f}/{name} -> zeros, /releases?user=|team= -> 404 "No releases found" (API.md: unknown -> {},
    zeros if unknown; "an id in the path that no stored id can be ... names nothing ... as an unknown id")."""
    create(api, "amy", ["eu"], team="red")
    zeros = {"releases": {k: {"successful": 0, "failed": 0} for k in ("normal", "rollback", "total")}}
    problems = []
    res = get(api, "/orlo/info/{facet}/{name}", facet="users", name=long)
    if (res.status, res.body) != (200, {}):
        problems.append(("info/users", res.status))
    for field in ("user", "team", "platform", "package"):
        res = get(api, "/orlo/stats/{field}/{name}", field=field, name=long)
        if (res.status, res.body) != (200, {long: zeros}):
            problems.append((f"stats/{field}", res.status))
    for key in ("user", "team", "platform", "package_name"):
        res = get(api, "/orlo/releases", {key: long})
        if res.status != 404 or res.body.get("releases") != []:
            problems.append((f"releases?{key}", res.status))
    res = get(api, "/orlo/stats/by_date/{subject}", {"user": long}, subject="release")
    if (res.status, res.body) != (200, {}):
        problems.append(("by_date?user", res.status))
    assert not problems, problems


def test_a_name_no_key_can_hold_reads_nothing(api: Api, clock: Clock, meter: Meter) -> None:
    """A user or team name whose index key would pass DynamoDB's partition-key limit is in no stored key:
    the routes answer as for an unknown name without a Query."""
    create(api, "amy", ["eu"], team="red")
    long = "w" * 2100
    meter.reset()
    assert ok(get(api, "/orlo/info/{facet}/{name}", facet="users", name=long)) == {}
    assert get(api, "/orlo/releases", {"team": long}).status == 404
    assert get(api, "/orlo/releases", {"user": long, "stime_after": ts(NOW - timedelta(days=1))}).status == 404
    assert set(ok(get(api, "/orlo/stats/{field}/{name}", field="team", name=long))) == {long}
    assert meter.queried["ORLO"] == 0, str(meter)


def test_teamless_filter_values(api: Api, clock: Clock) -> None:
    """team=null / none (any case) selects the releases without team (Orlo's IS NULL)."""
    none = create(api, "amy", ["eu"])
    clock.advance(timedelta(seconds=1))
    create(api, "amy", ["eu"], team="red")
    for value in ("null", "None", "NULL", "none"):
        assert ids(get(api, "/orlo/releases", {"team": value})) == [none], value
        assert ids(get(api, "/orlo/releases", {"team": value, "user": "amy"})) == [none], value


def test_restart_moves_the_release_in_lists_and_windows(api: Api, clock: Clock) -> None:
    """/releases/{rid}/start stamps stime again (before any package stopped): lists, bounds and stats follow."""
    a = create(api, "amy", ["eu"], team="red", packages=[{"name": "web", "version": "1"}])
    clock.advance(timedelta(minutes=5))
    b = create(api, "amy", ["eu"], team="red", packages=[{"name": "web", "version": "2"}])
    t_b = clock()
    clock.advance(timedelta(minutes=5))
    ok(call(api, "POST", "/orlo/releases/{rid}/start", path_params={"rid": a}), 204)
    t_a = clock()
    assert ok(get(api, "/orlo/releases/{rid}", rid=a))["releases"][0]["stime"] == ts(t_a)
    for base in ({}, {"user": "amy"}, {"team": "red"}, {"platform": "eu"}):
        assert ids(get(api, "/orlo/releases", base)) == [a, b], base
        assert ids(get(api, "/orlo/releases", dict(base, stime_after=ts(t_b)))) == [a], base
        assert ids(get(api, "/orlo/releases", dict(base, stime_before=ts(t_a)))) == [b], base
        assert ids(get(api, "/orlo/releases", dict(base, limit="1", offset="1"))) == [b], base
    pid = ok(get(api, "/orlo/releases/{rid}", rid=a))["releases"][0]["packages"][0]["id"]
    run_package(api, clock, a, pid, True)
    c = ok(get(api, "/orlo/stats", {"stime": ts(t_a), "ftime": ts(t_a)}))["global"]["releases"]["total"]
    assert c == {"successful": 1, "failed": 0}
    c = ok(get(api, "/orlo/stats", {"ftime": ts(t_b)}))["global"]["releases"]["total"]
    assert c == {"successful": 0, "failed": 0}


# --------------------------------------------------------------------------- time edges


def test_inverted_ranges_are_empty_not_errors(api: Api, clock: Clock) -> None:
    rid = create(api, "amy", ["eu"], packages=[{"name": "web", "version": "1"}])
    pid = ok(get(api, "/orlo/releases/{rid}", rid=rid))["releases"][0]["packages"][0]["id"]
    run_package(api, clock, rid, pid, True)
    later, earlier = ts(NOW + timedelta(hours=1)), ts(NOW - timedelta(hours=1))
    zeros = {"releases": {k: {"successful": 0, "failed": 0} for k in ("normal", "rollback", "total")}}
    assert ok(get(api, "/orlo/stats", {"stime": later, "ftime": earlier})) == {"global": zeros}
    assert ok(get(api, "/orlo/stats/{field}", {"stime": later, "ftime": earlier}, field="user")) == {"amy": zeros}
    res = get(api, "/orlo/releases", {"stime_after": later, "stime_before": earlier})
    assert res.status == 404, (res.status, res.body)
    res = get(api, "/orlo/releases", {"stime_after": later, "stime_before": earlier, "user": "amy"})
    assert res.status == 404, (res.status, res.body)


def test_stats_bounds_are_inclusive_and_releases_bounds_exclusive(api: Api, clock: Clock) -> None:
    rels = []
    for i in range(3):
        rid = create(api, "amy", ["eu"], packages=[{"name": "web", "version": str(i)}])
        pid = ok(get(api, "/orlo/releases/{rid}", rid=rid))["releases"][0]["packages"][0]["id"]
        stime = clock()
        run_package(api, clock, rid, pid, i != 1)
        rels.append((rid, stime))
        clock.advance(timedelta(minutes=10))
    first, mid, last = (s for _, s in rels)
    c = ok(get(api, "/orlo/stats", {"stime": ts(first), "ftime": ts(last)}))["global"]["releases"]["total"]
    assert c == {"successful": 2, "failed": 1}
    c = ok(get(api, "/orlo/stats", {"stime": ts(mid), "ftime": ts(mid)}))["global"]["releases"]["total"]
    assert c == {"successful": 0, "failed": 1}
    assert ids(get(api, "/orlo/releases", {"stime_after": ts(first), "stime_before": ts(last)})) == [rels[1][0]]
    # an offset time names the same instant
    plus1 = (mid + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+01:00")
    c = ok(get(api, "/orlo/stats", {"stime": plus1, "ftime": plus1}))["global"]["releases"]["total"]
    assert c == {"successful": 0, "failed": 1}


# --------------------------------------------------------------------------- /releases/{rid}


def test_release_id_in_any_case_and_an_unknown_one(api: Api, clock: Clock) -> None:
    """An upper-case rid names the release; an unknown rid -> 404 {"message", "releases": []}."""
    rid = create(api, "amy", ["eu"], packages=[{"name": "web", "version": "1"}])
    assert ids(get(api, "/orlo/releases/{rid}", rid=rid.upper())) == [rid]
    unknown = "00000000-0000-4000-8000-000000000000"
    res = get(api, "/orlo/releases/{rid}", rid=unknown)
    assert res.status == 404 and res.body["releases"] == [] and isinstance(res.body["message"], str)


# --------------------------------------------------------------------------- property: paging, filters, info vs lists


USERS = ["amy", "Amy", "bob"]
TEAMS = ["red", "blue", None]
PLATFORMS = ["eu", "us", "asia"]
NAMES = ["web", "api", "db"]


def imported_history(api: Api, rng: random.Random, n: int) -> list[dict[str, Any]]:
    """Imported releases with coarse stimes (many ties) and some without stime; each doc kept as the oracle."""
    docs: list[dict[str, Any]] = []
    for i in range(n):
        untimed = rng.random() < 0.15
        stime = None if untimed else NOW - timedelta(hours=rng.randint(0, 6))
        pkgs = []
        for name in rng.sample(NAMES, rng.randint(0, 3)):
            status = (
                "NOT_STARTED"
                if untimed
                else rng.choice(["SUCCESSFUL", "SUCCESSFUL", "FAILED", "IN_PROGRESS", "NOT_STARTED"])
            )
            pkgs.append(
                {
                    "name": name,
                    "version": f"{rng.randint(1, 3)}.{i}",
                    "status": status,
                    "rollback": rng.random() < 0.3,
                    "stime": None,
                    "ftime": ts(stime + timedelta(seconds=rng.randint(0, 60)))
                    if status in ("SUCCESSFUL", "FAILED") and stime
                    else None,
                }
            )
        doc: dict[str, Any] = {
            "user": rng.choice(USERS),
            "team": rng.choice(TEAMS),
            "platforms": rng.sample(PLATFORMS, rng.randint(1, 2)),
            "references": [f"R-{i}-{rng.random()}"],
            "stime": ts(stime) if stime else None,
            "ftime": ts(stime + timedelta(seconds=rng.randint(0, 120))) if stime and rng.random() < 0.5 else None,
            "packages": pkgs,
        }
        docs.append(doc)
    got = ok(call(api, "POST", "/orlo/releases/import", body=docs))["releases"]
    for doc, rid in zip(docs, got, strict=True):
        doc["id"] = rid
    return docs


def _st(doc: dict[str, Any]) -> datetime | None:
    return datetime.strptime(doc["stime"], FMT).replace(tzinfo=UTC) if doc["stime"] else None


def _ordered(docs: list[dict[str, Any]], asc: bool) -> list[str]:
    timed = sorted((d for d in docs if d["stime"]), key=lambda d: d["id"])
    timed = sorted(timed, key=lambda d: d["stime"], reverse=not asc)
    untimed = sorted((d for d in docs if not d["stime"]), key=lambda d: d["id"])
    return [d["id"] for d in timed + untimed]


def _status(doc: dict[str, Any], status: str) -> bool:
    s = [p["status"] for p in doc["packages"]]
    if not s:
        return False
    if status in ("SUCCESSFUL", "NOT_STARTED"):
        return all(x == status for x in s)
    if status == "FAILED":
        return "FAILED" in s
    return "IN_PROGRESS" in s and "FAILED" not in s


def oracle(docs: list[dict[str, Any]], q: dict[str, str]) -> list[str]:
    out = list(docs)
    for k, v in q.items():
        if k == "user":
            out = [d for d in out if d["user"] == v]
        elif k == "team":
            out = [d for d in out if d["team"] == v]
        elif k == "platform":
            out = [d for d in out if v in d["platforms"]]
        elif k == "status":
            out = [d for d in out if _status(d, v)]
        elif k == "rollback":
            out = [d for d in out if any(p["rollback"] for p in d["packages"]) == (v == "true")]
        elif k in ("package_name", "package_version", "package_status", "package_ftime_after", "package_ftime_before"):
            continue  # below: every package_ filter holds for one same package (Orlo's join)
        elif k == "duration_lt":
            out = [d for d in out if _dur(d) is not None and _dur(d) < int(v)]  # type: ignore[operator]
        elif k == "duration_gt":
            out = [d for d in out if _dur(d) is not None and _dur(d) > int(v)]  # type: ignore[operator]
        elif k == "ftime_after":
            out = [d for d in out if d["ftime"] is not None and d["ftime"] > v]
        elif k == "ftime_before":
            out = [d for d in out if d["ftime"] is not None and d["ftime"] < v]
        elif k in ("package_duration_lt", "package_duration_gt"):
            continue
        elif k == "stime_after":
            out = [d for d in out if _st(d) is not None and ts(_st(d)) > v]  # type: ignore[arg-type]
        elif k == "stime_before":
            out = [d for d in out if _st(d) is not None and ts(_st(d)) < v]  # type: ignore[arg-type]
    pl, pg = q.get("package_duration_lt"), q.get("package_duration_gt")
    if any(k.startswith("package_") for k in q):

        def pok(p: dict[str, Any], d: dict[str, Any]) -> bool:
            if q.get("package_name", p["name"]) != p["name"] or q.get("package_version", p["version"]) != p["version"]:
                return False
            if q.get("package_status", p["status"]) != p["status"]:
                return False
            fa, fb = q.get("package_ftime_after"), q.get("package_ftime_before")
            if fa is not None and not (p["ftime"] and p["ftime"] > fa):
                return False
            if fb is not None and not (p["ftime"] and p["ftime"] < fb):
                return False
            if pl is None and pg is None:
                return True
            dur = _pdur(p, d)
            return dur is not None and (pl is None or dur < int(pl)) and (pg is None or dur > int(pg))

        out = [d for d in out if any(pok(p, d) for p in d["packages"])]
    return _ordered(out, asc=False)


def _at(text: str) -> datetime:
    return datetime.strptime(text, FMT).replace(tzinfo=UTC)


def _dur(d: dict[str, Any]) -> int | None:
    if not d["stime"] or not d["ftime"]:
        return None
    return int((_at(d["ftime"]) - _at(d["stime"])).total_seconds())


def _pdur(p: dict[str, Any], d: dict[str, Any]) -> int | None:
    if not d["stime"] or not p["ftime"]:
        return None
    return int((_at(p["ftime"]) - _at(d["stime"])).total_seconds())


def random_filter(rng: random.Random, docs: list[dict[str, Any]]) -> dict[str, str]:
    q: dict[str, str] = {}
    for _ in range(rng.randint(0, 2)):
        k = rng.choice(
            [
                "user",
                "team",
                "platform",
                "status",
                "rollback",
                "package_name",
                "package_version",
                "stime_after",
                "stime_before",
                "duration_lt",
                "duration_gt",
                "ftime_after",
                "ftime_before",
                "package_duration_lt",
                "package_duration_gt",
                "package_status",
                "package_ftime_after",
                "package_ftime_before",
            ]
        )
        if k == "user":
            q[k] = rng.choice(USERS)
        elif k == "team":
            q[k] = rng.choice(["red", "blue"])
        elif k == "platform":
            q[k] = rng.choice(PLATFORMS)
        elif k in ("status", "package_status"):
            q[k] = rng.choice(["SUCCESSFUL", "FAILED", "IN_PROGRESS", "NOT_STARTED"])
        elif k.startswith("package_ftime"):
            fts = [p["ftime"] for d in docs for p in d["packages"] if p["ftime"]] or [ts(NOW)]
            t = datetime.strptime(rng.choice(fts), FMT).replace(tzinfo=UTC)
            q[k] = ts(t + timedelta(seconds=rng.choice([-1, 0, 1])))
        elif k == "rollback":
            q[k] = rng.choice(["true", "false"])
        elif k == "package_name":
            q[k] = rng.choice(NAMES)
        elif k == "package_version":
            versions = [p["version"] for d in docs for p in d["packages"]] or ["1.0"]
            q[k] = rng.choice(versions)
        elif "duration" in k:
            q[k] = str(rng.randint(0, 120))
        elif k.startswith("ftime"):
            fts = [d["ftime"] for d in docs if d["ftime"]] or [ts(NOW)]
            t = datetime.strptime(rng.choice(fts), FMT).replace(tzinfo=UTC)
            q[k] = ts(t + timedelta(seconds=rng.choice([-1, 0, 1])))
        else:
            q[k] = ts(NOW - timedelta(hours=rng.randint(0, 6)))
    return q


@pytest.mark.parametrize("seed", seeds([11, 12, 13]))
def test_paging_partitions_every_filtered_list(api: Api, clock: Clock, seed: int) -> None:
    """limit/offset pages of one query, put together, are the whole list in order: no duplicate, no gap,
    ties by id, releases without stime last (asc and desc)."""
    rng = random.Random(seed)
    docs = imported_history(api, rng, rng.randint(18, 26))
    for _ in range(10):
        q = random_filter(rng, docs)
        want_desc = oracle(docs, q)
        for asc in (False, True):
            full = want_desc if not asc else _ordered([d for d in docs if d["id"] in set(want_desc)], asc=True)
            whole = ids(get(api, "/orlo/releases", dict(q, limit="1000", asc=str(asc).lower())))
            assert whole == full, (q, asc)
            limit = rng.randint(1, 5)
            got: list[str] = []
            for offset in range(0, len(full) + limit, limit):
                page = dict(q, limit=str(limit), offset=str(offset), asc=str(asc).lower())
                got += ids(get(api, "/orlo/releases", page))
            assert got == full, (q, asc, limit)


@pytest.mark.parametrize("seed", seeds([11, 12, 13]))
def test_info_and_stats_agree_with_the_release_list(api: Api, clock: Clock, seed: int) -> None:
    """/info and /stats counts are the counts of what /releases lists for the same selection."""
    rng = random.Random(seed)
    docs = imported_history(api, rng, rng.randint(12, 20))
    every = ids(get(api, "/orlo/releases", {"limit": "1000"}))
    assert sorted(every) == sorted(d["id"] for d in docs)
    users = ok(get(api, "/orlo/info/{facet}", facet="users"))
    for user in USERS:
        n = len(ids(get(api, "/orlo/releases", {"user": user, "limit": "1000"})))
        assert users.get(user, {"releases": 0})["releases"] == n, user
        assert ok(get(api, "/orlo/info/{facet}/{name}", facet="users", name=user)) == (
            {user: {"releases": n}} if n else {}
        )
    plats = ok(get(api, "/orlo/info/{facet}", facet="platforms"))
    for platform in PLATFORMS:
        n = len(ids(get(api, "/orlo/releases", {"platform": platform, "limit": "1000"})))
        assert plats.get(platform, {"releases": 0})["releases"] == n, platform
        assert ok(get(api, "/orlo/info/{facet}/{name}", facet="platforms", name=platform)) == (
            {platform: {"releases": n}} if n else {}
        )
    names = ok(get(api, "/orlo/info/packages/list"))["packages"]
    assert sorted(names) == sorted({p["name"] for d in docs for p in d["packages"]})
    for field, pool, key in (
        ("user", USERS, "user"),
        ("platform", PLATFORMS, "platform"),
        ("package", NAMES, "package_name"),
        ("team", ["red", "blue"], "team"),
    ):
        for name in pool:
            got = ok(get(api, "/orlo/stats/{field}/{name}", field=field, name=name))[name]["releases"]
            for status, column in (("SUCCESSFUL", "successful"), ("FAILED", "failed")):
                listed = set(ids(get(api, "/orlo/releases", {key: name, "status": status, "limit": "1000"})))
                rb = set(
                    ids(get(api, "/orlo/releases", {key: name, "status": status, "rollback": "true", "limit": "1000"}))
                )
                assert got["total"][column] == len(listed), (field, name, status)
                assert got["rollback"][column] == len(rb), (field, name, status)
                assert got["normal"][column] == len(listed - rb), (field, name, status)
    glob = ok(get(api, "/orlo/stats"))["global"]["releases"]
    for status, column in (("SUCCESSFUL", "successful"), ("FAILED", "failed")):
        assert glob["total"][column] == len(ids(get(api, "/orlo/releases", {"status": status, "limit": "1000"})))


# --------------------------------------------------------------------------- /packages


@pytest.mark.parametrize("seed", seeds([11, 12]))
def test_packages_paging_partitions_the_list(api: Api, clock: Clock, seed: int) -> None:
    rng = random.Random(seed)
    docs = imported_history(api, rng, 15)
    all_pkgs = [p for d in docs for p in d["packages"]]
    for q in ({}, {"name": "web"}, {"status": "SUCCESSFUL"}, {"rollback": "true"}):
        whole = get(api, "/orlo/packages", dict(q, limit="1000"))
        assert whole.status in (200, 404)
        full = [p["id"] for p in whole.body["packages"]]
        assert len(full) == len(set(full))
        want = [p for p in all_pkgs if all(str(p[k]).lower() == v.lower() for k, v in q.items())]
        assert len(full) == len(want), q
        limit = rng.randint(1, 4)
        got: list[str] = []
        for offset in range(0, len(full) + limit, limit):
            res = get(api, "/orlo/packages", dict(q, limit=str(limit), offset=str(offset)))
            got += [p["id"] for p in res.body["packages"]]
        assert got == full, (q, limit)


# --------------------------------------------------------------------------- time spellings Orlo (arrow) takes

NOW_SPELLINGS = [
    "2024-03-01T12:00:00Z",
    "2024-03-01T12:00:00",
    "2024-03-01T12:00:00.000Z",
    "2024-03-01T12:00:00+00:00",
    "2024-03-01T13:00:00+01:00",
    "2024-03-01 12:00:00",
    "1709294400",
]


@pytest.mark.parametrize("spelling", NOW_SPELLINGS)
def test_time_spellings_name_the_same_instant(api: Api, clock: Clock, spelling: str) -> None:
    clock.now = NOW - timedelta(hours=1)
    before = create(api, "amy", ["eu"], packages=[{"name": "web", "version": "1"}])
    clock.now = NOW
    at = create(api, "amy", ["eu"], packages=[{"name": "web", "version": "2"}])
    clock.now = NOW + timedelta(hours=1)
    after = create(api, "amy", ["eu"], packages=[{"name": "web", "version": "3"}])
    assert ids(get(api, "/orlo/releases", {"stime_after": spelling})) == [after]
    assert ids(get(api, "/orlo/releases", {"stime_before": spelling})) == [before]
    assert ids(get(api, "/orlo/releases", {"stime_after": spelling, "user": "amy", "asc": "true"})) == [after]
    for rid in (before, at, after):
        pid = ok(get(api, "/orlo/releases/{rid}", rid=rid))["releases"][0]["packages"][0]["id"]
        run_package(api, clock, rid, pid, True)
    c = ok(get(api, "/orlo/stats", {"stime": spelling, "ftime": spelling}))["global"]["releases"]["total"]
    assert c == {"successful": 1, "failed": 0}
    got = ok(get(api, "/orlo/stats/{field}", {"stime": spelling}, field="user"))["amy"]["releases"]["total"]
    assert got == {"successful": 2, "failed": 0}


@pytest.mark.parametrize(
    "query",
    [
        {"duration_lt": "99999999999999999999"},
        {"duration_gt": "99999999999999999999"},
        {"package_duration_lt": "99999999999999999999"},
        {"package_duration_gt": "99999999999999999999"},
        {"duration_lt": "9" * 400},
    ],
    ids=lambda q: next(iter(q)) + ("-400-digits" if len(next(iter(q.values()))) > 100 else ""),
)
def test_huge_numbers_are_answered_not_5xx(api: Api, clock: Clock, query: dict[str, str]) -> None:
    """API.md: every error is a 4xx, never a 5xx, for anything a client sent; a huge duration bound either
    matches (lt) or not (gt), or is refused as a 400 -- never a crash."""
    rid = create(api, "amy", ["eu"], packages=[{"name": "web", "version": "1"}])
    pid = ok(get(api, "/orlo/releases/{rid}", rid=rid))["releases"][0]["packages"][0]["id"]
    run_package(api, clock, rid, pid, True)
    clock.advance(timedelta(seconds=10))
    ok(call(api, "POST", "/orlo/releases/{rid}/stop", path_params={"rid": rid}), 204)
    problems = []
    checks = [
        ("/orlo/releases", query, {}),
        ("/orlo/stats/by_date/{subject}", query, {"subject": "release"}),
        ("/orlo/packages", {k.removeprefix("package_"): v for k, v in query.items()}, {}),
    ]
    for route, q, params in checks:
        try:
            res = get(api, route, q, **params)
        except Exception as error:  # the function crashed: API Gateway answers 500
            problems.append((route, q, repr(error)))
            continue
        if res.status >= 500:
            problems.append((route, q, res.status))
    assert not problems, problems


def test_a_huge_duration_bound_selects_every_duration_or_none(api: Api, clock: Clock) -> None:
    """A bound past any duration (past what a timedelta holds, too): ``_lt`` selects every timed one, ``_gt``
    none, as a smaller bound would."""
    rid = create(api, "amy", ["eu"], packages=[{"name": "web", "version": "1"}])
    pid = ok(get(api, "/orlo/releases/{rid}", rid=rid))["releases"][0]["packages"][0]["id"]
    run_package(api, clock, rid, pid, True)
    ok(call(api, "POST", "/orlo/releases/{rid}/stop", path_params={"rid": rid}), 204)
    huge = "9" * 40
    assert ids(get(api, "/orlo/releases", {"duration_lt": huge})) == [rid]
    assert ids(get(api, "/orlo/releases", {"package_duration_lt": huge})) == [rid]
    assert get(api, "/orlo/releases", {"duration_gt": huge}).status == 404
    assert get(api, "/orlo/releases", {"package_duration_gt": huge}).status == 404
    assert [p["id"] for p in ok(get(api, "/orlo/packages", {"duration_lt": huge}))["packages"]] == [pid]
    assert get(api, "/orlo/packages", {"duration_gt": huge}).status == 404
    assert ok(get(api, "/orlo/stats/by_date/{subject}", {"duration_gt": huge}, subject="release")) == {}


def _pkg(name: str, version: str, status: str, stime: datetime, rollback: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "status": status,
        "rollback": rollback,
        "stime": ts(stime),
        "ftime": ts(stime + timedelta(seconds=5)) if status in ("SUCCESSFUL", "FAILED") else None,
    }


def _doc(user: str, platforms: list[str], stime: datetime, packages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "user": user,
        "platforms": platforms,
        "stime": ts(stime),
        "ftime": ts(stime + timedelta(minutes=1)),
        "packages": packages,
        "references": [f"{user}-{stime.isoformat()}-{len(packages)}"],
    }


def test_package_versions_by_start_time_platform_and_release(api: Api, clock: Clock) -> None:
    t = NOW - timedelta(days=1)
    docs = [
        _doc("amy", ["eu"], t, [_pkg("web", "2.0", "SUCCESSFUL", t)]),
        # later start, lower version (a rollback): wins
        _doc("amy", ["eu"], t + timedelta(hours=1), [_pkg("web", "1.5", "SUCCESSFUL", t + timedelta(hours=1), True)]),
        # even later but FAILED: ignored
        _doc("amy", ["eu"], t + timedelta(hours=2), [_pkg("web", "3.0", "FAILED", t + timedelta(hours=2))]),
        # us only, latest, but its release is not SUCCESSFUL as a whole (api failed)
        _doc(
            "bob",
            ["us"],
            t + timedelta(hours=3),
            [
                _pkg("web", "4.0", "SUCCESSFUL", t + timedelta(hours=3)),
                _pkg("api", "9", "FAILED", t + timedelta(hours=3)),
            ],
        ),
        # a mixed release (SUCCESSFUL + NOT_STARTED): no release status
        _doc(
            "bob",
            ["eu"],
            t + timedelta(hours=4),
            [
                _pkg("db", "7", "SUCCESSFUL", t + timedelta(hours=4)),
                {"name": "cache", "version": "1", "status": "NOT_STARTED"},
            ],
        ),
    ]
    ok(call(api, "POST", "/orlo/releases/import", body=docs))
    assert ok(get(api, "/orlo/info/packages/versions")) == {"web": "4.0", "db": "7"}
    assert ok(get(api, "/orlo/info/packages/versions", {"platform": "eu"})) == {"web": "1.5", "db": "7"}
    assert ok(get(api, "/orlo/info/packages/versions", {"platform": "us"})) == {"web": "4.0"}
    assert ok(get(api, "/orlo/info/packages/versions", {"by_release": "true"})) == {"web": "1.5"}
    assert ok(get(api, "/orlo/info/packages/versions", {"by_release": "true", "platform": "us"})) == {}
    assert ok(get(api, "/orlo/info/packages/list", {"platform": "us"})) == {"packages": ["api", "web"]}
    assert ok(get(api, "/orlo/info/{facet}", {"platform": "us"}, facet="packages")) == {
        "api": {"releases": 1},
        "web": {"releases": 1},
    }
    assert ok(get(api, "/orlo/info/{facet}/{name}", facet="packages", name="web")) == {"web": {"releases": 4}}


@pytest.mark.xfail(
    strict=True,
    reason="left: test_bad_input.py::test_orlo_import_and_queries_refuse_times_outside_the_range asserts a 400"
    " for a query time bound outside 1970..2100 (stime_before on /orlo/releases, ftime_after on /orlo/packages,"
    " stime on /orlo/stats)",
)
@pytest.mark.parametrize("bound", ["1960-01-01T00:00:00Z", "2200-01-01T00:00:00Z"])
def test_time_bounds_outside_the_service_range_select_nothing_or_everything(api: Api, clock: Clock, bound: str) -> None:
    """Orlo (arrow) takes any time: a bound before every release or after every one is an ordinary filter
    (stime_before=1960 -> 404 "No releases found"; stime_after=1960 -> everything)."""
    rid = create(api, "amy", ["eu"])
    early = bound.startswith("1960")
    res = get(api, "/orlo/releases", {"stime_before": bound})
    assert res.status == (404 if early else 200), (res.status, res.body)
    res = get(api, "/orlo/releases", {"stime_after": bound})
    assert res.status == (200 if early else 404), (res.status, res.body)
    if early:
        assert ids(res) == [rid]


def test_package_name_filters_are_exact_not_stripped(api: Api, clock: Clock) -> None:
    """/packages?name= and /releases?package_name= are Orlo's ``Package.name == value``."""
    plain = create(api, "amy", ["eu"], packages=[{"name": "web", "version": "1"}])
    clock.advance(timedelta(seconds=1))
    spaced = create(api, "amy", ["eu"], packages=[{"name": "web ", "version": "2"}])
    assert ids(get(api, "/orlo/releases", {"package_name": "web"})) == [plain]
    assert ids(get(api, "/orlo/releases", {"package_name": "web "})) == [spaced]
    res = get(api, "/orlo/packages", {"name": "web "})
    assert [p["version"] for p in res.body["packages"]] == ["2"], (res.status, res.body)
