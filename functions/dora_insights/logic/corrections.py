"""Corrections and removals of deployments and failure events (issue 16): the use cases every
dialect's PATCH and DELETE call (the native routes and Datadog's).

A correction or a removal is one transaction (``DeploymentRepository.correct`` / ``delete``): the
change, conditional on the deployment as read (its ``revision`` and its attribution's attempts), the
stream's dirty mark, a ``CorrectionRecord`` (who, when, before/after) and what attribution must do
about it. A concurrent change makes the transaction fail: it is read and applied again (at most
``_ATTEMPTS`` times, then 409), unless the caller named the revision it read (``expected_revision``:
then 412 as soon as the stored one differs). Absent, the last writer wins. A transaction cancelled only
because other writes held its items (the stream's dirty mark, which every ingest updates) changed
nothing: the adapter sends it again after short pauses, and one still contended is a 503
``write_contended`` for the client to retry (``WriteContendedError``), never a 409 or, for a failure
event's removal, a 404.

Through the numbers (METRICS §2, §3, §5):

- The figures follow at the stream's next recompute (the dirty mark), or at once when a read brings
  the stream up to date (``logic/freshness.py``): the override and the remediation are applied by the
  figures engine (``domain/figures.py``), the state and version are the deployment's.
- Release lead times: a release's first-seen time is read across the project (METRICS §3), so a
  correction that changes a version, or the removal of a deployment that has one, also marks the
  project's other streams dirty, in the same transaction (``DeploymentRepository.correct`` / ``delete``).
- Attribution: a stream's successful deployments share out its changes, each shipping what came
  after its previous success and the stream's branch marks. Deleting a successful deployment, or
  correcting the state of one so that it becomes successful or stops being so, changes what the next
  successful deployment of the stream that names code shipped (past successes that name none, which
  ship nothing: ``successor_of``), and, for a state correction, what the deployment itself shipped. When
  that successor deployed an older commit (it shipped nothing new, or stopped short of the corrected
  deployment's mark), the successes after it start at the mark the correction moves too: they are
  attributed again as well, up to the first one whose start stays (``succession.following``: it shipped up to
  or past that mark, or on other branches only), at most ``succession.MAX_FOLLOWING``; a success not
  attributed yet is walked past (its own attempt comes, and takes back what later ones shipped of its
  changes, ``logic/attribution``). A DX upsert moving a success within its stream is a removal from its
  old place (``vacate``) and an arrival at its new one (``arrive``), planned together. Those deployments are
  attributed again through the attribution's own path (``logic/attribution.attribute_deployment``):
  the transaction writes their outbox items (``AttributionRepository.redo``: undo their attribution
  and the deleted one's ledger entries, pages and branch marks, then attribute rewound to the
  stream's marks as they stood before them), and the attempts run right after it, in stream order. So
  the next deployments take over the changes a deleted one had shipped, with the lead time they give.
  Should an attempt fail there, the outbox item stays and the recompute's sweep re-drives it.
  Corrections send no retry message (their routes have no queue permission): a pending attempt waits
  for the sweep or for the code data that wakes it.
- A stream whose last deployment is deleted gets an empty figures generation from its recompute (its
  dirty mark: the schedule's next tick, or a read that brings the stream up to date first), so
  ``/summary`` and reports stop counting it (``logic/recompute.recompute_stream``).
- Catalogue entities (projects, environments, ...) stay registered: ids are never reused and no
  catalogue item counts deployments, so a removal leaves nothing to decrement.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dora_insights.domain.attribution import maybe_repository
from dora_insights.domain.corrections import (
    CorrectionRecord,
    DeploymentCorrection,
    apply_correction,
    removal_snapshot,
)
from dora_insights.domain.figures import stream_order_key
from dora_insights.domain.ids import new_id
from dora_insights.domain.model import Attribution, CatalogueKind, Deployment, FailureEvent
from dora_insights.domain.times import format_instant
from dora_insights.errors import (
    PreconditionFailedError,
    RequestInvalidError,
    ResourceConflictError,
    ResourceNotFoundError,
)
from dora_insights.logic import attribution, deployments, failures, spaces, succession
from dora_insights.logic.auth import Principal
from dora_insights.logic.ports import Ports, Rewind
from dora_insights.observability import logger

__all__ = [
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "DeploymentCorrection",
    "Plan",
    "actor_of",
    "correct_deployment",
    "delete_deployment",
    "delete_failure",
    "find_deployment_by_version",
    "follow",
    "get_failure",
    "list_corrections",
    "vacate",
]

MAX_PAGE = 500
DEFAULT_PAGE = 50
_ATTEMPTS = 3  # reads and transactions of one correction before it answers 409
# How long an index may lag its table in AWS ("usually within a fraction of a second"): a patch by
# version whose search of the project's index read every candidate and found none reads it once more
# after this pause (a search stopped at its read bound does not: the version is an old one, not a new one).
INDEX_LAG_SECONDS = 1.0


def actor_of(caller: Principal) -> str:
    """Who a correction record names: the API key's user (else its name) and its id."""
    return f"{caller.display_name} ({caller.key_id})"


