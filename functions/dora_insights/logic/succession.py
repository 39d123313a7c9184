"""Succession in a stream (METRICS §5): which successful deployments' shipments start where another's
ends, and so change when a success appears at a place in the stream or leaves it.

A stream's successful deployments share out its changes, each shipping what came after its previous
success and the stream's branch marks. A success that appears at a place (a failure corrected to
success, a late arrival: ``logic/corrections``, ``logic/attribution``) or leaves it (a deletion, a
correction to failure, a DX replacement moving it: ``logic/corrections``, ``logic/dx``) changes what the
stream's next success naming code ships (``successor_of``) and, when that one deployed an older commit,
what the successes after it ship, up to the first one whose start stays (``following``). A success not
attributed yet (none, or Pending) is walked past: it reads the stream as it stands when its turn comes, and
a later success may have been attributed before it was stored (``first_attributed``). These are the reads
both the corrections and the attribution's late-arrival path make; they import nothing of either.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

from dora_insights.domain.attribution import AttributionState, maybe_repository, maybe_sha
from dora_insights.domain.changes import Commit, shas_match
from dora_insights.domain.model import Deployment
from dora_insights.domain.times import parse_stored
from dora_insights.observability import logger

if TYPE_CHECKING:
    from dora_insights.logic.ports import Ports

__all__ = [
    "FINAL_STATES",
    "MAX_FOLLOWING",
    "Reach",
    "first_attributed",
    "following",
    "has_code_inputs",
    "next_naming_code",
    "reach_once_successful",
    "recorded_marks",
    "successor_of",
    "waits",
]

FINAL_STATES = frozenset({AttributionState.RESOLVED.value, AttributionState.GAVE_UP.value})
# Successful deployments one change attributes again after the deployment it concerns (``following``): two
# items each in its transaction (DynamoDB takes 100), and, when that deployment becomes (or arrives as) a
# success, what each had shipped on its outbox item (a first page of changes, at most 8 KB each: the item
# takes 400 KB).
MAX_FOLLOWING = 20

# A branch mark as attribution records it: (repository, branch) -> position.
Reach = dict[tuple[str, str], int]


def has_code_inputs(deployment: Deployment) -> bool:
    """Whether a deployment names anything attribution can use."""
    return bool(deployment.repository or deployment.merge_commit_shas or deployment.commit_sha)


def successor_of(store: Ports, space_id: str, anchor: Deployment) -> Deployment | None:
    """The stream's next successful deployment after ``anchor`` that names code: its history starts
    at its previous success and at the stream's marks, which the correction changes.

    When ``anchor`` names code, successes naming none in between are walked past: attribution neither
    reads nor moves the stream's marks for them, so the next one naming code is the one whose shipment
    starts where ``anchor``'s ends, and takes over or gives back what ``anchor`` shipped (as a fresh
    ingest of the corrected history would). An ``anchor`` naming no code moves no mark: it changes only
    its next success's previous success, which matters only when that one names code.

    Read as attribution reads it (``consistent``, ``recent``): a next success posted a moment before the
    correction is not in the stream's index yet, and a correction that missed it left the commits it
    hands over shipped by nobody (or, restoring a success, shipped twice), for good."""
    repository = store.attribution(space_id)
    successor = repository.next_success(anchor, consistent=True, recent=True)
    if successor is None or has_code_inputs(successor):
        return successor
    if not has_code_inputs(anchor):
        return None
    return next_naming_code(store, space_id, successor)


def recorded_marks(deployment: Deployment) -> Reach:
    """The branch marks a deployment's final attribution recorded (none while it is not final)."""
    current = deployment.attribution
    if current is None or current.state not in FINAL_STATES:
        return {}
    found: Reach = {}
    for mark in current.marks:
        where = (str(mark.get("repository")), str(mark.get("branch")))
        found[where] = max(int(mark.get("position", 0)), found.get(where, 0))
    return found


