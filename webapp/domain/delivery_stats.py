"""The dashboard's numbers, from the per-hour and per-day rollups the delivery path keeps.

Per endpoint: deliveries per hour over the last 24 hours and per day over the last 30
days, by what each attempt led to (done, retried, failed); success rate; emit-to-delivery
latency p50/p95. A day is a UTC day. Reading the rollups costs 24 + 30 rows per endpoint
whatever the log holds (their primary key is (endpoint_id, start)).

Percentiles come from bucket counts (LATENCY_BUCKETS_MS), interpolated linearly inside the
bucket as Prometheus' histogram_quantile does: exact to the bucket, not to the millisecond.
A percentile in the open last bucket is reported as "over" its lower bound.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select

from ..delivery.rollups import LATENCY_COLUMNS
from ..extensions import db
from ..storage.id_lists import one_of
from ..storage.models import LATENCY_BUCKETS_MS, StatsDay, StatsHour, utcnow

OUTCOMES = ("done", "retried", "failed")
SUMMED = ("attempts", "succeeded", *OUTCOMES, *LATENCY_COLUMNS)
HOURS, DAYS = 24, 30


@dataclass
class Period:
    """One bar: a period's counts."""

    start: dt.datetime
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SUMMED, 0))

    @property
    def total(self) -> int:
        return sum(self.counts[o] for o in OUTCOMES)

    def add(self, other: dict[str, int]) -> None:
        for name in SUMMED:
            self.counts[name] += int(other[name] or 0)


@dataclass(frozen=True)
class Quantile:
    ms: float
    over: bool = False  # in the open last bucket: at least ``ms``


@dataclass
class EndpointStats:
    hours: list[Period]
    days: list[Period]

    def summary(self, periods: str) -> Period:
        total = Period(start=dt.datetime.min)
        for period in getattr(self, periods):
            total.add(period.counts)
        return total


def success_rate(period: Period) -> float | None:
    attempts = period.counts["attempts"]
    return period.counts["succeeded"] / attempts if attempts else None


def latency(period: Period, q: float) -> Quantile | None:
    return quantile(LATENCY_BUCKETS_MS, [period.counts[c] for c in LATENCY_COLUMNS], q)


def quantile(bounds: tuple[int, ...], counts: list[int], q: float) -> Quantile | None:
    """The q-quantile of values counted in buckets with these upper bounds (the last bucket is open)."""
    total = sum(counts)
    if not total:
        return None
    rank, seen = q * total, 0
    for index, number in enumerate(counts):
        if number and seen + number >= rank:
            if index == len(bounds):
                return Quantile(bounds[-1], over=True)
            low = bounds[index - 1] if index else 0
            return Quantile(low + (bounds[index] - low) * (rank - seen) / number)
        seen += number
    return Quantile(bounds[-1], over=True)


def hour_start(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def endpoint_stats(endpoint_ids: list[int], now: dt.datetime | None = None) -> dict[int, EndpointStats]:
    """The last 24 hours (hourly) and 30 days (daily) of every endpoint asked for; empty periods included."""
    now = now or utcnow()
    first_hour = hour_start(now) - dt.timedelta(hours=HOURS - 1)
    first_day = now.replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=DAYS - 1)
    found = {e: EndpointStats(hours=[Period(first_hour + dt.timedelta(hours=i)) for i in range(HOURS)],
                              days=[Period(first_day + dt.timedelta(days=i)) for i in range(DAYS)])
             for e in endpoint_ids}
    if endpoint_ids:
        for table, first, step, kind in ((StatsHour, first_hour, 3600, "hours"), (StatsDay, first_day, 86400, "days")):
            for row in db.session.execute(
                select(table.endpoint_id, table.start, *[getattr(table, name) for name in SUMMED])
                .where(one_of(table.endpoint_id, endpoint_ids), table.start >= first)
            ).mappings():
                index = int((row["start"] - first).total_seconds() // step)
                periods = getattr(found[row["endpoint_id"]], kind)
                if 0 <= index < len(periods):
                    periods[index].add(row)
    return found
