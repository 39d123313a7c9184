"""Sorted partitions for moto's ``Table.query``: the partition a query names, in the order moto sorts it.

moto 5.2.5 answers every ``Query`` by listing the whole table sorted (``Table.all_items``), keeping the
items of the partition asked for, sorting them again and walking them from the first: 13 ms a query at
1,000 items, 480 ms at 40,000, whatever the partition's size (docs/moto-query-patch.md). Here each table
keeps, per key schema (the table's own and each index's), its items grouped by partition key and sorted
by the very attributes moto sorts them by (``Table._generate_attr_to_sort_by``). A query finds its
partition with a dict lookup, its first item (after ``ExclusiveStartKey``, inside the key condition's
range) by bisection, and walks only the items it answers with: what moto's own loop does, without the
items moto would skip or pass over without effect.

Equivalence with moto (``tests/unit/local/test_moto_query_patch.py`` checks it on random tables and
queries): the items in a partition are the items moto's candidate filter keeps (every key attribute of
the index present, partition key equal); their order is moto's (its sort keys are unique per item, so
the order is total); ``ExclusiveStartKey`` skips exactly the leading run moto's
``_item_comes_before_dct`` skips; a key condition on the sort key keeps a contiguous run of that order
(``=``, ``<``, ``<=``, ``>``, ``>=``, ``BETWEEN``, ``begins_with`` on strings); ``Limit``, the 1 MB page
and ``LastEvaluatedKey`` follow moto's loop item by item (including its quirk of answering a
``LastEvaluatedKey`` when the page is full and any item follows, matching or not); projection, filter
and ``ProjectionExpression`` are moto's own code on the same items. Whatever this module cannot answer
exactly (a multi-attribute key, a binary or mixed-type key, a malformed ``ExclusiveStartKey``, legacy
``QueryFilter`` arguments, a ``Limit`` below 1, a query moto answers with an error, an item over 1 MB)
raises :class:`Unsupported` and moto's own ``query`` answers it.

The partitions are built as queries need them (a partition of the table itself from ``Table.items``,
an index's by one walk of the table) and then kept current by :mod:`dora_local.motofix`'s write hooks
(every path moto 5.2.5 changes an item through); anything unexpected while maintaining them drops the
table's partitions, to be rebuilt by the next queries.
"""

from __future__ import annotations

import bisect
import copy
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = ["INDEX_ATTRIBUTE", "TableIndex", "Unsupported", "query"]

INDEX_ATTRIBUTE = "_dora_local_partitions"  # where a Table keeps its TableIndex (dropped from copies)
SIZE_ATTRIBUTE = "_dora_local_size_bound"  # where a Table keeps a bound of its items' sizes, when above the limit
RESULT_SIZE_LIMIT = 1_000_000  # moto's page size limit (moto.dynamodb.models.table.RESULT_SIZE_LIMIT)
MAX_STORED_ITEM_BYTES = 405_000  # moto's item size limit on each top-level attribute write (LimitedSizeDict)
_ORDERED_TYPES = frozenset({"S", "N"})  # key types whose moto ordering is a plain Python ordering here
_KEY_TYPES = frozenset({"S", "N", "B"})


class Unsupported(Exception):  # noqa: N818 - a signal to fall back, not an error
    """This query is left to moto's own ``Table.query``."""


Entry = tuple[str | None, tuple[str, Any], tuple[Any, ...], tuple[str, ...]]  # index, partition, sort key, types


@dataclass(frozen=True)
class KeySpec:
    """How the table (``name`` None) or one of its indexes partitions and orders its items, as moto's query does."""

    name: str | None
    hash_attr: str
    range_attr: str | None  # the attribute a key condition on the sort key compares; None: none allowed
    sort_attrs: tuple[str, ...]  # moto's sort order: these attributes' values, left to right; an item is
    # in the index when it has them all (the index's keys and the table's), hash_attr first


@dataclass
class Partition:
    """The items of one partition key, ascending by their sort key (``keys[i]`` is ``items[i]``'s)."""

    types: tuple[str, ...]
    keys: list[tuple[Any, ...]] = field(default_factory=list)
    items: list[Any] = field(default_factory=list)
    irregular: bool = False  # an item of other key types, or not orderable here: moto answers its queries

    def insert(self, key: tuple[Any, ...], types: tuple[str, ...], item: Any) -> None:
        if self.irregular:
            return
        if types != self.types:
            self.make_irregular()
            return
        at = bisect.bisect_left(self.keys, key)
        if at < len(self.keys) and self.keys[at] == key:
            raise _StaleError  # two items with one sort key: these partitions no longer match the table
        self.keys.insert(at, key)
        self.items.insert(at, item)

    def remove(self, key: tuple[Any, ...], types: tuple[str, ...], item: Any) -> None:
        if self.irregular:
            return
        if types != self.types:
            raise _StaleError
        at = bisect.bisect_left(self.keys, key)
        if at == len(self.keys) or self.keys[at] != key or self.items[at] is not item:
            raise _StaleError
        del self.keys[at]
        del self.items[at]

    def make_irregular(self) -> None:
        self.irregular = True
        self.keys.clear()
        self.items.clear()


