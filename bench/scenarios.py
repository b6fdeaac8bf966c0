"""The product's scenarios: emit rates, delivery rates, and latency at a light load.

Each runs on its own stack (fresh database, own Redis) and drives the real
product: ``create_app()`` and ``emit_many``/``emit`` in this process, ``python
worker.py`` child processes (RQ's default forking worker, as deployed) for
delivery. Workers are started and registered with Redis *before* the clock
starts, so their start-up is never timed.

Delivery timer: from the first ``emit_many`` call (events go in by 1,000 per
call, while the workers already deliver) until a poll of the database first
sees every message final (by the rollups, see ``messages_left``); then every message
must be ``done``. The poll runs every 50 ms, so a figure is at most 50 ms pessimistic.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Callable

from sqlalchemy import func, select

from .stack import (
    ROOT,
    ChildProcess,
    DatabaseKind,
    Figure,
    ScenarioFailed,
    Stack,
    children,
    migrate_schema,
    patched_environ,
    stack,
    start_rq_workers,
    wait_until_drained,
)
from .workload import sample_event, sample_events

EMIT_CHUNK = 1_000
FAST_THREADS = 8  # the product's default
SLOW_THREADS = 64  # the most the settings allow: a 100 ms receiver needs concurrency, not CPU


# --- the product inside this process -------------------------------------------------------------


@contextmanager
def product_app(bench_stack: Stack):
    """``create_app()`` with the scenario's environment, its context pushed; engine disposed after."""
    from webapp import create_app
    from webapp.extensions import db

    with patched_environ(bench_stack.env):
        app = create_app()
        with app.app_context():
            migrate_schema()
            try:
                yield app
            finally:
                db.session.remove()
                db.engine.dispose()


def add_endpoint(url: str, *, queue_batches: bool, threads: int) -> int:
    from webapp.extensions import db
    from webapp.storage.models import ALL_ACTIONS, Endpoint

    endpoint = Endpoint(url=url, name="bench receiver", queue_batches=queue_batches, threads=threads, timeout=5)
    endpoint.actions = [ALL_ACTIONS]
    db.session.add(endpoint)
    db.session.commit()
    return endpoint.id


def emit_in_chunks(count: int, chunk: int = EMIT_CHUNK) -> None:
    from webapp.domain.events import emit_many

    for first in range(0, count, chunk):
        emit_many(sample_events(min(chunk, count - first), first))


def scalar(query):
    """One value read on a short-lived connection (never holds a transaction open)."""
    from webapp.extensions import db

    with db.engine.connect() as connection:
        return connection.execute(query).scalar()


def ended_messages() -> int:
    """Messages the rollups count as ended, done or failed: the ledger writes them in the transaction
    that ends the messages. One row per endpoint and day, so this costs the database next to nothing:
    counting the ``pending_message`` rows instead cost PostgreSQL 2 ms per poll by the end of a
    20,000-message drain (its deleted rows stay in the table until vacuumed): 24 µs of the server's
    time per delivered message, about a tenth of it, taken from the side it measures; counting the
    log's messages by status cost 5-7 ms."""
    from webapp.storage.models import StatsDay

    return scalar(select(func.coalesce(func.sum(StatsDay.done + StatsDay.failed), 0)))


def messages_left(total: int) -> Callable[[], int]:
    """A poll of how many of ``total`` messages are not final yet (``require_all_done`` then checks the
    messages themselves)."""
    return lambda: total - ended_messages()


def status_counts() -> dict[str, int]:
    from webapp.extensions import db
    from webapp.storage.models import Message

    with db.engine.connect() as connection:
        return dict(connection.execute(select(Message.status, func.count()).group_by(Message.status)).all())


def require_all_done(count: int, what: str) -> None:
    counts = status_counts()
    if counts.get("done", 0) != count:
        raise ScenarioFailed(f"{what}: expected {count} done, got {counts}")


def start_product_workers(bench_stack: Stack, count: int) -> list[ChildProcess]:
    """``python worker.py`` × count, returned once all have registered with Redis."""
    return start_rq_workers(
        bench_stack, lambda n: [str(ROOT / "worker.py"), "--log-level", "WARNING", "--name", f"bench-{n}"],
        count, "worker")


# --- scenarios ----------------------------------------------------------------------------------


