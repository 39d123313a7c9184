"""Serving the dashboard (``/app/``) and the API docs (``/docs``): content types, caching, gzip, the
Content-Security-Policy, and nothing outside the fixed manifest (handlers/static_files.py).

The route functions run as the template's functions do (``tests.support.lambdas.invoke``: under their
role, which allows no AWS call at all); no moto, no network."""

from __future__ import annotations

import base64
import gzip
import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from dora_insights.handlers import static_files
from dora_insights.handlers.app import PUBLIC_OPERATIONS
from tests.conftest import _Context
from tests.support import lambdas
from tests.support.events import http_event
from tests.support.template import http_routes

PAGES = {"app": ("DashboardFunction", "/app/"), "docs": ("ApiDocsFunction", "/docs")}
ASSETS = {"app": ("DashboardAssetFunction", "/app/{asset}"), "docs": ("ApiDocsAssetFunction", "/docs/{asset}")}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    raw: bytes  # the body as the client gets it (base64 undone, still compressed)

    @property
    def body(self) -> bytes:
        return gzip.decompress(self.raw) if self.headers.get("content-encoding") == "gzip" else self.raw


def _call(function: str, route: str, *, path: str | None = None, asset: str | None = None, **headers: str) -> Answer:
    params = {"asset": asset} if asset is not None else None
    event = http_event("GET", route, path_params=params, headers={k.replace("_", "-"): v for k, v in headers.items()})
    if path is not None:
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
    response: dict[str, Any] = lambdas.invoke(function, event, _Context())
    body = response.get("body") or ""
    raw = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
    return Answer(response["statusCode"], {k.lower(): v for k, v in (response.get("headers") or {}).items()}, raw)


def _page(site: str, **headers: str) -> Answer:
    function, route = PAGES[site]
    return _call(function, route, **headers)


def _asset(site: str, name: str, **headers: str) -> Answer:
    function, route = ASSETS[site]
    return _call(function, route, asset=name, **headers)


