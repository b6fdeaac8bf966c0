"""The Log screen through the test client: list, filters, partials, polling rows, view, resend, export."""
from __future__ import annotations

import csv
import io
import re

import pytest

from tests.support.factories import make_endpoint
from webapp.delivery.outcome import Outcome
from webapp.delivery.records import attempt_row
from webapp.extensions import db
from webapp.storage.models import Attempt, Event, Message, response_class, utcnow

pytestmark = pytest.mark.db


def add_message(endpoint, customer, status, code, *, action="checkout", attempts=1) -> Message:
    event = Event(id=f"ev{customer}", action=action, customer=customer, data_json='{"total": 5}')
    message = Message(event=event, endpoint_id=endpoint.id, action=action, customer=customer, status=status,
                      response_code=code, response_class=response_class(code), attempts=attempts,
                      next_attempt_at=utcnow() if status in ("queued", "resent") else None)
    db.session.add_all([event, message])
    db.session.commit()
    return message


@pytest.fixture
def log(app):
    endpoint = make_endpoint("http://127.0.0.1:9/hook", name="Shop endpoint")
    return {
        "endpoint": endpoint,
        "done": add_message(endpoint, "alice", "done", 200),
        "failed": add_message(endpoint, "bob", "failed", 503, attempts=5),
        "pending": add_message(endpoint, "carol", "resent", 500, action="opt_in"),
    }


def text(response) -> str:
    return response.get_data(as_text=True)


def row_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="message-(\d+)"', page)]


def test_the_log_needs_a_login(client, log):
    response = client.get("/log")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_list_shows_the_columns_newest_first_and_the_retention(operator, log):
    page = text(operator.get("/log"))
    assert row_ids(page) == [log["pending"].id, log["failed"].id, log["done"].id]
    for heading in ("Created at", "Action", "Customer", "Response code", "Status", "Endpoint", "Attempts"):
        assert heading in page
    assert "Shop endpoint" in page and "Resent" in page and "Failed" in page and "Done" in page
    assert "kept for 90 days" in page


def test_filters_live_in_the_query_string_and_htmx_gets_only_the_results(operator, log, client):
    page = text(operator.get("/log?code=5xx"))
    assert row_ids(page) == [log["pending"].id, log["failed"].id]
    assert 'value="5xx"' in page, "the filter form shows the filter in use"
    fragment = client.get("/log?code=503&status=failed", headers={"HX-Request": "true", "HX-Target": "log-results"})
    body = text(fragment)
    assert row_ids(body) == [log["failed"].id]
    assert "<html" not in body and "<nav class=\"tabs\"" not in body and 'id="log-results"' in body
    assert text(operator.get("/log?customer=alice&action=checkout")).count('<tr id="message-') == 1


def test_a_bad_filter_value_is_reported_naming_it(operator, log):
    response = operator.get("/log?code=abc")
    page = text(response)
    assert response.status_code == 422
    assert '<p class="field-error" id="filter-code-error">Response code must be a status code' in page, "in words"
    assert "code:" not in page, "the field's label, not its parameter name"
    assert '<tr id="message-' not in page and "Export .csv" not in page and "Resend failed" not in page


def test_pending_rows_poll_and_stop_once_final(operator, log):
    page = text(operator.get("/log"))
    polling = re.findall(r'<tr id="message-(\d+)" hx-get="/log/rows/\d+" hx-trigger="every 2s"', page)
    assert polling == [str(log["pending"].id)], "only the row still on its way polls"
    pending = db.session.get(Message, log["pending"].id)
    pending.status, pending.next_attempt_at, pending.response_code = "done", None, 200
    db.session.commit()
    row = text(operator.get(f"/log/rows/{pending.id}", htmx=True))
    assert row.strip().startswith(f'<tr id="message-{pending.id}">') and "hx-trigger" not in row
    assert "Done" in row and "<html" not in row


