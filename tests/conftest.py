"""Fixtures with real parts: a Redis server, a SQL database, worker processes, receivers.

The database is a SQLite file unless TEST_DATABASE_URL points elsewhere
(CI re-runs the suite with PostgreSQL). The schema is built once per session
by the real migrations; each test starts from empty tables and an empty Redis.
"""
from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, make_url, text

from tests.support.forward_proxy import ForwardProxy
from tests.support.processes import kill_session
from tests.support.receiver import Receiver
from tests.support.signing_vectors import SUMMARY_LINES
from tests.support.waiting import wait_until
from tests.support.web import FreshContextClient, Operator
from webapp.runtime.embedded_redis import EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("attempt", "pending_message", "message", "event", "stats_minute", "stats_hour", "stats_day", "endpoint",
          "api_token", "operator_session", '"user"')


# Tests that start real worker processes or drive a browser: `pytest -m "not slow"` leaves them out
# (soak and run-all modules carry the marker themselves).
SLOW_FIXTURES = {"start_worker"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(item.fixturenames) or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter, config):
    for line in config.stash.get(SUMMARY_LINES, []):
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), persistent=False).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        url = own_database(url, os.environ.get("PYTEST_XDIST_WORKER"))
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'webhooks.db'}"


def own_database(url: str, worker: str | None) -> str:
    """Under pytest-xdist each process empties and fills its own database: ``test`` becomes ``test_gw0``,
    ``test_gw1``..., created beside it on first use."""
    if not worker:
        return url
    given = make_url(url)
    mine = given.set(database=f"{given.database}_{worker}")
    engine = create_engine(given.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": mine.database}):
            conn.execute(text(f'CREATE DATABASE "{mine.database}"'))
    engine.dispose()
    return mine.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def base_env(redis_server, database_url, tmp_path_factory):
    """The environment shared by the app under test and every worker process it starts."""
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_server.url,
        "SECRET_KEY": "test-secret-key",
        "WEBHOOKS_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "WEBHOOKS_INSTANCE_PATH": str(tmp_path_factory.mktemp("instance")),
        "WEBHOOKS_ALLOW_PRIVATE_TARGETS": "1",
        "WEBHOOKS_RETRY_INTERVAL": "0.3",
        "WEBHOOKS_SWEEP_INTERVAL": "0.5",
        "WEBHOOKS_LEASE_MARGIN": "1",
        # Every test logs an operator in: scrypt at 1/32 of the product's cost (5 ms, not 160 ms).
        "WEBHOOKS_PASSWORD_HASH": "scrypt:1024:8:1",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    from flask_migrate import upgrade

    from webapp import create_app

    with create_app().app_context():
        upgrade(directory=str(ROOT / "migrations"))
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def shared_app(base_env):
    """The app the tests use, built once: building one costs ~30 ms (werkzeug compiles every route,
    Jinja every template), which over the suite is most of a minute. Each test gets it back as new:
    see ``app``."""
    from webapp import create_app
    from webapp.web.auth import limiter

    app = create_app({"TESTING": True})
    # Flask-Limiter keeps its settings and storage on the one Limiter object, not on the app: a test
    # that builds an app of its own (rate limit off, say) would change them for this app too.
    return app, copy.deepcopy(dict(app.config)), set(app.extensions), dict(vars(limiter))


@pytest.fixture
def app(shared_app, redis_server):
    """The app with its configuration and rate limiter as built, no connection made lazily by an
    earlier test (Redis, the secret box), empty tables and an empty Redis."""
    from webapp.extensions import db
    from webapp.web.auth import limiter

    app, config, extensions, limiter_state = shared_app
    app.config.clear()
    app.config.update(copy.deepcopy(config))
    for name in set(app.extensions) - extensions:
        del app.extensions[name]
    vars(limiter).clear()
    vars(limiter).update(limiter_state)
    with app.app_context():
        for table in TABLES:
            db.session.execute(text(f"DELETE FROM {table}"))
        db.session.commit()
        from redis import Redis

        Redis.from_url(redis_server.url).flushall()
        yield app
        db.session.remove()


@pytest.fixture
def client(app):
    app.test_client_class = FreshContextClient
    return app.test_client()


@pytest.fixture
def operator(client):
    """A logged-in operator driving ``client`` (CSRF token included in its posts)."""
    return Operator(client).create().login()


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


@pytest.fixture
def forward_proxy():
    with ForwardProxy() as proxy:
        yield proxy


class WorkerProcess:
    """``python worker.py`` as a child process, with the test environment."""

    def __init__(self, env: dict, extra_args: list[str], log_path: Path):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py"), "--log-level", "WARNING", *extra_args],
            cwd=ROOT, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signum)

    def stop(self, timeout: float = 15.0) -> int:
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            return self.process.wait()
        finally:
            self.log.close()

    def kill(self) -> None:
        """SIGKILL the worker, its work-horse and its scheduler: no cleanup of any kind."""
        kill_session(self.process.pid, signal.SIGKILL)
        self.process.wait()



@pytest.fixture
def start_worker(app, base_env, tmp_path):
    """Start worker processes; they are stopped at the end of the test."""
    from redis import Redis
    from rq import Worker

    started: list[WorkerProcess] = []

    def start(*args: str, env: dict | None = None, wait: bool = True) -> WorkerProcess:
        env = {**base_env, **(env or {})}
        connection = Redis.from_url(env["REDIS_URL"])
        before = {w.name for w in Worker.all(connection=connection)}
        worker = WorkerProcess(env, list(args), tmp_path / f"worker{len(started)}.log")
        started.append(worker)
        if wait and "--burst" not in args:
            wait_until(
                lambda: {w.name for w in Worker.all(connection=connection)} - before
                or worker.process.poll() is not None,
                timeout=30, message="worker did not register with Redis",
            )
            assert worker.process.poll() is None, worker.output()
        return worker

    yield start
    for worker in started:
        worker.stop()
