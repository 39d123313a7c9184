"""The core write path every dialect uses, and the native read paths for deployments.

validation (dialect) -> ``DeploymentDraft`` -> catalogue ids -> ``Deployment`` -> one
transaction with its idempotency record and the stream's dirty mark.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from dora_insights.domain.ids import new_id
from dora_insights.domain.model import (
    DEFAULT_CHANNEL,
    CatalogueEntry,
    CatalogueKind,
    Deployment,
    DeploymentDraft,
    tag_set_of,
)
from dora_insights.domain.records import NewDeployment, SpaceRecord, WriteOutcome
from dora_insights.domain.times import format_instant, month_runs
from dora_insights.errors import DoraError, ResourceNotFoundError, id_reused
from dora_insights.logic import attribution, catalogue
from dora_insights.observability import logger

if TYPE_CHECKING:
    from dora_insights.domain.health import StreamHealthRecord
    from dora_insights.domain.queries import DeploymentFilter
    from dora_insights.logic.freshness import Freshness
    from dora_insights.logic.ports import Ports

MAX_PAGE = 500
DEFAULT_PAGE = 50


def wanted_entities(space: SpaceRecord, draft: DeploymentDraft) -> list[tuple[CatalogueKind, str]]:
    wanted = [
        (CatalogueKind.PROJECT, draft.project),
        (CatalogueKind.ENVIRONMENT, draft.environment or space.default_environment),
        (CatalogueKind.CHANNEL, draft.channel or DEFAULT_CHANNEL),
    ]
    if draft.tenant:
        wanted.append((CatalogueKind.TENANT, draft.tenant))
    if draft.team:
        wanted.append((CatalogueKind.PROJECT_GROUP, draft.team))
    wanted.extend((CatalogueKind.TENANT_TAG_SET, tag_set_of(tag)[0]) for tag in draft.tenant_tags)
    return wanted


def build_deployment(
    space: SpaceRecord,
    draft: DeploymentDraft,
    entities: dict[tuple[CatalogueKind, str], CatalogueEntry],
    now: datetime,
    *,
    deployment_id: str | None = None,
) -> Deployment:
    """The stored form of a draft, given its catalogue entities."""

    def entity(kind: CatalogueKind, name: str | None) -> CatalogueEntry | None:
        return entities[(kind, name.casefold())] if name else None

    project = entity(CatalogueKind.PROJECT, draft.project)
    environment = entity(CatalogueKind.ENVIRONMENT, draft.environment or space.default_environment)
    channel = entity(CatalogueKind.CHANNEL, draft.channel or DEFAULT_CHANNEL)
    tenant = entity(CatalogueKind.TENANT, draft.tenant)
    group = entity(CatalogueKind.PROJECT_GROUP, draft.team)
    if (
        project is None or environment is None or channel is None
    ):  # pragma: no cover - wanted_entities asks for all three
        raise ValueError("project, environment and channel are always resolved")
    # The draft's fields go over as they are but for these: the names resolved in the catalogue above,
    # the instants stamped as text, and the client's id (the deployment's id when it gave one).
    resolved = {"client_id", "project", "environment", "tenant", "channel", "team"}
    stamped = {"finished_at", "started_at", "release_created_at"}
    fingerprints = draft.stored_fingerprints(space.default_environment)
    return Deployment(
        **draft.model_dump(exclude=resolved | stamped),
        id=deployment_id or draft.client_id or new_id(now),
        space_id=space.id,
        project=project.name,
        project_id=project.id,
        environment=environment.name,
        environment_id=environment.id,
        tenant=tenant.name if tenant else None,
        tenant_id=tenant.id if tenant else None,
        channel=channel.name,
        channel_id=channel.id,
        team=group.name if group else None,
        project_group_id=group.id if group else None,
        finished_at=format_instant(draft.finished_at),
        started_at=format_instant(draft.started_at) if draft.started_at else None,
        release_created_at=format_instant(draft.release_created_at) if draft.release_created_at else None,
        received_at=format_instant(now),
        body_hash=fingerprints[0],
        request_hashes=fingerprints[1:],
    )


def ingest(
    store: Ports,
    space: SpaceRecord,
    draft: DeploymentDraft,
    now: datetime,
    *,
    idempotency: tuple[str, str] | None = None,
) -> WriteOutcome:
    """Store one deployment (idempotent by client id or dialect idempotency key).

    A deployment naming code is attributed before it is written and stored with the result in one
    transaction (``attribution.create_attributed``: one write round trip); when that cannot be done
    at once, it is written with its outbox item and attributed right after; one naming more than
    ``INLINE_MERGE_SHAS`` merge commits is written with its outbox item and attributed by the retry
    queue's worker.

    A create the write would refuse (its id or key holds other values: 409 ``ID_REUSED``) registers no
    name: when it brings a name the catalogue does not have, its id and key are read (consistently) before
    the name is registered, and a reuse is refused then (``refuse_reused``); a deployment whose names are
    all known reads nothing more. Its new tenant tags are recorded once it is stored."""
    item = BulkItem(draft, idempotency)
    wanted = wanted_entities(space, draft)
    entities = catalogue.resolve(store, space.id, wanted, before_register=refuse_reused(store, space, item))
    outcome = _store_one(store, space, draft, entities, now, idempotency)
    catalogue.remember_tenant_tags(store, space.id, entities, draft.tenant_tags)
    return outcome


def _store_one(
    store: Ports,
    space: SpaceRecord,
    draft: DeploymentDraft,
    entities: dict[tuple[CatalogueKind, str], CatalogueEntry],
    now: datetime,
    idempotency: tuple[str, str] | None,
) -> WriteOutcome:
    """``ingest``'s write and attribution, its names resolved."""
    deployment = build_deployment(space, draft, entities, now)
    if idempotency is not None:  # a removal deletes the record with the deployment (logic/corrections.py)
        deployment = deployment.model_copy(update={"idempotency_key": idempotency})
    if len(draft.merge_commit_shas or ()) > INLINE_MERGE_SHAS:  # too many lookups for the request's time
        outcome = _write(store, deployment, now, idempotency)
        _attribute_many(store, space.id, [outcome], now)
        return outcome
    together = attribution.create_attributed(store, space.id, deployment, now, idempotency=idempotency)
    if together is not None:
        if not together.created:  # a client's retry: attribute the stored one if its first request died
            attribution.resume(store, space.id, together.deployment, now)
        return together
    outcome = _write(store, deployment, now, idempotency)
    _attribute(store, space.id, outcome, now)
    return outcome


