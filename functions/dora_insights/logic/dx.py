"""DX dialect use cases: create, upsert (create or replace by ``reference_id``) and CSV backfill.

Every deployment goes through ``logic.deployments`` (the core write path) with the idempotency
key ``("dx", reference_id)``, so a DX deployment looks like any other. Checks that need stored
code data live here: ``integration_branch_not_valid`` (the branch is the repository's known
default branch) and ``merge_commit_shas_not_found`` (see ``check_code_data``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from dora_insights.domain.attribution import GIVE_UP_AFTER
from dora_insights.domain.model import DeploymentDraft
from dora_insights.domain.records import SpaceRecord, WriteOutcome
from dora_insights.errors import ID_REUSED, DoraError, RequestInvalidError, ResourceConflictError
from dora_insights.logic import deployments, replacements
from dora_insights.logic.ports import Ports

if TYPE_CHECKING:
    from dora_insights.domain.changes import PullRequest

DIALECT = "dx"


@dataclass(frozen=True)
class DxDeployment:
    """A validated DX deployment: the core draft and its idempotency key."""

    draft: DeploymentDraft
    reference_id: str


def check_code_data(store: Ports, space_id: str, draft: DeploymentDraft, now: datetime) -> None:
    """What can be known about the code a deployment names at ingest time.

    - ``integration_branch_not_valid``: the integration branch is the repository's default branch
      (known once a push or pull request of the repository arrived).
    - ``merge_commit_shas_not_found``: only for a deployment older than the attribution's give-up
      window (3 days, METRICS §5), when one of its merge commit shas matches no stored pull request:
      no retry could ever find it. Younger deployments are accepted and attribution waits for the
      code data (DX: "attribution will be retried until relevant data is found for up to three days").
    """
    code = store.code(space_id)
    default = code.default_branch(draft.repository) if _names_a_branch(draft) and draft.repository else None
    _check_branch(draft, default)
    if _checks_shas(draft, now):
        _check_shas(draft, code.pull_requests_by_sha(draft.merge_commit_shas or (), None))


def _names_a_branch(draft: DeploymentDraft) -> bool:
    return draft.integration_branch is not None and draft.repository is not None


def _checks_shas(draft: DeploymentDraft, now: datetime) -> bool:
    return bool(draft.merge_commit_shas) and draft.finished_at < now - GIVE_UP_AFTER


def _check_branch(draft: DeploymentDraft, default: str | None) -> None:
    if default is not None and default == draft.integration_branch:
        raise RequestInvalidError(
            f"integration_branch '{draft.integration_branch}' is the default branch of '{draft.repository}'",
            field="integration_branch",
            code="integration_branch_not_valid",
        )


def _check_shas(draft: DeploymentDraft, found: Sequence[PullRequest]) -> None:
    shas = draft.merge_commit_shas or ()
    missing = [sha for sha in shas if not any(pr.merged_by(sha) for pr in found)]
    if missing:
        raise RequestInvalidError(
            f"merge_commit_shas not found: {', '.join(missing[:10])}",
            field="merge_commit_shas",
            code="merge_commit_shas_not_found",
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
    check_code_data(store, space.id, request.draft, now)
    try:
        return deployments.ingest(store, space, request.draft, now, idempotency=(DIALECT, request.reference_id))
    except ResourceConflictError as error:
        if error.code != ID_REUSED:
            raise
        raise _exists(request.reference_id) from None


def upsert(store: Ports, space: SpaceRecord, request: DxDeployment, now: datetime) -> WriteOutcome:
    """``deployments.upsert``: create, or replace the deployment of ``reference_id`` in one transaction
    (it keeps its id; ``replacements``: what a replacement attributes again)."""
    check_code_data(store, space.id, request.draft, now)
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
    checked = _check_rows(store, space.id, rows, now)
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
    store: Ports, space_id: str, rows: Sequence[tuple[int, DxDeployment | DoraError]], now: datetime
) -> list[tuple[int, DxDeployment | DoraError]]:
    """``check_code_data`` of every valid row, a row that fails it replaced by its error, with the reads
    shared: each repository's default branch is read once, and one lookup of every old row's merge
    commit shas answers them all."""
    code = store.code(space_id)
    drafts = [parsed.draft for _, parsed in rows if not isinstance(parsed, DoraError)]
    repositories = {d.repository for d in drafts if _names_a_branch(d) and d.repository}
    defaults = {repository: code.default_branch(repository) for repository in sorted(repositories)}
    shas = {sha for d in drafts if _checks_shas(d, now) for sha in d.merge_commit_shas or ()}
    found = code.pull_requests_by_sha(shas, None) if shas else ()
    checked: list[tuple[int, DxDeployment | DoraError]] = []
    for row, parsed in rows:
        if not isinstance(parsed, DoraError):
            draft = parsed.draft
            try:
                _check_branch(draft, defaults.get(draft.repository or ""))
                if _checks_shas(draft, now):
                    _check_shas(draft, found)
            except DoraError as error:
                checked.append((row, error))
                continue
        checked.append((row, parsed))
    return checked
