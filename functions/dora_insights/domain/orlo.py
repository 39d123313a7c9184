"""Orlo's release model and every rule of its API, as pure functions over plain values.

An Orlo *release* (a user shipping to some platforms) holds *packages* (a name at a version),
each started and stopped on its own. Nothing here does I/O or reads a clock: ``now`` is always
a parameter, and every datetime is aware (UTC). The semantics follow Orlo's own source
(``eBayClassifiedsGroup/orlo``: ``orm.py``, ``queries.py``, ``stats.py``, ``routes/*``), with the
differences API.md asks for (4xx instead of Orlo's 500s, each release listed once, import
all-or-nothing and idempotent).

Release status (Orlo computes it from the packages, never stores it):
FAILED if any package failed; else IN_PROGRESS if any is in progress; SUCCESSFUL / NOT_STARTED
only if *every* package is; a release without packages, or with a mix of NOT_STARTED and
SUCCESSFUL packages only, has no status and matches no ``status=`` filter (Orlo's queries join
on packages, and neither its "all" nor its "any" rule holds for the mix).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import Enum, StrEnum
from typing import Any, Literal, TypeVar

from dora_insights.domain.model import DeploymentDraft, Source, TaskState
from dora_insights.errors import DoraError, RequestInvalidError, ResourceNotFoundError

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DEFAULT_LIMIT = 100
# Import ids that the document does not carry are derived from its content in this namespace,
# so importing the same document again names the same releases (API.md: not stored twice).
IMPORT_NAMESPACE = uuid.UUID("5d0f3a52-6c1e-4f8e-9a41-0b7a3c2e9d15")

_T = TypeVar("_T")


class OrloStatus(StrEnum):
    """A package's status (Orlo's ``status_types`` enum); also a release's derived status."""

    NOT_STARTED = "NOT_STARTED"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"


# --------------------------------------------------------------------------- errors


class OrloWorkflowError(DoraError, status=400, code="workflow_error"):
    """A release or package step in the wrong order (Orlo's ``OrloWorkflowError``: 400)."""


class PackageNotStartedError(OrloWorkflowError):
    """Stopping a package that was never started."""


class PackageAlreadyStartedError(OrloWorkflowError):
    """Starting a package a second time."""


class PackageAlreadyStoppedError(OrloWorkflowError):
    """Stopping a package a second time."""


class ReleaseAlreadyStoppedError(OrloWorkflowError):
    """Adding packages to, starting, or stopping again a release that has been stopped."""


class PackageReleaseMismatchError(OrloWorkflowError):
    """The package exists but belongs to another release (Orlo: 400)."""


class ReleaseNotFoundError(ResourceNotFoundError):
    """No release with this id in the space."""


class PackageNotFoundError(ResourceNotFoundError):
    """No package with this id in the release (or in the space)."""


class ImportInvalidError(RequestInvalidError):
    """An import document that fails validation; nothing of it is stored."""


# --------------------------------------------------------------------------- values


class _Timed:
    """A release or package timed by ``stime`` and ``ftime``: aware datetimes, or None."""

    stime: datetime | None
    ftime: datetime | None

    def __post_init__(self) -> None:
        for name, value in (("stime", self.stime), ("ftime", self.ftime)):
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must be an aware datetime")

    @property
    def duration(self) -> timedelta | None:
        """``ftime - stime``, or None while either is missing (a release: until it is stopped)."""
        if self.stime is None or self.ftime is None:
            return None
        return self.ftime - self.stime


@dataclass(frozen=True)
class OrloPackage(_Timed):
    """One package of a release: ``name`` at ``version``, started and stopped on its own."""

    id: str
    release_id: str
    name: str
    version: str
    status: OrloStatus = OrloStatus.NOT_STARTED
    rollback: bool = False
    diff_url: str | None = None
    stime: datetime | None = None
    ftime: datetime | None = None

    @property
    def stopped(self) -> bool:
        """Whether the package has an outcome (SUCCESSFUL or FAILED)."""
        return self.status in (OrloStatus.SUCCESSFUL, OrloStatus.FAILED)


