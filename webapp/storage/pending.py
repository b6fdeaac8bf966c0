"""What waits to be sent, changed from outside delivery: a PendingMessage row and its message together.

New messages are enqueued (emit, resend), waiting ones made due now (Try now) or
ended (endpoint deleted), each in the caller's transaction. Delivery itself
(``delivery.claims``, ``delivery.records``) leases the rows, and ends or
reschedules them with each outcome.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, delete, update

from . import bulk
from .id_lists import matches_one_of
from .models import Message, PendingMessage


def enqueue(connection: Connection, messages: list[tuple[int, int]], now: dt.datetime) -> None:
    """(message id, endpoint id) pairs of new messages, due ``now`` (their ``next_attempt_at``)."""
    bulk.insert_rows(connection, PendingMessage.__table__, ("message_id", "endpoint_id"), messages,
                     {"next_attempt_at": now, "is_retry": False})


def make_due(connection: Connection, endpoint_id: int, now: dt.datetime) -> int:
    """Everything of the endpoint that waits for later and no worker holds, due ``now``; how many."""
    rows = PendingMessage.__table__
    moved = connection.execute(
        update(rows)
        .where(rows.c.endpoint_id == endpoint_id, rows.c.next_attempt_at > now, rows.c.lease_owner.is_(None))
        .values(next_attempt_at=now).returning(rows.c.message_id)
    ).scalars().all()
    update_messages(connection, moved, next_attempt_at=now)
    return len(moved)


def update_messages(connection: Connection, message_ids: list[int], **values) -> None:
    """Carry a change made to pending rows over to their messages (the log's status and
    ``next_attempt_at``)."""
    if message_ids:
        connection.execute(update(Message).where(matches_one_of(connection.dialect.name, Message.id, ids=message_ids))
                           .values(**values))


def end_unheld(connection: Connection, endpoint_id: int, status: str) -> int:
    """End what waits for the endpoint with ``status``, but for what a worker holds right now (that
    ends with its attempt's outcome); returns how many ended."""
    rows = PendingMessage.__table__
    ended = connection.execute(
        delete(rows).where(rows.c.endpoint_id == endpoint_id, rows.c.lease_owner.is_(None)).returning(rows.c.message_id)
    ).scalars().all()
    update_messages(connection, ended, status=status, next_attempt_at=None)
    return len(ended)
