"""Recompute health: failing and quarantined streams (pattern 18), each space's last visits
(pattern 19) and the rotation cursor of the scheduled recompute (pattern 20, system).

A stream's failure count is one atomic ``ADD``; the move into quarantine is a conditional
``SET`` that only the update reaching the limit makes, so overlapping runs never lose a count
nor move the quarantine time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from dora_insights.dal import aws, keys
from dora_insights.dal.store import Store
from dora_insights.domain.health import FailureNote, SpaceHealthRecord, StreamHealthRecord
from dora_insights.domain.model import CatalogueKind

__all__ = ["FailureNote", "HealthStore"]


class HealthStore:
    """``logic.ports.HealthRepository`` over the table adapter."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- patterns 18 and 19 --------------------------------------------------------------
    def space_health(self, space_id: str) -> tuple[SpaceHealthRecord | None, dict[str, StreamHealthRecord]]:
        """One Query of the space's health partition (a small one)."""
        space: SpaceHealthRecord | None = None
        streams: dict[str, StreamHealthRecord] = {}
        for item in self.store.query_all(partition=keys.health_pk(space_id)):
            if item.get(keys.TYPE) == keys.T_STREAM_HEALTH:
                record = _stream_record(item)
                streams[record.stream] = record
            elif item.get(keys.TYPE) == keys.T_SPACE_HEALTH:
                space = _space_record(item)
        return space, streams

    def stream_health(self, space_id: str, stream: str) -> StreamHealthRecord | None:
        """One GetItem."""
        item = self.store.get(keys.stream_health(space_id, stream))
        return _stream_record(item) if item else None

    def record_stream_failure(
        self,
        space_id: str,
        stream: str,
        *,
        dirty_at: str,
        at: str,
        run: str,
        note: FailureNote,
        quarantine_after: int,
    ) -> StreamHealthRecord:
        """An UpdateItem ADD conditional on the record not naming ``run`` yet (a second failure of the
        same run is not counted: the record as it is); when the count reaches the limit, a second
        UpdateItem conditional on the count."""
        response = self.store.update_if(
            keys.stream_health(space_id, stream),
            UpdateExpression=(
                "ADD #failures :one SET #type = :type, #stream = :stream, #dirty = :dirty, #run = :run, "
                "#first = if_not_exists(#first, :at), #last = :at, #error_type = :error_type, #message = :message"
            ),
            ConditionExpression="attribute_not_exists(#run) OR #run <> :run",
            ExpressionAttributeNames={
                "#run": "failed_run",
                "#type": keys.TYPE,
                "#failures": "failures",
                "#stream": "stream",
                "#dirty": "dirty_at",
                "#first": "first_failure_at",
                "#last": "last_failure_at",
                "#error_type": "error_type",
                "#message": "error_message",
            },
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":type": {"S": keys.T_STREAM_HEALTH},
                ":stream": {"S": stream},
                ":dirty": {"S": dirty_at},
                ":run": {"S": run},
                ":at": {"S": at},
                ":error_type": {"S": note.error_type},
                ":message": {"S": note.message},
            },
            ReturnValues="ALL_NEW",
        )
        if response is None:  # this run's failure is counted already (both items of a split space's tick)
            counted = self.stream_health(space_id, stream)
            if counted is not None:
                return counted
            return self.record_stream_failure(  # cleared meanwhile: count it afresh
                space_id, stream, dirty_at=dirty_at, at=at, run=run, note=note, quarantine_after=quarantine_after
            )
        record = _stream_record(aws.deserialize(response["Attributes"]))
        if record.quarantined or record.failures < quarantine_after:
            return record
        moved = self.store.update_if(
            keys.stream_health(space_id, stream),
            UpdateExpression="SET #quarantined = :at",
            ConditionExpression="attribute_exists(PK) AND #failures >= :limit AND attribute_not_exists(#quarantined)",
            ExpressionAttributeNames={"#failures": "failures", "#quarantined": "quarantined_at"},
            ExpressionAttributeValues={":at": {"S": at}, ":limit": {"N": str(quarantine_after)}},
        )
        if moved is None:
            return self.stream_health(space_id, stream) or record  # another run moved it first
        return replace(record, quarantined_at=at)

    def clear_stream(self, space_id: str, stream: str) -> None:
        """One DeleteItem."""
        self.store.call(
            "delete_item", TableName=self.store.table, Key=aws.serialize(keys.stream_health(space_id, stream))
        )

    def record_space_visit(self, space_id: str, at: str, *, failure: tuple[str, FailureNote] | None) -> None:
        """One UpdateItem of the space's record."""
        values: dict[str, Any] = {":type": {"S": keys.T_SPACE_HEALTH}, ":at": {"S": at}}
        names = {"#type": keys.TYPE}
        if failure is None:
            expression = "SET #type = :type, #success = :at"
            names["#success"] = "last_success_at"
        else:
            stage, note = failure
            expression = (
                "SET #type = :type, #failure = :at, #stage = :stage, #error_type = :error_type, #message = :message"
            )
            names |= {
                "#failure": "last_failure_at",
                "#stage": "stage",
                "#error_type": "error_type",
                "#message": "error_message",
            }
            values |= {
                ":stage": {"S": stage},
                ":error_type": {"S": note.error_type},
                ":message": {"S": note.message},
            }
        self.store.call(
            "update_item",
            TableName=self.store.table,
            Key=aws.serialize(keys.space_health(space_id)),
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    # --- pattern 20 ----------------------------------------------------------------------
    def rotation_cursor(self) -> str | None:
        """Pattern 20, read consistently."""
        item = self.store.get(keys.recompute_cursor(), consistent=True)
        return str(item["after"]) if item else None

    def save_rotation_cursor(self, after: str, at: str) -> None:
        """Pattern 20: a plain Put (the latest run wins)."""
        item = {**keys.recompute_cursor(), keys.TYPE: keys.T_RECOMPUTE_CURSOR, "after": after, "saved_at": at}
        self.store.call("put_item", TableName=self.store.table, Item=aws.serialize(item))

    # --- names of the streams' entities ---------------------------------------------------
    def catalogue_names(self, space_id: str, ids: Iterable[str]) -> dict[str, str]:
        """One BatchGetItem of the catalogue's id items."""
        kinds = {k.value for k in CatalogueKind}
        wanted = []
        for entity_id in set(ids):
            prefix, _, digits = entity_id.rpartition("-")
            if prefix in kinds and digits.isascii() and digits.isdigit() and len(digits) <= 9:
                wanted.append(keys.catalogue_id(space_id, prefix, int(digits)))
        return {str(item["id"]): str(item["name"]) for item in self.store.batch_get(wanted)}


def _stream_record(item: Mapping[str, Any]) -> StreamHealthRecord:
    return StreamHealthRecord(
        stream=str(item["stream"]),
        failures=int(item.get("failures", 0)),
        first_failure_at=str(item.get("first_failure_at", "")),
        last_failure_at=str(item.get("last_failure_at", "")),
        dirty_at=str(item.get("dirty_at", "")),
        error_type=str(item.get("error_type", "")),
        error_message=str(item.get("error_message", "")),
        quarantined_at=item.get("quarantined_at"),
    )


def _space_record(item: Mapping[str, Any]) -> SpaceHealthRecord:
    return SpaceHealthRecord(
        last_success_at=item.get("last_success_at"),
        last_failure_at=item.get("last_failure_at"),
        stage=item.get("stage"),
        error_type=item.get("error_type"),
        error_message=item.get("error_message"),
    )
