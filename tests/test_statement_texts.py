"""Delivery's statements, and the operators' over many messages, keep one text for any number of them.

A driver keeps a prepared statement per text it has run (Python's sqlite3 up
to 128 per connection; psycopg prepares a text it sees often). An ``IN`` of
one parameter per id, or a multi-row INSERT of one row per attempt, has a new
text for every batch size, as large as its list: a worker kept one of each size
it met, and its memory grew with the sizes it had seen. Lists of ids go in as
one parameter; rows as one JSON list (SQLite) or one array per column
(PostgreSQL).
"""
from __future__ import annotations

import datetime as dt
import re
from contextlib import contextmanager

import pytest
from sqlalchemy import delete, event, update

from tests.support.factories import make_endpoint
from tests.support.receiver import Receiver
from webapp.delivery import claims, records
from webapp.delivery import health as rules
from webapp.delivery.engine import Engine
from webapp.delivery.outcome import not_sent
from webapp.domain import queue
from webapp.domain.delivery_stats import endpoint_stats
from webapp.domain.endpoint_health import hour_rates
from webapp.domain.events import emit_many
from webapp.domain.logbook.filters import LogFilter
from webapp.domain.logbook.resend import bulk_resend
from webapp.domain.metrics import rollup_totals
from webapp.domain.logbook.retention import purge
from webapp.extensions import db
from webapp.storage.models import Event, Message, PendingMessage, utcnow
from webapp.storage.statuses import FAILED, RESENT, RetryPolicy

pytestmark = pytest.mark.db

# The widest statement of a fixed width: a rollup row (35 columns); and on SQLite the claims' choice
# of up to 64 endpoints at once, four placeholders per endpoint whatever the number of messages.
MOST_PLACEHOLDERS = 40
BATCH = 150  # fewer than claims.MOST_PER_CLAIM: one claim takes them all


# A bound value's place in a statement's text: SQLite's driver takes ``?``, psycopg ``%(name)s`` or ``%s``.
PLACEHOLDER = re.compile(r"\?|%\(\w+\)s|%s")


@contextmanager
def widest_statements():
    """Yield a list that fills with (placeholders, text) of every statement run on the app's engine
    (counted in the text the driver gets: a multi-row INSERT's batch arrives as one text)."""
    seen = []

    def note(_conn, _cursor, statement, _parameters, _context, _executemany):
        seen.append((len(PLACEHOLDER.findall(statement)), statement))

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", note)


def a_choice_of_claims(count: int, text: str) -> bool:
    """One of SQLite's statements choosing a claim cycle's messages (claims.CHOOSE_WIDTHS): one branch
    per endpoint, four placeholders each."""
    branches = text.count("UNION ALL") + 1
    return text.startswith("SELECT 0 AS place") and branches in claims.CHOOSE_WIDTHS and count == 4 * branches


def too_wide(seen) -> list[str]:
    return sorted({f"{count} placeholders: {text[:160]}" for count, text in seen
                   if count > MOST_PLACEHOLDERS and not a_choice_of_claims(count, text)})


def test_delivering_large_batches_binds_no_placeholder_per_message(app):
    app.config["WEBHOOKS_RETRY_INTERVAL"] = 3600.0  # the failing endpoint's messages wait: delivery goes idle
    with Receiver() as good, Receiver(status=503) as bad:
        endpoint_ids = [make_endpoint(good.url, queue_batches=True, threads=1).id,
                        make_endpoint(good.url, queue_batches=False).id,
                        make_endpoint(bad.url, queue_batches=True, threads=1).id]
        emit_many([("checkout", f"c{i}", {"i": i}) for i in range(BATCH)])
        engine = Engine(app).start()
        try:
            with widest_statements() as seen:
                engine.wake(endpoint_ids)
                assert engine.wait_idle(60), "delivery did not go idle"
        finally:
            engine.stop()
        # The failing endpoint's health stops it after a few attempts: the rest of its claim is given back.
        assert len(good.requests) == 2 * BATCH and bad.requests
    assert seen, "no statement was seen: the listener is not on the engine delivery uses"
    assert too_wide(seen) == []


