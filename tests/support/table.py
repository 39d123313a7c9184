"""The test table read and written directly, outside any function (as someone with access to the table
would): to see what is stored at rest, or to plant an item the functions then read."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from dora_insights.dal import aws as dal_aws

if TYPE_CHECKING:
    import pytest

    from tests.conftest import Aws


def item(aws: Aws, key: dict[str, str]) -> dict[str, Any]:
    """An item as stored."""
    found = dal_aws.client().get_item(TableName=aws.table_name, Key=dal_aws.serialize(key), ConsistentRead=True)
    return dal_aws.deserialize(found["Item"])


def put(aws: Aws, stored: dict[str, Any]) -> None:
    """Write ``stored`` as the item it is, over any item of its key."""
    dal_aws.client().put_item(TableName=aws.table_name, Item=dal_aws.serialize(stored))


def scan(aws: Aws) -> list[dict[str, Any]]:
    """Every item of the table, its values as boto3 reads them (binary stays binary)."""
    import boto3

    pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName=aws.table_name)
    return [dal_aws.deserialize(raw) for page in pages for raw in page["Items"]]


def count_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """The table adapter's DynamoDB calls from now on, by operation (``Store.call`` counted)."""
    from dora_insights.dal.store import Store

    counted: Counter[str] = Counter()
    original = Store.call

    def call(self: Store, operation: str, **kwargs: Any) -> Any:
        counted[operation] += 1
        return original(self, operation, **kwargs)

    monkeypatch.setattr(Store, "call", call)
    return counted
