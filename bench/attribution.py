"""Attribution time and DynamoDB round trips (in-process moto):

- a deployment that ships 1, 100 and 5,000 commits of a push (goal: ≤ 25 calls at 5,000: a branch
  range is one ledger entry, so the writes grow with pull requests, not with commits);
- one deployment event naming a commit, through the native create function, when the commit is
  known (Resolved at ingest) and when it is not pushed yet (Pending): calls and write round trips
  per event (goal: one write round trip, the attribution in the deployment's own transaction),
  beside the same events written first and attributed after (the fallback, and the path before
  issue 17)."""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

NOW = datetime(2024, 3, 10, tzinfo=UTC)
EVENTS = 20
WRITES = frozenset({"TransactWriteItems", "BatchWriteItem", "PutItem", "UpdateItem", "DeleteItem"})


def run() -> None:
    """Print one row per size."""
    from bench.ingest import _environment

    _environment()
    from dora_local.motofix import mock_aws  # moto as the local runtime and the tests run it (docs/moto-query-patch.md)

    print("attribution of a deployment shipping N commits (in-process moto; goal ≤ 25 calls at 5,000)")
    print(f"  {'commits':>8} {'time':>9} {'calls':>6}  by operation")
    for n in (1, 100, 5_000):
        with mock_aws():
            _one(n)
    print()
    print(
        f"a deployment event naming a commit ({EVENTS} each, native create, in-process moto; goal: 1 write round trip)"
    )
    print(f"  {'commit':10} {'path':32} {'calls per event':>15} {'writes':>7}  by operation")
    for known in (True, False):
        for together in (True, False):
            with mock_aws():
                _events(known=known, together=together)


def _one(n: int) -> None:
    import boto3
    from tests.conftest import _table_properties

    from bench.ingest import fresh_caches
    from dora_insights.dal import aws as dal_aws
    from dora_insights.dal.repositories import Repositories
    from dora_insights.domain.model import DeploymentDraft
    from dora_insights.domain.records import NewDeployment
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
    entry = NewDeployment(deployments.build_deployment(space, later, entities, NOW))
    second = store.deployments().write(entry, now=format_instant(NOW))
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


def _events(*, known: bool, together: bool) -> None:
    """``EVENTS`` create requests, each naming the next commit of a push (``known``) or a commit not
    pushed yet; ``together``: the attribution in the deployment's transaction (else written first)."""
    import contextlib
    import copy
    import json
    from unittest import mock

    from tests.conftest import _Context
    from tests.support import lambdas
    from tests.support.events import load_event

    from bench.ingest import metered, seeded_table
    from dora_insights.domain.times import format_instant
    from dora_insights.logic import attribution, code

    store = seeded_table()
    shas = [f"{k + 1:040x}" for k in range(EVENTS + 2)]
    start = NOW - timedelta(days=2)
    commits = [
        code.CommitIn(sha=sha, timestamp=format_instant(start + timedelta(seconds=k))) for k, sha in enumerate(shas)
    ]
    code.record_push(store, "Spaces-1", code.BranchPush("acme/shop", "main", commits, "main"), NOW)
    template = load_event("CreateDeploymentFunction.json")

    def event(n: int, *, names_code: bool = True) -> dict:
        body = json.loads(template["body"]) | {
            "version": f"1.0.{n}",
            "finished_at": format_instant(NOW - timedelta(hours=EVENTS + 2 - n)),
            "commit_sha": shas[n] if known else f"{n + 1:08x}" + "f" * 32,
        }
        if not known:  # a stream of its own each, whose previous deployment named no code
            body["project"] = f"shop-{n}"
        if not names_code:
            del body["commit_sha"], body["repository"]
            body["finished_at"] = format_instant(NOW - timedelta(days=1))
        fresh = copy.deepcopy(template)
        fresh["body"] = json.dumps(body)
        fresh["headers"]["authorization"] = "Bearer bench-key"
        return fresh

    written_first = mock.patch.object(attribution, "create_attributed", return_value=None)
    with contextlib.nullcontext() if together else written_first:
        warm = lambdas.invoke("CreateDeploymentFunction", event(0), _Context())
        assert warm["statusCode"] < 300, warm
        for n in range(1, EVENTS + 1) if not known else ():
            first = lambdas.invoke("CreateDeploymentFunction", event(n, names_code=False), _Context())
            assert first["statusCode"] < 300, first
        meter = metered()
        for n in range(1, EVENTS + 1):
            response = lambdas.invoke("CreateDeploymentFunction", event(n), _Context())
            assert response["statusCode"] < 300, response
    stored = store.get_deployment("Spaces-1", json.loads(response["body"])["id"])
    state = stored.attribution.state if stored is not None and stored.attribution is not None else None
    assert state == ("Resolved" if known else "Pending"), state
    calls = {name: round(count / EVENTS, 2) for name, count in sorted(meter.calls.items())}
    writes = sum(v for k, v in calls.items() if k in WRITES)
    path = "one transaction (now)" if together else "written first, then attributed"
    label = "known" if known else "not pushed"
    print(f"  {label:10} {path:32} {sum(calls.values()):15.2f} {writes:7.2f}  {calls}")
