"""GitLab's DORA metrics API (``GET /api/{spaceId}/dora/metrics``, METRICS §9) against an oracle, and the
defects a review of it found (made permanent here; the review's own file was lost).

What it checks:

- Property (random seeds; ``DORA_PROPERTY_SEEDS=a:b`` runs seeds a..b-1): a random history of native
  deployments (commits sent first through ``/changes``, so lead times come from code; states
  ``Success``, ``Failed``, ``Canceled``, ``TimedOut``; several projects, tenants and environments whose
  names GitLab's tier guess places in every tier; times near UTC midnight sent with ``+05:30`` and
  ``-08:00`` offsets) and failure events (some naming two projects, some open, some in an environment
  where the project has no stream), some seeds listing the space's ``production_environments``, then
  the scheduled recompute. Every metric (``rework_rate`` too) × interval × tier set equals an oracle
  written here from METRICS §9 over what the native API shows: each deployment's ``figures``
  (``GET /deployments/{id}``) and the failure events (``GET /failures``), bucketed by UTC day.
- The review's defects, fixed in 5bf4cb6 (79875d4 has them):
  1. a read that refreshes nothing read the rollups eventually consistently and dropped an item whose
     generations did not name the stream's pointer: a replica answering a rollup's previous version
     made the stream count nothing, with ``X-Dora-Pending: 0``;
  2. a recompute that lost the pointer to a concurrent one but wrote its rollups after the winner's
     left the stream counting nothing, again with ``X-Dora-Pending: 0`` (the read now counts it as
     pending; the loser marks it again);
  3. ``environment_tiers`` repeated more than 20 times (5 tiers, each 5 times) was a 400 ``at most 20
     items``; GitLab sets no bound on the array, so it is the set's answer.
- Edges: a range of one day and an end before the start (400, GitLab's ``{"message"}``), the 366-day
  limit, unknown metric, interval and tier (400 ``{"message"}``), and another space's data never counted.
"""

from __future__ import annotations

import hashlib
import os
import random
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from dora_insights.dal.rollups import RollupStore
from dora_insights.logic.freshness import SETTLE
from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.support.fixtures import OTHER_KEY, OTHER_SPACE
from tests.support.gitlab_reference import buckets
from tests.support.native import create_deployment, list_all, read_deployment
from tests.support.recompute import scheduled_run

_WIDE = os.environ.get("DORA_PROPERTY_SEEDS")


def _seeds(*default: int) -> list[int]:
    return list(range(*map(int, _WIDE.split(":")))) if _WIDE else list(default)


SPACE = "Spaces-1"
ROUTE = "/api/{spaceId}/dora/metrics"
FAILURES = "/api/{spaceId}/failures"
NOW = datetime(2024, 3, 5, 12, 0, tzinfo=UTC)
METRICS = ("deployment_frequency", "lead_time_for_changes", "time_to_restore_service", "change_failure_rate")
EXTENSION = "rework_rate"
INTERVALS = ("daily", "monthly", "all")
TIERS = ("production", "staging", "testing", "development", "other")
# The oracle's own table of GitLab's guess (``Environment#guess_tier``) for the names used here.
ENVIRONMENTS = {
    "production": "production",
    "prd-eu": "production",
    "staging": "staging",
    "testing": "testing",
    "qa": "testing",
    "development": "development",
    "dev": "development",
    "sandbox": "other",
}
PROJECTS = ("shop", "cart", "search")
OFFSETS = (timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)), UTC)
TIER_SETS: tuple[tuple[str, ...], ...] = (
    (),  # none asked for: production
    ("staging",),
    ("testing", "development"),
    ("production", "other"),
    TIERS,
)


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


# --- calls ---------------------------------------------------------------------------------------


def _metrics(api: Api, space: str = SPACE, key: str = ADMIN_KEY, **query: str) -> HttpResult:
    return api.call("GET", ROUTE, key=key, path_params={"spaceId": space}, query=query)


def _values(found: HttpResult) -> list[Any]:
    assert found.status == 200, found.body
    return [row["value"] for row in found.body]


