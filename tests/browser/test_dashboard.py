"""The dashboard (``/app/``) and the API docs (``/docs``) in headless Chromium against the local server:
what a person sees equals what the API answers, errors are shown, and the pages are usable by keyboard,
at 360 px, in both themes, within their weight. A screenshot of each page goes to tests/output/screenshots/.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from dora_insights.logic.freshness import SETTLE
from tests.browser.conftest import KEY, SPACE, TIMEOUT, Api, screenshot
from tests.support.server import Served

TODAY = datetime.now(UTC).date()
BASE = datetime.combine(TODAY - timedelta(days=20), datetime.min.time(), tzinfo=UTC)
FROM, TO = (BASE - timedelta(days=3)).date(), TODAY
REPO = "acme/shop"
WAIT_MS = 30_000
HEADLINE_METRICS = ("deployment_frequency", "lead_time", "change_failure_rate", "recovery_time", "rework_rate")


def _at(days: float, hours: float = 0) -> str:
    return (BASE + timedelta(days=days, hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha(n: int) -> str:
    return f"{n:040x}"


@pytest.fixture(scope="module")
def seeded(api: Api) -> dict[str, Any]:
    """A small history: commits and a pull request (the changes route), deployments of two projects with
    a failure and a recovery, an incident, a report and a saved insight; the figures computed."""
    commits = [
        {"repository": REPO, "branch": "main", "sha": _sha(n), "timestamp": _at(n / 3), "message": f"change {n}"}
        for n in range(1, 7)
    ]
    pull = {
        "repository": REPO,
        "number": 7,
        "title": "A feature",
        "base_ref": "main",
        "merge_commit_sha": _sha(6),
        "created_at": _at(-2),
        "merged_at": _at(1),
    }
    api.post(f"/api/{SPACE}/changes", {"commits": commits, "pull_requests": [pull]})
    shop = [(2, 3, "Success"), (4, 5, "Failed"), (5, 6, "Success")]
    ids = []
    for n, (days, sha, state) in enumerate(shop):
        body = {
            "project": "shop",
            "environment": "production",
            "finished_at": _at(days, 12),
            "started_at": _at(days, 11.75),
            "version": f"1.0.{n}",
            "state": state,
            "commit_sha": _sha(sha),
            "repository": REPO,
        }
        ids.append(api.post(f"/api/{SPACE}/deployments", body)["id"])
    for n, days in enumerate((6, 9, 13)):
        body = {"project": "cart", "environment": "production", "finished_at": _at(days, 9), "version": f"2.0.{n}"}
        api.post(f"/api/{SPACE}/deployments", body)
    failure = {"project": "shop", "environment": "production", "started_at": _at(5, 13), "finished_at": _at(5, 15)}
    api.post(f"/api/{SPACE}/failures", failure)
    report = api.post(f"/api/{SPACE}/insights/reports", {"Name": "Everything"})["Id"]
    # The schedule runs minutes after the writes; run at once, it would keep their marks (younger than
    # SETTLE) and every read would compute the figures again, each with its own as_of.
    time.sleep(SETTLE.total_seconds())
    api.recompute()
    insight = {
        "name": "Deployments per week",
        "query": {
            "kind": "DoraMetricsQuery",
            "reportId": report,
            "metric": "deployment_frequency",
            "timeRange": "LastMonth",
            "granularity": "Weekly",
        },
    }
    api.post(f"/api/projects/{SPACE}/insights", insight)
    return {"deployments": ids, "report": report}


class Page:
    """A browser tab on the dashboard, recording script errors and CSP violations."""

    def __init__(self, page: Any, url: str) -> None:
        self.page = page
        self.url = url
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.on("console", self._console)
        page.set_default_timeout(WAIT_MS)

    def _console(self, message: Any) -> None:
        text = message.text
        if message.type == "error" and not text.startswith("Failed to load resource"):
            self.errors.append(text)  # CSP violations are console errors
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.errors.append(text)

    def open(self, hash_: str = "") -> None:
        self.page.goto(f"{self.url}/app/{hash_}")

    def sign_in(self, key: str = KEY, space: str = SPACE) -> None:
        self.page.fill("input[name=spaceId]", space)
        self.page.fill("input[name=apiKey]", key)
        self.page.click("form.signin button[type=submit]")

    def go(self, hash_: str) -> None:
        """Open another view by its hash (see ``moving``)."""
        if self.page.evaluate("window.location.hash") != hash_:
            self.moving(lambda: self.page.evaluate("h => { window.location.hash = h; }", hash_))

    def moving(self, action: Callable[[], object]) -> None:
        """Run ``action``, which opens another view, and wait until the current view is gone: what the
        caller waits for next is then the new view's, not the old one's."""
        self.page.evaluate(
            """() => { const marker = document.createElement("i"); marker.id = "stale-view";
                       document.getElementById("main").appendChild(marker); }"""
        )
        action()
        self.page.locator("#stale-view").wait_for(state="detached")

    def text(self, selector: str) -> str:
        return str(self.page.inner_text(selector))


@pytest.fixture
def tab(browser: Any, served: Served, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh context (empty sessionStorage) at 1280 px, light theme, unless the test asks otherwise."""
    options = getattr(request, "param", {}) or {}
    context = browser.new_context(
        viewport={"width": options.get("width", 1280), "height": 900},
        color_scheme=options.get("scheme", "light"),
    )
    page = Page(context.new_page(), served.url)
    try:
        yield page
    finally:
        context.close()


