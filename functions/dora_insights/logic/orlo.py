"""Orlo use cases (API.md "Dialect: Orlo"): the release workflow, queries, stats, info, import, tokens.

Every change of a release is read - apply a domain rule - conditional write on the release's
``version``, retried a few times when another request changed it in between (then 409).
Every stopped package becomes deployments through the core write path (``deployments.ingest``),
idempotent by the package's client ids, so a retried stop (or import) repairs what a failure
between the two writes left out. Whatever could refuse a write for what the client sent is checked
before the first write (the bodies by the dialect, a new release's item and references by
``_check_storable``, the deployments built): only a failure of the moment (a 503, a crash) can come
between the writes of a stop or an import, and sending the same request again completes it.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from dora_insights.dal.orlo import check_release, check_room
from dora_insights.domain import orlo
from dora_insights.domain.ids import sha256_hex
from dora_insights.domain.model import DeploymentDraft
from dora_insights.domain.orlo import (
    ImportedRelease,
    OrloPackage,
    OrloRelease,
    PackageFilters,
    Page,
    ReleaseFilters,
    ReleaseScope,
    StatsField,
    Subject,
    Unit,
)
from dora_insights.domain.scopes import Scope
from dora_insights.errors import (
    AuthenticationInvalidError,
    ItemTooLargeError,
    KeyTooLargeError,
    PayloadTooLargeError,
    ResourceConflictError,
    WriteContendedError,
)
from dora_insights.logic import corrections, deployments
from dora_insights.logic.auth import Principal, require_scope
from dora_insights.logic.catalogue import pause_after_lost_race
from dora_insights.logic.ports import OrloRepository, Ports, StoredOrloRelease
from dora_insights.logic.spaces import get_space
from dora_insights.observability import logger

MAX_ATTEMPTS = 4
TOKEN_LIFETIME = timedelta(hours=1)
MAX_RESULT_CHARS = 300_000
TOKEN_SEPARATOR = "."
# Releases read per Query by a list with filters the index cannot apply (most of a page may not match);
# one more than the page needs without them (the one after it tells that its page is whole), at most
# MAX_PAGE (about what DynamoDB's 1 MB page holds: a large offset reads on in pages of it).
FILTERED_PAGE = 200
MAX_PAGE = 1_000


def new_uuid() -> str:
    """A fresh release or package id."""
    return str(uuid.uuid4())


# --------------------------------------------------------------------------- workflow


def _stored(repo: OrloRepository, space_id: str, release_id: str) -> StoredOrloRelease:
    stored = repo.get(space_id, release_id)
    if stored is None:
        raise orlo.ReleaseNotFoundError(f"Release {release_id} does not exist", field="release_id")
    return stored


def _check_package(repo: OrloRepository, space_id: str, release: OrloRelease, package_id: str) -> OrloPackage:
    """The release's package, or 400 when it belongs to another release (Orlo), else 404."""
    try:
        return release.package(package_id)
    except orlo.PackageNotFoundError:
        owner = repo.package_owner(space_id, package_id)
        if owner is not None and owner != release.id:
            raise orlo.PackageReleaseMismatchError(
                "This package does not belong to this release", field="package_id"
            ) from None
        raise


Change = Callable[[OrloRelease], tuple[OrloRelease, Sequence[OrloPackage]]]


def _change(store: Ports, space_id: str, release_id: str, change: Change) -> OrloRelease:
    """Apply ``change`` to the stored release and write it conditionally, retrying lost races from a fresh
    read after a jittered pause (``change`` is applied again to what the other request wrote: a package's
    stop racing its siblings' stops keeps theirs and adds its own). Still losing after ``MAX_ATTEMPTS``:
    503 ``write_contended`` (nothing written; retry), never a 409: no other request changed what this one
    meant to change, or ``change`` would have refused it."""
    repo = store.orlo()
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            pause_after_lost_race(attempt - 1)
        stored = _stored(repo, space_id, release_id)
        updated, added = change(stored.release)
        try:
            repo.replace(space_id, updated, expected_version=stored.version, new_packages=added)
        except ResourceConflictError:
            continue
        return updated
    raise WriteContendedError(f"release {release_id} is being changed by other requests; retry")


