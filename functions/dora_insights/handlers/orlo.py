"""Orlo dialect (API.md "Dialect: Orlo", reference: orlo-rest-api.txt), mounted at ``/orlo``.

Routes act in the key's space. Keys arrive as usual (``orloclient`` sends HTTP Basic with the
key as password) or as an ``X-Auth-Token`` from ``GET /orlo/token``. Fixed paths are registered
before the ``<param>`` paths they would otherwise match (Powertools matches in order).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel

from dora_insights.dal.repositories import Repositories
from dora_insights.dialects.errors import ErrorDialect
from dora_insights.dialects.orlo import (
    IMPORT_MESSAGE,
    ROOT_MESSAGE,
    ByDateQueryIn,
    IdOut,
    ImportIn,
    ImportOut,
    InfoOut,
    InfoQueryIn,
    MessageOut,
    MetadataIn,
    NotesIn,
    PackageIn,
    PackageQueryIn,
    PackagesOut,
    PackageStopIn,
    ReleaseIn,
    ReleaseQueryIn,
    ReleasesOut,
    ResultsIn,
    StatsQueryIn,
    TokenOut,
    VersionOut,
    VersionsQueryIn,
    parse_body,
    parse_import,
    parse_query,
    parse_subject,
    parse_uuid,
    render_packages,
    render_releases,
)
from dora_insights.domain.ids import sha256_hex
from dora_insights.domain.orlo import StatsField
from dora_insights.domain.scopes import Scope
from dora_insights.errors import (
    AuthenticationMissingError,
    RequestInvalidError,
    ResourceNotFoundError,
    ScopeMissingError,
)
from dora_insights.handlers.http import JSON, api, entry, header, json_response, no_content
from dora_insights.handlers.runtime import now, principal, store
from dora_insights.logic import corrections, orlo
from dora_insights.logic.auth import Principal, authenticate, presented_key

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.ORLO)

TAGS = ["Orlo"]
ORLO_VERSION = "0.5.0"
STATS_FIELDS: dict[str, StatsField] = {"user": "user", "team": "team", "platform": "platform", "package": "package"}
INFO_FACETS = ("users", "platforms", "packages")
TOKEN_HEADER = "x-auth-token"

Json = Response[dict[str, Any]]
# A list's answer (its 404 is Orlo's ``{"message", "releases": []}``: the dialect's error shape allows it).
_RELEASES: dict[int, OpenAPIResponse] = {200: {"description": "OK", "content": {JSON: {"model": ReleasesOut}}}}
_PACKAGES: dict[int, OpenAPIResponse] = {200: {"description": "OK", "content": {JSON: {"model": PackagesOut}}}}
_VERSION: dict[int, OpenAPIResponse] = {200: {"description": "OK", "content": {JSON: {"model": VersionOut}}}}
_TOKEN: dict[int, OpenAPIResponse] = {200: {"description": "OK", "content": {JSON: {"model": TokenOut}}}}


# --------------------------------------------------------------------------- authentication and entry points


# Both are ``http.Authenticator``s: ``where`` is what the entry point passes on to ``authenticate``
# (``space_id``, ``any_space_for_admin``).
def _with_token(keys: Repositories, headers: Mapping[str, str], needed: Scope, **where: Any) -> Principal:
    """A key as usual, or else an ``X-Auth-Token`` from ``/orlo/token``."""
    token = header(headers, TOKEN_HEADER).strip()
    if token and presented_key(headers) is None:
        return orlo.authenticate_token(keys, token, needed, now())
    return authenticate(keys, headers, needed, **where)


def _key_for_token(keys: Repositories, headers: Mapping[str, str], needed: Scope, **where: Any) -> Principal:
    """``/orlo/token``: a key (not a token) holding either Orlo scope."""
    try:
        return authenticate(keys, headers, needed, **where)
    except ScopeMissingError:
        return authenticate(keys, headers, Scope.DEPLOYMENTS_WRITE, space_id=where.get("space_id"))


def _entry(scope: Scope | None) -> Any:
    """The entry point of one Orlo route: a key, or an ``X-Auth-Token``, holding ``scope``."""
    return entry(app, ErrorDialect.ORLO, scope, authenticator=_with_token)


_READ, _WRITE = Scope.DEPLOYMENTS_READ, Scope.DEPLOYMENTS_WRITE


# --------------------------------------------------------------------------- request parts


def _body() -> Any:
    """The JSON body, None when absent; 400 when it is not JSON."""
    text = router.current_event.body
    if text is None or not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise RequestInvalidError("the body is not valid JSON") from None


def _query() -> Mapping[str, str] | None:
    """The query as Orlo reads it (Flask's ``request.args.get``): a repeated parameter's first value. API
    Gateway joins a repeated parameter's values with commas in ``queryStringParameters`` (``user=a&user=b``
    was a filter on the user "a,b"); ``rawQueryString`` keeps them apart."""
    event = router.current_event
    raw = event.raw_query_string
    if not raw:
        return event.query_string_parameters
    first: dict[str, str] = {}
    for name, value in parse_qsl(raw, keep_blank_values=True):
        first.setdefault(name, value)
    return first


def _path(name: str, matched: str) -> str:
    """A path parameter as API Gateway decoded it (the matched value is still URL-encoded)."""
    return str((router.current_event.path_parameters or {}).get(name, matched))


def _release_id(value: str) -> str:
    return parse_uuid(_path("rid", value), "Release")


def _package_id(value: str) -> str:
    return parse_uuid(_path("pid", value), "Package")


# --------------------------------------------------------------------------- import (fixed paths first)


@router.post("/orlo/releases/import", summary="Import releases (all or nothing)", tags=TAGS)
def _import_releases() -> Response[ImportOut]:
    docs = parse_import(_body())
    caller = principal()
    ids = orlo.import_releases(store(), caller.space_id, docs, now(), actor=corrections.actor_of(caller))
    return json_response(200, ImportOut(releases=ids))


import_releases = _entry(_WRITE)


@router.get("/orlo/releases/import", summary="How to import releases", tags=TAGS)
def _import_help() -> Response[MessageOut]:
    return json_response(200, MessageOut(message=IMPORT_MESSAGE))


import_help = _entry(_READ)


# --------------------------------------------------------------------------- release workflow


@router.post("/orlo/releases", summary="Create a release", tags=TAGS)
def _create_release() -> Response[IdOut]:
    body = parse_body(ReleaseIn, _body())
    release = body.to_release(orlo.new_uuid(), now())
    return json_response(200, IdOut(id=orlo.create_release(store(), principal().space_id, release)))


create_release = _entry(_WRITE)


@router.post("/orlo/releases/<rid>/packages", summary="Add a package to a release", tags=TAGS)
def _add_package(rid: str) -> Response[IdOut]:
    release_id = _release_id(rid)
    body = parse_body(PackageIn, _body())
    package_id = orlo.add_package(
        store(),
        principal().space_id,
        release_id,
        name=body.name,
        version=body.version,
        rollback=body.rollback,
        diff_url=body.diff_url,
    )
    return json_response(200, IdOut(id=package_id))


add_package = _entry(_WRITE)


@router.post(
    "/orlo/releases/<rid>/packages/<pid>/start", summary="A package starts deploying", tags=TAGS, status_code=204
)
def _start_package(rid: str, pid: str) -> Response[None]:
    orlo.start_package(store(), principal().space_id, _release_id(rid), _package_id(pid), now())
    return no_content()


start_package = _entry(_WRITE)


@router.post(
    "/orlo/releases/<rid>/packages/<pid>/stop", summary="A package finished deploying", tags=TAGS, status_code=204
)
def _stop_package(rid: str, pid: str) -> Response[None]:
    release_id, package_id = _release_id(rid), _package_id(pid)
    body = parse_body(PackageStopIn, _body())
    orlo.stop_package(store(), principal().space_id, release_id, package_id, success=body.success, now=now())
    return no_content()


stop_package = _entry(_WRITE)


@router.post(
    "/orlo/releases/<rid>/packages/<pid>/results", summary="Results of a package release", tags=TAGS, status_code=204
)
def _add_package_results(rid: str, pid: str) -> Response[None]:
    release_id, package_id = _release_id(rid), _package_id(pid)
    content = router.current_event.body or ""
    orlo.add_results(store(), principal().space_id, release_id, package_id, content, now())
    return no_content()


add_package_results = _entry(_WRITE)


@router.post("/orlo/releases/<rid>/start", summary="A release starts", tags=TAGS, status_code=204)
def _start_release(rid: str) -> Response[None]:
    orlo.start_release(store(), principal().space_id, _release_id(rid), now())
    return no_content()


start_release = _entry(_WRITE)


@router.post("/orlo/releases/<rid>/stop", summary="A release finished", tags=TAGS, status_code=204)
def _stop_release(rid: str) -> Response[None]:
    orlo.stop_release(store(), principal().space_id, _release_id(rid), now())
    return no_content()


stop_release = _entry(_WRITE)


@router.post("/orlo/releases/<rid>/notes", summary="Add a note to a release", tags=TAGS, status_code=204)
def _add_release_notes(rid: str) -> Response[None]:
    release_id = _release_id(rid)
    body = parse_body(NotesIn, _body())
    orlo.add_note(store(), principal().space_id, release_id, body.text)
    return no_content()


add_release_notes = _entry(_WRITE)


@router.post("/orlo/releases/<rid>/metadata", summary="Add metadata to a release", tags=TAGS, status_code=204)
def _add_release_metadata(rid: str) -> Response[None]:
    release_id = _release_id(rid)
    body = parse_body(MetadataIn, _body())
    orlo.add_metadata(store(), principal().space_id, release_id, body.root)
    return no_content()


add_release_metadata = _entry(_WRITE)


# --------------------------------------------------------------------------- releases and packages


def _releases(release_id: str | None = None) -> Json:
    """``GET /releases[/{rid}]``: the releases the query's filters and page select (of one id, if given)."""
    query = parse_query(ReleaseQueryIn, _query())
    found = orlo.list_releases(store(), principal().space_id, query.filters(), query.page(), release_id=release_id)
    return json_response(*render_releases(found))


