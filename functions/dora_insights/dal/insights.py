"""Saved insights storage: insights, views, activity, sharing and thresholds (keys 50–60)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from dora_insights.dal import dynamo, keys
from dora_insights.dal.store import Store
from dora_insights.errors import ResourceConflictError, ResourceNotFoundError

_HIDDEN = frozenset({keys.PK, keys.SK, keys.TYPE, keys.GSI1PK, keys.GSI1SK, keys.TTL})
MAX_CHECKS = 50


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in _HIDDEN}


class InsightStore:
    """Every insight item of a space; each change is one transaction with its activity entry."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- insights ------------------------------------------------------------------------
    def get(self, space_id: str, insight_id: int) -> dict[str, Any] | None:
        item = self.store.get(keys.insight(space_id, insight_id), consistent=True)
        return _plain(item) if item and item.get(keys.TYPE) == keys.T_INSIGHT else None

    def list_all(self, space_id: str) -> list[dict[str, Any]]:
        """Every insight of the space (sharing items share the partition and are skipped)."""
        return [
            _plain(i)
            for i in self.store.query_all(partition=keys.insights_pk(space_id))
            if i.get(keys.TYPE) == keys.T_INSIGHT
        ]

    def _activity_op(self, space_id: str, entry: dict[str, Any], unique: str) -> dict[str, Any]:
        item = {
            **keys.activity(space_id, entry["created_at"], entry["item_id"], unique),
            keys.TYPE: keys.T_ACTIVITY,
            **entry,
        }
        return self.store.put_op(item)

    def create(self, space_id: str, insight: dict[str, Any], activity: dict[str, Any], unique: str) -> None:
        item = {**keys.insight(space_id, insight["id"]), keys.TYPE: keys.T_INSIGHT, **insight}
        self.store.transact(
            [self.store.put_op(item, must_not_exist=True), self._activity_op(space_id, activity, unique)]
        )

    def replace(
        self,
        space_id: str,
        insight: dict[str, Any],
        *,
        expected_version: int,
        activity: dict[str, Any] | None,
        unique: str,
    ) -> None:
        """Write the new version unless someone else changed the insight meanwhile (409)."""
        item = {**keys.insight(space_id, insight["id"]), keys.TYPE: keys.T_INSIGHT, **insight}
        put = self.store.put_op(item)
        put["Put"]["ConditionExpression"] = "attribute_exists(PK) AND #v = :v"
        put["Put"]["ExpressionAttributeNames"] = {"#v": "version"}
        put["Put"]["ExpressionAttributeValues"] = {":v": {"N": str(expected_version)}}
        operations = [put] + ([self._activity_op(space_id, activity, unique)] if activity else [])
        try:
            self.store.transact(operations)
        except ClientError as error:
            if dynamo.error_code(error) == "TransactionCanceledException":
                raise ResourceConflictError("the insight was changed by another request; retry") from None
            raise

    # --- views ---------------------------------------------------------------------------
    def record_view(
        self, space_id: str, insight_id: int, viewer: dict[str, Any], viewer_key: str, day: str, at: str, expires: int
    ) -> None:
        """Count a view once per viewer, insight and day, and remember the viewer's last view."""
        last = {
            **keys.last_viewed(space_id, viewer_key, insight_id),
            keys.TYPE: keys.T_INSIGHT_LAST_VIEWED,
            "insight_id": insight_id,
            "viewed_at": at,
        }
        marker = {
            **keys.insight_view(space_id, day, insight_id, viewer_key),
            keys.TYPE: keys.T_INSIGHT_VIEW,
            keys.TTL: expires,
        }
        count = {
            "Update": {
                "TableName": self.store.table,
                "Key": dynamo.serialize(keys.insight_view_count(space_id, day, insight_id)),
                "UpdateExpression": "ADD view_count :one SET #t = :t, insight_id = :id, last_viewed_at = :at, "
                "recent_viewers = list_append(:viewer, if_not_exists(recent_viewers, :empty)), #ttl = :exp",
                "ExpressionAttributeNames": {"#t": keys.TYPE, "#ttl": keys.TTL},
                "ExpressionAttributeValues": {
                    ":one": {"N": "1"},
                    ":t": {"S": keys.T_INSIGHT_VIEW_COUNT},
                    ":id": {"N": str(insight_id)},
                    ":at": {"S": at},
                    ":viewer": dynamo.serialize_value([{**viewer, "viewed_at": at}]),
                    ":empty": {"L": []},
                    ":exp": {"N": str(expires)},
                },
            }
        }
        try:
            self.store.transact([self.store.put_op(marker, must_not_exist=True), count, self.store.put_op(last)])
        except ClientError as error:
            if dynamo.error_code(error) != "TransactionCanceledException":
                raise
            # Already counted today for this viewer: only the viewer's last-viewed time moves.
            self.store.transact([self.store.put_op(last)])

    def last_viewed(self, space_id: str, viewer_key: str) -> list[dict[str, Any]]:
        """The viewer's last-viewed entries (``insight_id``, ``viewed_at``)."""
        return [_plain(i) for i in self.store.query_all(partition=keys.last_viewed_pk(space_id, viewer_key))]

    def last_viewed_of(self, space_id: str, viewer_key: str, insight_id: int) -> str | None:
        item = self.store.get(keys.last_viewed(space_id, viewer_key, insight_id))
        return str(item["viewed_at"]) if item else None

    def view_counts(self, space_id: str, days: Iterable[str]) -> list[dict[str, Any]]:
        """Per-day view counts (``insight_id``, ``view_count``, ``recent_viewers``, ``last_viewed_at``)."""
        found: list[dict[str, Any]] = []
        for day in days:
            found.extend(_plain(i) for i in self.store.query_all(partition=keys.insight_view_counts_pk(space_id, day)))
        return found

    # --- activity ------------------------------------------------------------------------
    def activity_page(
        self, space_id: str, insight_id: int | None, *, limit: int, start: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        if insight_id is None:
            items, last = self.store.query_page(
                partition=keys.activity_pk(space_id), ascending=False, limit=limit, start_key=start
            )
        else:
            items, last = self.store.query_page(
                partition=keys.insight_activity_pk(space_id, insight_id),
                index=keys.GSI1,
                ascending=False,
                limit=limit,
                start_key=start,
            )
        return [_plain(i) for i in items], last

    def activity_count(self, space_id: str, insight_id: int | None) -> int:
        if insight_id is None:
            return sum(1 for _ in self.store.query_all(partition=keys.activity_pk(space_id)))
        return sum(
            1 for _ in self.store.query_all(partition=keys.insight_activity_pk(space_id, insight_id), index=keys.GSI1)
        )

    # --- sharing -------------------------------------------------------------------------
    def get_sharing(self, space_id: str, insight_id: int) -> dict[str, Any] | None:
        item = self.store.get(keys.sharing(space_id, insight_id), consistent=True)
        return _plain(item) if item else None

    def put_sharing(
        self,
        space_id: str,
        insight_id: int,
        sharing: dict[str, Any],
        *,
        new_token_hash: str | None = None,
        old_token_hash: str | None = None,
    ) -> None:
        """Write the sharing item and swap its token lookup in one transaction (old token dead at once)."""
        item = {**keys.sharing(space_id, insight_id), keys.TYPE: keys.T_SHARING, **sharing}
        operations: list[dict[str, Any]] = [self.store.put_op(item)]
        if new_token_hash is not None:
            lookup = {
                **keys.share_token(new_token_hash),
                keys.TYPE: keys.T_SHARE_TOKEN,
                "space_id": space_id,
                "insight_id": insight_id,
            }
            operations.append(self.store.put_op(lookup, must_not_exist=True))
        if old_token_hash is not None and old_token_hash != new_token_hash:
            operations.append(
                {"Delete": {"TableName": self.store.table, "Key": dynamo.serialize(keys.share_token(old_token_hash))}}
            )
        self.store.transact(operations)

    def resolve_share_token(self, token_hash: str) -> tuple[str, int] | None:
        item = self.store.get(keys.share_token(token_hash), consistent=True)
        return (str(item["space_id"]), int(item["insight_id"])) if item else None

    def put_session(self, session_hash: str, space_id: str, insight_id: int, expires: int) -> None:
        item = {
            **keys.share_session(session_hash),
            keys.TYPE: keys.T_SHARE_SESSION,
            "space_id": space_id,
            "insight_id": insight_id,
            keys.TTL: expires,
        }
        self.store.transact([self.store.put_op(item, must_not_exist=True)])

    def get_session(self, session_hash: str) -> dict[str, Any] | None:
        item = self.store.get(keys.share_session(session_hash), consistent=True)
        return {k: v for k, v in item.items() if k not in (keys.PK, keys.SK, keys.TYPE)} if item else None

    def failed_logins(self, space_id: str, insight_id: int, window: str) -> int:
        item = self.store.get(keys.share_login_failures(space_id, insight_id, window), consistent=True)
        return int(item["failures"]) if item else 0

    def add_failed_login(self, space_id: str, insight_id: int, window: str, expires: int) -> None:
        self.store.call(
            "update_item",
            TableName=self.store.table,
            Key=dynamo.serialize(keys.share_login_failures(space_id, insight_id, window)),
            UpdateExpression="ADD failures :one SET #t = :t, #ttl = :exp",
            ExpressionAttributeNames={"#t": keys.TYPE, "#ttl": keys.TTL},
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":t": {"S": keys.T_SHARE_LOGIN_FAILURES},
                ":exp": {"N": str(expires)},
            },
        )

    # --- thresholds ----------------------------------------------------------------------
    def thresholds_of(self, space_id: str, insight_id: int) -> list[dict[str, Any]]:
        return [
            _plain(i)
            for i in self.store.query_all(
                partition=keys.thresholds_pk(space_id), sort_prefix=keys.insight_thresholds_prefix(insight_id)
            )
        ]

    def all_thresholds(self, space_id: str) -> list[dict[str, Any]]:
        return [_plain(i) for i in self.store.query_all(partition=keys.thresholds_pk(space_id))]

    def get_threshold(self, space_id: str, insight_id: int, threshold_id: str) -> dict[str, Any] | None:
        item = self.store.get(keys.threshold(space_id, insight_id, threshold_id), consistent=True)
        return _plain(item) if item else None

    def put_threshold(self, space_id: str, threshold: dict[str, Any], *, create: bool = False) -> None:
        item = {
            **keys.threshold(space_id, threshold["insight"], threshold["id"]),
            keys.TYPE: keys.T_THRESHOLD,
            **threshold,
        }
        self.store.transact([self.store.put_op(item, must_not_exist=create)])

    def delete_threshold(self, space_id: str, insight_id: int, threshold_id: str) -> None:
        try:
            self.store.call(
                "delete_item",
                TableName=self.store.table,
                Key=dynamo.serialize(keys.threshold(space_id, insight_id, threshold_id)),
                ConditionExpression="attribute_exists(PK)",
            )
        except ClientError as error:
            if dynamo.error_code(error) == "ConditionalCheckFailedException":
                raise ResourceNotFoundError(f"threshold '{threshold_id}' not found") from None
            raise


def newest_first(checks: Sequence[dict[str, Any]], check: dict[str, Any]) -> list[dict[str, Any]]:
    """A threshold's checks with a new one first, keeping the latest ``MAX_CHECKS``."""
    return [check, *checks][:MAX_CHECKS]
