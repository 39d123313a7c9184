"""``GET /api/{spaceId}/summary``: the four keys and rework rate over a range, with their tiers
(METRICS §6), from the precomputed per-deployment figures (one paged Query of the space)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dora_insights.dal.metrics import MetricsStore
from dora_insights.dal.store import Store
from dora_insights.domain.aggregates import rate, statistics
from dora_insights.domain.figures import DeploymentFigures, figures_of
from dora_insights.domain.tiers import (
    UnknownBenchmarkError,
    change_failure_rate_tier,
    deployment_frequency_tier,
    lead_time_tier,
    recovery_time_tier,
    tier_table,
)
from dora_insights.errors import RequestInvalidError
from dora_insights.logic.metrics import dims_of

DEFAULT_DAYS = 90


def summary(
    store: Store,
    space_id: str,
    *,
    start: datetime | None,
    end: datetime | None,
    project: str | None,
    environment: str | None,
    benchmark: str,
    now: datetime,
) -> dict[str, Any]:
    """The summary of deployments completed in ``[start, end)`` (default: the last 90 days)."""
    try:
        tier_table(benchmark)
    except UnknownBenchmarkError as error:
        raise RequestInvalidError(str(error), field="benchmark") from None
    end = end or now
    start = start or end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise RequestInvalidError("from must be before to", field="from")
    data = MetricsStore(store)
    streams = data.streams(space_id)
    wanted = {}
    for key, registration in streams.items():
        dims = dims_of(registration["dims"])
        if project and project not in (dims.project_id, dims.project) and project.casefold() != dims.project.casefold():
            continue
        if (
            environment
            and environment not in (dims.environment_id, dims.environment)
            and (environment.casefold() != dims.environment.casefold())
        ):
            continue
        wanted[key] = registration
    rows: list[DeploymentFigures] = []
    for records in data.space_figures(space_id, wanted).values():
        rows.extend(f for f in map(figures_of, records) if f.completed and start <= f.completed_at < end)
    successful = [f for f in rows if f.successful]
    lead = statistics(f.lead_time_seconds for f in successful if f.lead_time_seconds is not None)
    recovery = statistics(f.time_to_recovery_seconds for f in successful if f.time_to_recovery_seconds is not None)
    counted = [f for f in rows if not f.rollback]
    failures = sum(1 for f in counted if f.change_failure)
    change_failure_rate = rate(failures, len(counted))
    rework = sum(1 for f in rows if f.rework)
    days = sorted({f.completed_at.astimezone(UTC).date() for f in successful})
    first, last = start.astimezone(UTC).date(), (end - timedelta(microseconds=1)).astimezone(UTC).date()
    return {
        "from": start.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "to": end.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "benchmark": benchmark,
        "deployments": len(rows),
        "deployment_frequency": {
            "successful_deployments": len(successful),
            "deployment_days": len(days),
            "per_day": round(len(successful) / max(1, (last - first).days + 1), 5),
            "tier": deployment_frequency_tier(days, first=first, last=last, benchmark=benchmark).value,
        },
        "lead_time": {
            "count": lead.count,
            "median_seconds": lead.median,
            "p95_seconds": lead.ninety_fifth,
            "tier": lead_time_tier(lead.median, benchmark).value if lead.median is not None else None,
        },
        "change_failure_rate": {
            "change_failures": failures,
            "deployments": len(counted),
            "rate": change_failure_rate,
            "tier": change_failure_rate_tier(change_failure_rate, benchmark).value if counted else None,
        },
        "recovery_time": {
            "count": recovery.count,
            "median_seconds": recovery.median,
            "tier": recovery_time_tier(recovery.median, benchmark).value if recovery.median is not None else None,
        },
        "rework_rate": {"rework_deployments": rework, "deployments": len(rows), "rate": rate(rework, len(rows))},
    }
