"""The fanned-out recompute under faults, through the real schedule and worker functions (a review).

The review found, and commit 5bf4cb6 fixed, these defects; each test here failed before it:

- **Marks of the same instant.** A request stamps each of its writes with its start time, so a later
  transaction of the same request left a dirty mark with the same ``dirty_at`` as the one a work item had
  just read; the item cleared it, and the later deployment was counted by no tick (marks have ids now).
- **A report failing for good** kept every mark of its space (every stream recomputed every tick) and was
  invisible on ``/health``: only the marks of its own streams stay now, and the visit records a
  ``reports`` failure naming it.
- **A deleted report's views.** ``DELETE`` of a report left its computed state and views in the table,
  and a recompute running meanwhile wrote them back.
- **A stale work item for a space that does not exist** wrote a health record under that space.

A property ties them together: random histories in two spaces, the tick's work items delivered
duplicated, shuffled, in random batches, through a crash and with writes landing between the plan and
the work (some inside an item, stamped with the instant of the marks it read), store what a clean space
with the same final history recomputed once stores. ``DORA_PROPERTY_SEEDS=a:b`` runs seeds a..b-1.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from dora_insights.domain.times import format_instant
from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.support import lambdas
from tests.support.events import load_event
from tests.support.fixtures import OTHER_KEY, OTHER_SPACE
from tests.support.native import SPACE, create_deployment
from tests.support.recompute import SCHEDULE, WORKER, scheduled_run

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
REPORTS = "/api/{spaceId}/insights/reports"
REPORT = REPORTS + "/{reportId}"
SUMMARY_RANGE = {"from": "2024-01-01T00:00:00Z", "to": "2024-03-11T00:00:00Z"}
WRITES = frozenset({"put_item", "delete_item", "update_item", "batch_write_item", "transact_write_items"})

_WIDE = os.environ.get("DORA_PROPERTY_SEEDS")


def _seeds(*default: int) -> list[int]:
    return list(range(*map(int, _WIDE.split(":")))) if _WIDE else list(default)


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


# --------------------------------------------------------------------------------------------- helpers
def _record(body: dict[str, Any], message_id: str) -> dict[str, Any]:
    from dora_local.events import sqs_record
    from dora_local.iam import queue_arn
    from dora_local.template import REGION

    message = {"MessageId": message_id, "ReceiptHandle": f"rh-{message_id}", "Body": json.dumps(body)}
    return sqs_record(message, queue_arn(os.environ["RECOMPUTE_QUEUE_URL"], REGION))


def _space_item(space_id: str = SPACE) -> dict[str, Any]:
    return {"kind": "space", "space_id": space_id, "planned_at": format_instant(NOW), "streams": []}


def _deliver(context: Any, *bodies: dict[str, Any]) -> Any:
    """One invocation of the worker with ``bodies`` as its batch; its partial batch response."""
    records = [_record(body, f"m-{n}") for n, body in enumerate(bodies)]
    return lambdas.invoke(WORKER, {"Records": records}, context)


def _stream_of(deployment: dict[str, Any]) -> str:
    from dora_insights.domain.model import stream_key

    return stream_key(
        deployment["project_id"], deployment["channel_id"], deployment["environment_id"], deployment["tenant_id"]
    )


def _create_report(api: Api, space: str = SPACE, key: str = ADMIN_KEY, **fields: Any) -> str:
    made = api.call("POST", REPORTS, path_params={"spaceId": space}, body={"Name": "All", **fields}, key=key)
    assert made.status == 201, made.body
    return str(made.body["Id"])


def _delete_report(api: Api, report_id: str) -> HttpResult:
    return api.call("DELETE", REPORT, path_params={"spaceId": SPACE, "reportId": report_id}, key=ADMIN_KEY)


def _number(report_id: str) -> int:
    return int(report_id.rsplit("-", 1)[1])


def _table(prefix: str = "") -> list[dict[str, Any]]:
    """Every item of the table whose partition key starts with ``prefix``, as DynamoDB holds it."""
    pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName=os.environ["TABLE_NAME"])
    found = [item for page in pages for item in page["Items"] if item["PK"]["S"].startswith(prefix)]
    return sorted(found, key=lambda i: (i["PK"]["S"], i["SK"]["S"]))


def _report_items(number: int) -> list[dict[str, Any]]:
    """The report's computed state and every item of its views' partitions, whatever their generation."""
    from dora_insights.dal import keys

    state = keys.report_state(SPACE, number)
    states = [i for i in _table(state[keys.PK]) if i["SK"]["S"] == state[keys.SK]]
    return states + _table(keys.aggregates_pk(SPACE, number, ""))


def _summary(api: Api, space: str = SPACE, key: str = ADMIN_KEY, **query: str) -> dict[str, Any]:
    found = api.call(
        "GET", "/api/{spaceId}/summary", path_params={"spaceId": space}, query={**SUMMARY_RANGE, **query}, key=key
    )
    assert found.status == 200, found.body
    return dict(found.body)


def _health(api: Api) -> dict[str, Any]:
    found = api.call("GET", "/api/{spaceId}/health", path_params={"spaceId": SPACE}, key=ADMIN_KEY)
    assert found.status == 200, found.body
    return dict(found.body)


def _counted(store: Any, space: str = SPACE) -> list[str]:
    """The deployments the stored figures count, by id."""
    return sorted(r["deployment_id"] for records in store.metrics().space_figures(space).values() for r in records)


# --------------------------------------------------------------------------------------------- marks
def test_a_later_write_stamped_with_the_same_instant_is_not_lost(
    api: Api, clock: Clock, store: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A space item reads the stream's mark (stamped T), and while it computes, a second deployment of the
    stream lands stamped T too (a later transaction of a request that started at T). The item's figures
    miss it; its mark must survive the item, so the next tick counts it."""
    from dora_insights.dal.metrics import MetricsStore

    create_deployment(api, project="shop", finished_at="2024-03-01T10:00:00Z", id="first")
    stamped = clock.now
    clock.advance(timedelta(seconds=5))  # the mark is settled: the item clears it once done
    original: Callable[..., bool] = MetricsStore.write_stream_figures
    landed: list[dict[str, Any]] = []

    def write_stream_figures(self: MetricsStore, *args: Any) -> bool:
        if not landed:  # the item has read the mark and the stream's deployments
            running, clock.now = clock.now, stamped
            try:
                landed.append(create_deployment(api, project="shop", finished_at="2024-03-01T11:00:00Z", id="second"))
            finally:
                clock.now = running
        return original(self, *args)

    monkeypatch.setattr(MetricsStore, "write_stream_figures", write_stream_figures)
    assert _deliver(lambda_context, _space_item()) == {"batchItemFailures": []}
    monkeypatch.setattr(MetricsStore, "write_stream_figures", original)
    assert landed
    after_item = [(m["stream"], m["dirty_at"]) for m in store.list_dirty_streams(SPACE)]

    for _ in range(2):
        clock.advance(timedelta(minutes=5))
        scheduled_run(lambda_context)

    assert _counted(store) == ["first", "second"]  # before the fix: ["first"], for good
    assert _summary(api)["deployments"] == 2
    assert after_item == [(_stream_of(landed[0]), format_instant(stamped))]  # the second write's mark stayed
    assert store.list_dirty_streams(SPACE) == []


