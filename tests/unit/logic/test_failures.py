"""Failure events (``logic.failures``) over in-memory ports: record, idempotency, dirty marks, list."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dora_insights.domain.failures import FailureDraft
from dora_insights.domain.queries import FailureFilter
from dora_insights.errors import ResourceConflictError, ResourceNotFoundError
from dora_insights.logic import failures
from tests.unit.logic.conftest import NOW
from tests.unit.logic.fakes import SPACE, FakePorts


def draft(
    client_id: str | None = None, *, projects: tuple[str, ...] = ("shop",), hours: float = 0, **kw: object
) -> FailureDraft:
    return FailureDraft(client_id=client_id, projects=projects, started_at=NOW + timedelta(hours=hours), **kw)


def test_a_failure_registers_its_projects_and_environment_and_is_read_back(ports: FakePorts) -> None:
    space = ports.spaces[SPACE]
    outcome = failures.record_failure(ports, space, draft("inc-1", projects=("shop", "api", "shop"), name="down"), NOW)
    assert outcome.created
    failure = outcome.failure
    assert (failure.projects, failure.project_ids) == (["shop", "api"], ["Projects-1", "Projects-2"])
    assert (failure.environment, failure.environment_id) == ("production", "Environments-1")
    assert failures.get_failure(ports, SPACE, "inc-1") == failure
    with pytest.raises(ResourceNotFoundError):
        failures.get_failure(ports, SPACE, "inc-2")


def test_the_same_id_again_answers_the_stored_event_and_other_values_conflict(ports: FakePorts) -> None:
    space = ports.spaces[SPACE]
    first = failures.record_failure(ports, space, draft("inc-1"), NOW)
    again = failures.record_failure(ports, space, draft("inc-1"), NOW + timedelta(minutes=5))
    assert (again.created, again.failure) == (False, first.failure)
    with pytest.raises(ResourceConflictError):
        failures.record_failure(ports, space, draft("inc-1", name="other"), NOW)
    assert len(ports.failure_repository.items) == 1


def test_a_failure_marks_the_known_streams_of_its_projects_in_its_environment_dirty(ports: FakePorts) -> None:
    ports.metrics_repository.registrations_.update(
        {
            (SPACE, "Projects-1/Channels-1/Environments-1/-"): {"generation": "g"},
            (SPACE, "Projects-1/Channels-1/Environments-2/-"): {"generation": "g"},
            (SPACE, "Projects-2/Channels-1/Environments-1/-"): {"generation": "g"},
        }
    )
    failures.record_failure(ports, ports.spaces[SPACE], draft("inc-1"), NOW)  # shop = Projects-1, production
    assert [m["stream"] for m in ports.list_dirty_streams(SPACE)] == ["Projects-1/Channels-1/Environments-1/-"]


def test_the_list_pages_newest_start_first_with_a_cursor(ports: FakePorts) -> None:
    space = ports.spaces[SPACE]
    for n in range(5):
        failures.record_failure(ports, space, draft(f"inc-{n}", hours=n), NOW)
    first, cursor = failures.list_failures(ports, SPACE, FailureFilter(), limit=2)
    second, cursor2 = failures.list_failures(ports, SPACE, FailureFilter(), limit=2, cursor=cursor)
    last, end = failures.list_failures(ports, SPACE, FailureFilter(), limit=2, cursor=cursor2)
    assert [f.id for f in first + second + last] == ["inc-4", "inc-3", "inc-2", "inc-1", "inc-0"]
    assert cursor is not None and cursor2 is not None and end is None


def test_the_list_filters_by_project_and_environment_name_or_id_and_by_start_time(ports: FakePorts) -> None:
    space = ports.spaces[SPACE]
    failures.record_failure(ports, space, draft("a", projects=("shop",)), NOW)
    failures.record_failure(ports, space, draft("b", projects=("api", "shop"), hours=1), NOW)
    failures.record_failure(ports, space, draft("c", projects=("api",), environment="staging", hours=2), NOW)

    def ids(filters: FailureFilter) -> list[str]:
        return [f.id for f in failures.list_failures(ports, SPACE, filters)[0]]

    assert ids(FailureFilter(project="shop")) == ["b", "a"]
    assert ids(FailureFilter(project="Projects-2")) == ["c", "b"]
    assert ids(FailureFilter(environment="staging")) == ["c"]
    assert ids(FailureFilter(project="api", environment="production")) == ["b"]
    # Both ends are inclusive.
    assert ids(FailureFilter(started_from=NOW + timedelta(hours=1), started_to=NOW + timedelta(hours=2))) == ["c", "b"]
    assert ids(FailureFilter(started_to=NOW)) == ["a"]


def test_a_filter_naming_an_unknown_project_matches_nothing(ports: FakePorts) -> None:
    failures.record_failure(ports, ports.spaces[SPACE], draft("a"), NOW)
    assert failures.list_failures(ports, SPACE, FailureFilter(project="nope")) == ([], None)
