"""Baseline A: one RQ job per message on RQ's default (forking) worker.

The design a team writes first (see ``bench.naive``): insert the messages,
``enqueue_many`` one job per message id, and let ``W`` plain ``rq`` workers
fork a work-horse per job that loads the row, posts it with a new
``requests.post`` and commits each status change.

Timer: from the first insert (while the workers are already registered and
waiting) until a database poll sees no message ``queued`` or ``sending``.

Worker process: ``python -m bench.baseline_rq worker`` (env BENCH_REDIS_URL,
BENCH_DATABASE_URL) — the naive module is imported before the worker starts,
as an app's worker script would, so a work-horse does not re-import it.
"""
from __future__ import annotations

import argparse
import os
import time

from redis import Redis
from rq import Queue, Worker
from sqlalchemy.orm import configure_mappers

from . import naive
from .stack import (
    ChildProcess,
    DatabaseKind,
    Figure,
    ScenarioFailed,
    children,
    stack,
    start_rq_workers,
    wait_until_drained,
)

QUEUE = "naive"
JOB = "bench.naive.deliver_message"


def start_workers(bench_stack, count: int) -> list[ChildProcess]:
    return start_rq_workers(bench_stack, lambda n: ["-m", "bench.baseline_rq", "worker"], count, "rq-worker")


def enqueue_all(queue: Queue, url: str, receiver_url: str, count: int) -> None:
    for first in range(0, count, naive.INSERT_CHUNK):
        ids = naive.insert_messages(url, receiver_url, first, min(naive.INSERT_CHUNK, count - first))
        queue.enqueue_many([Queue.prepare_data(JOB, (message_id,)) for message_id in ids])


def delivery_rate(database: DatabaseKind, receiver_url: str, *, name: str, count: int, workers: int) -> list[Figure]:
    with stack(database) as bench_stack:
        url = bench_stack.database_url
        naive.create_schema(url)
        queue = Queue(QUEUE, connection=Redis.from_url(bench_stack.redis.url))
        try:
            with children(start_workers(bench_stack, workers)) as processes:
                started = time.monotonic()
                enqueue_all(queue, url, receiver_url, count)
                finished = wait_until_drained(lambda: naive.not_finished(url), count, name, processes)
            done = naive.count_done(url)
        finally:
            naive.engine_for(url).dispose()
    if done != count:
        raise ScenarioFailed(f"{name}: {done} of {count} done")
    return [Figure(name, count / (finished - started), "deliveries/s")]


def run_worker() -> int:
    naive.engine()  # created before forking, like an app's module-level engine
    configure_mappers()  # as any app that touched its models at start-up would have
    connection = Redis.from_url(os.environ["BENCH_REDIS_URL"])
    Worker([Queue(QUEUE, connection=connection)], connection=connection).work(logging_level="WARNING")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="baseline A worker")
    parser.add_argument("command", choices=["worker"])
    parser.parse_args(argv)
    return run_worker()


if __name__ == "__main__":
    raise SystemExit(main())
