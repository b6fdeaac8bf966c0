"""Log list response times at a million messages: ``python -m bench.log_pages [--rows N] [--database URL]``.

Seeds N messages (default 1,000,000) into a fresh database, then times the Log
page through the real Flask app (logged in, as a browser would ask for it):
the first page, a deep page, and each filter. Prints ``name value unit`` lines
(median of 5 requests each).
"""
from __future__ import annotations

import argparse
import atexit
import os
import re
import shutil
import statistics
import tempfile
import time

from cryptography.fernet import Fernet
from sqlalchemy import func, select, text

REPEATS = 5


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database", help="SQLAlchemy URL (default: a fresh SQLite file)")
    return parser.parse_args(argv)


def make_app(database: str | None):
    instance = tempfile.mkdtemp(prefix="bench-log-")
    atexit.register(shutil.rmtree, instance, ignore_errors=True)  # a million-row SQLite file is big
    os.environ.update(WEBHOOKS_INSTANCE_PATH=instance, SECRET_KEY="bench", REDIS_URL="",
                      WEBHOOKS_ENCRYPTION_KEY=Fernet.generate_key().decode(), WEBHOOKS_LOGIN_RATE_LIMIT="1000/minute")
    os.environ["DATABASE_URL"] = database or f"sqlite:///{instance}/bench.db"
    from webapp import create_app

    return create_app()


def fresh_schema(app) -> None:
    from flask_migrate import upgrade

    from webapp.extensions import db

    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(directory=os.path.join(os.path.dirname(__file__), "..", "migrations"))


def analyze(db) -> None:
    """Fresh planner statistics after seeding, as a long-running database would have."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        db.session.execute(text("ANALYZE"))
        db.session.commit()


def logged_in_client(app):
    from webapp.domain.users import create_user

    create_user("bench@example.com", "bench-password")
    client = app.test_client()
    token = re.search(r'"X-CSRFToken": "([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", data={"email": "bench@example.com", "password": "bench-password", "csrf_token": token})
    return client


def median_ms(client, path: str) -> float:
    timings = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(timings)


def main(argv=None) -> int:
    args = parse_args(argv)
    app = make_app(args.database)
    with app.app_context():
        from bench.seeding import seed_log
        from webapp.extensions import db
        from webapp.storage.models import Message

        fresh_schema(app)
        dialect = db.engine.dialect.name
        start = time.perf_counter()
        seed_log(args.rows)
        analyze(db)
        print(f"log_seed_{dialect}_rows {args.rows} messages ({time.perf_counter() - start:.0f} s)", flush=True)
        deep = db.session.scalar(select(func.min(Message.id))) + 1000
        customer = db.session.scalar(select(Message.customer).where(Message.id == deep))
        day = db.session.scalar(select(Message.created_at).where(Message.id == deep)).date()
        newest = db.session.scalar(select(func.max(Message.id)))
        client = logged_in_client(app)
        pages = {
            "first_page": "/log",
            "deep_page": f"/log?before={deep}",
            "code_exact": "/log?code=404",
            "code_class_5xx": "/log?code=5xx",
            "status_failed": "/log?status=failed",
            "action": "/log?action=tier_change",
            "customer": f"/log?customer={customer}",
            # Prefixes: a few customers (customer-123 is also customer-1230..1239), and a fifth of the log.
            "customer_prefix_narrow": f"/log?customer={customer[:-1]}",
            "customer_prefix_broad": "/log?customer=customer-1",
            "newer_page": f"/log?after={deep}",
            "new_count_1000": f"/log/new?after={newest - 1000}",
            "date_range": f"/log?created_from={day}&created_to={day}",
            "combined": f"/log?code=5xx&status=failed&action=checkout&created_from={day}",
            "combined_deep": f"/log?status=resent&action=opt_in&before={deep + 500_000}",
        }
        for name, path in pages.items():
            print(f"log_{name}_{dialect}_ms {median_ms(client, path):.1f} ms", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
