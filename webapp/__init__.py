"""Webhooks module: record customer actions and deliver them as webhook messages."""
from __future__ import annotations

import os
from pathlib import Path

from flask import Flask
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import configure_mappers
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import PROJECT_ROOT, load_config
from .extensions import db, htmx, migrate


def create_app(config: dict | None = None) -> Flask:
    instance_path = os.environ.get("WEBHOOKS_INSTANCE_PATH") or str(PROJECT_ROOT / "instance")
    app = Flask(
        __name__,
        instance_path=instance_path,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.config.update(load_config(Path(app.instance_path)))
    app.config.update(config or {})
    hops = app.config["WEBHOOKS_PROXY_HOPS"]
    if hops:
        # Client address (login rate limit), scheme and host as the proxies saw them.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    db.init_app(app)
    htmx.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"), render_as_batch=True)

    from .runtime import cli
    from .web import (
        api,
        auth,
        dashboard,
        log,
        login,
        metrics,
        openapi,
        operators,
        queue,
        security,
        settings,
        shell,
        template_helpers,
    )
    from .web.ids import CONVERTERS

    app.url_map.converters.update(CONVERTERS)  # before any route uses them
    security.init_app(app)
    template_helpers.register(app)
    auth.init_app(app)
    app.register_blueprint(shell.bp)
    app.register_blueprint(login.bp)
    app.register_blueprint(settings.bp)
    app.register_blueprint(log.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(queue.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(operators.bp)
    app.register_blueprint(api.bp)
    security.exempt(api.bp)  # bearer tokens, not cookies
    openapi.check_documented(app)  # an API route the OpenAPI document would miss stops the app here
    cli.register(app)
    # Configure the ORM now, before any thread or fork: the first query does it under a process-wide
    # lock, and a worker that forked a job while its maintenance thread held that lock left the job
    # hung for good (seen as test_jobs failing about one run in three).
    configure_mappers()
    return app


@sa_event.listens_for(Engine, "connect")
def _tune_sqlite(dbapi_connection, _record):
    """WAL and a busy timeout let the web app and several workers share one file."""
    if type(dbapi_connection).__module__ != "sqlite3":
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    busy_ms = int(os.environ.get("WEBHOOKS_SQLITE_BUSY_TIMEOUT_MS", "30000"))
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # 256 KiB of page cache per connection, not SQLite's 2 MiB: a worker holds up to 15 pooled
    # connections, and their caches filled as the file grew (a worker's RSS +27 % from 10,000 to
    # 100,000 deliveries). The OS keeps the file's pages cached anyway.
    cursor.execute("PRAGMA cache_size=-256")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
