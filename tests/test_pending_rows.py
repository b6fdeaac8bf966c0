"""Delivery's queue (``pending_message``) and the log (``message``) never disagree.

A message waits to be sent exactly while it has a pending row: emit and resend
add one, an outcome ends or reschedules it, Try now and deleting the endpoint
move or end it, the sweep recovers its lease. A waiting message without a row
would never be sent; a final one with a row would be sent again.
"""
from __future__ import annotations

import datetime as dt

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, select, text, update

from tests.conftest import ROOT
from tests.support.factories import attempts_of, make_endpoint
from tests.support.receiver import Receiver
from webapp.delivery import claims, postgresql_bulk, records
from webapp.delivery import health as rules
from webapp.delivery.engine import Engine
from webapp.delivery.ledger import Ledger
from webapp.delivery.outcome import not_sent
from webapp.domain import endpoints as endpoint_service
from webapp.domain import queue
from webapp.domain.events import emit_many
from webapp.domain.logbook.resend import queue_resend
from webapp.extensions import db
from webapp.storage.models import Message, PendingMessage, utcnow
from webapp.storage.statuses import DONE, FAILED, QUEUED, RESENT, RetryPolicy

pytestmark = pytest.mark.db


def pairs() -> list[tuple]:
    """(message status, next_attempt_at, its pending row's (next_attempt_at, is_retry, lease_owner) or None)."""
    db.session.rollback()
    rows = db.session.execute(
        select(Message.id, Message.status, Message.next_attempt_at, PendingMessage.next_attempt_at,
               PendingMessage.is_retry, PendingMessage.lease_owner)
        .outerjoin(PendingMessage, PendingMessage.message_id == Message.id).order_by(Message.id)
    ).all()
    db.session.rollback()
    return rows


def assert_in_step() -> None:
    for message_id, status, due, pending_due, is_retry, _ in pairs():
        if status in (DONE, FAILED):
            assert due is None and pending_due is None, f"message {message_id} is {status} but still queued"
        else:
            assert pending_due is not None, f"message {message_id} is {status} with nothing to deliver it"
            assert pending_due == due and bool(is_retry) == (status == RESENT), message_id


def deliver(app, endpoint_ids) -> None:
    engine = Engine(app).start()
    try:
        engine.wake(endpoint_ids)
        assert engine.wait_idle(20), "delivery did not go idle"
    finally:
        engine.stop()


def test_emit_delivery_retries_resend_try_now_and_delete_keep_queue_and_log_in_step(app):
    app.config["WEBHOOKS_RETRY_INTERVAL"] = 3600.0  # a retry waits: delivery goes idle after the first attempts
    with Receiver() as good, Receiver(status=500) as bad:
        ok, failing = make_endpoint(good.url), make_endpoint(bad.url)
        ok_id, failing_id = ok.id, failing.id
        emit_many([("checkout", f"c{i}", {"i": i}) for i in range(12)])
        assert len([row for row in pairs() if row[3] is not None]) == 24
        assert_in_step()

        deliver(app, [ok_id, failing_id])
        statuses = {status for _, status, *_ in pairs()}
        assert DONE in statuses and RESENT in statuses
        assert all(lease is None for *_, lease in pairs())
        assert_in_step()

        done = db.session.scalars(select(Message).where(Message.status == DONE)).first()
        copy = queue_resend(done)
        assert copy is not None and copy.pending is not None and not copy.pending.is_retry
        assert_in_step()

        retrying = [due for _, status, due, *_ in pairs() if status == RESENT]
        assert retrying and all(due > utcnow() for due in retrying)
        moved = queue.try_now(db.session.get(type(ok), failing_id))
        assert moved == len(retrying)
        assert all(due <= utcnow() for _, status, due, *_ in pairs() if status == RESENT)
        assert_in_step()

        cancelled = endpoint_service.delete(db.session.get(type(ok), failing_id))
        assert cancelled == 12
        assert not db.session.scalars(select(PendingMessage).where(PendingMessage.endpoint_id == failing_id)).all()
        assert_in_step()


def lease_everything(owner: str, until: dt.datetime) -> None:
    db.session.execute(update(PendingMessage).values(lease_owner=owner, lease_until=until))
    db.session.commit()


