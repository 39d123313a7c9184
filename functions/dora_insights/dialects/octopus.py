"""Octopus Insights reports dialect: request and response models (PascalCase, as Octopus).

Errors render as ``{"ErrorMessage", "Errors": [...]}`` (dialects/errors.py).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import ConfigDict, Field, field_validator

from dora_insights.dialects.native import Name, TenantTag
from dora_insights.domain.base import Model
from dora_insights.domain.reports import EnvironmentGroup, ReportDefinition
from dora_insights.domain.reports import TenantMode as TenantModeValue

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
    Version: Annotated[int | None, Field(ge=1)] = None
    Links: dict[str, str] | None = None

    @field_validator("IconColor")
    @classmethod
    def _color(cls, value: str | None) -> str | None:
        if value is not None and not _HEX_COLOR.match(value):
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
    def from_domain(cls, report: ReportDefinition) -> ReportOut:
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
            TimeZone=report.time_zone,
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
