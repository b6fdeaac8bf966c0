"""emit(): validation naming the field, routing by action, all-or-nothing writes."""
from __future__ import annotations

import pytest

from tests.support.factories import make_endpoint
from webapp.errors import InvalidInput
from webapp.events import emit, emit_many
from webapp.extensions import db
from webapp.models import QUEUED, Event, Message

pytestmark = pytest.mark.db


@pytest.mark.parametrize(
    "action, customer, data, field, fragment",
    [
        ("", "c1", {}, "action", "must not be empty"),
        ("   ", "c1", {}, "action", "must not be empty"),
        (None, "c1", {}, "action", "must be a string"),
        (12, "c1", {}, "action", "must be a string"),
        ("has space", "c1", {}, "action", "letters, digits"),
        ("a" * 101, "c1", {}, "action", "1-100 characters"),
        ("checkout", "", {}, "customer", "must not be empty"),
        ("checkout", 42, {}, "customer", "must be a string, got int"),
        ("checkout", "c" * 256, {}, "customer", "at most 255"),
        ("checkout", "c1", [], "data", "must be a JSON object, got list"),
        ("checkout", "c1", "text", "data", "must be a JSON object, got str"),
        ("checkout", "c1", None, "data", "must be a JSON object, got NoneType"),
        ("checkout", "c1", {"x": float("nan")}, "data", "not JSON-serialisable"),
        ("checkout", "c1", {"x": object()}, "data", "not JSON-serialisable"),
        ("checkout", "c1", {1: "int key"}, "data", "keys must be strings"),
    ],
)
def test_bad_input_names_the_field_and_creates_nothing(app, action, customer, data, field, fragment):
    make_endpoint("http://127.0.0.1:9/hook")
    with pytest.raises(InvalidInput) as caught:
        emit(action, customer, data)
    assert caught.value.field == field
    assert fragment in caught.value.problem
    assert db.session.scalar(db.select(db.func.count()).select_from(Event)) == 0
    assert db.session.scalar(db.select(db.func.count()).select_from(Message)) == 0


def test_data_over_the_size_limit_is_refused(app):
    app.config["WEBHOOKS_MAX_EVENT_BYTES"] = 100
    with pytest.raises(InvalidInput) as caught:
        emit("checkout", "c1", {"blob": "x" * 200})
    assert caught.value.field == "data" and "over the limit of 100 bytes" in caught.value.problem


def test_one_message_per_endpoint_that_selected_the_action(app):
    all_actions = make_endpoint("http://127.0.0.1:9/a", actions=["*"])
    checkout_only = make_endpoint("http://127.0.0.1:9/b", actions=["checkout"])
    make_endpoint("http://127.0.0.1:9/c", actions=["opt_in"])
    make_endpoint("http://127.0.0.1:9/d", actions=["checkout"], enabled=False)

    event = emit("checkout", "cust-1", {"total": 10})

    assert sorted(m.endpoint_id for m in event.messages) == sorted([all_actions.id, checkout_only.id])
    for emitted in event.messages:
        message = db.session.get(Message, emitted.id)
        assert message.endpoint_id == emitted.endpoint_id
        assert message.status == QUEUED and message.attempts == 0
        assert message.action == "checkout" and message.customer == "cust-1"
        assert message.next_attempt_at is not None
    stored = db.session.get(Event, event.id)
    assert stored.data == {"total": 10}


def test_emit_many_is_all_or_nothing(app):
    make_endpoint("http://127.0.0.1:9/a")
    with pytest.raises(InvalidInput) as caught:
        emit_many([("checkout", "c1", {}), ("checkout", "c2", "not an object")])
    assert caught.value.field == "data"
    assert db.session.scalar(db.select(db.func.count()).select_from(Event)) == 0


def test_emit_succeeds_when_redis_is_down(app):
    """The database has the event; the sweep delivers it once Redis is back."""
    make_endpoint("http://127.0.0.1:9/a")
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    app.extensions.pop("webhooks_redis", None)
    event = emit("checkout", "c1", {})
    assert len(event.messages) == 1
    assert db.session.get(Message, event.messages[0].id).status == QUEUED
