"""Retention: delete log entries older than ``WEBHOOKS_RETENTION_DAYS``, in small batches.

Each batch is its own short transaction, so the tables are never locked for long.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, exists, select

from ...extensions import db
from ...storage.models import Attempt, Event, Message, PendingMessage, utcnow


@dataclass(frozen=True)
class PurgeReport:
    messages: int
    attempts: int
    events: int


def purge(older_than_days: int, batch_size: int = 1000) -> PurgeReport:
    cutoff = utcnow() - dt.timedelta(days=older_than_days)
    messages = attempts = events = 0
    # Each batch is chosen by a subquery, not sent back as a list of ids (storage/id_lists.py says why).
    # A message a worker holds right now waits for the next purge: its attempt is about to be written.
    held = exists().where(PendingMessage.message_id == Message.id, PendingMessage.lease_owner.is_not(None))
    oldest = select(Message.id).where(Message.created_at < cutoff, ~held).order_by(Message.id).limit(batch_size)
    while True:
        # The database cascades these on SQLite only (MESSAGE_REFERENCES in storage/models.py).
        attempts += db.session.execute(delete(Attempt).where(Attempt.message_id.in_(oldest))).rowcount
        db.session.execute(delete(PendingMessage).where(PendingMessage.message_id.in_(oldest)))
        db.session.execute(
            Message.__table__.update().where(Message.resend_of_id.in_(oldest)).values(resend_of_id=None)
        )
        deleted = db.session.execute(delete(Message).where(Message.id.in_(oldest))).rowcount
        db.session.commit()
        if not deleted:
            break
        messages += deleted
    orphans = (select(Event.id).where(Event.created_at < cutoff, ~exists().where(Message.event_id == Event.id))
               .limit(batch_size))
    while deleted := db.session.execute(delete(Event).where(Event.id.in_(orphans))).rowcount:
        db.session.commit()
        events += deleted
    db.session.commit()
    return PurgeReport(messages=messages, attempts=attempts, events=events)