@dataclass(frozen=True)
class OrloRelease(_Timed):
    """A release: who shipped what to which platforms; ``packages`` in the order they were added."""

    id: str
    user: str
    platforms: tuple[str, ...]
    stime: datetime | None
    team: str | None = None
    references: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    ftime: datetime | None = None
    packages: tuple[OrloPackage, ...] = ()

    @property
    def status(self) -> OrloStatus | None:
        """The derived status (module docstring); None for no packages or a NOT_STARTED/SUCCESSFUL mix."""
        return release_status(p.status for p in self.packages)

    @property
    def rollback(self) -> bool:
        """A release is a rollback when any of its packages is."""
        return any(p.rollback for p in self.packages)

    @property
    def stopped(self) -> bool:
        """Whether ``/stop`` has been called (or an import gave an ftime)."""
        return self.ftime is not None

    def package(self, package_id: str) -> OrloPackage:
        """The package with this id; ``PackageNotFoundError`` if the release has none."""
        for package in self.packages:
            if package.id == package_id:
                return package
        raise PackageNotFoundError("Package does not exist", field="package_id")


def release_status(statuses: Iterable[OrloStatus]) -> OrloStatus | None:
    """A release's status from its packages' statuses (module docstring)."""
    seen = set(statuses)
    if not seen:
        return None
    if OrloStatus.FAILED in seen:
        return OrloStatus.FAILED
    if OrloStatus.IN_PROGRESS in seen:
        return OrloStatus.IN_PROGRESS
    if len(seen) == 1:
        return next(iter(seen))
    return None  # NOT_STARTED and SUCCESSFUL mixed: Orlo matches it with no status filter


def format_time(value: datetime | None) -> str | None:
    """Orlo's time format ``%Y-%m-%dT%H:%M:%SZ`` in UTC (a four-digit year, always), or None."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def duration_seconds(value: timedelta | None) -> int | None:
    """A duration as whole seconds (floored), or None."""
    if value is None:
        return None
    return int(value.total_seconds() // 1)


# --------------------------------------------------------------------------- workflow


def new_release(
    release_id: str,
    *,
    user: str,
    platforms: Sequence[str],
    now: datetime,
    team: str | None = None,
    references: Sequence[str] = (),
    note: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> OrloRelease:
    """``POST /releases``: a release is started when it is created (Orlo sets stime = now)."""
    return OrloRelease(
        id=release_id,
        user=user,
        team=team or None,
        platforms=tuple(platforms),
        references=tuple(references),
        notes=(note,) if note else (),
        metadata=dict(metadata or {}),
        stime=now,
    )


def start_release(release: OrloRelease, now: datetime) -> OrloRelease:
    """``POST /releases/{rid}/start``: (re)stamps stime, as Orlo does; refused once stopped. Once a package
    has stopped, its deployments hold the release's stime (``release_created_at``), so it stays: a restart
    would make a stop sent again (to complete its deployments) differ from what it stored, and the
    release's deployments disagree about when it began."""
    if release.stopped:
        raise ReleaseAlreadyStoppedError("Release has already been stopped", field="release_id")
    if any(package.stopped for package in release.packages):
        return release
    return replace(release, stime=now)


def stop_release(release: OrloRelease, now: datetime) -> OrloRelease:
    """``POST /releases/{rid}/stop``: sets ftime; packages still running may be stopped later."""
    if release.stopped:
        raise ReleaseAlreadyStoppedError("Release has already been stopped", field="release_id")
    return replace(release, ftime=now)


def add_package(
    release: OrloRelease,
    package_id: str,
    *,
    name: str,
    version: str,
    rollback: bool = False,
    diff_url: str | None = None,
) -> tuple[OrloRelease, OrloPackage]:
    """``POST /releases/{rid}/packages``: a NOT_STARTED package; refused on a stopped release."""
    if release.stopped:
        raise ReleaseAlreadyStoppedError("Can not add a package to a release which has been stopped")
    package = OrloPackage(
        id=package_id,
        release_id=release.id,
        name=name,
        version=version,
        rollback=rollback,
        diff_url=diff_url or None,
    )
    return replace(release, packages=(*release.packages, package)), package


def _with_package(release: OrloRelease, package: OrloPackage) -> OrloRelease:
    return replace(release, packages=tuple(package if p.id == package.id else p for p in release.packages))


def start_package(release: OrloRelease, package_id: str, now: datetime) -> OrloRelease:
    """``.../packages/{pid}/start``: NOT_STARTED -> IN_PROGRESS with stime = now."""
    package = release.package(package_id)
    if release.stopped:
        raise ReleaseAlreadyStoppedError("Can not start a package of a release which has been stopped")
    if package.status is not OrloStatus.NOT_STARTED:
        raise PackageAlreadyStartedError("Package has already been started", field="package_id")
    return _with_package(release, replace(package, status=OrloStatus.IN_PROGRESS, stime=now))


