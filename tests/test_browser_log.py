"""The Log screen in a real browser: filter by response code, open a message, resend it,
and watch the new entry go from Queued to Done without reloading (a real worker delivers it)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support.factories import make_endpoint
from tests.support.receiver import Receiver
from tests.support.web import PASSWORD
from tests.test_browser import EMAIL, LAPTOP, PHONE, browser, page, server  # noqa: F401 - shared fixtures
from webapp.extensions import db
from webapp.storage.models import Event, Message, response_class, utcnow

pytestmark = [pytest.mark.browser, pytest.mark.db, pytest.mark.slow]

DOCS_SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "log.png"


def seed(endpoint, count: int) -> list[Message]:
    codes = [200, 200, 503, 200, 404, 200]
    made = []
    for i in range(count):
        code = codes[i % len(codes)]
        event = Event(id=f"evt{i:04d}", action=["checkout", "points_added", "tier_change"][i % 3],
                      customer=f"customer-{100 + i}", data_json='{"points": 10}')
        message = Message(event=event, endpoint_id=endpoint.id, action=event.action, customer=event.customer,
                          status="done" if code == 200 else "failed", response_code=code,
                          response_class=response_class(code), attempts=1 if code == 200 else 5,
                          last_attempt_at=utcnow())
        db.session.add_all([event, message])
        made.append(message)
    db.session.commit()
    return made


def test_filter_view_resend_and_watch_the_new_entry(page, server, start_worker, tmp_path):  # noqa: F811
    with Receiver() as receiver:
        endpoint = make_endpoint(receiver.url, name="Loyalty shop")
        messages = seed(endpoint, 12)
        failed_503 = [m for m in messages if m.response_code == 503]
        start_worker()

        page.goto(server.url + "/login")
        page.fill("#email", EMAIL)
        page.fill("#password", PASSWORD)
        page.click("button:has-text('Log in')")
        page.goto(server.url + "/log")
        page.evaluate("window.__noReload = 1")
        assert page.locator("tbody tr").count() == 12

        page.fill("input[name=code]", "503")
        page.click("button:has-text('Filter')")
        expect(page.locator("#log-results tbody tr")).to_have_count(len(failed_503))
        assert "code=503" in page.url, "the filter is in the address bar"
        assert page.evaluate("window.__noReload") == 1, "filtering did not reload the page"
        shot = DOCS_SCREENSHOT if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path / "log.png"
        page.goto(server.url + "/log")
        page.screenshot(path=str(shot), full_page=False)
        page.go_back()
        expect(page.locator("#log-results tbody tr")).to_have_count(len(failed_503))

        page.click(f"#message-{failed_503[0].id} a:has-text('View')")
        page.wait_for_selector("h1:has-text('Message #%d')" % failed_503[0].id)
        page.click("button:has-text('Resend')")
        page.wait_for_selector("h1 .status-queued, h1 .status-done")
        new_id = int(re.search(r"/log/(\d+)$", page.url).group(1))
        assert new_id != failed_503[0].id
        page.wait_for_selector("#message-live .status-done", timeout=20_000)  # polled, no reload
        assert receiver.requests and receiver.requests[0].header("Webhook-Id") == failed_503[0].event_id

        page.goto(server.url + "/log")
        assert page.locator("tbody tr").first.get_attribute("id") == f"message-{new_id}"
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(tmp_path / "log-phone.png"))
        page.set_viewport_size(LAPTOP)
        assert page.problems == []


def test_an_impossible_range_is_named_beside_the_filter_and_a_busy_message_asks_before_resending(
        page, server, tmp_path):  # noqa: F811
    endpoint = make_endpoint("http://127.0.0.1:9/hook", name="Loyalty shop")
    messages = seed(endpoint, 3)
    busy = messages[2]
    busy.status, busy.attempts, busy.next_attempt_at = "resent", 2, utcnow()
    db.session.commit()
    page.goto(server.url + "/login")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Log in')")
    page.goto(server.url + "/log")
    page.evaluate("window.__noReload = 1")

    page.fill("input[name=created_from]", "2026-12-01")
    page.fill("input[name=created_to]", "2026-11-01")
    page.click("button:has-text('Filter')")  # htmx: the form comes back with the message beside the range
    error = page.locator("#filter-created_from-error")
    expect(error).to_contain_text("must not be after the end of the range")
    expect(page.locator("#log-results tbody tr")).to_have_count(0)
    expect(page.locator("#log-results")).to_contain_text("No messages are listed until the filter is corrected")
    expect(error).to_contain_text("Created from must not be after")
    assert page.locator("input[name=created_from]").get_attribute("aria-invalid") == "true"
    assert page.evaluate("window.__noReload") == 1, "no reload: htmx swapped the form and the results"
    page.screenshot(path=str(tmp_path / "log-bad-range.png"))

    page.goto(server.url + f"/log/{busy.id}")
    page.click("button:has-text('Resend')")
    page.wait_for_selector(f"h1:has-text('Resend message #{busy.id}?')")
    page.screenshot(path=str(tmp_path / "resend-confirm.png"))
    page.click("button:has-text('Resend anyway')")
    page.wait_for_selector("h1 .status-queued")
    assert int(re.search(r"/log/(\d+)$", page.url).group(1)) != busy.id
    # The one console line is Chromium noting the 422 that carried the filter's message.
    assert [p for p in page.problems if "status of 422" not in p] == []
