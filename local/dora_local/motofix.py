"""moto's DynamoDB as the local runtime and the tests run it: fast where moto is slow, told of every write.

Four narrow patches of moto 5.2.5 (``install``; any other version is left alone, with a warning), each
behaving as moto does (``tests/unit/local/test_moto_query_patch.py`` compares them with unpatched moto):

- ``Table.query`` reads the partition it names, in order, from the sorted partitions of
  :mod:`dora_local.motoindex` instead of sorting the whole table on every call (docs/moto-query-patch.md).
- ``TransactWriteItems`` undoes a failed transaction by putting back the items it named, saved before
  it ran, instead of copying every table it names (moto copies the whole table once per item of the
  transaction, before writing anything, only to restore the copy on failure). A transaction this cannot
  plan (an item without its key, a table with a stream) copies each table once, as this module did before.
- The items of ``Query``, ``Scan``, ``GetItem`` and ``BatchGetItem`` answers are written to JSON directly
  (``json.dumps`` of the AttributeValues, binaries in base64) instead of by moto's generic serializer, which
  walks botocore's shape of every nested value (~4 ms per item of a few nested maps); the rest of each
  answer is still moto's (``tests/unit/local/test_moto_item_answers.py`` compares both on every type).
- Every backend call that writes items (``PutItem``, ``UpdateItem``, ``DeleteItem``, each item of a
  ``BatchWriteItem``, ``TransactWriteItems``, a PartiQL statement or transaction) is one *write unit*:
  the write hooks keep the sorted partitions current, and once the outermost call is done the write
  listeners are told which keys it wrote (:func:`add_listener`; the data directory's journal is one,
  :mod:`dora_local.persistence`), before moto answers.

moto 5.2.5 changes items only through ``Table.put_item``, ``Table.delete_item`` and
``DynamoDBBackend.update_item`` (which updates the stored item in place), and a failed transaction by
putting its table copies back: the hooks wrap exactly those. All of it runs under one lock
(:data:`LOCK`): moto's threaded server answers requests on many threads.
"""

from __future__ import annotations

import base64
import copy
import json
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dora_local import motoindex

__all__ = [
    "LOCK",
    "VERIFIED_MOTO_VERSIONS",
    "Change",
    "WriteNotKeptError",
    "add_guard",
    "add_listener",
    "bulk_load",
    "install",
    "item_json",
    "mock_aws",
    "remove_guard",
    "remove_listener",
    "stored_item",
    "unpatched",
    "value_json",
]

VERIFIED_MOTO_VERSIONS = ("5.2.5",)  # moto versions whose code paths these patches were written and tested against
LOCK = threading.RLock()  # every hooked write and patched query

_BYPASS: ContextVar[bool] = ContextVar("dora_local_moto_unpatched", default=False)
_NO_TABLE_COPY: ContextVar[bool] = ContextVar("dora_local_moto_no_table_copy", default=False)
_COPIES: ContextVar[dict[int, Any] | None] = ContextVar("dora_local_moto_table_copies", default=None)
_UNIT: ContextVar[_Unit | None] = ContextVar("dora_local_moto_write_unit", default=None)
_LISTENERS: list[Callable[[list[Change]], None]] = []
_GUARDS: list[Callable[[], None]] = []
_INSTALLED: list[bool] = []

TableId = tuple[str, str, str]  # account, region, table name
Key = tuple[Any, Any]  # moto DynamoTypes: the hash key and the range key (None without one)


class WriteNotKeptError(Exception):
    """Raised by a write listener or guard when a write cannot be kept (the data directory cannot be
    written): it is not swallowed, so the backend call fails and moto answers 500 instead of a success."""


@dataclass
class Change:
    """What one write unit changed in one table: the keys it wrote, or ``keys`` None when it cannot tell
    (the whole table may have changed)."""

    account_id: str
    region: str
    table: str
    keys: list[Key] | None


@dataclass
class _Unit:
    depth: int = 0
    keys: dict[TableId, dict[Key, None]] = field(default_factory=dict)
    whole: set[TableId] = field(default_factory=set)
    active: set[tuple[int, Any, Any]] = field(default_factory=set)

    def touch(self, table: Any, key: Key) -> None:
        self.keys.setdefault(_table_id(table), {})[key] = None

    def changes(self) -> list[Change]:
        ids = list(dict.fromkeys([*self.keys, *self.whole]))
        return [Change(*i, keys=None if i in self.whole else list(self.keys[i])) for i in ids]


