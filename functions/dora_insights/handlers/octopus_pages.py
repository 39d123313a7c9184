"""Octopus collection paging, shared by the Octopus-shaped lists (catalogue lists, Insights reports).

An Octopus collection answers ``skip``/``take`` with its counts and a set of ``Links``; only its
``ItemType`` and ``Items`` differ from one list to another.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict
from urllib.parse import quote, urlencode

from dora_insights.handlers.params import ALL


class CollectionPage(TypedDict):
    """The fields every Octopus collection carries besides ``ItemType`` and ``Items``."""

    TotalResults: int
    ItemsPerPage: int
    NumberOfPages: int
    LastPageNumber: int
    Links: dict[str, str]


def collection_page(
    base: str,
    total: int,
    skip: int,
    take: int,
    *,
    filters: Mapping[str, str | None] | None = None,
    neighbours: bool = False,
) -> CollectionPage:
    """Counts and links of the page ``skip``/``take`` of ``total`` items listed at ``base``.

    ``filters``: the list's filter parameters (each named in the ``Template``; those given are carried by
    every page link, so a client following them pages through the same filtered list). ``neighbours``:
    also ``Page.Next`` while a later page exists and ``Page.Previous`` after the first, as Octopus'
    collections carry them."""
    pages = max(1, -(-total // take))
    given = {name: value for name, value in (filters or {}).items() if value}
    also = "&" + urlencode(given, quote_via=quote) if given else ""

    def at(page_skip: int, page_take: int = take) -> str:
        return f"{base}?skip={page_skip}&take={page_take}{also}"

    links = {
        "Self": at(skip),
        "Template": base + "{?" + ",".join(["skip", "take", *(filters or {})]) + "}",
        "Page.All": at(0, ALL),
        "Page.Current": at(skip),
        "Page.Last": at((pages - 1) * take),
    }
    if neighbours and skip + take < total:
        links["Page.Next"] = at(skip + take)
    if neighbours and skip > 0:
        links["Page.Previous"] = at(max(skip - take, 0))
    return CollectionPage(
        TotalResults=total,
        ItemsPerPage=take,
        NumberOfPages=pages,
        LastPageNumber=pages - 1,
        Links=links,
    )
