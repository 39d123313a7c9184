"""Replacing a deployment in place (DX ``deployments.upsert``): one transaction, never half-written.

The deployment keeps its id; its item (and so its index attributes), its idempotency record and
the dirty marks of its old and new streams change together, each conditional on the values read
before, so two concurrent replacements cannot interleave. The replacement is the deployment's next
revision (conditional on the one read, so a concurrent correction is not lost) and keeps what
corrections set that no dialect sends (the change-failure override and the remediation, issue 16).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from dora_insights.dal import aws, keys
from dora_insights.dal.store import Store, idempotency_item
from dora_insights.domain.model import Deployment
from dora_insights.domain.records import WriteOutcome
from dora_insights.errors import ResourceConflictError


def idempotency_target(store: Store, space_id: str, dialect: str, client_id: str) -> str | None:
    """The deployment id an idempotency key points at, or None (pattern 13, consistent read)."""
    item = store.get(keys.idempotency(space_id, dialect, client_id), consistent=True)
    return None if item is None else str(item["target_id"])


def _conditional_put(
    store: Store,
    item: dict[str, Any],
    body_hash: str,
    *,
    check_attribution: bool = False,
    attempts: int | None = None,
    revision: int | None = None,
) -> dict[str, Any]:
    """A Put conditional on the ``body_hash`` read and, with ``check_attribution``, on the attribution
    read: none (``attempts`` None) or the one of that many attempts (an attempt that finished
    meanwhile wrote what the replacement must undo); with ``revision``, on the revision read."""
    condition = "#h = :h"
    names = {"#h": "body_hash"}
    values = {":h": aws.serialize_value(body_hash)}
    if revision is not None:
        names["#rev"] = "revision"
        values[":rev"] = aws.serialize_value(revision)
        condition += " AND (#rev = :rev" + (" OR attribute_not_exists(#rev))" if revision == 1 else ")")
    if check_attribution:
        names["#a"] = "attribution"
        if attempts is None:
            condition += " AND attribute_not_exists(#a)"
        else:
            condition += " AND #a.attempts = :n"
            values[":n"] = aws.serialize_value(attempts)
    return {
        "Put": {
            "TableName": store.table,
            "Item": aws.serialize(item),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


def replace_deployment(
    store: Store,
    old: Deployment,
    new: Deployment,
    *,
    idempotency: tuple[str, str],
    now: str,
    also: Sequence[Mapping[str, Any]] = (),
) -> WriteOutcome:
    """Replace ``old`` by ``new`` (same id) with its idempotency record, in one transaction, with ``also``
    (the new version's attribution outbox and the undoing of the old one's, ``logic.attribution``).
    The replacement is conditional on the old version's attribution as read."""
    if new.id != old.id or new.space_id != old.space_id:  # pragma: no cover - the caller keeps the id
        raise ValueError("a replacement keeps the deployment's id and space")
    new = new.model_copy(
        update={
            "revision": old.revision + 1,
            "change_failure_override": old.change_failure_override,
            "remediation": old.remediation,
            "idempotency_key": idempotency,
        }
    )
    record = idempotency_item(new, idempotency, now)
    attempts = None if old.attribution is None else old.attribution.attempts
    put = store.deployment_item(new)
    operations = [
        _conditional_put(store, put, old.body_hash, check_attribution=True, attempts=attempts, revision=old.revision),
        _conditional_put(store, record, old.body_hash),
        store.dirty_op(new.space_id, new.stream_key, now),
    ]
    if old.stream_key != new.stream_key:
        operations.append(store.dirty_op(old.space_id, old.stream_key, now))
    operations += [dict(op) for op in also]
    try:
        store.transact(operations)
    except ClientError as error:
        if aws.error_code(error) != "TransactionCanceledException":
            raise
        raise ResourceConflictError("the deployment was changed by another request; retry") from None
    return WriteOutcome(new, created=False)