# ----------------------------------------------------------------------------------------------- install
def install() -> bool:
    """Patch moto's DynamoDB backend (idempotent; moto is imported here). False: moto is not a version
    these patches were verified against, and it runs unpatched (correct, slow, and no write listener is told)."""
    with LOCK:
        if _INSTALLED:
            return _INSTALLED[0]
        import moto

        if moto.__version__ not in VERIFIED_MOTO_VERSIONS:
            print(
                f"dora_local: moto {moto.__version__} is not {' or '.join(VERIFIED_MOTO_VERSIONS)}, which "
                "local/dora_local/motofix.py was verified with: moto runs unpatched (queries and transactions "
                "slow down with the table's size)",
                file=sys.stderr,
            )
            _INSTALLED.append(False)
            return False
        _patch()
        _INSTALLED.append(True)
        return True


def installed() -> bool:
    """Whether :func:`install` patched moto."""
    return bool(_INSTALLED and _INSTALLED[0])


def mock_aws() -> Any:
    """moto's ``mock_aws()``, with moto patched as the local runtime runs it."""
    install()
    from moto import mock_aws as moto_mock_aws

    return moto_mock_aws()


@contextmanager
def unpatched() -> Iterator[None]:
    """moto's own ``Table.query``, ``TransactWriteItems`` and answer serializer in this thread for the block
    (the write hooks still keep the sorted partitions current): what the property tests compare the patches with."""
    token = _BYPASS.set(True)
    try:
        yield
    finally:
        _BYPASS.reset(token)


def add_listener(listener: Callable[[list[Change]], None]) -> None:
    """Call ``listener`` with the changes of every write unit once it is done, under :data:`LOCK`."""
    with LOCK:
        _LISTENERS.append(listener)


def remove_listener(listener: Callable[[list[Change]], None]) -> None:
    with LOCK:
        if listener in _LISTENERS:
            _LISTENERS.remove(listener)


def add_guard(guard: Callable[[], None]) -> None:
    """Call ``guard`` before every write unit starts, under :data:`LOCK`: if it raises (a
    :class:`WriteNotKeptError`), the write is not made and the backend call fails with that error."""
    with LOCK:
        _GUARDS.append(guard)


def remove_guard(guard: Callable[[], None]) -> None:
    with LOCK:
        if guard in _GUARDS:
            _GUARDS.remove(guard)


