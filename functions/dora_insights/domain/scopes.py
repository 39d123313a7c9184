"""API key scopes (API.md "Authentication and tenancy")."""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    """Every scope a key may hold."""

    DEPLOYMENTS_WRITE = "deployments:write"
    DEPLOYMENTS_READ = "deployments:read"
    CHANGES_WRITE = "changes:write"
    REPORTS_READ = "reports:read"
    REPORTS_WRITE = "reports:write"
    INSIGHT_READ = "insight:read"
    INSIGHT_WRITE = "insight:write"
    SHARING_READ = "sharing_configuration:read"
    SHARING_WRITE = "sharing_configuration:write"
    ALERT_READ = "alert:read"
    ALERT_WRITE = "alert:write"
    ACTIVITY_LOG_READ = "activity_log:read"
    ADMIN = "admin"


ALL_SCOPES = frozenset(s.value for s in Scope)


def grants(held: frozenset[str] | set[str] | tuple[str, ...], needed: Scope) -> bool:
    """Whether held scopes allow ``needed``: ``admin`` holds every scope in its own space."""
    return needed.value in held or Scope.ADMIN.value in held