def stop_package(release: OrloRelease, package_id: str, *, success: bool, now: datetime) -> OrloRelease:
    """``.../packages/{pid}/stop``: IN_PROGRESS -> SUCCESSFUL or FAILED with ftime = now.

    Allowed after the release was stopped (Orlo lets a release stop before its packages).
    """
    package = release.package(package_id)
    if package.status is OrloStatus.NOT_STARTED or package.stime is None:
        raise PackageNotStartedError("Can not stop a package which has not been started", field="package_id")
    if package.stopped:
        raise PackageAlreadyStoppedError("Package has already been stopped", field="package_id")
    status = OrloStatus.SUCCESSFUL if success else OrloStatus.FAILED
    return _with_package(release, replace(package, status=status, ftime=now))


def finished_form(release: OrloRelease) -> OrloRelease:
    """The release as it will be once every package has started and stopped and the release has stopped
    (each time of the stored width, the longest status): the largest its item can grow without a note,
    metadata or a package added. A change that adds those must leave room for it, or a running package
    could never be stopped (its stop would be an item over DynamoDB's limit, for good)."""
    at = release.stime
    packages = tuple(
        p if p.stopped else replace(p, status=OrloStatus.SUCCESSFUL, stime=p.stime or at, ftime=at)
        for p in release.packages
    )
    return replace(release, packages=packages, ftime=release.ftime or at)


def add_note(release: OrloRelease, text: str) -> OrloRelease:
    """``POST /releases/{rid}/notes``: appends a note."""
    return replace(release, notes=(*release.notes, text))


def add_metadata(release: OrloRelease, metadata: Mapping[str, Any]) -> OrloRelease:
    """``POST /releases/{rid}/metadata``: merged into the release's metadata, later keys win."""
    return replace(release, metadata={**release.metadata, **metadata})


def check_package_release(package: OrloPackage, release_id: str) -> None:
    """Orlo's check that a package looked up by id belongs to the release in the path."""
    if package.release_id != release_id:
        raise PackageReleaseMismatchError("This package does not belong to this release", field="package_id")


# --------------------------------------------------------------------------- queries


class Null(Enum):
    """Orlo's filter value ``null``/``none`` (any case), which its queries turn into SQL ``IS NULL``."""

    NULL = "null"


NULL = Null.NULL
# A filter on a text attribute: None = no filter; ``NULL`` = the attribute is absent (none of user, platform,
# package name or version ever is: it matches nothing); else that exact text (SQL equality: case and
# white space count).
TextFilter = str | Null | None


def _is(value: str | None, wanted: TextFilter) -> bool:
    """Whether ``value`` satisfies the text filter ``wanted``."""
    if wanted is None:
        return True
    if wanted is NULL:
        return value is None
    return value == wanted


@dataclass(frozen=True)
class PackageFilters:
    """Filters on one package; all given filters must hold for the *same* package (Orlo's join)."""

    name: TextFilter = None
    version: TextFilter = None
    rollback: bool | None = None
    status: OrloStatus | None = None
    duration_lt: int | None = None
    duration_gt: int | None = None
    stime_before: datetime | None = None
    stime_after: datetime | None = None
    ftime_before: datetime | None = None
    ftime_after: datetime | None = None
    diff_url: TextFilter = None

    def empty(self) -> bool:
        """True when no filter is set."""
        return self == PackageFilters()


@dataclass(frozen=True)
class ReleaseFilters:
    """``GET /releases`` filters (all must hold). Times are exclusive bounds, durations in seconds.

    ``teamless`` is ``team=null``/``team=none`` (Orlo turns those values into IS NULL); ``NULL`` as the
    user or platform matches nothing (every release has them).
    ``package`` filters match a release when any one package satisfies all of them.
    """

    user: TextFilter = None
    team: str | None = None
    teamless: bool = False
    platform: TextFilter = None
    reference: str | None = None
    status: OrloStatus | None = None
    rollback: bool | None = None
    stime_before: datetime | None = None
    stime_after: datetime | None = None
    ftime_before: datetime | None = None
    ftime_after: datetime | None = None
    duration_lt: int | None = None
    duration_gt: int | None = None
    package: PackageFilters = field(default_factory=PackageFilters)

    def scope(self) -> ReleaseScope:
        """The part of these filters an index read applies (the domain applies the rest)."""
        return ReleaseScope(user=self.user, team=self.team, lowest=self.stime_after, highest=self.stime_before)


