"""The dashboard for people using a keyboard or a screen reader, and its figures and names under unusual data.

Headless Chromium against ``python -m dora_local``: accessible names of the controls, error messages
tied to the field they are about, where focus goes (page changes, sign-in, sign-out, "Load more
changes", sorting, the chart legend's series toggles), headings, titles and ids, text contrast in both
themes, reflow at 320 CSS px, no busy region left holding an error, bidi isolation of user-supplied
names, and durations that round across a unit (59.6 s) or to zero (-0.3 s).

Unusual figures come from answering the page's API reads with crafted JSON (Playwright routes) built
from the service's real answers; unusual names are seeded through the API.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dora_insights.logic.freshness import SETTLE
from tests.browser.conftest import KEY, SPACE, Api
from tests.support.server import Served

WAIT_MS = 30_000
TODAY = datetime.now(UTC).date()
BASE = datetime.combine(TODAY - timedelta(days=10), datetime.min.time(), tzinfo=UTC)
FROM, TO = (BASE - timedelta(days=3)).date(), TODAY
OVERVIEW = f"#/overview?from={FROM}&to={TO}"

HTML_NAME = '<img src=x onerror="window.__pwned=1"><b>bold</b>'
RTL_NAME = "שירות-התשלומים"
EMOJI_NAME = "🚀 rocket 👩‍👩‍👧‍👦 shop"
LONG_NAME = "p" + "x" * 199  # 200 characters, no break point


def _at(days: float, hours: float = 0) -> str:
    return (BASE + timedelta(days=days, hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def names(api: Api) -> dict[str, Any]:
    """Deployments of projects (and an environment) with unusual names; which names the API accepted."""
    accepted: dict[str, str] = {}
    ids: dict[str, str] = {}
    for n, name in enumerate((HTML_NAME, RTL_NAME, EMOJI_NAME, LONG_NAME)):
        body = {"project": name, "environment": "production", "finished_at": _at(n + 1, 10), "version": f"3.0.{n}"}
        response = api.session.post(f"{api.url}/api/{SPACE}/deployments", json=body, timeout=60)
        if response.status_code in (200, 201):
            accepted[name] = name
            ids[name] = response.json()["id"]
    plain = {"project": "plain", "environment": "production", "finished_at": _at(6, 10), "version": "1.0.0"}
    ids["plain"] = api.post(f"/api/{SPACE}/deployments", plain)["id"]
    report = api.post(f"/api/{SPACE}/insights/reports", {"Name": "Accessibility"})["Id"]
    blank = api.session.post(f"{api.url}/api/{SPACE}/insights/reports", json={"Name": " "}, timeout=60)
    time.sleep(SETTLE.total_seconds())
    api.recompute()
    return {"accepted": accepted, "ids": ids, "report": report, "blank_report": blank.status_code}


@pytest.fixture
def page(browser: Any, served: Served, request: pytest.FixtureRequest) -> Iterator[Any]:
    options = getattr(request, "param", {}) or {}
    context = browser.new_context(
        viewport={"width": options.get("width", 1280), "height": 900}, color_scheme=options.get("scheme", "light")
    )
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    tab.base = served.url  # type: ignore[attr-defined]
    try:
        yield tab
    finally:
        context.close()


def _open(page: Any, hash_: str = "") -> None:
    page.goto(f"{page.base}/app/{hash_}")


def _sign_in(page: Any, hash_: str = OVERVIEW, key: str = KEY) -> None:
    _open(page, hash_)
    page.fill("input[name=spaceId]", SPACE)
    page.fill("input[name=apiKey]", key)
    page.click("form.signin button[type=submit]")


def _signed_in(page: Any, hash_: str = OVERVIEW) -> None:
    _sign_in(page, hash_)
    page.wait_for_selector("#nav:not([hidden])")


def _go(page: Any, hash_: str, ready: str) -> None:
    page.evaluate(
        """() => { const m = document.createElement("i"); m.id = "stale-view";
                   document.getElementById("main").appendChild(m); }"""
    )
    page.evaluate("h => { window.location.hash = h; }", hash_)
    page.locator("#stale-view").wait_for(state="detached")
    page.wait_for_selector(ready)


# ----------------------------------------------------------------------------- JS probes
_UNNAMED_CONTROLS = """() => Array.from(document.querySelectorAll("input:not([type=hidden]), select, textarea, button"))
    .filter(e => !e.closest("[hidden]"))
    .filter(e => {
        const label = Array.from(e.labels || []).map(l => l.textContent.trim()).join(" ");
        const aria = (e.getAttribute("aria-label") || "").trim();
        const by = (e.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean)
            .map(id => (document.getElementById(id) || {}).textContent || "").join(" ").trim();
        const own = e.tagName === "BUTTON" ? e.textContent.trim() : "";
        return !(label || aria || by || own || (e.getAttribute("title") || "").trim());
    })
    .map(e => e.outerHTML.slice(0, 120))"""

_CONTRAST = """() => {
    function parse(c) {
        const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
        const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
        return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
    }
    function lum(c) {
        const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
        return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
    }
    function background(e) {
        const layers = [];
        for (let n = e; n; n = n.parentElement) {
            const c = parse(getComputedStyle(n).backgroundColor);
            if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
        }
        let out = {r: 255, g: 255, b: 255};
        for (let i = layers.length - 1; i >= 0; i--) {
            const l = layers[i];
            out = {r: l.r * l.a + out.r * (1 - l.a), g: l.g * l.a + out.g * (1 - l.a),
                   b: l.b * l.a + out.b * (1 - l.a)};
        }
        return out;
    }
    const bad = [];
    for (const e of document.querySelectorAll("body *")) {
        if (e.closest(".plot, .skip-link, [hidden], details:not([open])")) continue;
        const own = Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
        if (!own) continue;
        const r = e.getBoundingClientRect(); if (!r.width || !r.height) continue;
        const s = getComputedStyle(e);
        if (s.visibility === "hidden") continue;
        if (e.closest("button:disabled")) continue;  // inactive controls are exempt (WCAG 1.4.3)
        const fg = parse(s.color); const bg = background(e);
        const a = fg.a;
        const mixed = {r: fg.r * a + bg.r * (1 - a), g: fg.g * a + bg.g * (1 - a), b: fg.b * a + bg.b * (1 - a)};
        const l1 = lum(mixed), l2 = lum(bg);
        const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
        const size = parseFloat(s.fontSize), weight = parseInt(s.fontWeight, 10);
        const large = size >= 24 || (size >= 18.66 && weight >= 700);
        const on = `rgb(${Math.round(bg.r)},${Math.round(bg.g)},${Math.round(bg.b)})`;
        const text = e.textContent.trim().slice(0, 40);
        const what = `${e.tagName}.${e.className} "${text}"`;
        if (ratio < (large ? 3 : 4.5)) bad.push(`${what} ${ratio.toFixed(2)} ${s.color} on ${on}`);
    }
    return bad;
}"""

_FOCUSED = """() => { const e = document.activeElement; if (!e || e === document.body) return null;
    const s = getComputedStyle(e);
    return {tag: e.tagName, text: (e.getAttribute("name") || e.id || e.textContent || "").trim().slice(0, 40),
            outline: s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0,
            shadow: s.boxShadow !== "none"}; }"""


# ----------------------------------------------------------------------------- forms and errors
def test_every_form_control_has_an_accessible_name(page: Any, names: dict[str, Any]) -> None:
    _open(page)
    page.wait_for_selector("input[name=apiKey]")
    assert page.evaluate(_UNNAMED_CONTROLS) == [], "sign-in"
    assert page.get_by_role("textbox", name="API key").count() == 1
    assert page.get_by_role("textbox", name="Space").count() == 1
    _sign_in(page)
    page.wait_for_selector("[data-metric][data-state=ready]")
    views = {
        "overview": (OVERVIEW, "#trends figure.chart"),
        "deployments": ("#/deployments", "main section[aria-busy=false]"),
        "failures": ("#/failures", "main section[aria-busy=false]"),
        "projects": (f"#/projects?from={FROM}&to={TO}", "main [aria-busy=false] table"),
    }
    for name, (hash_, ready) in views.items():
        if name != "overview":
            _go(page, hash_, ready)
        else:
            page.wait_for_selector(ready)
        assert page.evaluate(_UNNAMED_CONTROLS) == [], name
        assert page.locator("main form[role=search]").count() <= 1
    assert page.evaluate("document.documentElement.lang") == "en"


_DESCRIPTION = """e => (e.getAttribute("aria-describedby") || "").split(/\\s+/).filter(Boolean)
    .map(i => (document.getElementById(i) || {}).textContent || "").join(" ")"""


@pytest.mark.parametrize(
    ("key", "said"), [("not-a-key", "refused"), ("   ", "Enter an API key")], ids=["refused", "blank"]
)
def test_a_key_error_is_announced_and_tied_to_the_key_field(
    page: Any, names: dict[str, Any], key: str, said: str
) -> None:
    """WCAG 3.3.1/4.1.2: the error is in a live region, focus is back on the key field, and the field says
    it is invalid and which message describes it (aria-invalid + aria-describedby)."""
    _sign_in(page, "", key=key)
    box = page.locator("#signin-message .error-box")
    box.wait_for()
    assert said in box.inner_text()
    assert page.locator("#signin-message").get_attribute("role") in ("alert", "status")
    field = page.locator("input[name=apiKey]")
    assert page.evaluate("document.activeElement.name") == "apiKey"
    assert field.get_attribute("aria-invalid") == "true", "the key's field is not marked invalid"
    assert said in field.evaluate(_DESCRIPTION), field.get_attribute("aria-describedby")
    assert page.locator("input[name=spaceId]").get_attribute("aria-invalid") is None


def test_checking_the_key_is_announced_keeps_focus_and_clears_the_last_error(page: Any, names: dict[str, Any]) -> None:
    """While a key is checked the form says so in a status region; the submit button stays focused (marked
    busy, not disabled, so focus does not fall to the body) and the previous error no longer describes
    the field; a second error ties the field to the new message."""
    _sign_in(page, "", key="not-a-key")
    page.locator("#signin-message .error-box").wait_for()
    held: list[Any] = []

    def hold(route: Any) -> None:  # answered below, once the checking state is seen
        held.append(route)

    page.route(lambda url: "/projects?" in url, hold)
    page.fill("input[name=apiKey]", "still-not-a-key")
    page.locator("form.signin button[type=submit]").focus()
    page.keyboard.press("Enter")
    status = page.locator("#signin-status[role=status]")
    status.filter(has_text="Checking the key").wait_for(state="attached")
    assert len(held) == 1
    assert page.evaluate("document.activeElement.type") == "submit", "focus left the submit button"
    field = page.locator("input[name=apiKey]")
    assert field.get_attribute("aria-invalid") is None and field.get_attribute("aria-describedby") is None
    assert page.locator("#signin-message .error-box").count() == 0
    page.keyboard.press("Enter")  # a second submit while checking sends nothing more
    page.wait_for_timeout(200)
    assert len(held) == 1
    held[0].fulfill(status=401, json={"message": "no such key"})
    page.locator("#signin-message .error-box", has_text="no such key").wait_for()
    assert field.get_attribute("aria-invalid") == "true"
    assert "no such key" in field.evaluate(_DESCRIPTION)
    assert status.inner_text() == ""
    assert page.locator("form.signin button[type=submit]").inner_text() == "Sign in"


# ----------------------------------------------------------------------------- headings, titles, focus
def test_no_duplicate_ids(page: Any, names: dict[str, Any]) -> None:
    _signed_in(page)
    page.wait_for_selector("#trends figure.chart[data-points]")
    dupes = page.evaluate(
        "() => { const s = {}; document.querySelectorAll('[id]').forEach(e => s[e.id] = (s[e.id] || 0) + 1);"
        " return Object.keys(s).filter(k => s[k] > 1); }"
    )
    assert dupes == []


def test_each_page_has_one_h1_a_title_of_its_own_and_focus_on_the_heading(page: Any, names: dict[str, Any]) -> None:
    _signed_in(page)
    page.wait_for_selector("[data-metric][data-state=ready]")
    views = {
        "Deployments": ("#/deployments", "main section[aria-busy=false]"),
        "Failures": ("#/failures", "main section[aria-busy=false]"),
        "Reports": ("#/reports", "main section[aria-busy=false]"),
        "Insights": ("#/insights", "main section[aria-busy=false]"),
        "Projects": (f"#/projects?from={FROM}&to={TO}", "main [aria-busy=false]"),
        "Not found": ("#/nowhere", "main .error-box"),
    }
    titles = {page.title()}
    for heading, (hash_, ready) in views.items():
        _go(page, hash_, ready)
        assert page.locator("h1").count() == 1, heading
        assert page.locator("h1").inner_text() == heading
        assert page.title().startswith(heading), (heading, page.title())
        titles.add(page.title())
        assert page.evaluate("document.activeElement.tagName") == "H1", heading
        # heading levels never skip (h1 -> h3 without an h2)
        levels = page.evaluate(
            "() => Array.from(document.querySelectorAll('h1,h2,h3,h4,h5,h6')).map(h => +h.tagName[1])"
        )
        assert all(b - a <= 1 for a, b in itertools.pairwise(levels)), (heading, levels)
    assert len(titles) == len(views) + 1


def test_tabbing_through_the_overview_always_shows_where_focus_is(page: Any, names: dict[str, Any]) -> None:
    _signed_in(page)
    page.wait_for_selector("#trends figure.chart[data-points]")
    page.locator("#skip-link").focus()
    invisible, trail = [], []
    for _ in range(80):
        page.keyboard.press("Tab")
        info = page.evaluate(_FOCUSED)
        trail.append(info and info["text"])
        assert info is not None, f"focus fell to the body while tabbing, after {trail[-6:]}"
        if info["text"] == "OpenAPI document":  # the last link of the page
            break
        if info["tag"] == "INPUT" and page.evaluate("document.activeElement.type") == "date":
            continue  # date fields draw their own focus on the focused part
        if not (info["outline"] or info["shadow"]):
            invisible.append(info)
    assert trail[-1] == "OpenAPI document", trail
    assert invisible == [], invisible


def test_load_more_changes_keeps_keyboard_focus(page: Any, api: Api, names: dict[str, Any]) -> None:
    """Activating "Load more changes" replaces the button: focus moves to the next page's button while
    there is one, then to the first change added, never to the document body (WCAG 2.4.3)."""
    deployment_id = names["ids"]["plain"]
    real = api.get(f"/api/{SPACE}/deployments/{deployment_id}")
    first = dict(real)
    first["repository"] = "acme/shop"
    first["commit_sha"] = "a" * 40
    first["attribution"] = {
        "state": "Resolved", "mode": "CommitSha", "attempts": 1, "commit_count": 4, "pull_request_count": 0,
        "commits": ["a" * 40], "pull_requests": [], "next_cursor": "page-2",
        "change_started_at": _at(5), "resolved_at": _at(6),
    }  # fmt: skip
    pages = {
        "page-2": dict(
            first, attribution=dict(first["attribution"], commits=["b" * 40, "c" * 40], next_cursor="page-3")
        ),
        "page-3": dict(first, attribution=dict(first["attribution"], commits=["d" * 40], next_cursor=None)),
    }

    def answer(route: Any) -> None:
        url = route.request.url
        if "/corrections" in url:
            route.continue_()
        elif "attribution_cursor=" in url:
            route.fulfill(status=200, json=pages[url.split("attribution_cursor=")[1].split("&")[0]])
        else:
            route.fulfill(status=200, json=first)

    page.route(lambda url: f"/deployments/{deployment_id}" in url, answer)
    _signed_in(page, f"#/deployments/{deployment_id}")
    button = page.get_by_role("button", name="Load more changes")
    button.focus()
    page.keyboard.press("Enter")
    page.locator("#commits li").nth(2).wait_for()
    assert button.count() == 1
    assert page.evaluate("document.activeElement.textContent") == "Load more changes", "focus is not on the next button"
    page.keyboard.press("Enter")
    page.locator("#commits li").nth(3).wait_for()
    assert button.count() == 0
    focused = page.evaluate("(document.activeElement.dataset || {}).commit || document.activeElement.tagName")
    assert focused == "d" * 40, f"focus is on {focused!r}, not the first change added"


# ----------------------------------------------------------------------------- charts and tables
def test_charts_have_a_text_alternative_and_tables_have_headers(page: Any, names: dict[str, Any]) -> None:
    _signed_in(page)
    page.wait_for_selector("#trends figure.chart[data-points]")
    plots = page.locator("#trends .plot")
    assert plots.count() == 5
    for n in range(5):
        plot = plots.nth(n)
        assert plot.get_attribute("role") == "img"
        assert "table below" in (plot.get_attribute("aria-label") or "")
    # every table: a caption, column headers with scope, and a header cell per row
    problems = page.evaluate(
        """() => Array.from(document.querySelectorAll("main table")).filter(t =>
            !t.caption || !t.caption.textContent.trim() ||
            Array.from(t.querySelectorAll("thead th")).some(th => th.getAttribute("scope") !== "col") ||
            Array.from(t.tBodies[0].rows).some(r => !r.querySelector("th[scope=row]"))).length"""
    )
    assert problems == 0
    # tiers are words, not colour alone
    for tier in page.locator("[data-metric] .tier").all_inner_texts():
        assert tier.strip(), "a tier badge without text"


def test_report_legend_series_toggle_works_by_keyboard(page: Any, names: dict[str, Any]) -> None:
    """uPlot's legend (shown with more than one series) hides and shows a series on click; the keyboard
    does the same (WCAG 2.1.1): each series' entry is a focusable toggle button with aria-pressed, and
    the legend is outside the chart's role=img (whose content is hidden from screen readers)."""
    _signed_in(page, f"#/reports/{names['report']}?split=Project&timeRange=LastMonth&granularity=Weekly")
    page.wait_for_selector("#report-metrics[aria-busy=false] figure.chart[data-points]")
    chart = page.locator("#report-metrics figure.chart").first
    series = int(chart.get_attribute("data-series") or 0)
    assert series > 1
    rows = chart.locator(".u-legend tr.u-series")
    assert rows.count() == series + 1  # the interval's row, then one per series
    assert chart.locator(".u-legend").evaluate("l => !l.closest('[role=img]')"), "the legend is inside the image"
    assert rows.first.get_attribute("role") != "button"  # the interval is not a series to hide
    row = rows.nth(1)
    label = chart.locator(".u-legend tr.u-series").nth(1).locator(".u-label").inner_text()
    assert row.get_attribute("role") == "button" and row.get_attribute("tabindex") == "0"
    assert row.get_attribute("aria-label") == label and row.get_attribute("aria-pressed") == "true"
    row.focus()
    page.keyboard.press("Enter")
    assert "u-off" in (row.get_attribute("class") or ""), "Enter did not hide the series"
    assert row.get_attribute("aria-pressed") == "false"
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == label
    page.keyboard.press(" ")
    assert "u-off" not in (row.get_attribute("class") or ""), "Space did not show the series again"
    assert row.get_attribute("aria-pressed") == "true"
    row.click()  # a mouse still toggles it, and the state follows
    assert "u-off" in (row.get_attribute("class") or "") and row.get_attribute("aria-pressed") == "false"


