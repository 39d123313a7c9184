"""The deployment list's recomputed figures at the edges (``logic/deployments.py`` ``_with_latest_figures``,
``dal/metrics.py`` ``stream_figures``: many chunks, filtered pages, a recompute a moment ago, tenants and
channels), native ``release_created_at`` in every accepted form, and an Orlo history copied as API.md's
"Copying a space's history" says."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api
from tests.integration.test_moving_data import postable
from tests.integration.test_orlo import call as orlo_call
from tests.support.fixtures import OTHER_KEY, OTHER_SPACE
from tests.support.native import create_deployment, list_all, read_deployment
from tests.support.read_cost import Meter
from tests.support.replica_lag import ReplicaLag
from tests.support.retries import settle

SP = {"spaceId": "Spaces-1"}
ROUTE = "/api/{spaceId}/deployments"


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream's figures packed one record per chunk: a busy stream's many 300 KB chunks, in a few records."""
    from dora_insights.dal import metrics

    monkeypatch.setattr(metrics, "pack", functools.partial(metrics.pack, limit=1))


def _year_of_one_stream(api: Api, failed_months: tuple[int, ...] = ()) -> dict[str, dict[str, Any]]:
    """Three deployments a month of shop/production over 2023 (10 min each), the first of each
    ``failed_months`` month Failed; by id."""
    made = {}
    for month in range(1, 13):
        for day in (5, 15, 25):
            failed = month in failed_months and day == 5
            body = create_deployment(
                api,
                finished_at=f"2023-{month:02d}-{day:02d}T10:00:00Z",
                started_at=f"2023-{month:02d}-{day:02d}T09:50:00Z",
                version=f"{month}.{day}",
                state="Failed" if failed else "Success",
            )
            made[body["id"]] = body
    return made


# --- the list's figures --------------------------------------------------------------------------------
def test_every_listed_deployment_of_a_stream_whose_months_span_many_chunks_has_its_read_figures(
    api: Api, aws: Any, clock: Any, lambda_context: Any, small_chunks: None
) -> None:
    """one stream's year, each record in its own chunk, listed in pages of 7 (pages
    whose months start and end inside a month's chunks): each item's figures are its read's."""
    made = _year_of_one_stream(api)
    settle(aws, clock, lambda_context)
    newest = create_deployment(api, finished_at="2023-12-26T10:00:00Z", version="new")  # after the recompute
    listed = {item["id"]: item for item in list_all(api, limit=7)}
    assert len(listed) == len(made) + 1
    assert listed[newest["id"]]["figures"] == newest["figures"]  # what attribution found: not lost
    for deployment_id in made:
        assert listed[deployment_id]["figures"] == read_deployment(api, deployment_id)["figures"], deployment_id
        assert listed[deployment_id]["figures"]["duration_seconds"] == 600


def test_a_filtered_page_reads_figures_for_its_deployments_not_every_chunk_between_them(
    api: Api, aws: Any, clock: Any, lambda_context: Any, small_chunks: None, meter: Meter
) -> None:
    """A page's read cost follows its items, not the history between them: a ``state=Failed`` page of two
    failures eleven months apart in one busy stream reads, for each, the chunks of its month and the one
    before, as the read of one does (before, one Query spanned the year between: here 36 one-record
    chunks; in production up to 300 KB each, hundreds of RCU for a two-item page)."""
    _year_of_one_stream(api, failed_months=(1, 12))
    settle(aws, clock, lambda_context)
    meter.reset()
    page = api.call("GET", ROUTE, path_params=SP, query={"state": "Failed"}, key=ADMIN_KEY)
    assert page.status == 200, page.body
    assert len(page.body["items"]) == 2
    assert all(item["figures"]["change_failure"] is True for item in page.body["items"])
    # each of the two months: the chunks starting in it and the one before, as deployment_figures reads them,
    # plus the Query's page overshoot (FIGURES_LOOKUP_PAGE = 4)
    assert meter.read["FIGURES"] <= 2 * 4, meter


