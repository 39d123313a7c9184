"""Bad input gets a 4xx in the native error shape, never a 5xx, and nothing is written."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api
from tests.support.events import load_event

ROUTE = "/api/{spaceId}/deployments"
SP = {"spaceId": "Spaces-1"}
GOOD = {"project": "shop", "environment": "production", "finished_at": "2024-03-01T12:00:00Z"}


def _assert_native_error(result: object, status: int) -> None:
    assert result.status == status, result.body  # type: ignore[attr-defined]
    body = result.body  # type: ignore[attr-defined]
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], list) and body["errors"]


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', ""),
        ('{"project": 3, "environment": "p", "finished_at": 1}', "project"),
        ('{"environment": "p", "finished_at": 1}', "project: is required"),
        ('{"project": "s", "environment": "p"}', "finished_at: is required"),
        ('{"project": "s", "environment": "p", "finished_at": 1, "state": "Done"}', "state"),
        ('{"project": "' + "x" * 201 + '", "environment": "p", "finished_at": 1}', "project"),
        ('{"project": "s", "environment": "p", "finished_at": "yesterday"}', "finished_at"),
        ('{"project": "s", "environment": "p", "finished_at": "2024-03-01T12:00:00"}', "offset"),
        ('{"project": "s", "environment": "p", "finished_at": 1, "unknown": 1}', "unknown: is not a known field"),
        ('{"project": "s", "environment": "p", "finished_at": 1, "tags": ["nocolon"]}', "key:value"),
        ('{"project": "s", "environment": "p", "finished_at": 1, "commit_sha": "xyz"}', "commit_sha"),
        ('{"project": "s", "environment": "p", "finished_at": 5, "started_at": 9}', "started_at"),
        ('{"project": "   ", "environment": "p", "finished_at": 1}', "blank"),
        ('{"project": "s", "environment": "p", "finished_at": 1, "id": "bad id!"}', "id"),
        ('{"project": "s", "environment": "p", "finished_at": true}', "finished_at"),
    ],
)
def test_invalid_deployment_bodies_are_400_and_write_nothing(api: Api, raw: str, fragment: str) -> None:
    result = api.call("POST", ROUTE, path_params=SP, raw_body=raw, key=ADMIN_KEY)
    _assert_native_error(result, 400)
    assert fragment in " ".join(result.body["errors"]) + result.body["message"]
    listed = api.call("GET", ROUTE, path_params=SP, key=ADMIN_KEY)
    assert listed.body["items"] == []


def test_body_over_one_mebibyte_is_413(api: Api) -> None:
    raw = '{"project": "s", "environment": "p", "finished_at": 1, "metadata": {"x": "' + "a" * (1024 * 1024) + '"}}'
    _assert_native_error(api.call("POST", ROUTE, path_params=SP, raw_body=raw, key=ADMIN_KEY), 413)


def test_non_utf8_body_is_400(api: Api) -> None:
    _assert_native_error(api.call("POST", ROUTE, path_params=SP, raw_body=b"\xff\xfe{}", key=ADMIN_KEY), 400)


def test_metadata_over_its_limit_is_400(api: Api) -> None:
    body = GOOD | {"metadata": {"x": "a" * 20_000}}
    _assert_native_error(api.call("POST", ROUTE, path_params=SP, body=body, key=ADMIN_KEY), 400)


@pytest.mark.parametrize("cursor", ["%%%", "bm90IGpzb24", "eyJQSyI6IngifQ", "W10"])
def test_bad_cursors_are_400(api: Api, cursor: str) -> None:
    result = api.call("GET", ROUTE, path_params=SP, query={"cursor": cursor}, key=ADMIN_KEY)
    _assert_native_error(result, 400)


def test_cursor_from_another_partition_is_400(api: Api) -> None:
    for day in (1, 2):
        api.call("POST", ROUTE, path_params=SP, body=GOOD | {"finished_at": f"2024-03-0{day}T00:00:00Z"}, key=ADMIN_KEY)
    cursor = api.call("GET", ROUTE, path_params=SP, query={"limit": "1"}, key=ADMIN_KEY).body["next_cursor"]
    assert cursor
    result = api.call("GET", ROUTE, path_params=SP, query={"cursor": cursor, "project": "shop"}, key=ADMIN_KEY)
    _assert_native_error(result, 400)


@pytest.mark.parametrize(
    "query", [{"limit": "0"}, {"limit": "501"}, {"limit": "ten"}, {"state": "Nope"}, {"from": "someday"}]
)
def test_bad_list_parameters_are_400(api: Api, query: dict[str, str]) -> None:
    _assert_native_error(api.call("GET", ROUTE, path_params=SP, query=query, key=ADMIN_KEY), 400)


def test_unknown_deployment_is_404(api: Api) -> None:
    result = api.call("GET", ROUTE + "/{deploymentId}", path_params={**SP, "deploymentId": "nope"}, key=ADMIN_KEY)
    _assert_native_error(result, 404)


def test_batch_over_500_items_is_400(api: Api) -> None:
    body = {"deployments": [GOOD] * 501}
    _assert_native_error(api.call("POST", ROUTE + "/batch", path_params=SP, body=body, key=ADMIN_KEY), 400)


# --- instants outside [1970-01-01T00:00:00Z, 2100-01-01T00:00:00Z), at every door -------------
OUT_OF_RANGE = [
    "0099-06-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",  # astimezone overflows below year 1
    "9999-12-31T23:59:59-05:00",  # ... and beyond year 9999
    "2100-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    4102444800,  # 2100-01-01 in unix seconds
]
RANGE = "outside the accepted range"
SECRET = "webhook-secret"


def _errors(result: Any) -> str:
    return " ".join(result.body["errors"]) + result.body["message"]


@pytest.mark.parametrize("when", OUT_OF_RANGE)
def test_native_deployment_times_outside_the_range_are_400_and_write_nothing(api: Api, when: object) -> None:
    for body in (GOOD | {"finished_at": when}, GOOD | {"started_at": when}):
        result = api.call("POST", ROUTE, path_params=SP, body=body, key=ADMIN_KEY)
        _assert_native_error(result, 400)
        assert RANGE in _errors(result) or "started_at must not be after" in _errors(result)
    batch = api.call(
        "POST", ROUTE + "/batch", path_params=SP, body={"deployments": [GOOD | {"finished_at": when}]}, key=ADMIN_KEY
    )
    assert batch.body["results"][0]["status"] == 400 and batch.body["created"] == 0, batch.body
    assert RANGE in " ".join(batch.body["results"][0]["errors"])
    assert api.call("GET", ROUTE, path_params=SP, key=ADMIN_KEY).body["items"] == []


def test_the_range_ends_are_exactly_1970_and_2100(api: Api) -> None:
    for when in ("1970-01-01T00:00:00Z", "2099-12-31T23:59:59.999Z"):
        assert api.call("POST", ROUTE, path_params=SP, body=GOOD | {"finished_at": when}, key=ADMIN_KEY).status == 201


@pytest.mark.parametrize("seconds", [4_102_444_800, 5_000_000_000, 99_999_999_999])
def test_datadog_unix_times_outside_the_range_are_400_with_a_pointer(api: Api, seconds: int) -> None:
    attributes = {"service": "shop", "started_at": 1_700_000_000, "finished_at": seconds}
    result = api.call("POST", "/api/v2/dora/deployment", body={"data": {"attributes": attributes}}, key=ADMIN_KEY)
    assert result.status == 400, result.body
    (error,) = result.body["errors"]
    assert error["source"]["pointer"] == "/data/attributes/finished_at" and RANGE in error["detail"]
    failure = {"service": "shop", "started_at": seconds}
    result = api.call("POST", "/api/v2/dora/failure", body={"data": {"attributes": failure}}, key=ADMIN_KEY)
    assert result.status == 400 and result.body["errors"][0]["source"]["pointer"] == "/data/attributes/started_at"


@pytest.mark.parametrize("when", OUT_OF_RANGE)
def test_dx_create_upsert_and_backfill_refuse_times_outside_the_range(api: Api, when: object) -> None:
    body = {"reference_id": "r-1", "deployed_at": when, "service": "shop"}
    for route in ("/api/deployments.create", "/api/deployments.upsert"):
        result = api.call("POST", route, body=body, key=ADMIN_KEY)
        assert result.status == 400, result.body
        assert (result.body["ok"], result.body["error"]) == (False, "invalid_arguments") and RANGE in result.body[
            "message"
        ]
    csv_body = f"deployed_at,service\n{when},shop\n1700000000,shop\n"
    result = api.call(
        "POST", "/api/deployments.backfill", raw_body=csv_body, headers={"content-type": "text/csv"}, key=ADMIN_KEY
    )
    assert result.status == 200, result.body
    bad, good = result.body["results"]
    assert (bad["ok"], bad["error"], good["ok"]) == (False, "invalid_arguments", True) and RANGE in bad["message"]


def _orlo(api: Api, method: str, route: str, **kwargs: Any) -> Any:
    return api.call(method, route, key=ADMIN_KEY, **kwargs)


@pytest.mark.parametrize("when", OUT_OF_RANGE)
def test_orlo_import_and_queries_refuse_times_outside_the_range(api: Api, when: object) -> None:
    release = {"user": "u", "platforms": ["p"], "packages": [{"name": "web", "version": "1", "stime": when}]}
    result = _orlo(api, "POST", "/orlo/releases/import", body=[release])
    _assert_native_error(result, 400)
    assert RANGE in _errors(result)
    assert _orlo(api, "POST", "/orlo/releases/import", body=[{**release, "packages": [], "stime": when}]).status == 400
    for route, name in (
        ("/orlo/releases", "stime_before"),
        ("/orlo/packages", "ftime_after"),
        ("/orlo/stats", "stime"),
    ):
        _assert_native_error(_orlo(api, "GET", route, query={name: str(when)}), 400)
    assert _orlo(api, "GET", "/orlo/releases").status == 404  # nothing was imported


@pytest.mark.parametrize("when", OUT_OF_RANGE)
def test_native_changes_and_failures_refuse_times_outside_the_range(api: Api, when: object) -> None:
    commit = {"repository": "acme/shop", "branch": "main", "sha": "a" * 40, "timestamp": when}
    result = api.call("POST", "/api/{spaceId}/changes", path_params=SP, body={"commits": [commit]}, key=ADMIN_KEY)
    _assert_native_error(result, 400)
    assert RANGE in _errors(result)
    pr = {"repository": "acme/shop", "number": 1, "base_ref": "main", "created_at": "2024-01-01T00:00:00Z"}
    result = api.call(
        "POST",
        "/api/{spaceId}/changes",
        path_params=SP,
        body={"pull_requests": [pr | {"merged_at": when}]},
        key=ADMIN_KEY,
    )
    _assert_native_error(result, 400)
    failure = {"project": "shop", "started_at": when}
    result = api.call("POST", "/api/{spaceId}/failures", path_params=SP, body=failure, key=ADMIN_KEY)
    _assert_native_error(result, 400)
    assert RANGE in _errors(result)


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00", "2100-01-01T00:00:00Z"])
@pytest.mark.parametrize("route", ["/api/{spaceId}/deployments", "/api/{spaceId}/failures", "/api/{spaceId}/summary"])
def test_time_query_parameters_outside_the_range_are_400_naming_them(api: Api, route: str, when: str) -> None:
    for name in ("from", "to"):
        result = api.call("GET", route, path_params=SP, query={name: when}, key=ADMIN_KEY)
        _assert_native_error(result, 400)
        assert name in " ".join(result.body["errors"]) and RANGE in _errors(result)


def _deliver(api: Api, event: str, payload: Any) -> Any:
    from dora_insights.dialects.github import sign

    raw = json.dumps(payload)
    headers = {"x-github-event": event, "x-hub-signature-256": sign(SECRET, raw.encode())}
    return api.call("POST", "/webhooks/github/{spaceId}", path_params=SP, raw_body=raw, headers=headers)


@pytest.fixture
def hooked(api: Api, store: Any) -> Api:
    from dora_insights.logic import spaces

    body = {"secret": SECRET}
    set_secret = api.call("PUT", "/api/{spaceId}/webhooks/github", path_params=SP, body=body, key=ADMIN_KEY)
    assert set_secret.status == 200, set_secret.body
    spaces.clear_cache()
    return api


@pytest.mark.parametrize("when", ["0099-06-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00"])
def test_github_webhook_times_outside_the_range_are_400(hooked: Api, when: str) -> None:
    """A pull request's or a deployment's time outside the range is a 400; a pushed commit's is not (git
    takes any date): it is dated at the push (API.md, GitHub webhooks)."""
    pull = load_event("github_pull_request_merged.json")
    pull["pull_request"]["merged_at"] = when
    status = load_event("github_deployment_status.json")
    status["deployment"]["created_at"] = when
    for event, payload in (("pull_request", pull), ("deployment_status", status)):
        result = _deliver(hooked, event, payload)
        _assert_native_error(result, 400)
        assert RANGE in _errors(result), (event, result.body)
    assert hooked.call("GET", ROUTE, path_params=SP, key=ADMIN_KEY).body["items"] == []
    push = load_event("github_push.json")
    push["commits"][0]["timestamp"] = when
    assert _deliver(hooked, "push", push).status == 200


# --- names within the character limit but over DynamoDB's key-size limits in UTF-8 bytes -------
EXPANDING = "\u0390" * 200  # 200 characters, 400 bytes; case-folded (as catalogue keys store names) 1,200 bytes
EMOJI = "\U0001f984" * 200  # 200 characters, 800 bytes: fits


def test_a_name_whose_key_would_overflow_is_a_400_naming_the_field(api: Api) -> None:
    result = api.call("POST", ROUTE, path_params=SP, body=GOOD | {"project": EXPANDING}, key=ADMIN_KEY)
    _assert_native_error(result, 400)
    assert "project" in " ".join(result.body["errors"]) and "bytes" in _errors(result)
    dd = {"data": {"attributes": {"service": EXPANDING, "started_at": 1_700_000_000, "finished_at": 1_700_000_001}}}
    result = api.call("POST", "/api/v2/dora/deployment", body=dd, key=ADMIN_KEY)
    assert result.status == 400 and result.body["errors"][0]["source"]["pointer"] == "/data/attributes/service"
    result = api.call(
        "POST", "/api/deployments.create", body={"deployed_at": 1_700_000_000, "service": EXPANDING}, key=ADMIN_KEY
    )
    assert (result.status, result.body["error"]) == (400, "invalid_arguments") and "bytes" in result.body["message"]
    commit = {"repository": "acme/shop", "branch": "\U0001f984" * 255, "sha": "a" * 40, "timestamp": 1_700_000_000}
    result = api.call("POST", "/api/{spaceId}/changes", path_params=SP, body={"commits": [commit]}, key=ADMIN_KEY)
    _assert_native_error(result, 400)
    assert "branch" in " ".join(result.body["errors"])
    rid = api.call("POST", "/orlo/releases", body={"user": "u", "platforms": ["p"]}, key=ADMIN_KEY).body["id"]
    result = api.call(
        "POST",
        "/orlo/releases/{rid}/packages",
        path_params={"rid": rid},
        body={"name": EXPANDING, "version": "1"},
        key=ADMIN_KEY,
    )
    _assert_native_error(result, 400)
    assert "name" in " ".join(result.body["errors"])
    assert api.call("GET", ROUTE, path_params=SP, key=ADMIN_KEY).body["items"] == []


def test_a_name_of_200_four_byte_characters_fits(api: Api) -> None:
    result = api.call(
        "POST", ROUTE, path_params=SP, body=GOOD | {"project": EMOJI, "environment": EMOJI}, key=ADMIN_KEY
    )
    assert result.status == 201, result.body
    assert result.body["project"] == EMOJI


def test_a_key_over_dynamodbs_limit_is_refused_by_the_table_adapter_before_anything_is_written(
    hooked: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dora_insights.dialects import github

    monkeypatch.setattr(github, "pushed_branch", lambda branch: branch)  # past the dialect's own 500-byte cap
    push = load_event("github_push.json")
    push["ref"] = "refs/heads/" + "\U0001f984" * 280  # GitHub's model allows 300 characters: 1,131 bytes
    result = _deliver(hooked, "push", push)
    _assert_native_error(result, 400)
    assert "over DynamoDB's 1024-byte limit" in _errors(result)


# --- free-form objects: capped, storable -------------------------------------------------------
BIG = {"x": "a" * 20_000}


def test_free_form_objects_over_16_kib_are_400(api: Api) -> None:
    result = api.call("POST", "/orlo/releases", body={"user": "u", "platforms": ["p"], "metadata": BIG}, key=ADMIN_KEY)
    _assert_native_error(result, 400)
    assert "metadata" in _errors(result) and "16384 bytes" in _errors(result)
    rid = api.call("POST", "/orlo/releases", body={"user": "u", "platforms": ["p"]}, key=ADMIN_KEY).body["id"]
    result = api.call("POST", "/orlo/releases/{rid}/metadata", path_params={"rid": rid}, body=BIG, key=ADMIN_KEY)
    _assert_native_error(result, 400)
    imported = {"user": "u", "platforms": ["p"], "packages": [], "metadata": BIG}
    _assert_native_error(api.call("POST", "/orlo/releases/import", body=[imported], key=ADMIN_KEY), 400)
    result = api.call(
        "POST", "/api/deployments.create", body={"deployed_at": 1, "service": "s", "metadata": BIG}, key=ADMIN_KEY
    )
    assert (result.status, result.body["error"]) == (400, "metadata_invalid")


@pytest.mark.parametrize(
    ("metadata", "fragment"),
    [
        ({"": 1}, "empty key"),
        ({"a": {"": 1}}, "empty key"),
        (json.loads('{"a":' * 17 + "1" + "}" * 17), "nested deeper"),
    ],
)
def test_free_form_objects_dynamodb_cannot_store_are_400(api: Api, metadata: dict[str, Any], fragment: str) -> None:
    result = api.call("POST", ROUTE, path_params=SP, body=GOOD | {"metadata": metadata}, key=ADMIN_KEY)
    _assert_native_error(result, 400)
    assert fragment in _errors(result) and "metadata" in _errors(result)


def test_a_release_over_dynamodbs_item_limit_is_413_and_nothing_is_written(api: Api) -> None:
    references = [f"{i:04d}" + "r" * 196 for i in range(2100)]  # ~430 KB in one release item
    result = api.call(
        "POST", "/orlo/releases", body={"user": "u", "platforms": ["p"], "references": references}, key=ADMIN_KEY
    )
    _assert_native_error(result, 413)
    assert "400 KB" in result.body["message"]
    assert api.call("GET", "/orlo/releases", key=ADMIN_KEY).status == 404


def test_notes_that_would_grow_a_release_past_the_item_limit_are_413_and_the_release_stays(api: Api) -> None:
    rid = api.call("POST", "/orlo/releases", body={"user": "u", "platforms": ["p"]}, key=ADMIN_KEY).body["id"]
    notes = "/orlo/releases/{rid}/notes"
    statuses = [
        api.call("POST", notes, path_params={"rid": rid}, body={"text": "n" * 16_000}, key=ADMIN_KEY).status
        for _ in range(27)
    ]
    assert statuses[:25] == [204] * 25 and statuses[-1] == 413, statuses
    (release,) = api.call("GET", "/orlo/releases/{rid}", path_params={"rid": rid}, key=ADMIN_KEY).body["releases"]
    assert len(release["notes"]) == statuses.count(204)


# --- empty key values in key conditions ---------------------------------------------------------
def test_orlo_releases_of_a_user_or_team_before_a_time(api: Api) -> None:
    rid = api.call(
        "POST", "/orlo/releases", body={"user": "ann", "team": "ops", "platforms": ["p"]}, key=ADMIN_KEY
    ).body["id"]
    for query in ({"user": "ann"}, {"team": "ops"}, {}):
        result = api.call(
            "GET", "/orlo/releases", query=query | {"stime_before": "2099-01-01T00:00:00Z"}, key=ADMIN_KEY
        )
        assert result.status == 200, (query, result.body)
        assert [r["id"] for r in result.body["releases"]] == [rid]
        early = api.call("GET", "/orlo/releases", query=query | {"stime_before": "1999-01-01T00:00:00Z"}, key=ADMIN_KEY)
        assert early.status == 404, early.body


# --- numbers in numeric fields, as JSON numbers or as strings pydantic coerces ------------------
@pytest.fixture
def insight(api: Api) -> str:
    report = api.call(
        "POST", "/api/{spaceId}/insights/reports", path_params=SP, body={"Name": "Delivery"}, key=ADMIN_KEY
    )
    body = {
        "name": "Lead time",
        "query": {"kind": "DoraMetricsQuery", "reportId": report.body["Id"], "metric": "lead_time"},
    }
    created = api.call("POST", "/api/projects/{spaceId}/insights", path_params=SP, body=body, key=ADMIN_KEY)
    assert created.status == 201, created.body
    return str(created.body["id"])


@pytest.mark.parametrize("number", ["1e300", "-1e-200", "NaN", "Infinity", "-Infinity"])
def test_unstorable_numbers_in_numeric_fields_are_400_naming_them(api: Api, insight: str, number: str) -> None:
    one = {**SP, "insightId": insight}
    route = "/api/projects/{spaceId}/insights/{insightId}"
    # As a JSON literal (the body check) and as a string pydantic would coerce (the field's own check).
    for raw in (number, json.dumps(number)):
        body = '{"name": "t", "condition": {"bounds": {"lower": %s}}}' % raw  # noqa: UP031 - JSON text
        result = api.call("POST", route + "/thresholds", path_params=one, raw_body=body, key=ADMIN_KEY)
        assert result.status == 400 and result.body["attr"] == "condition.bounds.lower", result.body
    settings = '{"settings": {"a": [%s]}}' % number  # noqa: UP031 - JSON text (a string stays a string there)
    result = api.call("PATCH", route + "/sharing", path_params=one, raw_body=settings, key=ADMIN_KEY)
    assert result.status == 400 and result.body["attr"] == "settings.a[0]", result.body
    assert api.call("GET", route + "/thresholds", path_params=one, key=ADMIN_KEY).body["count"] == 0


def test_integers_over_38_digits_are_400_as_numbers_or_strings(api: Api, insight: str) -> None:
    one = {**SP, "insightId": insight}
    route = "/api/projects/{spaceId}/insights/{insightId}"
    for raw in ("1" * 39, json.dumps("1" * 39)):
        result = api.call("PATCH", route, path_params=one, raw_body='{"order": %s}' % raw, key=ADMIN_KEY)  # noqa: UP031
        assert result.status == 400 and result.body["attr"] == "order", result.body
    result = api.call("PATCH", route, path_params=one, body={"order": int("9" * 38)}, key=ADMIN_KEY)
    assert result.status == 200 and result.body["order"] == int("9" * 38), result.body
    report = {"Name": "Delivery", "Version": "1" * 40}
    result = api.call("POST", "/api/{spaceId}/insights/reports", path_params=SP, body=report, key=ADMIN_KEY)
    assert result.status == 400 and "Version" in " ".join(result.body["Errors"]), result.body


# --- JSON inside other text: DX backfill cells, DX services strings ---------------------------
def _backfill_csv(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["deployed_at", "service", "metadata", "merge_commit_shas"])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def test_dx_backfill_cells_the_service_cannot_hold_fail_their_row_only(api: Api) -> None:
    deep = '{"a":' * 5000 + "1" + "}" * 5000
    rows = [
        {"deployed_at": "1700000000", "service": "a", "metadata": deep, "merge_commit_shas": ""},
        {"deployed_at": "1700000001", "service": "b", "metadata": '{"x": 1e300}', "merge_commit_shas": ""},
        {"deployed_at": "1700000002", "service": "c", "metadata": '{"x": ' + "9" * 40 + "}", "merge_commit_shas": ""},
        {"deployed_at": "1700000003", "service": "d", "metadata": "", "merge_commit_shas": "[" * 5000 + "]" * 5000},
        {"deployed_at": "1700000004", "service": "e", "metadata": '{"ok": 1}', "merge_commit_shas": ""},
    ]
    result = api.call(
        "POST",
        "/api/deployments.backfill",
        raw_body=_backfill_csv(rows),
        headers={"content-type": "text/csv"},
        key=ADMIN_KEY,
    )
    assert result.status == 200, result.body
    outcomes = [(r["ok"], r.get("error")) for r in result.body["results"]]
    assert outcomes == [
        (False, "metadata_invalid"),
        (False, "metadata_invalid"),
        (False, "metadata_invalid"),
        (False, "merge_commit_shas_invalid"),
        (True, None),
    ], result.body
    assert "nested deeper" in result.body["results"][0]["message"]
    assert "not a number this service can store" in result.body["results"][1]["message"]


def test_dx_services_given_as_a_deeply_nested_json_string_is_400(api: Api) -> None:
    body = {"github_pull_id": 1, "services": "[" * 5000 + "]" * 5000}
    result = api.call("POST", "/api/deployments.setPullServices", body=body, key=ADMIN_KEY)
    assert (result.status, result.body["ok"], result.body["error"]) == (400, False, "invalid_arguments"), result.body


@pytest.mark.parametrize("value", ["\u00b2", "\u0661\u0662", "\uff11\uff12"])
def test_a_time_of_other_digits_than_ascii_is_a_400(api: Api, value: str) -> None:
    """``str.isdigit`` takes superscript, Arabic-Indic and fullwidth digits, which ``int`` refuses or reads
    otherwise: a time parameter of them is a 400, never a 500."""
    result = api.call("GET", "/api/{spaceId}/deployments", path_params=SP, query={"from": value}, key=ADMIN_KEY)
    _assert_native_error(result, 400)
    assert "from" in _errors(result)
