"""Catalogue lists in Octopus collection shape: projects, environments, tenants, groups, channels."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dora_insights.dialects.errors import ErrorDialect
from dora_insights.dialects.native_admin import CatalogueItem, CatalogueList, TagSetTag
from dora_insights.domain.model import CatalogueEntry, CatalogueKind
from dora_insights.domain.scopes import Scope
from dora_insights.handlers.http import api, entry, json_response
from dora_insights.handlers.params import ALL, DEFAULT_TAKE, Skip, SpaceId, Take
from dora_insights.handlers.runtime import principal, store
from dora_insights.logic import catalogue

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.OCTOPUS)

_ITEM_TYPES = {
    CatalogueKind.PROJECT: ("Project", "projects"),
    CatalogueKind.ENVIRONMENT: ("Environment", "environments"),
    CatalogueKind.TENANT: ("Tenant", "tenants"),
    CatalogueKind.PROJECT_GROUP: ("ProjectGroup", "projectgroups"),
    CatalogueKind.CHANNEL: ("Channel", "channels"),
    CatalogueKind.TENANT_TAG_SET: ("TagSet", "tenanttagsets"),
}


def _item(space_id: str, entry: CatalogueEntry) -> CatalogueItem:
    tags = None
    if entry.kind is CatalogueKind.TENANT_TAG_SET:
        tags = [TagSetTag(Name=t, CanonicalTagName=f"{entry.name}/{t}") for t in sorted(entry.tags, key=str.casefold)]
    return CatalogueItem(Id=entry.id, SpaceId=space_id, Name=entry.name, Tags=tags)


def _page(space_id: str, kind: CatalogueKind, skip: int, take: int) -> CatalogueList:
    caller = principal()
    entries = catalogue.list_entities(store(), caller.space_id, kind)
    item_type, segment = _ITEM_TYPES[kind]
    total = len(entries)
    pages = max(1, -(-total // take))
    base = f"/api/{space_id}/{segment}"
    return CatalogueList(
        ItemType=item_type,
        TotalResults=total,
        ItemsPerPage=take,
        NumberOfPages=pages,
        LastPageNumber=pages - 1,
        Items=[_item(caller.space_id, e) for e in entries[skip : skip + take]],
        Links={
            "Self": f"{base}?skip={skip}&take={take}",
            "Template": base + "{?skip,take}",
            "Page.All": f"{base}?skip=0&take={ALL}",
            "Page.Current": f"{base}?skip={skip}&take={take}",
            "Page.Last": f"{base}?skip={(pages - 1) * take}&take={take}",
        },
    )


@router.get("/api/<spaceId>/projects", summary="Projects", tags=["Catalogue"])
def _list_projects(spaceId: SpaceId, skip: Skip = 0, take: Take = DEFAULT_TAKE) -> Response[CatalogueList]:
    return json_response(200, _page(spaceId, CatalogueKind.PROJECT, skip, take))


list_projects = entry(app, ErrorDialect.OCTOPUS, Scope.DEPLOYMENTS_READ)


@router.get("/api/<spaceId>/environments", summary="Environments", tags=["Catalogue"])
def _list_environments(spaceId: SpaceId, skip: Skip = 0, take: Take = DEFAULT_TAKE) -> Response[CatalogueList]:
    return json_response(200, _page(spaceId, CatalogueKind.ENVIRONMENT, skip, take))


list_environments = entry(app, ErrorDialect.OCTOPUS, Scope.DEPLOYMENTS_READ)


@router.get("/api/<spaceId>/tenants", summary="Tenants", tags=["Catalogue"])
def _list_tenants(spaceId: SpaceId, skip: Skip = 0, take: Take = DEFAULT_TAKE) -> Response[CatalogueList]:
    return json_response(200, _page(spaceId, CatalogueKind.TENANT, skip, take))


list_tenants = entry(app, ErrorDialect.OCTOPUS, Scope.DEPLOYMENTS_READ)


@router.get("/api/<spaceId>/projectgroups", summary="Project groups", tags=["Catalogue"])
def _list_project_groups(spaceId: SpaceId, skip: Skip = 0, take: Take = DEFAULT_TAKE) -> Response[CatalogueList]:
    return json_response(200, _page(spaceId, CatalogueKind.PROJECT_GROUP, skip, take))


list_project_groups = entry(app, ErrorDialect.OCTOPUS, Scope.DEPLOYMENTS_READ)


@router.get("/api/<spaceId>/channels", summary="Channels", tags=["Catalogue"])
def _list_channels(spaceId: SpaceId, skip: Skip = 0, take: Take = DEFAULT_TAKE) -> Response[CatalogueList]:
    return json_response(200, _page(spaceId, CatalogueKind.CHANNEL, skip, take))


list_channels = entry(app, ErrorDialect.OCTOPUS, Scope.DEPLOYMENTS_READ)


@router.get("/api/<spaceId>/tenanttagsets", summary="Tenant tag sets and their tags", tags=["Catalogue"])
def _list_tenant_tag_sets(spaceId: SpaceId, skip: Skip = 0, take: Take = DEFAULT_TAKE) -> Response[CatalogueList]:
    return json_response(200, _page(spaceId, CatalogueKind.TENANT_TAG_SET, skip, take))


list_tenant_tag_sets = entry(app, ErrorDialect.OCTOPUS, Scope.DEPLOYMENTS_READ)
