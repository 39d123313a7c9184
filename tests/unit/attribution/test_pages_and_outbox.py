"""Issue 14: what a deployment shipped is stored in bounded pages; the cursor over them; the outbox
keys; the retry queue's dead-letter settings as the code counts them."""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dora_insights.dal import aws as dal_aws
from dora_insights.dal import keys, limits
from dora_insights.dal.attribution import FIRST_PAGE_BYTES, PAGE_BYTES, paginate
from dora_insights.dialects.native import decode_changes_cursor, encode_changes_cursor
from dora_insights.errors import RequestInvalidError
from tests.support.template import resources


def summary(number: int, title: str) -> dict[str, object]:
    return {
        "repository": "acme/shop",
        "number": number,
        "title": title,
        "base_ref": "main",
        "merge_commit_sha": f"{number:040x}",
        "created_at": "2024-03-01T10:00:00.000Z",
        "merged_at": "2024-03-01T11:00:00.000Z",
    }


def page_bytes(pull_requests: list[dict[str, object]], commits: list[str]) -> int:
    return limits.item_size(dal_aws.serialize({"pull_requests": pull_requests, "commits": commits}))


titles = st.text(min_size=0, max_size=500)
shipments = st.tuples(
    st.lists(titles, max_size=60),
    st.lists(st.tuples(st.sampled_from(["acme/shop", "acme/lib"]), st.from_regex(r"[0-9a-f]{40}", fullmatch=True))),
)


@settings(max_examples=60, deadline=None)
@given(shipments)
def test_pages_keep_every_change_once_in_order_and_within_their_size(shipment: tuple[list[str], list]) -> None:
    pr_titles, commits = shipment
    prs = [summary(n + 1, t) for n, t in enumerate(pr_titles)]
    pages = paginate(prs, commits)
    assert [pr for p in pages for pr in p.pull_requests] == prs
    by_repository: dict[str, list[str]] = {}
    for repository, sha in commits:
        by_repository.setdefault(repository, []).append(sha)
    assert [(p.commits_repository, s) for p in pages for s in p.commits] == [
        (r, s) for r, shas in by_repository.items() for s in shas
    ]
    for number, page in enumerate(pages):
        budget = FIRST_PAGE_BYTES if number == 0 else PAGE_BYTES
        assert page.pull_requests or page.commits or len(pages) == 1
        if len(page.pull_requests) + len(page.commits) > 1:
            assert page_bytes(page.pull_requests, page.commits) <= budget + 64


def test_a_shipment_of_any_size_has_a_small_first_page() -> None:
    prs = [summary(n, "x" * 500) for n in range(1, 1001)]
    commits = [("acme/shop", f"{n:040x}") for n in range(5000)]
    pages = paginate(prs, commits)
    assert page_bytes(pages[0].pull_requests, pages[0].commits) <= FIRST_PAGE_BYTES
    assert max(page_bytes(p.pull_requests, p.commits) for p in pages) <= PAGE_BYTES
    assert sum(len(p.pull_requests) for p in pages) == 1000
    assert sum(len(p.commits) for p in pages) == 5000


def test_nothing_shipped_is_one_empty_page() -> None:
    (page,) = paginate([], [])
    assert (page.pull_requests, page.commits, page.commits_repository) == ([], [], None)


def test_the_changes_cursor_round_trips_and_refuses_anything_else() -> None:
    assert decode_changes_cursor(encode_changes_cursor("01HQ7ZK3", 3)) == ("01HQ7ZK3", 3)
    forged = [
        "",
        "%%%",
        encode_changes_cursor("01HQ7ZK3", 3)[:-2],
        encode_changes_cursor("a#b", 1),
        encode_changes_cursor("01HQ7ZK3", 0),
        encode_changes_cursor("01HQ7ZK3", 10_000),
    ]
    forged.append(base64.urlsafe_b64encode(json.dumps({"d": "x", "p": True}).encode()).decode())
    forged.append(base64.urlsafe_b64encode(json.dumps(["x", 1]).encode()).decode())
    for cursor in forged:
        with pytest.raises(RequestInvalidError):
            decode_changes_cursor(cursor)


@given(st.text(max_size=300))
def test_arbitrary_changes_cursors_never_raise_anything_but_a_400(cursor: str) -> None:
    with contextlib.suppress(RequestInvalidError):
        decode_changes_cursor(cursor)


def test_the_outbox_and_pages_live_in_the_deployments_space_and_partition() -> None:
    deployment = keys.deployment("Spaces-1", "d1")
    outbox = keys.attribution_outbox("Spaces-1", "d1")
    page = keys.attribution_page("Spaces-1", "d1", "01HQ", 2)
    assert outbox[keys.PK] == page[keys.PK] == deployment[keys.PK]
    assert len({deployment[keys.SK], outbox[keys.SK], page[keys.SK]}) == 3
    due = keys.attribution_outbox_indexes("Spaces-1", "d1", "2024-03-01T12:05:00.000Z")
    assert due[keys.GSI1PK].startswith("S#Spaces-1#")
    low, high = keys.attribution_due_range("2024-03-01T12:05:00.000Z")
    assert low <= due[keys.GSI1SK] <= high
    assert not low <= due[keys.GSI1SK] <= keys.attribution_due_range("2024-03-01T12:04:59.999Z")[1]


def test_the_code_counts_dead_letters_at_the_queues_own_redrive_count_and_an_alarm_watches_the_dlq() -> None:
    from dora_insights.logic.attribution_retry import MAX_RECEIVES, dead_letters

    queue = resources("AWS::SQS::Queue")["RetryQueue"]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == MAX_RECEIVES
    assert not dead_letters(MAX_RECEIVES - 1) and dead_letters(MAX_RECEIVES)
    alarm = resources("AWS::CloudWatch::Alarm")["RetryDeadLetterAlarm"]["Properties"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["RetryDeadLetterQueue", "QueueName"]}}
    ]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
