"""The HTTP request as API Gateway's HTTP API (payload format 2.0) really delivers it.

Two facts of that payload the shared ``http_event`` helper does not reproduce, built here by hand:

- a repeated query parameter (``?tag=a&tag=b``) arrives comma-joined in ``queryStringParameters``
  (``{"tag": "a,b"}``) while ``rawQueryString`` keeps both (``tag=a&tag=b``); Powertools' validation
  reads ``rawQueryString`` to tell a repeated parameter from a comma in one value;
- a body may arrive base64-encoded (``isBase64Encoded``) whatever its content type, and clients send
  JSON under content types other than ``application/json`` (curl's ``-d`` sends
  ``application/x-www-form-urlencoded``).
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any
from urllib.parse import parse_qsl

import pytest

from tests.conftest import ADMIN_KEY, Api, HttpResult
from tests.support.events import http_event
from tests.support.native import create_deployment

SP = {"spaceId": "Spaces-1"}
DEPLOYMENTS = "/api/{spaceId}/deployments"
SUMMARY = "/api/{spaceId}/summary"
PROJECTS = "/api/{spaceId}/projects"
DORA_METRICS = "/api/{spaceId}/dora/metrics"


def _get(api: Api, route: str, raw_query: str, *, path: dict[str, str] | None = None) -> HttpResult:
    """``GET route?raw_query`` as API Gateway's HTTP API delivers it: ``rawQueryString`` as sent, repeated
    parameters comma-joined in ``queryStringParameters``."""
    event = http_event("GET", route, path_params=SP if path is None else path, key=ADMIN_KEY)
    joined: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    event["rawQueryString"] = raw_query
    if joined:
        event["queryStringParameters"] = joined
    return api.send("GET", route, event)


def _post(api: Api, route: str, raw: str, *, path: dict[str, str], content_type: str | None, b64: bool) -> HttpResult:
    event = http_event("POST", route, path_params=path, key=ADMIN_KEY)
    if content_type is None:
        event["headers"].pop("content-type", None)
    else:
        event["headers"]["content-type"] = content_type
    event["body"] = base64.b64encode(raw.encode()).decode() if b64 else raw
    event["isBase64Encoded"] = b64
    return api.send("POST", route, event)


def _ids(result: HttpResult) -> list[str]:
    assert result.status == 200, result.body
    return [d["id"] for d in result.body["items"]]


# --- repeated query parameters ---------------------------------------------------------------------
def test_a_repeated_tag_filter_lists_the_deployments_carrying_every_tag(api: Api) -> None:
    """The deployment list's ``tag`` is "repeated or comma-separated" (API.md): ``?tag=team:a&tag=tier:1``
    lists what the comma form lists (Powertools hands a repeated parameter over as a list)."""
    both = create_deployment(api, tags=["team:a", "tier:1"], finished_at="2024-03-01T10:00:00Z")
    create_deployment(api, tags=["team:a"], finished_at="2024-03-01T11:00:00Z")

    assert _ids(_get(api, DEPLOYMENTS, "tag=team:a,tier:1")) == [both["id"]]  # the comma form works
    assert _ids(_get(api, DEPLOYMENTS, "tag=team:a&tag=tier:1")) == [both["id"]]


def test_repeated_ids_filter_a_catalogue_list_by_every_id(api: Api) -> None:
    """A catalogue list's ``ids`` is "comma-separated, or the parameter repeated" (API.md), as Octopus'
    clients send it: ``?ids=Projects-1&ids=Projects-2`` lists what the comma form lists."""
    create_deployment(api, project="shop")
    create_deployment(api, project="web")
    create_deployment(api, project="api")

    comma = _get(api, PROJECTS, "ids=Projects-1,Projects-2")
    assert comma.status == 200, comma.body
    repeated = _get(api, PROJECTS, "ids=Projects-1&ids=Projects-2")
    assert repeated.status == 200, repeated.body
    assert [i["Id"] for i in repeated.body["Items"]] == [i["Id"] for i in comma.body["Items"]]
    assert sorted(i["Id"] for i in repeated.body["Items"]) == ["Projects-1", "Projects-2"]


def test_gitlab_tiers_repeated_in_the_raw_query_answer_as_the_comma_form(api: Api) -> None:
    """GitLab clients repeat ``environment_tiers[]`` (and the deprecated ``environment_tier``): with the
    repeats kept in ``rawQueryString`` as API Gateway keeps them, they answer what the comma form does."""
    base = "metric=deployment_frequency&start_date=2024-02-01&end_date=2024-03-01"
    comma = _get(api, DORA_METRICS, f"{base}&environment_tiers=production,staging")
    assert comma.status == 200, comma.body
    for repeated in (
        f"{base}&environment_tiers[]=production&environment_tiers[]=staging",
        f"{base}&environment_tier=production&environment_tier=staging",
    ):
        answer = _get(api, DORA_METRICS, repeated)
        assert (answer.status, answer.body) == (200, comma.body), repeated


# --- empty parameter values ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["project", "environment"])  # the filters /summary takes too
def test_an_empty_filter_value_is_read_alike_by_the_list_and_the_summary(api: Api, name: str) -> None:
    """A blank filter (``?environment=``, what a form or a client building ``?environment=${sel}`` sends with
    nothing selected) means no filter, on ``/summary`` (its ``environment_scope`` says ``all``) and on
    ``GET /deployments`` alike (it matched nothing there)."""
    created = create_deployment(api)
    summary = _get(api, SUMMARY, f"{name}=")
    listed = _get(api, DEPLOYMENTS, f"{name}=")
    assert summary.status == 200, summary.body
    assert summary.body["environment_scope"]["source"] == "all", summary.body
    assert _ids(listed) == [created["id"]], listed.body


# --- request bodies --------------------------------------------------------------------------------
NATIVE_BODY = {"project": "shop", "environment": "production", "finished_at": "2024-03-01T12:00:00Z"}
DATADOG_BODY = {"data": {"attributes": {"service": "shop", "started_at": 1709290800, "finished_at": 1709294400}}}
CREATES = [
    ("native", DEPLOYMENTS, SP, NATIVE_BODY),
    ("datadog", "/api/v2/dora/deployment", {}, DATADOG_BODY),
    ("octopus", "/api/{spaceId}/insights/reports", SP, {"Name": "weekly"}),
]


@pytest.mark.parametrize(("dialect", "route", "path", "body"), CREATES, ids=[c[0] for c in CREATES])
def test_a_base64_json_body_without_a_content_type_is_read(
    api: Api, dialect: str, route: str, path: dict[str, str], body: dict[str, Any]
) -> None:
    """A client that sends no Content-Type gets its body base64-encoded by API Gateway: the JSON inside is
    read as if sent plainly (API.md: the size and UTF-8 checks apply after base64 decoding)."""
    result = _post(api, route, json.dumps(body), path=path, content_type=None, b64=True)
    assert result.status in (200, 201), (dialect, result.body)


@pytest.mark.parametrize(("dialect", "route", "path", "body"), CREATES, ids=[c[0] for c in CREATES])
def test_json_sent_as_curls_default_form_type_is_read_as_json(
    api: Api, dialect: str, route: str, path: dict[str, str], body: dict[str, Any]
) -> None:
    """``curl -d '{...}'`` without ``-H 'Content-Type: application/json'`` sends the JSON as
    ``application/x-www-form-urlencoded``: it is read as the JSON it is (the DX and Orlo routes always read it
    so), not parsed as a form whose fields are then "missing" with the whole body quoted as a field name."""
    result = _post(api, route, json.dumps(body), path=path, content_type="application/x-www-form-urlencoded", b64=False)
    assert result.status in (200, 201), (dialect, result.status, result.body)


def test_a_dx_backfill_csv_sent_as_curls_default_form_type_is_read_as_before(api: Api) -> None:
    """Only a JSON body sent as a form is read as JSON: the DX backfill reads its CSV whatever the content
    type says, so ``curl --data-binary @deploys.csv`` without ``-H 'Content-Type: text/csv'`` (sent as a
    form) backfills as it did before (a form body refused with a 415 broke it)."""
    from tests.integration.test_dx import BACKFILL, CSV

    result = api.call(
        "POST",
        BACKFILL,
        raw_body=CSV,
        headers={"content-type": "application/x-www-form-urlencoded"},
        key=ADMIN_KEY,
    )
    assert result.status == 200, result.body
    assert (result.body["created"], result.body["failed"]) == (3, 1), result.body


@pytest.mark.parametrize("b64", [False, True], ids=["text", "base64"])
@pytest.mark.parametrize(("dialect", "route", "path", "body"), CREATES, ids=[c[0] for c in CREATES])
def test_a_json_body_after_a_byte_order_mark_is_read(
    api: Api, dialect: str, route: str, path: dict[str, str], body: dict[str, Any], b64: bool
) -> None:
    """A UTF-8 byte order mark before the JSON (Windows PowerShell 5 writes one into files a CI step then
    sends with ``curl --data @file``) is ignored, as RFC 8259 allows, not a 400 "not valid JSON"."""
    result = _post(api, route, "\ufeff" + json.dumps(body), path=path, content_type="application/json", b64=b64)
    assert result.status in (200, 201), (dialect, result.status, result.body)


def test_an_orlo_parameter_repeated_reads_its_first_value_as_flask_does(api: Api) -> None:
    """Orlo reads its query with Flask's ``request.args.get``: a repeated parameter is its first value. API
    Gateway's comma-joined ``queryStringParameters`` made ``?user=alice&user=bob`` a filter on the user
    "alice,bob", which lists nothing."""
    made = {}
    for user in ("alice", "bob"):
        created = api.call("POST", "/orlo/releases", body={"user": user, "platforms": ["site1"]}, key=ADMIN_KEY)
        assert created.status == 200, created.body
        made[user] = created.body["id"]
    listed = _get(api, "/orlo/releases", "user=alice&user=bob", path={})
    assert listed.status == 200, listed.body
    assert [r["id"] for r in listed.body["releases"]] == [made["alice"]]


def _post_encoded(api: Api, route: str, raw: bytes, *, path: dict[str, str], encoding: str) -> HttpResult:
    """A body sent with ``Content-Encoding``: binary, so API Gateway hands it over base64-encoded."""
    event = http_event("POST", route, path_params=path, key=ADMIN_KEY)
    event["headers"]["content-type"] = "application/json"
    event["headers"]["content-encoding"] = encoding
    event["body"] = base64.b64encode(raw).decode()
    event["isBase64Encoded"] = True
    return api.send("POST", route, event)


@pytest.mark.parametrize(("dialect", "route", "path", "body"), CREATES, ids=[c[0] for c in CREATES])
def test_a_gzip_body_is_read(api: Api, dialect: str, route: str, path: dict[str, str], body: dict[str, Any]) -> None:
    """``Content-Encoding: gzip`` (some HTTP clients compress what they send): the JSON inside is read."""
    result = _post_encoded(api, route, gzip.compress(json.dumps(body).encode()), path=path, encoding="gzip")
    assert result.status in (200, 201), (dialect, result.status, result.body)


@pytest.mark.parametrize(
    ("raw", "encoding", "status"),
    [
        (gzip.compress(b" " * (2 * 1024 * 1024)), "gzip", 413),  # 2 KB that inflate past the 1 MiB limit
        (b"\x1f\x8b\x08\x00not really gzip", "gzip", 400),
        (gzip.compress(json.dumps(NATIVE_BODY).encode())[:-8], "gzip", 400),  # cut short
        (json.dumps(NATIVE_BODY).encode(), "br", 415),
        (gzip.compress(json.dumps(NATIVE_BODY).encode()) + b"trailing bytes", "gzip", 400),
    ],
    ids=["inflates-too-far", "not-gzip", "cut-short", "brotli", "trailing-garbage"],
)
def test_a_body_in_a_coding_not_taken_is_refused_in_the_dialects_shape(
    api: Api, raw: bytes, encoding: str, status: int
) -> None:
    """A compressed body past the limit once inflated is a 413 (never inflated whole), broken gzip a 400, a
    coding other than gzip a 415; each in the native shape, nothing stored."""
    result = _post_encoded(api, DEPLOYMENTS, raw, path=SP, encoding=encoding)
    assert result.status == status, result.body
    assert result.body["message"], result.body
    assert api.call("GET", DEPLOYMENTS, path_params=SP, key=ADMIN_KEY).body["items"] == []


def test_a_gzip_body_of_several_members_is_read_whole(api: Api) -> None:
    """gzip allows members one after another (``cat a.gz b.gz``): the body is all of them, never the first
    alone (a backfill cut after its first member would answer 200 for the rows it kept)."""
    text = json.dumps(NATIVE_BODY).encode()
    raw = gzip.compress(text[:20]) + gzip.compress(text[20:])
    result = _post_encoded(api, DEPLOYMENTS, raw, path=SP, encoding="gzip")
    assert result.status == 201, result.body
    assert result.body["project"] == "shop"


def test_a_content_encoding_that_is_no_compression_is_ignored_as_before(api: Api) -> None:
    """``Content-Encoding: utf-8`` (a misuse some clients make) names no compression: the body is read as
    it always was, not refused."""
    event = http_event("POST", DEPLOYMENTS, path_params=SP, key=ADMIN_KEY, body=NATIVE_BODY)
    event["headers"]["content-encoding"] = "utf-8"
    assert api.send("POST", DEPLOYMENTS, event).status == 201
