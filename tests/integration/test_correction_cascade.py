"""A correction or a removal reaches every later success of the stream whose shipment starts at a mark it
moves, and no further (METRICS §5, ``logic/succession.following``), through the real routes against moto.

What these keep:

- When the stream's next success naming code deployed an older commit than the corrected deployment (it
  shipped nothing new, or less), the successes after it start at the corrected deployment's mark too: they
  are attributed again, up to the first one that shipped up to or past that mark. Without that, commits
  are shipped by nobody (a success corrected to Failed, or deleted) or by two deployments (a failure
  corrected to Success). Each case equals a fresh ingest of the corrected history in a second space.
- The walk stops there: when the successor shipped past the corrected deployment's mark (the common case)
  no later deployment is attributed again, and the correction makes the same DynamoDB calls whether or not
  the stream has later deployments.
- It is bounded (``MAX_FOLLOWING``): one transaction holds the correction and every deployment it
  attributes again.

The first three tests are the review's (``test_zz_review_corrections.py``, defect D1), kept here.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from dora_insights.logic import corrections, succession
from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.support.code import commit, send_changes
from tests.support.fixtures import OTHER_KEY
from tests.support.native import get_deployment, send_stream
from tests.support.recompute import scheduled_run
from tests.support.table import count_calls

SPACE = "Spaces-1"
SP = {"spaceId": SPACE}
ONE = "/api/{spaceId}/deployments/{deploymentId}"
REPO = "acme/shop"
SHAS = [f"{n:040x}" for n in range(1, 10)]  # positions 1..9 on main, committed at 00:00 .. 08:00


def _push(api: Api, *, space: str = SPACE, key: str = ADMIN_KEY) -> None:
    """Commits 0.. of ``SHAS`` on main, commit n made at n:00 (``SHAS[n]`` is ``sha(n)``)."""
    send_changes(api, commits=[commit(n, n) for n in range(len(SHAS))], space=space, key=key)


def _send(
    api: Api, states: list[str | None], shas: list[int], *, space: str = SPACE, key: str = ADMIN_KEY
) -> list[str | None]:
    """One deployment an hour from 10:00 per state (None: not sent), deploying ``SHAS[shas[n]]``; their ids."""
    code = [{"repository": REPO, "commit_sha": SHAS[n]} for n in shas]
    return send_stream(api, states, code, space=space, key=key, first_version=0)


def _patch(
    api: Api, deployment_id: str, body: dict[str, Any], *, space: str = SPACE, key: str = ADMIN_KEY
) -> HttpResult:
    return api.call("PATCH", ONE, path_params={"spaceId": space, "deploymentId": deployment_id}, body=body, key=key)


def _delete(api: Api, deployment_id: str, *, space: str = SPACE, key: str = ADMIN_KEY) -> HttpResult:
    return api.call("DELETE", ONE, path_params={"spaceId": space, "deploymentId": deployment_id}, key=key)


def _shipped(api: Api, ids: list[str | None], *, space: str = SPACE, key: str = ADMIN_KEY) -> list[Any]:
    """Per deployment (None: not there): the commits it shipped and its lead time."""
    found: list[Any] = []
    for deployment_id in ids:
        if deployment_id is None:
            found.append(None)
            continue
        body = get_deployment(api, deployment_id, space=space, key=key).body
        attribution, figures = body["attribution"] or {}, body["figures"] or {}
        found.append((sorted(attribution.get("commits") or []), figures.get("lead_time_seconds")))
    return found


def _commits(shipped: list[Any]) -> list[Any]:
    """The commits of ``_shipped``'s answer (None for a deployment not there)."""
    return [None if entry is None else entry[0] for entry in shipped]


def _attributions(api: Api, ids: list[str | None]) -> list[Any]:
    """Per deployment: its attribution as stored (attempts, resolved_at, ...): one attributed again differs."""
    return [None if d is None else get_deployment(api, d).body["attribution"] for d in ids]


def _recompute(clock: Clock, lambda_context: Any) -> None:
    clock.advance(timedelta(minutes=1))
    scheduled_run(lambda_context)


def _correct(api: Api, deployment_id: str, now: str | None, *, space: str = SPACE, key: str = ADMIN_KEY) -> None:
    """Correct the deployment's state to ``now``, or delete it (None)."""
    if now is None:
        assert _delete(api, deployment_id, space=space, key=key).status == 204
    else:
        assert _patch(api, deployment_id, {"state": now}, space=space, key=key).status == 200


def _fresh(
    api: Api, clock: Clock, lambda_context: Any, states: list[str | None], shas: list[int], space: str
) -> list[Any]:
    """The corrected history sent afresh in ``space`` (its own key): what each deployment shipped."""
    _push(api, space=space, key=OTHER_KEY)
    fresh = _send(api, states, shas, space=space, key=OTHER_KEY)
    _recompute(clock, lambda_context)
    return _shipped(api, fresh, space=space, key=OTHER_KEY)


