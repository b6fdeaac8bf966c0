"""``python -m bench.claim_plans --database postgresql://... [--messages N]``: claim and record at N messages.

Seeds the dashboard benchmark's log (N messages over 10 endpoints, 90 days; a
failing endpoint with N/100 waiting, the others 20 each), then, in one of the
ledger's transactions (``Ledger.transaction``), claims 64 of the N/100 and
records them as delivered, and rolls back. Prints what each step read and
how long it took, twice: with statistics taken after seeding (a database that has
run a while) and with statistics taken while the queue was empty (a burst on a
fresh database, the case that misled PostgreSQL's planner). The plans go to
stderr. PostgreSQL only: SQLite has no planner statistics to mislead it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time

from sqlalchemy import text

from bench.dashboard import seed
from bench.log_pages import analyze, fresh_schema, make_app


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--database", required=True, help="a postgresql:// URL (its schema is replaced)")
    return parser.parse_args(argv)


def rows_read(conn) -> int:
    """Rows this transaction read from message and pending_message, tables and indexes."""
    tables = "('message', 'pending_message')"
    return int(conn.execute(text(
        "SELECT coalesce(sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)), 0) "
        f"FROM pg_stat_xact_user_tables WHERE relname IN {tables}")).scalar() + conn.execute(text(
            "SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(indexrelid)), 0) FROM pg_index "
            f"WHERE indrelid IN (SELECT oid FROM pg_class WHERE relname IN {tables})")).scalar())


def explain(conn, statement, values: dict) -> str:
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    return "\n".join(conn.exec_driver_sql("EXPLAIN " + compiled.string, {**compiled.params, **values}).scalars())


def claim_and_record(app, label: str) -> None:
    from webapp.delivery import claims, records
    from webapp.delivery import health as rules
    from webapp.delivery.engine import Engine
    from webapp.delivery.outcome import Outcome
    from webapp.extensions import db
    from webapp.storage.models import utcnow
    from webapp.storage.statuses import RetryPolicy

    # The failing endpoint's backlog of N/100, claimed as if it were healthy again; the seed makes it
    # due a minute from now.
    endpoint_id = db.session.scalar(text("SELECT min(endpoint_id) FROM pending_message"))
    db.session.rollback()
    ledger = Engine(app).ledger
    now = utcnow() + dt.timedelta(minutes=2)
    plan = claims.ClaimPlan(endpoint_id, rules.ALL_DUE, 64, now + dt.timedelta(seconds=30))
    with ledger.transaction() as conn:
        print(f"# {label}: choosing\n" + explain(conn, claims.CHOOSE_MANY_POSTGRESQL,
                                                   {"b_endpoints": [endpoint_id], "b_limits": [64], "b_now": now}),
              file=sys.stderr)
        before, started = rows_read(conn), time.perf_counter()
        [taken] = claims.claim_many(conn, ledger.settings.owner, [plan], now)
        claim_ms, claim_read = (time.perf_counter() - started) * 1000, rows_read(conn) - before
        done = [(content, Outcome(started_at=now, duration_ms=3, request_method="POST",
                                  request_url="http://127.0.0.1:9/", request_headers=[], request_body="{}",
                                  response_code=200)) for content in taken]
        before, started = rows_read(conn), time.perf_counter()
        records.record_many(conn, ledger.settings.owner, [done], RetryPolicy(5, 10.0), 3600)
        record_ms, record_read = (time.perf_counter() - started) * 1000, rows_read(conn) - before
        conn.rollback()  # the same messages again for the next measurement
    print(f"claim_{label}_messages {len(taken)} messages")
    print(f"claim_{label}_ms {claim_ms:.1f} ms")
    print(f"record_{label}_ms {record_ms:.1f} ms")
    print(f"claim_{label}_rows_read {claim_read} rows")
    print(f"record_{label}_rows_read {record_read} rows")


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.database.startswith(("postgresql://", "postgres://")):
        raise SystemExit("--database: a postgresql:// URL")
    app = make_app(args.database)
    with app.app_context():
        from webapp.extensions import db

        fresh_schema(app)
        # Statistics from an empty queue, then the burst: what a fresh database sees.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE pending_message"))
            conn.execute(text("ANALYZE message"))
        started = time.perf_counter()
        seed(db, args.messages)
        print(f"# seeded {args.messages:,} messages in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        claim_and_record(app, "stale_statistics")
        analyze(db)
        claim_and_record(app, "fresh_statistics")
    return 0


if __name__ == "__main__":
    sys.exit(main())
