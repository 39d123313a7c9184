"""The read bound of ``logic/freshness.py``: which pending streams a read brings up to date."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dora_insights.logic.freshness import Freshness, within_bound

COSTS = st.dictionaries(st.text(min_size=1, max_size=6), st.integers(min_value=1, max_value=2_000), max_size=30)


@given(COSTS, st.integers(min_value=0, max_value=5_000))
def test_the_cheapest_streams_are_chosen_while_they_fit_the_bound(costs: dict[str, int], bound: int) -> None:
    chosen = within_bound(costs, bound)
    ordered = sorted(costs, key=lambda s: (costs[s], s))
    assert chosen == ordered[: len(chosen)]  # a prefix of the cheapest first
    assert sum(costs[s] for s in chosen) <= bound
    if len(chosen) < len(ordered):  # stopped only because the next one would not fit
        assert sum(costs[s] for s in chosen) + costs[ordered[len(chosen)]] > bound


@given(COSTS)
def test_without_a_bound_every_stream_is_chosen(costs: dict[str, int]) -> None:
    assert sorted(within_bound(costs, None)) == sorted(costs)


def test_headers_carry_what_is_known() -> None:
    assert Freshness("2024-03-10T12:00:00.000Z", 2).headers() == {
        "X-Dora-Pending": "2",
        "X-Dora-As-Of": "2024-03-10T12:00:00.000Z",
    }
    assert Freshness(None, 0).headers() == {"X-Dora-Pending": "0"}
    assert Freshness("2024-03-10T12:00:00.000Z", None).headers() == {"X-Dora-As-Of": "2024-03-10T12:00:00.000Z"}
