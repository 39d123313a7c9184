"""Catalogue lists in Octopus collection shape: projects, environments, tenants, groups, channels.

The six lists differ only in the entity they list: each is registered by :func:`_list_route` from
its row of ``_LISTINGS`` and has its own entry point (the name template.yaml's ``Handler`` gives).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dora_insights.dialects.errors import ErrorDialect
from dora_insights.dialects.native_admin import CatalogueItem, CatalogueList, TagSetTag
from dora_insights.domain.model import CatalogueEntry, CatalogueKind
from dora_insights.domain.scopes import Scope
from dora_insights.handlers.http import LambdaHandler, api, entry, json_response
from dora_insights.handlers.octopus_pages import collection_page
from dora_insights.handlers.params import DEFAULT_TAKE, Skip, SpaceId, Take
from dora_insights.handlers.runtime import principal, store
from dora_insights.logic import catalogue

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.OCTOPUS)


@dataclass(frozen=True)
class _Listing:
    """One catalogue list: its Octopus ``ItemType``, its path segment, its route body's name (the
    OpenAPI operationId is made from it) and its summary."""

    item_type: str
    segment: str
    route: str
    summary: str


_LISTINGS = {
    CatalogueKind.PROJECT: _Listing("Project", "projects", "_list_projects", "Projects"),
    CatalogueKind.ENVIRONMENT: _Listing("Environment", "environments", "_list_environments", "Environments"),
    CatalogueKind.TENANT: _Listing("Tenant", "tenants", "_list_tenants", "Tenants"),
    CatalogueKind.PROJECT_GROUP: _Listing("ProjectGroup", "projectgroups", "_list_project_groups", "Project groups"),
    CatalogueKind.CHANNEL: _Listing("Channel", "channels", "_list_channels", "Channels"),
    CatalogueKind.TENANT_TAG_SET: _Listing(
        "TagSet", "tenanttagsets", "_list_tenant_tag_sets", "Tenant tag sets and their tags"
    ),
}


def _item(space_id: str, entry: CatalogueEntry) -> CatalogueItem:
    tags = None
    if entry.kind is CatalogueKind.TENANT_TAG_SET:
        tags = [TagSetTag(Name=t, CanonicalTagName=f"{entry.name}/{t}") for t in sorted(entry.tags, key=str.casefold)]
    return CatalogueItem(Id=entry.id, SpaceId=space_id, Name=entry.name, Tags=tags)


# Octopus' filters of its catalogue lists (other parameters are ignored, as Octopus ignores them): a part
# of the name in any case, and ids, comma-separated or repeated (API Gateway's payload 2.0 joins a repeated
# parameter's values with commas, but Powertools reads the repeats from ``rawQueryString``: a list).
PartialName = Annotated[str | None, Query(description="Only entities whose name contains this, in any case")]
Ids = Annotated[list[str] | None, Query(description="Only entities of these ids, comma-separated (or repeated)")]


def _page(
    space_id: str, kind: CatalogueKind, skip: int, take: int, partial_name: str | None, ids: list[str] | None
) -> CatalogueList:
    caller = principal()
    wanted = [i.strip() for value in ids or () for i in value.split(",") if i.strip()]
    entries = catalogue.list_entities(store(), caller.space_id, kind, partial_name=partial_name, ids=wanted)
    listing = _LISTINGS[kind]
    filters = {"ids": ",".join(wanted) or None, "partialName": partial_name}
    return CatalogueList(
        ItemType=listing.item_type,
        Items=[_item(caller.space_id, e) for e in entries[skip : skip + take]],
        **collection_page(
            f"/api/{space_id}/{listing.segment}", len(entries), skip, take, filters=filters, neighbours=True
        ),
    )


def _list_route(kind: CatalogueKind) -> LambdaHandler:
    """Register ``GET /api/<spaceId>/<segment>``, the list of ``kind``, and return its entry point."""
    listing = _LISTINGS[kind]

    def list_kind(
        spaceId: SpaceId,
        skip: Skip = 0,
        take: Take = DEFAULT_TAKE,
        partialName: PartialName = None,
        ids: Ids = None,
    ) -> Response[CatalogueList]:
        return json_response(200, _page(spaceId, kind, skip, take, partialName, ids))

    list_kind.__name__ = list_kind.__qualname__ = listing.route
    router.get(f"/api/<spaceId>/{listing.segment}", summary=listing.summary, tags=["Catalogue"])(list_kind)
    return entry(app, ErrorDialect.OCTOPUS, Scope.DEPLOYMENTS_READ)


list_projects = _list_route(CatalogueKind.PROJECT)
list_environments = _list_route(CatalogueKind.ENVIRONMENT)
list_tenants = _list_route(CatalogueKind.TENANT)
list_project_groups = _list_route(CatalogueKind.PROJECT_GROUP)
list_channels = _list_route(CatalogueKind.CHANNEL)
list_tenant_tag_sets = _list_route(CatalogueKind.TENANT_TAG_SET)
