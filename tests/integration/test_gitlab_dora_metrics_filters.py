"""GitLab's DORA metrics API (GET /api/{spaceId}/dora/metrics, METRICS §9, API.md): the
filters (project, environment, tenant by name in any case or by id), a read right after the writes
(the read's own refresh, no scheduled run), removals, and hostile query parameters."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest

from dora_insights.logic.freshness import SETTLE
from tests.conftest import ADMIN_KEY, Api, Clock
from tests.integration.test_gitlab_dora_metrics_oracle import (
    EXTENSION,
    FAILURES,
    INTERVALS,
    METRICS,
    NOW,
    PROJECTS,
    SPACE,
    TIERS,
    Incident,
    _failure,
    _metrics,
    _same,
    _send_history,
    _shown,
    _values,
    oracle,
)
from tests.support.native import create_deployment, list_all
from tests.support.recompute import scheduled_run
from tests.support.seeds import seeds


def _joined(query: dict[str, Any]) -> dict[str, str]:
    """Repeated parameters as API Gateway (HTTP API v2) passes them: joined with commas."""
    return {k: ",".join(v) if isinstance(v, list) else v for k, v in query.items()}


RANGE = (date(2024, 1, 29), date(2024, 3, 3))
ALL_METRICS = (*METRICS, EXTENSION)


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _spell(rng: random.Random, name: str) -> str:
    return rng.choice((name, name.upper(), name.title(), name.swapcase()))


def _restrict(incidents: list[Incident], project: str) -> list[Incident]:
    """The failure events as counted for one project: each names it at most once."""
    return [
        Incident((project,), i.environment, i.started, i.finished, i.restore)
        for i in incidents
        if project in i.projects
    ]


def _query(metric: str, interval: str, **more: str) -> dict[str, str]:
    start, end = RANGE
    return {"metric": metric, "interval": interval, "start_date": str(start), "end_date": str(end), **more}


@pytest.mark.parametrize("seed", seeds([21, 22, 23, 24]))
@pytest.mark.parametrize("tick", [True, False], ids=["after_tick", "read_refresh"])
def test_filters_equal_the_oracle_over_the_filtered_history(
    api: Api, clock: Clock, lambda_context: Any, seed: int, tick: bool
) -> None:
    """project / environment / tenant, by name in any case or by id, select exactly their streams (and
    the failure events of their (project, environment)s), as METRICS §9's oracle over that subset; with
    tick False nothing but the read itself brings the figures up to date (within the read bound)."""
    rng = random.Random(seed)
    _send_history(api, rng)
    clock.advance(SETTLE + timedelta(seconds=1))
    if tick:
        scheduled_run(lambda_context)
    items = list_all(api)
    ids = {
        kind: {it[kind]: it[f"{kind}_id"] for it in items if it.get(kind)}
        for kind in ("project", "environment", "tenant")
    }
    start, end = RANGE
    cases: list[tuple[dict[str, str], Any]] = []
    for project in sorted(ids["project"]):
        spelled = rng.choice((_spell(rng, project), ids["project"][project]))
        cases.append(({"project": spelled}, ("project", project)))
    for environment in sorted(ids["environment"]):
        spelled = rng.choice((_spell(rng, environment), ids["environment"][environment]))
        cases.append(({"environment": spelled}, ("environment", environment)))
    for tenant in sorted(ids["tenant"]):
        spelled = rng.choice((_spell(rng, tenant), ids["tenant"][tenant]))
        cases.append(({"tenant": spelled}, ("tenant", tenant)))
    # Ask first (the read itself must do the refresh when tick is False), compare after.
    answers = []
    for filters, what in cases:
        for metric in ALL_METRICS:
            for interval in INTERVALS:
                answers.append((filters, what, metric, interval, _metrics(api, **_query(metric, interval, **filters))))
    deployments, incidents = _shown(api)
    for filters, (kind, name), metric, interval, found in answers:
        if kind == "project":
            chosen = [d for d in deployments if d.stream[0] == name]
            expected = oracle(metric, interval, start, end, (), chosen, _restrict(incidents, name))
        elif kind == "environment":  # an environment named selects on its own: every tier
            chosen = [d for d in deployments if d.stream[1] == name]
            expected = oracle(metric, interval, start, end, TIERS, chosen, incidents)
        else:
            chosen = [d for d in deployments if d.stream[2] == name]
            expected = oracle(metric, interval, start, end, (), chosen, incidents)
        what = (seed, tick, filters, metric, interval)
        _same(found, expected, what)
        assert found.header("X-Dora-Pending") == "0", (what, found.headers if hasattr(found, "headers") else None)


@pytest.mark.parametrize("seed", seeds([31, 32, 33]))
def test_project_answers_partition_the_whole(api: Api, clock: Clock, lambda_context: Any, seed: int) -> None:
    """Counts add up: per-project deployment_frequency (daily) sums to the unfiltered one, for any tiers."""
    rng = random.Random(seed)
    _send_history(api, rng)
    clock.advance(SETTLE + timedelta(seconds=1))
    scheduled_run(lambda_context)
    for tiers in ((), ("staging",), TIERS):
        extra = {"environment_tiers[]": ",".join(tiers)} if tiers else {}
        whole = _values(_metrics(api, **_query("deployment_frequency", "daily", **extra)))
        parts = [
            _values(_metrics(api, **_query("deployment_frequency", "daily", project=p, **extra))) for p in PROJECTS
        ]
        assert [sum(col) for col in zip(*parts, strict=True)] == whole, (seed, tiers)


def test_filters_that_match_nothing_answer_zeros_and_nulls(api: Api, clock: Clock, lambda_context: Any) -> None:
    create_deployment(api, finished_at="2024-03-01T10:00:00Z", version="1.0")
    _failure(api, {"project": "shop", "environment": "production", "started_at": "2024-03-01T11:00:00Z"})
    days = {"start_date": "2024-03-01", "end_date": "2024-03-02"}
    for filters in (
        {"project": "nope"},
        {"tenant": "nobody"},
        {"environment": "moon"},
        {"project_group": "x"},
        {"project": "Projects-999999"},
        {"environment": "production", "environment_tiers[]": "staging"},
    ):
        for metric, zero in (("deployment_frequency", [0, 0]), ("change_failure_rate", [None, None])):
            found = _metrics(api, metric=metric, **days, **filters)
            assert (found.status, _values(found)) == (200, zero), (filters, metric, found.body)


def test_a_removed_deployment_and_failure_stop_counting_at_the_next_read(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """DELETE marks the streams dirty; the next read (after the settle delay, no tick) no longer counts them."""
    days = {"start_date": "2024-03-01", "end_date": "2024-03-02"}
    create_deployment(api, finished_at="2024-03-01T10:00:00Z", version="1.0", id="keep")
    create_deployment(api, finished_at="2024-03-01T12:00:00Z", version="1.1", id="gone")
    _failure(
        api,
        {
            "id": "f1",
            "project": "shop",
            "environment": "production",
            "started_at": "2024-03-01T13:00:00Z",
            "finished_at": "2024-03-01T14:00:00Z",
        },
    )
    clock.advance(SETTLE + timedelta(seconds=1))
    assert _values(_metrics(api, metric="deployment_frequency", **days)) == [2, 0]
    assert _values(_metrics(api, metric="change_failure_rate", **days)) == [0.5, None]
    assert _values(_metrics(api, metric="time_to_restore_service", **days)) == [3600.0, None]
    for route, name, ident in (
        ("/api/{spaceId}/deployments/{deploymentId}", "deploymentId", "gone"),
        (FAILURES + "/{failureId}", "failureId", "f1"),
    ):
        removed = api.call("DELETE", route, key=ADMIN_KEY, path_params={"spaceId": SPACE, name: ident})
        assert removed.status in (200, 202, 204), removed.body
    clock.advance(SETTLE + timedelta(seconds=1))
    freq = _metrics(api, metric="deployment_frequency", **days)
    cfr = _metrics(api, metric="change_failure_rate", **days)
    ttr = _metrics(api, metric="time_to_restore_service", **days)
    assert (_values(freq), _values(cfr), _values(ttr)) == ([1, 0], [0.0, None], [None, None])
    assert freq.header("X-Dora-Pending") == "0"


@pytest.mark.parametrize(
    "query",
    [
        {"metric": "deployment_frequency" * 10},
        {"metric": "deployment_frequency", "start_date": "x" * 5000},
        {"metric": "deployment_frequency", "start_date": "2024-03-01T00:00:00Z"},
        {"metric": "deployment_frequency", "end_date": "\u0662\u0660\u0662\u0664-03-01"},
        {"metric": "deployment_frequency", "start_date": "0001-01-01", "end_date": "0001-01-01"},
        {"metric": "deployment_frequency", "end_date": "0001-01-01"},
        {"metric": "deployment_frequency", "interval": "x" * 1000},
        {"metric": "deployment_frequency", "project": "p" * 201},
        {"metric": "deployment_frequency", "environment_tiers[]": ",".join(["production"] * 5000)},
        {"metric": "deployment_frequency", "environment_tiers[]": "production\x00"},
        {"metric": "deployment_frequency\x00"},
        {"metric": ["deployment_frequency", "lead_time_for_changes"]},
        {"metric": "deployment_frequency", "start_date": ["2024-01-01", "2024-02-01"]},
    ],
)
def test_hostile_queries_are_400_in_gitlabs_shape(api: Api, clock: Clock, query: dict[str, Any]) -> None:
    query = _joined(query)
    found = api.call("GET", "/api/{spaceId}/dora/metrics", key=ADMIN_KEY, path_params={"spaceId": SPACE}, query=query)
    assert found.status == 400, (query, found.status, found.body)
    assert isinstance(found.body, dict) and set(found.body) == {"message"}, found.body


@pytest.mark.parametrize(
    ("start", "end", "interval"),
    [
        ("9999-01-01", "9999-12-31", "monthly"),
        ("9999-12-01", "9999-12-31", "daily"),
        ("0001-01-01", "0001-12-31", "monthly"),
        (None, "0001-02-01", "all"),
        ("2024-02-28", "2024-03-01", "monthly"),
    ],
)
def test_extreme_dates_answer_200(api: Api, clock: Clock, start: str | None, end: str, interval: str) -> None:
    create_deployment(api, finished_at="2024-02-29T10:00:00Z", version="1.0")
    query = {"metric": "deployment_frequency", "end_date": end, "interval": interval}
    if start:
        query["start_date"] = start
    found = _metrics(api, **query)
    assert found.status == 200, found.body
    assert found.body and all(set(row) == {"date", "value"} for row in found.body)


def test_default_start_is_three_months_before_end(api: Api, clock: Clock) -> None:
    """GitLab: start_date defaults to 3 months before (Ruby months.ago clamps 31 May -> 28/29 Feb)."""
    found = _metrics(api, metric="deployment_frequency", end_date="2024-05-31")
    assert found.status == 200 and found.body[0]["date"] == "2024-02-29" and found.body[-1]["date"] == "2024-05-31"
    today = _metrics(api, metric="deployment_frequency")
    assert today.body[-1]["date"] == NOW.date().isoformat(), today.body[-1]
    assert today.body[0]["date"] == "2023-12-05", today.body[0]


def test_tiers_forms_agree(api: Api, clock: Clock, lambda_context: Any) -> None:
    """environment_tiers[] repeated, environment_tiers comma-separated and environment_tier: the same answer."""
    for env, n in (("production", 1), ("staging", 2), ("qa", 3), ("dev", 4), ("sandbox", 5)):
        for k in range(n):
            create_deployment(api, environment=env, finished_at=f"2024-03-01T1{k}:00:00Z", version=f"{env}.{k}")
    days = {"metric": "deployment_frequency", "start_date": "2024-03-01", "end_date": "2024-03-02"}
    expected = {("staging", "testing"): 5, ("other",): 5, ("development", "production"): 5, ("production",): 1}
    for tiers, count in expected.items():
        forms = [
            {"environment_tiers[]": list(tiers)},
            {"environment_tiers": ",".join(tiers)},
            {"environment_tier": list(tiers)},
            {"environment_tiers[]": ",".join(reversed(tiers))},
        ]
        for form in forms:
            found = api.call(
                "GET",
                "/api/{spaceId}/dora/metrics",
                key=ADMIN_KEY,
                path_params={"spaceId": SPACE},
                query=_joined({**days, **form}),
            )
            assert (found.status, _values(found)) == (200, [count, 0]), (tiers, form, found.body)


DAYS = {"start_date": "2024-03-01", "end_date": "2024-03-02"}


def _read(api: Api, metric: str, **more: str) -> list[Any]:
    return _values(_metrics(api, metric=metric, **DAYS, **more))


def test_a_failure_names_its_project_and_environment_in_any_case(api: Api, clock: Clock) -> None:
    """Catalogue names resolve in any case: a failure event sent as SHOP / PRODUCTION is shop's in production."""
    create_deployment(api, finished_at="2024-03-01T10:00:00Z", version="1.0")
    _failure(
        api,
        {
            "project": "SHOP",
            "environment": "Production",
            "started_at": "2024-03-01T11:00:00Z",
            "finished_at": "2024-03-01T11:30:00Z",
        },
    )
    clock.advance(SETTLE + timedelta(seconds=1))
    assert _read(api, "change_failure_rate") == [1.0, None]
    assert _read(api, "time_to_restore_service") == [1800.0, None]


