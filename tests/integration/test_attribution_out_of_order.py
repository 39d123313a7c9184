"""A deployment arriving after a later-finished one of its stream (METRICS §1: a stream is ordered by
``CompletedTime``; §5: a deployment ships the changes after its previous successful deployment, and a change
is deployed to a stream once a successful deployment in that stream has shipped it).

The later deployment was attributed without the earlier one, so it shipped the earlier one's changes too.
When the earlier one arrives (or its attribution becomes final), the later one's attribution is undone and
both are attributed again in stream order: the earlier ships its own range, the later only the rest. Through
every write path: the native single create (in the deployment's own transaction), the native batch (within
one batch and against stored deployments), Datadog, and a retry that resolves a pending late arrival."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import boto3
import pytest

from tests.conftest import ADMIN_KEY, Api, Aws, Clock
from tests.support.code import REPO, commit, deploy, send_changes, sha
from tests.support.events import load_event
from tests.support.lambdas import invoke
from tests.support.native import attribution_of, read_deployment
from tests.support.recompute import scheduled_run
from tests.support.table import count_calls

SP = {"spaceId": "Spaces-1"}
WRITES = {"transact_write_items", "batch_write_item", "put_item", "update_item", "delete_item"}


def shipped(api: Api, deployment_id: str) -> list[str]:
    attribution = attribution_of(api, deployment_id)
    assert attribution["state"] == "Resolved", attribution
    return sorted(attribution["commits"])


def drain(aws: Aws, lambda_context: Any) -> int:
    """Deliver every retry message visible now to the retry function (deleted once handled); how many."""
    sqs, template, delivered = boto3.client("sqs"), load_event("AttributionRetryFunction.json")["Records"][0], 0
    while messages := sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages", []):
        records = [
            {**template, "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]}
            for m in messages
        ]
        assert invoke("AttributionRetryFunction", {"Records": records}, lambda_context) == {"batchItemFailures": []}
        for message in messages:
            sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
        delivered += len(messages)
    return delivered


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """DynamoDB calls of the table adapter from now on, by operation."""
    return count_calls(monkeypatch)


# --- the native single create -------------------------------------------------------------------------


def test_an_out_of_order_deployment_ships_its_own_range_and_the_later_one_keeps_only_the_rest(
    api: Api, clock: Clock
) -> None:
    """METRICS §5 rule 3: a deployment ships "the commits on the branch between S's previous successful
    deployment's sha (exclusive) and commit_sha (inclusive)"; §1: a stream is ordered by CompletedTime.
    D2 (finished 12:00, sha 4) arrives before D1 (finished 11:00, sha 2): once D1 is known it is D2's
    previous successful deployment, so D1 ships sha 2 and D2 ships only shas 3 and 4."""
    send_changes(api, commits=[commit(n, n) for n in range(1, 5)])  # sha(1)..sha(4) at 01:00..04:00
    d0 = deploy(api, "2024-03-01T10:00:00Z", commit_sha=sha(1))
    d2 = deploy(api, "2024-03-01T12:00:00Z", commit_sha=sha(4))
    d1 = deploy(api, "2024-03-01T11:00:00Z", commit_sha=sha(2))
    assert attribution_of(api, d0)["commits"] == [sha(1)]
    first = attribution_of(api, d1)
    second = attribution_of(api, d2)
    assert first["state"] == "Resolved", first
    assert sorted(first["commits"]) == [sha(2)], "D1 shipped sha 2 first (it finished before D2)"
    assert sorted(second["commits"]) == sorted([sha(3), sha(4)]), "D2 must not keep D1's change"


def test_the_later_deployments_figures_follow_at_the_next_recompute(
    api: Api, clock: Clock, lambda_context: Any
) -> None:
    """The write marks the stream dirty: the recompute gives D2 the lead time of what it now ships (from
    sha 3, 03:00) and D1 as its previous success; D1 its own (from sha 2, 02:00)."""
    send_changes(api, commits=[commit(n, n) for n in range(1, 5)])
    deploy(api, "2024-03-01T10:00:00Z", commit_sha=sha(1))
    d2 = deploy(api, "2024-03-01T12:00:00Z", commit_sha=sha(4))
    scheduled_run(lambda_context)
    assert read_deployment(api, d2)["figures"]["lead_time_seconds"] == 10 * 3600  # from sha 2, before D1
    d1 = deploy(api, "2024-03-01T11:00:00Z", commit_sha=sha(2))
    scheduled_run(lambda_context)
    later, earlier = read_deployment(api, d2)["figures"], read_deployment(api, d1)["figures"]
    assert (later["lead_time_seconds"], later["lead_time_source"]) == (9 * 3600, "Commits")
    assert later["previous_success_id"] == d1
    assert earlier["lead_time_seconds"] == 9 * 3600


def test_only_the_next_attributed_deployment_is_attributed_again(api: Api, clock: Clock) -> None:
    """D3 shipped from D2's sha on: D1's arrival leaves it as it was; D2 hands sha 2 over."""
    send_changes(api, commits=[commit(n, n) for n in range(1, 7)])
    deploy(api, "2024-03-01T10:00:00Z", commit_sha=sha(1))
    d2 = deploy(api, "2024-03-01T12:00:00Z", commit_sha=sha(4))
    d3 = deploy(api, "2024-03-01T13:00:00Z", commit_sha=sha(6))
    before = attribution_of(api, d3)
    d1 = deploy(api, "2024-03-01T11:00:00Z", commit_sha=sha(2))
    assert (shipped(api, d1), shipped(api, d2)) == ([sha(2)], [sha(3), sha(4)])
    assert attribution_of(api, d3) == before


def test_an_in_order_deployment_is_still_one_write_and_an_out_of_order_one_writes_the_hand_over_with_it(
    api: Api, clock: Clock, calls: Counter[str], store: Any
) -> None:
    """The newest deployment of its stream: one transaction (the later-deployment check is one Query of the
    stream's index, answering nothing). An earlier one: its create holds the hand-over (its outbox item, the
    later one's placeholder and outbox item); then its attempt (undoing the later one's attribution first)
    and the later one's attempt each write as any attempt does."""
    send_changes(api, commits=[commit(n, n) for n in range(1, 5)])
    deploy(api, "2024-03-01T10:00:00Z", commit_sha=sha(1))
    calls.clear()
    d2 = deploy(api, "2024-03-01T12:00:00Z", commit_sha=sha(4))
    assert {k: n for k, n in calls.items() if k in WRITES} == {"transact_write_items": 1}
    calls.clear()
    d1 = deploy(api, "2024-03-01T11:00:00Z", commit_sha=sha(2))
    writes = {k: n for k, n in calls.items() if k in WRITES}
    assert writes["transact_write_items"] == 3, writes  # the create, D1's final, D2's final
    assert (shipped(api, d1), shipped(api, d2)) == ([sha(2)], [sha(3), sha(4)])
    from dora_insights.dal import keys

    for done in (d1, d2):  # nothing is left for the sweep
        assert store.get(keys.attribution_outbox("Spaces-1", done), consistent=True) is None


