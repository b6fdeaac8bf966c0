"""The database side of delivery: claim due messages, write outcomes, recover lost claims.

A claim is a lease: one conditional UPDATE marks up to N due messages as held
by one worker process (``lease_owner``) until ``lease_until``. Outcomes are
written only while the lease is still ours, and count the attempt then: a
claimed message that was never tried (its endpoint started failing first) is
released uncounted. If the process dies, the sweep turns its expired leases
into interrupted attempts and makes the messages due again.

Every function takes the SQLAlchemy Core connection of the caller's
transaction: the ledger runs many of them in one commit.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import (
    Connection,
    bindparam,
    case,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from ..storage.models import (
    DONE,
    FAILED,
    FAILING,
    HEALTHY,
    PENDING_STATUSES,
    QUEUED,
    RESENT,
    Attempt,
    Endpoint,
    Event,
    Message,
    response_class,
)
from . import health as rules
from .health import Health
from .outgoing import MessageContent
from .send import Outcome

# How many messages one claim takes: a run sent in order, or one lane's share of a parallel batch.
ORDERED_BATCH = 50
BATCH_PER_LANE = 64

LOST_ATTEMPT_ERROR = "delivery interrupted: the worker stopped before recording an outcome (lease expired)"

MESSAGE = Message.__table__
EVENT = Event.__table__
ATTEMPT = Attempt.__table__
ENDPOINT = Endpoint.__table__


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    interval: float

    @classmethod
    def from_config(cls, config) -> RetryPolicy:
        return cls(int(config["WEBHOOKS_MAX_ATTEMPTS"]), float(config["WEBHOOKS_RETRY_INTERVAL"]))

    def next_status(self, succeeded: bool, attempt_number: int) -> str:
        if succeeded:
            return DONE
        return FAILED if attempt_number >= self.max_attempts else RESENT

    def after_interruption(self, attempt_number: int) -> str:
        """An interrupted attempt counts as unsuccessful, but its outcome is unknown: the
        receiver may have answered 2xx. So a message never ends failed on one; an interrupted
        last attempt gets one more try (and a message that keeps killing workers still ends)."""
        return FAILED if attempt_number > self.max_attempts else RESENT


# --------------------------------------------------------------------------- the endpoint


HEALTH_COLUMNS = (ENDPOINT.c.enabled, ENDPOINT.c.health, ENDPOINT.c.consecutive_failures, ENDPOINT.c.failing_since,
                  ENDPOINT.c.last_error, ENDPOINT.c.last_error_at, ENDPOINT.c.retry_after_until, ENDPOINT.c.paused_at)


def read_endpoint(conn: Connection, endpoint_id: int):
    """The endpoint's row (settings and health), or None when it is gone."""
    return read_endpoints(conn, [endpoint_id]).get(endpoint_id)


READ_ENDPOINTS = select(ENDPOINT).where(ENDPOINT.c.id.in_(bindparam("b_ids", expanding=True)),
                                        ENDPOINT.c.deleted_at.is_(None))


def read_endpoints(conn: Connection, endpoint_ids) -> dict:
    """Rows of the endpoints that still exist, by id."""
    return {row.id: row for row in conn.execute(READ_ENDPOINTS, {"b_ids": list(endpoint_ids)})}


def health_of(row) -> Health:
    return Health(*(getattr(row, column.name) for column in HEALTH_COLUMNS))


# --------------------------------------------------------------------------- claiming
#
# The statements below are built once, with bind parameters: building and
# hashing a statement costs more than SQLite takes to run it, and a claim
# cycle runs one per endpoint.


def batch_size(ordered: bool) -> int:
    return ORDERED_BATCH if ordered else BATCH_PER_LANE


def _lease_statement(statuses: str):
    # The chosen rows in a CTE: PostgreSQL runs it once, so LIMIT and SKIP LOCKED hold; inlined as
    # "id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)" its plan may lease more than n rows.
    chosen = (select(MESSAGE.c.id)
              .where(MESSAGE.c.endpoint_id == bindparam("b_endpoint"), MESSAGE.c.next_attempt_at <= bindparam("b_now"),
                     MESSAGE.c.lease_owner.is_(None), text(f"message.status IN ({statuses})"))
              .order_by(MESSAGE.c.id).limit(bindparam("b_limit")).with_for_update(skip_locked=True)
              .cte("chosen"))
    return (update(MESSAGE)
            .where(MESSAGE.c.id.in_(select(chosen.c.id)), MESSAGE.c.lease_owner.is_(None))
            .values(lease_owner=bindparam("b_owner"), lease_until=bindparam("b_until"))
            .returning(MESSAGE.c.id))