def _cast(value: Any) -> Any:
    """``value.cast_value`` (what moto compares), for the key types: a string itself, a number's Decimal."""
    if value.type == "S":
        return value.value
    if value.type == "N":
        return Decimal(value.value)
    return value.cast_value


def _built(members: list[tuple[tuple[Any, ...], tuple[str, ...], Any]]) -> Partition:
    """A partition of (sort key, key types, item) members in any order."""
    built = Partition(types=members[0][1])
    if any(types != built.types for _, types, _ in members) or not _ORDERED_TYPES.issuperset(built.types):
        built.make_irregular()
        return built
    members.sort(key=lambda member: member[0])
    if any(a[0] == b[0] for a, b in itertools.pairwise(members)):
        built.make_irregular()
        return built
    built.keys = [key for key, _, _ in members]
    built.items = [item for _, _, item in members]
    return built


class _StaleError(Exception):
    """The partitions no longer match the table: drop them (rebuilt on the next query)."""


class TableIndex:
    """The sorted partitions of one moto ``Table``, built as queries need them (the table's own one
    partition at a time, since ``Table.items`` holds each partition's items; an index all at once, since
    only a walk of the table finds its items), then kept current by every write."""

    def __init__(self, table: Any) -> None:
        self.shape = shape_of(table)
        self.specs: dict[str | None, KeySpec] = {spec.name: spec for spec in _specs(table)}
        self.partitions: dict[str | None, dict[tuple[str, Any], Partition]] = {name: {} for name in self.specs}
        self.complete: set[str | None] = set()  # indexes whose every partition is built
        self.irregular: set[str | None] = set()  # key schemas with a partition key moto cannot hash here

    def entries(self, item: Any, *, only: KeySpec | None = None) -> list[Entry]:
        """Where ``item`` is in each key schema's built partitions (``only``: in that schema, built or not):
        (index, partition key, sort key, key types)."""
        found: list[Entry] = []
        attrs = item.attrs
        for spec in (only,) if only is not None else self.specs.values():
            if spec.name in self.irregular:
                continue
            try:  # the sort attributes are the schema's keys and the table's: all there for a member
                values = [attrs[a] for a in spec.sort_attrs]
            except KeyError:
                continue
            value = values[0]  # the partition key (sort_attrs[0] is hash_attr)
            if value.type not in _KEY_TYPES:
                self._make_irregular(spec.name)  # not a key moto can compare by hash: moto answers this index
                continue
            partition_key = (value.type, _cast(value))
            if only is None and not (
                spec.name in self.complete if spec.name is not None else partition_key in self.partitions[None]
            ):
                continue  # not built: nothing to keep current
            types = tuple([v.type for v in values])
            key = tuple([_cast(v) for v in values]) if _ORDERED_TYPES.issuperset(types) else ()
            found.append((spec.name, partition_key, key, types))
        return found

    def add(self, entries: Iterable[Entry], item: Any) -> None:
        for name, partition_key, key, types in entries:
            partitions = self.partitions[name]
            partition = partitions.get(partition_key)
            if partition is None:
                partition = partitions[partition_key] = Partition(types=types)
            if not _ORDERED_TYPES.issuperset(types):
                partition.make_irregular()
            partition.insert(key, types, item)

    def remove(self, entries: Iterable[Entry], item: Any) -> None:
        for name, partition_key, key, types in entries:
            partition = self.partitions[name].get(partition_key)
            if partition is None:
                raise _StaleError
            partition.remove(key, types, item)

    def replace(self, old: Any, old_entries: list[Entry], new: Any) -> None:
        """``old`` (whose entries were ``old_entries`` before the write) is now ``new`` (None: deleted)."""
        if old is not None:
            self.remove(old_entries, old)
        if new is not None:
            self.add(self.entries(new), new)

    def partition(self, table: Any, spec: KeySpec, value: Any) -> Partition | None:
        """The partition of ``value`` (None: no item), built if it is not yet."""
        if spec.name in self.irregular or value.type not in _KEY_TYPES:
            raise Unsupported
        partition_key = (value.type, value.cast_value)
        if spec.name is None:
            partition = self.partitions[None].get(partition_key)
            if partition is None:
                partition = self._build_partition(table, spec, value)
        else:
            self.build_index(table, spec)
            partition = self.partitions[spec.name].get(partition_key)
        if spec.name in self.irregular or (partition is not None and partition.irregular):
            raise Unsupported
        return partition

    def build_index(self, table: Any, spec: KeySpec) -> None:
        """Every partition of an index (a walk of the whole table), unless built."""
        if spec.name in self.complete or spec.name in self.irregular:
            return
        grouped: dict[tuple[str, Any], list[tuple[tuple[Any, ...], tuple[str, ...], Any]]] = {}
        for item in all_items(table):
            for _, partition_key, key, types in self.entries(item, only=spec):
                grouped.setdefault(partition_key, []).append((key, types, item))
        if spec.name not in self.irregular:
            self.partitions[spec.name] = {partition_key: _built(m) for partition_key, m in grouped.items()}
            self.complete.add(spec.name)

    def _build_partition(self, table: Any, spec: KeySpec, value: Any) -> Partition | None:
        stored = table.items.get(value)
        items = list(stored.values()) if isinstance(stored, dict) else [stored] if stored is not None else []
        members = [(key, types, item) for item in items for _, _, key, types in self.entries(item, only=spec)]
        if not members:
            return None  # nothing to keep: a write to it is not followed, the next query looks again
        partition = self.partitions[None][(value.type, value.cast_value)] = _built(members)
        return partition

    def _make_irregular(self, name: str | None) -> None:
        self.irregular.add(name)
        self.partitions[name].clear()
        self.complete.discard(name)