# --- the review's tests (D1) -------------------------------------------------------------------------
@pytest.mark.parametrize("correction", [{"state": "Failed"}, None], ids=["failed", "deleted"])
def test_a_success_removed_from_the_history_hands_all_its_commits_on_when_the_next_one_deployed_an_older_commit(
    api: Api, clock: Clock, lambda_context: Any, other_space: str, correction: dict[str, Any] | None
) -> None:
    # S0 deploys commit 1, S1 commit 5, S2 commit 3 (an older one: it ships nothing new), S3 commit 7.
    _push(api)
    ids = _send(api, ["Success"] * 4, [0, 4, 2, 6])
    assert _shipped(api, ids)[1][0] == SHAS[1:5] and _shipped(api, ids)[3][0] == SHAS[5:7]
    s1 = ids[1]
    assert s1 is not None
    if correction is None:
        assert _delete(api, s1).status == 204
        ids[1] = None
        now: str | None = None
    else:
        assert _patch(api, s1, correction).status == 200
        now = "Failed"
    # The corrected history sent afresh: S2 ships commits 2-3, S3 commits 4-7 (lead time from 03:00).
    _push(api, space=other_space, key=OTHER_KEY)
    fresh = _send(api, ["Success", now, "Success", "Success"], [0, 4, 2, 6], space=other_space, key=OTHER_KEY)
    clock.advance(timedelta(minutes=1))
    scheduled_run(lambda_context)
    expected = _shipped(api, fresh, space=other_space, key=OTHER_KEY)
    assert expected[3] == (SHAS[3:7], 10 * 3600.0)
    # Before the fix: S3 kept commits 6-7 (lead time 8 h); commits 4 and 5 were shipped by no deployment.
    assert _shipped(api, ids) == expected


def test_a_failed_deployment_corrected_to_success_does_not_leave_its_commits_shipped_twice(
    api: Api, clock: Clock, lambda_context: Any, other_space: str
) -> None:
    # S1 (commit 5) failed; S2 (commit 3) shipped 2-3, S3 (commit 7) shipped 4-7.
    _push(api)
    ids = _send(api, ["Success", "Failed", "Success", "Success"], [0, 4, 2, 6])
    assert _shipped(api, ids)[3][0] == SHAS[3:7]
    s1 = ids[1]
    assert s1 is not None
    assert _patch(api, s1, {"state": "Success"}).status == 200
    _push(api, space=other_space, key=OTHER_KEY)
    fresh = _send(api, ["Success"] * 4, [0, 4, 2, 6], space=other_space, key=OTHER_KEY)
    clock.advance(timedelta(minutes=1))
    scheduled_run(lambda_context)
    got = _shipped(api, ids)
    shipped = [sha for entry in got for sha in entry[0]]
    assert len(shipped) == len(set(shipped)), f"commits shipped by two deployments: {got}"  # 4 and 5: S1 and S3
    assert got == _shipped(api, fresh, space=other_space, key=OTHER_KEY)


# --- where the walk stops ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sent", "now"),
    [("Success", "Failed"), ("Success", None), ("Failed", "Success")],
    ids=["failed", "deleted", "success"],
)
def test_when_the_successor_shipped_past_the_corrected_deployment_no_later_one_is_attributed_again(
    api: Api, clock: Clock, lambda_context: Any, other_space: str, sent: str, now: str | None
) -> None:
    # S0 commit 1, S1 commit 3 (corrected), S2 commit 5, S3 commit 7, S4 commit 9: a linear history.
    shas = [0, 2, 4, 6, 8]
    _push(api)
    ids = _send(api, ["Success", sent, "Success", "Success", "Success"], shas)
    before = _attributions(api, ids)
    s1 = ids[1]
    assert s1 is not None
    _correct(api, s1, now)
    if now is None:
        ids[1] = None
    after = _attributions(api, ids)
    assert after[2] != before[2]  # the successor is attributed again
    assert after[3:] == before[3:]  # and nothing after it: same attempts, same resolved_at, same pages
    expected = _fresh(api, clock, lambda_context, ["Success", now, "Success", "Success", "Success"], shas, other_space)
    assert _shipped(api, ids) == expected


