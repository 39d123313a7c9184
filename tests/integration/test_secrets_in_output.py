"""Secrets and private data in what the service emits (log lines, answers, EMF records).

Every secret the service holds or is sent (API keys, webhook secrets and tokens, incident signing secrets,
alert destination secrets and Slack URLs, share access tokens, passwords and sessions, Orlo tokens) is given
a distinctive value; the log lines the functions emit (formatted by the Powertools formatter as in Lambda,
DEBUG included), the EMF records on stdout and the answers are searched for it, and for its base64 and
URL-encoded forms.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tests.conftest import ADMIN_KEY, Api, HttpResult

SP = {"spaceId": "Spaces-1"}
GH = "/api/{spaceId}/webhooks/github"
GL = "/api/{spaceId}/webhooks/gitlab"
PD = "/api/{spaceId}/webhooks/pagerduty"
OG = "/api/{spaceId}/webhooks/opsgenie"
DEST = "/api/{spaceId}/alert-destinations"
DEST_ONE = DEST + "/{destinationId}"
KEYS = "/api/{spaceId}/apikeys"
INSIGHT = "/api/projects/{spaceId}/insights/{insightId}"
SHARED = "/shared/{accessToken}"
LOGIN = "/shared/{accessToken}/login"


# --------------------------------------------------------------------------------------------- capture
class Captured:
    """What the functions emitted: every log record formatted as Lambda's log line (Powertools' JSON), DEBUG
    included, with its level; and stdout (EMF)."""

    def __init__(self) -> None:
        self.lines: list[tuple[int, str]] = []
        self.stdout = ""

    def text(self, at_least: int = logging.DEBUG) -> str:
        return "\n".join(line for level, line in self.lines if level >= at_least) + "\n" + self.stdout


def forms(secret: str) -> list[str]:
    """The secret as it could appear: as is, JSON-escaped, base64 (alone and as a Basic credential part),
    URL-encoded."""
    return [
        secret,
        json.dumps(secret)[1:-1],
        base64.b64encode(secret.encode()).decode().rstrip("="),
        quote(secret, safe=""),
    ]


def leaks(text: str, *secrets: str) -> list[str]:
    return [f for s in secrets for f in forms(s) if len(f) >= 8 and f in text]


@pytest.fixture
def emitted(capsys: pytest.CaptureFixture[str]) -> Iterator[Captured]:
    captured = Captured()
    target = logging.getLogger(os.environ["POWERTOOLS_SERVICE_NAME"])
    formatter = next((h.formatter for h in target.handlers if h.formatter is not None), None)

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            try:
                line = formatter.format(record) if formatter is not None else record.getMessage()
            except Exception:  # pragma: no cover - a record the formatter refuses is still searched
                line = f"{record.getMessage()} {record.__dict__!r}"
            captured.lines.append((record.levelno, f"{line} {record.__dict__!r}"))

    handler = Collect(level=logging.DEBUG)
    previous = target.level
    target.addHandler(handler)
    target.setLevel(logging.DEBUG)
    try:
        yield captured
    finally:
        target.removeHandler(handler)
        target.setLevel(previous)
        captured.stdout += capsys.readouterr().out


def read_stdout(captured: Captured, capsys: pytest.CaptureFixture[str]) -> None:
    captured.stdout += capsys.readouterr().out


def body_text(result: HttpResult) -> str:
    return json.dumps(result.body) + json.dumps(result.headers)


def check_clean(captured: Captured, answers: list[HttpResult], secrets: list[str]) -> None:
    """No secret in any log line (DEBUG included), EMF record or answer; and the functions did log."""
    assert captured.lines, "the functions logged nothing: the capture is broken"
    logged = leaks(captured.text(), *secrets)
    answered = [(a.status, leaks(body_text(a), *secrets)) for a in answers if leaks(body_text(a), *secrets)]
    assert (logged, answered) == ([], [])


# --------------------------------------------------------------------------------------------- refused credentials


def _password_protected_link(api: Api) -> tuple[dict[str, str], dict[str, str]]:
    """An insight shared with a password required: its path parameters and its link's."""
    from tests.support.insights import create_insight, create_report

    insight = create_insight(api, create_report(api, "Delivery"), metric="lead_time")
    where = {**SP, "insightId": str(insight["id"])}
    sharing = api.call(
        "PATCH",
        INSIGHT + "/sharing",
        path_params=where,
        body={"enabled": True, "password_required": True},
        key=ADMIN_KEY,
    )
    return where, {"accessToken": sharing.body["access_token"]}


