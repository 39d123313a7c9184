"""Time travel for the local runtime: move the functions' clock and the SQS timers forward together.

What a deployment of the service would do in minutes (a retry message delayed 30 s, a message
invisible for the queue's 180 s visibility timeout after a failed delivery, an attribution the
recompute sweeps 5 minutes after ingest) a test or a demo wants now. :func:`advance` (served as
``POST /_local/clock/advance`` with ``{"seconds": N}``) moves time ``N`` seconds on for both sides:

- **the functions' clock**: every function reads the time through ``dora_insights.handlers.http.now``
  (the clock the tests replace too); from the first advance on, every loaded handler module's ``now``
  answers the real time plus the total offset (:func:`apply`, called by ``Runtime.invoke`` before each
  invocation, so modules imported later follow);
- **SQS**: every message of moto's in-process SQS backend has its delay and its visibility deadline
  moved ``N`` seconds earlier, as if that much time had passed (moto's server runs in this process).

The offset only grows and is process-wide: use it with a runtime in its own process (``python -m
dora_local``), not beside tests that replace the clock themselves.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dora_local.template import ACCOUNT, REGION

__all__ = ["advance", "apply", "offset"]


@dataclass
class _Clock:
    offset: timedelta = timedelta(0)
    original: Callable[[], datetime] | None = None  # ``dora_insights.handlers.http.now`` as it was


_LOCK = threading.Lock()
_CLOCK = _Clock()
_HANDLERS = "dora_insights.handlers"


def offset() -> timedelta:
    """How far the functions' clock is ahead of the real one."""
    return _CLOCK.offset


def _shifted() -> datetime:
    if _CLOCK.original is None:  # pragma: no cover - only installed once the original is known
        raise RuntimeError("the clock was not captured")
    return _CLOCK.original() + _CLOCK.offset


def apply() -> None:
    """Point every loaded handler module's ``now`` at the shifted clock (nothing before the first advance)."""
    if not _CLOCK.offset:
        return
    http = sys.modules.get(f"{_HANDLERS}.http")
    if http is None:
        return
    with _LOCK:
        if _CLOCK.original is None:
            _CLOCK.original = vars(http)["now"]
        for name, module in list(sys.modules.items()):
            handler_module = name == _HANDLERS or name.startswith(_HANDLERS + ".")
            if handler_module and vars(module).get("now") is _CLOCK.original:
                vars(module)["now"] = _shifted


def _sqs_messages() -> list[Any]:
    from moto.sqs.models import sqs_backends

    backend = sqs_backends[ACCOUNT][REGION]
    return [message for queue in list(backend.queues.values()) for message in list(queue._messages)]


def advance(seconds: float) -> dict[str, Any]:
    """Move the functions' clock and every SQS message's delay and visibility ``seconds`` on."""
    if seconds < 0:
        raise ValueError("time only moves forward")
    with _LOCK:
        _CLOCK.offset += timedelta(seconds=seconds)
    milliseconds = seconds * 1000
    moved = 0
    for message in _sqs_messages():
        message.delayed_until -= milliseconds
        message.visible_at -= milliseconds
        moved += 1
    apply()
    return {"offset_seconds": _CLOCK.offset.total_seconds(), "messages": moved}
