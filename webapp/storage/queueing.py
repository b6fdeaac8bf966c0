"""The Redis connection and the RQ queue, one of each per app."""
from __future__ import annotations

from flask import current_app
from redis import Redis
from rq import Queue


class RedisNotConfigured(RuntimeError):
    pass


def redis_connection() -> Redis:
    conn = current_app.extensions.get("webhooks_redis")
    if conn is None:
        url = current_app.config.get("REDIS_URL")
        if not url:
            raise RedisNotConfigured("REDIS_URL is not set")
        # Short timeouts: a Redis outage must not hang the API (the sweep catches up).
        conn = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30)
        current_app.extensions["webhooks_redis"] = conn
    return conn


def delivery_queue() -> Queue:
    return Queue(current_app.config["WEBHOOKS_QUEUE"], connection=redis_connection())
