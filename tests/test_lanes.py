"""How many lanes a busy endpoint runs in one worker process.

Lanes help while they wait on the receiver; on a receiver that answers at once
they compete for the process and deliver less. The rule reads which case it is
from the batches' time per attempt and the lanes' own CPU time per attempt.
"""
from __future__ import annotations

import threading

import pytest

from webapp.delivery.engine import Engine
from webapp.delivery.lane import EndpointState

MS = 0.001
MOST = 64


def state_with(lanes: int, lone_lane_per_attempt: float | None = None) -> EndpointState:
    """An endpoint's state with ``lanes`` running; optionally measured first by a lone lane."""
    state = EndpointState(endpoint_id=1)
    if lone_lane_per_attempt is not None:
        state.lanes = 1
        state.lanes_wanted(lone_lane_per_attempt, computing=lone_lane_per_attempt, most=MOST)
    state.lanes = lanes
    return state


@pytest.mark.parametrize("per_attempt, computing", [(0.4 * MS, 0.3 * MS), (0.59 * MS, 0.3 * MS), (5 * MS, 4 * MS)])
def test_a_lone_lane_that_computes_more_than_it_waits_stays_alone(per_attempt, computing):
    assert state_with(1).lanes_wanted(per_attempt, computing, MOST) == 1


@pytest.mark.parametrize("per_attempt, computing, lanes", [
    (0.6 * MS, 0.3 * MS, 2), (2 * MS, 0.1 * MS, 20), (100 * MS, 0.5 * MS, MOST)])
def test_a_lone_lane_that_waits_on_its_receiver_gets_the_lanes_one_core_can_run(per_attempt, computing, lanes):
    assert state_with(1).lanes_wanted(per_attempt, computing, MOST) == lanes


def test_a_lone_lane_gets_no_second_where_the_endpoint_allows_one_thread():
    assert state_with(1).lanes_wanted(100 * MS, 0.5 * MS, most=1) == 1


def test_lanes_that_wait_without_slowing_each_other_get_what_keeps_one_core_busy():
    state = state_with(2, lone_lane_per_attempt=100 * MS)
    assert state.lanes_wanted(101 * MS, 0.5 * MS, MOST) == MOST  # 202 would fit: capped by the endpoint
    state = state_with(2, lone_lane_per_attempt=10 * MS)
    assert state.lanes_wanted(10 * MS, 1 * MS, MOST) == 10
    state = state_with(4, lone_lane_per_attempt=3 * MS)
    assert state.lanes_wanted(3 * MS, 1 * MS, MOST) == 8, "at least twice as many as ran"


@pytest.mark.parametrize("lanes", [2, 4, 8])
def test_lanes_that_take_turns_on_the_process_give_one_up(lanes):
    computing = 0.3 * MS
    state = state_with(lanes, lone_lane_per_attempt=0.5 * MS)
    # Each of the other lanes adds its CPU time to every attempt: they take turns.
    assert state.lanes_wanted(0.5 * MS + (lanes - 1) * computing, computing, MOST) == lanes - 1


def test_lanes_that_slow_each_other_somewhat_stay_as_they_are():
    state = state_with(4, lone_lane_per_attempt=1 * MS)
    assert state.lanes_wanted(1.4 * MS, 0.3 * MS, MOST) == 4


@pytest.mark.parametrize("lanes", [2, 16])
def test_a_slow_receivers_jitter_takes_no_lanes_away(lanes):
    state = state_with(lanes, lone_lane_per_attempt=100 * MS)
    assert state.lanes_wanted(110 * MS, 0.5 * MS, MOST) == lanes


def test_the_quickest_time_is_measured_anew_by_a_lone_lane():
    """A receiver that became slower is measured again when one lane is left: more lanes may help again."""
    state = state_with(2, lone_lane_per_attempt=1 * MS)
    assert state.lanes_wanted(50 * MS, 0.3 * MS, MOST) == 1  # against the old 1 ms: lanes look as if competing
    state.lanes = 1
    assert state.lanes_wanted(50 * MS, 0.3 * MS, MOST) == MOST
    state.lanes = 2
    assert state.lanes_wanted(51 * MS, 0.3 * MS, MOST) == MOST


def test_two_lanes_retiring_at_once_leave_the_lanes_wanted(app):
    engine = Engine(app)
    state = EndpointState(endpoint_id=1)
    for _ in range(3):
        engine._add_lane(state)
    barrier, results = threading.Barrier(3), []

    def retire():
        barrier.wait()
        results.append(engine.retire_lane(state, keep=2))

    threads = [threading.Thread(target=retire) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(results) == [False, False, True]
    assert state.lanes == 2 and engine._active_lanes == 2


def test_a_worker_starts_every_lane_thread_up_front_and_they_take_work_after(app):
    """A fan-out on a fresh worker must not wait for threads to start one by one (engine.start_lane_threads)."""
    app.config["WEBHOOKS_DELIVERY_THREADS"] = 12
    before = set(threading.enumerate())
    engine = Engine(app).start()
    try:
        engine.start_lane_threads()
        lane_threads = {t for t in set(threading.enumerate()) - before if t.name.startswith("lane")}
        assert len(lane_threads) == 12
        ran = [engine.pool.submit(threading.current_thread) for _ in range(24)]
        assert {future.result(timeout=5) for future in ran} <= lane_threads
    finally:
        engine.stop()
    assert not [t for t in lane_threads if t.is_alive()]
