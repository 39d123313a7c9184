"""The event shapes AWS gives Lambda functions, built locally, and the HTTP API's reading of a response.

- ``http_event``: API Gateway HTTP API, payload format 2.0 (what the deployed API sends);
- ``sqs_record``: one record of an SQS event source mapping's event;
- ``scheduled_event``: the EventBridge "Scheduled Event";
- ``http_response``: what HTTP API makes of a function's result (payload format 2.0 rules).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from dora_local.template import ACCOUNT, REGION, Route

API_ID = "local"
_FIFO_ATTRIBUTES = ("MessageGroupId", "MessageDeduplicationId", "SequenceNumber")
_TEXTUAL = ("text/", "json", "csv", "xml", "javascript", "yaml", "x-www-form-urlencoded", "graphql")


def is_textual(content_type: str) -> bool:
    """Whether a content type is one whose body HTTP API passes as text (when it is UTF-8)."""
    lowered = content_type.lower()
    return any(marker in lowered for marker in _TEXTUAL)


def encode_body(raw: bytes, content_type: str) -> tuple[str | None, bool]:
    """An event's ``body`` and ``isBase64Encoded``: text as-is when it is UTF-8 of a textual type, else base64."""
    if not raw:
        return None, False
    if is_textual(content_type):
        try:
            return raw.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(raw).decode("ascii"), True


def _request_id() -> str:
    """An HTTP API style request id (base64 of 11 random bytes, e.g. ``JKJaXmPLvHcESHA=``)."""
    return base64.b64encode(os.urandom(11)).decode("ascii")


def _trace_id(now: datetime) -> str:
    return f"Root=1-{int(now.timestamp()):08x}-{uuid.uuid4().hex[:24]}"


def http_event(
    method: str,
    raw_path: str,
    query: str,
    headers: Iterable[tuple[str, str]] | dict[str, str],
    body: bytes,
    route: Route,
    params: dict[str, str],
    source_ip: str,
    *,
    port: int | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The API Gateway HTTP API (payload format 2.0) event for one request.

    Headers are lower-cased, repeated ones comma-joined; ``Cookie`` headers become ``cookies``;
    repeated query keys are comma-joined; ``queryStringParameters``, ``pathParameters``, ``cookies``
    and ``body`` are absent when empty, as in the deployed API. ``rawPath`` is URL-decoded (HTTP API does
    that); ``rawQueryString`` is as sent.
    """
    now = now or datetime.now(UTC)
    pairs = headers.items() if isinstance(headers, dict) else headers
    lowered: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in pairs:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    sent = lowered.get("x-forwarded-for")
    lowered["x-forwarded-for"] = f"{sent}, {source_ip}" if sent else source_ip  # the gateway appends the caller
    lowered["x-forwarded-proto"] = "http"  # the gateway's own, whatever the client sent
    if port is not None:
        lowered["x-forwarded-port"] = str(port)
    lowered.setdefault("x-amzn-trace-id", _trace_id(now))
    query_params: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        query_params[name] = f"{query_params[name]},{value}" if name in query_params else value
    text, is_base64 = encode_body(body, lowered.get("content-type", ""))
    host = lowered.get("host", "127.0.0.1")
    domain = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
    path = unquote(raw_path)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": path,
        "rawQueryString": query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = lowered
    if query_params:
        event["queryStringParameters"] = query_params
    event["requestContext"] = {
        "accountId": ACCOUNT,
        "apiId": API_ID,
        "domainName": domain,
        "domainPrefix": domain.split(".")[0],
        "http": {
            "method": method.upper(),
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": lowered.get("user-agent", ""),
        },
        "requestId": _request_id(),
        "routeKey": route.route_key,
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if text is not None:
        event["body"] = text
    if params:
        event["pathParameters"] = params
    event["isBase64Encoded"] = is_base64
    return event


@dataclass
class HttpResponse:
    """What the HTTP front writes back: status, header lines (repeatable), body bytes."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def http_response(result: Any) -> HttpResponse:
    """A function's result as HTTP API (payload format 2.0) turns it into an HTTP response.

    A dict with ``statusCode`` is a response (headers, multiValueHeaders, cookies, body with
    isBase64Encoded); anything else that is JSON-serialisable is a 200 ``application/json`` whose
    body is that JSON. Raises ``ValueError`` for a malformed response (HTTP API answers 500 then).
    """
    if not isinstance(result, dict) or "statusCode" not in result:
        return HttpResponse(200, [("Content-Type", "application/json")], json.dumps(result).encode())
    status = int(result["statusCode"])
    if not 100 <= status <= 599:
        raise ValueError(f"invalid statusCode {status}")
    lines: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        lines.append((str(name), str(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        lines.extend((str(name), str(v)) for v in (values if isinstance(values, list) else [values]))
    lines.extend(("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or [])
    raw = result.get("body")
    if raw is None:
        body = b""
    elif result.get("isBase64Encoded"):
        body = base64.b64decode(str(raw))
    else:
        body = (raw if isinstance(raw, str) else json.dumps(raw)).encode()
    if body and not any(name.lower() == "content-type" for name, _ in lines):
        lines.append(("Content-Type", "application/json"))
    return HttpResponse(status, lines, body)


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of the SQS event Lambda's event source mapping delivers, from a ReceiveMessage message."""
    attributes = message.get("Attributes") or {}
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", str(int(datetime.now(UTC).timestamp() * 1000))),
            "SenderId": attributes.get("SenderId", ACCOUNT),
            "ApproximateFirstReceiveTimestamp": attributes.get(
                "ApproximateFirstReceiveTimestamp", str(int(datetime.now(UTC).timestamp() * 1000))
            ),
            **{
                k: v
                for k, v in attributes.items()
                if k in ("MessageGroupId", "MessageDeduplicationId", "SequenceNumber")
            },
        },
        "messageAttributes": {
            name: _message_attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A ReceiveMessage message attribute in the SQS event's spelling (camelCase, binary as base64)."""
    shaped: dict[str, Any] = {}
    if "StringValue" in value:
        shaped["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        shaped["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    shaped["stringListValues"] = value.get("StringListValues", [])
    shaped["binaryListValues"] = value.get("BinaryListValues", [])
    shaped["dataType"] = value.get("DataType", "String")
    return shaped


def scheduled_event(rule_arn: str, now: datetime | None = None) -> dict[str, Any]:
    """The EventBridge "Scheduled Event" a schedule rule sends its target."""
    now = now or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [rule_arn],
        "detail": {},
    }


def failed_message_ids(response: Any, records: list[dict[str, Any]]) -> set[str]:
    """The message ids a partial batch response reports as failed.

    As Lambda does: a malformed response, or an identifier that is empty or not of this batch, fails
    the whole batch; no ``batchItemFailures`` (or an empty list) is a full success.
    """
    if not isinstance(response, dict) or not response.get("batchItemFailures"):
        return set()
    ids = {r["messageId"] for r in records}
    failures = response["batchItemFailures"]
    if not isinstance(failures, list):
        return ids
    reported: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in ids:
            return ids
        reported.add(str(identifier))
    return reported
