"""Rework rate and change failure rate (METRICS §2, §3, §6 `/summary`, §9 `rework_rate`) against an
oracle written here from METRICS §2's text, over random histories sent through the real routes (commits
through ``/changes``, native deployments, failure events), then the scheduled recompute; plus edge cases
(window edges, ties, offsets, corrections and removals after compute; one commit under abbreviations of
several lengths; a redeploy sent without a sha, matched by version against deployments without one).
``DORA_PROPERTY_SEEDS=a:b`` widens the random histories."""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.support.native import create_deployment, read_deployment
from tests.support.recompute import scheduled_run

SPACE = "Spaces-1"
SP = {"spaceId": SPACE}
REPO = "acme/shop"
NOW = datetime(2024, 4, 1, 12, 0, tzinfo=UTC)
BASE = datetime(2024, 3, 1, 6, 0, tzinfo=UTC)
WINDOW = timedelta(hours=24)
OFFSETS = (UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)))
# (environment, tenant): two production streams (tenants) and a staging one.
STREAMS = (("production", None), ("production", "acme"), ("staging", None))
COMPLETED = {"Success", "Failed", "TimedOut"}


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _sha(n: int) -> str:
    return hashlib.sha1(f"commit-{n}".encode(), usedforsecurity=False).hexdigest()


def _iso(at: datetime, rng: random.Random | None = None) -> str:
    zone = rng.choice(OFFSETS) if rng else UTC
    return at.astimezone(zone).isoformat()


def _call(api: Api, method: str, route: str, **kwargs: Any) -> HttpResult:
    return api.call(method, route, key=ADMIN_KEY, path_params={**SP, **kwargs.pop("path", {})}, **kwargs)


def _failure(api: Api, **fields: Any) -> None:
    body = {"project": "shop", "environment": "production", **fields}
    created = _call(api, "POST", "/api/{spaceId}/failures", body=body)
    assert created.status in (200, 201), created.body


def _summary(api: Api, **query: str) -> dict[str, Any]:
    found = _call(
        api,
        "GET",
        "/api/{spaceId}/summary",
        query={"from": "2024-02-01T00:00:00Z", "to": "2024-04-01T00:00:00Z", **query},
    )
    assert found.status == 200, found.body
    return found.body  # type: ignore[no-any-return]


def _gitlab(api: Api, metric: str, **query: str) -> list[Any]:
    found = _call(
        api,
        "GET",
        "/api/{spaceId}/dora/metrics",
        query={"metric": metric, "start_date": "2024-02-01", "end_date": "2024-03-31", "interval": "all", **query},
    )
    assert found.status == 200, found.body
    return [row["value"] for row in found.body]


# --- the oracle (METRICS §2, written from the text) --------------------------------------------------


@dataclass
class Dep:
    id: str
    env: str
    tenant: str | None
    finished: datetime
    started: datetime | None
    state: str = "Success"
    guided: bool = False
    sha: str | None = None
    version: str | None = None
    rollback: bool = False
    fixes: str | None = None
    shipped: set[str] = field(default_factory=set)  # from the API's attribution (not under review here)

    @property
    def completed(self) -> bool:
        return self.state in COMPLETED

    @property
    def success(self) -> bool:
        return self.state == "Success" and not self.guided

    @property
    def deployment_failure(self) -> bool:
        return self.state in ("Failed", "TimedOut") or (self.state == "Success" and self.guided)

    def key(self) -> str | None:
        return ("sha:" + self.sha) if self.sha else (("version:" + self.version) if self.version else None)


@dataclass
class Fail:
    id: str
    env: str
    started: datetime
    deployment_id: str | None = None
    commit_sha: str | None = None
    version: str | None = None


@dataclass
class Verdict:
    change_failure: bool = False
    rules: set[int] = field(default_factory=set)
    rollback: bool = False
    rework: bool = False
    rework_reasons: set[str] = field(default_factory=set)
    why: set[tuple[int, str | None, str | None]] = field(default_factory=set)  # (rule, deployment, failure)
    rework_why: set[tuple[str, str | None]] = field(default_factory=set)  # (reason, deployment)
    marks: str | None = None  # the deployment this rollback marks
    fixed: str | None = None  # the deployment this fixer fixes

    def charge(self, rule: int, deployment: str | None = None, failure: str | None = None) -> None:
        self.rules.add(rule)
        self.why.add((rule, deployment, failure))


def oracle(deps: Iterable[Dep], fails: Iterable[Fail], window: timedelta = WINDOW) -> dict[str, Verdict]:
    deps = list(deps)
    fails = list(fails)
    out: dict[str, Verdict] = {d.id: Verdict() for d in deps if d.completed}
    streams: dict[tuple[str, str | None], list[Dep]] = {}
    for d in deps:
        if d.completed:
            streams.setdefault((d.env, d.tenant), []).append(d)
    for (env, _tenant), ds in streams.items():
        ds.sort(key=lambda d: (d.finished, d.started or d.finished, d.id))
        for i, d in enumerate(ds):
            v = out[d.id]
            if d.deployment_failure:  # rule 1
                v.charge(1, d.id)
            if i > 0:
                k = d.key()  # known by its sha, by its version only without one
                earlier = [j for j in range(i) if ds[j].key() == k]
                if k is not None and k != ds[i - 1].key() and earlier:  # rule 2: the first after the latest
                    v.rollback = True
                    v.marks = ds[earlier[-1] + 1].id
                    out[ds[earlier[-1] + 1].id].charge(2, d.id)
                if d.rollback:
                    v.rollback = True
                    v.marks = v.marks or ds[i - 1].id
                    out[ds[i - 1].id].charge(2, d.id)
            elif d.rollback:
                v.rollback = True
            if d.fixes:  # rule 3: by id (earlier in the stream), else by version (latest earlier)
                ids = [j for j in range(i) if ds[j].id == d.fixes]
                target = ids[-1] if ids else None
                if target is None:
                    by_version = [j for j in range(i) if ds[j].version == d.fixes]
                    target = by_version[-1] if by_version else None
                if target is not None:
                    v.fixed = ds[target].id
                    out[ds[target].id].charge(3, d.id)
        successes = [d for d in ds if d.success]
        for f in fails:
            if f.deployment_id is not None:
                continue
            if f.env != env:
                continue
            if f.commit_sha is not None:  # rule 4 by commit: the first success that shipped it
                hit = next((d for d in successes if f.commit_sha in ({d.sha} | d.shipped)), None)
                if hit:
                    out[hit.id].charge(4, None, f.id)
            elif f.version is not None:
                hit = next((d for d in successes if d.version == f.version), None)
                if hit:
                    out[hit.id].charge(4, None, f.id)
            else:  # rule 5: the stream's latest success at or before the start, within the window
                before = [d for d in successes if d.finished <= f.started]
                if before and f.started - before[-1].finished <= window:
                    out[before[-1].id].charge(5, None, f.id)
    for f in fails:
        if f.deployment_id is not None and f.deployment_id in out:
            out[f.deployment_id].charge(4, None, f.id)
    for ds in streams.values():
        pending: str | None = None
        for d in ds:
            v = out[d.id]
            v.change_failure = bool(v.rules)
            if v.rollback:
                v.rework_reasons.add("rollback")
                v.rework_why.add(("rollback", v.marks))
            if d.fixes:
                v.rework_reasons.add("fix")
                v.rework_why.add(("fix", v.fixed))
            if d.success and pending:
                v.rework_reasons.add("first_success_after_change_failure")
                v.rework_why.add(("first_success_after_change_failure", pending))
                pending = None
            if v.change_failure:
                pending = d.id
            v.rework = bool(v.rework_reasons)
    return out