LEASE = {
    rules.ALL_DUE: _lease_statement(f"'{QUEUED}', '{RESENT}'"),
    RESENT: _lease_statement(f"'{RESENT}'"),
    QUEUED: _lease_statement(f"'{QUEUED}'"),
}
CONTENT = (select(MESSAGE.c.id, MESSAGE.c.attempts, EVENT.c.id, EVENT.c.action, EVENT.c.customer,
                  EVENT.c.created_at, EVENT.c.data, MESSAGE.c.created_at)
           .join(EVENT, EVENT.c.id == MESSAGE.c.event_id)
           .where(MESSAGE.c.id.in_(bindparam("ids", expanding=True)))
           .order_by(MESSAGE.c.id))


@dataclass(frozen=True)
class ClaimPlan:
    """One claim of a cycle: what the endpoint's health lets it take, how many, until when."""

    endpoint_id: int
    take: str
    limit: int
    until: dt.datetime


def claim_many(conn: Connection, owner: str, plans: list[ClaimPlan], now: dt.datetime) -> list[list[MessageContent]]:
    """Lease what each plan allows, oldest first; the messages of each plan, in plan order."""
    chosen = [_lease_ids(conn, owner, plan, now) for plan in plans]
    every_id = [message_id for ids in chosen for message_id in ids]
    if not every_id:
        return [[] for _ in plans]
    contents = {}
    for first in range(0, len(every_id), 500):
        for message_id, attempts, *rest in conn.execute(CONTENT, {"ids": every_id[first:first + 500]}):
            contents[message_id] = MessageContent(message_id, attempts + 1, *rest)
    return [[contents[i] for i in sorted(ids) if i in contents] for ids in chosen]


def _lease_ids(conn: Connection, owner: str, plan: ClaimPlan, now: dt.datetime) -> list[int]:
    if plan.take == rules.NOTHING or plan.limit <= 0:
        return []
    values = {"b_endpoint": plan.endpoint_id, "b_now": now, "b_owner": owner, "b_until": plan.until,
              "b_limit": plan.limit}
    if plan.take == rules.ALL_DUE:
        return conn.execute(LEASE[rules.ALL_DUE], values).scalars().all()
    ids = conn.execute(LEASE[RESENT], values).scalars().all()
    if not ids and plan.take == rules.PROBE and not _retry_pending(conn, plan.endpoint_id):
        ids = conn.execute(LEASE[QUEUED], {**values, "b_limit": 1}).scalars().all()
    return ids


def _retry_pending(conn: Connection, endpoint_id: int) -> bool:
    return conn.execute(select(exists().where(
        MESSAGE.c.endpoint_id == endpoint_id, MESSAGE.c.status == RESENT, MESSAGE.c.next_attempt_at.is_not(None),
    ))).scalar()


def _due(endpoint_id: int, now: dt.datetime, statuses: tuple[str, ...]):
    return select(MESSAGE.c.id).where(
        MESSAGE.c.endpoint_id == endpoint_id,
        MESSAGE.c.next_attempt_at <= now,
        MESSAGE.c.lease_owner.is_(None),
        MESSAGE.c.status.in_(statuses),
    ).order_by(MESSAGE.c.id)


def has_waiting(conn: Connection, endpoint_id: int) -> bool:
    """Whether any message of the endpoint is still to be sent."""
    return conn.execute(select(exists().where(
        MESSAGE.c.endpoint_id == endpoint_id, MESSAGE.c.next_attempt_at.is_not(None),
    ))).scalar()


def claimable(conn: Connection, endpoint_id: int, interval: float, now: dt.datetime) -> bool:
    """Whether a claim for the endpoint would take something right now."""
    row = read_endpoint(conn, endpoint_id)
    if row is None:
        return False
    take = rules.gate(health_of(row), now, interval).take
    if take == rules.NOTHING:
        return False
    statuses = PENDING_STATUSES if take in (rules.ALL_DUE, rules.PROBE) else (RESENT,)
    return conn.execute(select(_due(endpoint_id, now, statuses).limit(1).exists())).scalar()


