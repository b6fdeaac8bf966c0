"""Delivery's writers of one SQLite file take turns through a file lock, not through SQLite's busy handler.

SQLite lets one transaction write at a time. A writer that finds the file
locked sleeps and tries again - 1, 2, 5, 10, 15, 20, 25 ... 100 ms apart (the
busy handler behind ``busy_timeout``; Python's sqlite3 offers no other) - so it
wakes long after the lock came free. Two workers' ledgers, each writing many
times a second, spent most of their time in those sleeps: one event to 1,000
endpoints, 0.5 s of a 0.9 s run waiting 65 ms per write. Waiting on ``flock``
for a file beside the database instead wakes the next writer the moment the
lock is released. Written by hand: filelock, the usual library, waits by polling
too (every 50 ms by default); a blocking ``flock`` is a few lines.

Only the ledgers take turns (a worker's writes are nearly all theirs); any
other writer - the web app, emit - still waits through the busy handler, and
holds no turn, so no one can wait on both at once. PostgreSQL's writers lock
rows, not the database: no turns there.
"""
from __future__ import annotations

import os
from contextlib import AbstractContextManager, contextmanager, nullcontext

from sqlalchemy.engine import Engine

try:
    import fcntl
except ImportError:  # Windows has no flock: the busy handler alone
    fcntl = None


class WriterTurns:
    """The turns of the writers of one SQLite file (a lock file beside it)."""

    def __init__(self, lock_path: str):
        self.lock_path = lock_path

    @contextmanager
    def turn(self):
        """Wait for the turn, keep it through the block. The file is opened per turn (a few microseconds
        beside a transaction), so nothing stays open."""
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:  # SQLite could not write its journal beside the file either; it will say why
            fd = None
        if fd is None:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks, without the GIL, until the holder lets go
            yield
        finally:
            os.close(fd)  # lets go of the lock too


def writer_turns(sql_engine: Engine) -> WriterTurns | None:
    """Turns for the engine's SQLite file; None for another database, or an in-memory one."""
    url = sql_engine.url
    if fcntl is None or url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return WriterTurns(f"{url.database}-writers.lock")


def turn_of(turns: WriterTurns | None) -> AbstractContextManager:
    return turns.turn() if turns is not None else nullcontext()
