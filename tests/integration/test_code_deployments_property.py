"""Deployments through the code hosts' webhooks (GitHub ``deployment_status``, GitLab ``Deployment Hook``)
against the native API, and hostile payloads on those doors (found by a review; it ran 40 GitHub and 30
GitLab seeds; ``DORA_PROPERTY_SEEDS=a:b`` widens them)."""

from __future__ import annotations

import copy
import json
import os
import random
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Aws, Clock
from tests.integration.test_arrival_order_property import FIGURES, LINKS, settle
from tests.support.events import load_event
from tests.support.fixtures import GITHUB_SECRET, GITLAB_TOKEN, OTHER_KEY
from tests.support.native import get_deployment, list_all

_WIDER = os.environ.get("DORA_PROPERTY_SEEDS")  # ``a:b`` runs seeds a..b-1 instead of the suite's few


def _seeds(*default: int) -> tuple[int, ...]:
    return tuple(range(*map(int, _WIDER.split(":")))) if _WIDER else default


SPACE_A = "Spaces-1"
SPACE_B = "Spaces-2"
GH_ROUTE = "/webhooks/github/{spaceId}"
GL_ROUTE = "/webhooks/gitlab/{spaceId}"
REPO = "acme/shop"


def sha(n: int) -> str:
    import hashlib

    return hashlib.sha1(f"commit-{n}".encode(), usedforsecurity=False).hexdigest()


# --- senders ---------------------------------------------------------------------------------------------


def gh(api: Api, event: str, payload: Any, delivery: str, *, raw: str | None = None, ctype: str | None = None) -> Any:
    from dora_insights.dialects.github import sign

    body = raw if raw is not None else json.dumps(payload)
    headers = {
        "x-github-event": event,
        "x-github-delivery": delivery,
        "x-hub-signature-256": sign(GITHUB_SECRET, body.encode()),
    }
    if ctype:
        headers["content-type"] = ctype
    return api.call("POST", GH_ROUTE, path_params={"spaceId": SPACE_A}, raw_body=body, headers=headers)


def gl(api: Api, payload: Any, delivery: str, event: str = "Deployment Hook") -> Any:
    headers = {"x-gitlab-event": event, "x-gitlab-token": GITLAB_TOKEN, "idempotency-key": delivery}
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    return api.call("POST", GL_ROUTE, path_params={"spaceId": SPACE_A}, raw_body=raw, headers=headers)


def gh_status(
    dep_id: int,
    state: str,
    at: str,
    *,
    commit: str,
    created: str,
    environment: str = "production",
    status_id: int | None = None,
    repo: str = REPO,
    payload: Any = None,
) -> dict[str, Any]:
    event = copy.deepcopy(load_event("github_deployment_status.json"))
    event["deployment_status"].update(
        {
            "id": status_id if status_id is not None else dep_id * 10 + len(state),
            "state": state,
            "created_at": at,
            "updated_at": at,
            "environment": environment,
            "log_url": f"https://github.com/{repo}/actions/runs/{dep_id}",
            "target_url": f"https://github.com/{repo}/actions/runs/{dep_id}",
        }
    )
    event["deployment"].update(
        {
            "id": dep_id,
            "sha": commit,
            "environment": environment,
            "original_environment": environment,
            "created_at": created,
            "updated_at": at,
            "payload": payload if payload is not None else {},
        }
    )
    event["repository"].update({"full_name": repo, "name": repo.split("/")[1]})
    return event


def gl_deployment(dep_id: int, status: str, at: str, *, commit: str, environment: str = "production") -> dict[str, Any]:
    body = json.loads(load_event("GitlabWebhookFunction-deployment.json")["body"])
    body.update(
        {
            "status": status,
            "status_changed_at": at,
            "deployment_id": dep_id,
            "deployable_id": 1000 + dep_id,
            "deployable_url": f"https://gitlab.example.com/acme/shop/-/jobs/{1000 + dep_id}",
            "environment": environment,
            "short_sha": commit[:8],
            "commit_url": f"https://gitlab.example.com/acme/shop/-/commit/{commit}",
        }
    )
    body["project"].update({"path_with_namespace": REPO, "name": "shop"})
    return body


