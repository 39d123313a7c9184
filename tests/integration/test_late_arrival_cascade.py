"""A deployment that arrives after later-finished ones of its stream (a late pipeline, a backfill) takes its
place in the stream's order (METRICS §5): the stream's next success and, when that one deployed an older
commit, the successes after it whose shipment started at the mark the late one now holds, ship what a fresh
ingest in finish order ships, through the real routes against moto."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from dora_insights.logic import attribution
from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.code import commit, send_changes
from tests.support.fixtures import OTHER_KEY
from tests.support.native import create_deployment, get_deployment, send_stream
from tests.support.read_cost import Meter
from tests.support.recompute import scheduled_run

SPACE = "Spaces-1"
REPO = "acme/shop"
SHAS = [f"{n:040x}" for n in range(1, 10)]  # positions 1..9 on main, committed at 00:00 .. 08:00


def _push(api: Api, *, space: str = SPACE, key: str = ADMIN_KEY) -> None:
    send_changes(api, commits=[commit(n, n) for n in range(len(SHAS))], space=space, key=key)


def _shipped(api: Api, ids: list[str | None], *, space: str = SPACE, key: str = ADMIN_KEY) -> list[Any]:
    found: list[Any] = []
    for deployment_id in ids:
        assert deployment_id is not None
        body = get_deployment(api, deployment_id, space=space, key=key).body
        attribution, figures = body["attribution"] or {}, body["figures"] or {}
        found.append((sorted(attribution.get("commits") or []), figures.get("lead_time_seconds")))
    return found


def test_a_late_success_before_a_successor_that_deployed_an_older_commit_reaches_the_success_after_it(
    api: Api, clock: Clock, lambda_context: Any, other_space: str
) -> None:
    """S0 deploys commit 0, S1 commit 4, S2 commit 2 (older: it ships nothing new once S1 is there), S3
    commit 6; S1 arrives last. In finish order S1 ships 1..4 and S3 5..6. Before S1 arrived, S2 shipped 1..2
    and S3 3..6: S1's arrival must take 3..4 back from S3 too, not only 1..2 from S2, or commits 3 and 4
    are shipped twice and S3's lead time counts from 03:00."""
    _push(api)
    ids = send_stream(
        api,
        ["Success", None, "Success", "Success"],
        [{"repository": REPO, "commit_sha": SHAS[n]} for n in (0, 4, 2, 6)],
        first_version=0,
    )
    clock.advance(timedelta(minutes=1))
    scheduled_run(lambda_context)
    late = create_deployment(
        api, version="1.0", finished_at="2024-03-01T11:00:00Z", repository=REPO, commit_sha=SHAS[4]
    )["id"]
    ids[1] = late
    _push(api, space=other_space, key=OTHER_KEY)
    code = [{"repository": REPO, "commit_sha": SHAS[n]} for n in (0, 4, 2, 6)]
    fresh = send_stream(api, ["Success"] * 4, code, space=other_space, key=OTHER_KEY, first_version=0)
    for _ in range(2):
        clock.advance(timedelta(minutes=1))
        scheduled_run(lambda_context)
    expected = _shipped(api, fresh, space=other_space, key=OTHER_KEY)
    assert expected[3][0] == SHAS[5:7]
    got = _shipped(api, ids)
    shipped = [sha for entry in got for sha in entry[0]]
    assert len(shipped) == len(set(shipped)), f"commits shipped by two deployments: {got}"
    assert got == expected


def _late(api: Api, shas: list[int], late: int, *, space: str = SPACE, key: str = ADMIN_KEY) -> list[str | None]:
    """The stream deploying ``SHAS[shas[n]]`` an hour apart from 10:00, every deployment but the ``late``-th
    sent in order, then that one: the ids in stream order."""
    code = [{"repository": REPO, "commit_sha": SHAS[n]} for n in shas]
    states: list[str | None] = ["Success"] * len(shas)
    states[late] = None
    ids = send_stream(api, states, code, space=space, key=key, first_version=0)
    ids[late] = create_deployment(
        api, space=space, key=key, version=f"{late}.0", finished_at=f"2024-03-01T{10 + late}:00:00Z", **code[late]
    )["id"]
    return ids


def _fresh(api: Api, clock: Clock, lambda_context: Any, shas: list[int], space: str) -> list[Any]:
    """What a fresh ingest in finish order ships, in ``space`` (pushed first), after a recompute."""
    _push(api, space=space, key=OTHER_KEY)
    code = [{"repository": REPO, "commit_sha": SHAS[n]} for n in shas]
    fresh = send_stream(api, ["Success"] * len(shas), code, space=space, key=OTHER_KEY, first_version=0)
    clock.advance(timedelta(minutes=1))
    scheduled_run(lambda_context)
    return _shipped(api, fresh, space=space, key=OTHER_KEY)