def _pending(found: HttpResult) -> int:
    return int(found.header("X-Dora-Pending") or 0)


def _failure(api: Api, body: dict[str, Any], space: str = SPACE, key: str = ADMIN_KEY) -> None:
    created = api.call("POST", FAILURES, key=key, path_params={"spaceId": space}, body=body)
    assert created.status in (200, 201), created.body


def _sha(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()


def _near_midnight(rng: random.Random, day: date) -> datetime:
    """An instant within 100 minutes of the UTC midnight that starts ``day``, in a random offset."""
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=rng.randrange(-100, 100))
    return moment.astimezone(rng.choice(OFFSETS))


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- the random history ----------------------------------------------------------------------------


def _send_history(api: Api, rng: random.Random) -> None:
    """Streams of several projects, environments (every tier) and tenants; their commits through
    ``/changes`` first, then their deployments in a shuffled order; then failure events."""
    streams: list[tuple[str, str, str | None]] = []
    for tier in TIERS:  # every tier has a stream, then a few more anywhere
        names = sorted(name for name, guessed in ENVIRONMENTS.items() if guessed == tier)
        streams.append((rng.choice(PROJECTS), rng.choice(names), rng.choice((None, None, "acme"))))
    for _ in range(rng.randrange(2, 6)):
        stream = (rng.choice(PROJECTS), rng.choice(sorted(ENVIRONMENTS)), rng.choice((None, None, "acme")))
        if stream not in streams:
            streams.append(stream)
    commits: list[dict[str, Any]] = []
    deployments: list[dict[str, Any]] = []
    for s, (project, environment, tenant) in enumerate(streams):
        branch = f"release/{environment}-{tenant or 'all'}"
        days = sorted(rng.sample(range(31), rng.randrange(2, 7)))
        for n, offset in enumerate(days):
            finished = _near_midnight(rng, date(2024, 1, 31) + timedelta(days=offset))
            body: dict[str, Any] = {
                "project": project,
                "environment": environment,
                "finished_at": finished.isoformat(),
                "started_at": (finished - timedelta(minutes=rng.randrange(1, 90))).isoformat(),
                "version": f"{s}.{n}",
                "state": rng.choice(("Success", "Success", "Success", "Failed", "TimedOut", "Canceled")),
                "id": f"dep-{s}-{n}",
            }
            if tenant:
                body["tenant"] = tenant
            if rng.random() < 0.85:  # else the release rule (METRICS §3) gives the lead time
                shas = [_sha(s, n, k) for k in range(rng.randrange(1, 4))]
                for k, sha in enumerate(shas):
                    stamp = finished - timedelta(hours=rng.randrange(1, 90), minutes=k)
                    commits.append(
                        {
                            "repository": f"acme/{project}",
                            "branch": branch,
                            "sha": sha,
                            "timestamp": stamp.isoformat(),
                        }
                    )
                body.update(commit_sha=shas[-1], repository=f"acme/{project}")
            deployments.append(body)
    sent = api.call(
        "POST", "/api/{spaceId}/changes", key=ADMIN_KEY, path_params={"spaceId": SPACE}, body={"commits": commits}
    )
    assert sent.status == 200, sent.body
    rng.shuffle(deployments)
    for body in deployments:
        create_deployment(api, **body)
    for n in range(rng.randrange(5, 10)):
        project, environment, _ = rng.choice(streams)
        if rng.random() < 0.2:  # an environment the project may have no stream in
            environment = rng.choice(sorted(ENVIRONMENTS))
        started = _near_midnight(rng, date(2024, 1, 31) + timedelta(days=rng.randrange(31)))
        failure: dict[str, Any] = {"id": f"fail-{n}", "environment": environment, "started_at": started.isoformat()}
        if rng.random() < 0.25:
            failure["projects"] = sorted({project, rng.choice(PROJECTS)})
        else:
            failure["project"] = project
        if rng.random() < 0.8:
            failure["finished_at"] = (
                (started + timedelta(minutes=rng.randrange(5, 3000))).astimezone(rng.choice(OFFSETS)).isoformat()
            )
        _failure(api, failure)


