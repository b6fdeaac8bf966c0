"""Endpoint health: which of an endpoint's messages may be sent now, and what an outcome says about it.

States, as operators see them:
* healthy    - everything due is sent.
* failing    - ``FAILURES_BEFORE_FAILING`` attempts in a row failed. Messages already
               being retried keep their schedule (they are the probes); untried ones
               wait, except one every retry interval when no retry is pending, so a
               dead receiver is probed, not hammered. The first success makes it healthy.
* waiting    - the receiver answered 429 or 503 with Retry-After: nothing is sent
               before then (capped by ``WEBHOOKS_MAX_RETRY_AFTER``).
* disabled   - by an operator, by a 410 Gone answer, or after failing continuously
               for ``WEBHOOKS_DISABLE_AFTER``. Nothing is sent; messages wait; events
               create no new messages for it.
* paused     - by an operator (the queue view). Nothing is sent, but events still
               create messages, which wait until it is resumed; health is left as it was.

These are pure functions: the delivery path applies them when it claims
messages and when it writes outcomes.
"""
from __future__ import annotations

import datetime as dt
import email.utils
from dataclasses import dataclass

from ..storage.models import FAILING, HEALTHY

# Five in a row: a receiver that fails a third of its requests at random is flaky, not down
# (five in a row happen there once in 400 attempts, and the next success ends it).
FAILURES_BEFORE_FAILING = 5
GONE_REASON = "the receiver answered 410 Gone"

# What a claim may take (see claims.claim).
ALL_DUE, RETRIES_DUE, PROBE, NOTHING = "all", "retries", "probe", "nothing"


@dataclass(frozen=True)
class Health:
    """An endpoint's health columns, as read with a claim or written with outcomes."""

    enabled: bool = True
    health: str = HEALTHY
    consecutive_failures: int = 0
    failing_since: dt.datetime | None = None
    last_error: str | None = None
    last_error_at: dt.datetime | None = None
    retry_after_until: dt.datetime | None = None
    paused_at: dt.datetime | None = None

    def state(self, now: dt.datetime) -> str:
        if not self.enabled:
            return "disabled"
        if self.paused_at is not None:
            return "paused"
        if self.retry_after_until and self.retry_after_until > now:
            return "waiting"
        return self.health


@dataclass(frozen=True)
class Gate:
    """What may be claimed now; if nothing, when to look again (None: when woken)."""

    take: str
    reopens_at: dt.datetime | None = None


def gate(health: Health, now: dt.datetime, interval: float) -> Gate:
    if not health.enabled or health.paused_at is not None:
        return Gate(NOTHING)
    if health.retry_after_until and health.retry_after_until > now:
        return Gate(NOTHING, health.retry_after_until)
    if health.health != FAILING:
        return Gate(ALL_DUE)
    probe_at = (health.last_error_at or now) + dt.timedelta(seconds=interval)
    return Gate(PROBE if probe_at <= now else RETRIES_DUE, probe_at)


# --------------------------------------------------------------------------- what an outcome says


@dataclass(frozen=True)
class Signal:
    """The receiver's answer, as far as the endpoint's health is concerned."""

    succeeded: bool
    at: dt.datetime
    error: str | None = None
    gone: bool = False
    wait_until: dt.datetime | None = None


def signal(succeeded: bool, code: int | None, retry_after: str | None, error: str | None,
           at: dt.datetime, max_wait: float) -> Signal:
    gone = code == 410
    wait_until = None
    if code in (429, 503) and retry_after:
        wait_until = retry_after_time(retry_after, at, max_wait)
    return Signal(succeeded=succeeded, at=at, error=error, gone=gone, wait_until=wait_until)


def retry_after_time(value: str, now: dt.datetime, max_wait: float) -> dt.datetime | None:
    """Retry-After as delay-seconds or an HTTP date (RFC 9110 10.2.3), capped at ``max_wait`` seconds."""
    value = value.strip()
    if value.isascii() and value.isdigit():
        delay = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        delay = (when.astimezone(dt.timezone.utc).replace(tzinfo=None) - now).total_seconds()
    if delay <= 0:
        return None
    return now + dt.timedelta(seconds=min(delay, max_wait))


@dataclass(frozen=True)
class Change:
    """The health columns to write after a run of outcomes (None: leave as is)."""

    consecutive_failures: int
    reset: bool                 # a success came: the count restarts from the failures after it
    failing_since: dt.datetime | None
    last_error: str | None
    last_error_at: dt.datetime | None
    last_success_at: dt.datetime | None
    retry_after_until: dt.datetime | None
    gone_at: dt.datetime | None

    @property
    def is_noop(self) -> bool:
        return (self.reset and self.consecutive_failures == 0 and self.retry_after_until is None
                and self.gone_at is None and self.last_error is None)


def change(signals: list[Signal]) -> Change:
    """Fold outcomes (in the order they finished) into the change of health they make."""
    failures, first_failure, last_error, last_error_at, last_success = 0, None, None, None, None
    reset, wait_until, gone_at = False, None, None
    for item in signals:
        if item.succeeded:
            failures, first_failure, reset, last_success = 0, None, True, item.at
            continue
        failures += 1
        first_failure = first_failure or item.at
        last_error, last_error_at = item.error, item.at
        if item.wait_until and (wait_until is None or item.wait_until > wait_until):
            wait_until = item.wait_until
        if item.gone and gone_at is None:
            gone_at = item.at
    return Change(consecutive_failures=failures, reset=reset, failing_since=first_failure,
                  last_error=last_error, last_error_at=last_error_at, last_success_at=last_success,
                  retry_after_until=wait_until, gone_at=gone_at)


def after(health: Health, delta: Change) -> Health:
    """``health`` once ``delta`` is applied (the same rule the SQL update follows)."""
    count = delta.consecutive_failures if delta.reset else health.consecutive_failures + delta.consecutive_failures
    since = delta.failing_since if delta.reset else (health.failing_since or delta.failing_since)
    if count == 0:
        since = None
    return Health(
        enabled=health.enabled and delta.gone_at is None,
        health=FAILING if count >= FAILURES_BEFORE_FAILING else HEALTHY,
        consecutive_failures=count,
        failing_since=since,
        last_error=delta.last_error or health.last_error,
        last_error_at=delta.last_error_at or health.last_error_at,
        retry_after_until=max(filter(None, (health.retry_after_until, delta.retry_after_until)), default=None),
        paused_at=health.paused_at,
    )


def failing_too_long(health: Health, now: dt.datetime, disable_after: float) -> bool:
    return (health.enabled and health.health == FAILING and health.failing_since is not None
            and (now - health.failing_since).total_seconds() >= disable_after)


def disabled_after_reason(disable_after: float) -> str:
    return f"failing continuously for {describe_duration(disable_after)}"


def describe_duration(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} s"
