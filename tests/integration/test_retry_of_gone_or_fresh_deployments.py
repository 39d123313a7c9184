"""The attribution-retry function under DynamoDB's real behaviour (issue 17): a message whose deployment
was deleted while it waited on the queue succeeds (the removal is finished, nothing is dead-lettered),
and a deployment a bulk write stored a moment before its message is read, not missed by an eventually
consistent read (``tests/support/replica_lag.py``)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from tests.conftest import ADMIN_KEY, Api, Aws
from tests.support.emf import emitted_metrics
from tests.support.events import load_event
from tests.support.lambdas import invoke
from tests.support.native import attribution_of, create_deployment
from tests.support.replica_lag import ReplicaLag

SP = {"spaceId": "Spaces-1"}
REPO = "acme/shop"
KNOWN = "66adc9350f2cc9b250b69abddab733dd55e1a588"
UNKNOWN = "2222222222222222222222222222222222222222"
LAST_RECEIVE = "5"  # the queue's maxReceiveCount: a record failing now goes to the DLQ


def _delete(api: Api, deployment_id: str) -> None:
    path = {**SP, "deploymentId": deployment_id}
    deleted = api.call("DELETE", "/api/{spaceId}/deployments/{deploymentId}", path_params=path, key=ADMIN_KEY)
    assert deleted.status == 204, deleted.body


def _batch_of_one(api: Api, deployment_id: str) -> None:
    """A native batch of one deployment shipping the known commit (its attribution goes to the queue)."""
    shipped = {"repository": REPO, "commit_sha": KNOWN, "finished_at": "2024-03-01T12:00:00Z"}
    batch = {"deployments": [{"id": deployment_id, "project": "shop", "environment": "production", **shipped}]}
    written = api.call("POST", "/api/{spaceId}/deployments/batch", path_params=SP, body=batch, key=ADMIN_KEY)
    assert written.status == 200, written.body


def _record(body: dict[str, Any], *, receive: str = LAST_RECEIVE) -> dict[str, Any]:
    record = load_event("AttributionRetryFunction.json")["Records"][0]
    return {
        **record,
        "body": json.dumps(body),
        "attributes": {**record["attributes"], "ApproximateReceiveCount": receive},
    }


def _outbox(store: Any, deployment_id: str) -> dict[str, Any] | None:
    from dora_insights.dal import keys

    return store.get(keys.attribution_outbox("Spaces-1", deployment_id), consistent=True)  # type: ignore[no-any-return]


def _waiting_for(store: Any, sha: str) -> set[str]:
    return store.attribution("Spaces-1").waiting_for({sha[:7]}, [])  # type: ignore[no-any-return]


def test_a_retry_of_a_deleted_pending_deployment_succeeds_and_is_not_dead_lettered(
    api: Api, aws: Aws, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    pending = create_deployment(api, repository=REPO, commit_sha=UNKNOWN)
    assert attribution_of(api, pending["id"])["state"] == "Pending"  # its retry message is on the queue
    _delete(api, pending["id"])
    capsys.readouterr()

    result = invoke(
        "AttributionRetryFunction",
        {"Records": [_record({"space_id": "Spaces-1", "deployment_id": pending["id"], "attempt": 1})]},
        lambda_context,
    )

    assert result == {"batchItemFailures": []}
    found = emitted_metrics(capsys.readouterr().out)
    assert (found.get("AttributionRetryFailed"), found.get("AttributionDeadLettered")) == (None, None)


def test_a_retry_of_a_deployment_deleted_before_its_removal_finished_finishes_it(
    api: Api, aws: Aws, store: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The delete's own attempt died (its outbox item keeps ``removed``): the queued message of the
    deleted deployment undoes what its attribution left, here its pending-index entry."""
    from dora_insights.logic import corrections

    pending = create_deployment(api, repository=REPO, commit_sha=UNKNOWN)
    assert _waiting_for(store, UNKNOWN) == {pending["id"]}
    monkeypatch.setattr(corrections, "follow", lambda *_, **__: None)
    _delete(api, pending["id"])
    assert (_outbox(store, pending["id"]) or {}).get("removed")

    result = invoke(
        "AttributionRetryFunction",
        {"Records": [_record({"space_id": "Spaces-1", "deployment_id": pending["id"], "attempt": 1})]},
        lambda_context,
    )

    assert result == {"batchItemFailures": []}
    assert _outbox(store, pending["id"]) is None
    assert _waiting_for(store, UNKNOWN) == set()


