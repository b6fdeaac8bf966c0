"""Dashboard, queue view and /metrics at 10 million messages:
``python -m bench.dashboard [--messages N] [--minute-days D] [--database URL]``.

Seeds a fresh database with N messages (default 10,000,000) over 90 days for 10
endpoints, one of which is down with a backlog of N/100 messages, and the rollups
those messages would have left: stats_hour (90 days x 24 h x 10 endpoints) and
stats_minute (90 days x 1,440 min x 10 endpoints, never pruned). Rows are generated
by the database itself (INSERT ... SELECT), which is what makes 10 million possible;
stats_day gets its 90 x 10 rows too. ``--minute-days`` seeds fewer days of stats_minute (``--quick``:
7, 100,800 rows instead of 1.3 million, which took 10 s of its two minutes on SQLite).
Then, through the real app, logged in: the dashboard (all endpoints, and one), the
queue view and a /metrics scrape, median of 5 requests each. Every query the
dashboard runs is EXPLAINed: none may scan the message or rollup tables whole.

Prints ``dashboard_<dialect>_ms`` (target < 100; wall clock), ``dashboard_<dialect>_cpu_ms`` (the
app's CPU time per request, which a busy shared machine does not inflate), ``dashboard_one_<dialect>_ms``,
``queue_<dialect>_ms``, ``metrics_<dialect>_ms`` and ``dashboard_plans_<dialect>_ok`` (1 or 0).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import event, text

from bench.log_pages import analyze, fresh_schema, logged_in_client, make_app, median_ms
from bench.stack import DatabaseKind, Figure

ENDPOINTS = 10
DAYS = 90


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--minute-days", type=int, default=DAYS, help="days of per-minute rollups (default: all 90)")
    parser.add_argument("--database", help="SQLAlchemy URL (default: a fresh SQLite file)")
    parser.add_argument("--reuse", action="store_true",
                        help="measure a PostgreSQL database this benchmark seeded before (seeding 10 million takes a while)")
    return parser.parse_args(argv)


def numbers(dialect: str, count: int) -> tuple[str, str]:
    """(a WITH prefix, a FROM source) yielding i = 0 .. count-1."""
    if dialect == "postgresql":
        return "", f"generate_series(0::bigint, {count - 1}) AS g(i)"
    return (f"WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < {count - 1}) ", "g")


def sql_time(dialect: str, seconds_ago: str, truncate: str = "second") -> str:
    """An SQL timestamp ``seconds_ago`` (an SQL expression) before now, truncated, as the app stores it."""
    if dialect == "postgresql":
        return f"date_trunc('{truncate}', (now() AT TIME ZONE 'utc')) - ({seconds_ago}) * interval '1 second'"
    start = {"second": "'now'", "minute": "strftime('%Y-%m-%d %H:%M:00', 'now')",
             "hour": "strftime('%Y-%m-%d %H:00:00', 'now')", "day": "strftime('%Y-%m-%d 00:00:00', 'now')"}[truncate]
    # Microseconds written out as SQLAlchemy does, so text comparisons with its parameters hold.
    return f"strftime('%Y-%m-%d %H:%M:%S.000000', {start}, '-' || ({seconds_ago}) || ' seconds')"


def event_id(dialect: str, number: str) -> str:
    return f"lpad(({number})::text, 32, '0')" if dialect == "postgresql" else f"printf('%032d', {number})"


def seed(db, messages: int, minute_days: int = DAYS) -> None:
    from webapp.storage.models import Endpoint

    dialect = db.engine.dialect.name
    for n in range(ENDPOINTS):
        endpoint = Endpoint(url=f"http://127.0.0.1:9/{n}", name=f"endpoint {n}")
        endpoint.actions = ["*"]
        if n == 0:
            endpoint.health, endpoint.consecutive_failures = "failing", 50
        db.session.add(endpoint)
    db.session.commit()
    first = db.session.scalar(text("SELECT min(id) FROM endpoint"))
    span = DAYS * 86400
    events = max(messages // ENDPOINTS, 1)  # one event fans out to every endpoint
    run = lambda sql: (db.session.execute(text(sql)), db.session.commit())  # noqa: E731
    with_, source = numbers(dialect, events)
    run(f"{with_}INSERT INTO event (id, action, customer, data, created_at, is_test) "
        f"SELECT {event_id(dialect, 'i')}, 'checkout', 'customer-' || (i % 50000), '{{}}', "
        f"{sql_time(dialect, f'{span} - i * {span} / {events}')}, false FROM {source}")
    with_, source = numbers(dialect, messages)
    run(f"{with_}INSERT INTO message (event_id, endpoint_id, action, customer, status, attempts, response_code, "
        f"response_class, created_at, last_attempt_at, is_test) "
        f"SELECT {event_id(dialect, f'i / {ENDPOINTS}')}, {first} + i % {ENDPOINTS}, 'checkout', "
        f"'customer-' || (i / {ENDPOINTS} % 50000), 'done', 1, 200, 2, "
        f"{sql_time(dialect, f'{span} - i / {ENDPOINTS} * {span} / {events}')}, "
        f"{sql_time(dialect, f'{span} - i / {ENDPOINTS} * {span} / {events}')}, false FROM {source}")
    # The failing endpoint: its last N/100 messages wait (a fifth for a retry); the others have a few in flight.
    backlog = max(messages // 100, 10)
    for endpoint_id, waiting in [(first, backlog)] + [(first + n, 20) for n in range(1, ENDPOINTS)]:
        run(f"UPDATE message SET status = CASE WHEN id % 5 = 0 THEN 'resent' ELSE 'queued' END, "
            f"attempts = CASE WHEN id % 5 = 0 THEN 2 ELSE 0 END, response_code = NULL, response_class = NULL, "
            f"next_attempt_at = {sql_time(dialect, '-60')} WHERE id IN (SELECT id FROM message "
            f"WHERE endpoint_id = {endpoint_id} ORDER BY id DESC LIMIT {waiting})")
    run("INSERT INTO pending_message (message_id, endpoint_id, next_attempt_at, is_retry) "
        "SELECT id, endpoint_id, next_attempt_at, status = 'resent' FROM message WHERE next_attempt_at IS NOT NULL")
    for table, seconds, truncate, days in (("stats_day", 86400, "day", DAYS), ("stats_hour", 3600, "hour", DAYS),
                                           ("stats_minute", 60, "minute", minute_days)):
        periods = days * 86400 // seconds
        per_row = max(messages // (periods * ENDPOINTS), 1)
        with_, source = numbers(dialect, periods * ENDPOINTS)
        # Per row: per_row messages done (varying), a few retried and failed, latency mostly under a second.
        done = f"({per_row} + i % 7)"
        latency = {"l1": f"{done} / 2", "l2": f"{done} / 4", "l3": f"{done} / 8",
                   "l9": f"{done} - {done} / 2 - {done} / 4 - {done} / 8"}
        columns = {"attempts": f"{done} + i % 3 + i % 2", "succeeded": done, "done": done, "failed": "i % 2",
                   "retried": "i % 3", "duration_ms": f"{done} * 40", "latency_ms": f"{done} * 300",
                   **{f"d{k}": (done if k == 1 else "0") for k in range(11)},
                   **{f"l{k}": latency.get(f"l{k}", "0") for k in range(15)}}
        run(f"{with_}INSERT INTO {table} (endpoint_id, start, {', '.join(columns)}) "
            f"SELECT {first} + i % {ENDPOINTS}, "
            f"{sql_time(dialect, f'(i / {ENDPOINTS}) * {seconds}', truncate)}, "
            f"{', '.join(columns.values())} FROM {source}")


def plans_ok(db, client, path: str) -> bool:
    """EXPLAIN every statement the page runs on messages and rollups: no whole-table scan."""
    statements = []

    def note(_conn, _cursor, statement, parameters, _context, _many):
        if any(t in statement for t in ("FROM message", "FROM stats_hour", "FROM stats_minute")):
            statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        client.get(path)
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    dialect, good = db.engine.dialect.name, True
    with db.engine.connect() as conn:
        for statement, parameters in statements:
            prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
            raw = conn.exec_driver_sql(prefix + statement, parameters)
            plan = "\n".join(str(row[-1]) for row in raw)
            # SQLite "SCAN message" without an index, PostgreSQL "Seq Scan on message"; a scan of a
            # capped subquery's few rows ("SCAN anon_2") or of the endpoint table is fine.
            whole = [line for line in plan.splitlines()
                     if any(f"SCAN {table}" in line and "INDEX" not in line for table in ("message", "stats_"))
                     or "Seq Scan on message" in line or "Seq Scan on stats_" in line]
            if whole:
                good = False
                print(f"# whole-table scan in: {statement[:200]}\n#   {plan}", file=sys.stderr)
    return good


def prepare(app, messages: int, minute_days: int = DAYS) -> str:
    """A fresh schema, seeded and analysed; returns the dialect's name."""
    from webapp.extensions import db

    fresh_schema(app)
    started = time.perf_counter()
    seed(db, messages, minute_days)
    analyze(db)
    print(f"# seeded {messages:,} messages on {db.engine.dialect.name} in {time.perf_counter() - started:.0f} s",
          file=sys.stderr, flush=True)
    return db.engine.dialect.name