@dataclass(frozen=True)
class ReleaseScope:
    """Which releases one index read covers: a user's, else a team's, else all, with stime within
    [lowest, highest] (either open). With a bound, releases without stime are left out (no bound matches
    them). A user of ``NULL`` covers none (every release has a user)."""

    user: TextFilter = None
    team: str | None = None
    lowest: datetime | None = None
    highest: datetime | None = None

    @property
    def bounded(self) -> bool:
        """Whether either stime bound is set."""
        return self.lowest is not None or self.highest is not None


@dataclass(frozen=True)
class Page:
    """Ordering and paging: stime descending unless ``asc``; ``limit`` None = unbounded."""

    asc: bool = False
    limit: int | None = DEFAULT_LIMIT
    offset: int = 0


def _before(value: datetime | None, bound: datetime | None) -> bool:
    return bound is None or (value is not None and value < bound)


def _after(value: datetime | None, bound: datetime | None) -> bool:
    return bound is None or (value is not None and value > bound)


_MICROSECOND = timedelta(microseconds=1)


def _microseconds(value: timedelta) -> int:
    return value // _MICROSECOND


# A duration bound is compared in whole microseconds, never made a timedelta: any int bound is a filter
# (one past timedelta's range only selects every duration or none), not an OverflowError.
def _lt(value: timedelta | None, seconds: int | None) -> bool:
    return seconds is None or (value is not None and _microseconds(value) < seconds * 1_000_000)


def _gt(value: timedelta | None, seconds: int | None) -> bool:
    return seconds is None or (value is not None and _microseconds(value) > seconds * 1_000_000)


def package_matches(package: OrloPackage, filters: PackageFilters) -> bool:
    """Whether one package satisfies every package filter."""
    f = filters
    return (
        _is(package.name, f.name)
        and _is(package.version, f.version)
        and (f.rollback is None or package.rollback is f.rollback)
        and (f.status is None or package.status is f.status)
        and _is(package.diff_url, f.diff_url)
        and _lt(package.duration, f.duration_lt)
        and _gt(package.duration, f.duration_gt)
        and _before(package.stime, f.stime_before)
        and _after(package.stime, f.stime_after)
        and _before(package.ftime, f.ftime_before)
        and _after(package.ftime, f.ftime_after)
    )


def release_matches(release: OrloRelease, filters: ReleaseFilters) -> bool:
    """Whether a release satisfies every filter (a ``status`` needs a derived status equal to it)."""
    f = filters
    if not _is(release.user, f.user):
        return False
    if f.teamless and release.team is not None:
        return False
    if f.team is not None and release.team != f.team:
        return False
    if f.platform is not None and not any(_is(platform, f.platform) for platform in release.platforms):
        return False
    if f.reference is not None and not any(f.reference in r for r in release.references):
        return False
    if f.status is not None and release.status is not f.status:
        return False
    if f.rollback is not None and release.rollback is not f.rollback:
        return False
    if not (
        _before(release.stime, f.stime_before)
        and _after(release.stime, f.stime_after)
        and _before(release.ftime, f.ftime_before)
        and _after(release.ftime, f.ftime_after)
        and _lt(release.duration, f.duration_lt)
        and _gt(release.duration, f.duration_gt)
    ):
        return False
    return f.package.empty() or any(package_matches(p, f.package) for p in release.packages)


def _by_stime(asc: bool) -> Callable[[OrloRelease | OrloPackage], tuple[int, float, str]]:
    # Items without an stime (imports may lack one) come last in either order; ties by id.
    def key(item: OrloRelease | OrloPackage) -> tuple[int, float, str]:
        if item.stime is None:
            return (1, 0.0, item.id)
        stamp = item.stime.timestamp()
        return (0, stamp if asc else -stamp, item.id)

    return key


def _page(items: list[_T], page: Page) -> list[_T]:
    end = None if page.limit is None else page.offset + page.limit
    return items[page.offset : end]


def select_releases(releases: Iterable[OrloRelease], filters: ReleaseFilters, page: Page) -> list[OrloRelease]:
    """``GET /releases``: the matching releases, each once, ordered by stime, then paged."""
    unique = {r.id: r for r in releases}
    matching = sorted((r for r in unique.values() if release_matches(r, filters)), key=_by_stime(page.asc))
    return _page(matching, page)


def _same_instant(first: OrloRelease, second: OrloRelease) -> bool:
    """Whether ``_by_stime`` places two releases by id alone: both have an stime, the same instant as it orders them."""
    return first.stime is not None and second.stime is not None and first.stime.timestamp() == second.stime.timestamp()


