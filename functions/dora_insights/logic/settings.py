"""Space settings (``GET/PATCH /api/{spaceId}/settings``, admin): the failure window, and how
``/summary`` reads when a request leaves something out.

- ``failure_window_hours`` (METRICS §2 rule 5) changes every stream's figures: a change marks every
  stream of the space dirty (``_every_stream``: those the recompute has not computed yet too), so the
  recompute (and a read's refresh, METRICS §8) computes them again with the new window. The recompute
  reads the window from the space record (``SpaceRecord.failure_window_hours``): that record is the one
  place it lives.
- ``default_environment``, ``default_benchmark`` and ``production_environments`` only change how
  ``/summary`` filters and grades the figures already computed (``logic/summary.py``): no stream is
  marked, nothing is recomputed.

PATCH semantics: only the fields given change, ``null`` resets a field to the service default.
Optimistic concurrency: the space's settings carry a ``revision``; a change given the revision it
read (``revision`` in the body or ``If-Match``) is refused with 412 when another change came first;
a change without one is applied to whatever is current (re-read and re-applied if it races).

Dirty marks: with fewer than 100 streams they are written in the settings' own transaction. A space
with more marks the rest 100 to a transaction after it; the settings carry ``marks_owed`` until
then, so a crash in between leaves the debt recorded, and the scheduled recompute's next visit of the
space (``pay_owed_marks``), or the next change of the settings, marks every stream again (marking a
marked stream again is harmless).

Every change is logged (who, when, before and after) and the last one's time and author are kept
on the settings (``updated_at``, ``updated_by``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Literal

from dora_insights.domain.figures import FIGURES_FORMAT
from dora_insights.domain.model import CatalogueKind
from dora_insights.domain.records import DEFAULT_FAILURE_WINDOW_HOURS, EnvironmentRef, SpaceRecord, SpaceSettings
from dora_insights.domain.tiers import DEFAULT_BENCHMARK, benchmarks
from dora_insights.domain.times import format_instant
from dora_insights.errors import (
    PreconditionFailedError,
    RequestInvalidError,
    ResourceConflictError,
    ResourceNotFoundError,
)
from dora_insights.logic.ports import Ports
from dora_insights.observability import logger

_MARKS_WITH_SETTINGS = 99  # one transaction holds 100 items: the settings and 99 dirty marks
_ATTEMPTS = 5  # re-reads of a change without a revision that keeps racing other changes
_LISTED_NAMES = 20  # known environments named in an error


class Unchanged(enum.Enum):
    """A field a PATCH does not name."""

    UNCHANGED = "unchanged"


UNCHANGED = Unchanged.UNCHANGED


@dataclass(frozen=True)
class SettingsChange:
    """What a PATCH asks: a field left ``UNCHANGED`` keeps its value, ``None`` resets it to the service
    default. Environments are named by catalogue name (any case) or id."""

    failure_window_hours: float | Literal[Unchanged.UNCHANGED] | None = UNCHANGED
    default_environment: str | Literal[Unchanged.UNCHANGED] | None = UNCHANGED
    default_benchmark: str | Literal[Unchanged.UNCHANGED] | None = UNCHANGED
    production_environments: Sequence[str] | Literal[Unchanged.UNCHANGED] | None = UNCHANGED


def benchmark_of(settings: SpaceSettings) -> str:
    """The tier table ``/summary`` grades with when a request names none."""
    return settings.default_benchmark or DEFAULT_BENCHMARK


def get_settings(store: Ports, space_id: str) -> SpaceRecord:
    """The space with its current settings (a consistent read: its revision is the one to send back), or 404."""
    space = store.get_space(space_id, consistent=True)
    if space is None:
        raise ResourceNotFoundError(f"space '{space_id}' not found")
    return space


def update_settings(
    store: Ports,
    space_id: str,
    change: SettingsChange,
    *,
    expected_revision: int | None,
    by: str,
    now: datetime,
) -> SpaceRecord:
    """Apply ``change`` to the space's settings; the space as it is then.

    400 for a value that names nothing (an unknown environment or benchmark), 404 for an unknown
    space, 412 when ``expected_revision`` is given and is not the current revision. A change of the
    failure window marks every stream of the space dirty (see the module docstring)."""
    stamp = format_instant(now)
    for _attempt in range(_ATTEMPTS):
        space = get_settings(store, space_id)
        current = space.settings
        if expected_revision is not None and expected_revision != current.revision:
            raise _stale(expected_revision, current.revision)
        proposed = _apply(store, space_id, current, change)
        window_changed = proposed.failure_window_hours != current.failure_window_hours
        if proposed == current and not current.marks_owed:
            return space  # nothing changes: nothing is written, the revision stays
        streams = _every_stream(store, space_id) if window_changed or current.marks_owed else []
        first, rest = streams[:_MARKS_WITH_SETTINGS], streams[_MARKS_WITH_SETTINGS:]
        updated = replace(
            proposed, revision=current.revision + 1, updated_at=stamp, updated_by=by, marks_owed=bool(rest)
        )
        if not store.save_space_settings(
            space_id, updated, expected_revision=current.revision, streams=first, now=stamp
        ):
            if expected_revision is not None:
                raise _stale(expected_revision, None)
            continue  # another change came first: apply this one to it
        if rest:
            store.mark_streams_dirty(space_id, rest, stamp)
            store.settle_space_marks(space_id, updated.revision)
            updated = replace(updated, marks_owed=False)
        logger.info(
            "space settings changed",
            extra={
                "space_id": space_id,
                "revision": updated.revision,
                "updated_by": by,
                "updated_at": stamp,
                "before": _logged(current),
                "after": _logged(updated),
                "streams_marked": len(streams),
            },
        )
        return replace(space, settings=updated)
    raise ResourceConflictError("the settings kept changing while this change was applied; retry")


def pay_owed_marks(store: Ports, space: SpaceRecord, now: datetime) -> int:
    """Mark every stream of a space whose settings owe marks (``marks_owed``: a window change cut short
    after its first transaction), then settle the debt unless the settings changed since (that change
    owes them now); the streams marked. The scheduled recompute calls it on its visit of the space, so
    the debt does not wait for the next settings change (the client that saw its change stored, or a
    412 on a retry, has no reason to send one)."""
    marked = _mark_every_stream(store, space.id, now)
    store.settle_space_marks(space.id, space.settings.revision)
    logger.info("owed dirty marks written", extra={"space_id": space.id, "streams_marked": marked})
    return marked


def mark_for_figure_rules(store: Ports, space: SpaceRecord, now: datetime) -> int:
    """Mark every stream of a space whose figures were computed with other figure rules than this version's
    (``SpaceRecord.figures_format`` is not ``FIGURES_FORMAT``: an upgrade changed them), then record this
    version; the streams marked. The scheduled recompute calls it on its visit of the space and leaves the
    streams to the next tick (docs/recompute.md, "Upgrades"): until then a read counts them as pending
    (METRICS §8) rather than answering figures of two sets of rules side by side. A crash in between marks
    them again on the next visit (harmless). Marks the settings owe (``pay_owed_marks``) are paid by the same
    marking: the caller calls one or the other, never both, so the streams are listed and marked once."""
    marked = _mark_every_stream(store, space.id, now)
    store.set_figures_format(space.id, FIGURES_FORMAT)
    if space.settings.marks_owed:
        store.settle_space_marks(space.id, space.settings.revision)
    logger.info(
        "figure rules changed: every stream marked",
        extra={
            "space_id": space.id,
            "streams_marked": marked,
            "figures_format": FIGURES_FORMAT,
            "previous_format": space.figures_format,
        },
    )
    return marked


def read_settings(store: Ports, space_id: str, now: datetime) -> SpaceSettings:
    """The space's settings as a read of figures applies them (``/summary``, ``/dora/metrics``): read
    strongly consistently, so a change a moment ago applies. Owed marks are paid first: a window change cut
    short would otherwise leave the streams it did not mark counted with the old window while the read says
    nothing is pending (METRICS §8), until the schedule's next visit of the space."""
    space = store.get_space(space_id, consistent=True)
    if space is None:
        return SpaceSettings()
    if space.settings.marks_owed:
        pay_owed_marks(store, space, now)
    return space.settings