def _beyond(reach: Reach, deployment: Deployment) -> Reach:
    """What of ``reach`` lies beyond every mark ``deployment`` recorded on the same branch: past a
    deployment that shipped up to (or past) the corrected one's mark, the stream's marks are the same
    with the correction as without it."""
    recorded = recorded_marks(deployment)
    return {where: position for where, position in reach.items() if recorded.get(where, -1) < position}


def waits(deployment: Deployment) -> bool:
    """Whether a success is not attributed yet: no attribution (its attempt has not run, or was reset by a
    correction to run again) or a Pending one. Its attempt comes (the retry queue, the sweep, the code data
    or the previous success that wakes it) and reads the stream as it stands then."""
    current = deployment.attribution
    return current is None or current.state == AttributionState.PENDING.value


def _may_move(deployment: Deployment, reach: Reach) -> bool:
    """Whether a later success attributed already (``waits`` is false) may start elsewhere once the marks
    in ``reach`` are added to or taken from the stream before it: a final attribution that recorded a mark on
    a branch of ``reach``, or recorded none (it shipped nothing new: an older commit, a redeploy). One whose
    marks lie on other branches started from those: its start stays."""
    recorded = recorded_marks(deployment)
    return not recorded or any(where in reach for where in recorded)


def following(
    store: Ports,
    space_id: str,
    successor: Deployment | None,
    reach: Reach,
    *,
    skip: Collection[str] = (),
) -> list[Deployment]:
    """The deployments to attribute again after a change at one place of a stream, in stream order:
    ``successor`` (the next success naming code, ``successor_of``, or the first attributed one past those
    waiting, ``first_attributed``), then the later ones whose shipment starts at a mark the change moves.

    ``reach``: the branch marks of the changed deployment's shipment (before the change when it stops
    being successful or is deleted, after it when it becomes successful or arrives late). A stream's mark
    before a deployment is the furthest one an earlier deployment shipped to; a later success's shipment
    starts there, so it moves as long as no deployment since the changed one shipped up to (or past) its
    mark on that branch: while the successor and those after it deployed older commits (METRICS §5).

    A success not attributed yet (``waits``: none, or Pending) is walked past, not planned: its own attempt
    comes and reads the stream as it stands then (those planned after it wait for it, their previous success
    not final; a late one's attempt takes back what later attributed ones shipped, ``logic/attribution``).
    Its shipment is not known, so the walk goes on past it with ``reach`` unchanged, to the attributed ones a
    success stored later than them may have been attributed before (an out-of-order arrival, a batch). So do
    deployments of ``skip`` (a DX upsert's own version at its old place, which the index shows until the
    replacement's write). The walk stops at the first attributed success whose start stays (its attribution
    recorded a mark at or past ``reach``'s on the branch, or on other branches only), and after
    ``MAX_FOLLOWING`` deployments planned or walked past (logged). Each step is one read of the stream's index
    (``successor_of``); when the successor shipped past the changed deployment's mark (the common case) there
    is none."""
    if successor is None:
        return []
    chain = [successor]
    reach = _beyond(reach, successor)
    at, passed = successor, 0
    while reach:
        later = successor_of(store, space_id, at)
        if later is None:
            break
        walked_past = later.id in skip or waits(later)
        if not walked_past and not _may_move(later, reach):
            break
        if len(chain) + passed >= MAX_FOLLOWING:
            logger.warning(
                "a change in a stream moves the start of more deployments than it attributes again; the later"
                " ones keep what they shipped",
                extra={"space_id": space_id, "deployment_id": later.id, "attributed_again": len(chain)},
            )
            break
        at = later
        if walked_past:
            passed += 1
            continue
        chain.append(later)
        reach = _beyond(reach, later)
    return chain


