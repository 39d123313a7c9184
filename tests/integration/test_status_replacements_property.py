"""A code host's later final status of one deployment replaces the deployment recorded (API.md,
the paragraph after the GitHub webhooks table; METRICS §5). Each history is compared with a native space
where every deployment is ingested once, with its latest status (from a review of the new code: it ran
these properties on 230 more seeds; ``DORA_PROPERTY_SEEDS=a:b`` widens them)."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Aws, Clock
from tests.integration.test_arrival_order_property import settle
from tests.integration.test_bulk_ingest_property import _norm
from tests.integration.test_code_deployments_property import (
    REPO,
    SPACE_A,
    SPACE_B,
    _iso,
    _metrics,
    _view,
    changes,
    gh,
    gh_status,
    gl,
    gl_deployment,
    native,
    native_b,
    sha,
)
from tests.support.fixtures import OTHER_KEY

DAY = datetime(2024, 3, 1, tzinfo=UTC)
_WIDE = os.environ.get("DORA_PROPERTY_SEEDS")


def _seeds(n: int) -> range:
    return range(*map(int, _WIDE.split(":"))) if _WIDE else range(n)


@pytest.fixture
def both(github_hooked: Api, gitlab_hooked: None, other_space: str) -> Api:
    return github_hooked


def _summary(api: Api, space: str, key: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for env in ("production", "staging"):
        q = {"from": "2024-02-29T00:00:00Z", "to": "2024-03-02T00:00:00Z", "environment": env}
        r = api.call("GET", "/api/{spaceId}/summary", path_params={"spaceId": space}, query=q, key=key)
        assert r.status == 200, r.body
        out[env] = _norm(r.body, space)
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
            problems.append(f"d{i}: " + str({k: (va[k], vb[k]) for k in va if va[k] != vb[k]}))
    ma, mb = _metrics(api, SPACE_A, ADMIN_KEY), _metrics(api, SPACE_B, OTHER_KEY)
    if ma != mb:
        problems.append(f"/dora/metrics: {ma} != {mb}")
    sa, sb = _summary(api, SPACE_A, ADMIN_KEY), _summary(api, SPACE_B, OTHER_KEY)
    if sa != sb:
        problems.append(f"/summary: {sa} != {sb}")
    # no commit shipped twice by successes of one stream
    shipped: dict[tuple[str, str], list[str]] = {}
    for body in read_a:
        if body.get("state") == "Success":
            for c in (body.get("attribution") or {}).get("commits") or []:
                shipped.setdefault((body["environment"].casefold(), c), []).append(body["id"])
    twice = {k: v for k, v in shipped.items() if len(v) > 1}
    if twice:
        problems.append(f"shipped twice: {twice}")
    return problems


# --- histories: several deployments, each with 1-3 final statuses at different times ----------------------


def _history(
    rng: random.Random, envs: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    n = rng.randint(4, 9)
    commit_times = [DAY + timedelta(hours=1, minutes=10 * i) for i in range(n)]
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
    # status times: distinct minutes in a window, statuses of deployments interleaving
    count = rng.randint(2, 5)
    per = [rng.randint(1, 3) for _ in range(count)]
    minutes = rng.sample(range(0, 240), sum(per))
    deps = []
    at = 0
    commit = 0
    for k in range(count):
        commit = min(n - 1, commit + rng.randint(0, 3))
        mine = sorted(minutes[at : at + per[k]])
        at += per[k]
        statuses = [
            (DAY + timedelta(hours=4, minutes=m), rng.choice(["success", "success", "failure", "error"])) for m in mine
        ]
        created = statuses[0][0] - timedelta(minutes=rng.randint(1, 10))
        deps.append({"k": k, "commit": commit, "env": rng.choice(envs), "statuses": statuses, "created": created})
    return commits, pulls, deps


def _native_oracle(api: Api, deps: list[dict[str, Any]], *, started: bool) -> list[str]:
    ids = []
    # finish order of the final history (the native space is fed in finish order)
    order = sorted(range(len(deps)), key=lambda i: deps[i]["statuses"][-1][0])
    by_index: dict[int, str] = {}
    for i in order:
        d = deps[i]
        last_at, last_state = d["statuses"][-1]
        fields: dict[str, Any] = {
            "finished_at": _iso(last_at),
            "state": "Success" if last_state == "success" else "Failed",
            "commit_sha": sha(d["commit"]),
            "repository": REPO,
            "environment": d["env"],
        }
        if started:
            fields["started_at"] = _iso(d["created"])
        by_index[i] = native(api, SPACE_B, OTHER_KEY, **fields)
    ids = [by_index[i] for i in range(len(deps))]
    return ids


@pytest.mark.parametrize("seed", _seeds(4))
def test_github_latest_status_gives_the_native_history(
    both: Api, aws: Aws, clock: Clock, lambda_context: Any, seed: int
) -> None:
    rng = random.Random(seed)
    envs = ["production"] if seed % 2 == 0 else ["production", "staging"]
    commits, pulls, deps = _history(rng, envs)
    code_late = rng.random() < 0.5
    changes(both, SPACE_B, OTHER_KEY, commits, pulls)
    if not code_late:
        changes(both, SPACE_A, ADMIN_KEY, commits, pulls)
    deliveries = []
    for d in deps:
        dep_id = 9000 + d["k"]
        for j, (at, state) in enumerate(d["statuses"]):
            event = gh_status(
                dep_id,
                state,
                _iso(at),
                commit=sha(d["commit"]),
                created=_iso(d["created"]),
                environment=d["env"],
                status_id=dep_id * 10 + j,
            )
            deliveries.append(event)
            if rng.random() < 0.4:
                deliveries.append(event)  # redelivered under another delivery id
    rng.shuffle(deliveries)
    ids_by_dep: dict[int, str] = {}
    answers = []
    for n, event in enumerate(deliveries):
        r = gh(both, "deployment_status", event, f"rp-{seed}-{n}")
        answers.append((event["deployment"]["id"], event["deployment_status"]["state"], r.status))
        assert r.status in (200, 201, 202), (r.status, r.body)
        if r.status in (200, 201):
            ids_by_dep.setdefault(event["deployment"]["id"], r.body["deployment"]["id"])
            assert ids_by_dep[event["deployment"]["id"]] == r.body["deployment"]["id"]
        clock.advance(timedelta(seconds=3))
    if code_late:
        changes(both, SPACE_A, ADMIN_KEY, commits, pulls)
    ids_a = [ids_by_dep[9000 + d["k"]] for d in deps]
    ids_b = _native_oracle(both, deps, started=True)
    problems = _compare(both, aws, clock, lambda_context, ids_a, ids_b, len(commits))
    assert not problems, f"seed {seed} late={code_late} deps={deps}\nanswers={answers}\n" + "\n".join(problems)


@pytest.mark.parametrize("seed", _seeds(3))
def test_gitlab_latest_status_gives_the_native_history(
    both: Api, aws: Aws, clock: Clock, lambda_context: Any, seed: int
) -> None:
    rng = random.Random(500 + seed)
    envs = ["production"] if seed % 2 == 0 else ["production", "staging"]
    commits, pulls, deps = _history(rng, envs)
    code_late = rng.random() < 0.5
    changes(both, SPACE_B, OTHER_KEY, commits, pulls)
    if not code_late:
        changes(both, SPACE_A, ADMIN_KEY, commits, pulls)
    deliveries = []
    for d in deps:
        for at, state in d["statuses"]:
            body = gl_deployment(
                800 + d["k"],
                "success" if state == "success" else "failed",
                at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                commit=sha(d["commit"]),
                environment=d["env"],
            )
            deliveries.append(body)
            if rng.random() < 0.4:
                deliveries.append(body)
    rng.shuffle(deliveries)
    ids_by_dep: dict[int, str] = {}
    for n, body in enumerate(deliveries):
        r = gl(both, body, f"glr-{seed}-{n}")
        assert r.status in (200, 201, 202), (r.status, r.body)
        if r.status in (200, 201):
            ids_by_dep.setdefault(body["deployment_id"], r.body["deployment"]["id"])
            assert ids_by_dep[body["deployment_id"]] == r.body["deployment"]["id"]
        clock.advance(timedelta(seconds=3))
    if code_late:
        changes(both, SPACE_A, ADMIN_KEY, commits, pulls)
    ids_a = [ids_by_dep[800 + d["k"]] for d in deps]
    ids_b = _native_oracle(both, deps, started=False)
    problems = _compare(both, aws, clock, lambda_context, ids_a, ids_b, len(commits))
    assert not problems, f"seed {seed} late={code_late} deps={deps}\n" + "\n".join(problems)


# --- the latest status names another environment: the deployment moves to another stream --------------------


@pytest.mark.parametrize("seed", _seeds(3))
def test_github_latest_status_in_another_environment_gives_the_native_history(
    both: Api, aws: Aws, clock: Clock, lambda_context: Any, seed: int
) -> None:
    rng = random.Random(2000 + seed)
    commits, pulls, deps = _history(rng, ["production"])
    for d in deps:  # each status names its own environment (the latest one decides)
        d["envs"] = [rng.choice(["production", "staging"]) for _ in d["statuses"]]
        d["env"] = d["envs"][-1]
    code_late = rng.random() < 0.5
    changes(both, SPACE_B, OTHER_KEY, commits, pulls)
    if not code_late:
        changes(both, SPACE_A, ADMIN_KEY, commits, pulls)
    deliveries = []
    for d in deps:
        dep_id = 9500 + d["k"]
        for j, ((at, state), env) in enumerate(zip(d["statuses"], d["envs"], strict=True)):
            event = gh_status(
                dep_id,
                state,
                _iso(at),
                commit=sha(d["commit"]),
                created=_iso(d["created"]),
                environment=env,
                status_id=dep_id * 10 + j,
            )
            deliveries.append(event)
            if rng.random() < 0.3:
                deliveries.append(event)
    rng.shuffle(deliveries)
    ids_by_dep: dict[int, str] = {}
    for n, event in enumerate(deliveries):
        r = gh(both, "deployment_status", event, f"env-{seed}-{n}")
        assert r.status in (200, 201, 202), (r.status, r.body)
        if r.status in (200, 201):
            ids_by_dep.setdefault(event["deployment"]["id"], r.body["deployment"]["id"])
        clock.advance(timedelta(seconds=3))
    if code_late:
        changes(both, SPACE_A, ADMIN_KEY, commits, pulls)
    ids_a = [ids_by_dep[9500 + d["k"]] for d in deps]
    ids_b = _native_oracle(both, deps, started=True)
    problems = _compare(both, aws, clock, lambda_context, ids_a, ids_b, len(commits))
    assert not problems, f"seed {seed} late={code_late} deps={deps}\n" + "\n".join(problems)


# --- explicit cases ----------------------------------------------------------------------------------------


def _get(api: Api, deployment_id: str, space: str = SPACE_A, key: str = ADMIN_KEY) -> Any:
    return api.call(
        "GET",
        "/api/{spaceId}/deployments/{deploymentId}",
        path_params={"spaceId": space, "deploymentId": deployment_id},
        key=key,
    )


def _status(dep_id: int, state: str, hhmm: str, commit: int, env: str = "production") -> dict[str, Any]:
    return gh_status(
        dep_id,
        state,
        f"2024-03-01T{hhmm}:00Z",
        commit=sha(commit),
        created="2024-03-01T09:00:00Z",
        environment=env,
        status_id=dep_id * 100 + int(hhmm.replace(":", "")) % 100,
    )


def _all_commits(api: Api, space: str, key: str) -> None:
    commit_times = [DAY + timedelta(hours=1, minutes=10 * i) for i in range(6)]
    changes(
        api,
        space,
        key,
        [
            {"repository": REPO, "branch": "main", "sha": sha(i), "timestamp": _iso(t)}
            for i, t in enumerate(commit_times)
        ],
        [],
    )


def test_an_earlier_status_delivered_late_changes_nothing(both: Api) -> None:
    _all_commits(both, SPACE_A, ADMIN_KEY)
    first = gh(both, "deployment_status", _status(1, "success", "11:20", 3), "e-1")
    assert first.status == 201, first.body
    before = _get(both, first.body["deployment"]["id"]).body
    late = gh(both, "deployment_status", _status(1, "failure", "11:00", 3), "e-2")
    assert late.status == 202, late.body
    after = _get(both, first.body["deployment"]["id"]).body
    assert (after["state"], after["finished_at"], after.get("revision")) == (
        before["state"],
        before["finished_at"],
        before.get("revision"),
    )


def test_a_later_status_after_the_deployment_was_deleted_records_it_again(both: Api) -> None:
    """API.md: DELETE then send again; a later final status of a deleted deployment must not be a 409/5xx
    forever (GitHub does not redeliver by itself)."""
    _all_commits(both, SPACE_A, ADMIN_KEY)
    first = gh(both, "deployment_status", _status(2, "failure", "11:00", 3), "d-1")
    assert first.status == 201, first.body
    gone = both.call(
        "DELETE",
        "/api/{spaceId}/deployments/{deploymentId}",
        path_params={"spaceId": SPACE_A, "deploymentId": first.body["deployment"]["id"]},
        key=ADMIN_KEY,
    )
    assert gone.status in (200, 204), gone.body
    later = gh(both, "deployment_status", _status(2, "success", "11:20", 3), "d-2")
    assert later.status == 201, later.body
    assert later.body["deployment"]["state"] == "Success"
    again = gh(both, "deployment_status", _status(2, "success", "11:30", 3), "d-3")
    assert again.status == 200, again.body
    assert again.body["deployment"]["id"] == later.body["deployment"]["id"]


def _patch(api: Api, deployment_id: str, body: dict[str, Any]) -> Any:
    return api.call(
        "PATCH",
        "/api/{spaceId}/deployments/{deploymentId}",
        path_params={"spaceId": SPACE_A, "deploymentId": deployment_id},
        body=body,
        key=ADMIN_KEY,
    )


@pytest.mark.parametrize(
    ("first", "correction", "later"),
    [
        ("success", {"state": "Failed"}, "success"),
        ("success", {"state": "Failed"}, "failure"),
        ("failure", {"state": "Success"}, "success"),
        ("failure", {"state": "Success"}, "failure"),
        ("success", {"change_failure": True, "version": "9.9"}, "success"),
        ("success", {"version": "9.9"}, "failure"),
    ],
)
def test_a_later_status_of_a_corrected_deployment_gives_the_native_history(
    both: Api, aws: Aws, clock: Clock, lambda_context: Any, first: str, correction: dict[str, Any], later: str
) -> None:
    """d0 success 10:00 (commit 1), d1 (commit 3) first status 11:00, corrected, d2 success 12:00 (commit 5);
    then d1's later status at 12:30 (past d2). Attribution must be the native final history's."""
    for space, key in ((SPACE_A, ADMIN_KEY), (SPACE_B, OTHER_KEY)):
        _all_commits(both, space, key)
    a0 = gh(both, "deployment_status", _status(10, "success", "10:00", 1), "c-0").body["deployment"]["id"]
    r1 = gh(both, "deployment_status", _status(11, first, "11:00", 3), "c-1")
    assert r1.status == 201
    a1 = r1.body["deployment"]["id"]
    a2 = gh(both, "deployment_status", _status(12, "success", "12:00", 5), "c-2").body["deployment"]["id"]
    settle(both, aws, clock, lambda_context, [(SPACE_A, ADMIN_KEY, [a0, a1, a2])])
    p = _patch(both, a1, correction)
    assert p.status == 200, p.body
    r = gh(both, "deployment_status", _status(11, later, "12:30", 3), "c-3")
    assert r.status == 200, r.body
    assert r.body["deployment"]["state"] == ("Success" if later == "success" else "Failed")
    b0 = native_b(both, finished_at="2024-03-01T10:00:00Z", state="Success", commit_sha=sha(1))
    b2 = native_b(both, finished_at="2024-03-01T12:00:00Z", state="Success", commit_sha=sha(5))
    b1 = native_b(
        both, finished_at="2024-03-01T12:30:00Z", state="Success" if later == "success" else "Failed", commit_sha=sha(3)
    )
    read_a, read_b = settle(
        both, aws, clock, lambda_context, [(SPACE_A, ADMIN_KEY, [a0, a1, a2]), (SPACE_B, OTHER_KEY, [b0, b1, b2])]
    )
    number = {sha(i): i for i in range(6)}
    got = [sorted(number[c] for c in (b.get("attribution") or {}).get("commits") or []) for b in read_a]
    want = [sorted(number[c] for c in (b.get("attribution") or {}).get("commits") or []) for b in read_b]
    assert got == want, (got, want)
    lead = [(b.get("figures") or {}).get("lead_time_seconds") for b in read_a]
    lead_b = [(b.get("figures") or {}).get("lead_time_seconds") for b in read_b]
    assert lead == lead_b


def test_a_success_moved_past_the_next_success_gives_back_its_commits(
    both: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """d1 success 11:00 (commit 3), d2 success 11:30 (commit 4); d1's later status success at 12:00: d2
    ships commits 0..4 (d1 now after it, a redeploy of an older commit)."""
    for space, key in ((SPACE_A, ADMIN_KEY), (SPACE_B, OTHER_KEY)):
        _all_commits(both, space, key)
    a1 = gh(both, "deployment_status", _status(21, "success", "11:00", 3), "m-1").body["deployment"]["id"]
    a2 = gh(both, "deployment_status", _status(22, "success", "11:30", 4), "m-2").body["deployment"]["id"]
    settle(both, aws, clock, lambda_context, [(SPACE_A, ADMIN_KEY, [a1, a2])])
    r = gh(both, "deployment_status", _status(21, "success", "12:00", 3), "m-3")
    assert r.status == 200, r.body
    b2 = native_b(
        both, finished_at="2024-03-01T11:30:00Z", state="Success", commit_sha=sha(4), started_at="2024-03-01T09:00:00Z"
    )
    b1 = native_b(
        both, finished_at="2024-03-01T12:00:00Z", state="Success", commit_sha=sha(3), started_at="2024-03-01T09:00:00Z"
    )
    read_a, read_b = settle(
        both, aws, clock, lambda_context, [(SPACE_A, ADMIN_KEY, [a1, a2]), (SPACE_B, OTHER_KEY, [b1, b2])]
    )
    ia, ib = {a1: 0, a2: 1}, {b1: 0, b2: 1}
    number = {sha(i): i for i in range(6)}
    va = [_view(b, ia, number) for b in read_a]
    vb = [_view(b, ib, number) for b in read_b]
    assert va == vb, [{k: (x[k], y[k]) for k in x if x[k] != y[k]} for x, y in zip(va, vb, strict=True)]
    assert _summary(both, SPACE_A, ADMIN_KEY) == _summary(both, SPACE_B, OTHER_KEY)


def test_two_later_statuses_racing_end_on_the_latest(
    both: Api, aws: Aws, clock: Clock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """failure 11:00 recorded; success 11:20 in flight while failure 11:40 lands. Whatever the first answers
    (a retryable 409/503 is fine), redelivering both must end on the latest: Failed at 11:40."""
    from dora_insights.logic import replacements

    _all_commits(both, SPACE_A, ADMIN_KEY)
    assert gh(both, "deployment_status", _status(31, "failure", "11:00", 3), "r-0").status == 201
    original = replacements._vacated
    armed = {"on": True}

    def racing(*args: Any, **kwargs: Any) -> Any:
        if armed["on"]:
            armed["on"] = False
            inner = gh(both, "deployment_status", _status(31, "failure", "11:40", 3), "r-2")
            assert inner.status == 200, inner.body
        return original(*args, **kwargs)

    monkeypatch.setattr(replacements, "_vacated", racing)
    first = gh(both, "deployment_status", _status(31, "success", "11:20", 3), "r-1")
    monkeypatch.undo()
    assert armed["on"] is False
    assert first.status in (202, 409, 503) or first.status < 300, first.body
    if first.status >= 300 and first.status != 202:
        again = gh(both, "deployment_status", _status(31, "success", "11:20", 3), "r-1")
        assert again.status == 202, again.body
    rows = [d for d in _list(both) if d["commit_sha"] == sha(3)]
    assert len(rows) == 1, rows
    assert (rows[0]["state"], rows[0]["finished_at"][:19]) == ("Failed", "2024-03-01T11:40:00"), rows[0]


def _list(api: Api) -> list[dict[str, Any]]:
    from tests.support.native import list_all

    return list_all(api, space=SPACE_A, key=ADMIN_KEY)


def test_dx_upsert_still_replaces_with_an_earlier_time(both: Api) -> None:
    """DX's upsert is not 'later only': the same reference_id with an earlier deployed_at replaces."""
    _all_commits(both, SPACE_A, ADMIN_KEY)
    body = {
        "reference_id": "x1",
        "deployed_at": "2024-03-01T12:00:00Z",
        "service": "shop",
        "commit_sha": sha(3),
        "repository": REPO,
    }
    r1 = both.call("POST", "/api/deployments.upsert", body=body, key=ADMIN_KEY)
    assert r1.status == 200, r1.body
    r2 = both.call(
        "POST",
        "/api/deployments.upsert",
        body={**body, "deployed_at": "2024-03-01T11:00:00Z", "success": False},
        key=ADMIN_KEY,
    )
    assert r2.status == 200, r2.body
    assert r2.body["deployment"]["id"] == r1.body["deployment"]["id"]
    (only,) = _list(both)
    assert only["finished_at"].startswith("2024-03-01T11:00:00") and only["state"] == "Failed", only


