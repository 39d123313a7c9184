"""Create a deployment under an idempotency key, or replace the one stored under it in one transaction
(it keeps its id): DX's upsert (``logic.dx.upsert``), and a code host's later final status of one deployment
(``handlers.code_webhooks``: a failure, then a success of the same GitHub deployment).

A replacement that takes a success out of its place (``_vacated``) plans attributing again the successes
whose shipment started where it ended. When the new version is a success of the same stream at another
place, that is one removal and one arrival (``corrections.arrive``): the successes whose shipment starts at
a mark the new version holds at its new place are planned too, each judged by the attribution it has before
the replacement resets it, and the new version's attempt is rewound (its ledger reads the stream's marks as
they stood before it, not those of the planned ones after it, whose attributions it undoes first:
``attribution.replacing``). All are attempted in the final stream order. When the new version's commit is
not in the code data yet, only the removal is planned: the new version's own attempt, once it resolves,
takes back what later successes shipped, as a late arrival's does. A replacement that keeps a success in
place reads nothing more than the replacement itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dora_insights.domain.figures import stream_order_key
from dora_insights.domain.model import Deployment, DeploymentDraft
from dora_insights.domain.records import SpaceRecord, WriteOutcome
from dora_insights.domain.times import format_instant
from dora_insights.errors import ResourceConflictError
from dora_insights.logic import attribution, catalogue, corrections, deployments, succession
from dora_insights.logic.ports import Ports

# Operations left in the replacing transaction (100 at most) after the deployment, its idempotency
# record and the dirty marks of its old and new streams. The successes attributed again take theirs
# first (two each: at most ``succession.MAX_FOLLOWING`` from the old place and as many from the new one,
# 80), then the new version's outbox item, the undoing of the old version's attribution what is left
# (deferred to the outbox item when it does not fit).
_REPLACE_ROOM = 96


def create_or_replace(
    store: Ports, space: SpaceRecord, draft: DeploymentDraft, key: tuple[str, str], now: datetime
) -> WriteOutcome:
    """Create the deployment of ``key``, or replace the one stored under it (its id kept)."""
    outcome = _create_or_replace(store, space, draft, key, now, later_only=False)
    if outcome is None:  # pragma: no cover - only ``later_only`` declines
        raise ResourceConflictError("the deployment is being written by another request; retry")
    return outcome


def create_or_replace_later(
    store: Ports, space: SpaceRecord, draft: DeploymentDraft, key: tuple[str, str], now: datetime
) -> WriteOutcome | None:
    """Create the deployment of ``key``, or replace the one stored under it when the draft finishes after
    it (a later final status of one deployment: the deployment's outcome is its latest status's, whatever
    order they were delivered in); None when it does not (an older or simultaneous status delivered late:
    the stored one stands)."""
    return _create_or_replace(store, space, draft, key, now, later_only=True)


def _create_or_replace(
    store: Ports, space: SpaceRecord, draft: DeploymentDraft, key: tuple[str, str], now: datetime, *, later_only: bool
) -> WriteOutcome | None:
    try:
        return deployments.ingest(store, space, draft, now, idempotency=key)
    except ResourceConflictError:
        pass
    target = store.deployments().idempotency_target(space.id, *key)
    old = None if target is None else store.deployments().get(space.id, target, consistent=True)  # just created?
    if old is None:  # removed meanwhile (with its record), or still being written: the client retries
        raise ResourceConflictError("the deployment is being written or removed by another request; retry")
    if later_only and format_instant(draft.finished_at) <= old.finished_at:
        return None
    # Names the replacement brings are registered before it is written (it needs their ids): only a
    # replacement a concurrent change cancels (a 409 or 503 to retry) leaves them, as a retry uses them.
    # Its new tenant tags are recorded once it is stored.
    entities = catalogue.resolve(store, space.id, deployments.wanted_entities(space, draft))
    new = deployments.build_deployment(space, draft, entities, now, deployment_id=old.id)
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
    catalogue.remember_tenant_tags(store, space.id, entities, draft.tenant_tags)
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
    no success, or in another stream, or names no code any more (a success naming none is walked past),
    or moved past the next success or before the previous one. The
    stream's next success naming code, and those after it whose start moves, are attributed again as when
    ``old`` is deleted (``corrections.vacate``): the plan and those deployments, in stream order.
    Nothing is read when ``new`` is a success of the same stream at the same place (the common case); one
    read of the stream's index when it moved later within it, two when earlier."""
    plan = corrections.Plan()
    if not old.is_successful:
        return plan, []  # no success's shipment started where it ended
    dropped_code = attribution.owes_attribution(old) and not attribution.owes_attribution(new)
    if new.is_successful and new.stream_key == old.stream_key and not dropped_code:
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
