"""The ports the use cases talk to: a Protocol for every repository logic uses, and ``Ports``, the
one object a use case takes (its ``store`` parameter), which hands them out.

``dal.repositories.Repositories`` implements ``Ports`` over the DynamoDB table (structurally: dal
never imports logic), and ``handlers`` pass one to every use case. The unit tests implement the
same Protocols in memory (``tests/unit/logic/fakes.py``). Keys, expressions, item shapes and
page sizes stay behind these Protocols, in ``dal``.

The attribution engine's own ports, ``ChangeView`` (code data) and ``StreamLedger`` (what a
stream shipped), are declared in ``domain.attribution`` and re-exported here; so are the values the
attribution repository's writes take (``PendingWrite``, ``FinalWrite``, ``ReplacementOutbox``,
``Rewind``), declared in ``dal.attribution_writes`` (pure dataclasses: dal does not import logic).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from dora_insights.dal.attribution_writes import (  # what the attribution writes take, re-exported
    FinalWrite,
    PendingWrite,
    ReplacementOutbox,
    Rewind,
)
from dora_insights.domain.attribution import ChangeView, StreamLedger  # bases of the Protocols below

if TYPE_CHECKING:  # annotations only: importing the ports loads no module a function does not use
    from dora_insights.domain.changes import Commit, PullRequest
    from dora_insights.domain.corrections import CorrectionRecord
    from dora_insights.domain.failures import FailureOutcome
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
    from dora_insights.domain.rollups import DeploymentColumns, FailureColumns
    from dora_insights.domain.views import StoredView, ViewId
    from dora_insights.errors import DoraError

__all__ = [
    "AttributionRepository",
    "CatalogueRepository",
    "ChangeView",
    "CodeRepository",
    "DeploymentRepository",
    "EventSearchRepository",
    "FailureRepository",
    "FinalWrite",
    "HealthRepository",
    "MetricsRepository",
    "OrloRepository",
    "PendingWrite",
    "Ports",
    "ReplacementOutbox",
    "ReportRepository",
    "RetryQueue",
    "Rewind",
    "RollupRepository",
    "SecretBox",
    "ShippedChanges",
    "SpaceDirectory",
    "StoredOrloRelease",
    "StoredOrloToken",
    "StreamLedger",
]


# ---------------------------------------------------------------------------------------------
# Spaces and the catalogue (methods of the table adapter itself)


class SpaceDirectory(Protocol):
    """Spaces and their settings."""

    def get_space(self, space_id: str, *, consistent: bool = False) -> SpaceRecord | None:
        """A space, or None (``consistent``: a strongly consistent read, for checks against its secrets)."""
        ...

    def save_space_settings(
        self, space_id: str, settings: SpaceSettings, *, expected_revision: int, streams: Sequence[str], now: str
    ) -> bool:
        """Write a space's settings if its stored revision is still ``expected_revision``, with the
        dirty marks of ``streams`` (fewer than 100), together; False (nothing written) when the space is
        gone or its settings changed since they were read; ``WriteContendedError`` when concurrent writes
        kept it from going through (nothing written: retry)."""
        ...

    def mark_streams_dirty(self, space_id: str, streams: Sequence[str], now: str) -> None:
        """Mark streams for the recompute (marking a marked stream again only moves its mark: the
        recompute computes it once), in transactions of at most 100 (``WriteContendedError`` when
        concurrent writes keep one from going through)."""
        ...

    def set_figures_format(self, space_id: str, figures_format: int) -> None:
        """Record the version of the figure rules the space's figures are computed with (``SpaceRecord``)."""
        ...

    def settle_space_marks(self, space_id: str, revision: int) -> None:
        """Record that every dirty mark the settings' change ``revision`` owed is written (clear
        ``marks_owed``), unless the settings changed again since: that change owes them now."""
        ...


class CatalogueRepository(Protocol):
    """Catalogue entities (projects, environments, ...) of a space, registered on first sight."""

    def find_catalogue_names(
        self, space_id: str, wanted: Iterable[tuple[CatalogueKind, str]], *, consistent: bool = False
    ) -> dict[tuple[CatalogueKind, str], CatalogueEntry]:
        """Registered entities by (kind, casefolded name); ``consistent``: what a write that just
        returned stored is seen (a strongly consistent read, twice the capacity)."""
        ...

    def next_numbers(self, space_id: str, counts: Mapping[str, int]) -> dict[str, list[int]]:
        """Allocate ``counts[name]`` consecutive numbers of each per-space counter."""
        ...

    def register_catalogue(self, space_id: str, entries: Sequence[CatalogueEntry], number_of: dict[str, int]) -> bool:
        """Register new entities together; False if a name was taken meanwhile."""
        ...

    def existing_catalogue_ids(self, space_id: str, ids: Iterable[str]) -> set[str]:
        """Which of these catalogue ids exist in the space."""
        ...

    def add_tenant_tags(self, space_id: str, tag_set: CatalogueEntry, tags: Iterable[str]) -> None:
        """Record tag names seen in a tenant tag set."""
        ...

    def list_catalogue(self, space_id: str, kind: CatalogueKind, *, consistent: bool = False) -> list[CatalogueEntry]:
        """Every entity of a kind, in id-number order (``consistent``: one registered a moment ago too)."""
        ...


