"""The Orlo WRITE workflow and what it does to deployments and figures (written by a read-only review).

Differential: one random Orlo history (releases, packages started/stopped at set instants, notes,
metadata, release stops) is sent
- to space A in chronological order, with client resends (metadata twice, a stop sent again) and stops
  whose deployment write fails once (503) and is then sent again;
- to space B release after release (the clock jumps back: deployments reach their streams out of
  finish order);
- to space C as one import of A's releases as ``GET /orlo/releases`` shows them.
All three must give the same deployments (per stream, state, version, rollback, times), the same
per-deployment figures, the same ``/dora/metrics`` and ``/summary``.

``DORA_PROPERTY_SEEDS=a:b`` runs other seeds (the review ran 40, and 8 with versions repeated across
releases). What the review found is fixed: notes filling a release left its running package unstoppable
(413 for good); a stop half written, then a release restart, made the resend a 409 for good; a stop
racing its siblings' stops answered 409 and was dropped; an exported release with a long note did not
import again.
"""

from __future__ import annotations

import base64
import os
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, NOW, Api, Aws, Clock, HttpResult
from tests.support.fixtures import OTHER_KEY, OTHER_SPACE
from tests.support.native import list_all
from tests.support.retries import settle

THIRD_SPACE, THIRD_KEY = "Spaces-3", "third-space-admin-key"
BASE = datetime(2024, 3, 1, 6, 0, tzinfo=UTC)
DEPS = "/api/{spaceId}/deployments"
ONE = "/api/{spaceId}/deployments/{deploymentId}"
METRICS = "/api/{spaceId}/dora/metrics"
START = "/orlo/releases/{rid}/packages/{pid}/start"
STOP = "/orlo/releases/{rid}/packages/{pid}/stop"
FIGURES = (
    "lead_time_seconds",
    "lead_time_source",
    "time_since_previous_success_seconds",
    "time_to_recovery_seconds",
    "deployments_until_recovery",
    "change_failure",
    "change_failure_computed",
    "change_failure_rule",
    "rework",
    "rework_reason",
)
ID_FIGURES = ("previous_success_id", "recovered_from_failed_id", "change_failure_cause")


def _seeds(default: int) -> list[int]:
    spec = os.environ.get("DORA_PROPERTY_SEEDS")
    if spec:
        a, b = (int(x) for x in spec.split(":"))
        return list(range(a, b))
    return list(range(default))


def basic(key: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"orlo:{key}".encode()).decode()}


def call(api: Api, method: str, route: str, key: str, **kwargs: Any) -> HttpResult:
    return api.call(method, route, headers=basic(key), **kwargs)


# --------------------------------------------------------------------------- the plan


@dataclass
class Pkg:
    name: str
    version: str
    rollback: bool
    start: datetime | None
    stop: datetime | None
    success: bool
    diff_url: str | None = None


@dataclass
class Rel:
    n: int
    user: str
    team: str | None
    platforms: list[str]
    created: datetime
    packages: list[Pkg]
    notes: list[tuple[datetime, str]] = field(default_factory=list)
    metadata: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)
    stop: datetime | None = None


SHARED_VERSIONS = [False]  # set: versions repeat across releases (rollbacks by version, rule 2)


def make_plan(seed: int) -> list[Rel]:
    rng = random.Random(4242 + seed)
    used: set[datetime] = set()

    def instant(lo: datetime, minutes: int) -> datetime:
        while True:
            t = lo + timedelta(seconds=rng.randint(1, minutes * 60))
            if t not in used:
                used.add(t)
                return t

    releases: list[Rel] = []
    for n in range(rng.randint(2, 5)):
        created = instant(BASE, 180)
        platforms = rng.choice([["site1"], ["site1", "site2"], ["site2"], ["SITE1", "site2"]])
        packages = []
        for p in range(rng.randint(1, 3)):
            roll = rng.random()
            start = instant(created, 20) if roll > 0.05 else None
            stop = instant(start, 40) if start is not None and roll > 0.15 else None
            packages.append(
                Pkg(
                    name=rng.choice(["web", "api", "db"]),
                    version=f"{n}.{p}" if not SHARED_VERSIONS[0] else rng.choice(["1.0", "1.1", "1.2"]),
                    rollback=rng.random() < 0.15,
                    start=start,
                    stop=stop,
                    success=rng.random() < 0.75,
                    diff_url=rng.choice([None, f"https://example.com/diff/{n}/{p}"]),
                )
            )
        rel = Rel(
            n=n,
            user=rng.choice(["alice", "bob"]),
            team=rng.choice(["A-Team", None]),
            platforms=platforms,
            created=created,
            packages=packages,
        )
        for i in range(rng.randint(0, 2)):
            rel.notes.append((instant(created, 30), f"note {n}/{i}"))
        for i in range(rng.randint(0, 2)):
            rel.metadata.append((instant(created, 30), {f"k{rng.randint(0, 2)}": f"v{n}{i}"}))
        if rng.random() < 0.8:
            last = max([p.stop or p.start or created for p in packages] + [created])
            started = max([p.start or created for p in packages] + [created])
            rel.stop = instant(last if rng.random() < 0.8 else started, 10)  # else: before some stops
        releases.append(rel)
    return releases


