"""In-memory fakes of the ports logic talks to (``dora_insights.logic.ports``).

``FakePorts`` is a whole ``Ports``: spaces, the catalogue and dirty marks on itself, and one
shared in-memory repository per accessor, all over plain dicts. The fakes keep the contracts the
use cases rely on (idempotent creates with 409 on other content, conditional attribution writes on
the attempt count read, forward-only branch marks, dirty marks, newest-first pages with a cursor)
and nothing of DynamoDB: no boto3, no moto, no keys. What no unit test needs raises
``NotImplementedError``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from dora_insights.domain.alert_destinations import Delivery, DeliveryMarks, Destination, Transition
from dora_insights.domain.changes import (
    BranchMark,
    Commit,
    InMemoryChanges,
    PullRequest,
    commit_change_id,
    pull_request_change_id,
)
from dora_insights.domain.corrections import CorrectionRecord, changes_release_first_seen
from dora_insights.domain.failures import FailureOutcome
from dora_insights.domain.figures import FIGURES_FORMAT
from dora_insights.domain.health import FailureNote, SpaceHealthRecord, StreamHealthRecord
from dora_insights.domain.model import Attribution, CatalogueEntry, CatalogueKind, Deployment, FailureEvent
from dora_insights.domain.orlo import OrloPackage, OrloRelease, ReleaseScope
from dora_insights.domain.queries import DeploymentListQuery, EventPage, FailureListQuery, ListScope
from dora_insights.domain.records import (
    ApiKeyRecord,
    NewDeployment,
    SpaceRecord,
    SpaceSettings,
    VersionSearch,
    WriteOutcome,
)
from dora_insights.domain.reports import ReportDefinition
from dora_insights.domain.times import format_instant, parse_stored, wall_stamp
from dora_insights.domain.views import StoredView, ViewId
from dora_insights.errors import DoraError, ResourceConflictError, ResourceNotFoundError
from dora_insights.logic.ports import (
    FinalWrite,
    PendingWrite,
    ReplacementOutbox,
    Rewind,
    ShippedChanges,
    StoredOrloRelease,
    StoredOrloToken,
)

SPACE = "Spaces-1"


def _json(value: Any) -> Any:
    """A value as it comes back from storage (JSON round trip: no shared mutable state)."""
    return json.loads(json.dumps(value))


def _within(value: str, lowest: datetime | None, highest: datetime | None) -> bool:
    """Inclusive bounds, compared as stored instants (fixed width, so as text)."""
    return (lowest is None or value >= format_instant(lowest)) and (highest is None or value <= format_instant(highest))


def _page(rows: list[Any], key: Any, limit: int, cursor: str | None) -> tuple[list[Any], str | None]:
    """Rows newest first by ``key`` (text), from after ``cursor``, at most ``limit``, and the next cursor."""
    rows = sorted(rows, key=key, reverse=True)
    start = 0
    if cursor is not None:
        start = next(n for n, row in enumerate(rows) if key(row) == cursor) + 1
    page = rows[start : start + limit]
    more = start + limit < len(rows)
    return page, key(page[-1]) if more and page else None


# ---------------------------------------------------------------------------------------------
# Deployments and failures


class FakeDeployments:
    """``DeploymentRepository`` over a dict."""

    def __init__(self, ports: FakePorts) -> None:
        self.ports = ports
        self.items: dict[tuple[str, str], Deployment] = {}
        self.idempotency: dict[tuple[str, str, str], str] = {}
        self.listed: list[dict[str, Any]] = []  # the arguments of every list_page call
        self.records: dict[tuple[str, str], list[CorrectionRecord]] = {}  # correction records by target
        self.bulk_writes: list[int] = []  # the number of entries of every write_many call

    def get(self, space_id: str, deployment_id: str, *, consistent: bool = False) -> Deployment | None:
        return self.items.get((space_id, deployment_id))

    def _same(self, existing: Deployment, deployment: Deployment) -> WriteOutcome:
        if not deployment.repeats(existing.body_hash):
            raise ResourceConflictError("this id was already used with different values", field="id")
        return WriteOutcome(existing, created=False)

    def write(self, entry: NewDeployment, *, now: str) -> WriteOutcome:
        deployment, idempotency, outbox_due = entry.deployment, entry.idempotency, entry.outbox_due
        space_id = deployment.space_id
        existing = self.items.get((space_id, deployment.id))
        if existing is not None:
            return self._same(existing, deployment)
        if idempotency is not None:
            target = self.idempotency.get((space_id, *idempotency))
            if target is not None:
                return self._same(self.items[(space_id, target)], deployment)
            self.idempotency[(space_id, *idempotency)] = deployment.id
        self.items[(space_id, deployment.id)] = deployment
        if outbox_due is not None:
            self.ports.attribution_state.outbox[(space_id, deployment.id)] = {
                "deployment_id": deployment.id,
                "created_at": now,
                "due": outbox_due,
                "superseded": None,
            }
        self.ports.dirty[(space_id, deployment.stream_key)] = now
        return WriteOutcome(deployment, created=True)

    def write_many(self, entries: Sequence[NewDeployment], *, now: str) -> list[WriteOutcome | DoraError]:
        self.bulk_writes.append(len(entries))
        results: list[WriteOutcome | DoraError] = []
        for entry in entries:
            try:
                results.append(self.write(entry, now=now))
            except DoraError as error:
                results.append(error)
        return results

    def idempotency_target(self, space_id: str, dialect: str, client_id: str) -> str | None:
        return self.idempotency.get((space_id, dialect, client_id))

    def replace(
        self,
        old: Deployment,
        new: Deployment,
        *,
        idempotency: tuple[str, str],
        now: str,
        also: Sequence[Mapping[str, Any]] = (),
    ) -> WriteOutcome:
        raise NotImplementedError("replacing deployments has no in-memory fake")

    def list_page(self, space_id: str, query: DeploymentListQuery) -> tuple[list[Deployment], str | None]:
        filters = query.filters
        self.listed.append(
            {"project_id": filters.project, "environment_id": filters.environment, "tenant_id": filters.tenant}
        )
        rows = [
            d
            for (space, _), d in self.items.items()
            if space == space_id
            and (not filters.project or d.project_id == filters.project)
            and (not filters.environment or d.environment_id == filters.environment)
            and (not filters.tenant or d.tenant_id == filters.tenant)
            and (not filters.state or d.state == filters.state)
            and all(tag in d.tags for tag in filters.tags)
            and _within(d.finished_at, filters.finished_from, filters.finished_to)
        ]
        return _page(rows, lambda d: f"{d.finished_at}#{d.id}", query.limit, query.cursor)

    # --- corrections (issue 16) --------------------------------------------------------------
    def find_by_version(self, space_id: str, *, project_id: str, environment_id: str, version: str) -> VersionSearch:
        rows = [
            d
            for (space, _), d in self.items.items()
            if space == space_id
            and d.project_id == project_id
            and d.environment_id == environment_id
            and d.version == version
        ]
        return VersionSearch(max(rows, key=lambda d: (d.finished_at, d.id), default=None), complete=True)

    def _as_read(self, old: Deployment) -> bool:
        current = self.items.get((old.space_id, old.id))
        if current is None or current.revision != old.revision:
            return False
        attempts = None if current.attribution is None else current.attribution.attempts
        return attempts == (None if old.attribution is None else old.attribution.attempts)

    def _apply(self, record: CorrectionRecord, now: str, stream: str, also: Sequence[Mapping[str, Any]]) -> bool:
        """The rest of a correction's transaction; False (nothing applied) when a condition fails."""
        attribution = self.ports.attribution(record.space_id)
        if not all(attribution.fake_condition(op) for op in also):
            return False
        for op in also:
            attribution.fake_apply(op)
        self.records.setdefault((record.space_id, record.target_id), []).append(record)
        self.ports.dirty[(record.space_id, stream)] = now
        return True

    def correct(
        self,
        old: Deployment,
        new: Deployment,
        *,
        record: CorrectionRecord,
        now: str,
        also: Sequence[Mapping[str, Any]] = (),
    ) -> bool:
        if not self._as_read(old) or not self._apply(record, now, new.stream_key, also):
            return False
        self.items[(new.space_id, new.id)] = new
        self._mark_release_streams(old, new, now)
        return True

    def _mark_release_streams(self, old: Deployment, new: Deployment | None, now: str) -> None:
        """The project's other streams, when the release first-seen times they read may move."""
        if changes_release_first_seen(old, new):
            projects = {old.project_id, old.project_id if new is None else new.project_id}
            for (space, _), d in self.items.items():
                if space == old.space_id and d.project_id in projects:
                    self.ports.dirty[(space, d.stream_key)] = now

    def delete(
        self, old: Deployment, *, record: CorrectionRecord, now: str, also: Sequence[Mapping[str, Any]] = ()
    ) -> bool:
        if not self._as_read(old) or not self._apply(record, now, old.stream_key, also):
            return False
        del self.items[(old.space_id, old.id)]
        self._mark_release_streams(old, None, now)
        return True

    def corrections(
        self, space_id: str, deployment_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[CorrectionRecord], str | None]:
        rows = self.records.get((space_id, deployment_id), [])
        return _page(rows, lambda r: f"{r.at}#{r.id}", limit, cursor)

    def removed_between(self, space_id: str, deployment_id: str, after: str, until: str) -> bool:
        rows = self.records.get((space_id, deployment_id), [])
        return any(r.action == "delete" and after <= r.at <= until for r in rows)

    def in_stream(self, space_id: str, stream: str) -> list[Deployment]:
        """A stream's deployments in stream order (METRICS §1: finish, start, id)."""
        rows = [d for (space, _), d in self.items.items() if space == space_id and d.stream_key == stream]
        return sorted(rows, key=lambda d: (d.finished_at, d.started_at or d.finished_at, d.id))

    def set_attribution(self, deployment: Deployment, attribution: Attribution, figures: Any = None) -> None:
        update: dict[str, Any] = {"attribution": attribution}
        if figures is not None:
            update["figures"] = figures
        self.items[(deployment.space_id, deployment.id)] = self.items[(deployment.space_id, deployment.id)].model_copy(
            update=update
        )