def _packages(package_id: str | None = None) -> Json:
    """``GET /packages[/{pid}]``: the packages the query's filters and page select (of one id, if given)."""
    query = parse_query(PackageQueryIn, _query())
    found = orlo.list_packages(store(), principal().space_id, query.filters(), query.page(), package_id=package_id)
    return json_response(*render_packages(found))


@router.get("/orlo/releases", summary="List releases", tags=TAGS, responses=_RELEASES)
def _list_releases() -> Json:
    return _releases()


list_releases = _entry(_READ)


@router.get("/orlo/releases/<rid>", summary="Get a release", tags=TAGS, responses=_RELEASES)
def _get_release(rid: str) -> Json:
    return _releases(_release_id(rid))


get_release = _entry(_READ)


@router.get("/orlo/packages", summary="List packages", tags=TAGS, responses=_PACKAGES)
def _list_packages() -> Json:
    return _packages()


list_packages = _entry(_READ)


@router.get("/orlo/packages/<pid>", summary="Get a package", tags=TAGS, responses=_PACKAGES)
def _get_package(pid: str) -> Json:
    return _packages(_package_id(pid))


get_package = _entry(_READ)


# --------------------------------------------------------------------------- stats


@router.get("/orlo/stats", summary="Global release stats", tags=TAGS)
def _stats() -> Json:
    query = parse_query(StatsQueryIn, _query())
    return json_response(200, orlo.stats_global(store(), principal().space_id, stime=query.stime, ftime=query.ftime))


