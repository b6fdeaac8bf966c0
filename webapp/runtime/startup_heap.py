"""A worker's start-up objects, kept out of the cyclic garbage collector's walks.

A worker builds about 150,000 objects that live as long as it does (Flask,
SQLAlchemy, the engine and its lane threads). Every full collection walked them
all again: 100-130 ms with the interpreter held, four or five times per 20,000
deliveries, in which no lane sent anything. ``gc.freeze()`` moves them into a
generation the collector never walks; full collections during a drain then took
3-6 ms (measured with ``gc.callbacks`` in a worker, on SQLite and PostgreSQL alike).
"""
from __future__ import annotations

import gc


def freeze_startup_objects() -> int:
    """Collect what start-up left behind, freeze the rest; how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
