"""Orlo repository: releases with their packages embedded, package pointers, results and tokens.

A release is one item (pattern 90) holding the whole release as a JSON document and a
``version`` for optimistic concurrency; every change is a conditional Put on that version, in
one transaction with the pointer items (pattern 94) of packages it adds. Lists read the
release index (91, or 92/93 narrowed to a user/team) by stime range; the domain filters the rest. A list
page reads it in order, only as far as its page needs (``releases_in_order``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dora_insights.dal import aws, keys, limits
from dora_insights.dal.store import Store
from dora_insights.domain.orlo import NULL, OrloPackage, OrloRelease, OrloStatus, ReleaseScope
from dora_insights.errors import ItemTooLargeError, ResourceConflictError
from dora_insights.observability import logger

_STORED_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width (stored_time), so index sort keys order by time
_MAX_TRANSACTION = 100
_CONDITION_FAILED = "ConditionalCheckFailed"
# On a package pointer: the import calls holding it (``OrloStore.claim_packages``), a string set: two
# imports of one document may claim it at once, and one that fails withdraws only its own claim, the
# pointer going with the last. (Pointers claimed before this kept one ``claim_id`` string: never
# withdrawn, as a crashed import's claim is not; the same document sent again completes them.)
_CLAIMS = "claims"


def stored_time(value: datetime | None) -> str | None:
    """A time as stored (fixed-width UTC with microseconds and a four-digit year), or None."""
    if value is None:
        return None
    # isoformat zero-pads the year (strftime's %Y does not on Linux for years < 1000).
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.strptime(value, _STORED_TIME).replace(tzinfo=UTC)


def _package_doc(package: OrloPackage) -> dict[str, Any]:
    return {
        "id": package.id,
        "name": package.name,
        "version": package.version,
        "status": package.status.value,
        "rollback": package.rollback,
        "diff_url": package.diff_url,
        "stime": stored_time(package.stime),
        "ftime": stored_time(package.ftime),
    }


def release_doc(release: OrloRelease) -> str:
    """The stored JSON document of a release."""
    doc = {
        "id": release.id,
        "user": release.user,
        "team": release.team,
        "platforms": list(release.platforms),
        "references": list(release.references),
        "notes": list(release.notes),
        "metadata": dict(release.metadata),
        "stime": stored_time(release.stime),
        "ftime": stored_time(release.ftime),
        "packages": [_package_doc(p) for p in release.packages],
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


def release_from_doc(text: str) -> OrloRelease:
    """The release a stored document describes."""
    doc = json.loads(text)
    return OrloRelease(
        id=doc["id"],
        user=doc["user"],
        team=doc["team"],
        platforms=tuple(doc["platforms"]),
        references=tuple(doc["references"]),
        notes=tuple(doc["notes"]),
        metadata=doc["metadata"],
        stime=_parse_time(doc["stime"]),
        ftime=_parse_time(doc["ftime"]),
        packages=tuple(
            OrloPackage(
                id=p["id"],
                release_id=doc["id"],
                name=p["name"],
                version=p["version"],
                status=OrloStatus(p["status"]),
                rollback=p["rollback"],
                diff_url=p["diff_url"],
                stime=_parse_time(p["stime"]),
                ftime=_parse_time(p["ftime"]),
            )
            for p in doc["packages"]
        ),
    )


def release_item(space_id: str, release: OrloRelease, version: int) -> dict[str, Any]:
    """A release as a table item (pattern 90, its index attributes 91-93, the document)."""
    return {
        **keys.orlo_release(space_id, release.id),
        **keys.orlo_release_indexes(space_id, release.id, stored_time(release.stime), release.user, release.team),
        keys.TYPE: keys.T_ORLO_RELEASE,
        "release_id": release.id,
        "version": version,
        "doc": release_doc(release),
    }


def check_release(space_id: str, release: OrloRelease) -> None:
    """Refuse, before anything is written, a new release DynamoDB would refuse to store: its item over
    400 KB (``ItemTooLargeError``, 413) or a key over its byte limit (``KeyTooLargeError``, 400). No I/O:
    an import checks every release so that it writes nothing (claims, deployments) for one it cannot store."""
    limits.check_item(aws.serialize(release_item(space_id, release, 1)))


# The largest a release may grow to by its package outcomes: the lower of AWS's item limit and the local
# runtime's (moto refuses items over 405,000 bytes), so a release that is accepted can finish in both.
RELEASE_ROOM_BYTES = 405_000


def check_room(space_id: str, finished: OrloRelease) -> None:
    """Refuse (413) a change that would leave ``finished`` (the release as it will be once its packages
    and itself have stopped: ``domain.orlo.finished_form``) over ``RELEASE_ROOM_BYTES``. No I/O."""
    size = limits.item_size(aws.serialize(release_item(space_id, finished, 10**9)))
    if size > RELEASE_ROOM_BYTES:
        raise ItemTooLargeError(
            f"this would leave the release too little room to record its packages' outcomes ({size:,} bytes"
            f" once they finish, over {RELEASE_ROOM_BYTES:,}); send less (shorter notes or metadata)"
        )


def _release_index(space_id: str, scope: ReleaseScope) -> tuple[str, str] | None:
    """The index and partition of a space's releases: a user's (pattern 92), else a team's (93), else all (91).

    None when no stored release can be in it, so that nothing is read: a user of ``NULL`` (every release has
    a user), or a partition key over DynamoDB's limit (a user or team name longer than any stored one can be:
    no stored item has such a key), which names nothing, as an unknown name does."""
    if scope.user is NULL:
        return None
    if scope.user is not None:
        index, partition = keys.GSI2, keys.orlo_user_releases_pk(space_id, scope.user)
    elif scope.team is not None:
        index, partition = keys.GSI3, keys.orlo_team_releases_pk(space_id, scope.team)
    else:
        index, partition = keys.GSI1, keys.orlo_releases_pk(space_id)
    if len(partition.encode("utf-8", errors="surrogatepass")) > limits.MAX_PARTITION_KEY_BYTES:
        return None
    return index, partition


@dataclass(frozen=True)
class StoredRelease:
    """A release as read, with the version a change must be conditional on."""

    release: OrloRelease
    version: int


@dataclass(frozen=True)
class StoredToken:
    """An Orlo token as stored: the API key it stands for (by hash) and its expiry (epoch seconds)."""

    key_hash: str
    expires_at: int


class OrloStore:
    """Create, read and change Orlo releases; package pointers, results and tokens."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- items ---------------------------------------------------------------------------
    def _pointer_item(self, space_id: str, package: OrloPackage) -> dict[str, Any]:
        return {
            **keys.orlo_package(space_id, package.id),
            keys.TYPE: keys.T_ORLO_PACKAGE,
            "package_id": package.id,
            "release_id": package.release_id,
        }

    # --- releases ------------------------------------------------------------------------
    def get(self, space_id: str, release_id: str) -> StoredRelease | None:
        """Pattern 90, read consistently (the base of a conditional change)."""
        item = self.store.get(keys.orlo_release(space_id, release_id), consistent=True)
        if item is None:
            return None
        return StoredRelease(release_from_doc(str(item["doc"])), int(item["version"]))

    def batch_exists(self, space_id: str, release_ids: Iterable[str]) -> set[str]:
        """Pattern 90: a BatchGetItem per 100."""
        found = self.store.batch_get([keys.orlo_release(space_id, r) for r in release_ids])
        return {str(i["release_id"]) for i in found}

    def package_owners(self, space_id: str, package_ids: Iterable[str]) -> dict[str, str]:
        """Pattern 94: a BatchGetItem per 100, consistent (an import a moment ago took these ids)."""
        found = self.store.batch_get([keys.orlo_package(space_id, p) for p in package_ids], consistent=True)
        return {str(i["package_id"]): str(i["release_id"]) for i in found}

    def package_owner(self, space_id: str, package_id: str) -> str | None:
        """Pattern 94: one GetItem, consistent (Orlo clients add a package and use it at once)."""
        item = self.store.get(keys.orlo_package(space_id, package_id), consistent=True)
        return str(item["release_id"]) if item else None

    def claim_packages(self, space_id: str, releases: Sequence[OrloRelease], *, claim: str | None = None) -> str | None:
        """Pattern 94: point these releases' packages at them, each pointer put on condition that it is
        absent or its release's already (a re-import), 100 to a transaction (contention sent again,
        else 503), ``claim`` added to its claims (the caller's, which ``withdraw_claims`` takes back if
        what follows fails; a fresh one when None). None once all are stored; else the
        id of a package another release holds. Whatever stops it (that, a 503, an error) first
        withdraws the pointers this call stored (``_withdraw``)."""
        if claim is None:
            claim = secrets.token_hex(8)
        claimed: list[OrloPackage] = []
        try:
            for chunk in aws.chunks([p for r in releases for p in r.packages], _MAX_TRANSACTION):
                packages: list[OrloPackage] = chunk
                operations = [self._claim_op(space_id, package, claim) for package in packages]
                reasons = self.store.transact_or_contended(operations, "the release's packages")
                if reasons is None:
                    claimed += packages
                    continue
                # Some claim's condition failed (transact_or_contended raises anything else): another release's.
                taken = [p.id for p, r in zip(packages, reasons, strict=True) if r.get("Code") == _CONDITION_FAILED]
                self._withdraw(space_id, claimed, claim)
                return taken[0]
        except BaseException:
            self._withdraw(space_id, claimed, claim)
            raise
        return None

    def _claim_op(self, space_id: str, package: OrloPackage, claim: str) -> dict[str, Any]:
        """The pointer, created or its release's already (a re-import), with ``claim`` added to its claims."""
        item = self._pointer_item(space_id, package)
        return {
            "Update": {
                "TableName": self.store.table,
                "Key": aws.serialize(keys.orlo_package(space_id, package.id)),
                "UpdateExpression": "SET #type = :type, package_id = :p, release_id = :r ADD #claims :c",
                "ConditionExpression": "attribute_not_exists(PK) OR release_id = :r",
                "ExpressionAttributeNames": {"#type": keys.TYPE, "#claims": _CLAIMS},
                "ExpressionAttributeValues": {
                    ":type": aws.serialize_value(item[keys.TYPE]),
                    ":p": aws.serialize_value(package.id),
                    ":r": aws.serialize_value(package.release_id),
                    ":c": {"SS": [claim]},
                },
            }
        }

    def withdraw_claims(self, space_id: str, releases: Sequence[OrloRelease], claim: str) -> None:
        """Pattern 94: take back what ``claim_packages(..., claim=claim)`` stored for these releases,
        when the writes after it failed before they were stored: ``_withdraw``, two TransactWriteItems
        per package (none for a release without packages). Raises nothing for a pointer it could not
        remove (logged)."""
        self._withdraw(space_id, [p for r in releases for p in r.packages], claim)

    def _withdraw(self, space_id: str, packages: Sequence[OrloPackage], claim: str) -> None:
        """Take ``claim`` back from the pointers ``claim_packages`` stored under it, each while its release
        is not stored: the claim leaves the pointer's claims, then the pointer goes if no claim is left (a
        concurrent import of the same document holds it otherwise, and its release keeps it). Two
        transactions per pointer, each with the release's absence checked. A withdrawal that fails leaves
        its pointer (logged): an orphan pointer answers its package as not found, and the same document
        sent again claims it again."""
        kept = 0
        for package in packages:
            try:
                kept += not self._withdraw_one(space_id, package, claim)
            except Exception:
                kept += 1
                logger.exception("orlo: withdrawing a package pointer failed", extra={"package_id": package.id})
        if kept:
            logger.warning("orlo: claimed package pointers kept", extra={"pointers": kept})

    def _withdraw_one(self, space_id: str, package: OrloPackage, claim: str) -> bool:
        """False when ``claim`` stays on the pointer (its release was stored meanwhile, or contention)."""
        absent = self._not_stored(space_id, package.release_id)
        pointer = aws.serialize(keys.orlo_package(space_id, package.id))
        release = {":r": aws.serialize_value(package.release_id)}
        names = {"#claims": _CLAIMS}
        unclaim = {
            "Update": {
                "TableName": self.store.table,
                "Key": pointer,
                "UpdateExpression": "DELETE #claims :c",
                "ConditionExpression": "release_id = :r AND contains(#claims, :claim)",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {**release, ":c": {"SS": [claim]}, ":claim": aws.serialize_value(claim)},
            }
        }
        if self.store.transact_contended([absent, unclaim]) is not None:
            return False
        delete = {
            "Delete": {
                "TableName": self.store.table,
                "Key": pointer,
                "ConditionExpression": "release_id = :r AND attribute_not_exists(#claims)",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": release,
            }
        }
        self.store.transact_contended([absent, delete])  # cancelled: another claim holds it, or its release is stored
        return True

    def _not_stored(self, space_id: str, release_id: str) -> dict[str, Any]:
        """Pattern 90: a ConditionCheck that the release is not stored."""
        key = aws.serialize(keys.orlo_release(space_id, release_id))
        return {
            "ConditionCheck": {
                "TableName": self.store.table,
                "Key": key,
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }

    def unclaimed_checks(self, space_id: str, package: OrloPackage) -> list[dict[str, Any]]:
        """Patterns 90 and 94: ConditionChecks for a transaction that removes what an import wrote for
        ``package`` of a release it did not store: the release is still not stored, and no import of it
        holds the package's pointer (a pointer of another release, or none, holds nothing of it)."""
        pointer = {
            "ConditionCheck": {
                "TableName": self.store.table,
                "Key": aws.serialize(keys.orlo_package(space_id, package.id)),
                "ConditionExpression": "attribute_not_exists(PK) OR release_id <> :r",
                "ExpressionAttributeValues": {":r": aws.serialize_value(package.release_id)},
            }
        }
        return [self._not_stored(space_id, package.release_id), pointer]

    def create(self, space_id: str, release: OrloRelease) -> bool:
        """The release (version 1), if absent (its packages' pointers claimed first: ``claim_packages``):
        False when it is stored already. Cancelled for contention (throttling) after the retries, a
        ``WriteContendedError`` (503): never taken for a release stored already, which would answer an
        import that stored nothing."""
        put = self.store.put_op(release_item(space_id, release, 1), must_not_exist=True)
        return self.store.transact_or_contended([put], f"release '{release.id}'") is None

    def replace(
        self, space_id: str, release: OrloRelease, *, expected_version: int, new_packages: Sequence[OrloPackage] = ()
    ) -> int:
        """One transaction: the release, conditional on its version, and the new packages' pointers.
        A failed condition (another request changed the release since it was read) is a
        ``ResourceConflictError``, which the caller answers by reading it again; a transaction
        still cancelled for contention alone after its retries is a ``WriteContendedError`` (503)."""
        version = expected_version + 1
        put = self.store.put_op(release_item(space_id, release, version))
        put["Put"]["ConditionExpression"] = "attribute_exists(PK) AND #v = :expected"
        put["Put"]["ExpressionAttributeNames"] = {"#v": "version"}
        put["Put"]["ExpressionAttributeValues"] = {":expected": aws.serialize_value(expected_version)}
        operations = [put]
        operations += [self.store.put_op(self._pointer_item(space_id, p), must_not_exist=True) for p in new_packages]
        if self.store.transact_or_contended(operations, f"release '{release.id}'") is not None:
            changed = f"release '{release.id}' was changed by another request; retry"
            raise ResourceConflictError(changed, field="release_id")
        return version

    def releases(self, space_id: str, scope: ReleaseScope | None = None) -> list[OrloRelease]:
        """Pattern 92 (a user's), 93 (a team's) or 91, every page; none read when no stored release can be in
        the scope (``_release_index``)."""
        scope = scope or ReleaseScope()
        chosen = _release_index(space_id, scope)
        if chosen is None:
            return []
        index, partition = chosen
        between = None
        if scope.bounded:
            between = keys.orlo_stime_range(stored_time(scope.lowest), stored_time(scope.highest))
        items = self.store.query_all(partition=partition, index=index, sort_between=between)
        return [release_from_doc(str(i["doc"])) for i in items if i.get(keys.TYPE) == keys.T_ORLO_RELEASE]

    def releases_in_order(
        self, space_id: str, scope: ReleaseScope, *, ascending: bool = False, page_size: int | None = None
    ) -> Iterator[OrloRelease]:
        """Pattern 92, 93 or 91 as ``releases``, in the index's order and read as the caller takes them, a Query
        of ``page_size`` items (None: DynamoDB's 1 MB) at a time: releases with an stime within [lowest, highest]
        by stime (then id), ascending or descending; then, with neither bound, those without stime by id
        ascending (a second Query, made only when the caller takes past the first: Orlo lists them last). Nothing,
        and no Query, when no stored release can be in the scope (``_release_index``)."""
        chosen = _release_index(space_id, scope)
        if chosen is None:
            return
        index, partition = chosen
        low, high = keys.orlo_stime_range(stored_time(scope.lowest), stored_time(scope.highest))
        # Stored times sort before ``ORLO_NO_TIME``, and the sort keys of releases without stime after it.
        timed = (low, high if scope.highest is not None else keys.ORLO_NO_TIME)
        yield from self._ordered(partition, index, timed, ascending=ascending, page_size=page_size)
        if not scope.bounded:
            untimed = keys.orlo_stime_range(keys.ORLO_NO_TIME, None)
            yield from self._ordered(partition, index, untimed, ascending=True, page_size=page_size)

    def _ordered(
        self, partition: str, index: str, between: tuple[str, str], *, ascending: bool, page_size: int | None
    ) -> Iterator[OrloRelease]:
        """The releases of one sort-key range in the index's order, a page read when the caller reaches it."""
        start: dict[str, Any] | None = None
        while True:
            items, start = self.store.query_page(
                partition=partition,
                index=index,
                ascending=ascending,
                limit=page_size,
                start_key=start,
                sort_between=between,
            )
            for item in items:
                if item.get(keys.TYPE) == keys.T_ORLO_RELEASE:
                    yield release_from_doc(str(item["doc"]))
            if start is None:
                return

    # --- results -------------------------------------------------------------------------
    def add_result(self, space_id: str, package_id: str, content: str, at: datetime, result_id: str) -> None:
        """Pattern 95: one PutItem."""
        item = {
            **keys.orlo_package_result(space_id, package_id, stored_time(at) or "", result_id),
            keys.TYPE: keys.T_ORLO_RESULT,
            "content": content,
            "created_at": stored_time(at),
        }
        self.store.call("put_item", TableName=self.store.table, Item=aws.serialize(item))

    # --- tokens --------------------------------------------------------------------------
    def put_token(self, space_id: str, token_hash: str, key_hash: str, expires_at: int) -> None:
        """Pattern 96, conditional on its absence; the expiry is the item's TTL too."""
        item = {
            **keys.orlo_token(space_id, token_hash),
            keys.TYPE: keys.T_ORLO_TOKEN,
            "key_hash": key_hash,
            keys.TTL: expires_at,
        }
        self.store.transact([self.store.put_op(item, must_not_exist=True)])

    def get_token(self, space_id: str, token_hash: str) -> StoredToken | None:
        """Pattern 96, read consistently."""
        item = self.store.get(keys.orlo_token(space_id, token_hash), consistent=True)
        if item is None:
            return None
        return StoredToken(key_hash=str(item["key_hash"]), expires_at=int(item[keys.TTL]))
