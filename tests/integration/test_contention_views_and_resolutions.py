"""Views of insights and incident resolutions under the contention DynamoDB shows and moto does not (issue 17).

A view's transaction updates the insight's shared count of the day, which every other viewer's view updates
too; a resolution's updates the dirty marks of its streams, which every ingest and the recompute update.
DynamoDB cancels such a transaction for contention alone (``TransactionConflict``); botocore does not retry
it. A view so cancelled was read as "already counted today" (a lost view), a resolution as "not newer" (the
incident stayed open), and a contended chunk of marks past the resolution's transaction was a 500.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dora_insights.dal import keys
from dora_insights.dal.store import Store
from dora_insights.observability import logger
from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult
from tests.integration.test_incident_webhooks import PD_CONFIG, PD_SECRET, pagerduty
from tests.support.contention import Contention, record_pauses
from tests.support.events import load_event

SP = {"spaceId": "Spaces-1"}
INSIGHTS = "/api/projects/{spaceId}/insights"
INCIDENT = "pagerduty-Q0RIJJZL24RC6W"


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The retries' pauses, taken but not waited."""
    return record_pauses(monkeypatch)


@pytest.fixture
def contention(monkeypatch: pytest.MonkeyPatch, pauses: list[float]) -> Contention:
    """The streams' dirty marks held by other writes (``tests.support.contention``), off until armed."""
    return Contention(monkeypatch)


@pytest.fixture
def warnings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The messages logged at warning."""
    found: list[str] = []
    monkeypatch.setattr(logger, "warning", lambda message, *_, **__: found.append(message))
    return found


def _cancelled(operations: Sequence[Mapping[str, Any]], held: Sequence[int]) -> ClientError:
    reasons = [{"Code": "TransactionConflict" if i in held else "None"} for i in range(len(operations))]
    error = {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"}
    return ClientError({"Error": error, "CancellationReasons": reasons}, "TransactWriteItems")


class CountContention:
    """``Store.transact`` as DynamoDB answers it while other viewers' views update the days' view counts
    (pattern 52): a transaction updating one is cancelled the next ``left`` times (None: every time)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.left: int | None = 0
        self.attempts = 0
        transact = Store.transact
        counts = keys.insight_view_counts_pk("Spaces-1", "")

        def contended_transact(store: Store, operations: Sequence[Mapping[str, Any]]) -> None:
            held = [
                i
                for i, op in enumerate(operations)
                if "Update" in op and str(op["Update"]["Key"][keys.PK]["S"]).startswith(counts)
            ]
            if held:
                self.attempts += 1
            if held and self.left != 0:
                self.left = None if self.left is None else self.left - 1
                raise _cancelled(operations, held)
            transact(store, operations)

        monkeypatch.setattr(Store, "transact", contended_transact)


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch, pauses: list[float]) -> CountContention:
    return CountContention(monkeypatch)


# --- views -------------------------------------------------------------------------------------------------
@pytest.fixture
def insight(api: Api, clock: Clock) -> int:
    report = api.call("POST", "/api/{spaceId}/insights/reports", path_params=SP, body={"Name": "D"}, key=ADMIN_KEY)
    assert report.status == 201, report.body
    query = {"kind": "DoraMetricsQuery", "reportId": str(report.body["Id"]), "metric": "lead_time"}
    created = api.call("POST", INSIGHTS, path_params=SP, body={"name": "Lead time", "query": query}, key=ADMIN_KEY)
    assert created.status == 201, created.body
    return int(created.body["id"])


def _view(api: Api, insight_id: int) -> None:
    viewed = api.call("POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": [insight_id]}, key=ADMIN_KEY)
    assert viewed.status == 200, viewed.body


def _views(api: Api) -> dict[int, int]:
    trending = api.call("GET", INSIGHTS + "/trending", path_params=SP, key=ADMIN_KEY)
    assert trending.status == 200, trending.body
    return {int(row["id"]): int(row["view_count"]) for row in trending.body["results"]}


def _last_viewed_at(api: Api, insight_id: int) -> str | None:
    one = api.call("GET", INSIGHTS + "/{insightId}", path_params={**SP, "insightId": str(insight_id)}, key=ADMIN_KEY)
    assert one.status == 200, one.body
    return one.body["last_viewed_at"]  # type: ignore[no-any-return]


def test_a_view_cancelled_for_contention_on_the_days_count_is_counted(
    api: Api, insight: int, counts: CountContention
) -> None:
    counts.left = 2

    _view(api, insight)

    assert counts.attempts == 3
    assert _views(api) == {insight: 1}


def test_a_view_still_contended_is_dropped_with_a_warning_and_the_next_one_counts(
    api: Api, insight: int, counts: CountContention, warnings: list[str]
) -> None:
    counts.left = None

    _view(api, insight)  # a view count is not worth a 503

    assert _views(api) == {}
    assert warnings == ["view not counted: its items stayed contended"]
    assert _last_viewed_at(api, insight) is not None
    counts.left = 0
    _view(api, insight)  # the day's marker was not written: the viewer's next view counts
    assert _views(api) == {insight: 1}


def test_a_view_counted_today_is_not_counted_again_and_moves_the_last_view(
    api: Api, insight: int, clock: Clock, counts: CountContention
) -> None:
    from datetime import timedelta

    _view(api, insight)
    first = _last_viewed_at(api, insight)
    clock.advance(timedelta(minutes=5))

    _view(api, insight)

    assert _views(api) == {insight: 1}
    assert (_last_viewed_at(api, insight) or "") > (first or "")