def emit_rates(database: DatabaseKind, receiver_url: str, count: int) -> list[Figure]:
    """Events/s into the database (and a kick to Redis), no worker running: bulk, then one by one.

    Bulk: ``emit_many`` with 1,000 events per call. Single: ``emit()`` per event
    (count/10 of them), the call an application makes per customer action.
    """
    singles = max(count // 10, 100)
    with stack(database) as bench_stack, product_app(bench_stack):
        from webapp.domain.events import emit

        add_endpoint(receiver_url, queue_batches=True, threads=FAST_THREADS)
        started = time.monotonic()
        emit_in_chunks(count)
        bulk_seconds = time.monotonic() - started
        started = time.monotonic()
        for number in range(count, count + singles):
            emit(*sample_event(number))
        single_seconds = time.monotonic() - started
    return [Figure(f"emit_many_{database.label}", count / bulk_seconds, "events/s"),
            Figure(f"emit_single_{database.label}", singles / single_seconds, "events/s")]


def delivery_rate(database: DatabaseKind, receiver_url: str, *, name: str, count: int, workers: int,
                  queue_batches: bool, threads: int, answered: Callable[[], int] | None = None) -> list[Figure]:
    """Deliveries/s of the product, emit → every message ``done`` (see the module docstring).

    ``answered`` (the receiver's own request counter, when it keeps one) must
    grow by at least ``count``: the messages really reached it.
    """
    with stack(database) as bench_stack, product_app(bench_stack):
        add_endpoint(receiver_url, queue_batches=queue_batches, threads=threads)
        answered_before = answered() if answered else 0
        with children(start_product_workers(bench_stack, workers)) as processes:
            started = time.monotonic()
            emit_in_chunks(count)
            finished = wait_until_drained(messages_left(count), count, name, processes)
        require_all_done(count, name)
        note_retries(count, name)
        if answered and answered() - answered_before < count:
            raise ScenarioFailed(f"{name}: the receiver answered {answered() - answered_before} of {count}")
        figures = [Figure(name, count / (finished - started), "deliveries/s")]
        if not queue_batches:
            figures.append(Figure(f"{name}_out_of_order", out_of_order_attempts(), "messages"))
    return figures


def note_retries(count: int, name: str) -> None:
    """Say so (on stderr) when messages needed more than one attempt: that slows a figure down."""
    from webapp.storage.models import Attempt

    attempts = scalar(select(func.count()).select_from(Attempt))
    if attempts > count:
        errors = error_counts()
        print(f"# {name}: {attempts - count} attempts beyond one per message: {errors}", file=sys.stderr, flush=True)


def error_counts() -> dict[str, int]:
    from webapp.extensions import db
    from webapp.storage.models import Attempt

    with db.engine.connect() as connection:
        rows = connection.execute(select(Attempt.error, func.count()).where(Attempt.error.is_not(None))
                                  .group_by(Attempt.error)).all()
    return {error[:80]: number for error, number in rows}


def out_of_order_attempts() -> int:
    """Attempts, in the order they were sent, whose message is older than one sent before it.

    Queue batches off promises per-endpoint creation order; message ids grow
    with creation, so a correct run has 0. (nginx keeps no record of what it
    received, so the order is read from the attempt log.)
    """
    from webapp.extensions import db
    from webapp.storage.models import Attempt

    with db.engine.connect() as connection:
        sent = connection.execute(select(Attempt.message_id).order_by(Attempt.started_at, Attempt.id)).scalars()
        newest, late = 0, 0
        for message_id in sent:
            if message_id < newest:
                late += 1
            newest = max(newest, message_id)
    return late


def light_load_latency(database: DatabaseKind, receiver_url: str, *, rate: float, seconds: float) -> list[Figure]:
    """Emit → delivered, per message, at ``rate`` single ``emit()`` calls per second, 1 worker.

    Latency = attempt start + its duration (the receiver's answer is in) −
    the message's ``created_at`` (taken as ``emit`` begins). The outcome's
    commit (a millisecond or two) is not included.
    """
    total = int(rate * seconds)
    with stack(database) as bench_stack, product_app(bench_stack):
        from webapp.domain.events import emit

        add_endpoint(receiver_url, queue_batches=True, threads=FAST_THREADS)
        with children(start_product_workers(bench_stack, 1)) as processes:
            started = time.monotonic()
            for number in range(total):
                pause = started + number / rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)  # pacing the load, not waiting for an outcome
                emit(*sample_event(number))
            wait_until_drained(messages_left(total), total, "latency", processes)
        require_all_done(total, "latency")
        latencies = sorted(delivery_latencies_ms())
    label = database.label
    return [Figure(f"latency_p50_{label}", percentile(latencies, 50), "ms"),
            Figure(f"latency_p99_{label}", percentile(latencies, 99), "ms")]


def delivery_latencies_ms() -> list[float]:
    from webapp.extensions import db
    from webapp.storage.models import Attempt, Message

    query = (select(Message.created_at, Attempt.started_at, Attempt.duration_ms)
             .join(Attempt, Attempt.message_id == Message.id).where(Attempt.number == 1))
    with db.engine.connect() as connection:
        rows = connection.execute(query).all()
    return [(started - created).total_seconds() * 1000 + duration for created, started, duration in rows]


def percentile(sorted_values: list[float], percent: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_values:
        return float("nan")
    rank = max(1, round(percent / 100 * len(sorted_values) + 0.4999))
    return sorted_values[min(rank, len(sorted_values)) - 1]
