"""Orlo writes are all or nothing for what a client sent (API.md "Dialect: Orlo"), through the real
handlers and event shapes, against moto.

An import is all-or-nothing per document: whatever DynamoDB would refuse (a release item over 400 KB,
a key over its byte limit) is refused before the first write, so a refused import leaves neither
package pointers nor deployments behind, and the corrected document imports. A package stop builds
its deployments from names the dialect checked at the door, so it never leaves a SUCCESSFUL package
without its deployments for anything the client sent.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock, HttpResult

TICK = timedelta(seconds=10)
TOO_MANY_NOTES = ["N" * 200] * 2500  # ~500 KB in the release's item (over 400 KB), within the 1 MiB body


def basic(key: str = ADMIN_KEY) -> dict[str, str]:
    """orloclient's credentials: http://orlo:<key>@host/orlo."""
    return {"authorization": "Basic " + base64.b64encode(f"orlo:{key}".encode()).decode()}


def orlo(api: Api, method: str, route: str, **kwargs: Any) -> HttpResult:
    return api.call(method, route, headers=basic(), **kwargs)


def native_deployments(api: Api) -> list[dict[str, Any]]:
    """Every deployment of Spaces-1 as the native list answers it."""
    result = api.call("GET", "/api/{spaceId}/deployments", path_params={"spaceId": "Spaces-1"}, key=ADMIN_KEY)
    assert result.status == 200, result.body
    return list(result.body["items"])


def stored_types(aws: Any) -> dict[str, int]:
    """How many items of each ``type`` the table holds (read-only scan by the test itself)."""
    import boto3

    ddb = boto3.client("dynamodb")
    counts: dict[str, int] = {}
    kwargs: dict[str, Any] = {"TableName": aws.table_name}
    while True:
        page = ddb.scan(**kwargs)
        for item in page["Items"]:
            kind = item.get("type", {}).get("S", "?")
            counts[kind] = counts.get(kind, 0) + 1
        if "LastEvaluatedKey" not in page:
            return counts
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def stopped_package(**extra: Any) -> dict[str, Any]:
    """A SUCCESSFUL package of an import document."""
    return {
        "name": "web",
        "version": "1.0",
        "status": "SUCCESSFUL",
        "stime": "2024-02-01T10:00:00Z",
        "ftime": "2024-02-01T10:05:00Z",
        **extra,
    }


def started_package(api: Api, clock: Clock, release: dict[str, Any], **package: Any) -> dict[str, str]:
    """A created release with one started package; its ids as path parameters."""
    created = orlo(api, "POST", "/orlo/releases", body=release)
    assert created.status == 200, created.body
    rid = created.body["id"]
    added = orlo(
        api,
        "POST",
        "/orlo/releases/{rid}/packages",
        path_params={"rid": rid},
        body={"name": "web", "version": "1", **package},
    )
    assert added.status == 200, added.body
    ids = {"rid": rid, "pid": added.body["id"]}
    assert orlo(api, "POST", "/orlo/releases/{rid}/packages/{pid}/start", path_params=ids).status == 204
    clock.advance(TICK)
    return ids


# --------------------------------------------------------------------------- import: refused before any write


def test_an_import_refused_as_too_large_stores_no_deployment_and_no_pointer(api: Api, aws: Any, clock: Clock) -> None:
    """A release whose own item is over DynamoDB's 400 KB answers 413, and stores nothing: before the fix
    the deployment of its stopped package (and the package's pointer) were written first and stayed,
    counting in every DORA figure while Orlo knew no such release."""
    doc = {
        "user": "alice",
        "platforms": ["site1"],
        "stime": "2024-02-01T10:00:00Z",
        "ftime": "2024-02-01T10:10:00Z",
        "notes": TOO_MANY_NOTES,
        "packages": [stopped_package()],
    }
    for _ in range(2):  # the client's retry changes nothing
        result = orlo(api, "POST", "/orlo/releases/import", body=[doc])
        assert result.status == 413, result.body
    assert orlo(api, "GET", "/orlo/releases").status == 404  # no release stored ...
    stored = stored_types(aws)
    assert native_deployments(api) == [], stored  # ... so none of its deployments may be either
    assert stored.get("OrloPackage", 0) == 0, stored  # nor a pointer claiming its package id


def test_an_import_corrected_after_a_refused_one_imports(api: Api, aws: Any, clock: Clock) -> None:
    """The same refusal, seen by the client: the document carries its own package id (as an exported
    release does); told 413, the client drops the notes and imports again, which goes through (before the
    fix the refused attempt's pointer and deployment ``orlo:<pid>:...`` blocked every later import)."""
    package = stopped_package(id="6f1c2a52-3d4e-4f50-8a61-7b8c9d0e1f20")
    doc = {"user": "alice", "platforms": ["site1"], "stime": "2024-02-01T10:00:00Z", "packages": [package]}
    refused = orlo(api, "POST", "/orlo/releases/import", body=[{**doc, "notes": TOO_MANY_NOTES}])
    assert refused.status == 413, refused.body
    corrected = orlo(api, "POST", "/orlo/releases/import", body=[doc])
    assert corrected.status == 200, corrected.body
    (deployment,) = native_deployments(api)
    assert deployment["metadata"]["orlo_release_id"] == corrected.body["releases"][0]


