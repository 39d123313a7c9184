"""Space settings (issue 16 item 4): ``GET/PATCH /api/{spaceId}/settings`` through real HTTP API
events against moto: the failure window reaches the recompute (every stream marked dirty), the
default environment, production environments and default benchmark reach ``/summary``; PATCH
semantics, optimistic concurrency and the admin scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dora_insights.domain.tiers import change_failure_rate_tier
from dora_insights.logic.freshness import SETTLE
from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.support.native import create_deployment
from tests.support.recompute import scheduled_run

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
SPACE = "Spaces-1"
SETTINGS = "/api/{spaceId}/settings"
RANGE = {"from": "2024-03-01T00:00:00Z", "to": "2024-04-01T00:00:00Z"}


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _get(api: Api, space: str = SPACE, key: str = ADMIN_KEY) -> HttpResult:
    return api.call("GET", SETTINGS, path_params={"spaceId": space}, key=key)


def _patch(
    api: Api, body: Any, space: str = SPACE, key: str = ADMIN_KEY, headers: dict[str, str] | None = None
) -> HttpResult:
    return api.call("PATCH", SETTINGS, path_params={"spaceId": space}, body=body, key=key, headers=headers)


def _changed(api: Api, body: Any, **kwargs: Any) -> dict[str, Any]:
    result = _patch(api, body, **kwargs)
    assert result.status == 200, result.body
    return result.body  # type: ignore[no-any-return]


def _deploy(api: Api, environment: str, finished_at: str, **fields: Any) -> dict[str, Any]:
    return create_deployment(api, environment=environment, finished_at=finished_at, **fields)


def _fail(api: Api, environment: str, started_at: str, finished_at: str) -> None:
    body = {"project": "shop", "environment": environment, "started_at": started_at, "finished_at": finished_at}
    created = api.call("POST", "/api/{spaceId}/failures", path_params={"spaceId": SPACE}, body=body, key=ADMIN_KEY)
    assert created.status == 201, created.body


def _summary(api: Api, **query: str) -> dict[str, Any]:
    found = api.call(
        "GET", "/api/{spaceId}/summary", path_params={"spaceId": SPACE}, query={**RANGE, **query}, key=ADMIN_KEY
    )
    assert found.status == 200, found.body
    return found.body  # type: ignore[no-any-return]


def _schedule(lambda_context: Any) -> dict[str, Any]:
    return scheduled_run(lambda_context)


def _key(api: Api, space: str, scopes: list[str]) -> str:
    created = api.call(
        "POST",
        "/api/{spaceId}/apikeys",
        path_params={"spaceId": space},
        body={"name": "k", "scopes": scopes},
        key=ADMIN_KEY,
    )
    assert created.status == 201, created.body
    return str(created.body["key"])


def _new_space(api: Api) -> str:
    created = api.call("POST", "/api/spaces", body={"name": "Other"}, key=ADMIN_KEY)
    assert created.status == 201, created.body
    return str(created.body["id"])


@pytest.fixture
def environments(api: Api, clock: Clock) -> None:
    """Two deployments of shop to production, one to staging, and a production failure naming no
    cause that starts 30 hours after the last production deployment (outside the default 24 h window)."""
    _deploy(api, "production", "2024-03-02T00:00:00Z", version="1.0")
    _deploy(api, "production", "2024-03-04T00:00:00Z", version="1.1")
    _deploy(api, "staging", "2024-03-03T00:00:00Z", version="1.1")
    _fail(api, "production", "2024-03-05T06:00:00Z", "2024-03-05T07:00:00Z")


# --- GET ---------------------------------------------------------------------------------------
def test_a_new_space_has_the_service_defaults(api: Api) -> None:
    found = _get(api)
    assert found.status == 200, found.body
    assert found.body == {
        "space_id": SPACE,
        "revision": 0,
        "failure_window_hours": 24.0,
        "default_environment": None,
        "default_benchmark": "2023",
        "production_environments": [],
        "updated_at": None,
        "updated_by": None,
    }
    assert found.header("ETag") == '"0"'


def test_a_change_is_kept_with_who_and_when(api: Api, environments: None, clock: Clock) -> None:
    clock.advance(timedelta(minutes=5))
    changed = _changed(
        api, {"failure_window_hours": 36.5, "default_benchmark": "2024", "production_environments": ["Production"]}
    )
    found = _get(api)
    assert found.body == changed
    assert changed == {
        "space_id": SPACE,
        "revision": 1,
        "failure_window_hours": 36.5,
        "default_environment": None,
        "default_benchmark": "2024",
        "production_environments": ["production"],  # the catalogue's own name
        "updated_at": "2024-03-10T12:05:00.000Z",
        "updated_by": "test admin",
    }
    assert found.header("ETag") == '"1"'


# --- PATCH semantics ---------------------------------------------------------------------------
def test_only_the_fields_given_change_and_null_resets_to_the_default(api: Api, environments: None) -> None:
    _changed(api, {"failure_window_hours": 48, "default_benchmark": "2021", "default_environment": "staging"})
    after = _changed(api, {"default_benchmark": None, "production_environments": ["production", "Environments-1"]})
    assert (after["failure_window_hours"], after["default_environment"]) == (48, "staging")
    assert (after["default_benchmark"], after["production_environments"]) == ("2023", ["production"])
    reset = _changed(api, {"failure_window_hours": None, "default_environment": None, "production_environments": []})
    assert (reset["failure_window_hours"], reset["default_environment"], reset["production_environments"]) == (
        24,
        None,
        [],
    )
    assert reset["revision"] == 3


def test_a_patch_that_changes_nothing_keeps_the_revision(api: Api) -> None:
    assert _changed(api, {})["revision"] == 0
    assert _changed(api, {"failure_window_hours": 24, "default_benchmark": None})["revision"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"failure_window_hours": 0}, "failure_window_hours"),
        ({"failure_window_hours": -3}, "failure_window_hours"),
        ({"failure_window_hours": 1e-300}, "failure_window_hours"),
        ({"failure_window_hours": 721}, "failure_window_hours"),
        ({"failure_window_hours": "24"}, "failure_window_hours"),
        ({"failure_window_hours": True}, "failure_window_hours"),
        ({"default_benchmark": "1999"}, "default_benchmark"),
        ({"default_environment": "nowhere"}, "default_environment"),
        ({"default_environment": ""}, "default_environment"),
        ({"default_environment": "Environments-99"}, "default_environment"),
        ({"production_environments": ["production", "nowhere"]}, "production_environments[1]"),
        ({"production_environments": "production"}, "production_environments"),
        ({"revision": -1}, "revision"),
        ({"failure_windw_hours": 12}, "failure_windw_hours"),
    ],
)
def test_bad_values_are_refused_in_the_native_shape(api: Api, environments: None, body: Any, field: str) -> None:
    result = _patch(api, body)
    assert result.status == 400, result.body
    assert set(result.body) == {"message", "errors"}
    assert result.body["errors"][0].startswith(f"{field}: "), result.body
    assert _get(api).body["revision"] == 0  # nothing was written


def test_an_unknown_environment_names_the_known_ones(api: Api, environments: None) -> None:
    result = _patch(api, {"default_environment": "prod"})
    assert result.status == 400
    assert "no environment 'prod'" in result.body["message"]
    assert "known: production, staging" in result.body["message"]


def test_a_body_that_is_not_an_object_is_refused(api: Api) -> None:
    assert _patch(api, ["failure_window_hours"]).status == 400


# --- optimistic concurrency ------------------------------------------------------------------
def test_a_stale_revision_answers_412(api: Api) -> None:
    assert _changed(api, {"revision": 0, "failure_window_hours": 12})["revision"] == 1
    stale = _patch(api, {"revision": 0, "failure_window_hours": 6})
    assert stale.status == 412, stale.body
    assert set(stale.body) == {"message", "errors"}
    assert "revision 0" in stale.body["message"]
    assert _get(api).body["failure_window_hours"] == 12


def test_if_match_carries_the_revision_too(api: Api) -> None:
    etag = _get(api).header("ETag")
    assert etag is not None
    changed = _patch(api, {"default_benchmark": "2024"}, headers={"If-Match": etag})
    assert changed.status == 200, changed.body
    assert _patch(api, {"default_benchmark": "2021"}, headers={"If-Match": etag}).status == 412
    assert _patch(api, {"default_benchmark": "2021"}, headers={"If-Match": 'W/"1"'}).status == 200
    assert _patch(api, {"default_benchmark": "2023"}, headers={"If-Match": "*"}).status == 200
    assert _patch(api, {"default_benchmark": "2023"}, headers={"If-Match": "yesterday"}).status == 400
    disagree = _patch(api, {"revision": 3, "default_benchmark": "2024"}, headers={"If-Match": '"2"'})
    assert disagree.status == 400, disagree.body


# --- scope and tenancy ------------------------------------------------------------------------
def test_a_key_without_the_admin_scope_gets_403(api: Api) -> None:
    key = _key(api, SPACE, ["deployments:read", "deployments:write", "reports:write"])
    assert _get(api, key=key).status == 403
    assert _patch(api, {"failure_window_hours": 12}, key=key).status == 403
    assert _get(api).body["revision"] == 0


def test_another_space_is_404(api: Api) -> None:
    other = _new_space(api)
    outsider = _key(api, other, ["deployments:read", "deployments:write"])
    assert _get(api, key=outsider).status == 404
    assert _patch(api, {"failure_window_hours": 12}, key=outsider).status == 404
    assert _get(api, space="Spaces-99").status == 404
    missing = _patch(api, {"failure_window_hours": 12}, space="Spaces-99")
    assert missing.status == 404 and set(missing.body) == {"message", "errors"}


def test_an_admin_key_administers_any_space(api: Api) -> None:
    other = _new_space(api)
    assert _changed(api, {"failure_window_hours": 12}, space=other)["space_id"] == other
    assert _get(api).body["failure_window_hours"] == 24  # its own space is untouched


# --- the failure window reaches the recompute ---------------------------------------------------
def test_a_window_change_marks_every_stream_and_the_recompute_counts_the_failure(
    api: Api, store: Any, environments: None, clock: Clock, lambda_context: Any
) -> None:
    clock.advance(SETTLE)  # each tick comes after the index shows the writes before it
    _schedule(lambda_context)
    assert store.list_dirty_streams(SPACE) == []
    before = _summary(api)["change_failure_rate"]
    assert (before["change_failures"], before["deployments"]) == (0, 3)  # 30 h after: outside 24 h

    clock.advance(timedelta(minutes=1))
    _changed(api, {"failure_window_hours": 36})
    streams = set(store.metrics().streams(SPACE))
    assert len(streams) == 2  # production and staging
    assert {m["stream"] for m in store.list_dirty_streams(SPACE)} == streams

    clock.advance(SETTLE)
    run = _schedule(lambda_context)
    assert run["streams_processed"] == 2
    assert store.list_dirty_streams(SPACE) == []
    after = _summary(api)["change_failure_rate"]
    assert (after["change_failures"], after["deployments"]) == (1, 3)  # rule 5 now charges 1.1 in production

    clock.advance(timedelta(minutes=1))
    _changed(api, {"failure_window_hours": None})  # back to 24 h
    clock.advance(SETTLE)
    _schedule(lambda_context)
    assert _summary(api)["change_failure_rate"]["change_failures"] == 0


def test_a_summary_read_brings_the_new_window_in_at_once(api: Api, environments: None, clock: Clock) -> None:
    assert _summary(api)["change_failure_rate"]["change_failures"] == 0
    clock.advance(timedelta(minutes=1))
    _changed(api, {"failure_window_hours": 48})
    found = _summary(api)
    assert (found["change_failure_rate"]["change_failures"], found["pending"]) == (1, 0)


def test_other_settings_mark_nothing(
    api: Api, store: Any, environments: None, clock: Clock, lambda_context: Any
) -> None:
    clock.advance(SETTLE)  # the tick comes after the index shows the writes
    _schedule(lambda_context)
    clock.advance(timedelta(minutes=1))
    _changed(
        api,
        {"default_benchmark": "2024", "default_environment": "staging", "production_environments": ["production"]},
    )
    assert store.list_dirty_streams(SPACE) == []


# --- /summary reads the settings ----------------------------------------------------------------
def test_production_environments_narrow_the_summary(api: Api, environments: None) -> None:
    everything = _summary(api)
    assert everything["deployments"] == 3
    assert everything["environment_scope"] == {"source": "all", "environments": []}

    _changed(api, {"production_environments": ["production"]})
    production = _summary(api)
    assert production["deployments"] == 2
    assert production["time_to_restore"]["count"] == 1  # the production failure still counts
    assert production["environment_scope"] == {"source": "production_environments", "environments": ["production"]}

    _changed(api, {"production_environments": ["staging"]})
    staging = _summary(api)
    assert (staging["deployments"], staging["time_to_restore"]["count"]) == (1, 0)


def test_the_default_environment_comes_before_production_environments(api: Api, environments: None) -> None:
    _changed(api, {"production_environments": ["production"], "default_environment": "STAGING"})
    found = _summary(api)
    assert found["deployments"] == 1
    assert found["environment_scope"] == {"source": "default_environment", "environments": ["staging"]}


def test_an_explicit_environment_comes_before_every_setting(api: Api, environments: None) -> None:
    _changed(api, {"production_environments": ["staging"], "default_environment": "staging"})
    found = _summary(api, environment="production")
    assert found["deployments"] == 2
    assert found["environment_scope"] == {"source": "parameter", "environments": ["production"]}


def test_the_default_benchmark_grades_the_summary(api: Api, clock: Clock) -> None:
    # one deployment failure in five: 20 %, Medium by the 2023 table and High by 2024's
    for day in range(2, 7):
        _deploy(api, "production", f"2024-03-0{day}T00:00:00Z", state="Failed" if day == 4 else "Success")
    assert change_failure_rate_tier(0.2, "2023") != change_failure_rate_tier(0.2, "2024")
    before = _summary(api)
    assert (before["benchmark"], before["change_failure_rate"]["rate"]) == ("2023", 0.2)
    assert before["change_failure_rate"]["tier"] == change_failure_rate_tier(0.2, "2023").value

    _changed(api, {"default_benchmark": "2024"})
    after = _summary(api)
    assert after["benchmark"] == "2024"
    assert after["change_failure_rate"]["tier"] == change_failure_rate_tier(0.2, "2024").value
    assert _summary(api, benchmark="2023")["change_failure_rate"]["tier"] == before["change_failure_rate"]["tier"]


def test_a_space_with_many_streams_is_marked_100_to_a_transaction(
    api: Api, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.dal.metrics import MetricsStore
    from dora_insights.dal.store import Store

    streams = [f"Projects-{n}/Channels-1/Environments-1/-" for n in range(250)]
    monkeypatch.setattr(MetricsStore, "streams", lambda self, space_id, **_: {s: {"stream": s} for s in streams})
    sizes: list[int] = []
    call = Store.call

    def counted(self: Store, operation: str, **kwargs: Any) -> Any:
        if operation == "transact_write_items":
            sizes.append(len(kwargs["TransactItems"]))
        return call(self, operation, **kwargs)

    monkeypatch.setattr(Store, "call", counted)
    _changed(api, {"failure_window_hours": 12})
    assert sizes == [100, 100, 51]  # the settings with 99 marks, then the other 151
    assert {m["stream"] for m in store.list_dirty_streams(SPACE)} == set(streams)
    assert _get(api).body["revision"] == 1
    assert store.get_space(SPACE, consistent=True).settings.marks_owed is False
