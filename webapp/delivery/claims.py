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
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Connection, and_, bindparam, case, exists, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..models import (DONE, DURATION_BUCKETS_MS, FAILED, FAILING, HEALTHY, PENDING_STATUSES, QUEUED, RESENT, Attempt,
                      Endpoint, Event, Message, StatsHour, StatsMinute, response_class, utcnow)
from . import health as rules
from .health import Health
from .outgoing import MessageContent
from .send import Outcome

# How many messages one claim takes: a run sent in order, or one lane's share of a parallel batch.
ORDERED_BATCH = 50
BATCH_PER_LANE = 16

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
                  ENDPOINT.c.last_error, ENDPOINT.c.last_error_at, ENDPOINT.c.retry_after_until)


def read_endpoint(conn: Connection, endpoint_id: int):
    """The endpoint's row (settings and health), or None when it is gone."""
    return conn.execute(
        select(ENDPOINT).where(ENDPOINT.c.id == endpoint_id, ENDPOINT.c.deleted_at.is_(None))
    ).first()


def health_of(row) -> Health:
    return Health(*(getattr(row, column.name) for column in HEALTH_COLUMNS))


# --------------------------------------------------------------------------- claiming


def batch_size(ordered: bool) -> int:
    return ORDERED_BATCH if ordered else BATCH_PER_LANE


def claim(conn: Connection, endpoint_id: int, owner: str, limit: int, lease_seconds: float, take: str,
          now: dt.datetime) -> list[MessageContent]:
    """Lease up to ``limit`` of the endpoint's messages that ``take`` allows (see health.gate), oldest first."""
    if take == rules.NOTHING or limit <= 0:
        return []
    if take == rules.ALL_DUE:
        ids = _lease(conn, _due(endpoint_id, now, PENDING_STATUSES), owner, limit, lease_seconds, now)
    else:
        ids = _lease(conn, _due(endpoint_id, now, (RESENT,)), owner, limit, lease_seconds, now)
        if not ids and take == rules.PROBE and not _retry_pending(conn, endpoint_id):
            ids = _lease(conn, _due(endpoint_id, now, (QUEUED,)), owner, 1, lease_seconds, now)
    if not ids:
        return []
    rows = conn.execute(
        select(MESSAGE.c.id, MESSAGE.c.attempts, EVENT.c.id, EVENT.c.action, EVENT.c.customer,
               EVENT.c.created_at, EVENT.c.data)
        .join(EVENT, EVENT.c.id == MESSAGE.c.event_id)
        .where(MESSAGE.c.id.in_(ids))
        .order_by(MESSAGE.c.id)
    ).all()
    return [MessageContent(message_id, attempts + 1, *rest) for message_id, attempts, *rest in rows]


def _due(endpoint_id: int, now: dt.datetime, statuses: tuple[str, ...]):
    return select(MESSAGE.c.id).where(
        MESSAGE.c.endpoint_id == endpoint_id,
        MESSAGE.c.next_attempt_at <= now,
        MESSAGE.c.lease_owner.is_(None),
        MESSAGE.c.status.in_(statuses),
    ).order_by(MESSAGE.c.id)


def _lease(conn: Connection, due, owner: str, limit: int, lease_seconds: float, now: dt.datetime) -> list[int]:
    chosen = due.limit(limit).with_for_update(skip_locked=True).scalar_subquery()
    return conn.execute(
        update(MESSAGE)
        .where(MESSAGE.c.id.in_(chosen), MESSAGE.c.lease_owner.is_(None))
        .values(lease_owner=owner, lease_until=now + dt.timedelta(seconds=lease_seconds))
        .returning(MESSAGE.c.id)
    ).scalars().all()


def _retry_pending(conn: Connection, endpoint_id: int) -> bool:
    return conn.execute(select(exists().where(
        MESSAGE.c.endpoint_id == endpoint_id, MESSAGE.c.status == RESENT, MESSAGE.c.next_attempt_at.is_not(None),
    ))).scalar()


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


def release(conn: Connection, owner: str, message_ids: list[int]) -> None:
    """Give back claimed messages that were not tried: no attempt is counted."""
    if message_ids:
        conn.execute(update(MESSAGE).where(MESSAGE.c.id.in_(message_ids), MESSAGE.c.lease_owner == owner)
                     .values(lease_owner=None, lease_until=None))


def renew(conn: Connection, owner: str, until: dt.datetime) -> None:
    conn.execute(update(MESSAGE).where(MESSAGE.c.lease_owner == owner).values(lease_until=until))
    conn.execute(update(ENDPOINT).where(ENDPOINT.c.lease_owner == owner).values(lease_until=until))


