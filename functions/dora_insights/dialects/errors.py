"""Every dialect's error shape, in one place (API.md "Errors").

Each renderer turns a core ``DoraError`` into (status, JSON body). Field paths arrive as
dotted/indexed strings (``data.attributes.service``, ``deployments[2].project``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from dora_insights.errors import DoraError, RequestInvalidError

Rendered = tuple[int, dict[str, Any]]

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    503: "Service Unavailable",
}


class ErrorDialect(StrEnum):
    """Which shape errors take."""

    NATIVE = "native"
    DATADOG = "datadog"
    DX = "dx"
    OCTOPUS = "octopus"
    POSTHOG = "posthog"
    ORLO = "orlo"
    GITLAB = "gitlab"


def _details(error: DoraError) -> list[tuple[str | None, str]]:
    if isinstance(error, RequestInvalidError):
        return error.details
    return [(error.field, error.message)]


def _line(field: str | None, message: str) -> str:
    return f"{field}: {message}" if field else message


def render_native(error: DoraError) -> Rendered:
    """Native and Orlo: ``{"message", "errors": [...]}``."""
    return error.status, {"message": error.message, "errors": [_line(f, m) for f, m in _details(error)]}


def json_pointer(field: str | None) -> str | None:
    """``data.attributes.git.commit_sha`` / ``custom_tags[3]`` -> ``/data/attributes/git/commit_sha``."""
    if not field:
        return None
    parts = re.findall(r"[^.\[\]]+", field)
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def render_datadog(error: DoraError) -> Rendered:
    """Datadog: JSON:API ``{"errors": [{"status", "title", "detail", "source": {"pointer"}}]}``."""
    errors = []
    for field, message in _details(error):
        entry: dict[str, Any] = {
            "status": str(error.status),
            "title": _TITLES.get(error.status, "Error"),
            "detail": message,
        }
        pointer = json_pointer(field)
        if pointer:
            entry["source"] = {"pointer": pointer}
        errors.append(entry)
    return error.status, {"errors": errors}


def render_dx(error: DoraError) -> Rendered:
    """DX: ``{"ok": false, "error": "<code>", "message"}``."""
    return error.status, {"ok": False, "error": error.code, "message": error.message}


def render_octopus(error: DoraError) -> Rendered:
    """Octopus: ``{"ErrorMessage", "Errors": [...]}``."""
    return error.status, {"ErrorMessage": error.message, "Errors": [_line(f, m) for f, m in _details(error)]}


def render_posthog(error: DoraError) -> Rendered:
    """PostHog: ``{"type", "code", "detail", "attr"}``."""
    kind = {
        400: "validation_error",
        401: "authentication_error",
        403: "authentication_error",
        429: "throttled_error",
    }.get(error.status, "invalid_request")
    return error.status, {"type": kind, "code": error.code, "detail": error.message, "attr": error.field}


def render_gitlab(error: DoraError) -> Rendered:
    """GitLab's REST API (``render_api_error!``): ``{"message": "..."}``."""
    return error.status, {"message": error.message}


RENDERERS: dict[ErrorDialect, Callable[[DoraError], Rendered]] = {
    ErrorDialect.NATIVE: render_native,
    ErrorDialect.ORLO: render_native,
    ErrorDialect.DATADOG: render_datadog,
    ErrorDialect.DX: render_dx,
    ErrorDialect.OCTOPUS: render_octopus,
    ErrorDialect.POSTHOG: render_posthog,
    ErrorDialect.GITLAB: render_gitlab,
}


def field_path(loc: tuple[Any, ...] | list[Any]) -> str | None:
    """A pydantic/Powertools error location as ``a.b[0].c`` (without the leading 'body'/'query')."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or None


def from_validation_errors(errors: list[dict[str, Any]], *, code: str = "invalid_request") -> RequestInvalidError:
    """A pydantic error list as one ``RequestInvalidError`` with every problem listed."""
    details: list[tuple[str | None, str]] = []
    for item in errors:
        kind = item.get("type", "")
        loc = tuple(item.get("loc", ()))
        if kind == "json_invalid":
            details.append((None, "the body is not valid JSON"))
            continue
        message = str(item.get("msg", "invalid value"))
        if kind == "missing":
            message = "is required"
        elif kind == "extra_forbidden":
            message = "is not a known field"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        details.append((field_path(loc), message))
    if not details:
        details = [(None, "the request is not valid")]
    field, message = details[0]
    summary = f"{field}: {message}" if field else message
    return RequestInvalidError(summary, field=field, code=code, details=details)
