"""``dora-insights summary`` and ``gate``: ``GET /api/{spaceId}/summary`` as a table, JSON or CSV, and a
pipeline check that fails when a metric is below a tier (Elite > High > Medium > Low)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

from dora_insights_cli.client import ApiError, NetworkError, fail, not_the_service
from dora_insights_cli.context import Context
from dora_insights_cli.deployment import time_flag
from dora_insights_cli.errors import GATE_FAILED, OK, USAGE, CliError
from dora_insights_cli.times import duration_text, format_time, parse_time

TIERS = ("Elite", "High", "Medium", "Low")  # best first


def _pct(rate: Any) -> str:
    return f"{float(rate) * 100:.1f}%" if isinstance(rate, (int, float)) else "-"


@dataclass(frozen=True)
class Metric:
    key: str  # the summary's key
    title: str
    unit: str
    value: Callable[[Mapping[str, Any]], Any]  # the number CSV shows
    count: Callable[[Mapping[str, Any]], Any]
    text: Callable[[Mapping[str, Any]], str]  # what the table shows
    tiered: bool = True


METRICS = (
    Metric(
        "deployment_frequency",
        "Deployment frequency",
        "per_day",
        lambda m: m.get("per_day"),
        lambda m: m.get("successful_deployments"),
        lambda m: (
            f"{m.get('per_day') or 0:g}/day, {m.get('successful_deployments', 0)} successful on "
            f"{m.get('deployment_days', 0)} day(s)"
        ),
    ),
    Metric(
        "lead_time",
        "Lead time for changes",
        "seconds",
        lambda m: m.get("median_seconds"),
        lambda m: m.get("count"),
        lambda m: (
            f"{duration_text(m.get('median_seconds'))} median, p95 {duration_text(m.get('p95_seconds'))},"
            f" {m.get('count', 0)} deployment(s)"
            if m.get("median_seconds") is not None
            else "-"
        ),
    ),
    Metric(
        "change_failure_rate",
        "Change failure rate",
        "ratio",
        lambda m: m.get("rate"),
        lambda m: m.get("deployments"),
        lambda m: f"{_pct(m.get('rate'))}, {m.get('change_failures', 0)} of {m.get('deployments', 0)}",
    ),
    Metric(
        "recovery_time",
        "Failed deployment recovery time",
        "seconds",
        lambda m: m.get("median_seconds"),
        lambda m: m.get("count"),
        lambda m: (
            f"{duration_text(m.get('median_seconds'))} median, {m.get('count', 0)} recovery(ies)"
            if m.get("median_seconds") is not None
            else "-"
        ),
    ),
    Metric(
        "time_to_restore",
        "Time to restore (incidents)",
        "seconds",
        lambda m: m.get("median_seconds"),
        lambda m: m.get("count"),
        lambda m: (
            f"{duration_text(m.get('median_seconds'))} median, {m.get('count', 0)} incident(s)"
            if m.get("median_seconds") is not None
            else "-"
        ),
    ),
    Metric(
        "rework_rate",
        "Rework rate",
        "ratio",
        lambda m: m.get("rate"),
        lambda m: m.get("deployments"),
        lambda m: f"{_pct(m.get('rate'))}, {m.get('rework_deployments', 0)} of {m.get('deployments', 0)}",
        tiered=False,
    ),
)
BY_KEY = {m.key: m for m in METRICS}
GATED = tuple(m.key for m in METRICS if m.tiered)
# Other names people use for the same metrics (GitLab's, Datadog's, DORA 2023's).
ALIASES = {
    "lead_time_for_changes": "lead_time",
    "change_lead_time": "lead_time",
    "time_to_restore_service": "time_to_restore",
    "failed_deployment_recovery_time": "recovery_time",
    "deploy_frequency": "deployment_frequency",
    "cfr": "change_failure_rate",
}


def metric_key(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in GATED:
        raise CliError(f"--metric: '{name}' is not one of {', '.join(GATED)} (rework_rate has no tier)", USAGE)
    return key


def tier_name(name: str) -> str:
    for tier in TIERS:
        if tier.lower() == name.strip().lower():
            return tier
    raise CliError(f"--min-tier: '{name}' is not one of {', '.join(TIERS)}", USAGE)


def fetch(args: argparse.Namespace, ctx: Context) -> tuple[dict[str, Any], str]:
    """The summary for the flags' range and filters, and the space it is of."""
    start = time_flag(args.from_, "--from")
    end = time_flag(args.to, "--to")
    if args.days is not None:
        start = _days_before(end, args.days, ctx, given_from=start is not None)
    service = ctx.service(args)
    environment = ctx.environment_setting(args) or ctx.sources(args).file_value("env")
    query = {
        "from": start,
        "to": end,
        "project": service.value if service else None,
        "environment": environment.value if environment else None,
        "benchmark": args.benchmark,
    }
    api = ctx.api(args)
    try:
        answer = api.request("GET", api.space_path("summary"), query=query)
    except (ApiError, NetworkError) as error:
        raise fail(error, api.connection, what="reading the summary") from None
    if not isinstance(answer.body, dict):
        raise not_the_service(
            "reading the summary",
            f"{api.connection.url} answered {answer.status} with something other than a JSON object",
        )
    problem = odd_figure(answer.body)
    if problem is not None:
        raise not_the_service("reading the summary", f"{api.connection.url} answered {problem}, not a finite number")
    return answer.body, api.connection.space


