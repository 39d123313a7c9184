"""``GET /api/{spaceId}/summary`` and ``GET /api/{spaceId}/dora/metrics`` (METRICS §2 rule 4, §6, §8, §9;
API.md "Native API", "Dialect: GitLab DORA metrics API") through the real routes against moto: /summary
against an oracle over random histories; daily, monthly and whole-range rows against /summary; range
and tier-band edges; parameter validation and hostile input; freshness fields (``pending``, ``as_of``,
``X-Dora-Pending``) around new and removed deployments; failure events of a stream whose deployments
were all removed, which still count as incidents."""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.support.native import create_deployment, list_all, read_deployment
from tests.support.recompute import scheduled_run
from tests.support.seeds import seeds

SPACE = "Spaces-1"
SP = {"spaceId": SPACE}
SUMMARY = "/api/{spaceId}/summary"
METRICS = "/api/{spaceId}/dora/metrics"
FAILURES = "/api/{spaceId}/failures"
NOW = datetime(2024, 6, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _call(api: Api, method: str, route: str, **kwargs: Any) -> HttpResult:
    """As a client sees it: an exception escaping the handler is API Gateway's bare 500."""
    try:
        return api.call(method, route, **kwargs)
    except Exception as error:  # a defect reaches the client as a 500
        return HttpResult(status=500, headers={}, body={"exception": repr(error)})


def _summary(api: Api, **query: str) -> HttpResult:
    return _call(api, "GET", SUMMARY, key=ADMIN_KEY, path_params=SP, query=query or None)


def _metrics(api: Api, **query: str) -> HttpResult:
    return _call(api, "GET", METRICS, key=ADMIN_KEY, path_params=SP, query=query or None)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _native_error(found: HttpResult) -> None:
    assert 400 <= found.status < 500, (found.status, found.body)
    assert isinstance(found.body, dict) and isinstance(found.body.get("message"), str), found.body
    assert isinstance(found.body.get("errors"), list), found.body


# --- oracle helpers (METRICS §4, §6) --------------------------------------------------------------
def _pct(values: list[float], q: float) -> float | None:
    """NumPy's default percentile (linear between closest ranks)."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _lead_tier_2023(v: float | None) -> str | None:
    if v is None:
        return None
    if v < 86400:
        return "Elite"
    if v < 604800:
        return "High"
    if v < 2592000:
        return "Medium"
    return "Low"


def _recovery_tier_2023(v: float | None) -> str | None:
    if v is None:
        return None
    if v < 3600:
        return "Elite"
    if v < 86400:
        return "High"
    if v < 604800:
        return "Medium"
    return "Low"


def _cfr_tier(rate: float, table: dict[str, float]) -> str:
    order = ["Elite", "High", "Medium", "Low"]
    best = min(abs(rate - t) for t in table.values())
    return max((k for k, t in table.items() if abs(rate - t) - best <= 1e-12), key=order.index)


CFR_2023 = {"Elite": 0.05, "High": 0.10, "Medium": 0.15, "Low": 0.64}
CFR_2024 = {"Elite": 0.05, "High": 0.20, "Medium": 0.10, "Low": 0.40}


def _median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def _df_tier(days: set[date], first: date, last: date) -> str:
    """METRICS §6 (2023): median deployment days per week (from Sunday) >= 5 elite, >= 1 high; median per
    calendar month >= 1 medium; else low; periods overlapping [first, last] (UTC dates), partial ones as they are."""
    weeks: dict[date, int] = {}
    months: dict[date, int] = {}
    d = first
    while d <= last:
        weeks.setdefault(d - timedelta(days=(d.weekday() + 1) % 7), 0)
        months.setdefault(d.replace(day=1), 0)
        d += timedelta(days=1)
    for d in days:
        if first <= d <= last:
            weeks[d - timedelta(days=(d.weekday() + 1) % 7)] += 1
            months[d.replace(day=1)] += 1
    wm = _median(list(weeks.values()))
    if wm >= 5:
        return "Elite"
    if wm >= 1:
        return "High"
    if _median(list(months.values())) >= 1:
        return "Medium"
    return "Low"


# --- random history --------------------------------------------------------------------------------
PROJECTS = ("shop", "cart")
ENVIRONMENTS = ("production", "staging")


def _history(api: Api, rng: random.Random, lambda_context: Any) -> list[dict[str, Any]]:
    """Random native deployments (states, rollbacks, fixes, guided failures) over ~70 days before NOW, and
    failure events (some open, some naming two projects); then the scheduled recompute."""
    sent: list[dict[str, Any]] = []
    base = NOW - timedelta(days=70)
    n = 0
    for project in PROJECTS:
        for environment in ENVIRONMENTS:
            t = base + timedelta(minutes=rng.randint(0, 600))
            versions: list[str] = []
            for _ in range(rng.randint(4, 14)):
                t += timedelta(minutes=rng.choice([20, 90, 300, 1440, 2880, 7000]))
                if t >= NOW:
                    break
                n += 1
                state = rng.choices(["Success", "Failed", "TimedOut", "Canceled"], [70, 12, 6, 8])[0]
                fields: dict[str, Any] = {
                    "id": f"d{n}",
                    "state": state,
                    "started_at": _iso(t - timedelta(minutes=rng.randint(1, 15))),
                }
                roll = rng.random()
                if roll < 0.1 and versions:
                    fields["version"] = rng.choice(versions)  # a redeploy: maybe a rollback
                elif roll < 0.15:
                    fields["rollback"] = True
                    fields["version"] = f"{project}-{n}"
                elif roll < 0.2 and versions:
                    fields["fixes"] = versions[-1]
                    fields["version"] = f"{project}-{n}"
                else:
                    fields["version"] = f"{project}-{n}"
                if state == "Success" and rng.random() < 0.05:
                    fields["had_guided_failure"] = True
                versions.append(fields["version"])
                create_deployment(api, project=project, environment=environment, finished_at=_iso(t), **fields)
                sent.append({"project": project, "environment": environment, "finished_at": t, **fields})
    for k in range(rng.randint(2, 6)):
        started = base + timedelta(minutes=rng.randint(0, 69 * 1440))
        body: dict[str, Any] = {
            "id": f"f{k}",
            "environment": rng.choice(ENVIRONMENTS),
            "started_at": _iso(started),
        }
        if rng.random() < 0.3:
            body["projects"] = list(PROJECTS)
        else:
            body["project"] = rng.choice(PROJECTS)
        if rng.random() < 0.8:
            body["finished_at"] = _iso(started + timedelta(minutes=rng.randint(5, 3000)))
        r = api.call("POST", FAILURES, key=ADMIN_KEY, path_params=SP, body=body)
        assert r.status in (200, 201), r.body
    scheduled_run(lambda_context)
    return sent


def _oracle(
    api: Api,
    sent: list[dict[str, Any]],
    start: datetime,
    end: datetime,
    environments: set[str] | None,
    project: str | None,
) -> dict[str, Any]:
    rows = []
    for d in sent:
        if environments is not None and d["environment"] not in environments:
            continue
        if project is not None and d["project"] != project:
            continue
        if d["state"] == "Canceled" or not start <= d["finished_at"] < end:
            continue
        figures = read_deployment(api, d["id"])["figures"]
        rows.append((d, figures))
    successful = [(d, f) for d, f in rows if d["state"] == "Success" and not d.get("had_guided_failure")]
    leads = [f["lead_time_seconds"] for _, f in successful if f["lead_time_seconds"] is not None]
    recov = [f["time_to_recovery_seconds"] for _, f in successful if f["time_to_recovery_seconds"] is not None]
    counted = [(d, f) for d, f in rows if not f.get("rollback") and not d.get("rollback") and not _is_rollback(f)]
    failures = sum(1 for _, f in counted if f["change_failure"])
    rework = sum(1 for _, f in rows if f["rework"])
    days = {d["finished_at"].date() for d, _ in successful}
    restores = []
    for ev in list_all(api, FAILURES):
        if ev["finished_at"] is None:
            continue
        s = datetime.fromisoformat(ev["started_at"].replace("Z", "+00:00"))
        e = datetime.fromisoformat(ev["finished_at"].replace("Z", "+00:00"))
        if not start <= s < end:
            continue
        if environments is not None and ev["environment"] not in environments:
            continue
        if project is not None and project not in ev["projects"]:
            continue
        restores.append((e - s).total_seconds())
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    cfr = round(failures / len(counted), 5) if counted else 0.0
    return {
        "deployments": len(rows),
        "successful": len(successful),
        "deployment_days": len(days),
        "per_day": round(len(successful) / max(1.0, (end - start) / timedelta(days=1)), 5),
        "df_tier": _df_tier(days, first, last) if successful else None,
        "lead_count": len(leads),
        "lead_median": _pct(leads, 0.5),
        "lead_p95": _pct(leads, 0.95),
        "lead_tier": _lead_tier_2023(_pct(leads, 0.5)),
        "cf": failures,
        "cf_den": len(counted),
        "cfr": cfr,
        "cfr_tier": _cfr_tier(cfr, CFR_2023) if counted else None,
        "recovery_count": len(recov),
        "recovery_median": _pct(recov, 0.5),
        "recovery_tier": _recovery_tier_2023(_pct(recov, 0.5)),
        "restore_count": len(restores),
        "restore_median": _pct(restores, 0.5),
        "restore_tier": _recovery_tier_2023(_pct(restores, 0.5)),
        "rework": rework,
        "rework_rate": round(rework / len(rows), 5) if rows else 0.0,
    }


def _is_rollback(figures: dict[str, Any]) -> bool:
    return bool(figures.get("rollback") or figures.get("rework_reason") == "rollback")


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def _check(body: dict[str, Any], want: dict[str, Any]) -> None:
    got = {
        "deployments": body["deployments"],
        "successful": body["deployment_frequency"]["successful_deployments"],
        "deployment_days": body["deployment_frequency"]["deployment_days"],
        "per_day": body["deployment_frequency"]["per_day"],
        "df_tier": body["deployment_frequency"]["tier"],
        "lead_count": body["lead_time"]["count"],
        "lead_median": body["lead_time"]["median_seconds"],
        "lead_p95": body["lead_time"]["p95_seconds"],
        "lead_tier": body["lead_time"]["tier"],
        "cf": body["change_failure_rate"]["change_failures"],
        "cf_den": body["change_failure_rate"]["deployments"],
        "cfr": body["change_failure_rate"]["rate"],
        "cfr_tier": body["change_failure_rate"]["tier"],
        "recovery_count": body["recovery_time"]["count"],
        "recovery_median": body["recovery_time"]["median_seconds"],
        "recovery_tier": body["recovery_time"]["tier"],
        "restore_count": body["time_to_restore"]["count"],
        "restore_median": body["time_to_restore"]["median_seconds"],
        "restore_tier": body["time_to_restore"]["tier"],
        "rework": body["rework_rate"]["rework_deployments"],
        "rework_rate": body["rework_rate"]["rate"],
    }
    diff = {
        k: (got[k], want[k])
        for k in want
        if not (
            _close(got[k], want[k]) if isinstance(want[k], float) or isinstance(got[k], float) else got[k] == want[k]
        )
    }
    assert not diff, diff


# --- property: /summary against the oracle ----------------------------------------------------------
@pytest.mark.parametrize("seed", seeds([1, 2, 3]))
def test_summary_matches_oracle_on_random_histories(api: Api, clock: Clock, lambda_context: Any, seed: int) -> None:
    rng = random.Random(seed)
    sent = _history(api, rng, lambda_context)
    for _ in range(3):
        start = NOW - timedelta(days=rng.randint(2, 75), minutes=rng.randint(0, 1440))
        end = min(NOW + timedelta(days=1), start + timedelta(days=rng.randint(1, 80), minutes=rng.randint(0, 1440)))
        env = rng.choice([None, "production", "staging"])
        project = rng.choice([None, "shop", "cart"])
        query = {"from": _iso(start), "to": _iso(end)}
        if env:
            query["environment"] = env
        if project:
            query["project"] = project
        found = _summary(api, **query)
        assert found.status == 200, found.body
        assert found.body["pending"] == 0
        want = _oracle(api, sent, start, end, {env} if env else None, project)
        _check(found.body, want)


@pytest.mark.parametrize("seed", seeds([4, 5]))
def test_daily_rows_sum_to_summary_and_monthly_to_daily(api: Api, clock: Clock, lambda_context: Any, seed: int) -> None:
    """Counts agree across routes over the same days: successful deployments per UTC day (dora/metrics
    daily) sum to /summary's successful deployments over [first 00:00, last+1 00:00); monthly rows are the
    daily ones averaged over the range's days of each month; rework rate over `all` equals /summary's."""
    rng = random.Random(seed)
    _history(api, rng, lambda_context)
    for env in ENVIRONMENTS:
        first = (NOW - timedelta(days=rng.randint(20, 75))).date()
        last = first + timedelta(days=rng.randint(1, 60))
        q = {"start_date": first.isoformat(), "end_date": last.isoformat(), "environment": env}
        daily = _metrics(api, metric="deployment_frequency", interval="daily", **q)
        monthly = _metrics(api, metric="deployment_frequency", interval="monthly", **q)
        whole = _metrics(api, metric="deployment_frequency", interval="all", **q)
        rework = _metrics(api, metric="rework_rate", interval="all", **q)
        for r in (daily, monthly, whole, rework):
            assert r.status == 200, r.body
        s = _summary(
            api,
            **{
                "from": f"{first.isoformat()}T00:00:00Z",
                "to": f"{(last + timedelta(days=1)).isoformat()}T00:00:00Z",
                "environment": env,
            },
        )
        assert s.status == 200, s.body
        total = sum(row["value"] for row in daily.body)
        assert len(daily.body) == (last - first).days + 1
        assert total == s.body["deployment_frequency"]["successful_deployments"]
        by_month: dict[str, list[int]] = defaultdict(list)
        for row in daily.body:
            by_month[row["date"][:7] + "-01"].append(row["value"])
        assert [row["date"] for row in monthly.body] == sorted(by_month)
        for row in monthly.body:
            values = by_month[row["date"]]
            assert math.isclose(row["value"], sum(values) / len(values), rel_tol=1e-9, abs_tol=1e-12), row
        assert math.isclose(whole.body[0]["value"], total / len(daily.body), rel_tol=1e-9, abs_tol=1e-12)
        if s.body["deployments"]:
            assert math.isclose(rework.body[0]["value"], s.body["rework_rate"]["rate"], abs_tol=1e-5)
        else:
            assert rework.body[0]["value"] is None


# --- /summary edges --------------------------------------------------------------------------------
@pytest.fixture
def small(api: Api, clock: Clock, lambda_context: Any) -> None:
    """Successes in production on 2024-06-10..14 (one a day at 10:00), a failure in staging."""
    for k, day in enumerate(range(10, 15)):
        create_deployment(api, id=f"s{k}", version=f"1.{k}", finished_at=f"2024-06-{day}T10:00:00Z")
    create_deployment(
        api, id="x", environment="staging", state="Failed", version="9", finished_at="2024-06-12T10:00:00Z"
    )
    scheduled_run(lambda_context)


def _s(api: Api, **q: str) -> dict[str, Any]:
    found = _summary(api, **q)
    assert found.status == 200, found.body
    return found.body  # type: ignore[no-any-return]


def test_from_is_included_and_to_excluded(api: Api, small: None) -> None:
    body = _s(api, **{"from": "2024-06-10T10:00:00Z", "to": "2024-06-14T10:00:00Z", "environment": "production"})
    assert body["deployment_frequency"]["successful_deployments"] == 4
    assert body["from"] == "2024-06-10T10:00:00Z" and body["to"] == "2024-06-14T10:00:00Z"


def test_offsets_are_instants(api: Api, small: None) -> None:
    """``from`` with +05:30 is the same instant as its UTC spelling."""
    a = _s(api, **{"from": "2024-06-10T15:30:00+05:30", "to": "2024-06-12T15:30:00+05:30"})
    b = _s(api, **{"from": "2024-06-10T10:00:00Z", "to": "2024-06-12T10:00:00Z"})
    assert a["deployments"] == b["deployments"] == 2
    assert a["from"] == "2024-06-10T10:00:00Z"


def test_a_future_range_is_zeros_and_no_tiers(api: Api, small: None) -> None:
    body = _s(api, **{"from": "2030-01-01T00:00:00Z", "to": "2030-02-01T00:00:00Z"})
    assert body["deployments"] == 0
    assert body["deployment_frequency"]["tier"] is None
    assert body["lead_time"]["tier"] is None and body["change_failure_rate"]["tier"] is None
    assert body["recovery_time"]["tier"] is None and body["time_to_restore"]["tier"] is None
    assert body["change_failure_rate"]["rate"] == 0 and body["rework_rate"]["rate"] == 0


@pytest.mark.parametrize(
    "query",
    [
        {"from": "2024-06-12T00:00:00Z", "to": "2024-06-12T00:00:00Z"},
        {"from": "2024-06-13T00:00:00Z", "to": "2024-06-12T00:00:00Z"},
        {"from": "2024-13-01T00:00:00Z"},
        {"from": "2024-06-12T00:00:00"},
        {"to": "yesterday"},
        {"from": "2024-06-01T00:00:00Z,2024-06-02T00:00:00Z"},
        {"from": "1960-01-01T00:00:00Z"},
        {"to": "2200-01-01T00:00:00Z"},
        {"from": "x" * 65},
        {"benchmark": "1999"},
        {"benchmark": "2023,2024"},
        {"benchmark": "x" * 9},
        {"environment": "e" * 201},
        {"from": "2099-12-31T00:00:00Z"},
        {"from": "NaN"},
        {"to": "1e400"},
        {"to": "99999999999999999999999999"},
        {"from": "-1"},
    ],
)
def test_bad_parameters_are_native_4xx(api: Api, small: None, query: dict[str, str]) -> None:
    _native_error(_summary(api, **query))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"from": "x"}, "from: 'x' is not an ISO-8601 time or a unix timestamp"),
        ({"to": "2024-06-12T00:00:00"}, "to: '2024-06-12T00:00:00' has no UTC offset; add 'Z' or '+HH:MM'"),
        ({"from": "2024-06-13T00:00:00Z", "to": "2024-06-12T00:00:00Z"}, "from: must be before to"),
        ({"benchmark": "1999"}, "benchmark: must be one of "),
    ],
)
def test_a_bad_parameter_is_named_once_in_the_errors(api: Api, query: dict[str, str], expected: str) -> None:
    """The native shape names the field once per problem (``"field: problem"``), as a validation error does."""
    found = _summary(api, **query)
    assert found.status == 400, found.body
    assert len(found.body["errors"]) == 1 and found.body["errors"][0].startswith(expected), found.body
    assert found.body["errors"][0].count(next(iter(query))) == 1, found.body  # not "from: from: ..."


@pytest.mark.parametrize(
    "to",
    ["1970-01-02T00:00:00Z", "1970-03-01T00:00:00Z", "86400"],
)
def test_a_to_near_the_earliest_instant_without_from_is_not_a_5xx(api: Api, small: None, to: str) -> None:
    """The default from is 90 days before to: before 1970, the earliest accepted instant. A client sending
    only ``to`` gets an answer (clamped) or a 400, never a 500."""
    found = _summary(api, to=to)
    assert found.status < 500, found.body


def test_the_widest_range_answers_quickly(api: Api, small: None) -> None:
    """1970..2100 (the accepted range): the deployment-frequency tier walks every day; still fast."""
    t0 = time.monotonic()
    body = _s(api, **{"from": "1970-01-01T00:00:00Z", "to": "2099-12-31T23:59:59Z"})
    assert body["deployment_frequency"]["successful_deployments"] == 5
    assert time.monotonic() - t0 < 10


def test_an_unknown_environment_or_project_selects_nothing(api: Api, small: None) -> None:
    for q in ({"environment": "nowhere"}, {"project": "nothing"}, {"environment": "Environments-999"}):
        body = _s(api, **q)
        assert body["deployments"] == 0, (q, body)
        assert body["deployment_frequency"]["tier"] is None


def test_environment_by_id_and_any_case(api: Api, small: None) -> None:
    staging = read_deployment(api, "x")["environment_id"]
    by_id = _s(api, environment=staging)
    by_name = _s(api, environment="STAGING")
    assert by_id["deployments"] == by_name["deployments"] == 1
    assert by_id["change_failure_rate"]["change_failures"] == 1


def test_a_removed_deployment_stops_counting(api: Api, small: None, clock: Clock) -> None:
    """Removing the only deployment of a stream: the read that empties it counts nothing and its figures
    are current (the stream was recomputed by this read), so ``pending`` must be 0 (METRICS §8)."""
    clock.advance(timedelta(seconds=5))
    assert _s(api)["pending"] == 0  # everything settled and vouched for
    r = api.call(
        "DELETE",
        "/api/{spaceId}/deployments/{deploymentId}",
        key=ADMIN_KEY,
        path_params={"spaceId": SPACE, "deploymentId": "x"},
    )
    assert r.status == 204, r.body
    body = _s(api, environment="staging")
    assert body["deployments"] == 0 and body["pending"] == 0
    clock.advance(timedelta(seconds=5))
    body = _s(api, environment="staging")
    assert body["deployments"] == 0 and body["pending"] == 0


def test_2024_change_failure_tier_is_not_monotonic(api: Api, clock: Clock, lambda_context: Any) -> None:
    """15 % under 2024: distances to High (20 %) and Medium (10 %) tie; ties go to the worse tier, Medium."""
    at = datetime(2024, 6, 1, 10, tzinfo=UTC)
    for k in range(20):
        state = "Failed" if k in (3, 9, 15) else "Success"
        create_deployment(api, id=f"c{k}", version=f"v{k}", state=state, finished_at=_iso(at + timedelta(hours=k)))
    scheduled_run(lambda_context)
    body = _s(api, benchmark="2024", **{"from": "2024-06-01T00:00:00Z", "to": "2024-06-03T00:00:00Z"})
    assert body["change_failure_rate"]["rate"] == 0.15
    assert body["change_failure_rate"]["tier"] == _cfr_tier(0.15, CFR_2024) == "Medium"


def test_every_weekday_for_four_whole_weeks_is_elite(api: Api, clock: Clock, lambda_context: Any) -> None:
    """Sunday 2024-05-05 .. Saturday 2024-06-01, a deployment each weekday: median 5 days a week."""
    k = 0
    d = date(2024, 5, 5)
    while d <= date(2024, 6, 1):
        if d.weekday() < 5:
            create_deployment(api, id=f"w{k}", version=f"w{k}", finished_at=f"{d.isoformat()}T12:00:00Z")
            k += 1
        d += timedelta(days=1)
    scheduled_run(lambda_context)
    body = _s(api, **{"from": "2024-05-05T00:00:00Z", "to": "2024-06-02T00:00:00Z"})
    assert body["deployment_frequency"]["deployment_days"] == 20
    assert body["deployment_frequency"]["tier"] == "Elite"


def test_lead_time_by_release_rule(api: Api, clock: Clock, lambda_context: Any) -> None:
    """No code: each success measures from the first sight of the release after the previous success's
    (METRICS §3). v1 seen 09:00 (started), v2 started 10:00 fails, v3 started 11:00 succeeds at 12:00:
    v3's lead time is from v2's first sight (10:00), two hours."""
    create_deployment(api, id="r1", version="v1", started_at="2024-06-01T09:00:00Z", finished_at="2024-06-01T09:30:00Z")
    create_deployment(
        api,
        id="r2",
        version="v2",
        state="Failed",
        started_at="2024-06-01T10:00:00Z",
        finished_at="2024-06-01T10:30:00Z",
    )
    create_deployment(api, id="r3", version="v3", started_at="2024-06-01T11:00:00Z", finished_at="2024-06-01T12:00:00Z")
    scheduled_run(lambda_context)
    body = _s(api, **{"from": "2024-06-01T00:00:00Z", "to": "2024-06-02T00:00:00Z"})
    assert body["lead_time"]["count"] == 2
    assert body["lead_time"]["median_seconds"] == _pct([1800.0, 7200.0], 0.5)
    assert body["recovery_time"]["count"] == 1 and body["recovery_time"]["median_seconds"] == 5400.0
    assert body["change_failure_rate"] == {
        "change_failures": 1,
        "deployments": 3,
        "rate": round(1 / 3, 5),
        "tier": _cfr_tier(round(1 / 3, 5), CFR_2023),
    }


def test_a_new_staging_deployment_is_current_at_once(api: Api, small: None, clock: Clock) -> None:
    create_deployment(api, id="y", environment="staging", version="10", finished_at="2024-06-20T10:00:00Z")
    a = _s(api, environment="staging")
    b = _s(api, environment="staging")
    assert (a["deployments"], a["pending"], b["pending"]) == (2, 0, 0)


def test_a_new_staging_deployment_of_a_known_version_is_current_at_once(api: Api, small: None, clock: Clock) -> None:
    create_deployment(api, id="y", environment="staging", version="1.4", finished_at="2024-06-20T10:00:00Z")
    a = _s(api, environment="staging")
    b = _s(api, environment="staging")
    assert (a["deployments"], a["pending"], b["pending"]) == (2, 0, 0)


def test_removing_the_last_deployment_leaves_dora_metrics_current(api: Api, small: None, clock: Clock) -> None:
    clock.advance(timedelta(seconds=5))
    assert _s(api)["pending"] == 0
    r = api.call(
        "DELETE",
        "/api/{spaceId}/deployments/{deploymentId}",
        key=ADMIN_KEY,
        path_params={"spaceId": SPACE, "deploymentId": "x"},
    )
    assert r.status == 204
    m = _metrics(
        api, metric="deployment_frequency", environment="staging", start_date="2024-06-01", end_date="2024-06-30"
    )
    assert m.status == 200, m.body
    assert sum(row["value"] for row in m.body) == 0
    assert m.header("X-Dora-Pending") == "0"


# --- /dora/metrics edges -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"metric": "deployment_frequency", "start_date": "2024-06-01,2024-06-02"}, "start_date is invalid"),
        ({"metric": "deployment_frequency", "end_date": "2024-06-31"}, "end_date is invalid"),
        ({"metric": "deployment_frequency", "end_date": "june"}, "end_date is invalid"),
        ({"metric": "deployment_frequency", "environment_tiers": "prod"}, None),
        ({"metric": "deployment_frequency", "interval": "daily,monthly"}, None),
        ({"metric": "deployment_frequency,rework_rate"}, None),
        ({"metric": "deployment_frequency", "start_date": "2024-06-01T00:00:00Z"}, None),
    ],
)
def test_dora_metrics_bad_input_is_gitlab_400(
    api: Api, small: None, query: dict[str, str], message: str | None
) -> None:
    found = _metrics(api, **query)
    assert found.status == 400, (found.status, found.body)
    assert isinstance(found.body, dict) and set(found.body) == {"message"}, found.body
    if message is not None:
        assert found.body["message"] == message


def test_dora_metrics_future_range_is_zeros(api: Api, small: None) -> None:
    found = _metrics(api, metric="deployment_frequency", start_date="2030-01-01", end_date="2030-01-03")
    assert found.status == 200, found.body
    assert found.body == [{"date": f"2030-01-0{d}", "value": 0} for d in (1, 2, 3)]
    for metric in ("lead_time_for_changes", "change_failure_rate", "rework_rate", "time_to_restore_service"):
        found = _metrics(api, metric=metric, start_date="2030-01-01", end_date="2030-01-03")
        assert found.status == 200 and all(r["value"] is None for r in found.body), (metric, found.body)


def test_dora_metrics_unknown_filters_select_nothing(api: Api, small: None) -> None:
    for q in ({"project": "nothing"}, {"environment": "nowhere"}, {"tenant": "none"}, {"project_group": "Teams-9"}):
        found = _metrics(api, metric="deployment_frequency", start_date="2024-06-01", end_date="2024-06-30", **q)
        assert found.status == 200, (q, found.body)
        assert sum(r["value"] for r in found.body) == 0, q


def test_failure_range_edges_for_time_to_restore(api: Api, small: None) -> None:
    """time_to_restore counts finished failures that *started* in [from, to): at from yes, at to no."""
    for k, (s, f) in enumerate(
        [
            ("2024-06-11T00:00:00Z", "2024-06-11T01:00:00Z"),
            ("2024-06-12T00:00:00Z", "2024-06-12T03:00:00Z"),
            ("2024-06-10T23:00:00Z", "2024-06-11T05:00:00Z"),
        ]
    ):
        r = api.call(
            "POST",
            FAILURES,
            key=ADMIN_KEY,
            path_params=SP,
            body={"id": f"ff{k}", "project": "shop", "environment": "production", "started_at": s, "finished_at": f},
        )
        assert r.status == 201, r.body
    body = _s(api, **{"from": "2024-06-11T00:00:00Z", "to": "2024-06-12T00:00:00Z", "environment": "production"})
    assert body["time_to_restore"]["count"] == 1 and body["time_to_restore"]["median_seconds"] == 3600.0
    assert body["time_to_restore"]["tier"] == "High"  # "< 1 day" band: exactly one hour is not "< 1 hour"


def test_many_pending_streams_are_counted_then_caught_up(api: Api, clock: Clock, lambda_context: Any) -> None:
    """More marked streams than a read recomputes (20): the answer counts the rest in ``pending``; reads
    after catch up until ``pending`` is 0 and every deployment counts (METRICS §8)."""
    for k in range(25):
        create_deployment(api, id=f"m{k}", project=f"svc{k}", version="1", finished_at="2024-06-20T10:00:00Z")
    scheduled_run(lambda_context)  # every stream registered and computed
    for k in range(25):
        create_deployment(api, id=f"n{k}", project=f"svc{k}", version="2", finished_at="2024-06-21T10:00:00Z")
    clock.advance(timedelta(seconds=5))
    first = _s(api)
    assert first["pending"] == 5, first["pending"]
    assert first["deployment_frequency"]["successful_deployments"] == 45
    m = _metrics(api, metric="deployment_frequency", interval="all", start_date="2024-06-01", end_date="2024-06-30")
    assert m.status == 200 and m.header("X-Dora-Pending") == "0", (m.header("X-Dora-Pending"), m.body)
    assert m.body[0]["value"] == 50 / 30
    second = _s(api)
    assert second["pending"] == 0 and second["deployment_frequency"]["successful_deployments"] == 50


@pytest.mark.parametrize(("hours", "tier"), [(24, "High"), (24 * 7, "Medium"), (24 * 30, "Low"), (23, "Elite")])
def test_lead_time_band_edges(api: Api, clock: Clock, lambda_context: Any, hours: int, tier: str) -> None:
    """METRICS §6 (2023) lead time: < 1 day Elite, 1 day – 1 week High, 1 week – 1 month Medium, > 1 month
    Low; a band's upper end belongs to the next band ([min, max), tier_tables.json's own wording)."""
    done = datetime(2024, 6, 20, 12, tzinfo=UTC)
    create_deployment(
        api, id="lt", version="v1", started_at=_iso(done - timedelta(hours=hours)), finished_at=_iso(done)
    )
    scheduled_run(lambda_context)
    body = _s(api)
    assert body["lead_time"]["median_seconds"] == hours * 3600.0
    assert body["lead_time"]["tier"] == tier


@pytest.mark.parametrize(
    "query",
    [
        {"metric": "x" * 65},
        {"metric": "deployment_frequency", "interval": "d" * 17},
        {"metric": "deployment_frequency", "start_date": "2" * 33},
        {"metric": "deployment_frequency", "environment_tiers": ",".join(["production"] * 150)},
        {"metric": "deployment_frequency", "environment_tiers[]": ",".join(["staging"] * 150)},
        {"metric": "deployment_frequency", "project": "p" * 201},
        {"metric": "deployment_frequency", "start_date": "0000-01-01"},
        {"metric": "deployment_frequency", "start_date": "+2024-01-01"},
        {"metric": "deployment_frequency", "start_date": "２０２４-01-01"},
    ],
)
def test_dora_metrics_hostile_input_is_gitlab_4xx(api: Api, small: None, query: dict[str, str]) -> None:
    found = _metrics(api, **query)
    assert 400 <= found.status < 500, (found.status, found.body)
    assert isinstance(found.body, dict) and isinstance(found.body.get("message"), str), found.body


def test_summary_accepts_unix_times(api: Api, small: None) -> None:
    a = _s(api, **{"from": "1717977600", "to": "1718150400000"})  # 2024-06-10T00:00Z .. 2024-06-12T00:00Z (ms)
    assert a["from"] == "2024-06-10T00:00:00Z" and a["to"] == "2024-06-12T00:00:00Z"
    assert a["deployments"] == 2


def test_a_range_across_the_new_year(api: Api, clock: Clock, lambda_context: Any) -> None:
    create_deployment(api, id="ny1", version="a", finished_at="2023-12-31T23:30:00Z")
    create_deployment(api, id="ny2", version="b", finished_at="2024-01-01T00:30:00+01:00")  # 2023-12-31T23:30Z
    create_deployment(api, id="ny3", version="c", finished_at="2024-01-01T00:30:00Z")
    scheduled_run(lambda_context)
    daily = _metrics(api, metric="deployment_frequency", start_date="2023-12-30", end_date="2024-01-02")
    assert daily.status == 200 and [r["value"] for r in daily.body] == [0, 2, 1, 0], daily.body
    monthly = _metrics(
        api, metric="deployment_frequency", start_date="2023-12-30", end_date="2024-01-02", interval="monthly"
    )
    assert monthly.body == [{"date": "2023-12-01", "value": 1.0}, {"date": "2024-01-01", "value": 0.5}]
    body = _s(api, **{"from": "2023-12-31T00:00:00Z", "to": "2024-01-01T00:00:00Z"})
    assert body["deployment_frequency"]["successful_deployments"] == 2
    assert body["deployment_frequency"]["deployment_days"] == 1


def test_as_of_is_the_newest_computation_of_the_covered_streams(api: Api, small: None, clock: Clock) -> None:
    clock.advance(timedelta(seconds=5))  # the fixture's marks settle; this read vouches for them
    before = _s(api)["as_of"]
    assert before is not None and before.startswith("2024-06-30T12:00:05")
    clock.advance(timedelta(minutes=30))
    create_deployment(
        api, id="st2", environment="staging", project="cart", version="s2", finished_at="2024-06-30T12:10:00Z"
    )
    clock.advance(timedelta(seconds=5))
    prod = _summary(api, environment="production")
    assert prod.body["as_of"] == before, prod.body["as_of"]  # the staging stream is not covered
    everything = _summary(api)
    assert everything.body["as_of"].startswith("2024-06-30T12:30:10"), everything.body["as_of"]
    assert everything.header("X-Dora-As-Of") == everything.body["as_of"]
    m = _metrics(
        api, metric="deployment_frequency", environment="staging", start_date="2024-06-01", end_date="2024-06-30"
    )
    assert m.header("X-Dora-As-Of") == everything.body["as_of"]


@pytest.mark.parametrize("seed", seeds([7, 8]))
def test_daily_sums_agree_with_summary_over_tenants_and_channels(
    api: Api, clock: Clock, lambda_context: Any, seed: int
) -> None:
    rng = random.Random(seed)
    t = NOW - timedelta(days=40)
    for k in range(60):
        t += timedelta(minutes=rng.choice([7, 60, 400, 1300]))
        fields: dict[str, Any] = {
            "id": f"t{k}",
            "version": f"v{k}",
            "state": rng.choices(["Success", "Failed", "Canceled"], [80, 10, 10])[0],
        }
        if rng.random() < 0.5:
            fields["tenant"] = rng.choice(["acme", "globex"])
        if rng.random() < 0.3:
            fields["channel"] = "Beta"
        create_deployment(
            api, project=rng.choice(PROJECTS), environment=rng.choice(ENVIRONMENTS), finished_at=_iso(t), **fields
        )
    clock.advance(timedelta(seconds=5))
    first, last = (NOW - timedelta(days=41)).date(), NOW.date()
    for env in ENVIRONMENTS:
        for project in (None, *PROJECTS):
            q = {"start_date": first.isoformat(), "end_date": last.isoformat(), "environment": env}
            sq = {
                "from": f"{first.isoformat()}T00:00:00Z",
                "to": f"{(last + timedelta(days=1)).isoformat()}T00:00:00Z",
                "environment": env,
            }
            if project:
                q["project"] = sq["project"] = project
            daily = _metrics(api, metric="deployment_frequency", **q)
            assert daily.status == 200, daily.body
            s = _s(api, **sq)
            assert sum(r["value"] for r in daily.body) == s["deployment_frequency"]["successful_deployments"], (
                env,
                project,
            )
            assert s["pending"] == 0 and daily.header("X-Dora-Pending") == "0"


HOSTILE_NAMES = [
    "Projects-0",
    "Projects-01",
    "Environments-",
    "environments-1",
    "Environments-99999999999999999999999",
    "\x00",
    "é" * 200,
    " ",
    "Tenants-1",
    "Teams-1",
    "%",
    "shop\n",
]


@pytest.mark.parametrize("value", HOSTILE_NAMES)
def test_hostile_filter_values_never_5xx(api: Api, small: None, value: str) -> None:
    for q in ({"project": value}, {"environment": value}):
        found = _summary(api, **q)
        assert found.status < 500, (q, found.body)
        if found.status == 200:
            assert found.body["deployments"] in (0, 5, 6), (q, found.body)
    for q in ({"project": value}, {"environment": value}, {"tenant": value}, {"project_group": value}):
        found = _metrics(api, metric="deployment_frequency", **q)
        assert found.status < 500, (q, found.body)


def test_a_failure_naming_a_removed_deployment_still_counts_as_an_incident(api: Api, small: None, clock: Clock) -> None:
    """METRICS §2 rule 4: when the deployment a failure names is removed, "the failure stays: it charges no
    deployment, and still counts as an incident where incidents are counted (§4's TimeToRestore, §9)"."""
    r = api.call(
        "POST",
        FAILURES,
        key=ADMIN_KEY,
        path_params=SP,
        body={
            "id": "fx",
            "project": "shop",
            "environment": "staging",
            "deployment_id": "x",
            "started_at": "2024-06-12T11:00:00Z",
            "finished_at": "2024-06-12T13:00:00Z",
        },
    )
    assert r.status == 201, r.body
    q = {
        "metric": "time_to_restore_service",
        "interval": "all",
        "environment": "staging",
        "start_date": "2024-06-01",
        "end_date": "2024-06-30",
    }
    clock.advance(timedelta(seconds=5))
    before = _metrics(api, **q)
    assert before.status == 200 and before.body == [{"date": None, "value": 7200.0}], before.body
    d = api.call(
        "DELETE",
        "/api/{spaceId}/deployments/{deploymentId}",
        key=ADMIN_KEY,
        path_params={"spaceId": SPACE, "deploymentId": "x"},
    )
    assert d.status == 204
    clock.advance(timedelta(seconds=5))
    s = _s(api, environment="staging", **{"from": "2024-06-01T00:00:00Z", "to": "2024-07-01T00:00:00Z"})
    assert s["time_to_restore"]["count"] == 1
    after = _metrics(api, **q)
    assert after.status == 200 and after.body == [{"date": None, "value": 7200.0}], after.body


def test_a_failure_recorded_after_its_stream_was_emptied_counts_in_dora_metrics(
    api: Api, small: None, clock: Clock
) -> None:
    """METRICS §2 rule 4, §9: the stream of ``x`` (shop, staging) is emptied, then a failure of shop in
    staging is recorded; it marks that stream only, whose recompute writes the pair's failure rows."""
    d = api.call(
        "DELETE",
        "/api/{spaceId}/deployments/{deploymentId}",
        key=ADMIN_KEY,
        path_params={"spaceId": SPACE, "deploymentId": "x"},
    )
    assert d.status == 204
    clock.advance(timedelta(seconds=5))
    q = {
        "metric": "time_to_restore_service",
        "interval": "all",
        "environment": "staging",
        "start_date": "2024-06-01",
        "end_date": "2024-06-30",
    }
    emptied = _metrics(api, **q)
    assert emptied.status == 200 and emptied.body == [{"date": None, "value": None}], emptied.body
    r = api.call(
        "POST",
        FAILURES,
        key=ADMIN_KEY,
        path_params=SP,
        body={
            "id": "fy",
            "project": "shop",
            "environment": "staging",
            "started_at": "2024-06-12T11:00:00Z",
            "finished_at": "2024-06-12T12:00:00Z",
        },
    )
    assert r.status == 201, r.body
    clock.advance(timedelta(seconds=5))
    after = _metrics(api, **q)
    assert after.status == 200 and after.body == [{"date": None, "value": 3600.0}], after.body
    assert after.header("X-Dora-Pending") == "0"
    assert _s(api, environment="staging")["time_to_restore"]["count"] == 1


def test_the_read_that_empties_a_stream_marks_it_no_more(api: Api, small: None, clock: Clock, store: Any) -> None:
    """The read recomputes production (its neighbour: ``x``'s version is gone from the project's releases)
    before staging; staging, about to be emptied, is not marked again for it, so the read records every
    settled mark caught up and the next read has nothing to recompute (METRICS §8)."""
    clock.advance(timedelta(seconds=5))
    assert _s(api)["pending"] == 0
    d = api.call(
        "DELETE",
        "/api/{spaceId}/deployments/{deploymentId}",
        key=ADMIN_KEY,
        path_params={"spaceId": SPACE, "deploymentId": "x"},
    )
    assert d.status == 204
    clock.advance(timedelta(seconds=5))  # the removal's marks settle
    assert _s(api, environment="staging")["pending"] == 0
    marks = store.list_dirty_streams(SPACE)
    assert marks and all(m["caught_up"] is not None for m in marks), marks
