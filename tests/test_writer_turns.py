"""Workers' ledgers writing one SQLite file take turns on a file lock (storage/writer_turns.py).

The next writer starts when the one before lets go (woken by the kernel, not
after SQLite's busy handler has slept its 1, 2, 5, 10 ... ms), never while it
still writes.
"""
from __future__ import annotations

import concurrent.futures
import threading
import time

import pytest
from sqlalchemy import create_engine

from webapp.delivery.engine import Engine
from webapp.extensions import db
from webapp.storage.writer_turns import WriterTurns, writer_turns


def test_a_second_writer_waits_for_the_first_and_starts_as_soon_as_it_lets_go(tmp_path):
    lock_path = str(tmp_path / "webhooks.db-writers.lock")
    first, second = WriterTurns(lock_path), WriterTurns(lock_path)  # two processes' views of one file
    holding, let_go, events = threading.Event(), threading.Event(), []

    def hold():
        with first.turn():
            events.append("first in")
            holding.set()
            let_go.wait(10)
            events.append("first out")
            released_at[0] = time.monotonic()

    def take_turn() -> float:
        with second.turn():
            return time.monotonic()

    released_at = [0.0]
    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(take_turn)
        with pytest.raises(concurrent.futures.TimeoutError):
            waiting.result(timeout=0.3)  # still the first writer's turn
        let_go.set()
        started_at = waiting.result(timeout=10)
    holder.join(10)
    assert events == ["first in", "first out"]
    assert started_at >= released_at[0]


def test_the_ledger_writes_only_in_its_turn(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's writers lock rows, not the database: no turns")
    ledger = Engine(app).ledger
    other_worker = writer_turns(db.engine)
    ledger.start()
    try:
        with other_worker.turn():
            done = concurrent.futures.Future()
            ledger.call(lambda conn: done.set_result(True))
            with pytest.raises(concurrent.futures.TimeoutError):
                done.result(timeout=0.3)
        assert done.result(timeout=10)
    finally:
        ledger.stop()


@pytest.mark.parametrize("url", ["postgresql://postgres@127.0.0.1/test", "sqlite://", "sqlite:///:memory:"])
def test_no_turns_where_there_is_no_file_to_share(url):
    assert writer_turns(create_engine(url)) is None


def test_without_a_lock_file_the_writer_goes_on_and_sqlite_says_what_is_wrong(tmp_path):
    """A folder where no lock file can be made: the turn is skipped, not an error of its own."""
    ran = []
    with WriterTurns(str(tmp_path / "missing-folder" / "webhooks.db-writers.lock")).turn():
        ran.append(True)
    assert ran == [True]
    assert not (tmp_path / "missing-folder").exists()
