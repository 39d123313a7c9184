"""What a read's refresh costs (METRICS §8): a read that brings the streams it covers up to date first
reads the stream registrations once, not once per stream it recomputes, and recomputes at most
``freshness.READ_STREAMS`` streams whatever they hold, so its round trips are bounded when many new
streams wait (200 services onboarded between two ticks held a ``GET /summary`` for 1,600 calls, past
its function's Timeout against DynamoDB). The rest stay counted in ``pending`` for the next read or
tick. Through the real route against moto, counting DynamoDB calls."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from dora_insights.logic import freshness
from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.read_cost import NOW, SPACE, Meter, seed

SUMMARY = "/api/{spaceId}/summary"


@pytest.fixture
def clock(clock: Clock) -> Clock:
    clock.now = NOW
    return clock


def _new_streams(store: Any, clock: Clock, count: int) -> None:
    """``count`` services onboarded since the last tick: one deployment each, never computed."""
    seed(store, {f"new-{s:03d}": [clock.now - timedelta(hours=1)] for s in range(count)}, now=clock.now)
    clock.advance(timedelta(seconds=5))  # past freshness.SETTLE


def _summary(api: Api) -> Any:
    found = api.call("GET", SUMMARY, path_params={"spaceId": SPACE}, key=ADMIN_KEY)
    assert found.status == 200, found.body
    return found.body


def test_a_refresh_reads_the_stream_registrations_once_not_once_per_stream(
    api: Api, store: Any, clock: Clock, meter: Meter
) -> None:
    """15 new streams, all recomputed by the read: the registrations (pattern 44) are read by the
    refresh once and by the snapshot once more (before: once more per stream recomputed, so items read
    grew with the square of the streams)."""
    _new_streams(store, clock, 15)
    meter.reset()
    assert _summary(api)["pending"] == 0
    assert meter.queried["STREAMS"] <= 2, meter


def test_a_refresh_recomputes_at_most_read_streams_streams(api: Api, store: Any, clock: Clock, meter: Meter) -> None:
    """200 new streams of one deployment each fit the 1,000-deployment bound: the read recomputes the
    first ``READ_STREAMS`` only, with the round trips of that many (~7 each, and a few of its own), and
    counts the others pending; the next read takes the next ones. Left: whether a stream never computed
    is one the answer covers takes one Query of its latest deployment (``freshness._covered``), so such
    streams still cost a read one small Query each until the tick computes them (before: 1,609 calls)."""
    _new_streams(store, clock, 200)
    meter.reset()
    first = _summary(api)
    assert first["pending"] == 200 - freshness.READ_STREAMS
    assert first["deployments"] == freshness.READ_STREAMS
    assert meter.total <= 8 * freshness.READ_STREAMS + 200 + 10, (meter, meter.queried)
    second = _summary(api)
    assert second["pending"] == 200 - 2 * freshness.READ_STREAMS
    assert second["deployments"] == 2 * freshness.READ_STREAMS
