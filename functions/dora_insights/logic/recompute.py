"""The scheduled recompute (METRICS §3–4): dirty streams -> per-deployment figures -> the views of
every report that includes them; then insight thresholds.

Idempotent and resumable: a stream's dirty mark is removed (only if not marked again
meanwhile) after its new figures generation is in place, and a report's state flips to a new
generation only after every view of it is written, so a run cut off by the Lambda timeout
leaves marks for the next run and readers always see a complete generation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from dora_insights.dal.metrics import MetricsStore
from dora_insights.dal.store import Store
from dora_insights.domain.aggregates import StreamDims
from dora_insights.domain.figures import compute_stream_figures, figures_record, release_first_seen
from dora_insights.domain.ids import new_id
from dora_insights.domain.model import Attribution, Deployment
from dora_insights.domain.times import parse_stored
from dora_insights.logic import alerts, metrics, reports
from dora_insights.observability import logger

# Start no new stream or report once this share of the remaining Lambda time is used: the one
# in progress has the rest to finish; what is left waits for the next run.
BUDGET_SHARE = 0.8


class RecomputeSummary(BaseModel):
    """What one run did."""

    spaces: int
    streams_pending: int
    streams_processed: int
    reports_refreshed: int = 0
    thresholds_checked: int = 0
    thresholds_fired: int = 0
    lag_seconds: float = 0.0
    duration_seconds: float = 0.0
    complete: bool = True


def _change_start(attribution: Attribution | None) -> datetime | None:
    if attribution is None or attribution.state not in ("Resolved", "GaveUp") or not attribution.change_started_at:
        return None
    return parse_stored(attribution.change_started_at)


def recompute_stream(
    store: Store, space_id: str, stream: str, failure_window: timedelta, failures: list[Any], cache: dict[str, Any]
) -> bool:
    """New figures generation for one stream; False when the stream has no deployments (left alone)."""
    data = MetricsStore(store)
    deployments = data.stream_deployments(space_id, stream)
    if not deployments:
        return False
    latest: Deployment = max(deployments, key=lambda d: (d.finished_at, d.id))
    project_key = f"releases:{latest.project_id}"
    if project_key not in cache:
        cache[project_key] = release_first_seen(data.project_deployments(space_id, latest.project_id))
    first_seen = cache[project_key].get(latest.project_id, {})
    relevant = [f for f in failures if f.environment_id == latest.environment_id and latest.project_id in f.project_ids]
    computed = compute_stream_figures(
        deployments,
        failure_events=relevant,
        failure_window=failure_window,
        release_first_seen=first_seen,
        change_starts={d.id: _change_start(d.attribution) for d in deployments},
    )
    by_month: dict[str, list[dict[str, Any]]] = {}
    for figures in computed:
        by_month.setdefault(figures.completed_at.strftime("%Y-%m"), []).append(figures_record(figures))
    registration = {
        "dims": metrics.dims_record(StreamDims.of(latest)),
        "project_group_id": latest.project_group_id,
        "tenant_id": latest.tenant_id,
        "channel_id": latest.channel_id,
        "channel": latest.channel,
        "deployments": len(deployments),
    }
    previous = cache.setdefault("streams", data.streams(space_id)).get(stream, {}).get("generation")
    generation = new_id(datetime.now().astimezone())
    data.write_stream_figures(space_id, stream, registration, by_month, generation, previous)
    cache["streams"][stream] = {**registration, "stream": stream, "generation": generation}
    return True


def run(
    store: Store,
    now: datetime,
    *,
    deadline_ms: int | None = None,
    bus: alerts.Bus | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RecomputeSummary:
    """One scheduled run over every space (dirty streams first, then reports, then thresholds)."""
    started = clock()
    budget = None if deadline_ms is None else deadline_ms / 1000 * BUDGET_SHARE

    def out_of_time() -> bool:
        return budget is not None and clock() - started > budget

    data = MetricsStore(store)
    summary = RecomputeSummary(spaces=0, streams_pending=0, streams_processed=0)
    oldest: datetime | None = None
    for space_id in store.list_space_ids():
        summary.spaces += 1
        dirty = store.list_dirty_streams(space_id)
        summary.streams_pending += len(dirty)
        space = store.get_space(space_id)
        window = timedelta(hours=space.failure_window_hours if space else 24.0)
        failures = data.space_failures(space_id)
        cache: dict[str, Any] = {}
        changed: set[str] = set()
        for mark in dirty:
            if out_of_time():
                summary.complete = False
                break
            marked_at = parse_stored(mark["dirty_at"])
            oldest = marked_at if oldest is None or marked_at < oldest else oldest
            recompute_stream(store, space_id, mark["stream"], window, failures, cache)
            data.clear_dirty(space_id, mark["stream"], mark["dirty_at"])
            changed.add(mark["stream"])
            summary.streams_processed += 1
        streams = cache.get("streams") or data.streams(space_id)
        figures: dict[str, list[dict[str, Any]]] | None = None
        for report in reports.list_reports(store, space_id):
            if out_of_time():
                summary.complete = False
                break
            state = data.report_state(space_id, report.number)
            if metrics.is_current(state, report) and not any(
                key in changed for key in metrics.report_streams(report, streams)
            ):
                continue
            if figures is None:
                figures = data.space_figures(space_id, streams)
            metrics.recompute_report(store, space_id, report, now, streams=streams, figures=figures, failures=failures)
            summary.reports_refreshed += 1
        if not out_of_time():
            counts = alerts.evaluate(store, bus, space_id, now)
            summary.thresholds_checked += counts["checked"]
            summary.thresholds_fired += counts["fired"]
    summary.lag_seconds = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
    summary.duration_seconds = clock() - started
    logger.info("recompute", extra=summary.model_dump())
    return summary
