"""Saved insights use cases (PostHog dialect): CRUD with activity, views, trending, sharing, thresholds."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dora_insights.domain.aggregates.splits import Split
from dora_insights.domain.alert_destinations import CLEARED, DELETED
from dora_insights.domain.ids import new_id, new_secret, sha256_hex
from dora_insights.domain.insights import (
    ActivityDetail,
    ActivityEntry,
    ActivityKind,
    DoraMetricsQuery,
    FieldChange,
    Insight,
    InsightChanges,
    InsightDraft,
    Kdf,
    NewSharePassword,
    Person,
    SharePassword,
    ShareSession,
    Sharing,
    SharingChanges,
    Threshold,
    ThresholdChanges,
    ThresholdSettings,
    ThresholdState,
    TrendingInsight,
    ViewedInsight,
    Viewer,
    activity_kind,
    changes,
    derived_name,
    new_short_id,
    rank_trending,
)
from dora_insights.domain.model import CatalogueKind
from dora_insights.domain.times import format_instant, parse_stored
from dora_insights.errors import (
    AuthenticationInvalidError,
    AuthenticationMissingError,
    RateLimitedError,
    RequestInvalidError,
    ResourceConflictError,
    ResourceNotFoundError,
)
from dora_insights.logic import reports
from dora_insights.logic.auth import Principal
from dora_insights.logic.insight_alerts import alert_detail, alert_event, check_alert_size
from dora_insights.logic.insight_ports import InsightPorts
from dora_insights.logic.ports import Ports

VIEW_RETENTION_DAYS = 40
MAX_TRENDING_DAYS = 31
LAST_VIEWED = 5
SESSION_HOURS = 24
LOGIN_WINDOW_MINUTES = 10
MAX_FAILED_LOGINS = 10
TOKEN_PREFIX = "shr_"
SESSION_PREFIX = "shs_"


def person(caller: Principal) -> Person:
    """Who did it, as PostHog shows people: the key's user (or its name)."""
    return Person.named(caller.display_name)


def viewer_key(caller: Principal) -> str:
    """A viewer's identity in keys: the key's user (or name) as it is, so two names are two viewers.

    It ends the keys it is in (pattern 51's sort key after the fixed-width insight id and '#', pattern
    53's partition after ``LASTVIEWED#``), so nothing reads past it and a '#' in it needs no escaping.
    (Until this was so, '#' was replaced by '_': the history of a name with a '#' was kept under the
    name with '_' instead, where it stays; such a viewer's history starts again.)"""
    return caller.display_name


def _not_found(insight_id: int) -> ResourceNotFoundError:
    return ResourceNotFoundError(f"insight {insight_id} not found")


def _check_query(store: Ports, space_id: str, query: DoraMetricsQuery) -> str:
    """The report's name; 400 naming ``query.reportId`` when the report does not exist, and
    ``query.tenantTagSetId`` when a TenantTagSet split names a tag set the space does not have (as the
    report's ``/metrics`` route refuses it: the insight would never have a result)."""
    try:
        name = reports.get_report(store, space_id, query.reportId).name
    except ResourceNotFoundError:
        raise RequestInvalidError(
            f"report '{query.reportId}' does not exist in this space", field="query.reportId", code="invalid_input"
        ) from None
    if query.split is Split.TENANT_TAG_SET:
        known = {entry.id for entry in store.list_catalogue(space_id, CatalogueKind.TENANT_TAG_SET)}
        if query.tenantTagSetId not in known:
            raise RequestInvalidError(
                f"tenant tag set '{query.tenantTagSetId}' does not exist in this space",
                field="query.tenantTagSetId",
                code="invalid_input",
            )
    return name


def _stored_query(query: DoraMetricsQuery) -> dict[str, Any]:
    """A query as it is stored and read back: without null members (the store keeps none, so a query
    sent again as read compares equal to the one stored)."""
    return query.model_dump(mode="json", exclude_none=True)


def get_insight(store: InsightPorts, space_id: str, insight_id: int) -> Insight:
    """A stored insight (deleted ones too), or 404."""
    insight = store.insights().get(space_id, insight_id)
    if insight is None:
        raise _not_found(insight_id)
    return insight


