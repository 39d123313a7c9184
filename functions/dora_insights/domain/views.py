"""Precomputed report views as values: which view (:class:`ViewId`) and what is kept of it
(:class:`StoredView`). ``logic.metrics`` computes them; ``dal.metrics`` names and stores them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from dora_insights.domain.aggregates import Granularity, Split


class ViewId(NamedTuple):
    """One view of a report: a split and a granularity (and the tag set of a ``TenantTagSet`` split)."""

    split: Split
    granularity: Granularity
    tag_set_id: str | None = None

    @classmethod
    def of(cls, split: Split, granularity: Granularity, tag_set_id: str | None = None) -> ViewId:
        """The view, with ``tag_set_id`` kept only for a ``TenantTagSet`` split (other splits have none)."""
        return cls(split, granularity, tag_set_id if split is Split.TENANT_TAG_SET else None)


@dataclass(frozen=True, slots=True)
class StoredView:
    """One view of a report generation as stored: its numbers and its rendered answer.

    ``records`` are the series with their non-empty intervals as numbers (insights, thresholds);
    ``text`` is the ``/metrics`` answer for the view's grid and ``header`` how to slice it (see
    ``logic.metrics.stored_view``). ``dal.metrics`` stores the numbers and the header
    zlib-compressed and the answer gzip-compressed (served as it is to clients that accept gzip),
    so a large view costs a few items, not megabytes.
    """

    records: list[dict[str, Any]]
    header: dict[str, Any]
    text: str