def _attributions(api: Api, ids: list[str | None], *, space: str = SPACE, key: str = ADMIN_KEY) -> list[Any]:
    found = []
    for deployment_id in ids:
        assert deployment_id is not None
        found.append(get_deployment(api, deployment_id, space=space, key=key).body["attribution"])
    return found


def test_a_late_success_before_two_successors_that_deployed_older_commits_reaches_the_one_after_them(
    api: Api, clock: Clock, lambda_context: Any, other_space: str
) -> None:
    """S0 commit 0, S1 commit 4 (late), S2 commit 2, S3 commit 1, S4 commit 6, S5 commit 8. Before S1 arrived
    S2 shipped 1..2, S3 nothing, S4 3..6: S1 takes 1..4 back from all three, S4 keeps 5..6, and S5 (which
    shipped from S4's mark on) is not attributed again."""
    chain = [0, 4, 2, 1, 6, 8]
    _push(api)
    ids = _late(api, chain, 1)
    before = _attributions(api, ids)
    clock.advance(timedelta(minutes=1))
    scheduled_run(lambda_context)
    expected = _fresh(api, clock, lambda_context, chain, other_space)
    assert [entry[0] for entry in expected] == [SHAS[0:1], SHAS[1:5], [], [], SHAS[5:7], SHAS[7:9]]
    got = _shipped(api, ids)
    shipped = [sha for entry in got for sha in entry[0]]
    assert len(shipped) == len(set(shipped)), f"commits shipped by two deployments: {got}"
    assert got == expected
    assert _attributions(api, ids)[5] == before[5]


def test_a_late_success_costs_the_same_calls_whether_or_not_the_stream_has_more_later_deployments(
    api: Api, meter: Meter, monkeypatch: pytest.MonkeyPatch, other_space: str
) -> None:
    """The common case: the successor shipped past the late deployment's commit (S2 commit 4 shipped 1..4;
    S1 commit 2 arrives late). The late create reads the same and writes the same transaction, with a
    deployment after the successor (this space) or without (the other): no Query of the stream past the
    successor, no code data, the successor alone attributed again. Counted up to the create's transaction
    (the attempts that follow are the attribution's own); then three transactions in all (the create with
    the hand-over, S1's final, S2's final), and the deployment after S2 is untouched."""
    spent: list[tuple[Counter[str], Counter[str]]] = []
    in_order = attribution._attempt_in_order

    def counted(*args: Any, **kwargs: Any) -> Any:
        spent.append((Counter(meter.calls), Counter(meter.queried)))
        return in_order(*args, **kwargs)

    monkeypatch.setattr(attribution, "_attempt_in_order", counted)
    for space, key, shas in ((SPACE, ADMIN_KEY, [0, 2, 4, 6]), (other_space, OTHER_KEY, [0, 2, 4])):
        _push(api, space=space, key=key)
        code = [{"repository": REPO, "commit_sha": SHAS[n]} for n in shas]
        ids = send_stream(api, ["Success", None, *["Success"] * (len(shas) - 2)], code, space=space, key=key)
        after = _attributions(api, ids[3:], space=space, key=key)
        meter.reset()
        late = create_deployment(
            api, space=space, key=key, version="late", finished_at="2024-03-01T11:00:00Z", **code[1]
        )["id"]
        assert meter.calls["transact_write_items"] == 3
        assert [entry[0] for entry in _shipped(api, [late, ids[2]], space=space, key=key)] == [SHAS[1:3], SHAS[3:5]]
        assert _attributions(api, ids[3:], space=space, key=key) == after
    (longer, longer_queried), (shorter, shorter_queried) = spent
    assert (longer, longer_queried) == (shorter, shorter_queried)
    assert longer["transact_write_items"] == 1


def test_the_walk_stops_at_a_success_whose_changes_lie_on_another_branch_only(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """METRICS §5's known limit, as for a correction: S0 commit 0, S1 commit 4 (late), S2 commit 2, S3 a
    commit only on branch ``feature``, S4 commit 6. S1 takes 1..2 back from S2 and ships 1..4; the walk
    stops at S3 (its marks lie on ``feature`` only), so S3 and S4 keep what they shipped."""
    _push(api)
    send_changes(api, commits=[{**commit(9, 9), "branch": "feature"}])
    code = [{"repository": REPO, "commit_sha": SHAS[n]} for n in (0, 4, 2)]
    code += [{"repository": REPO, "commit_sha": f"{10:040x}"}, {"repository": REPO, "commit_sha": SHAS[6]}]
    ids = send_stream(api, ["Success", None, "Success", "Success", "Success"], code, first_version=0)
    before = _attributions(api, [i for i in ids if i])
    ids[1] = create_deployment(api, version="late", finished_at="2024-03-01T11:00:00Z", **code[1])["id"]
    got = [entry[0] for entry in _shipped(api, ids)]
    assert got[:3] == [SHAS[0:1], SHAS[1:5], []]
    assert _attributions(api, [ids[3], ids[4]]) == before[2:]
