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
- Fanned out, each space is its own work item, so no space waits behind another. In one
  process (:func:`run`) spaces are visited in a rotating order: each run starts with the space
  after the one the previous run started with, or, when the previous run ran out of time, after
  the space it stopped in (a cursor item, pattern 20), so a heavy space cannot starve those after it.

Fanned out (issue 17, docs/recompute.md): deployed, the schedule no longer does the work itself.
:func:`schedule` (the ``RecomputeFunction``, every 5 minutes) reads each space's dirty marks and
sends :class:`WorkItem` s to the recompute queue: one ``space`` item per space (exactly what
:func:`run` does for that space) and, for a space with more than ``STREAM_GROUP`` streams waiting,
``streams`` items of up to ``STREAM_GROUP`` streams each before it (their figures, then each mark
is recorded as caught up, so the space's item only refreshes the reports, clears the marks and
checks thresholds; a stream a ``streams`` item has not done yet it recomputes itself).
:func:`process` (the ``RecomputeWorkerFunction``, SQS, bounded concurrency) does one item. Items
are idempotent (each reads the marks it acts on when it runs; pointers and marks move only
conditionally), so a duplicate, a retry or a stale item costs reads, never a wrong figure.
:func:`run` stays the single-process form of the same work (unit tests over in-memory ports,
benchmarks); ``tests/unit/logic/test_recompute_fanout.py`` proves the two store the same.
"""

import bisect
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from time import monotonic
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from dora_insights.domain.aggregates import StreamDims
from dora_insights.domain.figures import (
    FIGURES_FORMAT,
    ReleasePrefixes,
    compute_stream_figures,
    figures_record,
    merge_commits,
    pages_wanted,
    release_first_seen,
    release_horizon,
)
from dora_insights.domain.health import FailureNote, SpaceHealthRecord, StreamHealthRecord
from dora_insights.domain.ids import new_id
from dora_insights.domain.model import Attribution, Deployment, FailureEvent
from dora_insights.domain.reports import ReportDefinition
from dora_insights.domain.times import format_instant, parse_stored
from dora_insights.errors import MessagesUnsentError
from dora_insights.logic import alerts, attribution, dora_metrics, health, metrics, reports, settings
from dora_insights.logic.freshness import report_covers, settled
from dora_insights.logic.insight_ports import InsightPorts
from dora_insights.logic.ports import HealthRepository, MetricsRepository, Ports
from dora_insights.observability import logger

# Start no new stream or report once this share of the remaining Lambda time is used: the one
# in progress has the rest to finish; what is left waits for the next run.
BUDGET_SHARE = 0.8
# Set in a recompute's cache when ``cache["streams"]`` holds the space's whole stream list (the
# schedule's, a summary's read), not only the streams a read recomputes (``_mark_release_readers``).
WHOLE_LIST = "whole_list"
# Set in a recompute's cache by ``_mark_release_readers``: the streams it marked (their registrations as it
# judged them), each removed when recomputed again in the same run (a read's refresh recomputes those its
# answer covers: logic/freshness.py).
RELEASE_MARKED = "release_marked"


def project_streams_key(project_id: str) -> str:
    """Where a recompute's cache keeps a project's stream registrations once read."""
    return f"streams:{project_id}"


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


def _cause_removed(store: Ports, space_id: str, failure: FailureEvent, named: Deployment | None) -> bool:
    """Whether the deployment a failure names by id (``named``: the stream's deployment under that id, None
    when not in this stream) came after the one the failure named, which was removed: one Query of its
    correction records, only when the deployment stored now arrived after the failure (re-created, or
    replaced since: an upsert, a status)."""
    if named is None or named.received_at <= failure.received_at:
        return False
    return store.deployments().removed_between(space_id, named.id, failure.received_at, named.received_at)


def recompute_stream(
    store: Ports,
    space_id: str,
    stream: str,
    failure_window: timedelta,
    failures: list[Any],
    cache: dict[str, Any],
    now: datetime,
    *,
    again: bool = True,
) -> bool:
    """New figures generation for one stream (``computed_at``: ``now``); False when a concurrent
    recompute moved the stream's figures first (this one's are dropped and the caller keeps its
    dirty mark). When this one's rollups landed after the winner's, the stream is marked again and,
    with ``again``, recomputed once more over the winner's pointer (:func:`_mark_again`). A stream
    left without deployments (its last ones deleted, or moved to another stream by a replacement)
    gets an empty generation, so that nothing counts them on; one that never had figures is left
    alone.

    Read the stream's dirty mark before calling: its deployments are read here, after it."""
    data = store.metrics()
    if "streams" not in cache:  # not setdefault: its default, a whole read of the list, would run every time
        cache["streams"] = data.streams(space_id)
        cache[WHOLE_LIST] = True
    registered = cache["streams"]
    # What the stream was registered as before this run: a report that included it must be refreshed
    # though its new registration leaves the report (its deployments moved to another project group,
    # tenant or project: ``_refresh_reports``).
    cache.setdefault("registered_before", {}).setdefault(stream, registered.get(stream))
    previous = registered.get(stream, {}).get("generation")
    deployments = data.stream_deployments(space_id, stream)
    if not deployments:
        return _forget(store, space_id, stream, failures, cache, now)
    latest: Deployment = max(deployments, key=lambda d: (d.finished_at, d.id))
    project_key = f"releases:{latest.project_id}"
    if project_key not in cache:
        project = data.project_deployments(space_id, latest.project_id)
        seen = release_first_seen(project).get(latest.project_id, {})
        cache[project_key] = (seen, ReleasePrefixes.of(seen), len(project), frozenset(d.stream_key for d in project))
    first_seen, prefixes, project_size, live = cache[project_key]
    horizon = release_horizon(deployments)
    # A failure naming a deployment as its cause may concern any stream (the engine finds its own), unless
    # the deployment it named was removed since: the one under that id now is another (METRICS §2 rule 4).
    by_id = {d.id: d for d in deployments}
    relevant = [
        f
        for f in failures
        if (f.deployment_id is not None and not _cause_removed(store, space_id, f, by_id.get(f.deployment_id)))
        or (
            f.deployment_id is None and f.environment_id == latest.environment_id and latest.project_id in f.project_ids
        )
    ]
    computed = compute_stream_figures(
        deployments,
        failure_events=relevant,
        failure_window=failure_window,
        release_first_seen=first_seen,
        change_starts={d.id: _change_start(d.attribution) for d in deployments},
        shipped_beyond=_shipped_beyond(store, space_id, deployments, relevant),
    )
    by_month: dict[str, list[dict[str, Any]]] = {}
    for figures in computed:
        by_month.setdefault(figures.completed_at.strftime("%Y-%m"), []).append(figures_record(figures))
    registration = {
        "dims": StreamDims.of(latest).record(),
        "project_group_id": latest.project_group_id,
        "tenant_id": latest.tenant_id,
        "channel_id": latest.channel_id,
        "channel": latest.channel,
        "deployments": len(deployments),
        "project_deployments": project_size,  # what a read's refresh of it re-reads (logic/freshness.py)
        # The project's releases these figures read (``ReleasePrefixes``): another stream's recompute
        # marks this one when they move (_mark_release_readers).
        "release_horizon": format_instant(horizon) if horizon is not None else "",
        "release_digest": prefixes.at(horizon),
        "computed_at": format_instant(now),
    }
    generation = new_id(datetime.now().astimezone())
    # GitLab-style daily rollups (logic/dora_metrics.py): written before the pointer moves, for this
    # generation and the current one, so a read never finds the pointer ahead of them.
    years = dora_metrics.write_rollups(
        store,
        space_id,
        stream,
        computed,
        failures,
        project_id=latest.project_id,
        environment_id=latest.environment_id,
        generations=(generation, previous),
        computed_at=registration["computed_at"],
        cache=cache,
    )
    registration["rollup_years"] = years  # a read expects an item of each (logic/dora_metrics.py)
    if not data.write_stream_figures(space_id, stream, registration, by_month, generation, previous):
        cache["streams"].pop(stream, None)  # moved by another recompute: read it again when needed
        if not (years and store.rollups().written_as(space_id, stream, years, generation)):
            return False
        _mark_again(store, space_id, stream, now)
        if not again:
            return False
        cache["streams"][stream] = data.streams(space_id, consistent=True).get(stream, {})
        return recompute_stream(store, space_id, stream, failure_window, failures, cache, now, again=False)
    cache["streams"][stream] = {**registration, "stream": stream, "generation": generation}
    cache.get(RELEASE_MARKED, {}).pop(stream, None)  # its figures now read the releases as they stand
    _mark_release_readers(store, space_id, stream, latest.project_id, prefixes, live, cache, now)
    return True


