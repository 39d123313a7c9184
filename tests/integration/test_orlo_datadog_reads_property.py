"""The read APIs of the Orlo and Datadog dialects against an independent oracle.

Orlo: random release histories (workflow routes and imports) read back through /orlo/releases (filters,
order, paging), /orlo/stats[/<field>[/<name>]] and /orlo/info/*, compared with an oracle written from
Orlo's source semantics (eBayClassifiedsGroup/orlo queries.py) and API.md "Dialect: Orlo".
Datadog: list paging with writes between pages, against a full unpaged read.
``DORA_PROPERTY_SEEDS=a:b`` runs seeds a..b-1 instead of the suite's two (a read-only review ran 70 Orlo
histories, 15 by-date and 25 Datadog paging seeds: every read agreed).
"""

from __future__ import annotations

import base64
import itertools
import os
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, NOW, Api, Clock, HttpResult
from tests.support.fixtures import OTHER_KEY

_SEEDS_ENV = os.environ.get("DORA_PROPERTY_SEEDS")
SEEDS = list(range(*map(int, _SEEDS_ENV.split(":")))) if _SEEDS_ENV else [1, 2]
FMT = "%Y-%m-%dT%H:%M:%SZ"


def basic(key: str = ADMIN_KEY) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"orlo:{key}".encode()).decode()}


def call(api: Api, method: str, route: str, *, key: str = ADMIN_KEY, **kwargs: Any) -> HttpResult:
    return api.call(method, route, headers=basic(key), **kwargs)


def get(api: Api, route: str, query: dict[str, str] | None = None, key: str = ADMIN_KEY, **params: str) -> HttpResult:
    return call(api, "GET", route, key=key, path_params=params or None, query=query)


def ok(result: HttpResult, status: int = 200) -> Any:
    assert result.status == status, (result.status, result.body)
    return result.body


def ts(t: datetime) -> str:
    return t.astimezone(UTC).strftime(FMT)


# --------------------------------------------------------------------------- the Orlo oracle's model


class Pkg:
    def __init__(self, name: str, version: str, rollback: bool) -> None:
        self.id = ""
        self.name, self.version, self.rollback = name, version, rollback
        self.status = "NOT_STARTED"
        self.stime: datetime | None = None
        self.ftime: datetime | None = None


class Rel:
    def __init__(self, user: str, team: str | None, platforms: list[str], stime: datetime) -> None:
        self.id = ""
        self.user, self.team, self.platforms, self.stime = user, team, platforms, stime
        self.ftime: datetime | None = None
        self.packages: list[Pkg] = []

    def status_matches(self, status: str) -> bool:
        statuses = [p.status for p in self.packages]
        if status in ("SUCCESSFUL", "NOT_STARTED"):
            return all(s == status for s in statuses)
        if status == "FAILED":
            return "FAILED" in statuses
        return "IN_PROGRESS" in statuses and "FAILED" not in statuses

    def outcome(self) -> str | None:
        statuses = [p.status for p in self.packages]
        if "FAILED" in statuses:
            return "failed"
        if statuses and all(s == "SUCCESSFUL" for s in statuses):
            return "successful"
        return None

    def is_rollback(self) -> bool:
        return any(p.rollback for p in self.packages)


USERS = ["amy", "Amy", "bob", "carl"]  # "Amy" and "amy" are two users (Orlo compares exactly)
TEAMS = ["red", "Red", "blue"]
PLATFORMS = ["eu", "us", "asia"]
NAMES = ["web", "api", "db", "cache"]


def build_history(api: Api, clock: Clock, rng: random.Random, n: int = 10) -> list[Rel]:
    rels: list[Rel] = []
    live: list[tuple[Rel, list[Pkg]]] = []
    for _ in range(n):
        if rng.random() < 0.3:
            rels.append(_import(api, clock, rng))
            continue
        rel = Rel(rng.choice(USERS), rng.choice(TEAMS), rng.sample(PLATFORMS, rng.randint(1, 2)), clock())
        body: dict[str, Any] = {"user": rel.user, "team": rel.team, "platforms": rel.platforms, "references": ["T-1"]}
        rel.id = ok(call(api, "POST", "/orlo/releases", body=body))["id"]
        for name in rng.sample(NAMES, rng.randint(1, 3)):
            p = Pkg(name, f"{rng.randint(1, 5)}.{rng.randint(0, 9)}", rng.random() < 0.25)
            pb = {"name": p.name, "version": p.version, "rollback": p.rollback}
            p.id = ok(call(api, "POST", "/orlo/releases/{rid}/packages", path_params={"rid": rel.id}, body=pb))["id"]
            rel.packages.append(p)
        rels.append(rel)
        live.append((rel, list(rel.packages)))
        clock.advance(timedelta(seconds=rng.randint(1, 3000)))
        # progress some packages of any live release
        for _ in range(rng.randint(0, 4)):
            r, _pk = rng.choice(live)
            _progress(api, clock, rng, r)
    for r, _pk in live:
        for _ in range(rng.randint(0, 3)):
            _progress(api, clock, rng, r)
        if rng.random() < 0.5 and r.ftime is None:
            ok(call(api, "POST", "/orlo/releases/{rid}/stop", path_params={"rid": r.id}), 204)
            r.ftime = clock()
            clock.advance(timedelta(seconds=rng.randint(1, 100)))
    return rels


def _progress(api: Api, clock: Clock, rng: random.Random, r: Rel) -> None:
    if r.ftime is not None:
        return
    p = rng.choice(r.packages)
    route = "/orlo/releases/{rid}/packages/{pid}/"
    if p.status == "NOT_STARTED":
        ok(call(api, "POST", route + "start", path_params={"rid": r.id, "pid": p.id}), 204)
        p.status, p.stime = "IN_PROGRESS", clock()
    elif p.status == "IN_PROGRESS":
        success = rng.random() < 0.7
        body = {"success": rng.choice([success, str(success).lower()])}
        ok(call(api, "POST", route + "stop", path_params={"rid": r.id, "pid": p.id}, body=body), 204)
        p.status, p.ftime = ("SUCCESSFUL" if success else "FAILED"), clock()
    else:
        return
    clock.advance(timedelta(seconds=rng.randint(1, 600)))


_IMPORTED = itertools.count(1)


def _import(api: Api, clock: Clock, rng: random.Random) -> Rel:
    """An imported finished release, its times in the past (before anything the workflow made)."""
    imported = next(_IMPORTED)
    stime = NOW - timedelta(days=rng.randint(1, 400), seconds=rng.randint(0, 86399))
    rel = Rel(rng.choice(USERS), rng.choice(TEAMS), rng.sample(PLATFORMS, rng.randint(1, 2)), stime)
    docs = []
    t = stime
    for name in rng.sample(NAMES, rng.randint(1, 3)):
        p = Pkg(name, f"{rng.randint(1, 5)}.{rng.randint(0, 9)}", rng.random() < 0.25)
        p.status = rng.choice(["SUCCESSFUL", "SUCCESSFUL", "FAILED", "NOT_STARTED"])
        t = t + timedelta(seconds=rng.randint(1, 100))
        if p.status != "NOT_STARTED":
            p.stime, p.ftime = t, t + timedelta(seconds=rng.randint(0, 50))
        rel.packages.append(p)
        docs.append(
            {
                "name": p.name,
                "version": p.version,
                "status": p.status,
                "rollback": p.rollback,
                "diff_url": None,
                "stime": ts(p.stime) if p.stime else None,
                "ftime": ts(p.ftime) if p.ftime else None,
            }
        )
    rel.ftime = t + timedelta(seconds=100)
    doc = {
        "user": rel.user,
        "team": rel.team,
        "platforms": rel.platforms,
        "references": [f"IMP-{imported}-{rng.random()}"],
        "stime": ts(stime),
        "ftime": ts(rel.ftime),
        "packages": docs,
    }
    (rel.id,) = ok(call(api, "POST", "/orlo/releases/import", body=[doc]))["releases"]
    # NOT_STARTED imported packages: "a package's null/absent stime -> the release's"
    for p in rel.packages:
        if p.stime is None:
            p.stime = stime
    return rel


