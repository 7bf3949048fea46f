"""Fixtures for the browser tests: Debian's Chromium driven by Playwright, and `demo --serve` with and without a token.

Chromium is `/usr/bin/chromium` from Debian (`deploy/services.sh install`, run by `make test`); the tests
never call `playwright install`, which would download a browser. Without it the tests are skipped, except
in CI (`CI=true`), where a missing browser is a failure rather than a silent skip.
"""

from __future__ import annotations

import os
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Locator, Page, sync_playwright

from tests.demo_server import served_demo, write_token

CHROMIUM = "/usr/bin/chromium"
TOKEN = "browser-test-token-0123456789abcdef"
COLLAPSED = "tickets-synth-collapsed"
MODEL = "ticket-router"
TIMEOUT_MS = 15_000  # generous: the machine running the suite may be busy


@dataclass(frozen=True)
class Demo:
    """A running `careful-monitor demo --serve`: its base URL, work directory and the one alert it raised."""

    url: str
    workdir: Path
    output: Path
    token: str | None
    alert: dict

    @property
    def alert_id(self) -> str:
        return self.alert["alert_id"]

    @property
    def alert_path(self) -> str:
        return "/ui/alerts/" + urllib.parse.quote(self.alert_id, safe="")


@dataclass
class PageErrors:
    """Console errors and uncaught exceptions a page produced, collected as they happen."""

    messages: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.messages.append(f"pageerror: {exc}"))

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.messages.append(f"console.error at {msg.location.get('url')}: {msg.text}")


def _start_demo(root: Path, token: str | None) -> Iterator[Demo]:
    env = {} if token is None else {"CAREFUL_MONITOR_HTTP__AUTH_TOKEN_FILE": str(write_token(root, token))}
    with served_demo(root, env) as (url, _, out):
        alerts = api(url, "/api/alerts", token=token)
        assert [a["dataset"] for a in alerts] == [COLLAPSED], alerts
        yield Demo(url=url, workdir=root / "demo", output=out, token=token, alert=alerts[0])


def api(url: str, path: str, *, token: str | None, body: dict | None = None) -> object:
    """GET (or POST `body` as JSON) an API path with the bearer token; the decoded JSON answer."""
    req = urllib.request.Request(url + path, data=None if body is None else orjson.dumps(body),
                                 method="GET" if body is None else "POST")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=15) as r:
        return orjson.loads(r.read())


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Debian's Chromium; skipped when absent outside CI, a failure when absent in CI (`CI=true`)."""
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"{CHROMIUM} is missing: run `deploy/services.sh install` as root (installs Debian's chromium)"
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(reason + " (CI=true: the browser tests must run)")
        pytest.skip(reason)
    return CHROMIUM


# The demos ask for the browser first, so that a missing browser skips before a demo is started for nothing.
@pytest.fixture(scope="session")
def demo_with_token(chromium_executable, tmp_path_factory) -> Iterator[Demo]:
    yield from _start_demo(tmp_path_factory.mktemp("ui-token"), TOKEN)


@pytest.fixture(scope="session")
def demo_without_token(chromium_executable, tmp_path_factory) -> Iterator[Demo]:
    yield from _start_demo(tmp_path_factory.mktemp("ui-open"), None)


@pytest.fixture(scope="module")  # not session: sync_playwright keeps an event loop running in the main
def chromium(chromium_executable: str) -> Iterator[Browser]:  # thread until it exits (asyncio.run elsewhere)
    """Debian's Chromium, headless, for the whole session."""
    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium's sandbox refuses to run as root
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_executable, args=[*args, "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) per test."""
    ctx = chromium.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(TIMEOUT_MS)
    yield ctx
    ctx.close()


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture
def page(context: BrowserContext, page_errors: PageErrors) -> Page:
    p = context.new_page()
    page_errors.attach(p)
    return p


def submit_button(form: Locator) -> Locator:
    """The form's submit button (a `<button>` without a type submits too)."""
    return form.locator("button:not([type]), button[type=submit], input[type=submit]").first


def login(page: Page, demo: Demo, path: str = "/ui/") -> None:
    """Open `path`, get redirected to the login form, type the token, and land back on `path`."""
    page.goto(demo.url + path)
    login_url = urllib.parse.urlsplit(page.url)
    assert login_url.path == "/ui/login", f"{path} without a session went to {page.url}, not /ui/login"
    (next_path,) = urllib.parse.parse_qs(login_url.query).get("next", [""])
    assert urllib.parse.unquote(next_path) == urllib.parse.unquote(path), f"login does not return to {path}: {page.url}"
    form = page.locator("form#login")
    assert form.get_attribute("method").lower() == "post" and form.get_attribute("action") == "/ui/login"
    form.locator("input[name=token][type=password]").fill(demo.token or "")
    with page.expect_navigation() as landed:
        submit_button(form).click()
    posted = landed.value.request.redirected_from
    assert posted is not None and posted.method == "POST", "the login did not redirect"
    assert posted.response().status == 303, f"the login answered {posted.response().status}, not 303 See Other"
    landed_path = urllib.parse.unquote(urllib.parse.urlsplit(page.url).path)
    assert landed_path == urllib.parse.unquote(path), f"login landed on {page.url}, not {path}"
