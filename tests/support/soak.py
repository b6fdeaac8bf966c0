"""The load soak's machinery: a plan, the run (emit, kill and restart workers, wait), the checks and figures.

``tests/test_soak.py`` runs it at a small size with the pytest fixtures;
``python -m bench.soak`` runs it at full size with its own Redis, database and
worker processes. Nothing here is tuned to pass: the checks read the database
and the receiver's own ledger.
"""
from __future__ import annotations

import collections
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app
from sqlalchemy import func, select

from webapp.delivery.records import LOST_ATTEMPT_ERROR
from webapp.domain.events import emit_many
from webapp.extensions import db
from webapp.storage.models import Attempt, Message, PendingMessage
from webapp.storage.statuses import DONE, FAILED

from .factories import make_endpoint
from .soak_receiver import SoakReceiver, SoakStats
from .waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class SoakPlan:
    """How big the soak is and how hostile its receiver."""

    events: int = 100_000
    endpoints: int = 4
    fanout: int = 1  # endpoints each event is delivered to (1: spread; `endpoints`: all of them)
    workers: int = 2
    kills: int = 2
    fail_rate: float = 0.30
    stall_rate: float = 0.01
    timeout: int = 1  # seconds, the endpoints' request timeout
    threads: int = 16
    chunk: int = 2_000  # events per emit_many call
    seed: int = 6
    max_seconds: float = 30 * 60
    poll_interval: float = 0.5

    def __post_init__(self) -> None:
        if not 1 <= self.fanout <= self.endpoints:
            raise ValueError(f"fanout must be 1..{self.endpoints}, got {self.fanout}")

    @property
    def messages(self) -> int:
        return self.events * self.fanout

    @property
    def stall_seconds(self) -> float:
        """Long enough that the worker's timeout always fires first."""
        return self.timeout + 0.5

    def receiver(self) -> SoakReceiver:
        return SoakReceiver(fail_rate=self.fail_rate, stall_rate=self.stall_rate,
                            stall_seconds=self.stall_seconds, seed=self.seed)


@dataclass
class SoakRun:
    """What happened during one soak: timings, kills, and the receiver's final figures."""

    plan: SoakPlan
    endpoint_paths: dict[int, str]  # endpoint id -> the receiver path it delivers to
    emit_seconds: float = 0.0
    seconds: float = 0.0
    finished: bool = False
    final_at_kills: list[int] = field(default_factory=list)
    stats: SoakStats | None = None


# ----------------------------------------------------------------------------- the run

def soak_actions(plan: SoakPlan) -> tuple[str, ...]:
    """One action of the installation's catalogue per endpoint (emit refuses any other action)."""
    catalogue = current_app.config["WEBHOOKS_ACTIONS"]
    if plan.endpoints > len(catalogue):
        raise SystemExit(f"the soak needs an action per endpoint: {plan.endpoints} endpoints, "
                         f"{len(catalogue)} actions in WEBHOOKS_ACTIONS")
    return tuple(catalogue[:plan.endpoints])


def action_of_event(index: int, actions: tuple[str, ...]) -> str:
    """Event ``index`` has the ``index % endpoints``-th action; the actions cycle over the endpoints."""
    return actions[index % len(actions)]


def actions_of_endpoint(number: int, plan: SoakPlan, actions: tuple[str, ...]) -> list[str]:
    """Endpoint ``number`` selects ``fanout`` consecutive actions, so each event reaches ``fanout`` endpoints."""
    return [actions[(number - offset) % plan.endpoints] for offset in range(plan.fanout)]


def create_endpoints(plan: SoakPlan, receiver: SoakReceiver) -> dict[int, str]:
    """The soak's endpoints, one receiver path each; returns endpoint id -> path."""
    paths, actions = {}, soak_actions(plan)
    for number in range(plan.endpoints):
        endpoint = make_endpoint(receiver.url_for(number), actions=actions_of_endpoint(number, plan, actions),
                                 name=f"soak {number}", queue_batches=True, threads=plan.threads,
                                 timeout=plan.timeout)
        paths[endpoint.id] = receiver.path_for(number)
    return paths


def emit_events(plan: SoakPlan) -> None:
    """All the soak's events, ``plan.chunk`` per ``emit_many`` call (one transaction each)."""
    actions = soak_actions(plan)
    for first in range(0, plan.events, plan.chunk):
        emit_many([(action_of_event(i, actions), f"customer-{i % 997}", {"n": i, "soak": True})
                   for i in range(first, min(first + plan.chunk, plan.events))])


def pending_count() -> int:
    """Messages not final yet: due, leased or waiting for a retry (uses the partial due index)."""
    count = db.session.scalar(select(func.count()).select_from(Message).where(Message.next_attempt_at.is_not(None)))
    db.session.rollback()  # never hold a read snapshot while workers write
    return count


