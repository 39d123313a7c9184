"""Items an earlier commit wrote, read by the code of main after an in-place upgrade.

Each test builds an item as an earlier version stored it (stored by the current code, then its newer
attributes stripped or its key layout changed as the earlier code left it) and exercises the routes, the
alert delivery or the recompute that read it. Expectation: read correctly (or refused with a clear 4xx),
never a 500, never silently other numbers or other behaviour than the same history written by main.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Aws, Clock
from tests.integration.test_alert_destinations import (  # noqa: F401  (the pipeline fixture is used by name)
    NOW,
    Pipeline,
    pipeline,
)
from tests.integration.test_alerts_under_load import (
    DEST,
    ONE,
    SP1,
    THRESHOLDS,
    _again,
    _answered_ok,
    _destination,
    _detail,
    _hand,
    _run,
    _take,
    _threshold,
)
from tests.support import table
from tests.support.insights import weekly_deploys_insight
from tests.support.native import create_deployment
from tests.support.receiver import Receiver
from tests.support.recompute import scheduled_run

SP = {"spaceId": SP1}


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _strip(aws: Aws, key: dict[str, str], *names: str) -> dict[str, Any]:
    """Rewrite the item at ``key`` without the attributes ``names`` (as the earlier code left it); the result."""
    stored = table.item(aws, key)
    for name in names:
        stored.pop(name, None)
    table.put(aws, stored)
    return stored


# --------------------------------------------------------------------------------------------- alerts
def test_a_breach_redriven_after_an_upgrade_does_not_undo_a_clearing_delivered_before_it(
    api: Api,
    aws: Aws,
    store: Any,
    receiver: Receiver,
    pipeline: Pipeline,  # noqa: F811
    loopback: None,
    clock: Clock,
    lambda_context: Any,
) -> None:
    """A destination that took a threshold's clearing before 9bb7c86 holds only its pattern 64 mark
    ``D#<tid>:<checked_at>`` (no pattern 66 ``T#<tid>``): the breach retried or redriven after the upgrade is
    judged by the latest delivered mark, logged ``superseded`` and not sent, so the receiver is not left
    firing (API.md, alert destinations, "Order")."""
    from dora_insights.dal import aws as dal_aws
    from dora_insights.dal import keys

    statuses_b = [500, 200]
    receiver.by_path["/b"] = list(statuses_b)
    dest_b = _destination(api, receiver.url + "/b")
    insight_id = weekly_deploys_insight(api, SP1, ADMIN_KEY, "Deploys")
    tid = _threshold(api, insight_id, "Too many deploys")

    _run(store, SP1, 5.0, clock.now)  # Firing: the breach; /b answers 500, retried later (or redriven)
    (breach,) = _take(pipeline)
    assert _hand([breach], lambda_context) == {breach["messageId"]}
    clock.advance(timedelta(minutes=2))
    off = api.call(
        "PATCH",
        THRESHOLDS + "/{thresholdId}",
        path_params={"spaceId": SP1, "insightId": str(insight_id), "thresholdId": tid},
        body={"enabled": False},
        key=ADMIN_KEY,
    )
    assert off.status == 200, off.body
    clock.advance(timedelta(minutes=3))
    _run(store, SP1, 5.0, clock.now)  # the clearing
    (clearing,) = _take(pipeline)
    assert _detail(clearing)["reason"] == "threshold_disabled"
    clock.advance(timedelta(minutes=1))
    assert _hand([clearing], lambda_context) == set()  # /b took the clearing ...

    # ... under the code before 9bb7c86, which wrote the log entry and the delivered mark only.
    last = keys.alert_last_transition(SP1, dest_b["id"], tid)
    dal_aws.client().delete_item(TableName=aws.table_name, Key=dal_aws.serialize(last))

    clock.advance(timedelta(minutes=1))
    _hand([_again(breach)], lambda_context)  # the breach's retry (or a DLQ redrive) after the upgrade
    got = [b for b in _answered_ok(receiver, "/b", statuses_b) if b["threshold_id"] == tid]
    assert got and got[-1]["type"] == "InsightThresholdCleared", [(b["type"], b["checked_at"]) for b in got]


def test_a_destination_stored_before_versions_takes_a_patch_and_still_delivers(
    api: Api,
    aws: Aws,
    store: Any,
    receiver: Receiver,
    pipeline: Pipeline,  # noqa: F811
    loopback: None,
    clock: Clock,
    lambda_context: Any,
) -> None:
    """A destination stored before 6705be0 has no ``version``: a rename is written (200, version 1), not a
    409 for good, and the destination still receives the space's alerts."""
    from dora_insights.dal import keys

    made = _destination(api, receiver.url + "/old")
    _strip(aws, keys.alert_destination(SP1, made["id"]), "version")
    renamed = api.call(
        "PATCH", ONE, path_params={**SP, "destinationId": made["id"]}, body={"name": "renamed"}, key=ADMIN_KEY
    )
    assert renamed.status == 200, renamed.body
    assert renamed.body["name"] == "renamed"
    listed = api.call("GET", DEST, path_params=SP, key=ADMIN_KEY)
    assert listed.status == 200, listed.body
    insight_id = weekly_deploys_insight(api, SP1, ADMIN_KEY, "Deploys")
    _threshold(api, insight_id, "Too many deploys")
    _run(store, SP1, 5.0, clock.now)
    pipeline.run_queue(lambda_context, clock)
    assert list(receiver.at("/old")), "the destination received nothing"


# --------------------------------------------------------------------------------------------- marks
def test_a_mark_stored_before_ids_previews_and_latest_is_counted_and_cleared(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """A stream's dirty mark as the code before a07b3c9/5bf4cb6/bab8c60 wrote it (stream, dirty_at, no
    ``mark_id``, ``pending``, ``latest``/``prior`` or ``preview``), beside a deployment never computed: the
    read says it is pending, a second deployment of the stream is written over it, and one scheduled run
    counts both and clears the mark."""
    from dora_insights.dal import keys

    create_deployment(api, project="legacy", finished_at="2024-03-01T10:00:00Z", version="1.0.0")
    marks = [i for i in table.scan(aws) if i.get(keys.TYPE) == keys.T_DIRTY_STREAM]
    assert len(marks) == 1, marks
    (mark,) = marks
    _strip(aws, {keys.PK: mark[keys.PK], keys.SK: mark[keys.SK]}, "mark_id", "pending", "latest", "prior", "preview")

    before = api.call("GET", "/api/{spaceId}/summary", path_params=SP, key=ADMIN_KEY)
    assert before.status == 200, before.body
    clock.advance(timedelta(seconds=10))
    create_deployment(api, project="legacy", finished_at="2024-03-01T11:00:00Z", version="1.0.1")
    clock.advance(timedelta(seconds=10))
    run = scheduled_run(lambda_context)
    assert run["items_failed"] == 0, run
    after = api.call("GET", "/api/{spaceId}/summary", path_params=SP, query={"project": "legacy"}, key=ADMIN_KEY)
    assert after.status == 200, after.body
    assert (after.body["deployments"], after.body["pending"]) == (2, 0), after.body
    left = [i for i in table.scan(aws) if i.get(keys.TYPE) == keys.T_DIRTY_STREAM]
    assert left == [], left
