"""``logic/settings.py`` over in-memory ports: validation, PATCH semantics, optimistic concurrency and
the dirty marks a failure-window change owes (all of them, even when a crash interrupts them)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from dora_insights.domain.model import CatalogueEntry, CatalogueKind
from dora_insights.domain.records import SpaceSettings
from dora_insights.errors import PreconditionFailedError, RequestInvalidError, ResourceNotFoundError
from dora_insights.logic import settings
from dora_insights.logic.settings import SettingsChange
from dora_insights.logic.summary import environment_scope
from tests.unit.logic.conftest import NOW
from tests.unit.logic.fakes import SPACE, FakePorts


def _register(ports: FakePorts, *names: str) -> None:
    for number, name in enumerate(names, start=1):
        entry = CatalogueEntry(kind=CatalogueKind.ENVIRONMENT, id=f"Environments-{number}", name=name)
        assert ports.register_catalogue(SPACE, [entry], {entry.id: number})


def _streams(ports: FakePorts, count: int) -> list[str]:
    keys = [f"Projects-{n}/Channels-1/Environments-1/-" for n in range(count)]
    for key in keys:
        ports.metrics_repository.registrations_[(SPACE, key)] = {"stream": key}
    return sorted(keys)


def _update(ports: FakePorts, expected: int | None = None, **change: Any) -> SpaceSettings:
    space = settings.update_settings(
        ports, SPACE, SettingsChange(**change), expected_revision=expected, by="ops@example.com", now=NOW
    )
    return space.settings


def test_environments_are_resolved_by_id_or_name_in_any_case(ports: FakePorts) -> None:
    _register(ports, "production", "staging")
    updated = _update(ports, default_environment="Environments-2", production_environments=["PRODUCTION", "staging"])
    assert updated.summary_environment is not None and updated.summary_environment.name == "staging"
    assert [e.id for e in updated.production_environments] == ["Environments-1", "Environments-2"]


def test_every_bad_value_is_named_in_one_error(ports: FakePorts) -> None:
    _register(ports, "production")
    with pytest.raises(RequestInvalidError) as raised:
        _update(ports, default_benchmark="1999", default_environment="qa", production_environments=["production", "x"])
    assert [field for field, _ in raised.value.details] == [
        "default_benchmark",
        "default_environment",
        "production_environments[1]",
    ]
    assert ports.spaces[SPACE].settings == SpaceSettings()


def test_an_unknown_space_is_404(ports: FakePorts) -> None:
    with pytest.raises(ResourceNotFoundError):
        settings.update_settings(
            ports, "Spaces-9", SettingsChange(failure_window_hours=2), expected_revision=None, by="x", now=NOW
        )


def test_a_window_change_marks_every_stream_and_nothing_is_owed(ports: FakePorts) -> None:
    streams = _streams(ports, 250)
    updated = _update(ports, failure_window_hours=6)
    assert (updated.failure_window_hours, updated.revision, updated.marks_owed) == (6, 1, False)
    assert sorted(s for (_, s) in ports.dirty) == streams
    assert ports.spaces[SPACE].settings.marks_owed is False
    assert ports.spaces[SPACE].failure_window_hours == 6  # what the recompute reads


def test_other_changes_mark_nothing(ports: FakePorts) -> None:
    _streams(ports, 3)
    _register(ports, "production")
    _update(ports, default_benchmark="2024", default_environment="production", production_environments=["production"])
    assert ports.dirty == {}


def test_marks_a_crash_left_owed_are_written_by_the_next_change(ports: FakePorts, monkeypatch: Any) -> None:
    streams = _streams(ports, 150)

    def crash(*_: Any) -> None:
        raise RuntimeError("the function timed out")

    with monkeypatch.context() as patched:
        patched.setattr(ports, "mark_streams_dirty", crash)
        with pytest.raises(RuntimeError):
            _update(ports, failure_window_hours=48)
    # the settings and the first 99 marks were written together; the debt is recorded
    assert ports.spaces[SPACE].settings.marks_owed is True
    assert len(ports.dirty) == 99
    ports.dirty.clear()  # say the recompute cleared those meanwhile
    updated = _update(ports, default_benchmark="2024")  # a change that marks nothing by itself
    assert sorted(s for (_, s) in ports.dirty) == streams
    assert updated.marks_owed is False and ports.spaces[SPACE].settings.marks_owed is False


def test_a_stale_revision_is_refused(ports: FakePorts) -> None:
    _update(ports, 0, failure_window_hours=12)
    with pytest.raises(PreconditionFailedError):
        _update(ports, 0, failure_window_hours=6)
    assert ports.spaces[SPACE].failure_window_hours == 12


def test_a_change_racing_another_is_412_with_a_revision_and_reapplied_without(
    ports: FakePorts, monkeypatch: Any
) -> None:
    save = ports.save_space_settings
    raced: list[int] = []

    def racing(space_id: str, updated: SpaceSettings, **kwargs: Any) -> bool:
        if not raced:  # another change lands between this one's read and its write
            raced.append(1)
            space = ports.spaces[space_id]
            other = replace(space.settings, default_benchmark="2021", revision=space.settings.revision + 1)
            ports.spaces[space_id] = replace(space, settings=other)
        return save(space_id, updated, **kwargs)

    monkeypatch.setattr(ports, "save_space_settings", racing)
    with pytest.raises(PreconditionFailedError):
        _update(ports, 0, failure_window_hours=12)
    raced.clear()
    updated = _update(ports, failure_window_hours=12)
    assert (updated.failure_window_hours, updated.default_benchmark, updated.revision) == (12, "2021", 3)


def test_the_summary_scope_follows_the_documented_precedence(ports: FakePorts) -> None:
    _register(ports, "production", "staging")
    _update(ports, production_environments=["production"])
    chosen = ports.spaces[SPACE].settings
    assert environment_scope(None, chosen).source == "production_environments"
    assert environment_scope(None, chosen).accepts("Environments-1", "production")
    assert not environment_scope(None, chosen).accepts("Environments-2", "staging")
    _update(ports, default_environment="staging")
    chosen = ports.spaces[SPACE].settings
    assert environment_scope(None, chosen).source == "default_environment"
    assert environment_scope("Production", chosen).accepts("Environments-1", "production")
    assert environment_scope(None, SpaceSettings()).source == "all"
