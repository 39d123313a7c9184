"""A filtered list reads a bounded number of items per request (``Store.query_filtered``'s
``MAX_FILTERED_READ``): a filter that matches little answers short pages, even empty ones, with a cursor,
and following the cursors gives exactly the list an unbounded read gives. Without the bound, a filter
that matches nothing in a big space read the whole partition in one request, past the function's timeout.

The budget is made small here (3 items a page, 6 a call) so a few deployments exercise it.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api

ROUTE = "/api/{spaceId}/deployments"
SP = {"spaceId": "Spaces-1"}
DAYS = 20
ACME_DAYS = (1, 2, 10)  # the only deployments of tenant acme: both ends of the list and the middle


def _deployment(day: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "project": "shop",
        "environment": "production",
        "finished_at": f"2024-03-{day:02d}T12:00:00Z",
        "version": f"1.0.{day}",
    }
    if day in ACME_DAYS:
        body["tenant"] = "acme"
    return body


@pytest.fixture
def stored(api: Api) -> Api:
    for day in range(1, DAYS + 1):
        created = api.call("POST", ROUTE, path_params=SP, body=_deployment(day), key=ADMIN_KEY)
        assert created.status == 201, created.body
    return api


def _pages(api: Api, **query: str) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        result = api.call(
            "GET", ROUTE, path_params=SP, query=query | ({"cursor": cursor} if cursor else {}), key=ADMIN_KEY
        )
        assert result.status == 200, result.body
        pages.append([d["finished_at"][:10] for d in result.body["items"]])
        cursor = result.body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "the cursors must reach the end"


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dora_insights.dal.store._FILTERED_PAGE", 3)
    monkeypatch.setattr("dora_insights.dal.store.MAX_FILTERED_READ", 6)


EXPECTED = [f"2024-03-{day:02d}" for day in sorted(ACME_DAYS, reverse=True)]


@pytest.mark.parametrize("limit", ["1", "2", "5"])
def test_a_rare_filter_answers_bounded_pages_whose_cursors_give_the_whole_list(
    stored: Api, small_budget: None, limit: str
) -> None:
    pages = _pages(stored, tenant="acme", limit=limit)
    assert [day for page in pages for day in page] == EXPECTED
    assert [] in pages  # a page that found nothing within its budget still answers, with a cursor
    assert all(len(page) <= int(limit) for page in pages)


def test_the_same_list_in_one_page_when_the_budget_covers_the_partition(stored: Api) -> None:
    assert _pages(stored, tenant="acme", limit="5") == [EXPECTED]


def test_an_unfiltered_list_is_not_cut_short_by_the_budget(stored: Api, small_budget: None) -> None:
    pages = _pages(stored, limit="10")
    assert [len(page) for page in pages] == [10, 10]


def test_a_version_beyond_the_budget_is_not_found_and_a_recent_one_is(stored: Api, small_budget: None) -> None:
    from dora_insights.handlers import runtime

    deployments = runtime.store().deployments()
    where = {"project_id": "Projects-1", "environment_id": "Environments-1"}
    recent = deployments.find_by_version("Spaces-1", version="1.0.17", **where).deployment
    assert recent is not None and recent.version == "1.0.17"
    # 18 deployments are newer than 1.0.2: past the 6 one call may read, so it is not searched for
    assert deployments.find_by_version("Spaces-1", version="1.0.2", **where) == (None, False)
