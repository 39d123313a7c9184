"""Deployments as the logic reads and writes them (patterns 9–13 of ``dal.keys``).

``DeploymentStore`` is the deployment repository over the table adapter: one deployment by id,
the idempotent create and the DX replacement (their transactions live in ``Store.write_deployment``
and ``dal.replace``), and the native list: newest first by finish time, a time-bounded Query on
pattern 10 (pattern 11 when a project is named) with FilterExpressions for the other filters,
never a Scan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from dora_insights.dal import keys
from dora_insights.dal.replace import idempotency_target, replace_deployment
from dora_insights.dal.store import Store, deployment_from_item
from dora_insights.domain.model import Deployment
from dora_insights.domain.records import WriteOutcome


class DeploymentStore:
    """Repository of deployments over the table adapter."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, space_id: str, deployment_id: str) -> Deployment | None:
        """One deployment by id, or None (pattern 9)."""
        return self.store.get_deployment(space_id, deployment_id)

    def write(
        self,
        deployment: Deployment,
        *,
        now: str,
        idempotency: tuple[str, str] | None = None,
        outbox_due: str | None = None,
    ) -> WriteOutcome:
        """Create a deployment with its idempotency record, dirty mark and attribution outbox item
        (``Store.write_deployment``): a repeat answers the stored one, other values a 409."""
        return self.store.write_deployment(deployment, now=now, idempotency=idempotency, outbox_due=outbox_due)

    def idempotency_target(self, space_id: str, dialect: str, client_id: str) -> str | None:
        """The deployment id a dialect's idempotency key points at, or None (pattern 13)."""
        return idempotency_target(self.store, space_id, dialect, client_id)

    def replace(
        self,
        old: Deployment,
        new: Deployment,
        *,
        idempotency: tuple[str, str],
        now: str,
        also: Sequence[Mapping[str, Any]] = (),
    ) -> WriteOutcome:
        """Replace ``old`` by ``new`` (same id) in one transaction with ``also`` (``dal.replace``)."""
        return replace_deployment(self.store, old, new, idempotency=idempotency, now=now, also=also)

    def list_page(
        self,
        space_id: str,
        *,
        project_id: str | None,
        environment_id: str | None,
        tenant_id: str | None,
        state: str | None,
        finished_from: datetime | None,
        finished_to: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Deployment], str | None]:
        """The space's deployments finished within [finished_from, finished_to] (either end open),
        newest first, filtered, with an opaque cursor (None on the last page).

        A project narrows the Query to its partition (pattern 11); environment, tenant and state
        are FilterExpressions on the time-bounded Query.
        """
        if project_id:
            index, partition = keys.GSI2, keys.deployments_by_project(space_id, project_id)
        else:
            index, partition = keys.GSI1, keys.deployments_by_time(space_id)
        conditions: list[str] = []
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        for attribute, value in (("environment_id", environment_id), ("tenant_id", tenant_id), ("state", state)):
            if value:
                conditions.append(f"#{attribute} = :{attribute}")
                names[f"#{attribute}"] = attribute
                values[f":{attribute}"] = str(value)
        items, next_cursor = self.store.query_filtered(
            space_id=space_id,
            partition=partition,
            index=index,
            sort_between=keys.time_range(finished_from, finished_to),
            limit=limit,
            cursor=cursor,
            conditions=conditions,
            names=names,
            values=values,
        )
        return [deployment_from_item(item) for item in items], next_cursor
