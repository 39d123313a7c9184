"""A dirty mark's conditional writes by the recompute (``MetricsStore.mark_caught_up``, ``clear_dirty``)
while an ingest's transaction holds the mark: DynamoDB refuses such a single-item write with
``TransactionConflictException`` (moto never does). The ingest marks the stream again, so the write's
condition would have failed anyway: the mark stays for the next run, and nothing raises."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from dora_insights.dal.store import Store

SPACE = "Spaces-1"
STREAM = "Projects-1/Channels-1/Environments-1/-"
MARKED = "2024-03-01T12:00:00.000Z"


@pytest.fixture
def marked(store: Any, space: str) -> Any:
    store.transact([store.dirty_op(SPACE, STREAM, MARKED)])
    return store


def _mark_id(store: Any) -> str:
    (mark,) = store.list_dirty_streams(SPACE)
    return str(mark["mark_id"])


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every UpdateItem and DeleteItem meets a transaction in flight on its item."""
    refused: list[str] = []
    call = Store.call

    def conflicting(self: Store, operation: str, **kwargs: Any) -> Any:
        if operation in ("update_item", "delete_item"):
            refused.append(operation)
            error = {"Code": "TransactionConflictException", "Message": "Transaction is ongoing for the item"}
            raise ClientError({"Error": error}, operation)
        return call(self, operation, **kwargs)

    monkeypatch.setattr(Store, "call", conflicting)
    return refused


def test_catching_up_a_mark_a_transaction_holds_records_nothing(marked: Any, held: list[str]) -> None:
    assert marked.metrics().mark_caught_up(SPACE, STREAM, MARKED, _mark_id(marked)) is False
    assert held == ["update_item"]
    (mark,) = marked.list_dirty_streams(SPACE)
    assert (mark["dirty_at"], mark["caught_up"]) == (MARKED, None)


def test_clearing_a_mark_a_transaction_holds_leaves_it(marked: Any, held: list[str]) -> None:
    marked.metrics().clear_dirty(SPACE, STREAM, MARKED, _mark_id(marked))
    assert held == ["delete_item"]
    assert [m["dirty_at"] for m in marked.list_dirty_streams(SPACE)] == [MARKED]


def test_another_error_still_raises(marked: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def throttled(self: Store, operation: str, **kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, operation)

    monkeypatch.setattr(Store, "call", throttled)
    with pytest.raises(ClientError):
        marked.metrics().clear_dirty(SPACE, STREAM, MARKED, _mark_id(marked))


def test_a_mark_written_before_marks_had_ids_is_caught_up_and_cleared(store: Any, space: str) -> None:
    """A mark stored by an earlier release has no ``mark_id``: it is caught up and cleared all the same."""
    from dora_insights.dal import aws, keys

    item = {**keys.dirty_stream(SPACE, STREAM), keys.TYPE: keys.T_DIRTY_STREAM, "stream": STREAM}
    store.call("put_item", TableName=store.table, Item=aws.serialize({**item, "dirty_at": MARKED, "pending": 1}))
    (mark,) = store.list_dirty_streams(SPACE)
    assert mark["mark_id"] is None
    assert store.metrics().mark_caught_up(SPACE, STREAM, MARKED, None) is True
    (mark,) = store.list_dirty_streams(SPACE)
    assert mark["caught_up"] is not None
    store.metrics().clear_dirty(SPACE, STREAM, MARKED, None)
    assert store.list_dirty_streams(SPACE) == []


def test_a_mark_written_again_at_the_same_instant_is_neither_caught_up_nor_cleared(store: Any, space: str) -> None:
    """A request stamps each of its writes with its start: the second mark has the same ``dirty_at``."""
    store.transact([store.dirty_op(SPACE, STREAM, MARKED)])
    (read,) = store.list_dirty_streams(SPACE)
    store.transact([store.dirty_op(SPACE, STREAM, MARKED)])
    assert store.metrics().mark_caught_up(SPACE, STREAM, MARKED, read["mark_id"]) is False
    store.metrics().clear_dirty(SPACE, STREAM, MARKED, read["mark_id"])
    (mark,) = store.list_dirty_streams(SPACE)
    assert (mark["dirty_at"], mark["pending"], mark["caught_up"]) == (MARKED, 2, None)