def first_attributed(
    store: Ports, space_id: str, successor: Deployment | None, *, skip: Collection[str] = ()
) -> Deployment | None:
    """``successor`` (a stream's next success naming code, ``successor_of``) when it is attributed already,
    else the first success after it that is, walking past those not attributed yet (``waits``) and those of
    ``skip``: one read of the stream's index per success walked past (``successor_of``), at most
    ``MAX_FOLLOWING`` (past that, logged, None). A success attributed while the ones before it were not was
    attributed before they were stored (an out-of-order arrival, a batch) or ran again: it shipped what they
    ship. None when there is none (the stream's newest is reached)."""
    found, passed = successor, 0
    while found is not None and (found.id in skip or waits(found)):
        if passed >= MAX_FOLLOWING:
            logger.warning(
                "no attributed success within the walk's bound after successes not attributed yet; none handed back",
                extra={"space_id": space_id, "deployment_id": found.id, "walked_past": passed},
            )
            return None
        found, passed = successor_of(store, space_id, found), passed + 1
    return found


def reach_once_successful(
    store: Ports,
    space_id: str,
    deployment: Deployment,
    successor: Deployment | None,
    *,
    read: Callable[[str, Collection[str]], Sequence[Commit]] | None = None,
) -> Reach | None:
    """The branch marks ``deployment``'s shipment will record once it is successful: those of its
    ``commit_sha`` on its repository's branches (rule 3: the other rules record none). Empty, read
    without a Query, when ``successor`` shipped that commit (it was shipped past it then: the common case); else one
    Query of the code data (``read``: a ``commits_by_sha`` that may answer without one, from what an
    attempt just read; else the space's code data's). Without a successor there is nothing to walk: nothing
    to read. None when the commit is not in the code data yet: where the shipment will end is not known
    (its attribution waits, and takes back what later successes shipped once it resolves, as a late
    arrival's does: ``logic/attribution._hand_back``)."""
    if successor is None or deployment.merge_commit_shas or deployment.integration_branch:
        return {}
    repository, sha = maybe_repository(deployment.repository), maybe_sha(deployment.commit_sha)
    if repository is None or sha is None:
        return {}
    if _shipped_past(successor, sha):
        return {}
    found = (read or store.code(space_id).commits_by_sha)(repository, [sha])
    if not found:
        return None
    reach: Reach = {}
    for commit in found:
        where = (commit.repository, commit.branch)
        reach[where] = max(commit.position, reach.get(where, commit.position))
    return reach


def _shipped_past(deployment: Deployment, sha: str) -> bool:
    """Whether ``deployment``'s attribution shipped commit ``sha`` (on its first page of changes) and
    recorded a mark: its shipment reached that commit, so the mark lies at or past it."""
    current = deployment.attribution
    shipped = current.commits if current is not None and recorded_marks(deployment) else []
    return any(shas_match(sha, commit) for commit in shipped)


def next_naming_code(store: Ports, space_id: str, after: Deployment) -> Deployment | None:
    """The first successful deployment naming code after ``after`` in its stream: one read of the
    stream's index from ``after`` on (pages growing as the successes it passes name no code, at most
    ``EventSearchRepository``'s read bound); None when there is none, or none within that bound (logged:
    the marks a deployment that far on is rewound to are not exact either)."""
    # Imported here: the ingest route imports this module (the late-arrival walk), and only this rare
    # path (a success naming no code) needs these; at import they cost its cold start (bench/cold_start.py).
    from dora_insights.domain.figures import stream_order_key
    from dora_insights.domain.queries import EventPage, ListScope

    position = stream_order_key(after)

    def names_code(candidate: Deployment) -> bool:
        return candidate.is_successful and has_code_inputs(candidate) and stream_order_key(candidate) > position

    page = EventPage(lowest=parse_stored(after.finished_at), ascending=True, limit=1)
    found, rest = store.event_search().deployments_page(
        space_id, scope=ListScope(stream=after.stream_key), page=page, keep=names_code
    )
    if not found and rest is not None:
        logger.warning(
            "no deployment naming code within the read bound after a corrected one; not attributed again",
            extra={"space_id": space_id, "deployment_id": after.id},
        )
    return found[0] if found else None
