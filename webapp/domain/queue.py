"""What waits to be sent, per endpoint, and the operator's levers on it: try now, pause, resume.

"Waiting" is every message not final yet (``next_attempt_at`` set): new ones, ones
waiting for a retry, and the few being sent at this moment. Every query here is
served by the partial indexes on pending messages (ix_message_pending, ix_message_due),
so it costs what is waiting, never what the log holds.

Pause versus disable: a *disabled* endpoint gets no new messages (events skip it) and
sends nothing. A *paused* endpoint keeps receiving new messages from events, sends
nothing, and keeps its health; resuming sends everything that waited, in order.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import lazyload

from ..delivery import dispatch
from ..extensions import db
from ..storage.models import QUEUED, RESENT, Endpoint, Message, utcnow
from .endpoint_health import health_of, waiting_reason


@dataclass(frozen=True)
class Backlog:
    waiting: int = 0                      # not final yet
    retrying: int = 0                     # of which waiting for a retry
    oldest_at: dt.datetime | None = None  # the oldest waiting message's creation
    next_at: dt.datetime | None = None    # the earliest next attempt

    def age_seconds(self, now: dt.datetime) -> float:
        return max(0.0, (now - self.oldest_at).total_seconds()) if self.oldest_at else 0.0


class QueueConflict(Exception):
    """A lever that does not apply to the endpoint's state (try now while paused, ...)."""


def backlogs(endpoint_ids: list[int]) -> dict[int, Backlog]:
    """Per endpoint: how many wait, how many of them for a retry, the oldest, the next attempt."""
    if not endpoint_ids:
        return {}
    counts: dict[int, dict] = {}
    rows = db.session.execute(
        select(Message.endpoint_id, Message.status, func.count(), func.min(Message.next_attempt_at))
        .where(Message.next_attempt_at.is_not(None), Message.endpoint_id.in_(endpoint_ids))
        .group_by(Message.endpoint_id, Message.status)
    ).all()
    for endpoint_id, status, number, next_at in rows:
        found = counts.setdefault(endpoint_id, {"waiting": 0, "retrying": 0, "next_at": None})
        found["waiting"] += number
        found["retrying"] += number if status == RESENT else 0
        found["next_at"] = min(filter(None, (found["next_at"], next_at)), default=None)
    if not counts:
        return {}
    # Ids grow with creation time: the oldest is the smallest id (ix_message_due: one index probe each).
    oldest = (select(Message.created_at)
              .where(Message.endpoint_id == Endpoint.id, Message.next_attempt_at.is_not(None))
              .order_by(Message.id).limit(1).scalar_subquery())
    firsts = dict(db.session.execute(select(Endpoint.id, oldest).where(Endpoint.id.in_(list(counts)))).all())
    return {endpoint_id: Backlog(oldest_at=firsts.get(endpoint_id), **found) for endpoint_id, found in counts.items()}


def next_due(endpoint_id: int) -> Message | None:
    """The message that will be tried first: the earliest due among retries and new ones."""
    # Ordered by ix_message_pending (endpoint_id, status, next_attempt_at) itself: no sort of the backlog.
    candidates = [db.session.scalar(
        select(Message).options(lazyload(Message.event), lazyload(Message.endpoint))
        .where(Message.endpoint_id == endpoint_id, Message.status == status, Message.next_attempt_at.is_not(None))
        .order_by(Message.next_attempt_at).limit(1)) for status in (RESENT, QUEUED)]
    found = [message for message in candidates if message is not None]
    return min(found, key=lambda m: (m.next_attempt_at, m.id)) if found else None


def why_waiting(endpoint: Endpoint, now: dt.datetime | None = None) -> str | None:
    """Why the endpoint's next message is not sent yet, in words (None: nothing waits)."""
    message = next_due(endpoint.id)
    return waiting_reason(message, endpoint, now) if message is not None else None


def try_now(endpoint: Endpoint) -> int:
    """Make everything waiting due now and wake delivery; returns how many messages were moved forward.

    A receiver's Retry-After is set aside too (the operator asked). Not for a paused or disabled
    endpoint: resume or enable it instead."""
    state = health_of(endpoint).state(utcnow())
    if state in ("paused", "disabled"):
        raise QueueConflict(f"the endpoint is {state}: {'resume' if state == 'paused' else 'enable'} it first")
    now = utcnow()
    moved = db.session.execute(
        update(Message).where(Message.endpoint_id == endpoint.id, Message.next_attempt_at > now,
                              Message.lease_owner.is_(None))
        .values(next_attempt_at=now).execution_options(synchronize_session=False)
    ).rowcount
    endpoint.retry_after_until = None
    db.session.commit()
    dispatch.kick([endpoint.id])
    return moved


def pause(endpoint: Endpoint, by: str) -> bool:
    """Stop sending to the endpoint (an attempt already under way finishes); False if it was paused already."""
    if endpoint.paused_at is not None:
        return False
    endpoint.paused_at, endpoint.paused_by = utcnow(), by
    db.session.commit()
    return True


def resume(endpoint: Endpoint) -> bool:
    """Send again, starting with what waited; False if it was not paused."""
    if endpoint.paused_at is None:
        return False
    endpoint.paused_at, endpoint.paused_by = None, None
    db.session.commit()
    dispatch.kick([endpoint.id])
    return True
