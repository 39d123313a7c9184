"""A stream's branch marks after removals (METRICS §5: a correction or a removal gives what a fresh ingest of
the corrected history gives), through the real routes against moto.

What these keep:

- A branch mark keeps one level of history: a removal moves it back to where it was before the removed
  deployment moved it, and leaves it without an owner (``dal/attribution._revert_mark``). When a second
  removal finds it standing where the deployment it removes had left it (the newest success removed, then
  the one before it), the cleanup restores it from the positions the stream's remaining deployments
  recorded, with an owner (``AttributionStore._restored_mark``); with none left, the mark goes. The next
  deployment of the stream, a new one or a DX upsert in place, then ships from the remaining success.
- A deployment a DX upsert moved to another service no longer counts in its old stream, though the old
  stream's dirty mark still names it as one of its last writes: the old stream's rewound attempts ignore
  the positions it recorded (``LedgerStore._recent_mark``).
- Where these changed the code, the common paths make the DynamoDB calls they made before: a removal's
  cleanup of a mark its deployment owns or another deployment moved since (one GetItem per mark), a new
  deployment's read of its stream's last writes, a rewound attempt's read of its branch position.

The stale mark is reached through three routes (two removals then a new deployment; three removals; two
removals then a DX upsert in place). Each reproduction compares what the deployments
shipped, and their lead times, with a fresh ingest of the final history in a second space.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from dora_insights.dal import attribution as dal_attribution
from dora_insights.dal import keys
from dora_insights.logic import attribution as logic_attribution
from tests.conftest import ADMIN_KEY, Api, Aws, Clock
from tests.support.code import commit, deploy, send_changes, sha
from tests.support.fixtures import OTHER_KEY
from tests.support.native import get_deployment
from tests.support.read_cost import Meter
from tests.support.recompute import scheduled_run
from tests.support.retries import drain_retries
from tests.support.table import scan

SPACE = "Spaces-1"
REPO = "acme/shop"
ONE = "/api/{spaceId}/deployments/{deploymentId}"
UPSERT = "/api/deployments.upsert"


def _at(minute: int) -> str:
    """``minute`` minutes after 2024-03-01 10:00 (before the tests' clock, 12:00)."""
    return f"2024-03-01T{10 + minute // 60:02d}:{minute % 60:02d}:00Z"


def _push(api: Api, commits: int, *, space: str = SPACE, key: str = ADMIN_KEY) -> None:
    """Commits 0..``commits``-1 on main, commit n made at n:00."""
    send_changes(api, commits=[commit(n, n) for n in range(commits)], space=space, key=key)


def _native(api: Api, minute: int, n: int, *, state: str = "Success", space: str = SPACE, key: str = ADMIN_KEY) -> str:
    """A native deployment of shop to production finished at ``_at(minute)``, deploying commit ``n``; its id."""
    return deploy(api, _at(minute), commit_sha=sha(n), state=state, version=f"1.{minute}", space=space, key=key)


def _remove(api: Api, deployment_id: str, how: str) -> None:
    """Delete the deployment (``deleted``) or correct it to Failed (``failed``)."""
    path = {"spaceId": SPACE, "deploymentId": deployment_id}
    if how == "deleted":
        assert api.call("DELETE", ONE, path_params=path, key=ADMIN_KEY).status == 204
    else:
        result = api.call("PATCH", ONE, path_params=path, body={"state": "Failed"}, key=ADMIN_KEY)
        assert result.status == 200, result.body


def _dx(api: Api, reference: str, minute: int, n: int, *, key: str = ADMIN_KEY, **fields: Any) -> str:
    """A DX upsert of ``reference`` (service shop, production) deployed at ``_at(minute)``, commit ``n``; its id."""
    body = {
        "reference_id": reference,
        "deployed_at": _at(minute),
        "service": "shop",
        "environment": "production",
        "repository": REPO,
        "commit_sha": sha(n),
        "success": True,
        **fields,
    }
    result = api.call("POST", UPSERT, body=body, key=key)
    assert result.status == 200, result.body
    return str(result.body["deployment"]["id"])


def _recompute(clock: Clock, lambda_context: Any) -> None:
    """A minute later, the scheduled recompute."""
    clock.advance(timedelta(minutes=1))
    scheduled_run(lambda_context)


def _shipped(api: Api, ids: list[str], *, space: str = SPACE, key: str = ADMIN_KEY) -> list[tuple[list[int], Any]]:
    """Per deployment: the commit numbers it shipped (``sha(n)`` is ``n + 1`` in hex) and its lead time."""
    found = []
    for deployment_id in ids:
        body = get_deployment(api, deployment_id, space=space, key=key).body
        attribution, figures = body["attribution"] or {}, body["figures"] or {}
        commits = sorted(int(c, 16) - 1 for c in attribution.get("commits") or [])
        found.append((commits, figures.get("lead_time_seconds")))
    return found


def _marks(aws: Aws, space: str = SPACE) -> list[dict[str, Any]]:
    """The space's branch marks as stored: position, owner and previous position."""
    prefix = keys.ledger_pk(space, "")
    found = [i for i in scan(aws) if i.get(keys.TYPE) == keys.T_LEDGER_MARK and str(i[keys.PK]).startswith(prefix)]
    return [
        {
            "position": int(i["position"]),
            "owner": i.get("deployment_id"),
            "previous": None if i.get("previous_position") is None else int(i["previous_position"]),
        }
        for i in found
    ]


def _spent_in(
    monkeypatch: pytest.MonkeyPatch, meter: Meter, owner: type, name: str
) -> list[tuple[tuple[Any, ...], Counter[str]]]:
    """From now on, per call of ``owner.name``: its arguments (``self`` first) and the DynamoDB calls it made."""
    spent: list[tuple[tuple[Any, ...], Counter[str]]] = []
    original: Callable[..., Any] = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        before = Counter(meter.calls)
        try:
            return original(*args, **kwargs)
        finally:
            spent.append((args, Counter(meter.calls) - before))

    monkeypatch.setattr(owner, name, counted)
    return spent


# --- two removals, newest first ---------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["deleted", "failed"])
def test_a_deployment_after_two_successes_were_removed_newest_first_ships_from_the_remaining_one(
    api: Api, clock: Clock, lambda_context: Any, other_space: str, how: str
) -> None:
    """S0 commit 3, S1 commit 6, S2 commit 8; S2 then S1 removed; S3 (commit 5) sent. A fresh ingest ships
    4..5 with S3, after S0. Before the fix S3 shipped nothing and commits 4..5 were shipped by no deployment:
    removing S2 moved the mark back to 6 without an owner, so removing S1 left it there."""
    _push(api, 9)
    ids = [_native(api, 0, 3), _native(api, 10, 6), _native(api, 20, 8)]
    _recompute(clock, lambda_context)
    _remove(api, ids[2], how)
    _remove(api, ids[1], how)
    s3 = _native(api, 30, 5)
    _recompute(clock, lambda_context)
    _push(api, 9, space=other_space, key=OTHER_KEY)
    fresh = [_native(api, 0, 3, space=other_space, key=OTHER_KEY)]
    if how == "failed":
        _native(api, 10, 6, state="Failed", space=other_space, key=OTHER_KEY)
        _native(api, 20, 8, state="Failed", space=other_space, key=OTHER_KEY)
    fresh.append(_native(api, 30, 5, space=other_space, key=OTHER_KEY))
    _recompute(clock, lambda_context)
    expected = _shipped(api, fresh, space=other_space, key=OTHER_KEY)
    assert [commits for commits, _ in expected] == [[3], [4, 5]]
    assert _shipped(api, [ids[0], s3]) == expected


def test_a_deployment_after_every_success_was_removed_newest_first_is_the_stream_s_first(
    api: Api, clock: Clock, lambda_context: Any, other_space: str
) -> None:
    """S0 commit 3, S1 commit 6, S2 commit 8, all deleted newest first; then S3 (commit 5). A fresh ingest has
    S3 the stream's first success: it ships its own commit alone (METRICS §5). Before the fix the mark stayed
    at 6 without an owner (only S2's removal could move it) and S3 shipped nothing."""
    _push(api, 9)
    ids = [_native(api, 0, 3), _native(api, 10, 6), _native(api, 20, 8)]
    for deployment_id in reversed(ids):
        _remove(api, deployment_id, "deleted")
    s3 = _native(api, 30, 5)
    _recompute(clock, lambda_context)
    _push(api, 9, space=other_space, key=OTHER_KEY)
    fresh = _native(api, 30, 5, space=other_space, key=OTHER_KEY)
    _recompute(clock, lambda_context)
    expected = _shipped(api, [fresh], space=other_space, key=OTHER_KEY)
    assert expected[0][0] == [5]
    assert _shipped(api, [s3]) == expected


def test_a_dx_upsert_in_place_of_the_remaining_success_after_the_newest_was_removed_keeps_its_range(
    api: Api, clock: Clock, lambda_context: Any, other_space: str
) -> None:
    """DX: r0 commit 3, r1 commit 6, r2 commit 8; r2 upserted as failed (the mark back at 6, no owner), then r1
    upserted in place (another source name). A fresh ingest: r1 ships 4..6. Before the fix r1's new version
    shipped nothing: its old version's changes were undone, and the mark it read still stood at 6."""
    _push(api, 9)
    ids = [_dx(api, "r0", 0, 3), _dx(api, "r1", 10, 6), _dx(api, "r2", 20, 8)]
    _recompute(clock, lambda_context)
    assert _dx(api, "r2", 20, 8, success=False) == ids[2]
    assert _dx(api, "r1", 10, 6, source_name="ci") == ids[1]
    _recompute(clock, lambda_context)
    _push(api, 9, space=other_space, key=OTHER_KEY)
    fresh = [
        _dx(api, "r0", 0, 3, key=OTHER_KEY),
        _dx(api, "r1", 10, 6, key=OTHER_KEY, source_name="ci"),
        _dx(api, "r2", 20, 8, key=OTHER_KEY, success=False),
    ]
    _recompute(clock, lambda_context)
    expected = _shipped(api, fresh, space=other_space, key=OTHER_KEY)
    assert [commits for commits, _ in expected] == [[3], [4, 5, 6], []]
    assert _shipped(api, ids) == expected


# --- a second plan before the first one's attempt ran ---------------------------------------------------------
def test_a_second_correction_before_the_first_ones_attempt_ran_keeps_what_that_attempt_was_to_undo(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S0 commit 0, S1 commit 2, S2 commit 4, S3 commit 6. S2 is deleted: S3's outbox item is to undo what S2
    left (its range, 2..4) and what S3 shipped, then attribute S3 again; that attempt fails (a crash), so the
    item waits for the sweep. S1 is then corrected to Failed, which plans S3 again, before the sweep. The new
    item keeps what the first one still had to undo (``AttributionStore._unfinished``). Before the fix it was
    replaced: S2's range stayed in the ledger, owned by a deployment that no longer exists, telling later
    attempts that commits 3..4 had shipped."""
    _push(api, 7)
    ids = [_native(api, minute, n) for minute, n in [(0, 0), (10, 2), (20, 4), (30, 6)]]
    _recompute(clock, lambda_context)
    assert [commits for commits, _ in _shipped(api, ids)] == [[0], [1, 2], [3, 4], [5, 6]]
    attempt = logic_attribution.attribute_deployment
    crashing = {ids[3]}

    def crashes(store: Any, space_id: str, deployment_id: str, *args: Any, **kwargs: Any) -> Any:
        if deployment_id in crashing:
            raise RuntimeError("the function crashed")
        return attempt(store, space_id, deployment_id, *args, **kwargs)

    monkeypatch.setattr(logic_attribution, "attribute_deployment", crashes)
    _remove(api, ids[2], "deleted")
    _remove(api, ids[1], "failed")
    crashing.clear()
    for _ in range(2):  # past the outbox's due time: the sweep sends S3's attempt to the retry queue
        clock.advance(timedelta(minutes=20))
        scheduled_run(lambda_context)
        drain_retries(aws, lambda_context)
    assert [i for i in scan(aws) if i.get("deployment_id") == ids[2]] == []
    _push(api, 7, space=other_space, key=OTHER_KEY)
    fresh = [_native(api, 0, 0, space=other_space, key=OTHER_KEY)]
    _native(api, 10, 2, state="Failed", space=other_space, key=OTHER_KEY)
    fresh.append(_native(api, 30, 6, space=other_space, key=OTHER_KEY))
    _recompute(clock, lambda_context)
    expected = _shipped(api, fresh, space=other_space, key=OTHER_KEY)
    assert [commits for commits, _ in expected] == [[0], [1, 2, 3, 4, 5, 6]]
    assert _shipped(api, [ids[0], ids[3]]) == expected


# --- a success moved to another service -------------------------------------------------------------------
def test_dx_upsert_moving_a_success_to_another_service_after_an_upsert_in_place_leaves_its_old_stream_alone(
    api: Api, clock: Clock, lambda_context: Any, other_space: str
) -> None:
    """shop: s0 commit 1, s1 commit 4. s0 upserted to commit 2 (in place), then, before the next recompute, to
    service web. A fresh ingest: s1 is shop's first success and ships its own commit 4 alone; s0 web's first,
    commit 2. Before the fix s1 shipped 3..4: its rewound attempt took the position s0 recorded (in web now)
    from shop's dirty mark, which still named s0 as one of its last two writes."""
    _push(api, 5)
    ids = [_dx(api, "s0", 0, 1), _dx(api, "s1", 10, 4)]
    _recompute(clock, lambda_context)
    assert _dx(api, "s0", 0, 2) == ids[0]
    assert _dx(api, "s0", 0, 2, service="web") == ids[0]
    _recompute(clock, lambda_context)
    _push(api, 5, space=other_space, key=OTHER_KEY)
    fresh = [_dx(api, "s0", 0, 2, key=OTHER_KEY, service="web"), _dx(api, "s1", 10, 4, key=OTHER_KEY)]
    _recompute(clock, lambda_context)
    expected = _shipped(api, fresh, space=other_space, key=OTHER_KEY)
    assert [commits for commits, _ in expected] == [[2], [4]]
    assert _shipped(api, ids) == expected


# --- the common paths' calls ------------------------------------------------------------------------------
def test_a_removal_moves_back_or_leaves_the_marks_as_before_with_one_getitem_each(
    api: Api, aws: Aws, meter: Meter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S0 commit 3, S1 commit 6, S2 commit 8. Deleting S1 (the mark is S2's): its cleanup leaves the mark,
    S2 is attributed again (its own cleanup moves the mark back, then its attempt moves it on from S0's 3).
    Deleting S2 (the mark is its own): moved back to 3 without an owner. Each cleanup reads each mark once
    (one GetItem: no page to read) and reads nothing of the stream."""
    _push(api, 9)
    ids = [_native(api, 0, 3)]
    (first,) = _marks(aws)
    s0 = first["position"]  # commit 3's place on main
    ids += [_native(api, 10, 6), _native(api, 20, 8)]
    (before,) = _marks(aws)
    assert before["owner"] == ids[2]
    spent = _spent_in(monkeypatch, meter, dal_attribution.AttributionStore, "cleanup")
    _remove(api, ids[1], "deleted")
    assert [calls for _, calls in spent] == [Counter(get_item=1)] * 2  # S1's leftovers, then S2's old ones
    assert _marks(aws) == [{"position": before["position"], "owner": ids[2], "previous": s0}]
    spent.clear()
    _remove(api, ids[2], "deleted")
    assert [calls for _, calls in spent] == [Counter(get_item=1)]
    assert _marks(aws) == [{"position": s0, "owner": None, "previous": None}]


def test_reads_of_a_stream_s_last_writes_cost_what_they_did(
    api: Api, meter: Meter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new deployment reads its stream's last two writes (the dirty mark: one GetItem, and one per deployment
    it names after the index's answer); an attempt rewound after a correction reads its branch position from
    the positions its stream recorded (the mark, the dirty mark and the deployments it names, one Query of
    the stream and one BatchGetItem). Keeping out deployments that moved to another stream reads nothing more."""
    _push(api, 9)
    ids = [_native(api, 0, 1), _native(api, 10, 3)]
    written = _spent_in(monkeypatch, meter, dal_attribution.AttributionStore, "_recently_written")
    positions = _spent_in(monkeypatch, meter, dal_attribution.LedgerStore, "shipped_position")
    ids.append(_native(api, 20, 5))
    # The previous success, then the next (the dirty mark as read then): the index shows the stream already.
    assert [calls for _, calls in written] == [Counter(get_item=1), Counter()], written
    assert [calls for _, calls in positions] == [Counter(get_item=1)], positions  # not rewound: the mark alone
    written.clear()
    positions.clear()
    _remove(api, ids[1], "failed")  # S2 is attributed again, rewound
    rewound = [calls for args, calls in positions if args[0].before is not None]
    assert rewound == [Counter(get_item=3, query=1, batch_get_item=1)], positions  # S1 named by the dirty mark
