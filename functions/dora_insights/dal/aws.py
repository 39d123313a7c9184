"""AWS plumbing of the dal: the lazily created boto3 clients (DynamoDB, SQS, EventBridge, KMS) and
DynamoDB's item (de)serialisation, cursors, chunking and transaction errors; SQS's batch sends.

Clients are created on first use, cached per process, with explicit timeouts and the
adaptive retry mode; nothing happens at import time, and boto3 itself (with botocore's session and
client machinery, the largest part of a cold import) is imported with the first client or item
(de)serialisation, so routes that never reach AWS (health, the OpenAPI document, the dashboard's
files) do not load it (bench/cold_start.py). botocore's error classes are this module's attributes
``aws.ClientError`` and ``aws.BotoCoreError``, imported the first time an ``except`` clause tests
one (an AWS call has loaded botocore by then), so catching them costs the import nothing.
``AWS_ENDPOINT_URL`` (read by botocore itself) points the clients at moto locally and in tests.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal, DecimalException
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from dora_insights.dal import keys, limits
from dora_insights.errors import ItemInvalidError, MessagesUnsentError, RequestInvalidError

if TYPE_CHECKING:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
    from botocore.exceptions import BotoCoreError, ClientError

__all__ = ["BotoCoreError", "ClientError"]

MAX_BATCH_WRITE = 25  # DynamoDB's limit; moto accepts more, so it is enforced here
MAX_BATCH_GET = 100
MAX_TRANSACTION_ITEMS = 100


def __getattr__(name: str) -> Any:
    """``ClientError`` and ``BotoCoreError`` from botocore, on first use (module ``__getattr__``, PEP 562)."""
    if name in {"BotoCoreError", "ClientError"}:
        from botocore import exceptions

        return getattr(exceptions, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@lru_cache(maxsize=8)
def client(service: str = "dynamodb") -> Any:
    """A cached boto3 client (DynamoDB, SQS, EventBridge; KMS for ``dal.secrets``)."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=2, read_timeout=5, retries={"mode": "adaptive", "max_attempts": 4})
    return boto3.session.Session().client(service, config=config)


@lru_cache(maxsize=1)
def _codec() -> tuple[TypeSerializer, TypeDeserializer]:
    """boto3's item (de)serialisers, made on first use (importing them imports boto3)."""
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints between mocks)."""
    client.cache_clear()


def _to_dynamo_value(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Mapping):  # a None inside a map is kept (DynamoDB's NULL): free-form JSON holds them
        return {k: _to_dynamo_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo_value(v) for v in value]
    return value


def _from_dynamo_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {k: _from_dynamo_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo_value(v) for v in value]
    if isinstance(value, set):
        return sorted(_from_dynamo_value(v) for v in value)
    return value


def _serialized(name: str, value: Any) -> Any:
    try:
        return _codec()[0].serialize(_to_dynamo_value(value))
    except (DecimalException, TypeError, ValueError) as error:
        # A number DynamoDB cannot hold (over 38 digits, beyond 1E-130..9.99E+125, NaN, infinity) or
        # a type it has no form for: a value the boundary should have refused (dialects.limits).
        raise ItemInvalidError(f"attribute {name!r} cannot be stored in DynamoDB: {type(error).__name__}") from None


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict as a DynamoDB item (None attributes dropped, so a sparse index skips them; a None
    inside a map or list kept as NULL; floats as numbers).

    ``ItemInvalidError`` (internal) for a value DynamoDB cannot hold, never a raw decimal error."""
    return {k: _serialized(k, v) for k, v in item.items() if v is not None}


def deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as a plain dict (numbers back to int/float)."""
    return {k: _from_dynamo_value(_codec()[1].deserialize(v)) for k, v in item.items()}


def serialize_value(value: Any) -> dict[str, Any]:
    """One attribute value in DynamoDB form (for expression values)."""
    return _serialized("expression value", value)  # type: ignore[no-any-return]


def error_code(error: ClientError) -> str:
    """The AWS error code of a botocore ClientError."""
    return str(error.response.get("Error", {}).get("Code", ""))


def call_error_code(error: ClientError | BotoCoreError) -> str:
    """What a failed AWS call says: the service's error code (a ClientError), else the botocore exception's
    name (no answer: a timeout, a connection error)."""
    from botocore.exceptions import ClientError as AnsweredError  # loaded by the call that raised

    return error_code(error) if isinstance(error, AnsweredError) else type(error).__name__


def cancellation_reasons(error: ClientError) -> list[dict[str, Any]]:
    """``CancellationReasons`` of a cancelled transaction, one per item (``Code``, optional ``Item``)."""
    return list(error.response.get("CancellationReasons", []))


# --- cursors -------------------------------------------------------------------------------
# A cursor is the ExclusiveStartKey of the next Query, taken from the client. moto takes any start key
# (and answers an empty page); DynamoDB answers ValidationException (a 500 here) for one whose attributes
# are not exactly the table's and the index's key attributes ("The provided starting key is invalid"),
# a key value that is empty or over its size (2048 bytes of UTF-8 a partition key, 1024 a sort key), a
# partition key other than the Query's ("The provided starting key is outside query boundaries based on
# provided conditions") or a sort key outside its key condition ("The provided starting key does not
# match the range key predicate"). :func:`decode_cursor` and :func:`check_start_key` refuse each with
# the 400 of a malformed cursor before anything is sent.
_SORT_KEY_NAMES = frozenset(names[1] for names in keys.INDEX_KEYS.values())


def _invalid_cursor() -> RequestInvalidError:
    return RequestInvalidError("cursor is not valid for this list", field="cursor")


def _storable_key_value(name: str, value: object) -> bool:
    """A key value DynamoDB takes: a non-empty string of valid UTF-8 (no lone surrogate, which a JSON
    ``\\ud800`` escape can make) within its key's byte limit."""
    if not isinstance(value, str) or not value:
        return False
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return False
    return size <= (limits.MAX_SORT_KEY_BYTES if name in _SORT_KEY_NAMES else limits.MAX_PARTITION_KEY_BYTES)


def encode_cursor(last_key: Mapping[str, Any]) -> str:
    """An opaque cursor: urlsafe base64 of the plain (string-valued) key attributes."""
    plain = {k: v["S"] if isinstance(v, Mapping) and "S" in v else v for k, v in last_key.items()}
    raw = json.dumps(plain, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, space_id: str, partition: str, index: str | None) -> dict[str, Any]:
    """The ExclusiveStartKey of a cursor; 400 unless it is one this query issued in this space: exactly
    the key attributes of the table and ``index``, each a value DynamoDB takes as a key (non-empty, within
    its size), the index's partition key ``partition``. Where the Query bounds its sort key, the caller
    checks the key against the bounds too (:func:`check_start_key`)."""
    invalid = _invalid_cursor()
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        plain = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid from None
    if not isinstance(plain, dict) or not all(isinstance(v, str) for v in plain.values()):
        raise invalid
    expected = {keys.PK, keys.SK}
    if index is not None:
        expected |= set(keys.INDEX_KEYS[index])
    if set(plain) != expected or not all(_storable_key_value(k, v) for k, v in plain.items()):
        raise invalid
    pk_name = keys.INDEX_KEYS[index][0]
    prefix = keys.space_prefix(space_id)
    if plain[pk_name] != partition or not plain[keys.PK].startswith(prefix):
        raise invalid
    return {k: {"S": v} for k, v in plain.items()}


def check_start_key(
    start_key: Mapping[str, Any],
    *,
    partition: str,
    index: str | None,
    sort_between: tuple[str, str] | None = None,
    sort_prefix: str | None = None,
) -> None:
    """400 (a cursor not valid for this list) unless DynamoDB takes ``start_key`` as the ExclusiveStartKey
    of the Query of ``partition`` in ``index`` whose sort key is BETWEEN ``sort_between`` (inclusive) or
    begins with ``sort_prefix``: the key attributes of the table and the index, exactly, each a string
    DynamoDB takes as a key value, the index's partition key ``partition``, its sort key within the
    bounds (module comment above). A key DynamoDB returned (LastEvaluatedKey) always passes; one decoded
    from a client's cursor (:func:`decode_cursor`) may have been issued for other bounds (another time
    range): ``Store.query_page`` checks every start key here before the Query is sent."""
    pk_name, sk_name = keys.INDEX_KEYS[index]
    expected = {keys.PK, keys.SK, pk_name, sk_name}
    if set(start_key) != expected:
        raise _invalid_cursor()
    plain: dict[str, str] = {}
    for name, value in start_key.items():
        text = value.get("S") if isinstance(value, Mapping) and len(value) == 1 else None
        if not isinstance(text, str) or not _storable_key_value(name, text):
            raise _invalid_cursor()
        plain[name] = text
    sort = plain[sk_name]  # compared by code point: DynamoDB's order (UTF-8 bytes) for strings checked above
    if plain[pk_name] != partition:
        raise _invalid_cursor()
    if sort_between is not None and not sort_between[0] <= sort <= sort_between[1]:
        raise _invalid_cursor()
    if sort_prefix is not None and not sort.startswith(sort_prefix):
        raise _invalid_cursor()


