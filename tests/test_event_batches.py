"""Events in batches: POST /api/v1/events with a list, emit_many() and the emit_many RQ job.

All or nothing: the answer lists the events in the order sent; one bad item is a 400
naming its index and field, and nothing is written. Hostile lists (non-objects, nesting,
empty, too long, too big, lone surrogates) are refused the same way, never with a 500.
"""
from __future__ import annotations

import datetime as dt

import json

import pytest
import requests
from redis import Redis

from tests.support.factories import make_endpoint
from tests.support.live_server import LiveServer
from webapp.domain.events import MAX_BATCH_EVENTS, emit, emit_many
from webapp.domain.tokens import create_token
from webapp.errors import InvalidInput
from webapp.extensions import db
from webapp.storage.models import Event, Message, PendingMessage

pytestmark = pytest.mark.db


def counts() -> tuple[int, int]:
    return (db.session.scalar(db.select(db.func.count()).select_from(Event)),
            db.session.scalar(db.select(db.func.count()).select_from(Message)))


def event(number: int, action: str = "checkout", **changes) -> dict:
    return {"action": action, "customer": f"c{number}", "data": {"n": number}, **changes}


@pytest.fixture
def bearer(app):
    return {"Authorization": f"Bearer {create_token('batches')}"}


@pytest.fixture
def post(client, bearer):
    def call(body, **kwargs):
        if not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        return client.post("/api/v1/events", data=body, headers={**bearer, "Content-Type": "application/json"},
                           **kwargs)
    return call


def test_a_list_is_recorded_in_order_with_each_events_messages(app, post, redis_server):
    everything = make_endpoint("http://127.0.0.1:9/all", actions=["*"])
    opt_ins = make_endpoint("http://127.0.0.1:9/opt-in", actions=["opt_in"])
    sent = [event(i, "opt_in" if i % 3 == 0 else "checkout") for i in range(30)]
    redis = Redis.from_url(redis_server.url)
    redis.config_resetstat()

    response = post(sent)

    assert response.status_code == 202, response.get_data(as_text=True)
    receipts = response.get_json()
    assert len(receipts) == 30 and len({r["event_id"] for r in receipts}) == 30
    for number, receipt in enumerate(receipts):
        stored = db.session.get(Event, receipt["event_id"])
        assert (stored.action, stored.customer, stored.data) == (sent[number]["action"], f"c{number}", {"n": number})
        messages = {db.session.get(Message, m).endpoint_id for m in receipt["message_ids"]}
        assert messages == ({everything.id, opt_ins.id} if number % 3 == 0 else {everything.id})
        assert all(db.session.get(Message, m).event_id == receipt["event_id"] for m in receipt["message_ids"])
    assert counts() == (30, 40)
    # Delivery is kicked once for the whole list: one round trip that sets the endpoints' kick keys.
    assert redis.info("commandstats")["cmdstat_eval"]["calls"] == 1


def test_a_list_may_be_bigger_than_one_events_body_limit(app, post):
    make_endpoint("http://127.0.0.1:9/hook")
    app.config.update(MAX_CONTENT_LENGTH=2_000, WEBHOOKS_MAX_BATCH_BYTES=20_000)
    small = [event(i) for i in range(60)]  # about 3,000 bytes
    assert post(small).status_code == 202
    assert counts() == (60, 60)

    one_event = event(0, data={"pad": "x" * 2_500})
    refused = post(one_event)
    assert refused.status_code == 413 and "limit of 2000 bytes" in refused.get_json()["error"]
    too_big = post([event(i, data={"pad": "x" * 100}) for i in range(200)])  # about 26,000 bytes
    assert too_big.status_code == 413 and "limit of 20000 bytes" in too_big.get_json()["error"]
    assert counts() == (60, 60)


