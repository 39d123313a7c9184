"""Administration use cases: spaces, API keys, webhook secrets (API and admin command alike)."""

from __future__ import annotations

from datetime import datetime

from dora_insights.dal.store import API_KEY_PREFIX, SPACE_PREFIX, Store
from dora_insights.domain.ids import new_secret, sha256_hex
from dora_insights.domain.model import DEFAULT_ENVIRONMENT
from dora_insights.domain.records import ApiKeyRecord, SpaceRecord
from dora_insights.domain.scopes import ALL_SCOPES, Scope
from dora_insights.domain.times import format_instant
from dora_insights.errors import RequestInvalidError, ResourceConflictError, ResourceNotFoundError, ScopeMissingError

KEY_PREFIX = "dora_"


def create_space(store: Store, name: str, now: datetime, *, default_environment: str | None = None) -> SpaceRecord:
    """A new space ``Spaces-N`` (N allocated atomically)."""
    while True:
        number = store.next_space_number()
        record = SpaceRecord(
            id=f"{SPACE_PREFIX}{number}", name=name, default_environment=default_environment or DEFAULT_ENVIRONMENT
        )
        if store.create_space(record, format_instant(now)):
            return record
        # The id was taken by a space created with an explicit id (local seed): take the next.


def ensure_space(store: Store, space_id: str, name: str, now: datetime) -> SpaceRecord:
    """The space with this exact id, created if absent (local seeding and bootstrap)."""
    existing = store.get_space(space_id)
    if existing is not None:
        return existing
    record = SpaceRecord(id=space_id, name=name, default_environment=DEFAULT_ENVIRONMENT)
    store.create_space(record, format_instant(now))
    return store.get_space(space_id) or record


def require_space(store: Store, space_id: str) -> SpaceRecord:
    """The space, or 404."""
    space = store.get_space(space_id)
    if space is None:
        raise ResourceNotFoundError(f"space '{space_id}' not found")
    return space


def validate_scopes(scopes: list[str], *, creator_is_admin: bool) -> tuple[str, ...]:
    """Known scopes only, without repeats; only an admin key may grant ``admin``."""
    unknown = sorted(set(scopes) - ALL_SCOPES)
    if unknown:
        raise RequestInvalidError(
            f"unknown scope(s): {', '.join(unknown)}; known: {', '.join(sorted(ALL_SCOPES))}", field="scopes"
        )
    if Scope.ADMIN.value in scopes and not creator_is_admin:
        raise ScopeMissingError("only an admin key can create an admin key")
    return tuple(dict.fromkeys(scopes))


def create_api_key(
    store: Store,
    space_id: str,
    name: str,
    scopes: tuple[str, ...],
    now: datetime,
    *,
    user: str | None = None,
    key: str | None = None,
) -> tuple[ApiKeyRecord, str]:
    """A new key of the space and the key itself (shown once; only its hash is stored)."""
    require_space(store, space_id)
    secret = key or new_secret(KEY_PREFIX)
    number = store.next_numbers(space_id, {"ApiKeys": 1})["ApiKeys"][0]
    record = ApiKeyRecord(
        id=f"{API_KEY_PREFIX}{number}",
        space_id=space_id,
        name=name,
        scopes=scopes,
        user=user,
        created_at=format_instant(now),
        key_hash=sha256_hex(secret),
    )
    if store.find_api_key(record.key_hash) is not None:
        raise ResourceConflictError("this key already exists")
    store.create_api_key(record)
    return record, secret


def ensure_api_key(store: Store, space_id: str, name: str, key: str, now: datetime) -> ApiKeyRecord:
    """An admin key with this exact value, created if absent (local seeding)."""
    existing = store.find_api_key(sha256_hex(key))
    if existing is not None:
        return existing
    record, _ = create_api_key(store, space_id, name, (Scope.ADMIN.value,), now, key=key)
    return record


def set_webhook_secret(store: Store, space_id: str, secret: str) -> None:
    """Set the space's GitHub webhook secret."""
    store.set_webhook_secret(space_id, secret)


GITLAB_TOKEN_PREFIX = "glwh_"


def set_gitlab_token(store: Store, space_id: str, token: str | None = None) -> str:
    """Set the space's GitLab webhook token (the one given, else a new random one) and answer it:
    only its SHA-256 hash is stored, so the caller shows it once. A new token replaces the old at once."""
    chosen = token or new_secret(GITLAB_TOKEN_PREFIX)
    store.set_gitlab_token_hash(space_id, sha256_hex(chosen))
    return chosen
