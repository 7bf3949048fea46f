"""The evidence UI in a real browser: Debian's Chromium, driven by Playwright, against `demo --serve` (issue 12).

Two demos run for the whole module, one with `http.auth_token_file` set (login, session cookie, forms that
write) and one without (read-only pages whose forms are disabled and say why). The demo raises one alert,
for the collapsed synthetic set, and its evidence page is what most tests look at.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.conftest import COLLAPSED, MODEL, Demo, PageErrors, api, login, submit_button

pytestmark = pytest.mark.browser

# The sections every alert page has besides the evidence plots (contract of issue 12).
ALERT_SECTIONS = ("#explanation", "#trend", "#timeline", "#card", "#lineage", "#audit", "#runbook")
SERIES = ["anchor", "synthetic", "window"]

# Markup and script in user-provided strings: rendered, they must stay text.
HOSTILE_BY = "<script>window.__pwned=1</script><b>x</b>"
HOSTILE_REASON = "<img src=x onerror=window.__pwned=2><i>y</i>"


def _path(page: Page) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(page.url).path)


def _evidence_features(demo: Demo) -> list[str]:
    """The alert's evidence columns; `joint` (the multivariate MMD) has no histogram of its own to plot."""
    return [f for f in dict.fromkeys(e["feature"] for e in demo.alert["evidence"]) if f != "joint"]


def _assert_joint_plots(page: Page, demo: Demo) -> None:
    """The window-level joint evidence (`joint`: mmd here) as its effect per window against its floor."""
    tests = list(dict.fromkeys(e["signal"] for e in demo.alert["evidence"] if e["feature"] == "joint"))
    assert tests, "the demo's alert has no joint evidence any more: this check needs another scenario"
    sections = page.locator("section.evidence-joint")
    assert sections.evaluate_all("ss => ss.map(s => s.dataset.test)") == tests
    for section, test in zip(sections.all(), tests, strict=True):
        plot = section.locator("svg.joint-plot")
        assert plot.count() == 1, f"joint {test}: no plot"
        assert plot.locator("desc").count() == 1 and plot.locator("title").first.text_content(), test
        assert plot.locator("line.threshold").count() == 1 and plot.locator("line.alert-window").count() == 1, test
        # the alert's window is flagged (the test is its evidence); the quiet windows before the change are not
        tips = plot.locator("circle.point.flagged > title").all_text_contents()
        assert any(t.startswith(f"window {demo.alert['window']}: ") for t in tips), (test, tips)
        assert plot.locator("circle.point:not(.flagged)").count() >= 1, test
        assert plot.locator("polyline").count() >= 1, test
        box = plot.bounding_box()
        assert box and box["width"] > 50 and box["height"] > 50, f"joint {test}: plot is not visible ({box})"


def _assert_evidence_plots(page: Page, demo: Demo) -> None:
    """One section per evidence feature, each plot drawing the anchor, the window and the synthetic set."""
    sections = page.locator("section.evidence-feature").all()
    features = [s.get_attribute("data-feature") for s in sections]
    expected = _evidence_features(demo)
    assert len(expected) >= 4 and sorted(features) == sorted(expected), "evidence sections do not match the alert"
    assert "joint" in page.locator("body").inner_text(), "the joint MMD evidence is not shown"
    _assert_joint_plots(page, demo)
    for section, feature in zip(sections, features, strict=True):
        plots = section.locator("svg.plot").all()
        assert plots, f"evidence feature {feature} has no plot"
        for plot in plots:
            series = plot.locator("g.series")
            assert sorted(series.evaluate_all("gs => gs.map(g => g.dataset.series)")) == SERIES, feature
            empty = series.evaluate_all("gs => gs.filter(g => g.childElementCount === 0).map(g => g.dataset.series)")
            assert not empty, f"{feature}: series drawn with nothing in them: {empty}"
            box = plot.bounding_box()
            assert box and box["width"] > 50 and box["height"] > 50, f"{feature}: plot is not visible ({box})"


