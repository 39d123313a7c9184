"""The alert events of insight thresholds: the one builder of their detail (what every alert
destination receives, ``logic.alerts``) and the check, at a threshold's create and PATCH, that its
events will always fit what EventBridge takes.

EventBridge refuses a ``PutEvents`` entry over 256 KB (its ``Source``, ``DetailType`` and ``Detail``
in UTF-8: ``dal.events.entry_size``). A threshold whose event could not fit would be stored, fire,
and never be delivered, run after run. So a threshold is refused (400 naming ``subscribed_users``,
the part a client makes large) when the largest event it could ever owe does not fit with
``ENVELOPE_BYTES`` to spare: that event is built here by the same builder the check uses, with what
the threshold does not fix at its worst (the longest insight title the API accepts, in characters
that JSON escapes to 12 bytes each, the longest value, state and time).
"""

from __future__ import annotations

import json
from typing import Any

from dora_insights.dal.events import Event, entry_size
from dora_insights.domain.alert_destinations import ALERT_REASONS, BREACHED, CHECKED, CLEARED
from dora_insights.domain.insights import Insight, Threshold, ThresholdState
from dora_insights.errors import RequestInvalidError

MAX_ENTRY_BYTES = 256 * 1024  # EventBridge's limit of one PutEvents entry
# Kept free below it: the envelope EventBridge wraps the detail in on its way to the alert-delivery
# queue (id, version, account, time, region, resources: about 250 bytes), which holds a message of
# the same 256 KB at most.
ENVELOPE_BYTES = 1024
MAX_INSIGHT_TITLE = 400  # characters of an insight's name or derived name (dialects.posthog)
_WORST_TITLE = "\U0001f600" * MAX_INSIGHT_TITLE  # 12 bytes each once JSON-escaped
_WORST_VALUE = -1.7976931348623157e308  # the longest float text
_WORST_STAMP = "2099-12-31T23:59:59.999Z"  # checked_at is fixed width
_LONGEST_TYPE = max((BREACHED, CLEARED), key=len)
_LONGEST_REASON = max(ALERT_REASONS, key=len)


def notification_id(threshold_id: str, checked_at: str) -> str:
    """The stable id of the event a transition owes: the same on every delivery of it."""
    return f"{threshold_id}:{checked_at}"


def alert_detail(
    space_id: str,
    insight: Insight,
    threshold: Threshold,
    *,
    value: float | None,
    previous: ThresholdState | None,
    state: ThresholdState,
    checked_at: str,
    reason: str = CHECKED,
) -> dict[str, Any]:
    """The detail of the event a check of ``threshold`` owes when it moves into or out of ``Firing``
    (``reason``: what moved it, ``ALERT_REASONS``: a check, or the end of a Firing threshold that is
    disabled, deleted, or whose insight is deleted; ``value`` is then the last value checked)."""
    return {
        "notification_id": notification_id(threshold.id, checked_at),
        "space_id": space_id,
        "insight_id": insight.id,
        "insight_short_id": insight.short_id,
        "insight_name": insight.title,
        "threshold_id": threshold.id,
        "threshold_name": threshold.name,
        "value": value,
        "bounds": threshold.condition.bounds.model_dump(exclude_none=True),  # as stored: an absent bound is absent
        "previous_state": None if previous is None else previous.value,
        "state": state.value,
        "checked_at": checked_at,
        "subscribed_users": list(threshold.subscribed_users),
        "reason": reason,
    }


def alert_event(detail_type: str, detail: dict[str, Any]) -> Event:
    """The event of a detail, its JSON text as it is stored in the outbox and sent, every time."""
    return Event(str(detail["notification_id"]), detail_type, json.dumps(detail, separators=(",", ":")))


def largest_alert_bytes(space_id: str, insight: Insight, threshold: Threshold) -> int:
    """The size, as EventBridge counts it, of the largest event ``threshold`` could owe."""
    worst_insight = insight.model_copy(update={"name": _WORST_TITLE})
    detail = alert_detail(
        space_id,
        worst_insight,
        threshold,
        value=_WORST_VALUE,
        previous=ThresholdState.NOT_FIRING,
        state=ThresholdState.NOT_FIRING,
        checked_at=_WORST_STAMP,
        reason=_LONGEST_REASON,
    )
    return entry_size(alert_event(_LONGEST_TYPE, detail))


def check_alert_size(space_id: str, insight: Insight, threshold: Threshold) -> None:
    """400 naming ``subscribed_users`` when the largest event the threshold could owe does not fit
    EventBridge's entry limit with ``ENVELOPE_BYTES`` to spare."""
    size = largest_alert_bytes(space_id, insight, threshold)
    if size + ENVELOPE_BYTES > MAX_ENTRY_BYTES:
        raise RequestInvalidError(
            f"the alert events of this threshold could reach {size} bytes, over the "
            f"{MAX_ENTRY_BYTES - ENVELOPE_BYTES} an alert event may take: fewer or shorter subscribed_users",
            field="subscribed_users",
        )
