"""Octopus Insights reports (reference: octopus-insights-reports-api.txt): list, create, get, update, delete."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dora_insights.dialects.errors import ErrorDialect
from dora_insights.dialects.octopus import (
    MetricsOut,
    ReportIn,
    ReportList,
    ReportOut,
    Stream,
    StreamsOut,
    stream_deployment,
)
from dora_insights.domain.aggregates import Granularity, Split, TimeRange
from dora_insights.domain.scopes import Scope
from dora_insights.errors import PreconditionFailedError, RequestInvalidError, ResourceConflictError
from dora_insights.handlers.http import (
    JSON,
    accepts_gzip,
    api,
    entry,
    expected_revision,
    gzip_response,
    json_response,
    no_content,
)
from dora_insights.handlers.octopus_pages import collection_page
from dora_insights.handlers.params import DEFAULT_TAKE, ReportId, Skip, SpaceId, Take
from dora_insights.handlers.runtime import now, principal, store
from dora_insights.logic import freshness, metrics, reports
from dora_insights.logic.reports import ReportFields

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.OCTOPUS)

TAGS = ["Octopus Insights"]


def _fields(space_id: str, body: ReportIn) -> ReportFields:
    if body.SpaceId is not None and body.SpaceId != space_id:
        raise RequestInvalidError(f"SpaceId '{body.SpaceId}' does not match the space in the path", field="SpaceId")
    return ReportFields(
        name=body.Name,
        description=body.Description,
        project_group_ids=tuple(dict.fromkeys(body.ProjectGroupIds)),
        project_ids=tuple(dict.fromkeys(body.ProjectIds)),
        tenant_ids=tuple(dict.fromkeys(body.TenantIds)),
        tenant_tags=tuple(dict.fromkeys(body.TenantTags)),
        tenant_mode=body.TenantMode,
        environment_groups=body.environment_groups(),
        time_zone=body.TimeZone,
        icon_id=body.IconId,
        icon_color=body.IconColor,
    )


@router.get("/api/<spaceId>/insights/reports", summary="List Insights reports", tags=TAGS)
def _list_reports(spaceId: SpaceId, skip: Skip = 0, take: Take = DEFAULT_TAKE) -> Response[ReportList]:
    caller = principal()
    everything = reports.list_reports(store(), caller.space_id, consistent=True)
    page = ReportList(
        Items=[ReportOut.from_domain(r) for r in everything[skip : skip + take]],
        **collection_page(f"/api/{spaceId}/insights/reports", len(everything), skip, take),
    )
    return json_response(200, page)


list_reports = entry(app, ErrorDialect.OCTOPUS, Scope.REPORTS_READ)


@router.post("/api/<spaceId>/insights/reports", summary="Create an Insights report", tags=TAGS, status_code=201)
def _create_report(spaceId: SpaceId, body: Annotated[ReportIn, Body()]) -> Response[ReportOut]:
    caller = principal()
    report = reports.create_report(store(), caller.space_id, _fields(spaceId, body), now())
    return json_response(201, ReportOut.from_domain(report))


create_report = entry(app, ErrorDialect.OCTOPUS, Scope.REPORTS_WRITE)


@router.get("/api/<spaceId>/insights/reports/<reportId>", summary="Get an Insights report", tags=TAGS)
def _get_report(spaceId: SpaceId, reportId: ReportId) -> Response[ReportOut]:
    caller = principal()
    return json_response(200, ReportOut.from_domain(reports.get_report(store(), caller.space_id, reportId)))


get_report = entry(app, ErrorDialect.OCTOPUS, Scope.REPORTS_READ)


@router.put("/api/<spaceId>/insights/reports/<reportId>", summary="Update an Insights report", tags=TAGS)
def _update_report(
    spaceId: SpaceId,
    reportId: ReportId,
    body: Annotated[ReportIn, Body()],
    if_match: Annotated[str | None, Header(alias="if-match", max_length=32)] = None,
) -> Response[ReportOut]:
    caller = principal()
    if body.Id is not None and body.Id != reportId:
        raise RequestInvalidError(f"Id '{body.Id}' does not match the report in the path", field="Id")
    # If-Match names the Version expected (it wins over the body's); "*" (any) leaves the body's. A stale
    # body Version is a 409 (as Octopus answers a stale resource); a stale If-Match is HTTP's 412.
    named = expected_revision(if_match, None, "a report Version")
    expected = body.Version if named is None else named
    try:
        updated = reports.update_report(
            store(), caller.space_id, reportId, _fields(spaceId, body), now(), expected_version=expected
        )
    except ResourceConflictError as conflict:
        if named is None:
            raise
        raise PreconditionFailedError(
            f"If-Match names Version {named}, which is not the report's current one: read it again and retry",
            field="If-Match",
        ) from conflict
    return json_response(200, ReportOut.from_domain(updated))


update_report = entry(app, ErrorDialect.OCTOPUS, Scope.REPORTS_WRITE)


@router.delete(
    "/api/<spaceId>/insights/reports/<reportId>", summary="Delete an Insights report", tags=TAGS, status_code=204
)
def _delete_report(spaceId: SpaceId, reportId: ReportId) -> Response[None]:
    caller = principal()
    reports.delete_report(store(), caller.space_id, reportId)
    return no_content()


delete_report = entry(app, ErrorDialect.OCTOPUS, Scope.REPORTS_WRITE)


@router.get(
    "/api/<spaceId>/insights/reports/<reportId>/metrics",
    summary="Aggregated metrics of a report",
    tags=TAGS,
    responses={200: {"description": "Series of intervals", "content": {"application/json": {"model": MetricsOut}}}},
)
def _report_metrics(
    spaceId: SpaceId,
    reportId: ReportId,
    split: Annotated[Split, Query()] = Split.NONE,
    tenantTagSetId: Annotated[str | None, Query(max_length=64)] = None,
    timeRange: Annotated[TimeRange, Query()] = TimeRange.LAST_QUARTER,
    granularity: Annotated[Granularity, Query()] = Granularity.WEEKLY,
) -> Response[Any]:
    caller = principal()
    report = reports.get_report(store(), caller.space_id, reportId)
    read = freshness.read_report(store(), caller.space_id, report, now())
    view = metrics.ViewRequest(
        space_id=caller.space_id,
        report_id=reportId,
        split=split,
        time_range=timeRange,
        granularity=granularity,
        tenant_tag_set_id=tenantTagSetId,
        now=now(),
        current=(report, read.state),
    )
    answer = metrics.read_rendered_metrics(store(), view, accept_gzip=accepts_gzip(router.current_event.headers))
    # The answer is stored rendered (the MetricsOut shape, documented above; tests check the body
    # against MetricsOut): joining stored text, or handing out its stored gzip, keeps a year of
    # daily series fast. Octopus' shape is fixed: freshness travels in X-Dora-As-Of/X-Dora-Pending.
    if answer.gzip is not None:
        return gzip_response(200, answer.gzip, read.freshness.headers())
    return Response(status_code=200, content_type=JSON, body=answer.text, headers=read.freshness.headers())


report_metrics = entry(app, ErrorDialect.OCTOPUS, Scope.REPORTS_READ)


@router.get(
    "/api/<spaceId>/insights/reports/<reportId>/deployments", summary="Streams of a report with figures", tags=TAGS
)
def _report_deployments(spaceId: SpaceId, reportId: ReportId) -> Response[StreamsOut]:
    caller = principal()
    report = reports.get_report(store(), caller.space_id, reportId)
    read = freshness.read_streams(store(), caller.space_id, freshness.report_covers(report), now())
    streams = metrics.report_deployments(report, read.streams, read.figures, now())
    out = StreamsOut(
        ReportName=report.name,
        Streams=[
            Stream(
                ProjectId=registration["dims"]["project_id"],
                ProjectName=registration["dims"]["project"],
                ChannelId=registration["channel_id"],
                ChannelName=registration.get("channel"),
                EnvironmentId=registration["dims"]["environment_id"],
                EnvironmentName=registration["dims"]["environment"],
                TenantId=registration.get("tenant_id"),
                TenantName=registration["dims"].get("tenant"),
                Deployments=[stream_deployment(r) for r in rows],
            )
            for registration, rows in streams
        ],
    )
    return json_response(200, out, read.freshness.headers())


report_deployments = entry(app, ErrorDialect.OCTOPUS, Scope.REPORTS_READ)
