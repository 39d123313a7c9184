"""Fixtures of the use-case tests over in-memory ports (``fakes.py``): no AWS, no moto."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from dora_insights.logic import alerts, catalogue, spaces
from dora_insights.logic.freshness import SETTLE
from tests.unit.logic.fakes import FakePorts

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
# When a test's changes were written for a recompute at NOW to vouch for them (an index read counts a
# write for sure only SETTLE after it: a run at the very instant keeps the marks, test_eventual_consistency).
WRITTEN = NOW - SETTLE


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    """The catalogue and space caches live in the module (warm functions keep them): forget them."""
    catalogue.clear_cache()
    spaces.clear_cache()
    yield
    catalogue.clear_cache()
    spaces.clear_cache()


@pytest.fixture
def ports() -> FakePorts:
    """Ports with space ``Spaces-1`` (default environment ``production``) and a retry queue."""
    fake = FakePorts()
    fake.add_space()
    return fake


@pytest.fixture
def no_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recompute's last stage (insight thresholds) checks nothing: insights have their own port."""

    def evaluate(*_: Any, **__: Any) -> alerts.AlertCounts:
        return alerts.AlertCounts()

    monkeypatch.setattr(alerts, "evaluate", evaluate)
