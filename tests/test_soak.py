"""The load soak of issue 6 at a small size: the same run and checks as ``python -m bench.soak``.

400 events to 2 endpoints (each event to both: 800 messages), a receiver that
answers 500 to 30 % of requests and stalls 1 % past the timeout, and both
workers SIGKILLed at 1/3 and 2/3 of the way, then started again. At the end
every message is final in one consistent state, and the done messages are
exactly the receiver's acknowledged ids (see ``bench.soak.check``).
"""
from __future__ import annotations

import pytest

from tests.support.soak import (
    SoakPlan,
    check,
    figures,
    print_figures,
    read_ledger,
    run_soak,
)

pytestmark = [pytest.mark.db, pytest.mark.slow]

SMALL_SOAK = SoakPlan(events=400, endpoints=2, fanout=2, workers=2, kills=2, chunk=100,
                      max_seconds=60, poll_interval=0.05)


def test_small_soak_with_failing_receiver_and_killed_workers_ends_exactly(app, start_worker):
    with SMALL_SOAK.receiver() as receiver:
        run = run_soak(SMALL_SOAK, receiver, start_worker)
    ledger = read_ledger()
    print_figures(figures(run, ledger))  # shown with -s, or on failure
    problems = check(run, ledger, app.config["WEBHOOKS_MAX_ATTEMPTS"])
    assert not problems, "\n".join(problems)
