"""A message's event and endpoint, an attempt's and a pending row's message: foreign keys on SQLite,
kept true by the product's writes on PostgreSQL.

See MESSAGE_REFERENCES in webapp/storage/models.py: PostgreSQL checked each with a query per inserted
row, so migrations 0008 and 0009 leave them to the code there.
"""
from __future__ import annotations

import datetime as dt

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from tests.conftest import ROOT
from tests.support.factories import make_endpoint
from webapp.domain import endpoints as endpoint_service
from webapp.domain.events import emit_many
from webapp.domain.logbook.resend import resend
from webapp.domain.logbook.retention import purge
from webapp.extensions import db
from webapp.storage.models import Attempt, Endpoint, Event, Message, PendingMessage, utcnow

pytestmark = pytest.mark.db

MIGRATIONS = str(ROOT / "migrations")


REFERRING = ("message", "attempt", "pending_message")
ON_SQLITE = {"message": {"event", "endpoint", "message"}, "attempt": {"message"}, "pending_message": {"message"}}
# Only resend_of_id is the database's to check.
ON_POSTGRESQL = {"message": {"message"}, "attempt": set(), "pending_message": set()}


def referenced_tables() -> dict[str, set[str]]:
    with db.engine.connect() as conn:
        return {table: {key["referred_table"] for key in inspect(conn).get_foreign_keys(table)}
                for table in REFERRING}


def expected_references() -> dict[str, set[str]]:
    return ON_POSTGRESQL if db.engine.dialect.name == "postgresql" else ON_SQLITE


def orphans() -> int:
    """Messages whose event or endpoint row is missing, attempts and pending rows whose message is."""
    missing_event = ~select(Event.id).where(Event.id == Message.event_id).exists()
    missing_endpoint = ~select(Endpoint.id).where(Endpoint.id == Message.endpoint_id).exists()
    messages = db.session.scalar(select(func.count()).select_from(Message).where(missing_event | missing_endpoint))
    rows = 0
    for model in (Attempt, PendingMessage):
        missing_message = ~select(Message.id).where(Message.id == model.message_id).exists()
        rows += db.session.scalar(select(func.count()).select_from(model).where(missing_message))
    return messages + rows


def test_postgresql_leaves_the_references_to_the_code_and_sqlite_enforces_them(app):
    assert referenced_tables() == expected_references()
    if db.engine.dialect.name == "postgresql":
        return
    for event_id, endpoint_id in (("no-such-event", make_endpoint("http://127.0.0.1:9/").id),
                                  (emit_many([("checkout", "c", {})])[0].id, 987_654)):
        with pytest.raises(IntegrityError):
            with db.engine.begin() as conn:
                conn.execute(text("INSERT INTO message (event_id, endpoint_id, action, customer, status, attempts, "
                                  "created_at, is_test) VALUES (:event, :endpoint, 'checkout', 'c', 'new', 0, "
                                  "CURRENT_TIMESTAMP, false)"), {"event": event_id, "endpoint": endpoint_id})
    for statement in ("INSERT INTO attempt (message_id, number, started_at, duration_ms, request_method, "
                      "request_url, request_headers, request_body, response_headers, response_body, "
                      "response_truncated) VALUES (987654, 1, CURRENT_TIMESTAMP, 0, 'POST', 'u', '[]', '', '[]', "
                      "'', false)",
                      "INSERT INTO pending_message (message_id, endpoint_id, next_attempt_at, is_retry) "
                      "VALUES (987654, 1, CURRENT_TIMESTAMP, false)"):
        with pytest.raises(IntegrityError):
            with db.engine.begin() as conn:
                conn.execute(text(statement))


@pytest.mark.parametrize("revision", ["0007_pending_message", "0008_message_references"])
def test_the_migrations_drop_them_on_postgresql_and_their_downgrades_put_them_back(app, revision):
    """From before 0008 (every key) and from between the two (the attempt's and pending row's keys)."""
    make_endpoint("http://127.0.0.1:9/")
    emit_many([("checkout", f"c{i}", {}) for i in range(3)])
    db.session.remove()
    downgrade(directory=MIGRATIONS, revision=revision)
    try:
        before = referenced_tables()
    finally:
        upgrade(directory=MIGRATIONS)
    if revision == "0007_pending_message" or db.engine.dialect.name != "postgresql":
        assert before == ON_SQLITE
    else:
        assert before == {**ON_SQLITE, "message": ON_POSTGRESQL["message"]}
    assert referenced_tables() == expected_references()


def test_no_write_of_the_product_leaves_a_row_without_what_it_references(app):
    """Emits (each event to two endpoints), a resend, an endpoint deleted with messages waiting, and the
    retention purge, which deletes a message's attempts and pending row with it and an event only once
    no message points at it."""
    kept, deleted = (make_endpoint("http://127.0.0.1:9/"), make_endpoint("http://127.0.0.1:9/"))
    events = emit_many([("checkout", f"c{i}", {"i": i}) for i in range(20)])
    first = db.session.get(Message, events[0].messages[0].id)
    copy = resend(first, force=True).message
    endpoint_service.delete(db.session.get(Endpoint, deleted.id))
    assert db.session.scalar(select(func.count()).select_from(Message)) == 41 and orphans() == 0

    old = dt.datetime(2020, 1, 1)
    db.session.execute(Message.__table__.update().where(Message.id.not_in([first.id, copy.id])).values(created_at=old))
    db.session.execute(Event.__table__.update().values(created_at=old))
    for message_id in db.session.scalars(select(Message.id).where(Message.id.not_in([first.id, copy.id]))):
        db.session.add(Attempt(message_id=message_id, number=1, started_at=old, request_method="POST",
                               request_url="u"))
    db.session.commit()
    waiting = select(func.count()).select_from(PendingMessage)
    assert db.session.scalar(waiting) > 2  # the kept endpoint's old messages wait, too
    report = purge(90, batch_size=7)
    assert (report.messages, report.attempts) == (39, 39) and orphans() == 0
    assert db.session.scalar(waiting) == 2  # the two messages left, both still to be sent
    # The resend's event outlives the purge with it; the events of purged messages alone are gone.
    left = db.session.scalars(select(Message.event_id)).all()
    assert sorted(db.session.scalars(select(Event.id))) == sorted(set(left)) and len(left) == 2
    assert kept.id in db.session.scalars(select(Message.endpoint_id)).all()


def test_the_purge_leaves_a_message_a_worker_holds_until_its_lease_ends(app):
    """Its attempt is about to be written: deleting the message under it would leave that attempt
    without its message."""
    make_endpoint("http://127.0.0.1:9/")
    held, free = (event.messages[0].id for event in emit_many([("checkout", f"c{i}", {}) for i in range(2)]))
    db.session.execute(Message.__table__.update().values(created_at=dt.datetime(2020, 1, 1)))
    db.session.execute(PendingMessage.__table__.update().where(PendingMessage.message_id == held)
                       .values(lease_owner="worker-1", lease_until=utcnow() + dt.timedelta(minutes=1)))
    db.session.commit()
    assert purge(90).messages == 1
    assert db.session.scalars(select(Message.id)).all() == [held]
    db.session.execute(PendingMessage.__table__.update().values(lease_owner=None, lease_until=None))
    db.session.commit()
    assert purge(90).messages == 1 and orphans() == 0
    assert db.session.scalar(select(func.count()).select_from(Message)) == 0