def _signed_in(tab: Page, hash_: str = "") -> None:
    tab.open(hash_)
    tab.sign_in()
    tab.page.wait_for_selector("#nav:not([hidden])")


def _overview_hash() -> str:
    return f"#/overview?from={FROM}&to={TO}"


def _summary_params(**extra: str) -> dict[str, str]:
    return {"from": f"{FROM}T00:00:00Z", "to": f"{TO + timedelta(days=1)}T00:00:00Z", **extra}


# ----------------------------------------------------------------------------- numbers as people read them
def _js_round(value: float) -> int:
    return math.floor(value + 0.5)


def duration(seconds: float | None) -> str:
    """app.js ``duration``: two units at most."""
    if seconds is None:
        return "—"
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)
    whole = _js_round(s)  # rounded first: 59.6 s reads "1 min", and what rounds to 0 has no sign
    if whole < 60:
        return f"{sign if whole else ''}{whole} s"
    minutes = _js_round(s / 60)
    if minutes < 60:
        return f"{sign}{minutes} min"
    if minutes < 24 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{sign}{hours} h" + (f" {rest} min" if rest else "")
    days, hours = divmod(_js_round(s / 3600), 24)
    return f"{sign}{days} d" + (f" {hours} h" if hours else "")


def headline(metric: str, summary: dict[str, Any]) -> tuple[str, Any, str]:
    """(value text, raw value, tier text) of a headline figure, from /summary."""
    data = summary[metric]
    if metric == "deployment_frequency":
        per_day = data["per_day"]
        text = f"{per_day:.1f} per day" if per_day >= 1 else f"{per_day * 7:.2f} per week"
        return text, per_day, data["tier"] or "no data"
    if metric in ("lead_time", "recovery_time"):
        return duration(data["median_seconds"]), data["median_seconds"], data["tier"] or "no data"
    has_data = data["deployments"] > 0
    text = f"{data['rate'] * 100:.1f} %" if has_data else "—"
    tier = data.get("tier") or ("no DORA tier" if has_data and metric == "rework_rate" else "no data")
    return text, data["rate"], tier


