"""Incident webhooks in the single table: each tool's configuration (pattern 110), the deliveries
already applied (pattern 111), the end of a resolution that came before its trigger and could not be
placed on its own (pattern 112), and the resolution of an incident's failure event (pattern 16).

A configuration holds PagerDuty's signing secret as its KMS ciphertext (``signing_secret_encrypted``,
``dal.secrets``), or, written before encryption, as given (``signing_secret``: read, and dropped by the
next ``put_config``, which replaces the whole item). Its ``space_id`` and ``source`` are those of the key it
was read by, never the item's own, so the secret's encryption context is the space it was found in.

A resolution rewrites the failure item only while it is still the incident's and still open (or
ends earlier), in one transaction with the dirty marks of the streams it concerns (pattern 14, as
``dal.failures`` marks them on create), so the recompute picks up its TimeToRestore. Those marks are
shared with every ingest and the recompute, so DynamoDB may cancel the transaction for contention alone:
it is sent again after short pauses (``Store.transact_contended``), and one still contended is a
``WriteContendedError`` (503: the tool redelivers), never "not newer". Marks past what the transaction
holds (over 99 streams) are written before it, as ``dal.failures`` does on removal (one too many is
harmless): a 503 there has resolved nothing, so the redelivery marks every stream again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dora_insights.dal import aws, keys
from dora_insights.dal.failures import FailureStore
from dora_insights.dal.store import Store
from dora_insights.domain.incidents import IncidentSource, IncidentSourceConfig
from dora_insights.domain.model import FailureEvent
from dora_insights.domain.times import format_instant, parse_stored

_DELIVERY_TTL = timedelta(days=30)
_CONFIG_FIELDS = frozenset(IncidentSourceConfig.model_fields)


class IncidentStore:
    """Repository of incident-webhook items over the table adapter."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- configuration (pattern 110) ------------------------------------------------------
    def get_config(self, space_id: str, source: IncidentSource) -> IncidentSourceConfig | None:
        """The tool's configuration in the space as stored now (consistent: a new secret applies at once)."""
        item = self.store.get(keys.incident_source(space_id, source.value), consistent=True)
        if item is None:
            return None
        stored = {k: v for k, v in item.items() if k in _CONFIG_FIELDS}
        return IncidentSourceConfig.model_validate({**stored, "space_id": space_id, "source": source.value})

    def put_config(self, config: IncidentSourceConfig) -> None:
        """Store the configuration, replacing the previous one."""
        item = {
            **keys.incident_source(config.space_id, config.source.value),
            keys.TYPE: keys.T_INCIDENT_SOURCE,
            **config.model_dump(mode="json", exclude_none=True),
        }
        self.store.call("put_item", TableName=self.store.table, Item=aws.serialize(item))

    # --- deliveries (pattern 111) ---------------------------------------------------------
    def delivery_seen(self, space_id: str, source: IncidentSource, delivery_id: str, now: datetime) -> bool:
        """Whether this delivery was applied within the 30 days its record is kept (``keys.expired``)."""
        found = self.store.get(keys.incident_delivery(space_id, source.value, delivery_id), consistent=True)
        return found is not None and not keys.expired(found, now)

    def remember_delivery(
        self, space_id: str, source: IncidentSource, delivery_id: str, *, event: str, failure_id: str, now: datetime
    ) -> None:
        """Record an applied delivery (expires after 30 days, longer than either tool retries)."""
        item = {
            **keys.incident_delivery(space_id, source.value, delivery_id),
            keys.TYPE: keys.T_INCIDENT_DELIVERY,
            "event": event,
            "failure_id": failure_id,
            "processed_at": now.astimezone(UTC).isoformat(),
            keys.TTL: int((now + _DELIVERY_TTL).timestamp()),
        }
        self.store.call("put_item", TableName=self.store.table, Item=aws.serialize(item))

    # --- resolutions waiting for their trigger (pattern 112) ------------------------------
    def hold_resolution(
        self, space_id: str, source: IncidentSource, incident_id: str, finished_at: datetime, *, now: datetime
    ) -> None:
        """Keep a resolution's end for the incident's trigger (the latest end wins: reopened and resolved
        again); expires as applied deliveries do, past either tool's retries."""
        end = format_instant(finished_at)
        self.store.update_if(
            keys.incident_resolution(space_id, source.value, incident_id),
            UpdateExpression="SET #t = :t, finished_at = :f, #ttl = :ttl",
            ConditionExpression="attribute_not_exists(finished_at) OR finished_at < :f",
            ExpressionAttributeNames={"#t": keys.TYPE, "#ttl": keys.TTL},
            ExpressionAttributeValues=aws.serialize(
                {":t": keys.T_INCIDENT_RESOLUTION, ":f": end, ":ttl": int((now + _DELIVERY_TTL).timestamp())}
            ),
        )

    def held_resolution(
        self, space_id: str, source: IncidentSource, incident_id: str, now: datetime
    ) -> datetime | None:
        """The end a resolution that came first left for this incident's trigger, if any within the 30 days
        it is kept (``keys.expired``)."""
        item = self.store.get(keys.incident_resolution(space_id, source.value, incident_id), consistent=True)
        return parse_stored(str(item["finished_at"])) if item and not keys.expired(item, now) else None

    # --- failure events -------------------------------------------------------------------
    def place(self, placed: FailureEvent, previous: FailureEvent, *, now: str) -> bool:
        """Replace the failure read as ``previous`` with ``placed`` (same id: another place, title or
        severity), with the dirty marks of the streams of both places; False when the stored one is no
        longer ``previous`` (a ``WriteContendedError`` when concurrent writes kept cancelling it)."""
        failures = FailureStore(self.store)
        streams = {
            *failures.affected_streams(previous.space_id, previous.project_ids, previous.environment_id),
            *failures.affected_streams(placed.space_id, placed.project_ids, placed.environment_id),
        }
        put: dict[str, Any] = {
            "Put": {
                "TableName": self.store.table,
                "Item": aws.serialize(failures.item(placed)),
                "ConditionExpression": "attribute_exists(PK) AND body_hash = :h",
                "ExpressionAttributeValues": aws.serialize({":h": previous.body_hash}),
            }
        }
        return self._replace(put, [self.store.dirty_op(placed.space_id, s, now) for s in sorted(streams)], "the move")

    def resolve(self, resolved: FailureEvent, *, now: str) -> bool:
        """Replace the failure with ``resolved`` (same id, a ``finished_at``) if the stored one is of the
        same source and open or ending earlier, with the dirty marks of its streams; False otherwise (a
        ``WriteContendedError`` when concurrent writes kept cancelling it: nothing was resolved)."""
        if resolved.finished_at is None:  # pragma: no cover - logic resolves with an end
            raise ValueError("a resolution has an end")
        failures = FailureStore(self.store)
        streams = failures.affected_streams(resolved.space_id, resolved.project_ids, resolved.environment_id)
        marks = [self.store.dirty_op(resolved.space_id, s, now) for s in streams]
        put: dict[str, Any] = {
            "Put": {
                "TableName": self.store.table,
                "Item": aws.serialize(failures.item(resolved)),
                "ConditionExpression": (
                    "attribute_exists(PK) AND #source = :source"
                    " AND (attribute_not_exists(finished_at) OR finished_at < :finished)"
                ),
                "ExpressionAttributeNames": {"#source": "source"},
                "ExpressionAttributeValues": aws.serialize(
                    {":source": resolved.source.value, ":finished": resolved.finished_at}
                ),
            }
        }
        return self._replace(put, marks, "the resolution")

    def _replace(self, put: dict[str, Any], marks: list[dict[str, Any]], what: str) -> bool:
        """The conditional Put with the marks that fit beside it; the others first (a 503 there changed
        nothing but marks, one too many is harmless)."""
        room = aws.MAX_TRANSACTION_ITEMS - 1
        for chunk in aws.chunks(marks[room:], aws.MAX_TRANSACTION_ITEMS):
            self.store.transact_unconditional(chunk)
        return self.store.transact_or_contended([put, *marks[:room]], what) is None
