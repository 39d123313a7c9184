"""Space settings and the metric read routes' filters (/summary, /dora/metrics) against independent oracles
computed from the ingested history (METRICS §2, §3, §6, §9; API.md settings): a settings change then the
recompute equals a fresh space with those settings; filters by name or id (an id-shaped value is the id);
reads right after a write (the marks, the window, a read's own refresh under index lag); a window change
cut short. Found by a review; ``DORA_PROPERTY_SEEDS=a:b`` widens the properties (the review ran 7, 6, 3
and 4 seeds)."""

from __future__ import annotations

import os
import random
import statistics
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from dora_insights.domain.figures import figures_of
from dora_insights.logic.freshness import SETTLE
from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.support.gitlab_reference import reference
from tests.support.native import as_client, ok
from tests.support.recompute import scheduled_run

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
SPACE = "Spaces-1"
SETTINGS = "/api/{spaceId}/settings"
SUMMARY = "/api/{spaceId}/summary"
METRICS = "/api/{spaceId}/dora/metrics"
DEPLOYMENTS = "/api/{spaceId}/deployments"
FAILURES = "/api/{spaceId}/failures"
REPORTS = "/api/{spaceId}/insights/reports"
HISTORY_START = datetime(2024, 2, 1, tzinfo=UTC)
HISTORY_MINUTES = 28 * 24 * 60


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _tick(clock: Clock, lambda_context: Any) -> dict[str, Any]:
    clock.advance(SETTLE + timedelta(seconds=1))
    run = scheduled_run(lambda_context)
    clock.advance(timedelta(seconds=1))
    return run


def _new_space(api: Api) -> tuple[str, str]:
    created = ok(api.call("POST", "/api/spaces", body={"name": "Twin"}, key=ADMIN_KEY), 201)
    space = str(created["id"])
    key = ok(
        api.call(
            "POST",
            "/api/{spaceId}/apikeys",
            path_params={"spaceId": space},
            body={"name": "twin", "scopes": ["deployments:read", "deployments:write", "reports:read", "reports:write"]},
            key=ADMIN_KEY,
        ),
        201,
    )["key"]
    return space, str(key)


# --- random histories ----------------------------------------------------------------------------
def _history(rng: random.Random, *, tenants: bool = True, rollbacks: bool = True) -> dict[str, list[dict[str, Any]]]:
    deployments: list[dict[str, Any]] = []
    for n in range(rng.randrange(14, 26)):
        finished = HISTORY_START + timedelta(minutes=rng.randrange(HISTORY_MINUTES), seconds=rng.randrange(60))
        body: dict[str, Any] = {
            "id": f"dep-{n:04d}",
            "project": rng.choice(["shop", "cart"]),
            "environment": rng.choice(["production", "production", "staging"]),
            "finished_at": _iso(finished),
            "started_at": _iso(finished - timedelta(minutes=rng.randrange(1, 90))),
            "state": rng.choice(["Success"] * 5 + ["Failed", "TimedOut", "Canceled"]),
            "version": f"1.{rng.randrange(0, 6)}" if rollbacks else f"1.{n}",
        }
        if tenants and rng.random() < 0.2:
            body["tenant"] = "acme"
        deployments.append(body)
    failures: list[dict[str, Any]] = []
    for n in range(rng.randrange(3, 8)):
        # near a deployment most of the time, so the window decides
        anchor = datetime.fromisoformat(rng.choice(deployments)["finished_at"])
        started = anchor + timedelta(minutes=rng.randrange(1, 72 * 60), seconds=rng.randrange(60))
        body = {
            "id": f"fail-{n:04d}",
            "project": rng.choice(["shop", "cart"]),
            "environment": rng.choice(["production", "staging"]),
            "started_at": _iso(started),
        }
        if rng.random() < 0.8:
            body["finished_at"] = _iso(started + timedelta(minutes=rng.randrange(5, 3000)))
        failures.append(body)
    return {"deployments": deployments, "failures": failures}


def _ingest(api: Api, history: dict[str, list[dict[str, Any]]], *, space: str = SPACE, key: str = ADMIN_KEY) -> None:
    for body in history["deployments"]:
        ok(as_client(api, "POST", DEPLOYMENTS, space=space, key=key, body=body), 201)
    for body in history["failures"]:
        ok(as_client(api, "POST", FAILURES, space=space, key=key, body=body), 201)


def _patch(api: Api, body: dict[str, Any], *, space: str = SPACE, headers: dict[str, str] | None = None) -> HttpResult:
    return as_client(api, "PATCH", SETTINGS, space=space, body=body, headers=headers)


def _summary(api: Api, *, space: str = SPACE, key: str = ADMIN_KEY, **query: str) -> HttpResult:
    return as_client(api, "GET", SUMMARY, space=space, key=key, query=query)


def _metrics(api: Api, *, space: str = SPACE, key: str = ADMIN_KEY, **query: str) -> HttpResult:
    return as_client(api, "GET", METRICS, space=space, key=key, query=query)


def _created(api: Api, body: dict[str, Any], route: str = DEPLOYMENTS) -> dict[str, Any]:
    """A native deployment (or ``route``'s item) posted in Spaces-1 (201)."""
    return ok(as_client(api, "POST", route, body=body), 201)


def _figures(api: Api, deployment_id: str, *, space: str = SPACE, key: str = ADMIN_KEY) -> dict[str, Any]:
    found = ok(
        as_client(
            api, "GET", DEPLOYMENTS + "/{deploymentId}", space=space, key=key, path={"deploymentId": deployment_id}
        )
    )
    return dict(found["figures"] or {})


NUMBERS = ("as_of", "pending")


def _numbers(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in NUMBERS}


WINDOWS = [0.5, 1, 6, 12, 36, 48, 72, 200]

_WIDER = os.environ.get("DORA_PROPERTY_SEEDS")  # ``a:b`` runs seeds a..b-1 instead of the suite's few


def _seeds(*default: int) -> tuple[int, ...]:
    return tuple(range(*map(int, _WIDER.split(":")))) if _WIDER else default