def test_one_failure_counts_once_for_two_tenant_streams_of_its_pair(api: Api, clock: Clock) -> None:
    """Two streams (tenants) of shop in production: one failure event of shop is one incident (METRICS §9)."""
    create_deployment(api, finished_at="2024-03-01T10:00:00Z", version="1.0", tenant="acme")
    create_deployment(api, finished_at="2024-03-01T10:30:00Z", version="1.0", tenant="globex")
    create_deployment(api, finished_at="2024-03-01T10:45:00Z", version="1.1", tenant="globex")
    _failure(api, {"project": "shop", "environment": "production", "started_at": "2024-03-01T11:00:00Z"})
    clock.advance(SETTLE + timedelta(seconds=1))
    assert _read(api, "change_failure_rate") == [pytest.approx(1 / 3), None]
    assert _read(api, "change_failure_rate", tenant="acme") == [1.0, None]


def test_a_failure_naming_one_project_twice_in_two_cases_is_one_incident(api: Api, clock: Clock) -> None:
    create_deployment(api, finished_at="2024-03-01T10:00:00Z", version="1.0")
    create_deployment(api, finished_at="2024-03-01T10:10:00Z", version="1.1")
    created = api.call(
        "POST",
        FAILURES,
        key=ADMIN_KEY,
        path_params={"spaceId": SPACE},
        body={"projects": ["shop", "Shop"], "environment": "production", "started_at": "2024-03-01T11:00:00Z"},
    )
    assert created.status in (200, 201, 400), created.body
    if created.status == 400:
        return  # refused outright: nothing counted twice
    clock.advance(SETTLE + timedelta(seconds=1))
    assert _read(api, "change_failure_rate") == [0.5, None]


