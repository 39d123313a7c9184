"""Alert destinations' pure rules: which URLs may be called, the signature and its verification, what a
webhook and a Slack channel receive."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dora_insights.domain.alert_destinations import (
    CLEARED,
    AlertDetail,
    DestinationKind,
    UrlNotAllowedError,
    check_url,
    describe_bounds,
    masked_url,
    request_headers,
    signature_header,
    slack_body,
    verify,
    webhook_body,
)

SECRET = "whsec_0123456789abcdef"
DETAIL = AlertDetail(
    notification_id="t1:2024-03-06T12:00:00.000Z",
    space_id="Spaces-1",
    insight_id=7,
    insight_short_id="aB3dE5fG",
    insight_name="Deploys & <friends>",
    threshold_id="t1",
    threshold_name="Too many",
    value=3,
    bounds={"lower": 1, "upper": 2.5},
    previous_state="NotFiring",
    state="Firing",
    checked_at="2024-03-06T12:00:00.000Z",
)
LINK = "https://api.example.com/api/projects/Spaces-1/insights/7"


@pytest.mark.parametrize(
    "url",
    [
        "https://alerts.example.com/dora",
        "https://alerts.example.com:8443/dora?team=ops",
        "https://8.8.8.8/hook",
    ],
)
def test_public_https_urls_are_allowed(url: str) -> None:
    assert check_url(DestinationKind.WEBHOOK, url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://alerts.example.com/dora",
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://192.168.1.10/hook",
        "https://100.64.0.1/hook",  # carrier-grade NAT: not global
        "https://169.254.169.254/latest",
        "https://localhost/hook",
        "https://printer.local/hook",
        "https://intranet/hook",
        "https://a@alerts.example.com/hook",
        "https://alerts.example.com/hook#frag",
        "https://alerts.example.com/ho ok",
        "https://alerts.example.com:99999/hook",
        "https:///nohost",
        "https://alerts.example.com/" + "a" * 2048,
    ],
)
def test_urls_that_are_not_public_https_are_refused(url: str) -> None:
    with pytest.raises(UrlNotAllowedError):
        check_url(DestinationKind.WEBHOOK, url)


def test_loopback_http_is_allowed_only_with_the_setting() -> None:
    for url in ("http://127.0.0.1:8080/hook", "http://localhost:1/x", "https://[::1]:9/x"):
        with pytest.raises(UrlNotAllowedError):
            check_url(DestinationKind.WEBHOOK, url)
        assert check_url(DestinationKind.WEBHOOK, url, allow_loopback_http=True) == url
    with pytest.raises(UrlNotAllowedError):  # the setting admits loopback, not private networks
        check_url(DestinationKind.WEBHOOK, "http://10.0.0.1/hook", allow_loopback_http=True)


def test_a_slack_destination_must_be_a_slack_incoming_webhook() -> None:
    good = "https://hooks.slack.com/services/T0/B0/x"
    assert check_url(DestinationKind.SLACK, good) == good
    for url in ("https://hooks.slack.com/other/T0", "https://evil.example.com/services/T0/B0/x"):
        with pytest.raises(UrlNotAllowedError):
            check_url(DestinationKind.SLACK, url)


def test_a_slack_url_is_masked_and_a_webhook_url_is_not() -> None:
    assert masked_url(DestinationKind.SLACK, "https://hooks.slack.com/services/T0/B0/xyz") == (
        "https://hooks.slack.com/services/T0/****"
    )
    assert masked_url(DestinationKind.WEBHOOK, "https://a.example.com/x") == "https://a.example.com/x"


@given(secret=st.text(min_size=1, max_size=64), stamp=st.integers(0, 2**40), body=st.binary(max_size=512))
def test_a_signature_verifies_for_its_body_and_time_only(secret: str, stamp: int, body: bytes) -> None:
    header = signature_header(secret, stamp, body)

    assert verify(secret, header, body, now=stamp)
    assert verify(secret, header, body, now=stamp + 300)
    assert not verify(secret, header, body, now=stamp + 301)  # replayed too late
    assert not verify(secret, header, body + b" ", now=stamp)
    assert not verify(secret + "x", header, body, now=stamp)
    assert not verify(secret, header.replace(f"t={stamp}", f"t={stamp + 1}"), body, now=stamp)


def test_the_signature_is_the_documented_hmac_of_timestamp_dot_body() -> None:
    body = b'{"a":1}'
    expected = hmac.new(SECRET.encode(), b"1709726400." + body, hashlib.sha256).hexdigest()

    assert signature_header(SECRET, 1709726400, body) == f"t=1709726400,v1={expected}"


@pytest.mark.parametrize("header", ["", "v1=abc", "t=,v1=abc", "t=1,t=1,v1=abc", "t=abc,v1=abc"])
def test_malformed_signature_headers_do_not_verify(header: str) -> None:
    assert not verify(SECRET, header, b"{}", now=1)


def test_a_webhook_gets_the_event_detail_its_type_and_the_insight_link_with_signed_headers() -> None:
    body = webhook_body(CLEARED, DETAIL, LINK)
    headers = request_headers(
        DestinationKind.WEBHOOK, CLEARED, body, secret=SECRET, timestamp=1709726400, delivery_id="d1"
    )

    document = json.loads(body)
    assert document["type"] == CLEARED and document["insight_url"] == LINK
    assert {k: document[k] for k in ("value", "bounds", "threshold_id")} == {
        "value": 3,
        "bounds": {"lower": 1, "upper": 2.5},
        "threshold_id": "t1",
    }
    assert headers["X-Dora-Timestamp"] == "1709726400" and headers["X-Dora-Delivery"] == "d1"
    assert verify(SECRET, headers["X-Dora-Signature"], body, now=1709726400)


def test_a_slack_message_names_the_insight_value_bounds_and_links_it() -> None:
    text = json.loads(slack_body("InsightThresholdBreached", DETAIL, LINK))["text"]

    assert f"<{LINK}|Deploys &amp; &lt;friends&gt;>" in text
    assert "*Too many*" in text and "Value *3*" in text and "between 1 and 2.5" in text
    assert "firing" in text
    assert "cleared" in json.loads(slack_body(CLEARED, DETAIL, LINK))["text"]


@pytest.mark.parametrize(
    ("reason", "says"),
    [
        ("threshold_deleted", "(threshold deleted)"),
        ("threshold_disabled", "(threshold disabled)"),
        ("insight_deleted", "(insight deleted)"),
        ("check", None),
    ],
)
def test_a_slack_clearing_says_what_ended_the_alert(reason: str, says: str | None) -> None:
    detail = DETAIL.model_copy(update={"reason": reason})
    headline = json.loads(slack_body(CLEARED, detail, LINK))["text"].splitlines()[0]
    assert headline.startswith(":white_check_mark: Alert cleared")
    assert headline.endswith(says) if says else headline.endswith(">")


def test_an_event_stored_before_reasons_reads_as_a_checks() -> None:
    stored = {k: v for k, v in DETAIL.model_dump(mode="json").items() if k != "reason"}
    assert AlertDetail.model_validate(stored).reason == "check"


def test_slack_headers_carry_no_signature() -> None:
    headers = request_headers(DestinationKind.SLACK, CLEARED, b"{}", secret=None, timestamp=1, delivery_id="d")
    assert "X-Dora-Signature" not in headers


@pytest.mark.parametrize(
    ("bounds", "text"),
    [({"lower": 1}, "at least 1"), ({"upper": 0.25}, "at most 0.25"), ({}, "unbounded")],
)
def test_bounds_are_described_in_words(bounds: dict[str, float], text: str) -> None:
    assert describe_bounds(bounds) == text
