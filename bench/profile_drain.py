"""``python -m bench.profile_drain [--count N] [--endpoints E] [--threads T] [--database sqlite|URL] [--layer NAME]``: where a delivery's time goes.

Emits N events to E endpoints on the fast receiver (N messages each), starts
the delivery engine in this process and drains them, under yappi's CPU clock:
unlike a sampling profiler of one thread, it sees every thread (the lanes, the
ledger, the watchdog). Prints the CPU per delivery and its share per layer (a
function's own time is charged to the layer of its file), then the functions
with the most own time.
"""
from __future__ import annotations

import argparse
import time
from collections import Counter

import yappi

from .receivers import fast_receiver
from .scenarios import add_endpoint, ended_messages, product_app
from .stack import database_kind_for, stack

# First match wins.
LAYERS = (
    ("HTTP client (the exchange, transport, urllib3's connections, socket)",
     ("webapp/delivery/exchange", "webapp/delivery/transport", "webapp/delivery/send", "httptools",
      "urllib3/", "http/", "email/", "socket.py", "ssl.py", "selectors.py", "urllib/parse")),
    ("database (SQLAlchemy, driver)", ("sqlalchemy/", "sqlite3/", "psycopg/")),
    ("threads and futures", ("concurrent/futures", "threading.py", "queue.py")),
    ("signing", ("webapp/signing/",)),
    ("building the request (payload, headers)", ("webapp/delivery/outgoing", "webapp/delivery/payload", "json/")),
    ("the engine (lanes, ledger, claims, health)", ("webapp/delivery/",)),
)


def layer_of(module: str) -> str:
    for layer, markers in LAYERS:
        if any(marker in module for marker in markers):
            return layer
    return "other"


def profile(count: int, endpoints: int, database_url: str, threads: int = 1, only_layer: str | None = None) -> None:
    from flask import current_app

    from webapp.delivery.engine import Engine
    from webapp.domain.events import emit_many

    with fast_receiver() as receiver, stack(database_kind_for(database_url)) as bench_stack, \
            product_app(bench_stack):
        ids = [add_endpoint(receiver.url, queue_batches=threads > 1, threads=threads) for _ in range(endpoints)]
        for first in range(0, count, 1000):
            emit_many([("checkout", f"c{i}", {"i": i}) for i in range(first, min(first + 1000, count))])
        engine = Engine(current_app._get_current_object()).start()
        yappi.set_clock_type("cpu")
        started = time.monotonic()
        yappi.start(builtins=False)  # time in C calls counts for the Python function that made them
        try:
            engine.wake(ids)
            engine.wait_idle(3600)
        finally:
            yappi.stop()
            engine.stop()
        elapsed = time.monotonic() - started
        deliveries = ended_messages()
    stats = yappi.get_func_stats()
    totals = Counter()
    for stat in stats:
        totals[layer_of(stat.module)] += stat.tsub
    whole = sum(totals.values())
    print(f"receiver: {receiver.name}; {deliveries} deliveries to {endpoints} endpoint(s) in {elapsed:.2f} s "
          f"under the profiler; CPU per delivery {whole / max(deliveries, 1) * 1000:.3f} ms")
    for layer, seconds in totals.most_common():
        print(f"{seconds / whole:6.1%}  {layer}")
    print("\nown CPU time, most first:")
    chosen = [s for s in stats if only_layer is None or only_layer in layer_of(s.module)]
    for stat in sorted(chosen, key=lambda s: s.tsub, reverse=True)[:25]:
        print(f"{stat.tsub / whole:6.1%}  {stat.ncall:8d}  {stat.name}  {stat.module.rsplit('/', 2)[-1]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5_000, help="events (each goes to every endpoint)")
    parser.add_argument("--endpoints", type=int, default=1)
    parser.add_argument("--database", default="sqlite")
    parser.add_argument("--threads", type=int, default=1, help="the endpoints' threads (more than 1: queue batches on)")
    parser.add_argument("--layer", help="list only the functions of the layer whose name contains this")
    args = parser.parse_args(argv)
    profile(args.count, args.endpoints, args.database, args.threads, args.layer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