def native(api: Api, space: str, key: str, **fields: Any) -> str:
    body = {"project": "shop", "environment": "production", **fields}
    r = api.call("POST", "/api/{spaceId}/deployments", path_params={"spaceId": space}, body=body, key=key)
    assert r.status in (200, 201), r.body
    return str(r.body["id"])


def native_b(api: Api, **fields: Any) -> str:
    """A native deployment of ``REPO`` in space B, the twin of a code host's in space A."""
    return native(api, SPACE_B, OTHER_KEY, repository=REPO, **fields)


def changes(api: Api, space: str, key: str, commits: list[dict[str, Any]], pulls: list[dict[str, Any]]) -> None:
    r = api.call(
        "POST",
        "/api/{spaceId}/changes",
        path_params={"spaceId": space},
        body={"commits": commits, "pull_requests": pulls},
        key=key,
    )
    assert r.status < 300, r.body


def deployments_of(api: Api, space: str = SPACE_A, key: str = ADMIN_KEY) -> list[dict[str, Any]]:
    return list_all(api, space=space, key=key)


@pytest.fixture
def both(github_hooked: Api, gitlab_hooked: None, other_space: str) -> Api:
    return github_hooked


# --- one deployment, several final statuses in any order -----------------------------------------------


def _gh_final_state(api: Api, order: list[str]) -> str:
    statuses = {
        "failure": gh_status(7, "failure", "2024-03-01T11:00:00Z", commit=sha(1), created="2024-03-01T10:50:00Z"),
        "success": gh_status(7, "success", "2024-03-01T11:20:00Z", commit=sha(1), created="2024-03-01T10:50:00Z"),
    }
    for n, state in enumerate(order):
        r = gh(api, "deployment_status", statuses[state], f"{state}-{n}")
        assert r.status < 300, r.body
    (only,) = deployments_of(api)
    return str(only["state"])


def test_github_a_deployments_outcome_does_not_depend_on_the_order_its_statuses_arrive_in(
    both: Api, store: Any
) -> None:
    """GitHub delivers webhooks in no set order. A deployment whose status went failure (11:00) then success
    (11:20) must end in one state whichever delivery came first (the latest status: Success)."""
    first = _gh_final_state(both, ["failure", "success"])
    # the other order in a fresh deployment id of another repository
    statuses = [
        gh_status(8, "success", "2024-03-01T11:20:00Z", commit=sha(1), created="2024-03-01T10:50:00Z", repo="acme/web"),
        gh_status(8, "failure", "2024-03-01T11:00:00Z", commit=sha(1), created="2024-03-01T10:50:00Z", repo="acme/web"),
    ]
    for n, s in enumerate(statuses):
        assert gh(both, "deployment_status", s, f"other-{n}").status < 300
    second = next(d["state"] for d in deployments_of(both) if d["project"] == "web")
    assert first == second == "Success", (first, second)


def test_gitlab_a_deployments_outcome_does_not_depend_on_the_order_its_hooks_arrive_in(both: Api) -> None:
    failed = gl_deployment(21, "failed", "2024-03-01 11:00:00 UTC", commit=sha(1))
    success = gl_deployment(21, "success", "2024-03-01 11:20:00 UTC", commit=sha(1))
    assert gl(both, failed, "f1").status < 300
    assert gl(both, success, "s1").status < 300
    (one,) = deployments_of(both)
    assert one["state"] == "Success", one  # GitLab's deployment went failed -> success (status_changed_at later)


# --- hostile payloads: 4xx in the native shape, nothing stored ---------------------------------------------


def _base_gh() -> dict[str, Any]:
    return gh_status(5, "success", "2024-03-01T11:20:00Z", commit=sha(1), created="2024-03-01T11:00:00Z")