def test_a_group_message_naming_a_deleted_deployment_attributes_the_others(
    api: Api, aws: Aws, lambda_context: Any
) -> None:
    changes = {"commits": [{"repository": REPO, "branch": "main", "sha": KNOWN, "timestamp": "2024-03-01T10:00:00Z"}]}
    pushed = api.call("POST", "/api/{spaceId}/changes", path_params=SP, body=changes, key=ADMIN_KEY)
    assert pushed.status < 300, pushed.body
    gone = create_deployment(api, repository=REPO, commit_sha=UNKNOWN, finished_at="2024-03-01T11:00:00Z")
    _delete(api, gone["id"])
    _batch_of_one(api, "d-kept")
    body = {"space_id": "Spaces-1", "deployment_ids": [gone["id"], "d-kept"]}

    result = invoke("AttributionRetryFunction", {"Records": [_record(body)]}, lambda_context)

    assert result == {"batchItemFailures": []}
    assert attribution_of(api, "d-kept")["state"] == "Resolved"


def test_a_group_message_right_after_the_bulk_write_reads_its_deployments(
    api: Api, aws: Aws, lambda_context: Any, replica_lag: ReplicaLag
) -> None:
    changes = {"commits": [{"repository": REPO, "branch": "main", "sha": KNOWN, "timestamp": "2024-03-01T10:00:00Z"}]}
    pushed = api.call("POST", "/api/{spaceId}/changes", path_params=SP, body=changes, key=ADMIN_KEY)
    assert pushed.status < 300, pushed.body
    replica_lag.on()  # what is written from now on is not seen yet by an eventually consistent read
    _batch_of_one(api, "d-1")
    sqs = boto3.client("sqs")
    (message,) = sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    assert json.loads(message["Body"])["deployment_ids"] == ["d-1"]

    result = invoke(
        "AttributionRetryFunction", {"Records": [_record(json.loads(message["Body"]), receive="1")]}, lambda_context
    )

    assert result == {"batchItemFailures": []}, replica_lag.hidden
    replica_lag.active = False
    assert attribution_of(api, "d-1")["state"] == "Resolved"


def _group_right_after_a_batch(
    api: Api, aws: Aws, lambda_context: Any, replica_lag: ReplicaLag, commits: list[str], shas: list[str]
) -> dict[str, Any]:
    """Push ``commits`` (shas, in order, on main); then, with the replicas lagging, a native batch of one
    deployment per sha of ``shas`` in one stream (ids ``d-0``, ``d-1``...; an hour apart) and its group
    message, handled by the retry function at once: its answer (the lag is then turned off)."""
    pushed = api.call(
        "POST",
        "/api/{spaceId}/changes",
        path_params=SP,
        body={
            "commits": [
                {"repository": REPO, "branch": "main", "sha": sha, "timestamp": f"2024-03-01T10:{n:02d}:00Z"}
                for n, sha in enumerate(commits)
            ]
        },
        key=ADMIN_KEY,
    )
    assert pushed.status < 300, pushed.body
    replica_lag.on()
    stream = {"project": "shop", "environment": "production", "repository": REPO}
    batch = [
        {"id": f"d-{n}", "commit_sha": sha, "finished_at": f"2024-03-01T{11 + n:02d}:00:00Z", **stream}
        for n, sha in enumerate(shas)
    ]
    written = api.call(
        "POST", "/api/{spaceId}/deployments/batch", path_params=SP, body={"deployments": batch}, key=ADMIN_KEY
    )
    assert written.status == 200, written.body
    sqs = boto3.client("sqs")
    (message,) = sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    assert json.loads(message["Body"])["deployment_ids"] == [d["id"] for d in batch]

    result = invoke(
        "AttributionRetryFunction", {"Records": [_record(json.loads(message["Body"]), receive="1")]}, lambda_context
    )
    replica_lag.active = False
    return result  # type: ignore[no-any-return]


