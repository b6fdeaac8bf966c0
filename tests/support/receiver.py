"""A real HTTP endpoint on 127.0.0.1 that webhook deliveries are sent to in tests.

`Receiver` records every request it gets and answers the way a test tells it
to (status codes, failures before success, stalls, slow huge bodies, or a
custom handler), so delivery code is exercised over real sockets instead of a
mocked `requests`.

    with Receiver(fail_first=2) as receiver:
        deliver(receiver.url)
        first, second, third = receiver.wait_for(3)
"""

from __future__ import annotations

import dataclasses
import json
import socket
import socketserver
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOST = "127.0.0.1"


@dataclass
class RecordedRequest:
    """One request as the receiver saw it on the wire."""

    method: str
    path: str
    headers: list[tuple[str, str]]  # wire order, duplicates kept
    body: bytes
    received_at: float  # time.monotonic() once the body was read
    client_port: int
    status: int | None = None  # what the receiver answered; None if it never did

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header `name` (case-insensitive), or `default`."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return default

    def json(self) -> Any:
        return json.loads(self.body)


HandlerResult = tuple[int, Mapping[str, str] | list[tuple[str, str]], bytes]


@dataclass(frozen=True)
class Behaviour:
    """How the receiver answers; see `Receiver` for what each field does."""

    status: int = 200
    fail_first: int = 0
    fail_status: int = 500
    statuses: tuple[int, ...] = ()
    delay: float = 0.0
    response_body: bytes = b"ok"
    response_headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    trickle: tuple[int, int, float] | None = None
    trickle_chunked: bool = False
    handler: Callable[[RecordedRequest], HandlerResult] | None = None


# Changing any of these restarts the planned sequence of status codes.
_SEQUENCE_FIELDS = {"fail_first", "fail_status", "statuses"}


def stop_serving(server: socketserver.BaseServer, open_connections: Callable[[], list[socket.socket]],
                 thread: threading.Thread) -> None:
    """Stop accepting, then shut the connections still open: idle keep-alive
    ones would otherwise go on being served by their handler threads."""
    server.shutdown()
    server.server_close()
    for connection in open_connections():
        try:
            connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    thread.join(timeout=5)


