"""Creates under what moto never does and DynamoDB does (issue 17): transactions cancelled for contention,
and eventually consistent reads that miss a write just committed.

In AWS a transaction touching an item another write is changing is cancelled with the reason
``TransactionConflict`` (``ThrottlingError`` under on-demand scaling), and botocore does not retry a
``TransactionCanceledException``. Every create updates its stream's dirty mark, as concurrent batches
and the recompute do, so this happens under load: ``tests.support.contention`` makes moto do it. Such a write is
retried; one that still cannot go through is a 503 ``write_contended`` in each dialect's shape (never
a 409, never DX's ``reference_id_exists``), and the client's retry stores it once.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dora_insights.dal import aws, keys
from dora_insights.dal import store as dal_store
from dora_insights.dal.deployments import BULK_PAUSE_BUDGET_SECONDS, DeploymentStore, resolve_duplicate
from dora_insights.dal.store import PauseBudget, Store, contended
from dora_insights.domain.records import NewDeployment, WriteOutcome
from dora_insights.errors import ID_REUSED, ResourceConflictError, WriteContendedError
from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.contention import Contention, a_deployment, record_pauses

BATCH = "/api/{spaceId}/deployments/batch"
NATIVE = "/api/{spaceId}/deployments"
SP = {"spaceId": "Spaces-1"}
DX_CREATE = "/api/deployments.create"
BACKFILL = "/api/deployments.backfill"
DATADOG = "/api/v2/dora/deployment"
STAMP = "2024-03-01T12:00:00.000Z"
CSV = "text/csv"


@pytest.fixture
def contention(monkeypatch: pytest.MonkeyPatch) -> Contention:
    return Contention(monkeypatch)


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses taken, in seconds (none is waited: the tests need not sleep)."""
    return record_pauses(monkeypatch)


def _backfill_csv(count: int) -> str:
    rows = "".join(f"ref-{n},{1709200000 + 60 * n},svc\n" for n in range(count))
    return "reference_id,deployed_at,service\n" + rows


def _items(count: int) -> list[dict[str, Any]]:
    return [
        {"project": "shop", "environment": f"env-{n % 2}", "finished_at": 1709294400 + 60 * n, "version": f"1.{n}"}
        for n in range(count)
    ]


def _listed(api: Api) -> list[dict[str, Any]]:
    result = api.call("GET", NATIVE, path_params=SP, query={"limit": "500"}, key=ADMIN_KEY)
    assert result.status == 200, result.body
    return list(result.body["items"])


# --- retried: the write goes through -------------------------------------------------------------------
def test_a_conflict_on_a_dirty_mark_is_retried_and_every_backfill_row_is_stored(
    api: Api, contention: Contention
) -> None:
    contention.left = 2
    result = api.call("POST", BACKFILL, key=ADMIN_KEY, raw_body=_backfill_csv(3), headers={"content-type": CSV})
    assert result.status == 200, result.body
    assert [(r["ok"], r["created"]) for r in result.body["results"]] == [(True, True)] * 3
    assert contention.attempts == 3  # the one transaction of the three rows, sent three times


@pytest.mark.parametrize("code", ["TransactionConflict", "ThrottlingError"])
def test_a_single_create_cancelled_for_contention_is_retried(api: Api, contention: Contention, code: str) -> None:
    contention.left, contention.code = 3, code
    result = api.call("POST", NATIVE, path_params=SP, body=_items(1)[0], key=ADMIN_KEY)
    assert result.status == 201, result.body
    assert contention.attempts == 4
    assert len(_listed(api)) == 1


