"""Fresh numbers on read (issue 22, METRICS §7): what a read that brings its streams up to date costs.

Read routes recompute the streams they cover first when little waits (``logic/freshness.py``:
at most ``READ_BOUND`` deployments re-read, a report's views only up to ``REPORT_READ_BOUND``).
Measured against in-process moto, for a warm function, per read: handler time (median), the
time of it spent in DynamoDB calls (moto included), round trips and capacity units.

1. ``GET /api/{spaceId}/summary``: nothing pending (the schedule ran), 10 deployments posted
   (through the route) to a computed stream of 100, a never-computed stream of ``READ_BOUND``
   deployments (the read re-reads all of them), and of ``READ_BOUND + 1`` (past the bound: the
   read answers from what is computed and counts the stream as pending).
2. ``GET /api/{spaceId}/insights/reports/{reportId}/metrics`` with nothing and 10 pending.

Each read with pending work gets fresh work: the schedule runs, new deployments are posted and
the clock moves past ``freshness.SETTLE`` (so the read also records the marks caught up); only
the read is timed. The streams at the bound are seeded with the route's own code (build the
deployment, its item, its stream's dirty mark counting every deployment) in batches, in a fresh
table per read: a deployment's transaction costs moto a copy of the whole table.
Capacity units: as bench/ingest.py's meter, plus BatchWriteItem (a put by its item's size and
index copies, a delete as 1 WCU: its item's size is not in the request).
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.capacity import write_units
from bench.ingest import _environment, _Meter, metered, seeded_table

SPACE = "Spaces-1"
KEY = "bench-key"
NOW = datetime(2024, 3, 10, 12, tzinfo=UTC)
FIRST = datetime(2024, 1, 15, tzinfo=UTC)  # deployment n of a stream finishes n hours later
RANGE = {"from": "2024-01-01T00:00:00Z", "to": "2024-04-01T00:00:00Z"}
EXISTING = 100  # deployments of the computed stream the pending cases post to
NEW = 10  # deployments posted before each read with pending work
SAMPLES = 5
BOUND_SAMPLES = 3


@dataclass
class Sample:
    """One timed read."""

    seconds: float
    in_calls: float
    items: int
    calls: Counter[str]
    rcu: float
    wcu: float
    pending: int
    deployments: int | None


@dataclass
class Meter:
    """bench/ingest.py's meter on the function's client, with BatchWriteItem's units and the time
    spent between a call's parameters being built and its answer parsed."""

    counts: _Meter
    wcu: float = 0.0
    seconds: float = 0.0
    items: int = 0
    _started: float = 0.0

    def before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self._started = time.perf_counter()
        if model.name == "BatchWriteItem":
            for requests in params["RequestItems"].values():
                for request in requests:
                    put = request.get("PutRequest")
                    self.wcu += write_units(put["Item"], transactional=False) if put else 1.0

    def after(self, parsed: dict[str, Any], **_: Any) -> None:
        self.seconds += time.perf_counter() - self._started
        self.items += len(parsed.get("Items", ())) + sum(len(i) for i in parsed.get("Responses", {}).values())

    def reset(self) -> None:
        self.counts.reset()
        self.wcu = self.seconds = 0.0
        self.items = 0


def _metered() -> Meter:
    from dora_insights.dal import aws as dal_aws

    meter = Meter(metered())
    client = dal_aws.client("dynamodb")
    client.meta.events.register("before-parameter-build.dynamodb", meter.before)
    client.meta.events.register("after-call.dynamodb", meter.after)
    return meter


def _body(project: str, n: int) -> dict[str, Any]:
    finished = FIRST + timedelta(hours=n)
    return {
        "project": project,
        "environment": "production",
        "finished_at": finished.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "version": f"1.0.{n}",
    }


def _invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
    from tests.conftest import _Context
    from tests.support import lambdas

    response: dict[str, Any] = lambdas.invoke(function, event, _Context())
    return response


