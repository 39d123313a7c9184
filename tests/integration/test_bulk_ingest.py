"""Bulk ingest (issue 17): the native batch and the DX backfill in few DynamoDB round trips, against moto.

The bulk write (``DeploymentStore.write_many``) reads what is stored in batches and writes in multi-item
transactions within DynamoDB's limits (``dal.limits`` refuses a transaction of more than 100 actions or
naming an item twice, as AWS does), answering each item as the one-by-one path did.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError

from dora_insights.dal import limits
from dora_insights.dal.store import Store
from dora_insights.domain.model import Deployment
from dora_insights.domain.records import NewDeployment, WriteOutcome
from dora_insights.errors import DoraError, ItemInvalidError, ItemTooLargeError, ResourceConflictError
from tests.conftest import ADMIN_KEY, Api, Aws, HttpResult

ROUTE = "/api/{spaceId}/deployments"
SP = {"spaceId": "Spaces-1"}
STAMP = "2024-03-01T12:00:00.000Z"


def _item(n: int, *, with_id: bool, code: bool = False) -> dict[str, Any]:
    item: dict[str, Any] = {
        "project": "shop",
        "environment": f"env-{n % 3}",
        "finished_at": 1709294400 + 60 * n,
        "version": f"1.0.{n}",
    }
    if with_id:
        item["id"] = f"d-{n}"
    if code:
        item |= {"repository": "acme/shop", "commit_sha": f"{n + 1:040x}"}
    return item


def _listed(api: Api) -> list[dict[str, Any]]:
    result = api.call("GET", ROUTE, path_params=SP, query={"limit": "500"}, key=ADMIN_KEY)
    assert result.status == 200, result.body
    return list(result.body["items"])


@pytest.fixture
def dynamodb_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every DynamoDB call the functions make from now on, by operation (``Store.call`` makes them all)."""
    calls: Counter[str] = Counter()
    call = Store.call

    def counting(self: Store, operation: str, **kwargs: Any) -> Any:
        calls["".join(part.title() for part in operation.split("_"))] += 1
        return call(self, operation, **kwargs)

    monkeypatch.setattr(Store, "call", counting)
    return calls


