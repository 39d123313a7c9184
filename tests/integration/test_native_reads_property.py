"""The native read and correct APIs (API.md "Native API" and the corrections sections), found by a review.

Property: after a random sequence of corrections (state, change-failure override, remediation by id or by
version, version, tags, removal) the figures (each deployment's own, ``/summary`` per environment and
``/dora/metrics`` per metric and environment) equal those of another space where the corrected history was
ingested directly. Codeless histories (release lead times, so version corrections matter) with failure
events. Targeted: the corrections list, If-Match, cursors, limits and hostile input of the lists.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Aws, Clock, HttpResult
from tests.support.code import commit as _commit
from tests.support.code import send_changes as _send_changes
from tests.support.code import sha as _sha
from tests.support.fixtures import OTHER_KEY, OTHER_SPACE
from tests.support.native import create_deployment, get_deployment, list_all
from tests.support.replica_lag import ReplicaLag
from tests.support.retries import settle

_WIDER = os.environ.get("DORA_PROPERTY_SEEDS")  # ``a:b`` runs seeds a..b-1 instead of the suite's few


def _seeds(*default: int) -> tuple[int, ...]:
    return tuple(range(*map(int, _WIDER.split(":")))) if _WIDER else default


SPACE = "Spaces-1"
SP = {"spaceId": SPACE}
DEPLOYMENTS = "/api/{spaceId}/deployments"
ONE = "/api/{spaceId}/deployments/{deploymentId}"
CORRECTIONS = "/api/{spaceId}/deployments/{deploymentId}/corrections"
FAILURES = "/api/{spaceId}/failures"
FAILURE = "/api/{spaceId}/failures/{failureId}"
METRICS = "/api/{spaceId}/dora/metrics"
SUMMARY = "/api/{spaceId}/summary"
ENVS = ("production", "staging")
VERSIONS = ("1.0", "1.1", "1.2", "1.3", "2.0")


def _native_error(result: HttpResult, status: int) -> None:
    assert result.status == status, (result.status, result.body)
    assert isinstance(result.body, dict) and set(result.body) == {"message", "errors"}, result.body


def _patch(
    api: Api, deployment_id: str, body: Any, *, space: str = SPACE, key: str = ADMIN_KEY, **kw: Any
) -> HttpResult:
    return api.call(
        "PATCH", ONE, path_params={"spaceId": space, "deploymentId": deployment_id}, body=body, key=key, **kw
    )


def _delete(api: Api, deployment_id: str, *, space: str = SPACE, key: str = ADMIN_KEY) -> HttpResult:
    return api.call("DELETE", ONE, path_params={"spaceId": space, "deploymentId": deployment_id}, key=key)


def _history(api: Api, deployment_id: str, **query: str) -> HttpResult:
    return api.call(
        "GET", CORRECTIONS, path_params={**SP, "deploymentId": deployment_id}, query=query or None, key=ADMIN_KEY
    )


def _list(api: Api, route: str = DEPLOYMENTS, *, space: str = SPACE, key: str = ADMIN_KEY, **query: str) -> HttpResult:
    return api.call("GET", route, path_params={"spaceId": space}, query=query or None, key=key)


# =========================================================================================================
# Property: corrections vs a fresh ingest of the corrected history, through every number
# =========================================================================================================
@dataclass
class D:
    label: str
    env: str
    minute: int
    state: str
    version: str | None
    started: int | None  # minutes before the finish, None: no started_at
    tags: list[str] = field(default_factory=list)
    override: bool | None = None
    remediation: tuple[str, str, str] | None = None  # (type, "id"|"version", label or version)

    @property
    def finished_at(self) -> str:
        return _at(self.minute)

    @property
    def started_at(self) -> str | None:
        return None if self.started is None else _at(self.minute - self.started)


def _at(minute: int) -> str:
    t = datetime(2024, 3, 1, 8, 0, tzinfo=UTC) + timedelta(minutes=minute)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class F:
    label: str
    env: str
    start: int
    length: int | None
    version: str | None = None


@dataclass
class H:
    deps: list[D]
    failures: list[F]
    log: list[str] = field(default_factory=list)

    def by(self, label: str) -> D:
        return next(d for d in self.deps if d.label == label)

    def ordered(self) -> list[D]:
        return sorted(self.deps, key=lambda d: (d.minute, d.label))


def _random_h(rng: random.Random) -> H:
    count = rng.randint(4, 8)
    minutes = sorted(rng.sample(range(0, 600, 7), count))
    deps = [
        D(
            label=f"d{i}",
            env=rng.choice(ENVS),
            minute=m,
            state=rng.choice(("Success", "Success", "Success", "Failed", "TimedOut", "Canceled")),
            version=rng.choice((*VERSIONS, None)),
            started=rng.choice((None, 3, 5, 30)),
            tags=rng.choice(([], ["team:a"], ["team:b", "tier:1"])),
        )
        for i, m in enumerate(minutes)
    ]
    failures = [
        F(
            label=f"f{i}",
            env=rng.choice(ENVS),
            start=rng.randint(0, 640),
            length=rng.choice((None, 10, 45)),
            version=rng.choice((None, None, *VERSIONS)),
        )
        for i in range(rng.randint(0, 2))
    ]
    return H(deps, failures)


def _post_dep(api: Api, d: D, *, space: str, key: str) -> str:
    fields: dict[str, Any] = {"state": d.state, "tags": list(d.tags)}
    if d.version is not None:
        fields["version"] = d.version
    if d.started_at is not None:
        fields["started_at"] = d.started_at
    return str(
        create_deployment(api, space=space, key=key, environment=d.env, finished_at=d.finished_at, **fields)["id"]
    )


def _post_failure(api: Api, f: F, *, space: str, key: str) -> None:
    body: dict[str, Any] = {"project": "shop", "environment": f.env, "started_at": _at(f.start)}
    if f.length is not None:
        body["finished_at"] = _at(f.start + f.length)
    if f.version is not None:
        body["version"] = f.version
    r = api.call("POST", FAILURES, path_params={"spaceId": space}, body=body, key=key)
    assert r.status in (200, 201), r.body


def _remediation_body(d: D, ids: dict[str, str]) -> dict[str, Any] | None:
    if d.remediation is None:
        return None
    how, by, what = d.remediation
    return {"type": how, "id": ids[what]} if by == "id" else {"type": how, "version": what}


_FIG = (
    "lead_time_seconds",
    "lead_time_source",
    "lead_time_from_version",
    "time_since_previous_success_seconds",
    "time_to_recovery_seconds",
    "deployments_until_recovery",
    "change_failure",
    "change_failure_computed",
    "change_failure_override",
    "change_failure_rule",
    "rework",
    "rework_reason",
    "duration_seconds",
)
_FIG_IDS = ("previous_success_id", "recovered_from_failed_id", "change_failure_cause")


def _per_deployment(api: Api, ids: dict[str, str], *, space: str, key: str) -> dict[str, Any]:
    labels = {v: k for k, v in ids.items()}
    out: dict[str, Any] = {}
    for label, deployment_id in sorted(ids.items()):
        r = get_deployment(api, deployment_id, space=space, key=key)
        assert r.status == 200, r.body
        figures = r.body["figures"] or {}
        entry = {
            "state": r.body["state"],
            "version": r.body["version"],
            "tags": r.body["tags"],
            "pending": r.body["pending"],
        }
        entry |= {n: figures.get(n) for n in _FIG}
        entry |= {n: labels.get(str(figures.get(n)), "<other>" if figures.get(n) else None) for n in _FIG_IDS}
        reasons = figures.get("change_failure_reasons") or []
        entry["reasons"] = [
            (x.get("rule"), labels.get(str(x.get("deployment_id")), x.get("deployment_id") and "<f>")) for x in reasons
        ]
        out[label] = entry
    return out


_DROP = {"as_of", "pending", "generated_at", "computed_at", "space_id", "updated_at", "created_at"}
_CAT = re.compile(r"^(Projects|Tenants|ProjectGroups|Environments|Channels|TagSets)-\d+$")


def _norm(value: Any, space: str) -> Any:
    if isinstance(value, dict):
        return {k: _norm(v, space) for k, v in value.items() if k not in _DROP}
    if isinstance(value, list):
        return [_norm(v, space) for v in value]
    if isinstance(value, str):
        return _CAT.sub("<cat>", value.replace(space, "<space>"))
    return value


def _aggregates(api: Api, *, space: str, key: str) -> dict[str, Any]:
    sp = {"spaceId": space}
    found: dict[str, Any] = {}
    for env in ENVS:
        for metric in (
            "deployment_frequency",
            "change_failure_rate",
            "rework_rate",
            "lead_time_for_changes",
            "time_to_restore_service",
        ):
            q = {"metric": metric, "start_date": "2024-02-29", "end_date": "2024-03-02", "environment": env}
            r = api.call("GET", METRICS, path_params=sp, query=q, key=key)
            assert r.status == 200, r.body
            found[f"{env}:{metric}"] = r.body
        q = {"from": "2024-02-29T00:00:00Z", "to": "2024-03-03T00:00:00Z", "environment": env}
        r = api.call("GET", SUMMARY, path_params=sp, query=q, key=key)
        assert r.status == 200, r.body
        found[f"{env}:summary"] = _norm(r.body, space)
    return found


def _diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            out += [f"{k}.{s}" for s in _diff(x, y)]
        elif x != y:
            out.append(f"{k}: corrected {json.dumps(x)[:400]} / fresh {json.dumps(y)[:400]}")
    return out


def _random_correction(rng: random.Random, h: H) -> tuple[Any, ...]:
    d = rng.choice(h.deps)
    later = [x for x in h.deps if x.env == d.env and x.minute > d.minute]
    targeted = {x.remediation[2] for x in h.deps if x.remediation and x.remediation[1] == "id"}
    kinds = ["state", "state", "override", "version", "version", "tags", "remediation_clear"]
    if later:
        kinds += ["remediation_id", "remediation_version"]
    if len(h.deps) > 2 and d.label not in targeted:
        kinds.append("delete")
    kind = rng.choice(kinds)
    if kind == "state":
        states = ("Success", "Success", "Failed", "TimedOut", "Canceled", "Executing", "Queued")
        return ("state", d.label, rng.choice([s for s in states if s != d.state]))
    if kind == "override":
        return ("override", d.label, rng.choice((True, False, None)))
    if kind == "version":
        return ("version", d.label, rng.choice((*VERSIONS, "3.0", None)))
    if kind == "tags":
        return ("tags", d.label, rng.choice(([], ["team:c"], ["team:a", "tier:2"])))
    if kind == "remediation_clear":
        return ("remediation", d.label, None)
    if kind == "remediation_id":
        return ("remediation", d.label, (rng.choice(("rollback", "rollforward")), "id", rng.choice(later).label))
    if kind == "remediation_version":
        target = rng.choice(later)
        if target.version is None:
            return ("remediation", d.label, None)
        return ("remediation", d.label, (rng.choice(("rollback", "rollforward")), "version", target.version))
    return ("delete", d.label)


def _apply(h: H, c: tuple[Any, ...]) -> None:
    kind, label, *rest = c
    d = h.by(label)
    if kind == "state":
        d.state = rest[0]
    elif kind == "override":
        d.override = rest[0]
    elif kind == "version":
        d.version = rest[0]
    elif kind == "tags":
        d.tags = list(rest[0])
    elif kind == "remediation":
        d.remediation = rest[0]
    elif kind == "delete":
        h.deps.remove(d)


def _send_correction(api: Api, c: tuple[Any, ...], ids: dict[str, str]) -> None:
    kind, label, *rest = c
    if kind == "delete":
        assert _delete(api, ids.pop(label)).status == 204
        return
    name = {"state": "state", "override": "change_failure", "version": "version", "tags": "tags"}.get(kind, kind)
    value = rest[0]
    if kind == "remediation" and value is not None:
        how, by, what = value
        value = {"type": how, "id": ids[what]} if by == "id" else {"type": how, "version": what}
    r = _patch(api, ids[label], {name: value})
    assert r.status == 200, (c, r.body)


def _plan(seed: int) -> tuple[H, list[tuple[Any, ...]]]:
    rng = random.Random(7000 + seed)
    h = _random_h(rng)
    model = H([replace(d, tags=list(d.tags)) for d in h.deps], list(h.failures))
    cs = []
    for _ in range(rng.randint(1, 4)):
        c = _random_correction(rng, model)
        _apply(model, c)
        cs.append(c)
    return h, cs


def _describe(h: H) -> str:
    return (
        "\n".join(
            f"  {d.label} {d.env} {d.finished_at} start-{d.started} {d.state} v={d.version} tags={d.tags}"
            f" override={d.override} rem={d.remediation}"
            for d in h.ordered()
        )
        + "\n  failures: "
        + ", ".join(f"{f.label} {f.env} {_at(f.start)} len={f.length} v={f.version}" for f in h.failures)
    )


@pytest.mark.parametrize("seed", _seeds(0, 1, 2, 3))
def test_random_corrections_give_the_numbers_of_a_fresh_ingest(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str, seed: int
) -> None:
    clock.now = datetime(2024, 3, 1, 20, 0, tzinfo=UTC)
    h, cs = _plan(seed)
    before = _describe(h)
    ids = {d.label: _post_dep(api, d, space=SPACE, key=ADMIN_KEY) for d in h.ordered()}
    for f in h.failures:
        _post_failure(api, f, space=SPACE, key=ADMIN_KEY)
    settle(aws, clock, lambda_context)
    for c in cs:
        _apply(h, c)
        _send_correction(api, c, ids)
    settle(aws, clock, lambda_context)
    got_each = _per_deployment(api, ids, space=SPACE, key=ADMIN_KEY)
    got_all = _aggregates(api, space=SPACE, key=ADMIN_KEY)

    fresh = {d.label: _post_dep(api, d, space=OTHER_SPACE, key=OTHER_KEY) for d in h.ordered()}
    for f in h.failures:
        _post_failure(api, f, space=OTHER_SPACE, key=OTHER_KEY)
    for d in h.ordered():
        body: dict[str, Any] = {}
        if d.override is not None:
            body["change_failure"] = d.override
        if d.remediation is not None:
            body["remediation"] = _remediation_body(d, fresh)
        if body:
            r = _patch(api, fresh[d.label], body, space=OTHER_SPACE, key=OTHER_KEY)
            assert r.status == 200, r.body
    settle(aws, clock, lambda_context)
    want_each = _per_deployment(api, fresh, space=OTHER_SPACE, key=OTHER_KEY)
    want_all = _aggregates(api, space=OTHER_SPACE, key=OTHER_KEY)
    report = f"\nsent:\n{before}\ncorrections: {cs}\nfinal:\n{_describe(h)}"
    problems = _diff(got_each, want_each) + _diff(got_all, want_all)
    assert not problems, "\n".join(problems) + report


# =========================================================================================================
# The corrections list
# =========================================================================================================
def test_corrections_made_within_one_millisecond_are_listed_newest_first(api: Api, clock: Clock) -> None:
    """API.md: the corrections of a deployment, newest first. Several corrections in the same millisecond
    (one client script, or the fixed clock here) must still list by revision, newest first."""
    created = create_deployment(api, version="1")
    for n in range(2, 10):
        assert _patch(api, created["id"], {"version": str(n)}).status == 200
    assert _delete(api, created["id"]).status == 204
    items = _history(api, created["id"]).body["items"]
    assert [i["action"] for i in items] == ["delete"] + ["correct"] * 8, [i["action"] for i in items]
    assert [i["revision"] for i in items] == [9, 9, 8, 7, 6, 5, 4, 3, 2], [i["revision"] for i in items]
    assert [i["changes"]["version"]["after"] for i in items[1:]] == [str(n) for n in range(9, 1, -1)]


def test_corrections_pages_join_up_to_the_whole_list(api: Api, clock: Clock) -> None:
    created = create_deployment(api, version="0")
    for n in range(1, 8):
        clock.advance(timedelta(seconds=1))
        assert _patch(api, created["id"], {"version": str(n)}).status == 200
    whole = _history(api, created["id"], limit="500").body
    assert whole["next_cursor"] is None and len(whole["items"]) == 7
    for size in (1, 2, 3, 7):
        seen, cursor = [], None
        while True:
            page = _history(api, created["id"], limit=str(size), **({"cursor": cursor} if cursor else {}))
            assert page.status == 200, page.body
            seen += page.body["items"]
            cursor = page.body["next_cursor"]
            if cursor is None:
                break
        assert seen == whole["items"], size


@pytest.mark.parametrize("limit", ["0", "-1", "501", "10000000000000000000000000000000", "1.5", "ten", ""])
def test_a_corrections_limit_out_of_range_is_a_400(api: Api, clock: Clock, limit: str) -> None:
    created = create_deployment(api)
    _patch(api, created["id"], {"version": "9"})
    _native_error(_history(api, created["id"], limit=limit), 400)


def test_a_corrections_cursor_of_another_deployment_or_list_is_a_400(api: Api, clock: Clock) -> None:
    a = create_deployment(api, finished_at="2024-03-01T10:00:00Z")
    b = create_deployment(api, finished_at="2024-03-01T11:00:00Z")
    for d in (a, b):
        for n in range(3):
            clock.advance(timedelta(seconds=1))
            _patch(api, d["id"], {"version": f"{n}"})
    cursor_a = _history(api, a["id"], limit="1").body["next_cursor"]
    assert cursor_a
    _native_error(_history(api, b["id"], cursor=cursor_a), 400)
    list_cursor = _list(api, limit="1").body["next_cursor"]
    assert list_cursor
    _native_error(_history(api, b["id"], cursor=list_cursor), 400)
    _native_error(_list(api, cursor=cursor_a), 400)


def test_a_corrections_cursor_of_a_deployment_without_records_is_a_400_or_empty_not_a_500(
    api: Api, clock: Clock
) -> None:
    a = create_deployment(api)
    for n in range(3):
        clock.advance(timedelta(seconds=1))
        _patch(api, a["id"], {"version": f"{n}"})
    cursor = _history(api, a["id"], limit="1").body["next_cursor"]
    r = _history(api, "never-existed", cursor=cursor)
    _native_error(r, 400)


def test_the_history_of_a_deleted_and_resent_id_starts_again_or_tells_the_removal(api: Api, clock: Clock) -> None:
    """A client id deleted and sent again makes a new deployment under the same id (revision 1): its
    corrections list still reads (200) and the removal is listed with what was removed."""
    first = create_deployment(api, id="client-id-0000001", version="1")
    clock.advance(timedelta(seconds=1))
    _patch(api, first["id"], {"version": "2"})
    clock.advance(timedelta(seconds=1))
    assert _delete(api, first["id"]).status == 204
    again = create_deployment(api, id="client-id-0000001", version="5", finished_at="2024-03-01T13:00:00Z")
    assert again["id"] == first["id"] and again["revision"] == 1
    history = _history(api, first["id"])
    assert history.status == 200
    assert [i["action"] for i in history.body["items"]] == ["delete", "correct"]
    patched = _patch(api, again["id"], {"version": "6"}, headers={"If-Match": '"1"'})
    assert patched.status == 200 and patched.body["revision"] == 2


# =========================================================================================================
# PATCH / DELETE edges
# =========================================================================================================
@pytest.mark.parametrize("blank", [" ", "   ", "\t"])
def test_a_blank_version_correction_is_no_version(api: Api, clock: Clock, blank: str) -> None:
    """METRICS §1: a blank version is no version, in every dialect; a correction to one clears it, as an
    ingest of it stores none."""
    created = create_deployment(api, version="1.0")
    fresh = create_deployment(api, version=blank, finished_at="2024-03-01T13:00:00Z")
    assert fresh["version"] is None
    patched = _patch(api, created["id"], {"version": blank})
    assert patched.status in (200, 400), patched.body
    if patched.status == 200:
        assert patched.body["version"] is None, patched.body["version"]
        assert get_deployment(api, created["id"]).body["version"] is None
        record = _history(api, created["id"]).body["items"][0]
        assert record["changes"]["version"]["after"] is None, record


def test_a_blank_version_correction_of_a_versionless_deployment_changes_nothing(api: Api, clock: Clock) -> None:
    created = create_deployment(api)
    assert created["version"] is None
    patched = _patch(api, created["id"], {"version": "  "})
    if patched.status == 200:
        assert patched.body["revision"] == 1, patched.body
        assert _history(api, created["id"]).body["items"] == []


@pytest.mark.parametrize("digits", ["1234567890123", "9999999999999999"])
def test_an_if_match_of_up_to_16_digits_is_a_stale_revision_412(api: Api, clock: Clock, digits: str) -> None:
    """API.md: an If-Match revision is ASCII digits (at most 16): a valid one not current is a 412."""
    created = create_deployment(api, version="1")
    r = _patch(api, created["id"], {"version": "2"}, headers={"If-Match": f'"{digits}"'})
    _native_error(r, 412)


def test_a_body_revision_of_many_digits_is_a_412_or_400_never_applied(api: Api, clock: Clock) -> None:
    created = create_deployment(api, version="1")
    for revision in (10**16, 10**40, 2**63):
        r = _patch(api, created["id"], {"version": "2", "revision": revision})
        assert r.status in (400, 412), r.body
    assert get_deployment(api, created["id"]).body["revision"] == 1


@pytest.mark.parametrize("revision", [True, "1", 1.0])
def test_a_revision_that_is_not_an_integer_is_refused(api: Api, clock: Clock, revision: Any) -> None:
    created = create_deployment(api, version="1")
    r = _patch(api, created["id"], {"version": "2", "revision": revision})
    assert r.status in (200, 400), r.body
    if revision is True:
        _native_error(r, 400)


@pytest.mark.parametrize("if_match", ["", "   ", '""', 'W/""', '"1", "2"', "\x00", "W/", "*, 1"])
def test_if_match_garbage_is_a_400_and_changes_nothing(api: Api, clock: Clock, if_match: str) -> None:
    created = create_deployment(api, version="1")
    r = _patch(api, created["id"], {"version": "2"}, headers={"If-Match": if_match})
    assert r.status in (400, 412), (if_match, r.status, r.body)
    assert get_deployment(api, created["id"]).body["version"] == "1"


def test_correcting_or_deleting_a_deleted_deployment_is_404_and_records_nothing(api: Api, clock: Clock) -> None:
    created = create_deployment(api, version="1")
    later = create_deployment(api, version="2", finished_at="2024-03-01T13:00:00Z")
    assert _delete(api, created["id"]).status == 204
    for body in ({"version": "3"}, {"state": "Failed"}, {"change_failure": True}, {"tags": ["a:b"]}):
        _native_error(_patch(api, created["id"], body), 404)
    _native_error(_delete(api, created["id"]), 404)
    _native_error(_patch(api, later["id"], {"remediation": {"id": created["id"], "type": "rollback"}}), 400)
    items = _history(api, created["id"]).body["items"]
    assert [i["action"] for i in items] == ["delete"]


def test_a_deleted_remediation_target_leaves_figures_readable(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    bad = create_deployment(api, version="2", finished_at="2024-03-01T10:00:00Z")
    fix = create_deployment(api, version="3", finished_at="2024-03-01T11:00:00Z")
    create_deployment(api, version="4", finished_at="2024-03-01T12:00:00Z")
    assert _patch(api, bad["id"], {"remediation": {"id": fix["id"], "type": "rollback"}}).status == 200
    settle(aws, clock, lambda_context)
    assert _delete(api, fix["id"]).status == 204
    settle(aws, clock, lambda_context)
    r = get_deployment(api, bad["id"])
    assert r.status == 200, r.body
    summary = api.call(
        "GET",
        SUMMARY,
        path_params=SP,
        query={"from": "2024-02-01T00:00:00Z", "to": "2024-03-10T00:00:00Z"},
        key=ADMIN_KEY,
    )
    assert summary.status == 200, summary.body
    # The fix is gone: nothing says "rollback" any more, the deployments left are 2 (none a rollback).
    assert summary.body["change_failure_rate"]["deployments"] == 2, summary.body["change_failure_rate"]


# =========================================================================================================
# The deployment and failure lists: cursors, limits, hostile input
# =========================================================================================================
@pytest.mark.parametrize("limit", ["0", "-1", "501", "10000000000000000000000000000000", "1.5", "ten", "", "٣"])
def test_a_list_limit_out_of_range_is_a_400(api: Api, clock: Clock, limit: str) -> None:
    create_deployment(api)
    _native_error(_list(api, limit=limit), 400)
    _native_error(_list(api, FAILURES, limit=limit), 400)


def _seed_days(api: Api, days: int = 6, **fields: Any) -> list[str]:
    return [create_deployment(api, finished_at=f"2024-03-0{d}T00:00:00Z", **fields)["id"] for d in range(1, days + 1)]


def test_a_cursor_of_another_space_is_a_400(api: Api, clock: Clock, other_space: str) -> None:
    _seed_days(api)
    for d in range(1, 4):
        create_deployment(api, space=OTHER_SPACE, key=OTHER_KEY, finished_at=f"2024-03-0{d}T00:00:00Z")
    theirs = _list(api, space=OTHER_SPACE, key=OTHER_KEY, limit="1").body["next_cursor"]
    assert theirs
    _native_error(_list(api, cursor=theirs), 400)


def test_a_cursor_of_the_project_list_on_the_space_list_and_back_is_a_400(api: Api, clock: Clock) -> None:
    _seed_days(api)
    by_project = _list(api, project="shop", limit="2").body["next_cursor"]
    whole = _list(api, limit="2").body["next_cursor"]
    assert by_project and whole
    _native_error(_list(api, cursor=by_project, limit="2"), 400)
    _native_error(_list(api, cursor=whole, project="shop", limit="2"), 400)


def test_a_failure_list_cursor_on_the_deployment_list_and_back_is_a_400(api: Api, clock: Clock) -> None:
    _seed_days(api)
    for d in range(1, 5):
        body = {"project": "shop", "environment": "production", "started_at": f"2024-03-0{d}T01:00:00Z"}
        assert api.call("POST", FAILURES, path_params=SP, body=body, key=ADMIN_KEY).status == 201
    fail_cursor = _list(api, FAILURES, limit="1").body["next_cursor"]
    dep_cursor = _list(api, limit="1").body["next_cursor"]
    assert fail_cursor and dep_cursor
    _native_error(_list(api, cursor=fail_cursor), 400)
    _native_error(_list(api, FAILURES, cursor=dep_cursor), 400)


def _tamper(cursor: str, **change: Any) -> str:
    plain = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    plain.update(change)
    raw = json.dumps(plain).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%",
        "e30",  # {}
        base64.urlsafe_b64encode(b"[1,2]").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "A" * 2048,
        "A" * 2049,
        "ü" * 10,
        "\x00",
    ],
)
def test_garbage_cursors_are_a_400(api: Api, clock: Clock, cursor: str) -> None:
    _seed_days(api, 2)
    _native_error(_list(api, cursor=cursor), 400)
    _native_error(_list(api, FAILURES, cursor=cursor), 400)


def test_tampered_cursors_are_a_400_or_a_page_of_the_space(api: Api, clock: Clock, other_space: str) -> None:
    ids = _seed_days(api)
    create_deployment(api, space=OTHER_SPACE, key=OTHER_KEY, finished_at="2024-03-03T12:00:00Z")
    cursor = _list(api, limit="2").body["next_cursor"]
    plain = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    variants = [
        _tamper(cursor, PK=plain["PK"].replace(SPACE, OTHER_SPACE)),
        _tamper(cursor, GSI1PK=plain["GSI1PK"].replace(SPACE, OTHER_SPACE)),
        _tamper(cursor, GSI1SK="9999"),
        _tamper(cursor, GSI1SK=""),
        _tamper(cursor, extra="x"),
        _tamper(cursor, SK=5),
        _tamper(cursor, GSI1SK="2024-03-03T00:00:00.000Z#\U0001f600"),
    ]
    for v in variants:
        r = _list(api, cursor=v, limit="50")
        assert r.status in (200, 400), (v, r.status, r.body)
        if r.status == 200:
            assert {d["space_id"] for d in r.body["items"]} <= {SPACE}
            assert {d["id"] for d in r.body["items"]} <= set(ids)


@pytest.mark.parametrize(
    "query",
    [
        {"project": "ü" * 200},
        {"project": "\U0001f600shop"},
        {"environment": "prod\u0000uction"},
        {"tag": "é:ü"},
        {"tag": "k:" + "v" * 3990},
        {"tag": ",".join(f"k{n}:v" for n in range(21))},
        {"tag": ":"},
        {"state": "success"},
        {"state": "Bogus"},
        {"from": "yesterday"},
        {"from": "2024-03-01T00:00:00"},
        {"to": "99999999999999999999"},
        {"from": "0"},
        {"from": "-1"},
        {"project": ""},
    ],
)
def test_hostile_list_filters_are_4xx_or_an_answer_never_a_5xx(api: Api, clock: Clock, query: dict[str, str]) -> None:
    _seed_days(api, 2, tags=["é:ü"])
    r = _list(api, **query)
    assert r.status < 500, (query, r.status, r.body)
    if r.status >= 400:
        _native_error(r, r.status)
    f = _list(api, FAILURES, **{k: v for k, v in query.items() if k in ("project", "environment", "from", "to")})
    assert f.status < 500, (query, f.status, f.body)


def test_a_unicode_tag_filter_finds_its_deployments(api: Api, clock: Clock) -> None:
    tagged = create_deployment(api, tags=["équipe:données"], finished_at="2024-03-01T10:00:00Z")
    create_deployment(api, tags=["équipe:autre"], finished_at="2024-03-01T11:00:00Z")
    r = _list(api, tag="équipe:données")
    assert r.status == 200, r.body
    assert [d["id"] for d in r.body["items"]] == [tagged["id"]]


@pytest.fixture
def strict_between(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB refuses a key condition ``BETWEEN :lo AND :hi`` whose lower bound is above its upper one
    (ValidationException "The BETWEEN operator requires upper bound to be greater than or equal to lower
    bound"), which moto answers with an empty page."""
    import boto3

    from dora_insights.dal.store import Store

    call = Store.call

    def strict(self: Store, operation: str, **kwargs: Any) -> Any:
        if operation == "query" and "BETWEEN :lo AND :hi" in kwargs.get("KeyConditionExpression", ""):
            values = kwargs["ExpressionAttributeValues"]
            lo, hi = values[":lo"].get("S"), values[":hi"].get("S")
            if (
                lo is not None
                and hi is not None
                and lo.encode("utf-8", "surrogatepass") > hi.encode("utf-8", "surrogatepass")
            ):
                error = boto3.client("dynamodb", region_name="us-east-1").exceptions.from_code("ValidationException")
                raise error(
                    {
                        "Error": {
                            "Code": "ValidationException",
                            "Message": "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to"
                            " be greater than or equal to lower bound",
                        }
                    },
                    "Query",
                )
        return call(self, operation, **kwargs)

    monkeypatch.setattr(Store, "call", strict)


