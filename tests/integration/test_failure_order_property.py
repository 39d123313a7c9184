"""Failure events and the failure, recovery and rework figures do not depend on arrival order or corrections
(METRICS §2, §8), through the real routes against moto.

A randomized differential, as test_correction_property.py and test_arrival_order_property.py are for
attribution: a small history of deployments (successes, failures, rollbacks, fixes; with or without code) of
project ``shop`` to one or two environments (sometimes two tenants), and 0-4 failure events (cause named by
deployment id, by commit, by version, or no cause: rule 5; some PagerDuty incidents, resolved before or after
their trigger), sent to space A in a random order (a failure naming a deployment by id after it), with the
retry queue, the recompute and reads' refreshes at random points; then 0-3 corrections (failure deleted,
replaced or added; the failure window changed; deployment state, override, remediation, deleted, resent with
the same id); settled. The final history is sent afresh (code first, deployments in finish order, then the
corrections' overrides and remediations, then failures) to space B and settled. Per deployment figures,
``/dora/metrics``, ``/summary`` and an Insights report's metrics must be the same. Deployments and failures
carry client ids, the same in both spaces, so nothing is mapped. ``DORA_PROPERTY_SEEDS=a:b`` runs seeds
a..b-1 instead of the twenty the suite runs (532 seeds passed when this was written).

The explicit cases after it pin what the randomized runs cannot reach:

- A write that changes failures or the failure window (a failure event created or deleted, an incident
  resolved, ``failure_window_hours`` changed) marks the streams it changes, those that wait for their first
  recompute included (``dal.deployments.project_streams``, ``logic.settings._every_stream``). Before, it
  marked only the streams the recompute had registered: a new stream whose first recompute ran meanwhile,
  or read the failures from a lagging index, was computed without the write and its mark cleared for good.
- Rule 4 by commit charges the first success that shipped the commit even when that commit is on a further
  page of its attribution and a later redeploy of it shows it as its own sha (``figures.pages_wanted``).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Aws, Clock
from tests.support.code import commit, send_changes, sha
from tests.support.fixtures import OTHER_KEY
from tests.support.native import get_deployment
from tests.support.recompute import scheduled_run
from tests.support.retries import drain_retries, settle

SPACE = "Spaces-1"
OTHER = "Spaces-2"
REPO = "acme/shop"
DEPS = "/api/{spaceId}/deployments"
ONE = "/api/{spaceId}/deployments/{deploymentId}"
FAILS = "/api/{spaceId}/failures"
FAIL = "/api/{spaceId}/failures/{failureId}"
METRICS = "/api/{spaceId}/dora/metrics"


def _at(minute: int) -> str:
    m = 600 + minute
    return f"2024-03-01T{m // 60:02d}:{m % 60:02d}:00Z"


# --- model -------------------------------------------------------------------------------------------------
@dataclass
class Dep:
    label: str
    env: str
    minute: int
    n: int | None  # commit number, None: no code
    state: str = "Success"
    tenant: str | None = None
    rollback: bool = False
    fixes: str | None = None  # "dep-<label>" or a version
    guided: bool = False
    override: bool | None = None
    remediation: tuple[str, str] | None = None  # (type, label)
    gen: int = 0

    @property
    def id(self) -> str:
        return f"dep-{self.label}"

    @property
    def version(self) -> str:
        return f"1.{self.n}" if self.n is not None else f"0.{self.label}"

    def body(self) -> dict[str, Any]:
        b: dict[str, Any] = {
            "id": self.id,
            "project": "shop",
            "environment": self.env,
            "finished_at": _at(self.minute),
            "started_at": _at(self.minute - 1),
            "version": self.version,
            "state": self.state,
        }
        if self.n is not None:
            b.update(repository=REPO, commit_sha=sha(self.n))
        if self.tenant:
            b["tenant"] = self.tenant
        if self.rollback:
            b["rollback"] = True
        if self.fixes:
            b["fixes"] = self.fixes
        if self.guided:
            b["had_guided_failure"] = True
        return b


@dataclass
class Fail:
    label: str
    env: str
    start: int  # minute after 10:00 (may be negative)
    duration: int | None  # None: open
    kind: str  # id | commit | version | none
    target: Any = None  # label (id), commit number (commit), version (version)
    short: bool = False  # commit named by a 7+ char abbreviation
    projects: tuple[str, ...] = ("shop",)

    @property
    def id(self) -> str:
        return f"pagerduty-PD{self.label.upper()}" if self.kind == "pd" else f"fail-{self.label}"

    def body(self) -> dict[str, Any]:
        b: dict[str, Any] = {
            "id": self.id,
            "projects": list(self.projects),
            "environment": self.env,
            "started_at": _at(self.start),
        }
        if self.duration is not None:
            b["finished_at"] = _at(self.start + self.duration)
        if self.kind == "id":
            b["deployment_id"] = f"dep-{self.target}"
        elif self.kind == "commit":
            full = sha(self.target)
            b["commit_sha"] = full[-12:] if self.short else full
            b["repository"] = REPO
        elif self.kind == "version":
            b["version"] = self.target
        return b


@dataclass
class History:
    commits: int
    deps: list[Dep]
    fails: list[Fail]
    log: list[str] = field(default_factory=list)
    window: float | None = None  # failure_window_hours (None: the default 24)

    def dep(self, label: str) -> Dep:
        return next(d for d in self.deps if d.label == label)

    def fail(self, label: str) -> Fail:
        return next(f for f in self.fails if f.label == label)

    def in_order(self) -> list[Dep]:
        return sorted(self.deps, key=lambda d: d.minute)

    def copy(self) -> History:
        return History(
            self.commits, [replace(d) for d in self.deps], [replace(f) for f in self.fails], list(self.log), self.window
        )

    def describe(self) -> str:
        lines = [f"commits 0..{self.commits - 1}, window {self.window}"]
        for d in self.in_order():
            lines.append(f"  {d.label}: {d.body()} override={d.override} remediation={d.remediation}")
        for f in self.fails:
            lines.append(f"  {f.label}: {f.body()}")
        return "\n".join(lines)


def _random_history(rng: random.Random) -> History:
    commits = rng.randint(3, 8)
    count = rng.randint(3, 8)
    envs = ("production", "staging")[: rng.choice((1, 1, 2))]
    tenants = (None, "t1") if rng.random() < 0.2 else (None,)
    minutes = sorted(rng.sample(range(0, 110), count))
    deps: list[Dep] = []
    position = 0
    for i, minute in enumerate(minutes):
        older = i and rng.random() < 0.25
        position = rng.randint(0, position) if older else rng.randint(position, commits - 1)
        d = Dep(
            label=f"d{i}",
            env=rng.choice(envs),
            minute=minute,
            n=None if rng.random() < 0.15 else position,
            state=rng.choice(("Success",) * 6 + ("Failed", "Failed", "TimedOut", "Canceled", "Executing", "Queued")),
            tenant=rng.choice(tenants),
        )
        if i and rng.random() < 0.12:
            d.rollback = True
        if i and rng.random() < 0.12:
            target = rng.choice(deps)
            d.fixes = target.id if rng.random() < 0.6 else target.version
        if d.state == "Success" and rng.random() < 0.05:
            d.guided = True
        deps.append(d)
    history = History(commits, deps, [], window=rng.choice((None, None, 0.25, 0.5, 1.0)))
    for j in range(rng.choice((0, 1, 1, 2, 2, 3, 4))):
        history.fails.append(_random_fail(rng, history, f"f{j}"))
    return history


def _random_fail(rng: random.Random, history: History, label: str) -> Fail:
    envs = sorted({d.env for d in history.deps})
    kind = rng.choice(("id", "commit", "version", "none", "none", "pd"))
    start = rng.randint(-20, 119)
    duration = None if rng.random() < 0.2 else rng.randint(1, 200)
    f = Fail(label=label, env=rng.choice(envs), start=start, duration=duration, kind=kind)
    if rng.random() < 0.1 and kind != "pd":
        f.projects = ("shop", "cart")
    if kind == "id":
        f.target = rng.choice(history.deps).label
    elif kind == "commit":
        f.target = rng.randrange(history.commits)
        f.short = rng.random() < 0.3
    elif kind == "version":
        f.target = rng.choice(history.deps).version if rng.random() < 0.8 else "9.9"
    return f


# --- routes ------------------------------------------------------------------------------------------------
def _push(api: Api, history: History, *, space: str, key: str) -> None:
    send_changes(api, commits=[commit(n, n) for n in range(history.commits)], space=space, key=key)


def _create(api: Api, dep: Dep, *, space: str, key: str) -> None:
    r = api.call("POST", DEPS, path_params={"spaceId": space}, body=dep.body(), key=key)
    assert r.status in (200, 201), r.body


PD_SECRET = "pd-signing-secret-0123456789abcdef"
_EVENTS = __import__("itertools").count(1)


def _configure(api: Api, h: History, *, space: str, key: str) -> None:
    services = {f"svc-{env}": {"project": "shop", "environment": env} for env in ("production", "staging")}
    r = api.call(
        "PUT",
        "/api/{spaceId}/webhooks/pagerduty",
        path_params={"spaceId": space},
        body={"secret": PD_SECRET, "services": services},
        key=key,
    )
    assert r.status == 200, r.body
    _window(api, h.window, space=space, key=key)
    for name, body in (("All", {}), ("Staging", {"EnvironmentIds": []})):
        if name != "All":
            continue
        r = api.call(
            "POST",
            "/api/{spaceId}/insights/reports",
            path_params={"spaceId": space},
            body={"Name": name, **body},
            key=key,
        )
        assert r.status == 201, r.body


def _window(api: Api, hours: float | None, *, space: str, key: str) -> None:
    r = api.call(
        "PATCH",
        "/api/{spaceId}/settings",
        path_params={"spaceId": space},
        body={"failure_window_hours": hours},
        key=key,
    )
    assert r.status == 200, r.body


def _pd(api: Api, f: Fail, what: str, *, space: str, serial: int = 0) -> None:
    import json

    from dora_insights.dialects.incidents import pagerduty_signature
    from tests.support.events import load_event

    payload = load_event(f"pagerduty_incident_{what}.json")
    event = payload["event"]
    event["id"] = f"EV{next(_EVENTS)}"
    data = event["data"]
    data["id"] = f"PD{f.label.upper()}"
    data["created_at"] = _at(f.start)
    data["service"]["summary"] = f"svc-{f.env}"
    data["service"]["id"] = f"SVC{f.env.upper()}"
    if what == "triggered":
        event["occurred_at"] = _at(f.start)
    else:
        assert f.duration is not None
        event["occurred_at"] = _at(f.start + f.duration)
    raw = json.dumps(payload)
    headers = {"x-pagerduty-signature": pagerduty_signature(PD_SECRET, raw.encode())}
    r = api.call("POST", "/webhooks/pagerduty/{spaceId}", path_params={"spaceId": space}, raw_body=raw, headers=headers)
    assert r.status in (200, 201), r.body


def _fail(api: Api, f: Fail, *, space: str, key: str) -> None:
    if f.kind == "pd":
        _pd(api, f, "triggered", space=space)
        if f.duration is not None:
            _pd(api, f, "resolved", space=space)
        return
    r = api.call("POST", FAILS, path_params={"spaceId": space}, body=f.body(), key=key)
    assert r.status in (200, 201), (r.body, f.body())


def _fail_delete(api: Api, f: Fail, *, space: str, key: str) -> None:
    r = api.call("DELETE", FAIL, path_params={"spaceId": space, "failureId": f.id}, key=key)
    assert r.status == 204, r.body


def _patch(api: Api, label: str, body: dict[str, Any], *, space: str, key: str) -> None:
    r = api.call("PATCH", ONE, path_params={"spaceId": space, "deploymentId": f"dep-{label}"}, body=body, key=key)
    assert r.status == 200, (r.body, body)


def _delete(api: Api, label: str, *, space: str, key: str) -> None:
    r = api.call("DELETE", ONE, path_params={"spaceId": space, "deploymentId": f"dep-{label}"}, key=key)
    assert r.status == 204, r.body


# --- compared ----------------------------------------------------------------------------------------------
_FIGURES = (
    "time_since_previous_success_seconds",
    "previous_success_id",
    "time_to_recovery_seconds",
    "deployments_until_recovery",
    "recovered_from_failed_id",
    "change_failure",
    "change_failure_computed",
    "change_failure_override",
    "change_failure_rule",
    "change_failure_cause",
    "change_failure_reasons",
    "rework",
    "rework_reason",
    "rework_reasons",
    "lead_time_seconds",
    "lead_time_source",
)


def _numbers(api: Api, history: History, *, space: str, key: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for d in history.in_order():
        r = get_deployment(api, d.id, space=space, key=key)
        assert r.status == 200, r.body
        figures = r.body["figures"] or {}
        entry = {name: figures.get(name) for name in _FIGURES}
        entry["state"] = r.body["state"]
        entry["attribution_commits"] = sorted((r.body.get("attribution") or {}).get("commits") or [])
        found[d.label] = entry
    envs = sorted({d.env for d in history.deps} | {f.env for f in history.fails}) or ["production"]
    for metric in (
        "deployment_frequency",
        "change_failure_rate",
        "rework_rate",
        "time_to_restore_service",
        "lead_time_for_changes",
    ):
        for env in envs:
            query = {"metric": metric, "start_date": "2024-02-29", "end_date": "2024-03-02", "environment": env}
            r = api.call("GET", METRICS, path_params={"spaceId": space}, query=query, key=key)
            assert r.status == 200, r.body
            found[f"metrics:{metric}:{env}"] = r.body
    reports = api.call("GET", "/api/{spaceId}/insights/reports", path_params={"spaceId": space}, key=key)
    assert reports.status == 200, reports.body
    items = reports.body.get("Items", reports.body) if isinstance(reports.body, dict) else reports.body
    for report in items:
        r = api.call(
            "GET",
            "/api/{spaceId}/insights/reports/{reportId}/metrics",
            path_params={"spaceId": space, "reportId": report["Id"]},
            query={"timeRange": "LastMonth", "granularity": "Daily"},
            key=key,
        )
        assert r.status == 200, r.body
        found[f"report:{report['Name']}"] = r.body
    for env in envs:
        query = {"from": "2024-02-29T00:00:00Z", "to": "2024-03-02T00:00:00Z", "environment": env}
        r = api.call("GET", "/api/{spaceId}/summary", path_params={"spaceId": space}, query=query, key=key)
        assert r.status == 200, r.body
        body = {k: v for k, v in r.body.items() if k not in ("as_of", "pending", "space_id", "generated_at")}
        found[f"summary:{env}"] = body
    return found


def _read(api: Api, rng: random.Random, *, space: str, key: str) -> None:
    what = rng.choice(("metrics", "summary", "report"))
    if what == "metrics":
        query = {
            "metric": rng.choice(("change_failure_rate", "time_to_restore_service", "rework_rate")),
            "start_date": "2024-02-29",
            "end_date": "2024-03-02",
            "environment": "production",
        }
        r = api.call("GET", METRICS, path_params={"spaceId": space}, query=query, key=key)
    elif what == "summary":
        query = {"from": "2024-02-29T00:00:00Z", "to": "2024-03-02T00:00:00Z"}
        r = api.call("GET", "/api/{spaceId}/summary", path_params={"spaceId": space}, query=query, key=key)
    else:
        reports = api.call("GET", "/api/{spaceId}/insights/reports", path_params={"spaceId": space}, key=key).body
        items = reports.get("Items", reports) if isinstance(reports, dict) else reports
        r = api.call(
            "GET",
            "/api/{spaceId}/insights/reports/{reportId}/metrics",
            path_params={"spaceId": space, "reportId": items[0]["Id"]},
            query={"timeRange": "LastMonth", "granularity": "Daily"},
            key=key,
        )
    assert r.status == 200, r.body


def _differences(got: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    out = []
    for label in sorted(set(got) | set(expected)):
        a, b = got.get(label), expected.get(label)
        if isinstance(a, dict) and isinstance(b, dict):
            for name in sorted(set(a) | set(b)):
                if a.get(name) != b.get(name):
                    out.append(f"{label}.{name}: served {a.get(name)!r}, fresh {b.get(name)!r}")
        elif a != b:
            out.append(f"{label}: served {a!r}, fresh {b!r}")
    return out


# --- corrections -------------------------------------------------------------------------------------------
def _referenced(history: History, label: str) -> bool:
    """Deployments another record names by id (a remediation, or a failure by id): not deleted."""
    if any(d.remediation and d.remediation[1] == label for d in history.deps):
        return True
    dep = history.dep(label)
    if dep.remediation:
        return True
    return any(f.kind == "id" and f.target == label for f in history.fails)


def _random_correction(rng: random.Random, h: History) -> tuple[Any, ...]:
    kinds = ["state", "override"]
    if h.fails:
        kinds += ["fail_delete", "fail_replace", "fail_replace"]
    kinds += ["fail_new", "window"]
    if any(f.kind == "pd" for f in h.fails):
        kinds += ["pd_resolve"]
    deletable = [d for d in h.deps if not _referenced(h, d.label)]
    if deletable and len(h.deps) > 2:
        kinds += ["delete"]
    resendable = [
        d
        for d in h.deps
        if not any(x.remediation and x.remediation[1] == d.label for x in h.deps) and not d.remediation
    ]
    if resendable:
        kinds += ["resend"]
    dep = rng.choice(h.deps)
    later = [
        d
        for d in h.deps
        if (d.env, d.tenant) == (dep.env, dep.tenant) and d.minute > dep.minute and d.state != "Canceled"
    ]
    if later and dep.state != "Canceled":
        kinds += ["remediation"]
    kind = rng.choice(kinds)
    if kind == "state":
        now = dep.state
        states = ("Success", "Success", "Failed", "TimedOut", "Canceled", "Executing")
        return ("state", dep.label, rng.choice([s for s in states if s != now]))
    if kind == "override":
        return ("override", dep.label, rng.choice((True, False, None)))
    if kind == "remediation":
        return ("remediation", dep.label, rng.choice(("rollback", "rollforward")), rng.choice(later).label)
    if kind == "delete":
        return ("delete", rng.choice(deletable).label)
    if kind == "resend":
        d = rng.choice(resendable)
        taken = {x.minute for x in h.deps}
        minute = rng.choice([m for m in range(0, 110) if m not in taken])
        n = rng.choice([None, *range(h.commits)])
        return ("resend", d.label, minute, n, rng.choice(("Success", "Success", "Failed")))
    if kind == "window":
        return ("window", "-", rng.choice((None, 0.25, 0.5, 1.0, 2.0)))
    if kind == "pd_resolve":  # a (later) resolution of an incident
        f = rng.choice([f for f in h.fails if f.kind == "pd"])
        return ("pd_resolve", f.label, rng.randint(1, 200))
    if kind == "fail_delete":
        return ("fail_delete", rng.choice(h.fails).label)
    if kind == "fail_replace":
        old = rng.choice(h.fails)
        new = _random_fail(rng, h, old.label)
        return ("fail_replace", old.label, new)
    new = _random_fail(rng, h, f"f{len(h.fails) + 10}")
    while any(f.label == new.label for f in h.fails):
        new.label += "x"
    return ("fail_new", new.label, new)


def _apply_model(h: History, c: tuple[Any, ...]) -> None:
    kind, label, *rest = c
    h.log.append(f"{kind} {label} {rest}")
    if kind == "window":
        h.window = rest[0]
    elif kind == "pd_resolve":
        f = h.fail(label)
        f.duration = rest[0] if f.duration is None else max(f.duration, rest[0])
    elif kind == "state":
        h.dep(label).state = rest[0]
        if rest[0] != "Success":
            h.dep(label).guided = False
    elif kind == "override":
        h.dep(label).override = rest[0]
    elif kind == "remediation":
        h.dep(label).remediation = (rest[0], rest[1])
    elif kind == "delete":
        h.deps.remove(h.dep(label))
    elif kind == "resend":
        old = h.dep(label)
        h.deps.remove(old)
        h.deps.append(replace(old, minute=rest[0], n=rest[1], state=rest[2], override=None, remediation=None))
    elif kind == "fail_delete":
        h.fails.remove(h.fail(label))
    elif kind == "fail_replace":
        h.fails[h.fails.index(h.fail(label))] = rest[0]
    elif kind == "fail_new":
        h.fails.append(rest[0])


def _apply_served(api: Api, h: History, c: tuple[Any, ...], h_fail_before: dict[str, Fail]) -> None:
    kind, label, *rest = c
    kw = {"space": SPACE, "key": ADMIN_KEY}
    if kind == "window":
        _window(api, rest[0], **kw)
    elif kind == "pd_resolve":
        f = h.fail(label)
        _pd(api, replace(f, duration=rest[0]), "resolved", space=SPACE, serial=len(h.log))
    elif kind == "state":
        _patch(api, label, {"state": rest[0]}, **kw)
    elif kind == "override":
        _patch(api, label, {"change_failure": rest[0]}, **kw)
    elif kind == "remediation":
        _patch(api, label, {"remediation": {"id": f"dep-{rest[1]}", "type": rest[0]}}, **kw)
    elif kind == "delete":
        _delete(api, label, **kw)
    elif kind == "resend":
        _delete(api, label, **kw)
        _create(api, h.dep(label), **kw)  # the model is already updated
    elif kind == "fail_delete":
        _fail_delete(api, h_fail_before[label], **kw)
    elif kind == "fail_replace":
        _fail_delete(api, h_fail_before[label], **kw)
        _fail(api, rest[0], **kw)
    elif kind == "fail_new":
        _fail(api, rest[0], **kw)


# --- the case ----------------------------------------------------------------------------------------------
def _plan(seed: int) -> tuple[History, list[Any], list[tuple[Any, ...]], float]:
    rng = random.Random(seed)
    history = _random_history(rng)
    # arrival order: deployments and failures shuffled, a failure by id after its deployment
    items: list[Any] = [("dep", d.label) for d in history.deps]
    for f in history.fails:
        if f.kind == "pd":
            items.append(("pd_triggered", f.label))
            if f.duration is not None:
                items.append(("pd_resolved", f.label))
        else:
            items.append(("fail", f.label))
    items.append(("code", "-"))  # the commits, pushed in one request at a random point
    rng.shuffle(items)
    order: list[Any] = []
    pending = list(items)
    while pending:
        for item in pending:
            if item[0] == "fail":
                f = history.fail(item[1])
                if f.kind == "id" and ("dep", f.target) not in order:
                    continue
            order.append(item)
            pending.remove(item)
            break
    settle_points = rng.random()
    model = history.copy()
    corrections = []
    for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
        c = _random_correction(rng, model)
        _apply_model(model, c)
        corrections.append(c)
    return history, order, corrections, settle_points


def _run_case(api: Api, aws: Aws, clock: Clock, lambda_context: Any, seed: int) -> None:
    history, order, corrections, p = _plan(seed)
    rng = random.Random(seed * 7 + 1)
    before = history.describe()
    kw = {"space": SPACE, "key": ADMIN_KEY}
    _configure(api, history, **kw)
    for kind, label in order:
        if kind == "code":
            _push(api, history, **kw)
        elif kind == "dep":
            _create(api, history.dep(label), **kw)
        elif kind == "pd_resolved":
            _pd(api, history.fail(label), "resolved", space=SPACE)
        elif kind == "pd_triggered":
            _pd(api, history.fail(label), "triggered", space=SPACE)
        else:
            _fail(api, history.fail(label), **kw)
        if rng.random() < p * 0.5:
            drain_retries(aws, lambda_context)
            clock.advance(timedelta(seconds=rng.choice((1, 5, 60))))
            if rng.random() < 0.5:
                scheduled_run(lambda_context)
            else:  # a read brings what it covers up to date itself (METRICS §8)
                _read(api, rng, **kw)
    settle(aws, clock, lambda_context)
    for c in corrections:
        fails_before = {f.label: replace(f) for f in history.fails}
        _apply_model(history, c)
        _apply_served(api, history, c, fails_before)
        if rng.random() < 0.3:
            settle(aws, clock, lambda_context)
        elif rng.random() < 0.3:
            clock.advance(timedelta(seconds=3))
            _read(api, rng, **kw)
    settle(aws, clock, lambda_context)

    fresh = {"space": OTHER, "key": OTHER_KEY}
    _configure(api, history, **fresh)
    _push(api, history, **fresh)
    for d in history.in_order():
        _create(api, d, **fresh)
    for d in history.in_order():
        body: dict[str, Any] = {}
        if d.override is not None:
            body["change_failure"] = d.override
        if d.remediation is not None:
            body["remediation"] = {"id": f"dep-{d.remediation[1]}", "type": d.remediation[0]}
        if body:
            _patch(api, d.label, body, **fresh)
    for f in sorted(history.fails, key=lambda f: f.start):
        _fail(api, f, **fresh)
    settle(aws, clock, lambda_context)
    # Both read at the same time: a failure restored after the first read's "now" counts in no view yet
    # (METRICS §4), so reading space A before the fresh ingest moved the clock would compare two times.
    got = _numbers(api, history, **kw)
    expected = _numbers(api, history, **fresh)
    differences = _differences(got, expected)
    report = f"\nseed {seed}\nsent:\n{before}\norder: {order}\ncorrections: {history.log}\nfinal:\n{history.describe()}"
    assert not differences, "\n".join(differences) + report


_WIDER = os.environ.get("DORA_PROPERTY_SEEDS")
SEEDS = tuple(range(*map(int, _WIDER.split(":")))) if _WIDER else tuple(range(20))


@pytest.mark.parametrize("seed", SEEDS)
def test_random_failure_histories_give_what_a_fresh_ingest_gives(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str, seed: int
) -> None:
    _run_case(api, aws, clock, lambda_context, seed)


# --- explicit cases ----------------------------------------------------------------------------------------
def _figures(api: Api, deployment_id: str, *, space: str, key: str) -> dict[str, Any]:
    r = get_deployment(api, deployment_id, space=space, key=key)
    assert r.status == 200, r.body
    f = r.body["figures"] or {}
    return {k: f.get(k) for k in ("change_failure", "change_failure_rule", "change_failure_cause", "rework")}


def _cfr(api: Api, *, space: str, key: str) -> Any:
    query = {"metric": "change_failure_rate", "start_date": "2024-02-29", "end_date": "2024-03-02", "interval": "all"}
    r = api.call("GET", METRICS, path_params={"spaceId": space}, query=query, key=key)
    assert r.status == 200, r.body
    return r.body


def _recompute_with_a_request_after_its_failures_read(
    monkeypatch: pytest.MonkeyPatch, lambda_context: Any, request: Callable[[], None]
) -> None:
    """A scheduled run during which ``request`` (another request) runs right after the run first reads the
    space's failures (``MetricsStore.space_failures``), so between that read and the figures' write."""
    from dora_insights.dal.metrics import MetricsStore

    read = MetricsStore.space_failures
    ran: list[bool] = []

    def reading_then_a_request(self: Any, space_id: str, **kwargs: Any) -> Any:
        found = read(self, space_id, **kwargs)
        if space_id == SPACE and not ran:
            ran.append(True)
            request()
        return found

    monkeypatch.setattr(MetricsStore, "space_failures", reading_then_a_request)
    scheduled_run(lambda_context)
    monkeypatch.setattr(MetricsStore, "space_failures", read)
    assert ran


def _fresh_one(api: Api, aws: Aws, clock: Clock, lambda_context: Any, dep: Dep, f: Fail) -> dict[str, Any]:
    fresh = {"space": OTHER, "key": OTHER_KEY}
    _create(api, dep, **fresh)
    _fail(api, f, **fresh)
    settle(aws, clock, lambda_context)
    return {"figures": _figures(api, dep.id, **fresh), "cfr": _cfr(api, **fresh)}


def test_a_failure_the_index_does_not_show_yet_at_a_new_streams_first_recompute_is_counted_at_the_next(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str, replica_lag: Any
) -> None:
    """A new stream's first deployment D, then 1 s later a failure event F (no cause, 30 min after D: rule 5),
    then a scheduled run 2.5 s after D, which reads failures from GSI1, where F (1.5 s old) does not show yet.
    F's write marked D's stream, waiting for its first recompute, so the run keeps the mark (too recent to
    vouch for) and the next counts F. Before, F's write marked only registered streams: the run vouched for
    D's older mark, cleared it, and F was never counted."""
    kw = {"space": SPACE, "key": ADMIN_KEY}
    dep = Dep("d0", "production", 60, None)
    f = Fail("f0", "production", 90, 30, "none")
    _create(api, dep, **kw)
    clock.advance(timedelta(seconds=1))
    replica_lag.on(index_only=True)  # what is written from now on is not on the index yet
    _fail(api, f, **kw)
    clock.advance(timedelta(milliseconds=1500))
    scheduled_run(lambda_context)
    replica_lag.settle()
    replica_lag.active = False  # the index caught up
    settle(aws, clock, lambda_context)
    served = {"figures": _figures(api, dep.id, **kw), "cfr": _cfr(api, **kw)}
    expected = _fresh_one(api, aws, clock, lambda_context, dep, f)
    assert expected["figures"]["change_failure_rule"] == 5
    assert served == expected, (served, expected, replica_lag.hidden)