@pytest.mark.parametrize("seed", _seeds(1, 2, 3))
def test_settings_change_then_recompute_equals_a_fresh_space_with_those_settings(
    api: Api, clock: Clock, lambda_context: Any, seed: int
) -> None:
    """Property: a space whose failure window (and summary settings) changed after its history, once
    the scheduled recompute ran, answers exactly what a fresh space created with the new settings and
    the same history answers (per-deployment figures, /summary, /dora/metrics)."""
    rng = random.Random(seed)
    history = _history(rng)
    _ingest(api, history)
    _tick(clock, lambda_context)
    report = ok(as_client(api, "POST", REPORTS, body={"Name": "All"}), 201)["Id"]
    report_query = {"timeRange": "LastQuarter", "granularity": "Weekly", "split": "Environment"}
    ok(as_client(api, "GET", REPORTS + "/{reportId}/metrics", path={"reportId": report}, query=report_query))
    # one or two changes of the window, the last one decides
    final: dict[str, Any] = {}
    for _ in range(rng.randrange(1, 3)):
        change: dict[str, Any] = {"failure_window_hours": rng.choice(WINDOWS)}
        if rng.random() < 0.5:
            change["production_environments"] = rng.sample(["production", "staging"], rng.randrange(0, 3))
        if rng.random() < 0.3:
            change["default_benchmark"] = rng.choice(["2021", "2023", "2024"])
        ok(_patch(api, change))
        final.update(change)
        _tick(clock, lambda_context)

    twin, twin_key = _new_space(api)
    ok(_patch(api, {"failure_window_hours": final["failure_window_hours"]}, space=twin))
    _ingest(api, history, space=twin, key=twin_key)
    twin_report = ok(as_client(api, "POST", REPORTS, space=twin, key=twin_key, body={"Name": "All"}), 201)["Id"]
    rest = {k: v for k, v in final.items() if k != "failure_window_hours"}
    if rest:
        ok(_patch(api, rest, space=twin))
    _tick(clock, lambda_context)

    mine, theirs = ok(as_client(api, "GET", SETTINGS)), ok(as_client(api, "GET", SETTINGS, space=twin))
    for field in ("failure_window_hours", "default_benchmark", "production_environments", "default_environment"):
        assert mine[field] == theirs[field], field

    for body in history["deployments"]:
        assert _figures(api, body["id"]) == _figures(api, body["id"], space=twin, key=twin_key), body

    mine_report = ok(
        as_client(api, "GET", REPORTS + "/{reportId}/metrics", path={"reportId": report}, query=report_query)
    )
    their_report = ok(
        as_client(
            api,
            "GET",
            REPORTS + "/{reportId}/metrics",
            space=twin,
            key=twin_key,
            path={"reportId": twin_report},
            query=report_query,
        )
    )
    assert mine_report == their_report

    window = {"from": "2024-01-15T00:00:00Z", "to": "2024-03-05T00:00:00Z"}
    a, b = ok(_summary(api, **window)), ok(_summary(api, space=twin, key=twin_key, **window))
    assert _numbers(a) == _numbers(b)
    assert (a["pending"], b["pending"]) == (0, 0)
    for environment in ("production", "staging"):
        assert _numbers(ok(_summary(api, environment=environment, **window))) == _numbers(
            ok(_summary(api, space=twin, key=twin_key, environment=environment, **window))
        )
    for metric in (
        "deployment_frequency",
        "lead_time_for_changes",
        "time_to_restore_service",
        "change_failure_rate",
        "rework_rate",
    ):
        for interval in ("daily", "monthly", "all"):
            query = {
                "metric": metric,
                "interval": interval,
                "start_date": "2024-01-20",
                "end_date": "2024-03-08",
                "environment_tiers": "production,staging,other",
            }
            assert ok(_metrics(api, **query)) == ok(_metrics(api, space=twin, key=twin_key, **query)), query


# --- /summary against an independent oracle --------------------------------------------------------
def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _projects_of(failure: dict[str, Any]) -> set[str]:
    return {p.casefold() for p in failure.get("projects") or [failure["project"]]}


def _oracle(
    history: dict[str, list[dict[str, Any]]],
    window_hours: float,
    start: datetime,
    end: datetime,
    projects: set[str],
    environments: set[str],
) -> dict[str, Any]:
    """METRICS §2/§3/§6 for histories with a version per deployment (no rollback), no tenant."""
    streams: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for d in history["deployments"]:
        if d["state"] in ("Success", "Failed", "TimedOut"):  # Canceled, Executing, Queued: no metric
            key = (d["project"], d["environment"], d.get("tenant", ""), d.get("channel", "Default"))
            streams.setdefault(key, []).append(d)
    rows: list[dict[str, Any]] = []
    window = timedelta(hours=window_hours)
    for (project, environment, _tenant, _channel), deps in streams.items():
        deps.sort(key=lambda d: (_parse(d["finished_at"]), _parse(d["started_at"]), d["id"]))
        good = [d["state"] == "Success" and not d.get("had_guided_failure") for d in deps]
        failed = [not g for g in good]
        cf = list(failed)
        for f in history["failures"]:
            if project not in _projects_of(f) or f["environment"] != environment:
                continue
            started = _parse(f["started_at"])
            latest = None
            for i, d in enumerate(deps):
                if good[i] and _parse(d["finished_at"]) <= started:
                    latest = i
            if latest is not None and started <= _parse(deps[latest]["finished_at"]) + window:
                cf[latest] = True
        prev_success: int | None = None
        for i, d in enumerate(deps):
            row = {
                "completed": _parse(d["finished_at"]),
                "successful": good[i],
                "change_failure": cf[i],
                "rework": False,
                "recovery": None,
                "project": project,
                "environment": environment,
            }
            if good[i]:
                since = range(prev_success if prev_success is not None else 0, i)
                row["rework"] = any(cf[j] for j in since)
                if i > 0 and failed[i - 1]:
                    k = i - 1
                    while k > 0 and failed[k - 1]:
                        k -= 1
                    row["recovery"] = (row["completed"] - _parse(deps[k]["finished_at"])).total_seconds()
                prev_success = i
            rows.append(row)
    chosen = [
        r
        for r in rows
        if r["project"] in projects and r["environment"] in environments and start <= r["completed"] < end
    ]
    successful = [r for r in chosen if r["successful"]]
    recoveries = sorted(r["recovery"] for r in successful if r["recovery"] is not None)
    restores = sorted(
        (_parse(f["finished_at"]) - _parse(f["started_at"])).total_seconds()
        for f in history["failures"]
        if "finished_at" in f
        and projects & _projects_of(f)
        and f["environment"] in environments
        and start <= _parse(f["started_at"]) < end
    )
    days = {r["completed"].date() for r in successful}
    first, last = start.astimezone(UTC).date(), (end - timedelta(microseconds=1)).astimezone(UTC).date()
    weeks: dict[date, int] = {}
    months: dict[date, int] = {}
    day = first
    while day <= last:
        weeks.setdefault(day - timedelta(days=(day.weekday() + 1) % 7), 0)
        months.setdefault(day.replace(day=1), 0)
        day += timedelta(days=1)
    for day in days:
        weeks[day - timedelta(days=(day.weekday() + 1) % 7)] += 1
        months[day.replace(day=1)] += 1
    tier = None
    if successful:
        week_median, month_median = statistics.median(weeks.values()), statistics.median(months.values())
        tier = "Elite" if week_median >= 5 else "High" if week_median >= 1 else "Medium" if month_median >= 1 else "Low"
    return {
        "frequency_tier": tier,
        "deployments": len(chosen),
        "successful_deployments": len(successful),
        "deployment_days": len({r["completed"].date() for r in successful}),
        "per_day": round(len(successful) / max(1.0, (end - start) / timedelta(days=1)), 5),
        "change_failures": sum(1 for r in chosen if r["change_failure"]),
        "rework_deployments": sum(1 for r in chosen if r["rework"]),
        "recovery_count": len(recoveries),
        "recovery_median": statistics.median(recoveries) if recoveries else None,
        "restore_count": len(restores),
        "restore_median": statistics.median(restores) if restores else None,
        "lead_count": len(successful),
    }


def _observed(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "frequency_tier": body["deployment_frequency"]["tier"],
        "deployments": body["deployments"],
        "successful_deployments": body["deployment_frequency"]["successful_deployments"],
        "deployment_days": body["deployment_frequency"]["deployment_days"],
        "per_day": body["deployment_frequency"]["per_day"],
        "change_failures": body["change_failure_rate"]["change_failures"],
        "rework_deployments": body["rework_rate"]["rework_deployments"],
        "recovery_count": body["recovery_time"]["count"],
        "recovery_median": body["recovery_time"]["median_seconds"],
        "restore_count": body["time_to_restore"]["count"],
        "restore_median": body["time_to_restore"]["median_seconds"],
        "lead_count": body["lead_time"]["count"],
    }


