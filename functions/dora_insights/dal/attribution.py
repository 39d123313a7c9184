"""Attribution storage: a stream's ledger of shipped changes (the engine's ``StreamLedger`` port),
the index of deployments waiting for code data, the deployment's attribution, and the retry queue."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from dora_insights.dal import dynamo, keys
from dora_insights.dal.store import Store, deployment_from_item
from dora_insights.domain.changes import BranchMark
from dora_insights.domain.model import Attribution, Deployment, Figures


class LedgerStore:
    """What one stream has shipped: change ids and forward-only branch marks."""

    def __init__(self, store: Store, space_id: str, stream: str) -> None:
        self.store, self.space_id, self.stream = store, space_id, stream

    def deployed_among(self, change_ids: Collection[str]) -> set[str]:
        """Those of ``change_ids`` already shipped to the stream (one BatchGetItem per 100)."""
        wanted = [keys.ledger_change(self.space_id, self.stream, c) for c in set(change_ids)]
        return {str(i["change_id"]) for i in self.store.batch_get(wanted)} if wanted else set()

    def shipped_position(self, repository: str, branch: str) -> int | None:
        """The stream's mark on a branch."""
        item = self.store.get(keys.ledger_mark(self.space_id, self.stream, repository, branch))
        return int(item["position"]) if item else None

    def record(self, change_ids: Iterable[str], marks: Sequence[BranchMark], deployment_id: str) -> None:
        """Remember shipped changes (idempotent puts) and move marks forward (never back)."""
        items = [
            {
                **keys.ledger_change(self.space_id, self.stream, change_id),
                keys.TYPE: keys.T_LEDGER_CHANGE,
                "change_id": change_id,
                "deployment_id": deployment_id,
            }
            for change_id in dict.fromkeys(change_ids)
        ]
        for chunk in dynamo.chunks(items, dynamo.MAX_BATCH_WRITE):
            pending: dict[str, Any] = {self.store.table: [{"PutRequest": {"Item": dynamo.serialize(i)}} for i in chunk]}
            while pending:
                pending = self.store.call("batch_write_item", RequestItems=pending).get("UnprocessedItems") or {}
        for mark in marks:
            try:
                self.store.call(
                    "update_item",
                    TableName=self.store.table,
                    Key=dynamo.serialize(keys.ledger_mark(self.space_id, self.stream, mark.repository, mark.branch)),
                    UpdateExpression="SET #p = :p, #t = :t",
                    ConditionExpression="attribute_not_exists(#p) OR #p < :p",
                    ExpressionAttributeNames={"#p": "position", "#t": keys.TYPE},
                    ExpressionAttributeValues={":p": {"N": str(mark.position)}, ":t": {"S": keys.T_LEDGER_MARK}},
                )
            except ClientError as error:
                if dynamo.error_code(error) != "ConditionalCheckFailedException":
                    raise


class AttributionStore:
    """A deployment's attribution, its stream's previous success, and the pending index."""

    def __init__(self, store: Store, space_id: str) -> None:
        self.store, self.space_id = store, space_id

    def previous_success(self, deployment: Deployment) -> Deployment | None:
        """The stream's last successful deployment before this one in stream order (pattern 12)."""
        below = keys.stream_sort(deployment.finished_at, deployment.started_at, deployment.id)
        start: dict[str, Any] | None = None
        while True:
            items, start = self.store.query_page(
                partition=keys.deployments_by_stream(self.space_id, deployment.stream_key),
                index=keys.GSI3,
                ascending=False,
                limit=25,
                start_key=start,
                sort_between=("0", below),  # inclusive: the deployment itself is skipped below
            )
            for item in items:
                candidate = deployment_from_item(item)
                if candidate.id != deployment.id and candidate.is_successful:
                    return candidate
            if start is None:
                return None

    def save(
        self, deployment: Deployment, attribution: Attribution, figures: Figures | None, *, expected_attempts: int
    ) -> bool:
        """Store the attribution unless another attempt got there first (False then)."""
        values: dict[str, Any] = {
            ":a": dynamo.serialize_value(attribution.model_dump(mode="json", exclude_none=True)),
            ":expected": {"N": str(expected_attempts)},
            ":zero": {"N": "0"},
        }
        update = "SET attribution = :a"
        if figures is not None:
            update += ", figures = :f"
            values[":f"] = dynamo.serialize_value(figures.model_dump(mode="json", exclude_none=True))
        try:
            self.store.call(
                "update_item",
                TableName=self.store.table,
                Key=dynamo.serialize(keys.deployment(self.space_id, deployment.id)),
                UpdateExpression=update,
                ConditionExpression="attribute_exists(PK) AND "
                "(attribute_not_exists(attribution) OR attribution.attempts = :expected OR "
                "(attribute_not_exists(attribution.attempts) AND :expected = :zero))",
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if dynamo.error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def await_changes(self, deployment_id: str, sha_prefixes: Iterable[str], repository: str | None) -> None:
        """Index a pending deployment by what it waits for."""
        items = [
            {
                **keys.awaiting_sha(self.space_id, prefix, deployment_id),
                keys.TYPE: keys.T_AWAITING,
                "deployment_id": deployment_id,
            }
            for prefix in set(sha_prefixes)
        ]
        if repository:
            items.append(
                {
                    **keys.awaiting_repository(self.space_id, repository, deployment_id),
                    keys.TYPE: keys.T_AWAITING,
                    "deployment_id": deployment_id,
                }
            )
        for item in items:
            self.store.call("put_item", TableName=self.store.table, Item=dynamo.serialize(item))

    def forget(self, deployment_id: str, sha_prefixes: Iterable[str], repository: str | None) -> None:
        """Drop a deployment from the pending index once it resolved or gave up."""
        key_list = [keys.awaiting_sha(self.space_id, p, deployment_id) for p in set(sha_prefixes)]
        if repository:
            key_list.append(keys.awaiting_repository(self.space_id, repository, deployment_id))
        for key in key_list:
            self.store.call("delete_item", TableName=self.store.table, Key=dynamo.serialize(key))

    def waiting_for(self, sha_prefixes: Iterable[str], repositories: Iterable[str]) -> set[str]:
        """Deployments waiting for any of these shas or repositories (a Query per key; no scan)."""
        found: set[str] = set()
        partitions = [keys.awaiting_sha_pk(self.space_id, p) for p in set(sha_prefixes)]
        partitions += [keys.awaiting_repository_pk(self.space_id, r) for r in set(repositories)]
        for partition in partitions:
            found.update(str(i["deployment_id"]) for i in self.store.query_all(partition=partition))
        return found


class RetryQueue:
    """The attribution-retry queue (SQS, delays up to 15 minutes)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def send(self, space_id: str, deployment_id: str, attempt: int, delay_seconds: int) -> None:
        """One retry message."""
        body = json.dumps({"space_id": space_id, "deployment_id": deployment_id, "attempt": attempt})
        dynamo.client("sqs").send_message(
            QueueUrl=self.url, MessageBody=body, DelaySeconds=max(0, min(900, delay_seconds))
        )