def _deployments(
    store: Ports, space_id: str, release: OrloRelease, packages: Sequence[OrloPackage]
) -> list[DeploymentDraft]:
    """METRICS §1: the deployments of the stopped ones of ``packages`` (tenant = platform, environment =
    the space's default), built (and so validated) before anything is written.

    A package without a name (Orlo's import allows one; the reference's example has one) names
    no project, so it stays a release record only.
    """
    named = [p for p in packages if p.stopped and p.name.strip()]
    if not named:
        return []
    environment = get_space(store, space_id).default_environment
    return [draft for package in named for draft in orlo.package_deployments(release, package, environment=environment)]


def _ingest(store: Ports, space_id: str, drafts: Sequence[DeploymentDraft], now: datetime) -> None:
    """Write ``drafts`` through the core write path (idempotent by their client ids)."""
    if not drafts:
        return
    space = get_space(store, space_id)
    for draft in drafts:
        deployments.ingest(store, space, draft, now)


def _withdraw_deployments(
    store: Ports,
    space_id: str,
    planned: Sequence[tuple[OrloRelease, Sequence[DeploymentDraft]]],
    *,
    actor: str,
    now: datetime,
) -> None:
    """Delete the deployments an import wrote for releases it did not store (``planned``: those releases
    and their drafts), as ``DELETE /deployments/{id}`` deletes them (recorded, ``actor``; the stream's
    figures and attribution follow), so that a changed document may name their packages and one that
    drops a package does not leave it counted. Only a deployment holding this document's content is
    deleted, and only while its release is not stored and no import of that release holds its package
    (an import of the same document running beside this one, or cut short by a crash: its retry
    completes it); the transaction checks both. Raises nothing: one that cannot be deleted stays, logged."""
    repo = store.orlo()
    wanted = [(release, draft) for release, drafts in planned for draft in drafts]
    if not wanted:
        return
    stored = repo.batch_exists(space_id, sorted({release.id for release, _ in wanted}))
    default_environment = get_space(store, space_id).default_environment
    package_of = {
        draft.client_id: release.package(str((draft.metadata or {})["orlo_package_id"])) for release, draft in wanted
    }
    owners = repo.package_owners(space_id, sorted({package.id for package in package_of.values()}))
    kept = 0
    for release, draft in wanted:
        package = package_of[draft.client_id]
        if release.id in stored or owners.get(package.id) == release.id:
            continue  # stored meanwhile, or claimed by another import of it: the deployment is its too
        existing = store.deployments().get(space_id, str(draft.client_id), consistent=True)
        if existing is None or existing.body_hash not in draft.stored_fingerprints(default_environment):
            continue  # never written, or another document's (a 409 for this one): not this import's to take
        try:
            corrections.delete_deployment(
                store, space_id, existing.id, actor=actor, now=now, conditions=repo.unclaimed_checks(space_id, package)
            )
        except Exception:
            kept += 1
            logger.exception(
                "orlo: deleting a deployment of a release not stored failed", extra={"deployment_id": existing.id}
            )
    if kept:
        logger.warning("orlo: deployments of releases not stored kept", extra={"deployments": kept})


def create_release(store: Ports, space_id: str, release: OrloRelease) -> str:
    """``POST /releases``: store the new release; its id."""
    _check_storable(space_id, release)
    repo = store.orlo()
    claim = _claim_packages(store, space_id, [release])
    try:
        created = repo.create(space_id, release)
    except BaseException:
        repo.withdraw_claims(space_id, [release], claim)  # none: a new release has no package yet
        raise
    if not created:  # pragma: no cover - a fresh uuid4
        raise ResourceConflictError(f"release '{release.id}' already exists", field="id")
    return release.id


