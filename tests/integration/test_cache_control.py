"""No cache may keep an API answer: every answer says ``Cache-Control: no-store`` unless its route sets its
own caching (the dashboard's and the API docs' pages and assets). API answers hold a space's private data
or secrets (a share link's access token, a share session token, a password-protected insight), are read
with credentials a shared cache does not know as credentials (``X-Api-Key``, a share session), and an
error cached would outlive the change that ends it (handlers.http ``_no_store``)."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_KEY, Api, HttpResult
from tests.support.insights import create_insight, create_report

SP = {"spaceId": "Spaces-1"}
INSIGHTS = "/api/projects/{spaceId}/insights"
ONE = INSIGHTS + "/{insightId}"
INSIGHT_1 = {**SP, "insightId": "1"}


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """scrypt at N=2^14 (each hash stores its cost), as tests/integration/test_insights.py does."""
    from dora_insights.logic import insights

    monkeypatch.setattr(insights, "SCRYPT_COST", insights.ScryptCost(n=2**14, r=8, p=1))


def _shared_with_password(api: Api) -> tuple[dict[str, str], str]:
    """Insight 1 shared behind a password; (link path params, a session token)."""
    report = create_report(api)
    create_insight(api, report, metric="deployment_frequency")
    api.call(
        "PATCH",
        ONE + "/sharing",
        path_params=INSIGHT_1,
        body={"enabled": True, "password_required": True},
        key=ADMIN_KEY,
    )
    added = api.call(
        "POST", ONE + "/sharing/passwords", path_params=INSIGHT_1, body={"raw_password": "correct horse"}, key=ADMIN_KEY
    )
    assert added.status == 201, added.body
    token = api.call("GET", ONE + "/sharing", path_params=INSIGHT_1, key=ADMIN_KEY).body["access_token"]
    link = {"accessToken": token}
    login = api.call("POST", "/shared/{accessToken}/login", path_params=link, body={"password": "correct horse"})
    assert login.status == 200, login.body
    return link, str(login.body["token"])


def _policy(answer: HttpResult) -> str:
    return answer.header("Cache-Control") or ""


def test_answers_holding_secrets_or_private_data_forbid_caching(api: Api) -> None:
    link, session = _shared_with_password(api)
    # The sharing configuration holds the link's access token (a bearer secret for the insight)
    sharing = api.call("GET", ONE + "/sharing", path_params=INSIGHT_1, key=ADMIN_KEY)
    # the login answer holds a 24-hour session token
    login = api.call("POST", "/shared/{accessToken}/login", path_params=link, body={"password": "correct horse"})
    # a password-protected insight, opened with its session
    opened = api.call("GET", "/shared/{accessToken}", path_params=link, headers={"Authorization": f"Bearer {session}"})
    # a space's figures read with X-Api-Key (a header shared caches do not know as a credential)
    summary = api.call("GET", "/api/{spaceId}/summary", path_params=SP, headers={"X-Api-Key": ADMIN_KEY})
    statuses = [r.status for r in (sharing, login, opened, summary)]
    assert statuses == [200, 200, 200, 200], statuses
    policies = {
        name: _policy(r)
        for name, r in (("sharing", sharing), ("login", login), ("shared", opened), ("summary", summary))
    }
    assert all("no-store" in p for p in policies.values()), policies


def test_every_api_answer_forbids_caching_errors_and_csv_too(api: Api) -> None:
    link, _ = _shared_with_password(api)
    token = link["accessToken"]
    unknown = token[:-1] + ("A" if token[-1] != "A" else "B")
    answers = {
        "csv export": api.call("GET", INSIGHTS, path_params=SP, query={"format": "csv"}, key=ADMIN_KEY),
        "new password": api.call("POST", ONE + "/sharing/passwords", path_params=INSIGHT_1, body={}, key=ADMIN_KEY),
        "api keys": api.call("GET", "/api/{spaceId}/apikeys", path_params=SP, key=ADMIN_KEY),
        "no key (401)": api.call("GET", "/api/{spaceId}/summary", path_params=SP),
        "wrong key (401)": api.call("GET", "/api/{spaceId}/summary", path_params=SP, key="not-a-key"),
        "unknown insight (404)": api.call("GET", ONE, path_params={**SP, "insightId": "99"}, key=ADMIN_KEY),
        "invalid body (400)": api.call("POST", INSIGHTS, path_params=SP, body={"query": {"kind": 3}}, key=ADMIN_KEY),
        "protected, no session (401)": api.call("GET", "/shared/{accessToken}", path_params=link),
        "wrong password (401)": api.call(
            "POST", "/shared/{accessToken}/login", path_params=link, body={"password": "wrong"}
        ),
        "too short a link (404)": api.call("GET", "/shared/{accessToken}", path_params={"accessToken": "nope"}),
        "unknown link (404)": api.call("GET", "/shared/{accessToken}", path_params={"accessToken": unknown}),
    }
    statuses = {name: a.status for name, a in answers.items()}
    assert statuses == {
        "csv export": 200,
        "new password": 201,
        "api keys": 200,
        "no key (401)": 401,
        "wrong key (401)": 401,
        "unknown insight (404)": 404,
        "invalid body (400)": 400,
        "protected, no session (401)": 401,
        "wrong password (401)": 401,
        "too short a link (404)": 404,
        "unknown link (404)": 404,
    }
    assert (answers["csv export"].header("Content-Type") or "").startswith("text/csv")
    policies = {name: _policy(a) for name, a in answers.items()}
    assert policies == dict.fromkeys(answers, "no-store")


def test_the_dashboards_own_caching_is_kept(api: Api) -> None:
    # The page is revalidated (no-cache with an ETag) and its hashed assets cached for a year: their own
    # policies, not no-store (tests/unit/test_app_serving.py checks them in full)
    page = api.call("GET", "/app/")
    redirect = api.call("GET", "/app")
    missing = api.call("GET", "/app/{asset}", path_params={"asset": "app.000000000000.js"})
    assert (page.status, redirect.status, missing.status) == (200, 308, 404)
    assert _policy(page) == "no-cache"
    assert _policy(redirect) == "max-age=3600"
    assert _policy(missing) == "no-store"  # an error: nothing to keep