def has_untried(conn: Connection, endpoint_id: int) -> bool:
    """Whether messages wait for their first attempt (so a closed gate needs a wake-up later)."""
    return conn.execute(select(exists().where(
        MESSAGE.c.endpoint_id == endpoint_id, MESSAGE.c.status == QUEUED, MESSAGE.c.next_attempt_at.is_not(None),
    ))).scalar()


GIVE_BACK = (update(MESSAGE)
             .where(MESSAGE.c.id.in_(bindparam("b_ids", expanding=True)), MESSAGE.c.lease_owner == bindparam("b_owner"))
             .values(lease_owner=None, lease_until=None))
RELEASE_ORDER = (update(ENDPOINT)
                 .where(ENDPOINT.c.id.in_(bindparam("b_ids", expanding=True)),
                        ENDPOINT.c.lease_owner == bindparam("b_owner"))
                 .values(lease_owner=None, lease_until=None))


def release(conn: Connection, owner: str, message_ids: list[int]) -> None:
    """Give back claimed messages that were not tried: no attempt is counted."""
    if message_ids:
        conn.execute(GIVE_BACK, {"b_ids": message_ids, "b_owner": owner})


def renew(conn: Connection, owner: str, until: dt.datetime) -> None:
    conn.execute(update(MESSAGE).where(MESSAGE.c.lease_owner == owner).values(lease_until=until))
    conn.execute(update(ENDPOINT).where(ENDPOINT.c.lease_owner == owner).values(lease_until=until))


def acquire_endpoints(conn: Connection, endpoint_ids: list[int], owner: str, until: dt.datetime,
                      now: dt.datetime) -> set[int]:
    """Take the single-flight lease of queue-batches-off endpoints (one message at a time, in order);
    returns those we hold. A row another transaction is writing right now is skipped, not waited
    for: its holder is busy with that endpoint anyway."""
    if not endpoint_ids:
        return set()
    values = {"b_ids": endpoint_ids, "b_owner": owner, "b_until": until, "b_now": now}
    return set(conn.execute(ACQUIRE_ORDER, values).scalars())


_FREE_FOR_ORDER = (select(ENDPOINT.c.id)
                   .where(ENDPOINT.c.id.in_(bindparam("b_ids", expanding=True)),
                          or_(ENDPOINT.c.lease_owner.is_(None), ENDPOINT.c.lease_until < bindparam("b_now"),
                              ENDPOINT.c.lease_owner == bindparam("b_owner")))
                   .with_for_update(skip_locked=True).cte("free"))
ACQUIRE_ORDER = (update(ENDPOINT).where(ENDPOINT.c.id.in_(select(_FREE_FOR_ORDER.c.id)))
                 .values(lease_owner=bindparam("b_owner"), lease_until=bindparam("b_until"))
                 .returning(ENDPOINT.c.id))


def release_endpoints(conn: Connection, endpoint_ids: list[int], owner: str) -> None:
    if endpoint_ids:
        conn.execute(RELEASE_ORDER, {"b_ids": endpoint_ids, "b_owner": owner})


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Written:
    """What writing a batch of outcomes decided, for the caller's timers and health view."""

    retry_times: list[dt.datetime]
    signals: list[rules.Signal]


RECORD_STATUS = (
    update(MESSAGE)
    .where(MESSAGE.c.id == bindparam("b_id"), MESSAGE.c.lease_owner == bindparam("b_owner"))
    .values(status=bindparam("status"), attempts=bindparam("attempts"),
            response_code=bindparam("response_code"), response_class=bindparam("response_class"),
            last_attempt_at=bindparam("last_attempt_at"), next_attempt_at=bindparam("next_attempt_at"),
            lease_owner=None, lease_until=None)
)


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
                next_at = outcome.finished_at + dt.timedelta(seconds=policy.interval)
                if item.wait_until and item.wait_until > next_at:
                    next_at = item.wait_until
                retry_times.append(next_at)
            status_rows.append({
                "b_id": content.message_id, "b_owner": owner, "status": status, "attempts": number,
                "response_code": outcome.response_code, "response_class": response_class(outcome.response_code),
                "last_attempt_at": outcome.started_at, "next_attempt_at": next_at,
            })
        written.append(Written(retry_times, signals))
    if attempt_rows:
        # RETURNING makes SQLAlchemy send the rows as multi-row INSERTs ("insertmanyvalues"), not one by one.
        conn.execute(insert(ATTEMPT).returning(ATTEMPT.c.id), attempt_rows)
        conn.execute(RECORD_STATUS, status_rows)
    return written


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