# --------------------------------------------------------------------------------------------- failing report
@dataclass
class FailingReport:
    """A report of project ``a`` only that fails every recompute, and the streams of projects a and b."""

    report_id: str
    a: str
    b: str
    attempts: list[str] = field(default_factory=list)  # every stream recompute, by stream


@pytest.fixture
def failing_report(api: Api, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> FailingReport:
    from dora_insights.logic import metrics
    from dora_insights.logic import recompute as logic

    a = create_deployment(api, project="a", finished_at="2024-03-01T10:00:00Z")
    b = create_deployment(api, project="b", finished_at="2024-03-01T11:00:00Z")
    broken = FailingReport(
        _create_report(api, Name="Only a", ProjectIds=[a["project_id"]]), _stream_of(a), _stream_of(b)
    )
    report_original: Callable[..., Any] = metrics.recompute_report
    stream_original: Callable[..., bool] = logic.recompute_stream

    def recompute_report(store: Any, space_id: str, report: Any, *args: Any, **kwargs: Any) -> Any:
        if report.id == broken.report_id:
            raise RuntimeError("the report's views cannot be computed")
        return report_original(store, space_id, report, *args, **kwargs)

    def recompute_stream(store: Any, space_id: str, stream: str, *args: Any, **kwargs: Any) -> bool:
        broken.attempts.append(stream)
        return stream_original(store, space_id, stream, *args, **kwargs)

    monkeypatch.setattr(metrics, "recompute_report", recompute_report)
    monkeypatch.setattr(logic, "recompute_stream", recompute_stream)
    clock.advance(timedelta(minutes=1))  # both marks are settled
    return broken


def test_a_report_failing_for_good_holds_only_the_marks_of_its_own_streams(
    failing_report: FailingReport, clock: Clock, store: Any, lambda_context: Any
) -> None:
    first = scheduled_run(lambda_context)
    assert (first["reports_failed"], first["items_failed"]) == (1, 0)
    assert [m["stream"] for m in store.list_dirty_streams(SPACE)] == [failing_report.a]  # before: a and b

    for _ in range(2):
        failing_report.attempts.clear()
        clock.advance(timedelta(minutes=5))
        scheduled_run(lambda_context)
        assert failing_report.b not in failing_report.attempts  # before: b recomputed every tick
        assert failing_report.a in failing_report.attempts  # its report still waits for it
        assert [m["stream"] for m in store.list_dirty_streams(SPACE)] == [failing_report.a]


def test_a_report_failing_for_good_shows_on_the_spaces_health(
    api: Api, failing_report: FailingReport, lambda_context: Any
) -> None:
    scheduled_run(lambda_context)
    failure = _health(api)["last_failure"]  # before: None, status ok, nothing to see
    assert failure is not None
    assert (failure["stage"], failure["error_type"]) == ("reports", "RuntimeError")
    assert failing_report.report_id in failure["error_message"]


# --------------------------------------------------------------------------------------------- deleted reports
@pytest.mark.parametrize("computed_before", [False, True], ids=["first_views", "views_replaced"])
@pytest.mark.parametrize("moment", ["before_views", "between_views_and_state"])
def test_a_report_deleted_while_its_space_item_runs_is_not_written_back(
    api: Api,
    clock: Clock,
    store: Any,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    computed_before: bool,
    moment: str,
) -> None:
    from dora_insights.dal import keys
    from dora_insights.dal.metrics import MetricsStore

    report_id = _create_report(api)
    number = _number(report_id)
    create_deployment(api, project="shop", finished_at="2024-03-01T10:00:00Z")
    clock.advance(timedelta(minutes=1))
    if computed_before:
        scheduled_run(lambda_context)
        assert store.metrics().report_state(SPACE, number) is not None
        create_deployment(api, project="shop", finished_at="2024-03-02T10:00:00Z")  # the report is due again
        clock.advance(timedelta(minutes=1))
    deleted: list[int] = []

    def delete_once() -> None:
        if not deleted:
            deleted.append(_delete_report(api, report_id).status)

    if moment == "before_views":
        write: Callable[..., bool] = MetricsStore.write_report_aggregates

        def write_report_aggregates(self: MetricsStore, *args: Any, **kwargs: Any) -> bool:
            delete_once()
            return write(self, *args, **kwargs)

        monkeypatch.setattr(MetricsStore, "write_report_aggregates", write_report_aggregates)
    else:
        put: Callable[..., None] = MetricsStore.batch_put
        views = f"{keys.aggregates_pk(SPACE, number, '')}"

        def batch_put(self: MetricsStore, items: Any) -> None:
            items = list(items)
            put(self, items)
            if any(str(i[keys.PK]).startswith(views) for i in items):  # the views are in, the state not yet
                delete_once()

        monkeypatch.setattr(MetricsStore, "batch_put", batch_put)

    assert _deliver(lambda_context, _space_item()) == {"batchItemFailures": []}
    monkeypatch.undo()

    assert deleted == [204]
    assert _report_items(number) == []  # before: the state and the views written back, for good
    found = api.call("GET", REPORT, path_params={"spaceId": SPACE, "reportId": report_id}, key=ADMIN_KEY)
    assert found.status == 404


def test_deleting_a_computed_report_removes_its_state_and_views(
    api: Api, clock: Clock, store: Any, lambda_context: Any
) -> None:
    report_id = _create_report(api)
    other_id = _create_report(api, Name="Kept")
    create_deployment(api, project="shop", finished_at="2024-03-01T10:00:00Z")
    clock.advance(timedelta(minutes=1))
    scheduled_run(lambda_context)
    number = _number(report_id)
    kept = _report_items(_number(other_id))
    assert len(_report_items(number)) > 1  # a state and its views' items

    assert _delete_report(api, report_id).status == 204

    assert _report_items(number) == []  # before: left in the table, read by nothing
    assert _report_items(_number(other_id)) == kept
    assert _delete_report(api, report_id).status == 404


# --------------------------------------------------------------------------------------------- unknown spaces
@pytest.mark.parametrize("kind", ["space", "streams"])
def test_a_stale_item_for_a_space_that_does_not_exist_writes_nothing_and_is_done(
    store: Any, clock: Clock, lambda_context: Any, kind: str
) -> None:
    before = _table()
    body = {
        "kind": kind,
        "space_id": "Spaces-404",
        "planned_at": format_instant(NOW),
        "streams": ["Projects-1/Channels-1/Environments-1/-"] if kind == "streams" else [],
    }

    assert _deliver(lambda_context, body) == {"batchItemFailures": []}  # done: not retried, not dead-lettered

    assert _table("S#Spaces-404#") == []  # before: a health record of the space that is not
    assert _table() == before


# --------------------------------------------------------------------------------------------- property
ONE = "/api/{spaceId}/deployments/{deploymentId}"
TWINS = {SPACE: "Spaces-3", OTHER_SPACE: "Spaces-4"}
KEYS = {
    SPACE: ADMIN_KEY,
    OTHER_SPACE: OTHER_KEY,
    "Spaces-3": "twin-key-3-0123456789",
    "Spaces-4": "twin-key-4-0123456789",
}
VOLATILE = frozenset({"as_of", "pending", "computed_at", "read_at", "generated_at"})


class _Crash(BaseException):
    """The worker's process dies (a timeout, out of memory): no ``except Exception`` stops it."""


@dataclass
class _Op:
    """One write of the history, replayable in another space."""

    kind: str  # create, patch, delete, report
    space: str
    body: dict[str, Any] = field(default_factory=dict)
    target: str = ""


@dataclass
class _History:
    """A random history, every write as applied (in order), and the reports it created in each space."""

    rng: random.Random
    ops: list[_Op] = field(default_factory=list)
    live: dict[str, list[str]] = field(default_factory=dict)
    reports: dict[str, list[str]] = field(default_factory=dict)
    made: int = 0
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)  # each create's body, by id

    def create(self, space: str) -> _Op:
        self.made += 1
        rng = self.rng
        body: dict[str, Any] = {
            "id": f"d{self.made}",
            "project": rng.choice(["shop", "web", "api"]),
            "environment": rng.choice(["production", "staging"]),
            "finished_at": format_instant(NOW - timedelta(hours=rng.randint(2, 40 * 24), minutes=rng.randint(0, 59))),
            "state": rng.choice(["Success", "Success", "Failed"]),
            "version": f"1.{rng.randint(0, 5)}",
        }
        if rng.random() < 0.2:
            body["tenant"] = "acme"
        self.bodies[body["id"]] = body
        return _Op("create", space, body)

    def later(self, space: str) -> _Op:
        """Mostly a deployment of a stream that has some (the one an item may be working on), else any write."""
        live = self.live.get(space, [])
        if not live or self.rng.random() < 0.3:
            return self.random(space)
        like = self.bodies[self.rng.choice(live)]
        op = self.create(space)
        op.body.pop("tenant", None)
        op.body.update({k: like[k] for k in ("project", "environment", "tenant") if k in like})
        return op

    def random(self, space: str) -> _Op:
        rng, live = self.rng, self.live.get(space, [])
        if not live or rng.random() < 0.55:
            return self.create(space)
        target = rng.choice(live)
        if rng.random() < 0.6:
            body = rng.choice(
                [
                    {"state": "Failed"},
                    {"state": "Success"},
                    {"version": f"1.{rng.randint(0, 5)}"},
                    {"change_failure": rng.random() < 0.5},
                ]
            )
            return _Op("patch", space, body, target)
        return _Op("delete", space, {}, target)

    def do(self, api: Api, op: _Op) -> None:
        """Apply ``op`` in its own space and keep it."""
        self.ops.append(op)
        self.reports.setdefault(op.space, [])
        made = _apply(api, op, op.space)
        if op.kind == "create":
            self.live.setdefault(op.space, []).append(op.body["id"])
        elif op.kind == "delete":
            self.live[op.space].remove(op.target)
        elif made is not None:
            self.reports[op.space].append(made)