def test_a_range_across_new_year_reads_both_years(api: Api, clock: Clock, lambda_context: Any) -> None:
    create_deployment(api, finished_at="2023-12-31T23:30:00Z", version="1.0")
    create_deployment(api, finished_at="2024-01-01T00:30:00+05:30", version="1.1")  # 2023-12-31 UTC
    create_deployment(api, finished_at="2024-01-01T00:30:00Z", version="1.2")
    _failure(
        api,
        {
            "project": "shop",
            "environment": "production",
            "started_at": "2023-12-31T23:00:00Z",
            "finished_at": "2024-01-01T01:00:00Z",
        },
    )
    clock.advance(SETTLE + timedelta(seconds=1))
    q = {"start_date": "2023-12-30", "end_date": "2024-01-02"}
    assert _values(_metrics(api, metric="deployment_frequency", **q)) == [0, 2, 1, 0]
    assert _values(_metrics(api, metric="time_to_restore_service", **q)) == [None, None, 7200.0, None]
    assert _values(_metrics(api, metric="change_failure_rate", **q)) == [None, 0.5, 0.0, None]
    monthly = _metrics(api, metric="deployment_frequency", interval="monthly", **q)
    assert monthly.body == [
        {"date": "2023-12-01", "value": pytest.approx(2 / 2)},
        {"date": "2024-01-01", "value": pytest.approx(1 / 2)},
    ]