def test_report_links_have_text(page: Any, names: dict[str, Any]) -> None:
    _signed_in(page, "#/reports")
    page.wait_for_selector("main section[aria-busy=false] table")
    texts = page.locator("main table a").all_inner_texts()
    assert texts and all(t.strip() for t in texts), (names["blank_report"], texts)


def test_sorting_by_keyboard_sets_aria_sort_and_keeps_focus(page: Any, names: dict[str, Any]) -> None:
    _signed_in(page, f"#/projects?from={FROM}&to={TO}")
    page.wait_for_selector("main [aria-busy=false] table")
    button = page.locator("main th button.sort", has_text="Deployments")
    button.focus()
    page.keyboard.press("Enter")
    header = page.locator("main thead th", has=page.locator("button.sort", has_text="Deployments"))
    assert header.get_attribute("aria-sort") == "ascending"
    page.keyboard.press("Enter")
    assert header.get_attribute("aria-sort") == "descending"
    assert page.evaluate("document.activeElement.textContent") == "Deployments"
    # The button's accessible name is its label; the order is aria-sort's to say, not an arrow glyph
    # from CSS ::after ("Deployments \\u2193" would be read out as "Deployments downwards arrow").
    snapshot = page.locator("main thead").aria_snapshot()
    assert 'button "Deployments"' in snapshot, snapshot
    assert page.get_by_role("button", name="Deployments", exact=True).count() == 1


