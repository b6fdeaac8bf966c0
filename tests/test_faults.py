"""Faults injected into real processes: killed work-horses and workers, Redis restarts, racing workers."""
from __future__ import annotations

import collections

import pytest
from redis import Redis
from rq import Queue

from tests.support.factories import attempts_of, final, make_endpoint, reload_message
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until
from webapp.delivery.records import LOST_ATTEMPT_ERROR
from webapp.domain.events import emit_many
from webapp.runtime.embedded_redis import EmbeddedRedis
from webapp.storage.statuses import DONE

pytestmark = pytest.mark.db


def test_worker_killed_mid_batch_every_message_still_ends_final(app, start_worker):
    with Receiver(delay=30) as receiver:
        make_endpoint(receiver.url, timeout=2, queue_batches=True, threads=4)
        events = emit_many([("checkout", f"c{i}", {"i": i}) for i in range(20)])
        worker = start_worker()
        receiver.wait_for(4)  # a batch is in flight on four threads
        worker.kill()
        receiver.behave(delay=0)
        start_worker()
        for event in events:
            assert final(event.messages[0].id, timeout=40).status == DONE


class WriteBlocker:
    """Holds the database's write lock from another connection, so no outcome can be written."""

    def __init__(self, database_url: str):
        from sqlalchemy import create_engine

        self.engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
        self.connection = None

    def hold(self) -> None:
        from sqlalchemy import text

        self.connection = self.engine.connect()
        if self.engine.dialect.name == "sqlite":
            self.connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            self.connection.begin()
            self.connection.execute(text("LOCK TABLE attempt, message IN EXCLUSIVE MODE"))

    def release(self) -> None:
        if self.connection is not None:
            self.connection.rollback()
            self.connection.close()
        self.engine.dispose()


def test_crash_after_a_2xx_before_the_status_is_written_resends_with_the_same_id(app, base_env, start_worker):
    blocker = WriteBlocker(base_env["DATABASE_URL"])

    def answer_then_freeze_writes(request):
        if blocker.connection is None:
            blocker.hold()  # from here on the worker cannot record this 200
        return 200, {}, b"ok"

    with Receiver(handler=answer_then_freeze_writes) as receiver:
        make_endpoint(receiver.url, timeout=2)
        worker = start_worker()
        [event] = emit_many([("checkout", "c1", {})])
        [first] = receiver.wait_for(1)
        wait_until(lambda: first.status == 200, message="the receiver answered 200")
        worker.kill()
        blocker.release()

        start_worker()
        message = final(event.messages[0].id, timeout=30)
        second = receiver.wait_for(2)[1]
        assert message.status == DONE and message.attempts == 2
        assert first.header("Webhook-Id") == second.header("Webhook-Id") == event.id
        assert attempts_of(message.id)[0].error == LOST_ATTEMPT_ERROR


@pytest.fixture
def own_redis(app, tmp_path):
    """A Redis server of this test's own, that it may stop and restart."""
    server = EmbeddedRedis(tmp_path / "redis", persistent=False).start()
    app.config["REDIS_URL"] = server.url
    app.extensions.pop("webhooks_redis", None)
    yield server
    server.stop()


def test_redis_restarted_without_persistence_with_queued_and_scheduled_work(app, own_redis, start_worker):
    with Receiver(fail_first=3) as receiver:
        make_endpoint(receiver.url)
        env = {"REDIS_URL": own_redis.url, "WEBHOOKS_RETRY_INTERVAL": "3"}
        worker = start_worker(env=env)
        retrying = emit_many([("checkout", f"r{i}", {}) for i in range(3)])
        wait_until(lambda: all(reload_message(e.messages[0].id).status == "resent" for e in retrying),
                   message="first attempts failed, retries scheduled")
        worker.kill()
        queued = emit_many([("checkout", f"q{i}", {}) for i in range(3)])
        assert Queue("webhooks", connection=Redis.from_url(own_redis.url)).count >= 1

        own_redis.stop()
        own_redis.start()  # same port, empty: the queue and the schedule are gone
        assert Redis.from_url(own_redis.url).dbsize() == 0
        start_worker(env=env)
        for event in retrying + queued:
            assert final(event.messages[0].id, timeout=30).status == DONE


