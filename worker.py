"""Start a webhook delivery worker: ``python worker.py [--burst] [--simple]``.

Production runs this on as many machines as the load needs, all pointed at the
same DATABASE_URL and REDIS_URL. Each worker also runs RQ's scheduler (for
delayed retries; RQ keeps one active per queue) and the maintenance thread
(sweep and retention, one run per interval across all workers).
"""
from __future__ import annotations

import argparse
import logging
import uuid

from rq import SimpleWorker, Worker

from webapp import create_app
from webapp.delivery.sweep import sweep
from webapp.maintenance import Maintenance
from webapp.queueing import delivery_queue


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", action="store_true", help="sweep once, drain the queue, then exit")
    parser.add_argument(
        "--simple", action="store_true",
        help="run jobs in this process (RQ SimpleWorker) instead of a forked work-horse per job",
    )
    parser.add_argument("--name", help="worker name (default: random)")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_app()
    app.app_context().push()
    queue = delivery_queue()
    worker_class = SimpleWorker if args.simple else Worker
    name = args.name or f"webhooks-{uuid.uuid4().hex[:8]}"
    worker = worker_class([queue], connection=queue.connection, name=name)
    if args.burst:
        sweep()
        worker.work(burst=True, with_scheduler=True, logging_level=args.log_level)
        return 0
    maintenance = Maintenance(app, owner=name)
    maintenance.start()
    try:
        worker.work(with_scheduler=True, logging_level=args.log_level)
    finally:
        maintenance.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
