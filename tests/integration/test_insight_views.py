"""Views of saved insights (PostHog dialect): ``POST /viewed`` stays a 2xx however many viewers an
insight had, the day's count keeps only a few of its latest viewers (all trending shows), and every
key's user is a viewer of their own. Through the real route functions against moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Aws, Clock

SP = {"spaceId": "Spaces-1"}
INSIGHTS = "/api/projects/{spaceId}/insights"
REPORTS = "/api/{spaceId}/insights/reports"
NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


@pytest.fixture
def insight(api: Api, clock: Clock) -> int:
    """Insight 1 of a report ``All``."""
    report = api.call("POST", REPORTS, path_params=SP, body={"Name": "All"}, key=ADMIN_KEY).body["Id"]
    query = {"kind": "DoraMetricsQuery", "reportId": report, "metric": "lead_time"}
    created = api.call("POST", INSIGHTS, path_params=SP, body={"name": "x", "query": query}, key=ADMIN_KEY)
    assert created.status == 201, created.body
    return int(created.body["id"])


def _key(store: Any, name: str) -> str:
    from dora_insights.logic import admin

    return str(admin.create_api_key(store, "Spaces-1", name, ("insight:read",), NOW)[1])


def _view(api: Api, key: str, insight_id: int) -> Any:
    return api.call("POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": [insight_id]}, key=key)


def _count_item(aws: Aws, insight_id: int, day: str = "2024-03-06") -> dict[str, Any]:
    import boto3

    from dora_insights.dal import keys

    key = keys.insight_view_count("Spaces-1", day, insight_id)
    item = boto3.client("dynamodb").get_item(
        TableName=aws.table_name, Key={name: {"S": value} for name, value in key.items()}, ConsistentRead=True
    )["Item"]
    return item  # type: ignore[no-any-return]


def test_post_viewed_stays_a_2xx_however_many_viewers_an_insight_had_today(
    api: Api, clock: Clock, store: Any, insight: int
) -> None:
    """Every distinct viewer of the day was appended to the day's count item (``recent_viewers``, never
    trimmed, though trending shows 3): once it neared 400 KB DynamoDB refused the UpdateItem
    (ValidationException) and every further viewer's ``POST /viewed`` was an unhandled error (500), for
    the rest of the day. Key names may be 800 bytes of UTF-8 (``Name``), so 240 keys sufficed."""
    from dora_insights.logic import admin

    statuses: list[Any] = []
    for n in range(245):
        _, key = admin.create_api_key(store, "Spaces-1", f"{n:04d}" + "\U0001f600" * 199, ("insight:read",), NOW)
        try:
            viewed = api.call("POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": [1]}, key=key)
            statuses.append(viewed.status)
        except Exception as error:  # what Lambda reports as an error: API Gateway answers 500
            statuses.append(repr(error)[:120])
    assert all(s == 200 for s in statuses), [(n, s) for n, s in enumerate(statuses) if s != 200][:2]


def test_the_days_count_keeps_a_few_viewers_and_trending_shows_the_latest_three(
    api: Api, aws: Aws, clock: Clock, store: Any, insight: int
) -> None:
    for n in range(11):
        clock.advance(timedelta(minutes=1))
        assert _view(api, _key(store, f"viewer{n}@example.com"), insight).status == 200

    item = _count_item(aws, insight)
    trending = api.call("GET", INSIGHTS + "/trending", path_params=SP, key=ADMIN_KEY).body["results"]

    assert item["view_count"] == {"N": "11"}
    assert len(item["recent_viewers"]["L"]) + len(item.get("earlier_viewers", {"L": []})["L"]) <= 6
    assert [(t["id"], t["view_count"]) for t in trending] == [(insight, 11)]
    assert [v["email"] for v in trending[0]["recent_viewers"]] == [
        "viewer10@example.com",
        "viewer9@example.com",
        "viewer8@example.com",
    ]


def test_a_count_stored_with_a_long_viewer_list_starts_the_list_again(
    api: Api, aws: Aws, clock: Clock, store: Any, insight: int
) -> None:
    """A day's count written before the lists were bounded holds every viewer: the next view starts the
    list again rather than add to it."""
    import boto3

    from dora_insights.dal import keys

    key = keys.insight_view_count("Spaces-1", "2024-03-06", insight)
    old = [{"M": {"first_name": {"S": f"old{n}"}, "viewed_at": {"S": "2024-03-06T11:00:00.000Z"}}} for n in range(50)]
    boto3.client("dynamodb").put_item(
        TableName=aws.table_name,
        Item={
            **{name: {"S": value} for name, value in key.items()},
            "type": {"S": "InsightViewCount"},
            "insight_id": {"N": str(insight)},
            "view_count": {"N": "50"},
            "last_viewed_at": {"S": "2024-03-06T11:00:00.000Z"},
            "recent_viewers": {"L": old},
        },
    )

    assert _view(api, _key(store, "new@example.com"), insight).status == 200

    item = _count_item(aws, insight)
    assert item["view_count"] == {"N": "51"}
    assert [v["M"]["first_name"]["S"] for v in item["recent_viewers"]["L"]] == ["new@example.com"]
    assert "earlier_viewers" not in item
    trending = api.call("GET", INSIGHTS + "/trending", path_params=SP, key=ADMIN_KEY).body["results"]
    assert trending[0]["recent_viewers"][0]["first_name"] == "new@example.com"


def test_a_view_the_table_refuses_for_its_size_is_left_uncounted_not_a_500(
    api: Api, clock: Clock, store: Any, insight: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were DynamoDB to refuse a view's transaction for an item's size (``ValidationException``, as moto
    answers, or a cancellation for ``ValidationError``, as DynamoDB does), the view is not counted and its
    last view is still written: a 200."""
    from botocore.exceptions import ClientError

    from dora_insights.dal import keys
    from dora_insights.dal.store import Store

    transact = Store.transact
    counts = keys.insight_view_counts_pk("Spaces-1", "")

    def refusing(self: Store, operations: Any) -> None:
        if any("Update" in op and str(op["Update"]["Key"]["PK"]["S"]).startswith(counts) for op in operations):
            error = {"Code": "ValidationException", "Message": "Item size to update has exceeded the maximum"}
            raise ClientError({"Error": error}, "TransactWriteItems")
        transact(self, operations)

    monkeypatch.setattr(Store, "transact", refusing)
    key = _key(store, "viewer@example.com")

    assert _view(api, key, insight).status == 200
    assert api.call("GET", INSIGHTS + "/trending", path_params=SP, key=ADMIN_KEY).body["results"] == []
    mine = api.call("GET", INSIGHTS + "/my_last_viewed", path_params=SP, key=key).body
    assert [i["id"] for i in mine] == [insight]


