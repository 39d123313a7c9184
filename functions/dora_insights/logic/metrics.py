"""Report metrics: computed by the scheduled recompute into generations of precomputed views,
read by ``/metrics``, ``/deployments``, insights and thresholds (METRICS §3–4).

A view is one (split, granularity) of a report over ``LastYear`` at the recompute, stored in
two forms (:func:`stored_view`): the numbers of each series' non-empty intervals (insights and
thresholds re-grid them for their range and ``now``, filling empty intervals), and the whole
``/metrics`` answer as text with the offsets of every interval (``/metrics`` serves it as it
is when the request is that grid, else slices it; nothing is rendered per request). Reports
that did not change are not recomputed, so a read may come days later: both forms re-grid to
the request's ``now`` (rolling windows stay right), with empty intervals past the stored grid.
"""

from __future__ import annotations

import dataclasses
import gzip
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from dora_insights.domain.aggregates import (
    Granularity,
    IntervalGrid,
    IntervalMetrics,
    SeriesMetrics,
    Split,
    Statistics,
    StreamDims,
    TimeRange,
    aggregate_splits,
    empty_interval,
    interval_grid,
    stream_columns,
)
from dora_insights.domain.figures import DeploymentFigures, figures_of
from dora_insights.domain.ids import new_id
from dora_insights.domain.metrics_json import (
    DOCUMENT_HEAD,
    DOCUMENT_TAIL,
    SERIES_TAIL,
    empty_interval_template,
    interval_json,
    is_active,
    metrics_json,
    series_head,
)
from dora_insights.domain.model import CatalogueKind, FailureEvent
from dora_insights.domain.reports import ReportDefinition, tenant_tag_key
from dora_insights.domain.times import format_instant, parse_stored, wall_stamp
from dora_insights.domain.views import StoredView, ViewId
from dora_insights.domain.zones import resolve_time_zone
from dora_insights.errors import RequestInvalidError, ServiceUnavailableError
from dora_insights.logic import reports
from dora_insights.logic.ports import MetricsRepository, Ports
from dora_insights.observability import logger

# The stored form of views. A report state written in another form is recomputed on its next
# read (and by the next scheduled run), so an upgrade never serves a view it cannot read.
VIEW_FORMAT = 2
_T = TypeVar("_T")

# Strongly consistent re-reads of the pointers and figures when a first read was incomplete (``snapshot``).
SNAPSHOT_ATTEMPTS = 3
# Streams an answer about a few of them reads one by one (``snapshot``'s ``only``): each is a Query of its own
# chunks, against pages of every stream's in one read of the space's.
FEW_STREAMS = 5
BASE_SPLITS = (Split.NONE, Split.PROJECT, Split.PROJECT_GROUP, Split.ENVIRONMENT, Split.ENVIRONMENT_GROUP, Split.TENANT)


# --- records -------------------------------------------------------------------------------
def dims_of(record: Mapping[str, Any]) -> StreamDims:
    """The inverse of :func:`dims_record`."""
    return StreamDims(
        project_id=record["project_id"],
        project=record["project"],
        environment_id=record["environment_id"],
        environment=record["environment"],
        project_group=record.get("project_group"),
        tenant=record.get("tenant"),
        tenant_tags=tuple(record.get("tenant_tags", ())),
    )


def _stats_record(stats: Statistics) -> dict[str, Any]:
    return {
        "count": stats.count,
        "mean": stats.mean,
        "median": stats.median,
        "min": stats.min,
        "max": stats.max,
        "ninety_fifth": stats.ninety_fifth,
    }


