"""Delivery end to end: real worker processes, real receivers on 127.0.0.1."""
from __future__ import annotations

import json

import pytest

from tests.support.factories import attempts_of, final, make_endpoint, reload_message
from tests.support.receiver import Receiver, refused_url
from webapp.domain.events import emit
from webapp.extensions import db
from webapp.storage.statuses import DONE, FAILED

pytestmark = pytest.mark.db




def test_event_reaches_receiver_with_json_body_and_headers(app, receiver, start_worker):
    make_endpoint(receiver.url, actions=["checkout"])
    start_worker()
    event = emit("checkout", "cust-42", {"order": {"total": 99.5, "items": ["a", "b"]}})

    [request] = receiver.wait_for(1)
    message = final(event.messages[0].id)

    assert message.status == DONE and message.attempts == 1 and message.response_code == 200
    assert request.method == "POST"
    assert request.header("Content-Type") == "application/json"
    assert request.header("Webhook-Id") == event.id
    assert request.header("Webhook-Timestamp").isdigit()
    assert request.header("User-Agent").startswith("Webhooks/")
    body = request.json()
    assert body["id"] == event.id and body["action"] == "checkout" and body["customer"] == "cust-42"
    assert body["data"] == {"order": {"total": 99.5, "items": ["a", "b"]}}
    assert body["created_at"].endswith("Z")


def test_form_content_type_flattens_nested_data(app, receiver, start_worker):
    make_endpoint(receiver.url, content_type="form")
    start_worker()
    emit("profile_update", "c1", {"address": {"city": "Pécs", "zip": "7621"}, "tags": ["x", "y"], "vip": True})

    [request] = receiver.wait_for(1)
    assert request.header("Content-Type") == "application/x-www-form-urlencoded"
    from urllib.parse import parse_qsl

    pairs = dict(parse_qsl(request.body.decode()))
    assert pairs["action"] == "profile_update" and pairs["customer"] == "c1"
    assert pairs["data[address][city]"] == "Pécs"
    assert pairs["data[tags][1]"] == "y"
    assert pairs["data[vip]"] == "true"


def test_only_endpoints_selecting_the_action_get_a_message(app, start_worker):
    with Receiver() as wanted, Receiver() as other:
        make_endpoint(wanted.url, actions=["points_added"])
        make_endpoint(other.url, actions=["checkout"])
        event = emit("points_added", "c9", {"points": 10})
        assert len(event.messages) == 1
        start_worker()
        wanted.wait_for(1)
        final(event.messages[0].id)
        assert other.requests == []


def test_fails_four_times_then_done_with_five_attempts_spaced_by_the_interval(app, start_worker):
    with Receiver(fail_first=4) as receiver:
        make_endpoint(receiver.url)
        start_worker()
        event = emit("checkout", "c1", {"n": 1})
        message = final(event.messages[0].id, timeout=30)

        assert message.status == DONE and message.attempts == 5
        attempts = attempts_of(message.id)
        assert [a.response_code for a in attempts] == [500, 500, 500, 500, 200]
        assert [a.number for a in attempts] == [1, 2, 3, 4, 5]
        interval = app.config["WEBHOOKS_RETRY_INTERVAL"]
        gaps = [(b.started_at - a.started_at).total_seconds() for a, b in zip(attempts, attempts[1:])]
        assert all(gap >= interval * 0.9 for gap in gaps), gaps
        ids = {r.header("Webhook-Id") for r in receiver.requests}
        assert ids == {event.id}, "every retry carries the same Webhook-Id"
        bodies = {r.body for r in receiver.requests}
        assert len(bodies) == 1, "every retry carries the same content"


def test_five_failures_end_failed_with_five_attempts(app, start_worker):
    with Receiver(status=503, response_body=b"down for maintenance") as receiver:
        make_endpoint(receiver.url)
        start_worker()
        event = emit("checkout", "c1", {})
        message = final(event.messages[0].id, timeout=30)

        assert message.status == FAILED and message.attempts == 5 and message.response_code == 503
        attempts = attempts_of(message.id)
        assert len(attempts) == 5 and len(receiver.requests) == 5
        assert attempts[-1].response_body == "down for maintenance"
        assert message.next_attempt_at is None


def test_timeout_refused_and_error_texts_are_recorded(app, start_worker):
    with Receiver(delay=3) as slow:
        slow_endpoint = make_endpoint(slow.url, timeout=1)
        dead_endpoint = make_endpoint(refused_url())
        start_worker(env={"WEBHOOKS_MAX_ATTEMPTS": "1"})
        event = emit("checkout", "c1", {})
        by_endpoint = {m.endpoint_id: m.id for m in event.messages}

        slow_message = final(by_endpoint[slow_endpoint.id])
        dead_message = final(by_endpoint[dead_endpoint.id])
        assert slow_message.status == FAILED and dead_message.status == FAILED
        assert attempts_of(slow_message.id)[0].error == "timeout: response not complete within 1 s"
        assert attempts_of(dead_message.id)[0].error == "connection refused"