def test_view_shows_every_attempt_with_secrets_redacted(operator, log):
    failed = log["failed"]
    outcome = Outcome(started_at=utcnow(), duration_ms=12, request_method="POST", request_url="http://127.0.0.1:9/hook",
                      request_headers=[("Authorization", "Basic [redacted]"), ("Webhook-Id", failed.event_id)],
                      request_body='{"a":1}', response_code=503, response_headers=[("Retry-After", "5")],
                      response_body="busy", error="receiver answered 503 Service Unavailable")
    db.session.execute(db.insert(Attempt.__table__), [attempt_row(failed.id, 1, outcome)])
    db.session.commit()
    page = text(operator.get(f"/log/{failed.id}"))
    assert "Attempt 1" in page and "HTTP 503" in page and "Basic [redacted]" in page
    assert "receiver answered 503 Service Unavailable" in page and "busy" in page
    assert "&#34;a&#34;: 1" in page or '"a": 1' in page, "JSON bodies are pretty-printed"
    assert "none: the message is final" in page and "Resend" in page


def test_resend_queues_a_linked_copy_and_shows_it_queued(operator, log, client):
    failed = log["failed"]
    assert client.post(f"/log/{failed.id}/resend").status_code == 400, "CSRF token required"
    response = operator.post(f"/log/{failed.id}/resend")
    copy = db.session.scalars(db.select(Message).where(Message.resend_of_id == failed.id)).one()
    assert response.status_code == 302 and response.headers["Location"] == f"/log/{copy.id}"
    page = text(operator.get(f"/log/{copy.id}"))
    assert "Queued" in page and f"#{failed.id}" in page and failed.event_id in page
    assert 'hx-trigger="every 2s"' in page, "a pending message's view refreshes itself"


def test_bulk_resend_confirms_with_a_count_and_is_idempotent(operator, log):
    page = text(operator.get("/log/resend-failed?code=5xx"))
    assert "this queues <strong>1</strong> again" in page
    operator.post("/log/resend-failed", {"code": "5xx"})
    operator.post("/log/resend-failed", {"code": "5xx"})
    copies = db.session.scalars(db.select(Message).where(Message.resend_of_id.is_not(None))).all()
    assert [c.resend_of_id for c in copies] == [log["failed"].id]


def test_export_downloads_the_filtered_list(operator, log):
    response = operator.get("/log/export.psv?status=failed")
    assert response.headers["Content-Disposition"] == 'attachment; filename="webhook-log.psv"'
    rows = list(csv.reader(io.StringIO(text(response), newline=""), delimiter="|"))
    assert rows[0][:5] == ["created_at", "action", "customer", "response_code", "status"]
    assert [r[7] for r in rows[1:]] == [str(log["failed"].id)]
    assert operator.get("/log/export.xls").status_code == 404


def test_bulk_resend_end_to_end_with_a_worker_and_a_receiver(app, operator, start_worker):
    """An outage: every message failed. The receiver is back; one bulk resend delivers them all."""
    from tests.support.factories import final
    from tests.support.receiver import Receiver
    from webapp.domain.events import emit_many

    with Receiver(status=503) as receiver:
        make_endpoint(receiver.url)
        start_worker(env={"WEBHOOKS_MAX_ATTEMPTS": "1"})
        events = emit_many([("checkout", f"c{i}", {"i": i}) for i in range(4)])
        assert all(final(e.messages[0].id).status == "failed" for e in events)

        receiver.behave(status=200)
        assert "queues <strong>4</strong>" in text(operator.get("/log/resend-failed?code=503"))
        operator.post("/log/resend-failed", {"code": "503"})
        operator.post("/log/resend-failed", {"code": "503"})  # pressed twice
        copies = db.session.scalars(db.select(Message).where(Message.resend_of_id.is_not(None))).all()
        db.session.rollback()
        assert len(copies) == 4
        assert all(final(copy.id).status == "done" for copy in copies)
        delivered = [r for r in receiver.requests if r.status == 200]
        assert sorted(r.header("Webhook-Id") for r in delivered) == sorted(e.id for e in events)
