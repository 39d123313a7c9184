"""Deployments and failure events for a search evaluated in Python (Datadog lists; ``logic/datadog.py``).

One index partition is read in time order, page by page, and each event read is kept or dropped by the
caller's ``keep`` (the query); never a Scan. Which partition (``dal.keys`` patterns):

- a stream's deployments (pattern 12, GSI3) when the caller names a stream (the query pins service and
  env, and the project has one stream in that environment);
- a project's deployments (pattern 11, GSI2) when it names a project (the query pins the service);
- otherwise the space's deployments by finish time (pattern 10, GSI1), or its failure events by start
  time (pattern 15, GSI1).

The time bounds are a key condition (every sort key above starts with the event's time). The first
Query of a call reads ``limit + 1`` events, so a partition holding only matches fills a page with one
Query and knows whether more follow; when ``keep`` drops events the next Queries read more at a time
(x4, up to ``_MAX_QUERY_PAGE``). One call reads at most ``MAX_READ`` events: past that it answers the
matches found so far (perhaps none) and a cursor where it stopped, so no request reads a whole space.

A cursor names its scope (space, project, stream or failures) and the last key read in it
(``dal.aws`` cursor inside), so the next page continues the same partition whatever else changed; it
is a 400 in another space or another list.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from dora_insights.dal import aws, keys
from dora_insights.dal.deployments import project_streams
from dora_insights.dal.failures import failure_from_item
from dora_insights.dal.store import Store, deployment_from_item
from dora_insights.domain.model import Deployment, FailureEvent
from dora_insights.domain.queries import EventPage, ListScope
from dora_insights.errors import RequestInvalidError

T = TypeVar("T")

MAX_READ = 5_000  # events one call reads at most before it answers with a cursor
_MAX_QUERY_PAGE = 1_000  # the largest Limit of one Query (DynamoDB also stops each page at 1 MB)
_GROWTH = 4

_SPACE, _PROJECT, _STREAM, _FAILURES = "space", "project", "stream", "failures"
_DEPLOYMENT_SCOPES = frozenset({_SPACE, _PROJECT, _STREAM})


def _invalid() -> RequestInvalidError:
    return RequestInvalidError("cursor is not valid for this list", field="cursor")


class EventSearchStore:
    """``logic.ports.EventSearchRepository`` over the table adapter."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def project_streams(self, space_id: str, project_id: str) -> list[str]:
        """Patterns 44 and 14, each read by the project's prefix of the stream key (pattern 17)."""
        return project_streams(self.store, space_id, project_id)

    def deployments_page(
        self, space_id: str, *, scope: ListScope, page: EventPage, keep: Callable[[Deployment], bool]
    ) -> tuple[list[Deployment], str | None]:
        """The scope the cursor names, else the narrowest one given (module docstring)."""
        if page.cursor is not None:
            named, value, start = self._resume(space_id, page.cursor, _DEPLOYMENT_SCOPES)
        elif scope.stream is not None:
            named, value, start = _STREAM, scope.stream, None
        elif scope.project_id is not None:
            named, value, start = _PROJECT, scope.project_id, None
        else:
            named, value, start = _SPACE, None, None
        return self._read(space_id, named, value, start, page, deployment_from_item, keep)

    def failures_page(
        self, space_id: str, *, page: EventPage, keep: Callable[[FailureEvent], bool]
    ) -> tuple[list[FailureEvent], str | None]:
        """Pattern 15, from where the cursor says."""
        cursor = page.cursor
        start = self._resume(space_id, cursor, frozenset({_FAILURES}))[2] if cursor is not None else None
        return self._read(space_id, _FAILURES, None, start, page, failure_from_item, keep)

    # --- reading ---------------------------------------------------------------------------------
    def _read(
        self,
        space_id: str,
        scope: str,
        value: str | None,
        start: dict[str, Any] | None,
        page: EventPage,
        convert: Callable[[Mapping[str, Any]], T],
        keep: Callable[[T], bool],
    ) -> tuple[list[T], str | None]:
        index, partition = _partition(space_id, scope, value)
        limit = page.limit
        found: list[T] = []
        read = 0
        size = limit + 1
        while True:
            items, last_key = self.store.query_page(
                partition=partition,
                index=index,
                ascending=page.ascending,
                limit=size,
                start_key=start,
                sort_between=keys.time_range(page.lowest, page.highest),
            )
            read += len(items)
            previous: Mapping[str, Any] | None = None
            for item in items:
                event = convert(item)
                if not keep(event):
                    continue
                if len(found) == limit:  # one more match: the page ends at the previous one
                    return found, _cursor(scope, value, _key_of(previous or item, index))
                found.append(event)
                previous = item
            if last_key is None:
                return found, None
            if len(found) == limit or read >= MAX_READ:
                return found, _cursor(scope, value, last_key)
            start = last_key
            size = min(max(size * _GROWTH, limit + 1), max(_MAX_QUERY_PAGE, limit + 1))

    def _resume(self, space_id: str, cursor: str, scopes: frozenset[str]) -> tuple[str, str | None, dict[str, Any]]:
        """(scope, value, ExclusiveStartKey) of a cursor this list issued in this space; 400 otherwise."""
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            plain = json.loads(base64.urlsafe_b64decode(padded.encode()))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise _invalid() from None
        if not isinstance(plain, dict) or set(plain) != {"s", "v", "k"}:
            raise _invalid()
        scope, value, inner = plain["s"], plain["v"], plain["k"]
        if scope not in scopes or not isinstance(inner, str) or (value is not None and not isinstance(value, str)):
            raise _invalid()
        if (value is None) != (scope in (_SPACE, _FAILURES)) or (value is not None and not value):
            raise _invalid()
        index, partition = _partition(space_id, scope, value)
        try:
            start = aws.decode_cursor(inner, space_id=space_id, partition=partition, index=index)
        except RequestInvalidError:
            raise _invalid() from None
        return scope, value, start


def _partition(space_id: str, scope: str, value: str | None) -> tuple[str, str]:
    """(index, partition) of a scope."""
    if scope == _STREAM and value is not None:
        return keys.GSI3, keys.deployments_by_stream(space_id, value)
    if scope == _PROJECT and value is not None:
        return keys.GSI2, keys.deployments_by_project(space_id, value)
    if scope == _FAILURES:
        return keys.GSI1, keys.failures_by_time(space_id)
    return keys.GSI1, keys.deployments_by_time(space_id)


def _key_of(item: Mapping[str, Any], index: str) -> dict[str, Any]:
    """The ExclusiveStartKey that continues right after ``item`` in ``index``."""
    return {name: item[name] for name in (*keys.INDEX_KEYS[index], keys.PK, keys.SK)}


def _cursor(scope: str, value: str | None, last_key: Mapping[str, Any]) -> str:
    raw = json.dumps({"s": scope, "v": value, "k": aws.encode_cursor(last_key)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