# ----------------------------------------------------------------------------- figures under unusual data
def _summary_with(api: Api, **changes: dict[str, Any]) -> dict[str, Any]:
    summary = api.get(
        f"/api/{SPACE}/summary", **{"from": f"{FROM}T00:00:00Z", "to": f"{TO + timedelta(days=1)}T00:00:00Z"}
    )
    for metric, fields in changes.items():
        summary[metric] = {**summary[metric], **fields}
    return summary


def test_a_median_just_under_a_minute_reads_as_one_minute_not_60_s(page: Any, api: Api, names: dict[str, Any]) -> None:
    """59.6 s rounds to a whole minute: it reads "1 min" (as 59.99 min reads "1 h"), not "60 s"."""
    summary = _summary_with(
        api,
        lead_time={"median_seconds": 59.6, "p95_seconds": 59.4, "count": 2},
        recovery_time={"median_seconds": 3599.8, "count": 1},
    )
    page.route("**/summary*", lambda route: route.fulfill(status=200, json=summary))
    _signed_in(page)
    page.wait_for_selector("[data-metric][data-state=ready]")
    recovery = page.locator("[data-metric=recovery_time] .value").inner_text()
    assert recovery == "1 h", recovery  # the minutes carry over to hours
    lead = page.locator("[data-metric=lead_time] .value").inner_text()
    assert lead == "1 min", f"59.6 seconds shows as {lead!r}"
    assert "95th percentile 59 s" in page.locator("[data-metric=lead_time] .detail").inner_text()


