"""The stream ledger's branch ranges in DynamoDB (pattern 108, issue 17): a commit a range shipped is
deployed to the stream on whichever branch it is read, unless the range skipped it, it lies outside
the range, the range is the asking deployment's own, or the range lies on another branch only."""

from __future__ import annotations

from typing import Any

from dora_insights.dal import keys
from dora_insights.dal.attribution import LedgerStore
from dora_insights.dal.code import CodeStore
from dora_insights.domain.attribution import ShippedRange
from dora_insights.domain.changes import BranchMark, Commit, commit_change_id

REPO = "acme/shop"
STREAM = "Projects-1#Channels-1#Environments-1#-"
NOW = "2024-03-01T12:00:00.000Z"


def sha(n: int) -> str:
    return f"{n:040x}"


def commit(n: int, branch: str, position: int) -> Commit:
    return Commit(repository=REPO, sha=sha(n), timestamp=NOW, branch=branch, position=position)


def ship(store: Any, span: ShippedRange, deployment_id: str) -> None:
    """A final attribution's range entry and the mark it moved, as its transaction writes them."""
    ledger = LedgerStore(store, "Spaces-1", STREAM, deployment_id)
    operations, _ = ledger.mark_operations(
        [BranchMark(repository=span.repository, branch=span.branch, position=span.up_to)], deployment_id
    )
    store.transact([*operations, {"Put": {"TableName": store.table, "Item": _serialized(ledger, span, deployment_id)}}])


def _serialized(ledger: LedgerStore, span: ShippedRange, deployment_id: str) -> dict[str, Any]:
    from dora_insights.dal import aws

    return aws.serialize(ledger.range_item(span, deployment_id))


def test_a_range_stands_for_its_commits_on_every_branch_they_are_read_on(store: Any) -> None:
    code = CodeStore(store, "Spaces-1")
    # main: 1..6 at positions 1..6; release carries commit 3 (cherry-picked) and 9, never shipped
    code.put_commits([commit(n, "main", n) for n in range(1, 7)] + [commit(3, "release", 1), commit(9, "release", 2)])
    ship(store, ShippedRange(repository=REPO, branch="main", after=1, up_to=5, skipped=(sha(4),)), "d1")
    ids = [commit_change_id(REPO, sha(n)) for n in (1, 2, 3, 4, 5, 6, 9)]

    other = LedgerStore(store, "Spaces-1", STREAM, "d2")
    assert other.deployed_among(ids) == {commit_change_id(REPO, sha(n)) for n in (2, 3, 5)}
    # the deployment that shipped the range does not see its own entry (a re-run ships it again)
    assert LedgerStore(store, "Spaces-1", STREAM, "d1").deployed_among(ids) == set()
    # an entry of its own (pattern 100) counts as before
    store.batch_put([other.change_item(commit_change_id(REPO, sha(9)), "d0")])
    assert commit_change_id(REPO, sha(9)) in other.deployed_among(ids)


def test_a_range_is_one_item_and_its_mark_names_its_branch(store: Any) -> None:
    ship(store, ShippedRange(repository=REPO, branch="main", after=0, up_to=5000), "d1")
    items = list(store.query_all(partition=keys.ledger_pk("Spaces-1", STREAM)))
    kinds = sorted(str(i[keys.TYPE]) for i in items)
    assert kinds == [keys.T_LEDGER_MARK, keys.T_LEDGER_RANGE]
    mark = next(i for i in items if i[keys.TYPE] == keys.T_LEDGER_MARK)
    assert (mark["repository"], mark["branch"], int(mark["position"])) == (REPO, "main", 5000)


def test_a_branch_whose_name_extends_another_keeps_its_ranges_apart(store: Any) -> None:
    code = CodeStore(store, "Spaces-1")
    code.put_commits([commit(1, "main", 1), commit(1, "main#2", 1)])
    ship(store, ShippedRange(repository=REPO, branch="main#2", after=0, up_to=1), "d1")
    ship(store, ShippedRange(repository=REPO, branch="main", after=5, up_to=9), "d1")
    assert LedgerStore(store, "Spaces-1", STREAM, "d2").deployed_among([commit_change_id(REPO, sha(1))]) == {
        commit_change_id(REPO, sha(1))
    }
    code.put_commits([commit(2, "main", 2)])
    assert LedgerStore(store, "Spaces-1", STREAM, "d2").deployed_among([commit_change_id(REPO, sha(2))]) == set()
