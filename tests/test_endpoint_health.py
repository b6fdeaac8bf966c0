"""Endpoint health end to end: failing endpoints are probed, receivers' signals are obeyed,
endpoints are disabled with the reason shown, operators see it and can resend what failed meanwhile."""
from __future__ import annotations

import collections
import datetime as dt
import email.utils
import re

import pytest
from sqlalchemy import func, select

from tests.support.factories import attempts_of, final, make_endpoint, reload_message
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until
from webapp.domain.events import emit, emit_many
from webapp.extensions import db
from webapp.storage.models import Endpoint, Message, PendingMessage
from webapp.storage.statuses import DONE, FAILED, QUEUED

pytestmark = pytest.mark.db


def endpoint(endpoint_id: int) -> Endpoint:
    db.session.expire_all()
    found = db.session.get(Endpoint, endpoint_id)
    db.session.rollback()
    return found


def requests_per_message(receiver: Receiver) -> collections.Counter:
    return collections.Counter(r.json()["customer"] for r in receiver.requests)


def test_a_failing_endpoint_is_probed_not_hammered_and_untried_messages_are_not_counted(app, start_worker):
    """30 messages for a receiver that answers 500 to everything: the first five fail, the endpoint
    is failing, and from then on only those five (retrying on their schedule) and one new
    message per interval are sent. Every attempt counted reached the receiver."""
    with Receiver(status=500) as receiver:
        dead = make_endpoint(receiver.url)
        start_worker(env={"WEBHOOKS_RETRY_INTERVAL": "0.5", "WEBHOOKS_MAX_ATTEMPTS": "3"})
        events = emit_many([("checkout", f"c{i}", {"i": i}) for i in range(30)])
        wait_until(lambda: endpoint(dead.id).health == "failing", message="the endpoint is failing")
        wait_until(lambda: len(receiver.requests) >= 16, timeout=20, message="retries and probes went on")
        assert len(receiver.requests) < 30, "the waiting messages were not sent in a burst"
        messages = [reload_message(e.messages[0].id) for e in events]
        assert sum(m.attempts for m in messages) <= len(receiver.requests)
        untouched = [m for m in messages if m.attempts == 0]
        assert untouched and all(m.status == QUEUED for m in untouched)
        assert max(requests_per_message(receiver).values()) <= 3


def test_the_first_success_makes_it_healthy_and_the_backlog_flows(app, start_worker):
    with Receiver(status=503) as receiver:
        flaky = make_endpoint(receiver.url)
        start_worker(env={"WEBHOOKS_RETRY_INTERVAL": "0.3"})
        events = emit_many([("checkout", f"c{i}", {"i": i}) for i in range(15)])
        wait_until(lambda: endpoint(flaky.id).health == "failing", message="the endpoint is failing")
        assert endpoint(flaky.id).failing_since is not None and "503" in endpoint(flaky.id).last_error
        receiver.behave(status=200)
        for event in events:
            assert final(event.messages[0].id, timeout=30).status == DONE
        healed = endpoint(flaky.id)
        assert healed.health == "healthy" and healed.consecutive_failures == 0 and healed.failing_since is None


def retry_after_in(seconds: float, form: str) -> str:
    if form == "seconds":
        return str(int(seconds))
    moment = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)
    return email.utils.format_datetime(moment, usegmt=True)


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_429_with_retry_after_delays_the_endpoints_next_attempts(app, start_worker, form):
    def busy_then_fine(request):
        if len(receiver.requests) == 1:
            return 429, {"Retry-After": retry_after_in(3, form)}, b"slow down"
        return 200, {}, b"ok"

    with Receiver(handler=busy_then_fine) as receiver:
        make_endpoint(receiver.url)
        start_worker(env={"WEBHOOKS_RETRY_INTERVAL": "0.2"})
        event = emit("checkout", "c1", {})
        first, second = receiver.wait_for(2, timeout=20)
        assert second.received_at - first.received_at >= 1.9, "the receiver's wait was respected"
        assert final(event.messages[0].id).status == DONE


def test_retry_after_is_capped_by_max_retry_after(app, start_worker):
    with Receiver(statuses=[503], response_headers={"Retry-After": "86400"}) as receiver:
        make_endpoint(receiver.url)
        start_worker(env={"WEBHOOKS_RETRY_INTERVAL": "0.2", "WEBHOOKS_MAX_RETRY_AFTER": "1"})
        event = emit("checkout", "c1", {})
        first, second = receiver.wait_for(2, timeout=20)
        assert 0.8 <= second.received_at - first.received_at <= 5
        assert final(event.messages[0].id).status == DONE