def _apply(api: Api, op: _Op, space: str) -> str | None:
    """``op`` in ``space`` through its route; a report's id."""
    key = KEYS[space]
    one = {"spaceId": space, "deploymentId": op.target}
    if op.kind == "create":
        create_deployment(api, space=space, key=key, **op.body)
    elif op.kind == "patch":
        patched = api.call("PATCH", ONE, path_params=one, body=op.body, key=key)
        assert patched.status == 200, patched.body
    elif op.kind == "delete":
        removed = api.call("DELETE", ONE, path_params=one, key=key)
        assert removed.status == 204, removed.body
    else:
        return _create_report(api, space, key, **op.body)
    return None


@dataclass
class _Faults:
    """Store writes during the worker's invocations: the history's writes that land inside an item (stamped
    with the instant of the marks it read), and one crash before or after a write."""

    crash_at: int
    crash_after: bool
    # The history's writes by the worker's write they land before, each given the space that one writes.
    inside: dict[int, Callable[[str | None], None]] = field(repr=False)
    armed: bool = False
    busy: bool = False
    writes: int = 0
    crashed: int = 0

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """``Store.call`` with the faults: only writes of the worker count, not those the history makes."""

        def call(store: Any, operation: str, **kwargs: Any) -> Any:
            if not self.armed or self.busy or operation not in WRITES:
                return original(store, operation, **kwargs)
            self.writes += 1
            write = self.inside.pop(self.writes, None)
            if write is not None:
                self.busy = True
                try:
                    written = re.search(r"S#(Spaces-[0-9]+)#", json.dumps(kwargs, default=str))
                    write(written[1] if written else None)
                finally:
                    self.busy = False
            if self.writes == self.crash_at and not self.crash_after:
                self.crashed += 1
                raise _Crash(operation)
            done = original(store, operation, **kwargs)
            if self.writes == self.crash_at:
                self.crashed += 1
                raise _Crash(operation)
            return done

        return call