def test_a_chunked_list_without_content_length_is_held_to_the_limit(app, bearer):
    """A real HTTP server: a chunked body has no Content-Length to check up front."""
    make_endpoint("http://127.0.0.1:9/hook")
    app.config.update(MAX_CONTENT_LENGTH=2_000, WEBHOOKS_MAX_BATCH_BYTES=20_000)
    body = json.dumps([event(i, data={"pad": "x" * 100}) for i in range(200)]).encode()
    with LiveServer(app) as live:
        response = requests.post(f"{live.url}/api/v1/events", data=iter([body[:10_000], body[10_000:]]),
                                 headers={**bearer, "Content-Type": "application/json"}, timeout=30)
        assert response.status_code == 413, response.text
        fits = json.dumps([event(i) for i in range(10)]).encode()
        accepted = requests.post(f"{live.url}/api/v1/events", data=iter([fits]),
                                 headers={**bearer, "Content-Type": "application/json"}, timeout=30)
        assert accepted.status_code == 202, accepted.text
    assert counts() == (10, 10)


LIMIT_TEXT = f"send 1 to {MAX_BATCH_EVENTS} at a time"


@pytest.mark.parametrize("body, index, field, fragment", [
    ([], None, "events", "holds 0 events; " + LIMIT_TEXT),
    ([event(i) for i in range(MAX_BATCH_EVENTS + 1)], None, "events", f"holds {MAX_BATCH_EVENTS + 1} events"),
    ([1, 2], 0, "event", "must be a JSON object with action, customer, data, got int"),
    ([event(0), "checkout"], 1, "event", "got str"),
    ([event(0), None], 1, "event", "got NoneType"),
    ([[event(0)]], 0, "event", "got list"),
    ([event(0), [[[event(1)]]]], 1, "event", "got list"),
    ([event(0), event(1), event(2), event(3, customer="")], 3, "customer", "must not be empty"),
    ([event(0), event(1, customer=None)], 1, "customer", "must be a string, got NoneType"),
    ([event(0), {"action": "checkout", "data": {}}], 1, "customer", "is required"),
    ([event(0), {**event(1), "extra": 1}], 1, "extra", "unknown field"),
    ([event(0), event(1, action="nope")], 1, "action", "unknown action 'nope'"),
    ([event(0), event(1, data=[1])], 1, "data", "must be a JSON object, got list"),
    ([event(0), event(1, data=json.loads('{"a":' * 100 + "1" + "}" * 100))], 1, "data", "nested more than 64"),
    (('[{"action": "checkout", "customer": "c", "data": {}}, {"action": "checkout", "customer": "\\ud800", '
      '"data": {}}]'), 1, "customer", "lone surrogate"),
    ('[{"action": "\\udfff", "customer": "c", "data": {}}]', 0, "action", "lone surrogate"),
    ('[{"action": "checkout", "customer": "c", "data": {"\\ud800": 1}}]', 0, "data", "lone surrogate"),
    ('[{"action": "checkout", "customer": "c", "data": {}, "\\ud800": 1}]', 0, "\ud800", "unknown field"),
    ("[" * 5000 + "]" * 5000, None, "body", "nested too deeply"),
    ('[{"action": "checkout", "customer": "c", "data": {}},', None, "body", "not valid JSON"),
])
def test_one_bad_item_is_a_400_naming_its_index_and_field_and_nothing_is_written(
        app, post, body, index, field, fragment):
    make_endpoint("http://127.0.0.1:9/hook")
    response = post(body)
    assert response.status_code == 400, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["field"] == field and fragment in answer["error"], answer
    assert answer.get("index") == index
    where = "" if index is None else f"[{index}]."
    assert answer["error"].startswith(f"{where}{field}: "), answer["error"]
    assert counts() == (0, 0)


def test_emit_many_names_the_index_and_emit_does_not(app):
    make_endpoint("http://127.0.0.1:9/hook")
    with pytest.raises(InvalidInput) as caught:
        emit_many([("checkout", "c0", {}), ("checkout", "c1", {}), ("checkout", "c2", {"x": float("nan")})])
    assert (caught.value.index, caught.value.field) == (2, "data")
    assert str(caught.value).startswith("[2].data: is not JSON-serialisable")
    with pytest.raises(InvalidInput) as single:
        emit("checkout", "c0", {"x": float("nan")})
    assert single.value.index is None and str(single.value).startswith("data: ")
    assert counts() == (0, 0)
    assert emit_many([]) == []


