"""The delivery engine inside a worker process: lanes per endpoint, timers, the ledger.

DESIGN: a receiver that hangs holds whatever waits on it, so nothing waits on
a receiver but that endpoint's own lanes. Each endpoint with work gets lanes
(``lane.py``): one for queue batches off (in order), up to its ``threads`` for
queue batches on, started one at a time as the receiver keeps up. Lanes run on
a pool of ``WEBHOOKS_DELIVERY_THREADS`` threads, so ten hanging endpoints
occupy ten threads and every other endpoint goes on as before. RQ jobs only
wake the engine ("these endpoints have work"), which is why one job can carry
a thousand endpoints. Retries are timers in this process, due to the
millisecond; the sweep covers a process that died with timers pending.
"""
from __future__ import annotations

import datetime as dt
import heapq
import itertools
import logging
import math
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from flask import Flask

from ..extensions import db
from ..storage.models import utcnow
from ..storage.statuses import RetryPolicy
from .claims import renew
from .lane import EndpointState, Lane
from .ledger import Ledger, Settings
from .transport import Transport

log = logging.getLogger(__name__)

_running: Engine | None = None


def running_engine() -> Engine | None:
    """The engine of this worker process, if it runs one."""
    return _running


class Engine:
    def __init__(self, app: Flask):
        config = app.config
        self.app = app
        self.owner = uuid.uuid4().hex
        self.threads = int(config["WEBHOOKS_DELIVERY_THREADS"])
        self.policy = RetryPolicy.from_config(config)
        self.body_limit = int(config["WEBHOOKS_RESPONSE_BODY_LIMIT"])
        self.lease_margin = float(config["WEBHOOKS_LEASE_MARGIN"])
        self.max_retry_after = float(config["WEBHOOKS_MAX_RETRY_AFTER"])
        self.transport = Transport.from_config(config, pool_size=self.threads)
        with app.app_context():
            sql_engine = db.engine
        self.ledger = Ledger(sql_engine, Settings(
            owner=self.owner, policy=self.policy, max_retry_after=self.max_retry_after,
            disable_after=float(config["WEBHOOKS_DISABLE_AFTER"]), lease_margin=self.lease_margin))
        # Each lane thread keeps one app context for good (lanes read config and decrypt secrets;
        # they never use the request-scoped database session): pushing one per lane costs more.
        self.pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="lane",
                                       initializer=lambda: app.app_context().push())
        self.runs: dict[int, EndpointState] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._timers: list[tuple[float, int, int, int]] = []  # (due, order, endpoint, 10 ms slot)
        self._timer_keys: set[tuple[int, int]] = set()
        self._timer_order = itertools.count()
        self._timer_changed = threading.Condition()
        self._timer_thread = threading.Thread(target=self._run_timers, name="delivery-timers", daemon=True)
        self._active_lanes = 0
        self._idle = threading.Condition(self.lock)

    # ------------------------------------------------------------------ life

    def start(self) -> Engine:
        global _running
        self.ledger.start()
        self._timer_thread.start()
        _running = self
        return self

    def start_lane_threads(self) -> None:
        """Start every lane thread now rather than on the first burst of work. The pool starts a thread
        per task while none is idle, each start a hand-over between threads: a fan-out to a thousand
        endpoints on a fresh worker spent about 8 % of its interpreter time there."""
        everyone = threading.Barrier(self.threads)
        for _ in range(self.threads):
            self.pool.submit(everyone.wait, 10.0)

    def stop(self, timeout: float = 90.0) -> None:
        """Stop taking work; lanes finish the attempt in flight, give back the rest, write it all."""
        global _running
        if _running is self:
            _running = None
        self.stopping.set()
        with self._timer_changed:
            self._timer_changed.notify()
        self.pool.shutdown(wait=True)
        self.ledger.stop(timeout)
        self.transport.close()

    def wait_idle(self, timeout: float) -> bool:
        """Until no lane runs and nothing waits to be written (``worker.py --burst``)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._active_lanes:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        while not self.ledger.idle():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)  # the ledger's last write is in flight
        return True

    # ------------------------------------------------------------------ work

    def wake(self, endpoint_ids) -> None:
        """These endpoints may have work: start a lane for each that has none."""
        for endpoint_id in endpoint_ids:
            with self.lock:
                if self.stopping.is_set():
                    return
                run = self.runs.get(endpoint_id)
                if run is None:
                    run = self.runs[endpoint_id] = EndpointState(endpoint_id)
                if run.lanes:
                    run.woken = True
                    continue
                self._add_lane(run)
            self._launch(run)

    def add_lanes(self, run: EndpointState, most: int) -> None:
        """More lanes for a busy endpoint, up to ``most`` in all."""
        with self.lock:
            if self.stopping.is_set():
                return
            added = max(most - run.lanes, 0)
            for _ in range(added):
                self._add_lane(run)
        for _ in range(added):
            self._launch(run)

    def _launch(self, run: EndpointState) -> None:
        """A new lane (counted by ``_add_lane``): its first claim now, its thread once the ledger answered.

        DESIGN: a lane's thread started first would only wait for that answer, and waiting costs a
        thread blocking and waking up again, with the interpreter handed over twice. A fan-out is a
        thousand lanes with one claim each: started as their claims were answered, one event reached
        1,000 endpoints 1.3-1.7 times as fast (bench/NOTES.md, "Lanes start once claimed").
        """
        lane = Lane(self, run)
        lane.claim_first().add_done_callback(lambda _: self._start(lane))

    def _start(self, lane: Lane) -> None:
        """As the lane's first claim is answered: in the ledger's thread (or at once, had it been already)."""
        try:
            self.pool.submit(lane.work)
        except RuntimeError:  # the pool has shut down: the engine stops
            lane.abandon()

    def retire_lane(self, run: EndpointState, keep: int) -> bool:
        """A lane of a busy endpoint stops while more than ``keep`` run; True if it may."""
        with self.lock:
            if run.lanes <= keep:
                return False
            run.lanes -= 1
            self._active_lanes -= 1
            return True

    def _add_lane(self, run: EndpointState) -> None:
        run.lanes += 1
        self._active_lanes += 1

    def lane_done(self, run: EndpointState, *, final: bool = False) -> bool:
        """Called by a lane that found nothing to do: True if it may stop, False to look again
        (the endpoint was woken meanwhile). ``final``: it stops whatever happened."""
        with self.lock:
            if run.woken and not final and not self.stopping.is_set():
                run.woken = False
                return False
            run.lanes -= 1
            self._active_lanes -= 1
            if run.lanes == 0:
                run.idle_since = time.monotonic()
                run.others_asked = False
            self._idle.notify_all()
            return True

    # ------------------------------------------------------------------ timers

    def wake_at(self, endpoint_id: int, when: dt.datetime) -> None:
        """Wake the endpoint when ``when`` (UTC) comes. An endpoint's timers within one 10 ms slot are
        merged into one that fires at the slot's end, when every one of them is due: firing at the
        first would leave the later ones' messages to the sweep."""
        delay = (when - utcnow()).total_seconds()
        slot = math.ceil((time.monotonic() + max(delay, 0.0)) * 100)
        key = (endpoint_id, slot)
        with self._timer_changed:
            if key in self._timer_keys:
                return
            self._timer_keys.add(key)
            heapq.heappush(self._timers, (slot / 100, next(self._timer_order), endpoint_id, slot))
            if self._timers[0][2] == endpoint_id:
                self._timer_changed.notify()

    def _run_timers(self) -> None:
        renew_every = max(min(self.lease_margin / 3, 5.0), 0.1)
        next_renewal = time.monotonic() + renew_every
        while not self.stopping.is_set():
            due_now = []
            with self._timer_changed:
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    _, _, endpoint_id, slot = heapq.heappop(self._timers)
                    self._timer_keys.discard((endpoint_id, slot))
                    due_now.append(endpoint_id)
                if not due_now:
                    until = min(self._timers[0][0] if self._timers else next_renewal, next_renewal)
                    self._timer_changed.wait(max(until - now, 0.0))
            if due_now:
                self.wake(dict.fromkeys(due_now))
            if time.monotonic() >= next_renewal:
                next_renewal = time.monotonic() + renew_every
                self._renew_leases(renew_every)

    def _renew_leases(self, every: float) -> None:
        with self.lock:
            busy = self._active_lanes > 0
            self._forget_idle_runs()
        if busy:
            until = utcnow() + dt.timedelta(seconds=self.lease_margin + 3 * every)
            self.ledger.call(lambda conn: renew(conn, self.owner, until))

    def _forget_idle_runs(self, after: float = 300.0) -> None:
        """Drop what we know of endpoints idle for a while: memory stays flat with many endpoints."""
        cutoff = time.monotonic() - after
        for endpoint_id in [e for e, run in self.runs.items() if not run.lanes and run.idle_since < cutoff]:
            del self.runs[endpoint_id]