def _deployment(store: Ports, space_id: str, deployment_id: str) -> Deployment:
    """The deployment as stored now (a consistent read: a revision just written is the one compared)."""
    return deployments.stored_deployment(store, space_id, deployment_id, consistent=True)


def _record(space_id: str, target_id: str, *, actor: str, now: datetime, **what: Any) -> CorrectionRecord:
    """The record of a correction ``actor`` made to ``target_id`` at ``now``; ``what``: the rest of the
    ``CorrectionRecord`` (its ``action``, and ``target``, ``revision``, ``changes`` or ``removed``)."""
    return CorrectionRecord(
        id=new_id(now), space_id=space_id, target_id=target_id, actor=actor, at=format_instant(now), **what
    )


def _stale(expected: int, current: int) -> PreconditionFailedError:
    return PreconditionFailedError(
        f"revision {expected} is not the deployment's current revision ({current}): read it again, then retry",
        field="revision",
    )


# ---------------------------------------------------------------------------------------------
# Re-attribution plans


@dataclass
class Plan:
    """What a correction's (or a replacement's) transaction also writes for attribution, and the attempts
    to run after it (deployment ids, in stream order: a deleted one's id undoes its leftovers); ``undo``:
    what each deployment planned undoes of its own attribution first, by id (its ``Rewind.superseded``)."""

    operations: list[dict[str, Any]] = field(default_factory=list)
    follow: list[str] = field(default_factory=list)
    undo: dict[str, Mapping[str, Any]] = field(default_factory=dict)


def _awaiting(store: Ports, space_id: str, deployment: Deployment) -> list[dict[str, str]]:
    """The pending-index entries a deployment's attribution may have written (only a pending one did,
    keyed by what it names and, blocked by its previous success, by that one's shas)."""
    current = deployment.attribution
    if current is None or current.state != "Pending":
        return []
    previous = store.attribution(space_id).previous_success(deployment)
    return attribution.awaiting_keys(store, space_id, deployment, previous=previous)


def _leftovers(store: Ports, space_id: str, deployment: Deployment) -> dict[str, Any] | None:
    """What a deployment's attribution left to undo (ledger entries, pages, marks, pending entries)."""
    repository = store.attribution(space_id)
    return repository.superseded(
        deployment, _awaiting(store, space_id, deployment), maybe_repository(deployment.repository)
    )


def _redo(store: Ports, space_id: str, deployment: Deployment, now: datetime, plan: Plan, rewind: Rewind) -> None:
    """Plan attributing ``deployment`` again (``AttributionRepository.redo``) and its attempt."""
    due = format_instant(now + attribution.OUTBOX_AFTER)
    operations, _ = store.attribution(space_id).redo(deployment, rewind, due=due, now=format_instant(now))
    plan.operations += operations
    plan.follow.append(deployment.id)
    if rewind.superseded:
        plan.undo[deployment.id] = rewind.superseded


def _state_plan(
    store: Ports, space_id: str, old: Deployment, new: Deployment, now: datetime
) -> tuple[Plan, Deployment]:
    """A state correction that makes a deployment successful or stops it being so: attribute it again
    (undoing what it shipped), then the next successful deployment of its stream and those after it
    whose shipment starts at a mark the correction moves (``succession.following``). Answers the plan and the
    deployment to write (its attribution a Pending placeholder when it had one).

    A deployment that becomes successful ships changes those successors had shipped: their attributions
    are undone before its own attempt (``clean_also``), so the changes are free to take. When its commit is
    not in the code data yet, where its shipment ends is not known: nothing else is planned, and its attempt
    is not rewound; once it resolves it takes back what later successes shipped, as a late arrival's does
    (``logic/attribution._hand_back``)."""
    plan = Plan()
    successor = succession.successor_of(store, space_id, old)
    reach = (
        succession.reach_once_successful(store, space_id, new, successor)
        if new.is_successful
        else succession.recorded_marks(old)
    )
    following = [
        (d, _leftovers(store, space_id, d))
        for d in ([] if reach is None else succession.following(store, space_id, successor, reach))
    ]
    if attribution.has_code_inputs(new) or old.attribution is not None:
        handed = (
            [{"deployment_id": d.id, "leftovers": leftovers} for d, leftovers in following if leftovers]
            if new.is_successful
            else []
        )
        superseded = _leftovers(store, space_id, old)
        _redo(store, space_id, new, now, plan, Rewind(superseded, clean_also=handed, rewound=reach is not None))
        if old.attribution is not None:
            placeholder = Attribution(state="Pending", attempts=old.attribution.attempts + 1)
            new = new.model_copy(update={"attribution": placeholder})
    for deployment, leftovers in following:
        _redo(store, space_id, deployment, now, plan, _again(deployment, leftovers))
    return plan, new


