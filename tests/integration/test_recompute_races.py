"""The fanned-out recompute where moto alone never shows a problem: two workers on one stream, a failing
stream seen by two items of one tick, a stream whose deployments all moved away, and replicas that lag
the item's own writes (DynamoDB's eventually consistent reads). Each test drives the real schedule and
worker functions (``tests.support.recompute``) and reads the answers a user reads."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.support import lambdas
from tests.support.native import SPACE, create_deployment
from tests.support.recompute import WORKER, scheduled_run

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _worker_record(body: dict[str, Any], message_id: str) -> dict[str, Any]:
    from dora_local.events import sqs_record
    from dora_local.iam import queue_arn
    from dora_local.template import REGION

    message = {"MessageId": message_id, "ReceiptHandle": f"rh-{message_id}", "Body": json.dumps(body)}
    return sqs_record(message, queue_arn(os.environ["RECOMPUTE_QUEUE_URL"], REGION))


def delete_deployment(api: Api, deployment_id: str) -> HttpResult:
    path = {"spaceId": SPACE, "deploymentId": deployment_id}
    return api.call("DELETE", "/api/{spaceId}/deployments/{deploymentId}", path_params=path, key=ADMIN_KEY)


def _space_item() -> dict[str, Any]:
    return {"kind": "space", "space_id": SPACE, "planned_at": "2024-03-10T12:00:00.000Z", "streams": []}


def _stream_of(deployment: dict[str, Any]) -> str:
    from dora_insights.domain.model import stream_key

    return stream_key(
        deployment["project_id"], deployment["channel_id"], deployment["environment_id"], deployment["tenant_id"]
    )


def _frequency(api: Api, start: str, end: str) -> list[Any]:
    """GitLab-style daily deployment counts (read from the rollups)."""
    found = api.call(
        "GET",
        "/api/{spaceId}/dora/metrics",
        key=ADMIN_KEY,
        path_params={"spaceId": SPACE},
        query={"metric": "deployment_frequency", "start_date": start, "end_date": end},
    )
    assert found.status == 200, found.body
    return [row["value"] for row in found.body]


def _summary_deployments(api: Api, environment: str = "production") -> int:
    """How many deployments /summary counts (read from the figures)."""
    query = {"from": "2024-02-01T00:00:00Z", "to": "2024-03-10T00:00:00Z", "environment": environment}
    found = api.call("GET", "/api/{spaceId}/summary", path_params={"spaceId": SPACE}, query=query, key=ADMIN_KEY)
    assert found.status == 200, found.body
    return int(found.body["deployments"])


def test_a_worker_that_loses_the_race_for_a_stream_leaves_it_marked_not_its_rollups_counted_wrong(
    api: Api, clock: Clock, store: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two deliveries of one space item (SQS delivers at least once): X computes, Y does the whole
    item while X is between its rollups and its pointer move, then X writes its rollups and loses the
    pointer. X's rollups replaced Y's: X recomputes the stream once more over Y's pointer, and marks
    it again in case that does not land either."""
    from dora_insights.dal.rollups import RollupStore

    create_deployment(api, project="shop", finished_at="2024-03-01T10:00:00Z")
    clock.advance(timedelta(minutes=1))  # the mark is settled: a run clears it
    original: Callable[..., Any] = RollupStore.write
    raced: list[Any] = []

    def write(self: RollupStore, *args: Any, **kwargs: Any) -> Any:
        if not raced:  # Y runs once, inside X's first rollup write
            raced.append(None)
            raced[0] = lambdas.invoke(WORKER, {"Records": [_worker_record(_space_item(), "m-Y")]}, lambda_context)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(RollupStore, "write", write)
    response = lambdas.invoke(WORKER, {"Records": [_worker_record(_space_item(), "m-X")]}, lambda_context)
    monkeypatch.setattr(RollupStore, "write", original)
    assert response == {"batchItemFailures": []}
    assert raced == [{"batchItemFailures": []}]

    (mark,) = store.list_dirty_streams(SPACE)  # X lost: it marked the stream again
    assert mark["stream"] == _stream_of(
        api.call("GET", "/api/{spaceId}/deployments", path_params={"spaceId": SPACE}, key=ADMIN_KEY).body["items"][0]
    )
    assert _frequency(api, "2024-03-01", "2024-03-02") == [1, 0]  # a read brings the marked stream up to date
    clock.advance(timedelta(minutes=5))
    scheduled_run(lambda_context)
    assert store.list_dirty_streams(SPACE) == []
    assert _frequency(api, "2024-03-01", "2024-03-02") == [1, 0]


