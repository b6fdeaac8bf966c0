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

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, lazyload

from ..delivery import dispatch
from ..extensions import db
from ..storage import pending
from ..storage.id_lists import one_of
from ..storage.models import Endpoint, Message, utcnow
from ..storage.statuses import QUEUED, RESENT
from .endpoint_health import health_of, waiting_reason

# Pages count a backlog up to this many and say "10,000+" beyond (as the log does): counting a
# million waiting messages would cost more than the page. /metrics counts them all.
COUNT_CAP = 10_000


@dataclass(frozen=True)
class Backlog:
    waiting: int = 0                      # not final yet
    retrying: int = 0                     # of which waiting for a retry
    oldest_at: dt.datetime | None = None  # the oldest waiting message's creation
    next_at: dt.datetime | None = None    # the earliest next attempt
    capped: bool = False                  # waiting (or retrying) is COUNT_CAP and there are more

    def age_seconds(self, now: dt.datetime) -> float:
        return max(0.0, (now - self.oldest_at).total_seconds()) if self.oldest_at else 0.0


class QueueConflict(Exception):
    """A lever that does not apply to the endpoint's state (try now while paused, ...)."""


def _waiting(*conditions):
    return (Message.endpoint_id == Endpoint.id, Message.next_attempt_at.is_not(None), *conditions)


def _capped_count(*conditions):
    """How many match, counting no further than COUNT_CAP + 1 (an index range that stops early)."""
    first = select(Message.id).where(*_waiting(*conditions)).limit(COUNT_CAP + 1).correlate(Endpoint).subquery()
    return select(func.count()).select_from(first).scalar_subquery()


def _first(column, order, *conditions):
    return (select(column).where(*_waiting(*conditions)).order_by(order).limit(1)
            .correlate(Endpoint).scalar_subquery())


def backlogs(endpoint_ids: list[int], exact: bool = False) -> dict[int, Backlog]:
    """Per endpoint with anything waiting: how many wait, how many of them for a retry, the oldest, the next
    attempt. One statement of index probes per endpoint; counts stop at COUNT_CAP unless ``exact``."""
    if not endpoint_ids:
        return {}
    if exact:
        waiting = select(func.count()).where(*_waiting()).correlate(Endpoint).scalar_subquery()
        retrying = (select(func.count()).where(*_waiting(Message.status == RESENT)).correlate(Endpoint)
                    .scalar_subquery())
    else:
        waiting, retrying = _capped_count(), _capped_count(Message.status == RESENT)
    rows = db.session.execute(select(
        Endpoint.id, waiting, retrying,
        # Ids grow with creation time: the oldest is the smallest id (ix_message_due).
        _first(Message.created_at, Message.id),
        # The next attempt, per status along ix_message_pending (endpoint_id, status, next_attempt_at).
        _first(Message.next_attempt_at, Message.next_attempt_at, Message.status == RESENT),
        _first(Message.next_attempt_at, Message.next_attempt_at, Message.status == QUEUED),
    ).where(one_of(Endpoint.id, endpoint_ids))).all()
    top = None if exact else COUNT_CAP
    return {endpoint_id: Backlog(waiting=min(count, top or count), retrying=min(retries, top or retries),
                                 oldest_at=oldest,
                                 next_at=min(filter(None, (next_retry, next_new)), default=None),
                                 capped=not exact and max(count, retries) > COUNT_CAP)
            for endpoint_id, count, retries, oldest, next_retry, next_new in rows if count}


def next_due(endpoint_ids: list[int]) -> dict[int, Message]:
    """Per endpoint, the message that will be tried first: the earliest due among retries and new ones.
    Two statements whatever the number of endpoints (each subquery follows ix_message_pending)."""
    if not endpoint_ids:
        return {}
    rows = db.session.execute(select(
        Endpoint.id, _first(Message.id, Message.next_attempt_at, Message.status == RESENT),
        _first(Message.id, Message.next_attempt_at, Message.status == QUEUED),
    ).where(one_of(Endpoint.id, endpoint_ids))).all()
    wanted = [message_id for row in rows for message_id in row[1:] if message_id is not None]
    loaded = {m.id: m for m in db.session.scalars(
        select(Message).options(lazyload(Message.event), lazyload(Message.endpoint), joinedload(Message.pending))
        .where(one_of(Message.id, wanted)))}
    found = {}
    for endpoint_id, *candidates in rows:
        messages = [loaded[i] for i in candidates if i in loaded]
        if messages:
            found[endpoint_id] = min(messages, key=lambda m: (m.next_attempt_at, m.id))
    return found


def why_waiting(endpoints: list[Endpoint], now: dt.datetime | None = None) -> dict[int, str]:
    """Why each endpoint's next message is not sent yet, in words (endpoints with nothing waiting are left out)."""
    first = next_due([e.id for e in endpoints])
    return {e.id: waiting_reason(first[e.id], e, now) for e in endpoints if e.id in first}


def try_now(endpoint: Endpoint) -> int:
    """Make everything waiting due now and wake delivery; returns how many messages were moved forward.

    A receiver's Retry-After is set aside too (the operator asked). Not for a paused or disabled
    endpoint: resume or enable it instead."""
    state = health_of(endpoint).state(utcnow())
    if state in ("paused", "disabled"):
        raise QueueConflict(f"the endpoint is {state}: {'resume' if state == 'paused' else 'enable'} it first")
    now = utcnow()
    moved = pending.make_due(db.session.connection(), endpoint.id, now)
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
