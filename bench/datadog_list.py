"""Datadog's DORA list (``POST /api/v2/dora/deployments``) over a 100k-deployment space (in-process moto).

The space holds ``SIZE`` deployments of ``SERVICES`` services (3/4 in ``production``, 1/4 in ``staging``),
one every five minutes over about a year: the store's deployment items (index attributes included) put
straight into moto's table, the catalogue entries, one dirty mark per stream as the write path leaves them. Each
case lists every matching deployment, page after page (``limit`` 1000, following ``meta.page.after``),
through the route function under its role, and counts what each page cost: DynamoDB calls by operation,
items the Queries read, read capacity units (bench/ingest.py's meter) and handler time.

Goal (issue 16): a selective ``query`` (one service of 50) costs at most one Query page per page of
results. The last case shows a query no index narrows: the space's time index inside the time bounds, each
page reading at most ``dal.event_search.MAX_READ`` events.

moto's Query walks every item of the table on each call (DESIGN.md §6), so at this size a page's time is
mostly moto's (about a second a Query here); the call and item counts are what AWS would see.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

SIZE = 100_000
SERVICES = 50
LIMIT = 1000
SPACE = "Spaces-1"
KEY = "bench-key"
START = datetime(2024, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)
ROUTE = "/api/v2/dora/deployments"


@dataclass
class Case:
    """One listing: its query (and time bounds) and what each page cost."""

    name: str
    attributes: dict[str, Any]
    pages: list[dict[str, Any]] = field(default_factory=list)


def _service(n: int) -> str:
    return f"svc-{n % SERVICES:02d}"


def _env(n: int) -> str:
    return "staging" if (n // SERVICES) % 4 == 3 else "production"


def _put_all(store: Any, items: Any) -> None:
    """Items (as the store writes them, serialised as it serialises them) straight into moto's table.

    Through ``batch_write_item`` 100k items take minutes: moto's ``Item`` recomputes the item's size at
    each attribute it sets (quadratic in attributes, ~1 ms an item here), and the request is JSON both
    ways. The items are far below DynamoDB's 400 KB, so they are stored as moto stores them without it.
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    from dora_insights.dal import aws, keys

    table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(store.table)
    for item in items:
        serialized = aws.serialize(item)
        hash_key, range_key = DynamoType(serialized[keys.PK]), DynamoType(serialized[keys.SK])
        stored = Item(hash_key, range_key, {})
        stored.attrs.update({name: DynamoType(value) for name, value in serialized.items()})  # no size check
        table.items[hash_key][range_key] = stored


def _seed(store: Any) -> None:
    """``SIZE`` deployments, their catalogue entries and their streams' dirty marks."""
    from dora_insights.dal import keys
    from dora_insights.domain.model import CatalogueKind, Deployment, Source
    from dora_insights.domain.times import format_instant
    from dora_insights.logic import catalogue

    wanted = [(CatalogueKind.PROJECT, f"svc-{s:02d}") for s in range(SERVICES)]
    wanted += [(CatalogueKind.ENVIRONMENT, e) for e in ("production", "staging")]
    wanted.append((CatalogueKind.CHANNEL, "Default"))
    entities = catalogue.resolve(store, SPACE, wanted)

    def entity(kind: CatalogueKind, name: str) -> Any:
        return entities[(kind, name.casefold())]

    channel = entity(CatalogueKind.CHANNEL, "Default")
    streams: set[str] = set()
    batch: list[dict[str, Any]] = []
    for n in range(SIZE):
        finished = START + STEP * n
        project = entity(CatalogueKind.PROJECT, _service(n))
        environment = entity(CatalogueKind.ENVIRONMENT, _env(n))
        deployment = Deployment(
            id=f"dd{n:08d}",
            space_id=SPACE,
            source=Source.DATADOG,
            project=project.name,
            project_id=project.id,
            environment=environment.name,
            environment_id=environment.id,
            channel=channel.name,
            channel_id=channel.id,
            finished_at=format_instant(finished),
            started_at=format_instant(finished - timedelta(minutes=3)),
            version=f"v1.{n // 100}.{n % 100}" + ("-rc1" if n % 7 == 0 else ""),
            tags=[f"tier:{'gold' if n % 2 else 'silver'}", f"region:eu-{n % 3}"],
            commit_sha=f"{n:040x}",
            repository=f"org/{_service(n)}",
            source_name="datadog",
            metadata={"repository_url": f"https://github.com/org/{_service(n)}"},
            received_at=format_instant(finished),
            body_hash="bench",
        )
        streams.add(deployment.stream_key)
        batch.append(store.deployment_item(deployment))
        if len(batch) == 2_500:
            _put_all(store, batch)
            batch = []
    _put_all(store, batch)
    marks = [
        {
            **keys.dirty_stream(SPACE, stream),
            keys.TYPE: keys.T_DIRTY_STREAM,
            "stream": stream,
            "dirty_at": format_instant(START),
            "pending": 1,
        }
        for stream in streams
    ]
    _put_all(store, marks)
    sample = store.get(keys.deployment(SPACE, f"dd{SIZE - 1:08d}"))
    assert sample == store.deployment_item(deployment), "the seeded items read back as the store wrote them"