# ----------------------------------------------------------------------------- sign-in and the overview
def test_sign_in_then_the_headline_figures_equal_the_summary(tab: Page, api: Api, seeded: dict[str, Any]) -> None:
    tab.open(_overview_hash())
    assert tab.page.locator("input[name=apiKey]").get_attribute("type") == "password"
    screenshot(tab.page, "sign-in")
    tab.sign_in()
    tab.page.wait_for_selector("[data-metric][data-state=ready]")
    summary = api.get(f"/api/{SPACE}/summary", **_summary_params())
    assert summary["deployments"] == 6 and summary["pending"] == 0
    for metric in HEADLINE_METRICS:
        card = tab.page.locator(f"[data-metric={metric}]")
        assert card.count() == 1, metric
        value, raw, tier = headline(metric, summary)
        text = card.inner_text()
        assert value in text and tier in text, (metric, value, tier, text)
        assert card.get_attribute("data-value") == ("" if raw is None else _js_number(raw)), metric
        assert card.get_attribute("data-tier") == (summary[metric].get("tier") or "")
    assert summary["lead_time"]["tier"] and summary["change_failure_rate"]["tier"]  # the history has tiers
    freshness = tab.text("#freshness .freshness")
    assert freshness.startswith("Figures as of ") and "; 0 streams pending." in freshness
    assert tab.page.get_attribute("#freshness .freshness", "data-as-of") == summary["as_of"]
    tab.page.wait_for_selector("#trends figure.chart")
    screenshot(tab.page, "overview")
    # The key is in this tab's session storage only: not in the URL, not in a cookie.
    assert tab.page.evaluate("sessionStorage.getItem('dora.apiKey')") == KEY
    assert KEY not in tab.page.url
    assert tab.page.context.cookies() == []
    assert tab.errors == []


def _js_number(value: float) -> str:
    """How JavaScript's String(number) writes the API's numbers (integers without '.0')."""
    return str(int(value)) if float(value).is_integer() else repr(value)


def test_the_weekly_trends_have_one_point_per_week_with_the_data_as_tables(tab: Page, seeded: dict[str, Any]) -> None:
    _signed_in(tab, _overview_hash())
    tab.page.wait_for_selector("#trends figure.chart[data-points]")
    first_sunday = FROM - timedelta(days=(FROM.weekday() + 1) % 7)
    weeks = math.ceil(((TO - first_sunday).days + 1) / 7)
    charts = tab.page.locator("#trends figure.chart")
    assert charts.count() == 5
    for n in range(5):
        chart = charts.nth(n)
        assert chart.get_attribute("data-points") == str(weeks)
        assert chart.locator("details tbody tr").count() == weeks
    # The table of successful deployments per week adds up to the summary's count.
    cells = tab.page.locator("[data-chart=deployment_frequency] tbody td")  # in a closed <details>: textContent
    counts = [int(c) for c in cells.evaluate_all("cells => cells.map(c => c.textContent)")]
    assert sum(counts) == 5
    assert tab.errors == []


def test_a_project_page_shows_its_own_figures_and_deployments(tab: Page, api: Api, seeded: dict[str, Any]) -> None:
    _signed_in(tab, f"#/projects?from={FROM}&to={TO}")
    table = tab.page.locator("main table")
    tab.page.wait_for_selector("main [aria-busy=false] table")
    rows = table.locator("tbody tr")
    assert rows.count() == 2
    assert sorted(rows.locator("th").all_inner_texts()) == ["cart", "shop"]
    screenshot(tab.page, "projects")
    sort = table.locator("th button", has_text="Lead time")
    header = table.locator("thead th").nth(3)
    for direction in ("ascending", "descending"):
        sort.click()
        assert header.get_attribute("aria-sort") == direction
        names = rows.locator("th").all_inner_texts()
        lead = {
            name: api.get(f"/api/{SPACE}/summary", **_summary_params(project=name))["lead_time"]["median_seconds"]
            for name in names
        }
        known = [lead[n] for n in names if lead[n] is not None]
        assert known == sorted(known, reverse=direction == "descending"), (direction, lead)
    tab.moving(lambda: rows.locator("th a", has_text="shop").click())
    tab.page.wait_for_selector("[data-metric=lead_time][data-state=ready]")
    assert tab.text("h1") == "Project shop"
    shop_id = next(p["Id"] for p in api.get(f"/api/{SPACE}/projects")["Items"] if p["Name"] == "shop")
    summary = api.get(f"/api/{SPACE}/summary", **_summary_params(project=shop_id))
    value, _, tier = headline("lead_time", summary)
    assert value in tab.text("[data-metric=lead_time]") and tier in tab.text("[data-metric=lead_time]")
    tab.page.wait_for_selector("#h-recent ~ .table-wrap tbody tr")
    assert tab.page.locator("#h-recent ~ .table-wrap tbody tr").count() == 3
    screenshot(tab.page, "project")
    assert tab.errors == []


