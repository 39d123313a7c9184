"""Key formats, cursors and each dialect's error shape."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dora_insights.dal import aws as dal_aws
from dora_insights.dal import keys
from dora_insights.dialects.errors import RENDERERS, ErrorDialect, from_validation_errors, json_pointer
from dora_insights.errors import (
    DoraError,
    ItemTooLargeError,
    KeyTooLargeError,
    RequestInvalidError,
    ResourceNotFoundError,
)

SPACE_KEY_FUNCTIONS = [
    lambda s: keys.space(s)[keys.PK],
    lambda s: keys.space_numbers(s)[keys.PK],
    keys.api_keys_pk,
    lambda s: keys.catalogue_pk(s, "Projects"),
    lambda s: keys.deployment(s, "d1")[keys.PK],
    keys.deployments_by_time,
    lambda s: keys.deployments_by_project(s, "Projects-1"),
    lambda s: keys.deployments_by_stream(s, "Projects-1/Channels-1/Environments-1/-"),
    lambda s: keys.idempotency(s, "datadog", "abc")[keys.PK],
    keys.dirty_streams_pk,
    lambda s: keys.failure(s, "f1")[keys.PK],
    keys.failures_by_time,
    keys.health_pk,
    lambda s: keys.stream_health(s, "Projects-1/Channels-1/Environments-1/-")[keys.PK],
    lambda s: keys.space_health(s)[keys.PK],
]


@given(st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True))
def test_every_space_key_starts_with_the_space(space_id: str) -> None:
    for make in SPACE_KEY_FUNCTIONS:
        assert make(space_id).startswith(f"S#{space_id}#")


def test_space_ids_with_separators_are_refused() -> None:
    with pytest.raises(ValueError, match="#"):
        keys.deployment("Spaces-1#DEP#x", "d")


def test_cursor_round_trips_and_is_bound_to_its_space_and_partition() -> None:
    item = {
        keys.PK: "S#Spaces-1#DEP#d1",
        keys.SK: "DEP",
        keys.GSI1PK: "S#Spaces-1#DEPS",
        keys.GSI1SK: "2024-03-01T00:00:00.000Z#d1",
    }
    cursor = dal_aws.encode_cursor(item)
    decoded = dal_aws.decode_cursor(cursor, space_id="Spaces-1", partition="S#Spaces-1#DEPS", index=keys.GSI1)
    assert {k: v["S"] for k, v in decoded.items()} == item
    with pytest.raises(RequestInvalidError):
        dal_aws.decode_cursor(cursor, space_id="Spaces-2", partition="S#Spaces-2#DEPS", index=keys.GSI1)
    with pytest.raises(RequestInvalidError):
        dal_aws.decode_cursor(cursor, space_id="Spaces-1", partition="S#Spaces-1#DEPS#P#Projects-1", index=keys.GSI2)


@given(st.text(max_size=200))
def test_arbitrary_cursors_never_raise_anything_but_a_400(cursor: str) -> None:
    # Only a cursor this list issued decodes; anything else is a RequestInvalidError (400).
    with pytest.raises(RequestInvalidError):
        dal_aws.decode_cursor(cursor, space_id="Spaces-1", partition="S#Spaces-1#DEPS", index=keys.GSI1)


def test_json_pointer_of_a_field_path() -> None:
    assert json_pointer("data.attributes.custom_tags[3]") == "/data/attributes/custom_tags/3"
    assert json_pointer("a/b") == "/a~1b"
    assert json_pointer(None) is None


def test_validation_errors_become_one_error_listing_every_problem() -> None:
    error = from_validation_errors(
        [
            {"type": "missing", "loc": ("body", "project"), "msg": "Field required"},
            {"type": "value_error", "loc": ("body", "tags", 0), "msg": "Value error, bad tag"},
        ]
    )
    assert error.message == "project: is required"
    assert error.details == [("project", "is required"), ("tags[0]", "bad tag")]


def test_each_dialect_renders_its_own_shape() -> None:
    invalid = RequestInvalidError(
        "service: is required", field="data.attributes.service", code="required_params_missing"
    )
    assert RENDERERS[ErrorDialect.NATIVE](invalid) == (
        400,
        {"message": "service: is required", "errors": ["data.attributes.service: service: is required"]},
    )
    status, datadog = RENDERERS[ErrorDialect.DATADOG](invalid)
    assert status == 400
    assert datadog["errors"][0]["source"] == {"pointer": "/data/attributes/service"}
    assert datadog["errors"][0]["status"] == "400"
    assert RENDERERS[ErrorDialect.DX](invalid)[1] == {
        "ok": False,
        "error": "required_params_missing",
        "message": "service: is required",
    }
    missing = ResourceNotFoundError("report 'x' not found")
    assert RENDERERS[ErrorDialect.OCTOPUS](missing) == (
        404,
        {"ErrorMessage": "report 'x' not found", "Errors": ["report 'x' not found"]},
    )
    assert RENDERERS[ErrorDialect.POSTHOG](invalid)[1]["type"] == "validation_error"


def test_an_error_class_names_its_status_and_code_and_inherits_what_it_leaves_out() -> None:
    class TeapotError(DoraError, status=418, code="teapot"):
        """A test error."""

    class StrongTeaError(TeapotError, code="strong"):
        """A test error that keeps its base's status."""

    assert (TeapotError.status, TeapotError.code) == (418, "teapot")
    assert (StrongTeaError.status, StrongTeaError.code) == (418, "strong")
    assert (DoraError.status, DoraError.code) == (400, "bad_request")
    assert (ItemTooLargeError.status, ItemTooLargeError.code) == (413, "item_too_large")
    assert (KeyTooLargeError.status, KeyTooLargeError.code) == (400, "key_too_large")
    assert StrongTeaError("steeped", code="stewed").code == "stewed"
