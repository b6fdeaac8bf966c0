"""Keep a job's leases alive while it works, so they can be short.

A lease only has to outlive one heartbeat: if the worker dies, its messages
become recoverable within ``ttl`` seconds, however long its batch was.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading

from sqlalchemy import update
from sqlalchemy.engine import Engine

from ..models import Endpoint, Message, utcnow

log = logging.getLogger(__name__)


class LeaseKeeper(threading.Thread):
    def __init__(self, engine: Engine, owner: str, ttl: float):
        super().__init__(name=f"lease-keeper-{owner[:8]}", daemon=True)
        self.engine = engine
        self.owner = owner
        self.ttl = ttl
        self.period = max(min(ttl / 3, 5.0), 0.1)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.period):
            try:
                self.renew()
            except Exception:  # noqa: BLE001 - a missed heartbeat only shortens the lease
                log.exception("could not renew leases of %s", self.owner)

    def renew(self) -> None:
        until = utcnow() + dt.timedelta(seconds=self.ttl)
        with self.engine.begin() as conn:
            conn.execute(update(Message.__table__).where(Message.__table__.c.lease_owner == self.owner)
                         .values(lease_until=until))
            conn.execute(update(Endpoint.__table__).where(Endpoint.__table__.c.lease_owner == self.owner)
                         .values(lease_until=until))

    def stop(self) -> None:
        self.stopped.set()
        self.join()

    def __enter__(self) -> "LeaseKeeper":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