# ----------------------------------------------------------------------------- deployments and failures
def test_a_deployments_explanation_lists_the_commits_the_api_lists(tab: Page, api: Api, seeded: dict[str, Any]) -> None:
    deployment_id = seeded["deployments"][2]  # shop 1.0.2: recovers from 1.0.1, after the incident
    deployment = api.get(f"/api/{SPACE}/deployments/{deployment_id}")
    attribution = deployment["attribution"]
    assert attribution["commits"] and attribution["pull_requests"]
    _signed_in(tab, f"#/deployments/{deployment_id}")
    tab.page.wait_for_selector("#attribution")
    shown = tab.page.locator("#commits li").evaluate_all("items => items.map(i => i.dataset.commit)")
    assert shown == attribution["commits"]
    for sha in attribution["commits"]:
        assert sha in tab.text("#commits")
    pulls = tab.page.locator("#pull-requests li").evaluate_all("items => items.map(i => Number(i.dataset.pullRequest))")
    assert pulls == [p["number"] for p in attribution["pull_requests"]]
    figures = deployment["figures"]
    lead = tab.text("#lead-time")
    assert duration(figures["lead_time_seconds"]) in lead and "earliest change" in lead
    assert duration(figures["time_to_recovery_seconds"]) in lead
    failure = tab.text("#change-failure")
    assert f"rule {figures['change_failure_rule']}" in failure
    assert "first successful deployment after a change failure" in failure
    assert tab.page.locator("#corrections").is_hidden() or "No corrections" in tab.text("#corrections")
    screenshot(tab.page, "deployment")
    assert tab.errors == []


def test_the_deployments_list_filters_and_pages_with_the_api(tab: Page, api: Api, seeded: dict[str, Any]) -> None:
    _signed_in(tab, "#/deployments?limit=25")
    tab.page.wait_for_selector("main section[aria-busy=false] table")
    listed = api.get(f"/api/{SPACE}/deployments", limit=25)["items"]
    rows = tab.page.locator("main tbody tr")
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.deployment)") == [d["id"] for d in listed]
    screenshot(tab.page, "deployments")
    tab.page.select_option("select[name=state]", "Failed")
    tab.moving(lambda: tab.page.click("form.filters button[type=submit]"))
    assert "state=Failed" in tab.page.url
    tab.page.wait_for_selector("main section[aria-busy=false] table")
    assert rows.count() == 1 and "Failed" in rows.first.inner_text()
    # Its row flags it as the change failure the recompute found (the list answers the recomputed figures).
    assert rows.first.locator(".flag-bad").inner_text() == "change failure"
    # Paging, two per page: the next page is the API's next cursor, and the previous page is the first again.
    tab.go("#/deployments?limit=2")
    tab.page.wait_for_selector("main section[aria-busy=false] table")
    first = api.get(f"/api/{SPACE}/deployments", limit=2)
    second = api.get(f"/api/{SPACE}/deployments", limit=2, cursor=first["next_cursor"])
    ids = "rows => rows.map(r => r.dataset.deployment)"
    assert rows.evaluate_all(ids) == [d["id"] for d in first["items"]]
    tab.moving(lambda: tab.page.click("a[rel=next]"))
    assert "cursor=" in tab.page.url
    tab.page.wait_for_selector("main section[aria-busy=false] table")
    assert rows.evaluate_all(ids) == [d["id"] for d in second["items"]]
    tab.moving(lambda: tab.page.get_by_text("Previous page").click())
    assert "cursor=" not in tab.page.url
    tab.page.wait_for_selector("main section[aria-busy=false] table")
    assert rows.evaluate_all(ids) == [d["id"] for d in first["items"]]
    assert tab.errors == []


