"""Time zones, intervals and date ranges of every read that buckets or windows by time, end to end.

Random histories whose finish times cluster around hard edges (DST changes of the report's zone, half and
quarter hour offsets, UTC+14/-12, local and UTC midnights, month and year ends, the leap day, week starts,
the exact ends of a requested range) are sent through the native batch route and read back through the
served routes: the Octopus report ``/metrics`` and ``/deployments``, PostHog insights, ``/dora/metrics``,
``/summary`` and the Datadog list. The expected buckets come from an oracle written here from METRICS §4,
§6, §9 and API.md (zoneinfo and plain Python, not the product's interval code).

``DORA_PROPERTY_SEEDS=a:b`` runs seeds a..b-1 of the randomized tests (default: 2). A read-only review ran
seeds 0..75 of the report test, 0..40 of the read-later test and 0..32 of the others (about 400 histories).
It found one disagreement, fixed: a deployment dated after the report's last computation counted at once in
a Weekly/Monthly interval holding it but waited in the Daily view, so the days of a week added up to less
than the week at the same read (``logic/metrics.compute_views`` now leaves out what is dated after now).
"""

from __future__ import annotations

import calendar
import itertools
import os
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.recompute import scheduled_run

SP = {"spaceId": "Spaces-1"}
BATCH = "/api/{spaceId}/deployments/batch"
REPORTS = "/api/{spaceId}/insights/reports"
INSIGHTS = "/api/projects/{spaceId}/insights"
DD = {"DD-API-KEY": ADMIN_KEY}

_SEEDS_ENV = os.environ.get("DORA_PROPERTY_SEEDS")
SEEDS = tuple(range(*map(int, _SEEDS_ENV.split(":")))) if _SEEDS_ENV else tuple(range(2))

# IANA name -> a Windows name CLDR maps to it (the same report must answer the same under either name).
ZONES: dict[str, str | None] = {
    "America/New_York": "Eastern Standard Time",
    "Europe/London": "GMT Standard Time",
    "Australia/Lord_Howe": "Lord Howe Standard Time",
    "America/Santiago": "Pacific SA Standard Time",
    "Asia/Kolkata": "India Standard Time",
    "Asia/Kathmandu": "Nepal Standard Time",
    "Pacific/Kiritimati": "Line Islands Standard Time",
    "Etc/GMT+12": "Dateline Standard Time",
    "Pacific/Auckland": "New Zealand Standard Time",
    "UTC": None,
}

# "now" candidates (UTC): near DST changes, month/year ends, the leap day.
NOWS = (
    datetime(2024, 3, 10, 7, 30, tzinfo=UTC),  # New York springs forward at 07:00 UTC
    datetime(2024, 3, 31, 0, 30, tzinfo=UTC),  # London's change is at 01:00 UTC
    datetime(2024, 4, 7, 3, 30, tzinfo=UTC),  # Santiago / Lord Howe / Auckland autumn
    datetime(2024, 2, 29, 11, 0, tzinfo=UTC),
    datetime(2024, 3, 1, 10, 30, tzinfo=UTC),  # 2024-03-01 00:30 at UTC+14
    datetime(2025, 1, 1, 0, 0, tzinfo=UTC),
    datetime(2024, 12, 31, 11, 59, tzinfo=UTC),
    datetime(2024, 11, 3, 6, 0, tzinfo=UTC),  # New York falls back
    datetime(2024, 9, 8, 4, 0, tzinfo=UTC),  # Santiago springs forward (midnight gap)
)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Dep:
    id: str
    finished: datetime
    state: str  # Success | Failed | TimedOut
    guided: bool = False
    version: str = ""
    project: str = "shop"

    @property
    def successful(self) -> bool:
        return self.state == "Success" and not self.guided

    @property
    def failure(self) -> bool:
        return self.state in ("Failed", "TimedOut") or (self.state == "Success" and self.guided)


# --- edges ----------------------------------------------------------------------------------------


def transitions(zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """UTC instants where ``zone``'s offset changes between start and end (30-minute scan, then bisect)."""
    found: list[datetime] = []
    t = start
    step = timedelta(minutes=30)
    while t < end:
        a, b = t.astimezone(zone).utcoffset(), (t + step).astimezone(zone).utcoffset()
        if a != b:
            lo, hi = t, t + step
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                if mid.astimezone(zone).utcoffset() == a:
                    lo = mid
                else:
                    hi = mid
            found.append(hi.replace(microsecond=0))
        t += step
    return found


def local_midnight_utc(day: date, zone: ZoneInfo) -> datetime:
    """First instant of a local date, by search (no fold/gap rules assumed): the smallest UTC minute
    whose local date is ``day``."""
    guess = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=15)
    t = guess
    while t.astimezone(zone).date() < day:
        t += timedelta(minutes=15)
    # step back precisely
    lo, hi = t - timedelta(minutes=15), t
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(zone).date() < day:
            lo = mid
        else:
            hi = mid
    return hi.replace(microsecond=0)


