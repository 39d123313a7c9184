"""Times as the service accepts them: ISO-8601 or unix seconds/milliseconds/microseconds/nanoseconds."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NUMBER = re.compile(r"^\d+(\.\d+)?$")
# The ISO-8601 forms CIs and `date` write, parsed alike on every Python (datetime.fromisoformat takes
# only what isoformat() writes before 3.11): a fraction of 1-9 digits, `Z`, `±HH:MM`, `±HHMM` or `±HH`.
_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$"
)
# Unix timestamps told apart by magnitude, as the service does (functions/dora_insights/domain/times.py).
_MAX_SECONDS = 1e11
_MAX_MILLIS = 1e14
_MAX_MICROS = 1e17


def parse_time(text: str) -> datetime:
    """An aware UTC datetime from ISO-8601 (``Z``, an offset, or none: UTC) or a unix timestamp;
    ``ValueError`` with a message that names the value otherwise."""
    value = text.strip()
    try:
        if _NUMBER.match(value):
            return _unix(float(value))
        parsed = _iso(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)
    except (ValueError, OverflowError):  # OverflowError: a time beyond the years 1-9999 in UTC
        raise ValueError(f"'{text}' is not an ISO-8601 time (2024-03-01T12:00:00Z) or a unix timestamp") from None


def _unix(number: float) -> datetime:
    """Seconds, milliseconds, microseconds or nanoseconds since 1970, told apart by magnitude."""
    if number < _MAX_SECONDS:
        micros = number * 1_000_000
    elif number < _MAX_MILLIS:
        micros = number * 1_000
    elif number < _MAX_MICROS:
        micros = number
    else:
        micros = number / 1_000
    return _EPOCH + timedelta(microseconds=round(micros))


def _iso(value: str) -> datetime:
    """``value`` as a datetime (naive when it names no offset); ``ValueError`` when it is not a time."""
    match = _ISO.match(value)
    if match is None:
        return datetime.fromisoformat(value)  # other forms this Python's fromisoformat takes (3.11: many more)
    year, month, day, hour, minute, second, fraction, zulu, sign, off_hours, off_minutes = match.groups()
    micros = int((fraction or "0").ljust(6, "0")[:6])  # 7-9 digits: truncated to microseconds, as 3.11 does
    zone = None
    if zulu:
        zone = timezone.utc
    elif sign:
        offset = timedelta(hours=int(off_hours), minutes=int(off_minutes or "0"))
        if int(off_minutes or "0") >= 60 or offset >= timedelta(hours=24):
            raise ValueError(f"{value}: not a UTC offset")
        zone = timezone(-offset if sign == "-" else offset)
    return datetime(
        int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micros, tzinfo=zone
    )


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
