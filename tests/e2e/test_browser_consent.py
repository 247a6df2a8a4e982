"""The login and consent pages in a real browser: Chromium, driven by Playwright.

The FastAPI demo serves the pages; the partner app registered
``http://127.0.0.1/callback``, so any port matches and a tiny HTTP server on a
free port stands in for the app and records where the browser lands. What only
a browser can tell: the forms submit under the pages' Content-Security-Policy
(``form-action`` must allow the redirect to the app), the pages load without a
console error or a CSP violation, and the cookies work.

Debian's chromium is used (no browser download). Without it, or without the
``playwright`` package, these tests are skipped, unless ``AUTHMW_TEST_BROWSER``
is ``required`` (CI sets it), when they fail instead.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from authmw.demo import SCOPE_DESCRIPTIONS, pkce_pair
from tests.e2e.support import DemoServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

CHROMIUM = "/usr/bin/chromium"
#: How long a page may take to load or navigate, in milliseconds. A liveness bound only.
NAVIGATION_TIMEOUT_MS = 30_000
SCOPES = ("appointments:read", "reports:read")


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless; skipped (failed in CI) when it cannot run here."""
    reason = _missing()
    if reason is not None:
        if os.environ.get("AUTHMW_TEST_BROWSER") == "required":
            pytest.fail(f"a browser test is required here, but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


class Callback:
    """A stand-in for the app's redirect URI: records each query it is sent."""

    def __init__(self) -> None:
        self.queries: list[dict[str, str]] = []
        received = self.queries

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/callback":
                    received.append(dict(parse_qsl(parts.query)))
                body = b"<!doctype html><title>partner</title><p>Back at the app.</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test reads self.queries

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self._server.server_address[1]}/callback"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def callback() -> Iterator[Callback]:
    server = Callback()
    yield server
    server.close()


class Watched:
    """A page whose console errors and CSP violations are recorded."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        # Runs in every document before its own code, whatever the CSP says
        # (Playwright injects it), so violations of any kind are counted.
        page.add_init_script(
            "window.__violations = [];"
            "document.addEventListener('securitypolicyviolation', e =>"
            " window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
        )

    def _console(self, message: ConsoleMessage) -> None:
        # The pages declare an empty icon, so the browser asks for no /favicon.ico.
        if message.type in ("error", "warning"):
            self.errors.append(f"console {message.type}: {message.text}")

    def violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__violations || []")
        return found


@pytest.fixture
def page(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context()
    context.set_default_timeout(NAVIGATION_TIMEOUT_MS)
    try:
        yield Watched(context.new_page())
    finally:
        context.close()


def authorization_url(server: DemoServer, redirect_uri: str, state: str) -> str:
    partner = server.credentials()["clients"]["partner"]
    _, challenge = pkce_pair()
    query = {
        "response_type": "code",
        "client_id": partner["client_id"],
        "redirect_uri": redirect_uri,
        "scope": " ".join(SCOPES),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return f"{server.base_url}/oauth/authorize?{urlencode(query)}"


def sign_in(page: Watched, server: DemoServer, url: str, user: str) -> None:
    """Open the authorization URL, check the login page is clean, sign in as ``user``."""
    page.page.goto(url)
    assert page.page.title() == "Sign in · authmw demo"
    assert "Partner Scheduling" in page.page.inner_text("main")
    assert page.errors == []
    assert page.violations() == []
    page.page.fill("input[name=username]", user)
    page.page.fill("input[name=password]", server.credentials()["users"][user])
    with page.page.expect_navigation():
        page.page.click("button[type=submit]")


def test_allow_lands_on_the_redirect_uri_with_code_and_state(
    demo_server: DemoServer, page: Watched, callback: Callback, tmp_path: Path
) -> None:
    sign_in(page, demo_server, authorization_url(demo_server, callback.uri, "allow-1"), "manager")
    main = page.page.inner_text("main")
    assert "Partner Scheduling wants to access your account" in main
    assert "Signed in as manager" in main
    for scope in SCOPES:
        assert SCOPE_DESCRIPTIONS[scope] in main
        assert scope in main
    assert page.errors == []
    assert page.violations() == []
    screenshot = tmp_path / "consent.png"
    page.page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    with page.page.expect_navigation(url=f"{callback.uri}?**"):
        page.page.click("button[value=allow]")
    landed = urlsplit(page.page.url)
    assert f"{landed.scheme}://{landed.netloc}{landed.path}" == callback.uri
    query = dict(parse_qsl(landed.query))
    assert query["state"] == "allow-1"
    assert query["code"]
    assert "error" not in query
    assert callback.queries == [query]  # the app itself received exactly this
    assert page.errors == []


def test_deny_lands_on_the_redirect_uri_with_access_denied(
    demo_server: DemoServer, page: Watched, callback: Callback
) -> None:
    # employee has not consented before, so the consent page is shown.
    sign_in(page, demo_server, authorization_url(demo_server, callback.uri, "deny-1"), "employee")
    main = page.page.inner_text("main")
    assert "Signed in as employee" in main
    # employee's role has appointments:read only: reports:read is withheld, and said so.
    assert SCOPE_DESCRIPTIONS["appointments:read"] in main
    assert "which your role does not include" in main

    with page.page.expect_navigation(url=f"{callback.uri}?**"):
        page.page.click("button[value=deny]")
    query = dict(parse_qsl(urlsplit(page.page.url).query))
    assert query["error"] == "access_denied"
    assert query["state"] == "deny-1"
    assert "code" not in query
    assert callback.queries == [query]
    assert page.errors == []