def test_410_gone_disables_the_endpoint_with_the_reason_and_its_messages_wait(app, operator, start_worker):
    with Receiver(status=410) as receiver:
        gone = make_endpoint(receiver.url, name="Old CRM")
        start_worker(env={"WEBHOOKS_RETRY_INTERVAL": "0.2"})
        events = emit_many([("checkout", f"c{i}", {"i": i}) for i in range(3)])
        wait_until(lambda: not endpoint(gone.id).enabled, message="the endpoint was disabled")
        disabled = endpoint(gone.id)
        assert disabled.disabled_reason == "the receiver answered 410 Gone" and disabled.disabled_by is None
        sent = len(receiver.requests)
        assert sent == 1, "nothing more is sent once the receiver said Gone"
        page = operator.get(f"/settings/{gone.id}").get_data(as_text=True)
        assert "Disabled: the receiver answered 410 Gone." in page
        assert "Old CRM" in operator.get("/log").get_data(as_text=True).split("need attention")[1]
        waiting = [reload_message(e.messages[0].id) for e in events]
        assert all(m.next_attempt_at is not None for m in waiting)
        view = operator.get(f"/log/{waiting[-1].id}").get_data(as_text=True)
        assert "waiting: endpoint disabled (the receiver answered 410 Gone)" in view


@pytest.mark.parametrize("stop, error", [
    ((410, {}), "receiver answered 410 Gone"),
    ((503, {"Retry-After": "120"}), "receiver answered 503 Service Unavailable (Retry-After: 120)"),
])
def test_in_order_what_was_claimed_ahead_is_never_sent_after_the_receiver_says_stop(app, start_worker, stop, error):
    """Queue batches off, on PostgreSQL, a lane claims its next batches while it sends one (lane.Lane._claim_ahead).
    A 410 or a Retry-After in the middle of a run stops it there: what was claimed ahead goes back uncounted,
    and nothing after the stopping message is sent."""
    status, headers = stop

    def answer(request):
        return (status, headers, b"stop") if request.json()["customer"] == "c300" else (200, {}, b"ok")

    with Receiver(handler=answer) as receiver:
        ordered = make_endpoint(receiver.url, queue_batches=False)
        start_worker()
        events = emit_many([("checkout", f"c{i}", {"i": i}) for i in range(1000)])
        stopping = events[300].messages[0].id
        wait_until(lambda: attempts_of(stopping) and not leased(ordered.id), timeout=30,
                   message="the stopping message was tried and the lane let go of the rest")
        assert [r.json()["customer"] for r in receiver.requests] == [f"c{i}" for i in range(301)]
        assert attempts_of(stopping)[0].error == error
        after = [reload_message(e.messages[0].id) for e in events[301:]]
        assert {(m.status, m.attempts) for m in after} == {(QUEUED, 0)}


def leased(endpoint_id: int) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(PendingMessage).where(
        PendingMessage.endpoint_id == endpoint_id, PendingMessage.lease_owner.is_not(None)))


def test_re_enabling_offers_one_idempotent_click_to_resend_what_failed_while_down(app, operator, start_worker):
    with Receiver(status=500) as receiver:
        down = make_endpoint(receiver.url, name="Partner")
        start_worker(env={"WEBHOOKS_RETRY_INTERVAL": "0.2", "WEBHOOKS_MAX_ATTEMPTS": "2"})
        events = emit_many([("checkout", f"c{i}", {"i": i}) for i in range(3)])
        for event in events:
            assert final(event.messages[0].id).status == FAILED
        operator.post(f"/settings/{down.id}/toggle")
        assert endpoint(down.id).disabled_by == "operator@example.com"
        receiver.behave(status=200)
        operator.post(f"/settings/{down.id}/toggle", {"back": "edit"})
        page = operator.get(f"/settings/{down.id}").get_data(as_text=True)
        assert re.search(r"<strong>3</strong> messages failed while\s+it was down", page)
        operator.post(f"/settings/{down.id}/resend-failed-while-down")
        operator.post(f"/settings/{down.id}/resend-failed-while-down")  # pressed twice
        copies = db.session.scalars(db.select(Message).where(Message.resend_of_id.is_not(None))).all()
        db.session.rollback()
        assert len(copies) == 3
        assert all(final(copy.id).status == DONE for copy in copies)
        assert "Resend the messages that failed" not in operator.get(f"/settings/{down.id}").get_data(as_text=True)


def test_an_endpoint_failing_continuously_for_disable_after_is_disabled(app, start_worker):
    with Receiver(status=500) as receiver:
        dead = make_endpoint(receiver.url)
        start_worker(env={"WEBHOOKS_RETRY_INTERVAL": "0.3", "WEBHOOKS_DISABLE_AFTER": "2s",
                          "WEBHOOKS_MAX_ATTEMPTS": "100"})
        emit_many([("checkout", f"c{i}", {}) for i in range(3)])
        wait_until(lambda: not endpoint(dead.id).enabled, timeout=20, message="the endpoint was disabled")
        assert endpoint(dead.id).disabled_reason == "failing continuously for 2 s"


