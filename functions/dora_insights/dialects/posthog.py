"""PostHog insights dialect: request and response models, as PostHog's own API names them, and
their mapping to and from the insight records (``domain.insights``): each request model says what
it asks of the use cases (``draft()``, ``changes()``, ``settings()``), and ``insight_out`` and its
siblings render what they answer.

Errors render as ``{"type", "code", "detail", "attr"}`` (dialects/errors.py).
"""

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Self

from pydantic import ConfigDict, Field, model_validator

from dora_insights.dialects.limits import FreeJson, StorableFloat, StorableInt
from dora_insights.domain import insights as records
from dora_insights.domain.base import Model
from dora_insights.domain.insights import DoraMetricsQuery, ThresholdState

Tag = Annotated[str, Field(min_length=1, max_length=100)]
# A dashboard's id: PostHog's are positive integers (and the list filter ``dashboards`` reads digits only).
DashboardId = Annotated[StorableInt, Field(ge=1)]
# A threshold's subscriber: an email address or a user's name (an address is at most 254 characters).
SubscribedUser = Annotated[str, Field(min_length=1, max_length=254)]
MAX_SUBSCRIBED_USERS = 50


def _fields(body: Model, names: Iterable[str]) -> dict[str, Any]:
    """A request body's fields of these names, as sent (the record makes its lists tuples)."""
    return {name: getattr(body, name) for name in names}


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
    dashboards: Annotated[list[DashboardId], Field(max_length=100)] = Field(default_factory=list)
    description: Annotated[str | None, Field(max_length=4000)] = None
    tags: Annotated[list[Tag], Field(max_length=50)] = Field(default_factory=list)
    favorited: bool = False
    create_in_folder: Annotated[str | None, Field(alias="_create_in_folder", max_length=400)] = None

    def draft(self) -> records.InsightDraft:
        """The insight this body asks for."""
        return records.InsightDraft(**_fields(self, records.InsightDraft.model_fields))


class InsightPatch(Model):
    """``PATCH .../insights/{id}`` body: only the fields sent change."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Annotated[str | None, Field(max_length=400)] = None
    derived_name: Annotated[str | None, Field(max_length=400)] = None
    query: DoraMetricsQuery | None = None
    order: StorableInt | None = None
    deleted: bool | None = None
    dashboards: Annotated[list[DashboardId] | None, Field(max_length=100)] = None
    description: Annotated[str | None, Field(max_length=4000)] = None
    tags: Annotated[list[Tag] | None, Field(max_length=50)] = None
    favorited: bool | None = None
    create_in_folder: Annotated[str | None, Field(alias="_create_in_folder", max_length=400)] = None

    def changes(self) -> records.InsightChanges:
        """The fields this body sends (and only those: ``model_fields_set``)."""
        sent = self.model_fields_set & records.InsightChanges.model_fields.keys()
        return records.InsightChanges(**_fields(self, sent))


class InsightResult(Model):
    """``result``: one value per interval for each series."""

    interval: list[str]
    series: list[dict[str, Any]]


class SharedInsightOut(Model):
    """An insight as a public share link shows it (``GET /shared/{accessToken}``): the chart, its query
    and result, without the people who made it (``created_by`` / ``last_modified_by`` are API keys'
    users, often email addresses) or the space's own filing of it (dashboards, tags, favourites, the
    caller's last view): a link may reach anyone."""

    id: int
    short_id: str
    name: str | None = None
    derived_name: str | None = None
    description: str | None = None
    query: dict[str, Any]
    created_at: str
    last_modified_at: str
    result: InsightResult | None = None
    last_refresh: str | None = None


class InsightOut(SharedInsightOut):
    """An insight as PostHog shows it: the chart, with its people and the space's filing of it."""

    order: int | None = None
    deleted: bool
    dashboards: list[int]
    tags: list[str]
    favorited: bool
    created_by: Person
    last_modified_by: Person
    last_viewed_at: str | None = None


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

    def changes(self) -> records.SharingChanges:
        """What this body changes (a null changes nothing)."""
        return records.SharingChanges(
            enabled=self.enabled, password_required=self.password_required, settings=self.settings
        )


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

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError("lower must not be greater than upper")
        return self


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
    subscribed_users: Annotated[list[SubscribedUser], Field(max_length=MAX_SUBSCRIBED_USERS)] = Field(
        default_factory=list
    )

    def settings(self) -> records.ThresholdSettings:
        """The threshold this body asks for."""
        return records.ThresholdSettings(
            name=self.name,
            enabled=self.enabled,
            condition=_condition(self.condition),
            calculation_interval=self.calculation_interval,
            subscribed_users=tuple(self.subscribed_users),
        )


