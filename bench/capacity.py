"""DynamoDB item sizes and capacity units, computed from the items themselves.

moto reports a constant ConsumedCapacity, so the benchmarks compute what AWS would bill
from the documented rules: an item's size is the sum of its attribute names' and values'
sizes; a write costs one WCU per started KB (two inside a transaction) on the table and on
every GSI the item projects to; a read costs one RCU per started 4 KB if consistent, half
if eventually consistent (two if transactional).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any


def value_size(value: dict[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB wire form (``{"S": ...}`` etc.)."""
    ((kind, payload),) = value.items()
    if kind == "S":
        return len(payload.encode())
    if kind == "N":
        digits = len(str(Decimal(payload)).replace("-", "").replace(".", "").lstrip("0")) or 1
        return math.ceil(digits / 2) + 1
    if kind == "B":
        return len(payload)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in payload)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in payload.items())
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: v}) for v in payload)
    raise ValueError(kind)


def item_size(item: dict[str, Any]) -> int:
    """Bytes of an item in DynamoDB wire form."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(item: dict[str, Any], *, transactional: bool) -> float:
    """WCUs to write the item to the table and to every GSI whose partition key it carries."""
    per_copy = math.ceil(item_size(item) / 1024) * (2 if transactional else 1)
    gsi_copies = sum(1 for name in item if name.startswith("GSI") and name.endswith("PK"))
    return float(per_copy * (1 + gsi_copies))


def read_units(size: int, *, consistent: bool) -> float:
    """RCUs to read ``size`` bytes."""
    units = math.ceil(max(size, 1) / 4096)
    return float(units if consistent else units / 2)
