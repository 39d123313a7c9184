"""Precomputed metrics: per-stream figures (by generation), report recompute state and report
aggregates (by generation). Readers only ever follow a pointer to a complete generation."""

from __future__ import annotations

import gzip
import itertools
import json
import zlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from dora_insights.dal import aws, keys
from dora_insights.dal.store import Store, deployment_from_item
from dora_insights.domain.model import Deployment, FailureEvent
from dora_insights.domain.times import parse_stored, wall_stamp
from dora_insights.domain.views import StoredView, ViewId

# Items stay well under DynamoDB's 400 KB: records are packed as JSON text up to this size.
CHUNK_BYTES = 300_000
# Chunks a deployment's figures lookup reads per Query page: those starting in its month and one before.
FIGURES_LOOKUP_PAGE = 4
# A view's compressed parts are cut into binary chunks of at most this size (one item each).
BLOB_CHUNK_BYTES = 350_000
# zlib's default level: a one-year daily view split by project (~7 MB of text) compresses to
# ~0.6 MB in ~0.1 s at recompute time (level 1: ~1 MB in 30 ms), and every stored KB is a write unit.
COMPRESSION_LEVEL = 6
RECORDS_PART = "D"
RENDERED_PART = "R"


def view_key(view: ViewId) -> str:
    """The name of a view in its items' keys and ``view`` attribute (``<split>#<granularity>``)."""
    return keys.aggregates_view(view.split.value, view.granularity.value, view.tag_set_id)


def _compress(text: str) -> bytes:
    return zlib.compress(text.encode("utf-8"), COMPRESSION_LEVEL)


def _rendered_part(header: Mapping[str, Any], text: str) -> bytes:
    """4-byte length of the compressed header, the header, then the gzip of the answer."""
    packed_header = _compress(json.dumps(header, separators=(",", ":")))
    answer = gzip.compress(text.encode("utf-8"), COMPRESSION_LEVEL, mtime=0)
    return len(packed_header).to_bytes(4, "big") + packed_header + answer


def _blob(item: Mapping[str, Any]) -> bytes:
    value = item["blob"]
    return bytes(getattr(value, "value", value))


def pack(records: Sequence[dict[str, Any]], limit: int = CHUNK_BYTES) -> list[list[dict[str, Any]]]:
    """Consecutive groups of records whose JSON fits one item."""
    chunks: list[list[dict[str, Any]]] = [[]]
    size = 0
    for record in records:
        length = len(json.dumps(record, separators=(",", ":"))) + 1
        if chunks[-1] and size + length > limit:
            chunks.append([])
            size = 0
        chunks[-1].append(record)
        size += length
    return chunks


def _unless_contended(write: Callable[..., Any | None], key: Mapping[str, str], **kwargs: Any) -> Any | None:
    """A conditional write of a stream's dirty mark: its response, or None when its condition failed or
    a transaction in flight holds the mark (``TransactionConflictException``: an ingest marking the
    stream again, after which the condition fails too). Either way the mark stays for the next run."""
    try:
        return write(key, **kwargs)
    except aws.ClientError as error:
        if aws.error_code(error) == "TransactionConflictException":
            return None
        raise


def _same_mark(dirty_at: str, mark_id: str | None) -> tuple[str, dict[str, Any]]:
    """The condition that a stream's mark is still the one read: its time and its id (a mark written
    before marks had ids has none; ``Store.dirty_op`` gives one to every new mark)."""
    if mark_id is None:
        return "dirty_at = :seen AND attribute_not_exists(mark_id)", {":seen": dirty_at}
    return "dirty_at = :seen AND mark_id = :mark", {":seen": dirty_at, ":mark": mark_id}


