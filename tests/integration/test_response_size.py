"""Large answers: gzip for clients that accept it, and never a body Lambda cannot return."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest

from dora_insights.dialects.errors import ErrorDialect
from dora_insights.handlers import http
from tests.conftest import ADMIN_KEY, Api


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("deflate, GZIP;q=0.5", True),
        ("*", True),
        ("x-gzip", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0, identity", False),
        ("gzip;q=nope", False),
        ("br, deflate", False),
        ("identity", False),
        ("", False),
        ("*;q=0, gzip", True),  # a coding named wins over * wherever it stands (RFC 9110 12.5.3)
        ("gzip;q=0, *", False),
        ("*;q=0", False),
        ("br, *;q=0.1", True),
    ],
)
def test_accept_encoding_is_read_as_http_says(header: str, accepted: bool) -> None:
    assert http.accepts_gzip({"accept-encoding": header}) is accepted
    assert http.accepts_gzip({"Accept-Encoding": header}) is accepted


def _answer(body: str) -> dict[str, Any]:
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": body, "isBase64Encoded": False}


def test_small_answers_stay_plain_and_large_ones_are_gzipped_when_accepted() -> None:
    small = json.dumps({"items": ["x"] * 10})
    large = json.dumps({"items": ["x" * 100] * 2_000})
    gzip_event = {"headers": {"accept-encoding": "gzip"}}
    assert http.fit_response(gzip_event, _answer(small), ErrorDialect.NATIVE)["body"] == small
    assert http.fit_response({"headers": {}}, _answer(large), ErrorDialect.NATIVE)["body"] == large
    packed = http.fit_response(gzip_event, _answer(large), ErrorDialect.NATIVE)
    assert packed["isBase64Encoded"] is True
    assert packed["headers"]["Content-Encoding"] == "gzip"
    assert gzip.decompress(base64.b64decode(packed["body"])).decode() == large


def test_the_size_limit_counts_the_escaping_of_the_body(monkeypatch: pytest.MonkeyPatch) -> None:
    quoted = json.dumps({"k": ['"' * 10] * 100})
    escaped = len(json.dumps(quoted))
    monkeypatch.setattr(http, "MAX_RESPONSE_BYTES", http.RESPONSE_MARGIN_BYTES + escaped)
    assert http.fit_response({"headers": {}}, _answer(quoted), ErrorDialect.NATIVE)["statusCode"] == 200
    monkeypatch.setattr(http, "MAX_RESPONSE_BYTES", http.RESPONSE_MARGIN_BYTES + escaped - 1)
    refused = http.fit_response({"headers": {}}, _answer(quoted), ErrorDialect.NATIVE)
    assert refused["statusCode"] == 400
    assert "over the 6 MB" in json.loads(refused["body"])["message"]


def test_a_real_route_answers_gzip_to_a_client_that_accepts_it(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(3):
        body = {"project": "shop", "environment": "production", "id": f"run-{n}", "finished_at": 1709294400 + n}
        created = api.call(
            "POST", "/api/{spaceId}/deployments", path_params={"spaceId": "Spaces-1"}, body=body, key=ADMIN_KEY
        )
        assert created.status == 201
    monkeypatch.setattr(http, "COMPRESS_FROM_BYTES", 100)
    route = ("GET", "/api/{spaceId}/deployments")
    plain = api.call(*route, path_params={"spaceId": "Spaces-1"}, key=ADMIN_KEY)
    packed = api.call(*route, path_params={"spaceId": "Spaces-1"}, key=ADMIN_KEY, headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in plain.headers
    assert packed.body == plain.body
    assert len(packed.body["items"]) == 3
