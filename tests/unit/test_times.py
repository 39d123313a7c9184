"""Instants: every accepted format, and the fixed-width stored form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dora_insights.domain.times import (
    EARLIEST,
    LATEST,
    InstantError,
    format_instant,
    from_unix,
    parse_instant,
    parse_stored,
)

INSTANT = datetime(2023, 8, 31, 14, 26, 24, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        1693491984,
        1693491984000,
        1693491984000000,
        1693491984000000000,
        "1693491984",
        "1693491984.0",
        " 1693491984000.000 ",
        "2023-08-31T14:26:24Z",
        "2023-08-31T16:26:24+02:00",
        "2023-08-31T14:26:24.000z",
        1693491984.0,
    ],
)
def test_every_accepted_form_is_the_same_instant(value: object) -> None:
    assert parse_instant(value) == INSTANT


@pytest.mark.parametrize(
    "value",
    [
        True,
        -1,
        "",
        "yesterday",
        "2023-08-31T14:26:24",
        [],
        {},
        10**20,
        None,
        "1693491984.",
        ".5",
        "1e9",
        "-1.5",
        "1.5.2",
    ],
)
def test_rejected_values_say_why(value: object) -> None:
    with pytest.raises(InstantError):
        parse_instant(value)


@given(st.integers(min_value=0, max_value=4102444799), st.integers(min_value=0, max_value=999))
def test_a_decimal_unix_time_as_text_is_the_instant_of_the_same_number(seconds: int, millis: int) -> None:
    """A CSV cell (the DX backfill) or query parameter carries as text what a JSON body sends as a number."""
    text = f"{seconds}.{millis:03d}"
    assert parse_instant(text) == parse_instant(float(text))


def test_stored_form_is_fixed_width_utc_with_milliseconds() -> None:
    assert format_instant(datetime(2024, 3, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))) == (
        "2024-03-01T12:00:00.123Z"
    )
    with pytest.raises(InstantError):
        format_instant(datetime(2024, 3, 1))


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)))
def test_stored_strings_sort_like_instants_and_round_trip(moment: datetime) -> None:
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    text = format_instant(moment)
    assert len(text) == 24
    assert parse_stored(text) == moment
    later = format_instant(moment + timedelta(milliseconds=1))
    assert text < later


# --- the accepted range: [1970-01-01T00:00:00Z, 2100-01-01T00:00:00Z) ---------------------------
@pytest.mark.parametrize(
    "value",
    [
        "0099-06-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",  # astimezone(UTC) overflows below year 1
        "9999-12-31T23:59:59-05:00",  # ... and above year 9999
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "1969-12-31T23:59:59.999Z",
        "2100-01-01T00:00:00Z",
        "2099-12-31T20:00:00-04:00",  # 2100-01-01T00:00Z
        4102444800,
        "4102444800",
        4102444800000,
        float("nan"),
        float("inf"),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
    ],
)
def test_instants_outside_the_range_are_refused_never_an_overflow(value: object) -> None:
    with pytest.raises(InstantError):
        parse_instant(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1970-01-01T00:00:00Z", EARLIEST),
        (0, EARLIEST),
        ("2099-12-31T23:59:59.999Z", LATEST - timedelta(milliseconds=1)),
        ("2100-01-01T00:59:59+01:00", LATEST - timedelta(seconds=1)),
        (4102444799, LATEST - timedelta(seconds=1)),
    ],
)
def test_the_range_ends_are_inclusive_then_exclusive(value: object, expected: datetime) -> None:
    assert parse_instant(value) == expected


def test_a_time_without_offset_is_utc_only_when_asked() -> None:
    with pytest.raises(InstantError, match="no UTC offset"):
        parse_instant("2024-03-01T12:00:00")
    assert parse_instant("2024-03-01T12:00:00", assume_utc=True) == datetime(2024, 3, 1, 12, tzinfo=UTC)
    with pytest.raises(InstantError):
        parse_instant("0099-03-01T12:00:00", assume_utc=True)


def test_from_unix_refuses_instants_outside_the_range() -> None:
    assert from_unix(4102444799) == LATEST - timedelta(seconds=1)
    for value in (4102444800, 5_000_000_000_000, 99_999_999_999):
        with pytest.raises(InstantError, match="outside the accepted range"):
            from_unix(value)


def test_years_before_1000_are_stored_with_four_digits() -> None:
    assert format_instant(datetime(99, 6, 1, tzinfo=UTC)) == "0099-06-01T00:00:00.000Z"
    assert format_instant(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00.000Z"


def test_parse_stored_reads_years_written_without_padding() -> None:
    assert parse_stored("99-06-01T00:00:00.000Z") == datetime(99, 6, 1, tzinfo=UTC)
    assert parse_stored("2024-03-01T12:00:00+00:00") == datetime(2024, 3, 1, 12, tzinfo=UTC)
    with pytest.raises(InstantError):
        parse_stored("not a time")


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59), timezones=st.just(UTC)))
def test_every_year_formats_fixed_width_and_round_trips(moment: datetime) -> None:
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    text = format_instant(moment)
    assert len(text) == 24 and text[4] == "-" and text.endswith("Z")
    assert parse_stored(text) == moment


@given(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2099, 12, 31, 23, 59, 59, 999999)),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_any_instant_in_range_with_any_offset_round_trips_through_the_stored_form(
    naive: datetime, offset_minutes: int
) -> None:
    instant = naive.replace(tzinfo=UTC, microsecond=naive.microsecond // 1000 * 1000)
    shown = instant.astimezone(timezone(timedelta(minutes=offset_minutes))).isoformat()
    parsed = parse_instant(shown)
    assert parsed == instant
    text = format_instant(parsed)
    assert len(text) == 24 and parse_stored(text) == instant
    assert parse_instant(text) == instant
