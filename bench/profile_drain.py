"""``python -m bench.profile_drain [--count N] [--database sqlite|URL]``: where a delivery's time goes.

Emits N events to one endpoint on the fast receiver, starts the delivery
engine in this process and runs one lane of that endpoint on this thread under
pyinstrument until the endpoint is drained. Queue batches are off, so every send
runs on the profiled thread. The ledger writes on its own thread, which the
profile does not see: its share shows as the lane waiting for claims. Prints
the share of the drain spent in each layer, then pyinstrument's call tree
(frames under 2 % hidden).
"""
from __future__ import annotations

import argparse
import time
from collections import Counter

from pyinstrument import Profiler

from .receivers import fast_receiver
from .scenarios import add_endpoint, emit_in_chunks, pending_messages, product_app
from .stack import database_kind_for, stack

# First match wins: a frame's own time is charged to the layer of its file.
LAYERS = (
    # http.client parses response headers with the email package; urllib3's pool is a queue.Queue.
    ("HTTP client (requests, urllib3, http.client, socket)", ("requests/", "urllib3/", "http/", "email/", "socket.py",
                                                               "ssl.py", "selectors.py", "urllib/parse", "queue.py")),
    ("database (SQLAlchemy, driver)", ("sqlalchemy/", "sqlite3/", "psycopg/")),
    ("waiting for the ledger thread (claims, outcome writes)", ("concurrent/futures", "threading.py")),
    ("signing", ("webapp/signing/",)),
    ("building the request (payload, headers)", ("webapp/delivery/outgoing", "webapp/delivery/payload", "json/")),
    ("the engine (lane, ledger, claims)", ("webapp/delivery/claims", "webapp/delivery/lane",
                                           "webapp/delivery/ledger", "webapp/delivery/deadline")),
    ("sending and describing (send.py)", ("webapp/delivery/send",)),
    ("Redis (kicks, retries)", ("redis/", "webapp/delivery/dispatch")),
)


def layer_of(file_path: str) -> str:
    for layer, markers in LAYERS:
        if any(marker in file_path for marker in markers):
            return layer
    return "other"


def self_times(frame, totals: Counter, caller_path: str = "") -> Counter:
    """Each frame's own time (its time minus its children's), summed per layer.

    Built-in calls (``socket.recv_into``) and pyinstrument's ``[self]`` frames
    have no file of their own: they count for the Python function that called them.
    """
    path = frame.file_path or ""
    if not path or path.startswith("<"):  # <built-in>, <frozen abc>, <string>
        path = caller_path
    own = frame.time - sum(child.time for child in frame.children)
    totals[layer_of(path)] += own
    for child in frame.children:
        self_times(child, totals, path)
    return totals


def profile(count: int, database_url: str) -> None:
    from flask import current_app

    from webapp.delivery.engine import Engine
    from webapp.delivery.lane import EndpointState, Lane

    with fast_receiver() as receiver, stack(database_kind_for(database_url)) as bench_stack, \
            product_app(bench_stack):
        endpoint_id = add_endpoint(receiver.url, queue_batches=False, threads=1)
        emit_in_chunks(count)
        engine = Engine(current_app._get_current_object()).start()
        state = EndpointState(endpoint_id, lanes=1)
        profiler = Profiler(interval=0.0005)
        started = time.monotonic()
        try:
            with profiler:
                Lane(engine, state).work()
                engine.wait_idle(60)
        finally:
            engine.stop()
        elapsed = time.monotonic() - started
        attempts = count - pending_messages()
        if pending_messages():
            raise SystemExit(f"{pending_messages()} messages still pending after the drain")
    print(f"receiver: {receiver.name}; {attempts} attempts in {elapsed:.2f} s = {attempts / elapsed:.0f}/s, "
          f"{elapsed / attempts * 1000:.3f} ms per attempt (under the profiler)")
    totals = self_times(profiler.last_session.root_frame(), Counter())
    whole = sum(totals.values())
    for layer, seconds in totals.most_common():
        print(f"{seconds / whole:6.1%}  {layer}")
    print(profiler.output_text(unicode=False, color=False, show_all=False, time="percent_of_total",
                               processor_options={"filter_threshold": 0.02}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5_000)
    parser.add_argument("--database", default="sqlite")
    args = parser.parse_args(argv)
    profile(args.count, args.database)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
