"""``logic.admin``'s GitHub webhook secret with a fake secret box: what is stored, and which secret a delivery
is checked with (the real KMS box: tests/integration/test_github_secret_encryption.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dora_insights.domain.records import SpaceRecord
from dora_insights.logic import admin

SECRET = "It's a Secret to Everybody"


class FakeBox:
    """A ``SecretBox`` whose ciphertext opens only under the context it was sealed with."""

    def __init__(self) -> None:
        self.opened: list[str] = []

    def seal(self, plaintext: str, context: Mapping[str, str]) -> str:
        return json.dumps({"context": dict(context), "plaintext": plaintext[::-1]})

    def open(self, ciphertext: str, context: Mapping[str, str]) -> str | None:
        self.opened.append(ciphertext)
        sealed = json.loads(ciphertext)
        return str(sealed["plaintext"])[::-1] if sealed["context"] == dict(context) else None


class FakeStore:
    def __init__(self) -> None:
        self.written: dict[str, str] = {}

    def set_webhook_secret_encrypted(self, space_id: str, ciphertext: str) -> None:
        self.written[space_id] = ciphertext


def test_the_secret_is_stored_sealed_under_its_spaces_github_webhook_context() -> None:
    store: Any = FakeStore()

    admin.set_webhook_secret(store, FakeBox(), "Spaces-3", SECRET)

    sealed = json.loads(store.written["Spaces-3"])
    assert sealed["context"] == {"space": "Spaces-3", "purpose": "github-webhook"}
    assert SECRET not in store.written["Spaces-3"]


def test_a_sealed_secret_is_opened_under_the_spaces_own_context() -> None:
    box = FakeBox()
    space = SpaceRecord(
        "Spaces-3",
        "s",
        "production",
        webhook_secret_encrypted=box.seal(SECRET, admin.webhook_secret_context("Spaces-3")),
    )

    assert admin.webhook_secret(box, space) == SECRET


def test_a_ciphertext_sealed_for_another_space_opens_to_nothing() -> None:
    box = FakeBox()
    moved = box.seal(SECRET, admin.webhook_secret_context("Spaces-1"))

    assert admin.webhook_secret(box, SpaceRecord("Spaces-3", "s", "production", webhook_secret_encrypted=moved)) is None


def test_a_legacy_plaintext_secret_is_used_as_stored_without_the_box() -> None:
    box = FakeBox()

    assert admin.webhook_secret(box, SpaceRecord("Spaces-3", "s", "production", webhook_secret=SECRET)) == SECRET
    assert admin.webhook_secret(box, SpaceRecord("Spaces-3", "s", "production")) is None
    assert box.opened == []


def test_the_ciphertext_wins_over_a_leftover_plaintext() -> None:
    box = FakeBox()
    sealed = box.seal("new secret", admin.webhook_secret_context("Spaces-3"))
    space = SpaceRecord("Spaces-3", "s", "production", webhook_secret=SECRET, webhook_secret_encrypted=sealed)

    assert admin.webhook_secret(box, space) == "new secret"
