"""Which marked streams a read covers (``freshness._covered``) when a new deployment changes what a stream's
registration will say, over in-memory ports: a stream moving into a report or a ``/dora/metrics`` project group
is covered, and the Query of its latest deployment that tells it is made only where a new project group or new
tenant tags could bring the stream in (no such filter, another environment, a mark a read caught up)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from dora_insights.domain.model import Deployment, DeploymentDraft
from dora_insights.domain.records import SpaceSettings
from dora_insights.domain.reports import EnvironmentGroup, ReportDefinition
from dora_insights.domain.rollups import Metric, MetricsRequest
from dora_insights.domain.times import format_instant
from dora_insights.logic import deployments, dora_metrics, freshness, recompute, summary
from tests.unit.logic.conftest import NOW, WRITTEN
from tests.unit.logic.fakes import SPACE, FakePorts

pytestmark = pytest.mark.usefixtures("no_thresholds")

LATER = NOW + timedelta(minutes=1)  # the moving deployment's write
READ = LATER + freshness.SETTLE  # a read that vouches for it


def _ingest(ports: FakePorts, client_id: str, project: str, *, at: Any = WRITTEN, **fields: Any) -> Deployment:
    draft = DeploymentDraft(client_id=client_id, project=project, finished_at=NOW - timedelta(days=1), **fields)
    return deployments.ingest(ports, ports.spaces[SPACE], draft, at).deployment


def _report(ports: FakePorts, **filters: Any) -> ReportDefinition:
    stamp = format_instant(NOW)
    report = ReportDefinition(
        id="InsightsReports-1", space_id=SPACE, name="r", created_at=stamp, modified_at=stamp, **filters
    )
    ports.report_repository.create(report)
    return report


@pytest.fixture
def queries(ports: FakePorts, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The streams whose latest deployment a read queried (``latest_stream_deployment``), in order."""
    data = ports.metrics_repository
    original = data.latest_stream_deployment
    asked: list[str] = []

    def counted(space_id: str, stream: str) -> Deployment | None:
        asked.append(stream)
        return original(space_id, stream)

    monkeypatch.setattr(data, "latest_stream_deployment", counted)
    return asked


@pytest.fixture
def web(ports: FakePorts) -> dict[str, Deployment]:
    """shop in team web, api in team ops (staging too), computed by a run; the group ids by team."""
    shop = _ingest(ports, "s1", "shop", team="web")
    api = _ingest(ports, "a1", "api", team="ops")
    _ingest(ports, "a2", "api", team="ops", environment="staging")
    recompute.run(ports, NOW)
    assert ports.list_dirty_streams(SPACE) == []
    return {"shop": shop, "api": api}


def _move_api_to_web(ports: FakePorts, environment: str = "production") -> str:
    return _ingest(ports, "a3", "api", at=LATER, team="web", environment=environment).stream_key


def test_a_stream_moving_into_a_reports_project_group_is_caught_up_by_the_read(
    ports: FakePorts, web: dict[str, Deployment], queries: list[str]
) -> None:
    report = _report(ports, project_group_ids=(str(web["shop"].project_group_id),))
    assert freshness.read_report(ports, SPACE, report, READ).state["streams"] == 1
    moved = _move_api_to_web(ports)

    read = freshness.read_report(ports, SPACE, report, READ)

    assert (read.processed, read.freshness.pending, read.state["streams"]) == ((moved,), 0, 2)
    assert queries == [moved]  # its registration says ops: its latest deployment tells it moves in


def test_above_the_bounds_a_stream_moving_in_is_pending(
    ports: FakePorts, web: dict[str, Deployment], monkeypatch: pytest.MonkeyPatch
) -> None:
    report = _report(ports, project_group_ids=(str(web["shop"].project_group_id),))
    freshness.read_report(ports, SPACE, report, READ)
    _move_api_to_web(ports)
    monkeypatch.setattr(freshness, "REPORT_READ_BOUND", 0)

    read = freshness.read_report(ports, SPACE, report, READ)

    assert (read.processed, read.freshness.pending, read.state["streams"]) == ((), 1, 1)


