"""Times as the service accepts them: ISO-8601 or unix seconds/milliseconds/microseconds/nanoseconds."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NUMBER = re.compile(r"^\d+(\.\d+)?$")
# Unix timestamps told apart by magnitude, as the service does (functions/dora_insights/domain/times.py).
_MAX_SECONDS = 1e11
_MAX_MILLIS = 1e14
_MAX_MICROS = 1e17


def parse_time(text: str) -> datetime:
    """An aware UTC datetime from ISO-8601 (``Z``, an offset, or none: UTC) or a unix timestamp;
    ``ValueError`` with a message that names the value otherwise."""
    value = text.strip()
    if _NUMBER.match(value):
        number = float(value)
        if number < _MAX_SECONDS:
            micros = number * 1_000_000
        elif number < _MAX_MILLIS:
            micros = number * 1_000
        elif number < _MAX_MICROS:
            micros = number
        else:
            micros = number / 1_000
        return _EPOCH + timedelta(microseconds=round(micros))
    iso = value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value  # fromisoformat takes Z from 3.11 only
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(f"'{text}' is not an ISO-8601 time (2024-03-01T12:00:00Z) or a unix timestamp") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def format_time(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def duration_text(seconds: float | None) -> str:
    """``3d 4h``, ``2h 5m``, ``4m 10s``, ``12s``; ``-`` for no value (negative values keep their sign)."""
    if seconds is None:
        return "-"
    sign = "-" if seconds < 0 else ""
    total = round(abs(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {minutes}m"
    if minutes:
        return f"{sign}{minutes}m {secs}s"
    return f"{sign}{secs}s"
