"""The ``/metrics`` document of METRICS §4 as compact JSON text. Pure.

METRICS §4 names the fields of one interval of one series (``StartOfInterval``,
``NumberOfSuccessfulDeployments``, ``LeadTime`` ...; durations as ``[-]H:MM:SS.f``) and the answer
is ``{"Series": [{"Name", "Intervals": [...]}]}``. The scheduled recompute writes every view in
this form once, so that ``/metrics`` only slices and joins stored text (or hands out the stored
gzip as it is): a one-year daily view split by project is ~7 MB of JSON, and building and
serialising that many objects per request costs about a second.

``dialects/octopus.py`` documents the same shape as pydantic models (``MetricsOut``) for the
OpenAPI document; a unit test validates this text against them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from typing import Any

from dora_insights.domain.aggregates import IntervalMetrics, Statistics
from dora_insights.domain.durations import format_duration

# A date that cannot occur in a real interval: its ISO text marks where the start goes in the
# empty-interval template.
_PLACEHOLDER = date(1, 1, 1)


def is_active(metrics: IntervalMetrics) -> bool:
    """Whether an interval has anything in it: a completed deployment or a restored failure."""
    return bool(metrics.deployment_failure_rate.total or metrics.time_to_restore.count)


def _duration(value: float | None) -> str | None:
    return None if value is None else format_duration(value)


def _durations(stats: Statistics) -> dict[str, Any]:
    if not stats.count:
        return {"Count": 0, "Mean": None, "Median": None, "Min": None, "Max": None, "NinetyFifth": None}
    return {
        "Count": stats.count,
        "Mean": _duration(stats.mean),
        "Median": _duration(stats.median),
        "Min": _duration(stats.min),
        "Max": _duration(stats.max),
        "NinetyFifth": _duration(stats.ninety_fifth),
    }


def _numbers(stats: Statistics) -> dict[str, Any]:
    return {
        "Count": stats.count,
        "Mean": stats.mean,
        "Median": stats.median,
        "Min": stats.min,
        "Max": stats.max,
        "NinetyFifth": stats.ninety_fifth,
    }


def interval_document(metrics: IntervalMetrics) -> dict[str, Any]:
    """One interval as the METRICS §4 document (plain data)."""
    dfr = metrics.deployment_failure_rate
    cfr = metrics.change_failure_rate
    rework = metrics.rework_rate
    return {
        "StartOfInterval": metrics.start_of_interval,
        "NumberOfSuccessfulDeployments": metrics.number_of_successful_deployments,
        "LeadTime": _durations(metrics.lead_time),
        "DeploymentFailureRate": {
            "Successful": dfr.successful,
            "DeploymentFailure": dfr.deployment_failure,
            "SuccessfulButHadGuidedFailure": dfr.successful_but_had_guided_failure,
            "Total": dfr.total,
            "Failed": dfr.failed,
            "Rate": dfr.rate,
        },
        "TimeSincePreviousDeployment": _durations(metrics.time_since_previous_deployment),
        "MeanTimeToRecovery": _durations(metrics.mean_time_to_recovery),
        "DeploymentsUntilRecovery": _numbers(metrics.deployments_until_recovery),
        "ChangeFailureRate": {"ChangeFailures": cfr.change_failures, "Deployments": cfr.deployments, "Rate": cfr.rate},
        "ReworkRate": {
            "ReworkDeployments": rework.rework_deployments,
            "Deployments": rework.deployments,
            "Rate": rework.rate,
        },
        "TimeToRestore": _durations(metrics.time_to_restore),
        "DeploymentDays": metrics.deployment_days,
    }


def interval_json(metrics: IntervalMetrics) -> str:
    """One interval as compact JSON text (ASCII)."""
    return json.dumps(interval_document(metrics), separators=(",", ":"))


def empty_interval_template(empty: IntervalMetrics) -> tuple[str, str]:
    """The JSON text of an empty interval split around its ``StartOfInterval`` date.

    ``empty`` is the summary of an empty bucket (any start); the reader writes
    ``before + start.isoformat() + after`` for an interval the stored view does not cover.
    """
    text = interval_json(replace(empty, start=_PLACEHOLDER))
    before, marker, after = text.partition(_PLACEHOLDER.isoformat())
    if not marker:  # pragma: no cover - the start is always in the document
        raise ValueError("the interval document has no StartOfInterval")
    return before, after


def series_head(name: str) -> str:
    """The text of a series before its first interval."""
    return f'{{"Name":{json.dumps(name)},"Intervals":['


SERIES_TAIL = "]}"
DOCUMENT_HEAD = '{"Series":['
DOCUMENT_TAIL = "]}"


def metrics_json(series: Iterable[tuple[str, str]]) -> str:
    """The whole answer from (series name, its intervals' JSON joined by commas) pairs."""
    return (
        DOCUMENT_HEAD
        + ",".join(series_head(name) + intervals + SERIES_TAIL for name, intervals in series)
        + DOCUMENT_TAIL
    )
