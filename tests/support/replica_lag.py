"""DynamoDB's eventual consistency, which moto never shows, made visible in a test.

While a ``ReplicaLag`` is on, every item written through ``Store.call`` since it was turned on is
invisible to the reads DynamoDB answers eventually consistently: a GetItem, BatchGetItem or base-table
Query without ``ConsistentRead``, and every Query of a global secondary index (never consistent). A
stale read here finds nothing where AWS may also answer the item's previous version: a read that
passes under this lag reads what was just written. ``index_only``: only index queries lag.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from dora_insights.dal.store import Store

Key = tuple[str, str]


def _key(item: Mapping[str, Any]) -> Key:
    return (item["PK"]["S"], item["SK"]["S"])


def _written(operation: str, kwargs: Mapping[str, Any]) -> list[Key]:
    if operation == "put_item":
        return [_key(kwargs["Item"])]
    if operation in ("update_item", "delete_item"):
        return [_key(kwargs["Key"])]
    if operation == "transact_write_items":
        return [
            _key(body["Item"] if kind == "Put" else body["Key"])
            for action in kwargs["TransactItems"]
            for kind, body in action.items()
            if kind in ("Put", "Update", "Delete")
        ]
    if operation == "batch_write_item":
        return [
            _key(request["PutRequest"]["Item"] if "PutRequest" in request else request["DeleteRequest"]["Key"])
            for requests in kwargs["RequestItems"].values()
            for request in requests
        ]
    return []


class ReplicaLag:
    """Turned on with :meth:`on`; ``hidden`` lists what a read did not see (for a failing test's message)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.active = False
        self.index_only = False
        self.fresh: set[Key] = set()
        self.hidden: list[str] = []
        call = Store.call

        def lagging(store: Store, operation: str, **kwargs: Any) -> Any:
            if not self.active:
                return call(store, operation, **kwargs)
            written = _written(operation, kwargs)
            response = call(store, operation, **kwargs)
            self.fresh.update(written)
            return self._as_a_replica_answers(operation, kwargs, response)

        monkeypatch.setattr(Store, "call", lagging)

    def on(self, *, index_only: bool = False) -> None:
        self.active, self.index_only = True, index_only

    def settle(self) -> None:
        """The replicas caught up: everything written so far is seen (what is written next lags again)."""
        self.fresh.clear()

    def _as_a_replica_answers(self, operation: str, kwargs: Mapping[str, Any], response: Any) -> Any:
        base_lags = not self.index_only
        stale = operation == "get_item" and base_lags and not kwargs.get("ConsistentRead")
        if stale and _key(kwargs["Key"]) in self.fresh:
            self.hidden.append(f"GetItem {_key(kwargs['Key'])}")
            return {}
        if operation == "batch_get_item" and base_lags:
            for table, request in kwargs["RequestItems"].items():
                if not request.get("ConsistentRead"):
                    response.setdefault("Responses", {})[table] = self._seen(
                        "BatchGetItem", response.get("Responses", {}).get(table, [])
                    )
        if operation == "query" and (kwargs.get("IndexName") or (base_lags and not kwargs.get("ConsistentRead"))):
            items = self._seen(f"Query {kwargs.get('IndexName') or 'table'}", response.get("Items", []))
            response = {**response, "Items": items, "Count": len(items)}
        return response

    def _seen(self, read: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = [i for i in items if _key(i) not in self.fresh]
        if len(kept) != len(items):
            self.hidden.append(f"{read} {[_key(i) for i in items if _key(i) in self.fresh]}")
        return kept


@pytest.fixture
def replica_lag(monkeypatch: pytest.MonkeyPatch) -> ReplicaLag:
    """A :class:`ReplicaLag`, off until the test turns it on."""
    return ReplicaLag(monkeypatch)