# ---------------------------------------------------------------------------------------------
# Deployments and failure events


class DeploymentRepository(Protocol):
    """Deployments: by id, the idempotent create, the DX replacement and the native list."""

    def get(self, space_id: str, deployment_id: str, *, consistent: bool = False) -> Deployment | None:
        """One deployment by id, or None (``consistent``: a strongly consistent read, for corrections)."""
        ...

    def write(self, entry: NewDeployment, *, now: str) -> WriteOutcome:
        """Create the entry's deployment with its idempotency record and its stream's dirty mark, and
        (with ``outbox_due``) the attribution it is owed, together. A repeat with the same fingerprint
        answers the stored deployment; other values raise ``ResourceConflictError``; a write concurrent
        writes keep cancelling (after retries) raises ``WriteContendedError``, nothing stored."""
        ...

    def write_many(self, entries: Sequence[NewDeployment], *, now: str) -> list[WriteOutcome | DoraError]:
        """Create many deployments, each as ``write`` would (all or nothing per entry), in few round
        trips; one result per entry, in order: its outcome or its own error (a conflict, an item too
        large, a ``WriteContendedError``). A later entry naming the id or key of an earlier one meets it
        as stored. The time spent waiting out contention is bounded per call."""
        ...

    def idempotency_target(self, space_id: str, dialect: str, client_id: str) -> str | None:
        """The deployment id a dialect's idempotency key points at, or None."""
        ...

    def replace(
        self,
        old: Deployment,
        new: Deployment,
        *,
        idempotency: tuple[str, str],
        now: str,
        also: Sequence[Mapping[str, Any]] = (),
    ) -> WriteOutcome:
        """Replace ``old`` by ``new`` (same id) with its idempotency record and the dirty marks of both
        streams, together with ``also`` (operations an ``AttributionRepository.replacement`` gave),
        conditional on ``old`` as read (else 409; still cancelled by concurrent writes after retries,
        ``WriteContendedError``). The replacement is ``old``'s next revision and keeps
        what corrections set that no dialect sends (the change-failure override, the remediation)."""
        ...

    def list_page(self, space_id: str, query: DeploymentListQuery) -> tuple[list[Deployment], str | None]:
        """The deployments ``query`` asks for, newest first, and the opaque cursor of the next page
        (None on the last one). A filtered read is bounded per call: a page may hold fewer than
        ``query.limit`` (even none) and still have a cursor."""
        ...

    # --- corrections (issue 16, ``logic/corrections.py``) ---------------------------------------
    def find_by_version(self, space_id: str, *, project_id: str, environment_id: str, version: str) -> VersionSearch:
        """The latest deployment of the project in the environment with this version (None when none),
        and whether the search read every candidate: only the project's most recent deployments are
        searched (a bounded read: the first few thousand, newest first)."""
        ...

    def correct(
        self,
        old: Deployment,
        new: Deployment,
        *,
        record: CorrectionRecord,
        now: str,
        also: Sequence[Mapping[str, Any]] = (),
    ) -> bool:
        """Store the corrected deployment (same id, same stream) with its stream's dirty mark, the record
        and ``also`` (operations an ``AttributionRepository`` gave) together, if the stored one is still
        ``old`` (its revision and attribution attempts); False when not (``WriteContendedError`` when
        concurrent writes kept it from going through). A changed version also marks the project's other
        streams (their Release lead times read the release's first-seen time across the project)."""
        ...

    def delete(
        self, old: Deployment, *, record: CorrectionRecord, now: str, also: Sequence[Mapping[str, Any]] = ()
    ) -> bool:
        """Delete the deployment (and the dialect idempotency record naming it: the dialect's id may be
        sent again) with its stream's dirty mark, the record and ``also`` together, if the stored one is
        still ``old``; False when it changed or is gone (``WriteContendedError``: see ``correct``). A
        deployment with a version also marks the project's other streams (see ``correct``)."""
        ...

    def corrections(
        self, space_id: str, deployment_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[CorrectionRecord], str | None]:
        """A deployment's correction records, newest first (kept after it is deleted), and the next cursor."""
        ...

    def removed_between(self, space_id: str, deployment_id: str, after: str, until: str) -> bool:
        """Whether a deployment under this id was removed between the two instants (inclusive, stored
        form): the one there now is then another than the one there at ``after``."""
        ...


