"""Code data of one space (METRICS §5): repositories, commits and pull requests in the single table.

``CodeStore`` is the repository over ``Store`` that the ingest paths write through (GitHub
webhooks, the native changes API, DX ``setPullServices``) and that implements the attribution
engine's ``ChangeView`` port (``domain.attribution``) with the reads of patterns 70–79 of
``dal.keys``. Every sha lookup goes through the sha's first 7 characters (a begins_with on the
commit partition, or the pull-request sha index) and is then checked with ``shas_match``, so a
7-character prefix and a full sha find each other in either direction.

Writes are idempotent: a commit is keyed by (repository, sha, branch) and keeps the position it
first got, even against a concurrent request storing it too (each Put is conditional on its absence,
in transactions of up to 100, ``put_commits``); a pull request is keyed by (repository, number) and
written with an optimistic ``version`` together with its GitHub-id item in one transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from dora_insights.dal import aws, keys, limits
from dora_insights.dal.store import Store
from dora_insights.domain.changes import MIN_SHA_LENGTH, Commit, PullRequest, shas_match

_DELIVERY_TTL = timedelta(days=30)
_PR_FIELDS = tuple(PullRequest.model_fields)
_COMMIT_FIELDS = tuple(Commit.model_fields)


_STORED = "ConditionalCheckFailed"  # a cancellation reason: the commit is stored already


def _transactions(operations: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Puts packed in order into transactions within DynamoDB's 100 actions and 4 MB."""
    chunks: list[list[dict[str, Any]]] = []
    size = 0
    for operation in operations:
        item_bytes = limits.item_size(operation["Put"]["Item"])
        full = chunks and (
            len(chunks[-1]) == limits.MAX_TRANSACTION_ACTIONS or size + item_bytes > limits.MAX_TRANSACTION_BYTES
        )
        if not chunks or full:
            chunks.append([])
            size = 0
        chunks[-1].append(operation)
        size += item_bytes
    return chunks


class VersionConflictError(Exception):
    """An optimistic write lost a race: re-read and try again."""


def _commit_from_item(item: Mapping[str, Any]) -> Commit:
    return Commit.model_validate({k: item[k] for k in _COMMIT_FIELDS if k in item})


def is_pull_request(item: Mapping[str, Any] | None) -> bool:
    """Whether a pattern-75 item is a full pull request (not a services placeholder)."""
    return item is not None and item.get(keys.TYPE) == keys.T_PULL_REQUEST


def pull_request_from_item(item: Mapping[str, Any]) -> PullRequest:
    """A stored pull request item as the domain model."""
    data = {k: item[k] for k in _PR_FIELDS if k in item}
    if "services" in data and data["services"] is not None:
        data["services"] = tuple(data["services"])
    return PullRequest.model_validate(data)