def test_a_too_large_release_refuses_the_whole_document_and_names_it(api: Api, aws: Any, clock: Clock) -> None:
    """The releases before the refused one in the document are not stored either (all-or-nothing per
    document), and the 413 names the refused release's place in the document."""
    fine = {"user": "bob", "platforms": ["site1"], "stime": "2024-02-01T09:00:00Z", "packages": [stopped_package()]}
    big = {**fine, "user": "alice", "notes": TOO_MANY_NOTES, "packages": [stopped_package(name="api")]}
    refused = orlo(api, "POST", "/orlo/releases/import", body=[fine, big])
    assert refused.status == 413, refused.body
    assert refused.body["message"].startswith("[1]: "), refused.body
    assert orlo(api, "GET", "/orlo/releases").status == 404
    assert native_deployments(api) == []
    assert stored_types(aws).get("OrloPackage", 0) == 0
    assert orlo(api, "POST", "/orlo/releases/import", body=[fine]).status == 200


def test_an_imported_package_url_over_the_cap_is_refused_at_the_door(api: Api, aws: Any) -> None:
    """A package's ``diff_url`` goes twice into each of its deployments (``source_url`` and metadata): an
    import caps it as ``POST .../packages`` does (2,048 characters), so no deployment outgrows its item."""
    doc = {"user": "alice", "platforms": ["site1"], "stime": "2024-02-01T10:00:00Z"}
    long_url = "https://example.com/" + "d" * 2100
    refused = orlo(
        api, "POST", "/orlo/releases/import", body=[{**doc, "packages": [stopped_package(diff_url=long_url)]}]
    )
    assert refused.status == 400, refused.body
    assert "diff_url" in str(refused.body), refused.body
    assert native_deployments(api) == [] and stored_types(aws).get("OrloPackage", 0) == 0


# --------------------------------------------------------------------------- stop: release and deployments


def test_a_team_that_case_folds_past_the_key_limit_never_leaves_a_stopped_package_without_deployment(
    api: Api, aws: Any, clock: Clock
) -> None:
    """'ΐ' is 2 bytes but case-folds to 6, so a 200-character team would make the project-group catalogue
    key 'N#' + 1,200 bytes, over DynamoDB's 1,024-byte sort key: the stop wrote the release SUCCESSFUL and
    then failed on the deployment (400), for every retry. Either the stop goes through whole, or it changes
    nothing (here: the team is refused at the door)."""
    team = "\u0390" * 200
    created = orlo(api, "POST", "/orlo/releases", body={"user": "u", "platforms": ["p"], "team": team})
    if created.status == 400:  # refused at the door, nothing stored
        return
    assert created.status == 200, created.body
    rid = created.body["id"]
    pid = orlo(
        api, "POST", "/orlo/releases/{rid}/packages", path_params={"rid": rid}, body={"name": "web", "version": "1"}
    ).body["id"]
    ids = {"rid": rid, "pid": pid}
    assert orlo(api, "POST", "/orlo/releases/{rid}/packages/{pid}/start", path_params=ids).status == 204
    clock.advance(TICK)
    stop = orlo(api, "POST", "/orlo/releases/{rid}/packages/{pid}/stop", path_params=ids, body={"success": True})
    release = orlo(api, "GET", "/orlo/releases/{rid}", path_params={"rid": rid}).body["releases"][0]
    status = release["packages"][0]["status"]
    deployments = native_deployments(api)
    # Either the stop went through whole (204 and a deployment) or it changed nothing (4xx and NOT IN_PROGRESS).
    assert (stop.status == 204 and len(deployments) == 1) or (stop.status >= 400 and status == "IN_PROGRESS"), (
        stop.status,
        stop.body,
        status,
        len(deployments),
    )


@pytest.mark.parametrize("route", ["/orlo/releases", "/orlo/releases/import"])
def test_a_team_over_the_key_limit_in_utf8_is_refused_naming_it(api: Api, aws: Any, route: str) -> None:
    """The team is checked as user, platform and package names are (``key_name``: UTF-8 bytes, also once
    case-folded): 400 naming ``team``, nothing stored."""
    team = "\u0390" * 200
    body: Any = {"user": "u", "platforms": ["p"], "team": team}
    if route.endswith("import"):
        body = [{**body, "stime": "2024-02-01T10:00:00Z", "packages": [stopped_package()]}]
    refused = orlo(api, "POST", route, body=body)
    assert refused.status == 400, refused.body
    assert "team" in str(refused.body), refused.body
    assert orlo(api, "GET", "/orlo/releases").status == 404
    assert native_deployments(api) == []


