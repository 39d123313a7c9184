"""PostHog insights (reference: posthog-insights-api.txt), under ``/api/projects/{spaceId}/insights``
and, with the same behaviour, ``/api/environments/{spaceId}/insights``. Public share links too."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dora_insights.dal.store import refusal_for_now
from dora_insights.dialects import csv_export, posthog
from dora_insights.dialects.errors import ErrorDialect
from dora_insights.dialects.posthog import (
    ActivityPage,
    InsightCreate,
    InsightOut,
    InsightPatch,
    PageOut,
    SharedInsightOut,
    ShareLoginIn,
    ShareLoginOut,
    SharePasswordIn,
    SharePasswordOut,
    SharingOut,
    SharingPatch,
    ThresholdIn,
    ThresholdOut,
    ThresholdPatch,
    ViewedIn,
)
from dora_insights.domain.insights import Insight, Threshold, TrendingInsight
from dora_insights.domain.numbers import MAX_DIGITS
from dora_insights.domain.scopes import Scope
from dora_insights.errors import DoraError, MethodNotAllowedError, RequestInvalidError
from dora_insights.handlers.http import JSON, api, entry, json_response, no_content, public_base
from dora_insights.handlers.params import AccessToken, InsightId, PasswordId, SpaceId, ThresholdId
from dora_insights.handlers.runtime import now, principal, store
from dora_insights.logic import insight_dates, insight_results, insights
from dora_insights.logic.freshness import Freshness
from dora_insights.observability import logger

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.POSTHOG)
_P = ErrorDialect.POSTHOG

PREFIXES = ("/api/projects/<spaceId>/insights", "/api/environments/<spaceId>/insights")
TAGS = ["PostHog insights"]
Format = Annotated[str | None, Query(alias="format", pattern="^(csv|json)$")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Page = Annotated[int, Query(ge=1, le=100_000)]
REFRESH_VALUES = "^(async|async_except_on_cache_miss|blocking|force_async|force_blocking|force_cache|lazy_async)$"
# An insight's default: brought up to date within the read bounds (logic/freshness.py).
BLOCKING = "blocking"


def documented(model: Any, description: str = "OK", status: int = 200) -> dict[int, Any]:
    """OpenAPI responses of a route that answers JSON, or CSV with ``format=csv``. Such a route is declared
    ``Response[Any]``: Powertools validates an answer against the declared model, and a CSV text is none."""
    return {status: {"description": description, "content": {"application/json": {"model": model}, "text/csv": {}}}}


def both(method: str, suffix: str = "", **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a route under both the projects and the environments prefix."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        for prefix in PREFIXES:
            router.route(prefix + suffix, method, tags=TAGS, **kwargs)(function)
        return function

    return register


# --- rendering ------------------------------------------------------------------------------
def _csv(rows: list[dict[str, Any]], status: int = 200) -> Response[Any]:
    """Every CSV export goes through ``csv_export.document`` (cells that would start a formula escaped)."""
    return Response(status_code=status, content_type="text/csv; charset=utf-8", body=csv_export.document(rows))


def _render(
    data: dict[str, Any] | list[Any], fmt: str | None, *, status: int = 200, fresh: Freshness | None = None
) -> Response[Any]:
    """JSON, or CSV with a header row and one row per result when ``format=csv`` (either with ``status``:
    a create's 201 too); with ``fresh``, the answer's ``X-Dora-As-Of``/``X-Dora-Pending`` (PostHog's
    insight shape is fixed)."""
    if fmt == "csv":
        found = _csv(data if isinstance(data, list) else data.get("results", [data]), status)
    else:
        found = json_response(status, data)
    if fresh is not None:
        found.headers.update(fresh.headers())
    return found


def _absolute(params: dict[str, Any]) -> str:
    event = router.current_event
    base = public_base(event.headers)
    query = {k: v for k, v in (event.query_string_parameters or {}).items() if k not in ("limit", "offset", "page")}
    query.update({k: v for k, v in params.items() if v is not None})
    return f"{base.rstrip('/')}{event.path}?{urlencode(query)}"


def _page(items: list[Any], limit: int, offset: int, show: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    chunk = [show(i) for i in items[offset : offset + limit]]
    more = offset + limit < len(items)
    return PageOut(
        count=len(items),
        next=_absolute({"limit": limit, "offset": offset + limit}) if more else None,
        previous=_absolute({"limit": limit, "offset": max(0, offset - limit)}) if offset > 0 else None,
        results=chunk,
    ).model_dump(mode="json")


def _written_with_result(space_id: str, insight: Insight, **extra: Any) -> tuple[dict[str, Any], Freshness | None]:
    """``_with_result`` for an insight just written: the write is committed, so a result that cannot be
    had now (figures moving under the read, AWS refusing for now) answers ``result: null`` with the
    write's own status, not a 503 whose retry would write the insight again (a create: a second one)."""
    try:
        return _with_result(space_id, insight, BLOCKING, **extra)
    except Exception as error:
        if not (isinstance(error, DoraError) and error.status >= 500) and refusal_for_now(error) is None:
            raise
        logger.warning("insight written; its result left for the next read", extra={"error": repr(error)})
        return _public(insight, result=None, last_refresh=None, **extra), None


def _public(insight: Insight, **extra: Any) -> dict[str, Any]:
    return posthog.insight_out(insight, **extra)


def _with_result(
    space_id: str, insight: Insight, refresh: str | None = None, **extra: Any
) -> tuple[dict[str, Any], Freshness | None]:
    """An insight with its result, brought up to date as ``refresh`` says (None: as stored), and
    how fresh that result is (``last_refresh`` is its ``as_of``)."""
    return _shown(insight, insight_results.ResultReads(store(), space_id, now(), refresh=refresh), **extra)


def _shown(
    insight: Insight, reads: insight_results.ResultReads, **extra: Any
) -> tuple[dict[str, Any], Freshness | None]:
    """``_with_result`` from ``reads``, which the results of a list share (each report, its state and
    each stored view read once for the page)."""
    result, fresh = reads.result_of(insight)
    return _public(insight, result=result, last_refresh=fresh.as_of if fresh else None, **extra), fresh


# --- insights -------------------------------------------------------------------------------
def _list_param(value: str | None, field: str) -> list[str]:
    """PostHog list parameters: a JSON array or comma-separated values."""
    if not value:
        return []
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            raise RequestInvalidError("not a valid JSON list", field=field) from None
        return [str(v) for v in parsed] if isinstance(parsed, list) else []
    return [v.strip() for v in text.split(",") if v.strip()]


def _dashboard_ids(value: str | None) -> tuple[int, ...]:
    """``dashboards``: dashboard ids in ASCII digits, as many as a stored number may have (``int`` would
    also read "١" or "1_0" as numbers)."""
    ids: list[int] = []
    for text in _list_param(value, "dashboards"):
        digits = text.strip()
        if not (digits.isascii() and digits.isdigit()) or len(digits) > MAX_DIGITS:
            raise RequestInvalidError("dashboards must be a list of integers", field="dashboards")
        ids.append(int(digits))
    return tuple(ids)


@both("GET", summary="List insights", responses=documented(PageOut))
def _list_insights(
    spaceId: SpaceId,
    basic: Annotated[bool, Query()] = False,
    created_by: Annotated[str | None, Query(max_length=200)] = None,
    created_date_from: Annotated[str | None, Query(max_length=40)] = None,
    created_date_to: Annotated[str | None, Query(max_length=40)] = None,
    dashboards: Annotated[str | None, Query(max_length=400)] = None,
    date_from: Annotated[str | None, Query(max_length=40)] = None,
    date_to: Annotated[str | None, Query(max_length=40)] = None,
    favorited: Annotated[bool | None, Query()] = None,
    fmt: Format = None,
    insight: Annotated[str | None, Query(max_length=40)] = None,
    last_viewed_date_from: Annotated[str | None, Query(max_length=40)] = None,
    last_viewed_date_to: Annotated[str | None, Query(max_length=40)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
    refresh: Annotated[str | None, Query(pattern=REFRESH_VALUES)] = None,
    saved: Annotated[bool | None, Query()] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    short_id: Annotated[str | None, Query(max_length=20)] = None,
    tags: Annotated[str | None, Query(max_length=400)] = None,
    user: Annotated[bool | None, Query()] = None,
) -> Response[Any]:
    caller = principal()
    dashboard_ids = _dashboard_ids(dashboards)
    at = now()

    def instant(value: str | None, field: str) -> datetime | None:
        return None if value is None else insight_dates.parse_date_filter(value, field, at)

    filters = insights.InsightFilter(
        created_by=created_by,
        created_date_from=instant(created_date_from, "created_date_from"),
        created_date_to=instant(created_date_to, "created_date_to"),
        last_viewed_date_from=instant(last_viewed_date_from, "last_viewed_date_from"),
        last_viewed_date_to=instant(last_viewed_date_to, "last_viewed_date_to"),
        date_from=instant(date_from, "date_from"),
        date_to=instant(date_to, "date_to"),
        dashboards=dashboard_ids,
        favorited=favorited,
        insight=insight,
        saved=saved,
        search=search,
        short_id=short_id,
        tags=tuple(_list_param(tags, "tags")),
        user=user,
    )
    # The caller's last views, read once for the request (one Query): each insight shows its own
    # ``last_viewed_at``, and the ``last_viewed_date_*`` filters read the same.
    viewed = insights.views_of(store(), caller)
    found = insights.list_insights(store(), caller, filters, viewed)
    if basic:
        return _render(_page(found, limit, offset, lambda i: _public(i, last_viewed_at=viewed.get(i.id))), fmt)
    # A list shows each result as stored (its last_refresh) unless a refresh mode is asked for; the page's
    # results share their reads (each report, its state and its refresh, each stored view: once).
    reads = insight_results.ResultReads(store(), caller.space_id, at, refresh=refresh)
    return _render(_page(found, limit, offset, lambda i: _shown(i, reads, last_viewed_at=viewed.get(i.id))[0]), fmt)


list_insights = entry(app, _P, Scope.INSIGHT_READ)


@both("POST", summary="Create an insight", responses=documented(InsightOut, "Created", 201))
def _create_insight(spaceId: SpaceId, body: Annotated[InsightCreate, Body()], fmt: Format = None) -> Response[Any]:
    caller = principal()
    created = insights.create_insight(store(), caller, body.draft(), now())
    shown, fresh = _written_with_result(caller.space_id, created)
    return _render(shown, fmt, status=201, fresh=fresh)


create_insight = entry(app, _P, Scope.INSIGHT_WRITE)


# --- activity -------------------------------------------------------------------------------
def _activity_page(space_id: str, insight_id: int | None, limit: int, page: int) -> dict[str, Any]:
    results, total = insights.activity(store(), space_id, insight_id, limit=limit, page=page)
    more = page * limit < total
    return ActivityPage(
        results=[posthog.activity_out(entry) for entry in results],
        total_count=total,
        next=_absolute({"limit": limit, "page": page + 1}) if more else None,
        previous=_absolute({"limit": limit, "page": page - 1}) if page > 1 else None,
    ).model_dump(mode="json")


@both("GET", "/activity", summary="Activity of every insight in the project", responses=documented(ActivityPage))
def _all_activity(spaceId: SpaceId, fmt: Format = None, limit: Limit = 100, page: Page = 1) -> Response[Any]:
    caller = principal()
    return _render(_activity_page(caller.space_id, None, limit, page), fmt)


all_activity = entry(app, _P, Scope.ACTIVITY_LOG_READ)


@both("GET", "/<insightId>/activity", summary="Activity of one insight", responses=documented(ActivityPage))
def _insight_activity(
    spaceId: SpaceId,
    insightId: InsightId,
    fmt: Format = None,
    limit: Limit = 100,
    page: Page = 1,
) -> Response[Any]:
    caller = principal()
    return _render(_activity_page(caller.space_id, insightId, limit, page), fmt)


insight_activity = entry(app, _P, Scope.ACTIVITY_LOG_READ)


# --- views ----------------------------------------------------------------------------------
@both("POST", "/viewed", summary="Record views of insights")
def _record_views(spaceId: SpaceId, body: Annotated[ViewedIn, Body()], fmt: Format = None) -> Response[None]:
    caller = principal()
    insights.record_views(store(), caller, body.insight_ids, now())
    return Response(status_code=200, content_type=JSON, body=None)


record_views = entry(app, _P, Scope.INSIGHT_READ)


@both("GET", "/my_last_viewed", summary="The caller's last 5 viewed insights", responses=documented(list[InsightOut]))
def _my_last_viewed(spaceId: SpaceId, fmt: Format = None) -> Response[Any]:
    caller = principal()
    rows = [_public(i.insight, last_viewed_at=i.last_viewed_at) for i in insights.my_last_viewed(store(), caller)]
    return _render(rows, fmt)


my_last_viewed = entry(app, _P, Scope.INSIGHT_READ)


@both("GET", "/trending", summary="Insights ranked by views", responses=documented(PageOut))
def _trending(
    spaceId: SpaceId,
    days: Annotated[int, Query(ge=1, le=insights.MAX_TRENDING_DAYS)] = 7,
    fmt: Format = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response[Any]:
    caller = principal()
    ranked = insights.trending(store(), caller, days, now())
    viewed = insights.views_of(store(), caller) if ranked else {}  # one Query for the page, as the list

    def shown(row: TrendingInsight) -> dict[str, Any]:
        return posthog.trending_out(row, last_viewed_at=viewed.get(row.insight.id))

    return _render(_page(ranked, limit, offset, shown), fmt)


trending = entry(app, _P, Scope.INSIGHT_READ)


# Routes with a fixed last segment (/activity, /viewed, /trending...) are registered above:
# the resolver tries routes in order, and /<insightId> would otherwise claim them.
@both("GET", "/<insightId>", summary="Retrieve an insight", responses=documented(InsightOut))
def _retrieve_insight(
    spaceId: SpaceId,
    insightId: InsightId,
    fmt: Format = None,
    refresh: Annotated[str | None, Query(pattern=REFRESH_VALUES)] = None,
    from_dashboard: Annotated[int | None, Query(ge=0)] = None,
    filters_override: Annotated[str | None, Query(max_length=4000)] = None,
    variables_override: Annotated[str | None, Query(max_length=4000)] = None,
) -> Response[Any]:
    caller = principal()
    insight = insights.live_insight(store(), caller.space_id, insightId)
    viewed = insights.last_viewed_at(store(), caller, insightId)
    shown, fresh = _with_result(caller.space_id, insight, refresh or BLOCKING, last_viewed_at=viewed)
    return _render(shown, fmt, fresh=fresh)


retrieve_insight = entry(app, _P, Scope.INSIGHT_READ)


@both(
    "PATCH",
    "/<insightId>",
    summary="Update an insight (deleted: true soft-deletes; deleted: false restores)",
    responses=documented(InsightOut),
)
def _update_insight(
    spaceId: SpaceId, insightId: InsightId, body: Annotated[InsightPatch, Body()], fmt: Format = None
) -> Response[Any]:
    caller = principal()
    fields = body.changes()
    updated = insights.update_insight(store(), caller, insightId, fields, now())
    viewed = insights.last_viewed_at(store(), caller, insightId)
    shown, fresh = _written_with_result(caller.space_id, updated, last_viewed_at=viewed)
    return _render(shown, fmt, fresh=fresh)


update_insight = entry(app, _P, Scope.INSIGHT_WRITE)


@both(
    "DELETE",
    "/<insightId>",
    summary="Hard delete is not allowed: PATCH deleted true",
    # Always 405, as PostHog answers (meta gives it PostHog's error shape); never a 2xx.
    responses={405: {"description": 'Always: an insight is soft-deleted with PATCH {"deleted": true}'}},
)
def _delete_insight(spaceId: SpaceId, insightId: InsightId, fmt: Format = None) -> Response[None]:
    principal()
    raise MethodNotAllowedError(
        'Method "DELETE" not allowed. Hard delete of an insight is not allowed: PATCH it with {"deleted": true}',
        code="method_not_allowed",
    )


delete_insight = entry(app, _P, Scope.INSIGHT_WRITE)


# --- sharing --------------------------------------------------------------------------------
@both("GET", "/<insightId>/sharing", summary="Sharing configuration", responses=documented(SharingOut))
def _get_sharing(spaceId: SpaceId, insightId: InsightId, fmt: Format = None) -> Response[Any]:
    caller = principal()
    return _render(posthog.sharing_out(insights.get_sharing(store(), caller.space_id, insightId, now())), fmt)


get_sharing = entry(app, _P, Scope.SHARING_READ)


@both("PATCH", "/<insightId>/sharing", summary="Enable or disable sharing")
def _update_sharing(
    spaceId: SpaceId, insightId: InsightId, body: Annotated[SharingPatch, Body()]
) -> Response[SharingOut]:
    caller = principal()
    sharing = insights.update_sharing(store(), caller.space_id, insightId, body.changes(), now())
    return json_response(200, posthog.sharing_out(sharing))


update_sharing = entry(app, _P, Scope.SHARING_WRITE)


@both("POST", "/<insightId>/sharing/passwords", summary="Add a share password (shown once)", status_code=201)
def _add_share_password(
    spaceId: SpaceId, insightId: InsightId, body: Annotated[SharePasswordIn, Body()]
) -> Response[SharePasswordOut]:
    caller = principal()
    created = insights.add_share_password(store(), caller, insightId, body.raw_password, body.note, now())
    return json_response(201, posthog.password_out(created))


add_share_password = entry(app, _P, Scope.SHARING_WRITE)


@both("DELETE", "/<insightId>/sharing/passwords/<passwordId>", summary="Delete a share password", status_code=204)
def _delete_share_password(spaceId: SpaceId, insightId: InsightId, passwordId: PasswordId) -> Response[None]:
    caller = principal()
    insights.delete_share_password(store(), caller.space_id, insightId, passwordId, now())
    return no_content()


delete_share_password = entry(app, _P, Scope.SHARING_WRITE)


@both("POST", "/<insightId>/sharing/refresh", summary="New access token; the old link dies at once")
def _refresh_sharing(spaceId: SpaceId, insightId: InsightId) -> Response[SharingOut]:
    caller = principal()
    return json_response(200, posthog.sharing_out(insights.refresh_sharing(store(), caller.space_id, insightId, now())))


refresh_sharing = entry(app, _P, Scope.SHARING_WRITE)


# --- thresholds -----------------------------------------------------------------------------
def _threshold(row: Threshold) -> dict[str, Any]:
    return posthog.threshold_out(row)


@both("GET", "/<insightId>/thresholds", summary="Thresholds (alerts) of an insight", responses=documented(PageOut))
def _list_thresholds(
    spaceId: SpaceId, insightId: InsightId, limit: Limit = 100, offset: Offset = 0, fmt: Format = None
) -> Response[Any]:
    caller = principal()
    found = insights.list_thresholds(store(), caller.space_id, insightId)
    return _render(_page(found, limit, offset, _threshold), fmt)


list_thresholds = entry(app, _P, Scope.ALERT_READ)


@both("POST", "/<insightId>/thresholds", summary="Create a threshold", status_code=201)
def _create_threshold(
    spaceId: SpaceId, insightId: InsightId, body: Annotated[ThresholdIn, Body()]
) -> Response[ThresholdOut]:
    caller = principal()
    created = insights.create_threshold(store(), caller, insightId, body.settings(), now())
    return json_response(201, _threshold(created))


create_threshold = entry(app, _P, Scope.ALERT_WRITE)


@both(
    "GET",
    "/<insightId>/thresholds/<thresholdId>",
    summary="One threshold with its checks",
    responses=documented(ThresholdOut),
)
def _get_threshold(
    spaceId: SpaceId,
    insightId: InsightId,
    thresholdId: ThresholdId,
    fmt: Format = None,
) -> Response[Any]:
    caller = principal()
    return _render(_threshold(insights.get_threshold(store(), caller.space_id, insightId, thresholdId)), fmt)


get_threshold = entry(app, _P, Scope.ALERT_READ)


@both("PATCH", "/<insightId>/thresholds/<thresholdId>", summary="Update a threshold")
def _update_threshold(
    spaceId: SpaceId,
    insightId: InsightId,
    thresholdId: ThresholdId,
    body: Annotated[ThresholdPatch, Body()],
) -> Response[ThresholdOut]:
    caller = principal()
    fields = body.changes()
    return json_response(
        200, _threshold(insights.update_threshold(store(), caller.space_id, insightId, thresholdId, fields))
    )


update_threshold = entry(app, _P, Scope.ALERT_WRITE)


@both("DELETE", "/<insightId>/thresholds/<thresholdId>", summary="Delete a threshold", status_code=204)
def _delete_threshold(spaceId: SpaceId, insightId: InsightId, thresholdId: ThresholdId) -> Response[None]:
    caller = principal()
    insights.delete_threshold(store(), caller.space_id, insightId, thresholdId, now())
    return no_content()


delete_threshold = entry(app, _P, Scope.ALERT_WRITE)


# --- public share links ---------------------------------------------------------------------
@router.get("/shared/<accessToken>", summary="A shared insight (no API key)", tags=TAGS)
def _open_shared(accessToken: AccessToken) -> Response[SharedInsightOut]:
    authorization = (router.current_event.headers or {}).get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    session = token.strip() if scheme.lower() == "bearer" else None
    space_id, insight = insights.open_shared(store(), accessToken, session, now())
    shown, fresh = _with_result(space_id, insight, BLOCKING)
    return json_response(200, posthog.shared_out(shown), fresh.headers() if fresh else None)


open_shared = entry(app, _P, None)


@router.post("/shared/<accessToken>/login", summary="Exchange a share password for a 24-hour token", tags=TAGS)
def _login_shared(accessToken: AccessToken, body: Annotated[ShareLoginIn, Body()]) -> Response[ShareLoginOut]:
    token = insights.login_shared(store(), accessToken, body.password, now())
    return json_response(200, ShareLoginOut(token=token))


login_shared = entry(app, _P, None)
