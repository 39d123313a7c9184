"""DynamoDB's limits, checked before a request leaves (dal.limits), and the boundary's JSON checks
(dialects.limits) that keep client input from reaching them."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dora_insights.dal import aws as dal_aws
from dora_insights.dal import keys, limits
from dora_insights.dialects.limits import JsonShapeError, free_json_problem, json_problem, load_json
from dora_insights.domain.numbers import number_problem
from dora_insights.errors import ItemInvalidError, ItemTooLargeError, KeyTooLargeError


def _item(**attributes: Any) -> dict[str, Any]:
    return dal_aws.serialize({keys.PK: "S#Spaces-1#X", keys.SK: "X", keys.TYPE: "Thing", **attributes})


# --- numbers ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value", [1e300, -1e-200, 10**38, -(10**39), float("nan"), float("inf"), Decimal("1E+126"), Decimal("1E-131")]
)
def test_numbers_dynamodb_cannot_hold_have_a_reason(value: Any) -> None:
    assert number_problem(value)


@pytest.mark.parametrize("value", [0, 0.0, -1, 10**38 - 1, 9.99e125, 1e-130, 1e126 - 1e110, True, Decimal("1E+125")])
def test_numbers_dynamodb_holds_have_none(value: Any) -> None:
    assert number_problem(value) is None


@pytest.mark.parametrize("value", [1e300, 10**40, float("nan"), {"a": [1, {"b": -1e-200}]}])
def test_serialize_raises_a_clear_internal_error_not_a_decimal_one(value: Any) -> None:
    with pytest.raises(ItemInvalidError, match="cannot be stored in DynamoDB"):
        dal_aws.serialize({"PK": "x", "value": value})
    with pytest.raises(ItemInvalidError):
        dal_aws.serialize_value(value)


# --- item sizes as AWS counts them ---------------------------------------------------------------
def test_item_size_counts_names_and_values_as_aws_does() -> None:
    item: dict[str, Any] = {
        "s": {"S": "héllo"},  # 1 + 6
        "n": {"N": "12345"},  # 1 + 3 + 1
        "b": {"B": b"\x00\x01"},  # 1 + 2
        "t": {"BOOL": True},  # 1 + 1
        "l": {"L": [{"S": "ab"}, {"NULL": True}]},  # 1 + 3 + (2 + 1) + (1 + 1)
        "m": {"M": {"k": {"S": "v"}}},  # 1 + 3 + (1 + 1 + 1)
    }
    assert limits.item_size(item) == 7 + 5 + 3 + 2 + 9 + 7


def test_an_item_over_400_kb_is_refused_before_it_is_sent() -> None:
    limits.check_request("put_item", {"Item": _item(text="a" * 400_000)})
    with pytest.raises(ItemTooLargeError, match="400 KB") as refused:
        limits.check_request("put_item", {"Item": _item(text="a" * 410_000)})
    assert refused.value.status == 413
    put = {"Put": {"Item": _item(text="€" * 140_000)}}  # 420,000 bytes of UTF-8
    with pytest.raises(ItemTooLargeError):
        limits.check_request("transact_write_items", {"TransactItems": [put]})
    with pytest.raises(ItemTooLargeError):
        limits.check_request("batch_write_item", {"RequestItems": {"t": [{"PutRequest": put["Put"]}]}})


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("PutRequest", "DeleteRequest"),
        ("DeleteRequest", "PutRequest"),
        ("PutRequest", "PutRequest"),
        ("DeleteRequest", "DeleteRequest"),
    ],
)
def test_a_batch_write_naming_one_item_twice_is_refused_in_any_combination(first: str, second: str) -> None:
    def write(kind: str, n: int, **attributes: Any) -> dict[str, Any]:
        item = {keys.PK: {"S": f"S#Spaces-1#X{n}"}, keys.SK: {"S": "X"}}
        return {kind: {"Item": {**item, **dal_aws.serialize(attributes)}} if kind == "PutRequest" else {"Key": item}}

    # AWS refuses a Put and a Delete of one key too (ValidationException); moto only two Puts or two Deletes.
    with pytest.raises(ItemInvalidError, match="names one item twice"):
        limits.check_request("batch_write_item", {"RequestItems": {"t": [write(first, 1, a=1), write(second, 1, a=2)]}})
    limits.check_request("batch_write_item", {"RequestItems": {"t": [write(first, 1), write(second, 2)]}})
    # The same key in two tables names two items.
    limits.check_request("batch_write_item", {"RequestItems": {"t": [write(first, 1)], "u": [write(second, 1)]}})


def test_a_transaction_over_4_mb_is_refused() -> None:
    puts = [{"Put": {"Item": _item(text="a" * 380_000)}} for _ in range(12)]
    with pytest.raises(ItemTooLargeError, match="4 MB"):
        limits.check_request("transact_write_items", {"TransactItems": puts})


def test_keys_over_their_utf8_byte_limits_are_a_400() -> None:
    fits = {keys.PK: {"S": "🦄" * 512}, keys.SK: {"S": "🦄" * 256}, keys.GSI2SK: {"S": "a" * 1024}}
    limits.check_keys(fits)
    for name, value in (
        (keys.PK, "🦄" * 513),
        (keys.SK, "🦄" * 257),
        (keys.GSI3SK, "a" * 1025),
        (keys.GSI1PK, "é" * 1025),
    ):
        with pytest.raises(KeyTooLargeError, match="bytes of UTF-8") as refused:
            limits.check_request("get_item", {"Key": {name: {"S": value}}})
        assert refused.value.status == 400


def test_empty_keys_empty_map_names_and_deep_nesting_are_internal_errors() -> None:
    with pytest.raises(ItemInvalidError, match="empty"):
        limits.check_request("put_item", {"Item": {keys.PK: {"S": "x"}, keys.SK: {"S": ""}}})
    with pytest.raises(ItemInvalidError, match="empty key"):
        limits.check_request("put_item", {"Item": _item(metadata={"": 1})})
    nested: Any = 1
    for _ in range(33):
        nested = [nested]
    with pytest.raises(ItemInvalidError, match="32 levels"):
        limits.check_request("put_item", {"Item": _item(metadata=nested)})


# --- keys that are never empty or too long -------------------------------------------------------
def test_orlo_stime_bounds_are_never_empty() -> None:
    assert "" not in keys.orlo_stime_range(None, "2024-03-01T00:00:00.000000Z")
    assert "" not in keys.orlo_stime_range(None, None)
    low, high = keys.orlo_stime_range(None, "2024-03-01T00:00:00.000000Z")
    assert low < "1970-01-01T00:00:00.000000Z#r" and high > "2024-03-01T00:00:00.000000Z#r"


def test_a_ledger_mark_of_a_long_repository_and_branch_fits_its_sort_key() -> None:
    short = keys.ledger_mark("Spaces-1", "s", "acme/shop", "main")
    assert short[keys.SK] == "M#acme/shop#main"
    long = keys.ledger_mark("Spaces-1", "s", "é" * 200, "🦄" * 255)
    assert len(long[keys.SK].encode()) <= limits.MAX_SORT_KEY_BYTES
    assert long == keys.ledger_mark("Spaces-1", "s", "é" * 200, "🦄" * 255)
    assert long != keys.ledger_mark("Spaces-1", "s", "é" * 200, "🦄" * 254)


# --- the boundary's JSON checks ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"a": 1e300}', "a"),
        ('{"a": [0, -1e-200]}', "a[1]"),
        ('{"a": {"b": ' + "1" * 39 + "}}", "a.b"),
        ('[{"x": NaN}]', "[0].x"),
        ('{"x": -Infinity}', "x"),
        ('{"s": "\\udc00"}', "s"),
        ('{"a":' * 65 + "1" + "}" * 65, ("a." * 63 + "a")[:119] + "…"),
        ("[" * 100_000 + "]" * 100_000, None),
    ],
)
def test_load_json_names_where_the_document_cannot_be_held(text: str, path: str | None) -> None:
    with pytest.raises(JsonShapeError) as refused:
        load_json(text)
    assert refused.value.path == path


def test_load_json_leaves_bad_json_to_the_caller() -> None:
    with pytest.raises(ValueError, match="Expecting property name"):
        load_json("{not json")


json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: number_problem(f) is None)
    | st.text(max_size=20)
)
json_documents = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


@given(json_documents)
def test_documents_the_service_can_hold_load_as_json_loads_them(document: Any) -> None:
    text = json.dumps(document)
    assert load_json(text) == json.loads(text)
    assert json_problem(json.loads(text)) is None


@given(st.integers(min_value=1, max_value=200))
def test_depth_is_refused_exactly_beyond_the_limit(depth: int) -> None:
    text = "[" * depth + "]" * depth
    if depth <= 64:
        assert load_json(text) is not None
    else:
        with pytest.raises(JsonShapeError, match="nested deeper than 64"):
            load_json(text)


def test_free_form_objects_are_capped_and_storable() -> None:
    assert free_json_problem({"a": [1, {"b": "c"}]}) is None
    assert "16384 bytes" in str(free_json_problem({"a": "x" * 17_000}))
    assert "empty key" in str(free_json_problem({"a": {"": 1}}))
    deep: Any = 1
    for _ in range(17):
        deep = {"a": deep}
    assert "nested deeper than 16" in str(free_json_problem(deep))