def test_a_create_with_its_attribution_is_retried_whole_in_its_one_transaction(
    api: Api, contention: Contention, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[str] = []
    call = Store.call

    def recording(store: Store, operation: str, **kwargs: Any) -> Any:
        if operation == "transact_write_items":
            written.append(operation)
        return call(store, operation, **kwargs)

    monkeypatch.setattr(Store, "call", recording)
    body = {"deployed_at": 1709200000, "service": "svc", "commit_sha": "d1a34f0", "repository": "my_org/payment_api"}
    assert api.call("POST", DX_CREATE, body={**body, "reference_id": "ref-0"}, key=ADMIN_KEY).status == 200
    written.clear()  # the catalogue is known now: what follows is the deployment's own write
    contention.left = 2
    result = api.call("POST", DX_CREATE, body={**body, "reference_id": "ref-1"}, key=ADMIN_KEY)
    assert result.status == 200, result.body
    assert contention.attempts == 1 + 3  # ref-0 once, ref-1 cancelled twice then written
    assert written == ["transact_write_items"]  # the deployment with its pending attribution, no second write


def test_pauses_between_attempts_are_jittered_doubling_and_few(
    store: Any, contention: Contention, pauses: list[float]
) -> None:
    contention.left = None
    entry = NewDeployment(a_deployment(1))
    with pytest.raises(WriteContendedError, match="retry the request"):
        store.deployments().write(entry, now=STAMP)
    assert contention.attempts == 1 + dal_store.CONTENTION_RETRIES == 4
    assert len(pauses) == 3
    for attempt, pause in enumerate(pauses):
        ceiling = 0.02 * 2**attempt
        assert ceiling / 2 <= pause <= ceiling
    assert store.get_deployment("Spaces-1", "d-1", consistent=True) is None


# --- still contended: a 503 to retry, in each dialect's shape ------------------------------------------
def test_a_batch_still_contended_answers_503_per_item_and_its_retry_stores_each_once(
    api: Api, contention: Contention
) -> None:
    contention.left = None
    result = api.call("POST", BATCH, path_params=SP, body={"deployments": _items(3)}, key=ADMIN_KEY)
    assert result.status == 200, result.body
    assert [r["status"] for r in result.body["results"]] == [503] * 3
    assert all("retry" in r["message"] for r in result.body["results"])
    assert (result.body["created"], result.body["failed"]) == (0, 3)
    assert result.header("retry-after") is None  # the request was answered; its items say 503 each
    assert _listed(api) == []
    # One transaction of the three, then each on its own, every one sent 1 + 3 times.
    assert contention.attempts == 4 * (1 + 3)

    contention.left = 0
    again = api.call("POST", BATCH, path_params=SP, body={"deployments": _items(3)}, key=ADMIN_KEY)
    assert [r["status"] for r in again.body["results"]] == [201] * 3
    assert len(_listed(api)) == 3


def test_a_backfill_row_still_contended_is_write_contended_not_reference_id_exists(
    api: Api, contention: Contention
) -> None:
    contention.left = None
    result = api.call("POST", BACKFILL, key=ADMIN_KEY, raw_body=_backfill_csv(2), headers={"content-type": CSV})
    assert result.status == 200, result.body
    rows = result.body["results"]
    assert [(r["ok"], r["error"]) for r in rows] == [(False, "write_contended")] * 2
    assert (result.body["created"], result.body["failed"]) == (0, 2)


def test_a_dx_create_still_contended_is_a_503_in_dx_shape(api: Api, contention: Contention) -> None:
    contention.left = None
    body = {"reference_id": "ref-1", "deployed_at": 1709200000, "service": "svc"}
    result = api.call("POST", DX_CREATE, body=body, key=ADMIN_KEY)
    assert result.status == 503
    assert result.body == {"ok": False, "error": "write_contended", "message": result.body["message"]}
    assert result.header("retry-after") == "1"

    contention.left = 0
    assert api.call("POST", DX_CREATE, body=body, key=ADMIN_KEY).status == 200


def test_a_datadog_create_still_contended_is_a_503_in_json_api_shape(api: Api, contention: Contention) -> None:
    contention.left = None
    attributes = {"service": "shop", "env": "production", "started_at": 1709200000, "finished_at": 1709200060}
    result = api.call("POST", DATADOG, body={"data": {"attributes": attributes}}, headers={"DD-API-KEY": ADMIN_KEY})
    assert result.status == 503
    (error,) = result.body["errors"]
    assert (error["status"], error["title"]) == ("503", "Service Unavailable")
    assert "retry" in error["detail"]
    assert result.header("retry-after") == "1"


def test_a_native_create_still_contended_is_a_503_in_native_shape(api: Api, contention: Contention) -> None:
    contention.left = None
    result = api.call("POST", NATIVE, path_params=SP, body=_items(1)[0], key=ADMIN_KEY)
    assert result.status == 503
    assert result.body == {"message": result.body["message"], "errors": [result.body["message"]]}
    assert "retry" in result.body["message"]
    assert result.header("retry-after") == "1"


def _orlo(api: Api, route: str, body: Any = None, **params: str) -> Any:
    """An Orlo call with orloclient's credentials (Basic ``orlo:<key>``)."""
    auth = {"authorization": "Basic " + base64.b64encode(f"orlo:{ADMIN_KEY}".encode()).decode()}
    return api.call("POST", route, path_params=params or None, body=body, headers=auth)


def test_an_orlo_stop_still_contended_is_a_503_and_stopping_again_writes_itsa_deployment(
    api: Api, clock: Clock, contention: Contention
) -> None:
    release = _orlo(api, "/orlo/releases", {"user": "ann", "platforms": ["site1"]})
    rid = release.body["id"]
    package = _orlo(api, "/orlo/releases/{rid}/packages", {"name": "web", "version": "2.0"}, rid=rid)
    pid = package.body["id"]
    clock.advance(timedelta(seconds=10))
    assert _orlo(api, "/orlo/releases/{rid}/packages/{pid}/start", rid=rid, pid=pid).status == 204
    clock.advance(timedelta(seconds=10))
    contention.left = None
    stopped = _orlo(api, "/orlo/releases/{rid}/packages/{pid}/stop", {"success": True}, rid=rid, pid=pid)
    assert stopped.status == 503
    assert set(stopped.body) == {"message", "errors"}
    assert stopped.header("retry-after") == "1"
    assert _listed(api) == []

    contention.left = 0  # stopping again is refused (stopped already) but writes its deployments first
    again = _orlo(api, "/orlo/releases/{rid}/packages/{pid}/stop", {"success": True}, rid=rid, pid=pid)
    assert again.status == 400, again.body
    assert [d["project"] for d in _listed(api)] == ["web"]


# --- a bound on the time a bulk write waits out contention ---------------------------------------------
def test_a_batch_of_500_all_contended_pauses_at_most_its_budget_and_answers_every_item_503(
    api: Api, contention: Contention, pauses: list[float]
) -> None:
    contention.left = None
    result = api.call("POST", BATCH, path_params=SP, body={"deployments": _items(500)}, key=ADMIN_KEY)
    assert result.status == 200, result.body
    assert Counter(r["status"] for r in result.body["results"]) == {503: 500}
    assert (result.body["created"], result.body["failed"]) == (0, 500)
    assert _listed(api) == []
    # Unbounded: 4 attempts per transaction, then 4 per entry (over 2,000 attempts, up to 70 s of pauses).
    assert 0 < sum(pauses) <= BULK_PAUSE_BUDGET_SECONDS
    assert contention.attempts < 150
    assert max(pauses) <= 0.08  # each pause as before: only their total is bounded


def test_entries_answered_once_the_budget_is_spent_are_each_stored_whole_or_not_at_all(
    api: Api, contention: Contention, pauses: list[float]
) -> None:
    contention.left, contention.one_stream = None, True  # env-0's stream held, env-1's free
    items = _items(500)
    result = api.call("POST", BATCH, path_params=SP, body={"deployments": items}, key=ADMIN_KEY)
    assert result.status == 200, result.body
    statuses = [r["status"] for r in result.body["results"]]
    assert set(statuses) == {201, 503} and sum(pauses) <= BULK_PAUSE_BUDGET_SECONDS
    created = {items[n]["version"] for n, status in enumerate(statuses) if status == 201}
    assert {d["version"] for d in _listed(api)} == created  # no 503 item stored, every 201 one stored
    assert {items[n]["environment"] for n, status in enumerate(statuses) if status == 201} == {"env-1"}

    contention.left = 0
    again = api.call("POST", BATCH, path_params=SP, body={"deployments": items}, key=ADMIN_KEY)
    assert [r["status"] for r in again.body["results"]] == [200 if s == 201 else 201 for s in statuses]
    assert sorted(d["version"] for d in _listed(api)) == sorted(i["version"] for i in items)


def test_contention_on_one_stream_answers_503_only_for_its_own_entries(
    api: Api, contention: Contention, pauses: list[float]
) -> None:
    """Another write holds env-0's dirty mark for the whole request: every transaction naming it stays
    cancelled. The entries of env-1, packed in the same transactions, do not share its fate: they are
    sent again in transactions of their own, which go through whatever budget is left."""
    contention.left, contention.one_stream = None, True
    items = _items(500)
    result = api.call("POST", BATCH, path_params=SP, body={"deployments": items}, key=ADMIN_KEY)
    assert result.status == 200, result.body
    by_environment: dict[str, Counter[int]] = {"env-0": Counter(), "env-1": Counter()}
    for item, answer in zip(items, result.body["results"], strict=True):
        by_environment[item["environment"]][answer["status"]] += 1
    assert by_environment == {"env-0": Counter({503: 250}), "env-1": Counter({201: 250})}
    assert sorted(d["version"] for d in _listed(api)) == sorted(i["version"] for i in items[1::2])
    assert sum(pauses) <= BULK_PAUSE_BUDGET_SECONDS


def test_a_pause_the_budget_cannot_pay_ends_the_attempts(
    store: Any, contention: Contention, pauses: list[float]
) -> None:
    contention.left = None
    budget = PauseBudget(0.05)  # the first pause (10-20 ms) fits, the third (40-80 ms) cannot
    with pytest.raises(WriteContendedError):
        store.deployments()._write(NewDeployment(a_deployment(1)), STAMP, budget)
    assert 1 <= len(pauses) <= 2 and sum(pauses) <= 0.05
    assert budget.spent and contention.attempts == len(pauses) + 1
    assert store.transact_contended([store.dirty_op("Spaces-1", "s", STAMP)], budget=budget) is not None
    assert contention.attempts == len(pauses) + 2  # one attempt, no pause: the budget is spent


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        (["None", "TransactionConflict"], True),
        (["ThrottlingError", "None", "None"], True),
        (["TransactionConflict", "ThrottlingError"], True),
        (["ConditionalCheckFailed", "TransactionConflict"], False),  # a condition failed: answered, not retried
        (["None", "ValidationError"], False),
        (["None", "None"], False),
        ([], False),
    ],
)
def test_only_contention_cancellations_are_retried(codes: list[str], expected: bool) -> None:
    assert contended([{"Code": code} for code in codes]) is expected


