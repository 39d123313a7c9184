"""Attribution storage: a stream's ledger of shipped changes (the engine's ``StreamLedger`` port),
the index of deployments waiting for code data, the deployment's attribution with its pages, the
attribution outbox, and the retry queue.

Nothing here can lose or half-write an attribution:

- The outbox item (pattern 104) is written with the deployment and deleted only by the write
  that makes its attribution final; while it exists the recompute's sweep (pattern 105) re-drives it.
  A single new deployment attributed before its write goes in one transaction with its attempt's
  result instead (``create_final``: no outbox item; ``create_pending``: the outbox item leased past
  the retry).
- The ledger grows with pull requests, not commits: the commits of a branch range are one range
  entry (pattern 108); pull requests and commits outside a range are an entry each (pattern 100).
- A final attribution is one ``TransactWriteItems``: the deployment's attribution and figures, its
  pages, the stream's ledger entries and branch marks, the pending-index deletes, the outbox
  delete and the dirty mark. It is conditional on the deployment as the attempt read it (its
  ``body_hash``, ``revision`` and attribution attempts), and each ledger entry on no other deployment
  having shipped the change meanwhile (``_claim``: what makes the eventually consistent ledger read
  safe). A shipment too large for one transaction (100 items, 4 MB) claims its ledger entries first,
  under the same condition, 100 to a transaction (a re-run of the deployment ignores its own entries
  and claims them again), then writes its pages (under a fresh ``details_id`` nothing points at yet)
  and the pending-index deletes, then commits the rest in one transaction. Should a claim or that
  transaction fail, the attempt withdraws its pages and the entries it claimed (``_withdraw``).
- Transactions cancelled for contention alone (every final one updates the stream's dirty mark, as
  every create on the stream and the recompute do) are sent again (``Store.transact_contended``);
  one still contended, or cancelled because a mark or a ledger entry moved, raises, and the attempt is
  retried (retry queue, sweep).
- The deployment item stays bounded whatever the shipment: its attribution holds the first page of
  changes (≤ 8 KB) and the totals; the other pages (≤ 64 KB each) are items beside it (pattern 106).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dora_insights.dal import aws, keys, limits
from dora_insights.dal.attribution_writes import (
    RETRY_ATTEMPT,
    RETRY_BY,
    FinalWrite,
    PendingWrite,
    ReplacementOutbox,
    Rewind,
)
from dora_insights.dal.deployments import resolve_duplicate
from dora_insights.dal.store import Store, contended, deployment_from_item, idempotency_item, stream_position
from dora_insights.domain.attribution import ShippedRange
from dora_insights.domain.changes import BranchMark, commit_change_id, pull_request_change_id
from dora_insights.domain.model import Attribution, Deployment, Figures
from dora_insights.domain.records import WriteOutcome
from dora_insights.errors import DoraError, ResourceConflictError, WriteContendedError

_COMMIT_ID = commit_change_id("", "")[:-1]  # "commit:": the prefix of a commit's change id

FIRST_PAGE_BYTES = 8 * 1024  # on the deployment item (copied to its three indexes)
PAGE_BYTES = 64 * 1024  # each further page, an item of its own
_PAGE_OVERHEAD = 512  # keys, type and attribute names of a page item
_TRANSACTION_BYTES = 3 * 1024 * 1024  # of pages in the final transaction, under DynamoDB's 4 MB
_SINGLE_CALL = {"Update": "update_item", "Delete": "delete_item"}  # a transaction operation on its own
# On a ledger entry claimed before the final transaction (a large shipment): the attempt that claimed it
# (its ``details_id``), so that an attempt that did not commit withdraws its own claims and no other's.
_CLAIM_ID = "claim_id"
_SHIPPING = frozenset({"Resolved", "GaveUp"})  # attribution states that record what they shipped


def current_items(store: Store, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The table's items of these index items, read consistently (BatchGetItem per 100), in the same
    order; those deleted since the index saw them left out."""
    wanted = [{keys.PK: str(i[keys.PK]), keys.SK: str(i[keys.SK])} for i in items]
    found = consistent_batch_get(store, wanted)
    return [found[(k[keys.PK], k[keys.SK])] for k in wanted if (k[keys.PK], k[keys.SK]) in found]


def _stream_page(
    store: Store,
    space_id: str,
    stream: str,
    position: str,
    start: dict[str, Any] | None,
    *,
    later: bool,
    limit: int,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One page of a stream's deployments (pattern 12) from stream position ``position`` (``stream_position``;
    a deployment there included) back to the first, newest first, or (``later``) on to the last, oldest first;
    and where the next starts."""
    return store.query_page(
        partition=keys.deployments_by_stream(space_id, stream),
        index=keys.GSI3,
        ascending=later,
        limit=limit,
        start_key=start,
        sort_between=(position, "\uffff") if later else ("0", position),
    )


def consistent_batch_get(store: Store, wanted: Sequence[Mapping[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The items of these keys that exist, read consistently, by (PK, SK): ``Store.batch_get`` (a
    BatchGetItem per 100, unprocessed keys retried with backoff, a bounded number of times)."""
    return {(str(i[keys.PK]), str(i[keys.SK])): i for i in store.batch_get(wanted, consistent=True)}


# ---------------------------------------------------------------------------------------------
# Pages of shipped changes


@dataclass(frozen=True)
class ChangePage:
    """One page of what a deployment shipped: pull request summaries, then commit shas of one repository."""

    pull_requests: list[dict[str, Any]] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)
    commits_repository: str | None = None

    def change_ids(self) -> list[str]:
        """Ledger ids of the page's changes."""
        ids = [pull_request_change_id(str(pr["repository"]), int(pr["number"])) for pr in self.pull_requests]
        if self.commits_repository is not None:
            ids += [commit_change_id(self.commits_repository, sha) for sha in self.commits]
        return ids


def paginate(pull_requests: Sequence[Mapping[str, Any]], commits: Sequence[tuple[str, str]]) -> list[ChangePage]:
    """Pages of a shipment: pull requests first, then commits ((repository, sha), grouped by
    repository in order of first appearance); the first page at most ``FIRST_PAGE_BYTES``, the
    others ``PAGE_BYTES`` (an entry larger than that alone on its page). Always one page at least."""
    by_repository: dict[str, list[str]] = {}
    for commit_repository, sha in commits:
        by_repository.setdefault(commit_repository, []).append(sha)
    pages: list[ChangePage] = []
    prs: list[dict[str, Any]] = []
    shas: list[str] = []
    repository: str | None = None
    used = 0

    def budget() -> int:
        return FIRST_PAGE_BYTES if not pages else PAGE_BYTES - _PAGE_OVERHEAD

    def close() -> None:
        nonlocal prs, shas, used
        pages.append(ChangePage(prs, shas, repository if shas else None))
        prs, shas, used = [], [], 0

    for pr in pull_requests:
        size = limits.value_size(aws.serialize_value(dict(pr))) + 1
        if used and used + size > budget():
            close()
        prs.append(dict(pr))
        used += size
    for commit_repository, repository_shas in by_repository.items():
        if shas and commit_repository != repository:
            close()
        repository = commit_repository
        for sha in repository_shas:
            size = len(sha.encode()) + 1
            if used and used + size > budget():
                close()
            shas.append(sha)
            used += size
    if prs or shas or not pages:
        close()
    return pages


def _page_from_item(item: Mapping[str, Any]) -> ChangePage:
    return ChangePage(
        pull_requests=list(item.get("pull_requests") or []),
        commits=[str(s) for s in item.get("commits") or []],
        commits_repository=item.get("commits_repository"),
    )


