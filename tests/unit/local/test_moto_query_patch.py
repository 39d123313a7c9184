"""moto patched as the local runtime runs it (``dora_local.motofix``) answers exactly as moto itself.

Each example builds a random table (with or without a sort key; three GSIs: string sort key, no sort key,
number sort key; sparse index attributes; a few items near DynamoDB's item size so the 1 MB page limit
is reached), writes to it with random puts, updates (moving items between index partitions), deletes,
batch writes and transactions (some of which fail and roll back), then asks random Queries: table or
index, partition, sort key conditions (=, <, <=, >, >=, BETWEEN, begins_with), ScanIndexForward, Limit,
FilterExpression, ProjectionExpression, ExclusiveStartKey (followed page by page, or taken from an item,
or malformed). The same operations run on a twin table with moto's own transactions
(``motofix.unpatched()``), and every answer (items, counts, LastEvaluatedKey, or the error) is compared:
patched query vs moto's query on the same table, and across the twins.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dora_local import motofix

PARTITIONS = ["a", "b", "c"]
SORT_TEXT = st.text(alphabet="abé~", min_size=1, max_size=3)
NUMBERS = st.sampled_from(["-1", "0", "0.5", "1", "1.0", "2", "10", "-2.5"])
INDEX_PARTITIONS = ["x", "y", "z"]
INDEX_PARTITION = st.sampled_from(INDEX_PARTITIONS)


@pytest.fixture(scope="module")
def ddb(_moto: None) -> Any:
    """A DynamoDB client on the session's in-process moto (never restarted: that would reset every backend)."""
    motofix.install()
    return boto3.client("dynamodb", region_name="us-east-1")


# ------------------------------------------------------------------------------------------ strategies
def present(draw: st.DrawFn) -> bool:
    return draw(st.integers(0, 3)) > 0


@st.composite
def item_values(draw: st.DrawFn, ranged: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"PK": {"S": draw(st.sampled_from(PARTITIONS))}}
    if ranged:
        item["SK"] = {"S": draw(SORT_TEXT)}
    for name, values in (
        ("G1H", INDEX_PARTITION),
        ("G1R", SORT_TEXT),
        ("G2H", INDEX_PARTITION),
        ("G3H", INDEX_PARTITION),
    ):
        if present(draw):
            item[name] = {"S": draw(values)}
    for name in ("G3N", "v"):
        if present(draw):
            item[name] = {"N": draw(NUMBERS)}
    if present(draw):
        item["tag"] = {"S": draw(st.sampled_from(["red", "blue"]))}
    size = draw(st.sampled_from([0] * 28 + [40, 390_000]))
    if size:
        item["blob"] = {"S": "#" * size}
    return item


@st.composite
def tables(draw: st.DrawFn, ranged: bool) -> list[dict[str, Any]]:
    """Items to start from (one per key), in batches of 25."""
    found = [draw(item_values(ranged)) for _ in range(draw(st.integers(0, 60)))]
    unique = list({repr(key_of(i, ranged)): i for i in found}.values())
    return [unique[i : i + 25] for i in range(0, len(unique), 25)]


def key_of(item: dict[str, Any], ranged: bool) -> dict[str, Any]:
    return {k: item[k] for k in (("PK", "SK") if ranged else ("PK",))}


@st.composite
def keys(draw: st.DrawFn, ranged: bool) -> dict[str, Any]:
    key: dict[str, Any] = {"PK": {"S": draw(st.sampled_from(PARTITIONS))}}
    if ranged:
        key["SK"] = {"S": draw(SORT_TEXT)}
    return key


UPDATES = [
    ("SET G1H = :x, G1R = :r", lambda d: {":x": {"S": d(INDEX_PARTITION)}, ":r": {"S": d(SORT_TEXT)}}),
    ("SET G3N = :n", lambda d: {":n": {"N": d(NUMBERS)}}),
    ("SET G2H = :x", lambda d: {":x": {"S": d(st.sampled_from(INDEX_PARTITIONS))}}),
    ("REMOVE G1R, G3H", lambda d: None),
    ("ADD v :n", lambda d: {":n": {"N": d(NUMBERS)}}),
    ("SET tag = :t", lambda d: {":t": {"S": d(st.sampled_from(["red", "blue"]))}}),
]


