"""New messages become due: their PendingMessage rows, written in the transaction that creates them.

Emit and resend call this; from then on delivery (claims, records) keeps the row
and the message's ``next_attempt_at`` in step, and deletes the row when the
message ends.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, delete, update

from . import bulk
from .models import Message, PendingMessage


def enqueue(connection: Connection, messages: list[tuple[int, int]], now: dt.datetime) -> None:
    """(message id, endpoint id) pairs of new messages, due ``now`` (their ``next_attempt_at``)."""
    bulk.insert_rows(connection, PendingMessage.__table__, ("message_id", "endpoint_id"), messages,
                     {"next_attempt_at": now, "is_retry": False})


def update_messages(connection: Connection, message_ids: list[int], **values) -> None:
    """Carry a change made to pending rows over to their messages (the log's status and
    ``next_attempt_at``), in slices that stay under every database's limit on parameters."""
    for first in range(0, len(message_ids), 1000):
        connection.execute(update(Message).where(Message.id.in_(message_ids[first:first + 1000])).values(**values))


def end_unheld(connection: Connection, endpoint_id: int, status: str) -> int:
    """End what waits for the endpoint with ``status``, but for what a worker holds right now (that
    ends with its attempt's outcome); returns how many ended."""
    rows = PendingMessage.__table__
    ended = connection.execute(
        delete(rows).where(rows.c.endpoint_id == endpoint_id, rows.c.lease_owner.is_(None)).returning(rows.c.message_id)
    ).scalars().all()
    update_messages(connection, ended, status=status, next_attempt_at=None)
    return len(ended)
