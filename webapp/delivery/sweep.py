"""The safety net: recover claims whose worker died, re-kick endpoints with due work.

Runs every ``WEBHOOKS_SWEEP_INTERVAL`` seconds in whichever worker holds the
sweep lock. It covers a dead worker, a flushed or restarted Redis and a
missed schedule; the normal path never needs it.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from . import claims, dispatch
from .runner import retry_policy


@dataclass(frozen=True)
class SweepReport:
    recovered: int
    kicked: int


def sweep() -> SweepReport:
    recovered = claims.recover_expired_leases(retry_policy())
    grace = float(current_app.config["WEBHOOKS_SWEEP_INTERVAL"])
    kicked = dispatch.kick(claims.due_endpoint_ids(grace))
    return SweepReport(recovered=recovered, kicked=kicked)
