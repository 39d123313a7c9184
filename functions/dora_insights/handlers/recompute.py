"""The recompute's schedule (EventBridge ``rate(5 minutes)``): find the dirty work, fan it out.

Each tick reads every space's dirty marks and sends work items to the recompute queue
(``logic.recompute.schedule``; docs/recompute.md); ``handlers.recompute_worker`` does them with
bounded concurrency. The tick itself is a few reads per space and a ``SendMessageBatch`` per ten
items, so no amount of work waiting makes it slow; it is the only thing that runs every 5 minutes.

Metrics (Powertools, EMF), zeros included so alarms see data: ``RecomputeSpaces``,
``RecomputeSpacesSplit``, ``RecomputeItemsSent``, ``RecomputeBacklog`` (items of earlier ticks
still queued), ``RecomputeTickSkipped`` (1: a whole tick's worth was still waiting, nothing sent),
``StreamsPending``, ``SpacesFailed`` (marks unreadable), ``RecomputeLag`` (oldest dirty mark) and
``RecomputeScheduleDuration``. The work's own counts come from the worker.
"""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, Field

from dora_insights.config import get_settings
from dora_insights.dal.recompute_queue import RecomputeQueue
from dora_insights.errors import MessagesUnsentError
from dora_insights.handlers.runtime import now, store
from dora_insights.logic import recompute
from dora_insights.observability import count, logger, metrics


class ScheduledEvent(BaseModel):
    """The EventBridge "Scheduled Event" shape (the fields used)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = ""
    detail_type: str = Field(default="Scheduled Event", alias="detail-type")
    source: str = "aws.events"
    time: str | None = None


def work_queue() -> RecomputeQueue:
    """The recompute queue of this function's configuration (``RECOMPUTE_QUEUE_URL``)."""
    url = get_settings().recompute_queue_url
    if not url:
        raise RuntimeError("RECOMPUTE_QUEUE_URL is not set: template.yaml gives it to RecomputeFunction")
    return RecomputeQueue(url)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Schedule entry point; also run once per ``POST /_local/schedule/run`` locally (which then
    delivers the items it sent to the worker before it answers)."""
    scheduled = ScheduledEvent.model_validate(event)
    summary = recompute.schedule(store(), work_queue(), now())
    count("RecomputeSpaces", summary.spaces)
    count("RecomputeSpacesSplit", summary.spaces_split)
    count("RecomputeItemsSent", summary.items_sent)
    count("RecomputeItemsUnsent", summary.items_unsent)
    count("RecomputeBacklog", summary.backlog)
    count("RecomputeTickSkipped", int(summary.skipped))
    count("StreamsPending", summary.streams_pending)
    count("SpacesFailed", summary.spaces_failed)
    metrics.add_metric(name="RecomputeLag", unit=MetricUnit.Seconds, value=summary.lag_seconds)
    count("RecomputeScheduleDuration", summary.duration_seconds, MetricUnit.Seconds)
    logger.info("recompute tick finished", extra={"event_id": scheduled.id, **summary.model_dump()})
    if summary.items_unsent:  # the tick fails (Lambda's Errors), its metrics flushed all the same
        raise MessagesUnsentError("recompute items", summary.items_sent, summary.items_unsent, ())
    return summary.model_dump()
