"""DynamoDB refusing an item for its size is a 413, not a 500.

``dal.limits`` refuses items over 409,600 bytes before they are sent, counting as AWS counts. What that
count misses, AWS refuses with a ``ValidationException`` (a transaction: cancelled with that reason);
moto refuses from 405,000 bytes by its count, so the local runtime meets it for items in between.
``dal.store.size_refusal`` renders either as ``item_too_large`` (413) in the route's dialect, with
nothing written. These tests take moto's real refusals.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api

# Within dal.limits' 409,600 bytes, over moto's 405,000: only DynamoDB's (moto's) own check refuses it.
_BETWEEN = 406_000


def _item(n: int) -> dict[str, Any]:
    return {"PK": "S#Spaces-1#SIZE", "SK": f"ITEM#{n}", "blob": "x" * _BETWEEN}


def _refusal(call: Any) -> BaseException:
    from dora_insights.dal import aws

    with pytest.raises(aws.ClientError) as caught:
        call()
    return caught.value


def test_a_put_and_a_transaction_refused_for_size_are_item_too_large(store: Any) -> None:
    from dora_insights.dal import aws
    from dora_insights.dal.store import refusal_for_now, size_refusal

    for refused in (
        _refusal(lambda: store.call("put_item", TableName=store.table, Item=aws.serialize(_item(1)))),
        _refusal(lambda: store.transact([store.put_op(_item(2))])),
    ):
        too_large = size_refusal(refused)
        assert too_large is not None
        assert (too_large.status, too_large.code) == (413, "item_too_large")
        assert refusal_for_now(refused) is None  # not a "retry later": the same request fails again
    assert store.get({"PK": "S#Spaces-1#SIZE", "SK": "ITEM#1"}, consistent=True) is None
    assert store.get({"PK": "S#Spaces-1#SIZE", "SK": "ITEM#2"}, consistent=True) is None


def test_other_errors_are_not_size_refusals(store: Any) -> None:
    from dora_insights.dal import aws
    from dora_insights.dal.store import size_refusal

    bad_key = _refusal(
        lambda: store.call("get_item", TableName=store.table, Key=aws.serialize({"PK": "S#Spaces-1#SIZE"}))
    )  # a ValidationException of another kind: the key lacks its sort key
    assert aws.error_code(bad_key) == "ValidationException"
    assert size_refusal(bad_key) is None
    assert size_refusal(ValueError("Item size has exceeded the maximum allowed size")) is None


def test_a_route_meeting_the_refusal_answers_413_in_its_dialect(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write the adapter let through and DynamoDB refused: the client gets the dialect's 413, not a 500."""
    from dora_insights.dal import aws
    from dora_insights.logic import deployments

    def oversized(store: Any, *args: Any, **kwargs: Any) -> Any:
        store.call("put_item", TableName=store.table, Item=aws.serialize(_item(4)))
        raise AssertionError("moto stored an item over its limit")

    monkeypatch.setattr(deployments, "ingest", oversized)
    body = {"project": "shop", "environment": "production", "finished_at": "2024-03-01T10:00:00Z"}
    answer = api.call(
        "POST", "/api/{spaceId}/deployments", path_params={"spaceId": "Spaces-1"}, body=body, key=ADMIN_KEY
    )
    assert answer.status == 413, answer.body
    assert "400 KB" in answer.body["message"]  # the native shape: {"message", "errors"}
    assert answer.header("Cache-Control") == "no-store"
