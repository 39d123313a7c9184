"""Times as flags give them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dora_insights_cli.times import duration_text, format_time, parse_time

NOON = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-01T12:00:00Z",
        "2024-03-01T12:00:00z",
        "2024-03-01T13:00:00+01:00",
        "2024-03-01T12:00:00",  # no offset: UTC
        "2024-03-01 12:00:00+00:00",  # Azure's System.PipelineStartTime
        "1709294400",  # unix seconds (datadog-ci's `date +%s`)
        "1709294400000",  # milliseconds
        "1709294400000000000",  # nanoseconds
    ],
)
def test_parse_time_reads_iso_and_unix(text: str) -> None:
    assert parse_time(text) == NOON


def test_parse_time_names_a_bad_value() -> None:
    with pytest.raises(ValueError, match="'yesterday'"):
        parse_time("yesterday")


def test_format_time_is_utc_with_milliseconds() -> None:
    assert format_time(NOON) == "2024-03-01T12:00:00.000Z"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (12, "12s"), (250, "4m 10s"), (7500, "2h 5m"), (273600, "3d 4h"), (-90, "-1m 30s")],
)
def test_duration_text(seconds: float | None, text: str) -> None:
    assert duration_text(seconds) == text
