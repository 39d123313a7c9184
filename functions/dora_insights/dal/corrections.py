"""Corrections and removals of deployments and failure events (issue 16), and their records
(pattern 107 of ``dal.keys``).

Each correction or removal is one ``TransactWriteItems``: the change (a Put of the corrected
deployment, or the Delete), conditional on the revision and the attribution attempts read (a
concurrent correction, replacement or attribution attempt cancels it: the caller reads again), the
stream's dirty mark (``Store.dirty_op``), the correction record, and what the attribution needs done
(``AttributionStore.redo`` / ``removal`` operations, passed in as ``also``).

Records live in a partition of their own per deployment (or failure event), so they outlive it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from dora_insights.dal import aws, keys
from dora_insights.dal.store import Store
from dora_insights.domain.corrections import CorrectionRecord
from dora_insights.domain.model import Deployment

_TARGETS = {"deployment": "D", "failure": "F"}
_HIDDEN = frozenset({keys.PK, keys.SK, keys.TYPE})


def record_item(record: CorrectionRecord) -> dict[str, Any]:
    """A correction record as a table item (pattern 107)."""
    return {
        **keys.correction(record.space_id, _TARGETS[record.target], record.target_id, record.at, record.id),
        keys.TYPE: keys.T_CORRECTION,
        **record.model_dump(mode="json", exclude_none=True),
    }


def record_from_item(item: Mapping[str, Any]) -> CorrectionRecord:
    """A correction record from its item."""
    return CorrectionRecord.model_validate({k: v for k, v in item.items() if k not in _HIDDEN})


def _as_read(deployment: Deployment) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The condition that the stored deployment is still the one read: its revision (an item stored
    before revisions existed is revision 1) and its attribution's attempts (none: no attribution)."""
    names = {"#rev": "revision", "#a": "attribution"}
    values: dict[str, Any] = {":rev": aws.serialize_value(deployment.revision)}
    condition = "attribute_exists(PK) AND (#rev = :rev"
    if deployment.revision == 1:
        condition += " OR attribute_not_exists(#rev)"
    condition += ")"
    if deployment.attribution is None:
        condition += " AND attribute_not_exists(#a)"
    else:
        condition += " AND #a.attempts = :attempts"
        values[":attempts"] = aws.serialize_value(deployment.attribution.attempts)
    return condition, names, values


def _transact(store: Store, operations: Sequence[Mapping[str, Any]]) -> bool:
    """The correction's transaction; False when a condition failed (the deployment, or one of the
    attribution's items, changed since they were read) or a concurrent transaction collided."""
    try:
        store.transact(operations)
    except ClientError as error:
        if aws.error_code(error) in ("TransactionCanceledException", "TransactionConflictException"):
            return False
        raise
    return True


def correct_deployment(
    store: Store,
    old: Deployment,
    new: Deployment,
    *,
    record: CorrectionRecord,
    now: str,
    also: Sequence[Mapping[str, Any]] = (),
) -> bool:
    """Write the corrected deployment (same id, same stream) if the stored one is still ``old``, with
    its stream's dirty mark, the record and ``also``, in one transaction; False when it changed."""
    if new.id != old.id or new.stream_key != old.stream_key:  # pragma: no cover - logic keeps both
        raise ValueError("a correction keeps the deployment's id and stream")
    condition, names, values = _as_read(old)
    put = {
        "Put": {
            "TableName": store.table,
            "Item": aws.serialize(store.deployment_item(new)),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }
    operations = [put, store.dirty_op(new.space_id, new.stream_key, now), store.put_op(record_item(record))]
    return _transact(store, [*operations, *also])


def delete_deployment(
    store: Store,
    old: Deployment,
    *,
    record: CorrectionRecord,
    now: str,
    also: Sequence[Mapping[str, Any]] = (),
) -> bool:
    """Delete the deployment (and the dialect idempotency record naming it) if the stored one is still
    ``old``, with its stream's dirty mark, the record and ``also``, in one transaction; False when it
    changed (or is gone)."""
    condition, names, values = _as_read(old)
    delete = {
        "Delete": {
            "TableName": store.table,
            "Key": aws.serialize(keys.deployment(old.space_id, old.id)),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }
    operations = [delete, store.dirty_op(old.space_id, old.stream_key, now), store.put_op(record_item(record))]
    if old.idempotency_key is not None:  # the dialect's id may be sent again: it creates a new deployment
        dialect, client_id = old.idempotency_key
        operations.append(
            {
                "Delete": {
                    "TableName": store.table,
                    "Key": aws.serialize(keys.idempotency(old.space_id, dialect, client_id)),
                    "ConditionExpression": "attribute_not_exists(PK) OR target_id = :id",
                    "ExpressionAttributeValues": {":id": aws.serialize_value(old.id)},
                }
            }
        )
    return _transact(store, [*operations, *also])


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
    return _transact(store, [delete, store.put_op(record_item(record)), *marks])


def list_records(
    store: Store, space_id: str, target: str, target_id: str, *, limit: int, cursor: str | None
) -> tuple[list[CorrectionRecord], str | None]:
    """The records of one deployment or failure event, newest first (pattern 107), at most ``limit``,
    and the opaque cursor of the next page (None on the last)."""
    partition = keys.corrections_pk(space_id, _TARGETS[target], target_id)
    start = aws.decode_cursor(cursor, space_id=space_id, partition=partition, index=None) if cursor else None
    items, last = store.query_page(partition=partition, ascending=False, limit=limit, start_key=start)
    more = last is not None
    if more and len(items) == limit:  # one more read tells whether the page was the last
        probe, _ = store.query_page(partition=partition, ascending=False, limit=1, start_key=last)
        more = bool(probe)
    next_cursor = aws.encode_cursor(last) if more and last is not None else None
    return [record_from_item(i) for i in items], next_cursor
