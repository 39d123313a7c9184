"""Numbers a skeptic can check (METRICS §2 rule 4, reasons of every flag, both restore times), through
the real HTTP API event shapes and the scheduled recompute, against moto."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.native import create_deployment, read_deployment
from tests.support.recompute import scheduled_run

SP = {"spaceId": "Spaces-1"}
NOW = datetime(2024, 3, 20, 12, 0, tzinfo=UTC)
SHA = {n: f"{n}" * 40 for n in "abcdef"}


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def fail(api: Api, **fields: Any) -> Any:
    body = {"project": "shop", "environment": "production", **fields}
    return api.call("POST", "/api/{spaceId}/failures", path_params=SP, body=body, key=ADMIN_KEY)


def figures(api: Api, deployment_id: str) -> dict[str, Any]:
    return read_deployment(api, deployment_id)["figures"]  # type: ignore[no-any-return]


def recompute(lambda_context: Any) -> None:
    scheduled_run(lambda_context)


@pytest.fixture
def history(api: Api, clock: Clock) -> list[dict[str, Any]]:
    """Four successful deployments of shop/production a day apart, each with its own commit."""
    return [
        create_deployment(api, version=f"1.{i}", commit_sha=SHA[n], finished_at=f"2024-03-0{i + 1}T10:00:00Z")
        for i, n in enumerate("abcd")
    ]


def test_a_failure_naming_a_commit_charges_the_deployment_that_first_shipped_it_outside_the_window(
    api: Api, history: list[dict[str, Any]], lambda_context: Any
) -> None:
    # Ten days after the commit shipped (window: 24 h), naming it by a 12-character abbreviation.
    created = fail(api, id="inc-3", started_at="2024-03-12T08:00:00Z", commit_sha=SHA["b"][:12])
    assert created.status == 201, created.body
    recompute(lambda_context)
    charged = figures(api, history[1]["id"])
    assert charged["change_failure"] is True
    assert charged["change_failure_rule"] == 4
    assert charged["change_failure_cause"] == "inc-3"
    assert charged["change_failure_reasons"] == [
        {"rule": 4, "name": "root_cause_of_failure", "deployment_id": None, "failure_id": "inc-3"}
    ]
    latest = figures(api, history[3]["id"])  # the latest before the failure: not charged (rule 5 is not used)
    assert latest["change_failure"] is False
    assert latest["change_failure_rule"] is None
    after = figures(api, history[2]["id"])
    assert after["rework"] is True
    assert after["rework_reason"] == "first_success_after_change_failure"
    assert after["rework_reasons"] == [
        {"reason": "first_success_after_change_failure", "deployment_id": history[1]["id"]}
    ]


def test_a_failure_naming_nothing_keeps_the_window_rule_and_one_naming_a_deployment_charges_it(
    api: Api, history: list[dict[str, Any]], lambda_context: Any
) -> None:
    assert fail(api, id="plain", started_at="2024-03-04T12:00:00Z").status == 201
    staging = create_deployment(api, environment="staging", version="9", finished_at="2024-03-02T00:00:00Z")
    # Named by id: charged though the failure says production and the deployment is in staging.
    assert fail(api, id="by-id", started_at="2024-03-15T00:00:00Z", deployment_id=staging["id"]).status == 201
    recompute(lambda_context)
    assert figures(api, history[3]["id"])["change_failure_reasons"] == [
        {"rule": 5, "name": "failure_within_window", "deployment_id": None, "failure_id": "plain"}
    ]
    assert figures(api, staging["id"])["change_failure_cause"] == "by-id"


def test_a_failure_naming_an_unknown_deployment_is_a_400_and_stores_nothing(
    api: Api, history: list[dict[str, Any]]
) -> None:
    refused = fail(api, id="ghost", started_at="2024-03-15T00:00:00Z", deployment_id="Deployments-999")
    assert refused.status == 400, refused.body
    assert "deployment_id" in refused.body["message"]
    listed = api.call("GET", "/api/{spaceId}/failures", path_params=SP, key=ADMIN_KEY)
    assert listed.body["items"] == []


def test_a_failure_naming_a_deployment_that_is_removed_later_charges_nothing_and_stays_an_incident(
    api: Api, history: list[dict[str, Any]], lambda_context: Any
) -> None:
    """METRICS §2 rule 4: the outage still happened, so it keeps counting where incidents count."""
    named = fail(
        api,
        id="by-id",
        deployment_id=history[1]["id"],
        started_at="2024-03-05T10:00:00Z",
        finished_at="2024-03-05T12:00:00Z",
    )
    assert named.status == 201, named.body
    recompute(lambda_context)
    assert figures(api, history[1]["id"])["change_failure_cause"] == "by-id"
    path = {**SP, "deploymentId": history[1]["id"]}
    removed = api.call("DELETE", "/api/{spaceId}/deployments/{deploymentId}", path_params=path, key=ADMIN_KEY)
    assert removed.status == 204, removed.body
    recompute(lambda_context)
    for deployment in (history[0], history[2], history[3]):
        assert figures(api, deployment["id"])["change_failure"] is False
    listed = api.call("GET", "/api/{spaceId}/failures", path_params=SP, key=ADMIN_KEY).body["items"]
    assert [item["id"] for item in listed] == ["by-id"]
    query = {"from": "2024-03-01T00:00:00Z", "to": "2024-03-10T00:00:00Z", "project": "shop"}
    body = api.call("GET", "/api/{spaceId}/summary", path_params=SP, query=query, key=ADMIN_KEY).body
    assert body["time_to_restore"] == {"count": 1, "median_seconds": 2 * 3600.0, "tier": "High"}
    assert body["change_failure_rate"]["change_failures"] == 0


def test_a_blank_version_is_no_version_for_lead_times_and_failures(api: Api, clock: Clock, lambda_context: Any) -> None:
    """A CI templating ``version: "${VERSION}"`` with nothing set: no release first seen at the first of them
    (METRICS §3: no lead time without commits or a version), and a failure naming "" names no cause (rule 5)."""
    blank = [
        create_deployment(api, version=v, finished_at=f"2024-03-0{i + 1}T10:00:00Z")
        for i, v in enumerate(["", " ", ""])
    ]
    assert fail(api, id="templated", version="", started_at="2024-03-03T12:00:00Z").status == 201
    recompute(lambda_context)
    read = [read_deployment(api, d["id"]) for d in blank]
    assert [r["version"] for r in read] == [None, None, None]
    assert [r["figures"]["lead_time_seconds"] for r in read] == [None, None, None]
    assert read[2]["figures"]["change_failure_reasons"] == [
        {"rule": 5, "name": "failure_within_window", "deployment_id": None, "failure_id": "templated"}
    ]


def test_flags_explain_themselves_and_negative_lead_times_are_flagged(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    first = create_deployment(api, version="2.0", finished_at="2024-03-01T10:00:00Z")
    failed = create_deployment(api, version="2.1", finished_at="2024-03-02T10:00:00Z", state="Failed")
    back = create_deployment(api, version="2.0", finished_at="2024-03-03T10:00:00Z")  # rolls back to 2.0
    recompute(lambda_context)
    assert figures(api, first["id"])["change_failure_reasons"] is None
    marked = figures(api, failed["id"])
    assert marked["change_failure_rule"] == 1
    assert [(r["rule"], r["deployment_id"]) for r in marked["change_failure_reasons"]] == [
        (1, failed["id"]),
        (2, back["id"]),
    ]
    rolled = figures(api, back["id"])
    assert rolled["rework_reason"] == "rollback"
    assert rolled["lead_time_negative"] is False


def test_summary_shows_incident_restore_time_beside_recovery_time(
    api: Api, history: list[dict[str, Any]], lambda_context: Any
) -> None:
    assert fail(api, started_at="2024-03-05T10:00:00Z", finished_at="2024-03-05T12:00:00Z").status == 201
    assert fail(api, started_at="2024-03-06T10:00:00Z", finished_at="2024-03-06T14:00:00Z").status == 201
    assert (
        fail(api, project="other", started_at="2024-03-06T10:00:00Z", finished_at="2024-03-09T10:00:00Z").status == 201
    )
    assert fail(api, started_at="2024-03-07T10:00:00Z").status == 201  # still open: no restore time yet
    recompute(lambda_context)
    body = api.call(
        "GET",
        "/api/{spaceId}/summary",
        path_params=SP,
        query={"from": "2024-03-01T00:00:00Z", "to": "2024-03-10T00:00:00Z", "project": "shop"},
        key=ADMIN_KEY,
    ).body
    assert body["time_to_restore"] == {"count": 2, "median_seconds": 3 * 3600.0, "tier": "High"}
    assert body["recovery_time"] == {"count": 0, "median_seconds": None, "tier": None}


def test_no_tier_without_data(api: Api, clock: Clock) -> None:
    body = api.call("GET", "/api/{spaceId}/summary", path_params=SP, key=ADMIN_KEY).body
    assert body["deployments"] == 0
    for metric in ("deployment_frequency", "lead_time", "change_failure_rate", "recovery_time", "time_to_restore"):
        assert body[metric]["tier"] is None, metric