def _mutations_gh() -> list[tuple[str, Any]]:
    def setp(path: str, value: Any) -> Any:
        def apply(event: dict[str, Any]) -> None:
            *parents, last = path.split(".")
            target = event
            for p in parents:
                target = target[p]
            if value is _DEL:
                target.pop(last, None)
            else:
                target[last] = value

        return apply

    return [
        ("null sha", setp("deployment.sha", None)),
        ("no sha", setp("deployment.sha", _DEL)),
        ("sha not hex", setp("deployment.sha", "z" * 40)),
        ("sha number", setp("deployment.sha", 12345678)),
        ("huge id", setp("deployment.id", 10**40)),
        ("id string", setp("deployment.id", "abc")),
        ("id float", setp("deployment.id", 1.5)),
        ("id object", setp("deployment.id", {"a": 1})),
        ("env null", setp("deployment.environment", None)),
        ("env blank", setp("deployment.environment", "   ")),
        ("env list", setp("deployment.environment", ["production"])),
        ("env huge", setp("deployment.environment", "é" * 500)),
        ("state null", setp("deployment_status.state", None)),
        ("state number", setp("deployment_status.state", 3)),
        ("status time bad", setp("deployment_status.created_at", "yesterday")),
        ("status time null", setp("deployment_status.created_at", None)),
        ("status updated bad", setp("deployment_status.updated_at", "soon")),
        ("created bad", setp("deployment.created_at", "not a time")),
        ("created far future", setp("deployment.created_at", "9999-12-31T23:59:59Z")),
        ("status far past", setp("deployment_status.updated_at", "0001-01-01T00:00:00Z")),
        ("deployment list", setp("deployment", [1, 2])),
        ("no deployment", setp("deployment", _DEL)),
        ("status null", setp("deployment_status", None)),
        ("no repository", setp("repository", _DEL)),
        ("repo name blank", setp("repository.name", " ")),
        ("repo full_name bad", setp("repository.full_name", "no-slash")),
        ("service blank-ish obj", setp("deployment.payload", {"service": "x" * 900})),
        ("service huge utf8", setp("deployment.payload", {"service": "ΐ" * 150})),
        ("log url number", setp("deployment_status.log_url", 5)),
    ]


_DEL = object()


@pytest.mark.parametrize("name", [n for n, _ in _mutations_gh()])
def test_github_hostile_deployment_status_is_a_4xx_in_the_native_shape_and_stores_nothing(
    github_hooked: Api, store: Any, name: str
) -> None:
    mutate = dict(_mutations_gh())[name]
    event = _base_gh()
    mutate(event)
    r = gh(github_hooked, "deployment_status", event, "hostile-1")
    assert 400 <= r.status < 500, (name, r.status, r.body)
    assert set(r.body) >= {"message"}, r.body
    assert deployments_of(github_hooked) == []
    # not remembered as handled: a fixed redelivery is not answered "duplicate"
    r2 = gh(github_hooked, "deployment_status", _base_gh(), "hostile-1")
    assert r2.status == 201, r2.body


def test_github_deployment_created_after_its_status_does_not_store_a_negative_duration(github_hooked: Api) -> None:
    """The native API refuses started_at after finished_at; GitHub's deployment.created_at is the start. A
    deployment created after its status (clocks apart) is recorded without a start (GitHub never sends a
    refused delivery again): it was stored with a negative duration."""
    event = gh_status(6, "success", "2024-03-01T11:00:00Z", commit=sha(1), created="2024-03-01T11:30:00Z")
    r = gh(github_hooked, "deployment_status", event, "neg-1")
    assert r.status == 201, r.body
    d = r.body["deployment"]
    assert d["started_at"] is None and d["finished_at"].startswith("2024-03-01T11:00:00"), d


def _mutations_gl() -> list[tuple[str, str, Any]]:
    return [
        ("status null", "status", None),
        ("status number", "status", 7),
        ("time bad", "status_changed_at", "later"),
        ("time null", "status_changed_at", None),
        ("id huge", "deployment_id", 10**40),
        ("id string", "deployment_id", "abc"),
        ("id null", "deployment_id", None),
        ("env null", "environment", None),
        ("env blank", "environment", "  "),
        ("env huge", "environment", "ΐ" * 199),
        ("project null", "project", None),
        ("project list", "project", [1]),
        ("commit_url number", "commit_url", 5),
        ("short_sha bad", "short_sha", "zzzzzzzz"),
        ("both shas null", "__shas__", None),
        ("deployable_url number", "deployable_url", 3),
    ]