def _shipped_beyond(
    store: Ports, space_id: str, deployments: Sequence[Deployment], failures: Sequence[FailureEvent]
) -> dict[str, list[str]]:
    """Rule 4 past the first page (``figures.pages_wanted``): the commits, and pull requests' merge
    commits, of the further attribution pages of the deployments it names, one BatchGetItem each. It
    names none unless a failure event names a commit nothing on the deployments shows shipped, so a
    recompute reads nothing more in the common case."""
    repository = store.attribution(space_id)
    beyond: dict[str, list[str]] = {}
    for deployment in pages_wanted(deployments, failures):
        if deployment.attribution is None:  # pragma: no cover - pages_wanted names attributed ones only
            continue
        further = repository.pages(deployment.id, deployment.attribution, None)[1:]
        beyond[deployment.id] = [c for page in further for c in (*page.commits, *merge_commits(page.pull_requests))]
    return beyond


def _mark_release_readers(
    store: Ports,
    space_id: str,
    stream: str,
    project_id: str,
    prefixes: ReleasePrefixes,
    live: Collection[str],
    cache: dict[str, Any],
    now: datetime,
) -> None:
    """Mark the project's other streams whose figures read its releases otherwise than they now stand.

    A release's first-seen time is taken across the project (METRICS §3), so a deployment that arrives
    after a later one of its version in another environment (a backfill, a late pipeline) moves the
    Release lead time of that environment's deployments, whose stream nothing else marks (the ingest
    writes its own stream's mark only: finding the others would cost it a read). Each registration
    keeps the digest of the releases its figures read (``release_digest`` up to ``release_horizon``);
    one that differs from this recompute's view is stale. A registration written before digests were
    kept has none, and is marked once. Corrections and removals mark these streams at once
    (``DeploymentStore``); this catches every path, a tick later. A stream with no deployment left among
    the project's (``live``, the streams of the deployments this recompute read) reads no release: its
    own removal marked it, and its recompute points it at an empty generation (:func:`_forget`).

    A read's refresh holds only the streams it recomputes (``cache[WHOLE_LIST]`` unset), and the tick
    skips a stream a read caught up: the project's registrations are read then (one Query of its key
    range, once per project and run), those this run recomputed taken as it left them."""
    registrations = cache["streams"]
    if not cache.get(WHOLE_LIST):
        project_key = project_streams_key(project_id)
        if project_key not in cache:
            cache[project_key] = store.metrics().streams(space_id, project_id=project_id)
        registrations = {**cache[project_key], **cache["streams"]}
    stale = {
        other: registration
        for other, registration in registrations.items()
        if other != stream
        and registration.get("dims", {}).get("project_id") == project_id
        and int(registration.get("deployments", 0))
        and other in live
        and registration.get("release_digest") != prefixes.at(_horizon(registration))
    }
    if stale:
        logger.info("release first-seen times moved", extra={"space_id": space_id, "streams": len(stale)})
        store.mark_streams_dirty(space_id, list(stale), format_instant(now))
        cache.setdefault(RELEASE_MARKED, {}).update(stale)


