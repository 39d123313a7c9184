"""Catalogue entities (METRICS §1): registered on first sight with ids ``Projects-N`` etc."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING

from dora_insights.domain.model import CatalogueEntry, CatalogueKind, tag_set_of
from dora_insights.errors import WriteContendedError

if TYPE_CHECKING:  # an annotation: the ingest function need not create the Protocols
    from dora_insights.logic.ports import CatalogueRepository

# Name -> entity mappings never change once registered, so a warm function keeps them:
# after the first request a known project costs no read at all.
_CACHE: dict[tuple[str, CatalogueKind, str], CatalogueEntry] = {}
_CACHE_LIMIT = 10_000
_ROUNDS = 5  # read, then register what is missing; again after a lost race
_BACKOFF_SECONDS = 0.02  # the ceiling of the pause after the first lost race, doubling after each


def clear_cache() -> None:
    """Forget cached entities (tests drop the table between cases)."""
    _CACHE.clear()
    _KNOWN_TAGS.clear()


# Called with the (kind, casefolded name) keys a ``resolve`` is about to register; answers those not to
# register after all (or raises: then nothing is registered).
BeforeRegister = Callable[[frozenset[tuple[CatalogueKind, str]]], Collection[tuple[CatalogueKind, str]]]


def resolve(
    store: CatalogueRepository,
    space_id: str,
    wanted: Iterable[tuple[CatalogueKind, str]],
    *,
    before_register: BeforeRegister | None = None,
) -> dict[tuple[CatalogueKind, str], CatalogueEntry]:
    """Entities for (kind, name) pairs, registering the new ones atomically; keyed by (kind, casefolded name).

    The first read is eventually consistent (cheapest: names, once registered, never change). A
    registration that lost a race (a concurrent request registered one of the names first, or is
    registering it) is followed by a short jittered pause and a strongly consistent read, which sees
    the winner's entity; a name still missing is registered again under the number drawn for it
    before (no new draw, no new gap: only a name the other request took leaves its number unused).

    ``before_register`` is called once, only when a name is to be registered, before any number is
    drawn: it may refuse the request (raise: nothing registered) or withdraw names (those it answers are
    neither registered nor in the result), so a write bound to be refused leaves no name behind."""
    requested: dict[tuple[CatalogueKind, str], str] = {}
    for kind, name in wanted:  # the first spelling wins (METRICS §1), as when the names come one by one
        requested.setdefault((kind, name.casefold()), name)
    result: dict[tuple[CatalogueKind, str], CatalogueEntry] = {}
    missing: dict[tuple[CatalogueKind, str], str] = {}
    for (kind, folded), name in requested.items():
        cached = _CACHE.get((space_id, kind, folded))
        if cached is not None:
            result[(kind, folded)] = cached
        else:
            missing[(kind, folded)] = name
    drawn: dict[tuple[CatalogueKind, str], int] = {}  # numbers of entities a lost round did not register
    for attempt in range(_ROUNDS):
        if not missing:
            break
        if attempt:
            pause_after_lost_race(attempt - 1)
        wanted_names = [(kind, name) for (kind, _), name in missing.items()]
        found = store.find_catalogue_names(space_id, wanted_names, consistent=attempt > 0)
        for found_key, entry in found.items():
            result[found_key] = entry
            missing.pop(found_key, None)
        if not missing:
            break
        if before_register is not None:
            for withdrawn in before_register(frozenset(missing)):
                missing.pop(withdrawn, None)
            before_register = None
            if not missing:
                break
        counts: dict[str, int] = {}
        for kind, folded in missing:
            if (kind, folded) not in drawn:
                counts[kind.value] = counts.get(kind.value, 0) + 1
        numbers = store.next_numbers(space_id, counts) if counts else {}
        new_entries: list[CatalogueEntry] = []
        number_of: dict[str, int] = {}
        for (kind, folded), name in missing.items():
            if (kind, folded) not in drawn:
                drawn[(kind, folded)] = numbers[kind.value].pop(0)
            number = drawn[(kind, folded)]
            entry = CatalogueEntry(kind=kind, id=f"{kind.value}-{number}", name=name)
            number_of[entry.id] = number
            new_entries.append(entry)
        # 50 entities (100 items) per transaction; a chunk that lost a race is re-read next round.
        for chunk in _chunks(new_entries, 50):
            if store.register_catalogue(space_id, chunk, number_of):
                for entry in chunk:
                    result[(entry.kind, entry.name.casefold())] = entry
                    missing.pop((entry.kind, entry.name.casefold()), None)
    if missing:  # only under a storm of concurrent registrations of the same names: contention, a 503
        raise WriteContendedError("catalogue registration did not settle, for concurrent writes; retry the request")
    if len(_CACHE) > _CACHE_LIMIT:
        _CACHE.clear()
    for (kind, folded), entry in result.items():
        _CACHE[(space_id, kind, folded)] = entry
    return result


_KNOWN_TAGS: set[tuple[str, str, str]] = set()


def remember_tenant_tags(
    store: CatalogueRepository,
    space_id: str,
    entities: dict[tuple[CatalogueKind, str], CatalogueEntry],
    tenant_tags: Iterable[str],
) -> None:
    """Add newly seen tags to their tenant tag sets (one UpdateItem per set, only on first sight)."""
    new: dict[str, set[str]] = {}
    for tenant_tag in tenant_tags:
        set_name, tag = tag_set_of(tenant_tag)
        entry = entities[(CatalogueKind.TENANT_TAG_SET, set_name.casefold())]
        if (space_id, entry.id, tag) not in _KNOWN_TAGS:
            new.setdefault(entry.id, set()).add(tag)
    by_id = {e.id: e for e in entities.values()}
    for set_id, tags in new.items():
        store.add_tenant_tags(space_id, by_id[set_id], tags)
        _KNOWN_TAGS.update((space_id, set_id, tag) for tag in tags)


def pause_after_lost_race(lost: int) -> None:
    """Wait before reading again after the ``lost``-th lost race (from 0): 10-20 ms, doubling."""
    ceiling = _BACKOFF_SECONDS * 2**lost
    time.sleep(random.uniform(ceiling / 2, ceiling))  # noqa: S311 - a backoff's jitter, not a secret


def _chunks(entries: list[CatalogueEntry], size: int) -> list[list[CatalogueEntry]]:
    return [entries[i : i + size] for i in range(0, len(entries), size)]


def filter_id(store: CatalogueRepository, space_id: str, kind: CatalogueKind, value: str | None) -> str | None:
    """The id a list filter names by id or name: None for no filter (none given, or an empty value: a client
    building ``?environment=${selected}`` with nothing selected, read as ``/summary`` reads it), '' when it
    names nothing known (so nothing matches)."""
    if not value:
        return None
    if kind.id_shaped(value):
        return value
    entry = store.find_catalogue_names(space_id, [(kind, value)]).get((kind, value.casefold()))
    return entry.id if entry else ""


def list_entities(
    store: CatalogueRepository,
    space_id: str,
    kind: CatalogueKind,
    *,
    partial_name: str | None = None,
    ids: Iterable[str] = (),
) -> list[CatalogueEntry]:
    """The entities of a kind in the space, by id number; Octopus' list filters: with ``partial_name``
    only those whose name contains it in any case (casefolded, as names are compared), with ``ids`` only
    those of these ids (none given, no filter). Read consistently: an entity a deployment registered a
    moment ago is listed (a small partition: twice the capacity of a few items)."""
    entries = store.list_catalogue(space_id, kind, consistent=True)
    if partial_name:
        needle = partial_name.casefold()
        entries = [e for e in entries if needle in e.name.casefold()]
    wanted = set(ids)
    if wanted:
        entries = [e for e in entries if e.id in wanted]
    return entries