def edge_instants(zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    edges = transitions(zone, start, end)
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    d = first
    while d <= last:
        month_end = calendar.monthrange(d.year, d.month)[1] == d.day
        if (
            d.day == 1
            or month_end
            or d.weekday() == 6  # Sunday: weeks start
            or (d.month, d.day) in ((2, 29), (3, 1), (1, 1), (12, 31))
        ):
            edges.append(local_midnight_utc(d, zone))
            edges.append(datetime(d.year, d.month, d.day, tzinfo=UTC))
        d += timedelta(days=1)
    return [e for e in edges if start <= e < end]


def random_history(rng: random.Random, zone: ZoneInfo, start: datetime, end: datetime, n: int) -> list[Dep]:
    edges = edge_instants(zone, start, end)
    jitter = (
        timedelta(0),
        timedelta(milliseconds=-1),
        timedelta(seconds=-1),
        timedelta(seconds=1),
        timedelta(minutes=-30),
        timedelta(minutes=30),
        timedelta(hours=-1),
        timedelta(hours=1),
        timedelta(minutes=-45),
        timedelta(minutes=15),
    )
    times: set[datetime] = set()
    while len(times) < n:
        if rng.random() < 0.85 and edges:
            t = rng.choice(edges) + rng.choice(jitter)
        else:
            t = start + timedelta(seconds=rng.randrange(int((end - start).total_seconds())))
        if start <= t < end:
            times.add(t)
    deps: list[Dep] = []
    for k, t in enumerate(sorted(times)):
        r = rng.random()
        state, guided = ("Success", False)
        if r < 0.2:
            state = "Failed"
        elif r < 0.25:
            state = "TimedOut"
        elif r < 0.32:
            guided = True
        deps.append(Dep(f"zone-dep-{k:04d}", t, state, guided, version=f"1.{k}"))
    return deps


def send(api: Api, deps: list[Dep], lambda_context: Any, *, space: dict[str, str] = SP, key: str = ADMIN_KEY) -> None:
    for chunk in range(0, len(deps), 400):
        items = []
        for d in deps[chunk : chunk + 400]:
            item: dict[str, Any] = {
                "id": d.id,
                "project": d.project,
                "environment": "production",
                "version": d.version,
                "finished_at": _iso(d.finished),
                "started_at": _iso(d.finished - timedelta(minutes=5)),
                "state": d.state,
            }
            if d.guided:
                item["had_guided_failure"] = True
            items.append(item)
        answer = api.call("POST", BATCH, path_params=space, body={"deployments": items}, key=key)
        assert answer.status == 200, answer.body
        assert answer.body["failed"] == 0, answer.body
    scheduled_run(lambda_context)


# --- oracle (METRICS §4) --------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    y, m = divmod(index, 12)
    return date(y, m + 1, min(day.day, calendar.monthrange(y, m + 1)[1]))


def start_of(day: date, granularity: str) -> date:
    if granularity == "Daily":
        return day
    if granularity == "Weekly":  # weeks start Sunday
        while day.weekday() != 6:
            day -= timedelta(days=1)
        return day
    return day.replace(day=1)


def next_start(day: date, granularity: str) -> date:
    if granularity == "Daily":
        return day + timedelta(days=1)
    if granularity == "Weekly":
        return day + timedelta(days=7)
    return add_months(day.replace(day=1), 1)


def oracle_starts(now: datetime, zone: ZoneInfo, time_range: str, granularity: str) -> list[date]:
    months = {"LastMonth": 1, "LastQuarter": 3, "LastYear": 12}[time_range]
    today = now.astimezone(zone).date()
    d = start_of(add_months(today, -months), granularity)
    starts = [d]
    while next_start(starts[-1], granularity) <= today:
        starts.append(next_start(starts[-1], granularity))
    return starts


def oracle_intervals(
    deps: list[Dep], now: datetime, zone: ZoneInfo, time_range: str, granularity: str
) -> list[dict[str, Any]]:
    """Per interval: counts by METRICS §4 over the stream ordered by finish."""
    starts = oracle_starts(now, zone, time_range, granularity)
    ends = [*starts[1:], next_start(starts[-1], granularity)]
    ordered = sorted(deps, key=lambda d: d.finished)
    rows = [
        {
            "start": s.isoformat(),
            "ok": 0,
            "fail": 0,
            "guided": 0,
            "days": set(),
            "since": 0,
            "recovery": 0,
            "lead": 0,
        }
        for s in starts
    ]
    seen_success = False
    previous: Dep | None = None
    for d in ordered:
        local = d.finished.astimezone(zone).date()
        slot = next((k for k, (s, e) in enumerate(zip(starts, ends, strict=True)) if s <= local < e), None)
        # A deployment dated after now waits for its time in every view (§4), but is the stream's all the same
        # for the deployments around it (a success before the next one, a failure before a recovery).
        if slot is not None and d.finished <= now:
            row = rows[slot]
            if d.successful:
                row["ok"] += 1
                row["lead"] += 1
                row["days"].add(local)
                if seen_success:
                    row["since"] += 1
                if previous is not None and previous.failure:
                    row["recovery"] += 1
            elif d.state == "Success":
                row["guided"] += 1
            else:
                row["fail"] += 1
        if d.successful:
            seen_success = True
        previous = d
    return rows


# --- route helpers --------------------------------------------------------------------------------


def create_report(api: Api, time_zone: str, name: str = "Zoned") -> str:
    made = api.call("POST", REPORTS, path_params=SP, body={"Name": name, "TimeZone": time_zone}, key=ADMIN_KEY)
    assert made.status == 201, made.body
    return str(made.body["Id"])


def report_metrics(api: Api, report_id: str, **query: str) -> Any:
    got = api.call(
        "GET", REPORTS + "/{reportId}/metrics", path_params={**SP, "reportId": report_id}, query=query, key=ADMIN_KEY
    )
    assert got.status == 200, got.body
    return got.body


def compare_interval(served: dict[str, Any], row: dict[str, Any], where: str) -> None:
    rate = served["DeploymentFailureRate"]
    got = (
        served["StartOfInterval"],
        served["NumberOfSuccessfulDeployments"],
        rate["Successful"],
        rate["DeploymentFailure"],
        rate["SuccessfulButHadGuidedFailure"],
        served["DeploymentDays"],
        served["TimeSincePreviousDeployment"]["Count"],
        served["MeanTimeToRecovery"]["Count"],
        served["LeadTime"]["Count"],
    )
    want = (
        row["start"],
        row["ok"],
        row["ok"],
        row["fail"],
        row["guided"],
        len(row["days"]),
        row["since"],
        row["recovery"],
        row["lead"],
    )
    assert got == want, f"{where}: served {got} expected {want}"


# --- the report's /metrics, its /deployments and insights, against the oracle --------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_report_intervals_follow_the_reports_zone(api: Api, clock: Clock, lambda_context: Any, seed: int) -> None:
    """METRICS §4: each deployment belongs to the one interval containing its local CompletedTime; the
    intervals are dense from the one containing (today − N months) to the one containing today; the same
    report under its Windows name answers the same; PostHog insights show the same values."""
    rng = random.Random(seed)
    zone_names = list(ZONES)
    zone_name = zone_names[seed % len(zone_names)] if seed < len(zone_names) else rng.choice(zone_names)
    zone = ZoneInfo(zone_name)
    now = NOWS[seed % len(NOWS)] if seed < len(NOWS) else rng.choice(NOWS)
    now += timedelta(minutes=rng.choice((0, 0, 15, -15, 45)))
    clock.now = now
    start = now - timedelta(days=400)
    deps = random_history(rng, zone, start, now - timedelta(seconds=1), rng.randrange(40, 90))
    send(api, deps, lambda_context)
    report = create_report(api, zone_name)
    windows = ZONES[zone_name]
    other = create_report(api, windows, name="Windows") if windows else None
    for granularity in ("Daily", "Weekly", "Monthly"):
        for time_range in ("LastMonth", "LastQuarter", "LastYear"):
            body = report_metrics(api, report, timeRange=time_range, granularity=granularity)
            rows = oracle_intervals(deps, now, zone, time_range, granularity)
            where = f"seed {seed} {zone_name} now={now.isoformat()} {time_range}/{granularity}"
            if not rows or all(r["ok"] + r["fail"] + r["guided"] == 0 for r in rows):
                served = body["Series"][0]["Intervals"] if body["Series"] else []
                assert all(i["DeploymentFailureRate"]["Total"] == 0 for i in served), where
                continue
            (series,) = body["Series"]
            starts = [i["StartOfInterval"] for i in series["Intervals"]]
            assert starts == [r["start"] for r in rows], where
            for served, row in zip(series["Intervals"], rows, strict=True):
                compare_interval(served, row, where)
            if other is not None:
                assert report_metrics(api, other, timeRange=time_range, granularity=granularity) == body, where


def test_zz_insights_show_the_reports_intervals(api: Api, clock: Clock, lambda_context: Any) -> None:
    """API.md PostHog: an insight's result has one value per interval of its report's view (StartOfInterval
    dates) and the count for deployment_frequency; the same numbers as the report's /metrics."""
    rng = random.Random(77)
    zone_name = "Australia/Lord_Howe"
    zone = ZoneInfo(zone_name)
    now = datetime(2024, 4, 7, 3, 30, tzinfo=UTC)
    clock.now = now
    deps = random_history(rng, zone, now - timedelta(days=120), now - timedelta(seconds=1), 60)
    send(api, deps, lambda_context)
    report = create_report(api, zone_name)
    for granularity in ("Daily", "Weekly", "Monthly"):
        query = {
            "kind": "DoraMetricsQuery",
            "reportId": report,
            "metric": "deployment_frequency",
            "timeRange": "LastQuarter",
            "granularity": granularity,
        }
        made = api.call("POST", INSIGHTS, path_params=SP, body={"name": granularity, "query": query}, key=ADMIN_KEY)
        assert made.status == 201, made.body
        got = api.call(
            "GET", INSIGHTS + "/{insightId}", path_params={**SP, "insightId": str(made.body["id"])}, key=ADMIN_KEY
        )
        assert got.status == 200, got.body
        result = got.body["result"]
        rows = oracle_intervals(deps, now, zone, "LastQuarter", granularity)
        assert result["interval"] == [r["start"] for r in rows], granularity
        assert result["series"][0]["values"] == [r["ok"] for r in rows], granularity


def test_report_deployments_are_the_last_twelve_whole_local_months(api: Api, clock: Clock, lambda_context: Any) -> None:
    """API.md: a report's /deployments lists deployments of the last 12 whole months and this month, in the
    report's zone: at UTC+14 on 2024-03-01 00:30 local (2024-02-29 10:30 UTC), that is from 2023-03-01
    00:00 local = 2023-02-28 10:00 UTC."""
    zone_name = "Pacific/Kiritimati"
    clock.now = datetime(2024, 2, 29, 10, 30, tzinfo=UTC)
    edge = datetime(2023, 2, 28, 10, 0, tzinfo=UTC)
    deps = [
        Dep("zone-before", edge - timedelta(milliseconds=1), "Success", version="1"),
        Dep("zone-at", edge, "Success", version="2"),
        Dep("zone-later", datetime(2024, 2, 29, 10, 29, tzinfo=UTC), "Success", version="3"),
    ]
    send(api, deps, lambda_context)
    report = create_report(api, zone_name)
    got = api.call("GET", REPORTS + "/{reportId}/deployments", path_params={**SP, "reportId": report}, key=ADMIN_KEY)
    assert got.status == 200, got.body
    ids = [d["Id"] for s in got.body["Streams"] for d in s["Deployments"]]
    assert len(ids) == 2, got.body
    assert not any("before" in str(i) for i in ids)


# --- failure events -------------------------------------------------------------------------------


@dataclass
class Failure:
    id: str
    started: datetime
    finished: datetime | None


def random_failures(rng: random.Random, zone: ZoneInfo, start: datetime, end: datetime, n: int) -> list[Failure]:
    edges = edge_instants(zone, start, end) + edge_instants(ZoneInfo("UTC"), start, end)
    out: list[Failure] = []
    for k in range(n):
        finish = rng.choice(edges) + rng.choice((timedelta(0), timedelta(milliseconds=-1), timedelta(seconds=1)))
        finish = min(max(finish, start + timedelta(hours=3)), end)
        length = timedelta(minutes=rng.choice((1, 30, 59, 61, 90, 600, 1500)))
        out.append(Failure(f"zone-fail-{k:03d}", finish - length, None if rng.random() < 0.1 else finish))
    return out


def send_failures(api: Api, failures: list[Failure], lambda_context: Any) -> None:
    for f in failures:
        body: dict[str, Any] = {
            "id": f.id,
            "project": "shop",
            "environment": "production",
            "started_at": _iso(f.started),
        }
        if f.finished is not None:
            body["finished_at"] = _iso(f.finished)
        made = api.call("POST", "/api/{spaceId}/failures", path_params=SP, body=body, key=ADMIN_KEY)
        assert made.status in (200, 201), made.body
    scheduled_run(lambda_context)


@pytest.mark.parametrize("seed", SEEDS)
def test_report_time_to_restore_counts_in_the_local_day_a_failure_finished(
    api: Api, clock: Clock, lambda_context: Any, seed: int
) -> None:
    """METRICS §4: a failure event's TimeToRestore counts in the interval of its local ``finished_at``."""
    rng = random.Random(1000 + seed)
    zone_name = rng.choice(list(ZONES))
    zone = ZoneInfo(zone_name)
    now = rng.choice(NOWS)
    clock.now = now
    deps = random_history(rng, zone, now - timedelta(days=100), now - timedelta(seconds=1), 15)
    send(api, deps, lambda_context)
    failures = random_failures(rng, zone, now - timedelta(days=95), now - timedelta(seconds=1), 25)
    send_failures(api, failures, lambda_context)
    report = create_report(api, zone_name)
    for granularity in ("Daily", "Weekly", "Monthly"):
        body = report_metrics(api, report, timeRange="LastQuarter", granularity=granularity)
        starts = oracle_starts(now, zone, "LastQuarter", granularity)
        ends = [*starts[1:], next_start(starts[-1], granularity)]
        want = [0] * len(starts)
        for f in failures:
            if f.finished is None or f.finished > now:
                continue
            local = f.finished.astimezone(zone).date()
            for k, (s, e) in enumerate(zip(starts, ends, strict=True)):
                if s <= local < e:
                    want[k] += 1
        (series,) = body["Series"]
        got = [i["TimeToRestore"]["Count"] for i in series["Intervals"]]
        assert got == want, f"seed {seed} {zone_name} {now} {granularity}"


# --- /dora/metrics (METRICS §9): UTC days, both ends of the range included ------------------------------


def dora_metrics(api: Api, **query: str) -> Any:
    got = api.call("GET", "/api/{spaceId}/dora/metrics", path_params=SP, query=query, key=ADMIN_KEY)
    assert got.status == 200, (query, got.body)
    return got.body


@pytest.mark.parametrize("seed", SEEDS)
def test_dora_metrics_buckets_are_utc_days_and_months(api: Api, clock: Clock, lambda_context: Any, seed: int) -> None:
    """METRICS §9: daily = UTC days (start_date..end_date, both included); monthly: months dated their 1st
    holding only the range's days, value = successes / those days; all: successes / days of the range.
    Every deployment is counted in exactly one day; daily totals equal all × days."""
    rng = random.Random(2000 + seed)
    now = rng.choice(NOWS)
    clock.now = now
    zone = ZoneInfo(rng.choice(list(ZONES)))
    deps = random_history(rng, zone, now - timedelta(days=380), now - timedelta(seconds=1), 70)
    deps += random_history(
        random.Random(seed), ZoneInfo("UTC"), now - timedelta(days=380), now - timedelta(seconds=1), 30
    )
    for k, d in enumerate(deps):
        d.id = f"zone-dm-{k:04d}"
        d.version = f"2.{k}"
    send(api, deps, lambda_context)
    failures = random_failures(rng, zone, now - timedelta(days=370), now - timedelta(seconds=1), 20)
    send_failures(api, failures, lambda_context)
    per_day = Counter(d.finished.astimezone(UTC).date() for d in deps if d.successful)
    incidents = Counter(f.started.astimezone(UTC).date() for f in failures)
    today = now.astimezone(UTC).date()
    for _ in range(4):
        end = today - timedelta(days=rng.randrange(0, 60))
        start = end - timedelta(days=rng.choice((1, 2, 27, 28, 29, 30, 31, 59, 365, 366)))
        days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
        q = {"start_date": start.isoformat(), "end_date": end.isoformat()}
        daily = dora_metrics(api, metric="deployment_frequency", interval="daily", **q)
        assert [r["date"] for r in daily] == [d.isoformat() for d in days], q
        assert [r["value"] for r in daily] == [per_day.get(d, 0) for d in days], q
        total = sum(per_day.get(d, 0) for d in days)
        (whole,) = dora_metrics(api, metric="deployment_frequency", interval="all", **q)
        assert whole["date"] is None
        assert whole["value"] == pytest.approx(total / len(days)), q
        monthly = dora_metrics(api, metric="deployment_frequency", interval="monthly", **q)
        by_month: dict[date, list[date]] = defaultdict(list)
        for d in days:
            by_month[d.replace(day=1)].append(d)
        assert [r["date"] for r in monthly] == [m.isoformat() for m in sorted(by_month)], q
        for r in monthly:
            month_days = by_month[date.fromisoformat(r["date"])]
            assert r["value"] == pytest.approx(sum(per_day.get(d, 0) for d in month_days) / len(month_days)), q
        cfr = dora_metrics(api, metric="change_failure_rate", interval="daily", **q)
        for r, d in zip(cfr, days, strict=True):
            ok, inc = per_day.get(d, 0), incidents.get(d, 0)
            want = None if ok == 0 and inc == 0 else inc / max(ok, 1)
            assert r["value"] == (pytest.approx(want) if want is not None else None), (q, d)


# --- /summary (METRICS §6): deployments completed in [from, to) -----------------------------------------


def summary(api: Api, **query: str) -> Any:
    got = api.call("GET", "/api/{spaceId}/summary", path_params=SP, query=query, key=ADMIN_KEY)
    assert got.status == 200, (query, got.body)
    return got.body


@pytest.mark.parametrize("seed", SEEDS)
def test_summary_range_is_from_included_to_excluded_in_any_offset(
    api: Api, clock: Clock, lambda_context: Any, seed: int
) -> None:
    """METRICS §6: /summary counts deployments completed in [from, to) (from included, to excluded), dates
    given with any UTC offset; deployment_days = UTC dates with a success; adjacent ranges add up."""
    rng = random.Random(3000 + seed)
    now = rng.choice(NOWS)
    clock.now = now
    zone_name = rng.choice([z for z in ZONES if z != "UTC"])
    zone = ZoneInfo(zone_name)
    deps = random_history(rng, zone, now - timedelta(days=200), now - timedelta(seconds=1), 60)
    send(api, deps, lambda_context)
    cuts = sorted(rng.sample([d.finished for d in deps], 5))
    for a, b in itertools.pairwise(cuts):
        # offsets as the zone writes them (e.g. +05:45, +13:45, -12:00): the same instants
        q = {
            "from": a.astimezone(zone).isoformat(timespec="milliseconds"),
            "to": b.astimezone(zone).isoformat(timespec="milliseconds"),
        }
        body = summary(api, **q)
        inside = [d for d in deps if a <= d.finished < b]
        ok = [d for d in inside if d.successful]
        assert body["deployments"] == len(inside), (q, body)
        assert body["deployment_frequency"]["successful_deployments"] == len(ok), q
        assert body["deployment_frequency"]["deployment_days"] == len({d.finished.astimezone(UTC).date() for d in ok})
        want = round(len(ok) / max(1.0, (b - a) / timedelta(days=1)), 5)
        assert body["deployment_frequency"]["per_day"] == want, q
        assert body["deployment_frequency"]["tier"] == oracle_frequency_tier(ok, a, b), q


def oracle_frequency_tier(ok: list[Dep], a: datetime, b: datetime) -> str | None:
    """METRICS §6 (2023): median deployment days per week (from Sunday, UTC dates, the range's partial weeks
    as they are) >= 5 elite, >= 1 high; per month >= 1 medium; else low; None without a success."""
    if not ok:
        return None
    first, last = a.astimezone(UTC).date(), (b - timedelta(microseconds=1)).astimezone(UTC).date()
    dates = {d.finished.astimezone(UTC).date() for d in ok}

    def median_days(period: str) -> float:
        counts: dict[date, set[date]] = {}
        day = first
        while day <= last:
            key = start_of(day, "Weekly" if period == "week" else "Monthly")
            counts.setdefault(key, set())
            if day in dates:
                counts[key].add(day)
            day += timedelta(days=1)
        return _median([float(len(v)) for v in counts.values()])

    week = median_days("week")
    if week >= 5:
        return "Elite"
    if week >= 1:
        return "High"
    return "Medium" if median_days("month") >= 1 else "Low"


# --- Datadog list (API.md): from/to inclusive on a deployment's finish -----------------------------------


def dd_ids(api: Api, **attributes: Any) -> list[str]:
    found: list[str] = []
    cursor = None
    while True:
        attrs = dict(attributes, limit=1000)
        if cursor:
            attrs["page"] = {"cursor": cursor}
        got = api.call(
            "POST",
            "/api/v2/dora/deployments",
            body={"data": {"type": "dora_deployments_list_request", "attributes": attrs}},
            headers=DD,
        )
        assert got.status == 200, got.body
        found += [d["id"] for d in got.body["data"]]
        cursor = (got.body.get("meta") or {}).get("page", {}).get("after")
        if not cursor:
            return found


@pytest.mark.parametrize("seed", SEEDS)
def test_datadog_list_bounds_are_inclusive_at_the_finish_instant(
    api: Api, clock: Clock, lambda_context: Any, seed: int
) -> None:
    """API.md Datadog list: ``from``/``to`` are inclusive bounds on a deployment's finish, ISO-8601 with an
    offset or unix time."""
    rng = random.Random(4000 + seed)
    now = rng.choice(NOWS)
    clock.now = now
    zone = ZoneInfo(rng.choice([z for z in ZONES if z != "UTC"]))
    deps = random_history(rng, zone, now - timedelta(days=60), now - timedelta(seconds=1), 40)
    send(api, deps, lambda_context)
    for _ in range(4):
        a, b = sorted(rng.sample([d.finished for d in deps], 2))
        want = sorted(d.id for d in deps if a <= d.finished <= b)
        iso = dd_ids(
            api,
            **{
                "from": a.astimezone(zone).isoformat(timespec="milliseconds"),
                "to": b.astimezone(zone).isoformat(timespec="milliseconds"),
            },
        )
        assert sorted(iso) == want, (a, b)


# --- a report read again later: the grid moves with 'now' in the report's zone ----------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_report_read_later_moves_its_grid_and_counts_late_figures(
    api: Api, clock: Clock, lambda_context: Any, seed: int
) -> None:
    """METRICS §4: the intervals are those up to *now* in the report's zone at each read, and a deployment
    dated after the report was computed is counted in its interval once that time comes (§4, due_at)."""
    rng = random.Random(5000 + seed)
    zone_name = rng.choice(list(ZONES))
    zone = ZoneInfo(zone_name)
    now1 = rng.choice(NOWS)
    clock.now = now1
    deps = random_history(rng, zone, now1 - timedelta(days=70), now1 + timedelta(days=3), 50)
    send(api, deps, lambda_context)  # some finish after now1 (a tool's clock running ahead)
    report = create_report(api, zone_name)
    for granularity in ("Daily", "Weekly", "Monthly"):
        body = report_metrics(api, report, timeRange="LastMonth", granularity=granularity)
        rows = oracle_intervals(deps, now1, zone, "LastMonth", granularity)
        if body["Series"]:
            for served, row in zip(body["Series"][0]["Intervals"], rows, strict=True):
                compare_interval(served, row, f"first read {granularity}")
    insight_query = {
        "kind": "DoraMetricsQuery",
        "reportId": report,
        "metric": "deployment_frequency",
        "timeRange": "LastQuarter",
        "granularity": rng.choice(("Daily", "Weekly", "Monthly")),
    }
    made = api.call("POST", INSIGHTS, path_params=SP, body={"name": "later", "query": insight_query}, key=ADMIN_KEY)
    assert made.status == 201, made.body
    for step in sorted([*rng.sample(range(1, 80), 2), rng.randrange(80, 24 * 45)]):
        clock.now = now = now1 + timedelta(hours=step)
        octo = report_metrics(api, report, timeRange="LastQuarter", granularity=insight_query["granularity"])
        got = api.call(
            "GET", INSIGHTS + "/{insightId}", path_params={**SP, "insightId": str(made.body["id"])}, key=ADMIN_KEY
        )
        assert got.body["result"]["interval"] == [i["StartOfInterval"] for i in octo["Series"][0]["Intervals"]]
        assert got.body["result"]["series"][0]["values"] == [
            i["NumberOfSuccessfulDeployments"] for i in octo["Series"][0]["Intervals"]
        ], (seed, now)
        for granularity, time_range in [
            (g, t) for g in ("Daily", "Weekly", "Monthly") for t in ("LastMonth", "LastQuarter", "LastYear")
        ]:
            body = report_metrics(api, report, timeRange=time_range, granularity=granularity)
            rows = oracle_intervals(deps, now, zone, time_range, granularity)
            where = f"seed {seed} {zone_name} now1={now1} now={now} {time_range} {granularity}"
            (series,) = body["Series"]
            assert [i["StartOfInterval"] for i in series["Intervals"]] == [r["start"] for r in rows], where
            for served, row in zip(series["Intervals"], rows, strict=True):
                compare_interval(served, row, where)


