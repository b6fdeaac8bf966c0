"""Export memory stays flat: ``python -m bench.export_memory [--rows 100000] [--database URL]``.

Streams the whole log as CSV through the real export code for 10,000 and for
N rows (default 100,000) and prints the Python heap's peak during each
(tracemalloc), plus the rate. Flat memory means the two peaks are about equal.
"""
from __future__ import annotations

import argparse
import time
import tracemalloc

from bench.log_pages import fresh_schema, make_app


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database")
    return parser.parse_args(argv)


def measure_export(log_filter) -> tuple[int, int, float]:
    """(bytes written, peak heap bytes, seconds) for one full streamed export."""
    from webapp.domain.logbook.export import stream

    tracemalloc.start()
    tracemalloc.reset_peak()
    start = time.perf_counter()
    written = 0
    for chunk in stream(log_filter, "csv"):
        written += len(chunk)  # a real response writes the chunk to the socket and drops it
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return written, peak, seconds


def main(argv=None) -> int:
    args = parse_args(argv)
    app = make_app(args.database)
    with app.app_context():
        from bench.seeding import seed_log
        from webapp.domain.logbook.filters import LogFilter
        from webapp.extensions import db
        from webapp.storage.models import Message

        fresh_schema(app)
        dialect = db.engine.dialect.name
        seed_log(10_000)
        small = measure_export(LogFilter())
        seed_log(args.rows - 10_000)
        total = db.session.query(Message).count()
        db.session.rollback()
        large = measure_export(LogFilter())
        print(f"export_{dialect}_rows_small 10000 rows", flush=True)
        print(f"export_{dialect}_peak_heap_small {small[1] / 1e6:.2f} MB")
        print(f"export_{dialect}_rows_large {total} rows")
        print(f"export_{dialect}_peak_heap_large {large[1] / 1e6:.2f} MB")
        print(f"export_{dialect}_bytes_large {large[0] / 1e6:.1f} MB")
        print(f"export_{dialect}_rows_per_s {total / large[2]:.0f} rows/s")
        print(f"export_{dialect}_peak_growth {large[1] / max(small[1], 1):.2f} x (large/small)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