def _horizon(registration: dict[str, Any]) -> datetime | None:
    text = registration.get("release_horizon")
    return parse_stored(text) if text else None


# Registration fields an empty figures generation keeps (the dimensions readers filter on).
_KEPT_WHEN_EMPTY = ("dims", "project_group_id", "tenant_id", "channel_id", "channel", "project_deployments")


def _forget(
    store: Ports, space_id: str, stream: str, failures: Sequence[FailureEvent], cache: dict[str, Any], now: datetime
) -> bool:
    """Point a stream whose deployments are all gone at an empty figures generation (once: a pointer
    that counts none already is left alone); its deployment rollups stop counting with it
    (``dora_metrics`` selects streams that count deployments). The failure rollup of its (project,
    environment) is still written: its failure events still count as incidents (METRICS §2 rule 4),
    and one recorded, resolved or removed since marked this stream. False when a concurrent recompute
    moved it first. One that never had figures is left alone.

    Its figures now count no release, so a mark ``_mark_release_readers`` made in this run is done."""
    current = cache["streams"].get(stream)
    if current is None or not current.get("generation"):
        cache.get(RELEASE_MARKED, {}).pop(stream, None)
        return True
    dims = metrics.dims_of(current["dims"])
    dora_metrics.write_failure_rollup(
        store,
        space_id,
        stream,
        failures,
        project_id=dims.project_id,
        environment_id=dims.environment_id,
        generation=str(current["generation"]),
        computed_at=format_instant(now),
        cache=cache,
    )
    if int(current.get("deployments", 0)):
        registration: dict[str, Any] = {k: current[k] for k in _KEPT_WHEN_EMPTY if k in current}
        registration.update(deployments=0, computed_at=format_instant(now))
        generation = new_id(datetime.now().astimezone())
        if not store.metrics().write_stream_figures(
            space_id, stream, registration, {}, generation, current["generation"]
        ):
            cache["streams"].pop(stream, None)  # moved by another recompute: read it again when needed
            return False
        cache["streams"][stream] = {**registration, "stream": stream, "generation": generation}
    cache.get(RELEASE_MARKED, {}).pop(stream, None)  # it reads no release now
    return True


