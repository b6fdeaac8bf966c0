"""The per-minute, -hour and -day rollups of a batch of outcomes that crosses a minute, an hour and a day."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.support.factories import make_endpoint
from webapp.delivery import rollups
from webapp.delivery.outcome import Outcome
from webapp.extensions import db
from webapp.signing.request import MessageContent
from webapp.storage.models import StatsDay, StatsHour, StatsMinute
from webapp.storage.statuses import RetryPolicy

pytestmark = pytest.mark.db

MIDNIGHT = dt.datetime(2026, 11, 30)


def outcome_at(started_at: dt.datetime, code: int | None, duration_ms: int = 30) -> Outcome:
    return Outcome(started_at=started_at, duration_ms=duration_ms, request_method="POST",
                   request_url="http://127.0.0.1:9/", request_headers=[], request_body="{}",
                   response_code=code, error=None if code == 200 else "no")


def content(number: int, attempt: int = 1) -> MessageContent:
    return MessageContent(number, attempt, f"evt_{number}", "checkout", "c1", MIDNIGHT - dt.timedelta(minutes=5), "{}")


def table_rows(model) -> dict[tuple, tuple]:
    return {(row.endpoint_id, row.start): (row.attempts, row.succeeded, row.done, row.failed, row.retried,
                                           row.duration_ms)
            for row in db.session.scalars(select(model))}


def test_a_batch_across_minutes_hours_and_days_is_counted_in_each_period_once(app):
    first, second = make_endpoint("http://127.0.0.1:9/a").id, make_endpoint("http://127.0.0.1:9/b").id
    batch = {
        first: [(content(1), outcome_at(MIDNIGHT - dt.timedelta(seconds=50), 200, 10)),
                (content(2), outcome_at(MIDNIGHT - dt.timedelta(seconds=20), 500, 20)),      # retried
                (content(3, attempt=5), outcome_at(MIDNIGHT + dt.timedelta(seconds=5), 500, 40)),  # the last: failed
                (content(4), outcome_at(MIDNIGHT + dt.timedelta(minutes=61), 200, 80))],
        second: [(content(5), outcome_at(MIDNIGHT + dt.timedelta(seconds=1), 200, 160))],
    }
    policy = RetryPolicy(5, 10)
    with db.engine.begin() as conn:
        rollups.add_stats(conn, batch, policy)
    with db.engine.begin() as conn:  # a second batch adds to the rows the first wrote
        rollups.add_stats(conn, {second: [(content(6), outcome_at(MIDNIGHT + dt.timedelta(seconds=59), 200, 320))]},
                          policy)

    before, hour_before = MIDNIGHT - dt.timedelta(minutes=1), MIDNIGHT - dt.timedelta(hours=1)
    day_before, one_am, one_past_one = MIDNIGHT - dt.timedelta(days=1), MIDNIGHT + dt.timedelta(hours=1), \
        MIDNIGHT + dt.timedelta(minutes=61)
    # (attempts, succeeded, done, failed, retried, duration_ms)
    assert table_rows(StatsMinute) == {
        (first, before): (2, 1, 1, 0, 1, 30), (first, MIDNIGHT): (1, 0, 0, 1, 0, 40),
        (first, one_past_one): (1, 1, 1, 0, 0, 80), (second, MIDNIGHT): (2, 2, 2, 0, 0, 480)}
    assert table_rows(StatsHour) == {
        (first, hour_before): (2, 1, 1, 0, 1, 30), (first, MIDNIGHT): (1, 0, 0, 1, 0, 40),
        (first, one_am): (1, 1, 1, 0, 0, 80), (second, MIDNIGHT): (2, 2, 2, 0, 0, 480)}
    assert table_rows(StatsDay) == {
        (first, day_before): (2, 1, 1, 0, 1, 30), (first, MIDNIGHT): (2, 1, 1, 1, 0, 120),
        (second, MIDNIGHT): (2, 2, 2, 0, 0, 480)}


def buckets(model, endpoint_id: int, start: dt.datetime) -> tuple[dict, int, dict]:
    """(duration buckets that counted something, the latency sum, latency buckets that counted something)."""
    row = db.session.scalars(select(model).where(model.endpoint_id == endpoint_id, model.start == start)).one()
    durations = {name: getattr(row, name) for name in rollups.DURATION_COLUMNS if getattr(row, name)}
    latencies = {name: getattr(row, name) for name in rollups.LATENCY_COLUMNS if getattr(row, name)}
    return durations, row.latency_ms, latencies


def test_durations_and_latencies_land_in_their_buckets_and_add_up_across_batches(app):
    endpoint_id = make_endpoint("http://127.0.0.1:9/").id
    policy = RetryPolicy(5, 10)
    # Durations 40 ms (<= 50: d0), 160 (<= 250: d2), 160, 70000 (past 60000: d10). The last one failed,
    # so three latencies count, each from the message's creation (5 minutes before midnight) to its end.
    first = [(content(1), outcome_at(MIDNIGHT, 200, 40)),
             (content(2), outcome_at(MIDNIGHT + dt.timedelta(seconds=1), 200, 160))]
    second = [(content(3), outcome_at(MIDNIGHT + dt.timedelta(seconds=2), 200, 160)),
              (content(4, attempt=5), outcome_at(MIDNIGHT + dt.timedelta(seconds=3), 500, 70_000))]
    for batch in (first, second):
        with db.engine.begin() as conn:
            rollups.add_stats(conn, {endpoint_id: batch}, policy)

    latencies_ms = [300_040, 301_160, 302_160]  # all three within (300,000, 900,000]: l10
    for model in (StatsMinute, StatsHour, StatsDay):
        assert buckets(model, endpoint_id, MIDNIGHT) == ({"d0": 1, "d2": 2, "d10": 1}, sum(latencies_ms), {"l10": 3})