def test_failures_are_listed_with_their_time_to_restore(tab: Page, seeded: dict[str, Any]) -> None:
    _signed_in(tab, "#/failures")
    tab.page.wait_for_selector("main section[aria-busy=false] table")
    row = tab.page.locator("main tbody tr").first
    assert "2 h" in row.inner_text() and "shop" in row.inner_text()
    screenshot(tab.page, "failures")
    assert tab.errors == []


def test_corrections_show_when_the_route_answers_and_hide_when_it_does_not(
    tab: Page, api: Api, seeded: dict[str, Any]
) -> None:
    deployment_id = seeded["deployments"][0]
    corrections = requests.get(
        f"{api.url}/api/{SPACE}/deployments/{deployment_id}/corrections",
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=TIMEOUT,
    )
    if corrections.status_code == 200:  # the service has corrections: make one, and see it listed
        patched = api.session.patch(
            f"{api.url}/api/{SPACE}/deployments/{deployment_id}", json={"change_failure": True}, timeout=TIMEOUT
        )
        assert patched.status_code == 200, patched.text
    _signed_in(tab, f"#/deployments/{deployment_id}")
    tab.page.wait_for_selector("#attribution")
    if corrections.status_code == 200:
        tab.page.wait_for_selector("#corrections:not([hidden]) li[data-correction]")
        listed = api.get(f"/api/{SPACE}/deployments/{deployment_id}/corrections")["items"]
        shown = tab.page.locator("#corrections li[data-correction]")
        assert shown.evaluate_all("items => items.map(i => i.dataset.correction)") == [c["id"] for c in listed]
        assert "Corrected" in shown.first.inner_text()
        assert "Override" in tab.text("#change-failure")
        screenshot(tab.page, "deployment-corrected")
    # A service without the route (404 or 405): the section stays hidden, the rest of the page is there.
    for status in (404, 405):
        tab.page.route("**/corrections*", _answering(status, {"message": "Not Found"}))
        tab.page.reload()
        tab.page.wait_for_selector("#attribution")
        tab.page.wait_for_timeout(300)
        assert tab.page.locator("#corrections").is_hidden()
        tab.page.unroute("**/corrections*")
    assert [e for e in tab.errors if "404" not in e and "405" not in e] == []


def _answering(status: int, body: dict[str, Any]) -> Any:
    """A Playwright route handler that answers every request it gets with ``status`` and ``body``."""

    def answer(route: Any) -> None:
        route.fulfill(status=status, json=body)

    return answer


# ----------------------------------------------------------------------------- reports and insights
@pytest.mark.parametrize(
    ("split", "granularity", "time_range"),
    [("None", "Weekly", "LastQuarter"), ("None", "Daily", "LastMonth"), ("Project", "Monthly", "LastYear")],
)
def test_a_reports_chart_has_one_point_per_interval(
    tab: Page, api: Api, seeded: dict[str, Any], split: str, granularity: str, time_range: str
) -> None:
    report = seeded["report"]
    metrics = api.get(
        f"/api/{SPACE}/insights/reports/{report}/metrics", split=split, granularity=granularity, timeRange=time_range
    )
    intervals = len(metrics["Series"][0]["Intervals"])
    _signed_in(tab, f"#/reports/{report}?split={split}&granularity={granularity}&timeRange={time_range}")
    tab.page.wait_for_selector("#report-metrics[aria-busy=false] figure.chart[data-points]")
    charts = tab.page.locator("#report-metrics figure.chart")
    assert charts.count() == 8
    for n in range(charts.count()):
        chart = charts.nth(n)
        chart.wait_for()
        assert chart.get_attribute("data-points") == str(intervals), chart.get_attribute("data-chart")
        assert chart.get_attribute("data-series") == str(len(metrics["Series"]))
        assert chart.locator("details tbody tr").count() == intervals
    counts = tab.page.locator("[data-chart=deployments] details tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.querySelectorAll('td')).map(td => Number(td.textContent)))"
    )
    expected = [
        [s["Intervals"][i]["NumberOfSuccessfulDeployments"] for s in metrics["Series"]] for i in range(intervals)
    ]
    assert counts == expected
    assert tab.text("h1") == "Report Everything"
    screenshot(tab.page, f"report-{split.lower()}-{granularity.lower()}")
    assert tab.errors == []


