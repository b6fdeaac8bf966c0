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
from collections import defaultdict

from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..signing.request import MessageContent
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
_UPSERTS: dict[tuple[str, str], object] = {}


PERIODS = ((StatsMinute.__table__, {}), (StatsHour.__table__, {"minute": 0}),
           (StatsDay.__table__, {"minute": 0, "hour": 0}))


def add_stats(conn: Connection, results_by_endpoint: dict[int, list[tuple[MessageContent, Outcome]]],
              policy: RetryPolicy) -> None:
    """Count outcomes into the per-minute, -hour and -day rollups: one statement per table, rows in key order.

    Each outcome is counted once, into its minute; hours and days add up those minutes (a batch
    spans a minute or two, so that is a handful of sums, not one count per outcome and period).
    """
    minutes: dict[tuple[int, dt.datetime], dict[str, int]] = defaultdict(lambda: dict.fromkeys(STAT_COLUMNS, 0))
    for endpoint_id, results in results_by_endpoint.items():
        for content, outcome in results:
            status = policy.next_status(outcome.succeeded, content.attempt_number)
            count(minutes[endpoint_id, outcome.started_at.replace(second=0, microsecond=0)], content, outcome, status)
    for table, truncate in PERIODS:
        buckets: dict[tuple[int, dt.datetime], dict[str, int]] = defaultdict(lambda: dict.fromkeys(STAT_COLUMNS, 0))
        for (endpoint_id, minute), counts in minutes.items():
            period = buckets[endpoint_id, minute.replace(**truncate)]
            for name, value in counts.items():
                period[name] += value
        rows = [{"endpoint_id": key[0], "start": key[1], **counts} for key, counts in sorted(buckets.items())]
        if rows:
            conn.execute(_upsert_statement(conn.dialect.name, table), rows)


def count(counts: dict[str, int], content: MessageContent, outcome: Outcome, status: str) -> None:
    counts["attempts"] += 1
    counts["succeeded"] += outcome.succeeded
    counts["done"] += status == DONE
    counts["failed"] += status == FAILED
    counts["retried"] += status == RESENT
    counts["duration_ms"] += outcome.duration_ms
    counts[DURATION_COLUMNS[bucket(DURATION_BUCKETS_MS, outcome.duration_ms)]] += 1
    if status == DONE:
        since = content.queued_at or content.created_at
        latency = max(0, int((outcome.finished_at - since).total_seconds() * 1000))
        counts["latency_ms"] += latency
        counts[LATENCY_COLUMNS[bucket(LATENCY_BUCKETS_MS, latency)]] += 1


def _upsert_statement(dialect: str, table):
    key = (dialect, table.name)
    if key not in _UPSERTS:
        statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
        _UPSERTS[key] = statement.on_conflict_do_update(
            index_elements=["endpoint_id", "start"],
            set_={name: table.c[name] + statement.excluded[name] for name in STAT_COLUMNS},
        )
    return _UPSERTS[key]


def bucket(bounds: tuple[int, ...], value_ms: int) -> int:
    """The index of the first bound ``value_ms`` does not exceed; len(bounds) past the last."""
    for index, bound in enumerate(bounds):
        if value_ms <= bound:
            return index
    return len(bounds)
