"""The endpoint health rules on their own: what may be claimed, what an outcome does to the state."""
from __future__ import annotations

import datetime as dt

import pytest

from webapp.delivery import health as rules
from webapp.delivery.health import Health, change, gate, retry_after_time, signal

NOW = dt.datetime(2026, 11, 29, 10, 0, 0)
INTERVAL = 10.0


def failure(at, code=500, retry_after=None):
    return signal(False, code, retry_after, f"receiver answered {code}", at, 300)


def success(at):
    return signal(True, 200, None, None, at, 300)


def test_a_healthy_endpoint_sends_everything_due():
    assert gate(Health(), NOW, INTERVAL) == rules.Gate(rules.ALL_DUE)


def test_a_failing_endpoint_sends_retries_and_one_probe_per_interval():
    failing = Health(health="failing", consecutive_failures=3, last_error_at=NOW - dt.timedelta(seconds=4))
    assert gate(failing, NOW, INTERVAL) == rules.Gate(rules.RETRIES_DUE, NOW + dt.timedelta(seconds=6))
    later = NOW + dt.timedelta(seconds=6)
    assert gate(failing, later, INTERVAL).take == rules.PROBE


def test_a_waiting_endpoint_sends_nothing_until_the_receiver_said():
    waiting = Health(retry_after_until=NOW + dt.timedelta(seconds=30))
    assert gate(waiting, NOW, INTERVAL) == rules.Gate(rules.NOTHING, NOW + dt.timedelta(seconds=30))
    assert gate(waiting, NOW + dt.timedelta(seconds=31), INTERVAL).take == rules.ALL_DUE


def test_a_disabled_endpoint_sends_nothing_and_needs_no_wake_up():
    assert gate(Health(enabled=False), NOW, INTERVAL) == rules.Gate(rules.NOTHING)


@pytest.mark.parametrize("value, seconds", [("120", 120), ("0", None), ("-5", None), ("soon", None),
                                            ("Sun, 29 Nov 2026 10:01:30 GMT", 90), ("Sun, 29 Nov 2026 09:00:00 GMT", None),
                                            ("99999", 300), ("٣", None)])
def test_retry_after_in_seconds_or_as_an_http_date_capped(value, seconds):
    found = retry_after_time(value, NOW, max_wait=300)
    assert found == (NOW + dt.timedelta(seconds=seconds) if seconds is not None else None)


def test_429_and_503_with_retry_after_make_the_endpoint_wait_other_codes_do_not():
    assert failure(NOW, 429, "30").wait_until == NOW + dt.timedelta(seconds=30)
    assert failure(NOW, 503, "30").wait_until == NOW + dt.timedelta(seconds=30)
    assert failure(NOW, 500, "30").wait_until is None
    assert failure(NOW, 410).gone and not failure(NOW, 404).gone


def test_five_failures_in_a_row_make_it_failing_since_the_first_one():
    first = NOW - dt.timedelta(seconds=40)
    later = [failure(NOW - dt.timedelta(seconds=s)) for s in (30, 20, 10, 0)]
    after = rules.after(Health(), change([failure(first), *later]))
    assert after.health == "failing" and after.consecutive_failures == 5 and after.failing_since == first


def test_four_failures_are_not_failing_yet_and_a_success_resets_the_count():
    four = rules.after(Health(), change([failure(NOW)] * 4))
    assert four.health == "healthy" and four.consecutive_failures == 4
    two = rules.after(Health(), change([failure(NOW), failure(NOW)]))
    mended = rules.after(two, change([success(NOW)]))
    assert mended.consecutive_failures == 0 and mended.failing_since is None


def test_failures_after_a_success_count_from_that_success():
    start = Health(health="failing", consecutive_failures=7, failing_since=NOW - dt.timedelta(hours=1))
    later = NOW + dt.timedelta(seconds=1)
    after = rules.after(start, change([success(NOW), failure(later)]))
    assert after.health == "healthy" and after.consecutive_failures == 1 and after.failing_since == later


def test_410_disables_and_a_long_failure_is_too_long():
    assert not rules.after(Health(), change([failure(NOW, 410)])).enabled
    failing = Health(health="failing", failing_since=NOW - dt.timedelta(days=5))
    assert rules.failing_too_long(failing, NOW, disable_after=5 * 86400)
    assert not rules.failing_too_long(failing, NOW - dt.timedelta(seconds=1), disable_after=5 * 86400)
    assert rules.disabled_after_reason(5 * 86400) == "failing continuously for 5 days"
