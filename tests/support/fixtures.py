"""Fixtures several suites share, loaded for every test as a plugin (``pytest_plugins`` in tests/conftest.py).

A module that needs a variant of one of them (another space with a scoped key, say) defines a fixture of
the same name, which overrides this one for that module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, NOW
from tests.support.receiver import Receiver, receiving

OTHER_SPACE = "Spaces-2"
OTHER_KEY = "other-space-admin-key"
GITHUB_SECRET = "It's a Secret to Everybody"  # the webhook secret of GitHub's own signature example
GITLAB_TOKEN = "local-gitlab-token-0123456789"


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


@pytest.fixture
def github_hooked(api: Any, store: Any) -> Any:
    """The ``space`` fixture's space with GitHub's webhook secret ``GITHUB_SECRET`` set (the admin route)."""
    from dora_insights.logic import spaces

    path = {"spaceId": "Spaces-1"}
    body = {"secret": GITHUB_SECRET}
    put = api.call("PUT", "/api/{spaceId}/webhooks/github", path_params=path, body=body, key=ADMIN_KEY)
    assert put.status == 200, put.body
    spaces.clear_cache()
    return api


@pytest.fixture
def gitlab_hooked(space: str, store: Any) -> None:
    """The ``space`` fixture's space with the GitLab webhook token ``GITLAB_TOKEN``."""
    from dora_insights.logic import admin, spaces

    admin.set_gitlab_token(store, "Spaces-1", GITLAB_TOKEN)
    spaces.clear_cache()
