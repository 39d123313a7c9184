"""moto's answers with items (``Query``, ``Scan``, ``GetItem``, ``BatchGetItem``) written by
``dora_local.motofix``'s direct encoder equal moto's own serializer's, for every AttributeValue type
nested at random (strings, numbers, binaries, the three sets, maps, lists, NULL, BOOL), with and without
projections, pages and unprocessed keys."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dora_local import motofix

TEXT = st.text(alphabet='ab é"\\\n€', max_size=6)
NUMBER = st.sampled_from(["0", "-1", "2.5", "10", "1E+2", "123456789012345678"])
BINARY = st.binary(max_size=8)

SCALARS = st.one_of(
    TEXT.map(lambda v: {"S": v}),
    NUMBER.map(lambda v: {"N": v}),
    BINARY.map(lambda v: {"B": v}),
    st.booleans().map(lambda v: {"BOOL": v}),
    st.just({"NULL": True}),
    st.sets(TEXT, min_size=1, max_size=3).map(lambda v: {"SS": sorted(v)}),
    st.sets(st.sampled_from(["1", "2", "3.5", "-4"]), min_size=1, max_size=3).map(lambda v: {"NS": sorted(v)}),
    st.sets(BINARY.filter(bool), min_size=1, max_size=3).map(lambda v: {"BS": sorted(v)}),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda v: {"L": v}),
        st.dictionaries(st.sampled_from(["k", "é", "Items", "x y"]), inner, max_size=3).map(lambda v: {"M": v}),
    ),
    max_leaves=8,
)
ITEMS = st.lists(
    st.dictionaries(st.sampled_from(["a", "b", "Item", "nested"]), VALUES, max_size=4), min_size=1, max_size=6
)


@pytest.fixture(scope="module")
def ddb(_moto: None) -> Any:
    motofix.install()
    return boto3.client("dynamodb", region_name="us-east-1")


def _table(ddb: Any) -> str:
    name = f"answers-{uuid.uuid4().hex[:8]}"
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def _both(call: Any) -> tuple[Any, Any]:
    """The answer with the patch, and moto's own (metadata left out: request ids differ)."""
    patched = call()
    with motofix.unpatched():
        own = call()
    for answer in (patched, own):
        answer.pop("ResponseMetadata", None)
    return patched, own


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=ITEMS, limit=st.sampled_from([None, 1, 2]), projected=st.booleans())
def test_item_answers_equal_moto_own(ddb: Any, items: list[dict[str, Any]], limit: int | None, projected: bool) -> None:
    table = _table(ddb)
    try:
        keys = [{"PK": {"S": "p"}, "SK": {"S": f"{n:03d}"}} for n in range(len(items))]
        for key, attributes in zip(keys, items, strict=True):
            ddb.put_item(TableName=table, Item={**attributes, **key})
        extra: dict[str, Any] = {"Limit": limit} if limit else {}
        if projected:
            extra["ProjectionExpression"] = "SK, a, nested"
        query = {
            "TableName": table,
            "KeyConditionExpression": "PK = :p",
            "ExpressionAttributeValues": {":p": {"S": "p"}},
            **extra,
        }
        patched, own = _both(lambda: ddb.query(**query))
        assert patched == own
        assert own["Count"] == len(own["Items"]) > 0
        patched, own = _both(lambda: ddb.scan(TableName=table, **extra))
        assert patched == own
        for key in keys:
            patched, own = _both(lambda key=key: ddb.get_item(TableName=table, Key=key))
            assert patched == own
        absent = {"PK": {"S": "p"}, "SK": {"S": "absent"}}
        assert _both(lambda: ddb.get_item(TableName=table, Key=absent)) == ({}, {})
        batch = {"RequestItems": {table: {"Keys": [*keys, absent]}}}
        patched, own = _both(lambda: ddb.batch_get_item(**batch))
        assert patched == own
        assert len(own["Responses"][table]) == len(keys)
    finally:
        ddb.delete_table(TableName=table)


def test_the_patch_is_what_answers(ddb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above compares two paths: with the encoder broken, the patched answer differs."""
    table = _table(ddb)
    try:
        ddb.put_item(TableName=table, Item={"PK": {"S": "p"}, "SK": {"S": "1"}, "b": {"B": b"\x00\x01"}})
        monkeypatch.setattr(motofix, "_blob", lambda value: "AAAA")
        patched, own = _both(lambda: ddb.get_item(TableName=table, Key={"PK": {"S": "p"}, "SK": {"S": "1"}}))
        assert own["Item"]["b"] == {"B": b"\x00\x01"}
        assert patched["Item"]["b"] == {"B": b"\x00\x00\x00"}
    finally:
        ddb.delete_table(TableName=table)