@pytest.mark.parametrize("seed", seeds([41, 42, 43, 44]))
def test_corrections_and_removals_after_a_tick_show_at_the_next_read(
    api: Api, clock: Clock, lambda_context: Any, seed: int
) -> None:
    """After the tick, random state corrections, removals of deployments and failure events; the next read
    (its own refresh, no tick) equals the oracle over what the native API then shows, with Pending 0."""
    rng = random.Random(seed)
    _send_history(api, rng)
    clock.advance(SETTLE + timedelta(seconds=1))
    scheduled_run(lambda_context)
    items = list_all(api)
    for item in rng.sample(items, min(len(items), rng.randrange(3, 8))):
        path = {"spaceId": SPACE, "deploymentId": item["id"]}
        if rng.random() < 0.3:
            done = api.call("DELETE", "/api/{spaceId}/deployments/{deploymentId}", key=ADMIN_KEY, path_params=path)
        else:
            state = rng.choice([s for s in ("Success", "Failed", "TimedOut", "Canceled") if s != item["state"]])
            done = api.call(
                "PATCH",
                "/api/{spaceId}/deployments/{deploymentId}",
                key=ADMIN_KEY,
                path_params=path,
                body={"state": state},
            )
        assert done.status in (200, 202, 204), (item["id"], done.status, done.body)
    for failure in rng.sample(list_all(api, FAILURES), 2):
        gone = api.call(
            "DELETE",
            FAILURES + "/{failureId}",
            key=ADMIN_KEY,
            path_params={"spaceId": SPACE, "failureId": failure["id"]},
        )
        assert gone.status in (200, 202, 204), gone.body
    clock.advance(SETTLE + timedelta(seconds=1))
    start, end = RANGE
    answers = [
        (
            metric,
            interval,
            tiers,
            _metrics(api, **_query(metric, interval, **({"environment_tiers[]": ",".join(tiers)} if tiers else {}))),
        )
        for metric in ALL_METRICS
        for interval in INTERVALS
        for tiers in ((), TIERS)
    ]
    deployments, incidents = _shown(api)
    for metric, interval, tiers, found in answers:
        what = (seed, metric, interval, tiers)
        _same(found, oracle(metric, interval, start, end, tiers, deployments, incidents), what)
        assert found.header("X-Dora-Pending") == "0", what


