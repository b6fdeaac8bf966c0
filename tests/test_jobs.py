"""RQ entry points: backend code enqueues "webapp.jobs.emit" by name; bad arguments fail the job, not the worker."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus

from tests.support.factories import final, make_endpoint
from tests.support.waiting import wait_until
from webapp.extensions import db
from webapp.storage.models import Event
from webapp.storage.statuses import DONE

pytestmark = pytest.mark.db


def enqueue_from_a_process_without_the_app(redis_url: str, func: str, *args) -> str:
    """Backend code shares only Redis: it must not need to import webapp."""
    script = textwrap.dedent(f"""
        import sys
        from redis import Redis
        from rq import Queue
        job = Queue("webhooks", connection=Redis.from_url({redis_url!r})).enqueue({func!r}, *{args!r})
        assert "webapp" not in sys.modules
        print(job.id)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True)
    return result.stdout.strip()


def test_emit_job_enqueued_by_name_is_recorded_and_delivered(app, receiver, start_worker, redis_server):
    make_endpoint(receiver.url, actions=["reward_claimed"])
    start_worker()
    enqueue_from_a_process_without_the_app(redis_server.url, "webapp.jobs.emit", "reward_claimed", "cust-7", {"reward": "mug"})

    [request] = receiver.wait_for(1)
    assert request.json()["data"] == {"reward": "mug"}
    event = db.session.scalars(db.select(Event)).one()
    assert event.customer == "cust-7"
    assert final(event.messages[0].id).status == DONE


def test_emit_many_job_enqueued_by_name_records_the_list_in_one_go(app, receiver, start_worker, redis_server):
    make_endpoint(receiver.url, actions=["reward_claimed"])
    start_worker()
    events = [{"action": "reward_claimed", "customer": f"cust-{i}", "data": {"i": i}} for i in range(5)]
    job_id = enqueue_from_a_process_without_the_app(redis_server.url, "webapp.jobs.emit_many", events)

    requests = receiver.wait_for(5)
    assert sorted(r.json()["data"]["i"] for r in requests) == list(range(5))
    receipts = Job.fetch(job_id, connection=Redis.from_url(redis_server.url)).return_value()
    stored = {e.id: e.customer for e in db.session.scalars(db.select(Event))}
    assert [stored[r["event_id"]] for r in receipts] == [f"cust-{i}" for i in range(5)]
    assert all(final(r["message_ids"][0]).status == DONE for r in receipts)


@pytest.mark.parametrize(
    "func, args, expected",
    [
        ("webapp.jobs.emit", ("checkout", "c1", "not an object"), "data: must be a JSON object"),
        ("webapp.jobs.emit", ("", "c1", {}), "action: must not be empty"),
        ("webapp.jobs.deliver", ("seven",), "endpoint_id: must be an integer"),
        ("webapp.jobs.emit_many", ([{"action": "checkout", "customer": "c1", "data": {}},
                                    {"action": "checkout", "customer": "", "data": {}}],),
         "[1].customer: must not be empty"),
        ("webapp.jobs.emit_many", ([("checkout", "c1", {})],), "[0].event: must be a JSON object"),
        ("webapp.jobs.emit_many", ({"action": "checkout", "customer": "c1", "data": {}},),
         "events: must be a list of event objects, got dict"),
        ("webapp.jobs.emit_many", ([],), "events: holds 0 events; send 1 to 1000 at a time"),
    ],
)
def test_bad_job_arguments_fail_the_job_with_the_field_and_the_worker_lives_on(
    app, receiver, start_worker, redis_server, func, args, expected
):
    make_endpoint(receiver.url)
    redis = Redis.from_url(redis_server.url)
    worker = start_worker()
    bad_id = enqueue_from_a_process_without_the_app(redis_server.url, func, *args)
    job = wait_until(
        lambda: (j := Job.fetch(bad_id, connection=redis)).get_status() == JobStatus.FAILED and j,
        message="the bad job did not fail",
    )
    assert expected in job.latest_result().exc_string
    assert db.session.scalar(db.select(db.func.count()).select_from(Event)) == 0

    Queue("webhooks", connection=redis).enqueue("webapp.jobs.emit", "checkout", "c2", {"ok": True})
    receiver.wait_for(1)
    assert worker.process.poll() is None, "the worker survived the bad job"


def test_the_app_configures_the_orm_before_a_worker_starts_threads_or_forks(base_env):
    """SQLAlchemy configures mappers on first use under a process-wide lock; a work-horse forked while the
    worker's maintenance thread held it hung forever. create_app() configures them up front."""
    import subprocess

    script = ("from webapp import create_app; from webapp.extensions import db; create_app(); "
              "print(db.Model.registry._new_mappers)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "False", result.stdout + result.stderr
