"""PutEvents batches: at most 10 entries and 256 KB per call, in order (dal/events.py)."""

from __future__ import annotations

from dora_insights.dal.events import MAX_REQUEST_BYTES, SOURCE, Event, batches, entry_size


def event(n: int, detail_bytes: int = 20) -> Event:
    return Event(f"e{n}", "InsightThresholdBreached", '{"x":"' + "a" * (detail_bytes - 8) + '"}')


def test_entries_are_sized_as_eventbridge_counts_them() -> None:
    one = event(1, 100)
    assert len(one.detail) == 100
    assert entry_size(one) == len(SOURCE) + len("InsightThresholdBreached") + 100


def test_at_most_ten_entries_a_call_in_order() -> None:
    grouped = list(batches(event(n) for n in range(25)))
    assert [len(b) for b in grouped] == [10, 10, 5]
    assert [e.id for b in grouped for e in b] == [f"e{n}" for n in range(25)]


def test_at_most_256_kb_a_call_and_a_too_large_entry_alone() -> None:
    large = 100 * 1024
    grouped = list(batches([event(0, large), event(1, large), event(2, large), event(3, 300 * 1024), event(4)]))
    assert [[e.id for e in b] for b in grouped] == [["e0", "e1"], ["e2"], ["e3"], ["e4"]]
    assert all(sum(entry_size(e) for e in b) <= MAX_REQUEST_BYTES for b in grouped if len(b) > 1)
    assert list(batches([])) == []
