"""The ledger: the one thread of a worker process that writes delivery to the database.

Every lane of the process hands it claims to make and outcomes to write; it
runs whatever is waiting in one transaction (group commit) and answers each
request through a Future. One connection, one writer per process: no lock
contention between lanes, and a commit (an fsync on PostgreSQL) serves a
whole batch of lanes, which is what lets one event reach 1,000 endpoints in
about a second.

DESIGN: within a transaction the work runs in a fixed order - message and
attempt rows (ours alone), then rollups and endpoint rows sorted by key, then
claims (SKIP LOCKED) - so two processes' transactions never wait on each
other in opposite orders. If a transaction fails, each request is run again
in a transaction of its own, so one bad request fails alone.
"""
from __future__ import annotations

import logging
import threading
from collections import defaultdict
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

from sqlalchemy import Connection
from sqlalchemy.engine import Engine as SqlEngine

from ..models import HEALTHY, utcnow
from . import claims
from . import health as rules
from .claims import RetryPolicy
from .health import Health
from .outgoing import MessageContent
from .send import Outcome

log = logging.getLogger(__name__)


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
    future: Future = field(default_factory=Future)


class Ledger:
    def __init__(self, sql_engine: SqlEngine, settings: Settings):
        self.sql_engine = sql_engine
        self.settings = settings
        self._waiting: list[_Request] = []
        self._changed = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="delivery-ledger", daemon=True)

    # ------------------------------------------------------------------ what lanes ask

    def claim(self, endpoint_id: int, limit: int) -> Future:
        """Up to ``limit`` of the endpoint's messages that may be sent now (see health.gate, claims.batch_size)."""
        return self._submit("claim", (endpoint_id, limit))

    def record(self, endpoint_id: int, results: list[tuple[MessageContent, Outcome]], known: Health) -> Future:
        return self._submit("record", (endpoint_id, results, known))

    def call(self, work: Callable[[Connection], Any]) -> Future:
        """Any other write (release, renew, ...), run after the claims of its transaction."""
        return self._submit("call", work)

    def _submit(self, kind: str, payload: Any) -> Future:
        request = _Request(kind, payload)
        with self._changed:
            self._waiting.append(request)
            self._changed.notify()
        return request.future

    # ------------------------------------------------------------------ the thread

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is waiting, then stop (the lanes have stopped before)."""
        with self._changed:
            self._stopping = True
            self._changed.notify()
        self._thread.join(timeout)

    def idle(self) -> bool:
        with self._changed:
            return not self._waiting

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._waiting and not self._stopping:
                    self._changed.wait()
                batch, self._waiting = self._waiting, []
                if not batch and self._stopping:
                    return
            self._write(batch)

    def _write(self, batch: list[_Request]) -> None:
        try:
            with self.sql_engine.begin() as conn:
                answers = self._transaction(conn, batch)
        except Exception as exc:  # noqa: BLE001 - retried one by one below, each failing alone
            if len(batch) == 1:
                log.error("delivery write failed (%s): %s", batch[0].kind, exc, exc_info=True)
                batch[0].future.set_exception(exc)
                return
            for request in batch:
                self._write([request])
            return
        for request, answer in zip(batch, answers):
            request.future.set_result(answer)

    def _transaction(self, conn: Connection, batch: list[_Request]) -> list[Any]:
        now = utcnow()
        answers: dict[int, Any] = {}
        records = [r for r in batch if r.kind == "record"]
        written = {id(r): claims.record(conn, self.settings.owner, r.payload[1], self.settings.policy,
                                        self.settings.max_retry_after) for r in records}
        healths = self._endpoint_updates(conn, records, written, now)
        for r in records:
            answers[id(r)] = Recorded(written[id(r)].retry_times, healths.get(r.payload[0]))
        for r in batch:
            if r.kind == "claim":
                answers[id(r)] = self._claim(conn, *r.payload, now)
        for r in batch:
            if r.kind == "call":
                answers[id(r)] = r.payload(conn)
        return [answers[id(r)] for r in batch]

    def _endpoint_updates(self, conn: Connection, records: list[_Request], written: dict, now) -> dict[int, Health]:
        """Rollups and health per endpoint, in endpoint order (see DESIGN above)."""
        by_endpoint: dict[int, list[_Request]] = defaultdict(list)
        for r in records:
            by_endpoint[r.payload[0]].append(r)
        healths = {}
        for endpoint_id in sorted(by_endpoint):
            requests = by_endpoint[endpoint_id]
            results = [pair for r in requests for pair in r.payload[1]]
            claims.add_stats(conn, endpoint_id, results, self.settings.policy)
            signals = sorted((s for r in requests for s in written[id(r)].signals), key=lambda s: s.at)
            delta = rules.change(signals)
            known: Health = requests[0].payload[2]
            if delta.is_noop and known.consecutive_failures == 0 and known.health == HEALTHY \
                    and known.retry_after_until is None:
                continue  # the usual case, a healthy endpoint answering 2xx: nothing to write
            healths[endpoint_id] = claims.apply_health(conn, endpoint_id, delta, now, self.settings.disable_after)
        return healths

    def _claim(self, conn: Connection, endpoint_id: int, limit: int, now) -> Claimed:
        row = claims.read_endpoint(conn, endpoint_id)
        if row is None:
            return Claimed(endpoint=None, messages=[])
        gate = rules.gate(claims.health_of(row), now, self.settings.policy.interval)
        if gate.take == rules.NOTHING:
            return Claimed(row, [], wake_at=gate.reopens_at if claims.has_waiting(conn, endpoint_id) else None)
        lease = self.settings.lease_seconds(row.timeout or 1)
        ordered = not row.queue_batches
        if ordered and not claims.acquire_endpoint(conn, endpoint_id, self.settings.owner, lease, now):
            return Claimed(row, [], held_elsewhere=True)
        messages = claims.claim(conn, endpoint_id, self.settings.owner, min(limit, claims.batch_size(ordered)),
                                lease, gate.take, now)
        wake_at = None
        if not messages and gate.take != rules.ALL_DUE and claims.has_untried(conn, endpoint_id):
            wake_at = gate.reopens_at
        return Claimed(row, messages, wake_at=wake_at, holds_order=ordered, take=gate.take)