def rates(deps: Iterable[Dep], verdicts: dict[str, Verdict], env: str | None = None) -> dict[str, Any]:
    rows = [d for d in deps if d.completed and (env is None or d.env == env)]
    counted = [d for d in rows if not verdicts[d.id].rollback]
    failures = sum(1 for d in counted if verdicts[d.id].change_failure)
    rework = sum(1 for d in rows if verdicts[d.id].rework)
    return {"cf": failures, "cf_den": len(counted), "rework": rework, "rows": len(rows)}


# --- the random history -----------------------------------------------------------------------------


def _history(rng: random.Random) -> tuple[list[dict[str, Any]], list[Dep], list[Fail]]:
    commits = []
    at = BASE - timedelta(days=2)
    for n in range(40):
        at += timedelta(minutes=rng.randrange(10, 200))
        commits.append({"repository": REPO, "branch": "main", "sha": _sha(n), "timestamp": _iso(at)})
    deps: list[Dep] = []
    serial = 0
    for env, tenant in STREAMS:
        at = BASE + timedelta(minutes=rng.randrange(0, 600))
        head = rng.randrange(0, 4)
        seen: list[tuple[str | None, str | None]] = []
        stream: list[Dep] = []
        for _ in range(rng.randrange(5, 11)):
            serial += 1
            gap = rng.choice((0, 30, 90, 240, 600, 1400, 1440, 2000))
            at += timedelta(minutes=gap)
            state = rng.choices(
                ["Success", "Failed", "TimedOut", "Canceled", "Executing", "guided"], [70, 10, 4, 5, 3, 4]
            )[0]
            d = Dep(
                id=f"d-{serial:03d}",
                env=env,
                tenant=tenant,
                finished=at,
                started=at - timedelta(minutes=rng.randrange(1, 30)) if rng.random() < 0.8 else None,
                state="Success" if state == "guided" else state,
                guided=state == "guided",
            )
            roll = rng.random()
            if roll < 0.15 and seen:  # a redeploy of something this stream deployed before
                d.sha, d.version = rng.choice(seen)
            elif roll < 0.3:  # no code data
                d.version = rng.choice([f"0.{serial}", f"0.{rng.randrange(1, serial + 1)}", None])
            else:
                head = min(39, head + rng.randrange(0, 3))
                d.sha, d.version = _sha(head), f"1.{head}"
            if rng.random() < 0.08:
                d.rollback = True
            if rng.random() < 0.1 and stream:
                earlier = rng.choice(stream)
                d.fixes = earlier.id if rng.random() < 0.5 or earlier.version is None else earlier.version
            seen.append((d.sha, d.version))
            stream.append(d)
        deps.extend(stream)
    fails: list[Fail] = []
    completed_successes = [d for d in deps if d.success]
    for n in range(rng.randrange(1, 6)):
        kind = rng.choice(("none", "none", "edge", "deployment", "version", "commit"))
        env = rng.choice(("production", "production", "staging"))
        anchor = rng.choice(completed_successes) if completed_successes else deps[0]
        started = anchor.finished + timedelta(minutes=rng.randrange(1, 2000))
        f = Fail(id=f"f-{n}", env=env, started=started)
        if kind == "edge":
            f.started = anchor.finished + WINDOW  # exactly at the window's edge
            f.env = anchor.env
        elif kind == "deployment":
            f.deployment_id = rng.choice(deps).id
        elif kind == "version":
            f.version = rng.choice([d.version for d in deps if d.version] or ["9.9"])
        elif kind == "commit":
            f.commit_sha = rng.choice([d.sha for d in deps if d.sha] or [_sha(0)])
        fails.append(f)
    return commits, deps, fails


GITHUB_SECRET = "rework-review-secret"


def _push(api: Api, commits: list[dict[str, Any]], delivery: str) -> None:
    """The commits as one GitHub ``push`` (GitHub's payload, signed as GitHub signs it)."""
    import json

    from dora_insights.dialects.github import sign
    from tests.support.events import load_event

    payload = load_event("github_push.json")
    template = payload["commits"][0]
    payload["commits"] = [
        {
            **template,
            "id": c["sha"],
            "timestamp": c["timestamp"],
            "message": f"change {n}",
            "url": f"https://github.com/{REPO}/commit/{c['sha']}",
        }
        for n, c in enumerate(commits)
    ]
    payload["head_commit"] = payload["commits"][-1]
    payload["after"] = commits[-1]["sha"]
    raw = json.dumps(payload)
    headers = {
        "x-github-event": "push",
        "x-github-delivery": delivery,
        "x-hub-signature-256": sign(GITHUB_SECRET, raw.encode()),
        "user-agent": "GitHub-Hookshot/044aadd",
    }
    answer = api.call("POST", "/webhooks/github/{spaceId}", path_params=SP, raw_body=raw, headers=headers)
    assert answer.status == 200, answer.body


