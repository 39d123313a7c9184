"""``GET /api/{spaceId}/summary``: the four keys and rework rate over a range, with their tiers
(METRICS §6), from the precomputed per-deployment figures (one paged Query of the space).

What a request leaves out comes from the space's settings (``logic/settings.py``):

- the tier table: the ``benchmark`` asked for, else the space's ``default_benchmark``, else 2023;
- the environments counted, first that applies: the ``environment`` asked for, else the space's
  ``default_environment``, else its ``production_environments``, else every environment. The
  answer's ``environment_scope`` says which applied and what it names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dora_insights.domain.aggregates import rate, statistics
from dora_insights.domain.figures import DeploymentFigures, figures_of, time_to_restore
from dora_insights.domain.model import CatalogueKind, FailureEvent
from dora_insights.domain.records import SpaceSettings
from dora_insights.domain.tiers import (
    DEFAULT_BENCHMARK,
    UnknownBenchmarkError,
    change_failure_rate_tier,
    deployment_frequency_tier,
    lead_time_tier,
    recovery_time_tier,
    tier_table,
)
from dora_insights.domain.times import parse_stored
from dora_insights.errors import RequestInvalidError
from dora_insights.logic import freshness
from dora_insights.logic.metrics import dims_of
from dora_insights.logic.ports import Ports
from dora_insights.logic.settings import read_settings
from dora_insights.observability import logger

DEFAULT_DAYS = 90


@dataclass(frozen=True)
class EnvironmentScope:
    """Which environments a summary counts and why (``source``: ``parameter``,
    ``default_environment``, ``production_environments`` or ``all``)."""

    source: str
    names: tuple[str, ...]
    accepts: Callable[[str | None, str | None], bool]  # (environment id, name) -> counted

    def body(self) -> dict[str, Any]:
        return {"source": self.source, "environments": list(self.names)}


def environment_scope(environment: str | None, settings: SpaceSettings) -> EnvironmentScope:
    """The environments counted: the one asked for (id or name), else the space's default
    environment, else its production environments, else all."""
    if environment:
        return EnvironmentScope(
            "parameter",
            (environment,),
            lambda env_id, name: CatalogueKind.ENVIRONMENT.filter_names(environment, env_id, name),
        )
    if settings.summary_environment is not None:
        chosen = settings.summary_environment
        return EnvironmentScope("default_environment", (chosen.name,), lambda env_id, _: env_id == chosen.id)
    if settings.production_environments:
        ids = frozenset(e.id for e in settings.production_environments)
        names = tuple(e.name for e in settings.production_environments)
        return EnvironmentScope("production_environments", names, lambda env_id, _: env_id in ids)
    return EnvironmentScope("all", (), lambda _id, _name: True)


def _benchmark(asked: str | None, settings: SpaceSettings, space_id: str) -> str:
    """The tier table: the one asked for (400 when unknown), else the space's default, else 2023."""
    if asked is not None:
        try:
            tier_table(asked)
        except UnknownBenchmarkError as error:
            message = str(error)  # "benchmark must be one of ...": the errors name the field once
            problem = message.removeprefix("benchmark ")
            raise RequestInvalidError(message, field="benchmark", details=[("benchmark", problem)]) from None
        return asked
    chosen = settings.default_benchmark or DEFAULT_BENCHMARK
    try:
        tier_table(chosen)
    except UnknownBenchmarkError:  # a table this version no longer ships: the service default
        logger.warning("space default benchmark unknown", extra={"space_id": space_id, "benchmark": chosen})
        return DEFAULT_BENCHMARK
    return chosen


