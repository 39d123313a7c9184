"""Chaos over the local runtime (issue 14's acceptance): nothing a client was told is accepted gets lost.

Two `python -m dora_local` processes get the same sequence of requests at the same time: one with a
share of the functions' DynamoDB and SQS calls failing (``DORA_LOCAL_FAULT_RATE``, ``dora_local.faults``:
throttles and server errors before the call, server errors after a write that succeeded, a function
process dying right after a write), one clean. The sequence: GitHub pushes bring every repository's
commits, then deployments from four dialects name them (native ``POST /api/{spaceId}/deployments`` with
a client ``id``, Datadog with ``data.attributes.id``, DX ``deployments.create`` with ``reference_id``,
GitHub ``deployment_status`` redelivered with its ``X-GitHub-Delivery``). Every client re-sends its
request byte for byte on a 5xx or a dropped connection, until a 2xx or a 4xx, as their own retry logic
does.

Then faults go off and time moves on (``POST /_local/clock/advance``: the functions' clock and the SQS
delays, so retries delayed 30 s, messages hidden 360 s after a failed delivery and the recompute's 5-minute
outbox sweep all come due) while the queues are drained and the schedule runs, a few times. Both runs
must end the same:

- every deployment that got a 2xx is stored exactly once, none that never got one more than once, and
  nothing else is stored;
- every stored deployment attributed as in the clean run (state, rule, the commits it shipped and its
  lead time): every successful one naming code ``Resolved``;
- ``GET /api/{spaceId}/summary`` and a report's ``/metrics`` answer the same numbers.

``DORA_CHAOS_SEED`` and ``DORA_CHAOS_RATE`` replay another run (the seed and the rate are printed on
failure and recorded as test properties).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from dora_insights.dialects.github import sign
from tests.support import server
from tests.support.server import Served

pytestmark = pytest.mark.e2e
KEY = "chaos-admin-key"
SECRET = "chaos-webhook-secret"
SPACE = "Spaces-1"
SEED = int(os.environ.get("DORA_CHAOS_SEED", "20261214"))
RATE = float(os.environ.get("DORA_CHAOS_RATE", "0.15"))
PER_DIALECT = 20  # deployments per dialect (80 in all)
COMMITS_PER_DEPLOYMENT = 3
PUSH_SIZE = 10
MAX_ATTEMPTS = 60  # a client's attempts before it gives up on a request
SETTLE_ROUNDS = 4
SETTLE_STEP_SECONDS = 600  # each round moves time on 10 minutes: past the 5-minute outbox sweep, 360 s visibility
TIMEOUT = 60
ENVIRONMENT = "production"
REPORT_QUERY = {"split": "Project", "timeRange": "LastQuarter", "granularity": "Daily"}


# --------------------------------------------------------------------------------------------- the sequence
@dataclass(frozen=True)
class Call:
    """One request as a client sends it (and re-sends it, byte for byte)."""

    label: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Sent:
    """A deployment some dialect sends: its request and how to find it among the stored ones."""

    call: Call
    dialect: str
    project: str
    finished_at: str  # as stored: the key that finds it (ids are generated for DX and GitHub)
    client_id: str | None  # the stored id, for dialects that keep the client's
    successful: bool


@dataclass(frozen=True)
class Repo:
    dialect: str
    full_name: str
    project: str

    @property
    def name(self) -> str:
        return self.full_name.split("/", 1)[1]


REPOS = (
    Repo("native", "acme/orders", "orders"),
    Repo("datadog", "acme/payments", "payments"),
    Repo("dx", "acme/catalog", "catalog"),
    Repo("github", "acme/web", "web"),  # deployment_status: the project is the repository's name
)


def _sha(repo: Repo, n: int) -> str:
    return hashlib.sha1(f"{SEED}:{repo.full_name}:{n}".encode()).hexdigest()  # noqa: S324 - a made-up git sha


def _stored(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _iso(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_call(label: str, path: str, body: Any, headers: dict[str, str]) -> Call:
    raw = json.dumps(body, separators=(",", ":")).encode()
    return Call(label, "POST", path, {"Content-Type": "application/json", **headers}, raw)


def _webhook(label: str, event: str, body: Any) -> Call:
    raw = json.dumps(body, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{SEED}:{label}")),
        "X-Hub-Signature-256": sign(SECRET, raw),
    }
    return Call(label, "POST", f"/webhooks/github/{SPACE}", headers, raw)


def _repository(repo: Repo) -> dict[str, Any]:
    return {"full_name": repo.full_name, "name": repo.name, "default_branch": "main"}


def pushes(base: datetime) -> list[Call]:
    """Every repository's commits on main, oldest first, ``PUSH_SIZE`` per push."""
    calls = []
    count = PER_DIALECT * COMMITS_PER_DEPLOYMENT
    for repo in REPOS:
        for start in range(0, count, PUSH_SIZE):
            commits = [
                {"id": _sha(repo, n), "timestamp": _iso(_commit_time(base, n)), "message": f"change {n}"}
                for n in range(start, min(count, start + PUSH_SIZE))
            ]
            body = {"ref": "refs/heads/main", "repository": _repository(repo), "commits": commits}
            calls.append(_webhook(f"push {repo.full_name} {start}", "push", body))
    return calls