def test_a_listed_deployment_keeps_its_recomputed_figures_right_after_a_recompute(
    api: Api, aws: Any, clock: Any, lambda_context: Any, replica_lag: ReplicaLag
) -> None:
    """A recompute writes a new generation's chunks, moves the stream's pointer to it and deletes the old
    one. An eventually consistent read may then answer the old pointer (whose chunks are gone) or not yet
    the new chunks: the list reads the pointers strongly consistently, and a generation that shows no
    chunk is read again consistently. Under that lag the listed figures are the recompute's (before: the
    ingest figures, ``figures: null`` for a deployment naming no code)."""
    first = create_deployment(api, finished_at="2024-03-01T10:00:00Z", started_at="2024-03-01T09:50:00Z", version="1")
    settle(aws, clock, lambda_context)
    assert list_all(api)[0]["figures"]["duration_seconds"] == 600
    create_deployment(api, finished_at="2024-03-01T11:00:00Z", started_at="2024-03-01T10:50:00Z", version="2")
    replica_lag.on()
    settle(aws, clock, lambda_context)  # a new generation, written under the lag; the old one's chunks deleted
    listed = {item["id"]: item for item in list_all(api)}
    figures = listed[first["id"]]["figures"]
    assert figures is not None and figures["duration_seconds"] == 600, replica_lag.hidden


def test_the_read_of_one_keeps_its_recomputed_figures_right_after_a_recompute(
    api: Api, aws: Any, clock: Any, lambda_context: Any, replica_lag: ReplicaLag
) -> None:
    """The same for ``GET .../deployments/{id}``: it reads its stream's pointer strongly consistently (before,
    an eventually consistent read right after a recompute could name the generation just deleted, or none,
    and the read answered the ingest figures)."""
    first = create_deployment(api, finished_at="2024-03-01T10:00:00Z", started_at="2024-03-01T09:50:00Z", version="1")
    settle(aws, clock, lambda_context)
    create_deployment(api, finished_at="2024-03-01T11:00:00Z", started_at="2024-03-01T10:50:00Z", version="2")
    replica_lag.on()
    settle(aws, clock, lambda_context)
    figures = read_deployment(api, first["id"])["figures"]
    assert figures is not None and figures["duration_seconds"] == 600, replica_lag.hidden


def test_a_correction_answers_the_recomputed_figures_right_after_a_recompute(
    api: Api, aws: Any, clock: Any, lambda_context: Any, replica_lag: ReplicaLag
) -> None:
    """The PATCH's answer (``with_figures``: the pointer read by ``deployment_figures`` itself) reads the
    stream's pointer strongly consistently too: a correction that changes nothing, sent right after a
    recompute, answers the recomputed figures (before: the ingest ones)."""
    first = create_deployment(
        api, finished_at="2024-03-01T10:00:00Z", started_at="2024-03-01T09:50:00Z", version="1", tags=["team:web"]
    )
    settle(aws, clock, lambda_context)
    create_deployment(api, finished_at="2024-03-01T11:00:00Z", started_at="2024-03-01T10:50:00Z", version="2")
    replica_lag.on()
    settle(aws, clock, lambda_context)
    same = api.call(
        "PATCH",
        ROUTE + "/{deploymentId}",
        path_params={**SP, "deploymentId": first["id"]},
        body={"tags": ["team:web"]},
        key=ADMIN_KEY,
    )
    assert same.status == 200, same.body
    assert same.body["revision"] == 1
    assert same.body["figures"] is not None and same.body["figures"]["duration_seconds"] == 600, replica_lag.hidden


def test_a_corrected_deployment_is_listed_with_its_override_once_recomputed(
    api: Api, aws: Any, clock: Any, lambda_context: Any
) -> None:
    """a PATCHed change_failure shows in the listed figures after the recompute."""
    one = create_deployment(api, finished_at="2024-03-01T10:00:00Z", version="1")
    create_deployment(api, finished_at="2024-03-01T11:00:00Z", version="2")
    settle(aws, clock, lambda_context)
    patched = api.call(
        "PATCH",
        ROUTE + "/{deploymentId}",
        path_params={**SP, "deploymentId": one["id"]},
        body={"change_failure": True},
        key=ADMIN_KEY,
    )
    assert patched.status == 200, patched.body
    settle(aws, clock, lambda_context)
    listed = {item["id"]: item for item in list_all(api)}
    assert listed[one["id"]]["figures"]["change_failure"] is True
    assert listed[one["id"]]["figures"] == read_deployment(api, one["id"])["figures"]