# ----------------------------------------------------------------------------------------- the table's side
def shape_of(table: Any) -> tuple[Any, ...]:
    """What the partitions depend on: the key schemas (an index added or deleted rebuilds them)."""
    return (
        table.hash_key_attr,
        table.range_key_attr,
        tuple((type(i).__name__, i.name, repr(i.schema)) for i in table.all_indexes()),
    )


def index_of(table: Any, *, build: bool) -> TableIndex | None:
    """The table's partitions (started now when ``build``), or None."""
    index: TableIndex | None = table.__dict__.get(INDEX_ATTRIBUTE)
    if index is not None and index.shape != shape_of(table):
        index = None
        drop(table)
    if index is None and build:
        index = table.__dict__[INDEX_ATTRIBUTE] = TableIndex(table)
    return index


def prepare(table: Any) -> None:
    """Build every index's partitions now (a walk of the table each), rather than in the first queries."""
    index = index_of(table, build=True)
    if index is None:  # pragma: no cover - started above
        return
    try:
        for spec in index.specs.values():
            if spec.name is not None:
                index.build_index(table, spec)
    except _StaleError:
        drop(table)


def drop(table: Any) -> None:
    """Forget the table's partitions (rebuilt on its next query)."""
    table.__dict__.pop(INDEX_ATTRIBUTE, None)


def maintain(table: Any, old: Any, old_entries: list[Entry] | None, new: Any) -> None:
    """After a write of one key: ``old`` (with its entries before the write) became ``new``."""
    index = index_of(table, build=False)
    if index is None:
        return
    if old is not None and old_entries is None:
        drop(table)
        return
    try:
        index.replace(old, old_entries or [], new)
    except _StaleError:
        drop(table)


def size_bound(table: Any) -> int:
    """No item of the table is larger (moto checks each top-level attribute write against 405,000 bytes;
    an update of a nested attribute escapes that check, so :func:`note_size` raises the bound)."""
    return int(table.__dict__.get(SIZE_ATTRIBUTE, MAX_STORED_ITEM_BYTES))


def note_size(table: Any, size: int) -> None:
    """An item of ``size`` bytes is in the table."""
    if size > size_bound(table):
        table.__dict__[SIZE_ATTRIBUTE] = size


def entries_before(table: Any, item: Any) -> list[Entry] | None:
    """``item``'s entries before a write changes it (None: the table keeps no partitions now)."""
    index = index_of(table, build=False)
    if index is None or item is None:
        return [] if index is not None else None
    try:
        return index.entries(item)
    except _StaleError:
        drop(table)
        return None


