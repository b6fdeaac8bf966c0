"""Events/s into the product over HTTP, in batches: ``python -m bench.emit_batches [--count N] [--database URL]``.

The web app runs as it is deployed by ``flask run-all``: gunicorn (2 workers, 4
threads) in its own process, on a fresh database and Redis, with one endpoint
that takes every action (so each event also gets a queued message and a
delivery kick; no worker drains them). One client, a ``requests.Session`` with
keep-alive, posts the events to ``POST /api/v1/events`` as JSON lists of
``BATCH`` (500), one request after the other, in ``PASSES`` timed passes of
``count`` events on the same server; the median pass is the figure (this shared
machine's neighbours make single passes swing). Bodies are encoded before the
clock starts: the figure is the server's, from a pass's first request to its
last answer. Every answer must be a 202 listing its batch's events, and the
database must hold them all afterwards.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import requests
from sqlalchemy import func, select

from .receivers import free_port
from .scenarios import add_endpoint, product_app, scalar
from .stack import (
    ChildProcess,
    DatabaseKind,
    Figure,
    ScenarioFailed,
    database_kind_for,
    stack,
    wait_for,
)
from .workload import sample_events

BATCH = 500
WARM_UP_BATCHES = 2  # untimed: the first requests fill the caches (statements, connections)
PASSES = 3


def batch_bodies(count: int, first: int = 0) -> list[bytes]:
    """``count`` sample events as JSON lists of BATCH, as a backend would post them."""
    events = [{"action": action, "customer": customer, "data": data}
              for action, customer, data in sample_events(count, first)]
    return [json.dumps(events[i:i + BATCH]).encode() for i in range(0, count, BATCH)]


def start_web(bench_stack, port: int) -> ChildProcess:
    web = ChildProcess.python(["-m", "gunicorn", "--workers", "2", "--threads", "4", "--bind", f"127.0.0.1:{port}",
                               "webapp:create_app()"], bench_stack.env, bench_stack.path("web.log"))

    def answers() -> bool:
        try:  # a worker still loading the app accepts but does not answer yet
            return requests.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=10).status_code == 200
        except (requests.ConnectionError, requests.Timeout):
            return False

    try:
        wait_for(answers, 60, "gunicorn answering", interval=0.1, processes=[web])
    except BaseException:
        web.stop()
        raise
    return web


def post_all(session: requests.Session, url: str, bodies: list[bytes]) -> int:
    posted = 0
    for body in bodies:
        response = session.post(url, data=body, timeout=60)
        if response.status_code != 202:
            raise ScenarioFailed(f"POST /api/v1/events answered {response.status_code}: {response.text[:300]}")
        posted += len(response.json())
    return posted


def http_batch_rate(database: DatabaseKind, receiver_url: str, count: int) -> list[Figure]:
    """``emit_http_batch_<db>``: events/s of one client posting lists of BATCH over HTTP."""
    from webapp.domain.tokens import create_token
    from webapp.storage.models import Event

    with stack(database) as bench_stack, product_app(bench_stack):
        add_endpoint(receiver_url, queue_batches=True, threads=8)
        token = create_token("bench")
        port = free_port()
        web = start_web(bench_stack, port)
        try:
            url = f"http://127.0.0.1:{port}/api/v1/events"
            warm_up = WARM_UP_BATCHES * BATCH
            passes = [batch_bodies(count, warm_up + number * count) for number in range(PASSES)]
            rates = []
            with requests.Session() as session:
                session.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
                post_all(session, url, batch_bodies(warm_up))
                for bodies in passes:
                    started = time.perf_counter()
                    if post_all(session, url, bodies) != count:
                        raise ScenarioFailed(f"a pass of {count} events was not answered with {count} receipts")
                    rates.append(count / (time.perf_counter() - started))
        finally:
            web.stop()
        stored = scalar(select(func.count()).select_from(Event))
        if stored != warm_up + PASSES * count:
            raise ScenarioFailed(f"posted {warm_up + PASSES * count} events; the database holds {stored}")
    return [Figure(f"emit_http_batch_{database.label}", statistics.median(rates), "events/s")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.emit_batches", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000, help=f"events posted (in lists of {BATCH})")
    parser.add_argument("--database", default="sqlite", help="'sqlite' or a postgresql:// URL")
    args = parser.parse_args(argv)
    for figure in http_batch_rate(database_kind_for(args.database), "http://127.0.0.1:9/hook", args.count):
        print(f"{figure.name} {figure.value:.0f} {figure.unit}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
