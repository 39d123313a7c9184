"""What one request costs in DynamoDB, for the read-cost tests: calls by operation and items read by
partition (``Meter``, the ``meter`` fixture), and a pilot's data seeded as the create route writes it
(``seed``: the deployment items and each stream's dirty mark; the writes are not what these tests count)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

SPACE = "Spaces-1"
NOW = datetime(2024, 12, 31, 12, 0, tzinfo=UTC)


class Meter:
    """DynamoDB calls by operation, and items DynamoDB read (a Query's ``ScannedCount``) by partition."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.queried: Counter[str] = Counter()  # Query calls by partition kind
        self.read: Counter[str] = Counter()  # items read by partition kind

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        self.calls.clear()
        self.queried.clear()
        self.read.clear()

    def __repr__(self) -> str:
        return f"{self.total} calls {dict(self.calls)}, items read by partition {dict(self.read)}"


def _kind(partition: str) -> str:
    """``S#Spaces-1#FIGURES`` -> ``FIGURES``; ``S#Spaces-1#STREAM#<key>`` -> ``STREAM``."""
    return partition.split("#")[2] if partition.startswith("S#") else partition.split("#", maxsplit=1)[0]


@pytest.fixture
def meter(monkeypatch: pytest.MonkeyPatch) -> Meter:
    from dora_insights.dal.store import Store

    found = Meter()
    original = Store.call

    def call(self: Store, operation: str, **kwargs: Any) -> Any:
        found.calls[operation] += 1
        response = original(self, operation, **kwargs)
        if operation == "query":
            kind = _kind(kwargs["ExpressionAttributeValues"][":pk"]["S"])
            found.queried[kind] += 1
            found.read[kind] += int(response.get("ScannedCount", 0))
        return response

    monkeypatch.setattr(Store, "call", call)
    return found


def seed(store: Any, streams: dict[str, list[datetime]], *, now: datetime = NOW) -> None:
    """Deployments of ``project -> finish times`` (environment production), written as the create route
    writes them: the items, and each stream's dirty mark counting them."""
    from dora_insights.dialects.native import DeploymentIn
    from dora_insights.domain.times import format_instant
    from dora_insights.logic import catalogue, deployments, spaces

    space = spaces.get_space(store, SPACE)
    for project, times in streams.items():
        drafts = [
            DeploymentIn.model_validate(
                {
                    "project": project,
                    "environment": "production",
                    "finished_at": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "started_at": (t - timedelta(minutes=7)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "version": f"1.{n}.0",
                }
            ).to_draft()
            for n, t in enumerate(times)
        ]
        entities = catalogue.resolve(store, SPACE, deployments.wanted_entities(space, drafts[0]))
        built = [deployments.build_deployment(space, d, entities, now) for d in drafts]
        (stream,) = {d.stream_key for d in built}
        store.batch_put(store.deployment_item(d) for d in built)
        mark = store.dirty_op(SPACE, stream, format_instant(now))
        mark["Update"]["ExpressionAttributeValues"][":one"] = {"N": str(len(built))}
        store.transact([mark])


def year_of(count: int, *, offset: float = 0.0) -> list[datetime]:
    """``count`` finish times spread over the year before NOW."""
    first = NOW - timedelta(days=365)
    step = timedelta(days=365) / count
    return [first + step * (n + offset) for n in range(count)]
