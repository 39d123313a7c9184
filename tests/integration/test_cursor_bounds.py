"""What moto takes and DynamoDB refuses, through the real routes: an ``If-Match`` of non-ASCII digits, and
paging cursors DynamoDB would refuse as an ExclusiveStartKey (moto answers those with an empty page, AWS
with a ValidationException, which a route would answer 500).

``strict_start_keys`` makes every Query refuse, as DynamoDB does, a start key that is not exactly the key
attributes of the table and the index, holds an empty or oversized key value, names another partition,
or whose sort key lies outside the key condition (its rules restated here from DynamoDB's documented and
observed answers, independently of ``dal.aws``), so a route that sends one fails the test as on AWS."""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest

from dora_insights.dal import aws as dal_aws
from dora_insights.dal import keys
from dora_insights.dal.store import Store
from tests.conftest import ADMIN_KEY, Api, HttpResult
from tests.support.native import SPACE, create_deployment, read_deployment

SP = {"spaceId": SPACE}
DEPLOYMENTS = "/api/{spaceId}/deployments"
ONE = "/api/{spaceId}/deployments/{deploymentId}"
SETTINGS = "/api/{spaceId}/settings"
BAD_IF_MATCH = ["²", '"²"', 'W/"¹"', "١", "３", "9" * 40]

# DynamoDB's messages (its answers as emulators that check them against AWS record them).
_INVALID = "The provided starting key is invalid"
_EMPTY = (
    "One or more parameter values are not valid."
    " The AttributeValue for a key attribute cannot contain an empty string value."
)
_HASH_SIZE = (
    "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes"
)
_RANGE_SIZE = (
    "One or more parameter values were invalid:"
    " Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
)
_OUTSIDE = "The provided starting key is outside query boundaries based on provided conditions"
_PREDICATE = "The provided starting key does not match the range key predicate"

_KEYS = {None: ("PK", "SK"), "GSI1": ("GSI1PK", "GSI1SK"), "GSI2": ("GSI2PK", "GSI2SK"), "GSI3": ("GSI3PK", "GSI3SK")}
_CONDITION = re.compile(r"#pk = :pk(?: AND (?:#sk BETWEEN :lo AND :hi|begins_with\(#sk, :prefix\)))?")


def _native_400(result: HttpResult) -> None:
    assert result.status == 400, result.body
    assert set(result.body) == {"message", "errors"} and result.body["errors"], result.body


# --- If-Match -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("if_match", BAD_IF_MATCH)
def test_an_if_match_of_other_digits_on_a_deployment_patch_is_a_400(api: Api, if_match: str) -> None:
    created = create_deployment(api, version="1.0")
    patched = api.call(
        "PATCH",
        ONE,
        path_params={**SP, "deploymentId": created["id"]},
        body={"version": "2.0"},
        headers={"If-Match": if_match},
        key=ADMIN_KEY,
    )
    _native_400(patched)
    assert "If-Match" in patched.body["message"]
    after = read_deployment(api, created["id"])
    assert (after["version"], after["revision"]) == ("1.0", 1)


@pytest.mark.parametrize("if_match", BAD_IF_MATCH)
def test_an_if_match_of_other_digits_on_the_settings_is_a_400(api: Api, if_match: str) -> None:
    before = api.call("GET", SETTINGS, path_params=SP, key=ADMIN_KEY).body
    result = api.call(
        "PATCH",
        SETTINGS,
        path_params=SP,
        body={"default_benchmark": "2021"},
        headers={"If-Match": if_match},
        key=ADMIN_KEY,
    )
    _native_400(result)
    assert api.call("GET", SETTINGS, path_params=SP, key=ADMIN_KEY).body == before


def test_an_if_match_of_ascii_digits_still_applies(api: Api) -> None:
    created = create_deployment(api, version="1.0")
    one = {**SP, "deploymentId": created["id"]}
    patched = api.call("PATCH", ONE, path_params=one, body={"version": "2"}, headers={"If-Match": '"1"'}, key=ADMIN_KEY)
    assert patched.status == 200, patched.body
    assert patched.body["revision"] == 2


# --- cursors under DynamoDB's rules ---------------------------------------------------------------
def _validation_error(message: str) -> Exception:
    error = boto3.client("dynamodb", region_name="us-east-1").exceptions.from_code("ValidationException")
    return error({"Error": {"Code": "ValidationException", "Message": message}}, "Query")  # type: ignore[no-any-return]


