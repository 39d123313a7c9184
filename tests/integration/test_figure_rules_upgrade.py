"""An upgrade that changes the figure rules computes every stream again (``domain.figures.FIGURES_FORMAT``).

Stored figures hold the output of the rules that computed them, nothing of the rules themselves. Before
versions were recorded, figures computed by an earlier version stayed until their stream got a new
deployment: after an upgrade that changed a rule, ``/summary`` and reports counted some streams by the old
rules and some by the new, with ``pending: 0``. Now each space records the version its figures follow, the
recompute's first visit after an upgrade marks every stream of it, and the next tick computes each once
(docs/recompute.md, "Upgrades").
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from dora_insights.dal import keys
from dora_insights.domain.figures import FIGURES_FORMAT
from tests.conftest import ADMIN_KEY, Api, Aws, Clock
from tests.support import table
from tests.support.native import create_deployment
from tests.support.recompute import scheduled_run

SP = {"spaceId": "Spaces-1"}
WRONG_LEAD = 12_345.0  # what "the earlier rules" computed, in these tests


def _history(api: Api, clock: Clock, lambda_context: Any) -> None:
    """Two streams (shop and web in production), computed."""
    create_deployment(api, project="shop", finished_at="2024-03-01T09:00:00Z", version="1.0.0")
    create_deployment(
        api, project="shop", finished_at="2024-03-01T10:00:00Z", version="1.1.0", started_at="2024-03-01T09:30:00Z"
    )
    create_deployment(api, project="web", finished_at="2024-03-01T10:30:00Z", version="2.0.0")
    clock.advance(timedelta(seconds=10))
    assert scheduled_run(lambda_context)["streams_processed"] == 2


def _as_earlier_rules_left_them(aws: Aws) -> None:
    """Every stored figure's lead time rewritten, as figures another version of the rules computed."""
    for stored in table.scan(aws):
        if stored.get(keys.TYPE) == keys.T_FIGURES:
            records = json.loads(stored["records"])
            for record in records:
                if record.get("lead_time_seconds") is not None:
                    record["lead_time_seconds"] = WRONG_LEAD
            stored["records"] = json.dumps(records, separators=(",", ":"))
            table.put(aws, stored)


def _lead(api: Api) -> dict[str, Any]:
    answer = api.call(
        "GET",
        "/api/{spaceId}/summary",
        path_params=SP,
        query={"from": "2024-02-01T00:00:00Z", "to": "2024-03-02T00:00:00Z"},
        key=ADMIN_KEY,
    )
    assert answer.status == 200, answer.body
    return {"median": answer.body["lead_time"]["median_seconds"], "pending": answer.body["pending"]}


def _upgrade_tick_then_once(clock: Clock, lambda_context: Any, streams: int) -> None:
    """The first tick after the upgrade marks every stream and computes none (its marks would be fresh,
    so a stream computed then would be computed again by the next tick: docs/recompute.md, "Upgrades");
    the next tick computes each once and clears its mark; then nothing is marked again."""
    clock.advance(timedelta(minutes=5))
    upgrade = scheduled_run(lambda_context)
    assert (upgrade["streams_processed"], upgrade["items_failed"]) == (0, 0), upgrade
    clock.advance(timedelta(minutes=5))
    once = scheduled_run(lambda_context)
    assert (once["streams_processed"], once["items_failed"]) == (streams, 0), once
    clock.advance(timedelta(minutes=5))
    assert scheduled_run(lambda_context)["streams_processed"] == 0


def _space_item(aws: Aws) -> dict[str, Any]:
    return table.item(aws, keys.space("Spaces-1"))


def test_a_new_space_records_the_current_rules_and_a_tick_computes_nothing_again(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    _history(api, clock, lambda_context)
    assert int(_space_item(aws)["figures_format"]) == FIGURES_FORMAT
    clock.advance(timedelta(minutes=5))
    assert scheduled_run(lambda_context)["streams_processed"] == 0


def test_figures_of_a_space_from_before_versions_are_marked_on_the_first_visit_and_computed_once(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """A space stored before spaces recorded their figures' version (no ``figures_format``), its figures
    computed by other rules: the first tick after the upgrade marks both streams, the next computes each once,
    and the lead times are this version's."""
    _history(api, clock, lambda_context)
    right = _lead(api)
    _as_earlier_rules_left_them(aws)
    space = _space_item(aws)
    del space["figures_format"]
    table.put(aws, space)
    assert _lead(api) == {"median": WRONG_LEAD, "pending": 0}  # served until the recompute visits the space

    _upgrade_tick_then_once(clock, lambda_context, streams=2)

    assert _lead(api) == right
    assert int(_space_item(aws)["figures_format"]) == FIGURES_FORMAT


def test_a_new_version_of_the_rules_computes_every_stream_again_once(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.logic import recompute, settings

    _history(api, clock, lambda_context)
    right = _lead(api)
    _as_earlier_rules_left_them(aws)
    monkeypatch.setattr(recompute, "FIGURES_FORMAT", FIGURES_FORMAT + 1)
    monkeypatch.setattr(settings, "FIGURES_FORMAT", FIGURES_FORMAT + 1)

    _upgrade_tick_then_once(clock, lambda_context, streams=2)

    assert _lead(api) == right
    assert int(_space_item(aws)["figures_format"]) == FIGURES_FORMAT + 1


def test_marks_the_settings_owe_are_paid_by_the_same_marking(
    api: Api, aws: Aws, clock: Clock, lambda_context: Any
) -> None:
    """A space that owes marks (a window change cut short) and follows other rules: the upgrade's visit
    marks every stream once, which pays the debt too (``marks_owed`` settled), and records the version."""
    _history(api, clock, lambda_context)
    space = _space_item(aws)
    del space["figures_format"]
    space["marks_owed"] = True
    table.put(aws, space)

    _upgrade_tick_then_once(clock, lambda_context, streams=2)

    settled = _space_item(aws)
    assert "marks_owed" not in settled, settled
    assert int(settled["figures_format"]) == FIGURES_FORMAT
