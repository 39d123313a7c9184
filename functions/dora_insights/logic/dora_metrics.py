"""``GET /api/{spaceId}/dora/metrics``: GitLab's DORA metrics API over any range (METRICS §9).

Read path: the streams the filters select (their registrations, one Query), brought up to date first
within the read bound of METRICS §8 (``freshness.refresh_streams``), then their daily rollups of the
years the range touches (one Query per year) and the failure rollups of their (project, environment)
pairs, those of streams emptied by removals included (one Query), aggregated as GitLab does
(``domain.rollups.aggregate``). No deployment, figure or failure event is read at request time.

Write path: :func:`write_rollups`, called by the stream recompute (``logic.recompute.recompute_stream``)
with the figures it is about to store, writes the stream's rollup of every year from its first to its
last deployment (empty years included, so a year emptied by a removal is rewritten) and the failure
rollup of its (project, environment) from the failure events the recompute read (a stream left without
deployments still writes that failure rollup: :func:`write_failure_rollup`). A failure event that
is recorded, resolved or removed marks the streams of its projects in its environment dirty
(``dal.failures``), so their next recompute (scheduled, or a read's refresh) rewrites that failure
rollup: failure rollups are exactly as fresh as the figures.

Consistency: each rollup item names the figures generation it was computed for and the one before;
it is counted only while the stream's pointer is at one of them. The rollups are written before the
pointer moves, so a read never finds the pointer ahead of its rollups; a rollup whose recompute then
lost the race to a concurrent one stops counting until the stream's next recompute (its dirty mark
stays; when its rollups were written after the winner's, it marks the stream again, so that the
next recompute rewrites them), and a year left behind by removals, or a stream emptied (its empty
generation counts no deployment), is not counted once the pointer moved on.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from dora_insights.domain.figures import DeploymentFigures
from dora_insights.domain.model import CatalogueKind, FailureEvent
from dora_insights.domain.records import SpaceSettings
from dora_insights.domain.rollups import (
    DeploymentColumns,
    FailureColumns,
    MetricsRequest,
    Value,
    aggregate,
    concerns,
    deployment_columns,
    environment_tier,
    failure_columns,
)
from dora_insights.errors import RequestInvalidError
from dora_insights.logic import freshness
from dora_insights.logic.metrics import dims_of
from dora_insights.logic.ports import Ports
from dora_insights.logic.settings import read_settings

# GitLab answers at most 180 days (earlier versions 92, then 365); a whole year, leap or not, fits here.
MAX_RANGE_DAYS = 366
DEFAULT_MONTHS = 3
DEFAULT_TIERS = ("production",)


@dataclass(frozen=True)
class MetricsAnswer:
    """The answer rows and how fresh they are."""

    rows: list[tuple[str | None, Value]]
    freshness: freshness.Freshness


def months_before(day: date, months: int) -> date:
    """The same day ``months`` calendar months earlier, clamped to the month's end (Ruby's ``months.ago``),
    and to the first day a date holds (``date.min``: an ``end_date`` early in year 1 has no day three
    months before it)."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    if year < date.min.year:
        return date.min
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def date_range(request: MetricsRequest, today: date) -> tuple[date, date]:
    """``start_date``..``end_date`` with GitLab's defaults and checks (400 with GitLab's messages)."""
    end = request.end_date or today
    start = request.start_date or months_before(end, DEFAULT_MONTHS)
    if (end - start).days > MAX_RANGE_DAYS:
        raise RequestInvalidError(f"Date range must be shorter than {MAX_RANGE_DAYS} days.", field="start_date")
    if start >= end and request.start_date is None:
        # Only end_date=0001-01-01 gets here: no day before it for the default start (date.min).
        raise RequestInvalidError("end_date is invalid", field="end_date")
    if start >= end:
        raise RequestInvalidError("The start date must be earlier than the end date.", field="start_date")
    return start, end


def selector(request: MetricsRequest, settings: SpaceSettings) -> freshness.Covers:
    """Whether a stream (its registration) is selected: project, project group, environment, tenant,
    and the environment tiers (asked for, else ``production`` unless an ``environment`` is named)."""
    tiers = set(request.environment_tiers) or (set() if request.environment else set(DEFAULT_TIERS))
    production = frozenset(e.id for e in settings.production_environments)

    def by_key(_key: str, registration: Mapping[str, Any]) -> bool:
        """All but the project group: what the stream's key decides (catalogue names never change)."""
        dims = dims_of(registration["dims"])
        return (
            CatalogueKind.PROJECT.filter_names(request.project, dims.project_id, dims.project)
            and CatalogueKind.ENVIRONMENT.filter_names(request.environment, dims.environment_id, dims.environment)
            and CatalogueKind.TENANT.filter_names(request.tenant, registration.get("tenant_id"), dims.tenant)
            and (not tiers or environment_tier(dims.environment_id, dims.environment, production) in tiers)
        )

    def covers(key: str, registration: Mapping[str, Any]) -> bool:
        group, named = registration.get("project_group_id"), registration["dims"].get("project_group")
        return CatalogueKind.PROJECT_GROUP.filter_names(request.project_group, group, named) and by_key(
            key, registration
        )

    # A stream may move into the project group asked for (a deployment of its project in that group).
    return freshness.Covers(covers, by_key if request.project_group else None)