def _take_items() -> list[dict[str, Any]]:
    """Every work item the tick sent, received and deleted (the test delivers them itself)."""
    url = os.environ["RECOMPUTE_QUEUE_URL"]
    sqs = boto3.client("sqs")
    bodies: list[dict[str, Any]] = []
    with lambdas.running_as(WORKER):
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def _converge(store: Any, lambda_context: Any, clock: Clock, spaces: list[str]) -> None:
    """Ticks until no mark waits in ``spaces`` (a mark younger than 2 s waits for the next one)."""
    for _ in range(3):
        clock.advance(timedelta(minutes=5))
        assert scheduled_run(lambda_context)["items_failed"] == 0
        if not any(store.list_dirty_streams(s) for s in spaces):
            return
    pytest.fail(f"marks still waiting: {[store.list_dirty_streams(s) for s in spaces]}")


def _without(value: Any) -> Any:
    """``value`` without the fields that say when it was computed."""
    if isinstance(value, dict):
        return {k: _without(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_without(v) for v in value]
    return value


def _stored(api: Api, store: Any, space: str, reports: list[str]) -> dict[str, Any]:
    """What a space's figures, report views and /summary say (a stream counting nothing left out: one whose
    deployments all went before its first recompute never had figures)."""
    key = KEYS[space]
    figures = {s: records for s, records in store.metrics().space_figures(space).items() if records}
    views = {}
    for report_id in reports:
        for split in ("None", "Project", "Environment"):
            query = {"split": split, "timeRange": "LastQuarter", "granularity": "Weekly"}
            found = api.call(
                "GET", REPORT + "/metrics", path_params={"spaceId": space, "reportId": report_id}, query=query, key=key
            )
            assert found.status == 200, found.body
            views[f"{report_id}/{split}"] = _without(found.body)
    summaries = {
        environment or "all": _without(
            _summary(api, space, key, **({"environment": environment} if environment else {}))
        )
        for environment in (None, "production", "staging")
    }
    return {"figures": figures, "views": views, "summary": summaries}


@pytest.mark.filterwarnings("ignore:No application metrics to publish")  # a crashed invocation counted nothing
@pytest.mark.parametrize("seed", _seeds(1, 4, 5))  # each fails before the fix (1:31 passed after it)
def test_duplicated_shuffled_crashed_items_with_writes_meanwhile_store_what_a_clean_recompute_stores(
    api: Api,
    other_space: str,
    store: Any,
    clock: Clock,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    seed: int,
) -> None:
    from dora_insights.dal.store import Store
    from dora_insights.logic import admin

    rng = random.Random(seed)
    history = _History(rng)
    spaces = [SPACE, other_space]
    for space in spaces:
        history.do(api, _Op("report", space, {"Name": "All"}))
        history.do(api, history.create(space))  # its project is Projects-1
        history.do(api, _Op("report", space, {"Name": "First project", "ProjectIds": ["Projects-1"]}))
    for _ in range(rng.randint(4, 8)):
        history.do(api, history.random(rng.choice(spaces)))
    if rng.random() < 0.5:  # figures and views computed before: the items replace generations
        clock.advance(timedelta(minutes=1))
        scheduled_run(lambda_context)
        for _ in range(rng.randint(2, 4)):
            history.do(api, history.random(rng.choice(spaces)))

    stamped = clock.now  # the instant of the marks the items read
    clock.advance(timedelta(seconds=5))
    lambdas.invoke(SCHEDULE, load_event(f"{SCHEDULE}.json"), lambda_context)
    bodies = _take_items()
    assert sorted(b["space_id"] for b in bodies) == spaces
    for _ in range(rng.randint(0, 2)):  # between the plan and the work
        history.do(api, history.random(rng.choice(spaces)))

    def landing(space: str | None) -> None:  # a later transaction of a request that started at ``stamped``
        running, clock.now = clock.now, stamped
        try:
            history.do(api, history.later(space if space in spaces else rng.choice(spaces)))
        finally:
            clock.now = running

    faults = _Faults(
        crash_at=rng.randint(1, 30),
        crash_after=rng.random() < 0.5,
        inside=dict.fromkeys(rng.sample(range(1, 40), rng.randint(1, 4)), landing),
    )
    monkeypatch.setattr(Store, "call", faults.wrap(Store.call))
    items = bodies + rng.sample(bodies, k=rng.randint(1, len(bodies)))  # duplicate deliveries
    rng.shuffle(items)  # SQS promises no order
    while items:
        size = rng.randint(1, 5)
        batch, items = items[:size], items[size:]
        faults.armed = True
        try:
            response = _deliver(lambda_context, *batch)
        except _Crash:  # the whole batch comes back after its visibility timeout
            for body in batch:
                items.insert(rng.randint(0, len(items)), body)
            continue
        finally:
            faults.armed = False
        assert response == {"batchItemFailures": []}
    for write in faults.inside.values():  # those the items' writes never reached land after them
        write(None)
    monkeypatch.undo()
    _converge(store, lambda_context, clock, spaces)

    for twin in TWINS.values():  # the same final history, in a clean space, recomputed once
        admin.ensure_space(store, twin, twin, NOW)
        admin.ensure_api_key(store, twin, "twin admin", KEYS[twin], NOW)
    twin_reports: dict[str, list[str]] = {space: [] for space in spaces}
    for op in history.ops:
        made = _apply(api, op, TWINS[op.space])
        twin_reports[op.space] += [made] if made is not None else []
    assert twin_reports == history.reports  # the same ids, as the same catalogue's
    _converge(store, lambda_context, clock, list(TWINS.values()))

    for space, twin in TWINS.items():
        reports = history.reports[space]
        stored, clean = _stored(api, store, space, reports), _stored(api, store, twin, reports)
        for part in ("figures", "views", "summary"):
            assert stored[part] == clean[part], f"seed {seed}, {space}: its {part} are not a clean recompute's"