class Receiver:
    """Threaded HTTP/1.1 server on a free loopback port that records requests.

    Behaviour (constructor keywords, changeable later with `behave`):
      status           code to answer once any planned sequence is used up
      fail_first=N     answer `fail_status` (default 500) to the next N requests
      statuses=[...]   answer these codes, in order, to the next requests
      delay=seconds    stall that long before answering (released by close())
      response_body, response_headers
      trickle=(total_bytes, chunk_bytes, interval_s)
                       send a `total_bytes` body `chunk_bytes` at a time, one
                       chunk per interval; announced with Content-Length, or
                       chunked when `trickle_chunked=True`
      handler=f        f(RecordedRequest) -> (status, headers, body) answers
                       instead; if it raises, the receiver answers 500 and keeps
                       the exception in `handler_errors`

    Requests are recorded as soon as their body is read, before the answer is
    sent, so `RecordedRequest.status` may still be None right after
    `wait_for` returns while the receiver is stalling or answering.
    Connections are kept alive (HTTP/1.1); `accept_count` counts TCP
    connections so tests can prove a client reuses them.
    """

    def __init__(self, **behaviour: Any) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._closing = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._open_connections: set[socket.socket] = set()
        self._accept_count = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._behaviour = Behaviour()
        self._planned: deque[int] = deque()
        self.handler_errors: list[BaseException] = []
        self.behave(**behaviour)

        self._server = _Server((HOST, 0), _RecordingHandler, self)
        self.port: int = self._server.server_address[1]
        self.base_url = f"http://{HOST}:{self.port}"
        self.url = f"{self.base_url}/hook"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # how quickly close() stops the accept loop
            name=f"receiver-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def behave(self, **changes: Any) -> None:
        """Change how the receiver answers from the next request on."""
        if "statuses" in changes:
            changes["statuses"] = tuple(changes["statuses"])
        with self._lock:
            self._behaviour = dataclasses.replace(self._behaviour, **changes)
            if _SEQUENCE_FIELDS & changes.keys():
                b = self._behaviour
                self._planned = deque(b.statuses or [b.fail_status] * b.fail_first)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests recorded so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def accept_count(self) -> int:
        """How many TCP connections the receiver has accepted."""
        with self._lock:
            return self._accept_count

    @property
    def max_in_flight(self) -> int:
        """The most requests this receiver was handling at the same moment."""
        with self._lock:
            return self._max_in_flight

    def wait_for(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least `count` requests are recorded and return them all."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= count, timeout):
                seen = ", ".join(f"{r.method} {r.path} -> {r.status}" for r in self._requests)
                raise AssertionError(
                    f"expected at least {count} request(s) at {self.url} within {timeout}s, "
                    f"{len(self._requests)} arrived: [{seen}]"
                )
            return list(self._requests)

    def close(self) -> None:
        """Stop serving; returns promptly even while handlers are stalled."""
        if self._closing.is_set():
            return
        self._closing.set()  # releases delays and trickles
        stop_serving(self._server, self._open_connection_list, self._thread)

    def _open_connection_list(self) -> list[socket.socket]:
        with self._lock:
            return list(self._open_connections)

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Receiver {self.url} requests={len(self._requests)}>"

    # Called from the server's threads.

    def _record(self, request: RecordedRequest) -> tuple[Behaviour, int]:
        with self._changed:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self._requests.append(request)
            status = self._planned.popleft() if self._planned else self._behaviour.status
            self._changed.notify_all()
            return self._behaviour, status

    def _answered(self, request: RecordedRequest, status: int) -> None:
        with self._changed:
            request.status = status
            self._changed.notify_all()

    def _finished(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _connection_opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._accept_count += 1
            self._open_connections.add(connection)

    def _connection_closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._open_connections.discard(connection)


def refused_url() -> str:
    """A loopback URL where nothing listens, for connection-refused tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    return f"http://{HOST}:{port}/hook"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: type, receiver: Receiver) -> None:
        self.receiver = receiver
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup we have no use for.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        self.receiver._connection_opened(connection)
        return connection, address

    def shutdown_request(self, request: Any) -> None:
        self.receiver._connection_closed(request)
        super().shutdown_request(request)


class _RecordingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Head and body go out in separate writes; without this, Nagle plus the
    # client's delayed ACK adds ~40 ms to every kept-alive request.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def _serve(self) -> None:
        receiver = self.server.receiver
        try:
            body = self._read_body()
            request = RecordedRequest(
                method=self.command,
                path=self.path,
                headers=list(self.headers.items()),
                body=body,
                received_at=time.monotonic(),
                client_port=self.client_address[1],
            )
            behaviour, status = receiver._record(request)
            try:
                self._answer(receiver, request, behaviour, status)
            finally:
                receiver._finished()
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client gave up; nothing to answer

    def _answer(self, receiver: Receiver, request: RecordedRequest, behaviour: Behaviour, status: int) -> None:
        """Stall, then answer as the behaviour says (or let a handler decide)."""
        if behaviour.delay and receiver._closing.wait(behaviour.delay):
            self.close_connection = True  # closed while stalling: never answer
            return
        headers: Any = behaviour.response_headers
        body = behaviour.response_body
        if behaviour.handler is not None:
            try:
                status, headers, body = behaviour.handler(request)
            except Exception as error:
                receiver.handler_errors.append(error)
                status, headers, body = 500, {}, f"handler raised {error!r}".encode()
        if behaviour.trickle is not None:
            self._send_trickle(request, status, headers, behaviour)
        else:
            self._send_head(request, status, headers, {"Content-Length": str(len(body))})
            if self.command != "HEAD":
                self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_head(
        self,
        request: RecordedRequest,
        status: int,
        headers: Mapping[str, str] | list[tuple[str, str]],
        framing: Mapping[str, str],
    ) -> None:
        self.send_response(status)
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in [*pairs, *framing.items()]:
            self.send_header(name, value)
        if self.close_connection:
            # Say so, so clients (and proxies) do not reuse the connection.
            self.send_header("Connection", "close")
        # Record before end_headers() sends the head, so a client that has
        # its answer always finds the status recorded.
        self.server.receiver._answered(request, status)
        self.end_headers()

    def _send_trickle(
        self, request: RecordedRequest, status: int, headers: Any, behaviour: Behaviour
    ) -> None:
        assert behaviour.trickle is not None
        total, chunk_size, interval = behaviour.trickle
        closing = self.server.receiver._closing
        if behaviour.trickle_chunked:
            framing = {"Transfer-Encoding": "chunked"}
        else:
            framing = {"Content-Length": str(total)}
        self._send_head(request, status, headers, framing)
        sent = 0
        while sent < total:
            size = min(chunk_size, total - sent)
            data = b"x" * size
            if behaviour.trickle_chunked:
                data = b"%x\r\n%s\r\n" % (size, data)
            self.wfile.write(data)
            self.wfile.flush()
            sent += size
            if sent < total and closing.wait(interval):
                self.close_connection = True  # body left incomplete on purpose
                return
        if behaviour.trickle_chunked:
            self.wfile.write(b"0\r\n\r\n")
