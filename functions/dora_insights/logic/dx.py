"""DX dialect use cases: create, upsert (create or replace by ``reference_id``) and CSV backfill.

Every deployment goes through ``logic.deployments`` (the core write path) with the idempotency
key ``("dx", reference_id)``, so a DX deployment looks like any other. The one check that needs stored
code data lives here: ``integration_branch_not_valid`` (the branch is the repository's known default
branch, see ``check_code_data``). DX's ``merge_commit_shas_not_found`` is never answered: attribution
waits for the code data for 3 days from the deployment's arrival whatever its date (METRICS §5), so a
history backfilled before its pull requests are imported is attributed once they arrive, and a backfill
of 1,000 old rows reads no pull request at ingest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from dora_insights.domain.model import DeploymentDraft
from dora_insights.domain.records import SpaceRecord, WriteOutcome
from dora_insights.errors import ID_REUSED, DoraError, RequestInvalidError, ResourceConflictError
from dora_insights.logic import deployments, replacements
from dora_insights.logic.ports import Ports

DIALECT = "dx"


@dataclass(frozen=True)
class DxDeployment:
    """A validated DX deployment: the core draft and its idempotency key."""

    draft: DeploymentDraft
    reference_id: str


def check_code_data(store: Ports, space_id: str, request: DxDeployment) -> None:
    """``integration_branch_not_valid``: the integration branch is the repository's default branch (known
    once a push or pull request of the repository arrived). A deployment stored already under the
    request's ``reference_id`` with that integration branch passes: it was accepted before the default
    branch was known, and a client's retry of it answers the stored deployment (a create) or replaces it
    keeping that branch (an upsert)."""
    draft = request.draft
    if not (_names_a_branch(draft) and draft.repository):
        return
    try:
        _check_branch(draft, store.code(space_id).default_branch(draft.repository))
    except DoraError:
        if not _stored_with_branch(store, space_id, request):
            raise


def _stored_with_branch(store: Ports, space_id: str, request: DxDeployment) -> bool:
    """Whether the deployment stored under the request's ``reference_id`` names its integration branch."""
    repository = store.deployments()
    target = repository.idempotency_target(space_id, DIALECT, request.reference_id)
    stored = repository.get(space_id, target) if target is not None else None
    return stored is not None and stored.integration_branch == request.draft.integration_branch


def _names_a_branch(draft: DeploymentDraft) -> bool:
    return draft.integration_branch is not None and draft.repository is not None


def _check_branch(draft: DeploymentDraft, default: str | None) -> None:
    if default is not None and default == draft.integration_branch:
        raise RequestInvalidError(
            f"integration_branch '{draft.integration_branch}' is the default branch of '{draft.repository}'",
            field="integration_branch",
            code="integration_branch_not_valid",
        )


def _exists(reference_id: str) -> ResourceConflictError:
    return ResourceConflictError(
        f"reference_id '{reference_id[:128]}' already exists with different values",
        field="reference_id",
        code="reference_id_exists",
    )


def create(store: Ports, space: SpaceRecord, request: DxDeployment, now: datetime) -> WriteOutcome:
    """``deployments.create``: the same reference_id and values again answers the same deployment;
    different values a 409 ``reference_id_exists`` (only those: a write cancelled by concurrent writes
    is a 503 ``write_contended``, a deployment removed meanwhile a 409 ``conflict``, both to retry)."""
    check_code_data(store, space.id, request)
    try:
        return deployments.ingest(store, space, request.draft, now, idempotency=(DIALECT, request.reference_id))
    except ResourceConflictError as error:
        if error.code != ID_REUSED:
            raise
        raise _exists(request.reference_id) from None


def upsert(store: Ports, space: SpaceRecord, request: DxDeployment, now: datetime) -> WriteOutcome:
    """``deployments.upsert``: create, or replace the deployment of ``reference_id`` in one transaction
    (it keeps its id; ``replacements``: what a replacement attributes again)."""
    check_code_data(store, space.id, request)
    return replacements.create_or_replace(store, space, request.draft, (DIALECT, request.reference_id), now)


@dataclass(frozen=True)
class RowOutcome:
    """One backfill row's result: a deployment (new or already there) or a DX error."""

    row: int
    reference_id: str | None
    outcome: WriteOutcome | DoraError


def backfill(
    store: Ports, space: SpaceRecord, rows: Sequence[tuple[int, DxDeployment | DoraError]], now: datetime
) -> list[RowOutcome]:
    """``deployments.backfill``: every row is created like ``deployments.create`` (never replacing:
    a known reference_id with other values is that row's ``reference_id_exists``, and only that: a
    row's other errors keep their own codes, ``write_contended`` among them), all rows together
    through the bulk write path (``deployments.ingest_many``): the code data checks read each
    repository once, the rows are stored in multi-item transactions, their attributions deferred."""
    checked = _check_rows(store, space.id, rows)
    items = [
        parsed if isinstance(parsed, DoraError) else deployments.BulkItem(parsed.draft, (DIALECT, parsed.reference_id))
        for _, parsed in checked
    ]
    results: list[RowOutcome] = []
    for (row, parsed), outcome in zip(checked, deployments.ingest_many(store, space, items, now), strict=True):
        reference_id = None if isinstance(parsed, DoraError) else parsed.reference_id
        conflict = isinstance(outcome, ResourceConflictError) and outcome.code == ID_REUSED and reference_id is not None
        results.append(RowOutcome(row, reference_id, _exists(reference_id or "") if conflict else outcome))
    return results


def _check_rows(
    store: Ports, space_id: str, rows: Sequence[tuple[int, DxDeployment | DoraError]]
) -> list[tuple[int, DxDeployment | DoraError]]:
    """``check_code_data`` of every valid row, a row that fails it replaced by its error, with the reads
    shared: the repositories' default branches in one batched read (a refused row's stored twin, rare, by itself)."""
    code = store.code(space_id)
    drafts = [parsed.draft for _, parsed in rows if not isinstance(parsed, DoraError)]
    repositories = {d.repository for d in drafts if _names_a_branch(d) and d.repository}
    defaults = code.default_branches_of(repositories) if repositories else {}
    checked: list[tuple[int, DxDeployment | DoraError]] = []
    for row, parsed in rows:
        if not isinstance(parsed, DoraError):
            try:
                _check_branch(parsed.draft, defaults.get(parsed.draft.repository or ""))
            except DoraError as error:
                if not _stored_with_branch(store, space_id, parsed):
                    checked.append((row, error))
                    continue
        checked.append((row, parsed))
    return checked