@st.composite
def writes(draw: st.DrawFn, ranged: bool) -> dict[str, Any]:
    """One write request: (operation, its arguments but TableName)."""
    kind = draw(st.sampled_from(["put", "put", "put", "update", "delete", "batch", "transact"]))
    if kind == "put":
        return {"op": "put_item", "Item": draw(item_values(ranged))}
    if kind == "update":
        expression, values = draw(st.sampled_from(UPDATES))
        request = {"op": "update_item", "Key": draw(keys(ranged)), "UpdateExpression": expression}
        found = values(draw)
        if found:
            request["ExpressionAttributeValues"] = found
        return request
    if kind == "delete":
        return {"op": "delete_item", "Key": draw(keys(ranged))}
    if kind == "batch":
        puts = draw(st.lists(item_values(ranged), max_size=4, unique_by=lambda i: str(key_of(i, ranged))))
        deletes = draw(st.lists(keys(ranged), max_size=2, unique_by=str))
        return {"op": "batch", "puts": puts, "deletes": deletes}
    ops = []
    for _ in range(draw(st.integers(1, 4))):
        which = draw(st.sampled_from(["Put", "Update", "Delete", "ConditionCheck"]))
        condition = draw(st.sampled_from([None, "attribute_not_exists(PK)", "attribute_exists(PK)"]))
        if which == "Put":
            op: dict[str, Any] = {"Item": draw(item_values(ranged))}
        elif which == "Update":
            expression, values = draw(st.sampled_from(UPDATES))
            op = {"Key": draw(keys(ranged)), "UpdateExpression": expression}
            found = values(draw)
            if found:
                op["ExpressionAttributeValues"] = found
        else:
            op = {"Key": draw(keys(ranged))}
            if which == "ConditionCheck" and condition is None:
                condition = "attribute_exists(PK)"
        if condition:
            op["ConditionExpression"] = condition
        ops.append({which: op})
    return {"op": "transact", "items": ops}


INDEXES: dict[str | None, tuple[str, str | None, str]] = {  # name: partition key, sort key, sort key type
    None: ("PK", "SK", "S"),
    "GS1": ("G1H", "G1R", "S"),
    "GS2": ("G2H", None, "S"),
    "GS3": ("G3H", "G3N", "N"),
}


@st.composite
def queries(draw: st.DrawFn, ranged: bool) -> dict[str, Any]:
    index = draw(st.sampled_from(list(INDEXES)))
    hash_name, range_name, range_type = INDEXES[index]
    if index is None and not ranged:
        range_name = None
    pool = PARTITIONS if index is None else INDEX_PARTITIONS
    names = {"#h": hash_name}
    values: dict[str, Any] = {":h": {"S": draw(st.sampled_from([*pool, "nowhere"]))}}
    condition = "#h = :h"
    operator = draw(st.sampled_from([None, "=", "<", "<=", ">", ">=", "BETWEEN", "begins_with"]))
    if index == "GS2" and draw(st.booleans()):
        range_name = "SK" if ranged else None  # moto refuses a sort key condition on an index without one
    if operator and range_name:
        values_of = NUMBERS if range_type == "N" else SORT_TEXT
        names["#r"] = range_name
        if operator == "BETWEEN":
            low, high = sorted([draw(values_of), draw(values_of)], key=lambda v: float(v) if range_type == "N" else v)
            values[":lo"], values[":hi"] = {range_type: low}, {range_type: high}
            condition += " AND #r BETWEEN :lo AND :hi"
        elif operator == "begins_with":
            values[":p"] = {"S": draw(SORT_TEXT)}
            condition += " AND begins_with(#r, :p)"
        else:
            values[":r"] = {range_type: draw(values_of)}
            condition += f" AND #r {operator} :r"
    request: dict[str, Any] = {
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ScanIndexForward": draw(st.booleans()),
    }
    if index is not None:
        request["IndexName"] = index
    limit = draw(st.one_of(st.none(), st.integers(1, 4)))
    if limit is not None:
        request["Limit"] = limit
    kind = draw(st.sampled_from([None, None, "exists", "greater"]))
    if kind == "exists":
        request["FilterExpression"] = "attribute_exists(tag)"
    elif kind == "greater":
        request["FilterExpression"] = "v > :v"
        request["ExpressionAttributeValues"][":v"] = {"N": "0"}
    if draw(st.integers(0, 5)) == 0:
        request["ProjectionExpression"] = "PK, tag"
    if index in ("GS1", "GS3") and draw(st.integers(0, 9)) == 0:
        request["ConsistentRead"] = True
    start = draw(st.sampled_from(["pages", "pages", "from an item", "malformed"]))
    return {"request": request, "start": start, "pick": draw(st.integers(0, 1000))}


