"""``dal.store.refusal_for_now``: which AWS errors an HTTP route answers 503 (retry) rather than fail.

The errors are built as botocore raises them: a modeled code is its ``botocore.errorfactory`` class."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from dora_insights.dal.store import refusal_for_now
from dora_insights.errors import ThrottledError, WriteContendedError

_EXCEPTIONS = boto3.client("dynamodb", region_name="us-east-1").exceptions


def _error(code: str, *, status: int = 400, reasons: list[str] | None = None) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": code}}
    response["ResponseMetadata"] = {"HTTPStatusCode": status}
    if reasons is not None:
        response["CancellationReasons"] = [{"Code": r} for r in reasons]
    return _EXCEPTIONS.from_code(code)(response, "TransactWriteItems")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_error("ProvisionedThroughputExceededException"), ThrottledError),
        (_error("ThrottlingException"), ThrottledError),
        (_error("RequestLimitExceeded"), ThrottledError),
        (_error("InternalServerError", status=500), ThrottledError),
        (_error("SomethingNew", status=503), ThrottledError),  # a 5xx answer, whatever its code
        (_error("TransactionConflictException"), WriteContendedError),
        (_error("TransactionCanceledException", reasons=["None", "TransactionConflict"]), WriteContendedError),
        (_error("TransactionCanceledException", reasons=["ThrottlingError", "None"]), WriteContendedError),
        (_error("TransactionCanceledException", reasons=["ProvisionedThroughputExceeded"]), WriteContendedError),
        (_error("TransactionCanceledException", reasons=["ConditionalCheckFailed", "None"]), None),
        (_error("TransactionCanceledException", reasons=["ConditionalCheckFailed", "TransactionConflict"]), None),
        (_error("ConditionalCheckFailedException"), None),
        (_error("ValidationException"), None),
        (_error("AccessDeniedException"), None),
        (_error("ResourceNotFoundException"), None),
        (EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"), None),
        (KeyError("a defect"), None),
    ],
)
def test_what_is_a_refusal_for_now(error: BaseException, expected: type | None) -> None:
    refused = refusal_for_now(error)
    if expected is None:
        assert refused is None
    else:
        assert type(refused) is expected
        assert refused is not None and refused.status == 503 and "retry" in refused.message


def test_a_cancellation_neither_a_failed_condition_nor_contention_is_raised() -> None:
    """``Store.transact_or_contended``'s callers read reasons as "a condition failed"; a transaction
    DynamoDB refused for another reason (an item collection over 10 GB...) must not pass for one: it is
    raised, a defect (500)."""
    from dora_insights.dal.store import Store

    class Client:
        def __init__(self, codes: list[str]) -> None:
            self.codes = codes

        def transact_write_items(self, **kwargs: Any) -> None:
            raise _error("TransactionCanceledException", reasons=self.codes)

    two = [{"Put": {"TableName": "t", "Item": {"PK": {"S": pk}, "SK": {"S": "x"}}}} for pk in ("a", "b")]
    with pytest.raises(RuntimeError, match="ItemCollectionSizeLimitExceeded"):
        Store("t", Client(["ItemCollectionSizeLimitExceeded", "None"])).transact_or_contended(two, "it")
    reasons = Store("t", Client(["ConditionalCheckFailed", "None"])).transact_or_contended(two, "it")
    assert reasons == [{"Code": "ConditionalCheckFailed"}, {"Code": "None"}]
    with pytest.raises(WriteContendedError):
        Store("t", Client(["TransactionConflict", "None"])).transact_or_contended(two, "it")
