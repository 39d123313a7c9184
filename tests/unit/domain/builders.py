"""Small builders of domain values for the domain tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dora_insights.domain.model import Deployment, FailureEvent, TaskState
from dora_insights.domain.times import format_instant

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def deployment(n: int, at: float, *, state: TaskState = TaskState.SUCCESS, **fields: Any) -> Deployment:
    """Deployment ``Deployments-n`` of web/production finishing ``at`` hours after T0."""
    values: dict[str, Any] = {
        "id": f"Deployments-{n}",
        "space_id": "Spaces-1",
        "project": "web",
        "project_id": "Projects-1",
        "environment": "production",
        "environment_id": "Environments-1",
        "channel_id": "Channels-1",
        "finished_at": format_instant(hours(at)),
        "state": state,
        "received_at": format_instant(hours(at)),
        "body_hash": "x",
    }
    values.update(fields)
    return Deployment(**values)


def failure(n: int, start: float, end: float | None = None, **fields: Any) -> FailureEvent:
    values: dict[str, Any] = {
        "id": f"Failures-{n}",
        "space_id": "Spaces-1",
        "projects": ["web"],
        "project_ids": ["Projects-1"],
        "environment": "production",
        "environment_id": "Environments-1",
        "started_at": format_instant(hours(start)),
        "finished_at": format_instant(hours(end)) if end is not None else None,
        "received_at": format_instant(hours(start)),
        "body_hash": "x",
    }
    values.update(fields)
    return FailureEvent(**values)
