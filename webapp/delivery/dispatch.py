"""Everything the delivery engine asks of Redis: kick a delivery job, schedule a retry.

Jobs carry an endpoint id only. A kick key per endpoint keeps at most one
not-yet-started delivery job per endpoint in the queue, so a burst of events
costs one job, not one per message. Any Redis failure here is logged and
swallowed: the database holds the work and the sweep re-kicks it.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Iterable

from flask import current_app
from redis.exceptions import RedisError
from rq import Queue

from ..queueing import RedisNotConfigured, delivery_queue, redis_connection

log = logging.getLogger(__name__)

DELIVER_JOB = "webapp.jobs.deliver"
KICK_TTL_SECONDS = 30


def kick_key(endpoint_id: int) -> str:
    return f"webhooks:kick:{endpoint_id}"


def job_timeout() -> int:
    # A job stops claiming after its budget; the last batch may still take a
    # few endpoint timeouts (60 s max each) to finish.
    return int(current_app.config["WEBHOOKS_JOB_BUDGET"]) + 3 * 60


def kick(endpoint_ids: Iterable[int], *, force: bool = False) -> int:
    """Enqueue a delivery job for each endpoint that has none waiting; returns how many."""
    endpoint_ids = sorted(set(endpoint_ids))
    if not endpoint_ids:
        return 0
    try:
        redis = redis_connection()
        with redis.pipeline(transaction=False) as pipe:
            for endpoint_id in endpoint_ids:
                pipe.set(kick_key(endpoint_id), 1, nx=True, ex=KICK_TTL_SECONDS)
            fresh = pipe.execute()
        to_enqueue = [e for e, was_set in zip(endpoint_ids, fresh) if was_set or force]
        if to_enqueue:
            delivery_queue().enqueue_many(
                [
                    Queue.prepare_data(
                        DELIVER_JOB, (endpoint_id,), timeout=job_timeout(), result_ttl=0,
                        failure_ttl=7 * 24 * 3600, description=f"deliver endpoint {endpoint_id}",
                    )
                    for endpoint_id in to_enqueue
                ]
            )
        return len(to_enqueue)
    except (RedisError, RedisNotConfigured) as exc:
        log.warning("could not enqueue delivery for endpoints %s (%s); the sweep will", endpoint_ids, exc)
        return 0


def clear_kick(endpoint_id: int) -> None:
    """Called by a delivery job as it starts, before it claims: later events kick anew."""
    try:
        redis_connection().delete(kick_key(endpoint_id))
    except (RedisError, RedisNotConfigured) as exc:
        log.warning("could not clear kick key of endpoint %s: %s", endpoint_id, exc)


def schedule_retry(endpoint_id: int, due_at: dt.datetime) -> None:
    """A delivery job for when the earliest retry is due (RQ's scheduler runs it)."""
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    delay = max((due_at - now).total_seconds(), 0.0)
    try:
        # One scheduled job per endpoint and due second: a retry storm stays one job.
        delivery_queue().enqueue_in(
            dt.timedelta(seconds=delay), DELIVER_JOB, endpoint_id,
            job_id=f"webhooks-retry-{endpoint_id}-{int(due_at.replace(tzinfo=dt.timezone.utc).timestamp())}",
            job_timeout=job_timeout(), result_ttl=0, failure_ttl=7 * 24 * 3600,
        )
    except (RedisError, RedisNotConfigured) as exc:
        log.warning("could not schedule retry for endpoint %s (%s); the sweep will", endpoint_id, exc)
