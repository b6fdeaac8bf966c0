"""The sender's own HTTP/1.1 exchange on direct sends (webapp/delivery/exchange.py).

Every shape of a valid answer is read as such, every broken one ends as an exact
error, what goes on the wire is what urllib3 would have written, and a connection
is kept alive only after an exchange that ended cleanly. Receivers are raw TCP
servers on 127.0.0.1 that answer with the bytes each test gives.
"""
from __future__ import annotations

import socket
import struct
import threading

import pytest

from tests.support.misbehaving import RawServer, read_request
from tests.support.tls_server import SelfSignedHTTPS
from webapp.delivery.send import send
from webapp.delivery.transport import Transport, route_of
from webapp.signing.request import OutgoingRequest

BODY = b'{"event": "checkout"}'
HEADERS = [("Content-Type", "application/json"), ("Webhook-Id", "evt_1"), ("X-Custom", "a value")]


class Answering:
    """A raw receiver answering each request with the next of ``answers`` (the last one repeats; a tuple
    is sent in parts, 50 ms apart); ``close_after`` closes the connection after that answer. Keeps what
    arrived and counts connections."""

    def __init__(self, *answers: bytes | tuple[bytes, ...], close_after: bool = False):
        self.answers = list(answers)
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.connections = 0
        self._lock = threading.Lock()
        self.server = RawServer(self._serve)
        self.url = self.server.url

    def _serve(self, conn: socket.socket, stop: threading.Event) -> None:
        with self._lock:
            self.connections += 1
        while not stop.is_set():
            request = read_request(conn)
            if not request:
                return
            with self._lock:
                self.requests.append(request)
                answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
            for number, part in enumerate(answer if isinstance(answer, tuple) else (answer,)):
                if number:
                    stop.wait(0.05)  # pacing: the parts arrive in separate reads
                conn.sendall(part)
            if self.close_after:
                return

    def __enter__(self) -> Answering:
        return self

    def __exit__(self, *exc) -> None:
        self.server.close()


def sends(url: str, times: int = 1, headers=HEADERS):
    transport = Transport(guard=False)
    request = OutgoingRequest("POST", url, list(headers), BODY)
    try:
        return [send(transport, request, timeout=2.0, proxy_url=None, body_limit=1000) for _ in range(times)]
    finally:
        transport.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_what_goes_on_the_wire_and_one_connection_for_many_sends():
    with Answering(OK) as receiver:
        outcomes = sends(receiver.url, times=3)
    assert [o.succeeded for o in outcomes] == [True, True, True]
    assert receiver.connections == 1, "kept alive"
    head, _, body = receiver.requests[0].partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "POST /hook HTTP/1.1"
    assert lines[1:] == [f"Host: 127.0.0.1:{receiver.server.port}", "Accept-Encoding: identity",
                         f"Content-Length: {len(BODY)}", *(f"{name}: {value}" for name, value in HEADERS)]
    assert body == BODY


def test_an_interim_100_continue_is_passed_over_for_the_answer_after_it():
    with Answering((b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone")) as receiver:
        [outcome] = sends(receiver.url)
    assert outcome.succeeded and outcome.response_code == 201 and outcome.response_body == "done"


def test_a_chunked_answer_is_read_whole_and_its_connection_kept():
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n"
               b"6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n")
    with Answering(chunked) as receiver:
        outcomes = sends(receiver.url, times=2)
    assert [(o.succeeded, o.response_body, o.response_truncated) for o in outcomes] == [(True, "hello world", False)] * 2
    assert receiver.connections == 1


def test_a_body_that_ends_with_the_connection_is_read_whole_and_the_next_send_connects_anew():
    with Answering(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", close_after=True) as receiver:
        outcomes = sends(receiver.url, times=2)
    assert [(o.succeeded, o.response_body) for o in outcomes] == [(True, "all of it")] * 2
    assert receiver.connections == 2


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",  # bytes beyond the answer
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
])
def test_a_connection_left_in_an_unknown_or_closing_state_is_not_used_again(answer):
    with Answering(answer) as receiver:
        outcomes = sends(receiver.url, times=2)
    assert [o.succeeded for o in outcomes] == [True, True]
    assert receiver.connections == 2


@pytest.mark.parametrize("answer, error", [
    (b"", "connection error: the receiver closed the connection without answering"),
    (b"HTTP/1.1 200 OK\r\nContent-Le", "connection error: the receiver closed the connection without answering"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
     "connection error: the receiver closed the connection before the end of its answer"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhel",
     "connection error: the receiver closed the connection before the end of its answer"),
])
def test_an_answer_cut_short_is_an_exact_error_never_done(answer, error):
    with Answering(answer, close_after=True) as receiver:
        [outcome] = sends(receiver.url)
    assert not outcome.succeeded and outcome.error == error


