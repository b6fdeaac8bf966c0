"""The ceiling: what the HTTP client alone can do, with no database and no queue.

W processes each run the plainest fast sender, a ``requests.Session``
keep-alive loop posting a 500-byte JSON body to the fast receiver, N/W
requests each. Threads would not raise it against a receiver that answers at
once (the client is CPU-bound), so processes are what scale it.

``client="urllib3"`` runs the same loop one layer down (urllib3's
connection pool, as the product's sender nearly does: it hands prepared
requests straight to requests' transport adapter). It is printed for
context only; ``ratio_vs_ceiling`` uses the ``requests.Session`` loop, as
issue 7 defines it.

Timer: the senders start (imports and connection set-up done) and wait at a
barrier; the clock runs from the barrier's release until the last sender has
its last answer.
"""
from __future__ import annotations

import multiprocessing
import time

import requests
import urllib3

from .stack import Figure, ScenarioFailed
from .workload import ceiling_body

START_TIMEOUT = 60.0


HEADERS = {"Content-Type": "application/json"}


def requests_post(url: str):
    """A ``requests.Session`` keep-alive POST: returns a function giving the status code."""
    session, body = requests.Session(), ceiling_body()
    return lambda: session.post(url, data=body, headers=HEADERS).status_code


def urllib3_post(url: str):
    """The same POST through one urllib3 keep-alive connection (no requests layer)."""
    parts = urllib3.util.parse_url(url)
    pool, body = urllib3.HTTPConnectionPool(parts.host, parts.port, maxsize=1), ceiling_body()
    return lambda: pool.urlopen("POST", parts.path, body=body, headers=HEADERS).status


CLIENTS = {"requests": requests_post, "urllib3": urllib3_post}


def sender_loop(client: str, url: str, count: int, ready, go, results) -> None:
    """One process: ``count`` keep-alive POSTs; reports (first send, last answer, failures)."""
    post = CLIENTS[client](url)
    post()  # connect before the clock starts
    ready.release()
    go.wait()
    started, failures = time.monotonic(), 0
    for _ in range(count):
        failures += post() != 200
    results.put((started, time.monotonic(), failures))


def requests_per_second(url: str, *, name: str, count: int, processes: int, client: str = "requests") -> list[Figure]:
    context = multiprocessing.get_context("spawn")
    ready, go, results = context.Semaphore(0), context.Event(), context.Queue()
    shares = [count // processes + (n < count % processes) for n in range(processes)]
    senders = [context.Process(target=sender_loop, args=(client, url, share, ready, go, results), daemon=True)
               for share in shares]
    for sender in senders:
        sender.start()
    try:
        for _ in senders:
            if not ready.acquire(timeout=START_TIMEOUT):
                raise ScenarioFailed(f"{name}: a sender did not start within {START_TIMEOUT:g} s")
        go.set()
        outcomes = [results.get(timeout=max(600.0, count / 100)) for _ in senders]
    finally:
        for sender in senders:
            sender.join(5)
            if sender.is_alive():
                sender.kill()
    failures = sum(outcome[2] for outcome in outcomes)
    if failures:
        raise ScenarioFailed(f"{name}: {failures} requests did not get a 200")
    elapsed = max(outcome[1] for outcome in outcomes) - min(outcome[0] for outcome in outcomes)
    return [Figure(name, count / elapsed, "requests/s")]