def _interval_record(metrics: IntervalMetrics) -> dict[str, Any]:
    """An interval's numbers as stored: ``dataclasses.asdict`` of it with an ISO start, written
    out because ``asdict`` (deep copies) was the largest cost of a recompute."""
    dfr = metrics.deployment_failure_rate
    cfr = metrics.change_failure_rate
    rework = metrics.rework_rate
    return {
        "start": metrics.start.isoformat(),
        "number_of_successful_deployments": metrics.number_of_successful_deployments,
        "lead_time": _stats_record(metrics.lead_time),
        "time_since_previous_deployment": _stats_record(metrics.time_since_previous_deployment),
        "mean_time_to_recovery": _stats_record(metrics.mean_time_to_recovery),
        "deployments_until_recovery": _stats_record(metrics.deployments_until_recovery),
        "deployment_failure_rate": {
            "successful": dfr.successful,
            "deployment_failure": dfr.deployment_failure,
            "successful_but_had_guided_failure": dfr.successful_but_had_guided_failure,
            "total": dfr.total,
            "failed": dfr.failed,
            "rate": dfr.rate,
        },
        "change_failure_rate": {
            "change_failures": cfr.change_failures,
            "deployments": cfr.deployments,
            "rate": cfr.rate,
        },
        "rework_rate": {
            "rework_deployments": rework.rework_deployments,
            "deployments": rework.deployments,
            "rate": rework.rate,
        },
        "time_to_restore": _stats_record(metrics.time_to_restore),
        "deployment_days": metrics.deployment_days,
    }


def _active(record: Mapping[str, Any]) -> bool:
    return bool(record["deployment_failure_rate"]["total"] or record["time_to_restore"]["count"])


# --- views ---------------------------------------------------------------------------------
def report_streams(report: ReportDefinition, streams: Mapping[str, Mapping[str, Any]]) -> dict[str, StreamDims]:
    """The streams a report includes, with their dimensions (METRICS §4 filters)."""
    included: dict[str, StreamDims] = {}
    for key, registration in streams.items():
        dims = dims_of(registration["dims"])
        if report.includes(
            project_id=dims.project_id,
            project_group_id=registration.get("project_group_id"),
            environment_id=dims.environment_id,
            tenant_id=registration.get("tenant_id"),
            tenant_tags=dims.tenant_tags,
        ):
            included[key] = dims
    return included


def compute_views(
    report: ReportDefinition,
    streams: Mapping[str, StreamDims],
    figures: Mapping[str, Sequence[DeploymentFigures]],
    failures: Iterable[FailureEvent],
    tag_sets: Mapping[str, str],
    now: datetime,
) -> dict[ViewId, StoredView]:
    """Every view of a report over ``LastYear``: each stream's columns are built once, every split of
    a granularity is aggregated in one pass over them."""
    zone = resolve_time_zone(report.time_zone)
    groups = {g.name: list(g.environment_ids) for g in report.environment_groups}
    # What is dated after ``now`` waits in every view alike (``_due_at`` computes the report again then):
    # a week or month holding it would count it at once where its day would not.
    relevant = [f for f in report_failures(streams, failures) if not _restored_later(f, now)]
    present_sets = {tenant_tag_key(tag)[0] for d in streams.values() for tag in d.tenant_tags}
    splits: list[tuple[Split, str | None, str | None]] = [(s, None, None) for s in BASE_SPLITS]
    splits += [
        (Split.TENANT_TAG_SET, set_id, name) for set_id, name in tag_sets.items() if name.casefold() in present_sets
    ]
    split_keys = [(split, set_name) for split, _, set_name in splits]
    columns = [(dims, stream_columns(_completed_by(figures.get(key, ()), now))) for key, dims in streams.items()]
    views: dict[ViewId, StoredView] = {}
    for granularity in Granularity:
        grid = interval_grid(TimeRange.LAST_YEAR, granularity, zone, now)
        by_split = aggregate_splits(columns, grid, split_keys, environment_groups=groups, failure_events=relevant)
        for split, set_id, set_name in splits:
            views[ViewId.of(split, granularity, set_id)] = stored_view(by_split[(split, set_name)], grid)
    return views


def report_failures(streams: Mapping[str, StreamDims], failures: Iterable[FailureEvent]) -> list[FailureEvent]:
    """The failure events a report counts: those naming a project in their environment of which the
    report includes a stream, the streams recording the failure marks dirty (METRICS §4; as ``/dora/metrics``
    counts them, §9). Any included project with any included environment would count a failure whose
    (project, environment) has no stream, which nothing would ever mark for the report's refresh."""
    pairs = {(d.project_id, d.environment_id) for d in streams.values()}
    return [f for f in failures if any((project, f.environment_id) in pairs for project in f.project_ids)]