# Events: (time, release n, kind, index)
def events(plan: list[Rel]) -> list[tuple[datetime, int, str, int]]:
    out: list[tuple[datetime, int, str, int]] = []
    for r in plan:
        out.append((r.created, r.n, "create", -1))
        for i, p in enumerate(r.packages):
            if p.start:
                out.append((p.start, r.n, "start", i))
            if p.stop:
                out.append((p.stop, r.n, "stop", i))
        for i, (t, _) in enumerate(r.notes):
            out.append((t, r.n, "note", i))
        for i, (t, _) in enumerate(r.metadata):
            out.append((t, r.n, "meta", i))
        if r.stop:
            out.append((r.stop, r.n, "rstop", -1))
    return out


class Runner:
    """Sends one release's events to a space; ids of what it created."""

    def __init__(self, api: Api, clock: Clock, key: str, rng: random.Random | None = None) -> None:
        self.api, self.clock, self.key, self.rng = api, clock, key, rng
        self.rid: dict[int, str] = {}
        self.pid: dict[tuple[int, int], str] = {}
        self.notes: list[str] = []

    def ok(self, result: HttpResult, status: int = 204) -> Any:
        assert result.status == status, (result.status, result.body)
        return result.body

    def send(self, plan: list[Rel], ev: tuple[datetime, int, str, int], monkeypatch: pytest.MonkeyPatch) -> None:
        t, n, kind, i = ev
        self.clock.now = t
        rel = plan[n]
        api, key = self.api, self.key
        if kind == "create":
            body: dict[str, Any] = {"user": rel.user, "platforms": rel.platforms, "references": [f"T-{n}"]}
            if rel.team:
                body["team"] = rel.team
            rid = self.ok(call(api, "POST", "/orlo/releases", key, body=body), 200)["id"]
            self.rid[n] = rid
            # orloclient adds every package at once, right after creating the release
            for j, p in enumerate(rel.packages):
                pbody: dict[str, Any] = {"name": p.name, "version": p.version, "rollback": p.rollback}
                if p.diff_url:
                    pbody["diff_url"] = p.diff_url
                made = call(api, "POST", "/orlo/releases/{rid}/packages", key, path_params={"rid": rid}, body=pbody)
                self.pid[(n, j)] = self.ok(made, 200)["id"]
            return
        rid = self.rid[n]
        if kind == "start":
            self.ok(call(api, "POST", START, key, path_params={"rid": rid, "pid": self.pid[(n, i)]}))
        elif kind == "stop":
            params = {"rid": rid, "pid": self.pid[(n, i)]}
            body = {"success": rel.packages[i].success}
            fault = self.rng is not None and self.rng.random() < 0.3
            if fault:
                from dora_insights.errors import WriteContendedError
                from dora_insights.logic import deployments

                real, calls, fail_at = deployments.ingest, [0], self.rng.choice([1, 2])

                def contended(*args: Any, **kwargs: Any) -> Any:
                    calls[0] += 1
                    if calls[0] >= fail_at:
                        raise WriteContendedError("contended; retry the request")
                    return real(*args, **kwargs)

                monkeypatch.setattr(deployments, "ingest", contended)
                refused = call(api, "POST", STOP, key, path_params=params, body=body)
                monkeypatch.undo()
                if calls[0] < fail_at:  # one platform: the second write never came
                    assert refused.status == 204, refused.body
                    return
                assert refused.status == 503, refused.body
                again = call(api, "POST", STOP, key, path_params=params, body=body)
                assert again.status in (204, 400), again.body  # 400: the known "already stopped"
            else:
                self.ok(call(api, "POST", STOP, key, path_params=params, body=body))
                if self.rng is not None and self.rng.random() < 0.3:
                    again = call(api, "POST", STOP, key, path_params=params, body=body)
                    assert again.status == 400, again.body
        elif kind == "note":
            text = rel.notes[i][1]
            self.ok(call(api, "POST", "/orlo/releases/{rid}/notes", key, path_params={"rid": rid}, body={"text": text}))
        elif kind == "meta":
            meta = rel.metadata[i][1]
            times = 2 if self.rng is not None and self.rng.random() < 0.5 else 1
            for _ in range(times):  # merged: idempotent
                self.ok(call(api, "POST", "/orlo/releases/{rid}/metadata", key, path_params={"rid": rid}, body=meta))
        elif kind == "rstop":
            self.ok(call(api, "POST", "/orlo/releases/{rid}/stop", key, path_params={"rid": rid}))