def summary(
    store: Ports,
    space_id: str,
    *,
    start: datetime | None,
    end: datetime | None,
    project: str | None,
    environment: str | None,
    benchmark: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The summary of deployments completed in ``[start, end)`` (default: the last 90 days), its
    streams brought up to date first within the read bound (``freshness.read_streams``).
    ``environment`` and ``benchmark`` None: the space's settings decide (module docstring)."""
    settings = read_settings(store, space_id, now)
    benchmark = _benchmark(benchmark, settings, space_id)
    scope = environment_scope(environment, settings)
    end = end or now
    start = start or end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise RequestInvalidError("from must be before to", field="from", details=[("from", "must be before to")])

    def covers(key: str, registration: Mapping[str, Any]) -> bool:
        dims = dims_of(registration["dims"])
        return CatalogueKind.PROJECT.filter_names(project, dims.project_id, dims.project) and scope.accepts(
            dims.environment_id, dims.environment
        )

    # Project and environment only: the stream's key decides, no stream moves in.
    read = freshness.read_streams(store, space_id, freshness.Covers(covers, moves_in=None), now)
    rows: list[DeploymentFigures] = []
    for key, records in read.figures.items():
        if key in read.streams and covers(key, read.streams[key]):
            # Only the records in range become figures (a year's records for a 90-day answer).
            rows.extend(
                figures_of(r) for r in records if r.get("completed") and start <= parse_stored(r["completed_at"]) < end
            )
    successful = [f for f in rows if f.successful]
    lead = statistics(f.lead_time_seconds for f in successful if f.lead_time_seconds is not None)
    recovery = statistics(f.time_to_recovery_seconds for f in successful if f.time_to_recovery_seconds is not None)
    counted = [f for f in rows if not f.rollback]
    failures = sum(1 for f in counted if f.change_failure)
    change_failure_rate = rate(failures, len(counted))
    rework = sum(1 for f in rows if f.rework)
    days = sorted({f.completed_at.astimezone(UTC).date() for f in successful})
    started = store.metrics().space_failures(space_id, started=(start, end))
    restore = statistics(_restore_times(started, start, end, project, scope))
    first, last = start.astimezone(UTC).date(), (end - timedelta(microseconds=1)).astimezone(UTC).date()
    return {
        "from": start.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "to": end.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "benchmark": benchmark,
        "environment_scope": scope.body(),
        # METRICS §8: when the figures read were computed, and covered streams whose changes wait.
        "as_of": read.freshness.as_of,
        "pending": read.freshness.pending,
        "deployments": len(rows),
        "deployment_frequency": {
            "successful_deployments": len(successful),
            "deployment_days": len(days),
            # Over the range's length (a range under a day counts as one): the calendar days it touches
            # would count a 90-day range ending at noon as 91, a noon-to-noon day as 2.
            "per_day": round(len(successful) / max(1.0, (end - start) / timedelta(days=1)), 5),
            # No tier without data: a range with no successful deployment has none (not "Low").
            "tier": deployment_frequency_tier(days, first=first, last=last, benchmark=benchmark).value
            if successful
            else None,
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
        "time_to_restore": {
            "count": restore.count,
            "median_seconds": restore.median,
            "tier": recovery_time_tier(restore.median, benchmark).value if restore.median is not None else None,
        },
        "rework_rate": {"rework_deployments": rework, "deployments": len(rows), "rate": rate(rework, len(rows))},
    }


def _names_any(kind: CatalogueKind, wanted: str | None, candidates: Iterable[tuple[str, str]]) -> bool:
    """No filter, or the filter names one of the ``(id, name)`` candidates (``CatalogueKind.filter_names``)."""
    return not wanted or any(kind.filter_names(wanted, entity_id, name) for entity_id, name in candidates)


def _restore_times(
    failures: Iterable[FailureEvent], start: datetime, end: datetime, project: str | None, scope: EnvironmentScope
) -> Iterator[float]:
    """TimeToRestore (METRICS §3) of the finished failure events that started in ``[start, end)`` and
    concern the project asked for and the environments counted."""
    for event in failures:
        restored = time_to_restore(event)
        if restored is None or not start <= parse_stored(event.started_at) < end:
            continue
        if _names_any(
            CatalogueKind.PROJECT, project, zip(event.project_ids, event.projects, strict=False)
        ) and scope.accepts(event.environment_id, event.environment):
            yield restored.total_seconds()
