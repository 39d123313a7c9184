"""Instants: parsing every time format the dialects accept, and the one stored form.

Stored form: UTC ISO-8601 with exactly millisecond precision and a ``Z`` suffix
(``2024-03-01T12:00:00.000Z``): fixed width, so strings sort in time order.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Unix timestamps are told apart by magnitude (Datadog accepts seconds, milliseconds and
# nanoseconds; we also accept microseconds). Seconds cover years 1970..5138.
_MAX_SECONDS = 100_000_000_000  # 1e11
_MAX_MILLIS = 100_000_000_000_000  # 1e14
_MAX_MICROS = 100_000_000_000_000_000  # 1e17
_MAX_NANOS = 10_000_000_000_000_000_000  # 1e19 (beyond int64 nanoseconds)


class InstantError(ValueError):
    """A value that is not an instant we accept; the message says why."""


def from_unix(value: int | float) -> datetime:
    """Unix time in seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude."""
    if isinstance(value, bool):
        raise InstantError("expected a unix timestamp or an ISO-8601 time, got a boolean")
    if value < 0:
        raise InstantError("unix timestamps before 1970 are not accepted")
    if value < _MAX_SECONDS:
        micros = round(value * 1_000_000)
    elif value < _MAX_MILLIS:
        micros = round(value * 1_000)
    elif value < _MAX_MICROS:
        micros = round(value)
    elif value < _MAX_NANOS:
        micros = int(value) // 1_000
    else:
        raise InstantError("unix timestamp too large (expected seconds, milliseconds or nanoseconds)")
    return _EPOCH + timedelta(microseconds=micros)


def parse_instant(value: object) -> datetime:
    """An aware UTC datetime from unix time (int/float or a string of digits) or ISO-8601 with offset."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InstantError("time has no UTC offset; add 'Z' or '+HH:MM'")
        return value.astimezone(UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return from_unix(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise InstantError("time is empty")
        if text.isdigit():
            return from_unix(int(text))
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise InstantError(f"'{value[:64]}' is not an ISO-8601 time or a unix timestamp") from None
        if parsed.tzinfo is None:
            raise InstantError(f"'{value[:64]}' has no UTC offset; add 'Z' or '+HH:MM'")
        return parsed.astimezone(UTC)
    raise InstantError("expected a unix timestamp or an ISO-8601 time string")


def format_instant(value: datetime) -> str:
    """The stored, fixed-width form: ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC."""
    if value.tzinfo is None:
        raise InstantError("naive datetimes are never stored")
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_stored(text: str) -> datetime:
    """Inverse of :func:`format_instant`."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