def _spellings(rng: random.Random, name: str, entity_id: str) -> str:
    return rng.choice([name, name.upper(), name.title(), entity_id])


@pytest.mark.parametrize("streams", ["one per project and environment", "tenants and channels"])
@pytest.mark.parametrize("seed", _seeds(11, 12))
def test_summary_filters_and_range_bounds_equal_the_oracle(
    api: Api, clock: Clock, lambda_context: Any, seed: int, streams: str
) -> None:
    """Property: /summary over random ranges (bounds on deployment instants: from included, to
    excluded, any offset spelling) and filters (name any case, or id) equals the oracle (rule 5 charges
    each stream's latest success within the window, METRICS §2)."""
    rng = random.Random(seed)
    history = _history(rng, tenants=streams != "one per project and environment", rollbacks=False)
    for body in history["deployments"]:
        if body["state"] == "Success" and rng.random() < 0.1:
            body["had_guided_failure"] = True
        elif rng.random() < 0.05:
            body["state"] = rng.choice(["Executing", "Queued"])
    if streams != "one per project and environment":
        for body in history["deployments"]:
            if rng.random() < 0.25:
                body["channel"] = "Hotfix"
        for body in history["failures"]:
            if rng.random() < 0.5:
                del body["project"]
                body["projects"] = ["SHOP", "cart"]
    _ingest(api, history)
    window_hours = rng.choice([24.0, 6.0, 48.0])
    if window_hours != 24.0:
        ok(_patch(api, {"failure_window_hours": window_hours}))
    _tick(clock, lambda_context)
    ids: dict[str, str] = {}
    for body in history["deployments"]:
        found = ok(as_client(api, "GET", DEPLOYMENTS + "/{deploymentId}", path={"deploymentId": body["id"]}))
        ids[found["project"]] = found["project_id"]
        ids[found["environment"]] = found["environment_id"]
    instants = sorted(_parse(d["finished_at"]) for d in history["deployments"])
    for _ in range(6):
        a, b = sorted(rng.sample(instants, 2))
        if a == b:
            continue
        offset = rng.choice([timedelta(0), timedelta(hours=5, minutes=30), timedelta(hours=-8)])
        zone = rng.choice(["Z", "+00:00"]) if not offset else None

        def spell(moment: datetime, zone: str | None = zone, offset: timedelta = offset) -> str:
            if zone:
                return moment.astimezone(UTC).isoformat().replace("+00:00", zone)
            from datetime import timezone

            return moment.astimezone(timezone(offset)).isoformat()

        query = {"from": spell(a), "to": spell(b)}
        projects, environments = {"shop", "cart"}, {"production", "staging"}
        if rng.random() < 0.5 and "shop" in ids:
            pick = rng.choice([p for p in ("shop", "cart") if p in ids])
            query["project"] = _spellings(rng, pick, ids[pick])
            projects = {pick}
        if rng.random() < 0.6:
            pick = rng.choice([e for e in ("production", "staging") if e in ids])
            query["environment"] = _spellings(rng, pick, ids[pick])
            environments = {pick}
        body = ok(_summary(api, **query))
        expected = _oracle(history, window_hours, a, b, projects, environments)
        assert _observed(body) == expected, (query, body)
        assert body["from"] == _iso(a) and body["to"] == _iso(b)
        assert body["pending"] == 0


# --- /dora/metrics filters against GitLab's reference ------------------------------------------------
TIER_CHOICES = [(), ("production",), ("staging",), ("production", "staging"), ("other",), ("testing", "development")]


@pytest.mark.parametrize("seed", _seeds(21, 22))
def test_dora_metrics_filters_equal_the_reference(
    api: Api, clock: Clock, store: Any, lambda_context: Any, seed: int
) -> None:
    """Property: /dora/metrics with project / environment / tenant / environment_tiers filters (names in
    any case, or ids; tiers repeated or comma-separated) equals GitLab's reference over the streams the
    filters select (METRICS §9)."""
    rng = random.Random(seed)
    history = _history(rng)
    for body in history["deployments"]:  # environments of every tier
        body["environment"] = rng.choice(["production", "staging", "qa-eu", "dev", "main-site"])
    for body in history["failures"]:
        body["environment"] = rng.choice(["production", "staging", "qa-eu"])
        if rng.random() < 0.4:  # an event naming two projects is two incidents (METRICS §9)
            del body["project"]
            body["projects"] = ["shop", "CART"]
        if rng.random() < 0.2:  # no environment: the space's default (production)
            del body["environment"]
    _ingest(api, history)
    if rng.random() < 0.5:
        ok(_patch(api, {"production_environments": ["main-site"]}))
    production_ids = set(ok(as_client(api, "GET", SETTINGS))["production_environments"])
    _tick(clock, lambda_context)
    data = store.metrics()
    registered = data.streams(SPACE)
    records = data.space_figures(SPACE, registered)
    failures = data.space_failures(SPACE)
    from dora_insights.domain.rollups import guess_tier

    def tier(name: str) -> str:
        if production_ids:
            if name in production_ids:
                return "production"
            guessed = guess_tier(name)
            return "other" if guessed == "production" else guessed
        return guess_tier(name)

    for _ in range(8):
        query: dict[str, str] = {
            "metric": rng.choice(
                [
                    "deployment_frequency",
                    "lead_time_for_changes",
                    "time_to_restore_service",
                    "change_failure_rate",
                    "rework_rate",
                ]
            ),
            "interval": rng.choice(["daily", "monthly", "all"]),
            "start_date": "2024-01-25",
            "end_date": rng.choice(["2024-02-29", "2024-03-09"]),
        }
        tiers = rng.choice(TIER_CHOICES)
        if tiers:
            query[rng.choice(["environment_tiers", "environment_tier", "environment_tiers[]"])] = ",".join(tiers)
        project = environment = tenant = None
        if rng.random() < 0.4:
            project = rng.choice(["shop", "cart"])
            query["project"] = rng.choice([project, project.upper()])
        if rng.random() < 0.4:
            environment = rng.choice(["production", "staging", "qa-eu", "dev", "main-site"])
            query["environment"] = rng.choice([environment, environment.upper()])
        if rng.random() < 0.3:
            tenant = "acme"
            query["tenant"] = "ACME"
        wanted_tiers = set(tiers) or (set() if environment else {"production"})
        chosen = {}
        for key, r in registered.items():
            dims = r["dims"]
            if project and dims["project"] != project:
                continue
            if environment and dims["environment"] != environment:
                continue
            if tenant and dims.get("tenant") != tenant:
                continue
            if wanted_tiers and tier(dims["environment"]) not in wanted_tiers:
                continue
            chosen[key] = (dims["project_id"], dims["environment_id"], [figures_of(x) for x in records[key]])
        start, end = date.fromisoformat(query["start_date"]), date.fromisoformat(query["end_date"])
        expected = reference(query["metric"], query["interval"], start, end, chosen, failures)
        found = ok(_metrics(api, **query))
        assert [r["date"] for r in found] == [d for d, _ in expected]
        for row, (_, value) in zip(found, expected, strict=True):
            assert (row["value"] is None) == (value is None), (query, row, value)
            if value is not None:
                assert row["value"] == pytest.approx(value, rel=1e-9, abs=1e-9), (query, row, value)


