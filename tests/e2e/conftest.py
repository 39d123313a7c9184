"""The local runtime, started once for the end-to-end tests, on a free port."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests

from dora_local.server import LocalRuntime


@pytest.fixture(scope="session")
def local() -> Iterator[LocalRuntime]:
    """``make serve``'s runtime in this process (schedule effectively off: tests call /_local/schedule/run)."""
    os.environ["DORA_LOCAL_QUIET"] = "1"
    runtime = LocalRuntime(port=0, schedule_seconds=3600).start()
    try:
        yield runtime
    finally:
        runtime.stop()


@pytest.fixture
def http(local: LocalRuntime) -> requests.Session:
    """A session that sends the seeded admin key."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {local.api_key}"
    return session
