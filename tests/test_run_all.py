"""`flask run-all` (what `make run` ends in): embedded Redis + worker + web app, stopped by Ctrl-C.

Runs the real command in a fresh instance folder with no REDIS_URL and no
DATABASE_URL, like a newcomer's first `make run`.
"""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.support.processes import descendants
from tests.support.receiver import Receiver
from webapp.runtime.embedded_redis import free_port

pytestmark = pytest.mark.slow  # the whole product in child processes

OWN_VARIABLES = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "WEBHOOKS_ENCRYPTION_KEY", "PORT")


def clean_env(instance_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in OWN_VARIABLES and not k.startswith("WEBHOOKS_")}
    env.update(WEBHOOKS_INSTANCE_PATH=str(instance_path), WEBHOOKS_ALLOW_PRIVATE_TARGETS="1", **extra)
    return env


def flask(*args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", *args],
                          env=env, capture_output=True, text=True, timeout=60, check=True)


class OutputReader(threading.Thread):
    """Collects a child's output lines so the test can wait for one without blocking."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.lines, self.seen = stream, queue.Queue(), []

    def run(self):
        for line in self.stream:
            self.lines.put(line)

    def wait_for(self, fragment: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"no line containing {fragment!r}; output so far:\n{''.join(self.seen)}")
            self.seen.append(line)
            if fragment in line:
                return line


def test_run_all_serves_ui_and_api_delivers_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    env = clean_env(tmp_path / "instance", PORT=str(port), WEBHOOKS_WORKERS="2")
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "webapp", "run-all"], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    output = OutputReader(process.stdout)
    output.start()
    try:
        credentials = output.wait_for("First operator created", timeout=60)
        assert "admin@example.com / " in credentials
        redis_line = output.wait_for("Embedded Redis on", timeout=30)
        output.wait_for("2 delivery worker(s) (WEBHOOKS_WORKERS)", timeout=30)
        output.wait_for(f"running at http://127.0.0.1:{port}/", timeout=30)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:  # gunicorn binds a moment after the banner: poll with a deadline
            try:
                shell = requests.get(base + "/", timeout=20)
                break
            except (requests.ConnectionError, requests.Timeout):  # not bound yet, or busy booting
                assert time.monotonic() < deadline, "web app never answered"
                time.sleep(0.1)
        assert shell.status_code == 200 and "Webhooks" in shell.text

        token = flask("create-token", "smoke", env=env).stdout.strip().splitlines()[-1]
        headers = {"Authorization": f"Bearer {token}"}
        with Receiver() as receiver:
            created = requests.post(base + "/api/v1/endpoints", headers=headers, timeout=10,
                                    json={"url": receiver.url, "actions": ["checkout"]})
            assert created.status_code == 201, created.text
            posted = requests.post(base + "/api/v1/events", headers=headers, timeout=10,
                                   json={"action": "checkout", "customer": "c-1", "data": {"total": 12}})
            assert posted.status_code == 202, posted.text
            [request] = receiver.wait_for(1, timeout=30)
            assert request.json()["data"] == {"total": 12}
            assert request.header("Webhook-Id") == posted.json()["event_id"]

        children = descendants(process.pid)
        assert len(children) >= 4, "redis, the workers and the web app run as children"
        workers = [pid for pid in children if b"worker.py" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(workers) == 2, "as many delivery workers as WEBHOOKS_WORKERS says"
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        try:
            code = process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail("run-all did not stop within 30 s of Ctrl-C")
    assert code == 0, "".join(output.seen)
    for pid in children:
        assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2], \
            f"child {pid} outlived run-all"
    assert (tmp_path / "instance" / "webhooks.db").exists(), "SQLite file lives under instance/"
    assert "redis" in redis_line and (tmp_path / "instance" / "redis").is_dir()


def test_create_token_prints_the_token_last_and_create_user_hashes(tmp_path):
    env = clean_env(tmp_path / "instance")
    flask("db", "upgrade", env=env)
    out = flask("create-token", "backend", env=env).stdout.strip().splitlines()
    assert out[-1].startswith("whk_") and len(out[-1]) > 30
    made = flask("create-user", "Ops@Example.com", "--password", "correct horse battery", env=env)
    assert "ops@example.com" in made.stdout
    dump = (tmp_path / "instance" / "webhooks.db").read_bytes()
    assert b"correct horse battery" not in dump and out[-1].encode() not in dump
    refused = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "create-user", "x@example.com",
                              "--password", "short"], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "at least 8 characters" in refused.stderr


def test_run_all_starts_a_worker_per_core_at_most_four_unless_told(monkeypatch, tmp_path):
    from webapp.config import load_config

    monkeypatch.delenv("WEBHOOKS_WORKERS", raising=False)
    assert load_config(tmp_path)["WEBHOOKS_WORKERS"] == max(1, min(os.cpu_count() or 1, 4))
    monkeypatch.setenv("WEBHOOKS_WORKERS", "6")
    assert load_config(tmp_path)["WEBHOOKS_WORKERS"] == 6


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_worker_count_that_is_not_a_positive_whole_number_stops_the_start(monkeypatch, tmp_path, value):
    from webapp.config import load_config

    monkeypatch.setenv("WEBHOOKS_WORKERS", value)
    with pytest.raises(SystemExit, match="WEBHOOKS_WORKERS"):
        load_config(tmp_path)