def _mark_again(store: Ports, space_id: str, stream: str, now: datetime) -> None:
    """This recompute lost the pointer to a concurrent one, but its rollups (written before the
    pointer move) landed after the winner's: they name a generation the pointer never reaches, so
    ``/dora/metrics`` would leave the stream out, and the winner may already have cleared the mark
    both read. Mark the stream again, so that the next recompute, or a read's refresh, rewrites its
    figures and rollups as one generation if the recompute this one then tries over the winner's
    pointer does not land either."""
    logger.warning("stream rollups overwritten by a losing recompute", extra={"space_id": space_id, "stream": stream})
    store.mark_streams_dirty(space_id, [stream], format_instant(now))


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
    elapsed: Callable[[], float]  # seconds since the run started
    oldest: datetime | None = None
    # The run a stream's failure is counted for (once): the schedule's tick for a work item (a split
    # space's ``streams`` and ``space`` items of one tick may both fail a stream), else ``at``.
    tick: str = ""


def _begin(
    store: InsightPorts,
    now: datetime,
    deadline_ms: int | None,
    bus: alerts.Bus | None,
    clock: Callable[[], float] | None,
) -> _Run:
    """A run's shared state, its clock started: out of time past ``BUDGET_SHARE`` of ``deadline_ms``."""
    tick = clock or monotonic
    started = tick()
    budget = None if deadline_ms is None else deadline_ms / 1000 * BUDGET_SHARE

    def out_of_time() -> bool:
        return budget is not None and tick() - started > budget

    summary = RecomputeSummary(spaces=0, streams_pending=0, streams_processed=0)
    at = format_instant(now)
    return _Run(store, now, at, bus, out_of_time, summary, store.health(), lambda: tick() - started, tick=at)


def _end(state: _Run) -> RecomputeSummary:
    """The run's summary with its lag (the age of the oldest mark it met) and its duration."""
    summary = state.summary
    summary.lag_seconds = max(0.0, (state.now - state.oldest).total_seconds()) if state.oldest else 0.0
    summary.duration_seconds = state.elapsed()
    return summary