def _send(
    api: Api,
    rng: random.Random,
    commits: list[dict[str, Any]],
    deps: list[Dep],
    fails: list[Fail],
    via: str = "changes",
) -> None:
    if via == "github":
        put = _call(api, "PUT", "/api/{spaceId}/webhooks/github", body={"secret": GITHUB_SECRET})
        assert put.status == 200, put.body
        from dora_insights.logic import spaces

        spaces.clear_cache()
        for start in range(0, len(commits), 10):  # pushes of up to 10 commits, in branch order
            _push(api, commits[: start + 10][start:], f"push-{start}")
    else:
        sent = _call(api, "POST", "/api/{spaceId}/changes", body={"commits": commits, "pull_requests": []})
        assert sent.status < 300, sent.body
    order = list(deps)
    rng.shuffle(order)
    for d in order:
        body: dict[str, Any] = {"id": d.id, "finished_at": _iso(d.finished, rng), "state": d.state}
        if d.started:
            body["started_at"] = _iso(d.started, rng)
        if d.tenant:
            body["tenant"] = d.tenant
        if d.guided:
            body["had_guided_failure"] = True
        if d.sha:
            body["commit_sha"], body["repository"] = d.sha, REPO
        if d.version is not None:
            body["version"] = d.version
        if d.rollback:
            body["rollback"] = True
        if d.fixes:
            body["fixes"] = d.fixes
        create_deployment(api, environment=d.env, **body)
    for f in fails:
        body = {"id": f.id, "environment": f.env, "started_at": _iso(f.started, rng)}
        for name in ("deployment_id", "commit_sha", "version"):
            if getattr(f, name) is not None:
                body[name] = getattr(f, name)
        _failure(api, **body)


def _shipped(api: Api, deps: list[Dep]) -> dict[str, dict[str, Any]]:
    """Each deployment as read, and its attribution's shipped commits into the oracle's input."""
    read = {}
    for d in deps:
        body = read_deployment(api, d.id)
        read[d.id] = body
        attribution = body.get("attribution") or {}
        for c in attribution.get("commits") or ():
            d.shipped.add(c if isinstance(c, str) else c.get("sha"))
        for pr in attribution.get("pull_requests") or ():
            if pr.get("merge_commit_sha"):
                d.shipped.add(pr["merge_commit_sha"])
    return read


def _compare(read: dict[str, dict[str, Any]], deps: list[Dep], verdicts: dict[str, Verdict]) -> list[str]:
    problems = []
    for d in deps:
        fig = read[d.id]["figures"] or {}
        if not d.completed:
            if fig.get("change_failure") is not None or fig.get("rework") is not None:
                problems.append(f"{d.id} not completed but flagged {fig.get('change_failure')}/{fig.get('rework')}")
            continue
        v = verdicts[d.id]
        got_rules = {r["rule"] for r in fig.get("change_failure_reasons") or ()}
        got_rework = {r["reason"] for r in fig.get("rework_reasons") or ()}
        if fig.get("change_failure") is not v.change_failure or got_rules != v.rules:
            problems.append(
                f"{d.id} change_failure {fig.get('change_failure')} {sorted(got_rules)}"
                f" != {v.change_failure} {sorted(v.rules)}"
            )
        if fig.get("rework") is not v.rework or got_rework != v.rework_reasons:
            problems.append(
                f"{d.id} rework {fig.get('rework')} {sorted(got_rework)} != {v.rework} {sorted(v.rework_reasons)}"
            )
        if v.change_failure and fig.get("change_failure_rule") != min(v.rules):
            problems.append(f"{d.id} change_failure_rule {fig.get('change_failure_rule')} != {min(v.rules)}")
        if v.rework and fig.get("rework_reason") not in v.rework_reasons:
            problems.append(f"{d.id} rework_reason {fig.get('rework_reason')}")
        why = {(r["rule"], r["deployment_id"], r["failure_id"]) for r in fig.get("change_failure_reasons") or ()}
        if why != v.why:
            problems.append(f"{d.id} change_failure_reasons {sorted(why, key=str)} != {sorted(v.why, key=str)}")
        rework_why = {(r["reason"], r["deployment_id"]) for r in fig.get("rework_reasons") or ()}
        if rework_why != v.rework_why:
            problems.append(f"{d.id} rework_reasons {sorted(rework_why, key=str)} != {sorted(v.rework_why, key=str)}")
        if v.change_failure and fig.get("change_failure_cause") not in {
            w[1] or w[2] for w in v.why if w[0] == min(v.rules)
        }:
            problems.append(f"{d.id} change_failure_cause {fig.get('change_failure_cause')}")
    return problems


_SEEDS = os.environ.get("DORA_PROPERTY_SEEDS")
_CASES = [(1, "changes"), (2, "changes"), (3, "github"), (5, "changes"), (8, "github"), (13, "changes"), (21, "github")]


def _cases() -> list[tuple[int, str]]:
    if not _SEEDS:
        return [*_CASES, (34, "changes")]
    a, b = map(int, _SEEDS.split(":"))
    return [(n, ("changes", "github")[n % 2]) for n in range(a, b)]