def _completed_by(found: Sequence[DeploymentFigures], now: datetime) -> Sequence[DeploymentFigures]:
    """The figures of deployments completed by ``now`` (all of them, as given, in the usual case)."""
    if all(f.completed_at <= now for f in found):
        return found
    return [f for f in found if f.completed_at <= now]


def _restored_later(failure: FailureEvent, now: datetime) -> bool:
    return failure.finished_at is not None and parse_stored(failure.finished_at) > now


def _due_at(
    figures: Mapping[str, Sequence[DeploymentFigures]], failures: Iterable[FailureEvent], now: datetime
) -> str | None:
    """The earliest instant after ``now`` a figure counts at (a deployment's completion, a failure's
    restoration): the views are cut at ``now``'s interval, so the report must be computed again then."""
    later = [f.completed_at for found in figures.values() for f in found if f.completed_at > now]
    later += [t for f in failures if f.finished_at is not None and (t := parse_stored(f.finished_at)) > now]
    return format_instant(min(later)) if later else None


def stored_view(series: Sequence[SeriesMetrics], grid: IntervalGrid) -> StoredView:
    """A view's series as stored: numbers of the non-empty intervals, and the rendered answer.

    ``text`` is the whole ``/metrics`` answer (METRICS §4 JSON) for the view's own grid, empty
    intervals included. The header gives the grid's start dates, the JSON of an empty interval
    around its date, and per series its name, deployments and restored failures per interval (to
    choose and order series for another range) and where each interval's text starts (plus where
    the last one ends), so a read for another range slices instead of rendering.
    """
    before, after = EMPTY_TEMPLATE
    records: list[dict[str, Any]] = []
    header_series: list[dict[str, Any]] = []
    pieces: list[str] = [DOCUMENT_HEAD]
    position = len(DOCUMENT_HEAD)
    for n, s in enumerate(series):
        head = ("," if n else "") + series_head(s.name)
        pieces.append(head)
        position += len(head)
        offsets: list[int] = []
        totals: list[int] = []
        restores: list[int] = []
        active: dict[str, dict[str, Any]] = {}
        for k, metrics in enumerate(s.intervals):
            start = metrics.start_of_interval
            if is_active(metrics):
                active[start] = _interval_record(metrics)
                piece = interval_json(metrics)
            else:
                piece = before + start + after
            if k:
                pieces.append(",")
                position += 1
            offsets.append(position)
            pieces.append(piece)
            position += len(piece)
            totals.append(metrics.deployment_failure_rate.total)
            restores.append(metrics.time_to_restore.count)
        offsets.append(position)
        pieces.append(SERIES_TAIL)
        position += len(SERIES_TAIL)
        records.append({"name": s.name, "intervals": active})
        header_series.append({"name": s.name, "totals": totals, "restores": restores, "offsets": offsets})
    pieces.append(DOCUMENT_TAIL)
    header = {
        "starts": [i.start_of_interval for i in grid.intervals],
        "empty": [before, after],
        "series": header_series,
    }
    return StoredView(records, header, "".join(pieces))


_EMPTY = empty_interval(date(1970, 1, 1))
# An empty interval, built once: its record (readers copy it with their start date; the nested
# values are shared and never mutated) and its JSON around its date.
EMPTY_INTERVAL: dict[str, Any] = _interval_record(_EMPTY)
EMPTY_TEMPLATE: tuple[str, str] = empty_interval_template(_EMPTY)


def _empty_interval(start: date) -> dict[str, Any]:
    return {**EMPTY_INTERVAL, "start": start.isoformat()}


@dataclasses.dataclass(frozen=True)
class SeriesView:
    """One series as a read answers it: every interval of the requested grid, oldest first."""

    name: str
    intervals: list[dict[str, Any]]

    @property
    def total(self) -> int:
        return sum(int(i["deployment_failure_rate"]["total"]) for i in self.intervals)