def select_ordered_releases(releases: Iterable[OrloRelease], filters: ReleaseFilters, page: Page) -> list[OrloRelease]:
    """``select_releases`` of ``releases`` given in the release index's order (``OrloRepository.releases_in_order``):
    each once, those with an stime by stime (ascending when ``page.asc``, else descending; those of one instant
    in any order), then those without stime by id ascending. Takes from ``releases`` only what the page needs,
    so a lazy ``releases`` reads no further: its ``offset + limit`` matches, then the matches of the last one's
    instant (``select_releases`` orders those by id). A filter that matches little reads on, as far as
    the page needs (Orlo's offset/limit paging has no cursor to answer part of a page with, and Orlo
    answers such a list whole)."""
    need = None if page.limit is None else page.offset + page.limit
    found: list[OrloRelease] = []
    for release in releases:
        if need is not None and len(found) >= need and not (found and _same_instant(found[-1], release)):
            break
        if release_matches(release, filters):
            found.append(release)
    return select_releases(found, filters, page)


def select_packages(packages: Iterable[OrloPackage], filters: PackageFilters, page: Page) -> list[OrloPackage]:
    """``GET /packages``: the matching packages ordered by stime, then paged."""
    unique = {p.id: p for p in packages}
    matching = sorted((p for p in unique.values() if package_matches(p, filters)), key=_by_stime(page.asc))
    return _page(matching, page)


# --------------------------------------------------------------------------- stats

StatsField = Literal["user", "team", "platform", "package"]
Counts = dict[str, dict[str, dict[str, int]]]


def _zero_counts() -> Counts:
    return {
        "releases": {
            "normal": {"successful": 0, "failed": 0},
            "rollback": {"successful": 0, "failed": 0},
            "total": {"successful": 0, "failed": 0},
        }
    }


def _outcome(release: OrloRelease) -> str | None:
    status = release.status
    if status is OrloStatus.SUCCESSFUL:
        return "successful"
    if status is OrloStatus.FAILED:
        return "failed"
    return None  # running, not started, mixed or empty: counted nowhere


def _in_window(release: OrloRelease, stime: datetime | None, ftime: datetime | None) -> bool:
    # Inclusive bounds on the release's stime (Orlo's count_releases: >= and <=).
    if stime is None and ftime is None:
        return True
    if release.stime is None:
        return False
    return (stime is None or release.stime >= stime) and (ftime is None or release.stime <= ftime)


def count_releases(
    releases: Iterable[OrloRelease], *, stime: datetime | None = None, ftime: datetime | None = None
) -> Counts:
    """Orlo's C: releases by normal/rollback and successful/failed, stime within the inclusive window."""
    counts = _zero_counts()
    for release in releases:
        outcome = _outcome(release)
        if outcome is None or not _in_window(release, stime, ftime):
            continue
        kind = "rollback" if release.rollback else "normal"
        counts["releases"][kind][outcome] += 1
        counts["releases"]["total"][outcome] += 1
    return counts


def _field_values(release: OrloRelease, by: StatsField) -> set[str]:
    if by == "user":
        return {release.user}
    if by == "team":
        return {release.team} if release.team is not None else set()  # teamless: under no team
    if by == "platform":
        return set(release.platforms)
    return {p.name for p in release.packages}


def stats_global(
    releases: Iterable[OrloRelease], *, stime: datetime | None = None, ftime: datetime | None = None
) -> dict[str, Counts]:
    """``GET /stats``: ``{"global": C}``."""
    return {"global": count_releases(releases, stime=stime, ftime=ftime)}


def stats_by(
    releases: Iterable[OrloRelease],
    by: StatsField,
    *,
    name: str | None = None,
    stime: datetime | None = None,
    ftime: datetime | None = None,
) -> dict[str, Counts]:
    """``GET /stats/{by}[/{name}]``: C per user/team/platform/package name.

    Without ``name``: every name seen on any release (running ones too, so a name may show only
    zeros); the window only limits what is counted. With ``name``: just that one, zeros if unknown.
    A package's C counts the releases containing it, by the *release's* status and rollback flag.
    """
    groups: dict[str, list[OrloRelease]] = {}
    if name is not None:
        groups[name] = []
    for release in releases:
        for value in _field_values(release, by):
            if name is None or value == name:
                groups.setdefault(value, []).append(release)
    return {key: count_releases(group, stime=stime, ftime=ftime) for key, group in sorted(groups.items())}


