"""DynamoDB's limits on what it stores, checked before every write (no boto3 here).

``Store.call`` hands every request to :func:`check_request`, so no path reaches AWS's
``ValidationException`` for an item it would refuse:

- an item over 400 KB (409,600 bytes counted as AWS counts them: attribute names and string
  values in UTF-8 bytes, numbers ~1 byte per two significant digits + 1, binary by length,
  booleans and nulls 1 byte, lists and maps 3 bytes + 1 per element + their elements, map
  keys by their UTF-8 bytes), or a transaction over 4 MB: ``ItemTooLargeError`` (413);
- a transaction of more than 100 actions or naming an item twice, a BatchGetItem of more than
  100 keys, a BatchWriteItem naming an item twice (two Puts, two Deletes, or a Put and a Delete:
  AWS refuses each; moto only the first two): ``ItemInvalidError`` (the bulk writers pack within
  these: ``DeploymentStore.write_many``);
- a key attribute (``PK``/``SK`` and every GSI key) over 2048 bytes (partition) or 1024 bytes
  (sort) of UTF-8: ``KeyTooLargeError`` (400). Names come from clients, so both are client
  errors, rendered in each dialect's shape; the dialects also cap names in UTF-8 bytes to
  name the field (``dialects.limits``);
- an empty key value, an empty map key, nesting deeper than 32 levels: ``ItemInvalidError``, an
  internal error (the boundary refuses such input; reaching here is a bug).

Numbers DynamoDB cannot hold (more than 38 significant digits, magnitude outside 1E-130 ..
9.99E+125, NaN, infinities) fail in :func:`dal.aws.serialize` with ``ItemInvalidError``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from dora_insights.dal import keys
from dora_insights.errors import ItemInvalidError, ItemTooLargeError, KeyTooLargeError

MAX_ITEM_BYTES = 400 * 1024
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
MAX_TRANSACTION_ACTIONS = 100  # actions of one TransactWriteItems, no two on the same item
MAX_BATCH_GET_KEYS = 100  # keys of one BatchGetItem (its answer: 16 MB at most, the rest UnprocessedKeys)
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024
MAX_DEPTH = 32  # nested levels of lists and maps inside one attribute value

_PARTITION_KEYS = frozenset(names[0] for names in keys.INDEX_KEYS.values())
_SORT_KEYS = frozenset(names[1] for names in keys.INDEX_KEYS.values())


def _number_size(text: str) -> int:
    try:
        digits = len(Decimal(text).normalize().as_tuple().digits)
    except InvalidOperation:
        digits = len(text)
    return math.ceil(digits / 2) + 1


def value_size(value: Mapping[str, Any], *, depth: int = 0) -> int:
    """Bytes of one attribute value in DynamoDB wire form (``{"S": ...}``, ``{"M": {...}}``...)."""
    if depth > MAX_DEPTH:
        raise ItemInvalidError(f"a value is nested deeper than DynamoDB's {MAX_DEPTH} levels")
    ((kind, payload),) = value.items()
    if kind == "S":
        return len(payload.encode("utf-8", errors="surrogatepass"))
    if kind == "N":
        return _number_size(payload)
    if kind == "B":
        return len(payload)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(value_size(v, depth=depth + 1) + 1 for v in payload)
    if kind == "M":
        size = 3
        for name, element in payload.items():
            if not name:
                raise ItemInvalidError("a map holds an empty key, which DynamoDB refuses")
            size += len(name.encode("utf-8", errors="surrogatepass")) + value_size(element, depth=depth + 1) + 1
        return size
    if kind in ("SS", "NS", "BS"):
        if not payload:
            raise ItemInvalidError("an empty set cannot be stored")
        return sum(value_size({kind[0]: v}) for v in payload)
    raise ItemInvalidError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Bytes of an item in DynamoDB wire form, as AWS counts them for the 400 KB limit."""
    return sum(len(name.encode("utf-8", errors="surrogatepass")) + value_size(value) for name, value in item.items())


def check_key_value(name: str, value: str) -> None:
    """A key attribute's value: non-empty, within its UTF-8 byte limit (``KeyTooLargeError`` otherwise)."""
    if not value:
        raise ItemInvalidError(f"key attribute {name} is empty, which DynamoDB refuses")
    limit = MAX_SORT_KEY_BYTES if name in _SORT_KEYS else MAX_PARTITION_KEY_BYTES
    size = len(value.encode("utf-8", errors="surrogatepass"))
    if size > limit:
        kind = "sort" if name in _SORT_KEYS else "partition"
        raise KeyTooLargeError(
            f"a name or id is too long to be stored: it makes a {kind} key of {size} bytes of UTF-8"
            f" ('{value[:48]}…'), over DynamoDB's {limit}-byte limit; use a shorter name",
        )


