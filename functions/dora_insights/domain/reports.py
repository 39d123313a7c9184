"""Insights reports (Octopus): what a report is and which deployments it includes. Pure."""

from enum import StrEnum

from pydantic import ConfigDict, Field

from dora_insights.domain.base import Model

REPORT_PREFIX = "InsightsReports-"


class TenantMode(StrEnum):
    """Which deployments contribute: tenanted, untenanted or both (Octopus ``TenantMode``)."""

    TENANTED_AND_UNTENANTED = "TenantedAndUntenanted"
    TENANTED = "Tenanted"
    UNTENANTED = "Untenanted"


class EnvironmentGroup(Model):
    """A named group of environments; a split series and a filter."""

    model_config = ConfigDict(frozen=True)

    name: str
    environment_ids: tuple[str, ...]


class ReportDefinition(Model):
    """A stored report. ``version`` increases with every update (optimistic concurrency)."""

    model_config = ConfigDict(frozen=True)

    id: str
    space_id: str
    name: str
    description: str | None = None
    project_group_ids: tuple[str, ...] = ()
    project_ids: tuple[str, ...] = ()
    tenant_ids: tuple[str, ...] = ()
    tenant_tags: tuple[str, ...] = ()
    tenant_mode: TenantMode = TenantMode.TENANTED_AND_UNTENANTED
    environment_groups: tuple[EnvironmentGroup, ...] = ()
    time_zone: str = "UTC"
    icon_id: str | None = None
    icon_color: str | None = None
    version: int = Field(default=1, ge=1)
    created_at: str
    modified_at: str

    @property
    def number(self) -> int:
        """The N of ``InsightsReports-N``."""
        return report_number(self.id)

    def includes(
        self,
        *,
        project_id: str,
        project_group_id: str | None,
        environment_id: str,
        tenant_id: str | None,
        tenant_tags: tuple[str, ...] | list[str] = (),
    ) -> bool:
        """Whether a deployment with these catalogue ids contributes to the report.

        Projects: listed projects and projects of listed groups (none listed = every project).
        Environments: those of the environment groups (no groups = every environment).
        Tenants: by ``TenantMode``; a tenanted deployment also needs its tenant listed or one of
        its tenant tags listed (``tenant_tag_key``: the set's name in any case), unless neither tenants
        nor tags are listed.
        """
        if (self.project_ids or self.project_group_ids) and not (
            project_id in self.project_ids
            or (project_group_id is not None and project_group_id in self.project_group_ids)
        ):
            return False
        if self.environment_groups and not any(environment_id in g.environment_ids for g in self.environment_groups):
            return False
        if tenant_id is None:
            return self.tenant_mode is not TenantMode.TENANTED
        if self.tenant_mode is TenantMode.UNTENANTED:
            return False
        if not self.tenant_ids and not self.tenant_tags:
            return True
        if tenant_id in self.tenant_ids:
            return True
        listed = {tenant_tag_key(tag) for tag in self.tenant_tags}
        return any(tenant_tag_key(tag) in listed for tag in tenant_tags)

    def environment_groups_of(self, environment_id: str) -> list[str]:
        """Names of the report's environment groups containing an environment (EnvironmentGroup split)."""
        return [g.name for g in self.environment_groups if environment_id in g.environment_ids]


def tenant_tag_key(tenant_tag: str) -> tuple[str, str]:
    """What identifies a tenant tag ``Set/Tag`` as the catalogue keys it: its set by the casefolded name
    (one set whatever the case it was sent in, METRICS §1) and the tag as written (a set's tags are kept
    as sent: ``CanonicalTagName`` is the set's first spelling, then the tag)."""
    tag_set, _, tag = tenant_tag.partition("/")
    return tag_set.casefold(), tag


def report_number(report_id: str) -> int:
    """The number of an ``InsightsReports-N`` id, written as the service writes it (ASCII digits, no
    leading zero: ``InsightsReports-01`` is no report's id, so one report has one id); ValueError for
    anything else."""
    prefix, _, digits = report_id.rpartition("-")
    if prefix + "-" != REPORT_PREFIX or not (digits.isascii() and digits.isdigit()) or len(digits) > 9:
        raise ValueError(f"'{report_id}' is not a report id")
    if digits != str(int(digits)):
        raise ValueError(f"'{report_id}' is not a report id (its number has a leading zero)")
    return int(digits)
