"""An attempt never outlives its endpoint's timeout + 0.5 s, whatever the receiver does.

Each receiver below is real and misbehaves on purpose (tests/support/misbehaving.py,
tests/support/dns_server.py). Past the deadline the attempt is a timeout with the
exact error text, never done; the thread that sent it is free again at once.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.attempts import timed_attempt
from tests.support.dns_server import SlowDNS
from tests.support.misbehaving import (
    FullAcceptQueue,
    RawServer,
    SlowRelay,
    endless_body,
    hang,
    trickle_body,
    trickle_head,
)
from tests.support.receiver import Receiver
from tests.support.tls_server import SelfSignedHTTPS
from webapp.delivery.names import dns_servers_resolver

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 1.0
MARGIN = 0.5
TIMEOUT_ERROR = "timeout: response not complete within 1 s"


def assert_timed_out(outcome, seconds: float) -> None:
    assert outcome.error == TIMEOUT_ERROR
    assert not outcome.succeeded
    assert seconds <= TIMEOUT + MARGIN, f"the attempt took {seconds:.2f} s"
    assert outcome.duration_ms <= (TIMEOUT + MARGIN) * 1000


def test_a_receiver_too_busy_to_accept():
    with FullAcceptQueue() as server:
        assert_timed_out(*timed_attempt(server.url, TIMEOUT))


def test_a_receiver_that_never_answers():
    with RawServer(hang) as server:
        assert_timed_out(*timed_attempt(server.url, TIMEOUT))


def test_a_tls_handshake_trickled_byte_by_byte():
    """A real TLS server behind a relay that passes its side of the handshake on one byte per 50 ms:
    each byte arrives well within a per-read timeout, only a deadline for the whole attempt stops it."""
    with SelfSignedHTTPS() as tls, SlowRelay(tls.port, interval=0.05) as relay:
        assert_timed_out(*timed_attempt(relay.url, TIMEOUT))


def test_a_tls_server_that_never_says_hello():
    with RawServer(hang, scheme="https") as server:
        assert_timed_out(*timed_attempt(server.url, TIMEOUT))


def test_a_status_line_and_headers_trickled_byte_by_byte_is_never_done():
    with RawServer(trickle_head(interval=0.1)) as server:
        assert_timed_out(*timed_attempt(server.url, TIMEOUT))


@pytest.mark.parametrize("ends_with_connection", [False, True])
def test_a_body_trickled_byte_by_byte(ends_with_connection):
    """Also a body without a length, whose end is the connection's: the deadline's shutdown is no end."""
    with RawServer(trickle_body(interval=0.1, ends_with_connection=ends_with_connection)) as server:
        outcome, seconds = timed_attempt(server.url, TIMEOUT)
    assert_timed_out(outcome, seconds)
    assert outcome.response_code == 200 and outcome.response_truncated
    assert 0 < len(outcome.response_body) < 1000, "what arrived before the deadline is kept"


@pytest.mark.parametrize("chunked", [False, True])
def test_a_huge_body_trickled_in_small_chunks(chunked):
    with Receiver(trickle=(50_000_000, 100, 0.01), trickle_chunked=chunked) as receiver:
        assert_timed_out(*timed_attempt(receiver.url, TIMEOUT, limit=10_000_000))


def test_an_endless_body_is_not_read_forever_and_is_never_done():
    with RawServer(endless_body()) as server:
        outcome, seconds = timed_attempt(server.url, TIMEOUT)
    assert outcome.error == "response body larger than 1 MiB: not read to the end"
    assert not outcome.succeeded and outcome.response_truncated
    assert seconds <= TIMEOUT + MARGIN


def test_slow_name_resolution():
    with SlowDNS(delay=10) as dns:
        outcome, seconds = timed_attempt("http://slow-to-resolve.example/hook", TIMEOUT,
                                         resolver=dns_servers_resolver(dns.server))
        assert dns.questions, "the question reached our DNS server"
    assert_timed_out(outcome, seconds)


def test_a_lookup_still_hanging_never_holds_up_a_stopping_process():
    """The attempt gave up at its deadline; the lookup it left behind must not keep the process (a worker
    told to stop) alive until the resolver's own 60 s run out."""
    with SlowDNS(delay=30) as dns:
        script = ("from tests.support.attempts import timed_attempt\n"
                  "from webapp.delivery.names import dns_servers_resolver\n"
                  f"outcome, _ = timed_attempt('http://slow-to-resolve.example/hook', {TIMEOUT}, "
                  f"resolver=dns_servers_resolver({dns.server!r}))\n"
                  "print(outcome.error, flush=True)\n")
        process = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        first_line = process.stdout.readline().strip()
        answered = time.monotonic()
        process.wait(timeout=25)
        exited = time.monotonic()
        assert dns.questions, "the question reached our DNS server"
    assert first_line == TIMEOUT_ERROR
    assert exited - answered < 5, f"the process lived on {exited - answered:.1f} s after its last attempt"


def test_the_configured_dns_servers_answer_and_the_attempt_goes_through():
    with Receiver() as receiver, SlowDNS(delay=0) as dns:
        outcome, _ = timed_attempt(f"http://hooks.partner.example:{receiver.port}/hook", TIMEOUT,
                                   resolver=dns_servers_resolver(dns.server))
        [request] = receiver.wait_for(1)
    assert outcome.succeeded and request.header("Host") == f"hooks.partner.example:{receiver.port}"


def test_a_kept_alive_connection_is_watched_by_the_next_attempt_too():
    """The first attempt leaves its connection in the pool; the second reuses it and must still time out."""
    from webapp.delivery.send import send
    from webapp.delivery.transport import Transport
    from webapp.signing.request import OutgoingRequest

    with Receiver() as receiver:
        transport = Transport(guard=False)
        request = OutgoingRequest("POST", receiver.url, [], b"{}")
        first = send(transport, request, timeout=TIMEOUT, proxy_url=None, body_limit=100)
        receiver.behave(delay=5)
        second = send(transport, request, timeout=TIMEOUT, proxy_url=None, body_limit=100)
        transport.close()
    assert first.succeeded and receiver.accept_count == 1
    assert second.error == TIMEOUT_ERROR and second.duration_ms <= (TIMEOUT + MARGIN) * 1000