def _regrid(series: Sequence[Mapping[str, Any]], grid: IntervalGrid, split: Split) -> list[SeriesView]:
    result: list[SeriesView] = []
    starts = [i.start for i in grid.intervals]
    for stored in series:
        intervals = [stored["intervals"].get(s.isoformat()) or _empty_interval(s) for s in starts]
        view = SeriesView(stored["name"], intervals)
        if split is Split.NONE or any(_active(i) for i in intervals):
            result.append(view)
    result.sort(key=lambda s: (-s.total, s.name))
    return result


def tag_set_names(store: Ports, space_id: str) -> dict[str, str]:
    """Tenant tag set ids and names of the space."""
    return {e.id: e.name for e in store.list_catalogue(space_id, CatalogueKind.TENANT_TAG_SET)}


def is_current(state: Mapping[str, Any] | None, report: ReportDefinition, now: datetime | None = None) -> bool:
    """Whether a report's state holds views of this version of the report, in today's stored form, and
    (given ``now``) counts every figure it read: a figure dated after its recompute (a deployment whose
    tool's clock runs ahead) fell past the views' last interval, and is due once ``now`` reaches it
    (``due_at``)."""
    return (
        state is not None
        and int(state.get("report_version", 0)) == report.version
        and state.get("format") == VIEW_FORMAT
        and (now is None or not state.get("due_at") or format_instant(now) < str(state["due_at"]))
    )


@dataclasses.dataclass(frozen=True, slots=True)
class ViewRequest:
    """A read of one report view (split, granularity, tenant tag set) for a range at ``now``;
    ``current``: the report and its state, when the caller read them (``freshness.read_report``)."""

    space_id: str
    report_id: str
    split: Split
    time_range: TimeRange
    granularity: Granularity
    tenant_tag_set_id: str | None
    now: datetime
    current: tuple[ReportDefinition, Mapping[str, Any]] | None = None


def current_state(
    store: Ports, space_id: str, report_id: str, now: datetime
) -> tuple[ReportDefinition, Mapping[str, Any]]:
    """A report and its current state (views of this version, in today's form, counting every figure
    due by ``now``); a report never computed, or whose views are not current, is computed now."""
    report = reports.get_report(store, space_id, report_id)
    state: Mapping[str, Any] | None = store.metrics().report_state(space_id, report.number)
    if state is None or not is_current(state, report, now):
        state = recompute_report(store, space_id, report, now)
    return report, state


def view_of(
    store: Ports,
    space_id: str,
    state: Mapping[str, Any],
    split: Split,
    granularity: Granularity,
    tenant_tag_set_id: str | None,
    *,
    tag_sets: Callable[[], Mapping[str, str]] | None = None,
) -> ViewId:
    """The view a read of ``split`` and ``granularity`` (and tenant tag set) reads from a report's
    ``state``; a 400 for a ``TenantTagSet`` split without a tag set, or with one that neither the
    state nor the space knows. ``tag_sets``: the space's tag sets (default: read them), for a caller
    that reads them once for many views."""
    if split is Split.TENANT_TAG_SET and not tenant_tag_set_id:
        raise RequestInvalidError("tenantTagSetId is required when split is TenantTagSet", field="tenantTagSetId")
    if split is Split.TENANT_TAG_SET and tenant_tag_set_id not in state.get("tag_sets", {}):
        known = tag_sets() if tag_sets is not None else tag_set_names(store, space_id)
        if tenant_tag_set_id not in known:
            raise RequestInvalidError(f"tenant tag set '{tenant_tag_set_id}' does not exist", field="tenantTagSetId")
    return ViewId.of(split, granularity, tenant_tag_set_id)