def refuse_reused(store: Ports, space: SpaceRecord, item: BulkItem) -> catalogue.BeforeRegister:
    """The ``catalogue.resolve`` hook of a single create: a 409 (``errors.id_reused``) before any new name is
    registered when the write would refuse the create."""

    def check(_new: frozenset[tuple[CatalogueKind, str]]) -> tuple[()]:
        if refused_items(store, space, [item], {0}):
            raise id_reused()
        return ()

    return check


def _claims(item: BulkItem) -> list[tuple[str, str]]:
    """What a create is keyed by, as the write conditions it: its dialect idempotency key, and its
    client's id (as ``("", id)``). Neither a batch item's key, the item's own fingerprint (it only
    ever holds the same values) or for an id generated here."""
    claims: list[tuple[str, str]] = []
    if item.idempotency is not None and item.idempotency[0] != BATCH_DIALECT:
        claims.append(item.idempotency)
    if item.draft.client_id is not None:
        claims.append(("", item.draft.client_id))
    return claims


def refused_items(
    store: Ports, space: SpaceRecord, items: Sequence[BulkItem | DoraError], checked: Collection[int]
) -> set[int]:
    """The indexes among ``checked`` of the creates a write would refuse (``errors.id_reused``): their id or
    idempotency key holds other values (``Deployment.repeats`` fingerprints, as ``resolve_duplicate``
    compares), stored already or taken by an earlier item of ``items`` (a later item naming the id of an
    earlier one meets it as stored). One consistent batched read of the ids and keys ``checked`` name;
    none when they name none. A repeat with the same values is never refused."""
    wanted = {c for i in checked for c in _claims(cast("BulkItem", items[i]))}
    if not wanted:
        return set()
    ids, records = store.stored_body_hashes(
        space.id,
        deployment_ids=sorted(c[1] for c in wanted if not c[0]),
        idempotency_keys=sorted(c for c in wanted if c[0]),
    )
    held: dict[tuple[str, str], str] = {("", i): h for i, h in ids.items()} | records
    refused: set[int] = set()
    for index, item in enumerate(items):
        if isinstance(item, DoraError):
            continue
        mine = [c for c in _claims(item) if c in wanted]
        if not mine:
            continue
        same = item.draft.stored_fingerprints(space.default_environment)
        body_hash = same[0]
        if any(c in held and held[c] not in same for c in mine):
            if index in checked:
                refused.add(index)
            continue
        for claim in mine:
            held.setdefault(claim, body_hash)
    return refused


