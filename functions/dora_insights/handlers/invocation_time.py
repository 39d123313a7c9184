"""The time a queue function's invocation has left, and whether a record may still be started.

When Lambda stops an invocation at its ``Timeout`` it returns no ``batchItemFailures``: every message
of the batch comes back after the queue's visibility timeout with its receive count raised, the
records already done included, and after ``maxReceiveCount`` receives they all go to the dead-letter
queue. So a queue function starts a record only while at least a *floor* of time is left: enough for
the steps of one record that do not check the time themselves. The floor is the function's own
(``floor_ms``), or ``floor_share`` of the time the invocation had when its batch began if that is
less (a function given a shorter ``Timeout``, or a test's context, would otherwise start nothing).
"""

from __future__ import annotations

from typing import Any


class InvocationTime:
    """The Lambda context's clock for one batch (no clock, as in a plain call: always time enough)."""

    def __init__(self, context: Any, *, floor_ms: int, floor_share: float) -> None:
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        self._remaining = remaining if callable(remaining) else None
        at_start = self.remaining_ms()
        self.floor_ms = floor_ms if at_start is None else min(floor_ms, int(at_start * floor_share))

    def remaining_ms(self) -> int | None:
        """Milliseconds left before Lambda stops the invocation; None without a clock."""
        return None if self._remaining is None else int(self._remaining())

    def before_floor_ms(self) -> int | None:
        """Milliseconds left before the floor (the time a record's own budget may use), at least 0; None
        without a clock."""
        remaining = self.remaining_ms()
        return None if remaining is None else max(0, remaining - self.floor_ms)

    def may_start(self) -> bool:
        """Whether a record may still be started: at least the floor is left (always, without a clock)."""
        remaining = self.remaining_ms()
        return remaining is None or remaining >= self.floor_ms