@pytest.mark.parametrize("name", [n for n, _, _ in _mutations_gl()])
def test_gitlab_hostile_deployment_hook_is_a_4xx_in_the_native_shape_and_stores_nothing(both: Api, name: str) -> None:
    field, value = next((f, v) for n, f, v in _mutations_gl() if n == name)
    body = gl_deployment(30, "success", "2024-03-01 11:00:00 UTC", commit=sha(1))
    if field == "__shas__":
        body["short_sha"] = None
        body["commit_url"] = None
    else:
        body[field] = value
    r = gl(both, body, "gl-hostile")
    assert 400 <= r.status < 500, (name, r.status, r.body)
    assert "message" in r.body
    assert deployments_of(both) == []
    ok = gl(both, gl_deployment(30, "success", "2024-03-01 11:00:00 UTC", commit=sha(1)), "gl-hostile")
    assert ok.status == 201, ok.body


def test_github_hostile_payload_leaves_no_default_branch_learned(github_hooked: Api, store: Any) -> None:
    """API.md: a refused delivery stores nothing (here: the repository's default branch)."""
    from dora_insights.dal.code import CodeStore

    event = _base_gh()
    event["repository"]["default_branch"] = "trunk"
    event["deployment"]["created_at"] = "2024-03-01T12:00:00Z"
    event["deployment_status"]["updated_at"] = "2024-03-01T11:00:00Z"
    event["deployment"]["sha"] = None
    r = gh(github_hooked, "deployment_status", event, "db-1")
    assert r.status == 400
    assert CodeStore(store, SPACE_A).default_branch(REPO) is None


# --- property: GitHub / GitLab deployments give the native history ----------------------------------------


