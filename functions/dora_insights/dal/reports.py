"""Reports repository: one partition per space, optimistic concurrency on ``version``."""

from __future__ import annotations

from typing import Any

from dora_insights.dal import aws, keys
from dora_insights.dal.metrics import drop_report_views
from dora_insights.dal.store import Store
from dora_insights.domain.reports import ReportDefinition
from dora_insights.errors import ResourceConflictError, ResourceNotFoundError

_KEY_ATTRIBUTES = frozenset({keys.PK, keys.SK, keys.TYPE})


class ReportStore:
    """``logic.ports.ReportRepository`` over the table adapter (pattern 40)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _item(self, report: ReportDefinition) -> dict[str, Any]:
        return {
            **keys.report(report.space_id, report.number),
            keys.TYPE: keys.T_REPORT,
            **report.model_dump(mode="json", exclude_none=True),
        }

    def create(self, report: ReportDefinition) -> None:
        """A Put conditional on its absence (its number was allocated atomically)."""
        self.store.transact([self.store.put_op(self._item(report), must_not_exist=True)])

    def get(self, space_id: str, number: int) -> ReportDefinition | None:
        """Read consistently: a PUT right after a GET sees the same version."""
        item = self.store.get(keys.report(space_id, number), consistent=True)
        return _from_item(item) if item else None

    def list_all(self, space_id: str, *, consistent: bool = False) -> list[ReportDefinition]:
        """The reports' partition, every page (report states share it and are skipped); ``consistent``:
        strongly consistent (the list route: a report created or changed a moment ago is listed as it is)."""
        return [
            _from_item(i)
            for i in self.store.query_all(partition=keys.reports_pk(space_id), consistent=consistent)
            if i.get(keys.TYPE) == keys.T_REPORT
        ]

    def replace(self, report: ReportDefinition, *, expected_version: int) -> None:
        """A Put conditional on the stored ``version``."""
        replaced = self.store.call_if(
            "put_item",
            TableName=self.store.table,
            Item=aws.serialize(self._item(report)),
            ConditionExpression="attribute_exists(PK) AND #v = :expected",
            ExpressionAttributeNames={"#v": "version"},
            ExpressionAttributeValues={":expected": {"N": str(expected_version)}},
        )
        if replaced is None:
            raise ResourceConflictError(
                f"report '{report.id}' was changed by someone else (now at a newer version than "
                f"{expected_version}); get it again and re-apply your change",
                field="Version",
            )

    def delete(self, space_id: str, number: int, report_id: str) -> None:
        """A DeleteItem conditional on its existence, then its computed state and views
        (``drop_report_views``; a recompute that wrote them meanwhile drops its own)."""
        deleted = self.store.delete_if(
            keys.report(space_id, number),
            ConditionExpression="attribute_exists(PK)",
        )
        if deleted is None:
            raise ResourceNotFoundError(f"report '{report_id}' not found")
        drop_report_views(self.store, space_id, number)


def _from_item(item: dict[str, Any]) -> ReportDefinition:
    return ReportDefinition.model_validate({k: v for k, v in item.items() if k not in _KEY_ATTRIBUTES})