# --- the oracle (METRICS §9, from what the native API shows) ---------------------------------------


@dataclass(frozen=True)
class Shown:
    """A deployment as the native API shows it, with its figures."""

    stream: tuple[str, str, str | None, str]  # project, environment, tenant, channel
    day: date  # the UTC day of ``finished_at``
    completed: bool
    successful: bool
    lead: float | None
    rework: bool


@dataclass(frozen=True)
class Incident:
    """A failure event as the native API shows it."""

    projects: tuple[str, ...]
    environment: str
    started: date
    finished: date | None
    restore: float | None


def _shown(api: Api, space: str = SPACE, key: str = ADMIN_KEY) -> tuple[list[Shown], list[Incident]]:
    deployments: list[Shown] = []
    for item in list_all(api, space=space, key=key):
        one = read_deployment(api, item["id"], space=space, key=key)
        figures = one["figures"]
        assert figures is not None, one
        successful = one["state"] == "Success" and not one["had_guided_failure"]
        deployments.append(
            Shown(
                stream=(one["project"], one["environment"], one["tenant"], one["channel"]),
                day=_parse(one["finished_at"]).astimezone(UTC).date(),
                completed=one["state"] in ("Success", "Failed", "TimedOut"),
                successful=successful,
                lead=figures["lead_time_seconds"] if successful else None,
                rework=bool(figures["rework"]),
            )
        )
    incidents: list[Incident] = []
    for item in list_all(api, FAILURES, space=space, key=key):
        started = _parse(item["started_at"])
        finished = _parse(item["finished_at"]) if item["finished_at"] else None
        incidents.append(
            Incident(
                projects=tuple(item["projects"]),
                environment=item["environment"],
                started=started.astimezone(UTC).date(),
                finished=finished.astimezone(UTC).date() if finished else None,
                restore=(finished - started).total_seconds() if finished else None,
            )
        )
    return deployments, incidents


def tier(environment: str, production: frozenset[str]) -> str:
    """METRICS §9: the space's ``production_environments``, when set, are the production tier and no
    other environment is (a guessed production is ``other``); else GitLab's guess from the name."""
    guessed = ENVIRONMENTS[environment]
    if not production:
        return guessed
    if environment in production:
        return "production"
    return "other" if guessed == "production" else guessed


def oracle(
    metric: str,
    interval: str,
    start: date,
    end: date,
    tiers: Iterable[str],
    deployments: list[Shown],
    incidents: list[Incident],
    production: frozenset[str] = frozenset(),
) -> list[tuple[str | None, float | None]]:
    """METRICS §9 directly: the streams of the tiers (production when none), their (stream, day) rows
    and the failure rows of their (project, environment)s, per bucket."""
    wanted = set(tiers) or {"production"}
    chosen = [d for d in deployments if tier(d.stream[1], production) in wanted]
    pairs = {(d.stream[0], d.stream[1]) for d in chosen}
    rows: dict[tuple[tuple[str, str, str | None, str], date], list[Shown]] = defaultdict(list)
    for d in chosen:
        rows[(d.stream, d.day)].append(d)
    restores: dict[tuple[tuple[str, str], date], list[float]] = defaultdict(list)
    started: dict[date, int] = defaultdict(int)
    for incident in incidents:
        for project in incident.projects:
            if (project, incident.environment) not in pairs:
                continue
            started[incident.started] += 1
            if incident.finished is not None and incident.restore is not None:
                restores[((project, incident.environment), incident.finished)].append(incident.restore)
    answer: list[tuple[str | None, float | None]] = []
    for label, days in buckets(start, end, interval):
        inside = set(days)
        mine = [ds for (_, day), ds in rows.items() if day in inside]
        successful = sum(d.successful for ds in mine for d in ds)
        value: float | None
        if metric == "deployment_frequency":
            value = successful if interval == "daily" else successful / len(days)
        elif metric == "lead_time_for_changes":
            medians = [
                statistics.median(leads)
                for ds in mine
                if (leads := [d.lead for d in ds if d.successful and d.lead is not None])
            ]
            value = statistics.median(medians) if medians else None
        elif metric == "time_to_restore_service":
            medians = [statistics.median(v) for (_, day), v in restores.items() if day in inside]
            value = statistics.median(medians) if medians else None
        elif metric == "change_failure_rate":
            failed = sum(n for day, n in started.items() if day in inside)
            value = failed / max(successful, 1) if successful or failed else None
        else:
            completed = sum(d.completed for ds in mine for d in ds)
            value = sum(d.rework for ds in mine for d in ds) / completed if completed else None
        answer.append((label, value))
    return answer


