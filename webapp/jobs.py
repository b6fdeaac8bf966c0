"""RQ entry points. Backend code may enqueue them by name without importing the app:

    Queue("webhooks", connection=redis).enqueue("webapp.jobs.emit", action, customer, data)
    Queue("webhooks", connection=redis).enqueue("webapp.jobs.emit_many", [
        {"action": action, "customer": customer, "data": data}, ...])

Jobs carry ids (or, for ``emit`` and ``emit_many``, the events themselves), never secrets. Bad
arguments fail the job with a message naming the argument; the worker lives on.
"""
from __future__ import annotations

import os
from functools import wraps

from flask import Flask, current_app, has_app_context

from .errors import InvalidInput
from .extensions import db

_standalone_app: Flask | None = None
_engine_pid: int | None = None


def in_app_context(job):
    """Run inside the worker's app (or a lazily made one), with fresh DB connections after a fork."""

    @wraps(job)
    def run(*args, **kwargs):
        global _standalone_app
        if has_app_context():
            return _run_fresh(job, args, kwargs)
        if _standalone_app is None:
            from . import create_app

            _standalone_app = create_app()
        with _standalone_app.app_context():
            return _run_fresh(job, args, kwargs)

    return run


def _run_fresh(job, args, kwargs):
    global _engine_pid
    if _engine_pid != os.getpid():
        # A forked work-horse must not share the parent's open connections.
        db.engine.dispose(close=False)
        _engine_pid = os.getpid()
    try:
        return job(*args, **kwargs)
    finally:
        db.session.remove()


@in_app_context
def emit(action, customer, data) -> dict:
    from .domain.events import emit as emit_event

    return emit_event(action, customer, data).receipt()


@in_app_context
def emit_many(events) -> list[dict]:
    """A list of 1 to 1,000 events, each as the API takes it (``{"action", "customer", "data"}``),
    recorded all or nothing; a bad one fails the job naming its index and field."""
    from .domain.events import emit_many as emit_events
    from .domain.events import events_from_json

    return [event.receipt() for event in emit_events(events_from_json(events))]


@in_app_context
def deliver(endpoint_ids) -> int:
    """Wake-up: these endpoints (an id or a list of ids) have messages to send.

    In ``python worker.py`` the ids go to the process's delivery engine and the
    job returns at once; in any other RQ worker the job delivers them itself,
    until nothing is due.
    """
    from .delivery.dispatch import clear_kicks
    from .delivery.engine import Engine, running_engine

    ids = [endpoint_ids] if not isinstance(endpoint_ids, list) else endpoint_ids
    for item in ids:
        if isinstance(item, bool) or not isinstance(item, int):
            raise InvalidInput("endpoint_id", f"must be an integer, got {item!r}")
    clear_kicks(ids)
    engine = running_engine()
    if engine is not None:
        engine.wake(ids)
        return len(ids)
    engine = Engine(current_app._get_current_object()).start()
    try:
        engine.wake(ids)
        engine.wait_idle(timeout=3600)
    finally:
        engine.stop()
    return len(ids)


@in_app_context
def sweep() -> dict:
    from .delivery.sweep import sweep as run_sweep

    return run_sweep().__dict__


@in_app_context
def purge() -> dict:
    from .domain.logbook.retention import purge as run_purge

    return run_purge(current_app.config["WEBHOOKS_RETENTION_DAYS"]).__dict__
