"""Crashes in the middle of writes other than plain ingest: corrections, DX upserts, failure events, incident
webhooks, settings, the Orlo workflow, the scheduled recompute and the retry queue's consumer.

A wrapper of botocore's ``BaseClient._make_api_call`` (only the functions' clients, ``dal.aws.client``) raises
at the k-th AWS call of one operation's requests: ``before`` (an AWS error before the call: nothing written),
``after`` (the call succeeded, then AWS's "may or may not have succeeded" error) or ``crash`` (the call
succeeded, then the function dies with an uncaught ``BaseException``, as a killed Lambda process). The client
then does what a real one does: sends the same request again, byte for byte, until a 2xx or a 4xx. Then the
retry queue is drained, the clock moved past the outbox's due time and the scheduled recompute run, a few
times. The final state is compared with the same operation run without any fault in another space: stored
deployments, their attribution and figures, corrections history, failure events, /dora/metrics, /summary and a
report's metrics.

``DORA_CRASH_FULL=1`` sweeps every call index of every mode (slower); by default a deterministic subset of
about ``DORA_CRASH_BUDGET`` (4 in the suite; a read-only review ran 10, and every index in crash mode for
operations of up to 40 calls) runs per operation; ``DORA_CRASH_MODES=crash`` (comma-separated) picks the modes.

What the review found, each failing on the code before its fix: a stream whose scheduled recompute failed
once kept showing ``stream_health: failing`` after a read's refresh recomputed it (``recompute._caught_up``
clears it); a DX upsert turning a success into a failure, cut after its replacement, left the deployment's
attribution null for good (``attribution.resume`` records it on the resend).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import NOW, Api, Aws, Clock, HttpResult
from tests.support.code import commit, send_changes, sha
from tests.support.native import list_all
from tests.support.recompute import scheduled_run
from tests.support.retries import drain_retries, settle

REPO = "acme/shop"
DEPS = "/api/{spaceId}/deployments"
ONE = "/api/{spaceId}/deployments/{deploymentId}"
CORRECTIONS = "/api/{spaceId}/deployments/{deploymentId}/corrections"
FAILS = "/api/{spaceId}/failures"
FAIL = "/api/{spaceId}/failures/{failureId}"
METRICS = "/api/{spaceId}/dora/metrics"
PD_SECRET = "pd-signing-secret-0123456789abcdef"
OG_SECRET = "og-shared-secret-0123456789abcdef"
FULL = os.environ.get("DORA_CRASH_FULL") == "1"
BUDGET = int(os.environ.get("DORA_CRASH_BUDGET", "4"))


# --- the injector -----------------------------------------------------------------------------------------
class Crash(BaseException):
    """The function process died right after a write (nothing in the handler catches a BaseException)."""


def _client_error(operation: str, code: str, status: int) -> Exception:
    from botocore.exceptions import ClientError

    response = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"RequestId": "x", "HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0},
    }
    return ClientError(response, operation)  # type: ignore[no-any-return]


@dataclass
class Injector:
    """Counts the AWS calls the functions make (their clients: ``dal.aws.client``'s adaptive-retry config;
    the harness's own boto3 clients are left alone) while armed; raises at call ``k`` (1-based) in
    ``mode``. Installed on ``BaseClient._make_api_call`` (botocore's own retries happen inside it), so it
    reaches every client a function holds, cached ones from earlier tests included."""

    armed: bool = False
    k: int = 0
    mode: str = ""  # "" count only; "before", "after", "crash"
    count: int = 0
    fired: bool = False
    calls: list[str] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        injector = self

        def _make_api_call(client: Any, operation: str, params: Any) -> Any:
            retries = getattr(client.meta.config, "retries", None) or {}
            if not injector.armed or retries.get("mode") != "adaptive":
                return original(client, operation, params)
            injector.count += 1
            injector.calls.append(operation)
            hit = injector.count == injector.k and not injector.fired
            if hit and injector.mode == "before":
                injector.fired = True
                raise _client_error(operation, "InternalServerError", 500)
            result = original(client, operation, params)
            if hit and injector.mode == "crash":
                injector.fired = True
                raise Crash(f"died after call {injector.k} ({operation})")
            if hit and injector.mode == "after":
                injector.fired = True
                raise _client_error(operation, "InternalServerError", 500)
            return result

        _make_api_call.__wrapped__ = original  # type: ignore[attr-defined]  # dora_local.iam sees its own wrapper
        monkeypatch.setattr(BaseClient, "_make_api_call", _make_api_call)

    def arm(self, k: int = 0, mode: str = "") -> None:
        self.armed, self.k, self.mode, self.count, self.fired, self.calls = True, k, mode, 0, False, []

    def disarm(self) -> None:
        self.armed = False


@pytest.fixture
def injector(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Injector]:
    inj = Injector()
    inj.install(monkeypatch)
    try:
        yield inj
    finally:
        inj.disarm()


Request = Callable[[Api, "Ctx"], HttpResult]


@dataclass
class Ctx:
    space: str
    key: str
    notes: list[str] = field(default_factory=list)
    extra_ids: list[str] = field(default_factory=list)
    orlo: bool = False
    vars: dict[str, Any] = field(default_factory=dict)


def send(api: Api, ctx: Ctx, request: Request, inj: Injector | None, *, tries: int = 6) -> HttpResult:
    """Send ``request``; a 5xx (or a crash) is sent again, the injector still armed (it fires once)."""
    last: HttpResult | None = None
    for _ in range(tries):
        try:
            last = request(api, ctx)
            if 400 <= last.status < 500 and ctx.notes:
                ctx.notes.append(f"then {last.status}: {json.dumps(last.body)[:300]}")
        except Crash as died:
            ctx.notes.append(f"crash: {died}")
            last = HttpResult(500, {}, {"message": "Internal Server Error"})
            continue
        if last.status < 500:
            return last
        ctx.notes.append(f"{last.status}: {json.dumps(last.body)[:200]}")
    assert last is not None
    return last


def run_operation(api: Api, ctx: Ctx, op: list[Request], inj: Injector, k: int = 0, mode: str = "") -> list[int]:
    inj.arm(k, mode)
    try:
        statuses = [send(api, ctx, r, inj).status for r in op]
    finally:
        inj.disarm()
    return statuses


# --- the world each space starts from -----------------------------------------------------------------------
def _at(minute: int) -> str:
    m = 600 + minute
    return f"2024-03-01T{m // 60:02d}:{m % 60:02d}:00Z"


@dataclass(frozen=True)
class D:
    label: str
    minute: int
    n: int | None
    state: str = "Success"
    env: str = "production"

    def body(self) -> dict[str, Any]:
        b: dict[str, Any] = {
            "id": f"dep-{self.label}",
            "project": "shop",
            "environment": self.env,
            "finished_at": _at(self.minute),
            "started_at": _at(self.minute - 1),
            "version": f"1.{self.n}" if self.n is not None else "0.0",
            "state": self.state,
        }
        if self.n is not None:
            b.update(repository=REPO, commit_sha=sha(self.n))
        return b


BASE = (
    D("a", 0, 1),
    D("b", 20, 2),
    D("c", 40, 3, "Failed"),
    D("d", 60, 4),
    D("e", 80, 5),
)
COMMITS = 7


def make_space(store: Any, space: str, key: str) -> Ctx:
    from dora_insights.logic import admin

    admin.ensure_space(store, space, space, NOW)
    admin.ensure_api_key(store, space, "admin", key, NOW)
    return Ctx(space, key)


def populate(api: Api, ctx: Ctx, deps: tuple[D, ...] = BASE, *, failures: bool = True) -> None:
    sp = {"spaceId": ctx.space}
    services = {"svc-prod": {"project": "shop", "environment": "production"}}
    r = api.call(
        "PUT",
        "/api/{spaceId}/webhooks/pagerduty",
        path_params=sp,
        body={"secret": PD_SECRET, "services": services},
        key=ctx.key,
    )
    assert r.status == 200, r.body
    r = api.call(
        "PUT",
        "/api/{spaceId}/webhooks/opsgenie",
        path_params=sp,
        body={"secret": OG_SECRET, "services": services},
        key=ctx.key,
    )
    assert r.status == 200, r.body
    r = api.call("POST", "/api/{spaceId}/insights/reports", path_params=sp, body={"Name": "All"}, key=ctx.key)
    assert r.status == 201, r.body
    send_changes(api, commits=[commit(n, n) for n in range(COMMITS)], space=ctx.space, key=ctx.key)
    for d in deps:
        r = api.call("POST", DEPS, path_params=sp, body=d.body(), key=ctx.key)
        assert r.status == 201, r.body
    if failures:
        body = {
            "id": "f-old",
            "projects": ["shop"],
            "environment": "production",
            "started_at": _at(45),
            "finished_at": _at(50),
        }
        r = api.call("POST", FAILS, path_params=sp, body=body, key=ctx.key)
        assert r.status in (200, 201), r.body


# --- what is compared ---------------------------------------------------------------------------------------
_DROP = {
    "at",
    "created_at",
    "updated_at",
    "as_of",
    "pending",
    "generated_at",
    "space_id",
    "actor",
    "received_at",
    "computed_at",
    "recorded_at",
    "secret_set_at",
    "updated_by",
    "webhook_path",
    "resolved_at",
}


_UUID = __import__("re").compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# Catalogue ids are numbered from a counter: a registration cut short leaves a gap (an opaque id, no
# duplicate entity: names are compared), so they are compared by name only.
_CATALOGUE = __import__("re").compile(r"^(Projects|Tenants|ProjectGroups|Environments|Channels|TenantTagSets)-\d+$")


def _norm(value: Any, space: str) -> Any:
    if isinstance(value, dict):
        return {k: _norm(v, space) for k, v in value.items() if k not in _DROP}
    if isinstance(value, list):
        return [_norm(v, space) for v in value]
    if isinstance(value, str):
        return _CATALOGUE.sub("<catalogue-id>", _UUID.sub("<uuid>", value.replace(space, "<space>")))
    return value


def _label(d: dict[str, Any]) -> str:
    return "|".join(str(d.get(k)) for k in ("project", "environment", "tenant", "finished_at", "version", "state"))


def _relabel(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _relabel(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_relabel(v, names) for v in value]
    if isinstance(value, str) and value in names:
        return names[value]
    return value


def measure(api: Api, ctx: Ctx) -> dict[str, Any]:
    """Everything a client can read of the space, with generated ids replaced by content labels."""
    sp = {"spaceId": ctx.space}
    found: dict[str, Any] = {}
    listed = list_all(api, DEPS, space=ctx.space, key=ctx.key, limit=100)
    names = {d["id"]: _label(d) for d in listed}
    labels = [_label(d) for d in listed]
    found["dep-list"] = sorted(labels)
    found["dep-list-twice"] = sorted({x for x in labels if labels.count(x) > 1})
    ids = sorted({d["id"] for d in listed} | {f"dep-{x.label}" for x in BASE} | set(ctx.extra_ids))
    for did in ids:
        r = api.call("GET", ONE, path_params={**sp, "deploymentId": did}, key=ctx.key)
        label = names.get(did, did)
        if r.status == 404:
            found[f"dep:{label}"] = 404
        else:
            assert r.status == 200, r.body
            body = _relabel(_norm(r.body, ctx.space), names)
            body.pop("id", None)
            found[f"dep:{label}"] = {k: v for k, v in body.items() if k not in ("attribution", "figures")}
            found[f"attr:{label}"] = {k: v for k, v in (body.get("attribution") or {}).items() if k != "attempts"}
            found[f"fig:{label}"] = body.get("figures")
            found[f"pending:{label}"] = r.body.get("pending")
        c = api.call("GET", CORRECTIONS, path_params={**sp, "deploymentId": did}, key=ctx.key)
        items = [
            {k: v for k, v in i.items() if k not in ("id", "deployment_id")} for i in (c.body or {}).get("items") or []
        ]
        found[f"corr:{label}"] = (c.status, _relabel(_norm(items, ctx.space), names) if c.status == 200 else None)
    fails = list_all(api, FAILS, space=ctx.space, key=ctx.key, limit=100)
    found["fail-list"] = sorted(f["id"] for f in fails)
    for fid in sorted({f["id"] for f in fails} | set(FIDS)):
        r = api.call("GET", FAIL, path_params={**sp, "failureId": fid}, key=ctx.key)
        found[f"fail:{fid}"] = (r.status, _relabel(_norm(r.body, ctx.space), names) if r.status == 200 else None)
    for metric in (
        "deployment_frequency",
        "change_failure_rate",
        "rework_rate",
        "time_to_restore_service",
        "lead_time_for_changes",
    ):
        q = {"metric": metric, "start_date": "2024-02-29", "end_date": "2024-03-02", "environment": "production"}
        r = api.call("GET", METRICS, path_params=sp, query=q, key=ctx.key)
        assert r.status == 200, r.body
        found[f"metrics:{metric}"] = r.body
    q = {"from": "2024-02-29T00:00:00Z", "to": "2024-03-02T00:00:00Z", "environment": "production"}
    r = api.call("GET", "/api/{spaceId}/summary", path_params=sp, query=q, key=ctx.key)
    assert r.status == 200, r.body
    found["summary"] = _norm(r.body, ctx.space)
    found["summary-pending"] = r.body.get("pending")
    reports = api.call("GET", "/api/{spaceId}/insights/reports", path_params=sp, key=ctx.key).body
    items = reports.get("Items", reports) if isinstance(reports, dict) else reports
    for report in items:
        r = api.call(
            "GET",
            "/api/{spaceId}/insights/reports/{reportId}/metrics",
            path_params={**sp, "reportId": report["Id"]},
            query={"timeRange": "LastMonth", "granularity": "Daily"},
            key=ctx.key,
        )
        assert r.status == 200, r.body
        found[f"report:{report['Name']}"] = _norm(r.body, ctx.space)
    if ctx.orlo:
        r = api.call("GET", "/orlo/releases", headers=_basic(ctx.key))
        releases = r.body.get("releases") if r.status == 200 else r.status
        found["orlo"] = _strip_ids(releases)
        r = api.call("GET", "/orlo/stats", headers=_basic(ctx.key))
        found["orlo-stats"] = r.body
    return found


def _strip_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_ids(v) for k, v in value.items() if k not in ("id", "release_id")}
    if isinstance(value, list):
        return [_strip_ids(v) for v in value]
    return value


def _basic(key: str) -> dict[str, str]:
    import base64

    return {"authorization": "Basic " + base64.b64encode(f"orlo:{key}".encode()).decode()}


def differences(got: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    out = []
    for label in sorted(set(got) | set(expected)):
        a, b = got.get(label), expected.get(label)
        if isinstance(a, dict) and isinstance(b, dict):
            for name in sorted(set(a) | set(b)):
                if a.get(name) != b.get(name):
                    out.append(f"{label}.{name}: faulted {a.get(name)!r}, clean {b.get(name)!r}")
        elif a != b:
            out.append(f"{label}: faulted {a!r}, clean {b!r}")
    return out


# --- the sweep --------------------------------------------------------------------------------------------------
MODES = tuple(os.environ.get("DORA_CRASH_MODES", "before,after,crash").split(","))
SPACE, KEY = "Spaces-9", "crash-review-key"
T_OP = NOW + timedelta(hours=1)


def wipe(aws: Aws) -> None:
    """An empty table and queues (each run of a sweep starts from the same nothing: its call indices and
    clock are those of every other run)."""
    import boto3

    from dora_insights.dal import secrets
    from dora_insights.logic import catalogue, spaces

    ddb = boto3.client("dynamodb")
    for page in ddb.get_paginator("scan").paginate(TableName=aws.table_name, ProjectionExpression="PK, SK"):
        for item in page["Items"]:
            ddb.delete_item(TableName=aws.table_name, Key={"PK": item["PK"], "SK": item["SK"]})
    sqs = boto3.client("sqs")
    for url in (aws.queue_url, aws.dlq_url, aws.recompute_queue_url):
        while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages", []
        ):
            for m in msgs:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    catalogue.clear_cache()
    spaces.clear_cache()
    secrets.clear_cache()


Setup = Callable[[Api, Ctx], None]


def one_run(
    api: Api,
    aws: Aws,
    store: Any,
    clock: Clock,
    lambda_context: Any,
    injector: Injector,
    op: list[Request],
    setup: Setup,
    k: int,
    mode: str,
    *,
    after_op: Callable[[], None] | None = None,
) -> tuple[Ctx, list[int], dict[str, Any]]:
    wipe(aws)
    clock.now = NOW
    ctx = make_space(store, SPACE, KEY)
    setup(api, ctx)
    settle(aws, clock, lambda_context, rounds=1)
    clock.now = T_OP
    statuses = run_operation(api, ctx, op, injector, k, mode)
    if after_op is not None:
        after_op()
    settle(aws, clock, lambda_context, rounds=2)
    return ctx, statuses, measure(api, ctx)


def sweep(
    api: Api,
    aws: Aws,
    store: Any,
    clock: Clock,
    lambda_context: Any,
    injector: Injector,
    op: list[Request],
    *,
    setup: Setup | None = None,
    modes: tuple[str, ...] = MODES,
    expect: list[int] | None = None,
) -> list[str]:
    """The operation clean, then once per (k, mode) from the same start; every difference."""
    setup = setup or populate
    ref, statuses, expected = one_run(api, aws, store, clock, lambda_context, injector, op, setup, 0, "")
    calls = list(injector.calls)
    if expect is not None:
        assert statuses == expect, (statuses, ref.notes)
    n = len(calls)
    assert n > 0, "no AWS call seen: the injector missed the functions' clients"
    plan = [(k, m) for m in modes for k in range(1, n + 1)]
    if not FULL and len(plan) > BUDGET:
        step = len(plan) // BUDGET + 1
        plan = plan[::step] + [p for p in plan if p[1] == "crash"][-2:]
    problems: list[str] = []
    for k, mode in plan:
        ctx, got, found = one_run(api, aws, store, clock, lambda_context, injector, op, setup, k, mode)
        where = f"k={k}/{n} ({calls[k - 1]}) {mode}"
        if any(s >= 500 for s in got):
            problems.append(f"{where}: a resend never got past a 5xx: {got} {ctx.notes}")
            continue
        if got != statuses:
            ctx.notes.append(f"statuses {got} vs clean {statuses}")
            if os.environ.get("DORA_CRASH_LOG"):
                with open(os.environ["DORA_CRASH_LOG"], "a") as log:
                    log.write(f"{where}: {got} vs {statuses}: {ctx.notes}\n")
        diff = differences(found, expected)
        if diff:
            problems.append(f"{where} {ctx.notes}:\n    " + "\n    ".join(d[:400] for d in diff[:10]))
    return problems


FIDS = ["f-old", "f-new", "pagerduty-PDINC1", "opsgenie-OGALERT1"]


def _patch(label: str, body: dict[str, Any]) -> Request:
    def request(api: Api, ctx: Ctx) -> HttpResult:
        return api.call(
            "PATCH", ONE, path_params={"spaceId": ctx.space, "deploymentId": f"dep-{label}"}, body=body, key=ctx.key
        )

    return request


def _delete(label: str) -> Request:
    def request(api: Api, ctx: Ctx) -> HttpResult:
        return api.call("DELETE", ONE, path_params={"spaceId": ctx.space, "deploymentId": f"dep-{label}"}, key=ctx.key)

    return request


def _create(d: D) -> Request:
    def request(api: Api, ctx: Ctx) -> HttpResult:
        return api.call("POST", DEPS, path_params={"spaceId": ctx.space}, body=d.body(), key=ctx.key)

    return request


def _check(problems: list[str]) -> None:
    assert not problems, f"{len(problems)} faulted runs differ:\n" + "\n".join(problems[:15])


# --- native corrections ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "op"),
    [
        ("success-to-failed", [_patch("b", {"state": "Failed"})]),
        ("failed-to-success", [_patch("c", {"state": "Success"})]),
        ("version", [_patch("d", {"version": "9.9"})]),
        ("override", [_patch("d", {"change_failure": True})]),
    ],
)
def test_patch_crash_sweep(
    api: Api, aws: Aws, store: Any, clock: Clock, lambda_context: Any, injector: Injector, name: str, op: list[Request]
) -> None:
    _check(sweep(api, aws, store, clock, lambda_context, injector, op, expect=[200]))


def test_delete_crash_sweep(
    api: Api, aws: Aws, store: Any, clock: Clock, lambda_context: Any, injector: Injector
) -> None:
    _check(sweep(api, aws, store, clock, lambda_context, injector, [_delete("b")], expect=[204]))


def test_delete_and_resend_crash_sweep(
    api: Api, aws: Aws, store: Any, clock: Clock, lambda_context: Any, injector: Injector
) -> None:
    moved = D("b", 70, 6)
    op = [_delete("b"), _create(moved)]
    _check(sweep(api, aws, store, clock, lambda_context, injector, op, expect=[204, 201]))


# --- DX upsert ----------------------------------------------------------------------------------------------------
UPSERT = "/api/deployments.upsert"


def _dx_body(minute: int, n: int | None, success: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "reference_id": "x",
        "deployed_at": _at(minute),
        "service": "shop",
        "environment": "production",
        "success": success,
    }
    if n is not None:
        body.update(repository=REPO, commit_sha=sha(n))
    return body


def _upsert(body: dict[str, Any]) -> Request:
    def request(api: Api, ctx: Ctx) -> HttpResult:
        r = api.call("POST", UPSERT, body=body, key=ctx.key)
        if r.status < 300:
            ctx.extra_ids.append(r.body["deployment"]["id"])
        return r

    return request


def _with_dx(api: Api, ctx: Ctx) -> None:
    populate(api, ctx)
    r = api.call("POST", UPSERT, body=_dx_body(30, 3, True), key=ctx.key)
    assert r.status == 200, r.body
    ctx.extra_ids.append(r.body["deployment"]["id"])


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("fails-now", _dx_body(30, 3, False)),
        ("other-commit", _dx_body(30, 6, True)),
        ("moved-past", _dx_body(90, 3, True)),
        ("all", _dx_body(70, 6, False)),
    ],
)
def test_dx_upsert_crash_sweep(
    api: Api,
    aws: Aws,
    store: Any,
    clock: Clock,
    lambda_context: Any,
    injector: Injector,
    name: str,
    body: dict[str, Any],
) -> None:
    _check(sweep(api, aws, store, clock, lambda_context, injector, [_upsert(body)], setup=_with_dx, expect=[200]))


# --- failure events ------------------------------------------------------------------------------------------------
def _fail_create(body: dict[str, Any]) -> Request:
    def request(api: Api, ctx: Ctx) -> HttpResult:
        return api.call("POST", FAILS, path_params={"spaceId": ctx.space}, body=body, key=ctx.key)

    return request


def _fail_delete(fid: str) -> Request:
    def request(api: Api, ctx: Ctx) -> HttpResult:
        return api.call("DELETE", FAIL, path_params={"spaceId": ctx.space, "failureId": fid}, key=ctx.key)

    return request


NEW_FAILURE = {
    "id": "f-new",
    "projects": ["shop"],
    "environment": "production",
    "started_at": _at(65),
    "finished_at": _at(75),
    "deployment_id": "dep-d",
}


@pytest.mark.parametrize(
    ("name", "op", "expect"),
    [
        ("create", [_fail_create(NEW_FAILURE)], [201]),
        ("create-open", [_fail_create({k: v for k, v in NEW_FAILURE.items() if k != "finished_at"})], [201]),
        ("delete", [_fail_delete("f-old")], [204]),
    ],
)
def test_failure_crash_sweep(
    api: Api,
    aws: Aws,
    store: Any,
    clock: Clock,
    lambda_context: Any,
    injector: Injector,
    name: str,
    op: list[Request],
    expect: list[int],
) -> None:
    _check(sweep(api, aws, store, clock, lambda_context, injector, op, expect=expect))


# --- incident webhooks ---------------------------------------------------------------------------------------------
def _pd(what: str) -> Request:
    from dora_insights.dialects.incidents import pagerduty_signature
    from tests.support.events import load_event

    payload = load_event(f"pagerduty_incident_{what}.json")
    event = payload["event"]
    event["id"] = f"EV-{what}"
    data = event["data"]
    data["id"] = "PDINC1"
    data["created_at"] = _at(62)
    data["service"]["summary"] = "svc-prod"
    event["occurred_at"] = _at(62) if what == "triggered" else _at(95)
    raw = json.dumps(payload)
    headers = {"x-pagerduty-signature": pagerduty_signature(PD_SECRET, raw.encode())}

    def request(api: Api, ctx: Ctx) -> HttpResult:
        return api.call(
            "POST", "/webhooks/pagerduty/{spaceId}", path_params={"spaceId": ctx.space}, raw_body=raw, headers=headers
        )

    return request


def _og(what: str) -> Request:
    from tests.support.events import load_event

    payload = load_event(f"opsgenie_alert_{what}.json")
    alert = payload["alert"]
    alert["alertId"] = "OGALERT1"
    alert["entity"] = "svc-prod"
    alert["createdAt"] = 1709287320000  # 2024-03-01T10:02:00Z
    alert["updatedAt"] = 1709289000000 * 1_000_000  # 10:30:00Z in ns
    raw = json.dumps(payload)

    def request(api: Api, ctx: Ctx) -> HttpResult:
        return api.call(
            "POST",
            "/webhooks/opsgenie/{spaceId}",
            path_params={"spaceId": ctx.space},
            raw_body=raw,
            headers={"x-opsgenie-secret": OG_SECRET},
        )

    return request


@pytest.mark.parametrize(
    ("name", "op"),
    [
        ("pd-trigger-resolve", [_pd("triggered"), _pd("resolved")]),
        ("pd-resolve-only", [_pd("resolved")]),
        ("og-create-close", [_og("create"), _og("close")]),
    ],
)
def test_incident_webhook_crash_sweep(
    api: Api, aws: Aws, store: Any, clock: Clock, lambda_context: Any, injector: Injector, name: str, op: list[Request]
) -> None:
    _check(sweep(api, aws, store, clock, lambda_context, injector, op))


# --- settings -----------------------------------------------------------------------------------------------------
def _settings(body: dict[str, Any]) -> Request:
    def request(api: Api, ctx: Ctx) -> HttpResult:
        return api.call("PATCH", "/api/{spaceId}/settings", path_params={"spaceId": ctx.space}, body=body, key=ctx.key)

    return request


def test_failure_window_crash_sweep(
    api: Api, aws: Aws, store: Any, clock: Clock, lambda_context: Any, injector: Injector
) -> None:
    _check(
        sweep(
            api, aws, store, clock, lambda_context, injector, [_settings({"failure_window_hours": 0.2})], expect=[200]
        )
    )


# --- Orlo release workflow ---------------------------------------------------------------------------------------
def _orlo_setup(api: Api, ctx: Ctx) -> None:
    populate(api, ctx)
    ctx.orlo = True
    h = _basic(ctx.key)
    r = api.call(
        "POST",
        "/orlo/releases",
        headers=h,
        body={"user": "ann", "team": "A", "platforms": ["site1", "site2"], "references": ["T-1"]},
    )
    assert r.status == 200, r.body
    rid = r.body["id"]
    pids = []
    for name in ("web", "api"):
        r = api.call(
            "POST",
            "/orlo/releases/{rid}/packages",
            headers=h,
            path_params={"rid": rid},
            body={"name": name, "version": "2.0"},
        )
        assert r.status == 200, r.body
        pids.append(r.body["id"])
    ctx.vars.update(rid=rid, web=pids[0], api=pids[1])


def _orlo(route: str, at_seconds: int, body: Any = None, **params: str) -> Request:
    def request(api: Api, ctx: Ctx) -> HttpResult:
        ctx.vars["clock"].now = T_OP + timedelta(seconds=at_seconds)
        path = {k: ctx.vars[v] for k, v in params.items()}
        return api.call("POST", route, headers=_basic(ctx.key), path_params=path, body=body)

    return request


START = "/orlo/releases/{rid}/packages/{pid}/start"
STOP = "/orlo/releases/{rid}/packages/{pid}/stop"
ORLO_OP = [
    _orlo(START, 10, rid="rid", pid="web"),
    _orlo(START, 20, rid="rid", pid="api"),
    _orlo(STOP, 30, {"success": True}, rid="rid", pid="api"),
    _orlo(STOP, 40, {"success": False}, rid="rid", pid="web"),
    _orlo("/orlo/releases/{rid}/stop", 50, rid="rid"),
]


def test_orlo_workflow_crash_sweep(
    api: Api, aws: Aws, store: Any, clock: Clock, lambda_context: Any, injector: Injector
) -> None:
    def setup(api: Api, ctx: Ctx) -> None:
        ctx.vars["clock"] = clock
        _orlo_setup(api, ctx)

    _check(sweep(api, aws, store, clock, lambda_context, injector, ORLO_OP, setup=setup, expect=[204] * 5))


# --- the scheduled recompute crashing mid-run ---------------------------------------------------------------------
def _summary(api: Api, ctx: Ctx) -> tuple[Any, Any]:
    q = {"from": "2024-02-29T00:00:00Z", "to": "2024-03-02T00:00:00Z", "environment": "production"}
    r = api.call("GET", "/api/{spaceId}/summary", path_params={"spaceId": ctx.space}, query=q, key=ctx.key)
    assert r.status == 200, r.body
    m = api.call(
        "GET",
        METRICS,
        path_params={"spaceId": ctx.space},
        key=ctx.key,
        query={
            "metric": "change_failure_rate",
            "start_date": "2024-03-01",
            "end_date": "2024-03-02",
            "interval": "all",
            "environment": "production",
        },
    )
    assert m.status == 200, m.body
    return _norm(r.body, ctx.space), m.body


def _recompute_run(
    api: Api, aws: Aws, store: Any, clock: Clock, lambda_context: Any, injector: Injector, k: int, mode: str
) -> tuple[Ctx, dict[str, Any], list[str], tuple[Any, Any]]:
    wipe(aws)
    clock.now = NOW
    ctx = make_space(store, SPACE, KEY)
    populate(api, ctx)
    settle(aws, clock, lambda_context, rounds=1)
    before = _summary(api, ctx)
    clock.now = T_OP
    # A change that moves every figure: b fails now, a new failure event, d corrected.
    for r in (_patch("b", {"state": "Failed"}), _fail_create(NEW_FAILURE), _patch("d", {"change_failure": True})):
        assert send(api, ctx, r, None).status < 300
    clock.advance(timedelta(minutes=6))
    drain_retries(aws, lambda_context)
    injector.arm(k, mode)
    crashed = ""
    try:
        scheduled_run(lambda_context)
    except Crash as died:
        crashed = str(died)
    except Exception as error:
        crashed = f"{type(error).__name__}: {str(error)[:100]}"
    finally:
        injector.disarm()
    calls = list(injector.calls)
    mid = _summary(api, ctx)  # a reader right after the crash
    settle(aws, clock, lambda_context, rounds=2)
    ctx.notes.append(crashed)
    found = measure(api, ctx)
    return ctx, found, calls, (before, mid)


def test_recompute_crash_sweep(
    api: Api, aws: Aws, store: Any, clock: Clock, lambda_context: Any, injector: Injector
) -> None:
    """METRICS §8 / DESIGN §1: the recompute is safe to crash at any point; readers never see a half result."""
    _, expected, calls, (before, _) = _recompute_run(api, aws, store, clock, lambda_context, injector, 0, "")
    final = (expected["summary"], expected["metrics:change_failure_rate"])
    n = len(calls)
    assert n > 0, "no AWS call seen"
    plan = [(k, m) for m in MODES for k in range(1, n + 1)]
    if not FULL and len(plan) > BUDGET:
        plan = plan[:: len(plan) // BUDGET + 1]
    problems = []
    for k, mode in plan:
        ctx, found, _, (_, mid) = _recompute_run(api, aws, store, clock, lambda_context, injector, k, mode)
        where = f"k={k}/{n} ({calls[k - 1]}) {mode} {ctx.notes}"
        if mid[0] not in (before[0], final[0]) and {**mid[0], "pending": None} not in (
            {**before[0], "pending": None},
            {**final[0], "pending": None},
        ):
            problems.append(f"{where}: a reader saw a summary neither before nor after: {mid[0]}")
        diff = differences(found, expected)
        if diff:
            problems.append(f"{where}:\n    " + "\n    ".join(d[:400] for d in diff[:10]))
    _check(problems)


# --- the attribution retry queue's consumer crashing mid-batch ------------------------------------------------------
def _drain_faulted(aws: Aws, lambda_context: Any, injector: Injector, k: int, mode: str) -> list[str]:
    """Deliver the retry queue to its function as Lambda does, the injector armed: a crash returns the whole
    batch (made visible again at once, as after the visibility timeout), failed records stay for another try."""
    import boto3

    from tests.support.events import load_event
    from tests.support.lambdas import invoke

    sqs, template = boto3.client("sqs"), load_event("AttributionRetryFunction.json")["Records"][0]
    notes: list[str] = []
    injector.arm(k, mode)
    try:
        for _ in range(12):
            messages = sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                break
            records = [
                {**template, "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]}
                for m in messages
            ]
            try:
                result = invoke("AttributionRetryFunction", {"Records": records}, lambda_context)
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            except Crash as died:
                notes.append(str(died))
                failed = {m["MessageId"] for m in messages}
            except Exception as error:
                notes.append(f"batch raised {type(error).__name__}: {error}")
                failed = {m["MessageId"] for m in messages}
            for m in messages:
                if m["MessageId"] in failed:
                    sqs.change_message_visibility(
                        QueueUrl=aws.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                    )
                else:
                    sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=m["ReceiptHandle"])
    finally:
        injector.disarm()
    return notes


def _retry_run(
    api: Api, aws: Aws, store: Any, clock: Clock, lambda_context: Any, injector: Injector, k: int, mode: str
) -> tuple[list[str], dict[str, Any], list[str]]:
    wipe(aws)
    clock.now = NOW
    ctx = make_space(store, SPACE, KEY)
    populate(api, ctx, BASE[:2])
    settle(aws, clock, lambda_context, rounds=1)
    clock.now = T_OP
    items = [D("c", 40, 3, "Failed").body(), D("d", 60, 4).body(), D("e", 80, 5).body(), D("x", 50, 6).body()]
    r = api.call("POST", DEPS + "/batch", path_params={"spaceId": ctx.space}, body={"deployments": items}, key=ctx.key)
    assert r.status == 200, r.body
    assert r.body["created"] == 4, r.body
    import boto3

    waiting = boto3.client("sqs").get_queue_attributes(QueueUrl=aws.queue_url, AttributeNames=["All"])["Attributes"]
    notes = _drain_faulted(aws, lambda_context, injector, k, mode)
    calls = list(injector.calls)
    if not calls:
        notes.append(f"queue: {waiting}")
    settle(aws, clock, lambda_context, rounds=2)
    return notes, measure(api, ctx), calls


def test_retry_consumer_crash_sweep(
    api: Api, aws: Aws, store: Any, clock: Clock, lambda_context: Any, injector: Injector
) -> None:
    notes, expected, calls = _retry_run(api, aws, store, clock, lambda_context, injector, 0, "")
    n = len(calls)
    assert n > 0, notes
    plan = [(k, m) for m in MODES for k in range(1, n + 1)]
    if not FULL and len(plan) > BUDGET:
        plan = plan[:: len(plan) // BUDGET + 1]
    problems = []
    for k, mode in plan:
        notes, found, _ = _retry_run(api, aws, store, clock, lambda_context, injector, k, mode)
        diff = differences(found, expected)
        if diff:
            problems.append(
                f"k={k}/{n} ({calls[k - 1]}) {mode} {notes}:\n    " + "\n    ".join(d[:400] for d in diff[:10])
            )
    _check(problems)


# --- targeted: a stream's failure record outliving its recovery -------------------------------------------------
def _one_stream_failure(
    api: Api,
    aws: Aws,
    store: Any,
    clock: Clock,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    *,
    read_between: bool,
) -> dict[str, Any]:
    from dora_insights.logic import recompute

    ctx = make_space(store, SPACE, KEY)
    populate(api, ctx)
    settle(aws, clock, lambda_context, rounds=1)
    assert send(api, ctx, _patch("b", {"state": "Failed"}), None).status == 200
    clock.advance(timedelta(minutes=6))
    real = recompute.recompute_stream
    calls = {"n": 0}

    def failing_once(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise _client_error("Query", "InternalServerError", 500)
        return real(*args, **kwargs)

    monkeypatch.setattr(recompute, "recompute_stream", failing_once)
    scheduled_run(lambda_context)
    monkeypatch.setattr(recompute, "recompute_stream", real)
    assert calls["n"] >= 1
    if read_between:
        _summary(api, ctx)  # a reader: the read refresh recomputes the stream (METRICS §8)
    settle(aws, clock, lambda_context, rounds=3)
    r = api.call("GET", ONE, path_params={"spaceId": ctx.space, "deploymentId": "dep-a"}, key=ctx.key)
    assert r.status == 200, r.body
    return dict(r.body)


def test_a_stream_failure_is_cleared_by_the_next_good_run(
    api: Api, aws: Aws, store: Any, clock: Clock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One failed recompute of a stream, then good runs: its deployments stop showing ``stream_health``."""
    body = _one_stream_failure(api, aws, store, clock, lambda_context, monkeypatch, read_between=False)
    assert body.get("stream_health") is None, body.get("stream_health")


def test_a_stream_failure_is_cleared_when_a_read_recomputed_it(
    api: Api, aws: Aws, store: Any, clock: Clock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream whose scheduled recompute failed once, and that a read's refresh (METRICS §8,
    ``logic/freshness.py``) then recomputed successfully, must not show ``stream_health: failing``
    ("a stream whose recompute fails ... retried every run", dialects/native_health.py) for good: its
    figures are current, and no later run fails. Before the fix, the read refresh marked it caught up without
    clearing the health record, and only ``recompute._recompute_dirty`` cleared it: every deployment of the
    stream showed ``stream_health: {"state": "failing", ...}`` until something new was written to it."""
    body = _one_stream_failure(api, aws, store, clock, lambda_context, monkeypatch, read_between=True)
    assert body.get("stream_health") is None, body.get("stream_health")


# --- targeted: a DX upsert that fails a deployment, cut short after its replacement ------------------------------
@pytest.mark.parametrize(
    "body", [_dx_body(70, 6, False), _dx_body(30, 3, False)], ids=["moved-other-commit", "in-place"]
)
def test_dx_upsert_to_failed_cut_after_the_replacement_keeps_no_attribution_for_good(
    api: Api, aws: Aws, store: Any, clock: Clock, lambda_context: Any, injector: Injector, body: dict[str, Any]
) -> None:
    """API.md (DX): an upsert with different values replaces the deployment; "the same request sent again is
    safe" (Errors). An upsert turning a success into a failure (``success: false``, another commit, another
    finish time), whose function dies right after the replacement's transaction, is sent again: it answers
    200 (the stored values are the request's), and after every retry, sweep and recompute the deployment's
    ``attribution`` must be what a clean upsert leaves (``{"state": "None", "commits": [], ...}``).
    Before the fix it stayed null for good: the replacement carries no outbox item for a version owed
    nothing, and the resend's ``attribution.resume`` only re-attempted a deployment owed an attribution."""
    op = [_upsert(body)]
    _, statuses, expected = one_run(api, aws, store, clock, lambda_context, injector, op, _with_dx, 0, "")
    calls = list(injector.calls)
    writes = [i for i, c in enumerate(calls) if c == "TransactWriteItems"]
    # The first transaction is the create attempt the idempotency record refuses; the second, the replacement.
    k = writes[1] + 1
    ctx, got, found = one_run(api, aws, store, clock, lambda_context, injector, op, _with_dx, k, "crash")
    assert got == statuses == [200], (got, ctx.notes)
    diff = differences(found, expected)
    assert not diff, f"calls {calls}, died after call {k}:\n" + "\n".join(diff)


def test_native_create_of_a_failed_deployment_cut_after_its_write(
    api: Api, aws: Aws, store: Any, clock: Clock, lambda_context: Any, injector: Injector
) -> None:
    """The same cut as above on a plain native create of a failed deployment (for comparison): the resend
    answers 200 and the deployment ends up as a clean create leaves it."""
    op = [_create(D("x", 50, 6, "Failed"))]
    _, _statuses, expected = one_run(api, aws, store, clock, lambda_context, injector, op, populate, 0, "")
    calls = list(injector.calls)
    for k in [
        i + 1 for i, c in enumerate(calls) if c in ("TransactWriteItems", "PutItem", "UpdateItem", "BatchWriteItem")
    ]:
        _ctx, _got, found = one_run(api, aws, store, clock, lambda_context, injector, op, populate, k, "crash")
        diff = differences(found, expected)
        assert not diff, f"calls {calls}, died after call {k}:\n" + "\n".join(diff)


# --- targeted: a settings change cut between its steps ------------------------------------------------------------
MANY = (*BASE, D("s1", 5, 1, env="staging"), D("s2", 25, 2, "Failed", env="staging"), D("s3", 45, 3, env="staging"))


def _many_streams(api: Api, ctx: Ctx) -> None:
    populate(api, ctx, MANY)
    body = {
        "id": "f-stg",
        "projects": ["shop"],
        "environment": "staging",
        "started_at": _at(46),
        "finished_at": _at(48),
    }
    r = api.call("POST", FAILS, path_params={"spaceId": ctx.space}, body=body, key=ctx.key)
    assert r.status in (200, 201), r.body


def test_failure_window_change_cut_after_each_write(
    api: Api, aws: Aws, store: Any, clock: Clock, lambda_context: Any, injector: Injector
) -> None:
    """API.md (settings): a ``failure_window_hours`` change marks every stream dirty; a request that writes in
    steps (a settings change marking many streams) may have kept its earlier steps, "which its retry finds and
    completes". The function dies after each of its writes in turn; the same PATCH is sent again: the figures
    after the recompute must be the clean change's."""
    op = [_settings({"failure_window_hours": 0.2})]
    _, _statuses, expected = one_run(api, aws, store, clock, lambda_context, injector, op, _many_streams, 0, "")
    calls = list(injector.calls)
    problems = []
    for k in [
        i + 1
        for i, c in enumerate(calls)
        if c in ("TransactWriteItems", "PutItem", "UpdateItem", "BatchWriteItem", "DeleteItem")
    ]:
        for mode in ("crash", "after"):
            ctx, got, found = one_run(api, aws, store, clock, lambda_context, injector, op, _many_streams, k, mode)
            diff = differences(found, expected)
            if diff or any(s >= 500 for s in got):
                problems.append(
                    f"died after call {k}/{len(calls)} ({calls[k - 1]}) {mode} {got} {ctx.notes}:\n    "
                    + "\n    ".join(d[:300] for d in diff[:8])
                )
    _check(problems)
