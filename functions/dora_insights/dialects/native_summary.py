"""``GET /api/{spaceId}/summary``'s answer as a model (API.md "Native API", METRICS §6 and §8).

``logic.summary`` builds the answer; the route validates it against :class:`SummaryOut` (a mismatch is
the service's 500, never a client's 4xx), so the OpenAPI document describes every field it sends.
"""

from typing import Literal

from pydantic import Field

from dora_insights.domain.base import Model

# A DORA performance tier (``domain.tiers.Tier``); null when the range holds nothing to grade.
TierName = Literal["Elite", "High", "Medium", "Low"]


class EnvironmentScopeOut(Model):
    """Which environments were counted and why: the ``environment`` parameter, the space's
    ``default_environment``, its ``production_environments``, or ``all`` (``environments`` empty)."""

    source: Literal["parameter", "default_environment", "production_environments", "all"]
    environments: list[str]


class DeploymentFrequencyOut(Model):
    successful_deployments: int
    deployment_days: int
    per_day: float
    tier: TierName | None


class LeadTimeOut(Model):
    count: int
    median_seconds: float | None
    p95_seconds: float | None
    tier: TierName | None


class ChangeFailureRateOut(Model):
    change_failures: int
    deployments: int
    rate: float
    tier: TierName | None


class RecoveryTimeOut(Model):
    """``recovery_time`` (from the deployments' figures) and ``time_to_restore`` (from failure events)."""

    count: int
    median_seconds: float | None
    tier: TierName | None


class ReworkRateOut(Model):
    rework_deployments: int
    deployments: int
    rate: float


class SummaryOut(Model):
    """The four keys and rework rate over ``[from, to)`` with their tiers, and how fresh they are."""

    from_: str = Field(alias="from")
    to: str
    benchmark: str
    environment_scope: EnvironmentScopeOut
    as_of: str | None = Field(description="when the figures read were computed; null: nothing computed yet")
    pending: int = Field(description="streams covered whose changes are not counted yet")
    deployments: int
    deployment_frequency: DeploymentFrequencyOut
    lead_time: LeadTimeOut
    change_failure_rate: ChangeFailureRateOut
    recovery_time: RecoveryTimeOut
    time_to_restore: RecoveryTimeOut
    rework_rate: ReworkRateOut
