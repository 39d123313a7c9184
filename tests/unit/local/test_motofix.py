"""The moto patches' edges, one by one (the property test in test_moto_query_patch.py covers the rest)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from dora_local import motofix, motoindex

BIG = "#" * 390_000  # three such items pass moto's 1 MB page


@pytest.fixture
def ddb(_moto: None) -> Any:
    motofix.install()
    return boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def table(ddb: Any) -> Iterator[str]:
    """A table with a sort key and one index (GSI1PK/GSI1SK), deleted after the test."""
    name = f"motofix-{uuid.uuid4().hex[:12]}"
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("PK", "SK", "GSI1PK", "GSI1SK")],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
        GlobalSecondaryIndexes=[
            {
                "IndexName": "GSI1",
                "KeySchema": [
                    {"AttributeName": "GSI1PK", "KeyType": "HASH"},
                    {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    try:
        yield name
    finally:
        ddb.delete_table(TableName=name)


def moto_table(name: str) -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends["123456789012"]["us-east-1"].get_table(name)


def item(sk: str, **attrs: str) -> dict[str, Any]:
    return {"PK": {"S": "p"}, "SK": {"S": sk}, **{k: {"S": v} for k, v in attrs.items()}}


def both(ddb: Any, **request: Any) -> dict[str, Any]:
    """The patched answer, checked equal to moto's own."""
    with motofix.unpatched():
        expected = ddb.query(**request)
    found = ddb.query(**request)
    for answer in (expected, found):
        answer.pop("ResponseMetadata")
    assert found == expected
    return found


def test_a_full_page_ends_at_the_first_item_past_the_condition_that_would_overflow_it(ddb: Any, table: str) -> None:
    for sk in "ab":
        ddb.put_item(TableName=table, Item=item(sk))
    for sk in "cde":
        ddb.put_item(TableName=table, Item=item(sk, blob=BIG))
    values = {":p": {"S": "p"}, ":lo": {"S": "c"}, ":hi": {"S": "d"}}
    forward = both(
        ddb,
        TableName=table,
        KeyConditionExpression="PK = :p AND SK BETWEEN :lo AND :hi",
        ExpressionAttributeValues=values,
    )
    # moto's quirk, kept: "e" is outside the condition, but would not fit the page, so the page says "more".
    assert [i["SK"]["S"] for i in forward["Items"]] == ["c", "d"]
    assert forward["LastEvaluatedKey"] == {"PK": {"S": "p"}, "SK": {"S": "d"}}
    values = {":p": {"S": "p"}, ":lo": {"S": "d"}, ":hi": {"S": "e"}}
    backward = both(
        ddb,
        TableName=table,
        KeyConditionExpression="PK = :p AND SK BETWEEN :lo AND :hi",
        ExpressionAttributeValues=values,
        ScanIndexForward=False,
    )
    assert [i["SK"]["S"] for i in backward["Items"]] == ["e", "d"]
    assert backward["LastEvaluatedKey"] == {"PK": {"S": "p"}, "SK": {"S": "d"}}


def test_a_full_page_says_more_when_any_item_follows_even_outside_the_condition(ddb: Any, table: str) -> None:
    for sk in ("a", "b", "c"):
        ddb.put_item(TableName=table, Item=item(sk))
    page = both(
        ddb,
        TableName=table,
        KeyConditionExpression="PK = :p AND SK <= :b",
        ExpressionAttributeValues={":p": {"S": "p"}, ":b": {"S": "b"}},
        Limit=2,
    )
    assert [i["SK"]["S"] for i in page["Items"]] == ["a", "b"]
    assert page["LastEvaluatedKey"] == {"PK": {"S": "p"}, "SK": {"S": "b"}}