def _days_before(end: str | None, days: int, ctx: Context, *, given_from: bool) -> str:
    """``--days``: the range's start, that many days before ``--to`` (before now without it)."""
    if given_from:
        raise CliError("--from and --days both set the range's start: give one of them", USAGE)
    last = parse_time(end) if end is not None else ctx.now()
    try:
        return format_time(last - timedelta(days=days))
    except OverflowError:
        raise CliError(f"--days {days}: the range would start before the year 1", USAGE) from None


# The figures of a metric that are numbers (or null) in the service's answer (API.md "/summary").
NUMBERS = frozenset(
    {
        "per_day",
        "successful_deployments",
        "deployment_days",
        "median_seconds",
        "p95_seconds",
        "count",
        "rate",
        "deployments",
        "change_failures",
        "rework_deployments",
    }
)


def odd_figure(summary: Mapping[str, Any]) -> str | None:
    """The first figure of a metric that is neither a finite number nor null (``lead_time.median_seconds
    "2h"``, or ``Infinity``, ``NaN`` and ``1e999``, which Python's JSON reads but the service never writes),
    or None: the table, the CSV and the gate read numbers."""
    for metric in METRICS:
        figures = summary.get(metric.key)
        if not isinstance(figures, Mapping):
            continue
        for name in sorted(NUMBERS & set(figures)):
            value = figures[name]
            if value is not None and not _finite(value):
                return f"{metric.key}.{name} {json.dumps(value)[:40]}"
    return None


def _finite(value: Any) -> bool:
    """A number (not a bool) that is finite as a float: what the table and the gate can show."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond any float (10**400)
        return False


def table(summary: Mapping[str, Any], space: str) -> str:
    """The summary for a terminal: a heading and one row per metric (value, tier)."""
    rows = [("Metric", "Value", "Tier")]
    for metric in METRICS:
        figures = summary.get(metric.key)
        if not isinstance(figures, Mapping):
            continue
        tier = figures.get("tier") if metric.tiered else None
        rows.append((metric.title, metric.text(figures), str(tier) if tier else ("no data" if metric.tiered else "")))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        f"DORA summary of {space}: {summary.get('from', '?')} to {summary.get('to', '?')}, "
        f"{summary.get('deployments', 0)} deployment(s), benchmark {summary.get('benchmark', '?')}",
    ]
    scope = summary.get("environment_scope")
    if isinstance(scope, Mapping) and scope.get("environments"):
        lines.append(f"Environments: {', '.join(str(e) for e in scope['environments'])} ({scope.get('source')})")
    lines.append("")
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    freshness = f"As of {summary.get('as_of') or 'not yet computed'}"
    if summary.get("pending"):
        freshness += f"; {summary['pending']} stream(s) still being recomputed"
    lines += ["", freshness]
    return "\n".join(lines)


def csv_text(summary: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["metric", "value", "unit", "count", "tier"])
    for metric in METRICS:
        figures = summary.get(metric.key)
        if not isinstance(figures, Mapping):
            continue
        value, count = metric.value(figures), metric.count(figures)
        tier = figures.get("tier") if metric.tiered else None
        writer.writerow(
            [metric.key, "" if value is None else value, metric.unit, "" if count is None else count, tier or ""]
        )
    return out.getvalue()


def summary_command(args: argparse.Namespace, ctx: Context) -> int:
    summary, space = fetch(args, ctx)
    if args.format == "json":
        print(json.dumps(summary, indent=2, ensure_ascii=False), file=ctx.out)
    elif args.format == "csv":
        ctx.out.write(csv_text(summary))
    else:
        print(table(summary, space), file=ctx.out)
    return OK


def verdicts(
    summary: Mapping[str, Any], metrics: list[str], minimum: str, *, no_data_passes: bool
) -> list[tuple[bool, str]]:
    """(passed, line) per metric: a tier passes when it is ``minimum`` or better; no tier (no data in the
    range) passes only with ``no_data_passes``."""
    bar = TIERS.index(minimum)
    results = []
    for key in metrics:
        metric = BY_KEY[key]
        figures = summary.get(key)
        tier = figures.get("tier") if isinstance(figures, Mapping) else None
        shown = metric.text(figures) if isinstance(figures, Mapping) else "-"
        if tier not in TIERS:
            outcome = "PASS" if no_data_passes else "FAIL"
            advice = "" if no_data_passes else "; --on-no-data pass lets a metric without data through"
            results.append((no_data_passes, f"{outcome} {key}: no tier, no data in the range{advice}"))
            continue
        passed = TIERS.index(str(tier)) <= bar
        relation = "meets" if passed else "is below"
        results.append((passed, f"{'PASS' if passed else 'FAIL'} {key}: {tier} {relation} {minimum} ({shown})"))
    return results


def gate_command(args: argparse.Namespace, ctx: Context) -> int:
    metrics = list(dict.fromkeys(metric_key(m) for m in args.metric))
    minimum = tier_name(args.min_tier)
    summary, space = fetch(args, ctx)
    results = verdicts(summary, metrics, minimum, no_data_passes=args.on_no_data == "pass")
    for _, line in results:
        print(line, file=ctx.out)
    if all(passed for passed, _ in results):
        return OK
    failed = [line for passed, line in results if not passed]
    missing = sum(1 for line in failed if ": no tier," in line)
    parts = [f"{len(failed) - missing} metric(s) below {minimum}"] if len(failed) > missing else []
    parts += [f"{missing} without data"] if missing else []
    ctx.warn(f"gate failed: {', '.join(parts)} in space {space}")
    return GATE_FAILED