class FailureRepository(Protocol):
    """Failure (incident) events."""

    def write(self, failure: FailureEvent, *, now: str, also_stream: str | None = None) -> FailureOutcome:
        """Create the event and mark its known streams dirty (and ``also_stream``: its cause's);
        same id and content: the stored event, other content: ``ResourceConflictError``; still cancelled
        by concurrent writes after retries: ``WriteContendedError``."""
        ...

    def get(self, space_id: str, failure_id: str, *, consistent: bool = False) -> FailureEvent | None:
        """One failure event by id, or None (``consistent``: a strongly consistent read, so an event
        written a moment ago is found)."""
        ...

    def delete(
        self, failure: FailureEvent, *, record: CorrectionRecord, now: str, also_stream: str | None = None
    ) -> bool:
        """Delete the event with the dirty marks of its streams (and ``also_stream``) and its record
        together; False when it is gone already (``WriteContendedError`` when concurrent writes kept it
        from going through)."""
        ...

    def list_page(self, space_id: str, query: FailureListQuery) -> tuple[list[FailureEvent], str | None]:
        """The failures ``query`` asks for, newest start first, and the next page's cursor (a filtered
        read is bounded per call: a page may be short, even empty, and still have a cursor)."""
        ...


class EventSearchRepository(Protocol):
    """Deployments and failure events listed page by page for a search whose conditions are evaluated
    on each event read (``keep``): time-ordered Queries of one index partition, never a Scan (Datadog
    lists, ``logic/datadog.py``). Reads are bounded per call: a page may end early, with a cursor."""

    def project_streams(self, space_id: str, project_id: str) -> list[str]:
        """Every stream of a project that has deployments: the ones the recompute registered and the
        ones marked dirty (a stream is one or the other from its first deployment on)."""
        ...

    def deployments_page(
        self, space_id: str, *, scope: ListScope, page: EventPage, keep: Callable[[Deployment], bool]
    ) -> tuple[list[Deployment], str | None]:
        """At most ``page.limit`` deployments ``keep`` accepts, finished within the page's bounds, by
        finish time, read from ``scope`` (one stream's deployments, else one project's, else the
        space's); and the opaque cursor of the rest (None when none is left). A cursor continues the
        list it came from (its stream, project or space), whatever ``scope`` says."""
        ...

    def failures_page(
        self, space_id: str, *, page: EventPage, keep: Callable[[FailureEvent], bool]
    ) -> tuple[list[FailureEvent], str | None]:
        """At most ``page.limit`` failure events ``keep`` accepts, started within the page's bounds, by
        start time, and the cursor of the rest (None when none is left)."""
        ...


# ---------------------------------------------------------------------------------------------
# Precomputed metrics, recompute health, reports


class RollupRepository(Protocol):
    """Daily rollups of GitLab's DORA metrics API (``dal.rollups``, patterns 120–121)."""

    def write(
        self,
        space_id: str,
        stream: str,
        years: Mapping[int, DeploymentColumns],
        failures: tuple[str, str, FailureColumns] | None,
        *,
        generations: tuple[str, str | None],
        computed_at: str,
    ) -> None:
        """Replace a stream's items of ``years`` (for figures generation ``generations[0]``, the
        stream's current one being ``generations[1]``) and, when given, the failure rows of its
        (project, environment)."""
        ...

    def written_as(self, space_id: str, stream: str, years: Iterable[int], generation: str) -> bool:
        """Whether any of the stream's deployment rollups of ``years`` was last written for
        ``generation`` (read strongly consistent)."""
        ...

    def deployments(
        self, space_id: str, years: Iterable[int], streams: Iterable[str], *, consistent: bool = False
    ) -> dict[str, list[tuple[int, DeploymentColumns, frozenset[str]]]]:
        """The streams' items of the years by stream, each with the generations it counts for
        (``consistent``: read strongly, after a recompute this request ran)."""
        ...

    def failures(
        self, space_id: str, pairs: Iterable[tuple[str, str]], *, consistent: bool = False
    ) -> dict[tuple[str, str], FailureColumns]:
        """The failure rows of (project id, environment id) pairs."""
        ...