def _post(project: str, n: int) -> None:
    """One deployment through ``POST /api/{spaceId}/deployments``."""
    from tests.support.events import http_event

    event = http_event(
        "POST", "/api/{spaceId}/deployments", path_params={"spaceId": SPACE}, body=_body(project, n), key=KEY
    )
    response = _invoke("CreateDeploymentFunction", event)
    assert response["statusCode"] == 201, response


def _seed(store: Any, project: str, count: int, now: datetime) -> None:
    """``count`` deployments of one stream, stored as the route stores them (the same deployment
    items and the stream's dirty mark with ``pending`` = ``count``), in batches."""
    from dora_insights.dialects.native import DeploymentIn
    from dora_insights.domain.times import format_instant
    from dora_insights.logic import catalogue, deployments, spaces

    space = spaces.get_space(store, SPACE)
    drafts = [DeploymentIn.model_validate(_body(project, n)).to_draft() for n in range(count)]
    entities = catalogue.resolve(store, SPACE, deployments.wanted_entities(space, drafts[0]))
    built = [deployments.build_deployment(space, d, entities, now) for d in drafts]
    (stream,) = {d.stream_key for d in built}
    store.batch_put(store.deployment_item(d) for d in built)
    mark = store.dirty_op(SPACE, stream, format_instant(now))  # ``ADD pending :one``, once per deployment
    mark["Update"]["ExpressionAttributeValues"][":one"] = {"N": str(count)}
    store.transact([mark])


def _summary_event() -> dict[str, Any]:
    from tests.support.events import http_event

    return http_event("GET", "/api/{spaceId}/summary", path_params={"spaceId": SPACE}, query=RANGE, key=KEY)


def _metrics_event(report_id: str) -> dict[str, Any]:
    from tests.support.events import http_event

    return http_event(
        "GET",
        "/api/{spaceId}/insights/reports/{reportId}/metrics",
        path_params={"spaceId": SPACE, "reportId": report_id},
        query={"timeRange": "LastYear", "granularity": "Monthly"},
        key=KEY,
    )


def _create_report() -> str:
    from tests.support.events import http_event

    event = http_event(
        "POST", "/api/{spaceId}/insights/reports", path_params={"spaceId": SPACE}, body={"Name": "All"}, key=KEY
    )
    response = _invoke("CreateReportFunction", event)
    assert response["statusCode"] == 201, response
    return str(json.loads(response["body"])["Id"])


def _timed(meter: Meter, function: str, event: dict[str, Any]) -> Sample:
    """One read: its time, calls and units, and the pending count it answered."""
    meter.reset()
    started = time.perf_counter()
    response = _invoke(function, event)
    seconds = time.perf_counter() - started
    assert response["statusCode"] == 200, response
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    found = json.loads(response["body"]) if function == "GetSummaryFunction" else None
    return Sample(
        seconds=seconds,
        in_calls=meter.seconds,
        items=meter.items,
        calls=Counter(meter.counts.calls),
        rcu=meter.counts.rcu,
        wcu=meter.counts.wcu + meter.wcu,
        pending=int(headers["x-dora-pending"]),
        deployments=None if found is None else int(found["deployments"]),
    )


def _line(label: str, samples: list[Sample]) -> str:
    n = len(samples)
    total: Counter[str] = Counter()
    for s in samples:
        total.update(s.calls)
    calls = ", ".join(f"{name} {count / n:g}" for name, count in sorted(total.items()))
    ms = statistics.median(s.seconds for s in samples) * 1000
    in_calls = statistics.median(s.in_calls for s in samples) * 1000
    items = sum(s.items for s in samples) / n
    rcu = sum(s.rcu for s in samples) / n
    wcu = sum(s.wcu for s in samples) / n
    pending = "/".join(sorted({str(s.pending) for s in samples}))
    return f"  {label:43} {ms:8.1f} {in_calls:8.1f} {items:6.0f} {rcu:6.1f} {wcu:6.1f} {pending:>7}  {calls}"


