"""A slow, obviously-correct reference for METRICS §2–4, written straight from the text.

Quadratic scans, no incremental state, standard-library statistics. The engine
(``domain.figures``, ``domain.aggregates``) must agree with it on any history.
"""

from __future__ import annotations

import statistics as stats
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dora_insights.domain.model import Deployment, FailureEvent, TaskState
from dora_insights.domain.times import parse_stored


def at(text: str) -> datetime:
    return parse_stored(text)


def completed_in_order(deployments: list[Deployment]) -> list[Deployment]:
    done = [d for d in deployments if d.state in (TaskState.SUCCESS, TaskState.FAILED, TaskState.TIMED_OUT)]
    return sorted(done, key=lambda d: (at(d.finished_at), at(d.started_at or d.finished_at), d.id))


def successful(d: Deployment) -> bool:
    return d.state == TaskState.SUCCESS and not d.had_guided_failure


def failure(d: Deployment) -> bool:
    return d.state in (TaskState.FAILED, TaskState.TIMED_OUT) or (d.state == TaskState.SUCCESS and d.had_guided_failure)


def key(d: Deployment) -> str | None:
    if d.commit_sha:
        return "sha:" + d.commit_sha
    return "version:" + d.version if d.version else None


def names(e: FailureEvent, d: Deployment) -> bool:
    """The failure's named cause is (shipped by) d: by commit when it names one, else by version."""
    if e.commit_sha is not None:
        shipped = [d.commit_sha or "", *(d.merge_commit_shas or []), *(d.attribution.commits if d.attribution else [])]
        sha = e.commit_sha.lower()
        return any(
            x.lower() == sha
            or (min(len(x), len(sha)) >= 7 and (x.lower().startswith(sha) or sha.startswith(x.lower())))
            for x in shipped
            if x
        )
    return d.version == e.version


def is_rollback(s: list[Deployment], r: int) -> bool:
    if s[r].rollback:
        return True
    return version_rollback_target(s, r) is not None


def version_rollback_target(s: list[Deployment], r: int) -> int | None:
    """Index of the deployment a version rollback at r marks (Datadog V1→V2→V3→V1 marks V2)."""
    k = key(s[r])
    if r == 0 or k is None or k == key(s[r - 1]):
        return None
    earlier = [e for e in range(r - 1) if key(s[e]) == k]
    return earlier[-1] + 1 if earlier else None


def figures(
    deployments: list[Deployment],
    events: list[FailureEvent],
    window: timedelta,
    first_seen: dict[str, datetime],
    change_starts: dict[str, datetime | None],
) -> dict[str, dict[str, Any]]:
    s = completed_in_order(deployments)
    n = len(s)
    change_failure = []
    for i, d in enumerate(s):
        cf = failure(d)
        for r in range(i + 1, n):
            if version_rollback_target(s, r) == i or (s[r].rollback and r - 1 == i):
                cf = True
            if s[r].fixes:
                ids = [j for j in range(r) if s[j].id == s[r].fixes]
                by_version = [j for j in range(r) if s[j].version == s[r].fixes]
                target = ids[-1] if ids else (by_version[-1] if by_version else None)
                if target == i:
                    cf = True
        for e in events:
            if e.deployment_id is not None:  # rule 4: the cause named by id, whatever its project
                cf = cf or e.deployment_id == d.id
                continue
            if d.project_id not in e.project_ids or e.environment_id != d.environment_id:
                continue
            if e.commit_sha is not None or e.version is not None:  # rule 4: the first success that shipped it
                shipped = [j for j in range(n) if successful(s[j]) and names(e, s[j])]
                cf = cf or (bool(shipped) and shipped[0] == i)
                continue
            started = at(e.started_at)
            before = [j for j in range(n) if successful(s[j]) and at(s[j].finished_at) <= started]
            if before and before[-1] == i and started - at(d.finished_at) <= window:
                cf = True
        change_failure.append(cf)
    releases = sorted(first_seen, key=lambda v: (first_seen[v], v))
    out: dict[str, dict[str, Any]] = {}
    for i, d in enumerate(s):
        f: dict[str, Any] = {
            "change_failure": change_failure[i],
            "rollback": is_rollback(s, i),
            "rework": is_rollback(s, i)
            or bool(d.fixes)
            or (
                successful(d)
                and any(change_failure[j] and not any(successful(s[m]) for m in range(j + 1, i)) for j in range(i))
            ),
            "duration_seconds": (at(d.finished_at) - at(d.started_at)).total_seconds() if d.started_at else None,
            "lead_time_seconds": None,
            "lead_time_from_version": None,
            "time_since_previous_success_seconds": None,
            "previous_success_id": None,
            "time_to_recovery_seconds": None,
            "deployments_until_recovery": None,
            "recovered_from_failed_id": None,
        }
        if successful(d):
            prev = [j for j in range(i) if successful(s[j])]
            if prev:
                p = s[prev[-1]]
                f["previous_success_id"] = p.id
                f["time_since_previous_success_seconds"] = (at(d.finished_at) - at(p.finished_at)).total_seconds()
            if change_starts.get(d.id) is not None:
                start = change_starts[d.id]
                assert start is not None
                f["lead_time_seconds"] = (at(d.finished_at) - start).total_seconds()
            elif d.version in first_seen:
                from_version = d.version
                if prev and s[prev[-1]].version in first_seen:
                    p_pos = releases.index(s[prev[-1]].version)  # type: ignore[arg-type]
                    if releases.index(d.version) > p_pos:
                        from_version = releases[p_pos + 1]
                f["lead_time_from_version"] = from_version
                f["lead_time_seconds"] = (at(d.finished_at) - first_seen[from_version]).total_seconds()
            if i > 0 and failure(s[i - 1]):
                first = i - 1
                while first > 0 and failure(s[first - 1]):
                    first -= 1
                f["time_to_recovery_seconds"] = (at(d.finished_at) - at(s[first].finished_at)).total_seconds()
                f["deployments_until_recovery"] = i - first
                f["recovered_from_failed_id"] = s[first].id
        out[d.id] = f
    return out


