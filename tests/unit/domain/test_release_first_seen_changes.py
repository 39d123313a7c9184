"""domain.corrections.changes_release_first_seen: when correcting, replacing or removing a deployment may
move a release's first-seen time (so every stream of its project is marked for its Release lead time)."""

from __future__ import annotations

import pytest

from dora_insights.domain.corrections import changes_release_first_seen
from dora_insights.domain.figures import release_first_seen
from dora_insights.domain.model import Deployment
from dora_insights.domain.times import format_instant
from tests.unit.domain.builders import deployment, hours

OLD = deployment(1, 0, version="1.0")


@pytest.mark.parametrize(
    "new",
    [
        deployment(1, 0, version="0.9"),
        deployment(1, 0),
        deployment(1, 1, version="1.0"),
        deployment(1, 0, version="1.0", started_at=format_instant(hours(-1))),
        deployment(1, 0, version="1.0", project_id="Projects-2"),
        deployment(1, 0, version="1.0", release_created_at=format_instant(hours(-2))),
    ],
)
def test_what_release_first_seen_reads_changes(new: Deployment) -> None:
    assert changes_release_first_seen(OLD, new)
    moved = release_first_seen([OLD]) != release_first_seen([new])
    assert moved  # the rule agrees with what it guards


def test_other_changes_and_unversioned_deployments_move_nothing() -> None:
    assert not changes_release_first_seen(OLD, OLD.model_copy(update={"tags": ["a"], "state": "Failed"}))
    assert not changes_release_first_seen(deployment(2, 0), deployment(2, 5, project_id="Projects-2"))
    assert not changes_release_first_seen(deployment(2, 0), None)


def test_removing_a_versioned_deployment_may_move_it() -> None:
    assert changes_release_first_seen(OLD, None)