def test_tenants_and_channels_of_one_project_each_list_their_own_stream_figures(
    api: Api, aws: Any, clock: Any, lambda_context: Any
) -> None:
    """deployments of one project in several streams (tenant, channel) on one page."""
    ids = [
        create_deployment(
            api,
            finished_at=f"2024-03-01T{h:02d}:00:00Z",
            started_at=f"2024-03-01T{h - 1:02d}:55:00Z",
            version=str(h),
            **extra,
        )["id"]
        for h, extra in (
            (9, {}),
            (10, {"tenant": "acme"}),
            (11, {"channel": "Beta"}),
            (12, {"tenant": "acme", "channel": "Beta"}),
        )
    ]
    settle(aws, clock, lambda_context)
    listed = {item["id"]: item for item in list_all(api)}
    for deployment_id in ids:
        assert listed[deployment_id]["figures"]["duration_seconds"] == 300
        assert listed[deployment_id]["figures"] == read_deployment(api, deployment_id)["figures"]


# --- native release_created_at --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "given",
    ["2024-03-01T12:00:00Z", "2024-03-01T13:59:00+02:00", 1709290800000, "1709290800"],
    ids=["equal", "offset", "unix-ms", "unix-s-text"],
)
def test_a_release_time_in_any_accepted_form_is_taken(api: Api, given: Any) -> None:
    """equal to finished_at, with an offset, as unix time: taken and shown in UTC."""
    made = create_deployment(api, finished_at="2024-03-01T12:00:00Z", version="1", release_created_at=given)
    assert made["release_created_at"] <= "2024-03-01T12:00:00.000Z"
    assert made["release_created_at"] >= "2024-03-01T11:00:00.000Z"


def test_a_create_sent_again_with_the_release_time_in_another_offset_is_the_same_request(api: Api) -> None:
    """idempotency by id compares the instant, not its spelling."""
    first = create_deployment(api, id="rel-1", version="1", release_created_at="2024-03-01T08:00:00Z")
    again = create_deployment(api, id="rel-1", version="1", release_created_at="2024-03-01T10:00:00+02:00", expect=200)
    assert again["id"] == first["id"]
    differs = api.call(
        "POST",
        ROUTE,
        path_params=SP,
        body={
            "id": "rel-1",
            "project": "shop",
            "environment": "production",
            "finished_at": "2024-03-01T12:00:00Z",
            "version": "1",
        },
        key=ADMIN_KEY,
    )
    assert differs.status == 409, differs.body


# --- "Copying a space's history" -------------------------------------------------------------------------
def test_an_orlo_import_whose_package_finished_before_its_release_started_can_be_copied(
    api: Api, other_space: str
) -> None:
    """Orlo's import takes a package whose stime/ftime precede its release's stime; its deployment stores,
    and the native reads answer, a ``release_created_at`` after its ``finished_at``. The native write takes
    it (a later release time never changes the figures: first sight is the earliest), so such a history is
    copied as API.md says (a first version refused it: 400)."""
    doc = {
        "id": "65656565-6565-6565-6565-656565656566",
        "platforms": ["eu"],
        "user": "u",
        "team": "t",
        "stime": "2024-03-01T10:00:00Z",
        "ftime": "2024-03-01T10:30:00Z",
        "packages": [
            {
                "id": "dddddddd-dddd-dddd-dddd-000000000004",
                "name": "web",
                "version": "1",
                "status": "SUCCESSFUL",
                "rollback": False,
                "stime": "2024-03-01T08:00:00Z",
                "ftime": "2024-03-01T09:00:00Z",
            }
        ],
    }
    imported = orlo_call(api, "POST", "/orlo/releases/import", body=[doc])
    assert imported.status == 200, imported.body
    (item,) = list_all(api)
    assert item["release_created_at"] > item["finished_at"]  # what the source stores and answers
    taken = api.call("POST", ROUTE, path_params={"spaceId": OTHER_SPACE}, body=postable(item), key=OTHER_KEY)
    assert taken.status == 201, taken.body