def _view_state(store: Ports, request: ViewRequest) -> tuple[ReportDefinition, Mapping[str, Any], ViewId]:
    """(report, its current state, the view); a report never computed is computed now."""
    if request.current is None:
        report, state = current_state(store, request.space_id, request.report_id, request.now)
    else:
        report, state = request.current
    view = view_of(store, request.space_id, state, request.split, request.granularity, request.tenant_tag_set_id)
    return report, state, view


def _stable(
    store: Ports, space_id: str, report: ReportDefinition, state: Mapping[str, Any], read: Callable[[str], _T]
) -> tuple[_T, Mapping[str, Any]]:
    """``read`` of the state's generation; when it finds nothing and a concurrent recompute has
    flipped the state meanwhile (and so deleted that generation), ``read`` of the new one. With the
    state read from."""
    found = read(str(state["generation"]))
    if found:
        return found, state
    again = store.metrics().report_state(space_id, report.number)
    if again is None or again.get("generation") == state["generation"]:
        return found, state
    return read(str(again["generation"])), again


def stored_series(
    store: Ports, space_id: str, report: ReportDefinition, state: Mapping[str, Any], view: ViewId
) -> tuple[list[dict[str, Any]], Mapping[str, Any]]:
    """The stored series of a report view as numbers (their non-empty intervals), from the state's
    generation (1 Query), and the state they were read from: a newer one when a concurrent recompute
    flipped it meanwhile (``_stable``). Never mutated by readers: :func:`regrid` shares its intervals."""
    return _stable(
        store, space_id, report, state, lambda g: store.metrics().read_view(space_id, report.number, g, view)
    )


def regrid(
    report: ReportDefinition,
    series: Sequence[Mapping[str, Any]],
    *,
    split: Split,
    time_range: TimeRange,
    granularity: Granularity,
    now: datetime,
) -> list[SeriesView]:
    """Stored series (:func:`stored_series`) on the grid of ``time_range`` at ``now`` in the report's
    time zone: every interval, empty ones filled; series of a split with no activity left out."""
    grid = interval_grid(time_range, granularity, resolve_time_zone(report.time_zone), now)
    return _regrid(series, grid, split)


def read_metrics(
    store: Ports,
    space_id: str,
    report_id: str,
    *,
    split: Split,
    time_range: TimeRange,
    granularity: Granularity,
    tenant_tag_set_id: str | None,
    now: datetime,
    current: tuple[ReportDefinition, Mapping[str, Any]] | None = None,
) -> tuple[ReportDefinition, list[SeriesView]]:
    """The series of a report view for a range as numbers, from the latest complete generation."""
    request = ViewRequest(space_id, report_id, split, time_range, granularity, tenant_tag_set_id, now, current)
    report, state, view = _view_state(store, request)
    series, _ = stored_series(store, space_id, report, state, view)
    return report, regrid(report, series, split=split, time_range=time_range, granularity=granularity, now=now)


@dataclasses.dataclass(frozen=True, slots=True)
class RenderedMetrics:
    """A ``/metrics`` answer: its JSON text, or (when the caller accepts it) the stored gzip of it."""

    text: str | None = None
    gzip: bytes | None = None


def read_rendered_metrics(store: Ports, request: ViewRequest, *, accept_gzip: bool = False) -> RenderedMetrics:
    """A report view for a range as METRICS §4 JSON (3 GetItems and 1 Query; nothing rendered).

    The same series, intervals and order as :func:`read_metrics`. When the range is the stored
    grid (``LastYear`` on the day of the last recompute) the stored answer is the answer: its gzip
    as it is for a caller that accepts gzip, else its text; any other range is sliced from it.
    """
    space_id = request.space_id
    report, state, view = _view_state(store, request)
    found, _ = _stable(
        store, space_id, report, state, lambda g: store.metrics().read_rendered(space_id, report.number, g, view)
    )
    if found is None:
        return RenderedMetrics(text=metrics_json(()))
    header, packed = found
    grid = interval_grid(request.time_range, request.granularity, resolve_time_zone(report.time_zone), request.now)
    if header["starts"] == [i.start_of_interval for i in grid.intervals]:
        return RenderedMetrics(gzip=packed) if accept_gzip else RenderedMetrics(text=unpack_text(packed))
    series = slice_rendered(header, unpack_text(packed), grid, request.split)
    return RenderedMetrics(text=metrics_json(series))


