"""Periodic upkeep inside every worker process: the sweep, operator notices, the retention purge.

Every worker runs this thread; a Redis lock per task makes exactly one of them
do each run, so the work survives any single worker (or its scheduler) dying.
"""
from __future__ import annotations

import logging
import threading

from flask import Flask
from redis.exceptions import RedisError

from ..delivery.sweep import sweep
from ..domain.logbook.retention import purge
from ..domain.notices import send_notices
from ..extensions import db
from ..storage.queueing import redis_connection

log = logging.getLogger(__name__)

PURGE_EVERY_SECONDS = 3600


class Maintenance(threading.Thread):
    def __init__(self, app: Flask, owner: str):
        super().__init__(name="webhooks-maintenance", daemon=True)
        self.app = app
        self.owner = owner
        self.interval = float(app.config["WEBHOOKS_SWEEP_INTERVAL"])
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.tick()

    def stop(self) -> None:
        self.stopped.set()

    def tick(self) -> None:
        with self.app.app_context():
            try:
                if self._take("webhooks:lock:sweep", self.interval * 0.9):
                    report = sweep()
                    if report.recovered or report.kicked:
                        log.info("sweep: recovered %d claims, kicked %d endpoints", report.recovered, report.kicked)
                    send_notices()
                if self._take("webhooks:lock:purge", PURGE_EVERY_SECONDS):
                    report = purge(self.app.config["WEBHOOKS_RETENTION_DAYS"])
                    log.info("retention purge: %s", report)
            except RedisError as exc:
                log.warning("maintenance skipped, Redis unavailable: %s", exc)
            except Exception:  # noqa: BLE001 - keep the thread alive; the next tick retries
                log.exception("maintenance tick failed")
            finally:
                db.session.remove()

    def _take(self, key: str, ttl_seconds: float) -> bool:
        return bool(redis_connection().set(key, self.owner, nx=True, px=max(int(ttl_seconds * 1000), 100)))