def test_redis_down_when_an_event_is_posted_the_api_answers_202_and_delivery_follows(
    app, client, own_redis, start_worker
):
    from webapp.domain.tokens import create_token

    token = create_token("backend")
    with Receiver() as receiver:
        make_endpoint(receiver.url)
        own_redis.stop()
        response = client.post("/api/v1/events", headers={"Authorization": f"Bearer {token}"},
                               json={"action": "checkout", "customer": "c1", "data": {}})
        assert response.status_code == 202, response.get_data(as_text=True)
        message_id = response.get_json()["message_ids"][0]

        own_redis.start()
        start_worker(env={"REDIS_URL": own_redis.url})
        assert final(message_id, timeout=30).status == DONE
        receiver.wait_for(1)


def test_two_workers_on_two_queues_racing_send_each_attempt_once(app, redis_server, start_worker):
    with Receiver(delay=0.01) as receiver:
        endpoint = make_endpoint(receiver.url, queue_batches=True, threads=4)
        events = emit_many([("checkout", f"c{i}", {"i": i}) for i in range(60)])
        start_worker()
        start_worker(env={"WEBHOOKS_QUEUE": "webhooks-b"})
        other_queue = Queue("webhooks-b", connection=Redis.from_url(redis_server.url))
        for _ in range(5):  # the second worker is told about the same messages again and again
            other_queue.enqueue("webapp.jobs.deliver", endpoint.id)
        for event in events:
            final(event.messages[0].id, timeout=30)
        per_id = collections.Counter(r.header("Webhook-Id") for r in receiver.requests)
        assert len(per_id) == 60 and set(per_id.values()) == {1}, per_id.most_common(3)


def test_two_workers_woken_for_the_same_fan_out_send_each_endpoint_its_message_once(app, redis_server,
                                                                                    start_worker):
    """A cycle chooses for many endpoints in one statement (claims.claim_many): two workers told about
    the same thirty endpoints again and again must still never choose the same message, here while
    the first one's attempts are in flight (the receiver takes half a second)."""
    with Receiver(delay=0.5) as receiver:
        # Queue batches on: no in-order lease keeps the second worker off an endpoint the first sends to.
        # A timeout well past the receiver's half second: an attempt that runs out of its timeout is
        # retried, and on a loaded machine a 1 s one made a second request that says nothing about
        # choosing twice (a double choice still shows below as two requests).
        endpoint_ids = [make_endpoint(f"{receiver.url}e{i}", queue_batches=True, threads=1, timeout=10).id
                        for i in range(30)]
        [event] = emit_many([("checkout", "c1", {})])
        start_worker()
        start_worker(env={"WEBHOOKS_QUEUE": "webhooks-b"})
        other_queue = Queue("webhooks-b", connection=Redis.from_url(redis_server.url))
        for _ in range(3):
            other_queue.enqueue("webapp.jobs.deliver", endpoint_ids)
        for message in event.messages:
            done = final(message.id, timeout=30)
            assert (done.status, done.attempts) == (DONE, 1)
        per_path = collections.Counter(r.path for r in receiver.requests)
        assert len(per_path) == 30 and set(per_path.values()) == {1}, per_path.most_common(3)