def _specs(table: Any) -> Iterator[KeySpec]:
    """The key schemas this module answers queries of (the others moto answers): the table's, and each
    index with one partition key and at most one sort key."""
    from moto.dynamodb.models.table import GlobalSecondaryIndex

    hash_attr, range_attr = table.hash_key_attr, table.range_key_attr
    found = [KeySpec(None, hash_attr, range_attr, tuple(table._generate_attr_to_sort_by([hash_attr], [range_attr])))]
    for index in table.all_indexes():
        hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
        ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
        if len(hashes) != 1 or len(ranges) > 1:
            continue  # a multi-attribute key
        # moto's query: the attributes it sorts an index's candidates by.
        if ranges:
            range_attrs: list[str | None] = [ranges[0], range_attr]
        elif isinstance(index, GlobalSecondaryIndex) and range_attr:
            range_attrs = [range_attr, range_attr]
        else:
            range_attrs = [hash_attr, range_attr]
        sort_attrs = tuple(table._generate_attr_to_sort_by([hashes[0], hash_attr], range_attrs))
        found.append(KeySpec(index.name, hashes[0], ranges[0] if ranges else None, sort_attrs))
    yield from (spec for spec in found if spec.sort_attrs and spec.sort_attrs[0] == spec.hash_attr)


def all_items(table: Any) -> Iterator[Any]:
    """Every item of the table (moto's ``Item``), unsorted."""
    for stored in table.items.values():
        if table.range_key_attr is None:
            yield stored
        else:
            yield from stored.values()


# ----------------------------------------------------------------------------------------- the query
_BELOW_ABOVE: dict[str, Callable[[list[Any]], tuple[Callable[[Any], bool], Callable[[Any], bool]]]] = {
    "=": lambda v: (lambda c: c < v[0], lambda c: c > v[0]),
    "<": lambda v: (lambda c: False, lambda c: c >= v[0]),
    "<=": lambda v: (lambda c: False, lambda c: c > v[0]),
    ">": lambda v: (lambda c: c <= v[0], lambda c: False),
    ">=": lambda v: (lambda c: c < v[0], lambda c: False),
    "BETWEEN": lambda v: (lambda c: c < v[0], lambda c: c > v[1]),
    "BEGINS_WITH": lambda v: (lambda c: c < v[0], lambda c: c > v[0] and not c.startswith(v[0])),
}
_ALIASES = {"EQ": "=", "LT": "<", "LE": "<=", "GT": ">", "GE": ">="}
_ARITY = {"BETWEEN": 2}


def query(
    table: Any,
    hash_key: Any,
    range_comparison: str | None,
    range_objs: list[Any],
    limit: int | None,
    exclusive_start_key: dict[str, Any] | None,
    scan_index_forward: bool,
    projection_expressions: list[list[str]] | None,
    index_name: str | None = None,
    consistent_read: bool = False,
    filter_expression: Any = None,
    hash_key_conditions: list[tuple[str, Any]] | None = None,
    range_key_conditions: list[tuple[str, str, list[Any]]] | None = None,
    **filter_kwargs: Any,
) -> tuple[list[Any], int, dict[str, Any] | None]:
    """``Table.query``'s answer from the sorted partitions; raises :class:`Unsupported` to leave it to moto."""
    if filter_kwargs or (limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1)):
        raise Unsupported
    index = index_of(table, build=True)
    if index is None:  # pragma: no cover - built above
        raise Unsupported
    spec = index.specs.get(index_name)
    if spec is None:
        raise Unsupported  # no such index (moto's error), or a multi-attribute key
    value = _partition_value(table, spec, hash_key, hash_key_conditions, consistent_read)
    try:
        partition = index.partition(table, spec, value)
    except _StaleError:
        drop(table)
        raise Unsupported from None
    bound = size_bound(table)
    if bound > RESULT_SIZE_LIMIT:
        raise Unsupported  # an item larger than a page: moto's loop would fail on it
    keys: list[tuple[Any, ...]] = partition.keys if partition is not None else []
    items: list[Any] = partition.items if partition is not None else []
    lo, hi = 0, len(keys)
    if range_comparison:
        lo, hi = _block(spec, partition, range_comparison, range_objs, range_key_conditions)
    elif range_key_conditions:
        raise Unsupported
    start = _start(spec, partition, exclusive_start_key, scan_index_forward)
    results: list[Any] = []
    result_size = 0
    last_evaluated_key = None
    step = 1 if scan_index_forward else -1
    if scan_index_forward:
        at, end = max(lo, start if start is not None else 0), hi
    else:
        at, end = min(hi, start if start is not None else len(keys)) - 1, lo - 1
    while at < end if scan_index_forward else at > end:
        item = items[at]
        item_size = item.size()
        if (limit is not None and len(results) == limit) or result_size + item_size > RESULT_SIZE_LIMIT:
            last_evaluated_key = table._get_last_evaluated_key(results[-1], index_name)
            break
        if range_comparison and not _matches(spec, item, range_comparison, range_objs):
            raise Unsupported  # the run is not what moto's comparison keeps (never seen): let moto answer
        results.append(item)
        result_size += item_size
        at += step
    else:
        # moto's loop goes on through the items past the run, which it never keeps: it stops with a
        # LastEvaluatedKey at the first one if the page is full, or if one would overflow the page.
        rest = range(at, len(keys)) if scan_index_forward else range(at, -1, -1)
        if results and len(rest):
            full = limit is not None and len(results) == limit
            if full or (
                result_size + bound > RESULT_SIZE_LIMIT
                and any(result_size + items[i].size() > RESULT_SIZE_LIMIT for i in rest)
            ):
                last_evaluated_key = table._get_last_evaluated_key(results[-1], index_name)
    scanned_count = len(results)
    # moto's own ending of Table.query, on the same items.
    results = copy.deepcopy(results)
    if index_name:
        projected_by = table.get_index(index_name)
        results = [projected_by.project(r) for r in results]
    if filter_expression is not None:
        results = [item for item in results if filter_expression.expr(item)]
    if projection_expressions:
        results = [r.project(projection_expressions) for r in results]
    return results, scanned_count, last_evaluated_key


