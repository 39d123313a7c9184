"""The scheduled recompute's use case (METRICS §3–4): finds dirty streams space by space."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from dora_insights.dal.store import Store


class RecomputeSummary(BaseModel):
    """What one run did."""

    spaces: int
    streams_pending: int
    streams_processed: int


def run(store: Store, now: datetime, *, deadline_ms: int | None = None) -> RecomputeSummary:
    """Visit every space's dirty streams. Figures and aggregates are computed by the reports issue's engine;
    until then dirty marks are kept, so nothing is lost when the engine lands."""
    del now, deadline_ms
    space_ids = store.list_space_ids()
    pending = 0
    for space_id in space_ids:
        pending += len(store.list_dirty_streams(space_id))
    return RecomputeSummary(spaces=len(space_ids), streams_pending=pending, streams_processed=0)
