"""Insight thresholds (alerts): evaluated by the scheduled recompute after it refreshes reports.

A threshold checks the insight's value for its most recent interval (the one containing the
check time) of its first series; it fires below ``lower`` or above ``upper``. Each check is
recorded on the threshold; each move into ``Firing`` puts one ``InsightThresholdBreached``
event on the EventBridge bus, and each move from ``Firing`` back to ``NotFiring`` one
``InsightThresholdCleared`` (same detail fields). A rule on the bus sends both to the alert-delivery
queue, whose function delivers them to the space's alert destinations (``logic.destinations``).

Delivery is at least once, through an outbox: the check that moves a threshold into or out of
``Firing`` is saved in one transaction with the event it owes (``dal.keys`` pattern 61), conditional on
no other run having checked the threshold since it was read. Every run then puts every event of
the space's outbox (this run's and those earlier runs could not deliver) in as few
``PutEvents`` calls as allowed, and deletes each one EventBridge accepted; a call that fails, or
an entry it refuses (``FailedEntryCount``/``ErrorCode``), leaves those events for the next run.
An event keeps its detail, and so its ``notification_id`` (``<threshold id>:<checked_at>``),
over every retry, so a receiver drops a second delivery of the same id. One space's delivery
failure touches no other space: each space delivers its own outbox.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from dora_insights.dal.events import Event
from dora_insights.dal.insights import newest_first
from dora_insights.domain.alert_destinations import BREACHED, CHECKED, CLEARED, DISABLED, INSIGHT_DELETED
from dora_insights.domain.ids import new_id
from dora_insights.domain.insights import (
    Insight,
    Threshold,
    ThresholdCheck,
    ThresholdState,
    latest_value,
    threshold_state,
)
from dora_insights.domain.times import format_instant
from dora_insights.logic import insight_results, insights
from dora_insights.logic.insight_alerts import alert_detail, alert_event, notification_id
from dora_insights.logic.insight_ports import AlertRepository, InsightPorts
from dora_insights.logic.ports import Ports
from dora_insights.observability import logger

__all__ = ["AlertCounts", "Bus", "evaluate", "evaluate_thresholds", "insight_value", "notification_id"]


class Bus(Protocol):
    """Where alert events go (EventBridge when deployed and locally)."""

    def send(self, events: Sequence[Event]) -> dict[str, str | None]:
        """Each event's id -> None when the bus accepted it, else an error code (the event is retried)."""
        ...


@dataclass
class AlertCounts:
    """What one space's threshold pass did."""

    checked: int = 0
    fired: int = 0  # moves into Firing recorded this run
    cleared: int = 0  # moves from Firing back to NotFiring recorded this run
    failed: int = 0  # checks that raised (retried next run)
    sent: int = 0  # events EventBridge accepted this run (this run's and earlier runs')
    undelivered: int = 0  # events left in the outbox for the next run


def insight_value(store: Ports, space_id: str, insight: Insight, now: datetime) -> float | None:
    """The value a threshold checks: first series, the interval containing ``now``. Intervals are
    local days, weeks or months of the report's time zone (METRICS §4), so ``now`` is taken as a
    date there: in Auckland at 01:00 on the 7th it is the 7th's interval, though UTC is still on the 6th."""
    result, _, zone = insight_results.result_in_zone(store, space_id, insight, now)
    if not result or not result.series:
        return None
    today = now.astimezone(zone or UTC).date().isoformat()
    return latest_value(result.interval, result.series[0].values, today)


def evaluate(store: InsightPorts, bus: Bus | None, space_id: str, now: datetime) -> AlertCounts:
    """Check every enabled, due threshold of the space, then deliver the space's outbox.

    One threshold whose check raises is logged with its ids, counted as failed and skipped: the
    space's other thresholds are still checked (and the failed one again at the next run). Without
    a bus (no ``EVENT_BUS_NAME``) checks are recorded and no event is kept or sent.
    """
    return evaluate_thresholds(
        store.insights(), lambda insight: insight_value(store, space_id, insight, now), bus, space_id, now
    )


# The value a threshold of an insight checks (``insight_value`` of the space at the check time).
ValueOf = Callable[[Insight], float | None]


