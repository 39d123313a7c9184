"""A threshold's PATCH and the scheduled check that records its state write different parts of the
threshold item (settings and their ``version``; state, value and checks): neither undoes the other,
a PATCH never brings back a deleted threshold, and two PATCHes never blindly overwrite each other.
Through the real route functions (template.yaml's handlers, under their roles) against moto."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Aws, Clock
from tests.support.insights import weekly_deploys_insight
from tests.support.native import create_deployment
from tests.support.recompute import scheduled_run

SP = {"spaceId": "Spaces-1"}
ONE = "/api/projects/{spaceId}/insights/{insightId}"
THRESHOLD = ONE + "/thresholds/{thresholdId}"
NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)  # a Wednesday


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _insight_with_threshold(api: Api) -> tuple[int, str]:
    """An insight whose value is 1 this week and an hourly threshold on it that fires above 0.5."""
    create_deployment(api, finished_at="2024-03-04T10:00:00Z")
    insight_id = weekly_deploys_insight(api, "Spaces-1", ADMIN_KEY, "Deploys")
    body = {"name": "busy", "condition": {"bounds": {"upper": 0.5}}, "calculation_interval": "hourly"}
    created = api.call(
        "POST", ONE + "/thresholds", path_params={**SP, "insightId": str(insight_id)}, body=body, key=ADMIN_KEY
    )
    assert created.status == 201, created.body
    return insight_id, str(created.body["id"])


def _path(insight_id: int, threshold_id: str) -> dict[str, str]:
    return {**SP, "insightId": str(insight_id), "thresholdId": threshold_id}


def test_a_patch_during_a_scheduled_check_is_not_undone_by_the_check(
    api: Api, clock: Clock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user disables the threshold while the scheduled run computes its value: the check, recorded
    afterwards, must not write back the settings it read (enabled, old bounds) over the PATCH answered 200."""
    from dora_insights.logic import alerts

    insight_id, threshold_id = _insight_with_threshold(api)
    path = _path(insight_id, threshold_id)
    real = alerts.insight_value
    patched: list[int] = []

    def value_while_user_patches(store: Any, space_id: str, insight: Any, now: datetime) -> float | None:
        value = real(store, space_id, insight, now)
        if not patched:  # the user's PATCH lands while the check is in flight
            answer = api.call("PATCH", THRESHOLD, path_params=path, body={"enabled": False}, key=ADMIN_KEY)
            patched.append(answer.status)
        return value

    monkeypatch.setattr(alerts, "insight_value", value_while_user_patches)
    scheduled_run(lambda_context)
    assert patched == [200]
    stored = api.call("GET", THRESHOLD, path_params=path, key=ADMIN_KEY).body
    assert stored["enabled"] is False, "the PATCH answered 200 but the scheduled check wrote the threshold back"


