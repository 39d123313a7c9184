"""Octopus Insights reports dialect: request and response models (PascalCase, as Octopus).

Errors render as ``{"ErrorMessage", "Errors": [...]}`` (dialects/errors.py).
"""

import re
from collections.abc import Mapping
from typing import Annotated, Any, Self

from pydantic import ConfigDict, Field, field_validator

from dora_insights.dialects.native import Name, TenantTag
from dora_insights.domain.base import Model
from dora_insights.domain.durations import format_duration
from dora_insights.domain.figures import RULE_NAMES
from dora_insights.domain.reports import EnvironmentGroup, ReportDefinition
from dora_insights.domain.reports import TenantMode as TenantModeValue
from dora_insights.domain.zones import UnknownTimeZoneError, windows_name

_HEX_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")


EntityId = Annotated[str, Field(min_length=1, max_length=64)]


class EnvironmentGroupIn(Model):
    """``{"Name", "Environments": [ids]}``."""

    model_config = ConfigDict(extra="forbid")

    Name: Name
    Environments: Annotated[list[EntityId], Field(min_length=1, max_length=500)]


class ReportIn(Model):
    """Create/update body. Output-only fields (``Id``, ``Links``, ``Version``) are accepted so
    a client can send back what it got (GET, edit, PUT)."""

    model_config = ConfigDict(extra="forbid")

    Id: EntityId | None = None
    SpaceId: EntityId | None = None
    Name: Name
    Description: Annotated[str | None, Field(max_length=2000)] = None
    ProjectGroupIds: Annotated[list[EntityId], Field(max_length=1000)] = Field(default_factory=list)
    ProjectIds: Annotated[list[EntityId], Field(max_length=1000)] = Field(default_factory=list)
    TenantIds: Annotated[list[EntityId], Field(max_length=1000)] = Field(default_factory=list)
    TenantTags: Annotated[list[TenantTag], Field(max_length=1000)] = Field(default_factory=list)
    TenantMode: TenantModeValue = TenantModeValue.TENANTED_AND_UNTENANTED
    EnvironmentGroups: Annotated[list[EnvironmentGroupIn], Field(max_length=100)] = Field(default_factory=list)
    TimeZone: Annotated[str, Field(min_length=1, max_length=100)] = "UTC"
    IconId: Annotated[str | None, Field(max_length=100)] = None
    IconColor: str | None = None
    Version: Annotated[int | None, Field(ge=1, lt=2**63)] = None
    Links: dict[str, str] | None = None

    @field_validator("IconColor")
    @classmethod
    def _color(cls, value: str | None) -> str | None:
        if value is not None and not _HEX_COLOR.fullmatch(value):
            raise ValueError("must be a hex color such as #0D80D8")
        return value

    @field_validator("EnvironmentGroups")
    @classmethod
    def _unique_group_names(cls, groups: list[EnvironmentGroupIn]) -> list[EnvironmentGroupIn]:
        seen: set[str] = set()
        for group in groups:
            folded = group.Name.casefold()
            if folded in seen:
                raise ValueError(f"environment group names must be unique per report; '{group.Name}' is repeated")
            seen.add(folded)
        return groups

    def environment_groups(self) -> tuple[EnvironmentGroup, ...]:
        """The domain form of the groups."""
        return tuple(
            EnvironmentGroup(name=g.Name, environment_ids=tuple(dict.fromkeys(g.Environments)))
            for g in self.EnvironmentGroups
        )


class EnvironmentGroupOut(Model):
    """An environment group as Octopus shows it."""

    Name: str
    Environments: list[str]


def shown_time_zone(stored: str) -> str:
    """A report's ``TimeZone`` as Octopus answers it, in Windows format (``Europe/London`` is ``GMT Standard
    Time``); a zone CLDR gives no Windows name, as stored."""
    try:
        return windows_name(stored) or stored
    except UnknownTimeZoneError:  # pragma: no cover - stored zones were checked; a later tzdata may drop one
        return stored


class ReportOut(Model):
    """A report as Octopus shows it, plus ``Version`` (send it back on PUT to avoid lost updates)."""

    Id: str
    SpaceId: str
    Name: str
    Description: str | None
    ProjectGroupIds: list[str]
    ProjectIds: list[str]
    TenantIds: list[str]
    TenantTags: list[str]
    TenantMode: TenantModeValue
    EnvironmentGroups: list[EnvironmentGroupOut]
    TimeZone: str
    IconId: str | None
    IconColor: str | None
    Version: int
    Links: dict[str, str]

    @classmethod
    def from_domain(cls, report: ReportDefinition) -> Self:
        """Render a stored report."""
        base = f"/api/{report.space_id}/insights/reports/{report.id}"
        return cls(
            Id=report.id,
            SpaceId=report.space_id,
            Name=report.name,
            Description=report.description,
            ProjectGroupIds=list(report.project_group_ids),
            ProjectIds=list(report.project_ids),
            TenantIds=list(report.tenant_ids),
            TenantTags=list(report.tenant_tags),
            TenantMode=report.tenant_mode,
            EnvironmentGroups=[
                EnvironmentGroupOut(Name=g.name, Environments=list(g.environment_ids))
                for g in report.environment_groups
            ],
            TimeZone=shown_time_zone(report.time_zone),
            IconId=report.icon_id,
            IconColor=report.icon_color,
            Version=report.version,
            Links={
                "Self": base,
                "Deployments": f"{base}/deployments",
                "Metrics": f"{base}/metrics{{?split,tenantTagSetId,timeRange,granularity}}",
            },
        )


class ReportList(Model):
    """Octopus collection of reports."""

    ItemType: str = "InsightsReport"
    TotalResults: int
    ItemsPerPage: int
    NumberOfPages: int
    LastPageNumber: int
    Items: list[ReportOut]
    Links: dict[str, str]