class CodeStore:
    """``logic.ports.CodeRepository`` (the engine's ``ChangeView`` and the ingest writes) of one space."""

    def __init__(self, store: Store, space_id: str) -> None:
        self.store = store
        self.space_id = space_id

    # --- repositories ----------------------------------------------------------------------
    def remember_repository(self, repository: str, default_branch: str | None, now: str) -> bool:
        """Pattern 70: one UpdateItem returning the old value."""
        key = keys.repository(self.space_id, repository)
        names = {"#t": keys.TYPE, "#r": "repository", "#s": "seen_at", "#g1": keys.GSI1PK, "#g2": keys.GSI1SK}
        values: dict[str, Any] = {
            ":t": keys.T_REPOSITORY,
            ":r": repository,
            ":s": now,
            ":g1": key[keys.GSI1PK],
            ":g2": key[keys.GSI1SK],
        }
        update = "SET #t = :t, #r = :r, #s = :s, #g1 = :g1, #g2 = :g2"
        if default_branch is not None:
            names["#d"] = "default_branch"
            values[":d"] = default_branch
            update += ", #d = :d"
        response = self.store.call(
            "update_item",
            TableName=self.store.table,
            Key=aws.serialize(keys.key(key[keys.PK], key[keys.SK])),
            UpdateExpression=update,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={k: aws.serialize_value(v) for k, v in values.items()},
            ReturnValues="UPDATED_OLD",
        )
        if default_branch is None:
            return False
        before = aws.deserialize(response.get("Attributes") or {}).get("default_branch")
        return bool(before != default_branch)

    def repository_known(self, repository: str) -> bool:
        """Whether any code data of ``repository`` has arrived in this space."""
        key = keys.repository(self.space_id, repository)
        return self.store.get(keys.key(key[keys.PK], key[keys.SK])) is not None

    def default_branch(self, repository: str) -> str | None:
        """Pattern 70: one GetItem."""
        key = keys.repository(self.space_id, repository)
        item = self.store.get(keys.key(key[keys.PK], key[keys.SK]))
        return None if item is None else item.get("default_branch")

    def default_branches_of(self, repositories: Collection[str]) -> dict[str, str | None]:
        """Pattern 70 of many repositories: BatchGetItem, 100 keys a call."""
        wanted = {name: keys.repository(self.space_id, name) for name in repositories}
        items = self.store.batch_get([keys.key(k[keys.PK], k[keys.SK]) for k in wanted.values()])
        found = {str(item[keys.PK]): item.get("default_branch") for item in items}
        return {name: found.get(k[keys.PK]) for name, k in wanted.items()}

    # --- commits ---------------------------------------------------------------------------
    def allocate_positions(self, repository: str, branch: str, count: int) -> int:
        """Pattern 71: one UpdateItem ADD."""
        response = self.store.call(
            "update_item",
            TableName=self.store.table,
            Key=aws.serialize(keys.branch_counter(self.space_id, repository, branch)),
            UpdateExpression="SET #t = :t ADD #n :n",
            ExpressionAttributeNames={"#t": keys.TYPE, "#n": "next_position"},
            ExpressionAttributeValues={
                ":t": aws.serialize_value(keys.T_BRANCH_COUNTER),
                ":n": aws.serialize_value(count),
            },
            ReturnValues="UPDATED_NEW",
        )
        after = int(aws.deserialize(response["Attributes"])["next_position"])
        return after - count

    def existing_commits(self, repository: str, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Commit]:
        """Pattern 72's items: a BatchGetItem per 100, read consistently (a client's retry of a push a
        moment after it, or an overlapping push, finds the commits it stored and gives them no new
        position)."""
        wanted = [keys.commit(self.space_id, repository, sha, branch) for sha, branch in pairs]
        found = self.store.batch_get(wanted, consistent=True)
        return {(str(i["sha"]), str(i["branch"])): _commit_from_item(i) for i in found}

    def link_pull_requests(self, commits: Sequence[Commit]) -> int:
        """Give stored commits the pull request each one now names (pattern 74's index with it), each an
        UpdateItem conditional on the commit having none yet (a link is never moved); how many were."""
        linked = 0
        for commit in commits:
            if commit.pull_request is None:
                continue
            indexes = keys.commit_indexes(
                self.space_id, commit.repository, commit.sha, commit.branch, commit.position, commit.pull_request
            )
            done = self.store.update_if(
                keys.commit(self.space_id, commit.repository, commit.sha, commit.branch),
                UpdateExpression="SET pull_request = :n, #g2pk = :pk, #g2sk = :sk",
                ConditionExpression="attribute_exists(PK) AND attribute_not_exists(pull_request)",
                ExpressionAttributeNames={"#g2pk": keys.GSI2PK, "#g2sk": keys.GSI2SK},
                ExpressionAttributeValues=aws.serialize(
                    {":n": commit.pull_request, ":pk": indexes[keys.GSI2PK], ":sk": indexes[keys.GSI2SK]}
                ),
            )
            linked += done is not None
        return linked

    def commit_item(self, commit: Commit) -> dict[str, Any]:
        """A commit as a table item (pattern 72 with the indexes of 73 and 74)."""
        return {
            **keys.commit(self.space_id, commit.repository, commit.sha, commit.branch),
            **keys.commit_indexes(
                self.space_id, commit.repository, commit.sha, commit.branch, commit.position, commit.pull_request
            ),
            keys.TYPE: keys.T_COMMIT,
            **commit.model_dump(mode="json", exclude_none=True),
        }

    def put_commits(self, commits: Sequence[Commit]) -> int:
        """Store the commits not stored yet; how many were. Each Put is conditional on the commit's
        absence, so a commit keeps the position it first got when two requests race to store it
        (``existing_commits`` cannot see a write still in flight): TransactWriteItems of up to 100 Puts
        within 4 MB, a quarter of the calls of 25-item BatchWriteItems at twice their write capacity. A
        transaction cancelled because some of its commits were stored meanwhile is sent again without
        them; one cancelled for contention alone is retried by ``Store.transact_contended``, and
        ``WriteContendedError`` (503: retry) if it stays so."""
        operations = [self.store.put_op(self.commit_item(c), must_not_exist=True) for c in commits]
        return sum(self._put_absent(chunk) for chunk in _transactions(operations))

    def _put_absent(self, operations: Sequence[dict[str, Any]]) -> int:
        """One transaction of conditional Puts, each dropped once its item is found stored; how many
        went through."""
        left = list(operations)
        while left:
            reasons = self.store.transact_or_contended(left, "the commits")
            if reasons is None:
                return len(left)
            codes = [str(reason.get("Code", "None")) for reason in reasons]
            if len(codes) != len(left) or _STORED not in codes:
                raise RuntimeError(f"DynamoDB cancelled the commits' transaction: {sorted(set(codes))}")
            left = [op for op, code in zip(left, codes, strict=True) if code != _STORED]
        return 0

    def commits_by_sha(self, repository: str, shas: Collection[str]) -> Sequence[Commit]:
        """Pattern 72: a Query per sha prefix."""
        found: dict[tuple[str, str], Commit] = {}
        for prefix in sorted({sha[:MIN_SHA_LENGTH] for sha in shas}):
            for item in self.store.query_all(partition=keys.commits_pk(self.space_id, repository), sort_prefix=prefix):
                commit = _commit_from_item(item)
                if any(shas_match(commit.sha, sha) for sha in shas):
                    found[(commit.sha, commit.branch)] = commit
        return list(found.values())

    def commits_in_range(
        self, repository: str, branch: str, after_position: int | None, up_to_position: int, limit: int
    ) -> Sequence[Commit]:
        """Pattern 73: one descending range Query, paged."""
        low = keys.position_sort(0 if after_position is None else after_position + 1)
        if up_to_position < 0 or (after_position is not None and after_position >= up_to_position) or limit <= 0:
            return []
        high = keys.position_sort(up_to_position)
        result: list[Commit] = []
        start: dict[str, Any] | None = None
        while len(result) < limit:
            items, start = self.store.query_page(
                partition=keys.branch_commits_pk(self.space_id, repository, branch),
                index=keys.GSI1,
                ascending=False,
                limit=min(1000, limit - len(result)),
                start_key=start,
                sort_between=(low, high),
            )
            result.extend(_commit_from_item(i) for i in items)
            if start is None:
                break
        return result[:limit]

    def commits_of_pull_requests(self, repository: str, numbers: Collection[int]) -> Sequence[Commit]:
        """Pattern 74: a Query per pull request."""
        result: list[Commit] = []
        for number in sorted(set(numbers)):
            partition = keys.pull_request_commits_pk(self.space_id, repository, number)
            result.extend(_commit_from_item(i) for i in self.store.query_all(partition=partition, index=keys.GSI2))
        return result

    # --- pull requests ---------------------------------------------------------------------
    def get_pull_request_item(self, repository: str, number: int) -> dict[str, Any] | None:
        """Pattern 75, read consistently."""
        return self.store.get(keys.pull_request(self.space_id, repository, number), consistent=True)

    def get_github_pull(self, github_id: int) -> dict[str, Any] | None:
        """Pattern 79, read consistently."""
        return self.store.get(keys.github_pull(self.space_id, github_id), consistent=True)

    def _versioned_put(self, item: Mapping[str, Any], expected: int | None) -> dict[str, Any]:
        op: dict[str, Any] = {"TableName": self.store.table, "Item": aws.serialize(item)}
        if expected is None:
            op["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            op["ConditionExpression"] = "#v = :v"
            op["ExpressionAttributeNames"] = {"#v": "version"}
            op["ExpressionAttributeValues"] = {":v": aws.serialize_value(expected)}
        return {"Put": op}

    def pull_request_item(self, pr: PullRequest, version: int) -> dict[str, Any]:
        """A pull request as a table item (pattern 75 with the indexes of 76–78)."""
        return {
            **keys.pull_request(self.space_id, pr.repository, pr.number),
            **keys.pull_request_indexes(
                self.space_id,
                pr.repository,
                pr.number,
                pr.base_ref,
                pr.merge_commit_sha[:MIN_SHA_LENGTH] if pr.merge_commit_sha else None,
                pr.head_sha[:MIN_SHA_LENGTH] if pr.head_sha else None,
                pr.merged_at,
            ),
            keys.TYPE: keys.T_PULL_REQUEST,
            "version": version,
            **pr.model_dump(mode="json", exclude_none=True),
        }

    def write_pull_request(
        self,
        pr: PullRequest,
        *,
        expected_version: int | None,
        github_expected_version: int | None,
        write_github_item: bool,
    ) -> None:
        """Patterns 75 and 79 in one transaction, each conditional on its version."""
        version = (expected_version or 0) + 1
        operations = [self._versioned_put(self.pull_request_item(pr, version), expected_version)]
        if write_github_item and pr.github_id is not None:
            pointer = {
                **keys.github_pull(self.space_id, pr.github_id),
                keys.TYPE: keys.T_GITHUB_PULL,
                "repository": pr.repository,
                "number": pr.number,
                "services": list(pr.services) if pr.services is not None else None,
                "version": (github_expected_version or 0) + 1,
            }
            operations.append(self._versioned_put(pointer, github_expected_version))
        self._transact(operations)

    def write_placeholder(
        self, repository: str, number: int, services: Sequence[str], *, expected_version: int | None, now: str
    ) -> None:
        """Pattern 75 without index attributes, conditional on its version."""
        item = {
            **keys.pull_request(self.space_id, repository, number),
            keys.TYPE: keys.T_PULL_REQUEST_PLACEHOLDER,
            "repository": repository,
            "number": number,
            "services": list(services),
            "version": (expected_version or 0) + 1,
            "updated_at": now,
        }
        self._transact([self._versioned_put(item, expected_version)])

    def write_github_placeholder(
        self, github_id: int, services: Sequence[str], *, expected_version: int | None, now: str
    ) -> None:
        """Pattern 79 without repository, conditional on its version."""
        item = {
            **keys.github_pull(self.space_id, github_id),
            keys.TYPE: keys.T_GITHUB_PULL,
            "services": list(services),
            "version": (expected_version or 0) + 1,
            "updated_at": now,
        }
        self._transact([self._versioned_put(item, expected_version)])

    def _transact(self, operations: Sequence[Mapping[str, Any]]) -> None:
        """A versioned write: ``VersionConflictError`` when a condition failed (the caller reads again);
        cancelled for contention alone, sent again after a pause, then ``WriteContendedError`` (503)."""
        reasons = self.store.transact_or_contended(operations, "the pull request")
        if reasons is not None:
            raise VersionConflictError(f"a versioned write was cancelled: {reasons}")

    def _pull_requests_of(self, items: Iterable[Mapping[str, Any]]) -> list[PullRequest]:
        return [pull_request_from_item(i) for i in items if i.get(keys.TYPE) == keys.T_PULL_REQUEST]

    def pull_requests_by_sha(self, shas: Collection[str], repository: str | None) -> Sequence[PullRequest]:
        """Patterns 76 and 77: two Queries per sha prefix."""
        found: dict[tuple[str, int], PullRequest] = {}
        for prefix in sorted({sha[:MIN_SHA_LENGTH] for sha in shas}):
            partition = keys.pull_requests_by_sha_pk(self.space_id, prefix)
            for index in (keys.GSI1, keys.GSI2):
                for pr in self._pull_requests_of(self.store.query_all(partition=partition, index=index)):
                    if repository is not None and pr.repository != repository:
                        continue
                    if any(pr.merged_by(sha) or pr.headed_by(sha) for sha in shas):
                        found[(pr.repository, pr.number)] = pr
        return sorted(found.values(), key=lambda pr: (pr.repository, pr.number))

    def pull_requests_merged(
        self, repository: str, base_ref: str, merged_after: str | None, merged_up_to: str | None
    ) -> Sequence[PullRequest]:
        """Pattern 78: one range Query."""
        low = (merged_after + "#\uffff") if merged_after else "0"
        high = (merged_up_to + "#\uffff") if merged_up_to else "9"
        items = self.store.query_all(
            partition=keys.merged_pull_requests_pk(self.space_id, repository, base_ref),
            index=keys.GSI3,
            sort_between=(low, high),
        )
        return self._pull_requests_of(items)

    # --- webhook deliveries ----------------------------------------------------------------
    def delivery_seen(self, delivery_id: str, now: datetime) -> bool:
        """Pattern 80, read consistently; a record past its 30 days is none (``keys.expired``)."""
        item = self.store.get(keys.webhook_delivery(self.space_id, delivery_id), consistent=True)
        return item is not None and not keys.expired(item, now)

    def remember_delivery(self, delivery_id: str, event: str, now: datetime) -> None:
        """Pattern 80, expiring after 30 days (TTL)."""
        item = {
            **keys.webhook_delivery(self.space_id, delivery_id),
            keys.TYPE: keys.T_WEBHOOK_DELIVERY,
            "event": event,
            "processed_at": now.astimezone(UTC).isoformat(),
            keys.TTL: int((now + _DELIVERY_TTL).timestamp()),
        }
        self.store.call("put_item", TableName=self.store.table, Item=aws.serialize(item))
