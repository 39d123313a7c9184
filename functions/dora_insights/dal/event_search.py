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
from datetime import datetime
from typing import Any, TypeVar

from dora_insights.dal import aws, keys
from dora_insights.dal.failures import failure_from_item
from dora_insights.dal.store import Store, deployment_from_item
from dora_insights.domain.model import Deployment, FailureEvent
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
        """Streams of a project the recompute registered (pattern 44) or that are marked dirty (pattern 14),
        both read by the project's prefix of the stream key (pattern 17)."""
        prefix = keys.project_streams_prefix(project_id)
        found: set[str] = set()
        for partition in (keys.streams_pk(space_id), keys.dirty_streams_pk(space_id)):
            found.update(str(i[keys.SK]) for i in self.store.query_all(partition=partition, sort_prefix=prefix))
        return sorted(found)

    def deployments_page(
        self,
        space_id: str,
        *,
        project_id: str | None,
        stream: str | None,
        lowest: datetime | None,
        highest: datetime | None,
        ascending: bool,
        limit: int,
        cursor: str | None,
        keep: Callable[[Deployment], bool],
    ) -> tuple[list[Deployment], str | None]:
        """See ``logic.ports.EventSearchRepository.deployments_page``."""
        if cursor is not None:
            scope, value, start = self._resume(space_id, cursor, _DEPLOYMENT_SCOPES)
        elif stream is not None:
            scope, value, start = _STREAM, stream, None
        elif project_id is not None:
            scope, value, start = _PROJECT, project_id, None
        else:
            scope, value, start = _SPACE, None, None
        return self._read(space_id, scope, value, start, lowest, highest, ascending, limit, deployment_from_item, keep)

    def failures_page(
        self,
        space_id: str,
        *,
        lowest: datetime | None,
        highest: datetime | None,
        ascending: bool,
        limit: int,
        cursor: str | None,
        keep: Callable[[FailureEvent], bool],
    ) -> tuple[list[FailureEvent], str | None]:
        """See ``logic.ports.EventSearchRepository.failures_page``."""
        start = self._resume(space_id, cursor, frozenset({_FAILURES}))[2] if cursor is not None else None
        return self._read(space_id, _FAILURES, None, start, lowest, highest, ascending, limit, failure_from_item, keep)

    # --- reading ---------------------------------------------------------------------------------
    def _read(
        self,
        space_id: str,
        scope: str,
        value: str | None,
        start: dict[str, Any] | None,
        lowest: datetime | None,
        highest: datetime | None,
        ascending: bool,
        limit: int,
        convert: Callable[[Mapping[str, Any]], T],
        keep: Callable[[T], bool],
    ) -> tuple[list[T], str | None]:
        index, partition = _partition(space_id, scope, value)
        found: list[T] = []
        read = 0
        size = limit + 1
        while True:
            items, last_key = self.store.query_page(
                partition=partition,
                index=index,
                ascending=ascending,
                limit=size,
                start_key=start,
                sort_between=keys.time_range(lowest, highest),
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
