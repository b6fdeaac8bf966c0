"""Endpoint health as operators see it: state, last error, success rate, why a message waits.

The rules that change health live with delivery (webapp/delivery/health.py);
this module only reads and describes, for the settings screens, the log and
the banner shown on every page while an endpoint needs attention.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import func, select

from ..delivery.health import Health
from ..extensions import db
from ..storage.endpoint_lookups import live
from ..storage.id_lists import one_of
from ..storage.models import FAILING, Endpoint, Message, StatsMinute, utcnow
from ..storage.statuses import QUEUED, RESENT

STATE_LABELS = {"healthy": "Healthy", "failing": "Failing", "waiting": "Waiting", "disabled": "Disabled",
                "paused": "Paused"}


def health_of(endpoint: Endpoint) -> Health:
    return Health(enabled=endpoint.enabled, health=endpoint.health, consecutive_failures=endpoint.consecutive_failures,
                  failing_since=endpoint.failing_since, last_error=endpoint.last_error,
                  last_error_at=endpoint.last_error_at, retry_after_until=endpoint.retry_after_until,
                  paused_at=endpoint.paused_at)


@dataclass(frozen=True)
class HealthView:
    state: str                      # healthy | failing | waiting | disabled
    since: dt.datetime | None       # failing since / waiting until / disabled at
    detail: str                     # one line for people
    last_error: str | None
    last_error_at: dt.datetime | None
    success_rate: float | None      # of the last hour's attempts; None when there were none
    attempts_last_hour: int

    @property
    def label(self) -> str:
        return STATE_LABELS[self.state]

    @property
    def summary(self) -> str:
        """A few words for lists and the banner."""
        if self.state == "failing":
            return f"failing since {clock(self.since)}"
        if self.state == "waiting":
            return f"waiting (Retry-After) until {clock(self.since)}"
        if self.state in ("disabled", "paused"):
            return self.detail.rstrip(".").replace(self.label, self.state, 1)
        return "healthy"


def describe(endpoint: Endpoint, rates: dict[int, tuple[int, int]] | None = None, now: dt.datetime | None = None
             ) -> HealthView:
    now = now or utcnow()
    rates = rates if rates is not None else hour_rates([endpoint.id], now)
    attempts, succeeded = rates.get(endpoint.id, (0, 0))
    state = health_of(endpoint).state(now)
    return HealthView(
        state=state, since=_since(endpoint, state), detail=_detail(endpoint, state),
        last_error=endpoint.last_error, last_error_at=endpoint.last_error_at,
        success_rate=(succeeded / attempts) if attempts else None, attempts_last_hour=attempts,
    )


def _since(endpoint: Endpoint, state: str) -> dt.datetime | None:
    return {"failing": endpoint.failing_since, "waiting": endpoint.retry_after_until,
            "disabled": endpoint.disabled_at, "paused": endpoint.paused_at}.get(state)


def _detail(endpoint: Endpoint, state: str) -> str:
    if state == "disabled":
        if endpoint.disabled_reason:
            return f"Disabled: {endpoint.disabled_reason}."
        return f"Disabled by {endpoint.disabled_by}." if endpoint.disabled_by else "Disabled."
    if state == "paused":
        return (f"Paused by {endpoint.paused_by or 'an operator'} at {clock(endpoint.paused_at)}: "
                "new messages wait until resumed.")
    if state == "waiting":
        return f"The receiver asked us to wait (Retry-After) until {clock(endpoint.retry_after_until)}."
    if state == "failing":
        return (f"Failing since {clock(endpoint.failing_since)}: {endpoint.consecutive_failures} attempts in a row "
                "failed. Messages being retried keep their schedule; new ones wait, and one is tried every "
                "retry interval until the receiver answers again.")
    return "Healthy: messages are delivered as they come."


def clock(moment: dt.datetime | None) -> str:
    """A UTC time as operators read it in a sentence."""
    if moment is None:
        return "—"
    return moment.strftime("%H:%M:%S UTC") if moment.date() == utcnow().date() else moment.strftime("%Y-%m-%d %H:%M UTC")


def hour_rates(endpoint_ids: list[int], now: dt.datetime | None = None) -> dict[int, tuple[int, int]]:
    """(attempts, succeeded) per endpoint over the last hour, from the per-minute rollup."""
    if not endpoint_ids:
        return {}
    since = (now or utcnow()) - dt.timedelta(hours=1)
    rows = db.session.execute(
        select(StatsMinute.endpoint_id, func.sum(StatsMinute.attempts), func.sum(StatsMinute.succeeded))
        .where(one_of(StatsMinute.endpoint_id, endpoint_ids), StatsMinute.start >= since)
        .group_by(StatsMinute.endpoint_id)
    ).all()
    return {endpoint_id: (int(attempts or 0), int(succeeded or 0)) for endpoint_id, attempts, succeeded in rows}


def waiting_reason(message: Message, endpoint: Endpoint, now: dt.datetime | None = None) -> str | None:
    """Why a pending message is not being sent right now, in words; None once it is final."""
    if message.next_attempt_at is None:
        return None
    now = now or utcnow()
    config = current_app.config
    state = health_of(endpoint).state(now)
    if endpoint.deleted_at is not None:
        return "waiting: the endpoint was deleted"
    if state == "disabled":
        return f"waiting: endpoint disabled ({endpoint.disabled_reason or 'by ' + str(endpoint.disabled_by)})"
    if state == "paused":
        return f"waiting: deliveries paused by {endpoint.paused_by or 'an operator'} at {clock(endpoint.paused_at)}"
    if state == "waiting":
        return f"waiting: the receiver asked us to wait (Retry-After) until {clock(endpoint.retry_after_until)}"
    if message.is_being_sent:
        return "sending now"
    if message.status == RESENT:
        return (f"retry {message.attempts + 1} of {config['WEBHOOKS_MAX_ATTEMPTS']} "
                f"{'due now' if message.next_attempt_at <= now else 'at ' + clock(message.next_attempt_at)}")
    if state == FAILING and message.status == QUEUED:
        interval = dt.timedelta(seconds=float(config["WEBHOOKS_RETRY_INTERVAL"]))
        next_try = max((endpoint.last_error_at or now) + interval, now)
        return f"waiting: endpoint failing since {clock(endpoint.failing_since)}, next try {clock(next_try)}"
    return "queued: to be sent now"


def attention() -> list[tuple[Endpoint, HealthView]]:
    """Endpoints that are failing, waiting or disabled, for the banner on every page."""
    now = utcnow()
    found = db.session.scalars(
        select(Endpoint).where(live())
        .where((Endpoint.enabled.is_(False)) | (Endpoint.health == FAILING) | (Endpoint.retry_after_until > now)
               | Endpoint.paused_at.is_not(None))
        .order_by(Endpoint.id)
    ).all()
    return [(endpoint, describe(endpoint, rates={}, now=now)) for endpoint in found]