@pytest.mark.parametrize(("seed", "via"), _cases())
def test_flags_and_rates_equal_an_oracle_of_metrics_section_2(
    api: Api, clock: Clock, lambda_context: Any, seed: int, via: str
) -> None:
    from tests.support.insights import create_report, report_metrics

    report = create_report(api)
    rng = random.Random(seed)
    commits, deps, fails = _history(rng)
    _send(api, rng, commits, deps, fails, via)
    scheduled_run(lambda_context)
    read = _shipped(api, deps)
    assert any(d.shipped for d in deps if d.sha), "no attribution resolved: the code data did not arrive"
    verdicts = oracle(deps, fails)
    problems = _compare(read, deps, verdicts)
    assert not problems, "\n".join(problems)
    every = rates(deps, verdicts)
    body = _summary(api)
    assert body["change_failure_rate"]["change_failures"] == every["cf"]
    assert body["change_failure_rate"]["deployments"] == every["cf_den"]
    assert body["rework_rate"]["rework_deployments"] == every["rework"]
    assert body["rework_rate"]["deployments"] == every["rows"]
    for env in ("production", "staging"):
        one = rates(deps, verdicts, env)
        body = _summary(api, environment=env)
        assert (body["change_failure_rate"]["change_failures"], body["change_failure_rate"]["deployments"]) == (
            one["cf"],
            one["cf_den"],
        ), env
        assert (body["rework_rate"]["rework_deployments"], body["rework_rate"]["deployments"]) == (
            one["rework"],
            one["rows"],
        ), env
        expected = round(one["rework"] / one["rows"], 4) if one["rows"] else None
        got = _gitlab(api, "rework_rate", environment=env)[0]
        assert (round(got, 4) if got is not None else None) == expected, env
    # GitLab-style daily rows: rework deployments / completed deployments of each UTC day (METRICS §9).
    for env in ("production", "staging"):
        found = _call(
            api,
            "GET",
            "/api/{spaceId}/dora/metrics",
            query={"metric": "rework_rate", "start_date": "2024-03-01", "end_date": "2024-03-31", "environment": env},
        )
        assert found.status == 200, found.body
        got_days = {row["date"]: row["value"] for row in found.body}
        for day, value in got_days.items():
            on_day = [
                d for d in deps if d.env == env and d.completed and d.finished.astimezone(UTC).date().isoformat() == day
            ]
            want = round(sum(verdicts[d.id].rework for d in on_day) / len(on_day), 4) if on_day else None
            assert (round(value, 4) if value is not None else None) == want, (env, day)
    # The Octopus report's extensions (METRICS §4), per environment, summed over its months.
    found = report_metrics(api, report, timeRange="LastQuarter", granularity="Monthly", split="Environment").body
    for series in found["Series"]:
        one = rates(deps, verdicts, series["Name"])
        cfr = [i["ChangeFailureRate"] for i in series["Intervals"]]
        rwr = [i["ReworkRate"] for i in series["Intervals"]]
        assert (sum(c["ChangeFailures"] for c in cfr), sum(c["Deployments"] for c in cfr)) == (one["cf"], one["cf_den"])
        assert (sum(r["ReworkDeployments"] for r in rwr), sum(r["Deployments"] for r in rwr)) == (
            one["rework"],
            one["rows"],
        )
    assert sorted(x["Name"] for x in found["Series"]) == sorted({d.env for d in deps if d.completed})
    # A range that cuts the history: counted by completion instant, flags as computed over the whole stream.
    cut = BASE + timedelta(minutes=rng.randrange(0, 6000))
    inside = [d for d in deps if d.finished >= cut]
    part = rates(inside, verdicts)
    body = _summary(api, **{"from": cut.isoformat()})
    assert body["change_failure_rate"]["change_failures"] == part["cf"]
    assert body["change_failure_rate"]["deployments"] == part["cf_den"]
    assert body["rework_rate"]["rework_deployments"] == part["rework"]
    assert body["rework_rate"]["deployments"] == part["rows"]


# --- targeted edges ---------------------------------------------------------------------------------


def _figures(api: Api, deployment_id: str) -> dict[str, Any]:
    return read_deployment(api, deployment_id)["figures"]  # type: ignore[no-any-return]


def _flags(api: Api, ids: Iterable[str]) -> list[tuple[bool, bool]]:
    return [(f["change_failure"], f["rework"]) for f in (_figures(api, i) for i in ids)]


def _deploy(api: Api, hour: int, **fields: Any) -> str:
    fields.setdefault("finished_at", f"2024-03-10T{hour:02d}:00:00Z")
    return str(create_deployment(api, **fields)["id"])


def test_one_commit_under_two_abbreviations_is_never_a_rollback(api: Api, clock: Clock, lambda_context: Any) -> None:
    """METRICS §2 rule 2 compares commits ("a sha of at least 7 characters matches the commit it abbreviates"):
    the same commit deployed three times, under 7- and 8-character abbreviations (no full sha in the stream), is
    V1→V1→V1, no rollback, so no change failure and no rework. The commit is known (sent through ``/changes``) and
    every attribution resolves to it (CI jobs printing ``git rev-parse --short`` with different ``core.abbrev``)."""
    commits = [
        {"repository": REPO, "branch": "main", "sha": _sha(n), "timestamp": f"2024-03-09T0{n}:00:00Z"} for n in (1, 2)
    ]
    assert _call(api, "POST", "/api/{spaceId}/changes", body={"commits": commits}).status < 300
    full = _sha(1)
    ids = [
        _deploy(api, 1, id="s1", commit_sha=full[:7], repository=REPO),
        _deploy(api, 2, id="s2", commit_sha=full[:8], repository=REPO),
        _deploy(api, 3, id="s3", commit_sha=full[:7], repository=REPO),
    ]
    scheduled_run(lambda_context)
    assert [read_deployment(api, i)["attribution"]["state"] for i in ids] == ["Resolved"] * 3
    assert _flags(api, ids) == [(False, False)] * 3
    body = _summary(api)
    assert body["change_failure_rate"]["change_failures"] == 0 and body["rework_rate"]["rework_deployments"] == 0


