"""A real forward HTTP proxy (proxy.py in a subprocess) on 127.0.0.1.

For tests of endpoints with "Use static-IP proxy" ticked: point the
installation's proxy setting at `ForwardProxy.url`, deliver to a `Receiver`,
and check the request arrived with the proxy's marker header:

    with ForwardProxy() as proxy, Receiver() as receiver:
        requests.post(receiver.url, json={...}, proxies={"http": proxy.url})
        (request,) = receiver.wait_for(1)
        assert proxy.marked(request)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.proxy_plugin import JOURNAL_ENV, MARKER_HEADER
from tests.support.receiver import HOST, RecordedRequest
from tests.support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGIN = "tests.support.proxy_plugin.MarkViaProxy"


class ForwardProxy:
    """proxy.py subprocess listening on a free loopback port.

    Every plain-http request it forwards carries `X-Test-Forward-Proxy: <port>`
    (see `proxy_plugin.MarkViaProxy`), and every request it receives is
    listed by `forwarded()`, including ones whose target was unreachable.
    HTTPS goes through as an opaque CONNECT tunnel: journaled, not marked.
    """

    marker_header = MARKER_HEADER

    def __init__(self, start_timeout: float = 15.0, stop_timeout: float = 5.0) -> None:
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.port: int | None = None
        self.url: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None

    def start(self) -> ForwardProxy:
        if self._process is not None:
            raise RuntimeError("ForwardProxy already started")
        self._workdir = Path(tempfile.mkdtemp(prefix="test-forward-proxy-"))
        port_file = self._workdir / "port"
        command = [
            sys.executable, "-m", "proxy",
            "--hostname", HOST,
            "--port", "0",  # proxy.py binds a free port and writes it to --port-file
            "--port-file", str(port_file),
            "--threaded",
            "--num-acceptors", "1",
            "--num-workers", "1",
            "--plugins", PLUGIN,
            "--log-level", "INFO",  # one access-log line per request, into proxy.log
            # Keep proxy.py from creating ~/.proxypy and ~/.proxy/cache.
            "--data-dir", str(self._workdir / "data"),
            "--cache-dir", str(self._workdir / "cache"),
        ]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env[JOURNAL_ENV] = str(self._journal_path)
        self._journal_path.touch()
        with open(self._log_path, "ab") as log:
            self._process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so close() reaps the acceptors too
            )
        try:
            self.port = wait_until(
                lambda: self._listening_port(port_file),
                timeout=self.start_timeout,
                message="proxy.py did not start listening",
            )
        except (AssertionError, RuntimeError) as error:
            tail = self.log_tail()
            self.close()
            raise RuntimeError(f"{error}\n--- proxy.py output ---\n{tail}") from None
        self.url = f"http://{HOST}:{self.port}"
        return self

    def close(self) -> None:
        """Stop the proxy (SIGTERM, then SIGKILL after `stop_timeout`) and reap it."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:  # not reaped yet
            self._signal_group(process, signal.SIGTERM)
            try:
                wait_until(lambda: _exited_unreaped(process.pid), timeout=self.stop_timeout)
            except AssertionError:
                pass
            # While the parent is an unreaped zombie its group id can't be
            # reused, so this only hits our own leftovers (e.g. acceptors).
            self._signal_group(process, signal.SIGKILL)
            process.wait(timeout=self.stop_timeout)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def forwarded(self) -> list[str]:
        """Requests the proxy received so far, e.g. "POST http://127.0.0.1:5000/hook"."""
        return self._journal_path.read_text(encoding="utf-8").splitlines()

    def forwarded_count(self) -> int:
        return len(self.forwarded())

    def marked(self, request: RecordedRequest) -> bool:
        """True if `request` reached the receiver through this proxy."""
        return request.header(MARKER_HEADER) == str(self.port)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines proxy.py logged (one access-log line per request)."""
        if self._workdir is None:
            return "(not running)"
        try:
            text = self._log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> ForwardProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ForwardProxy {self.url or 'not started'}>"

    @property
    def _journal_path(self) -> Path:
        assert self._workdir is not None, "ForwardProxy not started"
        return self._workdir / "journal"

    @property
    def _log_path(self) -> Path:
        assert self._workdir is not None, "ForwardProxy not started"
        return self._workdir / "proxy.log"

    def _listening_port(self, port_file: Path) -> int | None:
        assert self._process is not None
        if self._process.poll() is not None:
            raise RuntimeError(f"proxy.py exited with code {self._process.returncode}")
        try:
            text = port_file.read_text()
        except FileNotFoundError:
            return None
        if not text.endswith("\n"):
            return None  # still being written
        port = int(text.split()[0])
        try:
            socket.create_connection((HOST, port), timeout=1).close()
        except OSError:
            return None
        return port

    @staticmethod
    def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass


def _exited_unreaped(pid: int) -> bool:
    """True once process `pid` has exited, without reaping it."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True  # already reaped
