"""The bad days' scenarios: hanging receivers beside a healthy one, fan-out, retry timing.

* isolation: ``HANGING`` endpoints whose receiver never answers (timeouts from
  5 to 60 s, queue batches on and off) with a backlog each, and one healthy
  endpoint getting a steady trickle of events: its emit-to-delivered latency,
  p95, is ``isolation_healthy_p95_s`` (target <= 2 s). Default set-up: one
  worker process, as ``make run`` starts it.
* fan-out: one event to 1,000 endpoints on the fast receiver, from the emit to
  the last message done: ``fanout_1000_endpoints_deliveries_per_s`` (>= 1,000).
* retry timing: five messages to a receiver that answers 500 to everything (so
  its endpoint turns failing and those five keep their schedule as its probes),
  with a hanging endpoint and a busy one beside them: every gap between the end
  of an attempt and the start of the next, minus the retry interval, at most
  ``retry_gap_max_error_s`` (<= 1 s). The default interval (10 s) in the full
  run; 2 s in ``--quick``.
"""
from __future__ import annotations

import time

from sqlalchemy import select

from webapp.delivery.health import FAILURES_BEFORE_FAILING

from .receivers import failing_receiver, hanging_receiver
from .scenarios import (
    messages_left,
    percentile,
    product_app,
    scalar,
    start_product_workers,
)
from .stack import (
    DatabaseKind,
    Figure,
    ScenarioFailed,
    children,
    patched_environ,
    stack,
    wait_until_drained,
)
from .workload import sample_event

HANGING = 10
HANGING_BACKLOG = 50
FANOUT_ENDPOINTS = 1_000


def add_endpoint(url: str, *, actions: list[str], timeout: int = 5, queue_batches: bool = False,
                 threads: int = 8) -> int:
    [endpoint_id] = add_endpoints(url, 1, actions=actions, timeout=timeout, queue_batches=queue_batches,
                                  threads=threads)
    return endpoint_id


def add_endpoints(url: str, count: int, *, actions: list[str], timeout: int = 5, queue_batches: bool = False,
                  threads: int = 8) -> list[int]:
    """``count`` endpoints in one commit (a commit each cost the fan-out's set-up 1-2 s on SQLite)."""
    from webapp.extensions import db
    from webapp.storage.models import Endpoint

    endpoints = []
    for _ in range(count):
        endpoint = Endpoint(url=url, name="bench", queue_batches=queue_batches, threads=threads, timeout=timeout)
        endpoint.actions = actions
        endpoints.append(endpoint)
    db.session.add_all(endpoints)
    db.session.commit()
    return [endpoint.id for endpoint in endpoints]


def isolation(database: DatabaseKind, fast_url: str, *, workers: int, seconds: float, name: str) -> list[Figure]:
    """p95 seconds from emit to delivered of a healthy endpoint while ``HANGING`` others hang."""
    from webapp.domain.events import emit, emit_many

    rate = 20.0
    with hanging_receiver() as hanging, stack(database) as bench_stack, product_app(bench_stack):
        for number in range(HANGING):
            add_endpoint(hanging.url, actions=["points_added"], timeout=(5, 15, 30, 60)[number % 4],
                         queue_batches=bool(number % 2))
        healthy_id = add_endpoint(fast_url, actions=["checkout"])
        emit_many([("points_added", f"h{i}", {"i": i}) for i in range(HANGING * HANGING_BACKLOG)])
        # A stopping worker lets attempts in flight run to their timeouts (up to 60 s here): the
        # figure is taken by then, so the workers get 2 s before they are killed.
        with children(start_product_workers(bench_stack, workers), stop_timeout=2.0):
            time.sleep(1.0)  # the hanging endpoints take their lanes first (pacing, not waiting)
            started, total = time.monotonic(), int(rate * seconds)
            for number in range(total):
                pause = started + number / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)  # pacing the load
                emit(*sample_event(number))
            deadline = time.monotonic() + 30
            while delivered_count(healthy_id) < total:
                if time.monotonic() > deadline:
                    raise ScenarioFailed(f"{name}: {delivered_count(healthy_id)} of {total} healthy messages done")
                time.sleep(0.05)  # poll with a deadline
        latencies = sorted(latencies_s(healthy_id))
    return [Figure(name, percentile(latencies, 95), "s")]


def delivered_count(endpoint_id: int) -> int:
    from sqlalchemy import func

    from webapp.storage.models import Message
    from webapp.storage.statuses import DONE

    return scalar(select(func.count()).select_from(Message)
                  .where(Message.endpoint_id == endpoint_id, Message.status == DONE))