stats = _entry(_READ)


@router.get("/orlo/stats/by_date/<subject>", summary="Release or package stats by date", tags=TAGS)
def _stats_by_date(subject: str) -> Json:
    chosen = parse_subject(_path("subject", subject))
    query = parse_query(ByDateQueryIn, _query())
    tree = orlo.stats_by_date(
        store(),
        principal().space_id,
        chosen,
        unit=query.unit,
        summarize_by_unit=query.summarize_by_unit,
        filters=query.filters(),
    )
    return json_response(200, tree)


stats_by_date = _entry(_READ)


def _stats_field(value: str) -> StatsField:
    field = STATS_FIELDS.get(_path("field", value))
    if field is None:
        raise ResourceNotFoundError("stats are by user, team, platform or package", field="field")
    return field


def _stats_by(field: str, name: str | None) -> Json:
    by = _stats_field(field)
    query = parse_query(StatsQueryIn, _query())
    counts = orlo.stats_by(store(), principal().space_id, by, name=name, stime=query.stime, ftime=query.ftime)
    return json_response(200, counts)


@router.get(
    "/orlo/stats/<field>",
    summary="Release stats per user, team, platform or package",
    tags=TAGS,
    responses={
        200: {"description": "OK"},
        409: {"description": "Stats by team while some releases have no team (Orlo answers 500): ask for one team"},
    },
)
def _stats_by_field(field: str) -> Json:
    return _stats_by(field, None)


stats_by_field = _entry(_READ)


@router.get("/orlo/stats/<field>/<name>", summary="Release stats of one user, team, platform or package", tags=TAGS)
def _stats_by_name(field: str, name: str) -> Json:
    return _stats_by(field, _path("name", name))


stats_by_name = _entry(_READ)


# --------------------------------------------------------------------------- info


@router.get("/orlo/info", summary="Root of /info", tags=TAGS)
def _info() -> Response[InfoOut]:
    return json_response(200, InfoOut())


info = _entry(_READ)


@router.get("/orlo/info/packages/list", summary="Every package name", tags=TAGS)
def _info_package_list() -> Json:
    query = parse_query(InfoQueryIn, _query())
    return json_response(200, orlo.package_list(store(), principal().space_id, platform=query.platform))


info_package_list = _entry(_READ)


