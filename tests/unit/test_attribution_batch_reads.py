"""``dal.attribution.consistent_batch_get`` under what moto never does and DynamoDB does (issue 17):
BatchGetItem leaving keys unprocessed (past 16 MB, or throttled). They are read again with the store's
backoff, a bounded number of times (``Store.batch_get``), never in a tight endless loop."""

from __future__ import annotations

import time
from typing import Any

import pytest

from dora_insights.dal.attribution import consistent_batch_get
from dora_insights.dal.store import Store
from dora_insights.errors import ServiceUnavailableError

_RUNAWAY = 50  # calls past which the client stops a loop that would never end


class _Throttled:
    """A DynamoDB client answering each BatchGetItem with its first ``served`` keys, the rest unprocessed."""

    def __init__(self, served: int) -> None:
        self.served = served
        self.requests: list[tuple[int, bool]] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        if len(self.requests) == _RUNAWAY:
            raise AssertionError("unprocessed keys were read again without end")
        ((table, wanted),) = RequestItems.items()
        self.requests.append((len(wanted["Keys"]), bool(wanted.get("ConsistentRead"))))
        served, rest = wanted["Keys"][: self.served], wanted["Keys"][self.served :]
        unprocessed = {table: {**wanted, "Keys": rest}} if rest else {}
        items = [{**key, "type": {"S": "Thing"}} for key in served]
        return {"Responses": {table: items}, "UnprocessedKeys": unprocessed}


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses taken, in seconds (none is waited)."""
    taken: list[float] = []
    monkeypatch.setattr(time, "sleep", taken.append)
    return taken


def _keys(count: int) -> list[dict[str, str]]:
    return [{"PK": f"S#Spaces-1#X{n}", "SK": "X"} for n in range(count)]


def test_unprocessed_keys_are_read_again_consistently_after_a_pause(pauses: list[float]) -> None:
    client = _Throttled(served=1)
    found = consistent_batch_get(Store("table", client), [*_keys(3), *_keys(1)])
    assert sorted(found) == [(k["PK"], k["SK"]) for k in _keys(3)]
    assert client.requests == [(3, True), (2, True), (1, True)]
    assert pauses == [0.05, 0.1]


def test_keys_dynamodb_never_serves_fail_after_a_bounded_number_of_attempts(pauses: list[float]) -> None:
    client = _Throttled(served=0)
    with pytest.raises(ServiceUnavailableError, match="unprocessed after every retry"):
        consistent_batch_get(Store("table", client), _keys(2))
    assert len(client.requests) == 10
    assert pauses[:9] == [min(1.0, 0.05 * 2**n) for n in range(9)] and max(pauses) == 1.0