def chunks(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    """Consecutive lists of at most ``size`` items."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


MAX_SQS_BATCH = 10  # SQS's limit on the messages of one SendMessageBatch
# Pauses before sending again the entries of a SendMessageBatch that SQS failed on its side
# (``SenderFault`` false: throttled, an internal error): twice, 0.3 s in all at most per chunk.
SQS_RESEND_PAUSES = (0.05, 0.25)


def _pause(seconds: float) -> None:
    """Wait before sending refused entries again (a module function: the tests replace it)."""
    time.sleep(seconds)


def _call_errors() -> tuple[type[Exception], ...]:
    """What a whole AWS call raises once botocore's retries are spent (``except`` evaluates this only
    when something was raised, so botocore is imported by then)."""
    from botocore import exceptions

    return (exceptions.BotoCoreError, exceptions.ClientError)


def _send_chunk(queue_url: str, bodies: list[str]) -> tuple[int, list[str], bool]:
    """One SendMessageBatch of at most ``MAX_SQS_BATCH`` bodies, the entries SQS failed on its own side
    sent again after each of ``SQS_RESEND_PAUSES``: how many went, SQS's error code for each one
    that did not, and whether the queue still answered (False: a call failed as a whole, botocore's
    retries spent; the entries it carried are counted with the call's error code)."""
    waiting = {str(n): body for n, body in enumerate(bodies)}
    sent = 0
    codes: list[str] = []
    for attempt, pause in enumerate((0.0, *SQS_RESEND_PAUSES)):
        if pause:
            _pause(pause)
        entries = [{"Id": entry_id, "MessageBody": body} for entry_id, body in waiting.items()]
        try:
            response = client("sqs").send_message_batch(QueueUrl=queue_url, Entries=entries)
        except _call_errors() as error:
            return sent, [*codes, *([call_error_code(error)] * len(entries))], False
        failed = response.get("Failed") or []
        sent += len(entries) - len(failed)
        last = attempt == len(SQS_RESEND_PAUSES)
        again: dict[str, str] = {}
        for failure in failed:
            if failure.get("SenderFault") or last:  # the request's own fault: sending it again cannot help
                codes.append(str(failure.get("Code") or "Unknown"))
            else:
                again[str(failure["Id"])] = waiting[str(failure["Id"])]
        waiting = again
        if not waiting:
            break
    return sent, codes, True


def send_messages(queue_url: str, bodies: Iterable[str], what: str) -> int:
    """Send the messages in order, ``MAX_SQS_BATCH`` per SendMessageBatch; how many were sent.

    Entries SQS fails on its own side (``SenderFault`` false) are sent again, after a short pause, up
    to twice; every chunk is sent even when one before it had entries refused, so one refusal never
    costs the messages after it. Raises ``MessagesUnsentError`` at the end when any message was not
    sent (``what`` names them; it carries the counts and codes). A call that fails as a whole
    (botocore has retried it by then: the queue is unreachable or refuses the caller) stops the send:
    the messages of that call and after it count as not sent (``NotSent`` for those never tried), so
    a caller counts what went as it does for refused entries."""
    sent = 0
    refused: list[str] = []
    answering = True
    for chunk in chunks(bodies, MAX_SQS_BATCH):
        if not answering:
            refused += ["NotSent"] * len(chunk)
            continue
        went, codes, answering = _send_chunk(queue_url, chunk)
        sent += went
        refused += codes
    if refused:
        raise MessagesUnsentError(what, sent, len(refused), refused)
    return sent