class DurationStats(Model):
    """``{Count, Mean, Median, Min, Max, NinetyFifth}`` with durations as ``[-]H:MM:SS.f`` strings."""

    Count: int
    Mean: str | None
    Median: str | None
    Min: str | None
    Max: str | None
    NinetyFifth: str | None


class NumberStats(Model):
    """The same statistics as plain numbers (``DeploymentsUntilRecovery``)."""

    Count: int
    Mean: float | None
    Median: float | None
    Min: float | None
    Max: float | None
    NinetyFifth: float | None


class DeploymentFailureRate(Model):
    """METRICS §4 ``DeploymentFailureRate``."""

    Successful: int
    DeploymentFailure: int
    SuccessfulButHadGuidedFailure: int
    Total: int
    Failed: int
    Rate: float


class ChangeFailureRate(Model):
    """Extension: DORA change failure rate (denominator excludes rollbacks)."""

    ChangeFailures: int
    Deployments: int
    Rate: float


class ReworkRate(Model):
    """Extension: DORA 2024 rework rate."""

    ReworkDeployments: int
    Deployments: int
    Rate: float


class MetricsInterval(Model):
    """One interval of one series."""

    StartOfInterval: str
    NumberOfSuccessfulDeployments: int
    LeadTime: DurationStats
    DeploymentFailureRate: DeploymentFailureRate
    TimeSincePreviousDeployment: DurationStats
    MeanTimeToRecovery: DurationStats
    DeploymentsUntilRecovery: NumberStats
    ChangeFailureRate: ChangeFailureRate
    ReworkRate: ReworkRate
    TimeToRestore: DurationStats
    DeploymentDays: int


class MetricsSeries(Model):
    """One series (``All`` without a split)."""

    Name: str
    Intervals: list[MetricsInterval]


class MetricsOut(Model):
    """``GET .../metrics``."""

    Series: list[MetricsSeries]


class ChangeFailureReasonOctopus(Model):
    """Why a deployment is a change failure: METRICS §2 rule (1–5) and what triggered it."""

    Rule: int
    Name: str
    DeploymentId: str | None
    FailureId: str | None


class ReworkReasonOctopus(Model):
    """Why a deployment is rework: ``rollback``, ``fix`` or ``first_success_after_change_failure``."""

    Reason: str
    DeploymentId: str | None


class StreamDeployment(Model):
    """One deployment of a stream with its figures (METRICS §3)."""

    Id: str
    ReleaseVersion: str | None
    TaskState: str
    CompletedTime: str
    HadGuidedFailure: bool
    LeadTime: str | None
    LeadTimeCalculatedFromVersion: str | None
    TimeSincePreviouslySuccessfulDeployment: str | None
    PreviousSuccessfulDeploymentId: str | None
    TimeToRecovery: str | None
    DeploymentsUntilRecovery: int | None
    RecoveredFromFailedDeploymentId: str | None
    RecoveredFromFailedReleaseVersion: str | None
    # Extensions (not in Octopus): the outcome flags and why they are set (METRICS §2, §3).
    LeadTimeNegative: bool | None = None
    IsChangeFailure: bool | None = None
    ChangeFailureReasons: list[ChangeFailureReasonOctopus] | None = None
    IsRework: bool | None = None
    ReworkReasons: list[ReworkReasonOctopus] | None = None


class Stream(Model):
    """A stream of a report."""

    ProjectId: str
    ProjectName: str | None
    ChannelId: str
    ChannelName: str | None
    EnvironmentId: str
    EnvironmentName: str | None
    TenantId: str | None
    TenantName: str | None
    Deployments: list[StreamDeployment]


class StreamsOut(Model):
    """``GET .../deployments``."""

    ReportName: str
    Streams: list[Stream]


def _duration_or_none(seconds: float | None) -> str | None:
    return None if seconds is None else format_duration(seconds)


def stream_deployment(record: Mapping[str, Any]) -> StreamDeployment:
    """One deployment's stored figures in Octopus shape."""
    return StreamDeployment(
        Id=record["deployment_id"],
        ReleaseVersion=record.get("release_version"),
        TaskState=record["state"],
        CompletedTime=record["completed_at"],
        HadGuidedFailure=bool(record.get("had_guided_failure", False)),
        LeadTime=_duration_or_none(record.get("lead_time_seconds")),
        LeadTimeCalculatedFromVersion=record.get("lead_time_from_version"),
        TimeSincePreviouslySuccessfulDeployment=_duration_or_none(record.get("time_since_previous_success_seconds")),
        PreviousSuccessfulDeploymentId=record.get("previous_success_id"),
        TimeToRecovery=_duration_or_none(record.get("time_to_recovery_seconds")),
        DeploymentsUntilRecovery=record.get("deployments_until_recovery"),
        RecoveredFromFailedDeploymentId=record.get("recovered_from_failed_id"),
        RecoveredFromFailedReleaseVersion=record.get("recovered_from_failed_version"),
        LeadTimeNegative=bool(record.get("lead_time_negative"))
        if record.get("lead_time_seconds") is not None
        else None,
        IsChangeFailure=record.get("change_failure", False if record.get("completed") else None),
        ChangeFailureReasons=[
            ChangeFailureReasonOctopus(Rule=rule, Name=RULE_NAMES[rule], DeploymentId=deployment, FailureId=failure)
            for rule, deployment, failure in record.get("change_failure_reasons", ())
        ]
        or None,
        IsRework=record.get("rework", False if record.get("completed") else None),
        ReworkReasons=[
            ReworkReasonOctopus(Reason=reason, DeploymentId=deployment)
            for reason, deployment in record.get("rework_reasons", ())
        ]
        or None,
    )