# Merge commit shas a deployment may name for its attribution to run in the request: each costs two
# Queries of the pull requests by sha (pattern 76/77), ~4 with the attribution's second look, so 50 are
# ~200 Queries (1-2 s against DynamoDB); more (DX takes up to 1,000) go to the retry queue's worker, as
# a batch's do, so the request stays far inside API Gateway's 29 s and the deployment is stored first.
INLINE_MERGE_SHAS = 50


def _write(
    store: Ports, deployment: Deployment, now: datetime, idempotency: tuple[str, str] | None = None
) -> WriteOutcome:
    """The deployment's transaction, with the attribution it is owed (an outbox item) when it names code."""
    due = attribution.outbox_due(deployment, now)
    return store.deployments().write(NewDeployment(deployment, idempotency, due), now=format_instant(now))


def _attribute(store: Ports, space_id: str, outcome: WriteOutcome, now: datetime) -> None:
    """Attribute a new deployment at once; for a repeat (a client's retry), attribute the stored one
    if the first request died before its attribution ran."""
    if outcome.created:
        owed = attribution.owes_attribution(outcome.deployment)
        outbox = attribution.NEW_OUTBOX if owed else None
        attribution.attribute_at_ingest(store, space_id, outcome.deployment, now, outbox=outbox)
    else:
        attribution.resume(store, space_id, outcome.deployment, now)


# Deployments per deferred-attribution message: one stream's, attempted in finish order by the retry
# function, which takes 10 messages per batch in its 60 s (template/base.yaml).
RETRY_GROUP = 10
BATCH_DIALECT = "batch"  # the idempotency keys of native batch items sent without an id (pattern 13)


class BulkItem(NamedTuple):
    """One deployment of a bulk create: its draft and its dialect idempotency key (None: the draft's
    ``client_id``, or a generated id, is the only key)."""

    draft: DeploymentDraft
    idempotency: tuple[str, str] | None = None


def ingest_batch(
    store: Ports, space: SpaceRecord, drafts: Sequence[DeploymentDraft | DoraError], now: datetime
) -> list[WriteOutcome | DoraError]:
    """Store many deployments; items that failed validation (or conflict) are reported, not fatal.

    An item with an id is keyed by it; an item without one by its fingerprint (``BATCH_DIALECT``), the
    n-th identical item of the batch by the fingerprint and n, so a client's retry of a batch that
    timed out stores nothing twice and identical items of one batch are still each stored."""
    seen: Counter[str] = Counter()
    items: list[BulkItem | DoraError] = []
    for draft in drafts:
        if isinstance(draft, DoraError) or draft.client_id is not None:
            items.append(draft if isinstance(draft, DoraError) else BulkItem(draft))
            continue
        fingerprint = draft.fingerprint()
        repeat = seen[fingerprint]
        seen[fingerprint] += 1
        items.append(BulkItem(draft, (BATCH_DIALECT, f"{fingerprint}#{repeat}" if repeat else fingerprint)))
    return ingest_many(store, space, items, now)


