"""Native corrections (issue 16): PATCH and DELETE of deployments, GET and DELETE of failure events, the
tag filter, and how corrections flow through the numbers (figures, /summary, attribution), through the
real HTTP API event shape against moto, each route under its own role."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.support.native import create_deployment, get_deployment
from tests.support.recompute import scheduled_run

SP = {"spaceId": "Spaces-1"}
DEPLOYMENTS = "/api/{spaceId}/deployments"
ONE = "/api/{spaceId}/deployments/{deploymentId}"
CORRECTIONS = "/api/{spaceId}/deployments/{deploymentId}/corrections"
FAILURES = "/api/{spaceId}/failures"
FAILURE = "/api/{spaceId}/failures/{failureId}"
RANGE = {"from": "2024-02-01T00:00:00Z", "to": "2024-03-10T00:00:00Z"}
SHAS = [f"{n:040x}" for n in range(1, 7)]


def _patch(api: Api, deployment_id: str, body: Any, **kwargs: Any) -> HttpResult:
    return api.call("PATCH", ONE, path_params={**SP, "deploymentId": deployment_id}, body=body, key=ADMIN_KEY, **kwargs)


def _delete(api: Api, deployment_id: str) -> HttpResult:
    return api.call("DELETE", ONE, path_params={**SP, "deploymentId": deployment_id}, key=ADMIN_KEY)


def _history(api: Api, deployment_id: str, **query: str) -> HttpResult:
    return api.call(
        "GET", CORRECTIONS, path_params={**SP, "deploymentId": deployment_id}, query=query or None, key=ADMIN_KEY
    )


def _summary(api: Api) -> dict[str, Any]:
    found = api.call("GET", "/api/{spaceId}/summary", path_params=SP, query=RANGE, key=ADMIN_KEY)
    assert found.status == 200, found.body
    return found.body  # type: ignore[no-any-return]


def _recompute(lambda_context: Any) -> None:
    scheduled_run(lambda_context)


def _push(api: Api, *shas: str) -> None:
    commits = [
        {"repository": "acme/shop", "branch": "main", "sha": sha, "timestamp": f"2024-03-01T0{n}:00:00Z"}
        for n, sha in enumerate(shas)
    ]
    result = api.call("POST", "/api/{spaceId}/changes", path_params=SP, body={"commits": commits}, key=ADMIN_KEY)
    assert result.status < 300, result.body


def _native_error(result: HttpResult, status: int) -> None:
    assert result.status == status, result.body
    assert set(result.body) == {"message", "errors"} and result.body["errors"], result.body


# --- PATCH -----------------------------------------------------------------------------------------
def test_patch_changes_the_given_fields_moves_the_revision_on_and_answers_its_etag(api: Api, clock: Clock) -> None:
    created = create_deployment(api, version="1.0", tags=["team:a"])
    assert created["revision"] == 1 and created["change_failure_override"] is None
    patched = _patch(api, created["id"], {"version": "1.0.1", "tags": ["team:b", "tier:1"], "state": "Failed"})
    assert patched.status == 200, patched.body
    assert (patched.body["version"], patched.body["tags"], patched.body["state"]) == (
        "1.0.1",
        ["team:b", "tier:1"],
        "Failed",
    )
    assert patched.body["revision"] == 2
    assert {k.lower(): v for k, v in patched.headers.items()}["etag"] == '"2"'
    assert get_deployment(api, created["id"]).body["revision"] == 2


def test_a_patch_that_changes_nothing_writes_nothing(api: Api, clock: Clock) -> None:
    created = create_deployment(api, version="1.0")
    same = _patch(api, created["id"], {"version": "1.0"})
    assert same.status == 200 and same.body["revision"] == 1
    assert _history(api, created["id"]).body == {"items": [], "next_cursor": None}


def test_a_stale_revision_or_if_match_is_412_and_a_current_one_applies(api: Api, clock: Clock) -> None:
    created = create_deployment(api)
    assert _patch(api, created["id"], {"version": "2"}).status == 200  # revision 2 now
    _native_error(_patch(api, created["id"], {"version": "3", "revision": 1}), 412)
    _native_error(_patch(api, created["id"], {"version": "3"}, headers={"If-Match": '"1"'}), 412)
    assert get_deployment(api, created["id"]).body["version"] == "2"  # nothing half-written
    _native_error(_patch(api, created["id"], {"version": "3", "revision": 2}, headers={"If-Match": '"1"'}), 400)
    current = _patch(api, created["id"], {"version": "3"}, headers={"If-Match": 'W/"2"'})
    assert current.status == 200 and current.body["revision"] == 3
    assert _patch(api, created["id"], {"version": "4", "revision": 3}).body["revision"] == 4
    assert _patch(api, created["id"], {"version": "5"}).body["revision"] == 5  # no revision: last writer wins


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"project": "other"}, "project"),
        ({"environment": "staging"}, "environment"),
        ({"tenant": "acme"}, "tenant"),
        ({"channel": "beta"}, "channel"),
        ({"finished_at": "2024-03-01T13:00:00Z"}, None),
        ({"state": None}, "state"),
        ({"state": "Sideways"}, "state"),
        ({"change_failure": "maybe"}, "change_failure"),
        ({"remediation": {"type": "rollback"}}, "remediation"),
        ({"remediation": {"id": "x", "version": "1", "type": "rollback"}}, "remediation"),
        ({"remediation": {"id": "x", "type": "revert"}}, "remediation.type"),
        ({"tags": ["no-colon"]}, "tags[0]"),
        ({"unknown": 1}, "unknown"),
        ({}, None),
        ({"revision": 1}, None),
        ({"revision": 0, "version": "1"}, "revision"),
    ],
)
def test_bad_patches_are_400_in_the_native_shape_and_change_nothing(
    api: Api, clock: Clock, body: dict[str, Any], field: str | None
) -> None:
    created = create_deployment(api, version="1.0")
    result = _patch(api, created["id"], body)
    _native_error(result, 400)
    if field is not None:
        assert any(e.startswith(field) for e in result.body["errors"]), result.body
    assert get_deployment(api, created["id"]).body["revision"] == 1


def test_patch_and_delete_of_an_unknown_or_another_spaces_deployment_are_404(
    api: Api, clock: Clock, store: Any
) -> None:
    from dora_insights.logic import admin

    admin.ensure_space(store, "Spaces-2", "Other", clock.now)
    admin.ensure_api_key(store, "Spaces-2", "other admin", "other-key", clock.now)
    body = {"project": "shop", "environment": "production", "finished_at": "2024-03-01T12:00:00Z"}
    theirs = api.call("POST", DEPLOYMENTS, path_params={"spaceId": "Spaces-2"}, body=body, key="other-key").body
    for deployment_id in (theirs["id"], "nope"):
        _native_error(_patch(api, deployment_id, {"version": "9"}), 404)
        _native_error(_delete(api, deployment_id), 404)
        _native_error(_history(api, deployment_id), 404)
    assert (
        api.call("GET", ONE, path_params={"spaceId": "Spaces-2", "deploymentId": theirs["id"]}, key="other-key").body[
            "revision"
        ]
        == 1
    )


def test_change_failure_override_wins_after_a_recompute_and_is_shown_apart(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    first = create_deployment(api, version="1", finished_at="2024-03-01T10:00:00Z")
    create_deployment(api, version="2", finished_at="2024-03-01T11:00:00Z")
    _recompute(lambda_context)
    assert _summary(api)["change_failure_rate"]["change_failures"] == 0
    assert _patch(api, first["id"], {"change_failure": True}).status == 200
    _recompute(lambda_context)
    figures = get_deployment(api, first["id"]).body["figures"]
    assert (figures["change_failure"], figures["change_failure_computed"], figures["change_failure_override"]) == (
        True,
        False,
        True,
    )
    assert (figures["change_failure_rule"], figures["change_failure_cause"]) == (0, first["id"])
    assert figures["change_failure_reasons"][0]["name"] == "override"
    assert _summary(api)["change_failure_rate"]["change_failures"] == 1
    assert _patch(api, first["id"], {"change_failure": None}).body["change_failure_override"] is None
    _recompute(lambda_context)
    cleared = get_deployment(api, first["id"]).body["figures"]
    assert (cleared["change_failure"], cleared["change_failure_override"], cleared["change_failure_rule"]) == (
        False,
        None,
        None,
    )
    assert _summary(api)["change_failure_rate"]["change_failures"] == 0


def test_an_override_to_false_wins_over_a_deployment_failure(api: Api, clock: Clock, lambda_context: Any) -> None:
    failed = create_deployment(api, state="Failed", finished_at="2024-03-01T10:00:00Z")
    _patch(api, failed["id"], {"change_failure": False})
    _recompute(lambda_context)
    figures = get_deployment(api, failed["id"]).body["figures"]
    assert (figures["change_failure"], figures["change_failure_computed"], figures["change_failure_rule"]) == (
        False,
        True,
        0,
    )
    assert [r["rule"] for r in figures["change_failure_reasons"]] == [0, 1]


def test_a_rollback_remediation_marks_the_deployment_and_the_remediation(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    bad = create_deployment(api, version="2", finished_at="2024-03-01T10:00:00Z")
    fix = create_deployment(api, version="3", finished_at="2024-03-01T11:00:00Z")
    patched = _patch(api, bad["id"], {"change_failure": True, "remediation": {"id": fix["id"], "type": "rollback"}})
    assert patched.body["remediation"] == {"id": fix["id"], "version": None, "type": "rollback"}
    _recompute(lambda_context)
    figures = get_deployment(api, bad["id"]).body["figures"]
    assert [(r["rule"], r["deployment_id"]) for r in figures["change_failure_reasons"]] == [
        (0, bad["id"]),
        (2, fix["id"]),
    ]
    assert figures["change_failure_computed"] is True
    assert get_deployment(api, fix["id"]).body["figures"]["rework_reason"] == "rollback"
    summary = _summary(api)["change_failure_rate"]
    assert (summary["change_failures"], summary["deployments"]) == (1, 1)  # the rollback is not counted


def test_a_rollforward_remediation_by_version_marks_the_later_deployment_as_a_fix(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    bad = create_deployment(api, version="2", finished_at="2024-03-01T10:00:00Z")
    fix = create_deployment(api, version="2.0.1", finished_at="2024-03-01T11:00:00Z")
    _patch(api, bad["id"], {"remediation": {"version": "2.0.1", "type": "rollforward"}})
    _recompute(lambda_context)
    assert get_deployment(api, bad["id"]).body["figures"]["change_failure_rule"] == 3
    assert get_deployment(api, fix["id"]).body["figures"]["rework_reason"] == "fix"


def test_a_remediation_must_be_a_later_deployment_of_the_same_stream(api: Api, clock: Clock) -> None:
    earlier = create_deployment(api, finished_at="2024-03-01T09:00:00Z")
    bad = create_deployment(api, finished_at="2024-03-01T10:00:00Z")
    elsewhere = create_deployment(api, environment="staging", finished_at="2024-03-01T11:00:00Z")
    for named in (earlier["id"], elsewhere["id"], bad["id"], "missing"):
        result = _patch(api, bad["id"], {"remediation": {"id": named, "type": "rollback"}})
        _native_error(result, 400)
        assert result.body["errors"][0].startswith("remediation.id"), result.body


# --- DELETE ----------------------------------------------------------------------------------------
def test_delete_is_204_then_404_and_summary_stops_counting_it(api: Api, clock: Clock, lambda_context: Any) -> None:
    kept = create_deployment(api, version="1", finished_at="2024-03-01T10:00:00Z")
    gone = create_deployment(api, version="2", finished_at="2024-03-01T11:00:00Z")
    _recompute(lambda_context)
    assert _summary(api)["deployments"] == 2
    deleted = _delete(api, gone["id"])
    assert deleted.status == 204 and deleted.body is None
    _native_error(get_deployment(api, gone["id"]), 404)
    _native_error(_delete(api, gone["id"]), 404)
    _recompute(lambda_context)
    assert _summary(api)["deployments"] == 1
    listed = api.call("GET", DEPLOYMENTS, path_params=SP, key=ADMIN_KEY).body["items"]
    assert [d["id"] for d in listed] == [kept["id"]]


def test_deleting_a_streams_only_deployment_empties_its_figures(api: Api, clock: Clock, lambda_context: Any) -> None:
    only = create_deployment(api, project="solo")
    _recompute(lambda_context)
    assert _summary(api)["deployments"] == 1
    assert _delete(api, only["id"]).status == 204
    assert _summary(api)["deployments"] == 0
    _recompute(lambda_context)
    assert _summary(api)["deployments"] == 0


def test_the_next_deployment_takes_over_the_commits_a_deleted_one_shipped(api: Api, clock: Clock) -> None:
    _push(api, *SHAS)  # positions 1..6 on main, commit times 00:00 .. 05:00
    first = create_deployment(api, repository="acme/shop", commit_sha=SHAS[0], finished_at="2024-03-01T10:00:00Z")
    middle = create_deployment(api, repository="acme/shop", commit_sha=SHAS[2], finished_at="2024-03-01T11:00:00Z")
    last = create_deployment(api, repository="acme/shop", commit_sha=SHAS[4], finished_at="2024-03-01T12:00:00Z")
    assert sorted(get_deployment(api, middle["id"]).body["attribution"]["commits"]) == SHAS[1:3]
    assert sorted(get_deployment(api, last["id"]).body["attribution"]["commits"]) == SHAS[3:5]
    assert _delete(api, middle["id"]).status == 204
    taken = get_deployment(api, last["id"]).body
    assert taken["attribution"]["state"] == "Resolved"
    assert sorted(taken["attribution"]["commits"]) == SHAS[1:5]
    assert taken["attribution"]["change_started_at"] == "2024-03-01T01:00:00.000Z"
    assert taken["figures"]["lead_time_seconds"] == 11 * 3600
    assert get_deployment(api, first["id"]).body["attribution"]["commits"] == [SHAS[0]]
    # A later deployment still ships only what is new after the one that took the changes over.
    after = create_deployment(api, repository="acme/shop", commit_sha=SHAS[5], finished_at="2024-03-01T13:00:00Z")
    assert get_deployment(api, after["id"]).body["attribution"]["commits"] == [SHAS[5]]


def test_deleting_a_deployment_in_the_middle_of_a_longer_history_hands_over_once(api: Api, clock: Clock) -> None:
    _push(api, *SHAS)
    ids = [
        create_deployment(api, repository="acme/shop", commit_sha=SHAS[n], finished_at=f"2024-03-01T1{n}:00:00Z")["id"]
        for n in (0, 1, 3, 5)
    ]
    assert _delete(api, ids[1]).status == 204  # shipped SHAS[1]; the next one (SHAS[3]) takes it over
    assert sorted(get_deployment(api, ids[2]).body["attribution"]["commits"]) == SHAS[1:4]
    assert sorted(get_deployment(api, ids[3]).body["attribution"]["commits"]) == SHAS[4:6]  # unchanged
    assert _delete(api, ids[2]).status == 204  # and again: the last one takes everything after the first
    assert sorted(get_deployment(api, ids[3]).body["attribution"]["commits"]) == SHAS[1:6]


def test_correcting_a_success_to_failed_hands_its_commits_on_and_back(api: Api, clock: Clock) -> None:
    _push(api, *SHAS)
    create_deployment(api, repository="acme/shop", commit_sha=SHAS[0], finished_at="2024-03-01T10:00:00Z")
    middle = create_deployment(api, repository="acme/shop", commit_sha=SHAS[2], finished_at="2024-03-01T11:00:00Z")
    last = create_deployment(api, repository="acme/shop", commit_sha=SHAS[4], finished_at="2024-03-01T12:00:00Z")
    failed = _patch(api, middle["id"], {"state": "Failed"})
    assert failed.status == 200, failed.body
    assert failed.body["attribution"]["state"] == "None" and failed.body["attribution"]["commits"] == []
    assert sorted(get_deployment(api, last["id"]).body["attribution"]["commits"]) == SHAS[1:5]
    restored = _patch(api, middle["id"], {"state": "Success"})
    assert sorted(restored.body["attribution"]["commits"]) == SHAS[1:3]
    assert sorted(get_deployment(api, last["id"]).body["attribution"]["commits"]) == SHAS[3:5]


# --- the record of corrections -------------------------------------------------------------------------
def test_every_correction_and_the_removal_are_recorded_newest_first_and_outlive_the_deployment(
    api: Api, clock: Clock
) -> None:
    created = create_deployment(api, version="1")
    clock.now = datetime(2024, 3, 1, 13, 0, tzinfo=UTC)
    _patch(api, created["id"], {"version": "2"})
    clock.now = datetime(2024, 3, 1, 14, 0, tzinfo=UTC)
    _patch(api, created["id"], {"change_failure": True, "tags": ["why:incident"]})
    clock.now = datetime(2024, 3, 1, 15, 0, tzinfo=UTC)
    assert _delete(api, created["id"]).status == 204
    history = _history(api, created["id"])
    assert history.status == 200, history.body
    items = history.body["items"]
    assert [i["action"] for i in items] == ["delete", "correct", "correct"]
    assert [i["at"] for i in items] == [
        "2024-03-01T15:00:00.000Z",
        "2024-03-01T14:00:00.000Z",
        "2024-03-01T13:00:00.000Z",
    ]
    assert all(i["actor"] == "test admin (ApiKeys-1)" and i["deployment_id"] == created["id"] for i in items)
    assert items[2]["changes"] == {"version": {"before": "1", "after": "2"}}
    assert items[2]["revision"] == 2
    assert items[1]["changes"] == {
        "change_failure": {"before": None, "after": True},
        "tags": {"before": [], "after": ["why:incident"]},
    }
    assert items[0]["removed"]["version"] == "2" and items[0]["removed"]["change_failure_override"] is True
    first = _history(api, created["id"], limit="2")
    assert [i["id"] for i in first.body["items"]] == [i["id"] for i in items[:2]]
    rest = _history(api, created["id"], limit="2", cursor=first.body["next_cursor"])
    assert rest.body == {"items": items[2:], "next_cursor": None}
    _native_error(_history(api, created["id"], cursor="not-a-cursor"), 400)


# --- the tag filter ------------------------------------------------------------------------------------
def test_the_list_filters_by_every_tag_given(api: Api, clock: Clock) -> None:
    both = create_deployment(api, tags=["team:a", "tier:1"], finished_at="2024-03-01T10:00:00Z")
    one = create_deployment(api, tags=["team:a"], finished_at="2024-03-01T11:00:00Z")
    create_deployment(api, tags=["team:b"], finished_at="2024-03-01T12:00:00Z")

    def ids(query: str) -> list[str]:
        result = api.call("GET", DEPLOYMENTS, path_params=SP, query={"tag": query}, key=ADMIN_KEY)
        assert result.status == 200, result.body
        return [d["id"] for d in result.body["items"]]

    assert ids("team:a") == [one["id"], both["id"]]
    assert ids("team:a,tier:1") == [both["id"]]
    assert ids("team:c") == []
    _patch(api, one["id"], {"tags": ["team:a", "tier:1"]})
    assert ids("tier:1") == [one["id"], both["id"]]
    bad = api.call("GET", DEPLOYMENTS, path_params=SP, query={"tag": "no-colon"}, key=ADMIN_KEY)
    _native_error(bad, 400)


# --- failure events ------------------------------------------------------------------------------------
def test_a_failure_event_is_read_and_deleted_and_stops_charging_its_deployment(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    deployed = create_deployment(api, finished_at="2024-03-01T10:00:00Z")
    body = {"project": "shop", "environment": "production", "started_at": "2024-03-01T11:00:00Z"}
    created = api.call("POST", FAILURES, path_params=SP, body=body, key=ADMIN_KEY).body
    found = api.call("GET", FAILURE, path_params={**SP, "failureId": created["id"]}, key=ADMIN_KEY)
    assert found.status == 200 and found.body == created
    _recompute(lambda_context)
    assert get_deployment(api, deployed["id"]).body["figures"]["change_failure_rule"] == 5
    deleted = api.call("DELETE", FAILURE, path_params={**SP, "failureId": created["id"]}, key=ADMIN_KEY)
    assert deleted.status == 204
    _native_error(api.call("GET", FAILURE, path_params={**SP, "failureId": created["id"]}, key=ADMIN_KEY), 404)
    _native_error(api.call("DELETE", FAILURE, path_params={**SP, "failureId": created["id"]}, key=ADMIN_KEY), 404)
    _recompute(lambda_context)
    assert get_deployment(api, deployed["id"]).body["figures"]["change_failure"] is False


def test_another_spaces_failure_event_is_404(api: Api, clock: Clock, store: Any) -> None:
    from dora_insights.logic import admin

    admin.ensure_space(store, "Spaces-2", "Other", clock.now)
    admin.ensure_api_key(store, "Spaces-2", "other admin", "other-key", clock.now)
    body = {"project": "shop", "started_at": "2024-03-01T11:00:00Z"}
    theirs = api.call("POST", FAILURES, path_params={"spaceId": "Spaces-2"}, body=body, key="other-key").body
    for method in ("GET", "DELETE"):
        _native_error(api.call(method, FAILURE, path_params={**SP, "failureId": theirs["id"]}, key=ADMIN_KEY), 404)
    kept = api.call("GET", FAILURE, path_params={"spaceId": "Spaces-2", "failureId": theirs["id"]}, key="other-key")
    assert kept.status == 200


# --- other dialects' ids -------------------------------------------------------------------------------
def _dx(api: Api, route: str, **fields: Any) -> HttpResult:
    body = {"reference_id": "dx-ref-1", "deployed_at": 1709290800, "service": "shop", **fields}
    return api.call("POST", route, body=body, key=ADMIN_KEY)


def test_a_removed_dx_deployments_reference_id_creates_a_new_one(api: Api, clock: Clock) -> None:
    first = _dx(api, "/api/deployments.create")
    assert first.status == 200, first.body
    assert _delete(api, first.body["deployment"]["id"]).status == 204
    again = _dx(api, "/api/deployments.create", deployed_at=1709294400)
    assert again.status == 200, again.body
    assert again.body["deployment"]["id"] != first.body["deployment"]["id"]


def test_a_dx_upsert_is_the_next_revision_and_keeps_the_corrections(api: Api, clock: Clock) -> None:
    created = _dx(api, "/api/deployments.create").body["deployment"]
    _patch(api, created["id"], {"change_failure": True})
    replaced = _dx(api, "/api/deployments.upsert", deployed_at=1709294400)
    assert replaced.status == 200, replaced.body
    stored = get_deployment(api, created["id"]).body
    assert (stored["revision"], stored["change_failure_override"]) == (3, True)
    assert stored["finished_at"] == "2024-03-01T12:00:00.000Z"