# --- filters naming an id-shaped name --------------------------------------------------------------
def test_summary_project_filter_by_id_counts_one_project_as_the_list_does(api: Api, clock: Clock) -> None:
    """A project whose *name* looks like another project's id: the native list resolves the filter to one
    entity (an id-shaped value is the id, catalogue.filter_id), settings say "an id wins over a name that
    looks like one"; /summary must count the same single project, not both."""
    first = ok(
        as_client(
            api,
            "POST",
            DEPLOYMENTS,
            body={"project": "shop", "environment": "production", "finished_at": "2024-03-01T10:00:00Z"},
        ),
        201,
    )
    assert first["project_id"] == "Projects-1"
    _created(api, {"project": "Projects-1", "environment": "production", "finished_at": "2024-03-01T11:00:00Z"})
    listed = ok(as_client(api, "GET", DEPLOYMENTS, query={"project": "Projects-1"}))["items"]
    assert [d["project"] for d in listed] == ["shop"]
    found = ok(_summary(api, **{"from": "2024-02-01T00:00:00Z", "to": "2024-03-05T00:00:00Z", "project": "Projects-1"}))
    assert found["deployments"] == len(listed)


def test_dora_metrics_project_filter_by_id_counts_one_project(api: Api, clock: Clock) -> None:
    """The same ambiguity through /dora/metrics: project=Projects-1 names one project (an id)."""
    _created(api, {"project": "shop", "environment": "production", "finished_at": "2024-03-01T10:00:00Z"})
    _created(api, {"project": "Projects-1", "environment": "production", "finished_at": "2024-03-01T11:00:00Z"})
    found = ok(
        _metrics(
            api, metric="deployment_frequency", start_date="2024-03-01", end_date="2024-03-02", project="Projects-1"
        )
    )
    assert [r["value"] for r in found] == [1, 0]


def test_summary_environment_filter_by_id_counts_one_environment(api: Api, clock: Clock) -> None:
    _created(api, {"project": "shop", "environment": "production", "finished_at": "2024-03-01T10:00:00Z"})
    _created(api, {"project": "shop", "environment": "Environments-1", "finished_at": "2024-03-01T11:00:00Z"})
    found = ok(
        _summary(api, **{"from": "2024-02-01T00:00:00Z", "to": "2024-03-05T00:00:00Z", "environment": "Environments-1"})
    )
    assert found["deployments"] == 1


# --- settings read right after a change ----------------------------------------------------------
def _window_history(api: Api, clock: Clock) -> dict[str, str]:
    """A deployment, and a failure naming no cause 30 h after it (outside 24 h, inside 48 h)."""
    _created(api, {"project": "shop", "environment": "production", "finished_at": "2024-03-04T00:00:00Z"})
    _created(
        api,
        {
            "project": "shop",
            "environment": "production",
            "started_at": "2024-03-05T06:00:00Z",
            "finished_at": "2024-03-05T07:00:00Z",
        },
        FAILURES,
    )
    clock.advance(timedelta(seconds=5))
    return {"from": "2024-03-01T00:00:00Z", "to": "2024-03-08T00:00:00Z"}


class _OnlyThese(set):  # type: ignore[type-arg]
    """A replica-lag set that no later write joins: only what it holds lags."""

    def update(self, *_: Any) -> None:
        return None


def test_a_summary_right_after_a_window_change_sees_the_marks(api: Api, clock: Clock, replica_lag: Any) -> None:
    """API.md settings: "A change marks every stream of the space dirty, so ... a read's refresh ... counts
    change failures by the new window"; METRICS §8: pending 0 means the answer is current. The marks are
    listed with an eventually consistent Query (store.list_dirty_streams), so a /summary within the replica
    lag of the PATCH sees no mark: old-window figures answered with pending 0."""
    window = _window_history(api, clock)
    assert ok(_summary(api, **window))["change_failure_rate"]["change_failures"] == 0
    replica_lag.on()
    ok(_patch(api, {"failure_window_hours": 48}))
    found = ok(_summary(api, **window))
    assert (found["change_failure_rate"]["change_failures"], found["pending"]) != (0, 0), replica_lag.hidden


def test_a_summary_refresh_right_after_a_window_change_uses_the_new_window(
    api: Api, clock: Clock, replica_lag: Any
) -> None:
    """Only the space item lags (the marks are seen): the read's refresh recomputes the marked stream but
    reads the window with an eventually consistent GetItem (freshness._catch_up: store.get_space(space_id)),
    so it computes with the old window and answers pending 0 (the mark is younger than SETTLE: processed)."""
    window = _window_history(api, clock)
    assert ok(_summary(api, **window))["change_failure_rate"]["change_failures"] == 0
    replica_lag.on()
    ok(_patch(api, {"failure_window_hours": 48}))
    replica_lag.fresh = _OnlyThese(k for k in replica_lag.fresh if k[0].endswith("#SPACE"))  # only the space lags
    found = ok(_summary(api, **window))
    assert (found["change_failure_rate"]["change_failures"], found["pending"]) != (0, 0), replica_lag.hidden


def test_a_scheduled_run_right_after_a_window_change_uses_the_new_window(
    api: Api, clock: Clock, lambda_context: Any, replica_lag: Any
) -> None:
    """The recompute reads the window eventually consistently (recompute.py); a tick right after the
    change must not compute old-window figures and vouch for them."""
    window = _window_history(api, clock)
    _tick(clock, lambda_context)
    replica_lag.on()
    ok(_patch(api, {"failure_window_hours": 48}))
    scheduled_run(lambda_context)  # at once: the replica may still hold the old window
    replica_lag.settle()
    replica_lag.active = False
    clock.advance(timedelta(minutes=5))
    run_summary = ok(_summary(api, **window))
    assert run_summary["change_failure_rate"]["change_failures"] == 1, run_summary


# --- hostile query strings -------------------------------------------------------------------------
@pytest.fixture
def small_history(api: Api, clock: Clock) -> None:
    for n, (project, environment, finished, state) in enumerate(
        [
            ("shop", "production", "2024-03-01T10:00:00Z", "Success"),
            ("shop", "production", "2024-03-02T10:00:00Z", "Failed"),
            ("shop", "production", "2024-03-03T10:00:00Z", "Success"),
            ("cart", "staging", "2024-03-03T11:00:00Z", "Success"),
        ]
    ):
        _created(
            api,
            {
                "project": project,
                "environment": environment,
                "finished_at": finished,
                "state": state,
                "version": f"1.{n}",
            },
        )


@pytest.mark.parametrize(
    "query",
    [
        {"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z"},
        {"from": "0001-01-01T00:00:00+14:00"},
        {"to": "9999-12-31T23:59:59.999999-12:00"},
        {"from": "9" * 60},
        {"from": "1e400"},
        {"from": "-1"},
        {"from": "0.5", "to": "1"},
        {"from": "NaN"},
        {"from": "inf"},
        {"from": "２０２４-03-01T00:00:00Z"},
        {"from": "2024-03-01T00:00:00Z\x00"},
        {"from": "2024-03-01T00:00:00Z", "to": "2024-03-01T00:00:00Z"},
        {"from": "2024-03-02T00:00:00Z", "to": "2024-03-01T00:00:00Z"},
        {"from": "2024-03-01"},
        {"project": "shop,cart"},
        {"project": "ß" * 200},
        {"project": "\U0001f680" * 50},
        {"environment": "production\u0000"},
        {"benchmark": "2023,2024"},
        {"benchmark": ""},
        {"benchmark": "２０２３"},
        {"project": ""},
        {"environment": "   "},
    ],
)
def test_summary_hostile_queries_are_200_or_400_never_5xx(api: Api, small_history: None, query: dict[str, str]) -> None:
    import time

    began = time.monotonic()
    found = _summary(api, **query)
    took = time.monotonic() - began
    assert found.status in (200, 400), (query, found.status, found.body)
    if found.status == 400:
        assert set(found.body) == {"message", "errors"}, found.body
    assert took < 8, f"{query}: {took:.1f}s (the function's Timeout is 10 s)"