def test_a_failing_stream_of_a_split_space_counts_one_failed_run_per_tick(
    api: Api, clock: Clock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A split space's tick sends its streams in ``streams`` items and the space item after them; both
    try a stream still waiting. One tick is one run: a stream is quarantined after three failed ticks,
    not after two."""
    from dora_insights.logic import recompute as logic
    from dora_insights.logic.health import QUARANTINE_AFTER

    assert QUARANTINE_AFTER == 3
    created = [create_deployment(api, project=f"p{n:02d}") for n in range(logic.STREAM_GROUP + 1)]
    bad = _stream_of(created[0])
    original: Callable[..., bool] = logic.recompute_stream
    attempts: list[str] = []

    def recompute_stream(store: Any, space_id: str, stream: str, *args: Any) -> bool:
        if stream == bad:
            attempts.append(stream)
            raise ValueError("broken stream")
        return original(store, space_id, stream, *args)

    monkeypatch.setattr(logic, "recompute_stream", recompute_stream)

    def health() -> dict[str, Any]:
        found = api.call("GET", "/api/{spaceId}/health", path_params={"spaceId": SPACE}, key=ADMIN_KEY)
        assert found.status == 200, found.body
        return dict(found.body)

    seen = []
    for tick in range(QUARANTINE_AFTER):
        clock.advance(timedelta(minutes=5))
        split = scheduled_run(lambda_context)["schedule"]["spaces_split"]
        assert split == (1 if tick == 0 else 0)  # later ticks find only the broken stream waiting
        now = health()
        seen.append(([r["failures"] for r in now["failing"]], [r["failures"] for r in now["quarantined"]]))
    assert len(attempts) >= QUARANTINE_AFTER  # both items of a tick may try it: counted once
    assert seen == [([1], []), ([2], []), ([], [3])]


def test_a_stream_whose_only_deployment_moved_to_another_stream_stops_counting_it(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """A DX upsert of the same reference to another service replaces the deployment in another stream
    and marks the old one; the old stream has no deployment left and must count none."""

    def upsert(service: str) -> None:
        body = {"reference_id": "ref-1", "deployed_at": 1709287200, "service": service, "environment": "production"}
        found = api.call("POST", "/api/deployments.upsert", body=body, key=ADMIN_KEY)
        assert found.status == 200, found.body

    upsert("shop")  # 2024-03-01T10:00:00Z
    clock.advance(timedelta(minutes=1))
    scheduled_run(lambda_context)
    assert (_frequency(api, "2024-03-01", "2024-03-02"), _summary_deployments(api)) == ([1, 0], 1)
    upsert("payments")
    clock.advance(timedelta(minutes=5))
    scheduled_run(lambda_context)
    assert (_frequency(api, "2024-03-01", "2024-03-02"), _summary_deployments(api)) == ([1, 0], 1)


def test_a_stream_emptied_by_deletes_stops_counting_them(api: Api, clock: Clock, lambda_context: Any) -> None:
    """Delete a stream's two deployments: its next recompute points it at an empty generation (the
    delete itself cannot tell the stream emptied: the stream index lags the table in AWS)."""
    a = create_deployment(api, project="solo", finished_at="2024-03-01T10:00:00Z")
    b = create_deployment(api, project="solo", finished_at="2024-03-01T11:00:00Z")
    clock.advance(timedelta(minutes=1))
    scheduled_run(lambda_context)
    assert _summary_deployments(api) == 2
    assert delete_deployment(api, a["id"]).status == 204
    assert delete_deployment(api, b["id"]).status == 204
    assert _summary_deployments(api) == 0  # a read brings the marked stream up to date first
    clock.advance(timedelta(minutes=1))
    scheduled_run(lambda_context)
    assert _summary_deployments(api) == 0


def test_a_report_is_refreshed_from_the_items_own_writes_not_from_a_lagging_replica(
    api: Api, clock: Clock, store: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right after the space item moved a stream's pointer, an eventually consistent read may still
    answer the previous pointer and the previous generation's items (whose count agrees): the report
    would be refreshed without the new deployment and its mark cleared. The worker reads what it
    refreshes reports from strongly consistent."""
    from dora_insights.dal.metrics import MetricsStore

    create_deployment(api, project="shop", finished_at="2024-03-01T10:00:00Z")
    body = {
        "SpaceId": SPACE,
        "Name": "All production",
        "ProjectGroupIds": [],
        "ProjectIds": [],
        "TenantIds": [],
        "TenantTags": [],
        "TenantMode": "TenantedAndUntenanted",
        "EnvironmentGroups": [{"Name": "Production", "Environments": ["Environments-1"]}],
        "TimeZone": "UTC",
    }
    path = {"spaceId": SPACE}
    created = api.call("POST", "/api/{spaceId}/insights/reports", path_params=path, body=body, key=ADMIN_KEY)
    assert created.status == 201, created.body
    clock.advance(timedelta(minutes=1))
    scheduled_run(lambda_context)
    data = store.metrics()
    assert data.report_state(SPACE, 1)["deployments"] == 1

    create_deployment(api, project="shop", finished_at="2024-03-02T10:00:00Z")
    clock.advance(timedelta(minutes=1))
    # What a replica that has not applied this item's writes yet answers: the pointers and figures before.
    before_streams = data.streams(SPACE, consistent=True)
    before_counted = data.space_figures_counted(SPACE, before_streams, consistent=True)
    lagging: list[bool] = []
    streams, counted = MetricsStore.streams, MetricsStore.space_figures_counted
    write = MetricsStore.write_stream_figures

    def stale_streams(self: MetricsStore, space_id: str, *, consistent: bool = False) -> Any:
        return dict(before_streams) if lagging and not consistent else streams(self, space_id, consistent=consistent)

    def stale_counted(
        self: MetricsStore, space_id: str, chosen: Any = None, *, consistent: bool = False, per_stream: bool = False
    ) -> Any:
        if lagging and not consistent:
            return before_counted
        return counted(self, space_id, chosen, consistent=consistent, per_stream=per_stream)

    def moved(self: MetricsStore, *args: Any) -> bool:
        done = write(self, *args)
        lagging.append(done)  # from now on, eventually consistent reads answer the previous versions
        return done

    monkeypatch.setattr(MetricsStore, "streams", stale_streams)
    monkeypatch.setattr(MetricsStore, "space_figures_counted", stale_counted)
    monkeypatch.setattr(MetricsStore, "write_stream_figures", moved)
    scheduled_run(lambda_context)
    monkeypatch.undo()
    assert lagging  # the run did move the pointer under the lagging replicas
    assert data.report_state(SPACE, 1)["deployments"] == 2


