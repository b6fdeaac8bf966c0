"""The Settings screen in a real browser: Debian's Chromium driven by Playwright, the app on a real server.

Never a downloaded browser build: `make test` installs Debian's chromium
(the Makefile's browser-deps target). Without it this test fails, on purpose.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.live_server import LiveServer
from tests.support.receiver import Receiver
from tests.support.web import PASSWORD
from webapp.domain.users import create_user
from webapp.extensions import db
from webapp.storage.crypto import secret_box
from webapp.storage.models import Endpoint

pytestmark = [pytest.mark.browser, pytest.mark.db, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
# No network here: without these Chromium tries to phone home and stalls.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DOCS_SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "settings.png"
LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
EMAIL = "operator@example.com"


@pytest.fixture
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make browser-deps, or apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def server(app):
    with LiveServer(app) as live:
        yield live


@pytest.fixture
def page(browser, server):
    create_user(EMAIL, PASSWORD)
    page = browser.new_page(viewport=LAPTOP)
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.problems = problems
    yield page
    page.close()


def screenshot_path(tmp_path: Path) -> Path:
    """docs/settings.png when asked (UPDATE_SCREENSHOTS=1), so a plain test run leaves the work tree clean."""
    return DOCS_SCREENSHOT if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path / "settings.png"


def log_in(page, server):
    page.goto(server.url + "/")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(server.url + "/dashboard")  # the landing page
    page.goto(server.url + "/settings")
    page.wait_for_url(server.url + "/settings/new")


def choose_auth_type(page, auth_type: str, shows: str):
    page.select_option("#auth_type", auth_type)
    page.wait_for_selector(f"#auth-fields label[for={shows}]")


def test_settings_screen_end_to_end(page, server, tmp_path):
    with Receiver(status=202, response_body=b'{"accepted": true}',
                  response_headers={"Content-Type": "application/json"}) as receiver:
        log_in(page, server)
        page.fill("#name", "Loyalty shop")
        page.fill("#url", receiver.url)
        page.check("input[name=actions][value=checkout]")
        page.check("input[name=actions][value=points_added]")

        # Switching the type swaps the fields in place: no reload, typed values kept, secrets included
        # (kept by the browser: the partial's requests never carry them).
        partial_bodies = []
        page.on("request", lambda request: "/auth-fields" in request.url and partial_bodies.append(
            (request.method, request.url, request.post_data or "")))
        page.evaluate("window.__noReload = 1")
        choose_auth_type(page, "basic", "username")
        page.fill("#username", "shop-user")
        page.fill("#password", "basic-secret")
        choose_auth_type(page, "aws", "region")
        assert not page.is_visible("#username") and not page.is_visible("#password")
        assert page.input_value("#algo_prefix") == "AWS4" and page.input_value("#vendor_key") == "Amz"
        page.fill("#region", "eu-west-1")
        page.fill("#service", "execute-api")
        page.fill("#access_key_id", "AKIDEXAMPLE")
        page.fill("#secret_key", "aws-secret")
        choose_auth_type(page, "basic", "username")
        assert page.input_value("#username") == "shop-user"
        assert page.input_value("#password") == "basic-secret", "a typed secret survives the switch"
        choose_auth_type(page, "aws", "region")
        assert page.input_value("#region") == "eu-west-1" and page.input_value("#secret_key") == "aws-secret"
        choose_auth_type(page, "basic", "username")
        assert page.evaluate("window.__noReload") == 1, "the page was reloaded"
        assert len(partial_bodies) == 5 and all(method == "POST" for method, _, _ in partial_bodies)
        assert any("AKIDEXAMPLE" in body for _, _, body in partial_bodies), "typed non-secrets are carried"
        for _, url, body in partial_bodies:
            assert "AKIDEXAMPLE" not in url and "basic-secret" not in body and "aws-secret" not in body

        page.click("button:has-text('Save')")
        page.wait_for_selector("text=Endpoint “Loyalty shop” created.")
        endpoint = db.session.scalars(db.select(Endpoint)).one()
        assert (endpoint.auth_type, endpoint.auth_username) == ("basic", "shop-user")
        assert secret_box().decrypt(endpoint.auth_secret_encrypted) == "basic-secret"
        assert "basic-secret" not in page.content()
        assert page.is_visible("text=leave blank to keep it")
        db.session.rollback()

        page.screenshot(path=str(screenshot_path(tmp_path)))

        page.select_option("#test-action", "points_added")
        page.click(".test-panel button:has-text('Test')")
        page.wait_for_selector("#test-result .result-code")
        assert page.inner_text("#test-result .result-code") == "202"
        result = page.inner_text("#test-result")
        assert f"POST {receiver.url}" in result and "Basic [redacted]" in result and '"accepted": true' in result
        [request] = receiver.wait_for(1)
        assert request.json()["action"] == "points_added"

        # The Test button uses the saved settings: unsaved edits are flagged next to it.
        assert not page.is_visible("text=You have unsaved changes")
        page.fill("#timeout", "30")
        assert page.is_visible("text=You have unsaved changes")

        # A phone: one column, nothing wider than the screen.
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(tmp_path / "settings-phone.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert page.is_visible(".test-panel button:has-text('Test')")

    assert page.problems == [], "errors in the browser console (a CSP violation shows up here)"


def test_leaving_with_unsaved_changes_warns(page, server):
    log_in(page, server)
    page.fill("#url", "http://127.0.0.1:9/typed")
    dialogs = []

    def answer(dialog):
        dialogs.append(dialog.type)
        dialog.dismiss()  # stay on the page

    page.on("dialog", answer)
    page.click("a:has-text('Settings')", no_wait_after=True)
    page.wait_for_timeout(500)
    assert dialogs == ["beforeunload"]
    assert page.input_value("#url") == "http://127.0.0.1:9/typed"
