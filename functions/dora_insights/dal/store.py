"""The DynamoDB adapter: repositories for spaces, API keys, catalogue entities and deployments.

Every key comes from ``dal.keys``; every multi-item write is one ``TransactWriteItems``.
``RoundTrips`` counts calls so benchmarks and tests can see what a request costs.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from dora_insights.dal import aws, keys, limits
from dora_insights.domain.model import CatalogueEntry, CatalogueKind, Deployment
from dora_insights.domain.records import (
    DEFAULT_FAILURE_WINDOW_HOURS,
    ApiKeyRecord,
    EnvironmentRef,
    SpaceRecord,
    SpaceSettings,
)
from dora_insights.errors import (
    ItemTooLargeError,
    KeyTooLargeError,
    ResourceNotFoundError,
    ServiceUnavailableError,
    ThrottledError,
    WriteContendedError,
)

SPACE_PREFIX = "Spaces-"
_FILTERED_PAGE = 200  # items read per page when a FilterExpression may drop most of them
# Items one filtered Query call reads at most (25 pages of 200): past it the call answers the matches found
# so far, perhaps none, and a cursor where it stopped, so a filter that matches little never reads a whole
# partition in one request (a space of a million deployments would take the function past its timeout).
MAX_FILTERED_READ = 5_000
API_KEY_PREFIX = "ApiKeys-"
_UNPROCESSED = "DynamoDB left {} unprocessed after every retry (throttled); retry the request"
_BATCH_RETRIES = 10  # Batch{Write,Get}Item attempts for unprocessed items (backoff from 50 ms, doubling, ≤ 1 s)
# Cancellation reasons no condition caused, worth the same transaction again after a pause: another
# write of one of its items in flight, or throttling (on-demand or provisioned; "None": an item that was
# not the cause). DynamoDB cancels so under load (every ingest, correction and settings change updates a
# shared dirty mark), and botocore does not retry a TransactionCanceledException (``transact_contended``).
_CONTENTION = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
CONTENTION_RETRIES = 3  # attempts after the first of a transaction cancelled for contention only
_BACKOFF_SECONDS = 0.02  # the first pause's ceiling; doubling (20, 40, 80 ms), half of each random


def contended(reasons: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a transaction was cancelled for contention only: some reason ``TransactionConflict``
    or ``ThrottlingError``, every other ``None`` (no condition failed)."""
    codes = {str(reason.get("Code", "None")) for reason in reasons}
    return bool(codes & _CONTENTION) and codes <= _CONTENTION | {"None"}


# AWS answering "not now" rather than "no", once botocore's own retries (adaptive, 4 attempts) ran out:
# throttling (an on-demand table past twice its previous peak, SQS or EventBridge rates), an internal
# error, an item another transaction holds. A request meeting one is answered 503 with Retry-After
# (``refusal_for_now``). A call that timed out is not among them: the request is then as good as dead
# (botocore's retries took 5 s reads each), and it fails as a function that ran out of time does.
# The codes are botocore's own throttling codes (botocore.retries.standard, the ones its retries back off
# on) and the internal-error codes of DynamoDB, SQS and EventBridge; any answer with a 5xx status counts
# too, as botocore counts it transient.
_THROTTLED = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "InternalServerError",
        "InternalError",
        "InternalException",
        "InternalFailure",
        "ServiceUnavailable",
    }
)
_TRANSIENT_STATUS = frozenset({500, 502, 503, 504})
_HELD = frozenset({"TransactionConflictException", "TransactionInProgressException"})


# DynamoDB's answers to an item over its 400 KB limit (PutItem, a transaction's Put; UpdateItem). The
# adapter refuses such items before sending them (``dal.limits``), counting as AWS counts; these catch
# what that count misses, and moto's own limit (405,000 bytes by its count, below AWS's 409,600), which
# the local runtime meets.
_ITEM_SIZE_REFUSALS = ("Item size has exceeded the maximum allowed size", "Item size to update has exceeded")


def size_refusal(error: BaseException) -> ItemTooLargeError | None:
    """The 413 for DynamoDB refusing an item for its size (a ``ValidationException``, or a transaction
    cancelled for it), None for any other error. Nothing of the refused call was written."""
    if not type(error).__module__.startswith("botocore.") or not isinstance(error, aws.ClientError):
        return None
    code = aws.error_code(error)
    if code == "TransactionCanceledException":
        messages = [str(reason.get("Message", "")) for reason in aws.cancellation_reasons(error)]
    elif code == "ValidationException":
        messages = [str(error.response.get("Error", {}).get("Message", ""))]
    else:
        return None
    if not any(refusal in message for message in messages for refusal in _ITEM_SIZE_REFUSALS):
        return None
    return ItemTooLargeError("DynamoDB refused to store an item over its 400 KB limit; send less")


def refusal_for_now(error: BaseException) -> ServiceUnavailableError | None:
    """The 503 for an AWS error that says "not now" (above), None for any other error.

    A transaction cancelled for contention alone, or a single write meeting an item a transaction
    holds, is ``WriteContendedError`` (nothing of it was written); throttling or an internal error is
    ``ServiceUnavailableError``. Throttling refuses a write before it applies it; an internal error may
    come after: a retry is safe where the request names what it creates (API.md, "Errors")."""
    if not type(error).__module__.startswith("botocore."):  # no botocore import for other errors
        return None  # (a modeled error, e.g. ProvisionedThroughputExceededException, is botocore.errorfactory's)
    if not isinstance(error, aws.ClientError):
        return None
    code = aws.error_code(error)
    if code in _HELD or (code == "TransactionCanceledException" and contended(aws.cancellation_reasons(error))):
        return WriteContendedError("the change could not be written now, for concurrent writes; retry the request")
    if code in _THROTTLED or error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in _TRANSIENT_STATUS:
        return ThrottledError("the service's storage is refusing requests for now; retry the request")
    return None


def _pause_before(attempt: int) -> None:
    """The backoff before a batch call's ``attempt``-th retry (none before the first): 50 ms, doubling, at
    most 1 s."""
    if attempt:
        time.sleep(min(1.0, 0.05 * 2 ** (attempt - 1)))