def test_headline_frequency_reads_per_week_below_one_a_day(page: Any, api: Api, names: dict[str, Any]) -> None:
    """The API rounds per_day to 5 places; the card reads it per week, the detail per day."""
    summary = _summary_with(
        api, deployment_frequency={"per_day": round(1 / 7, 5), "successful_deployments": 2, "deployment_days": 2}
    )
    page.route("**/summary*", lambda route: route.fulfill(status=200, json=summary))
    _signed_in(page)
    page.wait_for_selector("[data-metric][data-state=ready]")
    card = page.locator("[data-metric=deployment_frequency]").inner_text()
    assert "1.00 per week" in card and "(0.14286 per day)" in card, card


def test_a_tiny_negative_median_does_not_read_minus_zero(page: Any, api: Api, names: dict[str, Any]) -> None:
    """A clock-skewed median of -0.3 s rounds to 0: it reads "0 s", not "-0 s"; -0.6 s still reads "-1 s"."""
    summary = _summary_with(api, lead_time={"median_seconds": -0.3, "p95_seconds": -0.6, "count": 2})
    page.route("**/summary*", lambda route: route.fulfill(status=200, json=summary))
    _signed_in(page)
    page.wait_for_selector("[data-metric][data-state=ready]")
    lead = page.locator("[data-metric=lead_time] .value").inner_text()
    assert lead == "0 s", f"-0.3 seconds shows as {lead!r}"
    assert "95th percentile -1 s" in page.locator("[data-metric=lead_time] .detail").inner_text()


