"""RQ entry points. Backend code may enqueue them by name without importing the app:

    Queue("webhooks", connection=redis).enqueue("webapp.jobs.emit", action, customer, data)

Jobs carry ids (or, for ``emit``, the event itself), never secrets. Bad
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
    from .events import emit as emit_event

    event = emit_event(action, customer, data)
    return {"event_id": event.id, "message_ids": [m.id for m in event.messages]}


@in_app_context
def deliver(endpoint_id) -> int:
    from .delivery.runner import deliver_endpoint

    if isinstance(endpoint_id, bool) or not isinstance(endpoint_id, int):
        raise InvalidInput("endpoint_id", f"must be an integer, got {endpoint_id!r}")
    return deliver_endpoint(endpoint_id)


@in_app_context
def sweep() -> dict:
    from .delivery.sweep import sweep as run_sweep

    return run_sweep().__dict__


@in_app_context
def purge() -> dict:
    from .retention import purge as run_purge

    return run_purge(current_app.config["WEBHOOKS_RETENTION_DAYS"]).__dict__
