"""The scheduled recompute (METRICS §3–4): dirty streams -> per-deployment figures -> the views of
every report that includes them; then insight thresholds.

Idempotent and resumable: a stream's dirty mark is removed (only if not marked again
meanwhile) after its new figures generation is in place and the space's reports are refreshed
from it, and a report's state flips to a new generation only after every view of it is written,
so a run cut off by the Lambda timeout leaves marks for the next run and readers always see a
complete generation. A mark a read's refresh already caught up (``logic/freshness.py``) skips
the stream's recompute and only refreshes its reports. Two recomputes of one stream or report
at once (this run and a read's refresh) leave one of them: pointers move only from the
generation read (streams) or forward in read time (reports), and the loser drops its own.

No tenant stalls another:
- Failures are isolated: an error in one stream, one report, one space's thresholds or one
  space's setup reads is logged with its ids (``exc_info``), counted in the run summary (the
  handler emits ``StreamsFailed``, ``ReportsFailed``, ``ThresholdsFailed``, ``SpacesFailed``)
  and skipped; the stream keeps its dirty mark, so the next run retries it. ``run`` never
  raises for one space's data.
- A stream that fails ``health.QUARANTINE_AFTER`` runs in a row is quarantined and left out
  until something new is written to it or its retry time comes (``logic/health.py``).
- Spaces are visited in a rotating order: each run starts with the space after the one the
  previous run started with, or, when the previous run ran out of time, after the space it
  stopped in (a cursor item, pattern 20), so a heavy space cannot starve those after it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import monotonic
from typing import Any

from pydantic import BaseModel

from dora_insights.domain.aggregates import StreamDims
from dora_insights.domain.figures import compute_stream_figures, figures_record, release_first_seen
from dora_insights.domain.health import FailureNote, SpaceHealthRecord, StreamHealthRecord
from dora_insights.domain.ids import new_id
from dora_insights.domain.model import Attribution, Deployment
from dora_insights.domain.times import format_instant, parse_stored
from dora_insights.logic import alerts, attribution, health, metrics, reports
from dora_insights.logic.insight_ports import InsightPorts
from dora_insights.logic.ports import HealthRepository, MetricsRepository, Ports
from dora_insights.observability import logger

# Start no new stream or report once this share of the remaining Lambda time is used: the one
# in progress has the rest to finish; what is left waits for the next run.
BUDGET_SHARE = 0.8


class RecomputeSummary(BaseModel):
    """What one run did."""

    spaces: int
    streams_pending: int
    streams_processed: int
    streams_failed: int = 0
    streams_quarantined: int = 0  # dirty but held back in quarantine this run
    reports_refreshed: int = 0
    reports_failed: int = 0
    spaces_failed: int = 0  # a space-level step failed (setup reads, report listing, threshold listing)
    thresholds_checked: int = 0
    thresholds_fired: int = 0
    thresholds_failed: int = 0
    alerts_sent: int = 0  # alert events EventBridge accepted (this run's and earlier runs' retried ones)
    alerts_undelivered: int = 0  # alert events left in the outbox for the next run (logic/alerts.py)
    attributions_redriven: int = 0  # owed attributions past their due time, re-driven (logic/attribution.py)
    attributions_abandoned: int = 0  # owed for over 4 days: closed as GaveUp
    attributions_failed: int = 0
    first_space: str | None = None
    last_space: str | None = None
    lag_seconds: float = 0.0
    duration_seconds: float = 0.0
    complete: bool = True


def _change_start(attribution: Attribution | None) -> datetime | None:
    if attribution is None or attribution.state not in ("Resolved", "GaveUp") or not attribution.change_started_at:
        return None
    return parse_stored(attribution.change_started_at)


def recompute_stream(
    store: Ports,
    space_id: str,
    stream: str,
    failure_window: timedelta,
    failures: list[Any],
    cache: dict[str, Any],
    now: datetime,
) -> bool:
    """New figures generation for one stream (``computed_at``: ``now``); False when a concurrent
    recompute moved the stream's figures first (this one's are dropped and the caller keeps its
    dirty mark). A stream without deployments is left alone (True: nothing is waiting).

    Read the stream's dirty mark before calling: its deployments are read here, after it."""
    data = store.metrics()
    previous = cache.setdefault("streams", data.streams(space_id)).get(stream, {}).get("generation")
    deployments = data.stream_deployments(space_id, stream)
    if not deployments:
        return True
    latest: Deployment = max(deployments, key=lambda d: (d.finished_at, d.id))
    project_key = f"releases:{latest.project_id}"
    if project_key not in cache:
        project = data.project_deployments(space_id, latest.project_id)
        cache[project_key] = (release_first_seen(project), len(project))
    releases, project_size = cache[project_key]
    first_seen = releases.get(latest.project_id, {})
    # A failure naming a deployment as its cause may concern any stream (the engine finds its own).
    relevant = [
        f
        for f in failures
        if f.deployment_id is not None
        or (f.environment_id == latest.environment_id and latest.project_id in f.project_ids)
    ]
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
        "project_deployments": project_size,  # what a read's refresh of it re-reads (logic/freshness.py)
        "computed_at": format_instant(now),
    }
    generation = new_id(datetime.now().astimezone())
    if not data.write_stream_figures(space_id, stream, registration, by_month, generation, previous):
        cache["streams"].pop(stream, None)  # moved by another recompute: read it again when needed
        return False
    cache["streams"][stream] = {**registration, "stream": stream, "generation": generation}
    return True


