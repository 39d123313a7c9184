"""Datadog list queries a user may send, through the real routes against moto (API.md "Dialect: Datadog
DORA"): a service or environment pinned by a query is looked up by its name's key, which DynamoDB refuses
over 1024 bytes for the whole read (moto checks key sizes on writes only, so the fixture below restates the
rule for reads): a query naming one longer than any name answers an empty list, as for any unknown service,
not a 500. Wildcards answer as Datadog matches them (the matcher's cost: tests/unit/domain/
test_wildcard_matching.py)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.conftest import Api
from tests.integration.test_datadog_read import create, listing

# moto checks key sizes on writes only; this fixture restates DynamoDB's rule for reads (as
# tests/integration/test_cursor_bounds.py does for start keys): a sort key over 1024 bytes of UTF-8 is a
# ValidationException ("Aggregated size of all range keys has exceeded the size limit of 1024 bytes").
_RANGE_SIZE = (
    "One or more parameter values were invalid:"
    " Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
)


@pytest.fixture
def strict_read_key_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    from dora_insights.dal.store import Store

    call = Store.call

    def strict(self: Store, operation: str, **kwargs: Any) -> Any:
        if operation in ("batch_get_item", "get_item"):
            if operation == "get_item":
                sent = [kwargs["Key"]]
            else:
                sent = [k for table in kwargs["RequestItems"].values() for k in table["Keys"]]
            if any(len(key["SK"]["S"].encode()) > 1024 for key in sent):
                error = boto3.client("dynamodb", region_name="us-east-1").exceptions.from_code("ValidationException")
                raise error({"Error": {"Code": "ValidationException", "Message": _RANGE_SIZE}}, operation)
        return call(self, operation, **kwargs)

    monkeypatch.setattr(Store, "call", strict)


@pytest.mark.parametrize("query", ["service:" + "x" * 1100, "service:shop env:" + "y" * 1100])
def test_a_long_service_or_env_value_in_a_query_is_not_a_5xx(api: Api, strict_read_key_sizes: None, query: str) -> None:
    create(api, 1, env="prod")
    try:
        result = listing(api, query=query)
    except Exception as error:  # the route let it escape: Lambda fails, API Gateway answers 500
        pytest.fail(f"the list raised {type(error).__name__}: {error}")
    # No service or environment can have such a name (names are at most 200 characters): an empty list
    # (as for any unknown service), or a 400 at /data/attributes/query.
    assert result.status in (200, 400), result.body
    if result.status == 200:
        assert result.body["data"] == []


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("service:" + "*a" * 7 + "*b", []),
        ("service:*a*a*", ["a" * 60]),
        ("service:a?a*", ["a" * 60]),
        ("-service:*a*", ["shop"]),
    ],
)
def test_wildcard_queries_list_what_they_match(api: Api, query: str, found: list[str]) -> None:
    create(api, 1, service="a" * 60)
    create(api, 2, service="shop")
    result = listing(api, query=query)
    assert result.status == 200, result.body
    assert [d["attributes"]["service"] for d in result.body["data"]] == found