@pytest.mark.parametrize(("attempts_before", "ends"), [(0, RESENT), (5, FAILED)])
def test_an_expired_lease_counts_as_an_interrupted_attempt_and_the_queue_follows(app, attempts_before, ends):
    make_endpoint("http://127.0.0.1:9/")
    [event] = emit_many([("checkout", "c1", {})])
    message_id = event.messages[0].id
    db.session.execute(update(Message).where(Message.id == message_id).values(attempts=attempts_before))
    now = utcnow()
    lease_everything("a-worker-that-died", now - dt.timedelta(seconds=1))

    with db.engine.begin() as conn:
        assert records.recover_expired_leases(conn, RetryPolicy(5, 10.0), now) == 1
    [(_, status, due, pending_due, is_retry, lease)] = pairs()
    assert status == ends and lease is None
    if ends == RESENT:
        assert due == now and pending_due == now and is_retry
    else:
        assert due is None and pending_due is None
    assert_in_step()


def test_an_outcome_written_after_the_lease_moved_on_changes_neither_the_message_nor_its_row(app):
    make_endpoint("http://127.0.0.1:9/")
    [event] = emit_many([("checkout", "c1", {})])
    now = utcnow()
    with db.engine.begin() as conn:
        [[content]] = claims.claim_many(conn, "first-worker", [claims.ClaimPlan(
            event.messages[0].endpoint_id, rules.ALL_DUE, 64, now + dt.timedelta(seconds=30))], now)
    # The first worker's lease expired, the sweep recovered it and another worker holds it now.
    lease_everything("second-worker", now + dt.timedelta(seconds=30))

    outcome = not_sent("http://127.0.0.1:9/", "connection error: refused", now)
    with db.engine.begin() as conn:
        records.record_many(conn, "first-worker", [[(content, outcome)]], RetryPolicy(5, 10.0), 3600)
    [(_, status, due, pending_due, is_retry, lease)] = pairs()
    assert (status, lease, is_retry) == (QUEUED, "second-worker", False)
    assert due == pending_due
    assert len(attempts_of(content.message_id)) == 1  # the attempt happened: the log keeps it


def test_a_claim_reads_only_the_rows_it_takes_whatever_the_statistics_say(app):
    """On PostgreSQL, with statistics taken while the table was empty, the planner expected a
    row or two per endpoint and read and sorted an endpoint's whole backlog on every claim."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the plan question is PostgreSQL's: SQLite walks the index it is given")
    endpoint_id = make_endpoint("http://127.0.0.1:9/").id
    db.session.execute(text("ANALYZE pending_message"))
    db.session.commit()
    emit_many([("checkout", f"c{i}", {}) for i in range(3000)])
    now = utcnow()
    with ledger_of(app).transaction() as conn:
        before = rows_read(conn)
        [taken] = claims.claim_many(conn, "a-worker", [claims.ClaimPlan(
            endpoint_id, rules.ALL_DUE, 64, now + dt.timedelta(seconds=30))], now)
        read = rows_read(conn) - before
    assert len(taken) == 64
    # Per row taken: the walk reads an index entry and the row, the update finds it again by key
    # (another two). Reading and sorting the backlog read 6,128 here.
    assert read <= 5 * 64, f"a claim of 64 read {read} rows of the backlog of 3,000"


def test_no_statement_of_the_ledger_is_compiled_however_costly_its_penalties_make_it_look(app):
    """Renewing the in-order leases keeps a scan of ``endpoint`` (lease_owner has no index). The ledger's
    penalties on scans put its cost past jit_above_cost, and LLVM compiled and optimised it on every
    renewal: 0.2-0.5 s holding the ledger (EXPLAIN ANALYZE, and PostgreSQL's log during a drain)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("JIT compiling is PostgreSQL's")
    if not db.session.scalar(text("SELECT pg_jit_available()")):
        pytest.skip("this PostgreSQL server cannot compile (no llvmjit): nothing to keep it from")
    make_endpoint("http://127.0.0.1:9/", queue_batches=False)
    db.session.commit()
    with ledger_of(app).transaction() as conn:
        threshold = float(conn.execute(text("SHOW jit_above_cost")).scalar())
        [explained] = conn.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) UPDATE endpoint SET lease_until = now() "
                                        "WHERE lease_owner = 'a-worker'")).scalar()
    assert explained["Plan"]["Total Cost"] > threshold, "the statement no longer looks costly: pick another"
    assert "JIT" not in explained, explained["JIT"]


