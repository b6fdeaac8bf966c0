"""The per-minute and per-hour delivery rollups (stats_minute, stats_hour), counted as outcomes are written."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..signing.request import MessageContent
from ..storage.models import DURATION_BUCKETS_MS, StatsHour, StatsMinute
from ..storage.statuses import DONE, FAILED, RESENT, RetryPolicy
from .outcome import Outcome

STAT_COLUMNS = ("attempts", "succeeded", "done", "failed", "retried", "duration_ms", *(f"d{i}" for i in range(11)))
_UPSERTS: dict[tuple[str, str], object] = {}


def add_stats(conn: Connection, results_by_endpoint: dict[int, list[tuple[MessageContent, Outcome]]],
              policy: RetryPolicy) -> None:
    """Count outcomes into the per-minute and per-hour rollups: one statement per table, rows in key order."""
    for table, width in ((StatsMinute.__table__, "minute"), (StatsHour.__table__, "hour")):
        buckets: dict[tuple[int, dt.datetime], dict[str, int]] = defaultdict(lambda: dict.fromkeys(STAT_COLUMNS, 0))
        for endpoint_id, results in results_by_endpoint.items():
            for content, outcome in results:
                start = outcome.started_at.replace(second=0, microsecond=0)
                if width == "hour":
                    start = start.replace(minute=0)
                counts = buckets[endpoint_id, start]
                status = policy.next_status(outcome.succeeded, content.attempt_number)
                counts["attempts"] += 1
                counts["succeeded"] += outcome.succeeded
                counts["done"] += status == DONE
                counts["failed"] += status == FAILED
                counts["retried"] += status == RESENT
                counts["duration_ms"] += outcome.duration_ms
                counts[f"d{duration_bucket(outcome.duration_ms)}"] += 1
        rows = [{"endpoint_id": key[0], "start": key[1], **counts} for key, counts in sorted(buckets.items())]
        if rows:
            conn.execute(_upsert_statement(conn.dialect.name, table), rows)


def _upsert_statement(dialect: str, table):
    key = (dialect, table.name)
    if key not in _UPSERTS:
        statement = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
        _UPSERTS[key] = statement.on_conflict_do_update(
            index_elements=["endpoint_id", "start"],
            set_={name: table.c[name] + statement.excluded[name] for name in STAT_COLUMNS},
        )
    return _UPSERTS[key]


def duration_bucket(duration_ms: int) -> int:
    for index, bound in enumerate(DURATION_BUCKETS_MS):
        if duration_ms <= bound:
            return index
    return len(DURATION_BUCKETS_MS)