def _assert_inert(page: Page, literal: str, tag: str, inner: str) -> None:
    """The hostile string shows as text: no script ran, no element was made from it."""
    assert page.evaluate("() => typeof window.__pwned") == "undefined", f"{page.url}: a user string ran as script"
    assert not page.evaluate("() => [...document.scripts].some(s => s.textContent.includes('__pwned'))"), page.url
    assert not page.evaluate("() => [...document.querySelectorAll('img')].some(i => i.getAttribute('src') === 'x')")
    made = page.evaluate("([t, s]) => [...document.querySelectorAll(t)].some(e => e.textContent === s)", [tag, inner])
    assert not made, f"{page.url}: a <{tag}> element was made from a user string"
    assert literal in page.locator("body").inner_text(), f"{page.url}: {literal!r} is not shown as text"


# --- with a token: login, the evidence page, acknowledging -------------------------------------------------------


def test_login_sets_an_httponly_strict_cookie_and_logout_clears_it(demo_with_token: Demo, page: Page,
                                                                   context: BrowserContext,
                                                                   page_errors: PageErrors) -> None:
    page.goto(demo_with_token.url + "/ui/login")
    page.locator("form#login input[name=token]").fill("wrong-token-0123456789")
    with page.expect_navigation():
        submit_button(page.locator("form#login")).click()
    page.goto(demo_with_token.url + "/ui/")
    assert _path(page) == "/ui/login", "a wrong token opened a session"

    login(page, demo_with_token, "/ui/")
    session = [c for c in context.cookies() if c["httpOnly"]]
    assert session, f"no HttpOnly cookie after login: {context.cookies()}"
    assert all(c["sameSite"] == "Strict" for c in session), session
    assert page.locator("table#alerts tr.alert-row").count() == 1

    logout = page.locator("form#logout")
    assert logout.get_attribute("method").lower() == "post"
    assert logout.locator("input[type=hidden][name=csrf_token]").get_attribute("value")
    with page.expect_navigation():
        submit_button(logout).click()
    left = {c["name"] for c in context.cookies()} & {c["name"] for c in session}
    assert not left, f"logout left the session cookie {left}"
    page.goto(demo_with_token.url + "/ui/")
    assert _path(page) == "/ui/login", "after logout /ui/ was still served"
    # only the deliberate wrong-token attempt may have logged an error (a 401 for the login POST)
    assert all("401" in m for m in page_errors.messages), page_errors.messages


def test_alert_page_opened_from_the_list_plots_every_evidence_feature(demo_with_token: Demo, page: Page,
                                                                      page_errors: PageErrors) -> None:
    login(page, demo_with_token, "/ui/")
    row = page.locator(f'table#alerts tr.alert-row[data-alert-id="{demo_with_token.alert_id}"]')
    assert row.count() == 1 and row.get_attribute("data-state") == "retire_recommended"
    assert row.get_attribute("data-acked") in ("yes", "no")
    link = row.locator("a.alert-link")
    href = link.get_attribute("href")
    assert href.startswith("/ui/alerts/") and ":" not in href, f"alert id not percent-encoded in {href!r}"
    assert urllib.parse.unquote(href.removeprefix("/ui/alerts/")) == demo_with_token.alert_id
    with page.expect_navigation():
        link.click()
    assert _path(page) == "/ui/alerts/" + demo_with_token.alert_id

    _assert_evidence_plots(page, demo_with_token)
    assert page.locator("#trend svg").count() >= 1, "no share/affinity trend plot"
    for sel in ALERT_SECTIONS:
        assert page.locator(sel).inner_text().strip(), f"section {sel} is missing or empty"
    assert COLLAPSED in page.locator("#explanation").inner_text()
    assert page_errors.messages == []


def test_acknowledging_through_the_form_updates_the_list(demo_with_token: Demo, page: Page,
                                                         page_errors: PageErrors) -> None:
    login(page, demo_with_token, demo_with_token.alert_path)  # the login returns to the page that was asked for
    form = page.locator("form#ack-form")
    assert form.locator("input[type=hidden][name=csrf_token]").get_attribute("value")
    assert not form.locator("input[name=by]").is_disabled(), "the ack form is disabled although a token is set"
    form.locator("input[name=by]").fill("tester")
    with page.expect_navigation():
        submit_button(form).click()
    assert _path(page) == "/ui/alerts/" + demo_with_token.alert_id, f"after acknowledging the browser is at {page.url}"

    page.goto(demo_with_token.url + "/ui/")
    row = page.locator(f'tr.alert-row[data-alert-id="{demo_with_token.alert_id}"]')
    assert row.get_attribute("data-acked") == "yes"
    assert "tester" in row.inner_text()
    assert page_errors.messages == []