# --------------------------------------------------------------------------- reading a space back


def deployments_of(api: Api, space: str, key: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    listed = list_all(api, space=space, key=key)
    label = {d["id"]: (d["project"], (d["tenant"] or "").casefold(), d["version"], d["finished_at"]) for d in listed}
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for d in listed:
        one = api.call("GET", ONE, path_params={"spaceId": space, "deploymentId": d["id"]}, key=key)
        assert one.status == 200, one.body
        body = one.body
        figures = body.get("figures") or {}
        entry = {
            k: body.get(k)
            for k in ("project", "environment", "state", "version", "rollback", "started_at", "finished_at", "team")
        }
        entry["pending"] = body.get("pending")
        entry.update({k: figures.get(k) for k in FIGURES})
        entry.update({k: label.get(str(figures.get(k)), figures.get(k)) for k in ID_FIGURES})
        out[label[d["id"]]] = entry
    return out


def metrics_of(api: Api, space: str, key: str) -> dict[str, Any]:
    sp = {"spaceId": space}
    found: dict[str, Any] = {}
    for interval in ("daily", "all"):
        for metric in ("deployment_frequency", "change_failure_rate", "rework_rate", "lead_time_for_changes"):
            q = {"metric": metric, "start_date": "2024-02-29", "end_date": "2024-03-02", "interval": interval}
            r = api.call("GET", METRICS, path_params=sp, query=q, key=key)
            assert r.status == 200, r.body
            found[f"{interval}:{metric}"] = r.body
            for extra in ({"project_group": "A-Team"}, {"tenant": "site1"}, {"project": "web"}):
                r = api.call("GET", METRICS, path_params=sp, query=q | extra, key=key)
                assert r.status == 200, r.body
                found[f"{interval}:{metric}:{extra}"] = r.body
    q = {"from": "2024-02-29T00:00:00Z", "to": "2024-03-03T00:00:00Z"}
    r = api.call("GET", "/api/{spaceId}/summary", path_params=sp, query=q, key=key)
    assert r.status == 200, r.body
    found["summary"] = {k: v for k, v in r.body.items() if k not in ("as_of", "pending", "generated_at", "range")}
    return found


def releases_of(api: Api, key: str) -> list[dict[str, Any]]:
    r = call(api, "GET", "/orlo/releases", key, query={"limit": "1000", "asc": "true"})
    assert r.status == 200, r.body
    return r.body["releases"]  # type: ignore[no-any-return]


def _strip_ids(releases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in releases:
        packages = [{k: v for k, v in p.items() if k not in ("id", "release_id")} for p in r["packages"]]
        out.append({**{k: v for k, v in r.items() if k != "id"}, "packages": packages})
    return sorted(out, key=lambda r: (r["stime"], r["user"]))


def import_doc(releases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    doc = []
    for r in releases:
        packages = [
            {k: p[k] for k in ("id", "name", "version", "status", "rollback", "diff_url", "stime", "ftime")}
            for p in r["packages"]
        ]
        keep = ("id", "user", "team", "platforms", "references", "notes", "metadata", "stime", "ftime")
        doc.append({**{k: r[k] for k in keep}, "packages": packages})
    return doc


def _diff(a: dict[Any, Any], b: dict[Any, Any], what: str) -> list[str]:
    out = []
    for k in sorted(set(a) | set(b), key=str):
        if a.get(k) != b.get(k):
            out.append(f"{what} {k}: {a.get(k)!r} != {b.get(k)!r}")
    return out


@pytest.fixture
def spaces(api: Api, store: Any, other_space: str) -> None:
    from dora_insights.logic import admin

    admin.ensure_space(store, THIRD_SPACE, "Third", NOW)
    admin.ensure_api_key(store, THIRD_SPACE, "third admin", THIRD_KEY, NOW)


def _describe(plan: list[Rel]) -> str:
    lines = []
    for r in plan:
        lines.append(f"R{r.n} {r.user} {r.team} {r.platforms} created {r.created:%H:%M:%S} stop {r.stop}")
        for p in r.packages:
            lines.append(f"   {p.name} {p.version} rb={p.rollback} {p.start} -> {p.stop} ok={p.success}")
    return "\n".join(lines)


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("seed", _seeds(3))
def test_orlo_workflow_differential(
    api: Api,
    aws: Aws,
    clock: Clock,
    lambda_context: Any,
    spaces: None,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
    shared: bool,
) -> None:
    """A (chronological, resends, faults) == B (release by release) == C (import of A's releases)."""
    SHARED_VERSIONS[0] = shared
    plan = make_plan(seed)
    SHARED_VERSIONS[0] = False
    evs = sorted(events(plan))
    rng = random.Random(seed)

    a = Runner(api, clock, ADMIN_KEY, rng)
    for ev in evs:
        a.send(plan, ev, monkeypatch)

    b = Runner(api, clock, OTHER_KEY)
    order = list(range(len(plan)))
    rng.shuffle(order)
    for n in order:
        for ev in sorted(e for e in evs if e[1] == n):
            b.send(plan, ev, monkeypatch)

    clock.now = BASE + timedelta(hours=8)
    exported = releases_of(api, ADMIN_KEY)
    imported = call(api, "POST", "/orlo/releases/import", THIRD_KEY, body=import_doc(exported))
    assert imported.status == 200, imported.body

    clock.now = datetime(2024, 3, 2, 12, 0, tzinfo=UTC)
    settle(aws, clock, lambda_context, rounds=2)

    problems: list[str] = []
    rel_a, rel_b, rel_c = (releases_of(api, k) for k in (ADMIN_KEY, OTHER_KEY, THIRD_KEY))
    problems += _diff(dict(enumerate(_strip_ids(rel_a))), dict(enumerate(_strip_ids(rel_b))), "releases A/B")
    # API.md: an imported package without stime takes the release's (a NOT_STARTED one here)
    unstarted = {"stime": None}
    rel_c = [
        {**r, "packages": [p | unstarted if p["status"] == "NOT_STARTED" else p for p in r["packages"]]} for r in rel_c
    ]
    problems += _diff({r["id"]: r for r in rel_a}, {r["id"]: r for r in rel_c}, "releases A/C")
    dep_a = deployments_of(api, "Spaces-1", ADMIN_KEY)
    dep_b = deployments_of(api, OTHER_SPACE, OTHER_KEY)
    dep_c = deployments_of(api, THIRD_SPACE, THIRD_KEY)
    problems += _diff(dep_a, dep_b, "deployment A/B")
    problems += _diff(dep_a, dep_c, "deployment A/C")
    m_a, m_b, m_c = (
        metrics_of(api, s, k) for s, k in (("Spaces-1", ADMIN_KEY), (OTHER_SPACE, OTHER_KEY), (THIRD_SPACE, THIRD_KEY))
    )
    problems += _diff(m_a, m_b, "metrics A/B")
    problems += _diff(m_a, m_c, "metrics A/C")
    expected_count = sum(
        len({pl.casefold() for pl in r.platforms}) for r in plan for p in r.packages if p.stop is not None
    )
    assert len(dep_a) == expected_count, _describe(plan)
    assert not problems, _describe(plan) + "\n" + "\n".join(problems[:30])


# --------------------------------------------------------------------------- targeted cases


def _release(api: Api, clock: Clock, platforms: list[str] | None = None) -> str:
    body = {"user": "alice", "platforms": platforms or ["site1"], "team": "A-Team"}
    r = call(api, "POST", "/orlo/releases", ADMIN_KEY, body=body)
    assert r.status == 200, r.body
    clock.advance(timedelta(seconds=10))
    return str(r.body["id"])


def _package(api: Api, rid: str, name: str = "web", version: str = "1.0") -> str:
    body = {"name": name, "version": version}
    r = call(api, "POST", "/orlo/releases/{rid}/packages", ADMIN_KEY, path_params={"rid": rid}, body=body)
    assert r.status == 200, r.body
    return str(r.body["id"])


def _post(api: Api, clock: Clock, route: str, body: Any = None, **params: str) -> HttpResult:
    r = call(api, "POST", route, ADMIN_KEY, path_params=params, body=body)
    clock.advance(timedelta(seconds=10))
    return r


def test_results_of_multibyte_text_answer_4xx_not_5xx(api: Api, clock: Clock) -> None:
    """Results are capped at 300,000 characters; 250,000 two-byte characters (500 KB, within the 1 MiB
    body limit) make an item DynamoDB refuses. Expected: a 4xx (413 item_too_large), never a 5xx."""
    rid = _release(api, clock)
    pid = _package(api, rid)
    r = api.call(
        "POST",
        "/orlo/releases/{rid}/packages/{pid}/results",
        headers=basic(ADMIN_KEY),
        path_params={"rid": rid, "pid": pid},
        raw_body="é" * 250_000,
    )
    assert r.status < 500, (r.status, r.body)


NOTES = "/orlo/releases/{rid}/notes"


def _fill_with_notes(api: Api, clock: Clock, rid: str) -> list[int]:
    """Notes added until the release holds all it can: full notes, then ever smaller ones. The statuses seen."""
    seen: list[int] = []
    size = 16 * 1024
    while size >= 1:
        r = _post(api, clock, NOTES, {"text": "n" * size}, rid=rid)
        seen.append(r.status)
        assert r.status < 500, (r.status, r.body)
        if r.status != 204:
            size //= 2
    return seen


def test_notes_filling_a_release_leave_its_running_package_stoppable(api: Api, clock: Clock) -> None:
    """A release is rewritten whole at every step. Notes (each at most 16 KiB, any number) fill its item up to
    DynamoDB's 400 KB; a note past it is refused (413, fine). Expected: the package that was running can still
    be stopped and becomes a deployment (domain/orlo.py: "a package stop is never refused for its size once
    its release is written"). What happens: the stop adds the package's ftime to a full item and is refused
    413 for good: the package stays IN_PROGRESS, the release can never be stopped, no deployment is made."""
    rid = _release(api, clock)
    pid = _package(api, rid)
    assert _post(api, clock, START, rid=rid, pid=pid).status == 204
    seen = _fill_with_notes(api, clock, rid)
    assert 413 in seen
    stop = _post(api, clock, STOP, {"success": True}, rid=rid, pid=pid)
    release_stop = _post(api, clock, "/orlo/releases/{rid}/stop", rid=rid)
    assert (stop.status, release_stop.status) == (204, 204), (stop.body, release_stop.body)
    listed = api.call("GET", DEPS, path_params={"spaceId": "Spaces-1"}, key=ADMIN_KEY)
    assert [d["project"] for d in listed.body["items"]] == ["web"]


def test_a_stop_half_written_then_release_restarted_still_completes_on_resend(
    api: Api, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package of a two-platform release stops; its first platform's deployment is written, the second's
    write fails (503). Before the client sends the stop again, the release is (re)started (Orlo allows
    ``/releases/{rid}/start`` on any release not stopped: it re-stamps stime). Expected: sending the stop
    again writes the missing deployment (API.md: "sending the same request again completes it"). What
    happens: the resend rebuilds the drafts with the new release stime as ``release_created_at``, so the
    first platform's draft no longer matches its stored deployment: 409 every time, the second platform's
    deployment is never written."""
    from dora_insights.errors import WriteContendedError
    from dora_insights.logic import deployments

    rid = _release(api, clock, ["site1", "site2"])
    pid = _package(api, rid)
    assert _post(api, clock, START, rid=rid, pid=pid).status == 204
    real = deployments.ingest
    calls: list[int] = []

    def second_fails(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise WriteContendedError("contended; retry the request")
        return real(*args, **kwargs)

    monkeypatch.setattr(deployments, "ingest", second_fails)
    first = _post(api, clock, STOP, {"success": True}, rid=rid, pid=pid)
    monkeypatch.undo()
    assert first.status == 503, first.body
    assert _post(api, clock, "/orlo/releases/{rid}/start", rid=rid).status == 204
    again = _post(api, clock, STOP, {"success": True}, rid=rid, pid=pid)
    listed = api.call("GET", DEPS, path_params={"spaceId": "Spaces-1"}, key=ADMIN_KEY).body["items"]
    assert sorted(d["tenant"] for d in listed) == ["site1", "site2"], (again.status, again.body)


def test_orlo_rollback_marks_the_deployment_before_it(api: Api, aws: Aws, clock: Clock, lambda_context: Any) -> None:
    """METRICS §2 rule 2: an Orlo package with rollback true marks the deployment just before it in its stream
    (web 1.0, web 1.1, then web 1.0 as a rollback: 1.1 is a change failure, the rollback is rework and left
    out of the change failure rate's denominator)."""
    versions = [("1.0", False), ("1.1", False), ("1.0", True)]
    for version, rollback in versions:
        rid = _release(api, clock)
        body = {"name": "web", "version": version, "rollback": rollback}
        made = call(api, "POST", "/orlo/releases/{rid}/packages", ADMIN_KEY, path_params={"rid": rid}, body=body)
        pid = made.body["id"]
        assert _post(api, clock, START, rid=rid, pid=pid).status == 204
        assert _post(api, clock, STOP, {"success": True}, rid=rid, pid=pid).status == 204
        clock.advance(timedelta(minutes=5))
    clock.now = datetime(2024, 3, 2, 12, 0, tzinfo=UTC)
    settle(aws, clock, lambda_context)
    deps = deployments_of(api, "Spaces-1", ADMIN_KEY)
    by_version = {(k[2], v["rollback"]): v for k, v in deps.items()} if len(deps) == 3 else {}
    assert len(deps) == 2 or len(deps) == 3
    # two deployments of web 1.0 on site1: labels collide, so read them by finish time
    listed = sorted(list_all(api, space="Spaces-1", key=ADMIN_KEY), key=lambda d: d["finished_at"])
    figures = []
    for d in listed:
        one = api.call("GET", ONE, path_params={"spaceId": "Spaces-1", "deploymentId": d["id"]}, key=ADMIN_KEY).body
        figures.append((one["version"], one["rollback"], one["figures"]["change_failure"], one["figures"]["rework"]))
    assert figures == [("1.0", False, False, False), ("1.1", False, True, False), ("1.0", True, False, True)], figures
    del by_version


# --------------------------------------------------------------------------- the CLI against a stub server

import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-review-0123456789abcdefSECRET"


class _Stub:
    def __init__(self, answers: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.answers = answers
        self.seen: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                stub.seen.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                status, headers, payload = stub.answers[min(len(stub.seen) - 1, len(stub.answers) - 1)]
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = _any  # noqa: N815 - http.server's handler names

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _cli(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    variables = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(ROOT / "cli" / "src"),
        "DORA_INSIGHTS_SPACE": "Spaces-1",
        **env,
    }
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "dora_insights_cli", *args],
        env=variables,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("answers", "code"),
    [
        ([(503, {**JSON, "retry-after": "0"}, b'{"message":"busy; retry the request","errors":["x"]}')], 6),
        ([(500, JSON, b'{"message":"Internal Server Error"}')], 6),
        ([(400, JSON, b'{"message":"bad","errors":["finished_at: bad"]}')], 5),
        ([(401, JSON, b'{"message":"nope"}')], 3),
        ([(404, JSON, b'{"message":"nope"}')], 4),
        ([(302, {"location": f"http://ci:{SECRET}@evil.example/x"}, b"")], 5),
        ([(200, {"content-type": "text/html"}, b"<html>login</html>")], 5),
        ([(201, JSON, b"[]")], 5),
    ],
)
def test_cli_deployment_exit_codes_and_no_secret(
    tmp_path: Path, answers: list[tuple[int, dict[str, str], bytes]], code: int
) -> None:
    """Every failure ends with its documented exit code, and no message shows the key (given in the URL)."""
    stub = _Stub(answers)
    try:
        url = stub.url.replace("http://", f"http://ci:{SECRET}@")
        done = _cli(
            tmp_path,
            "deployment",
            "--no-ci",
            "--skip-git",
            "--service",
            "shop",
            "--env",
            "production",
            "--retries",
            "1",
            "--retry-delay",
            "0.01",
            env={"DORA_INSIGHTS_URL": url},
        )
    finally:
        stub.close()
    out = done.stdout + done.stderr
    assert SECRET not in out and SECRET[6:20] not in out, out
    assert done.returncode == code, out
    assert "Traceback" not in out, out
    for request in stub.seen:
        assert request["headers"].get("Authorization") == f"Bearer {SECRET}"


@pytest.mark.parametrize(
    "command",
    [
        ["summary", "--service", "shop"],
        ["gate", "--service", "shop", "--metric", "lead_time", "--min-tier", "High"],
        ["summary", "--format", "csv"],
        ["summary", "--format", "json"],
    ],
)
@pytest.mark.parametrize(
    "payload",
    [b"[]", b"null", b'{"deployment_frequency": "x"}', b'{"lead_time": {"tier": 5}}', b"not json", b'{"tiers": []}'],
)
def test_cli_reads_odd_answers_without_a_traceback(tmp_path: Path, command: list[str], payload: bytes) -> None:
    """A 200 that is not the service's summary (a proxy page, another app): a clear message and exit 5,
    never a Python traceback."""
    stub = _Stub([(200, JSON, payload)])
    try:
        done = _cli(
            tmp_path, *command, "--retries", "0", env={"DORA_INSIGHTS_URL": stub.url, "DORA_INSIGHTS_API_KEY": SECRET}
        )
    finally:
        stub.close()
    out = done.stdout + done.stderr
    assert stub.seen, out  # the command did send its request
    assert "Traceback" not in out, out
    assert SECRET not in out, out
    if payload in (b"[]", b"null", b"not json"):  # not a JSON object: not the service's answer
        assert done.returncode == 5, (done.returncode, out)


ODD_NAMES = [
    "ΐ" * 200,
    "ﬃ" * 200,
    "\U0001f600" * 200,
    "x" * 200,
    " a ",
    "a\x00b",
    "a#b",
    "S#x#y",
    "\ud800"[:0] + "é" * 200,
]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_names_through_the_whole_workflow_never_5xx(api: Api, clock: Clock, name: str) -> None:
    """Names within Orlo's limits as typed (200 characters) but long once case-folded or encoded: every
    step answers 2xx or 4xx, and a stopped package becomes a deployment (or the name was refused up front)."""
    body = {"user": name, "platforms": [name, name.upper()], "team": name, "references": [name]}
    created = call(api, "POST", "/orlo/releases", ADMIN_KEY, body=body)
    assert created.status < 500, created.body
    if created.status != 200:
        body = {"user": "alice", "platforms": ["site1"]}
        created = call(api, "POST", "/orlo/releases", ADMIN_KEY, body=body)
    rid = created.body["id"]
    made = call(
        api,
        "POST",
        "/orlo/releases/{rid}/packages",
        ADMIN_KEY,
        path_params={"rid": rid},
        body={"name": name, "version": name},
    )
    assert made.status < 500, made.body
    if made.status != 200:
        return
    pid = made.body["id"]
    assert _post(api, clock, START, rid=rid, pid=pid).status == 204
    stop = _post(api, clock, STOP, {"success": False}, rid=rid, pid=pid)
    assert stop.status == 204, stop.body
    listed = api.call("GET", DEPS, path_params={"spaceId": "Spaces-1"}, key=ADMIN_KEY).body["items"]
    assert len(listed) >= 1


def _nested(depth: int) -> dict[str, Any]:
    """``{"n": {"n": ... 1}}``, ``depth`` maps deep."""
    value: Any = 1
    for _ in range(depth):
        value = {"n": value}
    return value  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("route", "body"),
    [
        (STOP, []),
        (STOP, [1]),
        (STOP, "true"),
        (STOP, {"success": None}),
        (STOP, {"success": "maybe"}),
        (STOP, {"success": {"a": 1}}),
        (STOP, 12),
        (STOP, {"success": 2}),
        ("/orlo/releases/{rid}/notes", {"text": 5}),
        ("/orlo/releases/{rid}/notes", ["x"]),
        ("/orlo/releases/{rid}/notes", {"text": "x" * 20000}),
        ("/orlo/releases/{rid}/metadata", ["x"]),
        ("/orlo/releases/{rid}/metadata", {"a": 1e308 * 10}),
        ("/orlo/releases/{rid}/metadata", {"": 1}),
        ("/orlo/releases/{rid}/metadata", {"a" * 100000: 1}),
        ("/orlo/releases/{rid}/metadata", {"k": "v" * 500_000}),
        ("/orlo/releases/{rid}/metadata", {"k": _nested(34)}),
        ("/orlo/releases/{rid}/packages", {"name": "web", "version": True}),
        ("/orlo/releases/{rid}/packages", {"name": "web", "version": 1e400}),
        ("/orlo/releases/{rid}/packages", {"name": "web", "version": "1", "rollback": "maybe"}),
        ("/orlo/releases/{rid}/packages", {"name": "web", "version": "1", "diff_url": 5}),
    ],
)
def test_odd_write_bodies_answer_4xx(api: Api, clock: Clock, route: str, body: Any) -> None:
    rid = _release(api, clock)
    pid = _package(api, rid)
    assert _post(api, clock, START, rid=rid, pid=pid).status == 204
    params = {"rid": rid, "pid": pid} if "{pid}" in route else {"rid": rid}
    r = call(api, "POST", route, ADMIN_KEY, path_params=params, body=body)
    assert 400 <= r.status < 500 or r.status in (200, 204), (r.status, r.body)


def test_a_stop_racing_other_packages_stops_is_refused_409_and_its_package_stays_running(
    api: Api, clock: Clock, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic form of the parallel case: while package P's stop is between reading its release and
    writing it back, four other packages of the release are stopped (each its own request, each a write of
    the whole release). Expected: P's stop lands (204), or at worst a 503 to retry (API.md Errors: "No write
    answers contention as a 409 conflict"; a 409 "means another request did change what you meant to
    change", and no other request touched P). What happens: ``logic/orlo.py`` ``_change`` gives up after
    MAX_ATTEMPTS=4 lost races and answers 409; P stays IN_PROGRESS with no deployment (orloclient raises
    ClientError on a 409 and does not retry)."""
    from dora_insights.logic import orlo as logic

    rid = _release(api, clock)
    target = _package(api, rid, "web", "1.0")
    others = [_package(api, rid, f"svc{i}", "1.0") for i in range(4)]
    for pid in [target, *others]:
        assert _post(api, clock, START, rid=rid, pid=pid).status == 204
    repo_type = type(store.orlo())
    real_get = repo_type.get
    pending = list(others)
    busy = [False]

    def get_then_another_request_writes(self: Any, space_id: str, release_id: str) -> Any:
        stored = real_get(self, space_id, release_id)
        if pending and not busy[0]:
            busy[0] = True
            try:
                logic.stop_package(store, space_id, rid, pending.pop(0), success=True, now=clock.now)
            finally:
                busy[0] = False
        return stored

    monkeypatch.setattr(repo_type, "get", get_then_another_request_writes)
    stop = call(api, "POST", STOP, ADMIN_KEY, path_params={"rid": rid, "pid": target}, body={"success": True})
    monkeypatch.undo()
    (release,) = call(api, "GET", "/orlo/releases/{rid}", ADMIN_KEY, path_params={"rid": rid}).body["releases"]
    status = {p["name"]: p["status"] for p in release["packages"]}
    assert stop.status in (204, 503), (stop.status, stop.body, status)


def test_a_release_with_a_long_note_exports_and_imports_again(api: Api, clock: Clock, other_space: str) -> None:
    """``POST /notes`` takes a note of up to 16 KiB, and ``dialects/orlo.py``'s import model says "an exported R
    re-imports too". Expected: the release as ``GET /orlo/releases/{rid}`` shows it imports into another space.
    What happens: the import's ``notes`` are ``Names`` (at most 200 characters each): 400, so such a release
    cannot be moved (or restored) through export and import."""
    rid = _release(api, clock)
    assert _post(api, clock, NOTES, {"text": "deployed after the incident review; " * 10}, rid=rid).status == 204
    (release,) = call(api, "GET", "/orlo/releases/{rid}", ADMIN_KEY, path_params={"rid": rid}).body["releases"]
    imported = call(api, "POST", "/orlo/releases/import", OTHER_KEY, body=import_doc([release]))
    assert imported.status == 200, (imported.status, imported.body)


@pytest.mark.parametrize(
    ("route", "body"),
    [
        (START, None),
        (STOP, {"success": True}),
        ("/orlo/releases/{rid}/packages/{pid}/results", {"content": "x"}),
        ("/orlo/releases/{rid}/start", None),
        ("/orlo/releases/{rid}/stop", None),
        ("/orlo/releases/{rid}/notes", {"text": "x"}),
        ("/orlo/releases/{rid}/metadata", {"k": "v"}),
        ("/orlo/releases/{rid}/packages", {"name": "web", "version": "9"}),
    ],
)
def test_another_spaces_key_changes_nothing(api: Api, clock: Clock, other_space: str, route: str, body: Any) -> None:
    """Every write route with space B's key on space A's release: 404, and A's release unchanged."""
    rid = _release(api, clock)
    pid = _package(api, rid)
    if route == STOP:
        assert _post(api, clock, START, rid=rid, pid=pid).status == 204
    before = call(api, "GET", "/orlo/releases/{rid}", ADMIN_KEY, path_params={"rid": rid}).body
    params = {"rid": rid, "pid": pid} if "{pid}" in route else {"rid": rid}
    r = call(api, "POST", route, OTHER_KEY, path_params=params, body=body)
    assert r.status == 404, (r.status, r.body)
    after = call(api, "GET", "/orlo/releases/{rid}", ADMIN_KEY, path_params={"rid": rid}).body
    assert before == after
    assert api.call("GET", DEPS, path_params={"spaceId": OTHER_SPACE}, key=OTHER_KEY).body["items"] == []
