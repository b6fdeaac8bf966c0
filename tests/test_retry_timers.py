"""The engine's retry timers: each message's wake-up comes when it is due, never before.

A wake-up that came early would find the message not yet due, and nothing else would
wake the endpoint for it: it would wait for the sweep, seconds late.
"""
from __future__ import annotations

import datetime as dt
import math
import threading
import time

from tests.support.waiting import wait_until
from webapp.delivery.engine import Engine
from webapp.storage.models import utcnow

ENDPOINT = 7


class RecordingEngine(Engine):
    """The real engine and its timer thread; its wake-ups are written down instead of starting lanes."""

    def __init__(self, app):
        super().__init__(app)
        self.woken: list[tuple[float, list[int]]] = []
        self.lock_woken = threading.Lock()

    def wake(self, endpoint_ids) -> None:
        with self.lock_woken:
            self.woken.append((time.monotonic(), list(endpoint_ids)))


def instants_in_one_slot(offsets_ms: tuple[float, ...]) -> tuple[list[dt.datetime], list[float]]:
    """Instants (UTC, and on the monotonic clock) at these offsets from the start of a 10 ms slot
    a quarter of a second from now: the engine merges an endpoint's timers per slot."""
    now_monotonic, now_utc = time.monotonic(), utcnow()
    slot_start = math.ceil((now_monotonic + 0.25) * 100) / 100
    monotonic = [slot_start + ms / 1000 for ms in offsets_ms]
    return [now_utc + dt.timedelta(seconds=m - now_monotonic) for m in monotonic], monotonic


def wake_ups(app, timers: list[tuple[int, dt.datetime]], expected: int) -> list[tuple[float, int]]:
    """Set the timers on a running engine; the first ``expected`` wake-ups, as (monotonic time, endpoint)."""
    engine = RecordingEngine(app).start()
    try:
        for endpoint_id, when in timers:
            engine.wake_at(endpoint_id, when)
        wait_until(lambda: sum(len(ids) for _, ids in engine.woken) >= expected, timeout=5,
                   message="a timer never fired")
    finally:
        engine.stop()
    return [(at, endpoint_id) for at, ids in engine.woken for endpoint_id in ids]


def test_timers_merged_in_one_slot_fire_once_every_one_is_due(app):
    whens, dues = instants_in_one_slot((1.5, 4.0, 7.5))
    [(fired_at, endpoint_id), *_] = wake_ups(app, [(ENDPOINT, when) for when in whens], expected=1)
    assert endpoint_id == ENDPOINT
    assert fired_at >= max(dues), f"woken {1000 * (max(dues) - fired_at):.1f} ms before the last was due"
    assert fired_at - max(dues) < 0.5


def test_timers_of_different_endpoints_or_slots_each_fire_when_due(app):
    whens, dues = instants_in_one_slot((2.0, 30.0, 60.0))
    woken = wake_ups(app, [(ENDPOINT, when) for when in whens] + [(ENDPOINT + 1, whens[0])], expected=4)
    for due in dues:
        assert any(endpoint_id == ENDPOINT and due <= at < due + 0.5 for at, endpoint_id in woken), woken
    assert any(endpoint_id == ENDPOINT + 1 and dues[0] <= at for at, endpoint_id in woken), woken