def dora_metrics(store: Ports, space_id: str, request: MetricsRequest, now: datetime) -> MetricsAnswer:
    """GitLab's ``[{"date", "value"}]`` rows (as pairs) for the request, from the daily rollups."""
    start, end = date_range(request, now.astimezone(UTC).date())
    settings = read_settings(store, space_id, now)
    covers = selector(request, settings)
    registered, fresh, refreshed, waiting = freshness.refresh_streams(store, space_id, covers, now)
    chosen = {
        key: r
        for key, r in registered.items()
        if covers(key, r) and int(r.get("deployments", 0)) and r.get("generation")
    }
    rollups = store.rollups()
    years = range(start.year, end.year + 1)
    # Rollups this read just rewrote are read strongly consistent (an older copy counts for another generation).
    stored = rollups.deployments(space_id, years, chosen, consistent=refreshed)
    missing = _missing_rollups(chosen, stored, years)
    if missing and not refreshed:  # a replica behind the pointer read: those streams' years once more, strongly
        again_years = sorted({y for ys in missing.values() for y in ys})
        again = rollups.deployments(space_id, again_years, missing, consistent=True)
        stored = {**stored, **{key: again.get(key, []) for key in missing}}
        missing = _missing_rollups(chosen, stored, years)
    streams: list[DeploymentColumns] = []
    for key, items in stored.items():
        generation = str(chosen[key]["generation"])
        streams.extend(columns for _, columns, generations in items if generation in generations)
    # A losing recompute's rollups replaced the pointer's: it marks the stream again (then the stream
    # counts once, among those waiting) or has not yet.
    if unmarked := set(missing) - waiting:
        fresh = replace(fresh, pending=(fresh.pending or 0) + len(unmarked))
    # Failure events count for the (project, environment) of every covered stream, an emptied one too: a
    # failure whose deployments were all removed still counts as an incident (METRICS §2 rule 4, §9).
    pairs = {
        (dims.project_id, dims.environment_id)
        for key, r in registered.items()
        if r.get("generation") and covers(key, r)
        for dims in (dims_of(r["dims"]),)
    }
    failures = list(rollups.failures(space_id, pairs, consistent=refreshed).values()) if pairs else []
    return MetricsAnswer(aggregate(request.metric, request.interval, start, end, streams, failures), fresh)


def _missing_rollups(
    chosen: Mapping[str, Mapping[str, Any]],
    stored: Mapping[str, Sequence[tuple[int, DeploymentColumns, frozenset[str]]]],
    years: range,
) -> dict[str, set[int]]:
    """The streams whose pointer names rollup years (``rollup_years``, written with the figures) in
    ``years`` that no item read was written for (for its generation): stream -> those years."""
    missing: dict[str, set[int]] = {}
    for key, registration in chosen.items():
        generation = str(registration["generation"])
        found = {year for year, _, generations in stored.get(key, ()) if generation in generations}
        wanted = {int(y) for y in registration.get("rollup_years") or () if int(y) in years} - found
        if wanted:
            missing[key] = wanted
    return missing


def write_rollups(
    store: Ports,
    space_id: str,
    stream: str,
    figures: Sequence[DeploymentFigures],
    failures: Iterable[FailureEvent],
    *,
    project_id: str,
    environment_id: str,
    generations: tuple[str, str | None],
    computed_at: str,
    cache: dict[str, Any],
) -> list[int]:
    """Write a stream's daily rollups (``generations``: the figures generation they are computed for,
    and the stream's current one) and, once per recompute run (``cache``), the failure rollup of its
    (project, environment); the years written."""
    columns = deployment_columns(figures)
    years = columns.years()
    by_year = {year: columns.year(year) for year in range(years[0], years[-1] + 1)} if years else {}
    pair = _failure_pair(failures, project_id, environment_id, cache)
    store.rollups().write(space_id, stream, by_year, pair, generations=generations, computed_at=computed_at)
    return sorted(by_year)


def write_failure_rollup(
    store: Ports,
    space_id: str,
    stream: str,
    failures: Iterable[FailureEvent],
    *,
    project_id: str,
    environment_id: str,
    generation: str,
    computed_at: str,
    cache: dict[str, Any],
) -> None:
    """Write, once per recompute run (``cache``), the failure rollup of the (project, environment) of a
    stream left without deployments (``recompute._forget``; ``generation``: its figures generation, no
    deployment rollup is written): a read still counts its failure events (METRICS §2 rule 4), and a
    failure recorded, resolved or removed since may mark no other stream of the pair."""
    pair = _failure_pair(failures, project_id, environment_id, cache)
    if pair is not None:
        store.rollups().write(space_id, stream, {}, pair, generations=(generation, generation), computed_at=computed_at)


def _failure_pair(
    failures: Iterable[FailureEvent], project_id: str, environment_id: str, cache: dict[str, Any]
) -> tuple[str, str, FailureColumns] | None:
    """The failure rows of a (project, environment), unless this recompute run wrote them already."""
    pair_key = f"rollup-failures:{project_id}/{environment_id}"
    if pair_key in cache:
        return None
    cache[pair_key] = True
    return project_id, environment_id, failure_columns(f for f in failures if concerns(f, project_id, environment_id))