def run(
    store: InsightPorts,
    now: datetime,
    *,
    deadline_ms: int | None = None,
    bus: alerts.Bus | None = None,
    clock: Callable[[], float] | None = None,
) -> RecomputeSummary:
    """Every space in one process (dirty streams first, then reports, then thresholds): what the
    fanned-out items do together, for tests and benchmarks (deployed, :func:`schedule` fans it out).

    Spaces are visited in a rotating order (see the module docstring); an error in one stream,
    report, threshold or space is logged with its ids, counted and skipped, never raised.
    """
    state = _begin(store, now, deadline_ms, bus, clock)
    summary = state.summary
    order = rotation(store.list_space_ids(), _cursor(state))
    if order:
        # Saved first, so that even a run the Lambda timeout cuts off moves the next one's start.
        _save_cursor(state, order[0])
    for position, space_id in enumerate(order):
        if position and state.out_of_time():
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
    logger.info("recompute", extra=_end(state).model_dump())
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
    failure: tuple[str, FailureNote] | None = None  # a step that failed without ending the visit
    unknown: bool = False  # no such space (a stale or forged work item): nothing to do, nothing recorded


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
    if not visit.unknown:
        _record_visit(state, space_id, visit.record, before, failure or visit.failure, complete=complete)
    return complete


def _work_space(state: _Run, space_id: str, visit: _Visit) -> bool:
    """Streams, then reports, then thresholds of one space; False when out of time."""
    summary = state.summary
    visit.record, unhealthy = state.health.space_health(space_id)
    data = state.store.metrics()
    space = state.store.get_space(space_id, consistent=True)  # a window changed a moment ago applies
    if space is None:
        visit.unknown = True
        return True
    # An upgrade changed the figure rules (or a downgrade): every stream is marked (marks the settings owe
    # with them), and computed from the next tick on. Not in this visit: its marks are fresh (``settled``),
    # so computing them now would be done again by the next tick; then the schedule sees them all and
    # splits a big space into items.
    rules_changed = space.figures_format != FIGURES_FORMAT
    if rules_changed:
        settings.mark_for_figure_rules(state.store, space, state.now)
    elif space.settings.marks_owed:
        settings.pay_owed_marks(state.store, space, state.now)
    dirty = state.store.list_dirty_streams(space_id)
    summary.streams_pending += len(dirty)
    window = timedelta(hours=space.failure_window_hours)
    failures = data.space_failures(space_id)
    cache: dict[str, Any] = {}
    changed: set[str] = set()
    visit.stage = "attribution"
    _sweep_attribution(state, space_id)
    visit.stage = "streams"
    done: list[dict[str, Any]] = []  # marks whose streams are up to date: cleared once their reports are
    for mark in () if rules_changed else dirty:
        if state.out_of_time():
            return False
        if _caught_up(state, space_id, mark, unhealthy) or _recompute_dirty(
            state, space_id, mark, unhealthy.get(mark["stream"]), window, failures, cache
        ):
            changed.add(mark["stream"])
            if mark.get("caught_up") or settled(str(mark["dirty_at"]), state.now):
                done.append(mark)  # a younger mark stays: the index read may not have shown its deployment yet
    visit.stage = "reports"
    before = {k: r for k, r in cache.get("registered_before", {}).items() if r is not None and k in changed}
    caught_up = {str(m["stream"]) for m in dirty if m.get("caught_up")}
    held = _refresh_reports(state, space_id, data, changed, failures, before, caught_up, visit)
    if held is None or state.out_of_time():
        return False
    for mark in done:  # a failed report keeps the marks of its streams: the next run refreshes it again
        if state.out_of_time():  # one round trip a mark: a mark left costs the next run a caught-up check
            return False
        if mark["stream"] not in held:
            data.clear_dirty(space_id, mark["stream"], mark["dirty_at"], mark.get("mark_id"))
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


def _caught_up(
    state: _Run, space_id: str, mark: Mapping[str, Any], unhealthy: Mapping[str, StreamHealthRecord]
) -> bool:
    """Whether a read's refresh brought the mark's stream up to date (``freshness``); its failure record,
    if an earlier run left one, goes then: the stream's figures are current and nothing failed since."""
    if not mark.get("caught_up"):
        return False
    if str(mark["stream"]) in unhealthy:
        state.health.clear_stream(space_id, str(mark["stream"]))
    return True