def test_a_stream_taking_a_tenant_tag_a_report_lists_moves_in(ports: FakePorts, queries: list[str]) -> None:
    _ingest(ports, "e1", "shop", tenant="acme", tenant_tags=("Location/Europe",))
    _ingest(ports, "z1", "shop", tenant="zeta", tenant_tags=("Location/Asia",))
    recompute.run(ports, NOW)
    report = _report(ports, tenant_tags=("Location/Europe",))
    assert freshness.read_report(ports, SPACE, report, READ).state["streams"] == 1
    moved = _ingest(ports, "z2", "shop", at=LATER, tenant="zeta", tenant_tags=("Location/Europe",)).stream_key

    read = freshness.read_report(ports, SPACE, report, READ)

    assert (read.freshness.pending, read.state["streams"], queries) == (0, 2, [moved])


def test_no_query_where_no_deployment_can_bring_the_stream_in(
    ports: FakePorts, web: dict[str, Deployment], queries: list[str]
) -> None:
    group = str(web["shop"].project_group_id)
    production = web["shop"].environment_id
    _move_api_to_web(ports, environment="staging")  # api/staging: marked, registered in ops

    # No project group or tenant tag listed: the stream's key decides.
    by_project = _report(ports, project_ids=(web["shop"].project_id,))
    assert freshness.read_report(ports, SPACE, by_project, READ).freshness.pending == 0
    # The project group listed, but not the stream's environment: no project group brings it in.
    in_production = by_project.model_copy(
        update={
            "version": 2,  # an edit: its views are computed again
            "project_ids": (),
            "project_group_ids": (group,),
            "environment_groups": (EnvironmentGroup(name="prod", environment_ids=(production,)),),
        }
    )
    assert freshness.read_report(ports, SPACE, in_production, READ).freshness.pending == 0
    # /summary reads projects and environments only.
    found = summary.summary(
        ports, SPACE, start=None, end=None, project="shop", environment=None, benchmark=None, now=READ
    )
    assert found["pending"] == 0
    assert queries == []


def test_a_caught_up_mark_is_judged_by_the_registration_the_read_wrote(
    ports: FakePorts, web: dict[str, Deployment], queries: list[str]
) -> None:
    report = _report(ports, project_group_ids=(str(web["shop"].project_group_id),))
    freshness.read_report(ports, SPACE, report, READ)
    moved = _move_api_to_web(ports)
    stays = _ingest(ports, "a4", "api", at=LATER, team="ops", environment="staging").stream_key
    # A read of every stream brings both up to date first: api/production's registration now says web,
    # api/staging's still ops.
    assert freshness.read_streams(ports, SPACE, freshness.Covers(lambda *_: True, None), READ).freshness.pending == 0
    assert [m["caught_up"] is not None for m in ports.list_dirty_streams(SPACE)] == [True, True]

    read = freshness.read_report(ports, SPACE, report, READ)

    assert (read.freshness.pending, read.state["streams"], queries) == (0, 2, [])
    assert ports.metrics_repository.streams(SPACE)[moved]["project_group_id"] == web["shop"].project_group_id
    assert ports.metrics_repository.streams(SPACE)[stays]["project_group_id"] == web["api"].project_group_id


def test_dora_metrics_of_a_project_group_cover_a_stream_moving_into_it(
    ports: FakePorts, web: dict[str, Deployment], queries: list[str]
) -> None:
    moved = _move_api_to_web(ports)
    settings = SpaceSettings()
    by_group = dora_metrics.selector(MetricsRequest(Metric.DEPLOYMENT_FREQUENCY, project_group="web"), settings)
    everything = dora_metrics.selector(MetricsRequest(Metric.DEPLOYMENT_FREQUENCY, project="shop"), settings)

    assert everything.moves_in is None  # no project group asked for: the stream's key decides
    registered, fresh, _, _ = freshness.refresh_streams(ports, SPACE, everything, READ)
    assert (fresh.pending, queries) == (0, [])
    assert registered[moved]["project_group_id"] != web["shop"].project_group_id  # still ops: not caught up

    registered, fresh, _, _ = freshness.refresh_streams(ports, SPACE, by_group, READ)
    assert (fresh.pending, queries) == (0, [moved])
    assert registered[moved]["project_group_id"] == web["shop"].project_group_id