# --------------------------------------------------------------------------- stats by date

Unit = Literal["iso", "hour", "day", "week", "month", "year"]
UNITS: tuple[str, ...] = ("iso", "hour", "day", "week", "month", "year")
Subject = Literal["release", "package"]


def time_path(moment: datetime, unit: Unit, *, summarize_by_unit: bool = False) -> list[str]:
    """The keys a moment (UTC) is filed under, without zero padding (Orlo's by_date tree).

    summarize: only the unit itself: hour of day, day of month, ISO week, month, year; for
    ``iso`` the ISO weekday (1 = Monday).
    """
    t = moment.astimezone(UTC)
    iso = t.isocalendar()
    if summarize_by_unit:
        single = {
            "year": t.year,
            "month": t.month,
            "week": iso.week,
            "day": t.day,
            "hour": t.hour,
            "iso": iso.weekday,
        }[unit]
        return [str(single)]
    paths: dict[str, list[int]] = {
        "year": [t.year],
        "month": [t.year, t.month],
        "week": [iso.year, iso.week],
        "iso": [iso.year, iso.week, iso.weekday],
        "day": [t.year, t.month, t.day],
        "hour": [t.year, t.month, t.day, t.hour],
    }
    return [str(part) for part in paths[unit]]


def _add(tree: dict[str, Any], path: Sequence[str]) -> None:
    node = tree
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = node.get(path[-1], 0) + 1


def stats_by_date(
    releases: Iterable[OrloRelease],
    subject: Subject = "release",
    *,
    unit: Unit = "month",
    summarize_by_unit: bool = False,
    filters: ReleaseFilters | None = None,
) -> dict[str, Any]:
    """``GET /stats/by_date/{subject}``: counts nested by time, then (package) name, then category.

    Releases are filed under their stime; packages under their own stime, each package counted
    once, categorised by its *release's* status and rollback flag (as Orlo does). Only
    SUCCESSFUL and FAILED releases count; leaves that would be zero are absent. For packages,
    the ``package_*`` filters choose which packages are counted (Orlo queries package rows).
    """
    tree: dict[str, Any] = {}
    chosen = filters or ReleaseFilters()
    release_filters = chosen if subject == "release" else replace(chosen, package=PackageFilters())
    for release in {r.id: r for r in releases}.values():
        outcome = _outcome(release)
        if outcome is None or not release_matches(release, release_filters):
            continue
        kind = "rollback" if release.rollback else "normal"
        if subject == "release":
            if release.stime is not None:
                _add(tree, [*time_path(release.stime, unit, summarize_by_unit=summarize_by_unit), kind, outcome])
            continue
        for package in release.packages:
            if package.stime is not None and package_matches(package, chosen.package):
                path = time_path(package.stime, unit, summarize_by_unit=summarize_by_unit)
                _add(tree, [*path, package.name, kind, outcome])
    return tree


# --------------------------------------------------------------------------- info


def _on_platform(release: OrloRelease, platform: str | None) -> bool:
    return platform is None or platform in release.platforms


def info_users(
    releases: Iterable[OrloRelease], *, user: str | None = None, platform: str | None = None
) -> dict[str, dict[str, int]]:
    """``GET /info/users[/{u}]``: releases per user, any status; unknown user -> {}."""
    counts: dict[str, int] = {}
    for release in releases:
        if _on_platform(release, platform) and (user is None or release.user == user):
            counts[release.user] = counts.get(release.user, 0) + 1
    return {name: {"releases": n} for name, n in sorted(counts.items())}


def info_platforms(releases: Iterable[OrloRelease], *, platform: str | None = None) -> dict[str, dict[str, int]]:
    """``GET /info/platforms[/{p}]``: releases per platform; unknown platform -> {}."""
    counts: dict[str, int] = {}
    for release in releases:
        for name in set(release.platforms):
            if platform is None or name == platform:
                counts[name] = counts.get(name, 0) + 1
    return {name: {"releases": n} for name, n in sorted(counts.items())}


def info_packages(
    releases: Iterable[OrloRelease], *, name: str | None = None, platform: str | None = None
) -> dict[str, dict[str, int]]:
    """``GET /info/packages[/{name}]``: how many times each package was released (package records)."""
    counts: dict[str, int] = {}
    for release in releases:
        if not _on_platform(release, platform):
            continue
        for package in release.packages:
            if name is None or package.name == name:
                counts[package.name] = counts.get(package.name, 0) + 1
    return {key: {"releases": n} for key, n in sorted(counts.items())}


