"""Octopus collection paging, shared by the Octopus-shaped lists (catalogue lists, Insights reports).

An Octopus collection answers ``skip``/``take`` with its counts and a set of ``Links``; only its
``ItemType`` and ``Items`` differ from one list to another.
"""

from __future__ import annotations

from typing import TypedDict

from dora_insights.handlers.params import ALL


class CollectionPage(TypedDict):
    """The fields every Octopus collection carries besides ``ItemType`` and ``Items``."""

    TotalResults: int
    ItemsPerPage: int
    NumberOfPages: int
    LastPageNumber: int
    Links: dict[str, str]


def collection_page(base: str, total: int, skip: int, take: int) -> CollectionPage:
    """Counts and links of the page ``skip``/``take`` of ``total`` items listed at ``base``."""
    pages = max(1, -(-total // take))
    return CollectionPage(
        TotalResults=total,
        ItemsPerPage=take,
        NumberOfPages=pages,
        LastPageNumber=pages - 1,
        Links={
            "Self": f"{base}?skip={skip}&take={take}",
            "Template": base + "{?skip,take}",
            "Page.All": f"{base}?skip=0&take={ALL}",
            "Page.Current": f"{base}?skip={skip}&take={take}",
            "Page.Last": f"{base}?skip={(pages - 1) * take}&take={take}",
        },
    )