def live_insight(store: InsightPorts, space_id: str, insight_id: int) -> Insight:
    """A stored insight that is not soft-deleted, or 404: what an insight's own routes read, as PostHog's
    ``InsightViewSet`` reads insights without its deleted ones (retrieve, its activity; a PATCH unless it
    restores: ``update_insight``). Its sharing and thresholds stay reachable (``get_insight``)."""
    insight = get_insight(store, space_id, insight_id)
    if insight.deleted:
        raise _not_found(insight_id)
    return insight


def create_insight(store: InsightPorts, caller: Principal, draft: InsightDraft, now: datetime) -> Insight:
    """A new insight with a fresh short id, recorded in the activity log."""
    query = draft.query
    report_name = _check_query(store, caller.space_id, query)
    number = store.next_numbers(caller.space_id, {"Insights": 1})["Insights"][0]
    stamp = format_instant(now)
    insight = Insight(
        id=number,
        short_id=new_short_id(),
        name=draft.name,
        derived_name=draft.derived_name or derived_name(query, report_name),
        description=draft.description,
        query=_stored_query(query),
        order=draft.order,
        deleted=draft.deleted,
        dashboards=tuple(dict.fromkeys(draft.dashboards)),
        tags=tuple(dict.fromkeys(draft.tags)),
        favorited=draft.favorited,
        created_at=stamp,
        created_by=person(caller),
        last_modified_at=stamp,
        last_modified_by=person(caller),
        version=1,
    )
    activity = _activity(ActivityKind.CREATED, insight, caller, stamp, ())
    store.insights().create(caller.space_id, insight, activity, _unique(insight, now))
    return insight


def _activity(
    kind: ActivityKind, insight: Insight, caller: Principal, at: str, diff: Sequence[FieldChange]
) -> ActivityEntry:
    return ActivityEntry(
        activity=kind,
        item_id=insight.id,
        user=person(caller),
        created_at=at,
        detail=ActivityDetail(name=insight.title, short_id=insight.short_id, changes=tuple(diff)),
    )


# Fields a PATCH sets as sent; a null leaves the ones that cannot be empty as they are.
_PATCHED = ("name", "derived_name", "description", "order", "deleted", "dashboards", "tags", "favorited")
_NOT_EMPTY = frozenset({"deleted", "dashboards", "tags", "favorited"})


def update_insight(
    store: InsightPorts, caller: Principal, insight_id: int, patch: InsightChanges, now: datetime
) -> Insight:
    """Apply the fields sent; a flip of ``deleted`` is recorded as deleted/restored. A soft-deleted insight
    is a 404 unless the PATCH sends ``deleted: false``, which restores it with the other fields sent (as
    PostHog: only such a PATCH reads deleted insights).

    The write holds only while the insight is at the version it was read at. A PATCH that lost to
    another one is made again once from a fresh read (the fields sent are what this client asked
    for; a change of other fields meanwhile stays); a second lost race is a 409."""
    for _ in range(_INSIGHT_WRITE_ATTEMPTS):
        before = get_insight(store, caller.space_id, insight_id)
        if before.deleted and patch.deleted is not False:
            raise _not_found(insight_id)
        after, diff = _patched(store, caller.space_id, before, patch)
        if not diff:
            return before
        stamp = format_instant(now)
        after = after.model_copy(
            update={"last_modified_at": stamp, "last_modified_by": person(caller), "version": before.version + 1}
        )
        activity = _activity(activity_kind(before, after), after, caller, stamp, diff)
        try:
            store.insights().replace(
                caller.space_id, after, expected_version=before.version, activity=activity, unique=_unique(after, now)
            )
        except ResourceConflictError:
            continue
        return after
    raise ResourceConflictError("the insight was changed by another request meanwhile; retry")


def _patched(
    store: InsightPorts, space_id: str, before: Insight, patch: InsightChanges
) -> tuple[Insight, tuple[FieldChange, ...]]:
    """The insight with the fields sent applied, and what changed."""
    sent = patch.model_fields_set
    update: dict[str, Any] = {}
    for field in _PATCHED:
        value = getattr(patch, field)
        if field in sent and not (value is None and field in _NOT_EMPTY):
            update[field] = value
    for listed in ("dashboards", "tags"):  # a set each, in the order first sent (as PostHog's)
        if (values := getattr(patch, listed)) is not None:
            update[listed] = tuple(dict.fromkeys(values))
    if patch.query is not None:
        report_name = _check_query(store, space_id, patch.query)
        update["query"] = _stored_query(patch.query)
        if "derived_name" not in sent:
            update["derived_name"] = derived_name(patch.query, report_name)
    after = before.model_copy(update=update)
    return after, tuple(changes(before, after))


