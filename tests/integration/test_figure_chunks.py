"""A stream's figures are packed in chunks spanning consecutive months (few items per stream, so a
space of many small streams reads few items), and a deployment's own record is still found by its
month with one small Query, whatever the chunk boundaries (moto; the chunk size made tiny)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dora_insights.dal import keys, metrics

SPACE = "Spaces-1"
STREAM = "stream-a"


def _records(counts: list[int]) -> dict[str, list[dict[str, Any]]]:
    """``counts[i]`` records in month i of 2024-2025 (empty months left out, as the recompute does)."""
    by_month: dict[str, list[dict[str, Any]]] = {}
    for index, count in enumerate(counts):
        month = f"{2024 + index // 12}-{index % 12 + 1:02d}"
        for n in range(count):
            by_month.setdefault(month, []).append({"deployment_id": f"D-{month}-{n}", "padding": "x" * 40})
    return by_month


def _write(store: Any, by_month: dict[str, list[dict[str, Any]]], generation: str, previous: str | None) -> None:
    assert store.metrics().write_stream_figures(SPACE, STREAM, {"deployments": 1}, by_month, generation, previous)


def _figure_items(store: Any) -> list[dict[str, Any]]:
    return list(store.query_all(partition=keys.figures_pk(SPACE)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    counts=st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=14),
    limit=st.integers(min_value=60, max_value=400),
)
def test_every_record_is_found_by_its_month(
    store: Any, monkeypatch: pytest.MonkeyPatch, counts: list[int], limit: int
) -> None:
    monkeypatch.setattr(metrics, "CHUNK_BYTES", limit)
    monkeypatch.setattr(metrics.pack, "__defaults__", (limit,))
    previous = store.get(keys.stream_registration(SPACE, STREAM))
    generation = f"G{len(counts)}-{limit}-{sum(counts)}-{id(counts)}"
    by_month = _records(counts)
    _write(store, by_month, generation, previous["generation"] if previous else None)
    data = store.metrics()
    for month, records in by_month.items():
        for record in records:
            assert data.deployment_figures(SPACE, STREAM, record["deployment_id"], month) == record
        # A deployment of that month that is not stored is not found (nor one of the wrong month).
        assert data.deployment_figures(SPACE, STREAM, f"D-{month}-absent", month) is None
    assert data.deployment_figures(SPACE, STREAM, "D-2024-01-0", "2023-12") is None
    # Every record is stored once, in month order, and each chunk says which months it spans.
    items = [i for i in _figure_items(store) if i["generation"] == generation]
    stored = [record for item in items for record in json.loads(item["records"])]
    assert stored == [record for month in sorted(by_month) for record in by_month[month]]
    for item in items:
        months = {r["deployment_id"][2:9] for r in json.loads(item["records"])}
        assert (min(months), max(months)) == (item["month"], item["last_month"])
    # The previous generation is gone.
    assert all(i["generation"] == generation for i in _figure_items(store))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    counts=st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=14),
    limit=st.integers(min_value=60, max_value=400),
    data=st.data(),
)
def test_the_records_of_a_page_are_found_by_its_months(
    store: Any, monkeypatch: pytest.MonkeyPatch, counts: list[int], limit: int, data: st.DataObject
) -> None:
    """A list page's deployments of one stream (any of those finished in a range of months, and some not
    stored) are found with one Query over the chunks of those months, whatever the chunk boundaries."""
    monkeypatch.setattr(metrics, "CHUNK_BYTES", limit)
    monkeypatch.setattr(metrics.pack, "__defaults__", (limit,))
    previous = store.get(keys.stream_registration(SPACE, STREAM))
    generation = f"P{len(counts)}-{limit}-{sum(counts)}-{id(counts)}"
    by_month = _records(counts)
    _write(store, by_month, generation, previous["generation"] if previous else None)
    months = sorted(f"{2024 + i // 12}-{i % 12 + 1:02d}" for i in range(len(counts)))
    first, last = sorted(data.draw(st.lists(st.sampled_from(months), min_size=2, max_size=2)))
    inside = [r for month in sorted(by_month) if first <= month <= last for r in by_month[month]]
    page = data.draw(st.lists(st.sampled_from(inside), unique_by=lambda r: r["deployment_id"])) if inside else []
    absent = [f"D-{first}-absent", f"D-{last}-absent"]

    found = store.metrics().stream_figures(
        SPACE, STREAM, generation, [r["deployment_id"] for r in page] + absent, (first, last)
    )

    assert found == {r["deployment_id"]: r for r in page}


def test_small_streams_take_one_item_each(store: Any) -> None:
    """A year of a few deployments a month: one item (it was twelve, one per month)."""
    _write(store, _records([4] * 12), "G1", None)
    items = _figure_items(store)
    assert len(items) == 1
    assert (items[0]["month"], items[0]["last_month"]) == ("2024-01", "2024-12")


def test_no_records_leave_no_chunk(store: Any) -> None:
    _write(store, {}, "G1", None)
    assert _figure_items(store) == []
    assert store.metrics().deployment_figures(SPACE, STREAM, "D-2024-01-0", "2024-01") is None
