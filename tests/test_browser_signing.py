"""Standard Webhooks and custom headers on the Settings screen in Debian's Chromium: choose the type,
Generate (shown once, Copy), a secret header, Save, Rotate; usable at 390 px without sideways scrolling."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.receiver import Receiver
from tests.support.verifying_receivers import check_standard_webhooks
from tests.test_browser import (  # noqa: F401 - fixtures
    LAPTOP,
    PHONE,
    browser,
    choose_auth_type,
    log_in,
    page,
    server,
)
from webapp.extensions import db
from webapp.storage.crypto import secret_box
from webapp.storage.models import Endpoint

pytestmark = [pytest.mark.browser, pytest.mark.db, pytest.mark.slow]

# SCREENSHOTS=/some/dir keeps the pictures for a person to look at; otherwise they go to tmp_path.
SHOTS = Path(os.environ.get("SCREENSHOTS", "")) if os.environ.get("SCREENSHOTS") else None


def shoot(tab, tmp_path: Path, name: str) -> None:
    tab.screenshot(path=str((SHOTS or tmp_path) / f"{name}.png"), full_page=True)


def test_generate_save_rotate_and_custom_headers(page, server, tmp_path):  # noqa: F811 - fixtures
    with Receiver() as receiver:
        log_in(page, server)
        page.fill("#url", receiver.url)
        page.check("input[name=actions][value=checkout]")
        choose_auth_type(page, "hmac", "signing_secret")
        page.click("button:has-text('Generate a new secret')")
        page.wait_for_selector("#signing_secret-new")
        generated = page.input_value("#signing_secret-new")
        assert generated.startswith("whsec_")
        page.click("button:has-text('Copy')")
        page.wait_for_selector("button:has-text('Copied')")
        page.fill("input[name='custom_headers-0-name']", "X-Api-Key")
        page.fill("input[name='custom_headers-0-value']", "header-secret-1")
        page.check("input[name='custom_headers-0-secret']")
        page.fill("input[name='custom_headers-1-name']", "X-Tenant")
        page.fill("input[name='custom_headers-1-value']", "acme")
        shoot(page, tmp_path, "new-endpoint-desktop")
        page.set_viewport_size(PHONE)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shoot(page, tmp_path, "new-endpoint-phone")
        page.set_viewport_size(LAPTOP)

        page.click("button:has-text('Save')")
        page.wait_for_selector("text=created.")
        endpoint = db.session.scalars(db.select(Endpoint)).one()
        assert secret_box().decrypt(endpoint.auth_secret_encrypted) == generated
        assert [h["name"] for h in endpoint.custom_headers] == ["X-Api-Key", "X-Tenant"]
        db.session.rollback()
        assert generated not in page.content() and "header-secret-1" not in page.content()

        page.click("button:has-text('Test')")
        page.wait_for_selector("text=How to verify")
        page.locator("#test-result").screenshot(path=str((SHOTS or tmp_path) / "test-result.png"))
        [request] = receiver.requests
        assert check_standard_webhooks(request, generated) is None
        assert request.header("X-Api-Key") == "header-secret-1" and request.header("X-Tenant") == "acme"

        page.fill("#window_hours", "12")
        page.click("button:has-text('Rotate secret')")
        page.wait_for_selector("text=Rotation window")
        rotated = page.input_value("#signing_secret-new")
        assert rotated.startswith("whsec_") and rotated != generated
        assert page.input_value("input[name='custom_headers-1-value']") == "acme", "the settings form shows the saved values"
        assert page.is_checked("input[name=actions][value=checkout]")
        shoot(page, tmp_path, "rotated-desktop")
        page.set_viewport_size(PHONE)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shoot(page, tmp_path, "rotated-phone")
        for part, selector in (("rotation", "#rotation"), ("headers", ".card:has(.header-rows)"),
                               ("auth", ".card:has(#auth_type)")):
            page.locator(selector).screenshot(path=str((SHOTS or tmp_path) / f"phone-{part}.png"))
        assert page.problems == [], page.problems