def _unique(insight: Insight, now: datetime) -> str:
    """What tells activity entries of one instant apart, in the order they were written: the insight's
    version (each write of it is one more), then a random part."""
    return f"{insight.version:010d}{new_id(now)}"


@dataclass(frozen=True)
class InsightFilter:
    """List filters of the reference; the dates as instants (``logic.insight_dates`` reads them),
    each bound inclusive; ``dashboards``: on every one of them, as PostHog filters them."""

    created_by: str | None = None
    created_date_from: datetime | None = None
    created_date_to: datetime | None = None
    last_viewed_date_from: datetime | None = None
    last_viewed_date_to: datetime | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    dashboards: tuple[int, ...] = ()
    favorited: bool | None = None
    insight: str | None = None
    saved: bool | None = None
    search: str | None = None
    short_id: str | None = None
    tags: tuple[str, ...] = ()
    user: bool | None = None
    include_deleted: bool = False


_KINDS_MATCHING_ALL = frozenset({"TRENDS", "DORAMETRICSQUERY", "DORA_METRICS"})


def _within(stamp: str | None, start: datetime | None, end: datetime | None) -> bool:
    """Whether a stored time lies between two instants (either bound absent: open); no time is not."""
    if start is None and end is None:
        return True
    if stamp is None:
        return False
    at = parse_stored(stamp)
    return (start is None or at >= start) and (end is None or at <= end)


def _matches(insight: Insight, f: InsightFilter, caller: Principal, viewed: Mapping[int, str]) -> bool:
    if insight.deleted and not f.include_deleted:
        return False
    if f.created_by is not None and f.created_by not in (insight.created_by.first_name, insight.created_by.email):
        return False
    if f.user and insight.created_by.first_name != caller.display_name:
        return False
    if not _within(insight.created_at, f.created_date_from, f.created_date_to):
        return False
    if not _within(insight.last_modified_at, f.date_from, f.date_to):
        return False
    if not _within(viewed.get(insight.id), f.last_viewed_date_from, f.last_viewed_date_to):
        return False
    if f.dashboards and not set(f.dashboards) <= set(insight.dashboards):
        return False
    if f.favorited is not None and insight.favorited != f.favorited:
        return False
    if f.insight is not None and f.insight.upper() not in _KINDS_MATCHING_ALL:
        return False
    if f.saved is not None and bool(insight.name) != f.saved:
        return False
    if f.short_id is not None and insight.short_id != f.short_id:
        return False
    if f.tags and not set(f.tags) & set(insight.tags):
        return False
    if f.search:  # in one field at a time, or a tag (as PostHog's search)
        wanted = f.search.casefold()
        fields = (insight.name, insight.derived_name, insight.description, *insight.tags)
        if not any(wanted in text.casefold() for text in fields if text):
            return False
    return True


def list_insights(
    store: InsightPorts, caller: Principal, filters: InsightFilter, viewed: Mapping[int, str] | None = None
) -> list[Insight]:
    """Insights matching the filters, most recently modified first (one Query of the space's insights).
    ``viewed``: the caller's last views (``views_of``), read here when a filter needs them and none are given."""
    repository = store.insights()
    if viewed is None:
        needed = filters.last_viewed_date_from is not None or filters.last_viewed_date_to is not None
        viewed = views_of(store, caller) if needed else {}
    found = [i for i in repository.list_all(caller.space_id) if _matches(i, filters, caller, viewed)]
    return sorted(found, key=lambda i: (i.last_modified_at, i.id), reverse=True)


def last_viewed_at(store: InsightPorts, caller: Principal, insight_id: int) -> str | None:
    """When the caller last viewed the insight."""
    return store.insights().last_viewed_of(caller.space_id, viewer_key(caller), insight_id)


def views_of(store: InsightPorts, caller: Principal) -> dict[int, str]:
    """When the caller last viewed each insight it viewed, by insight id: one Query of its last views (a
    list shows each insight's ``last_viewed_at`` from it, however many it shows)."""
    return {v.insight_id: v.viewed_at for v in store.insights().last_viewed(caller.space_id, viewer_key(caller))}