def _record_stream_failure(
    state: _Run, space_id: str, stream: str, dirty_at: str, record: StreamHealthRecord | None, note: FailureNote
) -> None:
    """Count the failed run on the stream's health record (quarantining it at the limit); never raises."""
    try:
        updated = state.health.record_stream_failure(
            space_id,
            stream,
            dirty_at=dirty_at,
            at=state.at,
            run=state.tick,
            note=note,
            quarantine_after=health.QUARANTINE_AFTER,
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
    changed: set[str],
    failures: list[Any],
    before: Mapping[str, Mapping[str, Any]],
    caught_up: Collection[str],
    visit: _Visit,
) -> set[str] | None:
    """Recompute the reports whose streams changed (included by their registration now or by the one
    ``before`` this run: a stream that left a report must stop counting in it) or whose definition moved
    on, or that wait for a figure dated after their last recompute.

    A stream ``caught_up`` by a read or a ``streams`` item was recomputed elsewhere, so its registration
    before is unknown here: a report it may have left (its key fits, only the report's project groups or
    tenant tags keep it out: ``Covers.moves_in``, as a read's refresh judges it) is recomputed too.

    Pointers and figures are read strongly consistent: this item has just moved pointers (or a
    ``streams`` item of its tick has), and a replica that has not applied those writes yet would
    answer the previous ones, complete and agreeing, so the reports would miss what the marks about
    to be cleared stood for.

    Answers the streams whose marks must stay (those a report that failed includes now, included
    before, or may have gained: it counts their changes at its next refresh), None when out of time;
    a failed report is the visit's failure on the space's health record (stage ``reports``)."""
    held: set[str] = set()
    streams: dict[str, dict[str, Any]] | None = None
    read: tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]], str] | None = None
    for report in reports.list_reports(state.store, space_id):
        if state.out_of_time():
            return None
        if streams is None:  # read once, and only for a space with reports
            streams = data.streams(space_id, consistent=True) if changed else {}
        try:
            report_state = data.report_state(space_id, report.number)
            moves_in = report_covers(report).moves_in
            if (
                metrics.is_current(report_state, report, state.now)
                and not any(key in changed for key in metrics.report_streams(report, streams))
                and not metrics.report_streams(report, before)
                and not (moves_in and any(moves_in(key, streams[key]) for key in caught_up if key in streams))
            ):
                continue
            if read is None:
                read = metrics.snapshot(data, space_id, streams or None, consistent=True)
            metrics.recompute_report(state.store, space_id, report, state.now, read=read, failures=failures)
            state.summary.reports_refreshed += 1
        except Exception as error:
            state.summary.reports_failed += 1
            logger.exception("recompute of a report failed", extra={"space_id": space_id, "report_id": report.id})
            held |= _report_marks(report, streams or {}, before, caught_up)
            if visit.failure is None:
                note = health.failure_note(error)
                visit.failure = ("reports", replace(note, message=f"report {report.id}: {note.message}"))
    return held


def _report_marks(
    report: ReportDefinition,
    streams: Mapping[str, Mapping[str, Any]],
    before: Mapping[str, Mapping[str, Any]],
    caught_up: Collection[str],
) -> set[str]:
    """The streams whose changes a report may not count until it is refreshed: those it includes now or
    before this run, and those caught up elsewhere that its groups or tags may have brought in."""
    moves_in = report_covers(report).moves_in
    held = set(metrics.report_streams(report, streams)) | set(metrics.report_streams(report, before))
    if moves_in:
        held |= {key for key in caught_up if key not in streams or moves_in(key, streams[key])}
    return held


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


# --------------------------------------------------------------------------------------------- fan-out
# Streams one ``streams`` item recomputes at most: a space with more streams waiting is split into
# items of this many (each a bounded share of one worker's time).
STREAM_GROUP = 25


class WorkItem(BaseModel):
    """One unit of the fanned-out recompute: the body of a recompute-queue message."""

    # Fields a newer schedule adds are ignored by an older worker during a deployment.
    model_config = ConfigDict(extra="ignore")

    kind: Literal["space", "streams"]
    space_id: str = Field(min_length=1, max_length=64)
    planned_at: str = Field(min_length=1, max_length=40)  # the tick that sent it (logs)
    # ``streams``: the dirty streams whose figures to recompute (the space's item refreshes reports).
    streams: list[str] = Field(default_factory=list, max_length=STREAM_GROUP)


