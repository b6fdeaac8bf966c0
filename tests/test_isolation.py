"""One failing receiver never holds up the others (a small version of the bench's isolation scenario).

Endpoints whose receivers hang (every request held past the endpoint's
timeout) have a backlog each, and a healthy endpoint keeps receiving its
messages promptly: with one worker process, as ``make run`` starts it, and
with two.
"""
from __future__ import annotations

import time

import pytest

from tests.support.factories import final, make_endpoint
from tests.support.misbehaving import RawServer, hang
from tests.support.receiver import Receiver
from webapp.domain.events import emit, emit_many
from webapp.storage.statuses import DONE

pytestmark = [pytest.mark.db, pytest.mark.slow]

HANGING = 4
BACKLOG = 40
HEALTHY_EVENTS = 20
P95_LIMIT = 2.0


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_healthy_endpoint_keeps_its_pace_while_others_hang(app, start_worker, workers):
    hanging = [RawServer(hang) for _ in range(HANGING)]
    try:
        with Receiver() as healthy:
            for number, server in enumerate(hanging):
                # Batches on and off, short and long timeouts (60 s is the most the settings allow).
                make_endpoint(server.url, actions=["points_added"], timeout=60 if number % 2 else 3,
                              queue_batches=bool(number % 2), threads=8)
            make_endpoint(healthy.url, actions=["checkout"])
            emit_many([("points_added", f"c{i}", {"i": i}) for i in range(BACKLOG * HANGING)])
            for _ in range(workers):
                start_worker()
            time.sleep(1.0)  # let the hanging endpoints take their lanes first (pacing, not waiting)
            sent_at = {}
            for number in range(HEALTHY_EVENTS):
                sent_at[f"h{number}"] = time.monotonic()
                emit("checkout", f"h{number}", {"n": number})
                time.sleep(0.1)  # a steady trickle of events, as a shop sends them
            received = healthy.wait_for(HEALTHY_EVENTS, timeout=30)
            latencies = [r.received_at - sent_at[r.json()["customer"]] for r in received]
            assert p95(latencies) <= P95_LIMIT, sorted(latencies)
    finally:
        for server in hanging:
            server.close()


def test_one_event_to_many_endpoints_is_a_few_wake_up_jobs(app, start_worker, redis_server):
    from redis import Redis
    from rq import Queue

    with Receiver() as receiver:
        for _ in range(120):
            make_endpoint(receiver.url)
        event = emit("checkout", "c1", {})
        assert len(event.messages) == 120
        assert Queue("webhooks", connection=Redis.from_url(redis_server.url)).count == 2  # 100 endpoints a job
        start_worker()
        receiver.wait_for(120, timeout=30)
        assert {r.header("Webhook-Id") for r in receiver.requests} == {event.id}
        assert all(final(message.id).status == DONE for message in event.messages)
