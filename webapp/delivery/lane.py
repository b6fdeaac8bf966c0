"""A lane: one thread sending one endpoint's messages, one at a time, until none is due.

Claim a batch (through the ledger), send each message, hand the outcomes to
the ledger, claim again. The lane watches the receiver as it goes: once it
has failed ``FAILURES_BEFORE_FAILING`` times in a row, the untried rest of the
batch is given back uncounted (retries, which keep their schedule, go on); a
410 or a Retry-After stops the batch at once. Queue batches on: once a full
batch went well and more is due, other workers are asked to join, and the
endpoint's lanes in this process are set by how long its attempts take (see
``EndpointState.lanes_wanted``), up to its ``threads``. A receiver that hangs
never gets past its first batch, so never gets more.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

from ..signing.request import MessageContent
from ..storage.models import utcnow
from ..storage.statuses import RetryPolicy
from . import claims, dispatch
from .attempt import make_attempt
from .health import ALL_DUE, FAILURES_BEFORE_FAILING, Health, retry_after_time
from .ledger import Claimed, Recorded
from .outcome import Outcome
from .target import Target
from .transport import Transport

log = logging.getLogger(__name__)

# A claim takes about this much sending: few messages for a slow receiver, so a lane
# never holds many it has not tried (a crash would count them as interrupted); with the
# claims made ahead (CLAIMS_AHEAD), about three times this.
BATCH_SECONDS = 0.5
FIRST_CLAIM = 4
HELD_POLLS, HELD_POLL_SECONDS = 3, 0.5
CLAIMS_AHEAD = 2  # in order, batches claimed before they are sent: the next one and one more
# How far lanes slow each other down, from 0 (not at all) to 1 (they take turns): see lanes_wanted.
MORE_LANES_BELOW, FEWER_LANES_ABOVE = 0.25, 0.5
RECEIVER_JITTER = 0.25  # a receiver's time per attempt may vary by this share of itself


@dataclass
class EndpointState:
    """What this process knows of one endpoint while it delivers to it (guarded by the engine's lock)."""

    endpoint_id: int
    lanes: int = 0
    woken: bool = False          # woken while lanes ran: look again before the last one stops
    target: Target | None = None
    version: object = None       # the endpoint's updated_at the target was built from
    health: Health = field(default_factory=Health)
    failures_in_a_row: int = 0   # as seen by this process's lanes
    stopped_until: dt.datetime | None = None  # a 410 or Retry-After: send nothing more from this batch
    seconds_per_attempt: float | None = None  # moving average of recent attempts
    held_polls: int = 0          # looks since another process was found delivering it in order
    others_asked: bool = False   # other workers were asked to join while these lanes run
    quickest: float = 0.0        # shortest time per attempt a batch took while these lanes run
    idle_since: float = 0.0

    def claim_size(self) -> int:
        """How many messages to claim next: about BATCH_SECONDS of sending, within the claim's cap."""
        if self.seconds_per_attempt is None or self.target is None:
            return FIRST_CLAIM
        return max(1, min(claims.MOST_PER_CLAIM, int(BATCH_SECONDS / max(self.seconds_per_attempt, 1e-4))))

    def note(self, outcome: Outcome, max_wait: float) -> None:
        seconds = outcome.duration_ms / 1000
        self.seconds_per_attempt = seconds if self.seconds_per_attempt is None \
            else 0.7 * self.seconds_per_attempt + 0.3 * seconds
        if outcome.succeeded:
            self.failures_in_a_row = 0
            return
        self.failures_in_a_row += 1
        if outcome.response_code == 410:
            self.stopped_until = dt.datetime.max
        elif outcome.response_code in (429, 503) and outcome.header("Retry-After"):
            self.stopped_until = retry_after_time(outcome.header("Retry-After"), outcome.finished_at, max_wait)

    def lanes_wanted(self, per_attempt: float, computing: float, most: int) -> int:
        """How many lanes to run after a full batch whose attempts took ``per_attempt`` seconds each, of
        which the lane's thread computed ``computing``.

        DESIGN: lanes help while they wait on the receiver; on one that answers at once they compete for
        this process's interpreter and deliver less (2 workers on nginx: 3,859/s with 1 lane each, 2,818/s
        with 8). One lane competes with none of its own, so its batches measure the receiver: attempts
        that take N times the CPU they use leave room for N lanes on one core. With more lanes the time
        per attempt tells waiting from competing (as TCP Vegas tells a free path from a queue): lanes
        that wait on the receiver leave it near what one lane took, give or take the receiver's own
        jitter, while lanes that compete add their CPU time to each other's. Past half of that, one lane
        is given up; below a quarter, more are started (at least twice as many as ran).
        """
        per_attempt, computing = max(per_attempt, 1e-9), max(computing, 1e-9)
        if self.lanes <= 1 or per_attempt < self.quickest:
            self.quickest = per_attempt
        room = int(per_attempt / computing)
        if self.lanes <= 1:
            return min(room, most) if room > 1 else 1
        competing = (self.lanes - 1) * computing + RECEIVER_JITTER * self.quickest
        contention = (per_attempt - self.quickest) / competing
        if contention < MORE_LANES_BELOW:
            return min(max(2 * self.lanes, room), most)
        if contention > FEWER_LANES_ABOVE:
            return self.lanes - 1
        return self.lanes

    def may_send(self, content: MessageContent, take: str) -> bool:
        """Whether to go on with this claimed message (the claim's gate allowed it; the receiver may since have said no)."""
        if self.stopped_until and self.stopped_until > utcnow():
            return False
        untried = content.attempt_number == 1
        return take != ALL_DUE or not (untried and self.failures_in_a_row >= FAILURES_BEFORE_FAILING)


class Host(Protocol):
    """What a lane needs of the engine that runs it (webapp/delivery/engine.py)."""

    app: object
    owner: str
    policy: RetryPolicy
    transport: Transport
    body_limit: int
    max_retry_after: float
    stopping: threading.Event
    ledger: object

    def wake_at(self, endpoint_id: int, when: dt.datetime) -> None: ...
    def add_lanes(self, state: EndpointState, most: int) -> None: ...
    def retire_lane(self, state: EndpointState, keep: int) -> bool: ...
    def lane_done(self, state: EndpointState, *, final: bool = False) -> bool: ...


class Lane:
    def __init__(self, engine: Host, state: EndpointState):
        self.engine = engine
        self.state = state
        self.holds_order = False
        self.unsent_batches = 0
        self.ahead: deque[tuple[Future, int]] = deque()  # claims made before their turn, and their size

    def work(self) -> None:
        """The lane's thread: deliver until nothing is due, then leave the endpoint to the next wake-up."""
        try:
            while True:
                more = self._one_batch()
                if more is None:
                    return  # retired: the endpoint's other lanes go on
                if more:
                    continue
                self._release_endpoint()  # before the lane counts as gone: a new one may take it
                if self.engine.lane_done(self.state):
                    return
        except Exception:  # noqa: BLE001 - a lane must never take the worker down
            log.exception("lane of endpoint %s stopped", self.state.endpoint_id)
            self.abandon()

    def claim_first(self) -> Future:
        """Ask for the lane's first batch before its thread starts (``Engine._launch``)."""
        future, wanted = self._ask()
        self.ahead.append((future, wanted))
        return future

    def abandon(self) -> None:
        """The lane stops for good (it failed, or the engine stopped before its thread could start):
        what it holds goes back."""
        self._release_endpoint()
        self.engine.lane_done(self.state, final=True)

    def _one_batch(self) -> bool | None:
        """Claim and send one batch; False when there is nothing more to send now, None when this
        lane left the endpoint's other lanes to it."""
        if self.engine.stopping.is_set():
            return False
        claimed, wanted = self._claim()
        self.holds_order = self.holds_order or claimed.holds_order
        if claimed.held_elsewhere:
            self._look_again_soon()
            return False
        if claimed.endpoint is None or not claimed.messages:
            if claimed.wake_at is not None:
                self.engine.wake_at(self.state.endpoint_id, claimed.wake_at)
            return False
        started, computing = time.monotonic(), time.thread_time()
        sent, all_succeeded = self._send(claimed.messages, claimed.take)
        full = len(claimed.messages) == wanted
        if claimed.holds_order:
            self._claim_ahead(full and all_succeeded)
        if sent:
            self.unsent_batches = 0
            if full and self._busy_endpoint((time.monotonic() - started) / sent,
                                            (time.thread_time() - computing) / sent):
                return None
            return full  # fewer than asked for: nothing more was due
        # Everything was given back (the receiver started failing): claim once more, which
        # sets the endpoint's next wake-up, then stop rather than spin.
        self.unsent_batches += 1
        return self.unsent_batches < 2

    def _claim(self) -> tuple[Claimed, int]:
        """The next batch (claimed ahead, or now) and how many it asked for."""
        future, wanted = self.ahead.popleft() if self.ahead else self._ask()
        claimed: Claimed = future.result()
        if claimed.endpoint is not None:
            self._refresh(claimed.endpoint)
        return claimed, wanted

    def _ask(self) -> tuple[Future, int]:
        wanted = self.state.claim_size()
        return self.engine.ledger.claim(self.state.endpoint_id, wanted), wanted

    def _claim_ahead(self, went_well: bool) -> None:
        """In order, on a database server, after a full batch that went well: the next batches are claimed
        before their turn, so the lane sends while the ledger waits for the database, instead of waiting
        for it too (about a tenth faster, measured: the two threads still share one interpreter). On
        SQLite the ledger's work is this process's own CPU: claiming ahead only made the threads take
        turns, and slowed delivery by a sixth to a fifth.

        The ledger runs a cycle's claims after its outcomes, so the batch after next is chosen knowing
        how this one went. The batch about to be sent was chosen before; anything but a full batch that
        all succeeded (a failure, a message given back, a Retry-After, a 410, fewer messages than asked
        for) gives back what was claimed ahead, uncounted, and the next claim is made afresh.
        """
        if not went_well or self.engine.stopping.is_set() or not self.engine.ledger.waits_on_a_server:
            self._give_back_ahead()
            return
        while len(self.ahead) < CLAIMS_AHEAD:
            self.ahead.append(self._ask())

    def _give_back_ahead(self) -> None:
        while self.ahead:
            future, _ = self.ahead.popleft()
            try:
                claimed: Claimed = future.result()
            except Exception:  # noqa: BLE001 - logged by the ledger; any lease expires and the sweep recovers it
                continue
            self.holds_order = self.holds_order or claimed.holds_order  # released by _release_endpoint
            if claimed.messages:
                self.engine.ledger.give_back([content.message_id for content in claimed.messages])

    def _look_again_soon(self) -> None:
        """Another process delivers this endpoint in order. It may have just finished its last claim
        before our messages were written: look once more in a moment (after that, the sweep does)."""
        if self.state.held_polls < HELD_POLLS:
            self.state.held_polls += 1
            self.engine.wake_at(self.state.endpoint_id, utcnow() + dt.timedelta(seconds=HELD_POLL_SECONDS))

    def _refresh(self, row) -> None:
        state = self.state
        state.health = claims.health_of(row)
        if state.target is None or state.version != row.updated_at:
            state.target = Target.from_endpoint(row, self.engine.app.config["WEBHOOKS_PROXY_URL"])
            state.version = row.updated_at
        state.failures_in_a_row = state.health.consecutive_failures
        state.stopped_until = None

    def _busy_endpoint(self, per_attempt: float, computing: float) -> bool:
        """A full batch delivered to a receiver that keeps up, with more waiting: other workers may join,
        and this process runs the lanes the endpoint's pace wants. True when this lane is to retire.
        A receiver that hangs never gets here."""
        state, target = self.state, self.state.target
        if not target.queue_batches or state.failures_in_a_row:
            return False
        if not state.others_asked:
            state.others_asked = True
            dispatch.kick([state.endpoint_id])
        wanted = state.lanes_wanted(per_attempt, computing, target.threads)
        if wanted > state.lanes:
            self.engine.add_lanes(state, most=wanted)
        return wanted < state.lanes and self.engine.retire_lane(state, keep=wanted)

    def _send(self, batch: list[MessageContent], take: str) -> tuple[int, bool]:
        """Send what may be sent, give back the rest uncounted; how many were sent, and whether all of
        the batch was sent and succeeded."""
        results: list[tuple[MessageContent, Outcome]] = []
        given_back: list[int] = []
        max_wait = self.engine.max_retry_after
        for content in batch:
            if self.engine.stopping.is_set() or not self.state.may_send(content, take):
                given_back.append(content.message_id)
                continue
            outcome = make_attempt(self.engine.transport, self.state.target, content, self.engine.body_limit)
            results.append((content, outcome))
            self.state.note(outcome, max_wait)
        if results:
            recorded = self.engine.ledger.record(self.state.endpoint_id, results, self.state.health)
            recorded.add_done_callback(self._recorded)
        if given_back:
            self.engine.ledger.give_back(given_back)
        all_succeeded = not given_back and self.state.stopped_until is None \
            and all(outcome.succeeded for _, outcome in results)
        return len(results), all_succeeded

    def _recorded(self, future) -> None:
        """In the ledger's thread, once the outcomes are written: retry timers, the endpoint's health."""
        if future.exception() is not None:
            return  # logged by the ledger; the leases expire and the sweep recovers the messages
        recorded: Recorded = future.result()
        for when in recorded.retry_times:
            self.engine.wake_at(self.state.endpoint_id, when)
        if recorded.health is not None:
            self.state.health = recorded.health

    def _release_endpoint(self) -> None:
        """Give up the in-order lease, if held, and what was claimed ahead (the ledger runs both before
        any later claim)."""
        self._give_back_ahead()
        if not self.holds_order:
            return
        self.holds_order = False
        self.state.held_polls = 0
        self.engine.ledger.release_order(self.state.endpoint_id)