# --- a success that shipped many commits (the undo of its attribution does not fit the transaction) --------


def _many_commits(api: Api, space: str, key: str, count: int) -> None:
    start = DAY - timedelta(hours=6)
    commits = [
        {"repository": REPO, "branch": "main", "sha": sha(i), "timestamp": _iso(start + timedelta(minutes=i))}
        for i in range(count)
    ]
    for first in range(0, count, 200):
        changes(api, space, key, commits[first : first + 200], [])


@pytest.mark.parametrize(
    ("later_state", "later_at"),
    [("failure", "11:30"), ("success", "11:10"), ("success", "12:30"), ("error", "12:30")],
)
def test_a_replaced_success_that_shipped_many_commits_gives_the_native_history(
    both: Api, aws: Aws, clock: Clock, lambda_context: Any, later_state: str, later_at: str
) -> None:
    """d0 success 10:00 (commit 0); d1 success 11:00 (commit 159: ships 159 commits); d2 success 12:00
    (commit 170); then d1's later status. The figures must be the final history's."""
    count = 175
    for space, key in ((SPACE_A, ADMIN_KEY), (SPACE_B, OTHER_KEY)):
        _many_commits(both, space, key, count)
    a0 = gh(both, "deployment_status", _status(40, "success", "10:00", 0), "b-0").body["deployment"]["id"]
    a1 = gh(both, "deployment_status", _status(41, "success", "11:00", 159), "b-1").body["deployment"]["id"]
    a2 = gh(both, "deployment_status", _status(42, "success", "12:00", 170), "b-2").body["deployment"]["id"]
    settle(both, aws, clock, lambda_context, [(SPACE_A, ADMIN_KEY, [a0, a1, a2])])
    r = gh(both, "deployment_status", _status(41, later_state, later_at, 159), "b-3")
    assert r.status == 200, r.body
    st = "2024-03-01T09:00:00Z"
    b0 = native_b(both, finished_at="2024-03-01T10:00:00Z", state="Success", commit_sha=sha(0), started_at=st)
    b2 = native_b(both, finished_at="2024-03-01T12:00:00Z", state="Success", commit_sha=sha(170), started_at=st)
    b1 = native_b(
        both,
        finished_at=f"2024-03-01T{later_at}:00Z",
        state="Success" if later_state == "success" else "Failed",
        commit_sha=sha(159),
        started_at=st,
    )
    read_a, read_b = settle(
        both, aws, clock, lambda_context, [(SPACE_A, ADMIN_KEY, [a0, a1, a2]), (SPACE_B, OTHER_KEY, [b0, b1, b2])]
    )
    number = {sha(i): i for i in range(count)}
    ia, ib = {a0: 0, a1: 1, a2: 2}, {b0: 0, b1: 1, b2: 2}
    va = [_view(b, ia, number) for b in read_a]
    vb = [_view(b, ib, number) for b in read_b]
    assert va == vb, [{k: (x[k], y[k]) for k in x if x[k] != y[k]} for x, y in zip(va, vb, strict=True)]
    assert _metrics(both, SPACE_A, ADMIN_KEY) == _metrics(both, SPACE_B, OTHER_KEY)


