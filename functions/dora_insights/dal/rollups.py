"""Daily rollups of GitLab's DORA metrics API in the single table (patterns 120–121 of ``dal.keys``).

- Pattern 120: one item per stream and calendar year, ``S#<sp>#ROLLUP#D#<YYYY>`` / ``<streamKey>``,
  the stream's daily deployment rows of that year (``domain.rollups.encode_deployments``). A read of a
  year is one Query of one partition: every stream's item of that year (~3 KB each compressed, so
  200 streams are one page).
- Pattern 121: one item per (project, environment), ``S#<sp>#ROLLUP#F`` / ``<projectId>/<envId>``,
  its daily failure rows of every year (failure events are few next to deployments), so a rewrite
  replaces it whole and no stale year is left behind.

Both are written by the stream recompute (``logic.dora_metrics.write_rollups``) after the stream's
figures, with plain puts: each item is replaced whole and is idempotent to write again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dora_insights.dal import keys
from dora_insights.dal.store import Store
from dora_insights.domain.rollups import (
    DeploymentColumns,
    FailureColumns,
    decode_deployments,
    decode_failures,
    encode_deployments,
    encode_failures,
)


def _blob(item: Mapping[str, Any]) -> bytes:
    value = item["blob"]
    return bytes(getattr(value, "value", value))


class RollupStore:
    """``logic.ports.RollupRepository`` over the table adapter."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def write(
        self,
        space_id: str,
        stream: str,
        years: Mapping[int, DeploymentColumns],
        failures: tuple[str, str, FailureColumns] | None,
        *,
        generations: tuple[str, str | None],
        computed_at: str,
    ) -> None:
        """Patterns 120 and 121: one BatchWriteItem per 25 items."""
        new, current = generations
        items: list[dict[str, Any]] = [
            {
                **keys.rollup_deployments(space_id, year, stream),
                keys.TYPE: keys.T_ROLLUP_DEPLOYMENTS,
                "stream": stream,
                "year": year,
                "generation": new,
                "previous_generation": current or new,
                "computed_at": computed_at,
                "blob": encode_deployments(columns),
            }
            for year, columns in sorted(years.items())
        ]
        if failures is not None:
            project_id, environment_id, rows = failures
            items.append(
                {
                    **keys.rollup_failures(space_id, project_id, environment_id),
                    keys.TYPE: keys.T_ROLLUP_FAILURES,
                    "project_id": project_id,
                    "environment_id": environment_id,
                    "computed_at": computed_at,
                    "blob": encode_failures(rows),
                }
            )
        self.store.batch_put(items)

    def written_as(self, space_id: str, stream: str, years: Iterable[int], generation: str) -> bool:
        """Pattern 120, a consistent BatchGetItem: whether any of the stream's items of ``years`` was last
        written for ``generation``."""
        keys_ = [keys.rollup_deployments(space_id, year, stream) for year in sorted(set(years))]
        found = self.store.batch_get(keys_, consistent=True) if keys_ else []
        return any(str(item.get("generation")) == generation for item in found)

    def deployments(
        self, space_id: str, years: Iterable[int], streams: Iterable[str], *, consistent: bool = False
    ) -> dict[str, list[tuple[int, DeploymentColumns, frozenset[str]]]]:
        """Pattern 120: a paged Query per year; other streams' items are skipped before they are decompressed."""
        wanted = set(streams)
        found: dict[str, list[tuple[int, DeploymentColumns, frozenset[str]]]] = {}
        for year in sorted(set(years)):
            partition = keys.rollup_deployments_pk(space_id, year)
            for item in self.store.query_all(partition=partition, consistent=consistent):
                stream = str(item["stream"])
                if stream in wanted:
                    generations = frozenset({str(item["generation"]), str(item["previous_generation"])})
                    found.setdefault(stream, []).append((year, decode_deployments(_blob(item)), generations))
        return found

    def failures(
        self, space_id: str, pairs: Iterable[tuple[str, str]], *, consistent: bool = False
    ) -> dict[tuple[str, str], FailureColumns]:
        """Pattern 121: one paged Query."""
        wanted = set(pairs)
        found: dict[tuple[str, str], FailureColumns] = {}
        for item in self.store.query_all(partition=keys.rollup_failures_pk(space_id), consistent=consistent):
            pair = (str(item["project_id"]), str(item["environment_id"]))
            if pair in wanted:
                found[pair] = decode_failures(_blob(item))
        return found
