"""Resend on a message that is still being delivered: the UI asks first, the API answers 409 unless forced.

Either way at most one resend of a message is in flight, and a receiver never gets two
retry chains of one event unless an operator asked for it.
"""
from __future__ import annotations

import pytest

from tests.support.factories import final, make_endpoint, reload_message
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until
from webapp.domain.events import emit
from webapp.domain.tokens import create_token
from webapp.extensions import db
from webapp.storage.models import Message

pytestmark = pytest.mark.db


@pytest.fixture
def retrying(app):
    """A message waiting for its third attempt (no worker runs here, so it stays that way)."""
    make_endpoint("http://127.0.0.1:9/hook", name="Shop", actions=["checkout"])
    message = db.session.get(Message, emit("checkout", "c1", {"n": 1}).messages[0].id)
    message.status, message.attempts, message.response_code = "resent", 2, 503
    db.session.commit()
    return message


def count_messages() -> int:
    db.session.expire_all()
    return db.session.scalar(db.select(db.func.count()).select_from(Message))


def test_the_view_says_the_message_is_still_being_delivered(operator, retrying):
    page = operator.get(f"/log/{retrying.id}").get_data(as_text=True)
    assert "Still being delivered: Resend asks first." in page


def test_resend_in_the_ui_asks_before_a_second_delivery_and_forcing_queues_one(operator, retrying):
    confirm = operator.post(f"/log/{retrying.id}/resend")
    page = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and f"Resend message #{retrying.id}?" in page
    assert "still being delivered" in page and "after 2 of 5" in page and "the receiver gets the event twice" in page
    assert 'name="force" value="1"' in page
    assert count_messages() == 1, "asking queues nothing"

    forced = operator.post(f"/log/{retrying.id}/resend", {"force": "1"})
    copy = db.session.scalars(db.select(Message).where(Message.resend_of_id == retrying.id)).one()
    assert forced.status_code == 302 and forced.headers["Location"] == f"/log/{copy.id}"
    again = operator.post(f"/log/{retrying.id}/resend", {"force": "1"}, follow_redirects=True)
    assert f"already queued again as #{copy.id}" in again.get_data(as_text=True)
    assert count_messages() == 2, "forcing still keeps one resend in flight"


def test_a_final_message_is_resent_at_once(operator, retrying):
    retrying.status, retrying.next_attempt_at = "failed", None
    db.session.commit()
    response = operator.post(f"/log/{retrying.id}/resend")
    assert response.status_code == 302 and count_messages() == 2


@pytest.fixture
def api(client, app):
    headers = {"Authorization": f"Bearer {create_token('resend')}"}

    def post(path, **kwargs):
        return client.post(f"/api/v1{path}", headers=headers, **kwargs)
    return post


def test_the_api_answers_409_naming_why_unless_forced(api, retrying):
    refused = api(f"/messages/{retrying.id}/resend")
    assert refused.status_code == 409
    body = refused.get_json()
    assert body["field"] == "force" and body["in_flight"] == retrying.id
    assert f"message {retrying.id} is still being delivered (resent, 2 attempt(s) so far)" in body["error"]
    assert '{"force": true}' in body["error"]
    assert api(f"/messages/{retrying.id}/resend", json={"force": False}).status_code == 409
    assert count_messages() == 1

    forced = api(f"/messages/{retrying.id}/resend", json={"force": True})
    assert forced.status_code == 202
    copy_id = forced.get_json()["message_id"]
    assert forced.get_json() == {"message_id": copy_id, "resend_of": retrying.id, "queued": True}
    again = api(f"/messages/{retrying.id}/resend", json={"force": True})
    assert again.status_code == 200 and again.get_json() == {"message_id": copy_id, "resend_of": retrying.id,
                                                             "queued": False}
    assert count_messages() == 2


def test_the_api_resends_a_final_message_and_checks_its_body(api, retrying):
    retrying.status, retrying.next_attempt_at = "done", None
    db.session.commit()
    assert api(f"/messages/{retrying.id}/resend", json={"force": "yes"}).get_json()["field"] == "force"
    assert api(f"/messages/{retrying.id}/resend", json={"forse": True}).get_json()["field"] == "forse"
    assert api(f"/messages/{retrying.id}/resend", data="x", content_type="text/plain").status_code == 415
    assert api("/messages/999999/resend").status_code == 404
    assert count_messages() == 1
    assert api(f"/messages/{retrying.id}/resend").status_code == 202
    assert count_messages() == 2


def test_a_receiver_gets_one_retry_chain_when_resend_is_pressed_during_it(app, operator, start_worker):
    """The report: Resend during retries doubled every attempt at the receiver."""
    with Receiver(status=503) as receiver:
        make_endpoint(receiver.url, actions=["checkout"])
        # Two attempts 3 s apart: the Resend below lands while the message waits for its retry.
        start_worker(env={"WEBHOOKS_MAX_ATTEMPTS": "2", "WEBHOOKS_RETRY_INTERVAL": "3"})
        message_id = emit("checkout", "c1", {}).messages[0].id
        wait_until(lambda: reload_message(message_id).status == "resent", timeout=20,
                   message="the message never waited for a retry")
        page = operator.post(f"/log/{message_id}/resend").get_data(as_text=True)
        assert "Resend anyway" in page
        assert final(message_id).status == "failed"
        assert count_messages() == 1
        assert len(receiver.requests) == 2, "two attempts, one chain"
