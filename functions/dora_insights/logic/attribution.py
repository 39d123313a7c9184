"""Attribution of deployments to the changes they shipped (METRICS §5), at ingest and on retry.

At ingest the attribution is tried at once: for a single new deployment before it is written, so
that the deployment and the attempt's result are one transaction (``create_attributed``, issue 17),
else right after the deployment's write. When the shas or pull requests it names are not
known yet it is ``Pending``: the deployment is indexed by what it waits for and a delayed
message goes to the retry queue (30 s growing to the 900 s SQS maximum). A webhook or
``/changes`` call bringing a awaited sha wakes the deployment at once. After 3 days the engine
gives up and falls back (METRICS §5). Every attempt is conditional on the attempt count it read, so
of two racing attempts one stores. A waiting deployment has one chain of retry messages: each carries
the attempt count its sender stored (recorded on the outbox item too), and only that chain's message
stores a new Pending attempt and sends the next one; a duplicate (SQS delivers at least once), a message
a later attempt superseded, or a wake finding the deployment still waiting attempts it all the same (and
stores the result when it is final) but only refreshes the Pending attempt stored (``_drives_chain``).

Nothing is lost between two writes (issue 14):

- A deployment that is owed an attribution (successful, naming code) is written with an outbox
  item in the same transaction. The item goes only with the final attribution; until then it is
  *due* for the recompute's sweep ``OUTBOX_AFTER`` after ingest, and each pending attempt moves
  that due time past its retry (a lease), so a crash, a lost message or a message in the DLQ is
  re-driven by the sweep (``sweep``: past that due time its message starts the retry chain again, and a
  late message of the chain it replaces no longer carries it on). A client's retry of a deployment stored
  without an attribution re-attempts it at once (``resume``).
- A final attribution is one transaction with the stream's ledger, its marks, the pending-index
  deletes, the outbox delete and the dirty mark (``dal.attribution``): "Resolved but no ledger"
  cannot be stored. A shipment too large for one transaction writes its ledger entries first,
  keyed by deployment; a re-run ignores its own entries, so it ships the same changes again.
- Replacing a deployment (DX upsert) hands what its old attribution recorded (ledger entries,
  pages, marks, pending entries) to the outbox item when it cannot be undone in the replacing
  transaction; the next attempt undoes it before attributing the new version.
- What a deployment shipped is stored in pages, so no item grows past DynamoDB's 400 KB.
- Corrections (issue 16, ``logic/corrections.py``): deleting a deployment, or correcting its state so
  that it becomes successful or stops being so, changes what its stream's next successful deployment
  shipped (its history starts at its previous success). The correction's transaction writes an outbox
  item for each deployment to attribute again (``AttributionRepository.redo``): what to undo first
  (its own attribution, ``superseded``; a deleted deployment's, ``also_clean``) and ``rewind``: its
  ledger reads the stream's branch marks as they stood before it, not where later deployments moved
  them. A deleted deployment with nothing to hand over keeps its leftovers in its own outbox item
  (``removed``) until an attempt undoes them. The attempt then runs here as any other, at once after
  the correction, else from the retry queue or the sweep.
- Out of order (METRICS §1: a stream is ordered by finish time): a deployment whose attribution is about
  to be final while the stream's next successful deployment naming code is final already arrived (or
  resolved) after that one was attributed without it, which shipped its changes. So did a final success
  past next successes not attributed yet (a batch arriving before an attributed success, a success pending
  on its code data while a later one arrived): when the attempt read a branch mark past what its previous
  success recorded, it walks past those to the first final one (``_attributed_successor``). A success
  appears at this place, as for a state correction (``_hand_back``, ``logic/succession``): that successor
  and, when it deployed an older commit, the successes after it whose shipment started at the mark the
  deployment now holds (``succession.following``, at most ``succession.MAX_FOLLOWING``; those not attributed
  yet are walked past, their own attempts come) are attributed again. The deployment's outbox item undoes
  their attributions first and rewinds; each gets a placeholder and a rewound outbox item; a new deployment
  writes them in its create's transaction (``create_redoing``), an attempt of a stored one in a transaction
  of their own (``apply``); then the deployment's attempt and theirs run at once, in stream order. The check
  is one Query of the stream's index, which answers nothing for the stream's newest; when the successor
  shipped the deployment's commit (the common case) the walk reads nothing more.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from dora_insights.dal.attribution_writes import (
    RETRY_ATTEMPT,
    RETRY_BY,
    FinalWrite,
    PendingWrite,
    ReplacementOutbox,
    Rewind,
)
from dora_insights.domain.attribution import (
    GIVE_UP_AFTER,
    AttributionMode,
    AttributionOutcome,
    AttributionState,
    ChangeView,
    FinalAttribution,
    StreamLedger,
    attribute,
    maybe_repository,
    next_retry_delay,
)
from dora_insights.domain.changes import Commit, CommitShaError, PullRequest, sha_index_prefix
from dora_insights.domain.ids import new_id
from dora_insights.domain.model import LEAD_TIME_FROM_COMMITS, Attribution, Deployment, Figures
from dora_insights.domain.records import WriteOutcome
from dora_insights.domain.times import format_instant, parse_stored
from dora_insights.errors import MessagesUnsentError, RequestInvalidError, ResourceConflictError
from dora_insights.logic import succession
from dora_insights.logic.succession import FINAL_STATES
from dora_insights.observability import logger

if TYPE_CHECKING:  # the Protocols are annotations: the ingest function need not create them
    from dora_insights.logic.ports import AttributionRepository, Ports

OUTBOX_AFTER = timedelta(minutes=5)  # an attribution still owed this long after ingest is swept
LEASE_GRACE = timedelta(minutes=15)  # after a pending retry's delay, before the sweep steps in
SWEEP_LEASE = timedelta(minutes=15)  # a swept entry is due again after this (its message is on the queue)
SWEEP_LIMIT = 50  # outbox entries re-driven per space and run
ABANDON_AFTER = GIVE_UP_AFTER + timedelta(days=1)  # an attribution that never completes is closed as GaveUp
_SHIPPING_STATES = (AttributionState.RESOLVED, AttributionState.GAVE_UP)
has_code_inputs = succession.has_code_inputs  # whether a deployment names anything attribution can use


class _Unknown:
    """The outbox item was not read: read it."""


UNKNOWN = _Unknown()
NEW_OUTBOX: Mapping[str, Any] = MappingProxyType({})  # an outbox item just written: nothing to clean


def owes_attribution(deployment: Deployment) -> bool:
    """Whether a deployment is owed an attribution that could ship changes (an outbox item guards it)."""
    return deployment.is_successful and has_code_inputs(deployment)


# Successes naming no code walked past to the one before them that names code (one Query each).
MAX_CODELESS_WALK = 10


def _unattributed_before(
    repository: AttributionRepository, previous: Deployment | None, *, consistent: bool
) -> Deployment | None:
    """When the stream's previous success names no code: the nearest earlier success that does, if its
    attribution has not run or is pending (the deployment then waits for it, as for a previous success of
    its own: its range starts at the mark that one records); else None. Reads only past successes naming no
    code, at most ``MAX_CODELESS_WALK``."""
    current = previous
    for _ in range(MAX_CODELESS_WALK):
        if current is None or has_code_inputs(current):
            break
        current = repository.previous_success(current, consistent=consistent)
    else:
        return None
    if current is None or current is previous:
        return None
    state = None if current.attribution is None else current.attribution.state
    return current if state is None or state == AttributionState.PENDING else None


def outbox_due(deployment: Deployment, now: datetime) -> str | None:
    """When the sweep should re-drive the attribution a new deployment is owed; None if it owes none."""
    return format_instant(now + OUTBOX_AFTER) if owes_attribution(deployment) else None


def _prefixes(shas: Iterable[str]) -> set[str]:
    found = set()
    for sha in shas:
        try:
            found.add(sha_index_prefix(sha))
        except CommitShaError:
            continue
    return found


def _named_prefixes(deployment: Deployment) -> set[str]:
    return _prefixes(deployment.merge_commit_shas or []) | _prefixes([deployment.commit_sha or ""])


def awaiting_keys(
    store: Ports, space_id: str, deployment: Deployment, *, previous: Deployment | None = None
) -> list[dict[str, str]]:
    """The pending-index entries a deployment may have, from what it names; with ``previous``, also
    those it had while it waited for the previous deployment of its stream (keyed by that one's shas)."""
    named = _named_prefixes(deployment) | (_named_prefixes(previous) if previous is not None else set())
    return store.attribution(space_id).awaiting_keys(deployment.id, named, maybe_repository(deployment.repository))


def attribute_deployment(store: Ports, space_id: str, deployment_id: str, now: datetime, **options: Any) -> str | None:
    """``attempt_attribution`` (with its keyword ``options``): the resulting state, or None when nothing
    was done."""
    stored = attempt_attribution(store, space_id, deployment_id, now, **options)
    return None if stored is None else stored.state


def attempt_attribution(
    store: Ports,
    space_id: str,
    deployment_id: str,
    now: datetime,
    *,
    known: Deployment | None = None,
    outbox: Mapping[str, Any] | _Unknown | None = UNKNOWN,
    enqueue: bool = True,
    earlier: Deployment | None = None,
    recent: bool = False,
    retry_attempt: int | None = None,
) -> Attribution | None:
    """One attempt for one deployment; the attribution it stored, or None when nothing was done.

    ``known`` is the deployment when the caller has just written it (saves a read), ``outbox`` its
    outbox item when the caller knows it (None: it has none). Without ``enqueue`` a pending attempt
    sends no retry message (corrections run without the queue: the sweep re-drives it when due).
    ``earlier``: a successful deployment of its stream before it, read a moment ago, which the stream's
    index may not show yet; ``recent``: the deployment was stored just now, and so may others of its stream
    have been (``AttributionRepository.previous_success``). ``retry_attempt``: the ``attempt`` of the retry
    message this attempt answers (None: no message drives it); a Pending result stores a new attempt and
    sends the next message only when that message drives the deployment's retry chain (``_drives_chain``),
    else it refreshes the attempt stored (``_refresh``)."""
    deployment = known if known is not None else store.deployments().get(space_id, deployment_id)
    repository = store.attribution(space_id)
    if deployment is None:
        finish_removal(store, space_id, deployment_id)
        return None
    marker = repository.outbox(deployment.id) if isinstance(outbox, _Unknown) else outbox
    if known is None and marker is not None and (marker.get("rewind") or marker.get("removed")):
        # Written by a correction or a removal (``logic/corrections.py``): read what it wrote, not an
        # earlier version a read right after it may still answer.
        deployment = store.deployments().get(space_id, deployment_id, consistent=True)
        if deployment is None:
            finish_removal(store, space_id, deployment_id)
            return None
    for removed in (marker.get("also_clean") or []) if marker is not None else []:
        repository.clean(str(removed["deployment_id"]), removed["leftovers"])  # a deleted one's, first
    superseded = marker.get("superseded") if marker is not None else None
    if superseded:
        repository.clean(deployment.id, superseded)
    current = deployment.attribution
    if not has_code_inputs(deployment) or (current is not None and current.state in FINAL_STATES):
        if marker is not None:
            repository.drop_outbox(deployment.id)  # nothing left to attribute (or already final)
        return None
    attempts = current.attempts if current is not None else 0
    rewind = marker is not None and bool(marker.get("rewind"))
    previous = repository.previous_success(deployment, consistent=rewind, earlier=earlier, recent=recent)
    ledger = store.ledger(space_id, deployment.stream_key, deployment.id, before=deployment if rewind else None)
    code, marks = _RememberedCode(store.code(space_id)), _MarksRead(ledger)
    # A previous success naming no code bounds nothing: the stream's marks do. Those of an earlier success
    # naming code whose attribution has not run yet are not there yet, so wait for it as for the previous.
    blocker = _unattributed_before(repository, previous, consistent=rewind)
    outcome = attribute(deployment, blocker or previous, code, marks, now)
    if outcome.state in _SHIPPING_STATES and not rewind:
        passed = marks.moved_past(previous)
        successor = _attributed_successor(store, space_id, repository, deployment, recent=recent, walk=passed)
        if successor is not None:  # attributed without this one: all again, in stream order
            operations, item, chain = _hand_back(store, space_id, deployment, successor, now, code)
            if not repository.apply(operations):
                raise ResourceConflictError("the stream's next deployment changed while it was read; retried")
            return _attempt_in_order(
                store, space_id, deployment, item, chain, now, enqueue=enqueue, earlier=earlier, recent=recent
            )
    attribution = outcome.to_attribution(attempts + 1, now)
    at = format_instant(now)
    if outcome.state is AttributionState.PENDING:
        if not _drives_chain(marker, attempts, retry_attempt, now):
            return _refresh(repository, deployment, outcome, attempts, now, retry_attempt=retry_attempt)
        queue = store.retry_queue() if enqueue else None
        token = attempts + 1 if queue is not None else None  # the attempt of the message sent after the write
        pending, delay = _pending_plan(repository, deployment.id, outcome, attribution, now, retry_attempt=token)
        if not repository.save_pending(deployment, pending, expected_attempts=attempts, now=at):
            return None  # another attempt won the race
        if queue is not None:
            queue.send(space_id, deployment.id, attempts + 1, delay)
    else:
        final = _final(
            deployment,
            outcome,
            attribution,
            # Pending-index entries exist only once an attempt was pending.
            forget=awaiting_keys(store, space_id, deployment, previous=previous) if current is not None else [],
            dirty_at=at if outcome.state in _SHIPPING_STATES else None,
            drop_outbox=marker is not None,
        )
        stored = repository.save_final(deployment, FinalWrite(final, ledger, new_id(now)), expected_attempts=attempts)
        if stored is None:
            return None  # another attempt won the race
        attribution = stored
        _wake_successors(store, space_id, deployment, enqueue=enqueue)
    pull_requests, commits = attribution.pull_request_count, attribution.commit_count
    _log_attempt(
        deployment, attribution, attempts + 1, pull_requests=pull_requests, commits=commits, pages=attribution.pages
    )
    return attribution


def _drives_chain(marker: Mapping[str, Any] | None, attempts: int, retry_attempt: int | None, now: datetime) -> bool:
    """Whether a Pending attempt stores a new attempt and sends the deployment's next retry message: one
    chain of retry messages per waiting deployment. Each message of the chain carries the attempts its
    sender stored (its token, recorded on the outbox item with the due time the sender set:
    ``PendingWrite.retry_attempt``), so the chain's message is the one whose ``attempt`` is the attempts
    stored. A duplicate of it (SQS delivers at least once) or of an earlier one, a wake (``attempt`` 0), the
    sweep's message and the like do not drive the chain while it is alive: its token recorded and that due
    time not passed. They do when no chain is known (none was started, or its sender stored no token: a
    correction's attempt sends none) or it is overdue (its message lost, dead-lettered or late: the sweep
    re-drives it then); a late message of the chain replaced is then a duplicate. Not a message's
    (``retry_attempt`` None: at ingest, a client's retry, a correction): always."""
    if retry_attempt is None or (retry_attempt > 0 and retry_attempt == attempts):
        return True
    token = None if marker is None else marker.get(RETRY_ATTEMPT)
    by = None if marker is None else marker.get(RETRY_BY)
    alive = token is not None and int(token) == attempts and by is not None and format_instant(now) < str(by)
    return not alive


def _refresh(
    repository: AttributionRepository,
    deployment: Deployment,
    outcome: AttributionOutcome,
    attempts: int,
    now: datetime,
    *,
    retry_attempt: int | None,
) -> Attribution | None:
    """A Pending attempt that does not drive the retry chain (``_drives_chain``): the attempt stored is
    refreshed, not counted again: the same attempts, what it waits for now (the pending-index entries, so
    that the code or the deployment it waits for wakes it), conditional on the attempts read; the outbox
    item (its due time, the chain's token) and the queue are left alone. None when another attempt got
    there first."""
    attribution = outcome.to_attribution(attempts, now)
    refreshed = PendingWrite(attribution, _awaiting(repository, deployment.id, outcome), None)
    if not repository.save_pending(deployment, refreshed, expected_attempts=attempts, now=format_instant(now)):
        return None
    _log_attempt(deployment, attribution, attempts, retry_attempt=retry_attempt, refreshed=True)
    return attribution


def _log_attempt(deployment: Deployment, attribution: Attribution, attempt: int, **details: object) -> None:
    """The log line of an attribution attempt: the deployment, its state and mode, and ``details``. At INFO
    for the first attempt and every outcome (resolved, gave up, none); a later attempt still pending is at
    DEBUG: a deployment whose commit never comes is attempted about 290 times in its 3 days of retries,
    and those lines (two per attempt) were most of the log volume a team paid for."""
    extra = {
        "space_id": deployment.space_id,
        "deployment_id": deployment.id,
        "state": attribution.state,
        "mode": attribution.mode,
        "attempt": attempt,
    }
    log = logger.debug if attribution.state == AttributionState.PENDING and attempt > 1 else logger.info
    log("attribution", extra={**extra, **details})


def create_attributed(
    store: Ports,
    space_id: str,
    deployment: Deployment,
    now: datetime,
    *,
    idempotency: tuple[str, str] | None = None,
) -> WriteOutcome | None:
    """Create a new deployment with its first attribution attempt in one write round trip (issue 17):
    read first (the stream's previous success, its ledger, the code data), then one transaction holds
    the deployment, its idempotency record, its dirty mark and the attempt's result: a final
    attribution with the stream's ledger entries and marks (no outbox item: nothing is owed), or a
    Pending one with its pending-index entries and the outbox item leased past the retry, whose
    message goes out after the write.

    None when this cannot be done at once (no code named, a read failed, the shipment does not fit
    in one transaction, or a mark or ledger entry moved since it was read): the caller then writes
    the deployment with its outbox item and attributes it after (``attribute_at_ingest``), which also
    retries. A repeat of a stored deployment answers as ``DeploymentRepository.write`` does."""
    if not has_code_inputs(deployment):
        return None
    repository = store.attribution(space_id)
    try:
        previous = repository.previous_success(deployment, recent=True)
        ledger = store.ledger(space_id, deployment.stream_key, deployment.id)
        code, marks = _RememberedCode(store.code(space_id)), _MarksRead(ledger)
        outcome = attribute(deployment, previous, code, marks, now)
        ships = outcome.state in _SHIPPING_STATES
        successor = (
            _attributed_successor(store, space_id, repository, deployment, recent=True, walk=marks.moved_past(previous))
            if ships
            else None
        )
    except Exception:
        logger.exception("attribution before the write failed; written first", extra={"deployment_id": deployment.id})
        return None
    if successor is not None:
        return _create_before(store, space_id, deployment, successor, now, code, idempotency=idempotency)
    attribution = outcome.to_attribution(1, now)
    at = format_instant(now)
    if outcome.state is AttributionState.PENDING:
        queue = store.retry_queue()
        token = 1 if queue is not None else None  # the attempt of the message sent after the write
        pending, delay = _pending_plan(repository, deployment.id, outcome, attribution, now, retry_attempt=token)
        written = repository.create_pending(deployment, pending, now=at, idempotency=idempotency)
        if written is not None and written.created and queue is not None:
            queue.send(space_id, deployment.id, 1, delay)
    else:
        final = _final(deployment, outcome, attribution, forget=[], dirty_at=at, drop_outbox=False)
        written = repository.create_final(
            deployment, FinalWrite(final, ledger, new_id(now)), now=at, idempotency=idempotency
        )
    if written is not None and written.created:
        pull_requests, commits = len(outcome.pull_requests), len(outcome.commits)
        _log_attempt(
            deployment, attribution, 1, pull_requests=pull_requests, commits=commits, in_the_deployments_write=True
        )
    return written


def _attributed_successor(
    store: Ports,
    space_id: str,
    repository: AttributionRepository,
    deployment: Deployment,
    *,
    recent: bool,
    walk: bool,
) -> Deployment | None:
    """The first successful deployment naming code after ``deployment`` in its stream whose attribution is
    final already: attributed without ``deployment`` (which arrived, or was attributed, after it), it shipped
    what ``deployment`` ships (METRICS §1: a stream is ordered by finish time; §5). None when there is none.

    Usually the stream's next success naming code (``succession.successor_of``): one Query of the stream's
    index (pattern 12), which finds nothing when ``deployment`` is the stream's newest; ``recent``: the
    stream's last two writes count too (the dirty mark ``previous_success`` read already). A success after a
    not-final one is not always waiting for it: it may have been attributed before the ones between were
    stored (a batch arriving before an attributed success, a success pending on its code data while a later
    one arrived). With ``walk`` (the attempt read a branch mark past those its previous success recorded:
    some deployment after that one moved it, ``_MarksRead``) the walk goes on past the successes not
    attributed yet (``succession.first_attributed``: one read of the index each, at most
    ``succession.MAX_FOLLOWING``) to the first attributed one; without, a next success not final answers
    None (an in-order batch: the later ones are not attributed yet, and nothing more is read)."""
    successor = repository.next_success(deployment, consistent=True, recent=recent)
    if successor is not None and not has_code_inputs(successor):  # a success naming no code: rare
        successor = succession.next_naming_code(store, space_id, successor)
    if walk:
        successor = succession.first_attributed(store, space_id, successor)
    current = None if successor is None else successor.attribution
    return successor if current is not None and current.state in FINAL_STATES else None


def _hand_back(
    store: Ports, space_id: str, deployment: Deployment, successor: Deployment, now: datetime, code: _RememberedCode
) -> tuple[list[dict[str, Any]], dict[str, Any], list[str]]:
    """What attributes ``deployment``, its attributed ``successor`` and the successes after it whose
    shipment started at a mark ``deployment`` now holds again, in stream order, as a state correction that
    makes a deployment successful does (``corrections._state_plan``): a success appears at this place.
    ``successor`` may lie past successes not attributed yet (``_attributed_successor``): they are left out,
    their own attempts come in their turn (those planned after them wait for them).

    The chain (``succession.following``): ``successor``, then, while it and those after it deployed older
    commits than ``deployment`` (they shipped nothing new, or stopped short of its mark), the later
    successes that shipped what ``deployment`` ships, up to the first that shipped up to or past its mark
    (at most ``succession.MAX_FOLLOWING``). When ``successor`` shipped ``deployment``'s commit (the common
    case) the chain is ``successor`` alone, found without a read; else its commit's place is read from
    ``code``, the code data the deployment's attempt just read it from (no second read).

    The deployment's outbox item, rewound, undoes every chain member's attribution first (``also_clean``),
    so that it ships its own range; each member gets a placeholder and an outbox item, rewound, so that it
    ships the rest. Answers the operations, the deployment's outbox item and the chain's ids in stream
    order."""
    repository = store.attribution(space_id)
    # A commit the attempt did not find (it gave up): the successor alone, whose start moves.
    reach = succession.reach_once_successful(store, space_id, deployment, successor, read=code.recall) or {}
    chain = [
        (d, repository.superseded(d, [], maybe_repository(d.repository)))
        for d in succession.following(store, space_id, successor, reach)
    ]
    due, at = format_instant(now + OUTBOX_AFTER), format_instant(now)
    handed = [{"deployment_id": d.id, "leftovers": leftovers} for d, leftovers in chain if leftovers]
    operations, item = repository.redo(deployment, Rewind(None, clean_also=handed), due=due, now=at)
    for member, leftovers in chain:
        theirs, _ = repository.redo(member, Rewind(leftovers, reset=True), due=due, now=at)
        operations += theirs
    return operations, item, [d.id for d, _ in chain]


def _create_before(
    store: Ports,
    space_id: str,
    deployment: Deployment,
    successor: Deployment,
    now: datetime,
    code: _RememberedCode,
    *,
    idempotency: tuple[str, str] | None,
) -> WriteOutcome | None:
    """A new deployment that precedes an attributed one of its stream: written with ``_hand_back``'s
    operations in the create's transaction (the deployment, its idempotency record and the dirty mark, its
    outbox item, two items per chain member: at most 4 + 2 × ``succession.MAX_FOLLOWING``), then all
    attributed at once, in stream order. None when that transaction cannot be (too many items, a condition
    failed: the caller writes first; its attempt finds the successor again)."""
    operations, item, chain = _hand_back(store, space_id, deployment, successor, now, code)
    written = store.attribution(space_id).create_redoing(
        deployment, operations, now=format_instant(now), idempotency=idempotency
    )
    if written is not None and written.created:
        logger.info(
            "deployment precedes an attributed one of its stream: attributed again in stream order",
            extra={"deployment_id": deployment.id, "successor_id": successor.id, "attributed_again": chain},
        )
        try:
            _attempt_in_order(store, space_id, deployment, item, chain, now, enqueue=True, recent=True)
        except Exception:
            logger.exception("attribution at ingest failed; queued for retry", extra={"deployment_id": deployment.id})
            queue = store.retry_queue()
            if queue is not None:
                queue.send(space_id, deployment.id, 0, next_retry_delay(0))
    return written


class _RememberedCode:
    """The code data an attempt reads (``ChangeView``), remembering what ``commits_by_sha`` answered (the
    engine's reads are its own, unchanged); ``recall`` answers from that first, so the late-arrival walk
    (``_hand_back``) looks up the deployment's commit again without a second read."""

    def __init__(self, code: ChangeView) -> None:
        self._code = code
        self._by_sha: dict[tuple[str, frozenset[str]], Sequence[Commit]] = {}

    def default_branch(self, repository: str) -> str | None:
        return self._code.default_branch(repository)

    def commits_by_sha(self, repository: str, shas: Collection[str]) -> Sequence[Commit]:
        found = self._by_sha[(repository, frozenset(shas))] = self._code.commits_by_sha(repository, shas)
        return found

    def recall(self, repository: str, shas: Collection[str]) -> Sequence[Commit]:
        """``commits_by_sha``, from what the attempt read when it read these shas."""
        found = self._by_sha.get((repository, frozenset(shas)))
        return self.commits_by_sha(repository, shas) if found is None else found

    def commits_in_range(
        self, repository: str, branch: str, after_position: int | None, up_to_position: int, limit: int
    ) -> Sequence[Commit]:
        return self._code.commits_in_range(repository, branch, after_position, up_to_position, limit)

    def commits_of_pull_requests(self, repository: str, numbers: Collection[int]) -> Sequence[Commit]:
        return self._code.commits_of_pull_requests(repository, numbers)

    def pull_requests_by_sha(self, shas: Collection[str], repository: str | None) -> Sequence[PullRequest]:
        return self._code.pull_requests_by_sha(shas, repository)

    def pull_requests_merged(
        self, repository: str, base_ref: str, merged_after: str | None, merged_up_to: str | None
    ) -> Sequence[PullRequest]:
        return self._code.pull_requests_merged(repository, base_ref, merged_after, merged_up_to)


class _MarksRead:
    """The stream's ledger as an attempt reads it (``StreamLedger``), remembering the branch marks it answered
    (the final write takes the ledger itself: it moves the marks it read). ``moved_past``: whether one lies
    past what the stream's previous success recorded on its branch, the sign that a later deployment of the
    stream may have shipped this one's changes (``_attributed_successor``). Reads nothing of its own."""

    def __init__(self, ledger: StreamLedger) -> None:
        self._ledger = ledger
        self._marks: dict[tuple[str, str], int] = {}

    def deployed_among(self, change_ids: Collection[str]) -> AbstractSet[str]:
        return self._ledger.deployed_among(change_ids)

    def shipped_position(self, repository: str, branch: str) -> int | None:
        position = self._ledger.shipped_position(repository, branch)
        if position is not None:
            self._marks[(repository, branch)] = position
        return position

    def moved_past(self, previous: Deployment | None) -> bool:
        """Whether a mark read lies past every mark ``previous`` (the stream's previous success, None for its
        first) recorded on the same branch, or on a branch ``previous`` recorded none on: a deployment after
        ``previous`` in the stream moved it (or, when ``previous`` shipped nothing new, an earlier one did)."""
        recorded = succession.recorded_marks(previous) if previous is not None else {}
        return any(position > recorded.get(where, -1) for where, position in self._marks.items())


def _attempt_in_order(
    store: Ports,
    space_id: str,
    deployment: Deployment,
    outbox: Mapping[str, Any],
    chain: list[str],
    now: datetime,
    *,
    enqueue: bool,
    earlier: Deployment | None = None,
    recent: bool = False,
) -> Attribution | None:
    """After ``_hand_back``'s operations: the deployment's attempt (rewound, undoing the chain's
    attributions first), then each chain member's in stream order, each starting where the one before
    ends. A member's failure is logged and sent to the retry queue (its outbox item also brings it back
    through the sweep), and those after it wait for it (their previous success is not final); the
    deployment's attribution, or None when nothing was done."""
    stored = attempt_attribution(
        store,
        space_id,
        deployment.id,
        now,
        known=deployment,
        outbox=outbox,
        enqueue=enqueue,
        earlier=earlier,
        recent=recent,
    )
    done: Deployment | None = deployment if stored is None else deployment.model_copy(update={"attribution": stored})
    for member_id in chain:
        try:
            attempt_attribution(store, space_id, member_id, now, enqueue=enqueue, earlier=done)
        except Exception:
            logger.exception(
                "attributing a deployment again failed; queued for retry", extra={"deployment_id": member_id}
            )
            queue = store.retry_queue() if enqueue else None
            if queue is not None:
                queue.send(space_id, member_id, 0, 0)
        done = None  # the next member's previous success is in the stream's index (read consistently)
    return stored


def _awaiting(
    repository: AttributionRepository, deployment_id: str, outcome: AttributionOutcome
) -> Sequence[Mapping[str, str]]:
    """The pending-index keys of what a Pending attempt waits for: its shas, else its repository."""
    waited = _prefixes(outcome.awaiting_shas)
    return repository.awaiting_keys(deployment_id, waited, None if waited else outcome.awaiting_repository)


def _pending_plan(
    repository: AttributionRepository,
    deployment_id: str,
    outcome: AttributionOutcome,
    attribution: Attribution,
    now: datetime,
    *,
    retry_attempt: int | None,
) -> tuple[PendingWrite, int]:
    """What a Pending attempt (``attribution``) stores: its pending-index keys (what it waits for), the
    due time of its outbox item, leased past its retry, and the ``attempt`` of that retry's message
    (``retry_attempt``, None when none is sent); and the delay of that message."""
    awaiting = _awaiting(repository, deployment_id, outcome)
    delay = next_retry_delay(attribution.attempts)
    due = format_instant(now + timedelta(seconds=delay) + LEASE_GRACE)
    return PendingWrite(attribution, awaiting, due, retry_attempt), delay


def _final(
    deployment: Deployment,
    outcome: AttributionOutcome,
    attribution: Attribution,
    *,
    forget: list[dict[str, str]],
    dirty_at: str | None,
    drop_outbox: bool,
) -> FinalAttribution:
    """What a final attempt stores: what it shipped (nothing when it ships nothing) and the lead time."""
    ships = outcome.state in _SHIPPING_STATES
    return FinalAttribution(
        attribution=attribution,
        figures=_lead_time_figures(deployment, outcome.change_started_at) if ships else None,
        commits=[(c.repository, c.sha) for c in outcome.commits],
        change_ids=outcome.recorded_ids if ships else frozenset(),
        ranges=outcome.ranges if ships else (),
        marks=outcome.marks if ships else (),
        forget=forget,
        dirty_at=dirty_at,
        drop_outbox=drop_outbox,
    )


def _lead_time_figures(deployment: Deployment, change_started_at: str | None) -> Figures | None:
    """The deployment's figures with the lead time from its first shipped change, None without one."""
    if change_started_at is None:
        return None
    lead = (parse_stored(deployment.finished_at) - parse_stored(change_started_at)).total_seconds()
    return (deployment.figures or Figures()).model_copy(
        update={"lead_time_seconds": lead, "lead_time_source": LEAD_TIME_FROM_COMMITS}
    )


def attribute_at_ingest(
    store: Ports,
    space_id: str,
    deployment: Deployment,
    now: datetime,
    *,
    outbox: Mapping[str, Any] | _Unknown | None = UNKNOWN,
    enqueue: bool = True,
) -> None:
    """The first attempt, right after the deployment is stored (``outbox``: the item written with it,
    None when none was). A failure here never loses the attribution: it is logged, the retry queue
    tries again (unless not ``enqueue``), and the outbox item stays for the sweep."""
    if not has_code_inputs(deployment) and outbox is None:
        return
    try:
        attempt_attribution(
            store, space_id, deployment.id, now, known=deployment, outbox=outbox, enqueue=enqueue, recent=True
        )
    except Exception:
        logger.exception("attribution at ingest failed; queued for retry", extra={"deployment_id": deployment.id})
        queue = store.retry_queue() if enqueue else None
        if queue is not None:
            queue.send(space_id, deployment.id, 0, next_retry_delay(0))


def replacing(
    store: Ports,
    space_id: str,
    old: Deployment,
    new: Deployment,
    now: datetime,
    *,
    room: int,
    rewound: Sequence[Mapping[str, Any]] | None = None,
) -> tuple[list[dict[str, Any]], Mapping[str, Any] | None]:
    """What the transaction replacing ``old`` by ``new`` (DX upsert) also writes: the new version's
    outbox item, and the undoing of the old version's attribution (ledger entries, pages, branch
    marks, pending-index entries) when it fits in ``room`` operations, else left to the outbox item.
    Answers the operations and the outbox item (for ``attribute_at_ingest``).

    ``rewound`` (a success moved within its stream, ``logic/dx.upsert``): the new version's attempt is
    rewound, as one that arrives late and takes back what later successes shipped (``_hand_back``): its
    ledger reads the stream's marks as they stood before it, and it undoes first what these deployments'
    attributions left (``also_clean`` entries: the later successes the replacement attributes again). Its
    outbox item is then ``AttributionRepository.redo``'s (the same item, rewound), the old version's undoing
    as ever: in the transaction where it fits, else on that item (``superseded``)."""
    repository = store.attribution(space_id)
    marker = repository.outbox(old.id)
    if marker is not None and marker.get("superseded"):
        repository.clean(old.id, marker["superseded"])  # an earlier replacement's, not undone yet
    current = old.attribution
    pending = current is not None and current.state == AttributionState.PENDING.value
    awaiting = awaiting_keys(store, space_id, old) if pending else []  # only a pending attempt wrote them
    due, at = format_instant(now + OUTBOX_AFTER), format_instant(now)
    outbox = ReplacementOutbox(
        awaiting=awaiting,
        repository=maybe_repository(old.repository),
        owed=owes_attribution(new) and rewound is None,
        had_outbox=marker is not None and rewound is None,
        due=due,
    )
    operations, item = repository.replacement(old, outbox, now=at, room=room)
    if rewound is None:
        return operations, item
    # Owed nothing, the replacement writes an outbox item only to carry the old version's undoing (which
    # is then all it writes): the rewound item below carries it instead, in the same place.
    superseded = None if item is None else item.get("superseded")
    kept = [] if item is not None else operations
    theirs, redone = repository.redo(new, Rewind(superseded, clean_also=rewound), due=due, now=at)
    return [*kept, *theirs], redone


def finish_removal(store: Ports, space_id: str, deployment_id: str) -> None:
    """Undo what a deleted deployment's attribution left (its outbox item's ``removed``: ledger entries,
    pages, branch marks, pending-index entries) and drop the item; nothing when it has none (an item
    without ``removed`` may be a deployment's that a read did not find yet: it stays)."""
    repository = store.attribution(space_id)
    marker = repository.outbox(deployment_id)
    if marker is None or not marker.get("removed"):
        return
    repository.clean(deployment_id, marker["removed"])
    repository.drop_outbox(deployment_id)


def resume(store: Ports, space_id: str, deployment: Deployment, now: datetime) -> None:
    """A client's retry of a deployment that is stored already: when its attribution never ran (the first
    request died in between), attempt it now. Also for a deployment owed none that names code: it is
    recorded as shipping nothing, as at ingest (a DX upsert to a failure writes that after the replacement,
    with no outbox item for the sweep to finish it)."""
    if deployment.attribution is None and (owes_attribution(deployment) or has_code_inputs(deployment)):
        attribute_at_ingest(store, space_id, deployment, now)


def _wake_successors(store: Ports, space_id: str, deployment: Deployment, *, enqueue: bool) -> None:
    """After a deployment written before its attribution (or pending) gets its final one: re-try at
    once the deployments of its stream that waited for it (``blocked_by_previous`` indexes them by its
    shas, else its repository), so a chain of waiting deployments resolves in one pass instead of one
    link per retry delay. A failure here is logged: their own retries and the sweep still come. Not
    ``enqueue`` (a caller whose role has no retry queue, such as a correction): nothing is read or
    sent, and those retries and the sweep wake them."""
    if not enqueue:
        return
    prefixes = _named_prefixes(deployment)
    repository = maybe_repository(deployment.repository)
    try:
        _wake(store, space_id, prefixes, [] if prefixes or repository is None else [repository])
    except Exception:
        logger.exception(
            "waking the deployments waiting for an attributed one failed", extra={"deployment_id": deployment.id}
        )


def wake(store: Ports, space_id: str, shas: Iterable[str], repositories: Iterable[str]) -> int:
    """Re-try at once the deployments waiting for these shas or repositories; how many were woken."""
    return _wake(store, space_id, _prefixes(shas), repositories)


def _wake(store: Ports, space_id: str, prefixes: set[str], repositories: Iterable[str]) -> int:
    waiting = store.attribution(space_id).waiting_for(prefixes, repositories)
    queue = store.retry_queue()
    for deployment_id in waiting:
        if queue is not None:
            queue.send(space_id, deployment_id, 0, 0)
    return len(waiting)


# ---------------------------------------------------------------------------------------------
# The recompute's sweep


@dataclass
class SweepCounts:
    """What one sweep of one space did."""

    redriven: int = 0  # sent to the retry queue (or attempted here without one)
    abandoned: int = 0  # owed for longer than ABANDON_AFTER: closed as GaveUp
    failed: int = 0


def sweep(store: Ports, space_id: str, now: datetime, *, limit: int = SWEEP_LIMIT) -> SweepCounts:
    """Re-drive the attributions of the space that are still owed past their due time, at most
    ``limit``: each entry's due time moves ``SWEEP_LEASE`` on and a retry message goes out at once (past
    that due time, it starts the deployment's retry chain again: ``_drives_chain``). One that has been owed
    for ``ABANDON_AFTER`` (its attempts keep failing) is closed as GaveUp."""
    repository = store.attribution(space_id)
    counts = SweepCounts()
    leased: list[tuple[str, int]] = []
    for item in repository.due(format_instant(now), limit):
        deployment_id = str(item["deployment_id"])
        try:
            if now - parse_stored(str(item["created_at"])) >= ABANDON_AFTER:
                abandon(store, space_id, deployment_id, now)
                counts.abandoned += 1
            elif repository.lease(item, format_instant(now + SWEEP_LEASE)):
                leased.append((deployment_id, 0))
        except Exception:
            counts.failed += 1
            logger.exception("attribution sweep failed", extra={"space_id": space_id, "deployment_id": deployment_id})
    queue = store.retry_queue()
    if queue is not None:
        if leased:
            try:
                queue.send_now(space_id, leased)
                counts.redriven += len(leased)
            except MessagesUnsentError as refused:  # those not sent are due again after their lease
                counts.redriven += refused.sent
                counts.failed += refused.unsent
                logger.error("attribution sweep: retry messages refused", extra={"codes": refused.codes})
    else:
        for deployment_id, _ in leased:  # no retry queue configured: attempt here
            try:
                attribute_deployment(store, space_id, deployment_id, now)
                counts.redriven += 1
            except Exception:
                counts.failed += 1
                logger.exception(
                    "attribution sweep failed", extra={"space_id": space_id, "deployment_id": deployment_id}
                )
    if counts.redriven or counts.abandoned or counts.failed:
        logger.warning("attribution sweep", extra={"space_id": space_id, **counts.__dict__})
    return counts


def abandon(store: Ports, space_id: str, deployment_id: str, now: datetime) -> None:
    """Close an attribution that never completed as GaveUp with nothing shipped (METRICS §5 rule 5)."""
    repository = store.attribution(space_id)
    deployment = store.deployments().get(space_id, deployment_id)
    if deployment is None:
        finish_removal(store, space_id, deployment_id)
        repository.drop_outbox(deployment_id)
        return
    current = deployment.attribution
    if current is not None and current.state in FINAL_STATES:
        repository.drop_outbox(deployment_id)
        return
    marker = repository.outbox(deployment_id)
    for removed in (marker.get("also_clean") or []) if marker is not None else []:
        repository.clean(str(removed["deployment_id"]), removed["leftovers"])
    if marker is not None and marker.get("superseded"):
        repository.clean(deployment_id, marker["superseded"])
    attempts = current.attempts if current is not None else 0
    attribution = Attribution(
        state=AttributionState.GAVE_UP.value,
        mode=AttributionMode.NOTHING.value,
        attempts=attempts + 1,
        resolved_at=format_instant(now),
    )
    final = FinalAttribution(
        attribution=attribution,
        figures=None,
        commits=[],
        change_ids=frozenset(),
        marks=(),
        forget=awaiting_keys(store, space_id, deployment),
        dirty_at=None,
    )
    ledger = store.ledger(space_id, deployment.stream_key, deployment.id)
    repository.save_final(deployment, FinalWrite(final, ledger, new_id(now)), expected_attempts=attempts)
    logger.warning("attribution abandoned", extra={"space_id": space_id, "deployment_id": deployment_id})


# ---------------------------------------------------------------------------------------------
# Reading what a deployment shipped


def changes_page(store: Ports, space_id: str, deployment: Deployment, details_id: str, page: int) -> Deployment:
    """The deployment with page ``page`` (≥ 1) of its changes in place of the first one; 400 when the
    page is not one of its current attribution's (it was attributed again since the cursor was issued)."""
    attribution = deployment.attribution
    if attribution is None or attribution.details_id != details_id or not 1 <= page < attribution.pages:
        raise RequestInvalidError(
            "this cursor is not one of the deployment's current attribution: start again without it",
            field="attribution_cursor",
        )
    found = store.attribution(space_id).page(deployment.id, details_id, page)
    if found is None:  # pragma: no cover - pages are written before the attribution naming them
        raise RequestInvalidError(
            "this page of changes is gone: start again without a cursor", field="attribution_cursor"
        )
    shown = attribution.model_copy(
        update={
            "pull_requests": found.pull_requests,
            "commits": found.commits,
            "commits_repository": found.commits_repository,
        }
    )
    return deployment.model_copy(update={"attribution": shown})
