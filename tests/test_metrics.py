"""/metrics: who may read it, and its numbers against the database while a real worker delivers."""
from __future__ import annotations

import ipaddress

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from tests.support.factories import make_endpoint
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until
from webapp.domain.events import emit_many
from webapp.extensions import db
from webapp.storage.models import Attempt, Message, StatsDay, StatsHour, StatsMinute
from webapp.storage.statuses import DONE, FAILED

pytestmark = pytest.mark.db

TOKEN = "scrape-secret-token"


def scrape(client, token: str = TOKEN) -> dict[tuple, float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=0.0.4")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True)) for sample in family.samples}


def value(samples: dict, metric: str, **labels) -> float:
    return samples[metric, tuple(sorted({k: str(v) for k, v in labels.items()}.items()))]


def test_metrics_are_off_until_configured_then_need_the_token_or_an_allowed_address(app, client):
    assert client.get("/metrics").status_code == 404
    app.config["WEBHOOKS_METRICS_TOKEN"] = TOKEN
    refused = client.get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics").status_code == 401
    assert scrape(client) is not None
    app.config["WEBHOOKS_METRICS_TOKEN"] = None
    app.config["WEBHOOKS_METRICS_ALLOW"] = (ipaddress.ip_network("10.0.0.0/8"),)
    assert client.get("/metrics").status_code == 403  # the test client comes from 127.0.0.1
    app.config["WEBHOOKS_METRICS_ALLOW"] = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32"))
    assert client.get("/metrics").status_code == 200


def database_counts(endpoint_ids) -> dict:
    """What the metrics should say, counted from the messages and attempts themselves."""
    db.session.rollback()
    found = {}
    for endpoint_id in endpoint_ids:
        status = dict(db.session.execute(select(Message.status, func.count()).where(Message.endpoint_id == endpoint_id)
                                         .group_by(Message.status)).all())
        attempts = db.session.scalar(select(func.count()).select_from(Attempt).join(Message)
                                     .where(Message.endpoint_id == endpoint_id))
        waiting = db.session.scalar(select(func.count()).select_from(Message)
                                    .where(Message.endpoint_id == endpoint_id, Message.next_attempt_at.is_not(None)))
        found[endpoint_id] = {"done": status.get(DONE, 0), "failed": status.get(FAILED, 0), "attempts": attempts,
                              "waiting": waiting}
    db.session.rollback()
    return found


def metric_counts(samples: dict, endpoint_id: int) -> dict:
    attempts = sum(value(samples, "webhooks_attempts_total", endpoint=endpoint_id, outcome=o)
                   for o in ("done", "retried", "failed"))
    return {"done": value(samples, "webhooks_deliveries_total", endpoint=endpoint_id, outcome="done"),
            "failed": value(samples, "webhooks_deliveries_total", endpoint=endpoint_id, outcome="failed"),
            "attempts": attempts, "waiting": value(samples, "webhooks_backlog_messages", endpoint=endpoint_id)}


def test_a_scrape_while_deliveries_run_matches_the_database(app, client, start_worker):
    app.config["WEBHOOKS_METRICS_TOKEN"] = TOKEN
    with Receiver() as fine, Receiver(fail_first=7) as flaky, Receiver(status=500) as broken:
        endpoints = [make_endpoint(fine.url, name="Fine", actions=["checkout"]),
                     make_endpoint(flaky.url, name="Flaky", actions=["checkout"]),
                     make_endpoint(broken.url, name="Broken", actions=["opt_out"])]
        ids = [e.id for e in endpoints]
        emit_many([("checkout", f"c{i}", {"n": i}) for i in range(300)] + [("opt_out", "c", {})] * 3)
        start_worker()

        scrapes, seen_backlog, last = 0, False, None
        while True:
            before = database_counts(ids)
            samples = scrape(client)
            after = database_counts(ids)
            for endpoint_id in ids:
                got = metric_counts(samples, endpoint_id)
                for name in ("done", "failed", "attempts"):  # counters lie between two counts of the truth
                    assert before[endpoint_id][name] <= got[name] <= after[endpoint_id][name], (name, endpoint_id)
                    if last:
                        assert got[name] >= last[endpoint_id][name], "a counter went back"
                assert after[endpoint_id]["waiting"] <= got["waiting"] <= before[endpoint_id]["waiting"]
                seen_backlog |= got["waiting"] > 0 and got["done"] > 0
            last = {e: metric_counts(samples, e) for e in ids}
            scrapes += 1
            if all(after[e]["waiting"] == 0 for e in ids):
                break
            wait_until(lambda: database_counts(ids) != after, timeout=30, interval=0.05, message="no progress")
        assert seen_backlog and scrapes > 2, "scraped while deliveries were under way"

        final = scrape(client)
        truth = database_counts(ids)
        for endpoint_id in ids:
            assert metric_counts(final, endpoint_id) == {**truth[endpoint_id], "waiting": 0}
            attempts = truth[endpoint_id]["attempts"]
            assert value(final, "webhooks_attempt_duration_seconds_count", endpoint=endpoint_id) == attempts
            assert value(final, "webhooks_attempt_duration_seconds_bucket", endpoint=endpoint_id, le="+Inf") == attempts
            assert value(final, "webhooks_delivery_latency_seconds_count", endpoint=endpoint_id) \
                == truth[endpoint_id]["done"]
            assert value(final, "webhooks_backlog_oldest_age_seconds", endpoint=endpoint_id) == 0
        fine_id, flaky_id, broken_id = ids
        assert truth[fine_id] == {"done": 300, "failed": 0, "attempts": 300, "waiting": 0}
        assert truth[flaky_id]["done"] == 300 and value(final, "webhooks_attempts_total", endpoint=flaky_id,
                                                        outcome="retried") == 7
        assert truth[broken_id]["failed"] == 3
        assert value(final, "webhooks_delivery_latency_seconds_sum", endpoint=fine_id) > 0
        assert value(final, "webhooks_endpoint_state", endpoint=broken_id, state="failing") == 1
        assert value(final, "webhooks_endpoint_state", endpoint=fine_id, state="healthy") == 1
        assert value(final, "webhooks_endpoint_info", endpoint=fine_id, name="Fine") == 1
        # The dashboard's hours and the metrics' days are the same outcomes, summed differently.
        for table in (StatsHour, StatsMinute):
            assert rollup_sums(table) == rollup_sums(StatsDay)


def rollup_sums(table) -> list:
    columns = [func.sum(getattr(table, name)) for name in ("attempts", "done", "failed", "retried", "latency_ms", "l2")]
    found = db.session.execute(select(table.endpoint_id, *columns).group_by(table.endpoint_id)
                               .order_by(table.endpoint_id)).all()
    db.session.rollback()
    return [tuple(row) for row in found]