def test_every_list_the_claims_and_records_take_is_one_placeholder_or_one_row(app):
    endpoint_ids = [make_endpoint("http://127.0.0.1:9/", queue_batches=False).id for _ in range(50)]
    emit_many([("checkout", f"c{i}", {}) for i in range(BATCH // len(endpoint_ids))])  # a message per endpoint each
    owner, now = "test-worker", utcnow()
    until = now + dt.timedelta(seconds=60)
    plans = [claims.ClaimPlan(endpoint_id, rules.ALL_DUE, BATCH, until) for endpoint_id in endpoint_ids]
    with widest_statements() as seen, db.engine.begin() as conn:
        assert len(claims.read_endpoints(conn, endpoint_ids)) == len(endpoint_ids)
        assert claims.acquire_endpoints(conn, endpoint_ids, owner, until, now) == set(endpoint_ids)
        taken = [content for batch in claims.claim_many(conn, owner, plans, now) for content in batch]
        assert len(taken) == BATCH
        claims.release(conn, owner, [content.message_id for content in taken[:BATCH // 2]])
        outcome = not_sent("http://127.0.0.1:9/", "connection error: refused", now)
        records.record_many(conn, owner, [[(content, outcome) for content in taken[BATCH // 2:]]],
                            RetryPolicy(5, 10.0), 3600.0)
        claims.release_endpoints(conn, endpoint_ids, owner)
    assert len(seen) > 5
    assert too_wide(seen) == []


def test_retention_chooses_its_batches_in_the_database(app):
    endpoint_ids = [make_endpoint("http://127.0.0.1:9/").id for _ in range(3)]
    emit_many([("checkout", f"c{i}", {}) for i in range(BATCH // len(endpoint_ids))])
    db.session.execute(update(Message).values(created_at=utcnow() - dt.timedelta(days=91)))
    db.session.execute(update(Event).values(created_at=utcnow() - dt.timedelta(days=91)))
    db.session.commit()
    with widest_statements() as seen:
        report = purge(90, batch_size=BATCH - 7)  # a full batch, then one of 7
    assert (report.messages, report.events) == (BATCH, BATCH // len(endpoint_ids))
    assert too_wide(seen) == []


def test_emitting_a_list_of_events_binds_no_placeholder_per_event(app):
    make_endpoint("http://127.0.0.1:9/")
    with widest_statements() as seen:
        assert len(emit_many([("checkout", f"c{i}", {"i": i}) for i in range(BATCH)])) == BATCH
    assert too_wide(seen) == []


def test_the_operators_views_and_actions_bind_no_placeholder_per_message_or_endpoint(app, redis_server):
    """Queue view, dashboard and metrics over 50 endpoints; Try now and a bulk resend of 150 messages."""
    endpoint_ids = [make_endpoint("http://127.0.0.1:9/", actions=["checkout"]).id for _ in range(50)]
    busy = make_endpoint("http://127.0.0.1:9/busy", actions=["reward_claimed"])
    emit_many([("checkout", f"c{i}", {}) for i in range(2)] + [("reward_claimed", f"r{i}", {}) for i in range(BATCH)])
    later = utcnow() + dt.timedelta(hours=1)
    db.session.execute(update(PendingMessage).where(PendingMessage.endpoint_id == busy.id)
                       .values(next_attempt_at=later, is_retry=True))
    db.session.execute(update(Message).where(Message.endpoint_id == busy.id)
                       .values(next_attempt_at=later, status=RESENT))
    db.session.commit()
    with widest_statements() as seen:
        assert len(queue.backlogs(endpoint_ids)) == len(endpoint_ids)
        assert len(queue.next_due(endpoint_ids)) == len(endpoint_ids)
        assert len(endpoint_stats(endpoint_ids)) == len(endpoint_ids)
        hour_rates(endpoint_ids)
        rollup_totals(endpoint_ids)
        assert queue.try_now(busy) == BATCH
        db.session.execute(delete(PendingMessage))
        db.session.execute(update(Message).values(status=FAILED, next_attempt_at=None))
        db.session.commit()
        assert bulk_resend(LogFilter(endpoint=busy.id)) == BATCH
    assert too_wide(seen) == []
