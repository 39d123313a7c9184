"""Instants: parsing every time format the dialects accept, and the one stored form.

Stored form: UTC ISO-8601 with exactly millisecond precision and a ``Z`` suffix
(``2024-03-01T12:00:00.000Z``): fixed width, so strings sort in time order.

Accepted range: every instant that enters the service, at every door (bodies, CSV cells,
webhooks, query parameters), lies in ``[1970-01-01T00:00:00Z, 2100-01-01T00:00:00Z)``;
:func:`parse_instant`, :func:`from_unix` and :func:`check_instant` are the one place that
checks it, so a time in the year 99 or 9999 is a client's 400, never a stored value that a
later read (or the scheduled recompute) trips over.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EARLIEST = _EPOCH
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive
RANGE_TEXT = "1970-01-01T00:00:00Z (inclusive) to 2100-01-01T00:00:00Z (exclusive)"

# Unix timestamps are told apart by magnitude (Datadog accepts seconds, milliseconds and
# nanoseconds; we also accept microseconds). Seconds cover years 1970..5138.
_MAX_SECONDS = 100_000_000_000  # 1e11
_MAX_MILLIS = 100_000_000_000_000  # 1e14
_MAX_MICROS = 100_000_000_000_000_000  # 1e17
_MAX_NANOS = 10_000_000_000_000_000_000  # 1e19 (beyond int64 nanoseconds)

# A stored time whose year is not four digits (written before years were zero-padded).
_SHORT_YEAR = re.compile(r"^(\d{1,3})-")
_DECIMAL_UNIX = re.compile(r"[0-9]+\.[0-9]+", re.ASCII)  # fullmatch: "1709283600.5", as a JSON number reads


class InstantError(ValueError):
    """A value that is not an instant we accept; the message says why."""


class InstantOutOfRangeError(InstantError):
    """An instant, well formed, outside the accepted range."""


def check_instant(value: datetime) -> datetime:
    """``value`` (aware) if it lies in the accepted range, else :class:`InstantError`."""
    if not EARLIEST <= value < LATEST:
        raise InstantOutOfRangeError(f"{_describe(value)} is outside the accepted range {RANGE_TEXT}")
    return value


def _describe(value: datetime) -> str:
    try:
        return format_instant(value)
    except (InstantError, OverflowError):  # pragma: no cover - aware datetimes always format
        return value.isoformat()


def from_unix(value: int | float) -> datetime:
    """Unix time in seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude."""
    if isinstance(value, bool):
        raise InstantError("expected a unix timestamp or an ISO-8601 time, got a boolean")
    if isinstance(value, float) and math.isnan(value):
        raise InstantError("expected a unix timestamp, got NaN")
    if value < 0:
        raise InstantOutOfRangeError(
            f"unix timestamps before 1970 are not accepted (the accepted range is {RANGE_TEXT})"
        )
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
    return check_instant(_EPOCH + timedelta(microseconds=micros))


def parse_instant(value: object, *, assume_utc: bool = False) -> datetime:
    """An aware UTC datetime in the accepted range, from unix time (int/float, or a string of digits with
    or without a fraction: a CSV cell or a query parameter carries the same number as text) or ISO-8601
    with an offset (``assume_utc``: a time without offset is UTC, as Orlo reads it)."""
    if isinstance(value, datetime):
        return _to_utc(value, str(value), assume_utc=assume_utc)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return from_unix(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise InstantError("time is empty")
        if text.isascii() and text.isdigit():  # int() refuses the other digits str.isdigit takes ("²")
            return from_unix(int(text))
        if _DECIMAL_UNIX.fullmatch(text):
            return from_unix(float(text))
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise InstantError(f"'{value[:64]}' is not an ISO-8601 time or a unix timestamp") from None
        return _to_utc(parsed, value, assume_utc=assume_utc)
    raise InstantError("expected a unix timestamp or an ISO-8601 time string")


def _to_utc(value: datetime, original: str, *, assume_utc: bool) -> datetime:
    if value.tzinfo is None:
        if not assume_utc:
            raise InstantError(f"'{original[:64]}' has no UTC offset; add 'Z' or '+HH:MM'")
        value = value.replace(tzinfo=UTC)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        raise InstantOutOfRangeError(f"'{original[:64]}' is outside the accepted range {RANGE_TEXT}") from None
    return check_instant(utc)


def format_instant(value: datetime) -> str:
    """The stored, fixed-width form: ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC (four-digit years, always)."""
    if value.tzinfo is None:
        raise InstantError("naive datetimes are never stored")
    utc = value.astimezone(UTC)
    # isoformat zero-pads the year (strftime's %Y does not on Linux for years < 1000).
    return utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_stored(text: str) -> datetime:
    """Inverse of :func:`format_instant` (also reads ``+00:00`` and years written without padding)."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        short = _SHORT_YEAR.match(text)
        if short is None:
            raise InstantError(f"'{text[:64]}' is not a stored time") from None
        try:
            parsed = datetime.fromisoformat(f"{int(short.group(1)):04d}-{text[short.end() :]}".replace("Z", "+00:00"))
        except ValueError:
            raise InstantError(f"'{text[:64]}' is not a stored time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def wall_stamp() -> str:
    """The wall-clock instant to the microsecond (``2026-12-04T23:59:59.123456Z``), for ordering
    recomputes (a stream's ``written_at``, a report's ``read_at``): never the service clock, which
    tests and the local runtime stop or move. Stamps compare as strings."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def month_runs(months: Iterable[str]) -> list[tuple[str, str]]:
    """Distinct ``YYYY-MM`` months as runs of consecutive months, each (first, last), in order."""
    runs: list[tuple[str, str]] = []
    previous = -2
    for month in sorted(set(months)):
        index = int(month[:4]) * 12 + int(month[5:7])
        if runs and index == previous + 1:
            runs[-1] = (runs[-1][0], month)
        else:
            runs.append((month, month))
        previous = index
    return runs