def package_list(releases: Iterable[OrloRelease], *, platform: str | None = None) -> dict[str, list[str]]:
    """``GET /info/packages/list``: every package name released (to the platform), sorted."""
    names = {p.name for r in releases if _on_platform(r, platform) for p in r.packages}
    return {"packages": sorted(names)}


def package_versions(
    releases: Iterable[OrloRelease], *, platform: str | None = None, by_release: bool = False
) -> dict[str, str]:
    """``GET /info/packages/versions``: each package's current version.

    The current version is that of the most recently *started* SUCCESSFUL package (by time,
    not by version number, so a later rollback to an older version wins; on an stime tie a
    rollback wins). ``by_release`` skips packages whose release is not SUCCESSFUL as a whole.
    """
    best: dict[str, tuple[tuple[datetime, bool, str], str]] = {}
    for release in releases:
        if not _on_platform(release, platform):
            continue
        if by_release and release.status is not OrloStatus.SUCCESSFUL:
            continue
        for package in release.packages:
            if package.status is not OrloStatus.SUCCESSFUL or package.stime is None:
                continue
            rank = (package.stime, package.rollback, package.id)
            current = best.get(package.name)
            if current is None or rank > current[0]:
                best[package.name] = (rank, package.version)
    return {name: version for name, (_, version) in sorted(best.items())}


# --------------------------------------------------------------------------- import


@dataclass(frozen=True)
class ImportedPackage:
    """A package of an import document, types already checked (the dialect parses them)."""

    name: str
    version: str
    status: OrloStatus = OrloStatus.NOT_STARTED
    rollback: bool = False
    diff_url: str | None = None
    stime: datetime | None = None
    ftime: datetime | None = None
    id: str | None = None


@dataclass(frozen=True)
class ImportedRelease:
    """A release of an import document, types already checked."""

    user: str
    platforms: tuple[str, ...]
    packages: tuple[ImportedPackage, ...]
    team: str | None = None
    references: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    stime: datetime | None = None
    ftime: datetime | None = None
    id: str | None = None


def _canonical(doc: ImportedRelease) -> str:
    def default(value: object) -> object:
        if isinstance(value, datetime):
            return value.astimezone(UTC).isoformat()
        if isinstance(value, Mapping):
            return dict(value)
        raise TypeError(type(value).__name__)

    plain = {
        "user": doc.user,
        "team": doc.team,
        "platforms": list(doc.platforms),
        "references": list(doc.references),
        "notes": list(doc.notes),
        "metadata": dict(doc.metadata),
        "stime": doc.stime,
        "ftime": doc.ftime,
        "packages": [
            [p.name, p.version, p.status.value, p.rollback, p.diff_url, p.stime, p.ftime, p.id] for p in doc.packages
        ],
    }
    return json.dumps(plain, sort_keys=True, default=default, separators=(",", ":"))


def import_release_id(doc: ImportedRelease, id_seed: str) -> str:
    """The document's own id, or one derived from its content and ``id_seed`` (e.g. the space id)."""
    if doc.id is not None:
        return str(uuid.UUID(doc.id))
    digest = hashlib.sha256(f"{id_seed}\n{_canonical(doc)}".encode()).hexdigest()
    return str(uuid.uuid5(IMPORT_NAMESPACE, digest))


def _check_times(
    problems: list[tuple[str | None, str]], where: str, stime: datetime | None, ftime: datetime | None
) -> None:
    if stime is not None and ftime is not None and ftime < stime:
        problems.append((f"{where}ftime", "is before stime"))