# --- two later statuses racing, at several points of the replacement ----------------------------------------


_HOOKS = ["_vacated", "replacing", "attribute_at_ingest", "follow"]


@pytest.mark.parametrize("hook", _HOOKS)
@pytest.mark.parametrize(
    ("outer", "inner"),
    [
        (("failure", "11:30"), ("success", "12:30")),
        (("success", "12:30"), ("failure", "11:30")),
        (("success", "12:30"), ("success", "11:30")),
        (("failure", "12:30"), ("success", "11:30")),
        (("success", "11:30"), ("failure", "12:30")),
    ],
)
def test_two_later_statuses_racing_give_the_native_history(
    both: Api,
    aws: Aws,
    clock: Clock,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    hook: str,
    outer: tuple[str, str],
    inner: tuple[str, str],
) -> None:
    from dora_insights.logic import attribution, corrections, replacements

    for space, key in ((SPACE_A, ADMIN_KEY), (SPACE_B, OTHER_KEY)):
        _all_commits(both, space, key)
    a0 = gh(both, "deployment_status", _status(50, "success", "10:00", 1), "q-0").body["deployment"]["id"]
    a1 = gh(both, "deployment_status", _status(51, "success", "11:00", 3), "q-1").body["deployment"]["id"]
    a2 = gh(both, "deployment_status", _status(52, "success", "12:00", 5), "q-2").body["deployment"]["id"]
    settle(both, aws, clock, lambda_context, [(SPACE_A, ADMIN_KEY, [a0, a1, a2])])
    target = {
        "_vacated": (replacements, "_vacated"),
        "replacing": (attribution, "replacing"),
        "attribute_at_ingest": (attribution, "attribute_at_ingest"),
        "follow": (corrections, "follow"),
    }[hook]
    original = getattr(*target)
    armed = {"on": True, "inner": None}

    def racing(*args: Any, **kwargs: Any) -> Any:
        if armed["on"]:
            armed["on"] = False
            armed["inner"] = gh(both, "deployment_status", _status(51, inner[0], inner[1], 3), "q-in")
        return original(*args, **kwargs)

    monkeypatch.setattr(*target, racing)
    first = gh(both, "deployment_status", _status(51, outer[0], outer[1], 3), "q-out")
    monkeypatch.undo()
    assert armed["on"] is False, "the race was not reached"
    answers = [("outer", first.status), ("inner", armed["inner"].status)]
    assert first.status < 500 and armed["inner"].status < 500, (first.body, armed["inner"].body)
    for name, (state, at), r in (("q-out", outer, first), ("q-in", inner, armed["inner"])):
        if r.status >= 300 and r.status != 202:  # a retryable answer: the tool's redelivery
            again = gh(both, "deployment_status", _status(51, state, at, 3), name)
            answers.append((name, again.status))
            assert again.status in (200, 201, 202), again.body
    latest = max(outer, inner, key=lambda s: s[1])
    st = "2024-03-01T09:00:00Z"
    b0 = native_b(both, finished_at="2024-03-01T10:00:00Z", state="Success", commit_sha=sha(1), started_at=st)
    b2 = native_b(both, finished_at="2024-03-01T12:00:00Z", state="Success", commit_sha=sha(5), started_at=st)
    b1 = native_b(
        both,
        finished_at=f"2024-03-01T{latest[1]}:00Z",
        state="Success" if latest[0] == "success" else "Failed",
        commit_sha=sha(3),
        started_at=st,
    )
    rows = _list(both)
    assert len(rows) == 3, rows
    read_a, read_b = settle(
        both, aws, clock, lambda_context, [(SPACE_A, ADMIN_KEY, [a0, a1, a2]), (SPACE_B, OTHER_KEY, [b0, b1, b2])]
    )
    number = {sha(i): i for i in range(6)}
    ia, ib = {a0: 0, a1: 1, a2: 2}, {b0: 0, b1: 1, b2: 2}
    va = [_view(b, ia, number) for b in read_a]
    vb = [_view(b, ib, number) for b in read_b]
    assert va == vb, (answers, [{k: (x[k], y[k]) for k in x if x[k] != y[k]} for x, y in zip(va, vb, strict=True)])