# --------------------------------------------------------------------------- oracle reads


def _order(rels: list[Rel], asc: bool) -> list[Rel]:
    by_id = sorted(rels, key=lambda r: r.id)
    return sorted(by_id, key=lambda r: r.stime, reverse=not asc)


def oracle_releases(rels: list[Rel], q: dict[str, str]) -> list[str]:
    out = list(rels)
    for k, v in q.items():
        if k in ("asc", "limit", "offset", "latest"):
            continue
        if k == "user":
            out = [r for r in out if r.user == v]
        elif k == "team":
            out = [r for r in out if r.team == v]
        elif k == "platform":
            out = [r for r in out if v in r.platforms]
        elif k == "status":
            out = [r for r in out if r.status_matches(v)]
        elif k.startswith("package_"):
            continue  # below: one package must match every package_ filter (Orlo's join)
        elif k == "stime_after":
            out = [r for r in out if r.stime > _t(v)]
        elif k == "stime_before":
            out = [r for r in out if r.stime < _t(v)]
        elif k == "ftime_after":
            out = [r for r in out if r.ftime is not None and r.ftime > _t(v)]
        elif k == "ftime_before":
            out = [r for r in out if r.ftime is not None and r.ftime < _t(v)]
        else:
            raise AssertionError(k)

    def pkg_ok(p: Pkg) -> bool:
        return (
            q.get("package_name", p.name) == p.name
            and q.get("package_status", p.status) == p.status
            and q.get("package_rollback", str(p.rollback).lower()) == str(p.rollback).lower()
        )

    if any(k.startswith("package_") for k in q):
        out = [r for r in out if any(pkg_ok(p) for p in r.packages)]
    ordered = _order(out, q.get("asc") == "true")
    offset = int(q.get("offset", "0"))
    limit = int(q.get("limit", "100"))
    return [r.id for r in ordered[offset : offset + limit]]


def _t(v: str) -> datetime:
    return datetime.strptime(v, FMT).replace(tzinfo=UTC)


def _counts(rels: list[Rel]) -> dict[str, Any]:
    c = {k: {"successful": 0, "failed": 0} for k in ("normal", "rollback", "total")}
    for r in rels:
        o = r.outcome()
        if o is None:
            continue
        c["rollback" if r.is_rollback() else "normal"][o] += 1
        c["total"][o] += 1
    return {"releases": c}


def oracle_stats_by(rels: list[Rel], field: str, window: list[Rel] | None = None) -> dict[str, Any]:
    """Orlo's build_stats_dict: every name the field has ever had, each counted over the window."""
    groups: dict[str, list[Rel]] = {}
    for r in rels:
        if field == "user":
            keys = [r.user]
        elif field == "team":
            keys = [r.team] if r.team else []
        elif field == "platform":
            keys = list(r.platforms)
        else:
            keys = sorted({p.name for p in r.packages})
        for k in keys:
            groups.setdefault(k, []).append(r)
    inside = {id(r) for r in (rels if window is None else window)}
    return {k: _counts([r for r in v if id(r) in inside]) for k, v in groups.items()}


def oracle_versions(rels: list[Rel], platform: str | None, by_release: bool) -> dict[str, str]:
    best: dict[str, tuple[datetime, str]] = {}
    for r in rels:
        if platform and platform not in r.platforms:
            continue
        if by_release and not r.status_matches("SUCCESSFUL"):
            continue
        for p in r.packages:
            if p.status != "SUCCESSFUL" or p.stime is None:
                continue
            if p.name not in best or p.stime > best[p.name][0]:
                best[p.name] = (p.stime, p.version)
    return {k: v[1] for k, v in best.items()}


def random_release_query(rng: random.Random, rels: list[Rel]) -> dict[str, str]:
    q: dict[str, str] = {}
    times = sorted({r.stime for r in rels} | {r.ftime for r in rels if r.ftime})
    for _ in range(rng.randint(0, 3)):
        k = rng.choice(
            [
                "user",
                "team",
                "platform",
                "status",
                "package_name",
                "package_status",
                "package_rollback",
                "stime_after",
                "stime_before",
                "ftime_after",
                "ftime_before",
            ]
        )
        if k == "user":
            q[k] = rng.choice(USERS)
        elif k == "team":
            q[k] = rng.choice(TEAMS)
        elif k == "platform":
            q[k] = rng.choice(PLATFORMS)
        elif k in ("status", "package_status"):
            q[k] = rng.choice(["SUCCESSFUL", "FAILED", "IN_PROGRESS", "NOT_STARTED"])
        elif k == "package_name":
            q[k] = rng.choice(NAMES)
        elif k == "package_rollback":
            q[k] = rng.choice(["true", "false"])
        else:
            t = rng.choice(times) + timedelta(seconds=rng.choice([-1, 0, 0, 1]))
            q[k] = ts(t)
    if rng.random() < 0.5:
        q["asc"] = "true"
    if rng.random() < 0.6:
        q["limit"] = str(rng.randint(1, 6))
    if rng.random() < 0.5:
        q["offset"] = str(rng.randint(0, 6))
    return q


