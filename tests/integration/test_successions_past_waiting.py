"""Successes of a stream that are not attributed yet (none, or Pending) do not hide the attributed ones after
them (METRICS §5: a stream's changes ship in finish order whatever order deployments arrive in, and a
correction or a DX upsert gives what a fresh ingest of the final history gives), through the real routes
against moto.

A success attributed while the ones before it were not was attributed before they were stored (a batch
arriving before an attributed success, a success pending on its code data while a later one arrived), or is
planned to run again: it shipped what they ship. So a late success looks past its next success when that one
is not final yet (``logic/attribution._attributed_successor``), the hand-back walk goes on past such a
success (``logic/succession.following``), and a DX upsert moving a success within its stream plans both its
removal and its arrival, the new version's attempt rewound (``logic/dx.upsert``, ``corrections.arrive``). A
success whose commit is not in the code data yet, moved by a DX upsert or corrected to success, is planned
alone and not rewound: once it resolves it takes back what later successes shipped, as a late arrival does.

Each reproduction compares with a fresh ingest of the final history in finish order, in another space; the
cost guards check that the common paths read no more than before.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from tests.conftest import ADMIN_KEY, Api, Aws, Clock
from tests.support.code import commit, send_changes, sha
from tests.support.fixtures import OTHER_KEY
from tests.support.native import create_deployment, read_deployment
from tests.support.read_cost import Meter
from tests.support.recompute import scheduled_run
from tests.support.replica_lag import ReplicaLag
from tests.support.retries import drain_retries

SPACE = "Spaces-1"
REPO = "acme/shop"
UPSERT = "/api/deployments.upsert"
ONE = "/api/{spaceId}/deployments/{deploymentId}"


def _push(api: Api, count: int, *, space: str = SPACE, key: str = ADMIN_KEY, first: int = 0) -> None:
    """Commits ``first``..``count``-1 on main, commit n made at n:00."""
    send_changes(api, commits=[commit(n, n) for n in range(first, count)], space=space, key=key)


def _body(hour: int, n: int, minute: int = 0, *, project: str = "shop") -> dict[str, Any]:
    """A native success of ``project`` to production deploying commit ``n``, finished at hour:minute."""
    return {
        "project": project,
        "environment": "production",
        "finished_at": f"2024-03-01T{hour:02d}:{minute:02d}:00Z",
        "version": f"1.{n}",
        "state": "Success",
        "repository": REPO,
        "commit_sha": sha(n),
    }


def _send(api: Api, body: dict[str, Any], *, space: str = SPACE, key: str = ADMIN_KEY) -> str:
    return str(create_deployment(api, space=space, key=key, **body)["id"])


def _batch(api: Api, bodies: list[dict[str, Any]], *, space: str = SPACE, key: str = ADMIN_KEY) -> list[str]:
    """One batch request (its attempts deferred to a group message of the retry queue); the ids."""
    path, body = "/api/{spaceId}/deployments/batch", {"deployments": bodies}
    result = api.call("POST", path, path_params={"spaceId": space}, body=body, key=key)
    assert result.status == 200, result.body
    assert all(item["status"] in (200, 201) for item in result.body["results"]), result.body
    return [str(item["deployment"]["id"]) for item in result.body["results"]]


def _dx(api: Api, reference: str, minute: int, n: int, *, key: str = ADMIN_KEY) -> str:
    """A DX upsert of a success of shop deploying commit ``n``, finished ``minute`` minutes after 10:00."""
    body = {
        "reference_id": reference,
        "deployed_at": f"2024-03-01T{10 + minute // 60:02d}:{minute % 60:02d}:00Z",
        "service": "shop",
        "environment": "production",
        "success": True,
        "repository": REPO,
        "commit_sha": sha(n),
    }
    result = api.call("POST", UPSERT, body=body, key=key)
    assert result.status == 200, result.body
    return str(result.body["deployment"]["id"])


def _settle(aws: Aws, clock: Clock, lambda_context: Any) -> None:
    """Three times: the retry queue delivered, 20 minutes on (past any outbox lease), the scheduled recompute
    (with its sweep), the queue again."""
    for _ in range(3):
        drain_retries(aws, lambda_context)
        clock.advance(timedelta(minutes=20))
        scheduled_run(lambda_context)
        drain_retries(aws, lambda_context)


def _shipped(api: Api, ids: list[str], *, space: str = SPACE, key: str = ADMIN_KEY) -> list[dict[str, Any]]:
    """Per deployment: its attribution's state, the commits it shipped (as numbers) and its lead time."""
    found = []
    for deployment_id in ids:
        body = read_deployment(api, deployment_id, space=space, key=key)
        attribution, figures = body["attribution"] or {}, body["figures"] or {}
        found.append(
            {
                "state": attribution.get("state"),
                "commits": sorted(int(c, 16) - 1 for c in attribution.get("commits") or []),
                "lead_time_seconds": figures.get("lead_time_seconds"),
            }
        )
    return found


