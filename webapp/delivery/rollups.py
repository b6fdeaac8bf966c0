"""The per-minute, per-hour and per-day delivery rollups (stats_minute, stats_hour, stats_day), kept as
outcomes are written.

Counted in the ledger's transaction with the outcomes themselves, so the rollups
never disagree with the messages: the dashboard and /metrics read them instead of
counting millions of messages. Per endpoint and period: attempts and what each led
to (done, retried, failed), attempt durations in DURATION_BUCKETS_MS buckets, and
for messages that ended done their emit-to-delivery latency in LATENCY_BUCKETS_MS
buckets (from the message's creation, so a resend counts from when it was resent).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection

from ..signing.request import MessageContent
from ..storage import bulk
from ..storage.models import (
    DURATION_BUCKETS_MS,
    LATENCY_BUCKETS_MS,
    StatsDay,
    StatsHour,
    StatsMinute,
)
from ..storage.statuses import DONE, FAILED, RESENT, RetryPolicy
from .outcome import Outcome

DURATION_COLUMNS = tuple(f"d{i}" for i in range(len(DURATION_BUCKETS_MS) + 1))
LATENCY_COLUMNS = tuple(f"l{i}" for i in range(len(LATENCY_BUCKETS_MS) + 1))
STAT_COLUMNS = ("attempts", "succeeded", "done", "failed", "retried", "duration_ms", *DURATION_COLUMNS,
                "latency_ms", *LATENCY_COLUMNS)
KEY = ("endpoint_id", "start")
# Counts are lists in STAT_COLUMNS' order: a fan-out writes a row per endpoint into each table, and
# a dict per row (what SQLAlchemy's executemany takes) cost the ledger a tenth of its time.
ATTEMPTS, SUCCEEDED, ENDED_DONE, ENDED_FAILED, RETRIED, DURATION_MS = range(6)
FIRST_DURATION = STAT_COLUMNS.index("d0")
LATENCY_MS = STAT_COLUMNS.index("latency_ms")
FIRST_LATENCY = STAT_COLUMNS.index("l0")

PERIODS = ((StatsMinute.__table__, {}), (StatsHour.__table__, {"minute": 0}),
           (StatsDay.__table__, {"minute": 0, "hour": 0}))


def add_stats(conn: Connection, results_by_endpoint: dict[int, list[tuple[MessageContent, Outcome]]],
              policy: RetryPolicy) -> None:
    """Count outcomes into the per-minute, -hour and -day rollups: one statement per table, rows in key order.

    Each outcome is counted once, into its minute; hours and days add up those minutes (a batch
    spans a minute or two, so that is a handful of sums, not one count per outcome and period).
    """
    minutes: dict[tuple[int, dt.datetime], list[int]] = {}
    for endpoint_id, results in results_by_endpoint.items():
        for content, outcome in results:
            key = (endpoint_id, outcome.started_at.replace(second=0, microsecond=0))
            counts = minutes.get(key) or minutes.setdefault(key, [0] * len(STAT_COLUMNS))
            count(counts, content, outcome, policy.next_status(outcome.succeeded, content.attempt_number))
    for table, truncate in PERIODS:
        periods: dict[tuple[int, dt.datetime], list[int]] = {}
        for (endpoint_id, minute), counts in minutes.items():
            key = (endpoint_id, minute.replace(**truncate))
            summed = periods.get(key)
            periods[key] = counts if summed is None else [a + b for a, b in zip(summed, counts)]
        bulk.add_rows(conn, table, KEY, STAT_COLUMNS, [(*key, *counts) for key, counts in sorted(periods.items())])


def count(counts: list[int], content: MessageContent, outcome: Outcome, status: str) -> None:
    counts[ATTEMPTS] += 1
    counts[SUCCEEDED] += outcome.succeeded
    counts[ENDED_DONE] += status == DONE
    counts[ENDED_FAILED] += status == FAILED
    counts[RETRIED] += status == RESENT
    counts[DURATION_MS] += outcome.duration_ms
    counts[FIRST_DURATION + bucket(DURATION_BUCKETS_MS, outcome.duration_ms)] += 1
    if status == DONE:
        since = content.queued_at or content.created_at
        latency = max(0, int((outcome.finished_at - since).total_seconds() * 1000))
        counts[LATENCY_MS] += latency
        counts[FIRST_LATENCY + bucket(LATENCY_BUCKETS_MS, latency)] += 1


def bucket(bounds: tuple[int, ...], value_ms: int) -> int:
    """The index of the first bound ``value_ms`` does not exceed; len(bounds) past the last."""
    for index, bound in enumerate(bounds):
        if value_ms <= bound:
            return index
    return len(bounds)
