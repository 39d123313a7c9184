"""A slow, obviously-correct reference of GitLab's DORA metrics API (METRICS §9), straight from
GitLab's definitions, over per-deployment figures (METRICS §3) and failure events: no rollups.

GitLab (``Dora::DailyMetrics`` and ``Dora::AggregateMetricsService``) keeps one row per environment
and day; here a row is a stream's (a failure event's: a (project, environment)'s) day, in UTC:

- deployment_frequency: successful deployments finished in the bucket; ``monthly``/``all``: divided by
  the days of the range in the bucket;
- lead_time_for_changes: median over the bucket's (stream, day) rows of each row's median lead time
  of its successful deployments;
- time_to_restore_service: median over the bucket's ((project, environment), day) rows of each row's
  median ``finished - started`` of the failure events finished that day;
- change_failure_rate: failure events started in the bucket / max(successful deployments, 1); null
  when both are zero;
- rework_rate: rework deployments / completed deployments; null when none completed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from statistics import median

from dora_insights.domain.figures import DeploymentFigures, time_to_restore
from dora_insights.domain.model import FailureEvent


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def buckets(start: date, end: date, interval: str) -> list[tuple[str | None, list[date]]]:
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    if interval == "daily":
        return [(d.isoformat(), [d]) for d in days]
    if interval == "all":
        return [(None, days)]
    months: dict[str, list[date]] = {}
    for d in days:
        months.setdefault(d.replace(day=1).isoformat(), []).append(d)
    return list(months.items())


def reference(
    metric: str,
    interval: str,
    start: date,
    end: date,
    streams: Mapping[str, tuple[str, str, Sequence[DeploymentFigures]]],
    failures: Iterable[FailureEvent],
) -> list[tuple[str | None, float | int | None]]:
    """GitLab's ``(date, value)`` rows; ``streams``: key -> (project id, environment id, figures) of the
    selected streams."""
    events = list(failures)
    pairs = {(project, environment) for project, environment, _ in streams.values()}
    answer: list[tuple[str | None, float | int | None]] = []
    for label, days in buckets(start, end, interval):
        chosen = set(days)
        successful = completed = rework = incidents = 0
        daily_leads: list[float] = []
        for _, _, figures in streams.values():
            for day in sorted(chosen):
                done = [f for f in figures if f.completed and _day(f.completed_at) == day]
                good = [f for f in done if f.successful]
                successful += len(good)
                completed += len(done)
                rework += sum(1 for f in done if f.rework)
                leads = [f.lead_time_seconds for f in good if f.lead_time_seconds is not None]
                if leads:
                    daily_leads.append(median(leads))
        daily_restores: list[float] = []
        for project, environment in pairs:
            mine = [e for e in events if e.environment_id == environment and project in e.project_ids]
            incidents += sum(1 for e in mine if _day(_parse(e.started_at)) in chosen)
            for day in sorted(chosen):
                restores = [
                    time_to_restore(e).total_seconds()  # type: ignore[union-attr]
                    for e in mine
                    if e.finished_at is not None and _day(_parse(e.finished_at)) == day
                ]
                if restores:
                    daily_restores.append(median(restores))
        value: float | int | None
        if metric == "deployment_frequency":
            value = successful if interval == "daily" else successful / len(days)
        elif metric == "lead_time_for_changes":
            value = median(daily_leads) if daily_leads else None
        elif metric == "time_to_restore_service":
            value = median(daily_restores) if daily_restores else None
        elif metric == "change_failure_rate":
            value = incidents / max(successful, 1) if successful or incidents else None
        else:
            value = rework / completed if completed else None
        answer.append((label, value))
    return answer