def test_a_group_message_right_after_the_bulk_write_keeps_the_streams_order(
    api: Api, aws: Aws, lambda_context: Any, replica_lag: ReplicaLag
) -> None:
    """The stream index does not show yet the deployments the batch stored a moment ago, so the second
    one's previous success is the first only because the group attempted it just before: the second
    waits for the first's code data, as it does when the index has caught up, instead of shipping
    changes the first may own."""
    result = _group_right_after_a_batch(api, aws, lambda_context, replica_lag, [KNOWN], [UNKNOWN, KNOWN])

    assert result == {"batchItemFailures": []}, replica_lag.hidden

    assert attribution_of(api, "d-0")["state"] == "Pending"
    assert attribution_of(api, "d-1")["state"] == "Pending", replica_lag.hidden


@pytest.mark.parametrize("attributed_first", [True, False], ids=["in-the-write", "after-the-write"])
def test_a_deployment_posted_right_after_another_of_its_stream_keeps_the_streams_order(
    api: Api, replica_lag: ReplicaLag, monkeypatch: pytest.MonkeyPatch, attributed_first: bool
) -> None:
    """A history replayed one request at a time: the stream index does not show yet the deployment
    posted a moment before, so the next one's previous success is known from its stream's dirty mark,
    whether the attempt reads before the deployment's write or after it. The second waits for the
    first's code data, as it does once the index has caught up."""
    from dora_insights.logic import attribution

    if not attributed_first:  # the attempt runs after the write: the mark names this one, then the first
        monkeypatch.setattr(attribution, "create_attributed", lambda *_, **__: None)
    changes = {"commits": [{"repository": REPO, "branch": "main", "sha": KNOWN, "timestamp": "2024-03-01T10:00:00Z"}]}
    pushed = api.call("POST", "/api/{spaceId}/changes", path_params=SP, body=changes, key=ADMIN_KEY)
    assert pushed.status < 300, pushed.body
    replica_lag.on(index_only=True)
    waits = create_deployment(api, repository=REPO, commit_sha=UNKNOWN, finished_at="2024-03-01T11:00:00Z")
    follows = create_deployment(api, repository=REPO, commit_sha=KNOWN, finished_at="2024-03-01T12:00:00Z")

    assert attribution_of(api, waits["id"])["state"] == "Pending"
    assert attribution_of(api, follows["id"])["state"] == "Pending", replica_lag.hidden


def test_a_group_message_right_after_the_bulk_write_resolves_each_after_the_one_before(
    api: Api, aws: Aws, lambda_context: Any, replica_lag: ReplicaLag
) -> None:
    """Under the same lag, a deployment whose predecessor in the group resolved a moment ago resolves in
    the same message (it knows the predecessor as resolved, not as owing an attribution) and ships only
    what came after it."""
    second = "3333333333333333333333333333333333333333"
    result = _group_right_after_a_batch(api, aws, lambda_context, replica_lag, [KNOWN, second], [KNOWN, second])

    assert result == {"batchItemFailures": []}, replica_lag.hidden

    first, following = attribution_of(api, "d-0"), attribution_of(api, "d-1")
    assert (first["state"], following["state"]) == ("Resolved", "Resolved"), replica_lag.hidden
    assert following["commits"] == [second]


def test_a_group_member_whose_attempt_fails_still_comes_before_the_next(
    api: Api, aws: Aws, lambda_context: Any, replica_lag: ReplicaLag, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second deployment's attempt fails (the record then fails and comes back): the third, after
    it in the stream, waits for it instead of taking the first as its previous success and shipping
    the second's commit."""
    from dora_insights.logic import attribution

    second, third = "3333333333333333333333333333333333333333", "4444444444444444444444444444444444444444"
    attempt = attribution.attempt_attribution

    def failing_for_the_second(store: Any, space_id: str, deployment_id: str, *args: Any, **options: Any) -> Any:
        if deployment_id == "d-1":
            raise RuntimeError("an attempt that fails")
        return attempt(store, space_id, deployment_id, *args, **options)

    monkeypatch.setattr(attribution, "attempt_attribution", failing_for_the_second)
    shas = [KNOWN, second, third]
    with pytest.raises(BatchProcessingError):  # its one record failed: it comes back whole
        _group_right_after_a_batch(api, aws, lambda_context, replica_lag, shas, shas)

    replica_lag.active = False
    states = [(attribution_of(api, f"d-{n}") or {}).get("state") for n in range(3)]
    assert states == ["Resolved", None, "Pending"], replica_lag.hidden