def _iso(at: Any) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _history(rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Commits 0..n-1 on main, pull requests merged by some, and deployments (finish order) of commits."""
    from datetime import UTC, datetime

    day = datetime(2024, 3, 1, tzinfo=UTC)
    n = rng.randint(4, 9)
    commit_times = [day + timedelta(hours=1, minutes=10 * i) for i in range(n)]
    commits = [
        {"repository": REPO, "branch": "main", "sha": sha(i), "timestamp": _iso(t)} for i, t in enumerate(commit_times)
    ]
    pulls = []
    for i in range(n):
        if rng.random() < 0.4:
            pulls.append(
                {
                    "repository": REPO,
                    "number": 100 + i,
                    "base_ref": "main",
                    "merge_commit_sha": sha(i),
                    "created_at": _iso(commit_times[i] - timedelta(minutes=rng.randint(5, 90))),
                    "merged_at": _iso(commit_times[i]),
                }
            )
    deps = []
    at = day + timedelta(hours=4)
    commit = 0
    for k in range(rng.randint(2, 6)):
        commit = min(n - 1, commit + rng.randint(0, 3))
        at += timedelta(minutes=rng.randint(5, 50))
        took = rng.randint(1, 15)
        state = rng.choice(["success", "success", "failure"])
        deps.append({"k": k, "commit": commit, "state": state, "finished": at, "started": at - timedelta(minutes=took)})
    return commits, pulls, deps


def _view(body: dict[str, Any], index_of: dict[str, int], number: dict[str, int]) -> dict[str, Any]:
    attribution = body.get("attribution") or {}
    figures = body.get("figures") or {}
    shown: dict[str, Any] = {
        "state": body.get("state"),
        "finished_at": body.get("finished_at"),
        "environment": (body.get("environment") or "").casefold(),
        "commit_sha": next((v for k, v in number.items() if k.startswith(body.get("commit_sha") or "-")), None),
        "attribution": attribution.get("state"),
        "mode": attribution.get("mode"),
        "commits": sorted(number.get(s, s) for s in attribution.get("commits") or []),
        "pull_requests": sorted(pr.get("number") for pr in attribution.get("pull_requests") or []),
        "change_started_at": attribution.get("change_started_at"),
    }
    for name in FIGURES:
        shown[name] = figures.get(name)
    for name in LINKS:
        value = figures.get(name)
        shown[name] = index_of.get(value, value) if value is not None else None
    return shown


def _metrics(api: Api, space: str, key: str) -> dict[str, Any]:
    out = {}
    for metric in ("deployment_frequency", "lead_time_for_changes", "change_failure_rate", "rework_rate"):
        r = api.call(
            "GET",
            "/api/{spaceId}/dora/metrics",
            path_params={"spaceId": space},
            query={"metric": metric, "start_date": "2024-02-28", "end_date": "2024-03-02", "interval": "all"},
            key=key,
        )
        assert r.status == 200, r.body
        out[metric] = r.body
    return out


def _compare(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, ids_a: list[str], ids_b: list[str], n: int
) -> list[str]:
    read_a, read_b = settle(api, aws, clock, lambda_context, [(SPACE_A, ADMIN_KEY, ids_a), (SPACE_B, OTHER_KEY, ids_b)])
    number = {sha(i): i for i in range(n)}
    ia = {d: i for i, d in enumerate(ids_a)}
    ib = {d: i for i, d in enumerate(ids_b)}
    problems = []
    for i, (a, b) in enumerate(zip(read_a, read_b, strict=True)):
        va, vb = _view(a, ia, number), _view(b, ib, number)
        if va != vb:
            diff = {k: (va[k], vb[k]) for k in va if va[k] != vb[k]}
            problems.append(f"d{i}: {diff}")
    ma, mb = _metrics(api, SPACE_A, ADMIN_KEY), _metrics(api, SPACE_B, OTHER_KEY)
    if ma != mb:
        problems.append(f"/dora/metrics: {ma} != {mb}")
    return problems


def _assert_native_twin(
    both: Api,
    aws: Aws,
    clock: Clock,
    lambda_context: Any,
    ids_a: list[str],
    deps: list[dict[str, Any]],
    commits: int,
    label: str,
    *,
    started: bool = True,
) -> None:
    """The same deployments sent natively in space B (GitLab's have no start) give what space A holds."""
    ids_b = [
        native_b(
            both,
            finished_at=_iso(d["finished"]),
            **({"started_at": _iso(d["started"])} if started else {}),
            state="Success" if d["state"] == "success" else "Failed",
            commit_sha=sha(d["commit"]),
        )
        for d in deps
    ]
    problems = _compare(both, aws, clock, lambda_context, ids_a, ids_b, commits)
    assert not problems, f"{label} deps={deps}\n" + "\n".join(problems)


@pytest.mark.parametrize("seed", _seeds(0, 1, 2, 3))
def test_github_deployment_statuses_give_the_native_history(
    both: Api, aws: Aws, clock: Clock, lambda_context: Any, seed: int
) -> None:
    rng = random.Random(seed)
    commits, pulls, deps = _history(rng)
    code_late = rng.random() < 0.5
    changes(both, SPACE_B, OTHER_KEY, commits, pulls)
    if not code_late:
        changes(both, SPACE_A, ADMIN_KEY, commits, pulls)
    deliveries = []
    for d in deps:
        dep_id = 5000 + d["k"]
        env = rng.choice(["production", "Production"])

        def mk(st: str, at: Any, sid: Any = None, dep_id: int = dep_id, d: dict[str, Any] = d, env: str = env) -> Any:
            return gh_status(
                dep_id,
                st,
                _iso(at),
                commit=sha(d["commit"]),
                created=_iso(d["started"]),
                environment=env,
                status_id=sid,
            )

        seq = [mk("queued", d["started"]), mk("in_progress", d["started"] + timedelta(seconds=30))]
        final = "error" if d["state"] == "failure" and rng.random() < 0.5 else d["state"]
        terminal = mk(final, d["finished"], sid=dep_id * 10 + 9)
        seq.append(terminal)
        if rng.random() < 0.5:
            seq.append(terminal)  # the same status, another delivery (a tool's resend)
        if rng.random() < 0.4:
            seq.append(mk("inactive", d["finished"] + timedelta(hours=3)))
        deliveries += seq
    rng.shuffle(deliveries)
    ids_by_dep: dict[int, str] = {}
    for n, event in enumerate(deliveries):
        r = gh(both, "deployment_status", event, f"dl-{seed}-{n}")
        assert r.status in (200, 201, 202), r.body
        if r.status in (200, 201):
            ids_by_dep.setdefault(event["deployment"]["id"], r.body["deployment"]["id"])
            assert ids_by_dep[event["deployment"]["id"]] == r.body["deployment"]["id"]
        clock.advance(timedelta(seconds=3))
    if code_late:
        changes(both, SPACE_A, ADMIN_KEY, commits, pulls)
    ids_a = [ids_by_dep[5000 + d["k"]] for d in deps]
    _assert_native_twin(both, aws, clock, lambda_context, ids_a, deps, len(commits), f"seed {seed} late={code_late}")


@pytest.mark.parametrize("seed", _seeds(0, 1, 2, 3))
def test_gitlab_deployment_hooks_give_the_native_history(
    both: Api, aws: Aws, clock: Clock, lambda_context: Any, seed: int
) -> None:
    rng = random.Random(1000 + seed)
    commits, pulls, deps = _history(rng)
    code_late = rng.random() < 0.5
    changes(both, SPACE_B, OTHER_KEY, commits, pulls)
    if not code_late:
        changes(both, SPACE_A, ADMIN_KEY, commits, pulls)
    deliveries = []
    for d in deps:
        dep_id = 700 + d["k"]
        env = rng.choice(["production", "Production"])
        status = "success" if d["state"] == "success" else "failed"
        fmt = rng.choice(["utc", "offset", "iso"])
        fin = d["finished"]
        at = {
            "utc": fin.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "offset": (fin + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S +0100"),
            "iso": _iso(fin),
        }[fmt]
        seq = [
            gl_deployment(
                dep_id,
                "running",
                d["started"].strftime("%Y-%m-%d %H:%M:%S UTC"),
                commit=sha(d["commit"]),
                environment=env,
            )
        ]
        final = gl_deployment(dep_id, status, at, commit=sha(d["commit"]), environment=env)
        if rng.random() < 0.3:
            final["commit_url"] = None  # short sha only: one commit under both spellings (rule 2 reads them as one)
        seq.append(final)
        if rng.random() < 0.5:
            seq.append(final)
        deliveries += seq
    rng.shuffle(deliveries)
    ids_by_dep: dict[int, str] = {}
    for n, body in enumerate(deliveries):
        r = gl(both, body, f"gl-{seed}-{n}")
        assert r.status in (200, 201, 202), r.body
        if r.status in (200, 201):
            ids_by_dep.setdefault(body["deployment_id"], r.body["deployment"]["id"])
        clock.advance(timedelta(seconds=3))
    if code_late:
        changes(both, SPACE_A, ADMIN_KEY, commits, pulls)
    ids_a = [ids_by_dep[700 + d["k"]] for d in deps]
    _assert_native_twin(
        both, aws, clock, lambda_context, ids_a, deps, len(commits), f"seed {seed} late={code_late}", started=False
    )


# --- a GitLab deployment named by its short sha is the same commit --------------------------------------


def _figures(api: Api, deployment_id: str) -> dict[str, Any]:
    r = get_deployment(api, deployment_id)
    assert r.status == 200, r.body
    return r.body["figures"] or {}


def test_gitlab_short_sha_deployment_of_a_commit_is_not_a_rollback_of_its_full_sha(
    both: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """API.md: a GitLab deployment without a full ``commit_url`` keeps ``short_sha`` (attribution accepts
    prefixes). Deploying the same commit again (full sha, short sha, full sha) is no rollback (METRICS §2
    rule 2: V1 -> V1 is not a rollback), so no change failure nor rework."""
    commit = sha(3)
    ids = []
    for n, at in enumerate(("2024-03-01 09:00:00 UTC", "2024-03-01 10:00:00 UTC", "2024-03-01 11:00:00 UTC")):
        body = gl_deployment(40 + n, "success", at, commit=commit)
        if n == 1:
            body["commit_url"] = None  # GitLab's short_sha only
        r = gl(both, body, f"short-{n}")
        assert r.status == 201, r.body
        ids.append(r.body["deployment"]["id"])
    settle(both, aws, clock, lambda_context, [(SPACE_A, ADMIN_KEY, ids)])
    seen = [
        (f.get("change_failure"), f.get("rework"), f.get("rework_reason")) for f in (_figures(both, d) for d in ids)
    ]
    assert seen == [(False, False, None)] * 3, seen


# --- form-encoded GitHub deliveries ---------------------------------------------------------------------


def test_github_form_encoded_deployment_status_is_recorded_like_json(github_hooked: Api) -> None:
    from urllib.parse import urlencode

    event = _base_gh()
    raw = urlencode({"payload": json.dumps(event)})
    r = gh(github_hooked, "deployment_status", None, "form-1", raw=raw, ctype="application/x-www-form-urlencoded")
    assert r.status == 201, r.body
    assert r.body["deployment"]["commit_sha"] == sha(1)


# --- a delivery that met a concurrent removal is not remembered as handled ------------------------------


def test_github_status_meeting_a_concurrent_removal_is_not_swallowed(
    github_hooked: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write conflict that says "retry" must not be answered 2xx and remembered: GitHub never sends a
    delivery again by itself, and a manual redelivery would then be answered ``duplicate`` forever."""
    from dora_insights.dal import attribution as dal_attribution
    from dora_insights.dal import deployments as dal_deployments

    first = gh(github_hooked, "deployment_status", _base_gh(), "race-a")
    assert first.status == 201, first.body
    deployment_id = first.body["deployment"]["id"]
    original = dal_deployments.resolve_duplicate
    armed = {"on": True}

    def racing(*args: Any, **kwargs: Any) -> Any:
        if armed["on"]:
            armed["on"] = False  # the removal commits between the cancelled create and its read
            gone = github_hooked.call(
                "DELETE",
                "/api/{spaceId}/deployments/{deploymentId}",
                path_params={"spaceId": SPACE_A, "deploymentId": deployment_id},
                key=ADMIN_KEY,
            )
            assert gone.status in (200, 204), gone.body
        return original(*args, **kwargs)

    monkeypatch.setattr(dal_deployments, "resolve_duplicate", racing)
    monkeypatch.setattr(dal_attribution, "resolve_duplicate", racing)
    second = gh(github_hooked, "deployment_status", _base_gh(), "race-b")
    assert armed["on"] is False, "the race was not reached"
    monkeypatch.undo()
    if second.status < 300:
        # answered as handled: then the deployment must exist (it was not, after the removal)
        assert deployments_of(github_hooked) != [], second.body
    else:
        again = gh(github_hooked, "deployment_status", _base_gh(), "race-b")
        assert again.status == 201, again.body


# --- 5xx probes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "ctype"),
    [
        ('{"deployment": ' + "[" * 200_000 + "]" * 200_000 + "}", None),
        ("payload=" + "%5B" * 50_000, "application/x-www-form-urlencoded"),
        ("nopayload=1", "application/x-www-form-urlencoded"),
        ('{"deployment_status": {"state": "success"}, "deployment": {"id": 1e999}}', None),
        ('{"a": "\\ud800"}', None),
        ("[]", None),
        ("null", None),
    ],
)
def test_github_hostile_bodies_are_4xx_not_5xx(github_hooked: Api, raw: str, ctype: str | None) -> None:
    r = gh(github_hooked, "deployment_status", None, "probe-1", raw=raw, ctype=ctype)
    assert 400 <= r.status < 500, (r.status, r.body)
    assert deployments_of(github_hooked) == []


@pytest.mark.parametrize(
    "raw",
    ['{"status": "success", "project": ' + "[" * 200_000 + "]" * 200_000 + "}", "[]", '{"deployment_id": 1e999}'],
)
def test_gitlab_hostile_bodies_are_4xx_not_5xx(both: Api, raw: str) -> None:
    r = gl(both, raw, "probe-gl")
    assert 400 <= r.status < 500, (r.status, r.body)
    assert deployments_of(both) == []