def test_only_the_ledger_commits_without_waiting_for_the_flush_and_its_setting_stays_in_its_transaction(app):
    """The next transaction on the ledger's own pooled connection, and the app's session (where emits
    and resends commit), keep PostgreSQL's synchronous commit (see COMMIT_WITHOUT_FLUSH)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("synchronous_commit is PostgreSQL's (SQLite's: synchronous=NORMAL for every transaction)")
    ledger = ledger_of(app)
    ledger.sql_engine.dispose()  # an empty pool: both transactions below get the connection the first opens
    with ledger.transaction() as conn:
        backend = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        assert conn.execute(text("SHOW synchronous_commit")).scalar() == "off"
    with ledger.sql_engine.begin() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == backend
        assert conn.execute(text("SHOW synchronous_commit")).scalar() == "on"
    assert db.session.scalar(text("SHOW synchronous_commit")) == "on"


def test_recording_a_batch_finds_each_pending_row_by_key_not_by_comparing_it_with_every_lease(app):
    """On PostgreSQL, with statistics taken before the leases, the planner read the worker's leased rows
    through their small index and compared each with every outcome of the batch (200 x 200)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the plan question is PostgreSQL's (SQLite's: test_recording_a_batch_on_sqlite_finds_each_row_by_key)")
    endpoint_id = make_endpoint("http://127.0.0.1:9/").id
    emit_many([("checkout", f"c{i}", {}) for i in range(1000)])
    db.session.execute(text("ANALYZE"))
    db.session.commit()
    now = utcnow()
    with ledger_of(app).transaction() as conn:
        [taken] = claims.claim_many(conn, "a-worker", [claims.ClaimPlan(
            endpoint_id, rules.ALL_DUE, 200, now + dt.timedelta(seconds=30))], now)
        rows = [{"b_id": content.message_id, "status": DONE if content.message_id % 2 else RESENT, "attempts": 1,
                 "response_code": 200, "response_class": 2, "last_attempt_at": now,
                 "next_attempt_at": None if content.message_id % 2 else now + dt.timedelta(seconds=10)}
                for content in taken]
        values = {**postgresql_bulk.columns(rows, postgresql_bulk.STATUS_TYPES), "b_owner": "a-worker"}
        with conn.connection.driver_connection.cursor(binary=True) as cursor:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + postgresql_bulk.RECORD_STATUSES, values)
            [[plan]] = cursor.fetchall()
        changed = conn.execute(select(func.count()).select_from(Message).where(Message.attempts == 1)).scalar()
        conn.rollback()
    assert len(taken) == 200 and changed == 200
    compared = sum(node.get("Rows Removed by Join Filter", 0) for node in plan_nodes(plan[0]["Plan"]))
    assert compared < len(taken), f"recording 200 outcomes compared {compared} pairs of rows"


def plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


def ledger_of(app) -> Ledger:
    return Engine(app).ledger


def rows_read(conn) -> int:
    """Rows this transaction has read from pending_message and its indexes so far."""
    return conn.execute(text(
        "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables "
        "WHERE relname = 'pending_message'")).scalar() + conn.execute(text(
            "SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(indexrelid)), 0) FROM pg_index "
            "WHERE indrelid = 'pending_message'::regclass")).scalar()


def test_the_migration_moves_waiting_messages_and_their_leases_into_the_queue_and_back(app):
    make_endpoint("http://127.0.0.1:9/")
    events = emit_many([("checkout", f"c{i}", {}) for i in range(3)])
    waiting, leased, finished = (event.messages[0].id for event in events)
    until = utcnow().replace(microsecond=0) + dt.timedelta(minutes=5)
    db.session.execute(text("DELETE FROM pending_message"))
    db.session.commit()
    db.session.remove()
    migrations = str(ROOT / "migrations")
    downgrade(directory=migrations, revision="0006_customer_prefix")
    try:
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE message SET status = 'resent' WHERE id = :id"), {"id": waiting})
            conn.execute(text("UPDATE message SET lease_owner = 'w1', lease_until = :until WHERE id = :id"),
                         {"id": leased, "until": until})
            conn.execute(text("UPDATE message SET status = 'done', next_attempt_at = NULL WHERE id = :id"),
                         {"id": finished})
            conn.execute(text("INSERT INTO attempt (message_id, number, started_at, duration_ms, request_method, "
                              "request_url, request_headers, request_body, response_headers, response_body, "
                              "response_truncated) VALUES (:id, 1, :at, 5, 'POST', 'http://127.0.0.1:9/', '[]', '', "
                              "'[]', '', false)"), {"id": finished, "at": until})
    finally:
        upgrade(directory=migrations)
    rows = {row.message_id: row for row in db.session.scalars(select(PendingMessage))}
    assert set(rows) == {waiting, leased}
    assert rows[waiting].is_retry and rows[waiting].lease_owner is None
    assert not rows[leased].is_retry and (rows[leased].lease_owner, rows[leased].lease_until) == ("w1", until)
    assert [a.duration_ms for a in attempts_of(finished)] == [5]  # the log's attempts survive the migration
    assert_in_step()
    db.session.remove()

    downgrade(directory=migrations, revision="0006_customer_prefix")
    try:
        with db.engine.connect() as conn:
            back = conn.execute(text("SELECT id, lease_owner FROM message WHERE lease_owner IS NOT NULL")).all()
    finally:
        upgrade(directory=migrations)
    assert [tuple(row) for row in back] == [(leased, "w1")]


