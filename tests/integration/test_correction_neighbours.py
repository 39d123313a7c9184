"""Corrections and removals reach the deployments whose numbers depend on the changed one (issue 16):

- another environment's Release lead time, whose release first-seen time is taken across the project
  (METRICS §3): a version correction or a removal marks the project's other streams for the recompute;
- the stream's next successful deployment that names code, past successes that name none (METRICS §5):
  it takes over, or gives back, the changes the corrected deployment shipped.

Each is compared with a fresh ingest of the corrected history in a second space, through the real routes
against moto."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.support.code import commit, send_changes
from tests.support.fixtures import OTHER_KEY
from tests.support.insights import create_report
from tests.support.native import create_deployment, get_deployment, send_stream
from tests.support.recompute import scheduled_run

SPACE = "Spaces-1"
ONE = "/api/{spaceId}/deployments/{deploymentId}"
SHAS = [f"{n:040x}" for n in range(1, 7)]
REPO = "acme/shop"


def _patch(api: Api, deployment_id: str, body: dict[str, Any]) -> HttpResult:
    params = {"spaceId": SPACE, "deploymentId": deployment_id}
    return api.call("PATCH", ONE, path_params=params, body=body, key=ADMIN_KEY)


def _delete(api: Api, deployment_id: str) -> HttpResult:
    return api.call("DELETE", ONE, path_params={"spaceId": SPACE, "deploymentId": deployment_id}, key=ADMIN_KEY)


def _read(api: Api, deployment_id: str, *, space: str = SPACE, key: str = ADMIN_KEY) -> dict[str, Any]:
    found = get_deployment(api, deployment_id, space=space, key=key)
    assert found.status == 200, found.body
    return found.body  # type: ignore[no-any-return]


def _recompute(clock: Clock, lambda_context: Any) -> None:
    """A minute later, the scheduled recompute (a mark set at the same instant as the last run counts)."""
    clock.advance(timedelta(minutes=1))
    scheduled_run(lambda_context)


# --- D1: another environment's Release lead time ----------------------------------------------------
def _releases(
    api: Api, staging_version: str | None, *, space: str = SPACE, key: str = ADMIN_KEY, with_staging: bool = True
) -> tuple[str | None, str]:
    """Staging at 10:00 (with ``staging_version``), then production 1.0 at 12:00: their ids."""
    staging = None
    if with_staging:
        fields: dict[str, Any] = {} if staging_version is None else {"version": staging_version}
        staging = create_deployment(
            api, space=space, key=key, environment="staging", finished_at="2024-03-01T10:00:00Z", **fields
        )["id"]
    production = create_deployment(api, space=space, key=key, version="1.0", finished_at="2024-03-01T12:00:00Z")["id"]
    return staging, production


def _lead(api: Api, deployment_id: str, *, space: str = SPACE, key: str = ADMIN_KEY) -> tuple[Any, Any]:
    figures = _read(api, deployment_id, space=space, key=key)["figures"] or {}
    return figures.get("lead_time_seconds"), figures.get("lead_time_source")


@pytest.mark.parametrize(
    ("before", "change", "after"),
    [
        ("1.0", {"version": "0.9"}, "0.9"),  # the release production ships no longer seen earlier
        ("1.0", {"version": None}, None),
        ("0.9", {"version": "1.0"}, "1.0"),  # and the other way: now seen two hours before production
        (None, {"version": "1.0"}, "1.0"),
        ("1.0", None, "deleted"),
    ],
)
def test_a_version_correction_or_a_removal_refreshes_another_environments_release_lead_time(
    api: Api,
    clock: Clock,
    lambda_context: Any,
    other_space: str,
    before: str | None,
    change: dict[str, Any] | None,
    after: str | None,
) -> None:
    staging, production = _releases(api, before)
    _recompute(clock, lambda_context)
    assert _lead(api, production) == ((7200.0 if before == "1.0" else 0.0), "Release")
    assert staging is not None
    if change is None:
        assert _delete(api, staging).status == 204
    else:
        assert _patch(api, staging, change).status == 200
    # The same history sent as it now is, in a space of its own.
    _, fresh = _releases(api, after, space=other_space, key=OTHER_KEY, with_staging=after != "deleted")
    _recompute(clock, lambda_context)
    expected = _lead(api, fresh, space=other_space, key=OTHER_KEY)
    assert expected == ((7200.0 if after == "1.0" else 0.0), "Release")
    assert _lead(api, production) == expected


def test_a_correction_that_leaves_the_version_marks_no_other_stream(
    api: Api, clock: Clock, lambda_context: Any, store: Any
) -> None:
    staging, production = _releases(api, "1.0")
    _recompute(clock, lambda_context)
    assert staging is not None
    marks = {e["stream"]: e["dirty_at"] for e in store.list_dirty_streams(SPACE)}
    clock.advance(timedelta(minutes=1))
    assert _patch(api, staging, {"tags": ["team:a"], "change_failure": True, "state": "Failed"}).status == 200
    moved = [e["stream"] for e in store.list_dirty_streams(SPACE) if marks.get(e["stream"]) != e["dirty_at"]]
    staging_environment = _read(api, staging)["environment_id"]
    assert [stream.split("/")[2] for stream in moved] == [staging_environment]  # its own stream's mark only
    _recompute(clock, lambda_context)
    assert _lead(api, production) == (7200.0, "Release")


# --- D2: the next success that names code, past one that names none --------------------------------
def _push(api: Api, *, space: str = SPACE, key: str = ADMIN_KEY) -> None:
    """Commits 0.. of ``SHAS`` on main, commit n made at n:00 (``SHAS[n]`` is ``sha(n)``)."""
    send_changes(api, commits=[commit(n, n) for n in range(len(SHAS))], space=space, key=key)


def _stream(codeless: int) -> list[dict[str, str]]:
    """The code each deployment names: S0 SHAS[0], S1 SHAS[2], ``codeless`` deployments that name none,
    then one naming SHAS[4], and a last one naming SHAS[5] (sent after the correction)."""
    return [
        {"repository": REPO, "commit_sha": SHAS[0]},
        {"repository": REPO, "commit_sha": SHAS[2]},
        *([{}] * codeless),
        {"repository": REPO, "commit_sha": SHAS[4]},
        {"repository": REPO, "commit_sha": SHAS[5]},
    ]


def _send(
    api: Api, code: list[dict[str, Any]], states: list[str | None], *, space: str = SPACE, key: str = ADMIN_KEY
) -> list[str | None]:
    """The first ``len(states)`` deployments of the stream, one an hour from 10:00, in ``states`` (None: not
    sent); their ids (None for those not sent)."""
    return send_stream(api, states, code, space=space, key=key)


def _numbers(api: Api, ids: list[str | None], *, space: str = SPACE, key: str = ADMIN_KEY) -> list[Any]:
    """What each deployment shipped and its figures, deployments named by their place in the stream."""
    place = {deployment_id: n for n, deployment_id in enumerate(ids) if deployment_id is not None}
    found: list[Any] = []
    for deployment_id in ids:
        if deployment_id is None:
            found.append(None)
            continue
        body = _read(api, deployment_id, space=space, key=key)
        attribution = body["attribution"] or {}
        figures = body["figures"] or {}
        found.append(
            {
                "state": attribution.get("state"),
                "commits": sorted(attribution.get("commits") or []),
                "change_started_at": attribution.get("change_started_at"),
                "lead_time_seconds": figures.get("lead_time_seconds"),
                "lead_time_source": figures.get("lead_time_source"),
                "previous_success": place.get(figures.get("previous_success_id") or ""),
                "change_failure": figures.get("change_failure"),
                "time_to_recovery_seconds": figures.get("time_to_recovery_seconds"),
            }
        )
    return found


@pytest.mark.parametrize("codeless", [1, 2])
@pytest.mark.parametrize(
    ("sent", "correction", "now"),
    [
        ("Success", {"state": "Failed"}, "Failed"),
        ("Success", None, None),  # deleted
        ("Failed", {"state": "Success"}, "Success"),
    ],
)
def test_the_next_success_naming_code_takes_over_past_ones_that_name_none(
    api: Api,
    clock: Clock,
    lambda_context: Any,
    other_space: str,
    sent: str,
    correction: dict[str, Any] | None,
    now: str | None,
    codeless: int,
) -> None:
    code = _stream(codeless)
    middle = ["Success"] * codeless
    _push(api)
    ids = _send(api, code, ["Success", sent, *middle, "Success"])
    s1 = ids[1]
    assert s1 is not None
    if correction is None:
        assert _delete(api, s1).status == 204
        ids[1] = None
    else:
        assert _patch(api, s1, correction).status == 200
    # The corrected history sent afresh in a space of its own.
    _push(api, space=other_space, key=OTHER_KEY)
    fresh = _send(api, code, ["Success", now, *middle, "Success"], space=other_space, key=OTHER_KEY)
    _recompute(clock, lambda_context)
    expected = _numbers(api, fresh, space=other_space, key=OTHER_KEY)
    # What the fresh ingest gives: the deployment naming code ships everything after the last success
    # that shipped code (S1's commits when S1 is no success), its lead time from the first of them.
    taker, finished = expected[-1], 12 + codeless
    if now == "Success":
        assert taker["commits"] == SHAS[3:5] and taker["lead_time_seconds"] == (finished - 3) * 3600
    else:
        assert taker["commits"] == SHAS[1:5] and taker["lead_time_seconds"] == (finished - 1) * 3600
    assert _numbers(api, ids) == expected
    # And the stream's marks stand where the fresh ingest's do: the next deployment ships SHAS[5] alone.
    later = _send(api, code, [None] * len(ids) + ["Success"])[-1]
    fresh_later = _send(api, code, [None] * len(ids) + ["Success"], space=other_space, key=OTHER_KEY)[-1]
    _recompute(clock, lambda_context)
    assert _numbers(api, [*ids, later]) == _numbers(api, [*fresh, fresh_later], space=other_space, key=OTHER_KEY)
    assert _read(api, str(later))["attribution"]["commits"] == [SHAS[5]]


@pytest.mark.parametrize("ticks", [1, 2])
def test_a_backfilled_deployment_refreshes_another_environments_release_lead_time(
    api: Api, clock: Clock, lambda_context: Any, other_space: str, ticks: int
) -> None:
    """Staging's 10:00 deployment of 1.0 sent after production's 12:00 one (a backfill, or a late
    pipeline): the release was first seen two hours before production shipped it. The recompute of
    staging's stream finds that production's figures read another first-seen time and marks that
    stream; after the next tick (``ticks == 2``), or a read's refresh of it (``ticks == 1``), production
    equals a fresh ingest in order."""
    _, production = _releases(api, None, with_staging=False)
    _recompute(clock, lambda_context)
    assert _lead(api, production) == (0.0, "Release")
    create_deployment(api, environment="staging", version="1.0", finished_at="2024-03-01T10:00:00Z")
    _, fresh = _releases(api, "1.0", space=other_space, key=OTHER_KEY)
    for _ in range(ticks):
        _recompute(clock, lambda_context)
    expected = _lead(api, fresh, space=other_space, key=OTHER_KEY)
    assert expected == (7200.0, "Release")
    assert _lead(api, production) == expected


@pytest.mark.parametrize("reader", ["deployment", "report"])
def test_a_backfill_caught_up_by_a_read_still_refreshes_another_environments_release_lead_time(
    api: Api, clock: Clock, lambda_context: Any, other_space: str, reader: str
) -> None:
    """As above, but a read catches staging's stream up before any tick does: ``GET /deployments/{id}``
    of the staging deployment (its own stream only) or a report's refresh (its marked streams only).
    That recompute must still find production's figures stale, though the read loaded no other stream's
    registration: the tick skips a stream a read caught up, so nothing else would mark production."""
    report_id = create_report(api)
    _, production = _releases(api, None, with_staging=False)
    _recompute(clock, lambda_context)
    staging = create_deployment(api, environment="staging", version="1.0", finished_at="2024-03-01T10:00:00Z")["id"]
    clock.advance(timedelta(minutes=1))  # the mark settled: the read records it caught up
    if reader == "deployment":
        assert _read(api, staging)["figures"] is not None
    else:
        read = api.call(
            "GET",
            "/api/{spaceId}/insights/reports/{reportId}/metrics",
            path_params={"spaceId": SPACE, "reportId": report_id},
            key=ADMIN_KEY,
        )
        assert read.status == 200, read.body
    _, fresh = _releases(api, "1.0", space=other_space, key=OTHER_KEY)
    _recompute(clock, lambda_context)
    _recompute(clock, lambda_context)
    expected = _lead(api, fresh, space=other_space, key=OTHER_KEY)
    assert expected == (7200.0, "Release")
    assert _lead(api, production) == expected
