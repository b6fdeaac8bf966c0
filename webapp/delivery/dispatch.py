"""Everything the delivery engine asks of Redis: wake the workers for endpoints with work.

A wake-up job carries endpoint ids only (never payloads or secrets), up to
``WAKE_CHUNK`` of them, so one event for a thousand endpoints costs ten jobs, which
several workers share.
A kick key per endpoint keeps at most one not-yet-started wake-up per endpoint
in the queue, so a burst of events costs one job, not one per message. Any
Redis failure here is logged and swallowed: the database holds the work and
the sweep re-kicks it.
"""
from __future__ import annotations

import logging
from typing import Iterable

from redis.exceptions import RedisError
from rq import Queue

from ..storage.queueing import RedisNotConfigured, delivery_queue, redis_connection

log = logging.getLogger(__name__)

DELIVER_JOB = "webapp.jobs.deliver"
KICK_TTL_SECONDS = 30
WAKE_CHUNK = 100  # several workers share a fan-out; one job still wakes 100 endpoints
JOB_TIMEOUT = 60  # a wake-up hands the ids to the engine and returns


def kick_key(endpoint_id: int) -> str:
    return f"webhooks:kick:{endpoint_id}"


# SET NX for every key in one round trip; 1 where the key was not set yet.
SET_KICKS = """
local fresh = {}
for i, key in ipairs(KEYS) do
  fresh[i] = redis.call('SET', key, 1, 'NX', 'EX', ARGV[1]) and 1 or 0
end
return fresh
"""


def kick(endpoint_ids: Iterable[int]) -> int:
    """Enqueue a wake-up for the endpoints that have none waiting; returns how many endpoints."""
    endpoint_ids = sorted(set(endpoint_ids))
    if not endpoint_ids:
        return 0
    try:
        redis = redis_connection()
        fresh = redis.eval(SET_KICKS, len(endpoint_ids), *map(kick_key, endpoint_ids), KICK_TTL_SECONDS)
        to_wake = [e for e, was_set in zip(endpoint_ids, fresh) if was_set]
        chunks = [to_wake[i:i + WAKE_CHUNK] for i in range(0, len(to_wake), WAKE_CHUNK)]
        if chunks:
            delivery_queue().enqueue_many([
                Queue.prepare_data(DELIVER_JOB, (chunk,), timeout=JOB_TIMEOUT, result_ttl=0,
                                   failure_ttl=7 * 24 * 3600, description=f"wake {len(chunk)} endpoint(s)")
                for chunk in chunks
            ])
        return len(to_wake)
    except (RedisError, RedisNotConfigured) as exc:
        log.warning("could not enqueue delivery for endpoints %s (%s); the sweep will", endpoint_ids[:20], exc)
        return 0


def clear_kicks(endpoint_ids: Iterable[int]) -> None:
    """Called as a wake-up starts: events from now on kick anew."""
    keys = [kick_key(endpoint_id) for endpoint_id in endpoint_ids]
    if not keys:
        return
    try:
        redis_connection().delete(*keys)
    except (RedisError, RedisNotConfigured) as exc:
        log.warning("could not clear kick keys: %s", exc)
