"""Attribution writes as real DynamoDB answers them (issue 17), which moto on its own never shows: a read
that misses a write just committed (``tests.support.replica_lag``), a correction that commits between an
attempt's read and its write, and transactions cancelled for contention.

- A shipment too large for one transaction claims its ledger entries first under the condition the
  transaction's claims hold (no other deployment shipped the change): a change another deployment shipped,
  which the attempt's eventually consistent ledger read missed, is not shipped twice; the attempt fails,
  withdraws the entries it claimed, and its retry leaves that change out.
- An attempt whose final transaction does not commit leaves neither ledger entries nor pages behind.
- An attempt's write is conditional on the deployment's revision: a correction committing between the
  attempt's read and its write makes it lose, so the correction's own attempt decides.
- A transaction cancelled for contention alone (the stream's dirty mark, the outbox item) is sent again.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.native import attribution_of, create_deployment, get_deployment
from tests.support.replica_lag import ReplicaLag

SPACE = "Spaces-1"
SP = {"spaceId": SPACE}
REPO = "acme/shop"
NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
ONE = "/api/{spaceId}/deployments/{deploymentId}"
TRANSACTION_ITEMS = 100  # DynamoDB's TransactWriteItems limit: claims go 100 to a transaction


def sha(n: int) -> str:
    return f"{n + 1:040x}"


# --- helpers -------------------------------------------------------------------------------------


# The push that teaches the repository's default branch (a repository-only deployment waits for it).
ROOT = {
    "repository": REPO,
    "branch": "main",
    "sha": sha(0),
    "timestamp": "2024-03-01T00:00:00Z",
    "default_branch": "main",
}


def changes(api: Api, *, commits: Sequence[Mapping[str, Any]] = (), pulls: Sequence[Mapping[str, Any]] = ()) -> None:
    body = {"commits": list(commits), "pull_requests": list(pulls)}
    result = api.call("POST", "/api/{spaceId}/changes", path_params=SP, body=body, key=ADMIN_KEY)
    assert result.status < 300, result.body


def pull(number: int, merged_at: str) -> dict[str, Any]:
    """Pull request ``number`` merged into main at ``merged_at``."""
    return {
        "repository": REPO,
        "number": number,
        "base_ref": "main",
        "merge_commit_sha": sha(1000 + number),
        "created_at": "2024-03-01T01:00:00Z",
        "merged_at": merged_at,
    }


def at(seconds: int, hour: int) -> str:
    """``seconds`` after ``hour`` o'clock on the test's day."""
    return f"2024-03-01T{hour + seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}Z"


def deploy(api: Api, finished_at: str, **fields: Any) -> str:
    return str(create_deployment(api, repository=REPO, finished_at=finished_at, **fields)["id"])


def deploy_unattributed(api: Api, monkeypatch: pytest.MonkeyPatch, finished_at: str, **fields: Any) -> str:
    """A deployment stored with its outbox item and no attempt yet, as when the function stops right after
    its write: the attempt then runs when the test says."""
    from dora_insights.logic import attribution

    with monkeypatch.context() as patched:
        patched.setattr(attribution, "create_attributed", lambda *_, **__: None)
        patched.setattr(attribution, "attribute_at_ingest", lambda *_, **__: None)
        return deploy(api, finished_at, **fields)


def main_commits(api: Api, count: int) -> None:
    """Commits ``sha(0)`` .. ``sha(count - 1)`` on main, an hour apart from midnight."""
    changes(
        api,
        commits=[
            {"repository": REPO, "branch": "main", "sha": sha(n), "timestamp": f"2024-03-01T0{n}:00:00Z"}
            for n in range(count)
        ],
    )


def second_deployment_unattributed(api: Api, monkeypatch: pytest.MonkeyPatch, commit_sha: str) -> str:
    """The stream's first deployment (08:00, ``sha(0)``, attributed) and a second one at 09:00 naming
    ``commit_sha``, stored without its attempt (``deploy_unattributed``): the second's id."""
    deploy(api, "2024-03-01T08:00:00Z", commit_sha=sha(0))
    return deploy_unattributed(api, monkeypatch, "2024-03-01T09:00:00Z", commit_sha=commit_sha)