def test_a_check_recorded_during_a_patch_is_not_undone_by_the_patch(
    api: Api, clock: Clock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduled run records a check (state Firing) between the PATCH's read and its write: the PATCH
    must not write back the state it read (null, no checks), or the transition and its check vanish and
    the next run fires (and alerts) again."""
    from dora_insights.dal.insights import InsightStore

    insight_id, threshold_id = _insight_with_threshold(api)
    path = _path(insight_id, threshold_id)
    real_put = InsightStore.put_threshold
    ran: list[dict[str, Any]] = []

    def put_after_a_check(self: Any, space_id: str, threshold: Any, *, create: bool = False) -> None:
        if not create and not ran:
            ran.append(scheduled_run(lambda_context))  # the schedule's check lands meanwhile
        real_put(self, space_id, threshold, create=create)

    monkeypatch.setattr(InsightStore, "put_threshold", put_after_a_check)
    renamed = api.call("PATCH", THRESHOLD, path_params=path, body={"name": "renamed"}, key=ADMIN_KEY)
    assert renamed.status == 200
    assert ran and ran[0]["thresholds_fired"] == 1
    stored = api.call("GET", THRESHOLD, path_params=path, key=ADMIN_KEY).body
    assert stored["name"] == "renamed"
    assert stored["state"] == "Firing", "the check the schedule recorded was overwritten by the PATCH"
    assert len(stored["checks"]) == 1


def test_a_patch_of_a_threshold_deleted_meanwhile_is_a_404_and_does_not_bring_it_back(
    api: Api, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.dal.insights import InsightStore

    insight_id, threshold_id = _insight_with_threshold(api)
    path = _path(insight_id, threshold_id)
    real_put = InsightStore.put_threshold
    deleted: list[int] = []

    def put_after_a_delete(self: Any, space_id: str, threshold: Any, *, create: bool = False) -> None:
        if not create and not deleted:
            deleted.append(api.call("DELETE", THRESHOLD, path_params=path, key=ADMIN_KEY).status)
        real_put(self, space_id, threshold, create=create)

    monkeypatch.setattr(InsightStore, "put_threshold", put_after_a_delete)
    patched = api.call("PATCH", THRESHOLD, path_params=path, body={"name": "renamed"}, key=ADMIN_KEY)

    assert deleted == [204]
    assert patched.status == 404, patched.body
    assert patched.body["attr"] is None and patched.body["type"] == "invalid_request"
    assert api.call("GET", THRESHOLD, path_params=path, key=ADMIN_KEY).status == 404


def test_a_patch_that_lost_to_another_patch_is_applied_over_it_from_a_fresh_read(
    api: Api, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each PATCH writes the fields it sent; the one whose read another PATCH outdated is made again over
    the other's change (so both hold), not written over it."""
    from dora_insights.dal.insights import InsightStore

    insight_id, threshold_id = _insight_with_threshold(api)
    path = _path(insight_id, threshold_id)
    real_put = InsightStore.put_threshold
    other: list[int] = []

    def put_after_another_patch(self: Any, space_id: str, threshold: Any, *, create: bool = False) -> None:
        if not create and not other:
            other.append(0)
            body = {"subscribed_users": ["ops@example.com"]}
            other[0] = api.call("PATCH", THRESHOLD, path_params=path, body=body, key=ADMIN_KEY).status
        real_put(self, space_id, threshold, create=create)

    monkeypatch.setattr(InsightStore, "put_threshold", put_after_another_patch)
    renamed = api.call("PATCH", THRESHOLD, path_params=path, body={"name": "renamed"}, key=ADMIN_KEY)

    assert other == [200]
    assert renamed.status == 200, renamed.body
    assert (renamed.body["name"], renamed.body["subscribed_users"]) == ("renamed", ["ops@example.com"])
    stored = api.call("GET", THRESHOLD, path_params=path, key=ADMIN_KEY).body
    assert (stored["name"], stored["subscribed_users"]) == ("renamed", ["ops@example.com"])


def test_a_patch_that_keeps_losing_is_a_409_in_posthogs_shape(
    api: Api, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.dal.insights import InsightStore

    insight_id, threshold_id = _insight_with_threshold(api)
    path = _path(insight_id, threshold_id)
    real_put = InsightStore.put_threshold
    others: list[int] = []

    def put_after_other_patches(self: Any, space_id: str, threshold: Any, *, create: bool = False) -> None:
        if not create and threshold.enabled is False:  # each attempt of the PATCH below, not the others
            body = {"name": f"other {len(others)}"}
            others.append(api.call("PATCH", THRESHOLD, path_params=path, body=body, key=ADMIN_KEY).status)
        real_put(self, space_id, threshold, create=create)

    monkeypatch.setattr(InsightStore, "put_threshold", put_after_other_patches)
    lost = api.call("PATCH", THRESHOLD, path_params=path, body={"enabled": False}, key=ADMIN_KEY)

    assert others == [200, 200]  # it was made again once from a fresh read, and lost again
    assert lost.status == 409, lost.body
    assert set(lost.body) == {"type", "code", "detail", "attr"} and lost.body["code"] == "conflict"
    stored = api.call("GET", THRESHOLD, path_params=path, key=ADMIN_KEY).body
    assert stored["enabled"] is True  # nothing of the lost PATCH was written


def test_a_threshold_stored_before_versions_is_patched(api: Api, aws: Aws, clock: Clock) -> None:
    import boto3

    from dora_insights.dal import keys

    insight_id, threshold_id = _insight_with_threshold(api)
    key = keys.threshold("Spaces-1", insight_id, threshold_id)
    boto3.client("dynamodb").update_item(
        TableName=aws.table_name,
        Key={name: {"S": value} for name, value in key.items()},
        UpdateExpression="REMOVE version",
    )

    path = _path(insight_id, threshold_id)
    patched = api.call("PATCH", THRESHOLD, path_params=path, body={"name": "renamed"}, key=ADMIN_KEY)

    assert patched.status == 200, patched.body
    assert api.call("GET", THRESHOLD, path_params=path, key=ADMIN_KEY).body["name"] == "renamed"


def test_a_patch_leaves_the_recorded_checks_and_a_check_leaves_the_settings(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    from datetime import timedelta

    insight_id, threshold_id = _insight_with_threshold(api)
    path = _path(insight_id, threshold_id)
    assert scheduled_run(lambda_context)["thresholds_fired"] == 1
    body = {"name": "renamed", "condition": {"bounds": {"upper": 5}}, "subscribed_users": ["a@example.com"]}
    assert api.call("PATCH", THRESHOLD, path_params=path, body=body, key=ADMIN_KEY).status == 200
    clock.advance(timedelta(hours=1))

    run = scheduled_run(lambda_context)

    stored = api.call("GET", THRESHOLD, path_params=path, key=ADMIN_KEY).body
    assert run["thresholds_fired"] == 0
    assert (stored["name"], stored["condition"]["bounds"], stored["subscribed_users"]) == (
        "renamed",
        {"lower": None, "upper": 5.0},
        ["a@example.com"],
    )
    assert [c["state"] for c in stored["checks"]] == ["NotFiring", "Firing"]
    assert (stored["state"], stored["last_value"]) == ("NotFiring", 1.0)