def _again(deployment: Deployment, leftovers: Mapping[str, Any] | None, handed: Sequence[Any] = ()) -> Rewind:
    """How a success whose shipment starts where a correction or a removal moved attributes again: reset, and
    rewound to the stream's marks as they stood before it when it was attributed already. One still waiting
    for its code data or its first attempt (``succession.waits``: the walk's first, ``successor_of``) is not
    rewound: it ships later than successes attributed meanwhile, so its attempt takes back what they shipped
    once it resolves, as a late arrival's does (rewound, it would read its range as free while they hold
    it). A placeholder an earlier plan wrote, whose attempt has not run, stays rewound, as planned."""
    placeholder = deployment.attribution is not None and deployment.attribution.is_placeholder
    rewound = placeholder or not succession.waits(deployment)
    return Rewind(leftovers, clean_also=handed, reset=True, rewound=rewound)


def vacate(
    store: Ports,
    space_id: str,
    old: Deployment,
    successor: Deployment | None,
    now: datetime,
    plan: Plan,
    *,
    handed_over: Mapping[str, Any] | None = None,
) -> list[Deployment]:
    """Plan attributing again, in stream order, the successes whose shipment started where ``old``'s ended,
    now that ``old`` leaves its place in its stream (deleted, or replaced by a version that is not there as
    a success: ``logic/dx.upsert``): ``successor``, its stream's next success naming code (``successor_of``,
    None when ``old`` was no success), and those after it whose start moves with ``old``'s marks
    (``succession.following``: successes not attributed yet are walked past, their own attempts come). Each
    is rewound and reset to a placeholder (``_redo``), the first one undoing ``handed_over`` first (what
    ``old``'s attribution left, for a deletion). Answers the deployments planned, in stream order (none:
    there is no successor)."""
    chain = succession.following(store, space_id, successor, succession.recorded_marks(old))
    for n, deployment in enumerate(chain):
        handed = [{"deployment_id": old.id, "leftovers": handed_over}] if handed_over and n == 0 else []
        leftovers = _leftovers(store, space_id, deployment)
        _redo(store, space_id, deployment, now, plan, _again(deployment, leftovers, handed))
    return chain


def arrive(
    store: Ports, space_id: str, new: Deployment, now: datetime, plan: Plan, *, planned: Sequence[Deployment] = ()
) -> list[Deployment] | None:
    """Plan attributing again, rewound, the successes of ``new``'s stream whose shipment started at a mark
    ``new`` holds at its place: a DX replacement that moves a success within its stream (``logic/dx.upsert``)
    is a removal from its old place (``vacate``, whose deployments are ``planned``) and an arrival at its new
    one, this. As the late-arrival path finds them at the attempt (``logic/attribution._hand_back``): the
    first success after ``new``'s place whose attribution is final (``succession.first_attributed``), and
    those after it whose start moves (``succession.following``), judged as read before the plan's
    transaction: the deployments of ``planned`` by the attribution they have before it resets them. ``new``'s
    stored version, at its old place until that transaction, is walked past. Those of ``planned`` are not
    planned twice. Answers all of them (``planned`` and these), in stream order; None, planning nothing, when
    ``new``'s commit is not in the code data yet (where its shipment ends is not known: its own attempt, not
    rewound, takes back what later successes shipped once it resolves, as a late arrival's does).

    Reads: the stream's index from ``new``'s place (one Query a success: the successor and each one walked),
    and ``new``'s commit in the code data unless the successor shipped it (``reach_once_successful``)."""
    skip = {new.id}
    successor = succession.first_attributed(store, space_id, succession.successor_of(store, space_id, new), skip=skip)
    reach = succession.reach_once_successful(store, space_id, new, successor)
    if reach is None:
        return None
    chain = succession.following(store, space_id, successor, reach, skip=skip)
    known = {d.id for d in planned}
    for deployment in chain:
        if deployment.id not in known:
            _redo(store, space_id, deployment, now, plan, Rewind(_leftovers(store, space_id, deployment), reset=True))
    everyone = {d.id: d for d in [*planned, *chain]}
    ordered = sorted(everyone.values(), key=lambda d: (d.stream_key, stream_order_key(d)))
    plan.follow = [d.id for d in ordered]
    return ordered