class MetricsStore:
    """``logic.ports.MetricsRepository`` over the table adapter."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- inputs --------------------------------------------------------------------------
    def stream_deployments(self, space_id: str, stream: str) -> list[Deployment]:
        """Pattern 12, every page."""
        return [
            deployment_from_item(i)
            for i in self.store.query_all(partition=keys.deployments_by_stream(space_id, stream), index=keys.GSI3)
        ]

    def latest_stream_deployment(self, space_id: str, stream: str) -> Deployment | None:
        """Pattern 12 backwards: one Query of one item."""
        items, _ = self.store.query_page(
            partition=keys.deployments_by_stream(space_id, stream), index=keys.GSI3, ascending=False, limit=1
        )
        return deployment_from_item(items[0]) if items else None

    def project_deployments(self, space_id: str, project_id: str) -> list[Deployment]:
        """Pattern 11, every page."""
        return [
            deployment_from_item(i)
            for i in self.store.query_all(partition=keys.deployments_by_project(space_id, project_id), index=keys.GSI2)
        ]

    def mark_caught_up(self, space_id: str, stream: str, dirty_at: str, mark_id: str | None) -> bool:
        """A conditional UpdateItem of the mark (the one read: ``dirty_at`` and ``mark_id``):
        ``caught_up_to`` and ``caught_up_id``, ``caught_up`` (the wall clock), ``pending`` 0."""
        condition, values = _same_mark(dirty_at, mark_id)
        update = "SET caught_up_to = :seen, caught_up = :stamp, pending = :zero"
        # A mark without an id (written before marks had one): caught up with no id either.
        update += " REMOVE caught_up_id" if mark_id is None else ", caught_up_id = :mark"
        done = _unless_contended(
            self.store.update_if,
            keys.dirty_stream(space_id, stream),
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeValues=aws.serialize({**values, ":stamp": wall_stamp(), ":zero": 0}),
        )
        return done is not None

    def registrations(
        self, space_id: str, streams: Iterable[str], *, consistent: bool = False
    ) -> dict[str, dict[str, Any]]:
        """Pattern 44: a BatchGetItem per 100."""
        found = self.store.batch_get(
            [keys.stream_registration(space_id, s) for s in dict.fromkeys(streams)], consistent=consistent
        )
        return {str(i["stream"]): i for i in found}

    def clear_dirty(self, space_id: str, stream: str, dirty_at: str, mark_id: str | None) -> None:
        """A DeleteItem conditional on the mark read (``dirty_at`` and ``mark_id``)."""
        condition, values = _same_mark(dirty_at, mark_id)
        _unless_contended(
            self.store.delete_if,
            keys.dirty_stream(space_id, stream),
            ConditionExpression=condition,
            ExpressionAttributeValues=aws.serialize(values),
        )

    def space_failures(self, space_id: str, *, started: tuple[datetime, datetime] | None = None) -> list[FailureEvent]:
        """Pattern 15, every page (``started``: only the events that started in ``[from, to)``, a key range
        of the index, which orders them by start)."""
        hidden = {keys.PK, keys.SK, keys.TYPE, keys.GSI1PK, keys.GSI1SK}
        between = keys.time_range(*started) if started is not None else None
        found = [
            FailureEvent.model_validate({k: v for k, v in i.items() if k not in hidden})
            for i in self.store.query_all(
                partition=keys.failures_by_time(space_id), index=keys.GSI1, sort_between=between
            )
        ]
        return found if started is None else [f for f in found if parse_stored(f.started_at) < started[1]]

    # --- per-stream figures --------------------------------------------------------------
    def streams(
        self, space_id: str, *, consistent: bool = False, project_id: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """Pattern 44: the space's stream partition (``project_id``: that project's key range, pattern 17),
        every page."""
        prefix = keys.project_streams_prefix(project_id) if project_id is not None else None
        items = self.store.query_all(partition=keys.streams_pk(space_id), sort_prefix=prefix, consistent=consistent)
        return {i["stream"]: i for i in items}

    def write_stream_figures(
        self,
        space_id: str,
        stream: str,
        registration: dict[str, Any],
        records_by_month: dict[str, list[dict[str, Any]]],
        generation: str,
        previous: str | None,
    ) -> bool:
        """The items first, then the pointer (a conditional Put), then the items of the generation it left."""
        items = []
        # Months in order, packed together (a chunk spans consecutive months, so a space of many
        # small streams reads one item per stream, not one per stream-month); ``month`` and
        # ``last_month`` bound the chunk for :meth:`deployment_figures`.
        ordered = [(month, record) for month in sorted(records_by_month) for record in records_by_month[month]]
        start = 0
        for n, chunk in enumerate(pack([record for _, record in ordered]) if ordered else []):
            first, last = ordered[start][0], ordered[start + len(chunk) - 1][0]
            start += len(chunk)
            items.append(
                {
                    **keys.stream_figures(space_id, stream, generation, first, n),
                    keys.TYPE: keys.T_FIGURES,
                    "stream": stream,
                    "generation": generation,
                    "month": first,
                    "last_month": last,
                    "records": json.dumps(chunk, separators=(",", ":")),
                }
            )
        self.batch_put(items)
        pointer = {
            **keys.stream_registration(space_id, stream),
            keys.TYPE: keys.T_STREAM,
            **registration,
            "stream": stream,
            "generation": generation,
            "items": len(items),  # a reader counting fewer was cut off by a concurrent delete
        }
        moved = self._put_if(
            pointer,
            "attribute_not_exists(generation)" if previous is None else "generation = :previous",
            {} if previous is None else {":previous": previous},
        )
        if moved is None:
            self._delete_generation(space_id, stream, generation)
            return False
        if previous and previous != generation:
            self._delete_generation(space_id, stream, previous)
        return True

    def _put_if(self, item: Mapping[str, Any], condition: str, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """PutItem under ``condition``: the item it replaced ({} when none), None when the condition failed."""
        extra: dict[str, Any] = {"ExpressionAttributeValues": aws.serialize(values)} if values else {}
        done = self.store.call_if(
            "put_item",
            TableName=self.store.table,
            Item=aws.serialize(item),
            ConditionExpression=condition,
            ReturnValues="ALL_OLD",
            **extra,
        )
        return None if done is None else aws.deserialize(done.get("Attributes") or {})

    def _delete_generation(self, space_id: str, stream: str, generation: str) -> None:
        stale = [
            {keys.PK: i[keys.PK], keys.SK: i[keys.SK]}
            for i in self.store.query_all(
                partition=keys.figures_pk(space_id), sort_prefix=f"{keys.stream_figures_prefix(stream)}{generation}#"
            )
        ]
        self.batch_delete(stale)

    def deployment_figures(
        self, space_id: str, stream: str, deployment_id: str, month: str, *, generation: str | None = None
    ) -> dict[str, Any] | None:
        """A GetItem of the pointer (unless ``generation`` is given; strongly consistent, as the list's and
        ``freshness.read_stream``'s: a recompute deletes the generation it leaves at once), then the chunks
        starting in ``month`` and the one before (one Query)."""
        if generation is None:
            registration = self.store.get(keys.stream_registration(space_id, stream), consistent=True)
            if registration is None:
                return None
            generation = str(registration["generation"])
        return self.stream_figures(space_id, stream, generation, {deployment_id}, (month, month)).get(deployment_id)

    def stream_figures(
        self, space_id: str, stream: str, generation: str, deployment_ids: Collection[str], months: tuple[str, str]
    ) -> dict[str, dict[str, Any]]:
        """One Query, newest first, of the generation's chunks starting in ``months[1]`` or before, until the
        one starting before ``months[0]`` (it holds the first records of that month; an earlier one ends
        before it), or until every deployment is found."""
        first, last = months
        wanted, found = set(deployment_ids), {}
        prefix = f"{keys.stream_figures_prefix(stream)}{generation}#"

        def chunks(consistent: bool) -> Iterable[dict[str, Any]]:
            return self.store.query_all(
                partition=keys.figures_pk(space_id),
                sort_between=(prefix, f"{prefix}{last}#\uffff"),
                ascending=False,
                limit=FIGURES_LOOKUP_PAGE,
                consistent=consistent,
            )

        items = iter(chunks(False))
        head = next(items, None)
        if head is None:  # a generation written a moment ago may not show yet: read it as stored
            items = iter(chunks(True))
            head = next(items, None)
        for item in itertools.chain([head] if head is not None else [], items):
            if str(item.get("last_month", item["month"])) < first:
                break  # the chunks before this one end before the months start
            for record in json.loads(item["records"]):
                if record.get("deployment_id") in wanted:
                    found[str(record["deployment_id"])] = dict(record)
            if len(found) == len(wanted) or str(item["month"]) < first:
                break  # the first month starts in this chunk: no earlier one holds any
        return found

    def space_figures(
        self, space_id: str, streams: Mapping[str, Mapping[str, Any]] | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """The records of ``space_figures_counted`` (tests compare them with an oracle's)."""
        return self.space_figures_counted(space_id, streams)[0]

    def space_figures_counted(
        self,
        space_id: str,
        streams: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        consistent: bool = False,
        per_stream: bool = False,
    ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
        """The figures of ``streams`` (None: every registered stream): one paged Query of the space's
        figures partition, or with ``per_stream`` one of each stream's current generation (its chunks'
        key prefix), for an answer about a few streams of a large space. A pointer's ``items`` is what to
        expect."""
        if streams is None:
            streams = self.streams(space_id, consistent=consistent)
        found: dict[str, list[dict[str, Any]]] = {s: [] for s in streams}
        counted = dict.fromkeys(streams, 0)
        partition = keys.figures_pk(space_id)
        if per_stream:
            reads = [
                self.store.query_all(partition=partition, sort_prefix=f"{s}#{r['generation']}#", consistent=consistent)
                for s, r in sorted(streams.items())
                if r.get("generation")
            ]
        else:
            reads = [self.store.query_all(partition=partition, consistent=consistent)]
        for item in (item for read in reads for item in read):
            stream = item["stream"]
            if stream in streams and item["generation"] == streams[stream].get("generation"):
                found[stream].extend(json.loads(item["records"]))
                counted[stream] += 1
        return found, counted

    # --- reports -------------------------------------------------------------------------
    def report_state(self, space_id: str, number: int) -> dict[str, Any] | None:
        """Pattern 42, read consistently."""
        return self.store.get(keys.report_state(space_id, number), consistent=True)

    def write_report_aggregates(
        self, space_id: str, number: int, generation: str, views: Mapping[ViewId, StoredView], state: dict[str, Any]
    ) -> bool:
        """The view items first, then the state (a Put conditional on ``read_at``), then the replaced items."""
        items = []
        for view_id, stored in views.items():
            view = view_key(view_id)
            parts = {
                RECORDS_PART: _compress(json.dumps(stored.records, separators=(",", ":"))),
                RENDERED_PART: _rendered_part(stored.header, stored.text),
            }
            for part, blob in parts.items():
                for n, start in enumerate(range(0, len(blob), BLOB_CHUNK_BYTES)):
                    items.append(
                        {
                            **keys.aggregates(space_id, number, generation, view, part, n),
                            keys.TYPE: keys.T_AGGREGATES,
                            "view": view,
                            "blob": blob[start : start + BLOB_CHUNK_BYTES],
                        }
                    )
        self.batch_put(items)
        pointer = {
            **keys.report_state(space_id, number),
            keys.TYPE: keys.T_REPORT_STATE,
            **state,
            "generation": generation,
        }
        replaced = self._put_if(
            pointer, "attribute_not_exists(read_at) OR read_at <= :read_at", {":read_at": state["read_at"]}
        )
        if replaced is None:
            self._delete_report_generation(space_id, number, generation)
            return False
        if replaced.get("generation") and replaced["generation"] != generation:
            self._delete_report_generation(space_id, number, str(replaced["generation"]))
        if self.store.get(keys.report(space_id, number), consistent=True) is None:
            # Deleted while this recompute ran, after its delete looked for views to drop: drop these.
            drop_report_views(self.store, space_id, number)
            return False
        return True

    def _delete_report_generation(self, space_id: str, number: int, generation: str) -> None:
        """Drop a superseded generation (readers moved on when the state flipped)."""
        _delete_report_generation(self.store, space_id, number, generation)

    def _read_part(self, space_id: str, number: int, generation: str, view: str, part: str) -> bytes | None:
        """One part of one view as stored: one Query (a page per MB of chunks)."""
        chunks = [
            _blob(item)
            for item in self.store.query_all(
                partition=keys.aggregates_pk(space_id, number, generation),
                sort_prefix=keys.aggregates_prefix(view, part),
            )
        ]
        return b"".join(chunks) if chunks else None

    def read_view(self, space_id: str, number: int, generation: str, view: ViewId) -> list[dict[str, Any]]:
        """The records part of the view, decompressed."""
        packed = self._read_part(space_id, number, generation, view_key(view), RECORDS_PART)
        return [] if packed is None else list(json.loads(zlib.decompress(packed)))

    def read_rendered(
        self, space_id: str, number: int, generation: str, view: ViewId
    ) -> tuple[dict[str, Any], bytes] | None:
        """The rendered part of the view: a 4-byte length, the compressed header, the gzip of the answer."""
        packed = self._read_part(space_id, number, generation, view_key(view), RENDERED_PART)
        if packed is None:
            return None
        length = int.from_bytes(packed[:4], "big")
        header = json.loads(zlib.decompress(packed[4 : 4 + length]))
        return dict(header), packed[4 + length :]

    # --- batch helpers -------------------------------------------------------------------
    def batch_put(self, items: Iterable[dict[str, Any]]) -> None:
        self.store.batch_put(items)

    def batch_delete(self, key_list: Iterable[dict[str, str]]) -> None:
        self.store.batch_delete(key_list)


def _delete_report_generation(store: Store, space_id: str, number: int, generation: str) -> None:
    """Every item of one generation of a report's views: a Query, then BatchWriteItem deletes."""
    stale = [
        {keys.PK: i[keys.PK], keys.SK: i[keys.SK]}
        for i in store.query_all(partition=keys.aggregates_pk(space_id, number, generation))
    ]
    store.batch_delete(stale)


def drop_report_views(store: Store, space_id: str, number: int) -> None:
    """A deleted report's computed state and the views it points to (its number is never given again,
    so nothing would read them): the state read consistently, its generation's items, then the state,
    unless a recompute wrote a newer one meanwhile (that recompute finds the report gone and drops it)."""
    state = store.get(keys.report_state(space_id, number), consistent=True)
    if state is None:
        return
    generation = state.get("generation")
    if generation:
        _delete_report_generation(store, space_id, number, str(generation))
        store.delete_if(
            keys.report_state(space_id, number),
            ConditionExpression="#g = :g",
            ExpressionAttributeNames={"#g": "generation"},
            ExpressionAttributeValues={":g": {"S": str(generation)}},
        )
    else:
        store.delete_if(keys.report_state(space_id, number), ConditionExpression="attribute_not_exists(generation)")