def _pending_cases(clock: Any) -> list[tuple[str, list[Sample]]]:
    """Part 1 and 2 below the bound: one space, one stream of ``EXISTING`` computed deployments, a report."""
    from dora_insights.logic import freshness, recompute

    store = seeded_table()
    meter = _metered()
    _seed(store, "shop", EXISTING, clock.now)
    report_id = _create_report()
    posted = EXISTING

    def prepare(new: int) -> None:
        nonlocal posted
        clock.advance(timedelta(minutes=1))
        recompute.run(store, clock.now)  # every stream and the report computed, no mark left
        clock.advance(timedelta(minutes=1))
        for _ in range(new):
            _post("shop", posted)
            posted += 1
        clock.advance(freshness.SETTLE + timedelta(seconds=1))

    cases: list[tuple[str, str, Callable[[], dict[str, Any]], int]] = [
        ("summary, nothing pending", "GetSummaryFunction", _summary_event, 0),
        (f"summary, {NEW} pending (stream of {EXISTING}+)", "GetSummaryFunction", _summary_event, NEW),
        ("report metrics, nothing pending", "GetReportMetricsFunction", lambda: _metrics_event(report_id), 0),
        (f"report metrics, {NEW} pending", "GetReportMetricsFunction", lambda: _metrics_event(report_id), NEW),
    ]
    rows = []
    for label, function, event, new in cases:
        samples = []
        for _ in range(SAMPLES):
            prepare(new)
            sample = _timed(meter, function, event())
            assert sample.pending == 0, (label, sample)
            if sample.deployments is not None:
                assert sample.deployments == posted, (label, sample, posted)
            samples.append(sample)
        rows.append((label, samples))
    return rows


def _bound_case(clock: Any, count: int) -> Sample:
    """A read of the summary of a space whose only stream has ``count`` deployments never computed
    (a fresh table)."""
    from dora_insights.logic import freshness

    store = seeded_table()
    meter = _metered()
    _timed(meter, "GetSummaryFunction", _summary_event())  # warm: the caller's key and space are known
    _seed(store, "big", count, clock.now)
    clock.advance(freshness.SETTLE + timedelta(seconds=1))
    return _timed(meter, "GetSummaryFunction", _summary_event())


def run() -> None:
    """Print what a read that brings its streams up to date costs."""
    _environment()
    from tests.conftest import Clock

    from dora_insights.handlers import runtime
    from dora_insights.logic import freshness
    from dora_local.motofix import mock_aws  # moto as the local runtime and the tests run it

    clock = Clock(NOW)
    restore = runtime.use_clock(clock)
    try:
        with mock_aws():
            rows = _pending_cases(clock)
        for count, expected in ((freshness.READ_BOUND, 0), (freshness.READ_BOUND + 1, 1)):
            samples = []
            for _ in range(BOUND_SAMPLES):
                with mock_aws():
                    sample = _bound_case(clock, count)
                assert (sample.pending, sample.deployments) == (expected, count if expected == 0 else 0), sample
                samples.append(sample)
            where = "at bound" if expected == 0 else "past bound"
            rows.insert(2 + expected, (f"summary, {count:,} new in 1 stream ({where})", samples))
    finally:
        restore()
    print(
        f"fresh numbers on read (issue 22; in-process moto, warm function; median of {SAMPLES} reads, "
        f"{BOUND_SAMPLES} at the bound; READ_BOUND {freshness.READ_BOUND:,})"
    )
    print(
        f"  {'read':43} {'ms':>8} {'in ddb':>8} {'items':>6} {'RCU':>6} {'WCU':>6} {'pending':>7}"
        "  DynamoDB calls per read"
    )
    for label, samples in rows:
        print(_line(label, samples))
    print("  goal: a read with nothing pending costs 1 extra Query (the marks); at the bound it re-reads ~1,000")
    print("  deployments (~1 MB: a few hundred ms against DynamoDB; moto serialises ~2 ms per item, so seconds here)")
    print("  in moto. 'in ddb': time inside DynamoDB calls (moto's own work included); items: items the calls")
    print("  returned; pending: what the read answered (X-Dora-Pending); the streams at the bound were never computed.")
