"""Octopus duration strings (METRICS §4): ``[-]H:MM:SS.f`` with total hours.

The Octopus samples (``"426:53:44.0"``, ``"-2:32:31.0"``, ``"1:12:39.41517"``, ``"0:01:00.0"``)
are .NET ``TimeSpan`` values written with total hours: the resolution is one tick (100 ns), so
there are at most 7 fraction digits; trailing zeros are dropped but at least one digit is kept
(``.0`` for whole seconds). Negative durations carry one leading ``-`` for the whole value.
"""

from __future__ import annotations

import re
from datetime import timedelta

TICKS_PER_SECOND = 10_000_000
_TICKS_PER_MICROSECOND = 10
_DURATION = re.compile(r"(-)?(\d+):([0-5]\d):([0-5]\d)\.(\d{1,7})")


class DurationFormatError(ValueError):
    """A string that is not an Octopus duration ``[-]H:MM:SS.f``."""


def to_ticks(value: timedelta | float) -> int:
    """A duration as whole ticks (100 ns), rounded half to even; seconds when a number."""
    if isinstance(value, timedelta):
        micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
        return micros * _TICKS_PER_MICROSECOND
    return round(value * TICKS_PER_SECOND)


def format_duration(value: timedelta | float) -> str:
    """``[-]H:MM:SS.f`` (total hours, 1–7 fraction digits) of a timedelta or a number of seconds."""
    ticks = to_ticks(value)
    sign = "-" if ticks < 0 else ""
    whole_seconds, fraction = divmod(abs(ticks), TICKS_PER_SECOND)
    minutes, seconds = divmod(whole_seconds, 60)
    hours, minutes = divmod(minutes, 60)
    digits = f"{fraction:07d}".rstrip("0") or "0"
    return f"{sign}{hours}:{minutes:02d}:{seconds:02d}.{digits}"


def parse_duration_ticks(text: str) -> int:
    """Ticks (100 ns) of an Octopus duration string; :class:`DurationFormatError` when malformed."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise DurationFormatError(f"'{text[:40]}' is not a duration of the form [-]H:MM:SS.f")
    sign, hours, minutes, seconds, fraction = match.groups()
    ticks = (int(hours) * 3600 + int(minutes) * 60 + int(seconds)) * TICKS_PER_SECOND + int(fraction.ljust(7, "0"))
    return -ticks if sign else ticks


def parse_duration_seconds(text: str) -> float:
    """Seconds (float) of an Octopus duration string."""
    return parse_duration_ticks(text) / TICKS_PER_SECOND


def parse_duration(text: str) -> timedelta:
    """A timedelta of an Octopus duration string (microsecond resolution: ticks are rounded half up)."""
    ticks = parse_duration_ticks(text)
    micros = (
        round(ticks / _TICKS_PER_MICROSECOND) if ticks % _TICKS_PER_MICROSECOND else ticks // _TICKS_PER_MICROSECOND
    )
    return timedelta(microseconds=micros)