def test_past_the_read_bound_counted_plus_pending_covers_every_stream(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """25 new streams (one deployment each, 2024-03-01), more than a read's 20: an answer counts some and
    says how many it does not count (METRICS §8); reads go on catching up; after the tick all 25."""
    total = 25
    for n in range(total):
        create_deployment(api, project=f"p{n:02d}", finished_at="2024-03-01T10:00:00Z", version="1.0")
    clock.advance(SETTLE + timedelta(seconds=1))
    seen: list[tuple[int, int]] = []
    for _ in range(3):
        found = _metrics(api, metric="deployment_frequency", **DAYS)
        counted = _values(found)[0]
        pending = int(found.header("X-Dora-Pending") or 0)
        seen.append((counted, pending))
        assert counted + pending == total, seen
        assert _values(found)[1] == 0
    assert seen[-1] == (total, 0), seen
    scheduled_run(lambda_context)
    found = _metrics(api, metric="deployment_frequency", **DAYS)
    assert (_values(found), found.header("X-Dora-Pending")) == ([total, 0], "0")


@pytest.mark.parametrize(("scopes", "status"), [(["deployments:write"], 403), (["deployments:read"], 200)])
def test_scope_and_a_bad_key_answer_in_gitlabs_shape(api: Api, clock: Clock, scopes: list[str], status: int) -> None:
    made = api.call(
        "POST",
        "/api/{spaceId}/apikeys",
        path_params={"spaceId": SPACE},
        body={"name": "k", "scopes": scopes},
        key=ADMIN_KEY,
    )
    assert made.status == 201, made.body
    secret = made.body.get("key") or made.body.get("secret")
    found = _metrics(api, key=secret, metric="deployment_frequency", **DAYS)
    assert found.status == status, found.body
    if status != 200:
        assert set(found.body) == {"message"}, found.body
    unknown = _metrics(api, key="not-a-key", metric="deployment_frequency", **DAYS)
    assert unknown.status == 401 and set(unknown.body) == {"message"}, unknown.body