def follow(store: Ports, space_id: str, plan: Plan, now: datetime) -> None:
    """Run a plan's attempts now, in order (after its transaction); a failure leaves its outbox item to
    the sweep. Each reads its deployment as the transaction wrote it (a strongly consistent read: one that is
    not may still answer the version before the correction, whose attribution may look final)."""
    deployments = store.deployments()
    for deployment_id in plan.follow:
        try:
            known = deployments.get(space_id, deployment_id, consistent=True)
            if known is None:  # deleted: what its attribution left, handed to its own outbox item
                attribution.finish_removal(store, space_id, deployment_id)
                continue
            attribution.attribute_deployment(store, space_id, deployment_id, now, known=known, enqueue=False)
        except Exception:
            logger.exception(
                "attribution after a correction failed; the sweep re-drives it",
                extra={"space_id": space_id, "deployment_id": deployment_id},
            )


# ---------------------------------------------------------------------------------------------
# Deployments


def _check_remediation(store: Ports, space_id: str, deployment: Deployment, correction: DeploymentCorrection) -> None:
    """A remediation named by id must be a later deployment of the same stream (400 otherwise); one
    named by version is resolved by the figures engine (it may not have been deployed yet)."""
    remediation = correction.remediation
    if remediation is None or remediation.id is None:
        return
    if remediation.id == deployment.id:
        raise RequestInvalidError("a deployment does not remediate itself", field="remediation.id")
    named = store.deployments().get(space_id, remediation.id, consistent=True)  # perhaps posted a moment ago
    if named is None:
        raise RequestInvalidError(f"no deployment '{remediation.id}' in this space", field="remediation.id")
    if named.stream_key != deployment.stream_key:
        raise RequestInvalidError(
            "the remediation must be a deployment of the same project, environment, tenant and channel",
            field="remediation.id",
        )
    if stream_order_key(named) <= stream_order_key(deployment):
        raise RequestInvalidError("the remediation must be a later deployment of the stream", field="remediation.id")


def correct_deployment(
    store: Ports,
    space_id: str,
    deployment_id: str,
    correction: DeploymentCorrection,
    *,
    actor: str,
    now: datetime,
    expected_revision: int | None = None,
) -> Deployment:
    """Apply a correction to a deployment of the space and record it (module docstring); the corrected
    deployment, with its figures as last computed. 404 for an unknown id (or another space's), 412 when
    ``expected_revision`` is not the stored revision, 400 for a remediation that names no later
    deployment of the stream. A correction that changes nothing writes nothing."""
    at = format_instant(now)
    for _ in range(_ATTEMPTS):
        old = _deployment(store, space_id, deployment_id)
        if expected_revision is not None and old.revision != expected_revision:
            raise _stale(expected_revision, old.revision)
        _check_remediation(store, space_id, old, correction)
        new, changes = apply_correction(old, correction)
        if not changes:
            return deployments.with_figures(store, space_id, old)
        new = new.model_copy(update={"revision": old.revision + 1})
        plan = Plan()
        if old.is_successful != new.is_successful:
            plan, new = _state_plan(store, space_id, old, new, now)
        record = _record(
            space_id, deployment_id, actor=actor, now=now, action="correct", revision=new.revision, changes=changes
        )
        if store.deployments().correct(old, new, record=record, now=at, also=plan.operations):
            break
    else:
        raise ResourceConflictError("the deployment kept changing while it was corrected: retry")
    follow(store, space_id, plan, now)
    logger.info(
        "deployment corrected",
        extra={"deployment_id": deployment_id, "fields": sorted(changes), "revision": new.revision},
    )
    return deployments.with_figures(store, space_id, _deployment(store, space_id, deployment_id))