# --- a retry that resolves a late arrival ------------------------------------------------------------


def test_a_late_deployment_pending_for_its_commit_takes_its_range_back_once_it_resolves(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """D1 arrives after D2 with a sha not pushed yet: Pending (D2 keeps its shipment meanwhile). The push
    wakes it; its attempt finds D2 attributed without it and both are attributed again in order."""
    send_changes(api, commits=[commit(1, 1), commit(3, 3), commit(4, 4)])
    deploy(api, "2024-03-01T10:00:00Z", commit_sha=sha(1))
    d2 = deploy(api, "2024-03-01T12:00:00Z", commit_sha=sha(4))
    assert shipped(api, d2) == [sha(3), sha(4)]
    d1 = deploy(api, "2024-03-01T11:00:00Z", commit_sha=sha(9))
    assert attribution_of(api, d1)["state"] == "Pending"
    send_changes(api, commits=[commit(9, 5)])  # sha 9 lands on main after 4: `git log 1..9` holds 3, 4, 9
    drain(aws, lambda_context)
    assert shipped(api, d1) == [sha(3), sha(4), sha(9)]
    assert attribution_of(api, d2)["commits"] == []  # `git log 9..4` is empty


# --- the native batch --------------------------------------------------------------------------------


def batch(api: Api, *items: Mapping[str, Any]) -> list[str]:
    body = {"deployments": [{"project": "shop", "environment": "production", "repository": REPO, **i} for i in items]}
    result = api.call("POST", "/api/{spaceId}/deployments/batch", path_params=SP, body=body, key=ADMIN_KEY)
    assert result.status == 200, result.body
    return [str(r["deployment"]["id"]) for r in result.body["results"]]


def test_a_batch_whose_items_are_out_of_order_ships_each_range_in_stream_order(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    send_changes(api, commits=[commit(n, n) for n in range(1, 5)])
    deploy(api, "2024-03-01T10:00:00Z", commit_sha=sha(1))
    d2, d1 = batch(
        api,
        {"finished_at": "2024-03-01T12:00:00Z", "commit_sha": sha(4)},
        {"finished_at": "2024-03-01T11:00:00Z", "commit_sha": sha(2)},
    )
    drain(aws, lambda_context)
    assert (shipped(api, d1), shipped(api, d2)) == ([sha(2)], [sha(3), sha(4)])


def test_a_batch_item_earlier_than_a_stored_attributed_deployment_takes_its_range_back(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    send_changes(api, commits=[commit(n, n) for n in range(1, 5)])
    deploy(api, "2024-03-01T10:00:00Z", commit_sha=sha(1))
    d2 = deploy(api, "2024-03-01T12:00:00Z", commit_sha=sha(4))
    assert shipped(api, d2) == [sha(2), sha(3), sha(4)]
    (d1,) = batch(api, {"finished_at": "2024-03-01T11:00:00Z", "commit_sha": sha(2)})
    drain(aws, lambda_context)
    assert (shipped(api, d1), shipped(api, d2)) == ([sha(2)], [sha(3), sha(4)])


# --- Datadog (the same ingest path) ------------------------------------------------------------------


def test_a_datadog_deployment_arriving_out_of_order_ships_its_own_range(api: Api, clock: Clock) -> None:
    def datadog(hour: int, n: int) -> str:
        finished = 1_709_251_200 + hour * 3600  # 2024-03-01T00:00:00Z + hour
        attributes = {
            "service": "shop",
            "env": "production",
            "started_at": (finished - 60) * 10**9,
            "finished_at": finished * 10**9,
            "git": {"commit_sha": sha(n), "repository_url": f"https://github.com/{REPO}"},
        }
        body = {"data": {"attributes": attributes}}
        result = api.call("POST", "/api/v2/dora/deployment", body=body, headers={"DD-API-KEY": ADMIN_KEY})
        assert result.status == 200, result.body
        return str(result.body["data"]["id"])

    send_changes(api, commits=[commit(n, n) for n in range(1, 5)])
    datadog(10, 1)
    d2 = datadog(12, 4)
    d1 = datadog(11, 2)
    assert (shipped(api, d1), shipped(api, d2)) == ([sha(2)], [sha(3), sha(4)])
