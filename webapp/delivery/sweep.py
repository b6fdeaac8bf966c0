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

from ..extensions import db
from ..storage.models import utcnow
from . import claims, dispatch
from .claims import RetryPolicy


@dataclass(frozen=True)
class SweepReport:
    recovered: int
    kicked: int


def sweep() -> SweepReport:
    config = current_app.config
    policy = RetryPolicy.from_config(config)
    now = utcnow()
    with db.engine.begin() as conn:
        recovered = claims.recover_expired_leases(conn, policy, now)
    cutoff = now - dt.timedelta(seconds=float(config["WEBHOOKS_SWEEP_INTERVAL"]))
    with db.engine.connect() as conn:
        candidates = [row.id for row in claims.endpoints_with_due_work(conn, cutoff)]
        due = [e for e in candidates if claims.claimable(conn, e, policy.interval, now)]
    return SweepReport(recovered=recovered, kicked=dispatch.kick(due))
