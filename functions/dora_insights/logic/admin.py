"""Administration use cases: spaces, API keys, webhook secrets (API and admin command alike)."""

from __future__ import annotations

from datetime import datetime

from dora_insights.dal.store import API_KEY_PREFIX, SPACE_PREFIX, Store
from dora_insights.domain.figures import FIGURES_FORMAT
from dora_insights.domain.ids import new_secret, sha256_hex
from dora_insights.domain.model import DEFAULT_ENVIRONMENT
from dora_insights.domain.records import ApiKeyRecord, SpaceRecord
from dora_insights.domain.scopes import ALL_SCOPES, Scope
from dora_insights.domain.times import format_instant
from dora_insights.errors import RequestInvalidError, ResourceConflictError, ResourceNotFoundError, ScopeMissingError
from dora_insights.logic.ports import SecretBox
from dora_insights.observability import logger

KEY_PREFIX = "dora_"
GITHUB_WEBHOOK_PURPOSE = "github-webhook"  # the encryption context's purpose of a GitHub webhook secret


def create_space(store: Store, name: str, now: datetime, *, default_environment: str | None = None) -> SpaceRecord:
    """A new space ``Spaces-N`` (N allocated atomically)."""
    while True:
        number = store.next_space_number()
        record = SpaceRecord(
            id=f"{SPACE_PREFIX}{number}",
            name=name,
            default_environment=default_environment or DEFAULT_ENVIRONMENT,
            figures_format=FIGURES_FORMAT,  # no figures yet: none to compute again
        )
        if store.create_space(record, format_instant(now)):
            return record
        # The id was taken by a space created with an explicit id (local seed): take the next.


def ensure_space(store: Store, space_id: str, name: str, now: datetime) -> SpaceRecord:
    """The space with this exact id, created if absent (local seeding and bootstrap)."""
    existing = store.get_space(space_id)
    if existing is not None:
        return existing
    record = SpaceRecord(id=space_id, name=name, default_environment=DEFAULT_ENVIRONMENT, figures_format=FIGURES_FORMAT)
    store.create_space(record, format_instant(now))
    return store.get_space(space_id) or record


def require_space(store: Store, space_id: str) -> SpaceRecord:
    """The space, or 404 (read consistently: a space created a moment ago is there)."""
    space = store.get_space(space_id, consistent=True)
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


def webhook_secret_context(space_id: str) -> dict[str, str]:
    """The KMS encryption context a space's GitHub webhook secret is encrypted under: its space and purpose, so
    a ciphertext copied into another space's item (or used as another secret) does not decrypt there."""
    return {"space": space_id, "purpose": GITHUB_WEBHOOK_PURPOSE}


def set_webhook_secret(store: Store, secrets: SecretBox, space_id: str, secret: str) -> None:
    """Set the space's GitHub webhook secret: stored encrypted (``secrets.seal``), never as given; the
    plaintext a space written before encryption holds is removed by the same write. A new secret replaces
    the old at once (the receiver reads the space as stored now)."""
    store.set_webhook_secret_encrypted(space_id, secrets.seal(secret, webhook_secret_context(space_id)))


def webhook_secret(secrets: SecretBox, space: SpaceRecord) -> str | None:
    """The secret a GitHub delivery's signature is checked with: the space's, decrypted (a legacy one as
    stored); None when the space has none, or when its ciphertext does not decrypt under the space's own
    context (copied from another item: no delivery verifies, so it answers GitHub's 401).

    KMS refusing the key itself (disabled, no ``kms:Decrypt``) is a ``ServiceUnavailableError`` (503)."""
    if space.webhook_secret_encrypted is None:
        return space.webhook_secret
    opened = secrets.open(space.webhook_secret_encrypted, webhook_secret_context(space.id))
    if opened is None:
        logger.error(
            "the stored GitHub webhook secret does not decrypt for this space: set it again",
            extra={"space_id": space.id},
        )
    return opened


GITLAB_TOKEN_PREFIX = "glwh_"


def set_gitlab_token(store: Store, space_id: str, token: str | None = None) -> str:
    """Set the space's GitLab webhook token (the one given, else a new random one) and answer it:
    only its SHA-256 hash is stored, so the caller shows it once. A new token replaces the old at once."""
    chosen = token or new_secret(GITLAB_TOKEN_PREFIX)
    store.set_gitlab_token_hash(space_id, sha256_hex(chosen))
    return chosen