def ingest_many(
    store: Ports, space: SpaceRecord, items: Sequence[BulkItem | DoraError], now: datetime
) -> list[WriteOutcome | DoraError]:
    """The bulk write path (native batch, DX backfill): one result per item, in order, each item stored
    as ``ingest`` stores one (all or nothing with its idempotency record, outbox item and dirty mark),
    in few round trips: the catalogue resolved once for every item, what is stored already read in
    batches, the rest written in multi-item transactions (``DeploymentRepository.write_many``), the
    attributions owed deferred to the retry queue (``_attribute_many``)."""
    keys_of = {
        index: {(kind, name.casefold()) for kind, name in wanted_entities(space, item.draft)}
        for index, item in enumerate(items)
        if isinstance(item, BulkItem)
    }
    refused: set[int] = set()

    def withdraw(new: frozenset[tuple[CatalogueKind, str]]) -> set[tuple[CatalogueKind, str]]:
        """The new names only items the write would refuse bring (not registered; those items are refused
        here). Only as many items are checked as it takes: for each new name, one item bringing it, one
        keyed by nothing of its own first (it reads nothing); another when that one is refused; in the
        last round every one left. Typically one batched read, whatever the batch's size."""
        bringers = {
            name: sorted(
                (i for i, w in keys_of.items() if name in w), key=lambda i: bool(_claims(cast("BulkItem", items[i])))
            )
            for name in new
        }
        covered: set[tuple[CatalogueKind, str]] = set()
        tried: set[int] = set()
        for round_ in range(_COVER_ROUNDS):
            pick: set[int] = set()
            for name in new - covered:
                untried = [i for i in bringers[name] if i not in tried]
                pick.update(untried if round_ == _COVER_ROUNDS - 1 else untried[:1])
            if not pick:
                break
            found = refused_items(store, space, items, pick)
            tried |= pick
            refused.update(found)
            for index in pick - found:
                covered |= keys_of[index] & new
        return set(new - covered)

    wanted = [w for item in items if isinstance(item, BulkItem) for w in wanted_entities(space, item.draft)]
    entities = catalogue.resolve(store, space.id, wanted, before_register=withdraw)
    entries: list[NewDeployment] = []
    for index, item in enumerate(items):
        if isinstance(item, DoraError) or index in refused:
            continue
        deployment = build_deployment(space, item.draft, entities, now)
        if item.idempotency is not None:  # a removal deletes the record with the deployment
            deployment = deployment.model_copy(update={"idempotency_key": item.idempotency})
        entries.append(NewDeployment(deployment, item.idempotency, attribution.outbox_due(deployment, now)))
    written = iter(store.deployments().write_many(entries, now=format_instant(now)))
    results: list[WriteOutcome | DoraError] = [
        item if isinstance(item, DoraError) else id_reused() if index in refused else next(written)
        for index, item in enumerate(items)
    ]
    stored = [t for item, r in zip(items, results, strict=True) if isinstance(r, WriteOutcome) for t in _tags(item)]
    catalogue.remember_tenant_tags(store, space.id, entities, stored)
    _attribute_many(store, space.id, [r for r in results if isinstance(r, WriteOutcome)], now)
    return results


def _tags(item: BulkItem | DoraError) -> tuple[str, ...]:
    return () if isinstance(item, DoraError) else item.draft.tenant_tags


# Rounds of ``ingest_many``'s checks of the items bringing new names (the last checks every one left).
_COVER_ROUNDS = 3


def _unrecorded(deployment: Deployment) -> bool:
    """A repeat naming code whose attribution was never recorded (cut before it ran): a success owed one,
    or a failure, whose ``None`` (ships nothing) is recorded too, as ``attribution.resume`` does."""
    return deployment.attribution is None and attribution.has_code_inputs(deployment)


def _attribute_many(store: Ports, space_id: str, outcomes: Sequence[WriteOutcome], now: datetime) -> None:
    """Attribution after a bulk write, deferred: every deployment ``_attribute`` would attempt at once
    (a new one naming code; a repeat owed an attribution that never ran) is named in a retry message
    due at once, one per stream (``RETRY_GROUP`` deployments at most, in finish order; ten messages
    per SQS call), and the retry function attempts them after the answer. A new deployment owed an
    attribution has its outbox item, so a message SQS refused is re-driven by the sweep; without a
    queue, or when SQS refuses, the rest is attempted here."""
    due = [
        o.deployment
        for o in outcomes
        if (o.created and attribution.has_code_inputs(o.deployment)) or (not o.created and _unrecorded(o.deployment))
    ]
    if not due:
        return
    queue = store.retry_queue()
    if queue is not None:
        ordered = sorted(due, key=lambda d: (d.stream_key, d.finished_at, d.id))
        by_stream: dict[str, list[Deployment]] = {}
        for d in ordered:
            by_stream.setdefault(d.stream_key, []).append(d)
        groups: list[list[str]] = []
        afters: list[str | None] = []  # each group's stream success before it: its messages may come in any order
        for members in by_stream.values():
            for start in range(0, len(members), RETRY_GROUP):
                groups.append([d.id for d in members[start : start + RETRY_GROUP]])
                before = [d for d in members[:start] if d.is_successful]
                afters.append(before[-1].id if before else None)
        try:
            queue.send_groups(space_id, groups, afters)
            return
        except Exception:
            logger.exception("deferring a bulk write's attributions failed", extra={"deployments": len(ordered)})
        outcomes = [o for o in outcomes if not attribution.owes_attribution(o.deployment)]  # the sweep has those
    for outcome in outcomes:
        _attribute(store, space_id, outcome, now)


def stored_deployment(store: Ports, space_id: str, deployment_id: str, *, consistent: bool = True) -> Deployment:
    """One deployment of the space as stored, or 404 (another space's id is unknown here). Read
    consistently by default, as the table holds it now: a client that just created, changed or removed
    it reads what it wrote (its new revision for an If-Match), as DynamoDB's default read may not."""
    deployment = store.deployments().get(space_id, deployment_id, consistent=consistent)
    if deployment is None:
        raise ResourceNotFoundError(f"deployment '{deployment_id}' not found")
    return deployment


