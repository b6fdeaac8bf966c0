"""A worker's ledger compiles its claim statements as it starts, not during its first claim cycle,
which every lane of a fan-out waits for; and a database it cannot reach yet does not stop it starting."""
from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import create_engine, event, select

from tests.support.factories import make_endpoint
from webapp.delivery import claims
from webapp.delivery import health as rules
from webapp.delivery.ledger import Ledger, Settings
from webapp.domain.events import emit_many
from webapp.extensions import db
from webapp.storage.models import PendingMessage, utcnow
from webapp.storage.statuses import RetryPolicy

pytestmark = pytest.mark.db


def settings(app) -> Settings:
    return Settings(owner="compile-ahead-test", policy=RetryPolicy.from_config(app.config), max_retry_after=300,
                    disable_after=86400, lease_margin=30)


def compiled_while_claiming(sql_engine, work) -> list[str]:
    """The statements SQLAlchemy had to compile (not found in its cache) while ``work`` ran."""
    compiled = []

    def note(_conn, _cursor, statement, _parameters, context, _many):
        if context.cache_hit is context.dialect.CACHE_MISS:
            compiled.append(statement)

    event.listen(sql_engine, "before_cursor_execute", note)
    try:
        work()
    finally:
        event.remove(sql_engine, "before_cursor_execute", note)
    return compiled


@pytest.mark.parametrize("queue_batches", [False, True], ids=["in order", "queue batches"])
def test_the_first_claim_cycle_of_a_new_ledger_compiles_nothing(app, queue_batches):
    endpoint = make_endpoint("http://127.0.0.1:9/hook", actions=["checkout"], queue_batches=queue_batches)
    emit_many([("checkout", f"customer-{n}", {"n": n}) for n in range(3)])
    fresh = create_engine(db.engine.url)  # a cache of compiled statements as empty as a new worker's
    ledger = Ledger(fresh, settings(app))
    try:
        ledger.start()
        claimed = []

        def first_cycle():
            claimed.append(ledger.claim(endpoint.id, 10).result(timeout=10))
            ledger.give_back([content.message_id for content in claimed[0].messages])
            ledger.release_order(endpoint.id)
            ledger.claim(endpoint.id, 10).result(timeout=10)  # written after the two above

        assert compiled_while_claiming(fresh, first_cycle) == []
        assert len(claimed[0].messages) == 3  # the claim cycle did run its statements on real rows
    finally:
        ledger.stop()
        fresh.dispose()


def test_a_fan_outs_first_wide_claim_cycle_compiles_nothing(app):
    # 70 endpoints in one cycle: on SQLite a statement of 64 and one of 8 (claims.CHOOSE_WIDTHS).
    endpoints = [make_endpoint(f"http://127.0.0.1:9/{n}", actions=["checkout"]) for n in range(70)]
    emit_many([("checkout", "customer", {})])
    fresh = create_engine(db.engine.url)
    ledger = Ledger(fresh, settings(app))
    try:
        ledger.start()
        taken = []
        now = utcnow()
        until = now + dt.timedelta(seconds=30)
        plans = [claims.ClaimPlan(endpoint.id, rules.ALL_DUE, 4, until) for endpoint in endpoints]

        def wide_cycle():
            with ledger.transaction() as conn:
                taken.extend(claims.claim_many(conn, "compile-ahead-test", plans, now))

        assert compiled_while_claiming(fresh, wide_cycle) == []
        assert [len(batch) for batch in taken] == [1] * 70
    finally:
        ledger.stop()
        fresh.dispose()


def test_compiling_ahead_changes_nothing(app):
    endpoint = make_endpoint("http://127.0.0.1:9/hook", actions=["checkout"], queue_batches=False)
    emit_many([("checkout", "customer", {})])
    before = db.session.execute(select(PendingMessage.message_id, PendingMessage.lease_owner)).all()
    ledger = Ledger(db.engine, settings(app))
    ledger.start()
    ledger.stop()
    db.session.expire_all()
    assert db.session.execute(select(PendingMessage.message_id, PendingMessage.lease_owner)).all() == before
    assert db.session.get(type(endpoint), endpoint.id).lease_owner is None


def test_a_database_not_reachable_yet_leaves_the_ledger_starting(app, tmp_path, caplog):
    unreachable = create_engine(f"sqlite:///{tmp_path / 'no-such-folder' / 'webhooks.db'}")
    ledger = Ledger(unreachable, settings(app))
    with caplog.at_level(logging.WARNING, logger="webapp.delivery.ledger"):
        ledger.start()
    try:
        assert "claim statements not compiled ahead" in caplog.text
        with pytest.raises(Exception, match="unable to open database file"):
            ledger.claim(1, 1).result(timeout=10)  # the first claim meets the database and says so
    finally:
        ledger.stop()
        unreachable.dispose()
