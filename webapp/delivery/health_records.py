"""Write what a run of outcomes says about an endpoint's health; disable an endpoint.

The rules (when an endpoint is failing, what a 410 or Retry-After means) live
in ``health``; this module only stores their verdicts.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, case, func, select, update

from ..storage.models import FAILING, HEALTHY
from . import health as rules
from .claims import ENDPOINT, HEALTH_COLUMNS, health_of
from .health import Health


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