def test_the_reports_list_and_insights_render(tab: Page, api: Api, seeded: dict[str, Any]) -> None:
    _signed_in(tab, "#/reports")
    tab.page.wait_for_selector("main section[aria-busy=false] table")
    assert "Everything" in tab.text("main table")
    screenshot(tab.page, "reports")
    tab.go("#/insights")
    tab.page.wait_for_selector("article.insight figure.chart[data-points]")
    insight = api.get(f"/api/projects/{SPACE}/insights")["results"][0]
    chart = tab.page.locator("article.insight figure.chart").first
    assert chart.get_attribute("data-points") == str(len(insight["result"]["interval"]))
    assert "Deployments per week" in tab.text("article.insight h2")
    screenshot(tab.page, "insights")
    assert tab.errors == []


# ----------------------------------------------------------------------------- errors are shown
def test_a_wrong_key_shows_a_clear_message(tab: Page, seeded: dict[str, Any]) -> None:
    tab.open()
    tab.sign_in(key="not-a-key")
    message = tab.page.locator("#signin-message .error-box")
    message.wait_for()
    assert "refused (401" in message.inner_text() and "wrong or has been revoked" in message.inner_text()
    assert tab.page.evaluate("sessionStorage.getItem('dora.apiKey')") is None
    screenshot(tab.page, "sign-in-refused")
    assert tab.errors == []


def test_a_revoked_key_signs_out_with_a_clear_message(tab: Page, api: Api, seeded: dict[str, Any]) -> None:
    created = api.post(f"/api/{SPACE}/apikeys", {"name": "reader", "scopes": ["deployments:read", "reports:read"]})
    tab.open(_overview_hash())
    tab.sign_in(key=created["key"])
    tab.page.wait_for_selector("[data-metric][data-state=ready]")
    revoked = api.session.delete(f"{api.url}/api/{SPACE}/apikeys/{created['id']}", timeout=TIMEOUT)
    assert revoked.status_code in (200, 204), revoked.text
    tab.go("#/deployments")  # the next request (or one still loading) meets the revoked key
    message = tab.page.locator("#signin-message .error-box")
    message.wait_for()
    assert "refused the key (401" in message.inner_text() and "revoked" in message.inner_text()
    assert tab.page.locator("input[name=apiKey]").is_visible()
    assert tab.page.evaluate("sessionStorage.getItem('dora.apiKey')") is None
    assert tab.errors == []


def test_an_api_error_is_shown_never_swallowed(tab: Page, seeded: dict[str, Any]) -> None:
    _signed_in(tab, "#/deployments/no-such-deployment")
    box = tab.page.locator("main .error-box[role=alert]")
    box.wait_for()
    assert "404" in box.inner_text() and "no-such-deployment" in box.inner_text()
    tab.page.route("**/summary*", _answering(500, {"message": "the table is on fire", "errors": []}))
    tab.go(_overview_hash())
    box = tab.page.locator("#headline .error-box[role=alert]")
    box.wait_for()
    assert "500" in box.inner_text() and "the table is on fire" in box.inner_text()
    assert box.locator("button", has_text="Try again").is_visible()
    screenshot(tab.page, "api-error")
    tab.page.unroute("**/summary*")
    tab.page.route("**/api/**", lambda route: route.abort("connectionrefused"))
    tab.go("#/failures")
    box = tab.page.locator("main .error-box[role=alert]")
    box.wait_for()
    assert "could not be reached" in box.inner_text()