class MetricsRepository(Protocol):
    """Inputs of the recompute, per-stream figures (by generation), report states and views."""

    def stream_deployments(self, space_id: str, stream: str) -> list[Deployment]:
        """Every deployment of a stream, in stream order."""
        ...

    def project_deployments(self, space_id: str, project_id: str) -> list[Deployment]:
        """Every deployment of a project in the space."""
        ...

    def latest_stream_deployment(self, space_id: str, stream: str) -> Deployment | None:
        """The last deployment of a stream in stream order, or None."""
        ...

    def clear_dirty(self, space_id: str, stream: str, dirty_at: str, mark_id: str | None) -> None:
        """Remove a stream's dirty mark unless it was marked again since the mark read (its ``dirty_at``
        and ``mark_id``: a later write of the same request has the same ``dirty_at``)."""
        ...

    def mark_caught_up(self, space_id: str, stream: str, dirty_at: str, mark_id: str | None) -> bool:
        """Record on a stream's mark that its figures count every change up to the mark read (with the
        wall clock's stamp, ``caught_up``), unless it was marked again since; the mark stays for the
        reports that include the stream (the schedule removes it once they are refreshed). True when
        recorded."""
        ...

    def registrations(
        self, space_id: str, streams: Iterable[str], *, consistent: bool = False
    ) -> dict[str, dict[str, Any]]:
        """The registrations of some streams by key (unregistered ones absent); ``consistent``: as the last
        recompute left them (a generation the pointer left is deleted at once)."""
        ...

    def space_failures(self, space_id: str, *, started: tuple[datetime, datetime] | None = None) -> list[FailureEvent]:
        """Every failure event of the space, in start order (``started``: only those that started in
        ``[from, to)``, read as a key range)."""
        ...

    def streams(
        self, space_id: str, *, consistent: bool = False, project_id: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """Registered streams by key: their registration and current figures generation (``consistent``:
        a strongly consistent read, at twice the capacity; ``project_id``: only that project's streams)."""
        ...

    def write_stream_figures(
        self,
        space_id: str,
        stream: str,
        registration: dict[str, Any],
        records_by_month: dict[str, list[dict[str, Any]]],
        generation: str,
        previous: str | None,
    ) -> bool:
        """Write a new generation of a stream's figures, point the stream at it if it still points at
        ``previous`` (the generation the figures were computed over) and drop that; False when a
        concurrent recompute moved it first: this generation is dropped (two writers never both delete
        the same generation and leak their own) and the caller keeps the stream's dirty mark."""
        ...

    def deployment_figures(
        self, space_id: str, stream: str, deployment_id: str, month: str, *, generation: str | None = None
    ) -> dict[str, Any] | None:
        """One deployment's record in its stream's current generation (``month``: the one it finished
        in), or None. ``generation``: that generation when the caller has just read the stream's
        pointer (saves reading it again)."""
        ...

    def stream_figures(
        self, space_id: str, stream: str, generation: str, deployment_ids: Collection[str], months: tuple[str, str]
    ) -> dict[str, dict[str, Any]]:
        """The records of ``deployment_ids`` (finished in the months ``months``: first and last,
        ``YYYY-MM``) in the stream's ``generation``, by deployment id (those without one absent)."""
        ...

    def space_figures_counted(
        self,
        space_id: str,
        streams: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        consistent: bool = False,
        per_stream: bool = False,
    ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
        """Every stream's current figure records (of ``streams``, default every registered one), and how
        many stored items of each stream's generation were read (``consistent``: strongly; ``per_stream``:
        a read of each stream's own, for a few streams of a large space, else one of the space's)."""
        ...

    def report_state(self, space_id: str, number: int) -> dict[str, Any] | None:
        """A report's recompute state (its current generation), or None."""
        ...

    def write_report_aggregates(
        self, space_id: str, number: int, generation: str, views: Mapping[ViewId, StoredView], state: dict[str, Any]
    ) -> bool:
        """Write every view of a new generation, then flip the report's state to it unless it holds views
        computed from a later read of the figures (``read_at``), dropping the generation replaced; False
        (this generation dropped) when not flipped. So two concurrent recomputes leave the newer answer,
        and each generation is deleted exactly once."""
        ...

    def read_view(self, space_id: str, number: int, generation: str, view: ViewId) -> list[dict[str, Any]]:
        """The series of one view of a generation as numbers (``StoredView.records``)."""
        ...

    def read_rendered(
        self, space_id: str, number: int, generation: str, view: ViewId
    ) -> tuple[dict[str, Any], bytes] | None:
        """One view's (header, gzip of its rendered answer), or None."""
        ...


class HealthRepository(Protocol):
    """The recompute's health records and its rotation cursor."""

    def space_health(self, space_id: str) -> tuple[SpaceHealthRecord | None, dict[str, StreamHealthRecord]]:
        """The space's record and its failing or quarantined streams by key."""
        ...

    def stream_health(self, space_id: str, stream: str) -> StreamHealthRecord | None:
        """One stream's record, or None when it is healthy."""
        ...

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
        """Count one more failed run (atomically), once per ``run`` (the schedule's tick: a split
        space's items of one tick may both fail the stream); quarantine the stream when the count
        reaches ``quarantine_after``."""
        ...

    def clear_stream(self, space_id: str, stream: str) -> None:
        """Forget a stream's failures and quarantine."""
        ...

    def record_space_visit(self, space_id: str, at: str, *, failure: tuple[str, FailureNote] | None) -> None:
        """A clean visit (``failure`` None) or a failed one (the stage and the error)."""
        ...

    def rotation_cursor(self) -> str | None:
        """The space the previous run named (this run starts with the space after it)."""
        ...

    def save_rotation_cursor(self, after: str, at: str) -> None:
        """Where the next run starts."""
        ...

    def catalogue_names(self, space_id: str, ids: Iterable[str]) -> dict[str, str]:
        """Names of catalogue ids (``Projects-3`` -> ``shop``); unknown ids are absent."""
        ...


class ReportRepository(Protocol):
    """Insights reports, with optimistic concurrency on their version."""

    def create(self, report: ReportDefinition) -> None:
        """Store a new report."""
        ...

    def get(self, space_id: str, number: int) -> ReportDefinition | None:
        """One report, or None."""
        ...

    def list_all(self, space_id: str, *, consistent: bool = False) -> list[ReportDefinition]:
        """Every report of the space, by number (``consistent``: what a write a moment ago stored too)."""
        ...

    def replace(self, report: ReportDefinition, *, expected_version: int) -> None:
        """Write the new version only if the stored one is ``expected_version`` (else 409)."""
        ...

    def delete(self, space_id: str, number: int, report_id: str) -> None:
        """Delete a report, or 404."""
        ...


# ---------------------------------------------------------------------------------------------
# Orlo


class StoredOrloRelease(Protocol):
    """A release as read, with the version a change must be conditional on."""

    @property
    def release(self) -> OrloRelease: ...

    @property
    def version(self) -> int: ...


class StoredOrloToken(Protocol):
    """An Orlo token as stored: the API key it stands for (by hash) and its expiry (epoch seconds)."""

    @property
    def key_hash(self) -> str: ...

    @property
    def expires_at(self) -> int: ...


class OrloRepository(Protocol):
    """Orlo releases (packages embedded), package pointers, results and tokens."""

    def get(self, space_id: str, release_id: str) -> StoredOrloRelease | None:
        """One release and its version, or None."""
        ...

    def batch_exists(self, space_id: str, release_ids: Iterable[str]) -> set[str]:
        """Which of these releases are stored."""
        ...

    def package_owners(self, space_id: str, package_ids: Iterable[str]) -> dict[str, str]:
        """Package id -> release id, for the stored ones."""
        ...

    def package_owner(self, space_id: str, package_id: str) -> str | None:
        """The release id a package belongs to, or None."""
        ...

    def claim_packages(self, space_id: str, releases: Sequence[OrloRelease], *, claim: str | None = None) -> str | None:
        """Point these releases' packages at them, stamped with ``claim`` (the caller's claim id, for
        ``withdraw_claims``; a fresh one when None); the id of one another release holds (and nothing
        of the call stays), else None."""
        ...

    def withdraw_claims(self, space_id: str, releases: Sequence[OrloRelease], claim: str) -> None:
        """Undo ``claim_packages(..., claim=claim)`` for these releases: remove each pointer still
        carrying ``claim`` whose release is not stored. Never raises for a pointer it could not remove
        (it stays, logged)."""
        ...

    def unclaimed_checks(self, space_id: str, package: OrloPackage) -> list[dict[str, Any]]:
        """Conditions for a transaction removing what an import wrote for ``package``: its release is not
        stored, and no import of that release holds the package's pointer."""
        ...

    def create(self, space_id: str, release: OrloRelease) -> bool:
        """Store a new release (version 1), its packages claimed already; False if the id is taken."""
        ...

    def replace(
        self, space_id: str, release: OrloRelease, *, expected_version: int, new_packages: Sequence[OrloPackage] = ()
    ) -> int:
        """Write the changed release if still at ``expected_version`` (else 409); the new version."""
        ...

    def releases(self, space_id: str, scope: ReleaseScope | None = None) -> list[OrloRelease]:
        """The releases ``scope`` covers (None: all the space's), in no particular order."""
        ...

    def releases_in_order(
        self, space_id: str, scope: ReleaseScope, *, ascending: bool = False, page_size: int | None = None
    ) -> Iterable[OrloRelease]:
        """The releases ``releases`` answers, in the index's order and read lazily, ``page_size`` at a time
        (None: as many as one read returns): those with an stime by stime (then id), ascending or descending,
        then those without stime by id ascending. Taking fewer reads less."""
        ...

    def add_result(self, space_id: str, package_id: str, content: str, at: datetime, result_id: str) -> None:
        """Store one result posted for a package."""
        ...

    def put_token(self, space_id: str, token_hash: str, key_hash: str, expires_at: int) -> None:
        """Store a token by its hash (never the token), with its expiry."""
        ...

    def get_token(self, space_id: str, token_hash: str) -> StoredOrloToken | None:
        """A token by its hash, or None."""
        ...


# ---------------------------------------------------------------------------------------------
# Attribution and code data


class ShippedChanges(Protocol):
    """One page of what a deployment shipped."""

    @property
    def pull_requests(self) -> list[dict[str, Any]]: ...

    @property
    def commits(self) -> list[str]: ...

    @property
    def commits_repository(self) -> str | None: ...


class AttributionRepository(Protocol):
    """The attributions of one space: a deployment's attribution and pages, its stream's previous
    success, its outbox item and the index of deployments waiting for code data.

    Pending-index keys (``awaiting_keys``) and replacement operations are opaque to logic: it only
    hands them back to this repository or to ``DeploymentRepository.replace``."""

    def awaiting_keys(
        self, deployment_id: str, sha_prefixes: Iterable[str], repository: str | None
    ) -> list[dict[str, str]]:
        """Pending-index keys of a deployment waiting for these sha prefixes or this repository."""
        ...

    def outbox(self, deployment_id: str) -> dict[str, Any] | None:
        """The deployment's outbox item (``created_at``, ``superseded``...), or None."""
        ...

    def drop_outbox(self, deployment_id: str) -> None:
        """Delete the outbox item: nothing is left to attribute."""
        ...

    def clean(self, deployment_id: str, superseded: Mapping[str, Any]) -> None:
        """Undo what a replaced version's attribution left (idempotent): its pages and pending-index
        entries, and the ledger entries and branch marks it still owns (after a correction another
        deployment of the stream may have shipped the change since, issue 16; a second run of the same
        cleanup must leave that one's entry)."""
        ...

    def previous_success(
        self,
        deployment: Deployment,
        *,
        consistent: bool = False,
        earlier: Deployment | None = None,
        recent: bool = False,
    ) -> Deployment | None:
        """The stream's last successful deployment before this one in stream order. ``consistent``: each
        candidate as the table holds it now, not as an index last saw it (an attribution run again right
        after a correction must not take a deleted deployment, or one just corrected, for what it was).
        ``earlier``: one known to precede it (read a moment ago), which the index may not show yet.
        ``recent``: the deployment is being stored now; deployments stored a moment before it count too."""
        ...

    def next_success(
        self, deployment: Deployment, *, consistent: bool = False, recent: bool = False
    ) -> Deployment | None:
        """The stream's first successful deployment after this one in stream order: the one whose
        attribution starts where this one's ends. ``consistent`` and ``recent`` as ``previous_success``
        (a deployment arriving out of order looks for a later one attributed without it)."""
        ...

    def superseded(
        self, old: Deployment, awaiting: Sequence[Mapping[str, str]], repository: str | None
    ) -> dict[str, Any] | None:
        """What a deployment's attribution left to undo (ledger entries, pages, marks, pending-index
        entries), as an outbox item keeps it; None when nothing. ``repository``: the old version's,
        normalised."""
        ...

    def redo(
        self, deployment: Deployment, rewind: Rewind, *, due: str, now: str
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Operations making a deployment's attribution run again from scratch, rewound unless
        ``rewind.rewound`` is False (its ledger reads the stream's marks as they stood before it), and the
        outbox item they write (due at ``due``),
        which keeps what ``rewind`` says to undo first. With ``rewind.reset`` an attempt in flight
        loses."""
        ...

    def removal(
        self, deployment: Deployment, *, leftovers: Mapping[str, Any] | None, due: str, now: str
    ) -> list[dict[str, Any]]:
        """Operations for the outbox item of a deployment being deleted: gone with it, or, with
        ``leftovers`` (what its attribution left to undo), kept as ``removed`` until an attempt for the
        deleted id undoes it."""
        ...

    def save_pending(self, deployment: Deployment, pending: PendingWrite, *, expected_attempts: int, now: str) -> bool:
        """Store a Pending attribution with its pending-index entries and move the outbox's due time
        to ``pending.due``, recording ``pending.retry_attempt`` on it (or removing it when None); with
        ``pending.due`` None (a refresh) the outbox item stays as it is. False when another attempt got there
        first or the deployment is no longer the version read (replaced or corrected: its ``revision``)."""
        ...

    def create_pending(
        self, deployment: Deployment, pending: PendingWrite, *, now: str, idempotency: tuple[str, str] | None
    ) -> WriteOutcome | None:
        """Create a deployment whose first attempt is Pending, with its idempotency record, dirty mark,
        outbox item (due at ``pending.due``, with ``pending.retry_attempt``) and pending-index entries, in one
        transaction; a repeat answers as ``DeploymentRepository.write``; None when that cannot be one
        transaction."""
        ...

    def create_final(
        self, deployment: Deployment, final: FinalWrite, *, now: str, idempotency: tuple[str, str] | None
    ) -> WriteOutcome | None:
        """Create a deployment with its final attribution, idempotency record, dirty mark, ledger entries,
        marks and pages in one transaction; a repeat answers as ``DeploymentRepository.write``; None when
        that cannot be one transaction or a mark or ledger entry moved since ``final.ledger`` read it."""
        ...

    def create_redoing(
        self,
        deployment: Deployment,
        operations: Sequence[Mapping[str, Any]],
        *,
        now: str,
        idempotency: tuple[str, str] | None,
    ) -> WriteOutcome | None:
        """Create a deployment with its idempotency record, dirty mark and ``operations`` (``redo``'s: its
        own outbox item, and its stream's later deployment's placeholder and outbox item) in one
        transaction; a repeat answers as ``DeploymentRepository.write``; None when that cannot be one
        transaction or one of ``operations`` failed."""
        ...

    def apply(self, operations: Sequence[Mapping[str, Any]]) -> bool:
        """``redo``'s operations in one transaction; False when one's condition failed (a placeholder's
        deployment changed since it was read)."""
        ...

    def save_final(self, deployment: Deployment, final: FinalWrite, *, expected_attempts: int) -> Attribution | None:
        """Store a final attribution with its pages, the stream's ledger entries and marks (from the
        positions ``final.ledger`` read), the pending-index deletes, the outbox delete and the dirty mark;
        the stored attribution, or None when another attempt got there first or the deployment is no
        longer the version read (replaced or corrected: its ``revision``); nothing of this one is left.
        Raises when a mark moved or a change was shipped since ``final.ledger`` read them, or concurrent
        writes kept cancelling it (the attempt is retried)."""
        ...

    def replacement(
        self, old: Deployment, outbox: ReplacementOutbox, *, now: str, room: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Operations for the transaction replacing ``old`` (DX upsert) and the new version's outbox item
        (None when it is owed nothing and nothing is left to clean). The old version's attribution is
        undone in that transaction when it fits in ``room`` operations (the outbox item's included) and
        has no further pages to read; otherwise the outbox item carries it (``superseded``) and the next
        attempt undoes it before attributing. When the undo is deferred so, the outbox item's Put is the
        only operation answered (``attribution.replacing`` relies on it to carry ``superseded`` on a
        rewound item instead)."""
        ...

    def waiting_for(self, sha_prefixes: Iterable[str], repositories: Iterable[str]) -> set[str]:
        """Deployments waiting for any of these sha prefixes or repositories."""
        ...

    def due(self, now: str, limit: int) -> list[dict[str, Any]]:
        """Outbox items due at or before ``now``, oldest first, at most ``limit``."""
        ...

    def lease(self, item: Mapping[str, Any], due: str) -> bool:
        """Move a due outbox item to ``due`` and count the sweep, unless it changed since it was read."""
        ...

    def page(self, deployment_id: str, details_id: str, number: int) -> ShippedChanges | None:
        """Page ``number`` (≥ 1) of a deployment's changes, or None."""
        ...

    def pages(self, deployment_id: str, attribution: Attribution, repository: str | None) -> Sequence[ShippedChanges]:
        """Every page of a deployment's changes, the first (on the deployment) first; ``repository`` names
        the commits of a first page stored before pages named theirs."""
        ...


class CodeRepository(ChangeView, Protocol):
    """Code data of one space: the engine's ``ChangeView`` and the writes of the ingest paths.

    Pull requests are read as stored items (``dal.code.is_pull_request`` and
    ``pull_request_from_item`` read them) with their optimistic ``version``."""

    def remember_repository(self, repository: str, default_branch: str | None, now: str) -> bool:
        """Register a repository, keeping a known default branch up to date; whether ``default_branch``
        was new or different from the stored one (the caller wakes what waited for it)."""
        ...

    def default_branches_of(self, repositories: Collection[str]) -> dict[str, str | None]:
        """``default_branch`` of each repository, read together."""
        ...

    def existing_commits(self, repository: str, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Commit]:
        """The (sha, branch) pairs stored already, with their commits (read consistently)."""
        ...

    def link_pull_requests(self, commits: Sequence[Commit]) -> int:
        """Give stored commits (those without one) the pull request each names; how many were."""
        ...

    def allocate_positions(self, repository: str, branch: str, count: int) -> int:
        """Reserve ``count`` consecutive positions at the end of a branch; the first one."""
        ...

    def put_commits(self, commits: Sequence[Commit]) -> int:
        """Write the commits not stored yet (a stored one keeps its position, even against a concurrent
        writer); the count written."""
        ...

    def get_pull_request_item(self, repository: str, number: int) -> dict[str, Any] | None:
        """The stored pull request (or placeholder) item, read consistently."""
        ...

    def get_github_pull(self, github_id: int) -> dict[str, Any] | None:
        """The GitHub-id item of a pull request, read consistently."""
        ...

    def write_pull_request(
        self,
        pr: PullRequest,
        *,
        expected_version: int | None,
        github_expected_version: int | None,
        write_github_item: bool,
    ) -> None:
        """Write a pull request (and, with ``write_github_item``, its GitHub-id item) together, both
        versioned: ``VersionConflictError`` when either changed since it was read."""
        ...

    def write_placeholder(
        self, repository: str, number: int, services: Sequence[str], *, expected_version: int | None, now: str
    ) -> None:
        """Services for a pull request not known yet."""
        ...

    def write_github_placeholder(
        self, github_id: int, services: Sequence[str], *, expected_version: int | None, now: str
    ) -> None:
        """Services for a GitHub pull request id not known yet."""
        ...

    def delivery_seen(self, delivery_id: str, now: datetime) -> bool:
        """Whether a webhook delivery was processed within the 30 days its record is kept."""
        ...

    def remember_delivery(self, delivery_id: str, event: str, now: datetime) -> None:
        """Record a processed webhook delivery."""
        ...


class RetryQueue(Protocol):
    """The attribution-retry queue."""

    def send(self, space_id: str, deployment_id: str, attempt: int, delay_seconds: int) -> None:
        """One retry message, delivered after ``delay_seconds``."""
        ...

    def send_now(self, space_id: str, deployment_ids: Sequence[tuple[str, int]]) -> None:
        """Retry messages due at once: (deployment id, attempt) each; raises if the queue refused any."""
        ...

    def send_groups(self, space_id: str, groups: Sequence[Sequence[str]], afters: Sequence[str | None] = ()) -> None:
        """Messages due at once naming several deployments each (a stream's, in finish order), attempted
        in the order given; ``afters[n]``: the stream's success just before group ``n``, which its first
        attempt reads (consistently) as the one before it, whatever the index shows yet or the order the
        messages are taken in. Raises if the queue refused any."""
        ...


# ---------------------------------------------------------------------------------------------
# What a use case takes


class Ports(SpaceDirectory, CatalogueRepository, Protocol):
    """Everything a use case reaches: the repositories (one accessor each) and the few reads of the
    table adapter itself that belong to no repository."""

    def list_space_ids(self) -> list[str]:
        """Every space id (the scheduled recompute)."""
        ...

    def list_dirty_streams(self, space_id: str) -> list[dict[str, Any]]:
        """The space's streams marked for the recompute: ``stream``, ``dirty_at`` (the latest mark),
        ``pending`` (marks since it was last computed) and ``caught_up`` (the wall-clock stamp at which
        a read's refresh brought its figures up to ``dirty_at``, so only its reports wait; None when its
        figures wait too)."""
        ...

    def dirty_stream(self, space_id: str, stream: str) -> dict[str, Any] | None:
        """One stream's mark as ``list_dirty_streams`` gives it, or None when it has none."""
        ...

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """Resolve a presented key by its hash (revocation is immediate)."""
        ...

    def stored_body_hashes(
        self,
        space_id: str,
        *,
        deployment_ids: Iterable[str] = (),
        idempotency_keys: Iterable[tuple[str, str]] = (),
    ) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
        """The ``body_hash`` stored under each of these deployment ids and dialect idempotency keys that
        holds one (by id, by key), read strongly consistently in batches: whether a create would repeat
        what is stored or reuse its id with other values, known before the create registers a name."""
        ...

    def deployments(self) -> DeploymentRepository: ...

    def failures(self) -> FailureRepository: ...

    def event_search(self) -> EventSearchRepository: ...

    def metrics(self) -> MetricsRepository: ...

    def rollups(self) -> RollupRepository: ...

    def health(self) -> HealthRepository: ...

    def reports(self) -> ReportRepository: ...

    def orlo(self) -> OrloRepository: ...

    def attribution(self, space_id: str) -> AttributionRepository: ...

    def ledger(
        self, space_id: str, stream: str, deployment_id: str, *, before: Deployment | None = None
    ) -> StreamLedger:
        """What one stream shipped, for one attempt of one deployment (it ignores that deployment's own
        entries and remembers the marks it read for ``AttributionRepository.save_final``); ``before``:
        its branch marks as they stood before that deployment (an attribution run again, issue 16)."""
        ...

    def code(self, space_id: str) -> CodeRepository: ...

    def retry_queue(self) -> RetryQueue | None:
        """The attribution-retry queue, None when none is configured."""
        ...


# ---------------------------------------------------------------------------------------------
# Secrets the service reads back


class SecretBox(Protocol):
    """Encrypts and decrypts the secrets the service must read back (a webhook signing secret: HMAC
    needs the secret itself, so it cannot be hashed) with the stack's KMS key (``dal.secrets``).

    ``context`` is the encryption context (``domain.incidents.signing_context``,
    ``domain.alert_destinations.signing_context``, ``logic.admin.webhook_secret_context``): a ciphertext opens
    only under the context it was sealed with, so one copied into another space's item does not open there.
    """

    def seal(self, plaintext: str, context: Mapping[str, str]) -> str:
        """The stored form of ``plaintext`` (text), encrypted under ``context``."""
        ...

    def open(self, ciphertext: str, context: Mapping[str, str]) -> str | None:
        """The plaintext of a sealed secret; None when it was not sealed under ``context`` (moved or altered)."""
        ...