@pytest.mark.parametrize(
    ("sent", "now"),
    [("Success", "Failed"), ("Success", None), ("Failed", "Success")],
    ids=["failed", "deleted", "success"],
)
def test_a_correction_costs_the_same_calls_whether_or_not_the_stream_has_later_deployments(
    api: Api, monkeypatch: pytest.MonkeyPatch, other_space: str, sent: str, now: str | None
) -> None:
    """The successor shipped past the corrected deployment: the correction reads nothing more (no Query of
    the stream past the successor, no code data) and its transaction writes nothing more, with later
    deployments (this space) or without (the other). Counted up to its transaction: the attempts that
    follow are the attribution's own (``logic/attribution``)."""
    shas = [0, 2, 4, 6, 8]
    spent: list[Counter[str]] = []
    written: list[int] = []
    follow = corrections.follow
    for space, key, count in ((SPACE, ADMIN_KEY, 5), (other_space, OTHER_KEY, 3)):
        _push(api, space=space, key=key)
        ids = _send(api, ["Success", sent, "Success", "Success", "Success"][:count], shas, space=space, key=key)
        s1 = ids[1]
        assert s1 is not None
        with monkeypatch.context() as patched:
            calls = count_calls(patched)

            def counted(store: Any, space_id: str, plan: Any, now: Any, calls: Counter[str] = calls) -> None:
                spent.append(Counter(calls))  # the reads and the transaction, before the attempts
                written.append(len(plan.operations))
                follow(store, space_id, plan, now)

            patched.setattr(corrections, "follow", counted)
            _correct(api, s1, now, space=space, key=key)
    longer, shorter = spent
    assert longer == shorter
    assert longer["transact_write_items"] == 1
    assert written[0] == written[1]


# --- a longer chain ------------------------------------------------------------------------------------
# S0 commit 1, S1 commit 7 (corrected), S2 commit 3, S3 commit 5, S4 commit 2, S5 commit 8, S6 commit 9.
CHAIN = [0, 6, 2, 4, 1, 7, 8]


@pytest.mark.parametrize(("sent", "now"), [("Success", "Failed"), ("Success", None)], ids=["failed", "deleted"])
def test_a_chain_of_older_commits_after_a_removed_success_ships_what_a_fresh_ingest_does(
    api: Api, clock: Clock, lambda_context: Any, other_space: str, sent: str, now: str | None
) -> None:
    _push(api)
    ids = _send(api, ["Success", sent, *["Success"] * 5], CHAIN)
    assert _commits(_shipped(api, ids)) == [SHAS[0:1], SHAS[1:7], [], [], [], SHAS[7:8], SHAS[8:9]]
    before = _attributions(api, ids)
    s1 = ids[1]
    assert s1 is not None
    _correct(api, s1, now)
    if now is None:
        ids[1] = None
    expected = _fresh(api, clock, lambda_context, ["Success", now, *["Success"] * 5], CHAIN, other_space)
    # S2 ships 2-3, S3 4-5, S4 (commit 2) nothing, S5 6-8, S6 9: S2 to S5 are attributed again, S6 is not.
    s1_shipped = None if now is None else []
    assert _commits(expected) == [SHAS[0:1], s1_shipped, SHAS[1:3], SHAS[3:5], [], SHAS[5:8], SHAS[8:9]]
    assert _shipped(api, ids) == expected
    assert _attributions(api, ids)[6] == before[6]


def test_a_failure_corrected_to_success_before_a_chain_of_older_commits_takes_back_what_they_shipped(
    api: Api, clock: Clock, lambda_context: Any, other_space: str
) -> None:
    _push(api)
    ids = _send(api, ["Success", "Failed", *["Success"] * 5], CHAIN)
    assert _commits(_shipped(api, ids)) == [SHAS[0:1], [], SHAS[1:3], SHAS[3:5], [], SHAS[5:8], SHAS[8:9]]
    before = _attributions(api, ids)
    s1 = ids[1]
    assert s1 is not None
    _correct(api, s1, "Success")
    expected = _fresh(api, clock, lambda_context, ["Success"] * 7, CHAIN, other_space)
    assert _commits(expected) == [SHAS[0:1], SHAS[1:7], [], [], [], SHAS[7:8], SHAS[8:9]]
    got = _shipped(api, ids)
    shipped = [sha for entry in got for sha in entry[0]]
    assert len(shipped) == len(set(shipped)), f"commits shipped by two deployments: {got}"
    assert got == expected
    assert _attributions(api, ids)[6] == before[6]


def test_the_walk_stops_after_max_following_deployments(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Past ``MAX_FOLLOWING`` deployments attributed again the walk stops, logged (one transaction holds
    the correction and all of them): the later ones keep what they shipped."""
    monkeypatch.setattr(succession, "MAX_FOLLOWING", 2)
    _push(api)
    ids = _send(api, ["Success"] * 7, CHAIN)
    before = _attributions(api, ids)
    s1 = ids[1]
    assert s1 is not None
    caplog.clear()
    _correct(api, s1, "Failed")
    after = _attributions(api, ids)
    assert after[2] != before[2] and after[3] != before[3]  # S2 and S3 attributed again
    assert after[4:] == before[4:]  # S4 on: untouched
    warned = [r.getMessage() for r in caplog.records if r.name == "dora-insights" and r.levelno == logging.WARNING]
    assert [m for m in warned if "more deployments than it attributes again" in m] != []