def _same(found: HttpResult, expected: list[tuple[str | None, float | None]], what: object) -> None:
    assert found.status == 200, (what, found.body)
    assert [row["date"] for row in found.body] == [label for label, _ in expected], what
    for row, (_, wanted) in zip(found.body, expected, strict=True):
        if wanted is None:
            assert row["value"] is None, (what, row, found.body)
        else:
            assert row["value"] == pytest.approx(wanted, rel=1e-9, abs=1e-9), (what, row, found.body)


# --- 1. the oracle property ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", _seeds(3, 11))
def test_every_metric_interval_and_tier_set_equals_the_oracle(
    api: Api, clock: Clock, lambda_context: Any, seed: int
) -> None:
    rng = random.Random(seed)
    _send_history(api, rng)
    # Half the seeds list production_environments (names the history used): they are the production tier.
    used = sorted({d["environment"] for d in list_all(api)})
    production = frozenset(rng.sample(used, rng.choice((0, 0, 1, 2))))
    if production:
        changed = api.call(
            "PATCH",
            "/api/{spaceId}/settings",
            key=ADMIN_KEY,
            path_params={"spaceId": SPACE},
            body={"production_environments": sorted(production)},
        )
        assert changed.status == 200, changed.body
    clock.advance(SETTLE + timedelta(seconds=1))  # the tick comes after the index shows the writes
    scheduled_run(lambda_context)
    deployments, incidents = _shown(api)
    assert any(d.lead is not None for d in deployments), "no lead time: the history tests too little"
    assert {ENVIRONMENTS[d.stream[1]] for d in deployments} == set(TIERS)
    ranges = ((date(2024, 1, 29), date(2024, 3, 3)), (date(2024, 2, 10), date(2024, 2, 20)))
    for start, end in ranges:
        for metric in (*METRICS, EXTENSION):
            for interval in INTERVALS:
                for tiers in TIER_SETS:
                    query = {"metric": metric, "interval": interval, "start_date": str(start), "end_date": str(end)}
                    if tiers:
                        query["environment_tiers[]"] = ",".join(tiers)
                    found = _metrics(api, **query)
                    what = (seed, metric, interval, tiers, str(start), str(end), sorted(production))
                    _same(found, oracle(metric, interval, start, end, tiers, deployments, incidents, production), what)
                    assert found.header("X-Dora-Pending") == "0", what


# --- 2, 3. rollups that do not name the stream's pointer -------------------------------------------

DAYS = {"metric": "deployment_frequency", "start_date": "2024-03-01", "end_date": "2024-03-02"}


def _settle_and_run(clock: Clock, lambda_context: Any) -> None:
    clock.advance(SETTLE + timedelta(seconds=1))  # the marks settle: the tick clears them
    scheduled_run(lambda_context)
    clock.advance(SETTLE + timedelta(seconds=1))


def _stream(store: Any) -> tuple[str, dict[str, Any]]:
    """The one stream of the space: its key and its registration (the pointer), read strongly."""
    ((key, registration),) = store.metrics().streams(SPACE, consistent=True).items()
    return key, registration


