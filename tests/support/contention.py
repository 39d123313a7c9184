"""What moto never does and DynamoDB does under load (issue 17): cancel a transaction that touches an item
another write is changing (``TransactionConflict``, or ``ThrottlingError``), which botocore does not retry.

Every create, correction, failure event and settings change updates a stream's dirty mark (pattern 14),
as concurrent writes and the recompute do: ``Contention`` makes moto cancel the transactions that do.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dora_insights.dal import keys
from dora_insights.dal.store import Store
from dora_insights.domain.model import Deployment

SPACE = "Spaces-1"


def dirty_mark(operation: Mapping[str, Any]) -> str | None:
    """The stream whose dirty mark a transaction action updates, or None."""
    update = operation.get("Update")
    if update is None or update["Key"][keys.PK]["S"] != keys.dirty_streams_pk(SPACE):
        return None
    return str(update["Key"][keys.SK]["S"])


class Contention:
    """``Store.transact`` as DynamoDB answers it while other writes hold the streams' dirty marks: a
    transaction updating a held mark is cancelled, ``code`` on the mark and ``None`` on its other items,
    the next ``left`` times (None: every time). Every mark is held, or with ``one_stream`` only the
    first one a transaction updates once armed (the other streams' writes go through).

    ``attempts`` counts the transactions that update a held mark, ``cancelled`` those cancelled."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.left: int | None = 0
        self.code = "TransactionConflict"
        self.one_stream = False
        self.held: str | None = None
        self.cancelled = 0
        self.attempts = 0
        transact = Store.transact

        def contended_transact(store: Store, operations: Sequence[Mapping[str, Any]]) -> None:
            marks = [i for i, op in enumerate(operations) if self._holds(dirty_mark(op))]
            if marks:
                self.attempts += 1
            if marks and self.left != 0:
                self.left = None if self.left is None else self.left - 1
                self.cancelled += 1
                reasons = [{"Code": self.code if i in marks else "None"} for i in range(len(operations))]
                error = {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"}
                raise ClientError({"Error": error, "CancellationReasons": reasons}, "TransactWriteItems")
            transact(store, operations)

        monkeypatch.setattr(Store, "transact", contended_transact)

    def _holds(self, stream: str | None) -> bool:
        if stream is None:
            return False
        if not self.one_stream or self.left == 0:
            return True
        if self.held is None:
            self.held = stream
        return stream == self.held


def record_pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses taken from now on, in seconds (none is waited: the tests need not sleep)."""
    taken: list[float] = []
    monkeypatch.setattr(time, "sleep", taken.append)
    return taken


STAMP = "2024-03-01T12:00:00.000Z"


def a_deployment(n: int, *, deployment_id: str | None = None) -> Deployment:
    """Deployment ``d-<n>`` of project shop as the dal stores it (catalogue ids resolved), body hash
    ``hash-<n>``: written straight through a repository, past the routes."""
    return Deployment(
        id=deployment_id or f"d-{n}",
        space_id="Spaces-1",
        project="shop",
        project_id="Projects-1",
        environment="e",
        environment_id="Environments-1",
        channel="Default",
        channel_id="Channels-1",
        finished_at=STAMP,
        received_at=STAMP,
        body_hash=f"hash-{n}",
    )
