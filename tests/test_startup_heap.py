"""A worker freezes what it built at start-up, so full garbage collections skip it
(webapp/runtime/startup_heap.py)."""
from __future__ import annotations

import gc
import re

from tests.support.waiting import wait_until
from webapp.runtime.startup_heap import freeze_startup_objects


class Item:
    """Always tracked by the collector (a dict of plain values may not be)."""


def test_freezing_leaves_start_up_objects_out_of_the_collectors_walks():
    kept = [Item() for _ in range(1000)]
    try:
        frozen = freeze_startup_objects()
        assert frozen >= len(kept)
        assert not any(item is kept[0] for item in gc.get_objects(generation=2))
        later = [Item() for _ in range(10)]
        gc.collect()
        assert any(item is later[0] for item in gc.get_objects(generation=2))
    finally:
        gc.unfreeze()


def test_a_running_worker_has_frozen_its_start_up_objects(start_worker):
    worker = start_worker("--log-level", "INFO")
    wait_until(lambda: "frozen out of garbage collection" in worker.output(), timeout=15,
               message="the worker did not say it froze its start-up objects")
    frozen = int(re.search(r"(\d+) start-up objects frozen", worker.output()).group(1))
    assert frozen > 50_000  # Flask, SQLAlchemy and the lane threads: far more than a bare interpreter's