def test_viewers_whose_names_differ_only_by_hash_or_underscore_are_two_viewers(
    api: Api, clock: Clock, store: Any, insight: int
) -> None:
    """``viewer_key`` replaced '#' by '_' in the key's user: users ``ops#1`` and ``ops_1`` shared one view
    history, so ``my_last_viewed`` showed one of them what the other viewed."""
    hashed = _key(store, "ops#1")
    underscored = _key(store, "ops_1")
    viewed = api.call("POST", INSIGHTS + "/viewed", path_params=SP, body={"insight_ids": [1]}, key=hashed)
    assert viewed.status == 200
    mine = api.call("GET", INSIGHTS + "/my_last_viewed", path_params=SP, key=underscored)
    assert mine.status == 200
    assert mine.body == [], "ops_1 never viewed anything"
    theirs = api.call("GET", INSIGHTS + "/my_last_viewed", path_params=SP, key=hashed).body
    assert [i["id"] for i in theirs] == [insight]


def test_a_viewer_without_a_hash_keeps_the_keys_of_its_history(api: Api, store: Any, insight: int) -> None:
    """The keys of a name without '#' are what they were before '#' stopped being replaced: its stored
    history is still its own."""
    from dora_insights.dal import keys

    assert _view(api, _key(store, "ops_1"), insight).status == 200

    assert store.insights().store.get(keys.last_viewed("Spaces-1", "ops_1", insight), consistent=True) is not None
