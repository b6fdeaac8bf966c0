"""Resend: the same event again, as a new log entry linked to the message it repeats.

The new message keeps the event, so the receiver sees the same ``Webhook-Id``.
A unique index allows one resend in flight per message, which makes repeated
clicks and repeated bulk resends idempotent. A message whose event is still on
its way to the endpoint (queued, or waiting for a retry, itself or as an earlier
resend) is not resent unless asked to force it: the receiver would get every
attempt of two retry chains.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, exists, func, insert, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from ...delivery import dispatch
from ...extensions import db
from ...storage import pending
from ...storage.id_lists import one_of
from ...storage.models import Message, utcnow
from ...storage.statuses import FAILED, NEW, PENDING_STATUSES
from .filters import LogFilter, apply

BULK_BATCH = 500


class StillBeingDelivered(Exception):
    """The message's event is still on its way to that endpoint, as ``in_flight``."""

    def __init__(self, message: Message, in_flight: Message):
        self.message = message
        self.in_flight = in_flight
        as_itself = in_flight.id == message.id
        super().__init__(
            f"message {message.id} is still being delivered"
            + ("" if as_itself else f" as message {in_flight.id}")
            + f" ({in_flight.status}, {in_flight.attempts} attempt(s) so far): a resend now starts a second "
            "delivery, and the receiver gets the event twice")


@dataclass(frozen=True)
class Resent:
    message: Message  # the resend in flight
    queued: bool      # False: one was already in flight, nothing new was queued


def resend(message: Message, *, force: bool = False) -> Resent:
    """Queue a copy of ``message``; if a resend of it is already in flight, return that one.

    Raises StillBeingDelivered when its event is still on its way to the endpoint
    otherwise, unless ``force``.
    """
    pending = pending_resend_of(message.id)
    if pending is not None:
        return Resent(pending, queued=False)
    in_flight = delivery_in_flight(message)
    if in_flight is not None and not force:
        raise StillBeingDelivered(message, in_flight)
    copy = queue_resend(message)
    return Resent(copy, queued=True) if copy is not None else Resent(pending_resend_of(message.id), queued=False)


def delivery_in_flight(message: Message) -> Message | None:
    """A pending message carrying the same event to the same endpoint (the message itself, or a resend)."""
    return db.session.scalars(
        select(Message).where(Message.event_id == message.event_id, Message.endpoint_id == message.endpoint_id,
                              Message.status.in_(PENDING_STATUSES))
        .order_by(Message.id.desc()).limit(1)
    ).first()


def queue_resend(message: Message) -> Message | None:
    """A new queued copy of ``message``, or None when a resend of it is already in flight."""
    now = utcnow()
    copy = Message(
        event_id=message.event_id, endpoint_id=message.endpoint_id, action=message.action,
        customer=message.customer, status=NEW, attempts=0, created_at=now,
        next_attempt_at=now, resend_of_id=message.id,
    )
    db.session.add(copy)
    try:
        db.session.flush()
        pending.enqueue(db.session.connection(), [(copy.id, copy.endpoint_id)], now)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if has_pending_resend(message.id):
            return None
        raise
    dispatch.kick([copy.endpoint_id])
    return copy


def has_pending_resend(message_id: int) -> bool:
    return db.session.scalar(
        select(exists().where(Message.resend_of_id == message_id, Message.status.in_(PENDING_STATUSES)))
    )


def pending_resend_of(message_id: int) -> Message | None:
    return db.session.scalars(
        select(Message).where(Message.resend_of_id == message_id, Message.status.in_(PENDING_STATUSES))
    ).one_or_none()


def failed_not_resent() -> Select:
    """Failed messages that nothing has resent yet (the newest of each chain), as a query of ids."""
    later = aliased(Message)
    return select(Message.id).where(
        Message.status == FAILED,
        Message.is_test.is_(False),
        ~exists().where(later.resend_of_id == Message.id),
    )


def resendable(log_filter: LogFilter) -> Select:
    """Failed messages in the filter that nothing has resent yet."""
    return apply(failed_not_resent(), log_filter.without("status"))


@dataclass(frozen=True)
class BulkPlan:
    """What a bulk resend of a filter would do: each count stops at the cap + 1 ("more than")."""

    failed: int           # failed messages in the filter
    resendable: int       # of which it queues again
    already_resent: int   # skipped: a newer entry already repeats them
    tests: int            # skipped: sent by the Test button, not events

    @property
    def skipped_text(self) -> str:
        parts = [f"{self.already_resent} already resent (the newer entry is in the log)" if self.already_resent else "",
                 f"{self.tests} test message(s) (the Test button's messages are never resent)" if self.tests else ""]
        return "; ".join(part for part in parts if part)


def bulk_plan(log_filter: LogFilter, cap: int) -> BulkPlan:
    later = aliased(Message)
    failed = apply(select(Message.id).where(Message.status == FAILED), log_filter.without("status"))
    resent = exists().where(later.resend_of_id == Message.id)
    return BulkPlan(failed=_count(failed, cap), resendable=_count(resendable(log_filter), cap),
                    already_resent=_count(failed.where(resent), cap),
                    tests=_count(failed.where(Message.is_test.is_(True), ~resent), cap))


def _count(ids_query: Select, cap: int) -> int:
    capped = ids_query.limit(cap + 1).subquery()
    return db.session.scalar(select(func.count()).select_from(capped)) or 0


def bulk_resend(log_filter: LogFilter) -> int:
    """Resend every failed message matching the filter; returns how many were queued."""
    return resend_all(resendable(log_filter))


def resend_all(ids_query: Select) -> int:
    """Resend every message the query of ids finds, in batches; idempotent. Returns how many were queued."""
    now = utcnow()
    queued, endpoints, after = 0, set(), 0
    while True:
        ids = list(db.session.scalars(
            ids_query.where(Message.id > after).order_by(Message.id).limit(BULK_BATCH)
        ))
        if not ids:
            break
        after = ids[-1]
        source = select(
            Message.event_id, Message.endpoint_id, Message.action, Message.customer,
            literal(NEW), literal(0), literal(now), literal(now), Message.id, literal(False),
        ).where(one_of(Message.id, ids))
        columns = ["event_id", "endpoint_id", "action", "customer", "status", "attempts",
                   "created_at", "next_attempt_at", "resend_of_id", "is_test"]
        try:
            created = db.session.execute(
                insert(Message).from_select(columns, source).returning(Message.id, Message.endpoint_id)
            ).all()
            pending.enqueue(db.session.connection(), [tuple(row) for row in created], now)
            db.session.commit()
        except IntegrityError:
            # Someone else resent some of these meanwhile: skip them one by one.
            db.session.rollback()
            for message in list(db.session.scalars(select(Message).where(one_of(Message.id, ids)))):
                if queue_resend(message) is not None:
                    queued += 1
                    endpoints.add(message.endpoint_id)
            continue
        queued += len(created)
        endpoints.update(endpoint_id for _, endpoint_id in created)
    dispatch.kick(endpoints)
    return queued