def test_a_revert_commit_is_a_new_change_not_a_rollback(api: Api, clock: Clock, lambda_context: Any) -> None:
    """A revert is a new commit (rule 2 is by sha): not a rollback, not rework; redeploying the old sha is."""
    commits = [
        {
            "repository": REPO,
            "branch": "main",
            "sha": _sha(n),
            "timestamp": f"2024-03-10T0{n}:00:00Z",
            **({"message": f'Revert "change {n - 1}"'} if n == 3 else {}),
        }
        for n in range(1, 4)
    ]
    sent = _call(api, "POST", "/api/{spaceId}/changes", body={"commits": commits})
    if sent.status >= 300:  # ``message`` not accepted: send without it
        for c in commits:
            c.pop("message", None)
        sent = _call(api, "POST", "/api/{spaceId}/changes", body={"commits": commits})
    assert sent.status < 300, sent.body
    a = _deploy(api, 5, id="r1", commit_sha=_sha(1), repository=REPO)
    b = _deploy(api, 6, id="r2", commit_sha=_sha(2), repository=REPO)
    revert = _deploy(api, 7, id="r3", commit_sha=_sha(3), repository=REPO)
    back = _deploy(api, 8, id="r4", commit_sha=_sha(1), repository=REPO)
    scheduled_run(lambda_context)
    # The revert is a new change (rework only as the first success after r2, which r4 rolls back); the
    # redeploy of r1's sha is the rollback, and marks r2 (the first after r1).
    assert _flags(api, [a, b, revert]) == [(False, False), (True, False), (False, True)]
    assert _figures(api, revert)["rework_reasons"] == [
        {"reason": "first_success_after_change_failure", "deployment_id": b}
    ]
    f = _figures(api, back)
    assert f["rework"] is True and f["rework_reasons"] == [{"reason": "rollback", "deployment_id": b}]
    assert _figures(api, b)["change_failure_reasons"] == [
        {"rule": 2, "name": "rolled_back", "deployment_id": back, "failure_id": None}
    ]


def test_rule5_window_edges_and_ties(api: Api, clock: Clock, lambda_context: Any) -> None:
    """Exactly at the window's edge (24 h) is within it; a millisecond later is not; offsets do not matter."""
    a = _deploy(api, 0, id="w1", version="1", finished_at="2024-03-10T00:00:00+05:30")  # 2024-03-09T18:30Z
    b = _deploy(api, 0, id="w2", version="2", finished_at="2024-03-11T00:00:00-08:00")  # 2024-03-11T08:00Z
    _failure(api, id="edge", started_at="2024-03-10T18:30:00Z")  # a + 24 h exactly
    _failure(api, id="past", started_at="2024-03-12T08:00:00.001Z")  # b + 24 h + 1 ms (times are kept to the ms)
    scheduled_run(lambda_context)
    fa, fb = _figures(api, a), _figures(api, b)
    assert fa["change_failure"] is True and fa["change_failure_cause"] == "edge"
    assert fb["change_failure"] is False
    assert fb["rework"] is True and fb["rework_reason"] == "first_success_after_change_failure"


def test_corrections_after_compute_follow_the_rules(api: Api, clock: Clock, lambda_context: Any) -> None:
    """API.md corrections: an override false on a failed deployment makes the next success no rework and
    drops it from the numerator; a remediation makes the named deployment a rollback (out of the denominator,
    rework ``rollback``) and charges the corrected one with rule 2."""
    ids = [
        _deploy(api, 1, id="c1", version="1"),
        _deploy(api, 2, id="c2", version="2", state="Failed"),
        _deploy(api, 3, id="c3", version="3"),
        _deploy(api, 4, id="c4", version="4"),
        _deploy(api, 5, id="c5", version="5"),
    ]
    scheduled_run(lambda_context)
    assert _flags(api, ids) == [(False, False), (True, False), (False, True), (False, False), (False, False)]
    path = {"deploymentId": "c2"}
    patched = _call(
        api, "PATCH", "/api/{spaceId}/deployments/{deploymentId}", path=path, body={"change_failure": False}
    )
    assert patched.status == 200, patched.body
    patched = _call(
        api,
        "PATCH",
        "/api/{spaceId}/deployments/{deploymentId}",
        path={"deploymentId": "c3"},
        body={"remediation": {"version": "5", "type": "rollback"}},
    )
    assert patched.status == 200, patched.body
    scheduled_run(lambda_context)
    f2 = _figures(api, "c2")
    assert (f2["change_failure"], f2["change_failure_computed"], f2["change_failure_override"]) == (False, True, False)
    assert f2["change_failure_rule"] == 0
    assert [r["rule"] for r in f2["change_failure_reasons"]] == [0, 1]
    f3 = _figures(api, "c3")
    assert f3["change_failure"] is True and f3["change_failure_rule"] == 2 and f3["change_failure_cause"] == "c5"
    assert f3["rework"] is False  # c2 is no change failure any more
    f4 = _figures(api, "c4")
    assert f4["rework"] is True and f4["rework_reason"] == "first_success_after_change_failure"
    f5 = _figures(api, "c5")
    assert f5["rework"] is True and f5["rework_reason"] == "rollback"
    body = _summary(api)
    assert body["change_failure_rate"]["change_failures"] == 1  # c3 (c2 overridden)
    assert body["change_failure_rate"]["deployments"] == 4  # c5 is a rollback
    assert body["rework_rate"] == {"rework_deployments": 2, "deployments": 5, "rate": 0.4}


def test_version_correction_after_compute_makes_a_rollback(api: Api, clock: Clock, lambda_context: Any) -> None:
    """Deployments without code (rule 2 by version): correcting the third one's version to the first's makes it a
    rollback of the second at the next recompute, and correcting it back undoes it."""
    ids = [_deploy(api, h, id=f"v{h}", version=str(h)) for h in (1, 2, 3)]
    scheduled_run(lambda_context)
    assert _flags(api, ids) == [(False, False)] * 3
    patch = "/api/{spaceId}/deployments/{deploymentId}"
    assert _call(api, "PATCH", patch, path={"deploymentId": "v3"}, body={"version": "1"}).status == 200
    scheduled_run(lambda_context)
    assert _flags(api, ids) == [(False, False), (True, False), (False, True)]
    assert _figures(api, "v3")["rework_reasons"] == [
        {"reason": "rollback", "deployment_id": "v2"},
        {"reason": "first_success_after_change_failure", "deployment_id": "v2"},
    ]
    assert _call(api, "PATCH", patch, path={"deploymentId": "v3"}, body={"version": "3"}).status == 200
    scheduled_run(lambda_context)
    assert _flags(api, ids) == [(False, False)] * 3