def _claim_packages(store: Ports, space_id: str, releases: Sequence[OrloRelease]) -> str:
    """Point the releases' packages at them before any release is written; 400 naming a package id
    another release holds (a concurrent import took it after the check), with nothing written. The
    claim id: a write after it that fails hands it to ``withdraw_claims`` for the releases it did not
    store, so that their package ids are free again for a changed document."""
    claim = secrets.token_hex(8)
    taken = store.orlo().claim_packages(space_id, releases, claim=claim)
    if taken is not None:
        raise orlo.ImportInvalidError(f"package id {taken} already belongs to another release", field="packages.id")
    return claim


def add_package(
    store: Ports,
    space_id: str,
    release_id: str,
    *,
    name: str,
    version: str,
    rollback: bool = False,
    diff_url: str | None = None,
) -> str:
    """``POST /releases/{rid}/packages``: a NOT_STARTED package; its id (413 as ``add_note``)."""
    package_id = new_uuid()

    def change(release: OrloRelease) -> tuple[OrloRelease, Sequence[OrloPackage]]:
        updated, package = orlo.add_package(
            release, package_id, name=name, version=version, rollback=rollback, diff_url=diff_url
        )
        return _with_room(space_id, updated), (package,)

    _change(store, space_id, release_id, change)
    return package_id


def start_package(store: Ports, space_id: str, release_id: str, package_id: str, now: datetime) -> None:
    """``.../packages/{pid}/start``."""
    repo = store.orlo()

    def change(release: OrloRelease) -> tuple[OrloRelease, Sequence[OrloPackage]]:
        _check_package(repo, space_id, release, package_id)
        return orlo.start_package(release, package_id, now), ()

    _change(store, space_id, release_id, change)


def stop_package(
    store: Ports, space_id: str, release_id: str, package_id: str, *, success: bool, now: datetime
) -> None:
    """``.../packages/{pid}/stop``: the outcome, then its deployments.

    The deployments are built before the release is written, from what was checked before the release
    was stored (every name within the key limits and the URL capped at the door, the references within
    ``MAX_REFERENCES_BYTES``: a deployment stays within 400 KB): once the package is SUCCESSFUL or
    FAILED, nothing the client sent can refuse them. Stopping
    an already stopped package is refused (400) but first writes its deployments again (idempotent), so
    a stop whose deployment write failed (a 503, a crash) can simply be retried.
    """
    repo = store.orlo()
    drafts: list[DeploymentDraft] = []

    def change(release: OrloRelease) -> tuple[OrloRelease, Sequence[OrloPackage]]:
        package = _check_package(repo, space_id, release, package_id)
        if package.stopped:
            _ingest(store, space_id, _deployments(store, space_id, release, (package,)), now)
        updated = orlo.stop_package(release, package_id, success=success, now=now)
        drafts[:] = _deployments(store, space_id, updated, (updated.package(package_id),))
        return updated, ()

    _change(store, space_id, release_id, change)
    _ingest(store, space_id, drafts, now)


def add_results(store: Ports, space_id: str, release_id: str, package_id: str, content: str, now: datetime) -> None:
    """``.../packages/{pid}/results``: store the posted content as text (nothing reads it back)."""
    if len(content) > MAX_RESULT_CHARS:
        raise PayloadTooLargeError(f"results are limited to {MAX_RESULT_CHARS} characters", field="content")
    repo = store.orlo()
    stored = _stored(repo, space_id, release_id)
    _check_package(repo, space_id, stored.release, package_id)
    repo.add_result(space_id, package_id, content, now, new_uuid())


def start_release(store: Ports, space_id: str, release_id: str, now: datetime) -> None:
    """``POST /releases/{rid}/start``."""
    _change(store, space_id, release_id, lambda r: (orlo.start_release(r, now), ()))