def contended_actions(reasons: Sequence[Mapping[str, Any]]) -> list[int]:
    """The positions of the actions a transaction was cancelled for contention on (the items another
    write was changing, or throttled ones): the rest of it would have gone through without them."""
    return [i for i, reason in enumerate(reasons) if reason.get("Code") in _CONTENTION]


def stream_position(deployment: Deployment) -> str:
    """Where a deployment sorts in its stream: pattern 12's sort key (METRICS §1 stream order)."""
    return keys.stream_sort(deployment.finished_at, deployment.started_at, deployment.id)


class PauseBudget:
    """The time one request may spend pausing between attempts of contended transactions, in all
    (``Store.transact_contended``): once a pause does not fit, it is spent and no more is taken."""

    def __init__(self, seconds: float) -> None:
        self.left = seconds

    @property
    def spent(self) -> bool:
        return self.left <= 0

    def take(self, pause: float) -> bool:
        """Whether ``pause`` may be taken (then it is counted); one that does not fit spends the rest."""
        if pause > self.left:
            self.left = 0.0
            return False
        self.left -= pause
        return True


class RoundTrips:
    """Counts DynamoDB calls by operation (bench and tests read it)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def add(self, operation: str) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())


class Store:
    """The single-table adapter. One instance per process; cheap to construct."""

    def __init__(self, table_name: str, ddb: Any | None = None) -> None:
        self.table = table_name
        self._ddb = ddb
        self.round_trips = RoundTrips()

    @property
    def ddb(self) -> Any:
        if self._ddb is None:
            self._ddb = aws.client("dynamodb")
        return self._ddb

    def call(self, operation: str, **kwargs: Any) -> Any:
        """One DynamoDB call, counted. Items and keys AWS would refuse for their size are refused
        first (``dal.limits``: ``ItemTooLargeError`` 413, ``KeyTooLargeError`` 400), so nothing is sent."""
        limits.check_request(operation, kwargs)
        self.round_trips.add(operation)
        return getattr(self.ddb, operation)(**kwargs)

    # --- generic -------------------------------------------------------------------------
    def get(self, key: Mapping[str, str], *, consistent: bool = False) -> dict[str, Any] | None:
        """GetItem as a plain dict, or None."""
        response = self.call("get_item", TableName=self.table, Key=aws.serialize(key), ConsistentRead=consistent)
        item = response.get("Item")
        return aws.deserialize(item) if item else None

    def batch_get(self, key_list: Sequence[Mapping[str, str]], *, consistent: bool = False) -> list[dict[str, Any]]:
        """BatchGetItem of up to any number of keys (100 per call, unprocessed keys retried: DynamoDB
        leaves some when an answer would pass 16 MB or under throttling: still left after every retry,
        ``ServiceUnavailableError``, 503); ``consistent``: strongly consistent reads (what a write that
        just returned, or timed out, stored is seen)."""
        found: list[dict[str, Any]] = []
        unique = list({(k[keys.PK], k[keys.SK]): k for k in key_list}.values())
        for chunk in aws.chunks(unique, aws.MAX_BATCH_GET):
            request: dict[str, Any] = {
                self.table: {"Keys": [aws.serialize(k) for k in chunk], "ConsistentRead": consistent}
            }
            for attempt in range(_BATCH_RETRIES):
                _pause_before(attempt)
                response = self.call("batch_get_item", RequestItems=request)
                found.extend(aws.deserialize(i) for i in response.get("Responses", {}).get(self.table, []))
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:  # throttled all along (DynamoDB leaves keys unprocessed for that, or past 16 MB)
                raise ThrottledError(_UNPROCESSED.format("keys"))
        return found

    def transact_get(self, key_list: Sequence[Mapping[str, str]]) -> list[dict[str, Any] | None]:
        """TransactGetItems of a few keys (at most 100): each item or None, in the keys' order, read at one
        instant and strongly consistent, in one round trip (IAM: ``GetItem`` on each). Cancelled because a
        transaction was writing one of them, it is sent again up to ``CONTENTION_RETRIES`` times after a
        jittered pause; still cancelled, the ``ClientError`` is raised."""
        request = [{"Get": {"TableName": self.table, "Key": aws.serialize(k)}} for k in key_list]
        response, cancelled = self._while_contended(
            lambda: self.call("transact_get_items", TransactItems=request), None
        )
        if cancelled is not None:
            raise cancelled
        found = response.get("Responses", [])
        return [aws.deserialize(r["Item"]) if r.get("Item") else None for r in found]

    def call_if(self, operation: str, **kwargs: Any) -> Any | None:
        """A conditional ``operation``: its response, or None when its condition failed
        (``ConditionalCheckFailedException``); every other error is raised."""
        try:
            return self.call(operation, **kwargs)
        except aws.ClientError as error:
            if aws.error_code(error) == "ConditionalCheckFailedException":
                return None
            raise

    def update_if(self, key: Mapping[str, str], **kwargs: Any) -> Any | None:
        """A conditional UpdateItem of one item: its response, or None when its condition failed."""
        return self.call_if("update_item", TableName=self.table, Key=aws.serialize(key), **kwargs)

    def delete_if(self, key: Mapping[str, str], **kwargs: Any) -> Any | None:
        """A conditional DeleteItem of one item: its response, or None when its condition failed."""
        return self.call_if("delete_item", TableName=self.table, Key=aws.serialize(key), **kwargs)

    def batch_write(self, requests: Sequence[Mapping[str, Any]]) -> None:
        """BatchWriteItem of any number of Put/Delete requests: 25 per call, unprocessed ones retried
        with a short backoff; ``ServiceUnavailableError`` (503) when DynamoDB still leaves some after
        every retry."""
        for chunk in aws.chunks(requests, aws.MAX_BATCH_WRITE):
            pending: dict[str, Any] = {self.table: list(chunk)}
            for attempt in range(_BATCH_RETRIES):
                _pause_before(attempt)
                pending = self.call("batch_write_item", RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
            else:  # throttled all along
                raise ThrottledError(_UNPROCESSED.format("items"))

    def batch_put(self, items: Iterable[Mapping[str, Any]]) -> None:
        """Put every item (no conditions) with ``batch_write``."""
        self.batch_write([{"PutRequest": {"Item": aws.serialize(i)}} for i in items])

    def batch_delete(self, key_list: Iterable[Mapping[str, str]]) -> None:
        """Delete every key (no conditions) with ``batch_write``."""
        self.batch_write([{"DeleteRequest": {"Key": aws.serialize(k)}} for k in key_list])

    def transact(self, operations: Sequence[Mapping[str, Any]]) -> None:
        """TransactWriteItems; raises ClientError (TransactionCanceledException) on any failed condition."""
        self.call("transact_write_items", TransactItems=list(operations))

    def transact_contended(
        self, operations: Sequence[Mapping[str, Any]], *, budget: PauseBudget | None = None
    ) -> list[dict[str, Any]] | None:
        """TransactWriteItems, sent again up to ``CONTENTION_RETRIES`` times while it is cancelled for
        contention only (``contended``), after a jittered exponential pause (10-20, 20-40, 40-80 ms), each
        taken from ``budget`` if given (a pause it cannot pay ends the attempts): None once it went
        through, else the cancellation reasons of the last attempt (a condition failed, or still
        contended). Other errors are raised."""
        cancelled = self._transact_retried(operations, budget)
        return None if cancelled is None else aws.cancellation_reasons(cancelled)

    def transact_or_contended(
        self, operations: Sequence[Mapping[str, Any]], what: str, *, budget: PauseBudget | None = None
    ) -> list[dict[str, Any]] | None:
        """``transact_contended``, with a ``WriteContendedError`` (503: retry; nothing was written) naming
        ``what`` when it stayed cancelled for contention alone: None once written, else the cancellation
        reasons of a failed condition. A cancellation with no failed condition and not for contention
        (``ValidationError``, ``ItemCollectionSizeLimitExceeded``...) is a ``RuntimeError`` (a defect, 500):
        every caller reads returned reasons as "a condition failed", which it would not be."""
        reasons = self.transact_contended(operations, budget=budget)
        if reasons is None:
            return None
        if contended(reasons):
            raise WriteContendedError(f"{what} could not be written now, for concurrent writes; retry the request")
        if not any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons):
            codes = sorted({str(reason.get("Code")) for reason in reasons})
            raise RuntimeError(f"DynamoDB cancelled the transaction writing {what}: {codes}")
        return reasons

    def transact_unconditional(self, operations: Sequence[Mapping[str, Any]]) -> None:
        """A transaction none of whose actions holds a condition (dirty marks...), so that only contention
        cancels it: ``transact_contended``; still contended, a ``WriteContendedError`` (503: retry)."""
        cancelled = self._transact_retried(operations, None)
        if cancelled is None:
            return
        if contended(aws.cancellation_reasons(cancelled)):
            raise WriteContendedError("the change could not be written now, for concurrent writes; retry the request")
        raise cancelled

    def _transact_retried(
        self, operations: Sequence[Mapping[str, Any]], budget: PauseBudget | None
    ) -> aws.ClientError | None:
        """``transact_contended``'s attempts: None once one went through, else the last cancellation."""
        _, cancelled = self._while_contended(lambda: self.transact(operations), budget)
        return cancelled

    def _while_contended(
        self, send: Callable[[], Any], budget: PauseBudget | None
    ) -> tuple[Any, aws.ClientError | None]:
        """``send`` (a transaction, to write or to read) sent again up to ``CONTENTION_RETRIES`` times while
        it is cancelled for contention only, after a jittered exponential pause taken from ``budget`` if
        given: its response and None once one went through, else None and the last cancellation. Other
        errors are raised."""
        attempt = 0
        while True:
            try:
                return send(), None
            except aws.ClientError as error:
                if aws.error_code(error) != "TransactionCanceledException":
                    raise
                cancelled = error
            if attempt == CONTENTION_RETRIES or not contended(aws.cancellation_reasons(cancelled)):
                return None, cancelled
            ceiling = _BACKOFF_SECONDS * 2**attempt
            pause = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - a backoff's jitter, not a secret
            if budget is not None and not budget.take(pause):
                return None, cancelled
            time.sleep(pause)
            attempt += 1

    def put_op(self, item: Mapping[str, Any], *, must_not_exist: bool = False, return_old: bool = False) -> dict:
        """One Put of a transaction."""
        op: dict[str, Any] = {"TableName": self.table, "Item": aws.serialize(item)}
        if must_not_exist:
            op["ConditionExpression"] = "attribute_not_exists(PK)"
            if return_old:
                op["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return {"Put": op}

    def query_page(
        self,
        *,
        partition: str,
        index: str | None = None,
        ascending: bool = True,
        limit: int | None = None,
        start_key: dict[str, Any] | None = None,
        sort_between: tuple[str, str] | None = None,
        sort_prefix: str | None = None,
        filter_expression: str | None = None,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
        consistent: bool = False,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One Query page: items as plain dicts and the LastEvaluatedKey (DynamoDB form) or None.
        ``consistent`` reads strongly (twice the capacity; the table only: an index read never is)."""
        if consistent and index is not None:
            raise ValueError("DynamoDB reads a secondary index eventually consistently only")
        if sort_between is not None and sort_between[0] > sort_between[1]:
            # An empty range (a list's ``from`` after its ``to``): DynamoDB refuses a BETWEEN whose lower
            # bound is above its upper one (a ValidationException, a 500 here; moto does not check it).
            # Strings compare as DynamoDB compares them: UTF-8 bytes order as code points do.
            return [], None
        pk_name, sk_name = keys.INDEX_KEYS[index]
        limits.check_key_value(pk_name, partition)
        for bound in (*(sort_between or ()), *((sort_prefix,) if sort_prefix is not None else ())):
            limits.check_key_value(sk_name, bound)
        expr_names = {"#pk": pk_name, **(names or {})}
        expr_values: dict[str, Any] = {":pk": partition, **(values or {})}
        condition = "#pk = :pk"
        if sort_between is not None:
            expr_names["#sk"] = sk_name
            expr_values[":lo"], expr_values[":hi"] = sort_between
            condition += " AND #sk BETWEEN :lo AND :hi"
        elif sort_prefix is not None:
            expr_names["#sk"] = sk_name
            expr_values[":prefix"] = sort_prefix
            condition += " AND begins_with(#sk, :prefix)"
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": expr_names,
            "ExpressionAttributeValues": {k: aws.serialize_value(v) for k, v in expr_values.items()},
            "ScanIndexForward": ascending,
        }
        if index is not None:
            kwargs["IndexName"] = index
        if limit is not None:
            kwargs["Limit"] = limit
        if start_key is not None:  # a client's cursor: DynamoDB's own rules, a 400 rather than its 500
            aws.check_start_key(
                start_key, partition=partition, index=index, sort_between=sort_between, sort_prefix=sort_prefix
            )
            kwargs["ExclusiveStartKey"] = start_key
        if filter_expression is not None:
            kwargs["FilterExpression"] = filter_expression
        if consistent:
            kwargs["ConsistentRead"] = True
        response = self.call("query", **kwargs)
        return [aws.deserialize(i) for i in response.get("Items", [])], response.get("LastEvaluatedKey")

    def query_window(
        self,
        *,
        partition: str,
        limit: int,
        index: str | None = None,
        start_key: dict[str, Any] | None = None,
        **query: Any,
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Up to ``limit`` items of a Query (``query``: ``query_page``'s other arguments) and the key of the
        last one when another item follows, None when none does: a list's page and its next page's start.

        One item more than ``limit`` is read to tell. DynamoDB's ``LastEvaluatedKey`` cannot: it is set
        whenever a Query stops at its ``Limit``, on a list's last item too, so a page that ends a list exactly
        would promise a next page that comes back empty (moto sets it only when an item follows). A page
        DynamoDB cut at 1 MB is read on from where it stopped."""
        found: list[dict[str, Any]] = []
        while True:
            items, last = self.query_page(
                partition=partition, index=index, limit=limit + 1 - len(found), start_key=start_key, **query
            )
            found.extend(items)
            if len(found) > limit:
                boundary = found[limit - 1]
                return found[:limit], {name: boundary[name] for name in (*keys.INDEX_KEYS[index], keys.PK, keys.SK)}
            if last is None:
                return found, None
            start_key = last

    def query_filtered(
        self,
        *,
        space_id: str,
        partition: str,
        index: str,
        sort_between: tuple[str, str],
        limit: int,
        cursor: str | None,
        equal: Mapping[str, str | None] | None = None,
        contain: Mapping[str, Iterable[str]] | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to ``limit`` items of a time-bounded, newest-first Query, and the opaque cursor of the next
        page (None when there is none). FilterExpressions: each attribute of ``equal`` equals its value
        (None: no filter), each attribute of ``contain`` holds every one of its values. Filtered queries
        read larger pages (a filter is applied after the page is read); the cursor is the last item returned.
        A filtered call reads at most ``MAX_FILTERED_READ`` items: past that it answers fewer than ``limit``
        items (perhaps none) and the cursor of the last item read, so a filter that matches little costs the
        client more requests, never one request that reads a whole partition."""
        conditions, names, values = _filter(equal or {}, contain or {})
        start = aws.decode_cursor(cursor, space_id=space_id, partition=partition, index=index) if cursor else None
        if not conditions:
            page, after = self.query_window(
                partition=partition,
                index=index,
                ascending=False,
                limit=limit,
                start_key=start,
                sort_between=sort_between,
            )
            return page, aws.encode_cursor(after) if after is not None else None
        found: list[dict[str, Any]] = []
        read = 0
        while True:
            size = max(_FILTERED_PAGE, limit)
            items, last_key = self.query_page(
                partition=partition,
                index=index,
                ascending=False,
                limit=size,
                start_key=start,
                sort_between=sort_between,
                filter_expression=" AND ".join(conditions) or None,
                names=names or None,
                values=values or None,
            )
            for position, item in enumerate(items):
                found.append(item)
                if len(found) == limit:
                    more = position < len(items) - 1 or last_key is not None
                    cursor_key = {k: item[k] for k in (*keys.INDEX_KEYS[index], keys.PK, keys.SK)}
                    return found, aws.encode_cursor(cursor_key) if more else None
            if last_key is None:
                return found, None
            read += size  # DynamoDB evaluated ``size`` items for this page (Limit applies before the filter)
            if read >= MAX_FILTERED_READ:
                return found, aws.encode_cursor(last_key)
            start = last_key

    def query_all(self, **kwargs: Any) -> Iterable[dict[str, Any]]:
        """Every item of a Query, page after page."""
        start: dict[str, Any] | None = None
        while True:
            items, start = self.query_page(start_key=start, **kwargs)
            yield from items
            if start is None:
                return

    # --- spaces --------------------------------------------------------------------------
    def next_space_number(self) -> int:
        """Allocate the next ``Spaces-N`` number (system counter)."""
        response = self.call(
            "update_item",
            TableName=self.table,
            Key=aws.serialize(keys.space_counter()),
            UpdateExpression="ADD #n :one SET #t = :type",
            ExpressionAttributeNames={"#n": "value", "#t": keys.TYPE},
            ExpressionAttributeValues={":one": {"N": "1"}, ":type": {"S": keys.T_COUNTER}},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["value"]["N"])

    def create_space(self, record: SpaceRecord, now: str) -> bool:
        """Create a space and its registration; False when the id is taken (a transaction still
        cancelled for contention after its retries: ``WriteContendedError``)."""
        space_item = {
            **keys.space(record.id),
            keys.TYPE: keys.T_SPACE,
            "id": record.id,
            "name": record.name,
            "default_environment": record.default_environment,
            **_settings_attributes(record.settings),
            "figures_format": record.figures_format,
            "created_at": now,
        }
        registration = {**keys.space_registration(record.id), keys.TYPE: keys.T_SPACE_REGISTRY, "id": record.id}
        operations = [self.put_op(space_item, must_not_exist=True), self.put_op(registration)]
        return self.transact_or_contended(operations, f"space '{record.id}'") is None

    def get_space(self, space_id: str, *, consistent: bool = False) -> SpaceRecord | None:
        """One GetItem of the space item."""
        item = self.get(keys.space(space_id), consistent=consistent)
        return _space_from_item(item) if item else None

    def list_space_ids(self) -> list[str]:
        """The system registry's partition, every page."""
        return [i["id"] for i in self.query_all(partition=keys.SPACE_REGISTRY_PK)]

    def set_webhook_secret_encrypted(self, space_id: str, ciphertext: str) -> None:
        """Store the space's GitHub webhook secret as its KMS ciphertext (``dal.secrets``) and remove the
        plaintext a space written before encryption holds, in one UpdateItem (404 if the space does not exist)."""
        updated = self.update_if(
            keys.space(space_id),
            UpdateExpression="SET #sealed = :v REMOVE #plain",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeNames={"#sealed": "webhook_secret_encrypted", "#plain": "webhook_secret"},
            ExpressionAttributeValues={":v": {"S": ciphertext}},
        )
        if updated is None:
            raise ResourceNotFoundError(f"space '{space_id}' not found")

    def set_gitlab_token_hash(self, space_id: str, token_hash: str) -> None:
        """Store the SHA-256 hash of the space's GitLab webhook token (404 if the space does not exist);
        GitLab sends the token itself, so the hash is all a check needs."""
        self._set_on_space(space_id, "gitlab_token_hash", token_hash)

    def _set_on_space(self, space_id: str, attribute: str, value: str) -> None:
        """Set one string attribute of an existing space item; 404 when there is no such space."""
        updated = self.update_if(
            keys.space(space_id),
            UpdateExpression="SET #a = :v",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeNames={"#a": attribute},
            ExpressionAttributeValues={":v": {"S": value}},
        )
        if updated is None:
            raise ResourceNotFoundError(f"space '{space_id}' not found")

    def save_space_settings(
        self, space_id: str, settings: SpaceSettings, *, expected_revision: int, streams: Sequence[str], now: str
    ) -> bool:
        """One UpdateItem conditional on ``settings_revision``, in a transaction with the marks if any
        (``transact_contended``: the marks are shared with every ingest); False when the condition failed,
        ``WriteContendedError`` when concurrent writes kept it from going through."""
        if len(streams) >= aws.MAX_TRANSACTION_ITEMS:
            raise ValueError(f"at most {aws.MAX_TRANSACTION_ITEMS - 1} dirty marks go with the settings")
        attributes = _settings_attributes(settings)
        kept = {k: v for k, v in attributes.items() if v is not None}
        names = {f"#a{n}": name for n, name in enumerate(attributes)}
        values = {f":a{n}": kept[name] for n, name in enumerate(attributes) if name in kept}
        sets = [f"#a{n} = :a{n}" for n, name in enumerate(attributes) if name in kept]
        removes = [f"#a{n}" for n, name in enumerate(attributes) if name not in kept]
        names["#rev"] = "settings_revision"
        values[":expected"] = expected_revision
        condition = "attribute_exists(PK) AND #rev = :expected"
        if expected_revision == 0:  # a space whose settings were never changed has no revision yet
            condition = "attribute_exists(PK) AND (attribute_not_exists(#rev) OR #rev = :expected)"
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": aws.serialize(keys.space(space_id)),
            "UpdateExpression": "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else ""),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": aws.serialize(values),
        }
        if not streams:
            try:
                return self.call_if("update_item", **update) is not None
            except aws.ClientError as error:  # another change's transaction holds the space item
                if aws.error_code(error) == "TransactionConflictException":
                    raise WriteContendedError(
                        "the settings could not be written now, for concurrent writes; retry the request"
                    ) from None
                raise
        operations = [{"Update": update}, *(self.dirty_op(space_id, stream, now) for stream in streams)]
        return self.transact_or_contended(operations, "the settings") is None

    def mark_streams_dirty(self, space_id: str, streams: Sequence[str], now: str) -> None:
        """``dirty_op`` Updates, 100 to a transaction (``transact_unconditional``)."""
        for chunk in aws.chunks(streams, aws.MAX_TRANSACTION_ITEMS):
            self.transact_unconditional([self.dirty_op(space_id, stream, now) for stream in chunk])

    def set_figures_format(self, space_id: str, figures_format: int) -> None:
        """One UpdateItem of the space item (nothing when the space is gone)."""
        self.update_if(
            keys.space(space_id),
            UpdateExpression="SET figures_format = :f",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeValues=aws.serialize({":f": figures_format}),
        )

    def settle_space_marks(self, space_id: str, revision: int) -> None:
        """A REMOVE conditional on ``settings_revision``."""
        self.update_if(
            keys.space(space_id),
            UpdateExpression="REMOVE marks_owed",
            ConditionExpression="settings_revision = :rev",
            ExpressionAttributeValues=aws.serialize({":rev": revision}),
        )

    def next_numbers(self, space_id: str, counts: Mapping[str, int]) -> dict[str, list[int]]:
        """One UpdateItem ADD of the space's counters item."""
        names = sorted(n for n, c in counts.items() if c > 0)
        if not names:
            return {}
        expr_names = {f"#c{i}": n for i, n in enumerate(names)}
        expr_values = {f":n{i}": {"N": str(counts[n])} for i, n in enumerate(names)}
        response = self.call(
            "update_item",
            TableName=self.table,
            Key=aws.serialize(keys.space_numbers(space_id)),
            UpdateExpression="ADD " + ", ".join(f"#c{i} :n{i}" for i in range(len(names))) + " SET #t = :type",
            ExpressionAttributeNames={**expr_names, "#t": keys.TYPE},
            ExpressionAttributeValues={**expr_values, ":type": {"S": keys.T_COUNTER}},
            ReturnValues="UPDATED_NEW",
        )
        attributes = response["Attributes"]
        allocated: dict[str, list[int]] = {}
        for n in names:
            last = int(attributes[n]["N"])
            allocated[n] = list(range(last - counts[n] + 1, last + 1))
        return allocated

    # --- API keys ------------------------------------------------------------------------
    def create_api_key(self, record: ApiKeyRecord) -> None:
        """Store a key under its space and its hash lookup, together."""
        listed = {
            **keys.api_key(record.space_id, record.id),
            keys.TYPE: keys.T_API_KEY,
            **_api_key_attributes(record),
        }
        lookup = {
            **keys.api_key_lookup(record.key_hash),
            keys.TYPE: keys.T_API_KEY_LOOKUP,
            **_api_key_attributes(record),
        }
        self.transact([self.put_op(listed, must_not_exist=True), self.put_op(lookup, must_not_exist=True)])

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The hash lookup item, read consistently."""
        item = self.get(keys.api_key_lookup(key_hash), consistent=True)
        return _api_key_from_item(item) if item else None

    def list_api_keys(self, space_id: str) -> list[ApiKeyRecord]:
        """A space's keys (never the keys themselves), in creation order (``ApiKeys-2`` before ``ApiKeys-10``,
        which the sort key's text would put first)."""
        found = [_api_key_from_item(i) for i in self.query_all(partition=keys.api_keys_pk(space_id))]
        return sorted(found, key=lambda record: (len(record.id), record.id))

    def revoke_api_key(self, space_id: str, key_id: str) -> None:
        """Delete a key and its lookup together; 404 if the space has no such key."""
        item = self.get(keys.api_key(space_id, key_id), consistent=True)
        if item is None:
            raise ResourceNotFoundError(f"API key '{key_id}' not found")
        record = _api_key_from_item(item)
        failed = self.transact_or_contended(
            [
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": aws.serialize(keys.api_key(space_id, key_id)),
                        "ConditionExpression": "attribute_exists(PK)",
                    }
                },
                {"Delete": {"TableName": self.table, "Key": aws.serialize(keys.api_key_lookup(record.key_hash))}},
            ],
            "the API key",
        )
        if failed is not None:  # a concurrent revocation took it first: to this caller it is gone
            raise ResourceNotFoundError(f"API key '{key_id}' not found")

    # --- catalogue -----------------------------------------------------------------------
    def find_catalogue_names(
        self, space_id: str, wanted: Iterable[tuple[CatalogueKind, str]], *, consistent: bool = False
    ) -> dict[tuple[CatalogueKind, str], CatalogueEntry]:
        """The name items: a BatchGetItem per 100 (``consistent``: strongly consistent reads). A name
        whose key DynamoDB could not hold (a query's literal of any length) is no name the space has:
        it is not asked for (AWS refuses the whole read for one such key)."""
        names = [key for kind, name in wanted if _holdable(key := keys.catalogue_name(space_id, kind.value, name))]
        if not names:
            return {}
        found: dict[tuple[CatalogueKind, str], CatalogueEntry] = {}
        for item in self.batch_get(names, consistent=consistent):
            kind = CatalogueKind(item["kind"])
            found[(kind, item["name"].casefold())] = CatalogueEntry(kind=kind, id=item["id"], name=item["name"])
        return found

    def register_catalogue(self, space_id: str, entries: Sequence[CatalogueEntry], number_of: dict[str, int]) -> bool:
        """Name and id items, each conditional on its absence, in one transaction: False when a
        concurrent registration took a name or id first (the caller reads again); still cancelled for
        contention after the retries, ``WriteContendedError`` (503), not a registration that never settles."""
        operations = []
        for entry in entries:
            attributes = {"kind": entry.kind.value, "id": entry.id, "name": entry.name, "space_id": space_id}
            name_item = {
                **keys.catalogue_name(space_id, entry.kind.value, entry.name),
                keys.TYPE: keys.T_CATALOGUE_NAME,
            }
            id_item = {
                **keys.catalogue_id(space_id, entry.kind.value, number_of[entry.id]),
                keys.TYPE: keys.T_CATALOGUE_ID,
            }
            operations += [
                self.put_op({**name_item, **attributes}, must_not_exist=True),
                self.put_op({**id_item, **attributes}, must_not_exist=True),
            ]
        return self.transact_or_contended(operations, "the catalogue's new names") is None

    def existing_catalogue_ids(self, space_id: str, ids: Iterable[str]) -> set[str]:
        """The id items: a BatchGetItem per 100, consistent (an entity a deployment registered a moment
        ago exists); ids of no catalogue kind are not asked for."""
        wanted: list[dict[str, str]] = []
        kinds = {k.value for k in CatalogueKind}
        for entity_id in set(ids):
            prefix, _, digits = entity_id.rpartition("-")
            if prefix in kinds and digits.isascii() and digits.isdigit() and len(digits) <= 9:
                wanted.append(keys.catalogue_id(space_id, prefix, int(digits)))
        return {str(item["id"]) for item in self.batch_get(wanted, consistent=True)}

    def add_tenant_tags(self, space_id: str, tag_set: CatalogueEntry, tags: Iterable[str]) -> None:
        """One pattern 8b item a tag (``batch_put``: idempotent, no read, 25 to a call). A set grows by
        items, never within one: a string set on the set's own item stopped every deployment naming a new
        tag once DynamoDB refused the item past 400 KB (a few hundred long tags, some thousands of short)."""
        number = int(tag_set.id.rpartition("-")[2])
        self.batch_put(
            {
                **keys.catalogue_tag(space_id, tag_set.kind.value, number, tag),
                keys.TYPE: keys.T_CATALOGUE_TAG,
                "tag": tag,
            }
            for tag in sorted(set(tags))
        )

    def list_catalogue(self, space_id: str, kind: CatalogueKind, *, consistent: bool = False) -> list[CatalogueEntry]:
        """The kind's id items, every page; a tenant tag set's tags from its pattern 8b items (and the string
        set older versions kept on its id item). ``consistent``: strongly consistent reads (twice the
        capacity), so an entity a deployment registered a moment ago is listed."""
        partition = keys.catalogue_pk(space_id, kind.value)
        tags: dict[int, set[str]] = {}
        if kind is CatalogueKind.TENANT_TAG_SET:
            for item in self.query_all(
                partition=partition, sort_prefix=keys.CATALOGUE_TAG_PREFIX, consistent=consistent
            ):
                tags.setdefault(keys.catalogue_tag_set_number(item[keys.SK]), set()).add(item["tag"])
        return [
            CatalogueEntry(
                kind=kind,
                id=i["id"],
                name=i["name"],
                tags=tuple(sorted(set(i.get("tags", ())) | tags.get(int(i["id"].rpartition("-")[2]), set()))),
            )
            for i in self.query_all(partition=partition, sort_prefix=keys.CATALOGUE_ID_PREFIX, consistent=consistent)
        ]

    # --- deployments ---------------------------------------------------------------------
    def deployment_item(self, deployment: Deployment) -> dict[str, Any]:
        """A deployment as a table item (main key, index attributes, data)."""
        return {
            **keys.deployment(deployment.space_id, deployment.id),
            **keys.deployment_indexes(
                deployment.space_id,
                deployment.id,
                deployment.project_id,
                deployment.stream_key,
                deployment.finished_at,
                deployment.started_at,
            ),
            keys.TYPE: keys.T_DEPLOYMENT,
            **deployment.model_dump(mode="json", exclude_none=True),
        }

    def dirty_op(
        self, space_id: str, stream: str, now: str, *, count: int = 1, written: Deployment | None = None
    ) -> dict[str, Any]:
        """Mark a stream for the recompute: one Update of a transaction.

        ``dirty_at`` is the latest mark's time and ``mark_id`` its own random id (the recompute clears the
        mark, or records it caught up, only if both are unchanged: a request stamps each of its writes with
        its start time, so a later transaction of the same request leaves the same ``dirty_at``),
        ``pending`` counts the marks since the stream was last computed (an upper bound on its
        changes waiting: a read's refresh estimates its work from it, ``logic/freshness.py``);
        ``count``: the changes this mark stands for (a bulk write's deployments of the stream).
        ``written``: the deployment the write stores in the stream (a bulk write's: its last in stream
        order), kept as ``latest`` (id and stream position) with the one the previous such write stored
        as ``prior``: the stream's index may not show either yet (``AttributionStore.previous_success``).
        """
        expression = "SET #type = :type, #stream = :stream, dirty_at = :now, mark_id = :mark"
        names = {"#type": keys.TYPE, "#stream": "stream"}
        values: dict[str, Any] = {
            ":type": keys.T_DIRTY_STREAM,
            ":stream": stream,
            ":now": now,
            ":mark": new_mark_id(),
            ":one": count,
        }
        if written is not None:
            expression += ", #prior = if_not_exists(#latest, :none), #latest = :latest"
            names.update({"#prior": "prior", "#latest": "latest"})  # PRIOR is a reserved word
            values[":none"] = {}
            values[":latest"] = {"id": written.id, "position": stream_position(written)}
            expression += ", preview = :preview"
            values[":preview"] = written.stream_preview
        return {
            "Update": {
                "TableName": self.table,
                "Key": aws.serialize(keys.dirty_stream(space_id, stream)),
                "UpdateExpression": expression + " ADD pending :one",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": aws.serialize(values),
            }
        }

    def outbox_item(
        self,
        space_id: str,
        deployment_id: str,
        *,
        due: str,
        created_at: str,
        superseded: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The attribution a deployment is owed (pattern 104), due for the sweep at ``due`` (pattern 105).

        ``superseded``: what a replaced version's attribution left to clean (ledger, pages, marks)."""
        return {
            **keys.attribution_outbox(space_id, deployment_id),
            **keys.attribution_outbox_indexes(space_id, deployment_id, due),
            keys.TYPE: keys.T_ATTRIBUTION_OUTBOX,
            "deployment_id": deployment_id,
            "created_at": created_at,
            "superseded": dict(superseded) if superseded is not None else None,
        }

    def get_deployment(self, space_id: str, deployment_id: str, *, consistent: bool = False) -> Deployment | None:
        """One deployment by id, or None; ``consistent``: a strongly consistent read."""
        item = self.get(keys.deployment(space_id, deployment_id), consistent=consistent)
        return _deployment_from_item(item) if item else None

    def stored_body_hashes(
        self,
        space_id: str,
        *,
        deployment_ids: Iterable[str] = (),
        idempotency_keys: Iterable[tuple[str, str]] = (),
    ) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
        """The ``body_hash`` stored under each deployment id (pattern 9) and dialect idempotency key
        (pattern 13) that holds one, in strongly consistent BatchGetItems (100 keys each). A key DynamoDB
        could not hold is no key anything is stored under: it is not asked for."""
        by_id = {_pair(keys.deployment(space_id, i)): i for i in deployment_ids}
        by_key = {_pair(keys.idempotency(space_id, *k)): k for k in idempotency_keys}
        wanted = [{keys.PK: pk, keys.SK: sk} for pk, sk in (*by_id, *by_key)]
        ids: dict[str, str] = {}
        records: dict[tuple[str, str], str] = {}
        for item in self.batch_get([k for k in wanted if _holdable(k)], consistent=True):
            found, body_hash = _pair(item), item.get("body_hash")
            if body_hash is None:
                continue
            if found in by_id and item.get(keys.TYPE) == keys.T_DEPLOYMENT:
                ids[by_id[found]] = str(body_hash)
            elif found in by_key and item.get(keys.TYPE) == keys.T_IDEMPOTENCY:
                records[by_key[found]] = str(body_hash)
        return ids, records

    def list_dirty_streams(self, space_id: str) -> list[dict[str, Any]]:
        """Pattern 14, every page (a mark written before marks were counted is ``pending`` 1), strongly
        consistent: a read right after a write must see its mark (``pending`` 0 says the answer is current)."""
        items = self.query_all(partition=keys.dirty_streams_pk(space_id), consistent=True)
        return [_dirty_mark(i) for i in items]

    def dirty_stream(self, space_id: str, stream: str) -> dict[str, Any] | None:
        """Pattern 14, one GetItem: the stream's mark as ``list_dirty_streams`` gives it, or None."""
        item = self.get(keys.dirty_stream(space_id, stream))
        return _dirty_mark(item) if item is not None else None


def _dirty_mark(item: Mapping[str, Any]) -> dict[str, Any]:
    """A dirty mark as its readers take it (``preview``: ``Deployment.stream_preview`` of a deployment the
    mark was written with, absent on a mark written without one)."""
    mark = {
        "stream": item["stream"],
        "dirty_at": item["dirty_at"],
        "mark_id": item.get("mark_id"),
        "pending": int(item.get("pending", 1)),
        "caught_up": item.get("caught_up")
        if (item.get("caught_up_to"), item.get("caught_up_id")) == (item["dirty_at"], item.get("mark_id"))
        else None,
    }
    if "preview" in item:
        mark["preview"] = item["preview"]
    return mark


def new_mark_id() -> str:
    """A dirty mark's id: random, so two marks of the same instant differ (``Store.dirty_op``)."""
    return os.urandom(8).hex()


def _filter(
    equal: Mapping[str, str | None], contain: Mapping[str, Iterable[str]]
) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """The conditions of a FilterExpression (ANDed) with their attribute names and values."""
    conditions: list[str] = []
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    for n, (attribute, value) in enumerate(equal.items()):
        if value is not None:
            conditions.append(f"#e{n} = :e{n}")
            names[f"#e{n}"], values[f":e{n}"] = attribute, str(value)
    for n, (attribute, wanted) in enumerate(contain.items()):
        for m, value in enumerate(dict.fromkeys(wanted)):
            conditions.append(f"contains(#c{n}, :c{n}v{m})")
            names[f"#c{n}"], values[f":c{n}v{m}"] = attribute, value
    return conditions, names, values


def _space_from_item(item: Mapping[str, Any]) -> SpaceRecord:
    return SpaceRecord(
        id=item["id"],
        name=item["name"],
        default_environment=item.get("default_environment", "production"),
        webhook_secret=item.get("webhook_secret"),
        webhook_secret_encrypted=item.get("webhook_secret_encrypted"),
        gitlab_token_hash=item.get("gitlab_token_hash"),
        settings=_settings_from_item(item),
        figures_format=int(item.get("figures_format", 0)),
    )


def _settings_attributes(settings: SpaceSettings) -> dict[str, Any]:
    """A space's settings as attributes of its item (None: the attribute is absent)."""

    def ref(environment: EnvironmentRef) -> dict[str, str]:
        return {"id": environment.id, "name": environment.name}

    return {
        "failure_window_hours": settings.failure_window_hours,
        "summary_environment": ref(settings.summary_environment) if settings.summary_environment else None,
        "default_benchmark": settings.default_benchmark,
        "production_environments": [ref(e) for e in settings.production_environments] or None,
        "settings_revision": settings.revision,
        "settings_updated_at": settings.updated_at,
        "settings_updated_by": settings.updated_by,
        "marks_owed": True if settings.marks_owed else None,
    }


def _settings_from_item(item: Mapping[str, Any]) -> SpaceSettings:
    def ref(value: Mapping[str, Any]) -> EnvironmentRef:
        return EnvironmentRef(id=str(value["id"]), name=str(value["name"]))

    summary_environment = item.get("summary_environment")
    return SpaceSettings(
        failure_window_hours=float(item.get("failure_window_hours", DEFAULT_FAILURE_WINDOW_HOURS)),
        summary_environment=ref(summary_environment) if summary_environment else None,
        default_benchmark=item.get("default_benchmark"),
        production_environments=tuple(ref(e) for e in item.get("production_environments") or ()),
        revision=int(item.get("settings_revision", 0)),
        updated_at=item.get("settings_updated_at"),
        updated_by=item.get("settings_updated_by"),
        marks_owed=bool(item.get("marks_owed", False)),
    )


def _api_key_attributes(record: ApiKeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "space_id": record.space_id,
        "name": record.name,
        "scopes": list(record.scopes),
        "user": record.user,
        "created_at": record.created_at,
        "key_hash": record.key_hash,
    }


def _api_key_from_item(item: Mapping[str, Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=item["id"],
        space_id=item["space_id"],
        name=item["name"],
        scopes=tuple(item.get("scopes", [])),
        user=item.get("user"),
        created_at=item.get("created_at", ""),
        key_hash=item["key_hash"],
    )


_INDEX_ATTRIBUTES = frozenset(
    {keys.PK, keys.SK, keys.TYPE, keys.GSI1PK, keys.GSI1SK, keys.GSI2PK, keys.GSI2SK, keys.GSI3PK, keys.GSI3SK}
)


def _deployment_from_item(item: Mapping[str, Any]) -> Deployment:
    return Deployment.model_validate({k: v for k, v in item.items() if k not in _INDEX_ATTRIBUTES})


def deployment_from_item(item: Mapping[str, Any]) -> Deployment:
    """A deployment from a table or index item."""
    return _deployment_from_item(item)


def _pair(item: Mapping[str, Any]) -> tuple[str, str]:
    """An item's (or key's) partition and sort key."""
    return str(item[keys.PK]), str(item[keys.SK])


def _holdable(key: Mapping[str, str]) -> bool:
    """Whether DynamoDB takes ``key`` (its attributes within their byte limits) in a read."""
    try:
        limits.check_keys(aws.serialize(key))
    except KeyTooLargeError:
        return False
    return True


def idempotency_item(deployment: Deployment, idempotency: tuple[str, str], now: str) -> dict[str, Any]:
    """The record mapping a dialect's idempotency key to the deployment it created (pattern 13)."""
    dialect, client_id = idempotency
    return {
        **keys.idempotency(deployment.space_id, dialect, client_id),
        keys.TYPE: keys.T_IDEMPOTENCY,
        "target_id": deployment.id,
        "body_hash": deployment.body_hash,
        "created_at": now,
    }
