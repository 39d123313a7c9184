"""Space settings for the request path, cached briefly per warm function.

A space's settings (default environment, failure window) change rarely; keeping them for a
minute saves a read on every ingest. Secrets are the exception: a check of a webhook signature
must use the secret as stored now, or a rotated secret would keep working in warm functions for
up to a minute. Such checks read the space with ``fresh=True`` (a strongly consistent read, which
also refreshes the cache), so the old secret fails and the new one verifies as soon as the
rotation is written.

Settings that change figures or answers (``logic/settings.py``) are not read through this cache:
the recompute, a read's refresh and ``/summary`` read the space record itself, so a change of the
settings applies to the next run or read in every function, not a minute later.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from dora_insights.domain.records import SpaceRecord
from dora_insights.errors import ResourceNotFoundError

if TYPE_CHECKING:  # the Protocol is an annotation: every function imports this module, not all need the ports
    from dora_insights.logic.ports import SpaceDirectory

_TTL_SECONDS = 60.0
_CACHE: dict[str, tuple[float, SpaceRecord]] = {}


def clear_cache() -> None:
    """Forget cached spaces (tests, and after an admin change in this process)."""
    _CACHE.clear()


def get_space(store: SpaceDirectory, space_id: str, *, fresh: bool = False) -> SpaceRecord:
    """The space's settings, or 404. ``fresh``: read it now rather than from the cache; required
    wherever a secret of the space is checked. A read is always consistent (twice a GetItem's small
    capacity, once a minute per warm function): a space or a key created a moment ago is found."""
    cached = _CACHE.get(space_id)
    if cached is not None and not fresh and time.monotonic() - cached[0] < _TTL_SECONDS:
        return cached[1]
    record = store.get_space(space_id, consistent=True)
    if record is None:
        _CACHE.pop(space_id, None)
        raise ResourceNotFoundError(f"space '{space_id}' not found")
    _CACHE[space_id] = (time.monotonic(), record)
    return record