def check_orlo(api: Api, rels: list[Rel], rng: random.Random, queries: int = 60) -> None:
    # whole list, shapes
    listed = ok(get(api, "/orlo/releases", {"limit": "1000"}))["releases"]
    assert [r["id"] for r in listed] == [r.id for r in _order(rels, asc=False)]
    by_id = {r.id: r for r in rels}
    for got in listed:
        want = by_id[got["id"]]
        assert (got["user"], got["team"], got["platforms"], got["stime"]) == (
            want.user,
            want.team,
            want.platforms,
            ts(want.stime),
        )
        assert got["ftime"] == (ts(want.ftime) if want.ftime else None)
        pk = {p["id"]: p for p in got["packages"]} if all(p.id for p in want.packages) else None
        gotp = sorted((p["name"], p["version"], p["status"], p["rollback"], p["stime"]) for p in got["packages"])
        wantp = sorted(
            (p.name, p.version, p.status, p.rollback, ts(p.stime) if p.stime else None) for p in want.packages
        )
        assert gotp == wantp, (got, pk)
    # filtered lists
    for _ in range(queries):
        q = random_release_query(rng, rels)
        want = oracle_releases(rels, q)
        res = get(api, "/orlo/releases", q)
        assert res.status in (200, 404), (q, res.status, res.body)
        got = [r["id"] for r in res.body["releases"]]
        assert got == want, (q, got, want)
        assert (res.status == 404) == (not want), (q, res.status)
    # stats
    assert ok(get(api, "/orlo/stats")) == {"global": _counts(rels)}
    for _ in range(4):
        a, b = sorted(rng.sample(sorted({r.stime for r in rels}), 2)) if len(rels) > 1 else (rels[0].stime,) * 2
        q = {"stime": ts(a), "ftime": ts(b)}
        window = [r for r in rels if a <= r.stime <= b]
        assert ok(get(api, "/orlo/stats", q)) == {"global": _counts(window)}, q
        for field in ("user", "platform", "package"):
            got = ok(get(api, "/orlo/stats/{field}", q, field=field))
            assert got == oracle_stats_by(rels, field, window), (field, q)
        for field, pool, attr in (("user", USERS, "user"), ("team", TEAMS, "team")):
            for name in pool:
                got = ok(get(api, "/orlo/stats/{field}/{name}", q, field=field, name=name))
                assert got == {name: _counts([r for r in window if getattr(r, attr) == name])}, (field, name, q)
        for name in PLATFORMS:
            got = ok(get(api, "/orlo/stats/{field}/{name}", q, field="platform", name=name))
            assert got == {name: _counts([r for r in window if name in r.platforms])}, (name, q)
    for field in ("user", "platform", "package"):
        want = oracle_stats_by(rels, field)
        assert ok(get(api, "/orlo/stats/{field}", field=field)) == want, field
        pool = {"user": USERS, "platform": PLATFORMS, "package": NAMES}[field]
        for name in pool:
            got = ok(get(api, "/orlo/stats/{field}/{name}", field=field, name=name))
            assert got == {name: want.get(name, _counts([]))}, (field, name)
    teams = ok(get(api, "/orlo/stats/{field}", field="team"))
    assert teams == oracle_stats_by(rels, "team")
    for name in TEAMS:
        got = ok(get(api, "/orlo/stats/{field}/{name}", field="team", name=name))
        assert got == {name: _counts([r for r in rels if r.team == name])}, name
    # info
    for platform in [None, *PLATFORMS]:
        pq = {"platform": platform} if platform else None
        sel = [r for r in rels if platform is None or platform in r.platforms]
        users: dict[str, int] = {}
        for r in sel:
            users[r.user] = users.get(r.user, 0) + 1
        assert ok(get(api, "/orlo/info/{facet}", pq, facet="users")) == {
            u: {"releases": n} for u, n in users.items()
        }, platform
        pk: dict[str, int] = {}
        for r in sel:
            for p in r.packages:
                pk[p.name] = pk.get(p.name, 0) + 1
        assert ok(get(api, "/orlo/info/{facet}", pq, facet="packages")) == {
            u: {"releases": n} for u, n in pk.items()
        }, platform
        assert ok(get(api, "/orlo/info/packages/list", pq)) == {"packages": sorted(pk)}, platform
        for by_release in (False, True):
            vq = dict(pq or {}, by_release=str(by_release).lower())
            got = ok(get(api, "/orlo/info/packages/versions", vq))
            assert got == oracle_versions(rels, platform, by_release), vq
    plats: dict[str, int] = {}
    for r in rels:
        for p in r.platforms:
            plats[p] = plats.get(p, 0) + 1
    assert ok(get(api, "/orlo/info/{facet}", facet="platforms")) == {p: {"releases": n} for p, n in plats.items()}
    for u in USERS:
        n = sum(1 for r in rels if r.user == u)
        got = ok(get(api, "/orlo/info/{facet}/{name}", facet="users", name=u))
        assert got == ({u: {"releases": n}} if n else {}), u
    for name in NAMES:
        n = sum(1 for r in rels for p in r.packages if p.name == name)
        got = ok(get(api, "/orlo/info/{facet}/{name}", facet="packages", name=name))
        assert got == ({name: {"releases": n}} if n else {}), name


@pytest.mark.parametrize("seed", SEEDS)
def test_orlo_reads_agree_with_the_oracle(api: Api, clock: Clock, seed: int) -> None:
    rng = random.Random(seed)
    rels = build_history(api, clock, rng, n=rng.randint(6, 12))
    check_orlo(api, rels, rng)


def test_orlo_other_space_sees_nothing(api: Api, clock: Clock, other_space: str) -> None:
    rng = random.Random(7)
    build_history(api, clock, rng, n=5)
    assert get(api, "/orlo/releases", key=OTHER_KEY).status == 404
    assert ok(get(api, "/orlo/stats", key=OTHER_KEY)) == {"global": _counts([])}
    for field in ("user", "platform", "package"):
        assert ok(get(api, "/orlo/stats/{field}", key=OTHER_KEY, field=field)) == {}
    for facet in ("users", "platforms", "packages"):
        assert ok(get(api, "/orlo/info/{facet}", key=OTHER_KEY, facet=facet)) == {}
    assert ok(get(api, "/orlo/info/packages/list", key=OTHER_KEY)) == {"packages": []}
    assert ok(get(api, "/orlo/info/packages/versions", key=OTHER_KEY)) == {}
    assert ok(get(api, "/orlo/stats/by_date/{subject}", key=OTHER_KEY, subject="release")) == {}


# --------------------------------------------------------------------------- Datadog: paging under writes

DD = {"DD-API-KEY": ADMIN_KEY}
DT0 = 1_700_000_000
HOUR = 3600
SERVICES = ["shop", "web", "api"]
ENVS = ["production", "staging"]


class DdModel:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}  # id -> attributes
        self.n = 0


def dd_create(api: Api, model: DdModel, rng: random.Random) -> str:
    model.n += 1
    attrs: dict[str, Any] = {
        "id": f"review-deploy-{model.n:06d}-{rng.randint(0, 10**6)}",
        "service": rng.choice(SERVICES),
        "finished_at": DT0 + rng.randint(0, 12) * HOUR,  # coarse: many ties
        "custom_tags": [f"tier:{rng.randint(1, 3)}"],
    }
    attrs["started_at"] = attrs["finished_at"] - 60
    if rng.random() < 0.6:
        attrs["env"] = rng.choice(ENVS)
    if rng.random() < 0.5:
        attrs["team"] = rng.choice(["red", "blue"])
    result = api.call("POST", "/api/v2/dora/deployment", body={"data": {"attributes": attrs}}, headers=DD)
    assert result.status == 200, result.body
    model.items[attrs["id"]] = attrs
    return str(attrs["id"])


def dd_delete(api: Api, model: DdModel, did: str) -> None:
    result = api.call(
        "DELETE", "/api/v2/dora/deployment/{deployment_id}", path_params={"deployment_id": did}, headers=DD
    )
    assert result.status == 202, result.body
    del model.items[did]


def dd_patch(api: Api, did: str, rng: random.Random) -> None:
    body = {"data": {"type": "dora_deployment_patch_request", "attributes": {"change_failure": rng.random() < 0.5}}}
    result = api.call(
        "PATCH", "/api/v2/dora/deployments/{deployment_id}", path_params={"deployment_id": did}, body=body, headers=DD
    )
    assert result.status == 202, result.body


DD_QUERIES = [
    "",
    "*",
    "service:shop",
    "service:web env:staging",
    "service:api env:production",
    "env:production",
    "team:red",
    "tier:2",
    "service:(shop OR api)",
    "-env:staging",
    "service:shop AND tier:1",
    "team:*",
    "NOT team:*",
]


