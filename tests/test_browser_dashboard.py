"""The Dashboard and the Queue in a real browser, at laptop and phone widths: charts drawn under the
strict CSP, nothing wider than the screen, the tables behind the charts, Pause / Resume in place."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from tests.support.factories import make_endpoint
from tests.support.web import PASSWORD
from tests.test_browser import EMAIL, LAPTOP, PHONE, browser, page, server  # noqa: F401 - shared fixtures
from tests.test_dashboard import rollups
from tests.test_queue_view import waiting_message
from webapp.extensions import db
from webapp.storage.models import Endpoint, utcnow

pytestmark = [pytest.mark.browser, pytest.mark.db]

DOCS = Path(__file__).resolve().parent.parent / "docs"


def shot(page, tmp_path: Path, name: str) -> None:
    """docs/<name>.png when asked (UPDATE_SCREENSHOTS=1), so a plain run leaves the work tree clean."""
    path = DOCS / f"{name}.png" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)


def seed() -> tuple[Endpoint, Endpoint]:
    crm = make_endpoint("http://127.0.0.1:9/crm", name="CRM partner")
    shop = make_endpoint("http://127.0.0.1:9/shop", name="Shop app", health="failing", consecutive_failures=7,
                         failing_since=utcnow() - dt.timedelta(minutes=20), last_error="HTTP 503")
    this_hour = utcnow().replace(minute=0, second=0, microsecond=0)
    rows = []
    for endpoint, scale in ((crm, 1), (shop, 2)):
        for hours_ago in range(0, 30 * 24, 3):
            counts = {"done": 40 * scale + hours_ago % 17, "retried": hours_ago % 5, "failed": hours_ago % 4,
                      "latency": {1: 20, 2: 15, 3: 5 + hours_ago % 4}}
            rows.append((endpoint.id, this_hour - dt.timedelta(hours=hours_ago), counts))
    db.session.add_all(rollups(*rows))
    db.session.commit()
    for minutes in (1, 2, 3):
        waiting_message(shop, due=utcnow() + dt.timedelta(minutes=minutes))
    return crm, shop


def test_dashboard_and_queue_at_laptop_and_phone_widths(page, server, tmp_path):
    crm, shop = seed()
    page.goto(server.url + "/")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(server.url + "/dashboard")

    assert page.locator("svg.chart-svg").count() == 4
    assert page.locator(f"#chart-{crm.id}-hours-svg-title").text_content() == "Attempts per hour, last 24 hours"
    box = page.locator("svg.chart-svg").first.bounding_box()
    assert box["width"] > 300 and box["height"] > 100, "the chart is drawn at a readable size"
    assert page.locator("rect.bar-done").count() >= 50 and page.locator("rect.bar-failed").count() > 0
    page.locator("summary:has-text('Show as a table')").first.click()
    assert page.locator(".chart-table table").first.is_visible()
    shot(page, tmp_path, "dashboard")

    page.click("nav a:has-text('Queue')")
    row = page.locator(f"#queue-{shop.id}")
    assert "3" in row.locator("td[data-label=Waiting]").inner_text()
    assert "retry 2 of 5" in row.inner_text()
    row.locator("button:has-text('Pause deliveries')").click()
    page.wait_for_selector(f"#queue-{shop.id} button:has-text('Resume deliveries')")
    assert "deliveries paused" in page.locator(f"#queue-{shop.id}").inner_text()
    shot(page, tmp_path, "queue")
    page.locator(f"#queue-{shop.id} button:has-text('Resume deliveries')").focus()
    page.keyboard.press("Enter")  # the buttons work from the keyboard
    page.wait_for_selector(f"#queue-{shop.id} button:has-text('Pause deliveries')")

    for path in ("/dashboard", "/queue"):
        page.set_viewport_size(PHONE)
        page.goto(server.url + path)
        page.screenshot(path=str(tmp_path / f"{path.strip('/')}-phone.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
        if path == "/dashboard":  # the shrunken SVG gets larger text, in its own units
            assert page.evaluate("getComputedStyle(document.querySelector('.chart-svg .axis')).fontSize") == "16px"
    assert page.problems == [], "errors in the browser console (a CSP violation shows up here)"