def test_user_strings_in_acknowledgements_are_escaped(demo_with_token: Demo, page: Page) -> None:
    demo = demo_with_token
    ack = "/api/alerts/" + urllib.parse.quote(demo.alert_id, safe="") + "/ack"
    assert api(demo.url, ack, token=demo.token, body={"by": HOSTILE_BY})["acked_by"] == HOSTILE_BY
    login(page, demo, "/ui/")
    row = page.locator(f'tr.alert-row[data-alert-id="{demo.alert_id}"]')
    assert row.locator("b, script").count() == 0, "markup from `by` became elements in the alerts row"
    assert "<b>x</b>" in row.inner_text()
    _assert_inert(page, "<b>x</b>", "b", "x")
    page.goto(demo.url + demo.alert_path)
    _assert_inert(page, "<b>x</b>", "b", "x")


# --- without a token: read-only pages ----------------------------------------------------------------------------


def test_without_a_token_the_forms_are_disabled_and_say_why(demo_without_token: Demo, page: Page,
                                                            page_errors: PageErrors) -> None:
    page.goto(demo_without_token.url + "/ui/")
    assert _path(page) == "/ui/", "without a token configured /ui/ must not ask for a login"
    page.goto(demo_without_token.url + demo_without_token.alert_path)
    _assert_evidence_plots(page, demo_without_token)
    for form_id in ("ack-form", "retire-form"):
        form = page.locator(f"form#{form_id}")
        in_fieldset = form.evaluate("f => !!(f.closest('fieldset[disabled]') || f.querySelector('fieldset[disabled]'))")
        assert in_fieldset, f"{form_id} is not wrapped in a disabled fieldset"
        controls = form.locator("input:not([type=hidden]), button, textarea, select").all()
        assert controls and all(c.is_disabled() for c in controls), f"{form_id} has enabled controls"
    assert page.locator("form#retire-form input[name=by], form#retire-form [name=reason]").count() == 2
    why = page.locator("p.form-disabled")
    assert why.count() >= 1 and why.first.is_visible()
    assert "token" in why.first.inner_text().lower(), f"the disabled forms do not say why: {why.first.inner_text()!r}"
    assert page_errors.messages == []


def test_filters_narrow_the_alert_list(demo_without_token: Demo, page: Page) -> None:
    page.goto(demo_without_token.url + "/ui/")
    form = page.locator("form#filters")
    assert (form.get_attribute("method") or "get").lower() == "get"
    for name in ("model", "dataset", "state"):
        assert form.locator(f"select[name={name}]").count() == 1, f"filter {name} is missing"
    form.locator("select[name=dataset]").select_option(COLLAPSED)
    with page.expect_navigation():
        submit_button(form).click()
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query).get("dataset") == [COLLAPSED]
    assert page.locator("tr.alert-row").count() == 1
    page.goto(demo_without_token.url + "/ui/?dataset=tickets-synth-faithful")
    assert page.locator("tr.alert-row").count() == 0, "filtering by a dataset without alerts still lists one"


def test_model_dataset_and_latest_pages(demo_without_token: Demo, page: Page, page_errors: PageErrors) -> None:
    demo = demo_without_token
    page.goto(f"{demo.url}/ui/models/{MODEL}")
    assert page.locator("table#windows tbody tr, table#windows tr:has(td)").count() >= 1, "no window rows"
    trends = page.locator("section.trend[data-signal]").all()
    assert trends, "no collapse-signal trend"
    for t in trends:
        assert t.locator("svg").count() >= 1, f"trend {t.get_attribute('data-signal')} has no plot"
    page.goto(f"{demo.url}/ui/datasets/{COLLAPSED}")
    assert page.locator("#card").inner_text().strip(), "the dataset page shows no card"
    page.goto(f"{demo.url}/ui/models/{MODEL}/datasets/{COLLAPSED}/latest")
    assert _path(page) == "/ui/alerts/" + demo.alert_id, f"`latest` went to {page.url}"
    assert page_errors.messages == []


