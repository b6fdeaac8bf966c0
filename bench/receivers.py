"""The HTTP receivers the benchmarks deliver to, each a child process on 127.0.0.1.

* fast: answers ``200 ok`` at once. Debian's nginx when ``/usr/sbin/nginx`` is
  there (it reads and discards the request body, keeps connections alive and
  costs far less CPU than any Python server), else the asyncio responder below.
* slow: answers every request after a fixed delay (100 ms), like a remote
  endpoint across the internet. asyncio holds thousands of idle connections
  cheaply, so the sender's concurrency, not the receiver, is what is measured.
  ``GET /count`` answers how many POSTs it has answered.
* hanging: reads every request and never answers (the bad days' scenarios).
* failing: answers every request ``500`` at once.

Run directly: ``python -m bench.receivers serve --port N [--delay S] [--status CODE] [--hang]``.
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
NGINX = "/usr/sbin/nginx"
READY_TIMEOUT = 15.0
MAX_BODY_BYTES = 8 * 1024 * 1024

NGINX_CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_body_buffer_size 1m;
    client_max_body_size 8m;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            default_type text/plain;
            return 200 "ok";
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ReceiverProcess:
    """A receiver child process on a free port; ``with`` starts it and always stops it."""

    kind = "receiver"

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix=f"bench-{self.kind}-"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> "ReceiverProcess":
        log = open(self.workdir / "output.log", "wb")
        self.process = subprocess.Popen(self.command(), cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self._wait_until_answering()
        return self

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.process.poll() is not None:
                output = (self.workdir / "output.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.kind} receiver exited with {self.process.returncode}: {output}")
            try:
                # GET /count: answered at once by every kind (even one that never answers a POST).
                if requests.get(f"http://127.0.0.1:{self.port}/count", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.kind} receiver did not answer on port {self.port} within {READY_TIMEOUT} s")
            time.sleep(0.05)  # readiness poll with a deadline

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class NginxReceiver(ReceiverProcess):
    """Debian's nginx with a generated one-location config: ``return 200 "ok"`` for everything."""

    kind = "nginx"
    name = "nginx"

    def command(self) -> list[str]:
        config = self.workdir / "nginx.conf"
        config.write_text(NGINX_CONFIG.format(dir=self.workdir, port=self.port))
        return [NGINX, "-p", str(self.workdir), "-c", str(config)]


class AsyncioReceiver(ReceiverProcess):
    """This module's own asyncio responder, answering ``status`` after ``delay`` seconds (0 = at once),
    or never (``hang``)."""

    kind = "asyncio"

    def __init__(self, delay: float = 0.0, status: int = 200, hang: bool = False) -> None:
        self.delay = delay
        self.status = status
        self.hang = hang
        super().__init__()

    @property
    def name(self) -> str:
        if self.hang:
            return "asyncio (never answers)"
        return f"asyncio ({self.delay * 1000:g} ms)" if self.delay else f"asyncio ({self.status})"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.receivers", "serve", "--port", str(self.port),
                "--delay", str(self.delay), "--status", str(self.status), *(["--hang"] if self.hang else [])]

    def answered(self) -> int:
        """POSTs answered so far."""
        return int(requests.get(f"http://127.0.0.1:{self.port}/count", timeout=5).text)


def fast_receiver() -> ReceiverProcess:
    """nginx when installed, else the asyncio responder with no delay."""
    return NginxReceiver() if Path(NGINX).exists() else AsyncioReceiver(0.0)


def slow_receiver(delay: float = 0.1) -> AsyncioReceiver:
    return AsyncioReceiver(delay)


def hanging_receiver() -> AsyncioReceiver:
    return AsyncioReceiver(hang=True)


def failing_receiver() -> AsyncioReceiver:
    return AsyncioReceiver(status=500)


# --- the asyncio responder (runs in the child process) ---------------------------------

def response_for(status: int) -> bytes:
    return b"HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok" % status


class ResponderProtocol(asyncio.Protocol):
    """Minimal HTTP/1.1: keep-alive, bodies by Content-Length, pipelined requests in order."""

    answered = 0

    def __init__(self, delay: float, status: int = 200, hang: bool = False) -> None:
        self.delay = delay
        self.response = response_for(status)
        self.hang = hang
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.close_after = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            request = self._next_request()
            if request is None:
                return
            self._answer(*request)

    def _next_request(self) -> tuple[bytes, bytes, bool] | None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > 65536:
                self.transport.close()
            return None
        head = bytes(self.buffer[:end]).decode("latin-1")
        lines = head.split("\r\n")
        length, close = 0, lines[0].endswith("HTTP/1.0")
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "connection":
                close = value.strip().lower() == "close"
        if length > MAX_BODY_BYTES:
            self.transport.close()
            return None
        if len(self.buffer) < end + 4 + length:
            return None
        del self.buffer[: end + 4 + length]
        method, _, rest = lines[0].partition(" ")
        return method.encode(), rest.partition(" ")[0].encode(), close

    def _answer(self, method: bytes, path: bytes, close: bool) -> None:
        if method == b"GET" and path == b"/count":
            body = str(ResponderProtocol.answered).encode()
            self._write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body), close)
            return
        if self.hang:
            return  # the connection stays open, unanswered, until the client gives up
        ResponderProtocol.answered += 1
        if self.delay:
            asyncio.get_running_loop().call_later(self.delay, self._write, self.response, close)
        else:
            self._write(self.response, close)

    def _write(self, response: bytes, close: bool) -> None:
        if self.transport.is_closing():
            return
        self.transport.write(response)
        if close:
            self.transport.close()


async def serve(port: int, delay: float, status: int = 200, hang: bool = False) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: ResponderProtocol(delay, status, hang), "127.0.0.1", port,
                                      backlog=4096)
    async with server:
        await server.serve_forever()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="a benchmark HTTP receiver")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--status", type=int, default=200, help="the status code of every answer")
    parser.add_argument("--hang", action="store_true", help="never answer")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args.port, args.delay, args.status, args.hang))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