def stop_release(store: Ports, space_id: str, release_id: str, now: datetime) -> None:
    """``POST /releases/{rid}/stop``."""
    _change(store, space_id, release_id, lambda r: (orlo.stop_release(r, now), ()))


def _with_room(space_id: str, updated: OrloRelease) -> OrloRelease:
    """``updated``, or 413 (nothing written) when it would leave no room for its packages to start and stop
    (``orlo.finished_form``)."""
    check_room(space_id, orlo.finished_form(updated))
    return updated


def add_note(store: Ports, space_id: str, release_id: str, text: str) -> None:
    """``POST /releases/{rid}/notes``: 413 when the release could then not hold its packages' outcomes."""
    _change(store, space_id, release_id, lambda r: (_with_room(space_id, orlo.add_note(r, text)), ()))


def add_metadata(store: Ports, space_id: str, release_id: str, metadata: Mapping[str, Any]) -> None:
    """``POST /releases/{rid}/metadata``: 413 as ``add_note``."""
    _change(store, space_id, release_id, lambda r: (_with_room(space_id, orlo.add_metadata(r, metadata)), ()))


# --------------------------------------------------------------------------- import


def import_releases(
    store: Ports, space_id: str, docs: Sequence[ImportedRelease], now: datetime, *, actor: str
) -> list[str]:
    """``POST /releases/import``: all releases or none; the ids in document order.

    Everything is checked before anything is written: the documents, package ids already used by
    other releases, every fresh release's item and references (413: ``_check_storable``) and its
    deployments (built); so a refused import stores nothing, neither claims nor deployments, and the
    corrected document imports. A release already stored (same id: a re-import) is kept as it is,
    not stored twice. A fresh release's stopped packages become deployments before the release is
    stored: a stored release is what tells a retry it is done, so an import that stops in between (a
    503, a crash) has its retry write them (idempotently: stable client ids) and then the release,
    never a stored release whose deployments a retry would skip. A write that fails after the claims
    (a 503, an error) first withdraws the claims of the releases not stored yet and the deployments it
    wrote for them (``_withdraw_deployments``, recorded as deletions by ``actor``), then is raised:
    their package ids are free again, so a changed document (another release id: ids are derived from
    the content) may reuse them, and one that drops a package leaves nothing of it counted; the same
    document sent again writes them again. A crash (a timeout) withdraws nothing: sending the same
    document again completes it.
    """
    releases = orlo.import_releases(docs, id_seed=space_id)
    repo = store.orlo()
    existing = repo.batch_exists(space_id, [r.id for r in releases])
    fresh = [r for r in releases if r.id not in existing]
    owners = repo.package_owners(space_id, [p.id for r in fresh for p in r.packages])
    taken = sorted(pid for r in fresh for p in r.packages if (pid := p.id) in owners and owners[pid] != r.id)
    if taken:
        raise orlo.ImportInvalidError(f"package id {taken[0]} already belongs to another release", field="packages.id")
    for index, release in enumerate(releases):
        if release.id not in existing:
            _check_storable(space_id, release, f"[{index}]")
    planned = [(release, _deployments(store, space_id, release, release.packages)) for release in fresh]
    claim = _claim_packages(store, space_id, fresh)  # conditional: an import running beside this one may take one
    stored = 0
    try:
        for release, drafts in planned:
            _ingest(store, space_id, drafts, now)
            repo.create(space_id, release)  # False: a concurrent import of it stored it (and its deployments)
            stored += 1
    except BaseException:
        repo.withdraw_claims(space_id, [release for release, _ in planned[stored:]], claim)
        _withdraw_deployments(store, space_id, planned[stored:], actor=actor, now=now)
        raise
    return [r.id for r in releases]


