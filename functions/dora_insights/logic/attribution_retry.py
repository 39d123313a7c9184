"""Retry of a pending attribution (METRICS §5), driven by the retry queue."""

from __future__ import annotations

from datetime import datetime

from dora_insights.dal.store import Store
from dora_insights.errors import ResourceNotFoundError
from dora_insights.logic import attribution
from dora_insights.observability import logger


def retry(store: Store, space_id: str, deployment_id: str, attempt: int, now: datetime) -> str | None:
    """Re-run attribution for one deployment (a no-op once it is final, so redelivery changes
    nothing). A message naming no deployment is poison: it raises, and ends in the DLQ."""
    deployment = store.get_deployment(space_id, deployment_id)
    if deployment is None:
        raise ResourceNotFoundError(f"deployment '{deployment_id}' not found in '{space_id}'")
    state = attribution.attribute_deployment(store, space_id, deployment_id, now)
    logger.info(
        "attribution retry",
        extra={"space_id": space_id, "deployment_id": deployment_id, "attempt": attempt, "state": state},
    )
    return state