def test_refused_credentials_of_every_kind_are_neither_quoted_back_nor_logged(
    api: Api, emitted: Captured, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong API key (each header form), a malformed Basic credential, an unknown Orlo token and the
    webhooks' wrong tokens answer 401 without quoting what was sent, and no log line or EMF record holds it
    (a client's typo of a real key is a near-key)."""
    bearer = "s3cr3t-XYZZY-bearer-key-01"
    x_api = "s3cr3t-XYZZY-x-api-key-02"
    dd = "s3cr3t-XYZZY-dd-api-key-03"
    basic = "s3cr3t-XYZZY-basic-pass-04"
    garbage = "s3cr3t-XYZZY-not-base64-05"
    orlo = "Spaces-1.s3cr3tXYZZYorlotoken06"
    gitlab = "s3cr3t-XYZZY-gitlab-token-07"
    opsgenie = "s3cr3t-XYZZY-opsgenie-08"
    pagerduty = "v1=s3cr3tXYZZYpagerduty09"
    answers = [
        api.call("GET", KEYS, path_params=SP, key=bearer),
        api.call("GET", KEYS, path_params=SP, headers={"x-api-key": x_api}),
        api.call("POST", "/api/v2/dora/deployment", body={}, headers={"dd-api-key": dd}),
        api.call(
            "GET",
            "/orlo/releases",
            headers={"authorization": "Basic " + base64.b64encode(f"u:{basic}".encode()).decode()},
        ),
        api.call("GET", "/orlo/releases", headers={"authorization": f"Basic {garbage}"}),
        api.call("GET", "/orlo/releases", headers={"x-auth-token": orlo}),
        api.call(
            "POST",
            "/webhooks/gitlab/{spaceId}",
            path_params=SP,
            raw_body="{}",
            headers={"x-gitlab-token": gitlab, "x-gitlab-event": "Push Hook"},
        ),
        api.call(
            "POST",
            "/webhooks/opsgenie/{spaceId}",
            path_params=SP,
            raw_body="{}",
            headers={"x-opsgenie-secret": opsgenie},
        ),
        api.call(
            "POST",
            "/webhooks/pagerduty/{spaceId}",
            path_params=SP,
            raw_body="{}",
            headers={"x-pagerduty-signature": pagerduty},
        ),
    ]
    read_stdout(emitted, capsys)

    assert [a.status for a in answers] == [401] * len(answers)
    check_clean(emitted, answers, [bearer, x_api, dd, basic, garbage, orlo, gitlab, opsgenie, pagerduty])


# --------------------------------------------------------------------------------------------- refused secrets
def test_secrets_refused_by_the_configuration_routes_are_neither_quoted_back_nor_logged(
    api: Api, emitted: Captured, capsys: pytest.CaptureFixture[str]
) -> None:
    """A secret the PUT webhook routes, the share password route or the share login refuse (too long, a
    space in it, the wrong type) answers a 400 that names the field and the rule, never the value, and the
    "invalid request" log line lists the rules only."""
    spaced = "s3cr3t XYZZY spaced secret 10"
    too_long = "s3cr3t-XYZZY-long-11-" + "x" * 300
    answers = [
        api.call("PUT", GH, path_params=SP, body={"secret": too_long}, key=ADMIN_KEY),
        api.call("PUT", GL, path_params=SP, body={"secret": spaced}, key=ADMIN_KEY),
        api.call("PUT", OG, path_params=SP, body={"secret": spaced}, key=ADMIN_KEY),
        api.call("PUT", PD, path_params=SP, body={"secret": too_long, "services": {}}, key=ADMIN_KEY),
        api.call("PUT", GL, path_params=SP, body={"secret": {"value": spaced}}, key=ADMIN_KEY),
    ]
    read_stdout(emitted, capsys)

    assert [a.status for a in answers] == [400] * len(answers)
    check_clean(emitted, answers, [spaced, too_long[:40]])


def test_a_share_password_refused_or_wrong_is_neither_quoted_back_nor_logged(
    api: Api, emitted: Captured, capsys: pytest.CaptureFixture[str]
) -> None:
    where, link = _password_protected_link(api)
    wrong = "s3cr3t-XYZZY-wrong-password-12"
    too_long = "s3cr3t-XYZZY-long-password-13-" + "y" * 300
    unknown_link = {"accessToken": "s3cr3tXYZZYunknownlinktoken14"}
    answers = [
        api.call(
            "POST", INSIGHT + "/sharing/passwords", path_params=where, body={"raw_password": too_long}, key=ADMIN_KEY
        ),
        api.call("POST", LOGIN, path_params=link, body={"password": wrong}),
        api.call("POST", LOGIN, path_params=link, body={"password": [wrong]}),
        api.call("GET", SHARED, path_params=link, headers={"authorization": f"Bearer {wrong}"}),
        api.call("GET", SHARED, path_params=unknown_link),
        api.call("POST", LOGIN, path_params=unknown_link, body={"password": wrong}),
    ]
    read_stdout(emitted, capsys)

    assert [a.status for a in answers] == [400, 401, 400, 401, 404, 404]
    check_clean(emitted, answers, [wrong, too_long[:40], unknown_link["accessToken"]])


# --------------------------------------------------------------------------------------------- stored secrets
def test_secrets_in_use_are_shown_once_and_never_logged_or_answered_again(
    api: Api, emitted: Captured, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every secret configured or issued (webhook secrets and tokens, incident secrets, a Slack URL's token,
    a webhook destination's signing secret, an API key, an Orlo token, a share password, its session and
    the link's access token) appears in no log line or EMF record while it is set, issued and used, and no
    later read (configs, key and destination lists, a destination's PATCH) answers it again."""

    github = "s3cr3t-XYZZY-github-secret-20"
    gitlab = "s3cr3t-XYZZY-gitlab-token-21"
    pagerduty = "s3cr3t-XYZZY-pagerduty-22"
    opsgenie = "s3cr3t-XYZZY-opsgenie-23"
    slack_token = "s3cr3tXYZZYslacktoken24"
    password = "s3cr3t-XYZZY-share-pass-25"
    set_up = [
        api.call("PUT", GH, path_params=SP, body={"secret": github}, key=ADMIN_KEY),
        api.call("PUT", GL, path_params=SP, body={"secret": gitlab}, key=ADMIN_KEY),
        api.call(
            "PUT", PD, path_params=SP, body={"secret": pagerduty, "services": {"A": {"project": "a"}}}, key=ADMIN_KEY
        ),
        api.call("PUT", OG, path_params=SP, body={"secret": opsgenie}, key=ADMIN_KEY),
        api.call(
            "POST",
            DEST,
            path_params=SP,
            body={"name": "s", "kind": "slack", "url": f"https://hooks.slack.com/services/T000/B000/{slack_token}"},
            key=ADMIN_KEY,
        ),
    ]
    hook = api.call(
        "POST",
        DEST,
        path_params=SP,
        body={"name": "w", "kind": "webhook", "url": "https://alerts.example.com/h"},
        key=ADMIN_KEY,
    )
    made = api.call("POST", KEYS, path_params=SP, body={"name": "ro", "scopes": ["deployments:read"]}, key=ADMIN_KEY)
    orlo = api.call("GET", "/orlo/token", key=made.body["key"])
    where, link = _password_protected_link(api)
    added = api.call(
        "POST", INSIGHT + "/sharing/passwords", path_params=where, body={"raw_password": password}, key=ADMIN_KEY
    )
    session = api.call("POST", LOGIN, path_params=link, body={"password": password})
    assert [a.status for a in set_up] + [hook.status, made.status, orlo.status, added.status, session.status] == [
        200,
        200,
        200,
        200,
        201,
        201,
        201,
        200,
        201,
        200,
    ]
    issued = [hook.body["secret"], made.body["key"], orlo.body["token"], session.body["token"], link["accessToken"]]
    uses = [
        api.call("GET", "/orlo/releases", headers={"x-auth-token": orlo.body["token"]}),
        api.call("GET", KEYS, path_params=SP, key=made.body["key"]),  # 403: a scope it lacks
        api.call("GET", SHARED, path_params=link, headers={"authorization": f"Bearer {session.body['token']}"}),
    ]
    reads = [
        api.call("GET", PD, path_params=SP, key=ADMIN_KEY),
        api.call("GET", OG, path_params=SP, key=ADMIN_KEY),
        api.call("GET", KEYS, path_params=SP, key=ADMIN_KEY),
        api.call("GET", DEST, path_params=SP, key=ADMIN_KEY),
        api.call("GET", DEST_ONE, path_params={**SP, "destinationId": hook.body["id"]}, key=ADMIN_KEY),
        api.call(
            "PATCH",
            DEST_ONE,
            path_params={**SP, "destinationId": set_up[4].body["id"]},
            body={"name": "r"},
            key=ADMIN_KEY,
        ),
        api.call("GET", "/api/{spaceId}/settings", path_params=SP, key=ADMIN_KEY),
        api.call("GET", INSIGHT + "/sharing", path_params=where, key=ADMIN_KEY),
    ]
    read_stdout(emitted, capsys)

    assert [u.status for u in uses] == [404, 403, 200]  # Orlo: no releases is a 404
    assert [r.status for r in reads] == [200] * len(reads)
    everything = [github, gitlab, pagerduty, opsgenie, slack_token, password, *issued]
    assert leaks(body_text(added), password) and leaks(body_text(orlo), orlo.body["token"])  # the search sees them
    assert leaks(emitted.text(), *everything) == []
    # Reads: no configured secret again (the sharing read answers the link's token, as PostHog's does).
    check_clean(emitted, reads[:-1] + uses, [github, gitlab, pagerduty, opsgenie, slack_token, password, issued[0]])
