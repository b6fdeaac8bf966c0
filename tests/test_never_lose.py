"""Nothing is lost: Redis flushed, retries dropped, a worker killed mid-delivery."""
from __future__ import annotations

import pytest
from redis import Redis
from rq import Queue

from tests.support.factories import attempts_of, final, make_endpoint, reload_message
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until
from webapp.delivery.records import LOST_ATTEMPT_ERROR
from webapp.domain.events import emit_many
from webapp.storage.statuses import DONE, RESENT

pytestmark = pytest.mark.db


def test_flushed_redis_with_messages_queued_still_delivers_everything(app, receiver, start_worker, redis_server):
    make_endpoint(receiver.url)
    events = emit_many([("checkout", f"c{i}", {"i": i}) for i in range(5)])
    redis = Redis.from_url(redis_server.url)
    assert Queue("webhooks", connection=redis).count >= 1, "the emit enqueued a delivery job"
    redis.flushall()

    start_worker()
    receiver.wait_for(5)
    assert all(final(e.messages[0].id).status == DONE for e in events)


def test_flushed_redis_and_a_killed_worker_with_retries_pending_still_deliver(app, start_worker, redis_server):
    """Retries live in the database; a worker only holds timers for them. Losing Redis and that
    worker at once loses none: the next worker's sweep finds them due."""
    with Receiver(fail_first=3) as receiver:
        make_endpoint(receiver.url)
        worker = start_worker(env={"WEBHOOKS_RETRY_INTERVAL": "3"})
        events = emit_many([("checkout", f"c{i}", {"i": i}) for i in range(3)])
        ids = [e.messages[0].id for e in events]
        wait_until(lambda: all(reload_message(i).status == RESENT for i in ids), message="first attempts failed")
        worker.kill()
        Redis.from_url(redis_server.url).flushall()

        start_worker(env={"WEBHOOKS_RETRY_INTERVAL": "3"})
        for message_id in ids:
            message = final(message_id, timeout=30)
            assert message.status == DONE and message.attempts == 2


def test_worker_killed_mid_delivery_the_message_still_ends_done(app, start_worker):
    with Receiver(delay=30) as receiver:
        endpoint = make_endpoint(receiver.url, timeout=2)
        worker = start_worker()
        [event] = emit_many([("checkout", "c1", {"n": 1})])
        receiver.wait_for(1)  # the request is in flight, the receiver is stalling
        worker.kill()  # SIGKILL to the worker and its work-horse

        receiver.behave(delay=0)
        start_worker()
        message = final(event.messages[0].id, timeout=30)

        assert message.status == DONE and message.attempts == 2
        first, second = attempts_of(message.id)
        assert first.error == LOST_ATTEMPT_ERROR
        assert second.response_code == 200
        assert endpoint.id == message.endpoint_id
