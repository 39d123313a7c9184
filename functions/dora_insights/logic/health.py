"""Recompute health: which streams fail, which are quarantined, and how a space's visits went.

Quarantine (the scheduled recompute's view of a stream it cannot compute):

- A stream whose recompute raises keeps its dirty mark (the next run retries it) and gets a
  health record: its count of failed runs in a row, first and last failure times, and the last
  error's type and a short message (:func:`failure_note`: one line, at most
  ``MAX_ERROR_CHARS``, pydantic errors without their input values).
- After ``QUARANTINE_AFTER`` failed runs in a row it is *quarantined*: the recompute leaves it
  out (:func:`held_back`), so a stream that fails every time costs no run more than a lookup.
- A quarantined stream is tried again, once, when (a) something new is written to it (a
  deployment, a correction or a removal, a failure event of its project: each re-marks it
  dirty with a new time), since that write may well be the fix; or (b)
  ``QUARANTINE_RETRY_AFTER`` has passed since its last failure, so a transient cause (a
  throttled table, a deploy of a bug fix) heals without a write. The retry's failure
  quarantines it again at once (the count is kept); its success clears the record.
- A successful recompute of the stream deletes its record (failing or quarantined alike).

A space's record holds its last clean visit (no failure in any stream, report or threshold)
and its last failed one (``stage``: ``setup``, ``streams``, ``reports`` or ``thresholds``). A
clean visit is written when it did work, followed a failure, or the last one is older than
``SPACE_RECORD_REFRESH``: an idle space costs a write an hour, not one every run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError

from dora_insights.domain.health import FailureNote, SpaceHealthRecord, StreamHealthRecord
from dora_insights.domain.model import stream_ids
from dora_insights.domain.times import parse_stored
from dora_insights.errors import ResourceNotFoundError
from dora_insights.logic.ports import Ports

QUARANTINE_AFTER = 3  # failed runs in a row before a stream is left out of the recompute
QUARANTINE_RETRY_AFTER = timedelta(hours=6)  # a quarantined stream is tried again this long after its last failure
MAX_ERROR_CHARS = 300
SPACE_RECORD_REFRESH = timedelta(hours=1)
_KEY_LIKE = re.compile(r"dora_[A-Za-z0-9_\-]{8,}")


def failure_note(error: BaseException) -> FailureNote:
    """An error as stored and shown: its type and one short line without input values or keys."""
    if isinstance(error, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}"
            for e in error.errors(include_input=False, include_url=False, include_context=False)
        ]
        message = f"{error.title}: " + "; ".join(parts)
    else:
        message = str(error) or type(error).__name__
    message = _KEY_LIKE.sub("dora_…", " ".join(message.split()))
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 1] + "…"
    return FailureNote(error_type=type(error).__name__, message=message)


def held_back(record: StreamHealthRecord | None, dirty_at: str, now: datetime) -> bool:
    """Whether the recompute leaves a dirty stream out this run (quarantined, nothing new, not due a retry)."""
    if record is None or not record.quarantined or record.dirty_at != dirty_at:
        return False
    try:
        return now < parse_stored(record.last_failure_at) + QUARANTINE_RETRY_AFTER
    except ValueError:
        return False


def space_record_due(record: SpaceHealthRecord | None, now: datetime, *, did_work: bool) -> bool:
    """Whether a clean visit is worth a write (see the module docstring)."""
    if did_work or record is None or record.last_success_at is None:
        return True
    if record.last_failure_at is not None and record.last_failure_at >= record.last_success_at:
        return True
    try:
        return now - parse_stored(record.last_success_at) >= SPACE_RECORD_REFRESH
    except ValueError:
        return True


@dataclass(frozen=True)
class StreamHealth:
    """A failing or quarantined stream with the names of its entities (as deployments show them)."""

    record: StreamHealthRecord
    project_id: str | None
    project: str | None
    environment_id: str | None
    environment: str | None
    tenant_id: str | None
    tenant: str | None
    channel_id: str | None
    channel: str | None


@dataclass(frozen=True)
class SpaceHealth:
    """``GET /api/{spaceId}/health``: the space's recompute health."""

    space_id: str
    space: SpaceHealthRecord | None
    dirty_streams: int
    streams: list[StreamHealth]


def space_health(store: Ports, space_id: str) -> SpaceHealth:
    """The space's record, its dirty-stream count and its failing and quarantined streams (four reads);
    404 when the space does not exist."""
    if store.get_space(space_id, consistent=True) is None:  # a space created a moment ago is there
        raise ResourceNotFoundError(f"space '{space_id}' not found")
    repository = store.health()
    space, records = repository.space_health(space_id)
    dirty = len(store.list_dirty_streams(space_id))
    ids = [i for r in records.values() for i in (stream_ids(r.stream) or ()) if i is not None]
    names = repository.catalogue_names(space_id, ids)
    streams = [_with_names(r, names) for _, r in sorted(records.items())]
    return SpaceHealth(space_id=space_id, space=space, dirty_streams=dirty, streams=streams)


def stream_health(store: Ports, space_id: str, stream: str) -> StreamHealthRecord | None:
    """A stream's failure record, or None while it recomputes fine (one GetItem)."""
    return store.health().stream_health(space_id, stream)


def _with_names(record: StreamHealthRecord, names: dict[str, str]) -> StreamHealth:
    ids = stream_ids(record.stream)
    project_id, channel_id, environment_id, tenant_id = ids if ids is not None else (None, None, None, None)

    def name(entity_id: str | None) -> str | None:
        return None if entity_id is None else names.get(entity_id)

    return StreamHealth(
        record=record,
        project_id=project_id,
        project=name(project_id),
        environment_id=environment_id,
        environment=name(environment_id),
        tenant_id=tenant_id,
        tenant=name(tenant_id),
        channel_id=channel_id,
        channel=name(channel_id),
    )
