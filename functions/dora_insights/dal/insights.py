"""Saved insights storage: insights, views, activity, sharing, thresholds and their alert outbox (keys 50–61).

A view (``record_view``) counts once per viewer, insight and day: the day's marker (conditional on its
absence) and the shared per-day count of the insight change in one transaction. DynamoDB cancels it for
contention alone when another view of the insight updates that count at the same moment: it is sent
again after short pauses, and a view still contended is dropped with a warning rather than answered 503.
A view count feeds only the trending ranking, which a lost view hardly moves, while a 503 on the request
a client sends as it opens an insight would cost every client a retry path; the marker is not written,
so the viewer's next view that day counts, and the last-viewed time is written on its own. The day's
count keeps only a few of its latest viewers (all trending shows), so it stays small however many
people view the insight that day (``record_view``).

A threshold item is written by two parties that never write each other's attributes: a PATCH its
settings and their ``version`` (``put_threshold``, conditional on that version), the scheduled check
its state, value and checks (``record_check``, conditional on ``last_checked_at``).

Records (``domain.insights``) in, records out: an item is the record's JSON dump (None attributes
dropped, as every item) beside its keys and type, and is read back by validating what remains
without them (``_attributes``). ``InsightStore`` implements ``logic.insight_ports.InsightRepository``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dora_insights.dal import aws, keys
from dora_insights.dal.events import Event
from dora_insights.dal.store import PauseBudget, Store, contended
from dora_insights.domain.insights import (
    THRESHOLD_SETTINGS,
    ActivityEntry,
    DailyViews,
    Insight,
    LastView,
    Person,
    ShareSession,
    Sharing,
    Threshold,
    ThresholdCheck,
)
from dora_insights.domain.times import parse_stored
from dora_insights.errors import ResourceConflictError
from dora_insights.observability import logger

_HIDDEN = frozenset({keys.PK, keys.SK, keys.TYPE, keys.GSI1PK, keys.GSI1SK, keys.TTL})
MAX_CHECKS = 50
RECENT_VIEWERS = 3  # viewers a day's count keeps in each of its two lists (trending shows 3)
# How a view's count (pattern 52) treats the day's viewer lists (``record_view``): the expression's
# end after the count's own SET clauses, and its condition on the size of ``recent_viewers``.
_APPEND, _ROLL_OVER, _START_AGAIN, _COUNT_ONLY = "append", "roll over", "start again", "count only"
_VIEWER_FORMS: dict[str, tuple[str, str | None]] = {
    _APPEND: (
        ", recent_viewers = list_append(:viewer, if_not_exists(recent_viewers, :empty))",
        "attribute_not_exists(recent_viewers) OR size(recent_viewers) < :n",
    ),
    _ROLL_OVER: (", earlier_viewers = recent_viewers, recent_viewers = :viewer", "size(recent_viewers) = :n"),
    _START_AGAIN: (", recent_viewers = :viewer REMOVE earlier_viewers", "size(recent_viewers) > :n"),
    _COUNT_ONLY: ("", None),
}
# Each form's condition fails only when another view changed the list since the previous attempt saw it:
# twice round, then the count alone (no condition: nothing but contention can stop it).
_VIEW_ATTEMPTS = (_APPEND, _ROLL_OVER, _START_AGAIN) * 2 + (_COUNT_ONLY,)
# What one InsightStore (one request) may pause, in all, for views cancelled for contention: past it a
# contended view is dropped at once (a POST /viewed names up to 100 insights).
VIEW_PAUSE_SECONDS = 0.5
# The sort key of a link's login log (pattern 59): one item per link, the attempts that still count.
_LOGIN_LOG = "LOG"
_ACTIVITY_PAGE = 500  # activity entries read per Query


def _attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item's own attributes, without its keys, type and TTL."""
    return {k: v for k, v in item.items() if k not in _HIDDEN}


def _insight_item(space_id: str, insight: Insight) -> dict[str, Any]:
    return {**keys.insight(space_id, insight.id), keys.TYPE: keys.T_INSIGHT, **insight.model_dump(mode="json")}