class FakeFailures:
    """``FailureRepository`` over a dict."""

    def __init__(self, ports: FakePorts) -> None:
        self.ports = ports
        self.items: dict[tuple[str, str], FailureEvent] = {}

    def _mark_streams(self, failure: FailureEvent, now: str) -> None:
        """Dirty marks of the known streams of the failure's projects in its environment."""
        for space, stream in list(self.ports.metrics_repository.registrations_):
            parts = stream.split("/")
            if space == failure.space_id and parts[0] in failure.project_ids and parts[2] == failure.environment_id:
                self.ports.dirty[(space, stream)] = now

    def write(self, failure: FailureEvent, *, now: str, also_stream: str | None = None) -> FailureOutcome:
        existing = self.items.get((failure.space_id, failure.id))
        self._mark_streams(failure, now)
        if also_stream is not None:
            self.ports.dirty[(failure.space_id, also_stream)] = now
        if existing is not None:
            if not failure.repeats(existing.body_hash):
                raise ResourceConflictError("this id was already used with different values", field="id")
            return FailureOutcome(existing, created=False)
        self.items[(failure.space_id, failure.id)] = failure
        return FailureOutcome(failure, created=True)

    def get(self, space_id: str, failure_id: str, *, consistent: bool = False) -> FailureEvent | None:
        return self.items.get((space_id, failure_id))

    def delete(
        self, failure: FailureEvent, *, record: CorrectionRecord, now: str, also_stream: str | None = None
    ) -> bool:
        if self.items.pop((failure.space_id, failure.id), None) is None:
            return False
        self._mark_streams(failure, now)
        if also_stream is not None:
            self.ports.dirty[(failure.space_id, also_stream)] = now
        self.ports.deployment_repository.records.setdefault((record.space_id, record.target_id), []).append(record)
        return True

    def list_page(self, space_id: str, query: FailureListQuery) -> tuple[list[FailureEvent], str | None]:
        filters = query.filters
        rows = [
            f
            for (space, _), f in self.items.items()
            if space == space_id
            and (not filters.project or filters.project in f.project_ids)
            and (not filters.environment or f.environment_id == filters.environment)
            and _within(f.started_at, filters.started_from, filters.started_to)
        ]
        return _page(rows, lambda f: f"{f.started_at}#{f.id}", query.limit, query.cursor)


class FakeEventSearch:
    """``EventSearchRepository`` over the deployment and failure fakes: filters, time order, a cursor
    naming the scope and the last sort key returned; no read bound. ``scopes`` records what each
    deployments page read (``("stream", key)``, ``("project", id)`` or ``("space", None)``)."""

    def __init__(self, ports: FakePorts) -> None:
        self.ports = ports
        self.scopes: list[tuple[str, str | None]] = []

    def project_streams(self, space_id: str, project_id: str) -> list[str]:
        items = self.ports.deployment_repository.items
        return sorted(
            {d.stream_key for (space, _), d in items.items() if space == space_id and d.project_id == project_id}
        )

    @staticmethod
    def _page(rows: list[Any], key: Any, ascending: bool, limit: int, scope: Any, after: str | None) -> Any:
        rows = sorted(rows, key=key, reverse=not ascending)
        if after is not None:
            rows = [r for r in rows if (key(r) > after if ascending else key(r) < after)]
        page = rows[:limit]
        more = len(rows) > limit
        return page, json.dumps([*scope, key(page[-1])]) if more else None

    def deployments_page(
        self, space_id: str, *, scope: ListScope, page: EventPage, keep: Callable[[Deployment], bool]
    ) -> tuple[list[Deployment], str | None]:
        stream, project_id = scope.stream, scope.project_id
        read: tuple[str, str | None] = (
            ("stream", stream) if stream else ("project", project_id) if project_id else ("space", None)
        )
        after = None
        if page.cursor is not None:
            kind, value, after = json.loads(page.cursor)
            read = (kind, value)
        self.scopes.append(read)
        rows = [
            d
            for (space, _), d in self.ports.deployment_repository.items.items()
            if space == space_id
            and (read[0] != "stream" or d.stream_key == read[1])
            and (read[0] != "project" or d.project_id == read[1])
            and _within(d.finished_at, page.lowest, page.highest)
            and keep(d)
        ]
        return self._page(rows, lambda d: f"{d.finished_at}#{d.id}", page.ascending, page.limit, read, after)  # type: ignore[no-any-return]

    def failures_page(
        self, space_id: str, *, page: EventPage, keep: Callable[[FailureEvent], bool]
    ) -> tuple[list[FailureEvent], str | None]:
        after = json.loads(page.cursor)[2] if page.cursor is not None else None
        rows = [
            f
            for (space, _), f in self.ports.failure_repository.items.items()
            if space == space_id and _within(f.started_at, page.lowest, page.highest) and keep(f)
        ]
        scope = ("failures", None)
        return self._page(rows, lambda f: f"{f.started_at}#{f.id}", page.ascending, page.limit, scope, after)  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
