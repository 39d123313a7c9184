"""Deployments as the logic reads and writes them (patterns 9–13 of ``dal.keys``).

``DeploymentStore`` is the deployment repository over the table adapter: one deployment by id,
the idempotent create and the DX replacement (their transactions live in ``Store.write_deployment``
and ``dal.replace``), and the native list: newest first by finish time, a time-bounded Query on
pattern 10 (pattern 11 when a project is named) with FilterExpressions for the other filters,
never a Scan. Corrections and removals (issue 16) are ``dal.corrections``' transactions; their
records are read here too (pattern 107).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from dora_insights.dal import corrections, keys
from dora_insights.dal.replace import idempotency_target, replace_deployment
from dora_insights.dal.store import Store, deployment_from_item
from dora_insights.domain.corrections import CorrectionRecord
from dora_insights.domain.model import Deployment
from dora_insights.domain.records import NewDeployment, WriteOutcome
from dora_insights.errors import DoraError


class DeploymentStore:
    """Repository of deployments over the table adapter."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, space_id: str, deployment_id: str, *, consistent: bool = False) -> Deployment | None:
        """One deployment by id, or None (pattern 9; ``consistent``: a strongly consistent read)."""
        if not consistent:
            return self.store.get_deployment(space_id, deployment_id)
        item = self.store.get(keys.deployment(space_id, deployment_id), consistent=True)
        return deployment_from_item(item) if item else None

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

    def write_many(self, entries: Sequence[NewDeployment], *, now: str) -> list[WriteOutcome | DoraError]:
        """Create many deployments, each as ``write`` would, in few round trips: one result per entry
        (``Store.write_deployments``: batched reads of what is stored, multi-item transactions)."""
        return self.store.write_deployments(entries, now=now)

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
        tags: Sequence[str] = (),
    ) -> tuple[list[Deployment], str | None]:
        """The space's deployments finished within [finished_from, finished_to] (either end open),
        newest first, filtered, with an opaque cursor (None on the last page).

        A project narrows the Query to its partition (pattern 11); environment, tenant, state and
        tags (each ``key:value`` present) are FilterExpressions on the time-bounded Query.
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
        for n, tag in enumerate(dict.fromkeys(tags)):
            conditions.append(f"contains(#tags, :tag{n})")
            names["#tags"] = "tags"
            values[f":tag{n}"] = tag
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

    def find_by_version(
        self, space_id: str, *, project_id: str, environment_id: str, version: str
    ) -> Deployment | None:
        """The latest deployment (by finish time) of the project in the environment with this version:
        the project's partition (pattern 11) newest first, filtered, read until one matches."""
        found, _ = self.store.query_filtered(
            space_id=space_id,
            partition=keys.deployments_by_project(space_id, project_id),
            index=keys.GSI2,
            sort_between=keys.time_range(None, None),
            limit=1,
            cursor=None,
            conditions=["#environment_id = :environment_id", "#version = :version"],
            names={"#environment_id": "environment_id", "#version": "version"},
            values={":environment_id": environment_id, ":version": version},
        )
        return deployment_from_item(found[0]) if found else None

    def stream_has_others(self, deployment: Deployment) -> bool:
        """Whether the deployment's stream holds any other deployment (pattern 12, one Query of two)."""
        items, _ = self.store.query_page(
            partition=keys.deployments_by_stream(deployment.space_id, deployment.stream_key), index=keys.GSI3, limit=2
        )
        return any(item.get("id") != deployment.id for item in items)

    def correct(
        self,
        old: Deployment,
        new: Deployment,
        *,
        record: CorrectionRecord,
        now: str,
        also: Sequence[Mapping[str, Any]] = (),
    ) -> bool:
        """Store the corrected deployment with its dirty mark, its record and ``also`` in one transaction,
        if the stored one is still ``old`` (revision and attribution attempts); False when it changed."""
        return corrections.correct_deployment(self.store, old, new, record=record, now=now, also=also)

    def delete(
        self, old: Deployment, *, record: CorrectionRecord, now: str, also: Sequence[Mapping[str, Any]] = ()
    ) -> bool:
        """Delete the deployment with its stream's dirty mark, its record and ``also`` in one transaction,
        if the stored one is still ``old``; False when it changed or is gone."""
        return corrections.delete_deployment(self.store, old, record=record, now=now, also=also)

    def corrections(
        self, space_id: str, deployment_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[CorrectionRecord], str | None]:
        """The deployment's correction records, newest first, with an opaque cursor (pattern 107); they
        outlive the deployment."""
        return corrections.list_records(self.store, space_id, "deployment", deployment_id, limit=limit, cursor=cursor)
