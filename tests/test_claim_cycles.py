"""One cycle of the ledger claims for many endpoints at once, each exactly what a claim of its own would take.

A fan-out (one event to a thousand endpoints) asks the ledger for a thousand
claims of one message each; they are chosen in one statement (a few on SQLite),
not two per endpoint.
"""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, select, update

from tests.support.factories import make_endpoint
from webapp.delivery import claims
from webapp.delivery import health as rules
from webapp.delivery.engine import Engine
from webapp.domain.events import emit_many
from webapp.extensions import db
from webapp.storage.models import PendingMessage, utcnow

pytestmark = pytest.mark.db

WIDEST = claims.CHOOSE_WIDTHS[-1]
ENDPOINTS = 2 * WIDEST + 3  # several statements' worth on SQLite, the last one a narrower one
ACTIONS = ("opt_in", "opt_out", "profile_update", "checkout", "points_added")


def pending_ids(endpoint_id: int) -> list[int]:
    return db.session.scalars(select(PendingMessage.message_id).where(PendingMessage.endpoint_id == endpoint_id)
                              .order_by(PendingMessage.message_id)).all()


def set_pending(message_ids: list[int], **values) -> None:
    db.session.execute(update(PendingMessage).where(PendingMessage.message_id.in_(message_ids)).values(**values))
    db.session.commit()


@pytest.fixture()
def endpoints(app):
    """ENDPOINTS endpoints, the i-th with i % 5 messages: (endpoint ids, each one's message ids oldest first)."""
    ids = [make_endpoint(f"http://127.0.0.1:9/{i}", actions=[ACTIONS[i % 5]]).id for i in range(ENDPOINTS)]
    # ACTIONS[k] reaches the endpoints with i % 5 == k; k events of it give each of them k messages.
    emit_many([(ACTIONS[k], f"c{k}-{n}", {}) for k in range(5) for n in range(k)])
    return ids, {endpoint_id: pending_ids(endpoint_id) for endpoint_id in ids}


def claim(app, plans: list[claims.ClaimPlan], now: dt.datetime, owner: str = "this-worker") -> list[list[int]]:
    with Engine(app).ledger.transaction() as conn:
        taken = claims.claim_many(conn, owner, plans, now)
    return [[content.message_id for content in batch] for batch in taken]


def test_each_endpoint_gets_its_own_oldest_due_messages_up_to_its_own_limit(app, endpoints):
    ids, messages = endpoints
    now = utcnow()
    # Some messages are not due yet, some are held by another worker: neither may be taken.
    later = [messages[e][0] for e in ids[3::7] if messages[e]]
    elsewhere = [messages[e][-1] for e in ids[4::6] if len(messages[e]) > 1]
    set_pending(later, next_attempt_at=now + dt.timedelta(minutes=5))
    set_pending(elsewhere, lease_owner="another-worker", lease_until=now + dt.timedelta(minutes=1))
    limits = {endpoint_id: 1 + index % 3 for index, endpoint_id in enumerate(ids)}
    until = now + dt.timedelta(seconds=30)

    taken = claim(app, [claims.ClaimPlan(e, rules.ALL_DUE, limits[e], until) for e in ids], now)

    expected = [[m for m in messages[e] if m not in later and m not in elsewhere][:limits[e]] for e in ids]
    assert taken == expected
    assert sum(map(len, taken)) > ENDPOINTS // 2  # the case is not empty
    owners = dict(db.session.execute(select(PendingMessage.message_id, PendingMessage.lease_owner)).all())
    assert {m for batch in taken for m in batch} == {m for m, owner in owners.items() if owner == "this-worker"}


def test_an_endpoint_claimed_twice_in_a_cycle_and_a_probe_beside_them_share_nothing(app, endpoints):
    ids, messages = endpoints
    now = utcnow()
    until = now + dt.timedelta(seconds=30)
    busy, probed, other = ids[4], ids[9], ids[14]  # four messages each
    plans = [claims.ClaimPlan(busy, rules.ALL_DUE, 3, until), claims.ClaimPlan(probed, rules.PROBE, 5, until),
             claims.ClaimPlan(other, rules.ALL_DUE, 2, until), claims.ClaimPlan(busy, rules.ALL_DUE, 3, until),
             claims.ClaimPlan(other, rules.NOTHING, 2, until)]

    taken = claim(app, plans, now)

    # The second claim of ``busy`` gets what the first left; a probe takes one untried message.
    assert taken == [messages[busy][:3], messages[probed][:1], messages[other][:2], messages[busy][3:], []]


# Plans in a cycle -> the branches of SQLite's choosing statements: groups of up to 64, each in the
# narrowest statement that holds it (1, 8 or 64 branches).
BRANCHES = {1: [1], 5: [8], 8: [8], 9: [64], ENDPOINTS: [64, 64, 8]}


@pytest.mark.parametrize("count", sorted(BRANCHES))
def test_a_cycle_of_claims_runs_a_few_statements_not_two_per_endpoint(app, endpoints, count):
    ids, messages = endpoints
    now = utcnow()
    chosen = sorted(ids, key=lambda e: not messages[e])[:count]  # those with messages first
    plans = [claims.ClaimPlan(e, rules.ALL_DUE, 4, now + dt.timedelta(seconds=30)) for e in chosen]
    statements = []
    with Engine(app).ledger.transaction() as conn:
        event.listen(conn, "before_cursor_execute", lambda *args: statements.append(args[2]))
        taken = claims.claim_many(conn, "this-worker", plans, now)
    assert [[m.message_id for m in batch] for batch in taken] == [messages[e][:4] for e in chosen]
    if db.engine.dialect.name == "postgresql":
        choosing = statements[:1]
    else:
        choosing = statements[:len(BRANCHES[count])]
        assert [statement.count("UNION ALL") + 1 for statement in choosing] == BRANCHES[count]
    # The choice, one lease (every plan ends its lease at once), the messages' contents.
    assert len(statements) == len(choosing) + 2, statements
