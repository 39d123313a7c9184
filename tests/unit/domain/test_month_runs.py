"""``domain.times.month_runs``: the months a list page's deployments of one stream finished in, as runs of
consecutive months (each run is one Query of the stream's figure chunks)."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from dora_insights.domain.times import month_runs

MONTHS = st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(1970, 2099), st.integers(1, 12))


def _index(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def test_consecutive_months_across_a_year_end_are_one_run_and_a_gap_starts_another() -> None:
    assert month_runs(["2024-01", "2023-12", "2024-01", "2024-03"]) == [("2023-12", "2024-01"), ("2024-03", "2024-03")]
    assert month_runs([]) == []


@given(st.lists(MONTHS, max_size=30))
def test_runs_cover_exactly_the_months_in_order_with_a_gap_between_two(months: list[str]) -> None:
    runs = month_runs(months)
    covered = [m for first, last in runs for m in range(_index(first), _index(last) + 1)]
    assert covered == sorted({_index(m) for m in months})
    assert all(_index(b[0]) > _index(a[1]) + 1 for a, b in itertools.pairwise(runs))
