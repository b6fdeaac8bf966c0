"""A worker's memory over a long run: its resident size after the first deliveries and after many more.

``worker_rss_growth_ratio`` is the RSS of one ``python worker.py`` (the
delivery engine runs inside it) after ``total`` deliveries over its RSS after
the first ``first`` (default 100,000 and 10,000, as in the soak), on the fast
receiver. Flat memory means a ratio near 1: nothing the worker keeps grows
with the number of messages it has delivered (pools, caches and per-endpoint
state are bounded).
"""
from __future__ import annotations

from .scenarios import (
    FAST_THREADS,
    add_endpoint,
    emit_in_chunks,
    messages_left,
    product_app,
    require_all_done,
    start_product_workers,
)
from .stack import DatabaseKind, Figure, children, stack, wait_until_drained


def rss_mib(pid: int) -> float:
    """Resident set size of a process (VmRSS in /proc/PID/status), in MiB."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def rss_growth(database: DatabaseKind, receiver_url: str, *, first: int, total: int) -> list[Figure]:
    name = f"worker_rss_{database.label}"
    with stack(database) as bench_stack, product_app(bench_stack):
        add_endpoint(receiver_url, queue_batches=True, threads=FAST_THREADS)
        with children(start_product_workers(bench_stack, 1)) as processes:
            pid = processes[0].process.pid
            emit_in_chunks(first)
            wait_until_drained(messages_left(first), first, name, processes)
            after_first = rss_mib(pid)
            emit_in_chunks(total - first)
            wait_until_drained(messages_left(total), total - first, name, processes)
            after_all = rss_mib(pid)
        require_all_done(total, name)
    return [Figure(f"worker_rss_after_{first}_mib", after_first, "MiB"),
            Figure(f"worker_rss_after_{total}_mib", after_all, "MiB"),
            Figure("worker_rss_growth_ratio", after_all / after_first, "")]


if __name__ == "__main__":  # python -m bench.memory [FIRST TOTAL]
    import sys

    from .receivers import fast_receiver

    first, total = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (10_000, 100_000)
    with fast_receiver() as receiver:
        for figure in rss_growth(DatabaseKind("sqlite"), receiver.url, first=first, total=total):
            print(figure.name, round(figure.value, 2), figure.unit)