@pytest.mark.parametrize("answer", [b"SSH-2.0-OpenSSH_9.2\r\n", b"HTTP/1.1 2OO OK\r\n\r\n",
                                    b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"])
def test_an_answer_that_is_not_http_is_an_exact_error(answer):
    with Answering(answer, close_after=True) as receiver:
        [outcome] = sends(receiver.url)
    assert not outcome.succeeded
    assert outcome.error.startswith("connection error: the receiver's answer is not valid HTTP/1.1 ("), outcome.error


def reset_after_the_request(conn: socket.socket, stop: threading.Event) -> None:
    read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST


def test_a_connection_reset_by_the_receiver_is_an_exact_error():
    with RawServer(reset_after_the_request) as server:
        [outcome] = sends(server.url)
    assert not outcome.succeeded and outcome.error == "connection error: connection reset by peer"


def endless_head(interim: bool):
    """Header lines (or interim 100 answers) as fast as the client reads, never a final head."""
    def serve(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        conn.sendall(b"" if interim else b"HTTP/1.1 200 OK\r\n")
        piece = b"HTTP/1.1 100 Continue\r\n\r\n" if interim else b"X-Filler: " + b"f" * 100 + b"\r\n"
        while not stop.is_set():
            conn.sendall(piece * 100)
    return serve


@pytest.mark.parametrize("interim", [False, True])
def test_an_answer_head_without_end_is_refused_past_64_kib_not_kept_in_memory_till_the_timeout(interim):
    with RawServer(endless_head(interim)) as server:
        [outcome] = sends(server.url)
    assert outcome.error == "connection error: the receiver's answer head is larger than 64 KiB"
    assert outcome.response_code is None


def test_what_arrived_of_a_cut_answer_is_kept_and_marked_truncated():
    with Answering(b"HTTP/1.1 500 Oops\r\nContent-Length: 10\r\n\r\nabc", close_after=True) as receiver:
        [outcome] = sends(receiver.url)
    assert outcome.response_code == 500 and outcome.response_body == "abc" and outcome.response_truncated


@pytest.mark.parametrize("answer, error, body", [
    (b"HTTP/1.1 503 Un\x00available\r\nContent-Length: 4\r\n\r\nno\x00!", "receiver answered 503 Un\ufffdavailable",
     "no\ufffd!"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n\x00\x00\x00", None, "\ufffd" * 3),
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-16-le\r\nContent-Length: 4\r\n\r\na\x00\x00\x00",
     None, "a\ufffd"),
])
def test_a_nul_in_the_answer_is_kept_as_a_replacement_character(answer, error, body):
    """PostgreSQL's text holds no NUL: one left in a body or reason phrase made the outcome unwritable."""
    with Answering(answer) as receiver:
        [outcome] = sends(receiver.url)
    assert outcome.error == error and outcome.response_body == body


@pytest.mark.parametrize("name, value", [("X-Bad", "a\r\nX-Injected: 1"), ("X-Bad", "a\nb"), ("X-Bad", "a\x00"),
                                         ("X Bad", "a"), ("X-Bad:", "a"), ("", "a")])
def test_a_header_http_does_not_allow_is_refused_before_anything_is_sent(name, value):
    with Answering(OK) as receiver:
        [outcome] = sends(receiver.url, headers=[*HEADERS, (name, value)])
    assert outcome.error.startswith("invalid request header: ")
    assert receiver.connections == 0


@pytest.mark.parametrize("url, origin, target, host_header", [
    ("http://Hooks.Example.com/in?a=1", ("http", "hooks.example.com", 80), "/in?a=1", "hooks.example.com"),
    ("https://hooks.example.com:443/", ("https", "hooks.example.com", 443), "/", "hooks.example.com"),
    ("https://hooks.example.com:8443", ("https", "hooks.example.com", 8443), "/", "hooks.example.com:8443"),
    ("http://[::1]:8080/x", ("http", "::1", 8080), "/x", "[::1]:8080"),
    ("http://hooks.example.com./x", ("http", "hooks.example.com", 80), "/x", "hooks.example.com"),
])
def test_the_route_of_a_url(url, origin, target, host_header):
    route = route_of(url)
    assert (route.origin, route.target, route.host_header) == (origin, target, host_header)


def test_https_with_a_trusted_certificate_is_delivered_over_one_kept_alive_connection(monkeypatch):
    with SelfSignedHTTPS() as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))  # OpenSSL's default store: trust this one
        outcomes = sends(server.url, times=3)
        assert [(o.succeeded, o.error) for o in outcomes] == [(True, None)] * 3
        assert server.connections == 1