def record_views(store: InsightPorts, caller: Principal, insight_ids: list[int], now: datetime) -> None:
    """``POST /viewed``: each insight must exist in the space, not deleted (404 otherwise, nothing recorded:
    a view of a soft-deleted insight would resurface in its ``last_viewed_at`` and trending once restored)."""
    repository = store.insights()
    wanted = list(dict.fromkeys(insight_ids))
    found = repository.get_many(caller.space_id, wanted)  # a BatchGetItem per 100, not a GetItem each
    for insight_id in wanted:
        if insight_id not in found or found[insight_id].deleted:
            raise _not_found(insight_id)
    day = now.date().isoformat()
    expires = int((now + timedelta(days=VIEW_RETENTION_DAYS)).timestamp())
    for insight_id in wanted:
        repository.record_view(
            caller.space_id, insight_id, person(caller), viewer_key(caller), day, format_instant(now), expires
        )


def my_last_viewed(store: InsightPorts, caller: Principal) -> list[ViewedInsight]:
    """The caller's last 5 viewed (not deleted) insights, most recent first, with ``last_viewed_at``."""
    repository = store.insights()
    entries = sorted(
        repository.last_viewed(caller.space_id, viewer_key(caller)), key=lambda v: v.viewed_at, reverse=True
    )
    result: list[ViewedInsight] = []
    for entry in entries:
        insight = repository.get(caller.space_id, entry.insight_id)
        if insight is None or insight.deleted:
            continue
        result.append(ViewedInsight(insight=insight, last_viewed_at=entry.viewed_at))
        if len(result) == LAST_VIEWED:
            break
    return result


def trending(store: InsightPorts, caller: Principal, days: int, now: datetime) -> list[TrendingInsight]:
    """Insights by views over the last ``days`` days (a view counts once per viewer, insight and day).

    Deleted insights are left out, and so not counted: every ranked insight is read, a hundred a call
    (one Query a day for the counts, then ``ceil(ranked / 100)`` BatchGetItems), whatever page is shown."""
    if not 1 <= days <= MAX_TRENDING_DAYS:
        raise RequestInvalidError(f"days must be between 1 and {MAX_TRENDING_DAYS}", field="days")
    repository = store.insights()
    day_list = [(now.date() - timedelta(days=n)).isoformat() for n in range(days)]
    counts: dict[int, int] = {}
    last: dict[int, str] = {}
    viewers: dict[int, list[Viewer]] = {}
    for row in repository.view_counts(caller.space_id, day_list):
        counts[row.insight_id] = counts.get(row.insight_id, 0) + row.view_count
        last[row.insight_id] = max(last.get(row.insight_id, ""), row.last_viewed_at)
        viewers.setdefault(row.insight_id, []).extend(row.viewers)
    order = rank_trending(counts, last)
    found = repository.get_many(caller.space_id, order)
    ranked: list[TrendingInsight] = []
    for insight_id in order:
        insight = found.get(insight_id)
        if insight is None or insight.deleted:
            continue
        recent: list[Person] = []
        for viewer in sorted(viewers[insight_id], key=lambda v: v.viewed_at, reverse=True):
            who = Person(first_name=viewer.first_name, email=viewer.email)
            if who not in recent:
                recent.append(who)
        ranked.append(TrendingInsight(insight=insight, view_count=counts[insight_id], recent_viewers=tuple(recent[:3])))
    return ranked


def activity(
    store: InsightPorts, space_id: str, insight_id: int | None, *, limit: int, page: int
) -> tuple[list[ActivityEntry], int]:
    """One page (1-based) of activity, newest first, and the total count."""
    repository = store.insights()
    if insight_id is not None:
        live_insight(store, space_id, insight_id)  # PostHog: 404 for a soft-deleted insight's activity too
    newest = repository.newest_activity(space_id, insight_id, limit * page)
    return newest[limit * (page - 1) :], repository.activity_count(space_id, insight_id)


