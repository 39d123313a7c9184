"""The error bodies of every dialect as models, for the OpenAPI document (dialects/errors.py renders them)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class NativeError(BaseModel):
    """Native and Orlo: ``{"message", "errors": ["field: problem", ...]}``."""

    model_config = ConfigDict(title="NativeError")

    message: str
    errors: list[str]


class OrloError(BaseModel):
    """Orlo: at least ``{"message"}``; its empty-list answers are 404s that carry the list
    (``{"message": "No packages found", "packages": []}``), as Orlo's own API does."""

    model_config = ConfigDict(title="OrloError", extra="allow")

    message: str
    errors: list[str] | None = None


class DatadogErrorSource(BaseModel):
    pointer: str


class DatadogErrorItem(BaseModel):
    status: str
    title: str
    detail: str
    source: DatadogErrorSource | None = None


class DatadogError(BaseModel):
    """Datadog: JSON:API ``{"errors": [{"status", "title", "detail", "source": {"pointer"}}]}``."""

    model_config = ConfigDict(title="DatadogError")

    errors: list[DatadogErrorItem]


class DxError(BaseModel):
    """DX: ``{"ok": false, "error": "<code>", "message"}``."""

    model_config = ConfigDict(title="DxError")

    ok: Literal[False]
    error: str
    message: str


class OctopusError(BaseModel):
    """Octopus: ``{"ErrorMessage", "Errors": [...]}``."""

    model_config = ConfigDict(title="OctopusError")

    error_message: str = Field(alias="ErrorMessage")
    errors: list[str] = Field(alias="Errors")


class PostHogError(BaseModel):
    """PostHog: ``{"type", "code", "detail", "attr"}``."""

    model_config = ConfigDict(title="PostHogError")

    type: str
    code: str
    detail: str
    attr: str | None


class GitLabError(BaseModel):
    """GitLab's REST API: ``{"message": "..."}``."""

    model_config = ConfigDict(title="GitLabError")

    message: str