def first_page(attribution: Attribution, fallback_repository: str | None = None) -> ChangePage:
    """The page kept on the deployment (``fallback_repository`` for attributions stored before
    pages named their commits' repository)."""
    repository = attribution.commits_repository or (fallback_repository if attribution.commits else None)
    return ChangePage(list(attribution.pull_requests), list(attribution.commits), repository)


# ---------------------------------------------------------------------------------------------
# Ledger


REWIND_LIMIT = 1000  # deployments a rewound ledger reads back, per branch, before it keeps the stored mark


class LedgerStore:
    """What one stream has shipped: change ids, branch ranges and forward-only branch marks.

    The commits of a branch range (``git log prev..sha``) are one range entry (pattern 108), not one
    entry each: a commit counts as shipped when its own entry exists (pattern 100: pull requests and
    commits outside a range) or when one of its branch occurrences lies in a range of the stream.

    Built for one deployment (``deployment_id``), it ignores that deployment's own ledger entries
    (a re-run after a crash between the ledger writes and the final transaction ships the same
    changes again) and remembers the marks it read, so the final transaction can move them on
    only if nobody else did meanwhile.

    Rewound (``before``, the deployment attributed again after a correction or a removal in its
    stream, issue 16): a branch's position is the one the stream had shipped to before that
    deployment, not the stored mark (which later deployments may have moved on): the position the
    latest earlier deployment of the stream recorded for the branch in its attribution's ``marks``
    (pattern 12 read backwards, at most ``REWIND_LIMIT`` deployments; past it the stored mark)."""

    def __init__(
        self,
        store: Store,
        space_id: str,
        stream: str,
        deployment_id: str | None = None,
        before: Deployment | None = None,
    ) -> None:
        self.store, self.space_id, self.stream = store, space_id, stream
        self.deployment_id = deployment_id
        self.before = before
        self.marks_read: dict[tuple[str, str], dict[str, Any] | None] = {}
        self.rewound: dict[tuple[str, str], int | None] = {}
        self.dirty: dict[str, Any] | None = None  # the stream's dirty mark, once a rewind read it

    def deployed_among(self, change_ids: Collection[str]) -> set[str]:
        """Their own entries (BatchGetItem per 100), then, for commits without one, the stream's ranges."""
        wanted = [keys.ledger_change(self.space_id, self.stream, c) for c in set(change_ids)]
        found = self._batch_get(wanted) if wanted else []
        own = self.deployment_id
        deployed = {str(i["change_id"]) for i in found if own is None or i.get("deployment_id") != own}
        loose = [c for c in set(change_ids) if c not in deployed and c.startswith(_COMMIT_ID)]
        return deployed | self._in_ranges(loose) if loose else deployed

    def _batch_get(self, wanted: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
        if self.before is not None:  # run again right after entries were undone: read what is there now
            return list(consistent_batch_get(self.store, wanted).values())
        return self.store.batch_get(wanted)

    def _query(self, sort_between: tuple[str, str]) -> list[dict[str, Any]]:
        """Items of the stream's ledger partition in a sort-key range (consistent when rewound)."""
        found: list[dict[str, Any]] = []
        request: dict[str, Any] = {
            "TableName": self.store.table,
            "KeyConditionExpression": "#pk = :pk AND #sk BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": {"#pk": keys.PK, "#sk": keys.SK},
            "ExpressionAttributeValues": {
                ":pk": aws.serialize_value(keys.ledger_pk(self.space_id, self.stream)),
                ":lo": aws.serialize_value(sort_between[0]),
                ":hi": aws.serialize_value(sort_between[1]),
            },
            "ConsistentRead": self.before is not None,
        }
        while True:
            response = self.store.call("query", **request)
            found += [aws.deserialize(i) for i in response.get("Items", [])]
            if not response.get("LastEvaluatedKey"):
                return found
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _in_ranges(self, commit_ids: Collection[str]) -> set[str]:
        """Those of these commit change ids that a range of the stream shipped (another deployment's).

        A range lies on a branch the stream holds a mark on: one Query of the stream's marks, one
        BatchGetItem (per 100) of the commits' occurrences on those branches, one Query per branch
        with occurrences of the ranges ending at or after the oldest of them."""
        marks = self._query(("M#", "M#\uffff"))
        shas_by_repository: dict[str, set[str]] = {}
        for change_id in commit_ids:
            repository, _, sha = change_id.removeprefix(_COMMIT_ID).rpartition(":")
            shas_by_repository.setdefault(repository, set()).add(sha)
        found: set[str] = set()
        for repository, shas in sorted(shas_by_repository.items()):
            branches = sorted({b for b in (_mark_branch(m, repository) for m in marks) if b is not None})
            if not branches:
                continue
            wanted = [keys.commit(self.space_id, repository, sha, b) for sha in sorted(shas) for b in branches]
            occurrences: dict[str, list[tuple[int, str]]] = {}
            for item in self._batch_get(wanted):
                occurrences.setdefault(str(item["branch"]), []).append((int(item["position"]), str(item["sha"])))
            for branch, placed in sorted(occurrences.items()):
                prefix = keys.ledger_range_prefix(repository, branch)
                lowest = min(position for position, _ in placed)
                for item in self._query((prefix + keys.position_sort(lowest), prefix + "~")):
                    if item.get("repository") != repository or item.get("branch") != branch:
                        continue  # another branch whose name extends this one
                    if self.deployment_id is not None and item.get("deployment_id") == self.deployment_id:
                        continue
                    after, up_to, skipped = int(item["after"]), int(item["up_to"]), set(item.get("skipped") or ())
                    found.update(
                        commit_change_id(repository, sha)
                        for position, sha in placed
                        if after < position <= up_to and sha not in skipped
                    )
        return found

    def shipped_position(self, repository: str, branch: str) -> int | None:
        """A consistent read, remembered for the final transaction; rewound, the position before ``before``."""
        item = self.store.get(keys.ledger_mark(self.space_id, self.stream, repository, branch), consistent=True)
        self.marks_read[(repository, branch)] = item
        stored = int(item["position"]) if item else None
        if self.before is None:
            return stored
        where = (repository, branch)
        if where not in self.rewound:
            found, position = self._shipped_before(self.before, repository, branch)
            self.rewound[where] = position if found else stored
        return self.rewound[where]

    def _shipped_before(self, deployment: Deployment, repository: str, branch: str) -> tuple[bool, int | None]:
        """(found, position): the branch position recorded by the latest deployment of the stream before
        ``deployment`` that recorded one; (True, None) when none did, (False, None) past the limit
        (``recorded_before``)."""
        found, position, _ = self.recorded_before(stream_position(deployment), {deployment.id}, repository, branch)
        return found, position

    def recorded_before(
        self, high: str, leave_out: Collection[str], repository: str, branch: str
    ) -> tuple[bool, int | None, dict[str, Any] | None]:
        """(found, position, item): the branch position recorded by the latest deployment of the stream at
        or before stream position ``high`` (``"\\uffff"``: the stream's end) that recorded one, those of
        ``leave_out`` left out, and that deployment's item; (True, None, None) when none did, (False, None,
        None) past ``REWIND_LIMIT`` deployments read.

        The stream's index may not show a deployment stored a moment ago (an out-of-order arrival attributed
        just before the deployment it precedes is attributed again): those its dirty mark names as the
        last two writes' (``latest``, ``prior``) count too, read consistently. A deployment the index still
        shows in the stream but that a DX upsert moved to another stream since does not count."""
        recent = self._recent_mark(high, leave_out, repository, branch)
        start: dict[str, Any] | None = None
        read = 0
        while read < REWIND_LIMIT:
            items, start = _stream_page(self.store, self.space_id, self.stream, high, start, later=False, limit=100)
            for item in current_items(self.store, items):  # as the table holds them (index lag)
                read += 1
                if recent is not None and _item_position(item) < recent[0]:
                    return True, recent[1], recent[2]  # the recent one lies between this one and ``high``
                position = _recorded_position(item, leave_out, repository, branch) if self._in_stream(item) else None
                if position is not None:
                    return True, position, item
            if start is None:
                return (True, None, None) if recent is None else (True, recent[1], recent[2])
        return False, None, None

    def _in_stream(self, item: Mapping[str, Any]) -> bool:
        """Whether a stored deployment item is (still) one of this ledger's stream's."""
        return item.get(keys.GSI3PK) == keys.deployments_by_stream(self.space_id, self.stream)

    def _recent_mark(
        self, high: str, leave_out: Collection[str], repository: str, branch: str
    ) -> tuple[str, int, dict[str, Any]] | None:
        """(stream position, branch position, item) of the latest of the stream's last two written
        deployments (its dirty mark) before stream position ``high`` that recorded a position on the branch,
        those of ``leave_out`` left out; one GetItem per ledger, and one per such deployment. One no longer
        in the stream does not count (a DX upsert moved it to another stream: the positions it recorded are
        that stream's now; a deleted one is not found)."""
        if self.dirty is None:
            self.dirty = self.store.get(keys.dirty_stream(self.space_id, self.stream), consistent=True) or {}
        best: tuple[str, int, dict[str, Any]] | None = None
        for entry in (self.dirty.get("latest"), self.dirty.get("prior")):
            if not isinstance(entry, dict) or not entry.get("id") or not str(entry.get("position", "")) < high:
                continue
            item = self.store.get(keys.deployment(self.space_id, str(entry["id"])), consistent=True)
            if item is None or not self._in_stream(item):
                continue
            position = _recorded_position(item, leave_out, repository, branch)
            if position is not None and (best is None or _item_position(item) > best[0]):
                best = (_item_position(item), position, item)
        return best

    def range_item(self, shipped: ShippedRange, deployment_id: str) -> dict[str, Any]:
        """A range entry (pattern 108)."""
        return {
            **keys.ledger_range(self.space_id, self.stream, shipped.repository, shipped.branch, shipped.up_to),
            keys.TYPE: keys.T_LEDGER_RANGE,
            "repository": shipped.repository,
            "branch": shipped.branch,
            "after": shipped.after,
            "up_to": shipped.up_to,
            "skipped": list(shipped.skipped),
            "deployment_id": deployment_id,
        }

    def change_item(self, change_id: str, deployment_id: str) -> dict[str, Any]:
        """A ledger entry (pattern 100)."""
        return {
            **keys.ledger_change(self.space_id, self.stream, change_id),
            keys.TYPE: keys.T_LEDGER_CHANGE,
            "change_id": change_id,
            "deployment_id": deployment_id,
        }

    def mark_operations(
        self, marks: Sequence[BranchMark], deployment_id: str
    ) -> tuple[list[dict[str, Any]], list[BranchMark]]:
        """Transaction operations moving the marks forward, each conditional on the value read (a
        concurrent move cancels the transaction: the attempt is retried), and the marks the attribution
        records: every mark it shipped to, moved or not (a rewound run may ship below a mark later
        deployments moved on; a later rewind reads the positions recorded)."""
        operations: list[dict[str, Any]] = []
        moved: list[BranchMark] = []
        for mark in {(m.repository, m.branch): m for m in marks}.values():
            where = (mark.repository, mark.branch)
            if where not in self.marks_read:
                self.shipped_position(*where)
            read = self.marks_read[where]
            key = keys.ledger_mark(self.space_id, self.stream, mark.repository, mark.branch)
            rewound = where in self.rewound
            if read is None:
                item = {
                    **key,
                    keys.TYPE: keys.T_LEDGER_MARK,
                    "position": mark.position,
                    "deployment_id": deployment_id,
                    "repository": mark.repository,
                    "branch": mark.branch,
                }
                operations.append(
                    {
                        "Put": {
                            "TableName": self.store.table,
                            "Item": aws.serialize(item),
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    }
                )
            elif int(read["position"]) < mark.position or read.get("deployment_id") == deployment_id:
                own = read.get("deployment_id") == deployment_id
                previous = read.get("previous_position") if own else read["position"]
                if rewound:  # where the stream stood before this deployment, not where others left it
                    previous = self.rewound[where]
                update = "SET #p = :p, #d = :d, #t = :t, #r = :r, #b = :b" + (
                    ", #pp = :pp" if previous is not None else " REMOVE #pp"
                )
                values: dict[str, Any] = {
                    ":r": aws.serialize_value(mark.repository),
                    ":b": aws.serialize_value(mark.branch),
                    ":p": aws.serialize_value(mark.position),
                    ":d": aws.serialize_value(deployment_id),
                    ":t": aws.serialize_value(keys.T_LEDGER_MARK),
                    ":read": aws.serialize_value(int(read["position"])),
                }
                if previous is not None:
                    values[":pp"] = aws.serialize_value(int(previous))
                operations.append(
                    {
                        "Update": {
                            "TableName": self.store.table,
                            "Key": aws.serialize(key),
                            "UpdateExpression": update,
                            "ConditionExpression": "#p = :read",
                            "ExpressionAttributeNames": {
                                "#p": "position",
                                "#d": "deployment_id",
                                "#t": keys.TYPE,
                                "#pp": "previous_position",
                                "#r": "repository",
                                "#b": "branch",
                            },
                            "ExpressionAttributeValues": values,
                        }
                    }
                )
            moved.append(mark)  # else the stream has shipped further on this branch already: recorded only
        return operations, moved


# ---------------------------------------------------------------------------------------------
# The deployment's attribution


class AttributionStore:
    """A deployment's attribution, its stream's previous success, its outbox and the pending index."""

    def __init__(self, store: Store, space_id: str) -> None:
        self.store, self.space_id = store, space_id
        self._dirty_read: dict[str, dict[str, Any]] = {}  # stream -> its dirty mark, as read (``_recently_written``)

    def previous_success(
        self,
        deployment: Deployment,
        *,
        consistent: bool = False,
        earlier: Deployment | None = None,
        recent: bool = False,
    ) -> Deployment | None:
        """Pattern 12 read backwards from the deployment (``consistent``: each candidate read again).

        The stream's index lags its table (about a second in AWS), so a deployment stored a moment
        before this one may be missing from it. ``earlier``: a successful deployment of the stream
        before this one, read consistently a moment ago (a bulk write's group, attempted in stream
        order). ``recent``: this deployment is being stored now (ingest): the stream's dirty mark, read
        consistently, names the deployments its last two writes stored (``Store.dirty_op``): the two
        before this one when the attempt runs before its write, this one and the one before it when
        after. Either is the previous success when it lies between the index's answer and this one."""
        found = self._nearest_success(deployment, later=False, consistent=consistent)
        if earlier is not None:
            found = _later_of(found, earlier, deployment)
        for written in self._recently_written(deployment, found) if recent else []:
            found = _later_of(found, written, deployment)
        return found

    def _recently_written(
        self, deployment: Deployment, found: Deployment | None, *, later: bool = False
    ) -> list[Deployment]:
        """The deployments the stream's last two writes stored (its dirty mark's ``latest`` and ``prior``)
        between ``found`` and this deployment in stream order (``later``: between this deployment and
        ``found``, None: the stream's end), read consistently: one GetItem (once per ``AttributionStore``: the
        mark read is kept), and one per such deployment (none once the index has caught up). One no longer
        in the stream (a DX upsert moved it to another stream since; a deleted one is not found) is left out."""
        stream = deployment.stream_key
        if stream not in self._dirty_read:
            self._dirty_read[stream] = self.store.get(keys.dirty_stream(self.space_id, stream), consistent=True) or {}
        mark = self._dirty_read[stream]
        bound = "" if found is None else stream_position(found)
        low, high = (stream_position(deployment), bound or "\uffff") if later else (bound, stream_position(deployment))
        stored = []
        for entry in (mark.get("latest"), mark.get("prior")):
            if isinstance(entry, dict) and entry.get("id") and low < str(entry.get("position", "")) < high:
                written = self.store.get_deployment(self.space_id, str(entry["id"]), consistent=True)
                if written is not None and written.stream_key == stream:
                    stored.append(written)
        return stored

    def next_success(
        self, deployment: Deployment, *, consistent: bool = False, recent: bool = False
    ) -> Deployment | None:
        """Pattern 12 read forwards from the deployment: one Query of up to 25 of the stream's later
        deployments (the next page only while none of them is a success), each candidate read again when
        ``consistent`` (one BatchGetItem, none when there are no later deployments). ``recent``: the
        deployments the stream's last two writes stored count too (its dirty mark, as ``previous_success``
        reads it; no second GetItem when that read it already)."""
        found = self._nearest_success(deployment, later=True, consistent=consistent)
        for written in self._recently_written(deployment, found, later=True) if recent else []:
            found = _earlier_of(found, written, deployment)
        return found

    def _nearest_success(self, deployment: Deployment, *, later: bool, consistent: bool) -> Deployment | None:
        """The nearest successful deployment of the stream after (``later``) or before this one."""
        start: dict[str, Any] | None = None
        position = stream_position(deployment)
        while True:
            items, start = _stream_page(
                self.store, self.space_id, deployment.stream_key, position, start, later=later, limit=25
            )
            if consistent:
                items = current_items(self.store, items)
            for item in items:
                candidate = deployment_from_item(item)
                if candidate.id != deployment.id and candidate.is_successful:  # the bounds are inclusive
                    return candidate
            if start is None:
                return None

    # --- keys ----------------------------------------------------------------------------------
    def awaiting_keys(
        self, deployment_id: str, sha_prefixes: Iterable[str], repository: str | None
    ) -> list[dict[str, str]]:
        """Patterns 102 (by sha prefix) and 103 (by repository)."""
        found = [keys.awaiting_sha(self.space_id, p, deployment_id) for p in sorted(set(sha_prefixes))]
        if repository:
            found.append(keys.awaiting_repository(self.space_id, repository, deployment_id))
        return found

    def _awaiting_item(self, key: Mapping[str, str], deployment_id: str) -> dict[str, Any]:
        return {**key, keys.TYPE: keys.T_AWAITING, "deployment_id": deployment_id}

    def _page_item(self, deployment_id: str, details_id: str, number: int, page: ChangePage) -> dict[str, Any]:
        return {
            **keys.attribution_page(self.space_id, deployment_id, details_id, number),
            keys.TYPE: keys.T_ATTRIBUTION_PAGE,
            "deployment_id": deployment_id,
            "pull_requests": page.pull_requests,
            "commits": page.commits,
            "commits_repository": page.commits_repository,
        }

    # --- writes --------------------------------------------------------------------------------
    def _attribution_update(
        self, deployment: Deployment, attribution: Attribution, figures: Figures | None, expected_attempts: int
    ) -> dict[str, Any]:
        """The conditional update of the deployment: only the version read (``body_hash``: a DX upsert
        replaced it otherwise; ``revision``: a correction, which keeps ``body_hash``, changed it: an item
        stored before revisions existed is revision 1, as in ``dal.deployments``) and only if no other
        attempt got there first (``attempts``)."""
        values: dict[str, Any] = {
            ":a": aws.serialize_value(attribution.model_dump(mode="json", exclude_none=True)),
            ":expected": {"N": str(expected_attempts)},
            ":zero": {"N": "0"},
            ":h": aws.serialize_value(deployment.body_hash),
            ":rev": aws.serialize_value(deployment.revision),
        }
        update = "SET attribution = :a"
        if figures is not None:
            update += ", figures = :f"
            values[":f"] = aws.serialize_value(figures.model_dump(mode="json", exclude_none=True))
        revision = "#rev = :rev" + (" OR attribute_not_exists(#rev)" if deployment.revision == 1 else "")
        return {
            "Update": {
                "TableName": self.store.table,
                "Key": aws.serialize(keys.deployment(self.space_id, deployment.id)),
                "UpdateExpression": update,
                "ConditionExpression": f"attribute_exists(PK) AND body_hash = :h AND ({revision}) AND "
                "(attribute_not_exists(attribution) OR attribution.attempts = :expected OR "
                "(attribute_not_exists(attribution.attempts) AND :expected = :zero))",
                "ExpressionAttributeNames": {"#rev": "revision"},
                "ExpressionAttributeValues": values,
            }
        }

    def _delete_op(self, key: Mapping[str, str]) -> dict[str, Any]:
        return {"Delete": {"TableName": self.store.table, "Key": aws.serialize(key)}}

    def _put_op(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return {"Put": {"TableName": self.store.table, "Item": aws.serialize(item)}}

    def _commit(self, operations: Sequence[Mapping[str, Any]]) -> bool:
        """The attribution's transaction, sent again while contention alone cancels it
        (``Store.transact_contended``); False when the deployment's condition (its first operation)
        failed: another attempt won, or the deployment was replaced or corrected. Any other cancellation
        (a branch mark moved or a change was shipped meanwhile, or still contended) raises
        (``_cancelled``), so the attempt is retried."""
        reasons = self.store.transact_contended(operations)
        if reasons is None:
            return True
        if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
            return False
        raise _cancelled(reasons)

    def save_pending(self, deployment: Deployment, pending: PendingWrite, *, expected_attempts: int, now: str) -> bool:
        """One transaction; pending-index entries past 100 items are written first (they are idempotent). A
        refresh (``pending.due`` None) leaves the outbox item as it is."""
        operations = [self._attribution_update(deployment, pending.attribution, None, expected_attempts)]
        if pending.due is not None:
            operations.append(self._pending_outbox_update(deployment.id, pending.due, pending.retry_attempt, now))
        entries = [self._put_op(self._awaiting_item(k, deployment.id)) for k in pending.awaiting]
        if len(operations) + len(entries) <= aws.MAX_TRANSACTION_ITEMS:
            operations += entries
        else:
            self.store.batch_write([{"PutRequest": {"Item": op["Put"]["Item"]}} for op in entries])
        return self._commit(operations)

    def _pending_outbox_update(
        self, deployment_id: str, due: str, retry_attempt: int | None, now: str
    ) -> dict[str, Any]:
        """The outbox item of a new Pending attempt (created if missing): due at ``due``, the retry chain's
        token (``retry_attempt``, with ``retry_by``: ``due``) recorded, or removed when no message is sent; what
        the attempt undid (``superseded``, ``also_clean``) removed."""
        outbox_values: dict[str, Any] = {
            ":g1": keys.attribution_due_pk(self.space_id),
            ":g2": keys.attribution_outbox_indexes(self.space_id, deployment_id, due)[keys.GSI1SK],
            ":t": keys.T_ATTRIBUTION_OUTBOX,
            ":d": deployment_id,
            ":now": now,
        }
        update = "SET #g1 = :g1, #g2 = :g2, #t = :t, deployment_id = :d, created_at = if_not_exists(created_at, :now)"
        removed = "REMOVE superseded, also_clean"
        if retry_attempt is None:
            removed += f", {RETRY_ATTEMPT}, {RETRY_BY}"
        else:
            update += f", {RETRY_ATTEMPT} = :r, {RETRY_BY} = :by"
            outbox_values[":r"], outbox_values[":by"] = retry_attempt, due
        return {
            "Update": {
                "TableName": self.store.table,
                "Key": aws.serialize(keys.attribution_outbox(self.space_id, deployment_id)),
                "UpdateExpression": f"{update} {removed}",
                "ExpressionAttributeNames": {"#g1": keys.GSI1PK, "#g2": keys.GSI1SK, "#t": keys.TYPE},
                "ExpressionAttributeValues": {k: aws.serialize_value(v) for k, v in outbox_values.items()},
            }
        }

    def save_final(self, deployment: Deployment, final: FinalWrite, *, expected_attempts: int) -> Attribution | None:
        """One transaction, or, too large for one, its ledger claims, pages and pending-index deletes first
        (module docstring); None when the deployment's condition failed, after withdrawing those parts."""
        attribution, mark_ops, page_items, ledger_items = self._final_parts(deployment, final)
        result = final.final
        operations = [
            self._attribution_update(deployment, attribution, result.figures, expected_attempts),
            *mark_ops,
        ]
        if result.drop_outbox:
            operations.append(self._delete_op(keys.attribution_outbox(self.space_id, deployment.id)))
        if result.dirty_at is not None:
            operations.append(self.store.dirty_op(self.space_id, deployment.stream_key, result.dirty_at))
        forget = [dict(k) for k in {(k[keys.PK], k[keys.SK]): k for k in result.forget}.values()]
        page_bytes = sum(limits.item_size(aws.serialize(i)) for i in page_items)
        optional = len(page_items) + len(ledger_items) + len(forget)
        if len(operations) + optional <= aws.MAX_TRANSACTION_ITEMS and page_bytes <= _TRANSACTION_BYTES:
            operations += [self._put_op(i) for i in page_items]
            operations += [_claim(self.store.table, i, deployment.id) for i in ledger_items]
            operations += [self._delete_op(k) for k in forget]
            return attribution if self._commit(operations) else None
        # Too large for one transaction: the ledger entries claimed first (as the transaction would), then
        # what nothing reads yet (pages under a new details id) and the pending-index deletes; the
        # attribution that makes them count last, in one transaction.
        claims = [{**i, _CLAIM_ID: final.details_id} for i in ledger_items]
        self._claim_all(deployment, claims)
        self.store.batch_put(page_items)
        self.store.batch_delete(forget)
        try:
            committed = self._commit(operations)
        except (ResourceConflictError, WriteContendedError):  # not committed: nothing of it may count
            self._withdraw(deployment, claims, page_items)
            raise
        if not committed:
            self._withdraw(deployment, claims, page_items)
            return None
        return attribution

    def _claim_all(self, deployment: Deployment, entries: Sequence[Mapping[str, Any]]) -> None:
        """Ledger entries put under ``_claim``'s condition, 100 to a transaction (contention retried): a
        change another deployment of the stream shipped meanwhile (one the attempt's eventually
        consistent read missed) cancels its transaction, as it cancels the final one, and raises
        (``_cancelled``) once the entries this attempt claimed are withdrawn: the attempt is retried."""
        claimed: list[Mapping[str, Any]] = []
        for chunk in aws.chunks(entries, aws.MAX_TRANSACTION_ITEMS):
            reasons = self.store.transact_contended([_claim(self.store.table, i, deployment.id) for i in chunk])
            if reasons is not None:
                self._withdraw(deployment, claimed, ())
                raise _cancelled(reasons)
            claimed += chunk

    def _withdraw(
        self, deployment: Deployment, claims: Sequence[Mapping[str, Any]], page_items: Sequence[Mapping[str, Any]]
    ) -> None:
        """Undo what an attempt that did not commit wrote before its final transaction: its pages (under
        its own details id: nobody else's) and the ledger entries it claimed, each in a transaction of up
        to 100 conditional Deletes, only while the entry is still this attempt's (deployment and claim
        id). None when the deployment (read consistently) now holds a shipment: another attempt of it
        committed, and a claim of this one may have rewritten that attempt's entries (their condition lets
        a deployment rewrite its own)."""
        self.store.batch_delete(keys.key(i[keys.PK], i[keys.SK]) for i in page_items)
        if not claims:
            return
        stored = self.store.get(keys.deployment(self.space_id, deployment.id), consistent=True)
        if stored is not None and (stored.get("attribution") or {}).get("state") in _SHIPPING:
            return
        for chunk in aws.chunks(claims, aws.MAX_TRANSACTION_ITEMS):
            left = list(chunk)
            while left:
                reasons = self.store.transact_contended([_unclaim(self.store.table, i, deployment.id) for i in left])
                if reasons is None:
                    break
                gone = {n for n, reason in enumerate(reasons) if reason.get("Code") == "ConditionalCheckFailed"}
                if not gone:
                    raise _cancelled(reasons)
                left = [i for n, i in enumerate(left) if n not in gone]  # no longer this attempt's: they stay

    def _final_parts(
        self, deployment: Deployment, write: FinalWrite
    ) -> tuple[Attribution, list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """What a final attribution writes: the attribution as stored (first page, totals, marks), the
        branch-mark operations, the further pages and the ledger entries (pull requests and commits
        outside a range one by one, each range as one entry)."""
        final, ledger, details_id = write.final, write.ledger, write.details_id
        if not isinstance(ledger, LedgerStore):  # pragma: no cover - Repositories hands out LedgerStores
            raise TypeError("a final attribution is stored with the LedgerStore its attempt read")
        pages = paginate(final.attribution.pull_requests, final.commits)
        first, more = pages[0], pages[1:]
        mark_ops, moved = ledger.mark_operations(final.marks, deployment.id)
        attribution = final.attribution.model_copy(
            update={
                "pull_requests": first.pull_requests,
                "commits": first.commits,
                "commits_repository": first.commits_repository,
                "pull_request_count": sum(len(p.pull_requests) for p in pages),
                "commit_count": sum(len(p.commits) for p in pages),
                "pages": len(pages),
                "details_id": details_id if more else None,
                "marks": [m.model_dump(mode="json") for m in moved],
            }
        )
        page_items = [self._page_item(deployment.id, details_id, n, p) for n, p in enumerate(more, start=1)]
        ledger_items = [ledger.change_item(c, deployment.id) for c in sorted(set(final.change_ids))]
        ledger_items += [ledger.range_item(r, deployment.id) for r in final.ranges]
        return attribution, mark_ops, page_items, ledger_items

    # --- a new deployment with its first attempt's result (issue 17: one write round trip) -------
    def create_pending(
        self, deployment: Deployment, pending: PendingWrite, *, now: str, idempotency: tuple[str, str] | None
    ) -> WriteOutcome | None:
        """``DeploymentStore.write``'s transaction with the outbox item and the pending-index entries."""
        if pending.due is None:
            raise ValueError("a new deployment's first attempt is no refresh: it has a due time")
        outbox = self.store.outbox_item(self.space_id, deployment.id, due=pending.due, created_at=now)
        if pending.retry_attempt is not None:
            outbox[RETRY_ATTEMPT], outbox[RETRY_BY] = pending.retry_attempt, pending.due
        entries = [self._put_op(self._awaiting_item(k, deployment.id)) for k in pending.awaiting]
        stored = deployment.model_copy(update={"attribution": pending.attribution})
        return self._create(stored, [self._put_op(outbox), *entries], idempotency=idempotency, now=now)

    def create_final(
        self, deployment: Deployment, final: FinalWrite, *, now: str, idempotency: tuple[str, str] | None
    ) -> WriteOutcome | None:
        """``DeploymentStore.write``'s transaction with the marks, pages and ledger entries."""
        attribution, mark_ops, page_items, ledger_items = self._final_parts(deployment, final)
        if sum(limits.item_size(aws.serialize(i)) for i in page_items) > _TRANSACTION_BYTES:
            return None
        update: dict[str, Any] = {"attribution": attribution}
        if final.final.figures is not None:
            update["figures"] = final.final.figures
        operations = [
            *mark_ops,
            *(self._put_op(i) for i in page_items),
            *(_claim(self.store.table, i, deployment.id) for i in ledger_items),
        ]
        return self._create(deployment.model_copy(update=update), operations, idempotency=idempotency, now=now)

    def create_redoing(
        self,
        deployment: Deployment,
        operations: Sequence[Mapping[str, Any]],
        *,
        now: str,
        idempotency: tuple[str, str] | None,
    ) -> WriteOutcome | None:
        """``DeploymentStore.write``'s transaction with ``operations`` that ``redo`` gave (the deployment's
        own outbox item among them): a deployment arriving before a later one of its stream that was
        attributed already, written with what attributes both again in stream order."""
        return self._create(deployment, operations, idempotency=idempotency, now=now)

    def apply(self, operations: Sequence[Mapping[str, Any]]) -> bool:
        """Operations that ``redo`` gave, in one transaction (contention retried); False when a condition
        failed (a placeholder's deployment changed since it was read). Any other cancellation raises."""
        reasons = self.store.transact_contended(list(operations))
        if reasons is None:
            return True
        if any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons):
            return False
        raise _cancelled(reasons)

    def _create(
        self,
        deployment: Deployment,
        also: Sequence[Mapping[str, Any]],
        *,
        idempotency: tuple[str, str] | None,
        now: str,
    ) -> WriteOutcome | None:
        """``DeploymentStore.write``'s transaction with ``also``; the outcome answers the deployment as
        given, or the stored one for a repeat; None when it is too large, one of ``also`` failed, or it
        stayed contended after its retries (``transact_contended``)."""
        head = [self.store.put_op(self.store.deployment_item(deployment), must_not_exist=True, return_old=True)]
        if idempotency is not None:
            record = idempotency_item(deployment, idempotency, now)
            head.append(self.store.put_op(record, must_not_exist=True, return_old=True))
        dirty = self.store.dirty_op(self.space_id, deployment.stream_key, now, written=deployment)
        operations = [*head, dirty, *also]
        if len(operations) > aws.MAX_TRANSACTION_ITEMS:
            return None
        cancelled = self.store.transact_contended(operations)  # contention retried, as the write's
        if cancelled is None:
            return WriteOutcome(deployment, created=True)
        reasons = cancelled[: len(head)]
        if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
            return resolve_duplicate(self.store, deployment, reasons)  # the rule of the same write
        return None

    # --- pages ---------------------------------------------------------------------------------
    def page(self, deployment_id: str, details_id: str, number: int) -> ChangePage | None:
        """Pattern 106: one GetItem."""
        item = self.store.get(keys.attribution_page(self.space_id, deployment_id, details_id, number))
        return _page_from_item(item) if item else None

    def pages(self, deployment_id: str, attribution: Attribution, repository: str | None) -> list[ChangePage]:
        """Every page of an attribution, the first (on the deployment) included; ``repository`` is the
        deployment's (the commits' repository of a first page stored before pages named it)."""
        found = [first_page(attribution, repository)]
        if attribution.details_id is not None and attribution.pages > 1:
            wanted = [
                keys.attribution_page(self.space_id, deployment_id, attribution.details_id, n)
                for n in range(1, attribution.pages)
            ]
            items = {str(i[keys.SK]): i for i in self.store.batch_get(wanted)}
            found += [_page_from_item(items[k[keys.SK]]) for k in wanted if k[keys.SK] in items]
        return found

    # --- the outbox ----------------------------------------------------------------------------
    def outbox(self, deployment_id: str) -> dict[str, Any] | None:
        """Pattern 104, read consistently."""
        return self.store.get(keys.attribution_outbox(self.space_id, deployment_id), consistent=True)

    def drop_outbox(self, deployment_id: str) -> None:
        """Pattern 104: one unconditional DeleteItem."""
        key = keys.attribution_outbox(self.space_id, deployment_id)
        self.store.call("delete_item", TableName=self.store.table, Key=aws.serialize(key))

    def due(self, now: str, limit: int) -> list[dict[str, Any]]:
        """Pattern 105: one Query of GSI1."""
        items, _ = self.store.query_page(
            partition=keys.attribution_due_pk(self.space_id),
            index=keys.GSI1,
            limit=limit,
            sort_between=keys.attribution_due_range(now),
        )
        return items

    def lease(self, item: Mapping[str, Any], due: str) -> bool:
        """The item's GSI1 sort key (pattern 105) moves, conditional on the one read."""
        moved = self.store.update_if(
            keys.key(str(item[keys.PK]), str(item[keys.SK])),
            UpdateExpression="SET #g2 = :new ADD sweeps :one",
            ConditionExpression="#g2 = :old",
            ExpressionAttributeNames={"#g2": keys.GSI1SK},
            ExpressionAttributeValues={
                ":new": aws.serialize_value(
                    keys.attribution_outbox_indexes(self.space_id, str(item["deployment_id"]), due)[keys.GSI1SK]
                ),
                ":old": aws.serialize_value(str(item[keys.GSI1SK])),
                ":one": {"N": "1"},
            },
        )
        return moved is not None

    # --- a replaced deployment's attribution (DX upsert) ----------------------------------------
    def superseded(
        self, old: Deployment, awaiting: Sequence[Mapping[str, str]], repository: str | None
    ) -> dict[str, Any] | None:
        """The outbox item's ``superseded`` (``cleanup`` reads it)."""
        attribution = old.attribution
        if attribution is None and not awaiting:
            return None
        return {
            "stream": old.stream_key,
            "repository": repository,
            "attribution": None if attribution is None else attribution.model_dump(mode="json", exclude_none=True),
            "awaiting": [{keys.PK: k[keys.PK], keys.SK: k[keys.SK]} for k in awaiting],
        }

    def cleanup(self, deployment_id: str, superseded: Mapping[str, Any]) -> tuple[list[dict[str, str]], list[dict]]:
        """Keys to delete (ledger entries, pages, pending-index entries) and conditional updates (branch
        marks moved back) that undo a replaced version's attribution. Reads its pages and its marks.

        A mark this deployment moved and still owns moves back to where it was before (``_revert_mark``,
        which drops the owner: the mark keeps one level of history). A mark without an owner that stands
        at the position this deployment recorded is one such a move back left where this deployment had
        moved it (a later deployment that had moved it on was removed first): it is restored from the
        positions the stream's remaining deployments recorded (``_restored_mark``: two reads of the stream
        back, as a rewind reads them). Any other mark was moved by another deployment since: it stays."""
        stream = str(superseded["stream"])
        deletes = [dict(k) for k in superseded.get("awaiting") or []]
        updates: list[dict[str, Any]] = []
        raw = superseded.get("attribution")
        if raw is None:
            return deletes, updates
        attribution = Attribution.model_validate(raw)
        if attribution.state not in ("Resolved", "GaveUp"):
            return deletes, updates
        pages = self.pages(deployment_id, attribution, superseded.get("repository"))
        deletes += [keys.ledger_change(self.space_id, stream, c) for p in pages for c in p.change_ids()]
        if attribution.details_id is not None:
            deletes += [
                keys.attribution_page(self.space_id, deployment_id, attribution.details_id, n)
                for n in range(1, attribution.pages)
            ]
        for raw_mark in attribution.marks:
            mark = BranchMark.model_validate(raw_mark)
            # A range ends at the mark it moved (pattern 108); deleted only while its own (``clean``).
            deletes.append(keys.ledger_range(self.space_id, stream, mark.repository, mark.branch, mark.position))
            key = keys.ledger_mark(self.space_id, stream, mark.repository, mark.branch)
            current = self.store.get(key, consistent=True)
            if current is None:
                continue
            owner = current.get("deployment_id")
            if owner == deployment_id:
                updates.append(_revert_mark(self.store.table, key, current, deployment_id))
            elif owner is None and int(current["position"]) == mark.position:
                restored = self._restored_mark(stream, deployment_id, mark, key, current)
                if restored is not None:
                    updates.append(restored)
            # else another deployment moved it since: it stays
        return deletes, updates

    def _restored_mark(
        self, stream: str, deployment_id: str, mark: BranchMark, key: Mapping[str, str], current: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The operation restoring a mark without an owner that stands where ``deployment_id`` (being removed)
        had moved it: to the position the latest remaining deployment of the stream recorded on the branch,
        that one its owner, its previous position the one recorded before it (each read as a rewind reads
        it, ``LedgerStore.recorded_before``, ``deployment_id`` left out); deleted when no remaining deployment
        recorded one (as a fresh ingest would have none). Conditional on the mark as read (its position, no
        owner). None past ``REWIND_LIMIT``: the mark stays."""
        ledger = LedgerStore(self.store, self.space_id, stream, deployment_id)
        found, position, holder = ledger.recorded_before("\uffff", {deployment_id}, mark.repository, mark.branch)
        if not found:
            return None
        names = {"#d": "deployment_id", "#p": "position"}
        values: dict[str, Any] = {":read": aws.serialize_value(int(current["position"]))}
        condition = "attribute_not_exists(#d) AND #p = :read"
        request = {"TableName": self.store.table, "Key": aws.serialize(key), "ConditionExpression": condition}
        if position is None or holder is None:
            return {"Delete": {**request, "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}}
        holder_id = str(holder["id"])
        before, previous, _ = ledger.recorded_before(
            _item_position(holder), {deployment_id, holder_id}, mark.repository, mark.branch
        )
        names["#pp"] = "previous_position"
        values[":p"] = aws.serialize_value(position)
        values[":d"] = aws.serialize_value(holder_id)
        update = "SET #p = :p, #d = :d"
        if before and previous is not None:
            update += ", #pp = :pp"
            values[":pp"] = aws.serialize_value(previous)
        else:
            update += " REMOVE #pp"
        return {
            "Update": {
                **request,
                "UpdateExpression": update,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def replacement(
        self, old: Deployment, outbox: ReplacementOutbox, *, now: str, room: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """``cleanup``'s operations when they fit, else ``superseded`` on the outbox item."""
        superseded = self.superseded(old, outbox.awaiting, outbox.repository)
        operations: list[dict[str, Any]] = []
        deferred = None
        if superseded is not None:
            attribution = old.attribution
            if attribution is not None and attribution.details_id is not None:
                deferred = superseded
            else:
                deletes, updates = self.cleanup(old.id, superseded)
                if len(deletes) + len(updates) + 1 <= room:
                    operations += self.cleanup_operations(deletes, updates)
                else:
                    deferred = superseded
        if outbox.owed or deferred is not None:
            item = self.store.outbox_item(self.space_id, old.id, due=outbox.due, created_at=now, superseded=deferred)
            operations.append(self._put_op(item))
            return operations, item
        if outbox.had_outbox:
            operations.append(self._delete_op(keys.attribution_outbox(self.space_id, old.id)))
        return operations, None

    def cleanup_operations(
        self, deletes: Sequence[Mapping[str, str]], updates: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """The cleanup as transaction operations (each key once)."""
        unique = {(k[keys.PK], k[keys.SK]): k for k in deletes}
        return [self._delete_op(k) for k in unique.values()] + [dict(u) for u in updates]

    def clean(self, deployment_id: str, superseded: Mapping[str, Any]) -> None:
        """Outside a transaction: ``cleanup``'s deletes (ledger entries read first) and updates, one by one."""
        deletes, updates = self.cleanup(deployment_id, superseded)
        unique = {(k[keys.PK], k[keys.SK]): k for k in deletes}
        ledger = keys.ledger_pk(self.space_id, str(superseded["stream"]))
        entries = [k for k in unique.values() if k[keys.PK] == ledger]
        if entries:
            owned = {
                where
                for where, item in consistent_batch_get(self.store, entries).items()
                if item.get("deployment_id") == deployment_id
            }
            for k in entries:
                if (k[keys.PK], k[keys.SK]) not in owned:
                    del unique[(k[keys.PK], k[keys.SK])]
        self.store.batch_delete(unique.values())
        for update in updates:
            ((action, request),) = update.items()
            self.store.call_if(_SINGLE_CALL[action], **request)

    # --- corrections and removals (issue 16) ----------------------------------------------------
    def redo(
        self, deployment: Deployment, rewind: Rewind, *, due: str, now: str
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The placeholder's conditional Update (with ``reset``) and the outbox item's Put (``rewind`` set),
        which keeps what the item it replaces still asked to undo (``_unfinished``)."""
        operations: list[dict[str, Any]] = []
        if rewind.reset and deployment.attribution is not None:
            operations.append(self.placeholder_update(deployment))
        item = self.store.outbox_item(
            self.space_id, deployment.id, due=due, created_at=now, superseded=rewind.superseded
        )
        if rewind.rewound:
            item["rewind"] = True
        clean_also = [*self._unfinished(deployment), *(dict(c) for c in rewind.clean_also)]
        if clean_also:
            item["also_clean"] = clean_also
        operations.append(self._put_op(item))
        return operations, item

    def _unfinished(self, deployment: Deployment) -> list[dict[str, Any]]:
        """What the deployment's outbox item still asks to undo (``also_clean``, then ``superseded`` as an
        entry of its own) when no attempt ran since an earlier plan wrote it: its attribution is still the
        placeholder that plan wrote (Pending, no mode). An attempt undoes those first and removes them; one
        that failed leaves them to the sweep, and a second plan's item must not drop them. One consistent
        GetItem, in that case only."""
        if deployment.attribution is None or not deployment.attribution.is_placeholder:
            return []
        item = self.outbox(deployment.id)
        if item is None:
            return []
        entries = [dict(c) for c in item.get("also_clean") or []]
        if item.get("superseded"):
            entries.append({"deployment_id": deployment.id, "leftovers": item["superseded"]})
        return entries

    def placeholder_update(self, deployment: Deployment) -> dict[str, Any]:
        """The update making a deployment's attribution a Pending placeholder one attempt on (conditional
        on its body and the attempts read)."""
        attempts = 0 if deployment.attribution is None else deployment.attribution.attempts
        placeholder = Attribution(state="Pending", attempts=attempts + 1)
        return {
            "Update": {
                "TableName": self.store.table,
                "Key": aws.serialize(keys.deployment(self.space_id, deployment.id)),
                "UpdateExpression": "SET attribution = :a",
                "ConditionExpression": "attribute_exists(PK) AND body_hash = :h AND attribution.attempts = :n",
                "ExpressionAttributeValues": {
                    ":a": aws.serialize_value(placeholder.model_dump(mode="json", exclude_none=True)),
                    ":h": aws.serialize_value(deployment.body_hash),
                    ":n": aws.serialize_value(attempts),
                },
            }
        }

    def removal(
        self, deployment: Deployment, *, leftovers: Mapping[str, Any] | None, due: str, now: str
    ) -> list[dict[str, Any]]:
        """A Delete of the outbox item, or an Update that keeps ``leftovers`` on it as ``removed``."""
        key = keys.attribution_outbox(self.space_id, deployment.id)
        if leftovers is None:
            return [self._delete_op(key)]
        item = self.store.outbox_item(self.space_id, deployment.id, due=due, created_at=now)
        item["removed"] = dict(leftovers)
        return [self._put_op(item)]

    # --- reads of the pending index -------------------------------------------------------------
    def waiting_for(self, sha_prefixes: Iterable[str], repositories: Iterable[str]) -> set[str]:
        """Patterns 102 and 103: a Query per key, never a Scan."""
        found: set[str] = set()
        partitions = [keys.awaiting_sha_pk(self.space_id, p) for p in set(sha_prefixes)]
        partitions += [keys.awaiting_repository_pk(self.space_id, r) for r in set(repositories)]
        for partition in partitions:
            found.update(str(i["deployment_id"]) for i in self.store.query_all(partition=partition))
        return found


def _later_of(found: Deployment | None, candidate: Deployment, deployment: Deployment) -> Deployment | None:
    """``candidate`` in place of ``found`` as ``deployment``'s previous success when it is a success of
    the same stream, before ``deployment`` and after ``found`` in stream order."""
    if not candidate.is_successful or candidate.stream_key != deployment.stream_key or candidate.id == deployment.id:
        return found
    position = stream_position(candidate)
    if position >= stream_position(deployment) or (found is not None and stream_position(found) >= position):
        return found
    return candidate


def _earlier_of(found: Deployment | None, candidate: Deployment, deployment: Deployment) -> Deployment | None:
    """``candidate`` in place of ``found`` as ``deployment``'s next success when it is a success of the
    same stream, after ``deployment`` and before ``found`` in stream order."""
    if not candidate.is_successful or candidate.stream_key != deployment.stream_key or candidate.id == deployment.id:
        return found
    position = stream_position(candidate)
    if position <= stream_position(deployment) or (found is not None and stream_position(found) <= position):
        return found
    return candidate


def _item_position(item: Mapping[str, Any]) -> str:
    """Where a stored deployment item sorts in its stream (``stream_position``)."""
    return keys.stream_sort(str(item["finished_at"]), item.get("started_at"), str(item["id"]))


def _recorded_position(item: Mapping[str, Any], leave_out: Collection[str], repository: str, branch: str) -> int | None:
    """The branch position a stored deployment's final attribution recorded, None when it recorded none
    (or is one of ``leave_out``: the deployment attributed again, or one being removed)."""
    attribution = item.get("attribution") or {}
    if item.get("id") in leave_out or attribution.get("state") not in ("Resolved", "GaveUp"):
        return None
    for mark in attribution.get("marks") or []:
        if mark.get("repository") == repository and mark.get("branch") == branch:
            return int(mark["position"])
    return None


def _mark_branch(item: Mapping[str, Any], repository: str) -> str | None:
    """The branch of a mark item (pattern 101) when it is one of ``repository``'s."""
    if "branch" in item:
        return str(item["branch"]) if item.get("repository") == repository else None
    sort = str(item[keys.SK])
    prefix = f"M#{repository}#"
    return sort[len(prefix) :] if sort.startswith(prefix) else None


def _claim(table: str, item: Mapping[str, Any], deployment_id: str) -> dict[str, Any]:
    """A ledger entry put only if no other deployment of the stream shipped the change meanwhile (a
    concurrent attempt: the transaction is cancelled and the re-run leaves the change out)."""
    return {
        "Put": {
            "TableName": table,
            "Item": aws.serialize(item),
            "ConditionExpression": "attribute_not_exists(PK) OR deployment_id = :d",
            "ExpressionAttributeValues": {":d": aws.serialize_value(deployment_id)},
        }
    }


def _unclaim(table: str, claim: Mapping[str, Any], deployment_id: str) -> dict[str, Any]:
    """The Delete of a ledger entry an attempt claimed (``_claim_all``), only while it is still that
    attempt's: this deployment's, with the claim id it was claimed with."""
    return {
        "Delete": {
            "TableName": table,
            "Key": aws.serialize(keys.key(str(claim[keys.PK]), str(claim[keys.SK]))),
            "ConditionExpression": "#d = :d AND #c = :c",
            "ExpressionAttributeNames": {"#d": "deployment_id", "#c": _CLAIM_ID},
            "ExpressionAttributeValues": {
                ":d": aws.serialize_value(deployment_id),
                ":c": aws.serialize_value(str(claim[_CLAIM_ID])),
            },
        }
    }


def _cancelled(reasons: Sequence[Mapping[str, Any]]) -> DoraError:
    """What an attribution write cancelled for another reason than its deployment's condition raises (its
    attempt is retried): ``WriteContendedError`` when concurrent writes still cancel it, else a
    ``ResourceConflictError`` (a branch mark moved, or a change was shipped, since the attempt read them)."""
    if contended(reasons):
        return WriteContendedError("the attribution could not be written now, for concurrent writes; it is retried")
    return ResourceConflictError("the stream's ledger changed since the attribution read it; it is retried")


def _revert_mark(table: str, key: Mapping[str, str], current: Mapping[str, Any], deployment_id: str) -> dict[str, Any]:
    """Move a mark back to where it was before ``deployment_id`` moved it (delete it if it had not
    been set), only while that deployment still owns it at the position read. The mark is left without an
    owner or a previous position (one level of history): should the deployment that had moved it there be
    removed in turn, its cleanup restores it from the stream's recorded positions
    (``AttributionStore._restored_mark``)."""
    names = {"#d": "deployment_id", "#p": "position"}
    values = {
        ":d": aws.serialize_value(deployment_id),
        ":read": aws.serialize_value(int(current["position"])),
    }
    condition = "#d = :d AND #p = :read"
    previous = current.get("previous_position")
    if previous is None:
        request = {"ConditionExpression": condition, "ExpressionAttributeNames": names}
        return {
            "Delete": {"TableName": table, "Key": aws.serialize(key), **request, "ExpressionAttributeValues": values}
        }
    names["#pp"] = "previous_position"
    values[":pp"] = aws.serialize_value(int(previous))
    return {
        "Update": {
            "TableName": table,
            "Key": aws.serialize(key),
            "UpdateExpression": "SET #p = :pp REMOVE #d, #pp",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


class RetryQueue:
    """The attribution-retry queue (SQS, delays up to 15 minutes)."""

    def __init__(self, url: str) -> None:
        self.url = url

    @staticmethod
    def _body(space_id: str, deployment_id: str, attempt: int) -> str:
        return json.dumps({"space_id": space_id, "deployment_id": deployment_id, "attempt": attempt})

    def send(self, space_id: str, deployment_id: str, attempt: int, delay_seconds: int) -> None:
        """SendMessage, its delay capped at SQS's 15 minutes."""
        aws.client("sqs").send_message(
            QueueUrl=self.url,
            MessageBody=self._body(space_id, deployment_id, attempt),
            DelaySeconds=max(0, min(900, delay_seconds)),
        )

    def send_groups(self, space_id: str, groups: Sequence[Sequence[str]], afters: Sequence[str | None] = ()) -> None:
        """Ten per SendMessageBatch."""
        padded = [*afters, *([None] * (len(groups) - len(afters)))]
        bodies = (
            json.dumps({"space_id": space_id, "deployment_ids": list(ids), **({"after": after} if after else {})})
            for ids, after in zip(groups, padded, strict=True)
        )
        aws.send_messages(self.url, bodies, "retry messages")

    def send_now(self, space_id: str, deployment_ids: Sequence[tuple[str, int]]) -> None:
        """Ten per SendMessageBatch."""
        bodies = (self._body(space_id, deployment_id, attempt) for deployment_id, attempt in deployment_ids)
        aws.send_messages(self.url, bodies, "retry messages")
