"""Failure (incident) events in the single table (patterns 15–17 of ``dal.keys``).

A failure is one item ``S#<sp>#FAIL#<id>`` (pattern 16) indexed by start time on GSI1
(pattern 15). Its id is conditional, so a repeat with the same content answers the stored
event and one with different content a 409. The streams of the failure's projects in its
environment that the recompute already knows (pattern 44, found by pattern 17) are marked
dirty (pattern 14) in the same transaction, so the next scheduled run recomputes their
change-failure figures (METRICS §2 rule 4) and the reports that include them; streams the
recompute has not seen yet are dirty anyway, since they have new deployments. A removal (issue 16)
marks the same streams in the transaction that deletes the event and records who removed it.

The dirty marks are shared with every ingest and the recompute, so DynamoDB may cancel these
transactions for contention alone (``TransactionConflict``, ``ThrottlingError``): they are sent again
after short pauses (``Store.transact_contended``), and one still contended is a ``WriteContendedError``
(503: retry), never a 409 conflict. The client's retry marks every stream again, so marks past the
first transaction that stayed contended after the event was stored are not lost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dora_insights.dal import aws, keys
from dora_insights.dal.corrections import delete_failure
from dora_insights.dal.deployments import project_streams
from dora_insights.dal.store import Store
from dora_insights.domain.corrections import CorrectionRecord
from dora_insights.domain.failures import FailureOutcome
from dora_insights.domain.model import FailureEvent
from dora_insights.domain.queries import FailureListQuery
from dora_insights.errors import ResourceConflictError

_HIDDEN = frozenset({keys.PK, keys.SK, keys.TYPE, keys.GSI1PK, keys.GSI1SK})


def failure_from_item(item: Mapping[str, Any]) -> FailureEvent:
    """A failure event from a table or index item."""
    return FailureEvent.model_validate({k: v for k, v in item.items() if k not in _HIDDEN})


class FailureStore:
    """``logic.ports.FailureRepository`` over the table adapter."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def item(self, failure: FailureEvent) -> dict[str, Any]:
        """A failure event as a table item."""
        return {
            **keys.failure(failure.space_id, failure.id),
            **keys.failure_indexes(failure.space_id, failure.id, failure.started_at),
            keys.TYPE: keys.T_FAILURE,
            **failure.model_dump(mode="json", exclude_none=True),
        }

    def affected_streams(self, space_id: str, project_ids: Sequence[str], environment_id: str) -> list[str]:
        """The streams of these projects in this environment (``project_streams``: registered by the
        recompute, or marked and waiting for their first recompute)."""
        found: list[str] = []
        for project_id in dict.fromkeys(project_ids):
            for stream in project_streams(self.store, space_id, project_id):
                parts = stream.split("/")
                if len(parts) >= 3 and parts[2] == environment_id:
                    found.append(stream)
        return found

    def write(self, failure: FailureEvent, *, now: str, also_stream: str | None = None) -> FailureOutcome:
        """The event conditional on its id, with the dirty marks that fit in its transaction (the rest
        first, as :meth:`delete` does: once the event is stored, a sender's retry may take another path,
        such as an incident update answered as already open, that marks nothing; one mark too many is
        harmless), sent again while only contention cancels it."""
        first = aws.MAX_TRANSACTION_ITEMS - 1
        marks = self._marks_beyond(failure, first, now=now, also_stream=also_stream)
        operations = [self.store.put_op(self.item(failure), must_not_exist=True, return_old=True), *marks]
        reasons = self.store.transact_or_contended(operations, "the failure event")
        if reasons is not None:
            existing = self._duplicate(failure, reasons)
            self._mark(marks)  # a retry of a create whose transaction landed marks its streams again
            return FailureOutcome(existing, created=False)
        return FailureOutcome(failure, created=True)

    def _marks_beyond(
        self, failure: FailureEvent, room: int, *, now: str, also_stream: str | None
    ) -> list[dict[str, Any]]:
        """The dirty marks of the streams the event counts in (and ``also_stream``): those past the first
        ``room`` written now, the first ``room`` returned for the caller's transaction."""
        streams = self.affected_streams(failure.space_id, failure.project_ids, failure.environment_id)
        if also_stream is not None and also_stream not in streams:
            streams.append(also_stream)
        marks = [self.store.dirty_op(failure.space_id, s, now) for s in streams]
        self._mark(marks[room:])
        return marks[:room]

    def _mark(self, marks: Sequence[Mapping[str, Any]]) -> None:
        """Dirty marks, 100 to a transaction (``Store.transact_unconditional``: 503 if still contended)."""
        for chunk in aws.chunks(marks, aws.MAX_TRANSACTION_ITEMS):
            self.store.transact_unconditional(chunk)

    def _duplicate(self, failure: FailureEvent, reasons: list[dict[str, Any]]) -> FailureEvent:
        """The stored event a cancelled create met (same content), else the error to answer."""
        first = reasons[0] if reasons else {}
        if first.get("Code") != "ConditionalCheckFailed":
            raise ResourceConflictError("the failure event could not be written; retry the request")
        old = aws.deserialize(first.get("Item") or {})
        existing = failure_from_item(old) if old else self.get(failure.space_id, failure.id, consistent=True)
        if existing is None:  # pragma: no cover - the condition failed because the item exists
            raise ResourceConflictError("this id is being written by another request", field="id")
        if not failure.repeats(existing.body_hash):
            raise ResourceConflictError("this id was already used with different values", field="id")
        return existing

    def delete(
        self, failure: FailureEvent, *, record: CorrectionRecord, now: str, also_stream: str | None = None
    ) -> bool:
        """One transaction; marks past what it holds are written first (one too many is harmless)."""
        marks = self._marks_beyond(failure, aws.MAX_TRANSACTION_ITEMS - 2, now=now, also_stream=also_stream)
        return delete_failure(self.store, failure.space_id, failure.id, record=record, marks=marks)

    def get(self, space_id: str, failure_id: str, *, consistent: bool = False) -> FailureEvent | None:
        """Pattern 16: one GetItem (``consistent``: strongly consistent, so an event written a moment ago
        is found, at twice the read capacity)."""
        item = self.store.get(keys.failure(space_id, failure_id), consistent=consistent)
        return failure_from_item(item) if item else None

    def list_page(self, space_id: str, query: FailureListQuery) -> tuple[list[FailureEvent], str | None]:
        """Pattern 15; project and environment are FilterExpressions."""
        filters = query.filters
        items, next_cursor = self.store.query_filtered(
            space_id=space_id,
            partition=keys.failures_by_time(space_id),
            index=keys.GSI1,
            sort_between=keys.time_range(filters.started_from, filters.started_to),
            limit=query.limit,
            cursor=query.cursor,
            equal={"environment_id": filters.environment},
            contain={"project_ids": [filters.project] if filters.project is not None else []},
        )
        return [failure_from_item(item) for item in items], next_cursor
