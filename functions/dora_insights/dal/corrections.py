"""The records of corrections and removals (issue 16; pattern 107 of ``dal.keys``), the removal of a
failure event, and the transaction every correction and removal is.

Each correction or removal is one ``TransactWriteItems`` holding the change, the dirty marks and its
record (a deployment's: ``DeploymentStore.correct`` and ``delete``). Records live in a partition of
their own per deployment (or failure event), so they outlive it. The dirty marks (and the attribution's
items) are shared with other writes: a transaction cancelled for contention alone is sent again after
short pauses (``Store.transact_contended``), and one still contended is a ``WriteContendedError`` (503),
not a change the caller should read again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dora_insights.dal import aws, keys
from dora_insights.dal.store import Store
from dora_insights.domain.corrections import CorrectionRecord

_TARGETS = {"deployment": "D", "failure": "F"}
_HIDDEN = frozenset({keys.PK, keys.SK, keys.TYPE})


def record_item(record: CorrectionRecord) -> dict[str, Any]:
    """A correction record as a table item (pattern 107)."""
    return {
        **keys.correction(
            record.space_id,
            _TARGETS[record.target],
            record.target_id,
            record.at,
            record.id,
            revision=record.revision,
            removal=record.action == "delete",
        ),
        keys.TYPE: keys.T_CORRECTION,
        **record.model_dump(mode="json", exclude_none=True),
    }


def record_from_item(item: Mapping[str, Any]) -> CorrectionRecord:
    """A correction record from its item."""
    return CorrectionRecord.model_validate({k: v for k, v in item.items() if k not in _HIDDEN})


def transact(store: Store, operations: Sequence[Mapping[str, Any]]) -> bool:
    """The correction's transaction, sent again while only contention cancels it; False when a condition
    failed (the deployment, or one of the attribution's items, changed since they were read), a
    ``WriteContendedError`` when concurrent writes still cancel it (nothing changed: retry)."""
    return store.transact_or_contended(operations, "the change") is None


def delete_failure(
    store: Store, space_id: str, failure_id: str, *, record: CorrectionRecord, marks: Sequence[Mapping[str, Any]]
) -> bool:
    """Delete a failure event with the dirty marks ``marks`` (at most 98) and its record, in one
    transaction; False when it is gone already."""
    delete = {
        "Delete": {
            "TableName": store.table,
            "Key": aws.serialize(keys.failure(space_id, failure_id)),
            "ConditionExpression": "attribute_exists(PK)",
        }
    }
    return transact(store, [delete, store.put_op(record_item(record)), *marks])


def removed_between(store: Store, space_id: str, deployment_id: str, after: str, until: str) -> bool:
    """Whether a deployment under this id was removed at ``after`` or later and ``until`` or earlier
    (pattern 107: one Query of its records in that range, sorted by time)."""
    partition = keys.corrections_pk(space_id, _TARGETS["deployment"], deployment_id)
    records = store.query_all(partition=partition, sort_between=(after, f"{until}#\uffff"))
    return any(record_from_item(item).action == "delete" for item in records)


def list_records(
    store: Store, space_id: str, target: str, target_id: str, *, limit: int, cursor: str | None
) -> tuple[list[CorrectionRecord], str | None]:
    """The records of one deployment or failure event, newest first (pattern 107), at most ``limit``,
    and the opaque cursor of the next page (None on the last)."""
    partition = keys.corrections_pk(space_id, _TARGETS[target], target_id)
    start = aws.decode_cursor(cursor, space_id=space_id, partition=partition, index=None) if cursor else None
    items, after = store.query_window(partition=partition, ascending=False, limit=limit, start_key=start)
    return [record_from_item(i) for i in items], aws.encode_cursor(after) if after is not None else None
