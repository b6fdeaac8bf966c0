"""A lane asks for its first batch before it takes a thread (``Engine._launch``).

While the ledger has not answered, the lane holds none of the engine's threads:
they stay free for lanes that have work. If the engine stops before the lane
could start, what its claim took (messages, an in-order lease) goes back at once,
rather than when the leases expire.
"""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from tests.support.factories import make_endpoint
from tests.support.receiver import Receiver
from webapp.delivery.engine import Engine
from webapp.domain.events import emit_many
from webapp.extensions import db
from webapp.storage.models import Endpoint, Message, PendingMessage
from webapp.storage.statuses import DONE, QUEUED

pytestmark = pytest.mark.db


def test_a_lane_waiting_for_its_first_claim_holds_no_thread(app):
    app.config["WEBHOOKS_DELIVERY_THREADS"] = 1
    with Receiver() as receiver:
        endpoint_id = make_endpoint(receiver.url).id
        emit_many([("checkout", "c1", {"n": 1})])
        engine = Engine(app).start()
        ledger_busy, go_on = threading.Event(), threading.Event()

        def hold_the_ledger(_conn):
            ledger_busy.set()
            go_on.wait(10)

        try:
            engine.ledger.call(hold_the_ledger)
            assert ledger_busy.wait(5)
            engine.wake([endpoint_id])  # its claim waits behind the held ledger
            other_work = engine.pool.submit(threading.current_thread)
            assert other_work.result(timeout=2).name.startswith("lane"), "the engine's one thread was taken"
            assert not receiver.requests
            go_on.set()
            assert engine.wait_idle(20)
        finally:
            go_on.set()
            engine.stop()
        assert len(receiver.wait_for(1)) == 1
    db.session.rollback()
    assert db.session.scalars(select(Message.status)).all() == [DONE]


def test_a_lane_claimed_for_as_the_engine_stops_gives_back_its_messages_and_the_order_lease(app):
    # Nothing listens on port 9: a lane that did start would record failed attempts.
    endpoint_id = make_endpoint("http://127.0.0.1:9/", queue_batches=False).id
    emit_many([("checkout", f"c{i}", {"n": i}) for i in range(3)])
    engine = Engine(app).start()
    engine.pool.shutdown()  # as the engine stops: no lane can start any more
    try:
        engine.wake([endpoint_id])
        assert engine.wait_idle(10), "the lane never counted as gone"
    finally:
        engine.stop()
    db.session.rollback()
    assert db.session.execute(select(Message.status, Message.attempts)).all() == [(QUEUED, 0)] * 3
    assert db.session.scalars(select(PendingMessage.lease_owner)).all() == [None] * 3
    assert db.session.scalar(select(Endpoint.lease_owner).where(Endpoint.id == endpoint_id)) is None