def test_an_index_query_walks_only_its_partition_from_the_start_key(ddb: Any, table: str) -> None:
    for n in range(30):
        ddb.put_item(TableName=table, Item=item(f"{n:03}", GSI1PK="all" if n % 3 else "third", GSI1SK=f"{99 - n:03}"))
    request = {
        "TableName": table,
        "IndexName": "GSI1",
        "KeyConditionExpression": "GSI1PK = :p AND begins_with(GSI1SK, :s)",
        "ExpressionAttributeValues": {":p": {"S": "all"}, ":s": {"S": "08"}},
        "Limit": 3,
    }
    seen = []
    while True:
        page = both(ddb, **request)
        seen += [i["GSI1SK"]["S"] for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    assert seen == [f"{99 - n:03}" for n in range(19, 9, -1) if n % 3]


def test_a_failed_transaction_puts_back_what_it_wrote_without_copying_the_table(ddb: Any, table: str) -> None:
    ddb.put_item(TableName=table, Item=item("x", GSI1PK="old", GSI1SK="1", note="kept"))
    stored = moto_table(table)
    with pytest.raises(ClientError) as failed:
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"PK": {"S": "p"}, "SK": {"S": "x"}},
                        "UpdateExpression": "SET GSI1PK = :new REMOVE note",
                        "ExpressionAttributeValues": {":new": {"S": "new"}},
                    }
                },
                {"Put": {"TableName": table, "Item": item("y"), "ConditionExpression": "attribute_exists(PK)"}},
            ]
        )
    assert failed.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert moto_table(table) is stored  # moto would have put back a copy of the whole table
    assert ddb.get_item(TableName=table, Key={"PK": {"S": "p"}, "SK": {"S": "x"}})["Item"] == item(
        "x", GSI1PK="old", GSI1SK="1", note="kept"
    )
    assert "Item" not in ddb.get_item(TableName=table, Key={"PK": {"S": "p"}, "SK": {"S": "y"}})
    for partition, count in (("old", 1), ("new", 0)):
        found = both(
            ddb,
            TableName=table,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :p",
            ExpressionAttributeValues={":p": {"S": partition}},
        )
        assert found["Count"] == count


def test_a_query_moto_refuses_is_refused_as_moto_refuses_it(ddb: Any, table: str) -> None:
    request = {
        "TableName": table,
        "IndexName": "GSI1",
        "KeyConditionExpression": "GSI1PK = :p",
        "ExpressionAttributeValues": {":p": {"S": "all"}},
        "ConsistentRead": True,
    }
    with pytest.raises(ClientError) as patched:
        ddb.query(**request)
    with motofix.unpatched(), pytest.raises(ClientError) as own:
        ddb.query(**request)
    assert patched.value.response["Error"] == own.value.response["Error"]


def test_each_write_call_is_told_to_the_listeners_once_with_the_keys_it_wrote(ddb: Any, table: str) -> None:
    heard: list[list[motofix.Change]] = []
    motofix.add_listener(heard.append)
    try:
        ddb.transact_write_items(TransactItems=[{"Put": {"TableName": table, "Item": item(sk)}} for sk in "abc"])
        ddb.update_item(
            TableName=table,
            Key={"PK": {"S": "p"}, "SK": {"S": "a"}},
            UpdateExpression="SET GSI1PK = :x",
            ExpressionAttributeValues={":x": {"S": "x"}},
        )
        ddb.delete_item(TableName=table, Key={"PK": {"S": "p"}, "SK": {"S": "b"}})
    finally:
        motofix.remove_listener(heard.append)
    mine = [[c for c in changes if c.table == table] for changes in heard]
    assert [[sorted(k[1].value for k in c.keys or ()) for c in changes] for changes in mine] == [
        [["a", "b", "c"]],
        [["a"]],
        [["b"]],
    ]


def test_the_sorted_partitions_follow_writes_and_are_rebuilt_when_dropped(ddb: Any, table: str) -> None:
    for sk in "abc":
        ddb.put_item(TableName=table, Item=item(sk, GSI1PK="g", GSI1SK=sk))
    request = {
        "TableName": table,
        "IndexName": "GSI1",
        "KeyConditionExpression": "GSI1PK = :p",
        "ExpressionAttributeValues": {":p": {"S": "g"}},
    }
    assert both(ddb, **request)["Count"] == 3
    assert motoindex.index_of(moto_table(table), build=False) is not None
    ddb.update_item(
        TableName=table,
        Key={"PK": {"S": "p"}, "SK": {"S": "b"}},
        UpdateExpression="SET GSI1PK = :h",
        ExpressionAttributeValues={":h": {"S": "h"}},
    )
    assert [i["SK"]["S"] for i in both(ddb, **request)["Items"]] == ["a", "c"]
    motoindex.drop(moto_table(table))
    assert [i["SK"]["S"] for i in both(ddb, **request)["Items"]] == ["a", "c"]