# Metrics, health, reports


class FakeMetrics:
    """``MetricsRepository`` over dicts; reads the deployments and failures of the other fakes."""

    def __init__(self, ports: FakePorts) -> None:
        self.ports = ports
        self.registrations_: dict[tuple[str, str], dict[str, Any]] = {}
        self.figures: dict[tuple[str, str, str], dict[str, list[dict[str, Any]]]] = {}
        self.states: dict[tuple[str, int], dict[str, Any]] = {}
        self.views: dict[tuple[str, int, str], dict[ViewId, StoredView]] = {}

    def stream_deployments(self, space_id: str, stream: str) -> list[Deployment]:
        return self.ports.deployment_repository.in_stream(space_id, stream)

    def latest_stream_deployment(self, space_id: str, stream: str) -> Deployment | None:
        rows = self.stream_deployments(space_id, stream)
        return max(rows, key=lambda d: (d.finished_at, d.id)) if rows else None

    def project_deployments(self, space_id: str, project_id: str) -> list[Deployment]:
        rows = [
            d
            for (space, _), d in self.ports.deployment_repository.items.items()
            if space == space_id and d.project_id == project_id
        ]
        return sorted(rows, key=lambda d: (d.finished_at, d.id))

    def clear_dirty(self, space_id: str, stream: str, dirty_at: str, mark_id: str | None) -> None:
        if self.ports.dirty.is_mark((space_id, stream), dirty_at, mark_id):
            del self.ports.dirty[(space_id, stream)]
            self.ports.caught_up.pop((space_id, stream), None)

    def mark_caught_up(self, space_id: str, stream: str, dirty_at: str, mark_id: str | None) -> bool:
        if not self.ports.dirty.is_mark((space_id, stream), dirty_at, mark_id):
            return False
        self.ports.caught_up[(space_id, stream)] = (dirty_at, mark_id, wall_stamp())
        return True

    def registrations(
        self, space_id: str, streams: Iterable[str], *, consistent: bool = False
    ) -> dict[str, dict[str, Any]]:
        return {s: _json(self.registrations_[(space_id, s)]) for s in streams if (space_id, s) in self.registrations_}

    def space_failures(self, space_id: str, *, started: tuple[datetime, datetime] | None = None) -> list[FailureEvent]:
        rows = [f for (space, _), f in self.ports.failure_repository.items.items() if space == space_id]
        if started is not None:
            rows = [f for f in rows if started[0] <= parse_stored(f.started_at) < started[1]]
        return sorted(rows, key=lambda f: (f.started_at, f.id))

    def streams(
        self, space_id: str, *, consistent: bool = False, project_id: str | None = None
    ) -> dict[str, dict[str, Any]]:
        return {
            stream: _json(r)
            for (space, stream), r in sorted(self.registrations_.items())
            if space == space_id and (project_id is None or stream.startswith(f"{project_id}/"))
        }

    def write_stream_figures(
        self,
        space_id: str,
        stream: str,
        registration: dict[str, Any],
        records_by_month: dict[str, list[dict[str, Any]]],
        generation: str,
        previous: str | None,
    ) -> bool:
        if self.registrations_.get((space_id, stream), {}).get("generation") != previous:
            return False
        self.figures[(space_id, stream, generation)] = _json(records_by_month)
        self.registrations_[(space_id, stream)] = _json(
            {**registration, "stream": stream, "generation": generation, "items": len(records_by_month)}
        )
        if previous and previous != generation:
            self.figures.pop((space_id, stream, previous), None)
        return True

    def _records(self, space_id: str, stream: str, generation: str | None) -> list[dict[str, Any]]:
        months = self.figures.get((space_id, stream, str(generation)), {})
        return [dict(r) for month in sorted(months) for r in months[month]]

    def deployment_figures(
        self, space_id: str, stream: str, deployment_id: str, month: str, *, generation: str | None = None
    ) -> dict[str, Any] | None:
        if generation is None:
            registration = self.registrations_.get((space_id, stream))
            if registration is None:
                return None
            generation = registration["generation"]
        months = self.figures.get((space_id, stream, generation), {})
        return next((dict(r) for r in months.get(month, []) if r.get("deployment_id") == deployment_id), None)

    def stream_figures(
        self, space_id: str, stream: str, generation: str, deployment_ids: Collection[str], months: tuple[str, str]
    ) -> dict[str, dict[str, Any]]:
        stored = self.figures.get((space_id, stream, generation), {})
        return {
            str(r["deployment_id"]): dict(r)
            for month, records in stored.items()
            if months[0] <= month <= months[1]
            for r in records
            if r.get("deployment_id") in deployment_ids
        }

    def space_figures(
        self, space_id: str, streams: Mapping[str, Mapping[str, Any]] | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        chosen = self.streams(space_id) if streams is None else streams
        return {s: self._records(space_id, s, r.get("generation")) for s, r in chosen.items()}

    def space_figures_counted(
        self,
        space_id: str,
        streams: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        consistent: bool = False,
        per_stream: bool = False,
    ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
        chosen = self.streams(space_id) if streams is None else streams
        figures = self.space_figures(space_id, chosen)
        return figures, {s: int(r.get("items", 0)) for s, r in chosen.items()}

    def report_state(self, space_id: str, number: int) -> dict[str, Any] | None:
        state = self.states.get((space_id, number))
        return None if state is None else _json(state)

    def write_report_aggregates(
        self, space_id: str, number: int, generation: str, views: Mapping[ViewId, StoredView], state: dict[str, Any]
    ) -> bool:
        replaced = self.states.get((space_id, number))
        if replaced is not None and str(replaced.get("read_at", "")) > state["read_at"]:
            return False
        self.views[(space_id, number, generation)] = dict(views)
        self.states[(space_id, number)] = _json({**state, "generation": generation})
        if replaced is not None and replaced["generation"] != generation:
            self.views.pop((space_id, number, replaced["generation"]), None)
        return True

    def read_view(self, space_id: str, number: int, generation: str, view: ViewId) -> list[dict[str, Any]]:
        stored = self.views.get((space_id, number, generation), {}).get(view)
        return [] if stored is None else _json(stored.records)

    def read_rendered(
        self, space_id: str, number: int, generation: str, view: ViewId
    ) -> tuple[dict[str, Any], bytes] | None:
        stored = self.views.get((space_id, number, generation), {}).get(view)
        if stored is None:
            return None
        return _json(stored.header), gzip.compress(stored.text.encode("utf-8"), mtime=0)


class FakeHealth:
    """``HealthRepository`` over dicts (the quarantine move happens with the count that reaches the limit)."""

    def __init__(self, ports: FakePorts) -> None:
        self.ports = ports
        self.streams: dict[tuple[str, str], StreamHealthRecord] = {}
        self.failed_runs: dict[tuple[str, str], str] = {}  # the run each stream's last failure was counted in
        self.spaces: dict[str, SpaceHealthRecord] = {}
        self.cursor: str | None = None

    def space_health(self, space_id: str) -> tuple[SpaceHealthRecord | None, dict[str, StreamHealthRecord]]:
        return self.spaces.get(space_id), {s: r for (space, s), r in self.streams.items() if space == space_id}

    def stream_health(self, space_id: str, stream: str) -> StreamHealthRecord | None:
        return self.streams.get((space_id, stream))

    def record_stream_failure(
        self,
        space_id: str,
        stream: str,
        *,
        dirty_at: str,
        at: str,
        run: str,
        note: FailureNote,
        quarantine_after: int,
    ) -> StreamHealthRecord:
        current = self.streams.get((space_id, stream))
        if current is not None and self.failed_runs.get((space_id, stream)) == run:
            return current
        self.failed_runs[(space_id, stream)] = run
        record = StreamHealthRecord(
            stream=stream,
            failures=(current.failures if current else 0) + 1,
            first_failure_at=current.first_failure_at if current else at,
            last_failure_at=at,
            dirty_at=dirty_at,
            error_type=note.error_type,
            error_message=note.message,
            quarantined_at=current.quarantined_at if current else None,
        )
        if record.quarantined_at is None and record.failures >= quarantine_after:
            record = replace(record, quarantined_at=at)
        self.streams[(space_id, stream)] = record
        return record

    def clear_stream(self, space_id: str, stream: str) -> None:
        self.streams.pop((space_id, stream), None)
        self.failed_runs.pop((space_id, stream), None)

    def record_space_visit(self, space_id: str, at: str, *, failure: tuple[str, FailureNote] | None) -> None:
        current = self.spaces.get(space_id) or SpaceHealthRecord()
        if failure is None:
            self.spaces[space_id] = replace(current, last_success_at=at)
        else:
            stage, note = failure
            self.spaces[space_id] = replace(
                current, last_failure_at=at, stage=stage, error_type=note.error_type, error_message=note.message
            )

    def rotation_cursor(self) -> str | None:
        return self.cursor

    def save_rotation_cursor(self, after: str, at: str) -> None:
        self.cursor = after

    def catalogue_names(self, space_id: str, ids: Iterable[str]) -> dict[str, str]:
        wanted = set(ids)
        return {
            e.id: e.name for (space, _), e in self.ports.catalogue_by_id.items() if space == space_id and e.id in wanted
        }


class FakeReports:
    """``ReportRepository`` over a dict."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, int], ReportDefinition] = {}

    def create(self, report: ReportDefinition) -> None:
        self.items[(report.space_id, report.number)] = report

    def get(self, space_id: str, number: int) -> ReportDefinition | None:
        return self.items.get((space_id, number))

    def list_all(self, space_id: str, *, consistent: bool = False) -> list[ReportDefinition]:
        return [r for (space, _), r in sorted(self.items.items()) if space == space_id]

    def replace(self, report: ReportDefinition, *, expected_version: int) -> None:
        current = self.items.get((report.space_id, report.number))
        if current is None or current.version != expected_version:
            raise ResourceConflictError(f"report '{report.id}' was changed by someone else", field="Version")
        self.items[(report.space_id, report.number)] = report

    def delete(self, space_id: str, number: int, report_id: str) -> None:
        if self.items.pop((space_id, number), None) is None:
            raise ResourceNotFoundError(f"report '{report_id}' not found")


@dataclass(frozen=True)
class _FirstPage:
    """``ShippedChanges``: the one page the fake keeps (on the deployment)."""

    pull_requests: list[dict[str, Any]]
    commits: list[str]
    commits_repository: str | None


class FakeOrlo:
    """``OrloRepository``: no unit test needs Orlo storage."""

    def get(self, space_id: str, release_id: str) -> StoredOrloRelease | None:
        raise NotImplementedError

    def batch_exists(self, space_id: str, release_ids: Iterable[str]) -> set[str]:
        raise NotImplementedError

    def package_owners(self, space_id: str, package_ids: Iterable[str]) -> dict[str, str]:
        raise NotImplementedError

    def package_owner(self, space_id: str, package_id: str) -> str | None:
        raise NotImplementedError

    def claim_packages(self, space_id: str, releases: Sequence[OrloRelease], *, claim: str | None = None) -> str | None:
        raise NotImplementedError

    def withdraw_claims(self, space_id: str, releases: Sequence[OrloRelease], claim: str) -> None:
        raise NotImplementedError

    def unclaimed_checks(self, space_id: str, package: OrloPackage) -> list[dict[str, Any]]:
        raise NotImplementedError

    def create(self, space_id: str, release: OrloRelease) -> bool:
        raise NotImplementedError

    def replace(
        self, space_id: str, release: OrloRelease, *, expected_version: int, new_packages: Sequence[OrloPackage] = ()
    ) -> int:
        raise NotImplementedError

    def releases(self, space_id: str, scope: ReleaseScope | None = None) -> list[OrloRelease]:
        raise NotImplementedError

    def releases_in_order(
        self, space_id: str, scope: ReleaseScope, *, ascending: bool = False, page_size: int | None = None
    ) -> Iterable[OrloRelease]:
        raise NotImplementedError

    def add_result(self, space_id: str, package_id: str, content: str, at: datetime, result_id: str) -> None:
        raise NotImplementedError

    def put_token(self, space_id: str, token_hash: str, key_hash: str, expires_at: int) -> None:
        raise NotImplementedError

    def get_token(self, space_id: str, token_hash: str) -> StoredOrloToken | None:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# Attribution, the ledger, code data, the retry queue


@dataclass
class StreamLedgerState:
    """What one stream shipped: change id -> deployment id, (repository, branch) -> (position, deployment id)."""

    changes: dict[str, str] = field(default_factory=dict)
    marks: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)


class FakeLedger:
    """``StreamLedger`` for one attempt of one deployment (its own entries are not "already shipped");
    rewound (``earlier``: the stream's deployments before it, newest first), a branch's position is the
    one the latest of them recorded in its attribution's marks."""

    def __init__(
        self, state: StreamLedgerState, deployment_id: str, earlier: Sequence[Deployment] | None = None
    ) -> None:
        self.state, self.deployment_id = state, deployment_id
        self.earlier = earlier

    def deployed_among(self, change_ids: Iterable[str]) -> set[str]:
        return {c for c in change_ids if c in self.state.changes and self.state.changes[c] != self.deployment_id}

    def shipped_position(self, repository: str, branch: str) -> int | None:
        if self.earlier is not None:
            for deployment in self.earlier:
                final = deployment.attribution is not None and deployment.attribution.state in ("Resolved", "GaveUp")
                for recorded in deployment.attribution.marks if final and deployment.attribution else []:
                    if (recorded["repository"], recorded["branch"]) == (repository, branch):
                        return int(recorded["position"])
            return None
        mark = self.state.marks.get((repository, branch))
        return None if mark is None else mark[0]


@dataclass
class AttributionState:
    """Every space's outbox items and pending-index entries."""

    outbox: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    awaiting: set[tuple[str, str, str, str]] = field(default_factory=set)  # (space, kind, value, deployment)


class FakeAttribution:
    """``AttributionRepository`` of one space over the shared state (no pages: everything on the first)."""

    def __init__(self, ports: FakePorts, space_id: str) -> None:
        self.ports, self.space_id = ports, space_id
        self.state = ports.attribution_state

    def awaiting_keys(
        self, deployment_id: str, sha_prefixes: Iterable[str], repository: str | None
    ) -> list[dict[str, str]]:
        found = [{"kind": "sha", "value": p, "deployment_id": deployment_id} for p in sorted(set(sha_prefixes))]
        if repository:
            found.append({"kind": "repository", "value": repository, "deployment_id": deployment_id})
        return found

    def _entry(self, key: Mapping[str, str]) -> tuple[str, str, str, str]:
        return (self.space_id, key["kind"], key["value"], key["deployment_id"])

    def outbox(self, deployment_id: str) -> dict[str, Any] | None:
        item = self.state.outbox.get((self.space_id, deployment_id))
        return None if item is None else dict(item)

    def drop_outbox(self, deployment_id: str) -> None:
        self.state.outbox.pop((self.space_id, deployment_id), None)

    def clean(self, deployment_id: str, superseded: Mapping[str, Any]) -> None:
        for key in superseded.get("awaiting") or []:
            self.state.awaiting.discard(self._entry(key))
        raw = superseded.get("attribution")
        if raw is None or raw.get("state") not in ("Resolved", "GaveUp"):
            return
        shipped = self.ports.ledger_state(self.space_id, str(superseded["stream"]))
        old = Attribution.model_validate(raw)
        ids = [pull_request_change_id(str(pr["repository"]), int(pr["number"])) for pr in old.pull_requests]
        ids += [commit_change_id(old.commits_repository, sha) for sha in old.commits if old.commits_repository]
        for change_id in ids:
            if shipped.changes.get(change_id) == deployment_id:
                del shipped.changes[change_id]
        for where, (_, owner) in list(shipped.marks.items()):
            if owner == deployment_id:
                del shipped.marks[where]  # the fake keeps no previous position: the mark goes

    def previous_success(
        self,
        deployment: Deployment,
        *,
        consistent: bool = False,
        earlier: Deployment | None = None,
        recent: bool = False,
    ) -> Deployment | None:
        """Read as a consistent store answers: ``earlier`` and what was stored a moment ago are among the
        stream's deployments."""

        def order(d: Deployment) -> tuple[str, str, str]:
            return (d.finished_at, d.started_at or d.finished_at, d.id)

        stream = self.ports.deployment_repository.in_stream(self.space_id, deployment.stream_key)
        before = [d for d in stream if order(d) <= order(deployment) and d.id != deployment.id and d.is_successful]
        return before[-1] if before else None

    def next_success(
        self, deployment: Deployment, *, consistent: bool = False, recent: bool = False
    ) -> Deployment | None:
        def order(d: Deployment) -> tuple[str, str, str]:
            return (d.finished_at, d.started_at or d.finished_at, d.id)

        stream = self.ports.deployment_repository.in_stream(self.space_id, deployment.stream_key)
        later = [d for d in stream if order(d) >= order(deployment) and d.id != deployment.id and d.is_successful]
        return later[0] if later else None

    def superseded(
        self, old: Deployment, awaiting: Sequence[Mapping[str, str]], repository: str | None
    ) -> dict[str, Any] | None:
        if old.attribution is None and not awaiting:
            return None
        return {
            "stream": old.stream_key,
            "repository": repository,
            "attribution": None if old.attribution is None else old.attribution.model_dump(mode="json"),
            "awaiting": [dict(k) for k in awaiting],
        }

    def redo(
        self, deployment: Deployment, rewind: Rewind, *, due: str, now: str
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        item = {
            "deployment_id": deployment.id,
            "created_at": now,
            "due": due,
            "superseded": None if rewind.superseded is None else dict(rewind.superseded),
            "rewind": rewind.rewound or None,
            "also_clean": [*self._unfinished(deployment), *(dict(c) for c in rewind.clean_also)] or None,
        }
        operations: list[dict[str, Any]] = []
        if rewind.reset and deployment.attribution is not None:
            operations.append({"fake": "placeholder", "deployment": deployment})
        operations.append({"fake": "outbox", "item": item})
        return operations, item

    def _unfinished(self, deployment: Deployment) -> list[dict[str, Any]]:
        current, item = deployment.attribution, self.outbox(deployment.id)
        if current is None or not current.is_placeholder or item is None:
            return []
        entries = [dict(c) for c in item.get("also_clean") or []]
        if item.get("superseded"):
            entries.append({"deployment_id": deployment.id, "leftovers": item["superseded"]})
        return entries

    def removal(
        self, deployment: Deployment, *, leftovers: Mapping[str, Any] | None, due: str, now: str
    ) -> list[dict[str, Any]]:
        if leftovers is None:
            return [{"fake": "drop_outbox", "deployment_id": deployment.id}]
        item = {"deployment_id": deployment.id, "created_at": now, "due": due, "removed": dict(leftovers)}
        return [{"fake": "outbox", "item": item}]

    def fake_condition(self, operation: Mapping[str, Any]) -> bool:
        """Whether an operation ``redo`` or ``removal`` gave may apply (a placeholder's deployment as read)."""
        if operation["fake"] != "placeholder":
            return True
        read: Deployment = operation["deployment"]
        current = self.ports.deployment_repository.get(self.space_id, read.id)
        attempts = None if read.attribution is None else read.attribution.attempts
        return current is not None and current.attribution is not None and current.attribution.attempts == attempts

    def fake_apply(self, operation: Mapping[str, Any]) -> None:
        """Apply an operation ``redo`` or ``removal`` gave (the fakes' form of their transaction items)."""
        if operation["fake"] == "placeholder":
            read: Deployment = operation["deployment"]
            attempts = 0 if read.attribution is None else read.attribution.attempts
            self.ports.deployment_repository.set_attribution(read, Attribution(state="Pending", attempts=attempts + 1))
        elif operation["fake"] == "outbox":
            item = dict(operation["item"])
            self.state.outbox[(self.space_id, str(item["deployment_id"]))] = item
        else:
            self.drop_outbox(str(operation["deployment_id"]))

    def _current(self, deployment: Deployment, expected_attempts: int) -> Deployment | None:
        """The stored deployment when it is the version read (body and revision) and no other attempt got
        there first."""
        current = self.ports.deployment_repository.get(self.space_id, deployment.id)
        if current is None or (current.body_hash, current.revision) != (deployment.body_hash, deployment.revision):
            return None
        attempts = current.attribution.attempts if current.attribution is not None else 0
        return current if attempts == expected_attempts else None

    def save_pending(self, deployment: Deployment, pending: PendingWrite, *, expected_attempts: int, now: str) -> bool:
        current = self._current(deployment, expected_attempts)
        if current is None:
            return False
        self.ports.deployment_repository.set_attribution(current, pending.attribution)
        self.state.awaiting.update(self._entry(k) for k in pending.awaiting)
        if pending.due is None:  # a refresh: the outbox item stays as it is
            return True
        outbox = self.state.outbox.setdefault((self.space_id, deployment.id), {"created_at": now})
        outbox.update(deployment_id=deployment.id, due=pending.due, superseded=None, also_clean=None)
        if pending.retry_attempt is None:
            outbox.pop("retry_attempt", None)
            outbox.pop("retry_by", None)
        else:
            outbox.update(retry_attempt=pending.retry_attempt, retry_by=pending.due)
        return True

    def create_pending(
        self, deployment: Deployment, pending: PendingWrite, *, now: str, idempotency: tuple[str, str] | None
    ) -> WriteOutcome | None:
        """The real one is one transaction; here the create and the first attempt's save, in turn."""
        entry = NewDeployment(deployment, idempotency, pending.due)
        written = self.ports.deployment_repository.write(entry, now=now)
        if written.created:
            self.save_pending(deployment, pending, expected_attempts=0, now=now)
        return written

    def create_final(
        self, deployment: Deployment, final: FinalWrite, *, now: str, idempotency: tuple[str, str] | None
    ) -> WriteOutcome | None:
        """The real one is one transaction; here the create and the first attempt's save, in turn."""
        written = self.ports.deployment_repository.write(NewDeployment(deployment, idempotency), now=now)
        if written.created:
            self.save_final(deployment, final, expected_attempts=0)
        return written

    def create_redoing(
        self,
        deployment: Deployment,
        operations: Sequence[Mapping[str, Any]],
        *,
        now: str,
        idempotency: tuple[str, str] | None,
    ) -> WriteOutcome | None:
        """The real one is one transaction; here the create, then the operations when they all apply."""
        if not all(self.fake_condition(op) for op in operations):
            return None
        written = self.ports.deployment_repository.write(NewDeployment(deployment, idempotency), now=now)
        if written.created:
            for operation in operations:
                self.fake_apply(operation)
        return written

    def apply(self, operations: Sequence[Mapping[str, Any]]) -> bool:
        if not all(self.fake_condition(op) for op in operations):
            return False
        for operation in operations:
            self.fake_apply(operation)
        return True

    def save_final(self, deployment: Deployment, final: FinalWrite, *, expected_attempts: int) -> Attribution | None:
        current = self._current(deployment, expected_attempts)
        if current is None:
            return None
        result = final.final
        shipped = self.ports.ledger_state(self.space_id, deployment.stream_key)
        moved: list[BranchMark] = []
        for mark in {(m.repository, m.branch): m for m in result.marks}.values():
            read = shipped.marks.get((mark.repository, mark.branch))
            if read is None or read[0] < mark.position or read[1] == deployment.id:
                shipped.marks[(mark.repository, mark.branch)] = (mark.position, deployment.id)
            moved.append(mark)  # recorded whether moved or not (a rewound run reads them back)
        # The real ledger keeps a branch range's commits as one range entry (``FinalAttribution.ranges``); this
        # fake records every shipped commit on its own, which the ranges stand for.
        for change_id in {*result.change_ids, *(commit_change_id(r, sha) for r, sha in result.commits)}:
            shipped.changes[change_id] = deployment.id
        attribution = result.attribution.model_copy(
            update={
                "commits": [sha for _, sha in result.commits],
                "commits_repository": result.commits[0][0] if result.commits else None,
                "pull_request_count": len(result.attribution.pull_requests),
                "commit_count": len(result.commits),
                "pages": 1,
                "details_id": None,
                "marks": [m.model_dump(mode="json") for m in moved],
            }
        )
        self.ports.deployment_repository.set_attribution(current, attribution, result.figures)
        for key in result.forget:
            self.state.awaiting.discard(self._entry(key))
        if result.drop_outbox:
            self.drop_outbox(deployment.id)
        if result.dirty_at is not None:
            self.ports.dirty[(self.space_id, deployment.stream_key)] = result.dirty_at
        return attribution

    def replacement(
        self, old: Deployment, outbox: ReplacementOutbox, *, now: str, room: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        raise NotImplementedError("replacing deployments has no in-memory fake")

    def waiting_for(self, sha_prefixes: Iterable[str], repositories: Iterable[str]) -> set[str]:
        wanted = {("sha", p) for p in sha_prefixes} | {("repository", r) for r in repositories}
        return {
            d for space, kind, value, d in self.state.awaiting if space == self.space_id and (kind, value) in wanted
        }

    def due(self, now: str, limit: int) -> list[dict[str, Any]]:
        items = [dict(i) for (space, _), i in self.state.outbox.items() if space == self.space_id and i["due"] <= now]
        return sorted(items, key=lambda i: (i["due"], i["deployment_id"]))[:limit]

    def lease(self, item: Mapping[str, Any], due: str) -> bool:
        current = self.state.outbox.get((self.space_id, str(item["deployment_id"])))
        if current is None or current["due"] != item["due"]:
            return False
        current["due"] = due
        current["sweeps"] = int(current.get("sweeps", 0)) + 1
        return True

    def page(self, deployment_id: str, details_id: str, number: int) -> ShippedChanges | None:
        return None  # the fake keeps every change on the first page

    def pages(self, deployment_id: str, attribution: Attribution, repository: str | None) -> Sequence[ShippedChanges]:
        return [
            _FirstPage(attribution.pull_requests, attribution.commits, attribution.commits_repository or repository)
        ]


class FakeCode(InMemoryChanges):
    """``CodeRepository`` of one space: the domain's in-memory ``ChangeView`` plus the push writes."""

    def __init__(self) -> None:
        super().__init__()
        self.next_position: dict[tuple[str, str], int] = {}
        self.deliveries: set[str] = set()

    def remember_repository(self, repository: str, default_branch: str | None, now: str) -> bool:
        if default_branch is None or self.default_branches.get(repository) == default_branch:
            return False
        self.default_branches[repository] = default_branch
        return True

    def default_branches_of(self, repositories: Collection[str]) -> dict[str, str | None]:
        return {repository: self.default_branches.get(repository) for repository in repositories}

    def existing_commits(self, repository: str, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Commit]:
        stored = {(c.sha, c.branch): c for c in self.commits if c.repository == repository}
        return {pair: stored[pair] for pair in pairs if pair in stored}

    def link_pull_requests(self, commits: Sequence[Commit]) -> int:
        linked = 0
        for n, stored in enumerate(self.commits):
            for commit in commits:
                same = (stored.repository, stored.sha, stored.branch) == (commit.repository, commit.sha, commit.branch)
                if same and stored.pull_request is None and commit.pull_request is not None:
                    self.commits[n] = stored.model_copy(update={"pull_request": commit.pull_request})
                    linked += 1
        return linked

    def allocate_positions(self, repository: str, branch: str, count: int) -> int:
        first = self.next_position.get((repository, branch), 0)
        self.next_position[(repository, branch)] = first + count
        return first

    def put_commits(self, commits: Sequence[Commit]) -> int:
        stored = {(c.repository, c.sha, c.branch) for c in self.commits}
        new = [c for c in commits if (c.repository, c.sha, c.branch) not in stored]
        self.commits.extend(new)
        return len(new)

    def get_pull_request_item(self, repository: str, number: int) -> dict[str, Any] | None:
        raise NotImplementedError("pull requests are stored items of dal.code")

    def get_github_pull(self, github_id: int) -> dict[str, Any] | None:
        raise NotImplementedError("pull requests are stored items of dal.code")

    def write_pull_request(
        self,
        pr: PullRequest,
        *,
        expected_version: int | None,
        github_expected_version: int | None,
        write_github_item: bool,
    ) -> None:
        raise NotImplementedError("pull requests are stored items of dal.code")

    def write_placeholder(
        self, repository: str, number: int, services: Sequence[str], *, expected_version: int | None, now: str
    ) -> None:
        raise NotImplementedError("pull requests are stored items of dal.code")

    def write_github_placeholder(
        self, github_id: int, services: Sequence[str], *, expected_version: int | None, now: str
    ) -> None:
        raise NotImplementedError("pull requests are stored items of dal.code")

    def delivery_seen(self, delivery_id: str, now: datetime) -> bool:
        return delivery_id in self.deliveries

    def remember_delivery(self, delivery_id: str, event: str, now: datetime) -> None:
        self.deliveries.add(delivery_id)


class FakeQueue:
    """``RetryQueue``: the messages sent, as (space, deployment, attempt, delay)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, int, int]] = []

    def send(self, space_id: str, deployment_id: str, attempt: int, delay_seconds: int) -> None:
        self.sent.append((space_id, deployment_id, attempt, delay_seconds))

    def send_now(self, space_id: str, deployment_ids: Sequence[tuple[str, int]]) -> None:
        self.sent.extend((space_id, d, attempt, 0) for d, attempt in deployment_ids)

    def send_groups(self, space_id: str, groups: Sequence[Sequence[str]], afters: Sequence[str | None] = ()) -> None:
        self.sent.extend((space_id, d, 0, 0) for ids in groups for d in ids)


# ---------------------------------------------------------------------------------------------
# The whole port


class FakeRollups:
    """``RollupRepository`` in memory (daily rollups of the GitLab-style metrics API)."""

    def __init__(self) -> None:
        self.streams: dict[tuple[str, int, str], Any] = {}
        self.written: dict[tuple[str, int, str], str] = {}  # the generation each item was last written for
        self.pairs: dict[tuple[str, str, str], Any] = {}

    def write(
        self,
        space_id: str,
        stream: str,
        years: Mapping[int, Any],
        failures: tuple[str, str, Any] | None,
        *,
        generations: tuple[str, str | None],
        computed_at: str,
    ) -> None:
        new, current = generations
        for year, columns in years.items():
            self.streams[(space_id, year, stream)] = (columns, frozenset({new, current or new}))
            self.written[(space_id, year, stream)] = new
        if failures is not None:
            project_id, environment_id, rows = failures
            self.pairs[(space_id, project_id, environment_id)] = rows

    def written_as(self, space_id: str, stream: str, years: Iterable[int], generation: str) -> bool:
        return any(self.written.get((space_id, year, stream)) == generation for year in years)

    def deployments(
        self, space_id: str, years: Iterable[int], streams: Iterable[str], *, consistent: bool = False
    ) -> dict[str, list[tuple[int, Any, frozenset[str]]]]:
        wanted, chosen = set(streams), set(years)
        found: dict[str, list[tuple[int, Any, frozenset[str]]]] = {}
        for (space, year, stream), (columns, generations) in sorted(self.streams.items()):
            if space == space_id and year in chosen and stream in wanted:
                found.setdefault(stream, []).append((year, columns, generations))
        return found

    def failures(
        self, space_id: str, pairs: Iterable[tuple[str, str]], *, consistent: bool = False
    ) -> dict[tuple[str, str], Any]:
        wanted = set(pairs)
        return {(p, e): rows for (space, p, e), rows in self.pairs.items() if space == space_id and (p, e) in wanted}


class Marks(dict[tuple[str, str], str]):
    """Dirty marks, (space, stream) -> ``dirty_at``; each write of one also gets a new id (``ids``), as
    ``Store.dirty_op`` gives every mark one."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[tuple[str, str], str] = {}
        self._written = 0

    def __setitem__(self, key: tuple[str, str], dirty_at: str) -> None:
        self._written += 1
        self.ids[key] = f"mark-{self._written}"
        super().__setitem__(key, dirty_at)

    def is_mark(self, key: tuple[str, str], dirty_at: str, mark_id: str | None) -> bool:
        """Whether the mark of ``key`` is still the one read."""
        return self.get(key) == dirty_at and self.ids.get(key) == mark_id


class FakePorts:
    """``Ports`` in memory: spaces, catalogue and dirty marks here, one shared fake per repository."""

    def __init__(self, *, queue: bool = True) -> None:
        self.spaces: dict[str, SpaceRecord] = {}
        self.catalogue_by_name: dict[tuple[str, CatalogueKind, str], CatalogueEntry] = {}
        self.catalogue_by_id: dict[tuple[str, str], CatalogueEntry] = {}
        self.catalogue_numbers: dict[tuple[str, str], int] = {}
        self.counters: dict[tuple[str, str], int] = {}
        self.dirty = Marks()
        self.caught_up: dict[tuple[str, str], tuple[str, str | None, str]] = {}  # (dirty_at, mark id, stamp)
        self.api_keys: dict[str, ApiKeyRecord] = {}
        self.deployment_repository = FakeDeployments(self)
        self.failure_repository = FakeFailures(self)
        self.event_search_repository = FakeEventSearch(self)
        self.metrics_repository = FakeMetrics(self)
        self.health_repository = FakeHealth(self)
        self.rollup_repository = FakeRollups()
        self.report_repository = FakeReports()
        self.attribution_state = AttributionState()
        self.ledgers: dict[tuple[str, str], StreamLedgerState] = {}
        self.code_repositories: dict[str, FakeCode] = {}
        self.queue = FakeQueue() if queue else None

    def add_space(self, space_id: str = SPACE, *, default_environment: str = "production") -> SpaceRecord:
        record = SpaceRecord(
            id=space_id, name="Default", default_environment=default_environment, figures_format=FIGURES_FORMAT
        )
        self.spaces[space_id] = record
        return record

    # --- the table adapter's own reads -----------------------------------------------------
    def get_space(self, space_id: str, *, consistent: bool = False) -> SpaceRecord | None:
        return self.spaces.get(space_id)

    def save_space_settings(
        self, space_id: str, settings: SpaceSettings, *, expected_revision: int, streams: Sequence[str], now: str
    ) -> bool:
        space = self.spaces.get(space_id)
        if space is None or space.settings.revision != expected_revision:
            return False
        self.spaces[space_id] = replace(space, settings=settings)
        for stream in streams:
            self.dirty[(space_id, stream)] = now
        return True

    def mark_streams_dirty(self, space_id: str, streams: Sequence[str], now: str) -> None:
        for stream in streams:
            self.dirty[(space_id, stream)] = now

    def set_figures_format(self, space_id: str, figures_format: int) -> None:
        if space_id in self.spaces:
            self.spaces[space_id] = replace(self.spaces[space_id], figures_format=figures_format)

    def settle_space_marks(self, space_id: str, revision: int) -> None:
        space = self.spaces[space_id]
        if space.settings.revision == revision:
            self.spaces[space_id] = replace(space, settings=replace(space.settings, marks_owed=False))

    def list_space_ids(self) -> list[str]:
        return sorted(self.spaces)

    def list_dirty_streams(self, space_id: str) -> list[dict[str, Any]]:
        return [
            {
                "stream": s,
                "dirty_at": at,
                "mark_id": self.dirty.ids[(space, s)],
                "pending": 1,
                "caught_up": self._caught_up(space, s, at, self.dirty.ids[(space, s)]),
            }
            for (space, s), at in sorted(self.dirty.items())
            if space == space_id
        ]

    def dirty_stream(self, space_id: str, stream: str) -> dict[str, Any] | None:
        return next((m for m in self.list_dirty_streams(space_id) if m["stream"] == stream), None)

    def _caught_up(self, space_id: str, stream: str, dirty_at: str, mark_id: str) -> str | None:
        to, to_id, stamp = self.caught_up.get((space_id, stream), ("", None, ""))
        return stamp if (to, to_id) == (dirty_at, mark_id) else None

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        return self.api_keys.get(key_hash)

    def stored_body_hashes(
        self,
        space_id: str,
        *,
        deployment_ids: Iterable[str] = (),
        idempotency_keys: Iterable[tuple[str, str]] = (),
    ) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
        items, records = self.deployment_repository.items, self.deployment_repository.idempotency
        ids = {i: items[(space_id, i)].body_hash for i in deployment_ids if (space_id, i) in items}
        by_key = {
            k: items[(space_id, records[(space_id, *k)])].body_hash
            for k in idempotency_keys
            if (space_id, *k) in records
        }
        return ids, by_key

    # --- catalogue ---------------------------------------------------------------------------
    def find_catalogue_names(
        self, space_id: str, wanted: Iterable[tuple[CatalogueKind, str]], *, consistent: bool = False
    ) -> dict[tuple[CatalogueKind, str], CatalogueEntry]:
        found = {}
        for kind, name in wanted:
            entry = self.catalogue_by_name.get((space_id, kind, name.casefold()))
            if entry is not None:
                found[(kind, name.casefold())] = entry
        return found

    def next_numbers(self, space_id: str, counts: Mapping[str, int]) -> dict[str, list[int]]:
        allocated = {}
        for name, count in counts.items():
            if count > 0:
                last = self.counters.get((space_id, name), 0) + count
                self.counters[(space_id, name)] = last
                allocated[name] = list(range(last - count + 1, last + 1))
        return allocated

    def register_catalogue(self, space_id: str, entries: Sequence[CatalogueEntry], number_of: dict[str, int]) -> bool:
        if any((space_id, e.kind, e.name.casefold()) in self.catalogue_by_name for e in entries):
            return False
        for entry in entries:
            self.catalogue_by_name[(space_id, entry.kind, entry.name.casefold())] = entry
            self.catalogue_by_id[(space_id, entry.id)] = entry
            self.catalogue_numbers[(space_id, entry.id)] = number_of[entry.id]
        return True

    def existing_catalogue_ids(self, space_id: str, ids: Iterable[str]) -> set[str]:
        return {i for i in ids if (space_id, i) in self.catalogue_by_id}

    def add_tenant_tags(self, space_id: str, tag_set: CatalogueEntry, tags: Iterable[str]) -> None:
        entry = self.catalogue_by_id[(space_id, tag_set.id)]
        updated = CatalogueEntry(
            kind=entry.kind, id=entry.id, name=entry.name, tags=tuple(sorted({*entry.tags, *tags}))
        )
        self.catalogue_by_id[(space_id, entry.id)] = updated
        self.catalogue_by_name[(space_id, entry.kind, entry.name.casefold())] = updated

    def list_catalogue(self, space_id: str, kind: CatalogueKind, *, consistent: bool = False) -> list[CatalogueEntry]:
        entries = [e for (space, _), e in self.catalogue_by_id.items() if space == space_id and e.kind is kind]
        return sorted(entries, key=lambda e: self.catalogue_numbers[(space_id, e.id)])

    # --- repositories ------------------------------------------------------------------------
    def deployments(self) -> FakeDeployments:
        return self.deployment_repository

    def failures(self) -> FakeFailures:
        return self.failure_repository

    def event_search(self) -> FakeEventSearch:
        return self.event_search_repository

    def metrics(self) -> FakeMetrics:
        return self.metrics_repository

    def health(self) -> FakeHealth:
        return self.health_repository

    def rollups(self) -> FakeRollups:
        return self.rollup_repository

    def reports(self) -> FakeReports:
        return self.report_repository

    def orlo(self) -> FakeOrlo:
        return FakeOrlo()

    def attribution(self, space_id: str) -> FakeAttribution:
        return FakeAttribution(self, space_id)

    def ledger_state(self, space_id: str, stream: str) -> StreamLedgerState:
        return self.ledgers.setdefault((space_id, stream), StreamLedgerState())

    def ledger(self, space_id: str, stream: str, deployment_id: str, *, before: Deployment | None = None) -> FakeLedger:
        if before is None:
            return FakeLedger(self.ledger_state(space_id, stream), deployment_id)
        rows = self.deployment_repository.in_stream(space_id, stream)
        key = (before.finished_at, before.started_at or before.finished_at, before.id)
        earlier = [d for d in rows if (d.finished_at, d.started_at or d.finished_at, d.id) < key]
        return FakeLedger(self.ledger_state(space_id, stream), deployment_id, list(reversed(earlier)))

    def code(self, space_id: str) -> FakeCode:
        return self.code_repositories.setdefault(space_id, FakeCode())

    def retry_queue(self) -> FakeQueue | None:
        return self.queue

    def insights(self) -> Any:
        """Saved insights have ports and fakes of their own (``logic.insight_ports``)."""
        raise NotImplementedError("no saved insights in these fakes")


@dataclass
class FakeDestinations:
    """``logic.destinations.DestinationRepository`` (``dal.destinations.DestinationStore``): destinations by
    (space, id), the delivery log in the order written, delivered marks and each (space, destination,
    threshold)'s latest transition taken, which ``record`` only moves forward (as pattern 66's condition)."""

    items: dict[tuple[str, str], Destination] = field(default_factory=dict)
    log: list[Delivery] = field(default_factory=list)
    marks: set[tuple[str, str, str]] = field(default_factory=set)
    last: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def create(self, destination: Destination) -> None:
        self.items[(destination.space_id, destination.id)] = destination

    def replace(self, destination: Destination) -> bool:
        if (destination.space_id, destination.id) not in self.items:
            return False
        self.items[(destination.space_id, destination.id)] = destination
        return True

    def get(self, space_id: str, destination_id: str) -> Destination | None:
        return self.items.get((space_id, destination_id))

    def list_all(self, space_id: str) -> list[Destination]:
        return sorted((d for (s, _), d in self.items.items() if s == space_id), key=lambda d: d.id)

    def delete(self, space_id: str, destination_id: str) -> bool:
        return self.items.pop((space_id, destination_id), None) is not None

    def delivery_marks(
        self, space_id: str, destination_id: str, notification_id: str, threshold_id: str | None
    ) -> DeliveryMarks:
        last = self.last.get((space_id, destination_id, threshold_id)) if threshold_id is not None else None
        return DeliveryMarks((space_id, destination_id, notification_id) in self.marks, last)

    def record(
        self,
        space_id: str,
        delivery: Delivery,
        now: datetime,
        *,
        mark_delivered: bool,
        transition: Transition | None = None,
    ) -> None:
        self.log.append(delivery)
        if not mark_delivered:
            return
        self.marks.add((space_id, delivery.destination_id, delivery.notification_id))
        if transition is not None:
            at = (space_id, delivery.destination_id, transition.threshold_id)
            if at not in self.last or self.last[at] <= transition.checked_at:
                self.last[at] = transition.checked_at

    def deliveries(
        self, space_id: str, destination_id: str, limit: int, cursor: str | None, now: datetime
    ) -> tuple[list[Delivery], str | None]:
        return [d for d in self.log if d.destination_id == destination_id][::-1][:limit], None
