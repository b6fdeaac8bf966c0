"""The log's backend: filters and keyset pages, export, resend, retention."""
from __future__ import annotations

import csv
import datetime as dt
import io
import random

import pytest
from sqlalchemy import insert

from tests.support.factories import make_endpoint
from webapp.domain.logbook.export import stream
from webapp.domain.logbook.filters import LogFilter
from webapp.domain.logbook.paging import page
from webapp.domain.logbook.resend import StillBeingDelivered, bulk_resend, resend
from webapp.domain.logbook.retention import purge
from webapp.errors import InvalidInput
from webapp.extensions import db
from webapp.storage.models import Attempt, Event, Message, response_class, utcnow

pytestmark = pytest.mark.db

ACTIONS = ["checkout", "opt_in", "tier_change"]
STATUSES = ["queued", "resent", "failed", "done"]
CODES = [None, 200, 201, 404, 500, 503]
BASE_DAY = dt.datetime(2026, 3, 1)


def seed(count: int, endpoints: list[int], rng: random.Random) -> list[dict]:
    """Messages with known attributes, in id order; returns what was written."""
    events, messages = [], []
    for i in range(count):
        event_id = f"{i:032x}"
        created = BASE_DAY + dt.timedelta(hours=i)  # ids and times grow together
        action, status = rng.choice(ACTIONS), rng.choice(STATUSES)
        code = rng.choice(CODES)
        events.append({"id": event_id, "action": action, "customer": f"c{i % 7}", "data_json": "{}",
                       "created_at": created, "is_test": False})
        messages.append({"event_id": event_id, "endpoint_id": endpoints[i % len(endpoints)],
                         "action": action, "customer": f"c{i % 7}", "status": status, "attempts": 1,
                         "response_code": code, "response_class": response_class(code),
                         "created_at": created, "is_test": False})
    db.session.execute(insert(Event), events)
    db.session.execute(insert(Message), messages)
    db.session.commit()
    ids = db.session.scalars(db.select(Message.id).order_by(Message.created_at)).all()
    for message, message_id in zip(messages, ids):  # creation order is id order
        message["id"] = message_id
    return messages


