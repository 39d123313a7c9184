"""Saved insights use cases (PostHog dialect): CRUD with activity, views, trending, sharing, thresholds."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dora_insights.dal.insights import InsightStore
from dora_insights.dal.store import Store
from dora_insights.domain.ids import new_id, new_secret, sha256_hex
from dora_insights.domain.insights import (
    DoraMetricsQuery,
    activity_kind,
    changes,
    derived_name,
    new_short_id,
    rank_trending,
)
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

VIEW_RETENTION_DAYS = 40
MAX_TRENDING_DAYS = 31
LAST_VIEWED = 5
SESSION_HOURS = 24
LOGIN_WINDOW_MINUTES = 10
MAX_FAILED_LOGINS = 10
TOKEN_PREFIX = "shr_"
SESSION_PREFIX = "shs_"

ResultProvider = Callable[[Store, str, DoraMetricsQuery, datetime], dict[str, Any] | None]


def person(caller: Principal) -> dict[str, Any]:
    """Who did it, as PostHog shows people: the key's user (or its name)."""
    who = caller.display_name
    return {"first_name": who, "email": who if "@" in who else None}


def viewer_key(caller: Principal) -> str:
    """A viewer's identity in keys (no '#')."""
    return caller.display_name.replace("#", "_")


def _not_found(insight_id: int) -> ResourceNotFoundError:
    return ResourceNotFoundError(f"insight {insight_id} not found")


def _check_query(store: Store, space_id: str, query: DoraMetricsQuery) -> str:
    """The report's name; 400 naming ``query.reportId`` when the report does not exist."""
    try:
        return reports.get_report(store, space_id, query.reportId).name
    except ResourceNotFoundError:
        raise RequestInvalidError(
            f"report '{query.reportId}' does not exist in this space", field="query.reportId", code="invalid_input"
        ) from None


def get_insight(store: Store, space_id: str, insight_id: int) -> dict[str, Any]:
    """A stored insight (deleted ones too), or 404."""
    insight = InsightStore(store).get(space_id, insight_id)
    if insight is None:
        raise _not_found(insight_id)
    return insight