def _list_all(case: Case, meter: Any, items_read: Counter[str]) -> None:
    """Every page of one case through the route function; what each cost."""
    from tests.conftest import _Context
    from tests.support import lambdas
    from tests.support.events import http_event

    cursor = None
    while True:
        attributes = dict(case.attributes, limit=LIMIT, sort="-timestamp")
        if cursor:
            attributes["page"] = {"cursor": cursor}
        event = http_event("POST", ROUTE, body={"data": {"attributes": attributes}}, headers={"DD-API-KEY": KEY})
        meter.reset()
        items_read.clear()
        started = time.perf_counter()
        response = lambdas.invoke("DatadogListDeploymentsFunction", event, _Context())
        seconds = time.perf_counter() - started
        assert response["statusCode"] == 200, response
        body = json.loads(response["body"])
        case.pages.append(
            {
                "results": len(body["data"]),
                "calls": dict(meter.calls),
                "read": items_read["Query"],
                "rcu": meter.rcu,
                "seconds": seconds,
            }
        )
        cursor = body.get("meta", {}).get("page", {}).get("after")
        if cursor is None:
            return


def run() -> None:
    """Print, per case, pages, results, Query calls per page, items read, RCU and time per page."""
    from bench.ingest import _environment, metered, seeded_table

    _environment()
    from dora_local.motofix import mock_aws  # moto as the local runtime and the tests run it

    with mock_aws():
        store = seeded_table()
        started = time.perf_counter()
        _seed(store)
        seeding = time.perf_counter() - started
        meter = metered()
        items_read: Counter[str] = Counter()

        def count_items(parsed: dict[str, Any], model: Any, **_: Any) -> None:
            if model.name == "Query":
                items_read["Query"] += len(parsed.get("Items", []))

        from dora_insights.dal import aws as dal_aws

        dal_aws.client("dynamodb").meta.events.register("after-call.dynamodb", count_items)
        week = {"from": (START + timedelta(days=100)).isoformat(), "to": (START + timedelta(days=107)).isoformat()}
        cases = [
            Case("service:svc-07 (project index)", {"query": "service:svc-07"}),
            Case("service:svc-07 env:production (stream index)", {"query": "service:svc-07 env:production"}),
            Case("service:svc-07 -version:*-rc* (project index + filter)", {"query": "service:svc-07 -version:*-rc*"}),
            Case("tier:gold region:eu-1, one week (time index)", {"query": "tier:gold region:eu-1", **week}),
        ]
        print(
            f"Datadog list, {SIZE:,} deployments of {SERVICES} services (in-process moto; seeded in {seeding:.0f} s),"
            f" limit {LIMIT}, every page followed"
        )
        header = f"{'pages':>5} {'results':>7} {'Queries by page':>15} {'read/page':>9} {'RCU/page':>8} {'s/page':>6}"
        print(f"  {'query':56} {header}")
        for case in cases:
            _list_all(case, meter, items_read)
            pages = case.pages
            queries = [p["calls"].get("Query", 0) for p in pages]
            results = sum(p["results"] for p in pages)
            print(
                f"  {case.name:56} {len(pages):5} {results:7,} {','.join(map(str, queries)):>15} "
                f"{statistics.mean(p['read'] for p in pages):9,.0f} {statistics.mean(p['rcu'] for p in pages):8,.0f} "
                f"{statistics.median(p['seconds'] for p in pages):6.2f}"
            )
            others = Counter[str]()
            for page in pages:
                others.update({k: v for k, v in page["calls"].items() if k != "Query"})
            if others:
                print(f"  {'':56} other calls over the case: {dict(others)} (key, catalogue)")
        selective = cases[0].pages
        assert sum(p["results"] for p in selective) == SIZE // SERVICES
        assert all(p["calls"].get("Query", 0) <= 1 for p in selective), "more than one Query page per page"
        print("  goal: a selective query costs at most one Query page per page of results: met")


if __name__ == "__main__":
    run()