def test_a_failure_posted_while_a_new_streams_first_recompute_runs_is_counted_at_the_next(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same without index lag: F is posted while the first recompute of D's new stream runs, after it
    read the space's failures and before it registered the stream. F's write marks the stream (its mark
    read first, then the registrations), so the run's conditional clear of the mark it read fails and the
    next run counts F."""
    kw = {"space": SPACE, "key": ADMIN_KEY}
    dep = Dep("d0", "production", 60, None)
    f = Fail("f0", "production", 90, 30, "none")
    _create(api, dep, **kw)
    clock.advance(timedelta(seconds=5))
    _recompute_with_a_request_after_its_failures_read(monkeypatch, lambda_context, lambda: _fail(api, f, **kw))
    settle(aws, clock, lambda_context)
    served = {"figures": _figures(api, dep.id, **kw), "cfr": _cfr(api, **kw)}
    expected = _fresh_one(api, aws, clock, lambda_context, dep, f)
    assert expected["figures"]["change_failure_rule"] == 5
    assert served == expected, (served, expected)


def test_a_failure_naming_a_commit_on_a_further_page_charges_the_first_deployment_that_shipped_it(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """METRICS §2 rule 4: a failure naming a commit charges the first successful deployment in its stream to
    ship it, every page of the attribution counted. p0 deploys commit 0, e1 commit 399 (ships 1..399: more
    than the first page), r2 redeploys an older commit X that e1 shipped on a further page (X is r2's own
    sha). A failure naming X charges e1. Before, ``figures.pages_wanted`` read further pages only when nothing
    the deployments held showed the commit, and r2's own sha showed it: r2 was charged."""
    kw = {"space": SPACE, "key": ADMIN_KEY}
    send_changes(api, commits=[commit(n, 0) for n in range(400)], **kw)
    _create(api, Dep("p0", "production", 0, 0), **kw)
    _create(api, Dep("e1", "production", 10, 399), **kw)
    settle(aws, clock, lambda_context)
    r = get_deployment(api, "dep-e1", **kw)
    attribution = r.body["attribution"]
    first_page = set(attribution["commits"])
    assert attribution.get("commit_count", len(first_page)) > len(first_page), attribution.get("commit_count")
    x = next(n for n in range(1, 399) if sha(n) not in first_page)  # shipped by e1 on a further page
    _create(api, Dep("r2", "production", 20, x), **kw)
    _fail(api, Fail("f0", "production", 30, 10, "commit", target=x), **kw)
    settle(aws, clock, lambda_context)
    e1 = _figures(api, "dep-e1", **kw)
    r2 = _figures(api, "dep-r2", **kw)
    assert (e1["change_failure_rule"], r2["change_failure_rule"]) == (4, None), (e1, r2)


def test_a_window_changed_while_a_new_streams_first_recompute_runs_applies_at_the_next(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change of ``failure_window_hours`` (to 15 minutes) while the first recompute of D's new stream runs,
    after it read the space's window: the change marks every stream, those waiting for their first recompute
    included (``logic.settings._every_stream``), so the next run applies it and D is no longer charged for a
    failure 30 minutes after it. Before, only registered streams were marked."""
    kw = {"space": SPACE, "key": ADMIN_KEY}
    dep = Dep("d0", "production", 60, None)
    f = Fail("f0", "production", 90, 30, "none")
    _fail(api, f, **kw)
    _create(api, dep, **kw)
    clock.advance(timedelta(seconds=5))
    _recompute_with_a_request_after_its_failures_read(monkeypatch, lambda_context, lambda: _window(api, 0.25, **kw))
    settle(aws, clock, lambda_context)
    served = {"figures": _figures(api, dep.id, **kw), "cfr": _cfr(api, **kw)}
    _window(api, 0.25, space=OTHER, key=OTHER_KEY)
    expected = _fresh_one(api, aws, clock, lambda_context, dep, f)
    assert expected["figures"]["change_failure"] is False
    assert served["figures"] == expected["figures"], (served, expected)


def test_a_failure_deleted_while_a_new_streams_first_recompute_runs_stops_counting_at_the_next(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The removal form: F (rule 5 for D) is deleted while the first recompute of D's new stream runs, after
    it read the failures. The delete marks the stream, so the next run no longer counts F, as a fresh ingest
    of the final history (D alone) does not. Before, D stayed a change failure for a deleted failure."""
    kw = {"space": SPACE, "key": ADMIN_KEY}
    dep = Dep("d0", "production", 60, None)
    f = Fail("f0", "production", 90, 30, "none")
    _fail(api, f, **kw)
    _create(api, dep, **kw)
    clock.advance(timedelta(seconds=5))
    _recompute_with_a_request_after_its_failures_read(monkeypatch, lambda_context, lambda: _fail_delete(api, f, **kw))
    settle(aws, clock, lambda_context)
    served = {"figures": _figures(api, dep.id, **kw), "cfr": _cfr(api, **kw)}
    fresh = {"space": OTHER, "key": OTHER_KEY}
    _create(api, dep, **fresh)
    settle(aws, clock, lambda_context)
    expected = {"figures": _figures(api, dep.id, **fresh), "cfr": _cfr(api, **fresh)}
    assert expected["figures"]["change_failure"] is False
    assert served == expected, (served, expected)


def test_a_failure_posted_while_a_registered_streams_recompute_runs_is_counted_at_the_next(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race on a stream the recompute registered already: the failure's write marks it (a new
    ``dirty_at``), so the racing recompute's conditional catch-up does not clear it and the next run counts
    the failure (this held before the fix as well)."""
    kw = {"space": SPACE, "key": ADMIN_KEY}
    first = Dep("d0", "production", 10, None)
    dep = Dep("d1", "production", 60, None)
    f = Fail("f0", "production", 90, 30, "none")
    _create(api, first, **kw)
    settle(aws, clock, lambda_context)
    _create(api, dep, **kw)
    clock.advance(timedelta(seconds=5))
    _recompute_with_a_request_after_its_failures_read(monkeypatch, lambda_context, lambda: _fail(api, f, **kw))
    settle(aws, clock, lambda_context)
    served = {"figures": _figures(api, dep.id, **kw), "cfr": _cfr(api, **kw)}
    _create(api, first, space=OTHER, key=OTHER_KEY)
    expected = _fresh_one(api, aws, clock, lambda_context, dep, f)
    assert served == expected, (served, expected)