def check_keys(attributes: Mapping[str, Mapping[str, Any]]) -> None:
    """Every key attribute among ``attributes`` (wire form): a non-empty string within its byte limit."""
    for name, value in attributes.items():
        if name in _PARTITION_KEYS or name in _SORT_KEYS:
            text = value.get("S") if isinstance(value, Mapping) else None
            if not isinstance(text, str):
                raise ItemInvalidError(f"key attribute {name} must be a string")
            check_key_value(name, text)


def check_item(item: Mapping[str, Mapping[str, Any]]) -> int:
    """An item about to be written: its keys, nesting and size; returns its size in bytes."""
    check_keys(item)
    size = item_size(item)
    if size > MAX_ITEM_BYTES:
        kind = item.get(keys.TYPE, {}).get("S", "item")
        raise ItemTooLargeError(
            f"this would store a {kind} of {size:,} bytes, over DynamoDB's {MAX_ITEM_BYTES:,}-byte (400 KB)"
            " item limit; send less (shorter texts, fewer entries)"
        )
    return size


def _transaction_items(operations: Iterable[Mapping[str, Any]]) -> int:
    total = 0
    for operation in operations:
        for action, body in operation.items():
            if action == "Put":
                total += check_item(body["Item"])
            else:  # Update, Delete, ConditionCheck
                check_keys(body.get("Key", {}))
                total += _values_size(body)
    return total


def _values_size(body: Mapping[str, Any]) -> int:
    """Bytes an update adds at most (the expression values; the stored item is not known here)."""
    values = body.get("ExpressionAttributeValues") or {}
    return sum(value_size(v) for v in values.values())


def action_key(body: Mapping[str, Any]) -> tuple[str, str]:
    """Which item of which table a transaction action (its body, serialized) names."""
    return item_key(str(body.get("TableName")), body.get("Key") or body.get("Item") or {})


def item_key(table: str, item: Mapping[str, Any]) -> tuple[str, str]:
    """Which item of which table a request names (its table and primary key, comparable)."""
    return table, repr(sorted((name, repr(item.get(name))) for name in (keys.PK, keys.SK)))


def check_transaction_shape(operations: Sequence[Mapping[str, Any]]) -> None:
    """A TransactWriteItems AWS accepts: at most 100 actions, no item named by two of them (moto
    refuses both too, but a bulk writer must never get there: ``ItemInvalidError``, a bug)."""
    if len(operations) > MAX_TRANSACTION_ACTIONS:
        raise ItemInvalidError(f"a transaction of {len(operations)} actions, over DynamoDB's {MAX_TRANSACTION_ACTIONS}")
    seen: set[tuple[str, str]] = set()
    for operation in operations:
        for body in operation.values():
            named = action_key(body)
            if named in seen:
                raise ItemInvalidError("a transaction names one item twice, which DynamoDB refuses")
            seen.add(named)


def check_request(operation: str, request: Mapping[str, Any]) -> None:
    """Refuse a DynamoDB request AWS would refuse for its items' or keys' sizes (module docstring)."""
    if operation == "put_item":
        check_item(request["Item"])
    elif operation == "transact_write_items":
        total = _transaction_items(request["TransactItems"])
        if total > MAX_TRANSACTION_BYTES:
            raise ItemTooLargeError(
                f"this would write {total:,} bytes in one transaction, over DynamoDB's 4 MB; send less"
            )
        check_transaction_shape(request["TransactItems"])
    elif operation == "batch_write_item":
        named: set[tuple[str, str]] = set()
        for table, writes in request["RequestItems"].items():
            for write in writes:
                if "PutRequest" in write:
                    item = write["PutRequest"]["Item"]
                    check_item(item)
                else:
                    item = write["DeleteRequest"]["Key"]
                    check_keys(item)
                key = item_key(table, item)
                if key in named:
                    raise ItemInvalidError("a BatchWriteItem names one item twice, which DynamoDB refuses")
                named.add(key)
    elif operation in ("get_item", "delete_item", "update_item"):
        check_keys(request["Key"])
        if operation == "update_item" and _values_size(request) > MAX_ITEM_BYTES:
            raise ItemTooLargeError(f"this update would store more than DynamoDB's {MAX_ITEM_BYTES:,}-byte item limit")
    elif operation == "transact_get_items":
        for wanted in request["TransactItems"]:
            check_keys(wanted["Get"]["Key"])
    elif operation == "batch_get_item":
        if sum(len(wanted["Keys"]) for wanted in request["RequestItems"].values()) > MAX_BATCH_GET_KEYS:
            raise ItemInvalidError(f"a BatchGetItem names more than DynamoDB's {MAX_BATCH_GET_KEYS} keys")
        for wanted in request["RequestItems"].values():
            for key in wanted["Keys"]:
                check_keys(key)