# --- sharing -------------------------------------------------------------------------------
# Share passwords: scrypt at OWASP's cost (N=2^17, r=8, p=1: 128 MiB, 0.5-0.8 s on one core here,
# so ~2 s in a 512 MB function, which gets about 0.3 of a vCPU). Each hash is stored with its
# parameters and salt, so hashes made with older parameters keep verifying. New passwords of a link
# share the link's salt: a login runs one KDF per distinct (salt, parameters), i.e. one, however many
# passwords the link has (up to MAX_SHARE_PASSWORDS), instead of one per password, which at this cost
# would not fit a function's timeout. Links still never share a salt, so nothing can be precomputed.
@dataclass(frozen=True)
class ScryptCost:
    """scrypt parameters of one stored hash."""

    n: int
    r: int
    p: int

    @property
    def maxmem(self) -> int:
        """The memory limit OpenSSL must allow: 128·r·(N+2) bytes for V, 128·r·p for B, and 1 MiB spare."""
        return 128 * self.r * (self.n + 2) + 128 * self.r * self.p + 2**20


SCRYPT_COST = ScryptCost(n=2**17, r=8, p=1)
LEGACY_SCRYPT_COST = ScryptCost(n=2**14, r=8, p=1)  # hashes stored without their parameters
MAX_SHARE_PASSWORDS = 10
_SHARING_WRITE_ATTEMPTS = 5
_THRESHOLD_WRITE_ATTEMPTS = 2  # a threshold PATCH: a lost race is tried again once from a fresh read
_INSIGHT_WRITE_ATTEMPTS = 2  # an insight PATCH, the same


def _hash_password(password: str, salt: bytes, cost: ScryptCost) -> str:
    return hashlib.scrypt(password.encode(), salt=salt, n=cost.n, r=cost.r, p=cost.p, maxmem=cost.maxmem).hex()


def _cost_of(entry: SharePassword) -> ScryptCost:
    if entry.kdf is None:
        return LEGACY_SCRYPT_COST
    return ScryptCost(n=entry.kdf.n, r=entry.kdf.r, p=entry.kdf.p)


def _matching_password(password: str, entries: Sequence[SharePassword]) -> SharePassword | None:
    """The stored password ``password`` is, if any: one KDF per distinct (salt, cost), every hash compared."""
    groups: dict[tuple[str, ScryptCost], list[SharePassword]] = {}
    for entry in entries:
        groups.setdefault((entry.salt, _cost_of(entry)), []).append(entry)
    matched: SharePassword | None = None
    for (salt, cost), members in groups.items():
        digest = _hash_password(password, bytes.fromhex(salt), cost)
        for entry in members:
            if hmac.compare_digest(digest, entry.hash) and matched is None:
                matched = entry
    return matched


def _default_sharing(now: datetime) -> Sharing:
    return Sharing(
        enabled=False,
        access_token=new_secret(TOKEN_PREFIX, 24),
        password_required=False,
        settings={},
        created_at=format_instant(now),
        share_passwords=(),
        password_salt=secrets.token_bytes(16).hex(),
    )


def get_sharing(store: InsightPorts, space_id: str, insight_id: int, now: datetime) -> Sharing:
    """The insight's sharing configuration, created (disabled, with a token) on first use as PostHog does."""
    get_insight(store, space_id, insight_id)
    repository = store.insights()
    sharing = repository.get_sharing(space_id, insight_id)
    if sharing is None:
        sharing = _default_sharing(now)
        try:
            sharing = repository.put_sharing(
                space_id, insight_id, sharing, expected_version=None, new_token_hash=sha256_hex(sharing.access_token)
            )
        except ResourceConflictError:
            # Another request created it first: theirs is the configuration.
            created = repository.get_sharing(space_id, insight_id)
            if created is None:
                raise
            sharing = created
    return sharing


# A change of the sharing configuration: the changed configuration, and the access token it
# replaced if it rotated it.
SharingChange = Callable[[Sharing], tuple[Sharing, str | None]]


def _change_sharing(
    store: InsightPorts, space_id: str, insight_id: int, now: datetime, change: SharingChange
) -> Sharing:
    """Read, change and write the sharing configuration, again from a fresh read when another request
    wrote it meanwhile (409 after a few lost races)."""
    repository = store.insights()
    for _ in range(_SHARING_WRITE_ATTEMPTS):
        read = get_sharing(store, space_id, insight_id, now)
        sharing, old_token = change(read)
        try:
            return repository.put_sharing(
                space_id,
                insight_id,
                sharing,
                expected_version=read.version,
                new_token_hash=sha256_hex(sharing.access_token) if old_token else None,
                old_token_hash=sha256_hex(old_token) if old_token else None,
            )
        except ResourceConflictError:
            continue
    raise ResourceConflictError("the sharing configuration was changed by another request; retry")