def _refusal(request: dict[str, Any]) -> str | None:
    """DynamoDB's message refusing the request's ExclusiveStartKey, None when it takes it."""
    start = request.get("ExclusiveStartKey")
    if start is None:
        return None
    pk_name, sk_name = _KEYS[request.get("IndexName")]
    if set(start) != {"PK", "SK", pk_name, sk_name}:
        return _INVALID
    for name, value in start.items():
        text = value.get("S")
        if not text:
            return f"{_EMPTY} Key: {name}"
        size = len(text.encode("utf-8"))
        if name.endswith("PK") and size > 2048:
            return _HASH_SIZE
        if name.endswith("SK") and size > 1024:
            return _RANGE_SIZE
    condition = _CONDITION.fullmatch(request["KeyConditionExpression"])
    assert condition is not None, request["KeyConditionExpression"]  # a form this emulation knows
    values = {
        k: v["S"] for k, v in request["ExpressionAttributeValues"].items() if k in {":pk", ":lo", ":hi", ":prefix"}
    }
    if start[pk_name]["S"] != values[":pk"]:
        return _OUTSIDE
    sort = start[sk_name]["S"].encode("utf-8")  # DynamoDB orders strings by their UTF-8 bytes
    if ":lo" in values and not values[":lo"].encode() <= sort <= values[":hi"].encode():
        return _PREDICATE
    if ":prefix" in values and not sort.startswith(values[":prefix"].encode()):
        return _PREDICATE
    return None


@pytest.fixture
def strict_start_keys(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every Query's start key checked as DynamoDB checks it; yields the start keys sent."""
    call = Store.call
    sent: list[dict[str, Any]] = []

    def strict(self: Store, operation: str, **kwargs: Any) -> Any:
        if operation == "query" and "ExclusiveStartKey" in kwargs:
            sent.append(kwargs["ExclusiveStartKey"])
            refusal = _refusal(kwargs)
            if refusal is not None:
                raise _validation_error(refusal)
        return call(self, operation, **kwargs)

    monkeypatch.setattr(Store, "call", strict)
    return sent


def _list(api: Api, **query: str) -> HttpResult:
    return api.call("GET", DEPLOYMENTS, path_params=SP, query=query, key=ADMIN_KEY)


def _seed(api: Api, days: int = 6) -> None:
    for day in range(1, days + 1):
        create_deployment(api, finished_at=f"2024-03-0{day}T00:00:00Z")


def _forge(**change: str) -> str:
    """A cursor of the space's deployment list (GSI1) with ``change`` made to its key."""
    key = {
        keys.PK: f"S#{SPACE}#DEP#d1",
        keys.SK: "DEP",
        keys.GSI1PK: keys.deployments_by_time(SPACE),
        keys.GSI1SK: "2024-03-03T00:00:00.000Z#d1",
    }
    return dal_aws.encode_cursor(key | change)


@pytest.mark.parametrize(
    "query", [{}, {"from": "2024-03-02T00:00:00Z", "to": "2024-03-05T00:00:00Z"}, {"project": "shop"}]
)
def test_cursors_the_list_issues_page_through_it_under_dynamodbs_rules(
    api: Api, strict_start_keys: list[dict[str, Any]], query: dict[str, str]
) -> None:
    _seed(api)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = _list(api, limit="2", **query, **({"cursor": cursor} if cursor else {}))
        assert page.status == 200, page.body
        seen += [d["finished_at"][:10] for d in page.body["items"]]
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    first, last = (2, 5) if "from" in query else (1, 6)  # both ends inclusive
    assert seen == [f"2024-03-0{d}" for d in range(last, first - 1, -1)]
    assert strict_start_keys  # the pages after the first were continued with a start key


@pytest.mark.parametrize(
    "cursor",
    [
        _forge(SK=""),
        _forge(GSI1SK=""),
        _forge(SK="s" * 1025),
        _forge(GSI1SK="2024-03-03T00:00:00.000Z#" + "é" * 500),
        _forge(PK=f"S#{SPACE}#" + "p" * 2048),
        _forge(SK="\ud800"),
    ],
)
def test_a_cursor_with_a_key_value_dynamodb_refuses_is_a_400(
    api: Api, strict_start_keys: list[dict[str, Any]], cursor: str
) -> None:
    _seed(api, 2)
    _native_400(_list(api, cursor=cursor))
    assert strict_start_keys == []  # refused before any Query was sent with it


@pytest.mark.parametrize(
    "narrower",
    [
        {"from": "2024-03-04T00:00:00Z"},  # the cursor's key (03-03) is below the new range
        {"to": "2024-03-02T00:00:00Z"},  # ... or above it
    ],
)
def test_a_cursor_reused_with_a_time_range_it_lies_outside_is_a_400(
    api: Api, strict_start_keys: list[dict[str, Any]], narrower: dict[str, str]
) -> None:
    _seed(api)
    wide = _list(api, limit="4")  # 06, 05, 04, 03: the cursor is the key of 03-03
    assert wide.status == 200 and wide.body["next_cursor"], wide.body
    _native_400(_list(api, limit="4", cursor=wide.body["next_cursor"], **narrower))