def numbers(api: Api, deployment_id: str) -> list[int]:
    """The numbers of every pull request a deployment shipped, through its pages."""
    found = attribution_of(api, deployment_id)
    shipped: list[int] = []
    while found is not None:
        shipped += [int(pr["number"]) for pr in found["pull_requests"]]
        cursor = found["next_cursor"]
        if cursor is None:
            break
        page = get_deployment(api, deployment_id, query={"attribution_cursor": cursor})
        assert page.status == 200, page.body
        found = page.body["attribution"]
    return shipped


def ledger_owners(store: Any, deployment_id: str) -> Counter[str]:
    """How many ledger entries (pattern 100 and 108) of the deployment's stream each deployment holds
    (read consistently, as the table holds them)."""
    from dora_insights.dal import keys

    stream = store.get_deployment(SPACE, deployment_id, consistent=True).stream_key
    entries = store.query_all(partition=keys.ledger_pk(SPACE, stream), consistent=True)
    return Counter(str(i["deployment_id"]) for i in entries)


def beside(store: Any, deployment_id: str) -> list[str]:
    """The types of the items in the deployment's partition (itself, its outbox item, its pages)."""
    from dora_insights.dal import keys

    items = store.query_all(partition=keys.deployment_pk(SPACE, deployment_id), consistent=True)
    return sorted(str(i["type"]) for i in items)


