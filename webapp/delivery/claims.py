"""The database side of delivery: claim due messages, write outcomes, recover lost claims.

A claim is a lease: one conditional UPDATE marks up to N due messages as held
by one job (``lease_owner``) until ``lease_until`` and counts the attempt at
once, so an attempt whose worker dies still counts. Outcomes are written only
while the lease is still ours. The sweep turns expired leases into failed
attempts and makes the messages due again.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, func, insert, or_, select, update

from ..extensions import db
from ..models import DONE, FAILED, PENDING_STATUSES, RESENT, Attempt, Endpoint, Event, Message, response_class, utcnow
from .outgoing import MessageContent
from .send import Outcome

LOST_ATTEMPT_ERROR = "delivery interrupted: the worker stopped before recording an outcome (lease expired)"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    interval: float

    def next_status(self, succeeded: bool, attempt_number: int) -> str:
        if succeeded:
            return DONE
        return FAILED if attempt_number >= self.max_attempts else RESENT

    def after_interruption(self, attempt_number: int) -> str:
        """An interrupted attempt counts as unsuccessful, but its outcome is unknown: the
        receiver may have answered 2xx. So a message never ends failed on one; an interrupted
        last attempt gets one more try (and a message that keeps killing workers still ends)."""
        return FAILED if attempt_number > self.max_attempts else RESENT


MESSAGE = Message.__table__
EVENT = Event.__table__
ATTEMPT = Attempt.__table__


def claim_due(endpoint_id: int, owner: str, limit: int, lease_seconds: float) -> list[MessageContent]:
    """Lease up to ``limit`` due messages of one endpoint, oldest first (Core: this is the hot path)."""
    now = utcnow()
    due = (
        select(MESSAGE.c.id)
        .where(
            MESSAGE.c.endpoint_id == endpoint_id,
            MESSAGE.c.next_attempt_at <= now,
            MESSAGE.c.lease_owner.is_(None),
            MESSAGE.c.status.in_(PENDING_STATUSES),
        )
        .order_by(MESSAGE.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    connection = db.session.connection()
    claimed = connection.execute(
        update(MESSAGE)
        .where(MESSAGE.c.id.in_(due.scalar_subquery()), MESSAGE.c.lease_owner.is_(None))
        .values(lease_owner=owner, lease_until=now + dt.timedelta(seconds=lease_seconds),
                attempts=MESSAGE.c.attempts + 1)
        .returning(MESSAGE.c.id)
    ).scalars().all()
    db.session.commit()
    if not claimed:
        return []
    rows = db.session.connection().execute(
        select(MESSAGE.c.id, MESSAGE.c.attempts, EVENT.c.id, EVENT.c.action, EVENT.c.customer,
               EVENT.c.created_at, EVENT.c.data)
        .join(EVENT, EVENT.c.id == MESSAGE.c.event_id)
        .where(MESSAGE.c.id.in_(claimed))
        .order_by(MESSAGE.c.id)
    ).all()
    db.session.rollback()  # end the read transaction; nothing is held while sending
    return [MessageContent(*row) for row in rows]


def record_outcomes(
    owner: str, results: list[tuple[MessageContent, Outcome]], policy: RetryPolicy
) -> dt.datetime | None:
    """Store attempts and new statuses in bulk; return the earliest retry time, if any."""
    if not results:
        return None
    now = utcnow()
    retry_at = now + dt.timedelta(seconds=policy.interval)
    attempt_rows, status_rows = [], []
    earliest = None
    for content, outcome in results:
        attempt_rows.append(attempt_row(content.message_id, content.attempt_number, outcome))
        status = policy.next_status(outcome.succeeded, content.attempt_number)
        next_at = retry_at if status == RESENT else None
        if next_at is not None:
            earliest = next_at
        status_rows.append({
            "b_id": content.message_id, "b_owner": owner, "status": status,
            "response_code": outcome.response_code, "response_class": response_class(outcome.response_code),
            "last_attempt_at": outcome.started_at, "next_attempt_at": next_at,
        })
    connection = db.session.connection()
    connection.execute(insert(ATTEMPT), attempt_rows)
    connection.execute(
        update(MESSAGE)
        .where(MESSAGE.c.id == bindparam("b_id"), MESSAGE.c.lease_owner == bindparam("b_owner"))
        .values(status=bindparam("status"), response_code=bindparam("response_code"),
                response_class=bindparam("response_class"), last_attempt_at=bindparam("last_attempt_at"),
                next_attempt_at=bindparam("next_attempt_at"), lease_owner=None, lease_until=None),
        status_rows,
    )
    db.session.commit()
    return earliest


def attempt_row(message_id: int, number: int, outcome: Outcome) -> dict:
    """An attempt as a row for ``insert(ATTEMPT)`` (column names, not attribute names)."""
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


def recover_expired_leases(policy: RetryPolicy, limit: int = 500) -> int:
    """Count each expired claim as an unsuccessful attempt and make the message due again."""
    now = utcnow()
    stale = db.session.execute(
        select(Message.id, Message.lease_owner, Message.attempts, Message.lease_until)
        .where(Message.lease_owner.is_not(None), Message.lease_until < now)
        .order_by(Message.lease_until)
        .limit(limit)
    ).all()
    recovered = 0
    for message_id, owner, attempts, lease_until in stale:
        status = policy.after_interruption(attempts)
        changed = db.session.execute(
            update(Message)
            .where(Message.id == message_id, Message.lease_owner == owner)
            .values(
                status=status,
                lease_owner=None,
                lease_until=None,
                response_code=None,
                response_class=None,
                last_attempt_at=lease_until,
                next_attempt_at=now if status == RESENT else None,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed:
            lost = Outcome(started_at=lease_until, duration_ms=0, request_method="POST", request_url="",
                           request_headers=[], request_body="", error=LOST_ATTEMPT_ERROR)
            db.session.execute(insert(ATTEMPT), [attempt_row(message_id, attempts, lost)])
            recovered += 1
    db.session.commit()
    return recovered


def due_endpoint_ids(grace_seconds: float) -> list[int]:
    """Enabled endpoints with messages due for a while that no job holds."""
    cutoff = utcnow() - dt.timedelta(seconds=grace_seconds)
    ids = db.session.scalars(
        select(Message.endpoint_id)
        .join(Endpoint, Endpoint.id == Message.endpoint_id)
        .where(
            Message.next_attempt_at <= cutoff,
            Message.lease_owner.is_(None),
            Endpoint.enabled.is_(True),
            Endpoint.deleted_at.is_(None),
        )
        .distinct()
    ).all()
    db.session.rollback()
    return list(ids)


def has_due(endpoint_id: int) -> bool:
    found = db.session.scalar(
        select(func.count())
        .select_from(
            select(Message.id)
            .where(
                Message.endpoint_id == endpoint_id,
                Message.next_attempt_at <= utcnow(),
                Message.lease_owner.is_(None),
            )
            .limit(1)
            .subquery()
        )
    )
    db.session.rollback()
    return bool(found)


def acquire_endpoint(endpoint_id: int, owner: str, lease_seconds: float) -> bool:
    """The single-flight lease of a queue-batches-off endpoint (one message at a time)."""
    now = utcnow()
    got = db.session.execute(
        update(Endpoint)
        .where(
            Endpoint.id == endpoint_id,
            or_(Endpoint.lease_owner.is_(None), Endpoint.lease_until < now, Endpoint.lease_owner == owner),
        )
        .values(lease_owner=owner, lease_until=now + dt.timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return got == 1


def release_endpoint(endpoint_id: int, owner: str) -> None:
    db.session.execute(
        update(Endpoint)
        .where(and_(Endpoint.id == endpoint_id, Endpoint.lease_owner == owner))
        .values(lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