@pytest.mark.parametrize("route", [DEPLOYMENTS, FAILURES])
def test_a_from_after_to_is_an_empty_page_or_a_400_not_a_dynamodb_refusal(
    api: Api, clock: Clock, strict_between: None, route: str
) -> None:
    _seed_days(api, 3)
    try:
        r = _list(api, route, **{"from": "2024-03-05T00:00:00Z", "to": "2024-03-01T00:00:00Z"})
    except Exception as error:  # unhandled in the function: API Gateway answers 500
        pytest.fail(f"unhandled {type(error).__name__} (a 500 on AWS): {error}")
    assert r.status in (200, 400), (r.status, r.body)
    if r.status == 200:
        assert r.body == {"items": [], "next_cursor": None}


def test_paging_never_repeats_or_skips_under_random_limits_and_filters(api: Api, clock: Clock) -> None:
    rng = random.Random(4242)
    made: list[dict[str, Any]] = []
    for _n in range(40):
        minute = rng.randint(0, 3000)
        when = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(minutes=minute)
        made.append(
            create_deployment(
                api,
                project=rng.choice(("shop", "web")),
                environment=rng.choice(ENVS),
                state=rng.choice(("Success", "Failed")),
                tags=rng.choice(([], ["team:a"])),
                finished_at=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        )
    for _ in range(8):
        query: dict[str, str] = {}
        if rng.random() < 0.5:
            query["project"] = rng.choice(("shop", "web"))
        if rng.random() < 0.5:
            query["environment"] = rng.choice(ENVS)
        if rng.random() < 0.3:
            query["state"] = rng.choice(("Success", "Failed"))
        if rng.random() < 0.3:
            query["tag"] = "team:a"
        if rng.random() < 0.4:
            query["from"] = "2024-03-01T10:00:00Z"
            query["to"] = "2024-03-02T12:00:00Z"
        expected = [
            d
            for d in made
            if all(
                (
                    "project" not in query or d["project"] == query["project"],
                    "environment" not in query or d["environment"] == query["environment"],
                    "state" not in query or d["state"] == query["state"],
                    "tag" not in query or query["tag"] in d["tags"],
                    "from" not in query or query["from"][:19] <= d["finished_at"][:19] <= query["to"][:19],
                )
            )
        ]
        expected.sort(key=lambda d: (d["finished_at"], d["id"]), reverse=True)
        limit = str(rng.randint(1, 7))
        seen: list[str] = []
        cursor = None
        for _page in range(100):
            page = _list(api, limit=limit, **query, **({"cursor": cursor} if cursor else {}))
            assert page.status == 200, (query, page.body)
            assert len(page.body["items"]) <= int(limit)
            seen += [d["id"] for d in page.body["items"]]
            cursor = page.body["next_cursor"]
            if cursor is None:
                break
        assert seen == [d["id"] for d in expected], query


def test_a_patched_deployment_is_listed_with_its_correction(api: Api, clock: Clock) -> None:
    created = create_deployment(api, version="1", tags=["team:a"])
    _patch(api, created["id"], {"version": "2", "tags": ["team:b"], "state": "Failed"})
    listed = {d["id"]: d for d in list_all(api)}
    assert (listed[created["id"]]["version"], listed[created["id"]]["tags"], listed[created["id"]]["state"]) == (
        "2",
        ["team:b"],
        "Failed",
    )
    assert listed[created["id"]]["revision"] == 2
    assert [d["id"] for d in _list(api, state="Failed").body["items"]] == [created["id"]]
    assert _list(api, tag="team:a").body["items"] == []


# =========================================================================================================
# Failure events: reads, removal, and the numbers
# =========================================================================================================
def test_a_failure_list_pages_newest_start_first_without_repeats(api: Api, clock: Clock) -> None:
    rng = random.Random(77)
    starts = sorted({rng.randint(0, 5000) for _ in range(25)})
    made = []
    for s in starts:
        t = datetime(2024, 2, 27, tzinfo=UTC) + timedelta(minutes=s)
        body = {
            "project": rng.choice(("shop", "web")),
            "environment": rng.choice(ENVS),
            "started_at": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        r = api.call("POST", FAILURES, path_params=SP, body=body, key=ADMIN_KEY)
        assert r.status == 201, r.body
        made.append(r.body)
    expected = sorted(made, key=lambda f: (f["started_at"], f["id"]), reverse=True)
    for limit in ("1", "4", "500"):
        seen, cursor = [], None
        while True:
            page = _list(api, FAILURES, limit=limit, **({"cursor": cursor} if cursor else {}))
            assert page.status == 200, page.body
            seen += [f["id"] for f in page.body["items"]]
            cursor = page.body["next_cursor"]
            if cursor is None:
                break
        assert seen == [f["id"] for f in expected], limit
    shop_prod = [f["id"] for f in expected if f["projects"] == ["shop"] and f["environment"] == "production"]
    assert [
        f["id"]
        for f in list_all(api, FAILURES, limit=3)
        if f["projects"] == ["shop"] and f["environment"] == "production"
    ] == shop_prod
    got = _list(api, FAILURES, project="shop", environment="production", limit="500").body["items"]
    assert [f["id"] for f in got] == shop_prod


def test_a_deleted_failure_leaves_the_numbers_of_one_never_sent(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str
) -> None:
    clock.now = datetime(2024, 3, 2, 12, 0, tzinfo=UTC)

    def history(space: str, key: str, with_failure: bool) -> tuple[dict[str, str], str | None]:
        ids = {}
        for n, (v, hour) in enumerate((("1", 8), ("2", 10), ("3", 14))):
            ids[f"d{n}"] = create_deployment(
                api, space=space, key=key, version=v, finished_at=f"2024-03-01T{hour:02d}:00:00Z"
            )["id"]
        fid = None
        if with_failure:
            body = {
                "project": "shop",
                "environment": "production",
                "started_at": "2024-03-01T11:00:00Z",
                "finished_at": "2024-03-01T11:30:00Z",
                "version": "2",
            }
            r = api.call("POST", FAILURES, path_params={"spaceId": space}, body=body, key=key)
            assert r.status == 201, r.body
            fid = r.body["id"]
        return ids, fid

    ids, fid = history(SPACE, ADMIN_KEY, True)
    settle(aws, clock, lambda_context)
    assert get_deployment(api, ids["d1"]).body["figures"]["change_failure"] is True
    r = api.call("DELETE", FAILURE, path_params={**SP, "failureId": str(fid)}, key=ADMIN_KEY)
    assert r.status == 204
    settle(aws, clock, lambda_context)
    fresh, _ = history(OTHER_SPACE, OTHER_KEY, False)
    settle(aws, clock, lambda_context)
    problems = _diff(
        _per_deployment(api, ids, space=SPACE, key=ADMIN_KEY),
        _per_deployment(api, fresh, space=OTHER_SPACE, key=OTHER_KEY),
    ) + _diff(_aggregates(api, space=SPACE, key=ADMIN_KEY), _aggregates(api, space=OTHER_SPACE, key=OTHER_KEY))
    assert not problems, "\n".join(problems)


def test_double_delete_of_a_failure_is_404_and_keeps_the_record(api: Api, clock: Clock) -> None:
    body = {"id": "incident-000000001", "project": "shop", "started_at": "2024-03-01T11:00:00Z"}
    created = api.call("POST", FAILURES, path_params=SP, body=body, key=ADMIN_KEY)
    assert created.status == 201
    one = {**SP, "failureId": "incident-000000001"}
    assert api.call("DELETE", FAILURE, path_params=one, key=ADMIN_KEY).status == 204
    _native_error(api.call("DELETE", FAILURE, path_params=one, key=ADMIN_KEY), 404)
    _native_error(api.call("GET", FAILURE, path_params=one, key=ADMIN_KEY), 404)
    again = api.call("POST", FAILURES, path_params=SP, body=body, key=ADMIN_KEY)
    assert again.status == 201, again.body
    assert _list(api, FAILURES).body["items"][0]["id"] == "incident-000000001"


@pytest.mark.parametrize("failure_id", ["ü" * 10, "a" * 139, "..", "a/b", "%2F"])
def test_hostile_failure_ids_are_4xx(api: Api, clock: Clock, failure_id: str) -> None:
    for method in ("GET", "DELETE"):
        r = api.call(method, FAILURE, path_params={**SP, "failureId": failure_id}, key=ADMIN_KEY)
        assert 400 <= r.status < 500, (method, r.status, r.body)


@pytest.mark.parametrize("deployment_id", ["ü" * 10, "a" * 129, "..", "\U0001f600"])
def test_hostile_deployment_ids_are_4xx(api: Api, clock: Clock, deployment_id: str) -> None:
    for method, body in (("GET", None), ("DELETE", None), ("PATCH", {"version": "1"})):
        r = api.call(method, ONE, path_params={**SP, "deploymentId": deployment_id}, body=body, key=ADMIN_KEY)
        assert 400 <= r.status < 500, (method, r.status, r.body)
    r = _history(api, deployment_id)
    assert 400 <= r.status < 500, (r.status, r.body)


# =========================================================================================================
# Roles
# =========================================================================================================
@pytest.fixture
def read_only_key(store: Any, space: str) -> str:
    from dora_insights.logic import admin

    key = "read-only-key-0000000000000000"
    admin.create_api_key(store, SPACE, "reader", ("deployments:read",), datetime(2024, 3, 1, tzinfo=UTC), key=key)
    return key


def test_a_read_key_reads_and_cannot_correct_or_delete(api: Api, clock: Clock, read_only_key: str) -> None:
    created = create_deployment(api, version="1")
    assert get_deployment(api, created["id"], key=read_only_key).status == 200
    assert _list(api, key=read_only_key).status == 200
    _native_error(_patch(api, created["id"], {"version": "2"}, key=read_only_key), 403)
    _native_error(_delete(api, created["id"], key=read_only_key), 403)
    assert get_deployment(api, created["id"]).body["revision"] == 1
    r = api.call("GET", CORRECTIONS, path_params={**SP, "deploymentId": created["id"]}, key=read_only_key)
    assert r.status == 200


# =========================================================================================================
# Freshness right after a correction (METRICS §8: a read brings a small stream up to date first)
# =========================================================================================================
def _summary_now(api: Api) -> dict[str, Any]:
    r = api.call(
        "GET",
        SUMMARY,
        path_params=SP,
        query={"from": "2024-02-01T00:00:00Z", "to": "2024-03-10T00:00:00Z"},
        key=ADMIN_KEY,
    )
    assert r.status == 200, r.body
    return r.body  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", ["override", "state", "delete", "version"])
def test_a_read_right_after_a_correction_counts_it(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, kind: str
) -> None:
    clock.now = datetime(2024, 3, 2, 0, 0, tzinfo=UTC)
    a = create_deployment(api, version="1", started_at="2024-03-01T09:00:00Z", finished_at="2024-03-01T10:00:00Z")
    b = create_deployment(api, version="2", started_at="2024-03-01T10:30:00Z", finished_at="2024-03-01T11:00:00Z")
    settle(aws, clock, lambda_context)
    if kind == "override":
        assert _patch(api, a["id"], {"change_failure": True}).status == 200
    elif kind == "state":
        assert _patch(api, a["id"], {"state": "Failed"}).status == 200
    elif kind == "delete":
        assert _delete(api, a["id"]).status == 204
    else:
        assert _patch(api, b["id"], {"version": "1"}).status == 200
    summary = _summary_now(api)
    assert summary["pending"] == 0, summary
    if kind == "override":
        assert summary["change_failure_rate"]["change_failures"] == 1
        got = get_deployment(api, a["id"]).body
        assert got["pending"] == 0 and got["figures"]["change_failure"] is True
    elif kind == "state":
        assert summary["change_failure_rate"]["change_failures"] == 1
        assert get_deployment(api, b["id"]).body["figures"]["time_to_recovery_seconds"] == 3600
    elif kind == "delete":
        assert summary["deployments"] == 1
        assert get_deployment(api, b["id"]).body["figures"]["previous_success_id"] is None
    else:
        figures = get_deployment(api, b["id"]).body["figures"]
        # version 1 was first seen at 09:00 (a's start); b's release is 1 now, already deployed by a.
        assert figures["lead_time_from_version"] in (None, "1"), figures


def test_a_tag_correction_stores_what_an_ingest_of_the_same_tags_stores(api: Api, clock: Clock) -> None:
    tags = ["team:a", "team:a", "tier:1"]
    sent = create_deployment(api, tags=tags, finished_at="2024-03-01T10:00:00Z")
    corrected = create_deployment(api, finished_at="2024-03-01T11:00:00Z")
    r = _patch(api, corrected["id"], {"tags": tags})
    assert r.status == 200, r.body
    assert get_deployment(api, corrected["id"]).body["tags"] == get_deployment(api, sent["id"]).body["tags"]
    again = _patch(api, corrected["id"], {"tags": get_deployment(api, sent["id"]).body["tags"]})
    assert again.body["revision"] == r.body["revision"] or again.body["tags"] == r.body["tags"]


def test_list_filters_take_a_name_or_an_id(api: Api, clock: Clock) -> None:
    made = create_deployment(api, project="shop", environment="staging", tenant="acme")
    other = create_deployment(api, project="web", environment="production", finished_at="2024-03-01T13:00:00Z")
    for by_name, by_id in (
        ({"project": "shop"}, {"project": made["project_id"]}),
        ({"environment": "staging"}, {"environment": made["environment_id"]}),
        ({"tenant": "acme"}, {"tenant": made["tenant_id"]}),
    ):
        names = [d["id"] for d in _list(api, **by_name).body["items"]]
        ids = [d["id"] for d in _list(api, **by_id).body["items"]]
        assert names == ids == [made["id"]], (by_name, names, ids)
    assert [d["id"] for d in _list(api, project="nope").body["items"]] == []
    assert {d["id"] for d in _list(api).body["items"]} == {made["id"], other["id"]}


def test_a_blank_version_correction_gives_the_numbers_of_a_versionless_ingest(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str
) -> None:
    clock.now = datetime(2024, 3, 1, 20, 0, tzinfo=UTC)
    h = H(
        [
            D("d0", "production", 0, "Success", "1.0", 5),
            D("d1", "production", 60, "Success", "1.1", 5),
            D("d2", "staging", 90, "Success", "1.1", 5),
            D("d3", "production", 120, "Success", "1.2", 5),
        ],
        [],
    )
    ids = {d.label: _post_dep(api, d, space=SPACE, key=ADMIN_KEY) for d in h.ordered()}
    settle(aws, clock, lambda_context)
    assert _patch(api, ids["d1"], {"version": "   "}).status == 200
    h.by("d1").version = None
    settle(aws, clock, lambda_context)
    fresh = {d.label: _post_dep(api, d, space=OTHER_SPACE, key=OTHER_KEY) for d in h.ordered()}
    settle(aws, clock, lambda_context)
    problems = _diff(
        _per_deployment(api, ids, space=SPACE, key=ADMIN_KEY),
        _per_deployment(api, fresh, space=OTHER_SPACE, key=OTHER_KEY),
    ) + _diff(_aggregates(api, space=SPACE, key=ADMIN_KEY), _aggregates(api, space=OTHER_SPACE, key=OTHER_KEY))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "raw",
    [
        "null",
        "[]",
        '"version"',
        "1",
        "{",
        '{"version": "2", "version": null}',
        json.dumps({"tags": ["a:b"] * 101}),
        json.dumps({"version": "x" * 201}),
        json.dumps({"remediation": {"id": "x" * 129, "type": "rollback"}}),
        json.dumps({"remediation": "rollback"}),
        json.dumps({"change_failure": 1}),
        json.dumps({"state": "success"}),
        json.dumps({"tags": "team:a"}),
        json.dumps({"version": 2}),
        json.dumps({"revision": -1, "version": "2"}),
    ],
)
def test_hostile_patch_bodies_are_4xx_and_change_nothing_or_apply_cleanly(api: Api, clock: Clock, raw: str) -> None:
    created = create_deployment(api, version="1")
    r = api.call("PATCH", ONE, path_params={**SP, "deploymentId": created["id"]}, raw_body=raw, key=ADMIN_KEY)
    assert r.status < 500, (raw, r.status, r.body)
    if r.status >= 400:
        _native_error(r, r.status)
        assert get_deployment(api, created["id"]).body["revision"] == 1


@pytest.mark.parametrize("cursor", ["x", "e30", "A" * 257, base64.urlsafe_b64encode(b'{"d":"a","p":0}').decode()])
def test_a_garbage_attribution_cursor_is_a_400(api: Api, clock: Clock, cursor: str) -> None:
    created = create_deployment(api)
    _native_error(get_deployment(api, created["id"], query={"attribution_cursor": cursor}), 400)


def test_a_stale_if_match_on_a_patch_that_changes_nothing_is_still_412(api: Api, clock: Clock) -> None:
    created = create_deployment(api, version="1")
    assert _patch(api, created["id"], {"version": "2"}, headers={"If-Match": '"1"'}).status == 200
    _native_error(_patch(api, created["id"], {"version": "2"}, headers={"If-Match": '"1"'}), 412)
    _native_error(_patch(api, created["id"], {"version": "3"}, headers={"If-Match": '"1"'}), 412)
    assert get_deployment(api, created["id"]).body["version"] == "2"


@pytest.mark.parametrize("cause", ["none", "deployment", "commit_less_version"])
def test_a_deleted_multi_project_failure_leaves_the_numbers_of_one_never_sent(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str, cause: str
) -> None:
    clock.now = datetime(2024, 3, 2, 12, 0, tzinfo=UTC)

    def history(space: str, key: str) -> dict[str, str]:
        ids = {}
        for project in ("shop", "web"):
            for n, hour in enumerate((8, 10, 14)):
                ids[f"{project}{n}"] = create_deployment(
                    api,
                    space=space,
                    key=key,
                    project=project,
                    version=f"{n}",
                    finished_at=f"2024-03-01T{hour:02d}:00:00Z",
                )["id"]
        return ids

    ids = history(SPACE, ADMIN_KEY)
    body: dict[str, Any] = {
        "projects": ["shop", "web"],
        "environment": "production",
        "started_at": "2024-03-01T11:00:00Z",
        "finished_at": "2024-03-01T11:30:00Z",
    }
    if cause == "deployment":
        body["deployment_id"] = ids["web1"]
    elif cause == "commit_less_version":
        body["version"] = "1"
    r = api.call("POST", FAILURES, path_params=SP, body=body, key=ADMIN_KEY)
    assert r.status == 201, r.body
    settle(aws, clock, lambda_context)
    assert any(get_deployment(api, i).body["figures"]["change_failure"] for i in ids.values())
    assert api.call("DELETE", FAILURE, path_params={**SP, "failureId": r.body["id"]}, key=ADMIN_KEY).status == 204
    settle(aws, clock, lambda_context)
    fresh = history(OTHER_SPACE, OTHER_KEY)
    settle(aws, clock, lambda_context)
    problems = _diff(
        _per_deployment(api, ids, space=SPACE, key=ADMIN_KEY),
        _per_deployment(api, fresh, space=OTHER_SPACE, key=OTHER_KEY),
    ) + _diff(_aggregates(api, space=SPACE, key=ADMIN_KEY), _aggregates(api, space=OTHER_SPACE, key=OTHER_KEY))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("state", ["Canceled", "Executing", "Queued"])
def test_an_override_on_a_deployment_that_counts_in_no_metric_counts_nowhere(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, state: str
) -> None:
    """METRICS §2: Canceled, Executing and Queued deployments count in no metric, whatever a correction
    says of their change failure."""
    clock.now = datetime(2024, 3, 2, 0, 0, tzinfo=UTC)
    create_deployment(api, version="1", finished_at="2024-03-01T10:00:00Z")
    other = create_deployment(api, version="2", state=state, finished_at="2024-03-01T11:00:00Z")
    settle(aws, clock, lambda_context)
    assert _patch(api, other["id"], {"change_failure": True}).status == 200
    settle(aws, clock, lambda_context)
    summary = _summary_now(api)
    assert (summary["deployments"], summary["change_failure_rate"]["change_failures"]) == (1, 0), summary
    q = {"metric": "change_failure_rate", "start_date": "2024-02-29", "end_date": "2024-03-02", "interval": "all"}
    metrics = api.call("GET", METRICS, path_params=SP, query=q, key=ADMIN_KEY)
    assert metrics.status == 200, metrics.body


def test_a_remediation_by_version_names_the_first_completed_deployment_of_that_version(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    clock.now = datetime(2024, 3, 2, 0, 0, tzinfo=UTC)
    bad = create_deployment(api, version="2", finished_at="2024-03-01T10:00:00Z")
    create_deployment(api, version="3", state="Executing", finished_at="2024-03-01T11:00:00Z")
    fix = create_deployment(api, version="3", finished_at="2024-03-01T12:00:00Z")
    create_deployment(api, version="3", finished_at="2024-03-01T13:00:00Z")
    assert _patch(api, bad["id"], {"remediation": {"version": "3", "type": "rollforward"}}).status == 200
    settle(aws, clock, lambda_context)
    figures = get_deployment(api, bad["id"]).body["figures"]
    assert figures["change_failure"] is True and figures["change_failure_rule"] == 3, figures
    assert [r["deployment_id"] for r in figures["change_failure_reasons"] if r["rule"] == 3] == [fix["id"]], figures
    assert get_deployment(api, fix["id"]).body["figures"]["rework_reason"] == "fix"


def test_a_deployment_read_carries_freshness_headers_and_its_etag(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    created = create_deployment(api, version="1")
    settle(aws, clock, lambda_context)
    r = get_deployment(api, created["id"])
    assert r.header("ETag") == '"1"'
    assert r.header("X-Dora-Pending") == str(r.body["pending"])
    assert r.header("X-Dora-As-Of") is not None and r.body["as_of"] is not None


# =========================================================================================================
# Index lag (API.md "Consistency"): a correction or removal right after the next deployment was posted
# =========================================================================================================


@pytest.mark.parametrize("how", ["delete", "state"])
def test_a_correction_right_after_the_next_deployment_was_posted_hands_its_commits_on(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, replica_lag: ReplicaLag, how: str
) -> None:
    """METRICS §5: a removal (or a state correction making a success a failure) hands what the deployment
    shipped to the stream's next success. A client that posts the next deployment and removes the previous
    one a moment later (within the index's lag, API.md "Consistency") must get the same."""
    _send_changes(api, commits=[_commit(n, n) for n in range(6)])
    repo = {"repository": "acme/shop"}
    create_deployment(api, commit_sha=_sha(0), finished_at="2024-03-01T10:00:00Z", **repo)
    middle = create_deployment(api, commit_sha=_sha(2), finished_at="2024-03-01T11:00:00Z", **repo)
    replica_lag.on(index_only=True)
    last = create_deployment(api, commit_sha=_sha(4), finished_at="2024-03-01T12:00:00Z", **repo)
    assert sorted(get_deployment(api, last["id"]).body["attribution"]["commits"]) == [_sha(3), _sha(4)]
    if how == "delete":
        assert _delete(api, middle["id"]).status == 204
    else:
        assert _patch(api, middle["id"], {"state": "Failed"}).status == 200
    replica_lag.settle()
    replica_lag.active = False
    settle(aws, clock, lambda_context)
    shipped = sorted(get_deployment(api, last["id"]).body["attribution"]["commits"])
    assert shipped == [_sha(n) for n in range(1, 5)], (shipped, replica_lag.hidden)


def test_a_failure_restored_to_success_right_after_the_next_deployment_was_posted_takes_its_commits_back(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, replica_lag: ReplicaLag
) -> None:
    _send_changes(api, commits=[_commit(n, n) for n in range(6)])
    repo = {"repository": "acme/shop"}
    create_deployment(api, commit_sha=_sha(0), finished_at="2024-03-01T10:00:00Z", **repo)
    middle = create_deployment(api, commit_sha=_sha(2), state="Failed", finished_at="2024-03-01T11:00:00Z", **repo)
    replica_lag.on(index_only=True)
    last = create_deployment(api, commit_sha=_sha(4), finished_at="2024-03-01T12:00:00Z", **repo)
    assert sorted(get_deployment(api, last["id"]).body["attribution"]["commits"]) == [_sha(n) for n in range(1, 5)]
    assert _patch(api, middle["id"], {"state": "Success"}).status == 200
    replica_lag.settle()
    replica_lag.active = False
    settle(aws, clock, lambda_context)
    got_middle = sorted(get_deployment(api, middle["id"]).body["attribution"]["commits"])
    got_last = sorted(get_deployment(api, last["id"]).body["attribution"]["commits"])
    assert (got_middle, got_last) == ([_sha(1), _sha(2)], [_sha(3), _sha(4)]), replica_lag.hidden


def test_the_corrections_of_a_deployment_just_created_read_as_an_empty_list(
    api: Api, clock: Clock, replica_lag: ReplicaLag
) -> None:
    """API.md "Consistency": a deployment is read by its id at once after its create; its corrections list
    may lag, but a deployment that exists is no 404 (its records outlive it; none yet is an empty list)."""
    replica_lag.on()
    created = create_deployment(api, version="1")
    assert get_deployment(api, created["id"]).status == 200
    r = _history(api, created["id"])
    assert r.status == 200 and r.body == {"items": [], "next_cursor": None}, (r.status, r.body, replica_lag.hidden)


def test_a_read_right_after_a_version_correction_elsewhere_is_current_or_says_pending(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    clock.now = datetime(2024, 3, 2, 0, 0, tzinfo=UTC)
    early = create_deployment(
        api,
        environment="production",
        version="1.1",
        started_at="2024-03-01T06:00:00Z",
        finished_at="2024-03-01T07:00:00Z",
    )
    staged = create_deployment(
        api,
        environment="staging",
        version="1.1",
        started_at="2024-03-01T09:00:00Z",
        finished_at="2024-03-01T10:00:00Z",
    )
    settle(aws, clock, lambda_context)
    assert get_deployment(api, staged["id"]).body["figures"]["lead_time_seconds"] == 4 * 3600
    assert _patch(api, early["id"], {"version": "0.9"}).status == 200
    now = get_deployment(api, staged["id"]).body
    settle(aws, clock, lambda_context)
    settled = get_deployment(api, staged["id"]).body
    assert settled["figures"]["lead_time_seconds"] == 3600, settled["figures"]
    assert now["pending"] == 1 or now["figures"]["lead_time_seconds"] == 3600, (now["pending"], now["figures"])


# =========================================================================================================
# Property with code: corrections (state incl. Executing/Queued, override, remediation, version, tags,
# removal) of a history naming commits, compared through every number with a fresh ingest
# =========================================================================================================
from tests.integration import test_correction_property as _cp  # noqa: E402


def _code_plan(seed: int) -> tuple[Any, list[tuple[Any, ...]]]:
    rng = random.Random(91_000 + seed)
    history = _cp._random_history(rng)
    for d in history.deps:
        d.version = f"1.{d.n}"  # type: ignore[attr-defined]
        d.tags = []  # type: ignore[attr-defined]
    model = [(d.label, d.env, d.minute) for d in history.deps]
    alive = [m[0] for m in model]
    cs: list[tuple[Any, ...]] = []
    for _ in range(rng.randint(1, 4)):
        label = rng.choice(alive)
        env, minute = next((e, m) for lab, e, m in model if lab == label)
        later = [lab for lab, e, m in model if lab in alive and e == env and m > minute]
        kinds = ["state", "state", "override", "version", "tags"] + (["remediation"] if later else [])
        targeted = {c[3] for c in cs if c[0] == "remediation"}
        if len(alive) > 2 and label not in targeted:
            kinds.append("delete")
        kind = rng.choice(kinds)
        if kind == "state":
            cs.append(
                ("state", label, rng.choice(("Success", "Failed", "TimedOut", "Canceled", "Executing", "Queued")))
            )
        elif kind == "override":
            cs.append(("override", label, rng.choice((True, False, None))))
        elif kind == "version":
            cs.append(("version", label, rng.choice(("1.0", "1.3", "9.9", None))))
        elif kind == "tags":
            cs.append(("tags", label, rng.choice(([], ["team:x"]))))
        elif kind == "remediation":
            cs.append(("remediation", label, rng.choice(("rollback", "rollforward")), rng.choice(later)))
        else:
            cs.append(("delete", label))
            alive.remove(label)
    return history, cs


def _code_body(d: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"state": d.state_now, "tags": list(d.tags)}
    if d.version is not None:
        body["version"] = d.version
    if d.n is not None:
        body |= {"repository": _cp.REPO, "commit_sha": _sha(d.n)}
    return body


@pytest.mark.parametrize("seed", _seeds(0, 1, 2))
def test_random_corrections_of_a_history_with_code_give_the_numbers_of_a_fresh_ingest(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str, seed: int
) -> None:
    history, cs = _code_plan(seed)
    for d in history.deps:
        d.state_now = d.state  # type: ignore[attr-defined]
    _cp._push(api, history, space=SPACE, key=ADMIN_KEY)
    ids = {
        d.label: str(create_deployment(api, environment=d.env, finished_at=d.finished_at, **_code_body(d))["id"])
        for d in history.in_order()
    }
    settle(aws, clock, lambda_context)
    for c in cs:
        kind, label, *rest = c
        d = history.by_label(label)
        if kind == "delete":
            assert _delete(api, ids.pop(label)).status == 204
            history.deps.remove(d)
            continue
        if kind == "state":
            d.state_now, body = rest[0], {"state": rest[0]}
        elif kind == "override":
            d.override, body = rest[0], {"change_failure": rest[0]}
        elif kind == "version":
            d.version, body = rest[0], {"version": rest[0]}
        elif kind == "tags":
            d.tags, body = list(rest[0]), {"tags": rest[0]}
        else:
            d.remediation, body = (rest[0], rest[1]), {"remediation": {"type": rest[0], "id": ids[rest[1]]}}
        r = _patch(api, ids[label], body)
        assert r.status == 200, (c, r.body)
    settle(aws, clock, lambda_context)
    got = _cp._numbers(api, ids, space=SPACE, key=ADMIN_KEY)
    got_all = _aggregates(api, space=SPACE, key=ADMIN_KEY)

    _cp._push(api, history, space=OTHER_SPACE, key=OTHER_KEY)
    fresh = {
        d.label: str(
            create_deployment(
                api, space=OTHER_SPACE, key=OTHER_KEY, environment=d.env, finished_at=d.finished_at, **_code_body(d)
            )["id"]
        )
        for d in history.in_order()
    }
    for d in history.in_order():
        body = {}
        if d.override is not None:
            body["change_failure"] = d.override
        if d.remediation is not None:
            body["remediation"] = {"type": d.remediation[0], "id": fresh[d.remediation[1]]}
        if body:
            assert _patch(api, fresh[d.label], body, space=OTHER_SPACE, key=OTHER_KEY).status == 200
    settle(aws, clock, lambda_context)
    want = _cp._numbers(api, fresh, space=OTHER_SPACE, key=OTHER_KEY)
    want_all = _aggregates(api, space=OTHER_SPACE, key=OTHER_KEY)
    problems = _cp._differences(got, want) + _diff(got_all, want_all)
    assert not problems, "\n".join(problems) + f"\ncorrections: {cs}\n{_cp._describe(history)}"


@pytest.mark.parametrize("route", [DEPLOYMENTS, FAILURES])
@pytest.mark.parametrize("since", ["9000-01-01T00:00:00Z", "2099-12-31T23:59:59Z"])
def test_a_from_in_a_far_year_alone_is_an_empty_page_not_a_dynamodb_refusal(
    api: Api, clock: Clock, strict_between: None, route: str, since: str
) -> None:
    """``from`` without ``to``: the open upper bound must still sort above any ``from`` the API takes."""
    _seed_days(api, 2)
    try:
        r = _list(api, route, **{"from": since})
    except Exception as error:  # unhandled in the function: API Gateway answers 500
        pytest.fail(f"unhandled {type(error).__name__} (a 500 on AWS): {error}")
    assert r.status in (200, 400), (r.status, r.body)
    if r.status == 200:
        assert r.body == {"items": [], "next_cursor": None}