def _threshold_item(space_id: str, threshold: Threshold) -> dict[str, Any]:
    return {
        **keys.threshold(space_id, threshold.insight, threshold.id),
        keys.TYPE: keys.T_THRESHOLD,
        **threshold.model_dump(mode="json"),
    }


def _on_version(put: dict[str, Any], condition: str, version: int) -> None:
    """Make a ``put_op`` conditional on ``condition`` over the stored ``version`` (``#v`` and ``:v``)."""
    put["Put"]["ConditionExpression"] = condition
    put["Put"]["ExpressionAttributeNames"] = {"#v": "version"}
    put["Put"]["ExpressionAttributeValues"] = {":v": {"N": str(version)}}


class InsightStore:
    """Every insight item of a space; each change is one transaction with its activity entry."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._view_pauses = PauseBudget(VIEW_PAUSE_SECONDS)  # ``Repositories.insights`` makes one per use

    # --- insights ------------------------------------------------------------------------
    def get(self, space_id: str, insight_id: int) -> Insight | None:
        item = self.store.get(keys.insight(space_id, insight_id), consistent=True)
        return Insight.model_validate(_attributes(item)) if item and item.get(keys.TYPE) == keys.T_INSIGHT else None

    def get_many(self, space_id: str, insight_ids: Iterable[int]) -> dict[int, Insight]:
        """The stored insights of these ids (deleted ones too; none for an id with no insight), by id:
        BatchGetItems of 100 keys, read consistently as ``get``."""
        found = self.store.batch_get([keys.insight(space_id, n) for n in insight_ids], consistent=True)
        insights = (Insight.model_validate(_attributes(i)) for i in found if i.get(keys.TYPE) == keys.T_INSIGHT)
        return {i.id: i for i in insights}

    def list_all(self, space_id: str) -> list[Insight]:
        """The insights' partition, every page (sharing items share it and are skipped), read consistently:
        an insight created or changed a moment ago is listed as the retrieve of one answers it."""
        return [
            Insight.model_validate(_attributes(i))
            for i in self.store.query_all(partition=keys.insights_pk(space_id), consistent=True)
            if i.get(keys.TYPE) == keys.T_INSIGHT
        ]

    def _activity_op(self, space_id: str, entry: ActivityEntry, unique: str) -> dict[str, Any]:
        item = {
            **keys.activity(space_id, entry.created_at, entry.item_id, unique),
            keys.TYPE: keys.T_ACTIVITY,
            **entry.model_dump(mode="json"),
        }
        return self.store.put_op(item)

    def create(self, space_id: str, insight: Insight, activity: ActivityEntry, unique: str) -> None:
        self.store.transact(
            [
                self.store.put_op(_insight_item(space_id, insight), must_not_exist=True),
                self._activity_op(space_id, activity, unique),
            ]
        )

    def replace(
        self, space_id: str, insight: Insight, *, expected_version: int, activity: ActivityEntry | None, unique: str
    ) -> None:
        """One transaction: the Put conditional on the stored ``version``, and the activity entry."""
        put = self.store.put_op(_insight_item(space_id, insight))
        _on_version(put, "attribute_exists(PK) AND #v = :v", expected_version)
        operations = [put] + ([self._activity_op(space_id, activity, unique)] if activity else [])
        self._transact_versioned(operations, "the insight")

    def _transact_versioned(self, operations: Sequence[Mapping[str, Any]], what: str) -> None:
        """One transaction guarded by a version: a lost race is a ``ResourceConflictError`` naming ``what``;
        a cancellation for contention alone is sent again, then a ``WriteContendedError`` (503)."""
        if self.store.transact_or_contended(operations, what) is not None:
            raise ResourceConflictError(f"{what} was changed by another request; retry")

    # --- views ---------------------------------------------------------------------------
    def _count_op(
        self, space_id: str, day: str, insight_id: int, viewer: Person, at: str, expires: int, form: str
    ) -> dict[str, Any]:
        """The Update of the day's count of the insight (pattern 52), in one of ``_VIEWER_FORMS``."""
        expression, condition = _VIEWER_FORMS[form]
        values: dict[str, Any] = {
            ":one": {"N": "1"},
            ":t": {"S": keys.T_INSIGHT_VIEW_COUNT},
            ":id": {"N": str(insight_id)},
            ":at": {"S": at},
            ":exp": {"N": str(expires)},
        }
        if form != _COUNT_ONLY:
            values[":viewer"] = aws.serialize_value([{**viewer.model_dump(mode="json"), "viewed_at": at}])
        if form == _APPEND:
            values[":empty"] = {"L": []}
        if condition is not None:
            values[":n"] = {"N": str(RECENT_VIEWERS)}
        update: dict[str, Any] = {
            "TableName": self.store.table,
            "Key": aws.serialize(keys.insight_view_count(space_id, day, insight_id)),
            "UpdateExpression": "ADD view_count :one SET #t = :t, insight_id = :id, last_viewed_at = :at, "
            "#ttl = :exp" + expression,
            "ExpressionAttributeNames": {"#t": keys.TYPE, "#ttl": keys.TTL},
            "ExpressionAttributeValues": values,
        }
        if condition is not None:
            update["ConditionExpression"] = condition
        return {"Update": update}

    def record_view(
        self, space_id: str, insight_id: int, viewer: Person, viewer_key: str, day: str, at: str, expires: int
    ) -> None:
        """One transaction: the day's marker (conditional: once a day), its count and the last view.

        A view met by the marker's condition was counted today: only the last view is written. One still
        contended after the retries (``Store.transact_contended``, within the instance's pause budget) is
        not counted, with a warning, and its last view is written alone (module docstring).

        The count keeps the day's latest viewers in two lists of at most ``RECENT_VIEWERS`` (trending
        shows that many), never more: the viewer goes first in ``recent_viewers`` while it is not full;
        once it is, it moves whole to ``earlier_viewers`` and the viewer starts it again (an item written
        before the lists were bounded, holding more, starts again with the viewer alone). Which of these
        the count does is its condition on the list's size; the transaction is sent again with the next
        one when the list was not as expected (another viewer's view came first), and after a few such
        misses the view is counted without its viewer. The count item so stays a few KB whatever the
        number of viewers, and no view is refused for the item's size (a ``ValidationException``, were
        DynamoDB to refuse the transaction for its items, is logged and the view left uncounted, its
        last view written: a view count is not worth a 500)."""
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
        for form in _VIEW_ATTEMPTS:
            count = self._count_op(space_id, day, insight_id, viewer, at, expires, form)
            operations = [self.store.put_op(marker, must_not_exist=True), count, self.store.put_op(last)]
            try:
                reasons = self.store.transact_contended(operations, budget=self._view_pauses)
            except aws.ClientError as error:
                if aws.error_code(error) != "ValidationException":
                    raise
                reasons = [{"Code": "ValidationError", "Message": str(error)}]
            if reasons is None:
                return
            codes = [str(reason.get("Code", "None")) for reason in reasons] + ["None", "None"]
            if codes[0] == "ConditionalCheckFailed":
                break  # counted already today for this viewer: only the last-viewed time moves
            if codes[1] == "ConditionalCheckFailed":
                continue  # the viewer list was not as this form expected: the next form
            if contended(reasons):
                logger.warning(
                    "view not counted: its items stayed contended",
                    extra={"space_id": space_id, "insight_id": insight_id, "day": day},
                )
            elif "ValidationError" in codes:
                logger.error(
                    "view not counted: DynamoDB refused its items",
                    extra={"space_id": space_id, "insight_id": insight_id, "day": day, "codes": codes},
                )
            else:
                raise RuntimeError(f"the view was refused: {codes}")
            break
        # Counted already today for this viewer (or dropped): only the viewer's last-viewed time moves.
        self.store.transact_unconditional([self.store.put_op(last)])

    def last_viewed(self, space_id: str, viewer_key: str) -> list[LastView]:
        """The viewer's last-viewed entries (``insight_id``, ``viewed_at``), read consistently: a client
        asks for them right after ``POST /viewed``."""
        return [
            LastView.model_validate(_attributes(i))
            for i in self.store.query_all(partition=keys.last_viewed_pk(space_id, viewer_key), consistent=True)
        ]

    def last_viewed_of(self, space_id: str, viewer_key: str, insight_id: int) -> str | None:
        """When the viewer last viewed the insight (consistent: the insight's GET follows ``POST /viewed``)."""
        item = self.store.get(keys.last_viewed(space_id, viewer_key, insight_id), consistent=True)
        return str(item["viewed_at"]) if item else None

    def view_counts(self, space_id: str, days: Iterable[str]) -> list[DailyViews]:
        """Per-day view counts (``insight_id``, ``view_count``, ``recent_viewers``, ``last_viewed_at``)."""
        found: list[DailyViews] = []
        for day in days:
            found.extend(
                DailyViews.model_validate(_attributes(i))
                for i in self.store.query_all(partition=keys.insight_view_counts_pk(space_id, day))
            )
        return found

    # --- activity ------------------------------------------------------------------------
    def newest_activity(self, space_id: str, insight_id: int | None, count: int) -> list[ActivityEntry]:
        """Descending Queries of at most ``_ACTIVITY_PAGE`` entries."""
        collected: list[ActivityEntry] = []
        start: dict[str, Any] | None = None
        while len(collected) < count:
            items, start = self._activity_page(
                space_id, insight_id, limit=min(count - len(collected), _ACTIVITY_PAGE), start=start
            )
            collected.extend(ActivityEntry.model_validate(_attributes(i)) for i in items)
            if start is None:
                break
        return collected

    def _activity_page(
        self, space_id: str, insight_id: int | None, *, limit: int, start: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        if insight_id is None:
            return self.store.query_page(
                partition=keys.activity_pk(space_id), ascending=False, limit=limit, start_key=start
            )
        return self.store.query_page(
            partition=keys.insight_activity_pk(space_id, insight_id),
            index=keys.GSI1,
            ascending=False,
            limit=limit,
            start_key=start,
        )

    def activity_count(self, space_id: str, insight_id: int | None) -> int:
        if insight_id is None:
            return sum(1 for _ in self.store.query_all(partition=keys.activity_pk(space_id)))
        return sum(
            1 for _ in self.store.query_all(partition=keys.insight_activity_pk(space_id, insight_id), index=keys.GSI1)
        )

    # --- sharing -------------------------------------------------------------------------
    def get_sharing(self, space_id: str, insight_id: int) -> Sharing | None:
        """The sharing configuration with its ``version`` (0 for items written before versions)."""
        item = self.store.get(keys.sharing(space_id, insight_id), consistent=True)
        return Sharing.model_validate(_attributes(item)) if item else None

    def put_sharing(
        self,
        space_id: str,
        insight_id: int,
        sharing: Sharing,
        *,
        expected_version: int | None,
        new_token_hash: str | None = None,
        old_token_hash: str | None = None,
    ) -> Sharing:
        """One transaction: the sharing item (conditional on its ``version``), the new lookup, the old one's Delete."""
        version = 1 if expected_version is None else expected_version + 1
        written = sharing.model_copy(update={"version": version})
        item = {**keys.sharing(space_id, insight_id), keys.TYPE: keys.T_SHARING, **written.model_dump(mode="json")}
        put = self.store.put_op(item, must_not_exist=expected_version is None)
        if expected_version is not None:
            unversioned = " OR attribute_not_exists(#v)" if expected_version == 0 else ""
            _on_version(put, f"attribute_exists(PK) AND (#v = :v{unversioned})", expected_version)
        operations: list[dict[str, Any]] = [put]
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
                {"Delete": {"TableName": self.store.table, "Key": aws.serialize(keys.share_token(old_token_hash))}}
            )
        self._transact_versioned(operations, "the sharing configuration")
        return written

    def resolve_share_token(self, token_hash: str) -> tuple[str, int] | None:
        item = self.store.get(keys.share_token(token_hash), consistent=True)
        return (str(item["space_id"]), int(item["insight_id"])) if item else None

    def put_session(self, session_hash: str, session: ShareSession) -> None:
        """A Put conditional on its absence; its expiry is the item's TTL."""
        item = {
            **keys.share_session(session_hash),
            keys.TYPE: keys.T_SHARE_SESSION,
            "space_id": session.space_id,
            "insight_id": session.insight_id,
            "password_id": session.password_id,
            "link_hash": session.link_hash,
            keys.TTL: session.expires_at,
        }
        self.store.transact([self.store.put_op(item, must_not_exist=True)])

    def get_session(self, session_hash: str) -> ShareSession | None:
        """Pattern 58; None for a session written before sessions named their password and link (it cannot be
        checked against them, so it opens nothing: the viewer logs in again)."""
        item = self.store.get(keys.share_session(session_hash), consistent=True)
        if not item or "password_id" not in item or "link_hash" not in item:
            return None
        return ShareSession.model_validate({**_attributes(item), "expires_at": item.get(keys.TTL, 0)})

    def reserve_login_attempt(self, space_id: str, insight_id: int, at: str, limit: int, counts_until: int) -> bool:
        """Count one login attempt, made at the instant ``at`` (``format_instant``) and counting until
        the epoch second ``counts_until``, unless ``limit`` attempts of the link still count then (False).

        A sliding window, exact to the second: the link's attempts that still count are one item (a map
        ``log`` of ``<instant>#<random>`` to the second it stops counting, at most ``limit`` entries), read
        consistently and written back conditional on its ``version``, so of attempts racing each other
        exactly one write wins each round and the others read again. At most ``limit`` writes can ever
        admit an attempt while the log is full, so ``2 * limit + 2`` rounds always suffice unless
        successful logins keep giving attempts back meanwhile; an attempt still racing then is refused
        (429: the link is being hammered), never let through uncounted.
        """
        key = keys.share_login_failures(space_id, insight_id, _LOGIN_LOG)
        now = parse_stored(at).timestamp()
        for _ in range(2 * limit + 2):
            item = self.store.get(key, consistent=True) or {}
            live = {k: int(v) for k, v in (item.get("log") or {}).items() if int(v) > now}
            if len(live) >= limit:
                return False
            live[f"{at}#{secrets.token_hex(4)}"] = counts_until
            if self._write_login_log(key, item.get("version"), live):
                return True
        return False

    def release_login_attempt(self, space_id: str, insight_id: int, at: str) -> None:
        """Give back the attempt made at the instant ``at``: remove its entry from the log (one of
        them, when two were made at the same millisecond), bumping ``version`` so that a reservation
        that read the log before writes it again. Already gone (expired) is fine."""
        key = keys.share_login_failures(space_id, insight_id, _LOGIN_LOG)
        item = self.store.get(key, consistent=True) or {}
        entry = next((k for k in (item.get("log") or {}) if k.startswith(f"{at}#")), None)
        if entry is None:
            return
        self.store.update_if(
            key,
            UpdateExpression="REMOVE #log.#e ADD #v :one",
            ConditionExpression="attribute_exists(#log.#e)",
            ExpressionAttributeNames={"#log": "log", "#e": entry, "#v": "version"},
            ExpressionAttributeValues={":one": {"N": "1"}},
        )

    def _write_login_log(self, key: Mapping[str, str], version: int | None, live: Mapping[str, int]) -> bool:
        """Replace the log by ``live`` unless another request changed it since ``version`` was read."""
        condition = "attribute_not_exists(#v)" if version is None else "#v = :read"
        values = {
            ":log": aws.serialize_value(dict(live)),
            ":version": {"N": str((version or 0) + 1)},
            ":t": {"S": keys.T_SHARE_LOGIN_FAILURES},
            ":exp": {"N": str(max(live.values()))},
        }
        if version is not None:
            values[":read"] = {"N": str(version)}
        written = self.store.update_if(
            key,
            UpdateExpression="SET #log = :log, #v = :version, #t = :t, #ttl = :exp",
            ConditionExpression=condition,
            ExpressionAttributeNames={"#log": "log", "#v": "version", "#t": keys.TYPE, "#ttl": keys.TTL},
            ExpressionAttributeValues=values,
        )
        return written is not None

    # --- thresholds ----------------------------------------------------------------------
    def thresholds_of(self, space_id: str, insight_id: int) -> list[Threshold]:
        """Read consistently, as ``get_threshold``: a threshold created or changed a moment ago is listed."""
        return [
            Threshold.model_validate(_attributes(i))
            for i in self.store.query_all(
                partition=keys.thresholds_pk(space_id),
                sort_prefix=keys.insight_thresholds_prefix(insight_id),
                consistent=True,
            )
        ]

    def thresholds_with_outbox(self, space_id: str) -> tuple[list[Threshold], list[Event]]:
        """Patterns 60 and 61 share a partition: one Query."""
        thresholds: list[Threshold] = []
        pending: list[Event] = []
        for item in self.store.query_all(partition=keys.thresholds_pk(space_id)):
            if item.get(keys.TYPE) == keys.T_ALERT_NOTIFICATION:
                pending.append(Event(item["id"], item["detail_type"], item["detail"]))
            elif item.get(keys.TYPE) == keys.T_THRESHOLD:
                thresholds.append(Threshold.model_validate(_attributes(item)))
        return thresholds, pending

    def record_check(
        self, space_id: str, threshold: Threshold, *, checked_before: str | None, notify: Event | None
    ) -> bool:
        """One transaction: an UpdateItem of the threshold's check attributes alone (``state``,
        ``last_checked_at``, ``last_value``, ``checks``), conditional on ``last_checked_at``, and the
        pattern 61 item. Its settings and their ``version`` are a PATCH's (``put_threshold``): a check
        and a PATCH in flight together both hold, neither writes back what the other changed."""
        names = {"#state": "state", "#at": "last_checked_at", "#value": "last_value", "#checks": "checks"}
        values: dict[str, Any] = {
            ":state": aws.serialize_value(None if threshold.state is None else threshold.state.value),
            ":at": aws.serialize_value(threshold.last_checked_at),
            ":checks": aws.serialize_value([c.model_dump(mode="json") for c in threshold.checks]),
        }
        expression = "SET #state = :state, #at = :at, #checks = :checks"
        if threshold.last_value is None:
            expression += " REMOVE #value"
        else:
            expression += ", #value = :value"
            values[":value"] = aws.serialize_value(threshold.last_value)
        if checked_before is None:
            condition = "attribute_exists(PK) AND attribute_not_exists(#at)"
        else:
            condition = "attribute_exists(PK) AND #at = :before"
            values[":before"] = aws.serialize_value(checked_before)
        update = {
            "Update": {
                "TableName": self.store.table,
                "Key": aws.serialize(keys.threshold(space_id, threshold.insight, threshold.id)),
                "UpdateExpression": expression,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }
        operations = [update]
        if notify is not None:
            operations.append(
                self.store.put_op(_outbox_item(space_id, threshold.id, notify, threshold.last_checked_at))
            )
        try:
            self.store.transact(operations)
        except aws.ClientError as error:
            reasons = aws.cancellation_reasons(error)
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return False
            raise
        return True

    def clear_notification(self, space_id: str, notification_id: str) -> None:
        """Pattern 61: a DeleteItem (a failed condition is another run's delete)."""
        self.store.delete_if(
            keys.alert_notification(space_id, notification_id),
            ConditionExpression="attribute_exists(PK)",
        )

    def get_threshold(self, space_id: str, insight_id: int, threshold_id: str) -> Threshold | None:
        item = self.store.get(keys.threshold(space_id, insight_id, threshold_id), consistent=True)
        return Threshold.model_validate(_attributes(item)) if item else None

    def put_threshold(self, space_id: str, threshold: Threshold, *, create: bool = False) -> None:
        """``create``: a Put of the new threshold, conditional on its absence. Otherwise an UpdateItem of
        its settings alone (``THRESHOLD_SETTINGS``; its state and checks are the scheduled check's,
        ``record_check``), conditional on the item existing at ``threshold.version`` (an item stored
        before versions counts as 0), which it increments: a threshold deleted meanwhile, or whose
        settings another PATCH changed since ``threshold`` was read, is a ``ResourceConflictError`` and
        nothing is written (a PATCH never brings a deleted threshold back)."""
        if create:
            self.store.transact([self.store.put_op(_threshold_item(space_id, threshold), must_not_exist=True)])
            return
        stored = threshold.model_dump(mode="json", include=set(THRESHOLD_SETTINGS))
        names = {f"#s{n}": field for n, field in enumerate(THRESHOLD_SETTINGS)}
        names["#v"] = "version"
        values: dict[str, Any] = {":v": {"N": str(threshold.version)}, ":next": {"N": str(threshold.version + 1)}}
        assignments = ["#v = :next"]
        for n, field in enumerate(THRESHOLD_SETTINGS):
            values[f":s{n}"] = aws.serialize_value(stored[field])
            assignments.append(f"#s{n} = :s{n}")
        unversioned = " OR attribute_not_exists(#v)" if threshold.version == 0 else ""
        updated = self.store.update_if(
            keys.threshold(space_id, threshold.insight, threshold.id),
            UpdateExpression="SET " + ", ".join(assignments),
            ConditionExpression=f"attribute_exists(PK) AND (#v = :v{unversioned})",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        if updated is None:
            raise ResourceConflictError("the threshold was changed or deleted by another request; retry")

    def delete_threshold(
        self,
        space_id: str,
        insight_id: int,
        threshold_id: str,
        *,
        checked_before: str | None,
        notify: Event | None,
        at: str,
    ) -> bool:
        """A DeleteItem conditional on the threshold's ``last_checked_at`` being ``checked_before`` (no
        check recorded since it was read), in one transaction with the pattern 61 item of ``notify``
        when given: False, nothing written, when its condition failed (gone, or checked meanwhile)."""
        names = {"#at": "last_checked_at"}
        if checked_before is None:
            condition, values = "attribute_exists(PK) AND attribute_not_exists(#at)", None
        else:
            condition, values = (
                "attribute_exists(PK) AND #at = :before",
                {":before": aws.serialize_value(checked_before)},
            )
        key = keys.threshold(space_id, insight_id, threshold_id)
        conditions: dict[str, Any] = {"ConditionExpression": condition, "ExpressionAttributeNames": names}
        if values is not None:
            conditions["ExpressionAttributeValues"] = values
        if notify is None:
            return self.store.delete_if(key, **conditions) is not None
        delete = {"Delete": {"TableName": self.store.table, "Key": aws.serialize(key), **conditions}}
        outbox = self.store.put_op(_outbox_item(space_id, threshold_id, notify, at))
        return self.store.transact_or_contended([delete, outbox], "the threshold") is None


def _outbox_item(space_id: str, threshold_id: str, event: Event, created_at: str | None) -> dict[str, Any]:
    """Pattern 61: an alert event still to deliver (``logic.alerts``)."""
    return {
        **keys.alert_notification(space_id, event.id),
        keys.TYPE: keys.T_ALERT_NOTIFICATION,
        "id": event.id,
        "threshold_id": threshold_id,
        "detail_type": event.detail_type,
        "detail": event.detail,
        "created_at": created_at,
    }


def newest_first(checks: Sequence[ThresholdCheck], check: ThresholdCheck) -> tuple[ThresholdCheck, ...]:
    """A threshold's checks with a new one first, keeping the latest ``MAX_CHECKS``."""
    return (check, *checks)[:MAX_CHECKS]
