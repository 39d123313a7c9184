"""Instants: every accepted format, and the fixed-width stored form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dora_insights.domain.times import InstantError, format_instant, parse_instant, parse_stored

INSTANT = datetime(2023, 8, 31, 14, 26, 24, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        1693491984,
        1693491984000,
        1693491984000000,
        1693491984000000000,
        "1693491984",
        "2023-08-31T14:26:24Z",
        "2023-08-31T16:26:24+02:00",
        "2023-08-31T14:26:24.000z",
        1693491984.0,
    ],
)
def test_every_accepted_form_is_the_same_instant(value: object) -> None:
    assert parse_instant(value) == INSTANT


@pytest.mark.parametrize("value", [True, -1, "", "yesterday", "2023-08-31T14:26:24", [], {}, 10**20, None])
def test_rejected_values_say_why(value: object) -> None:
    with pytest.raises(InstantError):
        parse_instant(value)


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