def create_insight(store: Store, caller: Principal, fields: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A new insight with a fresh short id, recorded in the activity log."""
    query = DoraMetricsQuery.model_validate(fields["query"])
    report_name = _check_query(store, caller.space_id, query)
    number = store.next_numbers(caller.space_id, {"Insights": 1})["Insights"][0]
    stamp = format_instant(now)
    insight = {
        "id": number,
        "short_id": new_short_id(),
        "name": fields.get("name"),
        "derived_name": fields.get("derived_name") or derived_name(query, report_name),
        "description": fields.get("description"),
        "query": query.model_dump(mode="json"),
        "order": fields.get("order"),
        "deleted": bool(fields.get("deleted", False)),
        "dashboards": list(fields.get("dashboards") or []),
        "tags": list(dict.fromkeys(fields.get("tags") or [])),
        "favorited": bool(fields.get("favorited", False)),
        "created_at": stamp,
        "created_by": person(caller),
        "last_modified_at": stamp,
        "last_modified_by": person(caller),
        "version": 1,
    }
    activity = _activity("created", insight, caller, stamp, [])
    InsightStore(store).create(caller.space_id, insight, activity, new_id(now))
    return insight


def _activity(
    kind: str, insight: dict[str, Any], caller: Principal, at: str, diff: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "activity": kind,
        "scope": "Insight",
        "item_id": insight["id"],
        "user": person(caller),
        "created_at": at,
        "detail": {
            "name": insight.get("name") or insight.get("derived_name"),
            "short_id": insight["short_id"],
            "changes": diff,
        },
    }


def update_insight(
    store: Store, caller: Principal, insight_id: int, fields: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """Apply the fields sent; a flip of ``deleted`` is recorded as deleted/restored."""
    repository = InsightStore(store)
    before = get_insight(store, caller.space_id, insight_id)
    after = dict(before)
    for field in ("name", "derived_name", "description", "order", "deleted", "dashboards", "tags", "favorited"):
        if field in fields:
            after[field] = fields[field]
    if "tags" in fields and fields["tags"] is not None:
        after["tags"] = list(dict.fromkeys(fields["tags"]))
    if fields.get("query") is not None:
        query = DoraMetricsQuery.model_validate(fields["query"])
        report_name = _check_query(store, caller.space_id, query)
        after["query"] = query.model_dump(mode="json")
        if "derived_name" not in fields:
            after["derived_name"] = derived_name(query, report_name)
    diff = changes(before, after)
    if not diff:
        return before
    stamp = format_instant(now)
    after.update(last_modified_at=stamp, last_modified_by=person(caller), version=int(before.get("version", 1)) + 1)
    activity = _activity(activity_kind(before, after), after, caller, stamp, diff)
    repository.replace(
        caller.space_id, after, expected_version=int(before.get("version", 1)), activity=activity, unique=new_id(now)
    )
    return after


@dataclass(frozen=True)
class InsightFilter:
    """List filters of the reference."""

    created_by: str | None = None
    created_date_from: str | None = None
    created_date_to: str | None = None
    last_viewed_date_from: str | None = None
    last_viewed_date_to: str | None = None
    date_from: str | None = None
    date_to: str | None = None
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


def _matches(insight: dict[str, Any], f: InsightFilter, caller: Principal, viewed: dict[int, str]) -> bool:
    if insight.get("deleted") and not f.include_deleted:
        return False
    created = str(insight["created_at"])
    modified = str(insight["last_modified_at"])
    if f.created_by is not None and f.created_by not in (
        insight["created_by"].get("first_name"),
        insight["created_by"].get("email"),
    ):
        return False
    if f.user and insight["created_by"].get("first_name") != caller.display_name:
        return False
    if f.created_date_from and created < f.created_date_from:
        return False
    if f.created_date_to and created > f.created_date_to:
        return False
    if f.date_from and modified < f.date_from:
        return False
    if f.date_to and modified > f.date_to:
        return False
    last = viewed.get(int(insight["id"]))
    if (f.last_viewed_date_from or f.last_viewed_date_to) and last is None:
        return False
    if f.last_viewed_date_from and last is not None and last < f.last_viewed_date_from:
        return False
    if f.last_viewed_date_to and last is not None and last > f.last_viewed_date_to:
        return False
    if f.dashboards and not set(f.dashboards) & set(insight.get("dashboards") or []):
        return False
    if f.favorited is not None and bool(insight.get("favorited")) != f.favorited:
        return False
    if f.insight is not None and f.insight.upper() not in _KINDS_MATCHING_ALL:
        return False
    if f.saved is not None and bool(insight.get("name")) != f.saved:
        return False
    if f.short_id is not None and insight["short_id"] != f.short_id:
        return False
    if f.tags and not set(f.tags) & set(insight.get("tags") or []):
        return False
    if f.search:
        haystack = " ".join(str(insight.get(k) or "") for k in ("name", "derived_name", "description")).casefold()
        if f.search.casefold() not in haystack:
            return False
    return True


def list_insights(store: Store, caller: Principal, filters: InsightFilter) -> list[dict[str, Any]]:
    """Insights matching the filters, most recently modified first (one Query of the space's insights)."""
    repository = InsightStore(store)
    viewed: dict[int, str] = {}
    if filters.last_viewed_date_from or filters.last_viewed_date_to:
        viewed = {
            int(v["insight_id"]): str(v["viewed_at"])
            for v in repository.last_viewed(caller.space_id, viewer_key(caller))
        }
    found = [i for i in repository.list_all(caller.space_id) if _matches(i, filters, caller, viewed)]
    return sorted(found, key=lambda i: (str(i["last_modified_at"]), int(i["id"])), reverse=True)


def last_viewed_at(store: Store, caller: Principal, insight_id: int) -> str | None:
    """When the caller last viewed the insight."""
    return InsightStore(store).last_viewed_of(caller.space_id, viewer_key(caller), insight_id)


def record_views(store: Store, caller: Principal, insight_ids: list[int], now: datetime) -> None:
    """``POST /viewed``: each insight must exist in the space (404 otherwise, nothing recorded)."""
    repository = InsightStore(store)
    for insight_id in dict.fromkeys(insight_ids):
        if repository.get(caller.space_id, insight_id) is None:
            raise _not_found(insight_id)
    day = now.date().isoformat()
    expires = int((now + timedelta(days=VIEW_RETENTION_DAYS)).timestamp())
    for insight_id in dict.fromkeys(insight_ids):
        repository.record_view(
            caller.space_id, insight_id, person(caller), viewer_key(caller), day, format_instant(now), expires
        )


def my_last_viewed(store: Store, caller: Principal) -> list[dict[str, Any]]:
    """The caller's last 5 viewed (not deleted) insights, most recent first, with ``last_viewed_at``."""
    repository = InsightStore(store)
    entries = sorted(
        repository.last_viewed(caller.space_id, viewer_key(caller)), key=lambda v: str(v["viewed_at"]), reverse=True
    )
    result: list[dict[str, Any]] = []
    for entry in entries:
        insight = repository.get(caller.space_id, int(entry["insight_id"]))
        if insight is None or insight.get("deleted"):
            continue
        result.append({**insight, "last_viewed_at": entry["viewed_at"]})
        if len(result) == LAST_VIEWED:
            break
    return result


def trending(store: Store, caller: Principal, days: int, now: datetime) -> list[dict[str, Any]]:
    """Insights by views over the last ``days`` days (a view counts once per viewer, insight and day)."""
    if not 1 <= days <= MAX_TRENDING_DAYS:
        raise RequestInvalidError(f"days must be between 1 and {MAX_TRENDING_DAYS}", field="days")
    repository = InsightStore(store)
    day_list = [(now.date() - timedelta(days=n)).isoformat() for n in range(days)]
    counts: dict[int, int] = {}
    last: dict[int, str] = {}
    viewers: dict[int, list[dict[str, Any]]] = {}
    for row in repository.view_counts(caller.space_id, day_list):
        insight_id = int(row["insight_id"])
        counts[insight_id] = counts.get(insight_id, 0) + int(row["view_count"])
        last[insight_id] = max(last.get(insight_id, ""), str(row.get("last_viewed_at", "")))
        viewers.setdefault(insight_id, []).extend(row.get("recent_viewers") or [])
    ranked: list[dict[str, Any]] = []
    for insight_id in rank_trending(counts, last):
        insight = repository.get(caller.space_id, insight_id)
        if insight is None or insight.get("deleted"):
            continue
        recent: list[dict[str, Any]] = []
        for viewer in sorted(viewers[insight_id], key=lambda v: str(v.get("viewed_at", "")), reverse=True):
            who = {"first_name": viewer.get("first_name"), "email": viewer.get("email")}
            if who not in recent:
                recent.append(who)
        ranked.append({**insight, "view_count": counts[insight_id], "recent_viewers": recent[:3]})
    return ranked


def activity(
    store: Store, space_id: str, insight_id: int | None, *, limit: int, page: int
) -> tuple[list[dict[str, Any]], int]:
    """One page (1-based) of activity, newest first, and the total count."""
    repository = InsightStore(store)
    if insight_id is not None:
        get_insight(store, space_id, insight_id)
    wanted = limit * page
    collected: list[dict[str, Any]] = []
    start: dict[str, Any] | None = None
    while len(collected) < wanted:
        items, start = repository.activity_page(
            space_id, insight_id, limit=min(wanted - len(collected), 500), start=start
        )
        collected.extend(items)
        if start is None:
            break
    return collected[limit * (page - 1) : wanted], repository.activity_count(space_id, insight_id)


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


def _hash_password(password: str, salt: bytes, cost: ScryptCost) -> str:
    return hashlib.scrypt(password.encode(), salt=salt, n=cost.n, r=cost.r, p=cost.p, maxmem=cost.maxmem).hex()


def _cost_of(entry: dict[str, Any]) -> ScryptCost:
    kdf = entry.get("kdf")
    if not isinstance(kdf, dict):
        return LEGACY_SCRYPT_COST
    return ScryptCost(n=int(kdf["n"]), r=int(kdf["r"]), p=int(kdf["p"]))


def _matching_password(password: str, entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The stored password ``password`` is, if any: one KDF per distinct (salt, cost), every hash compared."""
    groups: dict[tuple[str, ScryptCost], list[dict[str, Any]]] = {}
    for entry in entries:
        groups.setdefault((str(entry["salt"]), _cost_of(entry)), []).append(entry)
    matched: dict[str, Any] | None = None
    for (salt, cost), members in groups.items():
        digest = _hash_password(password, bytes.fromhex(salt), cost)
        for entry in members:
            if hmac.compare_digest(digest, str(entry["hash"])) and matched is None:
                matched = entry
    return matched


def _default_sharing(now: datetime) -> dict[str, Any]:
    return {
        "enabled": False,
        "access_token": new_secret(TOKEN_PREFIX, 24),
        "password_required": False,
        "settings": {},
        "created_at": format_instant(now),
        "share_passwords": [],
        "password_salt": secrets.token_bytes(16).hex(),
    }


def get_sharing(store: Store, space_id: str, insight_id: int, now: datetime) -> dict[str, Any]:
    """The insight's sharing configuration, created (disabled, with a token) on first use as PostHog does."""
    get_insight(store, space_id, insight_id)
    repository = InsightStore(store)
    sharing = repository.get_sharing(space_id, insight_id)
    if sharing is None:
        sharing = _default_sharing(now)
        try:
            repository.put_sharing(
                space_id, insight_id, sharing, expected_version=None, new_token_hash=sha256_hex(sharing["access_token"])
            )
        except ResourceConflictError:
            # Another request created it first: theirs is the configuration.
            created = repository.get_sharing(space_id, insight_id)
            if created is None:
                raise
            sharing = created
    return sharing


def _change_sharing(
    store: Store, space_id: str, insight_id: int, now: datetime, change: Callable[[dict[str, Any]], str | None]
) -> dict[str, Any]:
    """Read, change and write the sharing configuration, again from a fresh read when another request
    wrote it meanwhile (409 after a few lost races). ``change`` edits it in place and returns the
    access token it replaced, if it rotated it."""
    repository = InsightStore(store)
    for _ in range(_SHARING_WRITE_ATTEMPTS):
        sharing = get_sharing(store, space_id, insight_id, now)
        old_token = change(sharing)
        try:
            repository.put_sharing(
                space_id,
                insight_id,
                sharing,
                expected_version=int(sharing["version"]),
                new_token_hash=sha256_hex(sharing["access_token"]) if old_token else None,
                old_token_hash=sha256_hex(old_token) if old_token else None,
            )
        except ResourceConflictError:
            continue
        return sharing
    raise ResourceConflictError("the sharing configuration was changed by another request; retry")


def update_sharing(
    store: Store, space_id: str, insight_id: int, fields: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """Enable/disable the link, require a password, change settings."""

    def change(sharing: dict[str, Any]) -> None:
        for field in ("enabled", "password_required", "settings"):
            if fields.get(field) is not None:
                sharing[field] = fields[field]

    return _change_sharing(store, space_id, insight_id, now, change)


def refresh_sharing(store: Store, space_id: str, insight_id: int, now: datetime) -> dict[str, Any]:
    """A new access token; the old link, and every session opened through it, stop working at once."""

    def change(sharing: dict[str, Any]) -> str:
        old = str(sharing["access_token"])
        sharing["access_token"] = new_secret(TOKEN_PREFIX, 24)
        return old

    return _change_sharing(store, space_id, insight_id, now, change)


def add_share_password(
    store: Store, caller: Principal, insight_id: int, raw_password: str | None, note: str | None, now: datetime
) -> dict[str, Any]:
    """A password for the link, shown once; only its scrypt hash is stored, with its salt and parameters.
    A link holds at most ``MAX_SHARE_PASSWORDS`` (400 past it)."""
    password = raw_password or secrets.token_urlsafe(12)
    entry_id = new_id(now)
    hashes: dict[str, str] = {}  # by salt: the KDF runs again only if a concurrent write changed the salt

    def change(sharing: dict[str, Any]) -> None:
        passwords = list(sharing.get("share_passwords") or [])
        if len(passwords) >= MAX_SHARE_PASSWORDS:
            raise RequestInvalidError(
                f"a link has at most {MAX_SHARE_PASSWORDS} passwords: delete one first", code="max_share_passwords"
            )
        salt = str(sharing.setdefault("password_salt", secrets.token_bytes(16).hex()))
        if salt not in hashes:
            hashes[salt] = _hash_password(password, bytes.fromhex(salt), SCRYPT_COST)
        entry = {
            "id": entry_id,
            "note": note,
            "created_at": format_instant(now),
            "created_by": person(caller),
            "salt": salt,
            "hash": hashes[salt],
            "kdf": {"name": "scrypt", "n": SCRYPT_COST.n, "r": SCRYPT_COST.r, "p": SCRYPT_COST.p},
        }
        sharing["share_passwords"] = [*passwords, entry]

    _change_sharing(store, caller.space_id, insight_id, now, change)
    return {"id": entry_id, "password": password, "note": note, "created_at": format_instant(now)}


def delete_share_password(store: Store, space_id: str, insight_id: int, password_id: str, now: datetime) -> None:
    """Remove one password (404 if the link has no such password); its sessions stop working at once."""

    def change(sharing: dict[str, Any]) -> None:
        passwords = list(sharing.get("share_passwords") or [])
        remaining = [p for p in passwords if p["id"] != password_id]
        if len(remaining) == len(passwords):
            raise ResourceNotFoundError(f"share password '{password_id}' not found")
        sharing["share_passwords"] = remaining

    _change_sharing(store, space_id, insight_id, now, change)


def _shared(store: Store, access_token: str) -> tuple[str, int, dict[str, Any]]:
    """(space, insight id, sharing) of an enabled link; 404 for unknown, revoked or disabled links."""
    repository = InsightStore(store)
    resolved = repository.resolve_share_token(sha256_hex(access_token))
    if resolved is None:
        raise ResourceNotFoundError("this link does not exist or was revoked")
    space_id, insight_id = resolved
    sharing = repository.get_sharing(space_id, insight_id)
    insight = repository.get(space_id, insight_id)
    if sharing is None or not sharing.get("enabled") or insight is None or insight.get("deleted"):
        raise ResourceNotFoundError("this link does not exist or was revoked")
    if not hmac.compare_digest(str(sharing.get("access_token", "")).encode(), access_token.encode()):
        raise ResourceNotFoundError("this link does not exist or was revoked")
    return space_id, insight_id, sharing


def login_shared(store: Store, access_token: str, password: str, now: datetime) -> str:
    """A 24-hour session token for a password-protected link.

    The attempt is counted (one conditional increment) before the KDF runs: at most
    ``MAX_FAILED_LOGINS`` attempts per link and 10-minute window get to try a password, whatever the
    concurrency; the rest answer 429 at once. A successful login gives its attempt back, so only
    failures (and attempts still running) use up the window. The session is bound to the password and
    to the link's current access token: deleting the password or refreshing the link ends it.
    """
    space_id, insight_id, sharing = _shared(store, access_token)
    repository = InsightStore(store)
    window_start = now.replace(minute=now.minute - now.minute % LOGIN_WINDOW_MINUTES, second=0, microsecond=0)
    window_end = window_start + timedelta(minutes=LOGIN_WINDOW_MINUTES)
    window = format_instant(window_start)
    expires = int((window_start + timedelta(minutes=2 * LOGIN_WINDOW_MINUTES)).timestamp())
    if not repository.reserve_login_attempt(space_id, insight_id, window, MAX_FAILED_LOGINS, expires):
        wait = max(1, int((window_end - now).total_seconds()))
        raise RateLimitedError(f"Request was throttled. Expected available in {wait} seconds.", code="throttled")
    entry = _matching_password(password, list(sharing.get("share_passwords") or []))
    if entry is None:
        raise AuthenticationInvalidError("wrong password")
    repository.release_login_attempt(space_id, insight_id, window)
    token = new_secret(SESSION_PREFIX, 24)
    repository.put_session(
        sha256_hex(token),
        space_id,
        insight_id,
        password_id=str(entry["id"]),
        link_hash=sha256_hex(access_token),
        expires=int((now + timedelta(hours=SESSION_HOURS)).timestamp()),
    )
    return token


def _session_valid(
    session: dict[str, Any] | None,
    space_id: str,
    insight_id: int,
    sharing: dict[str, Any],
    access_token: str,
    now: datetime,
) -> bool:
    """Whether a share session still opens this link: same link and token, its password not deleted, not expired.

    Checked on every use against the sharing configuration the request has read anyway, so nothing
    has to find and delete sessions when a password goes or the link is refreshed (and a login racing
    with the deletion cannot leave a live session behind)."""
    if session is None:
        return False
    password_ids = {str(p["id"]) for p in sharing.get("share_passwords") or []}
    return (
        session.get("space_id") == space_id
        and int(session.get("insight_id", -1)) == insight_id
        and str(session.get("password_id")) in password_ids
        and session.get("link_hash") == sha256_hex(access_token)
        and int(session.get("expires_at", 0)) > int(now.timestamp())
    )


def open_shared(
    store: Store, access_token: str, session_token: str | None, now: datetime
) -> tuple[str, dict[str, Any]]:
    """(space, insight) behind a public link, checking the session when a password is required."""
    space_id, insight_id, sharing = _shared(store, access_token)
    if sharing.get("password_required"):
        if not session_token:
            raise AuthenticationMissingError("this link needs a password: POST /shared/{accessToken}/login")
        session = InsightStore(store).get_session(sha256_hex(session_token))
        if not _session_valid(session, space_id, insight_id, sharing, access_token, now):
            raise AuthenticationInvalidError("the session token is not valid for this link")
    insight = InsightStore(store).get(space_id, insight_id)
    if insight is None:  # pragma: no cover - _shared checked it
        raise ResourceNotFoundError("this link does not exist or was revoked")
    return space_id, insight


def sharing_view(sharing: dict[str, Any]) -> dict[str, Any]:
    """The sharing configuration as the API shows it (never password hashes)."""
    return {
        "enabled": bool(sharing.get("enabled")),
        "access_token": sharing.get("access_token"),
        "password_required": bool(sharing.get("password_required")),
        "settings": sharing.get("settings") or {},
        "created_at": sharing.get("created_at"),
        "share_passwords": [
            {"id": p["id"], "note": p.get("note"), "created_at": p["created_at"], "created_by": p["created_by"]}
            for p in sharing.get("share_passwords", [])
        ],
    }


# --- thresholds ----------------------------------------------------------------------------
def create_threshold(
    store: Store, caller: Principal, insight_id: int, fields: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """A new alert rule on the insight's latest interval value."""
    get_insight(store, caller.space_id, insight_id)
    threshold = {
        "id": new_id(now).lower(),
        "insight": insight_id,
        **fields,
        "state": None,
        "last_checked_at": None,
        "last_value": None,
        "checks": [],
        "created_at": format_instant(now),
        "created_by": person(caller),
    }
    InsightStore(store).put_threshold(caller.space_id, threshold, create=True)
    return threshold


def get_threshold(store: Store, space_id: str, insight_id: int, threshold_id: str) -> dict[str, Any]:
    """One threshold of the insight, or 404."""
    get_insight(store, space_id, insight_id)
    threshold = InsightStore(store).get_threshold(space_id, insight_id, threshold_id)
    if threshold is None:
        raise ResourceNotFoundError(f"threshold '{threshold_id}' not found")
    return threshold


def list_thresholds(store: Store, space_id: str, insight_id: int) -> list[dict[str, Any]]:
    """The insight's thresholds, oldest first."""
    get_insight(store, space_id, insight_id)
    return sorted(InsightStore(store).thresholds_of(space_id, insight_id), key=lambda t: str(t["created_at"]))


def update_threshold(
    store: Store, space_id: str, insight_id: int, threshold_id: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """Change a threshold's settings (its checks are kept)."""
    threshold = get_threshold(store, space_id, insight_id, threshold_id)
    threshold.update({k: v for k, v in fields.items() if v is not None})
    InsightStore(store).put_threshold(space_id, threshold)
    return threshold


def delete_threshold(store: Store, space_id: str, insight_id: int, threshold_id: str) -> None:
    """Delete a threshold, or 404."""
    get_insight(store, space_id, insight_id)
    InsightStore(store).delete_threshold(space_id, insight_id, threshold_id)


def due(threshold: dict[str, Any], now: datetime) -> bool:
    """Whether a threshold's ``calculation_interval`` has passed since its last check."""
    last = threshold.get("last_checked_at")
    if not threshold.get("enabled", True):
        return False
    if last is None:
        return True
    interval = {
        "hourly": timedelta(hours=1),
        "daily": timedelta(days=1),
        "weekly": timedelta(weeks=1),
        "monthly": timedelta(days=30),
    }
    return now - parse_stored(str(last)) >= interval.get(str(threshold.get("calculation_interval")), timedelta(days=1))
