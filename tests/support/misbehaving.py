"""Receivers on 127.0.0.1 that misbehave below HTTP: slow to accept, silent, trickling, endless.

Each is a real TCP server written at the socket level, because the behaviours
under test (a head sent one byte at a time, a TLS handshake stretched over
seconds, an accept queue that is full) cannot be produced by an HTTP server
library that does things properly.

    with RawServer(trickle_head(interval=0.2)) as server:
        send_to(server.url)
"""
from __future__ import annotations

import socket
import threading
from collections.abc import Callable

HOST = "127.0.0.1"
Serve = Callable[[socket.socket, threading.Event], None]


def read_request(conn: socket.socket) -> bytes:
    """The request's head and its Content-Length body (what a webhook delivery sends)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def dribble(conn: socket.socket, data: bytes, interval: float, stop: threading.Event) -> None:
    """Send ``data`` one byte per ``interval``; stops when the server closes or the peer goes."""
    for index in range(len(data)):
        conn.sendall(data[index:index + 1])
        if stop.wait(interval):
            return


def hang(conn: socket.socket, stop: threading.Event) -> None:
    """Read the request, never answer."""
    read_request(conn)
    stop.wait()


def trickle_head(interval: float) -> Serve:
    """The status line and headers one byte per ``interval``."""
    def serve(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        dribble(conn, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok", interval, stop)
    return serve


def trickle_body(interval: float, length: int = 1000, ends_with_connection: bool = False) -> Serve:
    """A 200 head at once, then the body one byte per ``interval``; its Content-Length given, or
    ``ends_with_connection`` (no length: the body is what comes until the connection closes)."""
    def serve(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        framing = b"Connection: close" if ends_with_connection else b"Content-Length: %d" % length
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + framing + b"\r\n\r\n")
        dribble(conn, b"x" * length, interval, stop)
    return serve


def endless_body(chunk: bytes = b"y" * 16384) -> Serve:
    """A 200 head, then a chunked body that never ends, as fast as the client reads."""
    def serve(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        while not stop.is_set():
            conn.sendall(framed)
    return serve


class RawServer:
    """A TCP server on a free loopback port; each connection is served by ``serve`` in its own thread."""

    def __init__(self, serve: Serve, scheme: str = "http"):
        self._serve = serve
        self._stop = threading.Event()
        self._listener = socket.create_server((HOST, 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"{scheme}://{HOST}:{self.port}/hook"
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name=f"raw-server-{self.port}", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                self._connections.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            self._serve(conn, self._stop)
        except OSError:
            pass  # the client went away: that is what these tests provoke
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            for conn in self._connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._thread.join(timeout=5)

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SlowRelay(RawServer):
    """Relays to ``upstream_port`` and passes what upstream says back one byte per ``interval``:
    in front of a TLS server it stretches the handshake itself, byte by byte."""

    def __init__(self, upstream_port: int, interval: float, scheme: str = "https"):
        self.upstream_port = upstream_port
        self.interval = interval
        super().__init__(self._relay, scheme)

    def _relay(self, client: socket.socket, stop: threading.Event) -> None:
        upstream = socket.create_connection((HOST, self.upstream_port))
        with self._lock:
            self._connections.append(upstream)
        threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
        try:
            while not stop.is_set():
                data = upstream.recv(4096)
                if not data:
                    return
                dribble(client, data, self.interval, stop)
        finally:
            upstream.close()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(4096):
                target.sendall(data)
        except OSError:
            pass


class FullAcceptQueue:
    """A listening port whose accept queue is full: a new connection's SYN goes unanswered,
    as with a receiver too busy to accept. Nothing is ever accepted."""

    def __init__(self):
        self._listener = socket.socket()
        self._listener.bind((HOST, 0))
        self._listener.listen(0)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}/hook"
        self._fillers = []
        for _ in range(3):  # more than the queue holds; the extra ones stay half-open
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex((HOST, self.port))
            self._fillers.append(filler)

    def close(self) -> None:
        for filler in self._fillers:
            filler.close()
        self._listener.close()

    def __enter__(self) -> FullAcceptQueue:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