def rotation(space_ids: Iterable[str], after: str | None) -> list[str]:
    """Every space once, starting with the first one after ``after`` (in id order, wrapping round)."""
    ordered = sorted(set(space_ids))
    if after is None:
        return ordered
    start = bisect.bisect_right(ordered, after)
    return ordered[start:] + ordered[:start]


@dataclass
class _Run:
    """What one run shares between its spaces."""

    store: InsightPorts  # the thresholds of the space's insights are checked last
    now: datetime
    at: str
    bus: alerts.Bus | None
    out_of_time: Callable[[], bool]
    summary: RecomputeSummary
    health: HealthRepository
    oldest: datetime | None = None


def run(
    store: InsightPorts,
    now: datetime,
    *,
    deadline_ms: int | None = None,
    bus: alerts.Bus | None = None,
    clock: Callable[[], float] | None = None,
) -> RecomputeSummary:
    """One scheduled run over every space (dirty streams first, then reports, then thresholds).

    Spaces are visited in a rotating order (see the module docstring); an error in one stream,
    report, threshold or space is logged with its ids, counted and skipped, never raised.
    """
    tick = clock or monotonic
    started = tick()
    budget = None if deadline_ms is None else deadline_ms / 1000 * BUDGET_SHARE

    def out_of_time() -> bool:
        return budget is not None and tick() - started > budget

    summary = RecomputeSummary(spaces=0, streams_pending=0, streams_processed=0)
    state = _Run(store, now, format_instant(now), bus, out_of_time, summary, store.health())
    order = rotation(store.list_space_ids(), _cursor(state))
    if order:
        # Saved first, so that even a run the Lambda timeout cuts off moves the next one's start.
        _save_cursor(state, order[0])
    for position, space_id in enumerate(order):
        if position and out_of_time():
            summary.complete = False
            break
        summary.spaces += 1
        summary.first_space = summary.first_space or space_id
        summary.last_space = space_id
        if not _visit_space(state, space_id):
            summary.complete = False
            break
    if not summary.complete and summary.last_space is not None and summary.last_space != order[0]:
        # The next run starts after the space this one stopped in, not with the same heavy spaces.
        _save_cursor(state, summary.last_space)
    summary.lag_seconds = max(0.0, (now - state.oldest).total_seconds()) if state.oldest else 0.0
    summary.duration_seconds = tick() - started
    logger.info("recompute", extra=summary.model_dump())
    return summary