def _patch() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    put_item, delete_item, query = Table.put_item, Table.delete_item, Table.query
    update_item, transact = DynamoDBBackend.update_item, DynamoDBBackend.transact_write_items

    def table_put_item(self: Any, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        key = _key_of(self, item_attrs)
        if key is None:  # moto refuses it before writing anything
            return put_item(self, item_attrs, *args, **kwargs)
        with _key_write(self, key):
            return put_item(self, item_attrs, *args, **kwargs)

    def table_delete_item(self: Any, hash_key: Any, range_key: Any) -> Any:
        if (self.range_key_attr is None) != (range_key is None):
            with _unknown_write(self):
                return delete_item(self, hash_key, range_key)
        with _key_write(self, (hash_key, range_key)):
            return delete_item(self, hash_key, range_key)

    def table_query(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _BYPASS.get():
            with LOCK:
                try:
                    return motoindex.query(self, *args, **kwargs)
                except motoindex.Unsupported:
                    pass
        return query(self, *args, **kwargs)

    def backend_update_item(self: Any, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        table = self.tables.get(table_name)
        target = _key_of(table, key) if table is not None else None
        if target is None:
            with _unknown_write(table):
                return update_item(self, table_name, key, *args, **kwargs)
        with _key_write(table, target, in_place=True):
            return update_item(self, table_name, key, *args, **kwargs)

    def backend_transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        with _unit():
            if _BYPASS.get():
                return _whole_on_failure(self, transact_items, lambda: transact(self, transact_items))
            plan = _undo_plan(self, transact_items)
            if plan is None:
                return _whole_on_failure(self, transact_items, lambda: _copying_once(transact, self, transact_items))
            token = _NO_TABLE_COPY.set(True)  # moto's backup copies are the tables themselves: nothing to copy
            try:
                transact(self, transact_items)
            except BaseException:
                for table, key, saved in plan:
                    with _key_write(table, key):
                        _store(table, key, saved)
                raise
            finally:
                _NO_TABLE_COPY.reset(token)

    def table_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
        if _NO_TABLE_COPY.get():
            return self
        copies = _COPIES.get()
        if copies is not None and id(self) in copies:
            return copies[id(self)]
        # What copy.deepcopy does for an object without __deepcopy__, minus the sorted partitions.
        cls: Any = type(self)
        clone = cls.__new__(cls)
        memo[id(self)] = clone
        for name, value in self.__dict__.items():
            if name != motoindex.INDEX_ATTRIBUTE:
                clone.__dict__[name] = copy.deepcopy(value, memo)
        if copies is not None:
            copies[id(self)] = clone
        return clone

    Table.put_item = table_put_item  # type: ignore[method-assign]
    Table.delete_item = table_delete_item  # type: ignore[method-assign]
    Table.query = table_query  # type: ignore[method-assign]
    Table.__deepcopy__ = table_deepcopy  # type: ignore[attr-defined]
    DynamoDBBackend.update_item = backend_update_item  # type: ignore[method-assign]
    DynamoDBBackend.transact_write_items = backend_transact_write_items  # type: ignore[method-assign]
    for name in ("execute_statement", "execute_transaction", "batch_execute_statement"):
        setattr(DynamoDBBackend, name, _as_unit(getattr(DynamoDBBackend, name)))
    _patch_item_answers()


# Answers whose items moto's generic serializer walks value by value against botocore's shape of an
# AttributeValue (~4 ms per item of a few nested maps: 0.9 s for 200 stream registrations): where the items
# sit in each answer. The items are written here as that serializer writes them; the rest of the answer
# (counts, LastEvaluatedKey, headers) is still moto's own.
_ITEM_FIELDS = {"Query": "Items", "Scan": "Items", "GetItem": "Item", "BatchGetItem": "Responses"}


class _UnencodableError(Exception):
    """A value this encoder does not know: the answer goes through moto's serializer."""


def _patch_item_answers() -> None:
    from moto.dynamodb.responses import DynamoResult

    execute_result = DynamoResult.execute_result

    def fast_execute_result(self: Any, context: Any) -> Any:
        field = _ITEM_FIELDS.get(str(getattr(context.operation_model, "name", "")))
        result = self.result
        if _BYPASS.get() or field is None or not isinstance(result, dict) or field not in result:
            return execute_result(self, context)
        try:
            encoded = _encode_items(field, result[field])
        except _UnencodableError:
            return execute_result(self, context)
        rest = copy.copy(self)
        rest._result = {**result, field: {} if field != "Items" else []}  # moto serialises the rest
        status, headers, body = execute_result(rest, context)
        answer = json.loads(body)
        answer[field] = encoded
        return status, headers, json.dumps(answer)

    DynamoResult.execute_result = fast_execute_result  # type: ignore[method-assign]


def _encode_items(field: str, value: Any) -> Any:
    """The items of an answer's ``field`` as moto's JSON serializer writes them."""
    if field == "Item":
        return _encode_item(value)
    if field == "Responses":
        if not isinstance(value, dict):
            raise _UnencodableError(field)
        return {table: [_encode_item(i) for i in items] for table, items in value.items()}
    if not isinstance(value, list):
        raise _UnencodableError(field)
    return [_encode_item(i) for i in value]


def _encode_item(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _UnencodableError(type(item).__name__)
    return {name: _encode_value(value) for name, value in item.items()}


def _blob(value: Any) -> str:
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, bytes | bytearray):
        raise _UnencodableError(type(value).__name__)
    return base64.b64encode(value).strip().decode("utf-8")


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise _UnencodableError(type(value).__name__)
    return value


def _encode_value(value: Any) -> dict[str, Any]:
    """One AttributeValue (members left out when None, as the serializer does)."""
    if not isinstance(value, dict):
        raise _UnencodableError(type(value).__name__)
    encoded: dict[str, Any] = {}
    for kind, inner in value.items():
        if inner is None:
            continue
        if kind in ("S", "N"):
            encoded[kind] = _text(inner)
        elif kind == "B":
            encoded[kind] = _blob(inner)
        elif kind in ("SS", "NS"):
            encoded[kind] = [_text(v) for v in inner]
        elif kind == "BS":
            encoded[kind] = [_blob(v) for v in inner]
        elif kind == "M":
            encoded[kind] = {name: _encode_value(v) for name, v in inner.items()}
        elif kind == "L":
            encoded[kind] = [_encode_value(v) for v in inner]
        elif kind in ("NULL", "BOOL") and isinstance(inner, bool):
            encoded[kind] = inner
        else:
            raise _UnencodableError(kind)
    return encoded


def _as_unit(method: Callable[..., Any]) -> Callable[..., Any]:
    def in_one_unit(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _unit():
            return method(self, *args, **kwargs)

    in_one_unit.__name__ = method.__name__
    return in_one_unit


# ----------------------------------------------------------------------------------------------- write units
@contextmanager
def _unit() -> Iterator[_Unit]:
    """One write unit (the outermost hooked call); the listeners are told of it when it ends."""
    with LOCK:
        unit = _UNIT.get()
        token = None
        if unit is None:
            for guard in list(_GUARDS):
                guard()
            unit = _Unit()
            token = _UNIT.set(unit)
        unit.depth += 1
        try:
            yield unit
        finally:
            unit.depth -= 1
            if token is not None:
                _UNIT.reset(token)
                changes = unit.changes()
                for listener in list(_LISTENERS) if changes else ():
                    try:
                        listener(changes)
                    except WriteNotKeptError:
                        raise  # the write is not kept: moto must not answer success
                    except Exception:  # moto's write is done: a listener's failure is its own
                        traceback.print_exc()


@contextmanager
def _key_write(table: Any, key: Key, *, in_place: bool = False) -> Iterator[None]:
    """A write of one item (``in_place``: moto may change the stored item itself) inside a write unit."""
    with _unit() as unit:
        ident = (id(table), *key)
        if ident in unit.active:  # UpdateItem's own put of a new item: the outer write covers it
            yield
            return
        unit.active.add(ident)
        old = stored_item(table, key)
        old_entries = motoindex.entries_before(table, old)
        try:
            yield
        finally:
            unit.active.discard(ident)
            new = stored_item(table, key)
            if new is not old or in_place:
                motoindex.maintain(table, old, old_entries, new)
                if in_place and new is not None:
                    motoindex.note_size(table, new.size())
            unit.touch(table, key)


@contextmanager
def _unknown_write(table: Any) -> Iterator[None]:
    """A write whose key this module cannot tell (moto refuses most of them): the whole table may change."""
    with _unit() as unit:
        try:
            yield
        finally:
            if table is not None:
                motoindex.drop(table)
                unit.whole.add(_table_id(table))


def _whole_on_failure(backend: Any, transact_items: list[dict[str, Any]], run: Callable[[], None]) -> None:
    """Run a transaction that restores whole tables from copies if it fails (moto's way): then the
    tables it names may differ anywhere from what the write hooks saw."""
    try:
        run()
    except BaseException:
        unit = _UNIT.get()
        for entry in transact_items:
            op = next(iter(entry.values()), None) if isinstance(entry, dict) else None
            table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            if table is not None:
                motoindex.drop(table)
                if unit is not None:
                    unit.whole.add(_table_id(table))
        raise


def _copying_once(transact: Callable[[Any, Any], None], backend: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's transaction with each table copied once, not once per item (the copies are equal: they are
    all taken before anything is written)."""
    token = _COPIES.set({})
    try:
        transact(backend, transact_items)
    finally:
        _COPIES.reset(token)


def _undo_plan(backend: Any, transact_items: Any) -> list[tuple[Any, Key, Any]] | None:
    """Per item of the transaction: its table, its key and a copy of what is stored there now; None when
    an item's table or key cannot be told (moto then fails the transaction its own way) or has a stream."""
    if not isinstance(transact_items, list):
        return None
    plan = []
    for entry in transact_items:
        if not isinstance(entry, dict) or len(entry) != 1:
            return None
        kind, op = next(iter(entry.items()))
        if kind not in ("ConditionCheck", "Put", "Delete", "Update") or not isinstance(op, dict):
            return None
        table = backend.tables.get(op.get("TableName"))
        if table is None or table.stream_shard is not None:
            return None
        key = _key_of(table, op.get("Item") if kind == "Put" else op.get("Key"))
        if key is None:
            return None
        plan.append((table, key, copy.deepcopy(stored_item(table, key))))
    return plan


# ----------------------------------------------------------------------------------------------- items
def _table_id(table: Any) -> TableId:
    return (table.account_id, table.region_name, table.name)


def _key_of(table: Any, attrs: Any) -> Key | None:
    """The table's key of an item or key in DynamoDB JSON, as moto reads it; None if it has none."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    if table is None or not isinstance(attrs, dict):
        return None
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    values = [attrs.get(name) for name in names]
    if any(not isinstance(v, dict) or len(v) != 1 for v in values):
        return None
    try:
        typed = [DynamoType(v) for v in values if v is not None]
    except Exception:  # moto refuses such a key itself
        return None
    return (typed[0], typed[1] if len(typed) > 1 else None)


def stored_item(table: Any, key: Key) -> Any:
    """The item stored at ``key`` (moto's ``Item``), or None; unlike ``Table.get_item`` it never adds an
    empty partition to the table."""
    from moto.dynamodb.models.dynamo_type import Item

    stored = table.items.get(key[0])
    if table.range_key_attr is None:
        return stored if isinstance(stored, Item) else None
    return stored.get(key[1]) if isinstance(stored, dict) else None


def _store(table: Any, key: Key, item: Any) -> None:
    """Put ``item`` (None: nothing) at ``key``, as moto stores items, without moto's checks."""
    hash_key, range_key = key
    if table.range_key_attr is None:
        if item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item
    elif item is None:
        partition = table.items.get(hash_key)
        if isinstance(partition, dict):
            partition.pop(range_key, None)
    else:
        table.items[hash_key][range_key] = item


def item_json(item: Any) -> dict[str, Any]:
    """An item (moto's ``Item``) in DynamoDB JSON, as ``GetItem`` answers it (binary values base64)."""
    return {name: value_json(value) for name, value in item.attrs.items()}


def value_json(value: Any) -> Any:
    """A value (moto's ``DynamoType``) in DynamoDB JSON."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    if not isinstance(value, DynamoType):
        return value
    if value.is_map():
        return {"M": {k: value_json(v) for k, v in value.value.items()}}
    if value.is_list():
        return {"L": [value_json(v) for v in value.value]}
    raw = value.value
    if isinstance(raw, bytes):
        raw = base64.b64encode(raw).decode()
    elif value.is_set():
        raw = [base64.b64encode(v).decode() if isinstance(v, bytes) else v for v in raw]
    return {value.type: raw}


def bulk_load(table: Any, items: Iterable[dict[str, Any]], *, size_bound: int = 0) -> int:
    """Store ``items`` (DynamoDB JSON, each with the table's key; a later one replaces an earlier one of
    the same key) straight into the table, without moto's checks (they passed when the items were first
    written) and without telling the write listeners; ``size_bound``: no item is larger (bytes). The
    table's sorted partitions are rebuilt on its next query. The number of items stored."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    count = 0
    with LOCK:
        motoindex.drop(table)
        for attrs in items:
            key = _key_of(table, attrs)
            if key is None:
                raise ValueError(f"an item of {table.name} without its key: {sorted(attrs)}")
            item: Any = Item.__new__(Item)
            item.hash_key, item.range_key = key
            values = LimitedSizeDict.__new__(LimitedSizeDict)
            dict.__init__(values, {name: _typed(value, DynamoType) for name, value in attrs.items()})
            item.attrs = values
            _store(table, key, item)
            count += 1
        motoindex.note_size(table, size_bound)
    return count


def _typed(value: dict[str, Any], dynamo_type: Any) -> Any:
    """``DynamoType(value)`` for DynamoDB JSON, as moto builds it (a list's and a map's members typed too),
    without its per-call checks: loading a table builds millions of them. Only the types' shapes are
    checked (``ValueError``): an unknown type, or a value of another shape, is not an item moto wrote."""
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError(f"{_shown(value)} is not a DynamoDB JSON value (one type and its value)")
    ((kind, raw),) = value.items()
    typed = dynamo_type.__new__(dynamo_type)
    typed.type = kind
    if kind == "L" and isinstance(raw, list):
        typed.value = [_typed(member, dynamo_type) for member in raw]
    elif kind == "M" and isinstance(raw, dict):
        typed.value = {name: _typed(member, dynamo_type) for name, member in raw.items()}
    elif _SCALAR_CHECKS.get(kind, _never)(raw) or (
        kind in _SET_MEMBERS and isinstance(raw, list) and all(map(_SCALAR_CHECKS[_SET_MEMBERS[kind]], raw))
    ):
        typed.value = raw
    else:
        raise ValueError(f"{_shown(value)} is not a DynamoDB JSON value (a known type and its value)")
    return typed


def _number(raw: Any) -> bool:
    """A number as moto keeps it: its text (what clients send), or a JSON number; finite either way."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        return False
    try:
        return Decimal(raw).is_finite()
    except (ArithmeticError, ValueError):
        return False


def _never(raw: Any) -> bool:
    return False


_SCALAR_CHECKS: dict[str, Callable[[Any], bool]] = {
    "S": lambda raw: isinstance(raw, str),
    "N": _number,
    "B": lambda raw: isinstance(raw, (str, bytes, bytearray)),
    "BOOL": lambda raw: isinstance(raw, bool),
    "NULL": lambda raw: isinstance(raw, bool),
}
_SET_MEMBERS = {"SS": "S", "NS": "N", "BS": "B"}


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= 80 else text[:77] + "..."