class WorkQueue(Protocol):
    """The recompute queue (``dal.recompute_queue.RecomputeQueue``)."""

    def backlog(self) -> int:
        """Messages waiting to be received (approximate; not those a worker holds)."""
        ...

    def send(self, bodies: Sequence[str]) -> int:
        """Send messages; how many were sent. Raises when any was refused."""
        ...


class ScheduleSummary(BaseModel):
    """What one tick of the schedule found and sent."""

    spaces: int = 0
    spaces_split: int = 0  # spaces whose streams went out as ``streams`` items
    spaces_failed: int = 0  # dirty marks unreadable: the space's item reads them itself
    streams_pending: int = 0
    items: int = 0
    items_sent: int = 0
    items_unsent: int = 0  # refused by SQS for good (the next tick sends every item again)
    backlog: int = 0  # items of earlier ticks still waiting for a worker when this one looked
    skipped: bool = False  # a whole tick's worth was still waiting: nothing sent (backpressure)
    lag_seconds: float = 0.0  # age of the oldest dirty mark
    duration_seconds: float = 0.0


def plan(store: Ports, now: datetime) -> tuple[list[WorkItem], ScheduleSummary]:
    """The work items of one tick, in the order to send them, and what was found.

    Every space gets a ``space`` item every tick (its attribution sweep, report definitions that
    moved on and alert deliveries owed need a visit even with nothing dirty). A space with more
    than ``STREAM_GROUP`` streams waiting also gets ``streams`` items; they go first and the split
    spaces' own items last, so that the workers (which take messages roughly in order) mostly find
    the streams caught up; an item that runs early recomputes what is still waiting itself, and a
    concurrent duplicate loses its pointer move harmlessly. Never raises for one space's data."""
    summary = ScheduleSummary()
    at = format_instant(now)
    groups: list[WorkItem] = []
    visits: list[WorkItem] = []
    after_groups: list[WorkItem] = []
    oldest: datetime | None = None
    for space_id in sorted(set(store.list_space_ids())):
        summary.spaces += 1
        try:
            marks = store.list_dirty_streams(space_id)
            for mark in marks:
                marked_at = parse_stored(str(mark["dirty_at"]))
                oldest = marked_at if oldest is None or marked_at < oldest else oldest
        except Exception:
            logger.exception("reading a space's dirty marks failed", extra={"space_id": space_id})
            summary.spaces_failed += 1
            marks = []
        summary.streams_pending += len(marks)
        waiting = sorted(str(m["stream"]) for m in marks if not m.get("caught_up"))
        visit = WorkItem(kind="space", space_id=space_id, planned_at=at)
        if len(waiting) <= STREAM_GROUP:
            visits.append(visit)
            continue
        summary.spaces_split += 1
        for start in range(0, len(waiting), STREAM_GROUP):
            group = waiting[start : start + STREAM_GROUP]
            groups.append(WorkItem(kind="streams", space_id=space_id, planned_at=at, streams=group))
        after_groups.append(visit)
    summary.lag_seconds = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
    items = groups + visits + after_groups
    summary.items = len(items)
    return items, summary


def schedule(
    store: Ports, queue: WorkQueue, now: datetime, *, clock: Callable[[], float] | None = None
) -> ScheduleSummary:
    """One tick: plan the work items and send them to the recompute queue.

    Backpressure: when at least a whole tick's worth of items still waits for a worker (the
    workers are behind), nothing is sent: the items waiting already cover every space, and each
    reads the marks when it runs, so what was marked since is not lost, only later; the queue never
    grows past about two ticks. Items in progress or a few stuck in retries never hold the schedule
    back. Items SQS refuses for good are counted in ``items_unsent`` and logged as an error (the
    next tick sends every item again; duplicates are harmless)."""
    tick = clock or monotonic
    started = tick()
    items, summary = plan(store, now)
    try:
        summary.backlog = queue.backlog()
    except Exception:
        logger.exception("reading the recompute queue's backlog failed")
    if items and summary.backlog >= len(items):
        summary.skipped = True
        logger.warning("recompute items of earlier ticks still wait: none sent", extra=summary.model_dump())
    elif items:
        try:
            summary.items_sent = queue.send([item.model_dump_json() for item in items])
        except MessagesUnsentError as refused:
            summary.items_sent, summary.items_unsent = refused.sent, refused.unsent
            logger.error("recompute items refused by SQS", extra={"codes": refused.codes, **summary.model_dump()})
    summary.duration_seconds = tick() - started
    logger.info("recompute schedule", extra=summary.model_dump())
    return summary