def get_deployment(store: Ports, space_id: str, deployment_id: str) -> Deployment:
    """One deployment of the space, or 404, with the figures of the latest recompute when there are
    some ("why is my metric what it is"); before that, what attribution found."""
    return _with_figures(store, space_id, stored_deployment(store, space_id, deployment_id))


def with_figures(store: Ports, space_id: str, deployment: Deployment) -> Deployment:
    """The deployment with the figures of its stream's latest recompute, when there are some."""
    return _with_figures(store, space_id, deployment)


def _with_figures(store: Ports, space_id: str, deployment: Deployment, generation: str | None = None) -> Deployment:
    # Imported here: the figures module serves the reads; the ingest functions that import this module never load it.
    from dora_insights.domain.figures import figures_of

    record = store.metrics().deployment_figures(
        space_id, deployment.stream_key, deployment.id, deployment.finished_at[:7], generation=generation
    )
    if record is not None:
        deployment = deployment.model_copy(update={"figures": figures_of(record).to_model()})
    return deployment


def get_deployment_and_stream_health(
    store: Ports, space_id: str, deployment_id: str, now: datetime
) -> tuple[Deployment, StreamHealthRecord | None, Freshness]:
    """:func:`get_deployment` with its stream brought up to date first when little waits
    (``freshness.read_stream``), its stream's recompute failure record when the stream fails or is
    quarantined (None while it recomputes fine: one more GetItem), and how fresh its figures are."""
    from dora_insights.logic import freshness, health

    found = stored_deployment(store, space_id, deployment_id)
    stream = freshness.read_stream(store, space_id, found.stream_key, now)
    deployment = _with_figures(store, space_id, found, stream.generation) if stream.generation else found
    return deployment, health.stream_health(store, space_id, deployment.stream_key), stream.freshness


def list_deployments(
    store: Ports,
    space_id: str,
    filters: DeploymentFilter,
    *,
    limit: int = DEFAULT_PAGE,
    cursor: str | None = None,
) -> tuple[list[Deployment], str | None]:
    """Newest first by finish time, with an opaque cursor; a time-bounded Query, never a Scan."""
    from dora_insights.domain.queries import DeploymentListQuery  # the ingest functions never list

    project_id = catalogue.filter_id(store, space_id, CatalogueKind.PROJECT, filters.project)
    environment_id = catalogue.filter_id(store, space_id, CatalogueKind.ENVIRONMENT, filters.environment)
    tenant_id = catalogue.filter_id(store, space_id, CatalogueKind.TENANT, filters.tenant)
    if "" in (project_id, environment_id, tenant_id):
        return [], None
    resolved = replace(filters, project=project_id, environment=environment_id, tenant=tenant_id)
    page, next_cursor = store.deployments().list_page(
        space_id, DeploymentListQuery(resolved, limit=limit, cursor=cursor)
    )
    return _with_latest_figures(store, space_id, page), next_cursor


def _with_latest_figures(store: Ports, space_id: str, page: list[Deployment]) -> list[Deployment]:
    """The page with each deployment's figures from its stream's latest recompute, as ``get_deployment``
    answers them (those of a stream not computed yet: what attribution found). One BatchGetItem of the
    streams' pointers (per 100; strongly consistent, since a recompute deletes the generation it leaves),
    then per computed stream one Query per run of consecutive months its deployments finished in (a
    filtered page of two deployments a year apart does not read the year between). Unlike the read of
    one, no stream is brought up to date first."""
    from dora_insights.domain.figures import figures_of

    by_stream: dict[str, list[Deployment]] = {}
    for deployment in page:
        by_stream.setdefault(deployment.stream_key, []).append(deployment)
    metrics = store.metrics()
    pointers = metrics.registrations(space_id, by_stream, consistent=True)
    latest: dict[str, dict[str, Any]] = {}
    for stream, members in by_stream.items():
        generation = (pointers.get(stream) or {}).get("generation")
        if generation is None:
            continue
        for first, last in month_runs(d.finished_at[:7] for d in members):
            ids = [d.id for d in members if first <= d.finished_at[:7] <= last]
            latest.update(metrics.stream_figures(space_id, stream, str(generation), ids, (first, last)))
    return [
        d.model_copy(update={"figures": figures_of(latest[d.id]).to_model()}) if d.id in latest else d for d in page
    ]