def _commits(shipped: list[dict[str, Any]]) -> list[list[int]]:
    return [entry["commits"] for entry in shipped]


def _fresh(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, space: str, count: int, bodies: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The oracle: commits 0..``count``-1 first, then ``bodies`` one by one in finish order, in ``space``
    (its key ``OTHER_KEY``); settled. What each ships."""
    _push(api, count, space=space, key=OTHER_KEY)
    ids = [_send(api, body, space=space, key=OTHER_KEY) for body in bodies]
    _settle(aws, clock, lambda_context)
    return _shipped(api, ids, space=space, key=OTHER_KEY)


# --- a late success whose next success is not attributed yet ------------------------------------------------


def test_a_batch_of_two_successes_before_an_attributed_one_ships_each_its_own_range(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str
) -> None:
    """Commits 0..7. D0 (10:00, commit 0) and D3 (13:00, commit 7) arrive: D3 ships 1..7. One batch then
    brings D1 (11:00, commit 2) and D2 (12:00, commit 6), attempted from the retry queue in stream order. In
    finish order D1 ships 1..2, D2 3..6, D3 7. D1's next success, D2, is not attributed yet, but D3 after it
    is, and moved the stream's mark to 7: D1 takes its range back from D3 (else it ships nothing and commits
    1 and 2 are shipped by nobody)."""
    bodies = [_body(10, 0), _body(11, 2), _body(12, 6), _body(13, 7)]
    _push(api, 8)
    d0, d3 = _send(api, bodies[0]), _send(api, bodies[3])
    d1, d2 = _batch(api, bodies[1:3])
    _settle(aws, clock, lambda_context)
    expected = _fresh(api, aws, clock, lambda_context, other_space, 8, bodies)
    assert _commits(expected) == [[0], [1, 2], [3, 4, 5, 6], [7]]
    assert _shipped(api, [d0, d1, d2, d3]) == expected


def test_a_late_success_that_resolves_while_its_next_success_waits_for_it_ships_its_whole_range(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str
) -> None:
    """Commits 0..2. D0 (10:00, commit 0) and D3 (13:00, commit 2) arrive: D3 ships 1..2. D1 (11:00, commit 4,
    not pushed yet) is Pending; D2 (12:00, commit 4 again) waits for it. Commits 3..4 are pushed. In finish
    order D1 ships 1..4, D2 and D3 nothing (older commits). D1 resolves while D2 still waits: it takes 1..2
    back from D3 past D2 (else it ships 3..4 only, and D2's own hand-back later leaves 1..2 to nobody)."""
    bodies = [_body(10, 0), _body(11, 4), _body(12, 4), _body(13, 2)]
    _push(api, 3)
    d0, d3 = _send(api, bodies[0]), _send(api, bodies[3])
    d1, d2 = _send(api, bodies[1]), _send(api, bodies[2])
    assert [e["state"] for e in _shipped(api, [d1, d2])] == ["Pending", "Pending"]
    _push(api, 5, first=3)
    _settle(aws, clock, lambda_context)
    expected = _fresh(api, aws, clock, lambda_context, other_space, 5, bodies)
    assert _commits(expected) == [[0], [1, 2, 3, 4], [], []]
    assert _shipped(api, [d0, d1, d2, d3]) == expected


# --- the hand-back walk past a success not attributed yet --------------------------------------------------


def test_a_late_first_success_takes_its_commit_back_from_an_attributed_success_past_a_waiting_one(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str
) -> None:
    """Commits 0..4. D1 (11:00, commit 0) ships 0 and D4 (14:00, commit 4) ships 1..4. One batch then brings
    D0 (10:00, commit 2) and D2 (12:00, commit 0). In finish order D0, the stream's first, ships commit 2
    alone, D1 and D2 nothing (older commits), D4 3..4. D0's hand-back walks from D1 (which shipped below
    commit 2) past D2 (stored, not attributed yet) to D4, which shipped commit 2 (else D4 keeps it, D0 finds
    it deployed, and D2's own hand-back later gives D4 3..4 only: commit 2 shipped by nobody)."""
    bodies = [_body(10, 2), _body(11, 0), _body(12, 0), _body(14, 4)]
    _push(api, 5)
    d1, d4 = _send(api, bodies[1]), _send(api, bodies[3])
    d0, d2 = _batch(api, [bodies[0], bodies[2]])
    _settle(aws, clock, lambda_context)
    expected = _fresh(api, aws, clock, lambda_context, other_space, 5, bodies)
    assert _commits(expected) == [[2], [], [], [3, 4]]
    assert _shipped(api, [d0, d1, d2, d4]) == expected


# --- DX upserts moving a success within its stream: one removal, one arrival ------------------------------


def _dx_moved(
    api: Api,
    aws: Aws,
    clock: Clock,
    lambda_context: Any,
    other_space: str,
    count: int,
    rows: list[tuple[str, int, int]],
    moved: tuple[str, int, int],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Commits 0..``count``-1, then ``rows`` (reference, minute after 10:00, commit) through DX in finish
    order, settled; then ``moved`` upserted (the same reference, its new minute and commit), settled. The
    final history afresh in ``other_space``, settled. What each ships in both, in the final finish order."""
    _push(api, count)
    ids = {reference: _dx(api, reference, minute, n) for reference, minute, n in rows}
    _settle(aws, clock, lambda_context)
    assert _dx(api, *moved) == ids[moved[0]]
    _settle(aws, clock, lambda_context)
    final = sorted([row for row in rows if row[0] != moved[0]] + [moved], key=lambda row: row[1])
    got = _shipped(api, [ids[reference] for reference, _, _ in final])
    _push(api, count, space=other_space, key=OTHER_KEY)
    fresh = [_dx(api, reference, minute, n, key=OTHER_KEY) for reference, minute, n in final]
    _settle(aws, clock, lambda_context)
    return got, _shipped(api, fresh, space=other_space, key=OTHER_KEY)


def test_dx_upsert_moving_a_success_past_a_redeploy_of_an_older_commit_keeps_its_range(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str
) -> None:
    """r0 commit 0 (10:00), r1 commit 2 (10:10), r2 commit 0 again (10:20), r3 commit 3 (10:30); r1 upserted to
    finish at 10:25 (after r2, before r3). A fresh ingest: r0 0, r2 nothing, r1 1..2, r3 3. The upsert plans
    r2 and r3 again (r3's shipment started at r1's old mark, and at its new one); r1's attempt, between them,
    is rewound and undoes r3's attribution first (else it reads r3's mark, 3, and ships nothing)."""
    rows = [("r0", 0, 0), ("r1", 10, 2), ("r2", 20, 0), ("r3", 30, 3)]
    got, expected = _dx_moved(api, aws, clock, lambda_context, other_space, 4, rows, ("r1", 25, 2))
    assert _commits(expected) == [[0], [], [1, 2], [3]]  # r0, r2, r1, r3
    assert got == expected


def test_dx_upsert_moving_a_success_earlier_with_a_newer_commit_takes_it_back_from_later_successes(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str
) -> None:
    """r0, r1, r2 deploy commit 1 (10:00, 10:10, 10:20), r3 commit 2 (10:30), r4 commit 3 (10:40); r2 upserted
    to 10:05 (before r1) with commit 3. A fresh ingest: r0 1, r2 2..3, nothing after. The removal from r2's
    old place resets r3; the arrival at its new place walks from r1 past r2's old version and judges r3 by the
    attribution it had, so reaches r4, which shipped commit 3 (else r2's attempts collide with r4's ledger
    range for days, r1 and r3 wait for it, and commit 2 is shipped by nobody)."""
    rows = [("r0", 0, 1), ("r1", 10, 1), ("r2", 20, 1), ("r3", 30, 2), ("r4", 40, 3)]
    got, expected = _dx_moved(api, aws, clock, lambda_context, other_space, 4, rows, ("r2", 5, 3))
    assert _commits(expected) == [[1], [2, 3], [], [], []]  # r0, r2, r1, r3, r4
    assert [e["state"] for e in expected] == ["Resolved"] * 5
    assert got == expected


def test_dx_upsert_moving_a_success_to_a_commit_not_pushed_yet_takes_its_range_back_once_it_resolves(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str
) -> None:
    """r0 commit 0, r1 commit 2, r2 commit 4, r3 commit 5, r4 commit 6; r1 upserted to 10:25 (after r2) with
    commit 7, not pushed yet. Where its shipment ends is not known, so only the removal is planned (r2) and
    the new version waits, not rewound; once commit 7 is pushed it resolves and takes 5..6 back from r3
    and r4 as a late arrival does. A fresh ingest: r0 0, r2 1..4, r1 5..7, r3 and r4 nothing. (A rewound
    attempt planned at the upsert would take commit 6 from past r3, which shipped below it, and ship it
    twice.)"""
    rows = [("r0", 0, 0), ("r1", 10, 2), ("r2", 20, 4), ("r3", 30, 5), ("r4", 40, 6)]
    _push(api, 7)
    ids = {reference: _dx(api, reference, minute, n) for reference, minute, n in rows}
    _settle(aws, clock, lambda_context)
    assert _dx(api, "r1", 25, 7) == ids["r1"]
    assert _shipped(api, [ids["r1"]])[0]["state"] == "Pending"
    _push(api, 8, first=7)
    _settle(aws, clock, lambda_context)
    final = [("r0", 0, 0), ("r2", 20, 4), ("r1", 25, 7), ("r3", 30, 5), ("r4", 40, 6)]
    got = _shipped(api, [ids[reference] for reference, _, _ in final])
    _push(api, 8, space=other_space, key=OTHER_KEY)
    fresh = [_dx(api, reference, minute, n, key=OTHER_KEY) for reference, minute, n in final]
    _settle(aws, clock, lambda_context)
    expected = _shipped(api, fresh, space=other_space, key=OTHER_KEY)
    assert _commits(expected) == [[0], [1, 2, 3, 4], [5, 6, 7], [], []]
    assert got == expected


def test_a_failure_corrected_to_success_with_a_commit_not_pushed_yet_takes_its_range_back_once_it_resolves(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, other_space: str, replica_lag: ReplicaLag
) -> None:
    """Commits 0..6. D0 (10:00) commit 0, D1 (11:00) commit 7, not pushed yet, Failed; D2 (12:00) commit 3,
    D3 (13:00) commit 5, D4 (14:00) commit 6: they ship 1..3, 4..5 and 6. D1 is corrected to Success. Where
    its shipment ends is not known, so nothing else is planned and its attempt, not rewound, waits; once
    commit 7 is pushed it resolves and takes 1..6 back from D2, D3 and D4 as a late arrival does. A fresh
    ingest: D0 0, D1 1..7, the others nothing. (Attempted rewound at the correction, with D2 alone planned
    again, D1 shipped 1..7 while D3 and D4 kept 4..6: three commits shipped twice.)

    The correction's attempt runs at once, though the correction was just written: it reads the deployment
    strongly consistently (under a replica lag an eventually consistent read does not find it)."""
    _push(api, 7)
    rows = [(10, 0, "Success"), (11, 7, "Failed"), (12, 3, "Success"), (13, 5, "Success"), (14, 6, "Success")]
    ids = [_send(api, {**_body(hour, n), "state": state}) for hour, n, state in rows]
    _settle(aws, clock, lambda_context)
    assert _commits(_shipped(api, ids)) == [[0], [], [1, 2, 3], [4, 5], [6]]
    replica_lag.on()
    path = {"spaceId": SPACE, "deploymentId": ids[1]}
    result = api.call("PATCH", ONE, path_params=path, body={"state": "Success"}, key=ADMIN_KEY)
    assert result.status == 200, result.body
    replica_lag.active = False
    waiting = read_deployment(api, ids[1])["attribution"]  # attempted: waits for commit 7 (not the placeholder)
    assert (waiting["state"], waiting["mode"]) == ("Pending", "CommitSha"), (waiting, replica_lag.hidden)
    _push(api, 8, first=7)
    _settle(aws, clock, lambda_context)
    got = _shipped(api, ids)
    expected = _fresh(api, aws, clock, lambda_context, other_space, 8, [_body(hour, n) for hour, n, _ in rows])
    assert _commits(expected) == [[0], [1, 2, 3, 4, 5, 6, 7], [], [], []]
    assert got == expected


# --- cost guards ------------------------------------------------------------------------------------------


def test_an_in_order_batch_reads_no_further_than_each_deployments_next_success(
    api: Api, aws: Aws, lambda_context: Any, meter: Meter
) -> None:
    """The bulk path: a batch of successes in finish order, attempted from one group message. None has an
    attributed success after it, and each one's previous success recorded the stream's mark, so none looks
    past its next success (not attributed yet): the Queries of the stream's index grow by the same count per
    deployment, whatever the batch's length (a walk past the later ones of the batch would grow with it)."""
    _push(api, 12)
    queried = []
    for length, project in ((2, "two"), (3, "three"), (5, "five")):
        bodies = [_body(10 + n, n + 1, project=project) for n in range(length)]
        _send(api, _body(9, 0, project=project))  # the stream's first: every batch's has a previous success
        ids = _batch(api, bodies)
        meter.reset()
        drain_retries(aws, lambda_context)
        queried.append(meter.queried["STREAM"])
        assert _commits(_shipped(api, ids)) == [[n + 1] for n in range(length)]
    two, three, five = queried
    assert five - three == 2 * (three - two), queried


def test_a_dx_upsert_moving_a_success_within_its_stream_reads_the_same_whatever_follows_the_walk(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, meter: Meter, other_space: str
) -> None:
    """The moved upsert's walks (the removal's from the old place, the arrival's from the new one) stop at the
    first success that shipped up to or past the moved one's commit: r0 commit 0, r1 commit 2, r2 commit 4, r3
    commit 5, and in one space two more successes after them; r1 moved past r2. The upsert's calls (its
    reads, its transaction, the attempts in stream order) and its Queries by partition are the same in both
    spaces, but for r3's branch mark: where r3 is the stream's last, undoing its attribution moves the mark
    back (one UpdateItem); the successes after it are not attributed again."""
    spent = []
    for space, key, rows in (
        (SPACE, ADMIN_KEY, [("r0", 0, 0), ("r1", 10, 2), ("r2", 20, 4), ("r3", 30, 5), ("r4", 40, 6), ("r5", 50, 7)]),
        (other_space, OTHER_KEY, [("r0", 0, 0), ("r1", 10, 2), ("r2", 20, 4), ("r3", 30, 5)]),
    ):
        _push(api, 8, space=space, key=key)
        ids = {reference: _dx(api, reference, minute, n, key=key) for reference, minute, n in rows}
        clock.advance(timedelta(minutes=1))
        scheduled_run(lambda_context)
        after = [ids[r] for r in ("r4", "r5") if r in ids]
        before = _shipped(api, after, space=space, key=key)
        meter.reset()
        _dx(api, "r1", 25, 2, key=key)
        spent.append((Counter(meter.calls), Counter(meter.queried)))
        order = [ids[r] for r in ("r0", "r2", "r1", "r3")]
        assert _commits(_shipped(api, order, space=space, key=key)) == [[0], [1, 2, 3, 4], [], [5]]
        assert _shipped(api, after, space=space, key=key) == before
    (longer, longer_queried), (shorter, shorter_queried) = spent
    assert shorter.pop("update_item") == 1 and "update_item" not in longer, spent
    assert (longer, longer_queried) == (shorter, shorter_queried)
