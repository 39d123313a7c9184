"""The date filters of the insight list (``created_date_from``/``_to``, ``date_from``/``_to``,
``last_viewed_date_from``/``_to``), read as PostHog's list reads them (``relative_date_parse``): each
is an instant, compared as one with the stored times. Pure.

Accepted, in ASCII only (anything else is a 400 naming the parameter):

- an ISO-8601 time, with an offset (``2024-03-06T12:30:00+01:00``, ``...Z``) or without one (UTC);
- a date, ``2024-03-06`` (also ``2024-3-6``, as PostHog): its start, 00:00 UTC;
- a relative time, PostHog's ``-<n><unit>`` (the ``-`` and ``n`` optional, ``n`` 1 when absent):
  ``now`` minus ``n`` hours ``h``, days ``d``, weeks ``w``, months ``m``, quarters ``q`` (13 weeks),
  years ``y``, minutes ``M`` or seconds ``s``; months and years are calendar ones (the day kept, or the
  month's last when it has fewer). ``Start`` or ``End`` after ``h``, ``d``, ``m`` or ``y`` moves the
  result to the start or the end of that hour, day, month or year (``-1dStart``: yesterday 00:00).

PostHog reads a time without offset, a date and the relative forms in the project's time zone; a
space has none, so they are UTC here. The instant must lie in the service's accepted range
(``domain.times``).
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

from dora_insights.domain.times import InstantError, check_instant
from dora_insights.errors import RequestInvalidError

_RELATIVE = re.compile(r"-?(?P<number>[0-9]{1,6})?(?P<unit>[hdwmqyMs])(?P<position>Start|End)?")
_UNPADDED_DATE = re.compile(r"(?P<year>[0-9]{4})-(?P<month>[0-9]{1,2})-(?P<day>[0-9]{1,2})")
_FIXED = {
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    "q": timedelta(weeks=13),
    "M": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
_MONTHS = {"m": 1, "y": 12}
_POSITIONED = frozenset({"h", "d", "m", "y"})


class DateFilterError(ValueError):
    """A value that is no date filter; the message says what is accepted."""


def parse_date_filter(text: str, field: str, now: datetime) -> datetime:
    """The instant a list date filter names (module docstring), aware, in UTC; a 400 naming ``field``
    for anything else."""
    try:
        return check_instant(instant(text, now))
    except (DateFilterError, InstantError) as error:
        raise RequestInvalidError(f"{field}: {error}", field=field, code="invalid_input") from None


def instant(text: str, now: datetime) -> datetime:
    """``parse_date_filter`` without the range check and the 400: a ``DateFilterError``."""
    value = text.strip()
    if not value or not value.isascii():
        raise DateFilterError(f"'{text[:64]}' is not an ISO-8601 time, a date or a relative date such as -7d")
    relative = _RELATIVE.fullmatch(value)
    if relative is not None:
        return _relative(now, relative)
    return _absolute(value, text)


def _absolute(value: str, original: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        unpadded = _UNPADDED_DATE.fullmatch(value)
        try:
            if unpadded is None:
                raise ValueError(value)
            parsed = datetime(int(unpadded["year"]), int(unpadded["month"]), int(unpadded["day"]), tzinfo=UTC)
        except ValueError:
            raise DateFilterError(
                f"'{original[:64]}' is not an ISO-8601 time, a date or a relative date such as -7d"
            ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        raise InstantError(f"'{original[:64]}' is outside the accepted range") from None


def _relative(now: datetime, match: re.Match[str]) -> datetime:
    count = int(match["number"] or 1)
    unit = match["unit"]
    position = match["position"]
    if position and unit not in _POSITIONED:
        raise DateFilterError(f"'{match[0]}': Start and End go with h, d, m or y only")
    at = now.astimezone(UTC)
    try:
        if unit in _MONTHS:
            at = _months_back(at, count * _MONTHS[unit])
        else:
            at -= count * _FIXED[unit]
    except (OverflowError, ValueError):
        raise InstantError(f"'{match[0]}' is outside the accepted range") from None
    return at if position is None else _at_edge(at, unit, start=position == "Start")


def _months_back(at: datetime, months: int) -> datetime:
    """``at`` ``months`` calendar months earlier, its day kept (or the month's last when it is shorter)."""
    index = at.year * 12 + at.month - 1 - months
    year, month = divmod(index, 12)
    if year < 1:
        raise ValueError("before year 1")
    day = min(at.day, calendar.monthrange(year, month + 1)[1])
    return at.replace(year=year, month=month + 1, day=day)


def _at_edge(at: datetime, unit: str, *, start: bool) -> datetime:
    """The start (or the last microsecond) of the hour, day, month or year holding ``at``."""
    if unit == "h":
        first = at.replace(minute=0, second=0, microsecond=0)
        following = first + timedelta(hours=1)
    elif unit == "d":
        first = at.replace(hour=0, minute=0, second=0, microsecond=0)
        following = first + timedelta(days=1)
    elif unit == "m":
        first = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        following = first + timedelta(days=calendar.monthrange(at.year, at.month)[1])
    else:
        first = at.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        following = first.replace(year=first.year + 1) if first.year < 9999 else first
    return first if start else following - timedelta(microseconds=1)