def test_a_message_a_worker_holds_says_it_is_being_sent_in_the_log_and_on_its_page(operator):
    make_endpoint("http://127.0.0.1:9/")
    held, waiting = (event.messages[0].id for event in emit_many([("checkout", f"c{i}", {}) for i in range(2)]))
    db.session.execute(update(PendingMessage).where(PendingMessage.message_id == held)
                       .values(lease_owner="a-worker", lease_until=utcnow() + dt.timedelta(seconds=30)))
    db.session.commit()

    log = operator.get("/log").get_data(as_text=True)
    assert log.count("sending now") == 1
    assert "sending now" in operator.get(f"/log/{held}").get_data(as_text=True)
    assert "sending now" not in operator.get(f"/log/{waiting}").get_data(as_text=True)


def test_two_claims_of_one_endpoint_in_the_same_transaction_never_share_a_message(app):
    """Two lanes of an endpoint may ask in the same cycle of the ledger: its own row locks do not hold
    the second back, only the first one's lease does."""
    endpoint_id = make_endpoint("http://127.0.0.1:9/").id
    emit_many([("checkout", f"c{i}", {}) for i in range(10)])
    now = utcnow()
    plan = claims.ClaimPlan(endpoint_id, rules.ALL_DUE, 6, now + dt.timedelta(seconds=30))
    with ledger_of(app).transaction() as conn:
        first, second = claims.claim_many(conn, "a-worker", [plan, plan], now)
    ids = [content.message_id for content in first + second]
    assert len(first) == 6 and len(second) == 4 and len(set(ids)) == 10


@pytest.mark.parametrize("queue_batches", [True, False])
def test_no_claim_takes_more_than_the_cap_however_many_a_lane_asks_for(app, queue_batches):
    """Every claim is one transaction (on SQLite one the other workers wait for): a lane asking the
    ledger for thousands gets claims.MOST_PER_CLAIM, oldest first."""
    endpoint_id = make_endpoint("http://127.0.0.1:9/", queue_batches=queue_batches).id
    emit_many([("checkout", f"c{i}", {}) for i in range(claims.MOST_PER_CLAIM + 30)])
    ledger = ledger_of(app)
    ledger.start()
    try:
        claimed = ledger.claim(endpoint_id, 10_000).result(timeout=20)
    finally:
        ledger.stop()
    ids = [content.message_id for content in claimed.messages]
    every_id = db.session.execute(select(Message.id).order_by(Message.id)).scalars().all()
    assert ids == every_id[:claims.MOST_PER_CLAIM]
    db.session.rollback()


@pytest.mark.parametrize("statement", ["RECORD_STATUSES", "FINISH", "RESCHEDULE"])
def test_recording_a_batch_on_sqlite_finds_each_row_by_key(app, statement):
    """sqlite_bulk's statements read their rows from one JSON list: each must look its message and
    pending row up by key, never walk a table."""
    from webapp.delivery import sqlite_bulk

    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's statements")
    with db.engine.connect() as conn:
        plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + getattr(sqlite_bulk, statement),
                                                       ("[[1, 2]]", "a-worker"))]
    walks = [step for step in plan if step.startswith("SCAN") and "VIRTUAL TABLE" not in step]
    assert walks == [] and any("PRIMARY KEY" in step for step in plan), plan