class Conflicts:
    """``Store.transact`` as DynamoDB answers it while other writes hold some of its items: a transaction
    with an action ``holds`` picks is cancelled (``TransactionConflict`` on those actions, ``None`` on the
    others) the next ``left`` times (None: every time). ``cancelled`` counts the cancellations."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, holds: Callable[[Mapping[str, Any]], bool]) -> None:
        from dora_insights.dal.store import Store

        self.left: int | None = 0
        self.cancelled = 0
        transact = Store.transact

        def contended(store: Store, operations: Sequence[Mapping[str, Any]]) -> None:
            held = [n for n, op in enumerate(operations) if holds(op)]
            if held and self.left != 0:
                self.left = None if self.left is None else self.left - 1
                self.cancelled += 1
                reasons = [{"Code": "TransactionConflict" if n in held else "None"} for n in range(len(operations))]
                error = {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"}
                raise ClientError({"Error": error, "CancellationReasons": reasons}, "TransactWriteItems")
            transact(store, operations)

        monkeypatch.setattr(Store, "transact", contended)
        monkeypatch.setattr(time, "sleep", lambda _: None)  # the retries' pauses are not waited


def dirty_mark(operation: Mapping[str, Any]) -> bool:
    """An update of a stream's dirty mark (every final attribution's transaction holds one)."""
    from dora_insights.dal import keys

    update = operation.get("Update")
    return update is not None and update["Key"][keys.PK]["S"] == keys.dirty_streams_pk(SPACE)


def outbox_item(operation: Mapping[str, Any]) -> bool:
    """An update of an attribution outbox item (a pending attempt's transaction holds one)."""
    from dora_insights.dal import keys

    update = operation.get("Update")
    return update is not None and str(update["Key"][keys.SK]["S"]) == keys.attribution_outbox("s", "d")[keys.SK]


# --- a large shipment's claims ---------------------------------------------------------------------


def test_a_large_shipment_read_before_the_ledger_replicated_ships_no_change_twice(
    api: Api, store: Any, clock: Clock, replica_lag: ReplicaLag
) -> None:
    from dora_insights.domain.changes import pull_request_change_id
    from dora_insights.logic import attribution

    # 150 pull requests: d2 (03:00) ships 50 of them, those whose ledger entries come last in the claims'
    # order (the second transaction of claims); d1 (04:00) ships the other 100 after d2. Read before
    # DynamoDB's replicas show d2, d1 sees d0 as its previous success and no ledger entry of d2's: two
    # failed deployments written after d2 took the stream's dirty mark (it names the last two written),
    # so it does not name d2 either.
    count = 150
    order = sorted(range(1, count + 1), key=lambda n: pull_request_change_id(REPO, n))
    taken_by_d2 = set(order[TRANSACTION_ITEMS:])
    merged = {n: at(k, 2) for k, n in enumerate(sorted(taken_by_d2))}
    merged |= {n: at(k, 3) for k, n in enumerate(sorted(set(order) - taken_by_d2), start=60)}
    changes(
        api,
        commits=[ROOT],
        pulls=[pull(n, merged[n]) for n in order],
    )
    deploy(api, "2024-03-01T01:30:00Z")
    replica_lag.on()
    d2 = deploy(api, "2024-03-01T03:00:00Z")
    assert ledger_owners(store, d2) == Counter({d2: len(taken_by_d2)})
    for finished_at in ("2024-03-01T03:20:00Z", "2024-03-01T03:40:00Z"):
        deploy(api, finished_at, state="Failed")

    d1 = deploy(api, "2024-03-01T04:00:00Z")  # its attempt at ingest reads the ledger without d2's entries
    assert replica_lag.hidden, "the attempt read nothing d2 wrote: the lag did not apply"
    assert ledger_owners(store, d1) == Counter({d2: len(taken_by_d2)})  # nothing claimed by d1 is left
    assert attribution_of(api, d1) is None  # failed: queued for retry, its outbox item kept
    assert store.attribution(SPACE).outbox(d1) is not None

    replica_lag.active = False  # the retry, once the replicas caught up
    assert attribution.attribute_deployment(store, SPACE, d1, NOW) == "Resolved"
    assert sorted(numbers(api, d1)) == sorted(set(order) - taken_by_d2)
    assert sorted(numbers(api, d2)) == sorted(taken_by_d2)  # each change shipped once
    assert ledger_owners(store, d1) == Counter({d1: count - len(taken_by_d2), d2: len(taken_by_d2)})


def test_a_large_shipment_whose_final_transaction_fails_leaves_no_ledger_entry_or_page(
    api: Api, store: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.errors import WriteContendedError
    from dora_insights.logic import attribution

    count = 120
    changes(
        api,
        commits=[ROOT],
        pulls=[pull(n, at(n, 2)) for n in range(1, count + 1)],
    )
    deploy(api, "2024-03-01T01:30:00Z")
    d1 = deploy_unattributed(api, monkeypatch, "2024-03-01T04:00:00Z")
    conflicts = Conflicts(monkeypatch, dirty_mark)
    conflicts.left = None  # other writes keep the stream's dirty mark busy past every retry

    with pytest.raises(WriteContendedError):
        attribution.attribute_deployment(store, SPACE, d1, NOW)
    assert conflicts.cancelled == 4  # the final transaction, sent again three times
    assert ledger_owners(store, d1) == Counter()  # its claims withdrawn: a re-run or another deployment is free
    assert beside(store, d1) == ["AttributionOutbox", "Deployment"]  # no page left
    assert attribution_of(api, d1) is None

    conflicts.left = 0
    assert attribution.attribute_deployment(store, SPACE, d1, NOW) == "Resolved"
    assert sorted(numbers(api, d1)) == list(range(1, count + 1))
    assert ledger_owners(store, d1) == Counter({d1: count})


def _large_shipment_waiting(api: Api, store: Any, monkeypatch: pytest.MonkeyPatch, count: int) -> tuple[str, Any]:
    """``count`` pull requests merged after a first deployment, and deployment d1 shipping them stored
    unattributed: d1's id and d1 as an attempt reads it."""
    changes(api, commits=[ROOT], pulls=[pull(n, at(n, 2)) for n in range(1, count + 1)])
    deploy(api, "2024-03-01T01:30:00Z")
    d1 = deploy_unattributed(api, monkeypatch, "2024-03-01T04:00:00Z")
    return d1, store.deployments().get(SPACE, d1, consistent=True)


def test_a_large_shipment_that_loses_to_another_attempt_withdraws_its_claims_and_pages(
    api: Api, store: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.dal.attribution_writes import PendingWrite
    from dora_insights.dal.store import Store
    from dora_insights.domain.model import Attribution
    from dora_insights.logic import attribution

    count = 120
    d1, read = _large_shipment_waiting(api, store, monkeypatch, count)
    transact = Store.transact
    other = PendingWrite(Attribution(state="Pending", attempts=1), [], "2024-03-01T12:30:00.000Z")

    def another_attempt_first(self: Store, operations: Sequence[Mapping[str, Any]]) -> None:
        if any(dirty_mark(op) for op in operations):  # the final transaction: an attempt that read earlier won
            monkeypatch.setattr(Store, "transact", transact)
            assert store.attribution(SPACE).save_pending(read, other, expected_attempts=0, now="2024-03-01T12:00:00Z")
        transact(self, operations)

    monkeypatch.setattr(Store, "transact", another_attempt_first)
    assert attribution.attribute_deployment(store, SPACE, d1, NOW) is None  # it lost
    assert ledger_owners(store, d1) == Counter()  # nothing of it is left
    assert beside(store, d1) == ["AttributionOutbox", "Deployment"]

    assert attribution.attribute_deployment(store, SPACE, d1, NOW) == "Resolved"  # the next attempt
    assert sorted(numbers(api, d1)) == list(range(1, count + 1))
    assert ledger_owners(store, d1) == Counter({d1: count})


def test_an_attempt_whose_claims_rewrote_a_committed_attempts_entries_leaves_them(
    api: Api, store: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.dal.store import Store
    from dora_insights.logic import attribution

    # Two attempts of one deployment read it (a message delivered twice): the second commits first, then
    # the first claims the same changes (a deployment may rewrite its own entries) and loses.
    count = 120
    d1, read = _large_shipment_waiting(api, store, monkeypatch, count)
    transact = Store.transact

    def claim(operation: Mapping[str, Any]) -> bool:
        return "deployment_id = :d" in operation.get("Put", {}).get("ConditionExpression", "")

    def the_other_attempt_first(self: Store, operations: Sequence[Mapping[str, Any]]) -> None:
        if any(claim(op) for op in operations):
            monkeypatch.setattr(Store, "transact", transact)
            assert attribution.attribute_deployment(store, SPACE, d1, NOW, known=read) == "Resolved"
        transact(self, operations)

    monkeypatch.setattr(Store, "transact", the_other_attempt_first)
    assert attribution.attribute_deployment(store, SPACE, d1, NOW, known=read) is None  # it lost
    assert sorted(numbers(api, d1)) == list(range(1, count + 1))
    assert ledger_owners(store, d1) == Counter({d1: count})  # the winner's entries stay


# --- the revision --------------------------------------------------------------------------------


def test_an_attempt_that_read_the_version_before_a_correction_stores_nothing(
    api: Api, store: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.logic import attribution

    main_commits(api, 6)
    d1 = second_deployment_unattributed(api, monkeypatch, sha(3))
    read = store.deployments().get(SPACE, d1)  # an attempt in flight read it (Success, revision 1) ...
    outbox = store.attribution(SPACE).outbox(d1)

    with monkeypatch.context() as patched:  # ... then a correction commits, its own attempt not run yet
        patched.setattr(attribution, "attribute_deployment", lambda *_, **__: None)
        corrected = api.call(
            "PATCH", ONE, path_params={**SP, "deploymentId": d1}, body={"state": "Failed"}, key=ADMIN_KEY
        )
    assert corrected.status == 200, corrected.body

    assert attribution.attribute_deployment(store, SPACE, d1, NOW, known=read, outbox=outbox) is None  # it lost
    assert attribution_of(api, d1) is None
    assert ledger_owners(store, d1)[d1] == 0

    assert attribution.attribute_deployment(store, SPACE, d1, NOW) == "None"  # the correction's attempt
    found = attribution_of(api, d1)
    assert found is not None
    assert (found["state"], found["commits"]) == ("None", [])
    assert store.attribution(SPACE).outbox(d1) is None
    d2 = deploy(api, "2024-03-01T10:00:00Z", commit_sha=sha(5))  # the changes d1 no longer ships are free
    later = attribution_of(api, d2)
    assert later is not None
    assert sorted(later["commits"]) == [sha(n) for n in range(1, 6)]


# --- contention ------------------------------------------------------------------------------------


def test_a_final_attribution_cancelled_for_a_busy_dirty_mark_is_sent_again(
    api: Api, store: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.logic import attribution

    main_commits(api, 4)
    d1 = second_deployment_unattributed(api, monkeypatch, sha(3))
    conflicts = Conflicts(monkeypatch, dirty_mark)
    conflicts.left = 1

    assert attribution.attribute_deployment(store, SPACE, d1, NOW) == "Resolved"
    assert conflicts.cancelled == 1
    found = attribution_of(api, d1)
    assert found is not None
    assert (found["attempts"], sorted(found["commits"])) == (1, [sha(1), sha(2), sha(3)])


def test_a_pending_attribution_cancelled_for_a_busy_outbox_item_is_sent_again(
    api: Api, store: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.logic import attribution

    changes(api, commits=[ROOT])
    d1 = second_deployment_unattributed(api, monkeypatch, sha(9))  # not pushed yet
    conflicts = Conflicts(monkeypatch, outbox_item)
    conflicts.left = 1  # the sweep leasing the outbox item at that moment

    assert attribution.attribute_deployment(store, SPACE, d1, NOW) == "Pending"
    assert conflicts.cancelled == 1
    found = attribution_of(api, d1)
    assert found is not None
    assert (found["state"], found["attempts"]) == ("Pending", 1)
