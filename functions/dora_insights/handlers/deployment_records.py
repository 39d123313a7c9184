"""Native routes of stored deployments (API.md "Native API"): list, read one (with its attribution's
pages and stream health), correct, delete, and the corrections kept of one."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dora_insights.dialects.errors import ErrorDialect
from dora_insights.dialects.native import (
    MAX_TAG_FILTERS,
    DeploymentOut,
    DeploymentPage,
    decode_changes_cursor,
    parse_tag_filter,
)
from dora_insights.dialects.native_corrections import CorrectionOut, CorrectionPage, DeploymentPatchIn
from dora_insights.dialects.native_health import StreamHealthOut
from dora_insights.domain.model import TaskState
from dora_insights.domain.queries import DeploymentFilter
from dora_insights.domain.scopes import Scope
from dora_insights.handlers.http import api, entry, expected_revision, instant_param, json_response, no_content
from dora_insights.handlers.params import Cursor, DeploymentId, EnvironmentName, From, IfMatch, ProjectName, SpaceId, To
from dora_insights.handlers.runtime import now, principal, store
from dora_insights.logic import attribution, corrections, deployments

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.NATIVE)


@router.get("/api/<spaceId>/deployments", summary="List deployments, newest first", tags=["Deployments"])
def _list_deployments(
    spaceId: SpaceId,
    project: ProjectName = None,
    environment: EnvironmentName = None,
    tenant: Annotated[str | None, Query(max_length=200)] = None,
    state: Annotated[TaskState | None, Query()] = None,
    from_: From = None,
    to: To = None,
    limit: Annotated[int, Query(ge=1, le=deployments.MAX_PAGE)] = deployments.DEFAULT_PAGE,
    cursor: Cursor = None,
    tag: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_TAG_FILTERS,
            description="key:value tags every deployment listed carries (comma-separated or repeated)",
        ),
    ] = None,
) -> Response[DeploymentPage]:
    caller = principal()
    filters = DeploymentFilter(
        project=project,
        environment=environment,
        tenant=tenant,
        state=state,
        finished_from=instant_param("from", from_),
        finished_to=instant_param("to", to),
        tags=parse_tag_filter(",".join(tag) if tag is not None else None),
    )
    items, next_cursor = deployments.list_deployments(store(), caller.space_id, filters, limit=limit, cursor=cursor)
    page = DeploymentPage(items=[DeploymentOut.from_domain(d) for d in items], next_cursor=next_cursor)
    return json_response(200, page)


list_deployments = entry(app, ErrorDialect.NATIVE, Scope.DEPLOYMENTS_READ)


@router.get("/api/<spaceId>/deployments/<deploymentId>", summary="One deployment", tags=["Deployments"])
def _get_deployment(
    spaceId: SpaceId,
    deploymentId: DeploymentId,
    attribution_cursor: Annotated[
        str | None, Query(max_length=256, description="attribution.next_cursor: the next page of its changes")
    ] = None,
) -> Response[DeploymentOut]:
    caller = principal()
    page = decode_changes_cursor(attribution_cursor) if attribution_cursor is not None else None
    deployment, stream, fresh = deployments.get_deployment_and_stream_health(
        store(), caller.space_id, deploymentId, now()
    )
    if page is not None:
        deployment = attribution.changes_page(store(), caller.space_id, deployment, *page)
    out = DeploymentOut.from_domain(deployment, changes_page=page[1] if page is not None else 0)
    out.stream_health = StreamHealthOut.of(stream) if stream is not None else None
    out.as_of, out.pending = fresh.as_of, fresh.pending
    return json_response(200, out, {**fresh.headers(), "ETag": f'"{deployment.revision}"'})  # what If-Match names


get_deployment = entry(app, ErrorDialect.NATIVE, Scope.DEPLOYMENTS_READ)


@router.patch(
    "/api/<spaceId>/deployments/<deploymentId>",
    summary="Correct a deployment (state, change-failure override, remediation, version, tags)",
    tags=["Deployments"],
)
def _correct_deployment(
    spaceId: SpaceId,
    deploymentId: DeploymentId,
    body: Annotated[DeploymentPatchIn, Body()],
    if_match: IfMatch = None,
) -> Response[DeploymentOut]:
    caller = principal()
    expected = expected_revision(if_match, body.revision, "the deployment's revision (its ETag)")
    corrected = corrections.correct_deployment(
        store(),
        caller.space_id,
        deploymentId,
        body.to_correction(),
        actor=corrections.actor_of(caller),
        now=now(),
        expected_revision=expected,
    )
    return json_response(200, DeploymentOut.from_domain(corrected), {"ETag": f'"{corrected.revision}"'})


correct_deployment = entry(app, ErrorDialect.NATIVE, Scope.DEPLOYMENTS_WRITE)


@router.delete(
    "/api/<spaceId>/deployments/<deploymentId>", summary="Delete a deployment", tags=["Deployments"], status_code=204
)
def _delete_deployment(spaceId: SpaceId, deploymentId: DeploymentId) -> Response[None]:
    caller = principal()
    corrections.delete_deployment(store(), caller.space_id, deploymentId, actor=corrections.actor_of(caller), now=now())
    return no_content()


delete_deployment = entry(app, ErrorDialect.NATIVE, Scope.DEPLOYMENTS_WRITE)


@router.get(
    "/api/<spaceId>/deployments/<deploymentId>/corrections",
    summary="A deployment's corrections and removal, newest first (kept after it is deleted)",
    tags=["Deployments"],
)
def _list_deployment_corrections(
    spaceId: SpaceId,
    deploymentId: DeploymentId,
    limit: Annotated[int, Query(ge=1, le=corrections.MAX_PAGE)] = corrections.DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Response[CorrectionPage]:
    caller = principal()
    records, next_cursor = corrections.list_corrections(
        store(), caller.space_id, deploymentId, limit=limit, cursor=cursor
    )
    page = CorrectionPage(items=[CorrectionOut.from_domain(r) for r in records], next_cursor=next_cursor)
    return json_response(200, page)


list_deployment_corrections = entry(app, ErrorDialect.NATIVE, Scope.DEPLOYMENTS_READ)
