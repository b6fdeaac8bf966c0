"""Every way a receiver can misbehave is recorded with an exact error text and retried by the rules.

These call the sender directly (one attempt each, no worker needed); the retry
rules themselves are covered end to end in test_delivery.py.
"""
from __future__ import annotations

import pytest

from tests.support.attempts import attempt
from tests.support.receiver import Receiver, refused_url
from tests.support.tls_server import SelfSignedHTTPS
from webapp.storage.statuses import RetryPolicy


@pytest.mark.parametrize(
    "behaviour, error",
    [
        ({"status": 302, "response_headers": {"Location": "http://elsewhere.example/"}},
         "receiver answered 302 Found; redirects are not followed (Location: http://elsewhere.example/)"),
        ({"status": 429, "response_headers": {"Retry-After": "30"}}, "receiver answered 429 Too Many Requests (Retry-After: 30)"),
        ({"status": 503}, "receiver answered 503 Service Unavailable"),
        ({"status": 404}, "receiver answered 404 Not Found"),
    ],
)
def test_non_2xx_answers_are_unsuccessful_with_the_reason(behaviour, error):
    with Receiver(**behaviour) as receiver:
        outcome = attempt(receiver.url)
    assert not outcome.succeeded
    assert outcome.error == error
    assert outcome.response_code == behaviour["status"]
    assert RetryPolicy(5, 10).next_status(outcome.succeeded, 1) == "resent"


def test_slower_than_the_timeout():
    with Receiver(delay=3) as receiver:
        outcome = attempt(receiver.url, timeout=0.5)
    assert outcome.error == "timeout: response not complete within 0.5 s" and outcome.response_code is None
    assert 450 <= outcome.duration_ms < 2000


def test_a_trickled_huge_body_stops_at_the_timeout_and_is_stored_capped():
    with Receiver(trickle=(50_000_000, 100, 0.01)) as receiver:
        outcome = attempt(receiver.url, timeout=1.0, limit=10_000_000)
    assert outcome.response_code == 200 and not outcome.succeeded
    assert outcome.error == "timeout: response not complete within 1 s"
    assert outcome.response_truncated and 0 < len(outcome.response_body) < 50_000
    assert outcome.duration_ms < 3000


def test_a_fast_huge_body_is_capped_without_failing_the_attempt():
    with Receiver(response_body=b"y" * 300_000) as receiver:
        outcome = attempt(receiver.url, timeout=5, limit=1000)
    assert outcome.succeeded and outcome.response_truncated and outcome.response_body == "y" * 1000


def test_connection_refused():
    outcome = attempt(refused_url())
    assert outcome.error == "connection refused"


def test_dns_failure():
    outcome = attempt("http://no-such-host.invalid/hook")
    assert outcome.error.startswith("DNS lookup failed for no-such-host.invalid: "), outcome.error


def test_tls_certificate_failure():
    with SelfSignedHTTPS() as server:
        outcome = attempt(server.url, timeout=5)
    assert outcome.error.startswith("TLS error: certificate verify failed: "), outcome.error
    assert "self-signed certificate" in outcome.error


@pytest.mark.parametrize("host", ["127.0.0.1", "[::ffff:127.0.0.1]", "localhost"])
def test_guarded_connections_refuse_private_peers_at_connect_time(host):
    with Receiver() as receiver:
        url = receiver.url.replace("127.0.0.1", host)
        outcome = attempt(url, guard=True)
        assert receiver.requests == [], "nothing reached the receiver"
    assert outcome.error is not None and "refused to connect" in outcome.error, outcome.error
    assert "loopback address" in outcome.error


def test_retry_rules_for_known_and_interrupted_attempts():
    policy = RetryPolicy(max_attempts=5, interval=10)
    assert [policy.next_status(False, n) for n in (1, 4, 5)] == ["resent", "resent", "failed"]
    assert policy.next_status(True, 5) == "done"
    assert [policy.after_interruption(n) for n in (1, 5, 6)] == ["resent", "resent", "failed"]
