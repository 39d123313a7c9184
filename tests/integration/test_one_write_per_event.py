"""One write round trip per deployment event (issue 17, item 3): a deployment naming a commit is
attributed before it is written and stored with the result in one transaction, Resolved or Pending;
when a branch mark moves between the reads and that transaction, the ingest writes the deployment
first and attributes it after, and nothing is lost or shipped twice."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from tests.conftest import ADMIN_KEY, Api, Aws, Clock
from tests.support.native import create_deployment, get_deployment
from tests.support.table import count_calls

SP = {"spaceId": "Spaces-1"}
NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
WRITES = {"transact_write_items", "batch_write_item", "put_item", "update_item", "delete_item"}


def sha(n: int) -> str:
    return f"{n + 1:040x}"


def deploy(api: Api, **fields: Any) -> dict[str, Any]:
    return create_deployment(api, repository="acme/shop", **fields)


def attribution_of(api: Api, deployment_id: str) -> dict[str, Any]:
    return get_deployment(api, deployment_id).body["attribution"]  # type: ignore[no-any-return]


def push(api: Api, *numbers: int) -> None:
    commits = [
        {"repository": "acme/shop", "branch": "main", "sha": sha(n), "timestamp": f"2024-03-01T0{n}:00:00Z"}
        for n in numbers
    ]
    result = api.call("POST", "/api/{spaceId}/changes", path_params=SP, body={"commits": commits}, key=ADMIN_KEY)
    assert result.status < 300, result.body


@pytest.fixture
def calls(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """DynamoDB calls of the table adapter from now on, by operation."""
    return count_calls(monkeypatch)


def writes(counted: Counter[str]) -> dict[str, int]:
    return {name: n for name, n in counted.items() if name in WRITES}


def test_a_deployment_of_a_known_commit_is_stored_resolved_in_one_write(
    api: Api, clock: Clock, calls: Counter[str]
) -> None:
    push(api, 0, 1, 2)
    deploy(api, id="d0", commit_sha=sha(0), finished_at="2024-03-01T10:00:00Z")
    calls.clear()
    deploy(api, id="d1", commit_sha=sha(2), finished_at="2024-03-01T11:00:00Z")
    assert writes(calls) == {"transact_write_items": 1}
    attribution = attribution_of(api, "d1")
    assert (attribution["state"], attribution["attempts"], sorted(attribution["commits"])) == (
        "Resolved",
        1,
        [sha(1), sha(2)],
    )


def test_a_deployment_of_a_commit_not_pushed_yet_is_stored_pending_in_one_write_and_queued(
    api: Api, aws: Aws, clock: Clock, calls: Counter[str]
) -> None:
    push(api, 0)
    deploy(api, id="d0", commit_sha=sha(0), finished_at="2024-03-01T10:00:00Z")
    calls.clear()
    deploy(api, id="d1", commit_sha=sha(5), finished_at="2024-03-01T11:00:00Z")
    assert writes(calls) == {"transact_write_items": 1}
    assert (attribution_of(api, "d1")["state"], attribution_of(api, "d1")["attempts"]) == ("Pending", 1)
    attributes = boto3.client("sqs").get_queue_attributes(QueueUrl=aws.queue_url, AttributeNames=["All"])
    assert int(attributes["Attributes"]["ApproximateNumberOfMessagesDelayed"]) == 1  # its retry


def test_a_mark_moved_between_the_reads_and_the_write_falls_back_to_writing_first(
    api: Api, clock: Clock, store: Any, monkeypatch: pytest.MonkeyPatch, calls: Counter[str]
) -> None:
    from dora_insights.dal.attribution import LedgerStore
    from dora_insights.domain.attribution import attribute as engine
    from dora_insights.domain.changes import BranchMark
    from dora_insights.logic import attribution

    push(api, 0, 1, 2)
    deploy(api, id="d0", commit_sha=sha(0), finished_at="2024-03-01T10:00:00Z")
    moved: list[bool] = []

    def attribute_then_race(deployment: Any, *args: Any, **kwargs: Any) -> Any:
        outcome = engine(deployment, *args, **kwargs)
        if not moved and deployment.id == "d1":  # another deployment moves the mark meanwhile
            moved.append(True)
            ledger = LedgerStore(store, "Spaces-1", deployment.stream_key, "someone-else")
            operations, _ = ledger.mark_operations(
                [BranchMark(repository="acme/shop", branch="main", position=1)],
                "someone-else",  # past sha(1)
            )
            assert operations
            store.transact(operations)
        return outcome

    monkeypatch.setattr(attribution, "attribute", attribute_then_race)
    calls.clear()
    deploy(api, id="d1", commit_sha=sha(2), finished_at="2024-03-01T11:00:00Z")
    assert moved
    # the race's write, the one transaction (cancelled), then the deployment's and the attribution's
    assert writes(calls) == {"transact_write_items": 4}
    attribution_now = attribution_of(api, "d1")
    # written first, then attributed again from the moved mark: the commit after it ships once
    assert (attribution_now["state"], attribution_now["commits"]) == ("Resolved", [sha(2)])
