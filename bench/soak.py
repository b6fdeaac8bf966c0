"""The load soak of issue 6: many events, a flaky receiver, workers SIGKILLed mid-run.

    python -m bench.soak [--events 100000] [--endpoints 4] [--fanout 1] [--workers 2]
                         [--kills 2] [--database URL] [--max-minutes 30]

Events are emitted with ``emit_many`` over several endpoints (queue batches on,
16 threads, 1 s timeout) while a `SoakReceiver` on 127.0.0.1 answers 500 to a
random 30 % of requests and stalls 1 % past the timeout without answering.
All workers are SIGKILLed at about 1/3 and 2/3 of the way (counted in final
messages) and started again. When every message is final the run is checked
(see `check`) and its figures are printed one per line as ``name value unit``.
Exit code 1 if a check fails or the run did not finish within ``--max-minutes``.

The bench makes its own instance directory, Redis and (by default) SQLite
file, and removes them afterwards unless the run failed. ``tests/test_soak.py``
runs the same `run_soak` and `check` at a small size with the pytest fixtures.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet
from flask_migrate import upgrade
from redis import Redis
from rq import Worker
from sqlalchemy import create_engine, text

from tests.support.soak import (
    ROOT,
    SoakPlan,
    check,
    figures,
    print_figures,
    read_ledger,
    run_soak,
)
from tests.support.waiting import wait_until
from webapp import create_app
from webapp.runtime.embedded_redis import EmbeddedRedis


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--endpoints", type=int, default=4)
    parser.add_argument("--fanout", type=int, default=1, help="endpoints each event goes to (default 1)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--database", help="SQLAlchemy URL (default: a fresh SQLite file); "
                                           "a PostgreSQL database has its public schema dropped and re-created")
    parser.add_argument("--max-minutes", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=6)
    return parser.parse_args(argv)


def soak_env(instance: Path, redis_url: str, database_url: str) -> dict[str, str]:
    """The environment of this process and of every worker it starts (like the tests' ``base_env``)."""
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "soak-secret-key",
        "WEBHOOKS_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "WEBHOOKS_INSTANCE_PATH": str(instance),
        "WEBHOOKS_ALLOW_PRIVATE_TARGETS": "1",
        "WEBHOOKS_RETRY_INTERVAL": "0.5",
        "WEBHOOKS_SWEEP_INTERVAL": "1",
        "WEBHOOKS_LEASE_MARGIN": "2",
    }


def reset_postgresql(url: str) -> None:
    """An empty public schema, so the migrations start from nothing."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


class BenchWorkers:
    """Starts ``python worker.py`` processes for the bench, as the tests' ``start_worker`` fixture does."""

    def __init__(self, env: dict[str, str], log_dir: Path):
        self.env = env
        self.log_dir = log_dir
        self.started: list = []

    def start(self):
        # Imported late: the tests' conftest imports pytest and the test servers.
        from tests.conftest import WorkerProcess

        connection = Redis.from_url(self.env["REDIS_URL"])
        before = {w.name for w in Worker.all(connection=connection)}
        worker = WorkerProcess(self.env, [], self.log_dir / f"worker{len(self.started)}.log")
        self.started.append(worker)
        wait_until(lambda: {w.name for w in Worker.all(connection=connection)} - before
                   or worker.process.poll() is not None,
                   timeout=30, message="worker did not register with Redis")
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker exited at start:\n{worker.output()}")
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            worker.stop()

    def log_tails(self, lines: int = 20) -> str:
        return "\n".join(f"--- {w.log_path}\n" + "\n".join(w.log_path.read_text(errors="replace").splitlines()[-lines:])
                         for w in self.started)


def run_bench(args: argparse.Namespace, workdir: Path) -> bool:
    """One soak in ``workdir``; prints the figures and any failed check; True if it passed."""
    plan = SoakPlan(events=args.events, endpoints=args.endpoints, fanout=args.fanout, workers=args.workers,
                    kills=args.kills, seed=args.seed, max_seconds=args.max_minutes * 60)
    database_url = args.database or f"sqlite:///{workdir / 'soak.db'}"
    if database_url.startswith("postgresql"):
        reset_postgresql(database_url)
    redis = EmbeddedRedis(workdir / "redis", persistent=False).start()
    env = soak_env(workdir / "instance", redis.url, database_url)
    os.environ.update(env)
    workers = BenchWorkers(env, workdir)
    try:
        app = create_app()
        with app.app_context(), plan.receiver() as receiver:
            upgrade(directory=str(ROOT / "migrations"))
            run = run_soak(plan, receiver, workers.start)
            workers.stop_all()
            ledger = read_ledger()
            print_figures(figures(run, ledger))
            problems = check(run, ledger, app.config["WEBHOOKS_MAX_ATTEMPTS"])
    finally:
        workers.stop_all()
        redis.stop()
    for problem in problems:
        print(f"SOAK FAILED: {problem}", file=sys.stderr)
    if problems:
        print(workers.log_tails(), file=sys.stderr)
    return not problems


def main(argv=None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="webhooks-soak-"))
    passed = False
    try:
        passed = run_bench(args, workdir)
    finally:
        if passed:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir} (database, worker logs) for a look", file=sys.stderr)
    print("soak passed" if passed else "soak FAILED", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