def _two_generations(api: Api, store: Any, clock: Clock, lambda_context: Any) -> tuple[str, str, str]:
    """shop/production computed twice (a deployment on Mar 1, then one on Mar 2): the stream's key, its
    first generation and the pointer's (the second)."""
    create_deployment(api, finished_at="2024-03-01T10:00:00Z", version="1.0")
    _settle_and_run(clock, lambda_context)
    key, first = _stream(store)
    create_deployment(api, finished_at="2024-03-02T10:00:00Z", version="1.1")
    _settle_and_run(clock, lambda_context)
    _, second = _stream(store)
    assert first["generation"] != second["generation"]
    baseline = _metrics(api, **DAYS)
    assert (_values(baseline), _pending(baseline)) == ([1, 1], 0)
    return key, str(first["generation"]), str(second["generation"])


def test_a_replica_answering_a_rollups_previous_version_does_not_hide_the_stream(
    api: Api, store: Any, clock: Clock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 1: a read that refreshes nothing reads the rollups eventually consistently; a replica that
    has not applied the last recompute's put answers the item's previous version, whose generations do
    not name the pointer. Before 5bf4cb6 the stream was left out: [0, 0] with X-Dora-Pending 0."""
    create_deployment(api, finished_at="2024-03-01T10:00:00Z", version="1.0")
    _settle_and_run(clock, lambda_context)
    key, first = _stream(store)
    stale = store.rollups().deployments(SPACE, [2024], [key], consistent=True)  # the version a replica keeps
    assert [generations for _, _, generations in stale[key]] == [frozenset({first["generation"]})]
    create_deployment(api, finished_at="2024-03-02T10:00:00Z", version="1.1")
    _settle_and_run(clock, lambda_context)
    _, pointer = _stream(store)
    assert pointer["generation"] not in stale[key][0][2]
    original = RollupStore.deployments
    reads: list[bool] = []

    def replica(
        self: RollupStore, space_id: str, years: Iterable[int], streams: Iterable[str], *, consistent: bool = False
    ) -> dict[str, list[tuple[int, Any, frozenset[str]]]]:
        reads.append(consistent)
        if consistent:
            return original(self, space_id, years, streams, consistent=True)
        wanted, held = set(streams), set(years)
        return {k: [i for i in items if i[0] in held] for k, items in stale.items() if k in wanted}

    monkeypatch.setattr(RollupStore, "deployments", replica)
    found = _metrics(api, **DAYS)
    assert reads and reads[0] is False, "the read refreshed a stream: it read the rollups strongly"
    # Counted (5bf4cb6 reads those streams' rollups again, strongly), or at least said to be pending.
    assert _values(found) == [1, 1] or _pending(found) >= 1, (found.body, found.headers)


def test_a_losing_recomputes_rollups_over_the_winners_do_not_hide_the_stream(
    api: Api, store: Any, clock: Clock, lambda_context: Any
) -> None:
    """Defect 2: a recompute that lost the pointer to a concurrent one wrote its rollups after the
    winner's (for its own generation and the previous one): the pointer names neither. Before 5bf4cb6
    the stream counted nothing, with X-Dora-Pending 0; now the read says the stream is pending (the
    loser marks it again, and the next read or tick rewrites its rollups)."""
    key, previous, pointer = _two_generations(api, store, clock, lambda_context)
    rollups = store.rollups()
    current = rollups.deployments(SPACE, [2024], [key], consistent=True)[key]
    rollups.write(
        SPACE,
        key,
        {year: columns for year, columns, _ in current},
        None,
        generations=("loser-generation", previous),
        computed_at="2024-03-05T12:00:04.000Z",
    )
    assert pointer not in rollups.deployments(SPACE, [2024], [key], consistent=True)[key][0][2]
    found = _metrics(api, **DAYS)
    assert _values(found) == [1, 1] or _pending(found) >= 1, (found.body, found.headers)
    store.mark_streams_dirty(SPACE, [key], "2024-03-05T12:00:04.000Z")  # what the loser does next
    clock.advance(SETTLE + timedelta(seconds=1))
    again = _metrics(api, **DAYS)
    assert (_values(again), _pending(again)) == ([1, 1], 0)


def test_a_stream_both_marked_and_missing_its_rollups_counts_once_in_pending(
    api: Api, store: Any, clock: Clock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loser has marked the stream again and the read's refresh of it fails (the schedule will
    do it): one stream waits, so pending is 1. It counted the stream twice: once as marked, once as
    missing its rollups."""
    from dora_insights.logic import recompute

    key, previous, _ = _two_generations(api, store, clock, lambda_context)
    rollups = store.rollups()
    current = rollups.deployments(SPACE, [2024], [key], consistent=True)[key]
    columns = {year: cols for year, cols, _ in current}
    rollups.write(SPACE, key, columns, None, generations=("loser", previous), computed_at="2024-03-05T12:00:04.000Z")
    store.mark_streams_dirty(SPACE, [key], "2024-03-05T12:00:04.000Z")
    clock.advance(SETTLE + timedelta(seconds=1))

    def broken(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("this stream's recompute fails")

    monkeypatch.setattr(recompute, "recompute_stream", broken)
    found = _metrics(api, **DAYS)
    assert _pending(found) == 1, (found.body, found.headers)


# --- 4. environment tiers repeated -----------------------------------------------------------------


def test_tiers_repeated_25_times_answer_as_the_set(api: Api, clock: Clock) -> None:
    """Defect 3: 25 tier values (each of the 5 tiers 5 times) were a 400 'at most 20 items'; GitLab
    sets no bound on ``environment_tiers[]``, and a set repeated is the set."""
    for n, environment in enumerate(("production", "staging", "qa", "dev", "sandbox", "production")):
        create_deployment(api, environment=environment, finished_at=f"2024-03-01T1{n}:00:00Z", version=f"1.{n}")
    _failure(api, {"project": "shop", "environment": "qa", "started_at": "2024-03-01T20:00:00Z"})
    repeated = ",".join(TIERS * 5)
    for metric in ("deployment_frequency", "change_failure_rate"):
        once = _metrics(api, **{**DAYS, "metric": metric, "environment_tiers[]": ",".join(TIERS)})
        assert _values(once) == ([6, 0] if metric == "deployment_frequency" else [pytest.approx(1 / 6), None])
        for name in ("environment_tiers[]", "environment_tiers", "environment_tier"):
            found = _metrics(api, **{**DAYS, "metric": metric, name: repeated})
            assert (found.status, found.body) == (200, once.body), name
        both = _metrics(
            api, **{**DAYS, "metric": metric, "environment_tiers[]": repeated, "environment_tier": repeated}
        )
        assert (both.status, both.body) == (200, once.body)


# --- 5. edges --------------------------------------------------------------------------------------

RANGE_MESSAGE = "Date range must be shorter than 366 days."
ORDER_MESSAGE = "The start date must be earlier than the end date."


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"start_date": "2024-03-01", "end_date": "2024-03-01"}, ORDER_MESSAGE),
        ({"start_date": "2024-03-02", "end_date": "2024-03-01"}, ORDER_MESSAGE),
        ({"start_date": "2024-03-01", "end_date": "2023-03-01"}, ORDER_MESSAGE),
        ({"start_date": "2023-02-28", "end_date": "2024-03-01"}, RANGE_MESSAGE),
        ({"start_date": "2022-03-01", "end_date": "2024-03-01", "interval": "monthly"}, RANGE_MESSAGE),
        (
            {"metric": "lead_time"},
            "The metric must be one of deployment_frequency,lead_time_for_changes,"
            "time_to_restore_service,change_failure_rate,rework_rate.",
        ),
        ({"interval": "weekly"}, "The interval must be one of all,monthly,daily."),
        ({"interval": "DAILY"}, "The interval must be one of all,monthly,daily."),
        (
            {"environment_tiers[]": "production,prod"},
            "The environment tiers must be from production, staging, testing, development, other.",
        ),
        (
            {"environment_tier": "Production"},
            "The environment tiers must be from production, staging, testing, development, other.",
        ),
        ({"start_date": "2024-02-30"}, "start_date is invalid"),
    ],
)
def test_bad_requests_are_400_with_gitlabs_message(api: Api, clock: Clock, query: dict[str, str], message: str) -> None:
    found = _metrics(api, **{"metric": "deployment_frequency", **query})
    assert (found.status, found.body) == (400, {"message": message})


