"""What the recompute and the readers do about DynamoDB's eventually consistent reads, which moto never
shows: an index that has not caught up with a write yet (``freshness.SETTLE``) and a stream pointer read
before its figures or after a concurrent recompute deleted them (``metrics.snapshot``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, cast

import pytest

from dora_insights.domain.model import DeploymentDraft
from dora_insights.domain.times import format_instant
from dora_insights.errors import ServiceUnavailableError
from dora_insights.logic import deployments, metrics, recompute
from dora_insights.logic.freshness import SETTLE
from dora_insights.logic.ports import MetricsRepository
from tests.unit.logic.conftest import NOW
from tests.unit.logic.fakes import SPACE, FakePorts

pytestmark = pytest.mark.usefixtures("no_thresholds")


def _ingest(ports: FakePorts, client_id: str) -> str:
    draft = DeploymentDraft(client_id=client_id, project="shop", finished_at=NOW - timedelta(hours=1))
    return deployments.ingest(ports, ports.spaces[SPACE], draft, NOW).deployment.stream_key


def test_a_mark_younger_than_settle_is_recomputed_but_kept_until_a_run_that_can_vouch_for_it(
    ports: FakePorts,
) -> None:
    stream = _ingest(ports, "d1")

    early = recompute.run(ports, NOW + SETTLE / 2)  # the index may not show d1 yet

    assert early.streams_processed == 1
    assert [m["stream"] for m in ports.list_dirty_streams(SPACE)] == [stream]
    later = recompute.run(ports, NOW + SETTLE)
    assert later.streams_processed == 1
    assert ports.list_dirty_streams(SPACE) == []


def test_a_stream_item_does_not_record_a_younger_mark_as_caught_up(ports: FakePorts) -> None:
    stream = _ingest(ports, "d1")
    item = recompute.WorkItem(kind="streams", space_id=SPACE, planned_at=format_instant(NOW), streams=[stream])

    early = recompute.process(ports, item, NOW + SETTLE / 2)

    assert early.streams_processed == 1
    assert [m["caught_up"] for m in ports.list_dirty_streams(SPACE)] == [None]
    recompute.process(ports, item, NOW + SETTLE)
    assert [m["caught_up"] is not None for m in ports.list_dirty_streams(SPACE)] == [True]


class _LaggingReads:
    """Figures where stream ``s`` moved from generation ``old`` (2 items, since deleted) to ``new`` (3
    items): the first ``stale_reads`` eventually consistent reads of the pointers still show ``old``;
    a strongly consistent read never does."""

    def __init__(self, stale_reads: int) -> None:
        self.stale_reads = stale_reads
        self.consistent_reads = 0

    def streams(self, space_id: str, *, consistent: bool = False) -> dict[str, dict[str, Any]]:
        self.consistent_reads += consistent
        if not consistent and self.stale_reads > 0:
            self.stale_reads -= 1
            return {"s": {"generation": "old", "items": 2}}
        return {"s": {"generation": "new", "items": 3}}

    def space_figures_counted(
        self,
        space_id: str,
        streams: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        consistent: bool = False,
        per_stream: bool = False,
    ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
        assert streams is not None
        self.consistent_reads += consistent
        if streams["s"]["generation"] == "new":
            return {"s": [{"n": 1}, {"n": 2}, {"n": 3}]}, {"s": 3}
        return {"s": []}, {"s": 0}  # the old generation's items are gone


class _Churning(_LaggingReads):
    """A recompute that moves the pointer and deletes what it pointed at between every two reads."""

    def __init__(self) -> None:
        super().__init__(stale_reads=0)
        self.moves = 0

    def streams(self, space_id: str, *, consistent: bool = False) -> dict[str, dict[str, Any]]:
        self.moves += 1
        return {"s": {"generation": f"g{self.moves}", "items": 1}}

    def space_figures_counted(
        self,
        space_id: str,
        streams: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        consistent: bool = False,
        per_stream: bool = False,
    ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int]]:
        return {"s": []}, {"s": 0}


def test_a_snapshot_that_read_a_pointer_whose_figures_are_gone_reads_again_consistently() -> None:
    reads = _LaggingReads(stale_reads=2)  # a second read that was not consistent would be stale too

    streams, figures, _ = metrics.snapshot(cast(MetricsRepository, reads), SPACE)

    assert streams == {"s": {"generation": "new", "items": 3}}
    assert figures == {"s": [{"n": 1}, {"n": 2}, {"n": 3}]}
    assert reads.consistent_reads == 2  # one consistent read of the pointers and one of the figures


def test_a_snapshot_never_answers_half_a_result_it_asks_for_a_retry() -> None:
    reads = _Churning()

    with pytest.raises(ServiceUnavailableError):
        metrics.snapshot(cast(MetricsRepository, reads), SPACE)
    assert reads.moves == 1 + metrics.SNAPSHOT_ATTEMPTS


def test_a_snapshot_that_read_whole_generations_costs_one_eventually_consistent_read_of_each() -> None:
    reads = _LaggingReads(stale_reads=0)

    metrics.snapshot(cast(MetricsRepository, reads), SPACE)

    assert reads.consistent_reads == 0