# ----------------------------------------------------------------------------- contrast
@pytest.mark.parametrize("page", [{"scheme": "light"}, {"scheme": "dark"}], indirect=True, ids=["light", "dark"])
def test_text_contrast_is_at_least_aa(page: Any, names: dict[str, Any]) -> None:
    _open(page)
    page.wait_for_selector("input[name=apiKey]")
    low = {"sign-in": page.evaluate(_CONTRAST)}
    _sign_in(page, key="not-a-key")
    page.wait_for_selector("#signin-message .error-box")
    low["sign-in refused"] = page.evaluate(_CONTRAST)
    _sign_in(page)
    page.wait_for_selector("#trends figure.chart[data-points]")
    page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    low["overview"] = page.evaluate(_CONTRAST)
    _go(page, "#/deployments", "main section[aria-busy=false] table")
    low["deployments"] = page.evaluate(_CONTRAST)
    _go(page, f"#/deployments/{names['ids']['plain']}", "#change-failure")
    low["deployment"] = page.evaluate(_CONTRAST)
    _go(page, "#/failures?project=nope", "main section[aria-busy=false]")
    low["failures"] = page.evaluate(_CONTRAST)
    _go(page, f"#/projects?from={FROM}&to={TO}", "main [aria-busy=false] table")
    low["projects"] = page.evaluate(_CONTRAST)
    _go(page, f"#/reports/{names['report']}?split=Project", "#report-metrics figure.chart[data-points]")
    low["report"] = page.evaluate(_CONTRAST)
    _go(page, "#/insights", "main section[aria-busy=false]")
    low["insights"] = page.evaluate(_CONTRAST)
    page.route("**/api/**", lambda route: route.fulfill(status=500, json={"message": "boom"}))
    _go(page, "#/deployments", "main .error-box")
    low["error"] = page.evaluate(_CONTRAST)
    assert {k: v for k, v in low.items() if v} == {}