def update_sharing(
    store: InsightPorts, space_id: str, insight_id: int, changes: SharingChanges, now: datetime
) -> Sharing:
    """Enable/disable the link, require a password, change settings."""

    def change(sharing: Sharing) -> tuple[Sharing, None]:
        return sharing.model_copy(update={k: v for k, v in changes if v is not None}), None

    return _change_sharing(store, space_id, insight_id, now, change)


def refresh_sharing(store: InsightPorts, space_id: str, insight_id: int, now: datetime) -> Sharing:
    """A new access token; the old link, and every session opened through it, stop working at once."""

    def change(sharing: Sharing) -> tuple[Sharing, str]:
        return sharing.model_copy(update={"access_token": new_secret(TOKEN_PREFIX, 24)}), sharing.access_token

    return _change_sharing(store, space_id, insight_id, now, change)


def add_share_password(
    store: InsightPorts, caller: Principal, insight_id: int, raw_password: str | None, note: str | None, now: datetime
) -> NewSharePassword:
    """A password for the link, shown once; only its scrypt hash is stored, with its salt and parameters.
    A link holds at most ``MAX_SHARE_PASSWORDS`` (400 past it)."""
    password = raw_password or secrets.token_urlsafe(12)
    entry_id = new_id(now)
    hashes: dict[str, str] = {}  # by salt: the KDF runs again only if a concurrent write changed the salt

    def change(sharing: Sharing) -> tuple[Sharing, None]:
        if len(sharing.share_passwords) >= MAX_SHARE_PASSWORDS:
            raise RequestInvalidError(
                f"a link has at most {MAX_SHARE_PASSWORDS} passwords: delete one first", code="max_share_passwords"
            )
        salt = sharing.password_salt or secrets.token_bytes(16).hex()
        if salt not in hashes:
            hashes[salt] = _hash_password(password, bytes.fromhex(salt), SCRYPT_COST)
        entry = SharePassword(
            id=entry_id,
            note=note,
            created_at=format_instant(now),
            created_by=person(caller),
            salt=salt,
            hash=hashes[salt],
            kdf=Kdf(name="scrypt", n=SCRYPT_COST.n, r=SCRYPT_COST.r, p=SCRYPT_COST.p),
        )
        update = {"password_salt": salt, "share_passwords": (*sharing.share_passwords, entry)}
        return sharing.model_copy(update=update), None

    _change_sharing(store, caller.space_id, insight_id, now, change)
    return NewSharePassword(id=entry_id, password=password, note=note, created_at=format_instant(now))


def delete_share_password(store: InsightPorts, space_id: str, insight_id: int, password_id: str, now: datetime) -> None:
    """Remove one password (404 if the link has no such password); its sessions stop working at once."""

    def change(sharing: Sharing) -> tuple[Sharing, None]:
        remaining = tuple(p for p in sharing.share_passwords if p.id != password_id)
        if len(remaining) == len(sharing.share_passwords):
            raise ResourceNotFoundError(f"share password '{password_id}' not found")
        return sharing.model_copy(update={"share_passwords": remaining}), None

    _change_sharing(store, space_id, insight_id, now, change)


def _shared(store: InsightPorts, access_token: str) -> tuple[str, int, Sharing]:
    """(space, insight id, sharing) of an enabled link; 404 for unknown, revoked or disabled links."""
    repository = store.insights()
    resolved = repository.resolve_share_token(sha256_hex(access_token))
    if resolved is None:
        raise ResourceNotFoundError("this link does not exist or was revoked")
    space_id, insight_id = resolved
    sharing = repository.get_sharing(space_id, insight_id)
    insight = repository.get(space_id, insight_id)
    if sharing is None or not sharing.enabled or insight is None or insight.deleted:
        raise ResourceNotFoundError("this link does not exist or was revoked")
    if not hmac.compare_digest(sharing.access_token.encode(), access_token.encode()):
        raise ResourceNotFoundError("this link does not exist or was revoked")
    return space_id, insight_id, sharing