def test_sign_out_forgets_the_key(tab: Page, seeded: dict[str, Any]) -> None:
    _signed_in(tab, _overview_hash())
    tab.page.click("#sign-out")
    tab.page.locator("input[name=apiKey]").wait_for()
    assert tab.page.evaluate("sessionStorage.getItem('dora.apiKey')") is None
    assert tab.page.locator("#nav").is_hidden()


# ----------------------------------------------------------------------------- built like a product
def _focused(tab: Page) -> str:
    return str(
        tab.page.evaluate(
            """() => { const e = document.activeElement; if (!e) return "";
                return e.getAttribute("name") || e.id || (e.textContent || "").trim() || e.tagName; }"""
        )
    )


def test_keyboard_navigation_reaches_the_main_controls(tab: Page, seeded: dict[str, Any]) -> None:
    tab.open(_overview_hash())
    tab.page.locator("input[name=spaceId]").wait_for()
    # Sign in by keyboard alone.
    tab.page.keyboard.press("Tab")  # the skip link
    reached = []
    for _ in range(12):
        tab.page.keyboard.press("Tab")
        reached.append(_focused(tab))
        if reached[-1] == "apiKey":
            break
    assert "spaceId" in reached and reached[-1] == "apiKey", reached
    tab.page.keyboard.type(KEY)
    tab.page.keyboard.press("Enter")
    tab.page.wait_for_selector("[data-metric][data-state=ready]")
    assert _focused(tab) == "Overview"  # focus moves to the new page's heading
    # From the top of the page: skip link, every section of the navigation, sign-out, every filter, Apply.
    tab.page.reload()
    tab.page.wait_for_selector("[data-metric][data-state=ready]")
    seen: list[str] = []
    for _ in range(80):
        tab.page.keyboard.press("Tab")
        focused = _focused(tab)
        if not seen or seen[-1] != focused:  # a date input takes one Tab per part (month, day, year)
            seen.append(focused)
        if focused == "Apply":
            break
    expected = ["skip-link", "Overview", "Projects", "Deployments", "Failures", "Reports", "Insights"]
    expected += ["API docs", "sign-out", "from", "to", "project", "environment", "benchmark", "Apply"]
    assert [s for s in seen if s in expected] == expected, seen
    # A section opens with Enter, and focus lands on its heading.
    tab.page.keyboard.press("Shift+Tab")
    for _ in range(20):
        if _focused(tab) == "Deployments":
            break
        tab.page.keyboard.press("Shift+Tab")
    tab.moving(lambda: tab.page.keyboard.press("Enter"))
    assert tab.page.url.endswith("#/deployments")
    tab.page.locator("main h1:focus", has_text="Deployments").wait_for()  # (wait_for_function needs eval: CSP)
    assert _focused(tab) == "Deployments"
    # The chart tables open from the keyboard too.
    tab.go(_overview_hash())
    tab.page.wait_for_selector("#trends figure.chart")
    summary = tab.page.locator("#trends details summary").first
    summary.focus()
    tab.page.keyboard.press("Enter")
    assert tab.page.locator("#trends details").first.get_attribute("open") is not None
    assert tab.errors == []