@router.get("/orlo/info/packages/versions", summary="Current version of every package", tags=TAGS)
def _info_package_versions() -> Json:
    query = parse_query(VersionsQueryIn, _query())
    versions = orlo.package_versions(
        store(), principal().space_id, platform=query.platform, by_release=query.by_release
    )
    return json_response(200, versions)


info_package_versions = _entry(_READ)


def _info_of(facet: str, name: str | None) -> Json:
    chosen = _path("facet", facet)
    if chosen not in INFO_FACETS:
        raise ResourceNotFoundError("info is about users, platforms or packages", field="facet")
    query = parse_query(InfoQueryIn, _query())
    return json_response(200, orlo.info(store(), principal().space_id, chosen, name=name, platform=query.platform))


@router.get("/orlo/info/<facet>", summary="Releases per user, platform or package", tags=TAGS)
def _info_facet(facet: str) -> Json:
    return _info_of(facet, None)


info_facet = _entry(_READ)


@router.get("/orlo/info/<facet>/<name>", summary="Releases of one user, platform or package", tags=TAGS)
def _info_facet_name(facet: str, name: str) -> Json:
    return _info_of(facet, _path("name", name))


info_facet_name = _entry(_READ)


# --------------------------------------------------------------------------- meta and token


@router.get("/orlo/ping", summary="Ping (no key)", tags=TAGS)
def _ping() -> Response[MessageOut]:
    return json_response(200, MessageOut(message="pong"))


ping = entry(app, ErrorDialect.ORLO, None)


@router.get("/orlo/version", summary="Orlo version", tags=TAGS, responses=_VERSION)
@router.get("/orlo/internal/version", summary="Orlo version (internal)", tags=TAGS, responses=_VERSION)
def _version() -> Json:
    return json_response(200, {"version": ORLO_VERSION})


version = _entry(_READ)


@router.get("/orlo", summary="Orlo root", tags=TAGS)
@router.get("/orlo/", summary="Orlo root (with the trailing slash orloclient uses)", tags=TAGS)
def _root() -> Response[MessageOut]:
    return json_response(200, MessageOut(message=ROOT_MESSAGE))


root = _entry(_READ)


@router.get("/orlo/token", summary="A token for X-Auth-Token (1 hour)", tags=TAGS, responses=_TOKEN)
def _token() -> Json:
    key = presented_key(router.current_event.headers)
    if key is None:  # pragma: no cover - the entry point authenticated a key
        raise AuthenticationMissingError("an API key is required")
    issued = orlo.issue_token(store(), principal(), sha256_hex(key), now())
    return json_response(200, {"token": issued.token})


token = entry(app, ErrorDialect.ORLO, _READ, authenticator=_key_for_token)


# --------------------------------------------------------------------------- the OpenAPI document

# The routes read their body and query string themselves (``_body``, ``_query``: to answer in Orlo's own
# words), so the resolver sees neither; meta.py adds them to the document from these models, by route.
OPENAPI_BODIES: dict[tuple[str, str], type[BaseModel] | str] = {
    ("POST", "/orlo/releases"): ReleaseIn,
    ("POST", "/orlo/releases/import"): ImportIn,
    ("POST", "/orlo/releases/{rid}/packages"): PackageIn,
    ("POST", "/orlo/releases/{rid}/packages/{pid}/stop"): PackageStopIn,
    ("POST", "/orlo/releases/{rid}/packages/{pid}/results"): ResultsIn,
    ("POST", "/orlo/releases/{rid}/notes"): NotesIn,
    ("POST", "/orlo/releases/{rid}/metadata"): MetadataIn,
}
OPENAPI_OPTIONAL_BODIES = frozenset({("POST", "/orlo/releases/{rid}/packages/{pid}/results")})  # free content
OPENAPI_QUERIES: dict[tuple[str, str], type[BaseModel]] = {
    ("GET", "/orlo/releases"): ReleaseQueryIn,
    ("GET", "/orlo/releases/{rid}"): ReleaseQueryIn,
    ("GET", "/orlo/packages"): PackageQueryIn,
    ("GET", "/orlo/packages/{pid}"): PackageQueryIn,
    ("GET", "/orlo/stats"): StatsQueryIn,
    ("GET", "/orlo/stats/by_date/{subject}"): ByDateQueryIn,
    ("GET", "/orlo/stats/{field}"): StatsQueryIn,
    ("GET", "/orlo/stats/{field}/{name}"): StatsQueryIn,
    ("GET", "/orlo/info/packages/list"): InfoQueryIn,
    ("GET", "/orlo/info/packages/versions"): VersionsQueryIn,
    ("GET", "/orlo/info/{facet}"): InfoQueryIn,
    ("GET", "/orlo/info/{facet}/{name}"): InfoQueryIn,
}
