"""Attribution cannot be lost (issue 14, item 1): each fault is injected and the end state shown.

- the function dies right after the deployment's transaction: the client's retry attributes it, and
  so does the recompute's sweep on its own;
- the function dies right after the write that saves Resolved, or right before it once a large
  shipment's ledger entries are written: the redelivered message leaves it attributed once with the
  stream's ledger right;
- a DX upsert re-attributes the deployment and undoes what its old version recorded;
- a shipment of 500 long-titled pull requests and 5,000 commits is stored in pages: no item over
  400 KB, and the GET lists every change through ``attribution.next_cursor``;
- a message that dies in the DLQ is counted, and the sweep brings the attribution back anyway.

Faults are injected at the table adapter (``Store.call``), where a crashed Lambda stops: the
``SystemExit`` goes through every ``except Exception`` as the end of a process would.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.conftest import ADMIN_KEY, Api, Aws, Clock, HttpResult
from tests.support.emf import emitted_metrics
from tests.support.events import load_event
from tests.support.lambdas import invoke
from tests.support.native import attribution_of, create_deployment, get_deployment
from tests.support.recompute import scheduled_run

SP = {"spaceId": "Spaces-1"}
NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
REPO = "acme/shop"
MAX_ITEM_BYTES = 400 * 1024


def sha(n: int) -> str:
    """Commit ``n``'s sha (distinct from its first characters, as real ones are)."""
    return hashlib.sha1(f"commit {n}".encode(), usedforsecurity=False).hexdigest()


# --- faults --------------------------------------------------------------------------------------


Predicate = Callable[[str, Mapping[str, Any]], bool]


def kill(monkeypatch: pytest.MonkeyPatch, *, before: Predicate | None = None, after: Predicate | None = None) -> None:
    """The function dies once, right before or right after the first DynamoDB call matching."""
    from dora_insights.dal.store import Store

    original = Store.call
    armed = [True]

    def call(self: Store, operation: str, **kwargs: Any) -> Any:
        if armed[0] and before is not None and before(operation, kwargs):
            armed[0] = False
            raise SystemExit("killed before the write")
        result = original(self, operation, **kwargs)
        if armed[0] and after is not None and after(operation, kwargs):
            armed[0] = False
            raise SystemExit("killed after the write")
        return result

    monkeypatch.setattr(Store, "call", call)


