"""PostHog insights dialect: request and response models, as PostHog's own API names them.

Errors render as ``{"type", "code", "detail", "attr"}`` (dialects/errors.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field

from dora_insights.dialects.limits import FreeJson, StorableFloat, StorableInt
from dora_insights.domain.base import Model
from dora_insights.domain.insights import DoraMetricsQuery, ThresholdState

Tag = Annotated[str, Field(min_length=1, max_length=100)]


class Person(Model):
    """``created_by`` / ``last_modified_by`` / viewers: the API key's user (or its name)."""

    first_name: str
    email: str | None = None


class InsightCreate(Model):
    """``POST .../insights`` body."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Annotated[str | None, Field(max_length=400)] = None
    derived_name: Annotated[str | None, Field(max_length=400)] = None
    query: DoraMetricsQuery
    order: StorableInt | None = None
    deleted: bool = False
    dashboards: Annotated[list[StorableInt], Field(max_length=100)] = Field(default_factory=list)
    description: Annotated[str | None, Field(max_length=4000)] = None
    tags: Annotated[list[Tag], Field(max_length=50)] = Field(default_factory=list)
    favorited: bool = False
    create_in_folder: Annotated[str | None, Field(alias="_create_in_folder", max_length=400)] = None


class InsightPatch(Model):
    """``PATCH .../insights/{id}`` body: only the fields sent change."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Annotated[str | None, Field(max_length=400)] = None
    derived_name: Annotated[str | None, Field(max_length=400)] = None
    query: DoraMetricsQuery | None = None
    order: StorableInt | None = None
    deleted: bool | None = None
    dashboards: Annotated[list[StorableInt] | None, Field(max_length=100)] = None
    description: Annotated[str | None, Field(max_length=4000)] = None
    tags: Annotated[list[Tag] | None, Field(max_length=50)] = None
    favorited: bool | None = None
    create_in_folder: Annotated[str | None, Field(alias="_create_in_folder", max_length=400)] = None


class InsightResult(Model):
    """``result``: one value per interval for each series."""

    interval: list[str]
    series: list[dict[str, Any]]


class InsightOut(Model):
    """An insight as PostHog shows it."""

    id: int
    short_id: str
    name: str | None = None
    derived_name: str | None = None
    description: str | None = None
    query: dict[str, Any]
    order: int | None = None
    deleted: bool
    dashboards: list[int]
    tags: list[str]
    favorited: bool
    created_at: str
    created_by: Person
    last_modified_at: str
    last_modified_by: Person
    last_viewed_at: str | None = None
    result: InsightResult | None = None
    last_refresh: str | None = None


class TrendingInsightOut(InsightOut):
    """A trending insight: the insight plus its views over the window."""

    view_count: int
    recent_viewers: list[Person]


class PageOut(Model):
    """PostHog list shape."""

    count: int
    next: str | None
    previous: str | None
    results: list[dict[str, Any]]


class ViewedIn(Model):
    """``POST .../insights/viewed`` body."""

    model_config = ConfigDict(extra="forbid")

    insight_ids: Annotated[list[StorableInt], Field(min_length=1, max_length=100)]


class ActivityPage(Model):
    """Activity log page."""

    results: list[dict[str, Any]]
    next: str | None
    previous: str | None
    total_count: int


class SharingPatch(Model):
    """``PATCH .../sharing`` body."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    password_required: bool | None = None
    settings: FreeJson | None = None


class SharePasswordIn(Model):
    """``POST .../sharing/passwords`` body."""

    model_config = ConfigDict(extra="forbid")

    raw_password: Annotated[str | None, Field(min_length=8, max_length=256)] = None
    note: Annotated[str | None, Field(max_length=400)] = None


class SharePasswordOut(Model):
    """The one response that shows a share password."""

    id: str
    password: str
    note: str | None
    created_at: str


class SharePasswordListed(Model):
    """A share password as listed (never the password)."""

    id: str
    note: str | None = None
    created_at: str
    created_by: Person


class SharingOut(Model):
    """Sharing configuration of an insight."""

    enabled: bool
    access_token: str | None
    password_required: bool
    settings: dict[str, Any]
    created_at: str | None
    share_passwords: list[SharePasswordListed]


class ShareLoginIn(Model):
    """``POST /shared/{accessToken}/login`` body."""

    model_config = ConfigDict(extra="forbid")

    password: Annotated[str, Field(min_length=1, max_length=256)]


class ShareLoginOut(Model):
    """A session token for a password-protected link (24 h)."""

    token: str


class Bounds(Model):
    """Threshold bounds on the insight's latest interval value."""

    model_config = ConfigDict(extra="forbid")

    lower: StorableFloat | None = None
    upper: StorableFloat | None = None


class Condition(Model):
    """``{"type": "absolute_value", "bounds": {...}}``."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(default="absolute_value", pattern="^absolute_value$")
    bounds: Bounds


class ThresholdIn(Model):
    """``POST .../thresholds`` body."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    enabled: bool = True
    condition: Condition
    calculation_interval: str = Field(default="daily", pattern="^(hourly|daily|weekly|monthly)$")
    subscribed_users: Annotated[list[str], Field(max_length=50)] = Field(default_factory=list)


class ThresholdPatch(Model):
    """``PATCH .../thresholds/{tid}`` body."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    enabled: bool | None = None
    condition: Condition | None = None
    calculation_interval: str | None = Field(default=None, pattern="^(hourly|daily|weekly|monthly)$")
    subscribed_users: Annotated[list[str] | None, Field(max_length=50)] = None


class ThresholdCheck(Model):
    """One evaluation of a threshold."""

    id: str
    created_at: str
    calculated_value: float | None = None
    state: ThresholdState


class ThresholdOut(Model):
    """A threshold with its state and checks (newest first)."""

    id: str
    insight: int
    name: str
    enabled: bool
    condition: Condition
    calculation_interval: str
    subscribed_users: list[str]
    state: ThresholdState | None = None
    last_checked_at: str | None = None
    last_value: float | None = None
    checks: list[ThresholdCheck] = Field(default_factory=list)
    created_at: str
    created_by: Person
