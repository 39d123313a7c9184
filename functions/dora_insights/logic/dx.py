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
from typing import TYPE_CHECKING, Any

from dora_insights.domain.attribution import GIVE_UP_AFTER
from dora_insights.domain.figures import stream_order_key
from dora_insights.domain.model import Deployment, DeploymentDraft
from dora_insights.domain.records import SpaceRecord, WriteOutcome
from dora_insights.domain.times import format_instant
from dora_insights.errors import ID_REUSED, DoraError, RequestInvalidError, ResourceConflictError
from dora_insights.logic import attribution, catalogue, corrections, deployments, succession
from dora_insights.logic.ports import Ports

if TYPE_CHECKING:
    from dora_insights.domain.changes import PullRequest

DIALECT = "dx"
# Operations left in the replacing transaction (100 at most) after the deployment, its idempotency
# record and the dirty marks of its old and new streams. The successes attributed again take theirs
# first (two each: at most ``succession.MAX_FOLLOWING`` from the old place and as many from the new one,
# 80), then the new version's outbox item, the undoing of the old version's attribution what is left
# (deferred to the outbox item when it does not fit).
_REPLACE_ROOM = 96


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
    (it keeps its id).

    A replacement that takes a success out of its place (``_vacated``) plans attributing again the
    successes whose shipment started where it ended. When the new version is a success of the same stream
    at another place, that is one removal and one arrival (``corrections.arrive``): the successes whose
    shipment starts at a mark the new version holds at its new place are planned too, each judged by the
    attribution it has before the replacement resets it, and the new version's attempt is rewound (its
    ledger reads the stream's marks as they stood before it, not those of the planned ones after it, whose
    attributions it undoes first: ``attribution.replacing``). All are attempted in the final stream order.
    When the new version's commit is not in the code data yet, only the removal is planned: the new
    version's own attempt, once it resolves, takes back what later successes shipped, as a late arrival's
    does. An upsert that keeps a success in place reads nothing more than the replacement."""
    check_code_data(store, space.id, request.draft, now)
    key = (DIALECT, request.reference_id)
    try:
        return deployments.ingest(store, space, request.draft, now, idempotency=key)
    except ResourceConflictError:
        pass
    target = store.deployments().idempotency_target(space.id, *key)
    old = None if target is None else store.deployments().get(space.id, target, consistent=True)  # just created?
    if old is None:  # pragma: no cover - the record and its deployment are written together
        raise ResourceConflictError("the deployment is being written by another request; retry")
    entities = catalogue.resolve(store, space.id, deployments.wanted_entities(space, request.draft))
    catalogue.remember_tenant_tags(store, space.id, entities, request.draft.tenant_tags)
    new = deployments.build_deployment(space, request.draft, entities, now, deployment_id=old.id)
    # A success taken out of its place: the successes after it are attributed again (``_vacated``).
    plan, chain = _vacated(store, space.id, old, new, now)
    # Moved within its stream: an arrival at its new place too, the new version's attempt rewound.
    arrived = None
    if _moved_within(old, new, chain):
        arrived = corrections.arrive(store, space.id, new, now, plan, planned=chain)
        chain = chain if arrived is None else arrived
    # The old version's attribution goes with it: undone in the same transaction where it fits (in the
    # room the successors' operations leave), and the new version is owed its own (an outbox item, as at
    # ingest), attempted at once.
    room = _REPLACE_ROOM - len(plan.operations)
    rewound = None if arrived is None else _handed(plan, chain, new)
    also, outbox = attribution.replacing(store, space.id, old, new, now, room=room, rewound=rewound)
    outcome = store.deployments().replace(
        old, new, idempotency=key, now=format_instant(now), also=[*also, *plan.operations]
    )
    # The attempts in the stream order of the final history: the successes before the new version first.
    # Not when the old version's attribution is still to undo (its outbox item's ``superseded``): the new
    # version's attempt undoes it, so it goes first (and may wait for them: its retry resolves it).
    deferred = outbox is not None and bool(outbox.get("superseded"))
    before = 0 if deferred else _before(chain, new)
    corrections.follow(store, space.id, corrections.Plan(follow=plan.follow[:before]), now)
    # The version stored (its revision moved on, what the replacement keeps), not the one built above:
    # the attribution write is conditional on the revision it read.
    attribution.attribute_at_ingest(store, space.id, outcome.deployment, now, outbox=outbox)
    corrections.follow(store, space.id, corrections.Plan(follow=plan.follow[before:]), now)
    return outcome


def _moved_within(old: Deployment, new: Deployment, chain: list[Deployment]) -> bool:
    """Whether the new version is a success owed an attribution in ``old``'s stream that ``_vacated`` took out
    of its place (``chain``, the successes it attributes again, is not empty: so at another place in it)."""
    return bool(chain) and new.stream_key == old.stream_key and attribution.owes_attribution(new)


def _handed(plan: corrections.Plan, chain: list[Deployment], new: Deployment) -> list[dict[str, Any]]:
    """What the new version's rewound attempt undoes first: the attributions of the deployments planned
    after its place (``plan.undo``: as each one's own attempt undoes it again, idempotently), so that it
    ships its own range whatever they had shipped of it."""
    position = stream_order_key(new)
    return [
        {"deployment_id": d.id, "leftovers": plan.undo[d.id]}
        for d in chain
        if d.stream_key == new.stream_key and stream_order_key(d) > position and d.id in plan.undo
    ]


def _vacated(
    store: Ports, space_id: str, old: Deployment, new: Deployment, now: datetime
) -> tuple[corrections.Plan, list[Deployment]]:
    """What the replacement also writes when ``old`` was a success that ``new`` takes out of its place in
    its stream (METRICS §5: a deployment ships what came after its stream's previous success): ``new`` is
    no success, or in another stream, or moved past the next success or before the previous one. The
    stream's next success naming code, and those after it whose start moves, are attributed again as when
    ``old`` is deleted (``corrections.vacate``): the plan and those deployments, in stream order.
    Nothing is read when ``new`` is a success of the same stream at the same place (the common case); one
    read of the stream's index when it moved later within it, two when earlier."""
    plan = corrections.Plan()
    if not old.is_successful:
        return plan, []  # no success's shipment started where it ended
    if new.is_successful and new.stream_key == old.stream_key:
        moved_to = stream_order_key(new)
        if moved_to == stream_order_key(old):
            return plan, []
        successor = succession.successor_of(store, space_id, old)
        if successor is None:
            return plan, []
        if moved_to < stream_order_key(successor) and not _before_previous(store, space_id, old, moved_to):
            return plan, []  # still between the same successes
    else:
        successor = succession.successor_of(store, space_id, old)
    return plan, corrections.vacate(store, space_id, old, successor, now, plan)


def _before_previous(store: Ports, space_id: str, old: Deployment, moved_to: tuple[str, str, str]) -> bool:
    """Whether ``old``, moved earlier to ``moved_to``, now precedes its stream's previous success (its
    successor's previous success is another one then)."""
    if moved_to > stream_order_key(old):
        return False
    previous = store.attribution(space_id).previous_success(old)
    return previous is not None and moved_to < stream_order_key(previous)


def _before(chain: list[Deployment], new: Deployment) -> int:
    """How many of the successors attributed again (``chain``, in stream order) come before the new version
    in the final history: those of its stream ordered before it (the new version in another stream is
    attempted first: attempts in different streams do not wait for each other)."""
    position = stream_order_key(new)
    return sum(1 for d in chain if d.stream_key == new.stream_key and stream_order_key(d) < position)


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