def _median(values: list[float]) -> float:
    s = sorted(values)
    mid = (len(s) - 1) / 2
    lo, hi = int(mid), min(int(mid) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (mid - lo)


@pytest.mark.parametrize("seed", SEEDS)
def test_failure_windows_in_every_route(api: Api, clock: Clock, lambda_context: Any, seed: int) -> None:
    """Failure events at UTC/local edges: /dora/metrics time_to_restore_service = median of the daily medians
    by UTC day of finished_at (METRICS §9); /summary time_to_restore counts finished failures that *started*
    in [from, to) (§6); the Datadog failure list bounds are inclusive on a failure's start (API.md)."""
    rng = random.Random(6000 + seed)
    now = rng.choice(NOWS)
    clock.now = now
    zone = ZoneInfo(rng.choice([z for z in ZONES if z != "UTC"]))
    deps = random_history(rng, zone, now - timedelta(days=90), now - timedelta(seconds=1), 10)
    send(api, deps, lambda_context)
    failures = random_failures(rng, zone, now - timedelta(days=80), now - timedelta(seconds=1), 30)
    send_failures(api, failures, lambda_context)
    restore: dict[date, list[float]] = defaultdict(list)
    for f in failures:
        if f.finished is not None:
            restore[f.finished.astimezone(UTC).date()].append((f.finished - f.started).total_seconds())
    today = now.astimezone(UTC).date()
    for _ in range(3):
        end = today - timedelta(days=rng.randrange(0, 10))
        start = end - timedelta(days=rng.choice((1, 3, 29, 31, 60)))
        days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
        q = {"start_date": start.isoformat(), "end_date": end.isoformat()}
        daily = dora_metrics(api, metric="time_to_restore_service", interval="daily", **q)
        for r, d in zip(daily, days, strict=True):
            want = _median(restore[d]) if restore.get(d) else None
            assert r["value"] == (pytest.approx(want) if want is not None else None), (q, d)
        (whole,) = dora_metrics(api, metric="time_to_restore_service", interval="all", **q)
        medians = [_median(restore[d]) for d in days if restore.get(d)]
        assert whole["value"] == (pytest.approx(_median(medians)) if medians else None), q
    cuts = sorted(rng.sample(sorted({f.started for f in failures}), 4))  # distinct: from < to
    for a, b in itertools.pairwise(cuts):
        q2 = {
            "from": a.astimezone(zone).isoformat(timespec="milliseconds"),
            "to": b.astimezone(zone).isoformat(timespec="milliseconds"),
        }
        body = summary(api, **q2)
        want_count = sum(1 for f in failures if f.finished is not None and a <= f.started < b)
        assert body["time_to_restore"]["count"] == want_count, q2
        listed: list[str] = []
        cursor = None
        while True:
            attrs: dict[str, Any] = {"from": q2["from"], "to": q2["to"], "limit": 1000}
            if cursor:
                attrs["page"] = {"cursor": cursor}
            got = api.call(
                "POST",
                "/api/v2/dora/failures",
                body={"data": {"type": "dora_failures_list_request", "attributes": attrs}},
                headers=DD,
            )
            assert got.status == 200, got.body
            listed += [x["id"] for x in got.body["data"]]
            cursor = (got.body.get("meta") or {}).get("page", {}).get("after")
            if not cursor:
                break
        assert sorted(listed) == sorted(f.id for f in failures if a <= f.started <= b), q2


def test_a_reports_new_time_zone_moves_its_intervals(api: Api, clock: Clock, lambda_context: Any) -> None:
    """METRICS §4: intervals are in the report's zone; a PUT changing TimeZone gives the new zone's buckets
    (a deployment at 2024-02-29T10:30Z is 2024-02-29 in UTC, 2024-03-01 at UTC+14)."""
    clock.now = datetime(2024, 3, 1, 10, 40, tzinfo=UTC)  # 2024-03-01 00:40 at UTC+14, 2024-03-01 in UTC
    deps = [Dep("zone-leap", datetime(2024, 2, 29, 10, 30, tzinfo=UTC), "Success", version="1")]
    send(api, deps, lambda_context)
    report = create_report(api, "UTC")
    before = report_metrics(api, report, timeRange="LastMonth", granularity="Daily")
    by_day = {i["StartOfInterval"]: i["NumberOfSuccessfulDeployments"] for i in before["Series"][0]["Intervals"]}
    assert by_day["2024-02-29"] == 1 and by_day["2024-03-01"] == 0
    current = api.call("GET", REPORTS + "/{reportId}", path_params={**SP, "reportId": report}, key=ADMIN_KEY).body
    put = api.call(
        "PUT",
        REPORTS + "/{reportId}",
        path_params={**SP, "reportId": report},
        body={**current, "TimeZone": "Line Islands Standard Time"},
        key=ADMIN_KEY,
    )
    assert put.status == 200, put.body
    after = report_metrics(api, report, timeRange="LastMonth", granularity="Daily")
    by_day = {i["StartOfInterval"]: i["NumberOfSuccessfulDeployments"] for i in after["Series"][0]["Intervals"]}
    assert by_day["2024-02-29"] == 0 and by_day["2024-03-01"] == 1, by_day


@pytest.mark.parametrize(
    ("now", "query", "expected"),
    [
        # end_date defaults to today in UTC: at 23:30 UTC on 2024-05-31 (already June 1st east of UTC)
        (datetime(2024, 5, 31, 23, 30, tzinfo=UTC), {}, ("2024-02-29", "2024-05-31")),
        (datetime(2024, 3, 1, 0, 0, tzinfo=UTC), {}, ("2023-12-01", "2024-03-01")),
        (datetime(2024, 3, 1, 0, 0, tzinfo=UTC), {"end_date": "2024-08-31"}, ("2024-05-31", "2024-08-31")),
        # a whole leap year and 366 days apart fit; both ends are included
        (
            datetime(2025, 1, 2, 0, 0, tzinfo=UTC),
            {"start_date": "2024-01-01", "end_date": "2025-01-01"},
            ("2024-01-01", "2025-01-01"),
        ),
        (
            datetime(2024, 3, 1, 0, 0, tzinfo=UTC),
            {"start_date": "2024-02-29", "end_date": "2024-03-01"},
            ("2024-02-29", "2024-03-01"),
        ),
    ],
)
def test_dora_metrics_default_and_extreme_ranges(
    api: Api, clock: Clock, now: datetime, query: dict[str, str], expected: tuple[str, str]
) -> None:
    """API.md/METRICS §9 dates: end_date defaults to today (UTC), start_date to 3 calendar months before
    end_date (clamped to the month's end); at most 366 days apart; both ends included."""
    clock.now = now
    rows = dora_metrics(api, metric="deployment_frequency", interval="daily", **query)
    assert (rows[0]["date"], rows[-1]["date"]) == expected
    first, last = (date.fromisoformat(x) for x in expected)
    assert len(rows) == (last - first).days + 1
    too_long = {"start_date": "2023-12-31", "end_date": "2025-01-01"}
    got = api.call(
        "GET",
        "/api/{spaceId}/dora/metrics",
        path_params=SP,
        key=ADMIN_KEY,
        query={"metric": "deployment_frequency", **too_long},
    )
    assert got.status == 400 and got.body == {"message": "Date range must be shorter than 366 days."}


@pytest.mark.parametrize("seed", SEEDS)
def test_report_deployments_window_in_any_zone(api: Api, clock: Clock, lambda_context: Any, seed: int) -> None:
    """API.md: /deployments holds the deployments completed in the last 12 whole months and this month of
    the report's zone (from the local midnight of the 1st of the month 12 months back)."""
    rng = random.Random(7000 + seed)
    zone_name = rng.choice(list(ZONES))
    zone = ZoneInfo(zone_name)
    now = rng.choice(NOWS)
    clock.now = now
    local = now.astimezone(zone)
    back = local.year * 12 + local.month - 1 - 12
    since = local_midnight_utc(date(back // 12, back % 12 + 1, 1), zone)
    deps = random_history(rng, zone, since - timedelta(days=3), since + timedelta(days=3), 20)
    deps += [
        Dep("zone-edge-at", since, "Success", version="e1"),
        Dep("zone-edge-before", since - timedelta(milliseconds=1), "Failed", version="e0"),
    ]
    deps = list({d.finished: d for d in deps}.values())
    send(api, deps, lambda_context)
    report = create_report(api, zone_name)
    got = api.call("GET", REPORTS + "/{reportId}/deployments", path_params={**SP, "reportId": report}, key=ADMIN_KEY)
    assert got.status == 200, got.body
    served = sorted(d["CompletedTime"] for s in got.body["Streams"] for d in s["Deployments"])
    want = sorted(d.finished for d in deps if d.finished >= since)
    assert len(served) == len(want), (zone_name, now, since, served[:3], want[:3])


@pytest.mark.parametrize(
    ("route", "query"),
    [
        ("/api/{spaceId}/summary", {"from": "2024-03-01"}),
        ("/api/{spaceId}/summary", {"from": "2024-03-01T00:00:00"}),
        ("/api/{spaceId}/summary", {"from": "2024-02-29T23:00:00-12:00", "to": "2024-03-01T23:00:00+14:00"}),
        ("/api/{spaceId}/summary", {"from": "2024-02-30T00:00:00Z"}),
        ("/api/{spaceId}/summary", {"to": "1970-01-01T00:00:00Z"}),
        ("/api/{spaceId}/summary", {"from": "0001-01-01T00:00:00+14:00"}),
        ("/api/{spaceId}/summary", {"from": "9999-12-31T23:59:59-12:00"}),
        ("/api/{spaceId}/summary", {"from": "1709251200", "to": "1709337600000"}),
        ("/api/{spaceId}/summary", {"from": "2024-03-01T00:00:00Z", "to": "2024-03-01T00:00:00Z"}),
        ("/api/{spaceId}/dora/metrics", {"metric": "deployment_frequency", "start_date": "2024-02-30"}),
        ("/api/{spaceId}/dora/metrics", {"metric": "deployment_frequency", "end_date": "0001-01-01"}),
        ("/api/{spaceId}/dora/metrics", {"metric": "deployment_frequency", "end_date": "0001-03-01"}),
        (
            "/api/{spaceId}/dora/metrics",
            {"metric": "deployment_frequency", "end_date": "9999-12-31", "start_date": "9999-12-01"},
        ),
        ("/api/{spaceId}/dora/metrics", {"metric": "deployment_frequency", "start_date": "2024-03-01T00:00:00Z"}),
        (
            "/api/{spaceId}/dora/metrics",
            {"metric": "deployment_frequency", "start_date": "2024-03-01", "end_date": "2024-03-01"},
        ),
        (
            "/api/{spaceId}/dora/metrics",
            {
                "metric": "deployment_frequency",
                "interval": "monthly",
                "start_date": "2024-01-31",
                "end_date": "2024-02-01",
            },
        ),
        ("/api/{spaceId}/deployments", {"from": "2024-03-01T00:00:00+05:45", "to": "2024-03-02T00:00:00-12:00"}),
        ("/api/{spaceId}/deployments", {"from": "2024-03-01"}),
        ("/api/{spaceId}/deployments", {"from": "0001-01-01T00:00:00+14:00"}),
        ("/api/{spaceId}/failures", {"from": "9999-12-31T23:59:59-12:00"}),
        ("/api/projects/{spaceId}/insights", {"date_from": "-1mStart", "date_to": "-0dEnd"}),
        ("/api/projects/{spaceId}/insights", {"created_date_from": "2024-02-29T23:00:00+14:00"}),
        ("/api/projects/{spaceId}/insights", {"date_from": "-999999y"}),
        ("/api/projects/{spaceId}/insights", {"date_from": "0001-01-01T00:00:00+14:00"}),
        ("/api/projects/{spaceId}/insights", {"date_from": "9999-12-31T23:59:59-12:00"}),
    ],
)
def test_time_parameters_never_answer_5xx(api: Api, clock: Clock, route: str, query: dict[str, str]) -> None:
    """API.md Errors: anything a client sent is a 4xx with a clear message, never a 5xx."""
    got = api.call("GET", route, path_params=SP, query=query, key=ADMIN_KEY)
    assert got.status < 500, (route, query, got.status, got.body)
    if got.status >= 400:
        assert got.body and (got.body.get("message") or got.body.get("detail")), got.body


@pytest.mark.parametrize(
    "attributes",
    [
        {"from": "2024-03-01T00:00:00+05:45", "to": "2024-03-02T00:00:00-12:00"},
        {"from": 1709251200, "to": 1709337600000},
        {"from": 1709251200000000000},
        {"from": "0001-01-01T00:00:00+14:00"},
        {"to": "9999-12-31T23:59:59-12:00"},
        {"from": "2024-03-01"},
        {"from": "2024-03-01T00:00:00"},
        {"from": -1},
        {"from": 1.5},
        {"from": "2024-03-02T00:00:00Z", "to": "2024-03-01T00:00:00Z"},
    ],
)
def test_datadog_list_time_bounds_never_answer_5xx(api: Api, clock: Clock, attributes: dict[str, Any]) -> None:
    """API.md Errors: a Datadog list's time bounds a client sent are a 200 or a JSON:API 400, never a 5xx."""
    for kind in ("deployments", "failures"):
        got = api.call(
            "POST",
            f"/api/v2/dora/{kind}",
            body={"data": {"type": f"dora_{kind}_list_request", "attributes": attributes}},
            headers=DD,
        )
        assert got.status < 500, (kind, attributes, got.status, got.body)


def oracle_multi(
    deps: list[Dep], now: datetime, zone: ZoneInfo, time_range: str, granularity: str
) -> list[dict[str, Any]]:
    """oracle_intervals over several streams (one per project): per-stream figures, summed per interval;
    DeploymentDays = distinct local dates with a success in the series."""
    total: list[dict[str, Any]] | None = None
    for project in sorted({d.project for d in deps}):
        rows = oracle_intervals([d for d in deps if d.project == project], now, zone, time_range, granularity)
        if total is None:
            total = rows
            continue
        for t, r in zip(total, rows, strict=True):
            for k in ("ok", "fail", "guided", "since", "recovery", "lead"):
                t[k] += r[k]
            t["days"] |= r["days"]
    assert total is not None
    return total


@pytest.mark.parametrize("seed", SEEDS)
def test_report_series_over_several_streams(api: Api, clock: Clock, lambda_context: Any, seed: int) -> None:
    """METRICS §4 over several streams: the All series and the Project split agree with the oracle, and
    each deployment is counted once (the Project series add up to All, DeploymentDays excepted)."""
    rng = random.Random(8000 + seed)
    zone_name = rng.choice(list(ZONES))
    zone = ZoneInfo(zone_name)
    now = rng.choice(NOWS)
    clock.now = now
    deps = random_history(rng, zone, now - timedelta(days=120), now - timedelta(seconds=1), 70)
    for d in deps:
        d.project = rng.choice(("shop", "api", "web"))
    send(api, deps, lambda_context)
    report = create_report(api, zone_name)
    for granularity in ("Daily", "Weekly", "Monthly"):
        where = f"seed {seed} {zone_name} {now} {granularity}"
        body = report_metrics(api, report, timeRange="LastQuarter", granularity=granularity)
        (series,) = body["Series"]
        for served, row in zip(
            series["Intervals"], oracle_multi(deps, now, zone, "LastQuarter", granularity), strict=True
        ):
            compare_interval(served, row, where + " All")
        split = report_metrics(api, report, timeRange="LastQuarter", granularity=granularity, split="Project")
        for s in split["Series"]:
            mine = [d for d in deps if d.project == s["Name"]]
            rows = oracle_intervals(mine, now, zone, "LastQuarter", granularity)
            for served, row in zip(s["Intervals"], rows, strict=True):
                compare_interval(served, row, where + " " + s["Name"])


def _seconds(text: str | int | None) -> float | None:
    if text is None or isinstance(text, int):
        return text
    sign = -1 if text.startswith("-") else 1
    h, m, s = text.lstrip("-").split(":")
    return sign * (int(h) * 3600 + int(m) * 60 + float(s))


_OCTOPUS_OF = {
    "deployment_frequency": lambda i, st: i["NumberOfSuccessfulDeployments"],
    "deployment_failure_rate": lambda i, st: i["DeploymentFailureRate"]["Rate"],
    "change_failure_rate": lambda i, st: i["ChangeFailureRate"]["Rate"],
    "rework_rate": lambda i, st: i["ReworkRate"]["Rate"],
    "lead_time": lambda i, st: _seconds(i["LeadTime"][st]),
    "recovery_time": lambda i, st: _seconds(i["MeanTimeToRecovery"][st]),
    "time_to_restore": lambda i, st: _seconds(i["TimeToRestore"][st]),
}
_STAT = {"count": "Count", "mean": "Mean", "median": "Median", "min": "Min", "max": "Max", "p95": "NinetyFifth"}


@pytest.mark.parametrize("seed", SEEDS)
def test_insights_equal_the_reports_metrics_in_its_zone(api: Api, clock: Clock, lambda_context: Any, seed: int) -> None:
    """API.md PostHog: an insight's result is its report's view (same intervals, same numbers) for every
    metric, statistic, range and granularity; retrieve, list and the shared view agree."""
    rng = random.Random(9000 + seed)
    zone_name = rng.choice(list(ZONES))
    zone = ZoneInfo(zone_name)
    now = rng.choice(NOWS)
    clock.now = now
    deps = random_history(rng, zone, now - timedelta(days=130), now - timedelta(seconds=1), 50)
    send(api, deps, lambda_context)
    send_failures(
        api, random_failures(rng, zone, now - timedelta(days=100), now - timedelta(seconds=1), 8), lambda_context
    )
    report = create_report(api, zone_name)
    for n in range(6):
        metric = rng.choice(list(_OCTOPUS_OF))
        statistic = rng.choice(list(_STAT))
        time_range = rng.choice(("LastMonth", "LastQuarter", "LastYear"))
        granularity = rng.choice(("Daily", "Weekly", "Monthly"))
        query = {
            "kind": "DoraMetricsQuery",
            "reportId": report,
            "metric": metric,
            "timeRange": time_range,
            "granularity": granularity,
            "statistic": statistic,
        }
        made = api.call("POST", INSIGHTS, path_params=SP, body={"name": f"i{n}", "query": query}, key=ADMIN_KEY)
        assert made.status == 201, made.body
        got = api.call(
            "GET", INSIGHTS + "/{insightId}", path_params={**SP, "insightId": str(made.body["id"])}, key=ADMIN_KEY
        )
        result = got.body["result"]
        octo = report_metrics(api, report, timeRange=time_range, granularity=granularity)
        where = f"seed {seed} {zone_name} {now} {query}"
        if not octo["Series"]:
            continue
        intervals = octo["Series"][0]["Intervals"]
        assert result["interval"] == [i["StartOfInterval"] for i in intervals], where
        want = [_OCTOPUS_OF[metric](i, _STAT[statistic]) for i in intervals]
        got_values = result["series"][0]["values"]
        assert [None if v is None else pytest.approx(v, abs=1e-3) for v in want] == got_values, where


# --- Orlo stats by date (API.md: UTC times, ISO weeks) -----------------------------------------------------

ORLO_EDGES = (
    datetime(2020, 12, 31, 23, 59, 59, tzinfo=UTC),  # ISO 2020-W53-4
    datetime(2021, 1, 3, 23, 59, 59, tzinfo=UTC),  # still ISO 2020-W53
    datetime(2021, 1, 4, 0, 0, tzinfo=UTC),  # ISO 2021-W01
    datetime(2024, 2, 29, 0, 0, tzinfo=UTC),
    datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC),
    datetime(2024, 12, 29, 23, 59, 59, tzinfo=UTC),  # ISO 2024-W52-7
    datetime(2024, 12, 30, 0, 0, tzinfo=UTC),  # ISO 2025-W01-1
    datetime(2024, 12, 31, 23, 0, tzinfo=UTC),
)


def _orlo_basic() -> dict[str, str]:
    import base64

    return {"authorization": "Basic " + base64.b64encode(f"orlo:{ADMIN_KEY}".encode()).decode()}


def test_orlo_stats_by_date_file_releases_under_their_utc_time(api: Api, clock: Clock) -> None:
    """API.md Orlo: times are UTC; by_date keys without zero padding; week = ISO (year, week); iso adds the
    ISO weekday; a release given with an offset is filed under its UTC time."""
    rng = random.Random(11)
    clock.now = datetime(2025, 2, 1, tzinfo=UTC)
    releases = []
    stimes: list[tuple[datetime, bool]] = []
    for n, edge in enumerate(ORLO_EDGES):
        for jitter in (timedelta(0), timedelta(seconds=1), timedelta(seconds=-1)):
            at = edge + jitter
            zone = ZoneInfo(rng.choice(("Asia/Kathmandu", "Etc/GMT+12", "Pacific/Kiritimati", "UTC")))
            ok = rng.random() < 0.7
            releases.append(
                {
                    "platforms": ["site"],
                    "stime": at.astimezone(zone).isoformat(),
                    "ftime": (at + timedelta(seconds=30)).astimezone(zone).isoformat(),
                    "team": "t",
                    "references": [f"R-{n}-{jitter.total_seconds()}"],
                    "packages": [
                        {
                            "name": "pkg",
                            "stime": at.astimezone(zone).isoformat(),
                            "ftime": (at + timedelta(seconds=30)).astimezone(zone).isoformat(),
                            "rollback": False,
                            "status": "SUCCESSFUL" if ok else "FAILED",
                            "version": f"{n}.{jitter.total_seconds()}",
                        }
                    ],
                    "user": "u",
                }
            )
            stimes.append((at, ok))
    got = api.call("POST", "/orlo/releases/import", body=releases, headers=_orlo_basic())
    assert got.status == 200, got.body

    def tree(unit: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for at, ok in stimes:
            iso = at.isocalendar()
            keys = {
                "year": [at.year],
                "month": [at.year, at.month],
                "week": [iso.year, iso.week],
                "iso": [iso.year, iso.week, iso.weekday],
                "day": [at.year, at.month, at.day],
                "hour": [at.year, at.month, at.day, at.hour],
            }[unit]
            node = out
            for k in keys:
                node = node.setdefault(str(k), {})
            leaf = node.setdefault("normal", {})
            name = "successful" if ok else "failed"
            leaf[name] = leaf.get(name, 0) + 1
        return out

    for unit in ("year", "month", "week", "iso", "day", "hour"):
        found = api.call(
            "GET",
            "/orlo/stats/by_date/{subject}",
            path_params={"subject": "release"},
            query={"unit": unit},
            headers=_orlo_basic(),
        )
        assert found.status == 200, found.body
        assert found.body == tree(unit), unit


def test_a_deployment_dated_later_today_waits_in_the_weekly_view_as_in_the_daily_one(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """A deployment finished at 2024-03-02 10:00Z (a tool's clock ahead), the UTC report last computed at
    2024-03-01 12:00Z, read at 2024-03-02 09:00Z (its time not come, nothing due): the Weekly interval of
    2024-02-25 (Sunday..Saturday 2024-03-02) counts it, the Daily interval 2024-03-02 shows 0, so the days of
    the week added up to 0 while the week said 1 (the views were cut at the end of now's interval, so what
    waited depended on the interval's length). METRICS §4: it waits in every view, and counts in both once
    its time comes."""
    clock.now = datetime(2024, 3, 1, 11, 0, tzinfo=UTC)
    send(api, [Dep("zone-ahead", datetime(2024, 3, 2, 10, 0, tzinfo=UTC), "Success", version="1")], lambda_context)
    report = create_report(api, "UTC")
    clock.now = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)  # the marks settle; the report is computed at noon
    report_metrics(api, report, timeRange="LastMonth", granularity="Daily")
    clock.now = datetime(2024, 3, 2, 9, 0, tzinfo=UTC)
    daily = report_metrics(api, report, timeRange="LastMonth", granularity="Daily")["Series"][0]["Intervals"]
    weekly = report_metrics(api, report, timeRange="LastMonth", granularity="Weekly")["Series"][0]["Intervals"]
    week = next(i for i in weekly if i["StartOfInterval"] == "2024-02-25")
    days = [i for i in daily if "2024-02-25" <= i["StartOfInterval"] <= "2024-03-02"]
    assert sum(i["NumberOfSuccessfulDeployments"] for i in days) == week["NumberOfSuccessfulDeployments"] == 0
    clock.now = datetime(2024, 3, 2, 10, 30, tzinfo=UTC)  # its time has come: counted in both
    daily = report_metrics(api, report, timeRange="LastMonth", granularity="Daily")["Series"][0]["Intervals"]
    weekly = report_metrics(api, report, timeRange="LastMonth", granularity="Weekly")["Series"][0]["Intervals"]
    week = next(i for i in weekly if i["StartOfInterval"] == "2024-02-25")
    days = [i for i in daily if "2024-02-25" <= i["StartOfInterval"] <= "2024-03-02"]
    assert sum(i["NumberOfSuccessfulDeployments"] for i in days) == week["NumberOfSuccessfulDeployments"] == 1


def test_insight_list_relative_month_bounds_are_inclusive_at_the_edges(api: Api, clock: Clock) -> None:
    """API.md PostHog list filters: `-1mStart`/`-1mEnd` are the start and the last instant of the month one
    calendar month back (UTC; at 2024-03-31 that is February of a leap year), bounds inclusive; a date is its
    00:00 UTC; an ISO time with an offset is that instant."""
    clock.now = datetime(2024, 1, 1, tzinfo=UTC)
    report = create_report(api, "Pacific/Kiritimati")
    at = {
        "jan-last": datetime(2024, 1, 31, 23, 59, 59, 999000, tzinfo=UTC),
        "feb-first": datetime(2024, 2, 1, tzinfo=UTC),
        "leap-last": datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC),
        "mar-first": datetime(2024, 3, 1, tzinfo=UTC),
    }
    for name, when in at.items():
        clock.now = when
        query = {"kind": "DoraMetricsQuery", "reportId": report, "metric": "deployment_frequency"}
        made = api.call("POST", INSIGHTS, path_params=SP, body={"name": name, "query": query}, key=ADMIN_KEY)
        assert made.status == 201, made.body
    clock.now = datetime(2024, 3, 31, 12, tzinfo=UTC)

    def names(**query: str) -> set[str]:
        got = api.call("GET", INSIGHTS, path_params=SP, query={"limit": "100", **query}, key=ADMIN_KEY)
        assert got.status == 200, got.body
        return {r["name"] for r in got.body["results"]}

    assert names(date_from="-1mStart", date_to="-1mEnd") == {"feb-first", "leap-last"}
    assert names(created_date_from="2024-02-01", created_date_to="2024-02-29T23:59:59.999Z") == {
        "feb-first",
        "leap-last",
    }
    assert names(created_date_from="2024-03-01T13:59:59.999+14:00") == {"leap-last", "mar-first"}
    assert names(created_date_to="2024-02-29T11:59:59.999-12:00") == {"jan-last", "feb-first", "leap-last"}


def test_insight_csv_export_carries_the_same_result_as_json(api: Api, clock: Clock, lambda_context: Any) -> None:
    """API.md: `format=csv` answers one row per result of the JSON list (the result's intervals included)."""
    import csv
    import io
    import json

    clock.now = datetime(2024, 3, 10, 7, 30, tzinfo=UTC)
    deps = random_history(
        random.Random(3),
        ZoneInfo("America/New_York"),
        clock.now - timedelta(days=40),
        clock.now - timedelta(seconds=1),
        20,
    )
    send(api, deps, lambda_context)
    report = create_report(api, "Eastern Standard Time")
    query = {
        "kind": "DoraMetricsQuery",
        "reportId": report,
        "metric": "deployment_frequency",
        "granularity": "Daily",
        "timeRange": "LastMonth",
    }
    made = api.call("POST", INSIGHTS, path_params=SP, body={"name": "csv", "query": query}, key=ADMIN_KEY)
    assert made.status == 201, made.body
    as_json = api.call("GET", INSIGHTS, path_params=SP, query={"refresh": "blocking"}, key=ADMIN_KEY)
    as_csv = api.call("GET", INSIGHTS, path_params=SP, query={"refresh": "blocking", "format": "csv"}, key=ADMIN_KEY)
    assert as_json.status == 200 and as_csv.status == 200, (as_json.body, as_csv.body)
    (row,) = list(csv.DictReader(io.StringIO(as_csv.body)))
    (item,) = as_json.body["results"]
    assert json.loads(row["result"]) == item["result"]
    rows = oracle_intervals(deps, clock.now, ZoneInfo("America/New_York"), "LastMonth", "Daily")
    assert item["result"]["interval"] == [r["start"] for r in rows]
    assert item["result"]["series"][0]["values"] == [r["ok"] for r in rows]


def test_datadog_list_unix_bounds_in_seconds_milliseconds_and_nanoseconds_are_inclusive(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """API.md Datadog list: `from`/`to` may be unix time (seconds, milliseconds or nanoseconds, by magnitude as
    for events) and are inclusive bounds on a deployment's finish."""
    clock.now = datetime(2024, 3, 10, tzinfo=UTC)
    base = datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)
    deps = [
        Dep("zone-u-0", base - timedelta(milliseconds=1), "Success", version="a"),
        Dep("zone-u-1", base, "Success", version="b"),
        Dep("zone-u-2", base + timedelta(milliseconds=500), "Success", version="c"),
        Dep("zone-u-3", base + timedelta(seconds=1), "Success", version="d"),
        Dep("zone-u-4", base + timedelta(seconds=1, milliseconds=1), "Success", version="e"),
    ]
    send(api, deps, lambda_context)
    s = int(base.timestamp())
    assert sorted(dd_ids(api, **{"from": s, "to": s + 1})) == ["zone-u-1", "zone-u-2", "zone-u-3"]
    assert sorted(dd_ids(api, **{"from": s * 1000, "to": (s + 1) * 1000})) == ["zone-u-1", "zone-u-2", "zone-u-3"]
    ns = s * 1_000_000_000
    assert sorted(dd_ids(api, **{"from": ns + 500_000_000, "to": ns + 1_000_000_000})) == ["zone-u-2", "zone-u-3"]
    assert sorted(dd_ids(api, **{"from": str(s), "to": str(s + 1)})) == ["zone-u-1", "zone-u-2", "zone-u-3"]


@pytest.mark.parametrize(
    ("zone_name", "now"),
    [
        ("Pacific/Apia", datetime(2012, 1, 20, 3, 0, tzinfo=UTC)),  # 2011-12-30 never happened in Samoa
        ("Pacific/Chatham", datetime(2024, 4, 7, 3, 0, tzinfo=UTC)),  # +13:45 -> +12:45
        ("Pacific/Chatham", datetime(2024, 9, 29, 2, 0, tzinfo=UTC)),
        ("America/Havana", datetime(2024, 3, 10, 6, 0, tzinfo=UTC)),  # DST at midnight
        ("Asia/Tehran", datetime(2022, 9, 25, 0, 0, tzinfo=UTC)),  # +03:30, its last DST (ends at midnight)
        ("America/St_Johns", datetime(2024, 11, 3, 5, 0, tzinfo=UTC)),  # -03:30/-02:30
        ("Europe/Dublin", datetime(2024, 3, 31, 1, 30, tzinfo=UTC)),  # negative DST in tzdata
        ("Africa/Casablanca", datetime(2024, 4, 14, 3, 0, tzinfo=UTC)),  # Ramadan shift
    ],
)
def test_report_intervals_in_zones_with_odd_days(
    api: Api, clock: Clock, lambda_context: Any, zone_name: str, now: datetime
) -> None:
    """METRICS §4 in zones whose days are not 23-25 hours of midnight-to-midnight: a skipped date (Samoa,
    2011-12-30), 45-minute offsets, DST at midnight, negative DST, a month-long shift."""
    rng = random.Random(zone_name + now.isoformat())
    zone = ZoneInfo(zone_name)
    clock.now = now
    deps = random_history(rng, zone, now - timedelta(days=100), now - timedelta(seconds=1), 70)
    send(api, deps, lambda_context)
    report = create_report(api, zone_name)
    for granularity in ("Daily", "Weekly", "Monthly"):
        for time_range in ("LastMonth", "LastQuarter"):
            body = report_metrics(api, report, timeRange=time_range, granularity=granularity)
            rows = oracle_intervals(deps, now, zone, time_range, granularity)
            where = f"{zone_name} now={now.isoformat()} {time_range}/{granularity}"
            (series,) = body["Series"]
            assert [i["StartOfInterval"] for i in series["Intervals"]] == [r["start"] for r in rows], where
            for served, row in zip(series["Intervals"], rows, strict=True):
                compare_interval(served, row, where)