def unpack_text(packed: bytes) -> str:
    """The text of a stored gzip."""
    return gzip.decompress(packed).decode("utf-8")


def slice_rendered(header: Mapping[str, Any], text: str, grid: IntervalGrid, split: Split) -> list[tuple[str, str]]:
    """(name, intervals' JSON) of every series of a stored view for ``grid`` (see :func:`stored_view`).

    Intervals the stored grid covers are sliced from ``text`` in runs; the others (a range that
    reaches past the last recompute of an unchanged report) are empty intervals from the template.
    """
    index = {start: n for n, start in enumerate(header["starts"])}
    starts = [i.start_of_interval for i in grid.intervals]
    positions = [index.get(start) for start in starts]
    inside = [p for p in positions if p is not None]
    before, after = header["empty"]
    chosen: list[tuple[int, str, str]] = []
    for stored in header["series"]:
        totals, restores, offsets = stored["totals"], stored["restores"], stored["offsets"]
        total = sum(totals[p] for p in inside)
        if split is not Split.NONE and not total and not any(restores[p] for p in inside):
            continue
        parts: list[str] = []
        first = last = -1
        for start, p in zip(starts, positions, strict=True):
            if p is not None and first >= 0 and p == last + 1:
                last = p
                continue
            if first >= 0:
                parts.append(_run(text, offsets, first, last))
                first = last = -1
            if p is None:
                parts.append(before + start + after)
            else:
                first = last = p
        if first >= 0:
            parts.append(_run(text, offsets, first, last))
        chosen.append((total, stored["name"], ",".join(parts)))
    chosen.sort(key=lambda c: (-c[0], c[1]))
    return [(name, intervals) for _, name, intervals in chosen]


def _run(text: str, offsets: Sequence[int], first: int, last: int) -> str:
    """Intervals ``first..last`` of a series (comma-separated, as stored)."""
    piece = text[offsets[first] : offsets[last + 1]]
    return piece[:-1] if piece.endswith(",") else piece


# --- recompute of one report ---------------------------------------------------------------
def snapshot(
    data: MetricsRepository,
    space_id: str,
    streams: dict[str, dict[str, Any]] | None = None,
    *,
    consistent: bool = False,
    only: Callable[[str, Mapping[str, Any]], bool] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]], str]:
    """The stream pointers (``streams`` when the caller just read them) and the complete figures they
    point at, and when the read began. ``consistent``: every read strongly consistent, for a caller
    that has just moved pointers itself (the recompute): an eventually consistent read may answer the
    previous pointer with the previous generation's items, whose count agrees.

    A pointer counts its generation's items, and a generation is deleted only after its pointer moved:
    when every stream's count was read, the read was complete. The first read is eventually consistent
    (half the capacity) and almost always complete. When a count disagrees, the read saw a pointer
    before its items, or items a concurrent recompute deleted after moving the pointer: the pointers
    and the figures are read again, strongly consistent, at most ``SNAPSHOT_ATTEMPTS`` times (each
    agrees unless a recompute moved a pointer in between). Past them it raises
    ``ServiceUnavailableError`` rather than answer half a result: the recompute counts the report as
    failed and keeps its marks; a reader gets a 503 to retry. A pointer written before pointers
    counted their items (no ``items``) is taken as complete.

    ``only``: the figures of the streams it accepts only (every pointer is still answered), read stream by
    stream when they are at most ``FEW_STREAMS`` (an answer about one project of a large space reads its
    own chunks, not the space's), else in one read of the space's.
    """
    read_at = wall_stamp()
    if streams is None:
        streams = data.streams(space_id, consistent=consistent)

    def figures_of(pointers: dict[str, dict[str, Any]], strongly: bool) -> tuple[dict[str, Any], dict[str, int]]:
        wanted = pointers if only is None else {k: r for k, r in pointers.items() if only(k, r)}
        few = only is not None and len(wanted) <= FEW_STREAMS
        return data.space_figures_counted(space_id, wanted, consistent=strongly, per_stream=few)

    figures, counted = figures_of(streams, consistent)
    for _ in range(SNAPSHOT_ATTEMPTS):
        if _complete(streams, counted):
            return streams, figures, read_at
        streams = data.streams(space_id, consistent=True)
        figures, counted = figures_of(streams, True)
    if _complete(streams, counted):
        return streams, figures, read_at
    logger.warning("figures kept moving while read", extra={"space_id": space_id, "attempts": SNAPSHOT_ATTEMPTS})
    raise ServiceUnavailableError("the figures are being recomputed right now; retry the request")


