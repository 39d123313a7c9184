"""GitLab's DORA metrics API (``GET /projects/:id/dora/metrics``), as ``GET /api/{spaceId}/dora/metrics``.

Parameters as GitLab names them: ``metric`` (required), ``start_date`` and ``end_date`` (ISO-8601
dates), ``interval`` (``all``, ``monthly``, ``daily``; default ``daily``), ``environment_tiers[]``
(GitLab's array form; ``environment_tiers`` and the deprecated ``environment_tier`` are accepted too,
repeated or comma-separated); plus this service's filters ``project``, ``project_group``,
``environment`` and ``tenant`` (a name, any case, or an id). The answer is GitLab's:
``[{"date": "YYYY-MM-DD", "value": ...}]`` (``date`` null for ``interval=all``). Errors are GitLab's
``{"message": "..."}`` with GitLab's wording (``dialects.errors.render_gitlab``).
"""

from datetime import date

from pydantic import BaseModel, ConfigDict, RootModel

from dora_insights.domain.rollups import TIERS, Interval, Metric, MetricsRequest
from dora_insights.errors import RequestInvalidError

METRICS = tuple(m.value for m in Metric)
INTERVALS = tuple(i.value for i in Interval)
MAX_FILTER = 200


class MetricRow(BaseModel):
    """One answer row: the bucket's first day (a month's 1st for ``monthly``, null for ``all``) and its
    value (a count or average per day, seconds, or a fraction; null when the bucket has no data)."""

    model_config = ConfigDict(title="GitLabDoraMetricRow")

    date: str | None
    value: int | float | None


class MetricRows(RootModel[list[MetricRow]]):
    """GitLab's answer: a JSON array of rows, oldest first."""

    model_config = ConfigDict(title="GitLabDoraMetrics")


def rows(pairs: list[tuple[str | None, int | float | None]]) -> MetricRows:
    """The answer model of ``(date, value)`` pairs."""
    return MetricRows([MetricRow(date=d, value=v) for d, v in pairs])


def _date(name: str, text: str | None) -> date | None:
    if text is None or text == "":
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RequestInvalidError(f"{name} is invalid", field=name) from None


def _tiers(*values: str | None) -> tuple[str, ...]:
    found: list[str] = []
    for value in values:
        for part in (value or "").split(","):
            tier = part.strip()
            if not tier:
                continue
            if tier not in TIERS:
                raise RequestInvalidError(
                    f"The environment tiers must be from {', '.join(TIERS)}.", field="environment_tiers"
                )
            found.append(tier)
    return tuple(dict.fromkeys(found))


def _filter(name: str, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > MAX_FILTER:
        raise RequestInvalidError(f"{name} is too long (at most {MAX_FILTER} characters)", field=name)
    return value


def parse_request(
    *,
    metric: str | None,
    start_date: str | None,
    end_date: str | None,
    interval: str | None,
    environment_tiers: tuple[str | None, ...],
    project: str | None,
    project_group: str | None,
    environment: str | None,
    tenant: str | None,
) -> MetricsRequest:
    """The request as this service reads it, or a 400 with GitLab's message (the first problem found,
    in GitLab's order: dates, interval, metric, tiers)."""
    if not metric:
        raise RequestInvalidError("metric is missing", field="metric")
    start, end = _date("start_date", start_date), _date("end_date", end_date)
    if (interval or "daily") not in INTERVALS:
        raise RequestInvalidError(f"The interval must be one of {','.join(INTERVALS)}.", field="interval")
    if metric not in METRICS:
        raise RequestInvalidError(f"The metric must be one of {','.join(METRICS)}.", field="metric")
    return MetricsRequest(
        metric=Metric(metric),
        interval=Interval(interval or "daily"),
        start_date=start,
        end_date=end,
        environment_tiers=_tiers(*environment_tiers),
        project=_filter("project", project),
        project_group=_filter("project_group", project_group),
        environment=_filter("environment", environment),
        tenant=_filter("tenant", tenant),
    )
