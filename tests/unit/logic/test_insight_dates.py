"""The insight list's date filters (``logic.insight_dates``): ISO times, dates and PostHog's relative
forms as instants; anything else a 400 naming the parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dora_insights.errors import RequestInvalidError
from dora_insights.logic.insight_dates import parse_date_filter

NOW = datetime(2024, 3, 31, 12, 34, 56, 789000, tzinfo=UTC)


def parsed(text: str) -> datetime:
    return parse_date_filter(text, "date_from", NOW)


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2024-03-06T12:30:00+01:00", datetime(2024, 3, 6, 11, 30, tzinfo=UTC)),
        ("2024-03-06T12:30:00Z", datetime(2024, 3, 6, 12, 30, tzinfo=UTC)),
        ("2024-03-06t12:30:00z", datetime(2024, 3, 6, 12, 30, tzinfo=UTC)),
        ("2024-03-06T12:30:00.123-05:00", datetime(2024, 3, 6, 17, 30, 0, 123000, tzinfo=UTC)),
        ("2024-03-06T12:30", datetime(2024, 3, 6, 12, 30, tzinfo=UTC)),  # no offset: UTC
        ("2024-03-06", datetime(2024, 3, 6, tzinfo=UTC)),  # a date: its start
        ("2024-3-6", datetime(2024, 3, 6, tzinfo=UTC)),  # unpadded, as PostHog reads it
        (" 2024-03-06 ", datetime(2024, 3, 6, tzinfo=UTC)),
    ],
)
def test_times_and_dates(text: str, instant: datetime) -> None:
    assert parsed(text) == instant


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("-7d", NOW - timedelta(days=7)),
        ("7d", NOW - timedelta(days=7)),
        ("d", NOW - timedelta(days=1)),
        ("-0d", NOW),
        ("-24h", NOW - timedelta(hours=24)),
        ("-2w", NOW - timedelta(weeks=2)),
        ("-1q", NOW - timedelta(weeks=13)),
        ("-30M", NOW - timedelta(minutes=30)),
        ("-45s", NOW - timedelta(seconds=45)),
        ("-1m", datetime(2024, 2, 29, 12, 34, 56, 789000, tzinfo=UTC)),  # March 31st: February's last day
        ("-13m", datetime(2023, 2, 28, 12, 34, 56, 789000, tzinfo=UTC)),
        ("-1y", datetime(2023, 3, 31, 12, 34, 56, 789000, tzinfo=UTC)),
        ("-1dStart", datetime(2024, 3, 30, tzinfo=UTC)),
        ("-1dEnd", datetime(2024, 3, 30, 23, 59, 59, 999999, tzinfo=UTC)),
        ("-1hStart", datetime(2024, 3, 31, 11, tzinfo=UTC)),
        ("hEnd", datetime(2024, 3, 31, 11, 59, 59, 999999, tzinfo=UTC)),
        ("-1mStart", datetime(2024, 2, 1, tzinfo=UTC)),
        ("-1mEnd", datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)),
        ("-0mEnd", datetime(2024, 3, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("-1yStart", datetime(2023, 1, 1, tzinfo=UTC)),
        ("-1yEnd", datetime(2023, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ],
)
def test_posthogs_relative_forms_count_back_from_now(text: str, instant: datetime) -> None:
    assert parsed(text) == instant


def test_now_in_another_zone_is_the_same_instant() -> None:
    from zoneinfo import ZoneInfo

    there = NOW.astimezone(ZoneInfo("Pacific/Auckland"))
    assert parse_date_filter("-1dStart", "date_to", there) == datetime(2024, 3, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "yesterday",
        "all",
        "-7x",
        "-7D",  # PostHog reads no unit in capitals but M (minutes)
        "--7d",
        "-7d ago",
        "-1234567d",  # more digits than any range the service accepts
        "-7wStart",  # Start/End: with h, d, m and y only
        "-7dMiddle",
        "-٧d",  # digits other than ASCII
        "２０２４-03-06",
        "2024-13-01",
        "2024-02-30",
        "2024-03-06T25:00:00Z",
        "1969-12-31T23:59:59Z",  # outside the accepted range
        "2100-01-01",
        "-100y",
        "0001-01-01T00:00:00+01:00",
        "12345",
    ],
)
def test_anything_else_is_a_400_naming_the_parameter(text: str) -> None:
    with pytest.raises(RequestInvalidError) as refused:
        parse_date_filter(text, "created_date_to", NOW)

    assert refused.value.status == 400
    assert refused.value.field == "created_date_to"
    assert refused.value.message.startswith("created_date_to: ")