def _mark_every_stream(store: Ports, space_id: str, now: datetime) -> int:
    """Mark every stream of the space (``_every_stream``, 100 marks to a transaction); how many."""
    streams = _every_stream(store, space_id)
    store.mark_streams_dirty(space_id, streams, format_instant(now))
    return len(streams)


def _every_stream(store: Ports, space_id: str) -> list[str]:
    """Every stream of the space: those marked (a new stream waits for its first recompute with a mark),
    then the registered ones, strongly consistently. In that order: the recompute registers a stream before
    it clears its mark, so a stream whose first recompute runs meanwhile is in one answer or the other (the
    recompute must not clear the mark it read and vouch for figures computed with the old window)."""
    marked = {str(mark["stream"]) for mark in store.list_dirty_streams(space_id)}
    return sorted(marked | set(store.metrics().streams(space_id, consistent=True)))


def _stale(expected: int, current: int | None) -> PreconditionFailedError:
    now_at = f" (now {current})" if current is not None else ""
    return PreconditionFailedError(
        f"revision {expected} is not the settings' current revision{now_at}: read them again and retry",
        field="revision",
    )


def _logged(settings: SpaceSettings) -> dict[str, Any]:
    """The settable fields, for the change log."""
    fields = asdict(settings)
    return {k: fields[k] for k in ("failure_window_hours", "summary_environment", "default_benchmark")} | {
        "production_environments": [e["name"] for e in fields["production_environments"]]
    }


