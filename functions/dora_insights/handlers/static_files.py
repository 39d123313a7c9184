"""The files the dashboard (``/app/``) and the API docs (``/docs``) serve: a fixed manifest, nothing else.

Each site is an HTML page and the assets it loads, all listed here by their path under ``static/``. A
request names an asset by its public name, ``<stem>.<hash>.<ext>`` (the first 12 hex digits of the
file's SHA-256), which is looked up in the site's table of names: a request's path never becomes a
file path, so no name reaches a file outside the manifest (``..``, encoded slashes, absolute paths
and the like are just unknown names: 404). The page is rendered once per container, its
``{{asset:<path>}}`` placeholders replaced by those public names, so an asset's URL changes whenever
its bytes do and it can be cached for a year (``immutable``); the page itself is revalidated
(``no-cache`` with an ``ETag``).

The files are read, hashed and (for clients that accept it) gzip-compressed on first use and kept
for the life of the container.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath

STATIC_ROOT = Path(__file__).resolve().parent.parent / "static"
HASH_DIGITS = 12
GZIP_LEVEL = 9  # once per file and container; the smallest answer for every later request

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}
_PLACEHOLDER = re.compile(r"\{\{asset:([A-Za-z0-9_./-]+)\}\}")

# Content-Security-Policy of each site: scripts, styles and data from this origin only; no inline
# script or style, no plugins, no framing, no form posting anywhere (sign-in is handled by script).
_BASE_POLICY = (
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "font-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
)


@dataclass(frozen=True)
class Site:
    """A page and the assets it may load (paths under ``static/``)."""

    name: str
    page: str
    assets: tuple[str, ...]
    # How the page refers to its assets: relative to its own URL (``/app/`` -> ``""``; ``/docs`` -> ``"docs/"``).
    prefix: str
    images: str  # the CSP img-src sources

    @property
    def policy(self) -> str:
        return "; ".join((*_BASE_POLICY, f"img-src {self.images}"))


SITES = {
    "app": Site(
        name="app",
        page="app/index.html",
        assets=(
            "app/app.js",
            "app/app.css",
            "app/icon.svg",
            "vendor/uplot/uPlot.iife.min.js",
            "vendor/uplot/uPlot.min.css",
        ),
        prefix="",
        images="'self'",
    ),
    "docs": Site(
        name="docs",
        page="docs/index.html",
        assets=(
            "docs/docs.js",
            "docs/docs.css",
            "app/icon.svg",
            "vendor/swagger-ui-dist/swagger-ui-bundle.js",
            "vendor/swagger-ui-dist/swagger-ui.css",
        ),
        prefix="docs/",
        images="'self' data:",  # Swagger UI's stylesheet draws its icons as data: SVGs
    ),
}


@dataclass(frozen=True)
class StaticFile:
    """One servable file: its bytes, type, validator and (lazily) its gzip form."""

    name: str
    content_type: str
    body: bytes
    etag: str
    immutable: bool

    @property
    def gzipped(self) -> bytes:
        return _gzipped(self.body)


@cache
def _gzipped(body: bytes) -> bytes:
    return gzip.compress(body, GZIP_LEVEL, mtime=0)


def content_type_of(path: str) -> str:
    return CONTENT_TYPES[PurePosixPath(path).suffix]


def public_name(path: str, body: bytes) -> str:
    """``app/app.js`` with these bytes -> ``app.<12 hex digits of SHA-256>.js``."""
    pure = PurePosixPath(path)
    digest = hashlib.sha256(body).hexdigest()[:HASH_DIGITS]
    return f"{pure.stem}.{digest}{pure.suffix}"


def _etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@dataclass(frozen=True)
class Bundle:
    """A site as served: its rendered page and its assets by public name."""

    site: Site
    page: StaticFile
    assets: dict[str, StaticFile]

    def asset(self, name: str) -> StaticFile | None:
        """The asset of that public name, or None (any other string, whatever it holds)."""
        return self.assets.get(name)


@cache
def bundle(site_name: str) -> Bundle:
    """A site's page and assets, read from the manifest once per container."""
    site = SITES[site_name]
    assets: dict[str, StaticFile] = {}
    names: dict[str, str] = {}
    for path in site.assets:
        body = (STATIC_ROOT / path).read_bytes()
        name = public_name(path, body)
        names[path] = name
        assets[name] = StaticFile(name, content_type_of(path), body, _etag(body), immutable=True)

    def resolve(found: re.Match[str]) -> str:
        path = found.group(1)
        if path not in names:
            raise KeyError(f"{site.page} refers to {path}, which is not in the {site.name} manifest")
        return site.prefix + names[path]

    page = _PLACEHOLDER.sub(resolve, (STATIC_ROOT / site.page).read_text(encoding="utf-8")).encode("utf-8")
    return Bundle(site, StaticFile(site.page, content_type_of(site.page), page, _etag(page), immutable=False), assets)


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names this entity tag (weak comparison, or ``*``)."""
    for candidate in if_none_match.split(","):
        value = candidate.strip()
        if value == "*" or value.removeprefix("W/") == etag:
            return True
    return False
