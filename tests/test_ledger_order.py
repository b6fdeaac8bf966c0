"""The order of a ledger transaction's writes: the rollups come last, after the claims.

Every worker adds to the same rollup rows (an endpoint's minute, hour and day), and a row one
transaction updated stays locked until it commits. Written before the claims, the rows were held
through them too, and the other worker's ledger waited that long on every batch (14 ms per batch
of about 480 outcomes on PostgreSQL, in the server's log of statement durations).
"""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, func, select

from tests.support.factories import make_endpoint
from webapp.delivery import claims, records, rollups
from webapp.delivery.ledger import Ledger, Settings
from webapp.delivery.outcome import Outcome
from webapp.domain.events import emit_many
from webapp.extensions import db
from webapp.storage.models import StatsMinute, utcnow
from webapp.storage.statuses import RetryPolicy

pytestmark = pytest.mark.db

OWNER = "ledger-order-test"


def settings(app) -> Settings:
    return Settings(owner=OWNER, policy=RetryPolicy.from_config(app.config), max_retry_after=300,
                    disable_after=86400, lease_margin=30)


def test_a_transaction_that_records_and_claims_writes_its_rollups_after_the_claims(app, monkeypatch):
    endpoint = make_endpoint("http://127.0.0.1:9/hook", actions=["checkout"])
    emit_many([("checkout", f"customer-{n}", {"n": n}) for n in range(4)])
    sql_engine = create_engine(db.engine.url)
    first = Ledger(sql_engine, settings(app))
    first.start()
    try:
        claimed = first.claim(endpoint.id, 2).result(timeout=10)
    finally:
        first.stop()
    assert len(claimed.messages) == 2
    outcomes = [(content, Outcome(started_at=utcnow(), duration_ms=3, request_method="POST",
                                  request_url=endpoint.url, request_headers=[], request_body="{}", response_code=200))
                for content in claimed.messages]

    # The order of the calls, each doing its real work. (On PostgreSQL the outcomes and rollups go
    # through psycopg's own cursor, which SQLAlchemy's statement events do not see.)
    calls = []
    for module, name in ((records, "record_many"), (claims, "claim_many"), (rollups, "add_stats")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *args, real=real, name=name: calls.append(name) or real(*args))
    second = Ledger(sql_engine, settings(app))
    # Asked before the ledger's thread runs: both are written in its first transaction.
    recorded = second.record(endpoint.id, outcomes, claims.health_of(claimed.endpoint))
    next_claim = second.claim(endpoint.id, 10)
    try:
        second.start()
        recorded.result(timeout=10)
        assert len(next_claim.result(timeout=10).messages) == 2  # the two left, in the same transaction
    finally:
        second.stop()
        sql_engine.dispose()

    assert calls == ["record_many", "claim_many", "add_stats"]
    db.session.expire_all()
    assert db.session.scalar(select(func.sum(StatsMinute.done))) == 2