def _partition_value(
    table: Any,
    spec: KeySpec,
    hash_key: Any,
    hash_key_conditions: list[tuple[str, Any]] | None,
    consistent_read: bool,
) -> Any:
    """The partition key value moto's query keeps items by."""
    if spec.name is None:
        if hash_key is None:
            raise Unsupported
        return hash_key
    index = table.get_index(spec.name)
    if consistent_read and index in table.global_indexes:
        raise Unsupported  # moto's ValidationException
    conditions = dict(hash_key_conditions or [])
    if list(conditions) != [spec.hash_attr]:
        raise Unsupported
    return conditions[spec.hash_attr]


def _block(
    spec: KeySpec,
    partition: Partition | None,
    comparison: str,
    range_objs: list[Any],
    range_key_conditions: list[tuple[str, str, list[Any]]] | None,
) -> tuple[int, int]:
    """The run of the partition (ascending positions ``lo`` to ``hi``) a sort key condition keeps."""
    compared = range_key_conditions[-1][0] if range_key_conditions else spec.range_attr
    if spec.range_attr is None or compared != spec.range_attr or len(range_key_conditions or ()) > 1:
        raise Unsupported
    if len(spec.sort_attrs) < 2 or spec.sort_attrs[1] != spec.range_attr:  # pragma: no cover - moto's order
        raise Unsupported
    operator = _ALIASES.get(comparison, comparison)
    if operator not in _BELOW_ABOVE or len(range_objs) != _ARITY.get(operator, 1):
        raise Unsupported
    if partition is None:
        return 0, 0
    kind = partition.types[1]
    if any(o.type != kind for o in range_objs) or (operator == "BEGINS_WITH" and kind != "S"):
        raise Unsupported  # moto compares across types (or fails): let it
    below, above = _BELOW_ABOVE[operator]([o.cast_value for o in range_objs])
    lo = bisect.bisect_left(partition.keys, True, key=lambda k: not below(k[1]))
    hi = bisect.bisect_left(partition.keys, True, lo=lo, key=lambda k: above(k[1]))
    return lo, hi


def _matches(spec: KeySpec, item: Any, comparison: str, range_objs: list[Any]) -> bool:
    """moto's own key condition test of one item."""
    return bool(item.attrs[spec.range_attr].compare(comparison, range_objs))


def _start(
    spec: KeySpec, partition: Partition | None, exclusive_start_key: dict[str, Any] | None, forward: bool
) -> int | None:
    """Where moto's walk starts after ``ExclusiveStartKey`` (ascending position; None: none given).

    moto skips the leading items that "come before" the key (``Table._item_comes_before_dct``): going
    forward those whose sort key is at most the start key's, going backward those at least it.
    """
    if exclusive_start_key is None:
        return None
    from moto.dynamodb.models.dynamo_type import DynamoType

    if partition is None:
        return 0
    values = []
    for attribute, kind in zip(spec.sort_attrs, partition.types, strict=True):
        raw = exclusive_start_key.get(attribute)
        if not isinstance(raw, dict) or len(raw) != 1:
            raise Unsupported
        try:
            value = DynamoType(raw)
            cast = value.cast_value
        except Exception:  # whatever moto makes of a malformed key, it answers it
            raise Unsupported from None
        if value.type != kind:
            raise Unsupported
        values.append(cast)
    key = tuple(values)
    return bisect.bisect_right(partition.keys, key) if forward else bisect.bisect_left(partition.keys, key)