@pytest.mark.parametrize(
    "query",
    [
        {"start_date": "0001-01-01", "end_date": "0001-12-31"},
        {"start_date": "9999-01-01", "end_date": "9999-12-31", "interval": "monthly"},
        {"start_date": "2024-03-01", "end_date": "2025-03-01"},  # 365 days apart
        {"start_date": "2024-01-01", "end_date": "2025-01-01"},  # 366 days apart (leap year)
        {"start_date": "2024-W09-5", "end_date": "2024-03-03"},
        {"start_date": "20240301", "end_date": "20240303"},
        {"start_date": "2024-03-01T00:00:00Z"},
        {"start_date": "２０２４-03-01"},
        {"start_date": "2024-02-30"},
        {"interval": "DAILY"},
        {"interval": "daily,monthly"},
        {"environment_tiers[]": "production,production,staging"},
        {"environment_tiers[]": ",,,"},
        {"environment_tiers": "Production"},
        {"environment_tiers[]": "production", "environment_tiers": "staging", "environment_tier": "other"},
        {"project": "ß" * 200},
        {"project": "x" * 201},
        {"tenant": "\U0001f680"},
        {"project_group": "nobody"},
        {"environment": "production\u0000"},
        {"environment_tiers[]": "production," * 3000},
        {"environment_tiers": "x" * 5000},
        {"metric": "deployment_frequency\u0000"},
    ],
)
def test_dora_metrics_hostile_queries_are_200_or_400_never_5xx(
    api: Api, small_history: None, query: dict[str, str]
) -> None:
    found = _metrics(api, **{"metric": "deployment_frequency", **query})
    assert found.status in (200, 400), (query, found.status, found.body)
    if found.status == 400:
        assert set(found.body) == {"message"}, found.body


def test_dora_metrics_repeated_tiers_count_each_stream_once(api: Api, small_history: None) -> None:
    """environment_tiers given in all three spellings, with repeats, selects the union, once each."""
    base = {"metric": "deployment_frequency", "start_date": "2024-03-01", "end_date": "2024-03-03"}
    once = ok(_metrics(api, **base, environment_tiers="production,staging"))
    many = ok(
        _metrics(
            api,
            **base,
            **{
                "environment_tiers[]": "production,staging,production",
                "environment_tiers": "staging",
                "environment_tier": "production",
            },
        )
    )
    assert [r["value"] for r in many] == [r["value"] for r in once] == [1, 0, 2]


def test_summary_default_range_is_the_90_days_before_now(api: Api, clock: Clock, small_history: None) -> None:
    found = ok(_summary(api))
    assert (found["from"], found["to"]) == (_iso(NOW - timedelta(days=90)), _iso(NOW))
    assert found["deployments"] == 4


def test_summary_to_only_defaults_from_to_90_days_before_to(api: Api, small_history: None) -> None:
    found = ok(_summary(api, to="2024-03-02T10:00:00Z"))
    assert found["from"] == "2023-12-03T10:00:00Z"
    assert found["deployments"] == 1  # to excluded: the Failed one at exactly 10:00 is out


def test_summary_from_in_the_future_of_to_default_is_400(api: Api, clock: Clock, small_history: None) -> None:
    found = _summary(api, **{"from": "2030-01-01T00:00:00Z"})
    assert found.status == 400, found.body


def test_summary_ranges_in_other_offsets_equal_the_utc_range(api: Api, small_history: None) -> None:
    """The same instants spelled with offsets across a DST change give the same answer."""
    utc = ok(_summary(api, **{"from": "2024-03-01T10:00:00Z", "to": "2024-03-03T10:00:00Z"}))
    other = ok(_summary(api, **{"from": "2024-03-01T05:00:00-05:00", "to": "2024-03-03T11:00:00+01:00"}))
    assert _numbers(utc) == _numbers(other)
    assert utc["deployments"] == 2  # from included (03-01 10:00), to excluded (03-03 10:00)


# --- settings edges ----------------------------------------------------------------------------------
@pytest.mark.parametrize("hours", [0.1, 720, 719.9999999999999, 33.333333333333336, 1e-1 * 3, 24.000000000000004])
def test_any_window_in_range_is_stored_and_answered_exactly(api: Api, small_history: None, hours: float) -> None:
    changed = ok(_patch(api, {"failure_window_hours": hours}))
    assert changed["failure_window_hours"] == hours
    assert ok(as_client(api, "GET", SETTINGS))["failure_window_hours"] == hours


@pytest.mark.parametrize("hours", [0.09999999999999999, 720.0000000000001, 1e309, -0.0])
def test_a_window_just_out_of_range_is_400(api: Api, small_history: None, hours: float) -> None:
    found = as_client(api, "PATCH", SETTINGS, raw_body=f'{{"failure_window_hours": {hours!r}}}')
    assert found.status == 400, found.body
    assert ok(as_client(api, "GET", SETTINGS))["revision"] == 0


@pytest.mark.parametrize(
    "raw",
    [
        '{"failure_window_hours": NaN}',
        '{"failure_window_hours": Infinity}',
        '{"failure_window_hours": 1e400}',
        '{"revision": 1e400}',
        '{"revision": 9007199254740993}',
        '{"revision": "0"}',
        '{"revision": 0.0}',
        '{"production_environments": [null]}',
        '{"default_environment": 5}',
        '{"default_benchmark": 2023}',
        '{"production_environments": {"a": 1}}',
    ],
)
def test_malformed_settings_bodies_are_400(api: Api, small_history: None, raw: str) -> None:
    found = as_client(api, "PATCH", SETTINGS, raw_body=raw)
    assert found.status == 400, (raw, found.status, found.body)
    assert set(found.body) == {"message", "errors"}
    assert ok(as_client(api, "GET", SETTINGS))["revision"] == 0


def test_production_environments_deduplicate_names_and_ids(api: Api, small_history: None) -> None:
    production_id = ok(as_client(api, "GET", DEPLOYMENTS, query={"environment": "production"}))["items"][0][
        "environment_id"
    ]
    changed = ok(_patch(api, {"production_environments": ["production", "PRODUCTION", production_id, "Staging"]}))
    assert changed["production_environments"] == ["production", "staging"]
    assert changed["revision"] == 1
    again = ok(_patch(api, {"production_environments": ["staging", "production"]}))
    # the same set in another order: a list the API answers in its own order; no change or one change, but
    # never an error
    assert sorted(again["production_environments"]) == ["production", "staging"]


def test_at_most_100_production_environments(api: Api, small_history: None) -> None:
    assert ok(_patch(api, {"production_environments": ["production"] * 100}))["production_environments"] == [
        "production"
    ]
    too_many = _patch(api, {"production_environments": ["production"] * 101})
    assert too_many.status == 400, too_many.body