def dd_matches(a: dict[str, Any], query: str) -> bool:
    env = a.get("env", "production")
    tier = a["custom_tags"][0].split(":")[1]
    team = a.get("team")
    return {
        "": True,
        "*": True,
        "service:shop": a["service"] == "shop",
        "service:web env:staging": a["service"] == "web" and env == "staging",
        "service:api env:production": a["service"] == "api" and env == "production",
        "env:production": env == "production",
        "team:red": team == "red",
        "tier:2": tier == "2",
        "service:(shop OR api)": a["service"] in ("shop", "api"),
        "-env:staging": env != "staging",
        "service:shop AND tier:1": a["service"] == "shop" and tier == "1",
        "team:*": team is not None,
        "NOT team:*": team is None,
    }[query]


def dd_list(api: Api, **attributes: Any) -> Any:
    result = api.call("POST", "/api/v2/dora/deployments", body={"data": {"attributes": attributes}}, headers=DD)
    assert result.status == 200, (attributes, result.status, result.body)
    return result.body


def dd_full(api: Api, **attributes: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        attrs = dict(attributes, limit=1000)
        if cursor:
            attrs["page"] = {"cursor": cursor}
        body = dd_list(api, **attrs)
        out += body["data"]
        cursor = body.get("meta", {}).get("page", {}).get("after")
        if not cursor:
            return out


def _iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.mark.parametrize("seed", SEEDS)
def test_datadog_paging_under_writes(api: Api, seed: int) -> None:
    rng = random.Random(seed)
    model = DdModel()
    for _ in range(rng.randint(20, 40)):
        dd_create(api, model, rng)
    for query in DD_QUERIES:
        for sort in ("-timestamp", "timestamp"):
            bounds: dict[str, Any] = {}
            if rng.random() < 0.5:
                lo = DT0 + rng.randint(0, 6) * HOUR
                bounds = {"from": lo, "to": lo + rng.randint(0, 6) * HOUR}
            lo_t, hi_t = bounds.get("from", -1), bounds.get("to", 10**12)

            def want_ids(
                items: dict[str, dict[str, Any]], query: str = query, lo_t: int = lo_t, hi_t: int = hi_t
            ) -> set[str]:
                return {i for i, a in items.items() if dd_matches(a, query) and lo_t <= a["finished_at"] <= hi_t}

            # unpaged read agrees with the oracle, in order
            full = dd_full(api, query=query, sort=sort, **bounds)
            ids = [d["id"] for d in full]
            assert len(ids) == len(set(ids)), (query, sort)
            assert set(ids) == want_ids(model.items), (query, sort, bounds)
            times = [d["attributes"]["finished_at"] for d in full]
            assert times == sorted(times, reverse=sort.startswith("-")), (query, sort)
            for d in full:
                a = model.items[d["id"]]
                assert d["attributes"]["service"] == a["service"]
                assert d["attributes"]["finished_at"] == _iso(a["finished_at"])
            # paged read with writes between pages
            before = dict(model.items)
            seen: list[str] = []
            cursor = None
            limit = rng.randint(1, 4)
            while True:
                attrs: dict[str, Any] = dict(query=query, sort=sort, limit=limit, **bounds)
                if cursor:
                    attrs["page"] = {"cursor": cursor}
                body = dd_list(api, **attrs)
                for d in body["data"]:
                    assert d["id"] in model.items, ("deleted item listed", d["id"])
                    a = model.items[d["id"]]
                    assert dd_matches(a, query) and lo_t <= a["finished_at"] <= hi_t, (query, d)
                seen += [d["id"] for d in body["data"]]
                assert len(body["data"]) <= limit
                cursor = body.get("meta", {}).get("page", {}).get("after")
                if not cursor:
                    break
                for _ in range(rng.randint(0, 2)):
                    op = rng.random()
                    if op < 0.4:
                        dd_create(api, model, rng)
                    elif op < 0.7 and model.items:
                        dd_delete(api, model, rng.choice(sorted(model.items)))
                    elif model.items:
                        dd_patch(api, rng.choice(sorted(model.items)), rng)
            assert len(seen) == len(set(seen)), ("duplicated by paging", query, sort, bounds, limit)
            throughout = want_ids({i: a for i, a in before.items() if i in model.items})
            missing = throughout - set(seen)
            assert not missing, ("skipped by paging", query, sort, bounds, limit, missing)


# --------------------------------------------------------------------------- Orlo targeted cases


def test_orlo_paging_over_releases_of_one_instant(api: Api, clock: Clock) -> None:
    """Releases sharing an stime: offset/limit pages, asc and desc, with and without an index filter,
    put together give the whole list, each once, ties by id (API.md: stime order; domain: ties by id)."""
    rng = random.Random(5)
    rels: list[Rel] = []
    for i in range(14):
        if i in (5, 11):
            clock.advance(timedelta(seconds=1))
        rel = Rel(rng.choice(["amy", "bob"]), "red", ["eu"], clock())
        rel.id = ok(call(api, "POST", "/orlo/releases", body={"user": rel.user, "team": "red", "platforms": ["eu"]}))[
            "id"
        ]
        p = Pkg("web", "1", False)
        p.id = ok(
            call(
                api,
                "POST",
                "/orlo/releases/{rid}/packages",
                path_params={"rid": rel.id},
                body={"name": "web", "version": "1"},
            )
        )["id"]
        rel.packages.append(p)
        rels.append(rel)
    for base in ({}, {"user": "amy"}, {"platform": "eu"}, {"team": "red"}):
        for asc in ("true", "false"):
            full = oracle_releases(rels, dict(base, asc=asc, limit="1000"))
            for limit in (1, 2, 3, 5):
                got: list[str] = []
                for offset in range(0, len(full) + limit, limit):
                    q = dict(base, asc=asc, limit=str(limit), offset=str(offset))
                    res = get(api, "/orlo/releases", q)
                    assert res.status in (200, 404)
                    got += [r["id"] for r in res.body["releases"]]
                assert got == full, (base, asc, limit)


def test_orlo_a_release_without_packages_counts_nowhere(api: Api, clock: Clock) -> None:
    """Orlo's status filters and stats join Package, so a release without packages matches no status and
    counts nowhere (queries.py count_releases / releases(): join(Package))."""
    rid = ok(call(api, "POST", "/orlo/releases", body={"user": "amy", "team": "red", "platforms": ["eu"]}))["id"]
    assert ok(get(api, "/orlo/stats")) == {"global": _counts([])}
    for status in ("SUCCESSFUL", "NOT_STARTED"):
        assert get(api, "/orlo/releases", {"status": status}).status == 404
    assert [r["id"] for r in ok(get(api, "/orlo/releases"))["releases"]] == [rid]


def test_orlo_limit_zero(api: Api, clock: Clock) -> None:
    """Orlo's route passes limit as the string "0" (truthy), so query.limit(0): an empty list (404 here)."""
    for _ in range(3):
        ok(call(api, "POST", "/orlo/releases", body={"user": "amy", "platforms": ["eu"]}))
        clock.advance(timedelta(seconds=1))
    res = get(api, "/orlo/releases", {"limit": "0"})
    assert (res.status, res.body["releases"]) == (404, [])


def _unit_path(t: datetime, unit: str, summarize: bool) -> list[str]:
    if summarize:
        return [str({"iso": t.isocalendar()[2], "week": t.isocalendar()[1]}.get(unit, getattr(t, unit, None)))]
    if unit == "year":
        return [str(t.year)]
    if unit == "month":
        return [str(t.year), str(t.month)]
    if unit == "week":
        return [str(i) for i in t.isocalendar()[:2]]
    if unit == "iso":
        return [str(i) for i in t.isocalendar()]
    if unit == "day":
        return [str(t.year), str(t.month), str(t.day)]
    return [str(t.year), str(t.month), str(t.day), str(t.hour)]


def _tree_add(tree: dict[str, Any], path: list[str]) -> None:
    for k in path[:-1]:
        tree = tree.setdefault(k, {})
    tree[path[-1]] = tree.get(path[-1], 0) + 1


def oracle_by_date(rels: list[Rel], subject: str, unit: str, summarize: bool, q: dict[str, str]) -> dict[str, Any]:
    chosen = set(oracle_releases(rels, dict(q, limit="100000")))
    out: dict[str, Any] = {}
    for r in rels:
        if r.id not in chosen or r.outcome() is None:
            continue
        cat = ["rollback" if r.is_rollback() else "normal", r.outcome() or ""]
        if subject == "release":
            _tree_add(out, _unit_path(r.stime, unit, summarize) + cat)
        else:
            for p in r.packages:  # Orlo's packages_by_time: package_* filters pick the package rows
                if p.stime is not None and q.get("package_name", p.name) == p.name:
                    _tree_add(out, [*_unit_path(p.stime, unit, summarize), p.name, *cat])
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_orlo_stats_by_date_agree_with_the_oracle(api: Api, clock: Clock, seed: int) -> None:
    rng = random.Random(1000 + seed)
    rels = build_history(api, clock, rng, n=rng.randint(6, 12))
    for _ in range(25):
        subject = rng.choice(["release", "package"])
        unit = rng.choice(["year", "month", "week", "iso", "day", "hour"])
        summarize = rng.random() < 0.4
        q: dict[str, str] = {}
        if rng.random() < 0.5:
            k = rng.choice(["user", "platform", "team", "package_name"])
            q[k] = rng.choice({"user": USERS, "platform": PLATFORMS, "team": TEAMS, "package_name": NAMES}[k])
        want = oracle_by_date(rels, subject, unit, summarize, q)
        query = dict(q, unit=unit, summarize_by_unit=str(summarize).lower())
        got = ok(get(api, "/orlo/stats/by_date/{subject}", query, subject=subject))
        assert got == want, (subject, query)


def _ff_create(api: Api, model: DdModel, rng: random.Random) -> str:
    model.n += 1
    attrs: dict[str, Any] = {
        "id": f"review-failure-{model.n:06d}-{rng.randint(0, 10**6)}",
        "services": rng.sample(SERVICES, rng.randint(1, 2)),
        "started_at": DT0 + rng.randint(0, 12) * HOUR,
        "custom_tags": [f"tier:{rng.randint(1, 3)}"],
        "severity": rng.choice(["high", "low"]),
    }
    if rng.random() < 0.5:
        attrs["finished_at"] = attrs["started_at"] + 600
    if rng.random() < 0.6:
        attrs["env"] = rng.choice(ENVS)
    result = api.call("POST", "/api/v2/dora/failure", body={"data": {"attributes": attrs}}, headers=DD)
    assert result.status == 200, result.body
    model.items[attrs["id"]] = attrs
    return str(attrs["id"])


FF_QUERIES = ["", "service:shop", "severity:high", "env:staging", "service:web env:production", "-tier:1"]


def _ff_matches(a: dict[str, Any], query: str) -> bool:
    env = a.get("env", "production")
    return {
        "": True,
        "service:shop": "shop" in a["services"],
        "severity:high": a["severity"] == "high",
        "env:staging": env == "staging",
        "service:web env:production": "web" in a["services"] and env == "production",
        "-tier:1": a["custom_tags"] != ["tier:1"],
    }[query]


@pytest.mark.parametrize("seed", SEEDS)
def test_datadog_failure_paging_under_writes_and_other_space(api: Api, seed: int, other_space: str) -> None:
    rng = random.Random(seed)
    model = DdModel()
    for _ in range(rng.randint(15, 30)):
        _ff_create(api, model, rng)
    route = "/api/v2/dora/failures"
    for query in FF_QUERIES:
        for sort in ("-timestamp", "timestamp"):
            before = dict(model.items)
            want_all = {i for i, a in before.items() if _ff_matches(a, query)}
            full = api.call(
                "POST", route, body={"data": {"attributes": {"query": query, "sort": sort, "limit": 1000}}}, headers=DD
            )
            assert full.status == 200 and "meta" not in full.body, full.body
            assert {d["id"] for d in full.body["data"]} == want_all, query
            starts = [d["attributes"]["started_at"] for d in full.body["data"]]
            assert starts == sorted(starts, reverse=sort.startswith("-"))
            seen: list[str] = []
            cursor = None
            limit = rng.randint(1, 4)
            while True:
                attrs: dict[str, Any] = {"query": query, "sort": sort, "limit": limit}
                if cursor:
                    attrs["page"] = {"cursor": cursor}
                body = api.call("POST", route, body={"data": {"attributes": attrs}}, headers=DD)
                assert body.status == 200, body.body
                seen += [d["id"] for d in body.body["data"]]
                for d in body.body["data"]:
                    assert d["id"] in model.items and _ff_matches(model.items[d["id"]], query)
                cursor = body.body.get("meta", {}).get("page", {}).get("after")
                if not cursor:
                    break
                # the other space's key: this cursor is refused, and it lists nothing of ours
                other = api.call(
                    "POST",
                    route,
                    body={"data": {"attributes": dict(attrs, page={"cursor": cursor})}},
                    headers={"DD-API-KEY": OTHER_KEY},
                )
                assert other.status == 400, other.body
                if rng.random() < 0.5:
                    _ff_create(api, model, rng)
                elif model.items:
                    victim = rng.choice(sorted(model.items))
                    res = api.call(
                        "DELETE", "/api/v2/dora/failure/{failure_id}", path_params={"failure_id": victim}, headers=DD
                    )
                    assert res.status == 202, res.body
                    del model.items[victim]
            assert len(seen) == len(set(seen)), ("duplicated", query, sort, limit)
            throughout = {i for i in want_all if i in model.items}
            assert not throughout - set(seen), ("skipped", query, sort, limit, throughout - set(seen))
    other = api.call("POST", route, body={"data": {"attributes": {"limit": 1000}}}, headers={"DD-API-KEY": OTHER_KEY})
    assert other.status == 200 and other.body["data"] == []
    some = sorted(model.items)[0]
    got = api.call("GET", "/api/v2/dora/failures/{failure_id}", path_params={"failure_id": some}, headers=DD)
    assert got.status == 200 and got.body["data"]["id"] == some
    assert (
        api.call(
            "GET",
            "/api/v2/dora/failures/{failure_id}",
            path_params={"failure_id": some},
            headers={"DD-API-KEY": OTHER_KEY},
        ).status
        == 404
    )


@pytest.mark.parametrize("query", ["", "service:shop", "service:shop env:production", "tier:1"])
def test_datadog_paging_when_each_pages_anchor_is_deleted_or_patched(api: Api, query: str) -> None:
    """Delete (or correct) the last deployment a page returned before following its cursor: the rest of
    the list still comes, each once (ties on finish included)."""
    rng = random.Random(11)
    model = DdModel()
    for i in range(12):
        attrs = {
            "id": f"anchor-deploy-{i:04d}-xxxx",
            "service": "shop",
            "env": "production",
            "finished_at": DT0 + (i // 3) * HOUR,
            "started_at": DT0 - 60,
            "custom_tags": ["tier:1"],
        }
        res = api.call("POST", "/api/v2/dora/deployment", body={"data": {"attributes": attrs}}, headers=DD)
        assert res.status == 200, res.body
        model.items[attrs["id"]] = attrs
    for mode in ("delete", "patch"):
        for sort in ("-timestamp", "timestamp"):
            start = set(model.items)
            seen: list[str] = []
            cursor = None
            while True:
                attrs2: dict[str, Any] = {"query": query, "sort": sort, "limit": 2}
                if cursor:
                    attrs2["page"] = {"cursor": cursor}
                body = dd_list(api, **attrs2)
                seen += [d["id"] for d in body["data"]]
                cursor = body.get("meta", {}).get("page", {}).get("after")
                if not cursor:
                    break
                if body["data"]:
                    anchor = body["data"][-1]["id"]
                    if mode == "delete" and rng.random() < 0.5:
                        dd_delete(api, model, anchor)
                    else:
                        dd_patch(api, anchor, rng)
            assert len(seen) == len(set(seen)), (mode, sort)
            assert start <= set(seen), (mode, sort, start - set(seen))


def test_orlo_a_rare_filter_past_several_read_pages(api: Api) -> None:
    """More releases than one filtered read page (FILTERED_PAGE = 200): a filter matching only the oldest
    few, with a user index and stime bounds, still answers them, paged (API.md: such a list reads on)."""
    rels: list[Rel] = []
    docs = []
    for i in range(260):
        stime = NOW - timedelta(hours=i)
        user = "amy" if i % 2 else "bob"
        name = "rare" if i in (257, 258, 259, 120) else "web"
        rel = Rel(user, "red", ["eu"], stime)
        p = Pkg(name, str(i), False)
        p.status, p.stime, p.ftime = "SUCCESSFUL", stime, stime + timedelta(seconds=5)
        rel.packages.append(p)
        rel.ftime = stime + timedelta(seconds=10)
        rels.append(rel)
        docs.append(
            {
                "user": user,
                "team": "red",
                "platforms": ["eu"],
                "stime": ts(stime),
                "ftime": ts(rel.ftime),
                "references": [f"R{i}"],
                "packages": [
                    {"name": name, "version": str(i), "status": "SUCCESSFUL", "stime": ts(stime), "ftime": ts(p.ftime)}
                ],
            }
        )
    for chunk in range(0, 260, 100):
        got_ids = ok(call(api, "POST", "/orlo/releases/import", body=docs[chunk : chunk + 100]))["releases"]
        for rel, rid in zip(rels[chunk : chunk + 100], got_ids, strict=True):
            rel.id = rid
    for base in (
        {"package_name": "rare"},
        {"package_name": "rare", "user": "bob"},
        {"package_name": "rare", "stime_before": ts(NOW - timedelta(hours=100))},
        {"user": "amy"},
    ):
        for asc in ("true", "false"):
            for limit, offset in ((1, 0), (1, 1), (2, 1), (100, 0), (3, 2), (50, 100)):
                q = dict(base, asc=asc, limit=str(limit), offset=str(offset))
                want = oracle_releases(rels, q)
                res = get(api, "/orlo/releases", q)
                assert [r["id"] for r in res.body["releases"]] == want, q
    assert ok(get(api, "/orlo/stats")) == {"global": _counts(rels)}
    assert ok(get(api, "/orlo/info/packages/versions")) == {"rare": "120", "web": "0"}


def test_datadog_lists_orlo_deployments_of_several_tenants(api: Api, clock: Clock) -> None:
    """An Orlo package stopped on two platforms makes two deployments (one per tenant) of project 'web';
    Datadog's list shows both, also for `service:web env:production` (two streams: not the one-stream
    index), and agrees with the unfiltered read; other queries too."""
    from datadog_api_client import Configuration
    from datadog_api_client.model_utils import validate_and_convert_types
    from datadog_api_client.v2.model.dora_deployments_list_response import DORADeploymentsListResponse

    made = 0
    for platforms in (["eu", "us"], ["eu"], ["us", "EU", "asia"]):
        rid = ok(call(api, "POST", "/orlo/releases", body={"user": "amy", "platforms": platforms}))["id"]
        pid = ok(
            call(
                api,
                "POST",
                "/orlo/releases/{rid}/packages",
                path_params={"rid": rid},
                body={"name": "web", "version": "1"},
            )
        )["id"]
        ok(call(api, "POST", "/orlo/releases/{rid}/packages/{pid}/start", path_params={"rid": rid, "pid": pid}), 204)
        clock.advance(timedelta(seconds=30))
        ok(
            call(
                api,
                "POST",
                "/orlo/releases/{rid}/packages/{pid}/stop",
                path_params={"rid": rid, "pid": pid},
                body={"success": True},
            ),
            204,
        )
        clock.advance(timedelta(seconds=30))
        made += len({p.casefold() for p in platforms})
    full = dd_full(api)
    assert len(full) == made == 6, full
    validate_and_convert_types(
        dd_list(api, limit=1000), (DORADeploymentsListResponse,), ["r"], True, True, Configuration()
    )
    for query in ("service:web", "service:web env:production", "env:production", "service:web AND env:production"):
        got = dd_full(api, query=query)
        assert sorted(d["id"] for d in got) == sorted(d["id"] for d in full), query
        paged: list[str] = []
        cursor = None
        while True:
            attrs: dict[str, Any] = {"query": query, "limit": 1}
            if cursor:
                attrs["page"] = {"cursor": cursor}
            body = dd_list(api, **attrs)
            paged += [d["id"] for d in body["data"]]
            cursor = body.get("meta", {}).get("page", {}).get("after")
            if not cursor:
                break
        assert sorted(paged) == sorted(d["id"] for d in full), query
    for d in full:
        one = api.call(
            "GET", "/api/v2/dora/deployments/{deployment_id}", path_params={"deployment_id": d["id"]}, headers=DD
        )
        assert one.status == 200 and one.body["data"] == d, (one.body, d)


@pytest.mark.parametrize(
    "attrs",
    [
        {"from": DT0 + 10 * HOUR, "to": DT0},
        {"from": "2023-11-14T22:13:20+02:00"},
        {"to": (DT0 + 5 * HOUR) * 1000},
        {"from": 0, "to": 2**62},
        {"limit": 1000, "sort": "started_at"},
        {"query": "service:shop OR NOT (env:staging AND team:red)"},
        {"query": "service:sh*p team:re?"},
        {"query": 'service:"shop"'},
    ],
)
def test_datadog_list_edge_inputs_answer_no_5xx_and_agree_with_the_oracle(api: Api, attrs: dict[str, Any]) -> None:
    rng = random.Random(3)
    model = DdModel()
    for _ in range(20):
        dd_create(api, model, rng)
    res = api.call("POST", "/api/v2/dora/deployments", body={"data": {"attributes": attrs}}, headers=DD)
    assert res.status < 500, res.body


@pytest.mark.parametrize("seed", SEEDS)
def test_datadog_wildcards_phrases_and_bounds_agree_with_the_oracle(api: Api, seed: int) -> None:
    rng = random.Random(seed)
    model = DdModel()
    for _ in range(30):
        dd_create(api, model, rng)
    env = lambda a: a.get("env", "production")  # noqa: E731
    cases = {
        "service:sh*p team:re?": lambda a: a["service"] == "shop" and a.get("team") == "red",
        'service:"shop"': lambda a: a["service"] == "shop",
        "SERVICE:SHOP": lambda a: a["service"] == "shop",
        "service:shop OR NOT (env:staging AND team:red)": lambda a: (
            a["service"] == "shop" or not (env(a) == "staging" and a.get("team") == "red")
        ),
        "@service:web -tier:3": lambda a: a["service"] == "web" and a["custom_tags"] != ["tier:3"],
        "service:(web OR api) env:staging": lambda a: a["service"] in ("web", "api") and env(a) == "staging",
        "service:web env:staging OR service:api": lambda a: (
            (a["service"] == "web" and env(a) == "staging") or a["service"] == "api"
        ),
        "tier:*": lambda a: True,
        "service:sh?p": lambda a: a["service"] == "shop",
    }
    for query, pred in cases.items():
        lo = DT0 + rng.randint(0, 6) * HOUR
        hi = lo + rng.randint(0, 6) * HOUR
        for bounds in ({}, {"from": lo, "to": hi}, {"from": _iso(lo).replace(".000Z", "+00:00"), "to": hi * 1000}):
            got = {d["id"] for d in dd_full(api, query=query, **bounds)}
            blo, bhi = (lo, hi) if bounds else (-1, 10**12)
            want = {i for i, a in model.items.items() if pred(a) and blo <= a["finished_at"] <= bhi}
            assert got == want, (query, bounds)


def test_datadog_an_id_sent_again_after_delete_lists_once_with_its_new_values(api: Api) -> None:
    first = {
        "id": "resent-deploy-000001",
        "service": "shop",
        "env": "staging",
        "finished_at": DT0,
        "started_at": DT0 - 60,
    }
    assert api.call("POST", "/api/v2/dora/deployment", body={"data": {"attributes": first}}, headers=DD).status == 200
    res = api.call(
        "DELETE", "/api/v2/dora/deployment/{deployment_id}", path_params={"deployment_id": first["id"]}, headers=DD
    )
    assert res.status == 202
    second = dict(first, service="web", env="production", finished_at=DT0 + 5 * HOUR, started_at=DT0 + 5 * HOUR - 60)
    res = api.call("POST", "/api/v2/dora/deployment", body={"data": {"attributes": second}}, headers=DD)
    assert res.status == 200, res.body
    for query, n in (
        ("", 1),
        ("service:shop", 0),
        ("service:shop env:staging", 0),
        ("env:staging", 0),
        ("service:web", 1),
        ("service:web env:production", 1),
    ):
        got = dd_full(api, query=query)
        assert [d["id"] for d in got] == [first["id"]] * n, query
        for d in got:
            assert d["attributes"]["service"] == "web" and d["attributes"]["finished_at"] == _iso(DT0 + 5 * HOUR)
    assert dd_full(api, **{"from": DT0 - 10, "to": DT0 + 10}) == []


def test_orlo_release_by_id_keeps_filters_and_packages_list_agrees(api: Api, clock: Clock) -> None:
    """GET /orlo/releases/{rid}?user=other: 404 (API.md: the id does not disable filters); /orlo/packages
    with name/status filters and paging agrees with the oracle."""
    rng = random.Random(42)
    rels = build_history(api, clock, rng, n=10)
    r = rels[0]
    other = next(u for u in USERS if u != r.user)
    assert get(api, "/orlo/releases/{rid}", {"user": other}, rid=r.id).status == 404
    assert [x["id"] for x in ok(get(api, "/orlo/releases/{rid}", {"user": r.user}, rid=r.id))["releases"]] == [r.id]
    pkgs = [p for rel in rels for p in rel.packages]
    for name in [None, *NAMES]:
        for status in [None, "SUCCESSFUL", "FAILED", "IN_PROGRESS", "NOT_STARTED"]:
            q = {k: v for k, v in (("name", name), ("status", status)) if v}
            want = {
                p.id or (p.name, p.version)
                for p in pkgs
                if (not name or p.name == name) and (not status or p.status == status)
            }
            res = get(api, "/orlo/packages", dict(q, limit="1000"))
            got = {x["id"] for x in res.body["packages"]}
            known = {x["id"] for x in res.body["packages"]} & {p.id for p in pkgs if p.id}
            wanted_known = {w for w in want if isinstance(w, str) and w}
            assert known == wanted_known, q
            assert len(got) == len(want) and res.status == (200 if want else 404), q
            timed = [x["stime"] for x in res.body["packages"] if x["stime"]]
            assert timed == sorted(timed, reverse=True), q


@pytest.mark.parametrize("query", ["service:web env:production", "service:web"])
@pytest.mark.parametrize("sort", ["-timestamp", "timestamp"])
def test_datadog_paging_while_a_second_stream_of_the_service_appears(
    api: Api, clock: Clock, query: str, sort: str
) -> None:
    """Paging `service:web env:production` starts on the one-stream index (GSI3); between pages an Orlo
    package 'web' stopped on a platform makes a second stream (a tenant) of web in production, so the
    next request would choose the project index (GSI2). The deployments that existed throughout must all
    come, each once, and the cursor must keep working (API.md Paging)."""
    ids = []
    for i in range(6):
        attrs = {
            "id": f"stream-deploy-{i:04d}-xxxx",
            "service": "web",
            "finished_at": DT0 + i * HOUR,
            "started_at": DT0 + i * HOUR - 60,
        }
        assert (
            api.call("POST", "/api/v2/dora/deployment", body={"data": {"attributes": attrs}}, headers=DD).status == 200
        )
        ids.append(attrs["id"])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        attrs2: dict[str, Any] = {"query": query, "sort": sort, "limit": 2}
        if cursor:
            attrs2["page"] = {"cursor": cursor}
        body = dd_list(api, **attrs2)
        seen += [d["id"] for d in body["data"]]
        cursor = body.get("meta", {}).get("page", {}).get("after")
        pages += 1
        if not cursor:
            break
        if pages == 1:
            rid = ok(call(api, "POST", "/orlo/releases", body={"user": "amy", "platforms": ["eu"]}))["id"]
            pid = ok(
                call(
                    api,
                    "POST",
                    "/orlo/releases/{rid}/packages",
                    path_params={"rid": rid},
                    body={"name": "web", "version": "9"},
                )
            )["id"]
            ok(
                call(api, "POST", "/orlo/releases/{rid}/packages/{pid}/start", path_params={"rid": rid, "pid": pid}),
                204,
            )
            ok(
                call(
                    api,
                    "POST",
                    "/orlo/releases/{rid}/packages/{pid}/stop",
                    path_params={"rid": rid, "pid": pid},
                    body={"success": True},
                ),
                204,
            )
    assert len(seen) == len(set(seen)), seen
    assert set(ids) <= set(seen), set(ids) - set(seen)


ORLO_ODD_QUERIES = [
    ("/orlo/releases", {"stime_after": "2024-03-01T12:00:00"}),
    ("/orlo/releases", {"stime_after": "2024-03-01"}),
    ("/orlo/releases", {"stime_after": "2024-03-01T12:00:00+02:00"}),
    ("/orlo/releases", {"ftime_before": "99999-01-01T00:00:00Z"}),
    ("/orlo/releases", {"stime_before": "0001-01-01T00:00:00Z"}),
    ("/orlo/releases", {"limit": "-1"}),
    ("/orlo/releases", {"offset": "-1"}),
    ("/orlo/releases", {"offset": "x"}),
    ("/orlo/releases", {"limit": "99999999999999999999"}),
    ("/orlo/releases", {"offset": "99999999999999999999"}),
    ("/orlo/releases", {"asc": "maybe"}),
    ("/orlo/releases", {"package_rollback": "maybe"}),
    ("/orlo/releases", {"duration_gt": "x"}),
    ("/orlo/releases", {"status": "successful"}),
    ("/orlo/releases", {"user": "\u0000"}),
    ("/orlo/releases", {"user": "x" * 5000}),
    ("/orlo/stats", {"stime": "0001-01-01T00:00:00Z", "ftime": "9999-12-31T23:59:59Z"}),
    ("/orlo/stats", {"stime": "2024-03-02T00:00:00Z", "ftime": "2024-03-01T00:00:00Z"}),
    ("/orlo/stats/by_date/release", {"unit": "minute"}),
    ("/orlo/stats/by_date/release", {"summarize_by_unit": "maybe"}),
    ("/orlo/stats/by_date/package", {"unit": "iso", "summarize_by_unit": "true", "status": "FAILED"}),
    ("/orlo/info/packages/versions", {"by_release": "maybe"}),
    ("/orlo/packages", {"limit": "-5"}),
]


@pytest.mark.parametrize(("route", "query"), ORLO_ODD_QUERIES)
def test_orlo_odd_read_queries_answer_no_5xx(api: Api, clock: Clock, route: str, query: dict[str, str]) -> None:
    build_history(api, clock, random.Random(9), n=4)
    if route.startswith("/orlo/stats/by_date/"):
        res = get(api, "/orlo/stats/by_date/{subject}", query, subject=route.rsplit("/", 1)[1])
    else:
        res = get(api, route, query)
    assert res.status < 500, (route, query, res.status, res.body)


DD_ODD_BODIES: list[Any] = [
    {},
    {"data": None},
    {"data": {"attributes": None}},
    {"data": {"attributes": {"limit": "5"}}},
    {"data": {"attributes": {"limit": 0}}},
    {"data": {"attributes": {"limit": 1001}}},
    {"data": {"attributes": {"limit": True}}},
    {"data": {"attributes": {"page": {"cursor": 5}}}},
    {"data": {"attributes": {"page": None}}},
    {"data": {"attributes": {"page": {"cursor": ""}}}},
    {"data": {"attributes": {"page": {"cursor": "eyJ4IjoxfQ=="}}}},
    {"data": {"attributes": {"sort": "service"}}},
    {"data": {"attributes": {"from": "yesterday"}}},
    {"data": {"attributes": {"from": 10**30}}},
    {"data": {"attributes": {"from": -(10**12)}}},
    {"data": {"attributes": {"from": 1.5e9}}},
    {"data": {"attributes": {"query": "service:(web"}}},
    {"data": {"attributes": {"query": "service:web)"}}},
    {"data": {"attributes": {"query": "\\"}}},
    {"data": {"attributes": {"query": "service:" + "(" * 500}}},
    {"data": {"attributes": {"query": " OR ".join(["service:a"] * 2000)}}},
    {"data": {"attributes": {"query": 5}}},
    {"data": {"attributes": {"query": "-"}}},
    {"data": {"attributes": {"query": "NOT"}}},
    {"data": {"attributes": {"query": "service:\u0000"}}},
    [],
]


@pytest.mark.parametrize("body", DD_ODD_BODIES)
def test_datadog_odd_list_bodies_answer_no_5xx(api: Api, body: Any) -> None:
    dd_create(api, DdModel(), random.Random(1))
    for route in ("/api/v2/dora/deployments", "/api/v2/dora/failures"):
        res = api.call("POST", route, body=body, headers=DD)
        assert res.status < 500, (route, body, res.status, res.body)


def test_datadog_inclusive_bounds_at_millisecond_precision(api: Api) -> None:
    """A deployment finishing at ...20.123 s: `to`/`from` equal to that instant (ms, ns or ISO) include it
    (API.md: inclusive bounds); one millisecond off excludes it."""
    ms = DT0 * 1000 + 123
    attrs = {"id": "precise-deploy-0001", "service": "shop", "finished_at": ms, "started_at": ms - 60_000}
    assert api.call("POST", "/api/v2/dora/deployment", body={"data": {"attributes": attrs}}, headers=DD).status == 200
    iso = "2023-11-14T22:13:20.123+00:00"
    for bounds, n in (
        ({"to": ms}, 1),
        ({"from": ms}, 1),
        ({"from": ms, "to": ms}, 1),
        ({"to": ms * 1_000_000}, 1),
        ({"from": iso, "to": iso}, 1),
        ({"to": ms - 1}, 0),
        ({"from": ms + 1}, 0),
        ({"to": DT0}, 0),
    ):
        got = dd_full(api, **bounds)
        assert len(got) == n, bounds


def test_orlo_an_imported_release_without_stime(api: Api, clock: Clock) -> None:
    """An imported release without stime (its package NOT_STARTED: a SUCCESSFUL one needs a time) is listed
    after the timed ones in both orders, pages cleanly, and stime bounds leave it out."""
    rels = build_history(api, clock, random.Random(21), n=4)
    doc = {
        "user": "amy",
        "team": "red",
        "platforms": ["eu"],
        "references": ["NOSTIME"],
        "packages": [{"name": "web", "version": "7", "status": "NOT_STARTED"}],
    }
    (rid,) = ok(call(api, "POST", "/orlo/releases/import", body=[doc]))["releases"]
    for asc in ("true", "false"):
        listed = [r["id"] for r in ok(get(api, "/orlo/releases", {"asc": asc, "limit": "1000"}))["releases"]]
        assert listed == [*oracle_releases(rels, {"asc": asc, "limit": "1000"}), rid], asc
        paged = []
        for offset in range(0, len(rels) + 2, 2):
            res = get(api, "/orlo/releases", {"asc": asc, "limit": "2", "offset": str(offset)})
            paged += [r["id"] for r in res.body["releases"]]
        assert paged == listed, asc
    bounded = get(api, "/orlo/releases", {"stime_before": "2099-01-01T00:00:00Z"})
    assert rid not in [r["id"] for r in bounded.body["releases"]]
    assert ok(get(api, "/orlo/stats")) == {"global": _counts(rels)}
    assert rid in [
        r["id"] for r in ok(get(api, "/orlo/releases", {"status": "NOT_STARTED", "limit": "1000"}))["releases"]
    ]
    assert ok(get(api, "/orlo/info/packages/list", {"platform": "eu"}))["packages"]
    assert ok(get(api, "/orlo/stats", {"stime": "1970-01-01T00:00:00Z"})) == {"global": _counts(rels)}
