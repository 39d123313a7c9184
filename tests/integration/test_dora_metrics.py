"""``GET /api/{spaceId}/dora/metrics`` (GitLab's DORA metrics API, METRICS §9) through the real HTTP API
event shape: GitLab's rows and errors, filters and tiers, freshness headers, answers read from the
daily rollups only, and equality with the slow reference on a random history."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from dora_insights.dal.repositories import Repositories
from dora_insights.domain.figures import figures_of
from dora_insights.logic.freshness import SETTLE
from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.support.gitlab_reference import reference
from tests.support.native import create_deployment
from tests.support.recompute import scheduled_run

NOW = datetime(2024, 3, 31, 12, 0, tzinfo=UTC)
SPACE = "Spaces-1"
ROUTE = "/api/{spaceId}/dora/metrics"


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _call(api: Api, method: str, route: str, **kwargs: Any) -> HttpResult:
    return api.call(method, route, key=ADMIN_KEY, path_params={"spaceId": SPACE}, **kwargs)


def _deploy(api: Api, project: str, finished: str, **fields: Any) -> None:
    create_deployment(api, project=project, finished_at=finished, **fields)


def _failure(api: Api, project: str, started: str, finished: str | None, environment: str = "production") -> None:
    body: dict[str, Any] = {"project": project, "environment": environment, "started_at": started}
    if finished is not None:
        body["finished_at"] = finished
    created = _call(api, "POST", "/api/{spaceId}/failures", body=body)
    assert created.status in (200, 201), created.body


def _metrics(api: Api, **query: str) -> HttpResult:
    return _call(api, "GET", ROUTE, query=query)


def _values(result: HttpResult) -> list[Any]:
    assert result.status == 200, result.body
    return [row["value"] for row in result.body]


@pytest.fixture
def history(api: Api, clock: Clock) -> None:
    """shop: 2 successes on Mar 1, 1 failure and 1 success on Mar 3 (staging too); an incident on Mar 3."""
    _deploy(api, "shop", "2024-03-01T10:00:00Z", started_at="2024-03-01T09:00:00Z", version="1.0")
    _deploy(api, "shop", "2024-03-01T15:00:00Z", started_at="2024-03-01T14:00:00Z", version="1.1")
    _deploy(api, "shop", "2024-03-03T10:00:00Z", version="1.2", state="Failed")
    _deploy(api, "shop", "2024-03-03T12:00:00Z", version="1.2")
    _deploy(api, "shop", "2024-03-03T12:00:00Z", version="1.2", environment="staging")
    _failure(api, "shop", "2024-03-03T13:00:00Z", "2024-03-03T15:00:00Z")


def test_daily_deployment_frequency_is_a_dense_series_of_counts(api: Api, history: None) -> None:
    found = _metrics(api, metric="deployment_frequency", start_date="2024-03-01", end_date="2024-03-04")
    assert found.body == [
        {"date": "2024-03-01", "value": 2},
        {"date": "2024-03-02", "value": 0},
        {"date": "2024-03-03", "value": 1},
        {"date": "2024-03-04", "value": 0},
    ]
    headers = {k.lower(): v for k, v in found.headers.items()}
    assert headers["x-dora-pending"] == "0"
    assert headers["x-dora-as-of"] == "2024-03-31T12:00:00.000Z"  # computed by this read


def test_monthly_and_all_are_daily_averages_as_gitlab(api: Api, history: None) -> None:
    monthly = _metrics(
        api, metric="deployment_frequency", start_date="2024-02-20", end_date="2024-03-09", interval="monthly"
    )
    assert monthly.body == [{"date": "2024-02-01", "value": 0.0}, {"date": "2024-03-01", "value": pytest.approx(3 / 9)}]
    every = _metrics(api, metric="deployment_frequency", start_date="2024-03-01", end_date="2024-03-10", interval="all")
    assert every.body == [{"date": None, "value": pytest.approx(0.3)}]


def test_incidents_give_change_failure_rate_and_time_to_restore(api: Api, history: None) -> None:
    cfr = _metrics(api, metric="change_failure_rate", start_date="2024-03-01", end_date="2024-03-05", interval="all")
    assert _values(cfr) == [pytest.approx(1 / 3)]
    restore = _metrics(api, metric="time_to_restore_service", start_date="2024-03-01", end_date="2024-03-04")
    assert _values(restore) == [None, None, 7200.0, None]


def test_the_default_tier_is_production_and_tiers_choose_environments(api: Api, history: None) -> None:
    base = {"metric": "deployment_frequency", "start_date": "2024-03-03", "end_date": "2024-03-04"}
    assert _values(_metrics(api, **base)) == [1, 0]
    assert _values(_metrics(api, **base, **{"environment_tiers[]": "staging"})) == [1, 0]
    assert _values(_metrics(api, **base, **{"environment_tiers[]": "production,staging"})) == [2, 0]
    assert _values(_metrics(api, **base, environment_tier="staging", environment="production")) == [0, 0]
    assert _values(_metrics(api, **base, environment="staging")) == [1, 0]


def test_the_spaces_production_environments_are_the_production_tier(api: Api, history: None) -> None:
    changed = _call(api, "PATCH", "/api/{spaceId}/settings", body={"production_environments": ["staging"]})
    assert changed.status == 200, changed.body
    base = {"metric": "deployment_frequency", "start_date": "2024-03-01", "end_date": "2024-03-04"}
    assert _values(_metrics(api, **base)) == [0, 0, 1, 0]
    assert _values(_metrics(api, **base, **{"environment_tiers[]": "other"})) == [2, 0, 1, 0]


def test_filters_take_names_or_ids_and_an_unknown_one_selects_nothing(api: Api, history: None) -> None:
    base = {"metric": "deployment_frequency", "start_date": "2024-03-01", "end_date": "2024-03-02"}
    assert _values(_metrics(api, **base, project="SHOP")) == [2, 0]
    assert _values(_metrics(api, **base, project="nobody")) == [0, 0]
    assert _values(_metrics(api, **base, tenant="acme")) == [0, 0]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({}, "metric is missing"),
        (
            {"metric": "mttr"},
            "The metric must be one of deployment_frequency,lead_time_for_changes,"
            "time_to_restore_service,change_failure_rate,rework_rate.",
        ),
        ({"metric": "deployment_frequency", "interval": "weekly"}, "The interval must be one of all,monthly,daily."),
        ({"metric": "deployment_frequency", "start_date": "2024-13-01"}, "start_date is invalid"),
        (
            {"metric": "deployment_frequency", "start_date": "2023-01-01", "end_date": "2024-03-01"},
            "Date range must be shorter than 366 days.",
        ),
        (
            {"metric": "deployment_frequency", "start_date": "2024-03-01", "end_date": "2024-03-01"},
            "The start date must be earlier than the end date.",
        ),
        (
            {"metric": "deployment_frequency", "environment_tiers[]": "prod"},
            "The environment tiers must be from production, staging, testing, development, other.",
        ),
    ],
)
def test_bad_parameters_are_400_in_gitlabs_shape(api: Api, clock: Clock, query: dict[str, str], message: str) -> None:
    found = _metrics(api, **query)
    assert (found.status, found.body) == (400, {"message": message})


def test_defaults_are_daily_over_three_months_to_today(api: Api, history: None) -> None:
    found = _metrics(api, metric="deployment_frequency")
    assert found.status == 200
    assert (found.body[0]["date"], found.body[-1]["date"], len(found.body)) == ("2023-12-31", "2024-03-31", 92)


def test_a_key_without_the_read_scope_is_refused_in_gitlabs_shape(api: Api, clock: Clock) -> None:
    found = api.call("GET", ROUTE, key="not-a-key", path_params={"spaceId": SPACE}, query={"metric": "rework_rate"})
    assert found.status == 401
    assert set(found.body) == {"message"}


def test_answers_equal_the_reference_on_a_random_history(
    api: Api, clock: Clock, store: Repositories, lambda_context: Any
) -> None:
    rng = random.Random(19)
    start_day = date(2023, 12, 1)
    for n in range(60):
        finished = datetime(2023, 12, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 120 * 24 * 60))
        project = rng.choice(["shop", "cart"])
        fields: dict[str, Any] = {
            "version": f"1.{rng.randrange(0, 30)}",
            "started_at": (finished - timedelta(minutes=rng.randrange(1, 600))).isoformat(),
            "state": rng.choice(["Success", "Success", "Success", "Failed"]),
            "environment": rng.choice(["production", "production", "staging"]),
        }
        if rng.random() < 0.2:
            fields["tenant"] = "acme"
        _deploy(api, project, finished.isoformat(), id=f"dep-{n:03d}", **fields)
    for _ in range(8):
        started = datetime(2023, 12, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 120 * 24 * 60))
        restored = started + timedelta(minutes=rng.randrange(5, 3000))
        _failure(
            api, rng.choice(["shop", "cart"]), started.isoformat(), restored.isoformat() if rng.random() < 0.8 else None
        )
    scheduled_run(lambda_context)
    data = store.metrics()
    registered = data.streams(SPACE)
    records = data.space_figures(SPACE, registered)
    failures = data.space_failures(SPACE)
    production = {
        key: (r["dims"]["project_id"], r["dims"]["environment_id"], [figures_of(x) for x in records[key]])
        for key, r in registered.items()
        if r["dims"]["environment"] == "production"
    }
    end_day = date(2024, 3, 29)
    for metric in (
        "deployment_frequency",
        "lead_time_for_changes",
        "time_to_restore_service",
        "change_failure_rate",
        "rework_rate",
    ):
        for interval in ("daily", "monthly", "all"):
            query = {"metric": metric, "interval": interval, "start_date": str(start_day), "end_date": str(end_day)}
            found = _metrics(api, **query)
            assert found.status == 200, found.body
            expected = reference(metric, interval, start_day, end_day, production, failures)
            assert [r["date"] for r in found.body] == [d for d, _ in expected]
            for row, (_, wanted) in zip(found.body, expected, strict=True):
                assert (row["value"] is None) == (wanted is None), (metric, interval, row)
                if wanted is not None:
                    assert row["value"] == pytest.approx(wanted, rel=1e-9, abs=1e-9), (metric, interval, row)


def test_a_failure_recorded_later_is_counted_at_the_next_read(api: Api, history: None) -> None:
    query = {"metric": "change_failure_rate", "start_date": "2024-03-01", "end_date": "2024-03-05", "interval": "all"}
    assert _values(_metrics(api, **query)) == [pytest.approx(1 / 3)]
    _failure(api, "shop", "2024-03-04T08:00:00Z", None)
    again = _metrics(api, **query)
    assert _values(again) == [pytest.approx(2 / 3)]  # the failure marked shop's streams; the read caught them up
    assert {k.lower(): v for k, v in again.headers.items()}["x-dora-pending"] == "0"


def test_a_deleted_deployment_stops_counting(api: Api, history: None) -> None:
    query = {"metric": "deployment_frequency", "start_date": "2024-03-03", "end_date": "2024-03-04"}
    assert _values(_metrics(api, **query)) == [1, 0]
    listed = _call(api, "GET", "/api/{spaceId}/deployments", query={"project": "shop", "environment": "production"})
    (latest,) = [d for d in listed.body["items"] if d["finished_at"].startswith("2024-03-03T12")]
    removed = api.call(
        "DELETE",
        "/api/{spaceId}/deployments/{deploymentId}",
        key=ADMIN_KEY,
        path_params={"spaceId": SPACE, "deploymentId": latest["id"]},
    )
    assert removed.status == 204, removed.body
    assert _values(_metrics(api, **query)) == [0, 0]


def test_the_read_uses_rollups_not_deployments_or_figures(
    api: Api, history: None, lambda_context: Any, monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    clock.advance(SETTLE)  # the tick comes after the index shows the writes
    scheduled_run(lambda_context)  # nothing waits: the read reads only what is precomputed
    from dora_insights.dal.store import Store

    partitions: list[str] = []
    original = Store.query_page

    def spy(self: Store, **kwargs: Any) -> Any:
        partitions.append(str(kwargs["partition"]))
        return original(self, **kwargs)

    monkeypatch.setattr(Store, "query_page", spy)
    found = _metrics(api, metric="lead_time_for_changes", start_date="2023-12-01", end_date="2024-03-04")
    assert found.status == 200
    assert sorted(p.removeprefix(f"S#{SPACE}#") for p in partitions) == [
        "DIRTY",
        "ROLLUP#D#2023",
        "ROLLUP#D#2024",
        "ROLLUP#F",
        "STREAMS",
    ]