def acquire_endpoint(conn: Connection, endpoint_id: int, owner: str, lease_seconds: float, now: dt.datetime) -> bool:
    """The single-flight lease of a queue-batches-off endpoint (one message at a time, in order).

    A row another transaction is writing right now is skipped, not waited for:
    its holder is busy with this endpoint anyway.
    """
    free = (select(ENDPOINT.c.id)
            .where(ENDPOINT.c.id == endpoint_id,
                   or_(ENDPOINT.c.lease_owner.is_(None), ENDPOINT.c.lease_until < now, ENDPOINT.c.lease_owner == owner))
            .with_for_update(skip_locked=True).scalar_subquery())
    got = conn.execute(update(ENDPOINT).where(ENDPOINT.c.id.in_(free))
                       .values(lease_owner=owner, lease_until=now + dt.timedelta(seconds=lease_seconds))).rowcount
    return got == 1


def release_endpoint(conn: Connection, endpoint_id: int, owner: str) -> None:
    conn.execute(update(ENDPOINT).where(and_(ENDPOINT.c.id == endpoint_id, ENDPOINT.c.lease_owner == owner))
                 .values(lease_owner=None, lease_until=None))


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Written:
    """What writing a batch of outcomes decided, for the caller's timers and health view."""

    retry_times: list[dt.datetime]
    signals: list[rules.Signal]


def record(conn: Connection, owner: str, results: list[tuple[MessageContent, Outcome]], policy: RetryPolicy,
           max_retry_after: float) -> Written:
    """Store the attempts and the messages' new statuses (only where the lease is still ours)."""
    attempt_rows, status_rows, retry_times, signals = [], [], [], []
    for content, outcome in sorted(results, key=lambda pair: pair[1].finished_at):
        number = content.attempt_number
        attempt_rows.append(attempt_row(content.message_id, number, outcome))
        status = policy.next_status(outcome.succeeded, number)
        item = rules.signal(outcome.succeeded, outcome.response_code, outcome.header("Retry-After"), outcome.error,
                            outcome.finished_at, max_retry_after)
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
    conn.execute(insert(ATTEMPT), attempt_rows)
    conn.execute(
        update(MESSAGE)
        .where(MESSAGE.c.id == bindparam("b_id"), MESSAGE.c.lease_owner == bindparam("b_owner"))
        .values(status=bindparam("status"), attempts=bindparam("attempts"),
                response_code=bindparam("response_code"), response_class=bindparam("response_class"),
                last_attempt_at=bindparam("last_attempt_at"), next_attempt_at=bindparam("next_attempt_at"),
                lease_owner=None, lease_until=None),
        status_rows,
    )
    return Written(retry_times, signals)


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


# --------------------------------------------------------------------------- rollups


def add_stats(conn: Connection, endpoint_id: int, results: list[tuple[MessageContent, Outcome]],
              policy: RetryPolicy) -> None:
    """Count the outcomes into the endpoint's per-minute and per-hour rollups."""
    for table, width in ((StatsMinute.__table__, "minute"), (StatsHour.__table__, "hour")):
        buckets: dict[dt.datetime, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for content, outcome in results:
            start = outcome.started_at.replace(second=0, microsecond=0)
            if width == "hour":
                start = start.replace(minute=0)
            counts = buckets[start]
            status = policy.next_status(outcome.succeeded, content.attempt_number)
            counts["attempts"] += 1
            counts["succeeded"] += outcome.succeeded
            counts["done"] += status == DONE
            counts["failed"] += status == FAILED
            counts["retried"] += status == RESENT
            counts["duration_ms"] += outcome.duration_ms
            counts[f"d{duration_bucket(outcome.duration_ms)}"] += 1
        for start in sorted(buckets):
            _upsert(conn, table, endpoint_id, start, buckets[start])


def duration_bucket(duration_ms: int) -> int:
    for index, bound in enumerate(DURATION_BUCKETS_MS):
        if duration_ms <= bound:
            return index
    return len(DURATION_BUCKETS_MS)


STAT_COLUMNS = ("attempts", "succeeded", "done", "failed", "retried", "duration_ms", *(f"d{i}" for i in range(11)))


def _upsert(conn: Connection, table, endpoint_id: int, start: dt.datetime, counts: dict[str, int]) -> None:
    row = {"endpoint_id": endpoint_id, "start": start, **{name: counts.get(name, 0) for name in STAT_COLUMNS}}
    make = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = make(table).values(row)
    conn.execute(statement.on_conflict_do_update(
        index_elements=["endpoint_id", "start"],
        set_={name: table.c[name] + statement.excluded[name] for name in STAT_COLUMNS if counts.get(name)},
    ))


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