def _complete(streams: Mapping[str, Mapping[str, Any]], counted: Mapping[str, int]) -> bool:
    """Whether every pointer's item count was read for the streams read (a pointer without one cannot be
    checked)."""
    return all(r.get("items", counted[key]) == counted[key] for key, r in streams.items() if key in counted)


def recompute_report(
    store: Ports,
    space_id: str,
    report: ReportDefinition,
    now: datetime,
    *,
    read: tuple[Mapping[str, Mapping[str, Any]], Mapping[str, list[dict[str, Any]]], str] | None = None,
    failures: Sequence[FailureEvent] | None = None,
) -> dict[str, Any]:
    """Compute and store a new generation of a report's views from ``read`` (a :func:`snapshot`;
    taken now when not given), then flip its state to it; the state now current.

    The flip goes only forward (``MetricsStore.write_report_aggregates``): when a recompute from a
    later read flipped it first, that one's state is returned and this generation dropped.
    """
    metrics = store.metrics()
    streams, records, read_at = snapshot(metrics, space_id) if read is None else read
    included = report_streams(report, streams)
    stream_figures = {key: [figures_of(r) for r in records.get(key, ())] for key in included}
    failure_events = list(failures) if failures is not None else metrics.space_failures(space_id)
    tag_sets = tag_set_names(store, space_id)
    views = compute_views(report, included, stream_figures, failure_events, tag_sets, now)
    generation = new_id(now)
    state = {
        "report_id": report.id,
        "report_version": report.version,
        "computed_at": format_instant(now),
        "read_at": read_at,
        "streams": len(included),
        "deployments": sum(len(figures) for figures in stream_figures.values()),
        "tag_sets": dict(tag_sets),
        "format": VIEW_FORMAT,
    }
    due = _due_at(stream_figures, report_failures(included, failure_events), now)
    if due is not None:
        state["due_at"] = due
    if metrics.write_report_aggregates(space_id, report.number, generation, views, state):
        return {**state, "generation": generation}
    current = metrics.report_state(space_id, report.number)
    return {**state, "generation": generation} if current is None else current


def report_deployments(
    report: ReportDefinition,
    streams: Mapping[str, Mapping[str, Any]],
    figures: Mapping[str, list[dict[str, Any]]],
    now: datetime,
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The report's streams (of ``streams`` and their ``figures``, a :func:`snapshot`) with the
    figures of their deployments completed in the last 12 whole months and this month (report's
    zone) up to ``now``, newest stream activity first: a deployment dated ahead of the clock (a deploy
    tool's clock running fast) is listed once its time comes, as the report's views count it."""
    included = report_streams(report, streams)
    zone = resolve_time_zone(report.time_zone)
    local = now.astimezone(zone)
    months_back = local.year * 12 + local.month - 1 - 12
    first = datetime(months_back // 12, months_back % 12 + 1, 1, tzinfo=zone)
    since, until = format_instant(first), format_instant(now)
    result = []
    for key in included:
        rows = sorted(
            (r for r in figures.get(key, []) if since <= r["completed_at"] <= until),
            key=lambda r: (r["completed_at"], r["deployment_id"]),
        )
        if rows:
            result.append((dict(streams[key]), rows))
    result.sort(key=lambda item: item[1][-1]["completed_at"], reverse=True)
    return result
