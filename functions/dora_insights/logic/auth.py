"""Authentication and tenancy: who is calling, in which space, with which scopes."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import NamedTuple, Protocol

from dora_insights.domain.ids import sha256_hex
from dora_insights.domain.records import ApiKeyRecord
from dora_insights.domain.scopes import Scope, grants
from dora_insights.errors import (
    AuthenticationInvalidError,
    AuthenticationMissingError,
    ResourceNotFoundError,
    ScopeMissingError,
)


class KeyFinder(Protocol):
    """The port auth needs: resolve a key hash."""

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None: ...


class Principal(NamedTuple):
    """The caller: an API key of one space."""

    space_id: str
    key_id: str
    name: str
    user: str | None
    scopes: frozenset[str]

    @classmethod
    def of_key(cls, record: ApiKeyRecord) -> Principal:
        """The caller presenting the key of ``record``."""
        scopes = frozenset(record.scopes)
        return cls(space_id=record.space_id, key_id=record.id, name=record.name, user=record.user, scopes=scopes)

    @property
    def is_admin(self) -> bool:
        return Scope.ADMIN.value in self.scopes

    @property
    def display_name(self) -> str:
        """Who did it, for activity and views: the key's user, else its name."""
        return self.user or self.name


def _authorization(lowered: Mapping[str, str]) -> tuple[str, str]:
    """The ``Authorization`` header's scheme (lower case) and credentials, stripped; empty when absent."""
    scheme, _, credentials = lowered.get("authorization", "").strip().partition(" ")
    return scheme.lower(), credentials.strip()


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key from ``Authorization: Bearer``, ``X-Api-Key``, ``DD-API-KEY`` or HTTP Basic (password)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    scheme, credentials = _authorization(lowered)
    if scheme == "bearer" and credentials:
        return credentials
    if scheme == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except ValueError:  # not base64 (binascii.Error), not ASCII text at all, or not UTF-8 once decoded
            raise AuthenticationInvalidError("malformed Basic credentials") from None
        _, _, password = decoded.partition(":")
        return password or None
    for header in ("x-api-key", "dd-api-key"):
        value = lowered.get(header, "").strip()
        if value:
            return value
    return None


def authenticate(
    keys: KeyFinder,
    headers: Mapping[str, str],
    needed: Scope,
    *,
    space_id: str | None = None,
    any_space_for_admin: bool = False,
) -> Principal:
    """The caller, or 401 (no/invalid key), 404 (another space), 403 (missing scope), in that order.

    ``space_id`` is the space named in the path, if any. Admin routes pass
    ``any_space_for_admin`` so an admin key may administer any space.
    """
    presented = presented_key(headers)
    if presented is None:
        scheme, _ = _authorization({k.lower(): v for k, v in headers.items()})
        if scheme:  # say what is wrong with the header, never echo it (it may be a key)
            if scheme in ("bearer", "basic"):
                raise AuthenticationMissingError(
                    "an API key is required: the Authorization header's credentials are empty "
                    "(is the variable that holds the key set?)"
                )
            raise AuthenticationMissingError(
                "an API key is required: the Authorization header names no Bearer or Basic scheme "
                "(send Authorization: Bearer <key>)"
            )
        raise AuthenticationMissingError("an API key is required (Authorization: Bearer <key>)")
    record = keys.find_api_key(sha256_hex(presented))
    if record is None:
        raise AuthenticationInvalidError("the API key is not valid")
    principal = Principal.of_key(record)
    if space_id is not None and space_id != principal.space_id and not (any_space_for_admin and principal.is_admin):
        raise ResourceNotFoundError(f"space '{space_id}' not found")
    return require_scope(principal, needed)


def require_scope(principal: Principal, needed: Scope) -> Principal:
    """``principal`` when its key grants ``needed``; 403 otherwise."""
    if not grants(principal.scopes, needed):
        raise ScopeMissingError(f"this API key lacks the '{needed.value}' scope")
    return principal
