"""Baseline B: Celery, Redis broker, one task per message, prefork pool.

The same naive delivery as baseline A (``bench.naive.deliver_message``: load,
commit ``sending``, new ``requests.post``, commit the outcome), queued one
task per message (``send_task``, what ``deliver.delay(id)`` does), as in
Celery's tutorial. "W
workers" is one ``celery worker`` with a prefork pool of W processes
(``--concurrency W``): the pool processes live on between tasks, so unlike
RQ's default worker there is no fork per task, and each keeps its database
connection.

Timer: from the first insert (the worker already answers a ping) until a
database poll sees no message ``queued`` or ``sending``.
"""
from __future__ import annotations

import os
import time

from celery import Celery

from . import naive
from .stack import (
    ChildProcess,
    DatabaseKind,
    Figure,
    ScenarioFailed,
    children,
    stack,
    wait_for,
    wait_until_drained,
)

app = Celery("bench_naive", broker=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="bench.deliver")
def deliver(message_id: int) -> None:
    naive.deliver_message(message_id)


def start_worker(bench_stack, concurrency: int) -> ChildProcess:
    """One ``celery worker`` with ``concurrency`` prefork processes, returned once it answers a ping."""
    worker = ChildProcess.python(
        ["-m", "celery", "-A", "bench.baseline_celery", "worker", "--pool", "prefork",
         "--concurrency", str(concurrency), "--loglevel", "WARNING", "--hostname", "bench@%h"],
        bench_stack.env, bench_stack.path("celery-worker.log"),
    )
    client = Celery("bench_client", broker=bench_stack.redis.url)
    try:
        wait_for(lambda: client.control.ping(timeout=0.5), 60, "celery worker answering", processes=[worker])
    except BaseException:
        worker.stop()
        raise
    return worker


def enqueue_all(client: Celery, url: str, receiver_url: str, count: int) -> None:
    for first in range(0, count, naive.INSERT_CHUNK):
        for message_id in naive.insert_messages(url, receiver_url, first, min(naive.INSERT_CHUNK, count - first)):
            client.send_task("bench.deliver", (message_id,))


def delivery_rate(database: DatabaseKind, receiver_url: str, *, name: str, count: int, workers: int) -> list[Figure]:
    with stack(database) as bench_stack:
        url = bench_stack.database_url
        naive.create_schema(url)
        client = Celery("bench_client", broker=bench_stack.redis.url)
        client.conf.task_ignore_result = True
        try:
            with children([start_worker(bench_stack, workers)]) as processes:
                started = time.monotonic()
                enqueue_all(client, url, receiver_url, count)
                finished = wait_until_drained(lambda: naive.not_finished(url), count, name, processes)
            done = naive.count_done(url)
        finally:
            naive.engine_for(url).dispose()
            client.close()
    if done != count:
        raise ScenarioFailed(f"{name}: {done} of {count} done")
    return [Figure(name, count / (finished - started), "deliveries/s")]