# ----------------------------------------------------------------------------- user-supplied names
_ISOLATED = """([root, name]) => Array.from(document.querySelectorAll(root + " *, " + root)).some(e =>
    e.textContent.includes(name) && e.textContent.trim().length <= name.length + 2 &&
    (e.tagName === "BDI" || e.getAttribute("dir") === "auto" ||
     ["isolate", "isolate-override", "plaintext"].includes(getComputedStyle(e).unicodeBidi)))"""


def test_a_right_to_left_name_is_isolated_from_the_text_around_it(page: Any, names: dict[str, Any]) -> None:
    """'Deployment of <RTL name> 3.0.1 to production': without bidi isolation (<bdi> or dir=auto) the
    version and words after a Hebrew name are reordered visually (Unicode bidi), so the heading misreads.
    The same holds for the name in the deployments list and in the project's own page."""
    assert RTL_NAME in names["accepted"], f"the API refused the name: {list(names['accepted'])}"
    deployment_id = names["ids"][RTL_NAME]
    _signed_in(page, f"#/deployments/{deployment_id}")
    page.wait_for_selector("#change-failure")
    heading = page.locator("h1").inner_text()
    assert heading == f"Deployment of {RTL_NAME} 3.0.1 to production", json.dumps(heading, ensure_ascii=False)
    assert page.evaluate(_ISOLATED, ["main h1", RTL_NAME]), json.dumps(heading, ensure_ascii=False)
    assert page.title() == f"{heading} · DORA insights"
    _go(page, "#/deployments", "main section[aria-busy=false] table")
    row = f'main tr[data-deployment="{deployment_id}"]'
    assert page.evaluate(_ISOLATED, [row, RTL_NAME]), page.locator(row).inner_text()
    _go(page, f"#/deployments/{deployment_id}", "#change-failure")
    page.locator("main dd a", has_text=RTL_NAME).click()
    page.locator("h1", has_text=f"Project {RTL_NAME}").wait_for()
    assert page.evaluate(_ISOLATED, ["main h1", RTL_NAME]), page.locator("h1").inner_text()
    assert page.title().startswith(f"Project {RTL_NAME}")


