"""The log's live parts in a real browser: the heading badge follows the delivery, "N new: show them"
appears without a reload, Older and Newer page without one, times show in the browser's time zone."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import insert

from tests.support.factories import make_endpoint
from tests.support.web import PASSWORD
from tests.test_browser import EMAIL, LAPTOP, PHONE, browser, page, server  # noqa: F401 - shared fixtures
from webapp.extensions import db
from webapp.storage.models import Event, Message

pytestmark = [pytest.mark.browser, pytest.mark.db, pytest.mark.slow]


def add(endpoint, count: int, *, status="done", start=0, created_at=None) -> list[int]:
    events = [{"id": f"e{start + i:05d}", "action": "checkout", "customer": f"customer-{start + i}",
               "data_json": "{}"} for i in range(count)]
    db.session.execute(insert(Event), events)
    extra = {"created_at": created_at} if created_at else {}
    db.session.execute(insert(Message), [{"event_id": e["id"], "endpoint_id": endpoint.id, "action": "checkout",
                                          "customer": e["customer"], "status": status, "attempts": 1,
                                          "is_test": False, **extra} for e in events])
    db.session.commit()
    return list(db.session.scalars(db.select(Message.id).order_by(Message.id.desc())))


def log_in(page, server):  # noqa: F811
    page.goto(server.url + "/login")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(lambda url: "/login" not in url)


def test_the_heading_badge_follows_the_delivery_box(page, server, tmp_path):  # noqa: F811
    endpoint = make_endpoint("http://127.0.0.1:9/hook", name="Loyalty shop")
    [waiting] = add(endpoint, 1, status="resent")
    log_in(page, server)
    page.goto(server.url + f"/log/{waiting}")
    page.evaluate("window.__noReload = 1")
    expect(page.locator("h1 .status")).to_have_text("Resent")
    expect(page.locator("#resend-hint")).to_have_text("Still being delivered: Resend asks first.")
    db.session.execute(db.update(Message).values(status="failed", next_attempt_at=None))  # as the worker does
    db.session.commit()
    expect(page.locator("#message-live dd .status")).to_have_text("Failed")
    expect(page.locator("h1 .status")).to_have_text("Failed")
    expect(page.locator("#resend-hint")).to_have_text("")
    assert page.evaluate("window.__noReload") == 1
    for viewport in (LAPTOP, PHONE):
        page.set_viewport_size(viewport)
        page.screenshot(path=str(tmp_path / f"message-{viewport['width']}.png"), full_page=True)
    assert page.problems == []


def test_new_messages_show_as_a_notice_and_appear_when_asked(page, server, tmp_path):  # noqa: F811
    endpoint = make_endpoint("http://127.0.0.1:9/hook", name="Loyalty shop")
    add(endpoint, 2)
    log_in(page, server)
    page.goto(server.url + "/log")
    page.evaluate("window.__noReload = 1")
    expect(page.locator("#log-results tbody tr")).to_have_count(2)
    add(endpoint, 3, start=10)
    notice = page.locator("#log-new a")
    expect(notice).to_have_text("3 new messages: show them", timeout=15_000)
    expect(page.locator("#log-results tbody tr")).to_have_count(2)  # nothing moves under the operator's eyes
    page.screenshot(path=str(tmp_path / "log-new.png"))
    notice.click()
    expect(page.locator("#log-results tbody tr")).to_have_count(5)
    expect(page.locator("#log-new")).to_be_empty()
    assert page.evaluate("window.__noReload") == 1
    assert page.problems == []


def test_older_newer_and_newest_page_without_a_reload(page, server, tmp_path):  # noqa: F811
    endpoint = make_endpoint("http://127.0.0.1:9/hook", name="Loyalty shop")
    ids = add(endpoint, 120)
    log_in(page, server)
    page.goto(server.url + "/log")
    page.evaluate("window.__noReload = 1")
    page.click("text=Older ›")
    expect(page.locator("#log-results tbody tr").first).to_have_id(f"message-{ids[50]}")
    page.click("text=Older ›")
    expect(page.locator("#log-results tbody tr").first).to_have_id(f"message-{ids[100]}")
    expect(page.locator("text=Older ›")).to_have_count(0)
    page.click("text=‹ Newer")
    expect(page.locator("#log-results tbody tr").first).to_have_id(f"message-{ids[50]}")
    assert re.search(r"after=\d+", page.url)
    for viewport in (LAPTOP, PHONE):
        page.set_viewport_size(viewport)
        page.screenshot(path=str(tmp_path / f"log-middle-{viewport['width']}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    page.click("text=« Newest")
    expect(page.locator("#log-results tbody tr").first).to_have_id(f"message-{ids[0]}")
    assert page.evaluate("window.__noReload") == 1
    assert page.problems == []


def test_times_show_in_the_browsers_time_zone_with_utc_on_hover(browser, server):  # noqa: F811
    from webapp.domain.users import create_user

    create_user(EMAIL, PASSWORD)
    endpoint = make_endpoint("http://127.0.0.1:9/hook", name="Loyalty shop")
    [message_id] = add(endpoint, 1, created_at=dt.datetime(2026, 11, 29, 22, 45, 10))
    page = browser.new_page(viewport=LAPTOP, timezone_id="Asia/Kolkata", locale="en-GB")  # noqa: F811 - UTC+05:30
    try:
        log_in(page, server)
        for path in ("/log", f"/log/{message_id}"):
            page.goto(server.url + path)
            shown = page.locator("time[datetime='2026-11-29T22:45:10Z']").first
            expect(shown).to_have_text(re.compile(r"^2026-11-30 04:15:10 (GMT\+5:30|IST)$"))
            assert shown.get_attribute("title") == "2026-11-29 22:45:10 UTC"
    finally:
        page.close()