def apply_health(conn: Connection, endpoint_id: int, delta: rules.Change, now: dt.datetime,
                 disable_after: float) -> Health | None:
    """Write what a run of outcomes says about the endpoint; returns its health after."""
    count = ENDPOINT.c.consecutive_failures
    new_count = delta.consecutive_failures if delta.reset else count + delta.consecutive_failures
    values = {
        "consecutive_failures": new_count,
        "health": (FAILING if delta.consecutive_failures >= rules.FAILURES_BEFORE_FAILING else HEALTHY) if delta.reset
        else _case_failing(new_count),
    }
    if delta.reset:
        values["failing_since"] = delta.failing_since
        values["last_success_at"] = delta.last_success_at
    elif delta.failing_since is not None:
        values["failing_since"] = _coalesce(ENDPOINT.c.failing_since, delta.failing_since)
    if delta.last_error is not None:
        values["last_error"] = delta.last_error[:2000]
        values["last_error_at"] = delta.last_error_at
    if delta.retry_after_until is not None:
        values["retry_after_until"] = delta.retry_after_until
    row = conn.execute(update(ENDPOINT).where(ENDPOINT.c.id == endpoint_id).values(**values)
                       .returning(*HEALTH_COLUMNS)).first()
    if row is None:
        return None
    if delta.gone_at is not None:
        disable(conn, endpoint_id, rules.GONE_REASON, now)
    elif rules.failing_too_long(health_of(row), now, disable_after):
        disable(conn, endpoint_id, rules.disabled_after_reason(disable_after), now)
    else:
        return health_of(row)
    return health_of(conn.execute(select(*HEALTH_COLUMNS).where(ENDPOINT.c.id == endpoint_id)).first())


def _case_failing(count):
    return case((count >= rules.FAILURES_BEFORE_FAILING, FAILING), else_=HEALTHY)


def _coalesce(column, value):
    return func.coalesce(column, value)


def disable(conn: Connection, endpoint_id: int, reason: str, now: dt.datetime, by: str | None = None) -> bool:
    """Disable an enabled endpoint, remembering why, by whom, and since when it was down."""
    return conn.execute(
        update(ENDPOINT).where(ENDPOINT.c.id == endpoint_id, ENDPOINT.c.enabled.is_(True))
        .values(enabled=False, disabled_reason=reason, disabled_by=by, disabled_at=now,
                outage_from=_coalesce(ENDPOINT.c.failing_since, now), outage_to=None)
    ).rowcount == 1


# --------------------------------------------------------------------------- the sweep


def recover_expired_leases(conn: Connection, policy: RetryPolicy, now: dt.datetime, limit: int = 500) -> int:
    """Count each expired claim as an interrupted attempt and make the message due again."""
    stale = conn.execute(
        select(MESSAGE.c.id, MESSAGE.c.lease_owner, MESSAGE.c.attempts, MESSAGE.c.lease_until)
        .where(MESSAGE.c.lease_owner.is_not(None), MESSAGE.c.lease_until < now)
        .order_by(MESSAGE.c.lease_until)
        .limit(limit)
    ).all()
    recovered = 0
    for message_id, owner, attempts, lease_until in stale:
        number = attempts + 1
        status = policy.after_interruption(number)
        changed = conn.execute(
            update(MESSAGE)
            .where(MESSAGE.c.id == message_id, MESSAGE.c.lease_owner == owner)
            .values(status=status, attempts=number, lease_owner=None, lease_until=None, response_code=None,
                    response_class=None, last_attempt_at=lease_until,
                    next_attempt_at=now if status == RESENT else None)
        ).rowcount
        if changed:
            lost = Outcome(started_at=lease_until, duration_ms=0, request_method="POST", request_url="",
                           request_headers=[], request_body="", error=LOST_ATTEMPT_ERROR)
            conn.execute(insert(ATTEMPT), [attempt_row(message_id, number, lost)])
            recovered += 1
    return recovered


def endpoints_with_due_work(conn: Connection, cutoff: dt.datetime) -> list:
    """Enabled endpoints (their rows) with unleased messages due since before ``cutoff``."""
    due = select(MESSAGE.c.endpoint_id).where(
        MESSAGE.c.next_attempt_at <= cutoff, MESSAGE.c.lease_owner.is_(None)).distinct()
    return conn.execute(
        select(ENDPOINT).where(ENDPOINT.c.id.in_(due), ENDPOINT.c.enabled.is_(True), ENDPOINT.c.deleted_at.is_(None))
    ).all()