def test_retries_still_fire_when_the_scheduler_worker_dies(app, start_worker):
    with Receiver(fail_first=3) as receiver:
        make_endpoint(receiver.url)
        env = {"WEBHOOKS_RETRY_INTERVAL": "2"}
        scheduler_owner = start_worker(env=env)  # the first worker takes RQ's scheduler lock
        start_worker(env=env)
        events = emit_many([("checkout", f"c{i}", {}) for i in range(3)])
        wait_until(lambda: all(reload_message(e.messages[0].id).status == "resent" for e in events),
                   message="first attempts failed")
        scheduler_owner.kill()  # its scheduler lock lives on in Redis for a minute
        for event in events:
            message = final(event.messages[0].id, timeout=20)  # well inside that minute
            assert message.status == DONE and message.attempts == 2


def test_sigterm_mid_batch_lets_the_requests_in_flight_finish(app, start_worker):
    with Receiver(delay=1.5) as receiver:
        make_endpoint(receiver.url, timeout=5, queue_batches=True, threads=4)
        events = emit_many([("checkout", f"c{i}", {}) for i in range(4)])
        worker = start_worker()
        receiver.wait_for(4)
        assert worker.stop(timeout=30) == 0, worker.output()
        assert [r.status for r in receiver.requests] == [200] * 4, "the requests in flight were answered"
        for event in events:
            assert reload_message(event.messages[0].id).status == DONE


def test_database_unreachable_during_the_status_write_is_logged_loudly_and_loses_nothing(
    app, base_env, start_worker
):
    """SQLite: the write lock is held past the worker's busy timeout. PostgreSQL: the
    worker's connection is terminated while its write waits. Either way the write fails."""
    from sqlalchemy import text

    blocker = WriteBlocker(base_env["DATABASE_URL"])
    postgres = blocker.engine.dialect.name == "postgresql"

    def answer_then_block_writes(request):
        if blocker.connection is None:
            blocker.hold()
        return 200, {}, b"ok"

    with Receiver(handler=answer_then_block_writes) as receiver:
        make_endpoint(receiver.url, timeout=2)
        worker = start_worker(env={"WEBHOOKS_SQLITE_BUSY_TIMEOUT_MS": "300"})
        [event] = emit_many([("checkout", "c1", {})])
        try:
            receiver.wait_for(1)
            if postgres:  # every connection whose write waits (the worker's ledger, maybe its sweep too)
                with blocker.engine.connect() as admin:
                    waiting = wait_until(lambda: admin.execute(text(
                        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                    )).scalars().all(), message="the worker's write is waiting")
                    for pid in waiting:
                        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            wait_until(lambda: "delivery write failed" in worker.output(), timeout=20,
                       message="the failed write was logged")
        finally:
            blocker.release()
        # The write is tried again (it may then go through) or, failing that, the lease runs out
        # and the message is sent again: either way it ends done, with the same Webhook-Id.
        message = final(event.messages[0].id, timeout=30)
        assert message.status == DONE and message.attempts == len(receiver.requests)
        assert {r.header("Webhook-Id") for r in receiver.requests} == {event.id}


def test_an_interrupted_last_attempt_gets_one_more_try_instead_of_failing(app, base_env, start_worker):
    """The receiver may have taken it: with the outcome unknown, the message is not marked failed."""
    blocker = WriteBlocker(base_env["DATABASE_URL"])

    def answer_then_freeze_writes(request):
        if blocker.connection is None:
            blocker.hold()
        return 200, {}, b"ok"

    with Receiver(handler=answer_then_freeze_writes) as receiver:
        make_endpoint(receiver.url, timeout=2)
        worker = start_worker(env={"WEBHOOKS_MAX_ATTEMPTS": "1"})
        [event] = emit_many([("checkout", "c1", {})])
        [first] = receiver.wait_for(1)
        wait_until(lambda: first.status == 200, message="the receiver answered 200")
        worker.kill()
        blocker.release()

        start_worker(env={"WEBHOOKS_MAX_ATTEMPTS": "1"})
        message = final(event.messages[0].id, timeout=30)
        assert message.status == DONE and message.attempts == 2
        assert [a.error for a in attempts_of(message.id)] == [LOST_ATTEMPT_ERROR, None]