def evaluate_thresholds(
    repository: AlertRepository, value_of: ValueOf, bus: Bus | None, space_id: str, now: datetime
) -> AlertCounts:
    """``evaluate`` with the values of the insights from ``value_of``."""
    counts = AlertCounts()
    thresholds, pending = repository.thresholds_with_outbox(space_id)
    for threshold in thresholds:
        try:
            outcome = _check(repository, value_of, space_id, threshold, now, notify=bus is not None)
        except Exception:
            counts.failed += 1
            logger.exception(
                "threshold check failed",
                extra={"space_id": space_id, "threshold_id": threshold.id, "insight": threshold.insight},
            )
            continue
        if outcome is None:
            continue
        counts.checked += 1
        if outcome.fired:
            counts.fired += 1
            logger.info("threshold fired", extra={"threshold_id": threshold.id, "value": outcome.threshold.last_value})
        if outcome.cleared:
            counts.cleared += 1
            value = outcome.threshold.last_value
            logger.info("threshold cleared", extra={"threshold_id": threshold.id, "value": value})
        if outcome.event is not None:
            pending.append(outcome.event)
    if bus is not None and pending:
        _deliver(repository, bus, space_id, pending, counts)
    return counts


@dataclass(frozen=True)
class _Checked:
    threshold: Threshold  # as recorded, with its new check
    fired: bool
    event: Event | None
    cleared: bool = False


def _check(
    repository: AlertRepository, value_of: ValueOf, space_id: str, threshold: Threshold, now: datetime, *, notify: bool
) -> _Checked | None:
    """Check one threshold: None when it is not due, its insight is gone, or another run checked it meanwhile.

    A ``Firing`` threshold that is disabled, or whose insight is deleted, is not checked: it ends,
    ``NotFiring`` with its last value, and owes an ``InsightThresholdCleared`` (its ``reason`` says
    why), so a receiver tracking open alerts closes it. Enabled or restored again, it is checked
    anew (and fires anew while the value is out of bounds)."""
    firing = threshold.state is ThresholdState.FIRING
    if not insights.due(threshold, now) and not firing:
        return None
    insight = repository.get(space_id, threshold.insight)
    if insight is None:
        return None
    if firing and (not threshold.enabled or insight.deleted):
        ended = DISABLED if not threshold.enabled else INSIGHT_DELETED
        return _record(repository, space_id, insight, threshold, now, None, ended, notify=notify)
    if insight.deleted or not insights.due(threshold, now):
        return None
    value = value_of(insight)
    return _record(repository, space_id, insight, threshold, now, value, CHECKED, notify=notify)


def _record(
    repository: AlertRepository,
    space_id: str,
    insight: Insight,
    threshold: Threshold,
    now: datetime,
    value: float | None,
    reason: str,
    *,
    notify: bool,
) -> _Checked | None:
    """Save a check of ``value`` (``reason`` CHECKED) or the end of a Firing threshold (its last value,
    no check entry), with the event it owes; None when another run checked it meanwhile."""
    previous = threshold.state
    checked_before = threshold.last_checked_at
    checked_at = format_instant(now)
    if reason == CHECKED:
        bounds = threshold.condition.bounds
        state = threshold_state(value, bounds.lower, bounds.upper)
        check = ThresholdCheck(id=new_id(now).lower(), created_at=checked_at, calculated_value=value, state=state)
        checks = newest_first(threshold.checks, check)
    else:
        state, value, checks = ThresholdState.NOT_FIRING, threshold.last_value, threshold.checks
    checked = threshold.model_copy(
        update={"state": state, "last_checked_at": checked_at, "last_value": value, "checks": checks}
    )
    fired = state is ThresholdState.FIRING and previous is not ThresholdState.FIRING
    cleared = state is ThresholdState.NOT_FIRING and previous is ThresholdState.FIRING
    event = None
    if (fired or cleared) and notify:
        detail = alert_detail(
            space_id,
            insight,
            threshold,
            value=value,
            previous=previous,
            state=state,
            checked_at=checked_at,
            reason=reason,
        )
        event = alert_event(BREACHED if fired else CLEARED, detail)
    if not repository.record_check(space_id, checked, checked_before=checked_before, notify=event):
        logger.info(
            "threshold checked by another run meanwhile; this check is dropped",
            extra={"space_id": space_id, "threshold_id": threshold.id},
        )
        return None
    return _Checked(checked, fired, event, cleared)


def _deliver(repository: AlertRepository, bus: Bus, space_id: str, pending: list[Event], counts: AlertCounts) -> None:
    """Put the space's outbox on the bus; remove what was accepted, keep the rest for the next run."""
    try:
        outcome = bus.send(pending)
    except Exception:
        logger.exception("alert delivery failed; retried next run", extra={"space_id": space_id})
        outcome = {}
    for event in pending:
        error = outcome.get(event.id, "NotSent")
        if error is not None:
            counts.undelivered += 1
            logger.warning(
                "alert event not delivered; retried next run",
                extra={"space_id": space_id, "notification_id": event.id, "error_code": error},
            )
            continue
        counts.sent += 1
        try:
            repository.clear_notification(space_id, event.id)
        except Exception:  # delivered; the next run delivers it again (same id) and clears it then
            logger.exception(
                "clearing a delivered alert event failed", extra={"space_id": space_id, "notification_id": event.id}
            )