@pytest.mark.parametrize("where", ["project", "environment"])
def test_a_later_status_naming_another_stream_gives_the_native_history(
    both: Api, aws: Aws, clock: Clock, lambda_context: Any, where: str
) -> None:
    """d1 success 11:00 (commit 3) in shop/production, d2 success 12:00 (commit 5); d1's later status (11:20)
    names another project (payload.service) or environment: d2 ships commits 0..5; d1 ships 0..3 there."""
    for space, key in ((SPACE_A, ADMIN_KEY), (SPACE_B, OTHER_KEY)):
        _all_commits(both, space, key)
    a1 = gh(both, "deployment_status", _status(61, "success", "11:00", 3), "s-1").body["deployment"]["id"]
    a2 = gh(both, "deployment_status", _status(62, "success", "12:00", 5), "s-2").body["deployment"]["id"]
    settle(both, aws, clock, lambda_context, [(SPACE_A, ADMIN_KEY, [a1, a2])])
    later = _status(61, "success", "11:20", 3, env="staging" if where == "environment" else "production")
    if where == "project":
        later["deployment"]["payload"] = {"service": "web"}
    r = gh(both, "deployment_status", later, "s-3")
    assert r.status == 200, r.body
    assert r.body["deployment"]["id"] == a1
    st = "2024-03-01T09:00:00Z"
    moved = {"environment": "staging"} if where == "environment" else {"project": "web"}
    b1 = native_b(both, finished_at="2024-03-01T11:20:00Z", state="Success", commit_sha=sha(3), started_at=st, **moved)
    b2 = native_b(both, finished_at="2024-03-01T12:00:00Z", state="Success", commit_sha=sha(5), started_at=st)
    read_a, read_b = settle(
        both, aws, clock, lambda_context, [(SPACE_A, ADMIN_KEY, [a1, a2]), (SPACE_B, OTHER_KEY, [b1, b2])]
    )
    number = {sha(i): i for i in range(6)}
    ia, ib = {a1: 0, a2: 1}, {b1: 0, b2: 1}
    va = [_view(b, ia, number) for b in read_a]
    vb = [_view(b, ib, number) for b in read_b]
    assert va == vb, [{k: (x[k], y[k]) for k in x if x[k] != y[k]} for x, y in zip(va, vb, strict=True)]
    assert [b.get("project") for b in read_a] == [b.get("project") for b in read_b]
    assert _summary(both, SPACE_A, ADMIN_KEY) == _summary(both, SPACE_B, OTHER_KEY)


