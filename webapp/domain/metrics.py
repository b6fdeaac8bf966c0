"""Prometheus metrics, computed from the database at scrape time.

Why not counters in process memory (or prometheus-client's multiprocess mode): deliveries
happen in RQ worker processes on any number of machines, and /metrics is answered by any
gunicorn process on any machine. Multiprocess mode only merges processes that share one
directory on one host, and loses counts when that directory is cleared on restart. The
database already holds the truth: the rollups (stats_day here) are written in the same
transaction as every outcome, so counters read from them are exact, never go back, and
every web process answers the same numbers. Gauges (backlog, state) are read live from
the pending-message indexes. One scrape reads stats_day (a row per endpoint and day) and
what webapp/domain/queue.py reads.

Not counted: attempts that a dead worker left unfinished (the sweep records them as
"delivery interrupted" without an outcome), and the settings page's Test messages.
"""
from __future__ import annotations

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import CollectorRegistry
from sqlalchemy import func, select

from ..delivery.rollups import DURATION_COLUMNS, LATENCY_COLUMNS
from ..extensions import db
from ..storage.endpoint_lookups import live_endpoints
from ..storage.id_lists import one_of
from ..storage.models import (
    DURATION_BUCKETS_MS,
    LATENCY_BUCKETS_MS,
    StatsDay,
    utcnow,
)
from .endpoint_health import STATE_LABELS, health_of
from .queue import Backlog, backlogs

TOTALS = ("attempts", "done", "failed", "retried", "duration_ms", "latency_ms", *DURATION_COLUMNS, *LATENCY_COLUMNS)


class DeliveryCollector:
    """Every ``webhooks_`` metric, per live endpoint (label ``endpoint`` = its id)."""

    def collect(self):
        now = utcnow()
        endpoints = live_endpoints()
        ids = [e.id for e in endpoints]
        totals = rollup_totals(ids)
        waiting = backlogs(ids, exact=True)

        info = GaugeMetricFamily("webhooks_endpoint_info", "An endpoint's name, by id (always 1).",
                                 labels=["endpoint", "name"])
        state = GaugeMetricFamily("webhooks_endpoint_state",
                                  "1 for the state the endpoint is in: healthy, failing, waiting, paused, disabled.",
                                  labels=["endpoint", "state"])
        deliveries = CounterMetricFamily("webhooks_deliveries", "Messages that ended: done (delivered) or failed "
                                         "(gave up after the last attempt).", labels=["endpoint", "outcome"])
        attempts = CounterMetricFamily("webhooks_attempts", "Attempts, by what they led to: done, retried, failed.",
                                       labels=["endpoint", "outcome"])
        durations = HistogramMetricFamily("webhooks_attempt_duration_seconds",
                                          "How long attempts took, connect to last byte.", labels=["endpoint"])
        latency = HistogramMetricFamily("webhooks_delivery_latency_seconds",
                                        "From a message's creation (the event, or its resend) to its delivery.",
                                        labels=["endpoint"])
        backlog = GaugeMetricFamily("webhooks_backlog_messages", "Messages not final yet (waiting to be sent, "
                                    "waiting for a retry, or being sent).", labels=["endpoint"])
        retrying = GaugeMetricFamily("webhooks_backlog_retrying_messages", "Of those, messages waiting for a retry.",
                                     labels=["endpoint"])
        age = GaugeMetricFamily("webhooks_backlog_oldest_age_seconds",
                                "Age of the oldest message not final yet (0 when none waits).", labels=["endpoint"])
        for endpoint in endpoints:
            label = str(endpoint.id)
            info.add_metric([label, endpoint.name], 1)
            current = health_of(endpoint).state(now)
            for name in STATE_LABELS:
                state.add_metric([label, name], 1 if name == current else 0)
            counts = totals.get(endpoint.id, dict.fromkeys(TOTALS, 0))
            for outcome in ("done", "failed"):
                deliveries.add_metric([label, outcome], counts[outcome])
            for outcome in ("done", "retried", "failed"):
                attempts.add_metric([label, outcome], counts[outcome])
            durations.add_metric([label], histogram(DURATION_BUCKETS_MS, [counts[c] for c in DURATION_COLUMNS]),
                                 counts["duration_ms"] / 1000)
            latency.add_metric([label], histogram(LATENCY_BUCKETS_MS, [counts[c] for c in LATENCY_COLUMNS]),
                               counts["latency_ms"] / 1000)
            found = waiting.get(endpoint.id, Backlog())
            backlog.add_metric([label], found.waiting)
            retrying.add_metric([label], found.retrying)
            age.add_metric([label], round(found.age_seconds(now), 3))
        yield from (info, state, deliveries, attempts, durations, latency, backlog, retrying, age)


def rollup_totals(endpoint_ids: list[int]) -> dict[int, dict[str, int]]:
    if not endpoint_ids:
        return {}
    rows = db.session.execute(
        select(StatsDay.endpoint_id, *[func.sum(getattr(StatsDay, name)).label(name) for name in TOTALS])
        .where(one_of(StatsDay.endpoint_id, endpoint_ids)).group_by(StatsDay.endpoint_id)
    ).mappings()
    return {row["endpoint_id"]: {name: int(row[name] or 0) for name in TOTALS} for row in rows}


def histogram(bounds_ms: tuple[int, ...], counts: list[int]) -> list[tuple[str, int]]:
    """Per-bucket counts as Prometheus' cumulative ``le`` buckets, in seconds, ending with +Inf."""
    cumulative, seen = [], 0
    for bound, number in zip(bounds_ms, counts):
        seen += number
        cumulative.append((f"{bound / 1000:g}", seen))
    cumulative.append(("+Inf", seen + counts[-1]))
    return cumulative


def registry() -> CollectorRegistry:
    found = CollectorRegistry(auto_describe=False)
    found.register(DeliveryCollector())
    return found