def test_if_match_digits_limit(api: Api, small_history: None) -> None:
    assert _patch(api, {"default_benchmark": "2024"}, headers={"If-Match": '"' + "9" * 16 + '"'}).status == 412
    assert _patch(api, {"default_benchmark": "2024"}, headers={"If-Match": '"' + "0" * 17 + '"'}).status == 400
    assert _patch(api, {"default_benchmark": "2024"}, headers={"If-Match": '"²"'}).status == 400
    assert ok(as_client(api, "GET", SETTINGS))["revision"] == 0


def test_a_stale_revision_is_412_even_when_the_patch_changes_nothing(api: Api, small_history: None) -> None:
    ok(_patch(api, {"default_benchmark": "2024"}))
    stale = _patch(api, {"revision": 0, "default_benchmark": "2024"})
    assert stale.status == 412, stale.body
    current = _patch(api, {"revision": 1, "default_benchmark": "2024"})
    assert (current.status, current.body["revision"]) == (200, 1)


def test_default_environment_by_id_answers_the_catalogue_name_and_scopes_the_summary(
    api: Api, small_history: None
) -> None:
    staging_id = ok(as_client(api, "GET", DEPLOYMENTS, query={"environment": "staging"}))["items"][0]["environment_id"]
    changed = ok(_patch(api, {"default_environment": staging_id}))
    assert changed["default_environment"] == "staging"
    found = ok(_summary(api, **{"from": "2024-02-01T00:00:00Z", "to": "2024-03-05T00:00:00Z"}))
    assert found["environment_scope"] == {"source": "default_environment", "environments": ["staging"]}
    assert found["deployments"] == 1
    # the default environment changes nothing of /dora/metrics (its tiers)
    rows = ok(_metrics(api, metric="deployment_frequency", start_date="2024-03-01", end_date="2024-03-03"))
    assert [r["value"] for r in rows] == [1, 0, 1]


def test_updated_by_is_the_keys_user_else_its_name(api: Api, small_history: None) -> None:
    created = ok(
        api.call(
            "POST",
            "/api/{spaceId}/apikeys",
            path_params={"spaceId": SPACE},
            body={"name": "ops key", "user": "ana@example.com", "scopes": ["admin"]},
            key=ADMIN_KEY,
        ),
        201,
    )
    changed = ok(as_client(api, "PATCH", SETTINGS, key=created["key"], body={"default_benchmark": "2021"}))
    assert changed["updated_by"] == "ana@example.com"


def test_settings_of_a_new_space_need_no_environment_until_one_is_named(api: Api, clock: Clock) -> None:
    twin, _ = _new_space(api)
    assert ok(_patch(api, {"failure_window_hours": 12, "default_benchmark": "2024"}, space=twin))["revision"] == 1
    refused = _patch(api, {"production_environments": ["production"]}, space=twin)
    assert refused.status == 400 and "none is known yet" in refused.body["message"], refused.body


def test_dora_metrics_project_group_filter_by_name_or_id(api: Api, clock: Clock) -> None:
    for n, (project, team, finished) in enumerate(
        [
            ("shop", "web", "2024-03-01T10:00:00Z"),
            ("cart", "mobile", "2024-03-01T11:00:00Z"),
            ("cart", "mobile", "2024-03-02T11:00:00Z"),
        ]
    ):
        created = ok(
            as_client(
                api,
                "POST",
                DEPLOYMENTS,
                body={
                    "project": project,
                    "environment": "production",
                    "finished_at": finished,
                    "team": team,
                    "version": f"1.{n}",
                },
            ),
            201,
        )
        if team == "mobile":
            mobile_id = created["project_group_id"]
    base = {"metric": "deployment_frequency", "start_date": "2024-03-01", "end_date": "2024-03-02"}
    assert [r["value"] for r in ok(_metrics(api, **base, project_group="WEB"))] == [1, 0]
    assert [r["value"] for r in ok(_metrics(api, **base, project_group=mobile_id))] == [1, 1]
    assert [r["value"] for r in ok(_metrics(api, **base, project_group="nobody"))] == [0, 0]


# --- catalogue -------------------------------------------------------------------------------------
def test_catalogue_names_keep_the_first_spelling_ids_are_numeric_order(api: Api, clock: Clock) -> None:
    rng = random.Random(5)
    names = [f"svc-{n}" for n in range(12)]
    for n, name in enumerate(names):
        for spelling in (name, name.upper(), name.title()):
            _created(
                api,
                {
                    "project": spelling,
                    "environment": rng.choice(["Prod", "PROD", "prod"]),
                    "finished_at": f"2024-03-01T{n:02d}:00:00Z",
                },
            )
    listed = ok(as_client(api, "GET", "/api/{spaceId}/projects", query={"take": "100"}))
    assert [i["Name"] for i in listed["Items"]] == names
    assert [i["Id"] for i in listed["Items"]] == [f"Projects-{n}" for n in range(1, 13)]
    assert listed["TotalResults"] == 12
    page = ok(as_client(api, "GET", "/api/{spaceId}/projects", query={"skip": "10", "take": "5"}))
    assert [i["Id"] for i in page["Items"]] == ["Projects-11", "Projects-12"]
    environments = ok(as_client(api, "GET", "/api/{spaceId}/environments"))
    assert len(environments["Items"]) == 1
    found = ok(
        _summary(
            api,
            **{"from": "2024-02-01T00:00:00Z", "to": "2024-03-05T00:00:00Z", "project": "SVC-3", "environment": "pRoD"},
        )
    )
    assert found["deployments"] == 3


def test_catalogue_of_another_space_is_404(api: Api, clock: Clock) -> None:
    twin, _ = _new_space(api)
    found = as_client(api, "GET", "/api/{spaceId}/projects", space=twin, key=ADMIN_KEY)
    assert found.status == 404, found.body


def test_summary_and_metrics_of_another_space_are_404(api: Api, clock: Clock) -> None:
    _twin, twin_key = _new_space(api)
    assert _summary(api, space=SPACE, key=twin_key).status == 404
    assert _metrics(api, space=SPACE, key=twin_key, metric="rework_rate").status == 404


# --- the window's boundaries -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("hours", "after", "charged"),
    [
        (0.1, timedelta(seconds=360), True),
        (0.1, timedelta(seconds=360, milliseconds=1), False),
        (720, timedelta(hours=720), True),
        (720, timedelta(hours=720, seconds=1), False),
        (24, timedelta(0), True),
        (1.5, timedelta(minutes=90), True),
        (1.5, timedelta(minutes=90, seconds=1), False),
    ],
)
def test_rule_5_window_is_inclusive_at_both_ends(
    api: Api, clock: Clock, lambda_context: Any, hours: float, after: timedelta, charged: bool
) -> None:
    """METRICS §2 rule 5: a failure naming no cause starting within the window after D completed
    (``D.completed <= started <= D.completed + window``) charges D."""
    clock.now = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(hours=800)
    completed = datetime(2024, 2, 1, 12, 0, tzinfo=UTC)
    _created(
        api, {"id": "dep-window-0001", "project": "shop", "environment": "production", "finished_at": _iso(completed)}
    )
    started = completed + after
    _created(
        api,
        {
            "project": "shop",
            "environment": "production",
            "started_at": started.isoformat().replace("+00:00", "Z"),
            "finished_at": _iso(started + timedelta(hours=1)),
        },
        FAILURES,
    )
    ok(_patch(api, {"failure_window_hours": hours}))
    _tick(clock, lambda_context)
    figures = _figures(api, "dep-window-0001")
    assert figures["change_failure"] is charged, figures
    found = ok(_summary(api, **{"from": "2024-01-01T00:00:00Z", "to": "2024-04-01T00:00:00Z"}))
    assert found["change_failure_rate"]["change_failures"] == int(charged)


