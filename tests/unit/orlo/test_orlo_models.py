"""Orlo dialect models (dialects/orlo.py): bodies, query parameters, import and rendering."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from dora_insights.dialects import orlo as dialect
from dora_insights.dialects.errors import render_native
from dora_insights.domain import orlo
from dora_insights.domain.orlo import OrloStatus
from dora_insights.errors import RequestInvalidError

T0 = datetime(2015, 12, 17, 17, 2, 4, tzinfo=UTC)
RID = "11111111-1111-4111-8111-111111111111"

# The reference's import example, with its JSON typos (a missing and two trailing commas) fixed.
REFERENCE_IMPORT = """
[
    {
        "platforms": ["GumtreeUK"],
        "stime": "2015-12-17T17:02:04Z",
        "ftime": "2015-12-17T17:02:24Z",
        "team": "Gumtree UK Site Operations",
        "references": ["TICKET-1"],
        "notes": ["Imported from other_system"],
        "packages": [
            {
                "name": "",
                "diff_url": null,
                "stime": "2015-12-17T17:02:22Z",
                "ftime": 1450371742,
                "rollback": false,
                "status": "SUCCESSFUL",
                "version": "1.0.1"
            }
        ],
        "user": "user_one"
    }
]
"""


def query_error(model: type[Any], params: dict[str, str]) -> RequestInvalidError:
    with pytest.raises(RequestInvalidError) as caught:
        dialect.parse_query(model, params)
    return caught.value


# ---------------------------------------------------------------- bodies


def test_create_release_body_becomes_a_started_release() -> None:
    body = dialect.parse_body(
        dialect.ReleaseIn,
        {"note": "blah", "platforms": ["site1"], "references": ["ticket"], "team": "A-Team", "user": "aforbes"},
    )
    release = body.to_release(RID, T0)
    assert release.stime == T0 and release.notes == ("blah",) and release.platforms == ("site1",)


def test_single_platform_and_reference_strings_are_lists() -> None:
    body = dialect.parse_body(dialect.ReleaseIn, {"platforms": "site1", "references": "T-1", "user": "u", "x": 1})
    assert body.platforms == ["site1"] and body.references == ["T-1"]


@pytest.mark.parametrize("body", [{"user": "u"}, {"platforms": ["p"]}, {"platforms": None, "user": "u"}, {}, None])
def test_create_release_without_required_fields_is_a_400(body: object) -> None:
    with pytest.raises(RequestInvalidError):
        dialect.parse_body(dialect.ReleaseIn, body)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user": " ", "platforms": ["p"]}, "user"),
        ({"user": "u", "platforms": ["p", "\t"]}, "platforms[1]"),
        ({"user": "u", "platforms": ["p"], "team": "  "}, "team"),
        ({"user": "u", "platforms": ["p"], "team": "\u0390" * 200}, "team"),  # 1,200 bytes once case-folded
    ],
)
def test_blank_names_and_a_team_over_the_key_limit_are_a_400_naming_them(body: dict[str, Any], field: str) -> None:
    for model, sent in ((dialect.ReleaseIn, body), (dialect.ImportIn, [{**body, "packages": []}])):
        with pytest.raises(RequestInvalidError) as caught:
            dialect.parse_body(model, sent)
        assert field in (caught.value.field or ""), caught.value.details


def test_an_empty_team_is_no_team_and_a_team_within_the_key_limit_is_kept() -> None:
    assert (
        dialect.parse_body(dialect.ReleaseIn, {"user": "u", "platforms": ["p"], "team": ""}).to_release(RID, T0).team
        is None
    )
    team = "\u0390" * 133  # 798 bytes once case-folded
    assert dialect.parse_body(dialect.ReleaseIn, {"user": "u", "platforms": ["p"], "team": team}).team == team


def test_an_imported_diff_url_is_capped_as_a_created_packages() -> None:
    package = {"name": "web", "version": "1", "diff_url": "u" * 2048}
    doc = {"user": "u", "platforms": ["p"], "packages": [package]}
    assert dialect.parse_import([doc])[0].packages[0].diff_url == "u" * 2048
    with pytest.raises(RequestInvalidError) as caught:
        dialect.parse_import([{**doc, "packages": [{**package, "diff_url": "u" * 2049}]}])
    assert "diff_url" in (caught.value.field or "")
    with pytest.raises(RequestInvalidError):
        dialect.parse_body(dialect.PackageIn, {**package, "diff_url": "u" * 2049})


def test_package_body_defaults_and_numeric_versions() -> None:
    body = dialect.parse_body(dialect.PackageIn, {"name": "test-package", "version": 1.5, "rollback": None})
    assert (body.version, body.rollback, body.diff_url) == ("1.5", False, None)
    with pytest.raises(RequestInvalidError) as caught:
        dialect.parse_body(dialect.PackageIn, {"name": "x"})
    assert caught.value.field == "version"


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), (False, False), ("true", True), ("false", False), ("True", True)]
)
def test_stop_success_accepts_booleans_and_strings(value: object, expected: bool) -> None:
    assert dialect.parse_body(dialect.PackageStopIn, {"success": value}).success is expected


def test_stop_without_success_or_with_garbage_is_a_400() -> None:
    for body in ({"other": 1}, {"success": "maybe"}):
        with pytest.raises(RequestInvalidError):
            dialect.parse_body(dialect.PackageStopIn, body)


def test_notes_need_text_and_metadata_needs_a_key() -> None:
    assert dialect.parse_body(dialect.NotesIn, {"text": "hello"}).text == "hello"
    for model, body in ((dialect.NotesIn, {"text": ""}), (dialect.MetadataIn, {}), (dialect.MetadataIn, [1])):
        with pytest.raises(RequestInvalidError):
            dialect.parse_body(model, body)
    assert dialect.parse_body(dialect.MetadataIn, {"k": "v"}).root == {"k": "v"}


def test_errors_render_in_the_orlo_shape() -> None:
    with pytest.raises(RequestInvalidError) as caught:
        dialect.parse_body(dialect.ReleaseIn, {"platforms": ["p"]})
    status, body = render_native(caught.value)
    assert status == 400 and body == {"message": "user: is required", "errors": ["user: is required"]}


def test_malformed_ids_are_a_400_and_ids_are_canonical() -> None:
    assert dialect.parse_uuid(RID.upper()) == RID
    with pytest.raises(RequestInvalidError, match="Release ID given is not a valid UUID"):
        dialect.parse_uuid("nope")
    with pytest.raises(RequestInvalidError, match="Package ID"):
        dialect.parse_uuid("nope", "Package")


# ---------------------------------------------------------------- times


@pytest.mark.parametrize(
    "value",
    [
        "2015-12-17T17:02:04Z",
        "2015-12-17T17:02:04+00:00",
        "2015-12-17T17:02:04",
        "2015-12-17 17:02:04",
        1450371724,
        "1450371724",
    ],
)
def test_times_in_every_form_orlo_accepts(value: object) -> None:
    assert dialect.parse_orlo_time(value) == T0


@pytest.mark.parametrize("value", ["foo", "", True, None, -5])
def test_bad_times_are_refused(value: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        dialect.parse_orlo_time(value)


# ---------------------------------------------------------------- query parameters


def test_release_query_defaults() -> None:
    query = dialect.parse_query(dialect.ReleaseQueryIn, {})
    assert query.page() == orlo.Page(asc=False, limit=100, offset=0)
    assert query.filters() == orlo.ReleaseFilters()


def test_release_query_parses_every_filter() -> None:
    params = {
        "asc": "true",
        "limit": "5",
        "offset": "2",
        "latest": "true",
        "user": "alice",
        "team": "A-Team",
        "platform": "uk",
        "reference": "T-1",
        "status": "FAILED",
        "rollback": "false",
        "stime_before": "2015-12-18T00:00:00Z",
        "stime_after": "1450310400",
        "ftime_before": "2015-12-18",
        "ftime_gt": "2015-12-16T00:00:00Z",
        "duration_lt": "100",
        "duration_gt": "1",
        "package_name": "api",
        "package_version": "1.0.0",
        "package_rollback": "1",
        "package_status": "SUCCESSFUL",
        "package_duration_lt": "60",
        "package_duration_gt": "0",
        "package_stime_after": "2015-12-17T00:00:00Z",
    }
    query = dialect.parse_query(dialect.ReleaseQueryIn, params)
    filters = query.filters()
    assert query.page() == orlo.Page(asc=True, limit=5, offset=2)
    assert (filters.user, filters.team, filters.platform, filters.reference) == ("alice", "A-Team", "uk", "T-1")
    assert filters.status is OrloStatus.FAILED and filters.rollback is False
    assert filters.stime_after == datetime(2015, 12, 17, tzinfo=UTC)
    assert filters.ftime_after == datetime(2015, 12, 16, tzinfo=UTC)
    assert filters.ftime_before == datetime(2015, 12, 18, tzinfo=UTC)
    assert (filters.duration_lt, filters.duration_gt) == (100, 1)
    package = filters.package
    assert (package.name, package.version, package.rollback, package.status) == (
        "api",
        "1.0.0",
        True,
        OrloStatus.SUCCESSFUL,
    )
    assert (package.duration_lt, package.duration_gt) == (60, 0)


def test_team_null_means_teamless() -> None:
    filters = dialect.parse_query(dialect.ReleaseQueryIn, {"team": "null"}).filters()
    assert filters.teamless and filters.team is None


def test_unknown_filter_is_a_400_naming_it() -> None:
    error = query_error(dialect.ReleaseQueryIn, {"colour": "red"})
    assert error.message == "An invalid field was specified: colour"


def test_bad_status_is_a_400_with_orlos_message() -> None:
    error = query_error(dialect.ReleaseQueryIn, {"status": "DONE"})
    assert "Invalid package status, DONE is not in" in error.message
    assert "Invalid package status" in query_error(dialect.ReleaseQueryIn, {"package_status": "x"}).message


def test_non_integer_limit_or_offset_is_a_400() -> None:
    assert query_error(dialect.ReleaseQueryIn, {"limit": "ten"}).message == "limit must be a valid integer value"
    assert query_error(dialect.ReleaseQueryIn, {"offset": "-1"}).message == "offset must be a valid integer value"


def test_bad_boolean_time_or_duration_filters_are_a_400() -> None:
    for params in ({"package_rollback": "perhaps"}, {"stime_before": "yesterday"}, {"duration_lt": "long"}):
        query_error(dialect.ReleaseQueryIn, params)


def test_package_query_refuses_the_package_prefix() -> None:
    error = query_error(dialect.PackageQueryIn, {"package_name": "api"})
    assert "retry without the package_ prefix" in error.message
    query = dialect.parse_query(dialect.PackageQueryIn, {"name": "api", "limit": "3"})
    assert query.filters() == orlo.PackageFilters(name="api") and query.page().limit == 3


def test_stats_query_bounds_and_a_bad_time() -> None:
    query = dialect.parse_query(dialect.StatsQueryIn, {"stime": "2015-12-17T17:02:04Z", "platform": "uk"})
    assert query.stime == T0 and query.ftime is None
    assert query_error(dialect.StatsQueryIn, {"stime": "foo"}).message == "A badly formatted datetime string was given"


def test_by_date_query_unit_summarize_and_filters() -> None:
    query = dialect.parse_query(dialect.ByDateQueryIn, {"unit": "hour", "summarize_by_unit": "true", "user": "alice"})
    assert (query.unit, query.summarize_by_unit, query.filters().user) == ("hour", True, "alice")
    assert dialect.parse_query(dialect.ByDateQueryIn, {}).unit == "month"
    query_error(dialect.ByDateQueryIn, {"unit": "fortnight"})
    query_error(dialect.ByDateQueryIn, {"limit": "5"})
    assert dialect.parse_subject("package") == "package"
    with pytest.raises(RequestInvalidError):
        dialect.parse_subject("team")


def test_versions_query_by_release() -> None:
    assert dialect.parse_query(dialect.VersionsQueryIn, {"by_release": "true", "platform": "uk"}).by_release is True
    assert dialect.parse_query(dialect.VersionsQueryIn, {}).by_release is False
    query_error(dialect.VersionsQueryIn, {"by_release": "perhaps"})


# ---------------------------------------------------------------- import


def test_the_reference_import_example_imports_and_its_stats_come_out_right() -> None:
    docs = dialect.parse_import(json.loads(REFERENCE_IMPORT))
    (release,) = orlo.import_releases(docs, id_seed="space")
    (package,) = release.packages
    assert package.stime == datetime(2015, 12, 17, 17, 2, 22, tzinfo=UTC)
    assert package.ftime == datetime(2015, 12, 17, 17, 2, 22, tzinfo=UTC)  # 1450371742
    assert release.status is OrloStatus.SUCCESSFUL and release.notes == ("Imported from other_system",)
    normal = {"successful": 1, "failed": 0}
    zero = {"successful": 0, "failed": 0}
    expected = {"releases": {"normal": normal, "rollback": zero, "total": normal}}
    assert orlo.stats_global([release]) == {"global": expected}
    assert orlo.stats_by([release], "team") == {"Gumtree UK Site Operations": expected}
    assert orlo.stats_by([release], "platform") == {"GumtreeUK": expected}
    assert orlo.stats_by([release], "package") == {"": expected}
    assert orlo.stats_by_date([release], "release", unit="day") == {
        "2015": {"12": {"17": {"normal": {"successful": 1}}}}
    }
    rendered = dialect.ReleaseOut.from_domain(release).model_dump(mode="json")
    assert rendered["stime"] == "2015-12-17T17:02:04Z" and rendered["duration"] == 20
    assert rendered["packages"][0]["duration"] == 0


def test_import_nulls_stand_for_absent_fields() -> None:
    doc = [{"platforms": ["p"], "user": "u", "team": None, "references": None, "notes": None, "stime": None,
            "packages": [{"name": "a", "version": "1", "status": None, "rollback": None, "stime": None}]}]  # fmt: skip
    (parsed,) = dialect.parse_import(doc)
    assert parsed.team is None and parsed.references == () and parsed.packages[0].status is OrloStatus.NOT_STARTED


def test_import_lists_every_problem_with_its_path() -> None:
    doc = [
        {"platforms": ["p"], "user": "u", "packages": [{"name": "a", "version": "1", "status": "DONE"}]},
        {"platforms": ["p"], "packages": [{"name": "a", "version": "1", "ftime": "soon"}]},
    ]
    with pytest.raises(RequestInvalidError) as caught:
        dialect.parse_import(doc)
    fields = [f for f, _ in caught.value.details]
    assert fields == ["[0].packages[0].status", "[1].user", "[1].packages[0].ftime"]


@pytest.mark.parametrize("body", [{"user": "u"}, "x", None, []])
def test_import_needs_a_non_empty_list(body: object) -> None:
    with pytest.raises(RequestInvalidError):
        dialect.parse_import(body)


def test_an_exported_release_reimports_under_its_own_id() -> None:
    release = orlo.import_releases(dialect.parse_import(json.loads(REFERENCE_IMPORT)), id_seed="space")[0]
    exported = dialect.ReleaseOut.from_domain(release).model_dump(mode="json")
    (again,) = orlo.import_releases(dialect.parse_import([exported]), id_seed="other")
    assert again.id == release.id and again.packages[0].id == release.packages[0].id


# ---------------------------------------------------------------- responses


def test_release_and_package_render_exactly_as_api_md() -> None:
    release = orlo.new_release(RID, user="u", platforms=["p"], team=None, now=T0)
    release, package = orlo.add_package(release, "22222222-2222-4222-8222-222222222222", name="a", version="1")
    status, body = dialect.render_releases([release])
    assert status == 200
    assert body == {
        "releases": [
            {
                "id": RID,
                "user": "u",
                "team": None,
                "platforms": ["p"],
                "references": [],
                "notes": [],
                "metadata": {},
                "stime": "2015-12-17T17:02:04Z",
                "ftime": None,
                "duration": None,
                "packages": [
                    {
                        "id": package.id,
                        "release_id": RID,
                        "name": "a",
                        "version": "1",
                        "status": "NOT_STARTED",
                        "rollback": False,
                        "diff_url": None,
                        "stime": None,
                        "ftime": None,
                        "duration": None,
                    }
                ],
            }
        ]
    }
    assert dialect.render_packages([package])[1]["packages"][0]["id"] == package.id


def test_nothing_found_is_orlos_404_body() -> None:
    assert dialect.render_releases([]) == (404, {"message": "No releases found", "releases": []})
    assert dialect.render_packages([]) == (404, {"message": "No packages found", "packages": []})


def test_info_root_lists_the_info_urls() -> None:
    body = dialect.InfoOut().model_dump()
    assert body["message"] == "/info endpoint" and "/info/packages/versions" in body["urls"]
    assert body["urls"] == sorted(body["urls"])