def _check_storable(space_id: str, release: OrloRelease, where: str | None = None) -> None:
    """Refuse a new release that could not be stored, or whose deployments could not be (413), before
    anything is written: its item (``check_release``), then its references, which every deployment of
    its packages holds (``MAX_REFERENCES_BYTES``). ``where``: the release's place in an import document."""
    prefix = f"{where}: " if where else ""
    try:
        check_release(space_id, release)
    except ItemTooLargeError as error:
        raise ItemTooLargeError(prefix + error.message, field=where) from None
    except KeyTooLargeError as error:
        raise KeyTooLargeError(prefix + error.message, field=where) from None
    weight = orlo.references_bytes(release)
    if weight > orlo.MAX_REFERENCES_BYTES:
        raise ItemTooLargeError(
            f"{prefix}references: {weight:,} bytes with the user, over the {orlo.MAX_REFERENCES_BYTES:,} a release"
            " may hold: each deployment of its packages holds them, within DynamoDB's 400 KB item limit;"
            " send fewer or shorter references",
            field=f"{where}.references" if where else "references",
        )


# --------------------------------------------------------------------------- queries


def _narrowed(store: Ports, space_id: str, filters: ReleaseFilters) -> list[OrloRelease]:
    """Releases read by the narrowest key range the filters allow (the domain filters the rest)."""
    return store.orlo().releases(space_id, filters.scope())


def list_releases(
    store: Ports, space_id: str, filters: ReleaseFilters, page: Page, *, release_id: str | None = None
) -> list[OrloRelease]:
    """``GET /releases[/{rid}]``: matching releases, stime desc (or asc), paged; the id does not disable filters.

    A list reads the narrowest index (``_narrowed``'s) in Orlo's order, only as far as its page needs
    (``select_ordered_releases``): with no filter beyond the index's key (user, else team; the stime bounds)
    one Query of ``offset + limit + 1`` releases (up to ``MAX_PAGE`` a Query), else pages of ``FILTERED_PAGE``
    until the page is full (a filter that matches little reads on: Orlo answers such a list whole)."""
    repo = store.orlo()
    if release_id is not None:
        stored = repo.get(space_id, release_id)
        return orlo.select_releases([stored.release] if stored else [], filters, page)
    need = None if page.limit is None else page.offset + page.limit
    # The filters the index's key leaves to the domain: every one but user (else team) and the stime bounds.
    left = replace(filters, user=None, stime_before=None, stime_after=None)
    if filters.user is None:
        left = replace(left, team=None)
    size = None
    if need is not None:
        size = min(need + 1 if left == ReleaseFilters() else max(FILTERED_PAGE, need + 1), MAX_PAGE)
    ordered = repo.releases_in_order(space_id, filters.scope(), ascending=page.asc, page_size=size)
    return orlo.select_ordered_releases(ordered, filters, page)


def list_packages(
    store: Ports, space_id: str, filters: PackageFilters, page: Page, *, package_id: str | None = None
) -> list[OrloPackage]:
    """``GET /packages[/{pid}]``: matching packages by stime, paged."""
    repo = store.orlo()
    if package_id is not None:
        owner = repo.package_owner(space_id, package_id)
        stored = repo.get(space_id, owner) if owner else None
        candidates = [p for p in stored.release.packages if p.id == package_id] if stored else []
    else:
        candidates = [p for r in repo.releases(space_id) for p in r.packages]
    return orlo.select_packages(candidates, filters, page)


# --------------------------------------------------------------------------- stats and info


def _window(store: Ports, space_id: str, stime: datetime | None, ftime: datetime | None) -> list[OrloRelease]:
    return store.orlo().releases(space_id, ReleaseScope(lowest=stime, highest=ftime))


def stats_global(
    store: Ports, space_id: str, *, stime: datetime | None, ftime: datetime | None
) -> dict[str, orlo.Counts]:
    """``GET /stats``."""
    return orlo.stats_global(_window(store, space_id, stime, ftime), stime=stime, ftime=ftime)