def login_shared(store: InsightPorts, access_token: str, password: str, now: datetime) -> str:
    """A 24-hour session token for a password-protected link.

    The attempt is counted (a conditional write of the link's login log) before the KDF runs: while
    ``MAX_FAILED_LOGINS`` attempts made in the last ``LOGIN_WINDOW_MINUTES`` minutes still count, every
    other attempt answers 429 at once, whatever the concurrency. The window slides (each attempt counts
    for 10 minutes from the second it was made), so no run of more than 10 failures within 10 minutes
    gets through, even across a clock boundary. A successful login gives its attempt back, so only
    failures (and attempts still running) use up the window. The session is bound to the password and
    to the link's current access token: deleting the password or refreshing the link ends it.
    """
    space_id, insight_id, sharing = _shared(store, access_token)
    repository = store.insights()
    window = LOGIN_WINDOW_MINUTES * 60
    attempt = format_instant(now)
    counts_until = math.ceil(now.timestamp()) + window  # the second from which this attempt no longer counts
    if not repository.reserve_login_attempt(space_id, insight_id, attempt, MAX_FAILED_LOGINS, counts_until):
        # At most: the oldest attempt still counted stops counting within the window.
        raise RateLimitedError(
            f"Request was throttled. Expected available in {window} seconds.", retry_after=window, code="throttled"
        )
    entry = _matching_password(password, sharing.share_passwords)
    if entry is None:
        raise AuthenticationInvalidError("wrong password")
    repository.release_login_attempt(space_id, insight_id, attempt)
    token = new_secret(SESSION_PREFIX, 24)
    session = ShareSession(
        space_id=space_id,
        insight_id=insight_id,
        password_id=entry.id,
        link_hash=sha256_hex(access_token),
        expires_at=int((now + timedelta(hours=SESSION_HOURS)).timestamp()),
    )
    repository.put_session(sha256_hex(token), session)
    return token


def _session_valid(
    session: ShareSession | None, space_id: str, insight_id: int, sharing: Sharing, access_token: str, now: datetime
) -> bool:
    """Whether a share session still opens this link: same link and token, its password not deleted, not expired.

    Checked on every use against the sharing configuration the request has read anyway, so nothing
    has to find and delete sessions when a password goes or the link is refreshed (and a login racing
    with the deletion cannot leave a live session behind)."""
    if session is None:
        return False
    password_ids = {p.id for p in sharing.share_passwords}
    return (
        session.space_id == space_id
        and session.insight_id == insight_id
        and session.password_id in password_ids
        and session.link_hash == sha256_hex(access_token)
        and session.expires_at > int(now.timestamp())
    )


def open_shared(
    store: InsightPorts, access_token: str, session_token: str | None, now: datetime
) -> tuple[str, Insight]:
    """(space, insight) behind a public link, checking the session when a password is required."""
    space_id, insight_id, sharing = _shared(store, access_token)
    repository = store.insights()
    if sharing.password_required:
        if not session_token:
            raise AuthenticationMissingError("this link needs a password: POST /shared/{accessToken}/login")
        session = repository.get_session(sha256_hex(session_token))
        if not _session_valid(session, space_id, insight_id, sharing, access_token, now):
            raise AuthenticationInvalidError("the session token is not valid for this link")
    insight = repository.get(space_id, insight_id)
    if insight is None:  # pragma: no cover - _shared checked it
        raise ResourceNotFoundError("this link does not exist or was revoked")
    return space_id, insight


# --- thresholds ----------------------------------------------------------------------------
def create_threshold(
    store: InsightPorts, caller: Principal, insight_id: int, settings: ThresholdSettings, now: datetime
) -> Threshold:
    """A new alert rule on the insight's latest interval value (400 when its alert events could not
    fit EventBridge's entry limit: ``logic.insight_alerts``); 404 on a soft-deleted insight, which is
    gone (its thresholds stay reachable only to be turned off)."""
    insight = live_insight(store, caller.space_id, insight_id)
    threshold = Threshold(
        id=new_id(now).lower(),
        insight=insight_id,
        **dict(settings),
        state=None,
        last_checked_at=None,
        last_value=None,
        checks=(),
        created_at=format_instant(now),
        created_by=person(caller),
        version=1,
    )
    check_alert_size(caller.space_id, insight, threshold)
    store.insights().put_threshold(caller.space_id, threshold, create=True)
    return threshold