def test_a_read_whose_refresh_loses_to_the_schedule_after_overwriting_its_rollups_marks_the_stream_again(
    api: Api, clock: Clock, store: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same race through a read's refresh, under the read route's own role: the schedule runs
    whole while the read is about to write its rollups; the read's rollups land after the schedule's
    and its pointer move fails. It recomputes the stream once more over the schedule's pointer (so
    its own answer counts the deployment) and marks it again."""
    from dora_insights.dal.rollups import RollupStore

    create_deployment(api, project="shop", finished_at="2024-03-01T10:00:00Z")
    clock.advance(timedelta(seconds=3))  # settled: the schedule clears the mark
    original: Callable[..., Any] = RollupStore.write
    raced: list[bool] = []

    def write(self: RollupStore, *args: Any, **kwargs: Any) -> Any:
        if not raced:  # the read's refresh is about to write its rollups: the schedule goes first
            raced.append(True)
            scheduled_run(lambda_context)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(RollupStore, "write", write)
    first = _frequency(api, "2024-03-01", "2024-03-02")
    monkeypatch.setattr(RollupStore, "write", original)
    assert raced
    assert first == [1, 0]  # without the second recompute: [0, 0], the stream left out
    assert [m["stream"] for m in store.list_dirty_streams(SPACE)] != []  # marked again by the read
    assert _frequency(api, "2024-03-01", "2024-03-02") == [1, 0]
    clock.advance(timedelta(minutes=5))
    scheduled_run(lambda_context)
    assert store.list_dirty_streams(SPACE) == []
    assert _frequency(api, "2024-03-01", "2024-03-02") == [1, 0]