def figures(database: DatabaseKind, messages: int, minute_days: int = DAYS) -> list[Figure]:
    """For ``python -m bench``: this benchmark in a process of its own, its lines as figures."""
    command = [sys.executable, "-m", "bench.dashboard", "--messages", str(messages), "--minute-days", str(minute_days)]
    if database.url:
        command += ["--database", database.url]
    done = subprocess.run(command, capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parent.parent)
    found = []
    for line in done.stdout.splitlines():
        name, value, unit = line.split()
        found.append(Figure(name, float(value), unit))
    return found


def cpu_ms(client, path: str) -> float:
    """The CPU time of this process per request (median of 5): what the page costs on a busy machine."""
    timings = []
    for _ in range(5):
        start = time.process_time()
        client.get(path)
        timings.append((time.process_time() - start) * 1000)
    return statistics.median(timings)


def main(argv=None) -> int:
    args = parse_args(argv)
    app = make_app(args.database)
    with app.app_context():
        from webapp.extensions import db

        if args.reuse:
            dialect = db.engine.dialect.name
            db.session.execute(text("DELETE FROM \"user\""))
            db.session.commit()
        else:
            dialect = prepare(app, args.messages, args.minute_days)
        client = logged_in_client(app)
        app.config["WEBHOOKS_METRICS_TOKEN"] = "bench"
        one = db.session.scalar(text("SELECT min(id) FROM endpoint"))
        found = {
            f"dashboard_{dialect}_ms": median_ms(client, "/dashboard"),
            f"dashboard_{dialect}_cpu_ms": cpu_ms(client, "/dashboard"),
            f"dashboard_one_{dialect}_ms": median_ms(client, f"/dashboard?endpoint={one}"),
            f"queue_{dialect}_ms": median_ms(client, "/queue"),
        }
        client.environ_base["HTTP_AUTHORIZATION"] = "Bearer bench"
        found[f"metrics_{dialect}_ms"] = median_ms(client, "/metrics")
        for name, value in found.items():
            print(f"{name} {value:.1f} ms", flush=True)
        good = plans_ok(db, client, "/dashboard") and plans_ok(db, client, "/queue")
        print(f"dashboard_plans_{dialect}_ok {int(good)} bool", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