def _apply(store: Ports, space_id: str, current: SpaceSettings, change: SettingsChange) -> SpaceSettings:
    """The settings with ``change`` applied; every invalid value found is named in one 400."""
    problems: list[tuple[str | None, str]] = []
    updated = current
    if change.failure_window_hours is not UNCHANGED:
        hours = change.failure_window_hours
        updated = replace(updated, failure_window_hours=DEFAULT_FAILURE_WINDOW_HOURS if hours is None else hours)
    if change.default_benchmark is not UNCHANGED:
        benchmark = change.default_benchmark
        if benchmark is not None and benchmark not in benchmarks():
            problems.append(("default_benchmark", f"must be one of {', '.join(benchmarks())}, not '{benchmark[:20]}'"))
        if benchmark != (current.default_benchmark or DEFAULT_BENCHMARK):  # the value answered, sent back: no change
            updated = replace(updated, default_benchmark=benchmark)
    named = [change.default_environment] if isinstance(change.default_environment, str) else []
    if isinstance(change.production_environments, Sequence):
        named += list(change.production_environments)
    environments = _environments(store, space_id) if named else {}
    if change.default_environment is not UNCHANGED:
        found: EnvironmentRef | None = None
        if change.default_environment is not None:
            found = _find(environments, change.default_environment, "default_environment", problems)
        updated = replace(updated, summary_environment=found)
    if change.production_environments is not UNCHANGED:
        chosen: dict[str, EnvironmentRef] = {}
        for position, name in enumerate(change.production_environments or ()):
            ref = _find(environments, name, f"production_environments[{position}]", problems)
            if ref is not None:
                chosen.setdefault(ref.id, ref)
        updated = replace(updated, production_environments=tuple(chosen.values()))
    if problems:
        field, message = problems[0]
        raise RequestInvalidError(f"{field}: {message}", field=field, details=problems)
    return updated


def _environments(store: Ports, space_id: str) -> dict[str, EnvironmentRef]:
    """The space's environments by id and by casefolded name: one Query of the catalogue, strongly
    consistent, so an environment a deployment registered a moment ago can be named at once (API.md, "Read
    your writes")."""
    found: dict[str, EnvironmentRef] = {}
    for entry in store.list_catalogue(space_id, CatalogueKind.ENVIRONMENT, consistent=True):
        ref = EnvironmentRef(id=entry.id, name=entry.name)
        found.setdefault(entry.name.casefold(), ref)
        found[entry.id] = ref  # an id wins over a name that looks like one
    return found


def _find(
    environments: Mapping[str, EnvironmentRef], wanted: str, field: str, problems: list[tuple[str | None, str]]
) -> EnvironmentRef | None:
    """The environment ``wanted`` names, or None with the problem recorded: a value shaped as an
    environment's id is that id only (as ``/summary``'s ``environment`` reads it), any other a name in any case."""
    ref = environments.get(wanted if CatalogueKind.ENVIRONMENT.id_shaped(wanted) else wanted.casefold())
    if ref is not None:
        return ref
    names = sorted({r.name for r in environments.values()}, key=str.casefold)
    if names:
        known = "known: " + ", ".join(names[:_LISTED_NAMES]) + (", ..." if len(names) > _LISTED_NAMES else "")
    else:
        known = "none is known yet: the first deployment or failure naming an environment registers it"
    problems.append((field, f"no environment '{wanted[:64]}' in this space ({known})"))
    return None
