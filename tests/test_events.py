"""emit(): validation naming the field, routing by action, all-or-nothing writes."""
from __future__ import annotations

import pytest

from tests.support.factories import make_endpoint
from webapp import jobs
from webapp.domain.events import emit, emit_many
from webapp.domain.tokens import create_token
from webapp.errors import InvalidInput
from webapp.extensions import db
from webapp.storage.models import Event, Message
from webapp.storage.statuses import QUEUED

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


def test_an_events_messages_come_in_the_order_of_their_endpoints(app):
    first, second, third = (make_endpoint(f"http://127.0.0.1:9/{n}", actions=["*"]) for n in range(3))
    first.name = "renamed"  # on PostgreSQL the updated row moves to the end of the table
    db.session.commit()

    event = emit("checkout", "cust-1", {"total": 10})

    assert [m.endpoint_id for m in event.messages] == [first.id, second.id, third.id]
    assert [m.id for m in event.messages] == sorted(m.id for m in event.messages)


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


# Unknown actions: refused with the catalogue, the same way in every entry point


def test_an_action_outside_the_catalogue_is_refused_listing_it(app):
    make_endpoint("http://127.0.0.1:9/hook", actions=["*"])
    for call in (emit, jobs.emit):
        with pytest.raises(InvalidInput) as refused:
            call("member_joined", "c1", {})
        assert refused.value.field == "action" and refused.value.allowed == app.config["WEBHOOKS_ACTIONS"]
        assert "unknown action 'member_joined'" in refused.value.problem and "checkout, " in refused.value.problem
    assert db.session.scalar(db.select(db.func.count()).select_from(Event)) == 0


def test_the_api_answers_400_with_the_catalogue(app, client):
    make_endpoint("http://127.0.0.1:9/hook", actions=["*"])
    token = create_token("catalogue")
    response = client.post("/api/v1/events", json={"action": "member_joined", "customer": "c1", "data": {}},
                           headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400
    body = response.get_json()
    assert body["field"] == "action" and body["allowed"] == list(app.config["WEBHOOKS_ACTIONS"])
    assert "the catalogue (WEBHOOKS_ACTIONS) is: opt_in, opt_out" in body["error"]
    assert db.session.scalar(db.select(db.func.count()).select_from(Event)) == 0


def test_a_changed_catalogue_takes_the_new_actions(app):
    app.config["WEBHOOKS_ACTIONS"] = ("member_joined",)
    endpoint = make_endpoint("http://127.0.0.1:9/hook", actions=["member_joined"])
    event = emit("member_joined", "c1", {})
    assert [m.endpoint_id for m in event.messages] == [endpoint.id]
    with pytest.raises(InvalidInput, match="unknown action 'checkout'"):
        emit("checkout", "c1", {})
