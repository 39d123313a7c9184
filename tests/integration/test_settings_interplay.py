"""A space's settings (``GET/PATCH /api/{spaceId}/settings``) in interplay with the environment
catalogue and the reads that honour them (``/summary``, ``/dora/metrics``, Octopus reports), and with the
recompute (METRICS §2 rule 5). Each test asserts what API.md / METRICS.md say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dora_insights.logic.freshness import SETTLE
from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.support.native import as_client, ok
from tests.support.recompute import scheduled_run

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
SPACE = "Spaces-1"
SETTINGS = "/api/{spaceId}/settings"
SUMMARY = "/api/{spaceId}/summary"
DEPLOYMENTS = "/api/{spaceId}/deployments"
FAILURES = "/api/{spaceId}/failures"
REPORTS = "/api/{spaceId}/insights/reports"
REPORT_METRICS = REPORTS + "/{reportId}/metrics"
RANGE = {"from": "2024-03-01T00:00:00Z", "to": "2024-04-01T00:00:00Z"}


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _patch(api: Api, body: Any, *, space: str = SPACE, headers: dict[str, str] | None = None) -> HttpResult:
    return as_client(api, "PATCH", SETTINGS, space=space, body=body, headers=headers)


def _get(api: Api, *, space: str = SPACE) -> dict[str, Any]:
    return ok(as_client(api, "GET", SETTINGS, space=space))  # type: ignore[no-any-return]


def _deploy(
    api: Api, environment: str, finished_at: str, *, space: str = SPACE, key: str = ADMIN_KEY, **fields: Any
) -> dict[str, Any]:
    body = {"project": "shop", "environment": environment, "finished_at": finished_at, **fields}
    return ok(as_client(api, "POST", DEPLOYMENTS, space=space, key=key, body=body), 201)  # type: ignore[no-any-return]


def _fail(api: Api, environment: str, started_at: str, finished_at: str, *, space: str = SPACE) -> None:
    body = {"project": "shop", "environment": environment, "started_at": started_at, "finished_at": finished_at}
    ok(as_client(api, "POST", FAILURES, space=space, body=body), 201)


def _summary(api: Api, *, space: str = SPACE, **query: str) -> dict[str, Any]:
    return ok(as_client(api, "GET", SUMMARY, space=space, query={**RANGE, **query}))  # type: ignore[no-any-return]


def _tick(clock: Clock, lambda_context: Any) -> dict[str, Any]:
    clock.advance(SETTLE + timedelta(seconds=1))
    run = scheduled_run(lambda_context)
    clock.advance(timedelta(seconds=1))
    return run


def _numbers(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("as_of", "pending", "environment_scope")}


@pytest.fixture
def history(api: Api, clock: Clock) -> None:
    """shop: production 03-02 and 03-04, staging 03-03; a production failure 30 h after the last
    production deployment (outside 24 h) and a staging failure 2 h after the staging one."""
    _deploy(api, "production", "2024-03-02T00:00:00Z", version="1.0")
    _deploy(api, "production", "2024-03-04T00:00:00Z", version="1.1")
    _deploy(api, "staging", "2024-03-03T00:00:00Z", version="1.1")
    _fail(api, "production", "2024-03-05T06:00:00Z", "2024-03-05T07:00:00Z")
    _fail(api, "staging", "2024-03-03T02:00:00Z", "2024-03-03T04:00:00Z")


# --- defects ------------------------------------------------------------------------------------
def test_an_environment_registered_a_moment_ago_can_be_named_in_the_settings(
    api: Api, history: None, replica_lag: Any
) -> None:
    """API.md Consistency ("read your writes, by id": a catalogue entity, settings) and settings ("a
    catalogue environment's name, any case, or id"): a client that deploys to a new environment and then
    makes it the default must not get "no environment 'eu-prod' in this space". logic/settings.py
    ``_environments`` lists the catalogue with an eventually consistent Query, which may not show the
    environment the deployment registered a moment ago (DESIGN §6)."""
    replica_lag.on()
    _deploy(api, "eu-prod", "2024-03-05T00:00:00Z")
    changed = _patch(api, {"default_environment": "eu-prod", "production_environments": ["EU-PROD"]})
    assert changed.status == 200, (changed.body, replica_lag.hidden)
    assert (changed.body["default_environment"], changed.body["production_environments"]) == ("eu-prod", ["eu-prod"])


def test_a_default_environment_shaped_as_an_id_is_the_id_as_for_the_environment_parameter(
    api: Api, history: None
) -> None:
    """API.md: a value shaped as an id of its kind (``Environments-9``) "is the id, never an entity whose
    name looks like one"; ``default_environment`` is "the environment /summary counts when the request
    names none". An environment *named* ``Environments-9`` (its id is Environments-3): ``/summary?
    environment=Environments-9`` counts nothing (no such id), but PATCH ``default_environment:
    "Environments-9"`` is accepted and resolved by name (logic/settings.py ``_find`` falls back to the
    casefolded name after the id lookup misses), so the same value counts another environment once it is
    the default. It should be a 400 naming the field, as for any environment the space does not have."""
    _deploy(api, "Environments-9", "2024-03-06T00:00:00Z")
    explicit = _summary(api, environment="Environments-9")
    assert explicit["deployments"] == 0  # the id-shaped parameter is the id: no such environment
    changed = _patch(api, {"default_environment": "Environments-9"})
    if changed.status == 200:  # if accepted, it must at least count what the parameter counts
        assert _numbers(_summary(api)) == _numbers(explicit)
    else:
        assert changed.status == 400 and "default_environment" in changed.body["message"], changed.body
        assert _get(api)["revision"] == 0


def test_a_read_after_a_window_change_cut_short_does_not_answer_pending_0_with_the_old_window(
    api: Api, clock: Clock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window change over more streams than one transaction holds (99 marks go with the settings; the
    constant is lowered to 1 here so that 3 streams suffice) whose later marks are refused (503
    write_contended). The settings now answer the new window (revision 1), and ``marks_owed`` records
    the streams not marked. METRICS §8: ``pending`` "0 means the answer is current". But /summary's read
    refreshes only marked streams: it answers the one marked stream by 48 h and the two others by the
    old 24 h with ``pending: 0`` (1 change failure instead of 3), until the next scheduled run pays the
    debt (logic/recompute.py ``_work_space``); a read never looks at ``marks_owed`` (logic/freshness.py)."""
    from dora_insights.dal.store import Store
    from dora_insights.errors import WriteContendedError
    from dora_insights.logic import settings as settings_logic

    for n in range(3):
        project = f"p{n}"
        body = {"project": project, "environment": "production", "finished_at": "2024-03-04T00:00:00Z"}
        ok(as_client(api, "POST", DEPLOYMENTS, body=body), 201)
        failure = {
            "project": project,
            "environment": "production",
            "started_at": "2024-03-05T06:00:00Z",  # 30 h after: outside 24 h, inside 48 h
            "finished_at": "2024-03-05T07:00:00Z",
        }
        ok(as_client(api, "POST", FAILURES, body=failure), 201)
    _tick(clock, lambda_context)
    assert _summary(api)["change_failure_rate"]["change_failures"] == 0
    monkeypatch.setattr(settings_logic, "_MARKS_WITH_SETTINGS", 1)

    def contended(self: Any, *_: Any, **__: Any) -> None:
        raise WriteContendedError("the marks could not be written now; retry the request")

    with monkeypatch.context() as patched:
        patched.setattr(Store, "mark_streams_dirty", contended)
        cut = _patch(api, {"failure_window_hours": 48})
    assert cut.status == 503, cut.body
    assert _get(api)["failure_window_hours"] == 48  # the settings hold the change
    clock.advance(SETTLE + timedelta(seconds=1))
    found = _summary(api)
    assert (found["change_failure_rate"]["change_failures"], found["pending"]) in ((3, 0), (1, 2)), found


# --- verified behaviour --------------------------------------------------------------------------
def test_summary_with_a_default_environment_equals_the_explicit_environment(api: Api, history: None) -> None:
    explicit = _summary(api, environment="production")
    ok(_patch(api, {"default_environment": "PRODUCTION"}))
    by_default = _summary(api)
    assert by_default["environment_scope"] == {"source": "default_environment", "environments": ["production"]}
    assert _numbers(by_default) == _numbers(explicit)
    assert by_default["time_to_restore"]["count"] == 1  # the production failure, not staging's


def test_summary_with_production_environments_equals_the_explicit_environment(api: Api, history: None) -> None:
    explicit = _summary(api, environment="staging", benchmark="2021")
    ok(_patch(api, {"production_environments": ["Environments-2"], "default_benchmark": "2021"}))
    by_settings = _summary(api)
    assert by_settings["environment_scope"] == {"source": "production_environments", "environments": ["staging"]}
    assert _numbers(by_settings) == _numbers(explicit)


def test_two_changes_sent_with_the_same_revision_one_is_412(
    api: Api, history: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second change reads revision 0, then the first lands before its write: 412, the first kept."""
    from dora_insights.dal.store import Store

    save = Store.save_space_settings
    inner: list[HttpResult] = []
    started: list[bool] = []

    def racing(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not started:
            started.append(True)
            inner.append(_patch(api, {"revision": 0, "default_benchmark": "2021"}))
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Store, "save_space_settings", racing)
    outer = _patch(api, {"default_benchmark": "2024"}, headers={"If-Match": '"0"'})
    assert inner[0].status == 200 and outer.status == 412, (inner[0].body, outer.body)
    assert (_get(api)["default_benchmark"], _get(api)["revision"]) == ("2021", 1)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"failure_window_hours": NaN, "default_benchmark": "2024"}', "failure_window_hours"),
        ('{"failure_window_hours": -1, "default_benchmark": "2024"}', "failure_window_hours"),
        ('{"failure_window_hours": 1e400, "default_benchmark": "2024"}', "failure_window_hours"),
        ('{"failure_window_hours": 0.09, "default_benchmark": "2024"}', "failure_window_hours"),
        ('{"failure_window_hours": 48, "default_benchmark": "2025"}', "default_benchmark"),
        (
            '{"failure_window_hours": 48, "production_environments": ["production", "nope"]}',
            "production_environments[1]",
        ),
        ('{"failure_window_hours": 48, "default_environment": "nope"}', "default_environment"),
        ('{"failure_window_hours": 48, "colour": "red"}', "colour"),
    ],
)
def test_a_bad_value_is_400_naming_it_and_writes_nothing(
    api: Api, history: None, store: Any, raw: str, field: str
) -> None:
    before, marks = _get(api), store.list_dirty_streams(SPACE)
    refused = as_client(api, "PATCH", SETTINGS, raw_body=raw)
    assert refused.status == 400 and field in refused.body["message"], refused.body
    assert _get(api) == before
    assert store.list_dirty_streams(SPACE) == marks


def test_a_thousand_production_environments_is_400(api: Api, history: None) -> None:
    refused = _patch(api, {"production_environments": [f"env-{n}" for n in range(1000)]})
    assert refused.status == 400 and "production_environments" in refused.body["message"], refused.body
    assert _get(api)["revision"] == 0


def test_a_window_change_reaches_an_octopus_report_by_a_read_and_by_the_scheduled_run(
    api: Api, history: None, clock: Clock, lambda_context: Any
) -> None:
    from tests.support.insights import create_report, report_metrics

    def failures_by_environment() -> tuple[dict[str, int], str | None]:
        got = report_metrics(api, report, timeRange="LastMonth", granularity="Monthly", split="Environment")
        counted = {
            s["Name"]: sum(i["ChangeFailureRate"]["ChangeFailures"] for i in s["Intervals"]) for s in got.body["Series"]
        }
        return counted, got.header("X-Dora-Pending")

    report = create_report(api)
    _tick(clock, lambda_context)
    assert failures_by_environment() == ({"production": 0, "staging": 1}, "0")
    clock.advance(timedelta(minutes=1))
    ok(_patch(api, {"failure_window_hours": 48}))
    assert failures_by_environment() == ({"production": 1, "staging": 1}, "0")  # the read's refresh
    clock.advance(timedelta(minutes=1))
    ok(_patch(api, {"failure_window_hours": 0.5}))
    _tick(clock, lambda_context)
    assert failures_by_environment() == ({"production": 0, "staging": 0}, "0")  # the scheduled run


def test_a_window_change_racing_the_scheduled_run_ends_counted_by_the_new_window(
    api: Api, history: None, clock: Clock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The change lands after the run read the old window and computed one stream."""
    from dora_insights.logic import recompute

    real = recompute.recompute_stream
    changed: list[int] = []

    def racing(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if not changed:
            changed.append(_patch(api, {"failure_window_hours": 48}).status)
        return result

    monkeypatch.setattr(recompute, "recompute_stream", racing)
    clock.advance(timedelta(minutes=1))
    _tick(clock, lambda_context)
    monkeypatch.setattr(recompute, "recompute_stream", real)
    assert changed == [200]
    _tick(clock, lambda_context)
    found = _summary(api)
    assert (found["change_failure_rate"]["change_failures"], found["pending"]) == (2, 0)


def test_a_window_change_reaches_every_stream_of_a_split_space(api: Api, clock: Clock, lambda_context: Any) -> None:
    """More dirty streams than one recompute item takes (25): the per-group items use the new window too."""
    for n in range(30):
        body = {"project": f"p{n:02d}", "environment": "production", "finished_at": "2024-03-04T00:00:00Z"}
        ok(as_client(api, "POST", DEPLOYMENTS, body=body), 201)
    failure = {
        "projects": [f"p{n:02d}" for n in range(30)],
        "environment": "production",
        "started_at": "2024-03-05T06:00:00Z",
        "finished_at": "2024-03-05T07:00:00Z",
    }
    made = as_client(api, "POST", FAILURES, body=failure)
    if made.status != 201:  # one event per project when a failure names only one
        for n in range(30):
            one = {k: v for k, v in failure.items() if k != "projects"} | {"project": f"p{n:02d}"}
            ok(as_client(api, "POST", FAILURES, body=one), 201)
    _tick(clock, lambda_context)
    assert _summary(api)["change_failure_rate"]["change_failures"] == 0
    clock.advance(timedelta(minutes=1))
    ok(_patch(api, {"failure_window_hours": 36}))
    _tick(clock, lambda_context)
    _tick(clock, lambda_context)
    found = _summary(api)
    assert (found["change_failure_rate"]["change_failures"], found["pending"]) == (30, 0)


def test_another_spaces_settings_touch_nothing_here(
    api: Api, history: None, other_space: str, store: Any, clock: Clock, lambda_context: Any
) -> None:
    from tests.support.fixtures import OTHER_KEY

    _deploy(api, "staging", "2024-03-03T00:00:00Z", space=other_space, key=OTHER_KEY)
    _tick(clock, lambda_context)
    mine = _summary(api)
    changed = as_client(
        api,
        "PATCH",
        SETTINGS,
        space=other_space,
        key=OTHER_KEY,
        body={"failure_window_hours": 48, "default_environment": "Environments-1", "default_benchmark": "2021"},
    )
    assert changed.status == 200, changed.body
    assert changed.body["default_environment"] == "staging"  # its own Environments-1
    assert store.list_dirty_streams(SPACE) == []
    assert _get(api)["revision"] == 0
    assert _summary(api) == mine


def test_dora_metrics_production_tier_follows_production_environments(api: Api, history: None) -> None:
    """METRICS §9: listed environments are ``production`` and no other is (a guessed production becomes
    ``other``); a listed environment counts as the explicit ``environment=`` does."""

    def value(**query: str) -> Any:
        q = {"metric": "deployment_frequency", "start_date": "2024-03-01", "end_date": "2024-03-08", "interval": "all"}
        return ok(as_client(api, "GET", "/api/{spaceId}/dora/metrics", query={**q, **query}))[0]["value"]

    _deploy(api, "live-eu", "2024-03-05T00:00:00Z")
    assert (value(), value(environment_tiers="staging"), value(environment_tiers="other")) == (3 / 8, 1 / 8, 0)
    ok(_patch(api, {"production_environments": ["staging"]}))
    assert value() == value(environment="staging") == 1 / 8
    assert (value(environment_tiers="staging"), value(environment_tiers="other")) == (0, 3 / 8)
