"""Insight thresholds (alerts): evaluated by the scheduled recompute after it refreshes reports.

A threshold checks the insight's value for its most recent interval (the one containing the
check time) of its first series; it fires below ``lower`` or above ``upper``. Each check is
recorded on the threshold; each move into ``Firing`` puts one ``InsightThresholdBreached``
event on the EventBridge bus.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from dora_insights.dal.insights import InsightStore
from dora_insights.dal.store import Store
from dora_insights.domain.insights import latest_value, threshold_state
from dora_insights.logic import insight_results, insights
from dora_insights.observability import logger

BREACHED = "InsightThresholdBreached"


class Bus(Protocol):
    """Where alert events go (EventBridge when deployed and locally)."""

    def put(self, detail_type: str, detail: dict[str, Any], resources: list[str] | None = None) -> None: ...


def insight_value(store: Store, space_id: str, insight: dict[str, Any], now: datetime) -> float | None:
    """The value a threshold checks: first series, interval containing ``now``."""
    result, _ = insight_results.result_of(store, space_id, insight, now)
    if not result or not result.get("series"):
        return None
    values = result["series"][0]["values"]
    return latest_value(result["interval"], values, now.date().isoformat())


def evaluate(store: Store, bus: Bus | None, space_id: str, now: datetime) -> dict[str, int]:
    """Check every enabled, due threshold of the space; returns counts (checked, fired)."""
    repository = InsightStore(store)
    checked = fired = 0
    for threshold in repository.all_thresholds(space_id):
        if not insights.due(threshold, now):
            continue
        insight = repository.get(space_id, int(threshold["insight"]))
        if insight is None or insight.get("deleted"):
            continue
        value = insight_value(store, space_id, insight, now)
        bounds = threshold["condition"]["bounds"]
        state = threshold_state(value, bounds.get("lower"), bounds.get("upper"))
        previous = threshold.get("state")
        if insights.record_check(store, space_id, threshold, value, state.value, now):
            fired += 1
            detail = {
                "space_id": space_id,
                "insight_id": insight["id"],
                "insight_short_id": insight["short_id"],
                "insight_name": insight.get("name") or insight.get("derived_name"),
                "threshold_id": threshold["id"],
                "threshold_name": threshold["name"],
                "value": value,
                "bounds": bounds,
                "previous_state": previous,
                "state": state.value,
                "checked_at": threshold["last_checked_at"],
                "subscribed_users": threshold.get("subscribed_users", []),
            }
            if bus is not None:
                bus.put(BREACHED, detail)
            logger.info("threshold fired", extra={"threshold_id": threshold["id"], "value": value})
        checked += 1
    return {"checked": checked, "fired": fired}
