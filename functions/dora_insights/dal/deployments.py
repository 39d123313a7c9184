"""Deployments as the logic reads and writes them (patterns 9–13 of ``dal.keys``).

``DeploymentStore`` is ``logic.ports.DeploymentRepository`` over the table adapter: one deployment
by id; the idempotent create (its transaction lives in ``Store.write_deployment``, which the bulk
write shares); the native list, newest first by finish time, a time-bounded Query on pattern 10
(pattern 11 when a project is named) with FilterExpressions for the other filters, never a Scan;
and the transactions that change a stored deployment:

- the DX replacement (``deployments.upsert``): the deployment keeps its id; its item (and so its
  index attributes), its idempotency record and the dirty marks of its old and new streams change
  together, each conditional on the values read before, so two concurrent replacements cannot
  interleave, and conditional on the revision read, so a concurrent correction is not lost;
- a correction or a removal (issue 16): the change (a Put of the corrected deployment, or the
  Delete), conditional on the revision and the attribution attempts read (a concurrent correction,
  replacement or attribution attempt cancels it: the caller reads again), the stream's dirty mark,
  the correction record (``dal.corrections``, pattern 107, read here too) and what the attribution
  needs done (``AttributionStore.redo`` / ``removal`` operations, passed in as ``also``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from dora_insights.dal import aws, keys
from dora_insights.dal.corrections import list_records, record_item, transact
from dora_insights.dal.store import Store, deployment_from_item, idempotency_item
from dora_insights.domain.corrections import CorrectionRecord
from dora_insights.domain.model import Deployment
from dora_insights.domain.records import NewDeployment, WriteOutcome
from dora_insights.errors import DoraError, ResourceConflictError


class DeploymentStore:
    """``logic.ports.DeploymentRepository`` over the table adapter."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, space_id: str, deployment_id: str, *, consistent: bool = False) -> Deployment | None:
        """Pattern 9: one GetItem."""
        if not consistent:
            return self.store.get_deployment(space_id, deployment_id)
        item = self.store.get(keys.deployment(space_id, deployment_id), consistent=True)
        return deployment_from_item(item) if item else None

    def write(
        self,
        deployment: Deployment,
        *,
        now: str,
        idempotency: tuple[str, str] | None = None,
        outbox_due: str | None = None,
    ) -> WriteOutcome:
        return self.store.write_deployment(deployment, now=now, idempotency=idempotency, outbox_due=outbox_due)

    def write_many(self, entries: Sequence[NewDeployment], *, now: str) -> list[WriteOutcome | DoraError]:
        """``Store.write_deployments``: batched reads of what is stored, multi-item transactions."""
        return self.store.write_deployments(entries, now=now)

    def idempotency_target(self, space_id: str, dialect: str, client_id: str) -> str | None:
        """Pattern 13, a consistent read."""
        item = self.store.get(keys.idempotency(space_id, dialect, client_id), consistent=True)
        return None if item is None else str(item["target_id"])

    def replace(
        self,
        old: Deployment,
        new: Deployment,
        *,
        idempotency: tuple[str, str],
        now: str,
        also: Sequence[Mapping[str, Any]] = (),
    ) -> WriteOutcome:
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
        put = self.store.deployment_item(new)
        operations = [
            self._put_if_read(put, old.body_hash, check_attribution=True, attempts=attempts, revision=old.revision),
            self._put_if_read(record, old.body_hash),
            self.store.dirty_op(new.space_id, new.stream_key, now),
        ]
        if old.stream_key != new.stream_key:
            operations.append(self.store.dirty_op(old.space_id, old.stream_key, now))
        operations += [dict(op) for op in also]
        try:
            self.store.transact(operations)
        except ClientError as error:
            if aws.error_code(error) != "TransactionCanceledException":
                raise
            raise ResourceConflictError("the deployment was changed by another request; retry") from None
        return WriteOutcome(new, created=False)

    def _put_if_read(
        self,
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
                "TableName": self.store.table,
                "Item": aws.serialize(item),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def list_page(
        self,
        space_id: str,
        *,
        project_id: str | None,
        environment_id: str | None,
        tenant_id: str | None,
        state: str | None,
        finished_from: datetime | None,
        finished_to: datetime | None,
        limit: int,
        cursor: str | None,
        tags: Sequence[str] = (),
    ) -> tuple[list[Deployment], str | None]:
        """Pattern 10 (11 when a project is named); the other filters are FilterExpressions."""
        if project_id:
            index, partition = keys.GSI2, keys.deployments_by_project(space_id, project_id)
        else:
            index, partition = keys.GSI1, keys.deployments_by_time(space_id)
        items, next_cursor = self.store.query_filtered(
            space_id=space_id,
            partition=partition,
            index=index,
            sort_between=keys.time_range(finished_from, finished_to),
            limit=limit,
            cursor=cursor,
            equal={"environment_id": environment_id, "tenant_id": tenant_id, "state": state},
            contain={"tags": tags},
        )
        return [deployment_from_item(item) for item in items], next_cursor

    def find_by_version(
        self, space_id: str, *, project_id: str, environment_id: str, version: str
    ) -> Deployment | None:
        """The project's partition (pattern 11) newest first, filtered, read until one matches or
        ``MAX_FILTERED_READ`` items were read."""
        found, _ = self.store.query_filtered(
            space_id=space_id,
            partition=keys.deployments_by_project(space_id, project_id),
            index=keys.GSI2,
            sort_between=keys.time_range(None, None),
            limit=1,
            cursor=None,
            equal={"environment_id": environment_id, "version": version},
        )
        return deployment_from_item(found[0]) if found else None

    def stream_has_others(self, deployment: Deployment) -> bool:
        """Pattern 12, one Query of two."""
        items, _ = self.store.query_page(
            partition=keys.deployments_by_stream(deployment.space_id, deployment.stream_key), index=keys.GSI3, limit=2
        )
        return any(item.get("id") != deployment.id for item in items)

    def correct(
        self,
        old: Deployment,
        new: Deployment,
        *,
        record: CorrectionRecord,
        now: str,
        also: Sequence[Mapping[str, Any]] = (),
    ) -> bool:
        if new.id != old.id or new.stream_key != old.stream_key:  # pragma: no cover - logic keeps both
            raise ValueError("a correction keeps the deployment's id and stream")
        item = aws.serialize(self.store.deployment_item(new))
        put = {"Put": {"TableName": self.store.table, "Item": item, **_as_read(old)}}
        operations = [
            put,
            self.store.dirty_op(new.space_id, new.stream_key, now),
            self.store.put_op(record_item(record)),
        ]
        return transact(self.store, [*operations, *also])

    def delete(
        self, old: Deployment, *, record: CorrectionRecord, now: str, also: Sequence[Mapping[str, Any]] = ()
    ) -> bool:
        key = aws.serialize(keys.deployment(old.space_id, old.id))
        delete = {"Delete": {"TableName": self.store.table, "Key": key, **_as_read(old)}}
        operations = [
            delete,
            self.store.dirty_op(old.space_id, old.stream_key, now),
            self.store.put_op(record_item(record)),
        ]
        if old.idempotency_key is not None:  # the dialect's id may be sent again: it creates a new deployment
            dialect, client_id = old.idempotency_key
            operations.append(
                {
                    "Delete": {
                        "TableName": self.store.table,
                        "Key": aws.serialize(keys.idempotency(old.space_id, dialect, client_id)),
                        "ConditionExpression": "attribute_not_exists(PK) OR target_id = :id",
                        "ExpressionAttributeValues": {":id": aws.serialize_value(old.id)},
                    }
                }
            )
        return transact(self.store, [*operations, *also])

    def corrections(
        self, space_id: str, deployment_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[CorrectionRecord], str | None]:
        """Pattern 107: a partition of its own per deployment, so the records outlive it."""
        return list_records(self.store, space_id, "deployment", deployment_id, limit=limit, cursor=cursor)


def _as_read(deployment: Deployment) -> dict[str, Any]:
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
    return {"ConditionExpression": condition, "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}
