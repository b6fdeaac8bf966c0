"""The customer filter matches by prefix, takes the operator's wildcards literally, and seeks on an index."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.support.factories import make_endpoint
from webapp.domain.logbook.filters import LogFilter, apply
from webapp.domain.logbook.paging import page
from webapp.extensions import db
from webapp.storage.models import Event, Message

pytestmark = pytest.mark.db

CUSTOMERS = ["alice", "alicia", "Alice", "al", "50%_off", "50%xoff", "50x_off", "5000", "a_b", "axb", "a*b", "a[b",
             "a?b", "a\\b", "ab"]


@pytest.fixture
def customers(app):
    endpoint = make_endpoint("http://127.0.0.1:9/hook")
    for i, customer in enumerate(CUSTOMERS):
        event = Event(id=f"evt{i:04d}", action="checkout", customer=customer, data_json="{}")
        db.session.add_all([event, Message(event=event, endpoint_id=endpoint.id, action="checkout",
                                           customer=customer, status="done", attempts=1)])
    db.session.commit()
    return CUSTOMERS


@pytest.mark.parametrize("prefix", ["ali", "alice", "Ali", "al", "50%", "50%_", "50", "a_", "a*", "a[", "a?", "a\\",
                                    "a", "zzz", "alice "])
def test_a_prefix_finds_exactly_the_customers_that_start_with_it(customers, prefix):
    found = sorted(m.customer for m in page(LogFilter.from_args({"customer": prefix})).messages)
    # from_args trims the value, as the form does
    assert found == sorted(c for c in customers if c.startswith(prefix.strip()))


def test_the_log_page_filters_by_prefix(customers, operator):
    body = operator.get("/log?customer=50%25_").get_data(as_text=True)
    assert body.count('<tr id="message-') == 1 and "50%_off" in body


def plan_of(query) -> str:
    """The plan of the query as the app sends it: the same SQL, the prefix as a bound parameter."""
    compiled = query.compile(db.engine)
    connection = db.session.connection()
    if db.engine.dialect.name == "sqlite":
        params = tuple(compiled.params[name] for name in compiled.positiontup)
        return "\n".join(row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", params))
    # A handful of rows: tell the planner a scan of the table is no option, then see what it can use.
    connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    return "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params))


def test_the_prefix_seeks_on_the_customer_index(customers):
    plan = plan_of(apply(select(Message.id), LogFilter(customer="50%_")))
    db.session.rollback()
    assert "ix_message_customer_id" in plan, plan
    if db.engine.dialect.name == "sqlite":
        assert "SEARCH message USING COVERING INDEX ix_message_customer_id (customer>? AND customer<?)" in plan, plan
    else:
        condition = plan.split("Index Cond:")[1]  # the prefix is the index's range ('50%' escaped: literal)
        assert "~>=~ '50%_'::text" in condition and "~<~ '50%`'::text" in condition, plan


def test_a_common_prefix_walks_the_log_by_id_instead_of_sorting_every_match(customers):
    from sqlalchemy import insert

    from webapp.domain.logbook.filters import PREFIX_SORT_LIMIT

    endpoint_id = db.session.scalar(select(Message.endpoint_id).limit(1))
    many = [f"common-{i}" for i in range(PREFIX_SORT_LIMIT)]
    db.session.execute(insert(Event), [{"id": f"c{i:05d}", "action": "checkout", "customer": c, "data_json": "{}"}
                                       for i, c in enumerate(many)])
    db.session.execute(insert(Message), [{"event_id": f"c{i:05d}", "endpoint_id": endpoint_id, "action": "checkout",
                                          "customer": c, "status": "done", "attempts": 1, "is_test": False}
                                         for i, c in enumerate(many)])
    db.session.commit()
    common = page(LogFilter(customer="common-"), size=10).messages
    assert [m.customer for m in common] == many[::-1][:10], "still exactly the newest matches"
    newest_first = apply(select(Message.id), LogFilter(customer="common-")).order_by(Message.id.desc()).limit(51)
    plan = plan_of(newest_first)
    db.session.rollback()
    # No range on the customer index; SQLite walks the primary key backwards (no sort). PostgreSQL picks
    # by its statistics: on a few thousand rows it may well sort, on a big log it walks the primary key.
    assert not any(word in plan for word in ("customer>?", "~>=~", "TEMP B-TREE")), plan
    narrow = plan_of(apply(select(Message.id), LogFilter(customer="alic")).order_by(Message.id.desc()).limit(51))
    db.session.rollback()
    assert "customer>?" in narrow or "~>=~" in narrow, narrow
