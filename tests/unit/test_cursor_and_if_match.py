"""Input that reaches a parser or DynamoDB as the client sent it: an ``If-Match`` revision and a paging
cursor (an ExclusiveStartKey). Whatever the client sends is a 400, never a 500: ``If-Match`` takes ASCII
digits only (``str.isdigit`` accepts ``²``, which ``int`` refuses) and a bounded number of them; a cursor
DynamoDB would refuse as an ExclusiveStartKey (moto accepts it and answers an empty page) is refused first."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dora_insights.dal import aws as dal_aws
from dora_insights.dal import keys
from dora_insights.errors import RequestInvalidError
from dora_insights.handlers.http import MAX_REVISION_DIGITS, expected_revision

WHAT = "the deployment's revision (its ETag)"
SPACE = "Spaces-1"
DEPS = keys.deployments_by_time(SPACE)
ITEM = {
    keys.PK: "S#Spaces-1#DEP#d1",
    keys.SK: "DEP",
    keys.GSI1PK: DEPS,
    keys.GSI1SK: "2024-03-01T00:00:00.000Z#d1",
}
MARCH = ("2024-03-01T00:00:00.000Z", "2024-03-31T23:59:59.999Z#\uffff")


def _raw_cursor(plain: dict[str, Any]) -> str:
    """A cursor as a client may forge it: any JSON, encoded as the service encodes its own."""
    raw = json.dumps(plain).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _wire(plain: dict[str, str]) -> dict[str, Any]:
    return {k: {"S": v} for k, v in plain.items()}


# --- If-Match -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "revision"),
    [("3", 3), ('"3"', 3), ('W/"3"', 3), (' W/ "42" ', 42), ("*", None), (None, None), ("9" * 16, int("9" * 16))],
)
def test_if_match_names_a_revision_in_ascii_digits(header: str | None, revision: int | None) -> None:
    assert expected_revision(header, None, WHAT) == revision


@pytest.mark.parametrize(
    "header",
    [
        "²",  # U+00B2: str.isdigit() says yes, int() raises ValueError (the 500 this fixes)
        '"²"',
        'W/"¹²"',
        "١٢",  # Arabic-Indic digits: int() takes them, but an ETag is ASCII
        "３",  # fullwidth 3
        "𝟑",  # mathematical bold 3
        "3²",
        "0x1",
        "-1",
        "+1",
        "1 2",
        "",
        '""',
        "W/",
        "9" * (MAX_REVISION_DIGITS + 1),  # past what a revision can be, and unbounded int() work
        "9" * 64,
    ],
)
def test_if_match_that_is_not_ascii_digits_is_a_400(header: str) -> None:
    with pytest.raises(RequestInvalidError, match="If-Match must be") as raised:
        expected_revision(header, None, WHAT)
    assert raised.value.field == "If-Match"


def test_a_route_can_bound_the_digits_lower() -> None:
    assert expected_revision("9" * 12, None, WHAT, max_digits=12) == int("9" * 12)
    with pytest.raises(RequestInvalidError):
        expected_revision("9" * 13, None, WHAT, max_digits=12)


def test_if_match_and_the_body_revision_still_must_agree() -> None:
    assert expected_revision('"2"', 2, WHAT) == 2
    assert expected_revision(None, 5, WHAT) == 5
    with pytest.raises(RequestInvalidError, match="different revisions"):
        expected_revision('"1"', 2, WHAT)


@given(st.text(max_size=70))
def test_any_if_match_is_a_revision_or_a_400(header: str) -> None:
    try:
        found = expected_revision(header, None, WHAT)
    except RequestInvalidError:
        return
    assert found is None or 0 <= found < 10**MAX_REVISION_DIGITS


# --- decode_cursor: what DynamoDB refuses in any ExclusiveStartKey ----------------------------------
def _decode(cursor: str, index: str | None = keys.GSI1, partition: str = DEPS) -> dict[str, Any]:
    return dal_aws.decode_cursor(cursor, space_id=SPACE, partition=partition, index=index)


def test_a_cursor_the_service_issued_still_decodes() -> None:
    assert _decode(dal_aws.encode_cursor(ITEM)) == _wire(ITEM)
    longest = ITEM | {keys.SK: "s" * 1024, keys.GSI1SK: "é" * 512}  # 1024 bytes of UTF-8 each: at the limit
    assert _decode(dal_aws.encode_cursor(longest)) == _wire(longest)


@pytest.mark.parametrize(
    "change",
    [
        {keys.SK: ""},  # "The AttributeValue for a key attribute cannot contain an empty string value"
        {keys.GSI1SK: ""},
        {keys.SK: "s" * 1025},  # "Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
        {keys.GSI1SK: "é" * 513},  # 1026 bytes of UTF-8 in 513 characters
        {keys.PK: "S#Spaces-1#" + "p" * 2038},  # 2049 bytes: "Size of hashkey has exceeded ... 2048 bytes"
        {keys.SK: "\ud800"},  # a lone surrogate (a JSON escape) is no UTF-8 DynamoDB can take
        {keys.GSI1SK: "2024\udfff"},
    ],
)
def test_a_cursor_with_a_key_value_dynamodb_refuses_is_a_400(change: dict[str, str]) -> None:
    with pytest.raises(RequestInvalidError, match="cursor is not valid") as raised:
        _decode(_raw_cursor(ITEM | change))
    assert raised.value.field == "cursor"


@pytest.mark.parametrize(
    ("plain", "index"),
    [
        ({k: v for k, v in ITEM.items() if k != keys.SK}, keys.GSI1),  # a key attribute missing
        (ITEM | {"extra": "x"}, keys.GSI1),  # an attribute that is no key of the table or the index
        (ITEM | {keys.GSI2SK: "x"}, keys.GSI1),  # another index's key
        ({keys.PK: ITEM[keys.PK], keys.SK: ITEM[keys.SK]}, keys.GSI1),  # the table's key, not the index's
        (ITEM, None),  # the index's key attributes on a table Query
    ],
)
def test_a_cursor_whose_attributes_are_not_the_key_schema_is_a_400(plain: dict[str, str], index: str | None) -> None:
    partition = DEPS if index is not None else ITEM[keys.PK]
    with pytest.raises(RequestInvalidError):
        _decode(_raw_cursor(plain), index=index, partition=partition)


# --- check_start_key: the start key against the Query it continues ---------------------------------
def _check(start: dict[str, Any], **bounds: Any) -> None:
    dal_aws.check_start_key(start, partition=DEPS, index=keys.GSI1, **bounds)


def test_a_start_key_within_the_query_passes() -> None:
    _check(_wire(ITEM))
    _check(_wire(ITEM), sort_between=MARCH)
    _check(_wire(ITEM), sort_prefix="2024-03-")
    _check(_wire(ITEM | {keys.GSI1SK: MARCH[0]}), sort_between=MARCH)  # BETWEEN is inclusive, both ends
    _check(_wire(ITEM | {keys.GSI1SK: MARCH[1]}), sort_between=MARCH)
    table_key = {keys.PK: "S#Spaces-1#CORR#D#d1", keys.SK: "2024-03-01T00:00:00.000Z#r1"}
    dal_aws.check_start_key(_wire(table_key), partition=table_key[keys.PK], index=None)


@pytest.mark.parametrize(
    ("start", "bounds"),
    [
        # "The provided starting key is outside query boundaries based on provided conditions"
        (ITEM | {keys.GSI1PK: keys.failures_by_time(SPACE)}, {}),
        # "The provided starting key does not match the range key predicate"
        (ITEM | {keys.GSI1SK: "2024-02-29T23:59:59.999Z#d1"}, {"sort_between": MARCH}),
        (ITEM | {keys.GSI1SK: "2024-04-01T00:00:00.000Z#d1"}, {"sort_between": MARCH}),
        (ITEM, {"sort_prefix": "2024-04-"}),
        (ITEM, {"sort_between": ("2024-03-02", "2024-03-01")}),  # no key lies in an empty range
        # "The provided starting key is invalid" / empty or oversized key values
        ({k: v for k, v in ITEM.items() if k != keys.PK}, {}),
        (ITEM | {keys.GSI2PK: "x"}, {}),
        (ITEM | {keys.SK: ""}, {}),
        (ITEM | {keys.GSI1SK: "2024-03-01" + "x" * 1015}, {"sort_between": MARCH}),
        (ITEM | {keys.PK: "S#Spaces-1#" + "p" * 2038}, {}),
    ],
)
def test_a_start_key_dynamodb_would_refuse_for_this_query_is_a_400(
    start: dict[str, str], bounds: dict[str, Any]
) -> None:
    with pytest.raises(RequestInvalidError, match="cursor is not valid") as raised:
        _check(_wire(start), **bounds)
    assert raised.value.field == "cursor"


@pytest.mark.parametrize(
    "value", [{"N": "1"}, {"B": b"x"}, {"S": "x", "N": "1"}, {"SS": ["x"]}, {}, "x", None, {"S": 3}]
)
def test_a_start_key_value_that_is_not_one_string_is_a_400(value: Any) -> None:
    with pytest.raises(RequestInvalidError):
        _check(_wire(ITEM) | {keys.SK: value})


def test_a_cursor_issued_for_one_time_range_is_refused_for_another() -> None:
    # The case moto hides: the client narrows ?from/?to and keeps the cursor of the wider list.
    start = _decode(dal_aws.encode_cursor(ITEM))
    _check(start, sort_between=MARCH)
    with pytest.raises(RequestInvalidError):
        _check(start, sort_between=("2024-03-02T00:00:00.000Z", MARCH[1]))


_FORGED_VALUE = st.one_of(st.text(max_size=8), st.text(alphabet="aé\ud800", min_size=1000, max_size=1100))


@given(st.fixed_dictionaries({k: st.one_of(st.just(v), _FORGED_VALUE) for k, v in ITEM.items()}))
def test_any_forged_cursor_decodes_to_a_key_that_passes_or_is_a_400(plain: dict[str, str]) -> None:
    try:
        start = _decode(_raw_cursor(plain))
    except RequestInvalidError:
        return
    _check(start)  # what decode_cursor lets through is a key DynamoDB takes for the same partition