def delete_deployment(
    store: Ports,
    space_id: str,
    deployment_id: str,
    *,
    actor: str,
    now: datetime,
    conditions: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Delete a deployment of the space and record it (module docstring); 404 for an unknown id (or
    another space's). The stream's next successful deployment takes over the changes it had shipped
    (and those after it that deployed older commits, ``succession.following``).
    ``conditions``: ConditionChecks the deletion's transaction also makes (one that fails keeps the
    deployment; after the attempts, a 409)."""
    at = format_instant(now)
    for _ in range(_ATTEMPTS):
        old = _deployment(store, space_id, deployment_id)
        repository = store.attribution(space_id)
        leftovers = _leftovers(store, space_id, old)
        plan = Plan()
        due = format_instant(now + attribution.OUTBOX_AFTER)
        # The successor takes over what the deleted one shipped (its attempt undoes that first).
        successor = succession.successor_of(store, space_id, old) if old.is_successful else None
        handed = bool(vacate(store, space_id, old, successor, now, plan, handed_over=leftovers))
        plan.operations += repository.removal(old, leftovers=None if handed else leftovers, due=due, now=at)
        if not handed and leftovers:
            plan.follow.append(old.id)  # its leftovers are undone by an attempt for the deleted id
        record = _record(
            space_id,
            deployment_id,
            actor=actor,
            now=now,
            action="delete",
            revision=old.revision,
            removed=removal_snapshot(old),
        )
        if store.deployments().delete(old, record=record, now=at, also=[*plan.operations, *conditions]):
            break
    else:
        raise ResourceConflictError("the deployment kept changing while it was deleted: retry")
    follow(store, space_id, plan, now)
    logger.info("deployment deleted", extra={"deployment_id": deployment_id, "handed_over": bool(plan.follow)})


def find_deployment_by_version(
    store: Ports, space_id: str, *, service: str, env: str | None, version: str
) -> Deployment:
    """The latest deployment of project ``service`` with ``version`` in environment ``env`` (None: the
    space's default environment, where events that name none are stored); 404 when there is none."""
    environment = env or spaces.get_space(store, space_id).default_environment
    found = store.find_catalogue_names(  # consistent: a service whose first deployment was just posted
        space_id, [(CatalogueKind.PROJECT, service), (CatalogueKind.ENVIRONMENT, environment)], consistent=True
    )
    project = found.get((CatalogueKind.PROJECT, service.casefold()))
    where = found.get((CatalogueKind.ENVIRONMENT, environment.casefold()))
    deployment = None
    if project is not None and where is not None:
        repository = store.deployments()
        search = repository.find_by_version(space_id, project_id=project.id, environment_id=where.id, version=version)
        if search.deployment is None and search.complete:  # posted a moment ago, it may not be indexed yet
            _pause_for_the_index()
            search = repository.find_by_version(
                space_id, project_id=project.id, environment_id=where.id, version=version
            )
        deployment = search.deployment
    if deployment is None:
        raise ResourceNotFoundError(
            f"no deployment of service '{service}' with version '{version}' in environment '{environment}'"
            " among the service's recent deployments"
        )
    return deployment


def _pause_for_the_index() -> None:
    """Wait ``INDEX_LAG_SECONDS`` for an index to catch up with its table (a function: tests replace it)."""
    time.sleep(INDEX_LAG_SECONDS)


def list_corrections(
    store: Ports, space_id: str, deployment_id: str, *, limit: int = DEFAULT_PAGE, cursor: str | None = None
) -> tuple[list[CorrectionRecord], str | None]:
    """A deployment's correction records, newest first, with an opaque cursor. They outlive the
    deployment (a deleted one's stay readable); 404 when there are none and no such deployment."""
    records, next_cursor = store.deployments().corrections(space_id, deployment_id, limit=limit, cursor=cursor)
    if not records and cursor is None and store.deployments().get(space_id, deployment_id, consistent=True) is None:
        raise ResourceNotFoundError(f"deployment '{deployment_id}' not found")
    return records, next_cursor


# ---------------------------------------------------------------------------------------------
# Failure events


def get_failure(store: Ports, space_id: str, failure_id: str) -> FailureEvent:
    """One failure event of the space; 404 for an unknown id (or another space's)."""
    return failures.get_failure(store, space_id, failure_id)


def delete_failure(store: Ports, space_id: str, failure_id: str, *, actor: str, now: datetime) -> None:
    """Delete a failure event of the space with the dirty marks of the streams it counted in (its
    project and environment, and its cause's) and a record, in one transaction; 404 when unknown."""
    failure = get_failure(store, space_id, failure_id)
    cause_stream = None
    if failure.deployment_id is not None:
        cause = store.deployments().get(space_id, failure.deployment_id, consistent=True)
        cause_stream = cause.stream_key if cause is not None else None
    at = format_instant(now)
    removed: Mapping[str, Any] = failure.model_dump(mode="json", exclude_none=True, exclude={"body_hash"})
    record = _record(
        space_id, failure_id, actor=actor, now=now, target="failure", action="delete", removed=dict(removed)
    )
    if not store.failures().delete(failure, record=record, now=at, also_stream=cause_stream):
        raise ResourceNotFoundError(f"failure event '{failure_id}' not found")
    logger.info("failure event deleted", extra={"failure_id": failure_id})