# ----------------------------------------------------------------------------- sign-out, errors, reflow
def test_sign_out_moves_focus_to_the_sign_in_heading(page: Any, names: dict[str, Any]) -> None:
    _signed_in(page)
    page.wait_for_selector("[data-metric][data-state=ready]")
    page.locator("#sign-out").focus()
    page.keyboard.press("Enter")
    page.locator("input[name=apiKey]").wait_for()
    assert page.evaluate("[document.activeElement.tagName, document.activeElement.textContent]") == ["H1", "Sign in"]
    assert page.title().startswith("Sign in")


def test_a_failed_projects_list_is_not_left_busy(page: Any, names: dict[str, Any]) -> None:
    """An error shown inside a region still marked aria-busy=true may be withheld by screen readers
    (and its role=alert not announced): the region says it is no longer busy, as the other views do."""

    def fail(route: Any) -> None:
        route.fulfill(status=500, json={"message": "the catalogue is on fire"})

    page.route(lambda url: "/projects?" in url and "skip=" in url, fail)
    _signed_in(page, f"#/projects?from={FROM}&to={TO}")
    box = page.locator("main .error-box[role=alert]")
    box.wait_for()
    assert "the catalogue is on fire" in box.inner_text()
    busy = box.evaluate("b => !!b.closest('[aria-busy=true]')")
    assert not busy, "the error is inside an element still marked aria-busy=true"


