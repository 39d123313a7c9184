"""Pure rules of the recompute's health: the stored error, the quarantine hold and the space rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel, ValidationError

from dora_insights.domain.health import StreamHealthRecord
from dora_insights.domain.model import stream_ids, stream_key
from dora_insights.logic.health import MAX_ERROR_CHARS, QUARANTINE_RETRY_AFTER, failure_note, held_back
from dora_insights.logic.recompute import rotation

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
AT = "2024-03-10T12:00:00.000Z"


class _Shape(BaseModel):
    finished_at: datetime


def _record(*, quarantined: bool, dirty_at: str = AT, last_failure_at: str = AT) -> StreamHealthRecord:
    return StreamHealthRecord(
        stream="Projects-1/Channels-1/Environments-1/-",
        failures=3,
        first_failure_at=AT,
        last_failure_at=last_failure_at,
        dirty_at=dirty_at,
        error_type="ValueError",
        error_message="boom",
        quarantined_at=last_failure_at if quarantined else None,
    )


def test_a_validation_error_is_kept_without_the_input_values() -> None:
    with pytest.raises(ValidationError) as caught:
        _Shape.model_validate({"finished_at": "secret-looking-input"})

    note = failure_note(caught.value)

    assert note.error_type == "ValidationError"
    assert "finished_at" in note.message
    assert "secret-looking-input" not in note.message


def test_an_error_message_is_one_bounded_line_without_api_keys() -> None:
    note = failure_note(RuntimeError("line one\nkey dora_AbCdEf0123456789xyz " + "x" * 1000))

    assert note.error_type == "RuntimeError"
    assert "\n" not in note.message
    assert "dora_AbCdEf0123456789xyz" not in note.message
    assert len(note.message) == MAX_ERROR_CHARS
    assert note.message.endswith("…")


def test_only_a_quarantined_stream_with_nothing_new_before_its_retry_time_is_held_back() -> None:
    assert held_back(_record(quarantined=True), AT, NOW)
    assert not held_back(None, AT, NOW)
    assert not held_back(_record(quarantined=False), AT, NOW)
    assert not held_back(_record(quarantined=True), "2024-03-10T12:01:00.000Z", NOW)  # a new write
    assert not held_back(_record(quarantined=True), AT, NOW + QUARANTINE_RETRY_AFTER)
    assert held_back(_record(quarantined=True), AT, NOW + QUARANTINE_RETRY_AFTER - timedelta(seconds=1))


def test_the_rotation_starts_after_the_cursor_and_wraps_round() -> None:
    spaces = ["Spaces-3", "Spaces-1", "Spaces-2"]

    assert rotation(spaces, None) == ["Spaces-1", "Spaces-2", "Spaces-3"]
    assert rotation(spaces, "Spaces-1") == ["Spaces-2", "Spaces-3", "Spaces-1"]
    assert rotation(spaces, "Spaces-3") == ["Spaces-1", "Spaces-2", "Spaces-3"]
    assert rotation(spaces, "Spaces-15") == ["Spaces-2", "Spaces-3", "Spaces-1"]  # a cursor on a gone space
    assert rotation([], "Spaces-1") == []


def test_stream_ids_invert_the_stream_key() -> None:
    assert stream_ids(stream_key("Projects-1", "Channels-2", "Environments-3", None)) == (
        "Projects-1",
        "Channels-2",
        "Environments-3",
        None,
    )
    assert stream_ids(stream_key("Projects-1", "Channels-2", "Environments-3", "Tenants-4"))[3] == "Tenants-4"  # type: ignore[index]
    assert stream_ids("not-a-stream") is None
