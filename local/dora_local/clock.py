"""Time travel for the local runtime: move the functions' clock and the SQS timers forward together.

What a deployment of the service would do in minutes (a retry message delayed 30 s, a message
invisible for the queue's 360 s visibility timeout after a failed delivery, an attribution the
recompute sweeps 5 minutes after ingest) a test or a demo wants now. :func:`advance` (served as
``POST /_local/clock/advance`` with ``{"seconds": N}``) moves time ``N`` seconds on for both sides:

- **the functions' clock**: every function reads the time through ``dora_insights.handlers.runtime.now``;
  the first advance replaces that clock (``runtime.use_clock``, as the tests' ``clock`` fixture does) with
  one that answers the real time plus the total offset;
- **SQS**: every message of moto's in-process SQS backend has its delay and its visibility deadline
  moved ``N`` seconds earlier, as if that much time had passed (moto's server runs in this process).

The offset only grows and is process-wide: use it with a runtime in its own process (``python -m
dora_local``), not beside tests that replace the clock themselves.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dora_local.template import ACCOUNT, REGION

__all__ = ["advance", "offset"]


@dataclass
class _Clock:
    offset: timedelta = timedelta(0)
    installed: bool = False  # the functions read :func:`_shifted` (from the first advance on)


_LOCK = threading.Lock()
_CLOCK = _Clock()


def offset() -> timedelta:
    """How far the functions' clock is ahead of the real one."""
    return _CLOCK.offset


def _shifted() -> datetime:
    """The functions' clock once time has moved: the real time plus the offset."""
    return datetime.now(UTC) + _CLOCK.offset


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
        if not _CLOCK.installed:
            from dora_insights.handlers import runtime

            runtime.use_clock(_shifted)  # for the life of the process: never restored
            _CLOCK.installed = True
    milliseconds = seconds * 1000
    moved = 0
    for message in _sqs_messages():
        message.delayed_until -= milliseconds
        message.visible_at -= milliseconds
        moved += 1
    return {"offset_seconds": _CLOCK.offset.total_seconds(), "messages": moved}