def quantile_stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "mean": None, "median": None, "min": None, "max": None, "p95": None}
    p95 = values[0] if len(values) == 1 else stats.quantiles(values, n=20, method="inclusive")[18]
    return {
        "count": len(values),
        "mean": stats.fmean(values),
        "median": stats.median(values),
        "min": min(values),
        "max": max(values),
        "p95": p95,
    }


def add_months(d: date, months: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 + months, 12)
    day = d.day
    while True:
        try:
            return date(y, m + 1, day)
        except ValueError:
            day -= 1


def first_day_of_interval(d: date, granularity: str) -> date:
    if granularity == "Daily":
        return d
    if granularity == "Monthly":
        return date(d.year, d.month, 1)
    while d.strftime("%A") != "Sunday":
        d -= timedelta(days=1)
    return d


def starts_in_range(granularity: str, months: int, zone: ZoneInfo, now: datetime) -> list[date]:
    today = now.astimezone(zone).date()
    day = add_months(today, -months)
    starts: list[date] = []
    while day <= today:
        s = first_day_of_interval(day, granularity)
        if s not in starts:
            starts.append(s)
        day += timedelta(days=1)
    return starts


def begins(d: date, zone: ZoneInfo) -> datetime:
    """The first instant of a local date (fold=0)."""
    return datetime(d.year, d.month, d.day, tzinfo=zone)


@dataclass
class Row:
    deployment: Deployment
    figures: dict[str, Any]
    series: tuple[str, ...]


def aggregate(
    rows: list[Row], granularity: str, months: int, zone: ZoneInfo, now: datetime
) -> dict[str, list[dict[str, Any]]]:
    """Series name -> intervals; each interval a dict of the figures the engine reports."""
    starts = starts_in_range(granularity, months, zone, now)
    step = {"Daily": timedelta(days=1), "Weekly": timedelta(days=7)}
    after_last = starts[-1] + step[granularity] if granularity in step else add_months(starts[-1], 1)
    edges = [begins(s, zone) for s in [*starts, after_last]]
    names = sorted({name for row in rows for name in row.series})
    result: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        intervals = []
        for k, start in enumerate(starts):
            inside = [r for r in rows if name in r.series and edges[k] <= at(r.deployment.finished_at) < edges[k + 1]]
            ok = [r for r in inside if successful(r.deployment)]
            guided = [r for r in inside if r.deployment.state == TaskState.SUCCESS and r.deployment.had_guided_failure]
            failed = [r for r in inside if r.deployment.state in (TaskState.FAILED, TaskState.TIMED_OUT)]
            not_rollback = [r for r in inside if not r.figures["rollback"]]
            days = set()
            day = start
            while begins(day, zone) < edges[k + 1]:
                nxt = begins(day + timedelta(days=1), zone)
                if any(begins(day, zone) <= at(r.deployment.finished_at) < nxt for r in ok):
                    days.add(day)
                day += timedelta(days=1)
            total = len(ok) + len(guided) + len(failed)
            intervals.append(
                {
                    "start": start,
                    "successful": len(ok),
                    "deployment_failure": len(failed),
                    "guided": len(guided),
                    "total": total,
                    "rate": round((len(guided) + len(failed)) / total, 5) if total else 0.0,
                    "lead_time": quantile_stats(
                        [r.figures["lead_time_seconds"] for r in ok if r.figures["lead_time_seconds"] is not None]
                    ),
                    "since_previous": quantile_stats(
                        [
                            r.figures["time_since_previous_success_seconds"]
                            for r in ok
                            if r.figures["time_since_previous_success_seconds"] is not None
                        ]
                    ),
                    "recovery": quantile_stats(
                        [
                            r.figures["time_to_recovery_seconds"]
                            for r in ok
                            if r.figures["time_to_recovery_seconds"] is not None
                        ]
                    ),
                    "until_recovery": quantile_stats(
                        [
                            float(r.figures["deployments_until_recovery"])
                            for r in ok
                            if r.figures["deployments_until_recovery"] is not None
                        ]
                    ),
                    "change_failures": sum(1 for r in not_rollback if r.figures["change_failure"]),
                    "change_failure_deployments": len(not_rollback),
                    "rework": sum(1 for r in inside if r.figures["rework"]),
                    "deployment_days": len(days),
                }
            )
        if any(i["total"] for i in intervals):
            result[name] = intervals
    return result
