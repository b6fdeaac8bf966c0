"""A message's event and endpoint: foreign keys on SQLite, kept true by the product's writes on PostgreSQL.

See MESSAGE_REFERENCES in webapp/storage/models.py: PostgreSQL checked each with a query per inserted
message, so migration 0008 leaves them to the code there.
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
from webapp.storage.models import Endpoint, Event, Message

pytestmark = pytest.mark.db

MIGRATIONS = str(ROOT / "migrations")


def referenced_tables() -> set[str]:
    with db.engine.connect() as conn:
        return {key["referred_table"] for key in inspect(conn).get_foreign_keys("message")}


def orphans() -> int:
    """Messages whose event or endpoint row is missing."""
    missing_event = ~select(Event.id).where(Event.id == Message.event_id).exists()
    missing_endpoint = ~select(Endpoint.id).where(Endpoint.id == Message.endpoint_id).exists()
    return db.session.scalar(select(func.count()).select_from(Message).where(missing_event | missing_endpoint))


def test_postgresql_leaves_the_two_references_to_the_code_and_sqlite_enforces_them(app):
    if db.engine.dialect.name == "postgresql":
        assert referenced_tables() == {"message"}  # only resend_of_id is the database's to check
        return
    assert referenced_tables() == {"event", "endpoint", "message"}
    for event_id, endpoint_id in (("no-such-event", make_endpoint("http://127.0.0.1:9/").id),
                                  (emit_many([("checkout", "c", {})])[0].id, 987_654)):
        with pytest.raises(IntegrityError):
            with db.engine.begin() as conn:
                conn.execute(text("INSERT INTO message (event_id, endpoint_id, action, customer, status, attempts, "
                                  "created_at, is_test) VALUES (:event, :endpoint, 'checkout', 'c', 'new', 0, "
                                  "CURRENT_TIMESTAMP, false)"), {"event": event_id, "endpoint": endpoint_id})


def test_the_migration_drops_them_on_postgresql_and_its_downgrade_puts_them_back(app):
    make_endpoint("http://127.0.0.1:9/")
    emit_many([("checkout", f"c{i}", {}) for i in range(3)])
    db.session.remove()
    downgrade(directory=MIGRATIONS, revision="0007_pending_message")
    try:
        before = referenced_tables()
    finally:
        upgrade(directory=MIGRATIONS)
    assert before == {"event", "endpoint", "message"}
    expected = {"message"} if db.engine.dialect.name == "postgresql" else {"event", "endpoint", "message"}
    assert referenced_tables() == expected


def test_no_write_of_the_product_leaves_a_message_without_its_event_or_endpoint(app):
    """Emits (each event to two endpoints), a resend, an endpoint deleted with messages waiting, and the
    retention purge, which deletes an event only once no message points at it."""
    kept, deleted = (make_endpoint("http://127.0.0.1:9/"), make_endpoint("http://127.0.0.1:9/"))
    events = emit_many([("checkout", f"c{i}", {"i": i}) for i in range(20)])
    first = db.session.get(Message, events[0].messages[0].id)
    copy = resend(first, force=True).message
    endpoint_service.delete(db.session.get(Endpoint, deleted.id))
    assert db.session.scalar(select(func.count()).select_from(Message)) == 41 and orphans() == 0

    old = dt.datetime(2020, 1, 1)
    db.session.execute(Message.__table__.update().where(Message.id.not_in([first.id, copy.id])).values(created_at=old))
    db.session.execute(Event.__table__.update().values(created_at=old))
    db.session.commit()
    report = purge(90, batch_size=7)
    assert report.messages == 39 and orphans() == 0
    # The resend's event outlives the purge with it; the events of purged messages alone are gone.
    left = db.session.scalars(select(Message.event_id)).all()
    assert sorted(db.session.scalars(select(Event.id))) == sorted(set(left)) and len(left) == 2
    assert kept.id in db.session.scalars(select(Message.endpoint_id)).all()