def test_response_body_is_stored_capped(app, start_worker):
    with Receiver(response_body=b"x" * 5000) as receiver:
        make_endpoint(receiver.url)
        start_worker(env={"WEBHOOKS_RESPONSE_BODY_LIMIT": "1000"})
        event = emit("checkout", "c1", {})
        message = final(event.messages[0].id)
        [attempt] = attempts_of(message.id)
        assert attempt.response_body == "x" * 1000 and attempt.response_truncated


def test_an_answer_holding_nul_bytes_is_recorded_on_every_database(app, start_worker):
    """PostgreSQL's text cannot hold NUL: the attempt is written with U+FFFD in their place."""
    with Receiver(status=500, response_body=b"bad\x00answer") as receiver:
        endpoint = make_endpoint(receiver.url)
        start_worker(env={"WEBHOOKS_MAX_ATTEMPTS": "1"})
        event = emit("checkout", "c1", {"note": "\x00"})
        message = final(event.messages[0].id)
        [attempt] = attempts_of(message.id)
    assert message.status == FAILED and attempt.response_code == 500
    assert attempt.response_body == "bad\ufffdanswer" and attempt.error == "receiver answered 500 Internal Server Error"
    assert json.loads(attempt.request_body)["data"] == {"note": "\x00"}
    db.session.refresh(endpoint)
    assert endpoint.last_error == attempt.error


def test_use_proxy_sends_through_the_installation_proxy(app, receiver, forward_proxy, start_worker):
    proxied = make_endpoint(receiver.url, use_proxy=True, actions=["checkout"])
    make_endpoint(receiver.url, use_proxy=False, actions=["checkout"])
    start_worker(env={"WEBHOOKS_PROXY_URL": forward_proxy.url})
    event = emit("checkout", "c1", {"via": "proxy?"})

    requests_seen = receiver.wait_for(2)
    for message in event.messages:
        final(message.id)
    marked = [r for r in requests_seen if forward_proxy.marked(r)]
    assert len(marked) == 1, "exactly the proxied endpoint's request came through the proxy"
    assert json.loads(marked[0].body)["data"] == {"via": "proxy?"}
    assert reload_message(next(m.id for m in event.messages if m.endpoint_id == proxied.id)).status == DONE


def test_queue_batches_off_delivers_one_at_a_time_in_creation_order(app, start_worker):
    with Receiver(delay=0.02) as receiver:
        make_endpoint(receiver.url, queue_batches=False)
        from webapp.domain.events import emit_many

        events = emit_many([("checkout", f"c{i}", {"i": i}) for i in range(30)])
        start_worker()
        start_worker()  # a second worker must not break the order
        received = receiver.wait_for(30, timeout=30)
        assert [r.json()["data"]["i"] for r in received] == list(range(30))
        assert receiver.max_in_flight == 1
        for event in events:
            final(event.messages[0].id)


def test_queue_batches_on_uses_parallel_threads_over_keep_alive_connections(app, start_worker):
    with Receiver(delay=0.2) as receiver:
        make_endpoint(receiver.url, queue_batches=True, threads=8)
        from webapp.domain.events import emit_many

        events = emit_many([("checkout", f"c{i}", {"i": i}) for i in range(32)])
        start_worker()
        receiver.wait_for(32, timeout=30)
        for event in events:
            final(event.messages[0].id)
        assert receiver.max_in_flight > 2, "requests were sent in parallel, beyond the lone lane's second"
        assert receiver.max_in_flight <= 8
        assert receiver.accept_count <= 8, "connections were reused (keep-alive), not one per message"


def test_an_undecryptable_secret_fails_each_attempt_with_the_reason_not_the_job(app, receiver, start_worker):
    from cryptography.fernet import Fernet

    from webapp.storage.crypto import SecretBox

    endpoint = make_endpoint(receiver.url, auth_type="basic", auth_username="u")
    endpoint.auth_secret_encrypted = SecretBox(Fernet.generate_key().decode()).encrypt("pw")  # another key
    db.session.commit()
    start_worker(env={"WEBHOOKS_MAX_ATTEMPTS": "2"})
    event = emit("checkout", "c1", {})
    message = final(event.messages[0].id)
    assert message.status == FAILED and message.attempts == 2
    assert attempts_of(message.id)[-1].error == (
        "could not build the request: stored secret cannot be decrypted with WEBHOOKS_ENCRYPTION_KEY")
    assert receiver.requests == []