def _writes(operation: str, kwargs: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    if operation == "transact_write_items":
        for op in kwargs["TransactItems"]:
            yield from op.values()
    elif operation in ("put_item", "update_item"):
        yield kwargs


def writes_deployment(operation: str, kwargs: Mapping[str, Any]) -> bool:
    """The transaction that creates a deployment."""
    return any(w.get("Item", {}).get("type", {}).get("S") == "Deployment" for w in _writes(operation, kwargs))


def written_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ingest writes the deployment before attributing it, as it does when its attribution cannot go
    in the deployment's own transaction (a read failed, the shipment is too large, a mark moved): the
    window these faults hit. (Otherwise there is none: ``test_a_function_killed_after_the_one_write``.)"""
    from dora_insights.logic import attribution

    monkeypatch.setattr(attribution, "create_attributed", lambda *_, **__: None)


def saves_state(state: str) -> Predicate:
    """A write that stores an attribution in ``state`` on a deployment."""

    def matches(operation: str, kwargs: Mapping[str, Any]) -> bool:
        for write in _writes(operation, kwargs):
            for value in (write.get("ExpressionAttributeValues") or {}).values():
                if value.get("M", {}).get("state", {}).get("S") == state:
                    return True
        return False

    return matches


# --- helpers -------------------------------------------------------------------------------------


def deploy(api: Api, *, expect: int = 201, finished_at: str = "2024-03-01T11:00:00Z", **fields: Any) -> dict[str, Any]:
    return create_deployment(api, expect=expect, finished_at=finished_at, **fields)


def get(api: Api, deployment_id: str, cursor: str | None = None) -> HttpResult:
    query = {"attribution_cursor": cursor} if cursor is not None else None
    return get_deployment(api, deployment_id, query=query)


def every_change(api: Api, deployment_id: str) -> tuple[list[dict[str, Any]], list[str], int]:
    """Every pull request and commit a deployment shipped, following ``next_cursor``; and the pages read."""
    attribution = attribution_of(api, deployment_id)
    prs, commits, pages = list(attribution["pull_requests"]), list(attribution["commits"]), 1
    while attribution["next_cursor"] is not None:
        page = get(api, deployment_id, attribution["next_cursor"])
        assert page.status == 200, page.body
        attribution = page.body["attribution"]
        prs += attribution["pull_requests"]
        commits += attribution["commits"]
        pages += 1
    return prs, commits, pages


def push(store: Any, shas: list[str], start: datetime) -> None:
    """Commits pushed to main in this order, a second apart (the changes API's logic, as a webhook would)."""
    from dora_insights.domain.times import format_instant
    from dora_insights.logic import code

    commits = [code.CommitIn(sha=s, timestamp=format_instant(start + timedelta(seconds=k))) for k, s in enumerate(shas)]
    code.record_push(store, "Spaces-1", code.BranchPush(REPO, "main", commits, "main"), NOW)


def store_commits(store: Any, shas: list[str], start: datetime) -> None:
    """Commits stored on main as a push stores them, without waking anyone: a push wakes the
    deployments waiting for each of its shas with a Query per sha, minutes for 5,000 in moto."""
    from dora_insights.dal.code import CodeStore
    from dora_insights.domain.changes import Commit
    from dora_insights.domain.times import format_instant

    code = CodeStore(store, "Spaces-1")
    code.remember_repository(REPO, "main", format_instant(NOW))
    first = code.allocate_positions(REPO, "main", len(shas))
    code.put_commits(
        [
            Commit(
                repository=REPO,
                sha=s,
                timestamp=format_instant(start + timedelta(seconds=k)),
                branch="main",
                position=first + k,
            )
            for k, s in enumerate(shas)
        ]
    )


def stream_of(deployment: Mapping[str, Any]) -> str:
    from dora_insights.domain.model import stream_key

    return stream_key(
        deployment["project_id"], deployment["channel_id"], deployment["environment_id"], deployment["tenant_id"]
    )


def ledger(store: Any, stream: str) -> dict[str, str]:
    """The stream's ledger: change id -> the deployment that shipped it; the commits of a branch range
    (pattern 108, one entry for the range) each named as the range stands for them."""
    from dora_insights.dal import keys
    from dora_insights.dal.code import CodeStore
    from dora_insights.domain.changes import commit_change_id

    partition = keys.ledger_pk("Spaces-1", stream)
    shipped = {
        str(i["change_id"]): str(i["deployment_id"]) for i in store.query_all(partition=partition, sort_prefix="C#")
    }
    code = CodeStore(store, "Spaces-1")
    for span in store.query_all(partition=partition, sort_prefix="R#"):
        after, up_to = int(span["after"]), int(span["up_to"])
        commits = code.commits_in_range(span["repository"], span["branch"], after, up_to, 10**6)
        for commit in commits:
            if commit.sha not in set(span.get("skipped") or ()):
                shipped[commit_change_id(commit.repository, commit.sha)] = str(span["deployment_id"])
    return shipped


def outbox_of(store: Any, deployment_id: str) -> dict[str, Any] | None:
    from dora_insights.dal import keys

    return store.get(keys.attribution_outbox("Spaces-1", deployment_id), consistent=True)  # type: ignore[no-any-return]


def receive(aws: Aws) -> list[dict[str, Any]]:
    """Messages visible now, as the SQS event the queue's function would get."""
    messages = boto3.client("sqs").receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    template = load_event("AttributionRetryFunction.json")["Records"][0]
    return [
        {**template, "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]}
        for m in messages
    ]


def deliver(records: list[dict[str, Any]], lambda_context: Any) -> dict[str, Any]:
    return invoke("AttributionRetryFunction", {"Records": records}, lambda_context)  # type: ignore[no-any-return]


def drain(aws: Aws, lambda_context: Any) -> int:
    """Deliver every message visible now (and deleted once handled) until none is left; how many."""
    sqs, delivered = boto3.client("sqs"), 0
    while records := receive(aws):
        assert deliver(records, lambda_context) == {"batchItemFailures": []}
        for record in records:
            sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=record["receiptHandle"])
        delivered += len(records)
    return delivered


def visible(aws: Aws) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=aws.queue_url, AttributeNames=["All"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def recompute(lambda_context: Any) -> dict[str, Any]:
    return scheduled_run(lambda_context)


def item_sizes(store: Any, deployment_id: str) -> dict[str, int]:
    """The items a deployment's attribution keeps beside it (pattern 9, 104, 106) by type: the largest
    size as DynamoDB counts it. (Ledger and pending-index items are a few fixed attributes each.)"""
    from dora_insights.dal import aws as dal_aws
    from dora_insights.dal import keys, limits

    largest: dict[str, int] = {}
    for item in store.query_all(partition=keys.deployment_pk("Spaces-1", deployment_id)):
        size = limits.item_size(dal_aws.serialize(item))
        largest[item["type"]] = max(largest.get(item["type"], 0), size)
    return largest


# --- a crash between the deployment's transaction and its attribution ---------------------------


def test_a_function_killed_after_writing_the_deployment_is_attributed_by_the_clients_retry(
    api: Api, aws: Aws, store: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    push(store, [sha(0), sha(1)], NOW - timedelta(hours=3))
    body = {"id": "deploy-1", "repository": REPO, "commit_sha": sha(1)}
    written_first(monkeypatch)
    kill(monkeypatch, after=writes_deployment)
    with pytest.raises(SystemExit):
        deploy(api, **body)
    assert get(api, "deploy-1").body["attribution"] is None  # stored, never attributed, nothing queued
    assert visible(aws) == 0
    deploy(api, expect=200, **body)  # the client's retry: the same deployment
    attribution = attribution_of(api, "deploy-1")
    assert (attribution["state"], attribution["commits"], attribution["attempts"]) == ("Resolved", [sha(1)], 1)
    stream = stream_of(get(api, "deploy-1").body)
    assert ledger(store, stream) == {f"commit:{REPO}:{sha(1)}": "deploy-1"}
    assert outbox_of(store, "deploy-1") is None


def test_a_function_killed_after_the_one_write_leaves_the_deployment_attributed_and_nothing_owed(
    api: Api, aws: Aws, store: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    push(store, [sha(0), sha(1)], NOW - timedelta(hours=3))
    kill(monkeypatch, after=writes_deployment)  # the deployment's transaction holds its attribution
    with pytest.raises(SystemExit):
        deploy(api, id="deploy-1", repository=REPO, commit_sha=sha(1))
    attribution = attribution_of(api, "deploy-1")
    assert (attribution["state"], attribution["commits"], attribution["attempts"]) == ("Resolved", [sha(1)], 1)
    assert ledger(store, stream_of(get(api, "deploy-1").body)) == {f"commit:{REPO}:{sha(1)}": "deploy-1"}
    assert (outbox_of(store, "deploy-1"), visible(aws)) == (None, 0)


def test_a_function_killed_after_writing_the_deployment_is_attributed_by_the_recompute_sweep(
    api: Api, aws: Aws, store: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    push(store, [sha(0), sha(1)], NOW - timedelta(hours=3))
    written_first(monkeypatch)
    kill(monkeypatch, after=writes_deployment)
    with pytest.raises(SystemExit):
        deploy(api, id="deploy-1", repository=REPO, commit_sha=sha(1))
    clock.now = NOW + timedelta(minutes=1)
    recompute(lambda_context)
    assert visible(aws) == 0  # not due yet: the ingest may still be attributing it
    clock.now = NOW + timedelta(minutes=6)
    summary = recompute(lambda_context)
    assert summary["attributions_redriven"] == 1
    assert drain(aws, lambda_context) == 1
    attribution = attribution_of(api, "deploy-1")
    assert (attribution["state"], attribution["commits"]) == ("Resolved", [sha(1)])
    assert ledger(store, stream_of(get(api, "deploy-1").body)) == {f"commit:{REPO}:{sha(1)}": "deploy-1"}
    assert outbox_of(store, "deploy-1") is None
    clock.now = NOW + timedelta(hours=1)
    assert recompute(lambda_context)["attributions_redriven"] == 0  # nothing owed any more


def test_a_pending_attribution_whose_messages_died_is_redriven_by_the_sweep_after_its_lease(
    api: Api, aws: Aws, store: Any, clock: Clock, lambda_context: Any
) -> None:
    deploy(api, id="deploy-1", repository=REPO, commit_sha=sha(1))  # pending: a delayed message
    push(store, [sha(0), sha(1)], NOW - timedelta(hours=3))  # and a wake-up
    boto3.client("sqs").purge_queue(QueueUrl=aws.queue_url)  # both lost (say the DLQ took them)
    clock.now = NOW + timedelta(minutes=6)
    assert recompute(lambda_context)["attributions_redriven"] == 0  # leased past its retry's delay
    clock.now = NOW + timedelta(minutes=20)
    assert recompute(lambda_context)["attributions_redriven"] == 1
    drain(aws, lambda_context)
    assert attribution_of(api, "deploy-1")["state"] == "Resolved"


# --- a crash between the Resolved attribution and the stream's ledger ----------------------------


def test_a_function_killed_right_after_saving_resolved_leaves_the_ledger_written(
    api: Api, aws: Aws, store: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    push(store, [sha(0)], NOW - timedelta(hours=5))
    deploy(api, id="d0", repository=REPO, commit_sha=sha(0), finished_at="2024-03-01T09:00:00Z")
    deploy(api, id="d1", repository=REPO, commit_sha=sha(3), finished_at="2024-03-01T11:00:00Z")
    assert attribution_of(api, "d1")["state"] == "Pending"
    push(store, [sha(1), sha(2), sha(3)], NOW - timedelta(hours=4))  # wakes d1: a message due now
    records = receive(aws)
    assert len(records) == 1
    kill(monkeypatch, after=saves_state("Resolved"))
    with pytest.raises(SystemExit):
        deliver(records, lambda_context)
    assert deliver(records, lambda_context) == {"batchItemFailures": []}  # the redelivery
    attribution = attribution_of(api, "d1")
    assert attribution["state"] == "Resolved"
    assert attribution["attempts"] == 2  # attributed once: the redelivery found it final
    assert sorted(attribution["commits"]) == sorted([sha(1), sha(2), sha(3)])
    assert ledger(store, stream_of(get(api, "d1").body)) == {
        f"commit:{REPO}:{sha(0)}": "d0",
        **{f"commit:{REPO}:{sha(n)}": "d1" for n in (1, 2, 3)},
    }


def test_a_function_killed_between_a_large_shipments_ledger_and_its_attribution_ships_it_once(
    api: Api, aws: Aws, store: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    push(store, [sha(0)], NOW - timedelta(hours=5))
    deploy(api, id="d0", repository=REPO, commit_sha=sha(0), finished_at="2024-03-01T09:00:00Z")
    deploy(api, id="d1", repository=REPO, commit_sha=sha(150), finished_at="2024-03-01T11:00:00Z")
    push(store, [sha(n) for n in range(1, 151)], NOW - timedelta(hours=4))
    records = receive(aws)
    kill(monkeypatch, before=saves_state("Resolved"))  # the 150 commits: one range entry, in its transaction
    with pytest.raises(SystemExit):
        deliver(records, lambda_context)
    stream = stream_of(get(api, "d1").body)
    assert attribution_of(api, "d1")["state"] == "Pending"
    assert deliver(records, lambda_context) == {"batchItemFailures": []}  # the redelivery
    attribution = attribution_of(api, "d1")
    assert (attribution["state"], attribution["commit_count"]) == ("Resolved", 150)
    assert ledger(store, stream) == {
        f"commit:{REPO}:{sha(0)}": "d0",
        **{f"commit:{REPO}:{sha(n)}": "d1" for n in range(1, 151)},
    }
    _, commits, _ = every_change(api, "d1")
    assert sorted(commits) == sorted(sha(n) for n in range(1, 151))


# --- DX upsert ------------------------------------------------------------------------------------


def dx(api: Api, route: str, reference_id: str, commit: str, deployed_at: datetime) -> dict[str, Any]:
    body = {
        "reference_id": reference_id,
        "deployed_at": int(deployed_at.timestamp()),
        "service": "shop",
        "commit_sha": commit,
        "repository": REPO,
    }
    result = api.call("POST", f"/api/deployments.{route}", body=body, key=ADMIN_KEY)
    assert result.status == 200, result.body
    return result.body["deployment"]  # type: ignore[no-any-return]


def test_a_dx_upsert_attributes_the_new_version_and_undoes_the_old_ones_ledger(
    api: Api, store: Any, clock: Clock
) -> None:
    push(store, [sha(n) for n in range(5)], NOW - timedelta(hours=6))
    pull = {
        "repository": REPO,
        "number": 7,
        "title": "Checkout",
        "base_ref": "main",
        "merge_commit_sha": sha(3),
        "created_at": "2024-03-01T05:00:00Z",
        "merged_at": "2024-03-01T06:00:03Z",
    }
    changes = api.call("POST", "/api/{spaceId}/changes", path_params=SP, body={"pull_requests": [pull]}, key=ADMIN_KEY)
    assert changes.status == 200, changes.body
    d0 = dx(api, "create", "r0", sha(0), NOW - timedelta(hours=3))
    d1 = dx(api, "upsert", "r1", sha(4), NOW - timedelta(hours=2))
    first = attribution_of(api, d1["id"])
    assert [pr["number"] for pr in first["pull_requests"]] == [7]
    assert sorted(first["commits"]) == sorted(sha(n) for n in (1, 2, 3, 4))

    replaced = dx(api, "upsert", "r1", sha(2), NOW - timedelta(hours=2))
    assert replaced["id"] == d1["id"]
    again = attribution_of(api, d1["id"])
    assert (again["state"], again["pull_requests"]) == ("Resolved", [])
    assert sorted(again["commits"]) == sorted([sha(1), sha(2)])
    stream = stream_of(get(api, d1["id"]).body)
    assert ledger(store, stream) == {
        f"commit:{REPO}:{sha(0)}": d0["id"],
        f"commit:{REPO}:{sha(1)}": d1["id"],
        f"commit:{REPO}:{sha(2)}": d1["id"],
    }
    # What the old version shipped is free again: the next deployment ships it.
    d2 = dx(api, "create", "r2", sha(4), NOW - timedelta(hours=1))
    later = attribution_of(api, d2["id"])
    assert [pr["number"] for pr in later["pull_requests"]] == [7]
    assert sorted(later["commits"]) == sorted([sha(3), sha(4)])


def test_a_dx_upsert_of_a_pending_deployment_drops_what_the_old_version_waited_for(
    api: Api, store: Any, clock: Clock
) -> None:
    from dora_insights.dal.attribution import AttributionStore

    push(store, [sha(0)], NOW - timedelta(hours=6))
    unknown = "feedfacefeedfacefeedfacefeedfacefeedface"
    d1 = dx(api, "upsert", "r1", unknown, NOW - timedelta(hours=2))
    assert attribution_of(api, d1["id"])["state"] == "Pending"
    waiting = AttributionStore(store, "Spaces-1")
    assert waiting.waiting_for([unknown[:7]], [REPO]) == {d1["id"]}
    dx(api, "upsert", "r1", sha(0), NOW - timedelta(hours=2))
    assert attribution_of(api, d1["id"])["state"] == "Resolved"
    assert waiting.waiting_for([unknown[:7]], [REPO]) == set()


def test_a_dx_upsert_of_a_large_shipment_undoes_it_through_the_outbox(
    api: Api, aws: Aws, store: Any, clock: Clock
) -> None:
    push(store, [sha(n) for n in range(301)], NOW - timedelta(hours=6))
    d0 = dx(api, "create", "r0", sha(0), NOW - timedelta(hours=3))
    d1 = dx(api, "upsert", "r1", sha(300), NOW - timedelta(hours=2))
    before = attribution_of(api, d1["id"])
    assert (before["commit_count"], before["next_cursor"] is not None) == (300, True)  # in pages

    dx(api, "upsert", "r1", sha(100), NOW - timedelta(hours=2))
    after = attribution_of(api, d1["id"])
    assert (after["state"], after["commit_count"]) == ("Resolved", 100)
    stream = stream_of(get(api, d1["id"]).body)
    assert ledger(store, stream) == {
        f"commit:{REPO}:{sha(0)}": d0["id"],
        **{f"commit:{REPO}:{sha(n)}": d1["id"] for n in range(1, 101)},
    }
    assert outbox_of(store, d1["id"]) is None
    assert set(item_sizes(store, d1["id"])) == {"Deployment"}  # 100 commits fit on it: the old pages are gone
    d2 = dx(api, "create", "r2", sha(300), NOW - timedelta(hours=1))
    assert attribution_of(api, d2["id"])["commit_count"] == 200


# --- a shipment past DynamoDB's item limit --------------------------------------------------------


def pull_requests(aws: Aws, store: Any, titles: Mapping[int, str], start: datetime) -> None:
    """Pull request ``n`` merged by commit ``sha(n)`` ``n`` seconds after ``start``: the items the changes
    API stores, written in batches (moto copies the whole table for each transaction the API would use)."""
    from dora_insights.dal import aws as dal_aws
    from dora_insights.dal.code import CodeStore
    from dora_insights.domain.changes import PullRequest
    from dora_insights.domain.times import format_instant

    code = CodeStore(store, "Spaces-1")
    items = []
    for n, title in titles.items():
        merged = start + timedelta(seconds=n)
        pr = PullRequest(
            repository=REPO,
            number=n,
            title=title,
            base_ref="main",
            merge_commit_sha=sha(n),
            created_at=format_instant(merged - timedelta(hours=1)),
            merged_at=format_instant(merged),
        )
        items.append({"PutRequest": {"Item": dal_aws.serialize(code.pull_request_item(pr, version=1))}})
    for chunk in dal_aws.chunks(items, dal_aws.MAX_BATCH_WRITE):
        store.call("batch_write_item", RequestItems={aws.table_name: chunk})


def test_a_shipment_of_500_pull_requests_with_200_character_titles_is_stored_in_pages(
    api: Api, aws: Aws, store: Any, clock: Clock
) -> None:
    start = NOW - timedelta(hours=6)
    push(store, [sha(0)], start - timedelta(hours=1))
    deploy(api, id="d0", repository=REPO, commit_sha=sha(0), finished_at="2024-03-01T05:00:00Z")
    store_commits(store, [sha(n) for n in range(1, 501)], start)
    titles = {n: f"#{n:03d} 🚀 " + "📦" * 193 for n in range(1, 501)}
    assert {len(t) for t in titles.values()} == {200}
    pull_requests(aws, store, titles, start)
    deploy(api, id="d1", repository=REPO, commit_sha=sha(500))

    attribution = attribution_of(api, "d1")
    counts = (attribution["state"], attribution["pull_request_count"], attribution["commit_count"])
    assert counts == ("Resolved", 500, 500)
    prs, commits, pages = every_change(api, "d1")
    assert {pr["number"]: pr["title"] for pr in prs} == titles  # every one, once, in full
    assert len(prs) == 500
    assert sorted(commits) == sorted(sha(n) for n in range(1, 501))
    # As one attribution this is over DynamoDB's item limit; stored in pages, every item is well under.
    assert len(json.dumps(prs, ensure_ascii=False).encode()) > MAX_ITEM_BYTES
    sizes = item_sizes(store, "d1")
    assert max(sizes.values()) < MAX_ITEM_BYTES
    assert sizes["Deployment"] < 32 * 1024
    assert pages > 1 + MAX_ITEM_BYTES // (64 * 1024)


def test_a_push_of_5000_commits_is_stored_in_pages(api: Api, aws: Aws, store: Any, clock: Clock) -> None:
    store_commits(store, [sha(n) for n in range(5001)], NOW - timedelta(hours=6))
    deploy(api, id="d0", repository=REPO, commit_sha=sha(0), finished_at="2024-03-01T07:00:00Z")
    deploy(api, id="d1", repository=REPO, commit_sha=sha(5000))
    attribution = attribution_of(api, "d1")
    assert (attribution["state"], attribution["commit_count"], attribution["pull_request_count"]) == (
        "Resolved",
        5000,
        0,
    )
    _, commits, pages = every_change(api, "d1")
    assert commits == [sha(n) for n in range(1, 5001)]  # branch order, each once
    assert pages > 1
    sizes = item_sizes(store, "d1")
    assert max(sizes.values()) < MAX_ITEM_BYTES
    assert sizes["Deployment"] < 32 * 1024


def test_a_cursor_that_is_not_one_of_the_deployments_is_a_400(api: Api, store: Any, clock: Clock) -> None:
    from dora_insights.dialects.native import encode_changes_cursor

    push(store, [sha(n) for n in range(301)], NOW - timedelta(hours=6))
    deploy(api, id="d0", repository=REPO, commit_sha=sha(0), finished_at="2024-03-01T08:00:00Z")
    deploy(api, id="d1", repository=REPO, commit_sha=sha(300))
    cursor = attribution_of(api, "d1")["next_cursor"]
    assert get(api, "d1", cursor).status == 200
    for bad in ("not-a-cursor", encode_changes_cursor("01OTHERATTRIBUTION", 1), cursor + "x"):
        result = get(api, "d1", bad)
        assert result.status == 400, (bad, result.body)
    assert get(api, "d0", cursor).status == 400  # another deployment's


# --- the dead-letter queue -------------------------------------------------------------------------


def test_a_record_failing_its_last_receive_is_counted_as_dead_lettered(
    aws: Aws, space: str, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    record = load_event("AttributionRetryFunction.json")["Records"][0]
    poison = json.dumps({"space_id": "Spaces-1", "attempt": 3})  # names no deployment
    early = {**record, "messageId": "early", "body": poison}
    last = {**record, "messageId": "last", "body": poison, "attributes": {**record["attributes"]}}
    last["attributes"]["ApproximateReceiveCount"] = "5"
    capsys.readouterr()
    with pytest.raises(Exception):  # noqa: B017,PT011 - every record failed: Powertools fails the batch
        deliver([early, last], lambda_context)
    found = emitted_metrics(capsys.readouterr().out)
    assert found["AttributionRetryFailed"] == 2
    assert found["AttributionDeadLettered"] == 1


def test_an_attribution_that_gives_up_is_counted(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(api, id="deploy-1", repository=REPO, commit_sha=sha(1))
    clock.now = NOW + timedelta(days=3, seconds=1)
    body = json.dumps({"space_id": "Spaces-1", "deployment_id": "deploy-1", "attempt": 1})
    capsys.readouterr()
    deliver([{**load_event("AttributionRetryFunction.json")["Records"][0], "body": body}], lambda_context)
    assert emitted_metrics(capsys.readouterr().out).get("AttributionGaveUp") == 1
    assert attribution_of(api, "deploy-1")["state"] == "GaveUp"


# --- the sweep is bounded, and nothing is owed forever ---------------------------------------------


def test_the_sweep_redrives_a_bounded_batch_per_run(
    api: Api, aws: Aws, store: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.logic import attribution

    written_first(monkeypatch)
    for n in range(3):
        kill(monkeypatch, after=writes_deployment)
        with pytest.raises(SystemExit):
            deploy(api, id=f"deploy-{n}", repository=REPO, commit_sha=sha(n))
    later = NOW + timedelta(minutes=6)
    assert attribution.sweep(store, "Spaces-1", later, limit=2).redriven == 2
    assert attribution.sweep(store, "Spaces-1", later, limit=2).redriven == 1  # the first two are leased
    assert attribution.sweep(store, "Spaces-1", later, limit=2).redriven == 0
    assert visible(aws) == 3


def test_an_attribution_that_keeps_failing_is_closed_as_gave_up_after_four_days(
    api: Api, aws: Aws, store: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    from dora_insights.logic import attribution

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a bug in the engine")

    monkeypatch.setattr(attribution, "attribute", broken)
    deploy(api, id="deploy-1", repository=REPO, commit_sha=sha(1))
    assert get(api, "deploy-1").body["attribution"] is None
    clock.now = NOW + timedelta(days=2)
    assert recompute(lambda_context)["attributions_redriven"] == 1
    clock.now = NOW + timedelta(days=4, minutes=1)
    summary = recompute(lambda_context)
    assert summary["attributions_abandoned"] == 1
    attribution_now = attribution_of(api, "deploy-1")
    assert (attribution_now["state"], attribution_now["mode"]) == ("GaveUp", "Nothing")
    assert outbox_of(store, "deploy-1") is None


# --- a deployment that waited for the previous one leaves no pending-index entry behind -----------
def test_a_deployment_that_waited_for_the_previous_ones_attribution_leaves_no_pending_entry(
    api: Api, aws: Aws, store: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    from dora_insights.dal import keys

    push(store, [sha(0), sha(1), sha(2)], NOW - timedelta(hours=3))
    written_first(monkeypatch)
    kill(monkeypatch, after=writes_deployment)
    with pytest.raises(SystemExit):  # the first deployment is stored, its attribution never ran
        deploy(api, id="deploy-1", repository=REPO, commit_sha=sha(1), finished_at="2024-03-01T10:00:00Z")
    deploy(api, id="deploy-2", repository=REPO, commit_sha=sha(2))  # waits on deploy-1 (keyed by its sha)
    assert attribution_of(api, "deploy-2")["state"] == "Pending"
    deploy(api, expect=200, id="deploy-1", repository=REPO, commit_sha=sha(1), finished_at="2024-03-01T10:00:00Z")
    clock.now = NOW + timedelta(minutes=20)
    drain(aws, lambda_context)
    recompute(lambda_context)
    drain(aws, lambda_context)
    assert attribution_of(api, "deploy-2")["state"] == "Resolved"
    left = [
        item
        for item in boto3.client("dynamodb").scan(TableName=aws.table_name)["Items"]
        if item.get(keys.TYPE, {}).get("S") == keys.T_AWAITING
    ]
    assert left == []
