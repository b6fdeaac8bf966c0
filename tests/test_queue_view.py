"""The Queue view: what waits and why, Try now, Pause / Resume, with a real worker and real receivers."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.support.factories import due_for_delivery, final, make_endpoint, reload_message
from tests.support.receiver import Receiver
from tests.test_every_route import snapshot
from webapp.domain.events import emit
from webapp.extensions import db
from webapp.storage.models import Endpoint, Event, Message, utcnow
from webapp.storage.statuses import DONE, QUEUED, RESENT

pytestmark = pytest.mark.db


def waiting_message(endpoint: Endpoint, *, due: dt.datetime, status: str = RESENT, attempts: int = 1) -> Message:
    event = Event(action="checkout", customer="c1", data_json='{"n": 1}', created_at=utcnow() - dt.timedelta(minutes=3))
    db.session.add(event)
    db.session.flush()
    message = Message(event_id=event.id, endpoint_id=endpoint.id, action="checkout", customer="c1", status=status,
                      attempts=attempts, created_at=event.created_at, next_attempt_at=due)
    db.session.add(message)
    db.session.commit()
    due_for_delivery(message)
    return message


def queue_row(page: str, endpoint: Endpoint) -> str:
    start = page.index(f'id="queue-{endpoint.id}"')
    return page[start:page.index("</tr>", start)]


def test_queue_lists_what_waits_per_endpoint_and_why(operator):
    busy = make_endpoint("http://127.0.0.1:9/a", name="Busy")
    make_endpoint("http://127.0.0.1:9/b", name="Idle")
    later = utcnow() + dt.timedelta(hours=1)
    waiting_message(busy, due=later)
    waiting_message(busy, due=later + dt.timedelta(minutes=5), status=QUEUED, attempts=0)
    far = make_endpoint("http://127.0.0.1:9/c", name="Far")
    in_two_days = utcnow() + dt.timedelta(days=2)
    waiting_message(far, due=in_two_days)

    page = operator.get("/queue").get_data(as_text=True)
    row = queue_row(page, busy)
    assert "<strong>2</strong>" in row and "(1 retrying)" in row and "3 min old" in row
    # A time of today reads as the clock; of another day (an hour from 23:30 is tomorrow), with its date.
    at = f"{later:%H:%M:%S} UTC" if later.date() == utcnow().date() else f"{later:%Y-%m-%d %H:%M} UTC"
    assert f"retry 2 of 5 at {at}" in row, "why: the reason of the message tried next"
    assert "Try now" in row and "Pause deliveries" in row
    assert f"retry 2 of 5 at {in_two_days:%Y-%m-%d %H:%M} UTC" in queue_row(page, far)
    assert "none" in page[page.index("Idle"):]


def test_try_now_sends_a_retry_scheduled_an_hour_away_and_past_a_retry_after(app, operator, start_worker):
    with Receiver() as receiver:
        endpoint = make_endpoint(receiver.url, name="Shop")
        endpoint.retry_after_until = utcnow() + dt.timedelta(hours=1)
        db.session.commit()
        message = waiting_message(endpoint, due=utcnow() + dt.timedelta(hours=1))
        start_worker()

        response = operator.post(f"/queue/{endpoint.id}/try-now", htmx=True)
        assert response.status_code == 200 and "1 message(s) made due now" in response.get_data(as_text=True)
        receiver.wait_for(1)
        assert final(message.id).status == DONE


def test_pause_holds_sending_but_keeps_new_messages_and_resume_sends_them(app, operator, start_worker):
    with Receiver() as paused_receiver, Receiver() as other_receiver, Receiver() as disabled_receiver:
        paused = make_endpoint(paused_receiver.url, name="Paused one")
        other = make_endpoint(other_receiver.url, name="Other")
        make_endpoint(disabled_receiver.url, name="Disabled one", enabled=False)
        response = operator.post(f"/queue/{paused.id}/pause")
        assert response.status_code == 303
        assert "Paused" in operator.get("/queue").get_data(as_text=True)
        start_worker()

        event = emit("checkout", "c1", {"n": 1})
        by_endpoint = {m.endpoint_id: m.id for m in event.messages}
        assert set(by_endpoint) == {paused.id, other.id}, "a paused endpoint still gets messages; a disabled one not"
        assert final(by_endpoint[other.id]).status == DONE
        # The wake-up that delivered to Other woke the paused endpoint too: it sent nothing.
        assert paused_receiver.requests == [] and reload_message(by_endpoint[paused.id]).status == QUEUED
        row = operator.get("/queue").get_data(as_text=True)
        assert "waiting: deliveries paused by operator@example.com" in row

        response = operator.post(f"/queue/{paused.id}/resume", htmx=True)
        assert response.status_code == 200 and "Pause deliveries" in response.get_data(as_text=True)
        assert final(by_endpoint[paused.id]).status == DONE
        assert len(paused_receiver.requests) == 1 and disabled_receiver.requests == []


def test_try_now_on_a_paused_endpoint_is_refused_and_changes_nothing(operator):
    endpoint = make_endpoint("http://127.0.0.1:9/a", name="Shop")
    waiting_message(endpoint, due=utcnow() + dt.timedelta(hours=1))
    operator.post(f"/queue/{endpoint.id}/pause")
    before = snapshot()
    response = operator.post(f"/queue/{endpoint.id}/try-now")
    assert response.status_code == 409 and "the endpoint is paused: resume it first" in response.get_data(as_text=True)
    assert snapshot() == before
    htmx = operator.post(f"/queue/{endpoint.id}/try-now", htmx=True)
    assert htmx.status_code == 422 and "resume it first" in htmx.get_data(as_text=True)
    assert operator.post("/queue/999/pause").status_code == 404


def test_a_large_backlog_is_counted_up_to_the_cap_on_pages_and_exactly_in_metrics(app, client, operator, monkeypatch):
    from webapp.domain import queue

    endpoint = make_endpoint("http://127.0.0.1:9/a", name="Busy")
    for _ in range(4):
        waiting_message(endpoint, due=utcnow() + dt.timedelta(hours=1))
    monkeypatch.setattr(queue, "COUNT_CAP", 3)
    assert "<strong>3+</strong>" in operator.get("/queue").get_data(as_text=True)
    assert "<strong>3+</strong>" in operator.get("/dashboard").get_data(as_text=True)
    app.config["WEBHOOKS_METRICS_TOKEN"] = "t"
    scraped = client.get("/metrics", headers={"Authorization": "Bearer t"}).get_data(as_text=True)
    assert f'webhooks_backlog_messages{{endpoint="{endpoint.id}"}} 4.0' in scraped