def latencies_s(endpoint_id: int) -> list[float]:
    from webapp.extensions import db
    from webapp.storage.models import Attempt, Message

    query = (select(Message.created_at, Attempt.started_at, Attempt.duration_ms)
             .join(Attempt, Attempt.message_id == Message.id)
             .where(Message.endpoint_id == endpoint_id, Attempt.number == 1))
    with db.engine.connect() as connection:
        return [(started - created).total_seconds() + duration / 1000
                for created, started, duration in connection.execute(query)]


def fanout(database: DatabaseKind, fast_url: str, *, name: str, workers: int = 1) -> list[Figure]:
    """Deliveries/s of one event to ``FANOUT_ENDPOINTS`` endpoints."""
    from webapp.domain.events import emit

    with stack(database) as bench_stack, product_app(bench_stack):
        add_endpoints(fast_url, FANOUT_ENDPOINTS, actions=["*"])
        with children(start_product_workers(bench_stack, workers)) as processes:
            started = time.monotonic()
            emit(*sample_event(0))
            finished = wait_until_drained(messages_left(FANOUT_ENDPOINTS), FANOUT_ENDPOINTS, name, processes)
    return [Figure(name, FANOUT_ENDPOINTS / (finished - started), "deliveries/s")]


def retry_gaps(database: DatabaseKind, fast_url: str, *, interval: float, name: str, workers: int = 1) -> list[Figure]:
    """The largest distance of a retry from its schedule, seconds."""
    from webapp.domain.events import emit_many

    attempts, retried = 4, FAILURES_BEFORE_FAILING
    with failing_receiver() as failing, hanging_receiver() as hanging, stack(database) as bench_stack, \
            patched_environ({"WEBHOOKS_RETRY_INTERVAL": str(interval), "WEBHOOKS_MAX_ATTEMPTS": str(attempts)}), \
            product_app(bench_stack):
        failing_id = add_endpoint(failing.url, actions=["checkout"], timeout=5)
        add_endpoint(hanging.url, actions=["checkout"], timeout=5)
        add_endpoint(fast_url, actions=["points_added"], queue_batches=True)
        bench_stack.env.update(WEBHOOKS_RETRY_INTERVAL=str(interval), WEBHOOKS_MAX_ATTEMPTS=str(attempts))
        # Stopping, a worker would let the hanging endpoint's attempt run out its 5 s: 2 s, then killed.
        with children(start_product_workers(bench_stack, workers), stop_timeout=2.0) as processes:
            emit_many([("checkout", f"r{i}", {"i": i}) for i in range(retried)])
            for first in range(0, 5_000, 1_000):  # a busy endpoint beside them
                emit_many([("points_added", f"p{first + i}", {"i": i}) for i in range(1_000)])
            deadline = time.monotonic() + interval * attempts * 3 + 30
            while failed_count(failing_id) < retried:
                if time.monotonic() > deadline or not all(p.alive() for p in processes):
                    raise ScenarioFailed(f"{name}: only {failed_count(failing_id)} of {retried} messages ended failed")
                time.sleep(0.1)  # poll with a deadline
        errors = [abs(gap - interval) for gap in gaps_s(failing_id)]
    if not errors:
        raise ScenarioFailed(f"{name}: no retries were made")
    return [Figure(name, max(errors), "s")]


def failed_count(endpoint_id: int) -> int:
    from sqlalchemy import func

    from webapp.storage.models import Message
    from webapp.storage.statuses import FAILED

    return scalar(select(func.count()).select_from(Message)
                  .where(Message.endpoint_id == endpoint_id, Message.status == FAILED))


def gaps_s(endpoint_id: int) -> list[float]:
    """End of each attempt to the start of the next one of the same message."""
    from webapp.extensions import db
    from webapp.storage.models import Attempt, Message

    query = (select(Attempt.message_id, Attempt.started_at, Attempt.duration_ms)
             .join(Message, Message.id == Attempt.message_id).where(Message.endpoint_id == endpoint_id)
             .order_by(Attempt.message_id, Attempt.number))
    with db.engine.connect() as connection:
        rows = connection.execute(query).all()
    gaps = []
    for (message, started, duration), (next_message, next_started, _) in zip(rows, rows[1:]):
        if message == next_message:
            gaps.append((next_started - started).total_seconds() - duration / 1000)
    return gaps
