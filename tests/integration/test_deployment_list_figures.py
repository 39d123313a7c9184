"""``GET /api/{spaceId}/deployments`` answers each deployment's figures as ``GET .../deployments/{id}`` does:
those of its stream's latest recompute (API.md: a native deployment object carries its ``figures``), not
what was stored at ingest. An audit or migration script pages through the list; before, it read
``duration_seconds``, ``change_failure`` and ``rework`` as null (and a deployment naming no code had no
figures at all) where the read of one answered them."""

from __future__ import annotations

from typing import Any

from tests.conftest import ADMIN_KEY, Api
from tests.support.code import REPO, commit, send_changes, sha
from tests.support.native import create_deployment, list_all, read_deployment
from tests.support.read_cost import Meter
from tests.support.retries import settle

ROUTE = "/api/{spaceId}/deployments"


def _at(day: str, hour: int) -> str:
    return f"{day}T{hour:02d}:00:00Z"


def test_the_list_answers_the_figures_the_deployment_answers(
    api: Api, aws: Any, clock: Any, lambda_context: Any
) -> None:
    send_changes(api, commits=[commit(n, n) for n in range(4)])
    with_code = create_deployment(
        api, finished_at=_at("2024-03-01", 3), started_at="2024-03-01T02:50:00Z", commit_sha=sha(2), repository=REPO
    )
    without = create_deployment(api, finished_at=_at("2024-03-01", 4), started_at="2024-03-01T03:50:00Z", version="2")
    settle(aws, clock, lambda_context)

    listed = {item["id"]: item["figures"] for item in list_all(api)}

    for deployment in (with_code, without):
        one = read_deployment(api, deployment["id"])
        assert one["pending"] == 0 and one["figures"]["duration_seconds"] == 600
        assert one["figures"]["change_failure"] is False
        assert listed[deployment["id"]] == one["figures"]


def test_every_page_over_streams_and_months_answers_the_recomputed_figures_in_a_query_per_stream(
    api: Api, aws: Any, clock: Any, lambda_context: Any, meter: Meter
) -> None:
    """Three streams over three months, paged by 4: each item's figures are its read's, and a page reads the
    streams' pointers in one BatchGetItem and each stream's figures with one Query (a stream not computed
    yet keeps what attribution found, as the read of one does)."""
    days = ("2024-01-15", "2024-02-15", "2024-03-15")
    for number, (project, day) in enumerate((p, d) for p in ("shop", "cart", "search") for d in days):
        create_deployment(api, project=project, finished_at=_at(day, 10), version=f"{number}", state="Success")
    failed = create_deployment(api, project="cart", finished_at=_at("2024-02-20", 9), version="x", state="Failed")
    settle(aws, clock, lambda_context)
    newest = create_deployment(api, project="docs", finished_at=_at("2024-03-20", 9), version="n")  # not computed

    pages: list[list[dict[str, Any]]] = []
    query = {"limit": "4"}
    while True:
        meter.reset()
        page = api.call("GET", ROUTE, path_params={"spaceId": "Spaces-1"}, query=query, key=ADMIN_KEY)
        assert page.status == 200, page.body
        streams = {item["project"] for item in page.body["items"]}
        assert meter.calls["batch_get_item"] == 1, meter
        assert meter.queried["FIGURES"] <= len(streams), meter
        pages.append(page.body["items"])
        if not page.body["next_cursor"]:
            break
        query = {"limit": "4", "cursor": page.body["next_cursor"]}

    listed = [item for page_items in pages for item in page_items]
    assert len(listed) == 11
    by_id = {item["id"]: item for item in listed}
    assert by_id.pop(newest["id"])["figures"] == newest["figures"]  # before its read brings its stream up to date
    for item in by_id.values():
        assert item["figures"] == read_deployment(api, item["id"])["figures"], item["id"]
    assert by_id[failed["id"]]["figures"]["change_failure"] is True