class _References(HTMLParser):
    """Every src and href of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def _references(html: bytes) -> list[str]:
    parser = _References()
    parser.feed(html.decode())
    return parser.urls


def _policy(answer: Answer) -> dict[str, list[str]]:
    directives = [d.strip().split() for d in answer.headers["content-security-policy"].split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


# ------------------------------------------------------------------------------------------------ the pages
@pytest.mark.parametrize("site", sorted(PAGES))
def test_a_page_is_html_revalidated_by_its_etag(site: str) -> None:
    page = _page(site)
    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-cache"
    assert re.fullmatch(r'"[0-9a-f]{32}"', page.headers["etag"])
    assert page.body.startswith(b"<!doctype html>")
    assert b"{{asset:" not in page.body  # every placeholder rendered


@pytest.mark.parametrize("site", sorted(PAGES))
def test_every_answer_carries_a_strict_content_security_policy_and_nosniff(site: str) -> None:
    page = _page(site)
    name = next(iter(static_files.bundle(site).assets))
    for answer in (page, _asset(site, name)):
        policy = _policy(answer)
        assert policy["default-src"] == ["'none'"]
        assert policy["script-src"] == ["'self'"]  # no inline script, no eval, no other origin
        assert policy["style-src"] == ["'self'"]
        assert policy["connect-src"] == ["'self'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert policy["base-uri"] == ["'none'"]
        assert policy["form-action"] == ["'none'"]
        assert not [s for sources in policy.values() for s in sources if "unsafe" in s or s in ("*", "http:", "https:")]
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"


def test_only_the_docs_allow_data_images_for_swagger_uis_icons() -> None:
    assert _policy(_page("app"))["img-src"] == ["'self'"]
    assert _policy(_page("docs"))["img-src"] == ["'self'", "data:"]


@pytest.mark.parametrize("site", sorted(PAGES))
def test_a_page_has_no_inline_script_and_loads_nothing_from_another_origin(site: str) -> None:
    html = _page(site).body.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    assert "style=" not in html
    for url in _references(html.encode()):
        assert not re.match(r"^([a-z]+:|//)", url), url  # relative: this origin only, no CDN


def test_the_dashboard_page_loads_its_assets_by_hashed_name_relative_to_app() -> None:
    html = _page("app").body
    names = set(static_files.bundle("app").assets)
    loaded = {url for url in _references(html) if not url.startswith(("#", "../"))}
    assert loaded == names
    assert all(re.fullmatch(r"[A-Za-z.]+\.[0-9a-f]{12}\.(js|css|svg)", n) for n in names), names


def test_the_docs_page_loads_swagger_ui_under_docs_and_reads_the_openapi_document() -> None:
    html = _page("docs").body
    loaded = {url for url in _references(html) if url.startswith("docs/")}
    assert {f"docs/{n}" for n in static_files.bundle("docs").assets} == loaded
    assert any(n.startswith("swagger-ui-bundle.") for n in static_files.bundle("docs").assets)
    script = (static_files.STATIC_ROOT / "docs" / "docs.js").read_text()
    assert '"openapi.json"' in script


def test_bare_app_redirects_to_the_page_with_its_trailing_slash() -> None:
    answer = _call("DashboardFunction", "/app", path="/app")
    assert answer.status == 308
    assert answer.headers["location"] == "app/"


# ------------------------------------------------------------------------------------------------ assets
@pytest.mark.parametrize("site", sorted(ASSETS))
def test_every_asset_has_its_content_type_and_is_cached_for_a_year(site: str) -> None:
    expected = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
    for name, file in static_files.bundle(site).assets.items():
        answer = _asset(site, name)
        assert answer.status == 200, name
        assert answer.headers["content-type"] == expected[Path(name).suffix], name
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert answer.headers["etag"] == file.etag
        assert answer.body == file.body


def test_an_assets_name_is_its_content_hash() -> None:
    for site in ASSETS:
        for path in static_files.SITES[site].assets:
            body = (static_files.STATIC_ROOT / path).read_bytes()
            assert static_files.public_name(path, body) in static_files.bundle(site).assets, path


@pytest.mark.parametrize("site", sorted(ASSETS))
def test_gzip_when_the_client_accepts_it_and_plain_otherwise(site: str) -> None:
    name = max(static_files.bundle(site).assets, key=lambda n: len(static_files.bundle(site).assets[n].body))
    plain = _asset(site, name)
    packed = _asset(site, name, accept_encoding="gzip, deflate, br")
    refused = _asset(site, name, accept_encoding="gzip;q=0, identity")
    assert "content-encoding" not in plain.headers and "content-encoding" not in refused.headers
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["vary"] == "Accept-Encoding"
    assert len(packed.raw) < len(plain.raw) / 2
    assert packed.body == plain.raw == refused.raw
    page = _page(site, accept_encoding="gzip")
    assert page.headers["content-encoding"] == "gzip" and page.body.startswith(b"<!doctype html>")


def test_a_current_copy_is_answered_304_without_a_body() -> None:
    page = _page("app")
    assert _page("app", if_none_match=page.headers["etag"]).status == 304
    assert _page("app", if_none_match=f"W/{page.headers['etag']}").raw == b""
    assert _page("app", if_none_match='"stale"').status == 200
    name, file = next(iter(static_files.bundle("app").assets.items()))
    assert _asset("app", name, if_none_match=file.etag).status == 304


# ------------------------------------------------------------------------------------------------ nothing else
UNKNOWN_NAMES = [
    "app.js",  # the file, without its hash
    "app.000000000000.js",  # a stale hash
    "index.html",
    "vendor.json",
    "..",
    ".",
    "../handlers/app.py",
    "..%2F..%2Fhandlers%2Fapp.py",
    "%2e%2e%2fstatic_files.py",
    "....//....//etc/passwd",
    "/etc/passwd",
    "..\\..\\dora_insights\\config.py",
    "app/app.js",
    "vendor/uplot/uPlot.min.css",
    "static/app/index.html",
    "app.js\x00.css",
    "APP.JS",
    "~",
    "x" * 200,
]


@pytest.mark.parametrize("name", UNKNOWN_NAMES)
def test_a_name_outside_the_manifest_is_a_404_whatever_it_holds(name: str) -> None:
    for site in ASSETS:
        assert static_files.bundle(site).asset(name) is None
        answer = _asset(site, name)
        assert answer.status == 404, (site, name)
        # The manifest's 404, or the route's own for a name its pattern refuses (a slash, a NUL): native errors.
        assert json.loads(answer.body)["message"] in (f"no asset '{name}' in /{site}", "no such resource")


@pytest.mark.parametrize(
    "path",
    ["/app/../handlers/app.py", "/app/..%2Fhandlers%2Fapp.py", "/app/vendor/uplot/uPlot.min.css", "/docs/../config.py"],
)
def test_a_path_with_more_segments_never_reaches_a_file(path: str) -> None:
    # API Gateway's {asset} is one segment; were a decoded path to arrive with slashes, the route refuses it.
    function = "DashboardAssetFunction" if path.startswith("/app") else "ApiDocsAssetFunction"
    route = "/app/{asset}" if path.startswith("/app") else "/docs/{asset}"
    answer = _call(function, route, asset=path.split("/", 2)[2], path=path)
    assert answer.status == 404
    assert b"import" not in answer.body


def test_files_are_read_only_from_the_manifest(monkeypatch: pytest.MonkeyPatch) -> None:
    static_files.bundle("app")  # read once per container
    opened: list[Any] = []
    monkeypatch.setattr(Path, "read_bytes", opened.append)
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: opened.append(self))
    for name in UNKNOWN_NAMES:
        assert _asset("app", name).status == 404
    assert _page("app").status == 200
    assert opened == []


def test_every_manifest_file_exists_inside_the_static_folder() -> None:
    root = static_files.STATIC_ROOT.resolve()
    for site in static_files.SITES.values():
        for path in (site.page, *site.assets):
            file = (root / path).resolve()
            assert file.is_file(), path
            assert root in file.parents, path


def test_the_routes_are_the_templates_public_operations() -> None:
    routed = {key for key, function in http_routes().items() if function.startswith(("Dashboard", "ApiDocs"))}
    assert routed == set(PUBLIC_OPERATIONS)