def test_health_shows_on_the_endpoint_list_and_page_and_a_waiting_message_says_why(app, operator, start_worker):
    with Receiver(status=502) as bad, Receiver() as good:
        failing = make_endpoint(bad.url, name="Broken", actions=["checkout"])
        make_endpoint(good.url, name="Fine", actions=["checkout"])
        start_worker(env={"WEBHOOKS_RETRY_INTERVAL": "30"})
        events = emit_many([("checkout", f"c{i}", {}) for i in range(8)])
        wait_until(lambda: endpoint(failing.id).health == "failing", message="the endpoint is failing")
        listing = operator.get("/settings").get_data(as_text=True)
        row = listing.split('id="endpoint-')[1]
        assert "Failing" in row and "since" in row and "receiver answered 502 Bad Gateway" in row
        assert "% ok, last hour" in listing
        page = operator.get(f"/settings/{failing.id}").get_data(as_text=True)
        assert "Failing since" in page
        assert "0 % of 5 attempts" in page, re.findall(r"<dd>[^<]*attempt[^<]*</dd>", page)
        untried = next(m for e in events for m in e.messages
                       if m.endpoint_id == failing.id and reload_message(m.id).attempts == 0)
        why = operator.get(f"/log/{untried.id}").get_data(as_text=True)
        assert re.search(r"waiting: endpoint failing since \d\d:\d\d:\d\d UTC, next try \d\d:\d\d:\d\d UTC", why)
        log_page = operator.get("/log").get_data(as_text=True)
        pending = sum(1 for e in events for m in e.messages if reload_message(m.id).next_attempt_at is not None)
        assert pending >= 8 and log_page.count('class="why"') == pending, "every waiting message says why"
        api = operator.client.get(f"/api/v1/endpoints/{failing.id}")  # no token: refused, health is API-only
        assert api.status_code == 401


def test_attempts_of_a_message_are_the_retry_interval_apart(app, start_worker):
    """Measured from the end of one attempt to the start of the next, with a failing endpoint
    and a busy one beside it."""
    with Receiver(fail_first=3) as flaky, Receiver(status=500) as dead, Receiver() as busy:
        make_endpoint(flaky.url, actions=["checkout"])
        make_endpoint(dead.url, actions=["checkout"])
        make_endpoint(busy.url, actions=["points_added"], queue_batches=True)
        start_worker(env={"WEBHOOKS_RETRY_INTERVAL": "1"})
        emit_many([("points_added", f"p{i}", {}) for i in range(300)])
        event = emit("checkout", "c1", {})
        flaky_message = next(m for m in event.messages if m.endpoint_id == event.messages[0].endpoint_id)
        assert final(flaky_message.id, timeout=30).status == DONE
        attempts = attempts_of(flaky_message.id)
        assert len(attempts) == 4
        gaps = [(b.started_at - a.started_at).total_seconds() - a.duration_ms / 1000
                for a, b in zip(attempts, attempts[1:])]
        assert all(0.95 <= gap <= 1.5 for gap in gaps), gaps


def test_operators_are_emailed_when_an_endpoint_fails_is_disabled_and_recovers(app, start_worker):
    from tests.support.smtp_server import SMTPServer

    with SMTPServer() as smtp, Receiver(status=500) as receiver:
        dead = make_endpoint(receiver.url, name="Partner CRM")
        start_worker(env={"WEBHOOKS_RETRY_INTERVAL": "0.3", "WEBHOOKS_SMTP_URL": smtp.url,
                          "WEBHOOKS_NOTIFY_EMAILS": "ops@example.com, oncall@example.com",
                          "WEBHOOKS_NOTIFY_FROM": "webhooks@shop.example"})
        emit_many([("checkout", f"c{i}", {}) for i in range(4)])
        [failing] = smtp.wait_for(1)
        assert failing["Subject"] == "Webhooks: endpoint “Partner CRM” is failing"
        assert failing["To"] == "ops@example.com, oncall@example.com" and failing["From"] == "webhooks@shop.example"
        assert "Last error: receiver answered 500 Internal Server Error" in failing.get_content()
        receiver.behave(status=410)
        disabled = smtp.wait_for(2)[1]
        assert disabled["Subject"] == "Webhooks: endpoint “Partner CRM” was disabled"
        assert "the receiver answered 410 Gone" in disabled.get_content()
        assert endpoint(dead.id).notified_state == "disabled"


def test_no_mail_for_what_an_operator_did_and_none_told_twice(app, operator, start_worker):
    from tests.support.smtp_server import SMTPServer
    from webapp.domain.notices import send_notices

    with SMTPServer() as smtp:
        quiet = make_endpoint("http://127.0.0.1:9/hook")
        app.config.update(WEBHOOKS_SMTP_URL=smtp.url, WEBHOOKS_NOTIFY_EMAILS=("ops@example.com",))
        quiet_id = quiet.id
        db.session.rollback()  # as a maintenance tick does: no snapshot older than the operator's clicks
        operator.post(f"/settings/{quiet_id}/toggle")
        assert send_notices() == 0 and endpoint(quiet_id).notified_state == "disabled"
        assert send_notices() == 0
        operator.post(f"/settings/{quiet_id}/toggle")
        assert send_notices() == 1, "back to healthy is worth a mail"
        assert smtp.wait_for(1)[0]["Subject"] == "Webhooks: endpoint “Webhook endpoint” is healthy again"
