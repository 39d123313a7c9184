"""Fresh numbers on read (METRICS §8): every computed answer says how fresh it is, and a read whose
streams have little pending work does that work first, with the scheduled recompute's own code.

- A stream's dirty mark (``Store.dirty_op``) says changes wait for it: ``dirty_at`` is the latest,
  ``pending`` counts the marks since it was last computed, ``caught_up`` says a read already
  brought its figures up to ``dirty_at`` (only the reports that include it still wait; the
  schedule refreshes them and removes the mark).
- An answer's ``pending``: the streams it covers with changes its figures do not count (covers: by
  the stream's registration, or by what its recompute will register, ``Covers`` and ``_covered``).
  Its ``as_of``: when the figures it reads were computed (a report's views: the report's
  ``computed_at``; per-deployment figures: the newest ``computed_at`` of the streams it covers).
- Bounds (``READ_BOUND``, ``READ_STREAMS``, ``REPORT_READ_BOUND``, measured by ``make bench``): a read
  re-reads at most ``READ_BOUND`` deployments of at most ``READ_STREAMS`` streams to bring its streams up
  to date (a stream's cost, ``cost``: every deployment of its project plus those marked since),
  cheapest streams first, and recomputes a report
  only when it holds at most ``REPORT_READ_BOUND`` deployments; past them it answers from what
  is computed and counts the rest in ``pending``.
- Guarantees are the recompute's: a stream's figures move only from the generation read and a
  report's only forward in read time (``MetricsStore``), so a read racing the schedule leaves one
  consistent result; a stream that fails is logged and left for the schedule (which isolates and
  quarantines it); reads of figures use ``metrics.snapshot``.
- A mark younger than ``SETTLE`` is not caught up: the deployments are read from an eventually
  consistent index, so the figures computed at once count the new deployment in all likelihood,
  but only a later read (or the schedule) vouches for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from dora_insights.domain.aggregates import StreamDims
from dora_insights.domain.model import FailureEvent, stream_ids
from dora_insights.domain.reports import ReportDefinition
from dora_insights.domain.times import format_instant, parse_stored
from dora_insights.logic import metrics
from dora_insights.logic.ports import MetricsRepository, Ports
from dora_insights.observability import logger

# Deployments a read may re-read to bring the streams it covers up to date: ~1 MB, one Query page
# each of the stream and its project (bench/freshness.py; moto spends ~2 ms serialising each item,
# so the bound reads take seconds there and a few hundred ms against DynamoDB).
READ_BOUND = 1_000
# Streams a read recomputes at most, whatever their deployments: each costs ~7 round trips of its own
# (its deployments, its project's, the figures' writes, the pointer, the mark), so 200 streams onboarded
# between two ticks, one deployment each, held a GET for 1,600 calls (past its Timeout against DynamoDB).
READ_STREAMS = 20
# Deployments a report may hold for a read to recompute it (its views) after its streams moved.
REPORT_READ_BOUND = 20_000
# How long a mark must be old before a read's figures vouch for it (index propagation).
SETTLE = timedelta(seconds=2)


def settled(dirty_at: str, now: datetime) -> bool:
    """Whether a mark is older than ``SETTLE``, so figures computed from the index now vouch for it
    (the schedule and a read's refresh clear or catch up only such marks; a younger one stays)."""
    return parse_stored(dirty_at) <= now - SETTLE


Accepts = Callable[[str, Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Covers:
    """Whether an answer covers a stream, from its key and registration (call it), and whether it may
    once the stream's recompute registers its latest deployment (``moves_in``, judged from the
    registration it rejects). Of a registration only the project group and the tenant tags change
    for a stream key (catalogue names never change); an answer that reads neither has no ``moves_in``
    (None) and a stream it rejects stays out."""

    accepts: Accepts
    moves_in: Accepts | None
    # Whether the answer may cover some stream of a project (its id and project group), judged without
    # I/O: a report listing projects or project groups covers no other (None: any project may be).
    admits_project: Callable[[str, str | None], bool] | None = None

    def __call__(self, key: str, registration: Mapping[str, Any]) -> bool:
        return self.accepts(key, registration)


@dataclass(frozen=True)
class Freshness:
    """How fresh an answer is: ``as_of`` (when its figures were computed; None: nothing computed)
    and ``pending`` (streams it covers with changes not counted; None: not looked at, for answers
    read as stored such as insight lists)."""

    as_of: str | None
    pending: int | None

    def headers(self) -> dict[str, str]:
        """``X-Dora-As-Of`` and ``X-Dora-Pending``, for dialects whose body shape is fixed."""
        found = {} if self.pending is None else {"X-Dora-Pending": str(self.pending)}
        if self.as_of is not None:
            found["X-Dora-As-Of"] = self.as_of
        return found


@dataclass(frozen=True)
class StreamsRead:
    """Per-deployment figures read for an answer (a ``metrics.snapshot``) and their freshness."""

    streams: dict[str, dict[str, Any]]
    figures: dict[str, list[dict[str, Any]]]
    freshness: Freshness


@dataclass(frozen=True)
class StreamRead:
    """One stream brought up to date for a deployment's answer: its freshness and the figures
    generation its pointer names (None: never computed), which the figures read then needs not
    look up again."""

    freshness: Freshness
    generation: str | None


@dataclass(frozen=True)
class ReportRead:
    """A report's state after a read's refresh, its freshness, and the streams the refresh
    brought up to date (``processed``) or tried and left to the schedule (``failed``)."""

    state: dict[str, Any]
    freshness: Freshness
    processed: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


@dataclass
class _Work:
    """What a refresh did to the marks it was given."""

    processed: list[str]
    failed: list[str]
    failures: list[FailureEvent] | None = None
    attempted: bool = False  # a stream was recomputed here: the pointers read before may have moved
    # Streams the answer covers whose release lead times this refresh moved and could not recompute again.
    moved: frozenset[str] = frozenset()

    def left(self, waiting: Sequence[Mapping[str, Any]]) -> frozenset[str]:
        """The covered streams still waiting after this refresh: ``waiting``'s it did not recompute, and
        those it moved and left."""
        return frozenset(str(m["stream"]) for m in waiting) - set(self.processed) | self.moved


def _catch_up_covered(
    store: Ports, data: MetricsRepository, space_id: str, covers: Covers, now: datetime
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], _Work]:
    """Bring the streams ``covers`` accepts up to date within ``READ_BOUND`` deployments, with the marked
    neighbours their release lead times read (the space's whole answers: ``read_streams``,
    ``refresh_streams``): the stream pointers as read before, the marks of the covered streams that
    waited, and what the refresh did."""
    marks = store.list_dirty_streams(space_id)
    registered = data.streams(space_id)
    waiting = [m for m in marks if not m["caught_up"] and _covered(data, space_id, m, registered, covers)]
    neighbours, _ = _release_neighbours(data, space_id, marks, waiting, registered, covers, whole=True)
    work = _catch_up(store, space_id, waiting, registered, now, READ_BOUND, whole=True, also=(neighbours, covers))
    return registered, waiting, work


def read_streams(store: Ports, space_id: str, covers: Covers, now: datetime) -> StreamsRead:
    """The per-deployment figures of the space, the streams ``covers`` accepts brought up to date
    first within ``READ_BOUND`` deployments (when nothing waits: 1 Query of the marks, 1 of the
    stream pointers, 1 of the figures)."""
    data = store.metrics()
    registered, waiting, work = _catch_up_covered(store, data, space_id, covers, now)
    # The pointers just read serve the snapshot unless this read recomputed some (or lost the race to):
    # then they and the figures are read strongly consistent, as the recompute reads what it just wrote.
    streams, figures, _ = metrics.snapshot(
        data, space_id, None if work.attempted else registered, consistent=work.attempted, only=covers
    )
    stamps = [str(r["computed_at"]) for key, r in streams.items() if "computed_at" in r and covers(key, r)]
    freshness = Freshness(max(stamps, default=None), len(work.left(waiting)))
    return StreamsRead(streams, figures, freshness)


class StreamsRefresh(NamedTuple):
    """``refresh_streams``' answer: the pointers, their freshness, whether this read recomputed (or
    lost the race to): then what the recompute wrote is to be read strongly consistent, and the
    streams still waiting (those ``freshness.pending`` counts)."""

    registered: dict[str, dict[str, Any]]
    freshness: Freshness
    refreshed: bool
    waiting: frozenset[str]


def refresh_streams(store: Ports, space_id: str, covers: Covers, now: datetime) -> StreamsRefresh:
    """The space's stream pointers, the streams ``covers`` accepts brought up to date first within
    ``READ_BOUND`` deployments, and their freshness, for answers that read what the recompute derived
    from the figures rather than the figures (the daily rollups of ``logic.dora_metrics``): 1 Query of
    the marks and 1 of the pointers when nothing waits."""
    data = store.metrics()
    registered, waiting, work = _catch_up_covered(store, data, space_id, covers, now)
    if work.attempted:
        registered = data.streams(space_id, consistent=True)
    stamps = [str(r["computed_at"]) for key, r in registered.items() if "computed_at" in r and covers(key, r)]
    left = work.left(waiting)
    return StreamsRefresh(registered, Freshness(max(stamps, default=None), len(left)), work.attempted, left)


def read_stream(store: Ports, space_id: str, stream: str, now: datetime) -> StreamRead:
    """Bring one stream up to date within ``READ_BOUND`` (a deployment's own figures); its freshness
    and current generation (1 GetItem of its mark and 1 BatchGetItem of its pointer when nothing waits).
    The pointer is read strongly consistently: a recompute deletes the generation it leaves at once, so
    an earlier pointer would name figures that are gone."""
    data = store.metrics()
    mark = store.dirty_stream(space_id, stream)
    marks = [mark] if mark is not None and not mark["caught_up"] else []
    registered = data.registrations(space_id, [stream], consistent=True)
    work = _catch_up(store, space_id, marks, registered, now, READ_BOUND)
    if work.attempted:  # a recompute, this read's or a concurrent one, may have moved the pointer
        registered = data.registrations(space_id, [stream], consistent=True)
    pointer = registered.get(stream, {})
    computed, generation = pointer.get("computed_at"), pointer.get("generation")
    fresh = Freshness(None if computed is None else str(computed), len(marks) - len(work.processed))
    return StreamRead(fresh, None if generation is None else str(generation))


def read_report(
    store: Ports, space_id: str, report: ReportDefinition, now: datetime, *, force: bool = False, refresh: bool = True
) -> ReportRead:
    """A report's state, brought up to date first when its pending work is within the bounds
    (``force``: whatever it takes, ``refresh=force_blocking``; ``refresh=False``: only a report
    never computed is computed); 1 GetItem, 1 Query and 1 BatchGetItem when nothing waits, and 1 Query of a
    project's streams for each project whose streams it does not cover are marked (``_release_neighbours``)."""
    data = store.metrics()
    state = data.report_state(space_id, report.number)
    marks = store.list_dirty_streams(space_id)
    registered = data.registrations(space_id, [m["stream"] for m in marks])
    covers = report_covers(report)
    covered = [m for m in marks if _covered(data, space_id, m, registered, covers)]
    waiting = [m for m in covered if not m["caught_up"]]
    read_at = str(state.get("read_at", "")) if state else ""
    # Caught up by another read since this report's: it counts the stream's old figures, or, when the
    # stream left it (a project group or tenant tags the report filters by: ``moves_in``), the stream.
    behind = [
        m
        for m in marks
        if m["caught_up"]
        and (not read_at or str(m["caught_up"]) > read_at)
        and (m in covered or _may_have_left(m, registered, covers))
    ]
    current = metrics.is_current(state, report, now)
    # Marked streams of the report's projects that it does not cover: their recompute may move its releases.
    neighbours, read = _release_neighbours(data, space_id, marks, waiting, registered, covers) if refresh else ([], {})
    if state is not None and current and not waiting and not behind and not neighbours:
        return ReportRead(state, Freshness(str(state["computed_at"]), 0))
    size = int(state.get("deployments", 0)) if state else 0
    if state is not None and current and (not refresh or (not force and size > REPORT_READ_BOUND)):
        return ReportRead(state, Freshness(str(state["computed_at"]), len(waiting) + len(behind)))
    work = _catch_up(
        store,
        space_id,
        waiting if refresh else (),
        registered,
        now,
        None if force else READ_BOUND,
        also=(neighbours, covers) if refresh else None,
        project_streams=read,
    )
    # A neighbour recomputed alone changes nothing the report counts; what it moved is in ``processed`` too.
    covered_moved = set(work.processed) - {str(m["stream"]) for m in neighbours}
    if state is None or not current or behind or covered_moved:
        state = metrics.recompute_report(store, space_id, report, now, failures=work.failures)
    pending = len(work.left(waiting))
    return ReportRead(state, Freshness(str(state["computed_at"]), pending), tuple(work.processed), tuple(work.failed))


def report_covers(report: ReportDefinition) -> Covers:
    """Whether a report includes a stream; it may once its project group or tenant tags are ones the
    report lists (a report that lists neither: the stream's key decides)."""

    def moves_in(_key: str, registration: Mapping[str, Any]) -> bool:
        dims = metrics.dims_of(registration["dims"])
        return report.includes(
            project_id=dims.project_id,
            project_group_id=next(iter(report.project_group_ids), None),
            environment_id=dims.environment_id,
            tenant_id=registration.get("tenant_id"),
            tenant_tags=report.tenant_tags,
        )

    def admits_project(project_id: str, project_group_id: str | None) -> bool:
        listed = report.project_ids or report.project_group_ids
        return not listed or project_id in report.project_ids or project_group_id in report.project_group_ids

    return Covers(
        lambda key, registration: key in metrics.report_streams(report, {key: registration}),
        moves_in if report.project_group_ids or report.tenant_tags else None,
        admits_project,
    )


def _may_have_left(mark: Mapping[str, Any], registered: Mapping[str, Mapping[str, Any]], covers: Covers) -> bool:
    """Whether a stream an answer does not cover by its registration may have been covered before it:
    its key fits, only its project group or tenant tags keep it out (``moves_in``). No I/O."""
    registration = registered.get(str(mark["stream"]))
    return registration is not None and covers.moves_in is not None and covers.moves_in(mark["stream"], registration)


def _covered(
    data: MetricsRepository,
    space_id: str,
    mark: Mapping[str, Any],
    registered: Mapping[str, Mapping[str, Any]],
    covers: Covers,
) -> bool:
    """Whether ``covers`` accepts a marked stream: by its registration (a stream moving out stays
    covered until its recompute), or by its latest deployment, what its registration will say (1 Query):
    for a stream never computed yet, and for one whose registration ``covers.moves_in`` (a new project
    group or tenant tags may bring it in) unless a read caught it up to its mark (it says so already).
    A stream never computed whose mark carries its preview (``stream_preview``, written with its
    deployments) is judged from it, without the Query, by an answer no group or tag decides
    (``moves_in`` None): a read after thousands of new streams costs no Query a stream."""
    stream = str(mark["stream"])
    registration = registered.get(stream)
    if registration is None and covers.moves_in is None and isinstance(mark.get("preview"), Mapping):
        return covers(stream, mark["preview"])
    if registration is not None:
        if covers(stream, registration):
            return True
        if mark["caught_up"] or covers.moves_in is None or not covers.moves_in(stream, registration):
            return False
    latest = data.latest_stream_deployment(space_id, stream)
    if latest is None:
        return False
    upcoming = {
        "dims": StreamDims.of(latest).record(),
        "project_group_id": latest.project_group_id,
        "tenant_id": latest.tenant_id,
    }
    return covers(stream, upcoming)


def cost(registration: Mapping[str, Any], pending: int) -> int:
    """Deployments a stream's recompute re-reads: its project's (release first-seen times; its own
    when computed before that was counted) and those marked since (a new project's: only them)."""
    known = registration.get("project_deployments", registration.get("deployments", 0))
    return int(known) + pending


def within_bound(costs: Mapping[str, int], bound: int | None) -> list[str]:
    """The cheapest streams first (ties by key) while their total cost stays within ``bound``
    (None: all of them)."""
    chosen: list[str] = []
    spent = 0
    for stream in sorted(costs, key=lambda s: (costs[s], s)):
        if bound is not None and spent + costs[stream] > bound:
            break
        chosen.append(stream)
        spent += costs[stream]
    return chosen


def _release_neighbours(
    data: MetricsRepository,
    space_id: str,
    marks: Sequence[Mapping[str, Any]],
    waiting: Sequence[Mapping[str, Any]],
    registered: Mapping[str, Mapping[str, Any]],
    covers: Covers,
    *,
    whole: bool = False,
) -> tuple[list[Mapping[str, Any]], dict[str, dict[str, dict[str, Any]]]]:
    """Marked streams an answer does not cover whose recompute may move the Release lead times of streams it
    covers: those of a project it covers a stream of (a release's first sight is taken across the project,
    METRICS §3, so a late deployment in staging moves production's). ``whole``: ``registered`` is the
    space's stream list; otherwise each such project's streams are read (1 Query each, for at most
    ``READ_STREAMS`` projects ``covers.admits_project`` admits) and returned, so the recompute reads them
    no more. Nothing is read when no other stream is marked."""
    taken = {str(m["stream"]) for m in waiting}
    candidates: dict[str, list[Mapping[str, Any]]] = {}
    for mark in marks:
        ids = stream_ids(str(mark["stream"]))
        if ids is not None and not mark["caught_up"] and str(mark["stream"]) not in taken:
            candidates.setdefault(ids[0], []).append(mark)
    read: dict[str, dict[str, dict[str, Any]]] = {}
    if whole:
        projects = {
            project
            for key, registration in registered.items()
            if covers(key, registration) and (project := _project(key)) is not None
        }
    else:
        projects = set()
        for project in sorted(candidates)[:READ_STREAMS]:
            group = next(
                (registered[s].get("project_group_id") for s in _streams(candidates[project]) if s in registered), None
            )
            if covers.admits_project is not None and not covers.admits_project(project, group):
                continue
            read[project] = data.streams(space_id, project_id=project)
            if any(covers(key, registration) for key, registration in read[project].items()):
                projects.add(project)
    return [m for project in sorted(projects & set(candidates)) for m in candidates[project]], read


def _project(stream: str) -> str | None:
    ids = stream_ids(stream)
    return None if ids is None else ids[0]


def _streams(marks: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(m["stream"]) for m in marks]


def _catch_up(
    store: Ports,
    space_id: str,
    marks: Sequence[Mapping[str, Any]],
    registered: Mapping[str, Mapping[str, Any]],
    now: datetime,
    bound: int | None,
    *,
    whole: bool = False,
    also: tuple[Sequence[Mapping[str, Any]], Covers] | None = None,
    project_streams: Mapping[str, dict[str, dict[str, Any]]] | None = None,
) -> _Work:
    """Recompute the marked streams, cheapest first, while their deployments fit ``bound`` (and at most
    ``READ_STREAMS`` of them; None: all of them); record each settled mark as caught up (unless marked
    again meanwhile). ``whole``: ``registered`` is the space's whole stream list, not only the marked
    streams' registrations (the recompute then reads no other).

    ``also``: the marked neighbours of the answer's streams (``_release_neighbours``) and what the answer
    covers. Within what the bounds leave, the neighbours are recomputed first, and the covered streams
    whose Release lead times a recompute here moved (``recompute._mark_release_readers``) are recomputed
    again after the others; those left are the work's ``moved``. ``project_streams``: registrations of
    projects already read, by project."""
    neighbours, covers = also if also is not None else ((), None)
    work = _Work([], [])
    chosen = _affordable(marks, registered, bound, READ_STREAMS)
    spent = sum(_mark_cost(m, registered) for m in chosen)
    room = None if bound is None else bound - spent
    first = _affordable(neighbours, registered, room, READ_STREAMS - len(chosen))
    if not chosen and not first:
        return work
    # Imported here: the schedule's module imports the threshold checks, which read insights
    # through this module; and a read with nothing to do never loads it.
    from dora_insights.logic import recompute

    data = store.metrics()
    space = store.get_space(space_id, consistent=True)  # a window changed a moment ago applies
    window = timedelta(hours=space.failure_window_hours if space else 24.0)
    work.failures = data.space_failures(space_id)
    work.attempted = True
    cache: dict[str, Any] = {"streams": {k: dict(v) for k, v in registered.items()}, recompute.WHOLE_LIST: whole}
    for project, streams in (project_streams or {}).items():
        cache[recompute.project_streams_key(project)] = streams

    def refresh(mark: Mapping[str, Any]) -> None:
        stream, dirty_at = str(mark["stream"]), str(mark["dirty_at"])
        try:
            if not recompute.recompute_stream(store, space_id, stream, window, work.failures or [], cache, now):
                return  # a concurrent recompute moved it first: still pending for this answer
            if settled(dirty_at, now):
                data.mark_caught_up(space_id, stream, dirty_at, mark.get("mark_id"))
        except Exception:  # one broken stream must not fail the read: the schedule deals with it
            logger.exception("read refresh: stream recompute failed", extra={"space_id": space_id, "stream": stream})
            work.failed.append(stream)
            return
        work.processed.append(stream)

    for mark in (*first, *chosen):
        refresh(mark)
    if covers is None:
        return work
    moved = {s: r for s, r in cache.get(recompute.RELEASE_MARKED, {}).items() if covers(s, r)}
    if moved:  # marked a moment ago: recomputed now, caught up by a later read or the schedule
        room = None if room is None else room - sum(_mark_cost(m, registered) for m in first)
        again = [{"stream": s, "dirty_at": format_instant(now), "pending": 1} for s in sorted(moved)]
        for mark in _affordable(again, moved, room, READ_STREAMS - len(chosen) - len(first)):
            cache["streams"].setdefault(str(mark["stream"]), dict(moved[str(mark["stream"])]))
            refresh(mark)
        work.moved = frozenset(s for s in cache.get(recompute.RELEASE_MARKED, {}) if s in moved)
    return work


def _mark_cost(mark: Mapping[str, Any], registered: Mapping[str, Mapping[str, Any]]) -> int:
    """``cost`` of a marked stream, by its registration in ``registered`` (none: a new stream)."""
    return cost(registered.get(str(mark["stream"]), {}), int(mark["pending"]))


def _affordable(
    marks: Sequence[Mapping[str, Any]], registered: Mapping[str, Mapping[str, Any]], bound: int | None, most: int
) -> list[Mapping[str, Any]]:
    """The marks ``within_bound`` chooses, at most ``most`` of them unless ``bound`` is None."""
    costs = {str(m["stream"]): _mark_cost(m, registered) for m in marks}
    by_stream = {str(m["stream"]): m for m in marks}
    affordable = within_bound(costs, bound)
    return [by_stream[stream] for stream in (affordable if bound is None else affordable[: max(most, 0)])]