_WIDER = """() => Array.from(document.querySelectorAll("body *"))
    .filter(e => e.getBoundingClientRect().right > 321 && !e.closest(".table-wrap, .plot, .legend"))
    .slice(0, 5).map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""


@pytest.mark.parametrize("page", [{"width": 320}], indirect=True)
def test_pages_reflow_at_320_css_px(page: Any, names: dict[str, Any]) -> None:
    """WCAG 1.4.10 (Reflow) is stated at 320 CSS px (400 % zoom of 1280): no horizontal page scroll, with
    the long, emoji and right-to-left names in the lists and the report's legend."""
    _open(page)
    page.wait_for_selector("input[name=apiKey]")
    wide = {"sign-in": page.evaluate("document.documentElement.scrollWidth")}
    _signed_in(page)
    page.wait_for_selector("#trends figure.chart[data-points]")
    wide["overview"] = page.evaluate("document.documentElement.scrollWidth")
    views = {
        "deployments": ("#/deployments", "main section[aria-busy=false] table"),
        "deployment": (f"#/deployments/{names['ids']['plain']}", "#change-failure"),
        "projects": (f"#/projects?from={FROM}&to={TO}", "main [aria-busy=false] table"),
        "report": (f"#/reports/{names['report']}?split=Project", "#report-metrics figure.chart[data-points]"),
        "failures": ("#/failures", "main section[aria-busy=false]"),
    }
    for name, (hash_, ready) in views.items():
        _go(page, hash_, ready)
        wide[name] = page.evaluate("document.documentElement.scrollWidth")
    too_wide = {k: v for k, v in wide.items() if v > 320}
    assert too_wide == {}, (too_wide, page.evaluate(_WIDER))