def test_emit_many_returns_the_events_in_order(app):
    make_endpoint("http://127.0.0.1:9/hook", actions=["checkout"])
    emitted = emit_many([("checkout" if i % 2 else "opt_in", f"c{i}", {"i": i}) for i in range(10)])
    assert [e.customer for e in emitted] == [f"c{i}" for i in range(10)]
    assert [len(e.messages) for e in emitted] == [0, 1] * 5
    stored = {e.id: (e.customer, e.data) for e in db.session.scalars(db.select(Event))}
    assert [stored[e.id] for e in emitted] == [(f"c{i}", {"i": i}) for i in range(10)]


def test_emit_many_stores_every_character_as_it_was_given(app):
    """On SQLite the rows travel as one JSON text (storage/bulk.py): quotes, backslashes, escapes,
    non-ASCII and characters beyond the BMP come back unchanged, in the event and its messages."""
    make_endpoint("http://127.0.0.1:9/hook")
    customers = ['Zoë "Ω" \\ 😀', "x\\u0041 '; DROP TABLE event; --", "[1, 2]", "null"]
    data = {"note": 'line\nbreak \\ " \u2028 😀 \\u0000', "big": 2**62, "nested": [{"a": None}]}
    emitted = emit_many([("checkout", customer, data) for customer in customers])
    db.session.expire_all()
    events = {e.id: e for e in db.session.scalars(db.select(Event))}
    assert [(events[e.id].customer, events[e.id].data) for e in emitted] == [(c, data) for c in customers]
    messages = {m.id: m.customer for m in db.session.scalars(db.select(Message))}
    assert [messages[m.id] for e in emitted for m in e.messages] == customers


def test_emit_many_beyond_one_statement_matches_every_message_to_its_event(app):
    """10,500 messages: more than one INSERT on PostgreSQL (storage/bulk.py cuts its arrays at 10,000
    rows), one on SQLite; each message due once in delivery's queue."""
    first = make_endpoint("http://127.0.0.1:9/a")
    second = make_endpoint("http://127.0.0.1:9/b")
    emitted = emit_many([("checkout", f"c{i}", {"i": i}) for i in range(5_250)])
    stored = {m.id: (m.event_id, m.endpoint_id) for m in db.session.scalars(db.select(Message))}
    assert len(stored) == 10_500
    queued = {p.message_id: p.endpoint_id for p in db.session.scalars(db.select(PendingMessage))}
    assert queued == {message_id: endpoint_id for message_id, (_, endpoint_id) in stored.items()}
    for event in emitted:
        assert sorted(stored[m.id] for m in event.messages) == [(event.id, first.id), (event.id, second.id)]
        assert {m.endpoint_id for m in event.messages} == {first.id, second.id}
    ids = [m.id for event in emitted for m in event.messages]
    assert ids == sorted(ids), "message ids grow in the order the events were given"


@pytest.mark.parametrize("returning", [(), ("id",)])
def test_bulk_inserts_store_per_row_timestamps_and_flags_as_the_orm_reads_them(app, returning):
    """On SQLite a timestamp or a boolean is type-processed before the driver takes it (a text, an
    integer); bulk inserts do that per row for the columns that need it, the others go as they are."""
    from webapp.storage.bulk import insert_rows

    moments = [dt.datetime(2026, 1, 1, 0, 0, 0, 1), dt.datetime(2026, 12, 31, 23, 59, 59, 999999)]
    rows = [(f"e{i}", "checkout", "c1", "{}", moment, i % 2 == 0) for i, moment in enumerate(moments)]
    insert_rows(db.session.connection(), Event.__table__, ("id", "action", "customer", "data", "created_at",
                                                           "is_test"), rows, {}, returning)
    db.session.commit()
    stored = {e.id: (e.created_at, e.is_test) for e in db.session.scalars(db.select(Event))}
    assert stored == {"e0": (moments[0], True), "e1": (moments[1], False)}
    later = db.select(Event.id).where(Event.created_at > dt.datetime(2026, 6, 1))  # compared as the ORM binds it
    assert db.session.scalars(later).all() == ["e1"]
