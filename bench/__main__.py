"""``python -m bench [--quick] [--only SCENARIO ...] [--database URL ...] [--repeat K]``

Runs every throughput and latency scenario on this machine, in one run, and
prints one ``name value unit`` line per figure as it becomes available. It
ends with the lines other tools read:

    ratio_vs_ceiling X                 product / raw sender loop
    ratio_vs_rq_per_message X          product / baseline A (one RQ job per message)
    ratio_vs_celery X                  product / baseline B (Celery, one task per message)
    slow_receiver_deliveries_per_s X   product, queue batches on, 100 ms receiver
    isolation_healthy_p95_s X          a healthy endpoint's p95 latency while 10 others hang
    fanout_1000_endpoints_deliveries_per_s X   one event to 1,000 endpoints
    retry_gap_max_error_s X            how far a retry strays from its schedule
    ratio_pg_vs_sqlite X               product on PostgreSQL / on SQLite (queue batches on; _batch_off: off)
    ratio_vs_urllib3_ceiling X         product / a raw urllib3 keep-alive loop (same worker count)
    worker_rss_growth_ratio X          a worker's RSS after 100,000 deliveries / after the first 10,000
    emit_http_batch_events_per_s X     one client posting lists of 500 events over HTTP

A ratio whose two sides ran in turns (the ceilings and the product on the fast receiver, 5 turns in
a full run) is the median of its per-turn ratios, each taken from two runs made one after the other
(the per-turn ratios and the ratio of the medians go to stderr).

Per database, ``dashboard_<sqlite|postgresql>_ms`` (target < 100) and its neighbours come
from bench/dashboard.py: 10 million messages (50,000 and 7 days of per-minute rollups with --quick).

The first four use 2 worker processes and the first database of the run
(SQLite unless ``--database`` says otherwise); the first three use the fast
receiver. The next three are the bad days' scenarios (bench/bad_days.py) on
the default set-up of ``make run``: a worker process per core, at most 4. The last is
bench/emit_batches.py on the first database (gunicorn as ``make run`` starts it).
Progress and failures go to stderr as ``#`` lines; stdout holds figures only.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

from webapp.config import default_workers

from . import (
    bad_days,
    baseline_celery,
    baseline_rq,
    ceiling,
    dashboard,
    emit_batches,
    memory,
    scenarios,
)
from .receivers import NGINX, fast_receiver, slow_receiver
from .stack import (
    DatabaseKind,
    Figure,
    database_kind_for,
    ensure_postgres_database,
    postgres_reachable,
    psql,
)

SCENARIOS = ("ceiling", "emit", "emit_http", "batch_on_fast", "batch_off_fast", "batch_on_slow", "rq", "celery",
             "latency", "isolation", "fanout", "retry_gap", "memory", "dashboard")
WORKER_COUNTS = (1, 2)
BAD_DAYS = ("isolation", "fanout", "retry_gap")
MAKE_RUN_WORKERS = default_workers()  # the worker processes of the default set-up (`make run`)
FAST_RECEIVER = {"batch_on_fast": True, "batch_off_fast": False}  # scenario: queue batches
TAKING_TURNS = ("ceiling", *FAST_RECEIVER)
BRIEF = ("fanout",)  # a figure measured over about a second: one busy moment of the machine moves it most
RESULTS_PATH = Path(__file__).resolve().parent / "RESULTS.md"
Scenario = Callable[[], list[Figure]]


@dataclass(frozen=True)
class Plan:
    """How big each scenario is. Baseline A costs the same per message whatever N is
    (a fork and two commits per job, ~30/s here), so it runs fewer messages than N
    to keep a full run under half an hour; its rate does not depend on the count."""

    count: int
    baseline_rq_count: int
    baseline_celery_count: int
    latency_seconds: float
    latency_rate: float
    repeat: int
    only: frozenset[str]
    databases: tuple[DatabaseKind, ...]
    quick: bool = False

    def wants(self, scenario: str) -> bool:
        return not self.only or scenario in self.only

    def runs(self, scenario: str) -> int:
        """Runs per figure (the median is printed). In a full run, 5 for the ceilings and
        the product on the fast receiver on each database, taking turns (the sides of
        ``ratio_vs_ceiling`` and ``ratio_pg_vs_sqlite``, cheap and swinging most on a busy
        shared 2-core machine: one turn's ratio PostgreSQL / SQLite ranged from 0.69 to 1.14
        within an hour), 3 for the BRIEF ones; ``--repeat`` (default 1) for the
        rest, and for everything in ``--quick``, whose figures are approximate: each run
        spends 3-4 s starting workers on a slow hour, and 2 runs kept it over two minutes."""
        if self.quick:
            return self.repeat
        if scenario in TAKING_TURNS:
            return max(self.repeat, 5)
        if scenario in BRIEF:
            return max(self.repeat, 3)
        return self.repeat

    def worker_counts(self, scenario: str, database: DatabaseKind) -> tuple[int, ...]:
        """Which worker counts to run ``scenario`` with on ``database`` (none: skip it).

        ``--quick`` keeps under two minutes by running only what the closing lines
        need: on the first database 2 workers (the bad days' scenarios as many as
        ``make run`` starts), on the others the product on the fast receiver (the
        two sides of ``ratio_pg_vs_sqlite``).
        """
        if not self.wants(scenario):
            return ()
        if not self.quick:
            return tuple(sorted({*WORKER_COUNTS, MAKE_RUN_WORKERS})) if scenario in BAD_DAYS else WORKER_COUNTS
        if database != self.databases[0]:
            return (2,) if scenario in FAST_RECEIVER else ()
        return (MAKE_RUN_WORKERS,) if scenario in BAD_DAYS else (2,)

    def on_first_database_when_quick(self, scenario: str, database: DatabaseKind) -> bool:
        """Scenarios without worker counts (emit rates, dashboard): ``--quick`` runs them once."""
        return self.wants(scenario) and (not self.quick or database == self.databases[0])


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 2,000 instead of 20,000 (under two minutes)")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, metavar="SCENARIO",
                        help=f"run only these: {', '.join(SCENARIOS)}")
    parser.add_argument("--database", action="append", metavar="URL",
                        help="'sqlite' or a postgresql:// URL (repeatable); default: SQLite, and the local "
                             "PostgreSQL database 'bench' when pg_isready answers on 127.0.0.1")
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure; the median is printed")
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> Plan:
    count = 2_000 if args.quick else 20_000
    return Plan(
        count=count,
        baseline_rq_count=60 if args.quick else 2_000,
        baseline_celery_count=400 if args.quick else count,
        latency_seconds=2.0 if args.quick else 10.0,
        latency_rate=50.0,
        repeat=max(args.repeat, 1),
        only=frozenset(args.only or ()),
        databases=tuple(database_kind_for(url) for url in args.database) if args.database else default_databases(),
        quick=args.quick,
    )


def default_databases() -> tuple[DatabaseKind, ...]:
    if postgres_reachable():
        try:
            return DatabaseKind("sqlite"), ensure_postgres_database()
        except RuntimeError as exc:
            note(f"PostgreSQL answers but the database 'bench' could not be made ({exc}); SQLite only")
    return (DatabaseKind("sqlite"),)


def note(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


class Report:
    """Runs scenarios, prints their figures at once, keeps them for the ratios and RESULTS.md."""

    def __init__(self) -> None:
        self.figures: dict[str, Figure] = {}
        self.turns: dict[str, list[float | None]] = {}  # each figure per turn of run_alternating (None: failed)
        self.lines: list[str] = []
        self.started = time.monotonic()
        self.started_at = dt.datetime.now(dt.timezone.utc)

    def run(self, label: str, scenario: Scenario, repeat: int = 1) -> None:
        self.run_alternating([(label, scenario)], repeat)

    def run_alternating(self, labelled: list[tuple[str, Scenario]], repeat: int) -> None:
        """Run each scenario ``repeat`` times, taking turns (a, b, a, b, …), then print the medians.

        Taking turns puts the two sides of a ratio next to each other in time,
        so a neighbour's load on this shared machine hits both alike.
        """
        runs: dict[str, list[list[Figure] | None]] = {label: [] for label, _ in labelled}
        for attempt in range(repeat):
            for label, scenario in labelled:
                note(f"{self.elapsed()} {label}" + (f" (run {attempt + 1} of {repeat})" if repeat > 1 else ""))
                try:
                    runs[label].append(scenario())
                except Exception as exc:  # noqa: BLE001 - one failed scenario must not end the run
                    runs[label].append(None)
                    note(f"{label} FAILED: {exc}")
                    traceback.print_exc(file=sys.stderr)
        for label, label_runs in runs.items():
            finished = [run for run in label_runs if run is not None]
            if len(finished) > 1:
                note(f"{label} runs: " + "; ".join(", ".join(f"{format_value(f.value)}" for f in run)
                                                    for run in finished))
            self.keep_turns(label_runs)
            for figure in median_figures(finished):
                self.add(figure)

    def keep_turns(self, label_runs: list[list[Figure] | None]) -> None:
        for name in {figure.name for run in label_runs if run for figure in run}:
            self.turns[name] = [next((f.value for f in run if f.name == name), None) if run else None
                                for run in label_runs]

    def paired_ratio(self, name: str, other: str) -> float:
        """``name`` / ``other``: the median of the ratios of the runs made in the same turn when both
        were run in turns (next to each other in time, so a slow minute of the machine hits both sides of
        a pair), else the ratio of the two medians."""
        mine, theirs = self.turns.get(name, []), self.turns.get(other, [])
        pairs = [a / b for a, b in zip(mine, theirs) if a is not None and b]
        if len(mine) > 1 and len(mine) == len(theirs) and pairs:
            note(f"{name} / {other} per turn: " + ", ".join(f"{ratio:.2f}" for ratio in pairs)
                 + f"; ratio of the medians {self.value(name) / self.value(other):.2f}")
            return statistics.median(pairs)
        return self.value(name) / self.value(other)

    def add(self, figure: Figure) -> None:
        self.figures[figure.name] = figure
        self.emit(f"{figure.name} {format_value(figure.value)} {figure.unit}")

    def emit(self, line: str) -> None:
        self.lines.append(line)
        print(line, flush=True)

    def value(self, name: str) -> float:
        figure = self.figures.get(name)
        return figure.value if figure else float("nan")

    def elapsed(self) -> str:
        return f"[{time.monotonic() - self.started:6.1f} s]"


def median_figures(runs: list[list[Figure]]) -> list[Figure]:
    if not runs:
        return []
    by_name: dict[str, list[float]] = {}
    for run in runs:
        for figure in run:
            by_name.setdefault(figure.name, []).append(figure.value)
    return [Figure(f.name, statistics.median(by_name[f.name]), f.unit) for f in runs[0]]


def format_value(value: float) -> str:
    if value != value:  # NaN: a figure that could not be measured
        return "nan"
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def ceiling_scenario(plan: Plan, fast_url: str, workers: int, client: str = "requests") -> tuple[str, Scenario]:
    name = f"ceiling_w{workers}" if client == "requests" else f"ceiling_{client}_w{workers}"
    return name, lambda: ceiling.requests_per_second(fast_url, name=name, count=plan.count, processes=workers,
                                                     client=client)


def run_fast_receiver(report: Report, plan: Plan, fast_url: str, *, with_ceiling: bool) -> None:
    """The product on the fast receiver, queue batches on and off, on every database, taking turns
    per worker count: the sides of ``ratio_pg_vs_sqlite`` next to each other in time. ``with_ceiling``:
    the ceilings (requests and urllib3, same worker count) take turns with the queue batches on runs,
    the other sides of ``ratio_vs_ceiling`` and ``ratio_vs_urllib3_ceiling``."""
    for scenario, queue_batches in FAST_RECEIVER.items():
        for workers in WORKER_COUNTS:
            labelled = [product_scenario(plan, database, scenario, fast_url, workers, queue_batches=queue_batches,
                                         threads=scenarios.FAST_THREADS)
                        for database in plan.databases if workers in plan.worker_counts(scenario, database)]
            if labelled and with_ceiling and scenario == "batch_on_fast":
                labelled[:0] = [ceiling_scenario(plan, fast_url, workers),
                                ceiling_scenario(plan, fast_url, workers, "urllib3")]
            if labelled:
                report.run_alternating(labelled, plan.runs(scenario))


def product_scenario(plan: Plan, database: DatabaseKind, scenario: str, url: str, workers: int, *,
                     queue_batches: bool, threads: int, answered=None) -> tuple[str, Scenario]:
    name = f"product_{scenario}_w{workers}_{database.label}"
    return name, lambda: scenarios.delivery_rate(database, url, name=name, count=plan.count, workers=workers,
                                                 queue_batches=queue_batches, threads=threads, answered=answered)


def run_database(report: Report, plan: Plan, database: DatabaseKind, fast, slow) -> None:
    """Every other scenario that needs a database, on one kind of database."""
    db, fast_url = database.label, fast.url
    if plan.on_first_database_when_quick("emit", database):
        report.run(f"emit_{db}", lambda: scenarios.emit_rates(database, fast_url, plan.count), plan.runs("emit"))
    if plan.on_first_database_when_quick("emit_http", database):
        report.run(f"emit_http_batch_{db}", lambda: emit_batches.http_batch_rate(
            database, fast_url, 5_000 if plan.quick else 20_000), plan.runs("emit_http"))
    for workers in plan.worker_counts("batch_on_slow", database):
        report.run(*product_scenario(plan, database, "batch_on_slow", slow.url, workers, queue_batches=True,
                                     threads=scenarios.SLOW_THREADS, answered=slow.answered),
                   plan.runs("batch_on_slow"))
    for workers in plan.worker_counts("rq", database):
        name = f"baseline_rq_w{workers}_{db}"
        report.run(name, lambda: baseline_rq.delivery_rate(
            database, fast_url, name=name, count=plan.baseline_rq_count, workers=workers), plan.runs("rq"))
    for workers in plan.worker_counts("celery", database):
        name = f"baseline_celery_w{workers}_{db}"
        report.run(name, lambda: baseline_celery.delivery_rate(
            database, fast_url, name=name, count=plan.baseline_celery_count, workers=workers), plan.runs("celery"))
    if plan.worker_counts("latency", database):
        report.run(f"latency_{db}", lambda: scenarios.light_load_latency(
            database, fast_url, rate=plan.latency_rate, seconds=plan.latency_seconds), plan.runs("latency"))
    run_bad_days(report, plan, database, fast_url)
    if plan.on_first_database_when_quick("dashboard", database):
        messages, minute_days = (50_000, 7) if plan.quick else (10_000_000, dashboard.DAYS)
        report.run(f"dashboard_{db}", lambda: dashboard.figures(database, messages, minute_days), plan.repeat)


def run_bad_days(report: Report, plan: Plan, database: DatabaseKind, fast_url: str) -> None:
    """Isolation, fan-out and retry timing with the workers of ``make run`` (and 1 and 2 in the full run)."""
    db = database.label
    for workers in plan.worker_counts("isolation", database):
        name = f"isolation_healthy_p95_s_w{workers}_{db}"
        report.run(name, lambda: bad_days.isolation(database, fast_url, workers=workers, name=name,
                                                    seconds=plan.latency_seconds), plan.runs("isolation"))
    for workers in plan.worker_counts("fanout", database):
        name = f"fanout_1000_endpoints_w{workers}_{db}"
        report.run(name, lambda: bad_days.fanout(database, fast_url, name=name, workers=workers), plan.runs("fanout"))
    for workers in plan.worker_counts("retry_gap", database):
        name = f"retry_gap_max_error_s_w{workers}_{db}"
        interval = 2.0 if plan.quick else 10.0
        report.run(name, lambda: bad_days.retry_gaps(database, fast_url, interval=interval, name=name,
                                                     workers=workers), plan.runs("retry_gap"))
    if plan.worker_counts("memory", database) and database == plan.databases[0]:
        first, total = (1_000, 5_000) if plan.quick else (10_000, 100_000)
        report.run(f"memory_{db}", lambda: memory.rss_growth(database, fast_url, first=first, total=total), 1)


def print_ratios(report: Report, database: DatabaseKind) -> None:
    """The four closing lines: 2 workers, fast receiver (slow for the last), ``database``."""
    db = database.label
    product_name = f"product_batch_on_fast_w2_{db}"
    product = report.value(product_name)
    report.emit(f"ratio_vs_ceiling {format_ratio(report.paired_ratio(product_name, 'ceiling_w2'))}")
    report.emit(f"ratio_vs_rq_per_message {format_ratio(product / report.value(f'baseline_rq_w2_{db}'))}")
    report.emit(f"ratio_vs_celery {format_ratio(product / report.value(f'baseline_celery_w2_{db}'))}")
    report.emit(f"slow_receiver_deliveries_per_s {format_value(report.value(f'product_batch_on_slow_w2_{db}'))}")
    default = f"w{MAKE_RUN_WORKERS}_{db}"
    report.emit(f"isolation_healthy_p95_s {format_value(report.value(f'isolation_healthy_p95_s_{default}'))}")
    report.emit("fanout_1000_endpoints_deliveries_per_s "
                f"{format_value(report.value(f'fanout_1000_endpoints_{default}'))}")
    report.emit(f"retry_gap_max_error_s {format_value(report.value(f'retry_gap_max_error_s_{default}'))}")
    report.emit(f"ratio_vs_urllib3_ceiling {format_ratio(report.paired_ratio(product_name, 'ceiling_urllib3_w2'))}")
    for scenario, suffix in (("batch_on_fast", ""), ("batch_off_fast", "_batch_off")):
        ratio = report.paired_ratio(f"product_{scenario}_w2_pg", f"product_{scenario}_w2_sqlite")
        report.emit(f"ratio_pg_vs_sqlite{suffix} {format_ratio(ratio)}")
    report.emit(f"worker_rss_growth_ratio {format_value(report.value('worker_rss_growth_ratio'))}")
    report.emit(f"emit_http_batch_events_per_s {format_value(report.value(f'emit_http_batch_{db}'))}")


def format_ratio(value: float) -> str:
    return "nan" if value != value else f"{value:.2f}"


def machine_description(started: dt.datetime) -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    return [f"cores (nproc): {os.cpu_count()}", f"CPU: {cpu}", f"Python: {platform.python_version()}",
            f"OS: {platform.platform()}", f"started: {started:%Y-%m-%d %H:%M} UTC"]


def software_versions(databases: tuple[DatabaseKind, ...]) -> str:
    """The parts whose speed the figures depend on."""
    versions = [f"{name} {metadata.version(name)}" for name in ("rq", "celery", "requests", "urllib3", "sqlalchemy")]
    nginx = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip() if Path(NGINX).exists() else ""
    if nginx:
        versions.append(nginx.removeprefix("nginx version: "))
    if any(database.label == "pg" for database in databases):
        versions.append("PostgreSQL " + psql("SHOW server_version"))
    return ", ".join(versions)


def save_results(report: Report, plan: Plan, receivers: str) -> None:
    text = "\n".join([
        "# Benchmark results (last full run)",
        "",
        "Written by `make bench` (`python -m bench`); see the README's \"Performance\" section.",
        "",
        *[f"- {line}" for line in machine_description(report.started_at)],
        f"- software: {software_versions(plan.databases)}",
        f"- N = {plan.count:,} events per scenario (baseline A: {plan.baseline_rq_count:,}), "
        f"runs per figure (median): {plan.runs('ceiling')} for the ceilings and the product on the fast "
        f"receiver on each database (taking turns), {plan.runs('fanout')} for the fan-out, {plan.repeat} for the others",
        f"- receivers: {receivers}",
        f"- databases: {', '.join(d.label for d in plan.databases)}",
        f"- whole run: {time.monotonic() - report.started:.0f} s",
        "",
        "```",
        *report.lines,
        "```",
        "",
    ])
    RESULTS_PATH.write_text(text)


def main(argv=None) -> int:
    args = parse_args(argv)
    plan = make_plan(args)
    report = Report()
    for line in machine_description(report.started_at):
        note(line)
    with fast_receiver() as fast, slow_receiver() as slow:
        receivers = f"fast = {fast.name} on 127.0.0.1:{fast.port}; slow = {slow.name} on 127.0.0.1:{slow.port}"
        note(receivers)
        note(f"N = {plan.count}; databases: {', '.join(d.label for d in plan.databases)}")
        ceiling_with_product = plan.wants("ceiling") and plan.wants("batch_on_fast")
        if plan.wants("ceiling") and not ceiling_with_product:
            for workers in WORKER_COUNTS:
                report.run(*ceiling_scenario(plan, fast.url, workers), plan.runs("ceiling"))
                report.run(*ceiling_scenario(plan, fast.url, workers, "urllib3"), plan.repeat)
        run_fast_receiver(report, plan, fast.url, with_ceiling=ceiling_with_product)
        for database in plan.databases:
            run_database(report, plan, database, fast, slow)
    print_ratios(report, plan.databases[0])
    note(f"{report.elapsed()} done")
    if not args.quick and not plan.only:
        save_results(report, plan, receivers)
        note(f"saved {RESULTS_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