def process(
    store: InsightPorts,
    item: WorkItem,
    now: datetime,
    *,
    deadline_ms: int | None = None,
    bus: alerts.Bus | None = None,
    clock: Callable[[], float] | None = None,
) -> RecomputeSummary:
    """Do one work item (what :func:`run` does for one space, or a stream group's figures).

    Idempotent: the item reads the space's marks when it runs and acts on those still waiting, so
    a duplicate or stale item finds little to do. Never raises for the space's data (failures are
    counted and recorded as in :func:`run`); a run out of time leaves the marks for the next tick.
    """
    state = _begin(store, now, deadline_ms, bus, clock)
    state.tick = item.planned_at
    summary = state.summary
    if item.kind == "space":
        summary.spaces = 1
        summary.first_space = summary.last_space = item.space_id
        summary.complete = _visit_space(state, item.space_id)
    else:
        summary.complete = _visit_streams(state, item.space_id, item.streams)
    return _end(state)


def _visit_streams(state: _Run, space_id: str, streams: Sequence[str]) -> bool:
    """Recompute the figures of some of a split space's dirty streams and record each one done as
    caught up (its reports wait for the space's own item, which then skips it); False when out of
    time. Never raises."""
    try:
        _, unhealthy = state.health.space_health(space_id)
        marks = {str(m["stream"]): m for m in state.store.list_dirty_streams(space_id)}
        space = state.store.get_space(space_id, consistent=True)  # a window changed a moment ago applies
        window = timedelta(hours=space.failure_window_hours if space else 24.0)
        data = state.store.metrics()
        failures = data.space_failures(space_id)
    except Exception:
        logger.exception("recompute of a stream group failed", extra={"space_id": space_id, "stage": "setup"})
        state.summary.spaces_failed += 1
        return True
    cache: dict[str, Any] = {}
    for stream in streams:
        mark = marks.get(stream)
        if mark is None or _caught_up(state, space_id, mark, unhealthy):
            continue  # done meanwhile: a duplicate item, a read's refresh, or the space's own item
        if state.out_of_time():
            return False
        if _recompute_dirty(state, space_id, mark, unhealthy.get(stream), window, failures, cache) and settled(
            str(mark["dirty_at"]), state.now
        ):  # a younger mark stays (not caught up): the index read may not have shown its deployment yet
            try:
                data.mark_caught_up(space_id, stream, str(mark["dirty_at"]), mark.get("mark_id"))
            except Exception:  # the mark stays as it was: the next tick recomputes the stream again
                logger.exception(
                    "recording a stream as caught up failed", extra={"space_id": space_id, "stream": stream}
                )
    return True


def combine(summaries: Iterable[RecomputeSummary]) -> RecomputeSummary:
    """The summaries of several items as one (counts and durations added, lag the largest,
    complete when every item was, the first and last space visited)."""
    total = RecomputeSummary(spaces=0, streams_pending=0, streams_processed=0)
    for summary in summaries:
        for name, value in summary:
            if isinstance(value, bool):
                continue
            if isinstance(value, int):
                setattr(total, name, getattr(total, name) + value)
        total.complete = total.complete and summary.complete
        total.first_space = total.first_space or summary.first_space
        total.last_space = summary.last_space or total.last_space
        total.lag_seconds = max(total.lag_seconds, summary.lag_seconds)
        total.duration_seconds += summary.duration_seconds
    return total
