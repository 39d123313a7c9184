"""Fixtures several suites share, loaded for every test as a plugin (``pytest_plugins`` in tests/conftest.py).

A module that needs a variant of one of them (another space with a scoped key, say) defines a fixture of
the same name, which overrides this one for that module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import NOW
from tests.support.receiver import Receiver, receiving

OTHER_SPACE = "Spaces-2"
OTHER_KEY = "other-space-admin-key"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local HTTP receiver for alert deliveries on a free port of 127.0.0.1, for the test."""
    with receiving() as state:
        yield state


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local runtime's setting: alert URLs on loopback over http are allowed."""
    from dora_insights.config import reset_settings

    monkeypatch.setenv("ALERT_ALLOW_LOOPBACK_HTTP", "true")
    reset_settings()


@pytest.fixture
def other_space(store: Any, space: str) -> str:
    """A second space, ``OTHER_SPACE``, with an admin key of its own (``OTHER_KEY``)."""
    from dora_insights.logic import admin

    admin.ensure_space(store, OTHER_SPACE, "Other", NOW)
    admin.ensure_api_key(store, OTHER_SPACE, "other admin", OTHER_KEY, NOW)
    return OTHER_SPACE
