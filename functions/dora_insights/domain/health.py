"""What the recompute keeps about streams and spaces whose work failed (stored by dal/health.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StreamHealthRecord:
    """A stream whose last recompute attempts failed (one record per stream; none when healthy)."""

    stream: str
    failures: int
    first_failure_at: str
    last_failure_at: str
    dirty_at: str
    error_type: str
    error_message: str
    quarantined_at: str | None = None

    @property
    def quarantined(self) -> bool:
        return self.quarantined_at is not None


@dataclass(frozen=True)
class SpaceHealthRecord:
    """A space's last clean visit and last failed one (``stage``: where the visit failed)."""

    last_success_at: str | None = None
    last_failure_at: str | None = None
    stage: str | None = None
    error_type: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class FailureNote:
    """What is kept of an error: its type and a short, secret-free message."""

    error_type: str
    message: str