def expected(seeded: list[dict], f: LogFilter) -> list[int]:
    """The filter's meaning, computed plainly in Python from the seed."""
    def keep(m):
        code = m["response_code"]
        if f.code == "none" and code is not None:
            return False
        if f.code.endswith("xx") and (code is None or code // 100 != int(f.code[0])):
            return False
        if f.code.isdigit() and code != int(f.code):
            return False
        if f.created_from and m["created_at"].date() < f.created_from:
            return False
        if f.created_to and m["created_at"].date() > f.created_to:
            return False
        return ((not f.status or m["status"] == f.status) and (not f.action or m["action"] == f.action)
                and (not f.customer or m["customer"].startswith(f.customer))
                and (f.endpoint is None or m["endpoint_id"] == f.endpoint))
    return [m["id"] for m in reversed(seeded) if keep(m)]


def all_pages(f: LogFilter, size: int) -> list[int]:
    ids, cursor = [], None
    while True:
        current = page(f, before=cursor, size=size)
        ids.extend(m.id for m in current.messages)
        if current.older is None:
            return ids
        cursor = current.older


@pytest.fixture
def seeded(app):
    first = make_endpoint("http://127.0.0.1:9/a")
    second = make_endpoint("http://127.0.0.1:9/b")
    return seed(400, [first.id, second.id], random.Random(7)), (first.id, second.id)


FILTERS = [
    LogFilter(),
    LogFilter(code="404"),
    LogFilter(code="5xx"),
    LogFilter(code="2xx", status="done"),
    LogFilter(code="none"),
    LogFilter(status="failed", action="checkout"),
    LogFilter(customer="c3"),
    LogFilter(created_from=dt.date(2026, 3, 5), created_to=dt.date(2026, 3, 9)),
    LogFilter(code="5xx", action="opt_in", customer="c1", created_from=dt.date(2026, 3, 3)),
]


@pytest.mark.parametrize("log_filter", FILTERS, ids=lambda f: str(f.to_args()) or "none")
def test_filters_and_paging_return_exactly_the_matching_rows_newest_first(seeded, log_filter):
    messages, _ = seeded
    want = expected(messages, log_filter)
    assert want, "the seed covers this filter"
    assert all_pages(log_filter, size=17) == want


def test_endpoint_filter_combines_with_others(seeded):
    messages, (first, second) = seeded
    for f in (LogFilter(endpoint=second), LogFilter(endpoint=first, status="resent", code="none")):
        assert all_pages(f, size=25) == expected(messages, f)


@pytest.mark.parametrize("args, field", [({"code": "abc"}, "code"), ({"code": "6xx"}, "code"),
                                         ({"status": "lost"}, "status"), ({"created_from": "29/11/2026"}, "created_from"),
                                         ({"endpoint": "x"}, "endpoint")])
def test_bad_filter_values_name_the_field(args, field):
    with pytest.raises(InvalidInput) as caught:
        LogFilter.from_args(args)
    assert caught.value.field == field


def test_filter_round_trips_through_the_query_string():
    f = LogFilter(code="5xx", status="failed", customer="c 1", endpoint=3, created_from=dt.date(2026, 1, 2))
    assert LogFilter.from_args(f.to_args()) == f


@pytest.mark.parametrize("fmt, delimiter", [("csv", ","), ("psv", "|")])
def test_export_parses_back_to_exactly_the_filtered_rows(seeded, fmt, delimiter):
    messages, _ = seeded
    f = LogFilter(code="5xx")
    text = "".join(stream(f, fmt))
    parsed = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    assert parsed[0] == ["created_at", "action", "customer", "response_code", "status", "endpoint",
                         "attempts", "message_id", "event_id", "last_attempt_at"]
    by_id = {m["id"]: m for m in messages}
    body = parsed[1:]
    assert [int(row[7]) for row in body] == expected(messages, f)
    for row in body:
        m = by_id[int(row[7])]
        assert row[0] == m["created_at"].isoformat(timespec="seconds") + "Z"
        assert row[1:5] == [m["action"], m["customer"], str(m["response_code"]), m["status"]]
        assert row[8] == m["event_id"]


def test_export_neutralises_formulas_and_quotes_delimiters(app):
    endpoint = make_endpoint("http://127.0.0.1:9/a", name="=HYPERLINK(\"http://x\")")
    nasty = ["=1+2", "+SUM(A1)", "-3", "@cmd", "a|b,c\"d", "plain"]
    for i, customer in enumerate(nasty):
        db.session.add(Event(id=f"e{i}", action="checkout", customer=customer, data_json="{}"))
        db.session.add(Message(event_id=f"e{i}", endpoint_id=endpoint.id, action="checkout",
                               customer=customer, status="done"))
    db.session.commit()
    for fmt, delimiter in (("csv", ","), ("psv", "|")):
        rows = list(csv.reader(io.StringIO("".join(stream(LogFilter(), fmt)), newline=""), delimiter=delimiter))[1:]
        customers = [row[2] for row in reversed(rows)]
        assert customers == ["'=1+2", "'+SUM(A1)", "'-3", "'@cmd", "a|b,c\"d", "plain"]
        assert all(row[5] == "'=HYPERLINK(\"http://x\")" for row in rows)


def test_resend_links_to_the_original_and_is_idempotent_while_in_flight(app):
    endpoint = make_endpoint("http://127.0.0.1:9/a")
    db.session.add(Event(id="e1", action="checkout", customer="c", data_json="{}"))
    original = Message(event_id="e1", endpoint_id=endpoint.id, action="checkout", customer="c", status="failed")
    db.session.add(original)
    db.session.commit()

    first = resend(original)
    again = resend(original)
    assert first.queued and not again.queued
    assert first.message.id == again.message.id and first.message.id != original.id
    assert first.message.resend_of_id == original.id and first.message.event_id == original.event_id
    assert first.message.status == "queued" and first.message.next_attempt_at is not None


def pending_chain(endpoint) -> tuple[Message, Message]:
    """Message 1 failed; its resend is waiting for a retry."""
    db.session.add(Event(id="e1", action="checkout", customer="c", data_json="{}"))
    original = Message(event_id="e1", endpoint_id=endpoint.id, action="checkout", customer="c", status="failed")
    db.session.add(original)
    db.session.flush()
    retrying = Message(event_id="e1", endpoint_id=endpoint.id, action="checkout", customer="c", status="resent",
                       attempts=2, resend_of_id=original.id, next_attempt_at=utcnow())
    db.session.add(retrying)
    db.session.commit()
    return original, retrying


def messages_of_event() -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(Message).where(Message.event_id == "e1"))


