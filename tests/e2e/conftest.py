"""The local runtime, started once per test session in this process, on free ports."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from dora_local.server import LocalRuntime

HERE = Path(__file__).resolve().parent
_STARTED: list[LocalRuntime] = []


@pytest.fixture(scope="session")
def local(request: pytest.FixtureRequest) -> Iterator[LocalRuntime]:
    """``make serve``'s runtime (timer schedule off: tests call ``POST /_local/schedule/run``)."""
    # moto's threaded server shares its state with in-process ``mock_aws``, and starting a mock resets
    # every backend. With the integration tests in the same worker (``pytest -n 2 tests``), start the
    # session's mock first (tests/conftest.py) so that it never wipes the runtime's table and queues.
    with contextlib.suppress(pytest.FixtureLookupError):
        request.getfixturevalue("_moto")
    runtime = LocalRuntime(port=0, schedule_seconds=0, quiet=True).start()
    _STARTED.append(runtime)
    try:
        yield runtime
    finally:
        _STARTED.remove(runtime)
        runtime.stop()


@pytest.fixture(autouse=True)
def _background_during_e2e_tests(local: LocalRuntime) -> None:
    """The poller runs while these tests run (see ``pytest_runtest_teardown`` for the rest of the time)."""
    local.resume_background()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Before a test of another suite runs in this process (they change ``os.environ`` and run handlers
    themselves), pause the runtime's poller: no function runs in the background then."""
    if nextitem is None or HERE not in Path(nextitem.path).resolve().parents:
        for runtime in _STARTED:
            runtime.pause_background()


@pytest.fixture
def http(local: LocalRuntime) -> Iterator[requests.Session]:
    """A session that sends the seeded admin key."""
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {local.api_key}"
        yield session