# ------------------------------------------------------------------------------------------ running
def create_table(ddb: Any, ranged: bool) -> str:
    name = f"query-patch-{uuid.uuid4().hex[:12]}"
    definitions = [("PK", "S"), ("G1H", "S"), ("G1R", "S"), ("G2H", "S"), ("G3H", "S"), ("G3N", "N")]
    schema = [{"AttributeName": "PK", "KeyType": "HASH"}]
    if ranged:
        definitions.append(("SK", "S"))
        schema.append({"AttributeName": "SK", "KeyType": "RANGE"})

    def index(name: str, hash_name: str, range_name: str | None) -> dict[str, Any]:
        key = [{"AttributeName": hash_name, "KeyType": "HASH"}]
        if range_name:
            key.append({"AttributeName": range_name, "KeyType": "RANGE"})
        return {"IndexName": name, "KeySchema": key, "Projection": {"ProjectionType": "ALL"}}

    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in definitions],
        KeySchema=schema,
        BillingMode="PAY_PER_REQUEST",
        GlobalSecondaryIndexes=[index("GS1", "G1H", "G1R"), index("GS2", "G2H", None), index("GS3", "G3H", "G3N")],
    )
    return name


def outcome(call: Callable[[], Any]) -> Any:
    """A call's answer without its metadata, or its error (AWS's code and message, or the exception moto raised)."""
    try:
        answer = call()
    except ClientError as error:
        return ("error", error.response["Error"].get("Code"), error.response["Error"].get("Message"))
    except Exception as error:  # moto failing is an answer to compare too
        return ("raised", type(error).__name__, str(error))
    answer.pop("ResponseMetadata", None)
    return answer


def write(ddb: Any, table: str, request: dict[str, Any]) -> Any:
    arguments = {k: v for k, v in request.items() if k != "op"}
    if request["op"] == "batch":
        entries = [{"PutRequest": {"Item": i}} for i in request["puts"]]
        entries += [{"DeleteRequest": {"Key": k}} for k in request["deletes"]]
        if not entries:
            return None
        return outcome(lambda: ddb.batch_write_item(RequestItems={table: entries}))
    if request["op"] == "transact":
        items = [{kind: {**op, "TableName": table}} for entry in request["items"] for kind, op in entry.items()]
        return outcome(lambda: ddb.transact_write_items(TransactItems=items))
    return outcome(lambda: getattr(ddb, request["op"])(TableName=table, **arguments))


def everything(ddb: Any, table: str) -> list[Any]:
    items = ddb.scan(TableName=table)["Items"]
    return sorted(items, key=lambda i: (i["PK"]["S"], i.get("SK", {}).get("S", "")))


def answers(ddb: Any, table: str, query: dict[str, Any], items: list[dict[str, Any]]) -> list[Any]:
    """The query's answers: every page (following LastEvaluatedKey), or one page from a chosen start key."""
    request = {**query["request"], "TableName": table}
    if query["start"] == "pages":
        pages = []
        for _ in range(60):
            page = outcome(lambda: ddb.query(**request))
            pages.append(page)
            if not isinstance(page, dict) or "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return pages
    if not items:
        return []
    item = items[query["pick"] % len(items)]
    names = ["PK", "SK"]
    if "IndexName" in request:
        names += [n for n in INDEXES[request["IndexName"]][:2] if n]
    start = {n: item[n] for n in names if n in item}
    if query["start"] == "malformed" and start:
        start.pop(sorted(start)[query["pick"] % len(start)])
    request["ExclusiveStartKey"] = start
    return [outcome(lambda: ddb.query(**request))]


def same(found: Any, expected: Any, *tables: str) -> bool:
    """Equal but for the table names (an error may name its table)."""
    text = [repr(found), repr(expected)]
    for table in tables:
        text = [t.replace(table, "<table>") for t in text]
    return text[0] == text[1]


EXAMPLES = int(os.environ.get("QUERY_PATCH_EXAMPLES", "60"))  # more for a deeper run


SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=SLOW)
@given(data=st.data())
def test_patched_moto_answers_writes_and_queries_as_moto_does(ddb: Any, data: st.DataObject) -> None:
    ranged = data.draw(st.booleans(), label="the table has a sort key")
    batches = data.draw(tables(ranged), label="items")
    operations = data.draw(st.lists(writes(ranged), max_size=25), label="writes")
    asked = data.draw(st.lists(queries(ranged), min_size=1, max_size=8), label="queries")
    patched, own = create_table(ddb, ranged), create_table(ddb, ranged)
    try:
        for batch in batches:
            for table in (patched, own):
                ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": i}} for i in batch]})
        for request in operations:
            with motofix.unpatched():
                expected = write(ddb, own, request)
            assert same(write(ddb, patched, request), expected, patched, own), request
        items = everything(ddb, patched)
        assert items == everything(ddb, own)
        for query in asked:
            with motofix.unpatched():
                expected = answers(ddb, patched, query, items)
            assert same(answers(ddb, patched, query, items), expected, patched), query
            assert same(answers(ddb, own, query, items), expected, patched, own), query
    finally:
        for table in (patched, own):
            ddb.delete_table(TableName=table)


def test_install_reports_whether_moto_is_patched() -> None:
    assert motofix.install() is motofix.installed()