def kill_thresholds(plan: SoakPlan) -> list[int]:
    """Final-message counts at which every worker is killed: 1/3 and 2/3 of the way for two kills."""
    return [plan.messages * k // (plan.kills + 1) for k in range(1, plan.kills + 1)]


def kill_and_restart(workers: list, start_worker: Callable[[], object], count: int) -> list:
    """SIGKILL every worker (their work-horses and schedulers too), then start ``count`` fresh ones."""
    for worker in workers:
        worker.kill()
    return [start_worker() for _ in range(count)]


def run_soak(plan: SoakPlan, receiver: SoakReceiver, start_worker: Callable[[], object]) -> SoakRun:
    """Deliver ``plan.events`` events to ``receiver`` with worker kills; returns when all are final or time is up.

    Needs an app context on an empty database. ``start_worker()`` starts one
    ``python worker.py`` process and returns an object with ``kill()`` (the
    tests' `WorkerProcess`); the caller stops whatever is left afterwards.
    """
    run = SoakRun(plan, create_endpoints(plan, receiver))
    workers = [start_worker() for _ in range(plan.workers)]
    started = time.monotonic()
    deadline = started + plan.max_seconds
    emit_events(plan)
    run.emit_seconds = time.monotonic() - started
    for threshold in kill_thresholds(plan):
        final = wait_for_final(plan, threshold, deadline)
        if final is None:
            break  # out of time: `check` says what is not final
        run.final_at_kills.append(final)
        workers = kill_and_restart(workers, start_worker, plan.workers)
    run.finished = wait_for_final(plan, plan.messages, deadline) is not None
    run.seconds = time.monotonic() - started
    run.stats = receiver.stats()
    return run


def wait_for_final(plan: SoakPlan, at_least: int, deadline: float) -> int | None:
    """Poll until at least ``at_least`` messages are final; how many are, or None if the deadline came first."""
    try:
        return wait_until(
            lambda: (final := plan.messages - pending_count()) >= at_least and final,
            timeout=max(deadline - time.monotonic(), 0.0), interval=plan.poll_interval,
            message=f"fewer than {at_least} of {plan.messages} messages final",
        )
    except AssertionError:
        return None


# ----------------------------------------------------------------------------- the checks

@dataclass
class Ledger:
    """The database's view at the end of a soak, read once for `check` and the figures."""

    messages: list  # rows: id, event_id, endpoint_id, status, attempts, next_attempt_at, pending (its row's lease)
    attempt_counts: dict[int, tuple[int, int, int]]  # message id -> (rows, distinct numbers, highest number)
    last_attempts: dict[int, list[tuple[int | None, str | None]]]  # message id -> [(code, error)] of its last number
    interrupted: int  # attempts the sweep recorded for a worker that died
    interrupted_numbers: dict[int, set[int]]  # message id -> numbers of its interrupted attempts

    def interrupted_at(self, message_id: int, number: int) -> bool:
        return number in self.interrupted_numbers.get(message_id, ())

    @property
    def by_status(self) -> collections.Counter:
        return collections.Counter(row.status for row in self.messages)

    @property
    def attempts(self) -> int:
        return sum(row.attempts for row in self.messages)


def read_ledger() -> Ledger:
    messages = db.session.execute(
        select(Message.id, Message.event_id, Message.endpoint_id, Message.status, Message.attempts,
               Message.next_attempt_at, PendingMessage.message_id.is_not(None).label("pending"))
        .outerjoin(PendingMessage, PendingMessage.message_id == Message.id).where(Message.is_test.is_(False))
    ).all()
    attempt_counts = {
        message_id: (rows, distinct, highest)
        for message_id, rows, distinct, highest in db.session.execute(
            select(Attempt.message_id, func.count(), func.count(Attempt.number.distinct()), func.max(Attempt.number))
            .group_by(Attempt.message_id)
        )
    }
    last_attempts = collections.defaultdict(list)
    for message_id, code, error in db.session.execute(
        select(Attempt.message_id, Attempt.response_code, Attempt.error)
        .join(Message, (Message.id == Attempt.message_id) & (Message.attempts == Attempt.number))
    ):
        last_attempts[message_id].append((code, error))
    interrupted_numbers = collections.defaultdict(set)
    for message_id, number in db.session.execute(
        select(Attempt.message_id, Attempt.number).where(Attempt.error == LOST_ATTEMPT_ERROR)
    ):
        interrupted_numbers[message_id].add(number)
    db.session.rollback()
    interrupted = sum(len(numbers) for numbers in interrupted_numbers.values())
    return Ledger(messages, attempt_counts, dict(last_attempts), interrupted, dict(interrupted_numbers))


def check(run: SoakRun, ledger: Ledger, max_attempts: int) -> list[str]:
    """Every way the run can be wrong, as sentences; an empty list means it passed."""
    return [
        *check_run(run),
        *check_rows(run, ledger),
        *check_states(ledger, max_attempts),
        *check_attempt_log(ledger),
        *check_acknowledgements(run, ledger),
        *check_requests(run, ledger),
    ]


def check_run(run: SoakRun) -> list[str]:
    problems = []
    if not run.finished:
        problems.append(f"not every message was final within {run.plan.max_seconds:g} s")
    if len(run.final_at_kills) != run.plan.kills:
        problems.append(f"workers were killed {len(run.final_at_kills)} times, not {run.plan.kills}")
    if run.final_at_kills and max(run.final_at_kills) >= run.plan.messages:
        problems.append(f"the run was over before the last kill (final at kills: {run.final_at_kills})")
    return problems


def check_rows(run: SoakRun, ledger: Ledger) -> list[str]:
    """One row per (event, endpoint), as many as planned: nothing lost, nothing doubled."""
    problems = []
    if len(ledger.messages) != run.plan.messages:
        problems.append(f"{len(ledger.messages)} message rows, expected {run.plan.messages}")
    rows_per_pair = collections.Counter((r.event_id, r.endpoint_id) for r in ledger.messages)
    doubled = [pair for pair, rows in rows_per_pair.items() if rows > 1]
    if doubled:
        problems.append(f"{len(doubled)} (event, endpoint) pairs have more than one message row, e.g. {doubled[:3]}")
    return problems


def check_states(ledger: Ledger, max_attempts: int) -> list[str]:
    """Each message is final in exactly one consistent state, within the attempt limit."""
    problems = []
    not_final = [r.id for r in ledger.messages if r.status not in (DONE, FAILED)]
    if not_final:
        problems.append(f"{len(not_final)} messages not final, e.g. ids {not_final[:5]}")
    half_final = [r.id for r in ledger.messages
                  if r.status in (DONE, FAILED) and (r.next_attempt_at is not None or r.pending)]
    if half_final:
        problems.append(f"{len(half_final)} final messages still due or pending (two states), "
                        f"e.g. ids {half_final[:5]}")
    orphans = [r.id for r in ledger.messages if r.status not in (DONE, FAILED) and not r.pending]
    if orphans:
        problems.append(f"{len(orphans)} messages waiting with nothing to deliver them, e.g. ids {orphans[:5]}")
    # An interrupted last attempt earns one more try (RetryPolicy.after_interruption).
    allowed = {r.id: max_attempts + (1 if ledger.interrupted_at(r.id, max_attempts) else 0) for r in ledger.messages}
    over = [r.id for r in ledger.messages if r.attempts > allowed[r.id]]
    if over:
        problems.append(f"{len(over)} messages over the attempt limit, e.g. ids {over[:5]}")
    short = [r.id for r in ledger.messages if r.status == FAILED and r.attempts != allowed[r.id]]
    if short:
        problems.append(f"{len(short)} failed messages without exactly the allowed attempts, e.g. ids {short[:5]}")
    never_tried = [r.id for r in ledger.messages if r.status == DONE and r.attempts < 1]
    if never_tried:
        problems.append(f"{len(never_tried)} done messages with no attempt, e.g. ids {never_tried[:5]}")
    return problems


def check_attempt_log(ledger: Ledger) -> list[str]:
    """Attempts 1..n recorded exactly once each; a done message's last attempt got a 2xx."""
    problems = []
    disagree = [r.id for r in ledger.messages
                if ledger.attempt_counts.get(r.id) != ((r.attempts,) * 3 if r.attempts else None)]
    if disagree:
        examples = {i: ledger.attempt_counts.get(i) for i in disagree[:5]}
        problems.append(f"{len(disagree)} messages whose attempt log is not exactly attempts 1..n once each, "
                        f"e.g. id: (rows, distinct, highest) {examples}")
    not_2xx = [r.id for r in ledger.messages if r.status == DONE
               and not any(code is not None and 200 <= code < 300 for code, _ in ledger.last_attempts.get(r.id, []))]
    if not_2xx:
        problems.append(f"{len(not_2xx)} done messages whose last attempt has no 2xx, e.g. ids {not_2xx[:5]}")
    return problems


def done_keys(run: SoakRun, ledger: Ledger) -> set[tuple[str, str]]:
    """(receiver path, Webhook-Id) of every done message, comparable with the receiver's acknowledgements."""
    return {(run.endpoint_paths[r.endpoint_id], r.event_id) for r in ledger.messages if r.status == DONE}


def explain_unconfirmed(run: SoakRun, ledger: Ledger) -> tuple[set, set]:
    """Split the acknowledged-but-not-done ids into (explained, unexplained).

    Explained: the message is ``failed`` and its last attempt's outcome never
    reached the worker: it timed out while the receiver's 200 was on its way
    (a timeout is an unsuccessful attempt by the rules), or the worker died on
    the extra try that an interrupted last attempt earns. Neither happens on an
    idle machine; a heavily loaded one can make a 200 slower than the timeout.
    """
    rows = {(run.endpoint_paths[r.endpoint_id], r.event_id): r for r in ledger.messages}
    explained, unexplained = set(), set()
    for key in run.stats.acknowledged - done_keys(run, ledger):
        row = rows.get(key)
        if row is not None and row.status == FAILED and unknown_outcome_of_last_attempt(ledger, row.id):
            explained.add(key)
        else:
            unexplained.add(key)
    return explained, unexplained


def unknown_outcome_of_last_attempt(ledger: Ledger, message_id: int) -> str | None:
    """'interrupted' or 'timeout' if the message's last attempt ended without the worker hearing an answer."""
    for code, error in ledger.last_attempts.get(message_id, []):
        if code is None and (error or "").startswith(LOST_ATTEMPT_ERROR):
            return "interrupted"
        if code is None and (error or "").startswith("timeout:"):
            return "timeout"
    return None


def check_acknowledgements(run: SoakRun, ledger: Ledger) -> list[str]:
    """done == the receiver's distinct acknowledged (path, Webhook-Id), up to explained unknown outcomes."""
    problems = []
    done = done_keys(run, ledger)
    never_acknowledged = done - run.stats.acknowledged
    if never_acknowledged:
        problems.append(f"{len(never_acknowledged)} done messages the receiver never acknowledged, "
                        f"e.g. {sorted(never_acknowledged)[:3]}")
    explained, unexplained = explain_unconfirmed(run, ledger)
    if unexplained:
        problems.append(f"{len(unexplained)} ids acknowledged by the receiver but not done, with no unknown-outcome "
                        f"last attempt to explain it, e.g. {sorted(unexplained)[:3]}")
    if not problems and len(done) != len(run.stats.acknowledged) - len(explained):
        problems.append(f"done {len(done)} != acknowledged {len(run.stats.acknowledged)} "
                        f"- unconfirmed {len(explained)}")
    return problems


def check_requests(run: SoakRun, ledger: Ledger) -> list[str]:
    """Every request is a recorded attempt, and no attempt was ever sent twice at the same time."""
    problems = []
    sent_at_least = ledger.attempts - ledger.interrupted  # an interrupted attempt may not have gone out
    if not sent_at_least <= run.stats.requests <= ledger.attempts:
        problems.append(f"the receiver saw {run.stats.requests} requests; the attempt log says between "
                        f"{sent_at_least} and {ledger.attempts}")
    if run.stats.overlapping:
        problems.append(f"{run.stats.overlapping} requests arrived while the same message was still in flight")
    return problems


# ----------------------------------------------------------------------------- the figures

def figures(run: SoakRun, ledger: Ledger) -> list[tuple[str, float, str]]:
    """The run's figures as (name, value, unit), in the order they are printed."""
    stats, by_status = run.stats, ledger.by_status
    explained, _ = explain_unconfirmed(run, ledger)
    ids_by_key = {(run.endpoint_paths[r.endpoint_id], r.event_id): r.id for r in ledger.messages}
    unconfirmed_reasons = collections.Counter(
        unknown_outcome_of_last_attempt(ledger, ids_by_key[key]) for key in explained)
    return [
        ("soak_events", run.plan.events, "events"),
        ("soak_messages", len(ledger.messages), "messages"),
        ("soak_deliveries", stats.requests, "requests"),
        ("soak_acknowledged", len(stats.acknowledged), "ids"),
        ("soak_duplicates", stats.duplicates, "requests"),
        ("soak_done", by_status[DONE], "messages"),
        ("soak_failed", by_status[FAILED], "messages"),
        ("soak_unconfirmed", len(explained), "ids"),
        *[(f"soak_unconfirmed_{reason}", count, "ids") for reason, count in sorted(unconfirmed_reasons.items())],
        ("soak_answered_500", stats.failures, "requests"),
        ("soak_stalls", stats.stalls, "requests"),
        ("soak_attempts", ledger.attempts, "attempts"),
        ("soak_interrupted", ledger.interrupted, "attempts"),
        ("soak_kills", len(run.final_at_kills), "kills"),
        ("soak_emit_seconds", round(run.emit_seconds, 2), "s"),
        ("soak_seconds", round(run.seconds, 2), "s"),
        ("soak_deliveries_per_s", round(stats.requests / run.seconds, 1) if run.seconds else 0, "requests/s"),
    ]


def print_figures(rows: list[tuple[str, float, str]], out=sys.stdout) -> None:
    for name, value, unit in rows:
        print(f"{name} {value} {unit}", file=out, flush=True)


# ----------------------------------------------------------------------------- the bench command