def test_the_pauses_of_one_requests_contended_views_are_bounded(
    store: Any, counts: CountContention, pauses: list[float]
) -> None:
    from dora_insights.dal.insights import VIEW_PAUSE_SECONDS
    from dora_insights.domain.insights import Person

    repository = store.insights()
    counts.left = None
    for insight_id in range(1, 101):  # a POST /viewed names up to 100 insights
        repository.record_view(
            "Spaces-1", insight_id, Person(first_name="v"), "viewer", "2024-03-01", "2024-03-01T12:00:00Z", 0
        )

    assert pauses and sum(pauses) <= VIEW_PAUSE_SECONDS  # retried, until the budget was spent
    assert repository.last_viewed("Spaces-1", "viewer")[-1].insight_id == 100


# --- incident resolutions ----------------------------------------------------------------------------------
@pytest.fixture
def opened(api: Api, store: Any, clock: Clock) -> list[str]:
    """A PagerDuty incident recorded open, and streams of its project in its environment that the recompute
    knows (pattern 44): the ones its resolution marks dirty."""
    services = {"Checkout API": {"project": "checkout"}}
    configured = api.call(
        "PUT", PD_CONFIG, path_params=SP, body={"secret": PD_SECRET, "services": services}, key=ADMIN_KEY
    )
    assert configured.status == 200, configured.body
    assert pagerduty(api, load_event("pagerduty_incident_triggered.json")).status == 201
    return _known_streams(store, 1)


def _known_streams(store: Any, count: int) -> list[str]:
    """Register ``count`` streams of the incident's project in its environment; their keys."""
    failure = store.failures().get("Spaces-1", INCIDENT, consistent=True)
    streams = [f"{failure.project_ids[0]}/Channels-{n}/{failure.environment_id}/-" for n in range(count)]
    store.batch_put({**keys.stream_registration("Spaces-1", s), keys.TYPE: keys.T_STREAM, "stream": s} for s in streams)
    return streams


def _resolve(api: Api) -> HttpResult:
    result: HttpResult = pagerduty(api, load_event("pagerduty_incident_resolved.json"))
    return result


def _contended(result: HttpResult) -> None:
    assert result.status == 503, result.body
    assert result.header("retry-after") == "1"


def _finished_at(store: Any) -> str | None:
    return store.failures().get("Spaces-1", INCIDENT, consistent=True).finished_at  # type: ignore[no-any-return]


def test_a_resolution_cancelled_for_contention_on_its_marks_is_applied(
    api: Api, store: Any, opened: list[str], contention: Contention
) -> None:
    contention.left, contention.attempts = 2, 0

    resolved = _resolve(api)

    assert resolved.status == 200, resolved.body
    assert resolved.body["status"] == "resolved"
    assert contention.attempts == 3
    assert _finished_at(store) == "2024-02-28T10:30:00.000Z"
    assert {m["stream"] for m in store.list_dirty_streams("Spaces-1")} >= set(opened)


def test_a_resolution_still_contended_is_a_503_and_the_redelivery_resolves(
    api: Api, store: Any, opened: list[str], contention: Contention
) -> None:
    contention.left = None

    _contended(_resolve(api))  # not "already resolved": the tool delivers it again

    assert _finished_at(store) is None
    contention.left = 0
    again = _resolve(api)
    assert (again.status, again.body["status"]) == (200, "resolved"), again.body
    assert _finished_at(store) == "2024-02-28T10:30:00.000Z"


def test_a_contended_chunk_of_marks_past_the_resolutions_transaction_is_a_503_not_a_500(
    api: Api, store: Any, opened: list[str], contention: Contention
) -> None:
    streams = opened + _known_streams(store, 120)[1:]  # the resolution marks them in two transactions
    # Held: the mark of the stream that sorts last (marks follow the streams' key order), past the first 99.
    contention.one_stream, contention.held, contention.left = True, max(streams), None

    _contended(_resolve(api))

    assert _finished_at(store) is None  # a 503 resolved nothing: the redelivery marks every stream again
    contention.left = 0
    assert _resolve(api).status == 200
    assert _finished_at(store) == "2024-02-28T10:30:00.000Z"
    assert {m["stream"] for m in store.list_dirty_streams("Spaces-1")} >= set(streams)


def test_a_contended_chunk_of_marks_past_a_new_incidents_transaction_leaves_nothing_a_redelivery_cannot_mark(
    api: Api, store: Any, opened: list[str], contention: Contention
) -> None:
    """A new incident of more than 99 streams: its marks past the transaction are written first. Had they
    come after it, a 503 there would have stored the incident, and the tool's redelivery (an update of an
    incident already open) would have marked none of them."""
    streams = opened + _known_streams(store, 120)[1:]
    second = load_event("pagerduty_incident_triggered.json")
    second["event"]["id"] = "01DEN4HPBQAJQFVW4S6VYIGPLN"
    second["event"]["data"].update(id="Q0RIJJZL24RC6X", number=3, incident_key="another")
    contention.one_stream, contention.held, contention.left = True, max(streams), None

    _contended(pagerduty(api, second))

    assert store.failures().get("Spaces-1", "pagerduty-Q0RIJJZL24RC6X", consistent=True) is None
    contention.left = 0
    assert pagerduty(api, second).status in (200, 201)
    assert {m["stream"] for m in store.list_dirty_streams("Spaces-1")} >= set(streams)
