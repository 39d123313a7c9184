"""No tenant stalls the scheduled work of another: failures are isolated, counted and quarantined,
each space is its own work item, and the health route shows it all. Through the schedule's real
event shape and the worker's SQS batches (tests/support/recompute.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dora_insights.logic.freshness import SETTLE
from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.emf import emitted_metrics
from tests.support.native import create_deployment
from tests.support.recompute import scheduled_run

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
SP = {"spaceId": "Spaces-1"}
# (space, stream) pairs whose recompute fails, and every recompute attempt as such a pair
Breaking = tuple[set[tuple[str, str]], list[tuple[str, str]]]


@pytest.fixture
def clock(clock: Clock) -> Clock:
    """Every function's clock, from this module's NOW."""
    clock.now = NOW
    return clock


@pytest.fixture
def spaces(api: Api, store: Any) -> dict[str, str]:
    """Spaces-1 (admin key), Spaces-2 and Spaces-3, each with a key that may write and read deployments."""
    from dora_insights.logic import admin

    keys = {"Spaces-1": ADMIN_KEY}
    for space_id in ("Spaces-2", "Spaces-3"):
        admin.ensure_space(store, space_id, space_id, NOW)
        _, keys[space_id] = admin.create_api_key(store, space_id, "ci", ("deployments:write", "deployments:read"), NOW)
    return keys


def deploy(
    api: Api, key: str, space_id: str = "Spaces-1", *, finished_at: str = "2024-03-01T10:00:00Z", **fields: Any
) -> dict[str, Any]:
    return create_deployment(api, space=space_id, key=key, finished_at=finished_at, **fields)


def recompute(lambda_context: Any) -> dict[str, Any]:
    """One tick of the schedule (as EventBridge invokes it) and its work items through the worker."""
    return scheduled_run(lambda_context)


def stream_of(deployment: dict[str, Any]) -> str:
    from dora_insights.domain.model import stream_key

    return stream_key(
        deployment["project_id"], deployment["channel_id"], deployment["environment_id"], deployment["tenant_id"]
    )


@pytest.fixture
def breaking(monkeypatch: pytest.MonkeyPatch) -> Breaking:
    """(space, stream) pairs in the returned set fail their recompute; every attempt is recorded as one."""
    from dora_insights.logic import recompute as logic

    broken: set[tuple[str, str]] = set()
    attempts: list[tuple[str, str]] = []
    original: Callable[..., bool] = logic.recompute_stream

    def recompute_stream(store: Any, space_id: str, stream: str, *args: Any) -> bool:
        attempts.append((space_id, stream))
        if (space_id, stream) in broken:
            raise ValueError(f"Invalid isoformat string: '99-06-01T00:00:00.000+00:00' in {stream}")
        return original(store, space_id, stream, *args)

    monkeypatch.setattr(logic, "recompute_stream", recompute_stream)
    return broken, attempts


def health(api: Api, space_id: str = "Spaces-1", key: str = ADMIN_KEY) -> Any:
    return api.call("GET", "/api/{spaceId}/health", path_params={"spaceId": space_id}, key=key)


def test_a_failing_stream_stops_neither_the_other_streams_nor_the_spaces_after_it(
    api: Api,
    spaces: dict[str, str],
    clock: Clock,
    breaking: Breaking,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    broken, _ = breaking
    bad = deploy(api, ADMIN_KEY, project="shop")
    good = deploy(api, ADMIN_KEY, project="api")
    other = deploy(api, spaces["Spaces-2"], "Spaces-2", project="web")
    broken.add(("Spaces-1", stream_of(bad)))
    capsys.readouterr()

    summary = recompute(lambda_context)

    assert summary["streams_failed"] == 1
    assert summary["streams_processed"] == 2
    assert summary["spaces_failed"] == 0
    assert summary["complete"] is True
    for created, key, space_id in ((good, ADMIN_KEY, "Spaces-1"), (other, spaces["Spaces-2"], "Spaces-2")):
        read = api.call(
            "GET",
            "/api/{spaceId}/deployments/{deploymentId}",
            path_params={"spaceId": space_id, "deploymentId": created["id"]},
            key=key,
        )
        assert read.body["figures"] is not None
        assert read.body["stream_health"] is None
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["StreamsFailed"] == 1
    assert metrics["StreamsProcessed"] == 2
    assert metrics["SpacesFailed"] == 0
    assert metrics["AlertsSent"] == 0
    assert metrics["AlertsUndelivered"] == 0
    assert metrics["AttributionsRedriven"] == 0


def test_a_failed_stream_stays_dirty_and_is_retried_by_the_next_run(
    api: Api,
    spaces: dict[str, str],
    clock: Clock,
    breaking: Breaking,
    lambda_context: Any,
) -> None:
    broken, attempts = breaking
    bad = deploy(api, ADMIN_KEY)
    broken.add(("Spaces-1", stream_of(bad)))
    recompute(lambda_context)
    clock.advance(timedelta(minutes=5))

    second = recompute(lambda_context)

    assert attempts.count(("Spaces-1", stream_of(bad))) == 2
    assert second["streams_pending"] == 1
    assert health(api).body["dirty_streams"] == 1


def test_a_broken_stored_deployment_fails_its_stream_only_and_the_error_keeps_no_input_values(
    api: Api, spaces: dict[str, str], clock: Clock, store: Any, lambda_context: Any
) -> None:
    from dora_insights.dal import aws as dal_aws
    from dora_insights.dal import keys

    bad = deploy(api, ADMIN_KEY, metadata={"note": "customer-secret-value"})
    deploy(api, spaces["Spaces-2"], "Spaces-2", project="web")
    item = store.get(keys.deployment("Spaces-1", bad["id"]))
    del item["finished_at"]  # as an item written by an older release or by hand would be
    store.call("put_item", TableName=store.table, Item=dal_aws.serialize(item))

    summary = recompute(lambda_context)

    assert (summary["streams_failed"], summary["streams_processed"], summary["spaces_failed"]) == (1, 1, 0)
    (failing,) = health(api).body["failing"]
    assert failing["error_type"] == "ValidationError"
    assert "finished_at" in failing["error_message"]
    assert "customer-secret-value" not in failing["error_message"]
    assert len(failing["error_message"]) <= 300


def test_after_three_failed_runs_the_stream_is_quarantined_left_out_and_shown(
    api: Api,
    spaces: dict[str, str],
    clock: Clock,
    breaking: Breaking,
    lambda_context: Any,
) -> None:
    from dora_insights.logic.health import QUARANTINE_AFTER

    broken, attempts = breaking
    bad = deploy(api, ADMIN_KEY, tenant="acme")
    broken.add(("Spaces-1", stream_of(bad)))
    first_failure = clock.now
    for run in range(1, QUARANTINE_AFTER + 1):
        recompute(lambda_context)
        state = health(api).body
        (record,) = state["failing"] or state["quarantined"]
        assert record["failures"] == run
        assert (record["state"] == "quarantined") == (run == QUARANTINE_AFTER)
        clock.advance(timedelta(minutes=5))

    held = recompute(lambda_context)

    assert held["streams_quarantined"] == 1
    assert held["streams_failed"] == 0
    assert attempts.count(("Spaces-1", stream_of(bad))) == QUARANTINE_AFTER
    state = health(api).body
    assert state["status"] == "degraded"
    assert state["failing"] == []
    assert state["dirty_streams"] == 1
    assert state["quarantine_after"] == QUARANTINE_AFTER
    (record,) = state["quarantined"]
    assert record["stream"] == stream_of(bad)
    assert (record["project"], record["environment"], record["tenant"]) == ("shop", "production", "acme")
    assert (record["project_id"], record["tenant_id"]) == (bad["project_id"], bad["tenant_id"])
    assert record["channel"] == "Default"
    assert record["first_failure_at"] == first_failure.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert record["last_failure_at"] == record["quarantined_at"]
    assert record["error_type"] == "ValueError"
    assert "99-06-01" in record["error_message"]
    read = api.call(
        "GET",
        "/api/{spaceId}/deployments/{deploymentId}",
        path_params={"spaceId": "Spaces-1", "deploymentId": bad["id"]},
        key=ADMIN_KEY,
    )
    assert read.status == 200
    assert read.body["stream_health"]["state"] == "quarantined"
    assert read.body["stream_health"]["failures"] == QUARANTINE_AFTER


def _quarantine(
    api: Api, clock: Clock, broken: set[tuple[str, str]], lambda_context: Any, **fields: Any
) -> dict[str, Any]:
    from dora_insights.logic.health import QUARANTINE_AFTER

    bad = deploy(api, ADMIN_KEY, **fields)
    broken.add(("Spaces-1", stream_of(bad)))
    for _ in range(QUARANTINE_AFTER):
        recompute(lambda_context)
        clock.advance(timedelta(minutes=5))
    assert len(health(api).body["quarantined"]) == 1
    return bad


def test_a_new_write_retries_a_quarantined_stream_once_and_a_failure_quarantines_it_again(
    api: Api,
    spaces: dict[str, str],
    clock: Clock,
    breaking: Breaking,
    lambda_context: Any,
) -> None:
    from dora_insights.logic.health import QUARANTINE_AFTER

    broken, _ = breaking
    _quarantine(api, clock, broken, lambda_context)
    deploy(api, ADMIN_KEY, finished_at="2024-03-02T10:00:00Z")

    retried = recompute(lambda_context)
    clock.advance(timedelta(minutes=5))
    held = recompute(lambda_context)

    assert (retried["streams_failed"], retried["streams_quarantined"]) == (1, 0)
    assert (held["streams_failed"], held["streams_quarantined"]) == (0, 1)
    (record,) = health(api).body["quarantined"]
    assert record["failures"] == QUARANTINE_AFTER + 1


def test_a_later_success_clears_the_quarantine(
    api: Api,
    spaces: dict[str, str],
    clock: Clock,
    breaking: Breaking,
    lambda_context: Any,
) -> None:
    broken, _ = breaking
    bad = _quarantine(api, clock, broken, lambda_context)
    broken.clear()  # the cause is fixed, and a corrected deployment arrives
    deploy(api, ADMIN_KEY, finished_at="2024-03-02T10:00:00Z")
    clock.advance(SETTLE)  # the tick comes after the index shows the write

    summary = recompute(lambda_context)

    assert (summary["streams_processed"], summary["streams_failed"]) == (1, 0)
    state = health(api).body
    assert (state["status"], state["failing"], state["quarantined"], state["dirty_streams"]) == ("ok", [], [], 0)
    assert state["last_success_at"] == clock.now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    read = api.call(
        "GET",
        "/api/{spaceId}/deployments/{deploymentId}",
        path_params={"spaceId": "Spaces-1", "deploymentId": bad["id"]},
        key=ADMIN_KEY,
    )
    assert read.body["stream_health"] is None
    assert read.body["figures"] is not None


def test_a_quarantined_stream_is_tried_again_after_its_retry_time_without_a_write(
    api: Api,
    spaces: dict[str, str],
    clock: Clock,
    breaking: Breaking,
    lambda_context: Any,
) -> None:
    from dora_insights.logic.health import QUARANTINE_RETRY_AFTER

    broken, _ = breaking
    _quarantine(api, clock, broken, lambda_context)
    broken.clear()  # a transient cause went away
    clock.advance(QUARANTINE_RETRY_AFTER)

    summary = recompute(lambda_context)

    assert summary["streams_processed"] == 1
    assert health(api).body["quarantined"] == []


def test_a_space_whose_own_data_is_broken_does_not_raise_and_the_next_spaces_still_run(
    api: Api, spaces: dict[str, str], clock: Clock, store: Any, lambda_context: Any
) -> None:
    from dora_insights.dal import aws as dal_aws
    from dora_insights.dal import keys

    deploy(api, ADMIN_KEY)
    other = deploy(api, spaces["Spaces-2"], "Spaces-2", project="web")
    broken_failure = {
        **keys.failure("Spaces-1", "f-broken"),
        keys.GSI1PK: keys.failures_by_time("Spaces-1"),
        keys.GSI1SK: "2024-03-01T00:00:00.000Z#f-broken",
        keys.TYPE: keys.T_FAILURE,
        "id": "f-broken",
    }
    store.call("put_item", TableName=store.table, Item=dal_aws.serialize(broken_failure))

    summary = recompute(lambda_context)

    assert summary["spaces_failed"] == 1
    assert summary["spaces"] == 3
    assert summary["complete"] is True
    read = api.call(
        "GET",
        "/api/{spaceId}/deployments/{deploymentId}",
        path_params={"spaceId": "Spaces-2", "deploymentId": other["id"]},
        key=spaces["Spaces-2"],
    )
    assert read.body["figures"] is not None
    state = health(api).body
    assert state["last_failure"]["stage"] == "setup"
    assert state["last_failure"]["error_type"] == "ValidationError"
    assert state["last_success_at"] is None


def test_every_space_is_its_own_work_item_every_tick(
    api: Api, spaces: dict[str, str], clock: Clock, lambda_context: Any
) -> None:
    for _ in range(2):
        summary = recompute(lambda_context)
        assert summary["spaces"] == 3  # each space visited, none waiting behind another
        assert (summary["schedule"]["items_sent"], summary["schedule"]["spaces"]) == (3, 3)
        assert (summary["items_failed"], summary["complete"]) == (0, True)


def test_an_item_out_of_time_stops_alone_and_the_next_tick_finishes_it(
    api: Api,
    spaces: dict[str, str],
    clock: Clock,
    breaking: Breaking,
    monkeypatch: pytest.MonkeyPatch,
    lambda_context: Any,
) -> None:
    from dora_insights.logic import recompute as logic

    _, attempts = breaking
    for space_id in ("Spaces-1", "Spaces-2", "Spaces-3"):
        deploy(api, spaces[space_id], space_id, project=f"p-{space_id}")
    clock.advance(SETTLE)  # the tick comes after the index shows the writes
    seconds = {"t": 0.0}
    slow = {"Spaces-2"}
    monkeypatch.setattr(logic, "monotonic", lambda: seconds["t"])
    heavy = logic.recompute_stream

    def slow_in_space_2(store: Any, space_id: str, *args: Any) -> bool:
        if space_id in slow:
            seconds["t"] += 60.0  # far beyond the item's budget (80% of the 10 s the context has left)
        return heavy(store, space_id, *args)

    monkeypatch.setattr(logic, "recompute_stream", slow_in_space_2)

    first = scheduled_run(lambda_context, worker_context=lambda_context)  # the worker with 10 s left

    assert (first["complete"], first["spaces"]) == (False, 3)
    assert sorted(s for s, _ in attempts) == ["Spaces-1", "Spaces-2", "Spaces-3"]  # the others still ran
    assert [health(api, s, ADMIN_KEY).body["dirty_streams"] for s in spaces] == [0, 1, 0]

    slow.clear()
    second = recompute(lambda_context)

    assert second["complete"] is True
    assert health(api, "Spaces-2", ADMIN_KEY).body["dirty_streams"] == 0


def test_the_health_route_is_for_admin_keys_only_and_knows_no_unknown_space(
    api: Api, spaces: dict[str, str], clock: Clock
) -> None:
    assert health(api, "Spaces-2", spaces["Spaces-2"]).status == 403
    assert health(api, "Spaces-2", ADMIN_KEY).status == 200
    missing = health(api, "Spaces-9", ADMIN_KEY)
    assert missing.status == 404
    assert set(missing.body) == {"message", "errors"}
