"""Deployments as the logic reads and writes them (patterns 9–13 of ``dal.keys``).

``DeploymentStore`` is ``logic.ports.DeploymentRepository`` over the table adapter: one deployment
by id; the idempotent create, one by one and in bulk (batched reads of what is stored, multi-item
transactions; ``AttributionStore`` extends the same transaction with an attribution); the native
list, newest first by finish time, a time-bounded Query on pattern 10 (pattern 11 when a project is
named) with FilterExpressions for the other filters, never a Scan; and the transactions that change
a stored deployment:

- the DX replacement (``deployments.upsert``): the deployment keeps its id; its item (and so its
  index attributes), its idempotency record and the dirty marks of its old and new streams change
  together, each conditional on the values read before, so two concurrent replacements cannot
  interleave, and conditional on the revision read, so a concurrent correction is not lost;
- a correction or a removal (issue 16): the change (a Put of the corrected deployment, or the
  Delete), conditional on the revision and the attribution attempts read (a concurrent correction,
  replacement or attribution attempt cancels it: the caller reads again), the stream's dirty mark,
  the correction record (``dal.corrections``, pattern 107, read here too) and what the attribution
  needs done (``AttributionStore.redo`` / ``removal`` operations, passed in as ``also``); when it
  changes a version or removes a deployment that has one, also the dirty marks of the project's other
  streams, whose Release lead times read the release's first-seen time across the project (METRICS §3;
  past the transaction's 100 items, the rest are written just before it).

Every one of these writes meets what moto never shows: DynamoDB cancels a transaction touching an item
another write is changing (reason ``TransactionConflict``; each updates its stream's dirty mark, as
concurrent batches and the recompute do) or under throttling (``ThrottlingError``), and botocore does
not retry a ``TransactionCanceledException``. ``Store.transact_contended`` retries such a cancellation
with a short jittered backoff; a write that still cannot go through, with no condition failed, is a
``WriteContendedError`` (503: retry), never a conflict (409). A bulk write's pauses come out of one
budget (``BULK_PAUSE_BUDGET_SECONDS``), so contention never holds a request near API Gateway's 29 s.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dora_insights.dal import aws, keys, limits
from dora_insights.dal.corrections import list_records, record_item, removed_between, transact
from dora_insights.dal.store import (
    PauseBudget,
    Store,
    contended,
    contended_actions,
    deployment_from_item,
    idempotency_item,
    stream_position,
)
from dora_insights.domain.corrections import CorrectionRecord, changes_release_first_seen
from dora_insights.domain.model import Deployment
from dora_insights.domain.queries import DeploymentListQuery
from dora_insights.domain.records import NewDeployment, VersionSearch, WriteOutcome
from dora_insights.errors import DoraError, ResourceConflictError, WriteContendedError, id_reused

# The pauses one bulk write may take in all while transactions are cancelled for contention. Unbounded, a
# batch of 500 whose every transaction stays contended pauses up to 140 ms per transaction and again per
# entry (up to 70 s), past API Gateway's 29 s: the client would get a 504 and no answer per entry. 2 s is
# some fifteen entries' worth of retries: enough to ride out a burst, a small part of the 29 s.
BULK_PAUSE_BUDGET_SECONDS = 2.0


class DeploymentStore:
    """``logic.ports.DeploymentRepository`` over the table adapter."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, space_id: str, deployment_id: str, *, consistent: bool = False) -> Deployment | None:
        """Pattern 9: one GetItem."""
        return self.store.get_deployment(space_id, deployment_id, consistent=consistent)

    def write(self, entry: NewDeployment, *, now: str) -> WriteOutcome:
        """One transaction: ``_creates`` and the stream's dirty mark. The deployment id (a client id, or
        generated) and the dialect idempotency key are both conditional (``resolve_duplicate`` answers a
        repeat); the outbox item (pattern 104) in the same transaction means a crash before the
        attribution ran leaves it for the client's retry or the recompute's sweep, never lost. A
        cancellation for contention is retried (``Store.transact_contended``)."""
        return self._write(entry, now, None)

    def _write(self, entry: NewDeployment, now: str, budget: PauseBudget | None) -> WriteOutcome:
        """``write``, its pauses taken from ``budget`` if given."""
        deployment = entry.deployment
        dirty = self.store.dirty_op(deployment.space_id, deployment.stream_key, now, written=deployment)
        operations = [*self._creates(entry, now), dirty]
        reasons = self.store.transact_contended(operations, budget=budget)
        if reasons is not None:
            return resolve_duplicate(self.store, deployment, reasons)
        return WriteOutcome(deployment, created=True)

    def _creates(self, entry: NewDeployment, now: str) -> list[dict[str, Any]]:
        """The conditional Puts that create an entry: its deployment, the outbox item of the attribution
        it is owed (with ``outbox_due``) and its idempotency record (with a dialect key)."""
        deployment = entry.deployment
        operations = [self.store.put_op(self.store.deployment_item(deployment), must_not_exist=True, return_old=True)]
        if entry.outbox_due is not None:
            outbox = self.store.outbox_item(deployment.space_id, deployment.id, due=entry.outbox_due, created_at=now)
            operations.append(self.store.put_op(outbox))
        if entry.idempotency is not None:
            record = idempotency_item(deployment, entry.idempotency, now)
            operations.append(self.store.put_op(record, must_not_exist=True, return_old=True))
        return operations

    # --- bulk create (native batch, DX backfill) ---------------------------------------------
    def write_many(self, entries: Sequence[NewDeployment], *, now: str) -> list[WriteOutcome | DoraError]:
        """Create many deployments as ``write`` creates one, in few round trips. One result
        per entry, in order: its outcome (created, or a repeat answering the stored deployment) or its
        own error (``ResourceConflictError``: other values under a known id or key, code ``ID_REUSED``;
        ``ItemTooLargeError``/``KeyTooLargeError``: an item DynamoDB would refuse;
        ``WriteContendedError``: still cancelled for contention after retries, nothing stored).

        Entries go in waves in which no two share a deployment id or an idempotency key, so a repeat
        inside the request meets the first one stored, as one request after another would. Per wave:
        a strongly consistent BatchGetItem per 100 keys finds what is stored already (a client's retry
        after a timeout is answered, not written again); the rest is packed into TransactWriteItems
        within DynamoDB's limits (100 actions, 4 MB, no item twice), each entry's items (deployment,
        idempotency record, outbox item) whole in one transaction with its stream's dirty mark (one
        per stream and transaction, counting its deployments): each entry is all or nothing. When a
        condition fails (written meanwhile), the cancellation reasons name the entries: they are
        answered from the items the reasons carry, the others are written again without them. A
        transaction cancelled for contention only (a concurrent write of a dirty mark...) is sent again
        after a short pause (``Store.transact_contended``); still contended, the reasons name the streams
        another write holds (their marks, or their entries' items): the entries of the other streams go
        in a transaction again, those of the held streams one by one. Every pause comes out of one budget
        for the request (``BULK_PAUSE_BUDGET_SECONDS``): once it is spent, an entry of a held stream is
        answered ``WriteContendedError`` at once, nothing of it stored.
        """
        results: list[WriteOutcome | DoraError | None] = [None] * len(entries)
        budget = PauseBudget(BULK_PAUSE_BUDGET_SECONDS)
        for wave in _waves(entries):
            planned: list[_Planned] = []
            for index in wave:
                try:
                    planned.append(self._plan(index, entries[index], now))
                except DoraError as error:  # an item DynamoDB would refuse: this entry's answer only
                    results[index] = error
            queue = deque(self._answer_stored(planned, results))
            while queue:
                chunk = _take_transaction(queue)
                queue.extendleft(reversed(self._commit(chunk, results, now, budget)))
        answered = [r for r in results if r is not None]
        if len(answered) != len(entries):  # pragma: no cover - every entry is answered above
            raise RuntimeError("a bulk write left an entry unanswered")
        return answered

    def _plan(self, index: int, entry: NewDeployment, now: str) -> _Planned:
        """The entry's conditional Puts, its items checked against DynamoDB's limits one by one."""
        operations = self._creates(entry, now)
        size = sum(limits.check_item(operation["Put"]["Item"]) for operation in operations)
        return _Planned(index, entry, operations, size)

    def _answer_stored(
        self, planned: Sequence[_Planned], results: list[WriteOutcome | DoraError | None]
    ) -> list[_Planned]:
        """Answer the entries stored already (by their idempotency record, else their deployment id);
        the others, to write."""

        def lookup(entry: NewDeployment) -> dict[str, str]:
            deployment = entry.deployment
            if entry.idempotency is not None:
                return keys.idempotency(deployment.space_id, *entry.idempotency)
            return keys.deployment(deployment.space_id, deployment.id)

        wanted = {p.index: lookup(p.entry) for p in planned}
        stored = {(i[keys.PK], i[keys.SK]): i for i in self.store.batch_get(list(wanted.values()), consistent=True)}
        targets: dict[int, tuple[str, str]] = {}
        remaining: list[_Planned] = []
        for p in planned:
            key = wanted[p.index]
            item = stored.get((key[keys.PK], key[keys.SK]))
            deployment = p.entry.deployment
            if item is None:
                remaining.append(p)
            elif not deployment.repeats(item.get("body_hash")):
                results[p.index] = id_reused()
            elif item.get(keys.TYPE) == keys.T_IDEMPOTENCY:
                targets[p.index] = (deployment.space_id, str(item["target_id"]))
            else:
                results[p.index] = WriteOutcome(deployment_from_item(item), created=False)
        if targets:
            found = {
                (str(i["space_id"]), str(i["id"])): deployment_from_item(i)
                for i in self.store.batch_get([keys.deployment(*t) for t in targets.values()], consistent=True)
            }
            for index, target in targets.items():
                existing = found.get(target)
                results[index] = (
                    WriteOutcome(existing, created=False)
                    if existing is not None  # else removed (with its record) since the first read
                    else ResourceConflictError(_CHANGING, field="id")
                )
        return remaining

    def _commit(
        self,
        chunk: Sequence[_Planned],
        results: list[WriteOutcome | DoraError | None],
        now: str,
        budget: PauseBudget,
    ) -> list[_Planned]:
        """One transaction of ``chunk`` with its streams' dirty marks (sent again while only contention
        cancels it and ``budget`` pays the pauses); the entries to write again (in a transaction cancelled
        by other entries' failed conditions, or for contention on streams other than theirs)."""
        operations: list[dict[str, Any]] = []
        owners: list[_Planned | None] = []
        streams: list[tuple[str, str]] = []  # the stream of each action: its entry's, or the mark's
        for p in chunk:
            operations += p.operations
            owners += [p] * len(p.operations)
            streams += [_stream(p)] * len(p.operations)
        by_stream: dict[tuple[str, str], list[Deployment]] = {}
        for p in chunk:
            by_stream.setdefault(_stream(p), []).append(p.entry.deployment)
        for (space_id, stream), written in by_stream.items():  # each stream's mark names its last in stream order
            last = max(written, key=stream_position)
            operations.append(self.store.dirty_op(space_id, stream, now, count=len(written), written=last))
            owners.append(None)
            streams.append((space_id, stream))
        reasons = self.store.transact_contended(operations, budget=budget)
        if reasons is None:
            for p in chunk:
                results[p.index] = WriteOutcome(p.entry.deployment, created=True)
            return []
        failed: dict[int, list[dict[str, Any]]] = {}
        for owner, reason in zip(owners, reasons, strict=False):
            if owner is not None and reason.get("Code") == "ConditionalCheckFailed":
                failed.setdefault(owner.index, []).append(reason)
        if not failed:  # still contended after the retries (or cancelled for another reason)
            still_contended = contended(reasons)
            held = {streams[i] for i in contended_actions(reasons) if i < len(streams)} if still_contended else set()
            free = [p for p in chunk if _stream(p) not in held]
            if held and free:  # the streams another write holds: their entries alone; the others again
                for p in chunk:
                    if _stream(p) in held:
                        self._write_one(p, results, now, budget, still_contended=True)
                return free
            for p in chunk:
                self._write_one(p, results, now, budget, still_contended=still_contended)
            return []
        for p in chunk:
            if p.index in failed:
                try:
                    results[p.index] = resolve_duplicate(self.store, p.entry.deployment, failed[p.index])
                except DoraError as conflict:
                    results[p.index] = conflict
        return [p for p in chunk if p.index not in failed]

    def _write_one(
        self,
        p: _Planned,
        results: list[WriteOutcome | DoraError | None],
        now: str,
        budget: PauseBudget,
        *,
        still_contended: bool,
    ) -> None:
        """The fallback: the entry in a transaction of its own (``write``, with its own retries), unless
        its transaction was ``still_contended`` and the budget for pauses is spent (answered at once)."""
        if still_contended and budget.spent:
            results[p.index] = _contention()
            return
        try:
            results[p.index] = self._write(p.entry, now, budget)
        except DoraError as error:
            results[p.index] = error

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
            self.store.dirty_op(new.space_id, new.stream_key, now, written=new),
        ]
        if old.stream_key != new.stream_key:
            operations.append(self.store.dirty_op(old.space_id, old.stream_key, now))
        operations += [dict(op) for op in also]
        operations += self._release_marks(old, new, now, operations)
        if self.store.transact_or_contended(operations, "the deployment") is not None:  # a condition failed
            raise ResourceConflictError("the deployment was changed by another request; retry")
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

    def list_page(self, space_id: str, query: DeploymentListQuery) -> tuple[list[Deployment], str | None]:
        """Pattern 10 (11 when a project is named); the other filters are FilterExpressions."""
        filters = query.filters
        if filters.project:
            index, partition = keys.GSI2, keys.deployments_by_project(space_id, filters.project)
        else:
            index, partition = keys.GSI1, keys.deployments_by_time(space_id)
        items, next_cursor = self.store.query_filtered(
            space_id=space_id,
            partition=partition,
            index=index,
            sort_between=keys.time_range(filters.finished_from, filters.finished_to),
            limit=query.limit,
            cursor=query.cursor,
            equal={"environment_id": filters.environment, "tenant_id": filters.tenant, "state": filters.state},
            contain={"tags": filters.tags},
        )
        return [deployment_from_item(item) for item in items], next_cursor

    def find_by_version(self, space_id: str, *, project_id: str, environment_id: str, version: str) -> VersionSearch:
        """The project's partition (pattern 11) newest first, filtered, read until one matches or
        ``MAX_FILTERED_READ`` items were read."""
        found, cursor = self.store.query_filtered(
            space_id=space_id,
            partition=keys.deployments_by_project(space_id, project_id),
            index=keys.GSI2,
            sort_between=keys.time_range(None, None),
            limit=1,
            cursor=None,
            equal={"environment_id": environment_id, "version": version},
        )
        return VersionSearch(deployment_from_item(found[0]) if found else None, complete=bool(found) or cursor is None)

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
            *also,
        ]
        return transact(self.store, [*operations, *self._release_marks(old, new, now, operations)])

    def delete(
        self, old: Deployment, *, record: CorrectionRecord, now: str, also: Sequence[Mapping[str, Any]] = ()
    ) -> bool:
        key = aws.serialize(keys.deployment(old.space_id, old.id))
        delete = {"Delete": {"TableName": self.store.table, "Key": key, **_as_read(old)}}
        operations: list[Mapping[str, Any]] = [
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
        operations += also
        return transact(self.store, [*operations, *self._release_marks(old, None, now, operations)])

    def _release_marks(
        self, old: Deployment, new: Deployment | None, now: str, held: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """The dirty marks of the project's other streams (both projects' when a replacement moves it)
        when correcting or replacing ``old`` by ``new`` (None: its removal) may move a release's
        first-seen time, which their Release lead times read (``changes_release_first_seen``); none
        otherwise, and none for a mark the ``held`` operations write already (a transaction names an item
        once). Those that fit beside ``held`` go in the transaction; the others are written first (a mark
        too many, should the transaction fail, only has a stream computed again)."""
        if not changes_release_first_seen(old, new):
            return []
        projects = {old.project_id, new.project_id if new is not None else old.project_id}
        found = {s for project in projects for s in project_streams(self.store, old.space_id, project)}
        touched = {limits.action_key(body) for op in held for body in op.values()}
        table = self.store.table
        streams = sorted(
            s for s in found if limits.item_key(table, aws.serialize(keys.dirty_stream(old.space_id, s))) not in touched
        )
        room = max(aws.MAX_TRANSACTION_ITEMS - len(held), 0)
        if streams[room:]:
            self.store.mark_streams_dirty(old.space_id, streams[room:], now)
        return [self.store.dirty_op(old.space_id, stream, now) for stream in streams[:room]]

    def corrections(
        self, space_id: str, deployment_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[CorrectionRecord], str | None]:
        """Pattern 107: a partition of its own per deployment, so the records outlive it."""
        return list_records(self.store, space_id, "deployment", deployment_id, limit=limit, cursor=cursor)

    def removed_between(self, space_id: str, deployment_id: str, after: str, until: str) -> bool:
        """Pattern 107: one Query of the id's correction records in that range."""
        return removed_between(self.store, space_id, deployment_id, after, until)


def project_streams(store: Store, space_id: str, project_id: str) -> list[str]:
    """Every stream of a project that has deployments: the marked ones (pattern 14) and the recompute's
    (pattern 44), by the project's prefix of the stream key (pattern 17). Read in that order, strongly
    consistently: the recompute registers a new stream before it clears the stream's mark, so a stream
    whose first recompute runs meanwhile is in one answer or the other (a write marking the streams it
    changes must not miss it: the recompute would clear the mark it read and vouch for figures computed
    without the write)."""
    prefix = keys.project_streams_prefix(project_id)
    found: set[str] = set()
    for partition in (keys.dirty_streams_pk(space_id), keys.streams_pk(space_id)):
        items = store.query_all(partition=partition, sort_prefix=prefix, consistent=True)
        found.update(str(i[keys.SK]) for i in items)
    return sorted(found)


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


_CHANGING = "this id is being written or removed by another request; retry"


def resolve_duplicate(store: Store, deployment: Deployment, reasons: Sequence[Mapping[str, Any]]) -> WriteOutcome:
    """The answer to a create whose transaction was cancelled (``reasons``, its cancellation reasons):
    the stored deployment for a repeat with the same fingerprint; a ``ResourceConflictError`` for other
    values (code ``ID_REUSED``) or when the stored deployment is gone (removed, with its record, since
    the condition failed: ``conflict``); ``WriteContendedError`` when no condition failed (contention).

    The stored deployment is read consistently: the transaction that stored it may have committed
    just before, and an eventually consistent read could miss it (a client's retry of a request still
    being written would get a conflict instead of its answer)."""
    for reason in reasons:
        if reason.get("Code") != "ConditionalCheckFailed":
            continue
        old = aws.deserialize(reason.get("Item") or {})
        if old.get(keys.TYPE) == keys.T_IDEMPOTENCY:
            if not deployment.repeats(old.get("body_hash")):
                raise id_reused()
            existing = store.get_deployment(deployment.space_id, str(old["target_id"]), consistent=True)
            if existing is None:  # the record and its deployment are written, and removed, together
                raise ResourceConflictError(_CHANGING, field="id")
            return WriteOutcome(existing, created=False)
        if old.get(keys.TYPE) == keys.T_DEPLOYMENT or not old:
            existing = (
                deployment_from_item(old)
                if old
                else store.get_deployment(deployment.space_id, deployment.id, consistent=True)
            )
            if existing is None:
                raise ResourceConflictError(_CHANGING, field="id")
            if not deployment.repeats(existing.body_hash):
                raise id_reused()
            return WriteOutcome(existing, created=False)
    raise _contention()


def _contention() -> WriteContendedError:
    """The answer to a write still cancelled for contention after its retries: nothing was stored."""
    return WriteContendedError("the deployment could not be written now, for concurrent writes; retry the request")


@dataclass(frozen=True)
class _Planned:
    """An entry of a bulk write with its transaction actions and their size in bytes."""

    index: int
    entry: NewDeployment
    operations: list[dict[str, Any]]
    size: int


_DIRTY_MARK_BYTES = 1_200  # at most, for one dirty mark's Update (a stream key is at most 1,024 bytes)


def _waves(entries: Sequence[NewDeployment]) -> list[list[int]]:
    """Entry indexes in waves, in order, no two entries of a wave sharing a deployment id or an
    idempotency key (the n-th entry naming a key goes in wave n or later)."""
    last: dict[tuple[str, ...], int] = {}
    waves: list[list[int]] = []
    for index, entry in enumerate(entries):
        deployment = entry.deployment
        claims: list[tuple[str, ...]] = [("deployment", deployment.space_id, deployment.id)]
        if entry.idempotency is not None:
            claims.append(("idempotency", deployment.space_id, *entry.idempotency))
        wave = 1 + max((last[c] for c in claims if c in last), default=-1)
        for claim in claims:
            last[claim] = wave
        if wave == len(waves):
            waves.append([])
        waves[wave].append(index)
    return waves


def _stream(p: _Planned) -> tuple[str, str]:
    """The space and stream key of an entry's deployment: whose dirty mark its transaction updates."""
    return p.entry.deployment.space_id, p.entry.deployment.stream_key


def _take_transaction(queue: deque[_Planned]) -> list[_Planned]:
    """The first entries of ``queue`` that fit one transaction with their dirty marks: at most 100
    actions (``aws.MAX_TRANSACTION_ITEMS``) and 4 MB (``limits.MAX_TRANSACTION_BYTES``)."""
    chunk: list[_Planned] = []
    streams: set[tuple[str, str]] = set()
    actions = size = 0
    while queue:
        p = queue[0]
        stream = _stream(p)
        marks = len(streams) + (stream not in streams)
        over = actions + len(p.operations) + marks > aws.MAX_TRANSACTION_ITEMS
        heavy = size + p.size + marks * _DIRTY_MARK_BYTES > limits.MAX_TRANSACTION_BYTES
        if chunk and (over or heavy):
            break
        chunk.append(queue.popleft())
        streams.add(stream)
        actions += len(p.operations)
        size += p.size
    return chunk
