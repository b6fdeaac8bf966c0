"""Waiting for asynchronous outcomes in tests, with a hard deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "condition was not met",
) -> T:
    """Poll `predicate()` until it returns something truthy, and return that.

    This is a poll with a deadline, not a sleep: it returns as soon as the
    outcome is there (e.g. a worker process has finished a delivery) and
    raises AssertionError with `message` and the last value seen once
    `timeout` seconds have passed. Use it when no event or condition can be
    waited on directly, such as state held by another process. The predicate
    is always checked once more at the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{message} within {timeout}s (last value: {value!r})")
        time.sleep(min(interval, remaining))