# --- code in chunks between the deliveries, the queue and the recompute run in between ------------------------


@pytest.mark.parametrize("via_push", [False, True])
@pytest.mark.parametrize("seed", _seeds(3))
def test_github_latest_status_with_code_in_chunks_and_steps_gives_the_native_history(
    both: Api, aws: Aws, clock: Clock, lambda_context: Any, seed: int, via_push: bool
) -> None:
    from tests.integration.test_arrival_order_property import step
    from tests.integration.test_code_event_kinds_property import push_payload

    rng = random.Random(3000 + seed + (77 if via_push else 0))
    envs = ["production"] if seed % 2 == 0 else ["production", "staging"]
    commits, pulls, deps = _history(rng, envs)
    if via_push:
        pulls = []  # GitHub pushes: commits only
    changes(both, SPACE_B, OTHER_KEY, commits, pulls)
    deliveries: list[Any] = []
    for d in deps:
        dep_id = 9700 + d["k"]
        for j, (at, state) in enumerate(d["statuses"]):
            event = gh_status(
                dep_id,
                state,
                _iso(at),
                commit=sha(d["commit"]),
                created=_iso(d["created"]),
                environment=d["env"],
                status_id=dep_id * 10 + j,
            )
            deliveries.append(("gh", event))
            if rng.random() < 0.3:
                deliveries.append(("gh", event))
    rng.shuffle(deliveries)
    # code chunks, in branch order, inserted at increasing positions
    cuts = sorted(rng.sample(range(1, len(commits)), k=min(2, len(commits) - 1)))
    bounds = [0, *cuts, len(commits)]
    chunks = []
    for a, b in pairwise(bounds):
        mine = {sha(i) for i in range(a, b)}
        chunks.append(("code", commits[a:b], [p for p in pulls if p["merge_commit_sha"] in mine]))
    positions = sorted(rng.randint(0, len(deliveries)) for _ in chunks)
    plan: list[Any] = []
    for i, item in enumerate(deliveries):
        while positions and positions[0] == i:
            positions.pop(0)
            plan.append(chunks.pop(0))
        plan.append(item)
        if rng.random() < 0.2:
            plan.append(("step",))
    plan += chunks
    ids_by_dep: dict[int, str] = {}
    for n, action in enumerate(plan):
        if action[0] == "code" and via_push:
            r = gh(both, "push", push_payload([(c["sha"], c["timestamp"]) for c in action[1]]), f"push-{seed}-{n}")
            assert r.status == 200, r.body
        elif action[0] == "code":
            changes(both, SPACE_A, ADMIN_KEY, action[1], action[2])
        elif action[0] == "step":
            step(aws, clock, lambda_context)
        else:
            event = action[1]
            r = gh(both, "deployment_status", event, f"ch-{seed}-{n}")
            assert r.status in (200, 201, 202), (r.status, r.body)
            if r.status in (200, 201):
                ids_by_dep.setdefault(event["deployment"]["id"], r.body["deployment"]["id"])
        clock.advance(timedelta(seconds=3))
    ids_a = [ids_by_dep[9700 + d["k"]] for d in deps]
    ids_b = _native_oracle(both, deps, started=True)
    problems = _compare(both, aws, clock, lambda_context, ids_a, ids_b, len(commits))
    kinds = [
        a[0] if a[0] != "gh" else (a[1]["deployment"]["id"] - 9700, a[1]["deployment_status"]["state"]) for a in plan
    ]
    assert not problems, f"seed {seed} deps={deps}\nplan={kinds}\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("later_state", "later_at"), [("success", "11:30"), ("failure", "11:30"), ("success", "12:30")]
)
def test_a_replacement_moving_past_an_incident_gives_the_native_history(
    both: Api, aws: Aws, clock: Clock, lambda_context: Any, later_state: str, later_at: str
) -> None:
    """An incident starting 11:10 follows d1 (success 11:00); d1's later status moves it past the incident:
    change failures, recoveries and /summary must be the final history's."""
    incident = {
        "project": "shop",
        "environment": "production",
        "name": "checkout errors",
        "severity": "high",
        "started_at": "2024-03-01T11:10:00Z",
        "finished_at": "2024-03-01T11:50:00Z",
    }
    incident_ids = {}
    for space, key in ((SPACE_A, ADMIN_KEY), (SPACE_B, OTHER_KEY)):
        _all_commits(both, space, key)
        r = both.call("POST", "/api/{spaceId}/failures", path_params={"spaceId": space}, body=incident, key=key)
        assert r.status == 201, r.body
        incident_ids[space] = r.body["id"]
    a0 = gh(both, "deployment_status", _status(70, "success", "10:00", 1), "i-0").body["deployment"]["id"]
    a1 = gh(both, "deployment_status", _status(71, "success", "11:00", 3), "i-1").body["deployment"]["id"]
    a2 = gh(both, "deployment_status", _status(72, "success", "12:00", 5), "i-2").body["deployment"]["id"]
    settle(both, aws, clock, lambda_context, [(SPACE_A, ADMIN_KEY, [a0, a1, a2])])
    r = gh(both, "deployment_status", _status(71, later_state, later_at, 3), "i-3")
    assert r.status == 200, r.body
    st = "2024-03-01T09:00:00Z"
    b0 = native_b(both, finished_at="2024-03-01T10:00:00Z", state="Success", commit_sha=sha(1), started_at=st)
    b1 = native_b(
        both,
        finished_at=f"2024-03-01T{later_at}:00Z",
        state="Success" if later_state == "success" else "Failed",
        commit_sha=sha(3),
        started_at=st,
    )
    b2 = native_b(both, finished_at="2024-03-01T12:00:00Z", state="Success", commit_sha=sha(5), started_at=st)
    read_a, read_b = settle(
        both, aws, clock, lambda_context, [(SPACE_A, ADMIN_KEY, [a0, a1, a2]), (SPACE_B, OTHER_KEY, [b0, b1, b2])]
    )
    number = {sha(i): i for i in range(6)}
    ia = {a0: 0, a1: 1, a2: 2, incident_ids[SPACE_A]: "incident"}
    ib = {b0: 0, b1: 1, b2: 2, incident_ids[SPACE_B]: "incident"}
    va = [_view(b, ia, number) for b in read_a]
    vb = [_view(b, ib, number) for b in read_b]
    assert va == vb, [{k: (x[k], y[k]) for k in x if x[k] != y[k]} for x, y in zip(va, vb, strict=True)]
    assert _summary(both, SPACE_A, ADMIN_KEY) == _summary(both, SPACE_B, OTHER_KEY)
    assert _metrics(both, SPACE_A, ADMIN_KEY) == _metrics(both, SPACE_B, OTHER_KEY)