def test_a_window_change_over_more_streams_than_a_read_refreshes_counts_the_rest_pending(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """METRICS §8: a read refreshes at most 20 streams; the rest count in pending, and the numbers are
    those of the refreshed streams only until the scheduled run (then all, pending 0)."""
    for n in range(25):
        _created(api, {"project": f"p{n:02d}", "environment": "production", "finished_at": "2024-03-04T00:00:00Z"})
        _created(
            api,
            {
                "project": f"p{n:02d}",
                "environment": "production",
                "started_at": "2024-03-05T06:00:00Z",
                "finished_at": "2024-03-05T07:00:00Z",
            },
            FAILURES,
        )
    _tick(clock, lambda_context)
    window = {"from": "2024-03-01T00:00:00Z", "to": "2024-03-08T00:00:00Z"}
    assert ok(_summary(api, **window))["change_failure_rate"]["change_failures"] == 0
    ok(_patch(api, {"failure_window_hours": 48}))
    clock.advance(SETTLE + timedelta(seconds=1))
    first = ok(_summary(api, **window))
    assert first["change_failure_rate"]["change_failures"] + first["pending"] == 25, first
    assert first["pending"] == 5, first
    second = ok(_summary(api, **window))
    assert (second["change_failure_rate"]["change_failures"], second["pending"]) == (25, 0), second


@pytest.mark.parametrize("seed", _seeds(31, 32))
def test_a_read_right_after_a_window_change_equals_a_fresh_space(
    api: Api, clock: Clock, lambda_context: Any, seed: int
) -> None:
    """API.md settings: the window change is counted by "the next recompute, or a read's refresh within the
    bounds of METRICS §8". A read with pending 0 right after the change (no scheduled run) answers what a
    fresh space created with that window answers."""
    rng = random.Random(seed)
    history = _history(rng)
    hours = rng.choice([w for w in WINDOWS if w != 24])
    twin, twin_key = _new_space(api)
    ok(_patch(api, {"failure_window_hours": hours}, space=twin))
    _ingest(api, history, space=twin, key=twin_key)
    _ingest(api, history)
    _tick(clock, lambda_context)
    ok(_patch(api, {"failure_window_hours": hours}))
    clock.advance(SETTLE + timedelta(seconds=1))
    window = {"from": "2024-01-15T00:00:00Z", "to": "2024-03-05T00:00:00Z"}
    for metric in ("rework_rate", "change_failure_rate", "deployment_frequency"):
        query = {
            "metric": metric,
            "interval": "monthly",
            "start_date": "2024-01-20",
            "end_date": "2024-03-08",
            "environment_tiers": "production,staging",
        }
        mine = _metrics(api, **query)
        assert mine.header("X-Dora-Pending") == "0", mine.headers
        assert ok(mine) == ok(_metrics(api, space=twin, key=twin_key, **query)), query
    a = ok(_summary(api, **window))
    assert a["pending"] == 0
    assert _numbers(a) == _numbers(ok(_summary(api, space=twin, key=twin_key, **window)))
    for body in history["deployments"][:6]:
        assert _figures(api, body["id"]) == _figures(api, body["id"], space=twin, key=twin_key), body


def test_a_window_change_cut_short_after_its_first_transaction_is_not_left_owed_for_good(
    api: Api, clock: Clock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A space with more streams than one transaction holds (99 marks go with the settings; here 1, the
    constant lowered so 3 streams suffice) whose change is cut short after the settings' transaction (a
    503 of the later marks, a timeout). API.md Errors: a change sent with its revision answers 412 when
    its first sending was applied, "so read the record to see whether it holds the change": the record
    holds it (window 48, revision 1), so the client is done. The streams not marked must still be counted
    by the new window after the scheduled runs; the debt (``marks_owed``) is paid only by another change
    of the settings (logic/settings.py), so they keep the old window's figures, with pending 0, for good."""
    from dora_insights.dal.store import Store
    from dora_insights.errors import WriteContendedError
    from dora_insights.logic import settings as settings_logic

    for n in range(3):
        _created(api, {"project": f"p{n}", "environment": "production", "finished_at": "2024-03-04T00:00:00Z"})
        _created(
            api,
            {
                "project": f"p{n}",
                "environment": "production",
                "started_at": "2024-03-05T06:00:00Z",
                "finished_at": "2024-03-05T07:00:00Z",
            },
            FAILURES,
        )
    _tick(clock, lambda_context)
    monkeypatch.setattr(settings_logic, "_MARKS_WITH_SETTINGS", 1)

    def contended(self: Any, *_: Any, **__: Any) -> None:
        raise WriteContendedError("the marks could not be written now; retry the request")

    with monkeypatch.context() as patched:
        patched.setattr(Store, "mark_streams_dirty", contended)
        cut = _patch(api, {"revision": 0, "failure_window_hours": 48})
    assert cut.status in (500, 503), cut.body
    retried = _patch(api, {"revision": 0, "failure_window_hours": 48})
    assert retried.status == 412, retried.body  # its first sending was applied
    record = ok(as_client(api, "GET", SETTINGS))
    assert (record["failure_window_hours"], record["revision"]) == (48, 1)  # the record holds the change
    for _ in range(2):
        _tick(clock, lambda_context)
    found = ok(_summary(api, **{"from": "2024-03-01T00:00:00Z", "to": "2024-03-08T00:00:00Z"}))
    assert (found["change_failure_rate"]["change_failures"], found["pending"]) == (3, 0), found


def test_a_change_without_revision_racing_another_keeps_both(
    api: Api, small_history: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a revision "the change applies to the current settings": another change landing between
    this one's read and write is kept, and this one applied over it."""
    from dataclasses import replace as dc_replace

    from dora_insights.dal.store import Store

    original = Store.save_space_settings
    raced: list[int] = []

    def racing(self: Store, space_id: str, settings: Any, **kw: Any) -> bool:
        if not raced:
            raced.append(1)
            current = self.get_space(space_id, consistent=True).settings
            other = dc_replace(current, default_benchmark="2021", revision=current.revision + 1)
            assert original(self, space_id, other, expected_revision=current.revision, streams=[], now=kw["now"])
        return original(self, space_id, settings, **kw)

    monkeypatch.setattr(Store, "save_space_settings", racing)
    changed = ok(_patch(api, {"failure_window_hours": 12}))
    assert (changed["failure_window_hours"], changed["default_benchmark"], changed["revision"]) == (12, "2021", 2)
    stale = _patch(api, {"revision": 1, "failure_window_hours": 6})
    assert stale.status == 412


def test_dora_metrics_utc_day_and_year_boundaries_and_a_removed_year(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    for n, finished in enumerate(["2023-12-31T23:59:59.999Z", "2024-01-01T00:00:00.000Z", "2024-01-01T23:59:59Z"]):
        _created(
            api,
            {
                "id": f"dep-year-{n:04d}",
                "project": "shop",
                "environment": "production",
                "finished_at": finished,
                "version": f"1.{n}",
            },
        )
    base = {"metric": "deployment_frequency", "start_date": "2023-12-30", "end_date": "2024-01-02"}
    assert [r["value"] for r in ok(_metrics(api, **base))] == [0, 1, 2, 0]
    monthly = ok(_metrics(api, **base, interval="monthly"))
    assert monthly == [
        {"date": "2023-12-01", "value": pytest.approx(1 / 2)},
        {"date": "2024-01-01", "value": pytest.approx(2 / 2)},
    ]
    _tick(clock, lambda_context)
    removed = as_client(api, "DELETE", DEPLOYMENTS + "/{deploymentId}", path={"deploymentId": "dep-year-0000"})
    assert removed.status == 204, removed.body
    assert [r["value"] for r in ok(_metrics(api, **base))] == [0, 0, 2, 0]
    _tick(clock, lambda_context)
    assert [r["value"] for r in ok(_metrics(api, **base))] == [0, 0, 2, 0]
    summary = ok(_summary(api, **{"from": "2023-12-31T23:59:59.999Z", "to": "2024-01-01T23:59:59Z"}))
    assert summary["deployments"] == 1  # to excluded, the removed one gone


def test_empty_answers_have_no_tier_and_null_values(api: Api, clock: Clock) -> None:
    """METRICS §8: no tier without data; §9: null where a bucket has nothing to measure."""
    found = ok(_summary(api))
    assert found["deployments"] == 0
    for metric in ("deployment_frequency", "lead_time", "change_failure_rate", "recovery_time", "time_to_restore"):
        assert found[metric]["tier"] is None, (metric, found[metric])
    assert (found["lead_time"]["median_seconds"], found["recovery_time"]["median_seconds"]) == (None, None)
    assert (found["pending"], found["as_of"]) == (0, None)
    base = {"start_date": "2024-03-01", "end_date": "2024-03-02"}
    expected = {
        "deployment_frequency": [0, 0],
        "lead_time_for_changes": [None, None],
        "time_to_restore_service": [None, None],
        "change_failure_rate": [None, None],
        "rework_rate": [None, None],
    }
    for metric, values in expected.items():
        assert [r["value"] for r in ok(_metrics(api, metric=metric, **base))] == values, metric


def test_a_summary_of_only_failed_deployments_grades_the_failure_rate_but_not_frequency(api: Api, clock: Clock) -> None:
    for day in (1, 2):
        _created(
            api,
            {
                "project": "shop",
                "environment": "production",
                "state": "Failed",
                "finished_at": f"2024-03-0{day}T10:00:00Z",
                "version": f"1.{day}",
            },
        )
    found = ok(_summary(api, **{"from": "2024-03-01T00:00:00Z", "to": "2024-03-08T00:00:00Z"}))
    assert found["deployment_frequency"]["tier"] is None
    assert found["change_failure_rate"]["rate"] == 1.0 and found["change_failure_rate"]["tier"] == "Low"
    assert found["lead_time"]["tier"] is None


def test_openapi_documents_412_and_503_on_the_settings_and_metric_routes(api: Api) -> None:
    """API.md Errors: /openapi.json documents the 503 (with Retry-After) on every route that reaches the
    table, and the 412 on every route that takes If-Match."""
    document = ok(api.call("GET", "/openapi.json"))
    paths = document["paths"]
    patch = paths["/api/{spaceId}/settings"]["patch"]["responses"]
    assert "412" in patch and "503" in patch, sorted(patch)
    assert "Retry-After" in patch["503"].get("headers", {}), patch["503"]
    for route in ("/api/{spaceId}/settings", "/api/{spaceId}/summary", "/api/{spaceId}/dora/metrics"):
        responses = paths[route]["get"]["responses"]
        assert "503" in responses, (route, sorted(responses))
        assert "Retry-After" in responses["503"].get("headers", {}), (route, responses["503"])


@pytest.mark.parametrize(
    "query",
    [
        {"to": "0001-01-15T00:00:00Z"},
        {"to": "0001-03-31T00:00:00Z"},
        {"to": "0001-01-01T00:00:00.001Z"},
        {"to": "0"},
        {"to": "86400"},
        {"from": "9999-12-31T23:59:59.999Z"},
        {"from": "9999-12-31T23:59:59.998Z", "to": "9999-12-31T23:59:59.999Z"},
        {"from": "9999-12-31T23:59:59.999999+00:00", "to": "9999-12-31T23:59:59.999999-00:01"},
        {"from": "0001-01-01T00:00:00-00:01"},
    ],
)
def test_summary_ranges_at_the_ends_of_time_are_answered_not_500(
    api: Api, small_history: None, query: dict[str, str]
) -> None:
    """A default `from` 90 days before a `to` early in year 1, or a range in year 9999: 200 or 400."""
    found = _summary(api, **query)
    assert found.status in (200, 400), (query, found.status, found.body)


def test_settings_read_your_writes_under_replica_lag(
    api: Api, small_history: None, clock: Clock, lambda_context: Any, replica_lag: Any
) -> None:
    """API.md Consistency: settings are read by id strongly consistently; /summary applies scope settings
    changed a moment ago."""
    _tick(clock, lambda_context)  # nothing waits: the read refreshes nothing
    replica_lag.on()
    changed = ok(_patch(api, {"production_environments": ["staging"], "default_benchmark": "2021"}))
    assert ok(as_client(api, "GET", SETTINGS)) == changed
    found = ok(_summary(api, **{"from": "2024-02-01T00:00:00Z", "to": "2024-03-05T00:00:00Z"}))
    assert (found["environment_scope"]["source"], found["benchmark"], found["deployments"]) == (
        "production_environments",
        "2021",
        1,
    )
    assert _patch(api, {"revision": 0, "default_benchmark": "2024"}).status == 412


def test_a_summary_counts_what_its_own_refresh_computed_under_replica_lag(
    api: Api, small_history: None, clock: Clock, replica_lag: Any
) -> None:
    """METRICS §8: a read brings the streams it covers up to date first and answers from them (pending 0).
    Streams never computed before: the read's refresh registers them, then reads the stream pointers back
    with an eventually consistent Query (freshness.read_streams -> metrics.snapshot), which may not show
    the registrations it has just written: the answer counts nothing, with pending 0."""
    clock.advance(timedelta(seconds=5))  # the ingest's marks have settled
    replica_lag.on()
    found = ok(_summary(api, **{"from": "2024-02-01T00:00:00Z", "to": "2024-03-05T00:00:00Z"}))
    assert (found["deployments"], found["pending"]) == (4, 0), (found, replica_lag.hidden)


def test_dora_metrics_counts_what_its_own_refresh_computed_under_replica_lag(
    api: Api, small_history: None, clock: Clock, replica_lag: Any
) -> None:
    """The same through /dora/metrics: freshness.refresh_streams reads the pointers back with
    ``data.streams(space_id)`` (eventually consistent) after recomputing them."""
    clock.advance(timedelta(seconds=5))
    replica_lag.on()
    found = _metrics(
        api,
        metric="deployment_frequency",
        start_date="2024-03-01",
        end_date="2024-03-03",
        environment_tiers="production,staging",
    )
    assert found.header("X-Dora-Pending") == "0"
    assert [r["value"] for r in ok(found)] == [1, 0, 2], (found.body, replica_lag.hidden)