def _cursor(state: _Run) -> str | None:
    """The rotation cursor; None (start with the first space) when it cannot be read."""
    try:
        return state.health.rotation_cursor()
    except Exception:
        logger.exception("reading the recompute's rotation cursor failed")
        return None


def _save_cursor(state: _Run, after: str) -> None:
    try:
        state.health.save_rotation_cursor(after, state.at)
    except Exception:
        logger.exception("saving the recompute's rotation cursor failed", extra={"after": after})


@dataclass
class _Visit:
    """Where a space's visit got to (for its health record when a step fails)."""

    stage: str = "setup"
    record: SpaceHealthRecord | None = None


def _visit_space(state: _Run, space_id: str) -> bool:
    """Recompute one space; False when the run ran out of time in it. Never raises."""
    before = state.summary.model_copy()
    visit = _Visit()
    failure: tuple[str, FailureNote] | None = None
    try:
        complete = _work_space(state, space_id, visit)
    except Exception as error:
        logger.exception("recompute of a space failed", extra={"space_id": space_id, "stage": visit.stage})
        state.summary.spaces_failed += 1
        failure = (visit.stage, health.failure_note(error))
        complete = True  # the failed step ends this space's visit; the run goes on with the next space
    _record_visit(state, space_id, visit.record, before, failure, complete=complete)
    return complete


def _work_space(state: _Run, space_id: str, visit: _Visit) -> bool:
    """Streams, then reports, then thresholds of one space; False when out of time."""
    summary = state.summary
    visit.record, unhealthy = state.health.space_health(space_id)
    data = state.store.metrics()
    dirty = state.store.list_dirty_streams(space_id)
    summary.streams_pending += len(dirty)
    space = state.store.get_space(space_id)
    window = timedelta(hours=space.failure_window_hours if space else 24.0)
    failures = data.space_failures(space_id)
    cache: dict[str, Any] = {}
    changed: set[str] = set()
    visit.stage = "attribution"
    _sweep_attribution(state, space_id)
    visit.stage = "streams"
    done: list[dict[str, Any]] = []  # marks whose streams are up to date: cleared once their reports are
    for mark in dirty:
        if state.out_of_time():
            return False
        if mark.get("caught_up") or _recompute_dirty(
            state, space_id, mark, unhealthy.get(mark["stream"]), window, failures, cache
        ):
            changed.add(mark["stream"])
            done.append(mark)
    visit.stage = "reports"
    failed = summary.reports_failed
    if not _refresh_reports(state, space_id, data, cache, changed, failures) or state.out_of_time():
        return False
    if summary.reports_failed == failed:  # a failed report keeps the marks: the next run refreshes it again
        for mark in done:
            data.clear_dirty(space_id, mark["stream"], mark["dirty_at"])
    visit.stage = "thresholds"
    counts = alerts.evaluate(state.store, state.bus, space_id, state.now)
    summary.thresholds_checked += counts.checked
    summary.thresholds_fired += counts.fired
    summary.thresholds_failed += counts.failed
    summary.alerts_sent += counts.sent
    summary.alerts_undelivered += counts.undelivered
    return True


def _sweep_attribution(state: _Run, space_id: str) -> None:
    """Re-drive the space's attributions still owed past their due time (a bounded batch per run;
    ``attribution.sweep``). Never raises: a failure is logged and counted, the next run sweeps again."""
    try:
        counts = attribution.sweep(state.store, space_id, state.now)
    except Exception:
        logger.exception("attribution sweep of a space failed", extra={"space_id": space_id})
        state.summary.attributions_failed += 1
        return
    state.summary.attributions_redriven += counts.redriven
    state.summary.attributions_abandoned += counts.abandoned
    state.summary.attributions_failed += counts.failed


