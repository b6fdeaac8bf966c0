"""One delivery job: drain an endpoint's due messages, batch by batch, within a time budget.

Queue batches off: the job first takes the endpoint's single-flight lease and
sends its messages one at a time, oldest first. On: each batch goes out
through a pool of ``threads`` threads over one keep-alive session, and a full
batch kicks one more job so other workers can join in.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from flask import current_app

from ..extensions import db
from ..models import Endpoint, utcnow
from . import claims, dispatch
from .claims import RetryPolicy
from .lease_keeper import LeaseKeeper
from .outgoing import MessageContent, build_request
from .send import Outcome, new_session, send
from .target import Target

log = logging.getLogger(__name__)

SEQUENTIAL_BATCH = 50
BATCHES_PER_THREAD = 16
MAX_BATCH = 256


def retry_policy() -> RetryPolicy:
    config = current_app.config
    return RetryPolicy(config["WEBHOOKS_MAX_ATTEMPTS"], float(config["WEBHOOKS_RETRY_INTERVAL"]))


def batch_size(target: Target) -> int:
    return min(target.threads * BATCHES_PER_THREAD, MAX_BATCH) if target.queue_batches else SEQUENTIAL_BATCH


def lease_seconds(target: Target) -> float:
    """Outlives one request; the LeaseKeeper renews it while the job is alive."""
    return target.timeout + 1.0 + float(current_app.config["WEBHOOKS_LEASE_MARGIN"])


def deliver_endpoint(endpoint_id: int) -> int:
    """Deliver what is due for one endpoint; returns the number of attempts made."""
    dispatch.clear_kick(endpoint_id)
    endpoint = db.session.get(Endpoint, endpoint_id)
    if endpoint is None or not endpoint.enabled or endpoint.deleted_at is not None:
        db.session.rollback()
        return 0
    target = Target.from_endpoint(endpoint, current_app.config["WEBHOOKS_PROXY_URL"])
    db.session.rollback()
    owner = uuid.uuid4().hex
    size = batch_size(target)
    lease = lease_seconds(target)
    if not target.queue_batches and not claims.acquire_endpoint(endpoint_id, owner, lease):
        return 0  # another job is delivering this endpoint in order; it will see our messages
    try:
        with LeaseKeeper(db.engine, owner, lease):
            return drain(target, owner, size, lease)
    finally:
        if not target.queue_batches:
            claims.release_endpoint(endpoint_id, owner)
            if claims.has_due(endpoint_id):
                dispatch.kick([endpoint_id])


def drain(target: Target, owner: str, size: int, lease: float) -> int:
    config = current_app.config
    policy = retry_policy()
    deadline = time.monotonic() + float(config["WEBHOOKS_JOB_BUDGET"])
    session = new_session(target.threads, guard=not config["WEBHOOKS_ALLOW_PRIVATE_TARGETS"])
    pool = ThreadPoolExecutor(max_workers=target.threads) if target.queue_batches else None
    sent = 0
    try:
        while True:
            if time.monotonic() >= deadline:
                dispatch.kick([target.endpoint_id], force=True)  # budget spent: hand over
                break
            batch = claims.claim_due(target.endpoint_id, owner, size, lease)
            if not batch:
                break
            if pool is not None and len(batch) == size:
                dispatch.kick([target.endpoint_id])  # more waiting: let another worker join
            results = send_batch(batch, pool, target.threads, lambda c: attempt(session, target, c, config))
            retry_at = claims.record_outcomes(owner, results, policy)
            if retry_at is not None:
                dispatch.schedule_retry(target.endpoint_id, retry_at)
            sent += len(results)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        session.close()
    return sent


def send_batch(batch: list[MessageContent], pool: ThreadPoolExecutor | None, threads: int, send_one):
    """Send a batch: in order on this thread, or by ``threads`` threads pulling from one queue.

    Each thread takes the next message when it is free (one task per thread,
    not per message), so slow and fast requests balance out cheaply.
    """
    if pool is None:
        return [(content, send_one(content)) for content in batch]
    pending = iter(batch)
    lock = threading.Lock()

    def work() -> list:
        done = []
        while True:
            with lock:
                content = next(pending, None)
            if content is None:
                return done
            done.append((content, send_one(content)))

    futures = [pool.submit(work) for _ in range(min(threads, len(batch)))]
    return [result for future in futures for result in future.result()]


def attempt(session, target: Target, content: MessageContent, config) -> Outcome:
    now = utcnow()
    try:
        request = build_request(target, content, now)
    except Exception as exc:  # noqa: BLE001 - a message that cannot be built is a failed attempt
        log.exception("could not build message %s", content.message_id)
        return Outcome(
            started_at=now, duration_ms=0, request_method="POST", request_url=target.url,
            request_headers=[], request_body="", error=f"could not build the request: {exc}",
        )
    return send(
        session, request, timeout=target.timeout, proxy_url=target.proxy_url,
        body_limit=config["WEBHOOKS_RESPONSE_BODY_LIMIT"],
    )