def stats_by(
    store: Ports,
    space_id: str,
    by: StatsField,
    *,
    name: str | None,
    stime: datetime | None,
    ftime: datetime | None,
) -> dict[str, orlo.Counts]:
    """``GET /stats/{by}[/{name}]``. Listing every team while some releases have none: 409 (Orlo: 500)."""
    repo = store.orlo()
    if name is not None and by in ("user", "team"):
        releases = repo.releases(space_id, ReleaseScope(user=name) if by == "user" else ReleaseScope(team=name))
    else:
        releases = repo.releases(space_id)
    if by == "team" and name is None:
        teamless = sum(1 for r in releases if r.team is None)
        if teamless:
            raise ResourceConflictError(
                f"{teamless} release(s) have no team, so stats by team cannot be listed; "
                "ask for one team (/stats/team/<team>) or give those releases a team",
                field="team",
            )
    return orlo.stats_by(releases, by, name=name, stime=stime, ftime=ftime)


def stats_by_date(
    store: Ports,
    space_id: str,
    subject: Subject,
    *,
    unit: Unit,
    summarize_by_unit: bool,
    filters: ReleaseFilters,
) -> dict[str, Any]:
    """``GET /stats/by_date/{subject}``."""
    return orlo.stats_by_date(
        _narrowed(store, space_id, filters), subject, unit=unit, summarize_by_unit=summarize_by_unit, filters=filters
    )


def info(store: Ports, space_id: str, facet: str, *, name: str | None, platform: str | None) -> dict[str, Any]:
    """``GET /info/{users|platforms|packages}[/{name}]`` (the caller checked ``facet``)."""
    repo = store.orlo()
    if facet == "users":
        return orlo.info_users(repo.releases(space_id, ReleaseScope(user=name)), user=name, platform=platform)
    if facet == "platforms":
        return orlo.info_platforms(repo.releases(space_id), platform=name)
    return orlo.info_packages(repo.releases(space_id), name=name, platform=platform)


def package_list(store: Ports, space_id: str, *, platform: str | None) -> dict[str, list[str]]:
    """``GET /info/packages/list``."""
    return orlo.package_list(store.orlo().releases(space_id), platform=platform)


def package_versions(store: Ports, space_id: str, *, platform: str | None, by_release: bool) -> dict[str, str]:
    """``GET /info/packages/versions``."""
    return orlo.package_versions(store.orlo().releases(space_id), platform=platform, by_release=by_release)


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class IssuedToken:
    """A token as handed out once (only its hash is stored)."""

    token: str
    expires_at: datetime


def issue_token(store: Ports, caller: Principal, key_hash: str, now: datetime) -> IssuedToken:
    """``GET /token``: a token standing for the caller's key for one hour; ``<space>.<secret>``."""
    token = f"{caller.space_id}{TOKEN_SEPARATOR}{secrets.token_urlsafe(32)}"
    expires = now + TOKEN_LIFETIME
    store.orlo().put_token(caller.space_id, sha256_hex(token), key_hash, int(expires.timestamp()))
    return IssuedToken(token=token, expires_at=expires)


def authenticate_token(store: Ports, token: str, needed: Scope, now: datetime) -> Principal:
    """The caller an ``X-Auth-Token`` stands for: 401 if unknown, expired or its key revoked; 403 without scope."""
    space_id, separator, secret = token.strip().partition(TOKEN_SEPARATOR)
    if not separator or not secret or not space_id or "#" in space_id or len(token) > 256:
        raise AuthenticationInvalidError("the token is not valid")
    stored = store.orlo().get_token(space_id, sha256_hex(token.strip()))
    if stored is None or stored.expires_at <= now.timestamp():
        raise AuthenticationInvalidError("the token is not valid or has expired; get a new one from /orlo/token")
    record = store.find_api_key(stored.key_hash)
    if record is None or record.space_id != space_id:
        raise AuthenticationInvalidError("the API key of this token has been revoked")
    return require_scope(Principal.of_key(record), needed)