def references(count: int) -> list[str]:
    """``count`` distinct references of 200 ASCII characters (203 bytes each in a deployment's metadata)."""
    return [f"{n:04d}" + "R" * 196 for n in range(count)]


def test_references_within_their_budget_and_the_longest_url_still_stop_into_a_deployment(
    api: Api, aws: Any, clock: Clock
) -> None:
    """A release's references (at most 360 KiB with its user) and a package's diff_url (at most 2,048
    characters, held twice) go into each deployment: all of them at their heaviest keep it within
    DynamoDB's item, so the stop is whole. ASCII references weigh as much in a deployment as anything can
    (non-ASCII text weighs more in the release's JSON document than in the deployment, so the release's
    item refuses it first); the URL in 4-byte characters is the heaviest it can be."""
    sent = references(1800)  # 365,400 bytes
    url = "https://example.com/" + "\U0001f680" * 2028
    ids = started_package(api, clock, {"user": "u", "platforms": ["p"], "references": sent}, diff_url=url)
    stop = orlo(api, "POST", "/orlo/releases/{rid}/packages/{pid}/stop", path_params=ids, body={"success": True})
    assert stop.status == 204, stop.body
    (deployment,) = native_deployments(api)
    assert deployment["metadata"]["orlo_references"] == sent and deployment["source_url"] == url


def test_references_over_their_budget_are_413_and_nothing_is_stored(api: Api, aws: Any) -> None:
    """1,900 references of 200 characters fit in the release's item (~390 KB) but leave its deployments too
    little room beside them: refused when the release is created or imported, not when a package stops."""
    body = {"user": "u", "platforms": ["p"], "references": references(1900)}
    created = orlo(api, "POST", "/orlo/releases", body=body)
    assert created.status == 413, created.body
    assert created.body["message"].startswith("references: ") and "400 KB" in created.body["message"], created.body
    doc = {**body, "stime": "2024-02-01T10:00:00Z", "packages": [stopped_package()]}
    imported = orlo(api, "POST", "/orlo/releases/import", body=[{**doc, "references": []}, doc])
    assert imported.status == 413, imported.body
    assert imported.body["message"].startswith("[1]: references: "), imported.body
    assert orlo(api, "GET", "/orlo/releases").status == 404
    assert native_deployments(api) == [] and stored_types(aws).get("OrloPackage", 0) == 0


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user": "   ", "platforms": ["p"]}, "user"),
        ({"user": "u", "platforms": [" \t"]}, "platforms"),
        ({"user": "u", "platforms": "  "}, "platforms"),
        ({"user": "u", "platforms": ["p"], "team": "  "}, "team"),
    ],
)
def test_blank_names_are_refused_as_the_native_api_refuses_them(
    api: Api, aws: Any, body: dict[str, Any], field: str
) -> None:
    refused = orlo(api, "POST", "/orlo/releases", body=body)
    assert refused.status == 400, refused.body
    assert field in str(refused.body) and "blank" in str(refused.body), refused.body
    imported = orlo(api, "POST", "/orlo/releases/import", body=[{**body, "packages": []}])
    assert imported.status == 400, imported.body
    assert orlo(api, "GET", "/orlo/releases").status == 404


def test_a_blank_package_name_is_refused_and_an_empty_team_is_no_team(api: Api, aws: Any) -> None:
    created = orlo(api, "POST", "/orlo/releases", body={"user": "u", "platforms": ["p"], "team": ""})
    assert created.status == 200, created.body
    rid = created.body["id"]
    release = orlo(api, "GET", "/orlo/releases/{rid}", path_params={"rid": rid}).body["releases"][0]
    assert release["team"] is None
    blank = orlo(
        api, "POST", "/orlo/releases/{rid}/packages", path_params={"rid": rid}, body={"name": " ", "version": "1"}
    )
    assert blank.status == 400, blank.body


def test_platforms_differing_only_in_case_make_one_deployment(api: Api, aws: Any, clock: Clock) -> None:
    """The catalogue's tenants are case-insensitive: 'UK' and 'uk' are one tenant, so one stopped package
    makes one deployment there (the first platform's), not two of one stream at one instant."""
    ids = started_package(api, clock, {"user": "u", "platforms": ["UK", "uk", "site2"]})
    stop = orlo(api, "POST", "/orlo/releases/{rid}/packages/{pid}/stop", path_params=ids, body={"success": True})
    assert stop.status == 204, stop.body
    assert sorted(d["tenant"] for d in native_deployments(api)) == ["UK", "site2"]
    release = orlo(api, "GET", "/orlo/releases/{rid}", path_params=ids).body["releases"][0]
    assert release["platforms"] == ["UK", "uk", "site2"]  # Orlo's own record keeps what was sent
