"""Insights reports use cases: create, read, list, update (optimistic concurrency), delete."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dora_insights.domain.reports import REPORT_PREFIX, EnvironmentGroup, ReportDefinition, TenantMode, report_number
from dora_insights.domain.times import format_instant
from dora_insights.domain.zones import resolve_time_zone
from dora_insights.errors import RequestInvalidError, ResourceNotFoundError
from dora_insights.logic.ports import Ports


@dataclass(frozen=True)
class ReportFields:
    """What a client may set on a report."""

    name: str
    description: str | None
    project_group_ids: tuple[str, ...]
    project_ids: tuple[str, ...]
    tenant_ids: tuple[str, ...]
    tenant_tags: tuple[str, ...]
    tenant_mode: TenantMode
    environment_groups: tuple[EnvironmentGroup, ...]
    time_zone: str
    icon_id: str | None
    icon_color: str | None


def _validate(store: Ports, space_id: str, fields: ReportFields) -> None:
    try:
        resolve_time_zone(fields.time_zone)
    except ValueError as error:
        raise RequestInvalidError(str(error), field="TimeZone") from None
    references = {
        "ProjectGroupIds": (fields.project_group_ids, "ProjectGroups-"),
        "ProjectIds": (fields.project_ids, "Projects-"),
        "TenantIds": (fields.tenant_ids, "Tenants-"),
        "EnvironmentGroups": (tuple(e for g in fields.environment_groups for e in g.environment_ids), "Environments-"),
    }
    wanted = {i for ids, _ in references.values() for i in ids}
    existing = store.existing_catalogue_ids(space_id, wanted) if wanted else set()
    problems: list[tuple[str | None, str]] = []
    for field, (ids, prefix) in references.items():
        for entity_id in ids:
            if not entity_id.startswith(prefix):
                problems.append((field, f"'{entity_id}' is not an id of the form {prefix}N"))
            elif entity_id not in existing:
                problems.append((field, f"'{entity_id}' does not exist in space {space_id}"))
    if problems:
        first_field, message = problems[0]
        raise RequestInvalidError(f"{first_field}: {message}", field=first_field, details=problems)


def _number(report_id: str) -> int:
    try:
        return report_number(report_id)
    except ValueError:
        raise ResourceNotFoundError(f"report '{report_id}' not found") from None


def create_report(store: Ports, space_id: str, fields: ReportFields, now: datetime) -> ReportDefinition:
    """A new report ``InsightsReports-N``; its figures appear after the next recompute."""
    _validate(store, space_id, fields)
    number = store.next_numbers(space_id, {"InsightsReports": 1})["InsightsReports"][0]
    stamp = format_instant(now)
    report = ReportDefinition(
        id=f"{REPORT_PREFIX}{number}",
        space_id=space_id,
        version=1,
        created_at=stamp,
        modified_at=stamp,
        **fields.__dict__,
    )
    store.reports().create(report)
    return report


def get_report(store: Ports, space_id: str, report_id: str) -> ReportDefinition:
    """One report, or 404."""
    report = store.reports().get(space_id, _number(report_id))
    if report is None:
        raise ResourceNotFoundError(f"report '{report_id}' not found")
    return report


def list_reports(store: Ports, space_id: str, *, consistent: bool = False) -> list[ReportDefinition]:
    """Every report of the space (``consistent``: as the last writes left them, for the list route)."""
    return store.reports().list_all(space_id, consistent=consistent)


def update_report(
    store: Ports, space_id: str, report_id: str, fields: ReportFields, now: datetime, *, expected_version: int | None
) -> ReportDefinition:
    """Replace a report's fields. With ``expected_version`` (the ``Version`` a client read, or an
    ``If-Match`` header) a concurrent change answers 409 instead of being overwritten."""
    current = get_report(store, space_id, report_id)
    _validate(store, space_id, fields)
    base_version = expected_version if expected_version is not None else current.version
    updated = ReportDefinition(
        id=current.id,
        space_id=space_id,
        version=base_version + 1,
        created_at=current.created_at,
        modified_at=format_instant(now),
        **fields.__dict__,
    )
    store.reports().replace(updated, expected_version=base_version)
    return updated


def delete_report(store: Ports, space_id: str, report_id: str) -> None:
    """Delete a report, or 404."""
    store.reports().delete(space_id, _number(report_id), report_id)