def test_removing_the_rolled_back_deployment_after_compute(api: Api, clock: Clock, lambda_context: Any) -> None:
    """V1→V2→V1 marks V2; once V2 is removed the history is V1→V1: no rollback, no rework, rates follow."""
    ids = [
        _deploy(api, 1, id="x1", version="1"),
        _deploy(api, 2, id="x2", version="2"),
        _deploy(api, 3, id="x3", version="1"),
    ]
    scheduled_run(lambda_context)
    assert _flags(api, ids) == [(False, False), (True, False), (False, True)]
    removed = _call(api, "DELETE", "/api/{spaceId}/deployments/{deploymentId}", path={"deploymentId": "x2"})
    assert removed.status == 204, removed.body
    scheduled_run(lambda_context)
    assert _flags(api, ["x1", "x3"]) == [(False, False), (False, False)]
    body = _summary(api)
    assert body["change_failure_rate"]["change_failures"] == 0 and body["change_failure_rate"]["deployments"] == 2
    assert body["rework_rate"]["rework_deployments"] == 0


def test_failure_in_an_environment_named_in_another_case_charges_by_rule5(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """Catalogue names are matched in any case (API.md): a failure of ``PRODUCTION`` is production's."""
    a = _deploy(api, 1, id="e1", version="1")
    _failure(api, id="loud", environment="PRODUCTION", project="SHOP", started_at="2024-03-10T05:00:00Z")
    scheduled_run(lambda_context)
    assert _figures(api, a)["change_failure_cause"] == "loud"


def test_no_code_no_version_deployments_are_never_rollbacks(api: Api, clock: Clock, lambda_context: Any) -> None:
    """Deployments with neither sha nor version have nothing to redeploy: no rule 2, whatever surrounds them."""
    ids = [
        _deploy(api, 1, id="n1", version="1"),
        _deploy(api, 2, id="n2"),
        _deploy(api, 3, id="n3"),
        _deploy(api, 4, id="n4", version="1"),  # a rollback of n2 (the first after the latest "1")
    ]
    scheduled_run(lambda_context)
    assert _flags(api, ids) == [(False, False), (True, False), (False, True), (False, True)]
    assert _figures(api, "n4")["rework_reasons"] == [{"reason": "rollback", "deployment_id": "n2"}]


def test_removing_a_streams_only_deployment_after_compute_clears_its_rates(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """API.md DELETE: "/summary, reports and insights stop counting it (at once for a stream it leaves empty)";
    METRICS §9: removing a deployment marks its stream so its rows are rewritten."""
    failed = _deploy(api, 1, id="only", environment="staging", version="1", state="Failed")
    prod = _deploy(api, 2, id="p1", version="1")
    scheduled_run(lambda_context)
    assert _summary(api, environment="staging")["change_failure_rate"]["change_failures"] == 1
    assert _gitlab(api, "rework_rate", environment="staging") == [0.0]
    removed = _call(api, "DELETE", "/api/{spaceId}/deployments/{deploymentId}", path={"deploymentId": failed})
    assert removed.status == 204, removed.body
    scheduled_run(lambda_context)
    body = _summary(api, environment="staging")
    assert body["deployments"] == 0
    assert body["change_failure_rate"]["change_failures"] == 0 and body["change_failure_rate"]["deployments"] == 0
    assert body["rework_rate"]["deployments"] == 0
    assert _gitlab(api, "rework_rate", environment="staging") == [None]
    assert _gitlab(api, "rework_rate", environment="production") == [0.0]
    assert _figures(api, prod)["change_failure"] is False


def test_state_correction_to_canceled_after_compute_undoes_rework(api: Api, clock: Clock, lambda_context: Any) -> None:
    """A failed deployment corrected to ``Canceled`` counts in no metric (METRICS §2): the next success is no
    longer rework, and the rates drop it from both sides."""
    ids = [
        _deploy(api, 1, id="k1", version="1"),
        _deploy(api, 2, id="k2", version="2", state="Failed"),
        _deploy(api, 3, id="k3", version="3"),
    ]
    scheduled_run(lambda_context)
    assert _flags(api, ids) == [(False, False), (True, False), (False, True)]
    patched = _call(
        api,
        "PATCH",
        "/api/{spaceId}/deployments/{deploymentId}",
        path={"deploymentId": "k2"},
        body={"state": "Canceled"},
    )
    assert patched.status == 200, patched.body
    scheduled_run(lambda_context)
    assert _figures(api, "k3")["rework"] is False
    assert _figures(api, "k2")["change_failure"] is None
    body = _summary(api)
    assert body["change_failure_rate"]["change_failures"] == 0 and body["change_failure_rate"]["deployments"] == 2
    assert body["rework_rate"]["rework_deployments"] == 0 and body["rework_rate"]["deployments"] == 2
    assert _gitlab(api, "rework_rate", environment="production") == [0.0]


def test_a_hotfix_right_after_a_failure_is_rework_once_and_charges_the_failure_twice(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """A hotfix declaring ``fixes`` of the failed deployment: the failure is charged by rules 1 and 3, the hotfix
    is rework (fix and first success after a change failure) and counts once in the rework rate."""
    ids = [
        _deploy(api, 1, id="h1", version="1"),
        _deploy(api, 2, id="h2", version="2", state="TimedOut"),
        _deploy(api, 3, id="h3", version="2.1", fixes="h2"),
        _deploy(api, 4, id="h4", version="3"),
    ]
    scheduled_run(lambda_context)
    assert _flags(api, ids) == [(False, False), (True, False), (False, True), (False, False)]
    assert [r["rule"] for r in _figures(api, "h2")["change_failure_reasons"]] == [1, 3]
    assert {r["reason"] for r in _figures(api, "h3")["rework_reasons"]} == {"fix", "first_success_after_change_failure"}
    body = _summary(api)
    assert body["rework_rate"] == {"rework_deployments": 1, "deployments": 4, "rate": 0.25}
    assert body["change_failure_rate"]["change_failures"] == 1 and body["change_failure_rate"]["deployments"] == 4


def test_remediation_must_name_a_later_deployment_of_the_same_stream(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """API.md: ``remediation`` by ``id`` names "a later deployment of the same stream, else 400"."""
    first = _deploy(api, 1, id="m1", version="1")
    bad = _deploy(api, 2, id="m2", version="2", state="Failed")
    other = _deploy(api, 3, id="m3", version="3", environment="staging")
    route = "/api/{spaceId}/deployments/{deploymentId}"
    for target in (first, other, bad, "nope"):
        answer = _call(
            api, "PATCH", route, path={"deploymentId": bad}, body={"remediation": {"id": target, "type": "rollback"}}
        )
        assert answer.status == 400, (target, answer.status, answer.body)
    scheduled_run(lambda_context)
    assert _flags(api, [first, bad, other]) == [(False, False), (True, False), (False, False)]


def test_one_commit_in_two_letter_cases_is_never_a_rollback(api: Api, clock: Clock, lambda_context: Any) -> None:
    """Shas are hex: ``ABC...`` and ``abc...`` are one commit; V1→V2→V1 in either case is one rollback."""
    up, low, other = _sha(1).upper(), _sha(1), _sha(2)
    ids = [
        _deploy(api, 1, id="u1", commit_sha=low),
        _deploy(api, 2, id="u2", commit_sha=up),
        _deploy(api, 3, id="u3", commit_sha=other),
        _deploy(api, 4, id="u4", commit_sha=up),
    ]
    scheduled_run(lambda_context)
    assert _flags(api, ids) == [(False, False), (False, False), (True, False), (False, True)]


def test_a_late_failure_naming_a_deployment_of_another_environment_reaches_it(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """Rule 4 by deployment id charges the deployment "whatever its project and environment": a failure sent after
    the figures were computed, in ``production``, naming a staging (another project's) deployment must reach that
    stream's figures at the next recompute, and its removal must undo it."""
    staging = _deploy(api, 1, id="st1", environment="staging", version="1")
    after = _deploy(api, 2, id="st2", environment="staging", version="2")
    elsewhere = _deploy(api, 3, id="ot1", project="cart", environment="qa", version="1")
    after_elsewhere = _deploy(api, 4, id="ot2", project="cart", environment="qa", version="2")
    _deploy(api, 5, id="pr1", version="1")
    scheduled_run(lambda_context)
    assert _flags(api, [staging, after, elsewhere, after_elsewhere]) == [(False, False)] * 4
    _failure(api, id="late", started_at="2024-03-10T09:00:00Z", deployment_id=staging)
    _failure(api, id="late2", started_at="2024-03-10T09:00:00Z", deployment_id=elsewhere)
    scheduled_run(lambda_context)
    assert _flags(api, [staging, after, elsewhere, after_elsewhere]) == [(True, False), (False, True)] * 2
    assert _figures(api, staging)["change_failure_cause"] == "late"
    assert _summary(api, environment="staging")["change_failure_rate"]["change_failures"] == 1
    assert _gitlab(api, "rework_rate", environment="staging") == [0.5]
    for failure in ("late", "late2"):
        gone = _call(api, "DELETE", "/api/{spaceId}/failures/{failureId}", path={"failureId": failure})
        assert gone.status == 204, gone.body
    scheduled_run(lambda_context)
    assert _flags(api, [staging, after, elsewhere, after_elsewhere]) == [(False, False)] * 4
    assert _gitlab(api, "rework_rate", environment="staging") == [0.0]


def test_a_short_failure_window_edge_and_a_failure_naming_two_projects(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """``failure_window_hours`` 0.1 (6 min, API.md's minimum): a failure 6 min after a success is within it,
    6 min and 1 ms after is not; a failure naming two projects charges each project's latest success."""
    shop = _deploy(api, 1, id="sw1", version="1", finished_at="2024-03-10T01:00:00Z")
    cart = _deploy(api, 1, id="cw1", project="cart", version="1", finished_at="2024-03-10T01:00:00Z")
    late = _deploy(api, 2, id="sw2", version="2", finished_at="2024-03-10T02:00:00Z")
    patched = _call(api, "PATCH", "/api/{spaceId}/settings", body={"failure_window_hours": 0.1})
    assert patched.status == 200, patched.body
    _failure(api, id="two", projects=["shop", "cart"], project=None, started_at="2024-03-10T01:06:00Z")
    _failure(api, id="just-past", started_at="2024-03-10T02:06:00.001Z")
    scheduled_run(lambda_context)
    assert _figures(api, shop)["change_failure_reasons"] == [
        {"rule": 5, "name": "failure_within_window", "deployment_id": None, "failure_id": "two"}
    ]
    assert _figures(api, cart)["change_failure_cause"] == "two"
    assert _figures(api, late)["change_failure"] is False
    assert _figures(api, late)["rework_reasons"] == [
        {"reason": "first_success_after_change_failure", "deployment_id": shop}
    ]
    # Widening the window after compute charges the later one too (the settings change marks every stream).
    patched = _call(api, "PATCH", "/api/{spaceId}/settings", body={"failure_window_hours": 1})
    assert patched.status == 200, patched.body
    scheduled_run(lambda_context)
    assert _figures(api, late)["change_failure_cause"] == "just-past"


@pytest.mark.parametrize(
    "body",
    [
        {"remediation": {"type": "rollback"}},
        {"remediation": {"id": "hz2", "type": "revert"}},
        {"remediation": {"id": "hz2"}},
        {"remediation": "hz2"},
        {"remediation": {"id": "hz2", "version": "2", "type": "rollback"}},
        {"remediation": {"id": 7, "type": "rollback"}},
        {"remediation": {"version": "", "type": "rollforward"}},
        {"remediation": {"id": "x" * 5000, "type": "rollback"}},
        {"change_failure": "maybe"},
        {"change_failure": [True]},
        {"state": "Rework"},
        {"state": None},
    ],
)
def test_hostile_corrections_are_4xx_and_change_no_number(
    api: Api, clock: Clock, lambda_context: Any, body: dict[str, Any]
) -> None:
    ids = [_deploy(api, 1, id="hz1", version="1", state="Failed"), _deploy(api, 2, id="hz2", version="2")]
    scheduled_run(lambda_context)
    answer = _call(api, "PATCH", "/api/{spaceId}/deployments/{deploymentId}", path={"deploymentId": "hz1"}, body=body)
    assert 400 <= answer.status < 500, (answer.status, answer.body)
    scheduled_run(lambda_context)
    assert _flags(api, ids) == [(True, False), (False, True)]
    assert _figures(api, "hz2")["rework_reasons"] == [
        {"reason": "first_success_after_change_failure", "deployment_id": "hz1"}
    ]


def test_a_rollback_to_a_commit_named_by_another_abbreviation_is_a_rollback(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """V1→V2→V1 where the two V1 deployments abbreviate the same commit differently (8 and 10 characters; no full
    sha of it in the stream): rule 2 compares commits, so V2 is rolled back and the third is a rollback."""
    one, two = _sha(1), _sha(2)
    ids = [
        _deploy(api, 1, id="ab1", commit_sha=one[:8]),
        _deploy(api, 2, id="ab2", commit_sha=two),
        _deploy(api, 3, id="ab3", commit_sha=one[:10]),
    ]
    scheduled_run(lambda_context)
    assert _flags(api, ids) == [(False, False), (True, False), (False, True)]
    body = _summary(api)
    assert body["change_failure_rate"]["change_failures"] == 1 and body["change_failure_rate"]["deployments"] == 2


def test_a_redeploy_without_sha_is_matched_only_by_version_against_deployments_without_one(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """METRICS §2 rule 2: a deployment is known by its sha when it has one, by its version only when it has
    none. A redeploy of 1.0 sent without a sha after 1.0 and 2.0 sent with theirs matches neither; after a
    1.0 sent without a sha, it is a rollback of what followed it."""
    ids = [
        _deploy(api, 1, id="mx1", version="1.0", commit_sha=_sha(1)),
        _deploy(api, 2, id="mx2", version="2.0", commit_sha=_sha(2)),
        _deploy(api, 3, id="mx3", version="1.0"),
        _deploy(api, 4, id="mx4", version="3.0"),
        _deploy(api, 5, id="mx5", version="1.0"),
    ]
    scheduled_run(lambda_context)
    assert _flags(api, ids) == [(False, False), (False, False), (False, False), (True, False), (False, True)]
    assert {"reason": "rollback", "deployment_id": "mx4"} in _figures(api, "mx5")["rework_reasons"]


def test_a_deployment_created_again_under_a_removed_ones_id_is_not_charged(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """METRICS §2 rule 4: "A deployment created later under the removed one's id is another deployment: the failure
    does not charge it"; the next success is then no rework either."""
    _deploy(api, 1, id="base", version="1")
    named = _deploy(api, 2, id="re1", version="2")
    clock.advance(timedelta(seconds=5))  # the service's clock moves between requests, as it does in service
    _failure(api, id="names-re1", deployment_id=named, started_at="2024-03-10T03:00:00Z")
    scheduled_run(lambda_context)
    assert _figures(api, named)["change_failure_cause"] == "names-re1"
    clock.advance(timedelta(seconds=5))
    removed = _call(api, "DELETE", "/api/{spaceId}/deployments/{deploymentId}", path={"deploymentId": named})
    assert removed.status == 204, removed.body
    scheduled_run(lambda_context)
    clock.advance(timedelta(seconds=5))
    again = _deploy(api, 4, id="re1", version="3")
    after = _deploy(api, 5, id="re2", version="4")
    scheduled_run(lambda_context)
    f = _figures(api, again)
    assert f["change_failure"] is False and f["change_failure_reasons"] is None
    assert _figures(api, after)["rework"] is False
    assert _summary(api)["change_failure_rate"]["change_failures"] == 0


def test_override_then_clear_and_a_rollforward_remediation(api: Api, clock: Clock, lambda_context: Any) -> None:
    """An override ``true`` makes a success a change failure (rule 0, the next success rework); ``null`` clears it
    and the rules decide again. A ``rollforward`` remediation charges rule 3 with the remediation as the cause and
    makes it rework ``fix``, still in the change-failure rate's denominator."""
    ids = [_deploy(api, h, id=f"o{h}", version=str(h)) for h in (1, 2, 3, 4)]
    route = "/api/{spaceId}/deployments/{deploymentId}"
    assert _call(api, "PATCH", route, path={"deploymentId": "o1"}, body={"change_failure": True}).status == 200
    scheduled_run(lambda_context)
    assert _flags(api, ids) == [(True, False), (False, True), (False, False), (False, False)]
    f1 = _figures(api, "o1")
    assert (f1["change_failure_rule"], f1["change_failure_computed"], f1["change_failure_override"]) == (0, False, True)
    assert _call(api, "PATCH", route, path={"deploymentId": "o1"}, body={"change_failure": None}).status == 200
    body = {"remediation": {"id": "o4", "type": "rollforward"}}
    assert _call(api, "PATCH", route, path={"deploymentId": "o2"}, body=body).status == 200
    scheduled_run(lambda_context)
    assert _flags(api, ids) == [(False, False), (True, False), (False, True), (False, True)]
    f2 = _figures(api, "o2")
    assert (
        f2["change_failure_override"] is None and f2["change_failure_rule"] == 3 and f2["change_failure_cause"] == "o4"
    )
    assert _figures(api, "o4")["rework_reasons"] == [{"reason": "fix", "deployment_id": "o2"}]
    summary = _summary(api)
    assert summary["change_failure_rate"]["change_failures"] == 1 and summary["change_failure_rate"]["deployments"] == 4
    assert summary["rework_rate"]["rework_deployments"] == 2