# --- a repeat meeting a write just committed: read consistently ----------------------------------------
def _lag(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """An eventually consistent GetItem of a deployment misses it (a replica that has not seen the
    transaction that just committed it); a strongly consistent one sees it. Whether each GetItem of a
    deployment asked for a consistent read, in order."""
    asked: list[bool] = []
    call = Store.call
    deployment_sort_key = keys.deployment("Spaces-1", "any")[keys.SK]

    def lagging(store: Store, operation: str, **kwargs: Any) -> Any:
        response = call(store, operation, **kwargs)
        if operation == "get_item" and aws.deserialize(kwargs["Key"])[keys.SK] == deployment_sort_key:
            asked.append(bool(kwargs.get("ConsistentRead")))
            if not kwargs.get("ConsistentRead"):
                response = {k: v for k, v in response.items() if k != "Item"}
        return response

    monkeypatch.setattr(Store, "call", lagging)
    return asked


@pytest.fixture
def lagging_replica(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    return _lag(monkeypatch)


def test_a_bulk_repeat_meeting_a_write_just_committed_is_answered_not_refused(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = [NewDeployment(a_deployment(n), ("dx", f"ref-{n}")) for n in range(3)]
    store.deployments().write_many(first, now=STAMP)
    monkeypatch.setattr(Store, "batch_get", lambda *_, **__: [])  # the first request committed after this read
    asked = _lag(monkeypatch)
    again = [NewDeployment(a_deployment(n, deployment_id=f"other-{n}"), ("dx", f"ref-{n}")) for n in range(3)]
    results = store.deployments().write_many(again, now=STAMP)
    assert [(r.created, r.deployment.id) for r in results if isinstance(r, WriteOutcome)] == [
        (False, f"d-{n}") for n in range(3)
    ]
    assert asked == [True] * 3


def test_a_single_repeat_meeting_a_write_just_committed_is_answered(store: Any, lagging_replica: list[bool]) -> None:
    store.deployments().write(NewDeployment(a_deployment(1), ("dx", "ref-1")), now=STAMP)
    outcome = store.deployments().write(NewDeployment(a_deployment(1, deployment_id="d-2"), ("dx", "ref-1")), now=STAMP)
    assert (outcome.created, outcome.deployment.id) == (False, "d-1")
    assert lagging_replica == [True]


def test_a_deployment_removed_after_its_condition_failed_is_a_conflict_to_retry_not_a_reused_id(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.deployments().write(NewDeployment(a_deployment(1), ("dx", "ref-1")), now=STAMP)
    stored = store.get_deployment("Spaces-1", "d-1", consistent=True)
    cancelled: list[Sequence[Mapping[str, Any]]] = []
    transact = Store.transact

    def removed_meanwhile(self: Store, operations: Sequence[Mapping[str, Any]]) -> None:
        try:
            transact(self, operations)
        except ClientError:  # a concurrent removal (DELETE, with its record) lands before the answer is read
            cancelled.append(operations)
            self.batch_delete([keys.deployment("Spaces-1", "d-1"), keys.idempotency("Spaces-1", "dx", "ref-1")])
            raise

    monkeypatch.setattr(Store, "transact", removed_meanwhile)
    with pytest.raises(ResourceConflictError) as raised:
        store.deployments().write(NewDeployment(a_deployment(1, deployment_id="d-2"), ("dx", "ref-1")), now=STAMP)
    assert raised.value.code == "conflict" and raised.value.code != ID_REUSED
    assert "retry" in raised.value.message
    assert len(cancelled) == 1 and stored is not None


def test_other_values_under_a_stored_key_are_the_reused_id_conflict(store: Any) -> None:
    store.deployments().write(NewDeployment(a_deployment(1), ("dx", "ref-1")), now=STAMP)
    other = a_deployment(2, deployment_id="d-9")
    results = store.deployments().write_many([NewDeployment(other, ("dx", "ref-1"))], now=STAMP)
    assert [(type(r), getattr(r, "code", None)) for r in results] == [(ResourceConflictError, ID_REUSED)]
    reason = {"Code": "ConditionalCheckFailed", "Item": aws.serialize(store.deployment_item(a_deployment(1)))}
    with pytest.raises(ResourceConflictError) as raised:
        resolve_duplicate(store, a_deployment(2, deployment_id="d-1"), [reason])
    assert raised.value.code == ID_REUSED


def test_a_dx_create_meeting_a_conflict_other_than_a_reused_id_keeps_its_code(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def changing(*_: Any, **__: Any) -> WriteOutcome:
        raise ResourceConflictError("this id is being written or removed by another request; retry", field="id")

    monkeypatch.setattr(DeploymentStore, "write", changing)
    body = {"reference_id": "ref-1", "deployed_at": 1709200000, "service": "svc"}
    result = api.call("POST", DX_CREATE, body=body, key=ADMIN_KEY)
    assert result.status == 409
    assert result.body["error"] == "conflict"
