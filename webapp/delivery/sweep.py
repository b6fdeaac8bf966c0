"""The safety net: recover claims whose worker died, wake endpoints whose work nobody holds.

Runs every ``WEBHOOKS_SWEEP_INTERVAL`` seconds in whichever worker holds the
sweep lock. It covers a dead worker (its leases and its retry timers), a
flushed or restarted Redis and a lost wake-up; the normal path never needs it.
Endpoints whose health gate is closed (failing with nothing to probe yet,
waiting for a Retry-After) are left alone.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import Connection, select

from ..extensions import db
from ..storage.endpoint_lookups import deliverable
from ..storage.models import Endpoint, PendingMessage, utcnow
from ..storage.statuses import RetryPolicy
from . import claims, dispatch, records

PENDING = PendingMessage.__table__
ENDPOINT = Endpoint.__table__


@dataclass(frozen=True)
class SweepReport:
    recovered: int
    kicked: int


def sweep() -> SweepReport:
    config = current_app.config
    policy = RetryPolicy.from_config(config)
    now = utcnow()
    with db.engine.begin() as conn:
        recovered = records.recover_expired_leases(conn, policy, now)
    cutoff = now - dt.timedelta(seconds=float(config["WEBHOOKS_SWEEP_INTERVAL"]))
    with db.engine.connect() as conn:
        candidates = [row.id for row in endpoints_with_due_work(conn, cutoff)]
        due = [e for e in candidates if claims.claimable(conn, e, policy.interval, now)]
    return SweepReport(recovered=recovered, kicked=dispatch.kick(due))


def endpoints_with_due_work(conn: Connection, cutoff: dt.datetime) -> list:
    """Enabled endpoints (their rows) with unleased messages due since before ``cutoff``."""
    due = select(PENDING.c.endpoint_id).where(
        PENDING.c.next_attempt_at <= cutoff, PENDING.c.lease_owner.is_(None)).distinct()
    return conn.execute(
        select(ENDPOINT).where(ENDPOINT.c.id.in_(due), deliverable())
    ).all()
