"""The native list (``GET /api/{spaceId}/deployments``): what a page costs now that each item carries its
stream's recomputed figures, as the read of one does (in-process moto, warm function).

A space of ``STREAMS`` streams of ``PER_STREAM`` deployments each (one every ``STEP``, interleaved, over
about ten months), computed by the recompute; the whole space listed page after page at ``limit`` 50 (the
default) and 500 (the most). Per page: DynamoDB calls by operation, items returned, read capacity units
(bench/ingest.py's meter) and handler time. Of them, figures cost one BatchGetItem of the page's
streams' pointers and, per stream on the page, one Query per run of consecutive months its deployments
finished in (here one: a page of the interleaved streams spans a month or two).
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.freshness import KEY, SPACE, Meter, _invoke, _metered
from bench.ingest import _environment, seeded_table

STREAMS = 20
PER_STREAM = 250
FIRST = datetime(2024, 1, 1, tzinfo=UTC)
STEP = timedelta(hours=1)
NOW = FIRST + STEP * (STREAMS * PER_STREAM) + timedelta(days=1)
LIMITS = (50, 500)


def _seed(store: Any) -> None:
    """``STREAMS`` × ``PER_STREAM`` deployments stored as the route stores them, each stream marked dirty."""
    from dora_insights.dialects.native import DeploymentIn
    from dora_insights.domain.times import format_instant
    from dora_insights.logic import catalogue, deployments, spaces

    space = spaces.get_space(store, SPACE)
    for s in range(STREAMS):
        drafts = [
            DeploymentIn.model_validate(
                {
                    "project": f"svc-{s:02d}",
                    "environment": "production",
                    "finished_at": format_instant(FIRST + STEP * (n * STREAMS + s)),
                    "started_at": format_instant(FIRST + STEP * (n * STREAMS + s) - timedelta(minutes=5)),
                    "version": f"1.0.{n}",
                }
            ).to_draft()
            for n in range(PER_STREAM)
        ]
        entities = catalogue.resolve(store, SPACE, deployments.wanted_entities(space, drafts[0]))
        built = [deployments.build_deployment(space, d, entities, NOW) for d in drafts]
        store.batch_put(store.deployment_item(d) for d in built)
        mark = store.dirty_op(SPACE, built[0].stream_key, format_instant(NOW))
        mark["Update"]["ExpressionAttributeValues"][":one"] = {"N": str(PER_STREAM)}
        store.transact([mark])


def _pages(meter: Meter, limit: int) -> list[dict[str, Any]]:
    """Every page of the space at ``limit``: what each cost."""
    from tests.support.events import http_event

    pages: list[dict[str, Any]] = []
    query = {"limit": str(limit)}
    while True:
        event = http_event("GET", "/api/{spaceId}/deployments", path_params={"spaceId": SPACE}, query=query, key=KEY)
        meter.reset()
        started = time.perf_counter()
        response = _invoke("ListDeploymentsFunction", event)
        seconds = time.perf_counter() - started
        assert response["statusCode"] == 200, response
        body = json.loads(response["body"])
        assert all(item["figures"]["duration_seconds"] == 300 for item in body["items"]), "recomputed figures"
        pages.append(
            {
                "items": len(body["items"]),
                "streams": len({item["project"] for item in body["items"]}),
                "calls": Counter(meter.counts.calls),
                "returned": meter.items,
                "rcu": meter.counts.rcu,
                "seconds": seconds,
            }
        )
        if not body["next_cursor"]:
            return pages
        query = {"limit": str(limit), "cursor": body["next_cursor"]}


def run() -> None:
    """Print, per page size, the median page's cost."""
    _environment()
    from dora_insights.handlers import runtime
    from dora_insights.logic import recompute
    from dora_local.motofix import mock_aws  # moto as the local runtime and the tests run it

    with mock_aws():
        restore = runtime.use_clock(lambda: NOW)
        try:
            store = seeded_table()
            _seed(store)
            recompute.run(store, NOW)
            meter = _metered()
            results = {limit: _pages(meter, limit) for limit in LIMITS}
        finally:
            restore()
    print(
        f"native deployment list with recomputed figures ({STREAMS} streams x {PER_STREAM:,} deployments, "
        "in-process moto, warm function; medians over every page)"
    )
    print(
        f"  {'limit':>5} {'pages':>5} {'streams/page':>12} {'items':>10} {'RCU':>6} {'ms':>7}  DynamoDB calls per page"
    )
    for limit, pages in results.items():
        total: Counter[str] = Counter()
        for page in pages:
            total.update(page["calls"])
        calls = ", ".join(f"{name} {count / len(pages):.1f}" for name, count in sorted(total.items()))
        print(
            f"  {limit:>5} {len(pages):>5} {statistics.median(p['streams'] for p in pages):>12.0f}"
            f" {statistics.median(p['returned'] for p in pages):>10.0f}"
            f" {statistics.median(p['rcu'] for p in pages):>6.1f}"
            f" {statistics.median(p['seconds'] for p in pages) * 1000:>7.1f}  {calls}"
        )
    print("  goal: the figures cost 1 BatchGetItem and 1 Query per stream and run of consecutive months on the")
    print("  page (a page of one stream's recent deployments: 2 calls more than the list itself)")