def test_the_range_limit_and_the_shortest_range(api: Api, clock: Clock) -> None:
    """Both ends included: 366 days apart (a leap year's whole year) is 367 daily rows; two days is the
    shortest range."""
    create_deployment(api, finished_at="2023-03-01T00:30:00+05:30", version="1.0")  # 2023-02-28 in UTC
    create_deployment(api, finished_at="2024-03-01T23:30:00-08:00", version="1.1")  # 2024-03-02 in UTC
    create_deployment(api, finished_at="2024-02-29T23:59:59Z", version="1.2")
    longest = _metrics(api, metric="deployment_frequency", start_date="2023-03-01", end_date="2024-03-01")
    assert len(_values(longest)) == 367
    assert (longest.body[0]["date"], longest.body[-1]["date"]) == ("2023-03-01", "2024-03-01")
    assert sum(_values(longest)) == 1  # only Feb 29: the others fall outside in UTC
    monthly = _metrics(
        api, metric="deployment_frequency", start_date="2023-03-01", end_date="2024-03-01", interval="monthly"
    )
    assert [row["date"] for row in monthly.body] == [
        f"{2023 + (m > 12)}-{(m - 1) % 12 + 1:02d}-01" for m in range(3, 16)
    ]
    assert monthly.body[-1]["value"] == 0.0 and monthly.body[-2]["value"] == pytest.approx(1 / 29)
    shortest = _metrics(api, metric="deployment_frequency", start_date="2024-03-01", end_date="2024-03-02")
    assert shortest.body == [{"date": "2024-03-01", "value": 0}, {"date": "2024-03-02", "value": 1}]
    every = _metrics(api, metric="deployment_frequency", start_date="2024-02-29", end_date="2024-03-02", interval="all")
    assert every.body == [{"date": None, "value": pytest.approx(2 / 3)}]