def _commit_time(base: datetime, n: int) -> datetime:
    """Commits of deployment k (n // 3) land in the 3 hours before it."""
    return base + timedelta(hours=6 * (n // COMMITS_PER_DEPLOYMENT) - 3, minutes=30 * (n % COMMITS_PER_DEPLOYMENT))


def deployments(base: datetime) -> list[Sent]:
    """``PER_DIALECT`` deployments per dialect, round robin, each stream in finish order; deployment k
    deploys commit 3k+2 (so it ships 3 commits), one in five fails (Datadog's are all successful)."""
    sent: list[Sent] = []
    for k in range(PER_DIALECT):
        for d, repo in enumerate(REPOS):
            finished = base + timedelta(hours=6 * k, minutes=15 * d)
            started = finished - timedelta(minutes=7)
            sha = _sha(repo, COMMITS_PER_DEPLOYMENT * k + COMMITS_PER_DEPLOYMENT - 1)
            failed = repo.dialect != "datadog" and k % 5 == 3
            label = f"{repo.dialect} #{k}"
            client_id: str | None = None
            if repo.dialect == "native":
                client_id = f"chaos-{SEED}-{k:03d}"
                body: Any = {
                    "id": client_id,
                    "project": repo.project,
                    "environment": ENVIRONMENT,
                    "finished_at": _iso(finished),
                    "started_at": _iso(started),
                    "version": f"1.{k}.0",
                    "state": "Failed" if failed else "Success",
                    "commit_sha": sha,
                    "repository": repo.full_name,
                }
                call = _json_call(label, f"/api/{SPACE}/deployments", body, {"Authorization": f"Bearer {KEY}"})
            elif repo.dialect == "datadog":
                client_id = f"datadog-chaos-{SEED:08d}-{k:04d}"
                attributes = {
                    "id": client_id,
                    "service": repo.project,
                    "env": ENVIRONMENT,
                    "started_at": int(started.timestamp()) * 10**9,
                    "finished_at": int(finished.timestamp()) * 10**9,
                    "version": f"2.{k}.0",
                    "git": {"commit_sha": sha, "repository_url": f"https://github.com/{repo.full_name}.git"},
                }
                call = _json_call(
                    label, "/api/v2/dora/deployment", {"data": {"attributes": attributes}}, {"DD-API-KEY": KEY}
                )
            elif repo.dialect == "dx":
                body = {
                    "reference_id": f"dx-chaos-{SEED}-{k}",
                    "service": repo.project,
                    "environment": ENVIRONMENT,
                    "deployed_at": int(finished.timestamp()),
                    "commit_sha": sha,
                    "repository": repo.full_name,
                    "success": not failed,
                }
                call = _json_call(label, "/api/deployments.create", body, {"Authorization": f"Bearer {KEY}"})
            else:
                body = {
                    "action": "created",
                    "deployment_status": {
                        "id": 9_000_000 + k,
                        "state": "failure" if failed else "success",
                        "created_at": _iso(finished),
                        "updated_at": _iso(finished),
                    },
                    "deployment": {
                        "id": 7_000_000 + k,
                        "sha": sha,
                        "ref": "main",
                        "environment": ENVIRONMENT,
                        "created_at": _iso(started),
                    },
                    "repository": _repository(repo),
                }
                call = _webhook(label, "deployment_status", body)
            sent.append(Sent(call, repo.dialect, repo.project, _stored(finished), client_id, not failed))
    return sent


# --------------------------------------------------------------------------------------------- clients
@dataclass
class Outcome:
    """What a client finally got for one request."""

    call: Call
    status: int | None  # None: it gave up (every attempt a 5xx or a dropped connection)
    attempts: int
    body: str = ""
    errors: Counter[str] = field(default_factory=Counter)  # what the retried attempts got

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def send(session: requests.Session, url: str, call: Call) -> Outcome:
    """Send until a 2xx or a 4xx, re-sending the same bytes on a 5xx or a dropped connection."""
    errors: Counter[str] = Counter()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            response = session.request(
                call.method, url + call.path, data=call.body, headers=call.headers, timeout=TIMEOUT
            )
        except requests.ConnectionError as error:
            errors[type(error).__name__] += 1
            continue
        if response.status_code >= 500:
            errors[str(response.status_code)] += 1
            continue
        return Outcome(call, response.status_code, attempt, response.text[:500], errors)
    return Outcome(call, None, MAX_ATTEMPTS, "", errors)


def _must(session: requests.Session, method: str, url: str, **kwargs: Any) -> Any:
    response = session.request(method, url, timeout=TIMEOUT, **kwargs)
    assert response.status_code < 300, f"{method} {url}: {response.status_code} {response.text[:500]}"
    return response.json()


# --------------------------------------------------------------------------------------------- one run
@dataclass
class Run:
    """What one runtime was told and what it ended with."""

    name: str
    pushes: list[Outcome] = field(default_factory=list)
    sent: list[tuple[Sent, Outcome]] = field(default_factory=list)
    stored: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)  # stored id -> GET .../deployments/{id}
    summary: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    faults: dict[str, Any] = field(default_factory=dict)
    midway: list[Any] = field(default_factory=list)  # the schedule run and drain halfway through the sequence
    settle: list[Any] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # seconds from the start at the end of each phase
    seconds: float = 0.0


def play(name: str, url: str, base: datetime, *, chaos: bool) -> Run:
    """The whole sequence against one runtime, then its settling, then what it stored."""
    started = time.monotonic()
    run = Run(name)
    with requests.Session() as session:
        for call in pushes(base):
            run.pushes.append(send(session, url, call))
        sequence = deployments(base)
        for n, item in enumerate(sequence):
            run.sent.append((item, send(session, url, item.call)))
            if n == len(sequence) // 2:  # the recompute, its sweep and the retry queue under chaos too
                run.midway = _must(session, "POST", f"{url}/_local/schedule/run")["runs"]
                run.midway.append({"drain": _must(session, "POST", f"{url}/_local/queues/drain")})
        run.phases["sequence"] = time.monotonic() - started
        if chaos:
            run.faults = _must(session, "GET", f"{url}/_local/faults")
            _must(session, "POST", f"{url}/_local/faults", json={"rate": 0})
        headers = {"Authorization": f"Bearer {KEY}"}
        report = _must(session, "POST", f"{url}/api/{SPACE}/insights/reports", json={"Name": "chaos"}, headers=headers)
        for _ in range(SETTLE_ROUNDS):
            advanced = _must(session, "POST", f"{url}/_local/clock/advance", json={"seconds": SETTLE_STEP_SECONDS})
            drained = _must(session, "POST", f"{url}/_local/queues/drain")
            runs = _must(session, "POST", f"{url}/_local/schedule/run")["runs"]
            again = _must(session, "POST", f"{url}/_local/queues/drain")
            run.settle.append({"clock": advanced, "drain": drained, "schedule": runs, "drain again": again})
        _must(session, "POST", f"{url}/_local/schedule/run")
        run.phases["settle"] = time.monotonic() - started
        run.stored = _list_deployments(session, url, headers)
        for item in run.stored:
            run.details[item["id"]] = _must(
                session, "GET", f"{url}/api/{SPACE}/deployments/{item['id']}", headers=headers
            )
        window = {"from": _iso(base - timedelta(days=1)), "to": _iso(base + timedelta(days=PER_DIALECT // 4 + 2))}
        run.summary = _must(session, "GET", f"{url}/api/{SPACE}/summary", params=window, headers=headers)
        metrics_url = f"{url}/api/{SPACE}/insights/reports/{report['Id']}/metrics"
        run.metrics = _must(session, "GET", metrics_url, params=REPORT_QUERY, headers=headers)
    run.seconds = time.monotonic() - started
    return run


def _list_deployments(session: requests.Session, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = _must(session, "GET", f"{url}/api/{SPACE}/deployments", params=params, headers=headers)
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items


# --------------------------------------------------------------------------------------------- processes
def serve(log: Path, **environment: str) -> AbstractContextManager[Served]:
    """`python -m dora_local` in a process of its own with this test's key and webhook secret."""
    return server.serve(
        log, DORA_LOCAL_API_KEY=KEY, DORA_LOCAL_WEBHOOK_SECRET=SECRET, POWERTOOLS_LOG_LEVEL="ERROR", **environment
    )


# --------------------------------------------------------------------------------------------- the views compared
def _by_key(run: Run) -> dict[tuple[str, str], list[dict[str, Any]]]:
    stored: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for item in run.stored:
        stored.setdefault((item["project"], item["finished_at"]), []).append(item)
    return stored


def _attributed(detail: dict[str, Any]) -> dict[str, Any]:
    """What attribution and the recompute made of one deployment (no ids, no instants of processing).

    An unsuccessful deployment ships nothing (METRICS §5): whether its attempt stored ``{"state": "None"}``
    or never ran (its request was retried after the attempt failed: ``resume`` attempts only what is
    owed) is not compared."""
    attribution = detail.get("attribution") or {}
    figures = detail.get("figures") or {}
    if detail["state"] != "Success" and attribution.get("state") in (None, "None"):
        attribution = {"state": "None", "commits": [], "commit_count": 0, "pull_request_count": 0}
    return {
        "state": attribution.get("state"),
        "mode": attribution.get("mode"),
        "commits": sorted(attribution.get("commits") or []),
        "commit_count": attribution.get("commit_count"),
        "pull_request_count": attribution.get("pull_request_count"),
        "change_started_at": attribution.get("change_started_at"),
        "figures": _without_ids(figures),
    }


def _without_ids(figures: dict[str, Any]) -> dict[str, Any]:
    """Figures without the ids the server generates (they differ between the runs for DX and GitHub):
    ``*_id`` fields, the cause, and the ids inside the reasons (whose rules and kinds stay compared)."""
    kept = {k: v for k, v in figures.items() if not k.endswith("_id") and k != "change_failure_cause"}
    for name in ("change_failure_reasons", "rework_reasons"):
        if kept.get(name):
            kept[name] = [{k: v for k, v in r.items() if not k.endswith("_id")} for r in kept[name]]
    return kept


def _metrics_view(metrics: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """A report's ``/metrics`` by series, only the days with deployments: the runs end seconds apart, and
    ``LastQuarter`` is counted back from each one's now (an empty day may come or go at its edges)."""
    return {
        series["Name"]: [i for i in series["Intervals"] if i["DeploymentFailureRate"]["Total"]]
        for series in metrics["Series"]
    }


def _brief(view: dict[str, Any]) -> str:
    figures = view["figures"]
    return (
        f"{view['state']}/{view['mode']} {view['commit_count']} commits "
        f"{[c[:7] for c in view['commits']]} lead {figures.get('lead_time_seconds')}"
        + ("".join(f" {k}={v}" for k, v in figures.items() if k not in ("lead_time_seconds", "lead_time_source")))
    )


def _rounded(phases: dict[str, float]) -> str:
    return ", ".join(f"{name} by {seconds:.1f} s" for name, seconds in phases.items())


def _describe(run: Run) -> str:
    attempts = Counter(o.attempts for _, o in run.sent)
    errors: Counter[str] = Counter()
    for _, outcome in run.sent:
        errors.update(outcome.errors)
    return (
        f"{run.name}: {len(run.sent)} deployments, {run.seconds:.1f} s ({_rounded(run.phases)}), "
        f"attempts {dict(sorted(attempts.items()))}, "
        f"retried on {dict(errors)}; faults {json.dumps(run.faults.get('injected'))} "
        f"in {run.faults.get('calls')} calls"
        + "".join(
            f"\n  {n} x {what}" for what, n in (run.faults.get("detail") or {}).items() if not what.startswith("before")
        )
        + f"\n  midway {json.dumps(run.midway)}; "
        f"settling {json.dumps([{k: v for k, v in s.items() if k != 'schedule'} for s in run.settle])}"
    )


# --------------------------------------------------------------------------------------------- the test
def test_under_chaos_every_accepted_deployment_is_stored_once_attributed_and_counted_as_in_a_clean_run(
    tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    base = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=PER_DIALECT // 4 + 5)
    record_property("chaos_seed", SEED)
    record_property("chaos_rate", RATE)
    with ExitStack() as stack:
        chaotic = stack.enter_context(
            serve(tmp_path / "chaos.log", DORA_LOCAL_FAULT_RATE=str(RATE), DORA_LOCAL_FAULT_SEED=str(SEED))
        )
        clean = stack.enter_context(serve(tmp_path / "clean.log"))
        with ThreadPoolExecutor(max_workers=2) as pool:
            chaos_future = pool.submit(play, "chaos", chaotic.url, base, chaos=True)
            clean_future = pool.submit(play, "clean", clean.url, base, chaos=False)
            chaos, reference = chaos_future.result(), clean_future.result()
        logs = f"\n--- chaos log (tail) ---\n{chaotic.tail()}"
    context = f"seed {SEED}, rate {RATE}\n{_describe(chaos)}\n{_describe(reference)}"
    record_property("chaos_summary", context)
    record_property("chaos_faults", json.dumps(chaos.faults.get("detail")))
    sys.stdout.write(context + "\n")  # shown with -rP

    # The chaos happened, in every form; the clean run has something to compare.
    injected = chaos.faults.get("injected") or {}
    assert all(injected.get(kind, 0) > 0 for kind in ("before", "after", "crash")), context
    assert reference.summary["deployments"] == len(reference.sent), reference.summary
    assert reference.summary["lead_time"]["count"] > 0, reference.summary
    assert reference.summary["change_failure_rate"]["change_failures"] > 0, reference.summary
    assert reference.summary["recovery_time"]["count"] > 0, reference.summary

    # Clients: every request ends in a 2xx (a 4xx under chaos is a transient failure told as the client's fault).
    for run in (reference, chaos):
        refused = [(o.call.label, o.status, o.body) for o in run.pushes + [o for _, o in run.sent] if not o.accepted]
        assert not refused, f"{run.name}: requests not accepted: {refused}\n{context}{logs}"

    # Stored once: every accepted deployment exactly once, nothing else.
    for run in (reference, chaos):
        stored = _by_key(run)
        problems = []
        for item, outcome in run.sent:
            copies = stored.get((item.project, item.finished_at), [])
            if outcome.accepted and len(copies) != 1:
                problems.append(f"{item.call.label}: accepted, stored {len(copies)} times")
            if not outcome.accepted and len(copies) > 1:
                problems.append(f"{item.call.label}: never accepted, stored {len(copies)} times")
            if item.client_id is not None and copies and [c["id"] for c in copies] != [item.client_id]:
                problems.append(f"{item.call.label}: stored as {[c['id'] for c in copies]}, not {item.client_id}")
        known = {(item.project, item.finished_at) for item, _ in run.sent}
        problems += [f"stored but never sent: {key}" for key in stored if key not in known]
        assert not problems, f"{run.name}: " + "\n".join(problems) + f"\n{context}"

    # Attributed as in the clean run; every successful deployment naming code Resolved.
    clean_views = {key: _attributed(reference.details[copies[0]["id"]]) for key, copies in _by_key(reference).items()}
    chaos_views = {key: _attributed(chaos.details[copies[0]["id"]]) for key, copies in _by_key(chaos).items()}
    unresolved = [
        (name, item.call.label, view["state"])
        for name, run_views in (("clean", clean_views), ("chaos", chaos_views))
        for item, _ in reference.sent
        if item.successful and (view := run_views[(item.project, item.finished_at)])["state"] != "Resolved"
    ]
    assert not unresolved, f"successful deployments not Resolved: {unresolved}\n{context}{logs}"
    differences = {
        item.call.label: {"clean": clean_views[key], "chaos": chaos_views[key]}
        for item, _ in reference.sent
        if clean_views[(key := (item.project, item.finished_at))] != chaos_views[key]
    }
    if differences:
        dump = tmp_path / "differences.json"
        dump.write_text(json.dumps({"context": context, "differences": differences}, indent=1))
        lines = [f"{label}: clean {_brief(d['clean'])}; chaos {_brief(d['chaos'])}" for label, d in differences.items()]
        pytest.fail(
            f"{len(differences)} deployments attributed or figured otherwise under chaos (all of it in {dump}):\n"
            + "\n".join(lines)
            + f"\n{context}"
        )

    # Settled: the last round of the settling found nothing left to deliver.
    for run in (reference, chaos):
        assert not (run.settle[-1]["drain"]["delivered"] or run.settle[-1]["drain again"]["delivered"]), context

    # The recompute's figures: the same numbers (computed at other instants: as_of differs), all counted.
    assert chaos.summary["pending"] == reference.summary["pending"] == 0, context
    chaos_summary, clean_summary = (
        {k: v for k, v in s.items() if k != "as_of"} for s in (chaos.summary, reference.summary)
    )
    assert chaos_summary == clean_summary, f"summary:\n{chaos.summary}\n!=\n{reference.summary}\n{context}"
    chaos_metrics, clean_metrics = _metrics_view(chaos.metrics), _metrics_view(reference.metrics)
    assert chaos_metrics == clean_metrics, (
        f"/metrics:\n{json.dumps(chaos_metrics)[:6000]}\n!=\n{json.dumps(clean_metrics)[:6000]}\n{context}"
    )


# --------------------------------------------------------------------------------------------- the injector itself
def test_faults_hit_only_calls_functions_make_before_or_after_they_run_as_aws_fails() -> None:
    import boto3
    from botocore.exceptions import ClientError
    from botocore.stub import Stubber

    from dora_local import faults

    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")
    put = {"TableName": "t", "Item": {"PK": {"S": "a"}}}
    get = {"TableName": "t", "Key": {"PK": {"S": "a"}}}

    def attempt(plan: faults.Plan, operation: str, *, in_function: bool = True) -> tuple[str, bool]:
        """What a call gets ("ok", an error code or "crash") and whether it reached the endpoint."""
        faults.configure(plan)
        method = "put_item" if operation == "PutItem" else "get_item"
        with Stubber(client) as stubber:
            stubber.add_response(method, {})
            call = getattr(client, method)
            try:
                if in_function:
                    with faults.invoking("SomeFunction"):
                        call(**(put if operation == "PutItem" else get))
                else:
                    call(**(put if operation == "PutItem" else get))
                outcome = "ok"
            except ClientError as error:
                outcome = f"{error.response['Error']['Code']} {error.response['ResponseMetadata']['HTTPStatusCode']}"
            except faults.FunctionCrash:
                outcome = "crash"
            return outcome, not stubber._queue  # the stubbed response was consumed: the call ran

    always = faults.Plan(rate=1.0, seed=7, after_share=0.0, crash_share=0.0)
    try:
        assert attempt(always, "PutItem", in_function=False) == ("ok", True)  # the runtime's and tests' own calls
        before, ran = attempt(always, "PutItem")
        assert before.split()[0] in {
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "InternalServerError",
        }
        assert not ran
        after = faults.Plan(rate=1.0, seed=7, after_share=1.0, crash_share=0.0)
        assert attempt(after, "PutItem") == ("InternalServerError 500", True)
        assert attempt(after, "GetItem")[1] is False  # a read fails before it runs: after it, nothing differs
        assert attempt(faults.Plan(rate=1.0, seed=7, after_share=0.0, crash_share=1.0), "PutItem") == ("crash", True)
        assert faults.report()["injected"] == {"crash": 1}
        assert attempt(faults.Plan(rate=1.0, operations=frozenset({"GetItem"})), "PutItem") == ("ok", True)
        assert attempt(faults.Plan(), "PutItem") == ("ok", True)
    finally:
        faults.configure(faults.Plan())
    environment = {"DORA_LOCAL_FAULT_RATE": "0.2", "DORA_LOCAL_FAULT_SEED": "3", "DORA_LOCAL_FAULT_OPERATIONS": "A, B"}
    assert faults.from_environment(environment) == faults.Plan(rate=0.2, seed=3, operations=frozenset({"A", "B"}))
    assert faults.from_environment({}) == faults.Plan()
    with pytest.raises(ValueError, match="rate"):
        faults.Plan.of({"rate": 2})
