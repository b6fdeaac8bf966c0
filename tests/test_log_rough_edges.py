"""The log's rough edges (issue 15): Newest / Newer / Older, "N new", bulk resend that says what it skips,
empty states that point somewhere, the message heading that polls with the rest, times as <time> in UTC."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import insert

from tests.support.factories import make_endpoint
from webapp.domain.logbook.filters import LogFilter
from webapp.domain.logbook.paging import page
from webapp.extensions import db
from webapp.storage.models import Event, Message

pytestmark = pytest.mark.db


def text(response) -> str:
    return response.get_data(as_text=True)


def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="message-(\d+)"', html)]


def add(endpoint, count: int, *, status="done", customer="c", start=0, **extra) -> list[int]:
    events = [{"id": f"e{start + i:05d}", "action": "checkout", "customer": customer, "data_json": "{}"}
              for i in range(count)]
    db.session.execute(insert(Event), events)
    db.session.execute(insert(Message), [{"event_id": e["id"], "endpoint_id": endpoint.id, "action": "checkout",
                                          "customer": customer, "status": status, "attempts": 1, "is_test": False,
                                          **extra} for e in events])
    db.session.commit()
    return list(db.session.scalars(db.select(Message.id).order_by(Message.id.desc())))


@pytest.fixture
def endpoint(app):
    return make_endpoint("http://127.0.0.1:9/hook", name="Shop")


def test_older_then_newer_walks_back_to_the_same_pages(endpoint):
    ids = add(endpoint, 23)  # newest first
    first = page(LogFilter(), size=5)
    assert [m.id for m in first.messages] == ids[:5] and first.newer is None and first.older == ids[4]
    pages, current = [first], first
    while current.older:
        current = page(LogFilter(), before=current.older, size=5)
        pages.append(current)
    assert [m.id for p in pages for m in p.messages] == ids and pages[-1].older is None
    back = pages[-1]
    for expected in reversed(pages[:-1]):
        back = page(LogFilter(), after=back.newer, size=5)
        if expected is first:
            assert back.is_newest
        assert [m.id for m in back.messages] == [m.id for m in expected.messages]
    assert page(LogFilter(), after=ids[2], size=5).is_newest, "near the top, Newer is the newest page, full"


def test_the_pager_offers_newest_newer_and_older(operator, endpoint):
    ids = add(endpoint, 120)
    top = text(operator.get("/log"))
    assert "Older ›" in top and "Newer" not in top and "« Newest" not in top
    middle = text(operator.get(f"/log?before={ids[49]}"))
    assert row_ids(middle) == ids[50:100]
    assert f'href="/log?after={ids[50]}"' in middle and 'href="/log"' in middle and f"before={ids[99]}" in middle
    assert row_ids(text(operator.get(f"/log?after={ids[50]}"))) == ids[:50]


def test_new_messages_are_counted_for_the_newest_page_only(operator, endpoint):
    ids = add(endpoint, 3)
    html = text(operator.get("/log?customer=c"))
    assert f'hx-get="/log/new?customer=c&amp;after={ids[0]}" hx-trigger="every 5s"' in html
    assert operator.get(f"/log/new?customer=c&after={ids[0]}").status_code == 204, "nothing new: nothing swapped"
    add(endpoint, 2, start=10)
    add(endpoint, 4, start=20, customer="other")
    notice = text(operator.get(f"/log/new?customer=c&after={ids[0]}"))
    assert "2 new messages matching the filter: show them" in notice and 'hx-target="#log-results"' in notice
    assert "every 5s" in notice and f"after={ids[0]}" in notice, "keeps counting from the same row"
    assert "/log/new" not in text(operator.get(f"/log?before={ids[0]}")), "an older page does not poll"


def test_bulk_resend_says_how_many_it_skips_and_why(operator, endpoint):
    add(endpoint, 3, status="failed")
    failed = add(endpoint, 2, status="failed", start=10)[:2]
    add(endpoint, 1, status="failed", start=20, is_test=True)
    for original in failed:  # resent already: the newer entries are in the log
        db.session.add(Message(event_id=db.session.get(Message, original).event_id, endpoint_id=endpoint.id,
                               action="checkout", customer="c", status="done", attempts=1, resend_of_id=original))
    db.session.commit()
    confirm = text(operator.get("/log/resend-failed"))
    assert "Of <strong>6</strong> failed message(s)" in confirm and "this queues <strong>3</strong> again" in confirm
    assert "Skipped: 2 already resent (the newer entry is in the log); 1 test message(s)" in confirm
    assert ">Resend 3 of 6</button>" in confirm
    done = operator.post("/log/resend-failed", {})
    assert done.status_code == 302
    flashed = text(operator.get("/log"))
    assert "3 failed message(s) queued again. Skipped: 2 already resent" in flashed
    again = text(operator.get("/log/resend-failed"))
    assert "None of the 6 failed message(s) needs resending" in again and "5 already resent" in again


def test_empty_states_point_the_way(operator, app):
    fresh = text(operator.get("/log"))
    assert "No messages yet" in fresh and 'href="/settings">Set up an endpoint in Settings' in fresh
    assert "Export .csv" not in fresh and "Resend failed" not in fresh and "<table" not in fresh
    endpoint = make_endpoint("http://127.0.0.1:9/hook")
    assert "press Test on an endpoint" in text(operator.get("/log"))
    add(endpoint, 1)
    filtered = text(operator.get("/log?customer=nobody"))
    assert "No messages match this filter" in filtered and 'href="/log">clear the filter' in filtered


def test_a_polled_message_view_carries_its_heading_badge_and_hint(operator, endpoint):
    [message_id] = add(endpoint, 1, status="resent")
    html = text(operator.get(f"/log/{message_id}"))
    assert '<span id="head-status"><span class="status status-resent">Resent</span></span>' in html
    db.session.execute(db.update(Message).values(status="failed"))
    db.session.commit()
    polled = text(operator.client.get(f"/log/{message_id}", headers={"HX-Request": "true", "HX-Target": "message-live"}))
    assert '<span id="head-status" hx-swap-oob="true"><span class="status status-failed">Failed</span>' in polled
    assert '<span id="resend-hint" class="hint" hx-swap-oob="true"></span>' in polled
    assert '<div id="message-live"' in polled and "every 2s" not in polled, "final: the polling stops"


def test_times_are_time_elements_in_utc_for_the_browser_to_localise(operator, endpoint):
    [message_id] = add(endpoint, 1)
    created = db.session.get(Message, message_id).created_at
    stamp = created.strftime("%Y-%m-%d %H:%M:%S")
    tag = f'<time datetime="{created.isoformat(timespec="seconds")}Z">{stamp} UTC</time>'
    assert tag in text(operator.get("/log")) and tag in text(operator.get(f"/log/{message_id}"))