def test_another_spaces_data_is_never_counted(api: Api, clock: Clock, other_space: str, lambda_context: Any) -> None:
    """The same project and environment names in two spaces (their catalogue ids may coincide): each
    space's answer counts its own deployments and failure events only, before and after the tick."""
    create_deployment(
        api, finished_at="2024-03-01T10:00:00Z", version="1.0", commit_sha=_sha("a"), repository="acme/shop"
    )
    for n in range(3):
        create_deployment(
            api, space=OTHER_SPACE, key=OTHER_KEY, finished_at=f"2024-03-01T1{n}:30:00Z", version=f"2.{n}"
        )
    _failure(
        api,
        {
            "project": "shop",
            "environment": "production",
            "started_at": "2024-03-01T20:00:00Z",
            "finished_at": "2024-03-01T21:00:00Z",
        },
        space=OTHER_SPACE,
        key=OTHER_KEY,
    )
    expected = {
        SPACE: {
            "deployment_frequency": [1, 0],
            "change_failure_rate": [0.0, None],
            "time_to_restore_service": [None, None],
        },
        OTHER_SPACE: {
            "deployment_frequency": [3, 0],
            "change_failure_rate": [pytest.approx(1 / 3), None],
            "time_to_restore_service": [3600.0, None],
        },
    }
    keys = {SPACE: ADMIN_KEY, OTHER_SPACE: OTHER_KEY}
    for tick in (False, True):
        if tick:
            _settle_and_run(clock, lambda_context)
        for space, answers in expected.items():
            for metric, values in answers.items():
                found = _metrics(api, space=space, key=keys[space], **{**DAYS, "metric": metric})
                assert _values(found) == values, (tick, space, metric)
    across = _metrics(api, space=OTHER_SPACE, key=ADMIN_KEY, **DAYS)
    assert across.status == 404 and set(across.body) == {"message"}, across.body