class ThresholdPatch(Model):
    """``PATCH .../thresholds/{tid}`` body."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    enabled: bool | None = None
    condition: Condition | None = None
    calculation_interval: str | None = Field(default=None, pattern="^(hourly|daily|weekly|monthly)$")
    subscribed_users: Annotated[list[SubscribedUser] | None, Field(max_length=MAX_SUBSCRIBED_USERS)] = None

    def changes(self) -> records.ThresholdChanges:
        """What this body changes (a null changes nothing)."""
        return records.ThresholdChanges(
            name=self.name,
            enabled=self.enabled,
            condition=None if self.condition is None else _condition(self.condition),
            calculation_interval=self.calculation_interval,
            subscribed_users=None if self.subscribed_users is None else tuple(self.subscribed_users),
        )


def _condition(condition: Condition) -> records.Condition:
    return records.Condition(
        type=condition.type, bounds=records.Bounds(lower=condition.bounds.lower, upper=condition.bounds.upper)
    )


class ThresholdCheck(Model):
    """One evaluation of a threshold."""

    id: str
    created_at: str
    calculated_value: float | None = None
    state: ThresholdState


class BoundsOut(Model):
    """Bounds as stored (a threshold stored before ``lower > upper`` was refused shows as it is)."""

    lower: float | None = None
    upper: float | None = None


class ConditionOut(Model):
    """A threshold's condition as stored."""

    type: str = "absolute_value"
    bounds: BoundsOut


class ThresholdOut(Model):
    """A threshold with its state and checks (newest first)."""

    id: str
    insight: int
    name: str
    enabled: bool
    condition: ConditionOut
    calculation_interval: str
    subscribed_users: list[str]
    state: ThresholdState | None = None
    last_checked_at: str | None = None
    last_value: float | None = None
    checks: list[ThresholdCheck] = Field(default_factory=list)
    created_at: str
    created_by: Person


# --- rendering -----------------------------------------------------------------------------
def insight_out(
    insight: records.Insight,
    *,
    result: records.InsightResult | None = None,
    last_refresh: str | None = None,
    last_viewed_at: str | None = None,
) -> dict[str, Any]:
    """An insight as PostHog shows it (its ``query`` as stored, JSON)."""
    shown = insight.model_dump(exclude={"version"})
    extra = {"result": None if result is None else result.model_dump(), "last_refresh": last_refresh}
    return InsightOut.model_validate({**shown, **extra, "last_viewed_at": last_viewed_at}).model_dump(mode="json")


def shared_out(shown: Mapping[str, Any]) -> dict[str, Any]:
    """An insight as ``insight_out`` shows it, cut to what a public share link shows."""
    return SharedInsightOut.model_validate(shown).model_dump(mode="json")


def trending_out(trending: records.TrendingInsight, *, last_viewed_at: str | None = None) -> dict[str, Any]:
    """A trending insight: the insight (without its result, with the caller's ``last_viewed_at``) and its
    views over the window."""
    shown = trending.insight.model_dump(exclude={"version"})
    views = {"view_count": trending.view_count, "recent_viewers": [p.model_dump() for p in trending.recent_viewers]}
    return TrendingInsightOut.model_validate({**shown, **views, "last_viewed_at": last_viewed_at}).model_dump(
        mode="json"
    )


def activity_out(entry: records.ActivityEntry) -> dict[str, Any]:
    """An activity entry as PostHog shows it: every key always there, a null as null (an empty side of a
    change's ``before``/``after``; the ``user``'s ``email`` when the key's user is no address, as in
    ``created_by``)."""
    return entry.model_dump(mode="json")


def sharing_out(sharing: records.Sharing) -> dict[str, Any]:
    """The sharing configuration as the API shows it (never password hashes; ``created_by`` as stored,
    without a null ``email``)."""
    return {
        "enabled": sharing.enabled,
        "access_token": sharing.access_token,
        "password_required": sharing.password_required,
        "settings": sharing.settings,
        "created_at": sharing.created_at,
        "share_passwords": [
            {
                "id": p.id,
                "note": p.note,
                "created_at": p.created_at,
                "created_by": p.created_by.model_dump(exclude_none=True),
            }
            for p in sharing.share_passwords
        ],
    }


def password_out(created: records.NewSharePassword) -> SharePasswordOut:
    """A share password just added: the one answer that shows it."""
    return SharePasswordOut(id=created.id, password=created.password, note=created.note, created_at=created.created_at)


def threshold_out(threshold: records.Threshold) -> dict[str, Any]:
    """A threshold with its state and checks (newest first)."""
    return ThresholdOut.model_validate(threshold.model_dump()).model_dump(mode="json")