@pytest.mark.parametrize("tab", [{"width": 360, "scheme": "light"}], indirect=True)
def test_every_page_works_at_360_px_wide(tab: Page, seeded: dict[str, Any]) -> None:
    _signed_in(tab, _overview_hash())
    pages = {
        "overview": (_overview_hash(), "#trends figure.chart[data-points]"),
        "deployments": ("#/deployments", "main section[aria-busy=false]"),
        "deployment": (f"#/deployments/{seeded['deployments'][2]}", "#attribution"),
        "projects": (f"#/projects?from={FROM}&to={TO}", "main [aria-busy=false] table"),
        "report": (f"#/reports/{seeded['report']}", "#report-metrics figure.chart[data-points]"),
        "insights": ("#/insights", "article.insight"),
        "failures": ("#/failures", "main section[aria-busy=false]"),
    }
    for name, (hash_, ready) in pages.items():
        tab.go(hash_)
        tab.page.wait_for_selector(ready)
        width = tab.page.evaluate("document.documentElement.scrollWidth")
        wider = tab.page.evaluate(_WIDER_THAN_360)
        assert width <= 360, (name, width, wider)  # wide tables scroll inside their own box, the page does not
        screenshot(tab.page, f"{name}-360px")
        # Ids are random: a page that fits with these may not with others. Every long unbroken token
        # (ids, shas, versions) outside the scrolling boxes becomes as wide as its length can be.
        tab.page.evaluate(_WIDEST_TOKENS)
        width = tab.page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, (name, "with the widest ids", width, tab.page.evaluate(_WIDER_THAN_360))
    assert tab.errors == []


_WIDER_THAN_360 = """() => Array.from(document.querySelectorAll("body *"))
    .filter(e => e.getBoundingClientRect().right > 361 && !e.closest(".table-wrap, .plot"))
    .slice(0, 5).map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""


_WIDEST_TOKENS = """() => {
    const walker = document.createTreeWalker(document.getElementById("main"), NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (!node.parentElement.closest(".table-wrap, .plot")) {
            node.textContent = node.textContent.replace(/[0-9A-Za-z_.:-]{12,}/g, t => "W".repeat(t.length));
        }
    }
}"""


@pytest.mark.parametrize("tab", [{"scheme": "dark"}], indirect=True)
def test_the_dark_theme_follows_the_system(tab: Page, seeded: dict[str, Any]) -> None:
    _signed_in(tab, _overview_hash())
    tab.page.wait_for_selector("#trends figure.chart[data-points]")
    background = tab.page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(13, 17, 23)"
    screenshot(tab.page, "overview-dark")
    tab.page.emulate_media(color_scheme="light")
    assert tab.page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"
    tab.page.wait_for_selector("#trends figure.chart[data-points]")
    assert tab.errors == []


def test_the_dashboard_weighs_under_250_kb_on_the_wire(tab: Page, seeded: dict[str, Any]) -> None:
    _signed_in(tab, _overview_hash())
    tab.page.wait_for_selector("#trends figure.chart[data-points]")
    tab.page.reload()  # a fresh load: the page and every asset, from this origin only
    tab.page.wait_for_selector("[data-metric][data-state=ready]")
    entries = tab.page.evaluate(
        """() => [performance.getEntriesByType("navigation")[0], ...performance.getEntriesByType("resource")]
            .map(e => ({name: e.name, bytes: e.encodedBodySize, type: e.initiatorType}))"""
    )
    assets = [e for e in entries if "/api/" not in e["name"]]
    assert all(e["name"].startswith(tab.url + "/app/") for e in assets), assets
    total = sum(e["bytes"] for e in assets)
    assert 10_000 < total < 250_000, assets


def test_first_render_of_the_overview_is_measured(tab: Page, seeded: dict[str, Any]) -> None:
    _signed_in(tab, _overview_hash())
    tab.page.reload()
    tab.page.wait_for_selector("[data-metric][data-state=ready]")
    ready = tab.page.evaluate("performance.getEntriesByName('dora:overview-ready')[0].startTime")
    assert 0 < ready < 10_000  # make bench measures it against 10,000 deployments (bench/dashboard.py)


# ----------------------------------------------------------------------------- the API docs
def test_the_api_docs_render_the_openapi_document(tab: Page, served: Served) -> None:
    tab.page.goto(f"{served.url}/docs")
    tab.page.wait_for_selector(".opblock")
    documented = requests.get(f"{served.url}/openapi.json", timeout=TIMEOUT).json()
    operations = sum(len(item) for item in documented["paths"].values())
    assert tab.page.locator(".opblock").count() == operations
    screenshot(tab.page, "api-docs")
    assert tab.errors == []
