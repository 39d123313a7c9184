"""Tenant tag sets of any size (issue 17: true in AWS as in moto). A set's tags were one string set on the
set's catalogue item, grown by an UpdateItem ADD at each new tag: moto stores such an item past 400 KB,
AWS refuses the update (``ValidationException: Item size to update has exceeded the maximum allowed
size``), so once a set held a few hundred long tags (some thousands of short ones), every deployment
naming a new tag of it failed with a 500, single, batch and DX alike. Each tag is now an item of its own
(pattern 8b); the tests check the table against ``dal.limits.item_size`` (AWS's count) and apply AWS's
refusal to updates, through the real routes."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from dora_insights.dal import aws as dal_aws
from dora_insights.dal import keys, limits
from dora_insights.dal.store import Store
from tests.conftest import ADMIN_KEY, Api

ROUTE = "/api/{spaceId}/deployments"
BATCH = "/api/{spaceId}/deployments/batch"
SP = {"spaceId": "Spaces-1"}


def _call(api: Api, method: str, route: str, body: Any, **kw: Any) -> Any:
    """The handler's answer; an exception escaping it is what API Gateway answers as a bare 500."""
    try:
        return api.call(method, route, body=body, **kw)
    except Exception as error:
        return type("R", (), {"status": 500, "body": repr(error)[:500], "headers": {}})()


def _tenant_tags(request: int, n: int = 100) -> list[str]:
    """``n`` distinct tenant tags of the tag set ``Customers``, each 196 characters (valid: at most 200),
    about 735 bytes of UTF-8: a request's 100 add ~73 KB to the tag set's catalogue item."""
    return [f"Customers/r{request}-{i:03d}" + "\U0001f600" * 180 for i in range(n)]


def _deployment(request: int) -> dict[str, Any]:
    return {
        "project": "shop",
        "environment": "production",
        "finished_at": 1709294400 + request,
        "tenant_tags": _tenant_tags(request),
    }


def test_tenant_tag_set_item_never_grows_past_dynamodbs_item_limit(api: Api, aws: Any) -> None:
    """Seven valid deployments naming new tenant tags of one tag set: every item the ingest path stores
    is one AWS can hold. The tags were a string set on the tag set's own item, which passed 400 KB; each
    is now an item of its own (pattern 8b)."""
    for request in range(7):
        result = _call(api, "POST", ROUTE, _deployment(request), path_params=SP, key=ADMIN_KEY)
        assert result.status == 201, (request, result.status, result.body)
    items = boto3.client("dynamodb").scan(TableName=aws.table_name)["Items"]
    too_large = [
        (item["PK"]["S"], item["SK"]["S"], limits.item_size(item))
        for item in items
        if limits.item_size(item) > limits.MAX_ITEM_BYTES
    ]
    assert too_large == [], f"items AWS would refuse to store (over {limits.MAX_ITEM_BYTES} bytes): {too_large}"


@pytest.fixture
def aws_item_limit_on_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    """UpdateItem as AWS answers it: an update that would leave the item over 400 KB is refused with
    ``ValidationException`` (moto stores it)."""
    call = Store.call

    def call_as_aws(self: Store, operation: str, **kwargs: Any) -> Any:
        if operation == "update_item" and "ADD" in str(kwargs.get("UpdateExpression", "")):
            current = self.ddb.get_item(TableName=kwargs["TableName"], Key=kwargs["Key"]).get("Item") or {}
            added = sum(limits.value_size(v) for v in (kwargs.get("ExpressionAttributeValues") or {}).values())
            if current and limits.item_size(current) + added > limits.MAX_ITEM_BYTES:
                raise ClientError(
                    {
                        "Error": {
                            "Code": "ValidationException",
                            "Message": "Item size to update has exceeded the maximum allowed size",
                        },
                        "ResponseMetadata": {"HTTPStatusCode": 400},
                    },
                    "UpdateItem",
                )
        return call(self, operation, **kwargs)

    monkeypatch.setattr(Store, "call", call_as_aws)
    assert dal_aws.ClientError is ClientError


def test_valid_deployment_with_new_tenant_tags_is_stored_once_the_tag_set_is_large(
    api: Api, aws_item_limit_on_updates: None
) -> None:
    """With AWS's item limit applied to updates, valid deployments (every field within its documented
    bounds) naming new tags of a large set are stored. They were answered 500 from the request whose tags
    took the set's item past 400 KB on, and so was every later one naming a new tag of that set."""
    statuses = []
    for request in range(7):
        result = _call(api, "POST", ROUTE, _deployment(request), path_params=SP, key=ADMIN_KEY)
        statuses.append(result.status)
    batch = _call(api, "POST", BATCH, {"deployments": [_deployment(7)]}, path_params=SP, key=ADMIN_KEY)
    statuses.append(batch.status)
    assert statuses == [201] * 7 + [200], (statuses, str(batch.body)[:300])


def test_a_set_lists_its_tags_from_their_items_and_from_the_string_set_older_versions_kept(
    api: Api, store: Any
) -> None:
    created = api.call(
        "POST", ROUTE, body={**_deployment(0), "tenant_tags": ["Customers/acme"]}, path_params=SP, key=ADMIN_KEY
    )
    assert created.status == 201, created.body
    store.call(
        "update_item",
        TableName=store.table,
        Key=dal_aws.serialize(keys.catalogue_id("Spaces-1", "TagSets", 1)),
        UpdateExpression="ADD tags :tags",
        ExpressionAttributeValues={":tags": {"SS": ["globex", "acme"]}},
    )
    listed = api.call("GET", "/api/{spaceId}/tenanttagsets", path_params=SP, key=ADMIN_KEY)
    assert listed.status == 200, listed.body
    [customers] = listed.body["Items"]
    assert [t["CanonicalTagName"] for t in customers["Tags"]] == ["Customers/acme", "Customers/globex"]
