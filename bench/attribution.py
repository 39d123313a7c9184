"""Attribution time and DynamoDB round trips for a deployment that ships 1, 100 and 5,000 commits
(goal: round trips grow with pages of commits, not with commits). In-process moto."""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

NOW = datetime(2024, 3, 10, tzinfo=UTC)


def run() -> None:
    """Print one row per size."""
    from bench.ingest import _environment

    _environment()
    from moto import mock_aws

    print("attribution of a deployment shipping N commits (in-process moto)")
    print(f"  {'commits':>8} {'time':>9} {'calls':>6}  by operation")
    for n in (1, 100, 5_000):
        with mock_aws():
            _one(n)


def _one(n: int) -> None:
    import boto3
    from tests.conftest import _table_properties

    from bench.ingest import fresh_caches
    from dora_insights.dal import aws as dal_aws
    from dora_insights.dal.repositories import Repositories
    from dora_insights.domain.model import DeploymentDraft
    from dora_insights.domain.times import format_instant
    from dora_insights.logic import admin, attribution, catalogue, code, deployments

    fresh_caches()
    table = os.environ["TABLE_NAME"]
    boto3.client("dynamodb").create_table(TableName=table, **_table_properties())
    store = Repositories(table)
    space = admin.ensure_space(store, "Spaces-1", "Default", NOW)
    shas = [f"{k + 1:040x}" for k in range(n + 1)]
    start = NOW - timedelta(days=2)
    commits = [
        code.CommitIn(sha=sha, timestamp=format_instant(start + timedelta(seconds=k))) for k, sha in enumerate(shas)
    ]
    code.record_push(store, space.id, code.BranchPush("acme/shop", "main", commits, "main"), NOW)

    def draft(sha: str, finished: datetime) -> DeploymentDraft:
        return DeploymentDraft(
            project="shop", environment="production", finished_at=finished, repository="acme/shop", commit_sha=sha
        )

    deployments.ingest(store, space, draft(shas[0], NOW - timedelta(days=1)), NOW)
    # The second deployment is written without its ingest-time attribution, which is then timed alone.
    later = draft(shas[-1], NOW)
    entities = catalogue.resolve(store, space.id, deployments.wanted_entities(space, later))
    second = store.write_deployment(deployments.build_deployment(space, later, entities, NOW), now=format_instant(NOW))
    calls: Counter[str] = Counter()
    dal_aws.client("dynamodb").meta.events.register(
        "before-parameter-build.dynamodb", lambda model, **_: calls.update([model.name])
    )
    started = time.perf_counter()
    state = attribution.attribute_deployment(store, space.id, second.deployment.id, NOW, known=second.deployment)
    seconds = time.perf_counter() - started
    shipped = store.get_deployment(space.id, second.deployment.id).attribution.commit_count  # type: ignore[union-attr]
    assert state == "Resolved", state
    assert shipped == n, shipped
    print(f"  {n:8,} {seconds * 1000:7.0f} ms {sum(calls.values()):6}  {dict(calls)}")