def _recompute_dirty(
    state: _Run,
    space_id: str,
    mark: dict[str, Any],
    record: StreamHealthRecord | None,
    window: timedelta,
    failures: list[Any],
    cache: dict[str, Any],
) -> bool:
    """Recompute one dirty stream unless it is held back in quarantine; True when its figures are
    up to date (its mark is cleared after the reports that include it are refreshed)."""
    stream, dirty_at = mark["stream"], mark["dirty_at"]
    summary = state.summary
    if health.held_back(record, dirty_at, state.now):
        summary.streams_quarantined += 1
        return False
    try:
        marked_at = parse_stored(dirty_at)
        state.oldest = marked_at if state.oldest is None or marked_at < state.oldest else state.oldest
        if not recompute_stream(state.store, space_id, stream, window, failures, cache, state.now):
            return False  # a concurrent recompute moved its figures first: the mark waits for the next run
    except Exception as error:
        summary.streams_failed += 1
        logger.exception("recompute of a stream failed", extra={"space_id": space_id, "stream": stream})
        _record_stream_failure(state, space_id, stream, dirty_at, record, health.failure_note(error))
        return False
    if record is not None:
        state.health.clear_stream(space_id, stream)
    summary.streams_processed += 1
    return True


def _record_stream_failure(
    state: _Run, space_id: str, stream: str, dirty_at: str, record: StreamHealthRecord | None, note: FailureNote
) -> None:
    """Count the failed run on the stream's health record (quarantining it at the limit); never raises."""
    try:
        updated = state.health.record_stream_failure(
            space_id, stream, dirty_at=dirty_at, at=state.at, note=note, quarantine_after=health.QUARANTINE_AFTER
        )
    except Exception:
        logger.exception("recording a stream's failure failed", extra={"space_id": space_id, "stream": stream})
        return
    if updated.quarantined and (record is None or not record.quarantined):
        logger.warning(
            "stream quarantined", extra={"space_id": space_id, "stream": stream, "failures": updated.failures}
        )


def _refresh_reports(
    state: _Run,
    space_id: str,
    data: MetricsRepository,
    cache: dict[str, Any],
    changed: set[str],
    failures: list[Any],
) -> bool:
    """Recompute the reports whose streams changed or whose definition moved on; False when out of time."""
    streams = cache.get("streams") or data.streams(space_id)
    read: tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]], str] | None = None
    for report in reports.list_reports(state.store, space_id):
        if state.out_of_time():
            return False
        try:
            report_state = data.report_state(space_id, report.number)
            if metrics.is_current(report_state, report) and not any(
                key in changed for key in metrics.report_streams(report, streams)
            ):
                continue
            if read is None:
                read = metrics.snapshot(data, space_id)
            metrics.recompute_report(state.store, space_id, report, state.now, read=read, failures=failures)
            state.summary.reports_refreshed += 1
        except Exception:
            state.summary.reports_failed += 1
            logger.exception("recompute of a report failed", extra={"space_id": space_id, "report_id": report.id})
    return True


def _record_visit(
    state: _Run,
    space_id: str,
    record: SpaceHealthRecord | None,
    before: RecomputeSummary,
    failure: tuple[str, FailureNote] | None,
    *,
    complete: bool,
) -> None:
    """Write the space's health record after a visit (a failure, or a clean and complete visit when due)."""
    after = state.summary
    failed = (
        after.streams_failed > before.streams_failed
        or after.reports_failed > before.reports_failed
        or after.thresholds_failed > before.thresholds_failed
    )
    did_work = after.streams_processed > before.streams_processed or after.reports_refreshed > before.reports_refreshed
    try:
        if failure is not None:
            state.health.record_space_visit(space_id, state.at, failure=failure)
        elif complete and not failed and health.space_record_due(record, state.now, did_work=did_work):
            state.health.record_space_visit(space_id, state.at, failure=None)
    except Exception:
        logger.exception("recording a space's recompute health failed", extra={"space_id": space_id})
