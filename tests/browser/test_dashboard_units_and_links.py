"""The dashboard in headless Chromium, served by the real dashboard Lambda handlers and fed the real API
handlers' answers against moto (Playwright's request routing stands in for API Gateway, so no local
server is needed): the unit an insight's values are shown in, and links built from stored data (a
deployment's ``source_url``, its commits and pull requests), which only ever point at http(s) URLs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.conftest import ADMIN_KEY, Api, Clock
from tests.support.insights import create_insight, create_report

SP = {"spaceId": "Spaces-1"}
INSIGHTS = "/api/projects/{spaceId}/insights"
ORIGIN = "http://dash.test"
SCRIPT_URL = "javascript:fetch('http://dash.test/pwned?'+document.domain)"


@pytest.fixture
def moto_api(space: str, clock: Clock) -> Api:
    """The route functions through template.yaml against moto (tests/conftest.py's Api)."""
    return Api()


def _deploy(api: Api, finished: str, state: str = "Success", **extra: Any) -> str:
    body = {"project": "shop", "environment": "production", "finished_at": finished, "state": state, **extra}
    made = api.call("POST", "/api/{spaceId}/deployments", path_params=SP, body=body, key=ADMIN_KEY)
    assert made.status in (200, 201), made.body
    return str(made.body.get("id") or made.body["deployment"]["id"])


# ------------------------------------------------------------------------------ the dashboard in Chromium
# The API routes the insights view reads, by path pattern (the real route functions answer them).
def _route_of(path: str) -> tuple[str, dict[str, str]] | None:
    parts = path.strip("/").split("/")
    if path == "/app/":
        return "/app/", {}
    if len(parts) == 2 and parts[0] == "app":
        return "/app/{asset}", {"asset": parts[1]}
    if len(parts) == 4 and parts[:2] == ["api", "projects"] and parts[3] == "insights":
        return INSIGHTS, {"spaceId": parts[2]}
    if len(parts) == 3 and parts[0] == "api" and parts[2] == "projects":
        return "/api/{spaceId}/projects", {"spaceId": parts[1]}
    if len(parts) == 4 and parts[0] == "api" and parts[2] == "deployments":
        return "/api/{spaceId}/deployments/{deploymentId}", {"spaceId": parts[1], "deploymentId": parts[3]}
    if len(parts) == 5 and parts[0] == "api" and parts[2] == "deployments" and parts[4] == "corrections":
        return "/api/{spaceId}/deployments/{deploymentId}/corrections", {"spaceId": parts[1], "deploymentId": parts[3]}
    return None


@pytest.fixture
def dashboard(browser: Any, moto_api: Api) -> Iterator[Any]:
    """A Chromium tab whose requests to ORIGIN are answered by the real Lambda handlers (in this process,
    against moto), signed in with ADMIN_KEY (sessionStorage, as the sign-in form leaves it)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    seen: list[str] = []

    def answer(route: Any) -> None:
        request = route.request
        seen.append(request.url)
        url = urlsplit(request.url)
        found = _route_of(url.path)
        if found is None or request.method != "GET":
            route.fulfill(status=404, json={"message": "not routed by this test"})
            return
        template, params = found
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "accept")}
        result = moto_api.call(
            "GET", template, path_params=params, query=dict(parse_qsl(url.query)) or None, headers=headers
        )
        body = result.body if isinstance(result.body, str) else json.dumps(result.body)
        out = {k: v for k, v in result.headers.items() if k.lower() != "content-encoding"}
        route.fulfill(status=result.status, headers=out, body=body)

    context.route(f"{ORIGIN}/**", answer)
    page.add_init_script(
        f"sessionStorage.setItem('dora.apiKey', '{ADMIN_KEY}'); sessionStorage.setItem('dora.spaceId', 'Spaces-1');"
    )
    page.set_default_timeout(30_000)
    page.errors = errors
    page.seen = seen
    try:
        yield page
    finally:
        context.close()


# ------------------------------------------------------------------------------ units
def _recoveries(api: Api) -> None:
    """Two recoveries after failed deployments in the week of 2024-02-18 (3 h and 1 h)."""
    _deploy(api, "2024-02-20T10:00:00Z", "Failed")
    _deploy(api, "2024-02-20T13:00:00Z")
    _deploy(api, "2024-02-21T10:00:00Z", "Failed")
    _deploy(api, "2024-02-21T11:00:00Z")


def _insight_table(dashboard: Any) -> tuple[dict[str, str], str]:
    dashboard.goto(f"{ORIGIN}/app/#/insights")
    dashboard.wait_for_selector("article.insight figure.chart details tbody tr", state="attached")
    cells = dashboard.locator("article.insight figure.chart details tbody tr").evaluate_all(
        "rows => rows.map(r => [r.querySelector('th').textContent, r.querySelector('td').textContent])"
    )
    caption = dashboard.locator("article.insight figure.chart figcaption").text_content()
    return dict(cells), caption


def test_dashboard_shows_a_duration_metrics_count_statistic_as_counts_not_seconds(
    dashboard: Any, moto_api: Api
) -> None:
    # Given two recoveries in the week of 2024-02-18, and a saved insight that counts them (metric
    # recovery_time, statistic count: API.md "statistic count|mean|...")
    _recoveries(moto_api)
    report = create_report(moto_api)
    create_insight(
        moto_api, report, metric="recovery_time", statistic="count", timeRange="LastMonth", granularity="Weekly"
    )
    api_says = moto_api.call("GET", INSIGHTS, path_params=SP, key=ADMIN_KEY).body["results"][0]["result"]
    assert api_says["interval"][3] == "2024-02-18"
    assert api_says["series"][0]["values"][3] == 2.0  # the API: 2 recoveries that week

    # When the insights page is opened
    cells, caption = _insight_table(dashboard)

    # Then the dashboard shows the count the API gives (2), not "2 s" on an axis in hours
    assert dashboard.errors == []
    assert cells["2024-02-18"] == "2", (cells, caption)
    assert "(hours)" not in caption and "(days)" not in caption, caption


def test_a_duration_metrics_other_statistics_stay_durations(dashboard: Any, moto_api: Api) -> None:
    # Given the same recoveries and an insight of their mean (2 hours)
    _recoveries(moto_api)
    report = create_report(moto_api)
    create_insight(
        moto_api, report, metric="recovery_time", statistic="mean", timeRange="LastMonth", granularity="Weekly"
    )
    api_says = moto_api.call("GET", INSIGHTS, path_params=SP, key=ADMIN_KEY).body["results"][0]["result"]
    assert api_says["series"][0]["values"][3] == 7200.0

    cells, caption = _insight_table(dashboard)

    # Then it is a duration, on an axis in hours
    assert dashboard.errors == []
    assert cells["2024-02-18"] != "7200", cells
    assert "(hours)" in caption, caption


# ------------------------------------------------------------------------------ links from stored data
def _source_fact(dashboard: Any, deployment: str) -> Any:
    """The deployment's page, once its "Source" fact is shown; that fact's <dd>."""
    dashboard.goto(f"{ORIGIN}/app/#/deployments/{deployment}")
    source = dashboard.locator("dl.facts dt", has_text="Source").locator("xpath=following-sibling::dd[1]")
    source.wait_for()
    return source


def _hrefs(dashboard: Any) -> list[str]:
    hrefs: list[str] = dashboard.locator("main a[href]").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    return hrefs


def test_a_deployments_source_url_never_becomes_a_script_link(dashboard: Any, moto_api: Api) -> None:
    # Given a deployment whose source_url (any string up to 2048 characters) is a javascript: URL
    deployment = _deploy(
        moto_api, "2024-02-20T10:00:00Z", source_name="CI run", source_url=SCRIPT_URL, commit_sha="a" * 40
    )
    # When its page is opened and its "Source" followed
    source = _source_fact(dashboard, deployment)
    assert source.text_content() == "CI run"
    source.get_by_text("CI run").click()
    dashboard.wait_for_timeout(1500)
    # Then no script ran
    assert not any("pwned" in url for url in dashboard.seen), dashboard.seen
    # and the dashboard renders the source as plain text, not a link, and no link on the page is a script
    # URL (every link is in-app, or http(s))
    assert source.locator("a").count() == 0
    hrefs = _hrefs(dashboard)
    assert hrefs, hrefs
    for href in hrefs:
        assert href.startswith("#") or href.split(":", 1)[0].lower() in ("http", "https"), href
    assert dashboard.errors == []


@pytest.mark.parametrize(
    "url",
    [
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "//evil.test/x",
        "/relative/path",
        "javascript://github.com/%0Aalert(1)",
    ],
)
def test_no_url_but_http_or_https_becomes_a_link(dashboard: Any, moto_api: Api, url: str) -> None:
    deployment = _deploy(
        moto_api,
        "2024-02-20T10:00:00Z",
        source_name="CI run",
        source_url=url,
        commit_sha="b" * 40,
        repository="acme/shop",
    )
    source = _source_fact(dashboard, deployment)
    assert source.locator("a").count() == 0, source.inner_html()
    for href in _hrefs(dashboard):
        assert href.startswith("#") or href.split(":", 1)[0].lower() in ("http", "https"), href
    # a code host named only by a script URL's host is no code host: the commit is not linked
    assert dashboard.locator("a", has_text="b" * 40).count() == 0
    assert dashboard.errors == []


def test_an_https_source_url_and_its_code_host_are_linked(dashboard: Any, moto_api: Api) -> None:
    # Given a deployment from a GitHub Actions run, naming its commit and repository
    run = "https://github.com/acme/shop/actions/runs/42"
    deployment = _deploy(
        moto_api,
        "2024-02-20T10:00:00Z",
        source_name="CI run",
        source_url=run,
        commit_sha="c" * 40,
        repository="acme/shop",
    )
    source = _source_fact(dashboard, deployment)
    # Then its source is a link to the run, and its commit a link on GitHub
    assert source.locator("a").get_attribute("href") == run
    commit = dashboard.locator("dd a", has=dashboard.locator("code", has_text="c" * 40))
    assert commit.get_attribute("href") == "https://github.com/acme/shop/commit/" + "c" * 40
    assert commit.get_attribute("rel") == "noreferrer noopener"
    assert dashboard.errors == []
