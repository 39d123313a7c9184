"""Report time zones: IANA names, or Windows names through tzlocal's maintained mapping (METRICS §4)."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tzlocal.windows_tz import win_tz


class UnknownTimeZoneError(ValueError):
    """A name that is neither an IANA nor a Windows time zone."""


@lru_cache(maxsize=256)
def resolve_time_zone(name: str) -> ZoneInfo:
    """The zone a report's ``TimeZone`` names: IANA (``Europe/London``) or Windows (``GMT Standard Time``)."""
    iana = win_tz.get(name, name)
    if not iana or "\x00" in iana or iana.startswith(("/", ".")) or ".." in iana:
        raise UnknownTimeZoneError(f"'{name[:100]}' is not a known Windows or IANA time zone")
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UnknownTimeZoneError(f"'{name[:100]}' is not a known Windows or IANA time zone") from None
