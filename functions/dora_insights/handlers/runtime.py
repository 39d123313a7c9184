"""What every entry point of a function reads, HTTP, SQS and schedule alike: the clock, the table,
the event bus and the caller of the invocation in progress.

- :func:`now`: the clock. It is the only clock handlers read; tests and the local runtime move it with
  :func:`use_clock`, the one way to replace it (never by patching a handler module).
- :func:`store`: the table adapter (``Repositories``), created on first use and kept per table name
  for the life of the container; :func:`reset` forgets it (tests and the local runtime switch tables).
- :func:`event_bus`: the EventBridge adapter of ``EVENT_BUS_NAME``, or None when the function has no bus.
- :func:`secrets`: the KMS adapter of ``SECRETS_KEY_ARN``, for the functions that encrypt or decrypt a stored
  secret (only they have the key).
- :func:`principal`: the caller the HTTP entry point authenticated (``handlers.http.entry`` sets it with
  :func:`set_caller`); SQS and schedule entries have none. :func:`caller_space`: that caller's space.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from dora_insights.config import get_settings
from dora_insights.dal.events import EventBus
from dora_insights.dal.repositories import Repositories
from dora_insights.domain.records import SpaceRecord
from dora_insights.logic import spaces
from dora_insights.logic.auth import Principal

if TYPE_CHECKING:
    from dora_insights.dal.secrets import KmsSecretBox

Clock = Callable[[], datetime]

__all__ = [
    "Clock",
    "caller_space",
    "event_bus",
    "now",
    "principal",
    "reset",
    "secrets",
    "set_caller",
    "store",
    "system_clock",
    "use_clock",
]


# --- the clock ------------------------------------------------------------------------------------
def system_clock() -> datetime:
    """The real time, in UTC (the clock of a deployed function)."""
    return datetime.now(UTC)


class _Clock:
    """Holds the clock in use: process-wide, not per context (tests run handlers on worker threads, which
    start with a fresh context). Read and set on the class itself, never an instance."""

    current: Clock = system_clock


def now() -> datetime:
    """The time now, as the function's clock says (always aware, UTC)."""
    return _Clock.current()


def use_clock(clock: Clock) -> Callable[[], None]:
    """Read the time from ``clock`` from now on, in every entry point of this process; returns the function
    that puts back the clock in place before.

    ``restore = runtime.use_clock(lambda: fixed)`` … ``restore()``. The tests' ``clock`` fixture
    (tests/conftest.py) and the local runtime's time travel (``dora_local.clock``) use it.
    """
    previous = _Clock.current
    _Clock.current = clock

    def restore() -> None:
        _Clock.current = previous

    return restore


# --- the table, the bus and the secrets key -------------------------------------------------------
@lru_cache(maxsize=1)
def _repositories(table_name: str) -> Repositories:
    return Repositories(table_name)


def store() -> Repositories:
    """The table adapter of this function (created on first use, kept while the table name is the same)."""
    return _repositories(get_settings().table_name)


def event_bus() -> EventBus | None:
    """The EventBridge adapter of the function's bus (``EVENT_BUS_NAME``); None when it has none."""
    bus_name = get_settings().event_bus_name
    return EventBus(bus_name) if bus_name else None


def secrets() -> KmsSecretBox:
    """The KMS adapter of the function's secrets key (``SECRETS_KEY_ARN``; only the functions that encrypt or
    decrypt a stored secret have one, and only they import KMS's adapter)."""
    from dora_insights.dal.secrets import KmsSecretBox

    return KmsSecretBox(get_settings().secrets_key_arn)


def reset() -> None:
    """Forget the table adapter (and the clients it holds): the next :func:`store` makes a new one."""
    _repositories.cache_clear()


# --- the caller -----------------------------------------------------------------------------------
_CALLER: ContextVar[Principal | None] = ContextVar("caller", default=None)


def set_caller(caller: Principal | None) -> None:
    """Who the invocation in progress acts for (None until authenticated, and for public routes)."""
    _CALLER.set(caller)


def principal() -> Principal:
    """The caller the entry point authenticated for this invocation."""
    caller = _CALLER.get()
    if caller is None:  # pragma: no cover - every authenticated entry sets it
        raise RuntimeError("route called without an authenticated entry point")
    return caller


def caller_space() -> SpaceRecord:
    """The space of the caller the entry point authenticated (a write route's first read)."""
    return spaces.get_space(store(), principal().space_id)
