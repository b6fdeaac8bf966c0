"""Start a webhook delivery worker: ``python worker.py [--burst]``.

Production runs this on as many machines (and processes per machine) as the
load needs, all pointed at the same DATABASE_URL and REDIS_URL. Each process
runs an RQ worker that takes wake-up and emit jobs in-process, the delivery
engine those wake-ups feed (webapp/delivery/engine.py), and the maintenance
thread (sweep, retention and operator notices, one run per interval across
all workers).
"""
from __future__ import annotations

import argparse
import faulthandler
import logging
import signal
import uuid

from rq import SimpleWorker

from webapp import create_app
from webapp.delivery.engine import Engine
from webapp.delivery.sweep import sweep
from webapp.runtime.maintenance import Maintenance
from webapp.runtime.startup_heap import freeze_startup_objects
from webapp.storage.queueing import delivery_queue

BURST_DRAIN_SECONDS = 3600
log = logging.getLogger("worker")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="sweep once, deliver what is due, then exit")
    parser.add_argument("--name", help="worker name (default: random)")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack: where is it stuck?
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # "pool is full" is expected
    app = create_app()
    app.app_context().push()
    queue = delivery_queue()
    name = args.name or f"webhooks-{uuid.uuid4().hex[:8]}"
    # Jobs run in this process (no fork): a wake-up hands endpoint ids to the engine's threads.
    worker = SimpleWorker([queue], connection=queue.connection, name=name)
    engine = Engine(app).start()
    engine.start_lane_threads()
    log.info("%d start-up objects frozen out of garbage collection", freeze_startup_objects())
    maintenance = None
    try:
        if args.burst:
            sweep()
            worker.work(burst=True, logging_level=args.log_level)
            engine.wait_idle(BURST_DRAIN_SECONDS)
            return 0
        maintenance = Maintenance(app, owner=name)
        maintenance.start()
        worker.work(logging_level=args.log_level)
    finally:
        if maintenance is not None:
            maintenance.stop()
        engine.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