def import_releases(docs: Sequence[ImportedRelease], *, id_seed: str) -> list[OrloRelease]:
    """``POST /releases/import``: the releases of a document, in document order, or no release at all.

    A package without stime takes the release's. Rejected (every problem listed, as
    ``ImportInvalidError``): an ftime before its stime; a started or stopped package with no
    stime at all; the same release or package id twice. Ids absent from the document are
    derived from the content, so a re-import yields the same ids.
    """
    problems: list[tuple[str | None, str]] = []
    releases: list[OrloRelease] = []
    seen_releases: dict[str, int] = {}
    seen_packages: dict[str, str] = {}
    for index, doc in enumerate(docs):
        where = f"[{index}]."
        release_id = import_release_id(doc, id_seed)
        if release_id in seen_releases:
            problems.append((f"[{index}]", f"repeats the release of document [{seen_releases[release_id]}]"))
            continue
        seen_releases[release_id] = index
        _check_times(problems, where, doc.stime, doc.ftime)
        packages: list[OrloPackage] = []
        for number, item in enumerate(doc.packages):
            pwhere = f"{where}packages[{number}]."
            stime = item.stime or doc.stime
            _check_times(problems, pwhere, stime, item.ftime)
            if stime is None and (item.status is not OrloStatus.NOT_STARTED or item.ftime is not None):
                problems.append((f"{pwhere}stime", f"is required for a {item.status.value} package"))
            package_id = (
                str(uuid.UUID(item.id))
                if item.id is not None
                else str(uuid.uuid5(IMPORT_NAMESPACE, f"{release_id}/{number}"))
            )
            if package_id in seen_packages:
                problems.append((f"{pwhere}id", f"repeats package {seen_packages[package_id]}"))
            seen_packages[package_id] = pwhere.rstrip(".")
            # The package as imported, with its id, its release and its start (the release's when it has none).
            placed = {"id": package_id, "release_id": release_id, "stime": stime}
            packages.append(OrloPackage(**(asdict(item) | placed)))
        releases.append(
            OrloRelease(
                id=release_id,
                user=doc.user,
                team=doc.team,
                platforms=doc.platforms,
                references=doc.references,
                notes=doc.notes,
                metadata=dict(doc.metadata),
                stime=doc.stime,
                ftime=doc.ftime,
                packages=tuple(packages),
            )
        )
    if problems:
        field_name, message = problems[0]
        raise ImportInvalidError(f"{field_name}: {message}", field=field_name, details=problems)
    return releases


# --------------------------------------------------------------------------- deployments


# A release's references (and its user) go into the metadata of each deployment of its packages
# (``package_deployments``). Beside them a deployment holds some 25 KB at most (a package's diff_url
# twice, its names and version, ids and times: each capped at the door), so references within this
# budget keep every deployment within DynamoDB's 400 KB item: a package stop is never refused for its
# size once its release is written.
MAX_REFERENCES_BYTES = 360 * 1024


def references_bytes(release: OrloRelease) -> int:
    """What a release's references and user weigh in each of its deployments: their UTF-8 bytes, with
    room for the few bytes DynamoDB counts around each element of a list."""
    texts = (*release.references, release.user)
    return sum(len(text.encode("utf-8", errors="surrogatepass")) + 3 for text in texts)


def _platform_key(platform: str | None) -> str:
    return hashlib.sha256((platform or "").encode()).hexdigest()[:12]


def package_deployments(release: OrloRelease, package: OrloPackage, *, environment: str) -> list[DeploymentDraft]:
    """METRICS §1: a stopped package as native deployments, one per platform (tenant = platform).

    project = package name; environment = the space's default (passed in); state Success or
    Failed; started/finished = the package's stime/ftime (ftime falls back to stime for imports
    without one); ``release_created_at`` = the release's stime (the lead-time release rule);
    team = the release's team. A package that is not stopped, or has no time, yields nothing.
    ``client_id`` is stable per package and platform, so writing it again is idempotent. Platforms
    that differ only in case are one tenant (the catalogue's names are case-insensitive), so they make
    one deployment (the first one's), never two of one stream at one instant.
    """
    if not package.stopped:
        return []
    finished = package.ftime or package.stime
    if finished is None:
        return []
    state = TaskState.SUCCESS if package.status is OrloStatus.SUCCESSFUL else TaskState.FAILED
    metadata: dict[str, Any] = {"orlo_release_id": release.id, "orlo_package_id": package.id, "orlo_user": release.user}
    if release.references:
        metadata["orlo_references"] = list(release.references)
    if package.diff_url:
        metadata["orlo_diff_url"] = package.diff_url
    tenants: dict[str, str] = {}  # case-folded -> the first platform of that name
    for platform in release.platforms:
        tenants.setdefault(platform.casefold(), platform)
    platforms: Sequence[str | None] = list(tenants.values()) or [None]
    return [
        DeploymentDraft(
            source=Source.ORLO,
            client_id=f"orlo:{package.id}:{_platform_key(platform)}",
            project=package.name,
            environment=environment,
            tenant=platform,
            team=release.team,
            version=package.version,
            state=state,
            rollback=package.rollback,
            started_at=package.stime,
            finished_at=finished,
            release_created_at=release.stime,
            source_url=package.diff_url,
            metadata=metadata,
        )
        for platform in platforms
    ]
