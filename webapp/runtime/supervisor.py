"""``flask run-all``: the whole product on one machine, for a newcomer.

Starts an embedded Redis (unless REDIS_URL is set), ``WEBHOOKS_WORKERS``
delivery workers (one per core by default; each also runs the scheduler, whose
ticks a Redis lock gives to one), and the web app under gunicorn; Ctrl-C stops
them all.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .embedded_redis import EmbeddedRedis

STOP_TIMEOUT = 15.0


class Supervisor:
    def __init__(self, project_root: Path, instance_path: Path, port: int, workers: int = 1):
        self.project_root = project_root
        self.workers = workers
        self.instance_path = instance_path
        self.port = port
        self.redis: EmbeddedRedis | None = None
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = False

    def run(self, echo) -> int:
        env = dict(os.environ)
        if not env.get("REDIS_URL"):
            self.redis = EmbeddedRedis(self.instance_path / "redis").start()
            env["REDIS_URL"] = self.redis.url
            echo(f"Embedded Redis on {self.redis.url} (data in {self.redis.data_dir})")
        previous = {sig: signal.signal(sig, self._request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for number in range(1, self.workers + 1):
                self._spawn(f"worker {number}", [sys.executable, str(self.project_root / "worker.py")], env)
            echo(f"{self.workers} delivery worker(s) (WEBHOOKS_WORKERS)")
            self._spawn(
                "web",
                [sys.executable, "-m", "gunicorn", "--workers", "2", "--threads", "4",
                 "--bind", f"127.0.0.1:{self.port}", "--access-logfile", "-", "webapp:create_app()"],
                env,
            )
            echo(f"Webhooks is running at http://127.0.0.1:{self.port}/  (Ctrl-C to stop)")
            return self._watch(echo)
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _spawn(self, name: str, argv: list[str], env: dict) -> None:
        self.children[name] = subprocess.Popen(argv, cwd=self.project_root, env=env, start_new_session=True)

    def _request_stop(self, *_):
        self.stopping = True

    def _watch(self, echo) -> int:
        while not self.stopping:
            for name, child in self.children.items():
                if child.poll() is not None:
                    echo(f"{name} exited with code {child.returncode}; stopping everything")
                    return child.returncode or 1
            time.sleep(0.2)  # supervision loop, not a wait for a test outcome
        echo("Stopping...")
        return 0

    def _stop_all(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in self.children.values():
            try:
                child.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        if self.redis is not None:
            self.redis.stop()
