"""The ledger: the one thread of a worker process that writes delivery to the database.

Every lane of the process hands it claims to make and outcomes to write; it
runs whatever is waiting in one transaction (group commit) and answers each
request through a Future. One connection, one writer per process: no lock
contention between lanes, and a commit (an fsync on PostgreSQL) serves a
whole batch of lanes, which is what lets one event reach 1,000 endpoints in
about a second.

DESIGN: within a transaction the work runs in a fixed order - message and
attempt rows (ours alone), then endpoint rows sorted by key, then releases and
renewals, then claims (SKIP LOCKED), then rollups sorted by key - so two
processes' transactions rarely wait on each other in opposite orders. The
rollups come last because every process adds to the same rows (an endpoint's
minute, hour and day), and a row stays locked until the commit: taken last, the
other process waits for our commit only, not for our claims too. If a transaction
fails (a deadlock the database broke, a lost connection), each request is run
again in a transaction of its own, so one bad request fails alone.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import defaultdict
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import Connection
from sqlalchemy.engine import Engine as SqlEngine

from ..signing.request import MessageContent
from ..storage.models import HEALTHY, utcnow
from ..storage.statuses import RetryPolicy
from ..storage.writer_turns import turn_of, writer_turns
from . import claims, health_records, records, rollups
from . import health as rules
from .health import Health
from .outcome import Outcome

log = logging.getLogger(__name__)

# Every statement of the ledger finds rows by key or walks an index and stops after LIMIT rows. On
# PostgreSQL, statistics taken while a table was empty or before a burst make the planner expect a row
# or two, and it then read and sorted an endpoint's whole backlog on every claim (10,000 rows per
# claim of 64, measured), or scanned the table for a list of ids. Ruling out sorts and full scans
# leaves it only the index paths (both are penalties, not bans: with no index a plan still exists).
# No JIT: a penalty adds 10^10 to a plan's cost, far past jit_above_cost, so a statement that keeps a
# scan (renewing the in-order leases: endpoint.lease_owner has no index) was compiled and optimised by
# LLVM each time it ran, holding the ledger 0.2-0.5 s (EXPLAIN ANALYZE, and auto_explain in the server's
# log); and none of these statements touches enough rows to gain from compiling.
KEYED_PLANS_ONLY = "SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off; SET LOCAL jit = off"

# A ledger transaction commits without waiting for its WAL to be flushed to disk (PostgreSQL; SQLite's
# synchronous=NORMAL makes the same trade for every transaction, see webapp/__init__.py). Should the
# server crash right after, it loses at most the last fraction of a second of such commits, each only
# with those after it: outcomes, claims, renewed leases, health and rollups. Their messages still have
# their pending rows, so they are claimed again or their leases expire and the sweep makes them due:
# a receiver may get one twice (it de-duplicates on Webhook-Id), none is lost. Emits and resends are
# not the ledger's and stay synchronous. In order, with the fast receiver: x1.10 in the median of eight
# pairs (bench/NOTES.md, "In order on PostgreSQL, after the keys went").
COMMIT_WITHOUT_FLUSH = "SET LOCAL synchronous_commit = off"
LEDGER_SETTINGS = f"{KEYED_PLANS_ONLY}; {COMMIT_WITHOUT_FLUSH}"  # sent once at the start of each transaction


@dataclass(frozen=True)
class Settings:
    owner: str
    policy: RetryPolicy
    max_retry_after: float
    disable_after: float
    lease_margin: float

    def lease_seconds(self, timeout: float) -> float:
        """A claim outlives one attempt; the engine renews it while the process lives."""
        return timeout + 1.0 + self.lease_margin


@dataclass(frozen=True)
class Claimed:
    endpoint: Any | None               # the endpoint's row (None: deleted)
    messages: list[MessageContent]
    wake_at: Any | None = None         # nothing now, but look again then
    held_elsewhere: bool = False       # another process delivers this endpoint in order
    holds_order: bool = False          # we hold the endpoint's in-order lease
    take: str = rules.ALL_DUE          # what the endpoint's health allowed (health.gate)


@dataclass(frozen=True)
class Recorded:
    retry_times: list
    health: Health | None


@dataclass
class _Request:
    kind: str
    payload: Any
    future: Future | None  # None: nobody waits for the answer


class Ledger:
    def __init__(self, sql_engine: SqlEngine, settings: Settings):
        self.sql_engine = sql_engine
        self.settings = settings
        self._turns = writer_turns(sql_engine)  # SQLite: the workers' ledgers write in turns
        self._waiting: list[_Request] = []
        self._changed = threading.Condition()
        self._stopping = False
        self._writing = False
        self._thread = threading.Thread(target=self._run, name="delivery-ledger", daemon=True)

    # ------------------------------------------------------------------ what lanes ask

    def claim(self, endpoint_id: int, limit: int) -> Future:
        """Up to ``limit`` of the endpoint's messages that may be sent now (see health.gate, claims.MOST_PER_CLAIM)."""
        return self._submit("claim", (endpoint_id, limit), Future())

    def record(self, endpoint_id: int, results: list[tuple[MessageContent, Outcome]], known: Health) -> Future:
        return self._submit("record", (endpoint_id, results, known), Future())

    def give_back(self, message_ids: list[int]) -> None:
        """Claimed messages that were not tried: released uncounted."""
        self._submit("give_back", message_ids)

    def release_order(self, endpoint_id: int) -> None:
        """The endpoint's in-order lease, released (before any claim that comes after it)."""
        self._submit("release_order", endpoint_id)

    @property
    def waits_on_a_server(self) -> bool:
        """Whether its transactions mostly wait for a database server (PostgreSQL) rather than work in
        this process (SQLite): only then can a lane send while the ledger writes (see lane.Lane._claim_ahead)."""
        return self.sql_engine.dialect.name != "sqlite"

    def call(self, work: Callable[[Connection], Any]) -> None:
        """Any other write (a lease renewal, ...), run before the claims of its transaction."""
        self._submit("call", work)

    def _submit(self, kind: str, payload: Any, future: Future | None = None) -> Future | None:
        with self._changed:
            self._waiting.append(_Request(kind, payload, future))
            self._changed.notify()
        return future

    # ------------------------------------------------------------------ the thread

    def start(self) -> None:
        self._compile_ahead()
        self._thread.start()

    def _compile_ahead(self) -> None:
        """The claim statements, compiled before the first claim (claims.compile_ahead). A database not
        reachable yet is not this start's business: the first claim meets it and says so."""
        try:
            with self.transaction() as conn:
                claims.compile_ahead(conn, utcnow())
        except Exception as exc:  # noqa: BLE001 - only a head start is lost
            log.warning("claim statements not compiled ahead: %s", exc)

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is waiting, then stop (the lanes have stopped before)."""
        with self._changed:
            self._stopping = True
            self._changed.notify()
        self._thread.join(timeout)

    def idle(self) -> bool:
        """Nothing waits to be written and nothing is being written."""
        with self._changed:
            return not self._waiting and not self._writing

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._waiting and not self._stopping:
                    self._changed.wait()
                batch, self._waiting = self._waiting, []
                if not batch and self._stopping:
                    return
                self._writing = True
            try:
                self._write(batch)
            finally:
                with self._changed:
                    self._writing = False

    @contextmanager
    def transaction(self):
        """One of the ledger's transactions (see KEYED_PLANS_ONLY and COMMIT_WITHOUT_FLUSH; on SQLite, in its
        turn: storage/writer_turns.py)."""
        with turn_of(self._turns), self.sql_engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(LEDGER_SETTINGS)
            yield conn

    def _write(self, batch: list[_Request]) -> None:
        try:
            with self.transaction() as conn:
                answers = self._transaction(conn, batch)
        except Exception as exc:  # noqa: BLE001 - retried one by one below, each failing alone
            if len(batch) == 1:
                log.error("delivery write failed (%s): %s", batch[0].kind, exc, exc_info=True)
                if batch[0].future is not None:
                    batch[0].future.set_exception(exc)
                return
            log.warning("delivery write failed (%s); trying its %d requests one by one", exc, len(batch))
            for request in batch:
                self._write([request])
            return
        for request, answer in zip(batch, answers):
            if request.future is not None:
                request.future.set_result(answer)

    def _transaction(self, conn: Connection, batch: list[_Request]) -> list[Any]:
        now = utcnow()
        answers: dict[int, Any] = {}
        outcomes = [r for r in batch if r.kind == "record"]
        if outcomes:
            written = records.record_many(conn, self.settings.owner, [r.payload[1] for r in outcomes],
                                          self.settings.policy, self.settings.max_retry_after)
            results, healths = self._endpoint_updates(conn, outcomes, written, now)
            for r, decided in zip(outcomes, written):
                answers[id(r)] = Recorded(decided.retry_times, healths.get(r.payload[0]))
        # Releases before the claims, which may want what they free.
        owner = self.settings.owner
        claims.release(conn, owner, [i for r in batch if r.kind == "give_back" for i in r.payload])
        claims.release_endpoints(conn, sorted({r.payload for r in batch if r.kind == "release_order"}), owner)
        for r in batch:
            if r.kind == "call":
                answers[id(r)] = r.payload(conn)
            elif r.kind in ("give_back", "release_order"):
                answers[id(r)] = None
        wanted = [r for r in batch if r.kind == "claim"]
        if wanted:
            for r, claimed in zip(wanted, self._claims(conn, [r.payload for r in wanted], now)):
                answers[id(r)] = claimed
        if outcomes:
            rollups.add_stats(conn, results, self.settings.policy)
        return [answers[id(r)] for r in batch]

    def _endpoint_updates(self, conn: Connection, records: list[_Request], written: list,
                          now) -> tuple[dict[int, list], dict[int, Health]]:
        """Health per endpoint, in endpoint order (see DESIGN above); the results per endpoint, in
        endpoint order, for the rollups at the end of the transaction."""
        results: dict[int, list] = defaultdict(list)
        signals: dict[int, list] = defaultdict(list)
        known: dict[int, Health] = {}
        for r, decided in zip(records, written):
            endpoint_id, pairs, health = r.payload
            results[endpoint_id].extend(pairs)
            signals[endpoint_id].extend(decided.signals)
            known.setdefault(endpoint_id, health)
        healths = {}
        for endpoint_id in sorted(results):
            delta = rules.change(sorted(signals[endpoint_id], key=lambda item: item.at))
            health = known[endpoint_id]
            if delta.is_noop and health.consecutive_failures == 0 and health.health == HEALTHY \
                    and health.retry_after_until is None:
                continue  # the usual case, a healthy endpoint answering 2xx: nothing to write
            healths[endpoint_id] = health_records.apply_health(conn, endpoint_id, delta, now, self.settings.disable_after)
        return dict(sorted(results.items())), healths

    def _claims(self, conn: Connection, wanted: list[tuple[int, int]], now) -> list[Claimed]:
        """Every claim of the cycle: endpoints read at once, in-order leases taken at once."""
        rows = claims.read_endpoints(conn, {endpoint_id for endpoint_id, _ in wanted})
        gates = {e: rules.gate(claims.health_of(row), now, self.settings.policy.interval) for e, row in rows.items()}
        ordered = [e for e, row in rows.items() if not row.queue_batches and gates[e].take != rules.NOTHING]
        held = self._take_order_leases(conn, [rows[e] for e in ordered], now)
        plans, answers = [], []
        for endpoint_id, limit in wanted:
            row, gate = rows.get(endpoint_id), gates.get(endpoint_id)
            if row is None:
                answers.append(Claimed(endpoint=None, messages=[]))
            elif gate.take == rules.NOTHING:
                waiting = gate.reopens_at is not None and claims.has_waiting(conn, endpoint_id)
                answers.append(Claimed(row, [], wake_at=gate.reopens_at if waiting else None))
            elif endpoint_id in ordered and endpoint_id not in held:
                answers.append(Claimed(row, [], held_elsewhere=True))
            else:
                until = now + dt.timedelta(seconds=self.settings.lease_seconds(row.timeout or 1))
                plans.append((len(answers), claims.ClaimPlan(
                    endpoint_id, gate.take, min(limit, claims.MOST_PER_CLAIM), until)))
                answers.append(None)
        taken = claims.claim_many(conn, self.settings.owner, [plan for _, plan in plans], now)
        for (index, plan), messages in zip(plans, taken):
            row, gate = rows[plan.endpoint_id], gates[plan.endpoint_id]
            wake_at = None
            if not messages and gate.take != rules.ALL_DUE and claims.has_untried(conn, plan.endpoint_id):
                wake_at = gate.reopens_at
            answers[index] = Claimed(row, messages, wake_at=wake_at, holds_order=not row.queue_batches,
                                     take=gate.take)
        return answers

    def _take_order_leases(self, conn: Connection, rows: list, now) -> set[int]:
        """The in-order leases, grouped by timeout (a lease outlives one attempt of its endpoint)."""
        by_timeout: dict[int, list[int]] = defaultdict(list)
        for row in rows:
            by_timeout[row.timeout or 1].append(row.id)
        held = set()
        for timeout, endpoint_ids in sorted(by_timeout.items()):
            until = now + dt.timedelta(seconds=self.settings.lease_seconds(timeout))
            held |= claims.acquire_endpoints(conn, sorted(endpoint_ids), self.settings.owner, until, now)
        return held
