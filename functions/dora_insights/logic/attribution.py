"""Attribution of deployments to the changes they shipped (METRICS §5), at ingest and on retry.

At ingest the attribution is tried at once. When the shas or pull requests it names are not
known yet it is ``Pending``: the deployment is indexed by what it waits for and a delayed
message goes to the retry queue (30 s growing to the 900 s SQS maximum). A webhook or
``/changes`` call bringing a awaited sha wakes the deployment at once. After 3 days the engine
gives up and falls back (METRICS §5). Every attempt is conditional on the attempt count it read,
so a redelivered or duplicated message changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from dora_insights.config import get_settings
from dora_insights.dal.attribution import AttributionStore, LedgerStore, RetryQueue
from dora_insights.dal.code import CodeStore
from dora_insights.dal.store import Store
from dora_insights.domain.attribution import AttributionState, attribute, next_retry_delay
from dora_insights.domain.changes import CommitShaError, sha_index_prefix
from dora_insights.domain.figures import LEAD_TIME_FROM_COMMITS
from dora_insights.domain.model import Deployment, Figures
from dora_insights.domain.times import format_instant, parse_stored
from dora_insights.observability import logger


def has_code_inputs(deployment: Deployment) -> bool:
    """Whether a deployment names anything attribution can use."""
    return bool(deployment.repository or deployment.merge_commit_shas or deployment.commit_sha)


def _queue() -> RetryQueue | None:
    url = get_settings().retry_queue_url
    return RetryQueue(url) if url else None


def _prefixes(shas: Iterable[str]) -> set[str]:
    found = set()
    for sha in shas:
        try:
            found.add(sha_index_prefix(sha))
        except CommitShaError:
            continue
    return found


def attribute_deployment(
    store: Store, space_id: str, deployment_id: str, now: datetime, *, known: Deployment | None = None
) -> str | None:
    """One attempt for one deployment; the resulting state, or None when nothing was done.

    ``known`` is the deployment when the caller has just written it (saves a read)."""
    deployment = known if known is not None else store.get_deployment(space_id, deployment_id)
    if deployment is None or not has_code_inputs(deployment):
        return None
    current = deployment.attribution
    if current is not None and current.state in (AttributionState.RESOLVED.value, AttributionState.GAVE_UP.value):
        return None  # already final: a duplicate or late message
    attempts = current.attempts if current is not None else 0
    repository = AttributionStore(store, space_id)
    previous = repository.previous_success(deployment)
    ledger = LedgerStore(store, space_id, deployment.stream_key)
    outcome = attribute(deployment, previous, CodeStore(store, space_id), ledger, now)
    attribution = outcome.to_attribution(attempts + 1, now)
    figures = None
    if outcome.change_started_at is not None and outcome.state in (AttributionState.RESOLVED, AttributionState.GAVE_UP):
        lead = (
            parse_stored(deployment.finished_at) - parse_stored(attribution.change_started_at or "")
        ).total_seconds()
        figures = (deployment.figures or Figures()).model_copy(
            update={"lead_time_seconds": lead, "lead_time_source": LEAD_TIME_FROM_COMMITS}
        )
    if not repository.save(deployment, attribution, figures, expected_attempts=attempts):
        return None  # another attempt won the race
    waited = _prefixes(outcome.awaiting_shas)
    if outcome.state is AttributionState.PENDING:
        repository.await_changes(deployment.id, waited, None if waited else outcome.awaiting_repository)
        queue = _queue()
        if queue is not None:
            queue.send(space_id, deployment.id, attempts + 1, next_retry_delay(attempts + 1))
    else:
        previously = _prefixes(deployment.merge_commit_shas or []) | _prefixes([deployment.commit_sha or ""])
        repository.forget(deployment.id, previously, deployment.repository)
        if outcome.state in (AttributionState.RESOLVED, AttributionState.GAVE_UP):
            ledger.record(outcome.change_ids, outcome.marks, deployment.id)
            store.transact([store.dirty_op(space_id, deployment.stream_key, format_instant(now))])
    logger.info(
        "attribution",
        extra={
            "deployment_id": deployment.id,
            "state": attribution.state,
            "mode": attribution.mode,
            "attempt": attempts + 1,
        },
    )
    return attribution.state


def attribute_at_ingest(store: Store, space_id: str, deployment: Deployment, now: datetime) -> None:
    """The first attempt, right after the deployment is stored. A failure here never loses the
    deployment: it is logged and the retry queue tries again."""
    if not has_code_inputs(deployment):
        return
    try:
        attribute_deployment(store, space_id, deployment.id, now, known=deployment)
    except Exception:
        logger.exception("attribution at ingest failed; queued for retry", extra={"deployment_id": deployment.id})
        queue = _queue()
        if queue is not None:
            queue.send(space_id, deployment.id, 0, next_retry_delay(0))


def wake(store: Store, space_id: str, shas: Iterable[str], repositories: Iterable[str]) -> int:
    """Re-try at once the deployments waiting for these shas or repositories; how many were woken."""
    waiting = AttributionStore(store, space_id).waiting_for(_prefixes(shas), repositories)
    queue = _queue()
    for deployment_id in waiting:
        if queue is not None:
            queue.send(space_id, deployment_id, 0, 0)
    return len(waiting)