def test_axe_finds_no_serious_or_critical_violation(demo_without_token: Demo, demo_with_token: Demo,
                                                    page: Page) -> None:
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    problems = []

    def check() -> None:
        results = axe.run(page).response
        problems.extend(f"{page.url}: {v['id']} ({v['impact']}): {v['help']} — {v['nodes'][0]['target']}"
                        for v in results["violations"] if v["impact"] in ("serious", "critical"))

    for path in ("/ui/", demo_without_token.alert_path):
        page.goto(demo_without_token.url + path)
        check()
    page.goto(demo_with_token.url + "/ui/login")  # the login page, then the alert page with working forms
    check()
    login(page, demo_with_token, "/ui/")
    page.goto(demo_with_token.url + demo_with_token.alert_path)
    check()
    assert not problems, "\n".join(problems)


# Counts the pixels of a PNG that differ from its most common colour, in the browser's own canvas.
_PIXELS_JS = """async (src) => {
  const img = new Image(); img.src = src; await img.decode();
  const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  const counts = new Map();
  for (let i = 0; i < d.length; i += 4) {
    const k = (d[i] << 16) | (d[i + 1] << 8) | d[i + 2];
    counts.set(k, (counts.get(k) || 0) + 1);
  }
  const background = Math.max(...counts.values());
  return {pixels: d.length / 4, off_background: d.length / 4 - background, colours: counts.size};
}"""


def test_screenshot_of_the_alert_page_is_not_blank(demo_without_token: Demo, page: Page, tmp_path: Path) -> None:
    page.goto(demo_without_token.url + demo_without_token.alert_path)
    assert page.evaluate("() => document.documentElement.scrollHeight") > 500
    shot = tmp_path / "alert.png"
    png = page.screenshot(path=shot, full_page=True)
    assert shot.stat().st_size > 10_000, f"screenshot is only {shot.stat().st_size} bytes"
    page.goto("about:blank")
    stats = page.evaluate(_PIXELS_JS, "data:image/png;base64," + base64.b64encode(png).decode())
    assert stats["off_background"] > 0.01 * stats["pixels"], f"screenshot is nearly one colour: {stats}"
    assert stats["colours"] > 16, f"screenshot has too few colours to hold text and plots: {stats}"


def test_report_file_renders_its_plots_with_the_network_blocked(demo_without_token: Demo, page: Page,
                                                                tmp_path: Path, page_errors: PageErrors) -> None:
    demo = demo_without_token
    report = tmp_path / "alert.html"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREFUL_MONITOR_")}
    done = subprocess.run([sys.executable, "-m", "careful_monitor.cli", "report", demo.alert_id,
                           "--config", str(demo.workdir / "config.yaml"), "-o", str(report)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    blocked: list[str] = []

    def only_local(route) -> None:
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(report.as_uri())
    _assert_evidence_plots(page, demo)
    assert page.locator("#trend svg").count() >= 1
    assert page.locator("form").count() == 0, "the report file has forms"
    assert blocked == [], f"the report is not self-contained, it fetched: {blocked}"
    assert page_errors.messages == []


# --- last, because it changes the collapsed set's state ----------------------------------------------------------


def test_user_strings_in_a_retirement_reason_are_escaped(demo_with_token: Demo, page: Page) -> None:
    demo = demo_with_token
    doc = api(demo.url, f"/api/datasets/{COLLAPSED}/retire", token=demo.token,
              body={"by": HOSTILE_BY, "reason": HOSTILE_REASON})
    assert doc["state"] == "retired"
    login(page, demo, "/ui/")
    shown = []
    for path in (demo.alert_path, f"/ui/datasets/{COLLAPSED}"):
        page.goto(demo.url + path)
        assert page.evaluate("() => typeof window.__pwned") == "undefined", f"{path}: a user string ran as script"
        assert page.locator("i, b").evaluate_all("es => es.filter(e => ['x', 'y'].includes(e.textContent)).length") == 0
        assert not page.evaluate("() => [...document.querySelectorAll('img')].some(i => i.getAttribute('src') === 'x')")
        shown.append("<i>y</i>" in page.locator("body").inner_text())
    assert any(shown), "the retirement reason is shown on neither the alert page's audit nor the dataset page"
