"""Report time zones: IANA or Windows names (METRICS §4)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from dora_insights.domain.zones import UnknownTimeZoneError, resolve_time_zone, windows_name


@pytest.mark.parametrize(
    ("name", "iana"),
    [
        ("UTC", "Etc/UTC"),
        ("GMT Standard Time", "Europe/London"),
        ("AUS Eastern Standard Time", "Australia/Sydney"),
        ("Europe/London", "Europe/London"),
        ("America/New_York", "America/New_York"),
    ],
)
def test_windows_and_iana_names_resolve(name: str, iana: str) -> None:
    assert resolve_time_zone(name) == ZoneInfo(iana)


@pytest.mark.parametrize(
    "name",
    [
        "Mars Standard Time",
        "",
        "../etc/passwd",
        "Europe/Nowhere",
        "/etc/localtime",
        # Files of the host's zoneinfo directory that are not zone names (the host's clock, a
        # rules template, leap-second and POSIX variants): each resolved to some zone before.
        "localtime",
        "posixrules",
        "right/UTC",
        "posix/Europe/London",
        "zone1970.tab",
    ],
)
def test_unknown_names_raise_a_value_error(name: str) -> None:
    with pytest.raises(UnknownTimeZoneError, match="not a known Windows or IANA time zone"):
        resolve_time_zone(name)
    assert issubclass(UnknownTimeZoneError, ValueError)


def test_windows_name_of_an_iana_zone() -> None:
    assert windows_name("Europe/London") == "GMT Standard Time"
    assert windows_name("AUS Eastern Standard Time") == "AUS Eastern Standard Time"


def test_every_windows_name_maps_to_a_listed_zone() -> None:
    """Every Windows name CLDR maps resolves: the tzdata list holds each IANA name it maps to."""
    from tzlocal.windows_tz import win_tz

    for name in win_tz:
        resolve_time_zone(name)