@pytest.fixture
def timeout_after(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``[n]``: the n-th transaction of the functions commits, then the call times out (as a Lambda
    that reaches its timeout, or a client that gives up, right after a write); set to 0 to stop."""
    left = [0]
    transact = Store.transact

    def timing_out(self: Store, operations: Any) -> None:
        transact(self, operations)
        if left[0]:
            left[0] -= 1
            if not left[0]:
                raise ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

    monkeypatch.setattr(Store, "transact", timing_out)
    return left


def _messages(aws: Aws) -> list[dict[str, Any]]:
    """The bodies of the retry messages waiting, received once each."""
    sqs = boto3.client("sqs")
    bodies: list[dict[str, Any]] = []
    while got := sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [json.loads(m["Body"]) for m in got]
        sqs.delete_message_batch(
            QueueUrl=aws.queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)],
        )
    return bodies


def _queued(aws: Aws) -> list[str]:
    """The deployment ids the retry messages waiting name (a bulk write's name a stream's few)."""
    return [d for body in _messages(aws) for d in body.get("deployment_ids") or [body["deployment_id"]]]


# --- through the API ------------------------------------------------------------------------------
def test_a_batch_retried_after_a_timeout_stores_nothing_twice(api: Api, aws: Aws, timeout_after: list[int]) -> None:
    items = [_item(n, with_id=n % 2 == 0, code=True) for n in range(150)]
    timeout_after[0] = 2  # the first request stores two transactions' worth, then times out
    with pytest.raises(ReadTimeoutError):
        api.call("POST", ROUTE + "/batch", path_params=SP, body={"deployments": items}, key=ADMIN_KEY)
    stored_first = len(_listed(api))
    assert 0 < stored_first < len(items)
    assert _queued(aws) == []  # the request died before deferring any attribution
    timeout_after[0] = 0
    retry = api.call("POST", ROUTE + "/batch", path_params=SP, body={"deployments": items}, key=ADMIN_KEY)
    assert retry.status == 200, retry.body
    statuses = Counter(r["status"] for r in retry.body["results"])
    assert statuses == {200: stored_first, 201: len(items) - stored_first}
    listed = _listed(api)
    assert len(listed) == len(items)
    assert sorted(d["version"] for d in listed) == sorted(i["version"] for i in items)
    # Every deployment is owed its attribution once: the ones stored by the first request too.
    queued = _queued(aws)
    assert sorted(queued) == sorted(d["id"] for d in listed)
    again = api.call("POST", ROUTE + "/batch", path_params=SP, body={"deployments": items}, key=ADMIN_KEY)
    assert (again.body["created"], again.body["failed"]) == (0, 0)
    assert [r["deployment"]["id"] for r in again.body["results"]] == [
        r["deployment"]["id"] for r in retry.body["results"]
    ]
    assert sorted(_queued(aws)) == sorted(queued)  # still owed (no worker ran): queued again, stored once
    assert len(_listed(api)) == len(items)


def test_identical_items_without_an_id_in_one_batch_are_each_stored_once(api: Api) -> None:
    twin = _item(1, with_id=False)
    body = {"deployments": [twin, twin, _item(2, with_id=False)]}
    first = api.call("POST", ROUTE + "/batch", path_params=SP, body=body, key=ADMIN_KEY)
    assert [r["status"] for r in first.body["results"]] == [201, 201, 201]
    ids = [r["deployment"]["id"] for r in first.body["results"]]
    assert len(set(ids)) == 3
    again = api.call("POST", ROUTE + "/batch", path_params=SP, body=body, key=ADMIN_KEY)
    assert [r["status"] for r in again.body["results"]] == [200, 200, 200]
    assert [r["deployment"]["id"] for r in again.body["results"]] == ids
    assert len(_listed(api)) == 3


def test_a_repeated_id_in_one_batch_answers_the_first_or_conflicts(api: Api) -> None:
    body = {
        "deployments": [
            _item(1, with_id=True),
            _item(1, with_id=True),
            _item(1, with_id=True) | {"version": "other"},
            _item(2, with_id=True),
        ]
    }
    result = api.call("POST", ROUTE + "/batch", path_params=SP, body=body, key=ADMIN_KEY)
    assert [r["status"] for r in result.body["results"]] == [201, 200, 409, 201]
    assert (result.body["created"], result.body["failed"]) == (2, 1)


def test_a_batch_costs_at_most_a_tenth_of_a_call_per_item(api: Api, aws: Aws, dynamodb_calls: Counter[str]) -> None:
    warm = {"deployments": [_item(n, with_id=True) for n in range(3)]}  # the catalogue is known: a warm function
    api.call("POST", ROUTE + "/batch", path_params=SP, body=warm, key=ADMIN_KEY)
    size = 200  # bench/batch.py measures 500
    for code in (False, True):
        dynamodb_calls.clear()
        items = [_item(1000 * (1 + code) + n, with_id=n % 2 == 0, code=code) for n in range(size)]
        result = api.call("POST", ROUTE + "/batch", path_params=SP, body={"deployments": items}, key=ADMIN_KEY)
        assert result.body["created"] == size, result.body
        assert sum(dynamodb_calls.values()) <= size // 10, dynamodb_calls
    # The attributions owed, deferred to the retry queue: one message per stream's few deployments.
    messages = _messages(aws)
    assert sorted(d for m in messages for d in m["deployment_ids"]) == sorted(
        r["deployment"]["id"] for r in result.body["results"]
    )
    assert len(messages) <= size // 10 + 5  # 5 streams (svc-0..4), RETRY_GROUP = 10 per message


def test_a_group_message_attempts_each_deployment_it_names_in_order(
    api: Api, aws: Aws, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry function attempts every deployment a group message names, in order; one that fails
    fails the record (to come back: the others' attempts are then no-ops), after the rest were tried."""
    from dora_insights.logic import attribution_retry
    from tests.support.events import load_event
    from tests.support.lambdas import invoke

    attempted: list[str] = []

    def retry(store: Any, space_id: str, deployment_id: str, attempt: int, now: Any, **_: Any) -> Any:
        attempted.append(deployment_id)
        if deployment_id == "D-2":
            raise RuntimeError("a failing attempt")
        return attribution_retry.Retried(None, None)

    monkeypatch.setattr(attribution_retry, "retry", retry)
    record = load_event("AttributionRetryFunction.json")["Records"][0]
    single = {**record, "messageId": "single", "body": json.dumps({"space_id": "Spaces-1", "deployment_id": "D-9"})}
    body = json.dumps({"space_id": "Spaces-1", "deployment_ids": ["D-1", "D-2", "D-3"]})
    result = invoke("AttributionRetryFunction", {"Records": [{**record, "body": body}, single]}, lambda_context)
    assert attempted == ["D-1", "D-2", "D-3", "D-9"]
    assert result == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    # A message naming both forms, or neither, is malformed: it fails alone.
    for bad in ({"space_id": "Spaces-1"}, {"space_id": "Spaces-1", "deployment_id": "D-1", "deployment_ids": ["D-1"]}):
        attempted.clear()
        records = [{**record, "body": json.dumps(bad)}, single]
        result = invoke("AttributionRetryFunction", {"Records": records}, lambda_context)
        assert (attempted, result["batchItemFailures"]) == (["D-9"], [{"itemIdentifier": record["messageId"]}])


BACKFILL = (
    "reference_id,deployed_at,service,repository,commit_sha\n"
    + "".join(f"ref-{n},{1709200000 + 60 * n},svc-{n % 4},acme/shop,{n + 1:040x}\n" for n in range(120))
    + "".join(f",{1709300000 + 60 * n},svc-0,,\n" for n in range(30))
)


def test_a_backfill_retried_after_a_timeout_stores_nothing_twice(api: Api, timeout_after: list[int]) -> None:
    def post() -> HttpResult:
        csv = {"raw_body": BACKFILL, "headers": {"content-type": "text/csv"}}
        return api.call("POST", "/api/deployments.backfill", key=ADMIN_KEY, **csv)

    timeout_after[0] = 2  # the catalogue's registration, one transaction of rows, then the timeout
    with pytest.raises(ReadTimeoutError):
        post()
    stored_first = len(_listed(api))
    assert 0 < stored_first < 150
    timeout_after[0] = 0
    retry = post().body
    assert (retry["created"], retry["unchanged"], retry["failed"]) == (150 - stored_first, stored_first, 0)
    assert len(_listed(api)) == 150
    assert post().body["unchanged"] == 150


def test_a_backfill_checks_each_rows_code_data_with_shared_reads(api: Api, dynamodb_calls: Counter[str]) -> None:
    sha, unknown = "a0e61dfff93b4c1f8a4e5c6d7e8f90a1b2c3d4e5", "b" * 40
    commit = {
        "repository": "acme/shop",
        "branch": "main",
        "default_branch": "main",
        "sha": sha,
        "timestamp": 1709290000,
    }
    assert (
        api.call("POST", "/api/{spaceId}/changes", path_params=SP, body={"commits": [commit]}, key=ADMIN_KEY).status
        == 200
    )
    old = 1700000000  # long past 3 days: attribution still waits 3 days from arrival for unknown shas
    rows = [("main", sha, ""), ("develop", sha, ""), ("", "", unknown), ("", sha, ""), ("", "", unknown)]
    csv = "deployed_at,service,repository,integration_branch,commit_sha,merge_commit_shas\n" + "".join(
        f"{old + n},svc,acme/shop,{branch},{commit_sha},{shas}\n" for n, (branch, commit_sha, shas) in enumerate(rows)
    )
    dynamodb_calls.clear()
    result = api.call(
        "POST", "/api/deployments.backfill", raw_body=csv, headers={"content-type": "text/csv"}, key=ADMIN_KEY
    )
    outcomes = [(r["ok"], r["error"]) for r in result.body["results"]]
    assert outcomes == [
        (False, "integration_branch_not_valid"),
        (True, None),
        (True, None),
        (True, None),
        (True, None),
    ], result.body
    # The key, the space, the refused row's stored twin under its key (none); batched reads of the rows'
    # idempotency keys, their catalogue entries and the repositories they name, and, their names being
    # new, one consistent read of a row's key before they are registered (a refused row registers none);
    # no pull request is looked up at ingest.
    assert (dynamodb_calls["GetItem"], dynamodb_calls["BatchGetItem"], dynamodb_calls["Query"]) == (3, 4, 0), (
        dynamodb_calls
    )


def test_a_backfill_naming_1000_repositories_reads_their_default_branches_in_batches(
    api: Api, dynamodb_calls: Counter[str]
) -> None:
    """A row naming an integration branch is checked against its repository's default branch: 1,000
    repositories are read 100 to a BatchGetItem (10 calls), not one GetItem each (1,000 sequential
    reads: 5-10 s of a request API Gateway ends at 29 s)."""
    sha = "a0e61dfff93b4c1f8a4e5c6d7e8f90a1b2c3d4e5"
    for name, default in (("acme/r7", "develop"), ("acme/r900", "develop"), ("acme/r5", "main")):
        commit = {"repository": name, "branch": default, "default_branch": default, "sha": sha, "timestamp": 1709290000}
        body = {"commits": [commit]}
        assert api.call("POST", "/api/{spaceId}/changes", path_params=SP, body=body, key=ADMIN_KEY).status == 200
    csv = "deployed_at,service,repository,integration_branch,commit_sha\n" + "".join(
        f"{1700000000 + n},svc,acme/r{n},develop,{sha}\n" for n in range(1000)
    )
    dynamodb_calls.clear()
    result = api.call(
        "POST", "/api/deployments.backfill", raw_body=csv, headers={"content-type": "text/csv"}, key=ADMIN_KEY
    )
    refused = [n for n, r in enumerate(result.body["results"]) if not r["ok"]]
    assert refused == [7, 900], result.body["results"][:3]
    assert {result.body["results"][n]["error"] for n in refused} == {"integration_branch_not_valid"}
    # 10 BatchGetItems of repositories besides the rows' idempotency keys (10), catalogue entries (1) and
    # the check of a row's key before its new name is registered (1).
    assert dynamodb_calls["BatchGetItem"] <= 22 and dynamodb_calls["GetItem"] <= 6, dynamodb_calls


# --- the bulk write itself ------------------------------------------------------------------------
def _deployment(n: int, *, stream: int = 0, body: str = "") -> Deployment:
    return Deployment(
        id=f"d-{n}",
        space_id="Spaces-1",
        project="shop",
        project_id="Projects-1",
        environment=f"env-{stream}",
        environment_id=f"Environments-{stream + 1}",
        channel="Default",
        channel_id="Channels-1",
        finished_at=STAMP,
        received_at=STAMP,
        body_hash=f"hash-{n}{body}",
    )


def _outcomes(results: list[WriteOutcome | DoraError]) -> list[object]:
    return [
        ("created" if r.created else "stored", r.deployment.id) if isinstance(r, WriteOutcome) else type(r).__name__
        for r in results
    ]


def test_entries_are_packed_within_the_transaction_limits(store: Any, dynamodb_calls: Counter[str]) -> None:
    entries = [NewDeployment(_deployment(n, stream=n % 7), ("dx", f"ref-{n}"), outbox_due=STAMP) for n in range(250)]
    results = store.deployments().write_many(entries, now=STAMP)  # 3 items each: more than 100 actions would raise
    assert _outcomes(results) == [("created", f"d-{n}") for n in range(250)]
    assert dynamodb_calls == {"BatchGetItem": 3, "TransactWriteItems": 9}
    marks = {m["stream"]: m["pending"] for m in store.list_dirty_streams("Spaces-1")}
    assert sum(marks.values()) == 250 and len(marks) == 7  # one mark per stream, counting its deployments


def test_a_condition_failing_in_a_transaction_answers_its_entry_and_writes_the_others(
    store: Any, monkeypatch: pytest.MonkeyPatch, dynamodb_calls: Counter[str]
) -> None:
    store.deployments().write_many([NewDeployment(_deployment(3)), NewDeployment(_deployment(5))], now=STAMP)
    monkeypatch.setattr(Store, "batch_get", lambda *_, **__: [])  # written meanwhile: the read misses them
    dynamodb_calls.clear()
    entries = [NewDeployment(_deployment(n, body="x" if n == 5 else "")) for n in range(8)]
    results = store.deployments().write_many(entries, now=STAMP)
    expected: list[object] = [("created", f"d-{n}") for n in range(8)]
    expected[3], expected[5] = ("stored", "d-3"), ResourceConflictError.__name__
    assert _outcomes(results) == expected
    # One transaction cancelled by the two known ids, answered from its reasons, then the rest in one.
    assert dynamodb_calls == {"TransactWriteItems": 2}
    assert store.get_deployment("Spaces-1", "d-7") is not None


def test_an_item_too_large_fails_alone(store: Any) -> None:
    huge = _deployment(1).model_copy(update={"metadata": {"text": "x" * 500_000}})
    results = store.deployments().write_many([NewDeployment(_deployment(0)), NewDeployment(huge)], now=STAMP)
    assert _outcomes(results) == [("created", "d-0"), ItemTooLargeError.__name__]


def test_the_same_key_twice_goes_in_a_later_wave(store: Any) -> None:
    same = NewDeployment(_deployment(1), ("dx", "ref"))
    other = NewDeployment(_deployment(2, body="y"), ("dx", "ref"))
    results = store.deployments().write_many([same, same, other], now=STAMP)
    assert _outcomes(results) == [("created", "d-1"), ("stored", "d-1"), ResourceConflictError.__name__]


class _Unprocessing:
    """A DynamoDB client answering every BatchGetItem with its first key only, the rest unprocessed
    (as AWS does past 16 MB or under throttling; moto never does)."""

    def __init__(self) -> None:
        self.requests: list[int] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((table, wanted),) = RequestItems.items()
        self.requests.append(len(wanted["Keys"]))
        first, *rest = wanted["Keys"]
        unprocessed = {table: {**wanted, "Keys": rest}} if rest else {}
        return {"Responses": {table: [{**first, "type": {"S": "Thing"}}]}, "UnprocessedKeys": unprocessed}


def test_unprocessed_keys_are_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dora_insights.dal.store.time.sleep", lambda _: None)
    client = _Unprocessing()
    wanted = [{"PK": f"S#Spaces-1#X{n}", "SK": "X"} for n in range(3)]
    found = Store("table", client).batch_get(wanted, consistent=True)
    assert sorted(i["PK"] for i in found) == [k["PK"] for k in wanted]
    assert client.requests == [3, 2, 1]


def test_a_transaction_aws_would_refuse_is_refused_before_it_is_sent() -> None:
    def put(n: int) -> dict[str, Any]:
        return {"Put": {"TableName": "t", "Item": {"PK": {"S": f"S#Spaces-1#X{n}"}, "SK": {"S": "X"}}}}

    limits.check_transaction_shape([put(n) for n in range(100)])
    with pytest.raises(ItemInvalidError, match="101 actions"):
        limits.check_transaction_shape([put(n) for n in range(101)])
    with pytest.raises(ItemInvalidError, match="twice"):
        limits.check_transaction_shape([put(1), {"Delete": {"TableName": "t", "Key": put(1)["Put"]["Item"]}}])
