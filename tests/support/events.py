"""Real event shapes from events/, copied before mutation (one helper for every test)."""

from __future__ import annotations

import base64
import copy
import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

EVENTS = Path(__file__).resolve().parents[2] / "events"


@cache
def _load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())  # type: ignore[no-any-return]


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of ``events/<name>``."""
    return copy.deepcopy(_load(name))


def http_event(
    method: str,
    route: str,
    *,
    path_params: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: Any = None,
    raw_body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event for ``METHOD route`` with the given parts."""
    event = load_event("http_api_request.json")
    path = route
    for name, value in (path_params or {}).items():
        path = path.replace("{" + name + "}", value)
    event["routeKey"] = f"{method} {route}"
    event["requestContext"]["routeKey"] = event["routeKey"]
    event["rawPath"] = path
    event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["pathParameters"] = dict(path_params or {})
    if not event["pathParameters"]:
        del event["pathParameters"]
    if query:
        event["rawQueryString"] = urlencode(query)
        event["queryStringParameters"] = dict(query)
    event["headers"] = {"content-type": "application/json", "user-agent": "pytest"}
    if key is not None:
        event["headers"]["authorization"] = f"Bearer {key}"
    event["headers"].update({k.lower(): v for k, v in (headers or {}).items()})
    event["isBase64Encoded"] = False
    if raw_body is not None:
        if isinstance(raw_body, bytes):
            event["body"] = base64.b64encode(raw_body).decode()
            event["isBase64Encoded"] = True
        else:
            event["body"] = raw_body
    elif body is not None:
        event["body"] = json.dumps(body)
    else:
        event.pop("body", None)
    return event
