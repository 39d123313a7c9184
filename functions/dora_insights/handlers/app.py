"""The dashboard (``GET /app/``) and the API docs (``GET /docs``, Swagger UI over ``/openapi.json``):
pages and their assets, served from the fixed manifest of ``handlers.static_files``. No key: the pages
hold no data; the dashboard's script calls the API with the key the user signs in with.

Every answer carries a strict Content-Security-Policy (scripts and styles from this origin only, no
inline script), ``X-Content-Type-Options: nosniff``, no framing and no referrer. Assets have hashed
names and are cached for a year; pages are revalidated with their ``ETag``. A client that accepts
gzip gets the file compressed (done once per container).
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from dora_insights.dialects.errors import ErrorDialect
from dora_insights.errors import ResourceNotFoundError
from dora_insights.handlers.http import accepts_gzip, api, entry, header
from dora_insights.handlers.static_files import Bundle, StaticFile, bundle, etag_matches

router = APIGatewayHttpRouter()
app = api(router, ErrorDialect.NATIVE)

TAGS = ["Dashboard"]
PAGE_CACHE = "no-cache"  # always revalidated (ETag): a new deployment's page names its new assets
ASSET_CACHE = "public, max-age=31536000, immutable"  # hashed names: these bytes never change
# The dashboard's and the docs' routes: public, and pages rather than API operations.
PUBLIC_OPERATIONS = frozenset(
    {
        ("GET", "/app"),
        ("GET", "/app/"),
        ("GET", "/app/{asset}"),
        ("GET", "/docs"),
        ("GET", "/docs/{asset}"),
    }
)
AssetName = Annotated[str, Path(min_length=1, max_length=200, description="an asset's hashed name, from the page")]


def _security_headers(site: Bundle) -> dict[str, str]:
    return {
        "Content-Security-Policy": site.site.policy,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }


def _serve(site: Bundle, file: StaticFile) -> Response[Any]:
    """The file, or 304 when the client's copy is current; gzipped for a client that accepts it."""
    event_headers = router.current_event.headers or {}
    headers = {
        **_security_headers(site),
        "Cache-Control": ASSET_CACHE if file.immutable else PAGE_CACHE,
        "ETag": file.etag,
        "Vary": "Accept-Encoding",
    }
    if etag_matches(header(event_headers, "if-none-match"), file.etag):
        return Response(status_code=304, headers=headers)
    if accepts_gzip(event_headers):
        # handlers.http.fit_response marks a Content-Encoding answer's body as base64.
        body = base64.b64encode(file.gzipped).decode("ascii")
        return Response(200, file.content_type, body, {**headers, "Content-Encoding": "gzip"})
    return Response(200, file.content_type, file.body.decode("utf-8"), headers)


def _asset(site_name: str, asset: str) -> Response[Any]:
    site = bundle(site_name)
    file = site.asset(asset)
    if file is None:
        raise ResourceNotFoundError(f"no asset '{asset[:200]}' in /{site_name}")
    return _serve(site, file)


_PAGE_RESPONSES: dict[int, Any] = {200: {"description": "The page", "content": {"text/html": {}}}}
_ASSET_RESPONSES: dict[int, Any] = {
    200: {"description": "The asset", "content": {"text/javascript": {}, "text/css": {}, "image/svg+xml": {}}}
}


@router.get("/app/", summary="Dashboard", tags=TAGS, responses=_PAGE_RESPONSES)
def _dashboard() -> Response[Any]:
    site = bundle("app")
    return _serve(site, site.page)


dashboard = entry(app, ErrorDialect.NATIVE, None)  # GET /app/, and GET /app (its alias) redirects there


@router.get(
    "/app",
    summary="Dashboard (redirects to /app/)",
    tags=TAGS,
    responses={308: {"description": "Permanent redirect to /app/"}},
)
def _dashboard_redirect() -> Response[Any]:
    # "app/" resolves against /app (or /<stage>/app) to the page's own URL, with its trailing slash.
    return Response(status_code=308, headers={"Location": "app/", "Cache-Control": "max-age=3600"})


@router.get("/app/<asset>", summary="Dashboard asset", tags=TAGS, responses=_ASSET_RESPONSES)
def _dashboard_asset(asset: AssetName) -> Response[Any]:
    return _asset("app", asset)


dashboard_asset = entry(app, ErrorDialect.NATIVE, None)


@router.get("/docs", summary="API docs (Swagger UI over /openapi.json)", tags=TAGS, responses=_PAGE_RESPONSES)
def _api_docs() -> Response[Any]:
    site = bundle("docs")
    return _serve(site, site.page)


api_docs = entry(app, ErrorDialect.NATIVE, None)


@router.get("/docs/<asset>", summary="API docs asset", tags=TAGS, responses=_ASSET_RESPONSES)
def _api_docs_asset(asset: AssetName) -> Response[Any]:
    return _asset("docs", asset)


api_docs_asset = entry(app, ErrorDialect.NATIVE, None)