def get_threshold(store: InsightPorts, space_id: str, insight_id: int, threshold_id: str) -> Threshold:
    """One threshold of the insight, or 404."""
    get_insight(store, space_id, insight_id)
    threshold = store.insights().get_threshold(space_id, insight_id, threshold_id)
    if threshold is None:
        raise _threshold_not_found(threshold_id)
    return threshold


def _threshold_not_found(threshold_id: str) -> ResourceNotFoundError:
    return ResourceNotFoundError(f"threshold '{threshold_id}' not found")


def list_thresholds(store: InsightPorts, space_id: str, insight_id: int) -> list[Threshold]:
    """The insight's thresholds, oldest first."""
    get_insight(store, space_id, insight_id)
    return sorted(store.insights().thresholds_of(space_id, insight_id), key=lambda t: t.created_at)


def update_threshold(
    store: InsightPorts, space_id: str, insight_id: int, threshold_id: str, changes: ThresholdChanges
) -> Threshold:
    """Change the settings sent (a null changes nothing); the state and checks are the scheduled
    check's, which may record one meanwhile: neither writes back what the other changed.

    The write holds only while the threshold exists with the settings it was read with
    (``InsightRepository.put_threshold``). Another PATCH that came first is not overwritten blindly:
    the change is made again once from a fresh read (the fields sent are what the client asked for,
    and the checks, such as the alert size, see both changes together); a threshold deleted meanwhile
    is a 404, never brought back; a second lost race is a 409."""
    sent = {k: v for k, v in changes if v is not None}
    for _ in range(_THRESHOLD_WRITE_ATTEMPTS):
        insight = get_insight(store, space_id, insight_id)
        threshold = store.insights().get_threshold(space_id, insight_id, threshold_id)
        if threshold is None:
            raise _threshold_not_found(threshold_id)
        changed = threshold.model_copy(update=sent)
        if changed == threshold:
            return threshold
        check_alert_size(space_id, insight, changed)
        try:
            store.insights().put_threshold(space_id, changed)
        except ResourceConflictError:
            continue
        return changed.model_copy(update={"version": threshold.version + 1})
    raise ResourceConflictError("the threshold was changed by another request meanwhile; retry")


def delete_threshold(store: InsightPorts, space_id: str, insight_id: int, threshold_id: str, now: datetime) -> None:
    """Delete a threshold, or 404. A ``Firing`` one ends with it: its ``InsightThresholdCleared``
    (reason ``threshold_deleted``, its last value) goes to the outbox in the same transaction, and
    the next scheduled run delivers it. The delete holds only while no check was recorded since the
    threshold was read (a check moving it into or out of Firing meanwhile owes its own event), so it
    is made again from a fresh read; a second lost race is a 409."""
    insight = get_insight(store, space_id, insight_id)
    repository = store.insights()
    for _ in range(_THRESHOLD_WRITE_ATTEMPTS):
        threshold = repository.get_threshold(space_id, insight_id, threshold_id)
        if threshold is None:
            raise _threshold_not_found(threshold_id)
        at = format_instant(now)
        event = None
        if threshold.state is ThresholdState.FIRING:
            detail = alert_detail(
                space_id,
                insight,
                threshold,
                value=threshold.last_value,
                previous=ThresholdState.FIRING,
                state=ThresholdState.NOT_FIRING,
                checked_at=at,
                reason=DELETED,
            )
            event = alert_event(CLEARED, detail)
        if repository.delete_threshold(
            space_id, insight_id, threshold_id, checked_before=threshold.last_checked_at, notify=event, at=at
        ):
            return
    raise ResourceConflictError("the threshold was checked by the scheduled run meanwhile; retry")


def due(threshold: Threshold, now: datetime) -> bool:
    """Whether a threshold's ``calculation_interval`` has passed since its last check."""
    last = threshold.last_checked_at
    if not threshold.enabled:
        return False
    if last is None:
        return True
    interval = {
        "hourly": timedelta(hours=1),
        "daily": timedelta(days=1),
        "weekly": timedelta(weeks=1),
        "monthly": timedelta(days=30),
    }
    return now - parse_stored(last) >= interval.get(threshold.calculation_interval, timedelta(days=1))
