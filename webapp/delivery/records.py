"""Write attempts and the messages' new statuses; turn expired claims into interrupted attempts.

Every function takes the SQLAlchemy Core connection of the caller's
transaction: the ledger runs many of them in one commit.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from ..signing.request import MessageContent
from ..storage import bulk
from ..storage.models import Attempt, Message, PendingMessage, response_class
from ..storage.statuses import RESENT, RetryPolicy
from . import health as rules
from . import postgresql_bulk, sqlite_bulk
from .outcome import Outcome, not_sent

LOST_ATTEMPT_ERROR = "delivery interrupted: the worker stopped before recording an outcome (lease expired)"

MESSAGE = Message.__table__
PENDING = PendingMessage.__table__
ATTEMPT = Attempt.__table__

@dataclass(frozen=True)
class Written:
    """What writing a batch of outcomes decided, for the caller's timers and health view."""

    retry_times: list[dt.datetime]
    signals: list[rules.Signal]


# An outcome is written only where the lease is still ours: the message, then its pending row (ended:
# deleted; to be retried: due again, unleased). The message goes first, while the lease it checks is
# still there. A batch's statements are per database (postgresql_bulk, sqlite_bulk); these two are a
# recovered lease's.
HELD = (PENDING.c.message_id == bindparam("b_id"), PENDING.c.lease_owner == bindparam("b_owner"))
FINISH = delete(PENDING).where(*HELD)
RESCHEDULE = (update(PENDING).where(*HELD)
              .values(next_attempt_at=bindparam("b_next"), is_retry=True, lease_owner=None, lease_until=None))


def record_many(conn: Connection, owner: str, batches: list[list[tuple[MessageContent, Outcome]]],
                policy: RetryPolicy, max_retry_after: float) -> list[Written]:
    """Store the attempts and the messages' new statuses (only where the lease is still ours), for
    several batches in two statements; what each batch decided, in batch order."""
    attempt_rows, status_rows, written = [], [], []
    for results in batches:
        retry_times, signals = [], []
        for content, outcome in sorted(results, key=lambda pair: pair[1].finished_at):
            number = content.attempt_number
            attempt_rows.append(attempt_row(content.message_id, number, outcome))
            status = policy.next_status(outcome.succeeded, number)
            item = rules.signal(outcome.succeeded, outcome.response_code, outcome.header("Retry-After"),
                                outcome.error, outcome.finished_at, max_retry_after)
            signals.append(item)
            next_at = None
            if status == RESENT:
                next_at = policy.retry_at(outcome.finished_at, item.wait_until)
                retry_times.append(next_at)
            status_rows.append({
                "b_id": content.message_id, "b_owner": owner, "status": status, "attempts": number,
                "response_code": outcome.response_code, "response_class": response_class(outcome.response_code),
                "last_attempt_at": outcome.started_at, "next_attempt_at": next_at,
            })
        written.append(Written(retry_times, signals))
    if not attempt_rows:
        return written
    bulk.insert_rows(conn, ATTEMPT, ATTEMPT_COLUMNS, [tuple(row[name] for name in ATTEMPT_COLUMNS)
                                                     for row in attempt_rows], {})
    bulk_statuses = postgresql_bulk if conn.dialect.name == "postgresql" else sqlite_bulk
    bulk_statuses.record_statuses(conn, owner, status_rows)
    return written


ATTEMPT_COLUMNS = ("message_id", "number", "started_at", "duration_ms", "request_method", "request_url",
                   "request_headers", "request_body", "response_code", "response_headers", "response_body",
                   "response_truncated", "error")


def attempt_row(message_id: int, number: int, outcome: Outcome) -> dict:
    """An attempt as a row for ``insert(ATTEMPT)`` (column names, not attribute names, in ATTEMPT_COLUMNS'
    order)."""
    return {
        "message_id": message_id,
        "number": number,
        "started_at": outcome.started_at,
        "duration_ms": outcome.duration_ms,
        "request_method": outcome.request_method,
        "request_url": outcome.request_url,
        "request_headers": json.dumps(outcome.request_headers),
        "request_body": outcome.request_body,
        "response_code": outcome.response_code,
        "response_headers": json.dumps(outcome.response_headers),
        "response_body": outcome.response_body,
        "response_truncated": outcome.response_truncated,
        "error": outcome.error,
    }



def recover_expired_leases(conn: Connection, policy: RetryPolicy, now: dt.datetime, limit: int = 500) -> int:
    """Count each expired claim as an interrupted attempt and make the message due again."""
    stale = conn.execute(
        select(PENDING.c.message_id, PENDING.c.lease_owner, MESSAGE.c.attempts, PENDING.c.lease_until)
        .join(MESSAGE, MESSAGE.c.id == PENDING.c.message_id)
        .where(PENDING.c.lease_owner.is_not(None), PENDING.c.lease_until < now)
        .order_by(PENDING.c.lease_until)
        .limit(limit)
    ).all()
    recovered = 0
    for message_id, owner, attempts, lease_until in stale:
        number = attempts + 1
        status = policy.after_interruption(number)
        held = {"b_id": message_id, "b_owner": owner}
        if status == RESENT:
            changed = conn.execute(RESCHEDULE, {**held, "b_next": now}).rowcount
        else:
            changed = conn.execute(FINISH, held).rowcount
        if changed:
            conn.execute(update(MESSAGE).where(MESSAGE.c.id == message_id).values(
                status=status, attempts=number, response_code=None, response_class=None,
                last_attempt_at=lease_until, next_attempt_at=now if status == RESENT else None))
            lost = not_sent("", LOST_ATTEMPT_ERROR, lease_until)
            conn.execute(insert(ATTEMPT), [attempt_row(message_id, number, lost)])
            recovered += 1
    return recovered
