"""Retry of a pending attribution (METRICS §5), driven by the retry queue."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from dora_insights.domain.model import Deployment
from dora_insights.logic import attribution
from dora_insights.logic.ports import Ports
from dora_insights.observability import logger

# The retry queue's ``maxReceiveCount`` (template.yaml): a record failing on this receive goes to the DLQ.
MAX_RECEIVES = 5


def dead_letters(receive_count: int) -> bool:
    """Whether a record that fails on its ``receive_count``-th receive ends in the dead-letter queue."""
    return receive_count >= MAX_RECEIVES


class Retried(NamedTuple):
    """What ``retry`` did: the attempt's resulting state (None: nothing done) and the deployment with
    the attribution it stored (None: gone)."""

    state: str | None
    deployment: Deployment | None


def retry(
    store: Ports, space_id: str, deployment_id: str, attempt: int, now: datetime, *, earlier: Deployment | None = None
) -> Retried:
    """Re-run attribution for one deployment (a no-op once it is final, so redelivery changes
    nothing; what a replaced version left to undo is undone first). ``attempt``, the message's: only the
    message of the deployment's retry chain (or one when no chain is alive) stores a new Pending attempt
    and sends the next message; a duplicate, a superseded message or a wake that finds the deployment still
    waiting refreshes the attempt stored, so one waiting deployment has one chain
    (``attribution.attempt_attribution``). The deployment is read
    consistently: a bulk write defers to the queue a deployment it wrote a moment before, which an
    eventually consistent read may not show yet. A deployment that is gone (deleted while its message
    waited) is no failure: what its attribution left is undone (``attribution.finish_removal``) and
    the record succeeds, so no receive counts toward the DLQ and no dead-letter alarm fires. A
    deployment whose attempts keep failing until its message is dead-lettered is not lost: its outbox
    item brings it back through the recompute's sweep. ``earlier``: the deployment of the same group
    message (one stream's, in stream order) attempted before this one, if successful: stored by the same
    bulk write, the stream's index may not show it yet, and it may be this one's previous success."""
    deployment = store.deployments().get(space_id, deployment_id, consistent=True)
    if deployment is None:
        attribution.finish_removal(store, space_id, deployment_id)
        logger.info(
            "attribution retry of a deployment that is gone",
            extra={"space_id": space_id, "deployment_id": deployment_id, "attempt": attempt},
        )
        return Retried(None, None)
    stored = attribution.attempt_attribution(
        store, space_id, deployment_id, now, known=deployment, earlier=earlier, retry_attempt=attempt
    )
    state = None if stored is None else stored.state
    # The attempt's own line (``attribution._log_attempt``) says the same at INFO when it matters.
    logger.debug(
        "attribution retry",
        extra={"space_id": space_id, "deployment_id": deployment_id, "attempt": attempt, "state": state},
    )
    return Retried(state, deployment if stored is None else deployment.model_copy(update={"attribution": stored}))


def stored(store: Ports, space_id: str, deployment_id: str) -> Deployment | None:
    """The deployment as the table holds it now (a consistent read), None when it is gone."""
    return store.deployments().get(space_id, deployment_id, consistent=True)


def defer(
    store: Ports,
    space_id: str,
    deployment_ids: Sequence[str],
    attempt: int,
    *,
    grouped: bool,
    after: str | None = None,
) -> None:
    """Send deployments of a retry message again at once, as a new message of the same form, because
    the invocation has no time left to attempt them: a new message counts no receive toward the DLQ,
    where the record reported failed would, and it comes back at once rather than after the visibility
    timeout. ``grouped``: the message named ``deployment_ids`` (a stream's, in finish order), else one
    ``deployment_id`` of attempt ``attempt``; ``after``: of a group, the stream's success attempted just
    before the ones left (``RetryQueue.send_groups``). Raises when the queue is missing or refuses it (the
    record then fails and comes back whole; an attempt done again is a no-op)."""
    queue = store.retry_queue()
    if queue is None:
        raise RuntimeError("the retry function has no retry queue (RETRY_QUEUE_URL) to defer attributions to")
    if grouped:
        queue.send_groups(space_id, [list(deployment_ids)], [after])
    else:
        for deployment_id in deployment_ids:
            queue.send(space_id, deployment_id, attempt, 0)
    logger.info(
        "attribution retry deferred: too little time left",
        extra={"space_id": space_id, "deployments": len(deployment_ids), "attempt": attempt},
    )
