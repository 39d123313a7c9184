"""Native API models of ``GET/PATCH /api/{spaceId}/settings``: a space's settings (the only place
their JSON names live)."""

from typing import Annotated, Self

from pydantic import ConfigDict, Field

from dora_insights.dialects.native import Name
from dora_insights.domain.base import Model
from dora_insights.domain.records import SpaceRecord

MIN_FAILURE_WINDOW_HOURS = 0.1  # 6 minutes (and no number DynamoDB cannot store)
MAX_FAILURE_WINDOW_HOURS = 720  # 30 days: a failure naming no cause a month on is not plausibly the deployment's
MAX_PRODUCTION_ENVIRONMENTS = 100


class SettingsPatch(Model):
    """``PATCH /api/{spaceId}/settings`` body: only the fields given change; ``null`` resets one to the
    service default. ``revision`` (or ``If-Match``): the revision read, refused with 412 when stale."""

    model_config = ConfigDict(extra="forbid")

    revision: Annotated[int | None, Field(ge=0, le=2**53, strict=True)] = None
    failure_window_hours: Annotated[
        float | None,
        Field(
            ge=MIN_FAILURE_WINDOW_HOURS,
            le=MAX_FAILURE_WINDOW_HOURS,
            strict=True,
            description="METRICS §2 rule 5: a failure naming no cause charges the latest successful deployment"
            " of its project and environment completed within this many hours before it (default 24).",
        ),
    ] = None
    default_environment: Annotated[
        Name | None,
        Field(description="/summary's environment when none is asked for: a catalogue environment's name or id."),
    ] = None
    default_benchmark: Annotated[
        str | None,
        Field(min_length=1, max_length=8, description="/summary's tier table when none is asked for (default 2023)."),
    ] = None
    production_environments: Annotated[
        list[Name] | None,
        Field(
            max_length=MAX_PRODUCTION_ENVIRONMENTS,
            description="Environments (names or ids) /summary counts when neither an environment nor a default"
            " environment applies; empty or null: every environment.",
        ),
    ] = None


class SettingsOut(Model):
    """A space's settings as they apply (service defaults filled in)."""

    space_id: str
    revision: int
    failure_window_hours: float
    default_environment: str | None
    default_benchmark: str
    production_environments: list[str]
    updated_at: str | None
    updated_by: str | None

    @classmethod
    def of(cls, space: SpaceRecord, *, default_benchmark: str) -> Self:
        settings = space.settings
        return cls(
            space_id=space.id,
            revision=settings.revision,
            failure_window_hours=settings.failure_window_hours,
            default_environment=settings.summary_environment.name if settings.summary_environment else None,
            default_benchmark=settings.default_benchmark or default_benchmark,
            production_environments=[e.name for e in settings.production_environments],
            updated_at=settings.updated_at,
            updated_by=settings.updated_by,
        )
