"""A fast, flaky, de-duplicating webhook receiver for the load soak (tests and ``bench/soak.py``).

`SoakReceiver` serves one path per endpoint (``/hook/<n>``) on 127.0.0.1 over
keep-alive HTTP/1.1. For every request it decides, with its own seeded
``random.Random``:

* ``fail_rate``: answer 500 (an unsuccessful attempt);
* ``stall_rate``: hold the request past the endpoint's timeout, then close
  the connection without any answer (never an acknowledgement);
* otherwise answer 200 and record ``(path, Webhook-Id)`` as acknowledged.

It de-duplicates the way a careful receiver does: a request whose
``(path, Webhook-Id)`` was already acknowledged is answered 200 at once and
counted as a duplicate delivery. So a message re-sent because a worker died
after the 200 but before writing it down still ends ``done``, which keeps the
soak's end condition exact.

It keeps counters only (no request bodies), so it stays cheap for hundreds of
thousands of requests; `stats()` gives a consistent snapshot.
"""
from __future__ import annotations

import random
import socket
import socketserver
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from .receiver import stop_serving

HOST = "127.0.0.1"
PATH_PREFIX = "/hook/"


@dataclass(frozen=True)
class SoakStats:
    """What the receiver saw, as one consistent snapshot."""

    requests: int  # every request that reached a handler, whatever became of it
    failures: int  # answered 500 on purpose
    stalls: int  # held past the timeout and closed unanswered
    duplicates: int  # already acknowledged before: answered 200 again
    overlapping: int  # arrived while an answer to the same (path, Webhook-Id) was still being given
    acknowledged: frozenset[tuple[str, str]]  # distinct (path, Webhook-Id) answered 200


class SoakReceiver:
    """Threaded HTTP/1.1 receiver that fails and stalls a seeded random share of requests."""

    def __init__(self, *, fail_rate: float = 0.30, stall_rate: float = 0.01, stall_seconds: float = 1.5,
                 seed: int = 1) -> None:
        if fail_rate < 0 or stall_rate < 0 or fail_rate + stall_rate > 1:
            raise ValueError("fail_rate and stall_rate must be shares that add up to at most 1")
        self.fail_rate = fail_rate
        self.stall_rate = stall_rate
        self.stall_seconds = stall_seconds
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._requests = self._failures = self._stalls = self._duplicates = self._overlapping = 0
        self._acknowledged: set[tuple[str, str]] = set()
        self._in_flight: set[tuple[str, str]] = set()
        self._connections: set[socket.socket] = set()
        self._server = _Server((HOST, 0), _SoakHandler, self)
        self.port: int = self._server.server_address[1]
        self.base_url = f"http://{HOST}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"soak-receiver-{self.port}", daemon=True)
        self._thread.start()

    def path_for(self, endpoint_number: int) -> str:
        return f"{PATH_PREFIX}{endpoint_number}"

    def url_for(self, endpoint_number: int) -> str:
        """The URL that endpoint number ``endpoint_number`` of the soak delivers to."""
        return self.base_url + self.path_for(endpoint_number)

    def stats(self) -> SoakStats:
        with self._lock:
            return SoakStats(self._requests, self._failures, self._stalls, self._duplicates,
                             self._overlapping, frozenset(self._acknowledged))

    @property
    def request_count(self) -> int:
        with self._lock:
            return self._requests

    def close(self) -> None:
        """Stop serving; stalled requests are released (and closed unanswered) at once."""
        if self._closing.is_set():
            return
        self._closing.set()
        stop_serving(self._server, self._open_connections, self._thread)

    def _open_connections(self) -> list[socket.socket]:
        with self._lock:
            return list(self._connections)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Called from the server's threads.

    def decide(self, key: tuple[str, str]) -> str:
        """Count a request and choose its fate: 'duplicate', 'fail', 'stall' or 'ack'."""
        with self._lock:
            self._requests += 1
            if key in self._in_flight:
                self._overlapping += 1
            fate = self._fate_of(key)
            if fate != "stall":  # a stalled request is abandoned by its client: its re-send may come meanwhile
                self._in_flight.add(key)
            return fate

    def _fate_of(self, key: tuple[str, str]) -> str:
        if key in self._acknowledged:
            self._duplicates += 1
            return "duplicate"
        draw = self._random.random()
        if draw < self.fail_rate:
            self._failures += 1
            return "fail"
        if draw < self.fail_rate + self.stall_rate:
            self._stalls += 1
            return "stall"
        self._acknowledged.add(key)  # before the 200 goes out: a client holding it finds it recorded
        return "ack"

    def finished(self, key: tuple[str, str]) -> None:
        """The answer to ``key`` is out (or the connection broke): it is no longer in flight."""
        with self._lock:
            self._in_flight.discard(key)

    def stall(self) -> None:
        """Hold a request past the client's timeout; close() cuts it short."""
        self._closing.wait(self.stall_seconds)

    def connection_opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def connection_closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256  # workers reconnect all at once after a restart

    def __init__(self, address: tuple[str, int], handler: type, receiver: SoakReceiver) -> None:
        self.receiver = receiver
        super().__init__(address, handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # no reverse DNS lookup
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        self.receiver.connection_opened(connection)
        return connection, address

    def shutdown_request(self, request: Any) -> None:
        self.receiver.connection_closed(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A killed worker resets its connections: expected here, so not worth a traceback."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _SoakHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # head and body in separate writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        receiver = self.server.receiver
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if not self.path.startswith(PATH_PREFIX):
                self._answer(404, b"unknown path")
                return
            key = (self.path, self.headers.get("Webhook-Id", ""))
            fate = receiver.decide(key)
            if fate == "stall":
                receiver.stall()
                self.close_connection = True  # close without a single byte of answer
                return
            status, body = (500, b"soak: planned failure") if fate == "fail" else (200, b"ok")
            try:
                self._answer(status, body)
            finally:
                receiver.finished(key)
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client gave up; nothing to answer

    do_PUT = do_POST

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
