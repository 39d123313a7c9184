"""A fix to moto's speed the local runtime needs: ``TransactWriteItems`` copies each table once, not once per item.

moto backs a transaction up before running it (to roll it back if a condition fails) with a
``copy.deepcopy`` of the table *for every item of the transaction*: a deployment's 9-item transaction
on a table of a few thousand items took ~230 ms locally, most of a request's time, and grows with the
data. All those copies are taken before the transaction writes anything, so they are equal: here each
table is copied once per transaction and the copy is reused for its other items. Behaviour is otherwise
moto's own (same checks, same errors, same rollback).
"""

from __future__ import annotations

import copy
from contextvars import ContextVar
from typing import Any

__all__ = ["install"]

_COPIES: ContextVar[dict[int, Any] | None] = ContextVar("dora_local_moto_table_copies", default=None)


def install() -> None:
    """Patch moto's DynamoDB backend (idempotent; moto is imported here)."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    if getattr(DynamoDBBackend.transact_write_items, "_dora_copies_once", False):
        return
    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        token = _COPIES.set({})
        try:
            original(self, transact_items)
        finally:
            _COPIES.reset(token)

    def table_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
        copies = _COPIES.get()
        if copies is not None and id(self) in copies:
            return copies[id(self)]
        # What copy.deepcopy does for an object without __deepcopy__.
        clone = copy._reconstruct(self, memo, *self.__reduce_ex__(4))  # type: ignore[attr-defined]
        if copies is not None:
            copies[id(self)] = clone
        return clone

    transact_write_items._dora_copies_once = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    Table.__deepcopy__ = table_deepcopy  # type: ignore[attr-defined]