def test_a_message_still_being_retried_is_not_resent_unless_forced(app):
    _, retrying = pending_chain(make_endpoint("http://127.0.0.1:9/a"))
    with pytest.raises(StillBeingDelivered) as refused:
        resend(retrying)
    assert refused.value.in_flight.id == retrying.id and "still being delivered" in str(refused.value)
    assert messages_of_event() == 2, "nothing queued"

    forced = resend(retrying, force=True)
    assert forced.queued and forced.message.resend_of_id == retrying.id
    again = resend(retrying, force=True)
    assert not again.queued and again.message.id == forced.message.id, "forcing keeps one resend in flight"
    assert messages_of_event() == 3


def test_an_earlier_message_whose_event_is_still_being_retried_as_a_later_one_asks_too(app):
    endpoint = make_endpoint("http://127.0.0.1:9/a")
    original, retrying = pending_chain(endpoint)
    retrying.status, retrying.next_attempt_at = "failed", None
    db.session.add(Message(event_id="e1", endpoint_id=endpoint.id, action="checkout", customer="c", status="queued",
                           resend_of_id=retrying.id, next_attempt_at=utcnow()))
    db.session.commit()
    with pytest.raises(StillBeingDelivered, match=f"message {original.id} is still being delivered as message"):
        resend(original)
    assert messages_of_event() == 3


def test_bulk_resend_queues_each_failed_message_once_however_often_pressed(seeded):
    messages, (first, _) = seeded
    f = LogFilter(endpoint=first)
    failed = [m["id"] for m in messages if m["status"] == "failed" and m["endpoint_id"] == first]

    assert bulk_resend(f) == len(failed)
    assert bulk_resend(f) == 0, "pressing twice does not double the messages in flight"
    copies = db.session.scalars(db.select(Message).where(Message.resend_of_id.is_not(None))).all()
    assert sorted(c.resend_of_id for c in copies) == sorted(failed)
    assert {c.status for c in copies} == {"queued"}

    # The copies fail again: the next bulk resend repeats the newest of each chain only.
    for copy in copies:
        copy.status = "failed"
    db.session.commit()
    assert bulk_resend(f) == len(failed)


def test_retention_deletes_exactly_what_is_older_than_the_cut_off(app):
    endpoint = make_endpoint("http://127.0.0.1:9/a")
    now = utcnow()
    ages = {"old": 91, "edge_old": 90.01, "edge_new": 89.99, "new": 1}
    message_ids = {}
    for name, days in ages.items():
        created = now - dt.timedelta(days=days)
        db.session.add(Event(id=name, action="checkout", customer="c", data_json="{}", created_at=created))
        message = Message(event_id=name, endpoint_id=endpoint.id, action="checkout", customer="c",
                          status="done", created_at=created)
        db.session.add(message)
        db.session.flush()
        message_ids[name] = message.id
        db.session.add(Attempt(message_id=message.id, number=1, started_at=created, request_method="POST",
                               request_url="u"))
    # An old event with a new resend keeps its event row; the resend outlives the message it copied.
    db.session.add(Message(event_id="old", endpoint_id=endpoint.id, action="checkout", customer="c",
                           status="done", created_at=now, resend_of_id=message_ids["old"]))
    db.session.commit()

    report = purge(90, batch_size=1)
    assert (report.messages, report.attempts, report.events) == (2, 2, 1)
    remaining = sorted((m.event_id, m.resend_of_id) for m in db.session.scalars(db.select(Message)))
    assert remaining == [("edge_new", None), ("new", None), ("old", None)]
    assert sorted(db.session.scalars(db.select(Event.id))) == ["edge_new", "new", "old"]


def test_the_bulk_resend_counts_stop_at_their_cap(seeded):
    from webapp.domain.logbook.resend import bulk_plan

    messages, _ = seeded
    failed = sum(1 for m in messages if m["status"] == "failed")
    assert failed > 4
    assert bulk_plan(LogFilter(), cap=3).resendable == 4, "cap + 1 means 'more than the cap'"
    plan = bulk_plan(LogFilter(), cap=10_000)
    assert (plan.failed, plan.resendable, plan.already_resent, plan.tests) == (failed, failed, 0, 0)
